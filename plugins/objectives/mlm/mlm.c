/* mlm.c: the `mlm` objective: BERT's masked-language-model loss (method.md
 * §3.9), as SimCSE's --do_mlm auxiliary or alone to pretrain an encoder
 * from a fresh init. README.md beside this file has the details.
 *
 * Per step: the step's token rows (all V·B rows, as SimCSE masks every row,
 * or only view 1's B rows) are corrupted by the 80/10/10 rule
 * (stsim_mask_tokens: specials and pads never selected), the student runs a
 * separate forward on the corrupted rows (train mode: its own dropout), the
 * MLM head scores only the selected positions, and the loss is the mean
 * cross-entropy over them. */
#include <math.h>
#include <string.h>

#include <stsim/stsim.h>

static const StsimParamSpec mlm_params[] = {
  { "ratio", STSIM_PARAM_DOUBLE, "0.15", .min = 0.001, .max = 1,
    .blurb = "probability that a non-special token is selected for prediction" },
  { "mask_prob", STSIM_PARAM_DOUBLE, "0.8", .min = 0, .max = 1,
    .blurb = "of the selected tokens: the share replaced by the mask token" },
  { "random_prob", STSIM_PARAM_DOUBLE, "0.1", .min = 0, .max = 1,
    .blurb = "of the selected tokens: the share replaced by a uniform random id (the rest stay unchanged)" },
  { "rows", STSIM_PARAM_ENUM, "all", .choices = "all|view1",
    .blurb = "which rows are masked: all views (SimCSE's do_mlm) or view 1 only (half the cost; pretraining)" },
  { NULL }
};

typedef struct {
  StsimMaskingConfig cfg;
  gboolean           view1_only;
} Mlm;

/* The masked-LM head belongs to the encoder (mlm_head = true); without it
 * the loss failed at step 0, after the corpus had loaded. The encoder is
 * created before the objectives, so creation can check. */
static gboolean
check_encoder_head (StsimContext *ctx, GError **error)
{
  guint n = 0, with_model = 0, with_head = 0;
  StsimComponent *const *all = ctx ? stsim_context_get_components (ctx, &n) : NULL;
  const char *label = NULL;
  for (guint i = 0; i < n; i++) {
    StsimModel *model = stsim_component_get_kind (all[i]) == STSIM_KIND_ENCODER
                          ? stsim_encoder_model (all[i], NULL) : NULL;  /* none: not a neural encoder */
    if (!model)
      continue;
    with_model++;
    with_head += (stsim_model_get_flags (model) & STSIM_MODEL_MLM_HEAD) != 0;
    label = stsim_component_get_label (all[i]);
  }
  if (with_model > 0 && with_head == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "the encoder [%s] has no masked-LM head, which mlm trains: set mlm_head = true in [%s]", label,
                 label);
    return FALSE;
  }
  return TRUE;
}

static gpointer
mlm_create (const StsimParams *params, StsimContext *ctx, GError **error)
{
  if (!check_encoder_head (ctx, error))
    return NULL;
  Mlm *m = g_new0 (Mlm, 1);
  m->cfg.ratio = stsim_params_get_double (params, "ratio");
  m->cfg.mask_prob = stsim_params_get_double (params, "mask_prob");
  m->cfg.random_prob = stsim_params_get_double (params, "random_prob");
  m->view1_only = strcmp (stsim_params_get_string (params, "rows"), "view1") == 0;
  if (m->cfg.mask_prob + m->cfg.random_prob > 1.0 + 1e-12) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "mask_prob (%g) + random_prob (%g) exceed 1: they split the selected tokens", m->cfg.mask_prob,
                 m->cfg.random_prob);
    g_free (m);
    return NULL;
  }
  return m;
}

static void
mlm_destroy (gpointer state)
{
  g_free (state);
}

typedef struct {
  StsimTokenBatch batch;
  gint32         *labels;
  gint32         *rows;     /* hidden-state row of each selected position */
  gint32         *targets;
} Masked;

static void
masked_free (gpointer p)
{
  Masked *m = p;
  g_free (m->batch.ids);
  g_free (m->batch.mask);
  g_free (m->batch.lengths);
  g_free (m->labels);
  g_free (m->rows);
  g_free (m->targets);
  g_free (m);
}

/* Data-parallel (docs/distributed.md): every rank masked the whole global
 * batch with the same generator (so the selection is the single-process
 * one); this rank predicts the positions of its own rows and divides by the
 * GLOBAL number of selected positions, so the ranks' losses add up to the
 * single-process mean. */
static void
masked_batch_free (StsimTokenBatch *b)
{
  g_free (b->ids);
  g_free (b->mask);
  g_free (b->lengths);
  g_free (b);
}

