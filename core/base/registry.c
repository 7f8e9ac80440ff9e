/* registry.c: finding, loading and validating plugins (stsim-registry.h). */
#include "stsim/stsim-registry.h"
#include "base/util.h"
#include "stsim-config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_MAX_DEPTH 4

typedef struct {
  const StsimPluginDesc *desc;
  char                  *file;
} Plugin;

struct _StsimRegistry {
  GPtrArray  *plugins;   /* Plugin* */
  GPtrArray  *entries;   /* StsimRegistryEntry* */
  GPtrArray  *failures;  /* StsimLoadFailure* */
  GHashTable *by_key;    /* "kind/name" -> entry */
  GHashTable *seen;      /* real path -> the failure that rejected it, or the registry itself */
};

static const char *const stage_names[] = { "open", "symbol", "abi", "validate" };

const char *
stsim_load_stage_name (StsimLoadStage stage)
{
  return (guint) stage < G_N_ELEMENTS (stage_names) ? stage_names[stage] : "invalid";
}

static void
plugin_free (Plugin *p)
{
  g_free (p->file);
  g_free (p);
}

static void
failure_free (StsimLoadFailure *f)
{
  g_free ((char *) f->file);
  g_free ((char *) f->message);
  g_free (f);
}

StsimRegistry *
stsim_registry_new (void)
{
  StsimRegistry *reg = g_new0 (StsimRegistry, 1);
  reg->plugins = g_ptr_array_new_with_free_func ((GDestroyNotify) plugin_free);
  reg->entries = g_ptr_array_new_with_free_func (g_free);
  reg->failures = g_ptr_array_new_with_free_func ((GDestroyNotify) failure_free);
  reg->by_key = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  reg->seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return reg;
}

void
stsim_registry_free (StsimRegistry *reg)
{
  if (!reg)
    return;
  /* Modules stay resident: descriptors may still be referenced. */
  g_ptr_array_unref (reg->plugins);
  g_ptr_array_unref (reg->entries);
  g_ptr_array_unref (reg->failures);
  g_hash_table_unref (reg->by_key);
  g_hash_table_unref (reg->seen);
  g_free (reg);
}

static char *
component_key (StsimKind kind, const char *name)
{
  return g_strdup_printf ("%s/%s", stsim_kind_name (kind), name);
}

/* ---- validation ------------------------------------------------------------ */

typedef struct {
  const char *name;
  gsize       offset;
} RequiredOp;

/* The ops a component of each kind must provide; the vtable must reach past the last. */
static const RequiredOp required_ops[STSIM_KIND_N_KINDS][3] = {
  [STSIM_KIND_ENCODER] = { { "dim", offsetof (StsimEncoderVTable, dim) },
                           { "encode", offsetof (StsimEncoderVTable, encode) } },
  [STSIM_KIND_OBJECTIVE] = { { "loss", offsetof (StsimObjectiveVTable, loss) } },
  [STSIM_KIND_TEACHER] = { { "similarity", offsetof (StsimTeacherVTable, similarity) } },
  [STSIM_KIND_EVALUATOR] = { { "evaluate", offsetof (StsimEvaluatorVTable, evaluate) } },
};

#define MAX_VTABLE_SIZE (64 * sizeof (gpointer))

