/* stsim-inspect and stsim-run as a user runs them: exit codes (0 success,
 * 1 invalid input, 2 usage error), what they print and what they write.
 * Tool paths come from STSIM_INSPECT / STSIM_RUN (set by meson). */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/wait.h>
#include "test-util.h"

typedef struct {
  char *tmp;      /* working directory of the tools */
  char *out;      /* stdout of the last run */
  char *err;      /* stderr of the last run */
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->tmp = g_dir_make_tmp ("stsim-tools-XXXXXX", NULL);
  g_assert_nonnull (f->tmp);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  stsim_test_remove_tree (f->tmp);
  g_free (f->tmp);
  g_free (f->out);
  g_free (f->err);
}

static char *
plugin_dir (const char *sub)
{
  return g_build_filename (g_getenv ("STSIM_TEST_PLUGIN_DIR"), sub, NULL);
}

/* Runs @tool (STSIM_INSPECT or STSIM_RUN) with NULL-terminated arguments in
 * f->tmp, with the test plugins on the path; returns its exit status. */
static int
run (Fixture *f, const char *tool, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *good = plugin_dir ("good");
  g_auto(GStrv) env = g_get_environ ();
  g_autoptr(GError) error = NULL;
  const char *path = g_getenv (tool);
  const char *arg;
  int status = -1;
  va_list ap;

  g_assert_nonnull (path);
  g_ptr_array_add (argv, (gpointer) path);
  va_start (ap, tool);
  while ((arg = va_arg (ap, const char *)))
    g_ptr_array_add (argv, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  env = g_environ_setenv (env, "STSIM_PLUGIN_PATH", good, TRUE);
  env = g_environ_setenv (env, "STSIM_PLUGIN_SYSTEM_PATH", "", TRUE);

  g_clear_pointer (&f->out, g_free);
  g_clear_pointer (&f->err, g_free);
  g_assert_true (g_spawn_sync (f->tmp, (char **) argv->pdata, env, G_SPAWN_DEFAULT, NULL, NULL, &f->out, &f->err,
                               &status, &error));
  g_assert_no_error (error);
  g_assert_true (WIFEXITED (status));  /* never a crash */
  g_test_message ("%s -> %d\nstdout:\n%s\nstderr:\n%s", path, WEXITSTATUS (status), f->out, f->err);
  return WEXITSTATUS (status);
}

static char *
write_file (Fixture *f, const char *name, const char *text)
{
  char *path = g_build_filename (f->tmp, name, NULL);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

#define assert_contains(haystack, needle) \
  G_STMT_START { \
    if (!strstr ((haystack), (needle))) \
      g_error ("expected '%s' in:\n%s", (needle), (haystack)); \
  } G_STMT_END

static const char eval_recipe[] =
  "[run]\n"
  "output = out\n"
  "[encoder]\n"
  "use = test-hash\n"
  "dim = 64\n"
  "[evaluator.e]\n"
  "use = test-eval\n"
  "tag = quick\n";

/* ---- stsim-inspect ---------------------------------------------------------------------- */

static void
test_inspect_list (Fixture *f, gconstpointer data)
{
  g_assert_cmpint (run (f, "STSIM_INSPECT", NULL), ==, 0);
  assert_contains (f->out, "KIND");
  assert_contains (f->out, "encoder    test-hash");
  assert_contains (f->out, "test-good");
  assert_contains (f->out, "1.2.3");
  assert_contains (f->out, "libstsim-test-good.so");
  assert_contains (f->out, " 0 failed\n");
  g_assert_true (g_regex_match_simple ("\\n\\d+ plugins, \\d+ components, 0 failed\\n$", f->out, 0, 0));

  g_assert_cmpint (run (f, "STSIM_INSPECT", "--kind", "teacher", NULL), ==, 0);
  assert_contains (f->out, "teacher  test-teacher");
  g_assert_null (strstr (f->out, "test-hash"));
}

static void
test_inspect_name (Fixture *f, gconstpointer data)
{
  g_assert_cmpint (run (f, "STSIM_INSPECT", "encoder/test-hash", NULL), ==, 0);
  assert_contains (f->out, "encoder test-hash: hashed bag of words (tests only)");
  assert_contains (f->out, "plugin     test-good 1.2.3");
  assert_contains (f->out, "license    MIT");
  assert_contains (f->out, "citation   (none)");
  assert_contains (f->out, "Parameters:");
  g_assert_true (g_regex_match_simple ("\\n  dim +int +8 +\\[1, 1024\\] +vector size\\n", f->out, 0, 0));
  g_assert_true (g_regex_match_simple ("\\n  pooling +enum +mean +mean\\|sum\\|max", f->out, 0, 0));
  assert_contains (f->out, "(1 expert parameter hidden; --all shows them)");
  g_assert_null (strstr (f->out, "salt"));
  assert_contains (f->out, "Minimal recipe section:\n  [encoder]\n  use = test-hash\n");

  g_assert_cmpint (run (f, "STSIM_INSPECT", "--all", "--kind", "encoder", "test-hash", NULL), ==, 0);
  g_assert_true (g_regex_match_simple ("\\n  salt +int +0 +expert +hash salt\\n", f->out, 0, 0));

  /* Required keys get placeholders in the minimal section. */
  g_assert_cmpint (run (f, "STSIM_INSPECT", "test-teacher", NULL), ==, 0);
  assert_contains (f->out, "  [teacher]\n  use = test-teacher\n  encoder = encoder.LABEL\n");
  g_assert_cmpint (run (f, "STSIM_INSPECT", "test-eval", NULL), ==, 0);
  assert_contains (f->out, "  tag = <string>\n");
}

static void
test_inspect_not_found (Fixture *f, gconstpointer data)
{
  g_assert_cmpint (run (f, "STSIM_INSPECT", "test-hsh", NULL), ==, 1);
  assert_contains (f->err, "stsim-inspect: no component named 'test-hsh' (did you mean 'test-hash'?)");
  /* test-other's evaluator is also called test-hash. */
  g_assert_cmpint (run (f, "STSIM_INSPECT", "test-hash", NULL), ==, 1);
  assert_contains (f->err, "'test-hash' is ambiguous; say which: encoder/test-hash, evaluator/test-hash");
}

static void
test_inspect_json (Fixture *f, gconstpointer data)
{
  g_autoptr(JsonParser) p = json_parser_new ();
  JsonObject *o;
  JsonArray *a;
  gboolean found = FALSE;

  g_assert_cmpint (run (f, "STSIM_INSPECT", "--json", NULL), ==, 0);
  g_assert_true (json_parser_load_from_data (p, f->out, -1, NULL));
  o = json_node_get_object (json_parser_get_root (p));
  a = json_object_get_array_member (o, "components");
  for (guint i = 0; i < json_array_get_length (a); i++) {
    JsonObject *c = json_array_get_object_element (a, i);
    if (g_str_equal (json_object_get_string_member (c, "name"), "test-teacher")) {
      found = TRUE;
      g_assert_cmpstr (json_object_get_string_member (c, "kind"), ==, "teacher");
      g_assert_cmpstr (json_object_get_string_member (c, "plugin"), ==, "test-good");
    }
  }
  g_assert_true (found);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (o, "failures")), ==, 0);

  g_assert_cmpint (run (f, "STSIM_INSPECT", "--json", "encoder/test-hash", NULL), ==, 0);
  g_assert_true (json_parser_load_from_data (p, f->out, -1, NULL));
  o = json_node_get_object (json_parser_get_root (p));
  g_assert_cmpstr (json_object_get_string_member (o, "kind"), ==, "encoder");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (o, "plugin"), "version"), ==, "1.2.3");
  a = json_object_get_array_member (o, "params");
  g_assert_cmpuint (json_array_get_length (a), ==, 8);  /* expert ones included */
  o = json_array_get_object_element (a, 0);
  g_assert_cmpstr (json_object_get_string_member (o, "name"), ==, "dim");
  g_assert_cmpstr (json_object_get_string_member (o, "type"), ==, "int");
  g_assert_cmpstr (json_object_get_string_member (o, "default"), ==, "8");
  g_assert_cmpfloat (json_object_get_double_member (o, "max"), ==, 1024);
}

