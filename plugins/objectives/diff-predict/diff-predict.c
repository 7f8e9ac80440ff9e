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
 * Trainable state: two stores, returned by the params op: the discriminator
 * (a BERT/RoBERTa without pooler) and the electra head Linear(H, 2) in its
 * own small store (electra_head.weight [2, H], electra_head.bias [2]).
 *
 * Data-parallel runs (docs/distributed.md): every rank masks the GLOBAL
 * batch (the single-process draws), then runs generator and discriminator on
 * its own rows only, skipping the sampling draws of the other ranks' rows,
 * conditions on its rows of the gathered vectors, and divides the RTD sum by
 * the GLOBAL number of positions, so the ranks' losses add up to the
 * single-process loss (stsim_train_step_set_loss_local). */
#include <math.h>
#include <string.h>

#include <stsim/stsim.h>
#include <stsim/stsim-model.h>

#define DIFF_DEFAULT_STREAM "25"          /* STSIM_RNG_STREAM_USER + 9 (issue 9): masks independent of mlm's */
#define DIFF_HEAD_STORE  "electra_head"
#define DIFF_HEAD_WEIGHT "electra_head.weight"
#define DIFF_HEAD_BIAS   "electra_head.bias"

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
  StsimModel        *discriminator;   /* trainable, no pooler */
  StsimParamStore   *head_store;      /* trainable: the electra head */
  StsimTensor       *head_w, *head_b; /* [2, H], [2] in head_store */
  StsimParamStore   *stores[2];       /* what params() returns: discriminator, head */
  StsimModel        *student;         /* borrowed: the encoder the discriminator was copied from */

  /* the generator's own tapes: forward, and logits chunks (reset per chunk) */
  StsimTape         *gen_tape, *logit_tape;
  guint64            gen_tape_seed;
} DiffPredict;

/* What one step produced; kept in the step's scratch data (tests read it).
 * With several ranks the arrays from gen_ids on cover this rank's rows only
 * (local, in global row order), masked_ids and mlm_labels the global batch. */
typedef struct {
  gsize           n, width;
  gint32         *masked_ids;   /* generator input [n·width] */
  gint32         *mlm_labels;   /* original id where masked, else -100 */
  gint32         *gen_ids;      /* generator output, column 0 = CLS */
  gint32         *labels;       /* RTD labels (1 = replaced), 0 at pads */
  StsimTokenBatch disc;         /* discriminator input: ĝ·m, the step's mask and lengths */
  gint32         *row_labels;   /* labels per discriminator row */
  gsize           n_masked;
  StsimTokenBatch local;        /* several ranks: this rank's rows of the batch ... */
  gint32         *local_masked; /* ... and of masked_ids */
  const StsimTokenBatch *whole; /* several ranks: the step's whole batch, of which local's row i is */
  gsize          *whole_rows;   /* row whole_rows[i] (keys the dropout of both forwards) */
} DiffStep;

/* Counts of one step's rows, summed over the ranks for the logs. */
typedef struct {
  double replaced, real, hits;
} DiffCounts;

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
  g_free (s->local.ids);
  g_free (s->local.mask);
  g_free (s->local.lengths);
  g_free (s->local_masked);
  g_free (s->whole_rows);
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

/* The electra head Linear(H, 2) in its own store, HF-style names, with
 * PyTorch's default Linear init (method.md §1.5): weight and bias
 * ~ U(-1/sqrt(H), 1/sqrt(H)); decay on the weight only (HF's no-decay group
 * is biases and LayerNorm weights). */
