/* trainer.c: the training loop of libstsim (stsim-train.h, docs/training.md).
 *
 * The loop, top to bottom (stsim_trainer_run):
 *   setup: the engine (encoder, head, objectives, optimizers; engine.c), the
 *   evaluator, the corpus, the run log (runlog.c) -> the run's fingerprint
 *   -> resume from state/ (checked, and compared with the fingerprint) or
 *   start fresh -> resolved.ini -> teachers see the corpus -> for each step: the next B
 *   examples of the epoch's seeded permutation -> one engine step
 *   (objectives, backward, skip if NaN/Inf, clip, AdamW) -> every log_every
 *   steps a metrics line -> every eval_every steps the evaluator scores DEV
 *   and a strictly better score writes best/ atomically (save_best) -> every
 *   save_every steps the resume state -> at the end the state (keep_state =
 *   last), best/ reloaded and tested (save_best = false: the final
 *   parameters are), results.json. */
#include "train/trainer-private.h"
#include "train/dist.h"
#include "stsim/stsim-sts.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

const StsimParamSpec *
stsim_train_get_param_specs (void)
{
  return stsim_train_config_get_specs ();
}

gboolean
stsim_recipe_wants_training (const StsimRecipe *recipe)
{
  g_return_val_if_fail (recipe != NULL, FALSE);
  return stsim_recipe_count_kind (recipe, STSIM_KIND_OBJECTIVE) > 0;
}

/* ---- setup ---------------------------------------------------------------------- */

static void
trainer_free (StsimTrainer *tr)
{
  if (!tr)
    return;
  stsim_engine_free (tr->engine);
  stsim_corpus_free (tr->corpus);
  stsim_run_log_free (tr->log);
  g_free (tr->perm);
  g_free (tr->out_dir);
  g_free (tr->state_dir);
  g_free (tr->best_dir);
  stsim_run_fingerprint_free (tr->fingerprint);
  g_free (tr->fingerprint_json);
  g_free (tr);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimTrainer, trainer_free)

/* The corpus (lines, or supervised triples) and what it allows. */
static gboolean
setup_data (StsimTrainer *tr, GError **error)
{
  const StsimTrainConfig *cfg = tr->cfg;
  static const char *const cols[] = { "sent0", "sent1", "hard_neg", NULL };
  tr->corpus = cfg->pairs ? stsim_corpus_load_csv (cfg->pairs, cols, error)
                          : stsim_corpus_load_lines ((const char *const *) cfg->corpus, error);
  if (!tr->corpus)
    return FALSE;
  tr->n_views = stsim_engine_get_n_views (tr->engine);
  tr->batch_size = cfg->batch_size;
  gsize n = stsim_corpus_get_n (tr->corpus);
  if (n < tr->batch_size) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                 "[train] batch_size = %" G_GSIZE_FORMAT " but the corpus has only %" G_GSIZE_FORMAT " examples: "
                 "a batch needs that many distinct sentences; lower batch_size or give a larger corpus",
                 tr->batch_size, n);
    return FALSE;
  }
  if (tr->world > 1 && (tr->batch_size < (gsize) tr->world || n < (gsize) tr->world)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                 "[train] batch_size = %" G_GSIZE_FORMAT " (corpus: %" G_GSIZE_FORMAT " examples) cannot be split "
                 "over %d ranks: every rank needs at least one sentence of each batch; raise batch_size or run "
                 "fewer ranks", tr->batch_size, n, tr->world);
    return FALSE;
  }
  guint64 per_epoch = (n + tr->batch_size - 1) / tr->batch_size;
  tr->total_steps = cfg->steps ? cfg->steps : per_epoch * cfg->epochs;
  if (cfg->warmup >= tr->total_steps && cfg->warmup > 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "[train] warmup = %" G_GUINT64_FORMAT
                 " is not below the %" G_GUINT64_FORMAT " training steps", cfg->warmup, tr->total_steps);
    return FALSE;
  }
  stsim_engine_set_total_steps (tr->engine, tr->total_steps);
  tr->perm_epoch = G_MAXUINT64;
  return TRUE;
}

