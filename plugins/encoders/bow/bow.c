/* bow.c: two weight-free baseline encoders, `bow` and `bow-idf`.
 *
 * A sentence is the SET of its distinct tokens (whitespace-split, ASCII A-Z
 * lowercased, nothing else changed).
 *   bow:     cos(A, B) = |A n B| / (sqrt|A| sqrt|B|)
 *   bow-idf: W(w) = floor(256 ln(N / df(w)) + 0.5), N = sentences given to
 *            prepare() (duplicates counted), df(w) = how many contain w;
 *            cos(A, B) = sum_{A n B} W^2 / (sqrt(sum_A W^2) sqrt(sum_B W^2))
 *
 * To give those cosines exactly through the ordinary dense-vector encoder
 * interface, prepare() builds the task's vocabulary and each vocabulary word
 * owns one coordinate; a sentence's vector holds its words' weights (1 or the
 * integer W) there. Weights are integers below 2^24 (W <= 256 ln N + 1), so
 * they are exact in float and the evaluator's double dot products are exact
 * sums of integers. Tokens never seen by prepare() (encode() without prepare,
 * as stsim-encode does) fall into `oov_buckets` hashed coordinates after the
 * vocabulary: only there can two words collide, so only there is the
 * encoder approximate. D = vocabulary size + oov_buckets, and it changes
 * with every prepare().
 */
#include <math.h>
#include <string.h>

#include <stsim/stsim.h>

typedef struct {
  gboolean    idf;
  gsize       oov_buckets;
  GHashTable *vocab;      /* token (owned) -> index + 1 */
  GArray     *weights;    /* float per vocabulary index */
  gsize       n_prepared; /* N */
  float       oov_weight;
} Bow;

static const StsimParamSpec bow_params[] = {
  { "oov_buckets", STSIM_PARAM_INT, "1024", .min = 1, .max = 1 << 20,
    .blurb = "hashed coordinates for tokens that prepare() never saw (only these can collide)",
    .flags = STSIM_PARAM_EXPERT },
  { NULL }
};

/* Lowercases ASCII A-Z in place and leaves every other byte alone (UTF-8
 * multi-byte sequences never contain bytes below 0x80). */
static void
ascii_lower_in_place (char *s)
{
  for (; *s; s++)
    if (*s >= 'A' && *s <= 'Z')
      *s = (char) (*s - 'A' + 'a');
}

/* The tokens of @sentence, lowercased; duplicates are left for the caller. */
static char **
bow_tokens (const char *sentence, GError **error)
{
  if (!g_utf8_validate (sentence, -1, NULL)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_ENCODING, "bow: sentence is not valid UTF-8");
    return NULL;
  }
  char **tokens = stsim_sts_split_whitespace (sentence);
  for (char **t = tokens; *t; t++)
    ascii_lower_in_place (*t);
  return tokens;
}

static gpointer
bow_create_common (const StsimParams *params, gboolean idf)
{
  Bow *b = g_new0 (Bow, 1);
  b->idf = idf;
  b->oov_buckets = (gsize) stsim_params_get_int (params, "oov_buckets");
  b->vocab = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  b->weights = g_array_new (FALSE, FALSE, sizeof (float));
  b->oov_weight = 1.0f;
  return b;
}

static gpointer
bow_create (const StsimParams *params, StsimContext *ctx, GError **error)
{
  return bow_create_common (params, FALSE);
}

static gpointer
bow_idf_create (const StsimParams *params, StsimContext *ctx, GError **error)
{
  return bow_create_common (params, TRUE);
}

static void
bow_destroy (gpointer state)
{
  Bow *b = state;
  g_hash_table_unref (b->vocab);
  g_array_unref (b->weights);
  g_free (b);
}

static gsize
bow_dim (gpointer state)
{
  Bow *b = state;
  return b->weights->len + b->oov_buckets;
}