static void
test_inspect_failed (Fixture *f, gconstpointer data)
{
  g_autofree char *bad = plugin_dir ("bad");

  g_assert_cmpint (run (f, "STSIM_INSPECT", "--plugin-path", bad, NULL), ==, 0);
  assert_contains (f->out, " failed (see --failed)\n");
  g_assert_cmpint (run (f, "STSIM_INSPECT", "--plugin-path", bad, "--failed", NULL), ==, 0);
  assert_contains (f->out, "libstsim-test-abi.so\n  stage:  abi\n  reason: built for plugin ABI 99.0");
  assert_contains (f->out, "libstsim-test-not-elf.so\n  stage:  open\n");
  assert_contains (f->out, "libstsim-test-no-symbol.so\n  stage:  symbol\n");
  assert_contains (f->out, "libstsim-test-missing-op.so\n  stage:  validate\n");
  g_assert_cmpint (run (f, "STSIM_INSPECT", "--plugin-path", bad, "--failed", "--json", NULL), ==, 0);
  assert_contains (f->out, "\"stage\" : \"abi\"");
  /* A component of a rejected plugin is not found, and the tool says why to look. */
  g_assert_cmpint (run (f, "STSIM_INSPECT", "--plugin-path", bad, "twin", NULL), ==, 1);
  assert_contains (f->err, "failed to load; 'stsim-inspect --failed' says why");
}

