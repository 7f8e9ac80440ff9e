/* ops-elementwise.c: add/sub/mul/scale/axpby, activations, exp/log, dropout.
 *
 * Shape legend: x, a, b, y all [..] with n elements (b may be [C] broadcast
 * over the rows of a [R, C] in add).
 *   add     y = a + b        da += dy ; db += dy (or Σ_rows dy)
 *   axpby   y = αa + βb      da += α·dy ; db += β·dy
 *   mul     y = a ⊙ b        da += dy ⊙ b ; db += dy ⊙ a
 *   gelu    y = x·Φ(x)       dx += dy ⊙ (Φ(x) + x·φ(x))
 *   tanh    y = tanh x       dx += dy ⊙ (1 - y²)
 *   relu    y = max(x, 0)    dx += dy ⊙ [y > 0]
 *   exp     y = eˣ           dx += dy ⊙ y
 *   log     y = log max(x,f) dx += dy / x where x > f
 *   dropout y = x ⊙ keep/(1-p)   dx += dy ⊙ keep/(1-p) */
#include "numerics-private.h"
#include "numerics-profile.h"

/* ---- binary ------------------------------------------------------------- */

typedef struct { float alpha, beta; gboolean broadcast; } BinCtx;

static void
axpby_backward (StsimTape *tape, StsimNode *node)
{
  BinCtx *c = node->ctx;
  StsimTensor *a = node->in[0], *b = node->in[1], *y = node->out;
  float beta;
  if (stsim_needs_grad (a)) {
    float *da = stsim_grad_acquire (tape, a, &beta);
    stsim_k_axpby (da, beta, y->grad, c->alpha, a->numel);
  }
  if (stsim_needs_grad (b)) {
    if (c->broadcast) {
      gint64 C = b->numel;
      float *tmp = stsim_tape_alloc (tape, (gsize) C * sizeof (float));
      memset (tmp, 0, (gsize) C * sizeof (float));
      stsim_k_colsum_acc (tape, tmp, y->grad, y->numel / C, C);
      float *db = stsim_grad_acquire (tape, b, &beta);
      stsim_k_axpby (db, beta, tmp, c->beta, C);
    } else {
      float *db = stsim_grad_acquire (tape, b, &beta);
      stsim_k_axpby (db, beta, y->grad, c->beta, b->numel);
    }
  }
}

static StsimTensor *
axpby_impl (StsimTape *tape, const char *name, float alpha, StsimTensor *a, float beta_, StsimTensor *b, gboolean allow_bc)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!a || !b)
    return NULL;
  gboolean bc = FALSE;
  if (!stsim_tensor_same_shape (a, b)) {
    bc = allow_bc && a->ndim >= 1 && b->numel == stsim_tensor_cols (a) && b->ndim <= 1;
    if (!bc) {
      char b1[64], b2[64];
      g_critical ("stsim_%s: shapes %s and %s differ", name,
                  stsim_tensor_shape_string (a, b1, sizeof b1), stsim_tensor_shape_string (b, b2, sizeof b2));
      return NULL;
    }
  }
  gboolean rg = stsim_tape_wants_grad (tape, a, b, NULL);
  StsimTensor *y = stsim_tape_out_like (tape, a, rg);
  if (bc) {
    gint64 C = b->numel, R = a->numel / MAX (C, 1);
#pragma omp parallel for schedule(static) if (a->numel > STSIM_PAR_MIN)
    for (gint64 r = 0; r < R; r++)
      for (gint64 c = 0; c < C; c++)
        y->data[r * C + c] = alpha * a->data[r * C + c] + beta_ * b->data[c];
  } else {
    const float *ad = a->data, *bd = b->data;
    float *yd = y->data;
    gint64 n = a->numel;
#pragma omp parallel for simd schedule(static) if (n > STSIM_PAR_MIN)
    for (gint64 i = 0; i < n; i++)
      yd[i] = alpha * ad[i] + beta_ * bd[i];
  }
  if (rg) {
    StsimNode *n = stsim_tape_record (tape, name, axpby_backward, y, a, b, NULL);
    BinCtx *c = stsim_tape_alloc (tape, sizeof (BinCtx));
    *c = (BinCtx) { alpha, beta_, bc };
    n->ctx = c;
  }
  return y;
}

