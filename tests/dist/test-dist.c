/* test-dist: data-parallel training with MPI (docs/distributed.md), run as
 * `mpirun --allow-run-as-root --oversubscribe -np 2` of the dist-run driver
 * (argv[1]) next to a one-process run of the same recipe.
 *
 *   equivalence/...  one step of 2 ranks x 32 sentences against 1 process x
 *                   64 (dropout off in a copy of the tiny BERT, so that both
 *                   runs draw no noise): the logged losses, the gradients
 *                   (Adam's first moment m = (1-b1)·g after one step, in the
 *                   state file) and the updated parameters agree within the
 *                   bounds below; the state says it was written by 2 ranks
 *     contrastive     SimCSE MLP head + InfoNCE
 *     rank-distill    + ListNet from an encoder-teacher + consistency
 *     listmle-mlm     ListMLE + the mlm objective (its per-token mean over
 *                     GLOBAL counts) + DiffCSE's BN head (statistics over
 *                     both ranks' rows)
 *     diff-predict    contrastive + diff-predict (weight 0.5) with the BN
 *                     head: generator argmax, pads included, conditioned on
 *                     z; every rank masks the global batch, runs generator
 *                     and discriminator on its rows, divides by the global
 *                     position count; the discriminator and electra-head
 *                     stores are compared like the others
 *     diff-predict-sample  the same with sampling (T = 1: each rank takes
 *                     its rows' draws at their places in the batch's
 *                     sequence), pads excluded, conditioned on h
 *   overlap/...     the gradient all-reduce sent in buckets during the
 *                   backward (allreduce_bucket_mb = 0.002: ~500 floats,
 *                   about 200 buckets) against the exchange after the
 *                   backward (0): 2 steps of 24 sentences, contrastive + mlm (its decoder
 *                   is the word-embedding matrix: a parameter used first and
 *                   last in the step) + diff-predict's stores + the BN head,
 *                   dropout on; every store's param, adam_m and adam_v and
 *                   the BN running statistics equal bit for bit
 *     2-ranks, 3-ranks  (3: the sum's association order matters)
 *     early-caught    buckets sent after their LAST use instead of their
 *                   first (STSIM_DEBUG_GRAD_SYNC=last-use): the guard stops
 *                   the job, naming the store
 *     early-differs   the same without the guard: the parameters differ
 *                   from the blocking run's (so the comparison above can
 *                   fail)
 *   resume          2 ranks stopped after 3 steps (state at 2) and resumed
 *                   end bit-identical to an uninterrupted 2-rank run
 *   dropout/...     dropout ON (the tiny BERT as shipped), 10 steps of 12
 *                   sentences on 1, 2 and 3 ranks: every loss term of every
 *                   step within 1e-5 relative, final parameters within 1e-5
 *                   in norm per store and 0.1 lr in the largest weight
 *                   (dropout is keyed by the rows' places in the whole
 *                   batch, so the ranks draw one process's masks)
 *     contrastive, rank-distill (ListNet), mlm-diff-predict (generator
 *                   dropout, sampling, BN head)
 *     resume        a 2-rank run stopped after its step-5 state, resumed on
 *                   3 ranks, and another resumed in one process: steps 6-10
 *                   and the final parameters of the one-process run
 *   killed-rank     rank 1 SIGKILLs itself after 2 steps: the job ends
 *                   promptly, non-zero, with a message naming the dead rank
 *   failed-rank     rank 1 fails with an error: its message, then the job
 *                   stops (no rank left waiting in a collective)
 *   too-few         a batch that cannot give every rank a sentence: error
 *   stsim-run       `mpirun -np 2 stsim-run RECIPE` (argv[2]) trains; the
 *                   plan is printed once (rank 0)
 *
 * Bounds. The two runs compute the same sums in different orders (GEMMs
 * over 64 rows vs two of 32, gradient blocks added by the all-reduce), so
 * they agree to float rounding, not bit for bit:
 *   losses            |l2 - l1| <= 1e-5 |l1| + 1e-6
 *   gradients         max |m2 - m1| <= 1e-4 max |m1|     (per store)
 *   parameters        the first Adam step moves a weight by
 *                     u = lr·c·m/(sqrt(v) + eps) = lr·g/(|g| + 3.2e-7), which
 *                     is steep at g ~ 0: a gradient difference of 1e-8 can
 *                     change a near-zero gradient's step by a few % of lr.
 *                     So each run's own m and v give its step, and the
 *                     weights before the step, p + u, must agree:
 *                     max |(p2 + u2) - (p1 + u1)| <= 1e-6; and no weight may
 *                     differ by more than lr (a disagreement on a clearly
 *                     non-zero gradient would show as ~2 lr). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "stsim/stsim.h"
#include "stsim/stsim-dist.h"
#include "stsim/stsim-safetensors.h"
#include "test-util.h"

static char *tmpdir, *driver, *mpirun, *model_nodrop, *stsim_run;
static const double LR = 1e-3;

typedef struct {
  double loss_rel, grad_rel, param_abs;
} Diffs;

static Diffs worst;

static char *
fixture (const char *first, ...)
{
  const char *src = g_getenv ("G_TEST_SRCDIR");
  char *path = g_build_filename (src ? src : ".", first, NULL);
  va_list ap;
  va_start (ap, first);
  for (const char *part; (part = va_arg (ap, const char *));) {
    char *next = g_build_filename (path, part, NULL);
    g_free (path);
    path = next;
  }
  va_end (ap);
  return path;
}

static gboolean
need_mpi (void)
{
  if (!stsim_dist_compiled ()) {
    g_test_skip ("stsim was built without MPI (meson -Dmpi=enabled needs libopenmpi-dev)");
    return FALSE;
  }
  if (!mpirun) {
    g_test_skip ("mpirun is not installed (Debian: openmpi-bin)");
    return FALSE;
  }
  return TRUE;
}

/* A copy of the tiny BERT without dropout, for the one-step equivalence
 * cases: their gradient bounds are tight, and dropout has its own cases
 * (dropout/...). */
