/* engine.c: one optimizer step of training (stsim-train.h, "the engine"):
 * the trained encoder, head, objectives and optimizers of a recipe, and the
 * step objectives -> cross-rank reduction -> backward -> clip -> AdamW with
 * the NaN/skip policy. The trainer's loop (trainer.c) and stsim-bench feed it
 * batches of texts. */
#include "train/engine-private.h"
#include "train/dist.h"
#include "stsim/stsim-bounded.h"

#include <math.h>
#include <string.h>

/* ---- finding components ----------------------------------------------------------- */

StsimComponent *
stsim_train_find_component (StsimContext *ctx, const StsimRecipe *recipe, StsimKind kind, const char *label,
                            GError **error)
{
  StsimComponent *c = stsim_context_find (ctx, kind, label, error);
  if (!c && label)
    g_prefix_error (error, "[train] %s = %s: ", stsim_kind_name (kind), label);
  else if (!c)
    g_prefix_error (error, "%s: training needs one %s section, say which with [train] %s = LABEL: ",
                    stsim_recipe_get_path (recipe), stsim_kind_name (kind), stsim_kind_name (kind));
  return c;
}

/* ---- construction -------------------------------------------------------------------- */

/* The trained encoder: a neural network with a tokenizer, loaded trainable. */
static gboolean
setup_encoder (StsimEngine *e, GError **error)
{
  if (!(e->encoder = stsim_train_find_component (e->ctx, e->recipe, STSIM_KIND_ENCODER, e->cfg.encoder, error)))
    return FALSE;
  const char *label = stsim_component_get_label (e->encoder);
  GError *local = NULL;
  if (!(e->model = stsim_encoder_model (e->encoder, &local))) {
    /* A recipe error: the recipe asks to train what cannot be trained. */
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "[%s]: training needs a network: %s", label, local->message);
    g_error_free (local);
    return FALSE;
  }
  if (!(e->tok = stsim_model_get_tokenizer (e->model))) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "[%s]: the model has no tokenizer (vocab files)", label);
    return FALSE;
  }
  if (!stsim_param_store_is_trainable (stsim_model_get_params (e->model))) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "[%s]: the model was loaded frozen and cannot be trained",
                 label);
    return FALSE;
  }
  int max_pos = stsim_model_get_config (e->model)->max_position_embeddings;
  if (max_pos > 0 && e->max_len > max_pos) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "[train] max_len = %d exceeds the model's %d positions",
                 e->max_len, max_pos);
    return FALSE;
  }
  return TRUE;
}

/* The enabled objectives in recipe order, with their own parameter stores. */
static gboolean
setup_objectives (StsimEngine *e, GError **error)
{
  e->objectives = g_array_new (FALSE, TRUE, sizeof (TrainObjective));
  for (guint i = 0; i < stsim_recipe_get_n_ordered (e->recipe); i++) {
    const StsimRecipeComponent *rc = stsim_recipe_get_ordered (e->recipe, i);
    if (rc->kind != STSIM_KIND_OBJECTIVE || !rc->enabled)
      continue;
    StsimComponent *c = stsim_context_find (e->ctx, STSIM_KIND_OBJECTIVE, rc->label, error);
    if (!c)
      return FALSE;
    TrainObjective o = { .component = c, .label = rc->label, .weight = rc->weight };
    o.stores = stsim_objective_params (c, &o.n_stores);
    g_array_append_val (e->objectives, o);
  }
  if (e->objectives->len == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "%s: nothing to train: the recipe has no enabled [objective]",
                 stsim_recipe_get_path (e->recipe));
    return FALSE;
  }
  return TRUE;
}

/* An objective's store @st may join the trained stores once: not NULL,
 * trainable, and not already trained (it would take two steps). */
static gboolean
check_objective_store (StsimEngine *e, const TrainObjective *o, gsize k, GError **error)
{
  StsimParamStore *st = o->stores[k];
  if (!st) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PLUGIN,
                 "[%s]: its params() op returned %" G_GSIZE_FORMAT " stores but store %" G_GSIZE_FORMAT
                 " is NULL (a plugin bug)", o->label, o->n_stores, k);
    return FALSE;
  }
  if (!stsim_param_store_is_trainable (st)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PLUGIN, "[%s]: its params() store '%s' is not trainable",
                 o->label, stsim_param_store_get_name (st));
    return FALSE;
  }
  for (guint j = 0; j < e->stores->len; j++)
    if (g_ptr_array_index (e->stores, j) == st) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PLUGIN,
                   "[%s]: its params() store '%s' is already trained (the student's, the head's, or listed "
                   "twice): each store must appear once", o->label, stsim_param_store_get_name (st));
      return FALSE;
    }
  return TRUE;
}

/* The trained stores in state order (student, head, objectives') and one
 * AdamW for each. */
