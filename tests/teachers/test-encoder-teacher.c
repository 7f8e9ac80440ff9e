/* test-encoder-teacher: the `encoder-teacher` plugin on the tiny fixture
 * checkpoints (tests/fixtures/models): its similarity equals the cosine of
 * embeddings computed independently with stsim_model_encode(); it reads the
 * student's token ids when the vocabularies match and tokenizes itself when
 * they differ (roberta-tiny teacher, bert-tiny student); its corpus cache
 * gives bit-identical matrices; a stale (texts or checkpoint changed) or
 * corrupt cache is detected and rebuilt. */
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>
#include <stsim/stsim.h>
#include <stsim/stsim-model.h>
#include <stsim/stsim-registry.h>
#include <stsim/stsim-safetensors.h>
#include "test-util.h"

static StsimRegistry *reg;

#define N_CORPUS 40

/* Cached and on-the-fly matrices come from the same code (embed_rows), but
 * a sentence may sit in batches of other compositions, and OpenBLAS's GEMM
 * rounds a row differently depending on its position in the kernel's tiles:
 * a few float32 ulps of a cosine (measured: at most 6e-8). A real cache bug
 * (wrong row, wrong sentence, stale weights) gives errors of 1e-2 and more. */
#define SIM_EPS 4e-7

static const char *const words[] = { "the", "man", "is", "in", "house", "a", "woman", "plays", "of", "and",
                                     "dog", "runs", "to", "was", "he", "for", "on", "it", "with", "as" };

/* A deterministic corpus of short sentences (some longer than 8 tokens). */
static char **
make_corpus (guint seed)
{
  char **c = g_new0 (char *, N_CORPUS + 1);
  StsimRng rng;
  stsim_rng_init (&rng, seed, STSIM_RNG_STREAM_USER);
  for (int i = 0; i < N_CORPUS; i++) {
    GString *s = g_string_new (NULL);
    int n = 3 + (int) stsim_rng_range (&rng, 0, 12);
    for (int k = 0; k < n; k++)
      g_string_append_printf (s, "%s%s", k ? " " : "", words[stsim_rng_range (&rng, 0, G_N_ELEMENTS (words))]);
    g_string_append_printf (s, " %d .", i);  /* distinct sentences */
    c[i] = g_string_free (s, FALSE);
  }
  return c;
}

static char *
model_dir (const char *name)
{
  return g_test_build_filename (G_TEST_DIST, "fixtures", "models", name, NULL);
}

static StsimComponent *
make_teacher (const char *dir, const char **kv, GError **error)
{
  const StsimRegistryEntry *e = stsim_registry_lookup (reg, STSIM_KIND_TEACHER, "encoder-teacher");
  g_assert_nonnull (e);
  g_autoptr(StsimParams) p = stsim_params_new (e->desc->params);
  if (!stsim_params_set (p, "model", dir, error))
    return NULL;
  for (gsize i = 0; kv && kv[i]; i += 2)
    if (!stsim_params_set (p, kv[i], kv[i + 1], error))
      return NULL;
  if (!stsim_params_finish (p, error))
    return NULL;
  return stsim_component_new (e->desc, "teacher.t", g_steal_pointer (&p), NULL, error);
}

static gboolean
prepare (StsimComponent *c, char **texts, GError **error)
{
  return stsim_teacher_prepare_corpus (c, (const char *const *) texts, g_strv_length (texts), error);
}

/* The teacher's matrix for sentences @texts (B) through a detached step
 * whose student is @student tokenizing at @student_max_len. *hit_rate gets
 * the logged cache hit rate (NAN without a cache). */
