/* tape.c: the autograd tape, tensors in the arena, views and backward. */
#include "numerics-private.h"
#include "numerics-profile.h"

StsimTape *
stsim_tape_new (guint64 seed, gsize initial_arena_bytes)
{
  StsimTape *tape = g_new0 (StsimTape, 1);
  tape->arena = stsim_arena_new (initial_arena_bytes);
  tape->seed = seed;
  tape->grad_enabled = TRUE;
  tape->training = TRUE;
  return tape;
}

void
stsim_tape_free (StsimTape *tape)
{
  if (!tape)
    return;
  stsim_arena_free (tape->arena);
  g_free (tape->places);
  g_free (tape);
}

StsimArena *stsim_tape_get_arena (StsimTape *tape) { return tape->arena; }

void
stsim_tape_reset (StsimTape *tape)
{
  g_return_if_fail (tape != NULL);
  tape->last = NULL;
  tape->n_nodes = 0;
  tape->op_counter = 0;
  stsim_arena_reset (tape->arena);
}

void
stsim_tape_set_step (StsimTape *tape, guint64 step)
{
  g_return_if_fail (tape != NULL);
  tape->step = step;
  tape->op_counter = 0;
}

void
stsim_tape_set_places (StsimTape *tape, const StsimRowPlace *places, gsize n)
{
  g_return_if_fail (tape != NULL && (places != NULL || n == 0));
  g_clear_pointer (&tape->places, g_free);
  tape->n_places = places ? n : 0;
  if (tape->n_places)
    tape->places = g_memdup2 (places, n * sizeof *places);
}

StsimRowPlace *
stsim_tape_places_copy (StsimTape *tape)
{
  if (!tape->places)
    return NULL;
  gsize bytes = tape->n_places * sizeof (StsimRowPlace);
  StsimRowPlace *copy = stsim_tape_alloc (tape, bytes);
  memcpy (copy, tape->places, bytes);
  return copy;
}

guint64 stsim_tape_get_step (const StsimTape *tape) { return tape->step; }
guint64 stsim_tape_get_seed (const StsimTape *tape) { return tape->seed; }
void stsim_tape_set_grad_enabled (StsimTape *tape, gboolean enabled) { tape->grad_enabled = enabled; }
gboolean stsim_tape_get_grad_enabled (const StsimTape *tape) { return tape->grad_enabled; }
void stsim_tape_set_training (StsimTape *tape, gboolean training) { tape->training = training; }
gboolean stsim_tape_get_training (const StsimTape *tape) { return tape->training; }
gsize stsim_tape_get_n_nodes (const StsimTape *tape) { return tape->n_nodes; }
void stsim_tape_set_keep_grads (StsimTape *tape, gboolean keep) { tape->keep_grads = keep; }

void stsim_tape_set_backward_hook (StsimTape *tape, const StsimBackwardHook *hook) { tape->hook = hook; }
StsimNode *stsim_tape_get_last (StsimTape *tape) { return tape->last; }

static void
param_input (StsimTensor *t, void (*fn) (const float *, gint64, gpointer), gpointer user_data)
{
  if (!t)
    return;
  StsimTensor *root = t->base ? t->base : t;
  if ((root->flags & STSIM_TENSOR_PARAM) && root->grad)
    fn (root->grad + (t->base ? t->base_offset : 0), t->numel, user_data);
}

void
stsim_node_foreach_param (StsimNode *node, void (*fn) (const float *grad, gint64 n, gpointer user_data),
                          gpointer user_data)
{
  for (int i = 0; i < 4; i++)
    param_input (node->in[i], fn, user_data);
  for (gsize i = 0; i < node->n_xin; i++)
    param_input (node->xin[i], fn, user_data);
}

gpointer
stsim_tape_alloc (StsimTape *tape, gsize bytes)
{
  return stsim_arena_alloc (tape->arena, bytes);
}

/* ---- tensors ------------------------------------------------------------ */

static gboolean
check_shape (int ndim, const gint64 *shape, gint64 *numel)
{
  if (ndim < 0 || ndim > STSIM_TENSOR_MAX_DIMS || (ndim > 0 && !shape))
    return FALSE;
  gint64 n = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0)
      return FALSE;
    n *= shape[d];
  }
  *numel = n;
  return TRUE;
}

static StsimTensor *
tensor_header (StsimTape *tape, int ndim, const gint64 *shape)
{
  gint64 numel;
  if (!check_shape (ndim, shape, &numel)) {
    g_critical ("stsim: invalid tensor shape (ndim %d)", ndim);
    return NULL;
  }
  StsimTensor *t = stsim_arena_alloc (tape->arena, sizeof (StsimTensor));
  memset (t, 0, sizeof *t);
  t->ndim = ndim;
  if (ndim > 0)
    memcpy (t->shape, shape, sizeof (gint64) * ndim);
  t->numel = numel;
  return t;
}

