/* test-stsim-eval.c: the stsim-eval tool as a user runs it: exit codes,
 * messages, the table and the --json file (against the reference golden
 * numbers). argv[1] after the GTest options is the tool's path. */
#include <math.h>
#include <string.h>

#include <json-glib/json-glib.h>
#include <glib/gstdio.h>
#include <sys/wait.h>

#include "test-util.h"
#include "test-util-model.h"

static const char *tool_path;

typedef struct {
  int   status;
  char *out, *err;
} Run;

static void
run_clear (Run *r)
{
  g_free (r->out);
  g_free (r->err);
}

static Run
run_tool (const char *first, ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) tool_path);
  va_list ap;
  va_start (ap, first);
  for (const char *a = first; a; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  Run r = { 0 };
  g_autoptr (GError) err = NULL;
  int wait_status = 0;
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &r.out, &r.err,
                               &wait_status, &err));
  g_assert_no_error (err);
  g_assert_true (WIFEXITED (wait_status));
  r.status = WEXITSTATUS (wait_status);
  g_test_message ("exit %d\nstdout:\n%s\nstderr:\n%s", r.status, r.out, r.err);
  return r;
}

static double
golden_value (const char *encoder, const char *task, const char *split, const char *key)
{
  g_autofree char *name = g_strdup_printf ("golden-%s.json", encoder);
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "fixtures", "sts", name, NULL);
  g_autoptr (JsonParser) p = json_parser_new ();
  g_assert_true (json_parser_load_from_file (p, path, NULL));
  JsonObject *t = json_object_get_object_member (json_object_get_object_member (
    json_node_get_object (json_parser_get_root (p)), "tasks"), task);
  return json_object_get_double_member (json_object_get_object_member (t, split), key);
}

static void
test_table_and_json (void)
{
  g_autofree char *tmp = g_dir_make_tmp ("stsim-eval-XXXXXX", NULL);
  g_autofree char *json = g_build_filename (tmp, "report.json", NULL);
  Run r = run_tool ("--encoder", "bow-idf", "--tasks", "STS16,STS13", "--json", json, NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "| STS13 | STS16 |"));
  g_assert_nonnull (strstr (r.out, "sentences/s"));
  g_autoptr (JsonParser) p = json_parser_new ();
  g_autoptr (GError) err = NULL;
  g_assert_true (json_parser_load_from_file (p, json, &err));
  JsonObject *rep = json_node_get_object (json_parser_get_root (p));
  JsonObject *table = json_object_get_object_member (rep, "table");
  g_assert_false (json_object_has_member (table, "Avg"));  /* only with all seven */
  g_assert_cmpuint (json_object_get_size (table), ==, 2);
  JsonObject *sts16 = json_object_get_object_member (json_object_get_object_member (rep, "tasks"), "STS16");
  double got = json_object_get_double_member (json_object_get_object_member (sts16, "all"), "spearman");
  g_assert_cmpfloat_with_epsilon (got, golden_value ("bow-idf", "STS16", "all", "spearman"), 1e-6);
  got = json_object_get_double_member (json_object_get_object_member (sts16, "plagiarism"), "pearson");
  g_assert_cmpfloat_with_epsilon (got, golden_value ("bow-idf", "STS16", "plagiarism", "pearson"), 1e-6);
  g_assert_cmpfloat (json_object_get_double_member (table, "STS16"), ==,
                     100 * json_object_get_double_member (json_object_get_object_member (sts16, "all"), "spearman"));
  /* Written atomically: nothing but the report is left in the folder. */
  g_autoptr (GDir) d = g_dir_open (tmp, 0, NULL);
  g_assert_cmpstr (g_dir_read_name (d), ==, "report.json");
  g_assert_null (g_dir_read_name (d));
  g_unlink (json);
  g_rmdir (tmp);
  run_clear (&r);
}

static void
test_dev_mode (void)
{
  Run r = run_tool ("--encoder", "bow", "--mode", "dev", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "STS-B dev"));
  g_autofree char *want = g_strdup_printf ("%.2f", 100 * golden_value ("bow", "STSBenchmark", "dev", "spearman"));
  g_assert_nonnull (strstr (r.out, want));
  run_clear (&r);
}

