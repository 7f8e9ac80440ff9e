/* test-gemm.c: stsim_k_sgemm (core/numerics/gemm.c) gives the same bits at
 * 1, 2 and 3 threads, whatever kernel OpenBLAS picked (the suite runs with
 * OPENBLAS_CORETYPE unset and set), and agrees with a double-precision
 * product computed here. */
#include <math.h>
#include "numerics/numerics-private.h"

static void
fill (float *x, gint64 n, guint64 seed)
{
  StsimRng r;
  stsim_rng_init (&r, seed, STSIM_RNG_STREAM_INIT);
  stsim_rng_fill_normal (&r, x, n, 0, 1);
}

/* C = op(A)·op(B) + 0.5·C0 in double. */
static double
ref_elem (gboolean ta, gboolean tb, const float *A, gint64 lda, const float *B, gint64 ldb, gint64 i, gint64 j,
          gint64 K)
{
  double s = 0.0;
  for (gint64 k = 0; k < K; k++)
    s += (double) (ta ? A[k * lda + i] : A[i * lda + k]) * (double) (tb ? B[j * ldb + k] : B[k * ldb + j]);
  return s;
}

static void
check_shape (gint64 M, gint64 N, gint64 K, gboolean ta, gboolean tb)
{
  gint64 lda = ta ? M : K, ldb = tb ? K : N;
  g_autofree float *A = g_new (float, M * K), *B = g_new (float, K * N), *C0 = g_new (float, M * N);
  fill (A, M * K, 1);
  fill (B, K * N, 2);
  fill (C0, M * N, 3);
  float *out[3];
  for (int t = 0; t < 3; t++) {
    stsim_set_threads (t + 1);
    out[t] = g_memdup2 (C0, sizeof (float) * M * N);
    stsim_k_sgemm (ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.5f, out[t], N);
  }
  stsim_set_threads (0);
  g_assert_cmpmem (out[0], sizeof (float) * M * N, out[1], sizeof (float) * M * N);
  g_assert_cmpmem (out[0], sizeof (float) * M * N, out[2], sizeof (float) * M * N);
  /* Sampled against the reference: rows at chunk edges and the last row. */
  gint64 rows[] = { 0, 15, 16, 63, 64, 65, M / 2, M - 17, M - 1 };
  for (gsize r = 0; r < G_N_ELEMENTS (rows); r++)
    for (gint64 j = 0; j < N; j += MAX (1, N / 7)) {
      gint64 i = CLAMP (rows[r], 0, M - 1);
      double want = ref_elem (ta, tb, A, lda, B, ldb, i, j, K) + 0.5 * C0[i * N + j];
      g_assert_cmpfloat (fabs (out[0][i * N + j] - want), <=, 1e-4 * sqrt ((double) K) * 4);
    }
  for (int t = 0; t < 3; t++)
    g_free (out[t]);
}

static void
test_gemm_threads (void)
{
  /* Shapes that give 1, 2 and 4 row chunks (gemm.c: at least 128 rows each),
   * with ragged last chunks. */
  static const gint64 shapes[][3] = {
    { 37, 29, 41 }, { 130, 300, 70 }, { 257, 333, 96 }, { 520, 256, 256 }, { 1031, 129, 200 },
  };
  for (gsize s = 0; s < G_N_ELEMENTS (shapes); s++)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++)
        check_shape (shapes[s][0], shapes[s][1], shapes[s][2], ta, tb);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/numerics/gemm/threads-bit-identical", test_gemm_threads);
  return g_test_run ();
}
