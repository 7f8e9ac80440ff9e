/* test-diff-predict: the `diff-predict` objective (DiffCSE, method.md §4).
 *
 * - labels: ĝ[:,0] = CLS, r = [ĝ ≠ x]·m, x_D = ĝ·m against the fixtures
 *   diffcse_labels{,_roberta} of tests/reference/loss_reference.py;
 * - the RTD reduction (pads included / excluded, sum) against rtd_ce_*;
 * - one whole step (BN projector, generator argmax, labels, discriminator
 *   with its position-0 row replaced, electra head, CE) against the PyTorch
 *   float64 computation of tests/objectives/diffcse_reference.py: loss and
 *   gradients of z, the projector, the head, the student and the
 *   discriminator, pads included and excluded;
 * - the position-0 replacement on its own (forward with row0 vs fixture);
 * - the RTD loss changes the student's gradient (weight 0 vs 0.5);
 * - the generator: ids equal the argmax of a full padded forward at every
 *   position that matters; same seed -> same ids with dropout on; sampling
 *   on a subset of the rows (one rank's, with their draw positions) gives
 *   those rows exactly the ids of the whole batch's sampling;
 * - the objective's two stores (params op): the discriminator, not the
 *   student's store and without pooler, and the electra head with HF names;
 *   bad generators are refused with a message naming the problem;
 * - a tiny contrastive + diff-predict training run through the trainer:
 *   discriminator and head are in the resume state (and a killed-and-resumed
 *   run is bit-identical to a straight one) and not in the exported model.
 *
 * The plugin source is compiled into this test so that its internal steps
 * (labels, generator, loss from given masks) can be driven directly. */
#include <math.h>
#include <string.h>

#include "stsim/stsim.h"
#include "stsim/stsim-model.h"
#include "stsim/stsim-recipe.h"
#include "stsim/stsim-train.h"
#include "stsim/stsim-registry.h"
#include "stsim/stsim-safetensors.h"
#include "../train/train-test-util.h"

#include "../../plugins/objectives/diff-predict/diff-predict.c"

static StsimRegistry *reg;

/* Tolerances of tests/reference/README.md: losses 1e-5 relative; gradients
 * |c - ref| <= 1e-4 · max(1, max|ref|) per tensor. */
#define LOSS_TOL 1e-5
#define GRAD_TOL 1e-4

static char *
fixture (const char *first, ...)
{
  const char *src = g_getenv ("G_TEST_SRCDIR");
  char *path = g_build_filename (src ? src : ".", first, NULL);
  va_list ap;
  const char *part;
  va_start (ap, first);
  while ((part = va_arg (ap, const char *))) {
    char *next = g_build_filename (path, part, NULL);
    g_free (path);
    path = next;
  }
  va_end (ap);
  return path;
}

static StsimSafetensors *
open_fixture (const char *path)
{
  g_autoptr(GError) err = NULL;
  StsimSafetensors *r = stsim_safetensors_open (path, &err);
  g_assert_no_error (err);
  return r;
}

static float *
get_f32 (StsimSafetensors *r, const char *name, gint64 *n)
{
  g_autoptr(GError) err = NULL;
  gsize len = 0;
  float *x = stsim_safetensors_dup_f32 (r, name, &len, &err);
  g_assert_no_error (err);
  if (n)
    *n = (gint64) len;
  return x;
}

static gint32 *
get_i32 (StsimSafetensors *r, const char *name, gint64 *n)
{
  g_autoptr(GError) err = NULL;
  gsize len = 0;
  g_autofree gint64 *v = stsim_safetensors_dup_i64 (r, name, &len, &err);
  g_assert_no_error (err);
  gint32 *x = g_new (gint32, len + 1);
  for (gsize i = 0; i < len; i++) {
    g_assert_true (v[i] >= G_MININT32 && v[i] <= G_MAXINT32);
    x[i] = (gint32) v[i];
  }
  if (n)
    *n = (gint64) len;
  return x;
}

/* max|a - b| / max(1, max|b|). */
static double
grad_err (const float *a, const float *b, gint64 n)
{
  double num = 0, den = 1;
  for (gint64 i = 0; i < n; i++) {
    num = MAX (num, fabs ((double) a[i] - b[i]));
    den = MAX (den, fabs ((double) b[i]));
  }
  return num / den;
}

/* A diff-predict state from key/value pairs (no context: the discriminator
 * copies the step's student on first use). */
static DiffPredict *
make_diff (const char *first_key, ...)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimParams) p = stsim_params_new (diff_params);
  g_autofree char *gen = fixture ("fixtures", "models", "distilbert-tiny", NULL);
  g_assert_true (stsim_params_set (p, "generator", gen, &err));
  va_list ap;
  va_start (ap, first_key);
  for (const char *k = first_key; k; k = va_arg (ap, const char *)) {
    const char *v = va_arg (ap, const char *);
    g_assert_true (stsim_params_set (p, k, v, &err));
    g_assert_no_error (err);
  }
  va_end (ap);
  g_assert_true (stsim_params_finish (p, &err));
  DiffPredict *d = diff_create (p, NULL, &err);
  g_assert_no_error (err);
  g_assert_nonnull (d);
  return d;
}

static StsimModel *
load_model (const char *name, guint flags)
{
  g_autoptr(GError) err = NULL;
  g_autofree char *dir = fixture ("fixtures", "models", name, NULL);
  StsimModel *m = stsim_model_load (dir, flags, 7, &err);
  g_assert_no_error (err);
  return m;
}

/* ---- labels ---------------------------------------------------------------- */

