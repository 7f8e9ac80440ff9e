/* stsim-report: the STS tables of several runs as one Markdown table and a
 * bar chart; or a run's training curves.
 *
 *   stsim-report --group 'SimCSE=runs/simcse/seed-*' --group 'DiffCSE=DIR1,DIR2,DIR3'
 *                --baseline 'bow=runs/bow' [--paired-with SimCSE] [--markdown OUT.md] [--svg OUT.svg] [--title T]
 *   stsim-report --curves RUN_DIR [--svg OUT.svg] [--title T]
 *
 * A group is a comma-separated list of run folders or results.json files,
 * each possibly a glob pattern (expanded here and sorted); a baseline is one
 * run. Rows appear in command-line order. --paired-with NAME adds a table of
 * each group's differences from group NAME over runs of the same seed
 * ([run] seed of the resolved.ini beside each results.json): mean and
 * standard error of the paired differences. Exit codes: 0 ok, 1 invalid input
 * (missing or malformed files, groups of unequal size), 2 usage.
 */
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "stsim/stsim-error.h"
#include "stsim/stsim-sts.h"
#include "tool-common.h"
#include "stsim/stsim-curves.h"
#include "stsim/stsim-bounded.h"

/* Columns of a run: the seven tasks in table order, then these. */
enum { N_TASKS = 7, COL_AVG = N_TASKS, COL_DEV, COL_TIME, N_COLS };

typedef struct {
  char   *results;      /* the results.json read */
  char   *metrics;      /* metrics.jsonl beside it, or NULL */
  double  v[N_COLS];    /* Spearman x100 per task, Avg, best dev x100, train seconds; NAN = not known */
  gint64  best_step;    /* step of the best dev score, -1 if none */
  gint64  seed;         /* [run] seed of the resolved.ini beside it, -1 if none */
} Run;

typedef struct {
  char      *name;
  char      *spec;      /* as given: NAME=SPEC */
  gboolean   baseline;
  GPtrArray *runs;      /* Run */
} Row;

typedef struct {
  double mean, sd;      /* sd: sample (n - 1), NAN for n < 2 */
  guint  n;             /* runs with a value */
} Stat;

static void
run_free (Run *r)
{
  g_free (r->results);
  g_free (r->metrics);
  g_free (r);
}

static void
row_free (Row *row)
{
  g_free (row->name);
  g_free (row->spec);
  g_ptr_array_unref (row->runs);
  g_free (row);
}

/* ---- options: --group and --baseline keep their command-line order ----------------------- */

static gboolean
on_row_option (const char *option_name, const char *value, gpointer data, GError **error)
{
  GPtrArray *rows = data;
  const char *eq = strchr (value, '=');
  if (eq == NULL || eq == value || eq[1] == '\0') {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s expects NAME=RUNS, got '%s'", option_name,
                 value);
    return FALSE;
  }
  Row *row = g_new0 (Row, 1);
  row->name = g_strndup (value, eq - value);
  row->spec = g_strdup (eq + 1);
  row->baseline = strcmp (option_name, "--baseline") == 0 || strcmp (option_name, "-b") == 0;
  row->runs = g_ptr_array_new_with_free_func ((GDestroyNotify) run_free);
  for (guint i = 0; i < rows->len; i++)
    if (strcmp (((Row *) g_ptr_array_index (rows, i))->name, row->name) == 0) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "two rows are named '%s'", row->name);
      row_free (row);
      return FALSE;
    }
  g_ptr_array_add (rows, row);
  return TRUE;
}

/* ---- reading runs ------------------------------------------------------------------------ */

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* The paths of one item of a list: itself, or what its pattern matches
 * (sorted by byte order, not by locale, so reports are reproducible). */
static gboolean
expand_item (const char *item, GPtrArray *out, GError **error)
{
  if (strpbrk (item, "*?[") == NULL) {
    g_ptr_array_add (out, g_strdup (item));
    return TRUE;
  }
  glob_t g;
  int rc = glob (item, 0, NULL, &g);
  if (rc != 0) {
    if (rc != GLOB_NOMATCH)
      globfree (&g);
    g_set_error (error, STSIM_ERROR, rc == GLOB_NOMATCH ? STSIM_ERROR_NOT_FOUND : STSIM_ERROR_IO,
                 "'%s' matches no file or folder%s", item,
                 rc == GLOB_NOMATCH ? " (patterns are expanded from the current folder)" : "");
    return FALSE;
  }
  g_autoptr(GPtrArray) found = g_ptr_array_new ();
  for (size_t i = 0; i < g.gl_pathc; i++)
    g_ptr_array_add (found, g_strdup (g.gl_pathv[i]));
  globfree (&g);
  g_ptr_array_sort (found, compare_strings);
  for (guint i = 0; i < found->len; i++)
    g_ptr_array_add (out, g_ptr_array_index (found, i));
  return TRUE;
}

