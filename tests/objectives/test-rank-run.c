/* test-rank-run: RankCSE end to end through the trainer on the tiny
 * fixtures: a bert-tiny student with contrastive + rank-distill, distilled
 * from two encoder-teachers (bert-tiny, which reads the student's ids, and
 * roberta-tiny, whose vocabulary differs and which tokenizes itself).
 * Checks that the trainer prepares the teacher caches, that every term is
 * logged and finite, and that cached and uncached teachers give the same
 * training losses. A second run distills from a bow-idf encoder section
 * (encoder-teacher's `encoder =`): the trainer trains the bert student, not
 * the wrapped encoder, and the in-memory sparse cache and the direct route
 * give bit-identical losses. */
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <stsim/stsim.h>
#include <stsim/stsim-recipe.h>
#include <stsim/stsim-registry.h>
#include <stsim/stsim-train.h>
#include <stsim/stsim-safetensors.h>
#include "test-util.h"

static StsimRegistry *reg;
static char *tmpdir;

/* What both recipes share: the run, the schedule, the bert-tiny student and
 * InfoNCE. Arguments: output, corpus, models folder. */
static const char *recipe_head =
  "[run]\n"
  "seed = 42\n"
  "threads = 1\n"
  "output = %s\n"
  "[train]\n"
  "corpus = %s\n"
  "batch_size = 16\n"
  "steps = 12\n"
  "lr = 1e-3\n"
  "max_len = 32\n"
  "eval_every = 0\n"
  "test = false\n"
  "log_every = 1\n"
  "[encoder]\n"
  "use = bert\n"
  "model = %s/bert-tiny\n"
  "mlp_init = random\n"
  "[objective.contrastive]\n"
  "use = contrastive\n";

/* Two checkpoint teachers. Arguments: models folder, cache, models, cache. */
static const char *recipe_text =
  "[objective.rank]\n"
  "use = rank-distill\n"
  "teachers = teacher.same, teacher.other\n"
  "teacher_weights = 0.5, 0.5\n"
  "form = listmle\n"
  "consistency_weight = 0.1\n"
  "[teacher.same]\n"
  "use = encoder-teacher\n"
  "model = %s/bert-tiny\n"
  "cache_dir = %s\n"
  "[teacher.other]\n"
  "use = encoder-teacher\n"
  "model = %s/roberta-tiny\n"
  "cache_dir = %s\n";

/* A bow-idf encoder section as the teacher. No arguments. */
static const char *bow_recipe_text =
  "[encoder.bowidf]\n"
  "use = bow-idf\n"
  "tokenize = words\n"
  "[objective.rank]\n"
  "use = rank-distill\n"
  "teachers = teacher.bowidf\n"
  "form = listnet\n"
  "consistency_weight = 0.1\n"
  "[teacher.bowidf]\n"
  "use = encoder-teacher\n"
  "encoder = encoder.bowidf\n";

static char *
fixture (const char *a, const char *b)
{
  return g_test_build_filename (G_TEST_DIST, a, b, NULL);
}

/* Runs the recipe into tmpdir/@name; returns the run folder. */
static char *
run_text (const char *name, const char *template, const char *const *overrides)
{
  g_autofree char *out = g_build_filename (tmpdir, name, NULL);
  g_autofree char *cache = g_build_filename (tmpdir, "cache", NULL);
  g_autofree char *corpus = g_test_build_filename (G_TEST_DIST, "train", "data", "small-corpus.txt", NULL);
  g_autofree char *models = fixture ("fixtures", "models");
  g_autofree char *head = g_strdup_printf (recipe_head, out, corpus, models);
  g_autofree char *tail = template == recipe_text ? g_strdup_printf (recipe_text, models, cache, models, cache)
                                                  : g_strdup (template);
  g_autofree char *text = g_strconcat (head, tail, NULL);
  g_autofree char *path = g_strdup_printf ("%s.ini", out);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimRecipe) r = stsim_recipe_load (reg, path, overrides, NULL, &err);
  g_assert_no_error (err);
  g_autoptr(StsimContext) ctx = stsim_recipe_new_context (r);
  StsimTrainOptions opts = STSIM_TRAIN_OPTIONS_INIT;
  opts.quiet = TRUE;
  g_assert_true (stsim_recipe_instantiate (r, ctx, &err));
  g_assert_no_error (err);
  g_assert_true (stsim_trainer_run (r, ctx, &opts, &err));
  g_assert_no_error (err);
  return g_steal_pointer (&out);
}

static char *
run (const char *name, const char *const *overrides)
{
  return run_text (name, recipe_text, overrides);
}

/* Per step: the rank term, the contrastive term, the consistency log. */
typedef struct {
  double rank[12], contrastive[12], consistency[12], agreement[12];
} Metrics;