static void
test_labels (gconstpointer data)
{
  g_autofree char *file = g_strdup_printf ("%s.safetensors", (const char *) data);
  g_autofree char *path = fixture ("fixtures", "losses", file, NULL);
  g_autoptr(StsimSafetensors) r = open_fixture (path);
  gint64 n = 0;
  g_autofree gint32 *orig = get_i32 (r, "original_ids", &n);
  g_autofree gint32 *gen = get_i32 (r, "generator_ids", NULL);
  g_autofree gint32 *mask = get_i32 (r, "attention_mask", NULL);
  g_autofree gint32 *cls = get_i32 (r, "cls_id", NULL);
  g_autofree gint32 *want_fixed = get_i32 (r, "generator_fixed", NULL);
  g_autofree gint32 *want_labels = get_i32 (r, "labels", NULL);
  g_autofree gint32 *want_disc = get_i32 (r, "discriminator_ids", NULL);
  const StsimTensorInfo *info = stsim_safetensors_get_info (r, "original_ids");
  g_assert_nonnull (info);
  g_assert_cmpuint (info->n_dims, ==, 2);
  gsize rows = info->shape[0], width = info->shape[1];
  g_autofree gint32 *fixed = g_new (gint32, n), *labels = g_new (gint32, n), *disc = g_new (gint32, n);
  diff_predict_labels (orig, gen, mask, rows, width, cls[0], fixed, labels, disc);
  g_assert_cmpmem (fixed, n * 4, want_fixed, n * 4);
  g_assert_cmpmem (labels, n * 4, want_labels, n * 4);
  g_assert_cmpmem (disc, n * 4, want_disc, n * 4);
  /* The cases the fixture must contain for this to mean something. */
  int restored = 0, changed_unmasked = 0, pad_changed = 0;
  for (gint64 i = 0; i < n; i++) {
    if ((gsize) i % width == 0)
      g_assert_cmpint (labels[i], ==, 0);
    if (mask[i] && (gsize) i % width && gen[i] == orig[i])
      restored++;
    if (mask[i] && gen[i] != orig[i] && (gsize) i % width)
      changed_unmasked += labels[i] == 1;
    if (!mask[i] && gen[i] != orig[i]) {
      pad_changed++;
      g_assert_cmpint (labels[i], ==, 0);
      g_assert_cmpint (disc[i], ==, 0);
    }
  }
  g_test_message ("%s: %d kept, %d changed, %d changed pads", (const char *) data, restored, changed_unmasked,
                  pad_changed);
  g_assert_cmpint (restored, >, 0);
  g_assert_cmpint (changed_unmasked, >, 0);
  g_assert_cmpint (pad_changed, >, 0);
}

/* ---- the RTD reduction --------------------------------------------------------- */

static void
test_rtd_ce (gconstpointer data)
{
  gboolean include = strcmp (data, "rtd_ce_all_positions") == 0;
  g_autofree char *file = g_strdup_printf ("%s.safetensors", (const char *) data);
  g_autofree char *path = fixture ("fixtures", "losses", file, NULL);
  g_autoptr(StsimSafetensors) r = open_fixture (path);
  gint64 n = 0;
  g_autofree float *logits = get_f32 (r, "logits", &n);
  g_autofree gint32 *labels = get_i32 (r, "labels", NULL);
  g_autofree gint32 *mask = get_i32 (r, "attention_mask", NULL);
  g_autofree float *want = get_f32 (r, "loss", NULL);
  g_autofree float *want_grad = get_f32 (r, "grad.logits", NULL);
  const gsize rows = 6, width = 8;
  g_assert_cmpint (n, ==, rows * width * 2);

  DiffPredict *d = make_diff ("pads", include ? "include" : "exclude", NULL);
  g_autoptr(StsimTape) tape = stsim_tape_new (1, 0);
  StsimTensor *leaf = stsim_tensor_from_data (tape, 2, (gint64[]) { rows * width, 2 }, logits);
  stsim_tensor_set_requires_grad (leaf, TRUE);
  /* The layout the discriminator forward gives: padded rows, or packed real
   * tokens only (gathered here, so pads get no gradient). */
  StsimSeq seqs[6];
  g_autofree gint32 *real = g_new (gint32, rows * width);
  gint32 n_real = 0;
  for (gsize b = 0; b < rows; b++) {
    gint32 len = 0;
    for (gsize k = 0; k < width; k++)
      len += mask[b * width + k];
    seqs[b].offset = include ? (gint32) (b * width) : n_real;
    seqs[b].rows = include ? (gint32) width : len;
    seqs[b].keys = len;
    for (gint32 k = 0; k < len; k++)
      real[n_real++] = (gint32) (b * width + k);
  }
  StsimTensor *x = include ? leaf : stsim_gather_rows (tape, leaf, real, n_real);
  g_autofree gint32 *row_labels = g_new (gint32, rows * width);
  StsimTensor *loss = diff_predict_position_loss (d, tape, x, seqs, rows, width, labels, row_labels);
  g_assert_nonnull (loss);
  g_autoptr(GError) err = NULL;
  g_assert_true (stsim_tape_backward (tape, loss, NULL, &err));
  double el = fabs (loss->data[0] - want[0]) / fabs (want[0]);
  double eg = grad_err (leaf->grad, want_grad, n);
  g_test_message ("%s: loss %.8g want %.8g (rel %.2e), grad err %.2e", (const char *) data, loss->data[0], want[0], el,
                  eg);
  g_assert_cmpfloat (el, <=, LOSS_TOL);
  g_assert_cmpfloat (eg, <=, GRAD_TOL * 1e-2);

  /* reduction = sum is the mean times the number of positions counted. */
  d->reduce_sum = TRUE;
  StsimTensor *sum = diff_predict_position_loss (d, tape, x, seqs, rows, width, labels, row_labels);
  double count = include ? (double) (rows * width) : (double) n_real;
  g_assert_cmpfloat (fabs (sum->data[0] - count * want[0]), <=, 1e-5 * count * want[0]);
  diff_destroy (d);
}

/* ---- the whole step against PyTorch --------------------------------------------- */

static const char *const step_texts[] = {
  "this are not my they", "one which", "or have him me first all also",
  "this are not my they", "one which", "or have him me first all also",
};

typedef struct {
  StsimParamStore *store;
  StsimTensor     *w1, *g1, *b1, *w2;
} Projector;

/* DiffCSE's BN projector (method.md §4.1, §4.3), built here from autograd
 * ops with the fixture's weights. */
static void
projector_init (Projector *p, StsimSafetensors *r, gint64 H)
{
  g_autoptr(GError) err = NULL;
  p->store = stsim_param_store_new ("head", TRUE);
  p->w1 = stsim_param_store_add (p->store, "w1", 2, (gint64[]) { 2 * H, H }, 0);
  p->g1 = stsim_param_store_add (p->store, "g1", 1, (gint64[]) { 2 * H }, 0);
  p->b1 = stsim_param_store_add (p->store, "b1", 1, (gint64[]) { 2 * H }, 0);
  p->w2 = stsim_param_store_add (p->store, "w2", 2, (gint64[]) { H, 2 * H }, 0);
  g_assert_true (stsim_param_store_finish (p->store, &err));
  const char *names[4] = { "bn.w1", "bn.g1", "bn.b1", "bn.w2" };
  StsimTensor *ts[4] = { p->w1, p->g1, p->b1, p->w2 };
  for (int i = 0; i < 4; i++) {
    gint64 n = 0;
    g_autofree float *v = get_f32 (r, names[i], &n);
    g_assert_cmpint (n, ==, ts[i]->numel);
    memcpy (ts[i]->data, v, n * sizeof (float));
  }
}

