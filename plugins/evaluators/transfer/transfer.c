/* transfer.c: the `transfer` evaluator: SentEval's transfer tasks (MR, CR,
 * SUBJ, MPQA, SST2, TREC, MRPC) with SentEval's logistic-regression
 * classifier, in SimCSE's "test" or "fasttest" settings, over any encoder
 * component. The protocol lives in libstsim (stsim-transfer.h); this plugin
 * maps recipe parameters onto it. */
#include <string.h>

#include <stsim/stsim.h>

#define ALL_TASKS "MR,CR,SUBJ,MPQA,SST2,TREC,MRPC"

static const StsimParamSpec transfer_params[] = {
  { "tasks", STSIM_PARAM_STRING, ALL_TASKS, .blurb = "comma-separated transfer tasks (" ALL_TASKS ")" },
  { "mode", STSIM_PARAM_ENUM, "test", .choices = "test|fasttest",
    .blurb = "classifier settings: test (Adam, batch 64, tenacity 5, epoch size 4, 10 folds; SimCSE's reported "
             "numbers) or fasttest (RMSprop, batch 128, tenacity 3, epoch size 2, 5 folds)" },
  { "data", STSIM_PARAM_PATH, "${data}",
    .blurb = "folder laid out like ../shared/data (senteval/downstream/MR, ...)" },
  { "batch_size", STSIM_PARAM_INT, "128", .min = 1, .max = 65536,
    .blurb = "sentences per encode call (SentEval: 128), in SentEval's sorted order" },
  { "seed", STSIM_PARAM_INT, "1111", .min = 1, .max = 4294967295.0,
    .blurb = "SentEval's seed: folds of TREC/MRPC, shuffles, initial weights" },
  { NULL }
};

typedef struct {
  char    *tasks;
  char    *data;
  gboolean fasttest;
  gsize    batch_size;
  guint32  seed;
} Transfer;

static gpointer
transfer_create (const StsimParams *params, StsimContext *ctx, GError **error)
{
  const char *tasks = stsim_params_get_string (params, "tasks");
  g_auto (GStrv) parts = g_strsplit (tasks, ",", -1);
  guint n = 0;
  for (gsize i = 0; parts[i]; i++) {
    const char *name = g_strstrip (parts[i]);
    if (*name == '\0')
      continue;
    n++;
    if (!stsim_transfer_is_task (name)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "transfer: tasks: unknown task '%s' (choose from "
                   ALL_TASKS ")", name);
      return NULL;
    }
  }
  if (n == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "transfer: tasks: no task given");
    return NULL;
  }
  Transfer *t = g_new0 (Transfer, 1);
  t->tasks = g_strdup (tasks);
  const char *data = stsim_params_get_string (params, "data");
  t->data = g_strdup (data ? data : stsim_context_get_data_dir (ctx));
  t->fasttest = strcmp (stsim_params_get_string (params, "mode"), "fasttest") == 0;
  t->batch_size = (gsize) stsim_params_get_int (params, "batch_size");
  t->seed = (guint32) stsim_params_get_int (params, "seed");
  return t;
}

static void
transfer_destroy (gpointer state)
{
  Transfer *t = state;
  g_free (t->tasks);
  g_free (t->data);
  g_free (t);
}

static gboolean
transfer_evaluate (gpointer state, StsimComponent *encoder, StsimEvalMode mode, JsonObject *report,
                   double *primary, GError **error)
{
  Transfer *t = state;
  StsimStsEncoder enc = stsim_sts_encoder_for_component (encoder);
  StsimTransferOptions opts = {
    .data_dir = t->data, .tasks = t->tasks, .mode = mode, .fasttest = t->fasttest,
    .batch_size = t->batch_size, .seed = t->seed,
  };
  const StsimComponentDesc *desc = stsim_component_get_desc (encoder);
  json_object_set_string_member (report, "encoder", desc->name);
  json_object_set_string_member (report, "encoder_label", stsim_component_get_label (encoder));
  return stsim_transfer_run (&opts, &enc, report, primary, error);
}

static const StsimEvaluatorVTable transfer_vtable = { .evaluate = transfer_evaluate };

static const StsimComponentDesc transfer_desc = {
  .kind = STSIM_KIND_EVALUATOR, .name = "transfer",
  .summary = "SentEval transfer tasks MR, CR, SUBJ, MPQA, SST2, TREC, MRPC: logistic-regression accuracy",
  .params = transfer_params, .create = transfer_create, .destroy = transfer_destroy,
  STSIM_VTABLE (transfer_vtable),
};

STSIM_PLUGIN_DEFINE ("transfer", "0.1.0", "MIT", "SentEval transfer-task evaluation (MR, CR, SUBJ, MPQA, SST2, "
                     "TREC, MRPC)",
                     "@inproceedings{conneau2018senteval, title={{SentEval}: An Evaluation Toolkit for Universal "
                     "Sentence Representations}, author={Conneau, Alexis and Kiela, Douwe}, booktitle={LREC}, "
                     "year={2018}}",
                     &transfer_desc)
