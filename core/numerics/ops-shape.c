/* ops-shape.c: reductions, pooling, concatenation, slicing, gathers and the
 * embedding lookup.
 *
 * Shape legend: N/R rows, C/H columns, S sequences, V vocabulary, K picks.
 *   sum/mean    x [..] -> scalar                dx += g (or g/n)
 *   row_sum     x [N, C] -> [N]                 dx[r, :] += dy[r]
 *   mean_pool   x [N, H], seqs -> [S, H]        dx[rows of s] += dy[s]/keys_s
 *   concat      [n_i, C] -> [Σ n_i, C] ; [N, c_i] -> [N, Σ c_i]   dx_i = its block of dy
 *   slice_cols  x [N, C] -> [N, n]              dx[:, start..] += dy
 *   gather_rows x [R, C], idx [K] -> [K, C]     dx[idx[k]] += dy[k]
 *   replace_rows x [R, C], idx [K], src [K, C] -> [R, C]   dx = dy except rows idx ; dsrc[k] += dy[idx[k]]
 *   gather_cols x [N, C], idx [N, K] -> [N, K]  dx[r, idx[r,k]] += dy[r, k]
 *   embedding   table [V, H], ids [K] -> [K, H] dtable[ids[k]] += dy[k]
 * Scatter-adds (gather_rows, embedding) run in parallel over column blocks,
 * each thread walking all indices in order: no atomics, deterministic. */
#include "numerics-private.h"

/* ---- sum / mean / row_sum ------------------------------------------------- */

typedef struct { float scale; } SumCtx;

static void
sum_backward (StsimTape *tape, StsimNode *node)
{
  SumCtx *c = node->ctx;
  StsimTensor *x = node->in[0];
  float g = node->out->grad[0] * c->scale, beta;
  float *dx = stsim_grad_acquire (tape, x, &beta);
  for (gint64 i = 0; i < x->numel; i++)
    dx[i] = (beta == 0.0f ? 0.0f : dx[i]) + g;
}

static StsimTensor *
sum_impl (StsimTape *tape, StsimTensor *x, gboolean mean)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!x)
    return NULL;
  double s = 0.0;
  for (gint64 i = 0; i < x->numel; i++)
    s += x->data[i];
  float scale = mean ? 1.0f / (float) MAX (x->numel, 1) : 1.0f;
  gboolean rg = stsim_tape_wants_grad (tape, x, NULL, NULL);
  StsimTensor *y = stsim_tape_out (tape, 0, NULL, rg);
  y->data[0] = (float) (s * scale);
  if (rg) {
    StsimNode *n = stsim_tape_record (tape, mean ? "mean" : "sum", sum_backward, y, x, NULL, NULL);
    SumCtx *c = stsim_tape_alloc (tape, sizeof (SumCtx));
    c->scale = scale;
    n->ctx = c;
  }
  return y;
}

StsimTensor *stsim_sum (StsimTape *tape, StsimTensor *x) { return sum_impl (tape, x, FALSE); }
StsimTensor *stsim_mean (StsimTape *tape, StsimTensor *x) { return sum_impl (tape, x, TRUE); }

static void
row_sum_backward (StsimTape *tape, StsimNode *node)
{
  StsimTensor *x = node->in[0], *y = node->out;
  gint64 N = stsim_tensor_rows (x), C = stsim_tensor_cols (x);
  float beta;
  float *dx = stsim_grad_acquire (tape, x, &beta);
  for (gint64 r = 0; r < N; r++)
    for (gint64 j = 0; j < C; j++)
      dx[r * C + j] = (beta == 0.0f ? 0.0f : dx[r * C + j]) + y->grad[r];
}

StsimTensor *
stsim_row_sum (StsimTape *tape, StsimTensor *x)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!x)
    return NULL;
  g_return_val_if_fail (x->ndim >= 1, NULL);
  gint64 N = stsim_tensor_rows (x), C = stsim_tensor_cols (x);
  gboolean rg = stsim_tape_wants_grad (tape, x, NULL, NULL);
  gint64 shape[1] = { N };
  StsimTensor *y = stsim_tape_out (tape, 1, shape, rg);
  for (gint64 r = 0; r < N; r++) {
    float s = 0.0f;
    for (gint64 j = 0; j < C; j++)
      s += x->data[r * C + j];
    y->data[r] = s;
  }
  if (rg)
    stsim_tape_record (tape, "row_sum", row_sum_backward, y, x, NULL, NULL);
  return y;
}

