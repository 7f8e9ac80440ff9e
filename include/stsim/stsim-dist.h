/* stsim-dist.h: the process side of data-parallel runs (MPI), for tools
 * (docs/distributed.md). stsim-run calls stsim_dist_init() first thing in
 * main() and stsim_dist_finalize() at a normal exit; the collectives the
 * trainer runs between are internal to libstsim.
 *
 * The world is MPI_COMM_WORLD when the process was started by an MPI
 * launcher (mpirun sets OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_SIZE) and
 * libstsim was built with MPI (meson option mpi); otherwise it is one rank
 * and every call below is the identity. */
#pragma once
#include <glib.h>
#include "stsim-error.h"
#include "stsim-export.h"

G_BEGIN_DECLS

/* TRUE when libstsim was built with MPI. */
STSIM_API
gboolean stsim_dist_compiled (void);
/* Starts MPI when the process runs under an MPI launcher (idempotent), and
 * installs a SIGTERM handler that says why the launcher stopped this rank.
 * Without a launcher (or without MPI support) the world is one rank and
 * nothing is started. Tools call it first thing in main(). */
STSIM_API
gboolean stsim_dist_init (int *argc, char ***argv, GError **error);
/* MPI_Finalize when stsim_dist_init started MPI; call once at a normal exit. */
STSIM_API
void     stsim_dist_finalize (void);
/* For tools only (the library never calls it): stops every rank of the job
 * with @code after an error on this rank, so that no rank waits forever in
 * a collective. Returns (doing nothing) in a one-rank world. */
STSIM_API
void     stsim_dist_abort (int code);

STSIM_API
int      stsim_dist_rank (void);   /* 0 .. size-1 */
STSIM_API
int      stsim_dist_size (void);   /* 1 unless started under MPI */
/* "rank 1/2: " in a multi-rank world, "" otherwise (static string). */
STSIM_API
const char *stsim_dist_prefix (void);

G_END_DECLS
