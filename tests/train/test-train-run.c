/* test-train-run: whole training runs on a tiny BERT (tests/fixtures/models/
 * bert-tiny) and a small corpus fixture (tests/train/data/small-corpus.txt).
 *
 *   tiny          the loss falls, dev Spearman is computed at every
 *                 eval_every, best/ is the first strictly best evaluation,
 *                 results.json has the table and the training summary
 *   resume        stopped after 7 steps (state saved at 4), resumed: final
 *                 parameters, Adam moments and best/ bit-identical to an
 *                 uninterrupted run; metrics.jsonl has no repeated steps
 *   kill          the same with a real SIGKILL of a training process
 *   resume-fingerprint  a changed lr, temperature or same-size corpus is
 *                 refused with the keys listed; --allow-changed train.steps
 *                 continues a longer schedule
 *   resume-invalid-state  hand-edited states (step -7, index 1e12, NaN
 *                 parameter, negative Adam v, ...) refused, naming field and file
 *   tool/folder   stsim-run: a fresh run into a used folder refused,
 *                 --overwrite removes the old state before training, --resume
 *                 after a kill before the first save refuses, leftovers of an
 *                 interrupted save removed and reported
 *   tool/lock     stsim-run: a second run into a folder in use exits 1 at once
 *                 naming the first's PID and host; the first completes
 *   nan-skip      a NaN step is skipped and counted; training goes on
 *   nan-stop      NaN steps in a row stop the run with a clear message and
 *                 the last good state on disk
 *   errors        malformed corpus, bad [train] values, untrainable encoder
 *   pooler        training pools as the encoder's pooler says (the deprecated
 *                 [train] pooler agrees or is an error)
 *   lab-disk      keep_state = none and save_best = false: no state/, no
 *                 best/, the final model tested (same table as testing the
 *                 last parameters of a run without DEV evaluations)
 *
 * argv[1], when given, is the program the kill test runs: stsim-run (or the
 * train-run driver when the tools are not built). */
#include <math.h>
#include <signal.h>
#include <string.h>
#include <stdarg.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "stsim/stsim.h"
#include "stsim/stsim-recipe.h"
#include "stsim/stsim-train.h"
#include "stsim/stsim-registry.h"
#include "stsim/stsim-safetensors.h"
#include "train-test-util.h"
#include "test-util.h"
#include "test-util-model.h"

static StsimRegistry *reg;
static char *tmpdir;
static const char *driver;

/* A complete recipe; %s: output folder, corpus, model folder. Threads 1 so
 * that the tests do not fight over the cores (and bit-identity holds at a
 * fixed thread count anyway). */
static const char *base_recipe =
  "[run]\n"
  "seed = 42\n"
  "threads = 1\n"
  "output = %s\n"
  "[train]\n"
  "corpus = %s\n"
  "batch_size = 16\n"
  "steps = 30\n"
  "lr = 1e-3\n"
  "max_len = 32\n"
  "eval_every = 10\n"
  "save_every = 4\n"
  "log_every = 2\n"
  "[encoder]\n"
  "use = bert\n"
  "model = %s\n"
  "mlp_init = random\n"
  "max_len = 64\n"
  "[objective.contrastive]\n"
  "use = contrastive\n"
  "[evaluator.sts]\n"
  "use = sts\n"
  "tasks = STSBenchmark,SICKRelatedness\n"
  "skip_train = true\n";

static char *
corpus_path (void)
{
  const char *src = g_getenv ("G_TEST_SRCDIR");
  return g_build_filename (src ? src : ".", "train", "data", "small-corpus.txt", NULL);
}

static char *
recipe_file (const char *name, const char *out, const char *corpus)
{
  g_autofree char *model = train_test_fixture ("models", "bert-tiny", NULL);
  g_autofree char *def_corpus = corpus_path ();
  g_autofree char *text = g_strdup_printf (base_recipe, out, corpus ? corpus : def_corpus, model);
  g_autofree char *file = g_strdup_printf ("%s.ini", name);
  char *path = g_build_filename (tmpdir, file, NULL);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

/* Loads, instantiates and trains (@allow: --allow-changed keys, or NULL);
 * returns FALSE with @error on failure. */
static gboolean
train_allow (const char *recipe_path, const char *const *overrides, gboolean resume, gint64 stop_after,
             const char *const *allow, GError **error)
{
  g_autoptr(StsimRecipe) recipe = stsim_recipe_load (reg, recipe_path, overrides, NULL, error);
  if (!recipe)
    return FALSE;
  g_autoptr(StsimContext) ctx = stsim_recipe_new_context (recipe);
  StsimTrainOptions o = STSIM_TRAIN_OPTIONS_INIT;
  o.resume = resume;
  o.stop_after_steps = stop_after;
  o.quiet = !g_test_verbose ();
  o.allow_changed = allow;
  return stsim_recipe_instantiate (recipe, ctx, error) && stsim_trainer_run (recipe, ctx, &o, error);
}

static gboolean
train (const char *recipe_path, const char *const *overrides, gboolean resume, gint64 stop_after, GError **error)
{
  return train_allow (recipe_path, overrides, resume, stop_after, NULL, error);
}

static GPtrArray *
read_metrics (const char *out)
{
  g_autofree char *path = g_build_filename (out, "metrics.jsonl", NULL);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  GPtrArray *lines = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);
  g_auto (GStrv) parts = g_strsplit (text, "\n", -1);
  for (gsize i = 0; parts[i]; i++) {
    if (!*parts[i])
      continue;
    g_autoptr(JsonParser) p = json_parser_new ();
    g_assert_true (json_parser_load_from_data (p, parts[i], -1, NULL));
    g_ptr_array_add (lines, json_object_ref (json_node_get_object (json_parser_get_root (p))));
  }
  return lines;
}

static JsonObject *
read_json (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(JsonParser) p = json_parser_new ();
  g_autoptr(GError) err = NULL;
  g_assert_true (json_parser_load_from_file (p, path, &err));
  return json_object_ref (json_node_get_object (json_parser_get_root (p)));
}

static char *
out_dir (const char *name)
{
  return g_build_filename (tmpdir, name, NULL);
}

/* ---- tiny end-to-end run ----------------------------------------------------- */

