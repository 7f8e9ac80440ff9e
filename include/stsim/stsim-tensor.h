/* stsim-tensor.h: fp32 tensors, the per-step activation arena, parameter
 * stores and the thread count.
 *
 * Contract
 * - A tensor is a contiguous, row-major fp32 block of up to 4 dimensions
 *   (a scalar has ndim 0 and one element). "Rows" always means
 *   numel / shape[ndim-1]: ops that work "per row" see a tensor as
 *   [rows, last dim].
 * - Activations live in a StsimArena owned by a StsimTape (stsim-autograd.h):
 *   one 64-byte aligned block, bump allocated, reset after every optimizer
 *   step. If a step needs more than the block holds, the extra comes from
 *   overflow chunks for that step only; the next reset grows the block to the
 *   high-water mark, so from the second step on nothing is malloc'ed.
 * - Parameters live in a StsimParamStore: ONE block of values and ONE block
 *   of gradients (llm.c style), with named views (name -> offset, shape,
 *   flags). zero-grad is a memset, AdamW one loop, an all-reduce one call.
 *   Views keep declaration order, so tensors declared one after another are
 *   adjacent and stsim_param_store_fuse() can view them as one (Wq|Wk|Wv as
 *   one [3H, H] weight for a single fused QKV GEMM).
 *
 *   g_autoptr(StsimParamStore) store = stsim_param_store_new ("student", TRUE);
 *   gint64 wshape[2] = { 768, 768 }, bshape[1] = { 768 };
 *   StsimTensor *w = stsim_param_store_add (store, "dense.weight", 2, wshape, 0);
 *   StsimTensor *b = stsim_param_store_add (store, "dense.bias", 1, bshape, STSIM_VIEW_NO_DECAY);
 *   stsim_param_store_finish (store, &err);     // allocates both blocks, zeroed
 *   stsim_param_store_zero_grad (store);        // one memset
 */
#pragma once
#include <glib.h>
#include "stsim-export.h"
#include "stsim-error.h"

G_BEGIN_DECLS

#define STSIM_TENSOR_MAX_DIMS 4

typedef struct _StsimTensor StsimTensor;  /* also forward-declared in stsim-plugin.h */

typedef enum {
  STSIM_TENSOR_REQUIRES_GRAD = 1u << 0,  /* gradients flow into this tensor */
  STSIM_TENSOR_PARAM         = 1u << 1,  /* a parameter-store view: grad is in the store, always accumulated */
  STSIM_TENSOR_VIEW          = 1u << 2,  /* shares data (and grad) with tensor->base */
} StsimTensorFlags;

struct _StsimTensor {
  float       *data;     /* numel floats */
  float       *grad;     /* numel floats or NULL: allocated on demand during backward */
  gint64       shape[STSIM_TENSOR_MAX_DIMS];
  gint64       numel;
  int          ndim;
  guint32      flags;    /* StsimTensorFlags */
  /* Internal bookkeeping; do not touch. */
  StsimTensor *base;     /* storage owner of a view, else NULL */
  gint64       base_offset;
  guint32      grad_state;
  guint32      reserved;
};

static inline gboolean stsim_tensor_requires_grad (const StsimTensor *t) { return (t->flags & STSIM_TENSOR_REQUIRES_GRAD) != 0; }
static inline gint64   stsim_tensor_cols (const StsimTensor *t) { return t->ndim > 0 ? t->shape[t->ndim - 1] : 1; }
static inline gint64   stsim_tensor_rows (const StsimTensor *t) { return t->ndim > 0 && t->shape[t->ndim - 1] > 0 ? t->numel / t->shape[t->ndim - 1] : 1; }

/* "[4096, 768]" into @buf (at least 64 bytes); returns buf. For messages. */
STSIM_API
const char *stsim_tensor_shape_string (const StsimTensor *t, char *buf, gsize size);
/* Same ndim and extents. */
STSIM_API
gboolean    stsim_tensor_same_shape (const StsimTensor *a, const StsimTensor *b);
/* Sets or clears REQUIRES_GRAD on a leaf (a test input, say). */
STSIM_API
void        stsim_tensor_set_requires_grad (StsimTensor *t, gboolean requires_grad);

/* ---- arena ------------------------------------------------------------- */
typedef struct _StsimArena StsimArena;

/* @initial_bytes may be 0: the first step then runs from overflow chunks
 * and the first reset sizes the block. */
STSIM_API
StsimArena *stsim_arena_new   (gsize initial_bytes);
STSIM_API
void        stsim_arena_free  (StsimArena *arena);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimArena, stsim_arena_free)
/* 64-byte aligned, uninitialised. Never fails (GLib aborts on OOM). */
STSIM_API
gpointer    stsim_arena_alloc (StsimArena *arena, gsize bytes);
STSIM_API
gpointer    stsim_arena_alloc0 (StsimArena *arena, gsize bytes);
/* Forgets every allocation; grows the block first when the step overflowed.
 * Pool blocks are kept for the next step, except those this step did not use. */
STSIM_API
void        stsim_arena_reset (StsimArena *arena);
/* A point to rewind to: stsim_arena_release() forgets every bump allocation
 * made after stsim_arena_mark() (marks nest like a stack; pool blocks are
 * not affected). For scratch memory whose lifetime ends before the step's. */
