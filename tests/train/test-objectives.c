/* test-objectives: the `contrastive` and `mlm` objectives and BERT masking.
 *
 * - contrastive: loss and dL/dz of the plugin, driven through a detached
 *   step, against the PyTorch float64 fixtures of
 *   tests/reference/loss_reference.py (infonce, infonce_symmetric,
 *   infonce_supervised), relative error <= 1e-5.
 * - the MLM reduction (gather the selected rows, mean CE) against the
 *   mlm_ce fixtures (torch CrossEntropyLoss with ignore_index -100).
 * - masking: selection ratio and the 80/10/10 split over many draws within
 *   binomial tolerances; special tokens and pads never selected.
 * - mlm plugin on a tiny BERT: a finite loss near log(V) for a fresh model,
 *   only selected positions scored, and the same result for the same step. */
#include <math.h>
#include <string.h>

#include "stsim/stsim.h"
#include "stsim/stsim-model.h"
#include "stsim/stsim-registry.h"
#include "stsim/stsim-safetensors.h"
#include "train-test-util.h"

static StsimRegistry *reg;

static double
rel_err (const float *a, const float *b, gint64 n)
{
  double num = 0, den = 0;
  for (gint64 i = 0; i < n; i++) {
    num = MAX (num, fabs ((double) a[i] - b[i]));
    den = MAX (den, fabs ((double) b[i]));
  }
  return num / MAX (den, 1e-30);
}

#define make_objective(...) train_test_objective (reg, __VA_ARGS__)

/* One InfoNCE fixture: views z1, z2 (, z3) stacked view-major into one leaf. */
static void
check_infonce (gconstpointer data)
{
  const char *name = data;
  g_autofree char *file = g_strdup_printf ("%s.safetensors", name);
  g_autofree char *path = train_test_fixture ("losses", file, NULL);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimSafetensors) r = stsim_safetensors_open (path, &err);
  g_assert_no_error (err);
  gboolean sup = strcmp (name, "infonce_supervised") == 0;
  guint V = sup ? 3 : 2;
  const char *zn[3] = { "z1", "z2", "z3" };
  const char *gn[3] = { "grad.z1", "grad.z2", "grad.z3" };
  gsize n = 0;
  const gint64 B = 8, H = 16;
  g_autofree float *z = g_new (float, V * B * H);
  for (guint v = 0; v < V; v++) {
    g_autofree float *zv = stsim_safetensors_dup_f32 (r, zn[v], &n, &err);
    g_assert_no_error (err);
    g_assert_cmpuint (n, ==, B * H);
    memcpy (z + v * B * H, zv, n * sizeof (float));
  }
  g_autofree float *tau = stsim_safetensors_dup_f32 (r, "tau", NULL, &err);
  g_autofree float *want = stsim_safetensors_dup_f32 (r, "loss", NULL, &err);
  g_autofree char *tau_s = g_strdup_printf ("%.9g", tau[0]);
  g_autofree char *hnw = NULL;
  g_autoptr(StsimComponent) c = NULL;
  if (sup) {
    g_autofree float *w = stsim_safetensors_dup_f32 (r, "hard_negative_weight", NULL, &err);
    hnw = g_strdup_printf ("%.9g", w[0]);
    c = make_objective ("contrastive", "temperature", tau_s, "hard_negative_weight", hnw, NULL);
  } else
    c = make_objective ("contrastive", "temperature", tau_s, "symmetric",
                        strcmp (name, "infonce_symmetric") == 0 ? "true" : "false", NULL);

  g_autoptr(StsimTape) tape = stsim_tape_new (1, 0);
  gint64 shape[2] = { V * B, H };
  StsimTensor *zt = stsim_tensor_from_data (tape, 2, shape, z);
  stsim_tensor_set_requires_grad (zt, TRUE);
  g_autoptr(StsimTrainStep) step = stsim_train_step_new_detached (tape, B, V, 42, 0);
  stsim_train_step_set_projected (step, zt);
  StsimTensor *loss = train_test_loss (c, step);
  double e_loss = fabs (loss->data[0] - want[0]) / fabs (want[0]);
  g_assert_true (stsim_tape_backward (tape, loss, NULL, &err));
  g_assert_no_error (err);
  double e_grad = 0;
  for (guint v = 0; v < V; v++) {
    g_autofree float *g = stsim_safetensors_dup_f32 (r, gn[v], &n, &err);
    g_assert_no_error (err);
    e_grad = MAX (e_grad, rel_err (zt->grad + v * B * H, g, n));
  }
  g_test_message ("%s: loss %.9g (want %.9g), rel err loss %.3g, grad %.3g", name, loss->data[0], want[0], e_loss,
                  e_grad);
  g_assert_cmpfloat (e_loss, <=, 1e-5);
  g_assert_cmpfloat (e_grad, <=, 1e-5);
  /* The logged retrieval accuracy is a fraction. */
  double acc = stsim_train_step_get_logged (step, "accuracy");
  g_assert_true (acc >= 0 && acc <= 1);
}