static void
test_tiny (void)
{
  g_autofree char *out = out_dir ("tiny");
  g_autofree char *recipe = recipe_file ("tiny", out, NULL);
  g_autoptr(GError) err = NULL;
  gint64 t0 = g_get_monotonic_time ();
  g_assert_true (train (recipe, NULL, FALSE, 0, &err));
  g_assert_no_error (err);
  g_test_message ("30 steps + 3 dev + test in %.1f s", (g_get_monotonic_time () - t0) / 1e6);

  g_autoptr(GPtrArray) m = read_metrics (out);
  double first = NAN, last = NAN, best = -2;
  gint64 best_step = -1, n_eval = 0, n_train = 0;
  for (guint i = 0; i < m->len; i++) {
    JsonObject *o = g_ptr_array_index (m, i);
    const char *type = json_object_get_string_member (o, "type");
    if (strcmp (type, "train") == 0) {
      double l = json_object_get_double_member (o, "loss.objective.contrastive");
      g_assert_true (isfinite (l));
      g_assert_true (json_object_has_member (o, "lr"));
      g_assert_true (json_object_has_member (o, "grad_norm"));
      g_assert_true (json_object_has_member (o, "sentences_per_second"));
      if (n_train++ == 0)
        first = l;
      last = l;
    } else {
      g_assert_cmpstr (type, ==, "eval");
      double dev = json_object_get_double_member (o, "dev");
      g_assert_true (dev >= -1 && dev <= 1);
      g_assert_cmpint (json_object_get_int_member (o, "step") % 10, ==, 0);
      if (dev > best) {  /* strictly greater keeps the first of equals */
        best = dev;
        best_step = json_object_get_int_member (o, "step");
      }
      n_eval++;
    }
  }
  g_test_message ("contrastive loss %.4f -> %.4f; best dev %.4f at step %" G_GINT64_FORMAT, first, last, best,
                  best_step);
  g_assert_cmpint (n_train, ==, 15);
  g_assert_cmpint (n_eval, ==, 3);
  g_assert_cmpfloat (last, <, first);

  g_autoptr(JsonObject) res = read_json (out, "results.json");
  JsonObject *tr = json_object_get_object_member (res, "training");
  g_assert_cmpint (json_object_get_int_member (tr, "steps"), ==, 30);
  g_assert_cmpint (json_object_get_int_member (tr, "best_step"), ==, best_step);
  g_assert_cmpfloat (json_object_get_double_member (tr, "best_dev"), ==, best);
  g_assert_cmpstr (json_object_get_string_member (tr, "selected"), ==, "best");
  g_assert_cmpstr (json_object_get_string_member (res, "mode"), ==, "test");
  JsonObject *table = json_object_get_object_member (res, "table");
  g_assert_true (json_object_has_member (table, "STSBenchmark"));
  g_assert_true (json_object_has_member (table, "SICKRelatedness"));
  g_assert_true (json_object_has_member (res, "tasks"));

  const char *files[] = { "best/config.json", "best/model.safetensors", "best/vocab.txt", "resolved.ini",
                          "state/state.safetensors", NULL };
  for (int i = 0; files[i]; i++) {
    g_autofree char *f = g_build_filename (out, files[i], NULL);
    g_assert_true (g_file_test (f, G_FILE_TEST_IS_REGULAR));
  }
  g_autofree char *resolved = g_build_filename (out, "resolved.ini", NULL);
  g_autofree char *rtext = NULL;
  g_assert_true (g_file_get_contents (resolved, &rtext, NULL, NULL));
  g_assert_true (strstr (rtext, "[train]") != NULL);

  /* The test table is of the best checkpoint: re-scoring best/ on STS-B dev
   * gives back the selected dev score exactly. */
  g_autoptr(StsimContext) ctx = stsim_context_new (NULL, 42, 1);
  g_autofree char *best_dir = g_build_filename (out, "best", NULL);
  StsimComponent *enc = stsim_component_new_simple (reg, STSIM_KIND_ENCODER, "bert", "encoder", ctx, &err,
                                                    "model", best_dir, "max_len", "64", NULL);
  g_assert_no_error (err);
  g_assert_true (stsim_context_add (ctx, enc, &err));
  StsimComponent *ev = stsim_component_new_simple (reg, STSIM_KIND_EVALUATOR, "sts", "evaluator", ctx, &err, NULL);
  g_assert_no_error (err);
  g_assert_true (stsim_context_add (ctx, ev, &err));
  g_autoptr(JsonObject) rep = json_object_new ();
  double dev = NAN;
  g_assert_true (stsim_evaluator_evaluate (ev, enc, STSIM_EVAL_DEV, rep, &dev, &err));
  g_assert_cmpfloat (dev, ==, best);
}

/* ---- resume ------------------------------------------------------------------- */

static void
assert_same_file (const char *a, const char *b)
{
  g_autofree char *ta = NULL, *tb = NULL;
  gsize la, lb;
  g_assert_true (g_file_get_contents (a, &ta, &la, NULL));
  g_assert_true (g_file_get_contents (b, &tb, &lb, NULL));
  g_assert_cmpmem (ta, la, tb, lb);
}

/* Parameters and Adam moments of the final states: the tensors of the two
 * state files must be byte-identical (the metadata differs only if the
 * runs differ). */
static void
assert_same_state (const char *out_a, const char *out_b)
{
  g_autofree char *pa = g_build_filename (out_a, "state", "state.safetensors", NULL);
  g_autofree char *pb = g_build_filename (out_b, "state", "state.safetensors", NULL);
  assert_same_file (pa, pb);
  g_autofree char *ba = g_build_filename (out_a, "best", "model.safetensors", NULL);
  g_autofree char *bb = g_build_filename (out_b, "best", "model.safetensors", NULL);
  assert_same_file (ba, bb);
}

static const char *const resume_set[] = { "train.steps=12", "train.eval_every=6", "train.test=false", NULL };