static float *
similarity (StsimComponent *c, StsimModel *student, int student_max_len, const char *const *texts, gsize B,
            double *hit_rate, GError **error)
{
  g_autoptr(StsimTape) tape = stsim_tape_new (1, 0);
  g_autoptr(StsimTrainStep) step = stsim_train_step_new_detached (tape, B, 2, 1, 0);
  g_autofree const char **rows = g_new (const char *, 2 * B);
  for (gsize i = 0; i < B; i++)
    rows[i] = rows[B + i] = texts[i];
  if (!stsim_train_step_set_model (step, student, rows, student_max_len, error))
    return NULL;
  float *sim = g_new (float, B * B);
  if (!stsim_teacher_similarity (c, step, sim, error)) {
    g_free (sim);
    return NULL;
  }
  if (hit_rate)
    *hit_rate = stsim_train_step_get_logged (step, "teacher_cache_hit_rate");
  return sim;
}

/* cos of stsim_model_encode() embeddings, in float64: the reference. */
static float *
reference_sim (const char *name, const char *const *texts, gsize B, int max_len)
{
  g_autofree char *dir = model_dir (name);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimModel) m = stsim_model_load (dir, STSIM_MODEL_FROZEN, 1, &err);
  g_assert_no_error (err);
  gsize H = stsim_model_get_dim (m);
  g_autofree float *e = g_new (float, B * H);
  g_assert_true (stsim_model_encode (m, texts, B, STSIM_POOL_CLS_BEFORE_POOLER, max_len, e, &err));
  g_assert_no_error (err);
  float *sim = g_new (float, B * B);
  for (gsize i = 0; i < B; i++)
    for (gsize j = 0; j < B; j++) {
      double d = 0, a = 0, b = 0;
      for (gsize k = 0; k < H; k++) {
        d += (double) e[i * H + k] * e[j * H + k];
        a += (double) e[i * H + k] * e[i * H + k];
        b += (double) e[j * H + k] * e[j * H + k];
      }
      sim[i * B + j] = (float) (d / (MAX (sqrt (a), 1e-8) * MAX (sqrt (b), 1e-8)));
    }
  return sim;
}

static double
max_diff (const float *a, const float *b, gsize n)
{
  double m = 0;
  for (gsize i = 0; i < n; i++)
    m = MAX (m, fabs ((double) a[i] - b[i]));
  return m;
}

static StsimModel *
load_student (const char *name)
{
  g_autofree char *dir = model_dir (name);
  g_autoptr(GError) err = NULL;
  StsimModel *m = stsim_model_load (dir, 0, 1, &err);
  g_assert_no_error (err);
  return m;
}

/* ---- tokenization ------------------------------------------------------------------ */

/* Same vocabulary: the teacher reads the student's ids. A student that
 * truncates at 6 tokens makes this visible: the matrix is the one of 6-token
 * inputs, not of the teacher's own max_len 32. */
static void
test_student_ids (void)
{
  g_auto (GStrv) corpus = make_corpus (1);
  const gsize B = 8;
  g_autoptr(StsimModel) student = load_student ("bert-tiny");
  g_autofree char *dir = model_dir ("bert-tiny");
  const char *kv[] = { "cache", "false", NULL };
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimComponent) t = make_teacher (dir, kv, &err);
  g_assert_no_error (err);
  g_autofree float *sim = similarity (t, student, 6, (const char *const *) corpus, B, NULL, &err);
  g_assert_no_error (err);
  g_autofree float *ref6 = reference_sim ("bert-tiny", (const char *const *) corpus, B, 6);
  g_autofree float *ref32 = reference_sim ("bert-tiny", (const char *const *) corpus, B, 32);
  g_test_message ("student ids: max |sim - ref(6)| = %.2e, max |sim - ref(32)| = %.2e", max_diff (sim, ref6, B * B),
                  max_diff (sim, ref32, B * B));
  g_assert_cmpfloat (max_diff (sim, ref6, B * B), <=, 1e-5);
  g_assert_cmpfloat (max_diff (sim, ref32, B * B), >, 1e-3);
  for (gsize i = 0; i < B; i++) {
    g_assert_cmpfloat (fabs (sim[i * B + i] - 1.0), <=, 1e-6);
    for (gsize j = 0; j < B; j++)
      g_assert_cmpfloat (sim[i * B + j], ==, sim[j * B + i]);
  }

  /* tokenize = own: the teacher's own tokenization at its max_len. */
  const char *kv_own[] = { "cache", "false", "tokenize", "own", NULL };
  g_autoptr(StsimComponent) t_own = make_teacher (dir, kv_own, &err);
  g_autofree float *sim_own = similarity (t_own, student, 6, (const char *const *) corpus, B, NULL, &err);
  g_assert_no_error (err);
  g_assert_cmpfloat (max_diff (sim_own, ref32, B * B), <=, 1e-5);
}

