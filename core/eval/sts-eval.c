/* sts-eval.c: the evaluation loop of SimCSE's SentEval STS tasks, the report
 * JSON and the printed table. */
#include <math.h>
#include <string.h>

#include "stsim/stsim-sts.h"
#include "stsim/stsim-plugin.h"
#include "stsim/stsim-transfer.h"
#include "io/bounded.h"

#define DEFAULT_BATCH 128

/* ---- one task --------------------------------------------------------------- */

void
stsim_sts_task_result_free (StsimStsTaskResult *result)
{
  if (result == NULL)
    return;
  g_free (result->name);
  if (result->splits)
    g_ptr_array_unref (result->splits);
  g_free (result->scores_flat);
  g_free (result);
}

static void
split_result_free (StsimStsSplitResult *r)
{
  g_free (r->name);
  g_free (r);
}

static guint
n_tokens (const char *normalised)
{
  if (*normalised == '\0')
    return 0;
  guint n = 1;
  for (const char *p = normalised; *p; p++)
    n += *p == ' ';
  return n;
}

typedef struct {
  const guint  *len1, *len2;
  const double *gold;
} SortCtx;

/* SentEval's sort key (len(s1), len(s2), gold); a stable sort keeps file
 * order among equal keys, as Python's sorted() does. */
static gint
cmp_pairs (gconstpointer a, gconstpointer b, gpointer data)
{
  const SortCtx *c = data;
  gsize i = *(const gsize *) a, j = *(const gsize *) b;
  if (c->len1[i] != c->len1[j])
    return c->len1[i] < c->len1[j] ? -1 : 1;
  if (c->len2[i] != c->len2[j])
    return c->len2[i] < c->len2[j] ? -1 : 1;
  return (c->gold[i] > c->gold[j]) - (c->gold[i] < c->gold[j]);
}

static double
seconds_since (gint64 t0)
{
  return (double) (g_get_monotonic_time () - t0) / G_USEC_PER_SEC;
}

/* A NaN or infinite embedding would score as cosine 0 (SentEval's
 * nan_to_num) and turn the table into nan without a word: refuse it,
 * naming the sentence. */
static gboolean
check_finite (const StsimStsTask *task, const StsimStsSplit *split, const gsize *order, gsize m, gsize dim,
              const float *buf1, const float *buf2, GError **error)
{
  for (gsize k = 0; k < m; k++)
    for (int side = 0; side < 2; side++) {
      const float *e = (side ? buf2 : buf1) + k * dim;
      gsize j = 0;
      while (j < dim && isfinite (e[j]))
        j++;
      if (j == dim)
        continue;
      const char *text = (side ? split->s2 : split->s1)[order[k]];
      glong chars = g_utf8_strlen (text, -1);
      g_autofree char *cut = g_utf8_substring (text, 0, MIN (chars, 60));
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_NUMERIC,
                   "%s/%s: the embedding of sentence %d of line %u of %s (\"%s%s\") has a non-finite value "
                   "(%s at dimension %" G_GSIZE_FORMAT "): the model overflows on it; check the model's weights",
                   task->name, split->name, side + 1, split->lines[order[k]], split->path, cut,
                   chars > 60 ? "..." : "", isnan (e[j]) ? "NaN" : "infinity", j);
      return FALSE;
    }
  return TRUE;
}

/* A reported correlation is a number: NaN means every predicted similarity
 * was the same (a constant encoder), which printed a table of nan. */
static gboolean
check_correlation (const char *task, const char *split, double v, GError **error)
{
  if (isfinite (v))
    return TRUE;
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_NUMERIC,
               "%s/%s: the Spearman correlation is undefined: every predicted similarity is the same "
               "(does the encoder give every sentence the same vector?)", task, split);
  return FALSE;
}

