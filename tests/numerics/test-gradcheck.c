/* test-gradcheck.c: every autograd op's backward against central finite
 * differences of an independent double-precision reference (gradcheck.h).
 * Bounds: forward 2e-6 and gradient 1e-5 relative to the largest value,
 * unless a case says otherwise; float32 rounding of the library gives ~1e-7,
 * while any mistake in a backward formula shows up at 1e-2 or worse. */
#include "gradcheck.h"

#define FWD 2e-6
#define GRD 1e-5

static gint64 S1[1], S2[2], S3[3];
#define SH1(a) (S1[0] = (a), S1)
#define SH2(a, b) (S2[0] = (a), S2[1] = (b), S2)
#define SH3(a, b, c) (S3[0] = (a), S3[1] = (b), S3[2] = (c), S3)

/* ---- linear ------------------------------------------------------------- */
typedef struct { gint64 N, In, O; gboolean bias; StsimActivation act; } LinCase;

static StsimTensor *
b_linear (StsimTape *t, StsimTensor **in, gpointer u)
{
  LinCase *c = u;
  return stsim_linear_act (t, in[0], in[1], c->bias ? in[2] : NULL, c->act);
}

static void
r_linear (double *const *x, double *y, gpointer u)
{
  LinCase *c = u;
  for (gint64 n = 0; n < c->N; n++)
    for (gint64 o = 0; o < c->O; o++) {
      double s = c->bias ? x[2][o] : 0.0;
      for (gint64 i = 0; i < c->In; i++)
        s += x[0][n * c->In + i] * x[1][o * c->In + i];
      switch (c->act) {
      case STSIM_ACT_GELU: s = gc_gelu (s); break;
      case STSIM_ACT_TANH: s = tanh (s); break;
      case STSIM_ACT_RELU: s = s > 0 ? s : 0; break;
      default: break;
      }
      y[n * c->O + o] = s;
    }
}

static void
run_linear (const char *name, LinCase c)
{
  GcInputs in;
  gc_inputs_init (&in);
  gc_add (&in, 2, SH2 (c.N, c.In), TRUE, -1, 1, 1);
  gc_add (&in, 2, SH2 (c.O, c.In), TRUE, -0.5, 0.5, 2);
  if (c.bias)
    gc_add (&in, 1, SH1 (c.O), TRUE, -0.5, 0.5, 3);
  g_assert_true (gc_check (name, &in, b_linear, r_linear, &c, FWD, GRD));
  gc_inputs_clear (&in);
}

static void test_linear (void) { run_linear ("linear", (LinCase) { 7, 5, 4, TRUE, STSIM_ACT_NONE }); }
static void test_linear_nobias (void) { run_linear ("linear (no bias)", (LinCase) { 6, 3, 5, FALSE, STSIM_ACT_NONE }); }
static void test_linear_gelu (void) { run_linear ("linear+gelu", (LinCase) { 6, 5, 7, TRUE, STSIM_ACT_GELU }); }
static void test_linear_tanh (void) { run_linear ("linear+tanh", (LinCase) { 5, 4, 3, TRUE, STSIM_ACT_TANH }); }

/* ReLU: keep pre-activations away from the kink so differences are clean. */
static StsimTensor *b_relu (StsimTape *t, StsimTensor **in, gpointer u) { return stsim_relu (t, in[0]); }
static void r_relu (double *const *x, double *y, gpointer u) { for (int i = 0; i < 40; i++) y[i] = x[0][i] > 0 ? x[0][i] : 0; }

static void
test_relu (void)
{
  GcInputs in;
  gc_inputs_init (&in);
  int i = gc_add (&in, 2, SH2 (5, 8), TRUE, -1, 1, 4);
  for (int j = 0; j < 40; j++)
    if (fabs (in.x[i][j]) < 0.05)
      in.x[i][j] = 0.25;
  g_assert_true (gc_check ("relu", &in, b_relu, r_relu, NULL, FWD, GRD));
  gc_inputs_clear (&in);
}

/* ---- matmul --------------------------------------------------------------- */
typedef struct { gint64 B, M, K, N; gboolean ta, tb, shared; } MmCase;

static StsimTensor *b_mm (StsimTape *t, StsimTensor **in, gpointer u) { MmCase *c = u; return stsim_matmul (t, in[0], in[1], c->ta, c->tb); }

static void
r_mm (double *const *x, double *y, gpointer u)
{
  MmCase *c = u;
  for (gint64 b = 0; b < c->B; b++)
    for (gint64 m = 0; m < c->M; m++)
      for (gint64 n = 0; n < c->N; n++) {
        double s = 0;
        for (gint64 k = 0; k < c->K; k++) {
          double a = c->ta ? x[0][b * c->M * c->K + k * c->M + m] : x[0][b * c->M * c->K + m * c->K + k];
          const double *bb = x[1] + (c->shared ? 0 : b * c->K * c->N);
          double v = c->tb ? bb[n * c->K + k] : bb[k * c->N + n];
          s += a * v;
        }
        y[b * c->M * c->N + m * c->N + n] = s;
      }
}

