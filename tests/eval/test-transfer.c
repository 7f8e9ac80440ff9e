/* test-transfer.c: the transfer-task protocol (include/stsim/stsim-transfer.h).
 *
 * - numpy's RandomState stream, SentEval's stratified folds and the three
 *   validation schemes against tests/fixtures/transfer/golden.json, computed
 *   independently by tests/reference/transfer_reference.py (numpy) on fixed
 *   low-dimensional features, in both SimCSE modes. Every accuracy, F1 and
 *   chosen penalty must match to TOL: both sides draw the same streams and
 *   run in double precision, so only summation order differs, and that has to
 *   flip a prediction to move a number;
 * - the readers on the real data (sizes, labels, SentEval's sort order);
 * - malformed and missing files: errors name the file and the line;
 * - the whole loop (stsim_transfer_run) on a small data folder, twice, with a
 *   deterministic toy encoder: the seven-task table, identical both times. */
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>

#include "stsim/stsim-transfer.h"
#include "test-util.h"

#define TOL 0.011  /* one unit of SentEval's two-decimal rounding */

static JsonObject *
load_golden (JsonParser **parser)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "fixtures", "transfer", "golden.json", NULL);
  g_autoptr (GError) err = NULL;
  *parser = json_parser_new ();
  g_assert_true (json_parser_load_from_file (*parser, path, &err));
  g_assert_no_error (err);
  return json_node_get_object (json_parser_get_root (*parser));
}

static gint32 *
int_array (JsonArray *a, gsize *n)
{
  *n = json_array_get_length (a);
  gint32 *out = g_new (gint32, MAX (*n, 1));
  for (gsize i = 0; i < *n; i++)
    out[i] = (gint32) json_array_get_int_element (a, i);
  return out;
}

static void
test_numpy_stream (void)
{
  g_autoptr (JsonParser) parser = NULL;
  JsonObject *np = json_object_get_object_member (load_golden (&parser), "numpy");
  gsize n;
  g_autofree gint32 *want = int_array (json_object_get_array_member (np, "permutation_10_seed_1111"), &n);
  gint32 got[1000];
  StsimMt19937 mt;
  stsim_mt19937_init (&mt, 1111);
  stsim_mt19937_permutation (&mt, got, n);
  for (gsize i = 0; i < n; i++)
    g_assert_cmpint (got[i], ==, want[i]);
  g_autofree gint32 *head = int_array (json_object_get_array_member (np, "permutation_1000_seed_7_head"), &n);
  stsim_mt19937_init (&mt, 7);
  stsim_mt19937_permutation (&mt, got, 1000);
  for (gsize i = 0; i < n; i++)
    g_assert_cmpint (got[i], ==, head[i]);
  JsonArray *rs = json_object_get_array_member (np, "random_sample_seed_1111");
  stsim_mt19937_init (&mt, 1111);
  for (guint i = 0; i < json_array_get_length (rs); i++)
    g_assert_cmpfloat (stsim_mt19937_double (&mt), ==, json_array_get_double_element (rs, i));
}

/* The labels of a fixture task's split. */
static JsonObject *
fixture_split (JsonObject *golden, const char *task, guint split)
{
  JsonArray *tasks = json_object_get_array_member (golden, "tasks");
  for (guint i = 0; i < json_array_get_length (tasks); i++) {
    JsonObject *t = json_array_get_object_element (tasks, i);
    if (strcmp (json_object_get_string_member (t, "name"), task) == 0)
      return json_array_get_object_element (json_object_get_array_member (t, "splits"), split);
  }
  g_assert_not_reached ();
}