/* Scores one split into @scores (file order). */
static gboolean
score_split (const StsimStsTask *task, const StsimStsSplit *split, const StsimStsEncoder *enc, gsize dim,
             gsize batch, float *buf1, float *buf2, double *scores, double *encode_seconds, GError **error)
{
  gsize n = split->n;
  g_autofree guint *len1 = g_new (guint, n ? n : 1);
  g_autofree guint *len2 = g_new (guint, n ? n : 1);
  g_autofree gsize *order = g_new (gsize, n ? n : 1);
  for (gsize i = 0; i < n; i++) {
    len1[i] = n_tokens (split->s1[i]);
    len2[i] = n_tokens (split->s2[i]);
    order[i] = i;
  }
  SortCtx ctx = { len1, len2, split->gold };
  g_qsort_with_data (order, (gint) n, sizeof (gsize), cmp_pairs, &ctx);

  g_autofree const char **b1 = g_new (const char *, batch);
  g_autofree const char **b2 = g_new (const char *, batch);
  for (gsize start = 0; start < n; start += batch) {
    gsize m = MIN (batch, n - start);
    for (gsize k = 0; k < m; k++) {
      b1[k] = split->s1[order[start + k]];
      b2[k] = split->s2[order[start + k]];
    }
    gint64 t0 = g_get_monotonic_time ();
    g_autoptr (GError) err = NULL;
    if (!enc->encode (enc->user_data, b1, m, buf1, &err) || !enc->encode (enc->user_data, b2, m, buf2, &err)) {
      g_set_error (error, STSIM_ERROR, err ? err->code : STSIM_ERROR_FAILED,
                   "%s/%s: encoding pairs failed (first line %u of %s): %s", task->name, split->name,
                   split->lines[order[start]], split->path, err ? err->message : "no reason given");
      return FALSE;
    }
    *encode_seconds += seconds_since (t0);
    if (!check_finite (task, split, order + start, m, dim, buf1, buf2, error))
      return FALSE;
    for (gsize k = 0; k < m; k++)
      scores[order[start + k]] = stsim_cosine (buf1 + k * dim, buf2 + k * dim, dim);
  }
  return TRUE;
}

