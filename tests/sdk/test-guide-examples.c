/* test-guide-examples: the C listings of docs/plugin-guide.md are real code.
 *
 * - Every ```c listing is either a whole plugin (its first line starts with
 *   a comment naming `NAME.c:`) or is preceded by `<!-- excerpt: PATH -->`,
 *   in which case it must appear word for word in PATH (repository-relative).
 *   Any other C listing fails the test.
 * - Each whole plugin is written to a temporary folder and compiled out of
 *   tree with `cc ... $(pkg-config --cflags --libs stsim)` against the build's
 *   uninstalled stsim.pc (meson-uninstalled/), with -Wall -Wextra -Werror;
 *   `stsim-inspect --plugin-path` must list every component it defines.
 * - The guide's teacher and the shipped align-uniform objective train three
 *   steps of a tiny BERT next to contrastive: the metrics line must show each
 *   objective's loss UNWEIGHTED and `loss` = Σ weight · loss.<label>, as the
 *   guide says.
 * - The guide's evaluator scores the bow encoder on a five-pair file.
 * Skipped (not failed) only when cc or pkg-config is missing.
 *
 * Arguments: SOURCE_ROOT BUILD_ROOT STSIM_INSPECT STSIM_RUN. */
#include <math.h>
#include <string.h>
#include <sys/wait.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "test-util.h"

static const char *src_root, *build_root, *inspect, *run;
static char *tmp;
static GPtrArray *wholes;  /* char *: file names of the whole plugins written into tmp */
static gboolean built;

/* ---- the listings ------------------------------------------------------------------------ */

/* The file name a whole-plugin listing gives in its first comment ("overlap.c"), else NULL. */
static char *
whole_file_name (const char *code)
{
  g_autoptr(GRegex) re = g_regex_new ("^/\\* ([a-z0-9_-]+\\.c):", 0, 0, NULL);
  g_autoptr(GMatchInfo) m = NULL;
  return g_regex_match (re, code, 0, &m) ? g_match_info_fetch (m, 1) : NULL;
}

static void
check_listing (const char *code, const char *excerpt_of, int line, guint *n_excerpts)
{
  if (excerpt_of) {
    g_autofree char *path = g_build_filename (src_root, excerpt_of, NULL), *text = NULL;
    g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
    if (!strstr (text, code))
      g_error ("docs/plugin-guide.md:%d: the listing is marked as an excerpt of %s but is not in it word for word",
               line, excerpt_of);
    (*n_excerpts)++;
    return;
  }
  char *name = whole_file_name (code);
  if (!name)
    g_error ("docs/plugin-guide.md:%d: a C listing that is neither a whole plugin (first line `/* NAME.c: ...`) "
             "nor marked `<!-- excerpt: PATH -->`", line);
  g_autofree char *path = g_build_filename (tmp, name, NULL);
  g_assert_true (g_file_set_contents (path, code, -1, NULL));
  g_ptr_array_add (wholes, name);
}

static void
test_listings (void)
{
  g_autofree char *guide = g_build_filename (src_root, "docs", "plugin-guide.md", NULL), *text = NULL;
  g_assert_true (g_file_get_contents (guide, &text, NULL, NULL));
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  g_autoptr(GString) code = NULL;
  g_autofree char *excerpt_of = NULL;
  guint n_excerpts = 0;
  int start = 0;
  for (int i = 0; lines[i]; i++) {
    const char *l = lines[i];
    if (code) {
      if (strcmp (l, "```") == 0) {
        check_listing (code->str, excerpt_of, start, &n_excerpts);
        g_string_free (g_steal_pointer (&code), TRUE);
        g_clear_pointer (&excerpt_of, g_free);
      } else
        g_string_append_printf (code, "%s\n", l);
    } else if (g_str_has_prefix (l, "<!-- excerpt: ") && g_str_has_suffix (l, " -->")) {
      g_free (excerpt_of);
      excerpt_of = g_strndup (l + strlen ("<!-- excerpt: "), strlen (l) - strlen ("<!-- excerpt: ") - strlen (" -->"));
    } else if (strcmp (l, "```c") == 0) {
      code = g_string_new (NULL);
      start = i + 2;
    } else if (*l)
      g_clear_pointer (&excerpt_of, g_free);  /* a marker belongs to the listing right after it */
  }
  g_assert_null (code);
  g_test_message ("%u whole plugins, %u excerpts", wholes->len, n_excerpts);
  g_assert_cmpuint (wholes->len, >=, 3);
  g_assert_cmpuint (n_excerpts, >=, 3);
}

/* ---- building and loading --------------------------------------------------------------- */

