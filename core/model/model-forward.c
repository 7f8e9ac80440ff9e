/* model-forward.c: the encoder forward pass of method.md §1.1 (BERT,
 * RoBERTa) and §1.4 (DistilBERT), the poolers of §3.4, the MLM head and
 * batched eval-mode encoding.
 *
 * The network is a chain of the fused ops of stsim-autograd.h, so its
 * backward comes from the tape. Two row layouts share one code path: padded
 * (B*width rows, pad query rows computed as HF does) and packed (only the
 * real tokens; method.md §2.3 says exact masking makes padding irrelevant,
 * so packed rows equal padded ones up to float noise). */
#include <string.h>

#include "model-private.h"

/* Position ids (method.md §1.2, §1.3) of one sequence of @n ids. */
static void
position_ids (const StsimModel *m, const gint32 *ids, gint64 n, gint32 *pos)
{
  if (m->config.arch == STSIM_ARCH_ROBERTA) {
    /* p_k = m_k * cumsum(m)_k + pad, m_k = [id_k != pad]: real tokens get
     * pad+1, pad+2, ...; pads get pad. */
    gint32 pad = m->config.pad_token_id, count = 0;
    for (gint64 k = 0; k < n; k++) {
      if (ids[k] != pad)
        count++;
      pos[k] = ids[k] != pad ? pad + count : pad;
    }
  } else {
    for (gint64 k = 0; k < n; k++)
      pos[k] = (gint32) k;
  }
}

int
stsim_model_max_tokens (const StsimModel *m)
{
  if (m->config.arch == STSIM_ARCH_ROBERTA)
    return m->config.max_position_embeddings - m->config.pad_token_id - 1;
  return m->config.max_position_embeddings;
}

double
stsim_model_head_eps (const StsimModel *m)
{
  return m->config.arch == STSIM_ARCH_DISTILBERT ? 1e-12 : m->config.layer_norm_eps;
}

/* Embeddings: LN(word[ids] + pos[pos] (+ type[0])), dropout. */
static StsimTensor *
embed (StsimModel *m, StsimTape *tape, const gint32 *ids, const gint32 *pos, gint64 n_rows)
{
  const StsimModelConfig *c = &m->config;
  StsimTensor *w = stsim_embedding (tape, m->word, ids, n_rows);
  StsimTensor *p = stsim_embedding (tape, m->pos, pos, n_rows);
  StsimTensor *x;
  if (m->type != NULL) {
    /* Single sentences: every token type is 0 (method.md §1.1). */
    gint32 *types = stsim_arena_alloc0 (stsim_tape_get_arena (tape), (gsize) n_rows * sizeof (gint32));
    StsimTensor *t = stsim_embedding (tape, m->type, types, n_rows);
    x = stsim_add_layer_norm (tape, stsim_add (tape, w, p), t, m->emb_ln_g, m->emb_ln_b, (float) c->layer_norm_eps);
  } else {
    x = stsim_add_layer_norm (tape, w, p, m->emb_ln_g, m->emb_ln_b, (float) c->layer_norm_eps);
  }
  return stsim_dropout (tape, x, (float) c->hidden_dropout);
}

/* One post-LN layer (method.md §1.1; DistilBERT §1.4 has no dropout after
 * the attention output projection). */
static StsimTensor *
layer_forward (StsimModel *m, StsimTape *tape, int l, StsimTensor *x, const StsimSeq *seqs, gsize n_seqs)
{
  const StsimModelConfig *c = &m->config;
  const ModelLayer *L = &m->layers[l];
  float eps = (float) c->layer_norm_eps;
  StsimTensor *qkv = stsim_linear (tape, x, L->qkv_w, L->qkv_b);
  StsimTensor *ctx = stsim_attention_qkv (tape, qkv, seqs, n_seqs, c->num_heads, (float) c->attention_dropout);
  StsimTensor *y = stsim_linear (tape, ctx, L->ao_w, L->ao_b);
  if (c->arch != STSIM_ARCH_DISTILBERT)
    y = stsim_dropout (tape, y, (float) c->hidden_dropout);
  StsimTensor *h1 = stsim_add_layer_norm (tape, y, x, L->ln1_g, L->ln1_b, eps);
  StsimTensor *f = stsim_linear_act (tape, h1, L->ff1_w, L->ff1_b, STSIM_ACT_GELU);
  f = stsim_linear (tape, f, L->ff2_w, L->ff2_b);
  f = stsim_dropout (tape, f, (float) c->hidden_dropout);
  return stsim_add_layer_norm (tape, f, h1, L->ln2_g, L->ln2_b, eps);
}

