/* step.c: the StsimTrainStep objectives see (stsim-train.h): the batch, the
 * lazily computed student forward, pooling and head, per-step RNG streams,
 * scratch data and extra metrics. */
#include "train/engine-private.h"
#include "train/dist.h"

#include <math.h>
#include <string.h>

typedef struct {
  gpointer       data;
  GDestroyNotify destroy;
} StepData;

static void
step_data_free (gpointer p)
{
  StepData *d = p;
  if (d->destroy)
    d->destroy (d->data);
  g_free (d);
}

void
stsim_train_step_init (StsimTrainStep *step, StsimEngine *engine, guint64 index)
{
  memset (step, 0, sizeof *step);
  step->engine = engine;
  step->index = index;
  step->data = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, step_data_free);
  step->logs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

void
stsim_train_step_clear (StsimTrainStep *step)
{
  g_clear_pointer (&step->data, g_hash_table_unref);
  g_clear_pointer (&step->logs, g_hash_table_unref);
  g_clear_pointer (&step->row_texts, g_free);
  stsim_token_batch_clear (&step->batch);
  stsim_token_batch_clear (&step->local_batch);
}

/* Tokenizes the V·B row texts and, with several ranks, cuts this rank's
 * rows (view-major, to their own longest row). */
gboolean
stsim_train_step_tokenize (StsimTrainStep *step, GError **error)
{
  StsimEngine *e = step->engine;
  const gsize B = step->B;
  const guint V = step->V;
  GError *local = NULL;
  if (!stsim_tokenizer_encode_batch (e->tok, (const char *const *) step->row_texts, V * B, e->max_len,
                                     &step->batch, &local)) {
    /* Name the step: the corpus was validated, so this is rare. */
    g_set_error (error, local->domain, local->code, "train step %" G_GUINT64_FORMAT ": tokenizing: %s", step->index,
                 local->message);
    g_error_free (local);
    return FALSE;
  }
  if (e->world <= 1)
    return TRUE;
  stsim_dist_shard (B, e->rank, e->world, &step->first, &step->n_local);
  StsimTokenBatch *lb = &step->local_batch;
  const StsimTokenBatch *gb = &step->batch;
  lb->n = V * step->n_local;
  lb->width = 1;
  for (gsize i = 0; i < lb->n; i++)
    lb->width = MAX (lb->width, (gsize) gb->lengths[stsim_train_step_local_row (step, i)]);
  lb->ids = g_new (gint32, lb->n * lb->width);
  lb->mask = g_new (gint32, lb->n * lb->width);
  lb->lengths = g_new (gint32, lb->n);
  for (gsize i = 0; i < lb->n; i++) {
    gsize g = stsim_train_step_local_row (step, i);
    memcpy (lb->ids + i * lb->width, gb->ids + g * gb->width, lb->width * sizeof (gint32));
    memcpy (lb->mask + i * lb->width, gb->mask + g * gb->width, lb->width * sizeof (gint32));
    lb->lengths[i] = gb->lengths[g];
  }
  return TRUE;
}

StsimTape *
stsim_train_step_get_tape (StsimTrainStep *step)
{
  g_return_val_if_fail (step != NULL, NULL);
  return step->engine->tape;
}

gsize
stsim_train_step_get_n_sentences (StsimTrainStep *step)
{
  g_return_val_if_fail (step != NULL, 0);
  return step->B;
}

guint
stsim_train_step_get_n_views (StsimTrainStep *step)
{
  g_return_val_if_fail (step != NULL, 0);
  return step->V;
}

const char *
stsim_train_step_get_text (StsimTrainStep *step, gsize i, guint view)
{
  g_return_val_if_fail (step != NULL && i < step->B && view < step->V, NULL);
  return step->row_texts[view * step->B + i];
}

const char *const *
stsim_train_step_get_row_texts (StsimTrainStep *step)
{
  g_return_val_if_fail (step != NULL, NULL);
  return (const char *const *) step->row_texts;
}

const StsimTokenBatch *
stsim_train_step_get_batch (StsimTrainStep *step)
{
  g_return_val_if_fail (step != NULL, NULL);
  return &step->batch;
}

