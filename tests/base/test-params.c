/* Parameter tables: every type, ranges, enums with suggestions, refs, paths,
 * defaults, required parameters and table validation. */
#include <math.h>

#include "stsim/stsim-params.h"
#include "stsim/stsim-error.h"

static const StsimParamSpec specs[] = {
  { "flag", STSIM_PARAM_BOOL, "false", .blurb = "a bool" },
  { "dim", STSIM_PARAM_INT, "8", .min = 1, .max = 1024, .blurb = "an int with a range" },
  { "count", STSIM_PARAM_INT, "0", .blurb = "an int without a range" },
  { "temperature", STSIM_PARAM_DOUBLE, "0.05", .min = 1e-4, .max = 10, .blurb = "a double" },
  { "margin", STSIM_PARAM_DOUBLE, "0.1", .min = 0, .max = 1, .blurb = "a double in [0, 1]" },
  { "text", STSIM_PARAM_STRING, NULL, .blurb = "a string" },
  { "loss", STSIM_PARAM_ENUM, "listnet", .choices = "listnet|listmle", .blurb = "an enum" },
  { "file", STSIM_PARAM_PATH, "${data}/vocab.txt", .blurb = "a path" },
  { "teachers", STSIM_PARAM_REFS, NULL, .choices = "teacher", .blurb = "teacher sections" },
  { "any", STSIM_PARAM_REFS, NULL, .blurb = "sections of any kind" },
  { "tag", STSIM_PARAM_STRING, NULL, .blurb = "required", .flags = STSIM_PARAM_REQUIRED },
  { NULL }
};

static StsimParams *
new_params (void)
{
  StsimParams *p = stsim_params_new (specs);
  stsim_params_set_path_vars (p, "/data", "/recipes");
  return p;
}

/* Sets @name = @value, expecting failure with exactly @message (or containing it when @partial). */
static void
expect_error (const char *name, const char *value, int code, const char *message, gboolean partial)
{
  g_autoptr(StsimParams) p = new_params ();
  g_autoptr(GError) error = NULL;
  g_assert_false (stsim_params_set (p, name, value, &error));
  g_assert_error (error, STSIM_ERROR, code);
  if (partial)
    g_assert_nonnull (strstr (error->message, message));
  else
    g_assert_cmpstr (error->message, ==, message);
  g_assert_false (stsim_params_is_set (p, name));
}

static char *
set_and_show (const char *name, const char *value)
{
  g_autoptr(StsimParams) p = new_params ();
  g_autoptr(GError) error = NULL;
  g_assert_true (stsim_params_set (p, name, value, &error));
  g_assert_no_error (error);
  return stsim_params_to_string (p, name);
}

static void
test_bool (void)
{
  static const char *const yes[] = { "true", "TRUE", "yes", "Yes", "on", "1", " true " };
  static const char *const no[] = { "false", "False", "no", "off", "OFF", "0" };
  g_autoptr(StsimParams) p = new_params ();

  for (guint i = 0; i < G_N_ELEMENTS (yes); i++) {
    g_assert_true (stsim_params_set (p, "flag", yes[i], NULL));
    g_assert_true (stsim_params_get_bool (p, "flag"));
  }
  for (guint i = 0; i < G_N_ELEMENTS (no); i++) {
    g_assert_true (stsim_params_set (p, "flag", no[i], NULL));
    g_assert_false (stsim_params_get_bool (p, "flag"));
  }
  expect_error ("flag", "maybe", STSIM_ERROR_INVALID,
                "value 'maybe' for flag is not a boolean (true/false, yes/no, on/off, 1/0)", FALSE);
  expect_error ("flag", "2", STSIM_ERROR_INVALID, "is not a boolean", TRUE);
  expect_error ("flag", "", STSIM_ERROR_INVALID, "is not a boolean", TRUE);
  g_free (set_and_show ("flag", "yes"));
  {
    g_autofree char *s = set_and_show ("flag", "on");
    g_assert_cmpstr (s, ==, "true");
  }
}