/* A table value of @path, Spearman x100. */
static gboolean
table_value (JsonObject *table, const char *path, const char *task, double *value, GError **error)
{
  JsonNode *n = json_object_get_member (table, task);
  const char *shown = stsim_sts_task_short_name (task);
  if (n == NULL) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "%s: the table has no %s (%s): the run evaluated only "
                 "some tasks; evaluate all seven (stsim-eval without --tasks) to compare it", path, task, shown);
    return FALSE;
  }
  if (JSON_NODE_HOLDS_NULL (n)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NUMERIC, "%s: %s is null in the table (an undefined correlation: "
                 "the encoder gave constant scores)", path, task);
    return FALSE;
  }
  GType t = JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n) : G_TYPE_INVALID;
  if (t != G_TYPE_DOUBLE && t != G_TYPE_INT64) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s: table member %s is not a number", path, task);
    return FALSE;
  }
  *value = t == G_TYPE_DOUBLE ? json_node_get_double (n) : (double) json_node_get_int (n);
  return TRUE;
}

static gboolean
read_results (Run *run, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) e = NULL;
  if (!stsim_json_load_file (parser, run->results, STSIM_LIMIT_JSON, &e)) {
    g_set_error (error, STSIM_ERROR, g_error_matches (e, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? STSIM_ERROR_NOT_FOUND
                                                                                          : STSIM_ERROR_PARSE,
                 "%s: %s", run->results, e->message);
    return FALSE;
  }
  JsonNode *root = json_parser_get_root (parser);
  JsonObject *o = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  JsonNode *tn = o ? json_object_get_member (o, "table") : NULL;
  if (tn == NULL || !JSON_NODE_HOLDS_OBJECT (tn)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s: no \"table\" object: not the TEST report of a run or of "
                 "stsim-eval --json (a --mode dev report has no table)", run->results);
    return FALSE;
  }
  JsonObject *table = json_node_get_object (tn);
  const char *const *tasks = stsim_sts_task_names ();
  double printed_sum = 0;
  for (guint k = 0; k < N_TASKS; k++) {
    if (!table_value (table, run->results, tasks[k], &run->v[k], error))
      return FALSE;
    /* Avg as the STS table prints it (core/eval/sts-eval.c, SimCSE's
     * evaluation.py): the mean of the seven cells rounded to two decimals,
     * so that a one-run row reads exactly like the run's own table. */
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    printed_sum += g_ascii_strtod (g_ascii_formatd (buf, sizeof buf, "%.2f", run->v[k]), NULL);
  }
  run->v[COL_AVG] = printed_sum / N_TASKS;
  return TRUE;
}

/* Best dev (the trainer's rule: strictly greater, so ties keep the earlier
 * step) and the last "elapsed" from metrics.jsonl. */
static gboolean
read_metrics (Run *run, GError **error)
{
  g_autofree char *text = NULL;
  g_autoptr(GError) e = NULL;
  if (!stsim_file_get_contents (run->metrics, STSIM_LIMIT_METRICS, &text, NULL, &e)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "%s: %s", run->metrics, e->message);
    return FALSE;
  }
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    const char *l = g_strstrip (lines[i]);
    if (!*l)
      continue;
    g_autoptr(JsonParser) parser = json_parser_new ();
    JsonNode *root = stsim_json_load_data (parser, l, -1, NULL) ? json_parser_get_root (parser) : NULL;
    if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s:%u: not a JSON object; every line of metrics.jsonl is "
                   "one JSON object", run->metrics, i + 1);
      return FALSE;
    }
    JsonObject *o = json_node_get_object (root);
    JsonNode *el = json_object_get_member (o, "elapsed");
    if (el && JSON_NODE_HOLDS_VALUE (el) && (json_node_get_value_type (el) == G_TYPE_DOUBLE ||
                                             json_node_get_value_type (el) == G_TYPE_INT64))
      run->v[COL_TIME] = json_node_get_double (el);
    const char *type = json_object_get_string_member_with_default (o, "type", "");
    JsonNode *dev = json_object_get_member (o, "dev");
    if (strcmp (type, "eval") != 0 || dev == NULL || JSON_NODE_HOLDS_NULL (dev))
      continue;
    if (!JSON_NODE_HOLDS_VALUE (dev) || (json_node_get_value_type (dev) != G_TYPE_DOUBLE &&
                                         json_node_get_value_type (dev) != G_TYPE_INT64)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s:%u: \"dev\" is not a number", run->metrics, i + 1);
      return FALSE;
    }
    double d = 100.0 * json_node_get_double (dev);
    if (isnan (run->v[COL_DEV]) || d > run->v[COL_DEV]) {
      run->v[COL_DEV] = d;
      run->best_step = json_object_get_int_member_with_default (o, "step", -1);
    }
  }
  return TRUE;
}