/* Logs the share of the @n selected positions whose arg-max prediction in
 * @logits [n, V] is the target. */
static void
log_accuracy (StsimTrainStep *step, const StsimTensor *logits, const gint32 *targets, gsize n)
{
  gint64 V = stsim_tensor_cols (logits), hits = 0;
  for (gsize i = 0; i < n; i++) {
    const float *row = logits->data + i * V;
    gint64 best = 0;
    for (gint64 j = 1; j < V; j++)
      if (row[j] > row[best])
        best = j;
    hits += best == targets[i];
  }
  stsim_train_step_log (step, "accuracy", (double) hits / n);
}

static gboolean
mlm_loss_sharded (Masked *mk, StsimTrainStep *step, StsimModel *model, gsize n_sel_global, StsimTensor **loss,
                  GError **error)
{
  StsimTape *tape = stsim_train_step_get_tape (step);
  const gsize rows = mk->batch.n, width = mk->batch.width;
  gsize first = 0, n_local = 0;
  stsim_train_step_get_shard (step, &first, &n_local);
  /* This rank's rows among the masked ones (all views, or view 0 only). */
  const gsize n_all = n_local * stsim_train_step_get_n_views (step);
  g_autofree gsize *mine = g_new (gsize, MAX (n_all, 1));
  gsize n_mine = 0;
  for (gsize i = 0; i < n_all; i++) {
    gsize g = stsim_train_step_local_row (step, i);
    if (g < rows)
      mine[n_mine++] = g;
  }
  StsimTokenBatch *lb = g_new0 (StsimTokenBatch, 1);
  lb->n = n_mine;
  lb->width = width;
  lb->ids = g_new (gint32, n_mine * width);
  lb->mask = g_new (gint32, n_mine * width);
  lb->lengths = g_new (gint32, n_mine);
  g_autofree gint32 *labels = g_new (gint32, n_mine * width);
  for (gsize i = 0; i < n_mine; i++) {
    memcpy (lb->ids + i * width, mk->batch.ids + mine[i] * width, width * sizeof (gint32));
    memcpy (lb->mask + i * width, mk->batch.mask + mine[i] * width, width * sizeof (gint32));
    memcpy (labels + i * width, mk->labels + mine[i] * width, width * sizeof (gint32));
    lb->lengths[i] = mk->batch.lengths[mine[i]];
  }
  /* Kept until the step ends, like the global masked batch. */
  g_autofree char *key = g_strdup_printf ("mlm.local.%s", stsim_train_step_get_objective_label (step)
                                          ? stsim_train_step_get_objective_label (step) : "");
  stsim_train_step_set_data (step, key, lb, (GDestroyNotify) masked_batch_free);

  /* Dropout as one process draws it for these rows of the masked batch. */
  StsimForwardOptions fo = { .packed = TRUE, .whole = &mk->batch, .whole_rows = mine };
  StsimModelOutput out;
  if (!stsim_model_forward (model, tape, lb, &fo, &out, error))
    return FALSE;
  gsize n_sel = 0;
  for (gsize i = 0; i < n_mine * width; i++)
    n_sel += labels[i] >= 0;
  stsim_train_step_set_loss_local (step);
  stsim_train_step_log (step, "selected", (double) n_sel_global);
  if (n_sel == 0) {
    /* Nothing to predict here: a zero that still depends on the model, so
     * that this rank's backward has the same shape as the others'. */
    *loss = stsim_scale (tape, stsim_sum (tape, out.hidden[out.n_layers]), 0.0f);
    return *loss != NULL;
  }
  g_autofree gint32 *hrows = g_new (gint32, n_sel);
  g_autofree gint32 *targets = g_new (gint32, n_sel);
  gsize k = 0;
  for (gsize r = 0; r < n_mine; r++)
    for (gsize c = 0; c < width; c++)
      if (labels[r * width + c] >= 0) {
        hrows[k] = out.seqs[r].offset + (gint32) c;
        targets[k] = labels[r * width + c];
        k++;
      }
  StsimTensor *h = stsim_gather_rows (tape, out.hidden[out.n_layers], hrows, (gint64) n_sel);
  StsimTensor *logits = stsim_model_mlm_logits (model, tape, h);
  StsimTensor *ce = stsim_cross_entropy (tape, logits, targets, -100);
  *loss = stsim_scale (tape, ce, (float) ((double) n_sel / (double) n_sel_global));
  if (!*loss) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "mlm: building the loss failed");
    return FALSE;
  }
  /* This rank's share of the positions (rank 0's is what gets logged). */
  log_accuracy (step, logits, targets, n_sel);
  return TRUE;
}

