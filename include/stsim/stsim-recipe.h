/* stsim-recipe.h: INI recipes, validated against the plugins' parameter tables.
 *
 *   [run]                      # core section, table-driven
 *   seed = 7
 *   [encoder]                  # [KIND] or [KIND.LABEL]
 *   use = bow-idf              # the component; every other key is one of its parameters
 *   [evaluator.sts]
 *   use = sts
 *
 * Core keys of a component section: `use` (required), `enabled` (bool,
 * default true; a disabled section is validated but not instantiated) and, for
 * objectives only, `weight` (double >= 0, default 1). Core sections that are
 * not components ([run], and whatever later layers register, e.g. [train])
 * are described by a parameter table like a component.
 *
 * [run] include = FILE[, FILE...] merges other recipes under this one: they are
 * read first, in order (paths relative to the including file's folder; includes
 * nest up to 8 deep, a cycle is an error), then this file, a later key replacing
 * the same key read earlier. ${recipe_dir} in a value is the folder of the file
 * that wrote it. The loaded recipe is the merge: it has no include key.
 *
 * stsim_recipe_load() collects every error of a recipe (unknown section kind,
 * unknown component, unknown key, wrong type, out of range, missing required
 * key, missing `use`, dangling or mistyped reference, reference cycle, an
 * override for a section the recipe lacks, then the registered checks) and
 * returns them together in one STSIM_ERROR_RECIPE error, one per line, each
 * as "FILE:LINE: [section] ..." (FILE: the included file when that is where
 * the line is) with the nearest valid name where there is one; values that
 * came from an override say "(from --set)".
 *
 *   g_autoptr(StsimRecipe) r = stsim_recipe_load (reg, "recipes/quickstart.ini",
 *                                                 overrides, NULL, &err);
 *   g_autoptr(StsimContext) ctx = stsim_recipe_new_context (r);
 *   stsim_recipe_instantiate (r, ctx, &err);
 *   stsim_recipe_write_resolved (r, stsim_recipe_get_output (r), &err);
 */
#pragma once
#include <glib.h>
#include "stsim-export.h"
#include "stsim-error.h"
#include "stsim-params.h"
#include "stsim-plugin.h"
#include "stsim-registry.h"

G_BEGIN_DECLS

typedef struct _StsimRecipe StsimRecipe;

/* One component section, after validation. */
typedef struct {
  const char               *label;    /* "encoder", "objective.rank" */
  StsimKind                 kind;
  const char               *use;
  const StsimRegistryEntry *entry;
  const StsimParams        *params;   /* every default applied */
  double                    weight;   /* objectives; 1 otherwise */
  gboolean                  enabled;
  int                       line;     /* of the section header; 0 when it came from --set */
  const char               *file;     /* the file of that header: the recipe or an included file */
} StsimRecipeComponent;

/* Registers a core section (not a component) described by @specs, which must
 * stay valid for the life of the process. FALSE if @name is taken, is a
 * component kind, or @specs do not validate. [run] is built in:
 *   name    string  default: the recipe file name without .ini; a name written
 *                   in an included file is ignored (it names that file's run)
 *   seed    int     default 42
 *   threads int     0 = all cores, default 0
 *   output  path    default runs/<name>, or runs/<name>-<8 hex> when there are
 *                   --set values other than run.name and run.output: the start
 *                   of the SHA-256 of the sorted SECTION.KEY=VALUE lines
 *   include paths   read while merging (below), never stored */
STSIM_API
gboolean stsim_recipe_register_core_section (const char *name, const StsimParamSpec *specs, GError **error);
/* The registered core sections' names, [run] first, NULL-terminated (g_strfreev). */
STSIM_API
char   **stsim_recipe_list_core_sections (void);
/* The parameter table of core section @name; NULL when none is registered. */
STSIM_API
const StsimParamSpec *stsim_recipe_lookup_core_section (const char *name);

/* A check that needs several sections at once (e.g. [train] against the
 * encoder it trains). stsim_recipe_load() runs every registered check, in the
 * order registered, once every section is valid and ordered, so the accessors
 * below work; a check reports with stsim_recipe_check_error() (the load then
 * fails with all errors) or stsim_recipe_check_warning(). Registering the
 * same function twice registers it once. */
typedef void (*StsimRecipeCheckFunc) (StsimRecipe *recipe);
STSIM_API
void     stsim_recipe_register_check (StsimRecipeCheckFunc check);
/* Only inside a check: an error or warning located like the parser's own
 * ("FILE:LINE: [section] message", the line of @key, or of the section
 * header when @key is NULL; "(from --set)" when it came from an override). */
