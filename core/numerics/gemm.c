/* gemm.c: every GEMM of the autograd ops, with results that do not depend
 * on the thread count.
 *
 * OpenBLAS splits a threaded sgemm differently at each thread count, and
 * some of its kernels (Haswell's, for one) then round differently, so the
 * same product came out with other bits at 1 and 2 threads. Here the rows of
 * C are cut into chunks that depend only on the shape (M, N, K), never on
 * the threads; each chunk is one single-threaded sgemm call, and OpenMP only
 * decides which thread runs which chunk. Every output element is therefore
 * computed by the same call with the same arguments at any thread count.
 *
 * OpenBLAS's OpenMP build runs single-threaded inside an active parallel
 * region and when omp_get_max_threads () is 1; the region below always has
 * at least two threads when more than one is allowed, so OpenBLAS never
 * splits a chunk itself. */
#include <cblas.h>
#include <omp.h>
#include "numerics-private.h"

/* A chunk has at least this many rows and this much work (M·N·K): smaller
 * pieces cost more in packing than threads win. At most 4 chunks: enough
 * for 2-4 threads, and a 1-thread run pays little for the split (every
 * chunk repacks op(B)); docs/performance.md has the measured cost. */
#define GEMM_MIN_ROWS 128
#define GEMM_MIN_WORK (1 << 20)
#define GEMM_MAX_CHUNKS 4
/* Chunk row counts are multiples of the kernels' row unroll. */
#define GEMM_ROW_ALIGN 16

/* Number of row chunks of an M×N×K product: a power of two, from the shape alone. */
static gint64
gemm_n_chunks (gint64 M, gint64 N, gint64 K)
{
  gint64 c = 1;
  double work = (double) M * (double) N * (double) K;
  while (c < GEMM_MAX_CHUNKS && M >= 2 * c * GEMM_MIN_ROWS && work >= (double) (2 * c) * GEMM_MIN_WORK)
    c *= 2;
  return c;
}

static void
gemm_chunk (gboolean ta, gboolean tb, gint64 r0, gint64 r1, gint64 N, gint64 K, float alpha,
            const float *A, gint64 lda, const float *B, gint64 ldb, float beta, float *C, gint64 ldc)
{
  if (r1 <= r0)
    return;
  /* Row r of op(A) starts at A + r·lda (no transpose) or at column r of A (transposed). */
  const float *a = ta ? A + r0 : A + r0 * lda;
  cblas_sgemm (CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
               (int) (r1 - r0), (int) N, (int) K, alpha, a, (int) lda, B, (int) ldb, beta, C + r0 * ldc, (int) ldc);
}

gint64
stsim_k_sgemm_plan (gint64 M, gint64 N, gint64 K, gint64 *rows)
{
  gint64 nc = gemm_n_chunks (M, N, K);
  gint64 r = (M + nc - 1) / nc;
  *rows = (r + GEMM_ROW_ALIGN - 1) / GEMM_ROW_ALIGN * GEMM_ROW_ALIGN;
  return nc;
}

void
stsim_k_sgemm (gboolean ta, gboolean tb, gint64 M, gint64 N, gint64 K, float alpha, const float *A, gint64 lda,
               const float *B, gint64 ldb, float beta, float *C, gint64 ldc)
{
  if (M <= 0 || N <= 0)
    return;
  gint64 rows;
  gint64 nc = stsim_k_sgemm_plan (M, N, K, &rows);
  int nt = omp_get_max_threads ();
  if (omp_in_parallel () || nt <= 1) {
    for (gint64 c = 0; c < nc; c++)
      gemm_chunk (ta, tb, c * rows, MIN (M, (c + 1) * rows), N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  int team = (int) MAX (2, MIN ((gint64) nt, nc));
#pragma omp parallel for schedule(static) num_threads(team)
  for (gint64 c = 0; c < nc; c++)
    gemm_chunk (ta, tb, c * rows, MIN (M, (c + 1) * rows), N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
