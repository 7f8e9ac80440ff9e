/* component.c: component instances, kind-checked calls and the run context. */
#include "stsim/stsim-registry.h"
#include "stsim-config.h"

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

struct _StsimComponent {
  const StsimComponentDesc *desc;
  char                     *label;
  StsimParams              *params;
  gpointer                  state;
  StsimContext             *ctx;
};

struct _StsimContext {
  char       *data_dir;
  guint64     seed;
  int         threads;
  GPtrArray  *components;  /* owned, in the order added */
  GHashTable *by_label;    /* label -> component */
};

/* --data, else $STSIM_DATA, else the build's data folder where it exists
 * (../shared/data beside the source), else the per-user folder that
 * `stsim-data fetch` fills by default (docs/data.md). */
char *
stsim_data_dir_resolve (const char *override)
{
  const char *env = g_getenv ("STSIM_DATA");
  g_autofree char *user = NULL;
  const char *dir = override && override[0] ? override : env && env[0] ? env : NULL;

  if (dir == NULL)
    dir = g_file_test (STSIM_DATA_DIR, G_FILE_TEST_IS_DIR)
            ? STSIM_DATA_DIR : (user = g_build_filename (g_get_user_data_dir (), "stsim", NULL));
  return g_canonicalize_filename (dir, NULL);  /* absolute, without "..": stable in resolved recipes */
}

/* ---- components ------------------------------------------------------------ */

StsimComponent *
stsim_component_new (const StsimComponentDesc *desc, const char *label, StsimParams *params,
                     StsimContext *ctx, GError **error)
{
  StsimComponent *c;
  gpointer state;

  g_return_val_if_fail (desc != NULL && label != NULL && params != NULL, NULL);
  if (!(state = desc->create (params, ctx, error))) {
    if (error && *error == NULL)
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "%s: %s '%s' failed to start", label,
                   stsim_kind_name (desc->kind), desc->name);
    else if (error)
      g_prefix_error (error, "%s (%s '%s'): ", label, stsim_kind_name (desc->kind), desc->name);
    stsim_params_free (params);
    return NULL;
  }
  c = g_new0 (StsimComponent, 1);
  c->desc = desc;
  c->label = g_strdup (label);
  c->params = params;
  c->state = state;
  c->ctx = ctx;
  return c;
}

void
stsim_component_free (StsimComponent *component)
{
  if (!component)
    return;
  component->desc->destroy (component->state);
  stsim_params_free (component->params);
  g_free (component->label);
  g_free (component);
}

StsimComponent *
stsim_component_new_simple (StsimRegistry *reg, StsimKind kind, const char *name, const char *label,
                            StsimContext *ctx, GError **error, ...)
{
  const StsimRegistryEntry *e;
  g_autoptr(StsimParams) params = NULL;
  va_list ap;
  const char *key;
  gboolean ok = TRUE;

  g_return_val_if_fail (reg != NULL && name != NULL, NULL);
  if (!(e = stsim_registry_find (reg, kind, name, error)))
    return NULL;
  params = stsim_params_new (e->desc->params);
  if (ctx)
    stsim_params_set_path_vars (params, stsim_context_get_data_dir (ctx), NULL);
  va_start (ap, error);
  while (ok && (key = va_arg (ap, const char *)))
    ok = stsim_params_set (params, key, va_arg (ap, const char *), error);
  va_end (ap);
  if (!ok || !stsim_params_finish (params, error))
    return NULL;
  return stsim_component_new (e->desc, label ? label : stsim_kind_name (kind), g_steal_pointer (&params), ctx,
                              error);
}

const StsimComponentDesc *
stsim_component_get_desc (StsimComponent *component)
{
  g_return_val_if_fail (component != NULL, NULL);
  return component->desc;
}

const char *
stsim_component_get_label (StsimComponent *component)
{
  g_return_val_if_fail (component != NULL, NULL);
  return component->label;
}

