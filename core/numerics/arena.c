/* arena.c: the per-step activation arena.
 *
 * One 64-byte aligned block, bump allocated. A step that needs more than the
 * block gets overflow chunks for that step only (existing pointers stay
 * valid); the next reset frees them and regrows the block to the step's
 * high-water mark, so a steady-state step never calls malloc.
 *
 * Big blocks and chunks are mapped directly (mmap) and unmapped when freed:
 * through malloc, glibc's sliding mmap threshold would serve the next step's
 * chunks from the heap after the first free, and a freed step-1 overflow
 * would stay resident next to the regrown block (peak RSS measured 30%
 * higher on a DiffCSE step, depending on which thread freed what).
 *
 * Two ways to give memory back inside a step (docs/autograd.md, "Memory"):
 * a mark rewinds the bump pointer (scratch of one backward node, a frozen
 * forward pass), and the pool hands out blocks that are freed one by one in
 * any order (activation gradients, dead once their producer's backward ran).
 * Pool blocks are kept by size class for the next step; those a step did
 * not use are unmapped at its reset, so varying batch shapes do not pile up. */
#include <sys/mman.h>
#include "numerics-private.h"

#define ALIGN 64
#define ROUND_UP(n) (((n) + (ALIGN - 1)) & ~(gsize) (ALIGN - 1))
#define MAP_MIN (256 * 1024)   /* smaller requests stay with malloc */

typedef struct {
  gpointer p;
  gsize    bytes;
} Chunk;

/* A pool block: live, or waiting in its class's free list. */
typedef struct {
  gpointer p;
  gsize    bytes;       /* its size class */
  gboolean live;
  gboolean used;        /* handed out during this step */
} PoolBlock;

struct _StsimArena {
  guint8    *block;
  gsize      capacity;
  gsize      offset;        /* bytes used in block */
  gsize      block_bytes;   /* bytes the block was obtained with */
  GArray    *chunks;        /* Chunk: overflow chunks of this step */
  gsize      chunk_bytes;   /* bytes handed out from chunks this step */
  gsize      high_water;    /* max of bump + live pool bytes */
  gsize      step_need;     /* block + overflow bytes in use now */
  gsize      step_peak;     /* max of step_need this step: sizes the block at reset */
  guint64    n_mallocs;
  GHashTable *pool;         /* pointer -> PoolBlock */
  GHashTable *pool_free;    /* size class -> GPtrArray of free PoolBlock */
  gsize      pool_held;     /* bytes of every pool block */
  gsize      pool_live;     /* bytes of live pool blocks */
};

static gpointer
aligned_new (StsimArena *arena, gsize bytes)
{
  arena->n_mallocs++;
  bytes = MAX (bytes, ALIGN);
  if (bytes >= MAP_MIN) {
    gpointer p = mmap (NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      g_error ("stsim arena: cannot map %" G_GSIZE_FORMAT " bytes", bytes);   /* as g_malloc does */
    return p;
  }
  return g_aligned_alloc (1, bytes, ALIGN);
}

static void
aligned_free (gpointer p, gsize bytes)
{
  if (!p)
    return;
  bytes = MAX (bytes, ALIGN);
  if (bytes >= MAP_MIN)
    munmap (p, bytes);
  else
    g_aligned_free (p);
}

static void
free_chunks (StsimArena *arena)
{
  for (guint i = 0; i < arena->chunks->len; i++) {
    Chunk *c = &g_array_index (arena->chunks, Chunk, i);
    aligned_free (c->p, c->bytes);
  }
  g_array_set_size (arena->chunks, 0);
}

static void
note_use (StsimArena *arena)
{
  arena->step_need = arena->offset + arena->chunk_bytes;
  arena->step_peak = MAX (arena->step_peak, arena->step_need);
  arena->high_water = MAX (arena->high_water, arena->step_need + arena->pool_live);
}

/* Pool blocks: every live block goes back to its free list; with @all, or
 * for blocks this step did not use, the memory goes back to the system. */
static void
pool_trim (StsimArena *arena, gboolean all)
{
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_remove_all (arena->pool_free);
  g_hash_table_iter_init (&it, arena->pool);
  while (g_hash_table_iter_next (&it, &key, &value)) {
    PoolBlock *b = value;
    if (all || !b->used) {
      aligned_free (b->p, b->bytes);
      arena->pool_held -= b->bytes;
      g_hash_table_iter_remove (&it);
      g_free (b);
      continue;
    }
    b->live = b->used = FALSE;
    GPtrArray *list = g_hash_table_lookup (arena->pool_free, GSIZE_TO_POINTER (b->bytes));
    if (!list)
      g_hash_table_insert (arena->pool_free, GSIZE_TO_POINTER (b->bytes), list = g_ptr_array_new ());
    g_ptr_array_add (list, b);
  }
  arena->pool_live = 0;
}

StsimArena *
stsim_arena_new (gsize initial_bytes)
{
  StsimArena *arena = g_new0 (StsimArena, 1);
  arena->chunks = g_array_new (FALSE, FALSE, sizeof (Chunk));
  arena->pool = g_hash_table_new (g_direct_hash, g_direct_equal);
  arena->pool_free = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, (GDestroyNotify) g_ptr_array_unref);
  if (initial_bytes > 0) {
    arena->capacity = ROUND_UP (initial_bytes);
    arena->block = aligned_new (arena, arena->capacity);
    arena->block_bytes = arena->capacity;
  }
  return arena;
}

