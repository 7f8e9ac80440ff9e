/* Recipes: validation (each error kind, with its line), --set overrides,
 * dependency order, instantiation, core sections and the resolved text. */
#include <glib/gstdio.h>
#include <string.h>

#include "stsim/stsim-recipe.h"

static StsimRegistry *
test_registry (void)
{
  StsimRegistry *reg = stsim_registry_new ();
  g_autofree char *good = g_build_filename (g_getenv ("STSIM_TEST_PLUGIN_DIR"), "good", NULL);
  g_assert_true (stsim_registry_scan_path (reg, good, NULL));
  g_assert_cmpuint (stsim_registry_get_n_plugins (reg), ==, 2);  /* test-good, test-other */
  return reg;
}

static StsimRecipe *
load (StsimRegistry *reg, const char *text, const char *const *overrides, GError **error)
{
  return stsim_recipe_load_data (reg, text, -1, "/recipes/mini.ini", overrides, "/data", error);
}

/* Loads @text expecting exactly the error lines in @expected (NULL-terminated). */
static void
expect_errors (const char *text, const char *const *overrides, const char *const *expected)
{
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = load (reg, text, overrides, &error);
  g_autofree char *want = g_strjoinv ("\n", (char **) expected);

  g_assert_null (r);
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE);
  g_assert_cmpstr (error->message, ==, want);
}

/* The same, when a line's tail may vary: each line must start with its entry.
 * (The list of core sections grows as later layers register theirs.) */
static void
expect_error_prefixes (const char *text, const char *const *expected)
{
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = load (reg, text, NULL, &error);
  g_auto(GStrv) lines = NULL;

  g_assert_null (r);
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE);
  lines = g_strsplit (error->message, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, g_strv_length ((char **) expected));
  for (guint i = 0; lines[i]; i++)
    if (!g_str_has_prefix (lines[i], expected[i]))
      g_error ("line %u: expected '%s...', got '%s'", i, expected[i], lines[i]);
}

#define ERRORS(...) ((const char *const[]) { __VA_ARGS__, NULL })

static const char full[] =
  "# a recipe with every kind\n"               /* 1 */
  "[run]\n"                                    /* 2 */
  "seed = 7\n"                                 /* 3 */
  "\n"                                         /* 4 */
  "[objective.rank]\n"                         /* 5 */
  "use = test-objective\n"                     /* 6 */
  "teachers = teacher.t1\n"                    /* 7 */
  "weight = 0.5\n"                             /* 8 */
  "loss = listmle\n"                           /* 9 */
  "\n"                                         /* 10 */
  "[teacher.t1]\n"                             /* 11 */
  "use = test-teacher\n"                       /* 12 */
  "encoder = encoder.main\n"                   /* 13 */
  "\n"                                         /* 14 */
  "[encoder.main]\n"                           /* 15 */
  "use = test-hash\n"                          /* 16 */
  "dim = 16\n"                                 /* 17 */
  "vocab = ${recipe_dir}/vocab\n"              /* 18 */
  "\n"                                         /* 19 */
  "[evaluator.e]\n"                            /* 20 */
  "use = test-eval\n"                          /* 21 */
  "tag = hello world\n";                       /* 22 */