const StsimParams *
stsim_component_get_params (StsimComponent *component)
{
  g_return_val_if_fail (component != NULL, NULL);
  return component->params;
}

gpointer
stsim_component_get_state (StsimComponent *component)
{
  g_return_val_if_fail (component != NULL, NULL);
  return component->state;
}

StsimKind
stsim_component_get_kind (StsimComponent *component)
{
  g_return_val_if_fail (component != NULL, STSIM_KIND_N_KINDS);
  return component->desc->kind;
}

/* The op at @offset of @c's vtable, or NULL when the plugin was built before it existed. */
#define VTABLE_OP(c, type, op) \
  (offsetof (type, op) + sizeof (gpointer) <= (c)->desc->vtable_size ? ((const type *) (c)->desc->vtable)->op : NULL)

/* "encoder.main (encoder 'bow-idf')", the way stsim_component_new names a component in errors. */
#define COMPONENT_FMT "%s (%s '%s')"
#define COMPONENT_ARGS(c) (c)->label, stsim_kind_name ((c)->desc->kind), (c)->desc->name

/* FALSE with an error when @c is not of @kind: a caller that mixed up labels. */
static gboolean
check_kind (StsimComponent *c, StsimKind kind, const char *op, GError **error)
{
  if (c->desc->kind == kind)
    return TRUE;
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, COMPONENT_FMT ": %s() is an op of %s components, not of %ss",
               COMPONENT_ARGS (c), op, stsim_kind_name (kind), stsim_kind_name (c->desc->kind));
  return FALSE;
}

/* The error for an op @c's plugin does not implement (NULL, or beyond its vtable_size). */
static gboolean
missing_op (StsimComponent *c, const char *op, const char *hint, GError **error)
{
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED, COMPONENT_FMT ": its plugin does not implement %s()%s%s",
               COMPONENT_ARGS (c), op, hint ? "; " : "", hint ? hint : "");
  return FALSE;
}

/* An op that failed without saying why still gets an error naming it. */
static gboolean
op_failed (StsimComponent *c, const char *op, GError **error)
{
  if (error && *error == NULL)
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PLUGIN, COMPONENT_FMT ": %s() failed without an error message",
                 COMPONENT_ARGS (c), op);
  return FALSE;
}

/* ---- encoder ---- */

gsize
stsim_encoder_dim (StsimComponent *encoder)
{
  gsize (*dim) (gpointer);

  g_return_val_if_fail (encoder != NULL && encoder->desc->kind == STSIM_KIND_ENCODER, 0);
  dim = VTABLE_OP (encoder, StsimEncoderVTable, dim);
  g_return_val_if_fail (dim != NULL, 0);  /* required: the registry refuses plugins without it */
  return dim (encoder->state);
}

gboolean
stsim_encoder_prepare (StsimComponent *encoder, const char *const *sentences, gsize n, GError **error)
{
  gboolean (*prepare) (gpointer, const char *const *, gsize, GError **);

  g_return_val_if_fail (encoder != NULL, FALSE);
  if (!check_kind (encoder, STSIM_KIND_ENCODER, "prepare", error))
    return FALSE;
  prepare = VTABLE_OP (encoder, StsimEncoderVTable, prepare);
  return !prepare || prepare (encoder->state, sentences, n, error) || op_failed (encoder, "prepare", error);
}

gboolean
stsim_encoder_encode (StsimComponent *encoder, const char *const *sentences, gsize n, float *out,
                      GError **error)
{
  gboolean (*encode) (gpointer, const char *const *, gsize, float *, GError **);

  g_return_val_if_fail (encoder != NULL, FALSE);
  g_return_val_if_fail (n == 0 || (sentences != NULL && out != NULL), FALSE);
  if (!check_kind (encoder, STSIM_KIND_ENCODER, "encode", error))
    return FALSE;
  if (!(encode = VTABLE_OP (encoder, StsimEncoderVTable, encode)))
    return missing_op (encoder, "encode", NULL, error);
  return encode (encoder->state, sentences, n, out, error) || op_failed (encoder, "encode", error);
}

