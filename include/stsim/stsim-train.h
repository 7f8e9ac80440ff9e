/* stsim-train.h: the trainer of libstsim, which runs a recipe.
 *
 * The trainer runs the loop of method.md §3 (SimCSE) driven by a recipe's
 * [train] section (docs/training.md lists every key):
 *
 *   corpus -> seeded shuffle per epoch -> B sentences -> 2B rows (two dropout
 *   views) -> tokenize (max_len) -> student forward (train mode) -> pool h ->
 *   head z -> Σ weight_i · loss_i (each logged) -> backward -> clip -> AdamW
 *   -> linear schedule; every eval_every steps the evaluator (DEV) keeps the
 *   best checkpoint; at the end the best is reloaded and tested.
 *
 * ROW ORDER. A step holds B sentences and V views of them (V = 2 for
 * unsupervised SimCSE, 3 for supervised triples sent0/sent1/hard_neg). Its
 * token batch has V·B rows in VIEW-MAJOR order:
 *
 *   rows [0, B)     view 0 (sentence i at row i)
 *   rows [B, 2B)    view 1 (sentence i at row B + i)
 *   rows [2B, 3B)   view 2 (hard negatives; supervised only)
 *
 * (HF interleaves [s1, s1, s2, s2, ...]; the losses are invariant to the row
 * order, BatchNorm statistics too, and view-major makes z1 and z2 zero-copy
 * slices.) Every row draws its own dropout masks, so the two copies of a
 * sentence differ only by their dropout noise (method.md §3.2).
 *
 * LAZINESS. The student forward, pooling and head run on first request
 * (stsim_train_step_get_output / _get_pooled / _get_projected), so an
 * objective that needs its own forward (mlm alone, for pretraining) costs
 * no unused pass.
 *
 * An objective's loss() builds its scalar from autograd ops on the step's
 * tape; the engine (below) sums the weighted terms and runs backward once.
 */
#pragma once
#include <glib.h>
#include "stsim-error.h"
#include "stsim-export.h"
#include "stsim-plugin.h"
#include "stsim-recipe.h"
#include "stsim-train-step.h"

G_BEGIN_DECLS

/* ---- running a recipe ---------------------------------------------------- */
typedef struct {
  gboolean resume;            /* continue from <output>/state/ (NOT_FOUND when there is none) */
  gint64   stop_after_steps;  /* > 0: stop after this many steps of this process, without
                                 the final save (a simulated kill, for tests) */
  gboolean quiet;             /* no progress line, no table on stdout */
  /* Resume: fingerprint keys (or globs such as 'corpus:*') that may differ
   * from the saved run's (--allow-changed), NULL-terminated; NULL: none. */
  const char *const *allow_changed;
} StsimTrainOptions;

#define STSIM_TRAIN_OPTIONS_INIT { FALSE, 0, FALSE, NULL }

/* The [train] section's parameter table (docs/training.md); the recipe
 * code knows it as a core section without registration. */
STSIM_API
const StsimParamSpec *stsim_train_get_param_specs (void);
/* TRUE when the recipe has an enabled objective (stsim-run then trains). */
STSIM_API
gboolean              stsim_recipe_wants_training (const StsimRecipe *recipe);

/* ---- the engine: one optimizer step --------------------------------------- *
 * What the trainer's loop calls once per step, and what stsim-bench runs as
 * a workload: the recipe's trained encoder, head, objectives and AdamW, with
 * the step of method.md §3:
 *
 *   V·B row texts -> tokens (max_len) -> Σ weight_i · loss_i (objectives, on
 *   the lazily computed student forward, pooling and head) -> sum over ranks
 *   -> backward -> skip when the loss or gradient is not finite -> clip ->
 *   AdamW at the linear schedule's lr for this step -> zero the gradients.
 *
 * Built from an instantiated recipe ([train] for the head, optimizer, max_len
 * and schedule; the data keys are the caller's business): the same recipe and
 * texts give the same parameters bit for bit, whoever feeds the batches. */
typedef struct _StsimEngine StsimEngine;

typedef struct {
  double              loss;        /* Σ weight_i · loss_i over the objectives (NaN/Inf: skipped) */
  double              grad_norm;   /* L2 norm of the gradient before clipping; NAN if not computed */
  gboolean            skipped;     /* non-finite loss or gradient: no parameter changed */
  guint               n_terms;     /* one per enabled objective, in recipe order */
  const char *const  *term_names;  /* "loss.LABEL" */
  const double       *terms;       /* each objective's loss (over every rank) */
  GHashTable         *logged;      /* extra values objectives logged: name -> double* */
} StsimEngineResult;
/* The result's arrays and table belong to the engine and live until its next step. */

/* @ctx holds the recipe's instantiated components. Errors name the section
 * or [train] key at fault (no trainable encoder, head = mlp without a
 * pooler, a plugin's bad params() ...). The total steps default to
 * [train] steps (for the schedule; set it when it depends on the data). */
STSIM_API
StsimEngine *stsim_engine_new             (const StsimRecipe *recipe, StsimContext *ctx, GError **error);
STSIM_API
void         stsim_engine_free            (StsimEngine *engine);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimEngine, stsim_engine_free)
STSIM_API
void         stsim_engine_set_total_steps (StsimEngine *engine, guint64 total_steps);
/* V, the texts per sentence a step takes: 2 (unsupervised), 3 (triples). */
STSIM_API
guint        stsim_engine_get_n_views     (StsimEngine *engine);
STSIM_API
StsimModel  *stsim_engine_get_model       (StsimEngine *engine);
STSIM_API
StsimComponent *stsim_engine_get_encoder  (StsimEngine *engine);
/* The tape every step records on (its arena's high-water mark, say). */
STSIM_API
StsimTape   *stsim_engine_get_tape        (StsimEngine *engine);
/* One step over @n_sentences sentences: @row_texts holds their V·n texts,
 * view-major (see ROW ORDER). @step numbers the step (dropout, masking and
 * the lr schedule depend on it). FALSE on a hard error; a non-finite step is
 * no error: @result says it was skipped. */
STSIM_API
gboolean     stsim_engine_step            (StsimEngine *engine, const char *const *row_texts, gsize n_sentences,
                                           guint64 step, StsimEngineResult *result, GError **error);

/* Trains the recipe's encoder with its objectives; see the top of this file
 * and docs/training.md. @ctx must hold the instantiated components
 * (stsim_recipe_instantiate). Writes into the run folder ([run] output):
 * resolved.ini, state/ (none left with keep_state = none), best/ (none with
 * save_best = false), metrics.jsonl, curves.svg, results.json. The state
 * records the run's fingerprint (recipe, corpus, checkpoint and file
 * hashes, ranks); a resume refuses a state that differs from this run in a
 * key that @options' allow_changed does not name, and a state whose fields
 * are out of range or whose tensors are not finite. The folder's lock and
 * fresh/overwrite policy are the caller's (stsim/stsim-rundir.h). */
STSIM_API
gboolean stsim_trainer_run (const StsimRecipe *recipe, StsimContext *ctx,
                            const StsimTrainOptions *options, GError **error);

G_END_DECLS
