/* dist.h: data-parallel training across processes (MPI), internal to
 * libstsim (docs/distributed.md). What tools call (start, stop, rank) is
 * public: stsim/stsim-dist.h.
 *
 * One process per rank; every rank holds the whole model. The world is
 * MPI_COMM_WORLD when the process was started by an MPI launcher (mpirun
 * sets OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_SIZE) and libstsim was built
 * with MPI (meson option mpi); otherwise it is one rank and every call below
 * is the identity, so single-process code paths need no #ifdef.
 *
 * All collectives here are blocking and must be entered by every rank in the
 * same order. The gradient sum (grad-sync.h) is non-blocking and runs on a
 * communicator of its own, stsim_dist_grad_comm. Errors of the MPI library come back as STSIM_ERROR_IO (the
 * communicator uses MPI_ERRORS_RETURN); a rank that dies is handled by the
 * launcher, which terminates the job (see stsim_dist_init). */
#pragma once
#include <glib.h>
#include "stsim/stsim-error.h"
#include "stsim/stsim-autograd.h"
#include "stsim/stsim-dist.h"

G_BEGIN_DECLS

gboolean stsim_dist_barrier (GError **error);
/* The MPI_Comm (a pointer to it) of the gradient exchange, grad-sync.c: a
 * duplicate of the world's; NULL outside an MPI launch. */
gpointer stsim_dist_grad_comm (void);
/* In-place sums over the ranks (one MPI_Allreduce per ≤ 2^28 elements). */
gboolean stsim_dist_sum_f32 (float *buf, gsize n, GError **error);
gboolean stsim_dist_sum_f64 (double *buf, gsize n, GError **error);
/* Rank @root's buffer to every rank. */
gboolean stsim_dist_bcast (gpointer buf, gsize n_bytes, int root, GError **error);
/* Concatenates every rank's @counts[rank] floats, in rank order, into @recv
 * (Σ counts floats, on every rank); @send holds this rank's counts[rank]. */
gboolean stsim_dist_gather_f32 (const float *send, float *recv, const gsize *counts, GError **error);

/* Sentences [*first, *first + *n) of a global batch of @B for @rank of
 * @size: contiguous, balanced shards in rank order (the union over ranks is
 * the whole batch). */
void     stsim_dist_shard (gsize B, int rank, int size, gsize *first, gsize *n);

/* ---- autograd ops that span the ranks ----------------------------------- */
/* Training-mode batch norm (stsim_batch_norm) of this rank's rows x
 * [n_local, C] with statistics over the rows of ALL ranks: forward sums the
 * column means and centred squares over the ranks; backward sums Σdy and
 * Σdy·x̂ over the ranks, so dx equals the single-process gradient of these
 * rows while dγ, dβ stay this rank's share (the gradient all-reduce adds
 * them up). Running statistics are updated with the global mean and
 * unbiased variance (identical on every rank). In a one-rank world this is
 * stsim_batch_norm. NULL with a critical on a collective failure in the
 * forward; a failure in the backward is reported by stsim_dist_take_error. */
StsimTensor *stsim_dist_batch_norm (StsimTape *tape, StsimTensor *x, StsimTensor *gamma, StsimTensor *beta,
                                    float *running_mean, float *running_var, float momentum, float eps);
/* The error of a collective that failed inside a backward pass (a backward
 * function cannot return one), or FALSE when there was none. */
gboolean     stsim_dist_take_error (GError **error);

G_END_DECLS