static gboolean
setup (StsimTrainer *tr, GError **error)
{
  if (!(tr->engine = stsim_engine_new (tr->recipe, tr->ctx, error)))
    return FALSE;
  tr->cfg = &tr->engine->cfg;
  if ((tr->cfg->test || tr->cfg->eval_every > 0) &&
      !(tr->evaluator = stsim_train_find_component (tr->ctx, tr->recipe, STSIM_KIND_EVALUATOR, tr->cfg->evaluator,
                                                    error)))
    return FALSE;
  if (!setup_data (tr, error))
    return FALSE;
  tr->out_dir = g_strdup (stsim_recipe_get_output (tr->recipe));
  tr->state_dir = g_build_filename (tr->out_dir, "state", NULL);
  tr->best_dir = g_build_filename (tr->out_dir, "best", NULL);
  /* Only rank 0 writes (docs/distributed.md). */
  if (tr->rank == 0 && !(tr->log = stsim_run_log_new (tr->out_dir, stsim_recipe_get_name (tr->recipe), error)))
    return FALSE;
  return TRUE;
}

/* Rank 0: the fingerprint of this run (the resolved recipe, every corpus
 * file that gave examples, in order, the checkpoints and files the recipe
 * names, the ranks), saved with the state and compared on resume. */
static gboolean
build_fingerprint (StsimTrainer *tr, GError **error)
{
  g_autoptr(GPtrArray) files = g_ptr_array_new ();
  const char *last = NULL;
  for (gsize i = 0; i < stsim_corpus_get_n (tr->corpus); i++) {
    const char *f = stsim_corpus_get_location (tr->corpus, i, NULL);
    if (f != last)
      g_ptr_array_add (files, (gpointer) f);
    last = f;
  }
  g_ptr_array_add (files, NULL);
  g_autofree char *ini = stsim_recipe_to_string (tr->recipe);
  tr->fingerprint = stsim_run_fingerprint_build (ini, (const char *const *) files->pdata, tr->world,
                                                 tr->options.quiet, error);
  if (!tr->fingerprint)
    return FALSE;
  tr->fingerprint_json = stsim_run_fingerprint_to_json (tr->fingerprint);
  return TRUE;
}

/* ---- data -------------------------------------------------------------------------- */

static void
ensure_perm (StsimTrainer *tr)
{
  if (tr->perm_epoch == tr->epoch)
    return;
  gsize n = stsim_corpus_get_n (tr->corpus);
  if (!tr->perm)
    tr->perm = g_new (gint32, n);
  /* Epoch e's order: a Fisher-Yates shuffle drawn at position e·2^40 of the
   * shuffle stream, so any epoch's order is recomputable on resume. */
  StsimRng rng;
  stsim_rng_init (&rng, tr->seed, STSIM_RNG_STREAM_SHUFFLE);
  stsim_rng_seek (&rng, tr->epoch << 40);
  stsim_rng_permutation (&rng, tr->perm, n);
  tr->perm_epoch = tr->epoch;
}

/* The next B examples (a partial batch at the end of an epoch, as HF's
 * dataloader with drop_last False) as V·B row texts, view-major; the
 * strings belong to the corpus. */
static const char **
next_batch (StsimTrainer *tr, gsize *n_sentences)
{
  gsize n = stsim_corpus_get_n (tr->corpus);
  /* With W ranks an epoch's last partial batch needs at least W sentences
   * (one per rank); a smaller remainder is skipped, the same way on every
   * rank and on resume. */
  if (tr->index >= n || (tr->world > 1 && n - tr->index < (gsize) tr->world)) {
    tr->epoch++;
    tr->index = 0;
  }
  ensure_perm (tr);
  gsize B = MIN (tr->batch_size, n - tr->index);
  guint V = tr->n_views;
  const char **rows = g_new0 (const char *, V * B + 1);
  for (gsize i = 0; i < B; i++) {
    gsize ex = tr->perm[tr->index + i];
    for (guint v = 0; v < V; v++) {
      /* Unsupervised: both views are the same sentence (method.md §3.2). */
      guint src = stsim_corpus_get_n_views (tr->corpus) == 1 ? 0 : v;
      rows[v * B + i] = stsim_corpus_get_text (tr->corpus, ex, src);
    }
  }
  tr->index += B;
  *n_sentences = B;
  return rows;
}