StsimModel *
stsim_train_step_get_model (StsimTrainStep *step)
{
  g_return_val_if_fail (step != NULL, NULL);
  return step->engine->model;
}

StsimTokenizer *
stsim_train_step_get_tokenizer (StsimTrainStep *step)
{
  g_return_val_if_fail (step != NULL, NULL);
  return step->engine->tok;
}

guint64
stsim_train_step_get_step (StsimTrainStep *step)
{
  g_return_val_if_fail (step != NULL, 0);
  return step->index;
}

guint64
stsim_train_step_get_total_steps (StsimTrainStep *step)
{
  g_return_val_if_fail (step != NULL, 0);
  return step->engine->total_steps;
}

guint64
stsim_train_step_get_seed (StsimTrainStep *step)
{
  g_return_val_if_fail (step != NULL, 0);
  return step->engine->seed;
}

/* Several ranks: the student runs on this rank's rows (local_batch). */
static gboolean
step_is_sharded (StsimTrainStep *step)
{
  return step->engine->world > 1;
}

const StsimModelOutput *
stsim_train_step_get_output (StsimTrainStep *step, GError **error)
{
  g_return_val_if_fail (step != NULL, NULL);
  if (!step->have_output) {
    StsimForwardOptions fo = { .packed = step->engine->packed };
    if (step_is_sharded (step)) {
      /* Every row draws the dropout masks one process draws for it. */
      gsize n = step->local_batch.n;
      gsize *rows = stsim_arena_alloc (stsim_tape_get_arena (step->engine->tape), MAX (n, 1) * sizeof (gsize));
      for (gsize i = 0; i < n; i++)
        rows[i] = stsim_train_step_local_row (step, i);
      fo.whole = &step->batch;
      fo.whole_rows = rows;
    }
    if (!stsim_model_forward (step->engine->model, step->engine->tape, stsim_train_step_get_local_batch (step), &fo,
                              &step->output, error))
      return NULL;
    step->have_output = TRUE;
  }
  return &step->output;
}

static StsimTensor *
pooled_local (StsimTrainStep *step, GError **error)
{
  if (!step->pooled_local) {
    const StsimModelOutput *out = stsim_train_step_get_output (step, error);
    if (!out)
      return NULL;
    step->pooled_local = stsim_model_pool (step->engine->model, step->engine->tape, out, step->engine->pooler);
    if (!step->pooled_local) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "train: pooling (%s) failed",
                   stsim_pooler_name (step->engine->pooler));
      return NULL;
    }
  }
  return step->pooled_local;
}

/* The global [V*B, H] rows from every rank's local [V*n_r, H] rows: one
 * all-gather, then a concatenation in global row order in which this rank's
 * rows are views of @local (they carry its gradient) and the others are
 * constants (SimCSE's all_gather across GPUs does the same). */
static StsimTensor *
gather_global (StsimTrainStep *step, StsimTensor *local, GError **error)
{
  StsimEngine *e = step->engine;
  StsimTape *tape = e->tape;
  const gsize W = (gsize) MAX (e->world, 1);
  const int me = e->rank;
  const gint64 H = stsim_tensor_cols (local);
  const guint V = step->V;
  g_autofree gsize *counts = g_new (gsize, W);
  g_autofree gsize *first = g_new (gsize, W);
  g_autofree gsize *n = g_new (gsize, W);
  gsize total = 0;
  for (gsize r = 0; r < W; r++) {
    stsim_dist_shard (step->B, (int) r, (int) W, &first[r], &n[r]);
    counts[r] = V * n[r] * (gsize) H;
    total += counts[r];
  }
  float *all = stsim_arena_alloc (stsim_tape_get_arena (tape), MAX (total, 1) * sizeof (float));
  if (!stsim_dist_gather_f32 (local->data, all, counts, error)) {
    g_prefix_error (error, "train step %" G_GUINT64_FORMAT ": gathering the sentence vectors: ", step->index);
    return NULL;
  }
  g_autofree StsimTensor **pieces = g_new0 (StsimTensor *, V * W);
  gsize k = 0, off = 0;
  g_autofree gsize *disp = g_new (gsize, W);
  for (gsize r = 0; r < W; r++) {
    disp[r] = off;
    off += counts[r];
  }
  for (guint v = 0; v < V; v++)
    for (gsize r = 0; r < W; r++) {
      if (n[r] == 0)
        continue;
      if ((int) r == me)
        pieces[k++] = stsim_slice_rows (tape, local, (gint64) (v * n[r]), (gint64) n[r]);
      else {
        gint64 shape[2] = { (gint64) n[r], H };
        pieces[k++] = stsim_tensor_wrap (tape, 2, shape, all + disp[r] + (gsize) v * n[r] * H);
      }
    }
  StsimTensor *g = stsim_concat_rows (tape, pieces, k);
  if (!g)
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "train step %" G_GUINT64_FORMAT
                 ": assembling the gathered rows failed", step->index);
  return g;
}

