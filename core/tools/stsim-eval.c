/* stsim-eval: the SentEval-protocol STS table for a checkpoint or an encoder,
 * and SentEval's transfer-task table (--transfer, or transfer names in --tasks).
 *
 *   stsim-eval (--model DIR | --encoder NAME [--set key=value ...]) [--pooler NAME]
 *              [--data DIR] [--tasks LIST] [--transfer [--transfer-mode test|fasttest]]
 *              [--mode test|dev] [--json FILE]
 *
 * Exit codes: 0 ok, 1 invalid input (missing data, malformed file, missing
 * plugin, encoder failure), 2 usage.
 */
#include <string.h>

#include "stsim/stsim-sts.h"
#include "stsim/stsim-transfer.h"
#include "stsim/stsim-registry.h"
#include "tool-common.h"
#include "stsim/stsim-bounded.h"

/* model_type of DIR/config.json, which names the encoder plugin. */
static char *
read_model_type (const char *dir, GError **error)
{
  g_autofree char *path = g_build_filename (dir, "config.json", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) e = NULL;
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "--model: '%s' is not a folder (expected a Hugging Face "
                 "checkpoint folder with config.json)", dir);
    return NULL;
  }
  if (!stsim_json_load_file (parser, path, STSIM_LIMIT_JSON, &e)) {
    g_set_error (error, STSIM_ERROR, g_error_matches (e, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? STSIM_ERROR_NOT_FOUND
                                                                                          : STSIM_ERROR_PARSE,
                 "%s: %s", path, e->message);
    return NULL;
  }
  JsonNode *root = json_parser_get_root (parser);
  JsonObject *o = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  JsonNode *mt = o ? json_object_get_member (o, "model_type") : NULL;
  if (mt == NULL || !JSON_NODE_HOLDS_VALUE (mt) || json_node_get_value_type (mt) != G_TYPE_STRING) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s: no string member \"model_type\" (expected \"bert\", "
                 "\"roberta\" or \"distilbert\")", path);
    return NULL;
  }
  const char *type = json_node_get_string (mt);
  if (strcmp (type, "bert") != 0 && strcmp (type, "roberta") != 0 && strcmp (type, "distilbert") != 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED, "%s: model_type \"%s\" is not supported (expected "
                 "\"bert\", \"roberta\" or \"distilbert\")", path, type);
    return NULL;
  }
  return g_strdup (type);
}

static gboolean
set_param (StsimParams *params, const char *encoder, const char *key, const char *value, const char *from,
           GError **error)
{
  if (!stsim_params_set (params, key, value, error)) {
    g_prefix_error (error, "encoder '%s' (%s): ", encoder, from);
    return FALSE;
  }
  return TRUE;
}

/* Splits --tasks into its STS and its transfer names (NULL: none of that
 * kind). Without --tasks: the STS table, or with --transfer the transfer one. */
static gboolean
split_tasks (const char *tasks, gboolean transfer, char **sts, char **xfer, GError **error)
{
  if (tasks == NULL) {
    *sts = transfer ? NULL : g_strdup ("");
    *xfer = transfer ? g_strdup ("") : NULL;
    return TRUE;
  }
  g_auto (GStrv) parts = g_strsplit (tasks, ",", -1);
  g_autoptr (GString) a = g_string_new (NULL), b = g_string_new (NULL);
  for (gsize i = 0; parts[i]; i++) {
    const char *name = g_strstrip (parts[i]);
    GString *to = stsim_transfer_is_task (name) ? b : g_strv_contains (stsim_sts_task_names (), name) ? a : NULL;
    if (*name == '\0')
      continue;
    if (to == NULL) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "--tasks: unknown task '%s' (STS: STS12..STS16, "
                   "STSBenchmark, SICKRelatedness; transfer: MR, CR, SUBJ, MPQA, SST2, TREC, MRPC)", name);
      return FALSE;
    }
    g_string_append_printf (to, "%s%s", to->len ? "," : "", name);
  }
  *sts = a->len ? g_strdup (a->str) : NULL;
  *xfer = b->len ? g_strdup (b->str) : transfer ? g_strdup ("") : NULL;
  if (*sts == NULL && *xfer == NULL) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "--tasks: no task given");
    return FALSE;
  }
  return TRUE;
}

/* Runs the STS and/or transfer tables, prints them and writes --json: one
 * evaluation its report, both {"sts": ..., "transfer": ...}. */