static void
test_valid (void)
{
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = load (reg, full, NULL, &error);
  const StsimRecipeComponent *c;

  g_assert_no_error (error);
  g_assert_cmpstr (stsim_recipe_get_path (r), ==, "/recipes/mini.ini");
  g_assert_cmpstr (stsim_recipe_get_data_dir (r), ==, "/data");
  g_assert_cmpstr (stsim_recipe_get_name (r), ==, "mini");
  g_assert_cmpstr (stsim_recipe_get_output (r), ==, "runs/mini");
  g_assert_cmpuint (stsim_recipe_get_seed (r), ==, 7);
  g_assert_cmpint (stsim_recipe_get_threads (r), ==, 0);
  g_assert_null (stsim_recipe_get_warnings (r)[0]);

  g_assert_cmpuint (stsim_recipe_get_n_components (r), ==, 4);
  c = stsim_recipe_get_component (r, 0);
  g_assert_cmpstr (c->label, ==, "objective.rank");
  g_assert_cmpint (c->kind, ==, STSIM_KIND_OBJECTIVE);
  g_assert_cmpstr (c->use, ==, "test-objective");
  g_assert_cmpfloat (c->weight, ==, 0.5);
  g_assert_true (c->enabled);
  g_assert_cmpint (c->line, ==, 5);
  g_assert_cmpstr (stsim_params_get_string (c->params, "loss"), ==, "listmle");

  c = stsim_recipe_lookup_component (r, "encoder.main");
  g_assert_nonnull (c);
  g_assert_cmpint (stsim_params_get_int (c->params, "dim"), ==, 16);
  g_assert_cmpstr (stsim_params_get_string (c->params, "vocab"), ==, "/recipes/vocab");
  g_assert_cmpfloat (c->weight, ==, 1);
  c = stsim_recipe_lookup_component (r, "evaluator.e");
  g_assert_cmpstr (stsim_params_get_string (c->params, "tag"), ==, "hello world");
  g_assert_null (stsim_recipe_lookup_component (r, "evaluator"));

  /* Referenced sections come first; otherwise file order. */
  g_assert_cmpuint (stsim_recipe_get_n_ordered (r), ==, 4);
  g_assert_cmpstr (stsim_recipe_get_ordered (r, 0)->label, ==, "encoder.main");
  g_assert_cmpstr (stsim_recipe_get_ordered (r, 1)->label, ==, "teacher.t1");
  g_assert_cmpstr (stsim_recipe_get_ordered (r, 2)->label, ==, "objective.rank");
  g_assert_cmpstr (stsim_recipe_get_ordered (r, 3)->label, ==, "evaluator.e");
  g_assert_cmpuint (stsim_recipe_count_kind (r, STSIM_KIND_ENCODER), ==, 1);
  g_assert_cmpuint (stsim_recipe_count_kind (r, STSIM_KIND_OBJECTIVE), ==, 1);
}

static void
test_instantiate (void)
{
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = load (reg, full, NULL, &error);
  StsimContext *ctx = stsim_recipe_new_context (r);
  guint n;
  StsimComponent *const *all;

  g_assert_cmpuint (stsim_context_get_seed (ctx), ==, 7);
  g_assert_cmpint (stsim_context_get_threads (ctx), >=, 1);
  g_assert_cmpstr (stsim_context_get_data_dir (ctx), ==, "/data");
  /* test-teacher's create() fails unless its encoder exists already. */
  g_assert_true (stsim_recipe_instantiate (r, ctx, &error));
  g_assert_no_error (error);
  all = stsim_context_get_components (ctx, &n);
  g_assert_cmpuint (n, ==, 4);
  g_assert_cmpstr (stsim_component_get_label (all[0]), ==, "encoder.main");
  g_assert_cmpuint (stsim_encoder_dim (stsim_context_lookup (ctx, "encoder.main")), ==, 16);
  g_assert_nonnull (stsim_context_lookup (ctx, "objective.rank"));
  /* Components get their own copy of the parameters. */
  g_assert_true (stsim_component_get_params (all[0]) != stsim_recipe_lookup_component (r, "encoder.main")->params);
  /* Destruction runs in reverse: test-teacher's destroy() still uses its encoder. */
  stsim_context_free (ctx);
}

static void
test_disabled (void)
{
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = load (reg,
                                   "[encoder]\nuse = test-hash\n"
                                   "[evaluator.off]\nuse = test-eval\nenabled = false\ntag = x\n", NULL, &error);
  g_autoptr(StsimContext) ctx = NULL;

  g_assert_no_error (error);
  g_assert_false (stsim_recipe_lookup_component (r, "evaluator.off")->enabled);
  g_assert_cmpuint (stsim_recipe_get_n_components (r), ==, 2);
  g_assert_cmpuint (stsim_recipe_get_n_ordered (r), ==, 1);
  g_assert_cmpuint (stsim_recipe_count_kind (r, STSIM_KIND_EVALUATOR), ==, 0);
  ctx = stsim_recipe_new_context (r);
  g_assert_true (stsim_recipe_instantiate (r, ctx, &error));
  g_assert_null (stsim_context_lookup (ctx, "evaluator.off"));
}

static void
test_refs_any_kind (void)
{
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  /* test-link's refs parameter names no kind: any section will do, and is created first. */
  g_autoptr(StsimRecipe) r = load (reg, "[encoder]\nuse = test-hash\n"
                                        "[objective]\nuse = test-link\nnext = encoder\n", NULL, &error);
  g_autoptr(StsimContext) ctx = stsim_recipe_new_context (r);
  g_assert_no_error (error);
  g_assert_true (stsim_recipe_instantiate (r, ctx, &error));
  g_assert_cmpstr (stsim_recipe_get_ordered (r, 0)->label, ==, "encoder");
  g_assert_nonnull (stsim_context_lookup (ctx, "objective"));
}

/* ---- each error kind, with its line --------------------------------------------------- */