static void
problem (GString *msg, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static void
problem (GString *msg, const char *fmt, ...)
{
  va_list ap;
  if (msg->len)
    g_string_append (msg, "; ");
  va_start (ap, fmt);
  g_string_append_vprintf (msg, fmt, ap);
  va_end (ap);
}

static void
validate_component (StsimRegistry *reg, const StsimComponentDesc *c, guint index, GHashTable *own,
                    GString *msg)
{
  static const char *const reserved[] = { "use", "weight", "enabled", NULL };
  g_autofree char *where = NULL;
  g_autofree char *key = NULL;
  const char *kind;

  if ((guint) c->kind >= STSIM_KIND_N_KINDS) {
    problem (msg, "component #%u ('%s') has an invalid kind %d", index, c->name ? c->name : "?", (int) c->kind);
    return;
  }
  kind = stsim_kind_name (c->kind);
  if (!stsim_util_name_is_valid (c->name, "-")) {
    problem (msg, "%s #%u has an invalid name '%s' (must be [a-z][a-z0-9-]*)", kind, index,
             c->name ? c->name : "(null)");
    return;
  }
  where = g_strdup_printf ("%s '%s'", kind, c->name);
  key = component_key (c->kind, c->name);
  if (!g_hash_table_add (own, g_strdup (key)))
    problem (msg, "%s is declared twice in this plugin", where);
  else {
    const StsimRegistryEntry *other = g_hash_table_lookup (reg->by_key, key);
    if (other)
      problem (msg, "%s is already provided by plugin '%s' (%s)", where, other->plugin->name, other->file);
  }
  if (!c->summary || !c->summary[0])
    problem (msg, "%s has no summary", where);
  if (!c->create || !c->destroy)
    problem (msg, "%s lacks %s", where, !c->create ? "create()" : "destroy()");
  if (!c->vtable) {
    problem (msg, "%s has no vtable (use STSIM_VTABLE (...))", where);
  } else if (c->vtable_size == 0 || c->vtable_size % sizeof (gpointer) != 0 || c->vtable_size > MAX_VTABLE_SIZE) {
    problem (msg, "%s has an implausible vtable_size %" G_GSIZE_FORMAT, where, c->vtable_size);
  } else {
    for (guint i = 0; i < G_N_ELEMENTS (required_ops[0]) && required_ops[c->kind][i].name; i++) {
      const RequiredOp *op = &required_ops[c->kind][i];
      if (op->offset + sizeof (gpointer) > c->vtable_size)
        problem (msg, "%s: vtable_size %" G_GSIZE_FORMAT " is too small for required op %s()", where,
                 c->vtable_size, op->name);
      else if (G_STRUCT_MEMBER (gpointer, c->vtable, op->offset) == NULL)
        problem (msg, "%s lacks the required %s op %s()", where, kind, op->name);
    }
  }
  {
    g_autoptr(GError) e = NULL;
    if (!stsim_param_specs_validate (c->params, NULL, &e))
      problem (msg, "%s has an invalid parameter table: %s", where, e->message);
    for (guint i = 0; reserved[i]; i++)
      if (stsim_param_specs_lookup (c->params, reserved[i]))
        problem (msg, "%s declares parameter '%s', which is a core recipe key", where, reserved[i]);
  }
}

/* Returns the problems of @d, or NULL when it is valid. */
static char *
validate_plugin (StsimRegistry *reg, const StsimPluginDesc *d)
{
  g_autoptr(GString) msg = g_string_new (NULL);
  g_autoptr(GHashTable) own = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  if (!stsim_util_name_is_valid (d->name, "-"))
    problem (msg, "invalid plugin name '%s' (must be [a-z][a-z0-9-]*)", d->name ? d->name : "(null)");
  if (!d->version || !d->version[0])
    problem (msg, "no version");
  if (!d->license || !d->license[0])
    problem (msg, "no license");
  if (!d->summary || !d->summary[0])
    problem (msg, "no summary");
  if (!d->components || !d->components[0])
    problem (msg, "no components");
  for (guint i = 0; d->components && d->components[i]; i++)
    validate_component (reg, d->components[i], i, own, msg);
  return msg->len ? g_strdup (msg->str) : NULL;
}

/* ---- loading ---------------------------------------------------------------- */

static gboolean
fail (StsimRegistry *reg, const char *real, const char *file, StsimLoadStage stage, char *message,
      GError **error)
{
  StsimLoadFailure *f = g_new0 (StsimLoadFailure, 1);
  f->file = g_strdup (file);
  f->stage = stage;
  f->message = message;
  g_ptr_array_add (reg->failures, f);
  g_hash_table_replace (reg->seen, g_strdup (real), f);
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_PLUGIN, "plugin %s rejected at stage '%s': %s", file,
               stsim_load_stage_name (stage), message);
  return FALSE;
}