gboolean
stsim_encoder_has_model (StsimComponent *encoder)
{
  g_return_val_if_fail (encoder != NULL, FALSE);
  return encoder->desc->kind == STSIM_KIND_ENCODER && VTABLE_OP (encoder, StsimEncoderVTable, model) != NULL;
}

struct _StsimModel *
stsim_encoder_model (StsimComponent *encoder, GError **error)
{
  struct _StsimModel *(*model) (gpointer);
  struct _StsimModel *m;

  g_return_val_if_fail (encoder != NULL, NULL);
  if (!check_kind (encoder, STSIM_KIND_ENCODER, "model", error))
    return NULL;
  if (!(model = VTABLE_OP (encoder, StsimEncoderVTable, model))) {
    missing_op (encoder, "model", "the encoder has no trainable network; use a neural encoder (e.g. bert)", error);
    return NULL;
  }
  if (!(m = model (encoder->state)))
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED,
                 COMPONENT_FMT ": model() gave none: the encoder has no trainable network; use a neural encoder "
                 "(e.g. bert)", COMPONENT_ARGS (encoder));
  return m;
}

gboolean
stsim_encoder_has_eval_pooler (StsimComponent *encoder)
{
  g_return_val_if_fail (encoder != NULL, FALSE);
  return encoder->desc->kind == STSIM_KIND_ENCODER && VTABLE_OP (encoder, StsimEncoderVTable, eval_pooler) != NULL;
}

gboolean
stsim_encoder_eval_pooler (StsimComponent *encoder, int *pooler, GError **error)
{
  int (*eval_pooler) (gpointer);

  g_return_val_if_fail (encoder != NULL && pooler != NULL, FALSE);
  if (!check_kind (encoder, STSIM_KIND_ENCODER, "eval_pooler", error))
    return FALSE;
  if (!(eval_pooler = VTABLE_OP (encoder, StsimEncoderVTable, eval_pooler)))
    return missing_op (encoder, "eval_pooler", NULL, error);
  *pooler = eval_pooler (encoder->state);
  return TRUE;
}

gboolean
stsim_encoder_has_sparse (StsimComponent *encoder)
{
  g_return_val_if_fail (encoder != NULL, FALSE);
  return encoder->desc->kind == STSIM_KIND_ENCODER && VTABLE_OP (encoder, StsimEncoderVTable, encode_sparse) != NULL;
}

/* The contract the callers' exact sums rely on, for what the op appended after @before. */
static gboolean
check_sparse (StsimComponent *encoder, guint before, GArray *idx, GArray *val, GError **error)
{
  gsize D = stsim_encoder_dim (encoder);
  for (guint k = before; k < idx->len; k++)
    if (g_array_index (idx, guint32, k) >= D ||
        (k > before && g_array_index (idx, guint32, k) <= g_array_index (idx, guint32, k - 1)) ||
        idx->len != val->len) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PLUGIN, "encoder %s: encode_sparse gave coordinates that are "
                   "not ascending, repeated or beyond D = %" G_GSIZE_FORMAT, encoder->desc->name, D);
      return FALSE;
    }
  return TRUE;
}

gboolean
stsim_encoder_encode_sparse (StsimComponent *encoder, const char *sentence, GArray *idx, GArray *val,
                             GError **error)
{
  gboolean (*op) (gpointer, const char *, GArray *, GArray *, GError **);

  g_return_val_if_fail (encoder != NULL, FALSE);
  g_return_val_if_fail (sentence != NULL && idx != NULL && val != NULL, FALSE);
  if (!check_kind (encoder, STSIM_KIND_ENCODER, "encode_sparse", error))
    return FALSE;
  if (!(op = VTABLE_OP (encoder, StsimEncoderVTable, encode_sparse))) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED, "encoder %s has no sparse encoding",
                 encoder->desc->name);
    return FALSE;
  }
  guint before = idx->len;
  if (!op (encoder->state, sentence, idx, val, error))
    return op_failed (encoder, "encode_sparse", error);
  return check_sparse (encoder, before, idx, val, error);
}

