/* test-wrapped-teacher: `encoder-teacher` over an encoder section
 * (encoder = encoder.LABEL), with bow-idf as the wrapped encoder.
 *
 * - The teacher's matrix equals the bow-idf cosine computed here from its
 *   definition (distinct lowercased words, ASCII punctuation split off,
 *   W = floor(256 ln(N / df) + 0.5) over the corpus given to
 *   prepare_corpus), independently of the plugin's code.
 * - A cached (sparse) teacher and an uncached (dense encode per step) one
 *   give bit-identical matrices, for corpus sentences and for a sentence
 *   outside the corpus (a cache miss).
 * - bow-idf's encode_sparse equals its dense encode, coordinate for
 *   coordinate.
 * - `idf_corpus` takes N and df from files; a pattern that matches nothing,
 *   a checkpoint key on an encoder teacher, both or neither of model and
 *   encoder: clear errors naming the key. */
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>
#include <stsim/stsim.h>
#include <stsim/stsim-model.h>
#include <stsim/stsim-registry.h>
#include "test-util.h"

static StsimRegistry *reg;

static const char *const corpus[] = {
  "The man is playing a guitar.", "A woman slices an onion, slowly.", "The dog runs (fast) in the park!",
  "A man plays the flute.", "Children play in the park.", "The woman is cooking onions.",
  "A dog is running.", "Guitar music: the man plays it.", "An onion is sliced by a woman.",
  "The park is empty.", "A man is playing.", "Dogs and children run in the park.", NULL
};

/* ---- the reference, from the definition ------------------------------------ */

static GPtrArray *
ref_words (const char *s)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  GString *w = g_string_new (NULL);
  for (const char *p = s;; p++) {
    gboolean punct = *p && g_ascii_ispunct (*p);
    if (!*p || g_ascii_isspace (*p) || punct) {
      if (w->len)
        g_ptr_array_add (out, g_ascii_strdown (w->str, -1));
      g_string_truncate (w, 0);
      if (punct)
        g_ptr_array_add (out, g_strndup (p, 1));
      if (!*p)
        break;
    } else
      g_string_append_c (w, *p);
  }
  g_string_free (w, TRUE);
  return out;
}

static gboolean
ref_has (GPtrArray *words, const char *w)
{
  for (guint i = 0; i < words->len; i++)
    if (strcmp (g_ptr_array_index (words, i), w) == 0)
      return TRUE;
  return FALSE;
}

static double
ref_weight (const char *w, gsize N)
{
  gsize df = 0;
  for (gsize i = 0; i < N; i++) {
    g_autoptr (GPtrArray) ws = ref_words (corpus[i]);
    df += ref_has (ws, w);
  }
  g_assert_cmpuint (df, >, 0);  /* the reference covers corpus words only */
  return floor (256.0 * log ((double) N / (double) df) + 0.5);
}

/* Distinct-word dot products of @a and @b over the corpus' IDF. */
static double
ref_cos (const char *a, const char *b, gsize N)
{
  g_autoptr (GPtrArray) wa = ref_words (a);
  g_autoptr (GPtrArray) wb = ref_words (b);
  double aa = 0, bb = 0, ab = 0;
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < wa->len; i++)
    if (g_hash_table_add (seen, g_ptr_array_index (wa, i))) {
      double w = ref_weight (g_ptr_array_index (wa, i), N);
      aa += w * w;
      if (ref_has (wb, g_ptr_array_index (wa, i)))
        ab += w * w;
    }
  g_hash_table_remove_all (seen);
  for (guint i = 0; i < wb->len; i++)
    if (g_hash_table_add (seen, g_ptr_array_index (wb, i))) {
      double w = ref_weight (g_ptr_array_index (wb, i), N);
      bb += w * w;
    }
  return ab / (MAX (sqrt (aa), 1e-8) * MAX (sqrt (bb), 1e-8));
}

/* ---- building the pieces ------------------------------------------------------ */

static StsimComponent *
add_bow_idf (StsimContext *ctx, const char *idf_corpus, GError **error)
{
  StsimComponent *e = idf_corpus
    ? stsim_component_new_simple (reg, STSIM_KIND_ENCODER, "bow-idf", "encoder.bowidf", ctx, error, "tokenize",
                                  "words", "idf_corpus", idf_corpus, NULL)
    : stsim_component_new_simple (reg, STSIM_KIND_ENCODER, "bow-idf", "encoder.bowidf", ctx, error, "tokenize",
                                  "words", NULL);
  if (e && !stsim_context_add (ctx, e, error))
    return NULL;
  return e;
}

