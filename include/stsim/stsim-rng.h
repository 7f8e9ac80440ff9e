/* stsim-rng.h: seeded counter-based random numbers (Philox4x32-10,
 * Salmon et al., SC'11 "Parallel random numbers: as easy as 1, 2, 3").
 *
 * Every number is a pure function of (seed, stream, counter), so results do
 * not depend on the thread count or on OpenMP's scheduling, and a generator's
 * whole state is three integers that a checkpoint saves and restores.
 * Key = the 64-bit seed; counter words = (c0, c1, c2, stream): a sequential
 * generator uses (c0, c1) as a 64-bit position, dropout uses
 * (element / 4, op index, step) with the DROPOUT stream, the element being
 * its place in the single-process batch (stsim_tape_set_places).
 *
 *   StsimRng rng;
 *   stsim_rng_init (&rng, 42, STSIM_RNG_STREAM_SHUFFLE);
 *   stsim_rng_permutation (&rng, order, n);
 */
#pragma once
#include <glib.h>
#include "stsim-export.h"

G_BEGIN_DECLS

typedef enum {
  STSIM_RNG_STREAM_INIT = 1,     /* parameter initialisation */
  STSIM_RNG_STREAM_DROPOUT = 2,  /* dropout masks (counter-indexed, see stsim_dropout_mask) */
  STSIM_RNG_STREAM_MASKING = 3,  /* MLM / DiffCSE token masking */
  STSIM_RNG_STREAM_SHUFFLE = 4,  /* corpus order */
  STSIM_RNG_STREAM_USER = 16,    /* first id free for plugins */
} StsimRngStream;

/* The raw block function: 4 output words from a 4-word counter and a 2-word key. */
STSIM_API
void stsim_philox4x32_10 (const guint32 ctr[4], const guint32 key[2], guint32 out[4]);

/* Sequential generator. Plain data: copy it to save it. */
typedef struct {
  guint64 seed;
  guint32 stream;
  guint32 index;    /* next unused word of the current block, 0..4 */
  guint64 counter;  /* block counter */
  guint32 block[4]; /* cached block (derived from the three fields above) */
} StsimRng;

STSIM_API
void    stsim_rng_init (StsimRng *rng, guint64 seed, guint32 stream);
/* Puts the generator at word @position of its stream (for resume). */
STSIM_API
void    stsim_rng_seek (StsimRng *rng, guint64 position);
/* Words consumed so far: with seed and stream, the whole state. */
STSIM_API
guint64 stsim_rng_tell (const StsimRng *rng);
STSIM_API
guint32 stsim_rng_u32 (StsimRng *rng);
STSIM_API
guint64 stsim_rng_u64 (StsimRng *rng);
/* Uniform in [0, 1), 24 random bits. */
STSIM_API
float   stsim_rng_uniform (StsimRng *rng);
/* Uniform in [0, 1), 53 random bits. */
STSIM_API
double  stsim_rng_uniform_double (StsimRng *rng);
/* Standard normal by Box-Muller (two uniforms per draw; no cached spare, so
 * the state stays the three integers). */
STSIM_API
double  stsim_rng_normal (StsimRng *rng);
/* Uniform integer in [lo, hi) without modulo bias. */
STSIM_API
gint64  stsim_rng_range (StsimRng *rng, gint64 lo, gint64 hi);
/* out = a uniform random permutation of 0..n-1 (Fisher-Yates). */
STSIM_API
void    stsim_rng_permutation (StsimRng *rng, gint32 *out, gint64 n);
/* Fills x with N(mean, std²) (parameter initialisation). */
STSIM_API
void    stsim_rng_fill_normal (StsimRng *rng, float *x, gint64 n, float mean, float std);
STSIM_API
void    stsim_rng_fill_uniform (StsimRng *rng, float *x, gint64 n, float lo, float hi);

/* Counter-indexed word: the same as a generator of (seed, stream) would
 * produce, but for the 96-bit position (c0 word index, c1, c2). */
STSIM_API
guint32 stsim_rng_word_at (guint64 seed, guint32 stream, guint64 word_index, guint32 c1, guint32 c2);

G_END_DECLS