/* A symmetric loss on three views is refused with a message. */
static void
test_contrastive_symmetric_triples (void)
{
  g_autoptr(StsimComponent) c = make_objective ("contrastive", "symmetric", "true", NULL);
  g_autoptr(StsimTape) tape = stsim_tape_new (1, 0);
  gint64 shape[2] = { 6, 4 };
  StsimTensor *z = stsim_tensor_zeros (tape, 2, shape);
  for (gint64 i = 0; i < z->numel; i++)
    z->data[i] = (float) ((i * 7) % 5) - 2.0f;
  g_autoptr(StsimTrainStep) step = stsim_train_step_new_detached (tape, 2, 3, 42, 0);
  stsim_train_step_set_projected (step, z);
  g_autoptr(GError) err = NULL;
  StsimTensor *loss = NULL;
  const StsimObjectiveVTable *vt = stsim_component_get_desc (c)->vtable;
  g_assert_false (vt->loss (stsim_component_get_state (c), step, &loss, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_INVALID);
  g_assert_true (strstr (err->message, "symmetric") != NULL);
}

/* mlm.c's reduction: rows with a label gathered, then mean CE. */
static void
check_mlm_ce (gconstpointer data)
{
  const char *name = data;
  g_autofree char *file = g_strdup_printf ("%s.safetensors", name);
  g_autofree char *path = train_test_fixture ("losses", file, NULL);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimSafetensors) r = stsim_safetensors_open (path, &err);
  g_assert_no_error (err);
  gsize nx = 0, ny = 0;
  g_autofree float *logits = stsim_safetensors_dup_f32 (r, "logits", &nx, &err);
  g_autofree gint64 *labels = stsim_safetensors_dup_i64 (r, "labels", &ny, &err);
  g_autofree float *want = stsim_safetensors_dup_f32 (r, "loss", NULL, &err);
  g_autofree float *want_g = stsim_safetensors_dup_f32 (r, "grad.logits", NULL, &err);
  g_assert_no_error (err);
  const gint64 n_logits = (gint64) nx, n_labels = (gint64) ny;
  gint64 C = n_logits / n_labels;
  g_autoptr(StsimTape) tape = stsim_tape_new (1, 0);
  gint64 shape[2] = { n_labels, C };
  StsimTensor *x = stsim_tensor_from_data (tape, 2, shape, logits);
  stsim_tensor_set_requires_grad (x, TRUE);
  g_autofree gint32 *rows = g_new (gint32, n_labels);
  g_autofree gint32 *targets = g_new (gint32, n_labels);
  gint64 k = 0;
  for (gint64 i = 0; i < n_labels; i++)
    if (labels[i] != -100) {
      rows[k] = i;
      targets[k++] = labels[i];
    }
  StsimTensor *sel = stsim_gather_rows (tape, x, rows, k);
  StsimTensor *loss = stsim_cross_entropy (tape, sel, targets, -100);
  g_assert_true (stsim_tape_backward (tape, loss, NULL, &err));
  double e_loss = fabs (loss->data[0] - want[0]) / fabs (want[0]);
  double e_grad = rel_err (x->grad, want_g, n_logits);
  g_test_message ("%s: %" G_GINT64_FORMAT " selected, rel err loss %.3g grad %.3g", name, k, e_loss, e_grad);
  g_assert_cmpfloat (e_loss, <=, 1e-5);
  g_assert_cmpfloat (e_grad, <=, 1e-5);
  /* Unselected positions get exactly no gradient. */
  for (gint64 i = 0; i < n_labels; i++)
    if (labels[i] == -100)
      for (gint64 j = 0; j < C; j++)
        g_assert_cmpfloat (x->grad[i * C + j], ==, 0.0f);
}

