/* rng.c: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11) and the
 * sequential generator and distributions built on it. */
#include "numerics-private.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void
philox_round (guint32 c[4], const guint32 k[2])
{
  guint64 p0 = (guint64) PHILOX_M0 * c[0];
  guint64 p1 = (guint64) PHILOX_M1 * c[2];
  guint32 hi0 = (guint32) (p0 >> 32), lo0 = (guint32) p0;
  guint32 hi1 = (guint32) (p1 >> 32), lo1 = (guint32) p1;
  guint32 n0 = hi1 ^ c[1] ^ k[0];
  guint32 n2 = hi0 ^ c[3] ^ k[1];
  c[0] = n0; c[1] = lo1; c[2] = n2; c[3] = lo0;
}

void
stsim_philox4x32_10 (const guint32 ctr[4], const guint32 key[2], guint32 out[4])
{
  guint32 c[4] = { ctr[0], ctr[1], ctr[2], ctr[3] };
  guint32 k[2] = { key[0], key[1] };
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k[0] += PHILOX_W0;
      k[1] += PHILOX_W1;
    }
    philox_round (c, k);
  }
  memcpy (out, c, sizeof c);
}

static inline void
philox_block (guint64 seed, guint32 c0, guint32 c1, guint32 c2, guint32 stream, guint32 out[4])
{
  const guint32 ctr[4] = { c0, c1, c2, stream };
  const guint32 key[2] = { (guint32) seed, (guint32) (seed >> 32) };
  stsim_philox4x32_10 (ctr, key, out);
}

guint32
stsim_rng_word_at (guint64 seed, guint32 stream, guint64 word_index, guint32 c1, guint32 c2)
{
  guint32 out[4];
  philox_block (seed, (guint32) (word_index >> 2), c1, c2, stream, out);
  return out[word_index & 3];
}

static void
rng_refill (StsimRng *rng)
{
  philox_block (rng->seed, (guint32) rng->counter, (guint32) (rng->counter >> 32), 0, rng->stream, rng->block);
}

void
stsim_rng_init (StsimRng *rng, guint64 seed, guint32 stream)
{
  g_return_if_fail (rng != NULL);
  rng->seed = seed;
  rng->stream = stream;
  rng->counter = 0;
  rng->index = 0;
  rng_refill (rng);
}

void
stsim_rng_seek (StsimRng *rng, guint64 position)
{
  g_return_if_fail (rng != NULL);
  rng->counter = position >> 2;
  rng->index = (guint32) (position & 3);
  rng_refill (rng);
}

guint64
stsim_rng_tell (const StsimRng *rng)
{
  return (rng->counter << 2) + rng->index;
}

guint32
stsim_rng_u32 (StsimRng *rng)
{
  if (rng->index == 4) {
    rng->counter++;
    rng->index = 0;
    rng_refill (rng);
  }
  return rng->block[rng->index++];
}

guint64
stsim_rng_u64 (StsimRng *rng)
{
  guint64 lo = stsim_rng_u32 (rng);
  guint64 hi = stsim_rng_u32 (rng);
  return (hi << 32) | lo;
}

float
stsim_rng_uniform (StsimRng *rng)
{
  return (float) (stsim_rng_u32 (rng) >> 8) * (1.0f / 16777216.0f);
}

double
stsim_rng_uniform_double (StsimRng *rng)
{
  return (double) (stsim_rng_u64 (rng) >> 11) * (1.0 / 9007199254740992.0);
}

double
stsim_rng_normal (StsimRng *rng)
{
  /* 1 - u keeps the log argument in (0, 1]. */
  double u1 = 1.0 - stsim_rng_uniform_double (rng);
  double u2 = stsim_rng_uniform_double (rng);
  return sqrt (-2.0 * log (u1)) * cos (2.0 * G_PI * u2);
}

gint64
stsim_rng_range (StsimRng *rng, gint64 lo, gint64 hi)
{
  g_return_val_if_fail (hi > lo, lo);
  guint64 span = (guint64) hi - (guint64) lo;
  guint64 r;
  /* Reject the first (2^w mod span) values so that r % span is unbiased. */
  if (span <= ((guint64) 1 << 32)) {
    guint64 t = (((guint64) 1 << 32) - span) % span;
    do
      r = stsim_rng_u32 (rng);
    while (r < t);
  } else {
    guint64 t = (0 - span) % span;
    do
      r = stsim_rng_u64 (rng);
    while (r < t);
  }
  return (gint64) ((guint64) lo + r % span);
}

void
stsim_rng_permutation (StsimRng *rng, gint32 *out, gint64 n)
{
  g_return_if_fail (out != NULL || n == 0);
  for (gint64 i = 0; i < n; i++)
    out[i] = (gint32) i;
  for (gint64 i = n - 1; i > 0; i--) {
    gint64 j = stsim_rng_range (rng, 0, i + 1);
    gint32 t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
}

void
stsim_rng_fill_normal (StsimRng *rng, float *x, gint64 n, float mean, float std)
{
  for (gint64 i = 0; i < n; i++)
    x[i] = mean + std * (float) stsim_rng_normal (rng);
}

void
stsim_rng_fill_uniform (StsimRng *rng, float *x, gint64 n, float lo, float hi)
{
  for (gint64 i = 0; i < n; i++)
    x[i] = lo + (hi - lo) * stsim_rng_uniform (rng);
}

/* ---- dropout masks ------------------------------------------------------ */

/* keep[i] for elements [start, start+n) of op @op at @step: word = Philox
 * block (element/4, op, step, DROPOUT stream) under key seed; keep when the
 * word is >= p·2^32, i.e. with probability 1-p. */
void
stsim_dropout_keep (guint64 seed, guint64 step, guint32 op, gint64 start, gint64 n, float p, guint8 *keep)
{
  guint32 thr = p <= 0.0f ? 0u : (guint32) MIN (ldexp ((double) p, 32), 4294967295.0);
  stsim_k_philox_keep (seed, op, (guint32) step, STSIM_RNG_STREAM_DROPOUT, start, n, thr, keep);
}

void
stsim_dropout_mask (guint64 seed, guint64 step, guint32 op_index, gint64 n, float p, guint8 *keep)
{
  g_return_if_fail (keep != NULL || n == 0);
  stsim_dropout_keep (seed, step, op_index, 0, n, p, keep);
}