static void
make_model_nodrop (void)
{
  g_autofree char *src = fixture ("fixtures", "models", "bert-tiny", NULL);
  model_nodrop = g_build_filename (tmpdir, "bert-tiny-nodrop", NULL);
  g_assert_cmpint (g_mkdir_with_parents (model_nodrop, 0755), ==, 0);
  const char *files[] = { "model.safetensors", "vocab.txt" };
  for (gsize i = 0; i < G_N_ELEMENTS (files); i++) {
    g_autofree char *a = g_build_filename (src, files[i], NULL);
    g_autofree char *b = g_build_filename (model_nodrop, files[i], NULL);
    g_autofree char *data = NULL;
    gsize len = 0;
    g_assert_true (g_file_get_contents (a, &data, &len, NULL));
    g_assert_true (g_file_set_contents (b, data, len, NULL));
  }
  g_autofree char *cfg = g_build_filename (src, "config.json", NULL);
  g_autoptr(JsonParser) p = json_parser_new ();
  g_assert_true (json_parser_load_from_file (p, cfg, NULL));
  JsonObject *o = json_node_get_object (json_parser_get_root (p));
  json_object_set_double_member (o, "hidden_dropout_prob", 0.0);
  json_object_set_double_member (o, "attention_probs_dropout_prob", 0.0);
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, json_parser_get_root (p));
  g_autofree char *out = g_build_filename (model_nodrop, "config.json", NULL);
  g_assert_true (json_generator_to_file (gen, out, NULL));
}

/* %s output, corpus, model; %d steps, save_every; %s head, encoder extras, sections. */
static const char *recipe_fmt =
  "[run]\nseed = 7\nthreads = 1\noutput = %s\n"
  "[train]\ncorpus = %s\nbatch_size = 64\nsteps = %d\nsave_every = %d\nlr = 1e-3\nmax_len = 32\n"
  "eval_every = 0\ntest = false\nlog_every = 1\nhead = %s\n"
  "[encoder]\nuse = bert\nmodel = %s\nmlp_init = random\n%s"
  "[objective.contrastive]\nuse = contrastive\n%s";

static char *
write_recipe (const char *name, const char *out, int steps, int save_every, const char *head, const char *enc_extra,
              const char *sections)
{
  g_autofree char *corpus = fixture ("train", "data", "small-corpus.txt", NULL);
  g_autofree char *text = g_strdup_printf (recipe_fmt, out, corpus, steps, save_every, head, model_nodrop,
                                           enc_extra, sections);
  g_autofree char *file = g_strdup_printf ("%s.ini", name);
  char *path = g_build_filename (tmpdir, file, NULL);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

/* Runs the driver on @np ranks (1: a plain process); returns the exit
 * status, stderr in *err_out, wall seconds in *secs. */
static int
run_program (const char *program, int np, const char *recipe, const char *const *extra, char **out_out,
             char **err_out, double *secs);

static int
run (int np, const char *recipe, const char *const *extra, char **err_out, double *secs)
{
  return run_program (driver, np, recipe, extra, NULL, err_out, secs);
}

static int
run_program (const char *program, int np, const char *recipe, const char *const *extra, char **out_out,
             char **err_out, double *secs)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *np_text = g_strdup_printf ("%d", np);
  if (np > 1) {
    g_ptr_array_add (argv, mpirun);
    g_ptr_array_add (argv, "--allow-run-as-root");
    g_ptr_array_add (argv, "--oversubscribe");
    g_ptr_array_add (argv, "-np");
    g_ptr_array_add (argv, np_text);
  }
  g_ptr_array_add (argv, (gpointer) program);
  g_ptr_array_add (argv, (gpointer) recipe);
  for (gsize i = 0; extra && extra[i]; i++)
    g_ptr_array_add (argv, (gpointer) extra[i]);
  g_ptr_array_add (argv, NULL);
  g_autofree char *out = NULL, *err = NULL;
  int status = 0;
  g_autoptr(GError) error = NULL;
  gint64 t0 = g_get_monotonic_time ();
  /* Under -Db_sanitize=address: Open MPI keeps allocations until exit and
   * unloads its plugins in MPI_Finalize, so LeakSanitizer reports them with
   * no module to suppress by. Ranks under mpirun therefore run without the
   * leak check (memory errors and UBSan stay on); the one-process runs keep
   * it. (A manual run with fast_unwind_on_malloc=0 showed no leak with an
   * stsim frame outside MPI_Init; docs/distributed.md.) */
  g_auto (GStrv) envp = g_get_environ ();
  if (np > 1) {
    const char *asan = g_environ_getenv (envp, "ASAN_OPTIONS");
    g_autofree char *v = g_strdup_printf ("%s%sdetect_leaks=0", asan ? asan : "", asan && *asan ? ":" : "");
    envp = g_environ_setenv (envp, "ASAN_OPTIONS", v, TRUE);
  }
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, envp, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                               &error));
  g_assert_no_error (error);
  if (secs)
    *secs = (g_get_monotonic_time () - t0) / 1e6;
  if (g_test_verbose () || !WIFEXITED (status) || WEXITSTATUS (status) != 0)
    g_test_message ("%s%s", out ? out : "", err ? err : "");
  if (err_out)
    *err_out = g_steal_pointer (&err);
  if (out_out)
    *out_out = g_steal_pointer (&out);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

