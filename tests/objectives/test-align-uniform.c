/* test-align-uniform: the `align-uniform` objective (plugins/objectives/
 * align-uniform, the worked objective of docs/plugin-guide.md) against a
 * double-precision reference written here from the definitions of Wang &
 * Isola (2020), independently of the plugin's formulation:
 *
 *   x̂ = x / ‖x‖;  align = mean_i ‖x̂1_i − x̂2_i‖^α;
 *   unif(z) = log mean_{i≠j} exp(−t ‖ẑ_i − ẑ_j‖²)   (pairwise distances, not cosines);
 *   L = w_a · align + w_u · (unif(z1) + unif(z2)) / 2.
 *
 * The reference gradient is a central finite difference of that double
 * function (h = 1e-6); the plugin's comes from the autograd tape through a
 * detached step. Bounds: loss and logged terms 1e-5 relative, gradient
 * 1e-4 of the largest reference component (float32 against float64). */
#include <math.h>
#include <string.h>

#include <stsim/stsim.h>
#include <stsim/stsim-registry.h>

static StsimRegistry *reg;

typedef struct {
  double alpha, t, w_align, w_unif;
} Setting;

/* ---- the double-precision reference ------------------------------------------------- */

static void
normalize_rows (const double *x, gint64 n, gint64 h, double *out)
{
  for (gint64 i = 0; i < n; i++) {
    double s = 0;
    for (gint64 k = 0; k < h; k++)
      s += x[i * h + k] * x[i * h + k];
    double norm = MAX (sqrt (s), 1e-8);
    for (gint64 k = 0; k < h; k++)
      out[i * h + k] = x[i * h + k] / norm;
  }
}

static double
sq_dist (const double *a, const double *b, gint64 h)
{
  double s = 0;
  for (gint64 k = 0; k < h; k++)
    s += (a[k] - b[k]) * (a[k] - b[k]);
  return s;
}

/* z: the two views stacked, [2B, H]. Writes the two terms if asked. */
static double
ref_loss (const Setting *s, const double *z, gint64 B, gint64 H, double *align_out, double *unif_out)
{
  g_autofree double *u = g_new (double, 2 * B * H);
  normalize_rows (z, 2 * B, H, u);
  const double *u1 = u, *u2 = u + B * H;
  double align = 0;
  for (gint64 i = 0; i < B; i++)
    align += pow (sq_dist (u1 + i * H, u2 + i * H, H), s->alpha / 2);
  align /= B;
  double unif = 0;
  for (int v = 0; v < 2 && B >= 2; v++) {
    const double *w = v ? u2 : u1;
    double acc = 0;
    for (gint64 i = 0; i < B; i++)
      for (gint64 j = 0; j < B; j++)
        if (i != j)
          acc += exp (-s->t * sq_dist (w + i * H, w + j * H, H));
    unif += 0.5 * log (acc / (B * (B - 1)));
  }
  if (align_out)
    *align_out = align;
  if (unif_out)
    *unif_out = unif;
  return s->w_align * align + (B >= 2 ? s->w_unif * unif : 0);
}

/* ---- the plugin through a detached step ---------------------------------------------- */

static StsimComponent *
make_objective (const Setting *s, GError **error)
{
  g_autofree char *a = g_strdup_printf ("%.17g", s->alpha), *t = g_strdup_printf ("%.17g", s->t);
  g_autofree char *wa = g_strdup_printf ("%.17g", s->w_align), *wu = g_strdup_printf ("%.17g", s->w_unif);
  return stsim_component_new_simple (reg, STSIM_KIND_OBJECTIVE, "align-uniform", "align-uniform", NULL, error,
                                     "alpha", a, "t", t, "align_weight", wa, "uniform_weight", wu, NULL);
}

/* The plugin's loss, dL/dz into @grad [2B, H], and the logged terms. */
static double
plugin_loss (const Setting *s, const float *z, gint64 B, gint64 H, float *grad, double *align, double *unif)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimComponent) c = make_objective (s, &err);
  g_assert_no_error (err);
  g_autoptr(StsimTape) tape = stsim_tape_new (1, 0);
  gint64 shape[2] = { 2 * B, H };
  StsimTensor *zt = stsim_tensor_from_data (tape, 2, shape, z);
  stsim_tensor_set_requires_grad (zt, TRUE);
  g_autoptr(StsimTrainStep) step = stsim_train_step_new_detached (tape, B, 2, 7, 0);
  stsim_train_step_set_projected (step, zt);
  StsimTensor *loss = NULL;
  g_assert_true (stsim_objective_loss (c, step, &loss, &err));
  g_assert_no_error (err);
  g_assert_cmpint (loss->numel, ==, 1);
  double value = loss->data[0];
  g_assert_true (stsim_tape_backward (tape, loss, NULL, &err));
  g_assert_no_error (err);
  memcpy (grad, zt->grad, 2 * B * H * sizeof (float));
  *align = stsim_train_step_get_logged (step, "align");
  *unif = stsim_train_step_get_logged (step, "uniform");
  return value;
}

