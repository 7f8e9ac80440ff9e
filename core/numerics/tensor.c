/* tensor.c: tensor helpers, parameter stores (one value block, one gradient
 * block, named views) and the thread count. */
#include <cblas.h>
#include <omp.h>
#include "numerics-private.h"

const char *
stsim_tensor_shape_string (const StsimTensor *t, char *buf, gsize size)
{
  g_return_val_if_fail (buf != NULL && size > 0, buf);
  if (!t) {
    g_strlcpy (buf, "(null)", size);
    return buf;
  }
  gsize off = g_strlcpy (buf, "[", size);
  for (int d = 0; d < t->ndim && off < size; d++)
    off += g_snprintf (buf + off, size - off, "%s%" G_GINT64_FORMAT, d ? ", " : "", t->shape[d]);
  if (off < size)
    g_strlcpy (buf + off, "]", size - off);
  return buf;
}

gboolean
stsim_tensor_same_shape (const StsimTensor *a, const StsimTensor *b)
{
  if (!a || !b || a->ndim != b->ndim)
    return FALSE;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d])
      return FALSE;
  return TRUE;
}

void
stsim_tensor_set_requires_grad (StsimTensor *t, gboolean requires_grad)
{
  g_return_if_fail (t != NULL);
  if (requires_grad)
    t->flags |= STSIM_TENSOR_REQUIRES_GRAD;
  else
    t->flags &= ~STSIM_TENSOR_REQUIRES_GRAD;
}

/* ---- parameter stores -------------------------------------------------- */

typedef struct {
  StsimParamView view;
  char          *name;
  StsimTensor    tensor;
} StoreEntry;

struct _StsimParamStore {
  char       *name;
  gboolean    trainable;
  gboolean    finished;
  GPtrArray  *entries;     /* StoreEntry*, declaration order */
  GHashTable *by_name;     /* name -> StoreEntry* */
  GPtrArray  *fused;       /* StsimTensor* made by fuse() */
  float      *data, *grad;
  gint64      n_floats;
};

static void
entry_free (gpointer p)
{
  StoreEntry *e = p;
  g_free (e->name);
  g_free (e);
}

StsimParamStore *
stsim_param_store_new (const char *name, gboolean trainable)
{
  StsimParamStore *s = g_new0 (StsimParamStore, 1);
  s->name = g_strdup (name ? name : "params");
  s->trainable = trainable;
  s->entries = g_ptr_array_new_with_free_func (entry_free);
  s->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  s->fused = g_ptr_array_new_with_free_func (g_free);
  return s;
}

void
stsim_param_store_free (StsimParamStore *store)
{
  if (!store)
    return;
  g_hash_table_unref (store->by_name);
  g_ptr_array_unref (store->entries);
  g_ptr_array_unref (store->fused);
  g_aligned_free (store->data);
  g_aligned_free (store->grad);
  g_free (store->name);
  g_free (store);
}

static void
entry_sync_tensor (StsimParamStore *store, StoreEntry *e)
{
  StsimTensor *t = &e->tensor;
  t->flags = STSIM_TENSOR_PARAM;
  if (store->trainable && !(e->view.flags & STSIM_VIEW_FROZEN))
    t->flags |= STSIM_TENSOR_REQUIRES_GRAD;
  t->grad_state = STSIM_GRAD_VALID;
}

StsimTensor *
stsim_param_store_add (StsimParamStore *store, const char *name, int ndim, const gint64 *shape, guint32 view_flags)
{
  g_return_val_if_fail (store != NULL && name != NULL && *name, NULL);
  g_return_val_if_fail (!store->finished, NULL);
  g_return_val_if_fail (ndim >= 1 && ndim <= STSIM_TENSOR_MAX_DIMS && shape != NULL, NULL);
  if (g_hash_table_contains (store->by_name, name)) {
    g_critical ("parameter store '%s': '%s' declared twice", store->name, name);
    return NULL;
  }
  gint64 numel = 1;
  for (int d = 0; d < ndim; d++) {
    g_return_val_if_fail (shape[d] > 0, NULL);
    numel *= shape[d];
  }
  StoreEntry *e = g_new0 (StoreEntry, 1);
  e->name = g_strdup (name);
  e->view.name = e->name;
  e->view.numel = numel;
  e->view.ndim = ndim;
  memcpy (e->view.shape, shape, sizeof (gint64) * ndim);
  e->view.flags = store->trainable ? view_flags : (view_flags | STSIM_VIEW_FROZEN);
  e->view.tensor = &e->tensor;
  e->tensor.ndim = ndim;
  e->tensor.numel = numel;
  memcpy (e->tensor.shape, shape, sizeof (gint64) * ndim);
  entry_sync_tensor (store, e);
  g_ptr_array_add (store->entries, e);
  g_hash_table_insert (store->by_name, e->name, e);
  return &e->tensor;
}

