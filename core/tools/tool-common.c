/* tool-common.c: shared plumbing of the command-line tools. */
#include "tool-common.h"

#include <stdio.h>
#include <unistd.h>

/* libgomp reads OMP_WAIT_POLICY once, when it is loaded, before main(). Its
 * default spins at every barrier; when the other core is busy, each small
 * parallel region then waits for a scheduler tick: encoding STS-B with a tiny
 * model ran at 264 sentences/s with 2 threads against 3,336 with passive
 * waiting (and PyTorch ran 40-70% faster with passive here: docs/performance.md).
 * So a tool re-executes itself once with the passive policy, unless the user
 * chose one. */
static void
tool_ensure_passive_wait (char **argv)
{
  if (g_getenv ("OMP_WAIT_POLICY") != NULL || argv == NULL || argv[0] == NULL)
    return;
  g_setenv ("OMP_WAIT_POLICY", "PASSIVE", TRUE);
  execv ("/proc/self/exe", argv);
  /* exec failed (no /proc?): run on with the default policy */
}

gboolean
tool_parse_options (GOptionContext *context, char ***argv)
{
  g_autoptr(GError) error = NULL;

  tool_ensure_passive_wait (*argv);

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
tool_write_text (const char *path, const char *text, GError **error)
{
  g_autoptr(GError) e = NULL;

  if (!g_file_set_contents (path, text, -1, &e)) {  /* temporary file + rename */
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot write %s: %s", path, e->message);
    return FALSE;
  }
  return TRUE;
}

gboolean
tool_write_json (const char *path, JsonNode *node, GError **error)
{
  g_autofree char *text = tool_json_to_string (node);
  return tool_write_text (path, text, error);
}