static void
check_usage (const char *a, const char *b, const char *c, const char *words)
{
  Run r = run_tool (a, b, c, NULL);
  g_assert_cmpint (r.status, ==, 2);
  g_assert_nonnull (strstr (r.err, words));
  run_clear (&r);
}

static void
test_usage_errors (void)
{
  check_usage (NULL, NULL, NULL, "exactly one of --model DIR and --encoder NAME");
  check_usage ("--encoder", "bow", "--model=/tmp", "exactly one of");
  check_usage ("--encoder", "bow", "--mode=final", "--mode must be 'test' or 'dev'");
  check_usage ("--encoder", "bow", "--set=oops", "KEY=VALUE");
  check_usage ("--encoder", "bow", "--frobnicate", "--frobnicate");
}

static void
test_missing_data (void)
{
  Run r = run_tool ("--encoder", "bow", "--data", "/nonexistent/stsim-data", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "/nonexistent/stsim-data"));
  g_assert_nonnull (strstr (r.err, "--data DIR"));
  g_assert_nonnull (strstr (r.err, "STSIM_DATA"));
  run_clear (&r);
}

static void
test_bad_encoder_and_params (void)
{
  Run r = run_tool ("--encoder", "bow-idff", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "bow-idff"));
  g_assert_nonnull (strstr (r.err, "did you mean 'bow-idf'"));
  run_clear (&r);
  r = run_tool ("--encoder", "bow", "--set", "oov_buckets=0", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "oov_buckets"));
  run_clear (&r);
  r = run_tool ("--encoder", "bow", "--tasks", "STS12,STSB", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "'STSB'"));
  run_clear (&r);
}

static void
test_model_dir (void)
{
  g_autofree char *tmp = g_dir_make_tmp ("stsim-eval-XXXXXX", NULL);
  g_autofree char *cfg = g_build_filename (tmp, "config.json", NULL);
  /* No config.json. */
  Run r = run_tool ("--model", tmp, NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "config.json"));
  run_clear (&r);
  /* An unsupported model_type. */
  g_assert_true (g_file_set_contents (cfg, "{\"model_type\": \"gpt2\"}", -1, NULL));
  r = run_tool ("--model", tmp, NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "\"gpt2\" is not supported"));
  run_clear (&r);
  /* A supported type: either its plugin is missing (the message says which)
   * or it is there and fails on a folder without weights; never success. */
  g_assert_true (g_file_set_contents (cfg, "{\"model_type\": \"distilbert\"}", -1, NULL));
  r = run_tool ("--model", tmp, NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "distilbert"));
  run_clear (&r);
  g_unlink (cfg);
  g_rmdir (tmp);
}

/* A real checkpoint through --model: the bert-tiny fixture (64 positions). */
static void
test_model_dir_checkpoint (void)
{
  g_autofree char *model = g_test_build_filename (G_TEST_DIST, "fixtures", "models", "bert-tiny", NULL);
  g_autofree char *tmp = g_dir_make_tmp ("stsim-eval-XXXXXX", NULL);
  g_autofree char *json = g_build_filename (tmp, "r.json", NULL);
  /* STS-B has sentences longer than the model's positions: a clear error. */
  Run r = run_tool ("--model", model, "--tasks", "STSBenchmark", "--skip-train", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "max_len"));
  run_clear (&r);
  r = run_tool ("--model", model, "--set", "max_len=64", "--tasks", "STSBenchmark", "--skip-train",
                "--json", json, NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "STS-B"));
  run_clear (&r);
  g_autoptr (JsonParser) p = json_parser_new ();
  g_assert_true (json_parser_load_from_file (p, json, NULL));
  JsonObject *root = json_node_get_object (json_parser_get_root (p));
  JsonObject *t = json_object_get_object_member (json_object_get_object_member (root, "tasks"), "STSBenchmark");
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (t, "test"), "n"), ==, 1379);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (t, "dev"), "n"), ==, 1500);
  double v = json_object_get_double_member (json_object_get_object_member (root, "table"), "STSBenchmark");
  g_assert_true (isfinite (v) && v > -100 && v < 100);
  g_unlink (json);
  g_rmdir (tmp);
}

/* --tasks mixing STS and transfer names: both tables, one JSON with both
 * reports; TREC in fasttest mode keeps this to seconds. */