static const Plugin *
find_plugin (StsimRegistry *reg, const char *name)
{
  for (guint i = 0; i < reg->plugins->len; i++) {
    const Plugin *p = g_ptr_array_index (reg->plugins, i);
    if (strcmp (p->desc->name, name) == 0)
      return p;
  }
  return NULL;
}

gboolean
stsim_registry_load_file (StsimRegistry *reg, const char *path, GError **error)
{
  g_autofree char *real = NULL;
  gpointer prior;
  GModule *module;
  StsimPluginDescribeFunc describe = NULL;
  const StsimPluginDesc *desc;
  const Plugin *same;
  char *problems;

  g_return_val_if_fail (reg != NULL && path != NULL, FALSE);
  {
    char *r = realpath (path, NULL);
    real = r ? g_strdup (r) : g_canonicalize_filename (path, NULL);
    free (r);
  }
  if (g_hash_table_lookup_extended (reg->seen, real, NULL, &prior)) {
    const StsimLoadFailure *f = prior;
    if (prior == reg)
      return TRUE;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PLUGIN, "plugin %s rejected at stage '%s': %s", f->file,
                 stsim_load_stage_name (f->stage), f->message);
    return FALSE;
  }

  module = g_module_open (path, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL);
  if (!module)
    return fail (reg, real, path, STSIM_LOAD_STAGE_OPEN, g_strdup (g_module_error ()), error);

  if (!g_module_symbol (module, STSIM_PLUGIN_SYMBOL, (gpointer *) &describe) || !describe) {
    g_module_close (module);
    return fail (reg, real, path, STSIM_LOAD_STAGE_SYMBOL,
                 g_strdup ("no " STSIM_PLUGIN_SYMBOL "() symbol: not an stsim plugin "
                           "(plugins define it with STSIM_PLUGIN_DEFINE)"), error);
  }
  desc = describe ();
  if (!desc) {
    g_module_close (module);
    return fail (reg, real, path, STSIM_LOAD_STAGE_SYMBOL, g_strdup (STSIM_PLUGIN_SYMBOL "() returned NULL"),
                 error);
  }
  if (desc->abi_major != STSIM_ABI_MAJOR || desc->abi_minor > STSIM_ABI_MINOR) {
    char *m = g_strdup_printf ("built for plugin ABI %u.%u, but this stsim %s supports %u.0 to %u.%u; "
                               "rebuild the plugin against this stsim",
                               desc->abi_major, desc->abi_minor, STSIM_VERSION, STSIM_ABI_MAJOR,
                               STSIM_ABI_MAJOR, STSIM_ABI_MINOR);
    g_module_close (module);
    return fail (reg, real, path, STSIM_LOAD_STAGE_ABI, m, error);
  }
  if (desc->name && (same = find_plugin (reg, desc->name))) {
    g_autofree char *a = g_path_get_basename (same->file), *b = g_path_get_basename (path);
    /* desc lives in the module: read it before closing. */
    char *m = g_strdup_printf ("plugin name '%s' is already used by %s", desc->name, same->file);
    g_module_close (module);
    if (strcmp (a, b) == 0) {
      /* The same plugin again, later in the search path: shadowed, not an error. */
      g_debug ("plugin %s is shadowed by %s", path, same->file);
      g_hash_table_replace (reg->seen, g_strdup (real), reg);
      g_free (m);
      return TRUE;
    }
    return fail (reg, real, path, STSIM_LOAD_STAGE_VALIDATE, m, error);
  }
  if ((problems = validate_plugin (reg, desc))) {
    g_module_close (module);
    return fail (reg, real, path, STSIM_LOAD_STAGE_VALIDATE, problems, error);
  }

  g_module_make_resident (module);
  {
    Plugin *p = g_new0 (Plugin, 1);
    p->desc = desc;
    p->file = g_strdup (path);
    g_ptr_array_add (reg->plugins, p);
    for (guint i = 0; desc->components[i]; i++) {
      StsimRegistryEntry *e = g_new0 (StsimRegistryEntry, 1);
      e->desc = desc->components[i];
      e->plugin = desc;
      e->file = p->file;
      g_ptr_array_add (reg->entries, e);
      g_hash_table_insert (reg->by_key, component_key (e->desc->kind, e->desc->name), e);
    }
  }
  g_hash_table_replace (reg->seen, g_steal_pointer (&real), reg);
  return TRUE;
}