static void
test_int (void)
{
  g_autoptr(StsimParams) p = new_params ();
  g_autofree char *max = NULL, *min = NULL;

  g_assert_true (stsim_params_set (p, "dim", "42", NULL));
  g_assert_cmpint (stsim_params_get_int (p, "dim"), ==, 42);
  g_assert_true (stsim_params_set (p, "dim", " 16 ", NULL));
  g_assert_cmpint (stsim_params_get_int (p, "dim"), ==, 16);
  g_assert_true (stsim_params_set (p, "count", "-7", NULL));
  g_assert_cmpint (stsim_params_get_int (p, "count"), ==, -7);
  /* The whole 64-bit range when there is no range. */
  g_assert_true (stsim_params_set (p, "count", "9223372036854775807", NULL));
  g_assert_cmpint (stsim_params_get_int (p, "count"), ==, G_MAXINT64);
  g_assert_true (stsim_params_set (p, "count", "-9223372036854775808", NULL));
  g_assert_cmpint (stsim_params_get_int (p, "count"), ==, G_MININT64);
  max = stsim_params_to_string (p, "count");
  g_assert_cmpstr (max, ==, "-9223372036854775808");

  expect_error ("count", "9223372036854775808", STSIM_ERROR_INVALID,
                "value '9223372036854775808' for count is not a 64-bit integer (too large)", FALSE);
  expect_error ("count", "-99999999999999999999", STSIM_ERROR_INVALID, "(too large)", TRUE);
  expect_error ("dim", "abc", STSIM_ERROR_INVALID, "value 'abc' for dim is not an integer", FALSE);
  expect_error ("dim", "1.5", STSIM_ERROR_INVALID, "value '1.5' for dim is not an integer", FALSE);
  expect_error ("dim", "12abc", STSIM_ERROR_INVALID, "is not an integer", TRUE);
  expect_error ("dim", "", STSIM_ERROR_INVALID, "is not an integer", TRUE);
  expect_error ("dim", "0", STSIM_ERROR_INVALID, "dim: 0 is outside [1, 1024]", FALSE);
  expect_error ("dim", "1025", STSIM_ERROR_INVALID, "dim: 1025 is outside [1, 1024]", FALSE);
  /* Bounds are inclusive. */
  g_assert_true (stsim_params_set (p, "dim", "1", NULL));
  g_assert_true (stsim_params_set (p, "dim", "1024", NULL));
  min = stsim_params_to_string (p, "dim");
  g_assert_cmpstr (min, ==, "1024");
}

