/* diff-predict.c: the `diff-predict` objective: DiffCSE's replaced-token
 * detection conditioned on the sentence vector (method.md §4). README.md
 * beside this file maps the paper's equations to the functions below.
 *
 * One step, on the step's V·B token rows (view-major, the same rows the
 * contrastive loss sees):
 *   1. mask every row independently (80/10/10, specials and pads never);
 *   2. a frozen masked LM (the generator) predicts every real position of the
 *      masked rows: argmax (the published code) or a sample at a temperature;
 *      position 0 is forced to the CLS id;
 *   3. labels r = [ĝ ≠ x]·m; the discriminator reads ĝ·m;
 *   4. the discriminator (a trainable copy of the student's initial weights)
 *      runs with its position-0 embedding row replaced by the conditioning
 *      vector (z after the trainer's head, or h before it), so the RTD
 *      gradient reaches the sentence encoder through z;
 *   5. a two-class head per position; the loss is the mean cross-entropy over
 *      all V·B·L positions, pads included (published) or real positions only.
 *
 * The electra head (Linear(H, 2)) lives in rows 0 and 1 of the
 * discriminator's pooler.dense: params() can return one store only, and the
 * discriminator never uses its pooler otherwise, so the whole trainable
 * state of this objective is that one store (see README.md). */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include <stsim/stsim.h>
#include <stsim/stsim-model.h>
#include <stsim/stsim-registry.h>

#define DIFF_DEFAULT_STREAM "25"          /* STSIM_RNG_STREAM_USER + 9 (issue 9): masks independent of mlm's */
#define DIFF_HEAD_WEIGHT "pooler.dense.weight"
#define DIFF_HEAD_BIAS   "pooler.dense.bias"

static const StsimParamSpec diff_params[] = {
  { "generator", STSIM_PARAM_PATH, NULL, .flags = STSIM_PARAM_REQUIRED,
    .blurb = "Hugging Face folder of a masked LM (BERT, RoBERTa or DistilBERT with its MLM head); frozen" },
  { "discriminator", STSIM_PARAM_PATH, NULL,
    .blurb = "Hugging Face folder the discriminator starts from (default: a copy of the student's initial weights)" },
  { "encoder", STSIM_PARAM_REFS, NULL, .choices = "encoder",
    .blurb = "the student encoder section whose initial weights seed the discriminator (default: the only encoder)" },
  { "masking_ratio", STSIM_PARAM_DOUBLE, "0.30", .min = 0, .max = 1,
    .blurb = "probability that a non-special token is masked (DiffCSE: 0.30 BERT, 0.20 RoBERTa)" },
  { "mask_prob", STSIM_PARAM_DOUBLE, "0.8", .min = 0, .max = 1, .flags = STSIM_PARAM_EXPERT,
    .blurb = "of the masked tokens: the share replaced by the mask token" },
  { "random_prob", STSIM_PARAM_DOUBLE, "0.1", .min = 0, .max = 1, .flags = STSIM_PARAM_EXPERT,
    .blurb = "of the masked tokens: the share replaced by a uniform random id (the rest stay unchanged)" },
  { "sampling", STSIM_PARAM_ENUM, "argmax", .choices = "argmax|sample",
    .blurb = "generator output: argmax at every position (published code) or a sample from softmax(logits/T)" },
  { "temperature", STSIM_PARAM_DOUBLE, "1.0", .min = 1e-3, .max = 100,
    .blurb = "sampling temperature T (sampling = sample only)" },
  { "generator_dropout", STSIM_PARAM_BOOL, "true",
    .blurb = "run the generator with its dropout on, as the published code does (it is a train-mode submodule)" },
  { "condition", STSIM_PARAM_ENUM, "post", .choices = "post|pre",
    .blurb = "conditioning vector at the discriminator's position 0: z after the [train] head (post) or h before (pre)" },
  { "pads", STSIM_PARAM_ENUM, "include", .choices = "include|exclude",
    .blurb = "RTD loss over all 2B*L positions, pads as label 0 (published code) or over real tokens only" },
  { "reduction", STSIM_PARAM_ENUM, "mean", .choices = "mean|sum",
    .blurb = "mean over positions (published code; lambda is tuned for it) or sum (the paper's formula)" },
  { "stream", STSIM_PARAM_INT, DIFF_DEFAULT_STREAM, .min = STSIM_RNG_STREAM_USER, .max = G_MAXUINT32,
    .flags = STSIM_PARAM_EXPERT, .blurb = "random stream of the masking and sampling (a pure function of seed and step)" },
  { "logit_rows", STSIM_PARAM_INT, "256", .min = 1, .max = 1 << 20, .flags = STSIM_PARAM_EXPERT,
    .blurb = "generator positions scored per chunk (bounds the [rows, V] logits buffer)" },
  { NULL }
};