/* A RoBERTa teacher for a BERT student: the ids would mean other tokens, so
 * auto tokenizes the texts itself; student mode is refused with a reason. */
static void
test_other_vocabulary (void)
{
  g_auto (GStrv) corpus = make_corpus (2);
  const gsize B = 8;
  g_autoptr(StsimModel) student = load_student ("bert-tiny");
  g_autofree char *dir = model_dir ("roberta-tiny");
  const char *kv[] = { "cache", "false", NULL };
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimComponent) t = make_teacher (dir, kv, &err);
  g_assert_no_error (err);
  g_autofree float *sim = similarity (t, student, 32, (const char *const *) corpus, B, NULL, &err);
  g_assert_no_error (err);
  g_autofree float *ref = reference_sim ("roberta-tiny", (const char *const *) corpus, B, 32);
  g_test_message ("roberta teacher, bert student: max |sim - ref| = %.2e", max_diff (sim, ref, B * B));
  g_assert_cmpfloat (max_diff (sim, ref, B * B), <=, 1e-5);

  const char *kv_st[] = { "cache", "false", "tokenize", "student", NULL };
  g_autoptr(StsimComponent) ts = make_teacher (dir, kv_st, &err);
  g_assert_no_error (err);
  g_autofree float *bad = similarity (ts, student, 32, (const char *const *) corpus, B, NULL, &err);
  g_assert_null (bad);
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_INVALID);
  g_assert_nonnull (strstr (err->message, "differs"));
}

/* ---- the cache ---------------------------------------------------------------------- */

typedef struct {
  char *dir;    /* a fresh temporary folder */
} TmpDir;

static void
tmp_setup (TmpDir *fx, gconstpointer data)
{
  g_autoptr(GError) err = NULL;
  fx->dir = g_dir_make_tmp ("stsim-teacher-XXXXXX", &err);
  g_assert_no_error (err);
}

static void
tmp_teardown (TmpDir *fx, gconstpointer data)
{
  stsim_test_remove_tree (fx->dir);
  g_free (fx->dir);
}

/* The only cache file in @dir (the test gives each teacher its own folder). */
static char *
cache_file (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  g_assert_nonnull (d);
  const char *name;
  char *found = NULL;
  while ((name = g_dir_read_name (d)))
    if (g_str_has_suffix (name, ".safetensors")) {
      g_assert_null (found);
      found = g_build_filename (dir, name, NULL);
    }
  g_assert_nonnull (found);
  return found;
}

static char *
cache_meta (const char *path, const char *key)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimSafetensors) st = stsim_safetensors_open (path, &err);
  g_assert_no_error (err);
  return g_strdup (stsim_safetensors_get_metadata (st, key));
}

/* Batches of the step: 4 slices of the corpus, and one with sentences the
 * corpus does not have (computed on the fly). */
