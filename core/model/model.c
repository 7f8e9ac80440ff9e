/* model.c: building a StsimModel (parameter layout, fresh init, copies) and
 * its accessors. Checkpoint reading and writing is in model-io.c.
 *
 * Parameter names in the store are the HF names without the
 * bert./roberta./distilbert. prefix ("encoder.layer.0.attention.self.query.weight");
 * the MLM head keeps HF's unprefixed names ("cls.predictions.bias",
 * "lm_head.dense.weight", "vocab_transform.weight"). model-io.c maps them to
 * and from checkpoint names. Query, key and value of a layer are declared one
 * after another (weights, then biases) so that stsim_param_store_fuse gives
 * one [3H, H] weight and one [3H] bias: a single QKV GEMM per layer. */
#include <string.h>

#include "model-private.h"
#include "stsim/stsim-rng.h"

static void
model_param_free (gpointer p)
{
  ModelParam *mp = p;
  g_free (mp->name);
  g_free (mp);
}

static StsimTensor *
declare (StsimModel *m, ModelPart part, ModelInit init, gboolean is_ln, gint64 d0, gint64 d1,
         const char *fmt, ...) G_GNUC_PRINTF (7, 8);

static StsimTensor *
declare (StsimModel *m, ModelPart part, ModelInit init, gboolean is_ln, gint64 d0, gint64 d1,
         const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *name = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  gint64 shape[2] = { d0, d1 };
  /* HF's no-decay group: biases and LayerNorm weights. */
  guint32 flags = init == MODEL_INIT_NORMAL ? 0 : STSIM_VIEW_NO_DECAY;
  StsimTensor *t = stsim_param_store_add (m->store, name, d1 > 0 ? 2 : 1, shape, flags);
  ModelParam *mp = g_new0 (ModelParam, 1);
  mp->name = name;
  mp->part = part;
  mp->init = init;
  mp->is_ln = is_ln;
  mp->tensor = t;
  g_ptr_array_add (m->params, mp);
  return t;
}

/* A LayerNorm's gamma and beta. */
static void
declare_ln (StsimModel *m, ModelPart part, gint64 H, const char *prefix, StsimTensor **g, StsimTensor **b)
{
  *g = declare (m, part, MODEL_INIT_ONE, TRUE, H, 0, "%s.weight", prefix);
  *b = declare (m, part, MODEL_INIT_ZERO, TRUE, H, 0, "%s.bias", prefix);
}

static void
declare_linear (StsimModel *m, ModelPart part, gint64 out, gint64 in, const char *prefix,
                StsimTensor **w, StsimTensor **b)
{
  *w = declare (m, part, MODEL_INIT_NORMAL, FALSE, out, in, "%s.weight", prefix);
  *b = declare (m, part, MODEL_INIT_ZERO, FALSE, out, 0, "%s.bias", prefix);
}

static gboolean
fuse3 (StsimModel *m, const char *fmt, int layer, const char *const parts[3], const char *suffix,
       StsimTensor **out, GError **error)
{
  char *names[3];
  for (int i = 0; i < 3; i++)
    names[i] = g_strdup_printf (fmt, layer, parts[i], suffix);
  *out = stsim_param_store_fuse (m->store, (const char *const *) names, 3, error);
  for (int i = 0; i < 3; i++)
    g_free (names[i]);
  return *out != NULL;
}

/* Declares every parameter the config and flags call for, allocates the
 * store and fuses Q|K|V. Values are zero afterwards. */