static StsimTensor *
projector_forward (Projector *p, StsimTape *tape, StsimTensor *h)
{
  StsimTensor *a = stsim_linear (tape, h, p->w1, NULL);
  a = stsim_relu (tape, stsim_batch_norm (tape, a, p->g1, p->b1, NULL, NULL, 0.1f, 1e-5f));
  return stsim_batch_norm (tape, stsim_linear (tape, a, p->w2, NULL), NULL, NULL, NULL, NULL, 0.1f, 1e-5f);
}

/* The fixture's electra head into the objective's head store. */
static void
set_electra_head (DiffPredict *d, StsimSafetensors *r)
{
  StsimTensor *pw = stsim_param_store_lookup (d->head_store, DIFF_HEAD_WEIGHT)->tensor;
  StsimTensor *pb = stsim_param_store_lookup (d->head_store, DIFF_HEAD_BIAS)->tensor;
  g_assert_true (pw == d->head_w && pb == d->head_b);
  gint64 n = 0;
  g_autofree float *w = get_f32 (r, "electra.weight", &n);
  g_autofree float *b = get_f32 (r, "electra.bias", NULL);
  g_assert_cmpint (n, ==, 2 * stsim_tensor_cols (pw));
  memcpy (pw->data, w, n * sizeof (float));
  memcpy (pb->data, b, 2 * sizeof (float));
}

static double
check_store_grad (StsimParamStore *s, const char *name, StsimSafetensors *r, const char *ref)
{
  const StsimParamView *v = stsim_param_store_lookup (s, name);
  g_assert_nonnull (v);
  gint64 n = 0;
  g_autofree float *want = get_f32 (r, ref, &n);
  g_assert_cmpint (n, ==, v->numel);
  gint64 total = 0;
  float *grad = stsim_param_store_get_grad (s, &total);
  double e = grad_err (grad + v->offset, want, n);
  if (e > GRAD_TOL)
    g_test_message ("%s: gradient error %.3g", ref, e);
  return e;
}

static void
test_step (gconstpointer data)
{
  const char *variant = data;  /* "include" or "exclude" */
  g_autofree char *path = fixture ("objectives", "diffcse-step.safetensors", NULL);
  g_autoptr(StsimSafetensors) r = open_fixture (path);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimModel) student = load_model ("bert-tiny", 0);
  const gint64 H = stsim_model_get_dim (student);
  DiffPredict *d = make_diff ("pads", variant, "generator_dropout", "false", NULL);

  g_autoptr(StsimTape) tape = stsim_tape_new (3, 0);
  stsim_tape_set_keep_grads (tape, TRUE);   /* z is an op output: its gradient is checked below */
  stsim_tape_set_training (tape, FALSE);  /* the reference runs without dropout */
  g_autoptr(StsimTrainStep) step = stsim_train_step_new_detached (tape, 3, 2, 3, 0);
  g_assert_true (stsim_train_step_set_model (step, student, step_texts, 32, &err));
  g_assert_no_error (err);
  const StsimTokenBatch *batch = stsim_train_step_get_batch (step);
  gint64 n = 0;
  g_autofree gint32 *want_ids = get_i32 (r, "input_ids", &n);
  g_assert_cmpint (n, ==, (gint64) (batch->n * batch->width));
  g_assert_cmpmem (batch->ids, n * 4, want_ids, n * 4);  /* the texts tokenize to the reference's ids */

  Projector proj;
  projector_init (&proj, r, H);
  StsimTensor *h = stsim_train_step_get_pooled (step, &err);
  g_assert_no_error (err);
  StsimTensor *z = projector_forward (&proj, tape, h);
  stsim_train_step_set_projected (step, z);

  g_assert_true (diff_predict_prepare (d, step, &err));
  set_electra_head (d, r);
  DiffStep *s = diff_step_attach (step);
  s->n = batch->n;
  s->width = batch->width;
  s->masked_ids = get_i32 (r, "masked_ids", NULL);
  StsimRng rng;
  stsim_train_step_init_rng (step, d->stream, &rng);
  StsimTensor *loss = diff_predict_from_masked (d, step, &rng, s, &err);
  g_assert_no_error (err);
  g_assert_nonnull (loss);

  /* Generator ids at every position that matters, labels, discriminator ids. */
  g_autofree gint32 *want_gen = get_i32 (r, "generator_ids", NULL);
  g_autofree gint32 *want_labels = get_i32 (r, "labels", NULL);
  g_autofree gint32 *want_disc = get_i32 (r, "discriminator_ids", NULL);
  for (gint64 i = 0; i < n; i++) {
    gsize k = i % batch->width;
    if (k > 0 && batch->mask[i])
      g_assert_cmpint (s->gen_ids[i], ==, want_gen[i]);
  }
  g_assert_cmpmem (s->labels, n * 4, want_labels, n * 4);
  g_assert_cmpmem (s->disc.ids, n * 4, want_disc, n * 4);

  g_autofree char *lname = g_strdup_printf ("%s.loss", variant);
  g_autofree float *want = get_f32 (r, lname, NULL);
  double el = fabs (loss->data[0] - want[0]) / fabs (want[0]);
  g_assert_true (stsim_tape_backward (tape, loss, NULL, &err));
  g_assert_no_error (err);

  double worst = 0;
  g_autofree char *zn = g_strdup_printf ("%s.grad.z", variant);
  g_autofree float *gz = get_f32 (r, zn, &n);
  worst = MAX (worst, grad_err (z->grad, gz, n));
  const char *pn[4] = { "w1", "g1", "b1", "w2" };
  for (int i = 0; i < 4; i++) {
    g_autofree char *ref = g_strdup_printf ("%s.grad.bn.%s", variant, pn[i]);
    worst = MAX (worst, check_store_grad (proj.store, pn[i], r, ref));
  }
  /* The electra head, in the objective's second store. */
  gsize n_stores = 0;
  StsimParamStore *const *stores = diff_params_stores (d, &n_stores);
  g_assert_cmpuint (n_stores, ==, 2);
  StsimParamStore *ds = stores[0], *hs = stores[1];
  g_autofree char *ew = g_strdup_printf ("%s.grad.electra.weight", variant);
  g_autofree char *eb = g_strdup_printf ("%s.grad.electra.bias", variant);
  worst = MAX (worst, check_store_grad (hs, DIFF_HEAD_WEIGHT, r, ew));
  worst = MAX (worst, check_store_grad (hs, DIFF_HEAD_BIAS, r, eb));
  g_assert_cmpint (stsim_param_store_lookup (hs, DIFF_HEAD_WEIGHT)->numel, ==, 2 * H);

  static const char *const enc[] = {
    "embeddings.word_embeddings.weight", "embeddings.LayerNorm.weight",
    "encoder.layer.0.attention.self.query.weight", "encoder.layer.2.output.dense.weight",
    "encoder.layer.2.output.LayerNorm.bias", NULL };
  for (int i = 0; enc[i]; i++) {
    g_autofree char *rs = g_strdup_printf ("%s.grad.student.%s", variant, enc[i]);
    g_autofree char *rd = g_strdup_printf ("%s.grad.discriminator.%s", variant, enc[i]);
    worst = MAX (worst, check_store_grad (stsim_model_get_params (student), enc[i], r, rs));
    worst = MAX (worst, check_store_grad (ds, enc[i], r, rd));
  }
  g_autofree char *rp = g_strdup_printf ("%s.grad.discriminator.embeddings.position_embeddings.weight", variant);
  worst = MAX (worst, check_store_grad (ds, "embeddings.position_embeddings.weight", r, rp));
  g_test_message ("step (%s pads): loss %.8g want %.8g (rel %.2e); worst gradient error %.2e", variant,
                  loss->data[0], want[0], el, worst);
  g_assert_cmpfloat (el, <=, LOSS_TOL);
  g_assert_cmpfloat (worst, <=, GRAD_TOL);

  /* The labels logged: the share of real positions replaced. */
  double replaced = stsim_train_step_get_logged (step, "replaced");
  g_assert_true (replaced > 0 && replaced < 1);
  stsim_param_store_free (proj.store);
  diff_destroy (d);
}