/* One item: a run folder (its results.json) or a results.json file. */
static Run *
run_load (const char *item, GError **error)
{
  Run *run = g_new0 (Run, 1);
  for (guint k = 0; k < N_COLS; k++)
    run->v[k] = NAN;
  run->best_step = -1;
  run->seed = -1;
  if (g_file_test (item, G_FILE_TEST_IS_DIR)) {
    run->results = g_build_filename (item, "results.json", NULL);
    if (!g_file_test (run->results, G_FILE_TEST_EXISTS)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "%s: no such file (a run writes results.json when "
                   "it has finished; is %s a finished run folder?)", run->results, item);
      run_free (run);
      return NULL;
    }
  } else if (g_file_test (item, G_FILE_TEST_EXISTS)) {
    run->results = g_strdup (item);
  } else {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "%s: no such file or folder (expected a run folder or "
                 "its results.json)", item);
    run_free (run);
    return NULL;
  }
  g_autofree char *dir = g_path_get_dirname (run->results);
  g_autofree char *metrics = g_build_filename (dir, "metrics.jsonl", NULL);
  if (g_file_test (metrics, G_FILE_TEST_EXISTS))
    run->metrics = g_steal_pointer (&metrics);
  g_autofree char *resolved = g_build_filename (dir, "resolved.ini", NULL);
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  if (g_key_file_load_from_file (kf, resolved, G_KEY_FILE_NONE, NULL) && g_key_file_has_key (kf, "run", "seed", NULL))
    run->seed = g_key_file_get_int64 (kf, "run", "seed", NULL);
  if (!read_results (run, error) || (run->metrics && !read_metrics (run, error))) {
    run_free (run);
    return NULL;
  }
  return run;
}

static gboolean
row_load (Row *row, GError **error)
{
  g_auto(GStrv) items = g_strsplit (row->spec, ",", -1);
  g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; items[i]; i++) {
    const char *item = g_strstrip (items[i]);
    if (*item && !expand_item (item, paths, error)) {
      g_prefix_error (error, "%s '%s': ", row->baseline ? "baseline" : "group", row->name);
      return FALSE;
    }
  }
  if (paths->len == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s '%s': no runs given", row->baseline ? "baseline" :
                 "group", row->name);
    return FALSE;
  }
  if (row->baseline && paths->len != 1) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "baseline '%s': '%s' gives %u runs; a baseline is one run "
                 "(use --group for several)", row->name, row->spec, paths->len);
    return FALSE;
  }
  for (guint i = 0; i < paths->len; i++) {
    Run *run = run_load (g_ptr_array_index (paths, i), error);
    if (run == NULL)
      return FALSE;
    for (guint j = 0; j < row->runs->len; j++)
      if (strcmp (((Run *) g_ptr_array_index (row->runs, j))->results, run->results) == 0) {
        g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "group '%s': %s is listed twice", row->name,
                     run->results);
        run_free (run);
        return FALSE;
      }
    g_ptr_array_add (row->runs, run);
  }
  return TRUE;
}

/* Means over several seeds only compare when every group has as many. */
static gboolean
check_sizes (GPtrArray *rows, GError **error)
{
  const Row *first = NULL;
  for (guint i = 0; i < rows->len; i++) {
    const Row *row = g_ptr_array_index (rows, i);
    if (row->baseline)
      continue;
    if (first == NULL)
      first = row;
    else if (row->runs->len != first->runs->len) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "group '%s' has %u runs (%s) but group '%s' has %u (%s): "
                   "compare groups of equal size (a seed still running, or a pattern matching too much?)",
                   row->name, row->runs->len, row->spec, first->name, first->runs->len, first->spec);
      return FALSE;
    }
  }
  return TRUE;
}

/* ---- statistics and formatting ------------------------------------------------------------ */

static Stat
row_stat (const Row *row, guint col)
{
  Stat s = { NAN, NAN, 0 };
  double sum = 0;
  for (guint i = 0; i < row->runs->len; i++) {
    double v = ((Run *) g_ptr_array_index (row->runs, i))->v[col];
    if (isfinite (v)) {
      sum += v;
      s.n++;
    }
  }
  if (s.n == 0)
    return s;
  s.mean = sum / s.n;
  if (s.n < 2)
    return s;
  double ss = 0;
  for (guint i = 0; i < row->runs->len; i++) {
    double v = ((Run *) g_ptr_array_index (row->runs, i))->v[col];
    if (isfinite (v))
      ss += (v - s.mean) * (v - s.mean);
  }
  s.sd = sqrt (ss / (s.n - 1));
  return s;
}