/* Without grad nothing a layer allocates is read after it but its output:
 * the layer's scratch is rewound, so a frozen teacher or generator holds one
 * layer's activations at a time instead of all of them. */
static StsimTensor *
layer_forward_nograd (StsimModel *m, StsimTape *tape, int l, StsimTensor *x, const StsimSeq *seqs, gsize n_seqs)
{
  StsimArena *arena = stsim_tape_get_arena (tape);
  StsimArenaMark mark = stsim_arena_mark (arena);
  StsimTensor *y = layer_forward (m, tape, l, x, seqs, n_seqs);
  if (!y)
    return NULL;
  /* Released chunks are unmapped: the output goes through the heap. */
  g_autofree float *keep = g_memdup2 (y->data, (gsize) y->numel * sizeof (float));
  int ndim = y->ndim;
  gint64 shape[STSIM_TENSOR_MAX_DIMS];
  memcpy (shape, y->shape, sizeof shape);
  stsim_arena_release (arena, &mark);
  return stsim_tensor_from_data (tape, ndim, shape, keep);
}

static gboolean
check_ids (StsimModel *m, const gint32 *ids, gint64 n, const char *what, gsize row, GError **error)
{
  for (gint64 k = 0; k < n; k++)
    if (ids[k] < 0 || ids[k] >= m->config.vocab_size) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                   "%s %" G_GSIZE_FORMAT ": token id %d at position %" G_GINT64_FORMAT
                   " is outside the model's vocabulary [0, %d) (tokenizer and model do not match?)",
                   what, row, ids[k], k, m->config.vocab_size);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_length (StsimModel *m, gint64 len, const char *what, gsize row, GError **error)
{
  int max = stsim_model_max_tokens (m);
  if (len < 1) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s %" G_GSIZE_FORMAT ": empty token sequence", what, row);
    return FALSE;
  }
  if (len > max) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "%s %" G_GSIZE_FORMAT ": %" G_GINT64_FORMAT " tokens, more than the %d positions of the model "
                 "(max_position_embeddings %d); truncate it with max_len",
                 what, row, len, max, m->config.max_position_embeddings);
    return FALSE;
  }
  return TRUE;
}

/* The places of @batch's sequences @seqs in @o->whole (o->whole_rows[b] is
 * row b's row there), laid out as stsim_model_forward lays out the whole
 * batch; NULL with @error set when the batch is not a part of it. */
static StsimRowPlace *
whole_places (StsimArena *arena, const StsimTokenBatch *batch, const StsimSeq *seqs, const StsimForwardOptions *o,
              GError **error)
{
  const StsimTokenBatch *w = o->whole;
  gboolean packed = o->packed;
  StsimRowPlace *pl = stsim_arena_alloc (arena, batch->n * sizeof (StsimRowPlace));
  gint64 row = 0, pairs = 0;
  gsize g = 0;
  for (gsize b = 0; b < batch->n; b++) {
    gsize want = o->whole_rows[b];
    if (want >= w->n || (b > 0 && want <= o->whole_rows[b - 1]) || w->lengths[want] != batch->lengths[b]
        || (!packed && batch->width > w->width)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "model forward: batch row %" G_GSIZE_FORMAT " is not "
                   "row %" G_GSIZE_FORMAT " of the whole batch (%" G_GSIZE_FORMAT " rows): rows out of order, "
                   "another length or a wider padding", b, want, w->n);
      return NULL;
    }
    /* The rows and attention blocks of the whole batch's rows before it. */
    for (; g < want; g++) {
      gint64 rows = packed ? w->lengths[g] : (gint64) w->width;
      row += rows;
      pairs += rows * w->lengths[g];
    }
    gint64 grows = packed ? w->lengths[g] : (gint64) w->width;
    pl[b] = (StsimRowPlace) { seqs[b].offset, seqs[b].rows, row, grows, pairs };
  }
  return pl;
}

