/* test-arena.c: arena alignment, reset, high-water mark, growth only
 * between steps, no allocation inside a steady-state training step, marks
 * and the pool, and a backward that frees gradients and scratch as it goes
 * (same gradients, less memory). */
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

/* A mark rewinds the bump pointer, overflow chunks included. */
static void
test_mark_release (void)
{
  g_autoptr(StsimArena) a = stsim_arena_new (4096);
  stsim_arena_alloc (a, 1000);
  gsize used = stsim_arena_get_used (a);
  StsimArenaMark m = stsim_arena_mark (a);
  gpointer p1 = stsim_arena_alloc (a, 512);
  stsim_arena_alloc (a, 1 << 20);                 /* overflow chunk */
  StsimArenaMark inner = stsim_arena_mark (a);
  stsim_arena_alloc (a, 2 << 20);                 /* another */
  stsim_arena_release (a, &inner);
  g_assert_cmpuint (stsim_arena_get_used (a), ==, used + 512 + (1 << 20));
  stsim_arena_release (a, &m);
  g_assert_cmpuint (stsim_arena_get_used (a), ==, used);
  g_assert_true (stsim_arena_alloc (a, 512) == p1);   /* the same memory again */
  g_assert_cmpuint (stsim_arena_get_high_water (a), ==, used + 512 + (3 << 20));
  /* the block is sized by the step's peak, not by what is left at the reset */
  stsim_arena_reset (a);
  g_assert_cmpuint (stsim_arena_get_capacity (a), >=, used + 512 + (3 << 20));
}

/* Pool blocks are reused by size class, counted in use and high water,
 * kept over a reset when the step used them and unmapped when not. */
static void
test_pool (void)
{
  g_autoptr(StsimArena) a = stsim_arena_new (4096);
  float *x = stsim_arena_pool_alloc (a, 1 << 20);
  float *y = stsim_arena_pool_alloc (a, 1 << 20);
  g_assert_cmpuint (GPOINTER_TO_SIZE (x) % 64, ==, 0);
  g_assert_cmpuint (stsim_arena_get_used (a), ==, 2 << 20);
  x[0] = y[0] = 1.0f;
  stsim_arena_pool_free (a, x);
  g_assert_cmpuint (stsim_arena_get_used (a), ==, 1 << 20);
  guint64 m = stsim_arena_get_n_mallocs (a);
  g_assert_true (stsim_arena_pool_alloc (a, (1 << 20) - 1000) == x);   /* same class: reused */
  g_assert_cmpuint (stsim_arena_get_n_mallocs (a), ==, m);
  float *z = stsim_arena_pool_alloc (a, 3 << 20);                     /* another class: new */
  g_assert_cmpuint (stsim_arena_get_n_mallocs (a), ==, m + 1);
  g_assert_cmpuint (stsim_arena_get_high_water (a), ==, 5 << 20);
  g_assert_cmpuint (stsim_arena_get_pool_held (a), ==, 5 << 20);
  stsim_arena_reset (a);                                            /* all three used: kept */
  g_assert_cmpuint (stsim_arena_get_used (a), ==, 0);
  g_assert_cmpuint (stsim_arena_get_pool_held (a), ==, 5 << 20);
  g_assert_true (stsim_arena_pool_alloc (a, 3 << 20) == z);
  stsim_arena_reset (a);                                            /* the 1 MiB blocks were not used */
  g_assert_cmpuint (stsim_arena_get_pool_held (a), ==, 3 << 20);
}

/* Two layers of a transformer block (dropout, fused QKV, attention, GELU,
 * add+LayerNorm) and a cross-entropy; its input a leaf that needs grad. */
static StsimTensor *
small_net (StsimTape *t, StsimTensor *const *w, StsimTensor *x)
{
  StsimSeq seqs[4] = { { 0, 16, 16 }, { 16, 16, 9 }, { 32, 16, 12 }, { 48, 16, 3 } };
  static gint32 target[64];
  for (int i = 0; i < 64; i++)
    target[i] = (7 * i) % 32;
  StsimTensor *h = stsim_dropout (t, x, 0.1f);
  for (int l = 0; l < 2; l++) {
    StsimTensor *qkv = stsim_linear (t, h, w[0], NULL);
    StsimTensor *c = stsim_attention_qkv (t, qkv, seqs, 4, 2, 0.1f);
    StsimTensor *f = stsim_linear_act (t, c, w[1], NULL, STSIM_ACT_GELU);
    h = stsim_add_layer_norm (t, stsim_dropout (t, f, 0.1f), h, w[2], NULL, 1e-12f);
  }
  return stsim_cross_entropy (t, h, target, -100);
}