static void
compare_cached (StsimComponent *cached, StsimComponent *plain, StsimModel *student, char **corpus, double want_hits)
{
  g_autoptr(GError) err = NULL;
  for (int b = 0; b < 5; b++) {
    const gsize B = 8;
    const char *texts[8];
    for (gsize i = 0; i < B; i++)
      texts[i] = b < 4 ? corpus[(b * 7 + i * 3) % N_CORPUS] : (i % 2 ? corpus[i] : "a sentence not in the corpus");
    double hits = NAN;
    g_autofree float *a = similarity (cached, student, 32, texts, B, &hits, &err);
    g_assert_no_error (err);
    g_autofree float *p = similarity (plain, student, 32, texts, B, NULL, &err);
    g_assert_no_error (err);
    g_test_message ("batch %d: cache hit rate %.2f, max |cached - on the fly| = %.3g", b, hits,
                    max_diff (a, p, B * B));
    g_assert_cmpfloat (hits, ==, b < 4 ? want_hits : want_hits / 2);
    g_assert_cmpfloat (max_diff (a, p, B * B), <=, SIM_EPS);
  }
}

static void
test_cache_equivalence (TmpDir *fx, gconstpointer data)
{
  g_auto (GStrv) corpus = make_corpus (3);
  g_autoptr(StsimModel) student = load_student ("bert-tiny");
  g_autofree char *dir = model_dir ("bert-tiny");
  const char *kv_c[] = { "cache_dir", fx->dir, "batch", "7", NULL };
  const char *kv_p[] = { "cache", "false", NULL };
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimComponent) cached = make_teacher (dir, kv_c, &err);
  g_autoptr(StsimComponent) plain = make_teacher (dir, kv_p, &err);
  g_assert_no_error (err);
  g_assert_true (prepare (cached, corpus, &err));
  g_assert_no_error (err);
  compare_cached (cached, plain, student, corpus, 1.0);

  /* A second instance maps the file instead of computing: same numbers. */
  g_autofree char *path = cache_file (fx->dir);
  g_autofree char *before = NULL;
  gsize len_before;
  g_assert_true (g_file_get_contents (path, &before, &len_before, NULL));
  g_autoptr(StsimComponent) again = make_teacher (dir, kv_c, &err);
  g_assert_true (prepare (again, corpus, &err));
  g_assert_no_error (err);
  compare_cached (again, plain, student, corpus, 1.0);
  g_autofree char *after = NULL;
  gsize len_after;
  g_assert_true (g_file_get_contents (path, &after, &len_after, NULL));
  g_assert_cmpmem (before, len_before, after, len_after);

  /* Without prepare_corpus (cache on, nothing prepared) it still works. */
  g_autoptr(StsimComponent) unprepared = make_teacher (dir, kv_c, &err);
  g_autofree float *u = similarity (unprepared, student, 32, (const char *const *) corpus, 8, NULL, &err);
  g_autofree float *p = similarity (plain, student, 32, (const char *const *) corpus, 8, NULL, &err);
  g_assert_no_error (err);
  g_test_message ("unprepared, other batch split: max |diff| = %.3g", max_diff (u, p, 64));
  g_assert_cmpfloat (max_diff (u, p, 64), <=, SIM_EPS);
}

/* Different texts: the key's corpus hash differs, the file is rebuilt. */
static void
test_cache_stale_texts (TmpDir *fx, gconstpointer data)
{
  g_auto (GStrv) corpus = make_corpus (4);
  g_autoptr(StsimModel) student = load_student ("bert-tiny");
  g_autofree char *dir = model_dir ("bert-tiny");
  const char *kv_c[] = { "cache_dir", fx->dir, NULL };
  const char *kv_p[] = { "cache", "false", NULL };
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimComponent) plain = make_teacher (dir, kv_p, &err);
  g_autoptr(StsimComponent) t1 = make_teacher (dir, kv_c, &err);
  g_assert_true (prepare (t1, corpus, &err));
  g_assert_no_error (err);
  g_autofree char *path = cache_file (fx->dir);
  g_autofree char *sha1 = cache_meta (path, "corpus_sha256");

  g_free (corpus[5]);
  corpus[5] = g_strdup ("a changed sentence in the corpus .");
  g_autoptr(StsimComponent) t2 = make_teacher (dir, kv_c, &err);
  g_assert_true (prepare (t2, corpus, &err));
  g_assert_no_error (err);
  g_autofree char *sha2 = cache_meta (path, "corpus_sha256");
  g_assert_cmpstr (sha1, !=, sha2);
  /* Every sentence of the new corpus, the changed one included, is a hit. */
  const char *texts[8];
  for (gsize i = 0; i < 8; i++)
    texts[i] = corpus[i];
  double hits = 0;
  g_autofree float *a = similarity (t2, student, 32, texts, 8, &hits, &err);
  g_autofree float *p = similarity (plain, student, 32, texts, 8, NULL, &err);
  g_assert_no_error (err);
  g_assert_cmpfloat (hits, ==, 1.0);
  g_assert_cmpfloat (max_diff (a, p, 64), <=, SIM_EPS);
}