typedef struct {
  /* parameters */
  char              *generator_dir;
  char              *discriminator_dir;
  StsimMaskingConfig mask;
  gboolean           sample;
  double             temperature;
  gboolean           generator_dropout;
  gboolean           condition_pre;
  gboolean           pads_exclude;
  gboolean           reduce_sum;
  guint32            stream;
  gint64             logit_rows;
  guint64            seed;

  /* networks */
  StsimModel        *generator;       /* frozen, with MLM head */
  StsimModel        *discriminator;   /* trainable, pooler rows 0..1 = electra head */
  StsimModel        *student;         /* borrowed: the encoder the discriminator was copied from */

  /* the generator's own tapes: forward, and logits chunks (reset per chunk) */
  StsimTape         *gen_tape, *logit_tape;
  guint64            gen_tape_seed;
} DiffPredict;

/* What one step produced; kept in the step's scratch data (tests read it). */
typedef struct {
  gsize           n, width;
  gint32         *masked_ids;   /* generator input [n·width] */
  gint32         *mlm_labels;   /* original id where masked, else -100 */
  gint32         *gen_ids;      /* generator output, column 0 = CLS */
  gint32         *labels;       /* RTD labels (1 = replaced), 0 at pads */
  StsimTokenBatch disc;         /* discriminator input: ĝ·m, the step's mask and lengths */
  gint32         *row_labels;   /* labels per discriminator row */
  gsize           n_masked;
} DiffStep;

static void
diff_step_free (gpointer p)
{
  DiffStep *s = p;
  g_free (s->masked_ids);
  g_free (s->mlm_labels);
  g_free (s->gen_ids);
  g_free (s->labels);
  g_free (s->disc.ids);
  g_free (s->disc.mask);
  g_free (s->disc.lengths);
  g_free (s->row_labels);
  g_free (s);
}

/* ---- pieces ------------------------------------------------------------------ */

/* method.md §4.2 steps 3-5: ĝ[:,0] = CLS; r = [ĝ ≠ x]·m; x_D = ĝ·m.
 * @gen_fixed may alias @gen. */
static void
diff_predict_labels (const gint32 *orig, const gint32 *gen, const gint32 *mask, gsize n, gsize width, gint32 cls_id,
                     gint32 *gen_fixed, gint32 *labels, gint32 *disc_ids)
{
  for (gsize r = 0; r < n; r++)
    for (gsize k = 0; k < width; k++) {
      gsize i = r * width + k;
      gint32 g = k == 0 ? cls_id : gen[i];
      gint32 m = mask[i] != 0;
      gen_fixed[i] = g;
      labels[i] = m && g != orig[i];
      disc_ids[i] = m ? g : 0;
    }
}

/* The electra head as views of the discriminator's pooler rows 0..1. */
static void
diff_predict_head (DiffPredict *d, StsimTape *tape, StsimTensor **w, StsimTensor **b)
{
  StsimParamStore *s = stsim_model_get_params (d->discriminator);
  StsimTensor *pw = stsim_param_store_lookup (s, DIFF_HEAD_WEIGHT)->tensor;
  StsimTensor *pb = stsim_param_store_lookup (s, DIFF_HEAD_BIAS)->tensor;
  gint64 H = stsim_tensor_cols (pw);
  *w = stsim_slice_rows (tape, pw, 0, 2);
  StsimTensor *col = stsim_reshape (tape, pb, 2, (gint64[]) { H, 1 });
  *b = stsim_reshape (tape, stsim_slice_rows (tape, col, 0, 2), 1, (gint64[]) { 2 });
}

/* PyTorch's default Linear init for the electra head (method.md §1.5):
 * weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)). */
