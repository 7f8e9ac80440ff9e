/* stsim-run: runs a recipe.
 *
 *   stsim-run RECIPE [--set SECTION.KEY=VALUE]... [--data DIR] [--dry-run]
 *             [--overwrite | --resume [--allow-changed KEY]...]
 *
 * Validates the recipe (all errors at once), prints the plan (every
 * component with its resolved parameters) and instantiates the components in
 * dependency order. A recipe with one encoder, evaluators and no objectives
 * is an evaluation: <output>/resolved.ini is written, each evaluator scores
 * the encoder in test mode, its table is printed and the reports go to
 * <output>/results.json. A recipe with objectives trains the encoder
 * (stsim_trainer_run, docs/training.md; its run log writes the run folder,
 * resolved.ini included); --resume continues a killed run.
 *
 * The run folder holds one run at a time: a lock (.stsim-lock) refuses a
 * second run into it, naming the first one's PID and host; leftovers of an
 * interrupted save are removed at the start. A training run into a folder
 * that holds another run's files is refused unless --overwrite (which
 * removes them first) or --resume (which continues that run, refusing a
 * changed recipe, corpus or checkpoint unless --allow-changed names the key).
 *
 * Under MPI (mpirun -np N stsim-run RECIPE, docs/distributed.md) every rank
 * runs this program; the ranks train one model data-parallel, rank 0 alone
 * prints the plan, writes files and evaluates, and an error on any rank
 * stops the whole job (MPI_Abort) instead of leaving the others waiting.
 *
 * Exit status: 0 success, 1 invalid input or a failed run, 2 usage error.
 */
#include "tool-common.h"
#include "stsim/stsim-train.h"
#include "stsim/stsim-dist.h"
#include "stsim/stsim-rundir.h"

#include <string.h>
#include <sys/stat.h>
#include <glib/gstdio.h>

static char *opt_plugin_path, *opt_data;
static char **opt_set;
static gboolean opt_dry_run;
static gboolean opt_resume, opt_overwrite;
static char **opt_allow_changed;
static gint64 opt_stop_after;

static const GOptionEntry entries[] = {
  { "set", 's', 0, G_OPTION_ARG_STRING_ARRAY, &opt_set, "Override (or add) a recipe value; repeatable", "SECTION.KEY=VALUE" },
  { "data", 'd', 0, G_OPTION_ARG_FILENAME, &opt_data, "Data root (default: $STSIM_DATA or the build's)", "DIR" },
  { "dry-run", 'n', 0, G_OPTION_ARG_NONE, &opt_dry_run, "Validate and print the plan; create and write nothing", NULL },
  { "resume", 'r', 0, G_OPTION_ARG_NONE, &opt_resume, "Training: continue from <output>/state/ (docs/training.md)", NULL },
  { "overwrite", 0, 0, G_OPTION_ARG_NONE, &opt_overwrite,
    "Training: remove a previous run's files from <output> first", NULL },
  { "allow-changed", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_allow_changed,
    "With --resume: this fingerprint key (or glob) may differ from the saved run's; repeatable", "KEY" },
  { "stop-after-steps", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT64, &opt_stop_after,
    "Testing: stop after K steps without the final save (a simulated kill)", "K" },
  { "plugin-path", 'p', 0, G_OPTION_ARG_STRING, &opt_plugin_path, "Search these folders (':'-separated) first", "DIRS" },
  { NULL }
};

/* Where a derived output folder came from, so that a variant's folder is not a surprise. */
static const char *
output_note (const StsimRecipe *r)
{
  g_autofree char *plain = NULL;
  if (!stsim_recipe_get_output_is_default (r))
    return "";
  plain = g_build_filename ("runs", stsim_recipe_get_name (r), NULL);
  return strcmp (plain, stsim_recipe_get_output (r)) == 0 ? " (default: runs/<name>)"
                                                          : " (default: runs/<name>-<hash of the --set values>)";
}