/* Embeddings and layers on the packed or padded rows; NULL when an op failed. */
static StsimTensor **
forward_layers (StsimModel *model, StsimTape *tape, const gint32 *ids, const gint32 *pos, gint64 n_rows,
                const StsimSeq *seqs, gsize B, StsimTensor *row0)
{
  const StsimModelConfig *c = &model->config;
  StsimArena *arena = stsim_tape_get_arena (tape);
  StsimTensor *x = embed (model, tape, ids, pos, n_rows);
  if (x != NULL && row0 != NULL) {
    /* DiffCSE: the sentence vector replaces the position-0 embedding after
     * the embedding LayerNorm and dropout (method.md §4.2 step 5). */
    gint32 *first = stsim_arena_alloc (arena, B * sizeof (gint32));
    for (gsize b = 0; b < B; b++)
      first[b] = seqs[b].offset;
    StsimTensor *src = row0->ndim == 2 ? row0 : stsim_reshape (tape, row0, 2, (gint64[]) { (gint64) B, c->hidden_size });
    x = stsim_replace_rows (tape, x, first, src);
  }
  StsimTensor **hidden = stsim_arena_alloc0 (arena, (gsize) (c->num_layers + 1) * sizeof (StsimTensor *));
  hidden[0] = x;
  for (int l = 0; l < c->num_layers && x != NULL; l++)
    hidden[l + 1] = x = stsim_tape_get_grad_enabled (tape) ? layer_forward (model, tape, l, x, seqs, B)
                                                           : layer_forward_nograd (model, tape, l, x, seqs, B);
  return x ? hidden : NULL;
}

gboolean
stsim_model_forward (StsimModel *model, StsimTape *tape, const StsimTokenBatch *batch,
                     const StsimForwardOptions *options, StsimModelOutput *out, GError **error)
{
  g_return_val_if_fail (model != NULL && tape != NULL && batch != NULL && out != NULL, FALSE);
  g_return_val_if_fail (batch->n > 0 && batch->width > 0 && batch->ids != NULL && batch->lengths != NULL, FALSE);
  const StsimModelConfig *c = &model->config;
  gboolean packed = options ? options->packed : FALSE;
  StsimTensor *row0 = options ? options->row0 : NULL;
  gsize B = batch->n, W = batch->width;
  const gint64 H = c->hidden_size;
  StsimArena *arena = stsim_tape_get_arena (tape);

  memset (out, 0, sizeof *out);
  if (row0 != NULL && (stsim_tensor_rows (row0) != (gint64) B || stsim_tensor_cols (row0) != H)) {
    char buf[64];
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "model forward: row0 is %s, expected [%" G_GSIZE_FORMAT
                 ", %" G_GINT64_FORMAT "]", stsim_tensor_shape_string (row0, buf, sizeof buf), B, H);
    return FALSE;
  }
  if (!packed && c->arch != STSIM_ARCH_ROBERTA && (gint64) W > stsim_model_max_tokens (model)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "model forward: padded width %" G_GSIZE_FORMAT " exceeds max_position_embeddings %d",
                 W, c->max_position_embeddings);
    return FALSE;
  }

  StsimSeq *seqs = stsim_arena_alloc (arena, B * sizeof (StsimSeq));
  gint64 n_rows = 0;
  for (gsize b = 0; b < B; b++) {
    gint32 len = batch->lengths[b];
    if (len > (gint32) W) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "batch row %" G_GSIZE_FORMAT ": length %d exceeds the "
                   "batch width %" G_GSIZE_FORMAT, b, len, W);
      return FALSE;
    }
    if (!check_length (model, len, "batch row", b, error)
        || !check_ids (model, batch->ids + b * W, packed ? len : (gint64) W, "batch row", b, error))
      return FALSE;
    seqs[b].offset = (gint32) n_rows;
    seqs[b].rows = packed ? len : (gint32) W;
    seqs[b].keys = len;
    n_rows += seqs[b].rows;
  }

  gint32 *ids = stsim_arena_alloc (arena, (gsize) n_rows * sizeof (gint32));
  gint32 *pos = stsim_arena_alloc (arena, (gsize) n_rows * sizeof (gint32));
  for (gsize b = 0; b < B; b++) {
    memcpy (ids + seqs[b].offset, batch->ids + b * W, (gsize) seqs[b].rows * sizeof (gint32));
    position_ids (model, ids + seqs[b].offset, seqs[b].rows, pos + seqs[b].offset);
  }

  StsimRowPlace *places = NULL;
  g_return_val_if_fail (!options || !options->whole || options->whole_rows != NULL, FALSE);
  if (options && options->whole && !(places = whole_places (arena, batch, seqs, options, error)))
    return FALSE;
  /* Only this forward's dropout is keyed by the places. */
  stsim_tape_set_places (tape, places, places ? B : 0);
  StsimTensor **hidden = forward_layers (model, tape, ids, pos, n_rows, seqs, B, row0);
  stsim_tape_set_places (tape, NULL, 0);
  if (hidden == NULL) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED,
                 "model forward: an op failed (see the critical above); this is a bug in stsim");
    return FALSE;
  }
  out->n_seqs = B;
  out->seqs = seqs;
  out->n_rows = n_rows;
  out->n_layers = c->num_layers;
  out->hidden = hidden;
  return TRUE;
}