/* ---- metrics ------------------------------------------------------------------------ */

typedef struct {
  guint      n_steps, n_good, n_bad;
  double     loss_sum, norm_sum;
  GHashTable *terms;  /* name -> double[2] {sum, count} */
  gsize      sentences;
  gint64     t_start;
} Interval;

static void
interval_reset (Interval *iv)
{
  iv->n_steps = iv->n_good = iv->n_bad = 0;
  iv->loss_sum = iv->norm_sum = 0;
  iv->sentences = 0;
  if (iv->terms)
    g_hash_table_remove_all (iv->terms);
  else
    iv->terms = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  iv->t_start = g_get_monotonic_time ();
}

static void
interval_add_term (Interval *iv, const char *name, double v)
{
  double *acc = g_hash_table_lookup (iv->terms, name);
  if (!acc) {
    acc = g_new0 (double, 2);
    g_hash_table_insert (iv->terms, g_strdup (name), acc);
  }
  acc[0] += v;
  acc[1] += 1;
}

/* A step's result into the interval: an applied update's loss, gradient
 * norm, terms and logged extras; a skipped one counts. */
static void
interval_add (Interval *iv, const StsimEngineResult *r, gsize sentences)
{
  iv->n_steps++;
  iv->sentences += sentences;
  if (r->skipped) {
    iv->n_bad++;
    return;
  }
  iv->n_good++;
  iv->loss_sum += r->loss;
  if (isfinite (r->grad_norm))
    iv->norm_sum += r->grad_norm;
  for (guint i = 0; i < r->n_terms; i++)
    interval_add_term (iv, r->term_names[i], r->terms[i]);
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, r->logged);
  while (g_hash_table_iter_next (&it, &k, &v))
    interval_add_term (iv, k, *(double *) v);
}

static void
format_duration (double s, char *buf, gsize size)
{
  if (!isfinite (s) || s < 0)
    g_strlcpy (buf, "?", size);
  else if (s < 60)
    g_snprintf (buf, size, "%.0fs", s);
  else if (s < 3600)
    g_snprintf (buf, size, "%dm%02ds", (int) (s / 60), (int) fmod (s, 60));
  else
    g_snprintf (buf, size, "%dh%02dm", (int) (s / 3600), (int) fmod (s / 60, 60));
}

static gboolean
log_interval (StsimTrainer *tr, Interval *iv, gint64 t0, GError **error)
{
  double secs = (g_get_monotonic_time () - iv->t_start) / 1e6;
  StsimRunLogTrain line = {
    .step = tr->step,
    .epoch = tr->epoch,
    .loss = iv->n_good ? iv->loss_sum / iv->n_good : NAN,
    .terms = iv->terms,
    .lr = stsim_lr_linear (tr->cfg->lr, tr->step > 0 ? tr->step - 1 : 0, tr->cfg->warmup, tr->total_steps),
    .grad_norm = iv->n_good ? iv->norm_sum / iv->n_good : NAN,
    .skipped = iv->n_bad,
    .sentences_per_second = secs > 0 ? iv->sentences / secs : 0,
    .elapsed = (g_get_monotonic_time () - t0) / 1e6,
  };
  if (!tr->options.quiet) {
    char eta[32];
    double steps_per_s = secs > 0 ? iv->n_steps / secs : 0;
    format_duration (steps_per_s > 0 ? (tr->total_steps - tr->step) / steps_per_s : NAN, eta, sizeof eta);
    g_printerr ("%sstep %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT "  loss %.4f  %.1f sent/s  ETA %s%s",
                isatty (2) ? "\r\033[K" : "", tr->step, tr->total_steps, line.loss, line.sentences_per_second, eta,
                isatty (2) ? "" : "\n");
  }
  return stsim_run_log_train (tr->log, &line, error);
}

