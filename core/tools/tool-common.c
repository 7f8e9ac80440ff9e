/* tool-common.c: shared plumbing of the command-line tools. */
#include "tool-common.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "stsim/stsim-bounded.h"

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
  } else {
    g_printerr ("%s: %u errors:\n", g_get_prgname (), n);
    for (guint i = 0; i < n; i++)
      g_printerr ("  %s\n", lines[i]);
  }
  tool_print_data_hint (error);
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
  g_autofree char *text = stsim_json_to_data (node, TRUE, NULL);
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

GKeyFile *
tool_data_manifest (GError **error)
{
  g_autoptr(GBytes) bytes = g_resources_lookup_data ("/org/stsim/data/stsim-data.manifest", 0, error);
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  gsize len = 0;
  const char *text = bytes ? g_bytes_get_data (bytes, &len) : NULL;

  if (!text || !g_key_file_load_from_data (kf, text, len, G_KEY_FILE_NONE, error)) {
    g_prefix_error (error, "the built-in data manifest: ");
    return NULL;
  }
  return g_steal_pointer (&kf);
}

char *
tool_data_fetch_dest (void)
{
  const char *env = g_getenv ("STSIM_DATA");
  g_autofree char *user = g_build_filename (g_get_user_data_dir (), "stsim", NULL);
  return g_canonicalize_filename (env && env[0] ? env : user, NULL);
}

/* The data folder in front of "/@dest" in @msg (a path ending there), or NULL. */
static char *
find_data_prefix (const char *msg, const char *dest)
{
  g_autofree char *needle = g_strconcat ("/", dest, NULL);
  gsize n = strlen (needle);

  for (const char *p = strstr (msg, needle); p; p = strstr (p + 1, needle)) {
    if (p[n] != '\0' && !strchr ("/'\") :,", p[n]))
      continue;  /* a longer name that only starts like @dest */
    const char *start = p;
    while (start > msg && !strchr (" '\"(", start[-1]))
      start--;
    if (start < p)
      return g_strndup (start, p - start);
  }
  return NULL;
}

void
tool_print_data_hint (const GError *error)
{
  if (error == NULL || !g_error_matches (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND))
    return;
  g_autoptr(GKeyFile) manifest = tool_data_manifest (NULL);
  g_auto(GStrv) groups = manifest ? g_key_file_get_groups (manifest, NULL) : NULL;
  g_autofree char *prefix = NULL;
  const char *item = NULL;

  for (guint i = 0; groups && groups[i] && !item; i++) {
    g_autofree char *dest = g_key_file_get_string (manifest, groups[i], "dest", NULL);
    if (dest && (prefix = find_data_prefix (error->message, dest)))
      item = groups[i];
  }
  /* A data folder that does not exist at all: the STS data is the first thing the tools read. */
  const char *sts = strstr (error->message, "STS data folder '");
  if (!item && sts) {
    const char *p = sts + strlen ("STS data folder '"), *q = strchr (p, '\'');
    prefix = q ? g_strndup (p, q - p) : NULL;
    item = prefix ? "senteval" : NULL;
  }
  if (!item)
    return;
  g_autofree char *folder = g_canonicalize_filename (prefix, NULL);
  g_autofree char *fetch_dest = tool_data_fetch_dest ();
  g_autofree char *quoted = g_shell_quote (folder);
  gboolean other = strcmp (folder, fetch_dest) != 0;
  g_printerr ("%s: hint: the data item '%s' holds this; fetch it with: stsim-data fetch%s%s %s\n",
              g_get_prgname (), item, other ? " --dest " : "", other ? quoted : "", item);
}
