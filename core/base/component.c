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

gsize
stsim_encoder_dim (StsimComponent *encoder)
{
  g_return_val_if_fail (encoder != NULL && encoder->desc->kind == STSIM_KIND_ENCODER, 0);
  return VTABLE_OP (encoder, StsimEncoderVTable, dim) (encoder->state);
}

gboolean
stsim_encoder_prepare (StsimComponent *encoder, const char *const *sentences, gsize n, GError **error)
{
  gboolean (*prepare) (gpointer, const char *const *, gsize, GError **);

  g_return_val_if_fail (encoder != NULL && encoder->desc->kind == STSIM_KIND_ENCODER, FALSE);
  prepare = VTABLE_OP (encoder, StsimEncoderVTable, prepare);
  return prepare ? prepare (encoder->state, sentences, n, error) : TRUE;
}

gboolean
stsim_encoder_encode (StsimComponent *encoder, const char *const *sentences, gsize n, float *out,
                      GError **error)
{
  g_return_val_if_fail (encoder != NULL && encoder->desc->kind == STSIM_KIND_ENCODER, FALSE);
  g_return_val_if_fail (n == 0 || (sentences != NULL && out != NULL), FALSE);
  return VTABLE_OP (encoder, StsimEncoderVTable, encode) (encoder->state, sentences, n, out, error);
}

gboolean
stsim_encoder_has_sparse (StsimComponent *encoder)
{
  g_return_val_if_fail (encoder != NULL && encoder->desc->kind == STSIM_KIND_ENCODER, FALSE);
  return VTABLE_OP (encoder, StsimEncoderVTable, encode_sparse) != NULL;
}

gboolean
stsim_encoder_encode_sparse (StsimComponent *encoder, const char *sentence, GArray *idx, GArray *val,
                             GError **error)
{
  gboolean (*op) (gpointer, const char *, GArray *, GArray *, GError **);

  g_return_val_if_fail (encoder != NULL && encoder->desc->kind == STSIM_KIND_ENCODER, FALSE);
  g_return_val_if_fail (sentence != NULL && idx != NULL && val != NULL, FALSE);
  if (!(op = VTABLE_OP (encoder, StsimEncoderVTable, encode_sparse))) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED, "encoder %s has no sparse encoding",
                 encoder->desc->name);
    return FALSE;
  }
  guint before = idx->len;
  if (!op (encoder->state, sentence, idx, val, error))
    return FALSE;
  /* The contract the callers' exact sums rely on. */
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
stsim_evaluator_evaluate (StsimComponent *evaluator, StsimComponent *encoder, StsimEvalMode mode,
                          JsonObject *report, double *primary, GError **error)
{
  double dummy = 0;

  g_return_val_if_fail (evaluator != NULL && evaluator->desc->kind == STSIM_KIND_EVALUATOR, FALSE);
  g_return_val_if_fail (encoder != NULL && encoder->desc->kind == STSIM_KIND_ENCODER, FALSE);
  g_return_val_if_fail (report != NULL, FALSE);
  return VTABLE_OP (evaluator, StsimEvaluatorVTable, evaluate) (evaluator->state, encoder, mode, report,
                                                                primary ? primary : &dummy, error);
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
