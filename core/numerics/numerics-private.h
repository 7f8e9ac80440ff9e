/* numerics-private.h: the tape's node list and the helpers every op file
 * shares. Not installed. */
#pragma once
#include <string.h>
#include <math.h>
#include "stsim/stsim-tensor.h"
#include "stsim/stsim-autograd.h"
#include "stsim/stsim-rng.h"

typedef struct _StsimNode StsimNode;
typedef void (*StsimBackwardFunc) (StsimTape *tape, StsimNode *node);

/* One recorded op. Lives in the arena; the list runs backwards via prev. */
struct _StsimNode {
  StsimBackwardFunc backward;
  const char       *name;
  StsimTensor      *out;
  StsimTensor      *in[4];
  gpointer          ctx;     /* op-specific saved state, arena memory */
  StsimNode        *prev;
  StsimTensor     **xin;     /* inputs beyond in[] (concat), or NULL */
  gsize             n_xin;
};

/* An observer of backward passes (core/train/grad-sync.c overlaps the
 * gradient all-reduce with them). node_done runs after every node, whether
 * its backward ran or was skipped, with the node's position in recording
 * order (0 = first recorded; backward visits n_nodes-1 down to 0).
 * param_grad runs when a backward function takes (part of) a parameter's
 * gradient block to write: [grad, grad + n). Either may be NULL. */
typedef struct {
  void   (*node_done) (gsize position, gpointer user_data);
  void   (*param_grad) (const float *grad, gint64 n, gpointer user_data);
  gpointer user_data;
} StsimBackwardHook;

struct _StsimTape {
  StsimArena *arena;
  StsimNode  *last;
  gsize       n_nodes;
  guint64     seed;
  guint64     step;
  guint32     op_counter;    /* random ops of this step so far: keys dropout */
  StsimRowPlace *places;     /* NULL, or where the rows sit in the single-process batch */
  gsize       n_places;
  gboolean    grad_enabled;
  gboolean    training;
  const StsimBackwardHook *hook;   /* or NULL */
  gboolean    keep_grads;    /* keep op outputs' gradients until reset */
};

/* grad_state values of a root tensor */
enum { STSIM_GRAD_NONE = 0, STSIM_GRAD_VALID = 1 };

/* Record helpers. */
gboolean     stsim_tape_wants_grad (StsimTape *tape, StsimTensor *a, StsimTensor *b, StsimTensor *c);
StsimTensor *stsim_tape_out (StsimTape *tape, int ndim, const gint64 *shape, gboolean requires_grad);
StsimTensor *stsim_tape_out_like (StsimTape *tape, StsimTensor *x, gboolean requires_grad);
StsimNode   *stsim_tape_record (StsimTape *tape, const char *name, StsimBackwardFunc backward,
                                StsimTensor *out, StsimTensor *a, StsimTensor *b, StsimTensor *c);
gpointer     stsim_tape_alloc (StsimTape *tape, gsize bytes);
/* Installs @hook (NULL: none) for the following backward passes; the
 * caller keeps it alive. */
void         stsim_tape_set_backward_hook (StsimTape *tape, const StsimBackwardHook *hook);
/* The tape's last recorded node (walk on with ->prev). */
StsimNode   *stsim_tape_get_last (StsimTape *tape);
/* Calls @fn with the gradient range of every input of @node that is a
 * parameter (a store's view, or a view of one) with a gradient block. */
void         stsim_node_foreach_param (StsimNode *node, void (*fn) (const float *grad, gint64 n, gpointer user_data),
                                       gpointer user_data);

/* Gradient buffer of @t for writing. *beta is 0 when the buffer is fresh
 * and the caller must overwrite all of t's elements, 1 when it must add. */
float       *stsim_grad_acquire (StsimTape *tape, StsimTensor *t, float *beta);
/* Gradient buffer of @t that is valid (zeroed if new): always add into it. */
float       *stsim_grad_acquire_acc (StsimTape *tape, StsimTensor *t);
static inline gboolean stsim_needs_grad (const StsimTensor *t) { return t && (t->flags & STSIM_TENSOR_REQUIRES_GRAD); }