/* ---- evaluation and selection -------------------------------------------------------- */

static gboolean
evaluate_dev (StsimTrainer *tr, gint64 t0, GError **error)
{
  g_autoptr(JsonObject) report = json_object_new ();
  double primary = NAN;
  gint64 t = g_get_monotonic_time ();
  StsimComponent *encoder = stsim_engine_get_encoder (tr->engine);
  if (!stsim_evaluator_evaluate (tr->evaluator, encoder, STSIM_EVAL_DEV, report, &primary, error)) {
    g_prefix_error (error, "dev evaluation at step %" G_GUINT64_FORMAT ": ", tr->step);
    return FALSE;
  }
  double secs = (g_get_monotonic_time () - t) / 1e6;
  /* Strictly greater: ties keep the earlier checkpoint (method.md §3.6). */
  gboolean better = isfinite (primary) && (!tr->has_best || primary > tr->best);
  gboolean save = better && tr->cfg->save_best;
  if (better) {
    if (save && !stsim_model_save (stsim_engine_get_model (tr->engine), tr->best_dir, error)) {
      g_prefix_error (error, "saving the best checkpoint to %s: ", tr->best_dir);
      return FALSE;
    }
    tr->has_best = TRUE;
    tr->best = primary;
    tr->best_step = tr->step;
  }
  StsimRunLogEval line = { .step = tr->step, .dev = primary, .best = tr->best, .best_step = tr->best_step,
                           .saved = save, .seconds = secs, .elapsed = (g_get_monotonic_time () - t0) / 1e6 };
  if (!tr->options.quiet)
    g_printerr ("%sstep %" G_GUINT64_FORMAT ": dev %.4f%s (best %.4f at step %" G_GUINT64_FORMAT ", %.1fs)\n",
                isatty (2) ? "\r\033[K" : "", tr->step, primary, save ? " *saved*" : "", tr->best, tr->best_step,
                secs);
  return stsim_run_log_eval (tr->log, &line, error);
}

/* Copies the parameters of the checkpoint in best/ into the student, by
 * tensor name: the model that is tested is exactly the file on disk. */
static gboolean
reload_best (StsimTrainer *tr, GError **error)
{
  /* The student's parts (pooler, MLM head) but never a re-initialised
   * pooler: what is tested is what the file holds. */
  StsimModel *model = stsim_engine_get_model (tr->engine);
  guint flags = stsim_model_get_flags (model) & (STSIM_MODEL_POOLER | STSIM_MODEL_MLM_HEAD);
  g_autoptr(StsimModel) best = stsim_model_load (tr->best_dir, flags, tr->seed, error);
  if (!best) {
    g_prefix_error (error, "reloading the best checkpoint: ");
    return FALSE;
  }
  StsimParamStore *dst = stsim_model_get_params (model);
  StsimParamStore *src = stsim_model_get_params (best);
  for (gsize i = 0; i < stsim_param_store_get_n_views (dst); i++) {
    const StsimParamView *dv = stsim_param_store_get_view (dst, i);
    const StsimParamView *sv = stsim_param_store_lookup (src, dv->name);
    if (!sv)
      continue;  /* e.g. an MLM head the checkpoint ties to the embeddings */
    if (sv->numel != dv->numel) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT, "%s: tensor '%s' has %" G_GINT64_FORMAT
                   " values, the student %" G_GINT64_FORMAT, tr->best_dir, dv->name, sv->numel, dv->numel);
      return FALSE;
    }
    memcpy (dv->tensor->data, sv->tensor->data, dv->numel * sizeof (float));
  }
  return TRUE;
}