static void
diff_predict_init_head (DiffPredict *d)
{
  StsimParamStore *s = stsim_model_get_params (d->discriminator);
  StsimTensor *pw = stsim_param_store_lookup (s, DIFF_HEAD_WEIGHT)->tensor;
  StsimTensor *pb = stsim_param_store_lookup (s, DIFF_HEAD_BIAS)->tensor;
  gint64 H = stsim_tensor_cols (pw);
  float bound = (float) (1.0 / sqrt ((double) H));
  StsimRng rng;
  stsim_rng_init (&rng, d->seed, STSIM_RNG_STREAM_INIT);
  stsim_rng_seek (&rng, G_GUINT64_CONSTANT (0xD1FF) << 40);  /* away from other init draws */
  stsim_rng_fill_uniform (&rng, pw->data, 2 * H, -bound, bound);
  stsim_rng_fill_uniform (&rng, pb->data, 2, -bound, bound);
}

static gboolean
diff_predict_check_generator (DiffPredict *d, StsimModel *student, GError **error)
{
  const StsimModelConfig *gc = stsim_model_get_config (d->generator);
  StsimTokenizer *st = stsim_model_get_tokenizer (student);
  StsimTokenizer *gt = stsim_model_get_tokenizer (d->generator);
  const StsimModelConfig *dc = stsim_model_get_config (d->discriminator ? d->discriminator : student);
  if (st && gc->vocab_size < stsim_tokenizer_vocab_size (st)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                 "diff-predict: generator %s has %d vocabulary rows, fewer than the student's tokenizer (%d ids); "
                 "the generator must share the student's vocabulary (distilbert-base-uncased for BERT, "
                 "distilroberta-base for RoBERTa)", d->generator_dir, gc->vocab_size, stsim_tokenizer_vocab_size (st));
    return FALSE;
  }
  if (gc->vocab_size > dc->vocab_size) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                 "diff-predict: generator %s predicts %d ids but the discriminator embeds only %d; "
                 "use a generator with the student's vocabulary", d->generator_dir, gc->vocab_size, dc->vocab_size);
    return FALSE;
  }
  if (st && gt
      && (stsim_tokenizer_cls_id (st) != stsim_tokenizer_cls_id (gt)
          || stsim_tokenizer_mask_id (st) != stsim_tokenizer_mask_id (gt)
          || stsim_tokenizer_pad_id (st) != stsim_tokenizer_pad_id (gt)
          || stsim_tokenizer_get_kind (st) != stsim_tokenizer_get_kind (gt))) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                 "diff-predict: generator %s uses another tokenizer than the student (special ids or kind differ); "
                 "pick a generator with the student's vocabulary", d->generator_dir);
    return FALSE;
  }
  return TRUE;
}

static gboolean
diff_predict_make_discriminator (DiffPredict *d, StsimModel *student, GError **error)
{
  if (d->discriminator_dir) {
    d->discriminator = stsim_model_load (d->discriminator_dir, STSIM_MODEL_POOLER, d->seed, error);
    if (!d->discriminator) {
      g_prefix_error (error, "diff-predict: discriminator: ");
      return FALSE;
    }
  } else {
    d->discriminator = stsim_model_copy (student, STSIM_MODEL_POOLER, error);
    if (!d->discriminator) {
      g_prefix_error (error, "diff-predict: copying the student into the discriminator: ");
      return FALSE;
    }
  }
  d->student = student;
  diff_predict_init_head (d);
  return diff_predict_check_generator (d, student, error);
}

/* The encoder the discriminator starts from: the `encoder` reference, or
 * the only encoder created so far. NULL without error when there is no
 * context (a component driven by a test: the step's model is used). */
static StsimModel *
find_student (const StsimParams *params, StsimContext *ctx, GError **error)
{
  if (!ctx)
    return NULL;
  gsize n_refs = 0;
  const char *const *refs = stsim_params_get_refs (params, "encoder", &n_refs);
  StsimComponent *enc = NULL;
  if (refs && n_refs > 0) {
    enc = stsim_context_lookup (ctx, refs[0]);
    if (!enc || stsim_component_get_kind (enc) != STSIM_KIND_ENCODER) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "diff-predict: encoder = %s is not an enabled encoder",
                   refs[0]);
      return NULL;
    }
  } else {
    guint n = 0, count = 0;
    StsimComponent *const *all = stsim_context_get_components (ctx, &n);
    for (guint i = 0; i < n; i++)
      if (stsim_component_get_kind (all[i]) == STSIM_KIND_ENCODER) {
        enc = all[i];
        count++;
      }
    if (count != 1) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                   count == 0 ? "diff-predict: no encoder section precedes this objective; set encoder = <label> "
                                "(e.g. encoder = encoder) so that the discriminator can copy the student"
                              : "diff-predict: the recipe has several encoders; set encoder = <label> to name the "
                                "student whose weights seed the discriminator");
      return NULL;
    }
  }
  const StsimComponentDesc *desc = stsim_component_get_desc (enc);
  const StsimEncoderVTable *vt = desc->vtable;
  StsimModel *m = NULL;
  if (desc->vtable_size >= offsetof (StsimEncoderVTable, model) + sizeof (gpointer) && vt->model)
    m = vt->model (stsim_component_get_state (enc));
  if (!m)
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                 "diff-predict: encoder '%s' (%s) has no trainable network to copy into the discriminator; "
                 "use a bert or roberta encoder, or set discriminator = <folder>",
                 stsim_component_get_label (enc), desc->name);
  return m;
}