/* ---- the position-0 replacement on its own ------------------------------------- */

static void
test_position0 (void)
{
  g_autofree char *path = fixture ("objectives", "diffcse-step.safetensors", NULL);
  g_autoptr(StsimSafetensors) r = open_fixture (path);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimModel) disc = load_model ("bert-tiny", 0);
  gint64 n = 0, nz = 0, nl = 0;
  g_autofree gint32 *ids = get_i32 (r, "discriminator_ids", &n);
  g_autofree gint32 *mask = get_i32 (r, "attention_mask", NULL);
  g_autofree float *z = get_f32 (r, "z", &nz);
  g_autofree float *want = get_f32 (r, "discriminator_last", &nl);
  const gint64 H = stsim_model_get_dim (disc);
  const gsize rows = nz / H, width = n / rows;
  g_autofree gint32 *lengths = g_new0 (gint32, rows);
  for (gint64 i = 0; i < n; i++)
    lengths[i / width] += mask[i];
  StsimTokenBatch b = { .n = rows, .width = width, .ids = ids, .mask = mask, .lengths = lengths };
  g_autoptr(StsimTape) tape = stsim_tape_new (1, 0);
  stsim_tape_set_training (tape, FALSE);
  StsimTensor *zt = stsim_tensor_from_data (tape, 2, (gint64[]) { rows, H }, z);
  for (int with_row0 = 1; with_row0 >= 0; with_row0--) {
    StsimForwardOptions fo = { .packed = FALSE, .row0 = with_row0 ? zt : NULL };
    StsimModelOutput out;
    g_assert_true (stsim_model_forward (disc, tape, &b, &fo, &out, &err));
    g_assert_no_error (err);
    StsimTensor *last = out.hidden[out.n_layers];
    g_assert_cmpint (last->numel, ==, nl);
    double e = grad_err (last->data, want, nl);
    g_test_message ("discriminator last layer %s row0: max error %.3g", with_row0 ? "with" : "without", e);
    if (with_row0)
      g_assert_cmpfloat (e, <=, GRAD_TOL);
    else
      g_assert_cmpfloat (e, >, 1e-2);  /* the replacement changes every position (attention mixes it in) */
  }
}

/* ---- the RTD loss reaches the sentence encoder -------------------------------------- */

static const char *const train_texts[] = {
  "the team is a unit", "how big is that part compared to the whole ?", "a man plays the flute .",
  "the team is a unit", "how big is that part compared to the whole ?", "a man plays the flute .",
};

#define make_component(...) train_test_objective (reg, __VA_ARGS__)

/* Student gradient of contrastive + w·diff-predict on one fixed step. */
static float *
student_grad (StsimModel *student, StsimComponent *cl, StsimComponent *diff, double w, gint64 *n)
{
  g_autoptr(GError) err = NULL;
  StsimParamStore *ss = stsim_model_get_params (student);
  stsim_param_store_zero_grad (ss);
  g_autoptr(StsimTape) tape = stsim_tape_new (11, 0);
  stsim_tape_set_step (tape, 4);
  g_autoptr(StsimTrainStep) step = stsim_train_step_new_detached (tape, 3, 2, 11, 4);
  g_assert_true (stsim_train_step_set_model (step, student, train_texts, 32, &err));
  StsimTensor *lc = train_test_loss (cl, step);
  StsimTensor *ld = train_test_loss (diff, step);
  StsimTensor *total = stsim_axpby (tape, 1.0f, lc, (float) w, ld);
  g_assert_true (stsim_tape_backward (tape, total, NULL, &err));
  g_assert_no_error (err);
  StsimParamStore *ds = stsim_model_get_params (((DiffPredict *) stsim_component_get_state (diff))->discriminator);
  stsim_param_store_zero_grad (ds);
  float *g = stsim_param_store_get_grad (ss, n);
  return g_memdup2 (g, *n * sizeof (float));
}