static void
test_transfer (void)
{
  g_autofree char *tmp = g_dir_make_tmp ("stsim-eval-XXXXXX", NULL);
  g_autofree char *json = g_build_filename (tmp, "r.json", NULL);
  Run r = run_tool ("--encoder", "bow", "--tasks", "STS13,TREC", "--transfer-mode", "fasttest", "--json", json,
                    NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "STS13"));
  g_assert_nonnull (strstr (r.out, "TREC |"));
  g_assert_nonnull (strstr (r.out, "fasttest mode"));
  run_clear (&r);
  g_autoptr (JsonParser) p = json_parser_new ();
  g_assert_true (json_parser_load_from_file (p, json, NULL));
  JsonObject *root = json_node_get_object (json_parser_get_root (p));
  JsonObject *sts = json_object_get_object_member (root, "sts");
  JsonObject *xfer = json_object_get_object_member (root, "transfer");
  g_assert_cmpstr (json_object_get_string_member (xfer, "evaluator"), ==, "transfer");
  g_assert_true (json_object_has_member (json_object_get_object_member (sts, "table"), "STS13"));
  double acc = json_object_get_double_member (json_object_get_object_member (xfer, "table"), "TREC");
  g_assert_cmpfloat (acc, >, 50);
  g_assert_cmpfloat (acc, <=, 100);
  JsonObject *trec = json_object_get_object_member (json_object_get_object_member (xfer, "tasks"), "TREC");
  g_assert_cmpint (json_object_get_int_member (trec, "ntest"), ==, 500);
  g_assert_cmpint (json_object_get_int_member (trec, "fits"), ==, 21);
  g_unlink (json);
  g_rmdir (tmp);
  r = run_tool ("--encoder", "bow", "--tasks", "MR,XYZ", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "'XYZ'"));
  run_clear (&r);
  r = run_tool ("--encoder", "bow", "--transfer", "--transfer-mode", "slow", NULL);
  g_assert_cmpint (r.status, ==, 2);
  g_assert_nonnull (strstr (r.err, "--transfer-mode"));
  run_clear (&r);
  g_autofree char *empty = g_dir_make_tmp ("stsim-eval-XXXXXX", NULL);
  r = run_tool ("--encoder", "bow", "--transfer", "--data", empty, NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "senteval/downstream/MR"));
  run_clear (&r);
  g_rmdir (empty);
}

/* Finite but huge weights give NaN embeddings: exit 1 naming the task, the
 * line and the sentence instead of a table of nan. */
static void
test_non_finite_embedding (void)
{
  g_autofree char *bert = g_test_build_filename (G_TEST_DIST, "fixtures", "models", "bert-tiny", NULL);
  g_autofree char *tmp = g_dir_make_tmp ("stsim-eval-XXXXXX", NULL);
  g_autofree char *model = g_build_filename (tmp, "huge", NULL);
  stsim_test_make_overflowing_model (bert, model);
  Run r = run_tool ("--model", model, "--set", "max_len=64", "--tasks", "STSBenchmark", "--skip-train", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "STSBenchmark/"));
  g_assert_nonnull (strstr (r.err, "non-finite value (NaN"));
  g_assert_nonnull (strstr (r.err, "of line "));
  g_assert_null (strstr (r.out, "nan"));
  run_clear (&r);
  stsim_test_remove_tree (tmp);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc < 2) {
    g_printerr ("usage: %s PATH-TO-stsim-eval\n", argv[0]);
    return 2;
  }
  tool_path = argv[1];
  g_test_add_func ("/sts/tool/table-and-json", test_table_and_json);
  g_test_add_func ("/sts/tool/dev-mode", test_dev_mode);
  g_test_add_func ("/sts/tool/usage-errors", test_usage_errors);
  g_test_add_func ("/sts/tool/missing-data", test_missing_data);
  g_test_add_func ("/sts/tool/bad-encoder-and-params", test_bad_encoder_and_params);
  g_test_add_func ("/sts/tool/model-dir", test_model_dir);
  g_test_add_func ("/sts/tool/model-dir-checkpoint", test_model_dir_checkpoint);
  g_test_add_func ("/sts/tool/transfer", test_transfer);
  g_test_add_func ("/sts/tool/non-finite-embedding", test_non_finite_embedding);
  return g_test_run ();
}
