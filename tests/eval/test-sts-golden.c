/* test-sts-golden.c: the `sts` evaluator with the `bow` and `bow-idf`
 * encoders, through the plugin interface (registry, parameters, vtables), on
 * the real data, against tests/fixtures/sts/golden-*.json: numbers computed
 * independently by tests/reference/sts_reference.py (numpy/scipy). Every
 * correlation must match to 1e-6, every count and printed cell exactly. */
#include <math.h>
#include <string.h>

#include "stsim/stsim-sts.h"
#include "stsim/stsim-registry.h"

#define TOL 1e-6

typedef struct {
  StsimRegistry *reg;
  StsimContext  *ctx;
  StsimComponent *encoder, *evaluator;  /* owned by ctx */
} Fixture;

static void
fixture_setup (Fixture *f, const char *encoder, const char *eval_key, const char *eval_value)
{
  g_autoptr (GError) err = NULL;
  f->reg = stsim_registry_new ();
  stsim_registry_scan_default (f->reg);
  for (guint i = 0; i < stsim_registry_get_n_failures (f->reg); i++) {
    const StsimLoadFailure *fl = stsim_registry_get_failure (f->reg, i);
    g_test_message ("plugin failure: %s: %s", fl->file, fl->message);
  }
  f->ctx = stsim_context_new (NULL, 42, 0);
  f->encoder = stsim_component_new_simple (f->reg, STSIM_KIND_ENCODER, encoder, "encoder", f->ctx, &err, NULL);
  g_assert_no_error (err);
  g_assert_true (stsim_context_add (f->ctx, f->encoder, &err));
  f->evaluator = stsim_component_new_simple (f->reg, STSIM_KIND_EVALUATOR, "sts", "evaluator", f->ctx, &err,
                                             eval_key, eval_value, NULL);
  g_assert_no_error (err);
  g_assert_true (stsim_context_add (f->ctx, f->evaluator, &err));
}

static void
fixture_teardown (Fixture *f)
{
  stsim_context_free (f->ctx);
  stsim_registry_free (f->reg);
}

static JsonObject *
load_golden (const char *encoder, JsonParser **keep)
{
  g_autofree char *name = g_strdup_printf ("golden-%s.json", encoder);
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "fixtures", "sts", name, NULL);
  g_autoptr (GError) err = NULL;
  *keep = json_parser_new ();
  g_assert_true (json_parser_load_from_file (*keep, path, &err));
  g_assert_no_error (err);
  return json_node_get_object (json_parser_get_root (*keep));
}

static double
member_double (JsonObject *o, const char *key, const char *where)
{
  if (!json_object_has_member (o, key))
    g_error ("report lacks %s/%s", where, key);
  JsonNode *n = json_object_get_member (o, key);
  if (JSON_NODE_HOLDS_NULL (n))
    return NAN;
  return json_node_get_double (n);
}

/* Compares every correlation, count, table cell and printed cell of @golden
 * with @report; returns the largest absolute difference of a correlation. */
static double
compare_with_golden (JsonObject *report, JsonObject *golden, guint *n_compared)
{
  double max_err = 0;
  JsonObject *gt = json_object_get_object_member (golden, "tasks");
  JsonObject *rt = json_object_get_object_member (report, "tasks");
  g_autoptr (GList) tasks = json_object_get_members (gt);
  for (GList *t = tasks; t; t = t->next) {
    g_assert_true (json_object_has_member (rt, t->data));
    JsonObject *gtask = json_object_get_object_member (gt, t->data);
    JsonObject *rtask = json_object_get_object_member (rt, t->data);
    g_autoptr (GList) subsets = json_object_get_members (gtask);
    for (GList *s = subsets; s; s = s->next) {
      if (strcmp (s->data, "reference_info") == 0)
        continue;
      g_autofree char *where = g_strdup_printf ("%s/%s", (char *) t->data, (char *) s->data);
      g_assert_true (json_object_has_member (rtask, s->data));
      JsonObject *g = json_object_get_object_member (gtask, s->data);
      JsonObject *r = json_object_get_object_member (rtask, s->data);
      g_autoptr (GList) keys = json_object_get_members (g);
      for (GList *k = keys; k; k = k->next) {
        if (strcmp (k->data, "n") == 0) {
          g_assert_cmpint (json_object_get_int_member (r, "n"), ==, json_object_get_int_member (g, "n"));
        } else {
          double want = json_object_get_double_member (g, k->data);
          double got = member_double (r, k->data, where);
          double e = fabs (got - want);
          if (!(e <= TOL))
            g_error ("%s/%s: got %.17g, reference %.17g", where, (char *) k->data, got, want);
          max_err = MAX (max_err, e);
        }
        (*n_compared)++;
      }
    }
  }
  JsonObject *gtab = json_object_get_object_member (golden, "table");
  JsonObject *rtab = json_object_get_object_member (report, "table");
  g_autoptr (GList) cols = json_object_get_members (gtab);
  for (GList *c = cols; c; c = c->next) {
    double e = fabs (member_double (rtab, c->data, "table") - json_object_get_double_member (gtab, c->data));
    if (!(e <= 100 * TOL))
      g_error ("table/%s differs by %g", (char *) c->data, e);
    (*n_compared)++;
  }
  g_assert_cmpuint (json_object_get_size (rtab), ==, json_object_get_size (gtab));
  JsonObject *gp = json_object_get_object_member (golden, "table_printed");
  JsonObject *rp = json_object_get_object_member (report, "table_printed");
  g_autoptr (GList) pcols = json_object_get_members (gp);
  for (GList *c = pcols; c; c = c->next) {
    g_assert_cmpstr (json_object_get_string_member (rp, c->data), ==, json_object_get_string_member (gp, c->data));
    (*n_compared)++;
  }
  return max_err;
}