static void
test_gradient_reaches_encoder (void)
{
  g_autoptr(StsimModel) student = load_model ("bert-tiny", 0);
  g_autofree char *gen = fixture ("fixtures", "models", "distilbert-tiny", NULL);
  g_autoptr(StsimComponent) cl = make_component ("contrastive", NULL);
  g_autoptr(StsimComponent) diff = make_component ("diff-predict", "generator", gen, NULL);
  gint64 n = 0;
  g_autofree float *g0 = student_grad (student, cl, diff, 0.0, &n);
  g_autofree float *g1 = student_grad (student, cl, diff, 0.5, &n);
  g_autofree float *g0b = student_grad (student, cl, diff, 0.0, &n);
  double diffmax = 0, scale = 0;
  for (gint64 i = 0; i < n; i++) {
    diffmax = MAX (diffmax, fabs (g1[i] - g0[i]));
    scale = MAX (scale, fabs (g0[i]));
    g_assert_cmpfloat (g0[i], ==, g0b[i]);  /* the same step is reproducible */
  }
  g_test_message ("student gradient: max |g(w=0.5) - g(w=0)| = %.3g (max |g(w=0)| = %.3g)", diffmax, scale);
  g_assert_cmpfloat (diffmax, >, 1e-3 * scale);
}

/* ---- the generator ---------------------------------------------------------------- */

static DiffStep *
run_generator (DiffPredict *d, StsimModel *student, guint64 seed, guint64 index)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimTape) tape = stsim_tape_new (seed, 0);
  g_autoptr(StsimTrainStep) step = stsim_train_step_new_detached (tape, 3, 2, seed, index);
  g_assert_true (stsim_train_step_set_model (step, student, train_texts, 32, &err));
  const StsimTokenBatch *b = stsim_train_step_get_batch (step);
  DiffStep *s = g_new0 (DiffStep, 1);
  s->n = b->n;
  s->width = b->width;
  /* Fixed masks (every other content token), so only the generator varies. */
  s->masked_ids = g_memdup2 (b->ids, b->n * b->width * sizeof (gint32));
  for (gsize i = 0; i < b->n * b->width; i++)
    if (i % 2 && b->mask[i] && !stsim_tokenizer_is_special (stsim_model_get_tokenizer (student), b->ids[i]))
      s->masked_ids[i] = stsim_tokenizer_mask_id (stsim_model_get_tokenizer (student));
  StsimRng rng;
  stsim_train_step_init_rng (step, d->stream, &rng);
  g_assert_true (diff_predict_generate (d, b, seed, index, &rng, s, &err));
  g_assert_no_error (err);
  return s;
}

/* Argmax of a full padded forward at every position (as the published code)
 * agrees with the plugin at every position that can matter. */
static void
test_generator_argmax (void)
{
  g_autoptr(StsimModel) student = load_model ("bert-tiny", 0);
  g_autoptr(StsimModel) gen = load_model ("distilbert-tiny", STSIM_MODEL_FROZEN | STSIM_MODEL_MLM_HEAD);
  DiffPredict *d = make_diff ("generator_dropout", "false", NULL);
  DiffStep *s = run_generator (d, student, 5, 2);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimTape) tape = stsim_tape_new (5, 0);
  stsim_tape_set_training (tape, FALSE);
  g_autofree gint32 *lengths = g_new (gint32, s->n);
  g_autofree gint32 *mask = g_new (gint32, s->n * s->width);
  {
    g_autoptr(StsimTape) t2 = stsim_tape_new (5, 0);
    g_autoptr(StsimTrainStep) step = stsim_train_step_new_detached (t2, 3, 2, 5, 2);
    g_assert_true (stsim_train_step_set_model (step, student, train_texts, 32, &err));
    const StsimTokenBatch *b = stsim_train_step_get_batch (step);
    memcpy (lengths, b->lengths, s->n * sizeof (gint32));
    memcpy (mask, b->mask, s->n * s->width * sizeof (gint32));
  }
  StsimTokenBatch in = { .n = s->n, .width = s->width, .ids = s->masked_ids, .mask = mask, .lengths = lengths };
  StsimForwardOptions fo = { .packed = FALSE };
  StsimModelOutput out;
  g_assert_true (stsim_model_forward (gen, tape, &in, &fo, &out, &err));
  StsimTensor *logits = stsim_model_mlm_logits (gen, tape, out.hidden[out.n_layers]);
  gint64 V = stsim_tensor_cols (logits), differ = 0, compared = 0;
  for (gsize i = 0; i < s->n * s->width; i++) {
    const float *row = logits->data + i * V;
    gint64 best = 0;
    for (gint64 j = 1; j < V; j++)
      if (row[j] > row[best])
        best = j;
    if (i % s->width == 0 || !mask[i])
      continue;  /* overwritten by CLS / zeroed as pads in step 4 */
    compared++;
    g_assert_cmpint (s->gen_ids[i], ==, best);
    differ += s->gen_ids[i] != s->masked_ids[i];
  }
  g_test_message ("argmax at %" G_GINT64_FORMAT " positions agrees; %" G_GINT64_FORMAT " differ from the input",
                  compared, differ);
  g_assert_cmpint (compared, >, 10);
  diff_step_free (s);
  diff_destroy (d);
}

static void
test_generator_deterministic (void)
{
  g_autoptr(StsimModel) student = load_model ("bert-tiny", 0);
  DiffPredict *d = make_diff ("generator_dropout", "true", NULL);
  DiffStep *a = run_generator (d, student, 9, 3);
  DiffStep *b = run_generator (d, student, 9, 3);
  gsize n = a->n * a->width;
  g_assert_cmpmem (a->gen_ids, n * 4, b->gen_ids, n * 4);
  /* Its dropout is really on: other seeds give other ids somewhere. */
  int differ = 0;
  for (guint64 seed = 10; seed < 14 && !differ; seed++) {
    DiffStep *c = run_generator (d, student, seed, 3);
    differ = memcmp (a->gen_ids, c->gen_ids, n * 4) != 0;
    diff_step_free (c);
  }
  g_assert_true (differ);
  /* Off: the seed does not matter. */
  DiffPredict *e = make_diff ("generator_dropout", "false", NULL);
  DiffStep *x = run_generator (e, student, 9, 3), *y = run_generator (e, student, 77, 8);
  g_assert_cmpmem (x->gen_ids, n * 4, y->gen_ids, n * 4);
  diff_step_free (a);
  diff_step_free (b);
  diff_step_free (x);
  diff_step_free (y);
  diff_destroy (d);
  diff_destroy (e);
}