static void
test_resume (void)
{
  g_autofree char *out_a = out_dir ("resume-a");
  g_autofree char *out_b = out_dir ("resume-b");
  g_autofree char *ra = recipe_file ("resume-a", out_a, NULL);
  g_autofree char *rb = recipe_file ("resume-b", out_b, NULL);
  g_autoptr(GError) err = NULL;
  g_assert_true (train (ra, resume_set, FALSE, 0, &err));
  g_assert_no_error (err);
  /* Stops after step 7 without saving: the state on disk is step 4's. */
  g_assert_true (train (rb, resume_set, FALSE, 7, &err));
  g_assert_no_error (err);
  g_autofree char *st = g_build_filename (out_b, "state", "state.safetensors", NULL);
  {
    g_autoptr(StsimSafetensors) r = stsim_safetensors_open (st, &err);
    g_assert_no_error (err);
    g_assert_true (strstr (stsim_safetensors_get_metadata (r, "stsim.train_state"), "\"step\":4,") != NULL);
  }
  g_assert_true (train (rb, resume_set, TRUE, 0, &err));
  g_assert_no_error (err);
  assert_same_state (out_a, out_b);

  /* metrics.jsonl reads like one run: every step once, same losses. */
  g_autoptr(GPtrArray) ma = read_metrics (out_a);
  g_autoptr(GPtrArray) mb = read_metrics (out_b);
  g_assert_cmpuint (ma->len, ==, mb->len);
  for (guint i = 0; i < ma->len; i++) {
    JsonObject *a = g_ptr_array_index (ma, i), *b = g_ptr_array_index (mb, i);
    g_assert_cmpint (json_object_get_int_member (a, "step"), ==, json_object_get_int_member (b, "step"));
    const char *key = json_object_has_member (a, "loss") ? "loss" : "dev";
    g_assert_cmpfloat (json_object_get_double_member (a, key), ==, json_object_get_double_member (b, key));
  }
}

/* A state from another run configuration is refused, not half-loaded. */
static void
test_resume_mismatch (void)
{
  g_autofree char *out = out_dir ("resume-a");
  g_autofree char *r = recipe_file ("resume-a", out, NULL);
  const char *const set[] = { "train.steps=12", "train.batch_size=8", "train.test=false", NULL };
  g_autoptr(GError) err = NULL;
  g_assert_false (train (r, set, TRUE, 0, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_CHECKPOINT);
  g_assert_true (strstr (err->message, "--resume refused") != NULL);
  g_assert_true (strstr (err->message, "train.batch_size: saved 16, now 8") != NULL);
}

/* A state whose JSON nests 100000 deep (json-glib's recursive parser
 * overflowed the stack on it): refused as not a trainer state. */
static void
test_resume_deep_state (void)
{
  g_autofree char *out = out_dir ("resume-a");
  g_autofree char *r = recipe_file ("resume-a", out, NULL);
  g_autofree char *st = g_build_filename (out, "state", "state.safetensors", NULL);
  g_autofree char *deep = g_strnfill (100000, '[');
  stsim_test_rewrite_safetensors (st, st, NULL, "stsim.train_state", deep);
  g_autoptr(GError) err = NULL;
  g_assert_false (train (r, resume_set, TRUE, 0, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_CHECKPOINT);
  g_assert_true (strstr (err->message, "not a stsim trainer state") != NULL);
}

static gint64
state_step (const char *path)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimSafetensors) r = stsim_safetensors_open (path, &err);
  if (!r)
    return -1;
  const char *meta = stsim_safetensors_get_metadata (r, "stsim.train_state");
  const char *s = meta ? strstr (meta, "\"step\":") : NULL;
  return s ? g_ascii_strtoll (s + 7, NULL, 10) : -1;
}

static void
test_kill (void)
{
  if (!driver) {
    g_test_skip ("no stsim-run given");
    return;
  }
  const char *const set[] = { "train.steps=40", "train.eval_every=0", "train.save_every=2",
                              "train.test=false", NULL };
  g_autofree char *out_a = out_dir ("kill-a");
  g_autofree char *out_b = out_dir ("kill-b");
  g_autofree char *ra = recipe_file ("kill-a", out_a, NULL);
  g_autofree char *rb = recipe_file ("kill-b", out_b, NULL);
  g_autoptr(GError) err = NULL;
  g_assert_true (train (ra, set, FALSE, 0, &err));
  g_assert_no_error (err);

  GPtrArray *argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (char *) driver);
  g_ptr_array_add (argv, rb);
  for (int i = 0; set[i]; i++) {
    g_ptr_array_add (argv, "--set");
    g_ptr_array_add (argv, (char *) set[i]);
  }
  g_ptr_array_add (argv, NULL);
  g_autoptr(GSubprocess) proc = g_subprocess_newv ((const char *const *) argv->pdata,
                                                   G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                                                   &err);
  g_assert_no_error (err);
  /* Kill once a mid-run state is on disk (and before the end). */
  g_autofree char *st = g_build_filename (out_b, "state", "state.safetensors", NULL);
  gint64 deadline = g_get_monotonic_time () + 300 * G_USEC_PER_SEC;
  gint64 seen = -1;
  while (g_get_monotonic_time () < deadline) {
    seen = state_step (st);
    if (seen >= 6)
      break;
    g_usleep (20000);
  }
  g_subprocess_send_signal (proc, SIGKILL);
  g_subprocess_wait (proc, NULL, NULL);
  g_assert_true (g_subprocess_get_if_signaled (proc));
  g_assert_cmpint (g_subprocess_get_term_sig (proc), ==, SIGKILL);
  gint64 at_kill = state_step (st);
  g_test_message ("killed with the state at step %" G_GINT64_FORMAT, at_kill);
  g_assert_cmpint (at_kill, >=, 6);
  g_assert_cmpint (at_kill, <, 40);
  g_ptr_array_unref (argv);

  g_assert_true (train (rb, set, TRUE, 0, &err));
  g_assert_no_error (err);
  assert_same_state (out_a, out_b);
}

/* ---- NaN handling -------------------------------------------------------------- */

static gint64
state_int (const char *out, const char *key)
{
  g_autofree char *st = g_build_filename (out, "state", "state.safetensors", NULL);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimSafetensors) r = stsim_safetensors_open (st, &err);
  g_assert_no_error (err);
  g_autoptr(JsonParser) p = json_parser_new ();
  g_assert_true (json_parser_load_from_data (p, stsim_safetensors_get_metadata (r, "stsim.train_state"), -1, NULL));
  JsonObject *o = json_node_get_object (json_parser_get_root (p));
  if (strcmp (key, "adam_t") == 0)
    return json_object_get_int_member (json_array_get_object_element (json_object_get_array_member (o, "stores"), 0),
                                       "adam_t");
  return json_object_get_int_member (o, key);
}