static void
run_mm (const char *name, MmCase c)
{
  GcInputs in;
  gc_inputs_init (&in);
  gc_add (&in, 3, c.ta ? SH3 (c.B, c.K, c.M) : SH3 (c.B, c.M, c.K), TRUE, -1, 1, 5);
  if (c.shared)
    gc_add (&in, 2, c.tb ? SH2 (c.N, c.K) : SH2 (c.K, c.N), TRUE, -1, 1, 6);
  else
    gc_add (&in, 3, c.tb ? SH3 (c.B, c.N, c.K) : SH3 (c.B, c.K, c.N), TRUE, -1, 1, 6);
  g_assert_true (gc_check (name, &in, b_mm, r_mm, &c, FWD, GRD));
  gc_inputs_clear (&in);
}

static void
test_matmul (void)
{
  run_mm ("matmul", (MmCase) { 2, 3, 4, 5, FALSE, FALSE, FALSE });
  run_mm ("matmul a^T", (MmCase) { 2, 3, 4, 5, TRUE, FALSE, FALSE });
  run_mm ("matmul b^T", (MmCase) { 3, 2, 4, 3, FALSE, TRUE, FALSE });
  run_mm ("matmul a^T b^T", (MmCase) { 2, 4, 3, 2, TRUE, TRUE, FALSE });
  run_mm ("matmul shared b", (MmCase) { 3, 2, 4, 3, FALSE, FALSE, TRUE });
}

/* ---- elementwise ------------------------------------------------------------ */
typedef enum { E_ADD, E_ADD_BC, E_SUB, E_MUL, E_SCALE, E_AXPBY, E_GELU, E_TANH, E_EXP, E_LOG } EwKind;
typedef struct { EwKind k; gint64 R, C; } EwCase;

static StsimTensor *
b_ew (StsimTape *t, StsimTensor **in, gpointer u)
{
  EwCase *c = u;
  switch (c->k) {
  case E_ADD: case E_ADD_BC: return stsim_add (t, in[0], in[1]);
  case E_SUB: return stsim_sub (t, in[0], in[1]);
  case E_MUL: return stsim_mul (t, in[0], in[1]);
  case E_SCALE: return stsim_scale (t, in[0], -1.75f);
  case E_AXPBY: return stsim_axpby (t, 0.5f, in[0], -2.0f, in[1]);
  case E_GELU: return stsim_gelu (t, in[0]);
  case E_TANH: return stsim_tanh (t, in[0]);
  case E_EXP: return stsim_exp (t, in[0]);
  case E_LOG: return stsim_log (t, in[0], 1e-6f);
  }
  return NULL;
}

static void
r_ew (double *const *x, double *y, gpointer u)
{
  EwCase *c = u;
  for (gint64 i = 0; i < c->R * c->C; i++) {
    double a = x[0][i];
    switch (c->k) {
    case E_ADD: y[i] = a + x[1][i]; break;
    case E_ADD_BC: y[i] = a + x[1][i % c->C]; break;
    case E_SUB: y[i] = a - x[1][i]; break;
    case E_MUL: y[i] = a * x[1][i]; break;
    case E_SCALE: y[i] = -1.75 * a; break;
    case E_AXPBY: y[i] = 0.5 * a - 2.0 * x[1][i]; break;
    case E_GELU: y[i] = gc_gelu (a); break;
    case E_TANH: y[i] = tanh (a); break;
    case E_EXP: y[i] = exp (a); break;
    case E_LOG: y[i] = log (a); break;
    }
  }
}

static void
run_ew (const char *name, EwKind k, double lo, double hi)
{
  EwCase c = { k, 4, 6 };
  GcInputs in;
  gc_inputs_init (&in);
  gc_add (&in, 2, SH2 (c.R, c.C), TRUE, lo, hi, 7);
  if (k == E_ADD_BC)
    gc_add (&in, 1, SH1 (c.C), TRUE, lo, hi, 8);
  else if (k == E_ADD || k == E_SUB || k == E_MUL || k == E_AXPBY)
    gc_add (&in, 2, SH2 (c.R, c.C), TRUE, lo, hi, 8);
  g_assert_true (gc_check (name, &in, b_ew, r_ew, &c, FWD, GRD));
  gc_inputs_clear (&in);
}

static void
test_elementwise (void)
{
  run_ew ("add", E_ADD, -2, 2);
  run_ew ("add (broadcast row)", E_ADD_BC, -2, 2);
  run_ew ("sub", E_SUB, -2, 2);
  run_ew ("mul", E_MUL, -2, 2);
  run_ew ("scale", E_SCALE, -2, 2);
  run_ew ("axpby", E_AXPBY, -2, 2);
  run_ew ("gelu", E_GELU, -4, 4);
  run_ew ("tanh", E_TANH, -2, 2);
  run_ew ("exp", E_EXP, -2, 2);
  run_ew ("log", E_LOG, 0.1, 3);
}

