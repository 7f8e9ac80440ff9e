/* test-optim.c: AdamW + clipping + schedule against the trajectory written
 * by tests/reference/adamw_reference.py (an independent float64 numpy
 * implementation of method.md §3.5), plus schedule and clipping edge cases. */
#include <math.h>
#include <stdlib.h>
#include <stsim/stsim.h>

typedef struct {
  double lr0, b1, b2, eps, wd, max_norm;
  guint64 warmup, total;
  GPtrArray *names;
  GArray *numel, *no_decay, *frozen;   /* gint64, gint, gint */
  GArray *init;                        /* double */
  GPtrArray *grads, *expect;           /* GArray of double, per step */
  GArray *lr, *norm;                   /* double per step */
} Fixture;

static GArray *
parse_doubles (char **tok)
{
  GArray *a = g_array_new (FALSE, FALSE, sizeof (double));
  for (; *tok; tok++)
    if (**tok) {
      double v = g_ascii_strtod (*tok, NULL);
      g_array_append_val (a, v);
    }
  return a;
}

static void
fixture_load (Fixture *f)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "fixtures", "numerics", "adamw.txt", NULL);
  g_autofree char *text = NULL;
  g_autoptr(GError) err = NULL;
  g_file_get_contents (path, &text, NULL, &err);
  g_assert_no_error (err);
  memset (f, 0, sizeof *f);
  f->names = g_ptr_array_new_with_free_func (g_free);
  f->numel = g_array_new (FALSE, FALSE, sizeof (gint64));
  f->no_decay = g_array_new (FALSE, FALSE, sizeof (gint));
  f->frozen = g_array_new (FALSE, FALSE, sizeof (gint));
  f->grads = g_ptr_array_new_with_free_func ((GDestroyNotify) g_array_unref);
  f->expect = g_ptr_array_new_with_free_func ((GDestroyNotify) g_array_unref);
  f->lr = g_array_new (FALSE, FALSE, sizeof (double));
  f->norm = g_array_new (FALSE, FALSE, sizeof (double));
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l; l++) {
    if (**l == '#' || **l == '\0')
      continue;
    g_auto(GStrv) tok = g_strsplit (*l, " ", -1);
    if (g_str_equal (tok[0], "config")) {
      f->lr0 = g_ascii_strtod (tok[1], NULL);
      f->b1 = g_ascii_strtod (tok[2], NULL);
      f->b2 = g_ascii_strtod (tok[3], NULL);
      f->eps = g_ascii_strtod (tok[4], NULL);
      f->wd = g_ascii_strtod (tok[5], NULL);
      f->warmup = g_ascii_strtoull (tok[6], NULL, 10);
      f->total = g_ascii_strtoull (tok[7], NULL, 10);
      f->max_norm = g_ascii_strtod (tok[8], NULL);
    } else if (g_str_equal (tok[0], "view")) {
      g_ptr_array_add (f->names, g_strdup (tok[1]));
      gint64 n = g_ascii_strtoll (tok[2], NULL, 10);
      gint nd = atoi (tok[3]), fr = atoi (tok[4]);
      g_array_append_val (f->numel, n);
      g_array_append_val (f->no_decay, nd);
      g_array_append_val (f->frozen, fr);
    } else if (g_str_equal (tok[0], "init")) {
      f->init = parse_doubles (tok + 1);
    } else if (g_str_equal (tok[0], "grad")) {
      g_ptr_array_add (f->grads, parse_doubles (tok + 1));
    } else if (g_str_equal (tok[0], "expect")) {
      g_ptr_array_add (f->expect, parse_doubles (tok + 1));
    } else if (g_str_equal (tok[0], "lr") || g_str_equal (tok[0], "norm")) {
      double v = g_ascii_strtod (tok[1], NULL);
      g_array_append_val (g_str_equal (tok[0], "lr") ? f->lr : f->norm, v);
    } else {
      g_error ("%s: unknown record '%s'", path, tok[0]);
    }
  }
  g_assert_nonnull (f->init);
  g_assert_cmpuint (f->grads->len, ==, f->expect->len);
  g_assert_cmpuint (f->grads->len, >, 0);
}

