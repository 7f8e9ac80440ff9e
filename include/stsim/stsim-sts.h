/* stsim-sts.h: the STS evaluation protocol (SimCSE's modified SentEval).
 *
 * Readers for STS12-16, STS Benchmark and SICK-R in SentEval's layout,
 * double-precision correlation metrics, and the evaluation loop that turns an
 * encoder (any prepare/encode pair of callbacks) into the paper's table and a
 * JSON report. The `sts` evaluator plugin and `stsim-eval` are thin layers over
 * this; docs/evaluation.md documents the protocol and the report schema.
 *
 *   g_autoptr(StsimStsTask) task = stsim_sts_task_load (data_dir, "STS12", &err);
 *   StsimStsEncoder enc = { .dim = my_dim, .encode = my_encode, .user_data = me };
 *   g_autoptr(StsimStsTaskResult) res = NULL;
 *   stsim_sts_task_evaluate (task, &enc, NULL, 128, &res, &err);
 *   g_print ("STS12 all spearman %.4f\n", res->all_spearman);
 */
#pragma once
#include <glib.h>
#include <json-glib/json-glib.h>
#include "stsim-export.h"
#include "stsim-error.h"
#include "stsim-plugin.h"

G_BEGIN_DECLS

/* ---- text rules -------------------------------------------------------- */

/* Splits @text as Python's str.split() does (runs of Unicode whitespace,
 * no empty tokens). Bytes that are not valid UTF-8 count as non-space
 * characters (the readers reject such files before). Free with g_strfreev. */
STSIM_API
char **stsim_sts_split_whitespace (const char *text);
/* The whitespace-split tokens re-joined with single spaces. */
STSIM_API
char  *stsim_sts_normalize (const char *text);

/* ---- data ---------------------------------------------------------------- */

/* One STS12-16 subset or one STS-B / SICK-R split, pairs in file order;
 * pairs without a gold score are already dropped. */
typedef struct {
  char    *name;   /* "MSRpar", "test", ... */
  char    *path;   /* the file the sentences came from */
  gsize    n;      /* kept pairs */
  char   **s1;     /* [n] normalised sentences (tokens joined by one space) */
  char   **s2;     /* [n] */
  double  *gold;   /* [n] */
  guint   *lines;  /* [n] 1-based line of each pair in @path */
} StsimStsSplit;

STSIM_API
void stsim_sts_split_free (StsimStsSplit *split);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimStsSplit, stsim_sts_split_free)

typedef struct {
  char      *name;    /* "STS12", ..., "STSBenchmark", "SICKRelatedness" */
  char      *dir;     /* the folder its files were read from */
  GPtrArray *splits;  /* of StsimStsSplit*, in SentEval's order */
} StsimStsTask;

STSIM_API
void stsim_sts_task_free (StsimStsTask *task);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimStsTask, stsim_sts_task_free)

/* The seven tasks in table order, NULL-terminated. */
STSIM_API
const char *const *stsim_sts_task_names (void);
/* The column title the paper prints ("STS-B", "SICK-R", "STS12"). */
STSIM_API
const char        *stsim_sts_task_short_name (const char *task);
/* TRUE for STSBenchmark and SICKRelatedness (train/dev/test splits: test is
 * reported, dev selects); FALSE for STS12-16 (subsets: "all" is reported). */
STSIM_API
gboolean           stsim_sts_task_has_splits (const char *task);

/* The folder holding STS/ and SICK/ (SentEval's data/downstream) under
 * @data_dir, which is laid out like ../shared/data (senteval/downstream/...);
 * @data_dir may also name senteval/ or downstream/ itself. */
STSIM_API
char *stsim_sts_find_root (const char *data_dir, GError **error);

/* STS.input.<s>.txt (sent1 TAB sent2) + STS.gs.<s>.txt (score or empty). */
STSIM_API
StsimStsSplit *stsim_sts_read_semeval   (const char *input_path, const char *gold_path,
                                         const char *name, GError **error);
/* sts-*.csv: TAB-separated, score column 5, sentences columns 6 and 7 (1-based). */
STSIM_API
StsimStsSplit *stsim_sts_read_benchmark (const char *path, const char *name, GError **error);
/* SICK_*.txt: header line, then pair_ID, sentence_A, sentence_B, score, label. */
STSIM_API
StsimStsSplit *stsim_sts_read_sick      (const char *path, const char *name, GError **error);

/* Loads every subset/split of @task from @data_dir (see stsim_sts_find_root). */
STSIM_API
StsimStsTask *stsim_sts_task_load (const char *data_dir, const char *task, GError **error);