static void
test_error_unknown_section (void)
{
  expect_error_prefixes ("[encodr]\nuse = test-hash\n",
                         ERRORS ("/recipes/mini.ini:1: [encodr] unknown section kind 'encodr' (did you mean "
                                 "'encoder'?); sections are [KIND] or [KIND.LABEL] with KIND one of encoder, objective, "
                                 "teacher, evaluator, run"));
  expect_error_prefixes ("# x\n[fancy.one]\nuse = a\n",
                         ERRORS ("/recipes/mini.ini:2: [fancy.one] unknown section kind 'fancy'; sections are [KIND] "
                                 "or [KIND.LABEL] with KIND one of encoder, objective, teacher, evaluator, run"));
}

static void
test_error_bad_label (void)
{
  expect_errors ("[encoder.Main]\nuse = test-hash\n[run.x]\nseed = 1\n", NULL,
                 ERRORS ("/recipes/mini.ini:1: [encoder.Main] invalid label 'Main' (labels are [a-z0-9][a-z0-9_-]*)",
                         "/recipes/mini.ini:3: [run.x] core section [run] takes no label"));
}

static void
test_error_unknown_component (void)
{
  expect_errors ("[encoder]\nuse = test-hash\n\n[evaluator]\nuse = test-evl\n", NULL,
                 ERRORS ("/recipes/mini.ini:5: [evaluator] no evaluator named 'test-evl' (did you mean 'test-eval'?) "
                         "(stsim-inspect --kind evaluator lists them)"));
  /* A name of another kind says so. */
  expect_errors ("[teacher]\nuse = test-eval\n", NULL,
                 ERRORS ("/recipes/mini.ini:2: [teacher] no teacher named 'test-eval' ('test-eval' is an evaluator) "
                         "(stsim-inspect --kind teacher lists them)"));
}

static void
test_error_unknown_key (void)
{
  expect_errors ("[encoder]\nuse = test-hash\ndimm = 3\n", NULL,
                 ERRORS ("/recipes/mini.ini:3: [encoder] unknown key 'dimm' for encoder 'test-hash' "
                         "(did you mean 'dim'?)"));
  expect_errors ("[encoder]\nuse = test-hash\nweight = 3\n", NULL,
                 ERRORS ("/recipes/mini.ini:3: [encoder] unknown key 'weight' for encoder 'test-hash' "
                         "('weight' applies to objectives only)"));
  expect_errors ("[run]\nsed = 3\n", NULL,
                 ERRORS ("/recipes/mini.ini:2: [run] unknown key 'sed' for [run] (did you mean 'seed'?)"));
}

static void
test_error_type_and_range (void)
{
  expect_errors ("[encoder]\nuse = test-hash\ndim = abc\nscale = 11\nlowercase = maybe\npooling = maxx\n"
                 "[run]\nthreads = -1\n", NULL,
                 ERRORS ("/recipes/mini.ini:3: [encoder] value 'abc' for dim is not an integer",
                         "/recipes/mini.ini:4: [encoder] scale: 11 is outside [0, 10]",
                         "/recipes/mini.ini:5: [encoder] value 'maybe' for lowercase is not a boolean (true/false, "
                         "yes/no, on/off, 1/0)",
                         "/recipes/mini.ini:6: [encoder] pooling: 'maxx' is not one of mean|sum|max (did you mean "
                         "'max'?)",
                         "/recipes/mini.ini:8: [run] threads: -1 is outside [0, 4096]"));
  expect_errors ("[objective]\nuse = test-objective\nweight = -1\nenabled = perhaps\n", NULL,
                 ERRORS ("/recipes/mini.ini:3: [objective] weight: -1 is outside [0, 1000000]",
                         "/recipes/mini.ini:4: [objective] value 'perhaps' for enabled is not a boolean (true/false, "
                         "yes/no, on/off, 1/0)"));
}

static void
test_error_missing (void)
{
  expect_errors ("[encoder]\nuse = test-hash\n[evaluator.e]\nuse = test-eval\n[teacher]\n# no use\nencoder = "
                 "encoder\n", NULL,
                 ERRORS ("/recipes/mini.ini:3: [evaluator.e] missing required key 'tag' (string: copied into the "
                         "report)",
                         "/recipes/mini.ini:5: [teacher] has no 'use = NAME' naming the teacher (see stsim-inspect "
                         "--kind teacher)"));
}

