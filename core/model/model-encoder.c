/* model-encoder.c: the neural encoder component behind the `bert`,
 * `distilbert` and `roberta` plugins: parameters -> StsimModel, and the
 * encoder operations on it (stsim-model-encoder.h). */
#include <string.h>

#include "stsim/stsim-model-encoder.h"
#include "model-private.h"

typedef struct {
  StsimModel *model;
  StsimPooler pooler;
  int         max_len;
} ModelEncoder;

const StsimParamSpec stsim_model_encoder_params[] = {
  { "model", STSIM_PARAM_PATH, NULL,
    .blurb = "Hugging Face model folder (config.json, model.safetensors, tokenizer files); ${data} expands" },
  { "config", STSIM_PARAM_PATH, NULL,
    .blurb = "config.json of a fresh, randomly initialised model (instead of model; needs vocab)" },
  { "vocab", STSIM_PARAM_PATH, NULL,
    .blurb = "folder with the tokenizer files of a fresh model (vocab.txt, or vocab.json + merges.txt)" },
  { "pooler", STSIM_PARAM_ENUM, "cls_before_pooler", .choices = STSIM_POOLER_CHOICES,
    .blurb = "sentence vector at evaluation (cls = tanh(pooler.dense(h_CLS)), the kept MLP)" },
  { "mlp", STSIM_PARAM_BOOL, "true",
    .blurb = "have pooler.dense: the SimCSE training MLP, saved as the checkpoint's pooler" },
  { "mlp_init", STSIM_PARAM_ENUM, "checkpoint", .choices = "checkpoint|random",
    .blurb = "checkpoint: load pooler.dense when the file has it; random: always N(0, initializer_range) as SimCSE does" },
  { "mlm_head", STSIM_PARAM_BOOL, "false",
    .blurb = "have the masked-LM head (loaded if present, else initialised; decoder tied to the embeddings)" },
  { "max_len", STSIM_PARAM_INT, "0", .min = 0, .max = 1 << 20,
    .blurb = "truncate sentences to this many tokens at evaluation (0: never, as SentEval)" },
  { "batch", STSIM_PARAM_INT, "64", .min = 1, .max = 65536,
    .blurb = "sentences per evaluation batch (batches are length-sorted and packed)", .flags = STSIM_PARAM_EXPERT },
  { "frozen", STSIM_PARAM_BOOL, "false",
    .blurb = "no gradients: an encoder that is only evaluated", .flags = STSIM_PARAM_EXPERT },
  { "seed", STSIM_PARAM_INT, NULL, .min = 0, .max = 9007199254740991.0,
    .blurb = "seed of fresh parameters (default: the run's seed)", .flags = STSIM_PARAM_EXPERT },
  { NULL }
};

static const char *
arch_hint (StsimArch arch)
{
  switch (arch) {
  case STSIM_ARCH_BERT: return "bert";
  case STSIM_ARCH_ROBERTA: return "roberta";
  case STSIM_ARCH_DISTILBERT: return "distilbert";
  }
  return "?";
}

/* The pooler the section names and the checks on its keys that need no file
 * but the model folder. */
static gboolean
encoder_check_params (const StsimParams *params, StsimPooler *pooler, GError **error)
{
  const char *model_dir = stsim_params_get_string (params, "model");
  const char *config = stsim_params_get_string (params, "config");
  const char *vocab = stsim_params_get_string (params, "vocab");
  const char *pooler_name = stsim_params_get_string (params, "pooler");
  gboolean mlp = stsim_params_get_bool (params, "mlp");

  *pooler = STSIM_POOL_CLS_BEFORE_POOLER;
  if (pooler_name && !stsim_pooler_from_name (pooler_name, pooler)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "pooler: unknown value '%s' (%s)", pooler_name,
                 STSIM_POOLER_CHOICES);
    return FALSE;
  }
  if (*pooler == STSIM_POOL_CLS && !mlp) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "pooler = cls needs the pooler dense layer: set mlp = true (or use cls_before_pooler)");
    return FALSE;
  }
  if ((model_dir == NULL) == (config == NULL)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, model_dir
                 ? "give either model or config, not both"
                 : "missing model: the folder of a checkpoint (or config and vocab for a fresh model)");
    return FALSE;
  }
  if (config != NULL && vocab == NULL) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "config needs vocab: the folder with the tokenizer files of the fresh model");
    return FALSE;
  }
  if (model_dir != NULL && vocab != NULL) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "vocab is only for a fresh model (config); a checkpoint folder brings its own tokenizer files");
    return FALSE;
  }
  if (model_dir != NULL && !g_file_test (model_dir, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND,
                 "model folder %s does not exist (expected config.json, model.safetensors and tokenizer files)",
                 model_dir);
    return FALSE;
  }
  return TRUE;
}