/* GELU over a wide range against erf() in double, value and derivative. */
static void
test_gelu_accuracy (void)
{
  g_autoptr(StsimTape) t = stsim_tape_new (1, 0);
  const gint64 n = 4001;
  StsimTensor *x = stsim_tensor_new (t, 1, SH1 (n));
  for (gint64 i = 0; i < n; i++)
    x->data[i] = (float) (-10.0 + 20.0 * i / (n - 1));
  stsim_tensor_set_requires_grad (x, TRUE);
  StsimTensor *y = stsim_gelu (t, x);
  g_autofree float *ones = g_new (float, n);
  for (gint64 i = 0; i < n; i++)
    ones[i] = 1.0f;
  g_assert_true (stsim_tape_backward (t, y, ones, NULL));
  double ey = 0, ed = 0;
  for (gint64 i = 0; i < n; i++) {
    double xv = x->data[i];
    double phi = 0.5 * (1 + erf (xv / sqrt (2.0))), pdf = exp (-0.5 * xv * xv) / sqrt (2 * G_PI);
    ey = MAX (ey, fabs (y->data[i] - xv * phi) / MAX (fabs (xv * phi), 1e-3));
    ed = MAX (ed, fabs (x->grad[i] - (phi + xv * pdf)));
  }
  g_test_message ("gelu on [-10, 10]: max rel value err %.2e, max abs derivative err %.2e (bounds 1e-5, 1e-6)", ey, ed);
  g_assert_cmpfloat (ey, <, 1e-5);
  g_assert_cmpfloat (ed, <, 1e-6);
}

/* ---- dropout with a fixed mask -------------------------------------------------- */
static guint8 drop_mask[24];

static StsimTensor *b_drop (StsimTape *t, StsimTensor **in, gpointer u) { return stsim_dropout_with_mask (t, in[0], drop_mask, 0.25f); }
static void r_drop (double *const *x, double *y, gpointer u) { for (int i = 0; i < 24; i++) y[i] = drop_mask[i] ? x[0][i] / 0.75 : 0; }

static void
test_dropout_mask (void)
{
  for (int i = 0; i < 24; i++)
    drop_mask[i] = (i * 7 + 3) % 4 != 0;
  GcInputs in;
  gc_inputs_init (&in);
  gc_add (&in, 2, SH2 (4, 6), TRUE, -1, 1, 9);
  g_assert_true (gc_check ("dropout (given mask)", &in, b_drop, r_drop, NULL, FWD, GRD));
  gc_inputs_clear (&in);
}

/* ---- layer norm ----------------------------------------------------------------- */
typedef struct { gint64 N, C; gboolean res; double eps; } LnCase;

static StsimTensor *
b_ln (StsimTape *t, StsimTensor **in, gpointer u)
{
  LnCase *c = u;
  if (c->res)
    return stsim_add_layer_norm (t, in[0], in[3], in[1], in[2], (float) c->eps);
  return stsim_layer_norm (t, in[0], in[1], in[2], (float) c->eps);
}

static void
r_ln (double *const *x, double *y, gpointer u)
{
  LnCase *c = u;
  for (gint64 r = 0; r < c->N; r++) {
    double s[64], m = 0, v = 0;
    for (gint64 k = 0; k < c->C; k++) {
      s[k] = x[0][r * c->C + k] + (c->res ? x[3][r * c->C + k] : 0);
      m += s[k];
    }
    m /= c->C;
    for (gint64 k = 0; k < c->C; k++)
      v += (s[k] - m) * (s[k] - m);
    v /= c->C;
    for (gint64 k = 0; k < c->C; k++)
      y[r * c->C + k] = (s[k] - m) / sqrt (v + c->eps) * x[1][k] + x[2][k];
  }
}

static void
run_ln (const char *name, LnCase c)
{
  GcInputs in;
  gc_inputs_init (&in);
  gc_add (&in, 2, SH2 (c.N, c.C), TRUE, -2, 2, 10);
  gc_add (&in, 1, SH1 (c.C), TRUE, 0.5, 1.5, 11);
  gc_add (&in, 1, SH1 (c.C), TRUE, -0.5, 0.5, 12);
  if (c.res)
    gc_add (&in, 2, SH2 (c.N, c.C), TRUE, -1, 1, 13);
  g_assert_true (gc_check (name, &in, b_ln, r_ln, &c, FWD, GRD));
  gc_inputs_clear (&in);
}