static gboolean
diff_predict_make_head (DiffPredict *d, GError **error)
{
  const gint64 H = stsim_model_get_config (d->discriminator)->hidden_size;
  d->head_store = stsim_param_store_new (DIFF_HEAD_STORE, TRUE);
  d->head_w = stsim_param_store_add (d->head_store, DIFF_HEAD_WEIGHT, 2, (gint64[]) { 2, H }, 0);
  d->head_b = stsim_param_store_add (d->head_store, DIFF_HEAD_BIAS, 1, (gint64[]) { 2 }, STSIM_VIEW_NO_DECAY);
  if (!d->head_w || !d->head_b || !stsim_param_store_finish (d->head_store, error)) {
    if (error && !*error)
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "diff-predict: declaring the electra head failed");
    g_prefix_error (error, "diff-predict: ");
    return FALSE;
  }
  float bound = (float) (1.0 / sqrt ((double) H));
  StsimRng rng;
  stsim_rng_init (&rng, d->seed, STSIM_RNG_STREAM_INIT);
  stsim_rng_seek (&rng, G_GUINT64_CONSTANT (0xD1FF) << 40);  /* away from other init draws */
  stsim_rng_fill_uniform (&rng, d->head_w->data, 2 * H, -bound, bound);
  stsim_rng_fill_uniform (&rng, d->head_b->data, 2, -bound, bound);
  d->stores[0] = stsim_model_get_params (d->discriminator);
  d->stores[1] = d->head_store;
  return TRUE;
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
  /* No pooler: the discriminator's output is its last hidden states. */
  if (d->discriminator_dir) {
    d->discriminator = stsim_model_load (d->discriminator_dir, 0, d->seed, error);
    if (!d->discriminator) {
      g_prefix_error (error, "diff-predict: discriminator: ");
      return FALSE;
    }
  } else {
    d->discriminator = stsim_model_copy (student, 0, error);
    if (!d->discriminator) {
      g_prefix_error (error, "diff-predict: copying the student into the discriminator: ");
      return FALSE;
    }
  }
  d->student = student;
  return diff_predict_make_head (d, error) && diff_predict_check_generator (d, student, error);
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
  const char *label = refs && n_refs > 0 ? refs[0] : NULL;
  StsimComponent *enc = stsim_context_find (ctx, STSIM_KIND_ENCODER, label, error);
  if (!enc) {
    if (label)
      g_prefix_error (error, "diff-predict: encoder = %s: ", label);
    else
      g_prefix_error (error, "diff-predict: set encoder = <label> (e.g. encoder = encoder) to name the student "
                             "whose weights seed the discriminator: ");
    return NULL;
  }
  StsimModel *m = stsim_encoder_model (enc, NULL);
  if (!m)
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                 "diff-predict: encoder '%s' (%s) has no trainable network to copy into the discriminator; "
                 "use a bert or roberta encoder, or set discriminator = <folder>",
                 stsim_component_get_label (enc), stsim_component_get_desc (enc)->name);
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
  g_clear_pointer (&d->head_store, stsim_param_store_free);
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

/* Words of the generator one stsim_rng_uniform_double takes (a u64). */
#define DIFF_WORDS_PER_DRAW 2

/* The generator's tape for step @step_index, reset, in eval or dropout mode
 * as configured, and the tape its logits are computed on. */
static StsimTape *
diff_predict_generator_tape (DiffPredict *d, guint64 seed, guint64 step_index)
{
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
  return gt;
}

/* The scored positions k >= 1 of every row: their packed hidden row in
 * *@rows_out and their place r·W + k in *@where_out; their number. */
static gint64
diff_predict_scored_positions (const StsimTokenBatch *src, const StsimModelOutput *out, gint32 **rows_out,
                               gint32 **where_out)
{
  const gsize n = src->n, W = src->width;
  gint64 n_pos = 0;
  for (gsize r = 0; r < n; r++)
    n_pos += MAX (src->lengths[r] - 1, 0);
  gint32 *rows = g_new (gint32, MAX (n_pos, 1));
  gint32 *where = g_new (gint32, MAX (n_pos, 1));
  gint64 k = 0;
  for (gsize r = 0; r < n; r++)
    for (gint32 c = 1; c < src->lengths[r]; c++) {
      rows[k] = out->seqs[r].offset + c;
      where[k] = (gint32) (r * W + c);
      k++;
    }
  *rows_out = rows;
  *where_out = where;
  return n_pos;
}

/* The generator's id for one position from its logits @row [V]: the argmax
 * or, when sampling, one draw of @rng from softmax(row/T) (@p: V doubles of scratch). */
static gint64
diff_predict_pick (DiffPredict *d, const float *row, gint64 V, float inv_t, double *p, StsimRng *rng)
{
  gint64 best = 0;
  for (gint64 j = 1; j < V; j++)
    if (row[j] > row[best])  /* first maximum wins, as torch.argmax */
      best = j;
  if (!d->sample)
    return best;
  /* Inverse CDF of softmax(logits/T), shifted by the maximum. */
  double z = 0;
  for (gint64 j = 0; j < V; j++)
    z += p[j] = exp ((double) (row[j] - row[best]) * inv_t);
  double u = stsim_rng_uniform_double (rng) * z, acc = 0;
  for (gint64 j = 0; j < V; j++) {
    acc += p[j];
    if (u < acc)
      return j;
  }
  return V - 1;
}