static void
read_metrics (const char *dir, Metrics *m)
{
  g_autofree char *path = g_build_filename (dir, "metrics.jsonl", NULL);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  int n = 0;
  for (gsize i = 0; lines[i]; i++) {
    if (!*lines[i])
      continue;
    g_autoptr(JsonParser) p = json_parser_new ();
    g_assert_true (json_parser_load_from_data (p, lines[i], -1, NULL));
    JsonObject *o = json_node_get_object (json_parser_get_root (p));
    if (g_strcmp0 (json_object_get_string_member (o, "type"), "train") != 0)
      continue;
    gint64 step = json_object_get_int_member (o, "step");
    g_assert_cmpint (step, >=, 1);
    g_assert_cmpint (step, <=, 12);
    g_assert_true (json_object_has_member (o, "loss.objective.rank"));
    g_assert_true (json_object_has_member (o, "objective.rank.consistency"));
    m->rank[step - 1] = json_object_get_double_member (o, "loss.objective.rank");
    m->contrastive[step - 1] = json_object_get_double_member (o, "loss.objective.contrastive");
    m->consistency[step - 1] = json_object_get_double_member (o, "objective.rank.consistency");
    m->agreement[step - 1] = json_object_get_double_member (o, "objective.rank.top1_agreement");
    n++;
  }
  g_assert_cmpint (n, ==, 12);
}

static void
test_run (void)
{
  Metrics cached = { 0 }, again = { 0 }, plain = { 0 };
  g_autofree char *a = run ("cached", NULL);
  read_metrics (a, &cached);
  for (int s = 0; s < 12; s++) {
    g_assert_true (isfinite (cached.rank[s]) && cached.rank[s] > 0);
    g_assert_true (isfinite (cached.contrastive[s]) && cached.contrastive[s] > 0);
    g_assert_true (cached.consistency[s] >= 0 && cached.consistency[s] <= log (2.0));
  }
  g_test_message ("rank loss step 1 %.4f -> step 12 %.4f; contrastive %.4f -> %.4f; top-1 agreement %.2f -> %.2f",
                  cached.rank[0], cached.rank[11], cached.contrastive[0], cached.contrastive[11],
                  cached.agreement[0], cached.agreement[11]);

  /* The trainer prepared both teachers: two cache files of the 400 sentences. */
  g_autofree char *cache = g_build_filename (tmpdir, "cache", NULL);
  g_autoptr(GDir) d = g_dir_open (cache, 0, NULL);
  g_assert_nonnull (d);
  int files = 0;
  const char *name;
  while ((name = g_dir_read_name (d))) {
    g_autofree char *p = g_build_filename (cache, name, NULL);
    g_autoptr(GError) err = NULL;
    g_autoptr(StsimSafetensors) st = stsim_safetensors_open (p, &err);
    g_assert_no_error (err);
    g_assert_cmpstr (stsim_safetensors_get_metadata (st, "corpus_n"), ==, "400");
    files++;
  }
  g_assert_cmpint (files, ==, 2);

  /* From the cache files: the very same run. */
  g_autofree char *b = run ("cached-again", NULL);
  read_metrics (b, &again);
  g_assert_cmpmem (cached.rank, sizeof cached.rank, again.rank, sizeof again.rank);

  /* Without caches, every teacher embedding is computed on the fly. */
  const char *const off[] = { "teacher.same.cache=false", "teacher.other.cache=false", NULL };
  g_autofree char *c = run ("uncached", off);
  read_metrics (c, &plain);
  double worst = 0;
  for (int s = 0; s < 12; s++)
    worst = MAX (worst, fabs (plain.rank[s] - cached.rank[s]) / cached.rank[s]);
  g_test_message ("cached vs on-the-fly rank loss over 12 steps: max relative difference %.3g", worst);
  /* Identical up to the GEMM rounding of a sentence's batch position
   * (a few ulps of a cosine; see tests/teachers). */
  g_assert_cmpfloat (worst, <=, 1e-5);
}

/* bow-idf as the teacher: the student is the bert section, the rank term
 * moves, and the cached (sparse) and direct routes agree to the bit. */
static void
test_bow_idf_teacher (void)
{
  Metrics cached = { 0 }, direct = { 0 };
  g_autofree char *a = run_text ("bowidf-cached", bow_recipe_text, NULL);
  read_metrics (a, &cached);
  for (int s = 0; s < 12; s++)
    g_assert_true (isfinite (cached.rank[s]) && cached.rank[s] > 0);
  g_test_message ("bow-idf teacher: rank loss step 1 %.4f -> step 12 %.4f; top-1 agreement %.2f -> %.2f",
                  cached.rank[0], cached.rank[11], cached.agreement[0], cached.agreement[11]);
  g_autofree char *best = g_build_filename (a, "best", "model.safetensors", NULL);
  g_assert_true (g_file_test (best, G_FILE_TEST_EXISTS));  /* the bert student was trained and saved */
  const char *const off[] = { "teacher.bowidf.cache=false", NULL };
  g_autofree char *b = run_text ("bowidf-direct", bow_recipe_text, off);
  read_metrics (b, &direct);
  g_assert_cmpmem (cached.rank, sizeof cached.rank, direct.rank, sizeof direct.rank);
  g_assert_cmpmem (cached.contrastive, sizeof cached.contrastive, direct.contrastive, sizeof direct.contrastive);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  reg = stsim_registry_new ();
  stsim_registry_scan_default (reg);
  g_autoptr(GError) err = NULL;
  tmpdir = g_dir_make_tmp ("stsim-rank-run-XXXXXX", &err);
  g_assert_no_error (err);
  g_test_add_func ("/rank-distill/run/tiny", test_run);
  g_test_add_func ("/rank-distill/run/bow-idf-teacher", test_bow_idf_teacher);
  int rc = g_test_run ();
  stsim_test_remove_tree (tmpdir);
  g_free (tmpdir);
  stsim_registry_free (reg);
  return rc;
}
