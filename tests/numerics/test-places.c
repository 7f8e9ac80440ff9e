/* test-places: dropout keyed by the rows' places in the single-process batch
 * (stsim_tape_set_places, docs/distributed.md). A rank's rows are some of
 * the whole batch's sequences; with their places, the rank's dropout and
 * attention dropout must draw exactly the single-process masks for them:
 *
 *   dropout          the local output rows equal the single-process output's
 *                    rows of those sequences, bit for bit, and equal
 *                    stsim_dropout_mask's slice at the global offsets; the
 *                    same tape WITHOUT places draws another mask (so the
 *                    keying by local position, which this replaces, fails)
 *   attention        packed and padded (the rank pads to its own longest
 *                    row, narrower than the whole batch's): the local output
 *                    rows and the gradients of q, k, v (the mask is
 *                    regenerated in backward) equal the single-process ones
 *   mismatch         places that do not fit the tensor: a critical and NULL
 */
#include <string.h>

#include "stsim/stsim.h"

#define SEED 99
#define STEP 5

/* The whole batch: 5 sequences of these lengths; the rank holds 1, 3 and 4
 * (two runs of rows, as the shards of both views give). */
static const gint32 lens[] = { 3, 5, 2, 4, 6 };
static const gsize mine[] = { 1, 3, 4 };
#define N_SEQ G_N_ELEMENTS (lens)
#define N_MINE G_N_ELEMENTS (mine)

/* Layout of the whole batch (@width 0: packed) and of the rank's rows
 * (padded to @local_width), with the rank's places. Returns the rows. */
static gint64
layouts (gsize width, gsize local_width, StsimSeq *whole, StsimSeq *local, StsimRowPlace *pl)
{
  gint64 row = 0, pairs = 0;
  for (gsize s = 0; s < N_SEQ; s++) {
    gint32 rows = width ? (gint32) width : lens[s];
    whole[s] = (StsimSeq) { (gint32) row, rows, lens[s] };
    row += rows;
    pairs += (gint64) rows * lens[s];
  }
  gint64 lrow = 0;
  for (gsize i = 0; i < N_MINE; i++) {
    const StsimSeq *g = &whole[mine[i]];
    gint64 before = 0;
    for (gsize s = 0; s < mine[i]; s++)
      before += (gint64) whole[s].rows * whole[s].keys;
    gint32 rows = width ? (gint32) local_width : lens[mine[i]];
    local[i] = (StsimSeq) { (gint32) lrow, rows, g->keys };
    pl[i] = (StsimRowPlace) { lrow, rows, g->offset, g->rows, before };
    lrow += rows;
  }
  (void) pairs;
  return lrow;
}

static void
fill (float *x, gint64 n, guint32 salt)
{
  StsimRng rng;
  stsim_rng_init (&rng, 7 + salt, STSIM_RNG_STREAM_USER);
  stsim_rng_fill_uniform (&rng, x, n, -1.0f, 1.0f);
}

/* Local row r of sequence i is whole row whole[mine[i]].offset + (r - local offset). */
static gint64
whole_row (const StsimSeq *whole, const StsimSeq *local, gint64 r)
{
  for (gsize i = 0; i < N_MINE; i++)
    if (r >= local[i].offset && r < local[i].offset + local[i].rows)
      return whole[mine[i]].offset + (r - local[i].offset);
  g_assert_not_reached ();
}

static StsimTape *
new_tape (void)
{
  StsimTape *t = stsim_tape_new (SEED, 0);
  stsim_tape_set_step (t, STEP);
  return t;
}

static void
test_dropout (void)
{
  const gint64 C = 7;
  StsimSeq whole[N_SEQ], local[N_MINE];
  StsimRowPlace pl[N_MINE];
  gint64 nl = layouts (0, 0, whole, local, pl), ng = whole[N_SEQ - 1].offset + whole[N_SEQ - 1].rows;
  g_autofree float *xg = g_new (float, ng * C), *xl = g_new (float, nl * C);
  fill (xg, ng * C, 0);
  for (gint64 r = 0; r < nl; r++)
    memcpy (xl + r * C, xg + whole_row (whole, local, r) * C, C * sizeof (float));

  g_autoptr(StsimTape) tg = new_tape ();
  g_autoptr(StsimTape) tl = new_tape ();
  g_autoptr(StsimTape) tn = new_tape ();
  /* A first random op, so that the op index (1) is part of the key too. */
  stsim_dropout (tg, stsim_tensor_zeros (tg, 2, (gint64[]) { 3, C }), 0.5f);
  stsim_dropout (tl, stsim_tensor_zeros (tl, 2, (gint64[]) { 3, C }), 0.5f);
  stsim_dropout (tn, stsim_tensor_zeros (tn, 2, (gint64[]) { 3, C }), 0.5f);
  StsimTensor *yg = stsim_dropout (tg, stsim_tensor_from_data (tg, 2, (gint64[]) { ng, C }, xg), 0.4f);
  stsim_tape_set_places (tl, pl, N_MINE);
  StsimTensor *yl = stsim_dropout (tl, stsim_tensor_from_data (tl, 2, (gint64[]) { nl, C }, xl), 0.4f);
  stsim_tape_set_places (tl, NULL, 0);
  StsimTensor *yn = stsim_dropout (tn, stsim_tensor_from_data (tn, 2, (gint64[]) { nl, C }, xl), 0.4f);

  g_autofree guint8 *mask = g_new (guint8, ng * C);
  stsim_dropout_mask (SEED, STEP, 1, ng * C, 0.4f, mask);
  gint64 dropped = 0, differ = 0;
  for (gint64 r = 0; r < nl; r++) {
    gint64 g = whole_row (whole, local, r);
    for (gint64 c = 0; c < C; c++) {
      float want = yg->data[g * C + c];
      g_assert_cmpfloat (yl->data[r * C + c], ==, want);
      g_assert_cmpint (yl->data[r * C + c] != 0.0f, ==, mask[g * C + c]);
      dropped += !mask[g * C + c];
      differ += yn->data[r * C + c] != want;
    }
  }
  g_test_message ("%" G_GINT64_FORMAT " of %" G_GINT64_FORMAT " local elements dropped; keyed by local position, "
                  "%" G_GINT64_FORMAT " would differ", dropped, nl * C, differ);
  g_assert_cmpint (dropped, >, 0);
  g_assert_cmpint (differ, >, 0);
}