/* Generator ids at every real position k >= 1 of @masked (the masked ids
 * of @src's rows) into @s->gen_ids (method.md §4.2 step 3). Position 0 and
 * pads are not scored: step 4 overwrites position 0 with CLS and zeroes
 * pads, so their logits could never matter, and the result is identical to
 * argmax everywhere.
 *
 * Sampling draws one uniform per scored position, row after row. With
 * @draw_at NULL the rows are the whole batch and the draws follow in order;
 * otherwise draw_at[r] is the index of row r's first scored position among
 * the WHOLE batch's, and each draw is taken at its place in that sequence,
 * so a subset of the rows (one rank's) gets exactly the draws that one
 * process gives them. */
static gboolean
diff_predict_generate_rows (DiffPredict *d, const StsimTokenBatch *src, const gint32 *masked, const gsize *draw_at,
                            guint64 seed, guint64 step_index, StsimRng *rng, DiffStep *s, GError **error)
{
  const gsize n = src->n, W = src->width;
  const guint64 base = stsim_rng_tell (rng);
  StsimTape *gt = diff_predict_generator_tape (d, seed, step_index);
  StsimTokenBatch in = { .n = n, .width = W, .ids = (gint32 *) masked, .mask = src->mask, .lengths = src->lengths };
  StsimForwardOptions fo = { .packed = TRUE, .whole = s->whole, .whole_rows = s->whole_rows };
  StsimModelOutput out;
  if (!stsim_model_forward (d->generator, gt, &in, &fo, &out, error)) {
    g_prefix_error (error, "diff-predict: generator forward: ");
    return FALSE;
  }
  s->gen_ids = g_new0 (gint32, n * W);
  g_autofree gint32 *rows = NULL, *where = NULL;
  gint64 n_pos = diff_predict_scored_positions (src, &out, &rows, &where);
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
      if (d->sample && draw_at) {
        gsize r = (gsize) where[start + i] / W, c = (gsize) where[start + i] % W;
        stsim_rng_seek (rng, base + DIFF_WORDS_PER_DRAW * (guint64) (draw_at[r] + c - 1));
      }
      s->gen_ids[where[start + i]] = (gint32) diff_predict_pick (d, logits->data + i * V, V, inv_t, p, rng);
    }
  }
  stsim_tape_reset (d->logit_tape);
  stsim_tape_reset (gt);
  return TRUE;
}

/* The whole batch @src, masked into @s->masked_ids. */
static gboolean
diff_predict_generate (DiffPredict *d, const StsimTokenBatch *src, guint64 seed, guint64 step_index, StsimRng *rng,
                       DiffStep *s, GError **error)
{
  return diff_predict_generate_rows (d, src, s->masked_ids, NULL, seed, step_index, rng, s, error);
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
 * @cond [n, H] (method.md §4.2 steps 5-7). Adds the real positions and those
 * the head classifies correctly to @counts; *n_positions gets the number of
 * positions the loss covers. */
static StsimTensor *
diff_predict_rtd (DiffPredict *d, StsimTape *tape, DiffStep *s, StsimTensor *cond, DiffCounts *counts,
                  gint64 *n_positions, GError **error)
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
  StsimForwardOptions fo = { .packed = d->pads_exclude, .row0 = cond, .whole = s->whole, .whole_rows = s->whole_rows };
  StsimModelOutput out;
  if (!stsim_model_forward (d->discriminator, tape, &s->disc, &fo, &out, error)) {
    g_prefix_error (error, "diff-predict: discriminator forward: ");
    return NULL;
  }
  StsimTensor *logits = stsim_linear (tape, out.hidden[out.n_layers], d->head_w, d->head_b);
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
  counts->hits += (double) hits;
  counts->real += (double) real;
  *n_positions = stsim_tensor_rows (logits);
  return loss;
}

/* Steps 4-7 for the rows of @src (the whole batch or this rank's rows) whose
 * generator ids are in @s->gen_ids: labels, the discriminator batch, and the
 * RTD loss conditioned on @cond (one row per row of @src). */