/* The pooler on the hidden states it needs (first = layer 1, prev = layer
 * N-1; either may be NULL when the pooler does not use it). */
static StsimTensor *
pool_impl (StsimModel *m, StsimTape *tape, const StsimSeq *seqs, gsize n_seqs,
           StsimTensor *first, StsimTensor *prev, StsimTensor *last, StsimPooler pooler)
{
  StsimArena *arena = stsim_tape_get_arena (tape);
  switch (pooler) {
  case STSIM_POOL_CLS:
  case STSIM_POOL_CLS_BEFORE_POOLER: {
    gint32 *idx = stsim_arena_alloc (arena, n_seqs * sizeof (gint32));
    for (gsize b = 0; b < n_seqs; b++)
      idx[b] = seqs[b].offset;
    StsimTensor *h = stsim_gather_rows (tape, last, idx, (gint64) n_seqs);
    if (pooler == STSIM_POOL_CLS_BEFORE_POOLER)
      return h;
    return stsim_linear_act (tape, h, m->pool_w, m->pool_b, STSIM_ACT_TANH);
  }
  case STSIM_POOL_AVG:
    return stsim_mean_pool (tape, last, seqs, n_seqs);
  case STSIM_POOL_AVG_FIRST_LAST:
    /* mean((a+b)/2) = (mean a + mean b)/2: two pools instead of a full-size sum. */
    return stsim_axpby (tape, 0.5f, stsim_mean_pool (tape, first, seqs, n_seqs),
                        0.5f, stsim_mean_pool (tape, last, seqs, n_seqs));
  case STSIM_POOL_AVG_TOP2:
    return stsim_axpby (tape, 0.5f, stsim_mean_pool (tape, prev, seqs, n_seqs),
                        0.5f, stsim_mean_pool (tape, last, seqs, n_seqs));
  }
  return NULL;
}

StsimTensor *
stsim_model_pool (StsimModel *model, StsimTape *tape, const StsimModelOutput *out, StsimPooler pooler)
{
  g_return_val_if_fail (model != NULL && tape != NULL && out != NULL && out->hidden != NULL, NULL);
  g_return_val_if_fail (pooler != STSIM_POOL_CLS || model->pool_w != NULL, NULL);
  int N = out->n_layers;
  return pool_impl (model, tape, out->seqs, out->n_seqs, out->hidden[N >= 1 ? 1 : 0],
                    out->hidden[N >= 1 ? N - 1 : 0], out->hidden[N], pooler);
}

StsimTensor *
stsim_model_mlm_logits (StsimModel *model, StsimTape *tape, StsimTensor *hidden)
{
  g_return_val_if_fail (model != NULL && tape != NULL, NULL);
  g_return_val_if_fail (model->head_w != NULL, NULL);
  if (hidden == NULL)
    return NULL;
  /* BertLMPredictionHead / RobertaLMHead / DistilBERT's vocab_* chain:
   * LN(GELU(h·Wtᵀ + bt))·Eᵀ + bias with the decoder tied to E. */
  StsimTensor *t = stsim_linear_act (tape, hidden, model->head_w, model->head_b, STSIM_ACT_GELU);
  t = stsim_layer_norm (tape, t, model->head_ln_g, model->head_ln_b, (float) stsim_model_head_eps (model));
  return stsim_linear (tape, t, model->word, model->head_bias);
}

/* ---- batched eval-mode encoding ----------------------------------------- */

/* Rows of activations one encode batch may hold: a base model keeps about
 * 16 H floats per token while a layer runs (~200 MB at 4096 tokens). */
#define ENCODE_TOKEN_BUDGET 4096

typedef struct {
  const gint32 *lengths;
} SortCtx;

static int
by_length_desc (gconstpointer a, gconstpointer b, gpointer user)
{
  const SortCtx *s = user;
  gint32 ia = *(const gint32 *) a, ib = *(const gint32 *) b;
  if (s->lengths[ia] != s->lengths[ib])
    return s->lengths[ia] > s->lengths[ib] ? -1 : 1;
  return ia < ib ? -1 : ia > ib;
}