/* ---- evaluator ---- */

gboolean
stsim_evaluator_evaluate (StsimComponent *evaluator, StsimComponent *encoder, StsimEvalMode mode,
                          JsonObject *report, double *primary, GError **error)
{
  gboolean (*evaluate) (gpointer, StsimComponent *, StsimEvalMode, JsonObject *, double *, GError **);
  double dummy = 0;

  g_return_val_if_fail (evaluator != NULL && encoder != NULL && report != NULL, FALSE);
  if (!check_kind (evaluator, STSIM_KIND_EVALUATOR, "evaluate", error))
    return FALSE;
  if (encoder->desc->kind != STSIM_KIND_ENCODER) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, COMPONENT_FMT ": evaluate() scores encoders; " COMPONENT_FMT
                 " is not one", COMPONENT_ARGS (evaluator), COMPONENT_ARGS (encoder));
    return FALSE;
  }
  if (!(evaluate = VTABLE_OP (evaluator, StsimEvaluatorVTable, evaluate)))
    return missing_op (evaluator, "evaluate", NULL, error);
  return evaluate (evaluator->state, encoder, mode, report, primary ? primary : &dummy, error) ||
         op_failed (evaluator, "evaluate", error);
}

/* ---- objective ---- */

gboolean
stsim_objective_loss (StsimComponent *objective, StsimTrainStep *step, StsimTensor **loss, GError **error)
{
  gboolean (*op) (gpointer, StsimTrainStep *, StsimTensor **, GError **);

  g_return_val_if_fail (objective != NULL && step != NULL && loss != NULL, FALSE);
  if (!check_kind (objective, STSIM_KIND_OBJECTIVE, "loss", error))
    return FALSE;
  if (!(op = VTABLE_OP (objective, StsimObjectiveVTable, loss)))
    return missing_op (objective, "loss", NULL, error);
  *loss = NULL;
  if (!op (objective->state, step, loss, error))
    return op_failed (objective, "loss", error);
  if (*loss == NULL) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PLUGIN, COMPONENT_FMT ": loss() succeeded but gave no loss",
                 COMPONENT_ARGS (objective));
    return FALSE;
  }
  return TRUE;
}

gboolean
stsim_objective_has_params (StsimComponent *objective)
{
  g_return_val_if_fail (objective != NULL, FALSE);
  return objective->desc->kind == STSIM_KIND_OBJECTIVE && VTABLE_OP (objective, StsimObjectiveVTable, params) != NULL;
}

struct _StsimParamStore *const *
stsim_objective_params (StsimComponent *objective, gsize *n_stores)
{
  struct _StsimParamStore *const *(*params) (gpointer, gsize *);
  struct _StsimParamStore *const *stores = NULL;
  gsize n = 0;

  g_return_val_if_fail (objective != NULL && n_stores != NULL, NULL);
  *n_stores = 0;
  g_return_val_if_fail (objective->desc->kind == STSIM_KIND_OBJECTIVE, NULL);
  if ((params = VTABLE_OP (objective, StsimObjectiveVTable, params)))
    stores = params (objective->state, &n);
  *n_stores = stores ? n : 0;  /* NULL means none, whatever the op left in n */
  return *n_stores ? stores : NULL;
}

/* ---- teacher ---- */

