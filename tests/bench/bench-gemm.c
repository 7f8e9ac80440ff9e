/* bench-gemm: where the dense-layer GEMMs of a training step lose against
 * one raw cblas_sgemm call (issue 18).
 *
 *   bench-gemm [--configs mini,base] [--rows N] [--reps R] [--threads 1,2] [--csv FILE]
 *
 * For the four linears of an encoder layer ([3H,H], [H,H], [FF,H], [H,FF];
 * W is [out, in]) over N packed token rows (default 2816 = 2 x 64 sentences
 * x 22 tokens, a real SimCSE batch), it times the three GEMMs of
 * ops-linear.c: forward x·Wᵀ (NT), dx = dy·W (NN) and dW += dyᵀ·x (TN,
 * reduction over the token rows), each as
 *   raw    one cblas_sgemm call, OpenBLAS threading at t threads;
 *   stsim  stsim_k_sgemm (gemm.c: shape-fixed row chunks, each one
 *          single-threaded call, OpenMP over the chunks);
 *   split  one 16-aligned row chunk per thread: what the chunking would
 *          cost if its cut could follow the thread count (it cannot:
 *          OpenBLAS's Haswell kernel rounds a row differently depending on
 *          where the call's rows start, so this is for comparison only);
 *   pack   (1 thread) a 16-row call: re-packing op(B) plus 16 rows of work,
 *          the price of every extra chunk;
 *   c2     gemm.c's plan with at most 2 chunks instead of 4 (still from
 *          the shape alone, so thread-count independent; other bits than
 *          stsim under the Haswell kernel for the same reason as split);
 *   kblk   (dW only) the token rows cut into fixed blocks of at least 1024,
 *          one [O, In] partial product per block summed in block order:
 *          thread-count independent but other bits than stsim.
 * and, per layer, the linear's epilogues (bias + activation forward;
 * activation backward + bias-gradient column sums) for their share.
 *
 * The machine is shared: the variants run interleaved in one process, in
 * alternating order, and each figure is the median of R repetitions, in
 * wall and in process CPU time (the steadier one when other jobs share the
 * cores; at 2 threads it also hides time a thread waits). */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include "numerics/numerics-private.h"

enum { P_FWD, P_DX, P_DW, N_PATHS };
enum { V_RAW, V_STSIM, V_SPLIT, V_PACK, V_KBLK, V_C2, N_VARIANTS };
static const char *path_names[N_PATHS] = { "fwd NT", "dx NN", "dW TN" };

typedef struct {
  gboolean ta, tb;
  gint64 M, N, K, lda, ldb;
  const float *A, *B;
  float beta, *C;
} Gemm;

typedef struct {
  const char *name;
  gint64 O, In;
  StsimActivation act;
} Layer;

static int reps = 9;
static FILE *csv;

static double
now (void)
{
  return g_get_monotonic_time () / 1e6;
}

/* CPU seconds of the whole process (every thread): on a loaded machine the
 * wall clock measures the other jobs as much as ours. */
