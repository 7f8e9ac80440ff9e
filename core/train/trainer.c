/* trainer.c: the training loop of libstsim (stsim-train.h, docs/training.md).
 *
 * One step, exactly as method.md §3 describes SimCSE's (with the head and
 * objectives the recipe picks):
 *   B examples of the epoch's seeded permutation -> V·B rows, view-major ->
 *   tokens (max_len) -> [lazily] student forward in train mode, pool h,
 *   head z -> Σ w_i·loss_i -> backward -> skip if NaN/Inf -> clip -> AdamW at
 *   the linear schedule's lr -> zero grads -> tape reset.
 * Every eval_every steps the evaluator scores DEV; a strictly better score
 * writes best/ atomically (save_best). Every save_every steps (and at the
 * end, keep_state = last) the resume state is written. At the end best/ is
 * reloaded and tested (save_best = false: the final parameters are). */
#include "train/trainer-private.h"
#include "train/dist.h"
#include "train/curves.h"
#include "stsim/stsim-eval.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include "io/bounded.h"

/* ---- the [train] section ------------------------------------------------------ */

static const StsimParamSpec train_specs[] = {
  { "corpus", STSIM_PARAM_PATH, "${data}/corpus/*.txt",
    .blurb = "sentences, one per line: a file, a folder of .txt files, a pattern (dir/*.txt), or a comma-separated list" },
  { "pairs", STSIM_PARAM_PATH, NULL,
    .blurb = "supervised SimCSE: a CSV with header columns sent0,sent1,hard_neg (used instead of corpus)" },
  { "steps", STSIM_PARAM_INT, "0", .min = 0, .max = 1e12,
    .blurb = "optimizer steps; 0 = epochs x ceil(examples / batch_size)" },
  { "epochs", STSIM_PARAM_INT, "1", .min = 1, .max = 100000, .blurb = "passes over the corpus when steps = 0" },
  { "batch_size", STSIM_PARAM_INT, "64", .min = 2, .max = 1048576,
    .blurb = "sentences per step B (each gives 2 rows: two dropout views)" },
  { "lr", STSIM_PARAM_DOUBLE, "3e-5", .min = 0, .max = 10, .blurb = "peak learning rate of AdamW" },
  { "warmup", STSIM_PARAM_INT, "0", .min = 0, .max = 1e12,
    .blurb = "linear warmup steps before the linear decay to 0 (SimCSE: 0)" },
  { "weight_decay", STSIM_PARAM_DOUBLE, "0", .min = 0, .max = 10,
    .blurb = "AdamW decoupled weight decay (not on biases and LayerNorm weights)" },
  { "adam_beta1", STSIM_PARAM_DOUBLE, "0.9", .min = 0, .max = 0.999999, .flags = STSIM_PARAM_EXPERT,
    .blurb = "AdamW beta1" },
  { "adam_beta2", STSIM_PARAM_DOUBLE, "0.999", .min = 0, .max = 0.999999999, .flags = STSIM_PARAM_EXPERT,
    .blurb = "AdamW beta2" },
  { "adam_eps", STSIM_PARAM_DOUBLE, "1e-8", .min = 0, .max = 1, .flags = STSIM_PARAM_EXPERT,
    .blurb = "AdamW epsilon (added to the uncorrected sqrt(v), as HF transformers.AdamW)" },
  { "max_grad_norm", STSIM_PARAM_DOUBLE, "1.0", .min = 0, .max = 1e9,
    .blurb = "clip the global gradient L2 norm to this (0 = no clipping)" },
  { "max_len", STSIM_PARAM_INT, "32", .min = 3, .max = 100000, .blurb = "tokens per sentence, specials included" },
  { "pooler", STSIM_PARAM_ENUM, NULL, .choices = "cls|avg|avg_first_last|avg_top2", .flags = STSIM_PARAM_DEPRECATED,
    .blurb = "training pools as the encoder's pooler says: remove this key (a value here must agree with it)" },
  { "head", STSIM_PARAM_ENUM, "mlp", .choices = "mlp|bn|none",
    .blurb = "projection z = head(h): mlp = SimCSE's dense+tanh (the model's pooler), bn = DiffCSE's BN projector" },
  { "eval_every", STSIM_PARAM_INT, "125", .min = 0, .max = 1e12,
    .blurb = "evaluate DEV every N steps (not at step 0) and keep the best; 0 = only at the end" },
  { "save_every", STSIM_PARAM_INT, "250", .min = 0, .max = 1e12,
    .blurb = "write the resume state every N steps (0 = only at the end)" },
  { "keep_state", STSIM_PARAM_ENUM, "last", .choices = "last|none",
    .blurb = "resume state left in state/ when the run ends: last = the final one; none = nothing (deleted)" },
  { "save_best", STSIM_PARAM_BOOL, "true",
    .blurb = "write the best DEV checkpoint to best/ and test it; false = write no checkpoint, test the final model" },
  { "log_every", STSIM_PARAM_INT, "10", .min = 1, .max = 1e12,
    .blurb = "steps per metrics.jsonl line and progress update" },
  { "max_bad_steps", STSIM_PARAM_INT, "10", .min = 1, .max = 1e9,
    .blurb = "stop after this many non-finite (NaN/Inf) steps in a row" },
  { "encoder", STSIM_PARAM_STRING, NULL,
    .blurb = "label of the encoder section to train (default: the only encoder)" },
  { "evaluator", STSIM_PARAM_STRING, NULL,
    .blurb = "label of the evaluator section for DEV selection and the TEST table (default: the only evaluator)" },
  { "test", STSIM_PARAM_BOOL, "true", .blurb = "evaluate the selected model on TEST at the end" },
  { "packed", STSIM_PARAM_BOOL, "true", .flags = STSIM_PARAM_EXPERT,
    .blurb = "run the encoder on real tokens only (no compute on padding); same result as padded" },
  { "debug_nan_steps", STSIM_PARAM_STRING, NULL, .flags = STSIM_PARAM_EXPERT,
    .blurb = "testing only: comma-separated step numbers whose loss is replaced by NaN" },
  { NULL }
};

const StsimParamSpec *
stsim_train_get_param_specs (void)
{
  return train_specs;
}

void
stsim_train_register_section (void)
{
  static gsize done = 0;
  if (g_once_init_enter (&done)) {
    g_autoptr(GError) err = NULL;
    if (!stsim_recipe_register_core_section ("train", train_specs, &err))
      g_warning ("cannot register the [train] recipe section: %s", err->message);
    stsim_train_register_checks ();
    g_once_init_leave (&done, 1);
  }
}

/* libstsim registers [train] when it is loaded, so that every tool that
 * reads recipes (stsim-run, stsim-inspect --recipe) knows the section. */
__attribute__ ((constructor)) static void
train_section_ctor (void)
{
  stsim_train_register_section ();
}

gboolean
stsim_recipe_wants_training (const StsimRecipe *recipe)
{
  g_return_val_if_fail (recipe != NULL, FALSE);
  return stsim_recipe_count_kind (recipe, STSIM_KIND_OBJECTIVE) > 0;
}

/* ---- setup ---------------------------------------------------------------------- */

/* TRUE when a teacher section names @c in one of its references (an
 * encoder-teacher's `encoder = encoder.LABEL`): such an encoder is the
 * teacher's frozen scorer, never the student. */