static char *
format_seconds (double s)
{
  if (s < 60)
    return g_strdup_printf ("%.0fs", s);
  if (s < 3600)
    return g_strdup_printf ("%dm%02ds", (int) (s / 60), (int) fmod (s, 60));
  return g_strdup_printf ("%dh%02dm", (int) (s / 3600), (int) fmod (s / 60, 60));
}

/* A cell: "mean ± sd" (groups of two or more runs), "value" (one run or a
 * baseline), "–" (unknown); "(k of n)" when only some runs had the value. */
static char *
format_cell (const Row *row, guint col)
{
  Stat s = row_stat (row, col);
  if (s.n == 0)
    return g_strdup ("–");
  char a[G_ASCII_DTOSTR_BUF_SIZE], b[G_ASCII_DTOSTR_BUF_SIZE];
  GString *out = g_string_new (NULL);
  if (col == COL_TIME) {
    g_autofree char *t = format_seconds (s.mean);
    g_string_append (out, t);
  } else {
    g_string_append (out, g_ascii_formatd (a, sizeof a, "%.2f", s.mean));
    if (!row->baseline && s.n > 1)
      g_string_append_printf (out, " ± %s", g_ascii_formatd (b, sizeof b, "%.2f", s.sd));
  }
  if (s.n < row->runs->len)
    g_string_append_printf (out, " (%u of %u)", s.n, row->runs->len);
  return g_string_free (out, FALSE);
}

static void
append_md_escaped (GString *out, const char *text)
{
  for (const char *p = text; *p; p++) {
    if (*p == '|' || *p == '\\')
      g_string_append_c (out, '\\');
    g_string_append_c (out, *p);
  }
}

static char *
report_markdown (GPtrArray *rows, const char *title)
{
  const char *const *tasks = stsim_sts_task_names ();
  GString *out = g_string_new (NULL);
  g_string_append_printf (out, "## %s\n\n| run | n |", title);
  for (guint k = 0; k < N_TASKS; k++)
    g_string_append_printf (out, " %s |", stsim_sts_task_short_name (tasks[k]));
  g_string_append (out, " Avg | best dev | train time |\n|:---|---:|");
  for (guint k = 0; k < N_COLS; k++)
    g_string_append (out, "---:|");
  g_string_append_c (out, '\n');
  for (guint i = 0; i < rows->len; i++) {
    const Row *row = g_ptr_array_index (rows, i);
    g_string_append (out, "| ");
    append_md_escaped (out, row->name);
    g_string_append_printf (out, " | %u |", row->runs->len);
    for (guint k = 0; k < N_COLS; k++) {
      g_autofree char *cell = format_cell (row, k);
      g_string_append_printf (out, " %s |", cell);
    }
    g_string_append_c (out, '\n');
  }
  g_string_append (out, "\nSpearman x100 as the STS table prints it: STS12-16 \"all\", STS-B and SICK-R test; Avg of a "
                   "run is the mean of its seven cells rounded to two decimals. Groups: mean ± sample standard "
                   "deviation (n - 1) over their runs. best dev: the highest STS-B dev Spearman x100 in the run's "
                   "metrics.jsonl; train time: its last \"elapsed\" (training and dev evaluations).\n\nRuns:\n\n");
  for (guint i = 0; i < rows->len; i++) {
    const Row *row = g_ptr_array_index (rows, i);
    g_string_append (out, "- ");
    append_md_escaped (out, row->name);
    g_string_append_printf (out, "%s (`%s`):", row->baseline ? " (baseline)" : "", row->spec);
    for (guint j = 0; j < row->runs->len; j++) {
      const Run *run = g_ptr_array_index (row->runs, j);
      g_string_append_printf (out, "%s `%s`", j ? "," : "", run->results);
      if (isfinite (run->v[COL_DEV])) {
        char buf[G_ASCII_DTOSTR_BUF_SIZE];
        g_string_append_printf (out, " (best dev %s at step %" G_GINT64_FORMAT ")",
                                g_ascii_formatd (buf, sizeof buf, "%.2f", run->v[COL_DEV]), run->best_step);
      }
    }
    g_string_append_c (out, '\n');
  }
  return g_string_free (out, FALSE);
}

/* ---- paired differences -------------------------------------------------------------------- */

static const Run *
run_of_seed (const Row *row, gint64 seed)
{
  for (guint j = 0; j < row->runs->len; j++)
    if (((const Run *) g_ptr_array_index (row->runs, j))->seed == seed)
      return g_ptr_array_index (row->runs, j);
  return NULL;
}

