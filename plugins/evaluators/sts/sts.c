/* sts.c: the `sts` evaluator: SimCSE's SentEval STS protocol (STS12-16 "all"
 * Spearman, STS-B and SICK-R test Spearman, cosine, no regressor) over any
 * encoder component. The protocol itself lives in libstsim (stsim-sts.h);
 * this plugin maps recipe parameters onto it. */
#include <string.h>

#include <stsim/stsim.h>

#define ALL_TASKS "STS12,STS13,STS14,STS15,STS16,STSBenchmark,SICKRelatedness"
/* The same as choices: the recipe check then refuses an unknown task. */
#define TASK_CHOICES "STS12|STS13|STS14|STS15|STS16|STSBenchmark|SICKRelatedness"

static const StsimParamSpec sts_params[] = {
  { "tasks", STSIM_PARAM_STRING, ALL_TASKS, .choices = TASK_CHOICES,
    .blurb = "comma-separated tasks of the TEST table (" ALL_TASKS ")" },
  { "dev_tasks", STSIM_PARAM_STRING, "STSBenchmark", .choices = "STSBenchmark|SICKRelatedness",
    .blurb = "DEV mode: STSBenchmark and/or SICKRelatedness (dev = SICK trial); primary = STS-B dev Spearman" },
  { "data", STSIM_PARAM_PATH, "${data}",
    .blurb = "folder laid out like ../shared/data (senteval/downstream/STS, .../SICK)" },
  { "batch_size", STSIM_PARAM_INT, "128", .min = 1, .max = 65536,
    .blurb = "pairs per encode call (SentEval: 128); sentences are sorted by length first" },
  { "skip_train", STSIM_PARAM_BOOL, "false",
    .blurb = "TEST mode: do not encode the STS-B and SICK-R train splits (SentEval does; not reported)" },
  { NULL }
};

typedef struct {
  char   *tasks;
  char   *dev_tasks;
  char   *data;
  gsize   batch_size;
  gboolean skip_train;
} Sts;

static gboolean
check_tasks (const char *value, const char *key, const char *const *allowed, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (value, ",", -1);
  guint n = 0;
  for (gsize i = 0; parts[i]; i++) {
    const char *name = g_strstrip (parts[i]);
    if (*name == '\0')
      continue;
    n++;
    if (!g_strv_contains (allowed, name)) {
      g_autofree char *known = g_strjoinv (",", (char **) allowed);
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "sts: %s: unknown task '%s' (choose from %s)", key,
                   name, known);
      return FALSE;
    }
  }
  if (n == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "sts: %s: no task given", key);
    return FALSE;
  }
  return TRUE;
}

static gpointer
sts_create (const StsimParams *params, StsimContext *ctx, GError **error)
{
  static const char *const dev_allowed[] = { "STSBenchmark", "SICKRelatedness", NULL };
  const char *tasks = stsim_params_get_string (params, "tasks");
  const char *dev_tasks = stsim_params_get_string (params, "dev_tasks");
  if (!check_tasks (tasks, "tasks", stsim_sts_task_names (), error) ||
      !check_tasks (dev_tasks, "dev_tasks", dev_allowed, error))
    return NULL;
  Sts *s = g_new0 (Sts, 1);
  s->tasks = g_strdup (tasks);
  s->dev_tasks = g_strdup (dev_tasks);
  const char *data = stsim_params_get_string (params, "data");
  s->data = g_strdup (data ? data : stsim_context_get_data_dir (ctx));
  s->batch_size = (gsize) stsim_params_get_int (params, "batch_size");
  s->skip_train = stsim_params_get_bool (params, "skip_train");
  return s;
}

static void
sts_destroy (gpointer state)
{
  Sts *s = state;
  g_free (s->tasks);
  g_free (s->dev_tasks);
  g_free (s->data);
  g_free (s);
}

static gboolean
sts_evaluate (gpointer state, StsimComponent *encoder, StsimEvalMode mode, JsonObject *report, double *primary,
              GError **error)
{
  Sts *s = state;
  StsimStsEncoder enc = stsim_sts_encoder_for_component (encoder);
  StsimStsOptions opts = {
    .data_dir = s->data, .tasks = s->tasks, .mode = mode, .dev_tasks = s->dev_tasks,
    .batch_size = s->batch_size, .skip_train = s->skip_train,
  };
  const StsimComponentDesc *desc = stsim_component_get_desc (encoder);
  json_object_set_string_member (report, "encoder", desc->name);
  json_object_set_string_member (report, "encoder_label", stsim_component_get_label (encoder));
  return stsim_sts_run (&opts, &enc, report, primary, error);
}

static const StsimEvaluatorVTable sts_vtable = { .evaluate = sts_evaluate };

static const StsimComponentDesc sts_desc = {
  .kind = STSIM_KIND_EVALUATOR, .name = "sts",
  .summary = "STS12-16, STS-B, SICK-R Spearman of cosine similarities (SimCSE's SentEval protocol)",
  .params = sts_params, .create = sts_create, .destroy = sts_destroy, STSIM_VTABLE (sts_vtable),
};

STSIM_PLUGIN_DEFINE ("sts", "0.1.0", "MIT", "SentEval STS evaluation (STS12-16, STS-B, SICK-R)",
                     "@inproceedings{gao2021simcse, title={{SimCSE}: Simple Contrastive Learning of Sentence "
                     "Embeddings}, author={Gao, Tianyu and Yao, Xingcheng and Chen, Danqi}, booktitle={EMNLP}, "
                     "year={2021}}",
                     &sts_desc)