static void
print_plan (const StsimRecipe *r)
{
  const char *why = output_note (r);
  g_print ("recipe  %s\nname    %s\noutput  %s%s\ndata    %s\nseed    %" G_GUINT64_FORMAT "\nthreads %d%s\n",
           stsim_recipe_get_path (r), stsim_recipe_get_name (r), stsim_recipe_get_output (r), why,
           stsim_recipe_get_data_dir (r), stsim_recipe_get_seed (r), stsim_recipe_get_threads (r),
           stsim_recipe_get_threads (r) == 0 ? " (all cores)" : "");
  g_print ("\nPlan (%u component%s, in creation order):\n", stsim_recipe_get_n_ordered (r),
           stsim_recipe_get_n_ordered (r) == 1 ? "" : "s");
  for (guint i = 0; i < stsim_recipe_get_n_ordered (r); i++) {
    const StsimRecipeComponent *c = stsim_recipe_get_ordered (r, i);
    g_print ("  %u. [%s] %s (plugin %s %s)", i + 1, c->label, c->use, c->entry->plugin->name,
             c->entry->plugin->version);
    if (c->kind == STSIM_KIND_OBJECTIVE)
      g_print (", weight %g", c->weight);
    g_print ("\n");
    for (const StsimParamSpec *p = stsim_params_get_specs (c->params); p && p->name; p++) {
      g_autofree char *v = stsim_params_to_string (c->params, p->name);
      if (v)
        g_print ("       %s = %s\n", p->name, v);
    }
  }
  for (guint i = 0; i < stsim_recipe_get_n_components (r); i++) {
    const StsimRecipeComponent *c = stsim_recipe_get_component (r, i);
    if (!c->enabled)
      g_print ("  -  [%s] %s (disabled)\n", c->label, c->use);
  }
}

/* The report's "table" object as two aligned rows: names, then values (two decimals). */
static void
print_table (JsonObject *report)
{
  JsonObject *table;
  g_autoptr(GList) members = NULL;
  GString *head = g_string_new ("  "), *vals = g_string_new ("  ");

  if (!json_object_has_member (report, "table") ||
      JSON_NODE_TYPE (json_object_get_member (report, "table")) != JSON_NODE_OBJECT)
    return;
  table = json_object_get_object_member (report, "table");
  members = json_object_get_members (table);  /* insertion order */
  for (GList *l = members; l; l = l->next) {
    JsonNode *n = json_object_get_member (table, l->data);
    g_autofree char *v = NULL;
    if (JSON_NODE_HOLDS_VALUE (n) && (json_node_get_value_type (n) == G_TYPE_DOUBLE ||
                                      json_node_get_value_type (n) == G_TYPE_INT64))
      v = g_strdup_printf ("%.2f", json_node_get_double (n));
    else if (JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING)
      v = g_strdup (json_node_get_string (n));
    else
      v = g_strdup ("-");
    int w = MAX ((int) strlen (l->data), (int) strlen (v));
    g_string_append_printf (head, "%*s  ", w, (const char *) l->data);
    g_string_append_printf (vals, "%*s  ", w, v);
  }
  g_print ("%s\n%s\n", g_strchomp (head->str), g_strchomp (vals->str));
  g_string_free (head, TRUE);
  g_string_free (vals, TRUE);
}

/* Bytes under @path (files, not following symbolic links); 0 for what cannot be read. */
static guint64
tree_size (const char *path)
{
  GStatBuf st;
  guint64 total = 0;
  g_autoptr(GDir) dir = NULL;
  const char *name;

  if (g_lstat (path, &st) != 0)
    return 0;
  if (!S_ISDIR (st.st_mode))
    return S_ISREG (st.st_mode) ? (guint64) st.st_size : 0;
  if (!(dir = g_dir_open (path, 0, NULL)))
    return 0;
  while ((name = g_dir_read_name (dir))) {
    g_autofree char *child = g_build_filename (path, name, NULL);
    total += tree_size (child);
  }
  return total;
}

/* g_format_size() with a plain space: it separates the unit with U+00A0, which
 * g_print turns into '?' outside a UTF-8 locale. */
static char *
format_size (guint64 bytes)
{
  g_autofree char *s = g_format_size (bytes);
  g_auto(GStrv) parts = g_strsplit (s, "\u00a0", -1);
  return g_strjoinv (" ", parts);
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The end-of-run line on disk use: the run folder's total (human readable and in
 * bytes) and each of its folders (best/, state/), the part a lab setting can drop. */
static void
print_disk_use (const char *out)
{
  g_autoptr(GDir) dir = g_dir_open (out, 0, NULL);
  g_autoptr(GPtrArray) folders = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GString) parts = g_string_new (NULL);
  guint64 bytes = tree_size (out);
  g_autofree char *total = format_size (bytes);
  const char *name;

  while (dir && (name = g_dir_read_name (dir))) {
    g_autofree char *child = g_build_filename (out, name, NULL);
    if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
      g_ptr_array_add (folders, g_strdup (name));
  }
  g_ptr_array_sort (folders, compare_names);
  for (guint i = 0; i < folders->len; i++) {
    g_autofree char *child = g_build_filename (out, g_ptr_array_index (folders, i), NULL);
    g_autofree char *size = format_size (tree_size (child));
    g_string_append_printf (parts, "%s%s/ %s", i ? ", " : "; ", (char *) g_ptr_array_index (folders, i), size);
  }
  g_print ("run folder %s: %s (%" G_GUINT64_FORMAT " bytes%s)\n", out, total, bytes, parts->str);
}

