/* encoder-teacher.c: the `encoder-teacher` teacher: a frozen BERT/RoBERTa
 * checkpoint in eval mode that scores the step's B sentences with the cosine
 * matrix of its pooled embeddings (RankCSE's teacher, method.md §5.3).
 * README.md beside this file maps the equations to the functions.
 *
 * With `encoder = encoder.LABEL` instead of `model`, the embeddings come from
 * any encoder section of the recipe (bow-idf, a checkpoint through bert or
 * roberta, a third-party plugin): wrapped.c. This file's token-id machinery
 * below is the `model` route.
 *
 *   t_i = pool(teacher(ids_i))            eval mode, no dropout, no gradient
 *   sim[i, j] = t_i·t_j / (max(‖t_i‖, 1e-8) · max(‖t_j‖, 1e-8))
 *
 * The temperature τ2 and the α mix of several teachers belong to the
 * objective (rank-distill), which receives this raw matrix.
 *
 * TOKENS. By default (tokenize = auto) the teacher reads the student's token
 * ids, as the published code does, when both tokenizers are the same (same
 * algorithm, same vocabulary, same ids on probe sentences); otherwise it
 * tokenizes the step's texts itself with its own tokenizer and max_len.
 *
 * CACHE. The teacher is a pure function of a token sequence, so the
 * embeddings of the whole training corpus are computed once
 * (prepare_corpus) and stored in a safetensors file whose metadata holds the
 * key (corpus, checkpoint, pooler, max_len, stsim version) and a checksum of
 * the data. A step looks each row's token ids up in a hash table; a miss (a
 * sentence outside the corpus, or student ids that differ from the
 * teacher's own tokenization) is computed on the fly by the same code path,
 * so cached and uncached runs give the same numbers. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>
#include <stsim/stsim.h>
#include <stsim/stsim-model.h>
#include <stsim/stsim-safetensors.h>
#include "wrapped.h"

#define CACHE_FORMAT "encoder-teacher/1"

static const StsimParamSpec teacher_params[] = {
  { "model", STSIM_PARAM_PATH, NULL,
    .blurb = "Hugging Face folder of the teacher (config.json, model.safetensors, tokenizer files); BERT or RoBERTa, "
             "any size. Give this or encoder" },
  { "encoder", STSIM_PARAM_REFS, NULL, .choices = "encoder",
    .blurb = "label of an [encoder.*] section to use as the teacher instead of model (bow-idf, a checkpoint through "
             "bert/roberta, any encoder plugin); prepared on the training corpus, embeddings cached in memory" },
  { "pooler", STSIM_PARAM_ENUM, "cls_before_pooler", .choices = STSIM_POOLER_CHOICES,
    .blurb = "how the teacher's token states become t_i (SimCSE/DiffCSE teachers: cls_before_pooler)" },
  { "max_len", STSIM_PARAM_INT, "32", .min = 3, .max = 100000,
    .blurb = "tokens per sentence when the teacher tokenizes itself (and in the cache); match [train] max_len" },
  { "tokenize", STSIM_PARAM_ENUM, "auto", .choices = "auto|student|own",
    .blurb = "auto: the student's token ids when the vocabularies are identical, else its own tokenizer" },
  { "cache", STSIM_PARAM_BOOL, "true",
    .blurb = "embed the training corpus once and look the embeddings up during training" },
  { "cache_dir", STSIM_PARAM_PATH, NULL,
    .blurb = "folder of the cache files (default: $XDG_CACHE_HOME/stsim/teachers)" },
  { "batch", STSIM_PARAM_INT, "64", .min = 1, .max = 65536,
    .blurb = "sentences per forward pass when filling the cache" },
  { NULL }
};

typedef enum { TOK_AUTO, TOK_STUDENT, TOK_OWN } TokMode;

/* A token sequence as a hash key (points into the cache's id pool). */
typedef struct {
  const gint32 *ids;
  gint32        len;
  guint         hash;
} IdKey;

typedef struct {
  char             *path;
  gsize             n, H;
  gint32           *pool;     /* every row's ids, back to back */
  IdKey            *keys;     /* n */
  GHashTable       *index;    /* IdKey* -> row + 1 */
  float            *owned;    /* embeddings computed in this process, or */
  StsimSafetensors *file;     /* ... mapped from the cache file */
  const float      *emb;      /* [n, H] */
} TeacherCache;

typedef struct {
  char           *model_dir;
  StsimModel     *model;
  StsimTokenizer *tok;        /* the model's */
  StsimPooler     pooler;
  int             max_len;
  TokMode         mode;
  gboolean        use_cache;
  char           *cache_dir;
  int             batch;
  gsize           H;
  StsimTape      *tape;       /* eval mode, no grad: the teacher's own scratch */
  /* the tokenization decision, made once per student tokenizer */
  StsimTokenizer *checked;
  gboolean        student_ids;
  TeacherCache   *cache;
  guint64         n_steps, hits, lookups;
  gboolean        warned_hits;
  WrappedTeacher *wrapped;    /* the encoder route, or NULL */
} EncoderTeacher;