static void
copy_file (const char *from, const char *to)
{
  g_autofree char *data = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (from, &data, &len, NULL));
  g_assert_true (g_file_set_contents (to, data, (gssize) len, NULL));
}

static void
copy_model (const char *name, const char *to)
{
  static const char *const files[] = { "config.json", "model.safetensors", "vocab.txt", NULL };
  g_autofree char *dir = model_dir (name);
  g_mkdir_with_parents (to, 0755);
  for (gsize i = 0; files[i]; i++) {
    g_autofree char *a = g_build_filename (dir, files[i], NULL);
    g_autofree char *b = g_build_filename (to, files[i], NULL);
    copy_file (a, b);
  }
}

/* The same checkpoint folder with other weights (bert-tiny -> bert-tiny-f16):
 * the checkpoint hash differs, the cache is rebuilt with the new teacher. */
static void
test_cache_stale_checkpoint (TmpDir *fx, gconstpointer data)
{
  g_auto (GStrv) corpus = make_corpus (5);
  g_autoptr(StsimModel) student = load_student ("bert-tiny");
  g_autofree char *mdir = g_build_filename (fx->dir, "teacher", NULL);
  g_autofree char *cdir = g_build_filename (fx->dir, "cache", NULL);
  copy_model ("bert-tiny", mdir);
  const char *kv_c[] = { "cache_dir", cdir, NULL };
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimComponent) t1 = make_teacher (mdir, kv_c, &err);
  g_assert_true (prepare (t1, corpus, &err));
  g_assert_no_error (err);
  g_autofree char *path = cache_file (cdir);
  g_autofree char *sha1 = cache_meta (path, "checkpoint_sha256");
  const char *texts[8];
  for (gsize i = 0; i < 8; i++)
    texts[i] = corpus[i];
  g_autofree float *old = similarity (t1, student, 32, texts, 8, NULL, &err);

  copy_model ("bert-tiny-f16", mdir);
  g_autoptr(StsimComponent) t2 = make_teacher (mdir, kv_c, &err);
  g_assert_true (prepare (t2, corpus, &err));
  g_assert_no_error (err);
  g_autofree char *path2 = cache_file (cdir);
  g_assert_cmpstr (path, ==, path2);
  g_autofree char *sha2 = cache_meta (path, "checkpoint_sha256");
  g_assert_cmpstr (sha1, !=, sha2);
  const char *kv_p[] = { "cache", "false", NULL };
  g_autoptr(StsimComponent) plain = make_teacher (mdir, kv_p, &err);
  double hits = 0;
  g_autofree float *a = similarity (t2, student, 32, texts, 8, &hits, &err);
  g_autofree float *p = similarity (plain, student, 32, texts, 8, NULL, &err);
  g_assert_no_error (err);
  g_assert_cmpfloat (hits, ==, 1.0);
  g_assert_cmpfloat (max_diff (a, p, 64), <=, SIM_EPS);
  g_assert_cmpfloat (max_diff (a, old, 64), >, 1e-6);  /* the F16 weights do change the teacher */
}

/* A damaged file (flipped data bytes, or cut short) is rebuilt, to exactly
 * the bytes a fresh build writes. */