static void
test_layer_norm (void)
{
  run_ln ("layer_norm eps 1e-12", (LnCase) { 5, 16, FALSE, 1e-12 });
  run_ln ("layer_norm eps 1e-5", (LnCase) { 70, 8, FALSE, 1e-5 });   /* > one row block */
  run_ln ("add_layer_norm", (LnCase) { 6, 12, TRUE, 1e-12 });
}

/* ---- batch norm ------------------------------------------------------------------ */
typedef struct { gint64 N, C; gboolean affine; } BnCase;

static StsimTensor *
b_bn (StsimTape *t, StsimTensor **in, gpointer u)
{
  BnCase *c = u;
  return stsim_batch_norm (t, in[0], c->affine ? in[1] : NULL, c->affine ? in[2] : NULL, NULL, NULL, 0.1f, 1e-5f);
}

static void
r_bn (double *const *x, double *y, gpointer u)
{
  BnCase *c = u;
  for (gint64 k = 0; k < c->C; k++) {
    double m = 0, v = 0;
    for (gint64 r = 0; r < c->N; r++)
      m += x[0][r * c->C + k];
    m /= c->N;
    for (gint64 r = 0; r < c->N; r++)
      v += pow (x[0][r * c->C + k] - m, 2);
    v /= c->N;
    for (gint64 r = 0; r < c->N; r++) {
      double xh = (x[0][r * c->C + k] - m) / sqrt (v + 1e-5);
      y[r * c->C + k] = c->affine ? xh * x[1][k] + x[2][k] : xh;
    }
  }
}

static void
run_bn (const char *name, BnCase c)
{
  GcInputs in;
  gc_inputs_init (&in);
  gc_add (&in, 2, SH2 (c.N, c.C), TRUE, -2, 2, 14);
  if (c.affine) {
    gc_add (&in, 1, SH1 (c.C), TRUE, 0.5, 1.5, 15);
    gc_add (&in, 1, SH1 (c.C), TRUE, -0.5, 0.5, 16);
  }
  g_assert_true (gc_check (name, &in, b_bn, r_bn, &c, FWD, GRD));
  gc_inputs_clear (&in);
}

static void
test_batch_norm (void)
{
  run_bn ("batch_norm affine", (BnCase) { 8, 5, TRUE });
  run_bn ("batch_norm no affine", (BnCase) { 6, 7, FALSE });
}

/* Running statistics: momentum 0.1 with the UNBIASED variance (PyTorch). */
static void
test_batch_norm_running (void)
{
  g_autoptr(StsimTape) t = stsim_tape_new (1, 0);
  float x[6] = { 1, 10, 2, 20, 6, 60 };   /* [3, 2] */
  float rm[2] = { 0, 0 }, rv[2] = { 1, 1 };
  StsimTensor *tx = stsim_tensor_from_data (t, 2, SH2 (3, 2), x);
  g_assert_nonnull (stsim_batch_norm (t, tx, NULL, NULL, rm, rv, 0.1f, 1e-5f));
  /* col 0: mean 3, unbiased var ((4+1+9)/2) = 7 ; col 1: mean 30, var 700 */
  g_assert_cmpfloat_with_epsilon (rm[0], 0.3, 1e-6);
  g_assert_cmpfloat_with_epsilon (rm[1], 3.0, 1e-5);
  g_assert_cmpfloat_with_epsilon (rv[0], 0.9 + 0.7, 1e-6);
  g_assert_cmpfloat_with_epsilon (rv[1], 0.9 + 70.0, 1e-4);
}

/* ---- l2 normalise, cosine matrix ------------------------------------------------- */
typedef struct { gint64 N, M, D; } CosCase;

static StsimTensor *b_l2 (StsimTape *t, StsimTensor **in, gpointer u) { return stsim_l2_normalize (t, in[0], 1e-8f); }

static void
r_l2 (double *const *x, double *y, gpointer u)
{
  CosCase *c = u;
  for (gint64 r = 0; r < c->N; r++) {
    double s = 0;
    for (gint64 k = 0; k < c->D; k++)
      s += x[0][r * c->D + k] * x[0][r * c->D + k];
    double n = MAX (sqrt (s), 1e-8);
    for (gint64 k = 0; k < c->D; k++)
      y[r * c->D + k] = x[0][r * c->D + k] / n;
  }
}

static StsimTensor *b_cos (StsimTape *t, StsimTensor **in, gpointer u) { return stsim_cosine_matrix (t, in[0], in[1]); }

static void
r_cos (double *const *x, double *y, gpointer u)
{
  CosCase *c = u;
  for (gint64 i = 0; i < c->N; i++)
    for (gint64 j = 0; j < c->M; j++) {
      double d = 0, na = 0, nb = 0;
      for (gint64 k = 0; k < c->D; k++) {
        d += x[0][i * c->D + k] * x[1][j * c->D + k];
        na += x[0][i * c->D + k] * x[0][i * c->D + k];
        nb += x[1][j * c->D + k] * x[1][j * c->D + k];
      }
      y[i * c->M + j] = d / (MAX (sqrt (na), 1e-8) * MAX (sqrt (nb), 1e-8));
    }
}

