/* kernels.c: the elementwise leaf loops that dominate outside the GEMMs.
 *
 * libm's erff/expf do not vectorise, and at BERT shapes a scalar GELU costs
 * as much as the GEMM before it, so exp and erfc are written here as
 * branch-free polynomials the compiler turns into SIMD code. Each leaf loop
 * is compiled for AVX-512, AVX2 and baseline x86-64 and picked at load time
 * (target_clones); OpenMP splits the work into fixed chunks above it.
 *
 * Accuracy: exp ~2 ulp (degree-6 polynomial on [-ln2/2, ln2/2]); erfc
 * relative error < 1.2e-7 (Numerical Recipes' Chebyshev fit, "erfcc"),
 * evaluated in float so GELU is within a few ulp of 0.5·x·(1+erf(x/√2)). */
#include <omp.h>
#include "numerics-private.h"


typedef union { float f; gint32 i; } FloatBits;

/* e^x for x in [-87, 88] (clamped outside): 2^n · p(r). */
static inline float
fast_exp (float x)
{
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  FloatBits t;
  t.f = x * 1.44269504088896341f + 12582912.0f;   /* round to nearest via the 1.5·2^23 trick */
  float n = t.f - 12582912.0f;
  gint32 ni = t.i - 0x4B400000;
  float r = x - n * 0.693145751953125f;
  r = r - n * 1.428606765330187045e-06f;
  float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666671633720398f + r * (0.0416664853692054749f
            + r * (0.00833336077630519867f + r * 0.00139304355252534151f)))));
  FloatBits s;
  /* Unsigned shift: for a NaN input ni is garbage (the result is NaN through
   * p anyway), and a signed shift of a negative value is undefined. */
  s.i = (gint32) ((guint32) (ni + 127) << 23);
  return p * s.f;
}

/* erfc(z) for z >= 0, relative error < 1.2e-7. */
static inline float
fast_erfc_pos (float z)
{
  float t = 1.0f / (1.0f + 0.5f * z);
  float poly = -1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f + t * (-0.18628806f
               + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f))))))));
  return t * fast_exp (-z * z + poly);
}

/* Φ(x), the standard normal CDF. */
static inline float
fast_phi_cdf (float x)
{
  float ax = x < 0.0f ? -x : x;
  float e = 0.5f * fast_erfc_pos (ax * 0.70710678118654752f);
  return x < 0.0f ? e : 1.0f - e;
}

static inline float
gelu1 (float x)
{
  return x * fast_phi_cdf (x);
}

static inline float
gelu_grad1 (float x)
{
  /* d/dx x·Φ(x) = Φ(x) + x·φ(x) */
  return fast_phi_cdf (x) + x * 0.398942280401432678f * fast_exp (-0.5f * x * x);
}

float stsim_k_exp (float x) { return fast_exp (x); }

/* ---- leaf loops -------------------------------------------------------- */

STSIM_CLONES static void
leaf_gelu (float *restrict y, const float *restrict x, gint64 n)
{
  #pragma omp simd
  for (gint64 i = 0; i < n; i++)
    y[i] = gelu1 (x[i]);
}

STSIM_CLONES static void
leaf_gelu_bwd (float *restrict dx, float beta, const float *restrict dy, const float *restrict x, gint64 n)
{
  if (beta == 0.0f)
    #pragma omp simd
    for (gint64 i = 0; i < n; i++)
      dx[i] = dy[i] * gelu_grad1 (x[i]);
  else
    #pragma omp simd
    for (gint64 i = 0; i < n; i++)
      dx[i] += dy[i] * gelu_grad1 (x[i]);
}

STSIM_CLONES static void
leaf_bias_act (float *y, float *pre, const float *restrict b, gint64 cols, StsimActivation act)
{
  /* pre may alias y when the pre-activation need not be kept. */
  switch (act) {
  case STSIM_ACT_GELU:
    #pragma omp simd
    for (gint64 c = 0; c < cols; c++) {
      float v = pre[c] + (b ? b[c] : 0.0f);
      pre[c] = v;
      y[c] = gelu1 (v);
    }
    break;
  case STSIM_ACT_RELU:
    #pragma omp simd
    for (gint64 c = 0; c < cols; c++) {
      float v = pre[c] + (b ? b[c] : 0.0f);
      y[c] = v > 0.0f ? v : 0.0f;
    }
    break;
  case STSIM_ACT_TANH:
    #pragma omp simd
    for (gint64 c = 0; c < cols; c++)
      y[c] = tanhf (pre[c] + (b ? b[c] : 0.0f));
    break;
  case STSIM_ACT_NONE:
  default:
    if (b)
      #pragma omp simd
      for (gint64 c = 0; c < cols; c++)
        y[c] = pre[c] + b[c];
    break;
  }
}

