/* test-rank-distill: the `rank-distill` and `rank-consistency` objectives
 * against the PyTorch/float64 fixtures of tests/reference/loss_reference.py
 * (tests/fixtures/losses/{listnet,listmle,consistency}*.safetensors): loss
 * and dL/dz1, dL/dz2 through a detached step; the α mix of two teachers;
 * ListMLE ties (deterministic and shuffled, the latter against a float64
 * Plackett-Luce written here); and a finite-difference check of the full
 * loss. Tolerances follow tests/reference/README.md: losses 1e-5 relative,
 * gradients 1e-4 · max(1, max|ref|). */
#include <math.h>
#include <string.h>

#include <stsim/stsim.h>
#include <stsim/stsim-registry.h>
#include <stsim/stsim-safetensors.h>

static StsimRegistry *reg;

/* ---- fixtures ------------------------------------------------------------------- */

typedef struct {
  StsimSafetensors *st;
  char             *path;
} Fixture;

static Fixture *
fixture_open (const char *name)
{
  Fixture *f = g_new0 (Fixture, 1);
  g_autofree char *file = g_strdup_printf ("%s.safetensors", name);
  f->path = g_test_build_filename (G_TEST_DIST, "fixtures", "losses", file, NULL);
  g_autoptr(GError) err = NULL;
  f->st = stsim_safetensors_open (f->path, &err);
  g_assert_no_error (err);
  return f;
}

static void
fixture_free (Fixture *f)
{
  stsim_safetensors_free (f->st);
  g_free (f->path);
  g_free (f);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Fixture, fixture_free)

/* Tensor @name as floats; *rows and *cols of a 2-D tensor (scalars: 1, 1). */
static float *
fx_get (Fixture *f, const char *name, gint64 *rows, gint64 *cols)
{
  const StsimTensorInfo *info = stsim_safetensors_get_info (f->st, name);
  g_assert_nonnull (info);
  gint64 r = info->n_dims >= 1 ? info->shape[0] : 1, c = info->n_dims >= 2 ? info->shape[1] : 1;
  float *out = g_new (float, r * c);
  g_autoptr(GError) err = NULL;
  if (info->dtype == STSIM_DTYPE_I64) {
    g_autofree gint64 *v = g_new (gint64, r * c);
    g_assert_true (stsim_safetensors_read_i64 (f->st, name, info->shape, info->n_dims, v, &err));
    for (gint64 i = 0; i < r * c; i++)
      out[i] = (float) v[i];
  } else
    g_assert_true (stsim_safetensors_read_f32 (f->st, name, info->shape, info->n_dims, out, &err));
  g_assert_no_error (err);
  if (rows)
    *rows = r;
  if (cols)
    *cols = c;
  return out;
}

static double
fx_scalar (Fixture *f, const char *name)
{
  g_autofree float *v = fx_get (f, name, NULL, NULL);
  return v[0];
}

/* cos(t_i, t_j) in float64 from the fixture's teacher embeddings. */
static float *
cos_matrix_f64 (const float *t, gint64 B, gint64 D)
{
  float *out = g_new (float, B * B);
  for (gint64 i = 0; i < B; i++)
    for (gint64 j = 0; j < B; j++) {
      double d = 0, ni = 0, nj = 0;
      for (gint64 k = 0; k < D; k++) {
        d += (double) t[i * D + k] * t[j * D + k];
        ni += (double) t[i * D + k] * t[i * D + k];
        nj += (double) t[j * D + k] * t[j * D + k];
      }
      out[i * B + j] = (float) (d / (MAX (sqrt (ni), 1e-8) * MAX (sqrt (nj), 1e-8)));
    }
  return out;
}

/* ---- running an objective on chosen z and teacher matrices ------------------------ */

typedef struct {
  const char  *name;        /* objective: rank-distill or rank-consistency */
  const char **params;      /* key, value, ..., NULL */
  gint64       B, H;
  const float *z1, *z2;
  const char  *labels[3];   /* teachers whose matrix is injected */
  const float *sims[3];
  guint64      step;
} Run;

