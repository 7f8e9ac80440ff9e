/* ops-norm.c: layer norm (optionally fused with the residual add), batch
 * norm (training mode) and row-wise L2 normalisation.
 *
 * Shape legend: N rows, C columns.
 *   layer norm   s = x (+ res) [N, C]; μ, rstd per row; x̂ = (s-μ)·rstd; y = x̂⊙γ + β
 *                g = dy⊙γ ; ds = rstd·(g - mean(g) - x̂·mean(g⊙x̂)) ; dγ += Σ_rows dy⊙x̂ ; dβ += Σ_rows dy
 *   batch norm   μ, σ² (biased) per column over rows; x̂ = (x-μ)/sqrt(σ²+eps); y = x̂⊙γ + β
 *                dx = rstd/N · (N·g - Σ_rows g - x̂·Σ_rows(g⊙x̂)), g = dy⊙γ
 *                (rows: the whole batch, also when processes each hold a part)
 *   l2 normalize y = x / max(‖x‖, eps) per row; dx = (dy - y·(y·dy))/‖x‖ (or dy/eps when clamped)
 * Column reductions use fixed row blocks summed in block order, so results
 * do not depend on the thread count. */
#include "numerics-private.h"
#include "numerics-profile.h"

#define LN_ROWBLK 64

typedef struct {
  float *s;      /* the normalised input (x, or x + res) [N, C] */
  float *mean, *rstd;
  gint64 N, C;
} LnCtx;

static void
layer_norm_rows (float *y, const float *s, const float *gamma, const float *beta, float *mean_out, float *rstd_out,
                 gint64 N, gint64 C, float eps)
{
#pragma omp parallel for schedule(static) if (N * C > STSIM_PAR_MIN)
  for (gint64 r = 0; r < N; r++) {
    const float *sr = s + r * C;
    float *yr = y + r * C;
    float m = 0.0f;
#pragma omp simd reduction(+:m)
    for (gint64 c = 0; c < C; c++)
      m += sr[c];
    m /= (float) C;
    float v = 0.0f;
#pragma omp simd reduction(+:v)
    for (gint64 c = 0; c < C; c++) {
      float d = sr[c] - m;
      v += d * d;
    }
    v /= (float) C;
    float rs = 1.0f / sqrtf (v + eps);
    if (mean_out) {
      mean_out[r] = m;
      rstd_out[r] = rs;
    }
#pragma omp simd
    for (gint64 c = 0; c < C; c++) {
      float xh = (sr[c] - m) * rs;
      yr[c] = xh * (gamma ? gamma[c] : 1.0f) + (beta ? beta[c] : 0.0f);
    }
  }
}

static void
layer_norm_backward (StsimTape *tape, StsimNode *node)
{
  LnCtx *c = node->ctx;
  StsimTensor *x = node->in[0], *res = node->in[1], *gm = node->in[2], *y = node->out;
  StsimTensor *bt = node->in[3];
  gint64 N = c->N, C = c->C;
  const float *dy = y->grad, *gamma = gm ? gm->data : NULL;
  float bx = 0, br = 0;
  float *dx = stsim_needs_grad (x) ? stsim_grad_acquire (tape, x, &bx) : NULL;
  float *dr = stsim_needs_grad (res) ? stsim_grad_acquire (tape, res, &br) : NULL;
  gboolean want_g = stsim_needs_grad (gm), want_b = stsim_needs_grad (bt);
  gint64 nrb = (N + LN_ROWBLK - 1) / LN_ROWBLK;
  float *part = (want_g || want_b) ? stsim_tape_alloc (tape, (gsize) (2 * nrb * C) * sizeof (float)) : NULL;

#pragma omp parallel for schedule(static) if (N * C > STSIM_PAR_MIN)
  for (gint64 rb = 0; rb < nrb; rb++) {
    float *pg = part ? part + rb * 2 * C : NULL, *pb = pg ? pg + C : NULL;
    if (pg)
      memset (pg, 0, (gsize) (2 * C) * sizeof (float));
    for (gint64 r = rb * LN_ROWBLK; r < MIN (N, (rb + 1) * LN_ROWBLK); r++) {
      const float *sr = c->s + r * C, *dyr = dy + r * C;
      float m = c->mean[r], rs = c->rstd[r];
      float sg = 0.0f, sgx = 0.0f;
#pragma omp simd reduction(+:sg,sgx)
      for (gint64 k = 0; k < C; k++) {
        float xh = (sr[k] - m) * rs;
        float g = dyr[k] * (gamma ? gamma[k] : 1.0f);
        sg += g;
        sgx += g * xh;
      }
      sg /= (float) C;
      sgx /= (float) C;
      if (pg)
#pragma omp simd
        for (gint64 k = 0; k < C; k++) {
          float xh = (sr[k] - m) * rs;
          pg[k] += dyr[k] * xh;
          pb[k] += dyr[k];
        }
      if (dx || dr)
        for (gint64 k = 0; k < C; k++) {
          float xh = (sr[k] - m) * rs;
          float g = dyr[k] * (gamma ? gamma[k] : 1.0f);
          float d = rs * (g - sg - xh * sgx);
          if (dx)
            dx[r * C + k] = (bx == 0.0f ? 0.0f : dx[r * C + k]) + d;
          if (dr)
            dr[r * C + k] = (br == 0.0f ? 0.0f : dr[r * C + k]) + d;
        }
    }
  }
  if (part) {
    float *dg = want_g ? stsim_grad_acquire_acc (tape, gm) : NULL;
    float *db = want_b ? stsim_grad_acquire_acc (tape, bt) : NULL;
    for (gint64 rb = 0; rb < nrb; rb++)
      for (gint64 k = 0; k < C; k++) {
        if (dg)
          dg[k] += part[rb * 2 * C + k];
        if (db)
          db[k] += part[rb * 2 * C + C + k];
      }
  }
}