STSIM_CLONES static void
leaf_act_bwd (float *restrict dy, const float *restrict v, gint64 n, StsimActivation act)
{
  switch (act) {
  case STSIM_ACT_GELU:   /* v = pre-activation */
    #pragma omp simd
    for (gint64 i = 0; i < n; i++)
      dy[i] *= gelu_grad1 (v[i]);
    break;
  case STSIM_ACT_RELU:   /* v = output */
    #pragma omp simd
    for (gint64 i = 0; i < n; i++)
      dy[i] = v[i] > 0.0f ? dy[i] : 0.0f;
    break;
  case STSIM_ACT_TANH:   /* v = output */
    #pragma omp simd
    for (gint64 i = 0; i < n; i++)
      dy[i] *= 1.0f - v[i] * v[i];
    break;
  default:
    break;
  }
}

STSIM_CLONES static void
leaf_exp (float *restrict x, gint64 n)
{
  #pragma omp simd
  for (gint64 i = 0; i < n; i++)
    x[i] = fast_exp (x[i]);
}

STSIM_CLONES static void
leaf_axpby (float *restrict y, float beta, const float *restrict x, float alpha, gint64 n)
{
  if (beta == 0.0f)
    #pragma omp simd
    for (gint64 i = 0; i < n; i++)
      y[i] = alpha * x[i];
  else
    #pragma omp simd
    for (gint64 i = 0; i < n; i++)
      y[i] = beta * y[i] + alpha * x[i];
}

STSIM_CLONES static void
leaf_add_rows (float *restrict acc, const float *restrict x, gint64 rows, gint64 cols, gint64 ld)
{
  for (gint64 r = 0; r < rows; r++)
#pragma omp simd
    for (gint64 c = 0; c < cols; c++)
      acc[c] += x[r * ld + c];
}

/* ---- parallel drivers ---------------------------------------------------- */

#define CHUNK 16384

void
stsim_k_gelu (float *y, const float *x, gint64 n)
{
  gint64 nchunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n > STSIM_PAR_MIN)
  for (gint64 c = 0; c < nchunks; c++) {
    gint64 s = c * CHUNK, e = MIN (n, s + CHUNK);
    leaf_gelu (y + s, x + s, e - s);
  }
}

void
stsim_k_gelu_backward (float *dx, float beta, const float *dy, const float *x, gint64 n)
{
  gint64 nchunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n > STSIM_PAR_MIN)
  for (gint64 c = 0; c < nchunks; c++) {
    gint64 s = c * CHUNK, e = MIN (n, s + CHUNK);
    leaf_gelu_bwd (dx + s, beta, dy + s, x + s, e - s);
  }
}

void
stsim_k_bias_act_forward (float *y, float *pre, const float *b, gint64 rows, gint64 cols, StsimActivation act)
{
#pragma omp parallel for schedule(static) if (rows * cols > STSIM_PAR_MIN)
  for (gint64 r = 0; r < rows; r++)
    leaf_bias_act (y + r * cols, pre + r * cols, b, cols, act);
}

void
stsim_k_act_backward (float *dy, const float *v, gint64 n, StsimActivation act)
{
  if (act == STSIM_ACT_NONE)
    return;
  gint64 nchunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n > STSIM_PAR_MIN)
  for (gint64 c = 0; c < nchunks; c++) {
    gint64 s = c * CHUNK, e = MIN (n, s + CHUNK);
    leaf_act_bwd (dy + s, v + s, e - s, act);
  }
}

void
stsim_k_exp_inplace (float *x, gint64 n)
{
  leaf_exp (x, n);
}

void
stsim_k_axpby (float *y, float beta, const float *x, float alpha, gint64 n)
{
  gint64 nchunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n > STSIM_PAR_MIN)
  for (gint64 c = 0; c < nchunks; c++) {
    gint64 s = c * CHUNK, e = MIN (n, s + CHUNK);
    leaf_axpby (y + s, beta, x + s, alpha, e - s);
  }
}

/* Column sums, deterministic whatever the thread count: fixed blocks of
 * ROWBLK rows give partial sums, added in block order. */
#define ROWBLK 256
#define COLBLK 512

void
stsim_k_colsum_acc (StsimTape *tape, float *out, const float *x, gint64 rows, gint64 cols)
{
  gint64 nrb = (rows + ROWBLK - 1) / ROWBLK;
  if (nrb <= 1) {
    leaf_add_rows (out, x, rows, cols, cols);
    return;
  }
  float *part = stsim_tape_alloc (tape, (gsize) (nrb * cols) * sizeof (float));
  gint64 ncb = (cols + COLBLK - 1) / COLBLK;
#pragma omp parallel for schedule(static) collapse(2) if (rows * cols > STSIM_PAR_MIN)
  for (gint64 rb = 0; rb < nrb; rb++)
    for (gint64 cb = 0; cb < ncb; cb++) {
      gint64 r0 = rb * ROWBLK, r1 = MIN (rows, r0 + ROWBLK);
      gint64 c0 = cb * COLBLK, c1 = MIN (cols, c0 + COLBLK);
      float *acc = part + rb * cols + c0;
      memset (acc, 0, (gsize) (c1 - c0) * sizeof (float));
      leaf_add_rows (acc, x + r0 * cols + c0, r1 - r0, c1 - c0, cols);
    }
  leaf_add_rows (out, part, nrb, cols, cols);
}

