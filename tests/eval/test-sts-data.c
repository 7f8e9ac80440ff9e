/* test-sts-data.c: the SentEval readers (good and malformed fixtures, the real
 * data's pair counts), the missing-data messages and the evaluation loop. */
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>

#include "stsim/stsim-sts.h"

static char *
fixture (const char *name)
{
  return g_test_build_filename (G_TEST_DIST, "fixtures", "sts", name, NULL);
}

static const char *
data_dir (void)
{
  const char *d = g_getenv ("STSIM_DATA");
  g_assert_nonnull (d);  /* tests/meson.build sets it */
  return d;
}

/* ---- text ----------------------------------------------------------------- */

static void
test_normalize (void)
{
  /* Python's str.split(): runs of any Unicode whitespace, NBSP included. */
  g_autofree char *a = stsim_sts_normalize ("  A  man\xc2\xa0plays\t\v ok\xe3\x80\x80" "end ");
  g_assert_cmpstr (a, ==, "A man plays ok end");
  g_autofree char *b = stsim_sts_normalize (" \t ");
  g_assert_cmpstr (b, ==, "");
  g_auto (GStrv) t = stsim_sts_split_whitespace ("caf\xc3\xa9 \"x\"");
  g_assert_cmpuint (g_strv_length (t), ==, 2);
  g_assert_cmpstr (t[0], ==, "caf\xc3\xa9");
  g_assert_cmpstr (t[1], ==, "\"x\"");
  /* Invalid UTF-8 (a truncated 4-byte sequence at the end) is kept as text
   * and never read past the terminator. */
  g_auto (GStrv) bad = stsim_sts_split_whitespace ("a \xf0\x9f b\xf0");
  g_assert_cmpuint (g_strv_length (bad), ==, 3);
  g_assert_cmpstr (bad[1], ==, "\xf0\x9f");
  g_assert_cmpstr (bad[2], ==, "b\xf0");
}

/* ---- good fixtures ---------------------------------------------------------- */

static void
test_read_semeval_good (void)
{
  g_autofree char *in = fixture ("good.input.txt");
  g_autofree char *gs = fixture ("good.gs.txt");
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimStsSplit) s = stsim_sts_read_semeval (in, gs, "good", &err);
  g_assert_no_error (err);
  /* Line 2 has an empty gold line and is skipped; CRLF and a missing final
   * newline change nothing; quotes are ordinary characters. */
  g_assert_cmpuint (s->n, ==, 4);
  const char *s1[] = { "A man plays", "", "x \" y", "lone" };
  const char *s2[] = { "A man is \"playing", "", "\" z", "pair" };
  const double gold[] = { 4.0, 3.0, 0.5, 2.0 };
  const guint lines[] = { 1, 3, 4, 5 };
  for (int i = 0; i < 4; i++) {
    g_assert_cmpstr (s->s1[i], ==, s1[i]);
    g_assert_cmpstr (s->s2[i], ==, s2[i]);
    g_assert_cmpfloat (s->gold[i], ==, gold[i]);
    g_assert_cmpuint (s->lines[i], ==, lines[i]);
  }
}

static void
test_read_benchmark_quotes (void)
{
  g_autofree char *path = fixture ("good-stsb.csv");
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimStsSplit) s = stsim_sts_read_benchmark (path, "x", &err);
  g_assert_no_error (err);
  g_assert_cmpuint (s->n, ==, 2);
  g_assert_cmpstr (s->s1[0], ==, "a \"quoted start");
  g_assert_cmpstr (s->s2[0], ==, "b \" end");
  g_assert_cmpstr (s->s1[1], ==, "the \"cat");
  g_assert_cmpstr (s->s2[1], ==, "the dog\"");  /* columns after the 7th are ignored */
  g_assert_cmpfloat (s->gold[1], ==, 1.25);
}

static void
test_read_sick_crlf (void)
{
  g_autofree char *path = fixture ("good-sick.txt");
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimStsSplit) s = stsim_sts_read_sick (path, "x", &err);
  g_assert_no_error (err);
  g_assert_cmpuint (s->n, ==, 2);
  g_assert_cmpstr (s->s1[1], ==, "The cat");
  g_assert_cmpstr (s->s2[1], ==, "The dog");
  g_assert_cmpfloat (s->gold[0], ==, 4.5);
  g_assert_cmpuint (s->lines[0], ==, 2);
}

/* ---- malformed fixtures ------------------------------------------------------- */

