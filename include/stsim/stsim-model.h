/* stsim-model.h: the transformer encoders (BERT, RoBERTa, DistilBERT) in
 * Hugging Face layout, built from the autograd ops of stsim-autograd.h.
 *
 * One implementation serves every place a network appears: the student
 * encoder, a frozen teacher, a frozen masked-LM generator and DiffCSE's
 * discriminator. Models load from and save to HF folders (config.json,
 * model.safetensors, vocab files) so that HF transformers and stsim read
 * each other's checkpoints unchanged (method.md §1).
 *
 *   g_autoptr(StsimModel) m = stsim_model_load ("models/mini-bert", STSIM_MODEL_FROZEN, 42, &err);
 *   float emb[2 * 256];
 *   const char *s[] = { "a man is playing a flute .", "a man plays a flute ." };
 *   stsim_model_encode (m, s, 2, STSIM_POOL_CLS_BEFORE_POOLER, 0, emb, &err);
 *
 * Training: a StsimTape in training mode gives dropout; the model's
 * parameters are one StsimParamStore (stsim_model_get_params) that the
 * optimizer updates.
 */
#pragma once
#include <glib.h>
#include "stsim-export.h"
#include "stsim-error.h"
#include "stsim-tensor.h"
#include "stsim-autograd.h"
#include "stsim-tokenizer.h"

G_BEGIN_DECLS

typedef enum {
  STSIM_ARCH_BERT,        /* model_type "bert" */
  STSIM_ARCH_ROBERTA,     /* model_type "roberta": position ids offset by pad+1, one token type */
  STSIM_ARCH_DISTILBERT,  /* model_type "distilbert": no token types, no dropout after attention output */
} StsimArch;

typedef struct {
  StsimArch arch;
  int    vocab_size;
  int    hidden_size;
  int    num_layers;
  int    num_heads;
  int    intermediate_size;
  int    max_position_embeddings;
  int    type_vocab_size;        /* 0 for DistilBERT */
  int    pad_token_id;
  double layer_norm_eps;
  double hidden_dropout;         /* hidden_dropout_prob / dropout */
  double attention_dropout;      /* attention_probs_dropout_prob / attention_dropout */
  double initializer_range;
} StsimModelConfig;

/* config.json -> config; unknown keys ignored, missing required ones and
 * unsupported values (hidden_act other than gelu, ...) are errors naming the key. */
STSIM_API
gboolean stsim_model_config_load (const char *config_json, StsimModelConfig *config, GError **error);
/* Defaults of each architecture's base model, for fresh models. */
STSIM_API
void     stsim_model_config_init (StsimModelConfig *config, StsimArch arch);
STSIM_API
const char *stsim_arch_name (StsimArch arch);

typedef enum {
  STSIM_POOL_CLS,                /* tanh(W_p·h_CLS + b_p): the checkpoint pooler / SimCSE MLP */
  STSIM_POOL_CLS_BEFORE_POOLER,  /* h_CLS */
  STSIM_POOL_AVG,                /* masked mean of the last layer */
  STSIM_POOL_AVG_FIRST_LAST,     /* masked mean of (layer 1 + layer N)/2 */
  STSIM_POOL_AVG_TOP2,           /* masked mean of (layer N-1 + layer N)/2 */
} StsimPooler;

STSIM_API
const char *stsim_pooler_name (StsimPooler pooler);
STSIM_API
gboolean    stsim_pooler_from_name (const char *name, StsimPooler *out);
#define STSIM_POOLER_CHOICES "cls|cls_before_pooler|avg|avg_first_last|avg_top2"

typedef enum {
  STSIM_MODEL_FROZEN   = 1u << 0,  /* no gradients at all (teacher, generator) */
  STSIM_MODEL_POOLER   = 1u << 1,  /* have pooler.dense (loaded if present, else N(0, 0.02) init) */
  STSIM_MODEL_MLM_HEAD = 1u << 2,  /* have the MLM head (cls.predictions / lm_head / vocab_*) */
  /* With STSIM_MODEL_POOLER: initialise pooler.dense from the seed even when
   * the checkpoint has one. SimCSE's training MLP starts random, not from
   * BERT's NSP pooler (method.md §1.5). */
  STSIM_MODEL_RESET_POOLER = 1u << 3,
} StsimModelFlags;

typedef struct _StsimModel StsimModel;

/* An HF folder: config.json, model.safetensors (F32/F16/BF16; with or without
 * the bert./roberta./distilbert. prefix; LayerNorm gamma/beta or weight/bias)
 * and the tokenizer files if present. Tensors the flags ask for but the file
 * lacks (pooler, head) are initialised from @seed; any other missing tensor,
 * or a wrong shape, is an error naming the tensor. */
STSIM_API
StsimModel *stsim_model_load (const char *dir, guint flags, guint64 seed, GError **error);
/* A fresh model for pretraining: N(0, initializer_range) weights, zero biases,
 * LayerNorm 1 and 0. The model takes ownership of @tokenizer (may be NULL). */