StsimTensor *stsim_add (StsimTape *tape, StsimTensor *a, StsimTensor *b) { return axpby_impl (tape, "add", 1.0f, a, 1.0f, b, TRUE); }
StsimTensor *stsim_sub (StsimTape *tape, StsimTensor *a, StsimTensor *b) { return axpby_impl (tape, "sub", 1.0f, a, -1.0f, b, FALSE); }
StsimTensor *stsim_axpby (StsimTape *tape, float alpha, StsimTensor *a, float beta, StsimTensor *b)
{
  return axpby_impl (tape, "axpby", alpha, a, beta, b, FALSE);
}

static void
mul_backward (StsimTape *tape, StsimNode *node)
{
  StsimTensor *a = node->in[0], *b = node->in[1], *y = node->out;
  gint64 n = y->numel;
  float beta;
  if (stsim_needs_grad (a)) {
    float *da = stsim_grad_acquire (tape, a, &beta);
    for (gint64 i = 0; i < n; i++)
      da[i] = (beta == 0.0f ? 0.0f : da[i]) + y->grad[i] * b->data[i];
  }
  if (stsim_needs_grad (b)) {
    float *db = stsim_grad_acquire (tape, b, &beta);
    for (gint64 i = 0; i < n; i++)
      db[i] = (beta == 0.0f ? 0.0f : db[i]) + y->grad[i] * a->data[i];
  }
}

StsimTensor *
stsim_mul (StsimTape *tape, StsimTensor *a, StsimTensor *b)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!a || !b)
    return NULL;
  if (!stsim_tensor_same_shape (a, b)) {
    char b1[64], b2[64];
    g_critical ("stsim_mul: shapes %s and %s differ",
                stsim_tensor_shape_string (a, b1, sizeof b1), stsim_tensor_shape_string (b, b2, sizeof b2));
    return NULL;
  }
  gboolean rg = stsim_tape_wants_grad (tape, a, b, NULL);
  StsimTensor *y = stsim_tape_out_like (tape, a, rg);
  for (gint64 i = 0; i < a->numel; i++)
    y->data[i] = a->data[i] * b->data[i];
  if (rg)
    stsim_tape_record (tape, "mul", mul_backward, y, a, b, NULL);
  return y;
}

/* ---- unary -------------------------------------------------------------- */

typedef enum { U_SCALE, U_GELU, U_TANH, U_RELU, U_EXP, U_LOG } UnaryKind;
typedef struct { UnaryKind kind; float param; } UnaryCtx;

static void
unary_backward (StsimTape *tape, StsimNode *node)
{
  UnaryCtx *c = node->ctx;
  StsimTensor *x = node->in[0], *y = node->out;
  gint64 n = x->numel;
  float beta;
  float *dx = stsim_grad_acquire (tape, x, &beta);
  const float *dy = y->grad, *xd = x->data, *yd = y->data;
  switch (c->kind) {
  case U_SCALE:
    stsim_k_axpby (dx, beta, dy, c->param, n);
    break;
  case U_GELU:
    stsim_k_gelu_backward (dx, beta, dy, xd, n);
    break;
  case U_TANH:
    for (gint64 i = 0; i < n; i++)
      dx[i] = (beta == 0.0f ? 0.0f : dx[i]) + dy[i] * (1.0f - yd[i] * yd[i]);
    break;
  case U_RELU:
    for (gint64 i = 0; i < n; i++)
      dx[i] = (beta == 0.0f ? 0.0f : dx[i]) + (yd[i] > 0.0f ? dy[i] : 0.0f);
    break;
  case U_EXP:
    for (gint64 i = 0; i < n; i++)
      dx[i] = (beta == 0.0f ? 0.0f : dx[i]) + dy[i] * yd[i];
    break;
  case U_LOG:
    for (gint64 i = 0; i < n; i++)
      dx[i] = (beta == 0.0f ? 0.0f : dx[i]) + (xd[i] > c->param ? dy[i] / xd[i] : 0.0f);
    break;
  }
}