static gboolean
bow_prepare (gpointer state, const char *const *sentences, gsize n, GError **error)
{
  Bow *b = state;
  g_hash_table_remove_all (b->vocab);
  g_array_set_size (b->weights, 0);
  /* Per word: how many sentences hold it, and the last sentence that counted
   * it, so that a word repeated within a sentence counts once. */
  g_autoptr (GArray) df = g_array_new (FALSE, FALSE, sizeof (guint64));
  g_autoptr (GArray) last = g_array_new (FALSE, FALSE, sizeof (gsize));
  for (gsize i = 0; i < n; i++) {
    g_auto (GStrv) tokens = bow_tokens (sentences[i], error);
    if (tokens == NULL) {
      g_prefix_error (error, "prepare, sentence %" G_GSIZE_FORMAT ": ", i);
      return FALSE;
    }
    for (char **t = tokens; *t; t++) {
      gsize idx = GPOINTER_TO_SIZE (g_hash_table_lookup (b->vocab, *t));
      if (idx == 0) {
        guint64 zero = 0;
        gsize never = G_MAXSIZE;
        g_hash_table_insert (b->vocab, g_strdup (*t), GSIZE_TO_POINTER (df->len + 1));
        g_array_append_val (df, zero);
        g_array_append_val (last, never);
        idx = df->len;
      }
      if (g_array_index (last, gsize, idx - 1) != i) {
        g_array_index (last, gsize, idx - 1) = i;
        g_array_index (df, guint64, idx - 1)++;
      }
    }
  }
  b->n_prepared = n;
  g_array_set_size (b->weights, df->len);
  for (guint k = 0; k < df->len; k++) {
    double w = 1.0;
    if (b->idf)
      w = floor (256.0 * log ((double) n / (double) g_array_index (df, guint64, k)) + 0.5);
    g_array_index (b->weights, float, k) = (float) w;
  }
  /* An unseen word is rarer than any seen one: weigh it as if df = 1. */
  b->oov_weight = b->idf && n > 1 ? (float) floor (256.0 * log ((double) n) + 0.5) : 1.0f;
  return TRUE;
}

static gboolean
bow_encode (gpointer state, const char *const *sentences, gsize n, float *out, GError **error)
{
  Bow *b = state;
  gsize d = bow_dim (b);
  memset (out, 0, n * d * sizeof (float));
  for (gsize i = 0; i < n; i++) {
    g_auto (GStrv) tokens = bow_tokens (sentences[i], error);
    if (tokens == NULL) {
      g_prefix_error (error, "encode, sentence %" G_GSIZE_FORMAT ": ", i);
      return FALSE;
    }
    float *row = out + i * d;
    for (char **t = tokens; *t; t++) {
      gsize idx = GPOINTER_TO_SIZE (g_hash_table_lookup (b->vocab, *t));
      /* Assignment, not addition: a repeated word is still one set member. */
      if (idx > 0)
        row[idx - 1] = g_array_index (b->weights, float, idx - 1);
      else
        row[b->weights->len + g_str_hash (*t) % b->oov_buckets] = b->oov_weight;
    }
  }
  return TRUE;
}

static const StsimEncoderVTable bow_vtable = {
  .dim = bow_dim, .prepare = bow_prepare, .encode = bow_encode,
};

static const StsimComponentDesc bow_desc = {
  .kind = STSIM_KIND_ENCODER, .name = "bow",
  .summary = "binary bag of words: cosine = |A n B| / sqrt(|A| |B|) over distinct lowercased tokens",
  .params = bow_params, .create = bow_create, .destroy = bow_destroy, STSIM_VTABLE (bow_vtable),
};

static const StsimComponentDesc bow_idf_desc = {
  .kind = STSIM_KIND_ENCODER, .name = "bow-idf",
  .summary = "bag of words weighted by round(256 ln(N/df)) from the task's sentences (prepare)",
  .params = bow_params, .create = bow_idf_create, .destroy = bow_destroy, STSIM_VTABLE (bow_vtable),
};

STSIM_PLUGIN_DEFINE ("bow", "0.1.0", "MIT",
                     "weight-free bag-of-words baselines for the STS evaluator", NULL,
                     &bow_desc, &bow_idf_desc)
