/* stsim-report and curves.svg: numbers against values computed here from the
 * fixtures' inputs, the Markdown table's shape, well-formed SVG (GMarkup)
 * with one bar per row and one polyline per loss term, the trainer's hook,
 * and every error case naming its file.
 * Tool paths come from STSIM_REPORT / STSIM_RUN (set by meson). */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stsim/stsim-error.h"
#include "stsim/stsim-curves.h"
#include "test-util.h"

static const char *const tasks[7] = { "STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark",
                                      "SICKRelatedness" };

typedef struct {
  char *tmp;
  char *out, *err;  /* of the last tool run */
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->tmp = g_dir_make_tmp ("stsim-report-XXXXXX", NULL);
  g_assert_nonnull (f->tmp);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  stsim_test_remove_tree (f->tmp);
  g_free (f->tmp);
  g_free (f->out);
  g_free (f->err);
}

/* Runs the tool named by env var @tool in f->tmp; returns its exit status. */
static int
run (Fixture *f, const char *tool, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  const char *path = g_getenv (tool);
  g_autoptr(GError) error = NULL;
  int status = -1;
  va_list ap;
  const char *arg;
  g_assert_nonnull (path);
  g_ptr_array_add (argv, (gpointer) path);
  va_start (ap, tool);
  while ((arg = va_arg (ap, const char *)))
    g_ptr_array_add (argv, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_clear_pointer (&f->out, g_free);
  g_clear_pointer (&f->err, g_free);
  g_assert_true (g_spawn_sync (f->tmp, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &f->out, &f->err,
                               &status, &error));
  g_assert_no_error (error);
  g_assert_true (WIFEXITED (status));
  if (g_test_verbose ())
    g_printerr ("--- stdout\n%s--- stderr\n%s", f->out, f->err);
  return WEXITSTATUS (status);
}

static char *
path_in (Fixture *f, const char *rel)
{
  return g_build_filename (f->tmp, rel, NULL);
}

static void
write_file (Fixture *f, const char *rel, const char *text)
{
  g_autofree char *path = path_in (f, rel);
  g_autofree char *dir = g_path_get_dirname (path);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
}

/* A results.json as the evaluator writes it (table unrounded; Avg unrounded
 * too, as core/eval does), with @skip (may be NULL) left out of the table. */
static void
write_results (Fixture *f, const char *rel, const double v[7], const char *skip)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  double sum = 0;
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "evaluator");
  json_builder_add_string_value (b, "sts");
  json_builder_set_member_name (b, "table");
  json_builder_begin_object (b);
  for (int k = 0; k < 7; k++) {
    sum += v[k];
    if (skip && strcmp (skip, tasks[k]) == 0)
      continue;
    json_builder_set_member_name (b, tasks[k]);
    json_builder_add_double_value (b, v[k]);
  }
  json_builder_set_member_name (b, "Avg");
  json_builder_add_double_value (b, sum / 7);
  json_builder_end_object (b);
  json_builder_end_object (b);
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  g_autofree char *text = json_generator_to_data (gen, NULL);
  write_file (f, rel, text);
}

/* ---- independent arithmetic ----------------------------------------------------------------- */

static double
mean_of (const double *x, int n)
{
  double s = 0;
  for (int i = 0; i < n; i++)
    s += x[i];
  return s / n;
}

static double
sd_of (const double *x, int n)
{
  double m = mean_of (x, n), s = 0;
  for (int i = 0; i < n; i++)
    s += (x[i] - m) * (x[i] - m);
  return sqrt (s / (n - 1));
}

/* Two-decimal rounding the way a reader of the table does it; the inputs
 * below stay away from .xx5 so that no tie-breaking rule matters. */
static double
round2 (double v)
{
  return round (v * 100) / 100;
}

static char *
pm (const double *x, int n)
{
  return g_strdup_printf ("%.2f ± %.2f", mean_of (x, n), sd_of (x, n));
}

/* The cells of the Markdown row whose first cell is @name (stripped). */
static GStrv
md_row (const char *md, const char *name)
{
  g_auto(GStrv) lines = g_strsplit (md, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    if (lines[i][0] != '|')
      continue;
    g_auto(GStrv) cells = g_strsplit (lines[i] + 1, "|", -1);
    guint n = g_strv_length (cells);
    /* The line ends with '|': the last piece is empty. */
    g_assert_cmpstr (cells[n - 1], ==, "");
    g_free (cells[n - 1]);
    cells[n - 1] = NULL;
    for (guint k = 0; cells[k]; k++)
      g_strstrip (cells[k]);
    if (strcmp (cells[0], name) == 0)
      return g_steal_pointer (&cells);
  }
  return NULL;
}