void
stsim_k_softmax_row (float *y, const float *x, gint64 n)
{
  float m = -INFINITY;
  for (gint64 i = 0; i < n; i++)
    m = x[i] > m ? x[i] : m;
  float s = 0.0f;
  for (gint64 i = 0; i < n; i++) {
    float e = fast_exp (x[i] - m);
    y[i] = e;
    s += e;
  }
  float inv = 1.0f / s;
  for (gint64 i = 0; i < n; i++)
    y[i] *= inv;
}

/* ---- dropout masks ------------------------------------------------------- */
/* Philox4x32-10 over many counters at once: the same words as rng.c's scalar
 * block function (key = seed, counter = (block, c1, c2, c3)), written so the
 * compiler can run one counter per SIMD lane. keep[4b+j] = word j >= thr. */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

STSIM_CLONES static void
leaf_philox_keep (guint32 k0, guint32 k1, guint32 c1, guint32 c2, guint32 c3, guint32 b0, gint64 nb, guint32 thr,
                  guint8 *restrict keep)
{
#pragma omp simd
  for (gint64 b = 0; b < nb; b++) {
    guint32 x0 = b0 + (guint32) b, x1 = c1, x2 = c2, x3 = c3, ka = k0, kb = k1;
    for (int r = 0; r < 10; r++) {
      guint64 p0 = (guint64) PHILOX_M0 * x0, p1 = (guint64) PHILOX_M1 * x2;
      guint32 n0 = (guint32) (p1 >> 32) ^ x1 ^ ka;
      guint32 n2 = (guint32) (p0 >> 32) ^ x3 ^ kb;
      x1 = (guint32) p1;
      x3 = (guint32) p0;
      x0 = n0;
      x2 = n2;
      ka += PHILOX_W0;
      kb += PHILOX_W1;
    }
    keep[4 * b] = x0 >= thr;
    keep[4 * b + 1] = x1 >= thr;
    keep[4 * b + 2] = x2 >= thr;
    keep[4 * b + 3] = x3 >= thr;
  }
}

#define KEEP_CHUNK_BLOCKS 4096

void
stsim_k_philox_keep (guint64 seed, guint32 c1, guint32 c2, guint32 c3, gint64 start, gint64 n, guint32 thr,
                     guint8 *keep)
{
  guint32 k0 = (guint32) seed, k1 = (guint32) (seed >> 32);
  gint64 i = 0;
  /* An unaligned head and a partial tail block go through a scratch block. */
  while (i < n && ((start + i) & 3)) {
    guint8 tmp[4];
    gint64 e = start + i;
    leaf_philox_keep (k0, k1, c1, c2, c3, (guint32) (e >> 2), 1, thr, tmp);
    for (int j = (int) (e & 3); j < 4 && i < n; j++, i++)
      keep[i] = tmp[j];
  }
  gint64 nb = (n - i) / 4;
  guint32 b0 = (guint32) ((start + i) >> 2);
  guint8 *kp = keep + i;
  gint64 nchunks = (nb + KEEP_CHUNK_BLOCKS - 1) / KEEP_CHUNK_BLOCKS;
#pragma omp parallel for schedule(static) if (nb * 4 > STSIM_PAR_MIN)
  for (gint64 c = 0; c < nchunks; c++) {
    gint64 s = c * KEEP_CHUNK_BLOCKS, e = MIN (nb, s + KEEP_CHUNK_BLOCKS);
    leaf_philox_keep (k0, k1, c1, c2, c3, b0 + (guint32) s, e - s, thr, kp + 4 * s);
  }
  i += 4 * nb;
  if (i < n) {
    guint8 tmp[4];
    leaf_philox_keep (k0, k1, c1, c2, c3, (guint32) ((start + i) >> 2), 1, thr, tmp);
    for (int j = 0; i < n; j++, i++)
      keep[i] = tmp[j];
  }
}

STSIM_CLONES static void
leaf_mask_scale (float *restrict y, float beta, const float *restrict x, const guint8 *restrict keep, float s, gint64 n)
{
  if (beta == 0.0f)
#pragma omp simd
    for (gint64 i = 0; i < n; i++)
      y[i] = keep[i] ? x[i] * s : 0.0f;
  else
#pragma omp simd
    for (gint64 i = 0; i < n; i++)
      y[i] += keep[i] ? x[i] * s : 0.0f;
}

void
stsim_k_mask_scale (float *y, float beta, const float *x, const guint8 *keep, float s, gint64 n)
{
  gint64 nchunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n > STSIM_PAR_MIN)
  for (gint64 c = 0; c < nchunks; c++) {
    gint64 st = c * CHUNK, e = MIN (n, st + CHUNK);
    leaf_mask_scale (y + st, beta, x + st, keep + st, s, e - st);
  }
}