static StsimTensor *
diff_predict_discriminate (DiffPredict *d, StsimTape *tape, StsimTokenizer *tok, const StsimTokenBatch *src,
                           StsimTensor *cond, DiffStep *s, DiffCounts *counts, gint64 *n_positions, GError **error)
{
  const gsize n = src->n, W = src->width;
  s->labels = g_new (gint32, n * W);
  s->disc.n = n;
  s->disc.width = W;
  s->disc.ids = g_new (gint32, n * W);
  s->disc.mask = g_memdup2 (src->mask, n * W * sizeof (gint32));
  s->disc.lengths = g_memdup2 (src->lengths, n * sizeof (gint32));
  diff_predict_labels (src->ids, s->gen_ids, src->mask, n, W, stsim_tokenizer_cls_id (tok), s->gen_ids, s->labels,
                       s->disc.ids);
  StsimTensor *loss = diff_predict_rtd (d, tape, s, cond, counts, n_positions, error);
  if (!loss)
    return NULL;
  for (gsize r = 0; r < n; r++)
    for (gint32 c = 0; c < src->lengths[r]; c++)
      counts->replaced += s->labels[r * W + c];
  return loss;
}

/* The logged statistics: shares of the whole batch's real positions. */
static void
diff_predict_log (StsimTrainStep *step, StsimTokenizer *tok, const StsimTokenBatch *src, gsize n_masked,
                  const DiffCounts *c)
{
  gint64 maskable = 0;
  for (gsize r = 0; r < src->n; r++)
    for (gint32 k = 0; k < src->lengths[r]; k++)
      maskable += !stsim_tokenizer_is_special (tok, src->ids[r * src->width + k]);
  stsim_train_step_log (step, "replaced", c->real > 0 ? c->replaced / c->real : 0);
  stsim_train_step_log (step, "masked", maskable ? (double) n_masked / maskable : 0);
  stsim_train_step_log (step, "accuracy", c->real > 0 ? c->hits / c->real : 0);
}

/* Steps 3-7 from given masked ids (@s->masked_ids set) on the whole batch:
 * generator, labels, discriminator. The tests drive this with fixed masks. */
static StsimTensor *
diff_predict_from_masked (DiffPredict *d, StsimTrainStep *step, StsimRng *rng, DiffStep *s, GError **error)
{
  StsimTape *tape = stsim_train_step_get_tape (step);
  StsimTokenizer *tok = stsim_train_step_get_tokenizer (step);
  const StsimTokenBatch *src = stsim_train_step_get_batch (step);

  if (!diff_predict_generate (d, src, stsim_train_step_get_seed (step), stsim_train_step_get_step (step), rng, s,
                              error))
    return NULL;
  StsimTensor *cond = d->condition_pre ? stsim_train_step_get_pooled (step, error)
                                       : stsim_train_step_get_projected (step, error);
  if (!cond)
    return NULL;
  DiffCounts c = { 0 };
  gint64 n_pos = 0;
  StsimTensor *loss = diff_predict_discriminate (d, tape, tok, src, cond, s, &c, &n_pos, error);
  if (!loss)
    return NULL;
  diff_predict_log (step, tok, src, s->n_masked, &c);
  return loss;
}

/* Several ranks (docs/distributed.md): @s->masked_ids holds the GLOBAL batch
 * masked exactly as one process masks it; generator and discriminator run on
 * this rank's rows only, conditioned on this rank's rows of the gathered
 * vectors, and the RTD sum is divided by the GLOBAL number of positions, so
 * that the ranks' losses add up to the single-process loss and the gradient
 * of this rank's rows (and of the discriminator, summed over the ranks by the
 * trainer) is the single-process one. */