/* ---- the fixtures of the report tests --------------------------------------------------- */

/* Group A: three seeds with metrics.jsonl; group B: three results.json files
 * without metrics; a baseline whose Avg shows the printed-table rule. */
static const double A[3][7] = {
  { 61.3, 70.12, 65.0, 75.5, 70.0, 68.25, 60.0 },
  { 62.9, 71.40, 66.0, 76.1, 71.5, 69.75, 61.0 },
  { 60.4, 69.90, 64.5, 74.9, 72.5, 70.00, 62.0 },
};
static const double B[3][7] = {
  { 40, 41, 42, 43, 44, 45, 46 },
  { 42, 43, 44, 45, 46, 47, 48 },
  { 44, 45, 46, 47, 48, 49, 50 },
};
/* Rounded cells 1.00 x 6 and 1.03: printed Avg 1.00; the unrounded mean
 * 1.00829 would print 1.01. */
static const double BASE[7] = { 1.004, 1.004, 1.004, 1.004, 1.004, 1.004, 1.034 };
/* Best dev per seed of A (x100) and the last "elapsed". */
static const char *const A_metrics[3] = {
  "{\"type\":\"train\",\"step\":100,\"loss\":1.5,\"elapsed\":50.0}\n"
  "{\"type\":\"eval\",\"step\":125,\"dev\":0.70,\"best\":0.70,\"elapsed\":60.0}\n"
  "{\"type\":\"eval\",\"step\":250,\"dev\":0.74,\"best\":0.74,\"elapsed\":80.0}\n"
  "{\"type\":\"eval\",\"step\":375,\"dev\":0.72,\"best\":0.74,\"elapsed\":90.0}\n"
  "{\"type\":\"train\",\"step\":400,\"loss\":0.5,\"elapsed\":100.5}\n",
  /* a tie: the earlier step is the best, as the trainer selects */
  "{\"type\":\"eval\",\"step\":125,\"dev\":0.75,\"elapsed\":20.0}\n"
  "{\"type\":\"eval\",\"step\":250,\"dev\":0.75,\"elapsed\":40.0}\n"
  "{\"type\":\"eval\",\"step\":300,\"dev\":null,\"elapsed\":60.0}\n"
  "\n"
  "{\"type\":\"train\",\"step\":400,\"loss\":0.5,\"elapsed\":200.5}\n",
  "{\"type\":\"eval\",\"step\":250,\"dev\":0.78,\"elapsed\":150.0}\n"
  "{\"type\":\"train\",\"step\":400,\"loss\":0.5,\"elapsed\":300.5}\n",
};
static const double A_dev[3] = { 74, 75, 78 };
static const double A_elapsed[3] = { 100.5, 200.5, 300.5 };

static void
make_runs (Fixture *f)
{
  /* Created in reverse so that only the tool's sorting gives seed order. */
  for (int i = 2; i >= 0; i--) {
    g_autofree char *res = g_strdup_printf ("a/seed-%d/results.json", i + 1);
    g_autofree char *met = g_strdup_printf ("a/seed-%d/metrics.jsonl", i + 1);
    write_results (f, res, A[i], NULL);
    write_file (f, met, A_metrics[i]);
    g_autofree char *bres = g_strdup_printf ("b/r%d.json", i + 1);
    write_results (f, bres, B[i], NULL);
  }
  write_results (f, "base/results.json", BASE, NULL);
}