/* The error names @file and its line (":LINE:"), and says @words. */
static void
assert_error_at (const GError *err, int code, const char *file, guint line, const char *words)
{
  g_assert_nonnull (err);
  g_test_message ("%s", err->message);
  g_assert_true (err->domain == STSIM_ERROR);
  g_assert_cmpint (err->code, ==, code);
  g_autofree char *where = g_strdup_printf ("%s:%u:", file, line);
  g_assert_nonnull (strstr (err->message, where));
  g_assert_nonnull (strstr (err->message, words));
}

static void
check_semeval_bad (const char *in_name, const char *gs_name, int code, gboolean at_gold, guint line,
                   const char *words)
{
  g_autofree char *in = fixture (in_name);
  g_autofree char *gs = fixture (gs_name);
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimStsSplit) s = stsim_sts_read_semeval (in, gs, "bad", &err);
  g_assert_null (s);
  assert_error_at (err, code, at_gold ? gs : in, line, words);
}

static void
test_bad_field_count (void)
{
  check_semeval_bad ("bad-fields.input.txt", "bad-fields.gs.txt", STSIM_ERROR_DATA, FALSE, 2,
                     "expected 2 TAB-separated fields");
}

static void
test_bad_score (void)
{
  check_semeval_bad ("bad-score.input.txt", "bad-score.gs.txt", STSIM_ERROR_DATA, TRUE, 3, "'four'");
}

static void
test_bad_nan_score (void)
{
  check_semeval_bad ("bad-score.input.txt", "bad-nan.gs.txt", STSIM_ERROR_DATA, TRUE, 2, "'nan'");
}

static void
test_bad_line_count (void)
{
  /* 3 input lines, 2 gold lines: input line 3 has no gold line. */
  check_semeval_bad ("bad-count.input.txt", "bad-count.gs.txt", STSIM_ERROR_DATA, FALSE, 3, "3 input lines, 2 gold");
}

static void
test_bad_utf8 (void)
{
  check_semeval_bad ("bad-utf8.input.txt", "bad-utf8.gs.txt", STSIM_ERROR_ENCODING, FALSE, 2, "invalid UTF-8");
}

static void
test_bad_benchmark_fields (void)
{
  g_autofree char *path = fixture ("bad-stsb-fields.csv");
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimStsSplit) s = stsim_sts_read_benchmark (path, "x", &err);
  g_assert_null (s);
  assert_error_at (err, STSIM_ERROR_DATA, path, 2, "expected at least 7");
}

static void
test_bad_benchmark_score (void)
{
  g_autofree char *path = fixture ("bad-stsb-score.csv");
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimStsSplit) s = stsim_sts_read_benchmark (path, "x", &err);
  g_assert_null (s);
  assert_error_at (err, STSIM_ERROR_DATA, path, 3, "'2.0.1'");
}

static void
test_bad_sick_header (void)
{
  g_autofree char *path = fixture ("bad-sick-header.txt");
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimStsSplit) s = stsim_sts_read_sick (path, "x", &err);
  g_assert_null (s);
  assert_error_at (err, STSIM_ERROR_DATA, path, 1, "header");
}

/* ---- missing data ------------------------------------------------------------ */

static void
assert_data_hint (const GError *err, const char *folder)
{
  g_assert_nonnull (err);
  g_test_message ("%s", err->message);
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (err->message, folder));
  g_assert_nonnull (strstr (err->message, "--data DIR"));
  g_assert_nonnull (strstr (err->message, "STSIM_DATA"));
}

static void
test_missing_data_folder (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimStsTask) t = stsim_sts_task_load ("/nonexistent/stsim-data", "STS12", &err);
  g_assert_null (t);
  assert_data_hint (err, "/nonexistent/stsim-data");
}

static void
test_folder_without_sts (void)
{
  g_autofree char *tmp = g_dir_make_tmp ("stsim-eval-XXXXXX", NULL);
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimStsTask) t = stsim_sts_task_load (tmp, "STSBenchmark", &err);
  g_assert_null (t);
  assert_data_hint (err, tmp);
  g_assert_nonnull (strstr (err->message, "senteval"));
  g_rmdir (tmp);
}