StsimTensor *
stsim_train_step_get_pooled (StsimTrainStep *step, GError **error)
{
  g_return_val_if_fail (step != NULL, NULL);
  if (!step->pooled) {
    StsimTensor *h = pooled_local (step, error);
    if (!h)
      return NULL;
    step->pooled = step_is_sharded (step) ? gather_global (step, h, error) : h;
  }
  return step->pooled;
}

StsimTensor *
stsim_train_step_get_projected (StsimTrainStep *step, GError **error)
{
  g_return_val_if_fail (step != NULL, NULL);
  if (!step->projected) {
    if (!step->projected_local) {
      StsimTensor *h = pooled_local (step, error);
      if (!h)
        return NULL;
      /* The head runs on local rows; its batch norm sums over the ranks. */
      step->projected_local = stsim_head_forward (step->engine->head, step->engine->tape, h, error);
      if (!step->projected_local)
        return NULL;
    }
    step->projected = step_is_sharded (step) ? gather_global (step, step->projected_local, error)
                                             : step->projected_local;
  }
  return step->projected;
}

StsimTensor *
stsim_train_step_get_view (StsimTrainStep *step, guint view, GError **error)
{
  g_return_val_if_fail (step != NULL && view < step->V, NULL);
  StsimTensor *z = stsim_train_step_get_projected (step, error);
  if (!z)
    return NULL;
  return stsim_slice_rows (step->engine->tape, z, (gint64) view * step->B, step->B);
}

guint
stsim_train_step_get_n_ranks (StsimTrainStep *step)
{
  g_return_val_if_fail (step != NULL, 1);
  return (guint) step->engine->world;
}

guint
stsim_train_step_get_rank (StsimTrainStep *step)
{
  g_return_val_if_fail (step != NULL, 0);
  return (guint) step->engine->rank;
}

void
stsim_train_step_get_shard (StsimTrainStep *step, gsize *first, gsize *n)
{
  g_return_if_fail (step != NULL);
  gboolean sharded = step_is_sharded (step);
  if (first)
    *first = sharded ? step->first : 0;
  if (n)
    *n = sharded ? step->n_local : step->B;
}

const StsimTokenBatch *
stsim_train_step_get_local_batch (StsimTrainStep *step)
{
  g_return_val_if_fail (step != NULL, NULL);
  return step_is_sharded (step) ? &step->local_batch : &step->batch;
}

gsize
stsim_train_step_local_row (StsimTrainStep *step, gsize i)
{
  g_return_val_if_fail (step != NULL, 0);
  gsize first, n;
  stsim_train_step_get_shard (step, &first, &n);
  g_return_val_if_fail (n > 0 && i < n * step->V, 0);
  return (i / n) * step->B + first + i % n;
}

gboolean
stsim_train_step_sum_over_ranks (StsimTrainStep *step, double *values, gsize n, GError **error)
{
  g_return_val_if_fail (step != NULL && (values != NULL || n == 0), FALSE);
  if (!step_is_sharded (step))
    return TRUE;
  if (!stsim_dist_sum_f64 (values, n, error)) {
    g_prefix_error (error, "train step %" G_GUINT64_FORMAT ": [%s]: ", step->index, step->label ? step->label : "");
    return FALSE;
  }
  return TRUE;
}

void
stsim_train_step_set_loss_local (StsimTrainStep *step)
{
  g_return_if_fail (step != NULL);
  step->loss_local = TRUE;
}