static void
test_double (void)
{
  g_autoptr(StsimParams) p = new_params ();

  g_assert_true (stsim_params_set (p, "temperature", "0.05", NULL));
  g_assert_cmpfloat (stsim_params_get_double (p, "temperature"), ==, 0.05);
  g_assert_true (stsim_params_set (p, "temperature", "1e-3", NULL));
  g_assert_cmpfloat (stsim_params_get_double (p, "temperature"), ==, 1e-3);
  g_assert_true (stsim_params_set (p, "margin", "0", NULL));
  g_assert_true (stsim_params_set (p, "margin", "1", NULL));

  expect_error ("temperature", "abc", STSIM_ERROR_INVALID, "value 'abc' for temperature is not a number", FALSE);
  expect_error ("temperature", "0.05x", STSIM_ERROR_INVALID, "is not a number", TRUE);
  expect_error ("temperature", "", STSIM_ERROR_INVALID, "is not a number", TRUE);
  expect_error ("margin", "3.5", STSIM_ERROR_INVALID, "margin: 3.5 is outside [0, 1]", FALSE);
  expect_error ("margin", "-0.01", STSIM_ERROR_INVALID, "margin: -0.01 is outside [0, 1]", FALSE);
  expect_error ("temperature", "0", STSIM_ERROR_INVALID, "temperature: 0 is outside [0.0001, 10]", FALSE);
  /* NaN and infinities never get in, whatever the range. */
  expect_error ("temperature", "nan", STSIM_ERROR_NUMERIC, "value 'nan' for temperature is not a finite number",
                FALSE);
  expect_error ("temperature", "NaN", STSIM_ERROR_NUMERIC, "not a finite number", TRUE);
  expect_error ("temperature", "inf", STSIM_ERROR_NUMERIC, "not a finite number", TRUE);
  expect_error ("temperature", "-infinity", STSIM_ERROR_NUMERIC, "not a finite number", TRUE);
  expect_error ("temperature", "1e999", STSIM_ERROR_NUMERIC, "not a finite number", TRUE);

  /* Canonical text is the shortest that reads back exactly. */
  {
    g_autofree char *a = set_and_show ("margin", "0.1");
    g_autofree char *b = set_and_show ("temperature", "1e-4");
    g_autofree char *c = set_and_show ("margin", "0.30000000000000004");
    g_autofree char *d = set_and_show ("temperature", "2.50");
    g_assert_cmpstr (a, ==, "0.1");
    g_assert_cmpstr (b, ==, "0.0001");
    g_assert_cmpstr (c, ==, "0.30000000000000004");
    g_assert_cmpstr (d, ==, "2.5");
  }
}