static void
test_report_numbers (Fixture *f, gconstpointer data)
{
  make_runs (f);
  g_assert_cmpint (run (f, "STSIM_REPORT", "--group", "A=a/seed-*", "--group", "B=b/r1.json, b/r2.json,b/r3.json",
                        "--baseline", "base=base", "--title", "T", NULL), ==, 0);
  const char *md = f->out;
  g_assert_true (g_str_has_prefix (md, "## T\n"));

  /* Shape: a header, the rule, one line per row; 12 columns each. */
  guint table_lines = 0;
  g_auto(GStrv) lines = g_strsplit (md, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    if (lines[i][0] == '|') {
      table_lines++;
      guint bars = 0;
      for (const char *p = lines[i]; *p; p++)
        bars += *p == '|';
      g_assert_cmpuint (bars, ==, 13);
    }
  g_assert_cmpuint (table_lines, ==, 2 + 3);
  g_auto(GStrv) head = md_row (md, "run");
  const char *want_head[] = { "run", "n", "STS12", "STS13", "STS14", "STS15", "STS16", "STS-B", "SICK-R", "Avg",
                              "best dev", "train time", NULL };
  g_assert_cmpstrv (head, want_head);

  /* Group A: by hand for STS12 (61.3, 62.9, 60.4: mean 61.533, sample sd
   * sqrt(3.20667 / 2) = 1.266), computed here for the rest. */
  g_auto(GStrv) a = md_row (md, "A");
  g_assert_nonnull (a);
  g_assert_cmpstr (a[1], ==, "3");
  g_assert_cmpstr (a[2], ==, "61.53 ± 1.27");
  double col[3], avg[3];
  for (int k = 0; k < 7; k++) {
    for (int i = 0; i < 3; i++)
      col[i] = A[i][k];
    g_autofree char *want = pm (col, 3);
    g_assert_cmpstr (a[2 + k], ==, want);
  }
  for (int i = 0; i < 3; i++) {
    double s = 0;
    for (int k = 0; k < 7; k++)
      s += round2 (A[i][k]);
    avg[i] = s / 7;
  }
  g_autofree char *want_avg = pm (avg, 3);
  g_assert_cmpstr (a[9], ==, want_avg);
  /* best dev 74, 75, 78: mean 75.667, sd sqrt(13 / 3) = 2.082 */
  g_assert_cmpstr (a[10], ==, "75.67 ± 2.08");
  g_autofree char *want_dev = pm (A_dev, 3);
  g_assert_cmpstr (a[10], ==, want_dev);
  /* elapsed 100.5, 200.5, 300.5: mean 200.5 s */
  g_assert_cmpfloat (mean_of (A_elapsed, 3), ==, 200.5);
  g_assert_cmpstr (a[11], ==, "3m20s");

  /* Group B: every task sd 2 around the middle run, Avg 45 ± 2; no metrics. */
  g_auto(GStrv) b = md_row (md, "B");
  g_assert_nonnull (b);
  g_assert_cmpstr (b[1], ==, "3");
  g_assert_cmpstr (b[2], ==, "42.00 ± 2.00");
  g_assert_cmpstr (b[8], ==, "48.00 ± 2.00");
  g_assert_cmpstr (b[9], ==, "45.00 ± 2.00");
  g_assert_cmpstr (b[10], ==, "–");
  g_assert_cmpstr (b[11], ==, "–");

  /* The baseline: no ±, and Avg as the STS table prints it. */
  g_auto(GStrv) base = md_row (md, "base");
  g_assert_nonnull (base);
  g_assert_cmpstr (base[1], ==, "1");
  g_assert_cmpstr (base[2], ==, "1.00");
  g_assert_cmpstr (base[8], ==, "1.03");
  g_assert_cmpstr (base[9], ==, "1.00");

  /* Globs are sorted; each run's best step is listed (the tie keeps 125). */
  const char *s1 = strstr (md, "a/seed-1/results.json` (best dev 74.00 at step 250)");
  const char *s2 = strstr (md, "a/seed-2/results.json` (best dev 75.00 at step 125)");
  const char *s3 = strstr (md, "a/seed-3/results.json` (best dev 78.00 at step 250)");
  g_assert_true (s1 && s2 && s3 && s1 < s2 && s2 < s3);

  /* --markdown writes the same text, and stdout stays empty. */
  g_autofree char *expected = g_strdup (md);
  g_assert_cmpint (run (f, "STSIM_REPORT", "--group", "A=a/seed-*", "--group", "B=b/r1.json, b/r2.json,b/r3.json",
                        "--baseline", "base=base", "--title", "T", "--markdown", "out.md", NULL), ==, 0);
  g_assert_cmpstr (f->out, ==, "");
  g_autofree char *md_path = path_in (f, "out.md");
  g_autofree char *written = NULL;
  g_assert_true (g_file_get_contents (md_path, &written, NULL, NULL));
  g_assert_cmpstr (written, ==, expected);
}

/* ---- SVG checks with GMarkup --------------------------------------------------------------- */

typedef struct {
  GHashTable *count;    /* "element" and "element.class" -> count */
  GPtrArray  *values;   /* text of <text class="value"> */
  GPtrArray  *loss;     /* data-name of polyline.loss */
  GPtrArray  *best_cx, *dev_cx;
  gboolean    in_value;
} SvgScan;

static void
scan_start (GMarkupParseContext *ctx, const char *element, const char **names, const char **values, gpointer data,
            GError **error)
{
  SvgScan *s = data;
  const char *cls = NULL, *dname = NULL, *cx = NULL;
  for (guint i = 0; names[i]; i++) {
    if (strcmp (names[i], "class") == 0)
      cls = values[i];
    else if (strcmp (names[i], "data-name") == 0)
      dname = values[i];
    else if (strcmp (names[i], "cx") == 0)
      cx = values[i];
  }
  g_autofree char *key = g_strdup_printf ("%s.%s", element, cls ? cls : "");
  g_hash_table_insert (s->count, g_strdup (key), GUINT_TO_POINTER (GPOINTER_TO_UINT (
                         g_hash_table_lookup (s->count, key)) + 1));
  g_hash_table_insert (s->count, g_strdup (element), GUINT_TO_POINTER (GPOINTER_TO_UINT (
                         g_hash_table_lookup (s->count, element)) + 1));
  s->in_value = strcmp (element, "text") == 0 && cls && strcmp (cls, "value") == 0;
  if (strcmp (key, "polyline.loss") == 0)
    g_ptr_array_add (s->loss, g_strdup (dname));
  if (strcmp (key, "circle.best") == 0)
    g_ptr_array_add (s->best_cx, g_strdup (cx));
  if (strcmp (key, "circle.dev-point") == 0)
    g_ptr_array_add (s->dev_cx, g_strdup (cx));
}

static void
scan_text (GMarkupParseContext *ctx, const char *text, gsize len, gpointer data, GError **error)
{
  SvgScan *s = data;
  if (s->in_value)
    g_ptr_array_add (s->values, g_strndup (text, len));
  s->in_value = FALSE;
}

static void
scan_free (SvgScan *s)
{
  g_hash_table_unref (s->count);
  g_ptr_array_unref (s->values);
  g_ptr_array_unref (s->loss);
  g_ptr_array_unref (s->best_cx);
  g_ptr_array_unref (s->dev_cx);
}

/* Parses @path (fails the test if it is not well-formed) into @s. */
static void
scan_svg (const char *path, SvgScan *s)
{
  static const GMarkupParser parser = { scan_start, NULL, scan_text, NULL, NULL };
  g_autofree char *text = NULL;
  g_autoptr(GError) err = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  s->count = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  s->values = g_ptr_array_new_with_free_func (g_free);
  s->loss = g_ptr_array_new_with_free_func (g_free);
  s->best_cx = g_ptr_array_new_with_free_func (g_free);
  s->dev_cx = g_ptr_array_new_with_free_func (g_free);
  s->in_value = FALSE;
  /* Skip the XML declaration, which GMarkup does not take. */
  const char *body = strstr (text, "<svg");
  g_assert_nonnull (body);
  GMarkupParseContext *ctx = g_markup_parse_context_new (&parser, G_MARKUP_TREAT_CDATA_AS_TEXT, s, NULL);
  gboolean ok = g_markup_parse_context_parse (ctx, body, -1, &err) && g_markup_parse_context_end_parse (ctx, &err);
  g_markup_parse_context_free (ctx);
  g_assert_no_error (err);
  g_assert_true (ok);
}

static guint
count (SvgScan *s, const char *key)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (s->count, key));
}

