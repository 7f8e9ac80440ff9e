/* transfer-eval.c: the transfer-task evaluation loop (SentEval's engine with
 * SimCSE's settings), its feature matrices, the JSON report and the table.
 *
 * Per task: prepare() with every sentence in SentEval's order, the sorted
 * rows encoded in batches, then the task's validation scheme. Bag-of-words
 * vectors (mostly zeros, as wide as the vocabulary) are kept as sparse rows
 * so that MR's 10,662 x ~20,000 features do not need 850 MB. */
#include <math.h>
#include <string.h>

#include "stsim/stsim-transfer.h"

#define DEFAULT_BATCH 128
/* Below this fraction of non-zeros the first batch makes a matrix sparse. */
#define SPARSE_DENSITY 0.10

/* ---- matrices ----------------------------------------------------------------- */

void
stsim_transfer_matrix_free (StsimTransferMatrix *m)
{
  if (m == NULL)
    return;
  g_free (m->dense);
  g_free (m->rowptr);
  g_free (m->col);
  g_free (m->val);
  g_free (m);
}

StsimTransferMatrix *
stsim_transfer_matrix_new_dense (const float *x, gsize n, gsize d)
{
  StsimTransferMatrix *m = g_new0 (StsimTransferMatrix, 1);
  m->n = n;
  m->d = d;
  m->dense = g_memdup2 (x, n * d * sizeof (float));
  return m;
}

/* A matrix filled batch by batch; sparse or dense as the first batch says. */
typedef struct {
  StsimTransferMatrix *m;
  gsize   cap_rows, rows, nnz, cap_nnz;
  gboolean decided;
} Builder;

static void
builder_init (Builder *b, gsize n, gsize d)
{
  memset (b, 0, sizeof *b);
  b->m = g_new0 (StsimTransferMatrix, 1);
  b->m->n = n;
  b->m->d = d;
  b->cap_rows = n;
}

static void
builder_append (Builder *b, const float *x, gsize nb)
{
  StsimTransferMatrix *m = b->m;
  gsize d = m->d;
  if (!b->decided) {
    gsize nz = 0;
    for (gsize i = 0; i < nb * d; i++)
      nz += x[i] != 0.0f;
    b->decided = TRUE;
    if ((double) nz < SPARSE_DENSITY * (double) (nb * d)) {
      m->rowptr = g_new0 (gsize, m->n + 1);
      b->cap_nnz = MAX (nz * (m->n / MAX (nb, 1) + 1), 16);
      m->col = g_new (guint32, b->cap_nnz);
      m->val = g_new (float, b->cap_nnz);
    } else
      m->dense = g_new (float, m->n * d);
  }
  if (m->dense)
    memcpy (m->dense + b->rows * d, x, nb * d * sizeof (float));
  else
    for (gsize i = 0; i < nb; i++) {
      for (gsize j = 0; j < d; j++) {
        float v = x[i * d + j];
        if (v == 0.0f)
          continue;
        if (b->nnz == b->cap_nnz) {
          b->cap_nnz *= 2;
          m->col = g_renew (guint32, m->col, b->cap_nnz);
          m->val = g_renew (float, m->val, b->cap_nnz);
        }
        m->col[b->nnz] = (guint32) j;
        m->val[b->nnz++] = v;
      }
      m->rowptr[b->rows + i + 1] = b->nnz;
    }
  b->rows += nb;
}

/* Row @i of @m as a dense vector of m->d floats in @out. */
static void
matrix_row (const StsimTransferMatrix *m, gsize i, float *out)
{
  if (m->dense) {
    memcpy (out, m->dense + i * m->d, m->d * sizeof (float));
    return;
  }
  memset (out, 0, m->d * sizeof (float));
  for (gsize p = m->rowptr[i]; p < m->rowptr[i + 1]; p++)
    out[m->col[p]] = m->val[p];
}