static StsimComponent *
make_teacher (StsimContext *ctx, const char **kv, GError **error)
{
  const StsimRegistryEntry *e = stsim_registry_lookup (reg, STSIM_KIND_TEACHER, "encoder-teacher");
  g_assert_nonnull (e);
  g_autoptr (StsimParams) p = stsim_params_new (e->desc->params);
  for (gsize i = 0; kv && kv[i]; i += 2)
    if (!stsim_params_set (p, kv[i], kv[i + 1], error))
      return NULL;
  if (!stsim_params_finish (p, error))
    return NULL;
  return stsim_component_new (e->desc, "teacher.t", g_steal_pointer (&p), ctx, error);
}

/* The teacher's [B, B] matrix for @texts through a detached step (the tiny
 * BERT only tokenizes the rows; the teacher reads their texts). */
static float *
similarity (StsimComponent *t, const char *const *texts, gsize B, double *hit_rate)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "fixtures", "models", "bert-tiny", NULL);
  g_autoptr (StsimModel) m = stsim_model_load (dir, STSIM_MODEL_FROZEN, 1, &err);
  g_assert_no_error (err);
  g_autoptr (StsimTape) tape = stsim_tape_new (1, 0);
  g_autoptr (StsimTrainStep) step = stsim_train_step_new_detached (tape, B, 2, 1, 0);
  g_autofree const char **rows = g_new (const char *, 2 * B);
  for (gsize i = 0; i < B; i++)
    rows[i] = rows[B + i] = texts[i];
  g_assert_true (stsim_train_step_set_model (step, m, rows, 32, &err));
  float *sim = g_new (float, B * B);
  g_assert_true (stsim_teacher_similarity (t, step, sim, &err));
  g_assert_no_error (err);
  if (hit_rate)
    *hit_rate = stsim_train_step_get_logged (step, "teacher_cache_hit_rate");
  return sim;
}

static StsimComponent *
prepared_teacher (StsimContext *ctx, gboolean cache)
{
  g_autoptr (GError) err = NULL;
  g_assert_nonnull (add_bow_idf (ctx, NULL, &err));
  const char *kv[] = { "encoder", "encoder.bowidf", "cache", cache ? "true" : "false", NULL };
  StsimComponent *t = make_teacher (ctx, kv, &err);
  g_assert_no_error (err);
  g_assert_true (stsim_teacher_prepare_corpus (t, corpus, g_strv_length ((char **) corpus), &err));
  g_assert_no_error (err);
  return t;
}

/* ---- tests -------------------------------------------------------------------- */

/* The batch: corpus sentences, then one outside the corpus (its words are
 * all corpus words, so the reference covers it). */
static const char *const batch[] = { "A man plays the flute.", "The man is playing a guitar.",
                                     "A dog is running.", "The dog runs (fast) in the park!",
                                     "the woman plays a guitar in the park .", NULL };

static void
test_reference (void)
{
  g_autoptr (StsimContext) ctx = stsim_context_new (NULL, 1, 1);
  g_autoptr (StsimComponent) t = prepared_teacher (ctx, TRUE);
  const gsize B = g_strv_length ((char **) batch), N = g_strv_length ((char **) corpus);
  double hit = 0;
  g_autofree float *sim = similarity (t, batch, B, &hit);
  g_assert_cmpfloat_with_epsilon (hit, (double) (B - 1) / B, 1e-12);
  for (gsize i = 0; i < B; i++)
    for (gsize j = 0; j < B; j++) {
      double want = i == j ? 1.0 : ref_cos (batch[i], batch[j], N);
      g_assert_cmpfloat_with_epsilon (sim[i * B + j], want, 2e-7);
    }
  /* Not a trivial matrix: the two man/guitar sentences share words. */
  g_assert_cmpfloat (sim[0 * B + 1], >, 0.05);
  g_assert_cmpfloat (sim[0 * B + 2], <, sim[0 * B + 1]);
}

static void
test_cache_equals_direct (void)
{
  g_autoptr (StsimContext) c1 = stsim_context_new (NULL, 1, 1);
  g_autoptr (StsimContext) c2 = stsim_context_new (NULL, 1, 1);
  g_autoptr (StsimComponent) cached = prepared_teacher (c1, TRUE);
  g_autoptr (StsimComponent) direct = prepared_teacher (c2, FALSE);
  const gsize B = g_strv_length ((char **) batch);
  double hit_direct = 0;
  g_autofree float *a = similarity (cached, batch, B, NULL);
  g_autofree float *b = similarity (direct, batch, B, &hit_direct);
  g_assert_true (isnan (hit_direct));  /* no cache, nothing logged */
  g_assert_cmpmem (a, B * B * sizeof (float), b, B * B * sizeof (float));
}