static StsimTensor *
wrap_rows (StsimTape *tape, float *data, gint64 rows, gint64 cols)
{
  return stsim_tensor_wrap (tape, 2, (gint64[]) { rows, cols }, data);
}

/* What stsim_model_encode refuses before any work. */
static gboolean
encode_check (StsimModel *model, StsimPooler pooler, GError **error)
{
  if (model->tokenizer == NULL) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "model %s has no tokenizer files "
                 "(vocab.txt, or vocab.json and merges.txt)", model->source ? model->source : "(fresh)");
    return FALSE;
  }
  if (pooler == STSIM_POOL_CLS && model->pool_w == NULL) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "pooler 'cls' needs pooler.dense, which this model "
                 "does not have (load it with STSIM_MODEL_POOLER, or use cls_before_pooler)");
    return FALSE;
  }
  if (stsim_pooler_name (pooler) == NULL) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "unknown pooler %d", (int) pooler);
    return FALSE;
  }
  return TRUE;
}

/* Tokenizes all @n sentences into @all_ids (sentence i at start[i],
 * lengths[i] ids), so that errors surface before any compute. */
static gboolean
encode_tokenize (StsimModel *model, const char *const *sentences, gsize n, int max_len, GArray *all_ids,
                 gint64 *start, gint32 *lengths, GError **error)
{
  int max_tokens = stsim_model_max_tokens (model);
  for (gsize i = 0; i < n; i++) {
    g_autoptr(GError) local = NULL;
    start[i] = all_ids->len;
    if (sentences[i] == NULL) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "sentence %" G_GSIZE_FORMAT " is NULL", i);
      return FALSE;
    }
    if (!stsim_tokenizer_encode (model->tokenizer, sentences[i], -1, max_len, all_ids, &local)) {
      g_set_error (error, STSIM_ERROR, local->domain == STSIM_ERROR ? local->code : STSIM_ERROR_FAILED,
                   "sentence %" G_GSIZE_FORMAT ": %s", i, local->message);
      return FALSE;
    }
    lengths[i] = (gint32) (all_ids->len - start[i]);
    if (lengths[i] > max_tokens) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                   "sentence %" G_GSIZE_FORMAT ": %d tokens, more than the %d positions of the model; "
                   "truncate with max_len", i, lengths[i], max_tokens);
      return FALSE;
    }
    if (!check_ids (model, (const gint32 *) all_ids->data + start[i], lengths[i], "sentence", i, error))
      return FALSE;
  }
  return TRUE;
}

/* One encode batch: the packed rows of up to encode_batch sentences and
 * the buffers that carry the hidden states from layer to layer. */
typedef struct {
  gint64    max_rows;
  float    *cur;   /* [max_rows, H]: the current hidden state */
  float    *keep;  /* [max_rows, H]: the earlier layer the pooler needs, or NULL */
  gint32   *ids, *pos;
  StsimSeq *seqs;
  gsize     count; /* sentences in the batch */
  gint64    rows;  /* their tokens */
} EncodeBatch;

/* The batch from sentence order[s]: as many of the next sentences as fit the limits. */
static void
encode_batch_fill (StsimModel *model, EncodeBatch *b, const GArray *all_ids, const gint64 *start,
                   const gint32 *lengths, const gint32 *order, gsize n, gsize s)
{
  b->count = 0;
  b->rows = 0;
  while (s + b->count < n && b->count < (gsize) model->encode_batch
         && (b->count == 0 || b->rows + lengths[order[s + b->count]] <= b->max_rows)) {
    gint32 i = order[s + b->count];
    b->seqs[b->count] = (StsimSeq) { (gint32) b->rows, lengths[i], lengths[i] };
    memcpy (b->ids + b->rows, (const gint32 *) all_ids->data + start[i], (gsize) lengths[i] * sizeof (gint32));
    position_ids (model, b->ids + b->rows, lengths[i], b->pos + b->rows);
    b->rows += lengths[i];
    b->count++;
  }
}