/* "mean ± se" of the differences @d[0..n). */
static char *
format_paired (const double *d, guint n)
{
  char a[G_ASCII_DTOSTR_BUF_SIZE], b[G_ASCII_DTOSTR_BUF_SIZE];
  double mean = 0, ss = 0;
  for (guint i = 0; i < n; i++)
    mean += d[i] / n;
  for (guint i = 0; i < n; i++)
    ss += (d[i] - mean) * (d[i] - mean);
  if (n < 2)
    return g_strdup_printf ("%+.2f", mean);
  g_ascii_formatd (a, sizeof a, "%+.2f", mean);
  return g_strdup_printf ("%s ± %s", a, g_ascii_formatd (b, sizeof b, "%.2f", sqrt (ss / (n - 1) / n)));
}

/* One row of the paired table; fails when a seed has no partner. */
static gboolean
append_paired_row (GString *out, const Row *row, const Row *ref, GError **error)
{
  guint n = row->runs->len;
  g_autofree double *d = g_new (double, (gsize) n * N_COLS);
  for (guint j = 0; j < n; j++) {
    const Run *r = g_ptr_array_index (row->runs, j);
    const Run *q = r->seed >= 0 ? run_of_seed (ref, r->seed) : NULL;
    if (q == NULL) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "--paired-with %s: %s has %s; every run of group '%s' "
                   "needs a run of the same [run] seed in '%s' (its resolved.ini)", ref->name, r->results,
                   r->seed >= 0 ? "a seed that group lacks" : "no [run] seed beside it", row->name, ref->name);
      return FALSE;
    }
    for (guint k = 0; k < N_COLS; k++)
      d[k * n + j] = r->v[k] - q->v[k];
  }
  g_string_append (out, "| ");
  append_md_escaped (out, row->name);
  g_string_append_printf (out, " | %u |", n);
  for (guint k = 0; k <= COL_DEV; k++) {
    g_autofree char *cell = format_paired (d + k * n, n);
    g_string_append_printf (out, " %s |", cell);
  }
  g_string_append_c (out, '\n');
  return TRUE;
}

static char *
report_paired (GPtrArray *rows, const char *name, GError **error)
{
  const Row *ref = NULL;
  for (guint i = 0; i < rows->len; i++)
    if (strcmp (((const Row *) g_ptr_array_index (rows, i))->name, name) == 0)
      ref = g_ptr_array_index (rows, i);
  if (ref == NULL || ref->baseline) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "--paired-with %s: no group of that name", name);
    return NULL;
  }
  const char *const *tasks = stsim_sts_task_names ();
  g_autoptr(GString) out = g_string_new (NULL);
  g_string_append (out, "\n### Paired differences from ");
  append_md_escaped (out, name);
  g_string_append (out, " (same seeds)\n\n| run | pairs |");
  for (guint k = 0; k < N_TASKS; k++)
    g_string_append_printf (out, " %s |", stsim_sts_task_short_name (tasks[k]));
  g_string_append (out, " Avg | best dev |\n|:---|---:|");
  for (guint k = 0; k <= COL_DEV; k++)
    g_string_append (out, "---:|");
  g_string_append_c (out, '\n');
  for (guint i = 0; i < rows->len; i++) {
    const Row *row = g_ptr_array_index (rows, i);
    if (row != ref && !row->baseline && !append_paired_row (out, row, ref, error))
      return NULL;
  }
  g_string_append (out, "\nEach cell: the mean over seeds of (run − the same seed's run of the reference group), ± its "
                   "standard error (sample standard deviation of the differences / √pairs).\n");
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* ---- the chart ---------------------------------------------------------------------------- */

static const char *const palette[] = { "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                       "#8c564b", "#e377c2", "#bcbd22", "#17becf" };
/* Baselines in greys, so that the methods stand out. */
static const char *const greys[] = { "#9a9a9a", "#5e5e5e", "#c8c8c8", "#7c7c7c" };

static const char *
row_color (GPtrArray *rows, guint i)
{
  const Row *row = g_ptr_array_index (rows, i);
  guint same = 0;  /* rows of the same kind before this one */
  for (guint j = 0; j < i; j++)
    same += ((const Row *) g_ptr_array_index (rows, j))->baseline == row->baseline;
  return row->baseline ? greys[same % G_N_ELEMENTS (greys)] : palette[same % G_N_ELEMENTS (palette)];
}

typedef struct {
  double lo, hi, top, bottom;  /* values and their pixels */
} YAxis;

static double
y_px (const YAxis *a, double v)
{
  return a->bottom - (v - a->lo) / (a->hi - a->lo) * (a->bottom - a->top);
}

/* y grid, tick labels and the frame between @left and @right. */
static void
append_y_axis (GString *out, const YAxis *a, double step, double left, double right, const char *label)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  for (int k = 0;; k++) {
    double v = a->lo + k * step;
    if (v > a->hi + 1e-9 * step)
      break;
    double py = y_px (a, v);
    g_string_append (out, "<line x1=\"");
    stsim_curves_append_px (out, left);
    g_string_append (out, "\" x2=\"");
    stsim_curves_append_px (out, right);
    g_string_append (out, "\" y1=\"");
    stsim_curves_append_px (out, py);
    g_string_append (out, "\" y2=\"");
    stsim_curves_append_px (out, py);
    g_string_append (out, "\" stroke=\"#e6e6e6\"/>\n");
    stsim_curves_append_text (out, left - 6, py + 4, "end", NULL, stsim_curves_format (buf, v, 6));
  }
  g_string_append (out, "<rect x=\"");
  stsim_curves_append_px (out, left);
  g_string_append (out, "\" y=\"");
  stsim_curves_append_px (out, a->top);
  g_string_append (out, "\" width=\"");
  stsim_curves_append_px (out, right - left);
  g_string_append (out, "\" height=\"");
  stsim_curves_append_px (out, a->bottom - a->top);
  g_string_append (out, "\" fill=\"none\" stroke=\"#444\"/>\n");
  stsim_curves_append_text (out, left, a->top - 10, "start", "font-weight=\"bold\"", label);
}

