/* head.c: the projection heads of training (head.h). */
#include "train/head.h"
#include "io/rundir.h"
#include "train/train-private.h"
#include "train/dist.h"
#include "stsim/stsim-rng.h"
#include "stsim/stsim-plugin.h"

struct _StsimHead {
  StsimHeadKind    kind;
  gint64           H;
  StsimTensor     *mlp_w, *mlp_b;                 /* mlp: the model's pooler.dense */
  StsimParamStore *store;                         /* bn */
  StsimTensor     *w1, *g1, *b1, *w2;
  float           *rm1, *rv1, *rm2, *rv2;         /* running statistics (unused at eval) */
};

static gboolean
init_mlp (StsimHead *head, StsimModel *model, const char *encoder_label, GError **error)
{
  StsimParamStore *ms = stsim_model_get_params (model);
  const StsimParamView *w = stsim_param_store_lookup (ms, "pooler.dense.weight");
  const StsimParamView *b = stsim_param_store_lookup (ms, "pooler.dense.bias");
  if (!w || !b) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                 "[train] head = mlp trains the model's pooler (SimCSE's MLP), but the encoder '%s' was built "
                 "without one; set mlp = true in its section (with mlp_init = random for SimCSE's fresh MLP) or use head = none",
                 encoder_label);
    return FALSE;
  }
  head->mlp_w = w->tensor;
  head->mlp_b = b->tensor;
  return TRUE;
}

static float *
filled (gint64 n, float value)
{
  float *p = g_new (float, n);
  for (gint64 i = 0; i < n; i++)
    p[i] = value;
  return p;
}

/* DiffCSE's projector (method.md §4.1): Linear(H, 2H, no bias), BN(2H),
 * ReLU, Linear(2H, H, no bias), BN(H, affine=False); names as DiffCSE's
 * ProjectionMLP `net`. */
static gboolean
init_bn (StsimHead *head, guint64 seed, GError **error)
{
  gint64 H = head->H;
  gint64 s1[2] = { 2 * H, H }, s2[1] = { 2 * H }, s3[2] = { H, 2 * H };
  head->store = stsim_param_store_new ("head", TRUE);
  head->w1 = stsim_param_store_add (head->store, "mlp.net.0.weight", 2, s1, 0);
  head->g1 = stsim_param_store_add (head->store, "mlp.net.1.weight", 1, s2, STSIM_VIEW_NO_DECAY);
  head->b1 = stsim_param_store_add (head->store, "mlp.net.1.bias", 1, s2, STSIM_VIEW_NO_DECAY);
  head->w2 = stsim_param_store_add (head->store, "mlp.net.3.weight", 2, s3, 0);
  if (!stsim_param_store_finish (head->store, error))
    return FALSE;
  /* HF _init_weights for the linears (method.md §1.5), BN γ=1 β=0. */
  StsimRng rng;
  stsim_rng_init (&rng, seed, STSIM_RNG_STREAM_INIT);
  stsim_rng_seek (&rng, G_GUINT64_CONSTANT (0x7EAD) << 40);
  stsim_rng_fill_normal (&rng, head->w1->data, head->w1->numel, 0.0f, 0.02f);
  stsim_rng_fill_normal (&rng, head->w2->data, head->w2->numel, 0.0f, 0.02f);
  for (gint64 i = 0; i < 2 * H; i++) {
    head->g1->data[i] = 1.0f;
    head->b1->data[i] = 0.0f;
  }
  head->rm1 = g_new0 (float, 2 * H);
  head->rv1 = filled (2 * H, 1.0f);
  head->rm2 = g_new0 (float, H);
  head->rv2 = filled (H, 1.0f);
  return TRUE;
}

StsimHead *
stsim_head_new (StsimHeadKind kind, StsimModel *model, guint64 seed, const char *encoder_label, GError **error)
{
  g_return_val_if_fail (model != NULL, NULL);
  g_autoptr(StsimHead) head = g_new0 (StsimHead, 1);
  head->kind = kind;
  head->H = stsim_model_get_config (model)->hidden_size;
  if (kind == STSIM_HEAD_MLP && !init_mlp (head, model, encoder_label ? encoder_label : "", error))
    return NULL;
  if (kind == STSIM_HEAD_BN && !init_bn (head, seed, error))
    return NULL;
  return g_steal_pointer (&head);
}