static StsimTensor *
layer_norm_impl (StsimTape *tape, StsimTensor *x, StsimTensor *res, StsimTensor *gamma, StsimTensor *beta, float eps)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!x)
    return NULL;
  gint64 C = stsim_tensor_cols (x), N = stsim_tensor_rows (x);
  char b1[64], b2[64];
  if ((res && !stsim_tensor_same_shape (x, res)) || (gamma && gamma->numel != C) || (beta && beta->numel != C)
      || x->ndim < 1 || !(eps >= 0.0f)) {
    g_critical ("stsim_layer_norm: x %s, residual %s: gamma/beta must have %" G_GINT64_FORMAT " elements, eps >= 0",
                stsim_tensor_shape_string (x, b1, sizeof b1), stsim_tensor_shape_string (res, b2, sizeof b2), C);
    return NULL;
  }
  gboolean rg = stsim_tape_wants_grad (tape, x, res, gamma) || stsim_tape_wants_grad (tape, beta, NULL, NULL);
  StsimTensor *y = stsim_tape_out_like (tape, x, rg);
  const float *s = x->data;
  if (res) {
    float *sum = rg ? stsim_tape_alloc (tape, (gsize) (N * C) * sizeof (float)) : y->data;
    const float *a = x->data, *b = res->data;
    gint64 n = N * C;
#pragma omp parallel for simd schedule(static) if (n > STSIM_PAR_MIN)
    for (gint64 i = 0; i < n; i++)
      sum[i] = a[i] + b[i];
    s = sum;
  }
  LnCtx *c = NULL;
  if (rg) {
    c = stsim_tape_alloc (tape, sizeof (LnCtx));
    c->s = (float *) s;
    c->N = N;
    c->C = C;
    c->mean = stsim_tape_alloc (tape, (gsize) MAX (N, 1) * sizeof (float));
    c->rstd = stsim_tape_alloc (tape, (gsize) MAX (N, 1) * sizeof (float));
  }
  layer_norm_rows (y->data, s, gamma ? gamma->data : NULL, beta ? beta->data : NULL,
                   c ? c->mean : NULL, c ? c->rstd : NULL, N, C, eps);
  if (rg) {
    StsimNode *n = stsim_tape_record (tape, res ? "add_layer_norm" : "layer_norm", layer_norm_backward, y, x, res, gamma);
    n->in[3] = beta;
    n->ctx = c;
  }
  return y;
}

StsimTensor *
stsim_layer_norm (StsimTape *tape, StsimTensor *x, StsimTensor *gamma, StsimTensor *beta, float eps)
{
  STSIM_PROF_BEGIN (t0);
  StsimTensor *y = layer_norm_impl (tape, x, NULL, gamma, beta, eps);
  STSIM_PROF_END (t0, "layer_norm.fwd", 0.0);
  return y;
}

