/* test-arena.c: arena alignment, reset, high-water mark, growth only
 * between steps, and no allocation inside a steady-state training step. */
#include <stsim/stsim.h>

static void
test_alignment_reset (void)
{
  g_autoptr(StsimArena) a = stsim_arena_new (4096);
  g_assert_cmpuint (stsim_arena_get_n_mallocs (a), ==, 1);
  for (int i = 1; i < 20; i++) {
    gpointer p = stsim_arena_alloc (a, (gsize) i * 3);
    g_assert_cmpuint (GPOINTER_TO_SIZE (p) % 64, ==, 0);
  }
  gsize used = stsim_arena_get_used (a);
  g_assert_cmpuint (used, >, 0);
  g_assert_cmpuint (stsim_arena_get_high_water (a), ==, used);
  stsim_arena_reset (a);
  g_assert_cmpuint (stsim_arena_get_used (a), ==, 0);
  g_assert_cmpuint (stsim_arena_get_high_water (a), ==, used);   /* kept across resets */
  g_assert_cmpuint (stsim_arena_get_n_mallocs (a), ==, 1);        /* fitted: no growth */
}

static void
test_overflow_grows_between_steps (void)
{
  g_autoptr(StsimArena) a = stsim_arena_new (1024);
  float *first = stsim_arena_alloc (a, 512);
  first[0] = 1.0f;
  float *big = stsim_arena_alloc (a, 100000);     /* does not fit: overflow chunk */
  big[99999 / 4] = 2.0f;
  g_assert_cmpfloat (first[0], ==, 1.0f);          /* earlier pointers stay valid */
  g_assert_cmpuint (stsim_arena_get_capacity (a), ==, 1024);   /* no growth inside the step */
  guint64 m = stsim_arena_get_n_mallocs (a);
  stsim_arena_reset (a);
  g_assert_cmpuint (stsim_arena_get_capacity (a), >=, 512 + 100000);
  g_assert_cmpuint (stsim_arena_get_n_mallocs (a), ==, m + 1);
  /* the same step again: no allocation at all */
  m = stsim_arena_get_n_mallocs (a);
  stsim_arena_alloc (a, 512);
  stsim_arena_alloc (a, 100000);
  stsim_arena_reset (a);
  g_assert_cmpuint (stsim_arena_get_n_mallocs (a), ==, m);
}

/* A training loop (linear+gelu, layer norm, attention, loss, AdamW): after
 * the first step the arena never allocates again. */
static void
test_steady_state_no_malloc (void)
{
  const gint64 N = 64, H = 32;
  g_autoptr(StsimParamStore) store = stsim_param_store_new ("m", TRUE);
  gint64 w1[2] = { 3 * H, H }, w2[2] = { H, H }, g1[1] = { H };
  StsimTensor *wqkv = stsim_param_store_add (store, "qkv", 2, w1, 0);
  StsimTensor *w = stsim_param_store_add (store, "w", 2, w2, 0);
  StsimTensor *gam = stsim_param_store_add (store, "g", 1, g1, STSIM_VIEW_NO_DECAY);
  g_assert_true (stsim_param_store_finish (store, NULL));
  StsimRng r;
  stsim_rng_init (&r, 1, STSIM_RNG_STREAM_INIT);
  stsim_rng_fill_normal (&r, wqkv->data, wqkv->numel, 0, 0.1f);
  stsim_rng_fill_normal (&r, w->data, w->numel, 0, 0.1f);
  for (gint64 i = 0; i < H; i++)
    gam->data[i] = 1.0f;
  StsimAdamWConfig cfg = STSIM_ADAMW_CONFIG_INIT;
  g_autoptr(StsimAdamW) opt = stsim_adamw_new (store, &cfg);
  g_autoptr(StsimTape) t = stsim_tape_new (3, 0);
  StsimArena *arena = stsim_tape_get_arena (t);
  StsimSeq seqs[4] = { { 0, 16, 16 }, { 16, 16, 9 }, { 32, 16, 12 }, { 48, 16, 3 } };
  gint32 target[64];
  for (int i = 0; i < 64; i++)
    target[i] = i % (int) H;
  guint64 mallocs_after_first = 0;
  gsize hw_first = 0;
  float first_loss = 0, last_loss = 0;
  for (int step = 0; step < 5; step++) {
    stsim_tape_set_step (t, step);
    gint64 xs[2] = { N, H };
    StsimTensor *x = stsim_tensor_new (t, 2, xs);
    StsimRng xr;
    stsim_rng_init (&xr, 9, STSIM_RNG_STREAM_USER);
    stsim_rng_fill_normal (&xr, x->data, x->numel, 0, 1);
    StsimTensor *qkv = stsim_linear (t, x, wqkv, NULL);
    StsimTensor *c = stsim_attention_qkv (t, qkv, seqs, 4, 2, 0.1f);
    StsimTensor *h = stsim_add_layer_norm (t, stsim_linear_act (t, c, w, NULL, STSIM_ACT_GELU), x, gam, NULL, 1e-12f);
    StsimTensor *loss = stsim_cross_entropy (t, h, target, -100);
    g_assert_nonnull (loss);
    if (step == 0)
      first_loss = loss->data[0];
    last_loss = loss->data[0];
    stsim_param_store_zero_grad (store);
    g_assert_true (stsim_tape_backward (t, loss, NULL, NULL));
    stsim_adamw_step (opt, 1e-2);
    if (step == 0)
      hw_first = stsim_arena_get_high_water (arena);
    stsim_tape_reset (t);
    if (step == 0)
      mallocs_after_first = stsim_arena_get_n_mallocs (arena);
    else
      g_assert_cmpuint (stsim_arena_get_n_mallocs (arena), ==, mallocs_after_first);
  }
  g_assert_cmpuint (stsim_arena_get_high_water (arena), ==, hw_first);
  g_assert_cmpfloat (last_loss, <, first_loss);   /* it trains */
  g_test_message ("arena: high-water %" G_GSIZE_FORMAT " bytes, capacity %" G_GSIZE_FORMAT ", %" G_GUINT64_FORMAT
                  " mallocs in total (all in step 1); loss %.4f -> %.4f", hw_first, stsim_arena_get_capacity (arena),
                  mallocs_after_first, first_loss, last_loss);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/numerics/arena/alignment-reset", test_alignment_reset);
  g_test_add_func ("/numerics/arena/overflow", test_overflow_grows_between_steps);
  g_test_add_func ("/numerics/arena/steady-state", test_steady_state_no_malloc);
  return g_test_run ();
}
