/* train-config.h: the [train] section of a recipe, parsed once into a typed
 * struct (docs/training.md lists the keys; train-config.c holds the spec
 * table). Everything in core/train reads [train] through this struct, never
 * by key name. */
#pragma once
#include <glib.h>
#include "stsim/stsim-params.h"
#include "stsim/stsim-recipe.h"

G_BEGIN_DECLS

/* The projection head z = head(h) (head.h). */
typedef enum {
  STSIM_HEAD_MLP,   /* SimCSE's dense + tanh: the model's own pooler.dense */
  STSIM_HEAD_BN,    /* DiffCSE's projector: Linear, BN, ReLU, Linear, BN */
  STSIM_HEAD_NONE   /* z = h */
} StsimHeadKind;

typedef struct {
  /* data */
  char        **corpus;          /* corpus, split at commas (paths, folders, patterns) */
  char         *pairs;           /* supervised triples (CSV), or NULL: then corpus */
  guint64       steps;           /* 0 = epochs x steps per epoch */
  guint64       epochs;
  gsize         batch_size;      /* sentences per step B */
  int           max_len;         /* tokens per row, specials included */
  /* optimisation */
  double        lr, weight_decay, adam_beta1, adam_beta2, adam_eps;
  guint64       warmup;
  double        max_grad_norm;   /* 0 = no clipping */
  double        allreduce_bucket_mb;  /* several ranks: gradient bucket size, 0 = after the backward */
  gboolean      packed;          /* the encoder skips padding */
  guint64       max_bad_steps;   /* stop after this many non-finite steps in a row */
  guint64      *debug_nan_steps; /* steps whose loss is replaced by NaN (tests) */
  gsize         n_debug_nan_steps;
  /* model */
  StsimHeadKind head;
  const char   *head_name;       /* "mlp", "bn" or "none", for messages */
  char         *pooler;          /* deprecated [train] pooler, or NULL */
  char         *encoder;         /* label of the trained encoder, or NULL (the only one) */
  char         *evaluator;       /* label of the evaluator, or NULL (the only one) */
  /* schedule of the loop and outputs */
  guint64       eval_every, save_every, log_every;  /* 0: eval/save only at the end */
  gboolean      keep_state;      /* keep_state = last (FALSE: none) */
  gboolean      save_best;
  gboolean      test;
} StsimTrainConfig;

/* The spec table of [train] (the recipe code registers it with the core
 * sections, recipe.c). */
const StsimParamSpec *stsim_train_config_get_specs (void);
/* Fills @cfg from validated [train] values @p; errors (a malformed
 * debug_nan_steps) name the key. Clear with stsim_train_config_clear. */
gboolean stsim_train_config_parse (const StsimParams *p, StsimTrainConfig *cfg, GError **error);
void     stsim_train_config_clear (StsimTrainConfig *cfg);
/* TRUE when @step is one of debug_nan_steps. */
gboolean stsim_train_config_is_nan_step (const StsimTrainConfig *cfg, guint64 step);

/* The recipe check of [train] (train-recipe.c), run by the recipe code after
 * the per-section checks: the deprecated [train] pooler must agree with the
 * trained encoder's pooler, and an encoder pooler of cls needs head = mlp. */
void stsim_train_check_recipe (StsimRecipe *recipe);

G_END_DECLS
