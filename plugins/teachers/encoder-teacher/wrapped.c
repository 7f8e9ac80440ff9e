/* wrapped.c: encoder-teacher's second source of embeddings, any encoder
 * section of the recipe (`encoder = encoder.LABEL`): bow, bow-idf, a
 * checkpoint through bert/roberta, or a third-party encoder plugin, each
 * configured by its own section and parameter table.
 *
 *   prepare_corpus:  prepare(encoder, corpus)        (bow-idf: N and df of the
 *                                                      training corpus)
 *                    t_i = encode(encoder, text_i)   for every corpus sentence,
 *                                                      kept in memory (cache)
 *   similarity:      sim[i, j] = t_i·t_j / (max(‖t_i‖, 1e-8) · max(‖t_j‖, 1e-8))
 *
 * The encoder is a function of the text, so the cache is keyed by the text.
 * Rows are kept sparse (index, value pairs in ascending index) when most of
 * their coordinates are zero, as in bow-idf whose D is the corpus vocabulary,
 * and dense otherwise. The cosine visits the non-zero products in ascending
 * coordinate order, which is the dense loop's order with its exact zero terms
 * left out; adding a zero never changes a double sum, so cached (sparse) and
 * direct (dense) rows give bit-identical matrices. */
#include <math.h>
#include <string.h>

#include <stsim/stsim.h>
#include "wrapped.h"

/* One embedding: dense when idx == NULL (nnz == D values), else nnz
 * (idx, val) pairs with idx ascending. */
typedef struct {
  const guint32 *idx;
  const float   *val;
  gsize          nnz;
} Row;

struct _WrappedTeacher {
  StsimComponent *enc;        /* borrowed from the context */
  char           *label;
  gboolean        use_cache;
  gsize           D;
  /* the corpus cache */
  gsize           n;
  GStringChunk   *texts;
  GHashTable     *index;      /* text -> row + 1 */
  gboolean        sparse;
  gsize          *start;      /* sparse: row i is [start[i], start[i + 1]) */
  guint32        *idx;
  float          *val;        /* sparse values, or dense [n, D] */
  guint64         n_steps, hits, lookups;
};

void
wrapped_teacher_free (WrappedTeacher *w)
{
  if (!w)
    return;
  if (w->index)
    g_hash_table_unref (w->index);
  if (w->texts)
    g_string_chunk_free (w->texts);
  g_free (w->start);
  g_free (w->idx);
  g_free (w->val);
  g_free (w->label);
  g_free (w);
}

WrappedTeacher *
wrapped_teacher_new (StsimContext *ctx, const char *label, gboolean use_cache, GError **error)
{
  StsimComponent *enc = ctx ? stsim_context_find (ctx, STSIM_KIND_ENCODER, label, error) : NULL;
  if (!enc) {
    if (!ctx)
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                   "encoder: '%s' is not an enabled [encoder] section of this recipe", label);
    else
      g_prefix_error (error, "encoder: ");
    return NULL;
  }
  WrappedTeacher *w = g_new0 (WrappedTeacher, 1);
  w->enc = enc;
  w->label = g_strdup (label);
  w->use_cache = use_cache;
  return w;
}

/* ---- rows and the cosine ------------------------------------------------------- */

static double
row_sq (const Row *a)
{
  double s = 0;
  for (gsize k = 0; k < a->nnz; k++)
    s += (double) a->val[k] * a->val[k];
  return s;
}

/* a·b in double over ascending coordinates, for every mix of dense and sparse. */
static double
row_dot (const Row *a, const Row *b)
{
  double s = 0;
  if (!a->idx && !b->idx) {
    for (gsize k = 0; k < a->nnz; k++)
      s += (double) a->val[k] * b->val[k];
  } else if (!a->idx || !b->idx) {
    const Row *sp = a->idx ? a : b, *de = a->idx ? b : a;
    for (gsize k = 0; k < sp->nnz; k++)
      s += (double) sp->val[k] * de->val[sp->idx[k]];
  } else {
    for (gsize i = 0, j = 0; i < a->nnz && j < b->nnz;) {
      if (a->idx[i] < b->idx[j])
        i++;
      else if (a->idx[i] > b->idx[j])
        j++;
      else {
        s += (double) a->val[i] * b->val[j];
        i++, j++;
      }
    }
  }
  return s;
}

static void
rows_cosine (const Row *rows, gsize B, float *sim)
{
  g_autofree double *inv = g_new (double, B);
  for (gsize i = 0; i < B; i++)
    inv[i] = 1.0 / MAX (sqrt (row_sq (&rows[i])), 1e-8);
  for (gsize i = 0; i < B; i++)
    for (gsize j = i; j < B; j++)
      sim[i * B + j] = sim[j * B + i] = (float) (row_dot (&rows[i], &rows[j]) * inv[i] * inv[j]);
}