static gboolean
model_build (StsimModel *m, GError **error)
{
  const StsimModelConfig *c = &m->config;
  const gint64 H = c->hidden_size, I = c->intermediate_size, V = c->vocab_size;
  gboolean distil = c->arch == STSIM_ARCH_DISTILBERT;

  m->store = stsim_param_store_new (stsim_arch_name (c->arch), !(m->flags & STSIM_MODEL_FROZEN));
  m->params = g_ptr_array_new_with_free_func (model_param_free);
  m->layers = g_new0 (ModelLayer, c->num_layers);

  m->word = declare (m, MODEL_PART_ENCODER, MODEL_INIT_NORMAL, FALSE, V, H, "embeddings.word_embeddings.weight");
  m->pos = declare (m, MODEL_PART_ENCODER, MODEL_INIT_NORMAL, FALSE, c->max_position_embeddings, H,
                    "embeddings.position_embeddings.weight");
  if (!distil)
    m->type = declare (m, MODEL_PART_ENCODER, MODEL_INIT_NORMAL, FALSE, c->type_vocab_size, H,
                       "embeddings.token_type_embeddings.weight");
  declare_ln (m, MODEL_PART_ENCODER, H, "embeddings.LayerNorm", &m->emb_ln_g, &m->emb_ln_b);

  static const char *const bert_qkv[3] = { "self.query", "self.key", "self.value" };
  static const char *const distil_qkv[3] = { "q_lin", "k_lin", "v_lin" };
  const char *const *qkv = distil ? distil_qkv : bert_qkv;
  const char *lfmt = distil ? "transformer.layer.%d.attention.%s.%s" : "encoder.layer.%d.attention.%s.%s";
  for (int l = 0; l < c->num_layers; l++) {
    ModelLayer *L = &m->layers[l];
    char *p = g_strdup_printf (distil ? "transformer.layer.%d." : "encoder.layer.%d.", l);
    for (int i = 0; i < 3; i++)
      declare (m, MODEL_PART_ENCODER, MODEL_INIT_NORMAL, FALSE, H, H, lfmt, l, qkv[i], "weight");
    for (int i = 0; i < 3; i++)
      declare (m, MODEL_PART_ENCODER, MODEL_INIT_ZERO, FALSE, H, 0, lfmt, l, qkv[i], "bias");
    char *n1 = g_strconcat (p, distil ? "attention.out_lin" : "attention.output.dense", NULL);
    char *n2 = g_strconcat (p, distil ? "sa_layer_norm" : "attention.output.LayerNorm", NULL);
    char *n3 = g_strconcat (p, distil ? "ffn.lin1" : "intermediate.dense", NULL);
    char *n4 = g_strconcat (p, distil ? "ffn.lin2" : "output.dense", NULL);
    char *n5 = g_strconcat (p, distil ? "output_layer_norm" : "output.LayerNorm", NULL);
    declare_linear (m, MODEL_PART_ENCODER, H, H, n1, &L->ao_w, &L->ao_b);
    declare_ln (m, MODEL_PART_ENCODER, H, n2, &L->ln1_g, &L->ln1_b);
    declare_linear (m, MODEL_PART_ENCODER, I, H, n3, &L->ff1_w, &L->ff1_b);
    declare_linear (m, MODEL_PART_ENCODER, H, I, n4, &L->ff2_w, &L->ff2_b);
    declare_ln (m, MODEL_PART_ENCODER, H, n5, &L->ln2_g, &L->ln2_b);
    g_free (n1); g_free (n2); g_free (n3); g_free (n4); g_free (n5); g_free (p);
  }
  if (m->flags & STSIM_MODEL_POOLER)
    declare_linear (m, MODEL_PART_POOLER, H, H, "pooler.dense", &m->pool_w, &m->pool_b);
  if (m->flags & STSIM_MODEL_MLM_HEAD) {
    const char *dense, *ln, *bias;
    switch (c->arch) {
    case STSIM_ARCH_BERT:
      dense = "cls.predictions.transform.dense"; ln = "cls.predictions.transform.LayerNorm";
      bias = "cls.predictions.bias";
      break;
    case STSIM_ARCH_ROBERTA:
      dense = "lm_head.dense"; ln = "lm_head.layer_norm"; bias = "lm_head.bias";
      break;
    default:
      dense = "vocab_transform"; ln = "vocab_layer_norm"; bias = "vocab_projector.bias";
      break;
    }
    declare_linear (m, MODEL_PART_HEAD, H, H, dense, &m->head_w, &m->head_b);
    declare_ln (m, MODEL_PART_HEAD, H, ln, &m->head_ln_g, &m->head_ln_b);
    m->head_bias = declare (m, MODEL_PART_HEAD, MODEL_INIT_ZERO, FALSE, V, 0, "%s", bias);
  }
  for (guint i = 0; i < m->params->len; i++)
    if (((ModelParam *) m->params->pdata[i])->tensor == NULL) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "model: could not declare parameter %s",
                   ((ModelParam *) m->params->pdata[i])->name);
      return FALSE;
    }
  if (!stsim_param_store_finish (m->store, error))
    return FALSE;
  for (int l = 0; l < c->num_layers; l++)
    if (!fuse3 (m, lfmt, l, qkv, "weight", &m->layers[l].qkv_w, error)
        || !fuse3 (m, lfmt, l, qkv, "bias", &m->layers[l].qkv_b, error))
      return FALSE;
  return TRUE;
}

