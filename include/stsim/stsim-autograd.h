/* stsim-autograd.h: reverse-mode autograd over a tape of coarse, fused ops.
 *
 * Contract
 * - A StsimTape records the ops of one step. Every op below allocates its
 *   output (and whatever it saves for backward) in the tape's arena, computes
 *   the forward pass immediately and, if any input requires grad and grad
 *   mode is on, appends one node to the tape. An op whose inputs need no
 *   grad records nothing and saves nothing: a frozen generator or teacher
 *   costs a forward pass only.
 * - stsim_tape_backward() walks the tape in reverse. Gradients of
 *   activations are arena memory; gradients of parameters accumulate into
 *   their store's gradient block (zero it once per step).
 * - stsim_tape_reset() after the optimizer step forgets every tensor of the
 *   step and rewinds the arena.
 * - Shape errors are programmer errors: the op logs a critical and returns
 *   NULL, and every op returns NULL when given NULL, so a loss built from a
 *   chain of ops can be checked once at the end.
 * - Dropout masks come from Philox4x32-10 keyed by (seed, step, op index,
 *   element): identical for a given seed whatever the thread count. With
 *   row places (stsim_tape_set_places) the element is the one the rows have
 *   in the single-process batch, so N ranks draw one process's masks.
 *
 * Shape legend: N rows (tokens or sentences), C/D/H columns, S sequences,
 * nh heads, dh = H/nh, L padded length, V vocabulary.
 *
 * Writing a loss: InfoNCE over two views z1, z2 [B, D] with temperature tau
 *
 *   StsimTensor *sim    = stsim_cosine_matrix (tape, z1, z2);          // [B, B]
 *   StsimTensor *logits = stsim_scale (tape, sim, 1.0f / tau);
 *   g_autofree gint32 *target = g_new (gint32, B);
 *   for (gint64 i = 0; i < B; i++) target[i] = i;
 *   StsimTensor *loss = stsim_cross_entropy (tape, logits, target, -100); // scalar
 *   stsim_tape_backward (tape, loss, NULL, &error);
 */
#pragma once
#include <glib.h>
#include "stsim-export.h"
#include "stsim-error.h"
#include "stsim-tensor.h"

G_BEGIN_DECLS

typedef struct _StsimTape StsimTape;

/* @seed keys dropout. @initial_arena_bytes may be 0 (grows after step 1). */
STSIM_API
StsimTape  *stsim_tape_new  (guint64 seed, gsize initial_arena_bytes);
STSIM_API
void        stsim_tape_free (StsimTape *tape);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimTape, stsim_tape_free)

STSIM_API
StsimArena *stsim_tape_get_arena (StsimTape *tape);
/* Forgets the step's tensors and nodes, rewinds the arena. */
STSIM_API
void        stsim_tape_reset (StsimTape *tape);
/* The step number that keys dropout masks; the trainer sets it before the
 * forward pass. Also resets the per-step op counter. */
STSIM_API
void        stsim_tape_set_step (StsimTape *tape, guint64 step);
STSIM_API
guint64     stsim_tape_get_step (const StsimTape *tape);
STSIM_API
guint64     stsim_tape_get_seed (const StsimTape *tape);
/* Grad mode (default on): off records nothing (evaluation passes). */
STSIM_API
void        stsim_tape_set_grad_enabled (StsimTape *tape, gboolean enabled);
STSIM_API
gboolean    stsim_tape_get_grad_enabled (const StsimTape *tape);
/* Training mode (default on): off turns dropout into the identity. */
STSIM_API
void        stsim_tape_set_training (StsimTape *tape, gboolean training);
STSIM_API
gboolean    stsim_tape_get_training (const StsimTape *tape);
STSIM_API
gsize       stsim_tape_get_n_nodes (const StsimTape *tape);
/* By default the backward frees an op output's gradient as soon as the op's
 * own backward has run (nothing reads it later), as PyTorch does for
 * non-leaf tensors; leaves and parameters keep theirs. TRUE keeps every
 * gradient until the reset (tests that read intermediate gradients). */
STSIM_API
void        stsim_tape_set_keep_grads (StsimTape *tape, gboolean keep);

/* Backpropagates from @out. @dout NULL means a seed of 1.0 (out must then
 * have one element); otherwise @dout holds dLoss/dOut (out->numel floats).
 * Each node's scratch memory is released once its backward has run.
 * Fails if @out does not depend on anything that requires grad, or if a
 * gradient becomes NaN/Inf (STSIM_ERROR_NUMERIC naming the op). */
