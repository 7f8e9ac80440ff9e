/* stsim-transfer.h: SentEval's transfer tasks (MR, CR, SUBJ, MPQA, SST2,
 * TREC, MRPC) as SimCSE runs them.
 *
 * Readers for the seven tasks in SentEval's layout, SentEval's logistic-
 * regression classifier (its MLP with nhid = 0: one linear layer, softmax
 * cross-entropy, Adam or RMSprop with L2 weight decay, early stopping on a
 * validation set) and its three validation schemes (inner k-fold, k-fold then
 * test, train/dev/test), and the evaluation loop that turns an encoder into
 * the accuracy table. The `transfer` evaluator plugin and `stsim-eval
 * --transfer` are thin layers over this; docs/evaluation.md documents the
 * protocol, its departures and the report schema.
 *
 * Shuffles and folds use numpy's RandomState stream (MT19937, legacy
 * seeding), so they are SentEval's own; only the classifier's initial weights
 * come from a second MT19937 stream instead of torch's generator.
 */
#pragma once
#include <glib.h>
#include <json-glib/json-glib.h>
#include "stsim-export.h"
#include "stsim-error.h"
#include "stsim-sts.h"

G_BEGIN_DECLS

/* ---- numpy's RandomState (MT19937) --------------------------------------- */

typedef struct {
  guint32 key[624];
  int     pos;
} StsimMt19937;

/* np.random.RandomState(seed) */
STSIM_API
void    stsim_mt19937_init (StsimMt19937 *mt, guint32 seed);
STSIM_API
guint32 stsim_mt19937_u32 (StsimMt19937 *mt);
/* RandomState.random_sample(): 53-bit double in [0, 1). */
STSIM_API
double  stsim_mt19937_double (StsimMt19937 *mt);
/* RandomState.shuffle of a 1-D integer array (legacy bounded draws). */
STSIM_API
void    stsim_mt19937_shuffle (StsimMt19937 *mt, gint32 *x, gsize n);
/* RandomState.permutation(n). */
STSIM_API
void    stsim_mt19937_permutation (StsimMt19937 *mt, gint32 *out, gsize n);

/* ---- features ------------------------------------------------------------ */

/* n rows of d features, dense (row-major floats) or, for bag-of-words
 * encoders whose vectors are mostly zeros, compressed sparse rows. */
typedef struct {
  gsize    n, d;
  float   *dense;    /* [n * d] or NULL */
  gsize   *rowptr;   /* [n + 1] when sparse */
  guint32 *col;      /* [nnz] */
  float   *val;      /* [nnz] */
} StsimTransferMatrix;

STSIM_API
void                 stsim_transfer_matrix_free (StsimTransferMatrix *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimTransferMatrix, stsim_transfer_matrix_free)
/* A dense copy of @n rows of @d floats. */
STSIM_API
StsimTransferMatrix *stsim_transfer_matrix_new_dense (const float *x, gsize n, gsize d);
/* SentEval's MRPC features np.c_[|a - b|, a * b], row by row (2d columns). */
STSIM_API
StsimTransferMatrix *stsim_transfer_matrix_pair (const StsimTransferMatrix *a, const StsimTransferMatrix *b);

/* ---- classifier ---------------------------------------------------------- */

typedef enum {
  STSIM_TRANSFER_ADAM,     /* torch.optim.Adam defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8 */
  STSIM_TRANSFER_RMSPROP,  /* torch.optim.RMSprop defaults: lr 1e-2, alpha 0.99, eps 1e-8 */
} StsimTransferOptim;

typedef struct {
  StsimTransferOptim optim;
  guint    batch_size;   /* SentEval classifier batch_size */
  guint    tenacity;
  guint    epoch_size;
  guint    max_epoch;    /* 200 */
  guint    kfold;        /* folds of the cross-validations */
  guint32  seed;         /* SentEval's seed, 1111 */
} StsimTransferConfig;

/* SimCSE's "test" (Adam, batch 64, tenacity 5, epoch size 4, 10 folds) and
 * "fasttest" (RMSprop, batch 128, tenacity 3, epoch size 2, 5 folds) modes. */
STSIM_API
void stsim_transfer_config_init (StsimTransferConfig *config, gboolean fasttest);

/* SentEval's StratifiedKFold(n_splits = k, shuffle = True, random_state =
 * seed) test fold of each of the n labels (scikit-learn >= 0.22 algorithm). */
STSIM_API
gboolean stsim_transfer_stratified_folds (const gint32 *y, gsize n, guint k, guint32 seed, gint32 *fold,
                                          GError **error);

/* Results of one validation scheme, as SentEval returns them (x100, rounded
 * to two decimals as SentEval rounds them). */
