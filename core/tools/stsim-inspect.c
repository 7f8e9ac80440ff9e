/* stsim-inspect: lists plugins and components, shows a component's
 * parameters, lists plugins that failed to load, validates a recipe.
 *
 *   stsim-inspect                     all components, then a count line
 *   stsim-inspect NAME | KIND/NAME    one component: metadata, parameters, a minimal recipe section
 *   stsim-inspect SECTION             a core section ([run], [train]): its parameter table
 *   stsim-inspect --failed            plugins that failed: file, stage, reason
 *   stsim-inspect --recipe FILE       validates FILE (with --set overrides) and prints it resolved
 *
 * Exit status: 0 success, 1 invalid input (unknown component, bad recipe), 2 usage error.
 */
#include "tool-common.h"
#include "stsim/stsim-version.h"

#include <stdio.h>
#include <string.h>

static char *opt_kind, *opt_recipe, *opt_plugin_path, *opt_data;
static char **opt_set;
static gboolean opt_failed, opt_json, opt_all;

static const GOptionEntry entries[] = {
  { "kind", 'k', 0, G_OPTION_ARG_STRING, &opt_kind, "Only components of KIND (encoder, objective, teacher, evaluator)", "KIND" },
  { "failed", 'f', 0, G_OPTION_ARG_NONE, &opt_failed, "List plugins that failed to load, with stage and reason", NULL },
  { "recipe", 'r', 0, G_OPTION_ARG_FILENAME, &opt_recipe, "Validate a recipe without running it; print it resolved", "FILE" },
  { "set", 's', 0, G_OPTION_ARG_STRING_ARRAY, &opt_set, "Override a recipe value (with --recipe; repeatable)", "SECTION.KEY=VALUE" },
  { "data", 'd', 0, G_OPTION_ARG_FILENAME, &opt_data, "Data root that ${data} expands to (default: $STSIM_DATA or the build's)", "DIR" },
  { "all", 'a', 0, G_OPTION_ARG_NONE, &opt_all, "Also show expert parameters", NULL },
  { "json", 'j', 0, G_OPTION_ARG_NONE, &opt_json, "Machine-readable output (list and NAME)", NULL },
  { "plugin-path", 'p', 0, G_OPTION_ARG_STRING, &opt_plugin_path, "Search these folders (':'-separated) first", "DIRS" },
  { NULL }
};

/* ---- helpers --------------------------------------------------------------- */

static void
print_json (JsonNode *node)
{
  g_autofree char *text = tool_json_to_string (node);
  g_print ("%s", text);
}

static int
compare_entries (gconstpointer a, gconstpointer b)
{
  const StsimRegistryEntry *x = *(const StsimRegistryEntry *const *) a, *y = *(const StsimRegistryEntry *const *) b;
  if (x->desc->kind != y->desc->kind)
    return (int) x->desc->kind - (int) y->desc->kind;
  return strcmp (x->desc->name, y->desc->name);
}

static char *
range_text (const StsimParamSpec *p)
{
  if (p->type == STSIM_PARAM_ENUM)
    return g_strdup (p->choices);
  if (p->type == STSIM_PARAM_REFS)
    return p->choices ? g_strdup_printf ("%s sections", p->choices) : g_strdup ("");
  if ((p->type == STSIM_PARAM_INT || p->type == STSIM_PARAM_DOUBLE) && p->min < p->max) {
    if (p->type == STSIM_PARAM_INT)
      return g_strdup_printf ("[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]", (gint64) p->min, (gint64) p->max);
    return g_strdup_printf ("[%g, %g]", p->min, p->max);
  }
  return g_strdup ("");
}

static char *
flags_text (const StsimParamSpec *p)
{
  g_autoptr(GPtrArray) f = g_ptr_array_new ();
  if (p->flags & STSIM_PARAM_REQUIRED)
    g_ptr_array_add (f, "required");
  if (p->flags & STSIM_PARAM_EXPERT)
    g_ptr_array_add (f, "expert");
  if (p->flags & STSIM_PARAM_DEPRECATED)
    g_ptr_array_add (f, "deprecated");
  g_ptr_array_add (f, NULL);
  return g_strjoinv (",", (char **) f->pdata);
}