/* --paired-with: runs pair by their resolved.ini seed, not by position; the
 * cells are the mean difference ± its standard error, computed here. */
static void
test_report_paired (Fixture *f, gconstpointer data)
{
  static const double delta[3] = { 1, 2, 4 };  /* C(seed s) − A(seed s) */
  for (int i = 0; i < 3; i++) {
    g_autofree char *res = g_strdup_printf ("a/seed-%d/results.json", i + 1);
    g_autofree char *ini = g_strdup_printf ("a/seed-%d/resolved.ini", i + 1);
    write_results (f, res, A[i], NULL);
    g_autofree char *seed = g_strdup_printf ("[run]\nname = a\nseed = %d\n", i + 1);
    write_file (f, ini, seed);
    /* Folder c/run-k holds seed 3 - k: position and seed disagree. */
    double c[7];
    for (int k = 0; k < 7; k++)
      c[k] = A[i][k] + delta[i];
    g_autofree char *cres = g_strdup_printf ("c/run-%d/results.json", 2 - i);
    g_autofree char *cini = g_strdup_printf ("c/run-%d/resolved.ini", 2 - i);
    write_results (f, cres, c, NULL);
    write_file (f, cini, seed);
    g_autofree char *bres = g_strdup_printf ("b/r%d.json", i + 1);
    write_results (f, bres, B[i], NULL);
  }
  g_assert_cmpint (run (f, "STSIM_REPORT", "--group", "A=a/seed-*", "--group", "C=c/run-*", "--paired-with", "A",
                        NULL), ==, 0);
  const char *paired = strstr (f->out, "### Paired differences from A");
  g_assert_nonnull (paired);
  double mean = (1 + 2 + 4) / 3.0, ss = 0;
  for (int i = 0; i < 3; i++)
    ss += (delta[i] - mean) * (delta[i] - mean);
  g_autofree char *want = g_strdup_printf ("%+.2f ± %.2f", mean, sqrt (ss / 2 / 3));  /* "+2.33 ± 0.88" */
  g_auto(GStrv) cells = md_row (paired, "C");
  g_assert_nonnull (cells);
  g_assert_cmpstr (cells[1], ==, "3");
  for (int k = 2; k <= 9; k++)  /* seven tasks and Avg */
    g_assert_cmpstr (cells[k], ==, want);
  g_assert_null (md_row (paired, "A"));

  /* Runs without a seed cannot be paired. */
  g_assert_cmpint (run (f, "STSIM_REPORT", "--group", "A=a/seed-*", "--group", "B=b/r1.json,b/r2.json,b/r3.json",
                        "--paired-with", "A", NULL), ==, 1);
  g_assert_nonnull (strstr (f->err, "no [run] seed"));
  g_assert_cmpint (run (f, "STSIM_REPORT", "--group", "A=a/seed-*", "--paired-with", "Z", NULL), ==, 1);
  g_assert_nonnull (strstr (f->err, "no group"));
}