/* ---- masking ------------------------------------------------------------ */

static StsimTokenizer *
tiny_tokenizer (void)
{
  g_autofree char *dir = train_test_fixture ("models", "bert-tiny", NULL);
  g_autoptr(GError) err = NULL;
  StsimTokenizer *tok = stsim_tokenizer_new_from_dir (dir, &err);
  g_assert_no_error (err);
  return tok;
}

static void
test_masking_statistics (void)
{
  g_autoptr(StsimTokenizer) tok = tiny_tokenizer ();
  const gint32 V = stsim_tokenizer_vocab_size (tok);
  const gint32 cls = stsim_tokenizer_cls_id (tok), sep = stsim_tokenizer_sep_id (tok);
  const gint32 pad = stsim_tokenizer_pad_id (tok), unk = stsim_tokenizer_unk_id (tok);
  const gint32 mask = stsim_tokenizer_mask_id (tok);
  const gsize rows = 64, width = 32;
  g_autofree gint32 *ids = g_new (gint32, rows * width);
  g_autofree gint32 *lengths = g_new (gint32, rows);
  g_autofree gint32 *out = g_new (gint32, rows * width);
  g_autofree gint32 *labels = g_new (gint32, rows * width);
  StsimRng fill;
  stsim_rng_init (&fill, 7, STSIM_RNG_STREAM_USER);
  /* Rows: [CLS] content (with some [UNK]) [SEP] pads; content ids drawn
   * from the non-special range 999+ of the vocabulary... bert-tiny's
   * vocabulary has specials and [unusedK] below 105. */
  gsize maskable = 0;
  for (gsize r = 0; r < rows; r++) {
    gint32 len = 3 + (gint32) stsim_rng_range (&fill, 0, width - 2);
    lengths[r] = len;
    for (gsize k = 0; k < width; k++) {
      gint32 id = pad;
      if (k == 0)
        id = cls;
      else if ((gint32) k == len - 1)
        id = sep;
      else if ((gint32) k < len)
        id = stsim_rng_range (&fill, 0, 10) == 0 ? unk : (gint32) stsim_rng_range (&fill, 105, V);
      ids[r * width + k] = id;
      if ((gint32) k < len && !stsim_tokenizer_is_special (tok, id))
        maskable++;
    }
  }
  g_assert_true (stsim_tokenizer_is_special (tok, unk));

  StsimMaskingConfig cfg = STSIM_MASKING_CONFIG_INIT;
  StsimRng rng;
  stsim_rng_init (&rng, 42, STSIM_RNG_STREAM_MASKING);
  const int draws = 400;
  gsize sel = 0, n_mask = 0, n_same = 0, n_other = 0;
  for (int d = 0; d < draws; d++) {
    gsize s = stsim_mask_tokens (tok, &cfg, &rng, ids, lengths, rows, width, out, labels);
    gsize counted = 0;
    for (gsize i = 0; i < rows * width; i++) {
      gsize k = i % width;
      gboolean real = (gint32) k < lengths[i / width];
      if (!real || stsim_tokenizer_is_special (tok, ids[i])) {
        /* Specials and pads: never selected, never changed. */
        g_assert_cmpint (labels[i], ==, -100);
        g_assert_cmpint (out[i], ==, ids[i]);
        continue;
      }
      if (labels[i] == -100) {
        g_assert_cmpint (out[i], ==, ids[i]);
        continue;
      }
      g_assert_cmpint (labels[i], ==, ids[i]);
      counted++;
      if (out[i] == mask)
        n_mask++;
      else if (out[i] == ids[i])
        n_same++;
      else {
        g_assert_cmpint (out[i], >=, 0);
        g_assert_cmpint (out[i], <, V);
        n_other++;
      }
    }
    g_assert_cmpuint (counted, ==, s);
    sel += s;
  }
  const double N = (double) maskable * draws;
  const double ratio = sel / N;
  /* Binomial standard deviations; 5 sigma keeps the test deterministic in
   * practice (the seed is fixed anyway) yet sensitive to a wrong rule. */
  const double sd_sel = sqrt (0.15 * 0.85 / N);
  g_test_message ("selected %.5f of %.0f maskable (sd %.5f)", ratio, N, sd_sel);
  g_assert_cmpfloat (fabs (ratio - 0.15), <=, 5 * sd_sel);
  /* A random replacement equals the original with probability 1/V; that
   * lands in n_same: P(same) = 0.1 + 0.1/V, P(other) = 0.1·(1 - 1/V). */
  const double S = (double) sel;
  const double p_mask = 0.8, p_other = 0.1 * (1.0 - 1.0 / V), p_same = 1.0 - p_mask - p_other;
  g_test_message ("split mask %.4f same %.4f random %.4f", n_mask / S, n_same / S, n_other / S);
  g_assert_cmpfloat (fabs (n_mask / S - p_mask), <=, 5 * sqrt (p_mask * (1 - p_mask) / S));
  g_assert_cmpfloat (fabs (n_other / S - p_other), <=, 5 * sqrt (p_other * (1 - p_other) / S));
  g_assert_cmpfloat (fabs (n_same / S - p_same), <=, 5 * sqrt (p_same * (1 - p_same) / S));
}