/* ---- kernels (kernels.c): vectorised leaf loops ------------------------ */
/* Leaf loops compiled for AVX-512, AVX2 and baseline x86-64, picked at load time. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define STSIM_CLONES __attribute__((target_clones ("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define STSIM_CLONES
#endif

/* C = alpha·op(A)·op(B) + beta·C, row-major (gemm.c): bit-identical at any
 * thread count, whatever kernel OpenBLAS picks. */
void  stsim_k_sgemm (gboolean ta, gboolean tb, gint64 M, gint64 N, gint64 K, float alpha, const float *A, gint64 lda,
                     const float *B, gint64 ldb, float beta, float *C, gint64 ldc);
/* The row chunks stsim_k_sgemm cuts an M×N×K product into (from the shape
 * alone): returns their count; *rows = rows per chunk (the last may have fewer). */
gint64 stsim_k_sgemm_plan (gint64 M, gint64 N, gint64 K, gint64 *rows);

/* Parallel when there is enough work: elements per thread below this stay serial. */
#define STSIM_PAR_MIN 32768

void  stsim_k_bias_act_forward (float *y, float *pre, const float *b, gint64 rows, gint64 cols, StsimActivation act);
void  stsim_k_act_backward (float *dy_inout, const float *pre_or_out, gint64 n, StsimActivation act);
void  stsim_k_gelu (float *y, const float *x, gint64 n);
void  stsim_k_gelu_backward (float *dx, float beta, const float *dy, const float *x, gint64 n);
/* Deterministic column sums of a [rows, cols] block added into out (cols). */
void  stsim_k_colsum_acc (StsimTape *tape, float *out, const float *x, gint64 rows, gint64 cols);
void  stsim_k_softmax_row (float *y, const float *x, gint64 n);
float stsim_k_exp (float x);
void  stsim_k_exp_inplace (float *x, gint64 n);
/* y = beta·y + alpha·x */
void  stsim_k_axpby (float *y, float beta, const float *x, float alpha, gint64 n);
/* keep[i] = Philox word (start+i) of counter ((start+i)/4, c1, c2, c3), key seed, >= thr;
 * vectorised and threaded, bit-identical to the scalar block function. */
void  stsim_k_philox_keep (guint64 seed, guint32 c1, guint32 c2, guint32 c3, gint64 start, gint64 n, guint32 thr,
                           guint8 *keep);
/* y = keep ? x·s : 0 (beta 0) or y += that (beta 1). */
void  stsim_k_mask_scale (float *y, float beta, const float *x, const guint8 *keep, float s, gint64 n);
void  stsim_dropout_keep (guint64 seed, guint64 step, guint32 op, gint64 start, gint64 n, float p, guint8 *keep);
/* The tape's places as an arena copy (NULL when none), for an op's backward. */
StsimRowPlace *stsim_tape_places_copy (StsimTape *tape);

/* ---- batch norm over a batch split across processes (ops-norm.c) ------- */
/* How the processes that each hold some rows of one batch share its
 * statistics (core/train/dist.c supplies an MPI all-reduce). */
typedef struct {
  /* Sums @n doubles in place, element by element, over every process; each
   * process calls it in the same order. FALSE with @error set on failure. */
  gboolean (*sum) (double *buf, gsize n, gpointer user_data, GError **error);
  /* Takes (owns) the error of a sum that failed inside the backward pass,
   * which cannot return one; dx then stays this process's own. */
  void     (*backward_failed) (GError *error, gpointer user_data);
  gpointer user_data;
} StsimBnStatsHook;

/* stsim_batch_norm of this process's rows x [n >= 1, C] with the statistics
 * of the whole batch (N >= 2 rows over all processes): the forward sums the
 * column sums, the row count and the centred squares through @hook; the
 * backward sums Σdy and Σdy·x̂, so dx equals the one-process gradient of
 * these rows while dγ, dβ are this process's share (a gradient all-reduce
 * adds them up). Running statistics get the batch's mean and unbiased
 * variance, identical on every process. A failed sum in the forward: NULL
 * with a critical. The same kernel as stsim_batch_norm, which is this op
 * with no hook. */
StsimTensor *stsim_batch_norm_shared (StsimTape *tape, StsimTensor *x, StsimTensor *gamma, StsimTensor *beta,
                                      float *running_mean, float *running_var, float momentum, float eps,
                                      const StsimBnStatsHook *hook);