static void
fixture_clear (Fixture *f)
{
  g_ptr_array_unref (f->names);
  g_array_unref (f->numel);
  g_array_unref (f->no_decay);
  g_array_unref (f->frozen);
  g_array_unref (f->init);
  g_ptr_array_unref (f->grads);
  g_ptr_array_unref (f->expect);
  g_array_unref (f->lr);
  g_array_unref (f->norm);
}

static void
test_adamw_trajectory (void)
{
  Fixture f;
  fixture_load (&f);
  g_autoptr(StsimParamStore) store = stsim_param_store_new ("fixture", TRUE);
  StsimTensor *views[16];
  for (guint i = 0; i < f.names->len; i++) {
    gint64 shape[1] = { g_array_index (f.numel, gint64, i) };
    guint32 fl = (g_array_index (f.no_decay, gint, i) ? STSIM_VIEW_NO_DECAY : 0)
                 | (g_array_index (f.frozen, gint, i) ? STSIM_VIEW_FROZEN : 0);
    views[i] = stsim_param_store_add (store, f.names->pdata[i], 1, shape, fl);
    g_assert_nonnull (views[i]);
  }
  g_assert_true (stsim_param_store_finish (store, NULL));
  /* flat fixture vectors -> store views (the block may have padding) */
#define FOR_ELEMS(...)                                                        \
  { gint64 k = 0;                                                             \
    for (guint i = 0; i < f.names->len; i++)                                  \
      for (gint64 j = 0; j < views[i]->numel; j++, k++) { __VA_ARGS__; } }
  FOR_ELEMS (views[i]->data[j] = (float) g_array_index (f.init, double, k));

  StsimAdamWConfig cfg = { f.b1, f.b2, f.eps, f.wd };
  g_autoptr(StsimAdamW) opt = stsim_adamw_new (store, &cfg);
  StsimParamStore *stores[1] = { store };
  double worst = 0.0;
  for (guint t = 0; t < f.grads->len; t++) {
    GArray *g = f.grads->pdata[t], *e = f.expect->pdata[t];
    stsim_param_store_zero_grad (store);
    FOR_ELEMS (views[i]->grad[j] = (float) g_array_index (g, double, k));
    double norm = 0.0;
    g_assert_true (stsim_clip_grad_norm (stores, 1, f.max_norm, &norm, NULL));
    double want_norm = g_array_index (f.norm, double, t);
    g_assert_cmpfloat (fabs (norm - want_norm), <=, 1e-9 * want_norm);
    double lr = stsim_lr_linear (f.lr0, t, f.warmup, f.total);
    g_assert_cmpfloat (fabs (lr - g_array_index (f.lr, double, t)), <=, 1e-15);
    stsim_adamw_step (opt, lr);
    FOR_ELEMS ({
      double want = g_array_index (e, double, k), got = views[i]->data[j];
      double rel = fabs (got - want) / fabs (want);
      worst = MAX (worst, rel);
      if (rel > 1e-6)
        g_error ("step %u, %s[%" G_GINT64_FORMAT "]: got %.9g, reference %.9g (rel %.2e)",
                 t, (char *) f.names->pdata[i], j, got, want, rel);
    });
  }
  g_assert_cmpuint (stsim_adamw_get_t (opt), ==, f.grads->len);
  g_test_message ("AdamW %u steps (warmup, clipping on 2 steps, wd, no_decay, frozen): max rel err %.2e (bound 1e-6)",
                  f.grads->len, worst);
  /* the frozen view never moved */
  FOR_ELEMS (if (g_array_index (f.frozen, gint, i)) g_assert_cmpfloat (views[i]->data[j], ==, (float) g_array_index (f.init, double, k)));
  fixture_clear (&f);
}

static void
test_schedule (void)
{
  /* warmup 10 of 110 */
  g_assert_cmpfloat (stsim_lr_linear (1.0, 0, 10, 110), ==, 0.0);
  g_assert_cmpfloat (stsim_lr_linear (1.0, 5, 10, 110), ==, 0.5);
  g_assert_cmpfloat (stsim_lr_linear (1.0, 10, 10, 110), ==, 1.0);
  g_assert_cmpfloat (stsim_lr_linear (1.0, 60, 10, 110), ==, 0.5);
  g_assert_cmpfloat (stsim_lr_linear (1.0, 110, 10, 110), ==, 0.0);
  g_assert_cmpfloat (stsim_lr_linear (1.0, 200, 10, 110), ==, 0.0);
  /* SimCSE: no warmup, lr0·(T-t)/T */
  g_assert_cmpfloat (stsim_lr_linear (3e-5, 0, 0, 100), ==, 3e-5);
  g_assert_cmpfloat (fabs (stsim_lr_linear (3e-5, 25, 0, 100) - 2.25e-5), <, 1e-18);
}