static StsimComponent *
make_objective (const char *name, const char **kv, GError **error)
{
  const StsimRegistryEntry *e = stsim_registry_lookup (reg, STSIM_KIND_OBJECTIVE, name);
  g_assert_nonnull (e);
  g_autoptr(StsimParams) p = stsim_params_new (e->desc->params);
  for (gsize i = 0; kv && kv[i]; i += 2)
    if (!stsim_params_set (p, kv[i], kv[i + 1], error))
      return NULL;
  if (!stsim_params_finish (p, error))
    return NULL;
  return stsim_component_new (e->desc, "objective.rank", g_steal_pointer (&p), NULL, error);
}

/* The loss; with @grad (2B·H floats) also dL/dz, view-major. */
static gboolean
run_loss (const Run *run, double *loss_out, float *grad, GError **error)
{
  g_autoptr(StsimComponent) obj = make_objective (run->name, run->params, error);
  if (!obj)
    return FALSE;
  g_autoptr(StsimTape) tape = stsim_tape_new (42, 0);
  g_autoptr(StsimTrainStep) step = stsim_train_step_new_detached (tape, run->B, 2, 42, run->step);
  gint64 shape[2] = { 2 * run->B, run->H };
  StsimTensor *z = stsim_tensor_new (tape, 2, shape);
  memcpy (z->data, run->z1, run->B * run->H * sizeof (float));
  memcpy (z->data + run->B * run->H, run->z2, run->B * run->H * sizeof (float));
  stsim_tensor_set_requires_grad (z, TRUE);
  stsim_train_step_set_projected (step, z);
  for (int k = 0; k < 3 && run->labels[k]; k++) {
    g_autofree char *key = g_strdup_printf ("teacher-sim:%s", run->labels[k]);
    stsim_train_step_set_data (step, key, g_memdup2 (run->sims[k], run->B * run->B * sizeof (float)), g_free);
  }
  StsimTensor *loss = NULL;
  if (!stsim_objective_loss (obj, step, &loss, error))
    return FALSE;
  g_assert_nonnull (loss);
  g_assert_cmpint (loss->numel, ==, 1);
  *loss_out = loss->data[0];
  if (grad) {
    if (!stsim_tape_backward (tape, loss, NULL, error))
      return FALSE;
    g_assert_nonnull (z->grad);
    memcpy (grad, z->grad, 2 * run->B * run->H * sizeof (float));
  }
  return TRUE;
}

static double
max_abs (const float *x, gint64 n)
{
  double m = 0;
  for (gint64 i = 0; i < n; i++)
    m = MAX (m, fabs (x[i]));
  return m;
}

/* Loss and gradients of @run against fixture @f. */
static void
check_against (Fixture *f, const Run *run)
{
  g_autoptr(GError) err = NULL;
  double loss = 0;
  gint64 n = run->B * run->H;
  g_autofree float *grad = g_new (float, 2 * n);
  g_assert_true (run_loss (run, &loss, grad, &err));
  g_assert_no_error (err);
  double ref = fx_scalar (f, "loss");
  double rel = fabs (loss - ref) / MAX (fabs (ref), 1e-30);
  g_test_message ("%s: loss %.9g, reference %.9g, relative error %.2e", f->path, loss, ref, rel);
  g_assert_cmpfloat (rel, <=, 1e-5);
  const char *names[2] = { "grad.z1", "grad.z2" };
  for (int v = 0; v < 2; v++) {
    g_autofree float *g = fx_get (f, names[v], NULL, NULL);
    double scale = MAX (1.0, max_abs (g, n)), worst = 0;
    for (gint64 i = 0; i < n; i++)
      worst = MAX (worst, fabs (grad[v * n + i] - g[i]));
    g_test_message ("%s: %s max |err| %.2e (max |ref| %.3g)", f->path, names[v], worst, max_abs (g, n));
    g_assert_cmpfloat (worst, <=, 1e-4 * scale);
  }
}

