/* contrastive.c: the `contrastive` objective: SimCSE's InfoNCE (method.md
 * §3.3), its symmetric variant, and supervised SimCSE with hard negatives
 * (§3.8). README.md beside this file maps the equations to the code.
 *
 * Unsupervised (2 views):  S = cos(z1, z2ᵀ)/τ  [B, B];  L = CE(S, diag).
 * Symmetric:               L = ½ (CE(S, diag) + CE(Sᵀ, diag)).
 * Supervised (3 views):    S = [cos(z1, z2ᵀ) | cos(z1, z3ᵀ)]/τ  [B, 2B], plus
 *                          w on S[i, B+i]; L = CE(S, i). */
#include <math.h>

#include <stsim/stsim.h>

static const StsimParamSpec contrastive_params[] = {
  { "temperature", STSIM_PARAM_DOUBLE, "0.05", .min = 1e-4, .max = 100,
    .blurb = "softmax temperature tau of the cosine logits (SimCSE: 0.05)" },
  { "symmetric", STSIM_PARAM_BOOL, "false",
    .blurb = "also the view-2 -> view-1 direction: (CE(S) + CE(S^T))/2 (SimCSE uses one direction)" },
  { "hard_negative_weight", STSIM_PARAM_DOUBLE, "0", .min = -100, .max = 100,
    .blurb = "supervised triples only: added to each row's own hard-negative logit (a log-weight; 0 = alpha 1)" },
  { NULL }
};

typedef struct {
  double tau;
  gboolean symmetric;
  double hard_negative_weight;
} Contrastive;

static gpointer
contrastive_create (const StsimParams *params, StsimContext *ctx, GError **error)
{
  Contrastive *c = g_new0 (Contrastive, 1);
  c->tau = stsim_params_get_double (params, "temperature");
  c->symmetric = stsim_params_get_bool (params, "symmetric");
  c->hard_negative_weight = stsim_params_get_double (params, "hard_negative_weight");
  return c;
}

static void
contrastive_destroy (gpointer state)
{
  g_free (state);
}

/* Mean CE of logits [B, C] against targets 0..B-1. */
static StsimTensor *
ce_diag (StsimTape *tape, StsimTensor *logits, gint64 B)
{
  g_autofree gint32 *target = g_new (gint32, B);
  for (gint64 i = 0; i < B; i++)
    target[i] = (gint32) i;
  return stsim_cross_entropy (tape, logits, target, -100);
}

static gboolean
contrastive_loss (gpointer state, StsimTrainStep *step, StsimTensor **loss, GError **error)
{
  Contrastive *c = state;
  StsimTape *tape = stsim_train_step_get_tape (step);
  const guint V = stsim_train_step_get_n_views (step);
  const gint64 B = stsim_train_step_get_n_sentences (step);
  StsimTensor *z1 = stsim_train_step_get_view (step, 0, error);
  StsimTensor *z2 = z1 ? stsim_train_step_get_view (step, 1, error) : NULL;
  if (!z2)
    return FALSE;
  const float inv_tau = (float) (1.0 / c->tau);
  StsimTensor *s12 = stsim_scale (tape, stsim_cosine_matrix (tape, z1, z2), inv_tau);

  if (V >= 3) {
    if (c->symmetric) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                   "symmetric = true is for two views; supervised triples use one direction (method.md §3.8)");
      return FALSE;
    }
    StsimTensor *z3 = stsim_train_step_get_view (step, 2, error);
    if (!z3)
      return FALSE;
    StsimTensor *s13 = stsim_scale (tape, stsim_cosine_matrix (tape, z1, z3), inv_tau);
    StsimTensor *parts[2] = { s12, s13 };
    StsimTensor *logits = stsim_concat_cols (tape, parts, 2);
    if (c->hard_negative_weight != 0 && logits) {
      /* A constant matrix with w at each row's own hard negative. */
      gint64 shape[2] = { B, 2 * B };
      StsimTensor *w = stsim_tensor_zeros (tape, 2, shape);
      for (gint64 i = 0; i < B; i++)
        w->data[i * 2 * B + B + i] = (float) c->hard_negative_weight;
      logits = stsim_add (tape, logits, w);
    }
    *loss = ce_diag (tape, logits, B);
  } else if (c->symmetric) {
    /* cos(z2, z1ᵀ) = Sᵀ, computed directly rather than transposed. */
    StsimTensor *s21 = stsim_scale (tape, stsim_cosine_matrix (tape, z2, z1), inv_tau);
    *loss = stsim_axpby (tape, 0.5f, ce_diag (tape, s12, B), 0.5f, ce_diag (tape, s21, B));
  } else
    *loss = ce_diag (tape, s12, B);

  if (!*loss) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "contrastive: building the loss failed (B = %" G_GINT64_FORMAT
                 ")", B);
    return FALSE;
  }
  /* In-batch retrieval accuracy of view 1 -> view 2: a cheap sanity signal. */
  gint64 hits = 0;
  for (gint64 i = 0; i < B; i++) {
    const float *row = s12->data + i * B;
    gint64 best = 0;
    for (gint64 j = 1; j < B; j++)
      if (row[j] > row[best])
        best = j;
    hits += best == i;
  }
  stsim_train_step_log (step, "accuracy", B ? (double) hits / B : 0.0);
  return TRUE;
}

static const StsimObjectiveVTable contrastive_vtable = { .loss = contrastive_loss };

static const StsimComponentDesc contrastive_desc = {
  .kind = STSIM_KIND_OBJECTIVE, .name = "contrastive",
  .summary = "SimCSE InfoNCE over the two dropout views (or supervised triples with hard negatives)",
  .params = contrastive_params, .create = contrastive_create, .destroy = contrastive_destroy,
  STSIM_VTABLE (contrastive_vtable),
};

STSIM_PLUGIN_DEFINE ("contrastive", "0.1.0", "MIT", "SimCSE contrastive objective (InfoNCE)",
                     "@inproceedings{gao2021simcse, title={{SimCSE}: Simple Contrastive Learning of Sentence "
                     "Embeddings}, author={Gao, Tianyu and Yao, Xingcheng and Chen, Danqi}, booktitle={EMNLP}, "
                     "year={2021}}",
                     &contrastive_desc)