static void
test_error_references (void)
{
  expect_errors ("[encoder.main]\nuse = test-hash\n"
                 "[teacher.t1]\nuse = test-teacher\nencoder = encoder.mian\n"
                 "[objective]\nuse = test-objective\nteachers = teacher.t1, encoder.main\n"
                 "[objective.b]\nuse = test-link\nnext = objective.b\n", NULL,
                 ERRORS ("/recipes/mini.ini:5: [teacher.t1] encoder: 'encoder.mian' is not a section of this recipe "
                         "(did you mean 'encoder.main'?)",
                         "/recipes/mini.ini:8: [objective] teachers: 'encoder.main' is not a teacher section",
                         "/recipes/mini.ini:11: [objective.b] next: a section cannot refer to itself"));
  expect_errors ("[encoder]\nuse = test-hash\nenabled = no\n[teacher]\nuse = test-teacher\nencoder = encoder\n", NULL,
                 ERRORS ("/recipes/mini.ini:6: [teacher] encoder: 'encoder' is disabled (enabled = false)"));
}

static void
test_error_cycle (void)
{
  expect_errors ("[objective.a]\nuse = test-link\nnext = objective.b\n"
                 "[objective.b]\nuse = test-link\nnext = objective.c\n"
                 "[objective.c]\nuse = test-link\nnext = objective.a\n", NULL,
                 ERRORS ("/recipes/mini.ini:1: [objective.a] reference cycle: objective.a -> objective.b -> "
                         "objective.c -> objective.a"));
}

static void
test_error_syntax (void)
{
  expect_errors ("seed = 1\n[run]\nthis is not ini\n[broken\n", NULL,
                 ERRORS ("/recipes/mini.ini:1: key 'seed' is outside any section",
                         "/recipes/mini.ini:3: 'this is not ini' is not a [section], a key = value line or a # comment",
                         "/recipes/mini.ini:4: malformed section header '[broken'"));
  expect_errors ("[encoder]\nuse = test-hash\ndim = 3\ndim = 4\n[run]\n[encoder]\n", NULL,
                 ERRORS ("/recipes/mini.ini:4: [encoder] key 'dim' appears twice (first at line 3)",
                         "/recipes/mini.ini:6: section [encoder] appears twice (first at line 1)"));
}

/* Every error of a recipe at once, each with its own line, in line order. */
static void
test_all_errors (void)
{
  expect_error_prefixes ("[encoder]\n"    /* 1 */
                 "use = test-hash\n"      /* 2 */
                 "dim = 0\n"              /* 3 */
                 "[evaluator]\n"          /* 4 */
                 "use = test-eval\n"      /* 5 */
                 "tag = t\n"              /* 6 */
                 "scal = 2\n"             /* 7 */
                 "[objectiv]\n"           /* 8 */
                 "use = x\n",
                 ERRORS ("/recipes/mini.ini:3: [encoder] dim: 0 is outside [1, 1024]",
                         "/recipes/mini.ini:7: [evaluator] unknown key 'scal' for evaluator 'test-eval' (did you "
                         "mean 'scale'?)",
                         "/recipes/mini.ini:8: [objectiv] unknown section kind 'objectiv' (did you mean 'objective'?); "
                         "sections are [KIND] or [KIND.LABEL] with KIND one of encoder, objective, teacher, "
                         "evaluator, run"));
}

/* ---- --set ------------------------------------------------------------------------------ */

static void
test_set (void)
{
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  const char *const set[] = { "encoder.main.dim=32", "run.seed = 9", "evaluator.extra.use=test-eval",
                              "evaluator.extra.tag=a=b", NULL };
  g_autoptr(StsimRecipe) r = load (reg, full, set, &error);
  const StsimRecipeComponent *c;

  g_assert_no_error (error);
  g_assert_cmpint (stsim_params_get_int (stsim_recipe_lookup_component (r, "encoder.main")->params, "dim"), ==, 32);
  g_assert_cmpuint (stsim_recipe_get_seed (r), ==, 9);
  c = stsim_recipe_lookup_component (r, "evaluator.extra");
  g_assert_nonnull (c);
  g_assert_cmpint (c->line, ==, 0);
  g_assert_cmpstr (stsim_params_get_string (c->params, "tag"), ==, "a=b");
  g_assert_cmpuint (stsim_recipe_get_n_components (r), ==, 5);
}