/* ---- the cache --------------------------------------------------------------------- */

/* Encodes @count texts into @out [count, D], checking every value. */
static gboolean
encode_checked (WrappedTeacher *w, const char *const *texts, gsize count, float *out, GError **error)
{
  if (!stsim_encoder_encode (w->enc, texts, count, out, error)) {
    g_prefix_error (error, "teacher encoder [%s]: ", w->label);
    return FALSE;
  }
  for (gsize k = 0; k < count * w->D; k++)
    if (!isfinite (out[k])) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_NUMERIC,
                   "teacher encoder [%s]: the embedding of \"%.60s\" holds %g", w->label, texts[k / w->D], out[k]);
      return FALSE;
    }
  return TRUE;
}

/* Appends chunk rows [count, D] to the sparse arrays. */
static void
append_sparse (WrappedTeacher *w, GArray *idx, GArray *val, const float *chunk, gsize first, gsize count)
{
  for (gsize r = 0; r < count; r++) {
    w->start[first + r] = idx->len;
    const float *x = chunk + r * w->D;
    for (gsize k = 0; k < w->D; k++)
      if (x[k] != 0.0f) {
        guint32 i32 = (guint32) k;
        g_array_append_val (idx, i32);
        g_array_append_val (val, x[k]);
      }
  }
}

/* The cache straight from the encoder's sparse rows (no D floats written
 * per sentence). A weight of exactly zero is dropped, as the dense scan
 * drops it. */
static gboolean
cache_fill_sparse (WrappedTeacher *w, const char *const *texts, GError **error)
{
  g_autoptr (GArray) idx = g_array_new (FALSE, FALSE, sizeof (guint32));
  g_autoptr (GArray) val = g_array_new (FALSE, FALSE, sizeof (float));
  for (gsize i = 0; i < w->n; i++) {
    w->start[i] = idx->len;
    if (!stsim_encoder_encode_sparse (w->enc, texts[i], idx, val, error)) {
      g_prefix_error (error, "teacher encoder [%s]: sentence %" G_GSIZE_FORMAT ": ", w->label, i + 1);
      return FALSE;
    }
    guint keep = (guint) w->start[i];
    for (guint k = (guint) w->start[i]; k < idx->len; k++) {
      float v = g_array_index (val, float, k);
      if (!isfinite (v)) {
        g_set_error (error, STSIM_ERROR, STSIM_ERROR_NUMERIC, "teacher encoder [%s]: the embedding of \"%.60s\" "
                     "holds %g", w->label, texts[i], v);
        return FALSE;
      }
      if (v != 0.0f) {
        g_array_index (idx, guint32, keep) = g_array_index (idx, guint32, k);
        g_array_index (val, float, keep++) = v;
      }
    }
    g_array_set_size (idx, keep);
    g_array_set_size (val, keep);
  }
  w->sparse = TRUE;
  w->start[w->n] = idx->len;
  w->idx = (guint32 *) g_array_steal (idx, NULL);
  w->val = (float *) g_array_steal (val, NULL);
  return TRUE;
}

static gboolean cache_fill_dense (WrappedTeacher *w, const char *const *texts, GError **error);

static gboolean
cache_fill (WrappedTeacher *w, const char *const *texts, GError **error)
{
  gint64 t0 = g_get_monotonic_time ();
  if (stsim_encoder_has_sparse (w->enc)) {
    if (!cache_fill_sparse (w, texts, error))
      return FALSE;
  } else if (!cache_fill_dense (w, texts, error))
    return FALSE;
  g_printerr ("encoder-teacher [%s]: cached %" G_GSIZE_FORMAT " sentences, D = %" G_GSIZE_FORMAT ", %s, %.1f MB, "
              "%.1f s\n", w->label, w->n, w->D, w->sparse ? "sparse" : "dense",
              (w->sparse ? w->start[w->n] * 8.0 : (double) w->n * w->D * 4.0) / 1e6,
              (g_get_monotonic_time () - t0) / 1e6);
  return TRUE;
}