STSIM_API
void     stsim_recipe_check_error   (StsimRecipe *recipe, const char *section, const char *key,
                                     const char *fmt, ...) G_GNUC_PRINTF (4, 5);
STSIM_API
void     stsim_recipe_check_warning (StsimRecipe *recipe, const char *section, const char *key,
                                     const char *fmt, ...) G_GNUC_PRINTF (4, 5);

/* @overrides: NULL-terminated "section.key=value" strings (the key is after
 * the last '.' before '='), applied on top of the file and validated the same
 * way; they may add sections. @data_dir: the root ${data} expands to (NULL:
 * stsim_data_dir_resolve (NULL)). */
STSIM_API
StsimRecipe *stsim_recipe_load      (StsimRegistry *reg, const char *path, const char *const *overrides,
                                     const char *data_dir, GError **error);
/* The same from text in memory; @path names it in messages and gives
 * ${recipe_dir} and the default run name. */
STSIM_API
StsimRecipe *stsim_recipe_load_data (StsimRegistry *reg, const char *text, gssize length, const char *path,
                                     const char *const *overrides, const char *data_dir, GError **error);
STSIM_API
void         stsim_recipe_free      (StsimRecipe *recipe);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimRecipe, stsim_recipe_free)

STSIM_API
const char *stsim_recipe_get_path     (const StsimRecipe *recipe);
STSIM_API
const char *stsim_recipe_get_data_dir (const StsimRecipe *recipe);
/* The files merged into the recipe, NULL-terminated, in the order merged: the
 * files [run] include names (recursively, each before the file that includes
 * it), then the recipe itself, last. Just the recipe when it has no includes. */
STSIM_API
const char *const *stsim_recipe_get_files (const StsimRecipe *recipe);
/* [run] values. */
STSIM_API
const char *stsim_recipe_get_name     (const StsimRecipe *recipe);
STSIM_API
const char *stsim_recipe_get_output   (const StsimRecipe *recipe);
/* TRUE when [run] output was not given (file or --set) but derived from the name. */
STSIM_API
gboolean    stsim_recipe_get_output_is_default (const StsimRecipe *recipe);
STSIM_API
guint64     stsim_recipe_get_seed     (const StsimRecipe *recipe);
STSIM_API
int         stsim_recipe_get_threads  (const StsimRecipe *recipe);
/* A core section's values (defaults applied, also when the recipe lacks the
 * section); NULL if no such core section is registered. */
STSIM_API
const StsimParams *stsim_recipe_get_core (const StsimRecipe *recipe, const char *section);
/* Warnings that do not stop a run (deprecated parameters), one per entry. */
STSIM_API
const char *const *stsim_recipe_get_warnings (const StsimRecipe *recipe);

/* Component sections in file order (then --set order). */
STSIM_API
guint                       stsim_recipe_get_n_components  (const StsimRecipe *recipe);
STSIM_API
const StsimRecipeComponent *stsim_recipe_get_component     (const StsimRecipe *recipe, guint i);
STSIM_API
const StsimRecipeComponent *stsim_recipe_lookup_component  (const StsimRecipe *recipe, const char *label);
/* Enabled components in instantiation order: referenced labels first. */
STSIM_API
guint                       stsim_recipe_get_n_ordered     (const StsimRecipe *recipe);
STSIM_API
const StsimRecipeComponent *stsim_recipe_get_ordered       (const StsimRecipe *recipe, guint i);
/* How many enabled components of @kind the recipe has. */
STSIM_API
guint                       stsim_recipe_count_kind        (const StsimRecipe *recipe, StsimKind kind);

/* A context with the recipe's data root, seed and threads. */
STSIM_API
StsimContext *stsim_recipe_new_context (const StsimRecipe *recipe);
/* Creates every enabled component in dependency order and adds it to @ctx
 * (which destroys them in reverse order). On failure the components created
 * so far stay in @ctx. */
STSIM_API
gboolean      stsim_recipe_instantiate (const StsimRecipe *recipe, StsimContext *ctx, GError **error);

/* The fully resolved recipe as INI text: a header comment (stsim and plugin
 * versions; the files merged, when there were includes), [run] and the other core sections given, then one section per
 * component, `use` first, every value explicit. Loading this text again gives
 * the same text. */
STSIM_API
char     *stsim_recipe_to_string      (const StsimRecipe *recipe);
/* Writes stsim_recipe_to_string() to @dir/resolved.ini atomically, creating @dir. */
STSIM_API
gboolean  stsim_recipe_write_resolved (const StsimRecipe *recipe, const char *dir, GError **error);

G_END_DECLS