static int
run_argv (const char *const *argv, char **out, char **err)
{
  g_autoptr(GError) error = NULL;
  int status = -1;
  g_assert_true (g_spawn_sync (tmp, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, out, err, &status,
                               &error));
  g_assert_no_error (error);
  g_assert_true (WIFEXITED (status));
  return WEXITSTATUS (status);
}

static void
test_build (void)
{
  g_autofree char *cc = g_find_program_in_path ("cc"), *pkg_config = g_find_program_in_path ("pkg-config");
  if (!cc || !pkg_config) {
    g_test_skip ("cc or pkg-config is not installed");
    return;
  }
  g_assert_cmpuint (wholes->len, >, 0);
  g_autofree char *pc_dir = g_build_filename (build_root, "meson-uninstalled", NULL);
  g_autofree char *plugins = g_build_filename (tmp, "plugins", NULL);
  g_assert_cmpint (g_mkdir_with_parents (plugins, 0755), ==, 0);
  for (guint i = 0; i < wholes->len; i++) {
    const char *file = g_ptr_array_index (wholes, i);
    g_autofree char *stem = g_strndup (file, strlen (file) - 2);
    g_autofree char *script = g_strdup_printf (
      "PKG_CONFIG_PATH='%s' && export PKG_CONFIG_PATH && flags=$(pkg-config --cflags --libs stsim) && "
      "cc -std=c11 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Werror -O1 -shared -fPIC "
      "-fvisibility=hidden -o 'plugins/libstsim-%s.so' '%s' $flags -lm", pc_dir, stem, file);
    const char *argv[] = { "sh", "-c", script, NULL };
    g_autofree char *out = NULL, *err = NULL;
    int rc = run_argv (argv, &out, &err);
    if (rc != 0)
      g_error ("the guide's %s does not compile:\n%s%s", file, out, err);
  }
  const char *argv[] = { inspect, "--plugin-path", plugins, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_argv (argv, &out, &err), ==, 0);
  g_test_message ("%s", out);
  g_assert_nonnull (strstr (out, "0 failed"));
  g_autoptr(GRegex) names = g_regex_new ("\\.name = \"([a-z0-9-]+)\"", 0, 0, NULL);
  for (guint i = 0; i < wholes->len; i++) {
    g_autofree char *path = g_build_filename (tmp, g_ptr_array_index (wholes, i), NULL), *code = NULL;
    g_assert_true (g_file_get_contents (path, &code, NULL, NULL));
    g_autoptr(GMatchInfo) m = NULL;
    guint n = 0;
    for (g_regex_match (names, code, 0, &m); g_match_info_matches (m); g_match_info_next (m, NULL), n++) {
      g_autofree char *name = g_match_info_fetch (m, 1);
      g_autofree char *row = g_strdup_printf (" %s ", name);
      if (!strstr (out, row))
        g_error ("stsim-inspect does not list %s of the guide's %s", name, (char *) g_ptr_array_index (wholes, i));
    }
    g_assert_cmpuint (n, >, 0);
  }
  built = TRUE;
}

/* ---- running them ------------------------------------------------------------------------ */