/* ---- metrics (double precision, scipy semantics) ------------------------- */

/* u.v / (sqrt(u.u) * sqrt(v.v)) accumulated in double; NaN inputs count as 0
 * and +-Inf as +-FLT_MAX (np.nan_to_num), a NaN result is 0. */
STSIM_API
double stsim_cosine   (const float *u, const float *v, gsize d);
/* NaN when n < 2 or either side is constant. */
STSIM_API
double stsim_pearson  (const double *x, const double *y, gsize n);
/* 1-based ranks, ties get the average of their ranks (scipy rankdata "average"). */
STSIM_API
void   stsim_rank_average (const double *x, gsize n, double *ranks);
STSIM_API
double stsim_spearman (const double *x, const double *y, gsize n);

/* ---- evaluation ---------------------------------------------------------- */

/* An encoder as the evaluator sees it. dim() is asked after prepare(), which
 * may change it (bag-of-words encoders size their vectors to the task). */
typedef struct {
  gsize    (*dim)     (gpointer user_data);
  /* Optional (NULL): every sentence of a task before it is encoded. */
  gboolean (*prepare) (gpointer user_data, const char *const *sentences, gsize n, GError **error);
  gboolean (*encode)  (gpointer user_data, const char *const *sentences, gsize n, float *out, GError **error);
  gpointer   user_data;
} StsimStsEncoder;

/* The callbacks of an encoder component (stsim_encoder_dim/prepare/encode);
 * @encoder is borrowed. For evaluators and tools that score a component. */
struct _StsimComponent;
STSIM_API
StsimStsEncoder stsim_sts_encoder_for_component (struct _StsimComponent *encoder);

typedef struct {
  char   *name;
  gsize   n;
  double  pearson;
  double  spearman;
} StsimStsSplitResult;

typedef struct {
  char      *name;
  GPtrArray *splits;        /* of StsimStsSplitResult*, the evaluated ones */
  double    *scores_flat;   /* system scores of the evaluated splits, concatenated, file order */
  gsize      n_scores;
  /* Over the evaluated splits: one correlation of the concatenation ("all"),
   * the plain and the n-weighted mean of the per-split values. */
  double     all_pearson, all_spearman;
  double     mean_pearson, mean_spearman;
  double     wmean_pearson, wmean_spearman;
  gsize      n_all;
  gsize      n_sentences;     /* sentences encoded */
  gsize      n_prepared;      /* sentences given to prepare() */
  double     encode_seconds;  /* inside encode() */
  double     seconds;         /* prepare + encode + scoring */
} StsimStsTaskResult;

STSIM_API
void stsim_sts_task_result_free (StsimStsTaskResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimStsTaskResult, stsim_sts_task_result_free)

/* Scores the splits named in @splits (NULL: all) of @task: prepare() with the
 * s1 and s2 of every pair of every split, then pairs sorted by token lengths
 * in batches of @batch_size, each side encoded separately, cosine per pair. */
STSIM_API
gboolean stsim_sts_task_evaluate (const StsimStsTask *task, const StsimStsEncoder *encoder,
                                  const char *const *splits, gsize batch_size,
                                  StsimStsTaskResult **result, GError **error);

typedef struct {
  const char    *data_dir;       /* laid out like ../shared/data */
  const char    *tasks;          /* comma-separated task names; NULL or "" = all seven */
  StsimEvalMode  mode;
  const char    *dev_tasks;      /* DEV mode: of STSBenchmark, SICKRelatedness; NULL = STSBenchmark */
  gsize          batch_size;     /* 0 = 128 */
  gboolean       skip_train;     /* TEST mode: do not encode STS-B/SICK-R train */
} StsimStsOptions;

/* Runs the protocol and fills @report (schema in docs/evaluation.md). TEST:
 * *primary = mean of the headline Spearman values run; DEV: STS-B dev
 * Spearman (SICK-R dev when STS-B is not among dev_tasks). */
STSIM_API
gboolean stsim_sts_run (const StsimStsOptions *options, const StsimStsEncoder *encoder,
                        JsonObject *report, double *primary, GError **error);

/* The paper's table (x100, two decimals, Avg from the rounded values) and the
 * per-task throughput, from a TEST report; for a DEV report, its dev numbers. */
STSIM_API
char *stsim_sts_report_format (JsonObject *report);
/* Writes @report as pretty JSON, atomically (temporary file, then rename). */
STSIM_API
gboolean stsim_sts_report_write (JsonObject *report, const char *path, GError **error);

G_END_DECLS