static void
test_report_svg (Fixture *f, gconstpointer data)
{
  make_runs (f);
  g_assert_cmpint (run (f, "STSIM_REPORT", "--group", "A=a/seed-*", "--group", "B=b/r*.json",
                        "--baseline", "base=base/results.json", "--title", "A & B <x>", "--svg", "chart.svg", NULL),
                   ==, 0);
  g_autofree char *svg = path_in (f, "chart.svg");
  SvgScan s;
  scan_svg (svg, &s);
  g_assert_cmpuint (count (&s, "svg"), ==, 1);
  g_assert_cmpuint (count (&s, "rect.avg-bar"), ==, 3);    /* one per row */
  g_assert_cmpuint (count (&s, "rect.task-bar"), ==, 3 * 7);
  /* Error bars on the groups only: Avg 2 + tasks 2 x 7. */
  g_assert_cmpuint (count (&s, "path.err"), ==, 2 + 2 * 7);
  /* Value labels: the Avg means, in row order. */
  g_assert_cmpuint (s.values->len, ==, 3);
  double avg[3];
  for (int i = 0; i < 3; i++) {
    double sum = 0;
    for (int k = 0; k < 7; k++)
      sum += round2 (A[i][k]);
    avg[i] = sum / 7;
  }
  g_autofree char *a = g_strdup_printf ("%.2f", mean_of (avg, 3));
  g_assert_cmpstr (g_ptr_array_index (s.values, 0), ==, a);
  g_assert_cmpstr (g_ptr_array_index (s.values, 1), ==, "45.00");
  g_assert_cmpstr (g_ptr_array_index (s.values, 2), ==, "1.00");
  scan_free (&s);
}

/* ---- errors ---------------------------------------------------------------------------------- */

static void
test_report_unequal_groups (Fixture *f, gconstpointer data)
{
  make_runs (f);
  g_assert_cmpint (run (f, "STSIM_REPORT", "--group", "A=a/seed-*", "--group", "B=b/r1.json,b/r2.json", NULL), ==, 1);
  g_assert_nonnull (strstr (f->err, "group 'B' has 2 runs"));
  g_assert_nonnull (strstr (f->err, "'A' has 3"));
  g_assert_cmpstr (f->out, ==, "");
}

static void
test_report_missing_results (Fixture *f, gconstpointer data)
{
  make_runs (f);
  g_autofree char *dir = path_in (f, "a/seed-4");
  g_assert_cmpint (g_mkdir (dir, 0755), ==, 0);
  g_assert_cmpint (run (f, "STSIM_REPORT", "--group", "A=a/seed-*", NULL), ==, 1);
  g_assert_nonnull (strstr (f->err, "a/seed-4/results.json: no such file"));
  g_assert_cmpint (run (f, "STSIM_REPORT", "--baseline", "x=nowhere/results.json", NULL), ==, 1);
  g_assert_nonnull (strstr (f->err, "nowhere/results.json: no such file or folder"));
  g_assert_cmpint (run (f, "STSIM_REPORT", "--group", "A=c/seed-*", NULL), ==, 1);
  g_assert_nonnull (strstr (f->err, "'c/seed-*' matches no file"));
}

