/* test-encoder-plugins.c: the `bert`, `distilbert` and `roberta` encoder
 * components as a recipe sees them: loaded from the build tree's plugins,
 * created from parameters, encoding exactly what stsim_model_encode gives,
 * and refusing bad parameter combinations with clear errors. */
#include "model-test-util.h"
#include "stsim/stsim-registry.h"
#include "stsim/stsim-model-encoder.h"

static StsimRegistry *reg;

static const char *const sents[] = { "the man is in the house.", "a man", "of the and to in was he" };

static StsimComponent *
make (const char *name, GError **error, ...) G_GNUC_NULL_TERMINATED;

/* A component from key, value pairs, with ${data} = the model fixtures. */
static StsimComponent *
make (const char *name, GError **error, ...)
{
  const StsimRegistryEntry *e = stsim_registry_lookup (reg, STSIM_KIND_ENCODER, name);
  g_assert_nonnull (e);
  g_autofree char *data = g_test_build_filename (G_TEST_DIST, "fixtures", "models", NULL);
  g_autoptr(StsimContext) ctx = stsim_context_new (data, 42, 1);
  g_autoptr(StsimParams) params = stsim_params_new (e->desc->params);
  stsim_params_set_path_vars (params, data, NULL);
  va_list ap;
  va_start (ap, error);
  const char *key;
  while ((key = va_arg (ap, const char *)) != NULL) {
    const char *value = va_arg (ap, const char *);
    if (!stsim_params_set (params, key, value, error)) {
      va_end (ap);
      return NULL;
    }
  }
  va_end (ap);
  if (!stsim_params_finish (params, error))
    return NULL;
  return stsim_component_new (e->desc, "encoder.main", g_steal_pointer (&params), ctx, error);
}

static void
test_registered (void)
{
  for (const char *const *n = (const char *const[]) { "bert", "distilbert", "roberta", NULL }; *n; n++) {
    const StsimRegistryEntry *e = stsim_registry_lookup (reg, STSIM_KIND_ENCODER, *n);
    if (e == NULL)
      g_error ("encoder %s not registered (plugins from %s)", *n, g_getenv ("STSIM_PLUGIN_PATH"));
    g_assert_true (e->desc->params == stsim_model_encoder_params);
  }
  g_autoptr(GError) error = NULL;
  g_assert_true (stsim_param_specs_validate (stsim_model_encoder_params, "model encoder", &error));
  g_assert_no_error (error);
}

/* encode() is stsim_model_encode with the eval pooler; model() and
 * eval_pooler() expose the network. */
static void
test_encode_matches_model (void)
{
  static const struct { const char *component, *fixture, *pooler; StsimPooler p; } cases[] = {
    { "bert", "bert-tiny", NULL, STSIM_POOL_CLS_BEFORE_POOLER },
    { "bert", "bert-tiny", "cls", STSIM_POOL_CLS },
    { "roberta", "roberta-tiny", "avg", STSIM_POOL_AVG },
    { "distilbert", "distilbert-tiny", "avg_first_last", STSIM_POOL_AVG_FIRST_LAST },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr(GError) error = NULL;
    g_autofree char *path = g_strdup_printf ("${data}/%s", cases[i].fixture);
    g_autoptr(StsimComponent) c = cases[i].pooler
      ? make (cases[i].component, &error, "model", path, "pooler", cases[i].pooler, NULL)
      : make (cases[i].component, &error, "model", path, NULL);
    g_assert_no_error (error);
    g_assert_nonnull (c);
    g_assert_cmpuint (stsim_encoder_dim (c), ==, 64);
    g_assert_true (stsim_encoder_has_model (c) && stsim_encoder_has_eval_pooler (c));
    StsimModel *m = stsim_encoder_model (c, &error);
    g_assert_no_error (error);
    g_assert_nonnull (m);
    int pooler = -1;
    g_assert_true (stsim_encoder_eval_pooler (c, &pooler, &error));
    g_assert_cmpint (pooler, ==, cases[i].p);
    /* DistilBERT has no pooler in its checkpoints: mlp = true makes one. */
    g_assert_cmpuint (stsim_model_get_initialized (m), ==,
                      g_str_equal (cases[i].component, "distilbert") ? STSIM_MODEL_POOLER : 0);

    float got[3 * 64], want[3 * 64];
    g_assert_true (stsim_encoder_encode (c, sents, 3, got, &error));
    g_assert_no_error (error);
    g_autofree char *dir = fixture_dir (cases[i].fixture);
    g_autoptr(StsimModel) direct = stsim_model_load (dir, STSIM_MODEL_FROZEN | STSIM_MODEL_POOLER, 0, &error);
    g_assert_no_error (error);
    g_assert_true (stsim_model_encode (direct, sents, 3, cases[i].p, 0, want, &error));
    g_assert_no_error (error);
    g_assert_cmpmem (got, sizeof got, want, sizeof want);
  }
}