static void
test_clip_nan (void)
{
  g_autoptr(StsimParamStore) store = stsim_param_store_new ("s", TRUE);
  gint64 shape[1] = { 4 };
  StsimTensor *w = stsim_param_store_add (store, "w", 1, shape, 0);
  g_assert_true (stsim_param_store_finish (store, NULL));
  w->grad[0] = 3.0f;
  w->grad[1] = 4.0f;
  StsimParamStore *stores[1] = { store };
  double norm = 0.0;
  g_assert_true (stsim_clip_grad_norm (stores, 1, 1.0, &norm, NULL));
  g_assert_cmpfloat (norm, ==, 5.0);
  g_assert_cmpfloat (fabs (w->grad[0] - 3.0 / (5.0 + 1e-6)), <, 1e-7);
  /* below the limit: untouched */
  w->grad[0] = 0.3f;
  w->grad[1] = 0.4f;
  g_assert_true (stsim_clip_grad_norm (stores, 1, 1.0, &norm, NULL));
  g_assert_cmpfloat (w->grad[0], ==, 0.3f);
  w->grad[2] = NAN;
  g_autoptr(GError) err = NULL;
  g_assert_false (stsim_clip_grad_norm (stores, 1, 1.0, &norm, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NUMERIC);
  g_assert_cmpfloat (w->grad[0], ==, 0.3f);
}

static void
test_store_views (void)
{
  g_autoptr(StsimParamStore) store = stsim_param_store_new ("enc", TRUE);
  gint64 w[2] = { 4, 3 }, b[1] = { 4 };
  stsim_param_store_add (store, "q.weight", 2, w, 0);
  stsim_param_store_add (store, "k.weight", 2, w, 0);
  stsim_param_store_add (store, "v.weight", 2, w, 0);
  stsim_param_store_add (store, "q.bias", 1, b, STSIM_VIEW_NO_DECAY);
  g_assert_true (stsim_param_store_finish (store, NULL));
  g_assert_cmpuint (stsim_param_store_get_n_views (store), ==, 4);
  const StsimParamView *v = stsim_param_store_lookup (store, "k.weight");
  g_assert_nonnull (v);
  g_assert_cmpint (v->offset, ==, 12);
  g_assert_null (stsim_param_store_lookup (store, "nope"));
  const char *qkv[3] = { "q.weight", "k.weight", "v.weight" };
  g_autoptr(GError) err = NULL;
  StsimTensor *fused = stsim_param_store_fuse (store, qkv, 3, &err);
  g_assert_no_error (err);
  g_assert_cmpint (fused->shape[0], ==, 12);
  g_assert_cmpint (fused->shape[1], ==, 3);
  g_assert_true (fused->data == stsim_param_store_lookup (store, "q.weight")->tensor->data);
  const char *bad[2] = { "q.weight", "v.weight" };
  g_assert_null (stsim_param_store_fuse (store, bad, 2, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_INVALID);
  g_test_message ("fuse error: %s", err->message);
  g_clear_error (&err);
  g_assert_false (stsim_param_store_set_frozen (store, "missing", TRUE, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  /* a frozen store has no gradient block and no trainable views */
  g_autoptr(StsimParamStore) teacher = stsim_param_store_new ("teacher", FALSE);
  StsimTensor *tw = stsim_param_store_add (teacher, "w", 2, w, 0);
  g_assert_true (stsim_param_store_finish (teacher, NULL));
  g_assert_null (stsim_param_store_get_grad (teacher, NULL));
  g_assert_false (stsim_tensor_requires_grad (tw));
  g_assert_cmpint (stsim_param_store_get_n_trainable (teacher), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/numerics/optim/adamw-trajectory", test_adamw_trajectory);
  g_test_add_func ("/numerics/optim/schedule", test_schedule);
  g_test_add_func ("/numerics/optim/clip", test_clip_nan);
  g_test_add_func ("/numerics/optim/store-views", test_store_views);
  return g_test_run ();
}