/* FNV-1a: a stable per-name offset into the init stream. */
static guint64
name_hash (const char *s)
{
  guint64 h = 14695981039346656037ull;
  for (; *s; s++) {
    h ^= (guchar) *s;
    h *= 1099511628211ull;
  }
  return h;
}

void
stsim_model_init_param (StsimModel *m, ModelParam *mp)
{
  float *x = mp->tensor->data;
  gint64 n = mp->tensor->numel;
  switch (mp->init) {
  case MODEL_INIT_ZERO:
    memset (x, 0, (gsize) n * sizeof (float));
    break;
  case MODEL_INIT_ONE:
    for (gint64 i = 0; i < n; i++)
      x[i] = 1.0f;
    break;
  case MODEL_INIT_NORMAL: {
    /* Each tensor draws from its own window of the INIT stream (2^32 words
     * apart, chosen by its name), so a tensor's initial values depend on
     * (seed, name) only, not on which other tensors a checkpoint supplied. */
    StsimRng rng;
    stsim_rng_init (&rng, m->seed, STSIM_RNG_STREAM_INIT);
    stsim_rng_seek (&rng, (name_hash (mp->name) & 0xffffffffu) << 32);
    stsim_rng_fill_normal (&rng, x, n, 0.0f, (float) m->config.initializer_range);
    break;
  }
  }
}

static gboolean
config_check (const StsimModelConfig *c, GError **error)
{
  const char *why = NULL;
  if (c->vocab_size < 1 || c->hidden_size < 1 || c->num_layers < 1 || c->num_heads < 1
      || c->intermediate_size < 1 || c->max_position_embeddings < 1)
    why = "sizes must be positive";
  else if (c->hidden_size % c->num_heads != 0)
    why = "hidden_size must be a multiple of num_heads";
  else if (c->arch != STSIM_ARCH_DISTILBERT && c->type_vocab_size < 1)
    why = "type_vocab_size must be at least 1";
  else if (c->pad_token_id < 0 || c->pad_token_id >= c->vocab_size)
    why = "pad_token_id must be a vocabulary id";
  else if (!(c->layer_norm_eps > 0))
    why = "layer_norm_eps must be > 0";
  else if (!(c->hidden_dropout >= 0 && c->hidden_dropout < 1) || !(c->attention_dropout >= 0 && c->attention_dropout < 1))
    why = "dropout probabilities must be in [0, 1)";
  else if (!(c->initializer_range >= 0 && c->initializer_range < 10))
    why = "initializer_range must be in [0, 10)";
  else if (c->arch == STSIM_ARCH_ROBERTA && c->max_position_embeddings <= c->pad_token_id + 1)
    why = "RoBERTa needs max_position_embeddings > pad_token_id + 1";
  if (why) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "model config (%s): %s", stsim_arch_name (c->arch), why);
    return FALSE;
  }
  return TRUE;
}

gboolean
stsim_model_check_tokenizer (StsimModel *m, StsimTokenizer *tok, const char *where, GError **error)
{
  if (tok == NULL)
    return TRUE;
  gint32 n = stsim_tokenizer_vocab_size (tok);
  if (n > m->config.vocab_size) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT,
                 "%s: the tokenizer has %d tokens but the model's vocab_size is %d",
                 where ? where : "model", n, m->config.vocab_size);
    return FALSE;
  }
  gboolean bpe = stsim_tokenizer_get_kind (tok) == STSIM_TOKENIZER_BPE;
  if (bpe != (m->config.arch == STSIM_ARCH_ROBERTA)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT, "%s: a %s model needs %s, not %s",
                 where ? where : "model", stsim_arch_name (m->config.arch),
                 m->config.arch == STSIM_ARCH_ROBERTA ? "a byte-level BPE tokenizer (vocab.json, merges.txt)"
                                                      : "a WordPiece tokenizer (vocab.txt)",
                 bpe ? "vocab.json/merges.txt" : "vocab.txt");
    return FALSE;
  }
  return TRUE;
}