/* A bar from 0 (or the axis bottom) to @v, its error bar, a tooltip. */
static void
append_bar (GString *out, const YAxis *a, const char *cls, double x, double w, double v, double sd,
            const char *color, const char *tip)
{
  double base = y_px (a, MAX (a->lo, MIN (0, a->hi)));
  double top = y_px (a, v);
  g_autofree char *esc = g_markup_escape_text (tip, -1);
  g_string_append_printf (out, "<rect class=\"%s\" x=\"", cls);
  stsim_curves_append_px (out, x);
  g_string_append (out, "\" y=\"");
  stsim_curves_append_px (out, MIN (base, top));
  g_string_append (out, "\" width=\"");
  stsim_curves_append_px (out, w);
  g_string_append (out, "\" height=\"");
  stsim_curves_append_px (out, fabs (base - top));
  g_string_append_printf (out, "\" fill=\"%s\"><title>%s</title></rect>\n", color, esc);
  if (!isfinite (sd))
    return;
  double cx = x + w / 2, y0 = y_px (a, v - sd), y1 = y_px (a, v + sd), cap = MIN (8, w / 3);
  g_string_append (out, "<path class=\"err\" d=\"M");
  stsim_curves_append_px (out, cx);
  g_string_append_c (out, ' ');
  stsim_curves_append_px (out, y0);
  g_string_append (out, "V");
  stsim_curves_append_px (out, y1);
  g_string_append (out, "M");
  stsim_curves_append_px (out, cx - cap);
  g_string_append_c (out, ' ');
  stsim_curves_append_px (out, y0);
  g_string_append (out, "H");
  stsim_curves_append_px (out, cx + cap);
  g_string_append (out, "M");
  stsim_curves_append_px (out, cx - cap);
  g_string_append_c (out, ' ');
  stsim_curves_append_px (out, y1);
  g_string_append (out, "H");
  stsim_curves_append_px (out, cx + cap);
  g_string_append (out, "\" stroke=\"#222\" stroke-width=\"1.2\" fill=\"none\"/>\n");
}

/* y range covering 0 and every mean ± sd of the columns [c0, c1). */
static double
fit_axis (GPtrArray *rows, guint c0, guint c1, YAxis *a)
{
  a->lo = 0;
  a->hi = 0;
  for (guint i = 0; i < rows->len; i++)
    for (guint c = c0; c < c1; c++) {
      Stat s = row_stat (g_ptr_array_index (rows, i), c);
      double d = isfinite (s.sd) ? s.sd : 0;
      a->lo = MIN (a->lo, s.mean - d);
      a->hi = MAX (a->hi, s.mean + d);
    }
  return stsim_curves_nice_range (&a->lo, &a->hi, 5);
}

enum { SW = 860, LEFT = 64, RIGHT = 840 };