/* Prints the error; under MPI also stops the other ranks of the job. */
static int
fail (const GError *error)
{
  tool_print_error (error);
  stsim_dist_abort (STSIM_EXIT_INVALID);
  return STSIM_EXIT_INVALID;
}

/* Rank 0: takes the run folder's lock, removes what interrupted saves left
 * and, for training, applies the fresh / --overwrite / --resume policy, all
 * before anything is created or written. Other ranks: nothing (*@lock NULL). */
static gboolean
claim_run_folder (const StsimRecipe *r, gboolean rank0, StsimRunLock **lock, GError **error)
{
  const char *out = stsim_recipe_get_output (r);
  guint n_temps = 0;
  guint64 bytes = 0;
  g_auto(GStrv) removed = NULL;
  if (!stsim_run_lock_acquire (out, rank0, FALSE, lock, error))
    return FALSE;
  if (!rank0)
    return TRUE;
  if (!stsim_run_dir_remove_temps (out, &n_temps, &bytes, error))
    return FALSE;
  if (n_temps > 0) {
    g_autofree char *size = format_size (bytes);
    g_print ("removed %u temporary file%s (%s) of an interrupted save from %s\n", n_temps, n_temps == 1 ? "" : "s",
             size, out);
  }
  if (!stsim_recipe_wants_training (r))
    return TRUE;  /* an evaluation rewrites its own two files */
  StsimRunMode mode = opt_resume ? STSIM_RUN_RESUME : opt_overwrite ? STSIM_RUN_OVERWRITE : STSIM_RUN_FRESH;
  if (!stsim_run_dir_prepare (out, mode, &removed, error))
    return FALSE;
  if (removed) {
    g_autofree char *list = g_strjoinv (", ", removed);
    g_print ("--overwrite: removed %s from %s\n", list, out);
  }
  return TRUE;
}

