/* test-model-parity.c: stsim's BERT / RoBERTa / DistilBERT against the
 * plain-PyTorch reference of tests/reference/bert_reference.py (float64
 * from the stored weights): every hidden state, every pooler, the MLM
 * logits and every parameter gradient of a fixed scalar loss, in padded and
 * packed layouts, and the F16/BF16/legacy-name variants of bert-tiny.
 * Each check prints its max difference (run with --verbose or see the
 * meson test log). */
#include "model-test-util.h"

typedef struct {
  const char *fixture;
  guint       flags;      /* parts the fixture has */
  gboolean    has_pools;  /* pool.cls, avg_first_last, avg_top2 stored */
} Case;

static const Case cases[] = {
  { "bert-tiny", STSIM_MODEL_POOLER | STSIM_MODEL_MLM_HEAD, TRUE },
  { "roberta-tiny", STSIM_MODEL_POOLER | STSIM_MODEL_MLM_HEAD, TRUE },
  { "distilbert-tiny", STSIM_MODEL_MLM_HEAD, FALSE },
  { "bert-tiny-legacy", STSIM_MODEL_POOLER, TRUE },
  { "bert-tiny-f16", STSIM_MODEL_POOLER | STSIM_MODEL_MLM_HEAD, TRUE },
  { "bert-tiny-bf16", STSIM_MODEL_POOLER | STSIM_MODEL_MLM_HEAD, TRUE },
};

static StsimModel *
load_case (const Case *c, guint extra_flags)
{
  g_autofree char *dir = fixture_dir (c->fixture);
  g_autoptr(GError) error = NULL;
  StsimModel *m = stsim_model_load (dir, c->flags | extra_flags, 7, &error);
  g_assert_no_error (error);
  g_assert_nonnull (m);
  /* Everything the test compares must come from the file, not from init. */
  g_assert_cmpuint (stsim_model_get_initialized (m), ==, 0);
  return m;
}

static void
check_pools (const Case *c, StsimModel *m, StsimTape *tape, const StsimModelOutput *out,
             StsimSafetensors *ref, const char *layout)
{
  static const struct { StsimPooler p; const char *name; gboolean optional; } pools[] = {
    { STSIM_POOL_CLS_BEFORE_POOLER, "pool.cls_before_pooler", FALSE },
    { STSIM_POOL_AVG, "pool.avg", FALSE },
    { STSIM_POOL_CLS, "pool.cls", TRUE },
    { STSIM_POOL_AVG_FIRST_LAST, "pool.avg_first_last", TRUE },
    { STSIM_POOL_AVG_TOP2, "pool.avg_top2", TRUE },
  };
  for (guint i = 0; i < G_N_ELEMENTS (pools); i++) {
    if (pools[i].optional && !c->has_pools)
      continue;
    gint64 n;
    g_autofree float *want = ref_f32 (ref, pools[i].name, &n);
    StsimTensor *got = stsim_model_pool (m, tape, out, pools[i].p);
    g_assert_nonnull (got);
    g_assert_cmpint (got->numel, ==, n);
    g_autofree char *what = g_strdup_printf ("%s %s %s", c->fixture, layout, pools[i].name);
    check_close (what, got->data, want, n);
  }
}

/* Padded layout, eval mode: every hidden state (pad rows too), every
 * pooler, the MLM logits of every position. */
