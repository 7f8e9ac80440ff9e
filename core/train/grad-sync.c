/* grad-sync.c: the gradient sum over the ranks, overlapped with the
 * backward (grad-sync.h, docs/distributed.md). */
#include "stsim-config.h"
#include "train/grad-sync.h"
#include "train/dist.h"
#include "numerics/numerics-private.h"

#ifdef STSIM_HAVE_MPI
#include <mpi.h>
#endif

/* One MPI message carries an int count; a store's piece stays below it. */
#define SYNC_MAX_FLOATS ((gsize) 1 << 28)
/* Two tags per bucket; MPI guarantees tags up to 32767. */
#define SYNC_MAX_BUCKETS 16000u
#define NO_USE G_MAXSIZE

typedef enum { BUCKET_WAITING, BUCKET_REDUCING, BUCKET_GATHERING, BUCKET_DONE } BucketState;

typedef struct {
  float      *g;           /* the bucket's gradients, in a store's block */
  gsize       n;
  guint       store;       /* index into the trained stores, for messages */
  gsize       first_use;   /* position of the earliest node using it, or NO_USE */
  BucketState state;
  float      *recv;        /* the other ranks' shares of this rank's segment */
#ifdef STSIM_HAVE_MPI
  MPI_Request *reqs;       /* 2 (size - 1) */
#endif
} Bucket;

struct _StsimGradSync {
  StsimParamStore *const *stores;
  Bucket          *b;
  guint            nb;
  guint           *by_addr;  /* bucket indices sorted by gradient address */
  guint           *order;    /* launch order: latest first use first */
  guint            next;     /* order[0, next) are launched */
  guint            first_busy;
  gboolean         overlap;
  int              fault;    /* STSIM_DEBUG_GRAD_SYNC, for tests: 1 last-use, 2 unguarded */
  int              rank, size;
  gsize            scan_pos;
  guint            n_done_early;
  guint64          total_steps, total_done_early;
  double           total_wait;
  GError          *error;
  StsimBackwardHook hook;
};

static void
add_buckets (GArray *buckets, float *g, gsize n, guint store, gsize cap)
{
  for (gsize end = n; end > 0;) {
    gsize start = end > cap ? end - cap : 0;
    Bucket b = { .g = g + start, .n = end - start, .store = store };
    g_array_append_val (buckets, b);
    end = start;
  }
}

static int
cmp_addr (gconstpointer a, gconstpointer b, gpointer data)
{
  const Bucket *bk = data;
  const float *x = bk[*(const guint *) a].g, *y = bk[*(const guint *) b].g;
  return x < y ? -1 : x > y;
}

StsimGradSync *
stsim_grad_sync_new (StsimParamStore *const *stores, guint n_stores, gsize bucket_floats)
{
  StsimGradSync *s = g_new0 (StsimGradSync, 1);
  s->stores = stores;
  s->rank = stsim_dist_rank ();
  s->size = stsim_dist_size ();
  s->overlap = bucket_floats > 0;
  /* Tests prove that sending a bucket too early is caught (last-use: the
   * guard stops the step) and would change the result (last-use-unguarded). */
  const char *fault = g_getenv ("STSIM_DEBUG_GRAD_SYNC");
  s->fault = !g_strcmp0 (fault, "last-use") ? 1 : !g_strcmp0 (fault, "last-use-unguarded") ? 2 : 0;
  gsize total = 0, cap = bucket_floats > 0 ? MIN (bucket_floats, SYNC_MAX_FLOATS) : SYNC_MAX_FLOATS;
  for (guint i = 0; i < n_stores; i++) {
    gint64 n = 0;
    stsim_param_store_get_grad (stores[i], &n);
    total += (gsize) n;
  }
  /* Very small buckets on a large model: fewer, larger ones (tags). */
  cap = MAX (cap, total / (SYNC_MAX_BUCKETS - n_stores) + 1);
  g_autoptr(GArray) buckets = g_array_new (FALSE, TRUE, sizeof (Bucket));
  for (guint i = n_stores; i-- > 0;) {
    gint64 n = 0;
    float *g = stsim_param_store_get_grad (stores[i], &n);
    add_buckets (buckets, g, (gsize) n, i, cap);
  }
  s->nb = buckets->len;
  s->b = (Bucket *) g_array_free (g_steal_pointer (&buckets), FALSE);
  s->by_addr = g_new (guint, s->nb);
  s->order = g_new (guint, s->nb);
  for (guint i = 0; i < s->nb; i++)
    s->by_addr[i] = i;
  g_qsort_with_data (s->by_addr, s->nb, sizeof (guint), cmp_addr, s->b);
  return s;
}