/* ---- create / destroy ------------------------------------------------------- */

static void
diff_destroy (gpointer state)
{
  DiffPredict *d = state;
  if (!d)
    return;
  g_free (d->generator_dir);
  g_free (d->discriminator_dir);
  g_clear_pointer (&d->generator, stsim_model_free);
  g_clear_pointer (&d->discriminator, stsim_model_free);
  g_clear_pointer (&d->gen_tape, stsim_tape_free);
  g_clear_pointer (&d->logit_tape, stsim_tape_free);
  g_free (d);
}

static gpointer
diff_create (const StsimParams *params, StsimContext *ctx, GError **error)
{
  DiffPredict *d = g_new0 (DiffPredict, 1);
  d->generator_dir = g_strdup (stsim_params_get_string (params, "generator"));
  d->discriminator_dir = g_strdup (stsim_params_get_string (params, "discriminator"));
  d->mask.ratio = stsim_params_get_double (params, "masking_ratio");
  d->mask.mask_prob = stsim_params_get_double (params, "mask_prob");
  d->mask.random_prob = stsim_params_get_double (params, "random_prob");
  d->sample = strcmp (stsim_params_get_string (params, "sampling"), "sample") == 0;
  d->temperature = stsim_params_get_double (params, "temperature");
  d->generator_dropout = stsim_params_get_bool (params, "generator_dropout");
  d->condition_pre = strcmp (stsim_params_get_string (params, "condition"), "pre") == 0;
  d->pads_exclude = strcmp (stsim_params_get_string (params, "pads"), "exclude") == 0;
  d->reduce_sum = strcmp (stsim_params_get_string (params, "reduction"), "sum") == 0;
  d->stream = (guint32) stsim_params_get_int (params, "stream");
  d->logit_rows = stsim_params_get_int (params, "logit_rows");
  d->seed = ctx ? stsim_context_get_seed (ctx) : 42;
  d->gen_tape_seed = G_MAXUINT64;

  if (d->mask.mask_prob + d->mask.random_prob > 1.0 + 1e-12) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                 "diff-predict: mask_prob (%g) + random_prob (%g) exceed 1: they split the masked tokens",
                 d->mask.mask_prob, d->mask.random_prob);
    diff_destroy (d);
    return NULL;
  }
  d->generator = stsim_model_load (d->generator_dir, STSIM_MODEL_FROZEN | STSIM_MODEL_MLM_HEAD, d->seed, error);
  if (!d->generator) {
    g_prefix_error (error, "diff-predict: generator: ");
    diff_destroy (d);
    return NULL;
  }
  if (stsim_model_get_initialized (d->generator) & STSIM_MODEL_MLM_HEAD) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                 "diff-predict: generator %s has no masked-LM head (cls.predictions.*, lm_head.* or vocab_*); "
                 "save it as a ...ForMaskedLM model", d->generator_dir);
    diff_destroy (d);
    return NULL;
  }
  GError *local = NULL;
  StsimModel *student = find_student (params, ctx, &local);
  if (local) {
    g_propagate_error (error, local);
    diff_destroy (d);
    return NULL;
  }
  if (student && !diff_predict_make_discriminator (d, student, error)) {
    diff_destroy (d);
    return NULL;
  }
  return d;
}

/* ---- the step --------------------------------------------------------------- */

