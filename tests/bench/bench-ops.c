/* bench-ops: the heavy autograd ops at BERT-base shapes, next to raw
 * cblas_sgemm on the same shapes, at 1 and 2 threads.
 *
 *   bench-ops [--csv FILE] [--reps N] [--threads 1,2]
 *
 * Each case runs once to warm the arena, then N timed repetitions of the
 * forward pass and N of forward+backward on a fresh step (tape reset);
 * backward time = (forward+backward) - forward, best of N each. GFLOP/s
 * counts the GEMM work (2·M·N·K per GEMM); GB/s counts the bytes an
 * elementwise/normalisation kernel must move at least once. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <stsim/stsim.h>

typedef struct {
  const char *op, *shape;
  double fwd_work, bwd_work;    /* FLOPs or bytes */
  gboolean bytes;
  StsimTensor *(*build) (StsimTape *t, gpointer user);
  gpointer user;
} Case;

static FILE *csv;
static int reps = 3;

static double
now (void)
{
  return g_get_monotonic_time () / 1e6;
}

typedef struct {
  gint64 N, In, O;
  StsimActivation act;
  StsimTensor *w, *b;
  float *xdata;
} LinU;

static StsimTensor *
build_linear (StsimTape *t, gpointer user)
{
  LinU *u = user;
  gint64 s[2] = { u->N, u->In };
  StsimTensor *x = stsim_tensor_wrap (t, 2, s, u->xdata);
  stsim_tensor_set_requires_grad (x, TRUE);
  return stsim_linear_act (t, x, u->w, u->b, u->act);
}

typedef struct {
  gint64 N, H;
  int nh;
  StsimSeq *seqs;
  gsize ns;
  float *qkv;
  float p;
} AttU;

static StsimTensor *
build_attention (StsimTape *t, gpointer user)
{
  AttU *u = user;
  gint64 s[2] = { u->N, 3 * u->H };
  StsimTensor *x = stsim_tensor_wrap (t, 2, s, u->qkv);
  stsim_tensor_set_requires_grad (x, TRUE);
  return stsim_attention_qkv (t, x, u->seqs, u->ns, u->nh, u->p);
}

typedef struct {
  gint64 N, H;
  float *x, *r;
  StsimTensor *g, *b;
  int kind;   /* 0 layer norm, 1 add+layer norm, 2 gelu */
} EwU;

static StsimTensor *
build_ew (StsimTape *t, gpointer user)
{
  EwU *u = user;
  gint64 s[2] = { u->N, u->H };
  StsimTensor *x = stsim_tensor_wrap (t, 2, s, u->x);
  stsim_tensor_set_requires_grad (x, TRUE);
  if (u->kind == 2)
    return stsim_gelu (t, x);
  if (u->kind == 1) {
    StsimTensor *r = stsim_tensor_wrap (t, 2, s, u->r);
    stsim_tensor_set_requires_grad (r, TRUE);
    return stsim_add_layer_norm (t, x, r, u->g, u->b, 1e-12f);
  }
  return stsim_layer_norm (t, x, u->g, u->b, 1e-12f);
}

static void
report (const char *op, const char *shape, int threads, const char *dir, double sec, double work, gboolean bytes)
{
  double rate = work / sec / 1e9;
  printf ("%-26s %-28s %2d  %-4s %9.3f ms  %8.1f %s\n", op, shape, threads, dir, sec * 1e3, rate,
          bytes ? "GB/s" : "GFLOP/s");
  if (csv)
    fprintf (csv, "%s,%s,%d,%s,%.6f,%.3f,%s\n", op, shape, threads, dir, sec * 1e3, rate, bytes ? "GB/s" : "GFLOP/s");
}