static void
expect_error (const char *component, const char *needle, ...)
{
  /* Up to three key/value pairs. */
  va_list ap;
  va_start (ap, needle);
  const char *kv[6] = { NULL };
  for (int i = 0; i < 6; i++) {
    kv[i] = va_arg (ap, const char *);
    if (kv[i] == NULL)
      break;
  }
  va_end (ap);
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimComponent) c = make (component, &error, kv[0], kv[1], kv[2], kv[3], kv[4], kv[5], NULL);
  g_assert_null (c);
  g_assert_nonnull (error);
  g_test_message ("%s: %s", component, error->message);
  if (strstr (error->message, needle) == NULL)
    g_error ("message lacks \"%s\": %s", needle, error->message);
}

static void
test_bad_params (void)
{
  expect_error ("roberta", "use the 'bert' encoder", "model", "${data}/bert-tiny", NULL);
  expect_error ("bert", "use the 'distilbert' encoder", "model", "${data}/distilbert-tiny", NULL);
  expect_error ("bert", "mlp = true", "model", "${data}/bert-tiny", "pooler", "cls", "mlp", "false", NULL);
  expect_error ("bert", "missing model", NULL);
  expect_error ("bert", "not both", "model", "${data}/bert-tiny", "config", "${data}/bert-tiny/config.json", NULL);
  expect_error ("bert", "config needs vocab", "config", "${data}/bert-tiny/config.json", NULL);
  expect_error ("bert", "does not exist", "model", "${data}/no-such-model", NULL);
  expect_error ("bert", "cls_before_pooler", "model", "${data}/bert-tiny", "pooler", "first", NULL);
}

/* A fresh model from config + vocab: seeded, the pooler initialised. */
static void
test_fresh (void)
{
  g_autoptr(GError) error = NULL;
  float a[3 * 64], b[3 * 64], c[3 * 64];
  const char *seeds[] = { "1", "1", "2" };
  float *outs[] = { a, b, c };
  for (int i = 0; i < 3; i++) {
    g_autoptr(StsimComponent) comp = make ("roberta", &error, "config", "${data}/roberta-tiny/config.json",
                                           "vocab", "${data}/roberta-tiny", "seed", seeds[i], "pooler", "cls", NULL);
    g_assert_no_error (error);
    StsimModel *m = stsim_encoder_model (comp, &error);
    g_assert_null (stsim_model_get_source (m));
    g_assert_cmpuint (stsim_model_get_initialized (m), ==, STSIM_MODEL_POOLER);
    g_assert_true (stsim_encoder_encode (comp, sents, 3, outs[i], &error));
    g_assert_no_error (error);
  }
  g_assert_cmpmem (a, sizeof a, b, sizeof b);
  g_assert_true (memcmp (a, c, sizeof a) != 0);

  /* mlp_init = random: SimCSE's MLP even when the checkpoint has a pooler. */
  g_autoptr(StsimComponent) r = make ("bert", &error, "model", "${data}/bert-tiny", "mlp_init", "random",
                                      "mlm_head", "true", NULL);
  g_assert_no_error (error);
  StsimModel *m = stsim_encoder_model (r, &error);
  g_assert_cmpuint (stsim_model_get_initialized (m), ==, STSIM_MODEL_POOLER);
  g_assert_nonnull (stsim_param_store_lookup (stsim_model_get_params (m), "cls.predictions.bias"));
  g_assert_true (stsim_param_store_is_trainable (stsim_model_get_params (m)));
  g_autoptr(StsimComponent) f = make ("bert", &error, "model", "${data}/bert-tiny", "frozen", "true", "mlp", "false", NULL);
  g_assert_no_error (error);
  m = stsim_encoder_model (f, &error);
  g_assert_false (stsim_param_store_is_trainable (stsim_model_get_params (m)));
  g_assert_null (stsim_param_store_lookup (stsim_model_get_params (m), "pooler.dense.weight"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  reg = stsim_registry_new ();
  g_autoptr(GError) error = NULL;
  stsim_registry_scan_path (reg, g_getenv ("STSIM_PLUGIN_PATH"), &error);
  g_assert_no_error (error);
  g_test_add_func ("/encoders/plugins/registered", test_registered);
  g_test_add_func ("/encoders/plugins/encode", test_encode_matches_model);
  g_test_add_func ("/encoders/plugins/bad-params", test_bad_params);
  g_test_add_func ("/encoders/plugins/fresh", test_fresh);
  int rc = g_test_run ();
  stsim_registry_free (reg);
  return rc;
}
