/* train-config.c: the [train] section: its spec table and its parse into
 * StsimTrainConfig (train-config.h), done once per run. */
#include "train/train-config.h"
#include "stsim/stsim-error.h"

#include <string.h>

static const StsimParamSpec train_specs[] = {
  { "corpus", STSIM_PARAM_PATH, "${data}/corpus/*.txt",
    .blurb = "sentences, one per line: a file, a folder of .txt files, a pattern (dir/*.txt), or a comma-separated list" },
  { "pairs", STSIM_PARAM_PATH, NULL,
    .blurb = "supervised SimCSE: a CSV with header columns sent0,sent1,hard_neg (used instead of corpus)" },
  { "steps", STSIM_PARAM_INT, "0", .min = 0, .max = 1e12,
    .blurb = "optimizer steps; 0 = epochs x ceil(examples / batch_size)" },
  { "epochs", STSIM_PARAM_INT, "1", .min = 1, .max = 100000, .blurb = "passes over the corpus when steps = 0" },
  { "batch_size", STSIM_PARAM_INT, "64", .min = 2, .max = 1048576,
    .blurb = "sentences per step B (each gives 2 rows: two dropout views)" },
  { "lr", STSIM_PARAM_DOUBLE, "3e-5", .min = 0, .max = 10, .blurb = "peak learning rate of AdamW" },
  { "warmup", STSIM_PARAM_INT, "0", .min = 0, .max = 1e12,
    .blurb = "linear warmup steps before the linear decay to 0 (SimCSE: 0)" },
  { "weight_decay", STSIM_PARAM_DOUBLE, "0", .min = 0, .max = 10,
    .blurb = "AdamW decoupled weight decay (not on biases and LayerNorm weights)" },
  { "adam_beta1", STSIM_PARAM_DOUBLE, "0.9", .min = 0, .max = 0.999999, .flags = STSIM_PARAM_EXPERT,
    .blurb = "AdamW beta1" },
  { "adam_beta2", STSIM_PARAM_DOUBLE, "0.999", .min = 0, .max = 0.999999999, .flags = STSIM_PARAM_EXPERT,
    .blurb = "AdamW beta2" },
  { "adam_eps", STSIM_PARAM_DOUBLE, "1e-8", .min = 0, .max = 1, .flags = STSIM_PARAM_EXPERT,
    .blurb = "AdamW epsilon (added to the uncorrected sqrt(v), as HF transformers.AdamW)" },
  { "max_grad_norm", STSIM_PARAM_DOUBLE, "1.0", .min = 0, .max = 1e9,
    .blurb = "clip the global gradient L2 norm to this (0 = no clipping)" },
  { "allreduce_bucket_mb", STSIM_PARAM_DOUBLE, "25", .min = 0, .max = 1e6, .flags = STSIM_PARAM_EXPERT,
    .blurb = "data-parallel runs: MB of gradients per all-reduce bucket, sent while the backward goes on; "
             "0 = sum each store after the backward (same results either way)" },
  { "max_len", STSIM_PARAM_INT, "32", .min = 3, .max = 100000, .blurb = "tokens per sentence, specials included" },
  { "pooler", STSIM_PARAM_ENUM, NULL, .choices = "cls|avg|avg_first_last|avg_top2", .flags = STSIM_PARAM_DEPRECATED,
    .blurb = "training pools as the encoder's pooler says: remove this key (a value here must agree with it)" },
  { "head", STSIM_PARAM_ENUM, "mlp", .choices = "mlp|bn|none",
    .blurb = "projection z = head(h): mlp = SimCSE's dense+tanh (the model's pooler), bn = DiffCSE's BN projector" },
  { "eval_every", STSIM_PARAM_INT, "125", .min = 0, .max = 1e12,
    .blurb = "evaluate DEV every N steps (not at step 0) and keep the best; 0 = only at the end" },
  { "save_every", STSIM_PARAM_INT, "250", .min = 0, .max = 1e12,
    .blurb = "write the resume state every N steps (0 = only at the end)" },
  { "keep_state", STSIM_PARAM_ENUM, "last", .choices = "last|none",
    .blurb = "resume state left in state/ when the run ends: last = the final one; none = nothing (deleted)" },
  { "save_best", STSIM_PARAM_BOOL, "true",
    .blurb = "write the best DEV checkpoint to best/ and test it; false = write no checkpoint, test the final model" },
  { "log_every", STSIM_PARAM_INT, "10", .min = 1, .max = 1e12,
    .blurb = "steps per metrics.jsonl line and progress update" },
  { "max_bad_steps", STSIM_PARAM_INT, "10", .min = 1, .max = 1e9,
    .blurb = "stop after this many non-finite (NaN/Inf) steps in a row" },
  { "encoder", STSIM_PARAM_STRING, NULL,
    .blurb = "label of the encoder section to train (default: the only encoder)" },
  { "evaluator", STSIM_PARAM_STRING, NULL,
    .blurb = "label of the evaluator section for DEV selection and the TEST table (default: the only evaluator)" },
  { "test", STSIM_PARAM_BOOL, "true", .blurb = "evaluate the selected model on TEST at the end" },
  { "packed", STSIM_PARAM_BOOL, "true", .flags = STSIM_PARAM_EXPERT,
    .blurb = "run the encoder on real tokens only (no compute on padding); same result as padded" },
  { "debug_nan_steps", STSIM_PARAM_STRING, NULL, .flags = STSIM_PARAM_EXPERT,
    .blurb = "testing only: comma-separated step numbers whose loss is replaced by NaN" },
  { NULL }
};