StsimTensor *
stsim_tensor_new (StsimTape *tape, int ndim, const gint64 *shape)
{
  g_return_val_if_fail (tape != NULL, NULL);
  StsimTensor *t = tensor_header (tape, ndim, shape);
  if (t)
    t->data = stsim_arena_alloc (tape->arena, (gsize) t->numel * sizeof (float));
  return t;
}

StsimTensor *
stsim_tensor_zeros (StsimTape *tape, int ndim, const gint64 *shape)
{
  StsimTensor *t = stsim_tensor_new (tape, ndim, shape);
  if (t)
    memset (t->data, 0, (gsize) t->numel * sizeof (float));
  return t;
}

StsimTensor *
stsim_tensor_from_data (StsimTape *tape, int ndim, const gint64 *shape, const float *data)
{
  g_return_val_if_fail (data != NULL, NULL);
  StsimTensor *t = stsim_tensor_new (tape, ndim, shape);
  if (t)
    memcpy (t->data, data, (gsize) t->numel * sizeof (float));
  return t;
}

StsimTensor *
stsim_tensor_wrap (StsimTape *tape, int ndim, const gint64 *shape, float *data)
{
  g_return_val_if_fail (tape != NULL && data != NULL, NULL);
  StsimTensor *t = tensor_header (tape, ndim, shape);
  if (t)
    t->data = data;
  return t;
}

StsimTensor *
stsim_tensor_new_2d (StsimTape *tape, gint64 rows, gint64 cols)
{
  gint64 shape[2] = { rows, cols };
  return stsim_tensor_new (tape, 2, shape);
}

StsimTensor *
stsim_tape_out (StsimTape *tape, int ndim, const gint64 *shape, gboolean requires_grad)
{
  StsimTensor *t = stsim_tensor_new (tape, ndim, shape);
  if (t && requires_grad)
    t->flags |= STSIM_TENSOR_REQUIRES_GRAD;
  return t;
}

StsimTensor *
stsim_tape_out_like (StsimTape *tape, StsimTensor *x, gboolean requires_grad)
{
  return stsim_tape_out (tape, x->ndim, x->shape, requires_grad);
}

/* A view shares data and (through its root) gradient storage; no node. */
static StsimTensor *
make_view (StsimTape *tape, StsimTensor *x, int ndim, const gint64 *shape, gint64 offset)
{
  StsimTensor *v = tensor_header (tape, ndim, shape);
  if (!v)
    return NULL;
  StsimTensor *root = x->base ? x->base : x;
  gint64 root_off = (x->base ? x->base_offset : 0) + offset;
  v->data = x->data + offset;
  v->base = root;
  v->base_offset = root_off;
  v->flags = (x->flags & (STSIM_TENSOR_REQUIRES_GRAD | STSIM_TENSOR_PARAM)) | STSIM_TENSOR_VIEW;
  if (!tape->grad_enabled)
    v->flags &= ~STSIM_TENSOR_REQUIRES_GRAD;
  if (root->grad)
    v->grad = root->grad + root_off;
  return v;
}

StsimTensor *
stsim_reshape (StsimTape *tape, StsimTensor *x, int ndim, const gint64 *shape)
{
  g_return_val_if_fail (tape != NULL && x != NULL, NULL);
  gint64 numel;
  if (!check_shape (ndim, shape, &numel) || numel != x->numel) {
    char b[64];
    g_critical ("stsim_reshape: cannot view %s as %d dims with a different element count",
                stsim_tensor_shape_string (x, b, sizeof b), ndim);
    return NULL;
  }
  return make_view (tape, x, ndim, shape, 0);
}

StsimTensor *
stsim_slice_rows (StsimTape *tape, StsimTensor *x, gint64 start, gint64 n)
{
  g_return_val_if_fail (tape != NULL && x != NULL, NULL);
  gint64 rows = stsim_tensor_rows (x), cols = stsim_tensor_cols (x);
  g_return_val_if_fail (start >= 0 && n >= 0 && start + n <= rows, NULL);
  gint64 shape[2] = { n, cols };
  return make_view (tape, x, 2, shape, start * cols);
}

/* ---- recording ------------------------------------------------------------ */

gboolean
stsim_tape_wants_grad (StsimTape *tape, StsimTensor *a, StsimTensor *b, StsimTensor *c)
{
  if (!tape->grad_enabled)
    return FALSE;
  return stsim_needs_grad (a) || stsim_needs_grad (b) || stsim_needs_grad (c);
}

StsimNode *
stsim_tape_record (StsimTape *tape, const char *name, StsimBackwardFunc backward,
                   StsimTensor *out, StsimTensor *a, StsimTensor *b, StsimTensor *c)
{
  StsimNode *n = stsim_arena_alloc (tape->arena, sizeof (StsimNode));
  memset (n, 0, sizeof *n);
  n->backward = backward;
  n->name = name;
  n->out = out;
  n->in[0] = a;
  n->in[1] = b;
  n->in[2] = c;
  n->prev = tape->last;
  tape->last = n;
  tape->n_nodes++;
  out->flags |= STSIM_TENSOR_REQUIRES_GRAD;
  return n;
}

