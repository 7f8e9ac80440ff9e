/* test-encode-tool.c: stsim-encode end to end (its path is argv[1]): text
 * and .npy output equal to stsim_model_encode, line splitting on '\n' only,
 * invalid UTF-8 named by line, usage errors with status 2. */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <unistd.h>
#include "model-test-util.h"
#include "test-util.h"
#include "test-util-model.h"

static const char *tool;

typedef struct {
  int    status;
  char  *out;
  gsize  out_len;
  char  *err;
} Run;

static void
run_clear (Run *r)
{
  g_free (r->out);
  g_free (r->err);
}

/* Runs the tool with @args (NULL-terminated) and @input on stdin. */
static Run
run (const char *input, gsize input_len, const char *const *args)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) tool);
  for (const char *const *a = args; *a; a++)
    g_ptr_array_add (argv, (gpointer) *a);
  g_ptr_array_add (argv, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) p = g_subprocess_newv ((const char *const *) argv->pdata,
                                                G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                                | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
  g_assert_no_error (error);
  g_autoptr(GBytes) in = g_bytes_new (input, input_len);
  g_autoptr(GBytes) out = NULL, err = NULL;
  g_assert_true (g_subprocess_communicate (p, in, NULL, &out, &err, &error));
  g_assert_no_error (error);
  Run r = { 0 };
  r.status = g_subprocess_get_if_exited (p) ? g_subprocess_get_exit_status (p) : -1;
  /* Empty GBytes may have NULL data. */
  r.out = g_bytes_get_size (out) ? g_strndup (g_bytes_get_data (out, NULL), g_bytes_get_size (out)) : g_strdup ("");
  r.out_len = g_bytes_get_size (out);
  r.err = g_bytes_get_size (err) ? g_strndup (g_bytes_get_data (err, NULL), g_bytes_get_size (err)) : g_strdup ("");
  return r;
}

/* Lines: "a\r" keeps its '\r', an empty line counts, the last has no '\n'. */
static const char input[] = "the man is in the house.\n\nhe was in it\r\na man";
static const char *const lines[] = { "the man is in the house.", "", "he was in it\r", "a man" };

static float *
expected (const char *fixture, StsimPooler pooler)
{
  g_autofree char *dir = fixture_dir (fixture);
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimModel) m = stsim_model_load (dir, STSIM_MODEL_FROZEN | STSIM_MODEL_POOLER, 0, &error);
  g_assert_no_error (error);
  float *x = g_new (float, 4 * 64);
  g_assert_true (stsim_model_encode (m, lines, 4, pooler, 0, x, &error));
  g_assert_no_error (error);
  return x;
}

static void
test_text (void)
{
  g_autofree char *dir = fixture_dir ("bert-tiny");
  g_autofree float *want = expected ("bert-tiny", STSIM_POOL_AVG);
  Run r = run (input, strlen (input), (const char *[]) { "--model", dir, "--pooler", "avg", "--batch", "64", NULL });
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  g_auto(GStrv) rows = g_strsplit (r.out, "\n", -1);
  g_assert_cmpuint (g_strv_length (rows), ==, 5);   /* 4 lines + "" after the last '\n' */
  g_assert_cmpstr (rows[4], ==, "");
  for (int i = 0; i < 4; i++) {
    g_auto(GStrv) cols = g_strsplit (rows[i], " ", -1);
    g_assert_cmpuint (g_strv_length (cols), ==, 64);
    for (int j = 0; j < 64; j++) {
      char *end;
      float v = (float) g_ascii_strtod (cols[j], &end);
      g_assert_true (*end == '\0');
      /* %.9g gives back the exact float. */
      g_assert_cmpmem (&v, 4, &want[i * 64 + j], 4);
    }
  }
  run_clear (&r);
}

static void
test_npy (void)
{
  g_autofree char *dir = fixture_dir ("roberta-tiny");
  g_autofree float *want = expected ("roberta-tiny", STSIM_POOL_CLS);
  g_autofree char *tmp = make_tmp_dir ();
  g_autofree char *npy = g_build_filename (tmp, "emb.npy", NULL);
  Run r = run (input, strlen (input), (const char *[]) { "--model", dir, "--pooler", "cls", "--npy", npy, NULL });
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.out, ==, "");
  g_autofree char *data = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (npy, &data, &len, NULL));
  g_assert_cmpmem (data, 8, "\x93NUMPY\x01\x00", 8);
  gsize hlen = (guchar) data[8] | ((gsize) (guchar) data[9] << 8);
  g_assert_cmpuint ((10 + hlen) % 64, ==, 0);
  g_autofree char *header = g_strndup (data + 10, hlen);
  g_assert_true (g_str_has_prefix (header, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 64), }"));
  g_assert_true (g_str_has_suffix (header, "\n"));
  g_assert_cmpuint (len, ==, 10 + hlen + 4 * 64 * 4);
  g_assert_cmpmem (data + 10 + hlen, 4 * 64 * 4, want, 4 * 64 * 4);
  run_clear (&r);

  /* No input: a (0, 64) array. */
  r = run ("", 0, (const char *[]) { "--model", dir, "--npy", npy, NULL });
  g_assert_cmpint (r.status, ==, 0);
  g_free (data);
  g_assert_true (g_file_get_contents (npy, &data, &len, NULL));
  g_assert_nonnull (strstr (data + 10, "'shape': (0, 64)"));
  run_clear (&r);
  rm_tree (tmp);
}