static void
test_missing_file (void)
{
  /* The task folder exists but a subset file does not: the message names it. */
  g_autofree char *tmp = g_dir_make_tmp ("stsim-eval-XXXXXX", NULL);
  g_autofree char *dir = g_build_filename (tmp, "senteval", "downstream", "STS", "STS13-en-test", NULL);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimStsTask) t = stsim_sts_task_load (tmp, "STS13", &err);
  g_assert_null (t);
  g_autofree char *want = g_build_filename (dir, "STS.input.FNWN.txt", NULL);
  assert_data_hint (err, want);
  g_rmdir (dir);
  for (int i = 0; i < 3; i++) {
    char *slash = strrchr (dir, '/');
    *slash = '\0';
    g_rmdir (dir);
  }
  g_rmdir (tmp);
}

static void
test_unknown_task (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimStsTask) t = stsim_sts_task_load (data_dir (), "STS17", &err);
  g_assert_null (t);
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (err->message, "STS17"));
}

/* ---- the real data ------------------------------------------------------------- */

static void
test_real_counts (void)
{
  /* Pairs with gold, as in data/senteval/MANIFEST.md and method.md section 6.1. */
  static const struct { const char *task; guint n[7]; } want[] = {
    { "STS12", { 750, 750, 459, 750, 399 } },
    { "STS13", { 189, 750, 561 } },
    { "STS14", { 450, 300, 750, 750, 750, 750 } },
    { "STS15", { 375, 750, 375, 750, 750 } },
    { "STS16", { 254, 249, 230, 244, 209 } },
    { "STSBenchmark", { 5749, 1500, 1379 } },
    { "SICKRelatedness", { 4500, 500, 4927 } },
  };
  for (gsize t = 0; t < G_N_ELEMENTS (want); t++) {
    g_autoptr (GError) err = NULL;
    g_autoptr (StsimStsTask) task = stsim_sts_task_load (data_dir (), want[t].task, &err);
    g_assert_no_error (err);
    for (guint i = 0; i < task->splits->len; i++) {
      const StsimStsSplit *s = g_ptr_array_index (task->splits, i);
      g_assert_cmpuint (s->n, ==, want[t].n[i]);
    }
    g_assert_cmpuint (want[t].n[task->splits->len], ==, 0);
  }
}

static void
test_real_stsb_test (void)
{
  /* The count that a quote-honouring CSV reading gets wrong, and one of the
   * lines with an unbalanced quote read whole. */
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimStsTask) task = stsim_sts_task_load (data_dir (), "STSBenchmark", &err);
  g_assert_no_error (err);
  const StsimStsSplit *test = g_ptr_array_index (task->splits, 2);
  g_assert_cmpstr (test->name, ==, "test");
  g_assert_cmpuint (test->n, ==, 1379);
  g_assert_cmpuint (test->lines[1378], ==, 1379);
  guint with_quote = 0;
  for (gsize i = 0; i < test->n; i++)
    with_quote += strchr (test->s1[i], '"') != NULL || strchr (test->s2[i], '"') != NULL;
  g_assert_cmpuint (with_quote, >, 0);
  g_assert_cmpstr (test->s1[0], ==, "a girl is styling her hair .");
  g_assert_cmpfloat (test->gold[0], ==, 2.5);
}

/* ---- the loop -------------------------------------------------------------------- */

/* A toy encoder: 4 coordinates from the text (length, first/last byte, spaces). */
typedef struct {
  gsize n_prepared;
  guint n_calls;
  gsize max_batch;
} Toy;

static void
toy_vec (const char *s, float *out)
{
  gsize len = strlen (s);
  out[0] = (float) len;
  out[1] = len ? (float) (guchar) s[0] : 0;
  out[2] = len ? (float) (guchar) s[len - 1] : 0;
  out[3] = 0;
  for (const char *p = s; *p; p++)
    out[3] += *p == ' ';
}

static gsize
toy_dim (gpointer user_data)
{
  return 4;
}

static gboolean
toy_prepare (gpointer user_data, const char *const *s, gsize n, GError **error)
{
  ((Toy *) user_data)->n_prepared += n;
  return TRUE;
}

static gboolean
toy_encode (gpointer user_data, const char *const *s, gsize n, float *out, GError **error)
{
  Toy *t = user_data;
  t->n_calls++;
  t->max_batch = MAX (t->max_batch, n);
  for (gsize i = 0; i < n; i++)
    toy_vec (s[i], out + 4 * i);
  return TRUE;
}