/* ---- small helpers ------------------------------------------------------------ */

static guint
ids_hash (const gint32 *ids, gint32 len)
{
  /* FNV-1a over the bytes of the ids. */
  guint32 h = 2166136261u;
  const guint8 *p = (const guint8 *) ids;
  for (gsize i = 0; i < (gsize) len * sizeof (gint32); i++)
    h = (h ^ p[i]) * 16777619u;
  return h ^ (guint32) len;
}

static guint
id_key_hash (gconstpointer k)
{
  return ((const IdKey *) k)->hash;
}

static gboolean
id_key_equal (gconstpointer a, gconstpointer b)
{
  const IdKey *x = a, *y = b;
  return x->len == y->len && memcmp (x->ids, y->ids, (gsize) x->len * sizeof (gint32)) == 0;
}

static void
cache_free (TeacherCache *c)
{
  if (!c)
    return;
  if (c->index)
    g_hash_table_unref (c->index);
  g_free (c->keys);
  g_free (c->pool);
  g_free (c->owned);
  stsim_safetensors_free (c->file);
  g_free (c->path);
  g_free (c);
}

/* sha256 of a file's bytes (mapped, so a large checkpoint is not copied). */
static gboolean
checksum_file (GChecksum *sum, const char *path, GError **error)
{
  GError *local = NULL;
  /* Mapping a FIFO blocks and a device never ends: only regular files. */
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot read %s: not a regular file", path);
    return FALSE;
  }
  g_autoptr(GMappedFile) mf = g_mapped_file_new (path, FALSE, &local);
  if (!mf) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot read %s: %s", path, local->message);
    g_error_free (local);
    return FALSE;
  }
  gsize len = g_mapped_file_get_length (mf);
  const guchar *data = (const guchar *) g_mapped_file_get_contents (mf);
  /* g_checksum_update takes a gssize: feed large files in pieces. */
  for (gsize off = 0; off < len; off += 1u << 30)
    g_checksum_update (sum, data + off, (gssize) MIN (len - off, (gsize) 1u << 30));
  return TRUE;
}

/* The checkpoint's identity: weights, config and tokenizer files. */
static char *
checkpoint_sha256 (const char *dir, GError **error)
{
  static const char *const files[] = { "config.json", "model.safetensors", "vocab.txt", "vocab.json",
                                       "merges.txt", "tokenizer_config.json", NULL };
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  for (gsize i = 0; files[i]; i++) {
    g_autofree char *path = g_build_filename (dir, files[i], NULL);
    if (!g_file_test (path, G_FILE_TEST_EXISTS))
      continue;
    /* The name too, so that moving bytes between files changes the hash. */
    g_checksum_update (sum, (const guchar *) files[i], (gssize) strlen (files[i]) + 1);
    if (!checksum_file (sum, path, error))
      return NULL;
  }
  return g_strdup (g_checksum_get_string (sum));
}

/* ---- create / destroy ------------------------------------------------------------ */

static void
teacher_destroy (gpointer state)
{
  EncoderTeacher *t = state;
  if (!t)
    return;
  wrapped_teacher_free (t->wrapped);
  cache_free (t->cache);
  if (t->tape)
    stsim_tape_free (t->tape);
  stsim_model_free (t->model);
  g_free (t->model_dir);
  g_free (t->cache_dir);
  g_free (t);
}

/* The encoder route: only `encoder` and `cache` apply; the checkpoint keys
 * would be silently ignored, so they are refused. */
static gpointer
teacher_create_wrapped (const StsimParams *params, StsimContext *ctx, GError **error)
{
  static const char *const model_only[] = { "model", "pooler", "max_len", "tokenize", "cache_dir", "batch", NULL };
  const char *label = stsim_params_get_refs (params, "encoder", NULL)[0];
  for (gsize i = 0; model_only[i]; i++)
    if (!stsim_params_is_default (params, model_only[i])) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                   "%s: applies to a checkpoint teacher (model = FOLDER), not to encoder = %s; set it in [%s] "
                   "instead, or remove it", model_only[i], label, label);
      return NULL;
    }
  if (stsim_params_get_refs (params, "encoder", NULL)[1]) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                 "encoder: one teacher wraps one encoder; mix several teachers in rank-distill's teachers = ...");
    return NULL;
  }
  WrappedTeacher *w = wrapped_teacher_new (ctx, label, stsim_params_get_bool (params, "cache"), error);
  if (!w)
    return NULL;
  EncoderTeacher *t = g_new0 (EncoderTeacher, 1);
  t->wrapped = w;
  return t;
}