static void
test_folds (void)
{
  g_autoptr (JsonParser) parser = NULL;
  JsonObject *g = load_golden (&parser);
  JsonObject *np = json_object_get_object_member (g, "numpy");
  const struct { const char *key, *task; guint k; } cases[] = {
    { "folds_inner_k10", "inner", 10 }, { "folds_kfold3_k5", "kfold3", 5 },
  };
  for (gsize c = 0; c < G_N_ELEMENTS (cases); c++) {
    gsize n, m;
    g_autofree gint32 *want = int_array (json_object_get_array_member (np, cases[c].key), &n);
    g_autofree gint32 *y = int_array (json_object_get_array_member (fixture_split (g, cases[c].task, 0), "y"), &m);
    g_assert_cmpuint (n, ==, m);
    g_autofree gint32 *got = g_new (gint32, n);
    g_autoptr (GError) err = NULL;
    g_assert_true (stsim_transfer_stratified_folds (y, n, cases[c].k, 1111, got, &err));
    for (gsize i = 0; i < n; i++)
      g_assert_cmpint (got[i], ==, want[i]);
  }
  /* Every class smaller than k: scikit-learn refuses, so does this. */
  gint32 y[4] = { 0, 1, 0, 1 }, f[4];
  g_autoptr (GError) err = NULL;
  g_assert_false (stsim_transfer_stratified_folds (y, 4, 5, 1111, f, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_INVALID);
}

static StsimTransferMatrix *
fixture_matrix (JsonObject *split, gint32 **y)
{
  JsonArray *rows = json_object_get_array_member (split, "x");
  gsize n = json_array_get_length (rows), d = json_array_get_length (json_array_get_array_element (rows, 0)), k;
  g_autofree float *x = g_new (float, n * d);
  for (gsize i = 0; i < n; i++) {
    JsonArray *r = json_array_get_array_element (rows, i);
    for (gsize j = 0; j < d; j++)
      x[i * d + j] = (float) json_array_get_double_element (r, j);
  }
  *y = int_array (json_object_get_array_member (split, "y"), &k);
  g_assert_cmpuint (k, ==, n);
  return stsim_transfer_matrix_new_dense (x, n, d);
}

static void
check_close (const char *what, double got, double want)
{
  g_test_message ("%s: C %.2f, reference %.2f", what, got, want);
  if (fabs (got - want) > TOL)
    g_error ("%s: C %.4f, reference %.4f (tolerance %.3f)", what, got, want, TOL);
}

static void
test_schemes (gconstpointer mode_name)
{
  g_autoptr (JsonParser) parser = NULL;
  JsonObject *g = load_golden (&parser);
  JsonObject *results = json_object_get_object_member (json_object_get_object_member (g, "results"), mode_name);
  StsimTransferConfig cfg;
  stsim_transfer_config_init (&cfg, strcmp (mode_name, "fasttest") == 0);
  JsonArray *tasks = json_object_get_array_member (g, "tasks");
  for (guint i = 0; i < json_array_get_length (tasks); i++) {
    JsonObject *t = json_array_get_object_element (tasks, i);
    const char *name = json_object_get_string_member (t, "name"), *scheme = json_object_get_string_member (t, "scheme");
    guint nc = (guint) json_object_get_int_member (t, "n_classes");
    JsonArray *splits = json_object_get_array_member (t, "splits");
    g_autoptr (StsimTransferMatrix) x0 = NULL, x1 = NULL, x2 = NULL;
    g_autofree gint32 *y0 = NULL, *y1 = NULL, *y2 = NULL;
    x0 = fixture_matrix (json_array_get_object_element (splits, 0), &y0);
    if (json_array_get_length (splits) > 1)
      x1 = fixture_matrix (json_array_get_object_element (splits, 1), &y1);
    if (json_array_get_length (splits) > 2)
      x2 = fixture_matrix (json_array_get_object_element (splits, 2), &y2);
    StsimTransferScore s;
    g_autoptr (GError) err = NULL;
    gboolean ok;
    if (strcmp (scheme, "inner_kfold") == 0)
      ok = stsim_transfer_inner_kfold (x0, y0, nc, &cfg, &s, &err);
    else if (strcmp (scheme, "kfold") == 0)
      ok = stsim_transfer_kfold (x0, y0, x1, y1, nc, &cfg, &s, NULL, &err);
    else
      ok = stsim_transfer_split (x0, y0, x1, y1, x2, y2, nc, &cfg, &s, &err);
    g_assert_no_error (err);
    g_assert_true (ok);
    JsonObject *want = json_object_get_object_member (results, name);
    g_autofree char *w1 = g_strdup_printf ("%s %s devacc", (const char *) mode_name, name);
    g_autofree char *w2 = g_strdup_printf ("%s %s acc", (const char *) mode_name, name);
    check_close (w1, s.devacc, json_object_get_double_member (want, "devacc"));
    check_close (w2, s.acc, json_object_get_double_member (want, "acc"));
    if (json_object_has_member (want, "f1")) {
      g_autofree char *w3 = g_strdup_printf ("%s %s f1", (const char *) mode_name, name);
      check_close (w3, s.f1, json_object_get_double_member (want, "f1"));
    } else
      g_assert_true (isnan (s.f1));
    g_assert_cmpfloat (s.reg, ==, json_object_get_double_member (want, "reg"));
  }
}

/* ---- readers on the real data ----------------------------------------------- */

static void
test_readers (void)
{
  const char *data = g_getenv ("STSIM_DATA");
  const struct { const char *name; gsize n[3]; guint classes; } want[] = {
    { "MR", { 10662 }, 2 }, { "CR", { 3775 }, 2 }, { "SUBJ", { 10000 }, 2 }, { "MPQA", { 10606 }, 2 },
    { "SST2", { 67349, 872, 1821 }, 2 }, { "TREC", { 5452, 500 }, 6 }, { "MRPC", { 4076, 1725 }, 2 },
  };
  if (data == NULL || !g_file_test (data, G_FILE_TEST_IS_DIR)) {
    g_test_skip ("no data folder (STSIM_DATA)");
    return;
  }
  for (gsize i = 0; i < G_N_ELEMENTS (want); i++) {
    g_autoptr (GError) err = NULL;
    g_autoptr (StsimTransferTask) t = stsim_transfer_task_load (data, want[i].name, &err);
    g_assert_no_error (err);
    g_assert_cmpuint (t->n_classes, ==, want[i].classes);
    gsize total = 0;
    for (guint s = 0; s < t->splits->len; s++) {
      const StsimTransferSplit *sp = g_ptr_array_index (t->splits, s);
      g_assert_cmpuint (sp->n, ==, want[i].n[s]);
      total += sp->n;
      /* SentEval's order: token count, then label, non-decreasing. */
      for (gsize r = 1; r < sp->n; r++) {
        g_auto (GStrv) a = stsim_sts_split_whitespace (sp->s1[r - 1]);
        g_auto (GStrv) b = stsim_sts_split_whitespace (sp->s1[r]);
        guint la = g_strv_length (a), lb = g_strv_length (b);
        g_assert_cmpuint (la, <=, lb);
        if (la == lb && sp->s2 == NULL)
          g_assert_cmpint (sp->y[r - 1], <=, sp->y[r]);
      }
      for (gsize r = 0; r < sp->n; r++)
        g_assert_cmpint (sp->y[r], <, (gint32) t->n_classes);
    }
    g_assert_cmpuint (t->n_prepare, ==, t->pairs ? 2 * total : total);
  }
  /* TREC's one Latin-1 byte arrives as its UTF-8 character. */
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimTransferTask) trec = stsim_transfer_task_load (data, "TREC", &err);
  gboolean found = FALSE;
  for (gsize i = 0; i < trec->n_prepare; i++) {
    g_assert_true (g_utf8_validate (trec->prepare[i], -1, NULL));
    found = found || strstr (trec->prepare[i], "\xc3") || strstr (trec->prepare[i], "\xc2");
  }
  g_assert_true (found);
}