StsimTransferMatrix *
stsim_transfer_matrix_pair (const StsimTransferMatrix *a, const StsimTransferMatrix *b)
{
  g_return_val_if_fail (a && b && a->n == b->n && a->d == b->d, NULL);
  gsize d = a->d;
  Builder bld;
  builder_init (&bld, a->n, 2 * d);
  g_autofree float *u = g_new (float, d), *v = g_new (float, d), *row = g_new (float, 2 * d);
  for (gsize i = 0; i < a->n; i++) {
    matrix_row (a, i, u);
    matrix_row (b, i, v);
    for (gsize j = 0; j < d; j++) {
      row[j] = fabsf (u[j] - v[j]);
      row[d + j] = u[j] * v[j];
    }
    builder_append (&bld, row, 1);
  }
  return bld.m;
}

/* ---- encoding ------------------------------------------------------------------- */

typedef struct {
  const StsimStsEncoder *enc;
  gsize   batch;
  gsize   n_sentences;
  double  encode_seconds;
} Encoding;

static StsimTransferMatrix *
encode_rows (Encoding *e, char *const *sentences, gsize n, gsize d, GError **error)
{
  Builder b;
  builder_init (&b, n, d);
  g_autofree float *out = g_new (float, e->batch * d);
  for (gsize i = 0; i < n; i += e->batch) {
    gsize nb = MIN (e->batch, n - i);
    gint64 t0 = g_get_monotonic_time ();
    if (!e->enc->encode (e->enc->user_data, (const char *const *) sentences + i, nb, out, error)) {
      stsim_transfer_matrix_free (b.m);
      return NULL;
    }
    e->encode_seconds += (g_get_monotonic_time () - t0) / 1e6;
    for (gsize k = 0; k < nb * d; k++)
      if (!isfinite (out[k]))
        out[k] = isnan (out[k]) ? 0.0f : copysignf (G_MAXFLOAT, out[k]);  /* np.nan_to_num */
    builder_append (&b, out, nb);
  }
  e->n_sentences += n;
  return b.m;
}

/* The features of one split: u, or SentEval's MRPC pair features. */
static StsimTransferMatrix *
split_features (Encoding *e, const StsimTransferSplit *s, gsize d, GError **error)
{
  g_autoptr (StsimTransferMatrix) u = encode_rows (e, s->s1, s->n, d, error);
  if (u == NULL || s->s2 == NULL)
    return g_steal_pointer (&u);
  g_autoptr (StsimTransferMatrix) v = encode_rows (e, s->s2, s->n, d, error);
  return v ? stsim_transfer_matrix_pair (u, v) : NULL;
}

static const StsimTransferSplit *
get_split (const StsimTransferTask *t, guint i)
{
  return g_ptr_array_index (t->splits, i);
}

/* ---- one task ---------------------------------------------------------------------- */

static gboolean
task_score (const StsimTransferTask *t, StsimTransferMatrix **x, const StsimTransferConfig *cfg,
            StsimTransferScore *score, GError **error)
{
  switch (t->scheme) {
  case STSIM_TRANSFER_INNER_KFOLD:
    return stsim_transfer_inner_kfold (x[0], get_split (t, 0)->y, t->n_classes, cfg, score, error);
  case STSIM_TRANSFER_KFOLD:
    return stsim_transfer_kfold (x[0], get_split (t, 0)->y, x[1], get_split (t, 1)->y, t->n_classes, cfg, score,
                                 NULL, error);
  case STSIM_TRANSFER_SPLIT:
  default:
    return stsim_transfer_split (x[0], get_split (t, 0)->y, x[1], get_split (t, 1)->y, x[2], get_split (t, 2)->y,
                                 t->n_classes, cfg, score, error);
  }
}