void
stsim_arena_free (StsimArena *arena)
{
  if (!arena)
    return;
  aligned_free (arena->block, arena->block_bytes);
  free_chunks (arena);
  g_array_unref (arena->chunks);
  pool_trim (arena, TRUE);
  g_hash_table_unref (arena->pool_free);
  g_hash_table_unref (arena->pool);
  g_free (arena);
}

gpointer
stsim_arena_alloc (StsimArena *arena, gsize bytes)
{
  g_return_val_if_fail (arena != NULL, NULL);
  gsize need = ROUND_UP (MAX (bytes, 1));
  gpointer p;
  if (arena->block && arena->offset + need <= arena->capacity) {
    p = arena->block + arena->offset;
    arena->offset += need;
  } else {
    /* Overflow: a chunk for this allocation alone, freed at reset. */
    p = aligned_new (arena, need);
    Chunk c = { p, need };
    g_array_append_val (arena->chunks, c);
    arena->chunk_bytes += need;
  }
  note_use (arena);
  return p;
}

gpointer
stsim_arena_alloc0 (StsimArena *arena, gsize bytes)
{
  gpointer p = stsim_arena_alloc (arena, bytes);
  if (p)
    memset (p, 0, bytes);
  return p;
}

void
stsim_arena_reset (StsimArena *arena)
{
  g_return_if_fail (arena != NULL);
  if (arena->step_peak > arena->capacity) {
    /* The step overflowed: one block big enough for all of it, with some
     * slack so a slightly longer batch does not regrow it again. */
    gsize want = ROUND_UP (arena->step_peak + arena->step_peak / 8);
    free_chunks (arena);
    aligned_free (arena->block, arena->block_bytes);
    arena->block = aligned_new (arena, want);
    arena->block_bytes = want;
    arena->capacity = want;
  }
  arena->offset = 0;
  arena->chunk_bytes = 0;
  arena->step_need = 0;
  arena->step_peak = 0;
  pool_trim (arena, FALSE);
}

StsimArenaMark
stsim_arena_mark (const StsimArena *arena)
{
  StsimArenaMark m = { arena->offset, arena->chunk_bytes, arena->chunks->len };
  return m;
}

void
stsim_arena_release (StsimArena *arena, const StsimArenaMark *mark)
{
  g_return_if_fail (arena != NULL && mark != NULL);
  g_return_if_fail (mark->offset <= arena->offset && mark->n_chunks <= arena->chunks->len);
  for (guint i = mark->n_chunks; i < arena->chunks->len; i++) {
    Chunk *c = &g_array_index (arena->chunks, Chunk, i);
    aligned_free (c->p, c->bytes);
  }
  g_array_set_size (arena->chunks, mark->n_chunks);
  arena->offset = mark->offset;
  arena->chunk_bytes = mark->chunk_bytes;
  note_use (arena);
}

/* Size classes: multiples of 64 bytes up to 4 KiB, then 8 per doubling, so
 * a block is at most 1/8 larger than asked for. */
static gsize
pool_class (gsize bytes)
{
  bytes = ROUND_UP (MAX (bytes, 1));
  if (bytes <= 4096)
    return bytes;
  gsize step = 1;
  while ((step << 4) <= bytes)
    step <<= 1;   /* step = 2^(floor(log2 bytes) - 3) */
  return (bytes + step - 1) / step * step;
}

/* A free block of class @cls or up to two classes above (a batch a little
 * shorter than the last one reuses its blocks). */
static PoolBlock *
pool_find (StsimArena *arena, gsize cls)
{
  for (int up = 0; up < 3; up++) {
    GPtrArray *list = g_hash_table_lookup (arena->pool_free, GSIZE_TO_POINTER (cls));
    if (list && list->len > 0)
      return g_ptr_array_steal_index_fast (list, list->len - 1);
    cls = pool_class (cls + 1);
  }
  return NULL;
}

gpointer
stsim_arena_pool_alloc (StsimArena *arena, gsize bytes)
{
  g_return_val_if_fail (arena != NULL, NULL);
  gsize cls = pool_class (bytes);
  PoolBlock *b = pool_find (arena, cls);
  if (!b) {
    b = g_new0 (PoolBlock, 1);
    b->bytes = cls;
    b->p = aligned_new (arena, cls);
    arena->pool_held += cls;
    g_hash_table_insert (arena->pool, b->p, b);
  }
  b->live = b->used = TRUE;
  arena->pool_live += b->bytes;
  note_use (arena);
  return b->p;
}

void
stsim_arena_pool_free (StsimArena *arena, gpointer p)
{
  g_return_if_fail (arena != NULL);
  if (!p)
    return;
  PoolBlock *b = g_hash_table_lookup (arena->pool, p);
  g_return_if_fail (b != NULL && b->live);
  b->live = FALSE;
  arena->pool_live -= b->bytes;
  GPtrArray *list = g_hash_table_lookup (arena->pool_free, GSIZE_TO_POINTER (b->bytes));
  if (!list)
    g_hash_table_insert (arena->pool_free, GSIZE_TO_POINTER (b->bytes), list = g_ptr_array_new ());
  g_ptr_array_add (list, b);
}

gsize stsim_arena_get_used (const StsimArena *arena) { return arena->offset + arena->chunk_bytes + arena->pool_live; }
gsize stsim_arena_get_pool_held (const StsimArena *arena) { return arena->pool_held; }
gsize stsim_arena_get_high_water (const StsimArena *arena) { return arena->high_water; }
gsize stsim_arena_get_capacity (const StsimArena *arena) { return arena->capacity; }
guint64 stsim_arena_get_n_mallocs (const StsimArena *arena) { return arena->n_mallocs; }