static gboolean
evaluate (const StsimRecipe *r, StsimContext *ctx, GError **error)
{
  /* The recipe's one encoder (one a teacher wraps counts only when alone). */
  StsimComponent *encoder = stsim_context_find (ctx, STSIM_KIND_ENCODER, NULL, error);
  if (!encoder)
    return FALSE;
  g_autoptr(JsonObject) all = json_object_new ();
  JsonObject *single = NULL;
  g_autoptr(JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  g_autofree char *path = NULL;
  guint n, n_eval = 0;
  StsimComponent *const *comps = stsim_context_get_components (ctx, &n);

  for (guint i = 0; i < n; i++) {
    g_autoptr(JsonObject) report = NULL;
    double primary = 0;
    gint64 t0;
    if (stsim_component_get_kind (comps[i]) != STSIM_KIND_EVALUATOR)
      continue;
    report = json_object_new ();
    g_print ("\n[%s] %s on [%s] (test)\n", stsim_component_get_label (comps[i]),
             stsim_component_get_desc (comps[i])->name, stsim_component_get_label (encoder));
    t0 = g_get_monotonic_time ();
    if (!stsim_evaluator_evaluate (comps[i], encoder, STSIM_EVAL_TEST, report, &primary, error)) {
      g_prefix_error (error, "[%s]: ", stsim_component_get_label (comps[i]));
      return FALSE;
    }
    print_table (report);
    g_print ("  primary %.4f, %.1f s\n", primary, (g_get_monotonic_time () - t0) / 1e6);
    json_object_set_object_member (all, stsim_component_get_label (comps[i]), json_object_ref (report));
    single = report;
    n_eval++;
  }
  path = g_build_filename (stsim_recipe_get_output (r), "results.json", NULL);
  json_node_set_object (root, n_eval == 1 ? single : all);
  if (!tool_write_json (path, root, error))
    return FALSE;
  g_print ("\nwrote %s\n", path);
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("RECIPE");
  g_auto(GStrv) args = g_strdupv (argv);
  g_autoptr(StsimRegistry) reg = NULL;
  g_autoptr(StsimRecipe) recipe = NULL;
  g_autoptr(StsimRunLock) lock = NULL;  /* released after the context (freed first) */
  g_autoptr(StsimContext) ctx = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *resolved = NULL;

  g_set_prgname ("stsim-run");
  g_option_context_set_summary (context, "Runs an stsim recipe (see docs/recipes.md).");
  g_option_context_set_description (context, "Exit status: 0 success, 1 invalid input or failed run, 2 usage error.\n");
  g_option_context_add_main_entries (context, entries, NULL);
  /* Before MPI starts: option parsing may re-execute the program (for
   * OMP_WAIT_POLICY, tool-common.c), which an MPI process must not do. A
   * usage error then stops each rank by itself, and the launcher the job. */
  if (!tool_parse_options (context, &args))
    return STSIM_EXIT_USAGE;
  if (g_strv_length (args) != 2)
    return tool_usage_error ("expected exactly one RECIPE, got %u", g_strv_length (args) - 1);
  if (opt_overwrite && opt_resume)
    return tool_usage_error ("--overwrite and --resume exclude each other: --resume continues the run in the "
                             "folder, --overwrite removes it");
  if (opt_allow_changed && !opt_resume)
    return tool_usage_error ("--allow-changed only applies to --resume");
  if (!stsim_dist_init (&argc, &argv, &error)) {
    tool_print_error (error);
    return STSIM_EXIT_INVALID;
  }
  const gboolean rank0 = stsim_dist_rank () == 0;
  if (stsim_dist_size () > 1) {
    g_autofree char *name = g_strdup_printf ("stsim-run (rank %d/%d)", stsim_dist_rank (), stsim_dist_size ());
    g_set_prgname (name);
  }

  reg = tool_registry_new (opt_plugin_path);
  recipe = stsim_recipe_load (reg, args[1], (const char *const *) opt_set, opt_data, &error);
  if (!recipe) {
    tool_print_failure_hint (reg);
    return fail (error);
  }
  /* A recipe with nothing to evaluate or train used to "succeed" doing nothing. */
  if (stsim_recipe_count_kind (recipe, STSIM_KIND_OBJECTIVE) == 0 &&
      stsim_recipe_count_kind (recipe, STSIM_KIND_EVALUATOR) == 0) {
    g_set_error (&error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                 "%s: nothing to run: a recipe needs an [encoder] section and [evaluator] sections to evaluate "
                 "it, or [train] and [objective] sections to train it (see recipes/quickstart.ini)", args[1]);
    return fail (error);
  }
  if (rank0) {
    tool_print_warnings (recipe);
    print_plan (recipe);
  }
  if (opt_dry_run) {
    if (rank0)
      g_print ("\ndry run: nothing created, nothing written\n");
    stsim_dist_finalize ();
    return STSIM_EXIT_OK;
  }

  if (!claim_run_folder (recipe, rank0, &lock, &error))
    return fail (error);
  ctx = stsim_recipe_new_context (recipe);
  if (!stsim_recipe_instantiate (recipe, ctx, &error))
    return fail (error);

  if (stsim_recipe_count_kind (recipe, STSIM_KIND_OBJECTIVE) == 0 &&
      stsim_recipe_count_kind (recipe, STSIM_KIND_EVALUATOR) > 0) {
    /* A training run's folder (resolved.ini with it) is the trainer's run log. */
    if (rank0 && !stsim_recipe_write_resolved (recipe, stsim_recipe_get_output (recipe), &error))
      return fail (error);
    resolved = g_build_filename (stsim_recipe_get_output (recipe), "resolved.ini", NULL);
    if (rank0)
      g_print ("\nwrote %s\n", resolved);
    if (stsim_recipe_count_kind (recipe, STSIM_KIND_ENCODER) != 1) {
      g_printerr ("stsim-run: an evaluation needs exactly one enabled encoder; this recipe has %u\n",
                  stsim_recipe_count_kind (recipe, STSIM_KIND_ENCODER));
      stsim_dist_abort (STSIM_EXIT_INVALID);
      return STSIM_EXIT_INVALID;
    }
    /* An evaluation is not split over ranks: rank 0 runs it. */
    if (rank0 && !evaluate (recipe, ctx, &error))
      return fail (error);
  } else if (stsim_recipe_count_kind (recipe, STSIM_KIND_OBJECTIVE) > 0) {
    StsimTrainOptions train_opts = STSIM_TRAIN_OPTIONS_INIT;
    train_opts.resume = opt_resume;
    train_opts.stop_after_steps = opt_stop_after;
    train_opts.allow_changed = (const char *const *) opt_allow_changed;
    if (rank0)
      g_print ("\n");
    if (!stsim_trainer_run (recipe, ctx, &train_opts, &error))
      return fail (error);
  }
  /* The lock is not part of what the run leaves. */
  g_clear_pointer (&lock, stsim_run_lock_release);
  if (rank0)
    print_disk_use (stsim_recipe_get_output (recipe));
  stsim_dist_finalize ();
  return STSIM_EXIT_OK;
}