static void
test_masking_deterministic (void)
{
  g_autoptr(StsimTokenizer) tok = tiny_tokenizer ();
  gint32 ids[2 * 8] = { 101, 2000, 2001, 2002, 2003, 102, 0, 0, 101, 2004, 2005, 102, 0, 0, 0, 0 };
  for (int i = 0; i < 16; i++)
    if (ids[i] >= stsim_tokenizer_vocab_size (tok))
      ids[i] = 200 + i;  /* keep ids inside the tiny vocabulary */
  gint32 lengths[2] = { 6, 4 };
  gint32 a[16], la[16], b[16], lb[16];
  StsimMaskingConfig cfg = { 0.5, 0.8, 0.1 };
  StsimRng r1, r2;
  stsim_rng_init (&r1, 9, STSIM_RNG_STREAM_MASKING);
  stsim_rng_seek (&r1, 1000);
  stsim_rng_init (&r2, 9, STSIM_RNG_STREAM_MASKING);
  stsim_rng_seek (&r2, 1000);
  stsim_mask_tokens (tok, &cfg, &r1, ids, lengths, 2, 8, a, la);
  stsim_mask_tokens (tok, &cfg, &r2, ids, lengths, 2, 8, b, lb);
  g_assert_cmpmem (a, sizeof a, b, sizeof b);
  g_assert_cmpmem (la, sizeof la, lb, sizeof lb);
}

/* ---- the mlm plugin on a tiny model --------------------------------------- */

