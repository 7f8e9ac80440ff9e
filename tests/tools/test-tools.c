/* stsim-inspect and stsim-run as a user runs them: exit codes (0 success,
 * 1 invalid input, 2 usage error), what they print and what they write.
 * Tool paths come from STSIM_INSPECT / STSIM_RUN (set by meson). */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
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

/* The core sections, shown from their parameter tables like a component. */
static void
test_inspect_core_sections (Fixture *f, gconstpointer data)
{
  g_autoptr(JsonParser) p = json_parser_new ();
  JsonObject *o;
  JsonArray *a;
  gboolean keep_state = FALSE;

  g_assert_cmpint (run (f, "STSIM_INSPECT", "train", NULL), ==, 0);
  assert_contains (f->out, "core section [train]");
  g_assert_true (g_regex_match_simple ("\\n  keep_state +enum +last +last\\|none +resume state", f->out, 0, 0));
  g_assert_true (g_regex_match_simple ("\\n  save_best +bool +true +write the best", f->out, 0, 0));
  g_assert_true (g_regex_match_simple ("\\n  pooler +enum +- +cls\\|avg\\|avg_first_last\\|avg_top2 +deprecated ",
                                       f->out, 0, 0));
  assert_contains (f->out, "expert parameters hidden; --all shows them)");
  assert_contains (f->out, "Minimal recipe section:\n  [train]\n");
  g_assert_cmpint (run (f, "STSIM_INSPECT", "--all", "train", NULL), ==, 0);
  assert_contains (f->out, "\n  debug_nan_steps ");

  g_assert_cmpint (run (f, "STSIM_INSPECT", "run", NULL), ==, 0);
  assert_contains (f->out, "core section [run]");
  g_assert_true (g_regex_match_simple ("\\n  seed +int +42 +\\[0, 4294967295\\] ", f->out, 0, 0));
  g_assert_true (g_regex_match_simple ("\\n  include +path +- ", f->out, 0, 0));

  g_assert_cmpint (run (f, "STSIM_INSPECT", "--json", "train", NULL), ==, 0);
  g_assert_true (json_parser_load_from_data (p, f->out, -1, NULL));
  o = json_node_get_object (json_parser_get_root (p));
  g_assert_cmpstr (json_object_get_string_member (o, "kind"), ==, "core");
  g_assert_cmpstr (json_object_get_string_member (o, "name"), ==, "train");
  a = json_object_get_array_member (o, "params");
  for (guint i = 0; i < json_array_get_length (a); i++) {
    JsonObject *q = json_array_get_object_element (a, i);
    if (g_str_equal (json_object_get_string_member (q, "name"), "keep_state")) {
      keep_state = TRUE;
      g_assert_cmpstr (json_object_get_string_member (q, "default"), ==, "last");
      g_assert_cmpuint (json_array_get_length (json_object_get_array_member (q, "choices")), ==, 2);
    }
  }
  g_assert_true (keep_state);

  /* The list names them; a KIND/NAME is still a component. */
  g_assert_cmpint (run (f, "STSIM_INSPECT", NULL), ==, 0);
  assert_contains (f->out, "\ncore sections: [run], [train] (stsim-inspect SECTION shows the keys)\n");
  g_assert_cmpint (run (f, "STSIM_INSPECT", "--json", NULL), ==, 0);
  g_assert_true (json_parser_load_from_data (p, f->out, -1, NULL));
  a = json_object_get_array_member (json_node_get_object (json_parser_get_root (p)), "core_sections");
  g_assert_cmpstr (json_array_get_string_element (a, 0), ==, "run");
  g_assert_cmpstr (json_array_get_string_element (a, 1), ==, "train");
  g_assert_cmpint (run (f, "STSIM_INSPECT", "encoder/train", NULL), ==, 1);
}

/* A --set that names a section by its kind or label alone says which one has the key. */
static void
test_inspect_set_suggestion (Fixture *f, gconstpointer data)
{
  g_autofree char *good = write_file (f, "good.ini", eval_recipe);

  g_assert_cmpint (run (f, "STSIM_INSPECT", "--recipe", good, "--set", "evaluator.scale=2", NULL), ==, 1);
  assert_contains (f->err, "--set 'evaluator.scale=2': this recipe has no section [evaluator] (did you mean "
                           "'evaluator.e.scale'?)");
  g_assert_cmpint (run (f, "STSIM_RUN", good, "--set", "e.scale=2", NULL), ==, 1);
  assert_contains (f->err, "--set 'e.scale=2': this recipe has no section [e] (did you mean 'evaluator.e.scale'?)");
}