/* ---- malformed files ------------------------------------------------------------- */

static char *
make_data (const char *const *files)
{
  g_autoptr (GError) err = NULL;
  char *dir = g_dir_make_tmp ("stsim-transfer-XXXXXX", &err);
  g_assert_no_error (err);
  for (gsize i = 0; files[i]; i += 2) {
    g_autofree char *path = g_build_filename (dir, "senteval", "downstream", files[i], NULL);
    g_autofree char *parent = g_path_get_dirname (path);
    g_assert_cmpint (g_mkdir_with_parents (parent, 0700), ==, 0);
    g_assert_true (g_file_set_contents (path, files[i + 1], -1, &err));
  }
  return dir;
}

static void
expect_error (const char *const *files, const char *task, const char *needle, const char *needle2)
{
  g_autofree char *dir = make_data (files);
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimTransferTask) t = stsim_transfer_task_load (dir, task, &err);
  g_assert_null (t);
  g_assert_nonnull (err);
  g_test_message ("%s: %s", task, err->message);
  g_assert_nonnull (strstr (err->message, needle));
  if (needle2)
    g_assert_nonnull (strstr (err->message, needle2));
  stsim_test_remove_tree (dir);
}

static void
test_malformed (void)
{
  const char *sst[] = { "SST/binary/sentiment-train", "good one\t1\nbad one\t7\n", "SST/binary/sentiment-dev",
                        "a\t0\n", "SST/binary/sentiment-test", "b\t1\n", NULL };
  expect_error (sst, "SST2", "sentiment-train:2:", "label 0 or 1");
  const char *sst_tab[] = { "SST/binary/sentiment-train", "a\t1\nno label here\n", NULL };
  expect_error (sst_tab, "SST2", "sentiment-train:2:", NULL);
  const char *trec[] = { "TREC/train_5500.label", "DESC:manner How ?\nXYZ:foo What ?\n", "TREC/TREC_10.label",
                         "HUM:ind Who ?\n", NULL };
  expect_error (trec, "TREC", "train_5500.label:2:", "ABBR");
  const char *mrpc[] = { "MRPC/msr_paraphrase_train.txt", "\xef\xbb\xbfQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                         "1\t1\t2\tA b\tA c\n1\t3\t4\tonly four\n", NULL };
  expect_error (mrpc, "MRPC", "msr_paraphrase_train.txt:3:", "header");
  const char *utf8[] = { "SST/binary/sentiment-train", "ok\t1\n\xff\xfe bad\t0\n", NULL };
  expect_error (utf8, "SST2", "sentiment-train:2:", "UTF-8");
  const char *missing[] = { "MR/rt-polarity.pos", "good\n", NULL };
  expect_error (missing, "MR", "rt-polarity.neg", "--data");
  const char *nodir[] = { "CR/custrev.pos", "x\n", NULL };
  expect_error (nodir, "SUBJ", "SUBJ", "senteval/downstream");
  const char *empty[] = { "MPQA/mpqa.pos", "", "MPQA/mpqa.neg", "bad\n", NULL };
  expect_error (empty, "MPQA", "mpqa.pos", "no sentences");
  g_autoptr (GError) err = NULL;
  g_assert_null (stsim_transfer_task_load ("/nonexistent", "STS12", &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_INVALID);
}

/* ---- the whole loop --------------------------------------------------------------- */

#define TOY_DIM 8

/* Counts of a few letters, a length feature and a word hash: enough signal
 * for the toy tasks below, no state. */
static gsize
toy_dim (gpointer user_data)
{
  return TOY_DIM;
}

static gboolean
toy_encode (gpointer user_data, const char *const *s, gsize n, float *out, GError **error)
{
  for (gsize i = 0; i < n; i++) {
    float *o = out + i * TOY_DIM;
    memset (o, 0, TOY_DIM * sizeof (float));
    for (const char *p = s[i]; *p; p++) {
      if (*p == 'g')
        o[0] += 1;
      if (*p == 'b')
        o[1] += 1;
      if (*p == '?')
        o[2] += 1;
      o[3 + ((guchar) *p % 4)] += 0.1f;
    }
    o[7] = (float) strlen (s[i]) / 10.0f;
  }
  return TRUE;
}

static GString *
toy_lines (const char *const *words, guint n, const char *suffix)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < n; i++)
    g_string_append_printf (s, "%s %s number %u%s\n", words[i % 2], words[(i / 2) % 2], i, suffix);
  return s;
}