static gpointer
teacher_create (const StsimParams *params, StsimContext *ctx, GError **error)
{
  g_autoptr(GError) local = NULL;
  const char *dir = stsim_params_get_string (params, "model");
  if (stsim_params_get_refs (params, "encoder", NULL))
    return teacher_create_wrapped (params, ctx, error);
  if (!dir) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                 "the teacher needs model = FOLDER (a checkpoint) or encoder = encoder.LABEL (any encoder section)");
    return NULL;
  }
  const char *pooler = stsim_params_get_string (params, "pooler");
  const char *mode = stsim_params_get_string (params, "tokenize");
  EncoderTeacher *t = g_new0 (EncoderTeacher, 1);

  t->model_dir = g_canonicalize_filename (dir, NULL);
  if (!stsim_pooler_from_name (pooler, &t->pooler)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "pooler: unknown value '%s' (%s)", pooler,
                 STSIM_POOLER_CHOICES);
    goto fail;
  }
  t->mode = g_str_equal (mode, "student") ? TOK_STUDENT : g_str_equal (mode, "own") ? TOK_OWN : TOK_AUTO;
  t->max_len = (int) stsim_params_get_int (params, "max_len");
  t->use_cache = stsim_params_get_bool (params, "cache");
  t->batch = (int) stsim_params_get_int (params, "batch");
  const char *cdir = stsim_params_get_string (params, "cache_dir");
  t->cache_dir = cdir ? g_strdup (cdir) : g_build_filename (g_get_user_cache_dir (), "stsim", "teachers", NULL);

  if (!g_file_test (t->model_dir, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND,
                 "model: teacher folder %s does not exist (expected config.json, model.safetensors and tokenizer "
                 "files of a trained checkpoint)", t->model_dir);
    goto fail;
  }
  guint flags = STSIM_MODEL_FROZEN | (t->pooler == STSIM_POOL_CLS ? STSIM_MODEL_POOLER : 0);
  guint64 seed = ctx ? stsim_context_get_seed (ctx) : 42;
  if (!(t->model = stsim_model_load (t->model_dir, flags, seed, &local))) {
    g_set_error (error, STSIM_ERROR, local->domain == STSIM_ERROR ? local->code : STSIM_ERROR_FAILED,
                 "model: %s", local->message);
    goto fail;
  }
  if ((stsim_model_get_initialized (t->model) & STSIM_MODEL_POOLER) != 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "pooler = cls: %s has no pooler.dense weights, and a randomly initialised pooler would make the "
                 "teacher's rankings noise; use pooler = cls_before_pooler (SimCSE and DiffCSE teachers)",
                 t->model_dir);
    goto fail;
  }
  if (!(t->tok = stsim_model_get_tokenizer (t->model))) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND,
                 "model: %s has no tokenizer files (vocab.txt, or vocab.json and merges.txt)", t->model_dir);
    goto fail;
  }
  const StsimModelConfig *cfg = stsim_model_get_config (t->model);
  int positions = cfg->max_position_embeddings - (cfg->arch == STSIM_ARCH_ROBERTA ? cfg->pad_token_id + 1 : 0);
  if (positions > 0 && t->max_len > positions) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "max_len = %d exceeds the %d positions of %s", t->max_len,
                 positions, t->model_dir);
    goto fail;
  }
  t->H = stsim_model_get_dim (t->model);
  t->tape = stsim_tape_new (seed, 0);
  stsim_tape_set_training (t->tape, FALSE);
  stsim_tape_set_grad_enabled (t->tape, FALSE);
  return t;

fail:
  teacher_destroy (t);
  return NULL;
}

/* ---- the forward pass ---------------------------------------------------------- */

/* Eval-mode pooled embeddings of @n token sequences into out[n, H], in
 * chunks of t->batch. Both the cache and the per-step misses go through
 * here, so the two give the same numbers. */