/* Sampling at a tiny temperature is the argmax; at T = 1 it is seeded. */
static void
test_generator_sampling (void)
{
  g_autoptr(StsimModel) student = load_model ("bert-tiny", 0);
  DiffPredict *am = make_diff ("generator_dropout", "false", NULL);
  DiffPredict *cold = make_diff ("generator_dropout", "false", "sampling", "sample", "temperature", "0.001", NULL);
  DiffPredict *hot = make_diff ("generator_dropout", "false", "sampling", "sample", "temperature", "1", NULL);
  DiffStep *a = run_generator (am, student, 9, 3), *c = run_generator (cold, student, 9, 3);
  DiffStep *h1 = run_generator (hot, student, 9, 3), *h2 = run_generator (hot, student, 9, 3);
  DiffStep *h3 = run_generator (hot, student, 9, 4);
  gsize n = a->n * a->width;
  g_assert_cmpmem (a->gen_ids, n * 4, c->gen_ids, n * 4);
  g_assert_cmpmem (h1->gen_ids, n * 4, h2->gen_ids, n * 4);
  g_assert_true (memcmp (h1->gen_ids, h3->gen_ids, n * 4) != 0);
  g_assert_true (memcmp (h1->gen_ids, a->gen_ids, n * 4) != 0);
  for (DiffStep **p = (DiffStep *[]) { a, c, h1, h2, h3, NULL }; *p; p++)
    diff_step_free (*p);
  diff_destroy (am);
  diff_destroy (cold);
  diff_destroy (hot);
}

/* Data-parallel sampling: a rank generates only its own rows, each draw
 * taken at its place in the whole batch's sequence. Every rank's rows get
 * exactly the ids the whole batch's sampling gives them (the same logits:
 * no dropout), and drawing in sequence instead would not. */
static void
test_generator_sampling_rows (void)
{
  g_autoptr(StsimModel) student = load_model ("bert-tiny", 0);
  g_autoptr(GError) err = NULL;
  DiffPredict *d = make_diff ("generator_dropout", "false", "sampling", "sample", "temperature", "1", NULL);
  DiffStep *full = run_generator (d, student, 9, 3);
  g_autoptr(StsimTape) tape = stsim_tape_new (9, 0);
  g_autoptr(StsimTrainStep) step = stsim_train_step_new_detached (tape, 3, 2, 9, 3);
  g_assert_true (stsim_train_step_set_model (step, student, train_texts, 32, &err));
  const StsimTokenBatch *b = stsim_train_step_get_batch (step);
  const gsize W = b->width;
  gsize prefix[7] = { 0 };
  for (gsize r = 0; r < 6; r++)
    prefix[r + 1] = prefix[r] + (gsize) MAX (b->lengths[r] - 1, 0);
  /* The rows of rank 0 and rank 1 of 2 (B = 3, both views). */
  static const gsize shard0[] = { 0, 3 }, shard1[] = { 1, 2, 4, 5 };
  const gsize *shards[2] = { shard0, shard1 };
  const gsize sizes[2] = { 2, 4 };
  for (int k = 0; k < 2; k++) {
    const gsize n = sizes[k];
    g_autofree gint32 *ids = g_new (gint32, n * W), *mask = g_new (gint32, n * W), *lengths = g_new (gint32, n);
    g_autofree gint32 *masked = g_new (gint32, n * W);
    g_autofree gsize *draw_at = g_new (gsize, n);
    for (gsize i = 0; i < n; i++) {
      gsize g = shards[k][i];
      memcpy (ids + i * W, b->ids + g * W, W * 4);
      memcpy (mask + i * W, b->mask + g * W, W * 4);
      memcpy (masked + i * W, full->masked_ids + g * W, W * 4);
      lengths[i] = b->lengths[g];
      draw_at[i] = prefix[g];
    }
    StsimTokenBatch local = { .n = n, .width = W, .ids = ids, .mask = mask, .lengths = lengths };
    for (int placed = 1; placed >= 0; placed--) {
      DiffStep *part = g_new0 (DiffStep, 1);
      StsimRng rng;
      stsim_train_step_init_rng (step, d->stream, &rng);
      g_assert_true (diff_predict_generate_rows (d, &local, masked, placed ? draw_at : NULL, 9, 3, &rng, part, &err));
      g_assert_no_error (err);
      gsize same = 0, compared = 0;
      for (gsize i = 0; i < n; i++)
        for (gint32 c = 1; c < lengths[i]; c++) {
          compared++;
          same += part->gen_ids[i * W + c] == full->gen_ids[shards[k][i] * W + c];
        }
      g_test_message ("rank %d of 2, draws %s: %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " sampled ids as the whole "
                      "batch's", k, placed ? "at their places" : "in sequence", same, compared);
      g_assert_cmpuint (compared, >, 5);
      if (placed)
        g_assert_cmpuint (same, ==, compared);
      else if (k == 1)
        g_assert_cmpuint (same, <, compared);  /* rank 1's draws are not the first ones */
      diff_step_free (part);
    }
  }
  diff_step_free (full);
  diff_destroy (d);
}

/* ---- the objective's store and refused inputs ----------------------------------------- */