static gboolean
mlm_loss (gpointer state, StsimTrainStep *step, StsimTensor **loss, GError **error)
{
  Mlm *m = state;
  StsimTape *tape = stsim_train_step_get_tape (step);
  StsimModel *model = stsim_train_step_get_model (step);
  StsimTokenizer *tok = stsim_train_step_get_tokenizer (step);
  const StsimTokenBatch *src = stsim_train_step_get_batch (step);

  if (!model || !tok || !src || src->n == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "mlm: the step has no model or token batch");
    return FALSE;
  }
  if (!(stsim_model_get_flags (model) & STSIM_MODEL_MLM_HEAD)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                 "mlm: the encoder has no masked-LM head; set mlm_head = true in its section");
    return FALSE;
  }
  const gsize rows = m->view1_only ? stsim_train_step_get_n_sentences (step) : src->n;
  const gsize width = src->width;
  Masked *mk = g_new0 (Masked, 1);
  /* Kept until the step ends: the forward pass may refer to the ids. */
  g_autofree char *key = g_strdup_printf ("mlm.masked.%s", stsim_train_step_get_objective_label (step)
                                          ? stsim_train_step_get_objective_label (step) : "");
  stsim_train_step_set_data (step, key, mk, masked_free);
  mk->batch.n = rows;
  mk->batch.width = width;
  mk->batch.ids = g_new (gint32, rows * width);
  mk->batch.mask = g_memdup2 (src->mask, rows * width * sizeof (gint32));
  mk->batch.lengths = g_memdup2 (src->lengths, rows * sizeof (gint32));
  mk->labels = g_new (gint32, rows * width);

  StsimRng rng;
  stsim_train_step_init_rng (step, STSIM_RNG_STREAM_MASKING, &rng);
  gsize n_sel = stsim_mask_tokens (tok, &m->cfg, &rng, src->ids, src->lengths, rows, width, mk->batch.ids,
                                   mk->labels);
  if (n_sel == 0) {
    /* A batch of very short rows can draw no position at all; predicting
     * one keeps the loss defined (HF would produce NaN here). Take the
     * first non-special token. */
    for (gsize i = 0; i < rows * width && n_sel == 0; i++)
      if ((gint32) (i % width) < src->lengths[i / width] && !stsim_tokenizer_is_special (tok, src->ids[i])) {
        mk->labels[i] = src->ids[i];
        mk->batch.ids[i] = stsim_tokenizer_mask_id (tok);
        n_sel = 1;
      }
    if (n_sel == 0) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA,
                   "mlm: no row of this step has a maskable token (only special tokens)");
      return FALSE;
    }
  }

  if (stsim_train_step_get_n_ranks (step) > 1)
    return mlm_loss_sharded (mk, step, model, n_sel, loss, error);

  StsimForwardOptions fo = { .packed = TRUE };
  StsimModelOutput out;
  if (!stsim_model_forward (model, tape, &mk->batch, &fo, &out, error))
    return FALSE;
  mk->rows = g_new (gint32, n_sel);
  mk->targets = g_new (gint32, n_sel);
  gsize k = 0;
  for (gsize r = 0; r < rows; r++)
    for (gsize c = 0; c < width; c++)
      if (mk->labels[r * width + c] >= 0) {
        mk->rows[k] = out.seqs[r].offset + (gint32) c;
        mk->targets[k] = mk->labels[r * width + c];
        k++;
      }
  StsimTensor *h = stsim_gather_rows (tape, out.hidden[out.n_layers], mk->rows, (gint64) n_sel);
  StsimTensor *logits = stsim_model_mlm_logits (model, tape, h);
  *loss = stsim_cross_entropy (tape, logits, mk->targets, -100);
  if (!*loss) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "mlm: building the loss failed");
    return FALSE;
  }
  log_accuracy (step, logits, mk->targets, n_sel);
  stsim_train_step_log (step, "selected", (double) n_sel);
  return TRUE;
}

static const StsimObjectiveVTable mlm_vtable = { .loss = mlm_loss };

static const StsimComponentDesc mlm_desc = {
  .kind = STSIM_KIND_OBJECTIVE, .name = "mlm",
  .summary = "masked-language-model cross-entropy (80/10/10 masking), auxiliary or for pretraining",
  .params = mlm_params, .create = mlm_create, .destroy = mlm_destroy, STSIM_VTABLE (mlm_vtable),
};

STSIM_PLUGIN_DEFINE ("mlm", "0.1.0", "MIT", "BERT masked-language-model objective",
                     "@inproceedings{devlin2019bert, title={{BERT}: Pre-training of Deep Bidirectional Transformers "
                     "for Language Understanding}, author={Devlin, Jacob and Chang, Ming-Wei and Lee, Kenton and "
                     "Toutanova, Kristina}, booktitle={NAACL}, year={2019}}",
                     &mlm_desc)