STSIM_API
gboolean    stsim_tape_backward (StsimTape *tape, StsimTensor *out, const float *dout, GError **error);

/* ---- tensors on the tape (arena memory, valid until reset) ----------- */
STSIM_API
StsimTensor *stsim_tensor_new   (StsimTape *tape, int ndim, const gint64 *shape);   /* uninitialised */
STSIM_API
StsimTensor *stsim_tensor_zeros (StsimTape *tape, int ndim, const gint64 *shape);
/* Copies @data (numel floats). */
STSIM_API
StsimTensor *stsim_tensor_from_data (StsimTape *tape, int ndim, const gint64 *shape, const float *data);
/* Wraps caller memory without copying; the caller keeps it alive until reset. */
STSIM_API
StsimTensor *stsim_tensor_wrap (StsimTape *tape, int ndim, const gint64 *shape, float *data);
STSIM_API
StsimTensor *stsim_tensor_new_2d (StsimTape *tape, gint64 rows, gint64 cols);

/* Zero-copy views (share data; gradients flow back without a node). */
STSIM_API
StsimTensor *stsim_reshape    (StsimTape *tape, StsimTensor *x, int ndim, const gint64 *shape);
/* Rows [start, start+n) of x seen as [rows, cols]: [n, cols]. */
STSIM_API
StsimTensor *stsim_slice_rows (StsimTape *tape, StsimTensor *x, gint64 start, gint64 n);

/* ---- sequence layout (attention and pooling) -------------------------- */
/* One sequence: query rows [offset, offset+rows) and keys [offset, offset+keys).
 * Padded [B, L] batch: offset = b*L, rows = L, keys = len(b) (pad keys get
 * HF's additive -10000, i.e. weight exactly 0 in fp32; pad query rows are
 * still computed). Packed batch: offset = running sum, rows = keys = len(b).
 * keys == 0 attends to all rows (what -10000 on every key means in HF). */
typedef struct {
  gint32 offset;
  gint32 rows;
  gint32 keys;
} StsimSeq;

/* ---- place in the single-process batch (data-parallel training) ------- */
/* Where one sequence of this process's rows sits in the layout that one
 * process would run for the whole batch (docs/distributed.md): its rows
 * [local_row, local_row + rows) here are rows [global_row, global_row + rows)
 * there, and its attention probabilities (global_rows × keys per head, heads
 * one after the other) follow those of the sequences before it, which hold
 * global_pairs = Σ rows·keys per head. Dropout keyed by these offsets draws
 * for a sequence the mask one process draws for it, on any number of ranks. */
typedef struct {
  gint64 local_row;
  gint64 rows;
  gint64 global_row;
  gint64 global_rows;   /* >= rows: a padded layout pads to the whole batch's width */
  gint64 global_pairs;
} StsimRowPlace;

/* Keys the tape's dropout and attention dropout by @places (@n sequences in
 * row order, copied) until called again; NULL (or n = 0) returns to the
 * default, the tensor's own element positions. Dropout then needs a tensor
 * whose rows are exactly the places' rows, attention the same sequences. */
STSIM_API
void         stsim_tape_set_places (StsimTape *tape, const StsimRowPlace *places, gsize n);

/* ---- linear algebra ---------------------------------------------------- */
typedef enum {
  STSIM_ACT_NONE,
  STSIM_ACT_GELU,   /* erf form */
  STSIM_ACT_TANH,
  STSIM_ACT_RELU,
} StsimActivation;

/* y = x·Wᵀ + b.  x [.., in], W [out, in], b [out] or NULL -> y [.., out]. */
STSIM_API
StsimTensor *stsim_linear     (StsimTape *tape, StsimTensor *x, StsimTensor *w, StsimTensor *b);
/* act(x·Wᵀ + b) in one pass after the GEMM (saves the pre-activation). */
STSIM_API
StsimTensor *stsim_linear_act (StsimTape *tape, StsimTensor *x, StsimTensor *w, StsimTensor *b,
                               StsimActivation act);
/* Batched: a [.., M, K] (or [.., K, M] if trans_a), b [.., K, N] (or [.., N, K]
 * if trans_b) with equal leading dims -> [.., M, N]. 2-D b broadcasts. */
STSIM_API
StsimTensor *stsim_matmul (StsimTape *tape, StsimTensor *a, StsimTensor *b, gboolean trans_a, gboolean trans_b);

/* Fused multi-head self-attention. q, k, v [N, H] (or pass the same [N, 3H]
 * tensor to stsim_attention_qkv with columns q|k|v). Per sequence and head:
 * softmax(Q·Kᵀ/sqrt(dh) masked to the valid keys), dropout(p) on the
 * probabilities, times V. Output [N, H]; rows outside every sequence are 0. */