static gboolean
embed_rows (EncoderTeacher *t, const IdKey *rows, gsize n, float *out, GError **error)
{
  const gint32 pad = stsim_tokenizer_pad_id (t->tok);
  const gint32 vocab = stsim_model_get_config (t->model)->vocab_size;
  for (gsize s = 0; s < n; s += (gsize) t->batch) {
    gsize count = MIN ((gsize) t->batch, n - s);
    gsize width = 1;
    for (gsize k = 0; k < count; k++)
      width = MAX (width, (gsize) rows[s + k].len);
    g_autofree gint32 *ids = g_new (gint32, count * width);
    g_autofree gint32 *mask = g_new0 (gint32, count * width);
    g_autofree gint32 *lengths = g_new (gint32, count);
    for (gsize k = 0; k < count; k++) {
      const IdKey *r = &rows[s + k];
      if (r->len < 1) {
        g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "teacher: an empty token sequence");
        return FALSE;
      }
      for (gsize j = 0; j < width; j++) {
        gboolean real = j < (gsize) r->len;
        gint32 id = real ? r->ids[j] : pad;
        if (id < 0 || id >= vocab) {
          g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                       "teacher %s: token id %d is outside its vocabulary of %d; the student's tokenizer differs "
                       "from the teacher's: set tokenize = own", t->model_dir, id, vocab);
          return FALSE;
        }
        ids[k * width + j] = id;
        mask[k * width + j] = real;
      }
      lengths[k] = r->len;
    }
    StsimTokenBatch batch = { .n = count, .width = width, .ids = ids, .mask = mask, .lengths = lengths };
    StsimForwardOptions fo = { .packed = TRUE };
    StsimModelOutput mo;
    stsim_tape_reset (t->tape);
    if (!stsim_model_forward (t->model, t->tape, &batch, &fo, &mo, error)) {
      g_prefix_error (error, "teacher %s: ", t->model_dir);
      return FALSE;
    }
    StsimTensor *p = stsim_model_pool (t->model, t->tape, &mo, t->pooler);
    if (!p || stsim_tensor_rows (p) != (gint64) count || stsim_tensor_cols (p) != (gint64) t->H) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "teacher %s: pooling (%s) failed", t->model_dir,
                   stsim_pooler_name (t->pooler));
      return FALSE;
    }
    memcpy (out + s * t->H, p->data, count * t->H * sizeof (float));
  }
  stsim_tape_reset (t->tape);
  return TRUE;
}

/* sim[i, j] = cos(t_i, t_j), each norm floored at 1e-8 (PyTorch's
 * cosine_similarity), accumulated in double: the matrix is exactly
 * symmetric and its value depends only on the embeddings. */
static void
cosine_matrix (const float *emb, gsize B, gsize H, float *sim)
{
  g_autofree double *inv = g_new (double, B);
  for (gsize i = 0; i < B; i++) {
    double s = 0;
    for (gsize k = 0; k < H; k++)
      s += (double) emb[i * H + k] * emb[i * H + k];
    inv[i] = 1.0 / MAX (sqrt (s), 1e-8);
  }
  for (gsize i = 0; i < B; i++)
    for (gsize j = i; j < B; j++) {
      double d = 0;
      for (gsize k = 0; k < H; k++)
        d += (double) emb[i * H + k] * emb[j * H + k];
      sim[i * B + j] = sim[j * B + i] = (float) (d * inv[i] * inv[j]);
    }
}

/* ---- tokenization ---------------------------------------------------------------- */

/* TRUE when @a and @b turn every text into the same ids: same algorithm,
 * same vocabulary (every token string), and the same ids on probes that
 * tell lowercasing, accent stripping and byte-level handling apart. */
static gboolean
same_tokenizer (StsimTokenizer *a, StsimTokenizer *b)
{
  static const char *const probes[] = {
    "The Quick brown FOX jumps over 12 lazy dogs.", "Café naïve ÉCOLE résumé", "don't stop -- it's 3.14!",
    "  spaced\tout  text ", "中文 日本語 한국어 emoji \xF0\x9F\x99\x82", NULL
  };
  if (a == b)
    return TRUE;
  if (stsim_tokenizer_get_kind (a) != stsim_tokenizer_get_kind (b) ||
      stsim_tokenizer_vocab_size (a) != stsim_tokenizer_vocab_size (b))
    return FALSE;
  for (gint32 id = 0; id < stsim_tokenizer_vocab_size (a); id++)
    if (g_strcmp0 (stsim_tokenizer_id_to_token (a, id), stsim_tokenizer_id_to_token (b, id)) != 0)
      return FALSE;
  for (gsize i = 0; probes[i]; i++) {
    g_autoptr(GArray) x = g_array_new (FALSE, FALSE, sizeof (gint32));
    g_autoptr(GArray) y = g_array_new (FALSE, FALSE, sizeof (gint32));
    gboolean okx = stsim_tokenizer_encode (a, probes[i], -1, 0, x, NULL);
    gboolean oky = stsim_tokenizer_encode (b, probes[i], -1, 0, y, NULL);
    if (okx != oky || x->len != y->len || memcmp (x->data, y->data, x->len * sizeof (gint32)) != 0)
      return FALSE;
  }
  return TRUE;
}

/* Decides, for the step's student tokenizer, whether the teacher reads the
 * student's ids. */
