/* The plugin registry: the good test plugin loads; each bad one is rejected
 * with a message naming its file and stage, and never takes the good one down. */
#include <glib/gstdio.h>
#include <string.h>

#include "stsim/stsim-registry.h"

static char *
plugin_path (const char *sub, const char *name)
{
  const char *dir = g_getenv ("STSIM_TEST_PLUGIN_DIR");
  g_autofree char *file = g_strdup_printf ("libstsim-%s.so", name);
  g_assert_nonnull (dir);
  return g_build_filename (dir, sub, file, NULL);
}

static StsimRegistry *
registry_with_good (void)
{
  StsimRegistry *reg = stsim_registry_new ();
  g_autofree char *good = plugin_path ("good", "test-good");
  g_autoptr(GError) error = NULL;
  g_assert_true (stsim_registry_load_file (reg, good, &error));
  g_assert_no_error (error);
  return reg;
}

static void
assert_good_loaded (StsimRegistry *reg)
{
  static const struct { StsimKind kind; const char *name; } expected[] = {
    { STSIM_KIND_ENCODER, "test-hash" }, { STSIM_KIND_EVALUATOR, "test-eval" },
    { STSIM_KIND_TEACHER, "test-teacher" }, { STSIM_KIND_OBJECTIVE, "test-objective" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++) {
    const StsimRegistryEntry *e = stsim_registry_lookup (reg, expected[i].kind, expected[i].name);
    g_assert_nonnull (e);
    g_assert_cmpstr (e->desc->name, ==, expected[i].name);
    g_assert_cmpint (e->desc->kind, ==, expected[i].kind);
    g_assert_cmpstr (e->plugin->name, ==, "test-good");
    g_assert_true (g_str_has_suffix (e->file, "good/libstsim-test-good.so"));
  }
}

static void
test_good (void)
{
  g_autoptr(StsimRegistry) reg = registry_with_good ();
  const char *file = NULL;
  const StsimPluginDesc *d;

  g_assert_cmpuint (stsim_registry_get_n_plugins (reg), ==, 1);
  g_assert_cmpuint (stsim_registry_get_n_components (reg), ==, 4);
  g_assert_cmpuint (stsim_registry_get_n_failures (reg), ==, 0);
  d = stsim_registry_get_plugin (reg, 0, &file);
  g_assert_cmpstr (d->name, ==, "test-good");
  g_assert_cmpstr (d->version, ==, "1.2.3");
  g_assert_true (g_str_has_suffix (file, "libstsim-test-good.so"));
  /* Components in load order, i.e. the plugin's order. */
  g_assert_cmpstr (stsim_registry_get_component (reg, 0)->desc->name, ==, "test-hash");
  g_assert_cmpstr (stsim_registry_get_component (reg, 3)->desc->name, ==, "test-objective");
  assert_good_loaded (reg);
  g_assert_null (stsim_registry_lookup (reg, STSIM_KIND_EVALUATOR, "test-hash"));
}

static void
test_lookup_name (void)
{
  g_autoptr(StsimRegistry) reg = registry_with_good ();
  g_autofree char *other = plugin_path ("good", "test-other");
  g_autoptr(GError) error = NULL;
  const StsimRegistryEntry *e;

  e = stsim_registry_lookup_name (reg, "test-eval", &error);
  g_assert_no_error (error);
  g_assert_cmpint (e->desc->kind, ==, STSIM_KIND_EVALUATOR);
  e = stsim_registry_lookup_name (reg, "encoder/test-hash", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (e->desc->name, ==, "test-hash");

  g_assert_null (stsim_registry_lookup_name (reg, "test-hsh", &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_assert_cmpstr (error->message, ==, "no component named 'test-hsh' (did you mean 'test-hash'?)");
  g_clear_error (&error);
  g_assert_null (stsim_registry_lookup_name (reg, "evaluator/test-hash", &error));
  g_assert_cmpstr (error->message, ==, "no evaluator named 'test-hash' ('test-hash' is an encoder)");
  g_clear_error (&error);
  g_assert_null (stsim_registry_find (reg, STSIM_KIND_TEACHER, "test-objectiv", &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_assert_cmpstr (error->message, ==, "no teacher named 'test-objectiv'");
  g_clear_error (&error);
  g_assert_null (stsim_registry_find (reg, STSIM_KIND_TEACHER, "test-eval", &error));
  g_assert_cmpstr (error->message, ==, "no teacher named 'test-eval' ('test-eval' is an evaluator)");
  g_clear_error (&error);
  g_assert_true (stsim_registry_find (reg, STSIM_KIND_TEACHER, "test-teacher", &error) ==
                 stsim_registry_lookup (reg, STSIM_KIND_TEACHER, "test-teacher"));
  g_assert_no_error (error);
  g_assert_null (stsim_registry_lookup_name (reg, "evaluator/test-evl", &error));
  g_assert_cmpstr (error->message, ==, "no evaluator named 'test-evl' (did you mean 'test-eval'?)");
  g_clear_error (&error);
  g_assert_null (stsim_registry_lookup_name (reg, "encodr/test-hash", &error));
  g_assert_cmpstr (error->message, ==, "unknown kind 'encodr' (did you mean 'encoder'?)");
  g_clear_error (&error);
  g_assert_null (stsim_registry_lookup_name (reg, "zzzzzzzz", &error));
  g_assert_cmpstr (error->message, ==, "no component named 'zzzzzzzz'");
  g_clear_error (&error);

  /* test-other has an evaluator called test-hash: the bare name is ambiguous. */
  g_assert_true (stsim_registry_load_file (reg, other, &error));
  g_assert_null (stsim_registry_lookup_name (reg, "test-hash", &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_INVALID);
  g_assert_cmpstr (error->message, ==, "'test-hash' is ambiguous; say which: encoder/test-hash, evaluator/test-hash");
  g_clear_error (&error);
  e = stsim_registry_lookup_name (reg, "evaluator/test-hash", &error);
  g_assert_nonnull (e);
  g_assert_cmpstr (e->plugin->name, ==, "test-other");

  g_assert_cmpstr (stsim_registry_suggest (reg, STSIM_KIND_TEACHER, "test-teachr"), ==, "test-teacher");
  g_assert_null (stsim_registry_suggest (reg, STSIM_KIND_TEACHER, "test-eval"));
  g_assert_cmpstr (stsim_registry_suggest (reg, STSIM_KIND_N_KINDS, "test-evl"), ==, "test-eval");
}

/* ---- each bad plugin ------------------------------------------------------------------- */

typedef struct {
  const char     *name;     /* libstsim-<name>.so in bad/ */
  StsimLoadStage  stage;
  const char     *message;  /* expected in the failure's message */
} BadPlugin;

static const BadPlugin bad_plugins[] = {
  { "test-abi", STSIM_LOAD_STAGE_ABI, "built for plugin ABI 99.0, but this stsim" },
  { "test-no-symbol", STSIM_LOAD_STAGE_SYMBOL, "no stsim_plugin_describe() symbol: not an stsim plugin" },
  { "test-not-elf", STSIM_LOAD_STAGE_OPEN, "libstsim-test-not-elf.so" },
  { "test-dup-within", STSIM_LOAD_STAGE_VALIDATE, "encoder 'twin' is declared twice in this plugin" },
  { "test-dup-across", STSIM_LOAD_STAGE_VALIDATE, "encoder 'test-hash' is already provided by plugin 'test-good'" },
  { "test-good-copy", STSIM_LOAD_STAGE_VALIDATE, "plugin name 'test-good' is already used by" },
  { "test-param-range", STSIM_LOAD_STAGE_VALIDATE,
    "encoder 'bad-encoder' has an invalid parameter table: default of parameter 'p' is invalid: p: 5 is outside [0, 1]" },
  { "test-param-enum", STSIM_LOAD_STAGE_VALIDATE, "enum parameter 'mode' needs choices" },
  { "test-param-required", STSIM_LOAD_STAGE_VALIDATE, "parameter 'p' is required but has a default ('3')" },
  { "test-param-dup", STSIM_LOAD_STAGE_VALIDATE, "parameter 'p' is declared twice" },
  { "test-missing-op", STSIM_LOAD_STAGE_VALIDATE, "evaluator 'no-op' lacks the required evaluator op evaluate()" },
};

static void
test_bad (gconstpointer data)
{
  const BadPlugin *b = data;
  g_autoptr(StsimRegistry) reg = registry_with_good ();
  g_autofree char *path = plugin_path ("bad", b->name);
  g_autofree char *prefix = g_strdup_printf ("plugin %s rejected at stage '%s': ", path,
                                             stsim_load_stage_name (b->stage));
  g_autoptr(GError) error = NULL;
  const StsimLoadFailure *f;

  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
  g_assert_false (stsim_registry_load_file (reg, path, &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_PLUGIN);
  /* The message names the file and the stage, then the reason. */
  g_assert_true (g_str_has_prefix (error->message, prefix));
  g_assert_nonnull (strstr (error->message, b->message));

  g_assert_cmpuint (stsim_registry_get_n_failures (reg), ==, 1);
  f = stsim_registry_get_failure (reg, 0);
  g_assert_cmpstr (f->file, ==, path);
  g_assert_cmpint (f->stage, ==, b->stage);
  g_assert_nonnull (strstr (f->message, b->message));

  /* Nothing of the rejected plugin is registered; the good one is intact. */
  g_assert_cmpuint (stsim_registry_get_n_plugins (reg), ==, 1);
  g_assert_cmpuint (stsim_registry_get_n_components (reg), ==, 4);
  g_assert_null (stsim_registry_lookup (reg, STSIM_KIND_ENCODER, "twin"));
  g_assert_null (stsim_registry_lookup (reg, STSIM_KIND_ENCODER, "bad-encoder"));
  assert_good_loaded (reg);

  /* Loading it again gives the same answer without a second failure record. */
  g_clear_error (&error);
  g_assert_false (stsim_registry_load_file (reg, path, &error));
  g_assert_true (g_str_has_prefix (error->message, prefix));
  g_assert_cmpuint (stsim_registry_get_n_failures (reg), ==, 1);
}

/* Without the good plugin loaded first, dup-across is a valid plugin. */
static void
test_dup_across_alone (void)
{
  g_autoptr(StsimRegistry) reg = stsim_registry_new ();
  g_autofree char *path = plugin_path ("bad", "test-dup-across");
  g_autoptr(GError) error = NULL;
  g_assert_true (stsim_registry_load_file (reg, path, &error));
  g_assert_nonnull (stsim_registry_lookup (reg, STSIM_KIND_ENCODER, "test-hash"));
}

static void
test_scan (void)
{
  g_autoptr(StsimRegistry) reg = stsim_registry_new ();
  const char *dir = g_getenv ("STSIM_TEST_PLUGIN_DIR");
  g_autofree char *good = g_build_filename (dir, "good", NULL);
  g_autofree char *bad = g_build_filename (dir, "bad", NULL);
  g_autofree char *dirs = g_strjoin (G_SEARCHPATH_SEPARATOR_S, good, "/no/such/folder", bad, NULL);
  g_autoptr(GError) error = NULL;

  g_assert_true (stsim_registry_scan_path (reg, dirs, &error));
  g_assert_no_error (error);
  /* test-good and test-other from good/, every plugin of bad/ rejected. */
  g_assert_cmpuint (stsim_registry_get_n_plugins (reg), ==, 2);
  g_assert_cmpuint (stsim_registry_get_n_components (reg), ==, 6);
  g_assert_cmpuint (stsim_registry_get_n_failures (reg), ==, G_N_ELEMENTS (bad_plugins));
  assert_good_loaded (reg);
  for (guint i = 0; i < stsim_registry_get_n_failures (reg); i++)
    g_assert_true (g_str_has_prefix (stsim_registry_get_failure (reg, i)->file, bad));

  /* Scanning again loads nothing twice and records nothing twice. */
  g_assert_true (stsim_registry_scan_path (reg, dirs, &error));
  g_assert_cmpuint (stsim_registry_get_n_plugins (reg), ==, 2);
  g_assert_cmpuint (stsim_registry_get_n_failures (reg), ==, G_N_ELEMENTS (bad_plugins));
}

static void
test_scan_recursive (void)
{
  g_autoptr(StsimRegistry) reg = stsim_registry_new ();
  g_assert_true (stsim_registry_scan_path (reg, g_getenv ("STSIM_TEST_PLUGIN_DIR"), NULL));
  g_assert_cmpuint (stsim_registry_get_n_plugins (reg), >=, 1);
  g_assert_cmpuint (stsim_registry_get_n_failures (reg), >=, 1);
}

static void
test_scan_unreadable (void)
{
  g_autoptr(StsimRegistry) reg = stsim_registry_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *tmp = g_dir_make_tmp ("stsim-reg-XXXXXX", NULL);
  g_autofree char *file = g_build_filename (tmp, "plain-file", NULL);

  /* Missing folders are skipped; a folder that is a file is too. */
  g_assert_true (g_file_set_contents (file, "x", -1, NULL));
  g_assert_true (stsim_registry_scan_path (reg, "/no/such/folder", &error));
  g_assert_true (stsim_registry_scan_path (reg, file, &error));
  g_assert_true (stsim_registry_scan_path (reg, "", &error));
  g_assert_true (stsim_registry_scan_path (reg, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stsim_registry_get_n_plugins (reg), ==, 0);
  g_unlink (file);
  g_rmdir (tmp);
}

/* A copy with the same file name later in the path is shadowed, not a failure. */
static void
test_shadowed (void)
{
  g_autoptr(StsimRegistry) reg = registry_with_good ();
  g_autofree char *good = plugin_path ("good", "test-good");
  g_autofree char *tmp = g_dir_make_tmp ("stsim-reg-XXXXXX", NULL);
  g_autofree char *copy = g_build_filename (tmp, "libstsim-test-good.so", NULL);
  g_autofree char *bytes = NULL;
  gsize len;
  g_autoptr(GError) error = NULL;

  g_assert_true (g_file_get_contents (good, &bytes, &len, NULL));
  g_assert_true (g_file_set_contents (copy, bytes, len, NULL));
  g_assert_true (stsim_registry_load_file (reg, copy, &error));
  g_assert_no_error (error);
  /* The same file through another path is recognised too. */
  {
    g_autofree char *dir = g_path_get_dirname (good);
    g_autofree char *dotted = g_build_filename (dir, ".", "libstsim-test-good.so", NULL);
    g_assert_true (stsim_registry_load_file (reg, dotted, &error));
  }
  g_assert_cmpuint (stsim_registry_get_n_plugins (reg), ==, 1);
  g_assert_cmpuint (stsim_registry_get_n_failures (reg), ==, 0);
  g_assert_true (g_str_has_suffix (stsim_registry_lookup (reg, STSIM_KIND_ENCODER, "test-hash")->file,
                                   "good/libstsim-test-good.so"));
  g_unlink (copy);
  g_rmdir (tmp);
}

static void
test_missing_file (void)
{
  g_autoptr(StsimRegistry) reg = stsim_registry_new ();
  g_autoptr(GError) error = NULL;
  g_assert_false (stsim_registry_load_file (reg, "/no/such/libstsim-x.so", &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_PLUGIN);
  g_assert_true (g_str_has_prefix (error->message, "plugin /no/such/libstsim-x.so rejected at stage 'open': "));
  g_assert_cmpint (stsim_registry_get_failure (reg, 0)->stage, ==, STSIM_LOAD_STAGE_OPEN);
}

/* STSIM_PLUGIN_PATH first; STSIM_PLUGIN_SYSTEM_PATH replaces the installed folder. */
static void
test_scan_default (void)
{
  if (g_test_subprocess ()) {
    const char *dir = g_getenv ("STSIM_TEST_PLUGIN_DIR");
    g_autofree char *good = g_build_filename (dir, "good", NULL);
    g_autofree char *bad = g_build_filename (dir, "bad", NULL);
    g_autoptr(StsimRegistry) reg = stsim_registry_new ();
    g_setenv ("STSIM_PLUGIN_PATH", good, TRUE);
    g_setenv ("STSIM_PLUGIN_SYSTEM_PATH", bad, TRUE);
    stsim_registry_scan_default (reg);
    assert_good_loaded (reg);
    g_assert_cmpstr (stsim_registry_get_plugin (reg, 0, NULL)->name, ==, "test-good");
    /* bad/ came after good/: its dup-across lost to test-good. */
    g_assert_cmpuint (stsim_registry_get_n_failures (reg), ==, G_N_ELEMENTS (bad_plugins));
    return;
  }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

static void
test_stage_names (void)
{
  g_assert_cmpstr (stsim_load_stage_name (STSIM_LOAD_STAGE_OPEN), ==, "open");
  g_assert_cmpstr (stsim_load_stage_name (STSIM_LOAD_STAGE_SYMBOL), ==, "symbol");
  g_assert_cmpstr (stsim_load_stage_name (STSIM_LOAD_STAGE_ABI), ==, "abi");
  g_assert_cmpstr (stsim_load_stage_name (STSIM_LOAD_STAGE_VALIDATE), ==, "validate");
}

static void
test_kind_names (void)
{
  StsimKind k;
  g_assert_cmpstr (stsim_kind_name (STSIM_KIND_TEACHER), ==, "teacher");
  g_assert_true (stsim_kind_from_name ("evaluator", &k));
  g_assert_cmpint (k, ==, STSIM_KIND_EVALUATOR);
  g_assert_false (stsim_kind_from_name ("Evaluator", &k));
  g_assert_false (stsim_kind_from_name (NULL, &k));
  g_assert_cmpstr (stsim_kind_name (STSIM_KIND_N_KINDS), ==, "invalid");
}

/* Components built straight from the registry, and their kind-checked calls. */
static void
test_component (void)
{
  g_autoptr(StsimRegistry) reg = registry_with_good ();
  g_autoptr(StsimContext) ctx = stsim_context_new ("/data", 7, 3);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) report = json_object_new ();
  StsimComponent *enc, *ev;
  double primary = -1;
  float v[16];
  const char *s[] = { "a b", "c" };

  g_assert_cmpstr (stsim_context_get_data_dir (ctx), ==, "/data");
  g_assert_cmpuint (stsim_context_get_seed (ctx), ==, 7);
  g_assert_cmpint (stsim_context_get_threads (ctx), ==, 3);

  enc = stsim_component_new_simple (reg, STSIM_KIND_ENCODER, "test-hash", NULL, ctx, &error, "dim", "8", NULL);
  g_assert_no_error (error);
  g_assert_cmpstr (stsim_component_get_label (enc), ==, "encoder");
  g_assert_cmpint (stsim_component_get_kind (enc), ==, STSIM_KIND_ENCODER);
  g_assert_cmpstr (stsim_params_get_string (stsim_component_get_params (enc), "vocab"), ==, "/data/vocab");
  g_assert_true (stsim_context_add (ctx, enc, &error));
  g_assert_cmpuint (stsim_encoder_dim (enc), ==, 8);
  g_assert_true (stsim_encoder_prepare (enc, s, 2, &error));  /* optional op absent: no-op */
  g_assert_true (stsim_encoder_encode (enc, s, 2, v, &error));

  ev = stsim_component_new_simple (reg, STSIM_KIND_EVALUATOR, "test-eval", "evaluator.e", ctx, &error,
                                   "tag", "hello", NULL);
  g_assert_no_error (error);
  g_assert_true (stsim_context_add (ctx, ev, &error));
  g_assert_true (stsim_context_lookup (ctx, "evaluator.e") == ev);
  g_assert_null (stsim_context_lookup (ctx, "evaluator.f"));
  g_assert_true (stsim_evaluator_evaluate (ev, enc, STSIM_EVAL_TEST, report, &primary, &error));
  g_assert_cmpstr (json_object_get_string_member (report, "tag"), ==, "hello");
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (json_object_get_object_member (report, "table"),
                                                                 "pair3"), 100, 1e-4);
  g_assert_cmpfloat (primary, >, 0);

  /* A second component with a taken label is refused (and freed). */
  g_assert_false (stsim_context_add (ctx, stsim_component_new_simple (reg, STSIM_KIND_ENCODER, "test-hash", NULL, ctx,
                                                                      NULL, NULL), &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_INVALID);
  g_clear_error (&error);

  /* Failures of create and of parameters come back as errors. */
  g_assert_null (stsim_component_new_simple (reg, STSIM_KIND_EVALUATOR, "test-eval", NULL, ctx, &error, NULL));
  g_assert_cmpstr (error->message, ==, "missing required parameter 'tag'");
  g_clear_error (&error);
  g_assert_null (stsim_component_new_simple (reg, STSIM_KIND_TEACHER, "test-teacher", "teacher", ctx, &error,
                                             "encoder", "encoder.other", NULL));
  g_assert_cmpstr (error->message, ==, "teacher (teacher 'test-teacher'): encoder 'encoder.other' does not exist yet");
  g_clear_error (&error);
  g_assert_null (stsim_component_new_simple (reg, STSIM_KIND_ENCODER, "test-hsh", NULL, ctx, &error, NULL));
  g_assert_cmpstr (error->message, ==, "no encoder named 'test-hsh' (did you mean 'test-hash'?)");
  g_clear_error (&error);
  g_assert_null (stsim_component_new_simple (reg, STSIM_KIND_ENCODER, "test-hash", NULL, ctx, &error,
                                             "dim", "0", NULL));
  g_assert_cmpstr (error->message, ==, "dim: 0 is outside [1, 1024]");

  {
    guint n;
    StsimComponent *const *all = stsim_context_get_components (ctx, &n);
    g_assert_cmpuint (n, ==, 2);
    g_assert_true (all[0] == enc && all[1] == ev);
  }
}

static void
test_data_dir (void)
{
  if (g_test_subprocess ()) {
    g_autofree char *a = NULL, *b = NULL, *c = NULL;
    g_setenv ("STSIM_DATA", "/env/data/../data", TRUE);
    a = stsim_data_dir_resolve ("/given");
    b = stsim_data_dir_resolve (NULL);
    g_unsetenv ("STSIM_DATA");
    c = stsim_data_dir_resolve ("");
    g_assert_cmpstr (a, ==, "/given");
    g_assert_cmpstr (b, ==, "/env/data");
    g_assert_true (g_path_is_absolute (c));  /* the build's default */
    return;
  }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/registry/good", test_good);
  g_test_add_func ("/registry/lookup-name", test_lookup_name);
  for (guint i = 0; i < G_N_ELEMENTS (bad_plugins); i++) {
    g_autofree char *path = g_strdup_printf ("/registry/bad/%s", bad_plugins[i].name);
    g_test_add_data_func (path, &bad_plugins[i], test_bad);
  }
  g_test_add_func ("/registry/dup-across-alone", test_dup_across_alone);
  g_test_add_func ("/registry/scan", test_scan);
  g_test_add_func ("/registry/scan-recursive", test_scan_recursive);
  g_test_add_func ("/registry/scan-unreadable", test_scan_unreadable);
  g_test_add_func ("/registry/shadowed", test_shadowed);
  g_test_add_func ("/registry/missing-file", test_missing_file);
  g_test_add_func ("/registry/scan-default", test_scan_default);
  g_test_add_func ("/registry/stage-names", test_stage_names);
  g_test_add_func ("/registry/kind-names", test_kind_names);
  g_test_add_func ("/registry/component", test_component);
  g_test_add_func ("/registry/data-dir", test_data_dir);
  return g_test_run ();
}
