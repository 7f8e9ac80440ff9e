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
 *
 * IDF FROM A CORPUS. By default bow-idf takes N and df from the sentences
 * given to prepare() (an STS task's own sentences, as the SentEval-style
 * baseline does: their text, never their scores). With `idf_corpus` set it
 * takes them once, at create(), from those files instead (a training corpus,
 * never an evaluation set), and prepare() keeps them: it only gives the
 * task's words that the corpus never saw a coordinate of their own, weighed
 * as if df = 1 (floor(256 ln N + 0.5)), so that they still cannot collide.
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
  gsize       n_fixed;    /* with idf_corpus: the corpus' words, kept by prepare() */
  gboolean    fixed;      /* IDF taken from idf_corpus at create() */
  gboolean    words;      /* tokenize = words: ASCII punctuation splits too */
} Bow;

#define BOW_COMMON_PARAMS                                                                  \
  { "oov_buckets", STSIM_PARAM_INT, "1024", .min = 1, .max = 1 << 20,                      \
    .blurb = "hashed coordinates for tokens that prepare() never saw (only these can collide)", \
    .flags = STSIM_PARAM_EXPERT },                                                         \
  { "tokenize", STSIM_PARAM_ENUM, "whitespace", .choices = "whitespace|words",             \
    .blurb = "whitespace: split on white space only (SentEval's already tokenized text); "  \
             "words: also split off every ASCII punctuation mark (raw text such as a corpus)" }

static const StsimParamSpec bow_params[] = {
  BOW_COMMON_PARAMS,
  { NULL }
};

static const StsimParamSpec bow_idf_params[] = {
  BOW_COMMON_PARAMS,
  { "idf_corpus", STSIM_PARAM_PATH, NULL,
    .blurb = "take N and df from these sentence files (file, folder, dir/*.txt or a comma-separated list; a "
             "training corpus, never an evaluation set) instead of from each task's sentences" },
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

/* @sentence with a space on both sides of every ASCII punctuation mark, so
 * that "dog." and "(dog" give the word "dog" and the marks "." and "(". */
static char *
space_out_punctuation (const char *sentence)
{
  GString *out = g_string_sized_new (strlen (sentence) + 16);
  for (const char *p = sentence; *p; p++) {
    if (g_ascii_ispunct (*p)) {
      g_string_append_c (out, ' ');
      g_string_append_c (out, *p);
      g_string_append_c (out, ' ');
    } else
      g_string_append_c (out, *p);
  }
  return g_string_free (out, FALSE);
}

/* The tokens of @sentence, lowercased; duplicates are left for the caller. */
static char **
bow_tokens (const Bow *b, const char *sentence, GError **error)
{
  if (!g_utf8_validate (sentence, -1, NULL)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_ENCODING, "bow: sentence is not valid UTF-8");
    return NULL;
  }
  g_autofree char *spaced = b->words ? space_out_punctuation (sentence) : NULL;
  char **tokens = stsim_sts_split_whitespace (spaced ? spaced : sentence);
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
  b->words = g_str_equal (stsim_params_get_string (params, "tokenize"), "words");
  return b;
}

static gpointer
bow_create (const StsimParams *params, StsimContext *ctx, GError **error)
{
  return bow_create_common (params, FALSE);
}

static gboolean bow_count (Bow *b, const char *const *sentences, gsize n, GError **error);
static void     bow_destroy (gpointer state);

/* N and df from the files of @spec (comma-separated corpus entries). */
static gboolean
bow_load_idf_corpus (Bow *b, const char *spec, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (spec, ",", -1);
  g_autoptr (GPtrArray) paths = g_ptr_array_new ();
  for (char **p = parts; *p; p++)
    if (*g_strstrip (*p))
      g_ptr_array_add (paths, *p);
  g_ptr_array_add (paths, NULL);
  g_autoptr (StsimCorpus) corpus = stsim_corpus_load_lines ((const char *const *) paths->pdata, error);
  if (!corpus)
    return FALSE;
  gsize n = stsim_corpus_get_n (corpus);
  if (n == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA, "'%s' holds no sentence", spec);
    return FALSE;
  }
  g_autofree const char **texts = g_new (const char *, n);
  for (gsize i = 0; i < n; i++)
    texts[i] = stsim_corpus_get_text (corpus, i, 0);
  if (!bow_count (b, texts, n, error))
    return FALSE;
  b->fixed = TRUE;
  b->n_fixed = b->weights->len;
  return TRUE;
}