/* ---- masked mean pooling ---------------------------------------------------- */

typedef struct { StsimSeq *seqs; gsize n; } PoolCtx;

static void
pool_backward (StsimTape *tape, StsimNode *node)
{
  PoolCtx *c = node->ctx;
  StsimTensor *x = node->in[0], *y = node->out;
  gint64 H = stsim_tensor_cols (x);
  float *dx = stsim_grad_acquire_acc (tape, x);
  for (gsize s = 0; s < c->n; s++) {
    gint64 k = c->seqs[s].keys;
    if (k == 0)
      continue;
    float inv = 1.0f / (float) k;
    for (gint64 r = c->seqs[s].offset; r < c->seqs[s].offset + k; r++)
      for (gint64 j = 0; j < H; j++)
        dx[r * H + j] += y->grad[s * H + j] * inv;
  }
}

StsimTensor *
stsim_mean_pool (StsimTape *tape, StsimTensor *x, const StsimSeq *seqs, gsize n_seqs)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!x)
    return NULL;
  g_return_val_if_fail (seqs != NULL || n_seqs == 0, NULL);
  gint64 N = stsim_tensor_rows (x), H = stsim_tensor_cols (x);
  for (gsize s = 0; s < n_seqs; s++)
    if (seqs[s].offset < 0 || seqs[s].keys < 0 || seqs[s].offset + seqs[s].keys > N) {
      g_critical ("stsim_mean_pool: sequence %" G_GSIZE_FORMAT " (offset %d, keys %d) runs past the %"
                  G_GINT64_FORMAT " rows", s, seqs[s].offset, seqs[s].keys, N);
      return NULL;
    }
  gboolean rg = stsim_tape_wants_grad (tape, x, NULL, NULL);
  gint64 shape[2] = { (gint64) n_seqs, H };
  StsimTensor *y = stsim_tape_out (tape, 2, shape, rg);
  memset (y->data, 0, sizeof (float) * n_seqs * H);
  for (gsize s = 0; s < n_seqs; s++) {
    gint64 k = seqs[s].keys;
    float *yr = y->data + s * H;
    for (gint64 r = seqs[s].offset; r < seqs[s].offset + k; r++)
      for (gint64 j = 0; j < H; j++)
        yr[j] += x->data[r * H + j];
    if (k > 0)   /* an empty sequence pools to zeros, not NaN */
      for (gint64 j = 0; j < H; j++)
        yr[j] /= (float) k;
  }
  if (rg) {
    StsimNode *n = stsim_tape_record (tape, "mean_pool", pool_backward, y, x, NULL, NULL);
    PoolCtx *c = stsim_tape_alloc (tape, sizeof (PoolCtx));
    c->seqs = stsim_tape_alloc (tape, sizeof (StsimSeq) * MAX (n_seqs, 1));
    memcpy (c->seqs, seqs, sizeof (StsimSeq) * n_seqs);
    c->n = n_seqs;
    n->ctx = c;
  }
  return y;
}

/* ---- concatenation and column slices --------------------------------------- */

typedef struct { StsimTensor **xs; gsize n; gint64 start, width; } CatCtx;

static void
concat_rows_backward (StsimTape *tape, StsimNode *node)
{
  CatCtx *c = node->ctx;
  gint64 off = 0;
  for (gsize i = 0; i < c->n; i++) {
    StsimTensor *x = c->xs[i];
    if (stsim_needs_grad (x)) {
      float beta;
      float *dx = stsim_grad_acquire (tape, x, &beta);
      stsim_k_axpby (dx, beta, node->out->grad + off, 1.0f, x->numel);
    }
    off += x->numel;
  }
}

static void
concat_cols_backward (StsimTape *tape, StsimNode *node)
{
  CatCtx *c = node->ctx;
  StsimTensor *y = node->out;
  gint64 N = stsim_tensor_rows (y), W = stsim_tensor_cols (y), off = 0;
  for (gsize i = 0; i < c->n; i++) {
    StsimTensor *x = c->xs[i];
    gint64 ci = stsim_tensor_cols (x);
    if (stsim_needs_grad (x)) {
      float beta;
      float *dx = stsim_grad_acquire (tape, x, &beta);
      for (gint64 r = 0; r < N; r++)
        stsim_k_axpby (dx + r * ci, beta, y->grad + r * W + off, 1.0f, ci);
    }
    off += ci;
  }
}