static gboolean
wrapped_by_teacher (StsimTrainer *tr, StsimComponent *c)
{
  guint n = 0;
  StsimComponent *const *all = stsim_context_get_components (tr->ctx, &n);
  const char *label = stsim_component_get_label (c);
  for (guint i = 0; i < n; i++) {
    if (stsim_component_get_kind (all[i]) != STSIM_KIND_TEACHER)
      continue;
    const StsimParams *p = stsim_component_get_params (all[i]);
    for (const StsimParamSpec *s = stsim_params_get_specs (p); s && s->name; s++) {
      const char *const *refs = s->type == STSIM_PARAM_REFS ? stsim_params_get_refs (p, s->name, NULL) : NULL;
      for (guint j = 0; refs && refs[j]; j++)
        if (strcmp (refs[j], label) == 0)
          return TRUE;
    }
  }
  return FALSE;
}

static StsimComponent *
find_component (StsimTrainer *tr, StsimKind kind, const char *label, GError **error)
{
  guint n = 0;
  StsimComponent *const *all = stsim_context_get_components (tr->ctx, &n);
  StsimComponent *found = NULL;
  guint count = 0;
  if (label) {
    StsimComponent *c = stsim_context_lookup (tr->ctx, label);
    if (!c || stsim_component_get_kind (c) != kind) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "[train] %s = %s: no enabled %s section with that label",
                   stsim_kind_name (kind), label, stsim_kind_name (kind));
      return NULL;
    }
    return c;
  }
  /* Encoders that a teacher wraps are skipped, unless nothing else is left. */
  for (int skip_wrapped = kind == STSIM_KIND_ENCODER; skip_wrapped >= 0 && count == 0; skip_wrapped--)
    for (guint i = 0; i < n; i++)
      if (stsim_component_get_kind (all[i]) == kind && !(skip_wrapped && wrapped_by_teacher (tr, all[i]))) {
        if (!found)
          found = all[i];
        count++;
      }
  if (count == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "%s: training needs an [%s] section",
                 stsim_recipe_get_path (tr->recipe), stsim_kind_name (kind));
    return NULL;
  }
  if (count > 1) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                 "%s: %u %s sections; say which one to use with [train] %s = LABEL",
                 stsim_recipe_get_path (tr->recipe), count, stsim_kind_name (kind), stsim_kind_name (kind));
    return NULL;
  }
  return found;
}

static gboolean
vtable_has (const StsimComponentDesc *desc, gsize offset_end)
{
  return desc->vtable_size >= offset_end;
}

static gboolean
setup_head (StsimTrainer *tr, GError **error)
{
  const char *head = stsim_params_get_string (tr->p, "head");
  StsimParamStore *ms = stsim_model_get_params (tr->model);
  tr->H = stsim_model_get_config (tr->model)->hidden_size;
  if (strcmp (head, "mlp") == 0) {
    tr->head = HEAD_MLP;
    const StsimParamView *w = stsim_param_store_lookup (ms, "pooler.dense.weight");
    const StsimParamView *b = stsim_param_store_lookup (ms, "pooler.dense.bias");
    if (!w || !b) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                   "[train] head = mlp trains the model's pooler (SimCSE's MLP), but the encoder '%s' was built "
                   "without one; set mlp = true in its section (with mlp_init = random for SimCSE's fresh MLP) or use head = none",
                   stsim_component_get_label (tr->encoder));
      return FALSE;
    }
    tr->mlp_w = w->tensor;
    tr->mlp_b = b->tensor;
  } else if (strcmp (head, "bn") == 0) {
    /* DiffCSE's projector (method.md §4.1): Linear(H, 2H, no bias), BN(2H),
     * ReLU, Linear(2H, H, no bias), BN(H, affine=False); names as DiffCSE's
     * ProjectionMLP `net`. */
    tr->head = HEAD_BN;
    gint64 H = tr->H;
    gint64 s1[2] = { 2 * H, H }, s2[1] = { 2 * H }, s3[2] = { H, 2 * H };
    tr->head_store = stsim_param_store_new ("head", TRUE);
    tr->bn_w1 = stsim_param_store_add (tr->head_store, "mlp.net.0.weight", 2, s1, 0);
    tr->bn_g1 = stsim_param_store_add (tr->head_store, "mlp.net.1.weight", 1, s2, STSIM_VIEW_NO_DECAY);
    tr->bn_b1 = stsim_param_store_add (tr->head_store, "mlp.net.1.bias", 1, s2, STSIM_VIEW_NO_DECAY);
    tr->bn_w2 = stsim_param_store_add (tr->head_store, "mlp.net.3.weight", 2, s3, 0);
    if (!stsim_param_store_finish (tr->head_store, error))
      return FALSE;
    /* HF _init_weights for the linears (method.md §1.5), BN γ=1 β=0. */
    StsimRng rng;
    stsim_rng_init (&rng, tr->seed, STSIM_RNG_STREAM_INIT);
    stsim_rng_seek (&rng, G_GUINT64_CONSTANT (0x7EAD) << 40);
    stsim_rng_fill_normal (&rng, tr->bn_w1->data, tr->bn_w1->numel, 0.0f, 0.02f);
    stsim_rng_fill_normal (&rng, tr->bn_w2->data, tr->bn_w2->numel, 0.0f, 0.02f);
    for (gint64 i = 0; i < 2 * H; i++) {
      tr->bn_g1->data[i] = 1.0f;
      tr->bn_b1->data[i] = 0.0f;
    }
    tr->bn_rm1 = g_new0 (float, 2 * H);
    tr->bn_rv1 = g_new (float, 2 * H);
    tr->bn_rm2 = g_new0 (float, H);
    tr->bn_rv2 = g_new (float, H);
    for (gint64 i = 0; i < 2 * H; i++)
      tr->bn_rv1[i] = 1.0f;
    for (gint64 i = 0; i < H; i++)
      tr->bn_rv2[i] = 1.0f;
  } else
    tr->head = HEAD_NONE;
  return stsim_trainer_resolve_pooler (tr, error);
}

StsimTensor *
stsim_trainer_head_forward (StsimTrainer *tr, StsimTensor *h, GError **error)
{
  StsimTensor *z = NULL;
  switch (tr->head) {
  case HEAD_MLP:
    z = stsim_linear_act (tr->tape, h, tr->mlp_w, tr->mlp_b, STSIM_ACT_TANH);
    break;
  case HEAD_BN: {
    /* Statistics over the global batch: with several ranks each runs the
     * head on its own rows and the batch norms sum over the ranks (dist.c);
     * with one rank this is stsim_batch_norm. */
    StsimTensor *a = stsim_linear (tr->tape, h, tr->bn_w1, NULL);
    a = stsim_dist_batch_norm (tr->tape, a, tr->bn_g1, tr->bn_b1, tr->bn_rm1, tr->bn_rv1, 0.1f, 1e-5f);
    a = stsim_relu (tr->tape, a);
    a = stsim_linear (tr->tape, a, tr->bn_w2, NULL);
    z = stsim_dist_batch_norm (tr->tape, a, NULL, NULL, tr->bn_rm2, tr->bn_rv2, 0.1f, 1e-5f);
    break;
  }
  case HEAD_NONE:
    z = h;
    break;
  }
  if (!z)
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "train: the projection head failed");
  return z;
}