float *
stsim_grad_acquire (StsimTape *tape, StsimTensor *t, float *beta)
{
  StsimTensor *root = t->base ? t->base : t;
  gint64 off = t->base ? t->base_offset : 0;
  if (root->flags & STSIM_TENSOR_PARAM) {
    /* Parameter gradients live in the store and always accumulate. */
    *beta = 1.0f;
    t->grad = root->grad + off;
    if (tape->hook && tape->hook->param_grad)
      tape->hook->param_grad (t->grad, t->numel, tape->hook->user_data);
    return t->grad;
  }
  if (!root->grad) {
    /* Pool memory: freed as soon as the producer's backward has run. */
    root->grad = stsim_arena_pool_alloc (tape->arena, (gsize) root->numel * sizeof (float));
    if (t->numel == root->numel) {
      *beta = 0.0f;   /* the caller writes all of it */
    } else {
      memset (root->grad, 0, (gsize) root->numel * sizeof (float));
      *beta = 1.0f;
    }
    root->grad_state = STSIM_GRAD_VALID;
  } else {
    *beta = 1.0f;
  }
  t->grad = root->grad + off;
  return t->grad;
}

float *
stsim_grad_acquire_acc (StsimTape *tape, StsimTensor *t)
{
  float beta;
  float *g = stsim_grad_acquire (tape, t, &beta);
  if (beta == 0.0f)
    memset (g, 0, (gsize) t->numel * sizeof (float));
  return g;
}

static gboolean
tensor_has_grad (StsimTensor *t)
{
  StsimTensor *root = t->base ? t->base : t;
  return root->grad != NULL && !(root->flags & STSIM_TENSOR_PARAM);
}

/* After @n's backward: its scratch goes (everything it took from the bump
 * arena since @mark: gradients come from the pool) and, unless the tape keeps
 * gradients, so does the gradient of its output, which no later node reads. */
static void
node_done (StsimTape *tape, StsimNode *n, const StsimArenaMark *mark)
{
  stsim_arena_release (tape->arena, mark);
  if (tape->keep_grads)
    return;
  StsimTensor *out = n->out;
  stsim_arena_pool_free (tape->arena, out->grad);
  out->grad = NULL;
  out->grad_state = STSIM_GRAD_NONE;
}

gboolean
stsim_tape_backward (StsimTape *tape, StsimTensor *out, const float *dout, GError **error)
{
  g_return_val_if_fail (tape != NULL, FALSE);
  if (!out) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "backward: the output tensor is NULL (an op before it failed; see the critical above)");
    return FALSE;
  }
  if (!stsim_needs_grad (out)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "backward: the output does not depend on anything that requires grad "
                 "(grad mode off, or only frozen parameters?)");
    return FALSE;
  }
  if (!dout && out->numel != 1) {
    char b[64];
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "backward: output %s is not a scalar; pass dLoss/dOut explicitly",
                 stsim_tensor_shape_string (out, b, sizeof b));
    return FALSE;
  }
  if (dout) {
    for (gint64 i = 0; i < out->numel; i++)
      if (!isfinite (dout[i])) {
        g_set_error (error, STSIM_ERROR, STSIM_ERROR_NUMERIC,
                     "backward: upstream gradient element %" G_GINT64_FORMAT " is not finite", i);
        return FALSE;
      }
  } else if (!isfinite (out->data[0])) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NUMERIC,
                 "backward: the loss is %g; check the inputs and the learning rate", out->data[0]);
    return FALSE;
  }
  float beta;
  float *g = stsim_grad_acquire (tape, out, &beta);
  for (gint64 i = 0; i < out->numel; i++) {
    float v = dout ? dout[i] : 1.0f;
    g[i] = beta == 0.0f ? v : g[i] + v;
  }
  gsize pos = tape->n_nodes;
  for (StsimNode *n = tape->last; n; n = n->prev) {
    pos--;
    /* A node whose output received no gradient does not lie on a path to
     * the loss. */
    if (tensor_has_grad (n->out)) {
      STSIM_PROF_BEGIN (t0);
      StsimArenaMark mark = stsim_arena_mark (tape->arena);
      n->backward (tape, n);
      node_done (tape, n, &mark);
      if (stsim_profile_on) {
        /* Interned once per op name; only when profiling. */
        g_autofree char *key = g_strconcat (n->name, ".bwd", NULL);
        stsim_profile_add (g_intern_string (key), stsim_prof_now () - t0, 0.0);
      }
    }
    if (tape->hook && tape->hook->node_done)
      tape->hook->node_done (pos, tape->hook->user_data);
  }
  return TRUE;
}