gboolean
stsim_sts_task_evaluate (const StsimStsTask *task, const StsimStsEncoder *encoder, const char *const *splits,
                         gsize batch_size, StsimStsTaskResult **result, GError **error)
{
  g_return_val_if_fail (task != NULL && encoder != NULL && result != NULL, FALSE);
  g_return_val_if_fail (encoder->dim != NULL && encoder->encode != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  gsize batch = batch_size ? batch_size : DEFAULT_BATCH;
  gint64 t_start = g_get_monotonic_time ();
  g_autoptr (StsimStsTaskResult) res = g_new0 (StsimStsTaskResult, 1);
  res->name = g_strdup (task->name);
  res->splits = g_ptr_array_new_with_free_func ((GDestroyNotify) split_result_free);

  /* Which splits to score, in the task's order. */
  g_autofree gboolean *selected = g_new0 (gboolean, task->splits->len ? task->splits->len : 1);
  for (guint i = 0; i < task->splits->len; i++)
    selected[i] = splits == NULL;
  for (gsize j = 0; splits && splits[j]; j++) {
    gboolean found = FALSE;
    for (guint i = 0; i < task->splits->len; i++) {
      const StsimStsSplit *s = g_ptr_array_index (task->splits, i);
      if (strcmp (s->name, splits[j]) == 0)
        selected[i] = found = TRUE;
    }
    if (!found) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "%s has no subset or split '%s'", task->name,
                   splits[j]);
      return FALSE;
    }
  }

  /* SentEval's prepare sees every sample of the task: s1 then s2 of each
   * subset/split, duplicates included, whichever splits are scored. */
  gsize n_all_sent = 0;
  for (guint i = 0; i < task->splits->len; i++)
    n_all_sent += 2 * ((const StsimStsSplit *) g_ptr_array_index (task->splits, i))->n;
  if (encoder->prepare) {
    g_autofree const char **all = g_new (const char *, n_all_sent ? n_all_sent : 1);
    gsize k = 0;
    for (guint i = 0; i < task->splits->len; i++) {
      const StsimStsSplit *s = g_ptr_array_index (task->splits, i);
      for (gsize p = 0; p < s->n; p++)
        all[k++] = s->s1[p];
      for (gsize p = 0; p < s->n; p++)
        all[k++] = s->s2[p];
    }
    g_autoptr (GError) err = NULL;
    if (!encoder->prepare (encoder->user_data, all, n_all_sent, &err)) {
      g_set_error (error, STSIM_ERROR, err ? err->code : STSIM_ERROR_FAILED, "%s: the encoder's prepare failed: %s",
                   task->name, err ? err->message : "no reason given");
      return FALSE;
    }
  }
  res->n_prepared = encoder->prepare ? n_all_sent : 0;

  gsize dim = encoder->dim (encoder->user_data);
  gsize row_bytes = 0, buf_bytes = 0;
  if (dim == 0 || !g_size_checked_mul (&row_bytes, dim, sizeof (float)) ||
      !g_size_checked_mul (&buf_bytes, row_bytes, batch)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s: the encoder reports an unusable dimension %" G_GSIZE_FORMAT,
                 task->name, dim);
    return FALSE;
  }
  g_autofree float *buf1 = g_try_malloc (buf_bytes);
  g_autofree float *buf2 = g_try_malloc (buf_bytes);
  if (buf1 == NULL || buf2 == NULL) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED,
                 "%s: cannot allocate two batches of %" G_GSIZE_FORMAT " x %" G_GSIZE_FORMAT
                 " floats; lower batch_size", task->name, batch, dim);
    return FALSE;
  }

  gsize n_total = 0;
  for (guint i = 0; i < task->splits->len; i++)
    if (selected[i])
      n_total += ((const StsimStsSplit *) g_ptr_array_index (task->splits, i))->n;
  res->scores_flat = g_new (double, n_total ? n_total : 1);
  g_autofree double *gold_flat = g_new (double, n_total ? n_total : 1);
  res->n_scores = n_total;

  gsize off = 0;
  double sum_p = 0, sum_s = 0, wsum_p = 0, wsum_s = 0, wsum = 0;
  guint n_splits = 0;
  for (guint i = 0; i < task->splits->len; i++) {
    if (!selected[i])
      continue;
    const StsimStsSplit *s = g_ptr_array_index (task->splits, i);
    if (!score_split (task, s, encoder, dim, batch, buf1, buf2, res->scores_flat + off, &res->encode_seconds, error))
      return FALSE;
    memcpy (gold_flat + off, s->gold, s->n * sizeof (double));
    StsimStsSplitResult *sr = g_new0 (StsimStsSplitResult, 1);
    sr->name = g_strdup (s->name);
    sr->n = s->n;
    sr->pearson = stsim_pearson (res->scores_flat + off, s->gold, s->n);
    sr->spearman = stsim_spearman (res->scores_flat + off, s->gold, s->n);
    g_ptr_array_add (res->splits, sr);
    sum_p += sr->pearson;
    sum_s += sr->spearman;
    wsum_p += (double) sr->n * sr->pearson;
    wsum_s += (double) sr->n * sr->spearman;
    wsum += (double) sr->n;
    n_splits++;
    res->n_sentences += 2 * s->n;
    off += s->n;
  }
  res->n_all = n_total;
  res->all_pearson = stsim_pearson (res->scores_flat, gold_flat, n_total);
  res->all_spearman = stsim_spearman (res->scores_flat, gold_flat, n_total);
  res->mean_pearson = n_splits ? sum_p / n_splits : NAN;
  res->mean_spearman = n_splits ? sum_s / n_splits : NAN;
  res->wmean_pearson = wsum > 0 ? wsum_p / wsum : NAN;
  res->wmean_spearman = wsum > 0 ? wsum_s / wsum : NAN;
  res->seconds = seconds_since (t_start);
  *result = g_steal_pointer (&res);
  return TRUE;
}