StsimModel *
stsim_model_alloc (const StsimModelConfig *config, guint flags, guint64 seed, GError **error)
{
  if (!config_check (config, error))
    return NULL;
  StsimModel *m = g_new0 (StsimModel, 1);
  m->config = *config;
  m->flags = flags;
  m->seed = seed;
  m->encode_batch = 64;
  m->tokenizer_files = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_bytes_unref);
  if (!model_build (m, error)) {
    stsim_model_free (m);
    return NULL;
  }
  return m;
}

StsimModel *
stsim_model_new (const StsimModelConfig *config, StsimTokenizer *tokenizer, guint flags,
                 guint64 seed, GError **error)
{
  g_return_val_if_fail (config != NULL, NULL);
  StsimModel *m = stsim_model_alloc (config, flags, seed, error);
  if (m == NULL) {
    stsim_tokenizer_free (tokenizer);
    return NULL;
  }
  if (!stsim_model_check_tokenizer (m, tokenizer, "model", error)) {
    stsim_tokenizer_free (tokenizer);
    stsim_model_free (m);
    return NULL;
  }
  m->tokenizer = tokenizer;
  stsim_model_adopt_tokenizer (m);
  for (guint i = 0; i < m->params->len; i++)
    stsim_model_init_param (m, m->params->pdata[i]);
  m->init_flags = flags & (STSIM_MODEL_POOLER | STSIM_MODEL_MLM_HEAD);
  return m;
}

StsimModel *
stsim_model_copy (StsimModel *model, guint flags, GError **error)
{
  g_return_val_if_fail (model != NULL, NULL);
  StsimModel *m = stsim_model_alloc (&model->config, flags, model->seed, error);
  if (m == NULL)
    return NULL;
  m->source = g_strdup (model->source);
  m->encode_batch = model->encode_batch;
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, model->tokenizer_files);
  while (g_hash_table_iter_next (&it, &k, &v))
    g_hash_table_insert (m->tokenizer_files, g_strdup (k), g_bytes_ref (v));
  if (model->tokenizer != NULL) {
    m->tokenizer = stsim_model_tokenizer_from_files (m, error);
    if (m->tokenizer == NULL) {
      stsim_model_free (m);
      return NULL;
    }
  }
  /* Same-named tensors are copied; parts the source lacks start fresh. */
  for (guint i = 0; i < m->params->len; i++) {
    ModelParam *mp = m->params->pdata[i];
    const StsimParamView *src = stsim_param_store_lookup (model->store, mp->name);
    if (src != NULL) {
      memcpy (mp->tensor->data, src->tensor->data, (gsize) mp->tensor->numel * sizeof (float));
    } else {
      stsim_model_init_param (m, mp);
      m->init_flags |= mp->part == MODEL_PART_POOLER ? STSIM_MODEL_POOLER : STSIM_MODEL_MLM_HEAD;
    }
  }
  m->init_flags |= model->init_flags & m->flags & (STSIM_MODEL_POOLER | STSIM_MODEL_MLM_HEAD);
  return m;
}

void
stsim_model_free (StsimModel *model)
{
  if (model == NULL)
    return;
  g_clear_pointer (&model->encode_tape, stsim_tape_free);
  g_clear_pointer (&model->params, g_ptr_array_unref);
  g_clear_pointer (&model->store, stsim_param_store_free);
  g_clear_pointer (&model->tokenizer, stsim_tokenizer_free);
  g_clear_pointer (&model->tokenizer_files, g_hash_table_unref);
  g_free (model->layers);
  g_free (model->source);
  g_free (model);
}

const StsimModelConfig *
stsim_model_get_config (StsimModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return &model->config;
}

StsimTokenizer *
stsim_model_get_tokenizer (StsimModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return model->tokenizer;
}

StsimParamStore *
stsim_model_get_params (StsimModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return model->store;
}

const char *
stsim_model_get_source (StsimModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return model->source;
}

guint
stsim_model_get_flags (StsimModel *model)
{
  g_return_val_if_fail (model != NULL, 0);
  return model->flags;
}

guint
stsim_model_get_initialized (StsimModel *model)
{
  g_return_val_if_fail (model != NULL, 0);
  return model->init_flags;
}

void
stsim_model_set_encode_batch (StsimModel *model, int n_sentences)
{
  g_return_if_fail (model != NULL && n_sentences > 0);
  model->encode_batch = n_sentences;
}

gsize
stsim_model_get_dim (StsimModel *model)
{
  g_return_val_if_fail (model != NULL, 0);
  return (gsize) model->config.hidden_size;
}