static void
test_set_errors (void)
{
  expect_errors (full, (const char *const[]) { "encoder.main.dim=abc", "encoder.main.dimm=1", "nodot=1", "run=1",
                                               "evaluator.brandnew.tag=x", NULL },
                 ERRORS ("--set 'nodot=1': expected SECTION.KEY=VALUE",
                         "--set 'run=1': expected SECTION.KEY=VALUE",
                         "/recipes/mini.ini: [encoder.main] value 'abc' for dim is not an integer (from --set)",
                         "/recipes/mini.ini: [encoder.main] unknown key 'dimm' for encoder 'test-hash' (did you mean "
                         "'dim'?) (from --set)",
                         "/recipes/mini.ini: [evaluator.brandnew] has no 'use = NAME' naming the evaluator (see "
                         "stsim-inspect --kind evaluator) (from --set)"));
}

/* A --set for a section the recipe lacks names the SECTION.KEY it likely meant:
 * the section of which it gave the kind or the label, or the nearest spelling,
 * those that take the key first. */
static void
test_set_suggestions (void)
{
  expect_errors (full, (const char *const[]) { "objective.margin=0.2", "rank.margin=0.2", "encoder.dim=4",
                                               "encoder.mian.dim=4", "teachr.t1.temperature=1", NULL },
                 ERRORS ("--set 'objective.margin=0.2': this recipe has no section [objective] (did you mean "
                         "'objective.rank.margin'?); to add it, also --set objective.use=NAME",
                         "--set 'rank.margin=0.2': this recipe has no section [rank] (did you mean "
                         "'objective.rank.margin'?)",
                         "--set 'encoder.dim=4': this recipe has no section [encoder] (did you mean "
                         "'encoder.main.dim'?); to add it, also --set encoder.use=NAME",
                         "--set 'encoder.mian.dim=4': this recipe has no section [encoder.mian] (did you mean "
                         "'encoder.main.dim'?); to add it, also --set encoder.mian.use=NAME",
                         "--set 'teachr.t1.temperature=1': this recipe has no section [teachr.t1] (did you mean "
                         "'teacher.t1.temperature'?)"));
  /* Several sections of the kind: the ones that take the key. */
  expect_errors ("[encoder.a]\nuse = test-hash\n[encoder.b]\nuse = test-hash\n[teacher]\nuse = test-teacher\n"
                 "encoder = encoder.a\n",
                 (const char *const[]) { "encoder.dim=4", "teacher.x.temperature=1", NULL },
                 ERRORS ("--set 'encoder.dim=4': this recipe has no section [encoder] (did you mean one of "
                         "'encoder.a.dim', 'encoder.b.dim'?); to add it, also --set encoder.use=NAME",
                         "--set 'teacher.x.temperature=1': this recipe has no section [teacher.x] (did you mean "
                         "'teacher.temperature'?); to add it, also --set teacher.x.use=NAME"));
  {
    /* With its use, a --set still adds a section; a core section needs none. */
    g_autoptr(StsimRegistry) reg = test_registry ();
    g_autoptr(GError) error = NULL;
    const char *const set[] = { "encoder.dim=4", "encoder.use=test-hash", "run.seed=3", NULL };
    g_autoptr(StsimRecipe) r = load (reg, "[evaluator]\nuse = test-eval\ntag = t\n", set, &error);
    g_assert_no_error (error);
    g_assert_cmpint (stsim_params_get_int (stsim_recipe_lookup_component (r, "encoder")->params, "dim"), ==, 4);
  }
}

/* ---- the default output folder -------------------------------------------------------------- */

static char *
output_with (const char *const *set)
{
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = load (reg, full, set, &error);
  g_assert_no_error (error);
  return g_strdup (stsim_recipe_get_output (r));
}

/* runs/<name>, plus -<the first 8 hex digits of SHA-256 over the sorted
 * SECTION.KEY=VALUE lines> when --set gave values. Golden digests from
 * Python's hashlib: sha256(b"encoder.main.dim=32\nrun.seed=9\n") starts with
 * 116eadfa, with dim=33 8398841f, b"run.seed=9\n" 268cfc9c. */
