/* sts-metrics.c: cosine and correlations in double precision, with the
 * semantics of numpy/scipy that SentEval relies on. */
#include <float.h>
#include <math.h>

#include "stsim/stsim-sts.h"

/* np.nan_to_num on float32: NaN -> 0, +-Inf -> +-FLT_MAX. */
static inline double
finite_or_clamped (float x)
{
  if (isnan (x))
    return 0.0;
  if (isinf (x))
    return x > 0 ? FLT_MAX : -FLT_MAX;
  return x;
}

double
stsim_cosine (const float *u, const float *v, gsize d)
{
  g_return_val_if_fail (d == 0 || (u != NULL && v != NULL), 0.0);
  double uv = 0.0, uu = 0.0, vv = 0.0;
  for (gsize i = 0; i < d; i++) {
    double a = finite_or_clamped (u[i]), b = finite_or_clamped (v[i]);
    uv += a * b;
    uu += a * a;
    vv += b * b;
  }
  /* SentEval's utils.cosine: dot / (sqrt(u.u) * sqrt(v.v)); a zero vector
   * gives NaN there, which np.nan_to_num turns into 0. */
  double c = uv / (sqrt (uu) * sqrt (vv));
  if (isnan (c))
    return 0.0;
  if (isinf (c))
    return c > 0 ? DBL_MAX : -DBL_MAX;
  return c;
}

double
stsim_pearson (const double *x, const double *y, gsize n)
{
  g_return_val_if_fail (n == 0 || (x != NULL && y != NULL), NAN);
  if (n < 2)
    return NAN;
  double mx = 0.0, my = 0.0;
  for (gsize i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= (double) n;
  my /= (double) n;
  double sxy = 0.0, sxx = 0.0, syy = 0.0;
  for (gsize i = 0; i < n; i++) {
    double a = x[i] - mx, b = y[i] - my;
    sxy += a * b;
    sxx += a * a;
    syy += b * b;
  }
  if (isnan (sxy) || sxx == 0.0 || syy == 0.0)  /* scipy: constant input has no correlation */
    return NAN;
  double r = sxy / (sqrt (sxx) * sqrt (syy));
  return CLAMP (r, -1.0, 1.0);
}

static gint
cmp_by_value (gconstpointer a, gconstpointer b, gpointer data)
{
  const double *x = data;
  double va = x[*(const gsize *) a], vb = x[*(const gsize *) b];
  return (va > vb) - (va < vb);
}

void
stsim_rank_average (const double *x, gsize n, double *ranks)
{
  g_return_if_fail (n == 0 || (x != NULL && ranks != NULL));
  g_autofree gsize *idx = g_new (gsize, n ? n : 1);
  for (gsize i = 0; i < n; i++)
    idx[i] = i;
  g_qsort_with_data (idx, (gint) n, sizeof (gsize), cmp_by_value, (gpointer) x);
  for (gsize i = 0; i < n;) {
    gsize j = i + 1;
    while (j < n && x[idx[j]] == x[idx[i]])
      j++;
    /* positions i..j-1 share the mean of ranks i+1..j */
    double r = 0.5 * (double) (i + 1 + j);
    for (gsize k = i; k < j; k++)
      ranks[idx[k]] = r;
    i = j;
  }
}

double
stsim_spearman (const double *x, const double *y, gsize n)
{
  g_return_val_if_fail (n == 0 || (x != NULL && y != NULL), NAN);
  if (n < 2)
    return NAN;
  for (gsize i = 0; i < n; i++)
    if (isnan (x[i]) || isnan (y[i]))  /* scipy's nan_policy='propagate' */
      return NAN;
  g_autofree double *rx = g_new (double, n);
  g_autofree double *ry = g_new (double, n);
  stsim_rank_average (x, n, rx);
  stsim_rank_average (y, n, ry);
  return stsim_pearson (rx, ry, n);
}