static void
test_loop_order_and_batches (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimStsTask) task = stsim_sts_task_load (data_dir (), "STS13", &err);
  g_assert_no_error (err);
  Toy toy = { 0 };
  StsimStsEncoder enc = { toy_dim, toy_prepare, toy_encode, &toy };
  g_autoptr (StsimStsTaskResult) res = NULL;
  g_assert_true (stsim_sts_task_evaluate (task, &enc, NULL, 100, &res, &err));
  g_assert_no_error (err);
  /* prepare saw s1 and s2 of all 1500 pairs; batches of at most 100 pairs,
   * each side encoded separately: 2 * (2 + 8 + 6) calls for 189/750/561. */
  g_assert_cmpuint (toy.n_prepared, ==, 3000);
  g_assert_cmpuint (toy.max_batch, ==, 100);
  g_assert_cmpuint (toy.n_calls, ==, 2 * (2 + 8 + 6));
  g_assert_cmpuint (res->n_scores, ==, 1500);
  /* Scores come back in file order, whatever the sorted batching did. */
  gsize off = 0;
  for (guint i = 0; i < task->splits->len; i++) {
    const StsimStsSplit *s = g_ptr_array_index (task->splits, i);
    for (gsize p = 0; p < s->n; p++) {
      float a[4], b[4];
      toy_vec (s->s1[p], a);
      toy_vec (s->s2[p], b);
      g_assert_cmpfloat (res->scores_flat[off + p], ==, stsim_cosine (a, b, 4));
    }
    const StsimStsSplitResult *r = g_ptr_array_index (res->splits, i);
    g_assert_cmpfloat (r->spearman, ==, stsim_spearman (res->scores_flat + off, s->gold, s->n));
    off += s->n;
  }
  /* mean and wmean of the subsets' values. */
  double sum = 0, wsum = 0;
  for (guint i = 0; i < res->splits->len; i++) {
    const StsimStsSplitResult *r = g_ptr_array_index (res->splits, i);
    sum += r->spearman;
    wsum += r->spearman * r->n;
  }
  g_assert_cmpfloat_with_epsilon (res->mean_spearman, sum / 3, 1e-15);
  g_assert_cmpfloat_with_epsilon (res->wmean_spearman, wsum / 1500, 1e-15);
}

static void
test_loop_selected_splits (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimStsTask) task = stsim_sts_task_load (data_dir (), "SICKRelatedness", &err);
  g_assert_no_error (err);
  Toy toy = { 0 };
  StsimStsEncoder enc = { toy_dim, toy_prepare, toy_encode, &toy };
  const char *const dev[] = { "dev", NULL };
  g_autoptr (StsimStsTaskResult) res = NULL;
  g_assert_true (stsim_sts_task_evaluate (task, &enc, dev, 0, &res, &err));
  /* prepare still sees the whole task, as SentEval's does; only dev is scored. */
  g_assert_cmpuint (toy.n_prepared, ==, 2 * (4500 + 500 + 4927));
  g_assert_cmpuint (res->n_sentences, ==, 1000);
  g_assert_cmpuint (res->splits->len, ==, 1);
  const char *const nope[] = { "validation", NULL };
  g_autoptr (StsimStsTaskResult) res2 = NULL;
  g_assert_false (stsim_sts_task_evaluate (task, &enc, nope, 0, &res2, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
}

static gboolean
failing_encode (gpointer user_data, const char *const *s, gsize n, float *out, GError **error)
{
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_NUMERIC, "the network produced NaN");
  return FALSE;
}

static void
test_loop_encoder_error (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimStsTask) task = stsim_sts_task_load (data_dir (), "STS16", &err);
  g_assert_no_error (err);
  StsimStsEncoder enc = { toy_dim, NULL, failing_encode, NULL };
  g_autoptr (StsimStsTaskResult) res = NULL;
  g_assert_false (stsim_sts_task_evaluate (task, &enc, NULL, 0, &res, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NUMERIC);
  g_assert_nonnull (strstr (err->message, "STS16/answer-answer"));
  g_assert_nonnull (strstr (err->message, "the network produced NaN"));
}

static gboolean
nan_encode (gpointer user_data, const char *const *s, gsize n, float *out, GError **error)
{
  for (gsize i = 0; i < n * 4; i++)
    out[i] = i == 6 ? NAN : 1.0f;
  return TRUE;
}

static gboolean
constant_encode (gpointer user_data, const char *const *s, gsize n, float *out, GError **error)
{
  for (gsize i = 0; i < n * 4; i++)
    out[i] = (float) (i % 4 + 1);
  return TRUE;
}