static char **
split_list (const char *s)
{
  g_auto (GStrv) parts = g_strsplit (s, ",", -1);
  GPtrArray *out = g_ptr_array_new ();
  for (gsize i = 0; parts[i]; i++) {
    char *t = g_strstrip (parts[i]);
    if (*t)
      g_ptr_array_add (out, g_strdup (t));
  }
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (out, FALSE);
}

static void
trainer_free (StsimTrainer *tr)
{
  if (!tr)
    return;
  if (tr->opts)
    g_ptr_array_unref (tr->opts);
  if (tr->stores)
    g_ptr_array_unref (tr->stores);
  if (tr->objectives)
    g_array_unref (tr->objectives);
  stsim_param_store_free (tr->head_store);
  g_free (tr->bn_rm1);
  g_free (tr->bn_rv1);
  g_free (tr->bn_rm2);
  g_free (tr->bn_rv2);
  if (tr->tape)
    stsim_tape_free (tr->tape);
  stsim_corpus_free (tr->corpus);
  g_free (tr->perm);
  if (tr->nan_steps)
    g_hash_table_unref (tr->nan_steps);
  g_free (tr->out_dir);
  g_free (tr->state_dir);
  g_free (tr->best_dir);
  g_free (tr->metrics_path);
  g_free (tr);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimTrainer, trainer_free)

static gboolean
setup (StsimTrainer *tr, GError **error)
{
  const StsimParams *p = tr->p;

  /* encoder, evaluator, objectives */
  if (!(tr->encoder = find_component (tr, STSIM_KIND_ENCODER, stsim_params_get_string (p, "encoder"), error)))
    return FALSE;
  const StsimComponentDesc *ed = stsim_component_get_desc (tr->encoder);
  const StsimEncoderVTable *evt = ed->vtable;
  if (!vtable_has (ed, offsetof (StsimEncoderVTable, model) + sizeof (gpointer)) || !evt->model ||
      !(tr->model = evt->model (stsim_component_get_state (tr->encoder)))) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                 "[%s] use = %s: this encoder has no trainable network; train a neural encoder (e.g. bert)",
                 stsim_component_get_label (tr->encoder), ed->name);
    return FALSE;
  }
  if (!(tr->tok = stsim_model_get_tokenizer (tr->model))) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "[%s]: the model has no tokenizer (vocab files)",
                 stsim_component_get_label (tr->encoder));
    return FALSE;
  }
  if (!stsim_param_store_is_trainable (stsim_model_get_params (tr->model))) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "[%s]: the model was loaded frozen and cannot be trained",
                 stsim_component_get_label (tr->encoder));
    return FALSE;
  }
  if (stsim_params_get_bool (p, "test") || stsim_params_get_int (p, "eval_every") > 0) {
    if (!(tr->evaluator = find_component (tr, STSIM_KIND_EVALUATOR, stsim_params_get_string (p, "evaluator"), error)))
      return FALSE;
  }

  tr->objectives = g_array_new (FALSE, TRUE, sizeof (TrainObjective));
  for (guint i = 0; i < stsim_recipe_get_n_ordered (tr->recipe); i++) {
    const StsimRecipeComponent *rc = stsim_recipe_get_ordered (tr->recipe, i);
    if (rc->kind != STSIM_KIND_OBJECTIVE || !rc->enabled)
      continue;
    StsimComponent *c = stsim_context_lookup (tr->ctx, rc->label);
    if (!c) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "[%s]: objective was not instantiated", rc->label);
      return FALSE;
    }
    const StsimComponentDesc *d = stsim_component_get_desc (c);
    TrainObjective o = { .component = c, .label = rc->label, .weight = rc->weight, .vt = d->vtable };
    if (vtable_has (d, offsetof (StsimObjectiveVTable, params) + sizeof (gpointer)) && o.vt->params) {
      o.stores = o.vt->params (stsim_component_get_state (c), &o.n_stores);
      if (!o.stores)
        o.n_stores = 0;
    }
    g_array_append_val (tr->objectives, o);
  }
  if (tr->objectives->len == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "%s: nothing to train: the recipe has no enabled [objective]",
                 stsim_recipe_get_path (tr->recipe));
    return FALSE;
  }

  /* data */
  const char *pairs = stsim_params_get_string (p, "pairs");
  if (pairs) {
    static const char *const cols[] = { "sent0", "sent1", "hard_neg", NULL };
    if (!(tr->corpus = stsim_corpus_load_csv (pairs, cols, error)))
      return FALSE;
    tr->n_views = 3;
  } else {
    g_auto (GStrv) paths = split_list (stsim_params_get_string (p, "corpus"));
    if (!(tr->corpus = stsim_corpus_load_lines ((const char *const *) paths, error)))
      return FALSE;
    tr->n_views = 2;
  }

  /* optimisation */
  tr->batch_size = stsim_params_get_int (p, "batch_size");
  if (stsim_corpus_get_n (tr->corpus) < tr->batch_size) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                 "[train] batch_size = %" G_GSIZE_FORMAT " but the corpus has only %" G_GSIZE_FORMAT " examples: "
                 "a batch needs that many distinct sentences; lower batch_size or give a larger corpus",
                 tr->batch_size, stsim_corpus_get_n (tr->corpus));
    return FALSE;
  }
  if (tr->world > 1 && (tr->batch_size < (gsize) tr->world || stsim_corpus_get_n (tr->corpus) < (gsize) tr->world)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                 "[train] batch_size = %" G_GSIZE_FORMAT " (corpus: %" G_GSIZE_FORMAT " examples) cannot be split "
                 "over %d ranks: every rank needs at least one sentence of each batch; raise batch_size or run "
                 "fewer ranks", tr->batch_size, stsim_corpus_get_n (tr->corpus), tr->world);
    return FALSE;
  }
  tr->max_len = stsim_params_get_int (p, "max_len");
  int max_pos = stsim_model_get_config (tr->model)->max_position_embeddings;
  if (max_pos > 0 && tr->max_len > max_pos) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "[train] max_len = %d exceeds the model's %d positions",
                 tr->max_len, max_pos);
    return FALSE;
  }
  tr->lr = stsim_params_get_double (p, "lr");
  tr->max_grad_norm = stsim_params_get_double (p, "max_grad_norm");
  tr->warmup = stsim_params_get_int (p, "warmup");
  tr->packed = stsim_params_get_bool (p, "packed");
  gsize n = stsim_corpus_get_n (tr->corpus);
  guint64 per_epoch = (n + tr->batch_size - 1) / tr->batch_size;
  tr->total_steps = stsim_params_get_int (p, "steps");
  if (tr->total_steps == 0)
    tr->total_steps = per_epoch * stsim_params_get_int (p, "epochs");
  if (tr->warmup >= tr->total_steps && tr->warmup > 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "[train] warmup = %" G_GUINT64_FORMAT
                 " is not below the %" G_GUINT64_FORMAT " training steps", tr->warmup, tr->total_steps);
    return FALSE;
  }
  if (!setup_head (tr, error))
    return FALSE;

  StsimAdamWConfig cfg = STSIM_ADAMW_CONFIG_INIT;
  cfg.beta1 = stsim_params_get_double (p, "adam_beta1");
  cfg.beta2 = stsim_params_get_double (p, "adam_beta2");
  cfg.eps = stsim_params_get_double (p, "adam_eps");
  cfg.weight_decay = stsim_params_get_double (p, "weight_decay");
  tr->stores = g_ptr_array_new ();
  tr->opts = g_ptr_array_new_with_free_func ((GDestroyNotify) stsim_adamw_free);
  g_ptr_array_add (tr->stores, stsim_model_get_params (tr->model));
  if (tr->head_store)
    g_ptr_array_add (tr->stores, tr->head_store);
  for (guint i = 0; i < tr->objectives->len; i++) {
    TrainObjective *o = &g_array_index (tr->objectives, TrainObjective, i);
    for (gsize k = 0; k < o->n_stores; k++) {
      StsimParamStore *st = o->stores[k];
      if (!st) {
        g_set_error (error, STSIM_ERROR, STSIM_ERROR_PLUGIN,
                     "[%s]: its params() op returned %" G_GSIZE_FORMAT " stores but store %" G_GSIZE_FORMAT
                     " is NULL (a plugin bug)", o->label, o->n_stores, k);
        return FALSE;
      }
      if (!stsim_param_store_is_trainable (st)) {
        g_set_error (error, STSIM_ERROR, STSIM_ERROR_PLUGIN, "[%s]: its params() store '%s' is not trainable",
                     o->label, stsim_param_store_get_name (st));
        return FALSE;
      }
      /* A store updated twice per step (listed twice, or the student's own
       * parameters) would take two optimizer steps. */
      for (guint j = 0; j < tr->stores->len; j++)
        if (g_ptr_array_index (tr->stores, j) == st) {
          g_set_error (error, STSIM_ERROR, STSIM_ERROR_PLUGIN,
                       "[%s]: its params() store '%s' is already trained (the student's, the head's, or listed "
                       "twice): each store must appear once", o->label, stsim_param_store_get_name (st));
          return FALSE;
        }
      g_ptr_array_add (tr->stores, st);
    }
  }
  for (guint i = 0; i < tr->stores->len; i++)
    g_ptr_array_add (tr->opts, stsim_adamw_new (g_ptr_array_index (tr->stores, i), &cfg));

  tr->tape = stsim_tape_new (tr->seed, 0);
  tr->perm_epoch = G_MAXUINT64;

  const char *nan = stsim_params_get_string (p, "debug_nan_steps");
  if (nan) {
    g_auto (GStrv) parts = split_list (nan);
    tr->nan_steps = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
    for (gsize i = 0; parts[i]; i++) {
      guint64 v;
      if (!g_ascii_string_to_unsigned (parts[i], 10, 0, G_MAXINT64, &v, NULL)) {
        g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "[train] debug_nan_steps: '%s' is not a step number",
                     parts[i]);
        return FALSE;
      }
      gint64 *k = g_new (gint64, 1);
      *k = v;
      g_hash_table_add (tr->nan_steps, k);
    }
  }

  /* outputs */
  tr->out_dir = g_strdup (stsim_recipe_get_output (tr->recipe));
  tr->state_dir = g_build_filename (tr->out_dir, "state", NULL);
  tr->best_dir = g_build_filename (tr->out_dir, "best", NULL);
  tr->metrics_path = g_build_filename (tr->out_dir, "metrics.jsonl", NULL);
  /* Only rank 0 writes (docs/distributed.md). */
  if (tr->rank == 0 && g_mkdir_with_parents (tr->out_dir, 0755) != 0) {
    int e = errno;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot create the run folder %s: %s", tr->out_dir,
                 g_strerror (e));
    return FALSE;
  }
  return TRUE;
}

