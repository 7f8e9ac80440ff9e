/* stsim-optim.h: AdamW (Hugging Face transformers semantics), global-norm
 * clipping and the linear warmup/decay schedule (method.md §3.5).
 *
 * One optimizer per parameter store; its state (m, v: one block each, the
 * size of the store's value block, and the step count t) is contiguous so a
 * checkpoint saves it with three writes.
 *
 *   StsimAdamWConfig cfg = STSIM_ADAMW_CONFIG_INIT;    // b1 .9, b2 .999, eps 1e-8, wd 0
 *   g_autoptr(StsimAdamW) opt = stsim_adamw_new (store, &cfg);
 *   for (t = 0; t < T; t++) {
 *     ... forward, backward ...
 *     StsimParamStore *stores[] = { store };
 *     stsim_clip_grad_norm (stores, 1, 1.0, &norm);
 *     stsim_adamw_step (opt, stsim_lr_linear (lr0, t, warmup, T));
 *     stsim_param_store_zero_grad (store);
 *   }
 */
#pragma once
#include <glib.h>
#include "stsim-export.h"
#include "stsim-error.h"
#include "stsim-tensor.h"

G_BEGIN_DECLS

typedef struct {
  double beta1, beta2, eps, weight_decay;
} StsimAdamWConfig;

#define STSIM_ADAMW_CONFIG_INIT { 0.9, 0.999, 1e-8, 0.0 }

typedef struct _StsimAdamW StsimAdamW;

/* The store must be finished and trainable. */
STSIM_API
StsimAdamW *stsim_adamw_new  (StsimParamStore *store, const StsimAdamWConfig *config);
STSIM_API
void        stsim_adamw_free (StsimAdamW *opt);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimAdamW, stsim_adamw_free)

/* One update with learning rate @lr, t += 1:
 *   m = b1·m + (1-b1)·g ; v = b2·v + (1-b2)·g²
 *   p -= lr·sqrt(1-b2^t)/(1-b1^t) · m/(sqrt(v)+eps)     (eps on the uncorrected sqrt)
 *   p -= lr·wd·p                                        (views without NO_DECAY)
 * FROZEN views are skipped entirely (no state update). */
STSIM_API
void        stsim_adamw_step (StsimAdamW *opt, double lr);

STSIM_API
const StsimAdamWConfig *stsim_adamw_get_config (const StsimAdamW *opt);
/* State for checkpoints: m and v have n_floats each (the store's block size). */
STSIM_API
float      *stsim_adamw_get_m (StsimAdamW *opt, gint64 *n_floats);
STSIM_API
float      *stsim_adamw_get_v (StsimAdamW *opt, gint64 *n_floats);
STSIM_API
guint64     stsim_adamw_get_t (const StsimAdamW *opt);
STSIM_API
void        stsim_adamw_set_t (StsimAdamW *opt, guint64 t);

/* Global L2 norm of the gradients of every non-frozen view of the stores
 * (accumulated in double). */
STSIM_API
double      stsim_grad_norm (StsimParamStore *const *stores, gsize n_stores);
/* Scales all those gradients by min(1, max_norm/(norm+1e-6)) and returns
 * the norm before clipping in *norm_out. A NaN/Inf norm is an
 * STSIM_ERROR_NUMERIC error and leaves the gradients untouched. */
STSIM_API
gboolean    stsim_clip_grad_norm (StsimParamStore *const *stores, gsize n_stores, double max_norm,
                                  double *norm_out, GError **error);

/* lr0·t/W during warmup (t < W), then lr0·max(0, (T-t)/(T-W)); t counts the
 * optimizer steps already taken (0 at the first). */
STSIM_API
double      stsim_lr_linear (double lr0, guint64 t, guint64 warmup, guint64 total);

G_END_DECLS