static gsize
four (gpointer user_data)
{
  return 4;
}

/* A NaN in an embedding scored as cosine 0 (SentEval's nan_to_num), and a
 * constant encoder gave NaN correlations: both printed a table of nan with
 * success. Now errors naming the task, split, line and sentence. */
static void
test_non_finite (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimStsTask) task = stsim_sts_task_load (data_dir (), "STS16", &err);
  g_assert_no_error (err);
  StsimStsEncoder enc = { four, NULL, nan_encode, NULL };
  g_autoptr (StsimStsTaskResult) res = NULL;
  g_assert_false (stsim_sts_task_evaluate (task, &enc, NULL, 0, &res, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NUMERIC);
  g_test_message ("%s", err->message);
  g_assert_nonnull (strstr (err->message, "STS16/answer-answer: the embedding of sentence 1 of line "));
  g_assert_nonnull (strstr (err->message, "(NaN at dimension 2)"));
  g_clear_error (&err);

  StsimStsEncoder same = { four, NULL, constant_encode, NULL };
  StsimStsOptions opts = { .data_dir = data_dir (), .tasks = "STS16" };
  g_autoptr (JsonObject) report = json_object_new ();
  g_assert_false (stsim_sts_run (&opts, &same, report, NULL, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NUMERIC);
  g_assert_nonnull (strstr (err->message, "STS16/all: the Spearman correlation is undefined"));
  g_clear_error (&err);
  StsimStsOptions dev = { .data_dir = data_dir (), .mode = STSIM_EVAL_DEV };
  g_autoptr (JsonObject) report2 = json_object_new ();
  g_assert_false (stsim_sts_run (&dev, &same, report2, NULL, &err));
  g_assert_nonnull (strstr (err->message, "STSBenchmark/dev: the Spearman correlation is undefined"));
}

static void
test_run_bad_task_list (void)
{
  Toy toy = { 0 };
  StsimStsEncoder enc = { toy_dim, toy_prepare, toy_encode, &toy };
  StsimStsOptions opts = { .data_dir = data_dir (), .tasks = "STS12,STSB" };
  g_autoptr (JsonObject) report = json_object_new ();
  g_autoptr (GError) err = NULL;
  g_assert_false (stsim_sts_run (&opts, &enc, report, NULL, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_INVALID);
  g_assert_nonnull (strstr (err->message, "'STSB'"));
  g_assert_cmpuint (toy.n_prepared, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sts/data/normalize", test_normalize);
  g_test_add_func ("/sts/loop/non-finite", test_non_finite);
  g_test_add_func ("/sts/data/semeval-good", test_read_semeval_good);
  g_test_add_func ("/sts/data/benchmark-quotes", test_read_benchmark_quotes);
  g_test_add_func ("/sts/data/sick-crlf", test_read_sick_crlf);
  g_test_add_func ("/sts/data/bad-field-count", test_bad_field_count);
  g_test_add_func ("/sts/data/bad-score", test_bad_score);
  g_test_add_func ("/sts/data/bad-nan-score", test_bad_nan_score);
  g_test_add_func ("/sts/data/bad-line-count", test_bad_line_count);
  g_test_add_func ("/sts/data/bad-utf8", test_bad_utf8);
  g_test_add_func ("/sts/data/bad-benchmark-fields", test_bad_benchmark_fields);
  g_test_add_func ("/sts/data/bad-benchmark-score", test_bad_benchmark_score);
  g_test_add_func ("/sts/data/bad-sick-header", test_bad_sick_header);
  g_test_add_func ("/sts/data/missing-data-folder", test_missing_data_folder);
  g_test_add_func ("/sts/data/folder-without-sts", test_folder_without_sts);
  g_test_add_func ("/sts/data/missing-file", test_missing_file);
  g_test_add_func ("/sts/data/unknown-task", test_unknown_task);
  g_test_add_func ("/sts/data/real-counts", test_real_counts);
  g_test_add_func ("/sts/data/real-stsb-test", test_real_stsb_test);
  g_test_add_func ("/sts/loop/order-and-batches", test_loop_order_and_batches);
  g_test_add_func ("/sts/loop/selected-splits", test_loop_selected_splits);
  g_test_add_func ("/sts/loop/encoder-error", test_loop_encoder_error);
  g_test_add_func ("/sts/run/bad-task-list", test_run_bad_task_list);
  return g_test_run ();
}