/* ---- data -------------------------------------------------------------------------- */

static void
ensure_perm (StsimTrainer *tr)
{
  if (tr->perm_epoch == tr->epoch)
    return;
  gsize n = stsim_corpus_get_n (tr->corpus);
  if (!tr->perm)
    tr->perm = g_new (gint32, n);
  /* Epoch e's order: a Fisher-Yates shuffle drawn at position e·2^40 of the
   * shuffle stream, so any epoch's order is recomputable on resume. */
  StsimRng rng;
  stsim_rng_init (&rng, tr->seed, STSIM_RNG_STREAM_SHUFFLE);
  stsim_rng_seek (&rng, tr->epoch << 40);
  stsim_rng_permutation (&rng, tr->perm, n);
  tr->perm_epoch = tr->epoch;
}

/* The next B examples (a partial batch at the end of an epoch, as HF's
 * dataloader with drop_last False), tokenized into V·B rows. */
static gboolean
build_step (StsimTrainer *tr, StsimTrainStep *step, GError **error)
{
  gsize n = stsim_corpus_get_n (tr->corpus);
  /* With W ranks an epoch's last partial batch needs at least W sentences
   * (one per rank); a smaller remainder is skipped, the same way on every
   * rank and on resume. */
  if (tr->index >= n || (tr->world > 1 && n - tr->index < (gsize) tr->world)) {
    tr->epoch++;
    tr->index = 0;
  }
  ensure_perm (tr);
  gsize B = MIN (tr->batch_size, n - tr->index);
  guint V = tr->n_views;
  step->B = B;
  step->V = V;
  step->row_texts = g_new0 (char *, V * B + 1);
  for (gsize i = 0; i < B; i++) {
    gsize ex = tr->perm[tr->index + i];
    for (guint v = 0; v < V; v++) {
      /* Unsupervised: both views are the same sentence (method.md §3.2). */
      guint src = stsim_corpus_get_n_views (tr->corpus) == 1 ? 0 : v;
      step->row_texts[v * B + i] = (char *) stsim_corpus_get_text (tr->corpus, ex, src);
    }
  }
  GError *local = NULL;
  if (!stsim_tokenizer_encode_batch (tr->tok, (const char *const *) step->row_texts, V * B, tr->max_len,
                                     &step->batch, &local)) {
    /* Name the example: the corpus was validated, so this is rare. */
    g_set_error (error, local->domain, local->code, "train step %" G_GUINT64_FORMAT ": tokenizing: %s", tr->step,
                 local->message);
    g_error_free (local);
    return FALSE;
  }
  if (tr->world > 1) {
    /* This rank's rows, view-major, cut to their own longest row. */
    stsim_dist_shard (B, tr->rank, tr->world, &step->first, &step->n_local);
    StsimTokenBatch *lb = &step->local_batch;
    const StsimTokenBatch *gb = &step->batch;
    lb->n = V * step->n_local;
    lb->width = 1;
    for (gsize i = 0; i < lb->n; i++)
      lb->width = MAX (lb->width, (gsize) gb->lengths[stsim_train_step_local_row (step, i)]);
    lb->ids = g_new (gint32, lb->n * lb->width);
    lb->mask = g_new (gint32, lb->n * lb->width);
    lb->lengths = g_new (gint32, lb->n);
    for (gsize i = 0; i < lb->n; i++) {
      gsize g = stsim_train_step_local_row (step, i);
      memcpy (lb->ids + i * lb->width, gb->ids + g * gb->width, lb->width * sizeof (gint32));
      memcpy (lb->mask + i * lb->width, gb->mask + g * gb->width, lb->width * sizeof (gint32));
      lb->lengths[i] = gb->lengths[g];
    }
  }
  tr->index += B;
  return TRUE;
}

/* ---- metrics ------------------------------------------------------------------------ */

