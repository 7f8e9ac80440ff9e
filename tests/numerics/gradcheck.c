/* gradcheck.c: the checker behind test-gradcheck (see gradcheck.h). */
#include "gradcheck.h"

void
gc_inputs_init (GcInputs *in)
{
  memset (in, 0, sizeof *in);
}

int
gc_add (GcInputs *in, int ndim, const gint64 *shape, gboolean grad, double lo, double hi, guint64 seed)
{
  int i = in->n_in++;
  g_assert_cmpint (i, <, GC_MAX_IN);
  in->ndim[i] = ndim;
  gint64 n = 1;
  for (int d = 0; d < ndim; d++) {
    in->shape[i][d] = shape[d];
    n *= shape[d];
  }
  in->numel[i] = n;
  in->grad[i] = grad;
  in->x[i] = g_new (double, MAX (n, 1));
  StsimRng rng;
  stsim_rng_init (&rng, seed, STSIM_RNG_STREAM_USER + (guint32) i);
  for (gint64 j = 0; j < n; j++)
    in->x[i][j] = (double) (float) (lo + (hi - lo) * stsim_rng_uniform_double (&rng));
  return i;
}

void
gc_inputs_clear (GcInputs *in)
{
  for (int i = 0; i < in->n_in; i++)
    g_free (in->x[i]);
  memset (in, 0, sizeof *in);
}

double
gc_gelu (double x)
{
  return 0.5 * x * (1.0 + erf (x / sqrt (2.0)));
}

gboolean
gc_check (const char *name, GcInputs *in, GcBuild build, GcRef ref, gpointer user, double fwd_bound, double grad_bound)
{
  g_autoptr(StsimTape) tape = stsim_tape_new (1234, 0);
  StsimTensor *ts[GC_MAX_IN] = { 0 };
  for (int i = 0; i < in->n_in; i++) {
    g_autofree float *f = g_new (float, MAX (in->numel[i], 1));
    for (gint64 j = 0; j < in->numel[i]; j++)
      f[j] = (float) in->x[i][j];
    ts[i] = stsim_tensor_from_data (tape, in->ndim[i], in->shape[i], f);
    stsim_tensor_set_requires_grad (ts[i], in->grad[i]);
  }
  StsimTensor *out = build (tape, ts, user);
  g_assert_nonnull (out);
  gint64 n_out = out->numel;

  /* Upstream gradient: fixed random values. */
  g_autofree float *G = g_new (float, MAX (n_out, 1));
  g_autofree double *Gd = g_new (double, MAX (n_out, 1));
  StsimRng rng;
  stsim_rng_init (&rng, 99, STSIM_RNG_STREAM_USER);
  for (gint64 j = 0; j < n_out; j++) {
    G[j] = (float) (stsim_rng_uniform_double (&rng) * 2.0 - 1.0);
    Gd[j] = G[j];
  }

  /* Forward against the reference. */
  g_autofree double *yref = g_new (double, MAX (n_out, 1));
  ref (in->x, yref, user);
  double fmax = 0.0, fscale = 1e-12;
  for (gint64 j = 0; j < n_out; j++) {
    fmax = MAX (fmax, fabs (out->data[j] - yref[j]));
    fscale = MAX (fscale, fabs (yref[j]));
  }
  double ferr = fmax / MAX (fscale, 1.0);

  g_autoptr(GError) err = NULL;
  gboolean ok = stsim_tape_backward (tape, out, G, &err);
  g_assert_no_error (err);
  g_assert_true (ok);

  double worst = 0.0;
  g_autofree double *ybuf = g_new (double, MAX (n_out, 1));
  const double h = 1e-6;
  for (int i = 0; i < in->n_in; i++) {
    if (!in->grad[i])
      continue;
    g_assert_nonnull (ts[i]->grad);
    double emax = 0.0, gscale = 0.0;
    for (gint64 j = 0; j < in->numel[i]; j++) {
      double x0 = in->x[i][j], lp = 0.0, lm = 0.0;
      in->x[i][j] = x0 + h;
      ref (in->x, ybuf, user);
      for (gint64 k = 0; k < n_out; k++)
        lp += Gd[k] * ybuf[k];
      in->x[i][j] = x0 - h;
      ref (in->x, ybuf, user);
      for (gint64 k = 0; k < n_out; k++)
        lm += Gd[k] * ybuf[k];
      in->x[i][j] = x0;
      double num = (lp - lm) / (2.0 * h);
      emax = MAX (emax, fabs (num - ts[i]->grad[j]));
      gscale = MAX (gscale, fabs (num));
    }
    double rel = emax / MAX (gscale, 1e-3);
    worst = MAX (worst, rel);
  }
  gboolean pass = ferr <= fwd_bound && worst <= grad_bound;
  g_test_message ("%-28s fwd err %.2e (bound %.0e)  grad err %.2e (bound %.0e)  %s",
                  name, ferr, fwd_bound, worst, grad_bound, pass ? "ok" : "FAIL");
  if (!pass)
    g_printerr ("# %-28s fwd err %.2e (bound %.0e)  grad err %.2e (bound %.0e)  %s\n",
                name, ferr, fwd_bound, worst, grad_bound, pass ? "ok" : "FAIL");
  return pass;
}