static gboolean
setup_optimizers (StsimEngine *e, GError **error)
{
  StsimAdamWConfig cfg = STSIM_ADAMW_CONFIG_INIT;
  cfg.beta1 = e->cfg.adam_beta1;
  cfg.beta2 = e->cfg.adam_beta2;
  cfg.eps = e->cfg.adam_eps;
  cfg.weight_decay = e->cfg.weight_decay;
  e->stores = g_ptr_array_new ();
  e->opts = g_ptr_array_new_with_free_func ((GDestroyNotify) stsim_adamw_free);
  g_ptr_array_add (e->stores, stsim_model_get_params (e->model));
  if (stsim_head_get_params (e->head))
    g_ptr_array_add (e->stores, stsim_head_get_params (e->head));
  for (guint i = 0; i < e->objectives->len; i++) {
    TrainObjective *o = &g_array_index (e->objectives, TrainObjective, i);
    for (gsize k = 0; k < o->n_stores; k++) {
      if (!check_objective_store (e, o, k, error))
        return FALSE;
      g_ptr_array_add (e->stores, o->stores[k]);
    }
  }
  for (guint i = 0; i < e->stores->len; i++)
    g_ptr_array_add (e->opts, stsim_adamw_new (g_ptr_array_index (e->stores, i), &cfg));
  return TRUE;
}

static gboolean
engine_setup (StsimEngine *e, GError **error)
{
  const StsimParams *p = stsim_recipe_get_core (e->recipe, "train");
  if (!p) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "the recipe has no [train] values");
    return FALSE;
  }
  if (!stsim_train_config_parse (p, &e->cfg, error))
    return FALSE;
  e->seed = stsim_recipe_get_seed (e->recipe);
  e->max_len = e->cfg.max_len;
  e->packed = e->cfg.packed;
  e->total_steps = e->cfg.steps;
  e->n_views = e->cfg.pairs ? 3 : 2;
  if (!setup_encoder (e, error) || !setup_objectives (e, error))
    return FALSE;
  if (!(e->head = stsim_head_new (e->cfg.head, e->model, e->seed, stsim_component_get_label (e->encoder), error)) ||
      !stsim_engine_resolve_pooler (e, error) || !setup_optimizers (e, error))
    return FALSE;
  if (e->world > 1) {
    /* Buckets of at least one float; 0 MB = no overlap. */
    double mb = e->cfg.allreduce_bucket_mb;
    gsize floats = mb > 0 ? MAX ((gsize) (mb * (double) STSIM_MIB / sizeof (float)), 1) : 0;
    e->sync = stsim_grad_sync_new ((StsimParamStore *const *) e->stores->pdata, e->stores->len, floats);
  }
  e->tape = stsim_tape_new (e->seed, 0);
  e->owns_tape = TRUE;
  e->terms = g_new0 (double, e->objectives->len);
  e->term_names = g_new0 (char *, e->objectives->len + 1);
  for (guint i = 0; i < e->objectives->len; i++)
    e->term_names[i] = g_strdup_printf ("loss.%s", g_array_index (e->objectives, TrainObjective, i).label);
  return TRUE;
}

StsimEngine *
stsim_engine_new (const StsimRecipe *recipe, StsimContext *ctx, GError **error)
{
  g_return_val_if_fail (recipe != NULL && ctx != NULL, NULL);
  g_autoptr(StsimEngine) e = g_new0 (StsimEngine, 1);
  e->recipe = recipe;
  e->ctx = ctx;
  e->rank = stsim_dist_rank ();
  e->world = stsim_dist_size ();
  if (!engine_setup (e, error))
    return NULL;
  return g_steal_pointer (&e);
}

void
stsim_engine_free (StsimEngine *e)
{
  if (!e)
    return;
  if (e->opts)
    g_ptr_array_unref (e->opts);
  stsim_grad_sync_free (e->sync);
  if (e->stores)
    g_ptr_array_unref (e->stores);
  if (e->objectives)
    g_array_unref (e->objectives);
  stsim_head_free (e->head);
  if (e->tape && e->owns_tape)
    stsim_tape_free (e->tape);
  if (e->logs)
    g_hash_table_unref (e->logs);
  g_free (e->terms);
  g_strfreev (e->term_names);
  stsim_train_config_clear (&e->cfg);
  g_free (e);
}

void
stsim_engine_set_total_steps (StsimEngine *engine, guint64 total_steps)
{
  g_return_if_fail (engine != NULL);
  engine->total_steps = total_steps;
}

guint
stsim_engine_get_n_views (StsimEngine *engine)
{
  g_return_val_if_fail (engine != NULL, 0);
  return engine->n_views;
}

