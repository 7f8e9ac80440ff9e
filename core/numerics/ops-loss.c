/* ops-loss.c: softmax family, cross-entropies, reverse logcumsumexp and the
 * cosine-similarity matrix.
 *
 * Shape legend: N rows, C classes/columns, D features, M rows of b.
 *   softmax       y = softmax(x) per row           dx = y ⊙ (dy - Σ dy⊙y)
 *   log_softmax   y = x - lse(x)                   dx = dy - softmax(x)·Σ dy
 *   cross_entropy L = Σ w_i (lse_i - x_i,t_i) / Σ w_i      dx_i = g·w_i/W·(softmax_i - onehot(t_i))
 *   soft CE       L = -(1/N) Σ_ij q_ij log p_ij    dx_ij = g/N·(p_ij Σ_j q_ij - q_ij)
 *   logcumsumexp  y_k = log Σ_{m>=k} e^{x_m}       dx_m = Σ_{k<=m} dy_k e^{x_m - y_k}
 *   cosine        S = â·b̂ᵀ, â = a/max(‖a‖,1e-8)    dâ = dS·b̂ ; db̂ = dSᵀ·â ; then L2-normalise backward
 * Probabilities are recomputed from the logits and the saved per-row lse
 * in backward, so an [N, V] vocabulary softmax is never stored twice. */
#include "numerics-private.h"

void stsim_l2_normalize_rows (float *y, float *norms, const float *x, gint64 N, gint64 C, float eps);
void stsim_l2_normalize_rows_backward (float *dx, float beta, const float *dy, const float *y, const float *norms,
                                       gint64 N, gint64 C, float eps);

static float
row_lse (const float *x, gint64 C, gint64 skip)
{
  float m = -INFINITY;
  for (gint64 j = 0; j < C; j++)
    if (j != skip && x[j] > m)
      m = x[j];
  double s = 0.0;
  for (gint64 j = 0; j < C; j++)
    if (j != skip)
      s += expf (x[j] - m);
  return m + (float) log (s);
}

/* ---- softmax / log_softmax ---------------------------------------------- */

typedef struct { gboolean log; } SmCtx;

static void
softmax_backward (StsimTape *tape, StsimNode *node)
{
  SmCtx *c = node->ctx;
  StsimTensor *x = node->in[0], *y = node->out;
  gint64 N = stsim_tensor_rows (x), C = stsim_tensor_cols (x);
  float beta;
  float *dx = stsim_grad_acquire (tape, x, &beta);
#pragma omp parallel for schedule(static) if (N * C > STSIM_PAR_MIN)
  for (gint64 r = 0; r < N; r++) {
    const float *yr = y->data + r * C, *dyr = y->grad + r * C;
    float *dxr = dx + r * C;
    float s = 0.0f;
    if (c->log) {
      for (gint64 j = 0; j < C; j++)
        s += dyr[j];
      for (gint64 j = 0; j < C; j++)
        dxr[j] = (beta == 0.0f ? 0.0f : dxr[j]) + dyr[j] - expf (yr[j]) * s;
    } else {
      for (gint64 j = 0; j < C; j++)
        s += dyr[j] * yr[j];
      for (gint64 j = 0; j < C; j++)
        dxr[j] = (beta == 0.0f ? 0.0f : dxr[j]) + yr[j] * (dyr[j] - s);
    }
  }
}

static StsimTensor *
softmax_impl (StsimTape *tape, StsimTensor *x, gboolean log)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!x)
    return NULL;
  g_return_val_if_fail (x->ndim >= 1, NULL);
  gboolean rg = stsim_tape_wants_grad (tape, x, NULL, NULL);
  StsimTensor *y = stsim_tape_out_like (tape, x, rg);
  gint64 N = stsim_tensor_rows (x), C = stsim_tensor_cols (x);
#pragma omp parallel for schedule(static) if (N * C > STSIM_PAR_MIN)
  for (gint64 r = 0; r < N; r++) {
    const float *xr = x->data + r * C;
    float *yr = y->data + r * C;
    float lse = row_lse (xr, C, -1);
    for (gint64 j = 0; j < C; j++)
      yr[j] = log ? xr[j] - lse : expf (xr[j] - lse);
  }
  if (rg) {
    StsimNode *n = stsim_tape_record (tape, log ? "log_softmax" : "softmax", softmax_backward, y, x, NULL, NULL);
    SmCtx *c = stsim_tape_alloc (tape, sizeof (SmCtx));
    c->log = log;
    n->ctx = c;
  }
  return y;
}