static StsimTensor *
unary_impl (StsimTape *tape, StsimTensor *x, UnaryKind kind, float param, const char *name)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!x)
    return NULL;
  gboolean rg = stsim_tape_wants_grad (tape, x, NULL, NULL);
  StsimTensor *y = stsim_tape_out_like (tape, x, rg);
  gint64 n = x->numel;
  const float *xd = x->data;
  float *yd = y->data;
  switch (kind) {
  case U_SCALE:
    stsim_k_axpby (yd, 0.0f, xd, param, n);
    break;
  case U_GELU:
    stsim_k_gelu (yd, xd, n);
    break;
  case U_TANH:
    for (gint64 i = 0; i < n; i++)
      yd[i] = tanhf (xd[i]);
    break;
  case U_RELU:
    for (gint64 i = 0; i < n; i++)
      yd[i] = xd[i] > 0.0f ? xd[i] : 0.0f;
    break;
  case U_EXP:
    for (gint64 i = 0; i < n; i++)
      yd[i] = expf (xd[i]);
    break;
  case U_LOG:
    for (gint64 i = 0; i < n; i++)
      yd[i] = logf (xd[i] > param ? xd[i] : param);
    break;
  }
  if (rg) {
    StsimNode *nd = stsim_tape_record (tape, name, unary_backward, y, x, NULL, NULL);
    UnaryCtx *c = stsim_tape_alloc (tape, sizeof (UnaryCtx));
    *c = (UnaryCtx) { kind, param };
    nd->ctx = c;
  }
  return y;
}

StsimTensor *stsim_scale (StsimTape *tape, StsimTensor *x, float alpha) { return unary_impl (tape, x, U_SCALE, alpha, "scale"); }
StsimTensor *stsim_gelu (StsimTape *tape, StsimTensor *x) { return unary_impl (tape, x, U_GELU, 0, "gelu"); }
StsimTensor *stsim_tanh (StsimTape *tape, StsimTensor *x) { return unary_impl (tape, x, U_TANH, 0, "tanh"); }
StsimTensor *stsim_relu (StsimTape *tape, StsimTensor *x) { return unary_impl (tape, x, U_RELU, 0, "relu"); }
StsimTensor *stsim_exp (StsimTape *tape, StsimTensor *x) { return unary_impl (tape, x, U_EXP, 0, "exp"); }
StsimTensor *stsim_log (StsimTape *tape, StsimTensor *x, float floor) { return unary_impl (tape, x, U_LOG, floor, "log"); }

/* ---- dropout ------------------------------------------------------------ */

typedef struct {
  const guint8 *keep;  /* given mask (copied), or NULL: regenerate from the RNG */
  const StsimRowPlace *places;  /* the tape's row places when drawn, or NULL */
  gsize   n_places;
  guint64 step;
  guint32 op;
  float   p;
} DropCtx;

/* FALSE (with a critical) unless the places cover exactly the @rows rows of
 * the tensor, in order and without gaps. */
static gboolean
places_cover (const StsimRowPlace *pl, gsize n_pl, gint64 rows)
{
  gint64 end = 0;
  for (gsize i = 0; i < n_pl && end >= 0; i++)
    end = pl[i].local_row == end && pl[i].rows >= 0 && pl[i].global_rows >= pl[i].rows ? end + pl[i].rows : -1;
  if (end != rows) {
    g_critical ("stsim_dropout: the tape's %" G_GSIZE_FORMAT " row places do not cover the tensor's %" G_GINT64_FORMAT
                " rows in order (set them for this layout, or clear them)", n_pl, rows);
    return FALSE;
  }
  return TRUE;
}

