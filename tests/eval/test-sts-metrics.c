/* test-sts-metrics.c: cosine, Pearson, average ranks and Spearman against
 * values worked out by hand (the derivations are in the comments). */
#include <float.h>
#include <math.h>

#include "stsim/stsim-sts.h"

static void
test_cosine_basic (void)
{
  const float u[] = { 1, 0 }, v[] = { 1, 1 };
  g_assert_cmpfloat_with_epsilon (stsim_cosine (u, v, 2), 1.0 / sqrt (2.0), 1e-15);
  const float a[] = { 3, 4, 0 }, b[] = { -3, -4, 0 };
  g_assert_cmpfloat_with_epsilon (stsim_cosine (a, b, 3), -1.0, 1e-15);
}

static void
test_cosine_zero_vector_is_zero (void)
{
  /* 0/0 is NaN in numpy; SentEval's np.nan_to_num makes it 0. */
  const float z[] = { 0, 0, 0 }, v[] = { 1, 2, 3 };
  g_assert_cmpfloat (stsim_cosine (z, v, 3), ==, 0.0);
  g_assert_cmpfloat (stsim_cosine (z, z, 3), ==, 0.0);
}

static void
test_cosine_nan_inputs (void)
{
  /* NaN coordinates count as 0 (nan_to_num on the embeddings): (NaN, 1).(5, 1)
   * becomes (0, 1).(5, 1) = 1 / sqrt(26). */
  const float u[] = { NAN, 1 }, v[] = { 5, 1 };
  g_assert_cmpfloat_with_epsilon (stsim_cosine (u, v, 2), 1.0 / sqrt (26.0), 1e-15);
  const float n[] = { NAN, NAN };
  g_assert_cmpfloat (stsim_cosine (n, v, 2), ==, 0.0);
  /* +Inf becomes FLT_MAX: the direction of (FLT_MAX, 0) is (1, 0). */
  const float i[] = { INFINITY, 0 }, w[] = { 1, 0 };
  g_assert_cmpfloat_with_epsilon (stsim_cosine (i, w, 2), 1.0, 1e-15);
}

static void
test_pearson_hand (void)
{
  /* x = 1..4, y = 2,4,5,9: deviations (-1.5,-.5,.5,1.5), (-3,-1,0,4);
   * sxy = 11, sxx = 5, syy = 26, r = 11 / sqrt(130). */
  const double x[] = { 1, 2, 3, 4 }, y[] = { 2, 4, 5, 9 };
  g_assert_cmpfloat_with_epsilon (stsim_pearson (x, y, 4), 11.0 / sqrt (130.0), 1e-15);
  const double yn[] = { -2, -4, -5, -9 };
  g_assert_cmpfloat_with_epsilon (stsim_pearson (x, yn, 4), -11.0 / sqrt (130.0), 1e-15);
}

static void
test_pearson_undefined (void)
{
  const double x[] = { 1, 2, 3 }, c[] = { 7, 7, 7 };
  g_assert_true (isnan (stsim_pearson (x, c, 3)));  /* constant input */
  g_assert_true (isnan (stsim_pearson (x, x, 1)));  /* one pair */
}

static void
test_rank_average_ties (void)
{
  /* 3,1,4,1,5: the two 1s share ranks 1 and 2 -> 1.5 each. */
  const double x[] = { 3, 1, 4, 1, 5 };
  double r[5];
  stsim_rank_average (x, 5, r);
  const double want[] = { 3, 1.5, 4, 1.5, 5 };
  for (int i = 0; i < 5; i++)
    g_assert_cmpfloat (r[i], ==, want[i]);
  /* All equal: everyone gets (1 + 4) / 2. */
  const double e[] = { 2, 2, 2, 2 };
  double re[4];
  stsim_rank_average (e, 4, re);
  for (int i = 0; i < 4; i++)
    g_assert_cmpfloat (re[i], ==, 2.5);
}

static void
test_spearman_ties_hand (void)
{
  /* x = 1,2,2,3,4 -> ranks 1,2.5,2.5,4,5; y = 1,3,2,2,5 -> ranks 1,4,2.5,2.5,5.
   * Both rank means are 3; deviations (-2,-.5,-.5,1,2), (-2,1,-.5,-.5,2):
   * sxy = 4 - .5 + .25 - .5 + 4 = 7.25, sxx = syy = 9.5, rho = 29/38. */
  const double x[] = { 1, 2, 2, 3, 4 }, y[] = { 1, 3, 2, 2, 5 };
  g_assert_cmpfloat_with_epsilon (stsim_spearman (x, y, 5), 29.0 / 38.0, 1e-15);
}

static void
test_spearman_monotone (void)
{
  /* Any strictly increasing transform has rho = 1, whatever Pearson says. */
  const double x[] = { 0.1, 0.5, 0.2, 0.9, 0.3 }, y[] = { 1, 1000, 10, 10000, 100 };
  g_assert_cmpfloat_with_epsilon (stsim_spearman (x, y, 5), 1.0, 1e-15);
  g_assert_cmpfloat (stsim_pearson (x, y, 5), <, 0.95);
}

static void
test_spearman_nan_propagates (void)
{
  const double x[] = { 1, NAN, 3 }, y[] = { 1, 2, 3 };
  g_assert_true (isnan (stsim_spearman (x, y, 3)));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sts/metrics/cosine-basic", test_cosine_basic);
  g_test_add_func ("/sts/metrics/cosine-zero-vector", test_cosine_zero_vector_is_zero);
  g_test_add_func ("/sts/metrics/cosine-nan-inputs", test_cosine_nan_inputs);
  g_test_add_func ("/sts/metrics/pearson-hand", test_pearson_hand);
  g_test_add_func ("/sts/metrics/pearson-undefined", test_pearson_undefined);
  g_test_add_func ("/sts/metrics/rank-average-ties", test_rank_average_ties);
  g_test_add_func ("/sts/metrics/spearman-ties-hand", test_spearman_ties_hand);
  g_test_add_func ("/sts/metrics/spearman-monotone", test_spearman_monotone);
  g_test_add_func ("/sts/metrics/spearman-nan", test_spearman_nan_propagates);
  return g_test_run ();
}