/* The model that is tested: best/ reloaded, or the last parameters (saved
 * to best/ unless save_best = false). *selected says which. */
static gboolean
select_final (StsimTrainer *tr, const char **selected, GError **error)
{
  StsimModel *model = stsim_engine_get_model (tr->engine);
  if (tr->has_best && tr->cfg->save_best) {
    *selected = "best";
    return reload_best (tr, error);
  }
  /* No evaluation happened during training (eval_every 0 or larger than
   * the run), or no checkpoint is kept: the last parameters are the result. */
  *selected = "last";
  if (tr->cfg->save_best && !stsim_model_save (model, tr->best_dir, error))
    return FALSE;
  if (!tr->options.quiet && tr->cfg->save_best)
    g_printerr ("no dev evaluation during training: testing the last parameters (saved to %s)\n", tr->best_dir);
  else if (!tr->options.quiet)
    g_printerr ("save_best = false: testing the last parameters (no checkpoint written)\n");
  return TRUE;
}

static JsonObject *
training_summary (StsimTrainer *tr, const char *selected, double train_seconds)
{
  JsonObject *t = json_object_new ();
  json_object_set_string_member (t, "recipe", stsim_recipe_get_path (tr->recipe));
  if (tr->cfg->save_best)
    json_object_set_string_member (t, "model", tr->best_dir);
  else
    json_object_set_null_member (t, "model");
  json_object_set_string_member (t, "selected", selected);
  json_object_set_int_member (t, "steps", tr->step);
  json_object_set_int_member (t, "skipped_steps", tr->bad_total);
  if (tr->has_best) {
    json_object_set_double_member (t, "best_dev", tr->best);
    json_object_set_int_member (t, "best_step", tr->best_step);
  }
  json_object_set_double_member (t, "train_seconds", train_seconds);
  return t;
}

static gboolean
finish_run (StsimTrainer *tr, double train_seconds, GError **error)
{
  /* save_best = false (the lab setting): no checkpoint at all, the final parameters are tested. */
  if (!tr->evaluator || !tr->cfg->test) {
    if (tr->cfg->save_best && !tr->has_best &&
        !stsim_model_save (stsim_engine_get_model (tr->engine), tr->best_dir, error))
      return FALSE;
    return TRUE;
  }
  const char *selected;
  if (!select_final (tr, &selected, error))
    return FALSE;
  g_autoptr(JsonObject) report = json_object_new ();
  double primary = NAN;
  if (!stsim_evaluator_evaluate (tr->evaluator, stsim_engine_get_encoder (tr->engine), STSIM_EVAL_TEST, report,
                                 &primary, error)) {
    g_prefix_error (error, "test evaluation: ");
    return FALSE;
  }
  json_object_set_object_member (report, "training", training_summary (tr, selected, train_seconds));
  g_autofree char *text = NULL;
  if (!stsim_run_log_results (tr->log, report, &text, error))
    return FALSE;
  if (!tr->options.quiet) {
    g_autofree char *path = stsim_run_log_results_path (tr->log);
    g_autofree char *table = json_object_has_member (report, "table") ? stsim_sts_report_format (report) : NULL;
    g_print ("%s", table ? table : text);
    if (table && !g_str_has_suffix (table, "\n"))
      g_print ("\n");
    g_print ("results: %s\n", path);
  }
  return TRUE;
}

/* ---- one step ------------------------------------------------------------------------ */

/* Returns FALSE on a hard error; *good says whether the update was applied. */
static gboolean
train_step (StsimTrainer *tr, Interval *iv, gboolean *good, GError **error)
{
  gsize B = 0;
  g_autofree const char **rows = next_batch (tr, &B);
  StsimEngineResult r;
  if (!stsim_engine_step (tr->engine, rows, B, tr->step, &r, error))
    return FALSE;
  *good = !r.skipped;
  interval_add (iv, &r, B);
  if (*good) {
    tr->bad_in_row = 0;
    return TRUE;
  }
  tr->bad_in_row++;
  tr->bad_total++;
  if (!tr->options.quiet && tr->rank == 0)
    g_printerr ("%sstep %" G_GUINT64_FORMAT ": non-finite loss or gradient (loss %g): step skipped "
                "(%" G_GUINT64_FORMAT " in a row)\n",
                isatty (2) ? "\r\033[K" : "", tr->step, r.loss, tr->bad_in_row);
  return TRUE;
}