/* The pooled [count, H] vectors of the batch (on @tape), or NULL when an op failed. */
static StsimTensor *
encode_batch_run (StsimModel *model, StsimTape *tape, EncodeBatch *b, StsimPooler pooler)
{
  const gint64 H = model->config.hidden_size, rows = b->rows;
  const int N = model->config.num_layers;
  gboolean need_first = pooler == STSIM_POOL_AVG_FIRST_LAST;
  gboolean need_prev = pooler == STSIM_POOL_AVG_TOP2;

  /* Layer by layer with a rewind in between: no gradients are needed, so
   * only the current hidden state (and the one the pooler keeps) lives on. */
  stsim_tape_reset (tape);
  StsimTensor *x = embed (model, tape, b->ids, b->pos, rows);
  if (x != NULL) {
    memcpy (b->cur, x->data, (gsize) (rows * H) * sizeof (float));
    if (need_prev && N - 1 == 0)
      memcpy (b->keep, b->cur, (gsize) (rows * H) * sizeof (float));
  }
  for (int l = 0; l < N && x != NULL; l++) {
    stsim_tape_reset (tape);
    x = layer_forward (model, tape, l, wrap_rows (tape, b->cur, rows, H), b->seqs, b->count);
    if (x == NULL)
      break;
    memcpy (b->cur, x->data, (gsize) (rows * H) * sizeof (float));
    if ((need_first && l + 1 == 1) || (need_prev && l + 1 == N - 1))
      memcpy (b->keep, b->cur, (gsize) (rows * H) * sizeof (float));
  }
  if (x == NULL)
    return NULL;
  stsim_tape_reset (tape);
  StsimTensor *last = wrap_rows (tape, b->cur, rows, H);
  StsimTensor *kept = b->keep ? wrap_rows (tape, b->keep, rows, H) : NULL;
  return pool_impl (model, tape, b->seqs, b->count, kept, kept, last, pooler);
}

gboolean
stsim_model_encode (StsimModel *model, const char *const *sentences, gsize n,
                    StsimPooler pooler, int max_len, float *out, GError **error)
{
  g_return_val_if_fail (model != NULL && (sentences != NULL || n == 0) && (out != NULL || n == 0), FALSE);
  if (n == 0)
    return TRUE;
  const gint64 H = model->config.hidden_size;
  if (!encode_check (model, pooler, error))
    return FALSE;

  g_autoptr(GArray) all_ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autofree gint64 *start = g_new (gint64, n);
  g_autofree gint32 *lengths = g_new (gint32, n);
  if (!encode_tokenize (model, sentences, n, max_len, all_ids, start, lengths, error))
    return FALSE;
  /* Longest first: the first batch sets the arena's high-water mark. */
  g_autofree gint32 *order = g_new (gint32, n);
  for (gsize i = 0; i < n; i++)
    order[i] = (gint32) i;
  SortCtx sctx = { lengths };
  g_qsort_with_data (order, (gint) n, sizeof (gint32), by_length_desc, &sctx);

  if (model->encode_tape == NULL)
    model->encode_tape = stsim_tape_new (0, 0);
  StsimTape *tape = model->encode_tape;
  stsim_tape_set_training (tape, FALSE);
  stsim_tape_set_grad_enabled (tape, FALSE);

  gint64 budget = MAX (ENCODE_TOKEN_BUDGET, (gint64) lengths[order[0]]);
  gint64 max_rows = MIN (budget, (gint64) model->encode_batch * lengths[order[0]]);
  gboolean keeps = pooler == STSIM_POOL_AVG_FIRST_LAST || pooler == STSIM_POOL_AVG_TOP2;
  g_autofree float *cur = g_new (float, max_rows * H);
  g_autofree float *keep = keeps ? g_new (float, max_rows * H) : NULL;
  g_autofree gint32 *ids = g_new (gint32, max_rows);
  g_autofree gint32 *pos = g_new (gint32, max_rows);
  g_autofree StsimSeq *seqs = g_new (StsimSeq, model->encode_batch);
  EncodeBatch b = { .max_rows = max_rows, .cur = cur, .keep = keep, .ids = ids, .pos = pos, .seqs = seqs };
  gboolean ok = TRUE;

  for (gsize s = 0; s < n;) {
    encode_batch_fill (model, &b, all_ids, start, lengths, order, n, s);
    StsimTensor *pooled = encode_batch_run (model, tape, &b, pooler);
    if (pooled == NULL) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED,
                   "model encode: an op failed (see the critical above); this is a bug in stsim");
      ok = FALSE;
      break;
    }
    for (gsize k = 0; k < b.count; k++)
      memcpy (out + (gsize) order[s + k] * H, pooled->data + k * H, (gsize) H * sizeof (float));
    s += b.count;
  }
  stsim_tape_reset (tape);
  return ok;
}