static gpointer
bow_idf_create (const StsimParams *params, StsimContext *ctx, GError **error)
{
  Bow *b = bow_create_common (params, TRUE);
  const char *spec = stsim_params_get_string (params, "idf_corpus");
  if (spec && !bow_load_idf_corpus (b, spec, error)) {
    g_prefix_error (error, "idf_corpus: ");
    bow_destroy (b);
    return NULL;
  }
  return b;
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

/* Builds the vocabulary and weights from @sentences (N = n). */
static gboolean
bow_count (Bow *b, const char *const *sentences, gsize n, GError **error)
{
  g_hash_table_remove_all (b->vocab);
  g_array_set_size (b->weights, 0);
  /* Per word: how many sentences hold it, and the last sentence that counted
   * it, so that a word repeated within a sentence counts once. */
  g_autoptr (GArray) df = g_array_new (FALSE, FALSE, sizeof (guint64));
  g_autoptr (GArray) last = g_array_new (FALSE, FALSE, sizeof (gsize));
  for (gsize i = 0; i < n; i++) {
    g_auto (GStrv) tokens = bow_tokens (b, sentences[i], error);
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
drop_task_word (gpointer key, gpointer value, gpointer limit)
{
  return GPOINTER_TO_SIZE (value) > GPOINTER_TO_SIZE (limit);
}

/* With fixed (corpus) statistics: forget the previous task's own words, then
 * give this task's unseen words exact coordinates at the unseen weight. */
static gboolean
bow_extend (Bow *b, const char *const *sentences, gsize n, GError **error)
{
  g_hash_table_foreach_remove (b->vocab, drop_task_word, GSIZE_TO_POINTER (b->n_fixed));
  g_array_set_size (b->weights, b->n_fixed);
  for (gsize i = 0; i < n; i++) {
    g_auto (GStrv) tokens = bow_tokens (b, sentences[i], error);
    if (tokens == NULL) {
      g_prefix_error (error, "prepare, sentence %" G_GSIZE_FORMAT ": ", i);
      return FALSE;
    }
    for (char **t = tokens; *t; t++)
      if (!g_hash_table_contains (b->vocab, *t)) {
        g_array_append_val (b->weights, b->oov_weight);
        g_hash_table_insert (b->vocab, g_strdup (*t), GSIZE_TO_POINTER ((gsize) b->weights->len));
      }
  }
  return TRUE;
}

static gboolean
bow_prepare (gpointer state, const char *const *sentences, gsize n, GError **error)
{
  Bow *b = state;
  return b->fixed ? bow_extend (b, sentences, n, error) : bow_count (b, sentences, n, error);
}

static gboolean
bow_encode (gpointer state, const char *const *sentences, gsize n, float *out, GError **error)
{
  Bow *b = state;
  gsize d = bow_dim (b);
  memset (out, 0, n * d * sizeof (float));
  for (gsize i = 0; i < n; i++) {
    g_auto (GStrv) tokens = bow_tokens (b, sentences[i], error);
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

static gint
cmp_u32 (gconstpointer a, gconstpointer b)
{
  guint32 x = *(const guint32 *) a, y = *(const guint32 *) b;
  return x < y ? -1 : x > y;
}

/* encode()'s row as its non-zero coordinates: the same index and weight per
 * token, sorted, each coordinate once (a repeated word, or two unseen words
 * in one bucket, is one set member there too). */
static gboolean
bow_encode_sparse (gpointer state, const char *sentence, GArray *idx, GArray *val, GError **error)
{
  Bow *b = state;
  g_auto (GStrv) tokens = bow_tokens (b, sentence, error);
  if (tokens == NULL)
    return FALSE;
  g_autoptr (GArray) mine = g_array_new (FALSE, FALSE, sizeof (guint32));
  for (char **t = tokens; *t; t++) {
    gsize v = GPOINTER_TO_SIZE (g_hash_table_lookup (b->vocab, *t));
    guint32 k = (guint32) (v > 0 ? v - 1 : b->weights->len + g_str_hash (*t) % b->oov_buckets);
    g_array_append_val (mine, k);
  }
  g_array_sort (mine, cmp_u32);
  for (guint i = 0; i < mine->len; i++) {
    guint32 k = g_array_index (mine, guint32, i);
    if (i > 0 && k == g_array_index (mine, guint32, i - 1))
      continue;
    float w = k < b->weights->len ? g_array_index (b->weights, float, k) : b->oov_weight;
    g_array_append_val (idx, k);
    g_array_append_val (val, w);
  }
  return TRUE;
}

static const StsimEncoderVTable bow_vtable = {
  .dim = bow_dim, .prepare = bow_prepare, .encode = bow_encode, .encode_sparse = bow_encode_sparse,
};

static const StsimComponentDesc bow_desc = {
  .kind = STSIM_KIND_ENCODER, .name = "bow",
  .summary = "binary bag of words: cosine = |A n B| / sqrt(|A| |B|) over distinct lowercased tokens",
  .params = bow_params, .create = bow_create, .destroy = bow_destroy, STSIM_VTABLE (bow_vtable),
};

static const StsimComponentDesc bow_idf_desc = {
  .kind = STSIM_KIND_ENCODER, .name = "bow-idf",
  .summary = "bag of words weighted by round(256 ln(N/df)), N and df from the task's sentences or from idf_corpus",
  .params = bow_idf_params, .create = bow_idf_create, .destroy = bow_destroy, STSIM_VTABLE (bow_vtable),
};

STSIM_PLUGIN_DEFINE ("bow", "0.1.0", "MIT",
                     "weight-free bag-of-words baselines for the STS evaluator", NULL,
                     &bow_desc, &bow_idf_desc)
