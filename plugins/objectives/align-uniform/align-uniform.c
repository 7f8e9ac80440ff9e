/* align-uniform.c: the `align-uniform` objective: the alignment and
 * uniformity losses of Wang & Isola (ICML 2020) over the two dropout views,
 * written from autograd ops. It is the worked objective of
 * docs/plugin-guide.md; README.md beside this file maps the equations to
 * the code.
 *
 * With x̂ = x/‖x‖ (rows of the views z1, z2 [B, H] projected to the sphere):
 *
 *   L_align = (1/B) Σ_i ‖x̂1_i − x̂2_i‖^α                              (α = 2)
 *   L_unif(z) = log( 1/(B(B−1)) Σ_{i≠j} exp(−t ‖ẑ_i − ẑ_j‖²) )       (t = 2)
 *   L = w_a · L_align + w_u · ½ (L_unif(z1) + L_unif(z2))
 *
 * For unit vectors ‖û − v̂‖² = 2 − 2 cos(u, v), so the uniformity term is
 * the log of a masked mean of exp(2t·cos − 2t) over the cosine matrix. */
#include <math.h>

#include <stsim/stsim.h>

static const StsimParamSpec align_uniform_params[] = {
  { "alpha", STSIM_PARAM_DOUBLE, "2", .min = 0.1, .max = 10,
    .blurb = "exponent of the alignment distance ||x1 - x2||^alpha (Wang & Isola: 2)" },
  { "t", STSIM_PARAM_DOUBLE, "2", .min = 0.01, .max = 100,
    .blurb = "uniformity temperature: log mean exp(-t ||x_i - x_j||^2) (Wang & Isola: 2)" },
  { "align_weight", STSIM_PARAM_DOUBLE, "1", .min = 0, .max = 1000,
    .blurb = "weight of the alignment term inside this objective" },
  { "uniform_weight", STSIM_PARAM_DOUBLE, "1", .min = 0, .max = 1000,
    .blurb = "weight of the uniformity term (the mean of both views' terms)" },
  { NULL }
};

typedef struct {
  double alpha, t, w_align, w_unif;
} AlignUniform;

static gpointer
align_uniform_create (const StsimParams *params, StsimContext *ctx, GError **error)
{
  AlignUniform a = {
    .alpha = stsim_params_get_double (params, "alpha"),
    .t = stsim_params_get_double (params, "t"),
    .w_align = stsim_params_get_double (params, "align_weight"),
    .w_unif = stsim_params_get_double (params, "uniform_weight"),
  };
  if (a.w_align == 0 && a.w_unif == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "align_weight and uniform_weight are both 0: the loss would be constant; set one of them > 0 "
                 "(or disable the section with enabled = false)");
    return NULL;
  }
  return g_memdup2 (&a, sizeof a);
}

static void
align_uniform_destroy (gpointer state)
{
  g_free (state);
}

/* (1/B) Σ_i ‖x̂1_i − x̂2_i‖^α. The power goes through exp(α/2 · log d²),
 * except for the default α = 2, which needs none. */
static StsimTensor *
alignment (StsimTape *tape, StsimTensor *z1, StsimTensor *z2, double alpha)
{
  StsimTensor *d = stsim_sub (tape, stsim_l2_normalize (tape, z1, 1e-8f), stsim_l2_normalize (tape, z2, 1e-8f));
  StsimTensor *d2 = stsim_row_sum (tape, stsim_mul (tape, d, d));   /* [B] */
  if (alpha != 2.0)
    d2 = stsim_exp (tape, stsim_scale (tape, stsim_log (tape, d2, 1e-12f), (float) (alpha / 2)));
  return stsim_mean (tape, d2);
}

/* log( e^{−2t}/(B(B−1)) · Σ_{i≠j} exp(2t·cos(z_i, z_j)) ), B >= 2. The
 * diagonal is removed by a constant 0/1 mask: a tensor made with
 * stsim_tensor_zeros and filled here needs no gradient. */
static StsimTensor *
uniformity (StsimTape *tape, StsimTensor *z, double t)
{
  const gint64 B = z->shape[0];
  gint64 shape[2] = { B, B };
  StsimTensor *off_diag = stsim_tensor_zeros (tape, 2, shape);
  for (gint64 i = 0; i < B * B; i++)
    off_diag->data[i] = i / B != i % B;
  StsimTensor *e = stsim_exp (tape, stsim_scale (tape, stsim_cosine_matrix (tape, z, z), (float) (2 * t)));
  StsimTensor *sum = stsim_sum (tape, stsim_mul (tape, e, off_diag));
  return stsim_log (tape, stsim_scale (tape, sum, (float) (exp (-2 * t) / (double) (B * (B - 1)))), 1e-30f);
}

static gboolean
align_uniform_loss (gpointer state, StsimTrainStep *step, StsimTensor **loss, GError **error)
{
  AlignUniform *a = state;
  StsimTape *tape = stsim_train_step_get_tape (step);
  const gsize B = stsim_train_step_get_n_sentences (step);
  StsimTensor *z1 = stsim_train_step_get_view (step, 0, error);
  StsimTensor *z2 = z1 ? stsim_train_step_get_view (step, 1, error) : NULL;
  if (!z2)
    return FALSE;

  StsimTensor *align = alignment (tape, z1, z2, a->alpha);
  StsimTensor *total = stsim_scale (tape, align, (float) a->w_align);
  if (align)
    stsim_train_step_log (step, "align", align->data[0]);
  /* One sentence (an epoch's last batch) has no pairs: no uniformity term. */
  if (B >= 2) {
    StsimTensor *unif = stsim_axpby (tape, 0.5f, uniformity (tape, z1, a->t), 0.5f, uniformity (tape, z2, a->t));
    total = stsim_axpby (tape, 1.0f, total, (float) a->w_unif, unif);
    if (unif)
      stsim_train_step_log (step, "uniform", unif->data[0]);
  }
  if (!total) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED,
                 "align-uniform: building the loss failed (B = %" G_GSIZE_FORMAT ")", B);
    return FALSE;
  }
  *loss = total;
  return TRUE;
}

static const StsimObjectiveVTable align_uniform_vtable = { .loss = align_uniform_loss };

static const StsimComponentDesc align_uniform_desc = {
  .kind = STSIM_KIND_OBJECTIVE, .name = "align-uniform",
  .summary = "alignment + uniformity on the hypersphere (Wang & Isola 2020) over the two dropout views",
  .params = align_uniform_params, .create = align_uniform_create, .destroy = align_uniform_destroy,
  STSIM_VTABLE (align_uniform_vtable),
};

STSIM_PLUGIN_DEFINE ("align-uniform", "0.1.0", "MIT", "alignment and uniformity losses (plugin guide example)",
                     "@inproceedings{wang2020understanding, title={Understanding Contrastive Representation "
                     "Learning through Alignment and Uniformity on the Hypersphere}, author={Wang, Tongzhou and "
                     "Isola, Phillip}, booktitle={ICML}, year={2020}}",
                     &align_uniform_desc)