void
stsim_train_step_init_rng (StsimTrainStep *step, guint32 stream, StsimRng *rng)
{
  g_return_if_fail (step != NULL && rng != NULL);
  stsim_rng_init (rng, step->engine->seed, stream);
  /* 2^32 words per step per stream: far more than any step draws. */
  stsim_rng_seek (rng, step->index << 32);
}

void
stsim_train_step_set_data (StsimTrainStep *step, const char *key, gpointer data, GDestroyNotify destroy)
{
  g_return_if_fail (step != NULL && key != NULL);
  StepData *d = g_new (StepData, 1);
  d->data = data;
  d->destroy = destroy;
  g_hash_table_replace (step->data, g_strdup (key), d);
}

gpointer
stsim_train_step_get_data (StsimTrainStep *step, const char *key)
{
  g_return_val_if_fail (step != NULL && key != NULL, NULL);
  StepData *d = g_hash_table_lookup (step->data, key);
  return d ? d->data : NULL;
}

void
stsim_train_step_log (StsimTrainStep *step, const char *name, double value)
{
  g_return_if_fail (step != NULL && name != NULL);
  char *key = step->label ? g_strdup_printf ("%s.%s", step->label, name) : g_strdup (name);
  double *v = g_new (double, 1);
  *v = value;
  g_hash_table_replace (step->logs, key, v);
}

const char *
stsim_train_step_get_objective_label (StsimTrainStep *step)
{
  g_return_val_if_fail (step != NULL, NULL);
  return step->label;
}

/* ---- detached steps ------------------------------------------------------------- */

StsimTrainStep *
stsim_train_step_new_detached (StsimTape *tape, gsize n_sentences, guint n_views, guint64 seed, guint64 index)
{
  g_return_val_if_fail (tape != NULL && n_sentences > 0 && n_views > 0, NULL);
  StsimEngine *e = g_new0 (StsimEngine, 1);
  e->tape = tape;
  e->seed = seed;
  e->pooler = STSIM_POOL_CLS_BEFORE_POOLER;
  e->packed = TRUE;
  e->total_steps = index + 1;
  e->world = 1;
  StsimTrainStep *step = g_new (StsimTrainStep, 1);
  stsim_train_step_init (step, e, index);
  step->B = n_sentences;
  step->V = n_views;
  step->owns_engine = TRUE;
  return step;
}

void
stsim_train_step_free (StsimTrainStep *step)
{
  if (!step)
    return;
  StsimEngine *e = step->owns_engine ? step->engine : NULL;
  if (step->owns_texts && step->row_texts)
    for (gsize i = 0; i < step->B * step->V; i++)
      g_free (step->row_texts[i]);
  stsim_train_step_clear (step);
  g_free (e);
  g_free (step);
}

void
stsim_train_step_set_projected (StsimTrainStep *step, StsimTensor *z)
{
  g_return_if_fail (step != NULL && z != NULL && step->owns_engine);
  g_return_if_fail (stsim_tensor_rows (z) == (gint64) (step->B * step->V));
  step->projected = z;
}

gboolean
stsim_train_step_set_model (StsimTrainStep *step, StsimModel *model, const char *const *texts, int max_len,
                            GError **error)
{
  g_return_val_if_fail (step != NULL && model != NULL && texts != NULL && step->owns_engine, FALSE);
  StsimEngine *e = step->engine;
  e->model = model;
  e->tok = stsim_model_get_tokenizer (model);
  e->max_len = max_len;
  if (!e->tok) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "the model has no tokenizer");
    return FALSE;
  }
  gsize n = step->B * step->V;
  step->row_texts = g_new0 (char *, n + 1);
  for (gsize i = 0; i < n; i++)
    step->row_texts[i] = g_strdup (texts[i]);
  step->owns_texts = TRUE;
  return stsim_tokenizer_encode_batch (e->tok, (const char *const *) step->row_texts, n, max_len, &step->batch,
                                       error);
}

double
stsim_train_step_get_logged (StsimTrainStep *step, const char *name)
{
  g_return_val_if_fail (step != NULL && name != NULL, NAN);
  double *v = g_hash_table_lookup (step->logs, name);
  return v ? *v : NAN;
}
