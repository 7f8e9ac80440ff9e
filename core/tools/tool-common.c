/* tool-common.c: shared plumbing of the command-line tools. */
#include "tool-common.h"

#include <stdio.h>

gboolean
tool_parse_options (GOptionContext *context, char ***argv)
{
  g_autoptr(GError) error = NULL;

  if (!g_option_context_parse_strv (context, argv, &error)) {
    tool_usage_error ("%s", error->message);
    return FALSE;
  }
  return TRUE;
}

int
tool_usage_error (const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_printerr ("%s: %s\nTry '%s --help' for more information.\n", g_get_prgname (), msg, g_get_prgname ());
  return STSIM_EXIT_USAGE;
}

void
tool_print_error (const GError *error)
{
  g_auto(GStrv) lines = g_strsplit (error->message, "\n", -1);
  guint n = g_strv_length (lines);

  if (n <= 1) {
    g_printerr ("%s: %s\n", g_get_prgname (), error->message);
    return;
  }
  g_printerr ("%s: %u errors:\n", g_get_prgname (), n);
  for (guint i = 0; i < n; i++)
    g_printerr ("  %s\n", lines[i]);
}

StsimRegistry *
tool_registry_new (const char *plugin_path)
{
  StsimRegistry *reg = stsim_registry_new ();
  if (plugin_path && plugin_path[0]) {
    g_autoptr(GError) e = NULL;
    if (!stsim_registry_scan_path (reg, plugin_path, &e))
      g_printerr ("%s: warning: %s\n", g_get_prgname (), e->message);
  }
  stsim_registry_scan_default (reg);
  return reg;
}

void
tool_print_failure_hint (StsimRegistry *reg)
{
  guint n = stsim_registry_get_n_failures (reg);
  if (n)
    g_printerr ("%s: note: %u plugin%s failed to load; 'stsim-inspect --failed' says why\n", g_get_prgname (), n,
                n == 1 ? "" : "s");
}

void
tool_print_warnings (const StsimRecipe *recipe)
{
  for (const char *const *w = stsim_recipe_get_warnings (recipe); w && *w; w++)
    g_printerr ("%s: warning: %s\n", g_get_prgname (), *w);
}

char *
tool_json_to_string (JsonNode *node)
{
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autofree char *text = NULL;

  json_generator_set_root (gen, node);
  json_generator_set_pretty (gen, TRUE);
  text = json_generator_to_data (gen, NULL);
  return g_strconcat (text, "\n", NULL);
}

gboolean
tool_write_json (const char *path, JsonNode *node, GError **error)
{
  g_autofree char *text = tool_json_to_string (node);
  g_autoptr(GError) e = NULL;

  if (!g_file_set_contents (path, text, -1, &e)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot write %s: %s", path, e->message);
    return FALSE;
  }
  return TRUE;
}