/* ---- the run ---------------------------------------------------------------------------- */

/* Teachers that precompute (encoder-teacher caches its embeddings of the
 * corpus) see every training sentence (view 0) once, before the first step. */
static gboolean
prepare_teachers_here (StsimTrainer *tr, GError **error)
{
  guint n = 0;
  StsimComponent *const *all = stsim_context_get_components (tr->ctx, &n);
  gsize count = stsim_corpus_get_n (tr->corpus);
  g_autofree const char **texts = NULL;
  for (guint i = 0; i < n; i++) {
    if (stsim_component_get_kind (all[i]) != STSIM_KIND_TEACHER || !stsim_teacher_has_prepare_corpus (all[i]))
      continue;
    if (!texts) {
      texts = g_new (const char *, count + 1);
      for (gsize k = 0; k < count; k++)
        texts[k] = stsim_corpus_get_text (tr->corpus, k, 0);
      texts[count] = NULL;
    }
    if (!stsim_teacher_prepare_corpus (all[i], texts, count, error)) {
      g_prefix_error (error, "[%s]: preparing the teacher: ", stsim_component_get_label (all[i]));
      return FALSE;
    }
  }
  return TRUE;
}

/* Several ranks: rank 0 prepares first (a teacher may build a cache file
 * that the others then load instead of computing it again). */
static gboolean
prepare_teachers (StsimTrainer *tr, GError **error)
{
  if (tr->world == 1)
    return prepare_teachers_here (tr, error);
  gboolean ok = tr->rank != 0 || prepare_teachers_here (tr, error);
  GError *local = NULL;
  if (!stsim_trainer_sync_flag (tr, ok, "preparing the teachers", ok ? error : &local)) {
    g_clear_error (&local);
    return FALSE;
  }
  return tr->rank == 0 || prepare_teachers_here (tr, error);
}

/* Resumes from state/ (rank 0 reads, the others receive) or starts fresh;
 * either way every rank ends with rank 0's parameters and position. */
static gboolean
resume_or_start (StsimTrainer *tr, GError **error)
{
  g_autofree char *state_path = g_build_filename (tr->state_dir, "state.safetensors", NULL);
  gboolean resuming = tr->rank == 0 && tr->options.resume && g_file_test (state_path, G_FILE_TEST_EXISTS);
  /* Every rank gets to the collective below, also when rank 0 fails. */
  gboolean root_ok = tr->rank != 0 || build_fingerprint (tr, error);
  if (root_ok && resuming) {
    root_ok = stsim_trainer_load_state (tr, error) && stsim_run_log_start (tr->log, TRUE, tr->step, error);
    if (root_ok && !tr->options.quiet)
      g_printerr ("resuming %s at step %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT "\n", tr->out_dir, tr->step,
                  tr->total_steps);
  } else if (root_ok && tr->rank == 0 && tr->options.resume) {
    /* Never "resume" from step 0: that would be a fresh run in a used folder. */
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND,
                 "--resume: no resume state at %s (this run saved none yet); start the run without --resume "
                 "(with --overwrite to replace what %s holds)", state_path, tr->out_dir);
    root_ok = FALSE;
  } else if (root_ok && tr->rank == 0) {
    /* A fresh run starts a fresh log and forgets an older best. */
    root_ok = stsim_run_log_start (tr->log, FALSE, 0, error);
  }
  if (tr->world == 1)
    return root_ok;
  /* Every rank starts from rank 0's parameters, optimizer state and
   * position (resumed or fresh), so that they are identical. */
  GError *local = NULL;
  gboolean synced = stsim_trainer_sync_state (tr, root_ok, root_ok ? error : &local);
  g_clear_error (&local);
  return synced;
}

