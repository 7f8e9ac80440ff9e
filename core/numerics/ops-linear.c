/* ops-linear.c: linear (+ fused bias/activation) and batched matmul.
 *
 * Shape legend: N rows, In in-features, O out-features.
 *   linear forward   x [N, In], W [O, In], b [O]  ->  y [N, O] = act(x·Wᵀ + b)
 *   linear backward  dpre = dy ⊙ act'(.)  ;  dx (+)= dpre·W  ;  dW += dpreᵀ·x  ;  db += Σ_rows dpre
 * All GEMMs go to stsim_k_sgemm (gemm.c: thread-count independent). */
#include "numerics-private.h"
#include "numerics-profile.h"

typedef struct {
  StsimActivation act;
  float *pre;   /* GELU: the pre-activation [N, O]; tanh/relu use the output */
} LinearCtx;

static void
linear_backward (StsimTape *tape, StsimNode *node)
{
  StsimTensor *y = node->out, *x = node->in[0], *w = node->in[1], *b = node->in[2];
  LinearCtx *ctx = node->ctx;
  gint64 O = w->shape[0], In = w->shape[1], N = x->numel / In;
  /* y's gradient is consumed only here, so dpre overwrites it in place. */
  float *dpre = y->grad;
  if (N == 0)
    return;
  if (ctx->act == STSIM_ACT_GELU)
    stsim_k_act_backward (dpre, ctx->pre, N * O, ctx->act);
  else
    stsim_k_act_backward (dpre, y->data, N * O, ctx->act);
  if (stsim_needs_grad (b))
    stsim_k_colsum_acc (tape, stsim_grad_acquire_acc (tape, b), dpre, N, O);
  if (stsim_needs_grad (x)) {
    float beta;
    float *dx = stsim_grad_acquire (tape, x, &beta);
    STSIM_PROF_BEGIN (t0);
    stsim_k_sgemm (FALSE, FALSE, N, In, O, 1.0f, dpre, O, w->data, In, beta, dx, In);
    STSIM_PROF_END (t0, "linear.gemm.bwd", 2.0 * N * In * O);
  }
  if (stsim_needs_grad (w)) {
    float *dw = stsim_grad_acquire_acc (tape, w);
    STSIM_PROF_BEGIN (t0);
    stsim_k_sgemm (TRUE, FALSE, O, In, N, 1.0f, dpre, O, x->data, In, 1.0f, dw, In);
    STSIM_PROF_END (t0, "linear.gemm.bwd", 2.0 * N * In * O);
  }
}

StsimTensor *
stsim_linear_act (StsimTape *tape, StsimTensor *x, StsimTensor *w, StsimTensor *b, StsimActivation act)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!x || !w)
    return NULL;
  char bx[64], bw[64];
  if (w->ndim != 2 || x->ndim < 1 || stsim_tensor_cols (x) != w->shape[1]
      || (b && (b->numel != w->shape[0]))) {
    g_critical ("stsim_linear: x %s does not fit W %s (W is [out, in]) or the bias size",
                stsim_tensor_shape_string (x, bx, sizeof bx), stsim_tensor_shape_string (w, bw, sizeof bw));
    return NULL;
  }
  gint64 O = w->shape[0], In = w->shape[1], N = x->numel / In;
  gint64 shape[STSIM_TENSOR_MAX_DIMS];
  memcpy (shape, x->shape, sizeof shape);
  shape[x->ndim - 1] = O;
  gboolean rg = stsim_tape_wants_grad (tape, x, w, b);
  StsimTensor *y = stsim_tape_out (tape, x->ndim, shape, rg);
  float *pre = y->data;
  if (act == STSIM_ACT_GELU && rg)
    pre = stsim_tape_alloc (tape, (gsize) (N * O) * sizeof (float));
  STSIM_PROF_BEGIN (t0);
  if (N > 0)
    stsim_k_sgemm (FALSE, TRUE, N, O, In, 1.0f, x->data, In, w->data, In, 0.0f, pre, O);
  STSIM_PROF_END (t0, "linear.gemm.fwd", 2.0 * N * In * O);
  STSIM_PROF_BEGIN (t1);
  if (act == STSIM_ACT_GELU && pre == y->data) {
    /* no grad: GELU in place after the bias */
    stsim_k_bias_act_forward (y->data, pre, b ? b->data : NULL, N, O, STSIM_ACT_NONE);
    stsim_k_gelu (y->data, y->data, N * O);
  } else {
    stsim_k_bias_act_forward (y->data, pre, b ? b->data : NULL, N, O, act);
  }
  STSIM_PROF_END (t1, "linear.epilogue.fwd", 0.0);
  if (rg) {
    StsimNode *n = stsim_tape_record (tape, "linear", linear_backward, y, x, w, b);
    LinearCtx *ctx = stsim_tape_alloc (tape, sizeof (LinearCtx));
    ctx->act = act;
    ctx->pre = pre;
    n->ctx = ctx;
  }
  return y;
}

StsimTensor *
stsim_linear (StsimTape *tape, StsimTensor *x, StsimTensor *w, StsimTensor *b)
{
  return stsim_linear_act (tape, x, w, b, STSIM_ACT_NONE);
}