StsimTensor *
stsim_add_layer_norm (StsimTape *tape, StsimTensor *x, StsimTensor *residual, StsimTensor *gamma, StsimTensor *beta, float eps)
{
  if (!residual)
    return NULL;
  STSIM_PROF_BEGIN (t0);
  StsimTensor *y = layer_norm_impl (tape, x, residual, gamma, beta, eps);
  STSIM_PROF_END (t0, "add_layer_norm.fwd", 0.0);
  return y;
}

/* ---- batch norm ----------------------------------------------------------- */

/* With a statistics hook (stsim_batch_norm_shared) x holds this process's n
 * rows of a batch of N over all processes: every column sum below is summed
 * through the hook before it is used, so that mean, variance and dx are
 * those of the whole batch, while dγ, dβ stay this process's share. Without
 * a hook n == N and no sum goes anywhere. */
typedef struct {
  float *mean, *rstd;
  gint64 n, N, C;   /* this process's rows, the batch's rows, columns */
  StsimBnStatsHook hook;
} BnCtx;

static void
batch_norm_backward (StsimTape *tape, StsimNode *node)
{
  BnCtx *c = node->ctx;
  StsimTensor *x = node->in[0], *gm = node->in[1], *bt = node->in[2], *y = node->out;
  const gint64 n = c->n, N = c->N, C = c->C;
  const float *dy = y->grad;
  /* [Σdy | Σdy·x̂] over this process's rows, then (with a hook) the same
   * over the batch. */
  const gint64 ns = c->hook.sum ? 4 * C : 2 * C;
  double *s = stsim_tape_alloc (tape, sizeof (double) * ns);
  for (gint64 k = 0; k < 2 * C; k++)
    s[k] = 0.0;
  /* Per column sums in row order (deterministic); g = dy⊙γ. */
  for (gint64 r = 0; r < n; r++)
    for (gint64 k = 0; k < C; k++) {
      float xh = (x->data[r * C + k] - c->mean[k]) * c->rstd[k];
      float g = dy[r * C + k];
      s[k] += g;
      s[C + k] += (double) g * xh;
    }
  const double *sg = s, *sgx = s + C;
  if (c->hook.sum) {
    memcpy (s + 2 * C, s, sizeof (double) * 2 * C);
    GError *err = NULL;
    if (c->hook.sum (s + 2 * C, 2 * C, c->hook.user_data, &err)) {
      sg = s + 2 * C;
      sgx = s + 3 * C;
    } else {
      /* A backward cannot fail: the hook's owner gets the error, dx stays
       * this process's own. */
      c->hook.backward_failed (err, c->hook.user_data);
    }
  }
  if (stsim_needs_grad (gm)) {
    float *dg = stsim_grad_acquire_acc (tape, gm);
    for (gint64 k = 0; k < C; k++)
      dg[k] += (float) s[C + k];
  }
  if (stsim_needs_grad (bt)) {
    float *db = stsim_grad_acquire_acc (tape, bt);
    for (gint64 k = 0; k < C; k++)
      db[k] += (float) s[k];
  }
  if (stsim_needs_grad (x)) {
    float beta;
    float *dx = stsim_grad_acquire (tape, x, &beta);
    for (gint64 r = 0; r < n; r++)
      for (gint64 k = 0; k < C; k++) {
        float gam = gm ? gm->data[k] : 1.0f;
        float xh = (x->data[r * C + k] - c->mean[k]) * c->rstd[k];
        float d = gam * c->rstd[k] / (float) N
                  * ((float) N * dy[r * C + k] - (float) sg[k] - xh * (float) sgx[k]);
        dx[r * C + k] = (beta == 0.0f ? 0.0f : dx[r * C + k]) + d;
      }
  }
}

/* Sums @n doubles through the hook; FALSE with a critical naming @who. */
static gboolean
bn_hook_sum (const StsimBnStatsHook *hook, double *buf, gint64 n, const char *who)
{
  GError *err = NULL;
  if (!hook->sum || hook->sum (buf, (gsize) n, hook->user_data, &err))
    return TRUE;
  g_critical ("%s: %s", who, err->message);
  g_error_free (err);
  return FALSE;
}