static void
test_string (void)
{
  g_autoptr(StsimParams) p = new_params ();
  g_autoptr(GError) error = NULL;

  g_assert_null (stsim_params_get_string (p, "text"));
  g_assert_true (stsim_params_set (p, "text", "héllo wörld", NULL));
  g_assert_cmpstr (stsim_params_get_string (p, "text"), ==, "héllo wörld");
  g_assert_true (stsim_params_set (p, "text", "", NULL));
  g_assert_cmpstr (stsim_params_get_string (p, "text"), ==, "");
  g_assert_false (stsim_params_set (p, "text", "bad \xff utf-8", &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_ENCODING);
}

/* STRING with choices: a comma-separated list of them, checked item by item. */
static void
test_string_list (void)
{
  static const StsimParamSpec specs[] = {
    { "tasks", STSIM_PARAM_STRING, "a,b", .choices = "alpha|beta|a|b", .blurb = "list" },
    { NULL }
  };
  g_autoptr(GError) error = NULL;
  g_assert_true (stsim_param_specs_validate (specs, "t", &error));
  g_autoptr(StsimParams) p = stsim_params_new (specs);
  g_assert_true (stsim_params_set (p, "tasks", "alpha, beta,a", NULL));
  g_assert_cmpstr (stsim_params_get_string (p, "tasks"), ==, "alpha, beta,a");
  g_assert_false (stsim_params_set (p, "tasks", "alpha,betta", &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_INVALID);
  g_assert_cmpstr (error->message, ==, "tasks: 'betta' is not one of alpha|beta|a|b (did you mean 'beta'?)");
  g_clear_error (&error);
  g_assert_false (stsim_params_set (p, "tasks", " , ", &error));
  g_assert_nonnull (strstr (error->message, "tasks: empty list"));
  g_clear_error (&error);
  /* A default outside the choices is a bad table. */
  static const StsimParamSpec bad[] = {
    { "tasks", STSIM_PARAM_STRING, "gamma", .choices = "alpha|beta", .blurb = "list" },
    { NULL }
  };
  g_assert_false (stsim_param_specs_validate (bad, "t", &error));
  g_assert_nonnull (strstr (error->message, "default of parameter 'tasks' is invalid"));
}

static void
test_enum (void)
{
  g_autoptr(StsimParams) p = new_params ();

  g_assert_true (stsim_params_set (p, "loss", "listmle", NULL));
  g_assert_cmpstr (stsim_params_get_string (p, "loss"), ==, "listmle");
  expect_error ("loss", "listmle2", STSIM_ERROR_INVALID,
                "loss: 'listmle2' is not one of listnet|listmle (did you mean 'listmle'?)", FALSE);
  expect_error ("loss", "ListNet", STSIM_ERROR_INVALID, "(did you mean 'listnet'?)", TRUE);
  /* Nothing close: no suggestion. */
  expect_error ("loss", "contrastive", STSIM_ERROR_INVALID, "loss: 'contrastive' is not one of listnet|listmle",
                FALSE);
}

static void
test_path (void)
{
  g_autoptr(StsimParams) p = new_params ();
  g_autoptr(StsimParams) bare = stsim_params_new (specs);
  g_autoptr(GError) error = NULL;

  g_assert_true (stsim_params_set (p, "file", "${data}/senteval", NULL));
  g_assert_cmpstr (stsim_params_get_string (p, "file"), ==, "/data/senteval");
  g_assert_true (stsim_params_set (p, "file", "${recipe_dir}/vocab.txt", NULL));
  g_assert_cmpstr (stsim_params_get_string (p, "file"), ==, "/recipes/vocab.txt");
  /* Relative paths stay relative (to the working directory). */
  g_assert_true (stsim_params_set (p, "file", "models/mini", NULL));
  g_assert_cmpstr (stsim_params_get_string (p, "file"), ==, "models/mini");
  expect_error ("file", "${home}/x", STSIM_ERROR_INVALID,
                "file: unknown variable in path '${home}/x' (known: ${data}, ${recipe_dir})", FALSE);
  expect_error ("file", "${data", STSIM_ERROR_INVALID, "unknown variable", TRUE);
  expect_error ("file", "", STSIM_ERROR_INVALID, "value for file is an empty path", FALSE);

  /* Outside a recipe, ${recipe_dir} is an error and ${data} is stsim's data root. */
  g_assert_false (stsim_params_set (bare, "file", "${recipe_dir}/x", &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "outside a recipe file"));
  g_setenv ("STSIM_DATA", "/somewhere/data", TRUE);
  g_assert_true (stsim_params_set (bare, "file", "${data}/x", NULL));
  g_assert_cmpstr (stsim_params_get_string (bare, "file"), ==, "/somewhere/data/x");
}

static void
test_refs (void)
{
  g_autoptr(StsimParams) p = new_params ();
  const char *const *refs;
  gsize n = 99;
  g_autofree char *text = NULL;

  g_assert_true (stsim_params_set (p, "teachers", "teacher.t1,teacher.t2 ,  teacher", NULL));
  refs = stsim_params_get_refs (p, "teachers", &n);
  g_assert_cmpuint (n, ==, 3);
  g_assert_cmpstr (refs[0], ==, "teacher.t1");
  g_assert_cmpstr (refs[1], ==, "teacher.t2");
  g_assert_cmpstr (refs[2], ==, "teacher");
  g_assert_null (refs[3]);
  text = stsim_params_to_string (p, "teachers");
  g_assert_cmpstr (text, ==, "teacher.t1, teacher.t2, teacher");

  g_assert_true (stsim_params_set (p, "any", "encoder.main, evaluator.sts-b_2", NULL));
  g_assert_true (stsim_params_set (p, "any", "", NULL));
  stsim_params_get_refs (p, "any", &n);
  g_assert_cmpuint (n, ==, 0);

  expect_error ("teachers", "teacher.t1, encoder.main", STSIM_ERROR_INVALID,
                "teachers: 'encoder.main' is not a teacher section", FALSE);
  expect_error ("teachers", "teacher.t1, teacher.t1", STSIM_ERROR_INVALID, "teachers: 'teacher.t1' is listed twice",
                FALSE);
  expect_error ("any", "Teacher.x", STSIM_ERROR_INVALID, "any: 'Teacher.x' is not a section label (KIND or KIND.LABEL)",
                FALSE);
  expect_error ("any", "teacher.", STSIM_ERROR_INVALID, "is not a section label", TRUE);
  expect_error ("any", "teacher.t1,,teacher.t2", STSIM_ERROR_INVALID, "is not a section label", TRUE);
  expect_error ("any", "teacher.t 1", STSIM_ERROR_INVALID, "is not a section label", TRUE);
}

static void
test_defaults_and_required (void)
{
  g_autoptr(StsimParams) p = new_params ();
  g_autoptr(GError) error = NULL;

  g_assert_false (stsim_params_finish (p, &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_INVALID);
  g_assert_cmpstr (error->message, ==, "missing required parameter 'tag'");
  g_clear_error (&error);

  g_assert_true (stsim_params_set (p, "tag", "x", NULL));
  g_assert_true (stsim_params_set (p, "dim", "32", NULL));
  g_assert_true (stsim_params_finish (p, &error));
  g_assert_no_error (error);
  /* Given values stay, the rest take their defaults; no default: unset. */
  g_assert_cmpint (stsim_params_get_int (p, "dim"), ==, 32);
  g_assert_cmpfloat (stsim_params_get_double (p, "temperature"), ==, 0.05);
  g_assert_false (stsim_params_get_bool (p, "flag"));
  g_assert_cmpstr (stsim_params_get_string (p, "loss"), ==, "listnet");
  g_assert_cmpstr (stsim_params_get_string (p, "file"), ==, "/data/vocab.txt");
  g_assert_true (stsim_params_is_set (p, "margin"));
  g_assert_false (stsim_params_is_set (p, "text"));
  g_assert_null (stsim_params_to_string (p, "text"));
  g_assert_false (stsim_params_is_set (p, "teachers"));
  g_assert_false (stsim_params_is_set (p, "no-such-param"));

  {
    g_autoptr(StsimParams) copy = stsim_params_copy (p);
    g_autofree char *a = stsim_params_to_string (copy, "file");
    g_assert_true (stsim_params_get_specs (copy) == specs);
    g_assert_cmpstr (a, ==, "/data/vocab.txt");
    g_assert_cmpstr (stsim_params_get_string (copy, "tag"), ==, "x");
    g_assert_true (stsim_params_get_string (copy, "tag") != stsim_params_get_string (p, "tag"));
  }
}

static void
test_two_missing (void)
{
  static const StsimParamSpec two[] = {
    { "a", STSIM_PARAM_INT, NULL, .blurb = "a", .flags = STSIM_PARAM_REQUIRED },
    { "b", STSIM_PARAM_INT, NULL, .blurb = "b", .flags = STSIM_PARAM_REQUIRED },
    { NULL }
  };
  g_autoptr(StsimParams) p = stsim_params_new (two);
  g_autoptr(GError) error = NULL;
  g_assert_false (stsim_params_finish (p, &error));
  g_assert_cmpstr (error->message, ==, "missing required parameters 'a', 'b'");
}

static void
test_unknown_name (void)
{
  g_autoptr(StsimParams) p = new_params ();
  g_autoptr(GError) error = NULL;
  g_assert_false (stsim_params_set (p, "temprature", "1", &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_assert_cmpstr (error->message, ==, "unknown parameter 'temprature' (did you mean 'temperature'?)");
  g_assert_nonnull (stsim_param_specs_lookup (specs, "margin"));
  g_assert_null (stsim_param_specs_lookup (specs, "nope"));
  g_assert_null (stsim_param_specs_lookup (NULL, "nope"));
}

static void
test_parse_check (void)
{
  g_autofree char *canon = NULL;
  g_autoptr(GError) error = NULL;
  g_assert_true (stsim_param_parse_check (&specs[3], " 5e-2 ", NULL, NULL, &canon, NULL));
  g_assert_cmpstr (canon, ==, "0.05");
  g_assert_false (stsim_param_parse_check (&specs[4], "2", NULL, NULL, NULL, &error));
  g_assert_cmpstr (error->message, ==, "margin: 2 is outside [0, 1]");
}

static void
test_type_names (void)
{
  static const char *const names[] = { "bool", "int", "double", "string", "enum", "path", "refs" };
  for (guint t = 0; t < STSIM_PARAM_N_TYPES; t++)
    g_assert_cmpstr (stsim_param_type_name (t), ==, names[t]);
  g_assert_cmpstr (stsim_param_type_name (STSIM_PARAM_N_TYPES), ==, "invalid");
}

/* ---- table validation ----------------------------------------------------------- */

static void
test_specs_valid (void)
{
  g_autoptr(GError) error = NULL;
  g_assert_true (stsim_param_specs_validate (specs, "test", &error));
  g_assert_no_error (error);
  g_assert_true (stsim_param_specs_validate (NULL, "test", &error));
  g_assert_true (stsim_param_specs_validate ((StsimParamSpec[]) { { NULL } }, "test", &error));
}

typedef struct {
  const char    *what;
  StsimParamSpec spec;
  const char    *message;
} BadSpec;

static const BadSpec bad_specs[] = {
  { "name", { "Dim", STSIM_PARAM_INT, "1", .blurb = "b" }, "where: parameter name 'Dim' is not [a-z][a-z0-9_]*" },
  { "name-dash", { "a-b", STSIM_PARAM_INT, "1", .blurb = "b" }, "parameter name 'a-b' is not" },
  { "type", { "t", (StsimParamType) 42, "1", .blurb = "b" }, "where: parameter 't' has an invalid type 42" },
  { "blurb", { "t", STSIM_PARAM_INT, "1" }, "where: parameter 't' has no blurb" },
  { "required-default", { "t", STSIM_PARAM_INT, "1", .blurb = "b", .flags = STSIM_PARAM_REQUIRED },
    "where: parameter 't' is required but has a default ('1')" },
  { "enum-no-choices", { "t", STSIM_PARAM_ENUM, "a", .blurb = "b" }, "enum parameter 't' needs choices" },
  { "enum-empty-choice", { "t", STSIM_PARAM_ENUM, "a", .choices = "a||b", .blurb = "b" }, "needs choices" },
  { "enum-dup-choice", { "t", STSIM_PARAM_ENUM, "a", .choices = "a|b|a", .blurb = "b" }, "needs choices" },
  { "enum-default", { "t", STSIM_PARAM_ENUM, "c", .choices = "a|b", .blurb = "b" },
    "where: default of parameter 't' is invalid: t: 'c' is not one of a|b" },
  { "refs-kind", { "t", STSIM_PARAM_REFS, NULL, .choices = "teachr", .blurb = "b" },
    "where: refs parameter 't' names an unknown kind 'teachr'" },
  { "default-range", { "t", STSIM_PARAM_DOUBLE, "5", .min = 0, .max = 1, .blurb = "b" },
    "where: default of parameter 't' is invalid: t: 5 is outside [0, 1]" },
  { "default-type", { "t", STSIM_PARAM_INT, "x", .blurb = "b" }, "default of parameter 't' is invalid: value 'x'" },
  { "default-nan", { "t", STSIM_PARAM_DOUBLE, "nan", .blurb = "b" }, "not a finite number" },
  { "range-inverted", { "t", STSIM_PARAM_INT, "1", .min = 5, .max = 1, .blurb = "b" }, "has an invalid range [5, 1]" },
};

static void
test_specs_bad (gconstpointer data)
{
  const BadSpec *b = data;
  StsimParamSpec table[] = { b->spec, { NULL } };
  g_autoptr(GError) error = NULL;

  g_assert_false (stsim_param_specs_validate (table, "where", &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_INVALID);
  if (!strstr (error->message, b->message))
    g_error ("%s: expected '%s' in '%s'", b->what, b->message, error->message);
}

static void
test_specs_duplicate (void)
{
  static const StsimParamSpec dup[] = {
    { "p", STSIM_PARAM_INT, "1", .blurb = "first" },
    { "p", STSIM_PARAM_BOOL, "true", .blurb = "second" },
    { "q", STSIM_PARAM_INT, "1", .blurb = "ok" },
    { "q", STSIM_PARAM_INT, "1", .blurb = "again" },
    { NULL }
  };
  g_autoptr(GError) error = NULL;
  g_assert_false (stsim_param_specs_validate (dup, "encoder 'x'", &error));
  /* Every problem of the table, not only the first. */
  g_assert_cmpstr (error->message, ==,
                   "encoder 'x': parameter 'p' is declared twice; parameter 'q' is declared twice");
}

/* is_default: a default applied by finish() counts as default, so does the
 * same value written another way ("0.050", "${data}/vocab.txt" spelt out);
 * another value does not; a key without a default is default until set. */
static void
test_is_default (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimParams) p = new_params ();
  g_assert_true (stsim_params_set (p, "tag", "x", &error));
  g_assert_true (stsim_params_set (p, "temperature", "0.050", &error));
  g_assert_true (stsim_params_set (p, "file", "/data/vocab.txt", &error));
  g_assert_true (stsim_params_set (p, "dim", "9", &error));
  g_assert_true (stsim_params_finish (p, &error));
  g_assert_no_error (error);
  g_assert_true (stsim_params_is_default (p, "flag"));         /* from finish() */
  g_assert_true (stsim_params_is_default (p, "temperature"));  /* 0.050 == 0.05 */
  g_assert_true (stsim_params_is_default (p, "file"));         /* after ${data} expansion */
  g_assert_true (stsim_params_is_default (p, "loss"));
  g_assert_false (stsim_params_is_default (p, "dim"));         /* 9, not 8 */
  g_assert_true (stsim_params_is_default (p, "text"));         /* no default, never set */
  g_assert_false (stsim_params_is_default (p, "tag"));         /* no default, set */
  g_assert_true (stsim_params_is_default (p, "teachers"));
  g_assert_false (stsim_params_is_default (p, "no-such-key"));
  g_autoptr(StsimParams) q = new_params ();
  g_assert_true (stsim_params_set (q, "teachers", "teacher.a", &error));
  g_assert_true (stsim_params_set (q, "loss", "listmle", &error));
  g_assert_false (stsim_params_is_default (q, "teachers"));
  g_assert_false (stsim_params_is_default (q, "loss"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/params/bool", test_bool);
  g_test_add_func ("/params/is-default", test_is_default);
  g_test_add_func ("/params/int", test_int);
  g_test_add_func ("/params/double", test_double);
  g_test_add_func ("/params/string", test_string);
  g_test_add_func ("/params/string-list", test_string_list);
  g_test_add_func ("/params/enum", test_enum);
  g_test_add_func ("/params/path", test_path);
  g_test_add_func ("/params/refs", test_refs);
  g_test_add_func ("/params/defaults-and-required", test_defaults_and_required);
  g_test_add_func ("/params/two-missing", test_two_missing);
  g_test_add_func ("/params/unknown-name", test_unknown_name);
  g_test_add_func ("/params/parse-check", test_parse_check);
  g_test_add_func ("/params/type-names", test_type_names);
  g_test_add_func ("/params/specs/valid", test_specs_valid);
  g_test_add_func ("/params/specs/duplicate", test_specs_duplicate);
  for (guint i = 0; i < G_N_ELEMENTS (bad_specs); i++) {
    g_autofree char *path = g_strdup_printf ("/params/specs/bad/%s", bad_specs[i].what);
    g_test_add_data_func (path, &bad_specs[i], test_specs_bad);
  }
  return g_test_run ();
}