static void
test_report_missing_task (Fixture *f, gconstpointer data)
{
  write_results (f, "r/results.json", BASE, "SICKRelatedness");
  g_assert_cmpint (run (f, "STSIM_REPORT", "--baseline", "r=r", NULL), ==, 1);
  g_assert_nonnull (strstr (f->err, "r/results.json: the table has no SICKRelatedness"));
  write_file (f, "dev/results.json", "{\"mode\": \"dev\", \"dev\": {\"STS-B\": 76.6}}");
  g_assert_cmpint (run (f, "STSIM_REPORT", "--baseline", "d=dev", NULL), ==, 1);
  g_assert_nonnull (strstr (f->err, "dev/results.json: no \"table\" object"));
  write_file (f, "bad/results.json", "{\"table\": ");
  g_assert_cmpint (run (f, "STSIM_REPORT", "--baseline", "b=bad", NULL), ==, 1);
  g_assert_nonnull (strstr (f->err, "bad/results.json"));
  /* Nested 100000 deep: json-glib's recursive parser overflowed the stack. */
  GString *deep = g_string_new ("{\"table\": ");
  for (int i = 0; i < 100000; i++)
    g_string_append_c (deep, '[');
  write_file (f, "deep/results.json", deep->str);
  g_string_free (deep, TRUE);
  g_assert_cmpint (run (f, "STSIM_REPORT", "--baseline", "d=deep", NULL), ==, 1);
  g_assert_nonnull (strstr (f->err, "deep/results.json: JSON arrays and objects nest deeper than 64 levels"));
}

static void
test_report_bad_metrics (Fixture *f, gconstpointer data)
{
  write_results (f, "r/results.json", BASE, NULL);
  write_file (f, "r/metrics.jsonl", "{\"type\":\"eval\",\"step\":1,\"dev\":0.5}\n{\"type\":\"eval\",\"step\"\n");
  g_assert_cmpint (run (f, "STSIM_REPORT", "--baseline", "r=r", NULL), ==, 1);
  g_assert_nonnull (strstr (f->err, "r/metrics.jsonl:2:"));
  /* A line nested 100000 deep, and metrics.jsonl pointing at /dev/zero. */
  GString *deep = g_string_new ("{\"type\":\"eval\",\"step\":1,\"dev\":0.5}\n{\"x\": ");
  for (int i = 0; i < 100000; i++)
    g_string_append_c (deep, '[');
  write_file (f, "r/metrics.jsonl", deep->str);
  g_string_free (deep, TRUE);
  g_assert_cmpint (run (f, "STSIM_REPORT", "--baseline", "r=r", NULL), ==, 1);
  g_assert_nonnull (strstr (f->err, "r/metrics.jsonl:2:"));
  g_autofree char *metrics = path_in (f, "r/metrics.jsonl");
  g_unlink (metrics);
  g_assert_cmpint (symlink ("/dev/zero", metrics), ==, 0);
  g_assert_cmpint (run (f, "STSIM_REPORT", "--baseline", "r=r", NULL), ==, 1);
  g_assert_nonnull (strstr (f->err, "character device"));
}

static void
test_report_usage (Fixture *f, gconstpointer data)
{
  g_assert_cmpint (run (f, "STSIM_REPORT", NULL), ==, 2);
  g_assert_cmpint (run (f, "STSIM_REPORT", "--group", "noequals", NULL), ==, 2);
  g_assert_nonnull (strstr (f->err, "NAME=RUNS"));
  g_assert_cmpint (run (f, "STSIM_REPORT", "--group", "x=a", "--group", "x=b", NULL), ==, 2);
  g_assert_cmpint (run (f, "STSIM_REPORT", "--curves", "x", "--group", "x=a", NULL), ==, 2);
  make_runs (f);
  g_assert_cmpint (run (f, "STSIM_REPORT", "--baseline", "x=a/seed-*", NULL), ==, 1);
  g_assert_nonnull (strstr (f->err, "a baseline is one run"));
}

/* ---- curves ---------------------------------------------------------------------------------- */

/* metrics.jsonl with @n_train train lines (two loss terms, one falling by
 * @decades decades) and an eval line every 5th; the best dev is at step 100
 * (the second evaluation) and tied at step 200. */
static char *
curves_metrics (guint n_train, double decades)
{
  GString *s = g_string_new (NULL);
  for (guint i = 1; i <= n_train; i++) {
    double a = 2.0 * pow (10, -decades * i / n_train), b = 0.5 + 0.1 * (i % 3);
    g_string_append_printf (s, "{\"type\":\"train\",\"step\":%u,\"epoch\":0,\"loss\":%.6g,\"loss.objective.a\":%.6g,"
                            "\"loss.objective.b\":%.6g,\"lr\":0.0001,\"elapsed\":%u.5}\n", i * 10, a + b, a, b, i);
    if (i % 5 == 0) {
      guint step = i * 10;
      double dev = step == 100 || step == 200 ? 0.9 : 0.1 + 0.001 * i;
      g_string_append_printf (s, "{\"type\":\"eval\",\"step\":%u,\"dev\":%.4f,\"best\":0.9}\n", step, dev);
    }
  }
  return g_string_free (s, FALSE);
}