/* ---- the whole protocol ---------------------------------------------------- */

/* JSON has no NaN: an undefined correlation is null. */
static void
set_number (JsonObject *o, const char *key, double v)
{
  if (isfinite (v))
    json_object_set_double_member (o, key, v);
  else
    json_object_set_null_member (o, key);
}

static JsonObject *
corr_object (double pearson, double spearman, gssize n)
{
  JsonObject *o = json_object_new ();
  set_number (o, "pearson", pearson);
  set_number (o, "spearman", spearman);
  if (n >= 0)
    json_object_set_int_member (o, "n", n);
  return o;
}

static JsonObject *
task_result_to_json (const StsimStsTaskResult *r)
{
  JsonObject *o = json_object_new ();
  for (guint i = 0; i < r->splits->len; i++) {
    const StsimStsSplitResult *s = g_ptr_array_index (r->splits, i);
    json_object_set_object_member (o, s->name, corr_object (s->pearson, s->spearman, (gssize) s->n));
  }
  json_object_set_object_member (o, "all", corr_object (r->all_pearson, r->all_spearman, (gssize) r->n_all));
  json_object_set_object_member (o, "mean", corr_object (r->mean_pearson, r->mean_spearman, -1));
  json_object_set_object_member (o, "wmean", corr_object (r->wmean_pearson, r->wmean_spearman, -1));
  JsonObject *t = json_object_new ();
  json_object_set_int_member (t, "sentences", (gint64) r->n_sentences);
  json_object_set_int_member (t, "prepared_sentences", (gint64) r->n_prepared);
  json_object_set_double_member (t, "encode_seconds", r->encode_seconds);
  json_object_set_double_member (t, "seconds", r->seconds);
  set_number (t, "sentences_per_second", r->encode_seconds > 0 ? r->n_sentences / r->encode_seconds : NAN);
  json_object_set_object_member (o, "timing", t);
  return o;
}

static const StsimStsSplitResult *
find_split (const StsimStsTaskResult *r, const char *name)
{
  for (guint i = 0; i < r->splits->len; i++) {
    const StsimStsSplitResult *s = g_ptr_array_index (r->splits, i);
    if (strcmp (s->name, name) == 0)
      return s;
  }
  return NULL;
}

/* Parses a comma-separated list of task names; every name must be known and
 * appear once, and the result is in table order. */
static GPtrArray *
parse_task_list (const char *list, const char *what, const char *const *allowed, GError **error)
{
  g_autoptr (GPtrArray) out = g_ptr_array_new ();
  g_auto (GStrv) parts = g_strsplit (list, ",", -1);
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (gsize i = 0; parts[i]; i++) {
    char *name = g_strstrip (parts[i]);
    if (*name == '\0')
      continue;
    if (!g_strv_contains (allowed, name)) {
      g_autofree char *known = g_strjoinv (",", (char **) allowed);
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s: unknown task '%s' (choose from %s)", what, name,
                   known);
      return NULL;
    }
    if (!g_hash_table_add (seen, g_strdup (name))) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s: task '%s' is listed twice", what, name);
      return NULL;
    }
  }
  for (gsize i = 0; allowed[i]; i++)
    if (g_hash_table_contains (seen, allowed[i]))
      g_ptr_array_add (out, (gpointer) allowed[i]);
  if (out->len == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s: no task given", what);
    return NULL;
  }
  return g_steal_pointer (&out);
}

