/* runlog.h: the files a training run leaves in its folder ([run] output),
 * each written by this module alone: resolved.ini (once, at the start),
 * metrics.jsonl (one JSON line per logging interval and per evaluation),
 * curves.svg (redrawn from metrics.jsonl) and results.json (once, at the
 * end). Only rank 0 of a data-parallel run has a run log. */
#pragma once
#include <glib.h>
#include <json-glib/json-glib.h>
#include "stsim/stsim-recipe.h"

G_BEGIN_DECLS

typedef struct _StsimRunLog StsimRunLog;

/* Creates the run folder @out_dir. @title heads the curves. */
StsimRunLog *stsim_run_log_new   (const char *out_dir, const char *title, GError **error);
void         stsim_run_log_free  (StsimRunLog *log);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimRunLog, stsim_run_log_free)

const char  *stsim_run_log_get_dir (StsimRunLog *log);
/* resolved.ini: the recipe with every value resolved (atomically). */
gboolean     stsim_run_log_write_resolved (StsimRunLog *log, const StsimRecipe *recipe, GError **error);
/* Starts metrics.jsonl: a fresh run forgets an older log; a resumed one at
 * @step drops the lines after it (written after the saved state, they
 * would repeat), so the log reads like one uninterrupted run. */
gboolean     stsim_run_log_start (StsimRunLog *log, gboolean resumed, guint64 step, GError **error);

/* One logging interval, as a "train" line. */
typedef struct {
  guint64     step, epoch;
  double      loss;          /* mean over the good steps; NaN: none */
  GHashTable *terms;         /* name -> double[2] {sum, count}: each term's mean */
  double      lr;
  double      grad_norm;     /* NaN: no good step */
  guint       skipped;
  double      sentences_per_second, elapsed;
} StsimRunLogTrain;
gboolean     stsim_run_log_train (StsimRunLog *log, const StsimRunLogTrain *line, GError **error);

/* One DEV evaluation, as an "eval" line. */
typedef struct {
  guint64     step;
  double      dev;           /* NaN: no score */
  double      best;
  guint64     best_step;
  gboolean    saved;
  double      seconds, elapsed;
} StsimRunLogEval;
gboolean     stsim_run_log_eval  (StsimRunLog *log, const StsimRunLogEval *line, GError **error);

/* Redraws curves.svg from metrics.jsonl (best effort: a failure is a warning). */
void         stsim_run_log_curves (StsimRunLog *log);
/* results.json: @report (the evaluator's TEST report with "training"), atomically. */
gboolean     stsim_run_log_results (StsimRunLog *log, JsonObject *report, char **text_out, GError **error);
/* The path of results.json (for messages). */
char        *stsim_run_log_results_path (StsimRunLog *log);

G_END_DECLS