static void
test_inspect_usage (Fixture *f, gconstpointer data)
{
  g_assert_cmpint (run (f, "STSIM_INSPECT", "--bogus", NULL), ==, 2);
  assert_contains (f->err, "Try 'stsim-inspect --help'");
  g_assert_cmpint (run (f, "STSIM_INSPECT", "a", "b", NULL), ==, 2);
  g_assert_cmpint (run (f, "STSIM_INSPECT", "--kind", "encodr", NULL), ==, 2);
  assert_contains (f->err, "--kind: unknown kind 'encodr'");
  g_assert_cmpint (run (f, "STSIM_INSPECT", "--set", "a.b=c", NULL), ==, 2);
  g_assert_cmpint (run (f, "STSIM_INSPECT", "--failed", "test-eval", NULL), ==, 2);
  g_assert_cmpint (run (f, "STSIM_INSPECT", "--kind", NULL), ==, 2);
  g_assert_cmpint (run (f, "STSIM_INSPECT", "--help", NULL), ==, 0);
  assert_contains (f->out, "--recipe");
}

static void
test_inspect_recipe (Fixture *f, gconstpointer data)
{
  g_autofree char *good = write_file (f, "good.ini", eval_recipe);
  g_autofree char *bad = write_file (f, "bad.ini", "[encoder]\nuse = test-hash\ndim = 0\n\n[evaluatr]\nuse = x\n");

  g_assert_cmpint (run (f, "STSIM_INSPECT", "--recipe", good, NULL), ==, 0);
  g_assert_true (g_str_has_prefix (f->out, "# Resolved recipe"));
  assert_contains (f->out, "\n[run]\nname = good\n");
  assert_contains (f->out, "\n[encoder]\nuse = test-hash\nenabled = true\ndim = 64\n");

  g_assert_cmpint (run (f, "STSIM_INSPECT", "--recipe", bad, NULL), ==, 1);
  assert_contains (f->err, "stsim-inspect: 2 errors:\n");
  assert_contains (f->err, "bad.ini:3: [encoder] dim: 0 is outside [1, 1024]\n");
  assert_contains (f->err, "bad.ini:5: [evaluatr] unknown section kind 'evaluatr' (did you mean 'evaluator'?)");

  g_assert_cmpint (run (f, "STSIM_INSPECT", "--recipe", good, "--set", "encoder.dim=2000", NULL), ==, 1);
  assert_contains (f->err, "[encoder] dim: 2000 is outside [1, 1024] (from --set)");
  g_assert_cmpint (run (f, "STSIM_INSPECT", "--recipe", good, "--set", "encoder.dim=32", NULL), ==, 0);
  assert_contains (f->out, "\ndim = 32\n");

  g_assert_cmpint (run (f, "STSIM_INSPECT", "--recipe", "no-such.ini", NULL), ==, 1);
  assert_contains (f->err, "cannot read recipe");
}

