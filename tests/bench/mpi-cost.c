/* mpi-cost: what the gradient sum over the ranks costs on this machine's
 * MPI transport (docs/distributed.md, "Cost model"). Run under mpirun with 2
 * or more ranks, one command (tests/bench/mpi-cost.sh runs it with the rest
 * of the cost model):
 *
 *   mpirun -np N mpi-cost [--max-mb 512] [--min-seconds 0.3]
 *
 * For message sizes from 4 bytes to --max-mb (times 8 each), the median time
 * of (a) Open MPI's MPI_Allreduce (in place, float sum) and (b) stsim's own
 * exchange (core/train/grad-sync.c with one piece per store: the fixed
 * rank-order reduce-scatter + all-gather the trainer runs), and the bus
 * bandwidth 2(N-1)/N·bytes / time. Then the two constants of the ring model
 * t = 2(N-1)·α + 2(N-1)/N·bytes/β fitted on the smallest (α) and the
 * largest (β) size, a ping-pong between ranks 0 and 1 (one-way latency
 * of 4 bytes, bandwidth of 64 MB), and whether stsim's sum has the bits of
 * MPI_Allreduce's. Rank 0 prints; every rank takes part. */
#include "stsim-config.h"
#include "train/dist.h"
#include "train/grad-sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef STSIM_HAVE_MPI
#include <mpi.h>

static double opt_max_mb = 512, opt_min_seconds = 0.3;

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

/* Median seconds of @fn over enough repetitions to last min_seconds (3 to
 * 200); every rank runs the same count (rank 0's, broadcast). */