static gboolean
run_evaluations (const StsimStsOptions *opts, const StsimTransferOptions *topts, const StsimStsEncoder *callbacks,
                 const char *name, const char *model, const char *json_path, GError **error)
{
  g_autoptr (JsonObject) sts_report = NULL, transfer_report = NULL;
  if (opts->tasks) {
    sts_report = json_object_new ();
    json_object_set_string_member (sts_report, "encoder", name);
    if (model)
      json_object_set_string_member (sts_report, "model", model);
    if (!stsim_sts_run (opts, callbacks, sts_report, NULL, error))
      return FALSE;
    g_autofree char *table = stsim_sts_report_format (sts_report);
    g_print ("%s", table);
  }
  if (topts->tasks) {
    transfer_report = json_object_new ();
    json_object_set_string_member (transfer_report, "encoder", name);
    if (model)
      json_object_set_string_member (transfer_report, "model", model);
    if (!stsim_transfer_run (topts, callbacks, transfer_report, NULL, error))
      return FALSE;
    g_autofree char *table = stsim_transfer_report_format (transfer_report);
    g_print ("%s%s", sts_report ? "\n" : "", table);
  }
  g_autoptr (JsonObject) report = NULL;
  if (sts_report && transfer_report) {
    report = json_object_new ();
    json_object_set_object_member (report, "sts", json_object_ref (sts_report));
    json_object_set_object_member (report, "transfer", json_object_ref (transfer_report));
  } else
    report = json_object_ref (sts_report ? sts_report : transfer_report);
  return json_path == NULL || stsim_sts_report_write (report, json_path, error);
}