static JsonObject *
run_task (const StsimTransferOptions *o, const StsimStsEncoder *enc, const StsimTransferConfig *cfg,
          const char *name, GError **error)
{
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (StsimTransferTask) t = stsim_transfer_task_load (o->data_dir, name, error);
  if (t == NULL)
    return NULL;
  if (enc->prepare &&
      !enc->prepare (enc->user_data, (const char *const *) t->prepare, t->n_prepare, error)) {
    g_prefix_error (error, "%s: prepare: ", name);
    return NULL;
  }
  gsize d = enc->dim (enc->user_data);
  if (d == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s: the encoder reports dimension 0", name);
    return NULL;
  }
  Encoding e = { .enc = enc, .batch = o->batch_size ? o->batch_size : DEFAULT_BATCH };
  StsimTransferMatrix *x[3] = { NULL, NULL, NULL };
  gboolean ok = TRUE;
  for (guint i = 0; ok && i < t->splits->len; i++)
    ok = (x[i] = split_features (&e, get_split (t, i), d, error)) != NULL;
  gint64 t1 = g_get_monotonic_time ();
  StsimTransferScore s;
  if (ok)
    ok = task_score (t, x, cfg, &s, error);
  gboolean sparse = x[0] && x[0]->dense == NULL;
  gsize feat = x[0] ? x[0]->d : 0;
  for (guint i = 0; i < 3; i++)
    stsim_transfer_matrix_free (x[i]);
  if (!ok) {
    g_prefix_error (error, "%s: ", name);
    return NULL;
  }
  double cls_s = (g_get_monotonic_time () - t1) / 1e6;
  JsonObject *r = json_object_new ();
  json_object_set_double_member (r, "devacc", s.devacc);
  json_object_set_double_member (r, "acc", s.acc);
  if (!isnan (s.f1))
    json_object_set_double_member (r, "f1", s.f1);
  gsize ndev = get_split (t, 0)->n, ntest = get_split (t, t->splits->len - 1)->n;
  if (t->scheme == STSIM_TRANSFER_SPLIT)
    ndev = get_split (t, 1)->n;
  json_object_set_int_member (r, "ndev", (gint64) ndev);
  json_object_set_int_member (r, "ntest", (gint64) ntest);
  json_object_set_int_member (r, "features", (gint64) feat);
  json_object_set_boolean_member (r, "sparse", sparse);
  json_object_set_double_member (r, "l2", s.reg);
  json_object_set_int_member (r, "fits", s.n_fits);
  JsonObject *timing = json_object_new ();
  json_object_set_int_member (timing, "sentences", (gint64) e.n_sentences);
  json_object_set_double_member (timing, "encode_seconds", e.encode_seconds);
  json_object_set_double_member (timing, "classifier_seconds", cls_s);
  json_object_set_double_member (timing, "seconds", (g_get_monotonic_time () - t0) / 1e6);
  json_object_set_object_member (r, "timing", timing);
  if (!o->quiet)
    g_printerr ("transfer: %-4s dev %6.2f  test %6.2f  (%" G_GSIZE_FORMAT " sentences in %.1f s, %u fits of %"
                G_GSIZE_FORMAT " %s features in %.1f s)\n", name, s.devacc, s.acc, e.n_sentences,
                e.encode_seconds, s.n_fits, feat, sparse ? "sparse" : "dense", cls_s);
  return r;
}

/* ---- the run ---------------------------------------------------------------------- */

static GPtrArray *
parse_tasks (const char *list, GError **error)
{
  const char *const *all = stsim_transfer_task_names ();
  g_autoptr (GPtrArray) out = g_ptr_array_new ();
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_auto (GStrv) parts = g_strsplit (list && *list ? list : "MR,CR,SUBJ,MPQA,SST2,TREC,MRPC", ",", -1);
  for (gsize i = 0; parts[i]; i++) {
    char *name = g_strstrip (parts[i]);
    if (*name == '\0')
      continue;
    if (!stsim_transfer_is_task (name)) {
      g_autofree char *known = g_strjoinv (",", (char **) all);
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "tasks: unknown transfer task '%s' (choose from %s)",
                   name, known);
      return NULL;
    }
    if (!g_hash_table_add (seen, g_strdup (name))) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "tasks: task '%s' is listed twice", name);
      return NULL;
    }
  }
  for (gsize i = 0; all[i]; i++)
    if (g_hash_table_contains (seen, all[i]))
      g_ptr_array_add (out, (gpointer) all[i]);
  if (out->len == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "tasks: no transfer task given");
    return NULL;
  }
  return g_steal_pointer (&out);
}