static void
run_golden (const char *encoder)
{
  Fixture f;
  fixture_setup (&f, encoder, NULL, NULL);
  g_autoptr (JsonObject) report = json_object_new ();
  g_autoptr (GError) err = NULL;
  double primary = NAN;
  gint64 t0 = g_get_monotonic_time ();
  gboolean ok = stsim_evaluator_evaluate (f.evaluator, f.encoder, STSIM_EVAL_TEST, report, &primary, &err);
  double secs = (g_get_monotonic_time () - t0) / 1e6;
  g_assert_no_error (err);
  g_assert_true (ok);

  g_autoptr (JsonParser) keep = NULL;
  JsonObject *golden = load_golden (encoder, &keep);
  guint n = 0;
  double max_err = compare_with_golden (report, golden, &n);
  g_test_message ("%s: %u values compared, max |error| %.3g, %.2f s", encoder, n, max_err, secs);
  g_assert_cmpuint (n, >, 140);
  /* primary in TEST mode: the mean of the seven headline Spearman values. */
  g_assert_cmpfloat_with_epsilon (100 * primary,
                                  json_object_get_double_member (json_object_get_object_member (golden, "table"),
                                                                 "Avg"), 100 * TOL);
  g_assert_cmpstr (json_object_get_string_member (report, "encoder"), ==, encoder);
  g_assert_true (json_object_get_double_member (report, "sentences_per_second") > 0);
  fixture_teardown (&f);
}

static void
test_golden_bow (void)
{
  run_golden ("bow");
}

static void
test_golden_bow_idf (void)
{
  run_golden ("bow-idf");
}

static void
test_dev_mode (void)
{
  /* DEV mode: STS-B dev Spearman is primary; prepare still sees all of STS-B,
   * so the value equals the TEST run's dev split. SICK-R dev when asked. */
  Fixture f;
  fixture_setup (&f, "bow-idf", "dev_tasks", "STSBenchmark,SICKRelatedness");
  g_autoptr (JsonObject) report = json_object_new ();
  g_autoptr (GError) err = NULL;
  double primary = NAN;
  g_assert_true (stsim_evaluator_evaluate (f.evaluator, f.encoder, STSIM_EVAL_DEV, report, &primary, &err));
  g_assert_no_error (err);
  g_autoptr (JsonParser) keep = NULL;
  JsonObject *golden = load_golden ("bow-idf", &keep);
  JsonObject *gt = json_object_get_object_member (golden, "tasks");
  double want_stsb = json_object_get_double_member (
    json_object_get_object_member (json_object_get_object_member (gt, "STSBenchmark"), "dev"), "spearman");
  double want_sick = json_object_get_double_member (
    json_object_get_object_member (json_object_get_object_member (gt, "SICKRelatedness"), "dev"), "spearman");
  g_assert_cmpfloat_with_epsilon (primary, want_stsb, TOL);
  JsonObject *dev = json_object_get_object_member (report, "dev");
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (dev, "STS-B"), 100 * want_stsb, 100 * TOL);
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (dev, "SICK-R"), 100 * want_sick, 100 * TOL);
  g_assert_false (json_object_has_member (report, "table"));
  JsonObject *stsb = json_object_get_object_member (json_object_get_object_member (report, "tasks"), "STSBenchmark");
  g_assert_false (json_object_has_member (stsb, "test"));
  g_assert_cmpstr (json_object_get_string_member (report, "primary_metric"), ==, "STSBenchmark/dev/spearman");
  fixture_teardown (&f);
}