static void
run_case (StsimTape *t, Case *c, int threads)
{
  float *seed = NULL;
  double best_f = 1e30, best_fb = 1e30;
  for (int r = -1; r < reps; r++) {
    stsim_tape_reset (t);
    double t0 = now ();
    (void) c->build (t, c->user);
    double t1 = now ();
    if (r >= 0)
      best_f = MIN (best_f, t1 - t0);
  }
  for (int r = -1; r < reps; r++) {
    stsim_tape_reset (t);
    double t0 = now ();
    StsimTensor *y = c->build (t, c->user);
    if (!seed) {
      seed = g_new (float, y->numel);
      for (gint64 i = 0; i < y->numel; i++)
        seed[i] = (float) ((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    }
    if (!stsim_tape_backward (t, y, seed, NULL))
      g_error ("backward failed for %s", c->op);
    double t1 = now ();
    if (r >= 0)
      best_fb = MIN (best_fb, t1 - t0);
  }
  stsim_tape_reset (t);
  g_free (seed);
  report (c->op, c->shape, threads, "fwd", best_f, c->fwd_work, c->bytes);
  report (c->op, c->shape, threads, "bwd", MAX (best_fb - best_f, 1e-9), c->bwd_work, c->bytes);
}

static void
raw_sgemm (const char *shape, int threads, gint64 M, gint64 N, gint64 K, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb,
           const char *label)
{
  float *a = g_malloc (sizeof (float) * M * K), *b = g_malloc (sizeof (float) * K * N), *c = g_malloc (sizeof (float) * M * N);
  for (gint64 i = 0; i < M * K; i++)
    a[i] = (float) (i % 7) * 0.1f;
  for (gint64 i = 0; i < K * N; i++)
    b[i] = (float) (i % 5) * 0.1f;
  double best = 1e30;
  for (int r = -1; r < reps; r++) {
    double t0 = now ();
    cblas_sgemm (CblasRowMajor, ta, tb, (int) M, (int) N, (int) K, 1.0f, a, ta == CblasNoTrans ? (int) K : (int) M,
                 b, tb == CblasNoTrans ? (int) N : (int) K, 0.0f, c, (int) N);
    double t1 = now ();
    if (r >= 0)
      best = MIN (best, t1 - t0);
  }
  report (label, shape, threads, "", best, 2.0 * M * N * K, FALSE);
  g_free (a);
  g_free (b);
  g_free (c);
}

int
main (int argc, char **argv)
{
  g_autofree char *csv_path = NULL;
  g_autofree char *threads_arg = NULL;
  GOptionEntry entries[] = {
    { "csv", 0, 0, G_OPTION_ARG_FILENAME, &csv_path, "also write the table as CSV to FILE", "FILE" },
    { "reps", 0, 0, G_OPTION_ARG_INT, &reps, "timed repetitions per case (best is reported)", "N" },
    { "threads", 0, 0, G_OPTION_ARG_STRING, &threads_arg, "comma-separated thread counts (default 1,2)", "LIST" },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new ("- benchmark the numerics ops at BERT-base shapes");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_autoptr(GError) err = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &err)) {
    g_printerr ("bench-ops: %s\n", err->message);
    return 2;
  }
  if (reps < 1)
    reps = 1;
  if (csv_path) {
    csv = fopen (csv_path, "w");
    if (!csv) {
      g_printerr ("bench-ops: cannot write %s\n", csv_path);
      return 1;
    }
    fprintf (csv, "op,shape,threads,direction,ms,rate,unit\n");
  }
  g_auto(GStrv) tl = g_strsplit (threads_arg ? threads_arg : "1,2", ",", -1);

  const gint64 N = 4096, H = 768, F = 3072;
  g_autoptr(StsimParamStore) store = stsim_param_store_new ("bench", TRUE);
  gint64 s1[2] = { F, H }, s2[2] = { H, F }, s3[2] = { H, H }, s4[2] = { 3 * H, H };
  gint64 bF[1] = { F }, bH[1] = { H }, b3[1] = { 3 * H };
  StsimTensor *w1 = stsim_param_store_add (store, "w1", 2, s1, 0), *b1 = stsim_param_store_add (store, "b1", 1, bF, 0);
  StsimTensor *w2 = stsim_param_store_add (store, "w2", 2, s2, 0), *b2 = stsim_param_store_add (store, "b2", 1, bH, 0);
  StsimTensor *w3 = stsim_param_store_add (store, "w3", 2, s3, 0), *b3t = stsim_param_store_add (store, "b3", 1, bH, 0);
  StsimTensor *w4 = stsim_param_store_add (store, "w4", 2, s4, 0), *b4 = stsim_param_store_add (store, "b4", 1, b3, 0);
  StsimTensor *lg = stsim_param_store_add (store, "ln.g", 1, bH, 0), *lb = stsim_param_store_add (store, "ln.b", 1, bH, 0);
  stsim_param_store_finish (store, NULL);
  gint64 np;
  float *pd = stsim_param_store_get_data (store, &np);
  StsimRng rng;
  stsim_rng_init (&rng, 1, STSIM_RNG_STREAM_INIT);
  stsim_rng_fill_normal (&rng, pd, np, 0, 0.02f);
  for (gint64 i = 0; i < H; i++)
    lg->data[i] = 1.0f;
  float *x768 = g_malloc (sizeof (float) * N * H), *x3072 = g_malloc (sizeof (float) * N * F);
  float *r768 = g_malloc (sizeof (float) * N * H), *qkv = g_malloc (sizeof (float) * N * 3 * H);
  stsim_rng_fill_normal (&rng, x768, N * H, 0, 1);
  stsim_rng_fill_normal (&rng, r768, N * H, 0, 1);
  stsim_rng_fill_normal (&rng, x3072, N * F, 0, 1);
  stsim_rng_fill_normal (&rng, qkv, N * 3 * H, 0, 1);

  LinU l1 = { N, H, F, STSIM_ACT_NONE, w1, b1, x768 }, l1g = { N, H, F, STSIM_ACT_GELU, w1, b1, x768 };
  LinU l2 = { N, F, H, STSIM_ACT_NONE, w2, b2, x3072 }, l3 = { N, H, H, STSIM_ACT_NONE, w3, b3t, x768 };
  LinU l4 = { N, H, 3 * H, STSIM_ACT_NONE, w4, b4, x768 };
  /* attention: B=128 sequences of L=32; padded (all 32 rows, keys = real lengths) and packed */
  const int B = 128, L = 32;
  StsimSeq padded[128], packed[128];
  gint64 tot = 0;
  for (int b = 0; b < B; b++) {
    int len = 8 + (int) ((b * 37) % 25);   /* lengths 8..32, mean ~20 */
    padded[b] = (StsimSeq) { b * L, L, len };
    packed[b] = (StsimSeq) { (gint32) tot, len, len };
    tot += len;
  }
  double att_flops = 4.0 * B * L * L * H;   /* QKᵀ and P·V at full L */
  double att_packed_flops = 0;
  for (int b = 0; b < B; b++)
    att_packed_flops += 4.0 * packed[b].rows * packed[b].rows * H;
  AttU ap = { N, H, 12, padded, B, qkv, 0.1f }, ak = { tot, H, 12, packed, B, qkv, 0.1f };
  AttU afull = { N, H, 12, NULL, B, qkv, 0.1f };
  StsimSeq full[128];
  for (int b = 0; b < B; b++)
    full[b] = (StsimSeq) { b * L, L, L };
  afull.seqs = full;
  EwU ln = { N, H, x768, NULL, lg, lb, 0 }, aln = { N, H, x768, r768, lg, lb, 1 }, ge = { N, F, x3072, NULL, NULL, NULL, 2 };
  double lin = 2.0 * N * H * F;
  Case cases[] = {
    { "linear 768->3072", "4096x768 W3072x768", lin, 2 * lin, FALSE, build_linear, &l1 },
    { "linear+gelu 768->3072", "4096x768 W3072x768", lin, 2 * lin, FALSE, build_linear, &l1g },
    { "linear 3072->768", "4096x3072 W768x3072", lin, 2 * lin, FALSE, build_linear, &l2 },
    { "linear 768->768", "4096x768 W768x768", lin / 4, lin / 2, FALSE, build_linear, &l3 },
    { "linear qkv 768->2304", "4096x768 W2304x768", 3 * lin / 4, 3 * lin / 2, FALSE, build_linear, &l4 },
    { "attention full L=32", "B128 L32 H768 nh12 p.1", att_flops, 2 * att_flops, FALSE, build_attention, &afull },
    { "attention padded", "B128 L32 lens8-32 (flops@L)", att_flops, 2 * att_flops, FALSE, build_attention, &ap },
    { "attention packed", "B128 lens8-32 (real flops)", att_packed_flops, 2 * att_packed_flops, FALSE, build_attention, &ak },
    { "layer_norm", "4096x768", 2.0 * N * H * 4, 3.0 * N * H * 4, TRUE, build_ew, &ln },
    { "add_layer_norm", "4096x768", 3.0 * N * H * 4, 4.0 * N * H * 4, TRUE, build_ew, &aln },
    { "gelu", "4096x3072", 2.0 * N * F * 4, 3.0 * N * F * 4, TRUE, build_ew, &ge },
  };
  printf ("%-26s %-28s %2s  %-4s %12s  %s\n", "op", "shape", "th", "dir", "time", "rate");
  for (char **tc = tl; *tc; tc++) {
    int th = atoi (*tc);
    stsim_set_threads (th);
    raw_sgemm ("4096x768 . (3072x768)T", th, N, F, H, CblasNoTrans, CblasTrans, "sgemm fwd 768->3072");
    raw_sgemm ("4096x3072 . (768x3072)T", th, N, H, F, CblasNoTrans, CblasTrans, "sgemm fwd 3072->768");
    raw_sgemm ("4096x768 . (768x768)T", th, N, H, H, CblasNoTrans, CblasTrans, "sgemm fwd 768->768");
    raw_sgemm ("(4096x3072)T . 4096x768", th, F, H, N, CblasTrans, CblasNoTrans, "sgemm dW 768->3072");
    g_autoptr(StsimTape) t = stsim_tape_new (7, 0);
    for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
      stsim_param_store_zero_grad (store);
      run_case (t, &cases[i], th);
    }
    printf ("arena high-water at %d threads: %.1f MB\n", th, stsim_arena_get_high_water (stsim_tape_get_arena (t)) / 1e6);
  }
  if (csv)
    fclose (csv);
  g_free (x768);
  g_free (x3072);
  g_free (r768);
  g_free (qkv);
  return 0;
}