StsimTensor *stsim_softmax (StsimTape *tape, StsimTensor *x) { return softmax_impl (tape, x, FALSE); }
StsimTensor *stsim_log_softmax (StsimTape *tape, StsimTensor *x) { return softmax_impl (tape, x, TRUE); }

void
stsim_softmax_rows (const float *x, float *y, gint64 rows, gint64 cols)
{
  for (gint64 r = 0; r < rows; r++) {
    float lse = row_lse (x + r * cols, cols, -1);
    for (gint64 j = 0; j < cols; j++)
      y[r * cols + j] = expf (x[r * cols + j] - lse);
  }
}

/* ---- cross-entropy with integer targets ------------------------------------ */

typedef struct {
  gint32 *targets;
  float  *w;       /* per-row weight already divided by Σw (0 for ignored rows) */
  float  *lse;
} CeCtx;

static void
ce_backward (StsimTape *tape, StsimNode *node)
{
  CeCtx *c = node->ctx;
  StsimTensor *x = node->in[0];
  gint64 N = stsim_tensor_rows (x), C = stsim_tensor_cols (x);
  float g = node->out->grad[0], beta;
  float *dx = stsim_grad_acquire (tape, x, &beta);
#pragma omp parallel for schedule(static) if (N * C > STSIM_PAR_MIN)
  for (gint64 r = 0; r < N; r++) {
    const float *xr = x->data + r * C;
    float *dxr = dx + r * C;
    float f = g * c->w[r];
    if (f == 0.0f) {
      if (beta == 0.0f)
        memset (dxr, 0, sizeof (float) * C);
      continue;
    }
    for (gint64 j = 0; j < C; j++) {
      float d = f * (expf (xr[j] - c->lse[r]) - (j == c->targets[r] ? 1.0f : 0.0f));
      dxr[j] = (beta == 0.0f ? 0.0f : dxr[j]) + d;
    }
  }
}

static StsimTensor *
ce_impl (StsimTape *tape, const char *name, StsimTensor *x, const gint32 *targets, const float *weights, gint32 ignore)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!x)
    return NULL;
  g_return_val_if_fail (targets != NULL, NULL);
  gint64 N = stsim_tensor_rows (x), C = stsim_tensor_cols (x);
  char b1[64];
  if (x->ndim < 1 || C < 1) {
    g_critical ("stsim_%s: logits %s need a class dimension", name, stsim_tensor_shape_string (x, b1, sizeof b1));
    return NULL;
  }
  CeCtx *c = stsim_tape_alloc (tape, sizeof (CeCtx));
  c->targets = stsim_tape_alloc (tape, sizeof (gint32) * MAX (N, 1));
  c->w = stsim_tape_alloc (tape, sizeof (float) * MAX (N, 1));
  c->lse = stsim_tape_alloc (tape, sizeof (float) * MAX (N, 1));
  double wsum = 0.0;
  for (gint64 r = 0; r < N; r++) {
    gint32 t = targets[r];
    float w = weights ? weights[r] : 1.0f;
    if (t == ignore) {
      w = 0.0f;
      t = 0;
    } else if (t < 0 || t >= C) {
      g_critical ("stsim_%s: target %d of row %" G_GINT64_FORMAT " is outside [0, %" G_GINT64_FORMAT ") "
                  "and is not the ignore index %d", name, t, r, C, ignore);
      return NULL;
    }
    if (!(w >= 0.0f) || !isfinite (w)) {
      g_critical ("stsim_%s: weight %g of row %" G_GINT64_FORMAT " must be finite and >= 0", name, w, r);
      return NULL;
    }
    c->targets[r] = t;
    c->w[r] = w;
    wsum += w;
  }
  double loss = 0.0;
  for (gint64 r = 0; r < N; r++) {
    if (c->w[r] == 0.0f) {
      c->lse[r] = 0.0f;
      continue;
    }
    c->lse[r] = row_lse (x->data + r * C, C, -1);
    loss += (double) c->w[r] * (c->lse[r] - x->data[r * C + c->targets[r]]);
    c->w[r] = (float) (c->w[r] / wsum);
  }
  if (wsum > 0.0)
    loss /= wsum;
  gboolean rg = stsim_tape_wants_grad (tape, x, NULL, NULL);
  StsimTensor *y = stsim_tape_out (tape, 0, NULL, rg);
  y->data[0] = (float) loss;
  if (rg) {
    StsimNode *n = stsim_tape_record (tape, name, ce_backward, y, x, NULL, NULL);
    n->ctx = c;
  }
  return y;
}

