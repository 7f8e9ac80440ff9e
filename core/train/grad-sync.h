/* grad-sync.h: the sum of the parameter gradients over the ranks, in
 * buckets sent while the backward goes on (docs/distributed.md, "Gradient
 * exchange"). Internal to libstsim.
 *
 * The gradient blocks of the trained stores are cut into buckets of at most
 * @bucket_floats floats, last store first and each from its end (the last
 * layers' gradients are final first). Before a backward pass,
 * stsim_grad_sync_begin finds for each bucket the earliest recorded node
 * that uses one of its parameters: once the backward has passed that node
 * the bucket's gradient is final, and its exchange starts. The tape's hook
 * also keeps the exchanges progressing between nodes (MPI_Testall), and
 * refuses a gradient written into a bucket already sent (an op that does not
 * list a parameter among its inputs would otherwise be summed too early).
 * stsim_grad_sync_finish starts what is left and waits for everything.
 *
 * The sum has a fixed order: every element is ((g_0 + g_1) + g_2) + ... in
 * rank order, whatever the bucket size and MPI's collective algorithms
 * (a reduce-scatter, each rank summing its share of the bucket, then an
 * all-gather, both as point-to-point messages). @bucket_floats 0 sends each
 * store (in pieces of 2^28 floats) only at finish: no overlap, same result. */
#pragma once
#include <glib.h>
#include "stsim/stsim-autograd.h"
#include "stsim/stsim-tensor.h"

G_BEGIN_DECLS

typedef struct _StsimGradSync StsimGradSync;

StsimGradSync *stsim_grad_sync_new    (StsimParamStore *const *stores, guint n_stores, gsize bucket_floats);
void           stsim_grad_sync_free   (StsimGradSync *sync);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimGradSync, stsim_grad_sync_free)
/* Before stsim_tape_backward on @tape (its forward recorded): maps the
 * buckets to the tape's nodes and installs the tape's backward hook. */
void           stsim_grad_sync_begin  (StsimGradSync *sync, StsimTape *tape);
/* After the backward: removes the hook, sends the remaining buckets and
 * waits until every gradient block holds the sum over the ranks. Every rank
 * must call it once per begin (also when its backward failed). */
gboolean       stsim_grad_sync_finish (StsimGradSync *sync, StsimTape *tape, GError **error);
/* Removes the hook without waiting (the step failed; the job stops). */
void           stsim_grad_sync_detach (StsimGradSync *sync, StsimTape *tape);
/* Buckets of the exchange. */
guint          stsim_grad_sync_get_n_buckets (const StsimGradSync *sync);
/* Totals over the steps so far (the measure of the overlap, printed at the
 * end of a run): exchanges finished, seconds spent in finish (the exposed
 * communication), buckets already complete when the backward ended. */
void           stsim_grad_sync_get_totals (const StsimGradSync *sync, guint64 *n_steps, double *wait_seconds,
                                           guint64 *n_done_early);

G_END_DECLS