STSIM_API
StsimModel *stsim_model_new (const StsimModelConfig *config, StsimTokenizer *tokenizer, guint flags,
                             guint64 seed, GError **error);
/* A second model with the same config, tokenizer files and a copy of the
 * weights (DiffCSE's discriminator starts as a copy of the student). */
STSIM_API
StsimModel *stsim_model_copy (StsimModel *model, guint flags, GError **error);
STSIM_API
void        stsim_model_free (StsimModel *model);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimModel, stsim_model_free)

/* Writes an HF folder atomically (a temporary sibling folder, then rename):
 * config.json, model.safetensors with HF names (bert./roberta. prefix, pooler,
 * MLM head tied to the word embeddings as HF does), tokenizer files. */
STSIM_API
gboolean stsim_model_save (StsimModel *model, const char *dir, GError **error);

STSIM_API
const StsimModelConfig *stsim_model_get_config    (StsimModel *model);
STSIM_API
StsimTokenizer         *stsim_model_get_tokenizer (StsimModel *model);   /* NULL if none */
STSIM_API
StsimParamStore        *stsim_model_get_params    (StsimModel *model);
/* The folder it was loaded from, or NULL for a fresh model. */
STSIM_API
const char             *stsim_model_get_source    (StsimModel *model);

/* Additions beyond the first contract. */
/* Parameter names in the store are the HF names without the bert./roberta./
 * distilbert. prefix ("embeddings.word_embeddings.weight",
 * "encoder.layer.0.attention.self.query.weight", "pooler.dense.weight");
 * the MLM head keeps HF's names ("cls.predictions.bias", "lm_head.dense.weight",
 * "vocab_transform.weight"). Biases and LayerNorm weights are NO_DECAY. */
/* The flags the model was made with. */
STSIM_API
guint                   stsim_model_get_flags     (StsimModel *model);
/* Which of STSIM_MODEL_POOLER / STSIM_MODEL_MLM_HEAD were initialised from
 * the seed rather than read from the checkpoint (evaluating with the `cls`
 * pooler of a random pooler is almost always a mistake). */
STSIM_API
guint                   stsim_model_get_initialized (StsimModel *model);
/* H: the size of every pooled vector. */
STSIM_API
gsize                   stsim_model_get_dim       (StsimModel *model);
/* Sentences per batch of stsim_model_encode (default 64; batches are also
 * capped at a few thousand tokens). */
STSIM_API
void                    stsim_model_set_encode_batch (StsimModel *model, int n_sentences);
/* Loads the tokenizer of folder @dir (vocab.txt, or vocab.json + merges.txt)
 * into the model and keeps its files for stsim_model_save: a fresh model
 * saves the tokenizer it was built with. */
STSIM_API
gboolean                stsim_model_set_tokenizer_dir (StsimModel *model, const char *dir, GError **error);

/* ---- forward ---------------------------------------------------------- */
typedef struct {
  gboolean     packed;  /* TRUE: rows are the real tokens only (no compute on padding);
                           FALSE: B*width rows like HF's padded batch (pad rows computed) */
  StsimTensor *row0;    /* optional [B, H]: replaces every sequence's position-0 row after
                           the embedding LayerNorm and dropout (DiffCSE's conditioning) */
  /* Data-parallel training: the batch is some rows of @whole, the batch one
   * process runs (same layout options), with batch row b being row
   * whole_rows[b] (increasing); dropout then draws for every row the masks
   * one process draws for it (stsim_tape_set_places). NULL: the batch is whole. */
  const StsimTokenBatch *whole;
  const gsize           *whole_rows;
} StsimForwardOptions;

typedef struct {
  gsize        n_seqs;     /* B */
  StsimSeq    *seqs;       /* row layout of every hidden state (arena memory) */
  gint64       n_rows;
  int          n_layers;   /* N */
  StsimTensor **hidden;    /* N+1 tensors [n_rows, H]: 0 = embedding output, N = last layer */
} StsimModelOutput;

/* Runs the encoder on a token batch (stsim_tokenizer_encode_batch). Train or
 * eval mode and gradients follow the tape. */
STSIM_API
gboolean     stsim_model_forward (StsimModel *model, StsimTape *tape, const StsimTokenBatch *batch,
                                  const StsimForwardOptions *options, StsimModelOutput *out, GError **error);
/* [B, H] sentence vectors from a forward output. */
STSIM_API
StsimTensor *stsim_model_pool (StsimModel *model, StsimTape *tape, const StsimModelOutput *out,
                               StsimPooler pooler);
/* MLM logits [n, V] for hidden rows [n, H] (select rows first: computing
 * logits only where a loss needs them is the big saving). */
STSIM_API
StsimTensor *stsim_model_mlm_logits (StsimModel *model, StsimTape *tape, StsimTensor *hidden);

/* Eval-mode, no-grad embeddings of sentences into out[n, H]: sorts by length,
 * batches, packs. @max_len 0: no truncation. */
STSIM_API
gboolean     stsim_model_encode (StsimModel *model, const char *const *sentences, gsize n,
                                 StsimPooler pooler, int max_len, float *out, GError **error);

G_END_DECLS
