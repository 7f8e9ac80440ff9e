/* arena.c: the per-step activation arena.
 *
 * One 64-byte aligned block, bump allocated. A step that needs more than the
 * block gets overflow chunks for that step only (existing pointers stay
 * valid); the next reset frees them and regrows the block to the step's
 * high-water mark, so a steady-state step never calls malloc. */
#include "numerics-private.h"

#define ALIGN 64
#define ROUND_UP(n) (((n) + (ALIGN - 1)) & ~(gsize) (ALIGN - 1))

struct _StsimArena {
  guint8    *block;
  gsize      capacity;
  gsize      offset;        /* bytes used in block */
  GPtrArray *chunks;        /* overflow chunks of this step */
  gsize      chunk_bytes;   /* bytes handed out from chunks this step */
  gsize      high_water;
  gsize      step_need;     /* block + overflow bytes this step */
  guint64    n_mallocs;
};

static gpointer
aligned_new (StsimArena *arena, gsize bytes)
{
  arena->n_mallocs++;
  return g_aligned_alloc (1, MAX (bytes, ALIGN), ALIGN);
}

StsimArena *
stsim_arena_new (gsize initial_bytes)
{
  StsimArena *arena = g_new0 (StsimArena, 1);
  arena->chunks = g_ptr_array_new_with_free_func (g_aligned_free);
  if (initial_bytes > 0) {
    arena->capacity = ROUND_UP (initial_bytes);
    arena->block = aligned_new (arena, arena->capacity);
  }
  return arena;
}

void
stsim_arena_free (StsimArena *arena)
{
  if (!arena)
    return;
  g_aligned_free (arena->block);
  g_ptr_array_unref (arena->chunks);
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
    g_ptr_array_add (arena->chunks, p);
    arena->chunk_bytes += need;
  }
  arena->step_need = arena->offset + arena->chunk_bytes;
  if (arena->step_need > arena->high_water)
    arena->high_water = arena->step_need;
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
  if (arena->chunks->len > 0) {
    /* The step overflowed: one block big enough for all of it, with some
     * slack so a slightly longer batch does not regrow it again. */
    gsize want = ROUND_UP (arena->step_need + arena->step_need / 8);
    g_ptr_array_set_size (arena->chunks, 0);
    g_aligned_free (arena->block);
    arena->block = aligned_new (arena, want);
    arena->capacity = want;
  }
  arena->offset = 0;
  arena->chunk_bytes = 0;
  arena->step_need = 0;
}

gsize stsim_arena_get_used (const StsimArena *arena) { return arena->offset + arena->chunk_bytes; }
gsize stsim_arena_get_high_water (const StsimArena *arena) { return arena->high_water; }
gsize stsim_arena_get_capacity (const StsimArena *arena) { return arena->capacity; }
guint64 stsim_arena_get_n_mallocs (const StsimArena *arena) { return arena->n_mallocs; }