static void
test_curves_svg (Fixture *f, gconstpointer data)
{
  g_autofree char *metrics = path_in (f, "metrics.jsonl");
  g_autofree char *svg = path_in (f, "curves.svg");
  g_autofree char *text = curves_metrics (500, 4);
  g_assert_true (g_file_set_contents (metrics, text, -1, NULL));
  g_autoptr(GError) err = NULL;
  g_assert_true (stsim_curves_write_svg (metrics, svg, "run & <name>", &err));
  g_assert_no_error (err);

  SvgScan s;
  scan_svg (svg, &s);
  /* One polyline per loss term, the total included. */
  g_assert_cmpuint (s.loss->len, ==, 3);
  g_assert_true (g_ptr_array_find_with_equal_func (s.loss, "loss", g_str_equal, NULL));
  g_assert_true (g_ptr_array_find_with_equal_func (s.loss, "loss.objective.a", g_str_equal, NULL));
  g_assert_true (g_ptr_array_find_with_equal_func (s.loss, "loss.objective.b", g_str_equal, NULL));
  g_assert_cmpuint (count (&s, "polyline.dev"), ==, 1);
  g_assert_cmpuint (count (&s, "circle.dev-point"), ==, 100);
  /* The best point is the first of the tie (step 100, the 2nd evaluation). */
  g_assert_cmpuint (s.best_cx->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (s.best_cx, 0), ==, g_ptr_array_index (s.dev_cx, 1));
  g_assert_cmpstr (g_ptr_array_index (s.best_cx, 0), !=, g_ptr_array_index (s.dev_cx, 3));
  scan_free (&s);

  g_autofree char *out = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (svg, &out, &len, NULL));
  g_assert_cmpuint (len, <, 200 * 1024);
  g_test_message ("500 train + 100 eval lines: %" G_GSIZE_FORMAT " bytes", len);
  /* Four decades: log scale; the title escaped. */
  g_assert_nonnull (strstr (out, "loss (log scale)"));
  g_assert_nonnull (strstr (out, "run &amp; &lt;name&gt;"));
  g_assert_nonnull (strstr (out, "best 0.9 at step 100"));

  /* Within two decades: linear. */
  g_autofree char *flat = curves_metrics (40, 1);
  g_assert_true (g_file_set_contents (metrics, flat, -1, NULL));
  g_assert_true (stsim_curves_write_svg (metrics, svg, NULL, &err));
  g_autofree char *out2 = NULL;
  g_assert_true (g_file_get_contents (svg, &out2, NULL, NULL));
  g_assert_null (strstr (out2, "log scale"));
  g_assert_nonnull (strstr (out2, ">loss</text>"));
}

static void
test_curves_empty (Fixture *f, gconstpointer data)
{
  g_autofree char *metrics = path_in (f, "metrics.jsonl");
  g_autofree char *svg = path_in (f, "curves.svg");
  g_autoptr(GError) err = NULL;
  g_assert_true (g_file_set_contents (metrics, "", -1, NULL));
  g_assert_true (stsim_curves_write_svg (metrics, svg, "t", &err));
  SvgScan s;
  scan_svg (svg, &s);
  g_assert_cmpuint (s.loss->len, ==, 0);
  g_assert_cmpuint (count (&s, "polyline.dev"), ==, 0);
  scan_free (&s);
}

static void
test_curves_malformed (Fixture *f, gconstpointer data)
{
  static const struct { const char *line, *what; } cases[] = {
    { "{\"type\":\"train\",\"step\":3,\"loss\":", "not valid JSON" },
    { "[1, 2]", "not a JSON object" },
    { "{\"step\":3,\"loss\":1}", "no string member \"type\"" },
    { "{\"type\":\"train\",\"step\":\"3\",\"loss\":1}", "\"step\"" },
    { "{\"type\":\"train\",\"step\":3,\"loss.x\":\"high\"}", "\"loss.x\" is not a number" },
    { "{\"type\":\"eval\",\"step\":3}", "\"dev\" is missing" },
  };
  g_autofree char *metrics = path_in (f, "metrics.jsonl");
  g_autofree char *svg = path_in (f, "curves.svg");
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr(GError) err = NULL;
    g_autofree char *text = g_strdup_printf ("{\"type\":\"train\",\"step\":1,\"loss\":2.0}\n\n%s\n", cases[i].line);
    g_assert_true (g_file_set_contents (metrics, text, -1, NULL));
    g_assert_false (stsim_curves_write_svg (metrics, svg, "t", &err));
    g_assert_error (err, STSIM_ERROR, STSIM_ERROR_PARSE);
    g_autofree char *where = g_strdup_printf ("%s:3: ", metrics);
    g_assert_true (g_str_has_prefix (err->message, where));
    g_assert_nonnull (strstr (err->message, cases[i].what));
    g_assert_false (g_file_test (svg, G_FILE_TEST_EXISTS));
  }
  g_autoptr(GError) err = NULL;
  g_autofree char *missing = path_in (f, "none.jsonl");
  g_assert_false (stsim_curves_write_svg (missing, svg, "t", &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (err->message, missing));
}

