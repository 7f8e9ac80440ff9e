/* test-corpus: the training corpus and CSV readers (core/train/corpus.c):
 * good input read exactly, every kind of bad input an error naming the file
 * and line. (The state file is safetensors: tests/io.) */
#include <string.h>
#include <glib/gstdio.h>

#include "stsim/stsim-train.h"
#include "train-test-util.h"

static char *tmpdir;

static char *
write_tmp (const char *name, const char *contents, gssize len)
{
  char *path = g_build_filename (tmpdir, name, NULL);
  g_assert_true (g_file_set_contents (path, contents, len, NULL));
  return path;
}

static void
test_lines_basic (void)
{
  /* BOM, CRLF, blank and whitespace-only lines, no final newline. */
  g_autofree char *p = write_tmp ("basic.txt", "\xEF\xBB\xBF" "first line\r\n\n   \t\nsecond one\n\nthird", -1);
  const char *paths[] = { p, NULL };
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimCorpus) c = stsim_corpus_load_lines (paths, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (stsim_corpus_get_n (c), ==, 3);
  g_assert_cmpuint (stsim_corpus_get_n_views (c), ==, 1);
  g_assert_cmpstr (stsim_corpus_get_text (c, 0, 0), ==, "first line");
  g_assert_cmpstr (stsim_corpus_get_text (c, 1, 0), ==, "second one");
  g_assert_cmpstr (stsim_corpus_get_text (c, 2, 0), ==, "third");
  guint line = 0;
  g_assert_cmpstr (stsim_corpus_get_location (c, 1, &line), ==, p);
  g_assert_cmpuint (line, ==, 4);
  stsim_corpus_get_location (c, 2, &line);
  g_assert_cmpuint (line, ==, 6);
}

static void
test_lines_invalid_utf8 (void)
{
  g_autofree char *p = write_tmp ("latin1.txt", "good line\nalso good\ncaf\xe9 au lait\n", -1);
  const char *paths[] = { p, NULL };
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimCorpus) c = stsim_corpus_load_lines (paths, &err);
  g_assert_null (c);
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_ENCODING);
  g_autofree char *where = g_strdup_printf ("%s:3:", p);
  g_assert_true (strstr (err->message, where) != NULL);
  g_assert_true (strstr (err->message, "byte 4") != NULL);
  g_assert_true (strstr (err->message, "iconv") != NULL);
}

static void
test_lines_nul (void)
{
  g_autofree char *p = write_tmp ("nul.txt", "ok\nbin\0ary\n", 11);
  const char *paths[] = { p, NULL };
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimCorpus) c = stsim_corpus_load_lines (paths, &err);
  g_assert_null (c);
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_ENCODING);
  g_autofree char *where = g_strdup_printf ("%s:2:", p);
  g_assert_true (strstr (err->message, where) != NULL);
}