/* Attention over the whole batch and over the rank's rows with places:
 * outputs and the gradients of q, k, v agree on the rank's rows. */
static void
check_attention (gsize width, gsize local_width)
{
  const gint64 H = 8, nh = 2;
  const float p = 0.3f;
  StsimSeq whole[N_SEQ], local[N_MINE];
  StsimRowPlace pl[N_MINE];
  gint64 nl = layouts (width, local_width, whole, local, pl), ng = whole[N_SEQ - 1].offset + whole[N_SEQ - 1].rows;
  g_autofree float *qg = g_new (float, ng * 3 * H), *ql = g_new (float, nl * 3 * H);
  g_autofree float *wg = g_new0 (float, ng * H), *wl = g_new (float, nl * H);
  fill (qg, ng * 3 * H, 1);
  fill (wg, ng * H, 2);
  for (gint64 r = 0; r < nl; r++) {
    gint64 g = whole_row (whole, local, r);
    memcpy (ql + r * 3 * H, qg + g * 3 * H, 3 * H * sizeof (float));
    memcpy (wl + r * H, wg + g * H, H * sizeof (float));
  }
  /* The whole batch's loss weights only the rank's rows, so that the
   * gradients of those rows are the same function in both runs. */
  g_autofree gint8 *is_mine = g_new0 (gint8, ng);
  for (gint64 r = 0; r < nl; r++)
    is_mine[whole_row (whole, local, r)] = 1;
  for (gint64 g = 0; g < ng; g++)
    if (!is_mine[g])
      memset (wg + g * H, 0, H * sizeof (float));

  g_autoptr(StsimTape) tg = new_tape ();
  g_autoptr(StsimTape) tl = new_tape ();
  StsimTensor *Qg = stsim_tensor_from_data (tg, 2, (gint64[]) { ng, 3 * H }, qg);
  StsimTensor *Ql = stsim_tensor_from_data (tl, 2, (gint64[]) { nl, 3 * H }, ql);
  stsim_tensor_set_requires_grad (Qg, TRUE);
  stsim_tensor_set_requires_grad (Ql, TRUE);

  StsimTensor *og = stsim_attention_qkv (tg, Qg, whole, N_SEQ, (int) nh, p);
  stsim_tape_set_places (tl, pl, N_MINE);
  StsimTensor *ol = stsim_attention_qkv (tl, Ql, local, N_MINE, (int) nh, p);
  stsim_tape_set_places (tl, NULL, 0);
  g_assert_nonnull (og);
  g_assert_nonnull (ol);
  StsimTensor *lg = stsim_sum (tg, stsim_mul (tg, og, stsim_tensor_from_data (tg, 2, (gint64[]) { ng, H }, wg)));
  StsimTensor *ll = stsim_sum (tl, stsim_mul (tl, ol, stsim_tensor_from_data (tl, 2, (gint64[]) { nl, H }, wl)));
  g_autoptr(GError) error = NULL;
  g_assert_true (stsim_tape_backward (tg, lg, NULL, &error));
  g_assert_true (stsim_tape_backward (tl, ll, NULL, &error));
  const float *dg = Qg->grad, *dl = Ql->grad;
  g_assert_nonnull (dg);
  g_assert_nonnull (dl);
  for (gint64 r = 0; r < nl; r++) {
    gint64 g = whole_row (whole, local, r);
    for (gint64 c = 0; c < H; c++)
      g_assert_cmpfloat (ol->data[r * H + c], ==, og->data[g * H + c]);
    for (gint64 c = 0; c < 3 * H; c++)
      g_assert_cmpfloat (dl[r * 3 * H + c], ==, dg[g * 3 * H + c]);
  }
}

static void
test_attention_packed (void)
{
  check_attention (0, 0);
}

static void
test_attention_padded (void)
{
  /* The whole batch pads to 8 (a row of another rank is longer), this
   * rank to its own longest row, 6. */
  check_attention (8, 6);
}

static void
test_mismatch (void)
{
  if (g_test_subprocess ()) {
    StsimRowPlace pl[1] = { { 0, 3, 10, 3, 0 } };
    g_autoptr(StsimTape) t = new_tape ();
    stsim_tape_set_places (t, pl, 1);
    StsimTensor *y = stsim_dropout (t, stsim_tensor_zeros (t, 2, (gint64[]) { 4, 2 }), 0.5f);
    g_assert_null (y);
    return;
  }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_stderr ("*row places do not cover*");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/numerics/places/dropout", test_dropout);
  g_test_add_func ("/numerics/places/attention-packed", test_attention_packed);
  g_test_add_func ("/numerics/places/attention-padded", test_attention_padded);
  g_test_add_func ("/numerics/places/mismatch", test_mismatch);
  return g_test_run ();
}