gboolean
stsim_param_store_finish (StsimParamStore *store, GError **error)
{
  g_return_val_if_fail (store != NULL, FALSE);
  if (store->finished)
    return TRUE;
  if (store->entries->len == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "parameter store '%s' has no parameters; declare them with stsim_param_store_add() first",
                 store->name);
    return FALSE;
  }
  /* Views are packed back to back, without padding, so that consecutive
   * declarations can always be fused (BERT's sizes are multiples of 16
   * floats anyway, so its views stay 64-byte aligned). */
  gint64 off = 0;
  for (guint i = 0; i < store->entries->len; i++) {
    StoreEntry *e = store->entries->pdata[i];
    e->view.offset = off;
    off += e->view.numel;
  }
  store->n_floats = off;
  gsize bytes = (gsize) off * sizeof (float);
  store->data = g_aligned_alloc0 (1, bytes, 64);
  if (store->trainable)
    store->grad = g_aligned_alloc0 (1, bytes, 64);
  for (guint i = 0; i < store->entries->len; i++) {
    StoreEntry *e = store->entries->pdata[i];
    e->tensor.data = store->data + e->view.offset;
    e->tensor.grad = store->grad ? store->grad + e->view.offset : NULL;
  }
  store->finished = TRUE;
  return TRUE;
}

StsimTensor *
stsim_param_store_fuse (StsimParamStore *store, const char *const *names, gsize n_names, GError **error)
{
  g_return_val_if_fail (store != NULL && names != NULL && n_names > 0, NULL);
  if (!store->finished) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "parameter store '%s': fuse() needs finish() first", store->name);
    return NULL;
  }
  StoreEntry *first = NULL, *prev = NULL;
  gint64 rows = 0;
  for (gsize i = 0; i < n_names; i++) {
    StoreEntry *e = g_hash_table_lookup (store->by_name, names[i]);
    if (!e) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND,
                   "parameter store '%s' has no parameter '%s'", store->name, names[i]);
      return NULL;
    }
    if (!first)
      first = e;
    gboolean same_tail = e->view.ndim == first->view.ndim;
    for (int d = 1; same_tail && d < e->view.ndim; d++)
      same_tail = e->view.shape[d] == first->view.shape[d];
    if (!same_tail || e->view.flags != first->view.flags) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                   "cannot fuse '%s' with '%s': shapes past dimension 0 or flags differ",
                   names[i], first->name);
      return NULL;
    }
    if (prev && prev->view.offset + prev->view.numel != e->view.offset) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                   "cannot fuse '%s' after '%s': not adjacent in the store; declare them one after another",
                   names[i], prev->name);
      return NULL;
    }
    rows += e->view.shape[0];
    prev = e;
  }
  StsimTensor *t = g_new0 (StsimTensor, 1);
  *t = first->tensor;
  t->shape[0] = rows;
  t->numel = rows * (first->view.numel / first->view.shape[0]);
  g_ptr_array_add (store->fused, t);
  return t;
}

const char *stsim_param_store_get_name (const StsimParamStore *store) { return store->name; }
gsize stsim_param_store_get_n_views (const StsimParamStore *store) { return store->entries->len; }
gboolean stsim_param_store_is_trainable (const StsimParamStore *store) { return store->trainable; }

const StsimParamView *
stsim_param_store_get_view (const StsimParamStore *store, gsize i)
{
  g_return_val_if_fail (store != NULL && i < store->entries->len, NULL);
  return &((StoreEntry *) store->entries->pdata[i])->view;
}

const StsimParamView *
stsim_param_store_lookup (const StsimParamStore *store, const char *name)
{
  g_return_val_if_fail (store != NULL && name != NULL, NULL);
  StoreEntry *e = g_hash_table_lookup (store->by_name, name);
  return e ? &e->view : NULL;
}

float *
stsim_param_store_get_data (StsimParamStore *store, gint64 *n_floats)
{
  if (n_floats)
    *n_floats = store->n_floats;
  return store->data;
}

float *
stsim_param_store_get_grad (StsimParamStore *store, gint64 *n_floats)
{
  if (n_floats)
    *n_floats = store->grad ? store->n_floats : 0;
  return store->grad;
}

gint64
stsim_param_store_get_n_trainable (const StsimParamStore *store)
{
  gint64 n = 0;
  for (guint i = 0; i < store->entries->len; i++) {
    StoreEntry *e = store->entries->pdata[i];
    if (!(e->view.flags & STSIM_VIEW_FROZEN))
      n += e->view.numel;
  }
  return n;
}

void
stsim_param_store_zero_grad (StsimParamStore *store)
{
  g_return_if_fail (store != NULL);
  if (store->grad)
    memset (store->grad, 0, (gsize) store->n_floats * sizeof (float));
}

gboolean
stsim_param_store_set_frozen (StsimParamStore *store, const char *name, gboolean frozen, GError **error)
{
  g_return_val_if_fail (store != NULL && name != NULL, FALSE);
  StoreEntry *e = g_hash_table_lookup (store->by_name, name);
  if (!e) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND,
                 "parameter store '%s' has no parameter '%s'", store->name, name);
    return FALSE;
  }
  if (!store->trainable && !frozen) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "parameter store '%s' is frozen as a whole; '%s' cannot be unfrozen", store->name, name);
    return FALSE;
  }
  if (frozen)
    e->view.flags |= STSIM_VIEW_FROZEN;
  else
    e->view.flags &= ~STSIM_VIEW_FROZEN;
  entry_sync_tensor (store, e);
  return TRUE;
}

/* ---- threads ------------------------------------------------------------ */

int
stsim_set_threads (int n_threads)
{
  if (n_threads <= 0)
    n_threads = omp_get_num_procs ();
  omp_set_num_threads (n_threads);
  openblas_set_num_threads (n_threads);
  return n_threads;
}

int
stsim_get_threads (void)
{
  return omp_get_max_threads ();
}