static void
test_cosine (void)
{
  CosCase c = { 5, 4, 6 };
  GcInputs in;
  gc_inputs_init (&in);
  gc_add (&in, 2, SH2 (c.N, c.D), TRUE, -1, 1, 17);
  g_assert_true (gc_check ("l2_normalize", &in, b_l2, r_l2, &c, FWD, GRD));
  gc_add (&in, 2, SH2 (c.M, c.D), TRUE, -1, 1, 18);
  g_assert_true (gc_check ("cosine_matrix", &in, b_cos, r_cos, &c, FWD, GRD));
  gc_inputs_clear (&in);
}

/* ---- softmax family and losses ------------------------------------------------- */
typedef struct { gint64 N, C; int kind; gint32 *t; float *w; float *q; } SmCase;

static StsimTensor *
b_sm (StsimTape *t, StsimTensor **in, gpointer u)
{
  SmCase *c = u;
  switch (c->kind) {
  case 0: return stsim_softmax (t, in[0]);
  case 1: return stsim_log_softmax (t, in[0]);
  case 2: return stsim_cross_entropy (t, in[0], c->t, -100);
  case 3: return stsim_cross_entropy_2class (t, in[0], c->t, c->w);
  case 4: return stsim_soft_cross_entropy (t, in[0], c->q, TRUE);
  case 5: return stsim_logcumsumexp_rev (t, in[0]);
  }
  return NULL;
}

static double
lse_d (const double *x, gint64 C, gint64 skip)
{
  double m = -INFINITY, s = 0;
  for (gint64 j = 0; j < C; j++)
    if (j != skip)
      m = MAX (m, x[j]);
  for (gint64 j = 0; j < C; j++)
    if (j != skip)
      s += exp (x[j] - m);
  return m + log (s);
}

static void
r_sm (double *const *x, double *y, gpointer u)
{
  SmCase *c = u;
  double loss = 0, wsum = 0;
  for (gint64 r = 0; r < c->N; r++) {
    const double *xr = x[0] + r * c->C;
    switch (c->kind) {
    case 0: case 1: {
      double l = lse_d (xr, c->C, -1);
      for (gint64 j = 0; j < c->C; j++)
        y[r * c->C + j] = c->kind ? xr[j] - l : exp (xr[j] - l);
      break;
    }
    case 2: case 3: {
      double w = c->kind == 3 && c->w ? c->w[r] : 1.0;
      if (c->t[r] == -100)
        break;
      loss += w * (lse_d (xr, c->C, -1) - xr[c->t[r]]);
      wsum += w;
      break;
    }
    case 4: {
      double l = lse_d (xr, c->C, r);
      for (gint64 j = 0; j < c->C; j++)
        if (j != r)
          loss -= c->q[r * c->C + j] * (xr[j] - l);
      wsum = c->N;
      break;
    }
    case 5:
      for (gint64 k = 0; k < c->C; k++)
        y[r * c->C + k] = lse_d (xr + k, c->C - k, -1);
      break;
    }
  }
  if (c->kind >= 2 && c->kind <= 4)
    y[0] = loss / wsum;
}

static void
run_sm (const char *name, SmCase c, double lo, double hi)
{
  GcInputs in;
  gc_inputs_init (&in);
  gc_add (&in, 2, SH2 (c.N, c.C), TRUE, lo, hi, 19);
  g_assert_true (gc_check (name, &in, b_sm, r_sm, &c, FWD, GRD));
  gc_inputs_clear (&in);
}

static void
test_softmax_losses (void)
{
  run_sm ("softmax", (SmCase) { 4, 7, 0 }, -3, 3);
  run_sm ("log_softmax", (SmCase) { 4, 7, 1 }, -3, 3);
  gint32 t[6] = { 2, -100, 0, 4, -100, 1 };
  run_sm ("cross_entropy ignore_index", (SmCase) { 6, 5, 2, t }, -3, 3);
  gint32 l[7] = { 0, 1, 1, 0, 1, 0, 0 };
  float w[7] = { 1, 0, 1, 1, 0.5f, 1, 0 };
  run_sm ("cross_entropy_2class mask", (SmCase) { 7, 2, 3, l, w }, -3, 3);
  run_sm ("cross_entropy_2class mean", (SmCase) { 7, 2, 3, l, NULL }, -3, 3);
  /* ListNet: teacher distributions over j != i, student logits at 1/0.05 scale */
  float q[25];
  for (int r = 0; r < 5; r++) {
    double s = 0;
    for (int j = 0; j < 5; j++)
      s += (q[r * 5 + j] = r == j ? 0.0f : (float) exp (0.3 * ((r * 3 + j * 7) % 5)));
    for (int j = 0; j < 5; j++)
      q[r * 5 + j] /= (float) s;
  }
  run_sm ("soft_cross_entropy no-diag", (SmCase) { 5, 5, 4, NULL, NULL, q }, -20, 20);
  run_sm ("logcumsumexp_rev", (SmCase) { 3, 6, 5 }, -5, 5);
}