static StsimTensor *
batch_norm_impl (StsimTape *tape, StsimTensor *x, StsimTensor *gamma, StsimTensor *beta, float *running_mean,
                 float *running_var, float momentum, float eps, const StsimBnStatsHook *hook, const char *who)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!x)
    return NULL;
  char b1[64];
  const gint64 C = stsim_tensor_cols (x), n = stsim_tensor_rows (x);
  /* A process may hold a single row of the batch; the batch needs two. */
  const gint64 min_rows = hook->sum ? 1 : 2;
  if (x->ndim != 2 || n < min_rows || (gamma && gamma->numel != C) || (beta && beta->numel != C)
      || (!gamma) != (!beta) || !(eps >= 0.0f)) {
    g_critical ("%s: x %s must be [%s >= %d, C] with gamma and beta both [C] or both NULL", who,
                stsim_tensor_shape_string (x, b1, sizeof b1), hook->sum ? "n" : "N", (int) min_rows);
    return NULL;
  }
  /* [Σx | rows | Σ(x-μ)²]: two passes (mean, then centred squares), each
   * column sum in double and in row order. */
  double *st = stsim_tape_alloc (tape, sizeof (double) * (2 * C + 1)), *sum = st, *sq = st + C + 1;
  for (gint64 k = 0; k < 2 * C + 1; k++)
    st[k] = 0.0;
  for (gint64 r = 0; r < n; r++)
    for (gint64 k = 0; k < C; k++)
      sum[k] += x->data[r * C + k];
  st[C] = (double) n;
  if (!bn_hook_sum (hook, st, C + 1, who))
    return NULL;
  const gint64 N = (gint64) st[C];
  if (N < 2) {
    g_critical ("%s: %" G_GINT64_FORMAT " rows over all processes; batch norm needs 2", who, N);
    return NULL;
  }
  for (gint64 k = 0; k < C; k++)
    sum[k] /= (double) N;
  for (gint64 r = 0; r < n; r++)
    for (gint64 k = 0; k < C; k++) {
      double d = x->data[r * C + k] - sum[k];
      sq[k] += d * d;
    }
  if (!bn_hook_sum (hook, sq, C, who))
    return NULL;
  gboolean rg = stsim_tape_wants_grad (tape, x, gamma, beta);
  StsimTensor *y = stsim_tape_out_like (tape, x, rg);
  BnCtx *c = stsim_tape_alloc (tape, sizeof (BnCtx));
  c->n = n;
  c->N = N;
  c->C = C;
  c->hook = *hook;
  c->mean = stsim_tape_alloc (tape, sizeof (float) * C);
  c->rstd = stsim_tape_alloc (tape, sizeof (float) * C);
  for (gint64 k = 0; k < C; k++) {
    double var = sq[k] / (double) N;
    c->mean[k] = (float) sum[k];
    c->rstd[k] = (float) (1.0 / sqrt (var + eps));
    /* PyTorch: running stats use the unbiased variance; outside the tape. */
    if (running_mean)
      running_mean[k] = (1.0f - momentum) * running_mean[k] + momentum * (float) sum[k];
    if (running_var)
      running_var[k] = (1.0f - momentum) * running_var[k] + momentum * (float) (sq[k] / (double) (N - 1));
  }
  for (gint64 r = 0; r < n; r++)
    for (gint64 k = 0; k < C; k++) {
      float xh = (x->data[r * C + k] - c->mean[k]) * c->rstd[k];
      y->data[r * C + k] = gamma ? xh * gamma->data[k] + beta->data[k] : xh;
    }
  if (rg) {
    StsimNode *node = stsim_tape_record (tape, hook->sum ? "batch_norm_shared" : "batch_norm", batch_norm_backward,
                                         y, x, gamma, beta);
    node->ctx = c;
  }
  return y;
}

StsimTensor *
stsim_batch_norm (StsimTape *tape, StsimTensor *x, StsimTensor *gamma, StsimTensor *beta,
                  float *running_mean, float *running_var, float momentum, float eps)
{
  static const StsimBnStatsHook none = { NULL, NULL, NULL };
  return batch_norm_impl (tape, x, gamma, beta, running_mean, running_var, momentum, eps, &none, "stsim_batch_norm");
}

