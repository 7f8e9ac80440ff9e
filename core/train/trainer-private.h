/* trainer-private.h: the trainer's structure, shared by core/train files
 * (trainer.c runs the loop, state.c saves and restores it). The model, head,
 * objectives and optimizers live in the engine (engine-private.h); the
 * trainer owns the data position, the selection of the best model and the
 * run log. */
#pragma once
#include "train/engine-private.h"
#include "train/runlog.h"
#include "io/rundir.h"

G_BEGIN_DECLS

typedef struct _StsimTrainer StsimTrainer;

struct _StsimTrainer {
  const StsimRecipe      *recipe;
  StsimContext           *ctx;
  StsimTrainOptions       options;
  StsimEngine            *engine;
  const StsimTrainConfig *cfg;       /* the engine's parsed [train] */
  guint64                 seed;

  StsimComponent         *evaluator; /* NULL when neither DEV selection nor TEST runs */
  StsimCorpus            *corpus;
  guint                   n_views;   /* 2, or 3 with triples */
  gsize                   batch_size;
  guint64                 total_steps;

  /* position */
  guint64                 step;      /* optimizer steps taken (incl. skipped) */
  guint64                 epoch;
  gsize                   index;     /* next example of the epoch's permutation */
  gint32                 *perm;
  guint64                 perm_epoch;  /* epoch perm was drawn for, G_MAXUINT64 if none */

  /* selection */
  gboolean                has_best;
  double                  best;
  guint64                 best_step;
  guint64                 bad_in_row, bad_total;

  /* outputs: rank 0 writes (the run log), the others only compute */
  StsimRunLog            *log;
  char                   *out_dir, *state_dir, *best_dir;
  /* rank 0: what determines this run's trajectory, saved with the state
   * and compared on resume (io/rundir.h) */
  StsimRunFingerprint    *fingerprint;
  char                   *fingerprint_json;

  /* data-parallel world (dist.h): 1 rank unless run under MPI */
  int                     rank, world;
};

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