/* ---- reductions, pooling, shapes -------------------------------------------------- */
typedef struct { int kind; gint64 R, C; } ShCase;
static const gint32 g_idx[5] = { 3, 0, 3, 5, 1 };        /* repeats: scatter-add */
static const gint32 g_cols[12] = { 2, 0, 1, 3, 3, 1, 0, 2, 1, 1, 0, 3 }; /* [3 rows, 4 picks] of C=4 */
static const StsimSeq g_pool[3] = { { 0, 3, 2 }, { 3, 3, 3 }, { 6, 2, 1 } };

static StsimTensor *
b_sh (StsimTape *t, StsimTensor **in, gpointer u)
{
  ShCase *c = u;
  switch (c->kind) {
  case 0: return stsim_sum (t, in[0]);
  case 1: return stsim_mean (t, in[0]);
  case 2: return stsim_row_sum (t, in[0]);
  case 3: return stsim_mean_pool (t, in[0], g_pool, 3);
  case 4: { StsimTensor *xs[2] = { in[0], in[1] }; return stsim_concat_rows (t, xs, 2); }
  case 5: { StsimTensor *xs[2] = { in[0], in[1] }; return stsim_concat_cols (t, xs, 2); }
  case 6: return stsim_slice_cols (t, in[0], 1, 2);
  case 7: return stsim_gather_rows (t, in[0], g_idx, 5);
  case 8: return stsim_embedding (t, in[0], g_idx, 5);
  case 9: { gint32 idx[2] = { 4, 1 }; return stsim_replace_rows (t, in[0], idx, in[1]); }
  case 10: return stsim_gather_cols (t, in[0], g_cols, 4);
  case 11: {
    /* views: rows 1..3 of x, reshaped, through a real op */
    StsimTensor *v = stsim_slice_rows (t, in[0], 1, 3);
    gint64 s[1] = { 3 * c->C };
    return stsim_scale (t, stsim_reshape (t, v, 1, s), 2.0f);
  }
  }
  return NULL;
}

static void
r_sh (double *const *x, double *y, gpointer u)
{
  ShCase *c = u;
  gint64 R = c->R, C = c->C;
  switch (c->kind) {
  case 0: case 1: {
    double s = 0;
    for (gint64 i = 0; i < R * C; i++)
      s += x[0][i];
    y[0] = c->kind ? s / (R * C) : s;
    break;
  }
  case 2:
    for (gint64 r = 0; r < R; r++) {
      y[r] = 0;
      for (gint64 j = 0; j < C; j++)
        y[r] += x[0][r * C + j];
    }
    break;
  case 3:
    for (int s = 0; s < 3; s++)
      for (gint64 j = 0; j < C; j++) {
        double a = 0;
        for (int r = g_pool[s].offset; r < g_pool[s].offset + g_pool[s].keys; r++)
          a += x[0][r * C + j];
        y[s * C + j] = a / g_pool[s].keys;
      }
    break;
  case 4:
    memcpy (y, x[0], sizeof (double) * R * C);
    memcpy (y + R * C, x[1], sizeof (double) * 2 * C);
    break;
  case 5:
    for (gint64 r = 0; r < R; r++) {
      for (gint64 j = 0; j < C; j++)
        y[r * (C + 2) + j] = x[0][r * C + j];
      for (gint64 j = 0; j < 2; j++)
        y[r * (C + 2) + C + j] = x[1][r * 2 + j];
    }
    break;
  case 6:
    for (gint64 r = 0; r < R; r++)
      for (gint64 j = 0; j < 2; j++)
        y[r * 2 + j] = x[0][r * C + 1 + j];
    break;
  case 7: case 8:
    for (int k = 0; k < 5; k++)
      for (gint64 j = 0; j < C; j++)
        y[k * C + j] = x[0][g_idx[k] * C + j];
    break;
  case 9:
    memcpy (y, x[0], sizeof (double) * R * C);
    for (gint64 j = 0; j < C; j++) {
      y[4 * C + j] = x[1][j];
      y[1 * C + j] = x[1][C + j];
    }
    break;
  case 10:
    for (gint64 r = 0; r < R; r++)
      for (int k = 0; k < 4; k++)
        y[r * 4 + k] = x[0][r * C + g_cols[r * 4 + k]];
    break;
  case 11:
    for (gint64 i = 0; i < 3 * C; i++)
      y[i] = 2.0 * x[0][C + i];
    break;
  }
}