static double
time_op (void (*fn) (gpointer), gpointer data)
{
  MPI_Barrier (MPI_COMM_WORLD);
  double t0 = MPI_Wtime ();
  fn (data);
  double first = MPI_Wtime () - t0;
  int reps = first > 0 ? (int) CLAMP (opt_min_seconds / first, 3, 200) : 200;
  MPI_Bcast (&reps, 1, MPI_INT, 0, MPI_COMM_WORLD);
  g_autofree double *t = g_new (double, reps);
  for (int i = 0; i < reps; i++) {
    MPI_Barrier (MPI_COMM_WORLD);
    double a = MPI_Wtime ();
    fn (data);
    t[i] = MPI_Wtime () - a;
  }
  /* The slowest rank's time is the collective's. */
  MPI_Allreduce (MPI_IN_PLACE, t, reps, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  qsort (t, (size_t) reps, sizeof (double), cmp_double);
  return t[reps / 2];
}

typedef struct {
  float         *buf;
  gsize          n;
  StsimGradSync *sync;
  StsimTape     *tape;
} Op;

static void
op_mpi (gpointer data)
{
  Op *o = data;
  MPI_Allreduce (MPI_IN_PLACE, o->buf, (int) o->n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

static void
op_stsim (gpointer data)
{
  Op *o = data;
  g_autoptr(GError) error = NULL;
  stsim_grad_sync_begin (o->sync, o->tape);
  if (!stsim_grad_sync_finish (o->sync, o->tape, &error)) {
    fprintf (stderr, "mpi-cost: %s\n", error->message);
    MPI_Abort (MPI_COMM_WORLD, 1);
  }
}

typedef struct {
  double bytes, t_mpi, t_stsim;
} Row;

/* One size: both operations on a store of @n floats (values kept small so
 * that repeated sums stay finite). */
static Row
measure_size (gsize n)
{
  g_autoptr(StsimParamStore) store = stsim_param_store_new ("bench", TRUE);
  gint64 shape[1] = { (gint64) n };
  stsim_param_store_add (store, "g", 1, shape, 0);
  g_autoptr(GError) error = NULL;
  if (!stsim_param_store_finish (store, &error)) {
    fprintf (stderr, "mpi-cost: %s\n", error->message);
    MPI_Abort (MPI_COMM_WORLD, 1);
  }
  gint64 ng = 0;
  Op o = { .buf = stsim_param_store_get_grad (store, &ng), .n = n };
  StsimParamStore *stores[1] = { store };
  o.sync = stsim_grad_sync_new (stores, 1, 0);
  o.tape = stsim_tape_new (0, 0);
  Row r = { .bytes = 4.0 * (double) n };
  r.t_mpi = time_op (op_mpi, &o);
  r.t_stsim = time_op (op_stsim, &o);
  stsim_grad_sync_free (o.sync);
  stsim_tape_free (o.tape);
  return r;
}

/* Whether stsim's exchange gives MPI_Allreduce's bits on @n random floats
 * (expected with 2 ranks, where both compute g0 + g1; with more, MPI's
 * association order depends on its algorithm). */
static gboolean
same_as_mpi (gsize n, int rank)
{
  g_autoptr(StsimParamStore) store = stsim_param_store_new ("check", TRUE);
  gint64 shape[1] = { (gint64) n }, ng = 0;
  stsim_param_store_add (store, "g", 1, shape, 0);
  if (!stsim_param_store_finish (store, NULL))
    return FALSE;
  float *g = stsim_param_store_get_grad (store, &ng);
  g_autofree float *ref = g_new (float, n);
  GRand *r = g_rand_new_with_seed (1234 + (guint32) rank);
  for (gsize i = 0; i < n; i++)
    ref[i] = g[i] = (float) g_rand_double_range (r, -1, 1);
  g_rand_free (r);
  MPI_Allreduce (MPI_IN_PLACE, ref, (int) n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  StsimParamStore *stores[1] = { store };
  Op o = { .buf = g, .n = n, .sync = stsim_grad_sync_new (stores, 1, 0), .tape = stsim_tape_new (0, 0) };
  op_stsim (&o);
  stsim_grad_sync_free (o.sync);
  stsim_tape_free (o.tape);
  int same = memcmp (g, ref, n * sizeof (float)) == 0;
  MPI_Allreduce (MPI_IN_PLACE, &same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return same;
}

/* One-way time of @n floats between ranks 0 and 1 (half a round trip). */
static double
ping_pong (gsize n, int rank)
{
  g_autofree float *buf = g_new0 (float, MAX (n, 1));
  const int reps = n < 1024 ? 1000 : 5;
  MPI_Barrier (MPI_COMM_WORLD);
  double t0 = MPI_Wtime ();
  for (int i = 0; i < reps && rank < 2; i++) {
    if (rank == 0) {
      MPI_Send (buf, (int) n, MPI_FLOAT, 1, 0, MPI_COMM_WORLD);
      MPI_Recv (buf, (int) n, MPI_FLOAT, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else {
      MPI_Recv (buf, (int) n, MPI_FLOAT, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send (buf, (int) n, MPI_FLOAT, 0, 0, MPI_COMM_WORLD);
    }
  }
  double t = (MPI_Wtime () - t0) / reps / 2;
  MPI_Bcast (&t, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  return t;
}

static void
print_fit (const char *what, const Row *first, const Row *last, gboolean stsim, int N)
{
  double t0 = stsim ? first->t_stsim : first->t_mpi, t1 = stsim ? last->t_stsim : last->t_mpi;
  double alpha = t0 / (2.0 * (N - 1));
  double beta = 2.0 * (N - 1) / N * last->bytes / MAX (t1 - 2.0 * (N - 1) * alpha, 1e-12);
  printf ("ring fit %-14s alpha = %.2f us   beta = %.2f GB/s\n", what, alpha * 1e6, beta / 1e9);
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  if (!stsim_dist_init (&argc, &argv, &error)) {
    fprintf (stderr, "mpi-cost: %s\n", error->message);
    return 1;
  }
  GOptionEntry entries[] = {
    { "max-mb", 0, 0, G_OPTION_ARG_DOUBLE, &opt_max_mb, "Largest message in MB (default 512)", "MB" },
    { "min-seconds", 0, 0, G_OPTION_ARG_DOUBLE, &opt_min_seconds, "Time per size and operation (default 0.3)", "S" },
    { NULL }
  };
  g_autoptr(GOptionContext) oc = g_option_context_new ("- the cost of the gradient all-reduce (under mpirun)");
  g_option_context_add_main_entries (oc, entries, NULL);
  const int N = stsim_dist_size (), rank = stsim_dist_rank ();
  if (!g_option_context_parse (oc, &argc, &argv, &error) || N < 2) {
    if (rank == 0)
      fprintf (stderr, "mpi-cost: %s\n", error ? error->message : "run under mpirun with 2 or more ranks");
    stsim_dist_finalize ();
    return 2;
  }
  if (rank == 0)
    printf ("%d ranks; size, median seconds and bus bandwidth 2(N-1)/N*bytes/t of each all-reduce\n"
            "%12s | %12s %10s | %12s %10s\n", N, "bytes", "MPI s", "MPI GB/s", "stsim s", "stsim GB/s");
  GArray *rows = g_array_new (FALSE, FALSE, sizeof (Row));
  for (double bytes = 4; bytes <= opt_max_mb * (1 << 20) + 0.5; bytes *= 8) {
    Row r = measure_size ((gsize) (bytes / 4));
    g_array_append_val (rows, r);
    double f = 2.0 * (N - 1) / N * r.bytes / 1e9;
    if (rank == 0) {
      printf ("%12.0f | %12.3e %10.3f | %12.3e %10.3f\n", r.bytes, r.t_mpi, f / r.t_mpi, r.t_stsim, f / r.t_stsim);
      fflush (stdout);
    }
  }
  double lat = ping_pong (1, rank), bw_t = ping_pong ((gsize) 16 << 20, rank);
  gboolean same = same_as_mpi ((gsize) 1 << 20, rank);
  if (rank == 0 && rows->len >= 2) {
    const Row *first = &g_array_index (rows, Row, 0), *last = &g_array_index (rows, Row, rows->len - 1);
    print_fit ("MPI_Allreduce", first, last, FALSE, N);
    print_fit ("stsim", first, last, TRUE, N);
    printf ("ping-pong 0<->1  latency = %.2f us   bandwidth = %.2f GB/s (64 MB)\n", lat * 1e6,
            64.0 * (1 << 20) / bw_t / 1e9);
    printf ("stsim's sum of 2^20 random floats equals MPI_Allreduce's bit for bit: %s\n", same ? "yes" : "no");
  }
  g_array_unref (rows);
  stsim_dist_finalize ();
  return 0;
}
#else
int
main (void)
{
  fprintf (stderr, "mpi-cost: stsim was built without MPI\n");
  return 77;
}
#endif