StsimTensor *
stsim_cross_entropy (StsimTape *tape, StsimTensor *logits, const gint32 *targets, gint32 ignore_index)
{
  return ce_impl (tape, "cross_entropy", logits, targets, NULL, ignore_index);
}

StsimTensor *
stsim_cross_entropy_2class (StsimTape *tape, StsimTensor *logits, const gint32 *labels, const float *weights)
{
  if (!logits)
    return NULL;
  if (stsim_tensor_cols (logits) != 2) {
    char b1[64];
    g_critical ("stsim_cross_entropy_2class: logits %s must be [N, 2]", stsim_tensor_shape_string (logits, b1, sizeof b1));
    return NULL;
  }
  return ce_impl (tape, "cross_entropy_2class", logits, labels, weights, G_MININT32);
}

/* ---- soft-target cross-entropy (ListNet) ----------------------------------- */

typedef struct { float *q, *lse; gboolean diag; } SoftCeCtx;

static void
soft_ce_backward (StsimTape *tape, StsimNode *node)
{
  SoftCeCtx *c = node->ctx;
  StsimTensor *x = node->in[0];
  gint64 N = stsim_tensor_rows (x), C = stsim_tensor_cols (x);
  float g = node->out->grad[0] / (float) MAX (N, 1), beta;
  float *dx = stsim_grad_acquire (tape, x, &beta);
  for (gint64 r = 0; r < N; r++) {
    const float *xr = x->data + r * C, *qr = c->q + r * C;
    gint64 skip = c->diag ? r : -1;
    float qs = 0.0f;
    for (gint64 j = 0; j < C; j++)
      if (j != skip)
        qs += qr[j];
    for (gint64 j = 0; j < C; j++) {
      float d = j == skip ? 0.0f : g * (expf (xr[j] - c->lse[r]) * qs - qr[j]);
      dx[r * C + j] = (beta == 0.0f ? 0.0f : dx[r * C + j]) + d;
    }
  }
}

StsimTensor *
stsim_soft_cross_entropy (StsimTape *tape, StsimTensor *logits, const float *q, gboolean exclude_diag)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!logits)
    return NULL;
  g_return_val_if_fail (q != NULL && logits->ndim >= 1, NULL);
  gint64 N = stsim_tensor_rows (logits), C = stsim_tensor_cols (logits);
  SoftCeCtx *c = stsim_tape_alloc (tape, sizeof (SoftCeCtx));
  c->q = stsim_tape_alloc (tape, sizeof (float) * MAX (N * C, 1));
  memcpy (c->q, q, sizeof (float) * N * C);
  c->lse = stsim_tape_alloc (tape, sizeof (float) * MAX (N, 1));
  c->diag = exclude_diag;
  double loss = 0.0;
  for (gint64 r = 0; r < N; r++) {
    const float *xr = logits->data + r * C;
    gint64 skip = exclude_diag ? r : -1;
    c->lse[r] = row_lse (xr, C, skip);
    for (gint64 j = 0; j < C; j++) {
      if (j == skip)
        continue;
      if (!isfinite (c->q[r * C + j]) || c->q[r * C + j] < 0.0f) {
        g_critical ("stsim_soft_cross_entropy: target probability q[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] = %g "
                    "must be finite and >= 0", r, j, c->q[r * C + j]);
        return NULL;
      }
      loss -= (double) c->q[r * C + j] * (xr[j] - c->lse[r]);
    }
  }
  loss /= (double) MAX (N, 1);
  gboolean rg = stsim_tape_wants_grad (tape, logits, NULL, NULL);
  StsimTensor *y = stsim_tape_out (tape, 0, NULL, rg);
  y->data[0] = (float) loss;
  if (rg) {
    StsimNode *n = stsim_tape_record (tape, "soft_cross_entropy", soft_ce_backward, y, logits, NULL, NULL);
    n->ctx = c;
  }
  return y;
}

/* ---- reverse logcumsumexp (ListMLE) --------------------------------------- */

static void
lcse_backward (StsimTape *tape, StsimNode *node)
{
  StsimTensor *x = node->in[0], *y = node->out;
  gint64 N = stsim_tensor_rows (x), C = stsim_tensor_cols (x);
  float beta;
  float *dx = stsim_grad_acquire (tape, x, &beta);
  for (gint64 r = 0; r < N; r++) {
    const float *xr = x->data + r * C, *yr = y->data + r * C, *dyr = y->grad + r * C;
    double m = -INFINITY;
    for (gint64 j = 0; j < C; j++)
      m = MAX (m, xr[j]);
    double acc = 0.0;
    for (gint64 j = 0; j < C; j++) {
      acc += dyr[j] * exp (m - yr[j]);
      float d = (float) (exp (xr[j] - m) * acc);
      dx[r * C + j] = (beta == 0.0f ? 0.0f : dx[r * C + j]) + d;
    }
  }
}