gboolean
stsim_teacher_similarity (StsimComponent *teacher, StsimTrainStep *step, float *sim, GError **error)
{
  gboolean (*op) (gpointer, StsimTrainStep *, float *, GError **);

  g_return_val_if_fail (teacher != NULL && step != NULL && sim != NULL, FALSE);
  if (!check_kind (teacher, STSIM_KIND_TEACHER, "similarity", error))
    return FALSE;
  if (!(op = VTABLE_OP (teacher, StsimTeacherVTable, similarity)))
    return missing_op (teacher, "similarity", NULL, error);
  return op (teacher->state, step, sim, error) || op_failed (teacher, "similarity", error);
}

gboolean
stsim_teacher_has_prepare_corpus (StsimComponent *teacher)
{
  g_return_val_if_fail (teacher != NULL, FALSE);
  return teacher->desc->kind == STSIM_KIND_TEACHER && VTABLE_OP (teacher, StsimTeacherVTable, prepare_corpus) != NULL;
}

gboolean
stsim_teacher_prepare_corpus (StsimComponent *teacher, const char *const *texts, gsize n, GError **error)
{
  gboolean (*op) (gpointer, const char *const *, gsize, GError **);

  g_return_val_if_fail (teacher != NULL && (n == 0 || texts != NULL), FALSE);
  if (!check_kind (teacher, STSIM_KIND_TEACHER, "prepare_corpus", error))
    return FALSE;
  op = VTABLE_OP (teacher, StsimTeacherVTable, prepare_corpus);
  return !op || op (teacher->state, texts, n, error) || op_failed (teacher, "prepare_corpus", error);
}

/* ---- context ----------------------------------------------------------------- */

StsimContext *
stsim_context_new (const char *data_dir, guint64 seed, int threads)
{
  StsimContext *ctx = g_new0 (StsimContext, 1);
  ctx->data_dir = stsim_data_dir_resolve (data_dir);
  ctx->seed = seed;
  ctx->threads = threads > 0 ? threads : (int) g_get_num_processors ();
  ctx->components = g_ptr_array_new ();
  ctx->by_label = g_hash_table_new (g_str_hash, g_str_equal);
  return ctx;
}

void
stsim_context_free (StsimContext *ctx)
{
  if (!ctx)
    return;
  for (guint i = ctx->components->len; i-- > 0;)
    stsim_component_free (g_ptr_array_index (ctx->components, i));
  g_ptr_array_unref (ctx->components);
  g_hash_table_unref (ctx->by_label);
  g_free (ctx->data_dir);
  g_free (ctx);
}

gboolean
stsim_context_add (StsimContext *ctx, StsimComponent *component, GError **error)
{
  g_return_val_if_fail (ctx != NULL && component != NULL, FALSE);
  if (g_hash_table_contains (ctx->by_label, component->label)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "a component labelled '%s' already exists",
                 component->label);
    stsim_component_free (component);
    return FALSE;
  }
  component->ctx = ctx;
  g_ptr_array_add (ctx->components, component);
  g_hash_table_insert (ctx->by_label, component->label, component);
  return TRUE;
}

StsimComponent *const *
stsim_context_get_components (StsimContext *ctx, guint *n_out)
{
  g_return_val_if_fail (ctx != NULL, NULL);
  if (n_out)
    *n_out = ctx->components->len;
  return (StsimComponent *const *) ctx->components->pdata;
}

const char *
stsim_context_get_data_dir (StsimContext *ctx)
{
  g_return_val_if_fail (ctx != NULL, NULL);
  return ctx->data_dir;
}

guint64
stsim_context_get_seed (StsimContext *ctx)
{
  g_return_val_if_fail (ctx != NULL, 0);
  return ctx->seed;
}

int
stsim_context_get_threads (StsimContext *ctx)
{
  g_return_val_if_fail (ctx != NULL, 1);
  return ctx->threads;
}

StsimComponent *
stsim_context_lookup (StsimContext *ctx, const char *label)
{
  g_return_val_if_fail (ctx != NULL && label != NULL, NULL);
  return g_hash_table_lookup (ctx->by_label, label);
}