const StsimParamSpec *
stsim_train_config_get_specs (void)
{
  return train_specs;
}

static char **
split_list (const char *s)
{
  g_auto (GStrv) parts = g_strsplit (s ? s : "", ",", -1);
  GPtrArray *out = g_ptr_array_new ();
  for (gsize i = 0; parts[i]; i++) {
    char *t = g_strstrip (parts[i]);
    if (*t)
      g_ptr_array_add (out, g_strdup (t));
  }
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (out, FALSE);
}

static gboolean
parse_nan_steps (StsimTrainConfig *cfg, const char *text, GError **error)
{
  g_auto (GStrv) parts = split_list (text);
  cfg->n_debug_nan_steps = g_strv_length (parts);
  cfg->debug_nan_steps = g_new0 (guint64, MAX (cfg->n_debug_nan_steps, 1));
  for (gsize i = 0; parts[i]; i++)
    if (!g_ascii_string_to_unsigned (parts[i], 10, 0, G_MAXINT64, &cfg->debug_nan_steps[i], NULL)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "[train] debug_nan_steps: '%s' is not a step number",
                   parts[i]);
      return FALSE;
    }
  return TRUE;
}

static StsimHeadKind
head_kind (const char *name)
{
  if (strcmp (name, "mlp") == 0)
    return STSIM_HEAD_MLP;
  return strcmp (name, "bn") == 0 ? STSIM_HEAD_BN : STSIM_HEAD_NONE;
}

gboolean
stsim_train_config_parse (const StsimParams *p, StsimTrainConfig *cfg, GError **error)
{
  g_return_val_if_fail (p != NULL && cfg != NULL, FALSE);
  memset (cfg, 0, sizeof *cfg);
  cfg->corpus = split_list (stsim_params_get_string (p, "corpus"));
  cfg->pairs = g_strdup (stsim_params_get_string (p, "pairs"));
  cfg->steps = stsim_params_get_int (p, "steps");
  cfg->epochs = stsim_params_get_int (p, "epochs");
  cfg->batch_size = stsim_params_get_int (p, "batch_size");
  cfg->max_len = stsim_params_get_int (p, "max_len");
  cfg->lr = stsim_params_get_double (p, "lr");
  cfg->weight_decay = stsim_params_get_double (p, "weight_decay");
  cfg->adam_beta1 = stsim_params_get_double (p, "adam_beta1");
  cfg->adam_beta2 = stsim_params_get_double (p, "adam_beta2");
  cfg->adam_eps = stsim_params_get_double (p, "adam_eps");
  cfg->warmup = stsim_params_get_int (p, "warmup");
  cfg->max_grad_norm = stsim_params_get_double (p, "max_grad_norm");
  cfg->allreduce_bucket_mb = stsim_params_get_double (p, "allreduce_bucket_mb");
  cfg->packed = stsim_params_get_bool (p, "packed");
  cfg->max_bad_steps = stsim_params_get_int (p, "max_bad_steps");
  cfg->head_name = g_intern_string (stsim_params_get_string (p, "head"));
  cfg->head = head_kind (cfg->head_name);
  cfg->pooler = g_strdup (stsim_params_get_string (p, "pooler"));
  cfg->encoder = g_strdup (stsim_params_get_string (p, "encoder"));
  cfg->evaluator = g_strdup (stsim_params_get_string (p, "evaluator"));
  cfg->eval_every = stsim_params_get_int (p, "eval_every");
  cfg->save_every = stsim_params_get_int (p, "save_every");
  cfg->log_every = stsim_params_get_int (p, "log_every");
  cfg->keep_state = strcmp (stsim_params_get_string (p, "keep_state"), "last") == 0;
  cfg->save_best = stsim_params_get_bool (p, "save_best");
  cfg->test = stsim_params_get_bool (p, "test");
  const char *nan = stsim_params_get_string (p, "debug_nan_steps");
  if (nan && !parse_nan_steps (cfg, nan, error)) {
    stsim_train_config_clear (cfg);
    return FALSE;
  }
  return TRUE;
}

void
stsim_train_config_clear (StsimTrainConfig *cfg)
{
  if (!cfg)
    return;
  g_strfreev (cfg->corpus);
  g_free (cfg->pairs);
  g_free (cfg->debug_nan_steps);
  g_free (cfg->pooler);
  g_free (cfg->encoder);
  g_free (cfg->evaluator);
  memset (cfg, 0, sizeof *cfg);
}

gboolean
stsim_train_config_is_nan_step (const StsimTrainConfig *cfg, guint64 step)
{
  for (gsize i = 0; i < cfg->n_debug_nan_steps; i++)
    if (cfg->debug_nan_steps[i] == step)
      return TRUE;
  return FALSE;
}