static gboolean
resolve_tokenization (EncoderTeacher *t, StsimTrainStep *step, GError **error)
{
  StsimTokenizer *student = stsim_train_step_get_tokenizer (step);
  const StsimTokenBatch *batch = stsim_train_step_get_batch (step);
  gboolean have_ids = student != NULL && batch != NULL && batch->ids != NULL &&
                      batch->n >= stsim_train_step_get_n_sentences (step);
  if (t->mode == TOK_OWN) {
    t->student_ids = FALSE;
    return TRUE;
  }
  if (!have_ids) {
    if (t->mode == TOK_STUDENT) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                   "teacher %s: tokenize = student, but this step has no student token ids; use tokenize = auto or own",
                   t->model_dir);
      return FALSE;
    }
    t->student_ids = FALSE;
    return TRUE;
  }
  if (student == t->checked)
    return TRUE;
  gboolean same = same_tokenizer (student, t->tok);
  if (t->mode == TOK_STUDENT && !same) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "teacher %s: tokenize = student, but the student's tokenizer (%s, %d tokens) differs from the "
                 "teacher's (%s, %d tokens): its ids would mean other words; use tokenize = auto or own",
                 t->model_dir, stsim_tokenizer_get_kind (student) == STSIM_TOKENIZER_BPE ? "BPE" : "WordPiece",
                 stsim_tokenizer_vocab_size (student),
                 stsim_tokenizer_get_kind (t->tok) == STSIM_TOKENIZER_BPE ? "BPE" : "WordPiece",
                 stsim_tokenizer_vocab_size (t->tok));
    return FALSE;
  }
  t->checked = student;
  t->student_ids = same;
  return TRUE;
}

/* ---- the cache ------------------------------------------------------------------- */

typedef struct {
  const char *name;
  char       *value;
} KeyField;

typedef struct {
  KeyField fields[7];
} CacheKey;

static void
cache_key_clear (CacheKey *k)
{
  for (gsize i = 0; i < G_N_ELEMENTS (k->fields); i++)
    g_free (k->fields[i].value);
}

static gboolean
cache_key_init (EncoderTeacher *t, const char *const *texts, gsize n, CacheKey *key, GError **error)
{
  memset (key, 0, sizeof *key);
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  for (gsize i = 0; i < n; i++)
    g_checksum_update (sum, (const guchar *) texts[i], (gssize) strlen (texts[i]) + 1);  /* NUL separates */
  char *ck = checkpoint_sha256 (t->model_dir, error);
  if (!ck)
    return FALSE;
  key->fields[0] = (KeyField) { "format", g_strdup (CACHE_FORMAT) };
  key->fields[1] = (KeyField) { "stsim_version", g_strdup (STSIM_VERSION_STRING) };
  key->fields[2] = (KeyField) { "corpus_sha256", g_strdup (g_checksum_get_string (sum)) };
  key->fields[3] = (KeyField) { "corpus_n", g_strdup_printf ("%" G_GSIZE_FORMAT, n) };
  key->fields[4] = (KeyField) { "checkpoint_sha256", ck };
  key->fields[5] = (KeyField) { "pooler", g_strdup (stsim_pooler_name (t->pooler)) };
  key->fields[6] = (KeyField) { "max_len", g_strdup_printf ("%d", t->max_len) };
  return TRUE;
}

/* The cache file of this teacher: one per checkpoint folder, pooler and
 * max_len, so that a changed checkpoint or corpus is found (and replaced)
 * rather than piling up files. */
static char *
cache_path (EncoderTeacher *t)
{
  g_autofree char *id = g_strdup_printf ("%s\n%s\n%d", t->model_dir, stsim_pooler_name (t->pooler), t->max_len);
  g_autofree char *h = g_compute_checksum_for_string (G_CHECKSUM_SHA256, id, -1);
  g_autofree char *base = g_path_get_basename (t->model_dir);
  for (char *p = base; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != '.')
      *p = '_';
  g_autofree char *name = g_strdup_printf ("%s-%.16s.safetensors", base, h);
  return g_build_filename (t->cache_dir, name, NULL);
}

static char *
data_sha256 (const float *emb, gsize numel)
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  const guchar *p = (const guchar *) emb;
  gsize len = numel * sizeof (float);
  for (gsize off = 0; off < len; off += 1u << 30)
    g_checksum_update (sum, p + off, (gssize) MIN (len - off, (gsize) 1u << 30));
  return g_strdup (g_checksum_get_string (sum));
}

/* Opens @path and checks it against @key. Returns the mapped file, or NULL
 * with *why set to a sentence saying what is wrong. */