/* ---- ListNet ------------------------------------------------------------------------ */

/* Two teachers mixed by α: the matrices are the float64 cosines of the
 * fixture's teacher embeddings; T = α cos1/τ2 + (1−α) cos2/τ2 inside. */
static void
test_listnet_two_teachers (void)
{
  g_autoptr(Fixture) f = fixture_open ("listnet");
  gint64 B, H, D1, D2;
  g_autofree float *z1 = fx_get (f, "z1", &B, &H), *z2 = fx_get (f, "z2", NULL, NULL);
  g_autofree float *t1 = fx_get (f, "teacher1", NULL, &D1), *t2 = fx_get (f, "teacher2", NULL, &D2);
  g_autofree float *c1 = cos_matrix_f64 (t1, B, D1), *c2 = cos_matrix_f64 (t2, B, D2);
  double alpha = fx_scalar (f, "alpha");
  g_autofree char *w = g_strdup_printf ("%.9g, %.9g", alpha, 1.0 - alpha);
  g_autofree char *tau2 = g_strdup_printf ("%.9g", fx_scalar (f, "tau2"));
  g_autofree char *tau3 = g_strdup_printf ("%.9g", fx_scalar (f, "tau3"));
  const char *kv[] = { "teachers", "teacher.a, teacher.b", "teacher_weights", w, "tau2", tau2, "tau3", tau3,
                       "form", "listnet", NULL };
  Run run = { "rank-distill", kv, B, H, z1, z2, { "teacher.a", "teacher.b" }, { c1, c2 } };
  check_against (f, &run);

  /* The teachers in the other order with swapped weights: the same T. */
  g_autofree char *w2 = g_strdup_printf ("%.9g, %.9g", 1.0 - alpha, alpha);
  const char *kv2[] = { "teachers", "teacher.b, teacher.a", "teacher_weights", w2, "tau2", tau2, "tau3", tau3, NULL };
  Run run2 = { "rank-distill", kv2, B, H, z1, z2, { "teacher.a", "teacher.b" }, { c1, c2 } };
  check_against (f, &run2);
}

static void
test_listnet_single_teacher (void)
{
  g_autoptr(Fixture) f = fixture_open ("listnet_single_teacher");
  gint64 B, H, D1;
  g_autofree float *z1 = fx_get (f, "z1", &B, &H), *z2 = fx_get (f, "z2", NULL, NULL);
  g_autofree float *t1 = fx_get (f, "teacher1", NULL, &D1);
  g_autofree float *c1 = cos_matrix_f64 (t1, B, D1);
  g_autofree char *tau2 = g_strdup_printf ("%.9g", fx_scalar (f, "tau2"));
  g_autofree char *tau3 = g_strdup_printf ("%.9g", fx_scalar (f, "tau3"));
  g_assert_cmpfloat (fabs (fx_scalar (f, "tau3") - 0.025), <, 1e-9);  /* τ3 ≠ τ2 is what this case tests */
  const char *kv[] = { "teachers", "teacher.a", "tau2", tau2, "tau3", tau3, NULL };
  Run run = { "rank-distill", kv, B, H, z1, z2, { "teacher.a" }, { c1 } };
  check_against (f, &run);
}

/* ---- ListMLE ------------------------------------------------------------------------ */

/* teacher_scores is T itself: injected with τ2 = 1 and α = 1 it passes
 * through unchanged (x·1/1 is exact), so exact ties stay ties. */
static void
run_listmle_case (const char *name, const char *variant)
{
  g_autoptr(Fixture) f = fixture_open (name);
  gint64 B, H;
  g_autofree float *z1 = fx_get (f, "z1", &B, &H), *z2 = fx_get (f, "z2", NULL, NULL);
  g_autofree float *T = fx_get (f, "teacher_scores", NULL, NULL);
  g_autofree char *tau3 = g_strdup_printf ("%.9g", fx_scalar (f, "tau3"));
  const char *kv[] = { "teachers", "teacher.a", "tau2", "1", "tau3", tau3, "form", "listmle", "tie_break", "index",
                       "listmle_variant", variant, NULL };
  Run run = { "rank-distill", kv, B, H, z1, z2, { "teacher.a" }, { T } };
  check_against (f, &run);
}