void
stsim_head_free (StsimHead *head)
{
  if (!head)
    return;
  stsim_param_store_free (head->store);
  g_free (head->rm1);
  g_free (head->rv1);
  g_free (head->rm2);
  g_free (head->rv2);
  g_free (head);
}

StsimHeadKind
stsim_head_get_kind (const StsimHead *head)
{
  return head ? head->kind : STSIM_HEAD_NONE;
}

StsimTensor *
stsim_head_forward (StsimHead *head, StsimTape *tape, StsimTensor *h, GError **error)
{
  StsimTensor *z = NULL;
  switch (stsim_head_get_kind (head)) {
  case STSIM_HEAD_MLP:
    z = stsim_linear_act (tape, h, head->mlp_w, head->mlp_b, STSIM_ACT_TANH);
    break;
  case STSIM_HEAD_BN: {
    /* Statistics over the global batch: with several ranks each runs the
     * head on its own rows and the batch norms sum over the ranks (dist.c);
     * with one rank this is stsim_batch_norm. */
    StsimTensor *a = stsim_linear (tape, h, head->w1, NULL);
    a = stsim_dist_batch_norm (tape, a, head->g1, head->b1, head->rm1, head->rv1, 0.1f, 1e-5f);
    a = stsim_relu (tape, a);
    a = stsim_linear (tape, a, head->w2, NULL);
    z = stsim_dist_batch_norm (tape, a, NULL, NULL, head->rm2, head->rv2, 0.1f, 1e-5f);
    break;
  }
  case STSIM_HEAD_NONE:
    z = h;
    break;
  }
  if (!z)
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "train: the projection head failed");
  return z;
}

StsimParamStore *
stsim_head_get_params (StsimHead *head)
{
  return head ? head->store : NULL;
}

gboolean
stsim_head_save_state (StsimHead *head, StsimSafetensorsWriter *w, GError **error)
{
  if (stsim_head_get_kind (head) != STSIM_HEAD_BN)
    return TRUE;
  gint64 n1 = 2 * head->H, n2 = head->H;
  return stsim_safetensors_writer_add_f32 (w, "head.bn1.running_mean", &n1, 1, head->rm1, error) &&
         stsim_safetensors_writer_add_f32 (w, "head.bn1.running_var", &n1, 1, head->rv1, error) &&
         stsim_safetensors_writer_add_f32 (w, "head.bn2.running_mean", &n2, 1, head->rm2, error) &&
         stsim_safetensors_writer_add_f32 (w, "head.bn2.running_var", &n2, 1, head->rv2, error);
}

gboolean
stsim_head_load_state (StsimHead *head, StsimSafetensors *st, GError **error)
{
  if (stsim_head_get_kind (head) != STSIM_HEAD_BN)
    return TRUE;
  /* A negative running variance makes the evaluation's sqrt() NaN. */
  const char *path = stsim_safetensors_get_path (st);
  return stsim_train_read_block (st, "head.bn1.running_mean", head->rm1, 2 * head->H, error) &&
         stsim_train_read_block (st, "head.bn1.running_var", head->rv1, 2 * head->H, error) &&
         stsim_train_read_block (st, "head.bn2.running_mean", head->rm2, head->H, error) &&
         stsim_train_read_block (st, "head.bn2.running_var", head->rv2, head->H, error) &&
         stsim_run_state_check_finite (head->rm1, 2 * head->H, "head.bn1.running_mean", path, error) &&
         stsim_run_state_check_nonnegative (head->rv1, 2 * head->H, "head.bn1.running_var", path, error) &&
         stsim_run_state_check_finite (head->rm2, head->H, "head.bn2.running_mean", path, error) &&
         stsim_run_state_check_nonnegative (head->rv2, head->H, "head.bn2.running_var", path, error);
}

gboolean
stsim_head_bcast_state (StsimHead *head, GError **error)
{
  if (stsim_head_get_kind (head) != STSIM_HEAD_BN)
    return TRUE;
  gsize n1 = 2 * head->H * sizeof (float), n2 = head->H * sizeof (float);
  return stsim_dist_bcast (head->rm1, n1, 0, error) && stsim_dist_bcast (head->rv1, n1, 0, error) &&
         stsim_dist_bcast (head->rm2, n2, 0, error) && stsim_dist_bcast (head->rv2, n2, 0, error);
}