static char *
toy_data (void)
{
  const char *good[] = { "good", "great" }, *bad[] = { "bad", "boring" };
  g_autoptr (GString) pos = toy_lines (good, 40, ""), neg = toy_lines (bad, 40, "");
  g_autoptr (GString) sst_tr = g_string_new (NULL), sst_dv = g_string_new (NULL), sst_te = g_string_new (NULL);
  g_autoptr (GString) trec_tr = g_string_new (NULL), trec_te = g_string_new (NULL);
  g_autoptr (GString) mrpc_tr = g_string_new ("\xef\xbb\xbfQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n");
  g_autoptr (GString) mrpc_te = g_string_new ("\xef\xbb\xbfQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n");
  for (guint i = 0; i < 60; i++) {
    GString *sst = i < 40 ? sst_tr : i < 50 ? sst_dv : sst_te;
    g_string_append_printf (sst, "%s movie %u \t%u\n", i % 2 ? "good" : "bad", i, i % 2);
    GString *trec = i < 45 ? trec_tr : trec_te;
    g_string_append_printf (trec, "%s:x %s thing %u ?%s\n", i % 3 == 0 ? "HUM" : i % 3 == 1 ? "LOC" : "NUM",
                            i % 3 == 0 ? "who" : i % 3 == 1 ? "where is the" : "how many bbb", i, i % 3 ? " ?" : "");
    GString *mrpc = i < 40 ? mrpc_tr : mrpc_te;
    g_string_append_printf (mrpc, "%u\t%u\t%u\tthe g%s text %u\tthe %s text %u\n", i % 2, i, i + 100,
                            i % 2 ? "ood" : "bbb", i, i % 2 ? "good" : "ggg", i);
  }
  const char *files[] = {
    "MR/rt-polarity.pos", pos->str, "MR/rt-polarity.neg", neg->str,
    "CR/custrev.pos", pos->str, "CR/custrev.neg", neg->str,
    "SUBJ/subj.objective", pos->str, "SUBJ/subj.subjective", neg->str,
    "MPQA/mpqa.pos", pos->str, "MPQA/mpqa.neg", neg->str,
    "SST/binary/sentiment-train", sst_tr->str, "SST/binary/sentiment-dev", sst_dv->str,
    "SST/binary/sentiment-test", sst_te->str,
    "TREC/train_5500.label", trec_tr->str, "TREC/TREC_10.label", trec_te->str,
    "MRPC/msr_paraphrase_train.txt", mrpc_tr->str, "MRPC/msr_paraphrase_test.txt", mrpc_te->str, NULL,
  };
  return make_data (files);
}