static StsimSafetensors *
cache_try_load (EncoderTeacher *t, const char *path, const CacheKey *key, gsize n, char **why)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(StsimSafetensors) st = stsim_safetensors_open (path, &local);
  if (!st) {
    *why = g_strdup_printf ("it is unreadable (%s)", local->message);
    return NULL;
  }
  for (gsize i = 0; i < G_N_ELEMENTS (key->fields); i++) {
    const char *have = stsim_safetensors_get_metadata (st, key->fields[i].name);
    if (g_strcmp0 (have, key->fields[i].value) != 0) {
      *why = g_strdup_printf ("it is stale: %s is %s in the file but %s now", key->fields[i].name,
                              have ? have : "(missing)", key->fields[i].value);
      return NULL;
    }
  }
  const StsimTensorInfo *info = stsim_safetensors_get_info (st, "embeddings");
  if (!info || info->dtype != STSIM_DTYPE_F32 || info->n_dims != 2 || (guint64) info->shape[0] != n ||
      (guint64) info->shape[1] != t->H) {
    *why = g_strdup_printf ("its 'embeddings' tensor is missing or not F32 [%" G_GSIZE_FORMAT ", %" G_GSIZE_FORMAT "]",
                            n, t->H);
    return NULL;
  }
  gsize nbytes = 0;
  const float *emb = stsim_safetensors_get_data (st, "embeddings", &nbytes, &local);
  if (!emb || nbytes != n * t->H * sizeof (float) || ((guintptr) emb % sizeof (float)) != 0) {
    *why = g_strdup ("its data cannot be mapped");
    return NULL;
  }
  g_autofree char *sha = data_sha256 (emb, n * t->H);
  if (g_strcmp0 (sha, stsim_safetensors_get_metadata (st, "data_sha256")) != 0) {
    *why = g_strdup ("it is corrupt: the embeddings do not match their recorded sha256");
    return NULL;
  }
  return g_steal_pointer (&st);
}

static gint
by_len_desc (gconstpointer a, gconstpointer b, gpointer data)
{
  const IdKey *keys = data;
  gint32 la = keys[*(const gint32 *) a].len, lb = keys[*(const gint32 *) b].len;
  return la != lb ? (la > lb ? -1 : 1) : (*(const gint32 *) a - *(const gint32 *) b);
}

static gboolean
cache_build (EncoderTeacher *t, TeacherCache *c, GError **error)
{
  c->owned = g_new (float, c->n * t->H);
  /* Longest first: the teacher's arena reaches its size on the first batch,
   * and similar lengths share a batch. */
  g_autofree gint32 *order = g_new (gint32, c->n);
  for (gsize i = 0; i < c->n; i++)
    order[i] = (gint32) i;
  g_qsort_with_data (order, (gint) c->n, sizeof (gint32), by_len_desc, c->keys);
  gsize chunk = (gsize) t->batch * 16;
  g_autofree IdKey *rows = g_new (IdKey, MIN (chunk, c->n));
  g_autofree float *out = g_new (float, MIN (chunk, c->n) * t->H);
  gint64 t0 = g_get_monotonic_time (), last = t0;
  for (gsize s = 0; s < c->n; s += chunk) {
    gsize count = MIN (chunk, c->n - s);
    for (gsize k = 0; k < count; k++)
      rows[k] = c->keys[order[s + k]];
    if (!embed_rows (t, rows, count, out, error))
      return FALSE;
    for (gsize k = 0; k < count; k++)
      memcpy (c->owned + (gsize) order[s + k] * t->H, out + k * t->H, t->H * sizeof (float));
    gint64 now = g_get_monotonic_time ();
    if (now - last > 10 * G_USEC_PER_SEC) {
      double done = (double) (s + count) / c->n, secs = (now - t0) / 1e6;
      g_printerr ("encoder-teacher: embedding the corpus: %" G_GSIZE_FORMAT "/%" G_GSIZE_FORMAT
                  " (%.0f%%, %.0f s left)\n", s + count, c->n, 100 * done, secs / done - secs);
      last = now;
    }
  }
  c->emb = c->owned;
  return TRUE;
}

static gboolean
cache_write (EncoderTeacher *t, TeacherCache *c, const CacheKey *key, GError **error)
{
  if (g_mkdir_with_parents (t->cache_dir, 0755) != 0) {
    int e = errno;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot create the cache folder %s: %s", t->cache_dir,
                 g_strerror (e));
    return FALSE;
  }
  g_autoptr(StsimSafetensorsWriter) w = stsim_safetensors_writer_new ();
  const gint64 shape[2] = { (gint64) c->n, (gint64) t->H };
  g_autofree char *sha = data_sha256 (c->owned, c->n * t->H);
  if (!stsim_safetensors_writer_add_f32 (w, "embeddings", shape, 2, c->owned, error))
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (key->fields); i++)
    if (!stsim_safetensors_writer_set_metadata (w, key->fields[i].name, key->fields[i].value, error))
      return FALSE;
  if (!stsim_safetensors_writer_set_metadata (w, "data_sha256", sha, error) ||
      !stsim_safetensors_writer_set_metadata (w, "checkpoint", t->model_dir, error))
    return FALSE;
  return stsim_safetensors_writer_write (w, c->path, error);
}