void
stsim_grad_sync_free (StsimGradSync *s)
{
  if (!s)
    return;
  for (guint i = 0; i < s->nb; i++) {
    g_free (s->b[i].recv);
#ifdef STSIM_HAVE_MPI
    g_free (s->b[i].reqs);
#endif
  }
  g_free (s->b);
  g_free (s->by_addr);
  g_free (s->order);
  g_clear_error (&s->error);
  g_free (s);
}

guint stsim_grad_sync_get_n_buckets (const StsimGradSync *s) { return s->nb; }
void
stsim_grad_sync_get_totals (const StsimGradSync *s, guint64 *n_steps, double *wait_seconds, guint64 *n_done_early)
{
  *n_steps = s->total_steps;
  *wait_seconds = s->total_wait;
  *n_done_early = s->total_done_early;
}

/* Calls @fn on every bucket that overlaps [p, p + n). */
static void
foreach_overlap (StsimGradSync *s, const float *p, gint64 n, void (*fn) (StsimGradSync *, Bucket *))
{
  guint lo = 0, hi = s->nb;
  while (lo < hi) {   /* the first bucket that ends after p */
    guint mid = (lo + hi) / 2;
    const Bucket *b = &s->b[s->by_addr[mid]];
    if (b->g + b->n <= p)
      lo = mid + 1;
    else
      hi = mid;
  }
  for (guint k = lo; k < s->nb && s->b[s->by_addr[k]].g < p + n; k++)
    fn (s, &s->b[s->by_addr[k]]);
}

/* ---- the exchange of one bucket --------------------------------------------------- */

static gsize seg_start (gsize n, int q, int size) { return n * (gsize) q / (gsize) size; }
static gsize seg_len (gsize n, int q, int size) { return seg_start (n, q + 1, size) - seg_start (n, q, size); }

