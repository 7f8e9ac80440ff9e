/* test-rng.c: Philox4x32-10 known answers, the distributions, and
 * determinism of dropout and of a whole forward/backward at 1 and 2 threads. */
#include <math.h>
#include <stsim/stsim.h>

/* Random123 tests/kat_vectors, "philox4x32 10" lines (Salmon et al., SC'11). */
static void
test_philox_kat (void)
{
  static const guint32 kat[3][10] = {
    { 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000,
      0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8 },
    { 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
      0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd },
    { 0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
      0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1 },
  };
  for (int i = 0; i < 3; i++) {
    guint32 out[4];
    stsim_philox4x32_10 (kat[i], kat[i] + 4, out);
    for (int j = 0; j < 4; j++)
      g_assert_cmphex (out[j], ==, kat[i][6 + j]);
  }
}

static void
test_streams_and_seek (void)
{
  StsimRng a, b, c;
  stsim_rng_init (&a, 42, STSIM_RNG_STREAM_SHUFFLE);
  stsim_rng_init (&b, 42, STSIM_RNG_STREAM_SHUFFLE);
  stsim_rng_init (&c, 42, STSIM_RNG_STREAM_INIT);
  guint32 va[10];
  int same_c = 0;
  for (int i = 0; i < 10; i++) {
    va[i] = stsim_rng_u32 (&a);
    g_assert_cmphex (va[i], ==, stsim_rng_u32 (&b));
    same_c += va[i] == stsim_rng_u32 (&c);
    /* counter-indexed access gives the same words */
    g_assert_cmphex (va[i], ==, stsim_rng_word_at (42, STSIM_RNG_STREAM_SHUFFLE, i, 0, 0));
  }
  g_assert_cmpint (same_c, <, 2);
  /* save = three integers; restore and continue identically */
  guint64 pos = stsim_rng_tell (&a);
  g_assert_cmpuint (pos, ==, 10);
  guint32 next = stsim_rng_u32 (&a);
  StsimRng r;
  stsim_rng_init (&r, 42, STSIM_RNG_STREAM_SHUFFLE);
  stsim_rng_seek (&r, pos);
  g_assert_cmphex (stsim_rng_u32 (&r), ==, next);
}

static void
test_distributions (void)
{
  StsimRng r;
  stsim_rng_init (&r, 7, STSIM_RNG_STREAM_USER);
  const int n = 200000;
  double s = 0, s2 = 0, us = 0;
  float umin = 1, umax = 0;
  for (int i = 0; i < n; i++) {
    double z = stsim_rng_normal (&r);
    s += z;
    s2 += z * z;
    float u = stsim_rng_uniform (&r);
    umin = MIN (umin, u);
    umax = MAX (umax, u);
    us += u;
  }
  /* 5 sigma: mean sd 1/sqrt(n) = 0.0022; var sd sqrt(2/n) = 0.0032; uniform mean sd 0.00065 */
  g_assert_cmpfloat (fabs (s / n), <, 0.011);
  g_assert_cmpfloat (fabs (s2 / n - 1.0), <, 0.016);
  g_assert_cmpfloat (fabs (us / n - 0.5), <, 0.0033);
  g_assert_cmpfloat (umin, >=, 0.0f);
  g_assert_cmpfloat (umax, <, 1.0f);
  /* integers in a range: every value hit, none outside, counts within 5 sigma */
  int counts[7] = { 0 };
  for (int i = 0; i < 70000; i++) {
    gint64 v = stsim_rng_range (&r, -3, 4);
    g_assert_cmpint (v, >=, -3);
    g_assert_cmpint (v, <, 4);
    counts[v + 3]++;
  }
  for (int i = 0; i < 7; i++)
    g_assert_cmpint (abs (counts[i] - 10000), <, 5 * 93);
  /* permutations are permutations, and differ between draws */
  gint32 p1[50], p2[50];
  stsim_rng_permutation (&r, p1, 50);
  stsim_rng_permutation (&r, p2, 50);
  gboolean seen[50] = { 0 };
  int same = 0;
  for (int i = 0; i < 50; i++) {
    g_assert_false (seen[p1[i]]);
    seen[p1[i]] = TRUE;
    same += p1[i] == p2[i];
  }
  g_assert_cmpint (same, <, 50);
}