int
main (int argc, char **argv)
{
  g_autofree char *model = NULL, *encoder_name = NULL, *pooler = NULL, *data = NULL, *tasks = NULL;
  g_autofree char *mode_text = NULL, *json_path = NULL, *plugin_path = NULL, *dev_tasks = NULL;
  g_auto (GStrv) sets = NULL;
  gboolean skip_train = FALSE, transfer = FALSE;
  g_autofree char *transfer_mode = NULL;
  gint batch_size = 128;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, "Hugging Face checkpoint folder (config.json names the encoder)", "DIR" },
    { "encoder", 'e', 0, G_OPTION_ARG_STRING, &encoder_name, "encoder component to evaluate (e.g. bow, bow-idf)", "NAME" },
    { "set", 's', 0, G_OPTION_ARG_STRING_ARRAY, &sets, "encoder parameter (repeatable)", "KEY=VALUE" },
    { "pooler", 'p', 0, G_OPTION_ARG_STRING, &pooler, "the encoder's pooler (e.g. cls_before_pooler)", "NAME" },
    { "data", 'd', 0, G_OPTION_ARG_FILENAME, &data, "folder laid out like ../shared/data (default: $STSIM_DATA)", "DIR" },
    { "tasks", 't', 0, G_OPTION_ARG_STRING, &tasks, "comma-separated tasks (default: all seven)", "LIST" },
    { "dev-tasks", 0, 0, G_OPTION_ARG_STRING, &dev_tasks, "--mode dev: STSBenchmark and/or SICKRelatedness", "LIST" },
    { "mode", 0, 0, G_OPTION_ARG_STRING, &mode_text, "test (the reported table, default) or dev (STS-B dev)", "MODE" },
    { "json", 'j', 0, G_OPTION_ARG_FILENAME, &json_path, "write every number to FILE (atomically)", "FILE" },
    { "batch-size", 'b', 0, G_OPTION_ARG_INT, &batch_size, "pairs per encode call (default 128)", "N" },
    { "skip-train", 0, 0, G_OPTION_ARG_NONE, &skip_train, "do not encode the STS-B and SICK-R train splits", NULL },
    { "transfer", 0, 0, G_OPTION_ARG_NONE, &transfer, "the seven SentEval transfer tasks (MR, CR, SUBJ, MPQA, SST2, "
      "TREC, MRPC); with --tasks, added to the STS tasks listed", NULL },
    { "transfer-mode", 0, 0, G_OPTION_ARG_STRING, &transfer_mode, "transfer classifier settings: test (default, "
      "SimCSE's reported numbers) or fasttest", "MODE" },
    { "plugin-path", 0, 0, G_OPTION_ARG_FILENAME, &plugin_path, "extra plugin folders, searched first", "DIRS" },
    { NULL }
  };
  g_autoptr (GOptionContext) octx = g_option_context_new ("- the SentEval STS table (STS12-16, STS-B, SICK-R) "
                                                          "and transfer-task table");
  g_option_context_add_main_entries (octx, entries, NULL);
  g_option_context_set_description (octx,
    "Prints Spearman x100 as the SimCSE paper does: STS12-16 'all', STS-B and SICK-R test, and Avg.\n"
    "--transfer (or MR, CR, SUBJ, MPQA, SST2, TREC, MRPC in --tasks) prints SentEval's transfer accuracies x100.\n"
    "Exit status: 0 ok, 1 invalid input, 2 usage.\n");
  g_auto (GStrv) args = g_strdupv (argv);
  g_set_prgname ("stsim-eval");
  if (!tool_parse_options (octx, &args))
    return STSIM_EXIT_USAGE;
  if (g_strv_length (args) > 1)
    return tool_usage_error ("unexpected argument '%s'", args[1]);
  if ((model == NULL) == (encoder_name == NULL))
    return tool_usage_error ("give exactly one of --model DIR and --encoder NAME");
  StsimEvalMode mode = STSIM_EVAL_TEST;
  if (mode_text && strcmp (mode_text, "dev") == 0)
    mode = STSIM_EVAL_DEV;
  else if (mode_text && strcmp (mode_text, "test") != 0)
    return tool_usage_error ("--mode must be 'test' or 'dev', not '%s'", mode_text);
  if (batch_size < 1)
    return tool_usage_error ("--batch-size must be at least 1");
  if (transfer_mode && strcmp (transfer_mode, "test") != 0 && strcmp (transfer_mode, "fasttest") != 0)
    return tool_usage_error ("--transfer-mode must be 'test' or 'fasttest', not '%s'", transfer_mode);
  g_autofree char *sts_tasks = NULL, *transfer_tasks = NULL;
  g_autoptr (GError) task_err = NULL;
  if (!split_tasks (tasks, transfer, &sts_tasks, &transfer_tasks, &task_err)) {
    tool_print_error (task_err);
    return STSIM_EXIT_INVALID;
  }
  for (gsize i = 0; sets && sets[i]; i++)
    if (strchr (sets[i], '=') == NULL || sets[i][0] == '=')
      return tool_usage_error ("--set expects KEY=VALUE, got '%s'", sets[i]);

  g_autoptr (GError) err = NULL;
  g_autoptr (StsimRegistry) reg = tool_registry_new (plugin_path);
  g_autofree char *data_dir = stsim_data_dir_resolve (data);
  g_autoptr (StsimContext) ctx = stsim_context_new (data_dir, 42, 0);

  /* Which encoder, and with which parameters. */
  g_autofree char *model_type = NULL;
  const char *name = encoder_name;
  if (model) {
    if (!(model_type = read_model_type (model, &err))) {
      tool_print_error (err);
      return STSIM_EXIT_INVALID;
    }
    name = model_type;
  }
  const StsimRegistryEntry *entry = stsim_registry_lookup (reg, STSIM_KIND_ENCODER, name);
  if (entry == NULL) {
    const char *near = stsim_registry_suggest (reg, STSIM_KIND_ENCODER, name);
    if (model)
      g_printerr ("%s: %s/config.json has model_type \"%s\", but no encoder plugin '%s' is installed; "
                  "build plugins/encoders/%s or add its folder to STSIM_PLUGIN_PATH\n",
                  g_get_prgname (), model, name, name, name);
    else
      g_printerr ("%s: no encoder named '%s'%s%s%s; 'stsim-inspect' lists the installed ones\n", g_get_prgname (),
                  name, near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
    tool_print_failure_hint (reg);
    return STSIM_EXIT_INVALID;
  }
  StsimParams *params = stsim_params_new (entry->desc->params);
  stsim_params_set_path_vars (params, data_dir, NULL);
  gboolean ok = TRUE;
  if (model) {
    const StsimParamSpec *specs = entry->desc->params;
    /* The neural encoders name their checkpoint folder `model`. */
    const char *key = specs && stsim_param_specs_lookup (specs, "model") ? "model" : NULL;
    if (key == NULL) {
      g_set_error (&err, STSIM_ERROR, STSIM_ERROR_PLUGIN, "encoder '%s' has no 'model' parameter "
                   "to load %s from", name, model);
      ok = FALSE;
    } else
      ok = set_param (params, name, key, model, "--model", &err);
  }
  if (ok && pooler)
    ok = set_param (params, name, "pooler", pooler, "--pooler", &err);
  for (gsize i = 0; ok && sets && sets[i]; i++) {
    g_autofree char *key = g_strndup (sets[i], strchr (sets[i], '=') - sets[i]);
    const char *k = g_str_has_prefix (key, "encoder.") ? key + strlen ("encoder.") : key;
    ok = set_param (params, name, k, strchr (sets[i], '=') + 1, "--set", &err);
  }
  if (ok)
    ok = stsim_params_finish (params, &err);
  if (!ok) {
    stsim_params_free (params);
    tool_print_error (err);
    return STSIM_EXIT_INVALID;
  }
  StsimComponent *enc = stsim_component_new (entry->desc, "encoder", params, ctx, &err);
  if (enc == NULL || !stsim_context_add (ctx, enc, &err)) {
    tool_print_error (err);
    return STSIM_EXIT_INVALID;
  }

  StsimStsEncoder callbacks = stsim_sts_encoder_for_component (enc);
  StsimStsOptions opts = {
    .data_dir = data_dir, .tasks = sts_tasks, .mode = mode, .dev_tasks = dev_tasks,
    .batch_size = (gsize) batch_size, .skip_train = skip_train,
  };
  StsimTransferOptions topts = {
    .data_dir = data_dir, .tasks = transfer_tasks, .mode = mode,
    .fasttest = transfer_mode && strcmp (transfer_mode, "fasttest") == 0, .batch_size = (gsize) batch_size,
  };
  if (!run_evaluations (&opts, &topts, &callbacks, name, model, json_path, &err)) {
    tool_print_error (err);
    return STSIM_EXIT_INVALID;
  }
  return STSIM_EXIT_OK;
}