STSIM_API
StsimTensor *stsim_attention     (StsimTape *tape, StsimTensor *q, StsimTensor *k, StsimTensor *v,
                                  const StsimSeq *seqs, gsize n_seqs, int n_heads, float p_drop);
STSIM_API
StsimTensor *stsim_attention_qkv (StsimTape *tape, StsimTensor *qkv,
                                  const StsimSeq *seqs, gsize n_seqs, int n_heads, float p_drop);

/* ---- elementwise -------------------------------------------------------- */
STSIM_API
StsimTensor *stsim_add   (StsimTape *tape, StsimTensor *a, StsimTensor *b);   /* same shape, or b [cols] broadcast over rows */
STSIM_API
StsimTensor *stsim_sub   (StsimTape *tape, StsimTensor *a, StsimTensor *b);   /* same shape */
STSIM_API
StsimTensor *stsim_mul   (StsimTape *tape, StsimTensor *a, StsimTensor *b);   /* same shape */
STSIM_API
StsimTensor *stsim_scale (StsimTape *tape, StsimTensor *x, float alpha);
/* alpha·a + beta·b (same shape): weighted loss sums. */
STSIM_API
StsimTensor *stsim_axpby (StsimTape *tape, float alpha, StsimTensor *a, float beta, StsimTensor *b);
STSIM_API
StsimTensor *stsim_gelu  (StsimTape *tape, StsimTensor *x);
STSIM_API
StsimTensor *stsim_tanh  (StsimTape *tape, StsimTensor *x);
STSIM_API
StsimTensor *stsim_relu  (StsimTape *tape, StsimTensor *x);
STSIM_API
StsimTensor *stsim_exp   (StsimTape *tape, StsimTensor *x);
/* log(max(x, floor)); the gradient is 1/x where x > floor, else 0. */
STSIM_API
StsimTensor *stsim_log   (StsimTape *tape, StsimTensor *x, float floor);

/* Inverted dropout: keep with 1-p, scale by 1/(1-p). Identity (x itself)
 * when p == 0 or the tape is not training. */
STSIM_API
StsimTensor *stsim_dropout (StsimTape *tape, StsimTensor *x, float p);
/* Same with a given mask (numel bytes, nonzero = keep), for tests. */
STSIM_API
StsimTensor *stsim_dropout_with_mask (StsimTape *tape, StsimTensor *x, const guint8 *keep, float p);
/* The mask stsim_dropout would draw for the tape's next random op. */
STSIM_API
void         stsim_dropout_mask (guint64 seed, guint64 step, guint32 op_index, gint64 n, float p, guint8 *keep);

/* ---- normalisation ------------------------------------------------------ */
/* Over the last dim, biased variance: (x-μ)/sqrt(σ²+eps)·γ + β. γ, β [cols] (either may be NULL). */
STSIM_API
StsimTensor *stsim_layer_norm     (StsimTape *tape, StsimTensor *x, StsimTensor *gamma, StsimTensor *beta, float eps);
/* LayerNorm(x + residual), one pass (post-LN transformer). */
STSIM_API
StsimTensor *stsim_add_layer_norm (StsimTape *tape, StsimTensor *x, StsimTensor *residual,
                                   StsimTensor *gamma, StsimTensor *beta, float eps);
/* Training-mode batch norm of x [N, C] over rows with batch statistics
 * (biased variance). γ, β [C] or both NULL (affine=False). If running_mean /
 * running_var (C floats each) are given they are updated as PyTorch does,
 * outside the tape: r = (1-momentum)·r + momentum·stat, with the UNBIASED
 * variance. */
STSIM_API
StsimTensor *stsim_batch_norm (StsimTape *tape, StsimTensor *x, StsimTensor *gamma, StsimTensor *beta,
                               float *running_mean, float *running_var, float momentum, float eps);
/* x / max(‖x‖₂, eps) per row. */
STSIM_API
StsimTensor *stsim_l2_normalize (StsimTape *tape, StsimTensor *x, float eps);

/* ---- softmax family and losses ----------------------------------------- */
STSIM_API
StsimTensor *stsim_softmax     (StsimTape *tape, StsimTensor *x);   /* over the last dim */
STSIM_API
StsimTensor *stsim_log_softmax (StsimTape *tape, StsimTensor *x);
/* Mean over rows whose target != ignore_index of -log softmax(logits)[target].
 * logits [N, C], targets N ints in [0, C) or ignore_index. Scalar; 0 when
 * every row is ignored (PyTorch gives NaN there; we keep training alive). */