static void
test_nan_skip (void)
{
  g_autofree char *out = out_dir ("nan-skip");
  g_autofree char *r = recipe_file ("nan-skip", out, NULL);
  const char *const set[] = { "train.steps=6", "train.eval_every=0", "train.test=false",
                              "train.debug_nan_steps=3", "train.max_bad_steps=2", NULL };
  g_autoptr(GError) err = NULL;
  g_assert_true (train (r, set, FALSE, 0, &err));
  g_assert_no_error (err);
  g_assert_cmpint (state_int (out, "step"), ==, 6);
  g_assert_cmpint (state_int (out, "bad_total"), ==, 1);
  /* The skipped step made no optimizer update. */
  g_assert_cmpint (state_int (out, "adam_t"), ==, 5);
  g_autoptr(GPtrArray) m = read_metrics (out);
  gint64 skipped = 0;
  for (guint i = 0; i < m->len; i++)
    skipped += json_object_get_int_member_with_default (g_ptr_array_index (m, i), "skipped", 0);
  g_assert_cmpint (skipped, ==, 1);
}

static void
test_nan_stop (void)
{
  g_autofree char *out = out_dir ("nan-stop");
  g_autofree char *r = recipe_file ("nan-stop", out, NULL);
  const char *const set[] = { "train.steps=10", "train.eval_every=0", "train.save_every=0",
                              "train.debug_nan_steps=2,3,4", "train.max_bad_steps=3", NULL };
  g_autoptr(GError) err = NULL;
  g_assert_false (train (r, set, FALSE, 0, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NUMERIC);
  g_test_message ("%s", err->message);
  g_assert_true (strstr (err->message, "step 5") != NULL);
  g_assert_true (strstr (err->message, "max_bad_steps") != NULL);
  g_assert_true (strstr (err->message, "last good state") != NULL);
  /* The kept state: two good updates (steps 0, 1), position after step 4. */
  g_assert_cmpint (state_int (out, "step"), ==, 5);
  g_assert_cmpint (state_int (out, "adam_t"), ==, 2);
}

/* ---- errors --------------------------------------------------------------------- */

static void
test_bad_corpus (void)
{
  g_autofree char *corpus = g_build_filename (tmpdir, "bad-corpus.txt", NULL);
  g_assert_true (g_file_set_contents (corpus, "fine\nstill fine\n\xc3\x28 broken\n", -1, NULL));
  g_autofree char *out = out_dir ("bad-corpus");
  g_autofree char *r = recipe_file ("bad-corpus", out, corpus);
  g_autoptr(GError) err = NULL;
  g_assert_false (train (r, NULL, FALSE, 0, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_ENCODING);
  g_autofree char *where = g_strdup_printf ("%s:3:", corpus);
  g_assert_true (strstr (err->message, where) != NULL);
}

/* Fewer sentences than one batch trained with loss 0 and exit 0 before. */
static void
test_corpus_smaller_than_batch (void)
{
  g_autofree char *corpus = g_build_filename (tmpdir, "five.txt", NULL);
  g_assert_true (g_file_set_contents (corpus, "one\ntwo\nthree\nfour\nfive\n", -1, NULL));
  g_autofree char *out = out_dir ("five");
  g_autofree char *r = recipe_file ("five", out, corpus);
  g_autoptr(GError) err = NULL;
  g_assert_false (train (r, NULL, FALSE, 0, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_RECIPE);
  g_assert_true (strstr (err->message, "batch_size = 16 but the corpus has only 5 examples") != NULL);
}

static void
check_recipe_error (const char *const *set, int domain_code, const char *fragment)
{
  g_autofree char *out = out_dir ("recipe-errors");
  g_autofree char *r = recipe_file ("recipe-errors", out, NULL);
  g_autoptr(GError) err = NULL;
  g_assert_false (train (r, set, FALSE, 0, &err));
  g_assert_error (err, STSIM_ERROR, domain_code);
  if (!strstr (err->message, fragment))
    g_error ("'%s' lacks '%s'", err->message, fragment);
}

static void
test_recipe_errors (void)
{
  const char *const unknown[] = { "train.batchsize=8", NULL };
  check_recipe_error (unknown, STSIM_ERROR_RECIPE, "batch_size");
  const char *const range[] = { "train.batch_size=1", NULL };
  check_recipe_error (range, STSIM_ERROR_RECIPE, "batch_size");
  const char *const head[] = { "train.head=mlp2", NULL };
  check_recipe_error (head, STSIM_ERROR_RECIPE, "head");
  const char *const lr[] = { "train.lr=fast", NULL };
  check_recipe_error (lr, STSIM_ERROR_RECIPE, "lr");
  const char *const evaluator[] = { "train.evaluator=evaluator.nope", NULL };
  check_recipe_error (evaluator, STSIM_ERROR_RECIPE, "evaluator.nope");
  const char *const warmup[] = { "train.warmup=30", NULL };
  check_recipe_error (warmup, STSIM_ERROR_RECIPE, "warmup");
  const char *const maxlen[] = { "train.max_len=100", NULL };
  check_recipe_error (maxlen, STSIM_ERROR_RECIPE, "64 positions");
  const char *const missing[] = { "train.corpus=/nonexistent/corpus.txt", NULL };
  check_recipe_error (missing, STSIM_ERROR_NOT_FOUND, "/nonexistent/corpus.txt");
  const char *const nan[] = { "train.debug_nan_steps=x", NULL };
  check_recipe_error (nan, STSIM_ERROR_RECIPE, "debug_nan_steps");
  /* Refused when the components are created, before the corpus loads (the
   * corpus here does not exist: reaching it would be another error). */
  const char *const enc_len[] = { "encoder.max_len=100", "train.corpus=/nonexistent/corpus.txt", NULL };
  check_recipe_error (enc_len, STSIM_ERROR_INVALID, "max_len = 100 exceeds the 64 positions of the model");
  const char *const mlm[] = { "objective.mlm.use=mlm", "train.corpus=/nonexistent/corpus.txt", NULL };
  check_recipe_error (mlm, STSIM_ERROR_INVALID, "has no masked-LM head, which mlm trains: set mlm_head = true");
}

/* ---- one pooler ------------------------------------------------------------------ */

/* The losses of a short run, one per metrics.jsonl train line. */
static GArray *
run_losses (const char *name, const char *const *extra)
{
  g_autofree char *out = out_dir (name);
  g_autofree char *r = recipe_file (name, out, NULL);
  g_autoptr(GPtrArray) set = g_ptr_array_new ();
  const char *const base[] = { "train.steps=4", "train.eval_every=0", "train.save_every=0", "train.test=false", NULL };
  g_autoptr(GError) err = NULL;
  GArray *losses = g_array_new (FALSE, FALSE, sizeof (double));

  for (int i = 0; base[i]; i++)
    g_ptr_array_add (set, (gpointer) base[i]);
  for (int i = 0; extra && extra[i]; i++)
    g_ptr_array_add (set, (gpointer) extra[i]);
  g_ptr_array_add (set, NULL);
  g_assert_true (train (r, (const char *const *) set->pdata, FALSE, 0, &err));
  g_assert_no_error (err);
  g_autoptr(GPtrArray) m = read_metrics (out);
  for (guint i = 0; i < m->len; i++) {
    double l = json_object_get_double_member (g_ptr_array_index (m, i), "loss");
    g_array_append_val (losses, l);
  }
  g_assert_cmpuint (losses->len, ==, 2);
  return losses;
}

static void
assert_same_losses (GArray *a, GArray *b, gboolean same)
{
  g_assert_cmpuint (a->len, ==, b->len);
  gboolean equal = memcmp (a->data, b->data, a->len * sizeof (double)) == 0;
  g_assert_true (equal == same);
}

/* Training pools as the encoder's pooler says: avg there trains on mean
 * pooling exactly as the deprecated [train] pooler = avg did, and differently
 * from the default (the first token's state, which cls and
 * cls_before_pooler share: the MLP of cls is the head). */
static void
test_pooler (void)
{
  g_autoptr(GArray) enc_avg = run_losses ("pool-enc-avg", (const char *const[]) { "encoder.pooler=avg", NULL });
  g_autoptr(GArray) both_avg = run_losses ("pool-both-avg", (const char *const[]) { "encoder.pooler=avg",
                                                                                     "train.pooler=avg", NULL });
  g_autoptr(GArray) cls_before = run_losses ("pool-clsb", NULL);
  g_autoptr(GArray) cls = run_losses ("pool-cls", (const char *const[]) { "encoder.pooler=cls", NULL });
  g_autoptr(GArray) first_last = run_losses ("pool-fl", (const char *const[]) { "encoder.pooler=avg_first_last",
                                                                                 NULL });
  assert_same_losses (enc_avg, both_avg, TRUE);
  assert_same_losses (cls_before, cls, TRUE);
  assert_same_losses (enc_avg, cls_before, FALSE);
  assert_same_losses (first_last, enc_avg, FALSE);
  assert_same_losses (first_last, cls_before, FALSE);
}

/* The deprecated key is read with a warning and must agree with the
 * encoder's pooler; cls at evaluation needs the MLP trained (head = mlp). */
static void
test_pooler_errors (void)
{
  g_autofree char *out = out_dir ("pool-errors");
  g_autofree char *r = recipe_file ("pool-errors", out, NULL);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimRecipe) ok = stsim_recipe_load (reg, r, (const char *const[]) { "train.pooler=cls", NULL }, NULL,
                                                 &err);
  g_assert_no_error (err);
  g_assert_nonnull (strstr (stsim_recipe_get_warnings (ok)[0], "[train] parameter 'pooler' is deprecated"));
  g_assert_null (stsim_recipe_get_warnings (ok)[1]);

  const char *const disagree[] = { "train.pooler=avg", NULL };
  check_recipe_error (disagree, STSIM_ERROR_RECIPE,
                      "[train] pooler = avg disagrees with [encoder] pooler = cls_before_pooler: training would "
                      "pool avg and evaluation cls_before_pooler");
  const char *const cls_bn[] = { "encoder.pooler=cls", "train.head=bn", NULL };
  check_recipe_error (cls_bn, STSIM_ERROR_RECIPE,
                      "[encoder] pooler = cls evaluates through the MLP (pooler.dense), which only [train] head = mlp "
                      "trains (head = bn here)");
  const char *const disagree_cls[] = { "encoder.pooler=cls", "train.pooler=avg_top2", NULL };
  check_recipe_error (disagree_cls, STSIM_ERROR_RECIPE, "[train] pooler = avg_top2 disagrees with [encoder] pooler = cls");
  /* The student is chosen as the trainer chooses: not an encoder a teacher wraps. */
  const char *const wrapped[] = { "encoder.bow.use=bow-idf", "teacher.t.use=encoder-teacher",
                                  "teacher.t.encoder=encoder.bow", "train.pooler=avg", NULL };
  check_recipe_error (wrapped, STSIM_ERROR_RECIPE, "[train] pooler = avg disagrees with [encoder] pooler = "
                      "cls_before_pooler");
}

/* ---- disk: keep_state and save_best ---------------------------------------------- */

static gboolean
exists_in (const char *out, const char *name)
{
  g_autofree char *p = g_build_filename (out, name, NULL);
  return g_file_test (p, G_FILE_TEST_EXISTS);
}

/* The lab setting: no resume state left and no checkpoint, the final model
 * tested. Its TEST table equals that of a run that tests (and saves) the last
 * parameters because it never evaluates DEV: DEV evaluations change nothing. */
static void
test_lab_disk (void)
{
  g_autofree char *out_a = out_dir ("lab-a");
  g_autofree char *out_b = out_dir ("lab-b");
  g_autofree char *ra = recipe_file ("lab-a", out_a, NULL);
  g_autofree char *rb = recipe_file ("lab-b", out_b, NULL);
  const char *const lab[] = { "train.steps=6", "train.eval_every=3", "train.save_every=2", "train.keep_state=none",
                              "train.save_best=false", NULL };
  const char *const last[] = { "train.steps=6", "train.eval_every=0", "train.save_every=2", NULL };
  g_autoptr(GError) err = NULL;

  g_assert_true (train (ra, lab, FALSE, 0, &err));
  g_assert_no_error (err);
  g_assert_true (train (rb, last, FALSE, 0, &err));
  g_assert_no_error (err);
  g_assert_false (exists_in (out_a, "state"));
  g_assert_false (exists_in (out_a, "best"));
  g_assert_true (exists_in (out_a, "results.json"));
  g_assert_true (exists_in (out_b, "state/state.safetensors"));
  g_assert_true (exists_in (out_b, "best/model.safetensors"));

  g_autoptr(JsonObject) res_a = read_json (out_a, "results.json");
  g_autoptr(JsonObject) res_b = read_json (out_b, "results.json");
  JsonObject *ta = json_object_get_object_member (res_a, "training");
  g_assert_cmpstr (json_object_get_string_member (ta, "selected"), ==, "last");
  g_assert_true (json_object_get_null_member (ta, "model"));
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (res_b, "training"), "selected"), ==,
                   "last");
  JsonObject *tab_a = json_object_get_object_member (res_a, "table");
  JsonObject *tab_b = json_object_get_object_member (res_b, "table");
  g_autoptr(GList) names = json_object_get_members (tab_b);
  g_assert_cmpuint (g_list_length (names), >=, 2);
  for (GList *l = names; l; l = l->next)
    g_assert_cmpfloat (json_object_get_double_member (tab_a, l->data), ==, json_object_get_double_member (tab_b, l->data));

  /* DEV was evaluated (twice) but nothing saved. */
  g_autoptr(GPtrArray) m = read_metrics (out_a);
  guint n_eval = 0;
  for (guint i = 0; i < m->len; i++) {
    JsonObject *o = g_ptr_array_index (m, i);
    if (strcmp (json_object_get_string_member (o, "type"), "eval") == 0) {
      n_eval++;
      g_assert_false (json_object_get_boolean_member (o, "saved"));
    }
  }
  g_assert_cmpuint (n_eval, ==, 2);
}