static void
test_errors (void)
{
  g_autofree char *bert = fixture_dir ("bert-tiny");
  g_autofree char *distil = fixture_dir ("distilbert-tiny");
  static const char bad_utf8[] = "fine\nnot \xc3\x28 fine\n";
  Run r = run (bad_utf8, strlen (bad_utf8), (const char *[]) { "--model", bert, NULL });
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "<stdin>:2"));
  g_assert_nonnull (strstr (r.err, "UTF-8"));
  g_assert_cmpstr (r.out, ==, "");
  g_test_message ("%s", r.err);
  run_clear (&r);

  r = run ("a\n", 2, (const char *[]) { "--model", distil, "--pooler", "cls", NULL });
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "pooler.dense"));
  g_test_message ("%s", r.err);
  run_clear (&r);

  r = run ("a\n", 2, (const char *[]) { "--model", "/nonexistent/model", NULL });
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "/nonexistent/model"));
  run_clear (&r);

  GString *longer = g_string_new ("short\n");
  for (int i = 0; i < 80; i++)
    g_string_append (longer, "the ");
  g_string_append (longer, "\n");
  r = run (longer->str, longer->len, (const char *[]) { "--model", bert, NULL });
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "<stdin>:2"));
  g_test_message ("%s", r.err);
  run_clear (&r);
  r = run (longer->str, longer->len, (const char *[]) { "--model", bert, "--max-len", "32", NULL });
  g_assert_cmpint (r.status, ==, 0);
  run_clear (&r);
  g_string_free (longer, TRUE);

  const char *const *usage[] = {
    (const char *[]) { NULL },
    (const char *[]) { "--model", bert, "--pooler", "first", NULL },
    (const char *[]) { "--model", bert, "--batch", "0", NULL },
    (const char *[]) { "--model", bert, "--max-len", "1", NULL },
    (const char *[]) { "--model", bert, "extra", NULL },
    (const char *[]) { "--bogus", NULL },
  };
  for (guint i = 0; i < G_N_ELEMENTS (usage); i++) {
    r = run ("a\n", 2, usage[i]);
    g_assert_cmpint (r.status, ==, 2);
    g_assert_cmpstr (r.out, ==, "");
    g_assert_cmpstr (r.err, !=, "");
    run_clear (&r);
  }
}

/* Finite but huge weights overflow to NaN: exit 1 naming the line, no -nan printed. */
static void
test_non_finite (void)
{
  g_autofree char *bert = fixture_dir ("bert-tiny");
  g_autofree char *tmp = make_tmp_dir ();
  g_autofree char *model = g_build_filename (tmp, "huge", NULL);
  stsim_test_make_overflowing_model (bert, model);
  Run r = run ("a man\n", 6, (const char *[]) { "--model", model, "--pooler", "avg", NULL });
  g_test_message ("%s", r.err);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "<stdin>:1"));
  g_assert_nonnull (strstr (r.err, "non-finite"));
  g_assert_null (strstr (r.out, "nan"));
  run_clear (&r);
  stsim_test_remove_tree (tmp);
}

/* An endless or oversized standard input: a clear error, not unbounded memory. */
static void
test_input_limits (void)
{
  g_autofree char *bert = fixture_dir ("bert-tiny");
  /* A 1 MiB + 1 line with no newline (what /dev/zero looks like, NULs aside). */
  gsize n = (1 << 20) + 1;
  g_autofree char *big = g_malloc (n);
  memset (big, 'a', n);
  /* From a file, not a pipe: the tool stops reading once the line is too
   * long, and a pipe's writer would then race it for SIGPIPE. */
  g_autofree char *path = NULL;
  int fd = g_file_open_tmp ("stsim-encode-big-XXXXXX", &path, NULL);
  g_assert_cmpint (fd, >=, 0);
  close (fd);
  g_assert_true (g_file_set_contents (path, big, n, NULL));
  g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_PIPE
                                                                | G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_subprocess_launcher_set_stdin_file_path (l, path);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) p = g_subprocess_launcher_spawn (l, &error, tool, "--model", bert, NULL);
  g_assert_no_error (error);
  g_autofree char *err = NULL;
  g_assert_true (g_subprocess_communicate_utf8 (p, NULL, NULL, NULL, &err, &error));
  g_assert_no_error (error);
  g_unlink (path);
  Run r = { .status = g_subprocess_get_if_exited (p) ? g_subprocess_get_exit_status (p) : -1,
            .out = g_strdup (""), .err = g_steal_pointer (&err) };
  g_test_message ("%s", r.err);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "<stdin>:1: line longer than 1 MiB"));
  run_clear (&r);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc < 2)
    g_error ("usage: %s PATH-TO-stsim-encode", argv[0]);
  tool = argv[1];
  g_test_add_func ("/encoders/tool/text", test_text);
  g_test_add_func ("/encoders/tool/npy", test_npy);
  g_test_add_func ("/encoders/tool/errors", test_errors);
  g_test_add_func ("/encoders/tool/non-finite", test_non_finite);
  g_test_add_func ("/encoders/tool/input-limits", test_input_limits);
  return g_test_run ();
}
