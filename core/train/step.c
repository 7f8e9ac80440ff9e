/* step.c: the StsimTrainStep objectives see (stsim-train.h): the batch, the
 * lazily computed student forward, pooling and head, per-step RNG streams,
 * scratch data and extra metrics. */
#include "train/trainer-private.h"

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
stsim_train_step_init (StsimTrainStep *step, StsimTrainer *tr, guint64 index)
{
  memset (step, 0, sizeof *step);
  step->tr = tr;
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
}

StsimTape *
stsim_train_step_get_tape (StsimTrainStep *step)
{
  g_return_val_if_fail (step != NULL, NULL);
  return step->tr->tape;
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
  return step->tr->model;
}

StsimTokenizer *
stsim_train_step_get_tokenizer (StsimTrainStep *step)
{
  g_return_val_if_fail (step != NULL, NULL);
  return step->tr->tok;
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
  return step->tr->total_steps;
}

guint64
stsim_train_step_get_seed (StsimTrainStep *step)
{
  g_return_val_if_fail (step != NULL, 0);
  return step->tr->seed;
}

const StsimModelOutput *
stsim_train_step_get_output (StsimTrainStep *step, GError **error)
{
  g_return_val_if_fail (step != NULL, NULL);
  if (!step->have_output) {
    StsimForwardOptions fo = { .packed = step->tr->packed };
    if (!stsim_model_forward (step->tr->model, step->tr->tape, &step->batch, &fo, &step->output, error))
      return NULL;
    step->have_output = TRUE;
  }
  return &step->output;
}

StsimTensor *
stsim_train_step_get_pooled (StsimTrainStep *step, GError **error)
{
  g_return_val_if_fail (step != NULL, NULL);
  if (!step->pooled) {
    const StsimModelOutput *out = stsim_train_step_get_output (step, error);
    if (!out)
      return NULL;
    step->pooled = stsim_model_pool (step->tr->model, step->tr->tape, out, step->tr->pooler);
    if (!step->pooled) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "train: pooling (%s) failed",
                   stsim_pooler_name (step->tr->pooler));
      return NULL;
    }
  }
  return step->pooled;
}

StsimTensor *
stsim_train_step_get_projected (StsimTrainStep *step, GError **error)
{
  g_return_val_if_fail (step != NULL, NULL);
  if (!step->projected) {
    StsimTensor *h = stsim_train_step_get_pooled (step, error);
    if (!h)
      return NULL;
    step->projected = stsim_trainer_head_forward (step->tr, h, error);
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
  return stsim_slice_rows (step->tr->tape, z, (gint64) view * step->B, step->B);
}

void
stsim_train_step_init_rng (StsimTrainStep *step, guint32 stream, StsimRng *rng)
{
  g_return_if_fail (step != NULL && rng != NULL);
  stsim_rng_init (rng, step->tr->seed, stream);
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
  StsimTrainer *tr = g_new0 (StsimTrainer, 1);
  tr->tape = tape;
  tr->seed = seed;
  tr->head = HEAD_NONE;
  tr->pooler = STSIM_POOL_CLS_BEFORE_POOLER;
  tr->packed = TRUE;
  tr->total_steps = index + 1;
  StsimTrainStep *step = g_new (StsimTrainStep, 1);
  stsim_train_step_init (step, tr, index);
  step->B = n_sentences;
  step->V = n_views;
  step->owns_trainer = TRUE;
  return step;
}

void
stsim_train_step_free (StsimTrainStep *step)
{
  if (!step)
    return;
  StsimTrainer *tr = step->owns_trainer ? step->tr : NULL;
  if (step->owns_texts && step->row_texts)
    for (gsize i = 0; i < step->B * step->V; i++)
      g_free (step->row_texts[i]);
  stsim_train_step_clear (step);
  g_free (tr);
  g_free (step);
}

void
stsim_train_step_set_projected (StsimTrainStep *step, StsimTensor *z)
{
  g_return_if_fail (step != NULL && z != NULL && step->owns_trainer);
  g_return_if_fail (stsim_tensor_rows (z) == (gint64) (step->B * step->V));
  step->projected = z;
}

gboolean
stsim_train_step_set_model (StsimTrainStep *step, StsimModel *model, const char *const *texts, int max_len,
                            GError **error)
{
  g_return_val_if_fail (step != NULL && model != NULL && texts != NULL && step->owns_trainer, FALSE);
  StsimTrainer *tr = step->tr;
  tr->model = model;
  tr->tok = stsim_model_get_tokenizer (model);
  tr->max_len = max_len;
  if (!tr->tok) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "the model has no tokenizer");
    return FALSE;
  }
  gsize n = step->B * step->V;
  step->row_texts = g_new0 (char *, n + 1);
  for (gsize i = 0; i < n; i++)
    step->row_texts[i] = g_strdup (texts[i]);
  step->owns_texts = TRUE;
  return stsim_tokenizer_encode_batch (tr->tok, (const char *const *) step->row_texts, n, max_len, &step->batch,
                                       error);
}

double
stsim_train_step_get_logged (StsimTrainStep *step, const char *name)
{
  g_return_val_if_fail (step != NULL && name != NULL, NAN);
  double *v = g_hash_table_lookup (step->logs, name);
  return v ? *v : NAN;
}