/* Masks the step's rows into @s (method.md §4.2 step 2). */
static void
diff_predict_mask (DiffPredict *d, StsimTokenizer *tok, StsimRng *rng, const StsimTokenBatch *src, DiffStep *s)
{
  s->masked_ids = g_new (gint32, src->n * src->width);
  s->mlm_labels = g_new (gint32, src->n * src->width);
  s->n_masked = stsim_mask_tokens (tok, &d->mask, rng, src->ids, src->lengths, src->n, src->width, s->masked_ids,
                                   s->mlm_labels);
}

/* Generator ids at every real position k >= 1 of @s->masked_ids into
 * @s->gen_ids (method.md §4.2 step 3). Position 0 and pads are not scored:
 * step 4 overwrites position 0 with CLS and zeroes pads, so their logits
 * could never matter, and the result is identical to argmax everywhere. */
static gboolean
diff_predict_generate (DiffPredict *d, const StsimTokenBatch *src, guint64 seed, guint64 step_index, StsimRng *rng,
                       DiffStep *s, GError **error)
{
  const gsize n = src->n, W = src->width;
  guint64 tseed = seed ^ G_GUINT64_CONSTANT (0x6E6E7261746F72);  /* generator dropout independent of the student's */
  if (!d->gen_tape || d->gen_tape_seed != tseed) {
    g_clear_pointer (&d->gen_tape, stsim_tape_free);
    d->gen_tape = stsim_tape_new (tseed, 0);
    d->gen_tape_seed = tseed;
  }
  if (!d->logit_tape)
    d->logit_tape = stsim_tape_new (tseed, 0);
  StsimTape *gt = d->gen_tape;
  stsim_tape_reset (gt);
  stsim_tape_set_grad_enabled (gt, FALSE);
  stsim_tape_set_training (gt, d->generator_dropout);
  stsim_tape_set_step (gt, step_index);

  StsimTokenBatch in = { .n = n, .width = W, .ids = s->masked_ids, .mask = src->mask, .lengths = src->lengths };
  StsimForwardOptions fo = { .packed = TRUE };
  StsimModelOutput out;
  if (!stsim_model_forward (d->generator, gt, &in, &fo, &out, error)) {
    g_prefix_error (error, "diff-predict: generator forward: ");
    return FALSE;
  }
  s->gen_ids = g_new0 (gint32, n * W);
  gint64 n_pos = 0;
  for (gsize r = 0; r < n; r++)
    n_pos += MAX (src->lengths[r] - 1, 0);
  g_autofree gint32 *rows = g_new (gint32, MAX (n_pos, 1));
  g_autofree gint32 *where = g_new (gint32, MAX (n_pos, 1));
  gint64 k = 0;
  for (gsize r = 0; r < n; r++)
    for (gint32 c = 1; c < src->lengths[r]; c++) {
      rows[k] = out.seqs[r].offset + c;
      where[k] = (gint32) (r * W + c);
      k++;
    }
  StsimTensor *last = out.hidden[out.n_layers];
  const gint64 V = stsim_model_get_config (d->generator)->vocab_size;
  const float inv_t = (float) (1.0 / d->temperature);
  g_autofree double *p = d->sample ? g_new (double, V) : NULL;
  for (gint64 start = 0; start < n_pos; start += d->logit_rows) {
    gint64 m = MIN (d->logit_rows, n_pos - start);
    stsim_tape_reset (d->logit_tape);
    stsim_tape_set_grad_enabled (d->logit_tape, FALSE);
    StsimTensor *h = stsim_gather_rows (d->logit_tape, last, rows + start, m);
    StsimTensor *logits = stsim_model_mlm_logits (d->generator, d->logit_tape, h);
    if (!logits) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "diff-predict: generator logits failed");
      return FALSE;
    }
    for (gint64 i = 0; i < m; i++) {
      const float *row = logits->data + i * V;
      gint64 best = 0;
      for (gint64 j = 1; j < V; j++)
        if (row[j] > row[best])  /* first maximum wins, as torch.argmax */
          best = j;
      if (d->sample) {
        /* Inverse CDF of softmax(logits/T), shifted by the maximum. */
        double z = 0;
        for (gint64 j = 0; j < V; j++)
          z += p[j] = exp ((double) (row[j] - row[best]) * inv_t);
        double u = stsim_rng_uniform_double (rng) * z, acc = 0;
        gint64 pick = V - 1;
        for (gint64 j = 0; j < V; j++) {
          acc += p[j];
          if (u < acc) {
            pick = j;
            break;
          }
        }
        best = pick;
      }
      s->gen_ids[where[start + i]] = (gint32) best;
    }
  }
  stsim_tape_reset (d->logit_tape);
  stsim_tape_reset (gt);
  return TRUE;
}