static StsimTensor *
concat_impl (StsimTape *tape, StsimTensor *const *xs, gsize n, gboolean rows)
{
  g_return_val_if_fail (tape != NULL && xs != NULL && n > 0, NULL);
  gboolean rg = FALSE;
  gint64 C = 0, N = 0;
  for (gsize i = 0; i < n; i++) {
    if (!xs[i])
      return NULL;
    gint64 r = stsim_tensor_rows (xs[i]), c = stsim_tensor_cols (xs[i]);
    if (i == 0) {
      N = rows ? 0 : r;
      C = rows ? c : 0;
    }
    if ((rows && c != C) || (!rows && r != N)) {
      char b1[64];
      g_critical ("stsim_concat_%s: input %" G_GSIZE_FORMAT " %s does not match the first one",
                  rows ? "rows" : "cols", i, stsim_tensor_shape_string (xs[i], b1, sizeof b1));
      return NULL;
    }
    if (rows)
      N += r;
    else
      C += c;
    rg = rg || stsim_tape_wants_grad (tape, xs[i], NULL, NULL);
  }
  gint64 shape[2] = { N, C };
  StsimTensor *y = stsim_tape_out (tape, 2, shape, rg);
  gint64 off = 0;
  for (gsize i = 0; i < n; i++) {
    StsimTensor *x = xs[i];
    if (rows) {
      memcpy (y->data + off, x->data, sizeof (float) * x->numel);
      off += x->numel;
    } else {
      gint64 ci = stsim_tensor_cols (x);
      for (gint64 r = 0; r < N; r++)
        memcpy (y->data + r * C + off, x->data + r * ci, sizeof (float) * ci);
      off += ci;
    }
  }
  if (rg) {
    StsimNode *nd = stsim_tape_record (tape, rows ? "concat_rows" : "concat_cols",
                                       rows ? concat_rows_backward : concat_cols_backward, y, NULL, NULL, NULL);
    CatCtx *c = stsim_tape_alloc (tape, sizeof (CatCtx));
    c->xs = stsim_tape_alloc (tape, sizeof (StsimTensor *) * n);
    memcpy (c->xs, xs, sizeof (StsimTensor *) * n);
    c->n = n;
    nd->ctx = c;
    nd->xin = c->xs;   /* its inputs, for observers of the backward */
    nd->n_xin = n;
  }
  return y;
}

StsimTensor *stsim_concat_rows (StsimTape *tape, StsimTensor *const *xs, gsize n) { return concat_impl (tape, xs, n, TRUE); }
StsimTensor *stsim_concat_cols (StsimTape *tape, StsimTensor *const *xs, gsize n) { return concat_impl (tape, xs, n, FALSE); }

static void
slice_cols_backward (StsimTape *tape, StsimNode *node)
{
  CatCtx *c = node->ctx;
  StsimTensor *x = node->in[0], *y = node->out;
  gint64 N = stsim_tensor_rows (x), C = stsim_tensor_cols (x);
  float *dx = stsim_grad_acquire_acc (tape, x);
  for (gint64 r = 0; r < N; r++)
    for (gint64 j = 0; j < c->width; j++)
      dx[r * C + c->start + j] += y->grad[r * c->width + j];
}

StsimTensor *
stsim_slice_cols (StsimTape *tape, StsimTensor *x, gint64 start, gint64 n)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!x)
    return NULL;
  gint64 N = stsim_tensor_rows (x), C = stsim_tensor_cols (x);
  g_return_val_if_fail (start >= 0 && n >= 0 && start + n <= C, NULL);
  gboolean rg = stsim_tape_wants_grad (tape, x, NULL, NULL);
  gint64 shape[2] = { N, n };
  StsimTensor *y = stsim_tape_out (tape, 2, shape, rg);
  for (gint64 r = 0; r < N; r++)
    memcpy (y->data + r * n, x->data + r * C + start, sizeof (float) * n);
  if (rg) {
    StsimNode *nd = stsim_tape_record (tape, "slice_cols", slice_cols_backward, y, x, NULL, NULL);
    CatCtx *c = stsim_tape_alloc (tape, sizeof (CatCtx));
    c->start = start;
    c->width = n;
    nd->ctx = c;
  }
  return y;
}

/* ---- gathers ------------------------------------------------------------- */

typedef struct { gint32 *idx; gint64 k; } IdxCtx;

#define SCATTER_COLBLK 64

