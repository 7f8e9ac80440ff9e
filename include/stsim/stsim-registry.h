/* stsim-registry.h: finding, loading and validating plugins; building
 * component instances and the context they run in.
 *
 *   g_autoptr(StsimRegistry) reg = stsim_registry_new ();
 *   stsim_registry_scan_default (reg);
 *   const StsimRegistryEntry *e = stsim_registry_lookup (reg, STSIM_KIND_ENCODER, "bow-idf");
 *
 *   g_autoptr(StsimContext) ctx = stsim_context_new (NULL, 42, 0);
 *   StsimComponent *enc = stsim_component_new_simple (reg, STSIM_KIND_ENCODER, "bow-idf",
 *                                                     "encoder", ctx, &err, NULL);
 *   stsim_context_add (ctx, enc, &err);           // the context now owns it
 *
 * Search order of stsim_registry_scan_default():
 *   1. STSIM_PLUGIN_PATH (G_SEARCHPATH_SEPARATOR-separated folders);
 *   2. the build tree's plugin folder, when the running program lives in the
 *      meson build tree that configured this libstsim (uninstalled use);
 *   3. STSIM_PLUGIN_SYSTEM_PATH if set (it replaces the default; empty means
 *      none), else the installed plugin folder.
 * Each folder is searched recursively (depth <= 4) for libstsim-*.so. The
 * same file reached twice is loaded once; a copy of an already loaded plugin
 * with the same file name later in the path is skipped (shadowed).
 *
 * A plugin that fails to open, lacks the entry symbol, has another ABI, or
 * does not validate is closed again and recorded as a failure (file, stage,
 * reason); other plugins are unaffected.
 */
#pragma once
#include <glib.h>
#include "stsim-export.h"
#include "stsim-error.h"
#include "stsim-params.h"
#include "stsim-plugin.h"

G_BEGIN_DECLS

typedef struct _StsimRegistry StsimRegistry;

typedef enum {
  STSIM_LOAD_STAGE_OPEN,      /* g_module_open() failed: not a shared object, missing library, ... */
  STSIM_LOAD_STAGE_SYMBOL,    /* no stsim_plugin_describe, or it returned NULL */
  STSIM_LOAD_STAGE_ABI,       /* built against another plugin ABI */
  STSIM_LOAD_STAGE_VALIDATE,  /* descriptor, component or parameter table invalid; name clash */
} StsimLoadStage;

STSIM_API
const char *stsim_load_stage_name (StsimLoadStage stage);  /* "open", "symbol", "abi", "validate" */

typedef struct {
  const char     *file;
  StsimLoadStage  stage;
  const char     *message;
} StsimLoadFailure;

/* One registered component and where it came from. */
typedef struct {
  const StsimComponentDesc *desc;
  const StsimPluginDesc    *plugin;
  const char               *file;   /* the plugin's .so */
} StsimRegistryEntry;

STSIM_API
StsimRegistry *stsim_registry_new  (void);
STSIM_API
void           stsim_registry_free (StsimRegistry *reg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimRegistry, stsim_registry_free)

/* Scans each folder of @dirs (G_SEARCHPATH_SEPARATOR list; missing folders
 * are skipped). Plugins that fail are recorded, not returned: FALSE only when
 * a folder exists but cannot be read. */
STSIM_API
gboolean stsim_registry_scan_path    (StsimRegistry *reg, const char *dirs, GError **error);
/* Loads one file. FALSE (and a recorded failure) when it is rejected; TRUE
 * also when the file was already loaded or is a shadowed copy. */
STSIM_API
gboolean stsim_registry_load_file    (StsimRegistry *reg, const char *path, GError **error);
/* The default search order above; unreadable folders are recorded as failures. */
STSIM_API
void     stsim_registry_scan_default (StsimRegistry *reg);

/* Components in load order. */
STSIM_API
guint                     stsim_registry_get_n_components (StsimRegistry *reg);
STSIM_API
const StsimRegistryEntry *stsim_registry_get_component    (StsimRegistry *reg, guint i);
STSIM_API
guint                     stsim_registry_get_n_failures   (StsimRegistry *reg);
STSIM_API
const StsimLoadFailure   *stsim_registry_get_failure      (StsimRegistry *reg, guint i);
/* Loaded plugins, in load order, and the file of each. */
STSIM_API
guint                     stsim_registry_get_n_plugins    (StsimRegistry *reg);
STSIM_API
const StsimPluginDesc    *stsim_registry_get_plugin       (StsimRegistry *reg, guint i, const char **file);

/* NULL when there is no such component. */
STSIM_API
const StsimRegistryEntry *stsim_registry_lookup (StsimRegistry *reg, StsimKind kind, const char *name);
/* The same, but a missing component is a NOT_FOUND error that names the
 * nearest name of @kind, or the kind @name has instead:
 * "no teacher named 'sts' ('sts' is an evaluator)". */
STSIM_API
const StsimRegistryEntry *stsim_registry_find (StsimRegistry *reg, StsimKind kind, const char *name, GError **error);
/* @name is "NAME" or "KIND/NAME". NOT_FOUND (with the nearest name) when
 * there is none, INVALID (listing the kinds) when NAME alone is ambiguous. */
STSIM_API
const StsimRegistryEntry *stsim_registry_lookup_name (StsimRegistry *reg, const char *name, GError **error);
/* The registered name nearest to @name (of @kind, or of any kind when @kind is
 * STSIM_KIND_N_KINDS), or NULL when none is close. */
STSIM_API
const char *stsim_registry_suggest (StsimRegistry *reg, StsimKind kind, const char *name);

/* ---- data root ---------------------------------------------------------- */
/* @override (--data) if non-NULL and non-empty, else $STSIM_DATA, else the
 * folder this build was configured with if it exists, else the per-user data
 * folder ($XDG_DATA_HOME/stsim) that stsim-data fetches into. Newly allocated. */
STSIM_API
char *stsim_data_dir_resolve (const char *override);

/* ---- context ------------------------------------------------------------ */
/* @data_dir NULL: stsim_data_dir_resolve (NULL). @threads <= 0: all cores. */
STSIM_API
StsimContext *stsim_context_new  (const char *data_dir, guint64 seed, int threads);
/* Destroys the components it owns, last added first. */
STSIM_API
void          stsim_context_free (StsimContext *ctx);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimContext, stsim_context_free)
/* Takes ownership of @component (also on failure); fails if its label is taken. */
STSIM_API
gboolean      stsim_context_add  (StsimContext *ctx, StsimComponent *component, GError **error);

/* ---- component instances -------------------------------------------------- */
/* Calls desc->create (params, ctx). Takes ownership of @params (finished, see
 * stsim_params_finish), also on failure. The component is not yet in @ctx. */
STSIM_API
StsimComponent *stsim_component_new  (const StsimComponentDesc *desc, const char *label,
                                      StsimParams *params, StsimContext *ctx, GError **error);
/* For components that were never added to a context. */
STSIM_API
void            stsim_component_free (StsimComponent *component);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimComponent, stsim_component_free)
/* Convenience for tests and tools: looks @name up, sets the NULL-terminated
 * key, value, ... pairs, applies defaults and creates it with @label
 * (NULL: the kind name). */
STSIM_API
StsimComponent *stsim_component_new_simple (StsimRegistry *reg, StsimKind kind, const char *name,
                                            const char *label, StsimContext *ctx, GError **error,
                                            ...) G_GNUC_NULL_TERMINATED;

G_END_DECLS