static gboolean
cache_fill_dense (WrappedTeacher *w, const char *const *texts, GError **error)
{
  const gsize chunk = 256;
  g_autofree float *buf = g_new (float, chunk * w->D);
  g_autoptr (GArray) idx = g_array_new (FALSE, FALSE, sizeof (guint32));
  g_autoptr (GArray) val = g_array_new (FALSE, FALSE, sizeof (float));
  gint64 t0 = g_get_monotonic_time (), last = t0;
  for (gsize s = 0; s < w->n; s += chunk) {
    gsize count = MIN (chunk, w->n - s);
    if (!encode_checked (w, texts + s, count, buf, error))
      return FALSE;
    if (s == 0) {
      /* Sparse storage pays (8 bytes a non-zero against 4 a coordinate)
       * below half density; decided on the first chunk. */
      gsize nz = 0;
      for (gsize k = 0; k < count * w->D; k++)
        nz += buf[k] != 0.0f;
      w->sparse = nz * 2 < count * w->D;
      if (!w->sparse)
        w->val = g_new (float, w->n * w->D);
    }
    if (w->sparse)
      append_sparse (w, idx, val, buf, s, count);
    else
      memcpy (w->val + s * w->D, buf, count * w->D * sizeof (float));
    gint64 now = g_get_monotonic_time ();
    if (now - last > 10 * G_USEC_PER_SEC) {
      double done = (double) (s + count) / w->n, secs = (now - t0) / 1e6;
      g_printerr ("encoder-teacher [%s]: embedding the corpus: %" G_GSIZE_FORMAT "/%" G_GSIZE_FORMAT
                  " (%.0f%%, %.0f s left)\n", w->label, s + count, w->n, 100 * done, secs / done - secs);
      last = now;
    }
  }
  if (w->sparse) {
    w->start[w->n] = idx->len;
    w->idx = (guint32 *) g_array_steal (idx, NULL);
    w->val = (float *) g_array_steal (val, NULL);
  }
  return TRUE;
}

gboolean
wrapped_teacher_prepare_corpus (WrappedTeacher *w, const char *const *texts, gsize n, GError **error)
{
  if (!stsim_encoder_prepare (w->enc, texts, n, error)) {
    g_prefix_error (error, "teacher encoder [%s]: prepare on the training corpus: ", w->label);
    return FALSE;
  }
  w->D = stsim_encoder_dim (w->enc);
  if (w->D == 0 || w->D > G_MAXUINT32) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "teacher encoder [%s]: dimension %" G_GSIZE_FORMAT
                 " is out of range", w->label, w->D);
    return FALSE;
  }
  if (!w->use_cache || n == 0)
    return TRUE;
  w->n = n;
  w->texts = g_string_chunk_new (1 << 20);
  w->index = g_hash_table_new (g_str_hash, g_str_equal);
  w->start = g_new (gsize, n + 1);
  for (gsize i = 0; i < n; i++) {
    char *copy = g_string_chunk_insert_const (w->texts, texts[i]);
    if (!g_hash_table_contains (w->index, copy))
      g_hash_table_insert (w->index, copy, GSIZE_TO_POINTER (i + 1));
  }
  return cache_fill (w, texts, error);
}

/* ---- similarity ------------------------------------------------------------------- */

static Row
cached_row (WrappedTeacher *w, gsize row)
{
  if (w->sparse)
    return (Row) { w->idx + w->start[row], w->val + w->start[row], w->start[row + 1] - w->start[row] };
  return (Row) { NULL, w->val + row * w->D, w->D };
}

gboolean
wrapped_teacher_similarity (WrappedTeacher *w, StsimTrainStep *step, float *sim, GError **error)
{
  const gsize B = stsim_train_step_get_n_sentences (step);
  if (w->D == 0)
    w->D = stsim_encoder_dim (w->enc);
  g_autofree Row *rows = g_new0 (Row, B);
  g_autofree const char **miss = g_new (const char *, B);
  g_autofree gsize *miss_at = g_new (gsize, B);
  gsize n_miss = 0;
  for (gsize i = 0; i < B; i++) {
    const char *text = stsim_train_step_get_text (step, i, 0);
    if (!text) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                   "teacher encoder [%s]: sentence %" G_GSIZE_FORMAT " of the step has no text", w->label, i);
      return FALSE;
    }
    gsize row = w->index ? GPOINTER_TO_SIZE (g_hash_table_lookup (w->index, text)) : 0;
    if (row)
      rows[i] = cached_row (w, row - 1);
    else {
      miss[n_miss] = text;
      miss_at[n_miss++] = i;
    }
  }
  g_autofree float *out = n_miss ? g_new (float, n_miss * w->D) : NULL;
  if (n_miss && !encode_checked (w, miss, n_miss, out, error))
    return FALSE;
  for (gsize k = 0; k < n_miss; k++)
    rows[miss_at[k]] = (Row) { NULL, out + k * w->D, w->D };
  rows_cosine (rows, B, sim);
  if (w->index) {
    stsim_train_step_log (step, "teacher_cache_hit_rate", (double) (B - n_miss) / B);
    w->n_steps++, w->lookups += B, w->hits += B - n_miss;
  }
  return TRUE;
}