/* The teacher's own tokenization of every sentence into @c: the lookup keys and their index. */
static gboolean
cache_index (EncoderTeacher *t, TeacherCache *c, const char *const *texts, gsize n, GError **error)
{
  g_autoptr(GArray) pool = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autofree gsize *start = g_new (gsize, n);
  c->keys = g_new (IdKey, n);
  for (gsize i = 0; i < n; i++) {
    g_autoptr(GError) local = NULL;
    start[i] = pool->len;
    if (!stsim_tokenizer_encode (t->tok, texts[i], -1, t->max_len, pool, &local)) {
      g_set_error (error, STSIM_ERROR, local->domain == STSIM_ERROR ? local->code : STSIM_ERROR_FAILED,
                   "teacher cache: sentence %" G_GSIZE_FORMAT ": %s", i + 1, local->message);
      return FALSE;
    }
    c->keys[i].len = (gint32) (pool->len - start[i]);
  }
  c->pool = (gint32 *) g_array_steal (pool, NULL);
  c->index = g_hash_table_new (id_key_hash, id_key_equal);
  for (gsize i = 0; i < n; i++) {
    c->keys[i].ids = c->pool + start[i];
    c->keys[i].hash = ids_hash (c->keys[i].ids, c->keys[i].len);
    if (!g_hash_table_contains (c->index, &c->keys[i]))
      g_hash_table_insert (c->index, &c->keys[i], GSIZE_TO_POINTER (i + 1));
  }
  return TRUE;
}

/* The embeddings of @c's sentences: from its cache file when that matches
 * @key, else computed now and written to the file (in memory only if that fails). */
static gboolean
cache_fill (EncoderTeacher *t, TeacherCache *c, const CacheKey *key, GError **error)
{
  g_autofree char *why = NULL;
  if (g_file_test (c->path, G_FILE_TEST_EXISTS)) {
    c->file = cache_try_load (t, c->path, key, c->n, &why);
    if (c->file) {
      c->emb = stsim_safetensors_get_data (c->file, "embeddings", NULL, NULL);
      g_printerr ("encoder-teacher: %s: using the cached embeddings of %" G_GSIZE_FORMAT " sentences (%s)\n",
                  t->model_dir, c->n, c->path);
      return TRUE;
    }
    g_printerr ("encoder-teacher: cache %s: %s; rebuilding it\n", c->path, why);
  }
  gint64 t0 = g_get_monotonic_time ();
  g_printerr ("encoder-teacher: %s: embedding %" G_GSIZE_FORMAT " sentences once for the cache\n", t->model_dir,
              c->n);
  if (!cache_build (t, c, error))
    return FALSE;
  g_autoptr(GError) werr = NULL;
  if (cache_write (t, c, key, &werr))
    g_printerr ("encoder-teacher: cached in %.1f s: %s\n", (g_get_monotonic_time () - t0) / 1e6, c->path);
  else  /* training is still exact with the in-memory copy */
    g_printerr ("encoder-teacher: warning: could not write the cache (%s); keeping it in memory only\n",
                werr->message);
  return TRUE;
}

static gboolean
teacher_prepare_corpus (gpointer state, const char *const *texts, gsize n, GError **error)
{
  EncoderTeacher *t = state;
  g_return_val_if_fail (t != NULL && (texts != NULL || n == 0), FALSE);
  if (t->wrapped)
    return wrapped_teacher_prepare_corpus (t->wrapped, texts, n, error);
  if (!t->use_cache || n == 0)
    return TRUE;
  if (n > G_MAXINT32) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "teacher cache: %" G_GSIZE_FORMAT " sentences is too many",
                 n);
    return FALSE;
  }
  cache_free (g_steal_pointer (&t->cache));
  TeacherCache *c = g_new0 (TeacherCache, 1);
  c->n = n;
  c->H = t->H;
  c->path = cache_path (t);
  CacheKey key;
  if (!cache_key_init (t, texts, n, &key, error)) {
    cache_free (c);
    return FALSE;
  }
  gboolean ok = cache_index (t, c, texts, n, error) && cache_fill (t, c, &key, error);
  cache_key_clear (&key);
  if (!ok) {
    cache_free (c);
    return FALSE;
  }
  t->cache = c;
  return TRUE;
}

/* ---- similarity -------------------------------------------------------------------- */