static void
test_listmle (void)
{
  run_listmle_case ("listmle", "exact");
}

static void
test_listmle_community (void)
{
  run_listmle_case ("listmle_community", "community");
}

static void
test_listmle_ties_index (void)
{
  run_listmle_case ("listmle_ties", "exact");
}

/* float64 Plackett-Luce of logits ℓ [B, B] in the row orders @perm [B, K]. */
static double
plackett_luce_f64 (const double *l, const gint32 *perm, gint64 B, gint64 K)
{
  double total = 0;
  for (gint64 i = 0; i < B; i++)
    for (gint64 k = 0; k < K; k++) {
      double s = 0;
      for (gint64 m = k; m < K; m++)
        s += exp (l[i * B + perm[i * K + m]]);
      total += log (s) - l[i * B + perm[i * K + k]];
    }
  return total / B;
}

/* The fixture's permutation with the twin columns of each tie swapped in
 * every row where both follow the diagonal (what a different shuffle does). */
static void
swap_twins (gint32 *perm, gint64 B, int a, int b)
{
  for (gint64 i = 0; i < B; i++) {
    if (i == a || i == b)
      continue;  /* the diagonal comes first, its twin second: no choice there */
    for (gint64 k = 0; k < B; k++)
      if (perm[i * B + k] == a)
        perm[i * B + k] = b;
      else if (perm[i * B + k] == b)
        perm[i * B + k] = a;
  }
}

/* With tie_break = shuffle the loss is the Plackett-Luce loss of one of the
 * four orders of the two tied pairs; steps draw different shuffles, so more
 * than one order appears; the same step gives the same loss. */
static void
test_listmle_ties_shuffle (void)
{
  g_autoptr(Fixture) f = fixture_open ("listmle_ties");
  gint64 B, H;
  g_autofree float *z1 = fx_get (f, "z1", &B, &H), *z2 = fx_get (f, "z2", NULL, NULL);
  g_autofree float *T = fx_get (f, "teacher_scores", NULL, NULL);
  g_autofree float *permf = fx_get (f, "permutation", NULL, NULL);
  double tau3 = fx_scalar (f, "tau3");
  /* ℓ = cos(z1_i, z2_j)/τ3 in float64. */
  g_autofree double *l = g_new (double, B * B);
  for (gint64 i = 0; i < B; i++)
    for (gint64 j = 0; j < B; j++) {
      double d = 0, a = 0, b = 0;
      for (gint64 k = 0; k < H; k++) {
        d += (double) z1[i * H + k] * z2[j * H + k];
        a += (double) z1[i * H + k] * z1[i * H + k];
        b += (double) z2[j * H + k] * z2[j * H + k];
      }
      l[i * B + j] = d / (sqrt (a) * sqrt (b)) / tau3;
    }
  double combos[4];
  for (int c = 0; c < 4; c++) {
    g_autofree gint32 *perm = g_new (gint32, B * B);
    for (gint64 i = 0; i < B * B; i++)
      perm[i] = (gint32) permf[i];
    if (c & 1)
      swap_twins (perm, B, 2, 5);
    if (c & 2)
      swap_twins (perm, B, 0, 7);
    combos[c] = plackett_luce_f64 (l, perm, B, B);
  }
  g_assert_cmpfloat (fabs (combos[0] - fx_scalar (f, "loss")) / combos[0], <=, 1e-5);  /* the test's own check */
  g_assert_cmpfloat (fabs (combos[1] - combos[0]), >, 1e-3);  /* the orders are distinguishable */
  g_assert_cmpfloat (fabs (combos[2] - combos[0]), >, 1e-3);

  const char *kv[] = { "teachers", "teacher.a", "tau2", "1", "form", "listmle", "tie_break", "shuffle", NULL };
  guint seen = 0;
  for (guint64 s = 0; s < 16; s++) {
    Run run = { "rank-distill", kv, B, H, z1, z2, { "teacher.a" }, { T }, s };
    g_autoptr(GError) err = NULL;
    double loss = 0, again = 0;
    g_assert_true (run_loss (&run, &loss, NULL, &err));
    g_assert_true (run_loss (&run, &again, NULL, &err));
    g_assert_no_error (err);
    g_assert_cmpfloat (loss, ==, again);
    int match = -1;
    for (int c = 0; c < 4; c++)
      if (fabs (loss - combos[c]) <= 1e-5 * combos[c])
        match = c;
    g_assert_cmpint (match, >=, 0);
    seen |= 1u << match;
  }
  g_test_message ("tie orders seen over 16 steps: mask 0x%x", seen);
  g_assert_cmpuint (seen, !=, 1u);
  g_assert_cmpuint (seen & (seen - 1), !=, 0);  /* at least two different orders */
}