StsimTensor *
stsim_logcumsumexp_rev (StsimTape *tape, StsimTensor *x)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!x)
    return NULL;
  g_return_val_if_fail (x->ndim >= 1, NULL);
  gboolean rg = stsim_tape_wants_grad (tape, x, NULL, NULL);
  StsimTensor *y = stsim_tape_out_like (tape, x, rg);
  gint64 N = stsim_tensor_rows (x), C = stsim_tensor_cols (x);
  for (gint64 r = 0; r < N; r++) {
    const float *xr = x->data + r * C;
    double m = -INFINITY;
    for (gint64 j = 0; j < C; j++)
      m = MAX (m, xr[j]);
    double s = 0.0;
    for (gint64 j = C - 1; j >= 0; j--) {
      s += exp (xr[j] - m);
      y->data[r * C + j] = (float) (m + log (s));
    }
  }
  if (rg)
    stsim_tape_record (tape, "logcumsumexp_rev", lcse_backward, y, x, NULL, NULL);
  return y;
}

/* ---- cosine-similarity matrix ---------------------------------------------- */

#define COS_EPS 1e-8f

typedef struct { float *ah, *bh, *na, *nb; } CosCtx;

static void
cosine_backward (StsimTape *tape, StsimNode *node)
{
  CosCtx *c = node->ctx;
  StsimTensor *a = node->in[0], *b = node->in[1], *s = node->out;
  gint64 N = stsim_tensor_rows (a), M = stsim_tensor_rows (b), D = stsim_tensor_cols (a);
  float *tmp = stsim_tape_alloc (tape, sizeof (float) * MAX (MAX (N, M) * D, 1));
  float beta;
  if (stsim_needs_grad (a)) {
    stsim_k_sgemm (FALSE, FALSE, N, D, M, 1.0f, s->grad, M, c->bh, D, 0.0f, tmp, D);
    float *da = stsim_grad_acquire (tape, a, &beta);
    stsim_l2_normalize_rows_backward (da, beta, tmp, c->ah, c->na, N, D, COS_EPS);
  }
  if (stsim_needs_grad (b)) {
    stsim_k_sgemm (TRUE, FALSE, M, D, N, 1.0f, s->grad, M, c->ah, D, 0.0f, tmp, D);
    float *db = stsim_grad_acquire (tape, b, &beta);
    stsim_l2_normalize_rows_backward (db, beta, tmp, c->bh, c->nb, M, D, COS_EPS);
  }
}

StsimTensor *
stsim_cosine_matrix (StsimTape *tape, StsimTensor *a, StsimTensor *b)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!a || !b)
    return NULL;
  char b1[64], b2[64];
  if (a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[1]) {
    g_critical ("stsim_cosine_matrix: a %s and b %s must be [N, D] and [M, D]",
                stsim_tensor_shape_string (a, b1, sizeof b1), stsim_tensor_shape_string (b, b2, sizeof b2));
    return NULL;
  }
  gint64 N = a->shape[0], M = b->shape[0], D = a->shape[1];
  CosCtx *c = stsim_tape_alloc (tape, sizeof (CosCtx));
  c->ah = stsim_tape_alloc (tape, sizeof (float) * MAX (N * D, 1));
  c->bh = stsim_tape_alloc (tape, sizeof (float) * MAX (M * D, 1));
  c->na = stsim_tape_alloc (tape, sizeof (float) * MAX (N, 1));
  c->nb = stsim_tape_alloc (tape, sizeof (float) * MAX (M, 1));
  stsim_l2_normalize_rows (c->ah, c->na, a->data, N, D, COS_EPS);
  stsim_l2_normalize_rows (c->bh, c->nb, b->data, M, D, COS_EPS);
  gboolean rg = stsim_tape_wants_grad (tape, a, b, NULL);
  gint64 shape[2] = { N, M };
  StsimTensor *s = stsim_tape_out (tape, 2, shape, rg);
  if (N > 0 && M > 0)
    stsim_k_sgemm (FALSE, TRUE, N, M, D, 1.0f, c->ah, D, c->bh, D, 0.0f, s->data, M);
  if (rg) {
    StsimNode *n = stsim_tape_record (tape, "cosine_matrix", cosine_backward, s, a, b, NULL);
    n->ctx = c;
  }
  return s;
}