static void
test_run (void)
{
  g_autofree char *dir = toy_data ();
  StsimStsEncoder enc = { .dim = toy_dim, .encode = toy_encode };
  StsimTransferOptions o = { .data_dir = dir, .mode = STSIM_EVAL_TEST, .fasttest = TRUE, .quiet = TRUE };
  g_autofree char *first = NULL;
  for (int round = 0; round < 2; round++) {
    g_autoptr (JsonObject) report = json_object_new ();
    g_autoptr (GError) err = NULL;
    double primary = NAN;
    g_assert_true (stsim_transfer_run (&o, &enc, report, &primary, &err));
    g_assert_no_error (err);
    JsonObject *table = json_object_get_object_member (report, "table");
    const char *const *names = stsim_transfer_task_names ();
    double sum = 0;
    for (gsize i = 0; names[i]; i++) {
      double v = json_object_get_double_member (table, names[i]);
      g_assert_cmpfloat (v, >=, 0);
      g_assert_cmpfloat (v, <=, 100);
      sum += v;
    }
    g_assert_cmpfloat_with_epsilon (json_object_get_double_member (table, "Avg"), sum / 7, 1e-9);
    g_assert_cmpfloat_with_epsilon (primary, sum / 7 / 100, 1e-12);
    /* The separable binary toy tasks are learnt. */
    g_assert_cmpfloat (json_object_get_double_member (table, "MR"), >, 80);
    JsonObject *mrpc = json_object_get_object_member (json_object_get_object_member (report, "tasks"), "MRPC");
    g_assert_true (json_object_has_member (mrpc, "f1"));
    g_assert_cmpint (json_object_get_int_member (mrpc, "features"), ==, 2 * TOY_DIM);
    g_autofree char *text = stsim_sts_report_format (report);
    g_test_message ("%s", text);
    g_assert_nonnull (strstr (text, " MR |"));
    g_assert_nonnull (strstr (text, "MRPC |"));
    g_assert_nonnull (strstr (text, "Avg |"));
    /* Everything but the timings is deterministic. */
    g_autofree char *tab = g_strndup (text, strstr (text, "\nMR ") - text);
    if (first == NULL)
      first = g_steal_pointer (&tab);
    else
      g_assert_cmpstr (first, ==, tab);
  }
  /* An unknown task name is an error naming it. */
  g_autoptr (JsonObject) report = json_object_new ();
  g_autoptr (GError) err = NULL;
  o.tasks = "MR,XYZ";
  g_assert_false (stsim_transfer_run (&o, &enc, report, NULL, &err));
  g_assert_nonnull (strstr (err->message, "XYZ"));
  stsim_test_remove_tree (dir);
}