static gboolean
diff_loss_sharded (DiffPredict *d, StsimTrainStep *step, StsimRng *rng, DiffStep *s, StsimTensor **loss,
                   GError **error)
{
  StsimTape *tape = stsim_train_step_get_tape (step);
  StsimTokenizer *tok = stsim_train_step_get_tokenizer (step);
  const StsimTokenBatch *src = stsim_train_step_get_batch (step);
  const gsize W = src->width;
  gsize first = 0, n_sent = 0;
  stsim_train_step_get_shard (step, &first, &n_sent);
  const gsize n = n_sent * stsim_train_step_get_n_views (step);

  /* Where each global row's sampling draws start: the scored positions
   * (k >= 1 of every real token) of the rows before it. */
  g_autofree gsize *prefix = g_new (gsize, src->n + 1);
  prefix[0] = 0;
  for (gsize r = 0; r < src->n; r++)
    prefix[r + 1] = prefix[r] + (gsize) MAX (src->lengths[r] - 1, 0);

  /* This rank's rows (increasing global order), full global width so that
   * the padded layout covers the same positions as one process. */
  g_autofree gint32 *rows = g_new (gint32, MAX (n, 1));
  g_autofree gsize *draw_at = g_new (gsize, MAX (n, 1));
  StsimTokenBatch *lb = &s->local;
  lb->n = n;
  lb->width = W;
  lb->ids = g_new (gint32, MAX (n * W, 1));
  lb->mask = g_new (gint32, MAX (n * W, 1));
  lb->lengths = g_new (gint32, MAX (n, 1));
  s->local_masked = g_new (gint32, MAX (n * W, 1));
  /* Generator and discriminator draw one process's dropout for these rows. */
  s->whole = src;
  s->whole_rows = g_new (gsize, MAX (n, 1));
  for (gsize i = 0; i < n; i++) {
    gsize g = stsim_train_step_local_row (step, i);
    rows[i] = (gint32) g;
    s->whole_rows[i] = g;
    draw_at[i] = prefix[g];
    memcpy (lb->ids + i * W, src->ids + g * W, W * sizeof (gint32));
    memcpy (lb->mask + i * W, src->mask + g * W, W * sizeof (gint32));
    memcpy (s->local_masked + i * W, s->masked_ids + g * W, W * sizeof (gint32));
    lb->lengths[i] = src->lengths[g];
  }

  if (!diff_predict_generate_rows (d, lb, s->local_masked, draw_at, stsim_train_step_get_seed (step),
                                   stsim_train_step_get_step (step), rng, s, error))
    return FALSE;
  /* The gathered global vectors, then this rank's rows of them: those rows
   * are this rank's own (they carry the gradient back to its student). */
  StsimTensor *cond = d->condition_pre ? stsim_train_step_get_pooled (step, error)
                                       : stsim_train_step_get_projected (step, error);
  if (!cond)
    return FALSE;
  StsimTensor *cond_local = stsim_gather_rows (tape, cond, rows, (gint64) n);
  if (!cond_local) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "diff-predict: selecting this rank's conditioning rows failed");
    return FALSE;
  }
  DiffCounts c = { 0 };
  gint64 n_pos = 0;
  StsimTensor *l = diff_predict_discriminate (d, tape, tok, lb, cond_local, s, &c, &n_pos, error);
  if (!l)
    return FALSE;
  if (!d->reduce_sum) {
    /* The mean over this rank's positions, as its share of the global mean:
     * every position of every row (pads included), or the real tokens. */
    gint64 global = 0;
    if (d->pads_exclude)
      for (gsize r = 0; r < src->n; r++)
        global += src->lengths[r];
    else
      global = (gint64) (src->n * W);
    l = stsim_scale (tape, l, (float) ((double) n_pos / (double) global));
  }
  stsim_train_step_set_loss_local (step);
  /* The logs cover the whole batch: this rank's counts summed over the ranks
   * (a collective every rank reaches here, in the same order). */
  double sums[3] = { c.replaced, c.real, c.hits };
  if (!stsim_train_step_sum_over_ranks (step, sums, 3, error))
    return FALSE;
  DiffCounts global_counts = { sums[0], sums[1], sums[2] };
  diff_predict_log (step, tok, src, s->n_masked, &global_counts);
  *loss = l;
  return l != NULL;
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
  /* Every rank masks the whole batch: the same draws as one process. */
  diff_predict_mask (d, stsim_train_step_get_tokenizer (step), &rng, src, s);
  if (stsim_train_step_get_n_ranks (step) > 1)
    return diff_loss_sharded (d, step, &rng, s, loss, error);
  *loss = diff_predict_from_masked (d, step, &rng, s, error);
  return *loss != NULL;
}

/* The discriminator and the electra head, once the discriminator exists. */
static StsimParamStore *const *
diff_params_stores (gpointer state, gsize *n_stores)
{
  DiffPredict *d = state;
  g_return_val_if_fail (d != NULL && n_stores != NULL, NULL);
  *n_stores = d->discriminator ? G_N_ELEMENTS (d->stores) : 0;
  return d->discriminator ? d->stores : NULL;
}

static const StsimObjectiveVTable diff_vtable = { .loss = diff_loss, .params = diff_params_stores };

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