static char *
placeholder (const StsimParamSpec *p)
{
  if (p->type == STSIM_PARAM_REFS)
    return g_strdup_printf ("%s.LABEL", p->choices ? p->choices : "KIND");
  if (p->type == STSIM_PARAM_ENUM)
    return g_strdup_printf ("<%s>", p->choices);
  return g_strdup_printf ("<%s>", stsim_param_type_name (p->type));
}

/* ---- the list ---------------------------------------------------------------- */

static GPtrArray *
selected_entries (StsimRegistry *reg, gboolean have_kind, StsimKind kind)
{
  GPtrArray *a = g_ptr_array_new ();
  for (guint i = 0; i < stsim_registry_get_n_components (reg); i++) {
    const StsimRegistryEntry *e = stsim_registry_get_component (reg, i);
    if (!have_kind || e->desc->kind == kind)
      g_ptr_array_add (a, (gpointer) e);
  }
  g_ptr_array_sort (a, compare_entries);
  return a;
}

static JsonNode *
failures_json (StsimRegistry *reg)
{
  JsonArray *arr = json_array_new ();
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);
  for (guint i = 0; i < stsim_registry_get_n_failures (reg); i++) {
    const StsimLoadFailure *f = stsim_registry_get_failure (reg, i);
    JsonObject *o = json_object_new ();
    json_object_set_string_member (o, "file", f->file);
    json_object_set_string_member (o, "stage", stsim_load_stage_name (f->stage));
    json_object_set_string_member (o, "message", f->message);
    json_array_add_object_element (arr, o);
  }
  json_node_take_array (node, arr);
  return node;
}

static JsonArray *
core_sections_json (void)
{
  g_auto(GStrv) core = stsim_recipe_list_core_sections ();
  JsonArray *a = json_array_new ();
  for (guint i = 0; core[i]; i++)
    json_array_add_string_element (a, core[i]);
  return a;
}

static int
list_components (StsimRegistry *reg, gboolean have_kind, StsimKind kind)
{
  g_autoptr(GPtrArray) sel = selected_entries (reg, have_kind, kind);
  const char *head[] = { "KIND", "NAME", "PLUGIN", "VERSION", "FILE" };
  int w[4] = { 0 };

  if (opt_json) {
    g_autoptr(JsonNode) root = json_node_new (JSON_NODE_OBJECT);
    JsonObject *o = json_object_new ();
    JsonArray *arr = json_array_new ();
    for (guint i = 0; i < sel->len; i++) {
      const StsimRegistryEntry *e = g_ptr_array_index (sel, i);
      JsonObject *c = json_object_new ();
      json_object_set_string_member (c, "kind", stsim_kind_name (e->desc->kind));
      json_object_set_string_member (c, "name", e->desc->name);
      json_object_set_string_member (c, "summary", e->desc->summary);
      json_object_set_string_member (c, "plugin", e->plugin->name);
      json_object_set_string_member (c, "version", e->plugin->version);
      json_object_set_string_member (c, "file", e->file);
      json_array_add_object_element (arr, c);
    }
    json_object_set_string_member (o, "stsim_version", STSIM_VERSION_STRING);
    json_object_set_int_member (o, "n_plugins", stsim_registry_get_n_plugins (reg));
    json_object_set_array_member (o, "components", arr);
    json_object_set_array_member (o, "core_sections", core_sections_json ());
    json_object_set_member (o, "failures", failures_json (reg));
    json_node_take_object (root, o);
    print_json (root);
    return STSIM_EXIT_OK;
  }

  for (int c = 0; c < 4; c++)
    w[c] = strlen (head[c]);
  for (guint i = 0; i < sel->len; i++) {
    const StsimRegistryEntry *e = g_ptr_array_index (sel, i);
    w[0] = MAX (w[0], (int) strlen (stsim_kind_name (e->desc->kind)));
    w[1] = MAX (w[1], (int) strlen (e->desc->name));
    w[2] = MAX (w[2], (int) strlen (e->plugin->name));
    w[3] = MAX (w[3], (int) strlen (e->plugin->version));
  }
  if (sel->len)
    g_print ("%-*s  %-*s  %-*s  %-*s  %s\n", w[0], head[0], w[1], head[1], w[2], head[2], w[3], head[3], head[4]);
  for (guint i = 0; i < sel->len; i++) {
    const StsimRegistryEntry *e = g_ptr_array_index (sel, i);
    g_print ("%-*s  %-*s  %-*s  %-*s  %s\n", w[0], stsim_kind_name (e->desc->kind), w[1], e->desc->name, w[2],
             e->plugin->name, w[3], e->plugin->version, e->file);
  }
  {
    guint np = stsim_registry_get_n_plugins (reg), nc = stsim_registry_get_n_components (reg);
    guint nf = stsim_registry_get_n_failures (reg);
    g_auto(GStrv) core = stsim_recipe_list_core_sections ();
    g_autofree char *names = g_strjoinv ("], [", core);
    if (sel->len)
      g_print ("\n");
    if (!have_kind)
      g_print ("core sections: [%s] (stsim-inspect SECTION shows the keys)\n", names);
    g_print ("%u plugin%s, %u component%s, %u failed%s\n", np, np == 1 ? "" : "s", nc, nc == 1 ? "" : "s", nf,
             nf ? " (see --failed)" : "");
  }
  return STSIM_EXIT_OK;
}

