/* dist.c: the MPI layer of data-parallel training (dist.h,
 * docs/distributed.md): world setup, the few collectives the trainer needs,
 * and the hook that gives batch norm statistics over every rank's rows
 * (the kernel is core/numerics/ops-norm.c's). Without MPI (meson
 * -Dmpi=disabled, or no launcher) the world is one rank and each collective
 * is the identity. */
#include "stsim-config.h"
#include "train/dist.h"
#include "numerics/numerics-private.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef STSIM_HAVE_MPI
#include <mpi.h>
/* The gradient exchange's own communicator (grad-sync.c): its messages run
 * while the backward enters blocking collectives on MPI_COMM_WORLD (batch
 * norm), and a communicator of their own keeps the two from matching. */
static MPI_Comm dist_grad_comm = MPI_COMM_NULL;
#endif

static int dist_rank = 0, dist_size = 1;
static gboolean dist_started = FALSE;
static char dist_prefix[48] = "";
static char term_message[256];
static gsize term_message_len;
static GError *dist_pending_error;

gboolean
stsim_dist_compiled (void)
{
#ifdef STSIM_HAVE_MPI
  return TRUE;
#else
  return FALSE;
#endif
}

int
stsim_dist_rank (void)
{
  return dist_rank;
}

int
stsim_dist_size (void)
{
  return dist_size;
}

const char *
stsim_dist_prefix (void)
{
  return dist_prefix;
}

/* Under mpirun, a rank that dies (signal, or a non-zero exit) makes the
 * launcher terminate the others with SIGTERM (then SIGKILL): say so on
 * stderr before going, so that the log explains the stop. Only
 * async-signal-safe calls here. */
static void
on_sigterm (int sig)
{
  if (term_message_len > 0) {
    ssize_t r = write (STDERR_FILENO, term_message, term_message_len);
    (void) r;
  }
  signal (sig, SIG_DFL);
  raise (sig);
}

static gboolean
launched_by_mpi (void)
{
  /* Open MPI's mpirun, PMIx launchers (srun, prterun), MPICH's hydra. */
  return g_getenv ("OMPI_COMM_WORLD_SIZE") || g_getenv ("PMIX_RANK") || g_getenv ("PMI_SIZE");
}

#ifdef STSIM_HAVE_MPI
static gboolean
mpi_check (int rc, const char *what, GError **error)
{
  if (rc == MPI_SUCCESS)
    return TRUE;
  char msg[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  MPI_Error_string (rc, msg, &len);
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO,
               "%sMPI %s failed: %s (another rank may have stopped; see its message)", dist_prefix, what, msg);
  return FALSE;
}
#endif

gboolean
stsim_dist_init (int *argc, char ***argv, GError **error)
{
  if (dist_started || !launched_by_mpi ())
    return TRUE;
#ifdef STSIM_HAVE_MPI
  int provided = 0, inited = 0;
  MPI_Initialized (&inited);
  /* Only the main thread calls MPI; OpenMP threads compute between calls. */
  if (!inited && MPI_Init_thread (argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "MPI_Init_thread failed");
    return FALSE;
  }
  /* Errors come back as codes (then GErrors naming the call) rather than
   * aborting inside the library. */
  MPI_Comm_set_errhandler (MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank (MPI_COMM_WORLD, &dist_rank);
  MPI_Comm_size (MPI_COMM_WORLD, &dist_size);
  if (MPI_Comm_dup (MPI_COMM_WORLD, &dist_grad_comm) != MPI_SUCCESS) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "MPI_Comm_dup failed");
    return FALSE;
  }
  dist_started = TRUE;
  if (dist_size > 1) {
    g_snprintf (dist_prefix, sizeof dist_prefix, "rank %d/%d: ", dist_rank, dist_size);
    g_snprintf (term_message, sizeof term_message,
                "%s: %sstopped by the MPI launcher: another rank failed or was killed "
                "(its message, or the launcher's, says which)\n",
                g_get_prgname () ? g_get_prgname () : "stsim", dist_prefix);
    term_message_len = strlen (term_message);
    signal (SIGTERM, on_sigterm);
  }
  return TRUE;
#else
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
               "this process was started by an MPI launcher, but stsim was built without MPI "
               "(reconfigure with meson setup -Dmpi=enabled, which needs libopenmpi-dev)");
  return FALSE;
#endif
}

void
stsim_dist_finalize (void)
{
#ifdef STSIM_HAVE_MPI
  if (dist_started) {
    int fin = 0;
    MPI_Finalized (&fin);
    if (!fin && dist_grad_comm != MPI_COMM_NULL)
      MPI_Comm_free (&dist_grad_comm);
    if (!fin)
      MPI_Finalize ();
  }
#endif
  dist_started = FALSE;
}

void
stsim_dist_abort (int code)
{
#ifdef STSIM_HAVE_MPI
  if (dist_started && dist_size > 1) {
    fflush (stdout);
    fflush (stderr);
    MPI_Abort (MPI_COMM_WORLD, code);
  }
#endif
  (void) code;
}

gpointer
stsim_dist_grad_comm (void)
{
#ifdef STSIM_HAVE_MPI
  return dist_started ? &dist_grad_comm : NULL;
#else
  return NULL;
#endif
}