static void
test_bad_tasks_param (void)
{
  g_autoptr (StsimRegistry) reg = stsim_registry_new ();
  stsim_registry_scan_default (reg);
  g_autoptr (StsimContext) ctx = stsim_context_new (NULL, 42, 0);
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimComponent) ev = stsim_component_new_simple (reg, STSIM_KIND_EVALUATOR, "sts", NULL, ctx, &err,
                                                              "tasks", "STS12,STS-B", NULL);
  g_assert_null (ev);
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_INVALID);
  g_assert_nonnull (strstr (err->message, "'STS-B'"));
  g_assert_nonnull (strstr (err->message, "STSBenchmark"));
}

static void
test_bow_exact_vectors (void)
{
  /* The encoder's vectors give the set cosines exactly: A = {a, man, plays},
   * B = {a, man, is, playing} (case folded, duplicates dropped):
   * |A n B| = 2, cos = 2 / sqrt(3 * 4). */
  g_autoptr (StsimRegistry) reg = stsim_registry_new ();
  stsim_registry_scan_default (reg);
  g_autoptr (StsimContext) ctx = stsim_context_new (NULL, 42, 0);
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimComponent) enc = stsim_component_new_simple (reg, STSIM_KIND_ENCODER, "bow", NULL, ctx, &err,
                                                               NULL);
  g_assert_no_error (err);
  const char *const s[] = { "A man plays a", "a MAN is playing", "\xc3\x89t\xc3\xa9 man" };
  g_assert_true (stsim_encoder_prepare (enc, s, 3, &err));
  gsize d = stsim_encoder_dim (enc);
  g_assert_cmpuint (d, ==, 6 + 1024);  /* a man plays is playing été + OOV buckets */
  g_autofree float *v = g_new (float, 3 * d);
  g_assert_true (stsim_encoder_encode (enc, s, 3, v, &err));
  g_assert_cmpfloat_with_epsilon (stsim_cosine (v, v + d, d), 2.0 / sqrt (12.0), 1e-15);
  /* Only ASCII is lowercased: "Été" stays a word of its own. */
  g_assert_cmpfloat_with_epsilon (stsim_cosine (v + d, v + 2 * d, d), 1.0 / sqrt (8.0), 1e-15);
}

static void
test_bow_idf_weights (void)
{
  /* N = 4 sentences; "x" is in all four: W = round(256 ln 1) = 0; "y" in two:
   * W = floor(256 ln 2 + 0.5) = 177; "z" in one: floor(256 ln 4 + 0.5) = 355. */
  g_autoptr (StsimRegistry) reg = stsim_registry_new ();
  stsim_registry_scan_default (reg);
  g_autoptr (StsimContext) ctx = stsim_context_new (NULL, 42, 0);
  g_autoptr (GError) err = NULL;
  g_autoptr (StsimComponent) enc = stsim_component_new_simple (reg, STSIM_KIND_ENCODER, "bow-idf", NULL, ctx, &err,
                                                               NULL);
  g_assert_no_error (err);
  const char *const s[] = { "x y", "x Y z", "x", "X x" };
  g_assert_true (stsim_encoder_prepare (enc, s, 4, &err));
  gsize d = stsim_encoder_dim (enc);
  g_autofree float *v = g_new (float, 4 * d);
  g_assert_true (stsim_encoder_encode (enc, s, 4, v, &err));
  float max1 = 0, max2 = 0;
  double sum1 = 0;
  for (gsize i = 0; i < d; i++) {
    max1 = MAX (max1, v[d + i]);
    sum1 += (double) v[d + i] * v[d + i];
    max2 = MAX (max2, v[2 * d + i]);
  }
  g_assert_cmpfloat (max1, ==, 355.0f);
  g_assert_cmpfloat (sum1, ==, 177.0 * 177.0 + 355.0 * 355.0);
  g_assert_cmpfloat (max2, ==, 0.0f);  /* "x" alone: a zero vector, cosine 0 */
  g_assert_cmpfloat (stsim_cosine (v + 2 * d, v + 3 * d, d), ==, 0.0);
  /* cos("x y", "x Y z") = 177^2 / (177 * sqrt(177^2 + 355^2)) */
  g_assert_cmpfloat_with_epsilon (stsim_cosine (v, v + d, d), 177.0 / sqrt (177.0 * 177.0 + 355.0 * 355.0), 1e-15);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sts/plugin/bow-exact-vectors", test_bow_exact_vectors);
  g_test_add_func ("/sts/plugin/bow-idf-weights", test_bow_idf_weights);
  g_test_add_func ("/sts/plugin/bad-tasks-param", test_bad_tasks_param);
  g_test_add_func ("/sts/golden/bow", test_golden_bow);
  g_test_add_func ("/sts/golden/bow-idf", test_golden_bow_idf);
  g_test_add_func ("/sts/golden/dev-mode", test_dev_mode);
  return g_test_run ();
}