static int
list_failures (StsimRegistry *reg)
{
  guint n = stsim_registry_get_n_failures (reg);
  if (opt_json) {
    g_autoptr(JsonNode) node = failures_json (reg);
    print_json (node);
    return STSIM_EXIT_OK;
  }
  for (guint i = 0; i < n; i++) {
    const StsimLoadFailure *f = stsim_registry_get_failure (reg, i);
    g_print ("%s\n  stage:  %s\n  reason: %s\n", f->file, stsim_load_stage_name (f->stage), f->message);
  }
  g_print ("%s%u plugin%s failed to load\n", n ? "\n" : "", n, n == 1 ? "" : "s");
  return STSIM_EXIT_OK;
}

/* ---- one component ------------------------------------------------------------- */

static JsonArray *params_json (const StsimParamSpec *specs);

static JsonNode *
component_json (const StsimRegistryEntry *e)
{
  JsonNode *root = json_node_new (JSON_NODE_OBJECT);
  JsonObject *o = json_object_new (), *pl = json_object_new ();

  json_object_set_string_member (o, "kind", stsim_kind_name (e->desc->kind));
  json_object_set_string_member (o, "name", e->desc->name);
  json_object_set_string_member (o, "summary", e->desc->summary);
  json_object_set_string_member (pl, "name", e->plugin->name);
  json_object_set_string_member (pl, "version", e->plugin->version);
  json_object_set_string_member (pl, "license", e->plugin->license);
  json_object_set_string_member (pl, "summary", e->plugin->summary);
  json_object_set_string_member (pl, "citation", e->plugin->citation);
  json_object_set_string_member (pl, "origin", e->plugin->origin);
  json_object_set_string_member (pl, "file", e->file);
  json_object_set_object_member (o, "plugin", pl);
  json_object_set_array_member (o, "params", params_json (e->desc->params));
  json_node_take_object (root, o);
  return root;
}

/* A parameter table as JSON: every parameter, expert ones included. */
static JsonArray *
params_json (const StsimParamSpec *specs)
{
  JsonArray *params = json_array_new ();
  for (const StsimParamSpec *p = specs; p && p->name; p++) {
    JsonObject *j = json_object_new ();
    JsonArray *flags = json_array_new ();
    json_object_set_string_member (j, "name", p->name);
    json_object_set_string_member (j, "type", stsim_param_type_name (p->type));
    json_object_set_string_member (j, "default", p->default_value);
    if ((p->type == STSIM_PARAM_INT || p->type == STSIM_PARAM_DOUBLE) && p->min < p->max) {
      json_object_set_double_member (j, "min", p->min);
      json_object_set_double_member (j, "max", p->max);
    }
    if (p->type == STSIM_PARAM_ENUM && p->choices) {
      g_auto(GStrv) ch = g_strsplit (p->choices, "|", -1);
      JsonArray *c = json_array_new ();
      for (guint i = 0; ch[i]; i++)
        json_array_add_string_element (c, ch[i]);
      json_object_set_array_member (j, "choices", c);
    }
    if (p->type == STSIM_PARAM_REFS)
      json_object_set_string_member (j, "ref_kind", p->choices);
    if (p->flags & STSIM_PARAM_REQUIRED)
      json_array_add_string_element (flags, "required");
    if (p->flags & STSIM_PARAM_EXPERT)
      json_array_add_string_element (flags, "expert");
    if (p->flags & STSIM_PARAM_DEPRECATED)
      json_array_add_string_element (flags, "deprecated");
    json_object_set_array_member (j, "flags", flags);
    json_object_set_string_member (j, "blurb", p->blurb);
    json_array_add_object_element (params, j);
  }
  return params;
}