static void
check_setting (const Setting *s, gint64 B, gint64 H, guint32 seed)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (seed);
  const gint64 n = 2 * B * H;
  g_autofree float *z = g_new (float, n);
  g_autofree double *zd = g_new (double, n);
  /* View 2 = view 1 plus noise, as two dropout views are: alignment is then
   * small but not zero, and uniformity sees spread-out rows. */
  for (gint64 i = 0; i < B * H; i++)
    z[i] = (float) g_rand_double_range (rand, -1, 1);
  for (gint64 i = 0; i < B * H; i++)
    z[B * H + i] = z[i] + (float) g_rand_double_range (rand, -0.3, 0.3);
  for (gint64 i = 0; i < n; i++)
    zd[i] = z[i];

  double want_align, want_unif;
  double want = ref_loss (s, zd, B, H, &want_align, &want_unif);
  g_autofree float *grad = g_new (float, n);
  double got_align, got_unif;
  double got = plugin_loss (s, z, B, H, grad, &got_align, &got_unif);

  g_assert_cmpfloat (fabs (got - want), <=, 1e-5 * MAX (1.0, fabs (want)));
  g_assert_cmpfloat (fabs (got_align - want_align), <=, 1e-5 * MAX (1.0, fabs (want_align)));
  if (B >= 2)
    g_assert_cmpfloat (fabs (got_unif - want_unif), <=, 1e-5 * MAX (1.0, fabs (want_unif)));
  else
    g_assert_true (isnan (got_unif));

  /* Central differences of the double reference. */
  const double h = 1e-6;
  g_autofree double *fd = g_new (double, n);
  double scale = 0, worst = 0;
  for (gint64 i = 0; i < n; i++) {
    double keep = zd[i];
    zd[i] = keep + h;
    double up = ref_loss (s, zd, B, H, NULL, NULL);
    zd[i] = keep - h;
    double down = ref_loss (s, zd, B, H, NULL, NULL);
    zd[i] = keep;
    fd[i] = (up - down) / (2 * h);
    scale = MAX (scale, fabs (fd[i]));
  }
  g_assert_cmpfloat (scale, >, 1e-3);  /* a gradient worth checking */
  for (gint64 i = 0; i < n; i++)
    worst = MAX (worst, fabs (grad[i] - fd[i]));
  g_test_message ("B %" G_GINT64_FORMAT ": loss %.8g (ref %.8g), max |grad - fd| %.3g of %.3g",
                  B, got, want, worst, scale);
  g_assert_cmpfloat (worst, <=, 1e-4 * scale);
}

static void
test_defaults (void)
{
  Setting s = { 2, 2, 1, 1 };
  check_setting (&s, 8, 6, 1);
}

static void
test_other_exponents (void)
{
  Setting s = { 1.5, 1, 0.5, 2 };
  check_setting (&s, 6, 5, 2);
  Setting s3 = { 3, 4, 1, 0.25 };
  check_setting (&s3, 5, 4, 3);
}

static void
test_align_only (void)
{
  Setting s = { 2, 2, 1, 0 };
  check_setting (&s, 7, 3, 4);
}

/* One sentence: no pairs, so no uniformity term (and none logged). */
static void
test_single_sentence (void)
{
  Setting s = { 2, 2, 1, 1 };
  check_setting (&s, 1, 4, 5);
}

static void
test_bad_weights (void)
{
  Setting s = { 2, 2, 0, 0 };
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimComponent) c = make_objective (&s, &err);
  g_assert_null (c);
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_INVALID);
  g_assert_nonnull (strstr (err->message, "align_weight"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  reg = stsim_registry_new ();
  stsim_registry_scan_default (reg);
  if (!stsim_registry_lookup (reg, STSIM_KIND_OBJECTIVE, "align-uniform")) {
    g_printerr ("the align-uniform plugin is not on STSIM_PLUGIN_PATH\n");
    return 1;
  }
  g_test_add_func ("/align-uniform/defaults", test_defaults);
  g_test_add_func ("/align-uniform/other-exponents", test_other_exponents);
  g_test_add_func ("/align-uniform/align-only", test_align_only);
  g_test_add_func ("/align-uniform/single-sentence", test_single_sentence);
  g_test_add_func ("/align-uniform/bad-weights", test_bad_weights);
  int rc = g_test_run ();
  stsim_registry_free (reg);
  return rc;
}