static JsonObject *
last_train_line (const char *out)
{
  g_autofree char *path = g_build_filename (out, "metrics.jsonl", NULL);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  JsonObject *last = NULL;
  for (gsize i = 0; lines[i]; i++) {
    if (!*lines[i])
      continue;
    g_autoptr(JsonParser) p = json_parser_new ();
    g_assert_true (json_parser_load_from_data (p, lines[i], -1, NULL));
    JsonObject *o = json_node_get_object (json_parser_get_root (p));
    if (g_strcmp0 (json_object_get_string_member_with_default (o, "type", ""), "train") == 0) {
      g_clear_pointer (&last, json_object_unref);
      last = json_object_ref (o);
    }
  }
  g_assert_nonnull (last);
  return last;
}

static JsonObject *
state_meta (StsimSafetensors *r)
{
  const char *meta = stsim_safetensors_get_metadata (r, "stsim.train_state");
  g_assert_nonnull (meta);
  g_autoptr(JsonParser) p = json_parser_new ();
  g_assert_true (json_parser_load_from_data (p, meta, -1, NULL));
  return json_object_ref (json_node_get_object (json_parser_get_root (p)));
}

static StsimSafetensors *
open_state (const char *out)
{
  g_autofree char *path = g_build_filename (out, "state", "state.safetensors", NULL);
  g_autoptr(GError) err = NULL;
  StsimSafetensors *r = stsim_safetensors_open (path, &err);
  g_assert_no_error (err);
  return r;
}

static float *
state_f32 (StsimSafetensors *r, const char *name, gsize *n)
{
  g_autoptr(GError) err = NULL;
  float *x = stsim_safetensors_dup_f32 (r, name, n, &err);
  g_assert_no_error (err);
  return x;
}

/* Largest difference between the two runs' weights before their first
 * AdamW step (p + u, u from the run's own m and v; weight decay 0). */
static double
initial_weights_diff (StsimSafetensors *a, StsimSafetensors *b, guint i, const char *store)
{
  const double c = sqrt (1 - 0.999) / (1 - 0.9), eps = 1e-8;
  g_autofree char *kp = g_strdup_printf ("%u.%s.param", i, store);
  g_autofree char *km = g_strdup_printf ("%u.%s.adam_m", i, store);
  g_autofree char *kv = g_strdup_printf ("%u.%s.adam_v", i, store);
  gsize n = 0, n2 = 0;
  g_autofree float *p1 = state_f32 (a, kp, &n), *m1 = state_f32 (a, km, &n2), *v1 = state_f32 (a, kv, &n2);
  g_autofree float *p2 = state_f32 (b, kp, &n2), *m2 = state_f32 (b, km, &n2), *v2 = state_f32 (b, kv, &n2);
  double worst_d = 0;
  for (gsize k = 0; k < n; k++) {
    double u1 = LR * c * m1[k] / (sqrt (v1[k]) + eps), u2 = LR * c * m2[k] / (sqrt (v2[k]) + eps);
    worst_d = MAX (worst_d, fabs ((p2[k] + u2) - (p1[k] + u1)));
  }
  return worst_d;
}