static double
cpu_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double
median (double *v, int n)
{
  qsort (v, (size_t) n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void
raw_call (const Gemm *g, gint64 r0, gint64 r1, float *C, float beta)
{
  const float *a = g->ta ? g->A + r0 : g->A + r0 * g->lda;
  cblas_sgemm (CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans, (int) (r1 - r0),
               (int) g->N, (int) g->K, 1.0f, a, (int) g->lda, g->B, (int) g->ldb, beta, C + r0 * g->N, (int) g->N);
}

/* One 16-aligned row chunk per thread, each a single-threaded call. */
static void
split_call (const Gemm *g, int threads)
{
  gint64 rows = ((g->M + threads - 1) / threads + 15) / 16 * 16;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (int c = 0; c < threads; c++)
    if (c * rows < g->M)
      raw_call (g, c * rows, MIN (g->M, (c + 1) * rows), g->C, g->beta);
}

/* gemm.c's plan (at least 128 rows and 2^20 multiply-adds per chunk, 16-row
 * aligned) capped at 2 chunks, run like stsim_k_sgemm runs its chunks. */
static void
c2_call (const Gemm *g, int threads)
{
  double work = (double) g->M * (double) g->N * (double) g->K;
  gint64 nc = g->M >= 256 && work >= (double) (1 << 21) ? 2 : 1;
  gint64 rows = ((g->M + nc - 1) / nc + 15) / 16 * 16;
#pragma omp parallel for schedule(static) num_threads(MAX (2, threads)) if (threads > 1)
  for (gint64 c = 0; c < nc; c++)
    raw_call (g, c * rows, MIN (g->M, (c + 1) * rows), g->C, g->beta);
}

/* dW with the reduction over token rows cut into fixed blocks (>= 1024 rows,
 * at most 4): partial [M, N] products, then summed in block order. */
static void
kblk_call (const Gemm *g, float *part)
{
  gint64 nb = CLAMP (g->K / 1024, 1, 4), kr = (g->K + nb - 1) / nb, MN = g->M * g->N;
#pragma omp parallel for schedule(static) if (nb > 1)
  for (gint64 b = 0; b < nb; b++) {
    gint64 k0 = b * kr, k1 = MIN (g->K, k0 + kr);
    /* op(A) = Aᵀ, A [K, M]: block rows k0..k1 of A and of B. */
    cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, (int) g->M, (int) g->N, (int) (k1 - k0), 1.0f,
                 g->A + k0 * g->lda, (int) g->lda, g->B + k0 * g->ldb, (int) g->ldb, 0.0f, part + b * MN,
                 (int) g->N);
  }
  for (gint64 b = 0; b < nb; b++)
    stsim_k_axpby (g->C, 1.0f, part + b * MN, 1.0f, MN);
}

/* Wall seconds of one run of variant @v; *cpu gets its CPU seconds. */
static double
time_variant (const Gemm *g, int v, int threads, float *part, double *cpu)
{
  double c0 = cpu_now (), t0 = now ();
  switch (v) {
  case V_RAW:   raw_call (g, 0, g->M, g->C, g->beta); break;
  case V_STSIM: stsim_k_sgemm (g->ta, g->tb, g->M, g->N, g->K, 1.0f, g->A, g->lda, g->B, g->ldb, g->beta, g->C, g->N); break;
  case V_SPLIT: split_call (g, threads); break;
  case V_PACK:  raw_call (g, 0, MIN (16, g->M), g->C, g->beta); break;
  case V_KBLK:  kblk_call (g, part); break;
  case V_C2:    c2_call (g, threads); break;
  default: break;
  }
  double t = now () - t0;
  *cpu = cpu_now () - c0;
  return t;
}

static Gemm
layer_gemm (int path, gint64 rows, const Layer *l, float *x, float *w, float *y, float *dw)
{
  switch (path) {
  case P_FWD: return (Gemm) { FALSE, TRUE, rows, l->O, l->In, l->In, l->In, x, w, 0.0f, y };
  case P_DX:  return (Gemm) { FALSE, FALSE, rows, l->In, l->O, l->O, l->In, y, w, 0.0f, x };
  default:    return (Gemm) { TRUE, FALSE, l->O, l->In, rows, l->O, l->In, y, x, 1.0f, dw };
  }
}

typedef struct {
  double t[N_VARIANTS];   /* medians, wall seconds */
  double u[N_VARIANTS];   /* medians, CPU seconds */
} Cell;

/* Median times of every variant of one GEMM at @threads, interleaved. */
static Cell
bench_gemm (const Gemm *g, int path, int threads, float *part)
{
  double *tv[N_VARIANTS], *uv[N_VARIANTS];
  Cell c = { { 0 }, { 0 } };
  for (int v = 0; v < N_VARIANTS; v++) {
    tv[v] = g_new0 (double, reps);
    uv[v] = g_new0 (double, reps);
  }
  for (int r = -1; r < reps; r++)
    for (int i = 0; i < N_VARIANTS; i++) {
      int v = r % 2 ? N_VARIANTS - 1 - i : i;   /* alternate the order */
      if ((v == V_PACK && threads != 1) || (v == V_KBLK && path != P_DW))
        continue;
      double u, t = time_variant (g, v, threads, part, &u);
      if (r >= 0) {
        tv[v][r] = t;
        uv[v][r] = u;
      }
    }
  for (int v = 0; v < N_VARIANTS; v++) {
    c.t[v] = median (tv[v], reps);
    c.u[v] = median (uv[v], reps);
    g_free (tv[v]);
    g_free (uv[v]);
  }
  return c;
}

/* Epilogue medians of one linear: [0] bias + activation forward, [1]
 * activation backward + bias-gradient column sums. */
static void
bench_epilogue (StsimTape *tape, const Layer *l, gint64 rows, float *y, float *pre, const float *b, float *dy,
                double out[2])
{
  double *tf = g_new (double, reps), *tb = g_new (double, reps);
  g_autofree float *db = g_new0 (float, l->O);
  gint64 n = rows * l->O;
  for (int r = 0; r < reps; r++) {
    for (gint64 i = 0; i < n; i++)
      pre[i] = dy[i] = (float) ((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    double t0 = now ();
    stsim_k_bias_act_forward (y, pre, b, rows, l->O, l->act);
    double t1 = now ();
    stsim_k_act_backward (dy, l->act == STSIM_ACT_GELU ? pre : y, n, l->act);
    stsim_k_colsum_acc (tape, db, dy, rows, l->O);
    double t2 = now ();
    stsim_tape_reset (tape);
    tf[r] = t1 - t0;
    tb[r] = t2 - t1;
  }
  out[0] = median (tf, reps);
  out[1] = median (tb, reps);
  g_free (tf);
  g_free (tb);
}

static void
fill (float *v, gint64 n, guint32 mul)
{
  for (gint64 i = 0; i < n; i++)
    v[i] = (float) ((i * mul) % 1000) * 1e-3f - 0.5f;
}

/* Sums over a config's layers: [0] wall, [1] CPU seconds. */
typedef struct {
  double raw[2], stsim[2], split[2], c2[2], kblk_raw[2], kblk[2], repack;
} Sums;

static void
sums_add (Sums *s, const Sums *a)
{
  for (int k = 0; k < 2; k++) {
    s->raw[k] += a->raw[k];
    s->stsim[k] += a->stsim[k];
    s->split[k] += a->split[k];
    s->c2[k] += a->c2[k];
    s->kblk_raw[k] += a->kblk_raw[k];
    s->kblk[k] += a->kblk[k];
  }
  s->repack += a->repack;
}

/* "eff" columns: raw / stsim and raw / split, wall then CPU time. */
static void
print_effs (const Sums *s)
{
  printf (" %8.3f %8.3f %5.1f%% %5.1f%% %8.3f %5.1f%% %5.1f%%", s->raw[0] * 1e3, s->stsim[0] * 1e3,
          100.0 * s->raw[0] / s->stsim[0], 100.0 * s->raw[1] / s->stsim[1], s->split[0] * 1e3,
          100.0 * s->raw[0] / s->split[0], 100.0 * s->raw[1] / s->split[1]);
  printf (" %8.3f %5.1f%% %5.1f%%", s->c2[0] * 1e3, 100.0 * s->raw[0] / s->c2[0], 100.0 * s->raw[1] / s->c2[1]);
  if (s->repack > 0)
    printf ("  repack %6.3f = %4.1f%%", s->repack * 1e3, 100.0 * s->repack / s->stsim[1]);
  if (s->kblk[0] > 0)
    printf ("  kblk %5.1f%% %5.1f%%", 100.0 * s->kblk_raw[0] / s->kblk[0], 100.0 * s->kblk_raw[1] / s->kblk[1]);
  printf ("\n");
}

/* One table row. At 1 thread "repack" estimates, in CPU time, what the
 * extra chunks pay for packing op(B) again: (chunks - 1) x (16-row call -
 * 16 rows' share of the raw call), and its share of stsim's CPU time. */
static void
print_row (const char *cfg, const Layer *l, const Gemm *g, int path, int threads, const Cell *c, Sums *s)
{
  gint64 rows;
  gint64 nc = stsim_k_sgemm_plan (g->M, g->N, g->K, &rows);
  Sums a = { { c->t[V_RAW], c->u[V_RAW] }, { c->t[V_STSIM], c->u[V_STSIM] }, { c->t[V_SPLIT], c->u[V_SPLIT] },
             { c->t[V_C2], c->u[V_C2] }, { 0, 0 }, { 0, 0 }, 0 };
  if (threads == 1)
    a.repack = (nc - 1) * MAX (0.0, c->u[V_PACK] - c->u[V_RAW] * 16.0 / (double) g->M);
  if (path == P_DW) {
    a.kblk_raw[0] = a.raw[0], a.kblk_raw[1] = a.raw[1];
    a.kblk[0] = c->t[V_KBLK], a.kblk[1] = c->u[V_KBLK];
  }
  printf ("%-4s %-6s %-6s %d %2" G_GINT64_FORMAT, cfg, l->name, path_names[path], threads, nc);
  print_effs (&a);
  if (csv)
    fprintf (csv, "%s,%s,%s,%d,%" G_GINT64_FORMAT ",%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f\n", cfg,
             l->name, path_names[path], threads, nc, a.raw[0] * 1e3, a.stsim[0] * 1e3, a.split[0] * 1e3,
             a.c2[0] * 1e3, a.kblk[0] * 1e3, a.raw[1] * 1e3, a.stsim[1] * 1e3, a.split[1] * 1e3, a.c2[1] * 1e3,
             a.kblk[1] * 1e3, a.repack * 1e3);
  sums_add (s, &a);
}

static const Layer *
config_layers (const char *cfg, gint64 *H, gint64 *FF)
{
  static Layer mini[4], base[4];
  gboolean is_base = g_strcmp0 (cfg, "base") == 0;
  if (!is_base && g_strcmp0 (cfg, "mini") != 0)
    return NULL;
  *H = is_base ? 768 : 256;
  *FF = 4 * *H;
  Layer *l = is_base ? base : mini;
  l[0] = (Layer) { "qkv", 3 * *H, *H, STSIM_ACT_NONE };
  l[1] = (Layer) { "attout", *H, *H, STSIM_ACT_NONE };
  l[2] = (Layer) { "ff1", *FF, *H, STSIM_ACT_GELU };
  l[3] = (Layer) { "ff2", *H, *FF, STSIM_ACT_NONE };
  return l;
}

/* Every GEMM and epilogue of one config at every thread count. */
static void
bench_config (const char *cfg, gint64 rows, GStrv threads)
{
  gint64 H, FF;
  const Layer *layers = config_layers (cfg, &H, &FF);
  gint64 big = MAX (3 * H, FF);
  g_autofree float *x = g_new (float, rows * big), *w = g_new (float, big * big / 2 + big * H);
  g_autofree float *y = g_new (float, rows * big), *dw = g_new0 (float, big * big / 2 + big * H);
  g_autofree float *pre = g_new (float, rows * big), *dy = g_new (float, rows * big), *bias = g_new (float, big);
  g_autofree float *part = g_new (float, 4 * (big * big / 2 + big * H));
  fill (x, rows * big, 2654435761u);
  fill (w, big * big / 2 + big * H, 40503u);
  fill (y, rows * big, 69069u);
  fill (bias, big, 7u);
  g_autoptr(StsimTape) tape = stsim_tape_new (7, 0);
  for (int ti = 0; threads[ti]; ti++) {
    int th = atoi (threads[ti]);
    stsim_set_threads (th);
    printf ("\n%s, %" G_GINT64_FORMAT " token rows, %d thread(s), median of %d; times in ms, eff = raw / variant\n"
            "                         ---------- wall ---------- cpu  ---- wall ----  cpu  ---- wall ----  cpu\n"
            "cfg  layer  path   t  c      raw    stsim   eff   eff    split   eff   eff       c2   eff   eff\n", cfg, rows, th, reps);
    Sums sp[N_PATHS] = { { { 0 } } };
    double epi[2] = { 0, 0 };
    for (int li = 0; li < 4; li++) {
      for (int p = 0; p < N_PATHS; p++) {
        Gemm g = layer_gemm (p, rows, &layers[li], x, w, y, dw);
        Cell c = bench_gemm (&g, p, th, part);
        print_row (cfg, &layers[li], &g, p, th, &c, &sp[p]);
      }
      double e[2];
      bench_epilogue (tape, &layers[li], rows, y, pre, bias, dy, e);
      epi[0] += e[0];
      epi[1] += e[1];
    }
    printf ("%-4s all fwd     %d   ", cfg, th);
    print_effs (&sp[P_FWD]);
    Sums bwd = sp[P_DX];
    sums_add (&bwd, &sp[P_DW]);
    printf ("%-4s all bwd     %d   ", cfg, th);
    print_effs (&bwd);
    printf ("%-4s epilogues    %d    fwd %.3f ms (%.1f%% of stsim's fwd GEMMs), bwd %.3f ms (%.1f%% of bwd GEMMs), wall\n",
            cfg, th, epi[0] * 1e3, 100.0 * epi[0] / sp[P_FWD].stsim[0], epi[1] * 1e3, 100.0 * epi[1] / bwd.stsim[0]);
  }
  stsim_set_threads (0);
}

int
main (int argc, char **argv)
{
  g_autofree char *csv_path = NULL, *threads_arg = NULL, *configs_arg = NULL;
  gint64 rows = 2816;
  GOptionEntry entries[] = {
    { "configs", 0, 0, G_OPTION_ARG_STRING, &configs_arg, "mini and/or base (default mini,base)", "LIST" },
    { "rows", 0, 0, G_OPTION_ARG_INT64, &rows, "packed token rows (default 2816 = 2 x 64 x 22)", "N" },
    { "reps", 0, 0, G_OPTION_ARG_INT, &reps, "timed repetitions per case (the median is reported)", "N" },
    { "threads", 0, 0, G_OPTION_ARG_STRING, &threads_arg, "comma-separated thread counts (default 1,2)", "LIST" },
    { "csv", 0, 0, G_OPTION_ARG_FILENAME, &csv_path, "also write the rows as CSV to FILE", "FILE" },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new ("- the step's dense-layer GEMMs against raw cblas_sgemm");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_autoptr(GError) err = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &err)) {
    g_printerr ("bench-gemm: %s\n", err->message);
    return 2;
  }
  reps = MAX (reps, 1);
  if (rows < 16) {
    g_printerr ("bench-gemm: --rows must be at least 16 (got %" G_GINT64_FORMAT ")\n", rows);
    return 2;
  }
  g_auto(GStrv) cl = g_strsplit (configs_arg ? configs_arg : "mini,base", ",", -1);
  g_auto(GStrv) tl = g_strsplit (threads_arg ? threads_arg : "1,2", ",", -1);
  for (int i = 0; cl[i]; i++) {
    gint64 h, f;
    if (!config_layers (cl[i], &h, &f)) {
      g_printerr ("bench-gemm: unknown config '%s' in --configs (use mini and/or base)\n", cl[i]);
      return 2;
    }
  }
  for (int i = 0; tl[i]; i++)
    if (atoi (tl[i]) < 1) {
      g_printerr ("bench-gemm: bad thread count '%s' in --threads (use e.g. 1,2)\n", tl[i]);
      return 2;
    }
  if (csv_path && !(csv = fopen (csv_path, "w"))) {
    g_printerr ("bench-gemm: cannot write %s\n", csv_path);
    return 1;
  }
  if (csv)
    fprintf (csv, "config,layer,path,threads,chunks,raw_ms,stsim_ms,split_ms,c2_ms,kblk_ms,"
             "raw_cpu_ms,stsim_cpu_ms,split_cpu_ms,c2_cpu_ms,kblk_cpu_ms,repack_cpu_ms\n");
  for (int i = 0; cl[i]; i++)
    bench_config (cl[i], rows, tl);
  if (csv)
    fclose (csv);
  return 0;
}