static void
run_sh (const char *name, int kind, gint64 R, gint64 C, int second_rows, int second_cols)
{
  ShCase c = { kind, R, C };
  GcInputs in;
  gc_inputs_init (&in);
  gc_add (&in, 2, SH2 (R, C), TRUE, -2, 2, 20 + kind);
  if (second_rows)
    gc_add (&in, 2, SH2 (second_rows, second_cols), TRUE, -2, 2, 40 + kind);
  g_assert_true (gc_check (name, &in, b_sh, r_sh, &c, FWD, GRD));
  gc_inputs_clear (&in);
}

static void
test_shapes (void)
{
  run_sh ("sum", 0, 3, 4, 0, 0);
  run_sh ("mean", 1, 3, 4, 0, 0);
  run_sh ("row_sum", 2, 3, 4, 0, 0);
  run_sh ("mean_pool (masked)", 3, 8, 4, 0, 0);
  run_sh ("concat_rows", 4, 3, 4, 2, 4);
  run_sh ("concat_cols", 5, 3, 4, 3, 2);
  run_sh ("slice_cols", 6, 3, 4, 0, 0);
  run_sh ("gather_rows (repeats)", 7, 6, 3, 0, 0);
  run_sh ("embedding (repeats)", 8, 6, 3, 0, 0);
  run_sh ("replace_rows", 9, 6, 3, 2, 3);
  run_sh ("gather_cols", 10, 3, 4, 0, 0);
  run_sh ("slice_rows+reshape views", 11, 5, 3, 0, 0);
}

/* ---- attention ------------------------------------------------------------------- */
typedef struct {
  gint64 N, H;
  int nh;
  const StsimSeq *seqs;
  gsize ns;
  gboolean fused;
  float p;
  guint8 *mask;   /* mask over the concatenated P layout, for p > 0 */
} AttCase;

static StsimTensor *
b_att (StsimTape *t, StsimTensor **in, gpointer u)
{
  AttCase *c = u;
  if (c->fused)
    return stsim_attention_qkv (t, in[0], c->seqs, c->ns, c->nh, c->p);
  return stsim_attention (t, in[0], in[1], in[2], c->seqs, c->ns, c->nh, c->p);
}

/* HF semantics literally: scores over ALL rows of the sequence block with
 * -10000 added to pad keys (k >= keys), softmax, dropout, times V. */
static void
r_att (double *const *x, double *y, gpointer u)
{
  AttCase *c = u;
  gint64 H = c->H, dh = H / c->nh, ld = c->fused ? 3 * H : H;
  const double *q = x[0], *k = c->fused ? x[0] + H : x[1], *v = c->fused ? x[0] + 2 * H : x[2];
  memset (y, 0, sizeof (double) * c->N * H);
  gint64 poff = 0;
  for (gsize s = 0; s < c->ns; s++) {
    const StsimSeq *sq = &c->seqs[s];
    gint64 R = sq->rows, L = sq->rows, Kn = sq->keys ? sq->keys : sq->rows;
    for (int h = 0; h < c->nh; h++) {
      for (gint64 i = 0; i < R; i++) {
        double sc[128], m = -INFINITY, z = 0;
        for (gint64 j = 0; j < L; j++) {
          double d = 0;
          for (gint64 e = 0; e < dh; e++)
            d += q[(sq->offset + i) * ld + h * dh + e] * k[(sq->offset + j) * ld + h * dh + e];
          sc[j] = d / sqrt ((double) dh) + (j < Kn ? 0.0 : -10000.0);
          m = MAX (m, sc[j]);
        }
        for (gint64 j = 0; j < L; j++)
          z += (sc[j] = exp (sc[j] - m));
        for (gint64 j = 0; j < L; j++) {
          double p = sc[j] / z;
          if (c->p > 0 && j < Kn)
            p = c->mask[poff + h * R * Kn + i * Kn + j] ? p / (1.0 - c->p) : 0.0;
          for (gint64 e = 0; e < dh; e++)
            y[(sq->offset + i) * H + h * dh + e] += p * v[(sq->offset + j) * ld + h * dh + e];
        }
      }
    }
    poff += c->nh * R * Kn;
  }
}

static void
run_att (const char *name, AttCase c)
{
  GcInputs in;
  gc_inputs_init (&in);
  if (c.fused)
    gc_add (&in, 2, SH2 (c.N, 3 * c.H), TRUE, -1.5, 1.5, 50);
  else
    for (int i = 0; i < 3; i++)
      gc_add (&in, 2, SH2 (c.N, c.H), TRUE, -1.5, 1.5, 51 + i);
  g_autofree guint8 *mask = NULL;
  if (c.p > 0) {
    gint64 tot = 0;
    for (gsize s = 0; s < c.ns; s++)
      tot += c.nh * c.seqs[s].rows * (c.seqs[s].keys ? c.seqs[s].keys : c.seqs[s].rows);
    mask = g_new (guint8, tot);
    /* the tape in gc_check has seed 1234, step 0, and this is its first random op */
    stsim_dropout_mask (1234, 0, 0, tot, c.p, mask);
    c.mask = mask;
  }
  g_assert_true (gc_check (name, &in, b_att, r_att, &c, FWD, GRD));
  gc_inputs_clear (&in);
}