/* dst[idx[k]] += src[k] for rows of width C, parallel over column blocks. */
static void
scatter_add_rows (float *dst, const float *src, const gint32 *idx, gint64 K, gint64 C)
{
  gint64 ncb = (C + SCATTER_COLBLK - 1) / SCATTER_COLBLK;
#pragma omp parallel for schedule(static) if (K * C > STSIM_PAR_MIN)
  for (gint64 cb = 0; cb < ncb; cb++) {
    gint64 c0 = cb * SCATTER_COLBLK, c1 = MIN (C, c0 + SCATTER_COLBLK);
    for (gint64 k = 0; k < K; k++) {
      float *d = dst + (gint64) idx[k] * C;
      const float *s = src + k * C;
      for (gint64 j = c0; j < c1; j++)
        d[j] += s[j];
    }
  }
}

static gboolean
check_indices (const char *op, const gint32 *idx, gint64 k, gint64 limit)
{
  for (gint64 i = 0; i < k; i++)
    if (idx[i] < 0 || idx[i] >= limit) {
      g_critical ("stsim_%s: index %d at position %" G_GINT64_FORMAT " is outside [0, %" G_GINT64_FORMAT ")",
                  op, idx[i], i, limit);
      return FALSE;
    }
  return TRUE;
}

static IdxCtx *
idx_ctx (StsimTape *tape, const gint32 *idx, gint64 k)
{
  IdxCtx *c = stsim_tape_alloc (tape, sizeof (IdxCtx));
  c->idx = stsim_tape_alloc (tape, sizeof (gint32) * MAX (k, 1));
  memcpy (c->idx, idx, sizeof (gint32) * k);
  c->k = k;
  return c;
}

static void
gather_rows_backward (StsimTape *tape, StsimNode *node)
{
  IdxCtx *c = node->ctx;
  StsimTensor *x = node->in[0];
  float *dx = stsim_grad_acquire_acc (tape, x);
  scatter_add_rows (dx, node->out->grad, c->idx, c->k, stsim_tensor_cols (x));
}

static StsimTensor *
gather_rows_impl (StsimTape *tape, StsimTensor *x, const gint32 *idx, gint64 n, const char *name)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!x)
    return NULL;
  g_return_val_if_fail ((idx != NULL || n == 0) && n >= 0 && x->ndim >= 1, NULL);
  gint64 R = stsim_tensor_rows (x), C = stsim_tensor_cols (x);
  if (!check_indices (name, idx, n, R))
    return NULL;
  gboolean rg = stsim_tape_wants_grad (tape, x, NULL, NULL);
  gint64 shape[2] = { n, C };
  StsimTensor *y = stsim_tape_out (tape, 2, shape, rg);
#pragma omp parallel for schedule(static) if (n * C > STSIM_PAR_MIN)
  for (gint64 k = 0; k < n; k++)
    memcpy (y->data + k * C, x->data + (gint64) idx[k] * C, sizeof (float) * C);
  if (rg) {
    StsimNode *nd = stsim_tape_record (tape, name, gather_rows_backward, y, x, NULL, NULL);
    nd->ctx = idx_ctx (tape, idx, n);
  }
  return y;
}

StsimTensor *
stsim_gather_rows (StsimTape *tape, StsimTensor *x, const gint32 *idx, gint64 n)
{
  return gather_rows_impl (tape, x, idx, n, "gather_rows");
}

StsimTensor *
stsim_embedding (StsimTape *tape, StsimTensor *table, const gint32 *ids, gint64 n)
{
  if (table && table->ndim != 2) {
    char b1[64];
    g_critical ("stsim_embedding: table %s must be [V, H]", stsim_tensor_shape_string (table, b1, sizeof b1));
    return NULL;
  }
  return gather_rows_impl (tape, table, ids, n, "embedding");
}

static void
replace_rows_backward (StsimTape *tape, StsimNode *node)
{
  IdxCtx *c = node->ctx;
  StsimTensor *x = node->in[0], *src = node->in[1], *y = node->out;
  gint64 C = stsim_tensor_cols (x);
  if (stsim_needs_grad (x)) {
    float beta;
    float *dx = stsim_grad_acquire (tape, x, &beta);
    /* dy everywhere, then take the replaced rows back out. */
    stsim_k_axpby (dx, beta, y->grad, 1.0f, x->numel);
    for (gint64 k = 0; k < c->k; k++)
      for (gint64 j = 0; j < C; j++)
        dx[(gint64) c->idx[k] * C + j] -= y->grad[(gint64) c->idx[k] * C + j];
  }
  if (stsim_needs_grad (src)) {
    float beta;
    float *ds = stsim_grad_acquire (tape, src, &beta);
    for (gint64 k = 0; k < c->k; k++)
      stsim_k_axpby (ds + k * C, beta, y->grad + (gint64) c->idx[k] * C, 1.0f, C);
  }
}