/* keep_state = none still writes the state during the run, so a killed run
 * resumes; the finished run deletes it. */
static void
test_keep_state_none_resume (void)
{
  g_autofree char *out = out_dir ("keep-none");
  g_autofree char *r = recipe_file ("keep-none", out, NULL);
  const char *const set[] = { "train.steps=6", "train.eval_every=0", "train.save_every=2", "train.test=false",
                              "train.keep_state=none", NULL };
  g_autoptr(GError) err = NULL;
  g_autofree char *st = g_build_filename (out, "state", "state.safetensors", NULL);

  g_assert_true (train (r, set, FALSE, 5, &err));
  g_assert_no_error (err);
  g_assert_cmpint (state_step (st), ==, 4);
  g_assert_true (train (r, set, TRUE, 0, &err));
  g_assert_no_error (err);
  g_assert_false (exists_in (out, "state"));
  g_assert_true (exists_in (out, "best/model.safetensors"));  /* test = false: the last parameters */
}

static void
test_untrainable_encoder (void)
{
  g_autofree char *out = out_dir ("bow");
  g_autofree char *corpus = corpus_path ();
  g_autofree char *text = g_strdup_printf ("[run]\noutput = %s\n[train]\ncorpus = %s\n[encoder]\nuse = bow\n"
                                           "[objective.c]\nuse = contrastive\n[evaluator.sts]\nuse = sts\n",
                                           out, corpus);
  g_autofree char *r = g_build_filename (tmpdir, "bow.ini", NULL);
  g_assert_true (g_file_set_contents (r, text, -1, NULL));
  g_autoptr(GError) err = NULL;
  g_assert_false (train (r, NULL, FALSE, 0, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_RECIPE);
  g_assert_true (strstr (err->message, "no trainable network") != NULL);
}

/* ---- the run fingerprint and the checks of a resumed state ------------------------ */

static void
assert_refused (const char *recipe, const char *const *set, const char *const *allow, const char *const *needles)
{
  g_autoptr(GError) err = NULL;
  g_assert_false (train_allow (recipe, set, TRUE, 0, allow, &err));
  g_assert_nonnull (err);
  g_test_message ("refused: %s", err->message);
  for (int i = 0; needles[i]; i++)
    if (!strstr (err->message, needles[i]))
      g_error ("'%s' not in: %s", needles[i], err->message);
}

/* A copy of the corpus fixture with one line changed: same size, other text. */
static char *
changed_corpus (void)
{
  g_autofree char *src = corpus_path ();
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (src, &text, NULL, NULL));
  g_assert_true (text[0] != 'Z');
  text[0] = 'Z';
  char *path = g_build_filename (tmpdir, "changed-corpus.txt", NULL);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

/* --resume refuses a changed lr, temperature or corpus (of the same size),
 * listing the keys, and leaves resolved.ini alone; --allow-changed
 * train.steps continues a longer schedule. */
static void
test_resume_fingerprint (void)
{
  g_autofree char *out = out_dir ("fingerprint");
  g_autofree char *r = recipe_file ("fingerprint", out, NULL);
  const char *const base[] = { "train.steps=8", "train.eval_every=0", "train.test=false", NULL };
  g_autoptr(GError) err = NULL;
  g_autofree char *st = g_build_filename (out, "state", "state.safetensors", NULL);
  g_autofree char *resolved = g_build_filename (out, "resolved.ini", NULL);
  g_autofree char *before = NULL, *after = NULL;

  g_assert_true (train (r, base, FALSE, 5, &err));  /* state at step 4 */
  g_assert_no_error (err);
  g_assert_cmpint (state_step (st), ==, 4);
  g_assert_true (g_file_get_contents (resolved, &before, NULL, NULL));

  const char *const lr[] = { "train.steps=8", "train.eval_every=0", "train.test=false", "train.lr=2e-3", NULL };
  assert_refused (r, lr, NULL, (const char *const[]) { "--resume refused", "train.lr: saved", "--allow-changed", NULL });
  const char *const temp[] = { "train.steps=8", "train.eval_every=0", "train.test=false",
                               "objective.contrastive.temperature=0.1", NULL };
  assert_refused (r, temp, NULL, (const char *const[]) { "objective.contrastive.temperature", NULL });
  g_autofree char *corpus = changed_corpus ();
  g_autofree char *rc = recipe_file ("fingerprint-corpus", out, corpus);
  assert_refused (rc, base, NULL, (const char *const[]) { "train.corpus", "corpus:", corpus, NULL });
  /* Allowing one key does not allow another. */
  assert_refused (r, lr, (const char *const[]) { "train.steps", NULL }, (const char *const[]) { "train.lr", NULL });
  g_assert_true (g_file_get_contents (resolved, &after, NULL, NULL));
  g_assert_cmpstr (before, ==, after);

  /* A longer schedule, allowed: continues from step 4 to 12. */
  const char *const longer[] = { "train.steps=12", "train.eval_every=0", "train.test=false", NULL };
  assert_refused (r, longer, NULL, (const char *const[]) { "train.steps: saved 8, now 12", NULL });
  g_assert_true (train_allow (r, longer, TRUE, 0, (const char *const[]) { "train.steps", NULL }, &err));
  g_assert_no_error (err);
  g_assert_cmpint (state_step (st), ==, 12);
}

/* The state's "stsim.train_state" JSON with one integer field replaced. */
static char *
edited_meta (const char *st, const char *key, const char *value)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimSafetensors) r = stsim_safetensors_open (st, &err);
  g_assert_no_error (err);
  g_autofree char *pattern = g_strdup_printf ("\"%s\":-?[0-9]+", key);
  g_autofree char *repl = g_strdup_printf ("\"%s\":%s", key, value);
  g_autoptr(GRegex) re = g_regex_new (pattern, 0, 0, &err);
  g_assert_no_error (err);
  const char *meta = stsim_safetensors_get_metadata (r, "stsim.train_state");
  g_assert_true (g_regex_match (re, meta, 0, NULL));
  return g_regex_replace_literal (re, meta, -1, 0, repl, 0, &err);
}