StsimModel *
stsim_engine_get_model (StsimEngine *engine)
{
  g_return_val_if_fail (engine != NULL, NULL);
  return engine->model;
}

StsimComponent *
stsim_engine_get_encoder (StsimEngine *engine)
{
  g_return_val_if_fail (engine != NULL, NULL);
  return engine->encoder;
}

StsimTape *
stsim_engine_get_tape (StsimEngine *engine)
{
  g_return_val_if_fail (engine != NULL, NULL);
  return engine->tape;
}

/* ---- one step -------------------------------------------------------------------------- */

/* Σ weight_i · loss_i on the tape into *total; each term's value into
 * e->terms, and whether it covers only this rank's rows into @local_loss. */
static gboolean
run_objectives (StsimEngine *e, StsimTrainStep *step, StsimTensor **total, gboolean *local_loss, GError **error)
{
  *total = NULL;
  for (guint i = 0; i < e->objectives->len; i++) {
    TrainObjective *o = &g_array_index (e->objectives, TrainObjective, i);
    StsimTensor *loss = NULL;
    step->label = o->label;
    step->loss_local = FALSE;
    if (!stsim_objective_loss (o->component, step, &loss, error)) {
      g_prefix_error (error, "step %" G_GUINT64_FORMAT ": [%s]: ", step->index, o->label);
      return FALSE;
    }
    if (!loss || loss->numel != 1) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PLUGIN, "step %" G_GUINT64_FORMAT ": [%s] returned %s",
                   step->index, o->label, loss ? "a loss that is not a scalar" : "no loss");
      return FALSE;
    }
    if (e->world > 1 && o->n_stores > 0 && !step->loss_local) {
      /* Computed on the global views by every rank, its own parameters
       * would get W times their gradient from the sum over ranks (an
       * objective that trains parameters must compute its loss on this
       * rank's rows, as diff-predict does). */
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PLUGIN,
                   "step %" G_GUINT64_FORMAT ": [%s] trains its own parameters but does not support data-parallel "
                   "runs (its loss must cover this rank's rows and say so with stsim_train_step_set_loss_local, "
                   "docs/distributed.md); run it in one process", step->index, o->label);
      return FALSE;
    }
    local_loss[i] = step->loss_local;
    e->terms[i] = loss->data[0];
    *total = *total ? stsim_axpby (e->tape, 1.0f, *total, (float) o->weight, loss)
                    : stsim_scale (e->tape, loss, (float) o->weight);
  }
  step->label = NULL;
  return TRUE;
}

/* Several ranks: logged values and the skip decision are global. A local
 * loss adds up over the ranks, a global one is the same everywhere (each
 * rank adds its 1/W). A NaN on any rank makes every rank skip. */
static gboolean
reduce_over_ranks (StsimEngine *e, StsimTrainStep *step, const gboolean *local_loss, StsimTensor **total,
                   double *total_value, GError **error)
{
  guint n = e->objectives->len;
  g_autofree double *buf = g_new (double, n + 1);
  for (guint i = 0; i < n; i++)
    buf[i] = local_loss[i] ? e->terms[i] : e->terms[i] / e->world;
  buf[n] = isfinite (*total_value) ? 0.0 : 1.0;
  if (!stsim_dist_sum_f64 (buf, n + 1, error))
    return FALSE;
  *total_value = buf[n] > 0 ? NAN : 0.0;
  for (guint i = 0; i < n; i++) {
    e->terms[i] = buf[i];
    *total_value += g_array_index (e->objectives, TrainObjective, i).weight * e->terms[i];
  }
  /* Every rank must run the backward of the head's cross-rank batch norm
   * (it is a collective): keep this rank's head output on the path to the
   * loss even if no objective used its rows. */
  if (*total && step->projected_local && stsim_head_get_kind (e->head) == STSIM_HEAD_BN)
    *total = stsim_axpby (e->tape, 1.0f, *total, 0.0f, stsim_sum (e->tape, step->projected_local));
  return TRUE;
}

/* Backward and, on several ranks, the gradient sum over them (started by
 * grad-sync while the backward runs, completed here). *ok turns FALSE when
 * the backward failed numerically on any rank. FALSE on a hard error only. */