static void
print_start (StsimTrainer *tr)
{
  if (tr->options.quiet)
    return;
  g_printerr ("training %s: %" G_GSIZE_FORMAT " examples, batch %" G_GSIZE_FORMAT ", %" G_GUINT64_FORMAT
              " steps, %u objective(s), head %s, output %s\n",
              stsim_component_get_label (stsim_engine_get_encoder (tr->engine)), stsim_corpus_get_n (tr->corpus),
              tr->batch_size, tr->total_steps, tr->engine->objectives->len, tr->cfg->head_name, tr->out_dir);
  if (tr->world > 1) {
    g_printerr ("data-parallel: %d ranks, %" G_GSIZE_FORMAT " to %" G_GSIZE_FORMAT " sentences of each batch per "
                "rank; rank 0 evaluates, logs and saves\n", tr->world, tr->batch_size / tr->world,
                (tr->batch_size + tr->world - 1) / tr->world);
    guint nb = stsim_grad_sync_get_n_buckets (tr->engine->sync);
    if (tr->cfg->allreduce_bucket_mb > 0)
      g_printerr ("gradient all-reduce: %u bucket(s) of up to %g MB, sent during the backward\n", nb,
                  tr->cfg->allreduce_bucket_mb);
    else
      g_printerr ("gradient all-reduce: %u piece(s), after the backward (allreduce_bucket_mb = 0)\n", nb);
  }
}

/* Too many non-finite steps in a row: the skipped steps changed no
 * parameter, so what is in memory is the last good state; keep it on disk
 * for inspection or a resume, and stop with an error. */
static void
stop_bad_steps (StsimTrainer *tr, GError **error)
{
  GError *save_err = NULL;
  gboolean saved = tr->rank != 0 || stsim_trainer_save_state (tr, &save_err);
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_NUMERIC,
               "training stopped at step %" G_GUINT64_FORMAT ": %" G_GUINT64_FORMAT
               " steps in a row had a NaN or infinite loss or gradient ([train] max_bad_steps = %" G_GUINT64_FORMAT
               "); %s%s. Lower [train] lr, check the data, or raise max_bad_steps",
               tr->step, tr->bad_in_row, tr->cfg->max_bad_steps,
               saved ? "the last good state is in " : "saving the last good state failed: ",
               saved ? tr->state_dir : save_err->message);
  if (save_err)
    g_error_free (save_err);
}

static gboolean
due (guint64 step, guint64 every)
{
  return every > 0 && step % every == 0;
}

/* Rank 0's view of the gradient exchange: the time it waited for it after
 * the backward (what the overlap did not hide) and how much was done by
 * then. */
static void
print_exchange (StsimTrainer *tr)
{
  guint64 n = 0, early = 0;
  double wait = 0;
  stsim_grad_sync_get_totals (tr->engine->sync, &n, &wait, &early);
  guint nb = stsim_grad_sync_get_n_buckets (tr->engine->sync);
  if (n > 0)
    g_printerr ("gradient all-reduce: waited %.4f s per step after the backward; %.1f of %u bucket(s) complete "
                "when the backward ended\n", wait / n, (double) early / n, nb);
}

/* The end of a run on rank 0: the final state (keep_state = last), the
 * curves, the test of the selected model and results.json. */
static gboolean
end_run (StsimTrainer *tr, double train_seconds, GError **error)
{
  if (tr->cfg->keep_state && !stsim_trainer_save_state (tr, error))
    return FALSE;
  if (!tr->options.quiet)
    g_printerr ("trained %" G_GUINT64_FORMAT " steps in %.1fs (%" G_GUINT64_FORMAT " skipped)\n", tr->step,
                train_seconds, tr->bad_total);
  if (tr->world > 1 && !tr->options.quiet)
    print_exchange (tr);
  stsim_run_log_curves (tr->log);
  return finish_run (tr, train_seconds, error) && (tr->cfg->keep_state || stsim_trainer_remove_state (tr, error));
}