/* Without the diagonal, each list is the B-1 other sentences: the loss is
 * the float64 Plackett-Luce of the fixture's permutation minus its first column. */
static void
test_listmle_no_diag (void)
{
  g_autoptr(Fixture) f = fixture_open ("listmle");
  gint64 B, H;
  g_autofree float *z1 = fx_get (f, "z1", &B, &H), *z2 = fx_get (f, "z2", NULL, NULL);
  g_autofree float *T = fx_get (f, "teacher_scores", NULL, NULL);
  g_autofree float *permf = fx_get (f, "permutation", NULL, NULL);
  g_autofree float *logits = fx_get (f, "student_logits", NULL, NULL);
  g_autofree double *l = g_new (double, B * B);
  for (gint64 i = 0; i < B * B; i++)
    l[i] = logits[i];
  g_autofree gint32 *perm = g_new (gint32, B * (B - 1));
  for (gint64 i = 0; i < B; i++) {
    g_assert_cmpint ((gint64) permf[i * B], ==, i);
    for (gint64 k = 1; k < B; k++)
      perm[i * (B - 1) + k - 1] = (gint32) permf[i * B + k];
  }
  double ref = plackett_luce_f64 (l, perm, B, B - 1);
  const char *kv[] = { "teachers", "teacher.a", "tau2", "1", "form", "listmle", "diag", "false", "tie_break", "index",
                       NULL };
  Run run = { "rank-distill", kv, B, H, z1, z2, { "teacher.a" }, { T } };
  g_autoptr(GError) err = NULL;
  double loss = 0;
  g_assert_true (run_loss (&run, &loss, NULL, &err));
  g_assert_no_error (err);
  g_test_message ("listmle diag=false: %.9g vs float64 %.9g", loss, ref);
  g_assert_cmpfloat (fabs (loss - ref) / ref, <=, 1e-5);
}

/* ---- consistency -------------------------------------------------------------------- */

static void
run_consistency_case (const char *name, const char *variant)
{
  g_autoptr(Fixture) f = fixture_open (name);
  gint64 B, H;
  g_autofree float *z1 = fx_get (f, "z1", &B, &H), *z2 = fx_get (f, "z2", NULL, NULL);
  g_autofree char *tau1 = g_strdup_printf ("%.9g", fx_scalar (f, "tau1"));
  const char *kv[] = { "tau1", tau1, "consistency", variant, NULL };
  Run run = { "rank-consistency", kv, B, H, z1, z2 };
  check_against (f, &run);
}

static void
test_consistency_jsd (void)
{
  run_consistency_case ("consistency_jsd", "jsd");
}

static void
test_consistency_community (void)
{
  run_consistency_case ("consistency_community", "community_negentropy");
}