gboolean
stsim_sts_run (const StsimStsOptions *options, const StsimStsEncoder *encoder, JsonObject *report, double *primary,
               GError **error)
{
  g_return_val_if_fail (options != NULL && options->data_dir != NULL, FALSE);
  g_return_val_if_fail (encoder != NULL && report != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  gboolean dev = options->mode == STSIM_EVAL_DEV;
  static const char *const dev_allowed[] = { "STSBenchmark", "SICKRelatedness", NULL };
  g_autoptr (GPtrArray) tasks = NULL;
  if (dev)
    tasks = parse_task_list (options->dev_tasks && *options->dev_tasks ? options->dev_tasks : "STSBenchmark",
                             "dev_tasks", dev_allowed, error);
  else
    tasks = parse_task_list (options->tasks && *options->tasks ? options->tasks
                                                               : "STS12,STS13,STS14,STS15,STS16,STSBenchmark,"
                                                                 "SICKRelatedness",
                             "tasks", stsim_sts_task_names (), error);
  if (tasks == NULL)
    return FALSE;
  g_autofree char *root = stsim_sts_find_root (options->data_dir, error);
  if (root == NULL)
    return FALSE;

  gint64 t0 = g_get_monotonic_time ();
  JsonObject *tasks_obj = json_object_new ();
  JsonObject *table = json_object_new ();
  JsonObject *printed = json_object_new ();
  json_object_set_string_member (report, "evaluator", "sts");
  json_object_set_string_member (report, "mode", dev ? "dev" : "test");
  json_object_set_string_member (report, "data", root);
  json_object_set_int_member (report, "batch_size", options->batch_size ? options->batch_size : DEFAULT_BATCH);
  json_object_set_object_member (report, "tasks", tasks_obj);

  double headline_sum = 0, printed_sum = 0, encode_s = 0, dev_primary = NAN;
  gsize n_sent = 0;
  gboolean have_sick_dev = FALSE;
  double sick_dev = NAN;
  for (guint t = 0; t < tasks->len; t++) {
    const char *name = g_ptr_array_index (tasks, t);
    g_autoptr (StsimStsTask) task = stsim_sts_task_load (options->data_dir, name, error);
    if (task == NULL)
      goto fail;
    static const char *const only_dev[] = { "dev", NULL };
    static const char *const no_train[] = { "dev", "test", NULL };
    const char *const *splits = NULL;
    if (dev)
      splits = only_dev;
    else if (options->skip_train && stsim_sts_task_has_splits (name))
      splits = no_train;
    g_autoptr (StsimStsTaskResult) res = NULL;
    if (!stsim_sts_task_evaluate (task, encoder, splits, options->batch_size, &res, error))
      goto fail;
    json_object_set_object_member (tasks_obj, name, task_result_to_json (res));
    encode_s += res->encode_seconds;
    n_sent += res->n_sentences;

    if (dev) {
      const StsimStsSplitResult *d = find_split (res, "dev");
      if (!check_correlation (name, "dev", d->spearman, error))
        goto fail;
      if (strcmp (name, "STSBenchmark") == 0)
        dev_primary = d->spearman;
      else {
        have_sick_dev = TRUE;
        sick_dev = d->spearman;
      }
      set_number (table, stsim_sts_task_short_name (name), 100.0 * d->spearman);
      continue;
    }
    /* The reported number: "all" Spearman for STS12-16, test Spearman for STS-B and SICK-R. */
    double headline = stsim_sts_task_has_splits (name) ? find_split (res, "test")->spearman : res->all_spearman;
    if (!check_correlation (name, stsim_sts_task_has_splits (name) ? "test" : "all", headline, error))
      goto fail;
    set_number (table, name, 100.0 * headline);
    g_autofree char *text = g_strdup_printf ("%.2f", 100.0 * headline);
    json_object_set_string_member (printed, name, text);
    headline_sum += headline;
    printed_sum += g_ascii_strtod (text, NULL);
  }
  if (!dev && tasks->len == 7) {
    set_number (table, "Avg", 100.0 * headline_sum / 7.0);
    /* SimCSE prints Avg as the mean of the seven already-rounded values. */
    g_autofree char *text = g_strdup_printf ("%.2f", printed_sum / 7.0);
    json_object_set_string_member (printed, "Avg", text);
  }
  if (dev) {
    json_object_set_object_member (report, "dev", table);
    json_object_unref (printed);
  } else {
    json_object_set_object_member (report, "table", table);
    json_object_set_object_member (report, "table_printed", printed);
  }

  double p = dev ? (isnan (dev_primary) && have_sick_dev ? sick_dev : dev_primary) : headline_sum / tasks->len;
  const char *metric = dev ? (isnan (dev_primary) && have_sick_dev ? "SICKRelatedness/dev/spearman"
                                                                   : "STSBenchmark/dev/spearman")
                           : "mean headline spearman";
  set_number (report, "primary", p);
  json_object_set_string_member (report, "primary_metric", metric);
  double total_s = seconds_since (t0);
  set_number (report, "sentences_per_second", encode_s > 0 ? n_sent / encode_s : NAN);
  JsonObject *timing = json_object_new ();
  json_object_set_int_member (timing, "sentences", (gint64) n_sent);
  json_object_set_double_member (timing, "encode_seconds", encode_s);
  json_object_set_double_member (timing, "seconds", total_s);
  json_object_set_object_member (report, "timing", timing);
  if (primary)
    *primary = p;
  return TRUE;

fail:
  json_object_unref (table);
  json_object_unref (printed);
  return FALSE;
}

/* ---- printing and writing ------------------------------------------------- */

static void
append_row (GString *out, const char *const *cells, guint n, const guint *widths)
{
  g_string_append (out, "|");
  for (guint i = 0; i < n; i++)
    g_string_append_printf (out, " %*s |", (int) widths[i], cells[i]);
  g_string_append (out, "\n");
}

static void
append_rule (GString *out, guint n, const guint *widths)
{
  g_string_append (out, "+");
  for (guint i = 0; i < n; i++) {
    for (guint k = 0; k < widths[i] + 2; k++)
      g_string_append_c (out, '-');
    g_string_append (out, "+");
  }
  g_string_append (out, "\n");
}

static double
get_number (JsonObject *o, const char *key)
{
  if (o == NULL || !json_object_has_member (o, key) || json_object_get_null_member (o, key))
    return NAN;
  return json_object_get_double_member (o, key);
}

char *
stsim_sts_report_format (JsonObject *report)
{
  g_return_val_if_fail (report != NULL, NULL);
  /* The trainer and the tools print every evaluator's report through here. */
  if (json_object_has_member (report, "evaluator") &&
      g_strcmp0 (json_object_get_string_member (report, "evaluator"), "transfer") == 0)
    return stsim_transfer_report_format (report);
  GString *out = g_string_new (NULL);
  gboolean dev = json_object_has_member (report, "dev");
  JsonObject *table = json_object_has_member (report, "table") ? json_object_get_object_member (report, "table")
                      : dev ? json_object_get_object_member (report, "dev") : NULL;
  JsonObject *printed = json_object_has_member (report, "table_printed")
                          ? json_object_get_object_member (report, "table_printed") : NULL;
  JsonObject *tasks = json_object_has_member (report, "tasks") ? json_object_get_object_member (report, "tasks")
                                                              : NULL;
  g_autoptr (GPtrArray) heads = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) cells = g_ptr_array_new_with_free_func (g_free);
  if (table) {
    g_autoptr (GList) members = json_object_get_members (table);
    for (GList *l = members; l; l = l->next) {
      const char *key = l->data;
      const char *shown = stsim_sts_task_short_name (key);
      if (dev)
        g_ptr_array_add (heads, g_strdup_printf ("%s dev", key));
      else
        g_ptr_array_add (heads, g_strdup (shown ? shown : key));
      const char *p = printed && json_object_has_member (printed, key)
                        ? json_object_get_string_member (printed, key) : NULL;
      double v = get_number (table, key);
      g_ptr_array_add (cells, p ? g_strdup (p) : isfinite (v) ? g_strdup_printf ("%.2f", v) : g_strdup ("n/a"));
    }
  }
  if (heads->len > 0) {
    g_autofree guint *w = g_new (guint, heads->len);
    for (guint i = 0; i < heads->len; i++)
      w[i] = MAX (strlen (g_ptr_array_index (heads, i)), strlen (g_ptr_array_index (cells, i)));
    append_rule (out, heads->len, w);
    append_row (out, (const char *const *) heads->pdata, heads->len, w);
    append_rule (out, heads->len, w);
    append_row (out, (const char *const *) cells->pdata, cells->len, w);
    append_rule (out, heads->len, w);
  }
  if (tasks) {
    g_autoptr (GList) members = json_object_get_members (tasks);
    for (GList *l = members; l; l = l->next) {
      JsonObject *t = json_object_get_object_member (tasks, l->data);
      JsonObject *timing = json_object_has_member (t, "timing") ? json_object_get_object_member (t, "timing") : NULL;
      JsonObject *all = json_object_has_member (t, "all") ? json_object_get_object_member (t, "all") : NULL;
      JsonObject *mean = json_object_has_member (t, "mean") ? json_object_get_object_member (t, "mean") : NULL;
      JsonObject *wmean = json_object_has_member (t, "wmean") ? json_object_get_object_member (t, "wmean") : NULL;
      g_string_append_printf (out,
                              "%-16s spearman x100: all %6.2f  mean %6.2f  wmean %6.2f   "
                              "%6" G_GINT64_FORMAT " sentences, %8.0f sentences/s\n",
                              (const char *) l->data, 100 * get_number (all, "spearman"),
                              100 * get_number (mean, "spearman"), 100 * get_number (wmean, "spearman"),
                              timing ? json_object_get_int_member (timing, "sentences") : 0,
                              get_number (timing, "sentences_per_second"));
    }
  }
  JsonObject *timing = json_object_has_member (report, "timing") ? json_object_get_object_member (report, "timing")
                                                                  : NULL;
  if (timing)
    g_string_append_printf (out, "total: %" G_GINT64_FORMAT " sentences encoded in %.2f s (%.0f sentences/s), %.2f s in all\n",
                            json_object_get_int_member (timing, "sentences"),
                            get_number (timing, "encode_seconds"), get_number (report, "sentences_per_second"),
                            get_number (timing, "seconds"));
  return g_string_free (out, FALSE);
}