static void
test_mlm_plugin (void)
{
  g_autofree char *dir = train_test_fixture ("models", "bert-tiny", NULL);
  g_autofree char *cfg_path = g_build_filename (dir, "config.json", NULL);
  g_autoptr(GError) err = NULL;
  StsimModelConfig cfg;
  g_assert_true (stsim_model_config_load (cfg_path, &cfg, &err));
  StsimTokenizer *tok = stsim_tokenizer_new_from_dir (dir, &err);
  g_assert_no_error (err);
  g_autoptr(StsimModel) model = stsim_model_new (&cfg, tok, STSIM_MODEL_MLM_HEAD, 3, &err);
  g_assert_no_error (err);
  g_autoptr(StsimComponent) c = make_objective ("mlm", "ratio", "0.3", NULL);
  const char *texts[] = { "the team is a unit", "how big is that part compared to the whole ?",
                          "the team is a unit", "how big is that part compared to the whole ?" };
  double first = 0;
  for (int round = 0; round < 2; round++) {
    g_autoptr(StsimTape) tape = stsim_tape_new (5, 0);
    stsim_tape_set_step (tape, 11);
    g_autoptr(StsimTrainStep) step = stsim_train_step_new_detached (tape, 2, 2, 5, 11);
    g_assert_true (stsim_train_step_set_model (step, model, texts, 32, &err));
    g_assert_no_error (err);
    StsimTensor *loss = train_test_loss (c, step);
    double sel = stsim_train_step_get_logged (step, "selected");
    g_test_message ("mlm loss %.5f over %.0f positions (log V = %.5f)", loss->data[0], sel, log (cfg.vocab_size));
    g_assert_true (isfinite (loss->data[0]));
    g_assert_cmpfloat (sel, >=, 1);
    /* A fresh model predicts nearly uniformly: loss close to log V. */
    g_assert_cmpfloat (fabs (loss->data[0] - log (cfg.vocab_size)), <, 0.5);
    g_assert_true (stsim_tape_backward (tape, loss, NULL, &err));
    g_assert_no_error (err);
    if (round == 0)
      first = loss->data[0];
    else
      g_assert_cmpfloat (loss->data[0], ==, first);  /* same seed and step: same masks and dropout */
    stsim_param_store_zero_grad (stsim_model_get_params (model));
  }
}

static void
test_mlm_needs_head (void)
{
  g_autofree char *dir = train_test_fixture ("models", "bert-tiny", NULL);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimModel) model = stsim_model_load (dir, 0, 3, &err);
  g_assert_no_error (err);
  g_autoptr(StsimComponent) c = make_objective ("mlm", NULL);
  const char *texts[] = { "a b", "a b" };
  g_autoptr(StsimTape) tape = stsim_tape_new (5, 0);
  g_autoptr(StsimTrainStep) step = stsim_train_step_new_detached (tape, 1, 2, 5, 0);
  g_assert_true (stsim_train_step_set_model (step, model, texts, 32, &err));
  StsimTensor *loss = NULL;
  const StsimObjectiveVTable *vt = stsim_component_get_desc (c)->vtable;
  g_assert_false (vt->loss (stsim_component_get_state (c), step, &loss, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_RECIPE);
  g_assert_true (strstr (err->message, "mlm_head = true") != NULL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  reg = stsim_registry_new ();
  stsim_registry_scan_default (reg);
  g_test_add_data_func ("/train/contrastive/infonce", "infonce", check_infonce);
  g_test_add_data_func ("/train/contrastive/symmetric", "infonce_symmetric", check_infonce);
  g_test_add_data_func ("/train/contrastive/supervised", "infonce_supervised", check_infonce);
  g_test_add_func ("/train/contrastive/symmetric-triples-refused", test_contrastive_symmetric_triples);
  g_test_add_data_func ("/train/mlm/ce-fixture", "mlm_ce", check_mlm_ce);
  g_test_add_data_func ("/train/mlm/ce-fixture-large-logits", "mlm_ce_large_logits", check_mlm_ce);
  g_test_add_func ("/train/masking/statistics", test_masking_statistics);
  g_test_add_func ("/train/masking/deterministic", test_masking_deterministic);
  g_test_add_func ("/train/mlm/plugin", test_mlm_plugin);
  g_test_add_func ("/train/mlm/needs-head", test_mlm_needs_head);
  int rc = g_test_run ();
  stsim_registry_free (reg);
  return rc;
}