/* JSD is 0 for identical views (S symmetric, so P = Q), and bounded by ln 2. */
static void
test_consistency_identical_views (void)
{
  g_autoptr(Fixture) f = fixture_open ("consistency_jsd");
  gint64 B, H;
  g_autofree float *z1 = fx_get (f, "z1", &B, &H), *z2 = fx_get (f, "z2", NULL, NULL);
  const char *kv[] = { NULL };
  Run same = { "rank-consistency", kv, B, H, z1, z1 };
  Run diff = { "rank-consistency", kv, B, H, z1, z2 };
  g_autoptr(GError) err = NULL;
  double l0 = 1, l1 = 0;
  g_assert_true (run_loss (&same, &l0, NULL, &err));
  g_assert_true (run_loss (&diff, &l1, NULL, &err));
  g_assert_no_error (err);
  g_assert_cmpfloat (fabs (l0), <=, 1e-6);
  g_assert_cmpfloat (l1, >, 0);
  g_assert_cmpfloat (l1, <=, log (2.0));
}

/* rank-distill with consistency_weight β returns L_rank + β·L_JSD. */
static void
test_rank_plus_consistency (void)
{
  g_autoptr(Fixture) fl = fixture_open ("listmle");
  g_autoptr(Fixture) fj = fixture_open ("consistency_jsd");
  gint64 B, H;
  g_autofree float *z1 = fx_get (fj, "z1", &B, &H), *z2 = fx_get (fj, "z2", NULL, NULL);
  g_autofree float *T = fx_get (fl, "teacher_scores", NULL, NULL);
  const char *kv_r[] = { "teachers", "teacher.a", "tau2", "1", "form", "listmle", "tie_break", "index", NULL };
  const char *kv_rc[] = { "teachers", "teacher.a", "tau2", "1", "form", "listmle", "tie_break", "index",
                          "consistency_weight", "0.5", NULL };
  Run r = { "rank-distill", kv_r, B, H, z1, z2, { "teacher.a" }, { T } };
  Run rc = { "rank-distill", kv_rc, B, H, z1, z2, { "teacher.a" }, { T } };
  g_autoptr(GError) err = NULL;
  double lr = 0, lrc = 0;
  g_assert_true (run_loss (&r, &lr, NULL, &err));
  g_assert_true (run_loss (&rc, &lrc, NULL, &err));
  g_assert_no_error (err);
  double jsd = fx_scalar (fj, "loss");
  g_assert_cmpfloat (fabs (lrc - (lr + 0.5 * jsd)), <=, 1e-5 * lrc);
}

/* ---- finite differences of the full loss --------------------------------------------- */

/* Central differences along random directions of the whole rank-distill loss
 * (two teachers, ListNet or ListMLE, consistency 0.5) against the
 * autograd gradient. Float32 losses with h = 1e-3: agreement to ~1e-3. */
static void
fd_check (const char *form)
{
  g_autoptr(Fixture) f = fixture_open ("listnet");
  gint64 B, H, D1, D2;
  g_autofree float *z1 = fx_get (f, "z1", &B, &H), *z2 = fx_get (f, "z2", NULL, NULL);
  g_autofree float *t1 = fx_get (f, "teacher1", NULL, &D1), *t2 = fx_get (f, "teacher2", NULL, &D2);
  g_autofree float *c1 = cos_matrix_f64 (t1, B, D1), *c2 = cos_matrix_f64 (t2, B, D2);
  const char *kv[] = { "teachers", "teacher.a, teacher.b", "form", form, "tie_break", "index",
                       "consistency_weight", "0.5", "tau3", "0.1", NULL };
  gint64 n = B * H;
  g_autofree float *grad = g_new (float, 2 * n);
  Run run = { "rank-distill", kv, B, H, z1, z2, { "teacher.a", "teacher.b" }, { c1, c2 } };
  g_autoptr(GError) err = NULL;
  double l0;
  g_assert_true (run_loss (&run, &l0, grad, &err));
  g_assert_no_error (err);

  StsimRng rng;
  stsim_rng_init (&rng, 7, STSIM_RNG_STREAM_USER);
  g_autofree float *d = g_new (float, 2 * n), *zp = g_new (float, 2 * n), *zm = g_new (float, 2 * n);
  const double h = 1e-3;
  for (int trial = 0; trial < 3; trial++) {
    stsim_rng_fill_normal (&rng, d, 2 * n, 0.0f, 1.0f);
    double an = 0;
    for (gint64 i = 0; i < 2 * n; i++) {
      an += (double) grad[i] * d[i];
      float base = i < n ? z1[i] : z2[i - n];
      zp[i] = (float) (base + h * d[i]);
      zm[i] = (float) (base - h * d[i]);
    }
    Run rp = run, rm = run;
    rp.z1 = zp, rp.z2 = zp + n;
    rm.z1 = zm, rm.z2 = zm + n;
    double lp, lm;
    g_assert_true (run_loss (&rp, &lp, NULL, &err));
    g_assert_true (run_loss (&rm, &lm, NULL, &err));
    /* The actual step is what float32 stored, not h·d exactly. */
    double num = 0, den = 0;
    for (gint64 i = 0; i < 2 * n; i++) {
      num += (double) (zp[i] - zm[i]) * d[i];
      den += (double) d[i] * d[i] * 2 * h;
    }
    double fd = (lp - lm) / (2 * h) * (den / num);
    g_test_message ("%s fd trial %d: finite difference %.6g, autograd %.6g", form, trial, fd, an);
    g_assert_cmpfloat (fabs (fd - an), <=, 2e-3 * MAX (1.0, fabs (an)));
  }
}