static void
nan_in_param (const char *name, float *x, gsize n)
{
  if (n > 3 && g_str_has_suffix (name, ".param") && g_str_has_prefix (name, "0."))
    x[3] = NAN;
}

static void
negative_adam_v (const char *name, float *x, gsize n)
{
  if (n > 0 && g_str_has_suffix (name, ".adam_v"))
    x[n - 1] = -1e-3f;
}

/* Hand-edited states (step -7, a data index of 1e12, a NaN parameter, a
 * negative Adam second moment, an Adam step count beyond the step) are
 * refused, naming the field or tensor and the file. */
static void
test_resume_invalid_state (void)
{
  g_autofree char *out = out_dir ("invalid-state");
  g_autofree char *r = recipe_file ("invalid-state", out, NULL);
  const char *const set[] = { "train.steps=8", "train.eval_every=0", "train.test=false", NULL };
  g_autoptr(GError) err = NULL;
  g_autofree char *st = g_build_filename (out, "state", "state.safetensors", NULL);
  g_autofree char *good = g_build_filename (tmpdir, "good-state.safetensors", NULL);
  g_assert_true (train (r, set, FALSE, 5, &err));
  g_assert_no_error (err);
  stsim_test_rewrite_safetensors (st, good, NULL, NULL, NULL);

  struct { const char *key, *value; StsimTestTensorEdit edit; const char *needle; } cases[] = {
    { "step", "-7", NULL, "step = -7 is outside" },
    { "index", "1000000000000", NULL, "index = 1000000000000 is outside" },
    { "epoch", "5", NULL, "epoch = 5 is outside" },
    { "adam_t", "99", NULL, "stores[0].adam_t = 99 is outside" },
    { NULL, NULL, nan_in_param, "non-finite value(s) (the first, element 3, is nan)" },
    { NULL, NULL, negative_adam_v, "cannot be negative" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *meta = cases[i].key ? edited_meta (good, cases[i].key, cases[i].value) : NULL;
    stsim_test_rewrite_safetensors (good, st, cases[i].edit, meta ? "stsim.train_state" : NULL, meta);
    assert_refused (r, set, NULL, (const char *const[]) { st, "invalid resume state", cases[i].needle, NULL });
  }
  /* The intact state resumes. */
  stsim_test_rewrite_safetensors (good, st, NULL, NULL, NULL);
  g_assert_true (train (r, set, TRUE, 0, &err));
  g_assert_no_error (err);
  g_assert_cmpint (state_step (st), ==, 8);
}

/* ---- the run folder through stsim-run --------------------------------------------- */

static const char *run_tool;

/* Runs stsim-run RECIPE ARGS... (NULL-terminated); returns its exit status
 * and its stdout and stderr (joined) in *@output. */
static int
stsim_run (char **output, const char *recipe, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (char *) run_tool);
  g_ptr_array_add (argv, (char *) recipe);
  va_list ap;
  va_start (ap, recipe);
  for (const char *a; (a = va_arg (ap, const char *));)
    g_ptr_array_add (argv, (char *) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_autofree char *out = NULL, *err_text = NULL;
  int status = 0;
  g_autoptr(GError) err = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err_text,
                               &status, &err));
  g_assert_no_error (err);
  g_assert_true (WIFEXITED (status));
  *output = g_strconcat (out, err_text, NULL);
  g_test_message ("stsim-run %s ... -> %d:\n%s", recipe, WEXITSTATUS (status), *output);
  return WEXITSTATUS (status);
}