static void
test_forward_padded (gconstpointer data)
{
  const Case *c = data;
  g_autoptr(StsimModel) m = load_case (c, STSIM_MODEL_FROZEN);
  g_autoptr(StsimSafetensors) ref = open_reference (c->fixture);
  StsimTokenBatch batch;
  ref_batch (ref, &batch);
  g_autoptr(StsimTape) tape = stsim_tape_new (1, 0);
  stsim_tape_set_training (tape, FALSE);
  StsimModelOutput out;
  g_autoptr(GError) error = NULL;
  StsimForwardOptions opt = { .packed = FALSE };
  g_assert_true (stsim_model_forward (m, tape, &batch, &opt, &out, &error));
  g_assert_no_error (error);
  g_assert_cmpint (out.n_rows, ==, (gint64) (batch.n * batch.width));
  g_assert_cmpint (out.n_layers, ==, stsim_model_get_config (m)->num_layers);

  for (int l = 0; l <= out.n_layers; l++) {
    g_autofree char *name = g_strdup_printf ("hidden_states.%d", l);
    g_autofree char *what = g_strdup_printf ("%s padded %s", c->fixture, name);
    gint64 n;
    g_autofree float *want = ref_f32 (ref, name, &n);
    g_assert_cmpint (out.hidden[l]->numel, ==, n);
    check_close (what, out.hidden[l]->data, want, n);
  }
  check_pools (c, m, tape, &out, ref, "padded");
  if (c->flags & STSIM_MODEL_MLM_HEAD) {
    gint64 n;
    g_autofree float *want = ref_f32 (ref, "mlm_logits", &n);
    StsimTensor *logits = stsim_model_mlm_logits (m, tape, out.hidden[out.n_layers]);
    g_assert_nonnull (logits);
    g_assert_cmpint (logits->numel, ==, n);
    g_autofree char *what = g_strdup_printf ("%s padded mlm_logits", c->fixture);
    check_close (what, logits->data, want, n);
  }
  batch_free (&batch);
}

/* Packed layout: only the real tokens are computed; they must equal the
 * reference's real-token rows, and the poolers the reference poolers. */
static void
test_forward_packed (gconstpointer data)
{
  const Case *c = data;
  g_autoptr(StsimModel) m = load_case (c, STSIM_MODEL_FROZEN);
  g_autoptr(StsimSafetensors) ref = open_reference (c->fixture);
  StsimTokenBatch batch;
  ref_batch (ref, &batch);
  g_autoptr(StsimTape) tape = stsim_tape_new (1, 0);
  stsim_tape_set_training (tape, FALSE);
  StsimModelOutput out;
  g_autoptr(GError) error = NULL;
  StsimForwardOptions opt = { .packed = TRUE };
  g_assert_true (stsim_model_forward (m, tape, &batch, &opt, &out, &error));
  g_assert_no_error (error);
  gint64 real = 0;
  for (gsize b = 0; b < batch.n; b++)
    real += batch.lengths[b];
  g_assert_cmpint (out.n_rows, ==, real);
  const gint64 H = stsim_model_get_config (m)->hidden_size;

  for (int l = 0; l <= out.n_layers; l++) {
    g_autofree char *name = g_strdup_printf ("hidden_states.%d", l);
    g_autofree float *want = ref_f32 (ref, name, NULL);
    g_autofree float *rows = g_new (float, real * H);
    for (gsize b = 0; b < batch.n; b++)
      memcpy (rows + (gsize) out.seqs[b].offset * H, want + b * batch.width * H,
              (gsize) (batch.lengths[b] * H) * sizeof (float));
    g_autofree char *what = g_strdup_printf ("%s packed %s (real tokens)", c->fixture, name);
    check_close (what, out.hidden[l]->data, rows, real * H);
  }
  check_pools (c, m, tape, &out, ref, "packed");
  batch_free (&batch);
}

/* Gradients of loss = Σ h_N⊙R1 + Σ pool.cls⊙R2 + Σ logits⊙R3 (pads
 * included) for every parameter, against the reference's grad.<name>. */