static void
test_lines_empty_and_missing (void)
{
  g_autofree char *p = write_tmp ("empty.txt", "\n\n  \n", -1);
  const char *paths[] = { p, NULL };
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimCorpus) c = stsim_corpus_load_lines (paths, &err);
  g_assert_null (c);
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_DATA);
  g_assert_true (strstr (err->message, "no sentence") != NULL);
  g_clear_error (&err);

  g_autofree char *missing = g_build_filename (tmpdir, "nope.txt", NULL);
  const char *paths2[] = { missing, NULL };
  g_assert_null (stsim_corpus_load_lines (paths2, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_assert_true (strstr (err->message, "nope.txt") != NULL);
  g_clear_error (&err);

  g_autofree char *glob = g_build_filename (tmpdir, "zz*.txt", NULL);
  const char *paths3[] = { glob, NULL };
  g_assert_null (stsim_corpus_load_lines (paths3, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_assert_true (strstr (err->message, "matches no file") != NULL);
}

static void
test_lines_folder_and_glob (void)
{
  g_autofree char *dir = g_build_filename (tmpdir, "folder", NULL);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_autofree char *b = g_build_filename (dir, "b.txt", NULL);
  g_autofree char *a = g_build_filename (dir, "a.txt", NULL);
  g_autofree char *x = g_build_filename (dir, "x.csv", NULL);
  g_assert_true (g_file_set_contents (b, "b1\nb2\n", -1, NULL));
  g_assert_true (g_file_set_contents (a, "a1\n", -1, NULL));
  g_assert_true (g_file_set_contents (x, "not,a,corpus\n", -1, NULL));

  /* A folder: its .txt files sorted by name. */
  const char *paths[] = { dir, NULL };
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimCorpus) c = stsim_corpus_load_lines (paths, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (stsim_corpus_get_n (c), ==, 3);
  g_assert_cmpstr (stsim_corpus_get_text (c, 0, 0), ==, "a1");
  g_assert_cmpstr (stsim_corpus_get_text (c, 2, 0), ==, "b2");

  /* A pattern, plus a second entry. */
  g_autofree char *pat = g_build_filename (dir, "b*", NULL);
  const char *paths2[] = { pat, a, NULL };
  g_autoptr(StsimCorpus) c2 = stsim_corpus_load_lines (paths2, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (stsim_corpus_get_n (c2), ==, 3);
  g_assert_cmpstr (stsim_corpus_get_text (c2, 0, 0), ==, "b1");
  g_assert_cmpstr (stsim_corpus_get_text (c2, 2, 0), ==, "a1");

  /* The same file through two patterns, the folder and by name: read once,
   * at its first place (it used to count twice). */
  g_autofree char *pat_a = g_build_filename (dir, "?.txt", NULL);
  g_autofree char *dot = g_build_filename (dir, ".", "a.txt", NULL);
  const char *paths3[] = { a, pat_a, dir, dot, NULL };
  g_autoptr(StsimCorpus) c3 = stsim_corpus_load_lines (paths3, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (stsim_corpus_get_n (c3), ==, 3);
  g_assert_cmpstr (stsim_corpus_get_text (c3, 0, 0), ==, "a1");
  g_assert_cmpstr (stsim_corpus_get_text (c3, 1, 0), ==, "b1");
  g_assert_cmpstr (stsim_corpus_get_text (c3, 2, 0), ==, "b2");
}

static const char *const triple_cols[] = { "sent0", "sent1", "hard_neg", NULL };

static void
test_csv_good (void)
{
  g_autofree char *p = write_tmp ("nli.csv",
                                  "\xEF\xBB\xBF" "sent0,sent1,hard_neg,extra\r\n"
                                  "a man sleeps,a person rests,a man runs,x\r\n"
                                  "\"quoted, with comma\",\"two\nlines\",\"say \"\"hi\"\"\",y\r\n", -1);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimCorpus) c = stsim_corpus_load_csv (p, triple_cols, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (stsim_corpus_get_n (c), ==, 2);
  g_assert_cmpuint (stsim_corpus_get_n_views (c), ==, 3);
  g_assert_cmpstr (stsim_corpus_get_text (c, 0, 2), ==, "a man runs");
  g_assert_cmpstr (stsim_corpus_get_text (c, 1, 0), ==, "quoted, with comma");
  g_assert_cmpstr (stsim_corpus_get_text (c, 1, 1), ==, "two\nlines");
  g_assert_cmpstr (stsim_corpus_get_text (c, 1, 2), ==, "say \"hi\"");
  guint line;
  stsim_corpus_get_location (c, 1, &line);
  g_assert_cmpuint (line, >=, 3);
}

static void
check_csv_error (const char *name, const char *text, int code, const char *fragment)
{
  g_autofree char *p = write_tmp (name, text, -1);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimCorpus) c = stsim_corpus_load_csv (p, triple_cols, &err);
  g_assert_null (c);
  g_assert_error (err, STSIM_ERROR, code);
  if (!strstr (err->message, fragment))
    g_error ("'%s' lacks '%s'", err->message, fragment);
  g_assert_true (strstr (err->message, p) != NULL);
}

static void
test_csv_errors (void)
{
  check_csv_error ("nocol.csv", "sent0,sent1\na,b\n", STSIM_ERROR_DATA, "no column 'hard_neg'");
  check_csv_error ("fields.csv", "sent0,sent1,hard_neg\na,b,c\nd,e\n", STSIM_ERROR_DATA, ":3: 2 fields");
  check_csv_error ("utf8.csv", "sent0,sent1,hard_neg\na,b,c\nd,\xff,f\n", STSIM_ERROR_ENCODING, ":3:");
  check_csv_error ("blank.csv", "sent0,sent1,hard_neg\na,,c\n", STSIM_ERROR_DATA, ":2: an empty field");
  check_csv_error ("header.csv", "sent0,sent1,hard_neg\n", STSIM_ERROR_DATA, "no example rows");
  check_csv_error ("empty.csv", "", STSIM_ERROR_DATA, "empty file");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmpdir = g_dir_make_tmp ("stsim-test-corpus-XXXXXX", NULL);
  g_test_add_func ("/train/corpus/lines", test_lines_basic);
  g_test_add_func ("/train/corpus/invalid-utf8", test_lines_invalid_utf8);
  g_test_add_func ("/train/corpus/nul", test_lines_nul);
  g_test_add_func ("/train/corpus/empty-and-missing", test_lines_empty_and_missing);
  g_test_add_func ("/train/corpus/folder-and-glob", test_lines_folder_and_glob);
  g_test_add_func ("/train/csv/good", test_csv_good);
  g_test_add_func ("/train/csv/errors", test_csv_errors);
  int rc = g_test_run ();
  stsim_test_remove_tree (tmpdir);
  g_free (tmpdir);
  return rc;
}