/* ---- batched matmul ------------------------------------------------------ */
/* a [Bt, M, K] (trans_a: [Bt, K, M]), b [Bt, K, N] (trans_b: [Bt, N, K]) or 2-D
 * b shared by every batch -> c [Bt, M, N].
 *   dA = dC·Bᵀ (or B·dCᵀ if trans_a) ; dB = Aᵀ·dC (or dCᵀ·A if trans_b) */
typedef struct {
  gint64 batch, M, N, K;
  gboolean ta, tb, b_shared;
} MatmulCtx;

static void
matmul_backward (StsimTape *tape, StsimNode *node)
{
  MatmulCtx *c = node->ctx;
  StsimTensor *a = node->in[0], *b = node->in[1], *out = node->out;
  gint64 M = c->M, N = c->N, K = c->K;
  gint64 lda = c->ta ? M : K, ldb = c->tb ? K : N;
  if (stsim_needs_grad (a)) {
    float beta;
    float *da = stsim_grad_acquire (tape, a, &beta);
    for (gint64 i = 0; i < c->batch; i++) {
      const float *bb = b->data + (c->b_shared ? 0 : i * K * N);
      const float *dc = out->grad + i * M * N;
      if (!c->ta)  /* dA[M,K] = dC[M,N] · op(B)ᵀ */
        stsim_k_sgemm (FALSE, !c->tb, M, K, N, 1.0f, dc, N, bb, ldb, beta, da + i * M * K, lda);
      else         /* dA[K,M] = op(B) · dCᵀ */
        stsim_k_sgemm (c->tb, TRUE, K, M, N, 1.0f, bb, ldb, dc, N, beta, da + i * M * K, lda);
    }
  }
  if (stsim_needs_grad (b)) {
    float beta;
    float *db = stsim_grad_acquire (tape, b, &beta);
    for (gint64 i = 0; i < c->batch; i++) {
      const float *aa = a->data + i * M * K;
      const float *dc = out->grad + i * M * N;
      float bt = (c->b_shared && i > 0) ? 1.0f : beta;
      float *dst = db + (c->b_shared ? 0 : i * K * N);
      if (!c->tb)  /* dB[K,N] = op(A)ᵀ · dC */
        stsim_k_sgemm (!c->ta, FALSE, K, N, M, 1.0f, aa, lda, dc, N, bt, dst, ldb);
      else         /* dB[N,K] = dCᵀ · op(A) */
        stsim_k_sgemm (TRUE, c->ta, N, K, M, 1.0f, dc, N, aa, lda, bt, dst, ldb);
    }
  }
}

StsimTensor *
stsim_matmul (StsimTape *tape, StsimTensor *a, StsimTensor *b, gboolean trans_a, gboolean trans_b)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!a || !b)
    return NULL;
  char ba[64], bb[64];
  gboolean ok = a->ndim >= 2 && b->ndim >= 2;
  gint64 M = 0, K = 0, N = 0, Kb = 0, batch = 1;
  gboolean shared = b->ndim == 2 && a->ndim > 2;
  if (ok) {
    M = trans_a ? a->shape[a->ndim - 1] : a->shape[a->ndim - 2];
    K = trans_a ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
    Kb = trans_b ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    N = trans_b ? b->shape[b->ndim - 2] : b->shape[b->ndim - 1];
    for (int d = 0; d < a->ndim - 2; d++)
      batch *= a->shape[d];
    ok = K == Kb && (shared || a->ndim == b->ndim);
    for (int d = 0; ok && !shared && d < a->ndim - 2; d++)
      ok = a->shape[d] == b->shape[d];
  }
  if (!ok) {
    g_critical ("stsim_matmul: %s%s and %s%s do not multiply",
                stsim_tensor_shape_string (a, ba, sizeof ba), trans_a ? "ᵀ" : "",
                stsim_tensor_shape_string (b, bb, sizeof bb), trans_b ? "ᵀ" : "");
    return NULL;
  }
  gint64 shape[STSIM_TENSOR_MAX_DIMS];
  memcpy (shape, a->shape, sizeof shape);
  shape[a->ndim - 2] = M;
  shape[a->ndim - 1] = N;
  gboolean rg = stsim_tape_wants_grad (tape, a, b, NULL);
  StsimTensor *c = stsim_tape_out (tape, a->ndim, shape, rg);
  gint64 lda = trans_a ? M : K, ldb = trans_b ? K : N;
  for (gint64 i = 0; i < batch; i++)
    if (M > 0 && N > 0)
      stsim_k_sgemm (trans_a, trans_b, M, N, K, 1.0f,
                     a->data + i * M * K, lda, b->data + (shared ? 0 : i * K * N), ldb, 0.0f, c->data + i * M * N, N);
  if (rg) {
    StsimNode *n = stsim_tape_record (tape, "matmul", matmul_backward, c, a, b, NULL);
    MatmulCtx *ctx = stsim_tape_alloc (tape, sizeof (MatmulCtx));
    *ctx = (MatmulCtx) { batch, M, N, K, trans_a, trans_b, shared };
    n->ctx = ctx;
  }
  return c;
}