/* Step 7: the two-class CE over the rows of @logits [n_rows, 2], laid out by
 * @seqs (padded: every position, pads as label 0; packed: real tokens only),
 * against @labels [n·width]. Mean over the rows, or their sum. @row_labels
 * (n_rows ints) receives the label of each row. */
static StsimTensor *
diff_predict_position_loss (DiffPredict *d, StsimTape *tape, StsimTensor *logits, const StsimSeq *seqs, gsize n,
                            gsize width, const gint32 *labels, gint32 *row_labels)
{
  gint64 n_rows = stsim_tensor_rows (logits);
  for (gsize r = 0; r < n; r++)
    for (gint32 c = 0; c < seqs[r].rows; c++)
      row_labels[seqs[r].offset + c] = labels[r * width + c];
  StsimTensor *loss = stsim_cross_entropy_2class (tape, logits, row_labels, NULL);
  if (loss && d->reduce_sum)
    loss = stsim_scale (tape, loss, (float) n_rows);
  return loss;
}

/* The discriminator's RTD loss for labels and ids in @s, conditioned on
 * @cond [n, H] (method.md §4.2 steps 5-7). *accuracy gets the share of real
 * positions the head classifies correctly. */
static StsimTensor *
diff_predict_rtd (DiffPredict *d, StsimTape *tape, DiffStep *s, StsimTensor *cond, double *accuracy, GError **error)
{
  const gint64 H = stsim_model_get_config (d->discriminator)->hidden_size;
  if (stsim_tensor_rows (cond) != (gint64) s->disc.n || stsim_tensor_cols (cond) != H) {
    char buf[64];
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                 "diff-predict: the conditioning vectors are %s but the discriminator needs [%" G_GSIZE_FORMAT
                 ", %" G_GINT64_FORMAT "] (a discriminator of another size, or a head that changes the width?)",
                 stsim_tensor_shape_string (cond, buf, sizeof buf), s->disc.n, H);
    return NULL;
  }
  /* Padded layout when pads count: their hidden states are part of the loss. */
  StsimForwardOptions fo = { .packed = d->pads_exclude, .row0 = cond };
  StsimModelOutput out;
  if (!stsim_model_forward (d->discriminator, tape, &s->disc, &fo, &out, error)) {
    g_prefix_error (error, "diff-predict: discriminator forward: ");
    return NULL;
  }
  StsimTensor *w, *b;
  diff_predict_head (d, tape, &w, &b);
  StsimTensor *logits = stsim_linear (tape, out.hidden[out.n_layers], w, b);
  s->row_labels = g_new (gint32, MAX (out.n_rows, 1));
  StsimTensor *loss = diff_predict_position_loss (d, tape, logits, out.seqs, s->disc.n, s->disc.width, s->labels,
                                                  s->row_labels);
  if (!loss) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "diff-predict: building the RTD loss failed");
    return NULL;
  }
  gint64 hits = 0, real = 0;
  for (gsize r = 0; r < s->disc.n; r++)
    for (gint32 c = 0; c < s->disc.lengths[r]; c++) {
      const float *l = logits->data + (gint64) (out.seqs[r].offset + c) * 2;
      hits += (l[1] > l[0]) == (s->labels[r * s->disc.width + c] != 0);
      real++;
    }
  *accuracy = real ? (double) hits / real : 0;
  return loss;
}

/* Steps 3-7 from given masked ids (@s->masked_ids set): generator, labels,
 * discriminator. The tests drive this with fixed masks. */