typedef struct {
  double devacc, acc;
  double f1;            /* MRPC only, else NAN */
  double reg;           /* the L2 penalty chosen (last fold's for inner k-fold) */
  guint  n_fits;
} StsimTransferScore;

/* InnerKFoldClassifier (MR, CR, SUBJ, MPQA): k outer folds; in each, the L2
 * penalty of 1e-5..1e-2 with the best mean accuracy over k inner folds, then
 * a fit on the outer train part (5% held out for early stopping) scored on
 * the outer test fold. */
STSIM_API
gboolean stsim_transfer_inner_kfold (const StsimTransferMatrix *x, const gint32 *y, guint n_classes,
                                     const StsimTransferConfig *config, StsimTransferScore *score,
                                     GError **error);
/* KFoldClassifier (TREC, MRPC): the penalty by k-fold cross-validation on
 * train, then a fit on all of train (5% held out) scored on test.
 * @pred_test (optional, [n test rows]) receives the test predictions. */
STSIM_API
gboolean stsim_transfer_kfold (const StsimTransferMatrix *train, const gint32 *y_train,
                               const StsimTransferMatrix *test, const gint32 *y_test, guint n_classes,
                               const StsimTransferConfig *config, StsimTransferScore *score,
                               gint32 *pred_test, GError **error);
/* SplitClassifier (SST2): the penalty by dev accuracy, test of that model. */
STSIM_API
gboolean stsim_transfer_split (const StsimTransferMatrix *train, const gint32 *y_train,
                               const StsimTransferMatrix *dev, const gint32 *y_dev,
                               const StsimTransferMatrix *test, const gint32 *y_test, guint n_classes,
                               const StsimTransferConfig *config, StsimTransferScore *score, GError **error);

/* ---- data ----------------------------------------------------------------- */

typedef enum {
  STSIM_TRANSFER_INNER_KFOLD,  /* one labelled set */
  STSIM_TRANSFER_KFOLD,        /* train + test */
  STSIM_TRANSFER_SPLIT,        /* train + dev + test */
} StsimTransferScheme;

/* One split in SentEval's order (sorted by token length, then label). */
typedef struct {
  char   *name;   /* "all", "train", "dev", "test" */
  gsize   n;
  char  **s1;     /* [n] tokens joined by one space */
  char  **s2;     /* [n] second sentences (MRPC) or NULL */
  gint32 *y;      /* [n] */
} StsimTransferSplit;

typedef struct {
  char       *name;       /* "MR", ... */
  StsimTransferScheme scheme;
  guint       n_classes;
  gboolean    pairs;      /* MRPC */
  GPtrArray  *splits;     /* of StsimTransferSplit*: "all" or train(, dev), test */
  char      **prepare;    /* every sentence in SentEval's do_prepare order */
  gsize       n_prepare;
} StsimTransferTask;

STSIM_API
void stsim_transfer_task_free (StsimTransferTask *task);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimTransferTask, stsim_transfer_task_free)

/* The seven tasks in table order, NULL-terminated. */
STSIM_API
const char *const *stsim_transfer_task_names (void);
STSIM_API
gboolean           stsim_transfer_is_task (const char *name);
/* Loads @task from @data_dir (laid out like ../shared/data; see stsim_sts_find_root). */
STSIM_API
StsimTransferTask *stsim_transfer_task_load (const char *data_dir, const char *task, GError **error);

/* ---- evaluation ------------------------------------------------------------ */

typedef struct {
  const char    *data_dir;
  const char    *tasks;        /* comma-separated; NULL or "" = all seven */
  StsimEvalMode  mode;         /* TEST: primary = mean test accuracy; DEV: mean dev accuracy */
  gboolean       fasttest;     /* SimCSE's "fasttest" classifier settings */
  gsize          batch_size;   /* sentences per encode call; 0 = 128 */
  guint32        seed;         /* 0 = 1111 */
  gboolean       quiet;        /* no progress lines on stderr */
} StsimTransferOptions;

/* Runs the tasks and fills @report (schema in docs/evaluation.md): "table"
 * (accuracy x100 per task and Avg), "table_printed", "tasks" (devacc, acc,
 * f1 for MRPC, sizes, timing). *primary = mean test (DEV: dev) accuracy / 100. */
STSIM_API
gboolean stsim_transfer_run (const StsimTransferOptions *options, const StsimStsEncoder *encoder,
                             JsonObject *report, double *primary, GError **error);
/* The seven-task table (and per-task dev/test lines) of a transfer report. */
STSIM_API
char    *stsim_transfer_report_format (JsonObject *report);

G_END_DECLS