static char *
write_file (const char *name, const char *text)
{
  char *path = g_build_filename (tmp, name, NULL);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

static int
stsim_run (const char *recipe)
{
  g_autofree char *plugins = g_build_filename (tmp, "plugins", NULL), *out = NULL, *err = NULL;
  const char *argv[] = { run, "--plugin-path", plugins, recipe, NULL };
  int rc = run_argv (argv, &out, &err);
  if (rc != 0)
    g_test_message ("stsim-run %s:\n%s%s", recipe, out, err);
  return rc;
}

static double
member (JsonObject *o, const char *name)
{
  g_assert_true (json_object_has_member (o, name));
  return json_object_get_double_member (o, name);
}

static void
test_train (void)
{
  if (!built) {
    g_test_skip ("the guide's plugins were not built");
    return;
  }
  g_autofree char *corpus = g_build_filename (src_root, "tests", "train", "data", "small-corpus.txt", NULL);
  g_autofree char *model = g_build_filename (src_root, "tests", "fixtures", "models", "bert-tiny", NULL);
  g_autofree char *out = g_build_filename (tmp, "train-run", NULL);
  g_autofree char *text = g_strdup_printf (
    "[run]\nseed = 42\nthreads = 1\noutput = %s\n"
    "[train]\ncorpus = %s\nbatch_size = 8\nsteps = 3\nlr = 1e-3\neval_every = 0\ntest = false\nlog_every = 1\n"
    "[encoder]\nuse = bert\nmodel = %s\nmlp_init = random\n"
    "[objective.contrastive]\nuse = contrastive\n"
    "[objective.rank]\nuse = rank-distill\nteachers = teacher.words\n"
    "[teacher.words]\nuse = word-overlap\nmin_chars = 3\n"
    "[objective.au]\nuse = align-uniform\nweight = 0.1\n", out, corpus, model);
  g_autofree char *recipe = write_file ("train.ini", text);
  g_assert_cmpint (stsim_run (recipe), ==, 0);

  g_autofree char *metrics = g_build_filename (out, "metrics.jsonl", NULL), *lines = NULL;
  g_assert_true (g_file_get_contents (metrics, &lines, NULL, NULL));
  g_auto (GStrv) rows = g_strsplit (g_strstrip (lines), "\n", -1);
  guint n_train = 0;
  for (guint i = 0; rows[i]; i++) {
    g_autoptr(JsonParser) p = json_parser_new ();
    g_assert_true (json_parser_load_from_data (p, rows[i], -1, NULL));
    JsonObject *o = json_node_get_object (json_parser_get_root (p));
    if (g_strcmp0 (json_object_get_string_member_with_default (o, "type", ""), "train") != 0)
      continue;
    n_train++;
    double c = member (o, "loss.objective.contrastive"), r = member (o, "loss.objective.rank");
    double au = member (o, "loss.objective.au"), total = member (o, "loss");
    double align = member (o, "objective.au.align"), unif = member (o, "objective.au.uniform");
    g_test_message ("step %g: loss %.6f = %.6f + %.6f + 0.1 * %.6f", member (o, "step"), total, c, r, au);
    /* loss.<label> is before the weight; the total is weighted. */
    g_assert_cmpfloat (fabs (total - (c + r + 0.1 * au)), <=, 1e-5 * MAX (1.0, fabs (total)));
    g_assert_cmpfloat (fabs (au - (align + unif)), <=, 1e-5);
    g_assert_true (isfinite (member (o, "objective.rank.top1_agreement")));
  }
  g_assert_cmpuint (n_train, ==, 3);
}

static void
test_evaluate (void)
{
  if (!built) {
    g_test_skip ("the guide's plugins were not built");
    return;
  }
  g_autofree char *pairs = write_file ("pairs.tsv", "a man plays a guitar\ta man is playing a guitar\t4.6\n"
                                                    "a dog runs in the park\tthe stock market fell\t0.2\n"
                                                    "a woman cooks dinner\ta woman is cooking food\t4.0\n"
                                                    "kids play football\tchildren are playing football\t3.8\n"
                                                    "it rains today\tthe sun shines brightly\t0.5\n");
  g_autofree char *out = g_build_filename (tmp, "eval-run", NULL);
  g_autofree char *text = g_strdup_printf ("[run]\noutput = %s\n[encoder]\nuse = bow\n"
                                           "[evaluator.pairs]\nuse = pairs-tsv\nfile = %s\n", out, pairs);
  g_autofree char *recipe = write_file ("eval.ini", text);
  g_assert_cmpint (stsim_run (recipe), ==, 0);
  g_autofree char *results = g_build_filename (out, "results.json", NULL);
  g_autoptr(JsonParser) p = json_parser_new ();
  g_assert_true (json_parser_load_from_file (p, results, NULL));
  JsonObject *table = json_object_get_object_member (json_node_get_object (json_parser_get_root (p)), "table");
  double rho = member (table, "pairs");
  g_test_message ("pairs-tsv on bow: %.2f", rho);
  /* Word overlap orders these five pairs almost as the gold does. */
  g_assert_cmpfloat (rho, >, 50);
  g_assert_cmpfloat (rho, <=, 100);

  /* A malformed file is an error naming file:line, not a crash. */
  g_autofree char *bad = write_file ("bad.tsv", "one\ttwo\t1\nonly one field\n");
  g_autofree char *bad_text = g_strdup_printf ("[run]\noutput = %s\n[encoder]\nuse = bow\n"
                                               "[evaluator.pairs]\nuse = pairs-tsv\nfile = %s\n", out, bad);
  g_autofree char *bad_recipe = write_file ("bad.ini", bad_text);
  g_assert_cmpint (stsim_run (bad_recipe), ==, 1);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc < 5) {
    g_printerr ("usage: test-guide-examples SOURCE_ROOT BUILD_ROOT STSIM_INSPECT STSIM_RUN\n");
    return 2;
  }
  src_root = argv[1];
  build_root = argv[2];
  inspect = argv[3];
  run = argv[4];
  tmp = g_dir_make_tmp ("stsim-guide-XXXXXX", NULL);
  g_assert_nonnull (tmp);
  wholes = g_ptr_array_new_with_free_func (g_free);
  g_test_add_func ("/guide/listings", test_listings);
  g_test_add_func ("/guide/build", test_build);
  g_test_add_func ("/guide/train", test_train);
  g_test_add_func ("/guide/evaluate", test_evaluate);
  int rc = g_test_run ();
  stsim_test_remove_tree (tmp);
  g_free (tmp);
  g_ptr_array_unref (wholes);
  return rc;
}