/* The default backward (each op output's gradient freed once used, each
 * node's scratch rewound) gives bit-identical gradients to one that keeps
 * everything, with a lower peak, and what is left in use afterwards is the
 * forward's memory and the leaf's gradient. */
static void
test_backward_release (void)
{
  const gint64 N = 64, H = 32;
  g_autoptr(StsimParamStore) store = stsim_param_store_new ("m", TRUE);
  gint64 w1[2] = { 3 * H, H }, w2[2] = { H, H }, g1[1] = { H };
  StsimTensor *w[3];
  w[0] = stsim_param_store_add (store, "qkv", 2, w1, 0);
  w[1] = stsim_param_store_add (store, "w", 2, w2, 0);
  w[2] = stsim_param_store_add (store, "g", 1, g1, STSIM_VIEW_NO_DECAY);
  g_assert_true (stsim_param_store_finish (store, NULL));
  StsimRng r;
  stsim_rng_init (&r, 1, STSIM_RNG_STREAM_INIT);
  stsim_rng_fill_normal (&r, w[0]->data, w[0]->numel, 0, 0.1f);
  stsim_rng_fill_normal (&r, w[1]->data, w[1]->numel, 0, 0.1f);
  for (gint64 i = 0; i < H; i++)
    w[2]->data[i] = 1.0f;
  float *gx[2], *gw[2];
  gsize hw[2], peak_fwd[2], after[2];
  gint64 n_w = 0;
  for (int keep = 0; keep < 2; keep++) {
    g_autoptr(StsimTape) t = stsim_tape_new (3, 0);
    stsim_tape_set_keep_grads (t, keep);
    stsim_tape_set_step (t, 4);
    StsimArena *arena = stsim_tape_get_arena (t);
    gint64 xs[2] = { N, H };
    StsimTensor *x = stsim_tensor_new (t, 2, xs);
    StsimRng xr;
    stsim_rng_init (&xr, 9, STSIM_RNG_STREAM_USER);
    stsim_rng_fill_normal (&xr, x->data, x->numel, 0, 1);
    stsim_tensor_set_requires_grad (x, TRUE);
    StsimTensor *loss = small_net (t, w, x);
    g_assert_nonnull (loss);
    peak_fwd[keep] = stsim_arena_get_used (arena);
    stsim_param_store_zero_grad (store);
    g_assert_true (stsim_tape_backward (t, loss, NULL, NULL));
    hw[keep] = stsim_arena_get_high_water (arena);
    after[keep] = stsim_arena_get_used (arena);
    gx[keep] = g_memdup2 (x->grad, (gsize) x->numel * sizeof (float));
    const float *g = stsim_param_store_get_grad (store, &n_w);
    gw[keep] = g_memdup2 (g, (gsize) n_w * sizeof (float));
  }
  g_assert_cmpmem (gx[0], N * H * sizeof (float), gx[1], N * H * sizeof (float));
  g_assert_cmpmem (gw[0], n_w * sizeof (float), gw[1], n_w * sizeof (float));
  g_assert_cmpuint (peak_fwd[0], ==, peak_fwd[1]);
  /* Keeping every gradient costs about the forward's activations again. */
  /* Released: left in use are the forward's memory and x's gradient (its
   * size class is at most 1/8 larger); kept: every activation gradient. */
  g_assert_cmpuint (after[0], <=, peak_fwd[0] + (gsize) (N * H * 4) * 9 / 8);
  g_assert_cmpuint (after[1], >, after[0] + peak_fwd[0] / 4);
  g_assert_cmpuint (hw[0], <, hw[1]);
  g_test_message ("forward %" G_GSIZE_FORMAT " bytes; peak / left after backward with release %" G_GSIZE_FORMAT
                  " / %" G_GSIZE_FORMAT ", keeping every gradient %" G_GSIZE_FORMAT " / %" G_GSIZE_FORMAT,
                  peak_fwd[0], hw[0], after[0], hw[1], after[1]);
  for (int i = 0; i < 2; i++) {
    g_free (gx[i]);
    g_free (gw[i]);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/numerics/arena/alignment-reset", test_alignment_reset);
  g_test_add_func ("/numerics/arena/overflow", test_overflow_grows_between_steps);
  g_test_add_func ("/numerics/arena/steady-state", test_steady_state_no_malloc);
  g_test_add_func ("/numerics/arena/mark-release", test_mark_release);
  g_test_add_func ("/numerics/arena/pool", test_pool);
  g_test_add_func ("/numerics/arena/backward-release", test_backward_release);
  return g_test_run ();
}