typedef struct {
  guint      n_steps, n_good, n_bad;
  double     loss_sum, norm_sum;
  GHashTable *terms;  /* name -> double[2] {sum, count} */
  gsize      sentences;
  gint64     t_start;
} Interval;

static void
interval_reset (Interval *iv)
{
  iv->n_steps = iv->n_good = iv->n_bad = 0;
  iv->loss_sum = iv->norm_sum = 0;
  iv->sentences = 0;
  if (iv->terms)
    g_hash_table_remove_all (iv->terms);
  else
    iv->terms = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  iv->t_start = g_get_monotonic_time ();
}

static void
interval_add_term (Interval *iv, const char *name, double v)
{
  double *acc = g_hash_table_lookup (iv->terms, name);
  if (!acc) {
    acc = g_new0 (double, 2);
    g_hash_table_insert (iv->terms, g_strdup (name), acc);
  }
  acc[0] += v;
  acc[1] += 1;
}

static gboolean
append_metrics (StsimTrainer *tr, JsonBuilder *b, GError **error)
{
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  g_autofree char *line = stsim_json_to_data (root, FALSE, NULL);
  FILE *f = g_fopen (tr->metrics_path, "a");
  if (!f) {
    int e = errno;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot append to %s: %s", tr->metrics_path, g_strerror (e));
    return FALSE;
  }
  fprintf (f, "%s\n", line);
  fclose (f);
  return TRUE;
}

/* On resume, the lines written after the saved state would be repeated:
 * drop them so that metrics.jsonl reads like one uninterrupted run. */
static gboolean
truncate_metrics (StsimTrainer *tr, GError **error)
{
  g_autofree char *text = NULL;
  if (!stsim_file_get_contents (tr->metrics_path, STSIM_LIMIT_METRICS, &text, NULL, NULL))
    return TRUE;
  GString *kept = g_string_new (NULL);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (gsize i = 0; lines[i]; i++) {
    if (!*lines[i])
      continue;
    g_autoptr(JsonParser) p = json_parser_new ();
    if (!stsim_json_load_data (p, lines[i], -1, NULL) || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (p)))
      continue;  /* a line cut by the kill */
    JsonObject *o = json_node_get_object (json_parser_get_root (p));
    if ((guint64) json_object_get_int_member_with_default (o, "step", 0) > tr->step)
      continue;
    g_string_append (kept, lines[i]);
    g_string_append_c (kept, '\n');
  }
  gboolean ok = stsim_train_write_file (tr->metrics_path, kept->str, kept->len, error);
  g_string_free (kept, TRUE);
  return ok;
}

static void
format_duration (double s, char *buf, gsize size)
{
  if (!isfinite (s) || s < 0)
    g_strlcpy (buf, "?", size);
  else if (s < 60)
    g_snprintf (buf, size, "%.0fs", s);
  else if (s < 3600)
    g_snprintf (buf, size, "%dm%02ds", (int) (s / 60), (int) fmod (s, 60));
  else
    g_snprintf (buf, size, "%dh%02dm", (int) (s / 3600), (int) fmod (s / 60, 60));
}

/* ---- evaluation and selection -------------------------------------------------------- */

static gboolean
evaluate_dev (StsimTrainer *tr, gint64 t0, GError **error)
{
  g_autoptr(JsonObject) report = json_object_new ();
  double primary = NAN;
  gint64 t = g_get_monotonic_time ();
  if (!stsim_evaluator_evaluate (tr->evaluator, tr->encoder, STSIM_EVAL_DEV, report, &primary, error)) {
    g_prefix_error (error, "dev evaluation at step %" G_GUINT64_FORMAT ": ", tr->step);
    return FALSE;
  }
  double secs = (g_get_monotonic_time () - t) / 1e6;
  /* Strictly greater: ties keep the earlier checkpoint (method.md §3.6). */
  gboolean better = isfinite (primary) && (!tr->has_best || primary > tr->best);
  gboolean save = better && stsim_params_get_bool (tr->p, "save_best");
  if (better) {
    if (save && !stsim_model_save (tr->model, tr->best_dir, error)) {
      g_prefix_error (error, "saving the best checkpoint to %s: ", tr->best_dir);
      return FALSE;
    }
    tr->has_best = TRUE;
    tr->best = primary;
    tr->best_step = tr->step;
  }
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "eval");
  json_builder_set_member_name (b, "step");
  json_builder_add_int_value (b, tr->step);
  json_builder_set_member_name (b, "dev");
  if (isfinite (primary))
    json_builder_add_double_value (b, primary);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "best");
  json_builder_add_double_value (b, tr->best);
  json_builder_set_member_name (b, "best_step");
  json_builder_add_int_value (b, tr->best_step);
  json_builder_set_member_name (b, "saved");
  json_builder_add_boolean_value (b, save);
  json_builder_set_member_name (b, "seconds");
  json_builder_add_double_value (b, secs);
  json_builder_set_member_name (b, "elapsed");
  json_builder_add_double_value (b, (g_get_monotonic_time () - t0) / 1e6);
  json_builder_end_object (b);
  if (!tr->options.quiet)
    g_printerr ("%sstep %" G_GUINT64_FORMAT ": dev %.4f%s (best %.4f at step %" G_GUINT64_FORMAT ", %.1fs)\n",
                isatty (2) ? "\r\033[K" : "", tr->step, primary, save ? " *saved*" : "", tr->best, tr->best_step,
                secs);
  return append_metrics (tr, b, error);
}

/* Copies the parameters of the checkpoint in best/ into the student, by
 * tensor name: the model that is tested is exactly the file on disk. */
static gboolean
reload_best (StsimTrainer *tr, GError **error)
{
  /* The student's parts (pooler, MLM head) but never a re-initialised
   * pooler: what is tested is what the file holds. */
  guint flags = stsim_model_get_flags (tr->model) & (STSIM_MODEL_POOLER | STSIM_MODEL_MLM_HEAD);
  g_autoptr(StsimModel) best = stsim_model_load (tr->best_dir, flags, tr->seed, error);
  if (!best) {
    g_prefix_error (error, "reloading the best checkpoint: ");
    return FALSE;
  }
  StsimParamStore *dst = stsim_model_get_params (tr->model);
  StsimParamStore *src = stsim_model_get_params (best);
  for (gsize i = 0; i < stsim_param_store_get_n_views (dst); i++) {
    const StsimParamView *dv = stsim_param_store_get_view (dst, i);
    const StsimParamView *sv = stsim_param_store_lookup (src, dv->name);
    if (!sv)
      continue;  /* e.g. an MLM head the checkpoint ties to the embeddings */
    if (sv->numel != dv->numel) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT, "%s: tensor '%s' has %" G_GINT64_FORMAT
                   " values, the student %" G_GINT64_FORMAT, tr->best_dir, dv->name, sv->numel, dv->numel);
      return FALSE;
    }
    memcpy (dv->tensor->data, sv->tensor->data, dv->numel * sizeof (float));
  }
  return TRUE;
}

