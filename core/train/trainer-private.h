/* trainer-private.h: the trainer's structures, shared by core/train files. */
#pragma once
#include "stsim/stsim-train.h"
#include "stsim/stsim-optim.h"
#include "stsim/stsim-recipe.h"
#include "train/train-private.h"

G_BEGIN_DECLS

typedef enum { HEAD_MLP, HEAD_BN, HEAD_NONE } HeadKind;

typedef struct {
  StsimComponent             *component;
  const char                 *label;
  double                      weight;
  const StsimObjectiveVTable *vt;
  StsimParamStore *const    *stores;   /* the objective's own parameters (params op), or NULL */
  gsize                       n_stores;
} TrainObjective;

typedef struct _StsimTrainer StsimTrainer;

struct _StsimTrainer {
  const StsimRecipe  *recipe;
  StsimContext       *ctx;
  StsimTrainOptions   options;
  const StsimParams  *p;            /* [train] */
  guint64             seed;

  StsimComponent     *encoder, *evaluator;
  StsimModel         *model;
  StsimTokenizer     *tok;
  GArray             *objectives;   /* TrainObjective */
  StsimCorpus        *corpus;
  guint               n_views;      /* 2, or 3 with triples */

  /* head */
  HeadKind            head;
  StsimPooler         pooler;
  StsimTensor        *mlp_w, *mlp_b;                 /* HEAD_MLP: the model's pooler.dense */
  StsimParamStore    *head_store;                    /* HEAD_BN */
  StsimTensor        *bn_w1, *bn_g1, *bn_b1, *bn_w2;
  float              *bn_rm1, *bn_rv1, *bn_rm2, *bn_rv2;  /* running statistics (unused at eval) */
  gint64              H;

  /* optimisation */
  GPtrArray          *stores;       /* StsimParamStore*, trainable, in state order */
  GPtrArray          *opts;         /* StsimAdamW*, parallel to stores */
  StsimTape          *tape;
  gboolean            packed;
  int                 max_len;
  gsize               batch_size;
  double              lr, max_grad_norm;
  guint64             warmup, total_steps;
  GHashTable         *nan_steps;    /* debug_nan_steps */

  /* position */
  guint64             step;         /* optimizer steps taken (incl. skipped) */
  guint64             epoch;
  gsize               index;        /* next example of the epoch's permutation */
  gint32             *perm;
  guint64             perm_epoch;   /* epoch perm was drawn for, G_MAXUINT64 if none */

  /* selection */
  gboolean            has_best;
  double              best;
  guint64             best_step;
  guint64             bad_in_row, bad_total;

  /* outputs */
  char               *out_dir, *state_dir, *best_dir, *metrics_path;

  /* data-parallel world (dist.h): 1 rank unless run under MPI */
  int                 rank, world;
};

struct _StsimTrainStep {
  StsimTrainer     *tr;
  guint64           index;
  gsize             B;
  guint             V;
  char            **row_texts;    /* V*B + 1, strings owned by the corpus */
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
  gboolean          owns_trainer;  /* detached (test) steps */
  gboolean          owns_texts;
};

void         stsim_train_step_init  (StsimTrainStep *step, StsimTrainer *tr, guint64 index);
void         stsim_train_step_clear (StsimTrainStep *step);
StsimTensor *stsim_trainer_head_forward (StsimTrainer *tr, StsimTensor *h, GError **error);

/* train-recipe.c: the training pooling (the encoder's pooler; [train] pooler,
 * deprecated, for encoders without one) into tr->pooler, and the recipe check
 * that the two agree, registered with [train]. */
gboolean stsim_trainer_resolve_pooler (StsimTrainer *tr, GError **error);
void     stsim_train_register_checks (void);

/* state.c */
gboolean stsim_trainer_save_state (StsimTrainer *tr, GError **error);
/* Deletes state/ and what it holds (keep_state = none, at the end of a run). */
gboolean stsim_trainer_remove_state (StsimTrainer *tr, GError **error);
/* FALSE with NOT_FOUND when there is no state to resume from. */
gboolean stsim_trainer_load_state (StsimTrainer *tr, GError **error);
/* Several ranks (collectives): rank 0 tells the others whether @what
 * succeeded there (@root_ok); FALSE on every rank when it did not (the other
 * ranks get an error saying so; rank 0 keeps its own). */
gboolean stsim_trainer_sync_flag (StsimTrainer *tr, gboolean root_ok, const char *what, GError **error);
/* Several ranks: after sync_flag, rank 0's parameters, optimizer state, BN
 * running statistics and position to every rank. */
gboolean stsim_trainer_sync_state (StsimTrainer *tr, gboolean root_ok, GError **error);

G_END_DECLS