/* Largest |a - b| and largest |a| of one state tensor of both runs. */
static void
tensor_diff (StsimSafetensors *a, StsimSafetensors *b, const char *name, double *max_diff, double *max_abs)
{
  g_autoptr(GError) err = NULL;
  gsize na = 0, nb = 0;
  g_autofree float *x = stsim_safetensors_dup_f32 (a, name, &na, &err);
  g_assert_no_error (err);
  g_autofree float *y = stsim_safetensors_dup_f32 (b, name, &nb, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (na, ==, nb);
  *max_diff = *max_abs = 0;
  for (gsize i = 0; i < na; i++) {
    g_assert_true (isfinite (x[i]) && isfinite (y[i]));
    *max_diff = MAX (*max_diff, fabs ((double) x[i] - y[i]));
    *max_abs = MAX (*max_abs, fabs ((double) x[i]));
  }
}

/* Runs @recipe once on one process and once on 2 ranks and checks that
 * they agree (see the bounds at the top). */
static void
check_equivalence (const char *name, const char *head, const char *enc_extra, const char *sections)
{
  g_autofree char *n1 = g_strdup_printf ("%s-1", name), *n2 = g_strdup_printf ("%s-2", name);
  g_autofree char *out1 = g_build_filename (tmpdir, n1, NULL), *out2 = g_build_filename (tmpdir, n2, NULL);
  g_autofree char *r1 = write_recipe (n1, out1, 1, 0, head, enc_extra, sections);
  g_autofree char *r2 = write_recipe (n2, out2, 1, 0, head, enc_extra, sections);
  g_autofree char *err1 = NULL, *err2 = NULL;
  double s1, s2;
  g_assert_cmpint (run (1, r1, NULL, &err1, &s1), ==, 0);
  int rc = run (2, r2, NULL, &err2, &s2);
  g_assert_cmpint (rc, ==, 0);
  g_assert_nonnull (strstr (err2, "data-parallel: 2 ranks"));

  /* Losses: the total and every term. */
  g_autoptr(JsonObject) m1 = last_train_line (out1), m2 = last_train_line (out2);
  g_autoptr(GList) keys = json_object_get_members (m1);
  guint n_terms = 0;
  for (GList *l = keys; l; l = l->next) {
    const char *k = l->data;
    if (strcmp (k, "loss") != 0 && !g_str_has_prefix (k, "loss."))
      continue;
    g_assert_true (json_object_has_member (m2, k));
    double a = json_object_get_double_member (m1, k), b = json_object_get_double_member (m2, k);
    g_test_message ("%s %s: 1 process %.9g, 2 ranks %.9g", name, k, a, b);
    g_assert_cmpfloat (fabs (a - b), <=, 1e-5 * fabs (a) + 1e-6);
    worst.loss_rel = MAX (worst.loss_rel, fabs (a - b) / MAX (fabs (a), 1e-30));
    n_terms++;
  }
  g_assert_cmpuint (n_terms, >=, 2);

  /* Gradients (m after one step) and parameters, store by store. */
  g_autoptr(StsimSafetensors) a = open_state (out1);
  g_autoptr(StsimSafetensors) b = open_state (out2);
  g_autoptr(JsonObject) ma = state_meta (a), mb = state_meta (b);
  g_assert_cmpint (json_object_get_int_member (ma, "world_size"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (mb, "world_size"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (mb, "step"), ==, 1);
  JsonArray *stores = json_object_get_array_member (ma, "stores");
  for (guint i = 0; i < json_array_get_length (stores); i++) {
    const char *sname = json_object_get_string_member (json_array_get_object_element (stores, i), "name");
    g_autofree char *km = g_strdup_printf ("%u.%s.adam_m", i, sname);
    g_autofree char *kp = g_strdup_printf ("%u.%s.param", i, sname);
    double dm, am, dp, ap;
    tensor_diff (a, b, km, &dm, &am);
    tensor_diff (a, b, kp, &dp, &ap);
    double d0 = initial_weights_diff (a, b, i, sname);
    g_test_message ("%s store %s: gradient max|diff| %.3g (max|m| %.3g, relative %.3g); parameter max|diff| %.3g "
                    "(= %.3g lr); weights before the step max|diff| %.3g", name, sname, dm, am, am > 0 ? dm / am : 0,
                    dp, dp / LR, d0);
    g_assert_cmpfloat (am, >, 0);  /* a step that moved nothing would prove nothing */
    g_assert_cmpfloat (dm, <=, 1e-4 * am);
    g_assert_cmpfloat (d0, <=, 1e-6);
    g_assert_cmpfloat (dp, <=, LR);
    worst.grad_rel = MAX (worst.grad_rel, dm / am);
    worst.param_abs = MAX (worst.param_abs, dp);
  }
  g_test_message ("%s: 1 process %.2f s, 2 ranks %.2f s (both with start-up)", name, s1, s2);
}

static void
test_contrastive (void)
{
  if (need_mpi ())
    check_equivalence ("contrastive", "mlp", "", "");
}

static char *
teacher_sections (const char *form, const char *consistency)
{
  g_autofree char *teacher = fixture ("fixtures", "models", "bert-tiny", NULL);
  g_autofree char *cache = g_build_filename (tmpdir, "teacher-cache", NULL);
  return g_strdup_printf ("[objective.rank]\nuse = rank-distill\nteachers = teacher.a\nform = %s\n"
                          "consistency_weight = %s\n"
                          "[teacher.a]\nuse = encoder-teacher\nmodel = %s\ncache_dir = %s\n",
                          form, consistency, teacher, cache);
}

static void
test_rank_distill (void)
{
  if (!need_mpi ())
    return;
  g_autofree char *sections = teacher_sections ("listnet", "0.1");
  check_equivalence ("rank-distill", "mlp", "", sections);
}

static void
test_listmle_mlm_bn (void)
{
  if (!need_mpi ())
    return;
  g_autofree char *teach = teacher_sections ("listmle", "0");
  g_autofree char *sections = g_strdup_printf ("%s[objective.mlm]\nuse = mlm\nweight = 0.1\n", teach);
  check_equivalence ("listmle-mlm-bn", "bn", "mlm_head = true\n", sections);
}

/* The generator runs without dropout here (dropout/mlm-diff-predict has
 * it on); the discriminator is a copy of the dropout-free student. */
static char *
diff_sections (const char *extra)
{
  g_autofree char *gen = fixture ("fixtures", "models", "distilbert-tiny", NULL);
  return g_strdup_printf ("[objective.diff]\nuse = diff-predict\nweight = 0.5\ngenerator = %s\n"
                          "masking_ratio = 0.3\ngenerator_dropout = false\n%s", gen, extra);
}

static void
test_diff_predict (void)
{
  if (!need_mpi ())
    return;
  g_autofree char *sections = diff_sections ("");
  check_equivalence ("diff-predict", "bn", "", sections);
}

static void
test_diff_predict_sample (void)
{
  if (!need_mpi ())
    return;
  g_autofree char *sections = diff_sections ("sampling = sample\ntemperature = 1\npads = exclude\ncondition = pre\n");
  check_equivalence ("diff-predict-sample", "bn", "", sections);
}

/* ---- resume ---------------------------------------------------------------------------- */

static void
test_resume (void)
{
  if (!need_mpi ())
    return;
  g_autofree char *out_a = g_build_filename (tmpdir, "resume-a", NULL);
  g_autofree char *out_b = g_build_filename (tmpdir, "resume-b", NULL);
  const char *mlm = "[objective.mlm]\nuse = mlm\nweight = 0.1\n";
  g_autofree char *ra = write_recipe ("resume-a", out_a, 6, 2, "bn", "mlm_head = true\n", mlm);
  g_autofree char *rb = write_recipe ("resume-b", out_b, 6, 2, "bn", "mlm_head = true\n", mlm);
  g_assert_cmpint (run (2, ra, NULL, NULL, NULL), ==, 0);
  const char *stop[] = { "--stop-after-steps", "3", NULL };
  g_assert_cmpint (run (2, rb, stop, NULL, NULL), ==, 0);
  const char *res[] = { "--resume", NULL };
  g_assert_cmpint (run (2, rb, res, NULL, NULL), ==, 0);

  g_autoptr(StsimSafetensors) a = open_state (out_a);
  g_autoptr(StsimSafetensors) b = open_state (out_b);
  g_autoptr(JsonObject) ma = state_meta (a), mb = state_meta (b);
  g_assert_cmpint (json_object_get_int_member (mb, "step"), ==, 6);
  JsonArray *stores = json_object_get_array_member (ma, "stores");
  const char *parts[] = { "param", "adam_m", "adam_v" };
  for (guint i = 0; i < json_array_get_length (stores); i++)
    for (gsize k = 0; k < G_N_ELEMENTS (parts); k++) {
      const char *sname = json_object_get_string_member (json_array_get_object_element (stores, i), "name");
      g_autofree char *key = g_strdup_printf ("%u.%s.%s", i, sname, parts[k]);
      double d, m;
      tensor_diff (a, b, key, &d, &m);
      g_assert_cmpfloat (d, ==, 0.0);
    }
  const char *bn[] = { "head.bn1.running_mean", "head.bn1.running_var", "head.bn2.running_mean", "head.bn2.running_var" };
  for (gsize k = 0; k < G_N_ELEMENTS (bn); k++) {
    double d, m;
    tensor_diff (a, b, bn[k], &d, &m);
    g_assert_cmpfloat (d, ==, 0.0);
  }
}

/* ---- overlapped gradient all-reduce -------------------------------------------------- */

/* Runs the overlap recipe on @np ranks with @bucket_mb; the exit status,
 * stderr in *err_out. @fault sets STSIM_DEBUG_GRAD_SYNC (NULL: unset). */
static int
run_overlap (const char *name, int np, const char *bucket_mb, const char *fault, char **out_dir, char **err_out)
{
  g_autofree char *gen = fixture ("fixtures", "models", "distilbert-tiny", NULL);
  g_autofree char *sections = g_strdup_printf ("[objective.mlm]\nuse = mlm\nweight = 0.1\n"
                                               "[objective.diff]\nuse = diff-predict\nweight = 0.5\ngenerator = %s\n"
                                               "masking_ratio = 0.3\n", gen);
  *out_dir = g_build_filename (tmpdir, name, NULL);
  g_autofree char *recipe = write_recipe (name, *out_dir, 2, 0, "bn", "mlm_head = true\n", sections);
  g_autofree char *set = g_strdup_printf ("train.allreduce_bucket_mb=%s", bucket_mb);
  /* The model with dropout: both runs draw the same masks. */
  g_autofree char *model = fixture ("fixtures", "models", "bert-tiny", NULL);
  g_autofree char *set_model = g_strdup_printf ("encoder.model=%s", model);
  /* 24 sentences: 12 or 8 per rank, enough rows for every op, quick. */
  const char *extra[] = { "--set", set, "--set", set_model, "--set", "train.batch_size=24", NULL };
  if (fault)
    g_setenv ("STSIM_DEBUG_GRAD_SYNC", fault, TRUE);
  int rc = run (np, recipe, extra, err_out, NULL);
  g_unsetenv ("STSIM_DEBUG_GRAD_SYNC");
  return rc;
}

/* Largest |difference| over every state tensor of the two runs' states
 * (the stores' param, adam_m, adam_v and the BN running statistics). */
static double
state_max_diff (const char *out_a, const char *out_b)
{
  g_autoptr(StsimSafetensors) a = open_state (out_a);
  g_autoptr(StsimSafetensors) b = open_state (out_b);
  g_autoptr(JsonObject) ma = state_meta (a);
  JsonArray *stores = json_object_get_array_member (ma, "stores");
  g_assert_cmpuint (json_array_get_length (stores), >=, 4);   /* student, head, discriminator, electra head */
  const char *parts[] = { "param", "adam_m", "adam_v" };
  double worst_d = 0, d, m;
  for (guint i = 0; i < json_array_get_length (stores); i++)
    for (gsize k = 0; k < G_N_ELEMENTS (parts); k++) {
      const char *sname = json_object_get_string_member (json_array_get_object_element (stores, i), "name");
      g_autofree char *key = g_strdup_printf ("%u.%s.%s", i, sname, parts[k]);
      tensor_diff (a, b, key, &d, &m);
      g_assert_cmpfloat (m, >, 0);
      worst_d = MAX (worst_d, d);
    }
  const char *bn[] = { "head.bn1.running_mean", "head.bn1.running_var", "head.bn2.running_mean", "head.bn2.running_var" };
  for (gsize k = 0; k < G_N_ELEMENTS (bn); k++) {
    tensor_diff (a, b, bn[k], &d, &m);
    worst_d = MAX (worst_d, d);
  }
  return worst_d;
}

/* The run with the exchange after the backward on @np ranks (made once). */
static const char *
blocking_run (int np)
{
  static char *out[4];
  g_assert_true (np >= 2 && np <= 3);
  if (!out[np]) {
    g_autofree char *name = g_strdup_printf ("overlap-%d-blocking", np), *err = NULL;
    g_assert_cmpint (run_overlap (name, np, "0", NULL, &out[np], &err), ==, 0);
    g_assert_nonnull (strstr (err, "after the backward"));
  }
  return out[np];
}

static void
check_overlap (int np)
{
  if (!need_mpi ())
    return;
  g_autofree char *nb = g_strdup_printf ("overlap-%d-buckets", np);
  g_autofree char *out_b = NULL, *err_b = NULL;
  const char *out_a = blocking_run (np);
  g_assert_cmpint (run_overlap (nb, np, "0.002", NULL, &out_b, &err_b), ==, 0);
  const char *line = strstr (err_b, "gradient all-reduce: ");
  g_assert_nonnull (line);
  g_assert_cmpint (atoi (line + strlen ("gradient all-reduce: ")), >=, 50);
  g_assert_cmpfloat (state_max_diff (out_a, out_b), ==, 0.0);
}

static void
test_overlap_2 (void)
{
  check_overlap (2);
}

static void
test_overlap_3 (void)
{
  check_overlap (3);
}

static void
test_overlap_early_caught (void)
{
  if (!need_mpi ())
    return;
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_overlap ("overlap-early-caught", 2, "0.002", "last-use", &out, &err), !=, 0);
  g_assert_nonnull (strstr (err, "after its all-reduce bucket was sent"));
  g_assert_nonnull (strstr (err, "store 'bert'"));
}

static void
test_overlap_early_differs (void)
{
  if (!need_mpi ())
    return;
  g_autofree char *out_b = NULL, *err_b = NULL;
  g_assert_cmpint (run_overlap ("overlap-early-b", 2, "0.002", "last-use-unguarded", &out_b, &err_b), ==, 0);
  double d = state_max_diff (blocking_run (2), out_b);
  g_test_message ("buckets sent after their last use: state max|diff| %.3g", d);
  g_assert_cmpfloat (d, >, 0.0);
}

/* ---- dropout on: the same run on 1, 2 and 3 ranks -------------------------------------- */

/* %s output, corpus, head, model, encoder extras, sections. Dropout is on
 * (the tiny BERT's 0.1 and 0.1); 10 steps of 12 sentences, state at 5. The
 * learning rate is small: Adam moves every weight by about lr per step
 * whatever its gradient, so the rounding differences of the all-reduce
 * grow with lr from step to step (at 1e-3 a resumed run's losses reached
 * 1.3e-5 relative by step 10 with OPENBLAS_CORETYPE=Haswell). */
static const double DROP_LR = 1e-4;
static const char *drop_fmt =
  "[run]\nseed = 11\nthreads = 1\noutput = %s\n"
  "[train]\ncorpus = %s\nbatch_size = 12\nsteps = 10\nsave_every = 5\nlr = 1e-4\nmax_len = 16\n"
  "eval_every = 0\ntest = false\nlog_every = 1\nhead = %s\n"
  "[encoder]\nuse = bert\nmodel = %s\nmlp_init = random\n%s"
  "[objective.contrastive]\nuse = contrastive\n%s";

static char *
write_drop_recipe (const char *name, const char *head, const char *enc_extra, const char *sections, char **out)
{
  g_autofree char *corpus = fixture ("train", "data", "small-corpus.txt", NULL);
  g_autofree char *model = fixture ("fixtures", "models", "bert-tiny", NULL);
  *out = g_build_filename (tmpdir, name, NULL);
  g_autofree char *text = g_strdup_printf (drop_fmt, *out, corpus, head, model, enc_extra, sections);
  g_autofree char *file = g_strdup_printf ("%s.ini", name);
  char *path = g_build_filename (tmpdir, file, NULL);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

/* The train lines of metrics.jsonl, in order. */
static GPtrArray *
train_lines (const char *out)
{
  g_autofree char *path = g_build_filename (out, "metrics.jsonl", NULL);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  GPtrArray *all = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);
  for (gsize i = 0; lines[i]; i++) {
    if (!*lines[i])
      continue;
    g_autoptr(JsonParser) p = json_parser_new ();
    g_assert_true (json_parser_load_from_data (p, lines[i], -1, NULL));
    JsonObject *o = json_node_get_object (json_parser_get_root (p));
    if (g_strcmp0 (json_object_get_string_member_with_default (o, "type", ""), "train") == 0)
      g_ptr_array_add (all, json_object_ref (o));
  }
  return all;
}

static void params_diff (StsimSafetensors *a, StsimSafetensors *b, const char *name, double *rel, double *max_diff);

/* Run @b continues or repeats run @a: every loss term of every step from
 * @from on within 1e-5 relative, and the final parameters of every store
 * within 1e-5 of the store's largest weight. */
static void
check_same_run (const char *what, const char *out_a, const char *out_b, gint64 from)
{
  g_autoptr(GPtrArray) la = train_lines (out_a), lb = train_lines (out_b);
  g_assert_cmpuint (la->len, ==, 10);
  /* A resumed run's folder holds the lines of both parts: the last of each step counts. */
  JsonObject *by_step[11] = { NULL };
  for (guint i = 0; i < lb->len; i++) {
    gint64 st = json_object_get_int_member (g_ptr_array_index (lb, i), "step");
    g_assert_true (st >= 1 && st <= 10);
    by_step[st] = g_ptr_array_index (lb, i);
  }
  double worst_l = 0;
  for (gint64 st = from; st <= 10; st++) {
    JsonObject *a = g_ptr_array_index (la, st - 1), *b = by_step[st];
    g_assert_nonnull (b);
    g_assert_cmpint (json_object_get_int_member (a, "step"), ==, st);
    g_autoptr(GList) keys = json_object_get_members (a);
    guint n_terms = 0;
    for (GList *l = keys; l; l = l->next) {
      const char *k = l->data;
      if (strcmp (k, "loss") != 0 && !g_str_has_prefix (k, "loss."))
        continue;
      double x = json_object_get_double_member (a, k), y = json_object_get_double_member (b, k);
      g_assert_cmpfloat (fabs (x - y), <=, 1e-5 * fabs (x));
      worst_l = MAX (worst_l, fabs (x - y) / fabs (x));
      n_terms++;
    }
    g_assert_cmpuint (n_terms, >=, 2);
  }
  g_autoptr(StsimSafetensors) sa = open_state (out_a);
  g_autoptr(StsimSafetensors) sb = open_state (out_b);
  g_autoptr(JsonObject) ma = state_meta (sa), mb = state_meta (sb);
  g_assert_cmpint (json_object_get_int_member (mb, "step"), ==, 10);
  JsonArray *stores = json_object_get_array_member (ma, "stores");
  double worst_rel = 0, worst_abs = 0;
  for (guint i = 0; i < json_array_get_length (stores); i++) {
    const char *sname = json_object_get_string_member (json_array_get_object_element (stores, i), "name");
    g_autofree char *kp = g_strdup_printf ("%u.%s.param", i, sname);
    double rel, d;
    params_diff (sa, sb, kp, &rel, &d);
    g_assert_cmpfloat (rel, <=, 1e-5);
    g_assert_cmpfloat (d, <=, 0.1 * DROP_LR);
    worst_rel = MAX (worst_rel, rel);
    worst_abs = MAX (worst_abs, d);
  }
  g_test_message ("%s: losses within %.2g relative; final parameters within %.2g relative (|dp|/|p|), largest "
                  "weight difference %.2g (%.3g lr)", what, worst_l, worst_rel, worst_abs, worst_abs / DROP_LR);
}

/* ||b - a|| / ||a|| (Euclidean) and max |b - a| of one state tensor. */
static void
params_diff (StsimSafetensors *a, StsimSafetensors *b, const char *name, double *rel, double *max_diff)
{
  gsize na = 0, nb = 0;
  g_autofree float *x = state_f32 (a, name, &na), *y = state_f32 (b, name, &nb);
  g_assert_cmpuint (na, ==, nb);
  double dd = 0, xx = 0;
  *max_diff = 0;
  for (gsize i = 0; i < na; i++) {
    double d = (double) y[i] - x[i];
    dd += d * d;
    xx += (double) x[i] * x[i];
    *max_diff = MAX (*max_diff, fabs (d));
  }
  g_assert_cmpfloat (xx, >, 0);
  *rel = sqrt (dd / xx);
}

/* The recipe on 1, 2 and 3 ranks with dropout on: the same run. */
static void
check_dropout_ranks (const char *name, const char *head, const char *enc_extra, const char *sections)
{
  char *outs[3];
  for (int np = 1; np <= 3; np++) {
    g_autofree char *n = g_strdup_printf ("drop-%s-%d", name, np);
    g_autofree char *r = write_drop_recipe (n, head, enc_extra, sections, &outs[np - 1]);
    double secs = 0;
    g_assert_cmpint (run (np, r, NULL, NULL, &secs), ==, 0);
    g_test_message ("%s: %d rank(s) %.2f s", name, np, secs);
  }
  for (int np = 2; np <= 3; np++) {
    g_autofree char *what = g_strdup_printf ("%s, %d ranks against 1", name, np);
    check_same_run (what, outs[0], outs[np - 1], 1);
  }
  for (int i = 0; i < 3; i++)
    g_free (outs[i]);
}

static void
test_dropout_contrastive (void)
{
  if (need_mpi ())
    check_dropout_ranks ("contrastive", "mlp", "", "");
}

static void
test_dropout_rank_distill (void)
{
  if (!need_mpi ())
    return;
  g_autofree char *sections = teacher_sections ("listnet", "0.1");
  check_dropout_ranks ("rank-distill", "mlp", "", sections);
}

/* mlm and diff-predict with the generator's dropout on, sampling, pads in
 * the discriminator's padded layout, the BN head. */
static void
test_dropout_mlm_diff (void)
{
  if (!need_mpi ())
    return;
  g_autofree char *gen = fixture ("fixtures", "models", "distilbert-tiny", NULL);
  g_autofree char *sections = g_strdup_printf ("[objective.mlm]\nuse = mlm\nweight = 0.1\n"
                                               "[objective.diff]\nuse = diff-predict\nweight = 0.5\ngenerator = %s\n"
                                               "masking_ratio = 0.3\nsampling = sample\n", gen);
  check_dropout_ranks ("mlm-diff", "bn", "mlm_head = true\n", sections);
}

/* Stopped on 2 ranks after the state of step 5 (during step 6), resumed on
 * 3 ranks (and another such run in one process): the uninterrupted
 * one-process run from step 6 on. */
static void
test_dropout_resume (void)
{
  if (!need_mpi ())
    return;
  g_autofree char *out1 = NULL, *out23 = NULL, *out21 = NULL;
  g_autofree char *r1 = write_drop_recipe ("resume-drop-1", "bn", "", "", &out1);
  g_autofree char *r23 = write_drop_recipe ("resume-drop-23", "bn", "", "", &out23);
  g_autofree char *r21 = write_drop_recipe ("resume-drop-21", "bn", "", "", &out21);
  const char *stop[] = { "--stop-after-steps", "6", NULL }, *res[] = { "--resume", NULL };
  g_assert_cmpint (run (1, r1, NULL, NULL, NULL), ==, 0);
  g_assert_cmpint (run (2, r23, stop, NULL, NULL), ==, 0);
  g_assert_cmpint (run (2, r21, stop, NULL, NULL), ==, 0);
  g_autofree char *err3 = NULL, *err1 = NULL;
  g_assert_cmpint (run (3, r23, res, &err3, NULL), ==, 0);
  g_assert_nonnull (strstr (err3, "resuming a run of 2 rank(s) on 3"));
  g_assert_cmpint (run (1, r21, res, &err1, NULL), ==, 0);
  g_assert_nonnull (strstr (err1, "resuming a run of 2 rank(s) on 1"));
  check_same_run ("2 ranks, resumed on 3", out1, out23, 6);
  check_same_run ("2 ranks, resumed in one process", out1, out21, 6);
}

/* ---- failures ---------------------------------------------------------------------------- */

static void
check_stops (const char *name, const char *victim_flag, const char *expect)
{
  g_autofree char *out = g_build_filename (tmpdir, name, NULL);
  g_autofree char *r = write_recipe (name, out, 400, 0, "mlp", "", "");
  const char *extra[] = { victim_flag, "1", "--stop-after-steps", "2", NULL };
  g_autofree char *err = NULL;
  double secs = 0;
  int rc = run (2, r, extra, &err, &secs);
  g_test_message ("%s: exit %d after %.1f s", name, rc, secs);
  g_assert_cmpint (rc, !=, 0);
  /* 400 steps would take far longer: the survivor was stopped, not waited for. */
  g_assert_cmpfloat (secs, <, 60.0);
  g_assert_nonnull (strstr (err, expect));
}

static void
test_killed_rank (void)
{
  if (need_mpi ())
    check_stops ("killed", "--kill-rank", "exited on signal 9");
}

static void
test_failed_rank (void)
{
  if (need_mpi ())
    check_stops ("failed", "--error-rank", "rank 1/2: training: simulated failure after 2 steps");
}

static void
test_too_few (void)
{
  if (!need_mpi ())
    return;
  g_autofree char *out = g_build_filename (tmpdir, "too-few", NULL);
  g_autofree char *r = write_recipe ("too-few", out, 1, 0, "mlp", "", "");
  const char *extra[] = { "--set", "train.batch_size=2", NULL };
  g_autofree char *err = NULL;
  int rc = run (3, r, extra, &err, NULL);
  g_assert_cmpint (rc, !=, 0);
  g_assert_nonnull (strstr (err, "batch_size = 2"));
  g_assert_nonnull (strstr (err, "cannot be split over 3 ranks"));
}

static void
test_stsim_run (void)
{
  if (!need_mpi ())
    return;
  if (!stsim_run) {
    g_test_skip ("stsim-run is not built");
    return;
  }
  g_autofree char *out = g_build_filename (tmpdir, "stsim-run", NULL);
  g_autofree char *r = write_recipe ("stsim-run", out, 2, 0, "mlp", "", "");
  g_autofree char *so = NULL, *se = NULL;
  g_assert_cmpint (run_program (stsim_run, 2, r, NULL, &so, &se, NULL), ==, 0);
  g_assert_nonnull (strstr (se, "data-parallel: 2 ranks"));
  g_assert_nonnull (strstr (se, "trained 2 steps"));
  const char *plan = strstr (so, "Plan (");
  g_assert_nonnull (plan);
  g_assert_null (strstr (plan + 1, "Plan ("));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc < 2) {
    g_printerr ("usage: test-dist DIST-RUN-DRIVER\n");
    return 2;
  }
  driver = g_strdup (argv[1]);
  stsim_run = argc > 2 ? g_strdup (argv[2]) : NULL;
  mpirun = g_find_program_in_path ("mpirun");
  tmpdir = g_dir_make_tmp ("stsim-dist-XXXXXX", NULL);
  g_assert_nonnull (tmpdir);
  make_model_nodrop ();

  g_test_add_func ("/dist/equivalence/contrastive", test_contrastive);
  g_test_add_func ("/dist/equivalence/rank-distill", test_rank_distill);
  g_test_add_func ("/dist/equivalence/listmle-mlm-bn", test_listmle_mlm_bn);
  g_test_add_func ("/dist/equivalence/diff-predict", test_diff_predict);
  g_test_add_func ("/dist/equivalence/diff-predict-sample", test_diff_predict_sample);
  g_test_add_func ("/dist/overlap/2-ranks", test_overlap_2);
  g_test_add_func ("/dist/overlap/3-ranks", test_overlap_3);
  g_test_add_func ("/dist/overlap/early-caught", test_overlap_early_caught);
  g_test_add_func ("/dist/overlap/early-differs", test_overlap_early_differs);
  g_test_add_func ("/dist/resume", test_resume);
  g_test_add_func ("/dist/dropout/contrastive", test_dropout_contrastive);
  g_test_add_func ("/dist/dropout/rank-distill", test_dropout_rank_distill);
  g_test_add_func ("/dist/dropout/mlm-diff-predict", test_dropout_mlm_diff);
  g_test_add_func ("/dist/dropout/resume", test_dropout_resume);
  g_test_add_func ("/dist/killed-rank", test_killed_rank);
  g_test_add_func ("/dist/failed-rank", test_failed_rank);
  g_test_add_func ("/dist/too-few", test_too_few);
  g_test_add_func ("/dist/stsim-run", test_stsim_run);
  int rc = g_test_run ();
  if (worst.grad_rel > 0 || worst.loss_rel > 0)
    g_test_message ("worst over the equivalence tests: loss relative %.3g, gradient relative %.3g, parameter %.3g "
                    "(%.3g lr)", worst.loss_rel, worst.grad_rel, worst.param_abs, worst.param_abs / LR);
  stsim_test_remove_tree (tmpdir);
  g_free (tmpdir);
  g_free (driver);
  g_free (stsim_run);
  g_free (mpirun);
  g_free (model_nodrop);
  return rc;
}