/* ---- stsim-run ------------------------------------------------------------------------------ */

static void
test_run_usage (Fixture *f, gconstpointer data)
{
  g_assert_cmpint (run (f, "STSIM_RUN", NULL), ==, 2);
  assert_contains (f->err, "expected exactly one RECIPE");
  g_assert_cmpint (run (f, "STSIM_RUN", "a.ini", "b.ini", NULL), ==, 2);
  g_assert_cmpint (run (f, "STSIM_RUN", "--frobnicate", "a.ini", NULL), ==, 2);
  g_assert_cmpint (run (f, "STSIM_RUN", "a.ini", "--set", NULL), ==, 2);
}

static void
test_run_invalid (Fixture *f, gconstpointer data)
{
  g_autofree char *bad = write_file (f, "bad.ini", "[run]\noutput = out\n[encoder]\nuse = test-hash\nscale = lots\n");
  g_autofree char *out = g_build_filename (f->tmp, "out", NULL);
  g_autofree char *good = write_file (f, "good.ini", eval_recipe);

  g_assert_cmpint (run (f, "STSIM_RUN", "missing.ini", NULL), ==, 1);
  g_assert_cmpint (run (f, "STSIM_RUN", bad, NULL), ==, 1);
  assert_contains (f->err, "bad.ini:5: [encoder] value 'lots' for scale is not a number");
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));  /* nothing written */
  g_assert_cmpint (run (f, "STSIM_RUN", good, "--set", "evaluator.e.scale=-1", NULL), ==, 1);
  assert_contains (f->err, "[evaluator.e] scale: -1 is outside [0, 1000] (from --set)");
  g_assert_cmpint (run (f, "STSIM_RUN", good, "--set", "garbage", NULL), ==, 1);
  assert_contains (f->err, "--set 'garbage': expected SECTION.KEY=VALUE");
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
}

static void
test_run_dry (Fixture *f, gconstpointer data)
{
  g_autofree char *good = write_file (f, "good.ini", eval_recipe);
  g_autofree char *out = g_build_filename (f->tmp, "out", NULL);

  g_assert_cmpint (run (f, "STSIM_RUN", "--dry-run", good, NULL), ==, 0);
  assert_contains (f->out, "Plan (2 components, in creation order):\n  1. [encoder] test-hash (plugin test-good 1.2.3)\n"
                           "       dim = 64\n");
  assert_contains (f->out, "  2. [evaluator.e] test-eval (plugin test-good 1.2.3)\n       tag = quick\n");
  assert_contains (f->out, "dry run: nothing created, nothing written");
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
}