/* The mask of an [n / cols, cols] tensor: one process's draw, or with
 * places each sequence's elements at their single-process offsets (one
 * vectorised call per sequence). */
static void
dropout_draw (guint64 seed, const DropCtx *c, gint64 n, gint64 cols, guint8 *keep)
{
  if (!c->places) {
    stsim_dropout_keep (seed, c->step, c->op, 0, n, c->p, keep);
    return;
  }
  for (gsize i = 0; i < c->n_places; i++) {
    const StsimRowPlace *pl = &c->places[i];
    stsim_dropout_keep (seed, c->step, c->op, pl->global_row * cols, pl->rows * cols, c->p, keep + pl->local_row * cols);
  }
}

static void
dropout_backward (StsimTape *tape, StsimNode *node)
{
  DropCtx *c = node->ctx;
  StsimTensor *x = node->in[0], *y = node->out;
  gint64 n = x->numel;
  const guint8 *keep = c->keep;
  if (!keep) {
    guint8 *k = stsim_tape_alloc (tape, (gsize) MAX (n, 1));
    dropout_draw (tape->seed, c, n, n / MAX (stsim_tensor_rows (x), 1), k);
    keep = k;
  }
  float s = 1.0f / (1.0f - c->p), beta;
  float *dx = stsim_grad_acquire (tape, x, &beta);
  stsim_k_mask_scale (dx, beta, y->grad, keep, s, n);
}

static StsimTensor *
dropout_impl (StsimTape *tape, StsimTensor *x, const guint8 *given, float p)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!x)
    return NULL;
  if (!(p >= 0.0f && p < 1.0f)) {
    g_critical ("stsim_dropout: p = %g must be in [0, 1)", p);
    return NULL;
  }
  if (p == 0.0f || (!given && !tape->training))
    return x;
  gint64 n = x->numel, rows = stsim_tensor_rows (x);
  if (!given && tape->places && !places_cover (tape->places, tape->n_places, rows))
    return NULL;
  gboolean rg = stsim_tape_wants_grad (tape, x, NULL, NULL);
  DropCtx *c = stsim_tape_alloc (tape, sizeof (DropCtx));
  memset (c, 0, sizeof *c);
  c->p = p;
  c->step = tape->step;
  guint8 *keep;
  if (given) {
    keep = stsim_tape_alloc (tape, (gsize) MAX (n, 1));
    memcpy (keep, given, (gsize) n);
    c->keep = keep;
  } else {
    c->op = tape->op_counter++;
    c->places = stsim_tape_places_copy (tape);
    c->n_places = c->places ? tape->n_places : 0;
    keep = stsim_tape_alloc (tape, (gsize) MAX (n, 1));
    dropout_draw (tape->seed, c, n, n / MAX (rows, 1), keep);
    c->keep = keep;   /* n bytes: cheaper to keep than to regenerate */
  }
  StsimTensor *y = stsim_tape_out_like (tape, x, rg);
  float s = 1.0f / (1.0f - p);
  stsim_k_mask_scale (y->data, 0.0f, x->data, keep, s, n);
  if (rg) {
    StsimNode *nd = stsim_tape_record (tape, "dropout", dropout_backward, y, x, NULL, NULL);
    nd->ctx = c;
  }
  return y;
}

StsimTensor *
stsim_dropout (StsimTape *tape, StsimTensor *x, float p)
{
  STSIM_PROF_BEGIN (t0);
  StsimTensor *y = dropout_impl (tape, x, NULL, p);
  STSIM_PROF_END (t0, "dropout.fwd", 0.0);
  return y;
}

StsimTensor *
stsim_dropout_with_mask (StsimTape *tape, StsimTensor *x, const guint8 *keep, float p)
{
  g_return_val_if_fail (keep != NULL, NULL);
  return dropout_impl (tape, x, keep, p);
}