StsimTensor *
stsim_batch_norm_shared (StsimTape *tape, StsimTensor *x, StsimTensor *gamma, StsimTensor *beta,
                         float *running_mean, float *running_var, float momentum, float eps,
                         const StsimBnStatsHook *hook)
{
  g_return_val_if_fail (hook != NULL && hook->sum != NULL && hook->backward_failed != NULL, NULL);
  return batch_norm_impl (tape, x, gamma, beta, running_mean, running_var, momentum, eps, hook,
                          "stsim_batch_norm_shared");
}

/* ---- L2 normalisation ------------------------------------------------------ */

/* y = x / max(‖x‖, eps) per row; norms[r] = ‖x_r‖ (unclamped). */
void stsim_l2_normalize_rows (float *y, float *norms, const float *x, gint64 N, gint64 C, float eps);
/* dx (+)= (dy - y·(y·dy))/‖x‖, or dy/eps where ‖x‖ < eps. */
void stsim_l2_normalize_rows_backward (float *dx, float beta, const float *dy, const float *y, const float *norms,
                                       gint64 N, gint64 C, float eps);

void
stsim_l2_normalize_rows (float *y, float *norms, const float *x, gint64 N, gint64 C, float eps)
{
#pragma omp parallel for schedule(static) if (N * C > STSIM_PAR_MIN)
  for (gint64 r = 0; r < N; r++) {
    const float *xr = x + r * C;
    float s = 0.0f;
#pragma omp simd reduction(+:s)
    for (gint64 k = 0; k < C; k++)
      s += xr[k] * xr[k];
    float n = sqrtf (s);
    norms[r] = n;
    float inv = 1.0f / (n > eps ? n : eps);
    for (gint64 k = 0; k < C; k++)
      y[r * C + k] = xr[k] * inv;
  }
}

void
stsim_l2_normalize_rows_backward (float *dx, float beta, const float *dy, const float *y, const float *norms,
                                  gint64 N, gint64 C, float eps)
{
#pragma omp parallel for schedule(static) if (N * C > STSIM_PAR_MIN)
  for (gint64 r = 0; r < N; r++) {
    const float *dyr = dy + r * C, *yr = y + r * C;
    float *dxr = dx + r * C;
    float n = norms[r];
    if (n > eps) {
      float dot = 0.0f;
      for (gint64 k = 0; k < C; k++)
        dot += yr[k] * dyr[k];
      float inv = 1.0f / n;
      for (gint64 k = 0; k < C; k++)
        dxr[k] = (beta == 0.0f ? 0.0f : dxr[k]) + (dyr[k] - yr[k] * dot) * inv;
    } else {
      for (gint64 k = 0; k < C; k++)
        dxr[k] = (beta == 0.0f ? 0.0f : dxr[k]) + dyr[k] / eps;
    }
  }
}

typedef struct { float *norms; float eps; } L2Ctx;

static void
l2_backward (StsimTape *tape, StsimNode *node)
{
  L2Ctx *c = node->ctx;
  StsimTensor *x = node->in[0], *y = node->out;
  float beta;
  float *dx = stsim_grad_acquire (tape, x, &beta);
  stsim_l2_normalize_rows_backward (dx, beta, y->grad, y->data, c->norms, stsim_tensor_rows (x), stsim_tensor_cols (x), c->eps);
}

StsimTensor *
stsim_l2_normalize (StsimTape *tape, StsimTensor *x, float eps)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!x)
    return NULL;
  g_return_val_if_fail (eps > 0.0f && x->ndim >= 1, NULL);
  gboolean rg = stsim_tape_wants_grad (tape, x, NULL, NULL);
  StsimTensor *y = stsim_tape_out_like (tape, x, rg);
  gint64 N = stsim_tensor_rows (x), C = stsim_tensor_cols (x);
  float *norms = stsim_tape_alloc (tape, sizeof (float) * MAX (N, 1));
  stsim_l2_normalize_rows (y->data, norms, x->data, N, C, eps);
  if (rg) {
    StsimNode *n = stsim_tape_record (tape, "l2_normalize", l2_backward, y, x, NULL, NULL);
    L2Ctx *c = stsim_tape_alloc (tape, sizeof (L2Ctx));
    c->norms = norms;
    c->eps = eps;
    n->ctx = c;
  }
  return y;
}