StsimTensor *
stsim_replace_rows (StsimTape *tape, StsimTensor *x, const gint32 *idx, StsimTensor *src)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!x || !src)
    return NULL;
  gint64 R = stsim_tensor_rows (x), C = stsim_tensor_cols (x), K = stsim_tensor_rows (src);
  if (stsim_tensor_cols (src) != C) {
    char b1[64], b2[64];
    g_critical ("stsim_replace_rows: src %s and x %s differ in width",
                stsim_tensor_shape_string (src, b1, sizeof b1), stsim_tensor_shape_string (x, b2, sizeof b2));
    return NULL;
  }
  g_return_val_if_fail (idx != NULL || K == 0, NULL);
  if (!check_indices ("replace_rows", idx, K, R))
    return NULL;
  gboolean rg = stsim_tape_wants_grad (tape, x, src, NULL);
  StsimTensor *y = stsim_tape_out_like (tape, x, rg);
  memcpy (y->data, x->data, sizeof (float) * x->numel);
  for (gint64 k = 0; k < K; k++)
    memcpy (y->data + (gint64) idx[k] * C, src->data + k * C, sizeof (float) * C);
  if (rg) {
    StsimNode *nd = stsim_tape_record (tape, "replace_rows", replace_rows_backward, y, x, src, NULL);
    nd->ctx = idx_ctx (tape, idx, K);
  }
  return y;
}

static void
gather_cols_backward (StsimTape *tape, StsimNode *node)
{
  IdxCtx *c = node->ctx;
  StsimTensor *x = node->in[0], *y = node->out;
  gint64 N = stsim_tensor_rows (x), C = stsim_tensor_cols (x), K = c->k;
  float *dx = stsim_grad_acquire_acc (tape, x);
  for (gint64 r = 0; r < N; r++)
    for (gint64 j = 0; j < K; j++)
      dx[r * C + c->idx[r * K + j]] += y->grad[r * K + j];
}

StsimTensor *
stsim_gather_cols (StsimTape *tape, StsimTensor *x, const gint32 *idx, gint64 k)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!x)
    return NULL;
  g_return_val_if_fail (idx != NULL && k >= 0 && x->ndim >= 1, NULL);
  gint64 N = stsim_tensor_rows (x), C = stsim_tensor_cols (x);
  if (!check_indices ("gather_cols", idx, N * k, C))
    return NULL;
  gboolean rg = stsim_tape_wants_grad (tape, x, NULL, NULL);
  gint64 shape[2] = { N, k };
  StsimTensor *y = stsim_tape_out (tape, 2, shape, rg);
  for (gint64 r = 0; r < N; r++)
    for (gint64 j = 0; j < k; j++)
      y->data[r * k + j] = x->data[r * C + idx[r * k + j]];
  if (rg) {
    StsimNode *nd = stsim_tape_record (tape, "gather_cols", gather_cols_backward, y, x, NULL, NULL);
    IdxCtx *c = idx_ctx (tape, idx, N * k);
    c->k = k;
    nd->ctx = c;
  }
  return y;
}

/* ---- argsort (no grad) -------------------------------------------------------- */

static int
cmp_desc (gconstpointer a, gconstpointer b, gpointer user)
{
  const float *x = user;
  float fa = x[*(const gint32 *) a], fb = x[*(const gint32 *) b];
  if (fa > fb)
    return -1;
  if (fa < fb)
    return 1;
  return *(const gint32 *) a - *(const gint32 *) b;   /* stable: ties keep index order */
}

void
stsim_argsort_rows_desc (const float *x, gint64 rows, gint64 cols, gint32 *idx)
{
  for (gint64 r = 0; r < rows; r++) {
    gint32 *ir = idx + r * cols;
    for (gint64 j = 0; j < cols; j++)
      ir[j] = (gint32) j;
    g_qsort_with_data (ir, (gint) cols, sizeof (gint32), cmp_desc, (gpointer) (x + r * cols));
  }
}