static JsonObject *
config_to_json (const StsimTransferConfig *c, gboolean fasttest)
{
  JsonObject *o = json_object_new ();
  json_object_set_string_member (o, "mode", fasttest ? "fasttest" : "test");
  json_object_set_string_member (o, "optim", c->optim == STSIM_TRANSFER_ADAM ? "adam" : "rmsprop");
  json_object_set_int_member (o, "batch_size", c->batch_size);
  json_object_set_int_member (o, "tenacity", c->tenacity);
  json_object_set_int_member (o, "epoch_size", c->epoch_size);
  json_object_set_int_member (o, "max_epoch", c->max_epoch);
  json_object_set_int_member (o, "kfold", c->kfold);
  json_object_set_int_member (o, "seed", c->seed);
  json_object_set_int_member (o, "nhid", 0);
  return o;
}

gboolean
stsim_transfer_run (const StsimTransferOptions *o, const StsimStsEncoder *enc, JsonObject *report, double *primary,
                    GError **error)
{
  g_return_val_if_fail (o != NULL && o->data_dir != NULL && enc != NULL && report != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  g_autoptr (GPtrArray) tasks = parse_tasks (o->tasks, error);
  if (tasks == NULL)
    return FALSE;
  gboolean dev = o->mode == STSIM_EVAL_DEV;
  StsimTransferConfig cfg;
  stsim_transfer_config_init (&cfg, o->fasttest);
  if (o->seed)
    cfg.seed = o->seed;
  gint64 t0 = g_get_monotonic_time ();
  json_object_set_string_member (report, "evaluator", "transfer");
  json_object_set_string_member (report, "mode", dev ? "dev" : "test");
  json_object_set_string_member (report, "data", o->data_dir);
  json_object_set_object_member (report, "classifier", config_to_json (&cfg, o->fasttest));
  JsonObject *tasks_obj = json_object_new ();
  JsonObject *table = json_object_new ();
  JsonObject *printed = json_object_new ();
  json_object_set_object_member (report, "tasks", tasks_obj);
  json_object_set_object_member (report, dev ? "dev" : "table", table);
  json_object_set_object_member (report, "table_printed", printed);
  double sum = 0, printed_sum = 0, encode_s = 0;
  gint64 n_sent = 0;
  for (guint i = 0; i < tasks->len; i++) {
    const char *name = g_ptr_array_index (tasks, i);
    JsonObject *r = run_task (o, enc, &cfg, name, error);
    if (r == NULL)
      return FALSE;
    json_object_set_object_member (tasks_obj, name, r);
    double v = json_object_get_double_member (r, dev ? "devacc" : "acc");
    json_object_set_double_member (table, name, v);
    g_autofree char *text = g_strdup_printf ("%.2f", v);
    json_object_set_string_member (printed, name, text);
    sum += v;
    printed_sum += g_ascii_strtod (text, NULL);
    JsonObject *tm = json_object_get_object_member (r, "timing");
    encode_s += json_object_get_double_member (tm, "encode_seconds");
    n_sent += json_object_get_int_member (tm, "sentences");
  }
  /* SimCSE prints Avg as the mean of the printed values. */
  json_object_set_double_member (table, "Avg", sum / tasks->len);
  g_autofree char *avg = g_strdup_printf ("%.2f", printed_sum / tasks->len);
  json_object_set_string_member (printed, "Avg", avg);
  double p = sum / tasks->len / 100.0;
  json_object_set_double_member (report, "primary", p);
  json_object_set_string_member (report, "primary_metric", dev ? "mean devacc / 100" : "mean acc / 100");
  JsonObject *timing = json_object_new ();
  json_object_set_int_member (timing, "sentences", n_sent);
  json_object_set_double_member (timing, "encode_seconds", encode_s);
  json_object_set_double_member (timing, "seconds", (g_get_monotonic_time () - t0) / 1e6);
  json_object_set_object_member (report, "timing", timing);
  if (primary)
    *primary = p;
  return TRUE;
}

/* ---- the table ----------------------------------------------------------------------- */

char *
stsim_transfer_report_format (JsonObject *report)
{
  g_return_val_if_fail (report != NULL, NULL);
  GString *out = g_string_new (NULL);
  gboolean dev = json_object_has_member (report, "dev");
  JsonObject *table = json_object_get_object_member (report, dev ? "dev" : "table");
  JsonObject *printed = json_object_get_object_member (report, "table_printed");
  JsonObject *tasks = json_object_get_object_member (report, "tasks");
  if (table == NULL || printed == NULL)
    return g_string_free (out, FALSE);
  g_autoptr (GList) keys = json_object_get_members (table);
  GString *rule = g_string_new ("+"), *head = g_string_new ("|"), *vals = g_string_new ("|");
  for (GList *l = keys; l; l = l->next) {
    const char *k = l->data, *v = json_object_get_string_member (printed, k);
    g_autofree char *h = dev && strcmp (k, "Avg") != 0 ? g_strdup_printf ("%s dev", k) : g_strdup (k);
    int w = (int) MAX (strlen (h), strlen (v));
    for (int i = 0; i < w + 2; i++)
      g_string_append_c (rule, '-');
    g_string_append_c (rule, '+');
    g_string_append_printf (head, " %*s |", w, h);
    g_string_append_printf (vals, " %*s |", w, v);
  }
  g_string_append_printf (out, "%s\n%s\n%s\n%s\n%s\n", rule->str, head->str, rule->str, vals->str, rule->str);
  g_string_free (rule, TRUE);
  g_string_free (head, TRUE);
  g_string_free (vals, TRUE);
  g_autoptr (GList) names = tasks ? json_object_get_members (tasks) : NULL;
  for (GList *l = names; l; l = l->next) {
    JsonObject *t = json_object_get_object_member (tasks, l->data);
    JsonObject *tm = json_object_get_object_member (t, "timing");
    g_autofree char *f1 = json_object_has_member (t, "f1")
                            ? g_strdup_printf ("  F1 %6.2f", json_object_get_double_member (t, "f1")) : g_strdup ("");
    g_string_append_printf (out, "%-5s accuracy x100: dev %6.2f  test %6.2f%s   %6" G_GINT64_FORMAT
                            " sentences, %5.1f s encoding, %6.1f s classifier (%" G_GINT64_FORMAT " fits)\n",
                            (const char *) l->data, json_object_get_double_member (t, "devacc"),
                            json_object_get_double_member (t, "acc"), f1,
                            json_object_get_int_member (tm, "sentences"),
                            json_object_get_double_member (tm, "encode_seconds"),
                            json_object_get_double_member (tm, "classifier_seconds"),
                            json_object_get_int_member (t, "fits"));
  }
  JsonObject *classifier = json_object_get_object_member (report, "classifier");
  JsonObject *tm = json_object_get_object_member (report, "timing");
  if (classifier && tm)
    g_string_append_printf (out, "classifier: logistic regression, %s mode (%s, batch %" G_GINT64_FORMAT
                            ", tenacity %" G_GINT64_FORMAT ", epoch size %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                            " folds); %.1f s in all\n",
                            json_object_get_string_member (classifier, "mode"),
                            json_object_get_string_member (classifier, "optim"),
                            json_object_get_int_member (classifier, "batch_size"),
                            json_object_get_int_member (classifier, "tenacity"),
                            json_object_get_int_member (classifier, "epoch_size"),
                            json_object_get_int_member (classifier, "kfold"),
                            json_object_get_double_member (tm, "seconds"));
  return g_string_free (out, FALSE);
}