static gboolean
teacher_similarity (gpointer state, StsimTrainStep *step, float *sim, GError **error)
{
  EncoderTeacher *t = state;
  g_return_val_if_fail (t != NULL && step != NULL && sim != NULL, FALSE);
  if (t->wrapped)
    return wrapped_teacher_similarity (t->wrapped, step, sim, error);
  const gsize B = stsim_train_step_get_n_sentences (step);
  if (!resolve_tokenization (t, step, error))
    return FALSE;

  /* Each sentence's token sequence: the student's view-0 row, or our own. */
  g_autofree IdKey *rows = g_new0 (IdKey, B);
  g_autoptr(GArray) own = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autofree gsize *start = g_new (gsize, B);
  if (t->student_ids) {
    const StsimTokenBatch *b = stsim_train_step_get_batch (step);
    for (gsize i = 0; i < B; i++) {
      rows[i].ids = b->ids + i * b->width;
      rows[i].len = b->lengths[i];
    }
  } else {
    for (gsize i = 0; i < B; i++) {
      const char *text = stsim_train_step_get_text (step, i, 0);
      g_autoptr(GError) local = NULL;
      start[i] = own->len;
      if (!text || !stsim_tokenizer_encode (t->tok, text, -1, t->max_len, own, &local)) {
        g_set_error (error, STSIM_ERROR, local && local->domain == STSIM_ERROR ? local->code : STSIM_ERROR_INVALID,
                     "teacher %s: sentence %" G_GSIZE_FORMAT " of the step: %s", t->model_dir, i,
                     local ? local->message : "no text (the step has no row texts)");
        return FALSE;
      }
      rows[i].len = (gint32) (own->len - start[i]);
    }
    for (gsize i = 0; i < B; i++)
      rows[i].ids = (const gint32 *) own->data + start[i];
  }

  g_autofree float *emb = g_new (float, B * t->H);
  g_autofree IdKey *miss = g_new (IdKey, B);
  g_autofree gsize *miss_at = g_new (gsize, B);
  gsize n_miss = 0;
  for (gsize i = 0; i < B; i++) {
    gsize row = 0;
    if (t->cache) {
      rows[i].hash = ids_hash (rows[i].ids, rows[i].len);
      row = GPOINTER_TO_SIZE (g_hash_table_lookup (t->cache->index, &rows[i]));
    }
    if (row) {
      memcpy (emb + i * t->H, t->cache->emb + (row - 1) * t->H, t->H * sizeof (float));
    } else {
      miss[n_miss] = rows[i];
      miss_at[n_miss++] = i;
    }
  }
  if (n_miss > 0) {
    g_autofree float *out = g_new (float, n_miss * t->H);
    if (!embed_rows (t, miss, n_miss, out, error))
      return FALSE;
    for (gsize k = 0; k < n_miss; k++)
      memcpy (emb + miss_at[k] * t->H, out + k * t->H, t->H * sizeof (float));
  }
  cosine_matrix (emb, B, t->H, sim);

  if (t->cache) {
    stsim_train_step_log (step, "teacher_cache_hit_rate", (double) (B - n_miss) / B);
    t->n_steps++;
    t->lookups += B;
    t->hits += B - n_miss;
    /* Misses are exact but cost a forward pass: say so when they dominate. */
    if (!t->warned_hits && t->n_steps == 20 && t->hits * 2 < t->lookups) {
      g_printerr ("encoder-teacher: warning: only %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                  " sentences were in the cache of %s%s\n", t->hits, t->lookups, t->model_dir,
                  t->student_ids ? "; the student's ids differ from the teacher's own tokenization "
                                   "(set the teacher's max_len to [train] max_len)" : "");
      t->warned_hits = TRUE;
    }
  }
  return TRUE;
}

static const StsimTeacherVTable teacher_vtable = {
  .similarity = teacher_similarity,
  .prepare_corpus = teacher_prepare_corpus,
};

static const StsimComponentDesc teacher_desc = {
  .kind = STSIM_KIND_TEACHER, .name = "encoder-teacher",
  .summary = "frozen checkpoint or any encoder section scoring in-batch pairs by cosine (RankCSE teacher), with a "
             "corpus cache",
  .params = teacher_params, .create = teacher_create, .destroy = teacher_destroy,
  STSIM_VTABLE (teacher_vtable),
};

STSIM_PLUGIN_DEFINE ("encoder-teacher", "0.1.0", "MIT",
                     "Frozen encoder teachers for ranking distillation (RankCSE)",
                     "@inproceedings{liu2023rankcse,\n"
                     "  title = {{RankCSE}: Unsupervised Sentence Representations Learning via Learning to Rank},\n"
                     "  author = {Liu, Jiduan and Liu, Jiahao and Wang, Qifan and Wang, Jingang and Wu, Wei and "
                     "Xian, Yunsen and Zhao, Dongyan and Chen, Kai and Yan, Rui},\n"
                     "  booktitle = {ACL},\n  year = {2023}\n}\n",
                     &teacher_desc)