static char *
report_svg (GPtrArray *rows, const char *title)
{
  const char *const *tasks = stsim_sts_task_names ();
  const guint n = rows->len;
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  const int legend_rows = (int) (n + 4) / 5;
  const int height = 720 + 20 * legend_rows;
  GString *out = g_string_new (NULL);
  g_string_append_printf (out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                          "font-family=\"sans-serif\" font-size=\"12\">\n"
                          "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", SW, height, SW, height);
  stsim_curves_append_text (out, SW / 2.0, 30, "middle", "font-size=\"16\" font-weight=\"bold\"", title);

  /* Panel 1: Avg per row, mean ± sd, value on top. */
  YAxis a = { .top = 70, .bottom = 300 };
  double step = fit_axis (rows, COL_AVG, COL_AVG + 1, &a);
  append_y_axis (out, &a, step, LEFT, RIGHT, "Avg (Spearman x100)");
  double slot = (RIGHT - LEFT) / (double) n;
  double w = MIN (70, 0.6 * slot);
  for (guint i = 0; i < n; i++) {
    const Row *row = g_ptr_array_index (rows, i);
    Stat s = row_stat (row, COL_AVG);
    double x = LEFT + i * slot + (slot - w) / 2;
    g_autofree char *cell = format_cell (row, COL_AVG);
    g_autofree char *tip = g_strdup_printf ("%s: Avg %s (n = %u)", row->name, cell, row->runs->len);
    append_bar (out, &a, "avg-bar", x, w, s.mean, row->baseline ? NAN : s.sd, row_color (rows, i), tip);
    double label_y = y_px (&a, s.mean + (isfinite (s.sd) && !row->baseline ? s.sd : 0)) - 6;
    stsim_curves_append_text (out, x + w / 2, MIN (label_y, y_px (&a, s.mean) - 6), "middle", "class=\"value\"",
                 g_ascii_formatd (buf, sizeof buf, "%.2f", s.mean));
    g_autofree char *name = row->baseline ? g_strdup_printf ("%s (baseline)", row->name) : g_strdup (row->name);
    /* A label wider than its slot (about 6.5 px a character at this font
     * size) is turned 30 degrees so that neighbours do not overprint. */
    if (6.5 * g_utf8_strlen (name, -1) > slot - 4) {
      char xs[G_ASCII_DTOSTR_BUF_SIZE], ys[G_ASCII_DTOSTR_BUF_SIZE];
      g_ascii_formatd (xs, sizeof xs, "%.1f", x + w / 2);
      g_ascii_formatd (ys, sizeof ys, "%.1f", a.bottom + 14);
      g_autofree char *turn = g_strdup_printf ("transform=\"rotate(-30 %s %s)\"", xs, ys);
      stsim_curves_append_text (out, x + w / 2, a.bottom + 14, "end", turn, name);
    } else
      stsim_curves_append_text (out, x + w / 2, a.bottom + 18, "middle", NULL, name);
  }

  /* Panel 2: the seven tasks, one bar per row in each. */
  YAxis b = { .top = 390, .bottom = 640 };
  step = fit_axis (rows, 0, N_TASKS, &b);
  append_y_axis (out, &b, step, LEFT, RIGHT, "per task (Spearman x100)");
  double tslot = (RIGHT - LEFT) / (double) N_TASKS;
  double bw = 0.8 * tslot / n;
  for (guint k = 0; k < N_TASKS; k++) {
    double x0 = LEFT + k * tslot + 0.1 * tslot;
    for (guint i = 0; i < n; i++) {
      const Row *row = g_ptr_array_index (rows, i);
      Stat s = row_stat (row, k);
      g_autofree char *cell = format_cell (row, k);
      g_autofree char *tip = g_strdup_printf ("%s, %s: %s", row->name, stsim_sts_task_short_name (tasks[k]), cell);
      append_bar (out, &b, "task-bar", x0 + i * bw, bw, s.mean, row->baseline ? NAN : s.sd, row_color (rows, i), tip);
    }
    stsim_curves_append_text (out, LEFT + (k + 0.5) * tslot, b.bottom + 18, "middle", NULL, stsim_sts_task_short_name (tasks[k]));
  }
  /* Legend: five rows per line. */
  for (guint i = 0; i < n; i++) {
    const Row *row = g_ptr_array_index (rows, i);
    double x = LEFT + (i % 5) * 155.0, y = 690 + 20 * (i / 5);
    g_string_append (out, "<rect x=\"");
    stsim_curves_append_px (out, x);
    g_string_append (out, "\" y=\"");
    stsim_curves_append_px (out, y - 10);
    g_string_append_printf (out, "\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", row_color (rows, i));
    g_autofree char *label = g_strdup_printf ("%s (n = %u)", row->name, row->runs->len);
    stsim_curves_append_text (out, x + 18, y, "start", NULL, label);
  }
  g_string_append (out, "</svg>\n");
  return g_string_free (out, FALSE);
}

/* ---- main --------------------------------------------------------------------------------- */

/* The run's name from its resolved.ini, else the folder's name. */
static char *
run_title (const char *dir)
{
  g_autofree char *ini = g_build_filename (dir, "resolved.ini", NULL);
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  char *name = NULL;
  if (g_key_file_load_from_file (kf, ini, G_KEY_FILE_NONE, NULL))
    name = g_key_file_get_string (kf, "run", "name", NULL);
  return name ? name : g_path_get_basename (dir);
}