static void
test_store (void)
{
  g_autoptr(StsimModel) student = load_model ("bert-tiny", 0);
  g_autofree char *gen = fixture ("fixtures", "models", "distilbert-tiny", NULL);
  g_autoptr(StsimComponent) c = make_component ("diff-predict", "generator", gen, NULL);
  g_assert_true (stsim_objective_has_params (c));
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimTape) tape = stsim_tape_new (2, 0);
  g_autoptr(StsimTrainStep) step = stsim_train_step_new_detached (tape, 3, 2, 2, 0);
  g_assert_true (stsim_train_step_set_model (step, student, train_texts, 32, &err));
  /* Before the first step (no context: the discriminator is made then)
   * there is nothing to train yet. */
  gsize n_stores = 99;
  g_assert_null (stsim_objective_params (c, &n_stores));
  g_assert_cmpuint (n_stores, ==, 0);
  StsimTensor *loss = train_test_loss (c, step);
  StsimParamStore *const *stores = stsim_objective_params (c, &n_stores);
  g_assert_nonnull (stores);
  g_assert_cmpuint (n_stores, ==, 2);
  StsimParamStore *ds = stores[0], *hs = stores[1];
  StsimParamStore *ss = stsim_model_get_params (student);
  g_assert_true (ds != ss && hs != ss && hs != ds);
  g_assert_true (stsim_param_store_is_trainable (ds));
  g_assert_true (stsim_param_store_is_trainable (hs));
  /* The discriminator: a copy of the student's initial weights, no pooler. */
  g_assert_cmpuint (stsim_param_store_get_n_views (ds), ==, stsim_param_store_get_n_views (ss));
  g_assert_null (stsim_param_store_lookup (ds, "pooler.dense.weight"));
  for (gsize i = 0; i < stsim_param_store_get_n_views (ss); i++) {
    const StsimParamView *v = stsim_param_store_get_view (ss, i);
    const StsimParamView *w = stsim_param_store_lookup (ds, v->name);
    g_assert_nonnull (w);
    g_assert_cmpmem (v->tensor->data, v->numel * 4, w->tensor->data, w->numel * 4);
  }
  /* The electra head: its own store, HF names and shapes, weight decay on
   * the weight only. */
  const gint64 H = stsim_model_get_dim (student);
  g_assert_cmpstr (stsim_param_store_get_name (hs), ==, "electra_head");
  g_assert_cmpuint (stsim_param_store_get_n_views (hs), ==, 2);
  const StsimParamView *hw = stsim_param_store_lookup (hs, "electra_head.weight");
  const StsimParamView *hb = stsim_param_store_lookup (hs, "electra_head.bias");
  g_assert_nonnull (hw);
  g_assert_nonnull (hb);
  g_assert_cmpint (hw->ndim, ==, 2);
  g_assert_cmpint (hw->shape[0], ==, 2);
  g_assert_cmpint (hw->shape[1], ==, H);
  g_assert_cmpint (hb->ndim, ==, 1);
  g_assert_cmpint (hb->shape[0], ==, 2);
  g_assert_false (hw->flags & STSIM_VIEW_NO_DECAY);
  g_assert_true (hb->flags & STSIM_VIEW_NO_DECAY);
  /* PyTorch's default Linear init U(-1/sqrt(H), 1/sqrt(H)), weight and
   * bias: every value inside, and spread over the interval (the largest of
   * 130 uniform draws is beyond 0.9 of the bound except with probability
   * about 0.9^130 = 1e-6). */
  float bound = 1.0f / sqrtf ((float) H);
  double ss2 = 0, amax = 0;
  for (gint64 i = 0; i < 2 * H; i++) {
    g_assert_cmpfloat (fabsf (hw->tensor->data[i]), <=, bound);
    ss2 += hw->tensor->data[i] * hw->tensor->data[i];
    amax = MAX (amax, fabsf (hw->tensor->data[i]));
  }
  for (gint64 i = 0; i < 2; i++)
    g_assert_cmpfloat (fabsf (hb->tensor->data[i]), <=, bound);
  g_assert_cmpfloat (ss2, >, 0);
  g_assert_cmpfloat (amax, >, 0.9 * bound);
  /* Backward fills the gradients of both stores and the student's. */
  g_assert_true (stsim_tape_backward (tape, loss, NULL, &err));
  g_assert_no_error (err);
  g_assert_cmpfloat (stsim_grad_norm (&ds, 1), >, 0);
  g_assert_cmpfloat (stsim_grad_norm (&hs, 1), >, 0);
  g_assert_cmpfloat (stsim_grad_norm (&ss, 1), >, 0);
  double acc = stsim_train_step_get_logged (step, "accuracy");
  g_assert_true (acc >= 0 && acc <= 1);
}

static void
expect_create_error (const char *generator, const char *needle)
{
  g_autoptr(StsimModel) student = load_model ("bert-tiny", 0);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimParams) p = stsim_params_new (diff_params);
  g_assert_true (stsim_params_set (p, "generator", generator, &err));
  g_assert_true (stsim_params_finish (p, &err));
  DiffPredict *d = diff_create (p, NULL, &err);
  if (d) {
    /* Vocabulary checks need the student: they run on the first step. */
    g_autoptr(StsimTape) tape = stsim_tape_new (2, 0);
    g_autoptr(StsimTrainStep) step = stsim_train_step_new_detached (tape, 3, 2, 2, 0);
    g_assert_true (stsim_train_step_set_model (step, student, train_texts, 32, &err));
    g_assert_false (diff_predict_prepare (d, step, &err));
    diff_destroy (d);
  }
  g_assert_nonnull (err);
  g_test_message ("%s", err->message);
  g_assert_true (strstr (err->message, needle) != NULL);
}

static void
test_errors (void)
{
  g_autofree char *legacy = fixture ("fixtures", "models", "bert-tiny-legacy", NULL);
  g_autofree char *rob = fixture ("fixtures", "models", "roberta-tiny", NULL);
  expect_create_error (legacy, "no masked-LM head");
  expect_create_error (rob, "vocabulary");
  expect_create_error ("/nonexistent/generator", "/nonexistent/generator");
}

/* ---- a tiny training run through the trainer --------------------------------------- */

static void
train_once (const char *out, gint64 stop_after, gboolean resume)
{
  g_autofree char *bert = fixture ("fixtures", "models", "bert-tiny", NULL);
  g_autofree char *gen = fixture ("fixtures", "models", "distilbert-tiny", NULL);
  g_autofree char *text = g_strdup_printf (
      "[run]\nseed = 42\noutput = %s\n"
      "[train]\ncorpus = ${data}/corpus/factbook.txt\nsteps = 4\nbatch_size = 4\nlr = 1e-4\nhead = bn\n"
      "eval_every = 0\nsave_every = 2\nlog_every = 1\ntest = false\nmax_len = 16\n"
      "[encoder]\nuse = bert\nmodel = %s\n"
      "[objective.cl]\nuse = contrastive\n"
      "[objective.diff]\nuse = diff-predict\nweight = 0.5\ngenerator = %s\nmasking_ratio = 0.3\n",
      out, bert, gen);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimRecipe) recipe = stsim_recipe_load_data (reg, text, -1, "diff-train.ini", NULL, NULL, &err);
  g_assert_no_error (err);
  g_autoptr(StsimContext) ctx = stsim_recipe_new_context (recipe);
  g_assert_true (stsim_recipe_instantiate (recipe, ctx, &err));
  g_assert_no_error (err);
  StsimTrainOptions opts = STSIM_TRAIN_OPTIONS_INIT;
  opts.quiet = TRUE;
  opts.resume = resume;
  opts.stop_after_steps = stop_after;
  g_assert_true (stsim_trainer_run (recipe, ctx, &opts, &err));
  g_assert_no_error (err);
}