static gboolean
backward_and_sum (StsimEngine *e, guint64 index, StsimTensor *total, gboolean *ok, GError **error)
{
  GError *local = NULL;
  if (e->sync)
    stsim_grad_sync_begin (e->sync, e->tape);
  *ok = stsim_tape_backward (e->tape, total, NULL, &local);
  if (*ok || (local->domain == STSIM_ERROR && local->code == STSIM_ERROR_NUMERIC))
    g_clear_error (&local);   /* a numeric failure skips the step */
  if (local || stsim_dist_take_error (&local)) {
    if (e->sync)
      stsim_grad_sync_detach (e->sync, e->tape);
    g_propagate_prefixed_error (error, local, "step %" G_GUINT64_FORMAT ": backward: ", index);
    return FALSE;
  }
  if (e->world == 1)
    return TRUE;
  /* Each rank holds the gradient of its own rows: the sum over ranks is
   * the single-process gradient. Every rank completes the exchange, even
   * after a failed backward (the others wait for its messages). */
  double bad = *ok ? 0.0 : 1.0;
  if (!stsim_grad_sync_finish (e->sync, e->tape, error) || !stsim_dist_sum_f64 (&bad, 1, error)) {
    g_prefix_error (error, "step %" G_GUINT64_FORMAT ": ", index);
    return FALSE;
  }
  *ok = bad == 0.0;
  return TRUE;
}

/* Backward, the gradient sum over ranks and clipping. *finite turns FALSE
 * when the gradient is not finite (the step is then skipped); *norm gets the
 * norm before clipping. FALSE on a hard error only. */
static gboolean
backward_and_clip (StsimEngine *e, guint64 index, StsimTensor *total, gboolean *finite, double *norm, GError **error)
{
  GError *local = NULL;
  StsimParamStore *const *stores = (StsimParamStore *const *) e->stores->pdata;
  gboolean backward_ok = FALSE;
  if (!backward_and_sum (e, index, total, &backward_ok, error))
    return FALSE;
  if (!backward_ok) {
    *finite = FALSE;
  } else if (e->cfg.max_grad_norm > 0) {
    if (!stsim_clip_grad_norm (stores, e->stores->len, e->cfg.max_grad_norm, norm, &local)) {
      g_error_free (local);
      *finite = FALSE;
    }
  } else {
    *norm = stsim_grad_norm (stores, e->stores->len);
    *finite = isfinite (*norm);
  }
  return TRUE;
}

/* The objectives' loss, reduced over the ranks, its gradient, the update. */
static gboolean
step_update (StsimEngine *e, StsimTrainStep *step, StsimEngineResult *result, GError **error)
{
  g_autofree gboolean *local_loss = g_new0 (gboolean, e->objectives->len);
  StsimTensor *total = NULL;
  if (!run_objectives (e, step, &total, local_loss, error))
    return FALSE;
  double total_value = 0;
  for (guint i = 0; i < e->objectives->len; i++)
    total_value += g_array_index (e->objectives, TrainObjective, i).weight * e->terms[i];
  if (stsim_train_config_is_nan_step (&e->cfg, step->index))
    total_value = NAN;
  if (e->world > 1 && !reduce_over_ranks (e, step, local_loss, &total, &total_value, error))
    return FALSE;
  double norm = NAN;
  gboolean finite = isfinite (total_value);
  if (finite && stsim_tensor_requires_grad (total) &&
      !backward_and_clip (e, step->index, total, &finite, &norm, error))
    return FALSE;
  if (finite) {
    double lr = stsim_lr_linear (e->cfg.lr, step->index, e->cfg.warmup, e->total_steps);
    for (guint i = 0; i < e->opts->len; i++)
      stsim_adamw_step (g_ptr_array_index (e->opts, i), lr);
  }
  result->loss = total_value;
  result->grad_norm = finite ? norm : NAN;
  result->skipped = !finite;
  return TRUE;
}

gboolean
stsim_engine_step (StsimEngine *e, const char *const *row_texts, gsize n_sentences, guint64 index,
                   StsimEngineResult *result, GError **error)
{
  g_return_val_if_fail (e != NULL && row_texts != NULL && n_sentences > 0 && result != NULL, FALSE);
  StsimTrainStep step;
  stsim_train_step_init (&step, e, index);
  memset (result, 0, sizeof *result);
  step.B = n_sentences;
  step.V = e->n_views;
  step.row_texts = g_new0 (char *, step.V * step.B + 1);
  memcpy (step.row_texts, row_texts, step.V * step.B * sizeof (char *));

  stsim_tape_reset (e->tape);
  stsim_tape_set_training (e->tape, TRUE);
  stsim_tape_set_grad_enabled (e->tape, TRUE);
  stsim_tape_set_step (e->tape, index);
  gboolean ok = stsim_train_step_tokenize (&step, error) && step_update (e, &step, result, error);
  for (guint i = 0; i < e->stores->len; i++)
    stsim_param_store_zero_grad (g_ptr_array_index (e->stores, i));
  if (ok) {
    result->n_terms = e->objectives->len;
    result->term_names = (const char *const *) e->term_names;
    result->terms = e->terms;
    if (e->logs)
      g_hash_table_unref (e->logs);
    e->logs = g_hash_table_ref (step.logs);
    result->logged = e->logs;
  }
  stsim_train_step_clear (&step);
  stsim_tape_reset (e->tape);
  return ok;
}