static void
test_attention (void)
{
  /* padded [B=3, L=4]: lengths 4, 2, 1 (pad query rows still computed) */
  static const StsimSeq padded[3] = { { 0, 4, 4 }, { 4, 4, 2 }, { 8, 4, 1 } };
  /* packed: lengths 3, 1, 4, no padding rows at all */
  static const StsimSeq packed[3] = { { 0, 3, 3 }, { 3, 1, 1 }, { 4, 4, 4 } };
  run_att ("attention padded", (AttCase) { 12, 8, 2, padded, 3, FALSE, 0 });
  run_att ("attention packed", (AttCase) { 8, 8, 2, packed, 3, FALSE, 0 });
  run_att ("attention fused qkv padded", (AttCase) { 12, 6, 3, padded, 3, TRUE, 0 });
  run_att ("attention padded+dropout", (AttCase) { 12, 8, 2, padded, 3, FALSE, 0.3f });
  run_att ("attention packed+dropout qkv", (AttCase) { 8, 8, 2, packed, 3, TRUE, 0.2f });
  /* More than 64 keys: the cblas_sgemm path (shorter ones use the small-sequence loops). */
  static const StsimSeq long_padded[2] = { { 0, 72, 66 }, { 72, 3, 3 } };
  static const StsimSeq long_packed[1] = { { 0, 70, 70 } };
  run_att ("attention long padded qkv", (AttCase) { 75, 4, 2, long_padded, 2, TRUE, 0 });
  run_att ("attention long packed+dropout", (AttCase) { 70, 4, 1, long_packed, 1, FALSE, 0.2f });
}

/* A parameter-store weight accumulates (never overwrites) its gradient. */
static void
test_param_accumulates (void)
{
  g_autoptr(StsimParamStore) store = stsim_param_store_new ("p", TRUE);
  StsimTensor *w = stsim_param_store_add (store, "w", 2, SH2 (3, 2), 0);
  g_assert_true (stsim_param_store_finish (store, NULL));
  for (int i = 0; i < 6; i++)
    w->data[i] = (float) (i + 1);
  float xv[4] = { 1, 2, 3, 4 };
  for (int pass = 0; pass < 2; pass++) {
    g_autoptr(StsimTape) t = stsim_tape_new (1, 0);
    StsimTensor *x = stsim_tensor_from_data (t, 2, SH2 (2, 2), xv);
    StsimTensor *loss = stsim_sum (t, stsim_linear (t, x, w, NULL));
    g_assert_true (stsim_tape_backward (t, loss, NULL, NULL));
  }
  /* d sum(x·Wᵀ)/dW[o, i] = Σ_n x[n, i] = (4, 6), twice */
  for (int o = 0; o < 3; o++) {
    g_assert_cmpfloat (w->grad[o * 2 + 0], ==, 8.0f);
    g_assert_cmpfloat (w->grad[o * 2 + 1], ==, 12.0f);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  stsim_set_threads (2);
  g_test_add_func ("/numerics/gradcheck/linear", test_linear);
  g_test_add_func ("/numerics/gradcheck/linear-nobias", test_linear_nobias);
  g_test_add_func ("/numerics/gradcheck/linear-gelu", test_linear_gelu);
  g_test_add_func ("/numerics/gradcheck/linear-tanh", test_linear_tanh);
  g_test_add_func ("/numerics/gradcheck/relu", test_relu);
  g_test_add_func ("/numerics/gradcheck/matmul", test_matmul);
  g_test_add_func ("/numerics/gradcheck/elementwise", test_elementwise);
  g_test_add_func ("/numerics/gradcheck/gelu-accuracy", test_gelu_accuracy);
  g_test_add_func ("/numerics/gradcheck/dropout-mask", test_dropout_mask);
  g_test_add_func ("/numerics/gradcheck/layer-norm", test_layer_norm);
  g_test_add_func ("/numerics/gradcheck/batch-norm", test_batch_norm);
  g_test_add_func ("/numerics/gradcheck/batch-norm-running", test_batch_norm_running);
  g_test_add_func ("/numerics/gradcheck/cosine", test_cosine);
  g_test_add_func ("/numerics/gradcheck/softmax-losses", test_softmax_losses);
  g_test_add_func ("/numerics/gradcheck/shapes", test_shapes);
  g_test_add_func ("/numerics/gradcheck/attention", test_attention);
  g_test_add_func ("/numerics/gradcheck/param-accumulates", test_param_accumulates);
  return g_test_run ();
}