static void
print_indented (const char *label, const char *text)
{
  g_auto(GStrv) lines = g_strsplit (text ? text : "(none)", "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    if (lines[i + 1] == NULL && lines[i][0] == '\0' && i > 0)
      break;
    g_print ("  %-10s %s\n", i == 0 ? label : "", lines[i]);
  }
}

static void print_params (const StsimParamSpec *specs);
static void print_required (const StsimParamSpec *specs);

static int
show_component (const StsimRegistryEntry *e)
{
  const StsimComponentDesc *d = e->desc;
  const char *kind = stsim_kind_name (d->kind);

  if (opt_json) {
    g_autoptr(JsonNode) node = component_json (e);
    print_json (node);
    return STSIM_EXIT_OK;
  }

  g_print ("%s %s: %s\n\n", kind, d->name, d->summary);
  print_indented ("kind", kind);
  g_print ("  %-10s %s %s: %s\n", "plugin", e->plugin->name, e->plugin->version, e->plugin->summary);
  print_indented ("license", e->plugin->license);
  print_indented ("file", e->file);
  if (e->plugin->origin)
    print_indented ("origin", e->plugin->origin);
  print_indented ("citation", e->plugin->citation);

  print_params (d->params);

  g_print ("\nMinimal recipe section:\n  [%s]\n  use = %s\n", kind, d->name);
  if (d->kind == STSIM_KIND_OBJECTIVE)
    g_print ("  weight = 1\n");
  print_required (d->params);
  return STSIM_EXIT_OK;
}

/* "Parameters:" and the table: name, type, default, range or choices, flags, description. */
static void
print_params (const StsimParamSpec *specs)
{
  const char *head[] = { "NAME", "TYPE", "DEFAULT", "RANGE/CHOICES", "FLAGS", "DESCRIPTION" };
  int w[5];
  guint hidden = 0;

  for (int c = 0; c < 5; c++)
    w[c] = strlen (head[c]);
  for (const StsimParamSpec *p = specs; p && p->name; p++) {
    g_autofree char *r = range_text (p), *f = flags_text (p);
    w[0] = MAX (w[0], (int) strlen (p->name));
    w[1] = MAX (w[1], (int) strlen (stsim_param_type_name (p->type)));
    w[2] = MAX (w[2], (int) strlen (p->default_value ? p->default_value : "-"));
    w[3] = MAX (w[3], (int) strlen (r));
    w[4] = MAX (w[4], (int) strlen (f));
  }
  g_print ("\nParameters:\n");
  if (!specs || !specs[0].name)
    g_print ("  (none)\n");
  else
    g_print ("  %-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w[0], head[0], w[1], head[1], w[2], head[2], w[3], head[3],
             w[4], head[4], head[5]);
  for (const StsimParamSpec *p = specs; p && p->name; p++) {
    g_autofree char *r = range_text (p), *f = flags_text (p);
    if ((p->flags & STSIM_PARAM_EXPERT) && !opt_all) {
      hidden++;
      continue;
    }
    g_print ("  %-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w[0], p->name, w[1], stsim_param_type_name (p->type), w[2],
             p->default_value ? p->default_value : "-", w[3], r, w[4], f, p->blurb);
  }
  if (hidden)
    g_print ("  (%u expert parameter%s hidden; --all shows them)\n", hidden, hidden == 1 ? "" : "s");
}

