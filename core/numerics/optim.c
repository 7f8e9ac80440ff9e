/* optim.c: AdamW (HF transformers.AdamW, correct_bias=True), global-norm
 * clipping and the linear schedule (method.md §3.5). */
#include <omp.h>
#include "stsim/stsim-optim.h"
#include "numerics-private.h"

struct _StsimAdamW {
  StsimParamStore *store;
  StsimAdamWConfig cfg;
  float  *m, *v;
  gint64  n;
  guint64 t;
};

StsimAdamW *
stsim_adamw_new (StsimParamStore *store, const StsimAdamWConfig *config)
{
  g_return_val_if_fail (store != NULL && config != NULL, NULL);
  g_return_val_if_fail (stsim_param_store_is_trainable (store), NULL);
  gint64 n;
  g_return_val_if_fail (stsim_param_store_get_data (store, &n) != NULL, NULL);
  StsimAdamW *opt = g_new0 (StsimAdamW, 1);
  opt->store = store;
  opt->cfg = *config;
  opt->n = n;
  /* State blocks mirror the value block, view for view. */
  opt->m = g_aligned_alloc0 (1, sizeof (float) * MAX (n, 1), 64);
  opt->v = g_aligned_alloc0 (1, sizeof (float) * MAX (n, 1), 64);
  return opt;
}

void
stsim_adamw_free (StsimAdamW *opt)
{
  if (!opt)
    return;
  g_aligned_free (opt->m);
  g_aligned_free (opt->v);
  g_free (opt);
}

static void
adamw_range (float *restrict p, const float *restrict g, float *restrict m, float *restrict v, gint64 n,
             float b1, float b2, float eps, float step, float decay)
{
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (gint64 i = 0; i < n; i++) {
    float gi = g[i];
    float mi = b1 * m[i] + (1.0f - b1) * gi;
    float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float pi = p[i] - step * mi / (sqrtf (vi) + eps);
    p[i] = pi - decay * pi;
  }
}

void
stsim_adamw_step (StsimAdamW *opt, double lr)
{
  g_return_if_fail (opt != NULL);
  opt->t++;
  double t = (double) opt->t;
  /* eps is added to the uncorrected sqrt(v); the bias corrections fold
   * into the step size (HF AdamW). */
  double step = lr * sqrt (1.0 - pow (opt->cfg.beta2, t)) / (1.0 - pow (opt->cfg.beta1, t));
  float *p = stsim_param_store_get_data (opt->store, NULL);
  float *g = stsim_param_store_get_grad (opt->store, NULL);
  gsize nv = stsim_param_store_get_n_views (opt->store);
  for (gsize i = 0; i < nv; i++) {
    const StsimParamView *view = stsim_param_store_get_view (opt->store, i);
    if (view->flags & STSIM_VIEW_FROZEN)
      continue;
    double decay = (view->flags & STSIM_VIEW_NO_DECAY) ? 0.0 : lr * opt->cfg.weight_decay;
    gint64 o = view->offset;
    adamw_range (p + o, g + o, opt->m + o, opt->v + o, view->numel, (float) opt->cfg.beta1, (float) opt->cfg.beta2,
                 (float) opt->cfg.eps, (float) step, (float) decay);
  }
}

const StsimAdamWConfig *stsim_adamw_get_config (const StsimAdamW *opt) { return &opt->cfg; }

float *
stsim_adamw_get_m (StsimAdamW *opt, gint64 *n_floats)
{
  if (n_floats)
    *n_floats = opt->n;
  return opt->m;
}

float *
stsim_adamw_get_v (StsimAdamW *opt, gint64 *n_floats)
{
  if (n_floats)
    *n_floats = opt->n;
  return opt->v;
}

guint64 stsim_adamw_get_t (const StsimAdamW *opt) { return opt->t; }
void stsim_adamw_set_t (StsimAdamW *opt, guint64 t) { opt->t = t; }

/* ---- clipping -------------------------------------------------------------- */

#define NORM_CHUNK 65536

/* Σ g² over a range in fixed chunks summed in order: the same bits at any
 * thread count. */
static double
sumsq (const float *g, gint64 n)
{
  gint64 nc = (n + NORM_CHUNK - 1) / NORM_CHUNK;
  if (nc <= 1) {
    double s = 0.0;
    for (gint64 i = 0; i < n; i++)
      s += (double) g[i] * g[i];
    return s;
  }
  double *part = g_new (double, nc);
#pragma omp parallel for schedule(static)
  for (gint64 c = 0; c < nc; c++) {
    gint64 s0 = c * NORM_CHUNK, s1 = MIN (n, s0 + NORM_CHUNK);
    double s = 0.0;
    for (gint64 i = s0; i < s1; i++)
      s += (double) g[i] * g[i];
    part[c] = s;
  }
  double s = 0.0;
  for (gint64 c = 0; c < nc; c++)
    s += part[c];
  g_free (part);
  return s;
}

double
stsim_grad_norm (StsimParamStore *const *stores, gsize n_stores)
{
  double s = 0.0;
  for (gsize k = 0; k < n_stores; k++) {
    float *g = stsim_param_store_get_grad (stores[k], NULL);
    if (!g)
      continue;
    gsize nv = stsim_param_store_get_n_views (stores[k]);
    for (gsize i = 0; i < nv; i++) {
      const StsimParamView *view = stsim_param_store_get_view (stores[k], i);
      if (!(view->flags & STSIM_VIEW_FROZEN))
        s += sumsq (g + view->offset, view->numel);
    }
  }
  return sqrt (s);
}

gboolean
stsim_clip_grad_norm (StsimParamStore *const *stores, gsize n_stores, double max_norm, double *norm_out, GError **error)
{
  g_return_val_if_fail (stores != NULL || n_stores == 0, FALSE);
  double norm = stsim_grad_norm (stores, n_stores);
  if (norm_out)
    *norm_out = norm;
  if (!isfinite (norm)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NUMERIC,
                 "gradient norm is %g: a NaN or Inf reached the gradients (try a lower learning rate, "
                 "or check the inputs of this step)", norm);
    return FALSE;
  }
  double coef = max_norm / (norm + 1e-6);
  if (coef >= 1.0)
    return TRUE;
  for (gsize k = 0; k < n_stores; k++) {
    float *g = stsim_param_store_get_grad (stores[k], NULL);
    if (!g)
      continue;
    gsize nv = stsim_param_store_get_n_views (stores[k]);
    for (gsize i = 0; i < nv; i++) {
      const StsimParamView *view = stsim_param_store_get_view (stores[k], i);
      if (view->flags & STSIM_VIEW_FROZEN)
        continue;
      float *gv = g + view->offset;
      gint64 n = view->numel;
      float cf = (float) coef;
#pragma omp parallel for simd schedule(static) if (n > 65536)
      for (gint64 j = 0; j < n; j++)
        gv[j] *= cf;
    }
  }
  return TRUE;
}

double
stsim_lr_linear (double lr0, guint64 t, guint64 warmup, guint64 total)
{
  if (t < warmup)
    return lr0 * (double) t / (double) warmup;
  if (total <= warmup)
    return 0.0;
  double f = ((double) total - (double) t) / ((double) total - (double) warmup);
  return lr0 * MAX (0.0, f);
}