gboolean
stsim_sts_report_write (JsonObject *report, const char *path, GError **error)
{
  g_return_val_if_fail (report != NULL && path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  g_autoptr (JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  json_node_set_object (root, report);
  g_autofree char *text = stsim_json_to_data (root, TRUE, NULL);
  g_autofree char *with_nl = g_strconcat (text, "\n", NULL);
  g_autoptr (GError) io_err = NULL;
  /* g_file_set_contents writes a temporary file beside @path and renames it. */
  if (!g_file_set_contents (path, with_nl, -1, &io_err)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot write the report '%s': %s", path, io_err->message);
    return FALSE;
  }
  return TRUE;
}

/* ---- an encoder component as callbacks --------------------------------------- */

static gsize
component_dim (gpointer user_data)
{
  return stsim_encoder_dim (user_data);
}

static gboolean
component_prepare (gpointer user_data, const char *const *sentences, gsize n, GError **error)
{
  return stsim_encoder_prepare (user_data, sentences, n, error);
}

static gboolean
component_encode (gpointer user_data, const char *const *sentences, gsize n, float *out, GError **error)
{
  return stsim_encoder_encode (user_data, sentences, n, out, error);
}

StsimStsEncoder
stsim_sts_encoder_for_component (StsimComponent *encoder)
{
  return (StsimStsEncoder) { .dim = component_dim, .prepare = component_prepare, .encode = component_encode,
                             .user_data = encoder };
}