/* The required keys of a minimal section, with placeholders. */
static void
print_required (const StsimParamSpec *specs)
{
  for (const StsimParamSpec *p = specs; p && p->name; p++)
    if (p->flags & STSIM_PARAM_REQUIRED) {
      g_autofree char *ph = placeholder (p);
      g_print ("  %s = %s\n", p->name, ph);
    }
}

/* ---- one core section ([run], [train], ...) ------------------------------------------- */

static int
show_core_section (const char *name, const StsimParamSpec *specs)
{
  if (opt_json) {
    g_autoptr(JsonNode) root = json_node_new (JSON_NODE_OBJECT);
    JsonObject *o = json_object_new ();
    json_object_set_string_member (o, "kind", "core");
    json_object_set_string_member (o, "name", name);
    json_object_set_array_member (o, "params", params_json (specs));
    json_node_take_object (root, o);
    print_json (root);
    return STSIM_EXIT_OK;
  }
  g_print ("core section [%s]: built into libstsim, not a component (no use = ...)\n", name);
  print_params (specs);
  g_print ("\nMinimal recipe section:\n  [%s]\n", name);
  print_required (specs);
  return STSIM_EXIT_OK;
}

/* ---- recipe ----------------------------------------------------------------------- */

static int
check_recipe (StsimRegistry *reg)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) recipe = stsim_recipe_load (reg, opt_recipe, (const char *const *) opt_set, opt_data,
                                                     &error);
  g_autofree char *text = NULL;

  if (!recipe) {
    tool_print_error (error);
    tool_print_failure_hint (reg);
    return STSIM_EXIT_INVALID;
  }
  tool_print_warnings (recipe);
  text = stsim_recipe_to_string (recipe);
  g_print ("%s", text);
  return STSIM_EXIT_OK;
}

int
main (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("[NAME | KIND/NAME | SECTION]");
  g_auto(GStrv) args = g_strdupv (argv);
  g_autoptr(StsimRegistry) reg = NULL;
  StsimKind kind = STSIM_KIND_N_KINDS;
  guint n_args;

  g_set_prgname ("stsim-inspect");
  g_option_context_set_summary (context, "Lists stsim plugins and components, shows a component's or a core\n"
                                         "section's ([run], [train]) parameters, lists plugins that failed to\n"
                                         "load, validates a recipe.");
  g_option_context_set_description (context, "Exit status: 0 success, 1 invalid input, 2 usage error.\n");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!tool_parse_options (context, &args))
    return STSIM_EXIT_USAGE;
  n_args = g_strv_length (args) - 1;

  if (opt_kind && !stsim_kind_from_name (opt_kind, &kind))
    return tool_usage_error ("--kind: unknown kind '%s' (encoder, objective, teacher, evaluator)", opt_kind);
  if (n_args > 1)
    return tool_usage_error ("expected at most one NAME, got %u arguments", n_args);
  if ((opt_recipe != NULL) + (opt_failed != FALSE) + (n_args == 1) > 1)
    return tool_usage_error ("NAME, --failed and --recipe exclude each other");
  if (opt_set && !opt_recipe)
    return tool_usage_error ("--set needs --recipe");

  reg = tool_registry_new (opt_plugin_path);
  if (opt_recipe)
    return check_recipe (reg);
  if (opt_failed)
    return list_failures (reg);
  if (n_args == 1 && kind == STSIM_KIND_N_KINDS && stsim_recipe_lookup_core_section (args[1]))
    return show_core_section (args[1], stsim_recipe_lookup_core_section (args[1]));
  if (n_args == 1) {
    g_autoptr(GError) error = NULL;
    g_autofree char *name = kind != STSIM_KIND_N_KINDS && !strchr (args[1], '/')
                              ? g_strdup_printf ("%s/%s", opt_kind, args[1]) : g_strdup (args[1]);
    const StsimRegistryEntry *e = stsim_registry_lookup_name (reg, name, &error);
    if (!e) {
      tool_print_error (error);
      tool_print_failure_hint (reg);
      return STSIM_EXIT_INVALID;
    }
    return show_component (e);
  }
  return list_components (reg, kind != STSIM_KIND_N_KINDS, kind);
}