static void
sync_fail (StsimGradSync *s, int rc, const char *what)
{
  if (s->error)
    return;
#ifdef STSIM_HAVE_MPI
  char msg[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  MPI_Error_string (rc, msg, &len);
#else
  const char *msg = "";
  (void) rc;
#endif
  g_set_error (&s->error, STSIM_ERROR, STSIM_ERROR_IO, "%sgradient all-reduce: MPI %s failed: %s (another rank may "
               "have stopped; see its message)", stsim_dist_prefix (), what, msg);
}

#ifdef STSIM_HAVE_MPI
/* Phase 1: every rank sends segment q of the bucket to rank q and receives
 * the other ranks' copies of its own segment. */
static void
bucket_launch (StsimGradSync *s, Bucket *b)
{
  MPI_Comm comm = *(MPI_Comm *) stsim_dist_grad_comm ();
  const int N = s->size, r = s->rank, tag = 2 * (int) (b - s->b);
  const gsize m = seg_len (b->n, r, N);
  b->recv = g_new (float, MAX (m, 1) * (gsize) (N - 1));
  if (!b->reqs)
    b->reqs = g_new (MPI_Request, 2 * (gsize) (N - 1));
  int k = 0, rc = MPI_SUCCESS;
  for (int q = 0; q < N && rc == MPI_SUCCESS; q++) {
    if (q == r)
      continue;
    float *slot = b->recv + m * (gsize) (q < r ? q : q - 1);
    rc = MPI_Irecv (slot, (int) m, MPI_FLOAT, q, tag, comm, &b->reqs[k++]);
    if (rc == MPI_SUCCESS)
      rc = MPI_Isend (b->g + seg_start (b->n, q, N), (int) seg_len (b->n, q, N), MPI_FLOAT, q, tag, comm,
                      &b->reqs[k++]);
  }
  b->state = BUCKET_REDUCING;
  if (rc != MPI_SUCCESS)
    sync_fail (s, rc, "send/receive");
}

/* This rank's segment := g_0 + g_1 + ... in rank order (a + b is
 * commutative in IEEE arithmetic, so the own share can be the left or the
 * right operand without changing a bit). */
static void
bucket_sum (StsimGradSync *s, Bucket *b)
{
  const int N = s->size, r = s->rank;
  const gsize m = seg_len (b->n, r, N);
  float *own = b->g + seg_start (b->n, r, N);
  if (r > 0) {
    float *acc = b->recv;   /* rank 0's share, then + ranks 1 .. r-1 */
    for (int q = 1; q < r; q++)
      for (gsize j = 0; j < m; j++)
        acc[j] += b->recv[m * (gsize) q + j];
    for (gsize j = 0; j < m; j++)
      own[j] = acc[j] + own[j];
  }
  for (int q = r + 1; q < N; q++)
    for (gsize j = 0; j < m; j++)
      own[j] += b->recv[m * (gsize) (q - 1) + j];
  g_clear_pointer (&b->recv, g_free);
}

/* Phase 2: the summed segment to every rank, the others' into place. */
static void
bucket_gather (StsimGradSync *s, Bucket *b)
{
  MPI_Comm comm = *(MPI_Comm *) stsim_dist_grad_comm ();
  const int N = s->size, r = s->rank, tag = 2 * (int) (b - s->b) + 1;
  int k = 0, rc = MPI_SUCCESS;
  for (int q = 0; q < N && rc == MPI_SUCCESS; q++) {
    if (q == r)
      continue;
    rc = MPI_Irecv (b->g + seg_start (b->n, q, N), (int) seg_len (b->n, q, N), MPI_FLOAT, q, tag, comm,
                    &b->reqs[k++]);
    if (rc == MPI_SUCCESS)
      rc = MPI_Isend (b->g + seg_start (b->n, r, N), (int) seg_len (b->n, r, N), MPI_FLOAT, q, tag, comm,
                      &b->reqs[k++]);
  }
  b->state = BUCKET_GATHERING;
  if (rc != MPI_SUCCESS)
    sync_fail (s, rc, "send/receive");
}

/* Moves @b on if its messages arrived (@wait: waits for them). */
static void
bucket_advance (StsimGradSync *s, Bucket *b, gboolean wait)
{
  while (!s->error && (b->state == BUCKET_REDUCING || b->state == BUCKET_GATHERING)) {
    int done = 0, n = 2 * (s->size - 1);
    int rc = wait ? MPI_Waitall (n, b->reqs, MPI_STATUSES_IGNORE) : MPI_Testall (n, b->reqs, &done,
                                                                                  MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) {
      sync_fail (s, rc, wait ? "wait" : "test");
      return;
    }
    if (!wait && !done)
      return;
    if (b->state == BUCKET_GATHERING) {
      b->state = BUCKET_DONE;
    } else {
      bucket_sum (s, b);
      bucket_gather (s, b);
    }
  }
}
#else
static void bucket_launch (StsimGradSync *s, Bucket *b) { (void) s; b->state = BUCKET_DONE; }
static void bucket_advance (StsimGradSync *s, Bucket *b, gboolean wait) { (void) s; (void) b; (void) wait; }
#endif

/* ---- scheduling ------------------------------------------------------------------ */

/* Starts, in launch order, every bucket whose first use is at or after
 * @pos (the backward has passed it), then lets the started ones progress. */
static void
launch_ready (StsimGradSync *s, gsize pos)
{
  while (!s->error && s->next < s->nb && s->b[s->order[s->next]].first_use >= pos)
    bucket_launch (s, &s->b[s->order[s->next++]]);
  for (guint k = s->first_busy; k < s->next && !s->error; k++)
    bucket_advance (s, &s->b[s->order[k]], FALSE);
  while (s->first_busy < s->next && s->b[s->order[s->first_busy]].state == BUCKET_DONE)
    s->first_busy++;
}

static void
on_node_done (gsize pos, gpointer user_data)
{
  launch_ready (user_data, pos);
}

static void
check_unsent (StsimGradSync *s, Bucket *b)
{
  if (b->state == BUCKET_WAITING || s->error || s->fault == 2)
    return;
  g_set_error (&s->error, STSIM_ERROR, STSIM_ERROR_FAILED,
               "%sa backward op wrote a gradient of store '%s' after its all-reduce bucket was sent: the op does "
               "not list that parameter among its inputs (a bug; StsimNode in core/numerics/numerics-private.h). "
               "[train] allreduce_bucket_mb = 0 avoids it", stsim_dist_prefix (),
               stsim_param_store_get_name (s->stores[b->store]));
}

static void
on_param_grad (const float *grad, gint64 n, gpointer user_data)
{
  foreach_overlap (user_data, grad, n, check_unsent);
}

static void
mark_use (StsimGradSync *s, Bucket *b)
{
  if (!s->fault || b->first_use == NO_USE)   /* the fault keeps the LAST use */
    b->first_use = s->scan_pos;
}

static void
mark_param (const float *grad, gint64 n, gpointer user_data)
{
  foreach_overlap (user_data, grad, n, mark_use);
}

static int
cmp_first_use (gconstpointer a, gconstpointer b, gpointer data)
{
  const Bucket *bk = data;
  guint i = *(const guint *) a, j = *(const guint *) b;
  if (bk[i].first_use != bk[j].first_use)
    return bk[i].first_use > bk[j].first_use ? -1 : 1;
  return i < j ? -1 : i > j;
}

void
stsim_grad_sync_begin (StsimGradSync *s, StsimTape *tape)
{
  g_return_if_fail (s != NULL && tape != NULL);
  s->next = s->first_busy = 0;
  s->n_done_early = 0;
  g_clear_error (&s->error);
  for (guint i = 0; i < s->nb; i++) {
    s->b[i].state = BUCKET_WAITING;
    s->b[i].first_use = NO_USE;
    s->order[i] = i;
  }
  if (!s->overlap)
    return;
  /* Walking from the last node to the first leaves each bucket with its
   * earliest use. */
  s->scan_pos = stsim_tape_get_n_nodes (tape);
  for (StsimNode *n = stsim_tape_get_last (tape); n; n = n->prev) {
    s->scan_pos--;
    stsim_node_foreach_param (n, mark_param, s);
  }
  g_qsort_with_data (s->order, s->nb, sizeof (guint), cmp_first_use, s->b);
  s->hook = (StsimBackwardHook) { on_node_done, on_param_grad, s };
  stsim_tape_set_backward_hook (tape, &s->hook);
  launch_ready (s, NO_USE);   /* parameters this step does not use */
}

void
stsim_grad_sync_detach (StsimGradSync *s, StsimTape *tape)
{
  (void) s;
  stsim_tape_set_backward_hook (tape, NULL);
}

gboolean
stsim_grad_sync_finish (StsimGradSync *s, StsimTape *tape, GError **error)
{
  g_return_val_if_fail (s != NULL && tape != NULL, FALSE);
  gint64 t0 = g_get_monotonic_time ();
  stsim_tape_set_backward_hook (tape, NULL);
  for (guint i = 0; i < s->nb; i++)
    s->n_done_early += s->b[i].state == BUCKET_DONE;
  launch_ready (s, 0);
  for (guint k = s->first_busy; k < s->next && !s->error; k++)
    bucket_advance (s, &s->b[s->order[k]], TRUE);
  s->total_steps++;
  s->total_done_early += s->n_done_early;
  s->total_wait += (g_get_monotonic_time () - t0) / 1e6;
  if (s->error) {
    g_propagate_error (error, g_steal_pointer (&s->error));
    return FALSE;
  }
  return TRUE;
}