static void
test_sparse_equals_dense (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimContext) ctx = stsim_context_new (NULL, 1, 1);
  StsimComponent *e = add_bow_idf (ctx, NULL, &err);
  g_assert_no_error (err);
  g_assert_true (stsim_encoder_prepare (e, corpus, g_strv_length ((char **) corpus), &err));
  g_assert_true (stsim_encoder_has_sparse (e));
  const gsize D = stsim_encoder_dim (e);
  /* Unseen words too: they land in hashed buckets, possibly together. */
  const char *const s[] = { "The the THE man, man.", "zebra quagga okapi zebra", "", NULL };
  for (gsize i = 0; s[i]; i++) {
    g_autofree float *dense = g_new (float, D);
    g_assert_true (stsim_encoder_encode (e, &s[i], 1, dense, &err));
    g_autoptr (GArray) idx = g_array_new (FALSE, FALSE, sizeof (guint32));
    g_autoptr (GArray) val = g_array_new (FALSE, FALSE, sizeof (float));
    g_assert_true (stsim_encoder_encode_sparse (e, s[i], idx, val, &err));
    g_assert_no_error (err);
    g_autofree float *back = g_new0 (float, D);
    for (guint k = 0; k < idx->len; k++)
      back[g_array_index (idx, guint32, k)] = g_array_index (val, float, k);
    g_assert_cmpmem (dense, D * sizeof (float), back, D * sizeof (float));
  }
}

static void
test_idf_corpus (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *tmp = g_dir_make_tmp ("stsim-wrapped-XXXXXX", &err);
  g_assert_no_error (err);
  g_autofree char *file = g_build_filename (tmp, "idf.txt", NULL);
  g_autoptr (GString) text = g_string_new (NULL);
  for (gsize i = 0; corpus[i]; i++)
    g_string_append_printf (text, "%s\n", corpus[i]);
  g_assert_true (g_file_set_contents (file, text->str, -1, &err));

  /* IDF from the file, then prepare() on other sentences keeps it. */
  g_autoptr (StsimContext) ctx = stsim_context_new (NULL, 1, 1);
  StsimComponent *e = add_bow_idf (ctx, file, &err);
  g_assert_no_error (err);
  const char *const task[] = { "a man plays", "a woman plays", NULL };
  g_assert_true (stsim_encoder_prepare (e, task, 2, &err));
  const gsize D = stsim_encoder_dim (e), N = g_strv_length ((char **) corpus);
  g_autofree float *v = g_new (float, 2 * D);
  g_assert_true (stsim_encoder_encode (e, task, 2, v, &err));
  double dot = 0, n0 = 0, n1 = 0;
  for (gsize k = 0; k < D; k++)
    dot += (double) v[k] * v[D + k], n0 += (double) v[k] * v[k], n1 += (double) v[D + k] * v[D + k];
  g_assert_cmpfloat_with_epsilon (dot / sqrt (n0 * n1), ref_cos (task[0], task[1], N), 1e-12);

  /* A pattern that matches nothing names the key. */
  g_autofree char *none = g_build_filename (tmp, "nothing-*.txt", NULL);
  g_autoptr (StsimContext) ctx2 = stsim_context_new (NULL, 1, 1);
  g_assert_null (add_bow_idf (ctx2, none, &err));
  g_assert_nonnull (err);
  g_assert_nonnull (strstr (err->message, "idf_corpus"));
  stsim_test_remove_tree (tmp);
}

static void
expect_error (StsimContext *ctx, const char **kv, const char *needle)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimComponent) t = make_teacher (ctx, kv, &err);
  g_assert_null (t);
  g_assert_nonnull (err);
  if (!strstr (err->message, needle))
    g_error ("expected '%s' in: %s", needle, err->message);
}

static void
test_bad_config (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimContext) ctx = stsim_context_new (NULL, 1, 1);
  g_assert_nonnull (add_bow_idf (ctx, NULL, &err));
  const char *neither[] = { "cache", "true", NULL };
  expect_error (ctx, neither, "model = FOLDER");
  const char *both[] = { "encoder", "encoder.bowidf", "model", "/tmp", NULL };
  expect_error (ctx, both, "model");
  const char *pooler[] = { "encoder", "encoder.bowidf", "pooler", "avg", NULL };
  expect_error (ctx, pooler, "pooler");
  const char *missing[] = { "encoder", "encoder.nothere", NULL };
  expect_error (ctx, missing, "encoder.nothere");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  reg = stsim_registry_new ();
  stsim_registry_scan_default (reg);
  if (!stsim_registry_lookup (reg, STSIM_KIND_TEACHER, "encoder-teacher") ||
      !stsim_registry_lookup (reg, STSIM_KIND_ENCODER, "bow-idf")) {
    g_printerr ("the encoder-teacher and bow plugins are not on STSIM_PLUGIN_PATH\n");
    return 1;
  }
  g_test_add_func ("/wrapped-teacher/reference", test_reference);
  g_test_add_func ("/wrapped-teacher/cache-equals-direct", test_cache_equals_direct);
  g_test_add_func ("/wrapped-teacher/sparse-equals-dense", test_sparse_equals_dense);
  g_test_add_func ("/wrapped-teacher/idf-corpus", test_idf_corpus);
  g_test_add_func ("/wrapped-teacher/bad-config", test_bad_config);
  int rc = g_test_run ();
  stsim_registry_free (reg);
  return rc;
}
