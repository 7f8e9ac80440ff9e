/* test-engine: the public training step (stsim_engine_new / _step) on a tiny
 * BERT (tests/fixtures/models/bert-tiny).
 *
 *   loss      the loss a step reports is the contrastive objective's loss on
 *             the same texts computed independently (a detached step with
 *             the same model, seed and step: the same dropout masks), bit
 *             for bit; its one term is that loss; the parameters move
 *   same      two engines from the same recipe fed the same batches end
 *             with bit-identical parameters
 *   nan       a debug_nan_steps step is reported skipped, with a NaN loss,
 *             and changes no parameter
 *   errors    a recipe without objectives is refused, naming the file */
#include <math.h>
#include <string.h>

#include "stsim/stsim.h"
#include "stsim/stsim-recipe.h"
#include "stsim/stsim-registry.h"
#include "stsim/stsim-train.h"
#include "train-test-util.h"

static StsimRegistry *reg;

/* Head none and the encoder's cls_before_pooler: what a detached step does. */
static const char *recipe_text =
  "[run]\n"
  "seed = 42\n"
  "threads = 1\n"
  "output = %s\n"
  "[train]\n"
  "batch_size = 8\n"
  "steps = 4\n"
  "lr = 1e-3\n"
  "max_len = 32\n"
  "head = none\n"
  "%s"
  "[encoder]\n"
  "use = bert\n"
  "model = %s\n"
  "pooler = cls_before_pooler\n"
  "%s";

static const char *objective_text = "[objective.contrastive]\nuse = contrastive\n";

static const char *const sentences[] = {
  "a man is playing a guitar .", "a woman is slicing an onion .", "the cat sleeps on the mat .",
  "two dogs run in the park .", "a child is reading a book .", "the sun sets over the sea .",
  "people are walking in the rain .", "a chef cooks pasta in a kitchen .",
};
#define B G_N_ELEMENTS (sentences)

typedef struct {
  StsimRecipe  *recipe;
  StsimContext *ctx;
  StsimEngine  *engine;
} Setup;

static void
setup_clear (Setup *s)
{
  g_clear_pointer (&s->engine, stsim_engine_free);
  g_clear_pointer (&s->ctx, stsim_context_free);
  g_clear_pointer (&s->recipe, stsim_recipe_free);
}

static StsimEngine *
setup_engine (Setup *s, const char *train_extra, const char *objectives, GError **error)
{
  g_autofree char *model = train_test_fixture ("models", "bert-tiny", NULL);
  g_autofree char *out = g_dir_make_tmp ("stsim-test-engine-XXXXXX", NULL);
  g_autofree char *text = g_strdup_printf (recipe_text, out, train_extra, model, objectives);
  memset (s, 0, sizeof *s);
  if (!(s->recipe = stsim_recipe_load_data (reg, text, -1, "engine.ini", NULL, NULL, error)))
    return NULL;
  s->ctx = stsim_recipe_new_context (s->recipe);
  if (!stsim_recipe_instantiate (s->recipe, s->ctx, error))
    return NULL;
  s->engine = stsim_engine_new (s->recipe, s->ctx, error);
  g_rmdir (out);
  return s->engine;
}

/* The 2B row texts of the batch, view-major: both views the same sentence. */
static const char **
rows_of (void)
{
  const char **rows = g_new0 (const char *, 2 * B + 1);
  for (gsize i = 0; i < 2 * B; i++)
    rows[i] = sentences[i % B];
  return rows;
}

static float *
params_copy (StsimEngine *e, gint64 *n)
{
  float *data = stsim_param_store_get_data (stsim_model_get_params (stsim_engine_get_model (e)), n);
  return g_memdup2 (data, *n * sizeof (float));
}