typedef struct {
  gsize offset, chunk_bytes;
  guint n_chunks;
} StsimArenaMark;
STSIM_API
StsimArenaMark stsim_arena_mark (const StsimArena *arena);
STSIM_API
void        stsim_arena_release (StsimArena *arena, const StsimArenaMark *mark);
/* Pool: 64-byte aligned blocks freed one by one, in any order, for memory
 * that dies in the middle of a step (activation gradients). Freed blocks are
 * reused by later requests of about the same size (at most 1/8 larger). */
STSIM_API
gpointer    stsim_arena_pool_alloc (StsimArena *arena, gsize bytes);
STSIM_API
void        stsim_arena_pool_free  (StsimArena *arena, gpointer p);
STSIM_API
gsize       stsim_arena_get_used       (const StsimArena *arena);  /* bytes in use now (bump + live pool blocks) */
STSIM_API
gsize       stsim_arena_get_high_water (const StsimArena *arena);  /* max bytes in use over its life */
STSIM_API
gsize       stsim_arena_get_pool_held  (const StsimArena *arena);  /* bytes of pool blocks, live or free */
STSIM_API
gsize       stsim_arena_get_capacity   (const StsimArena *arena);  /* bytes of the main block */
/* How many times the arena called malloc (block growth and overflow chunks);
 * constant across steps once warmed up. */
STSIM_API
guint64     stsim_arena_get_n_mallocs  (const StsimArena *arena);

/* ---- parameter stores -------------------------------------------------- */
typedef enum {
  STSIM_VIEW_NO_DECAY = 1u << 0,  /* AdamW applies no weight decay (biases, LayerNorm weights) */
  STSIM_VIEW_FROZEN   = 1u << 1,  /* no gradient, AdamW skips it entirely */
} StsimViewFlags;

typedef struct {
  const char *name;
  gint64      offset;   /* in floats, into the value block (and the grad block) */
  gint64      numel;
  int         ndim;
  gint64      shape[STSIM_TENSOR_MAX_DIMS];
  guint32     flags;    /* StsimViewFlags */
  StsimTensor *tensor;
} StsimParamView;

typedef struct _StsimParamStore StsimParamStore;

/* @trainable FALSE: a frozen network (teacher, generator): no gradient block
 * at all and every view is FROZEN. */
STSIM_API
StsimParamStore *stsim_param_store_new  (const char *name, gboolean trainable);
STSIM_API
void             stsim_param_store_free (StsimParamStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimParamStore, stsim_param_store_free)

/* Declares a parameter; its tensor's data stays NULL until finish(). Returns
 * NULL (with a critical) on a duplicate name, bad shape, or after finish(). */
STSIM_API
StsimTensor *stsim_param_store_add (StsimParamStore *store, const char *name, int ndim,
                                    const gint64 *shape, guint32 view_flags);
/* Allocates the value and gradient blocks (zeroed) and points every view's
 * tensor into them. */
STSIM_API
gboolean     stsim_param_store_finish (StsimParamStore *store, GError **error);
/* A tensor over the adjacent parameters @names (same trailing dimensions),
 * stacked along dimension 0: e.g. query/key/value weights [H,H] each as one
 * [3H,H]. Not a named view (checkpoints never see it). Fails if they are
 * not adjacent in declaration order or their flags differ. */
STSIM_API
StsimTensor *stsim_param_store_fuse (StsimParamStore *store, const char *const *names, gsize n_names,
                                     GError **error);

STSIM_API
const char           *stsim_param_store_get_name (const StsimParamStore *store);
STSIM_API
gsize                 stsim_param_store_get_n_views (const StsimParamStore *store);
STSIM_API
const StsimParamView *stsim_param_store_get_view (const StsimParamStore *store, gsize i);
STSIM_API
const StsimParamView *stsim_param_store_lookup (const StsimParamStore *store, const char *name);
STSIM_API
gboolean              stsim_param_store_is_trainable (const StsimParamStore *store);
/* The blocks (NULL before finish(); grad NULL for a frozen store). */
STSIM_API
float                *stsim_param_store_get_data (StsimParamStore *store, gint64 *n_floats);
STSIM_API
float                *stsim_param_store_get_grad (StsimParamStore *store, gint64 *n_floats);
/* Number of floats of all views that are not FROZEN. */
STSIM_API
gint64                stsim_param_store_get_n_trainable (const StsimParamStore *store);
STSIM_API
void                  stsim_param_store_zero_grad (StsimParamStore *store);
/* Sets or clears FROZEN on one view (e.g. freeze the embeddings). */
STSIM_API
gboolean              stsim_param_store_set_frozen (StsimParamStore *store, const char *name,
                                                    gboolean frozen, GError **error);

/* ---- threads ----------------------------------------------------------- */
/* Sets the threads of OpenBLAS and of OpenMP (one pool: the OpenMP build of
 * OpenBLAS). 0 means all cores. Returns the count now in effect. */
STSIM_API
int  stsim_set_threads (int n_threads);
STSIM_API
int  stsim_get_threads (void);

G_END_DECLS
