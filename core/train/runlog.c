/* runlog.c: the files of a training run's folder (runlog.h). */
#include "train/runlog.h"
#include "train/train-private.h"
#include "train/curves.h"
#include "stsim/stsim-error.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <glib/gstdio.h>
#include "io/bounded.h"

struct _StsimRunLog {
  char *out_dir, *metrics_path, *title;
};

StsimRunLog *
stsim_run_log_new (const char *out_dir, const char *title, GError **error)
{
  g_return_val_if_fail (out_dir != NULL, NULL);
  if (g_mkdir_with_parents (out_dir, 0755) != 0) {
    int e = errno;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot create the run folder %s: %s", out_dir, g_strerror (e));
    return NULL;
  }
  StsimRunLog *log = g_new0 (StsimRunLog, 1);
  log->out_dir = g_strdup (out_dir);
  log->metrics_path = g_build_filename (out_dir, "metrics.jsonl", NULL);
  log->title = g_strdup (title);
  return log;
}

void
stsim_run_log_free (StsimRunLog *log)
{
  if (!log)
    return;
  g_free (log->out_dir);
  g_free (log->metrics_path);
  g_free (log->title);
  g_free (log);
}

const char *
stsim_run_log_get_dir (StsimRunLog *log)
{
  return log->out_dir;
}

gboolean
stsim_run_log_write_resolved (StsimRunLog *log, const StsimRecipe *recipe, GError **error)
{
  return stsim_recipe_write_resolved (recipe, log->out_dir, error);
}

static gboolean
truncate_metrics (StsimRunLog *log, guint64 step, GError **error)
{
  g_autofree char *text = NULL;
  if (!stsim_file_get_contents (log->metrics_path, STSIM_LIMIT_METRICS, &text, NULL, NULL))
    return TRUE;
  GString *kept = g_string_new (NULL);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (gsize i = 0; lines[i]; i++) {
    if (!*lines[i])
      continue;
    g_autoptr(JsonParser) p = json_parser_new ();
    if (!stsim_json_load_data (p, lines[i], -1, NULL) || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (p)))
      continue;  /* a line cut by the kill */
    JsonObject *o = json_node_get_object (json_parser_get_root (p));
    if ((guint64) json_object_get_int_member_with_default (o, "step", 0) > step)
      continue;
    g_string_append (kept, lines[i]);
    g_string_append_c (kept, '\n');
  }
  gboolean ok = stsim_train_write_file (log->metrics_path, kept->str, kept->len, error);
  g_string_free (kept, TRUE);
  return ok;
}

gboolean
stsim_run_log_start (StsimRunLog *log, gboolean resumed, guint64 step, GError **error)
{
  if (resumed)
    return truncate_metrics (log, step, error);
  g_unlink (log->metrics_path);
  return TRUE;
}

static gboolean
append_line (StsimRunLog *log, JsonBuilder *b, GError **error)
{
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  g_autofree char *line = stsim_json_to_data (root, FALSE, NULL);
  FILE *f = g_fopen (log->metrics_path, "a");
  if (!f) {
    int e = errno;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot append to %s: %s", log->metrics_path, g_strerror (e));
    return FALSE;
  }
  fprintf (f, "%s\n", line);
  fclose (f);
  return TRUE;
}

static void
add_double_or_null (JsonBuilder *b, const char *name, double v)
{
  json_builder_set_member_name (b, name);
  if (isfinite (v))
    json_builder_add_double_value (b, v);
  else
    json_builder_add_null_value (b);
}

gboolean
stsim_run_log_train (StsimRunLog *log, const StsimRunLogTrain *t, GError **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "train");
  json_builder_set_member_name (b, "step");
  json_builder_add_int_value (b, t->step);
  json_builder_set_member_name (b, "epoch");
  json_builder_add_int_value (b, t->epoch);
  add_double_or_null (b, "loss", t->loss);
  g_autoptr(GList) keys = g_list_sort (g_hash_table_get_keys (t->terms), (GCompareFunc) g_strcmp0);
  for (GList *l = keys; l; l = l->next) {
    double *acc = g_hash_table_lookup (t->terms, l->data);
    json_builder_set_member_name (b, l->data);
    json_builder_add_double_value (b, acc[0] / acc[1]);
  }
  json_builder_set_member_name (b, "lr");
  json_builder_add_double_value (b, t->lr);
  json_builder_set_member_name (b, "grad_norm");
  if (!isnan (t->grad_norm))
    json_builder_add_double_value (b, t->grad_norm);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "skipped");
  json_builder_add_int_value (b, t->skipped);
  json_builder_set_member_name (b, "sentences_per_second");
  json_builder_add_double_value (b, t->sentences_per_second);
  json_builder_set_member_name (b, "elapsed");
  json_builder_add_double_value (b, t->elapsed);
  json_builder_end_object (b);
  return append_line (log, b, error);
}

gboolean
stsim_run_log_eval (StsimRunLog *log, const StsimRunLogEval *e, GError **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "eval");
  json_builder_set_member_name (b, "step");
  json_builder_add_int_value (b, e->step);
  add_double_or_null (b, "dev", e->dev);
  json_builder_set_member_name (b, "best");
  json_builder_add_double_value (b, e->best);
  json_builder_set_member_name (b, "best_step");
  json_builder_add_int_value (b, e->best_step);
  json_builder_set_member_name (b, "saved");
  json_builder_add_boolean_value (b, e->saved);
  json_builder_set_member_name (b, "seconds");
  json_builder_add_double_value (b, e->seconds);
  json_builder_set_member_name (b, "elapsed");
  json_builder_add_double_value (b, e->elapsed);
  json_builder_end_object (b);
  return append_line (log, b, error);
}

void
stsim_run_log_curves (StsimRunLog *log)
{
  stsim_curves_update (log->out_dir, log->title);
}

char *
stsim_run_log_results_path (StsimRunLog *log)
{
  return g_build_filename (log->out_dir, "results.json", NULL);
}

gboolean
stsim_run_log_results (StsimRunLog *log, JsonObject *report, char **text_out, GError **error)
{
  g_autofree char *path = stsim_run_log_results_path (log);
  g_autoptr(JsonNode) node = json_node_init_object (json_node_alloc (), report);
  g_autofree char *text = stsim_json_to_data (node, TRUE, NULL);
  if (!stsim_train_write_file (path, text, -1, error))
    return FALSE;
  if (text_out)
    *text_out = g_steal_pointer (&text);
  return TRUE;
}