static void
test_dropout_mask_rate (void)
{
  const gint64 n = 100000;
  g_autofree guint8 *m1 = g_new (guint8, n), *m2 = g_new (guint8, n), *m3 = g_new (guint8, n);
  stsim_dropout_mask (42, 3, 1, n, 0.1f, m1);
  stsim_dropout_mask (42, 3, 1, n, 0.1f, m2);
  stsim_dropout_mask (43, 3, 1, n, 0.1f, m3);
  gint64 kept = 0, diff = 0;
  for (gint64 i = 0; i < n; i++) {
    g_assert_cmpint (m1[i], ==, m2[i]);
    kept += m1[i];
    diff += m1[i] != m3[i];
  }
  /* keep rate 0.9, sd sqrt(.09/n) ≈ 0.00095 */
  g_assert_cmpfloat (fabs ((double) kept / n - 0.9), <, 0.005);
  /* another seed: independent masks disagree on ~18% of elements */
  g_assert_cmpint (diff, >, n / 10);
  /* a sub-range of a mask equals the same elements of the whole (counter indexing) */
  stsim_dropout_mask (42, 3, 2, n, 0.1f, m2);
  diff = 0;
  for (gint64 i = 0; i < n; i++)
    diff += m1[i] != m2[i];
  g_assert_cmpint (diff, >, n / 10);   /* another op index: another mask */
}

/* The vectorised, threaded mask generator against its definition, written
 * here with the KAT-checked scalar block function: element e keeps iff word
 * e%4 of Philox(counter = (e/4, op, step, DROPOUT stream), key = seed) is
 * >= p·2^32. Odd lengths exercise the partial last block; both thread
 * counts; a huge seed exercises the high key word. */
static void
test_dropout_mask_definition (void)
{
  const gint64 n = 70001;
  const guint64 seeds[] = { 7, G_GUINT64_CONSTANT (0xFEDCBA9876543210) };
  g_autofree guint8 *m = g_new (guint8, n);
  int saved = stsim_get_threads ();
  for (int threads = 1; threads <= 2; threads++)
    for (gsize si = 0; si < G_N_ELEMENTS (seeds); si++) {
      stsim_set_threads (threads);
      guint64 seed = seeds[si];
      stsim_dropout_mask (seed, 11, 5, n, 0.25f, m);
      guint32 thr = (guint32) ldexp (0.25, 32);
      for (gint64 e = 0; e < n; e++) {
        guint32 ctr[4] = { (guint32) (e >> 2), 5, 11, STSIM_RNG_STREAM_DROPOUT };
        guint32 key[2] = { (guint32) seed, (guint32) (seed >> 32) }, w[4];
        stsim_philox4x32_10 (ctr, key, w);
        if (m[e] != (w[e & 3] >= thr))
          g_error ("seed %" G_GUINT64_FORMAT ", %d threads: element %" G_GINT64_FORMAT " is %d", seed, threads, e, m[e]);
      }
    }
  stsim_set_threads (saved);
}

/* A small transformer-like block with every random and parallel op. */
typedef struct {
  float *out, *gx, *gw;
  gint64 n_out, n_x, n_w;
} RunResult;

static void
run_block (guint64 seed, int threads, RunResult *res)
{
  stsim_set_threads (threads);
  const gint64 B = 8, L = 32, H = 192, N = B * L;
  g_autoptr(StsimParamStore) store = stsim_param_store_new ("det", TRUE);
  gint64 wshape[2] = { 3 * H, H }, bshape[1] = { 3 * H }, gshape[1] = { H };
  StsimTensor *wqkv = stsim_param_store_add (store, "qkv.weight", 2, wshape, 0);
  StsimTensor *bqkv = stsim_param_store_add (store, "qkv.bias", 1, bshape, STSIM_VIEW_NO_DECAY);
  StsimTensor *gam = stsim_param_store_add (store, "ln.weight", 1, gshape, STSIM_VIEW_NO_DECAY);
  g_assert_true (stsim_param_store_finish (store, NULL));
  StsimRng r;
  stsim_rng_init (&r, 5, STSIM_RNG_STREAM_INIT);
  stsim_rng_fill_normal (&r, wqkv->data, wqkv->numel, 0, 0.05f);
  stsim_rng_fill_normal (&r, bqkv->data, bqkv->numel, 0, 0.02f);
  for (gint64 i = 0; i < H; i++)
    gam->data[i] = 1.0f;
  g_autoptr(StsimTape) t = stsim_tape_new (seed, 0);
  stsim_tape_set_step (t, 17);
  gint64 xs[2] = { N, H };
  StsimTensor *x = stsim_tensor_new (t, 2, xs);
  stsim_rng_fill_normal (&r, x->data, x->numel, 0, 1);
  stsim_tensor_set_requires_grad (x, TRUE);
  StsimSeq seqs[8];
  for (int b = 0; b < B; b++)
    seqs[b] = (StsimSeq) { (gint32) (b * L), (gint32) L, (gint32) (5 + 3 * b) };
  StsimTensor *h = stsim_dropout (t, x, 0.1f);
  StsimTensor *qkv = stsim_linear_act (t, h, wqkv, bqkv, STSIM_ACT_NONE);
  StsimTensor *ctx = stsim_attention_qkv (t, qkv, seqs, B, 4, 0.1f);
  StsimTensor *y = stsim_add_layer_norm (t, stsim_dropout (t, ctx, 0.1f), h, gam, NULL, 1e-12f);
  StsimTensor *loss = stsim_sum (t, stsim_mul (t, y, y));
  g_assert_true (stsim_tape_backward (t, loss, NULL, NULL));
  res->n_out = y->numel;
  res->out = g_memdup2 (y->data, sizeof (float) * y->numel);
  res->n_x = x->numel;
  res->gx = g_memdup2 (x->grad, sizeof (float) * x->numel);
  res->n_w = wqkv->numel;
  res->gw = g_memdup2 (wqkv->grad, sizeof (float) * wqkv->numel);
}