static int
draw_curves (const char *dir, const char *svg, const char *title)
{
  g_autoptr(GError) err = NULL;
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_printerr ("%s: --curves: '%s' is not a folder (expected a run folder holding metrics.jsonl)\n",
                g_get_prgname (), dir);
    return STSIM_EXIT_INVALID;
  }
  g_autofree char *metrics = g_build_filename (dir, "metrics.jsonl", NULL);
  g_autofree char *out = svg ? g_strdup (svg) : g_build_filename (dir, "curves.svg", NULL);
  g_autofree char *name = title ? g_strdup (title) : run_title (dir);
  if (!stsim_curves_write_svg (metrics, out, name, &err)) {
    tool_print_error (err);
    return STSIM_EXIT_INVALID;
  }
  g_print ("curves: %s\n", out);
  return STSIM_EXIT_OK;
}

int
main (int argc, char **argv)
{
  g_autofree char *markdown = NULL, *svg = NULL, *title = NULL, *curves = NULL, *paired = NULL;
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify) row_free);
  GOptionEntry entries[] = {
    { "group", 'g', 0, G_OPTION_ARG_CALLBACK, on_row_option,
      "a row: comma-separated run folders or results.json files, glob patterns allowed (repeatable)", "NAME=RUNS" },
    { "baseline", 'b', 0, G_OPTION_ARG_CALLBACK, on_row_option, "a row of one run (repeatable)", "NAME=RUN" },
    { "markdown", 'm', 0, G_OPTION_ARG_FILENAME, &markdown, "write the table to FILE (default: stdout)", "FILE" },
    { "svg", 's', 0, G_OPTION_ARG_FILENAME, &svg, "write the bar chart (or, with --curves, the curves) to FILE",
      "FILE" },
    { "title", 't', 0, G_OPTION_ARG_STRING, &title, "title of the table and chart", "TEXT" },
    { "paired-with", 'p', 0, G_OPTION_ARG_STRING, &paired,
      "add each group's paired differences from group NAME over the same seeds (mean ± standard error)", "NAME" },
    { "curves", 'c', 0, G_OPTION_ARG_FILENAME, &curves,
      "redraw RUN_DIR/curves.svg from RUN_DIR/metrics.jsonl instead", "RUN_DIR" },
    { NULL }
  };
  g_autoptr(GOptionContext) octx = g_option_context_new ("- one table and chart of several runs' STS results");
  GOptionGroup *main_group = g_option_group_new (NULL, NULL, NULL, rows, NULL);
  g_option_group_add_entries (main_group, entries);
  g_option_context_set_main_group (octx, main_group);
  g_option_context_set_description (octx,
    "Rows are groups of runs (mean ± sample std over the runs) and baselines (one run), in command-line order.\n"
    "Values are Spearman x100 as the STS table prints them (docs/evaluation.md).\n"
    "Exit status: 0 ok, 1 invalid input, 2 usage.\n");
  g_auto(GStrv) args = g_strdupv (argv);
  g_set_prgname ("stsim-report");
  if (!tool_parse_options (octx, &args))
    return STSIM_EXIT_USAGE;
  if (g_strv_length (args) > 1)
    return tool_usage_error ("unexpected argument '%s'", args[1]);
  if (curves) {
    if (rows->len || markdown)
      return tool_usage_error ("--curves draws one run's curves; it does not combine with --group, --baseline or "
                               "--markdown");
    return draw_curves (curves, svg, title);
  }
  if (rows->len == 0)
    return tool_usage_error ("nothing to report: give --group NAME=RUNS or --baseline NAME=RUN (or --curves RUN_DIR)");

  g_autoptr(GError) err = NULL;
  for (guint i = 0; i < rows->len; i++)
    if (!row_load (g_ptr_array_index (rows, i), &err)) {
      tool_print_error (err);
      return STSIM_EXIT_INVALID;
    }
  if (!check_sizes (rows, &err)) {
    tool_print_error (err);
    return STSIM_EXIT_INVALID;
  }
  const char *heading = title ? title : "STS results";
  g_autofree char *md = report_markdown (rows, heading);
  if (paired) {
    g_autofree char *table = report_paired (rows, paired, &err);
    if (!table) {
      tool_print_error (err);
      return STSIM_EXIT_INVALID;
    }
    char *both = g_strconcat (md, table, NULL);
    g_free (md);
    md = both;
  }
  g_autofree char *chart = svg ? report_svg (rows, heading) : NULL;
  /* Both outputs are complete before either is written. */
  if ((markdown && !tool_write_text (markdown, md, &err)) || (svg && !tool_write_text (svg, chart, &err))) {
    tool_print_error (err);
    return STSIM_EXIT_INVALID;
  }
  /* stdout carries the table only, so that it can be piped. */
  if (markdown)
    g_printerr ("report: %s\n", markdown);
  else
    fputs (md, stdout);
  if (svg)
    g_printerr ("chart: %s\n", svg);
  return STSIM_EXIT_OK;
}