static void
test_cache_corrupt (TmpDir *fx, gconstpointer data)
{
  g_auto (GStrv) corpus = make_corpus (6);
  g_autoptr(StsimModel) student = load_student ("bert-tiny");
  g_autofree char *dir = model_dir ("bert-tiny");
  const char *kv_c[] = { "cache_dir", fx->dir, NULL };
  const char *kv_p[] = { "cache", "false", NULL };
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimComponent) plain = make_teacher (dir, kv_p, &err);
  g_autoptr(StsimComponent) t1 = make_teacher (dir, kv_c, &err);
  g_assert_true (prepare (t1, corpus, &err));
  g_assert_no_error (err);
  g_autofree char *path = cache_file (fx->dir);
  g_autofree char *good = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (path, &good, &len, NULL));

  for (int mode = 0; mode < 3; mode++) {
    g_autofree char *bad = g_memdup2 (good, len);
    gsize bad_len = len;
    if (mode == 0)
      bad[len - 5] ^= 0x40;          /* one data byte: only the checksum sees it */
    else if (mode == 1)
      bad_len = 100;                 /* cut short */
    else
      memset (bad + 8, 'x', 16);     /* garbage header */
    g_assert_true (g_file_set_contents (path, bad, (gssize) bad_len, NULL));
    g_autoptr(StsimComponent) t = make_teacher (dir, kv_c, &err);
    g_assert_true (prepare (t, corpus, &err));
    g_assert_no_error (err);
    g_autofree char *now = NULL;
    gsize now_len;
    g_assert_true (g_file_get_contents (path, &now, &now_len, NULL));
    g_assert_cmpmem (now, now_len, good, len);
    const char *texts[8];
    for (gsize i = 0; i < 8; i++)
      texts[i] = corpus[i + 10];
    g_autofree float *a = similarity (t, student, 32, texts, 8, NULL, &err);
    g_autofree float *p = similarity (plain, student, 32, texts, 8, NULL, &err);
    g_assert_no_error (err);
    g_assert_cmpfloat (max_diff (a, p, 64), <=, SIM_EPS);
  }
}

/* ---- bad configuration ---------------------------------------------------------------- */

static void
test_bad_config (void)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimComponent) t = make_teacher ("/nonexistent/teacher-model", NULL, &err);
  g_assert_null (t);
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (err->message, "/nonexistent/teacher-model"));
  g_clear_error (&err);

  /* max_len beyond the fixture's 64 positions. */
  g_autofree char *dir = model_dir ("bert-tiny");
  const char *kv[] = { "max_len", "100", NULL };
  g_autoptr(StsimComponent) t2 = make_teacher (dir, kv, &err);
  g_assert_null (t2);
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_INVALID);
  g_assert_nonnull (strstr (err->message, "max_len"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  reg = stsim_registry_new ();
  stsim_registry_scan_default (reg);
  if (!stsim_registry_lookup (reg, STSIM_KIND_TEACHER, "encoder-teacher")) {
    g_printerr ("the encoder-teacher plugin is not on STSIM_PLUGIN_PATH\n");
    return 1;
  }
  g_test_add_func ("/encoder-teacher/student-ids", test_student_ids);
  g_test_add_func ("/encoder-teacher/other-vocabulary", test_other_vocabulary);
  g_test_add ("/encoder-teacher/cache/equivalence", TmpDir, NULL, tmp_setup, test_cache_equivalence, tmp_teardown);
  g_test_add ("/encoder-teacher/cache/stale-texts", TmpDir, NULL, tmp_setup, test_cache_stale_texts, tmp_teardown);
  g_test_add ("/encoder-teacher/cache/stale-checkpoint", TmpDir, NULL, tmp_setup, test_cache_stale_checkpoint,
              tmp_teardown);
  g_test_add ("/encoder-teacher/cache/corrupt", TmpDir, NULL, tmp_setup, test_cache_corrupt, tmp_teardown);
  g_test_add_func ("/encoder-teacher/bad-config", test_bad_config);
  int rc = g_test_run ();
  stsim_registry_free (reg);
  return rc;
}