STSIM_API
StsimTensor *stsim_cross_entropy (StsimTape *tape, StsimTensor *logits, const gint32 *targets, gint32 ignore_index);
/* Two-class CE over logits [N, 2] with labels in {0,1}: Σ w_i·ce_i / Σ w_i,
 * weights NULL = all 1 (a 0/1 mask selects rows). Scalar. */
STSIM_API
StsimTensor *stsim_cross_entropy_2class (StsimTape *tape, StsimTensor *logits, const gint32 *labels,
                                         const float *weights);
/* -(1/N) Σ_i Σ_j q_ij · log softmax(logits_i)_j with fixed target
 * distributions q [N, C] (no grad). exclude_diag drops column j == i from
 * the softmax (and q_ii must be 0): ListNet. */
STSIM_API
StsimTensor *stsim_soft_cross_entropy (StsimTape *tape, StsimTensor *logits, const float *q, gboolean exclude_diag);
/* y[i,k] = log Σ_{m>=k} exp(x[i,m]) (reverse cumulative logsumexp): ListMLE. */
STSIM_API
StsimTensor *stsim_logcumsumexp_rev (StsimTape *tape, StsimTensor *x);
/* Cosine similarity matrix of rows: a [N, D], b [M, D] -> [N, M]. Each norm
 * is clamped at 1e-8 separately (PyTorch >= 1.12 cosine_similarity). */
STSIM_API
StsimTensor *stsim_cosine_matrix (StsimTape *tape, StsimTensor *a, StsimTensor *b);

/* ---- reductions, pooling, shape ----------------------------------------- */
STSIM_API
StsimTensor *stsim_sum  (StsimTape *tape, StsimTensor *x);   /* scalar */
STSIM_API
StsimTensor *stsim_mean (StsimTape *tape, StsimTensor *x);   /* scalar */
/* Per row sum over the last dim: [N, C] -> [N]. */
STSIM_API
StsimTensor *stsim_row_sum (StsimTape *tape, StsimTensor *x);
/* Mean of each sequence's valid rows [offset, offset+keys) of x [N, H] -> [S, H]. */
STSIM_API
StsimTensor *stsim_mean_pool (StsimTape *tape, StsimTensor *x, const StsimSeq *seqs, gsize n_seqs);
/* Stacks [n_i, C] tensors along rows -> [Σ n_i, C]. */
STSIM_API
StsimTensor *stsim_concat_rows (StsimTape *tape, StsimTensor *const *xs, gsize n);
/* Joins [N, c_i] tensors along the last dim -> [N, Σ c_i]. */
STSIM_API
StsimTensor *stsim_concat_cols (StsimTape *tape, StsimTensor *const *xs, gsize n);
/* Columns [start, start+n) of x [N, C] -> [N, n] (copy). */
STSIM_API
StsimTensor *stsim_slice_cols (StsimTape *tape, StsimTensor *x, gint64 start, gint64 n);
/* Rows idx[0..n) of x [R, C] -> [n, C]; backward scatter-adds. (CLS rows, views.) */
STSIM_API
StsimTensor *stsim_gather_rows (StsimTape *tape, StsimTensor *x, const gint32 *idx, gint64 n);
/* x [R, C] with rows idx[i] replaced by src row i (idx distinct): DiffCSE's
 * sentence vector in place of the position-0 embedding. */
STSIM_API
StsimTensor *stsim_replace_rows (StsimTape *tape, StsimTensor *x, const gint32 *idx, StsimTensor *src);
/* Per row i, y[i,j] = x[i, idx[i*K+j]]: x [N, C] -> [N, K] (sorting for ListMLE). */
STSIM_API
StsimTensor *stsim_gather_cols (StsimTape *tape, StsimTensor *x, const gint32 *idx, gint64 k);
/* Embedding lookup: table [V, H], ids n ints in [0, V) -> [n, H]; backward
 * scatter-adds into the table's gradient. Out-of-range ids: critical + NULL. */
STSIM_API
StsimTensor *stsim_embedding (StsimTape *tape, StsimTensor *table, const gint32 *ids, gint64 n);

/* ---- helpers without gradient (plain arrays) ---------------------------- */
/* Row-wise softmax of x [rows, cols] into y (may alias x). */
STSIM_API
void stsim_softmax_rows (const float *x, float *y, gint64 rows, gint64 cols);
/* Per row, the column indices sorted by descending x (stable). */
STSIM_API
void stsim_argsort_rows_desc (const float *x, gint64 rows, gint64 cols, gint32 *idx);

G_END_DECLS
