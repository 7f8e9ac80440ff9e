/* engine-private.h: the engine's and the step's structures, shared by
 * core/train files (engine.c runs a step, step.c is what objectives see of
 * it, state.c saves its stores). */
#pragma once
#include "stsim/stsim-train.h"
#include "stsim/stsim-optim.h"
#include "stsim/stsim-recipe.h"
#include "train/train-private.h"
#include "train/train-config.h"
#include "train/head.h"
#include "train/grad-sync.h"

G_BEGIN_DECLS

typedef struct {
  StsimComponent             *component;
  const char                 *label;
  double                      weight;
  StsimParamStore *const     *stores;   /* the objective's own parameters (params op), or NULL */
  gsize                       n_stores;
} TrainObjective;

struct _StsimEngine {
  const StsimRecipe  *recipe;
  StsimContext       *ctx;
  StsimTrainConfig    cfg;          /* [train], parsed once */
  guint64             seed;

  StsimComponent     *encoder;
  StsimModel         *model;
  StsimTokenizer     *tok;
  GArray             *objectives;   /* TrainObjective */
  guint               n_views;      /* 2, or 3 with triples */
  StsimHead          *head;         /* NULL: none (detached steps) */
  StsimPooler         pooler;

  GPtrArray          *stores;       /* StsimParamStore*, trainable, in state order */
  GPtrArray          *opts;         /* StsimAdamW*, parallel to stores */
  StsimTape          *tape;
  gboolean            owns_tape;
  gboolean            packed;
  int                 max_len;
  guint64             total_steps;

  /* data-parallel world (dist.h): 1 rank unless run under MPI */
  int                 rank, world;
  StsimGradSync      *sync;         /* the gradient sum over the ranks (world > 1) */

  /* the last step's result (StsimEngineResult points here) */
  double             *terms;
  char              **term_names;
  GHashTable         *logs;
};

struct _StsimTrainStep {
  StsimEngine      *engine;
  guint64           index;
  gsize             B;
  guint             V;
  char            **row_texts;    /* V*B + 1, strings borrowed unless owns_texts */
  StsimTokenBatch   batch;
  gboolean          have_output;
  StsimModelOutput  output;
  StsimTensor      *pooled, *projected;   /* global rows [V*B, H] */
  /* Data-parallel shard: sentences [first, first + n_local) of the B; the
   * student runs on local_batch (V*n_local rows). With one rank the local
   * tensors are the global ones and local_batch is unused. */
  gsize             first, n_local;
  StsimTokenBatch   local_batch;
  StsimTensor      *pooled_local, *projected_local;
  gboolean          loss_local;     /* the running objective's loss covers local rows only */
  GHashTable       *data;
  GHashTable       *logs;         /* name -> double* */
  const char       *label;
  gboolean          owns_engine;  /* detached (test) steps */
  gboolean          owns_texts;
};

void         stsim_train_step_init  (StsimTrainStep *step, StsimEngine *engine, guint64 index);
void         stsim_train_step_clear (StsimTrainStep *step);
/* Tokenizes the step's row texts (and cuts this rank's shard). */
gboolean     stsim_train_step_tokenize (StsimTrainStep *step, GError **error);

/* The one component of @kind the trainer uses: [train] @label when given,
 * else the only enabled one (encoders a teacher wraps are skipped); errors
 * say which key to set. */
StsimComponent *stsim_train_find_component (StsimContext *ctx, const StsimRecipe *recipe, StsimKind kind,
                                            const char *label, GError **error);

/* train-recipe.c: the training pooling (the encoder's pooler; [train] pooler,
 * deprecated, for encoders without one) into engine->pooler. */
gboolean stsim_engine_resolve_pooler (StsimEngine *engine, GError **error);

G_END_DECLS