gpointer
stsim_model_encoder_create (const StsimParams *params, StsimContext *ctx, StsimArch arch, GError **error)
{
  const char *model_dir = stsim_params_get_string (params, "model");
  const char *config = stsim_params_get_string (params, "config");
  const char *vocab = stsim_params_get_string (params, "vocab");
  gboolean mlp = stsim_params_get_bool (params, "mlp");
  gboolean reset = g_strcmp0 (stsim_params_get_string (params, "mlp_init"), "random") == 0;
  StsimPooler pooler;
  guint64 seed = stsim_params_is_set (params, "seed") ? (guint64) stsim_params_get_int (params, "seed")
                 : ctx ? stsim_context_get_seed (ctx) : 42;

  if (!encoder_check_params (params, &pooler, error))
    return NULL;
  guint flags = (mlp ? STSIM_MODEL_POOLER : 0) | (reset ? STSIM_MODEL_RESET_POOLER : 0)
                | (stsim_params_get_bool (params, "mlm_head") ? STSIM_MODEL_MLM_HEAD : 0)
                | (stsim_params_get_bool (params, "frozen") ? STSIM_MODEL_FROZEN : 0);
  StsimModelConfig cfg;
  g_autofree char *config_path = model_dir ? g_build_filename (model_dir, "config.json", NULL) : g_strdup (config);
  if (!stsim_model_config_load (config_path, &cfg, error))
    return NULL;
  if (cfg.arch != arch) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "%s is a %s model; this encoder runs %s models (use the '%s' encoder)",
                 model_dir ? model_dir : config, stsim_arch_name (cfg.arch), arch_hint (arch),
                 arch_hint (cfg.arch));
    return NULL;
  }

  g_autoptr(StsimModel) model = NULL;
  if (model_dir != NULL) {
    model = stsim_model_load (model_dir, flags, seed, error);
  } else {
    model = stsim_model_new (&cfg, NULL, flags, seed, error);
    if (model != NULL && !stsim_model_set_tokenizer_dir (model, vocab, error))
      return NULL;
  }
  if (model == NULL)
    return NULL;
  /* A max_len the positions cannot hold failed only at the first evaluation. */
  int max_len = (int) stsim_params_get_int (params, "max_len");
  if (max_len > stsim_model_max_tokens (model)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "max_len = %d exceeds the %d positions of the model %s (max_position_embeddings %d): "
                 "set max_len to %d or less", max_len, stsim_model_max_tokens (model),
                 model_dir ? model_dir : config, cfg.max_position_embeddings, stsim_model_max_tokens (model));
    return NULL;
  }
  stsim_model_set_encode_batch (model, (int) stsim_params_get_int (params, "batch"));

  ModelEncoder *e = g_new0 (ModelEncoder, 1);
  e->model = g_steal_pointer (&model);
  e->pooler = pooler;
  e->max_len = max_len;
  return e;
}

void
stsim_model_encoder_destroy (gpointer state)
{
  ModelEncoder *e = state;
  if (e == NULL)
    return;
  stsim_model_free (e->model);
  g_free (e);
}

static gsize
encoder_dim (gpointer state)
{
  return stsim_model_get_dim (((ModelEncoder *) state)->model);
}

static gboolean
encoder_encode (gpointer state, const char *const *sentences, gsize n, float *out, GError **error)
{
  ModelEncoder *e = state;
  return stsim_model_encode (e->model, sentences, n, e->pooler, e->max_len, out, error);
}

static StsimModel *
encoder_model (gpointer state)
{
  return ((ModelEncoder *) state)->model;
}

static int
encoder_eval_pooler (gpointer state)
{
  return (int) ((ModelEncoder *) state)->pooler;
}

const StsimEncoderVTable stsim_model_encoder_vtable = {
  .dim = encoder_dim,
  .encode = encoder_encode,
  .model = encoder_model,
  .eval_pooler = encoder_eval_pooler,
};