static float
matrix_get (const StsimTransferMatrix *m, gsize i, gsize j)
{
  if (m->dense)
    return m->dense[i * m->d + j];
  for (gsize p = m->rowptr[i]; p < m->rowptr[i + 1]; p++)
    if (m->col[p] == j)
      return m->val[p];
  return 0.0f;
}

/* Sparse and dense rows of the same numbers give the same results. */
static void
test_sparse (void)
{
  const gsize n = 120, d = 40;
  g_autofree float *x = g_new0 (float, n * d);
  g_autofree gint32 *y = g_new (gint32, n);
  StsimMt19937 mt;
  stsim_mt19937_init (&mt, 3);
  for (gsize i = 0; i < n; i++) {
    y[i] = (gint32) (i % 2);
    for (int k = 0; k < 3; k++)
      x[i * d + stsim_mt19937_u32 (&mt) % d] += 1.0f;
    x[i * d + (y[i] ? 0 : 1)] += (float) (stsim_mt19937_double (&mt) < 0.8);
  }
  g_autoptr (StsimTransferMatrix) dense = stsim_transfer_matrix_new_dense (x, n, d);
  g_autoptr (StsimTransferMatrix) sparse = g_new0 (StsimTransferMatrix, 1);
  sparse->n = n;
  sparse->d = d;
  sparse->rowptr = g_new0 (gsize, n + 1);
  sparse->col = g_new (guint32, n * d);
  sparse->val = g_new (float, n * d);
  gsize nnz = 0;
  for (gsize i = 0; i < n; i++) {
    for (gsize j = 0; j < d; j++)
      if (x[i * d + j] != 0) {
        sparse->col[nnz] = (guint32) j;
        sparse->val[nnz++] = x[i * d + j];
      }
    sparse->rowptr[i + 1] = nnz;
  }
  StsimTransferConfig cfg;
  stsim_transfer_config_init (&cfg, TRUE);
  StsimTransferScore a, b;
  g_autoptr (GError) err = NULL;
  g_assert_true (stsim_transfer_inner_kfold (dense, y, 2, &cfg, &a, &err));
  g_assert_true (stsim_transfer_inner_kfold (sparse, y, 2, &cfg, &b, &err));
  g_assert_cmpfloat (a.devacc, ==, b.devacc);
  g_assert_cmpfloat (a.acc, ==, b.acc);
  g_assert_cmpfloat (a.acc, >, 70);
  /* MRPC features of sparse rows equal those of dense rows. */
  g_autoptr (StsimTransferMatrix) pd = stsim_transfer_matrix_pair (dense, dense);
  g_autoptr (StsimTransferMatrix) ps = stsim_transfer_matrix_pair (sparse, dense);
  g_assert_cmpuint (pd->d, ==, 2 * d);
  g_assert_cmpuint (ps->d, ==, 2 * d);
  for (gsize i = 0; i < n; i++)
    for (gsize j = 0; j < d; j++) {
      g_assert_cmpfloat (matrix_get (pd, i, j), ==, 0);
      g_assert_cmpfloat (matrix_get (ps, i, j), ==, 0);
      g_assert_cmpfloat (matrix_get (pd, i, d + j), ==, x[i * d + j] * x[i * d + j]);
      g_assert_cmpfloat (matrix_get (ps, i, d + j), ==, x[i * d + j] * x[i * d + j]);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/transfer/numpy-stream", test_numpy_stream);
  g_test_add_func ("/transfer/folds", test_folds);
  g_test_add_data_func ("/transfer/reference/test", "test", test_schemes);
  g_test_add_data_func ("/transfer/reference/fasttest", "fasttest", test_schemes);
  g_test_add_func ("/transfer/sparse", test_sparse);
  g_test_add_func ("/transfer/readers", test_readers);
  g_test_add_func ("/transfer/malformed", test_malformed);
  g_test_add_func ("/transfer/run", test_run);
  return g_test_run ();
}