static void
test_fd_listnet (void)
{
  fd_check ("listnet");
}

static void
test_fd_listmle (void)
{
  fd_check ("listmle");
}

static void
test_fd_mse (void)
{
  fd_check ("mse");
}

/* form = mse against its definition, in float64 here: the mean over i≠j of
 * (cos(z1_i, z2_j) − cos_teacher(i, j))², one teacher (α = 1). */
static void
test_mse_value (void)
{
  g_autoptr(Fixture) f = fixture_open ("listnet");
  gint64 B, H, D1;
  g_autofree float *z1 = fx_get (f, "z1", &B, &H), *z2 = fx_get (f, "z2", NULL, NULL);
  g_autofree float *t1 = fx_get (f, "teacher1", NULL, &D1);
  g_autofree float *c1 = cos_matrix_f64 (t1, B, D1);
  const char *kv[] = { "teachers", "teacher.a", "form", "mse", "tau2", "0.07", NULL };
  Run run = { "rank-distill", kv, B, H, z1, z2, { "teacher.a" }, { c1 } };
  g_autoptr(GError) err = NULL;
  double loss = 0, ref = 0;
  g_assert_true (run_loss (&run, &loss, NULL, &err));
  g_assert_no_error (err);
  for (gint64 i = 0; i < B; i++)
    for (gint64 j = 0; j < B; j++) {
      if (i == j)
        continue;
      double d = 0, ni = 0, nj = 0;
      for (gint64 k = 0; k < H; k++) {
        d += (double) z1[i * H + k] * z2[j * H + k];
        ni += (double) z1[i * H + k] * z1[i * H + k];
        nj += (double) z2[j * H + k] * z2[j * H + k];
      }
      double e = d / (sqrt (ni) * sqrt (nj)) - c1[i * B + j];
      ref += e * e;
    }
  ref /= (double) B * (B - 1);
  g_test_message ("mse: loss %.9g, reference %.9g", loss, ref);
  g_assert_cmpfloat (fabs (loss - ref), <=, 1e-5 * MAX (ref, 1e-3));
  g_assert_cmpfloat (ref, >, 1e-3);  /* not a vacuous comparison */
}

/* ---- bad input ------------------------------------------------------------------------ */

static void
test_bad_weights (void)
{
  const char *cases[][2] = { { "teacher.a, teacher.b", "0.5" }, { "teacher.a", "-1" }, { "teacher.a", "abc" },
                             { "teacher.a", "nan" }, { "teacher.a, teacher.b", "0, 0" } };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    const char *kv[] = { "teachers", cases[i][0], "teacher_weights", cases[i][1], NULL };
    g_autoptr(GError) err = NULL;
    g_autoptr(StsimComponent) c = make_objective ("rank-distill", kv, &err);
    g_assert_null (c);
    g_assert_error (err, STSIM_ERROR, STSIM_ERROR_INVALID);
    g_assert_nonnull (strstr (err->message, "teacher_weights"));
  }
}