/* ---- scanning --------------------------------------------------------------- */

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static gboolean
scan_dir (StsimRegistry *reg, const char *dir, int depth, GError **error)
{
  g_autoptr(GDir) d = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  if (!(d = g_dir_open (dir, 0, error)))
    return FALSE;
  while ((name = g_dir_read_name (d)))
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_strings);  /* a stable load order */
  for (guint i = 0; i < names->len; i++) {
    const char *n = g_ptr_array_index (names, i);
    g_autofree char *path = g_build_filename (dir, n, NULL);
    if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
      if (depth < SCAN_MAX_DEPTH)
        scan_dir (reg, path, depth + 1, NULL);  /* unreadable subfolders are skipped */
    } else if (g_str_has_prefix (n, "libstsim-") && g_str_has_suffix (n, ".so")) {
      stsim_registry_load_file (reg, path, NULL);
    }
  }
  return TRUE;
}

gboolean
stsim_registry_scan_path (StsimRegistry *reg, const char *dirs, GError **error)
{
  g_auto(GStrv) list = NULL;
  gboolean ok = TRUE;

  g_return_val_if_fail (reg != NULL, FALSE);
  if (!dirs)
    return TRUE;
  list = g_strsplit (dirs, G_SEARCHPATH_SEPARATOR_S, -1);
  for (guint i = 0; list[i]; i++) {
    g_autoptr(GError) e = NULL;
    if (list[i][0] == '\0' || !g_file_test (list[i], G_FILE_TEST_IS_DIR))
      continue;
    if (!scan_dir (reg, list[i], 0, &e) && ok) {
      ok = FALSE;
      g_propagate_prefixed_error (error, g_steal_pointer (&e), "plugin folder %s: ", list[i]);
    }
  }
  return ok;
}

/* TRUE when the running program lives in the build tree that configured this libstsim. */
static gboolean
running_in_build_tree (void)
{
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *root = g_path_get_dirname (STSIM_BUILD_PLUGIN_DIR);
  g_autofree char *prefix = g_strconcat (root, G_DIR_SEPARATOR_S, NULL);

  return exe && g_file_test (STSIM_BUILD_PLUGIN_DIR, G_FILE_TEST_IS_DIR) && g_str_has_prefix (exe, prefix);
}

static void
scan_recording (StsimRegistry *reg, const char *dirs)
{
  g_autoptr(GError) e = NULL;
  if (!stsim_registry_scan_path (reg, dirs, &e)) {
    StsimLoadFailure *f = g_new0 (StsimLoadFailure, 1);
    f->file = g_strdup (dirs);
    f->stage = STSIM_LOAD_STAGE_OPEN;
    f->message = g_strdup (e->message);
    g_ptr_array_add (reg->failures, f);
  }
}

void
stsim_registry_scan_default (StsimRegistry *reg)
{
  const char *system = g_getenv ("STSIM_PLUGIN_SYSTEM_PATH");

  g_return_if_fail (reg != NULL);
  scan_recording (reg, g_getenv ("STSIM_PLUGIN_PATH"));
  if (running_in_build_tree ())
    scan_recording (reg, STSIM_BUILD_PLUGIN_DIR);
  scan_recording (reg, system ? system : STSIM_PLUGIN_DIR);
}

/* ---- queries ----------------------------------------------------------------- */

guint
stsim_registry_get_n_components (StsimRegistry *reg)
{
  return reg->entries->len;
}

const StsimRegistryEntry *
stsim_registry_get_component (StsimRegistry *reg, guint i)
{
  g_return_val_if_fail (i < reg->entries->len, NULL);
  return g_ptr_array_index (reg->entries, i);
}

guint
stsim_registry_get_n_failures (StsimRegistry *reg)
{
  return reg->failures->len;
}

const StsimLoadFailure *
stsim_registry_get_failure (StsimRegistry *reg, guint i)
{
  g_return_val_if_fail (i < reg->failures->len, NULL);
  return g_ptr_array_index (reg->failures, i);
}