static gboolean
finish_run (StsimTrainer *tr, double train_seconds, GError **error)
{
  /* save_best = false (the lab setting): no checkpoint at all, the final parameters are tested. */
  const gboolean save_best = stsim_params_get_bool (tr->p, "save_best");
  if (!tr->evaluator || !stsim_params_get_bool (tr->p, "test")) {
    if (save_best && !tr->has_best && !stsim_model_save (tr->model, tr->best_dir, error))
      return FALSE;
    return TRUE;
  }
  const char *selected;
  if (tr->has_best && save_best) {
    if (!reload_best (tr, error))
      return FALSE;
    selected = "best";
  } else {
    /* No evaluation happened during training (eval_every 0 or larger than
     * the run), or no checkpoint is kept: the last parameters are the result. */
    if (save_best && !stsim_model_save (tr->model, tr->best_dir, error))
      return FALSE;
    selected = "last";
    if (!tr->options.quiet && save_best)
      g_printerr ("no dev evaluation during training: testing the last parameters (saved to %s)\n", tr->best_dir);
    else if (!tr->options.quiet)
      g_printerr ("save_best = false: testing the last parameters (no checkpoint written)\n");
  }
  g_autoptr(JsonObject) report = json_object_new ();
  double primary = NAN;
  if (!stsim_evaluator_evaluate (tr->evaluator, tr->encoder, STSIM_EVAL_TEST, report, &primary, error)) {
    g_prefix_error (error, "test evaluation: ");
    return FALSE;
  }
  JsonObject *t = json_object_new ();
  json_object_set_string_member (t, "recipe", stsim_recipe_get_path (tr->recipe));
  if (save_best)
    json_object_set_string_member (t, "model", tr->best_dir);
  else
    json_object_set_null_member (t, "model");
  json_object_set_string_member (t, "selected", selected);
  json_object_set_int_member (t, "steps", tr->step);
  json_object_set_int_member (t, "skipped_steps", tr->bad_total);
  if (tr->has_best) {
    json_object_set_double_member (t, "best_dev", tr->best);
    json_object_set_int_member (t, "best_step", tr->best_step);
  }
  json_object_set_double_member (t, "train_seconds", train_seconds);
  json_object_set_object_member (report, "training", t);
  g_autofree char *path = g_build_filename (tr->out_dir, "results.json", NULL);
  g_autoptr(JsonNode) node = json_node_init_object (json_node_alloc (), report);
  g_autofree char *text = stsim_json_to_data (node, TRUE, NULL);
  if (!stsim_train_write_file (path, text, -1, error))
    return FALSE;
  if (!tr->options.quiet) {
    g_autofree char *table = json_object_has_member (report, "table") ? stsim_sts_report_format (report) : NULL;
    g_print ("%s", table ? table : text);
    if (table && !g_str_has_suffix (table, "\n"))
      g_print ("\n");
    g_print ("results: %s\n", path);
  }
  return TRUE;
}

/* ---- one step ------------------------------------------------------------------------ */

/* Returns FALSE on a hard error; *good says whether the update was applied. */
static gboolean
train_step (StsimTrainer *tr, Interval *iv, gboolean *good, GError **error)
{
  StsimTrainStep step;
  stsim_train_step_init (&step, tr, tr->step);
  gboolean ok = FALSE;
  g_autofree double *values = g_new0 (double, tr->objectives->len);
  g_autofree gboolean *local_loss = g_new0 (gboolean, tr->objectives->len);
  *good = FALSE;

  stsim_tape_reset (tr->tape);
  stsim_tape_set_training (tr->tape, TRUE);
  stsim_tape_set_grad_enabled (tr->tape, TRUE);
  stsim_tape_set_step (tr->tape, tr->step);
  if (!build_step (tr, &step, error))
    goto out;

  StsimTensor *total = NULL;
  double total_value = 0;
  for (guint i = 0; i < tr->objectives->len; i++) {
    TrainObjective *o = &g_array_index (tr->objectives, TrainObjective, i);
    StsimTensor *loss = NULL;
    step.label = o->label;
    step.loss_local = FALSE;
    if (!o->vt->loss (stsim_component_get_state (o->component), &step, &loss, error)) {
      g_prefix_error (error, "step %" G_GUINT64_FORMAT ": [%s]: ", tr->step, o->label);
      goto out;
    }
    if (!loss || loss->numel != 1) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PLUGIN, "step %" G_GUINT64_FORMAT ": [%s] returned %s",
                   tr->step, o->label, loss ? "a loss that is not a scalar" : "no loss");
      goto out;
    }
    if (tr->world > 1 && o->n_stores > 0 && !step.loss_local) {
      /* Computed on the global views by every rank, its own parameters
       * would get W times their gradient from the sum over ranks (an
       * objective that trains parameters must compute its loss on this
       * rank's rows, as diff-predict does). */
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PLUGIN,
                   "step %" G_GUINT64_FORMAT ": [%s] trains its own parameters but does not support data-parallel "
                   "runs (its loss must cover this rank's rows and say so with stsim_train_step_set_loss_local, "
                   "docs/distributed.md); run it in one process", tr->step, o->label);
      goto out;
    }
    local_loss[i] = step.loss_local;
    values[i] = loss->data[0];
    total_value += o->weight * values[i];
    total = total ? stsim_axpby (tr->tape, 1.0f, total, (float) o->weight, loss)
                  : stsim_scale (tr->tape, loss, (float) o->weight);
  }
  step.label = NULL;
  if (tr->nan_steps) {
    gint64 k = tr->step;
    if (g_hash_table_contains (tr->nan_steps, &k))
      total_value = NAN;
  }
  if (tr->world > 1) {
    /* Logged values and the skip decision are global: a local loss adds up
     * over the ranks, a global one is the same everywhere (each rank adds
     * its 1/W). A NaN on any rank makes every rank skip. */
    g_autofree double *buf = g_new (double, tr->objectives->len + 1);
    for (guint i = 0; i < tr->objectives->len; i++)
      buf[i] = local_loss[i] ? values[i] : values[i] / tr->world;
    buf[tr->objectives->len] = isfinite (total_value) ? 0.0 : 1.0;
    if (!stsim_dist_sum_f64 (buf, tr->objectives->len + 1, error))
      goto out;
    total_value = buf[tr->objectives->len] > 0 ? NAN : 0.0;
    for (guint i = 0; i < tr->objectives->len; i++) {
      values[i] = buf[i];
      total_value += g_array_index (tr->objectives, TrainObjective, i).weight * values[i];
    }
    /* Every rank must run the backward of the head's cross-rank batch
     * norm (it is a collective): keep this rank's head output on the path
     * to the loss even if no objective used its rows. */
    if (total && step.projected_local && tr->head == HEAD_BN)
      total = stsim_axpby (tr->tape, 1.0f, total, 0.0f, stsim_sum (tr->tape, step.projected_local));
  }

  double norm = NAN;
  gboolean finite = isfinite (total_value);
  if (finite && stsim_tensor_requires_grad (total)) {
    GError *local = NULL;
    StsimParamStore *const *stores = (StsimParamStore *const *) tr->stores->pdata;
    gboolean backward_ok = stsim_tape_backward (tr->tape, total, NULL, &local);
    if (!backward_ok && (local->domain != STSIM_ERROR || local->code != STSIM_ERROR_NUMERIC)) {
      g_propagate_prefixed_error (error, local, "step %" G_GUINT64_FORMAT ": backward: ", tr->step);
      goto out;
    }
    g_clear_error (&local);
    if (stsim_dist_take_error (error)) {
      g_prefix_error (error, "step %" G_GUINT64_FORMAT ": backward: ", tr->step);
      goto out;
    }
    if (tr->world > 1) {
      /* Each rank holds the gradient of its own rows: the sum over ranks is
       * the single-process gradient. One all-reduce per store block. */
      double bad = backward_ok ? 0.0 : 1.0;
      if (!stsim_dist_sum_f64 (&bad, 1, error))
        goto out;
      backward_ok = bad == 0.0;
      for (guint i = 0; backward_ok && i < tr->stores->len; i++) {
        gint64 ng = 0;
        float *g = stsim_param_store_get_grad (stores[i], &ng);
        if (!stsim_dist_sum_f32 (g, (gsize) ng, error)) {
          g_prefix_error (error, "step %" G_GUINT64_FORMAT ": gradient all-reduce: ", tr->step);
          goto out;
        }
      }
    }
    if (!backward_ok) {
      finite = FALSE;
    } else if (tr->max_grad_norm > 0) {
      if (!stsim_clip_grad_norm (stores, tr->stores->len, tr->max_grad_norm, &norm, &local)) {
        g_error_free (local);
        finite = FALSE;
      }
    } else {
      norm = stsim_grad_norm (stores, tr->stores->len);
      finite = isfinite (norm);
    }
  }

  if (finite) {
    double lr = stsim_lr_linear (tr->lr, tr->step, tr->warmup, tr->total_steps);
    for (guint i = 0; i < tr->opts->len; i++)
      stsim_adamw_step (g_ptr_array_index (tr->opts, i), lr);
    tr->bad_in_row = 0;
    *good = TRUE;
    iv->n_good++;
    iv->loss_sum += total_value;
    if (isfinite (norm))
      iv->norm_sum += norm;
    for (guint i = 0; i < tr->objectives->len; i++) {
      g_autofree char *name = g_strdup_printf ("loss.%s", g_array_index (tr->objectives, TrainObjective, i).label);
      interval_add_term (iv, name, values[i]);
    }
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init (&it, step.logs);
    while (g_hash_table_iter_next (&it, &k, &v))
      interval_add_term (iv, k, *(double *) v);
  } else {
    tr->bad_in_row++;
    tr->bad_total++;
    iv->n_bad++;
    if (!tr->options.quiet && tr->rank == 0)
      g_printerr ("%sstep %" G_GUINT64_FORMAT ": non-finite loss or gradient (loss %g): step skipped "
                  "(%" G_GUINT64_FORMAT " in a row)\n",
                  isatty (2) ? "\r\033[K" : "", tr->step, total_value, tr->bad_in_row);
  }
  for (guint i = 0; i < tr->stores->len; i++)
    stsim_param_store_zero_grad (g_ptr_array_index (tr->stores, i));
  iv->n_steps++;
  iv->sentences += step.B;
  ok = TRUE;