static void
result_clear (RunResult *r)
{
  g_free (r->out);
  g_free (r->gx);
  g_free (r->gw);
}

static void
test_threads_bit_identical (void)
{
  RunResult a, b, c, d;
  run_block (42, 1, &a);
  run_block (42, 2, &b);
  run_block (43, 2, &c);
  run_block (42, 3, &d);
  g_assert_cmpmem (a.out, sizeof (float) * a.n_out, d.out, sizeof (float) * d.n_out);
  g_assert_cmpmem (a.gw, sizeof (float) * a.n_w, d.gw, sizeof (float) * d.n_w);
  g_assert_cmpmem (a.out, sizeof (float) * a.n_out, b.out, sizeof (float) * b.n_out);
  g_assert_cmpmem (a.gx, sizeof (float) * a.n_x, b.gx, sizeof (float) * b.n_x);
  g_assert_cmpmem (a.gw, sizeof (float) * a.n_w, b.gw, sizeof (float) * b.n_w);
  g_assert_true (memcmp (a.out, c.out, sizeof (float) * a.n_out) != 0);
  g_test_message ("forward output, input gradient and weight gradient bit-identical at 1, 2 and 3 threads (%"
                  G_GINT64_FORMAT " + %" G_GINT64_FORMAT " + %" G_GINT64_FORMAT " floats); seed 43 differs",
                  a.n_out, a.n_x, a.n_w);
  result_clear (&a);
  result_clear (&b);
  result_clear (&c);
  result_clear (&d);
  stsim_set_threads (0);
}

static void
test_eval_mode_no_dropout (void)
{
  g_autoptr(StsimTape) t = stsim_tape_new (1, 0);
  gint64 s[1] = { 100 };
  StsimTensor *x = stsim_tensor_new (t, 1, s);
  for (int i = 0; i < 100; i++)
    x->data[i] = (float) i;
  stsim_tape_set_training (t, FALSE);
  g_assert_true (stsim_dropout (t, x, 0.5f) == x);
  stsim_tape_set_training (t, TRUE);
  StsimTensor *y = stsim_dropout (t, x, 0.5f);
  int zeros = 0;
  for (int i = 1; i < 100; i++) {
    zeros += y->data[i] == 0.0f;
    g_assert_true (y->data[i] == 0.0f || y->data[i] == 2.0f * x->data[i]);
  }
  g_assert_cmpint (zeros, >, 20);
  g_assert_cmpint (zeros, <, 80);
  /* no grad mode: nothing recorded */
  stsim_tape_set_grad_enabled (t, FALSE);
  stsim_tensor_set_requires_grad (x, TRUE);
  gsize before = stsim_tape_get_n_nodes (t);
  StsimTensor *z = stsim_gelu (t, x);
  g_assert_false (stsim_tensor_requires_grad (z));
  g_assert_cmpuint (stsim_tape_get_n_nodes (t), ==, before);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/numerics/rng/philox-kat", test_philox_kat);
  g_test_add_func ("/numerics/rng/streams-seek", test_streams_and_seek);
  g_test_add_func ("/numerics/rng/distributions", test_distributions);
  g_test_add_func ("/numerics/rng/dropout-mask", test_dropout_mask_rate);
  g_test_add_func ("/numerics/rng/dropout-mask-definition", test_dropout_mask_definition);
  g_test_add_func ("/numerics/rng/threads-bit-identical", test_threads_bit_identical);
  g_test_add_func ("/numerics/rng/eval-mode", test_eval_mode_no_dropout);
  return g_test_run ();
}