static void
test_gradients (gconstpointer data)
{
  const Case *c = data;
  g_autoptr(StsimModel) m = load_case (c, 0);
  g_autoptr(StsimSafetensors) ref = open_reference (c->fixture);
  StsimTokenBatch batch;
  ref_batch (ref, &batch);
  g_autoptr(StsimTape) tape = stsim_tape_new (1, 0);
  stsim_tape_set_training (tape, FALSE);
  StsimParamStore *store = stsim_model_get_params (m);
  stsim_param_store_zero_grad (store);

  StsimModelOutput out;
  g_autoptr(GError) error = NULL;
  StsimForwardOptions opt = { .packed = FALSE };
  g_assert_true (stsim_model_forward (m, tape, &batch, &opt, &out, &error));
  g_assert_no_error (error);
  StsimTensor *last = out.hidden[out.n_layers];
  g_autofree float *r1 = ref_f32 (ref, "loss.R1", NULL);
  StsimTensor *loss = stsim_sum (tape, stsim_mul (tape, last, stsim_tensor_from_data (tape, last->ndim, last->shape, r1)));
  if (c->flags & STSIM_MODEL_POOLER) {
    StsimTensor *pool = stsim_model_pool (m, tape, &out, STSIM_POOL_CLS);
    g_autofree float *r2 = ref_f32 (ref, "loss.R2", NULL);
    loss = stsim_add (tape, loss, stsim_sum (tape, stsim_mul (tape, pool,
                                                              stsim_tensor_from_data (tape, pool->ndim, pool->shape, r2))));
  }
  if (c->flags & STSIM_MODEL_MLM_HEAD) {
    StsimTensor *logits = stsim_model_mlm_logits (m, tape, last);
    g_autofree float *r3 = ref_f32 (ref, "loss.R3", NULL);
    loss = stsim_add (tape, loss, stsim_sum (tape, stsim_mul (tape, logits,
                                                              stsim_tensor_from_data (tape, logits->ndim, logits->shape, r3))));
  }
  g_assert_nonnull (loss);
  g_autofree float *want_loss = ref_f32 (ref, "loss", NULL);
  g_test_message ("%s loss %.9g, reference %.9g, rel diff %.2e", c->fixture, loss->data[0], want_loss[0],
                  fabs (loss->data[0] - want_loss[0]) / fabs (want_loss[0]));
  g_assert_cmpfloat (fabs (loss->data[0] - want_loss[0]), <=, 1e-4 * fabs (want_loss[0]));

  g_assert_true (stsim_tape_backward (tape, loss, NULL, &error));
  g_assert_no_error (error);

  float *grad = stsim_param_store_get_grad (store, NULL);
  g_assert_nonnull (grad);
  const char *prefix = c->fixture[0] == 'b' ? "bert." : c->fixture[0] == 'r' ? "roberta." : "distilbert.";
  gsize n_names = 0, checked = 0;
  const char *const *names = stsim_safetensors_list (ref, &n_names);
  for (gsize i = 0; i < n_names; i++) {
    if (!g_str_has_prefix (names[i], "grad."))
      continue;
    const char *file_name = names[i] + 5;
    const char *store_name = g_str_has_prefix (file_name, prefix) ? file_name + strlen (prefix) : file_name;
    const StsimParamView *v = stsim_param_store_lookup (store, store_name);
    if (v == NULL)
      g_error ("%s: no parameter %s for reference %s", c->fixture, store_name, names[i]);
    gint64 n;
    g_autofree float *want = ref_f32 (ref, names[i], &n);
    g_assert_cmpint (v->numel, ==, n);
    g_autofree char *what = g_strdup_printf ("%s %s", c->fixture, names[i]);
    check_close (what, grad + v->offset, want, n);
    checked++;
  }
  /* Every parameter of the model has a reference gradient. */
  g_assert_cmpuint (checked, ==, stsim_param_store_get_n_views (store));
  batch_free (&batch);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *p1 = g_strdup_printf ("/model/parity/%s/padded", cases[i].fixture);
    g_autofree char *p2 = g_strdup_printf ("/model/parity/%s/packed", cases[i].fixture);
    g_test_add_data_func (p1, &cases[i], test_forward_padded);
    g_test_add_data_func (p2, &cases[i], test_forward_packed);
    if (i < 3) {
      g_autofree char *p3 = g_strdup_printf ("/model/parity/%s/gradients", cases[i].fixture);
      g_test_add_data_func (p3, &cases[i], test_gradients);
    }
  }
  return g_test_run ();
}
