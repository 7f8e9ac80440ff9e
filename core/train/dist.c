/* dist.c: the MPI layer of data-parallel training (dist.h,
 * docs/distributed.md): world setup, the few collectives the trainer needs,
 * and batch norm with statistics over every rank's rows. Without MPI (meson
 * -Dmpi=disabled, or no launcher) the world is one rank and each collective
 * is the identity. */
#include "stsim-config.h"
#include "train/dist.h"
#include "numerics/numerics-private.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef STSIM_HAVE_MPI
#include <mpi.h>
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

typedef struct {
  float *mean, *rstd;
  gint64 n, N, C;   /* this rank's rows, all ranks' rows, columns */
} DistBnCtx;

static void
dist_bn_backward (StsimTape *tape, StsimNode *node)
{
  DistBnCtx *c = node->ctx;
  StsimTensor *x = node->in[0], *gm = node->in[1], *bt = node->in[2], *y = node->out;
  const gint64 n = c->n, N = c->N, C = c->C;
  const float *dy = y->grad;
  /* [local Σdy | local Σdy·x̂ | global Σdy | global Σdy·x̂] */
  double *s = stsim_tape_alloc (tape, sizeof (double) * 4 * C);
  for (gint64 k = 0; k < 2 * C; k++)
    s[k] = 0.0;
  for (gint64 r = 0; r < n; r++)
    for (gint64 k = 0; k < C; k++) {
      float xh = (x->data[r * C + k] - c->mean[k]) * c->rstd[k];
      float g = dy[r * C + k];
      s[k] += g;
      s[C + k] += (double) g * xh;
    }
  memcpy (s + 2 * C, s, sizeof (double) * 2 * C);
  GError *err = NULL;
  if (!stsim_dist_sum_f64 (s + 2 * C, 2 * C, &err)) {
    /* Keep the first error for the trainer; the gradient stays local. */
    if (!dist_pending_error)
      dist_pending_error = err;
    else
      g_error_free (err);
  }
  const double *sg = s + 2 * C, *sgx = s + 3 * C;
  /* γ and β: this rank's share; the gradient all-reduce adds the others. */
  if (stsim_needs_grad (gm)) {
    float *dg = stsim_grad_acquire_acc (tape, gm);
    for (gint64 k = 0; k < C; k++)
      dg[k] += (float) s[C + k];
  }
  if (stsim_needs_grad (bt)) {
    float *db = stsim_grad_acquire_acc (tape, bt);
    for (gint64 k = 0; k < C; k++)
      db[k] += (float) s[k];
  }
  if (stsim_needs_grad (x)) {
    float beta;
    float *dx = stsim_grad_acquire (tape, x, &beta);
    for (gint64 r = 0; r < n; r++)
      for (gint64 k = 0; k < C; k++) {
        float gam = gm ? gm->data[k] : 1.0f;
        float xh = (x->data[r * C + k] - c->mean[k]) * c->rstd[k];
        float d = gam * c->rstd[k] / (float) N
                  * ((float) N * dy[r * C + k] - (float) sg[k] - xh * (float) sgx[k]);
        dx[r * C + k] = (beta == 0.0f ? 0.0f : dx[r * C + k]) + d;
      }
  }
}

StsimTensor *
stsim_dist_batch_norm (StsimTape *tape, StsimTensor *x, StsimTensor *gamma, StsimTensor *beta,
                       float *running_mean, float *running_var, float momentum, float eps)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (dist_size == 1)
    return stsim_batch_norm (tape, x, gamma, beta, running_mean, running_var, momentum, eps);
  if (!x)
    return NULL;
  char b1[64];
  const gint64 C = stsim_tensor_cols (x), n = stsim_tensor_rows (x);
  if (x->ndim != 2 || n < 1 || (gamma && gamma->numel != C) || (beta && beta->numel != C) || (!gamma) != (!beta) ||
      !(eps >= 0.0f)) {
    g_critical ("stsim_dist_batch_norm: x %s must be [n >= 1, C] with gamma and beta both [C] or both NULL",
                stsim_tensor_shape_string (x, b1, sizeof b1));
    return NULL;
  }
  /* Two passes as stsim_batch_norm (mean, then centred squares), each
   * summed over the ranks in double. */
  double *st = stsim_tape_alloc (tape, sizeof (double) * (2 * C + 1)), *sum = st, *sq = st + C;
  for (gint64 k = 0; k < 2 * C + 1; k++)
    st[k] = 0.0;
  for (gint64 r = 0; r < n; r++)
    for (gint64 k = 0; k < C; k++)
      sum[k] += x->data[r * C + k];
  st[2 * C] = (double) n;
  GError *err = NULL;
  if (!stsim_dist_sum_f64 (sum, C, &err) || !stsim_dist_sum_f64 (st + 2 * C, 1, &err)) {
    g_critical ("stsim_dist_batch_norm: %s", err->message);
    g_error_free (err);
    return NULL;
  }
  const gint64 N = (gint64) st[2 * C];
  for (gint64 k = 0; k < C; k++)
    sum[k] /= (double) N;
  for (gint64 r = 0; r < n; r++)
    for (gint64 k = 0; k < C; k++) {
      double d = x->data[r * C + k] - sum[k];
      sq[k] += d * d;
    }
  if (!stsim_dist_sum_f64 (sq, C, &err)) {
    g_critical ("stsim_dist_batch_norm: %s", err->message);
    g_error_free (err);
    return NULL;
  }
  if (N < 2) {
    g_critical ("stsim_dist_batch_norm: %" G_GINT64_FORMAT " rows over all ranks; batch norm needs 2", N);
    return NULL;
  }
  gboolean rg = stsim_tape_wants_grad (tape, x, gamma, beta);
  StsimTensor *y = stsim_tape_out_like (tape, x, rg);
  DistBnCtx *c = stsim_tape_alloc (tape, sizeof (DistBnCtx));
  c->n = n;
  c->N = N;
  c->C = C;
  c->mean = stsim_tape_alloc (tape, sizeof (float) * C);
  c->rstd = stsim_tape_alloc (tape, sizeof (float) * C);
  for (gint64 k = 0; k < C; k++) {
    double var = sq[k] / (double) N;
    c->mean[k] = (float) sum[k];
    c->rstd[k] = (float) (1.0 / sqrt (var + eps));
    if (running_mean)
      running_mean[k] = (1.0f - momentum) * running_mean[k] + momentum * (float) sum[k];
    if (running_var)
      running_var[k] = (1.0f - momentum) * running_var[k] + momentum * (float) (sq[k] / (double) (N - 1));
  }
  for (gint64 r = 0; r < n; r++)
    for (gint64 k = 0; k < C; k++) {
      float xh = (x->data[r * C + k] - c->mean[k]) * c->rstd[k];
      y->data[r * C + k] = gamma ? xh * gamma->data[k] + beta->data[k] : xh;
    }
  if (rg) {
    StsimNode *node = stsim_tape_record (tape, "dist_batch_norm", dist_bn_backward, y, x, gamma, beta);
    node->ctx = c;
  }
  return y;
}