out:
  stsim_train_step_clear (&step);
  stsim_tape_reset (tr->tape);
  return ok;
}

static gboolean
log_interval (StsimTrainer *tr, Interval *iv, gint64 t0, double train_seconds, GError **error)
{
  double secs = (g_get_monotonic_time () - iv->t_start) / 1e6;
  double sps = secs > 0 ? iv->sentences / secs : 0;
  double loss = iv->n_good ? iv->loss_sum / iv->n_good : NAN;
  double lr = stsim_lr_linear (tr->lr, tr->step > 0 ? tr->step - 1 : 0, tr->warmup, tr->total_steps);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "train");
  json_builder_set_member_name (b, "step");
  json_builder_add_int_value (b, tr->step);
  json_builder_set_member_name (b, "epoch");
  json_builder_add_int_value (b, tr->epoch);
  json_builder_set_member_name (b, "loss");
  if (isfinite (loss))
    json_builder_add_double_value (b, loss);
  else
    json_builder_add_null_value (b);
  g_autoptr(GList) keys = g_list_sort (g_hash_table_get_keys (iv->terms), (GCompareFunc) strcmp);
  for (GList *l = keys; l; l = l->next) {
    double *acc = g_hash_table_lookup (iv->terms, l->data);
    json_builder_set_member_name (b, l->data);
    json_builder_add_double_value (b, acc[0] / acc[1]);
  }
  json_builder_set_member_name (b, "lr");
  json_builder_add_double_value (b, lr);
  json_builder_set_member_name (b, "grad_norm");
  if (iv->n_good)
    json_builder_add_double_value (b, iv->norm_sum / iv->n_good);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "skipped");
  json_builder_add_int_value (b, iv->n_bad);
  json_builder_set_member_name (b, "sentences_per_second");
  json_builder_add_double_value (b, sps);
  json_builder_set_member_name (b, "elapsed");
  json_builder_add_double_value (b, (g_get_monotonic_time () - t0) / 1e6);
  json_builder_end_object (b);
  if (!tr->options.quiet) {
    char eta[32];
    double steps_per_s = secs > 0 ? iv->n_steps / secs : 0;
    format_duration (steps_per_s > 0 ? (tr->total_steps - tr->step) / steps_per_s : NAN, eta, sizeof eta);
    g_printerr ("%sstep %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT "  loss %.4f  %.1f sent/s  ETA %s%s",
                isatty (2) ? "\r\033[K" : "", tr->step, tr->total_steps, loss, sps, eta, isatty (2) ? "" : "\n");
  }
  return append_metrics (tr, b, error);
}

/* ---- the run ---------------------------------------------------------------------------- */

/* Teachers that precompute (encoder-teacher caches its embeddings of the
 * corpus) see every training sentence (view 0) once, before the first step. */
static gboolean
prepare_teachers_here (StsimTrainer *tr, GError **error)
{
  guint n = 0;
  StsimComponent *const *all = stsim_context_get_components (tr->ctx, &n);
  gsize count = stsim_corpus_get_n (tr->corpus);
  g_autofree const char **texts = NULL;
  for (guint i = 0; i < n; i++) {
    const StsimComponentDesc *d = stsim_component_get_desc (all[i]);
    const StsimTeacherVTable *vt = d->vtable;
    if (d->kind != STSIM_KIND_TEACHER ||
        !vtable_has (d, offsetof (StsimTeacherVTable, prepare_corpus) + sizeof (gpointer)) || !vt->prepare_corpus)
      continue;
    if (!texts) {
      texts = g_new (const char *, count + 1);
      for (gsize k = 0; k < count; k++)
        texts[k] = stsim_corpus_get_text (tr->corpus, k, 0);
      texts[count] = NULL;
    }
    if (!vt->prepare_corpus (stsim_component_get_state (all[i]), texts, count, error)) {
      g_prefix_error (error, "[%s]: preparing the teacher: ", stsim_component_get_label (all[i]));
      return FALSE;
    }
  }
  return TRUE;
}

/* Several ranks: rank 0 prepares first (a teacher may build a cache file
 * that the others then load instead of computing it again). */
static gboolean
prepare_teachers (StsimTrainer *tr, GError **error)
{
  if (tr->world == 1)
    return prepare_teachers_here (tr, error);
  gboolean ok = tr->rank != 0 || prepare_teachers_here (tr, error);
  GError *local = NULL;
  if (!stsim_trainer_sync_flag (tr, ok, "preparing the teachers", ok ? error : &local)) {
    g_clear_error (&local);
    return FALSE;
  }
  return tr->rank == 0 || prepare_teachers_here (tr, error);
}

