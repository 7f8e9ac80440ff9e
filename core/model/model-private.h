/* model-private.h: the StsimModel structure shared by the files of
 * core/model (construction and checkpoints in model.c, the forward pass in
 * model-forward.c). Not installed. */
#pragma once
#include "stsim/stsim-model.h"

/* Which part of the network a parameter belongs to: the encoder is always
 * there, the pooler and the MLM head only when the flags ask for them. */
typedef enum {
  MODEL_PART_ENCODER,
  MODEL_PART_POOLER,
  MODEL_PART_HEAD,
} ModelPart;

typedef enum {
  MODEL_INIT_NORMAL,  /* N(0, initializer_range): Linear and Embedding weights */
  MODEL_INIT_ZERO,    /* biases, LayerNorm beta */
  MODEL_INIT_ONE,     /* LayerNorm gamma */
} ModelInit;

/* One parameter: its name in the store (= the HF name without the
 * bert./roberta./distilbert. prefix; head names are HF's, which have none). */
typedef struct {
  char      *name;
  ModelPart  part;
  ModelInit  init;
  gboolean   is_ln;     /* LayerNorm: the checkpoint may spell it gamma/beta */
  StsimTensor *tensor;
} ModelParam;

typedef struct {
  StsimTensor *qkv_w, *qkv_b;           /* fused views [3H, H], [3H] */
  StsimTensor *ao_w, *ao_b;             /* attention output dense / out_lin */
  StsimTensor *ln1_g, *ln1_b;           /* attention.output.LayerNorm / sa_layer_norm */
  StsimTensor *ff1_w, *ff1_b;           /* intermediate.dense / ffn.lin1 */
  StsimTensor *ff2_w, *ff2_b;           /* output.dense / ffn.lin2 */
  StsimTensor *ln2_g, *ln2_b;           /* output.LayerNorm / output_layer_norm */
} ModelLayer;

struct _StsimModel {
  StsimModelConfig config;
  guint            flags;        /* StsimModelFlags asked for */
  guint            init_flags;   /* STSIM_MODEL_POOLER / _MLM_HEAD parts initialised from the seed */
  guint64          seed;
  char            *source;
  StsimTokenizer  *tokenizer;
  /* Tokenizer files to write back on save: file name -> GBytes. */
  GHashTable      *tokenizer_files;

  StsimParamStore *store;
  GPtrArray       *params;       /* ModelParam*, declaration order */

  StsimTensor *word, *pos, *type;        /* type NULL for DistilBERT */
  StsimTensor *emb_ln_g, *emb_ln_b;
  ModelLayer  *layers;
  StsimTensor *pool_w, *pool_b;          /* NULL without STSIM_MODEL_POOLER */
  StsimTensor *head_w, *head_b;          /* transform dense / vocab_transform */
  StsimTensor *head_ln_g, *head_ln_b;
  StsimTensor *head_bias;                /* decoder bias [V] */

  int          encode_batch;             /* sentences per encode batch */
  StsimTape   *encode_tape;              /* reused by stsim_model_encode */
};

/* The prefix of encoder tensors in HF checkpoints: "bert.", "roberta.", "distilbert.". */
const char *stsim_model_arch_prefix (StsimArch arch);
/* Largest number of tokens one sequence may have (position table). */
int         stsim_model_max_tokens (const StsimModel *model);
/* LayerNorm eps of the MLM head (DistilBERT hard-codes 1e-12). */
double      stsim_model_head_eps (const StsimModel *model);
/* config.json text in HF's layout for @c (bos/eos < 0: omitted). */
char       *stsim_model_config_to_json (const StsimModelConfig *c, int bos_id, int eos_id);

/* A model with every parameter declared and zero (model.c). */
StsimModel     *stsim_model_alloc (const StsimModelConfig *config, guint flags, guint64 seed, GError **error);
/* Fresh value of one parameter from (seed, name) (method.md §1.5). */
void            stsim_model_init_param (StsimModel *m, ModelParam *mp);
/* The tokenizer fits the model (vocabulary size, WordPiece vs BPE). */
gboolean        stsim_model_check_tokenizer (StsimModel *m, StsimTokenizer *tok, const char *where, GError **error);
/* A tokenizer rebuilt from the kept tokenizer files (model-io.c). */
StsimTokenizer *stsim_model_tokenizer_from_files (StsimModel *m, GError **error);
/* Keeps a vocab.txt rebuilt from a WordPiece tokenizer given without files. */
void            stsim_model_adopt_tokenizer (StsimModel *m);