static GBytes *
state_tensor (const char *out, const char *name)
{
  g_autofree char *path = g_build_filename (out, "state", "state.safetensors", NULL);
  g_autoptr(StsimSafetensors) sr = open_fixture (path);
  g_autoptr(GError) err = NULL;
  gsize n = 0;
  gconstpointer p = stsim_safetensors_get_data (sr, name, &n, &err);
  g_assert_no_error (err);
  return g_bytes_new (p, n);
}

static void
test_train (void)
{
  g_autofree char *a = g_dir_make_tmp ("diff-train-a-XXXXXX", NULL);
  g_autofree char *b = g_dir_make_tmp ("diff-train-b-XXXXXX", NULL);
  g_autoptr(GError) err = NULL;
  train_once (a, 0, FALSE);

  /* Every step logged the RTD term and its statistics. */
  g_autofree char *metrics_path = g_build_filename (a, "metrics.jsonl", NULL);
  g_autofree char *metrics = NULL;
  g_assert_true (g_file_get_contents (metrics_path, &metrics, NULL, NULL));
  g_assert_nonnull (strstr (metrics, "\"loss.objective.diff\""));
  g_assert_nonnull (strstr (metrics, "\"objective.diff.replaced\""));

  /* The resume state holds the discriminator (store 2, after the student
   * and the BN head) and the electra head (store 3), and both moved; the
   * exported model is the student only. */
  g_autoptr(GBytes) disc = state_tensor (a, "2.bert.param");
  g_autoptr(GBytes) head = state_tensor (a, "3.electra_head.param");
  g_autoptr(GBytes) head_m = state_tensor (a, "3.electra_head.adam_m");
  g_autoptr(StsimModel) orig = load_model ("bert-tiny", 0);
  g_assert_cmpuint (g_bytes_get_size (head), ==, (gsize) (2 * stsim_model_get_dim (orig) + 2) * 4);
  double head_m_norm = 0;
  for (gsize i = 0; i < g_bytes_get_size (head_m) / 4; i++)
    head_m_norm += fabs (((const float *) g_bytes_get_data (head_m, NULL))[i]);
  g_assert_cmpfloat (head_m_norm, >, 0);  /* the optimizer updated the head */
  const StsimParamView *w0 = stsim_param_store_lookup (stsim_model_get_params (orig),
                                                       "encoder.layer.2.output.dense.weight");
  g_assert_cmpuint (g_bytes_get_size (disc), >, (gsize) (w0->offset + w0->numel) * 4);
  g_assert_true (memcmp ((const float *) g_bytes_get_data (disc, NULL) + w0->offset, w0->tensor->data,
                         w0->numel * 4) != 0);
  g_autofree char *best = g_build_filename (a, "best", NULL);
  g_autoptr(StsimModel) exported = stsim_model_load (best, 0, 1, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (stsim_param_store_get_n_views (stsim_model_get_params (exported)), ==,
                    stsim_param_store_get_n_views (stsim_model_get_params (orig)));
  g_autofree char *st_path = g_build_filename (best, "model.safetensors", NULL);
  g_autofree char *st = NULL;
  gsize st_len = 0;
  g_assert_true (g_file_get_contents (st_path, &st, &st_len, NULL));
  g_assert_null (g_strstr_len (st, MIN (st_len, 65536), "electra"));
  g_assert_null (g_strstr_len (st, MIN (st_len, 65536), "discriminator"));

  /* Killed after 3 steps (the state saved at step 2) and resumed:
   * bit-identical to the straight run, discriminator and its AdamW moments
   * included. (Stopped after 2 steps, the run would stop before its step-2
   * save and --resume would have nothing to resume.) */
  train_once (b, 3, FALSE);
  train_once (b, 0, TRUE);
  const char *names[] = { "0.bert.param", "2.bert.param", "2.bert.adam_m", "2.bert.adam_v", "3.electra_head.param",
                          "3.electra_head.adam_m", "3.electra_head.adam_v", NULL };
  for (int i = 0; names[i]; i++) {
    g_autoptr(GBytes) x = state_tensor (a, names[i]);
    g_autoptr(GBytes) y = state_tensor (b, names[i]);
    g_assert_true (g_bytes_equal (x, y));
  }
  stsim_test_remove_tree (a);
  stsim_test_remove_tree (b);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_autoptr(GError) err = NULL;
  reg = stsim_registry_new ();
  stsim_registry_scan_default (reg);
  g_test_add_data_func ("/diff-predict/labels/bert", "diffcse_labels", test_labels);
  g_test_add_data_func ("/diff-predict/labels/roberta", "diffcse_labels_roberta", test_labels);
  g_test_add_data_func ("/diff-predict/rtd-ce/pads-included", "rtd_ce_all_positions", test_rtd_ce);
  g_test_add_data_func ("/diff-predict/rtd-ce/pads-excluded", "rtd_ce_real_positions", test_rtd_ce);
  g_test_add_data_func ("/diff-predict/step/pads-included", "include", test_step);
  g_test_add_data_func ("/diff-predict/step/pads-excluded", "exclude", test_step);
  g_test_add_func ("/diff-predict/position0", test_position0);
  g_test_add_func ("/diff-predict/gradient-reaches-encoder", test_gradient_reaches_encoder);
  g_test_add_func ("/diff-predict/generator/argmax-everywhere", test_generator_argmax);
  g_test_add_func ("/diff-predict/generator/deterministic", test_generator_deterministic);
  g_test_add_func ("/diff-predict/generator/sampling", test_generator_sampling);
  g_test_add_func ("/diff-predict/generator/sampling-rows", test_generator_sampling_rows);
  g_test_add_func ("/diff-predict/store", test_store);
  g_test_add_func ("/diff-predict/errors", test_errors);
  g_test_add_func ("/diff-predict/train", test_train);
  int rc = g_test_run ();
  stsim_registry_free (reg);
  return rc;
}