/* A teacher label without an instantiated teacher is an error naming it. */
static void
test_missing_teacher (void)
{
  g_autoptr(Fixture) f = fixture_open ("listmle");
  gint64 B, H;
  g_autofree float *z1 = fx_get (f, "z1", &B, &H), *z2 = fx_get (f, "z2", NULL, NULL);
  const char *kv[] = { "teachers", "teacher.nowhere", NULL };
  Run run = { "rank-distill", kv, B, H, z1, z2 };
  g_autoptr(GError) err = NULL;
  double loss;
  g_assert_false (run_loss (&run, &loss, NULL, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_RECIPE);
  g_assert_nonnull (strstr (err->message, "teacher.nowhere"));
}

/* One sentence (an epoch's last batch) has no list: zero loss, no failure. */
static void
test_single_sentence (void)
{
  g_autoptr(Fixture) f = fixture_open ("listmle");
  gint64 B, H;
  g_autofree float *z1 = fx_get (f, "z1", &B, &H), *z2 = fx_get (f, "z2", NULL, NULL);
  float one = 1;
  const char *kv[] = { "teachers", "teacher.a", "consistency_weight", "1", NULL };
  Run run = { "rank-distill", kv, 1, H, z1, z2, { "teacher.a" }, { &one } };
  g_autoptr(GError) err = NULL;
  double loss = -1;
  g_autofree float *grad = g_new (float, 2 * H);
  g_assert_true (run_loss (&run, &loss, grad, &err));
  g_assert_no_error (err);
  g_assert_cmpfloat (loss, ==, 0);
  g_assert_cmpfloat (max_abs (grad, 2 * H), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  reg = stsim_registry_new ();
  stsim_registry_scan_default (reg);
  if (!stsim_registry_lookup (reg, STSIM_KIND_OBJECTIVE, "rank-distill")) {
    g_printerr ("the rank-distill plugin is not on STSIM_PLUGIN_PATH\n");
    return 1;
  }
  g_test_add_func ("/rank-distill/listnet/two-teachers", test_listnet_two_teachers);
  g_test_add_func ("/rank-distill/listnet/single-teacher", test_listnet_single_teacher);
  g_test_add_func ("/rank-distill/listmle/exact", test_listmle);
  g_test_add_func ("/rank-distill/listmle/community", test_listmle_community);
  g_test_add_func ("/rank-distill/listmle/ties-index", test_listmle_ties_index);
  g_test_add_func ("/rank-distill/listmle/ties-shuffle", test_listmle_ties_shuffle);
  g_test_add_func ("/rank-distill/listmle/no-diag", test_listmle_no_diag);
  g_test_add_func ("/rank-distill/consistency/jsd", test_consistency_jsd);
  g_test_add_func ("/rank-distill/consistency/community", test_consistency_community);
  g_test_add_func ("/rank-distill/consistency/identical-views", test_consistency_identical_views);
  g_test_add_func ("/rank-distill/consistency/added", test_rank_plus_consistency);
  g_test_add_func ("/rank-distill/fd/listnet", test_fd_listnet);
  g_test_add_func ("/rank-distill/fd/listmle", test_fd_listmle);
  g_test_add_func ("/rank-distill/fd/mse", test_fd_mse);
  g_test_add_func ("/rank-distill/mse/value", test_mse_value);
  g_test_add_func ("/rank-distill/bad/weights", test_bad_weights);
  g_test_add_func ("/rank-distill/bad/missing-teacher", test_missing_teacher);
  g_test_add_func ("/rank-distill/single-sentence", test_single_sentence);
  int rc = g_test_run ();
  stsim_registry_free (reg);
  return rc;
}