guint
stsim_registry_get_n_plugins (StsimRegistry *reg)
{
  return reg->plugins->len;
}

const StsimPluginDesc *
stsim_registry_get_plugin (StsimRegistry *reg, guint i, const char **file)
{
  const Plugin *p;
  g_return_val_if_fail (i < reg->plugins->len, NULL);
  p = g_ptr_array_index (reg->plugins, i);
  if (file)
    *file = p->file;
  return p->desc;
}

const StsimRegistryEntry *
stsim_registry_lookup (StsimRegistry *reg, StsimKind kind, const char *name)
{
  g_autofree char *key = NULL;
  g_return_val_if_fail (reg != NULL && name != NULL, NULL);
  key = component_key (kind, name);
  return g_hash_table_lookup (reg->by_key, key);
}

const char *
stsim_registry_suggest (StsimRegistry *reg, StsimKind kind, const char *name)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  for (guint i = 0; i < reg->entries->len; i++) {
    const StsimRegistryEntry *e = g_ptr_array_index (reg->entries, i);
    if (kind == STSIM_KIND_N_KINDS || e->desc->kind == kind)
      g_ptr_array_add (names, (gpointer) e->desc->name);
  }
  return stsim_util_nearest (name, (const char *const *) names->pdata, names->len);
}

const StsimRegistryEntry *
stsim_registry_find (StsimRegistry *reg, StsimKind kind, const char *name, GError **error)
{
  const StsimRegistryEntry *e = stsim_registry_lookup (reg, kind, name), *other = NULL;
  g_autofree char *hint = NULL, *also = NULL;

  if (e)
    return e;
  for (guint k = 0; !other && k < STSIM_KIND_N_KINDS; k++)
    other = stsim_registry_lookup (reg, k, name);
  if (other) {
    const char *okind = stsim_kind_name (other->desc->kind);
    also = g_strdup_printf (" ('%s' is %s %s)", name, strchr ("aeiou", okind[0]) ? "an" : "a", okind);
  }
  hint = stsim_util_hint (stsim_registry_suggest (reg, kind, name));
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "no %s named '%s'%s%s", stsim_kind_name (kind), name, hint,
               also ? also : "");
  return NULL;
}

const StsimRegistryEntry *
stsim_registry_lookup_name (StsimRegistry *reg, const char *name, GError **error)
{
  const char *slash;
  const StsimRegistryEntry *found = NULL;
  g_autoptr(GString) kinds = g_string_new (NULL);
  guint n_found = 0;
  g_autofree char *hint = NULL;

  g_return_val_if_fail (reg != NULL && name != NULL, NULL);
  if ((slash = strchr (name, '/'))) {
    g_autofree char *kind_name = g_strndup (name, slash - name);
    StsimKind kind;
    if (!stsim_kind_from_name (kind_name, &kind)) {
      const char *kinds_list[STSIM_KIND_N_KINDS];
      for (guint k = 0; k < STSIM_KIND_N_KINDS; k++)
        kinds_list[k] = stsim_kind_name (k);
      g_autofree char *hint = stsim_util_did_you_mean (kind_name, kinds_list, STSIM_KIND_N_KINDS);
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "unknown kind '%s'%s", kind_name, hint);
      return NULL;
    }
    return stsim_registry_find (reg, kind, slash + 1, error);
  }
  for (guint k = 0; k < STSIM_KIND_N_KINDS; k++) {
    const StsimRegistryEntry *e = stsim_registry_lookup (reg, k, name);
    if (e) {
      found = e;
      g_string_append_printf (kinds, "%s%s/%s", n_found++ ? ", " : "", stsim_kind_name (k), name);
    }
  }
  if (n_found == 1)
    return found;
  if (n_found > 1) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "'%s' is ambiguous; say which: %s", name, kinds->str);
    return NULL;
  }
  hint = stsim_util_hint (stsim_registry_suggest (reg, STSIM_KIND_N_KINDS, name));
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "no component named '%s'%s", name, hint);
  return NULL;
}