static void
test_output_default (void)
{
  g_autofree char *plain = output_with (NULL);
  g_autofree char *a = output_with ((const char *const[]) { "encoder.main.dim=32", "run.seed=9", NULL });
  g_autofree char *b = output_with ((const char *const[]) { " run.seed = 9 ", "encoder.main.dim=32", NULL });
  g_autofree char *c = output_with ((const char *const[]) { "run.seed=1", "encoder.main.dim=32", "run.seed=9", NULL });
  g_autofree char *d = output_with ((const char *const[]) { "encoder.main.dim=33", "run.seed=9", NULL });
  g_autofree char *named = output_with ((const char *const[]) { "run.name=exp", "run.seed=9", NULL });
  g_autofree char *only_name = output_with ((const char *const[]) { "run.name=exp", NULL });
  g_autofree char *given = output_with ((const char *const[]) { "run.seed=9", "run.output=/tmp/x", NULL });

  g_assert_cmpstr (plain, ==, "runs/mini");
  g_assert_cmpstr (a, ==, "runs/mini-116eadfa");
  g_assert_cmpstr (b, ==, a);  /* order and spaces do not matter */
  g_assert_cmpstr (c, ==, a);  /* the last value of a key counts */
  g_assert_cmpstr (d, ==, "runs/mini-8398841f");
  g_assert_cmpstr (named, ==, "runs/exp-268cfc9c");
  g_assert_cmpstr (only_name, ==, "runs/exp");
  g_assert_cmpstr (given, ==, "/tmp/x");
  {
    g_autoptr(StsimRegistry) reg = test_registry ();
    g_autoptr(StsimRecipe) r = load (reg, full, NULL, NULL);
    g_autoptr(StsimRecipe) s = load (reg, full, (const char *const[]) { "run.output=out", NULL }, NULL);
    g_assert_true (stsim_recipe_get_output_is_default (r));
    g_assert_false (stsim_recipe_get_output_is_default (s));
  }
}

/* ---- checks across sections ------------------------------------------------------------------ */

static void
odd_dim_check (StsimRecipe *r)
{
  const StsimRecipeComponent *c = stsim_recipe_lookup_component (r, "encoder.main");
  if (c && stsim_params_get_int (c->params, "dim") % 2)
    stsim_recipe_check_error (r, "encoder.main", "dim", "dim = %d is odd while [evaluator.e] is %s",
                              (int) stsim_params_get_int (c->params, "dim"),
                              stsim_recipe_lookup_component (r, "evaluator.e") ? "present" : "absent");
  if (c)
    stsim_recipe_check_warning (r, "encoder.main", NULL, "checked (%u components in order)",
                                stsim_recipe_get_n_ordered (r));
}