/* Bytes of the regular files under @path, counted here without the tool's code. */
static guint64
du_bytes (const char *path)
{
  GStatBuf st;
  guint64 n = 0;
  g_assert_cmpint (g_lstat (path, &st), ==, 0);
  if (S_ISREG (st.st_mode))
    return st.st_size;
  if (S_ISDIR (st.st_mode)) {
    g_autoptr(GDir) d = g_dir_open (path, 0, NULL);
    const char *name;
    while ((name = g_dir_read_name (d))) {
      g_autofree char *child = g_build_filename (path, name, NULL);
      n += du_bytes (child);
    }
  }
  return n;
}

/* Variants of a recipe get their own folders (runs/<name>-<hash of the --set
 * values>, said in the plan), and the end of a run says how much its folder holds. */
static void
test_run_output_names (Fixture *f, gconstpointer data)
{
  /* No output key: the folder is derived. Golden: Python's
   * hashlib.sha256(b"encoder.dim=32\n").hexdigest()[:8] == "ed7d0c3b". */
  g_autofree char *lab = write_file (f, "lab.ini", "[encoder]\nuse = test-hash\n[evaluator.e]\nuse = test-eval\n"
                                                   "tag = t\n");
  g_autofree char *plain = g_build_filename (f->tmp, "runs", "lab", NULL);
  g_autofree char *variant = g_build_filename (f->tmp, "runs", "lab-ed7d0c3b", NULL);
  g_autofree char *sub = g_build_filename (variant, "notes", NULL);
  g_autofree char *line = NULL, *human = NULL, *results = NULL;
  g_auto(GStrv) parts = NULL;
  guint64 bytes;

  g_assert_cmpint (run (f, "STSIM_RUN", "--dry-run", lab, "--set", "encoder.dim=32", NULL), ==, 0);
  assert_contains (f->out, "\noutput  runs/lab-ed7d0c3b (default: runs/<name>-<hash of the --set values>)\n");
  g_assert_cmpint (run (f, "STSIM_RUN", "--dry-run", lab, NULL), ==, 0);
  assert_contains (f->out, "\noutput  runs/lab (default: runs/<name>)\n");
  g_assert_cmpint (run (f, "STSIM_RUN", "--dry-run", lab, "--set", "run.output=elsewhere", NULL), ==, 0);
  assert_contains (f->out, "\noutput  elsewhere\n");

  g_assert_cmpint (run (f, "STSIM_RUN", lab, NULL), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (sub, 0755), ==, 0);  /* a folder of the run's own: listed */
  g_free (write_file (f, "runs/lab-ed7d0c3b/notes/n.txt", "12345"));
  g_assert_cmpint (run (f, "STSIM_RUN", lab, "--set", "encoder.dim=32", NULL), ==, 0);
  g_free (results);
  results = g_build_filename (plain, "results.json", NULL);
  g_assert_true (g_file_test (results, G_FILE_TEST_IS_REGULAR));
  g_free (results);
  results = g_build_filename (variant, "results.json", NULL);
  g_assert_true (g_file_test (results, G_FILE_TEST_IS_REGULAR));

  bytes = du_bytes (variant);
  human = g_format_size (bytes);
  parts = g_strsplit (human, "\u00a0", -1);  /* the tool prints a plain space */
  g_free (human);
  human = g_strjoinv (" ", parts);
  line = g_strdup_printf ("\nrun folder runs/lab-ed7d0c3b: %s (%" G_GUINT64_FORMAT " bytes; notes/ 5 bytes)\n",
                          human, bytes);
  assert_contains (f->out, line);
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
  /* Nothing to evaluate or train: an error saying what a recipe needs, and
   * nothing written (an empty file, [run] only, an encoder only). */
  const char *const nothing[] = { "", "[run]\nseed = 1\n", "[encoder]\nuse = test-hash\n" };
  for (guint i = 0; i < G_N_ELEMENTS (nothing); i++) {
    g_autofree char *empty = write_file (f, "empty.ini", nothing[i]);
    g_autofree char *out = g_build_filename (f->tmp, "runs", "empty", NULL);
    g_assert_cmpint (run (f, "STSIM_RUN", empty, NULL), ==, 1);
    assert_contains (f->err, "empty.ini: nothing to run: a recipe needs an [encoder] section and [evaluator] sections");
    g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
    g_assert_cmpint (run (f, "STSIM_RUN", "--dry-run", empty, NULL), ==, 1);
  }
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
  ADD ("/tools/inspect/core-sections", test_inspect_core_sections);
  ADD ("/tools/inspect/set-suggestion", test_inspect_set_suggestion);
  ADD ("/tools/run/usage", test_run_usage);
  ADD ("/tools/run/invalid", test_run_invalid);
  ADD ("/tools/run/dry-run", test_run_dry);
  ADD ("/tools/run/evaluate", test_run_evaluate);
  ADD ("/tools/run/two-evaluators", test_run_two_evaluators);
  ADD ("/tools/run/no-evaluation", test_run_no_evaluation);
  ADD ("/tools/run/output-names", test_run_output_names);
  return g_test_run ();
}