static void
test_run_evaluate (Fixture *f, gconstpointer data)
{
  g_autofree char *good = write_file (f, "good.ini", eval_recipe);
  g_autofree char *resolved = g_build_filename (f->tmp, "out", "resolved.ini", NULL);
  g_autofree char *results = g_build_filename (f->tmp, "out", "results.json", NULL);
  g_autofree char *text = NULL, *again = NULL;
  g_autoptr(JsonParser) p = json_parser_new ();
  JsonObject *o;

  g_assert_cmpint (run (f, "STSIM_RUN", good, NULL), ==, 0);
  /* The table: names, then values with two decimals; pair3 is two equal sentences. */
  g_assert_true (g_regex_match_simple ("\\n  pair1  pair2   pair3    avg\\n +\\d+\\.\\d\\d +\\d+\\.\\d\\d +100\\.00 +"
                                       "\\d+\\.\\d\\d\\n", f->out, 0, 0));
  assert_contains (f->out, "wrote out/resolved.ini");
  assert_contains (f->out, "wrote out/results.json");

  g_assert_true (json_parser_load_from_file (p, results, NULL));
  o = json_node_get_object (json_parser_get_root (p));
  g_assert_cmpstr (json_object_get_string_member (o, "tag"), ==, "quick");
  g_assert_cmpstr (json_object_get_string_member (o, "mode"), ==, "test");
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (json_object_get_object_member (o, "table"), "pair3"),
                                  100, 1e-4);

  /* resolved.ini validates and resolves to itself. */
  g_assert_true (g_file_get_contents (resolved, &text, NULL, NULL));
  g_assert_cmpint (run (f, "STSIM_INSPECT", "--recipe", resolved, NULL), ==, 0);
  g_assert_cmpstr (f->out, ==, text);
  /* Running again overwrites, still 0. */
  g_assert_cmpint (run (f, "STSIM_RUN", good, NULL), ==, 0);
}

static void
test_run_two_evaluators (Fixture *f, gconstpointer data)
{
  g_autofree char *good = write_file (f, "two.ini", "[encoder]\nuse = test-hash\n"
                                                    "[evaluator.a]\nuse = test-eval\ntag = a\n"
                                                    "[evaluator.b]\nuse = test-eval\ntag = b\nscale = 1\n");
  g_autofree char *results = g_build_filename (f->tmp, "runs", "two", "results.json", NULL);
  g_autoptr(JsonParser) p = json_parser_new ();
  JsonObject *o;

  g_assert_cmpint (run (f, "STSIM_RUN", good, NULL), ==, 0);
  g_assert_true (json_parser_load_from_file (p, results, NULL));
  o = json_node_get_object (json_parser_get_root (p));
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (o, "evaluator.a"), "tag"), ==, "a");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (o, "evaluator.b"), "tag"), ==, "b");
}

static void
test_run_no_evaluation (Fixture *f, gconstpointer data)
{
  g_autofree char *r = write_file (f, "train.ini", "[encoder]\nuse = test-hash\n"
                                                   "[teacher]\nuse = test-teacher\nencoder = encoder\n"
                                                   "[objective]\nuse = test-objective\nteachers = teacher\n");
  g_autofree char *two = write_file (f, "twoenc.ini", "[encoder.a]\nuse = test-hash\n[encoder.b]\nuse = test-hash\n"
                                                      "[evaluator]\nuse = test-eval\ntag = t\n");

  /* Objectives mean training, and training needs a neural encoder. */
  g_assert_cmpint (run (f, "STSIM_RUN", r, NULL), ==, 1);
  assert_contains (f->err, "no trainable network");
  /* An evaluation needs to know which encoder: exactly one. */
  g_assert_cmpint (run (f, "STSIM_RUN", two, NULL), ==, 1);
  assert_contains (f->err, "exactly one enabled encoder; this recipe has 2");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/tools/inspect/list", test_inspect_list);
  ADD ("/tools/inspect/name", test_inspect_name);
  ADD ("/tools/inspect/not-found", test_inspect_not_found);
  ADD ("/tools/inspect/json", test_inspect_json);
  ADD ("/tools/inspect/failed", test_inspect_failed);
  ADD ("/tools/inspect/usage", test_inspect_usage);
  ADD ("/tools/inspect/recipe", test_inspect_recipe);
  ADD ("/tools/run/usage", test_run_usage);
  ADD ("/tools/run/invalid", test_run_invalid);
  ADD ("/tools/run/dry-run", test_run_dry);
  ADD ("/tools/run/evaluate", test_run_evaluate);
  ADD ("/tools/run/two-evaluators", test_run_two_evaluators);
  ADD ("/tools/run/no-evaluation", test_run_no_evaluation);
  return g_test_run ();
}