static void
test_checks (void)
{
  g_autoptr(StsimRegistry) reg = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = NULL;
  g_autoptr(GString) odd = NULL;

  if (!g_test_subprocess ()) {  /* registration is process-wide */
    g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_test_trap_assert_passed ();
    return;
  }
  reg = test_registry ();
  stsim_recipe_register_check (odd_dim_check);
  stsim_recipe_register_check (odd_dim_check);  /* once */
  r = load (reg, full, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (stsim_recipe_get_warnings (r)[0], ==, "/recipes/mini.ini:15: [encoder.main] checked (4 components "
                                                          "in order)");
  g_assert_null (stsim_recipe_get_warnings (r)[1]);
  expect_errors (full, (const char *const[]) { "encoder.main.dim=17", NULL },
                 ERRORS ("/recipes/mini.ini: [encoder.main] dim = 17 is odd while [evaluator.e] is present (from --set)"));
  /* Checks run only on an otherwise valid recipe: then the parser's errors alone. */
  expect_errors (full, (const char *const[]) { "encoder.main.dim=17", "encoder.main.scale=-1", NULL },
                 ERRORS ("/recipes/mini.ini: [encoder.main] scale: -1 is outside [0, 10] (from --set)"));
  /* From the file: its line. */
  odd = g_string_new (full);
  g_string_replace (odd, "dim = 16", "dim = 17", 1);
  expect_errors (odd->str, NULL,
                 ERRORS ("/recipes/mini.ini:17: [encoder.main] dim = 17 is odd while [evaluator.e] is present"));
}

/* ---- core sections, paths, warnings ------------------------------------------------------- */

static const StsimParamSpec testcore_specs[] = {
  { "steps", STSIM_PARAM_INT, "100", .min = 1, .max = 1000000, .blurb = "steps" },
  { "log", STSIM_PARAM_PATH, "${recipe_dir}/log.txt", .blurb = "a log" },
  { NULL }
};

static void
test_core_section (void)
{
  g_autoptr(StsimRegistry) reg = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = NULL;
  g_autofree char *text = NULL;

  /* Registration is process-wide: keep it out of the other cases. */
  if (!g_test_subprocess ()) {
    g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_test_trap_assert_passed ();
    return;
  }
  reg = test_registry ();
  g_assert_true (stsim_recipe_register_core_section ("testcore", testcore_specs, &error));
  g_assert_false (stsim_recipe_register_core_section ("testcore", testcore_specs, &error));
  g_assert_cmpstr (error->message, ==, "core section [testcore] is already registered");
  g_clear_error (&error);
  g_assert_false (stsim_recipe_register_core_section ("encoder", testcore_specs, &error));
  g_assert_cmpstr (error->message, ==, "'encoder' cannot name a core section");
  g_clear_error (&error);
  g_assert_false (stsim_recipe_register_core_section ("bad", (StsimParamSpec[]) {
                    { "x", STSIM_PARAM_INT, "y", .blurb = "b" }, { NULL } }, &error));
  g_assert_true (g_str_has_prefix (error->message, "core section [bad]: default of parameter 'x' is invalid"));
  g_clear_error (&error);
  {
    /* Listed, [run] first and the new one last; its table is the one registered. */
    g_auto(GStrv) names = stsim_recipe_list_core_sections ();
    guint n = g_strv_length (names);
    g_assert_cmpstr (names[0], ==, "run");
    g_assert_cmpstr (names[n - 1], ==, "testcore");
    g_assert_true (stsim_recipe_lookup_core_section ("testcore") == testcore_specs);
    g_assert_null (stsim_recipe_lookup_core_section ("nope"));
    g_assert_nonnull (stsim_param_specs_lookup (stsim_recipe_lookup_core_section ("run"), "include"));
  }

  /* Absent: defaults, and not written; present: validated and written. */
  r = load (reg, "[encoder]\nuse = test-hash\n", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (stsim_params_get_int (stsim_recipe_get_core (r, "testcore"), "steps"), ==, 100);
  g_assert_cmpstr (stsim_params_get_string (stsim_recipe_get_core (r, "testcore"), "log"), ==, "/recipes/log.txt");
  g_assert_null (stsim_recipe_get_core (r, "nope"));
  text = stsim_recipe_to_string (r);
  g_assert_null (strstr (text, "[testcore]"));
  g_clear_pointer (&r, stsim_recipe_free);
  g_clear_pointer (&text, g_free);

  r = load (reg, "[testcore]\nsteps = 5\n[encoder]\nuse = test-hash\n", NULL, &error);
  g_assert_cmpint (stsim_params_get_int (stsim_recipe_get_core (r, "testcore"), "steps"), ==, 5);
  text = stsim_recipe_to_string (r);
  g_assert_nonnull (strstr (text, "\n[testcore]\nsteps = 5\nlog = /recipes/log.txt\n"));
  expect_errors ("[testcore]\nstep = 5\n", NULL,
                 ERRORS ("/recipes/mini.ini:2: [testcore] unknown key 'step' for [testcore] (did you mean 'steps'?)"));
}

static void
test_run_section (void)
{
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = stsim_recipe_load_data (reg, "[run]\nname = exp1\nthreads = 2\n[encoder]\nuse = test-hash\n",
                                                     -1, "other.ini", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (stsim_recipe_get_name (r), ==, "exp1");
  g_assert_cmpstr (stsim_recipe_get_output (r), ==, "runs/exp1");
  g_assert_cmpint (stsim_recipe_get_threads (r), ==, 2);
  /* No --data: the data root is STSIM_DATA or the build's, absolute. */
  g_assert_true (g_path_is_absolute (stsim_recipe_get_data_dir (r)));
  expect_errors ("[run]\nname =\n", NULL, ERRORS ("/recipes/mini.ini:2: [run] name: the run name is empty"));
}

static void
test_deprecated (void)
{
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = load (reg, "[encoder]\nuse = test-hash\nold_name = x\n", NULL, &error);
  const char *const *w = stsim_recipe_get_warnings (r);
  g_assert_no_error (error);
  g_assert_cmpstr (w[0], ==, "/recipes/mini.ini:3: [encoder] parameter 'old_name' is deprecated: use prefix instead");
  g_assert_null (w[1]);
}

static void
test_not_found (void)
{
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_assert_null (stsim_recipe_load (reg, "/no/such/recipe.ini", NULL, NULL, &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_null (stsim_recipe_load_data (reg, "[run]\nname = \xff\n", -1, "x.ini", NULL, NULL, &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_ENCODING);
}

/* ---- resolved text ------------------------------------------------------------------------- */

static void
test_resolved (void)
{
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  const char *const set[] = { "encoder.main.prefix=\\stwo  spaces\\s", "encoder.main.pooling=sum", NULL };
  g_autoptr(StsimRecipe) r = load (reg, full, set, &error);
  g_autoptr(StsimRecipe) again = NULL;
  g_autofree char *text = NULL, *text2 = NULL;
  g_autofree char *expected = NULL;

  g_assert_no_error (error);
  text = stsim_recipe_to_string (r);
  expected = g_strdup_printf (
    "# Resolved recipe: every value explicit. Written by stsim %s.\n"
    "# plugin test-good 1.2.3 (%s)\n"
    "\n[run]\nname = mini\nseed = 7\nthreads = 0\noutput = runs/mini-f1633caf\n"
    "\n[objective.rank]\nuse = test-objective\nenabled = true\nweight = 0.5\nteachers = teacher.t1\nloss = listmle\n"
    "margin = 0.1\n"
    "\n[teacher.t1]\nuse = test-teacher\nenabled = true\nencoder = encoder.main\ntemperature = 0.05\n"
    "\n[encoder.main]\nuse = test-hash\nenabled = true\ndim = 16\nscale = 1\nlowercase = true\n"
    "prefix = \\stwo  spaces\\s\npooling = sum\nvocab = /recipes/vocab\nsalt = 0\n"
    "\n[evaluator.e]\nuse = test-eval\nenabled = true\ntag = hello world\nscale = 100\n",
    STSIM_VERSION_FOR_TESTS, stsim_recipe_lookup_component (r, "encoder.main")->entry->file);
  g_assert_cmpstr (text, ==, expected);
  g_assert_cmpstr (stsim_params_get_string (stsim_recipe_lookup_component (r, "encoder.main")->params, "prefix"),
                   ==, " two  spaces ");

  /* Resolving the resolved recipe gives the same text. */
  again = stsim_recipe_load_data (reg, text, -1, "/elsewhere/resolved.ini", NULL, "/other-data", &error);
  g_assert_no_error (error);
  text2 = stsim_recipe_to_string (again);
  g_assert_cmpstr (text2, ==, text);
}

static void
test_write_resolved (void)
{
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = load (reg, full, NULL, &error);
  g_autofree char *tmp = g_dir_make_tmp ("stsim-recipe-XXXXXX", NULL);
  g_autofree char *out = g_build_filename (tmp, "a", "b", NULL);
  g_autofree char *file = g_build_filename (out, "resolved.ini", NULL);
  g_autofree char *on_disk = NULL, *text = stsim_recipe_to_string (r);
  g_autofree char *mid = g_build_filename (tmp, "a", NULL);

  g_assert_true (stsim_recipe_write_resolved (r, out, &error));
  g_assert_no_error (error);
  g_assert_true (g_file_get_contents (file, &on_disk, NULL, NULL));
  g_assert_cmpstr (on_disk, ==, text);
  /* Written again over the old one. */
  g_assert_true (stsim_recipe_write_resolved (r, out, &error));
  g_unlink (file);
  g_rmdir (out);
  g_rmdir (mid);
  /* A file where the folder should be. */
  g_assert_true (g_file_set_contents (mid, "x", -1, NULL));
  g_assert_false (stsim_recipe_write_resolved (r, out, &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_IO);
  g_unlink (mid);
  g_rmdir (tmp);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/recipe/valid", test_valid);
  g_test_add_func ("/recipe/instantiate", test_instantiate);
  g_test_add_func ("/recipe/disabled", test_disabled);
  g_test_add_func ("/recipe/refs-any-kind", test_refs_any_kind);
  g_test_add_func ("/recipe/error/unknown-section", test_error_unknown_section);
  g_test_add_func ("/recipe/error/bad-label", test_error_bad_label);
  g_test_add_func ("/recipe/error/unknown-component", test_error_unknown_component);
  g_test_add_func ("/recipe/error/unknown-key", test_error_unknown_key);
  g_test_add_func ("/recipe/error/type-and-range", test_error_type_and_range);
  g_test_add_func ("/recipe/error/missing", test_error_missing);
  g_test_add_func ("/recipe/error/references", test_error_references);
  g_test_add_func ("/recipe/error/cycle", test_error_cycle);
  g_test_add_func ("/recipe/error/syntax", test_error_syntax);
  g_test_add_func ("/recipe/error/all-at-once", test_all_errors);
  g_test_add_func ("/recipe/set", test_set);
  g_test_add_func ("/recipe/set-errors", test_set_errors);
  g_test_add_func ("/recipe/set-suggestions", test_set_suggestions);
  g_test_add_func ("/recipe/output-default", test_output_default);
  g_test_add_func ("/recipe/checks", test_checks);
  g_test_add_func ("/recipe/core-section", test_core_section);
  g_test_add_func ("/recipe/run-section", test_run_section);
  g_test_add_func ("/recipe/deprecated", test_deprecated);
  g_test_add_func ("/recipe/not-found", test_not_found);
  g_test_add_func ("/recipe/resolved", test_resolved);
  g_test_add_func ("/recipe/write-resolved", test_write_resolved);
  return g_test_run ();
}