gboolean
stsim_trainer_run (const StsimRecipe *recipe, StsimContext *ctx, const StsimTrainOptions *options, GError **error)
{
  g_return_val_if_fail (recipe != NULL && ctx != NULL, FALSE);
  g_autoptr(StsimTrainer) tr = g_new0 (StsimTrainer, 1);
  StsimTrainOptions defaults = STSIM_TRAIN_OPTIONS_INIT;
  tr->recipe = recipe;
  tr->ctx = ctx;
  tr->options = options ? *options : defaults;
  tr->p = stsim_recipe_get_core (recipe, "train");
  tr->seed = stsim_recipe_get_seed (recipe);
  tr->rank = stsim_dist_rank ();
  tr->world = stsim_dist_size ();
  if (tr->rank != 0)
    tr->options.quiet = TRUE;  /* rank 0 speaks for the job */
  if (!tr->p) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "the [train] section is not registered");
    return FALSE;
  }
  if (stsim_recipe_get_threads (recipe) > 0)
    stsim_set_threads (stsim_recipe_get_threads (recipe));
  if (!setup (tr, error) || !prepare_teachers (tr, error))
    return FALSE;
  if (tr->rank == 0 && !stsim_recipe_write_resolved (recipe, tr->out_dir, error))
    return FALSE;

  g_autofree char *state_path = g_build_filename (tr->state_dir, "state.safetensors", NULL);
  /* Rank 0 decides and reads; the others receive its state (sync below). */
  gboolean resuming = tr->rank == 0 && tr->options.resume && g_file_test (state_path, G_FILE_TEST_EXISTS);
  gboolean root_ok = TRUE;
  if (resuming) {
    root_ok = stsim_trainer_load_state (tr, error) && truncate_metrics (tr, error);
    if (root_ok && !tr->options.quiet)
      g_printerr ("resuming %s at step %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT "\n", tr->out_dir, tr->step,
                  tr->total_steps);
  } else if (tr->rank == 0) {
    if (tr->options.resume && !tr->options.quiet)
      g_printerr ("--resume: no state in %s, starting from step 0\n", tr->state_dir);
    /* A fresh run starts a fresh log and forgets an older best. */
    g_unlink (tr->metrics_path);
  }
  if (tr->world > 1) {
    /* Every rank starts from rank 0's parameters, optimizer state and
     * position (resumed or fresh), so that they are identical. */
    GError *local = NULL;
    gboolean synced = stsim_trainer_sync_state (tr, root_ok, root_ok ? error : &local);
    g_clear_error (&local);
    if (!synced)
      return FALSE;
  } else if (!root_ok)
    return FALSE;

  if (!tr->options.quiet)
    g_printerr ("training %s: %" G_GSIZE_FORMAT " examples, batch %" G_GSIZE_FORMAT ", %" G_GUINT64_FORMAT
                " steps, %u objective(s), head %s, output %s\n",
                stsim_component_get_label (tr->encoder), stsim_corpus_get_n (tr->corpus), tr->batch_size,
                tr->total_steps, tr->objectives->len, stsim_params_get_string (tr->p, "head"), tr->out_dir);
  if (!tr->options.quiet && tr->world > 1)
    g_printerr ("data-parallel: %d ranks, %" G_GSIZE_FORMAT " to %" G_GSIZE_FORMAT " sentences of each batch per "
                "rank; rank 0 evaluates, logs and saves\n", tr->world, tr->batch_size / tr->world,
                (tr->batch_size + tr->world - 1) / tr->world);

  const guint64 eval_every = stsim_params_get_int (tr->p, "eval_every");
  const guint64 save_every = stsim_params_get_int (tr->p, "save_every");
  const guint64 log_every = stsim_params_get_int (tr->p, "log_every");
  const guint64 max_bad = stsim_params_get_int (tr->p, "max_bad_steps");
  gint64 t0 = g_get_monotonic_time ();
  double train_seconds = 0;
  guint64 steps_here = 0;
  Interval iv = { 0 };
  interval_reset (&iv);
  gboolean ok = FALSE;

  while (tr->step < tr->total_steps) {
    gboolean good;
    gint64 ts = g_get_monotonic_time ();
    if (!train_step (tr, &iv, &good, error))
      goto out;
    train_seconds += (g_get_monotonic_time () - ts) / 1e6;
    tr->step++;
    steps_here++;
    if (!good && tr->bad_in_row >= max_bad) {
      /* The skipped steps changed no parameter: what is in memory is the
       * last good state; keep it on disk for inspection or a resume. */
      GError *save_err = NULL;
      gboolean saved = tr->rank != 0 || stsim_trainer_save_state (tr, &save_err);
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_NUMERIC,
                   "training stopped at step %" G_GUINT64_FORMAT ": %" G_GUINT64_FORMAT
                   " steps in a row had a NaN or infinite loss or gradient ([train] max_bad_steps = %" G_GUINT64_FORMAT
                   "); %s%s. Lower [train] lr, check the data, or raise max_bad_steps",
                   tr->step, tr->bad_in_row, max_bad,
                   saved ? "the last good state is in " : "saving the last good state failed: ",
                   saved ? tr->state_dir : save_err->message);
      if (save_err)
        g_error_free (save_err);
      goto out;
    }
    if (tr->step % log_every == 0 || tr->step == tr->total_steps) {
      if (tr->rank == 0 && !log_interval (tr, &iv, t0, train_seconds, error))
        goto out;
      interval_reset (&iv);
    }
    if (tr->options.stop_after_steps > 0 && steps_here >= (guint64) tr->options.stop_after_steps) {
      /* Simulated kill: no save, no cleanup. */
      if (!tr->options.quiet)
        g_printerr ("\nstopping after %" G_GUINT64_FORMAT " steps (--stop-after-steps)\n", steps_here);
      ok = TRUE;
      goto out;
    }
    if (tr->rank == 0 && tr->evaluator && eval_every > 0 && tr->step % eval_every == 0) {
      if (!evaluate_dev (tr, t0, error))
        goto out;
      stsim_curves_update (tr->out_dir, stsim_recipe_get_name (tr->recipe));
      iv.t_start = g_get_monotonic_time ();  /* sentences/s excludes evaluation */
    }
    if (tr->rank == 0 && save_every > 0 && tr->step % save_every == 0 && tr->step < tr->total_steps &&
        !stsim_trainer_save_state (tr, error))
      goto out;
  }
  if (!tr->options.quiet && isatty (2))
    g_printerr ("\n");
  if (tr->rank != 0) {
    ok = TRUE;  /* rank 0 saves, tests and reports */
    goto out;
  }
  const gboolean keep_state = strcmp (stsim_params_get_string (tr->p, "keep_state"), "last") == 0;
  if (keep_state && !stsim_trainer_save_state (tr, error))
    goto out;
  if (!tr->options.quiet)
    g_printerr ("trained %" G_GUINT64_FORMAT " steps in %.1fs (%" G_GUINT64_FORMAT " skipped)\n", tr->step,
                train_seconds, tr->bad_total);
  stsim_curves_update (tr->out_dir, stsim_recipe_get_name (tr->recipe));
  ok = finish_run (tr, train_seconds, error) && (keep_state || stsim_trainer_remove_state (tr, error));
out:
  if (iv.terms)
    g_hash_table_unref (iv.terms);
  return ok;
}