static void
assert_has (const char *text, const char *needle)
{
  if (!strstr (text, needle))
    g_error ("'%s' not in:\n%s", needle, text);
}

#define RUN_SHORT "--set", "train.steps=6", "--set", "train.eval_every=0", "--set", "train.test=false", \
                  "--set", "train.save_every=4"

/* A finished run's folder: a fresh run into it is refused, naming what is
 * there; --overwrite removes the old state before training (a run killed
 * before its first save leaves none), and --resume then refuses instead of
 * continuing the old run; leftovers of an interrupted save are removed at
 * the next start and reported; the flags' misuse is a usage error. */
static void
test_tool_folder (void)
{
  if (!run_tool) {
    g_test_skip ("STSIM_RUN not set");
    return;
  }
  g_autofree char *out = out_dir ("tool-folder");
  g_autofree char *r = recipe_file ("tool-folder", out, NULL);
  g_autofree char *text = NULL;
  g_autofree char *st = g_build_filename (out, "state", "state.safetensors", NULL);

  g_assert_cmpint (stsim_run (&text, r, RUN_SHORT, NULL), ==, 0);
  g_assert_true (g_file_test (st, G_FILE_TEST_EXISTS));
  g_clear_pointer (&text, g_free);
  g_assert_cmpint (stsim_run (&text, r, RUN_SHORT, NULL), ==, 1);
  assert_has (text, "already holds a run");
  assert_has (text, "state/");
  assert_has (text, "metrics.jsonl");
  assert_has (text, "--overwrite");
  assert_has (text, "--resume");

  g_clear_pointer (&text, g_free);
  g_assert_cmpint (stsim_run (&text, r, "--overwrite", "--resume", NULL), ==, 2);
  g_clear_pointer (&text, g_free);
  g_assert_cmpint (stsim_run (&text, r, "--allow-changed", "train.steps", NULL), ==, 2);

  /* Leftovers of a save killed midway. */
  g_autofree char *tmp_state = g_build_filename (out, "state", "state.safetensors.tmp-Ab12Cd", NULL);
  g_autofree char *tmp_best = g_build_filename (out, ".best.tmp-Xy34Zw", NULL);
  g_autofree char *tmp_best_file = g_build_filename (tmp_best, "model.safetensors", NULL);
  g_assert_true (g_file_set_contents (tmp_state, "half a state", -1, NULL));
  g_assert_cmpint (g_mkdir (tmp_best, 0755), ==, 0);
  g_assert_true (g_file_set_contents (tmp_best_file, "half a model", -1, NULL));

  /* --overwrite, then a "kill" after one step, before the first save. */
  g_clear_pointer (&text, g_free);
  g_assert_cmpint (stsim_run (&text, r, RUN_SHORT, "--overwrite", "--stop-after-steps", "1", NULL), ==, 0);
  assert_has (text, "removed 2 temporary files");
  assert_has (text, "--overwrite: removed state/");
  g_assert_false (g_file_test (tmp_state, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (tmp_best, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (st, G_FILE_TEST_EXISTS));

  g_clear_pointer (&text, g_free);
  g_assert_cmpint (stsim_run (&text, r, RUN_SHORT, "--resume", NULL), ==, 1);
  assert_has (text, "nothing to resume");
  g_assert_false (g_file_test (st, G_FILE_TEST_EXISTS));
}

/* Two runs into one folder: the second exits 1 at once naming the first's
 * PID and host; the first completes, its metrics its own. */
static void
test_tool_lock (void)
{
  if (!run_tool) {
    g_test_skip ("STSIM_RUN not set");
    return;
  }
  g_autofree char *out = out_dir ("tool-lock");
  g_autofree char *r = recipe_file ("tool-lock", out, NULL);
  g_autofree char *lock = g_build_filename (out, ".stsim-lock", NULL);
  g_autoptr(GError) err = NULL;
  const char *argv[] = { run_tool, r, RUN_SHORT, "--set", "train.steps=20", NULL };
  g_autoptr(GSubprocess) first = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                                    G_SUBPROCESS_FLAGS_STDERR_SILENCE, &err);
  g_assert_no_error (err);
  gint64 deadline = g_get_monotonic_time () + 120 * G_USEC_PER_SEC;
  while (!g_file_test (lock, G_FILE_TEST_EXISTS) && g_get_monotonic_time () < deadline)
    g_usleep (10000);
  g_assert_true (g_file_test (lock, G_FILE_TEST_EXISTS));

  g_autofree char *text = NULL;
  g_autofree char *pid = g_strdup_printf ("PID %s", g_subprocess_get_identifier (first));
  gint64 t0 = g_get_monotonic_time ();
  int rc = stsim_run (&text, r, RUN_SHORT, NULL);
  gboolean first_running = g_file_test (lock, G_FILE_TEST_EXISTS);
  g_test_message ("second run refused in %.2f s", (g_get_monotonic_time () - t0) / 1e6);
  g_assert_cmpint (rc, ==, 1);
  g_assert_true (first_running);
  assert_has (text, "in use by another run");
  assert_has (text, pid);
  assert_has (text, g_get_host_name ());

  g_assert_true (g_subprocess_wait_check (first, NULL, &err));
  g_assert_no_error (err);
  g_assert_false (g_file_test (lock, G_FILE_TEST_EXISTS));
  g_autoptr(GPtrArray) m = read_metrics (out);
  gint64 prev = 0;
  for (guint i = 0; i < m->len; i++) {
    gint64 step = json_object_get_int_member (g_ptr_array_index (m, i), "step");
    g_assert_cmpint (step, >, prev);
    prev = step;
  }
  g_assert_cmpint (prev, ==, 20);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  driver = argc > 1 ? argv[1] : NULL;
  run_tool = g_getenv ("STSIM_RUN");
  reg = stsim_registry_new ();
  stsim_registry_scan_default (reg);
  tmpdir = g_dir_make_tmp ("stsim-test-train-XXXXXX", NULL);
  g_test_add_func ("/train/run/tiny", test_tiny);
  g_test_add_func ("/train/run/resume", test_resume);
  g_test_add_func ("/train/run/resume-mismatch", test_resume_mismatch);
  g_test_add_func ("/train/run/resume-deep-state", test_resume_deep_state);
  g_test_add_func ("/train/run/resume-fingerprint", test_resume_fingerprint);
  g_test_add_func ("/train/run/resume-invalid-state", test_resume_invalid_state);
  g_test_add_func ("/train/tool/folder", test_tool_folder);
  g_test_add_func ("/train/tool/lock", test_tool_lock);
  g_test_add_func ("/train/run/kill", test_kill);
  g_test_add_func ("/train/run/nan-skip", test_nan_skip);
  g_test_add_func ("/train/run/nan-stop", test_nan_stop);
  g_test_add_func ("/train/errors/bad-corpus", test_bad_corpus);
  g_test_add_func ("/train/errors/corpus-smaller-than-batch", test_corpus_smaller_than_batch);
  g_test_add_func ("/train/errors/recipe", test_recipe_errors);
  g_test_add_func ("/train/errors/untrainable-encoder", test_untrainable_encoder);
  g_test_add_func ("/train/run/pooler", test_pooler);
  g_test_add_func ("/train/errors/pooler", test_pooler_errors);
  g_test_add_func ("/train/run/lab-disk", test_lab_disk);
  g_test_add_func ("/train/run/keep-state-none-resume", test_keep_state_none_resume);
  int rc = g_test_run ();
  stsim_test_remove_tree (tmpdir);
  g_free (tmpdir);
  stsim_registry_free (reg);
  return rc;
}
