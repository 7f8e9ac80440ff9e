/* tool-common.h: what the command-line tools share: exit codes, option
 * parsing, the registry with --plugin-path, error printing. */
#pragma once
#include <glib.h>
#include "stsim/stsim-recipe.h"
#include "stsim/stsim-registry.h"

G_BEGIN_DECLS

/* Exit codes of every stsim tool (docs/error-codes.md). */
typedef enum {
  STSIM_EXIT_OK = 0,       /* success */
  STSIM_EXIT_INVALID = 1,  /* invalid input: bad recipe, missing file, a component that failed */
  STSIM_EXIT_USAGE = 2,    /* bad command-line options */
} StsimExitCode;

/* Parses @argv (g_option_context_parse_strv semantics, argv[0] kept). On
 * failure prints "PROG: message" and a --help hint, and returns FALSE. */
gboolean tool_parse_options (GOptionContext *context, char ***argv);
/* Prints "PROG: usage problem" plus the --help hint; returns STSIM_EXIT_USAGE. */
int      tool_usage_error   (const char *fmt, ...) G_GNUC_PRINTF (1, 2);
/* Prints an error: its first line after "PROG: ", every further line indented. */
void     tool_print_error   (const GError *error);
/* A registry that scanned @plugin_path (may be NULL) and then the default path. */
StsimRegistry *tool_registry_new (const char *plugin_path);
/* The hint printed after a recipe error when some plugins failed to load. */
void     tool_print_failure_hint (StsimRegistry *reg);
/* Prints recipe warnings to stderr. */
void     tool_print_warnings (const StsimRecipe *recipe);
/* @node as pretty JSON text with a final newline. */
char    *tool_json_to_string (JsonNode *node);
/* Writes @text to @path atomically (temp file + rename); the error names the file. */
gboolean tool_write_text (const char *path, const char *text, GError **error);
/* Writes tool_json_to_string (@node) to @path the same way. */
gboolean tool_write_json (const char *path, JsonNode *node, GError **error);

/* The data manifest compiled into the tools (core/tools/stsim-data.manifest). */
GKeyFile *tool_data_manifest (GError **error);
/* Where `stsim-data fetch` puts data without --dest: $STSIM_DATA, else the
 * per-user data folder ($XDG_DATA_HOME/stsim). Newly allocated, canonical. */
char     *tool_data_fetch_dest (void);
/* When @error says that data is missing under a folder of the manifest (the
 * STS data, a vocabulary, the corpus, a checkpoint), prints which item brings
 * it and the exact `stsim-data fetch` command. tool_print_error calls it. */
void      tool_print_data_hint (const GError *error);

G_END_DECLS