gboolean
stsim_dist_barrier (GError **error)
{
#ifdef STSIM_HAVE_MPI
  if (dist_size > 1)
    return mpi_check (MPI_Barrier (MPI_COMM_WORLD), "barrier", error);
#endif
  return TRUE;
}

/* One MPI call carries an int count: large blocks go in pieces. */
#define DIST_CHUNK ((gsize) 1 << 28)

gboolean
stsim_dist_sum_f32 (float *buf, gsize n, GError **error)
{
#ifdef STSIM_HAVE_MPI
  if (dist_size > 1)
    for (gsize off = 0; off < n; off += DIST_CHUNK)
      if (!mpi_check (MPI_Allreduce (MPI_IN_PLACE, buf + off, (int) MIN (DIST_CHUNK, n - off), MPI_FLOAT, MPI_SUM,
                                     MPI_COMM_WORLD), "all-reduce (float sum)", error))
        return FALSE;
#endif
  return TRUE;
}

gboolean
stsim_dist_sum_f64 (double *buf, gsize n, GError **error)
{
#ifdef STSIM_HAVE_MPI
  if (dist_size > 1)
    for (gsize off = 0; off < n; off += DIST_CHUNK)
      if (!mpi_check (MPI_Allreduce (MPI_IN_PLACE, buf + off, (int) MIN (DIST_CHUNK, n - off), MPI_DOUBLE, MPI_SUM,
                                     MPI_COMM_WORLD), "all-reduce (double sum)", error))
        return FALSE;
#endif
  return TRUE;
}

gboolean
stsim_dist_bcast (gpointer buf, gsize n_bytes, int root, GError **error)
{
#ifdef STSIM_HAVE_MPI
  if (dist_size > 1)
    for (gsize off = 0; off < n_bytes; off += DIST_CHUNK)
      if (!mpi_check (MPI_Bcast ((char *) buf + off, (int) MIN (DIST_CHUNK, n_bytes - off), MPI_BYTE, root,
                                 MPI_COMM_WORLD), "broadcast", error))
        return FALSE;
#endif
  return TRUE;
}

gboolean
stsim_dist_gather_f32 (const float *send, float *recv, const gsize *counts, GError **error)
{
  if (dist_size == 1) {
    if (recv != send && counts[0] > 0)
      memcpy (recv, send, counts[0] * sizeof (float));
    return TRUE;
  }
#ifdef STSIM_HAVE_MPI
  g_autofree int *cnt = g_new (int, (gsize) dist_size);
  g_autofree int *disp = g_new (int, (gsize) dist_size);
  gsize total = 0;
  for (int r = 0; r < dist_size; r++) {
    if (counts[r] > G_MAXINT || total > G_MAXINT) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%sall-gather of %" G_GSIZE_FORMAT
                   " floats is too large for one MPI call", dist_prefix, total + counts[r]);
      return FALSE;
    }
    cnt[r] = (int) counts[r];
    disp[r] = (int) total;
    total += counts[r];
  }
  return mpi_check (MPI_Allgatherv (send, cnt[dist_rank], MPI_FLOAT, recv, cnt, disp, MPI_FLOAT, MPI_COMM_WORLD),
                    "all-gather", error);
#else
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "all-gather without MPI");
  return FALSE;
#endif
}

void
stsim_dist_shard (gsize B, int rank, int size, gsize *first, gsize *n)
{
  g_return_if_fail (size > 0 && rank >= 0 && rank < size && first && n);
  gsize a = B * (gsize) rank / (gsize) size, b = B * (gsize) (rank + 1) / (gsize) size;
  *first = a;
  *n = b - a;
}

gboolean
stsim_dist_take_error (GError **error)
{
  if (!dist_pending_error)
    return FALSE;
  g_propagate_error (error, dist_pending_error);
  dist_pending_error = NULL;
  return TRUE;
}

/* ---- batch norm over every rank's rows ------------------------------------------ */
/* The kernel is numerics' (stsim_batch_norm_shared); the ranks share its
 * column sums through these. */

static gboolean
dist_bn_sum (double *buf, gsize n, gpointer user_data, GError **error)
{
  (void) user_data;
  return stsim_dist_sum_f64 (buf, n, error);
}

static void
dist_bn_backward_failed (GError *error, gpointer user_data)
{
  (void) user_data;
  /* Keep the first error for the trainer (stsim_dist_take_error). */
  if (!dist_pending_error)
    dist_pending_error = error;
  else
    g_error_free (error);
}

StsimTensor *
stsim_dist_batch_norm (StsimTape *tape, StsimTensor *x, StsimTensor *gamma, StsimTensor *beta,
                       float *running_mean, float *running_var, float momentum, float eps)
{
  static const StsimBnStatsHook hook = { dist_bn_sum, dist_bn_backward_failed, NULL };
  if (dist_size == 1)
    return stsim_batch_norm (tape, x, gamma, beta, running_mean, running_var, momentum, eps);
  return stsim_batch_norm_shared (tape, x, gamma, beta, running_mean, running_var, momentum, eps, &hook);
}