static void
test_loss (void)
{
  g_autoptr(GError) err = NULL;
  Setup s;
  StsimEngine *e = setup_engine (&s, "", objective_text, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (stsim_engine_get_n_views (e), ==, 2);
  g_autofree const char **rows = rows_of ();

  /* The reference: the objective on a detached step of the same model. */
  StsimTape *tape = stsim_tape_new (42, 0);
  stsim_tape_set_training (tape, TRUE);
  stsim_tape_set_step (tape, 0);
  StsimTrainStep *ref = stsim_train_step_new_detached (tape, B, 2, 42, 0);
  g_assert_true (stsim_train_step_set_model (ref, stsim_engine_get_model (e), rows, 32, &err));
  StsimTensor *loss = NULL;
  g_assert_true (stsim_objective_loss (stsim_context_lookup (s.ctx, "objective.contrastive"), ref, &loss, &err));
  g_assert_no_error (err);
  double expected = loss->data[0];
  stsim_train_step_free (ref);
  stsim_tape_free (tape);

  gint64 n = 0;
  g_autofree float *before = params_copy (e, &n);
  StsimEngineResult r;
  g_assert_true (stsim_engine_step (e, rows, B, 0, &r, &err));
  g_assert_no_error (err);
  g_test_message ("engine loss %.9g, objective on a detached step %.9g, grad norm %g", r.loss, expected, r.grad_norm);
  g_assert_false (r.skipped);
  g_assert_true (r.loss == expected);
  g_assert_cmpuint (r.n_terms, ==, 1);
  g_assert_cmpstr (r.term_names[0], ==, "loss.objective.contrastive");
  g_assert_true (r.terms[0] == expected);
  g_assert_true (isfinite (r.grad_norm) && r.grad_norm > 0);
  g_autofree float *after = params_copy (e, &n);
  g_assert_true (memcmp (before, after, n * sizeof (float)) != 0);
  setup_clear (&s);
}

static void
test_same (void)
{
  g_autoptr(GError) err = NULL;
  Setup a, b;
  g_assert_nonnull (setup_engine (&a, "", objective_text, &err));
  g_assert_nonnull (setup_engine (&b, "", objective_text, &err));
  g_assert_no_error (err);
  g_autofree const char **rows = rows_of ();
  for (guint64 step = 0; step < 3; step++) {
    StsimEngineResult ra, rb;
    g_assert_true (stsim_engine_step (a.engine, rows, B, step, &ra, &err));
    g_assert_true (stsim_engine_step (b.engine, rows, B, step, &rb, &err));
    g_assert_no_error (err);
    g_assert_true (ra.loss == rb.loss && ra.grad_norm == rb.grad_norm);
  }
  gint64 na = 0, nb = 0;
  g_autofree float *pa = params_copy (a.engine, &na);
  g_autofree float *pb = params_copy (b.engine, &nb);
  g_assert_cmpint (na, ==, nb);
  g_assert_true (memcmp (pa, pb, na * sizeof (float)) == 0);
  setup_clear (&a);
  setup_clear (&b);
}

static void
test_nan (void)
{
  g_autoptr(GError) err = NULL;
  Setup s;
  StsimEngine *e = setup_engine (&s, "debug_nan_steps = 1\n", objective_text, &err);
  g_assert_no_error (err);
  g_autofree const char **rows = rows_of ();
  StsimEngineResult r;
  g_assert_true (stsim_engine_step (e, rows, B, 0, &r, &err));
  g_assert_false (r.skipped);
  gint64 n = 0;
  g_autofree float *before = params_copy (e, &n);
  g_assert_true (stsim_engine_step (e, rows, B, 1, &r, &err));
  g_assert_no_error (err);
  g_assert_true (r.skipped);
  g_assert_true (isnan (r.loss) && isnan (r.grad_norm));
  g_autofree float *after = params_copy (e, &n);
  g_assert_true (memcmp (before, after, n * sizeof (float)) == 0);
  g_assert_true (stsim_engine_step (e, rows, B, 2, &r, &err));
  g_assert_false (r.skipped);
  setup_clear (&s);
}

static void
test_errors (void)
{
  g_autoptr(GError) err = NULL;
  Setup s;
  g_assert_null (setup_engine (&s, "", "", &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_RECIPE);
  g_assert_nonnull (strstr (err->message, "engine.ini: nothing to train"));
  setup_clear (&s);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  reg = stsim_registry_new ();
  stsim_registry_scan_default (reg);
  g_test_add_func ("/train/engine/loss", test_loss);
  g_test_add_func ("/train/engine/same", test_same);
  g_test_add_func ("/train/engine/nan", test_nan);
  g_test_add_func ("/train/engine/errors", test_errors);
  int rc = g_test_run ();
  stsim_registry_free (reg);
  return rc;
}
