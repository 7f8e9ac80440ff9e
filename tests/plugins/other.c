/* other.c: a second valid test-only plugin. Its evaluator shares the name of
 * test-good's encoder (lookups by bare name are then ambiguous), and its
 * objective has a refs parameter of any kind (so recipes can form cycles). */
#include <stsim/stsim.h>

static gpointer create (const StsimParams *p, StsimContext *ctx, GError **error) { return g_new0 (int, 1); }

static gboolean
evaluate (gpointer state, StsimComponent *encoder, StsimEvalMode mode, JsonObject *report, double *primary,
          GError **error)
{
  *primary = 0;
  return TRUE;
}

static gboolean
loss (gpointer state, StsimTrainStep *step, StsimTensor **out, GError **error)
{
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED, "test-link has no loss");
  return FALSE;
}

static const StsimEvaluatorVTable eval_vtable = { .evaluate = evaluate };
static const StsimComponentDesc same_name = {
  .kind = STSIM_KIND_EVALUATOR, .name = "test-hash", .summary = "an evaluator named like an encoder",
  .create = create, .destroy = g_free, STSIM_VTABLE (eval_vtable) };

static const StsimParamSpec link_params[] = {
  { "next", STSIM_PARAM_REFS, "", .blurb = "sections of any kind created before this one" },
  { NULL }
};
static const StsimObjectiveVTable link_vtable = { .loss = loss };
static const StsimComponentDesc link_desc = {
  .kind = STSIM_KIND_OBJECTIVE, .name = "test-link", .summary = "an objective that refers to anything",
  .params = link_params, .create = create, .destroy = g_free, STSIM_VTABLE (link_vtable) };

STSIM_PLUGIN_DEFINE ("test-other", "0.0.1", "MIT", "second test plugin", NULL, &same_name, &link_desc)
