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
 * What objectives see of a step (and the corpus and masking helpers they
 * share with the trainer) is stsim-train-step.h, which plugins include
 * through stsim.h; this header adds running a recipe and so pulls in the
 * recipe and registry APIs, which plugins never need.
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
  gboolean resume;            /* continue from <output>/state/ when it exists */
  gint64   stop_after_steps;  /* > 0: stop after this many steps of this process, without
                                 the final save (a simulated kill, for tests) */
  gboolean quiet;             /* no progress line, no table on stdout */
} StsimTrainOptions;

#define STSIM_TRAIN_OPTIONS_INIT { FALSE, 0, FALSE }

/* Registers the [train] core section and its recipe check (the deprecated
 * [train] pooler must agree with the trained encoder's pooler; an encoder
 * pooler of cls needs head = mlp) (idempotent). libstsim does this when it
 * is loaded; call it explicitly only if you need the spec table early. */
STSIM_API
void                  stsim_train_register_section (void);
STSIM_API
const StsimParamSpec *stsim_train_get_param_specs (void);
/* TRUE when the recipe has an enabled objective (stsim-run then trains). */
STSIM_API
gboolean              stsim_recipe_wants_training (const StsimRecipe *recipe);

/* Trains the recipe's encoder with its objectives; see the top of this file
 * and docs/training.md. @ctx must hold the instantiated components
 * (stsim_recipe_instantiate). Writes into the run folder ([run] output):
 * resolved.ini, state/ (none left with keep_state = none), best/ (none with
 * save_best = false), metrics.jsonl, curves.svg, results.json. */
STSIM_API
gboolean stsim_trainer_run (const StsimRecipe *recipe, StsimContext *ctx,
                            const StsimTrainOptions *options, GError **error);

G_END_DECLS