/* TRUE when a teacher of @ctx names @c in one of its references (an
 * encoder-teacher's `encoder = encoder.LABEL`): such an encoder is the
 * teacher's frozen scorer, never the one a caller means by default. */
static gboolean
wrapped_by_teacher (StsimContext *ctx, StsimComponent *c)
{
  for (guint i = 0; i < ctx->components->len; i++) {
    StsimComponent *t = g_ptr_array_index (ctx->components, i);
    if (t->desc->kind != STSIM_KIND_TEACHER)
      continue;
    for (const StsimParamSpec *s = stsim_params_get_specs (t->params); s && s->name; s++) {
      const char *const *refs = s->type == STSIM_PARAM_REFS ? stsim_params_get_refs (t->params, s->name, NULL) : NULL;
      for (guint j = 0; refs && refs[j]; j++)
        if (strcmp (refs[j], c->label) == 0)
          return TRUE;
    }
  }
  return FALSE;
}

/* "'encoder.a', 'encoder.b'": the labels of @kind's components (skipping
 * teacher-wrapped encoders when @skip_wrapped) into @out; their number, the
 * first in *@first. */
static guint
labels_of_kind (StsimContext *ctx, StsimKind kind, gboolean skip_wrapped, GString *out, StsimComponent **first)
{
  guint count = 0;
  for (guint i = 0; i < ctx->components->len; i++) {
    StsimComponent *c = g_ptr_array_index (ctx->components, i);
    if (c->desc->kind == kind && !(skip_wrapped && wrapped_by_teacher (ctx, c))) {
      g_string_append_printf (out, "%s'%s'", count ? ", " : "", c->label);
      if (count++ == 0 && first)
        *first = c;
    }
  }
  if (count == 0)
    g_string_append (out, "none");
  return count;
}

static StsimComponent *
find_by_label (StsimContext *ctx, StsimKind kind, const char *label, GError **error)
{
  const char *kn = stsim_kind_name (kind);
  StsimComponent *c = g_hash_table_lookup (ctx->by_label, label);
  if (c && c->desc->kind == kind)
    return c;
  g_autoptr(GString) have = g_string_new (NULL);
  labels_of_kind (ctx, kind, FALSE, have, NULL);
  g_autofree char *full = g_strdup_printf ("%s.%s", kn, label);
  StsimComponent *near = g_hash_table_lookup (ctx->by_label, full);
  if (c)
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "'%s' is a %s section, not an enabled %s; the %s sections: %s",
                 label, stsim_kind_name (c->desc->kind), kn, kn, have->str);
  else if (near && near->desc->kind == kind)
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "no enabled %s section is labelled '%s'; did you mean '%s'?",
                 kn, label, full);
  else
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "no enabled %s section is labelled '%s'; the %s sections: %s",
                 kn, label, kn, have->str);
  return NULL;
}

StsimComponent *
stsim_context_find (StsimContext *ctx, StsimKind kind, const char *label, GError **error)
{
  g_autoptr(GString) have = g_string_new (NULL);
  StsimComponent *found = NULL;
  guint count = 0;

  g_return_val_if_fail (ctx != NULL && kind < STSIM_KIND_N_KINDS, NULL);
  if (label)
    return find_by_label (ctx, kind, label, error);
  /* Encoders that a teacher wraps are skipped, unless nothing else is left. */
  for (int skip_wrapped = kind == STSIM_KIND_ENCODER; skip_wrapped >= 0 && count == 0; skip_wrapped--) {
    g_string_truncate (have, 0);
    count = labels_of_kind (ctx, kind, skip_wrapped, have, &found);
  }
  if (count == 1)
    return found;
  if (count == 0)
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "no enabled %s section", stsim_kind_name (kind));
  else
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "%u %s sections (%s); name the one meant by its label",
                 count, stsim_kind_name (kind), have->str);
  return NULL;
}