static StsimTensor *
diff_predict_from_masked (DiffPredict *d, StsimTrainStep *step, StsimRng *rng, DiffStep *s, GError **error)
{
  StsimTape *tape = stsim_train_step_get_tape (step);
  StsimTokenizer *tok = stsim_train_step_get_tokenizer (step);
  const StsimTokenBatch *src = stsim_train_step_get_batch (step);
  const gsize n = src->n, W = src->width;

  if (!diff_predict_generate (d, src, stsim_train_step_get_seed (step), stsim_train_step_get_step (step), rng, s,
                              error))
    return NULL;
  s->labels = g_new (gint32, n * W);
  s->disc.n = n;
  s->disc.width = W;
  s->disc.ids = g_new (gint32, n * W);
  s->disc.mask = g_memdup2 (src->mask, n * W * sizeof (gint32));
  s->disc.lengths = g_memdup2 (src->lengths, n * sizeof (gint32));
  diff_predict_labels (src->ids, s->gen_ids, src->mask, n, W, stsim_tokenizer_cls_id (tok), s->gen_ids, s->labels,
                       s->disc.ids);

  StsimTensor *cond = d->condition_pre ? stsim_train_step_get_pooled (step, error)
                                       : stsim_train_step_get_projected (step, error);
  if (!cond)
    return NULL;
  double acc = 0;
  StsimTensor *loss = diff_predict_rtd (d, tape, s, cond, &acc, error);
  if (!loss)
    return NULL;

  gint64 real = 0, replaced = 0, maskable = 0;
  for (gsize r = 0; r < n; r++)
    for (gint32 c = 0; c < src->lengths[r]; c++) {
      real++;
      replaced += s->labels[r * W + c];
      maskable += !stsim_tokenizer_is_special (tok, src->ids[r * W + c]);
    }
  stsim_train_step_log (step, "replaced", real ? (double) replaced / real : 0);
  stsim_train_step_log (step, "masked", maskable ? (double) s->n_masked / maskable : 0);
  stsim_train_step_log (step, "accuracy", acc);
  return loss;
}

static DiffStep *
diff_step_attach (StsimTrainStep *step)
{
  DiffStep *s = g_new0 (DiffStep, 1);
  const char *label = stsim_train_step_get_objective_label (step);
  g_autofree char *key = g_strdup_printf ("diff-predict.%s", label ? label : "");
  stsim_train_step_set_data (step, key, s, diff_step_free);
  return s;
}

static gboolean
diff_predict_prepare (DiffPredict *d, StsimTrainStep *step, GError **error)
{
  StsimModel *model = stsim_train_step_get_model (step);
  const StsimTokenBatch *src = stsim_train_step_get_batch (step);
  if (!model || !stsim_train_step_get_tokenizer (step) || !src || src->n == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "diff-predict: the step has no model or token batch");
    return FALSE;
  }
  /* Without a context (a test driving the component) the discriminator
   * copies the step's student on first use. */
  if (!d->discriminator && !diff_predict_make_discriminator (d, model, error))
    return FALSE;
  return TRUE;
}

static gboolean
diff_loss (gpointer state, StsimTrainStep *step, StsimTensor **loss, GError **error)
{
  DiffPredict *d = state;
  if (!diff_predict_prepare (d, step, error))
    return FALSE;
  StsimRng rng;
  stsim_train_step_init_rng (step, d->stream, &rng);
  DiffStep *s = diff_step_attach (step);
  const StsimTokenBatch *src = stsim_train_step_get_batch (step);
  s->n = src->n;
  s->width = src->width;
  diff_predict_mask (d, stsim_train_step_get_tokenizer (step), &rng, src, s);
  *loss = diff_predict_from_masked (d, step, &rng, s, error);
  return *loss != NULL;
}

static StsimParamStore *
diff_params_store (gpointer state)
{
  DiffPredict *d = state;
  return d->discriminator ? stsim_model_get_params (d->discriminator) : NULL;
}

static const StsimObjectiveVTable diff_vtable = { .loss = diff_loss, .params = diff_params_store };

static const StsimComponentDesc diff_desc = {
  .kind = STSIM_KIND_OBJECTIVE, .name = "diff-predict",
  .summary = "DiffCSE difference prediction: frozen MLM generator edits masked rows, a discriminator conditioned on "
             "the sentence vector detects replaced tokens",
  .params = diff_params, .create = diff_create, .destroy = diff_destroy, STSIM_VTABLE (diff_vtable),
};

STSIM_PLUGIN_DEFINE ("diff-predict", "0.1.0", "MIT", "DiffCSE replaced-token detection objective",
                     "@inproceedings{chuang2022diffcse,\n"
                     "  title = {{DiffCSE}: Difference-based Contrastive Learning for Sentence Embeddings},\n"
                     "  author = {Chuang, Yung-Sung and Dangovski, Rumen and Luo, Hongyin and Zhang, Yang and "
                     "Chang, Shiyu and Soljacic, Marin and Li, Shang-Wen and Yih, Wen-tau and Kim, Yoon and "
                     "Glass, James},\n  booktitle = {NAACL},\n  year = {2022}\n}\n",
                     &diff_desc)