static gboolean
train_loop (StsimTrainer *tr, gboolean *stopped, double *train_seconds, GError **error)
{
  const StsimTrainConfig *cfg = tr->cfg;
  const gboolean rank0 = tr->rank == 0;
  gint64 t0 = g_get_monotonic_time ();
  guint64 steps_here = 0;
  g_autoptr(GHashTable) terms = NULL;
  Interval iv = { 0 };
  interval_reset (&iv);
  terms = iv.terms;  /* freed with the loop */

  while (tr->step < tr->total_steps) {
    gboolean good;
    gint64 ts = g_get_monotonic_time ();
    if (!train_step (tr, &iv, &good, error))
      return FALSE;
    *train_seconds += (g_get_monotonic_time () - ts) / 1e6;
    tr->step++;
    steps_here++;
    if (!good && tr->bad_in_row >= cfg->max_bad_steps) {
      stop_bad_steps (tr, error);
      return FALSE;
    }
    if (due (tr->step, cfg->log_every) || tr->step == tr->total_steps) {
      if (rank0 && !log_interval (tr, &iv, t0, error))
        return FALSE;
      interval_reset (&iv);
    }
    if (tr->options.stop_after_steps > 0 && steps_here >= (guint64) tr->options.stop_after_steps) {
      /* Simulated kill: no save, no cleanup. */
      if (!tr->options.quiet)
        g_printerr ("\nstopping after %" G_GUINT64_FORMAT " steps (--stop-after-steps)\n", steps_here);
      *stopped = TRUE;
      return TRUE;
    }
    if (rank0 && tr->evaluator && due (tr->step, cfg->eval_every)) {
      if (!evaluate_dev (tr, t0, error))
        return FALSE;
      stsim_run_log_curves (tr->log);
      iv.t_start = g_get_monotonic_time ();  /* sentences/s excludes evaluation */
    }
    if (rank0 && due (tr->step, cfg->save_every) && tr->step < tr->total_steps &&
        !stsim_trainer_save_state (tr, error))
      return FALSE;
  }
  if (!tr->options.quiet && isatty (2))
    g_printerr ("\n");
  return TRUE;
}

gboolean
stsim_trainer_run (const StsimRecipe *recipe, StsimContext *ctx, const StsimTrainOptions *options, GError **error)
{
  g_return_val_if_fail (recipe != NULL && ctx != NULL, FALSE);
  g_autoptr(StsimTrainer) tr = g_new0 (StsimTrainer, 1);
  StsimTrainOptions defaults = STSIM_TRAIN_OPTIONS_INIT;
  tr->recipe = recipe;
  tr->ctx = ctx;
  tr->options = options ? *options : defaults;
  tr->seed = stsim_recipe_get_seed (recipe);
  tr->rank = stsim_dist_rank ();
  tr->world = stsim_dist_size ();
  if (tr->rank != 0)
    tr->options.quiet = TRUE;  /* rank 0 speaks for the job */
  if (stsim_recipe_get_threads (recipe) > 0)
    stsim_set_threads (stsim_recipe_get_threads (recipe));

  /* resolved.ini after the resume checks: a refused --resume leaves the
   * folder as it was. */
  if (!setup (tr, error) || !resume_or_start (tr, error))
    return FALSE;
  if (tr->rank == 0 && !stsim_run_log_write_resolved (tr->log, recipe, error))
    return FALSE;
  if (!prepare_teachers (tr, error))
    return FALSE;
  print_start (tr);

  gboolean stopped = FALSE;
  double train_seconds = 0;
  if (!train_loop (tr, &stopped, &train_seconds, error))
    return FALSE;
  if (stopped || tr->rank != 0)
    return TRUE;  /* a simulated kill; or rank 0 saves, tests and reports */
  return end_run (tr, train_seconds, error);
}