static void
test_curves_tool (Fixture *f, gconstpointer data)
{
  g_autofree char *text = curves_metrics (20, 1);
  write_file (f, "run/metrics.jsonl", text);
  write_file (f, "run/resolved.ini", "[run]\nname = my-run\nseed = 1\n");
  g_assert_cmpint (run (f, "STSIM_REPORT", "--curves", "run", NULL), ==, 0);
  g_autofree char *svg = path_in (f, "run/curves.svg");
  g_autofree char *out = NULL;
  g_assert_true (g_file_get_contents (svg, &out, NULL, NULL));
  g_assert_nonnull (strstr (out, ">my-run</text>"));
  write_file (f, "run/metrics.jsonl", "{\"type\":\"train\",\"step\":1,\"loss\":1}\nnot json\n");
  g_assert_cmpint (run (f, "STSIM_REPORT", "--curves", "run", NULL), ==, 1);
  g_assert_nonnull (strstr (f->err, "run/metrics.jsonl:2: "));
  g_assert_cmpint (run (f, "STSIM_REPORT", "--curves", "nowhere", NULL), ==, 1);
}

/* The trainer draws curves.svg: 6 steps of a tiny BERT, dev every 3. */
static void
test_curves_trainer (Fixture *f, gconstpointer data)
{
  const char *src = g_getenv ("G_TEST_SRCDIR");
  g_autofree char *model = g_build_filename (src, "fixtures", "models", "bert-tiny", NULL);
  g_autofree char *corpus = g_build_filename (src, "train", "data", "small-corpus.txt", NULL);
  g_autofree char *recipe = g_strdup_printf ("[run]\nname = curves-test\nseed = 42\nthreads = 1\noutput = out\n"
                                             "[train]\ncorpus = %s\nbatch_size = 8\nsteps = 6\nlr = 1e-3\n"
                                             "eval_every = 3\nlog_every = 1\nsave_every = 0\ntest = false\n"
                                             "[encoder]\nuse = bert\nmodel = %s\nmlp_init = random\nmax_len = 64\n"
                                             "[objective.contrastive]\nuse = contrastive\n"
                                             "[evaluator.sts]\nuse = sts\ntasks = STSBenchmark\nskip_train = true\n",
                                             corpus, model);
  write_file (f, "r.ini", recipe);
  g_assert_cmpint (run (f, "STSIM_RUN", "r.ini", NULL), ==, 0);
  g_autofree char *svg = path_in (f, "out/curves.svg");
  SvgScan s;
  scan_svg (svg, &s);
  g_assert_cmpuint (s.loss->len, ==, 2);  /* loss, loss.objective.contrastive */
  g_assert_cmpuint (count (&s, "circle.dev-point"), ==, 2);
  g_assert_cmpuint (count (&s, "circle.best"), ==, 1);
  scan_free (&s);
  g_autofree char *out = NULL;
  g_assert_true (g_file_get_contents (svg, &out, NULL, NULL));
  g_assert_nonnull (strstr (out, ">curves-test</text>"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/report/numbers", test_report_numbers);
  ADD ("/report/svg", test_report_svg);
  ADD ("/report/paired", test_report_paired);
  ADD ("/report/unequal-groups", test_report_unequal_groups);
  ADD ("/report/missing-results", test_report_missing_results);
  ADD ("/report/missing-task", test_report_missing_task);
  ADD ("/report/bad-metrics", test_report_bad_metrics);
  ADD ("/report/usage", test_report_usage);
  ADD ("/curves/svg", test_curves_svg);
  ADD ("/curves/empty", test_curves_empty);
  ADD ("/curves/malformed", test_curves_malformed);
  ADD ("/curves/tool", test_curves_tool);
  ADD ("/curves/trainer", test_curves_trainer);
  return g_test_run ();
}
