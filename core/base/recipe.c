/* recipe.c: INI recipes validated against parameter tables (stsim-recipe.h). */
#include "stsim/stsim-recipe.h"
#include "base/util.h"
#include "stsim-config.h"

#include <errno.h>
#include <string.h>

/* ---- core sections -------------------------------------------------------------- */

typedef struct {
  char                 *name;
  const StsimParamSpec *specs;
} CoreSection;

static const StsimParamSpec run_specs[] = {
  { "name", STSIM_PARAM_STRING, NULL, .blurb = "name of the run; default: the recipe file name without .ini" },
  { "seed", STSIM_PARAM_INT, "42", .min = 0, .max = 4294967295.0,
    .blurb = "seed of every random stream (dropout, masking, shuffling, initialisation)" },
  { "threads", STSIM_PARAM_INT, "0", .min = 0, .max = 4096, .blurb = "worker threads; 0 = all cores" },
  { "output", STSIM_PARAM_PATH, NULL, .blurb = "folder for resolved.ini, results and checkpoints; default: runs/<name>" },
  { NULL }
};

G_LOCK_DEFINE_STATIC (core_sections);
static GPtrArray *core_sections;  /* CoreSection*, [run] first */

static void
core_sections_init_locked (void)
{
  if (!core_sections) {
    CoreSection *run = g_new0 (CoreSection, 1);
    core_sections = g_ptr_array_new ();
    run->name = g_strdup ("run");
    run->specs = run_specs;
    g_ptr_array_add (core_sections, run);
  }
}

static const CoreSection *
core_section_lookup_locked (const char *name)
{
  core_sections_init_locked ();
  for (guint i = 0; i < core_sections->len; i++) {
    const CoreSection *c = g_ptr_array_index (core_sections, i);
    if (strcmp (c->name, name) == 0)
      return c;
  }
  return NULL;
}

gboolean
stsim_recipe_register_core_section (const char *name, const StsimParamSpec *specs, GError **error)
{
  g_autofree char *where = NULL;
  CoreSection *c;

  g_return_val_if_fail (name != NULL && specs != NULL, FALSE);
  if (!stsim_util_name_is_valid (name, "_") || stsim_kind_from_name (name, NULL)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "'%s' cannot name a core section", name);
    return FALSE;
  }
  where = g_strdup_printf ("core section [%s]", name);
  if (!stsim_param_specs_validate (specs, where, error))
    return FALSE;
  G_LOCK (core_sections);
  if (core_section_lookup_locked (name)) {
    G_UNLOCK (core_sections);
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "core section [%s] is already registered", name);
    return FALSE;
  }
  c = g_new0 (CoreSection, 1);
  c->name = g_strdup (name);
  c->specs = specs;
  g_ptr_array_add (core_sections, c);
  G_UNLOCK (core_sections);
  return TRUE;
}

/* A snapshot, so that loading a recipe does not hold the lock. */
static GPtrArray *
core_sections_snapshot (void)
{
  GPtrArray *a = g_ptr_array_new ();
  G_LOCK (core_sections);
  core_sections_init_locked ();
  for (guint i = 0; i < core_sections->len; i++)
    g_ptr_array_add (a, g_ptr_array_index (core_sections, i));
  G_UNLOCK (core_sections);
  return a;
}

/* ---- the recipe ------------------------------------------------------------------- */

typedef struct {
  StsimRecipeComponent pub;
  char                *label, *use;
  StsimParams         *params;
  gboolean             ok;       /* component found and values valid */
  int                  mark;     /* topological sort: 0 new, 1 visiting, 2 done */
} Section;

typedef struct {
  const CoreSection *core;
  StsimParams       *params;
  gboolean           present;
} CoreValues;

typedef struct {
  int   line;  /* for sorting; G_MAXINT when the error has no line */
  char *text;
} RecipeError;

static void
recipe_error_free (RecipeError *e)
{
  g_free (e->text);
  g_free (e);
}

struct _StsimRecipe {
  StsimRegistry *reg;
  char          *path, *dir, *data_dir;
  GPtrArray     *sections;  /* Section*, file order */
  GPtrArray     *ordered;   /* Section*, enabled, instantiation order */
  GPtrArray     *core;      /* CoreValues* */
  GPtrArray     *warnings;  /* char*, NULL-terminated when loaded */
  /* while loading */
  GPtrArray     *errors;    /* RecipeError* */
  GHashTable    *origin;    /* "section" or "section\037key" -> line (0: --set) */
};

static void
section_free (Section *s)
{
  g_free (s->label);
  g_free (s->use);
  stsim_params_free (s->params);
  g_free (s);
}

static void
core_values_free (CoreValues *c)
{
  stsim_params_free (c->params);
  g_free (c);
}

void
stsim_recipe_free (StsimRecipe *r)
{
  if (!r)
    return;
  g_free (r->path);
  g_free (r->dir);
  g_free (r->data_dir);
  g_ptr_array_unref (r->sections);
  g_ptr_array_unref (r->ordered);
  g_ptr_array_unref (r->core);
  g_ptr_array_unref (r->warnings);
  if (r->errors)
    g_ptr_array_unref (r->errors);
  if (r->origin)
    g_hash_table_unref (r->origin);
  g_free (r);
}

/* ---- locations and errors ------------------------------------------------------------ */

static char *
origin_key (const char *section, const char *key)
{
  return key ? g_strdup_printf ("%s\037%s", section, key) : g_strdup (section);
}

/* The line of @section (and @key); 0 when it came from --set, -1 when unknown. */
static int
origin_line (StsimRecipe *r, const char *section, const char *key)
{
  g_autofree char *k = origin_key (section, key);
  gpointer v;
  return g_hash_table_lookup_extended (r->origin, k, NULL, &v) ? GPOINTER_TO_INT (v) : -1;
}

static void
set_origin (StsimRecipe *r, const char *section, const char *key, int line)
{
  g_hash_table_replace (r->origin, origin_key (section, key), GINT_TO_POINTER (line));
}

static char *
vlocated (StsimRecipe *r, const char *section, const char *key, const char *fmt, va_list ap)
{
  int line = section ? origin_line (r, section, key) : -1;
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  GString *s = g_string_new (r->path);

  if (line > 0)
    g_string_append_printf (s, ":%d", line);
  g_string_append (s, ": ");
  if (section)
    g_string_append_printf (s, "[%s] ", section);
  g_string_append (s, msg);
  if (line == 0)
    g_string_append (s, " (from --set)");
  return g_string_free (s, FALSE);
}

/* Takes @text. Lines <= 0 (--set, none) sort after the file's lines. */
static void
add_error (StsimRecipe *r, int line, char *text)
{
  RecipeError *e = g_new0 (RecipeError, 1);
  e->line = line > 0 ? line : G_MAXINT;
  e->text = text;
  g_ptr_array_add (r->errors, e);
}

static int
compare_errors (gconstpointer a, gconstpointer b)
{
  const RecipeError *x = *(RecipeError *const *) a, *y = *(RecipeError *const *) b;
  return (x->line > y->line) - (x->line < y->line);
}

static void
recipe_error (StsimRecipe *r, const char *section, const char *key, const char *fmt, ...) G_GNUC_PRINTF (4, 5);

static void
recipe_error (StsimRecipe *r, const char *section, const char *key, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  add_error (r, section ? origin_line (r, section, key) : -1, vlocated (r, section, key, fmt, ap));
  va_end (ap);
}

static void
recipe_warning (StsimRecipe *r, const char *section, const char *key, const char *fmt, ...) G_GNUC_PRINTF (4, 5);

static void
recipe_warning (StsimRecipe *r, const char *section, const char *key, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_ptr_array_add (r->warnings, vlocated (r, section, key, fmt, ap));
  va_end (ap);
}

/* ---- text scan: sections, keys and their lines ------------------------------------------ */

typedef struct {
  char      *name;
  GPtrArray *keys;  /* char* */
} ScanSection;

static void
scan_section_free (ScanSection *s)
{
  g_free (s->name);
  g_ptr_array_unref (s->keys);
  g_free (s);
}

static ScanSection *
scan_find (GPtrArray *sections, const char *name)
{
  for (guint i = 0; i < sections->len; i++) {
    ScanSection *s = g_ptr_array_index (sections, i);
    if (strcmp (s->name, name) == 0)
      return s;
  }
  return NULL;
}

static ScanSection *
scan_add (GPtrArray *sections, const char *name)
{
  ScanSection *s = g_new0 (ScanSection, 1);
  s->name = g_strdup (name);
  s->keys = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (sections, s);
  return s;
}

/* GKeyFile has no line numbers: find them, and the problems GKeyFile would
 * hide (duplicate sections and keys) or report without a line. */
static gboolean
scan_text (StsimRecipe *r, const char *text, gsize length, GPtrArray *sections)
{
  gboolean fatal = FALSE;

  g_autofree char *copy = g_strndup (text, length);
  g_auto(GStrv) lines = g_strsplit (copy, "\n", -1);
  ScanSection *cur = NULL;

  for (int i = 0; lines[i]; i++) {
    int n = i + 1;
    char *l = g_strstrip (lines[i]);
    char *eq;
    if (*l == '\0' || *l == '#')
      continue;
    if (*l == '[') {
      int prev;
      if (l[strlen (l) - 1] != ']') {
        add_error (r, n, g_strdup_printf ("%s:%d: malformed section header '%s'", r->path, n, l));
        fatal = TRUE;
        cur = NULL;
        continue;
      }
      l[strlen (l) - 1] = '\0';
      l++;
      if ((prev = origin_line (r, l, NULL)) > 0) {
        add_error (r, n, g_strdup_printf ("%s:%d: section [%s] appears twice (first at line %d)",
                                                     r->path, n, l, prev));
        cur = scan_find (sections, l);
        continue;
      }
      set_origin (r, l, NULL, n);
      cur = scan_add (sections, l);
    } else if ((eq = strchr (l, '='))) {
      int prev;
      *eq = '\0';
      g_strstrip (l);
      if (!cur) {
        add_error (r, n, g_strdup_printf ("%s:%d: key '%s' is outside any section", r->path, n, l));
        fatal = TRUE;
        continue;
      }
      if ((prev = origin_line (r, cur->name, l)) > 0) {
        add_error (r, n, g_strdup_printf ("%s:%d: [%s] key '%s' appears twice (first at line %d)",
                                                     r->path, n, cur->name, l, prev));
        continue;
      }
      set_origin (r, cur->name, l, n);
      g_ptr_array_add (cur->keys, g_strdup (l));
    } else {
      add_error (r, n, g_strdup_printf ("%s:%d: '%s' is not a [section], a key = value line or a "
                                                   "# comment", r->path, n, l));
      fatal = TRUE;
    }
  }
  return !fatal;
}

/* ---- overrides ----------------------------------------------------------------------- */

static void
apply_overrides (StsimRecipe *r, GKeyFile *kf, const char *const *overrides, GPtrArray *sections)
{
  for (guint i = 0; overrides && overrides[i]; i++) {
    const char *o = overrides[i];
    const char *eq = strchr (o, '=');
    g_autofree char *lhs = eq ? g_strstrip (g_strndup (o, eq - o)) : NULL;
    char *dot = lhs ? strrchr (lhs, '.') : NULL;
    ScanSection *s;
    if (!dot || dot == lhs || dot[1] == '\0') {
      add_error (r, 0, g_strdup_printf ("--set '%s': expected SECTION.KEY=VALUE", o));
      continue;
    }
    *dot = '\0';
    if (!(s = scan_find (sections, lhs))) {
      s = scan_add (sections, lhs);
      set_origin (r, lhs, NULL, 0);
    }
    if (origin_line (r, lhs, dot + 1) < 0)
      g_ptr_array_add (s->keys, g_strdup (dot + 1));
    set_origin (r, lhs, dot + 1, 0);
    {
      g_autofree char *value = g_strstrip (g_strdup (eq + 1));
      g_key_file_set_value (kf, lhs, dot + 1, value);
    }
  }
}

/* ---- sections ------------------------------------------------------------------------- */

static const StsimParamSpec enabled_spec = { "enabled", STSIM_PARAM_BOOL, "true", .blurb = "instantiate it" };
static const StsimParamSpec weight_spec = { "weight", STSIM_PARAM_DOUBLE, "1", .min = 0, .max = 1e6,
                                            .blurb = "weight of this loss term" };

/* Sets every key of @s except @skip into @params; FALSE if any failed. */
static gboolean
set_keys (StsimRecipe *r, GKeyFile *kf, ScanSection *s, StsimParams *params, const char *const *skip,
          const char *what)
{
  const StsimParamSpec *specs = stsim_params_get_specs (params);
  gboolean ok = TRUE;

  for (guint i = 0; i < s->keys->len; i++) {
    const char *key = g_ptr_array_index (s->keys, i);
    const StsimParamSpec *spec;
    g_autofree char *value = NULL;
    g_autoptr(GError) e = NULL;

    if (skip && g_strv_contains (skip, key))
      continue;
    if (!(spec = stsim_param_specs_lookup (specs, key))) {
      g_autoptr(GPtrArray) names = g_ptr_array_new ();
      for (const StsimParamSpec *p = specs; p && p->name; p++)
        g_ptr_array_add (names, (gpointer) p->name);
      for (guint j = 0; skip && skip[j]; j++)
        g_ptr_array_add (names, (gpointer) skip[j]);
      g_autofree char *hint = stsim_util_did_you_mean (key, (const char *const *) names->pdata, names->len);
      recipe_error (r, s->name, key, "unknown key '%s' for %s%s%s", key, what, hint,
                    strcmp (key, "weight") == 0 ? " ('weight' applies to objectives only)" : "");
      ok = FALSE;
      continue;
    }
    if (!(value = g_key_file_get_string (kf, s->name, key, &e)) || !stsim_params_set (params, key, value, &e)) {
      recipe_error (r, s->name, key, "%s", e->message);
      ok = FALSE;
      continue;
    }
    if (spec->flags & STSIM_PARAM_DEPRECATED)
      recipe_warning (r, s->name, key, "parameter '%s' is deprecated: %s", key, spec->blurb);
  }
  /* Required keys, each named at the section header. */
  for (const StsimParamSpec *p = specs; p && p->name; p++)
    if ((p->flags & STSIM_PARAM_REQUIRED) && !stsim_params_is_set (params, p->name)) {
      recipe_error (r, s->name, NULL, "missing required key '%s' (%s: %s)", p->name,
                    stsim_param_type_name (p->type), p->blurb);
      ok = FALSE;
    }
  return ok;
}

static gboolean
get_core_key (StsimRecipe *r, GKeyFile *kf, ScanSection *s, const StsimParamSpec *spec, StsimParams *into)
{
  g_autofree char *value = NULL;
  g_autoptr(GError) e = NULL;

  if (origin_line (r, s->name, spec->name) < 0)
    return stsim_params_set (into, spec->name, spec->default_value, NULL);
  if (!(value = g_key_file_get_string (kf, s->name, spec->name, &e)) ||
      !stsim_params_set (into, spec->name, value, &e)) {
    recipe_error (r, s->name, spec->name, "%s", e->message);
    return FALSE;
  }
  return TRUE;
}

static void
load_component (StsimRecipe *r, GKeyFile *kf, ScanSection *s, StsimKind kind)
{
  static const char *const core_keys[] = { "use", "enabled", NULL };
  static const char *const core_keys_objective[] = { "use", "enabled", "weight", NULL };
  const char *kind_name = stsim_kind_name (kind);
  Section *sec = g_new0 (Section, 1);
  g_autoptr(StsimParams) core = NULL;
  g_autoptr(GError) e = NULL;
  StsimParamSpec core_specs[3] = { enabled_spec, weight_spec, { NULL } };

  sec->label = g_strdup (s->name);
  sec->pub.label = sec->label;
  sec->pub.kind = kind;
  sec->pub.line = MAX (origin_line (r, s->name, NULL), 0);
  sec->pub.weight = 1;
  sec->pub.enabled = TRUE;
  g_ptr_array_add (r->sections, sec);

  core = stsim_params_new (core_specs);
  if (get_core_key (r, kf, s, &enabled_spec, core))
    sec->pub.enabled = stsim_params_get_bool (core, "enabled");
  if (kind == STSIM_KIND_OBJECTIVE && get_core_key (r, kf, s, &weight_spec, core))
    sec->pub.weight = stsim_params_get_double (core, "weight");

  if (origin_line (r, s->name, "use") < 0) {
    recipe_error (r, s->name, NULL, "has no 'use = NAME' naming the %s (see stsim-inspect --kind %s)", kind_name,
                  kind_name);
    return;
  }
  sec->use = g_strstrip (g_key_file_get_string (kf, s->name, "use", NULL));
  sec->pub.use = sec->use;
  if (!(sec->pub.entry = stsim_registry_find (r->reg, kind, sec->use, &e))) {
    recipe_error (r, s->name, "use", "%s (stsim-inspect --kind %s lists them)", e->message, kind_name);
    return;
  }
  sec->params = stsim_params_new (sec->pub.entry->desc->params);
  stsim_params_set_path_vars (sec->params, r->data_dir, r->dir);
  g_autofree char *what = g_strdup_printf ("%s '%s'", kind_name, sec->use);
  sec->ok = set_keys (r, kf, s, sec->params, kind == STSIM_KIND_OBJECTIVE ? core_keys_objective : core_keys, what);
  if (sec->ok) {
    if (!stsim_params_finish (sec->params, &e)) {
      recipe_error (r, s->name, NULL, "%s", e->message);
      sec->ok = FALSE;
    }
  }
  sec->pub.params = sec->params;
}

static void
load_core (StsimRecipe *r, GKeyFile *kf, ScanSection *s, CoreValues *cv)
{
  g_autofree char *what = g_strdup_printf ("[%s]", cv->core->name);
  cv->present = TRUE;
  set_keys (r, kf, s, cv->params, NULL, what);
}

/* [run] defaults that depend on the file name. */
static void
finish_run (StsimRecipe *r, CoreValues *cv)
{
  g_autoptr(GError) e = NULL;
  StsimParams *p = cv->params;

  if (!stsim_params_is_set (p, "name")) {
    g_autofree char *base = g_path_get_basename (r->path);
    if (g_str_has_suffix (base, ".ini"))
      base[strlen (base) - 4] = '\0';
    stsim_params_set (p, "name", base, NULL);
  } else if (stsim_params_get_string (p, "name")[0] == '\0') {
    recipe_error (r, "run", "name", "name: the run name is empty");
    stsim_params_set (p, "name", "run", NULL);
  }
  if (!stsim_params_is_set (p, "output")) {
    g_autofree char *out = g_build_filename ("runs", stsim_params_get_string (p, "name"), NULL);
    if (!stsim_params_set (p, "output", out, &e))
      recipe_error (r, "run", "name", "%s", e->message);
  }
}

/* ---- references and order ------------------------------------------------------------- */

static Section *
find_section (StsimRecipe *r, const char *label)
{
  for (guint i = 0; i < r->sections->len; i++) {
    Section *s = g_ptr_array_index (r->sections, i);
    if (strcmp (s->label, label) == 0)
      return s;
  }
  return NULL;
}

static void
check_refs (StsimRecipe *r)
{
  g_autoptr(GPtrArray) labels = g_ptr_array_new ();

  for (guint i = 0; i < r->sections->len; i++)
    g_ptr_array_add (labels, ((Section *) g_ptr_array_index (r->sections, i))->label);
  for (guint i = 0; i < r->sections->len; i++) {
    Section *s = g_ptr_array_index (r->sections, i);
    if (!s->ok)
      continue;
    for (const StsimParamSpec *p = stsim_params_get_specs (s->params); p && p->name; p++) {
      const char *const *refs;
      if (p->type != STSIM_PARAM_REFS || !(refs = stsim_params_get_refs (s->params, p->name, NULL)))
        continue;
      for (guint j = 0; refs[j]; j++) {
        Section *t = find_section (r, refs[j]);
        if (!t) {
          g_autofree char *hint = stsim_util_did_you_mean (refs[j], (const char *const *) labels->pdata, labels->len);
          recipe_error (r, s->label, p->name, "%s: '%s' is not a section of this recipe%s", p->name, refs[j], hint);
          s->ok = FALSE;
        } else if (t == s) {
          recipe_error (r, s->label, p->name, "%s: a section cannot refer to itself", p->name);
          s->ok = FALSE;
        } else if (s->pub.enabled && !t->pub.enabled) {
          recipe_error (r, s->label, p->name, "%s: '%s' is disabled (enabled = false)", p->name, refs[j]);
          s->ok = FALSE;
        }
      }
    }
  }
}

static gboolean
visit (StsimRecipe *r, Section *s, GPtrArray *path)
{
  if (s->mark == 2)
    return TRUE;
  if (s->mark == 1) {
    GString *cycle = g_string_new (NULL);
    guint start = 0;
    while (start < path->len && g_ptr_array_index (path, start) != s)
      start++;
    for (guint i = start; i < path->len; i++)
      g_string_append_printf (cycle, "%s -> ", ((Section *) g_ptr_array_index (path, i))->label);
    g_string_append (cycle, s->label);
    recipe_error (r, s->label, NULL, "reference cycle: %s", cycle->str);
    g_string_free (cycle, TRUE);
    return FALSE;
  }
  s->mark = 1;
  g_ptr_array_add (path, s);
  for (const StsimParamSpec *p = stsim_params_get_specs (s->params); p && p->name; p++) {
    const char *const *refs;
    if (p->type != STSIM_PARAM_REFS || !(refs = stsim_params_get_refs (s->params, p->name, NULL)))
      continue;
    for (guint j = 0; refs[j]; j++) {
      Section *t = find_section (r, refs[j]);
      if (t && t->ok && !visit (r, t, path))
        return FALSE;
    }
  }
  g_ptr_array_remove_index (path, path->len - 1);
  s->mark = 2;
  g_ptr_array_add (r->ordered, s);
  return TRUE;
}

static void
order_sections (StsimRecipe *r)
{
  g_autoptr(GPtrArray) path = g_ptr_array_new ();
  for (guint i = 0; i < r->sections->len; i++) {
    Section *s = g_ptr_array_index (r->sections, i);
    if (s->ok && s->pub.enabled && !visit (r, s, path))
      return;
  }
}

/* ---- loading ---------------------------------------------------------------------------- */

StsimRecipe *
stsim_recipe_load_data (StsimRegistry *reg, const char *text, gssize length, const char *path,
                        const char *const *overrides, const char *data_dir, GError **error)
{
  g_autoptr(StsimRecipe) r = g_new0 (StsimRecipe, 1);
  g_autoptr(GPtrArray) scanned = g_ptr_array_new_with_free_func ((GDestroyNotify) scan_section_free);
  g_autoptr(GPtrArray) cores = core_sections_snapshot ();
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) e = NULL;
  gsize len;
  gboolean parsed;

  g_return_val_if_fail (reg != NULL && text != NULL && path != NULL, NULL);
  len = length < 0 ? strlen (text) : (gsize) length;
  r->reg = reg;
  r->path = g_strdup (path);
  {
    g_autofree char *abs = g_canonicalize_filename (path, NULL);
    r->dir = g_path_get_dirname (abs);
  }
  r->data_dir = stsim_data_dir_resolve (data_dir);
  r->sections = g_ptr_array_new_with_free_func ((GDestroyNotify) section_free);
  r->ordered = g_ptr_array_new ();
  r->core = g_ptr_array_new_with_free_func ((GDestroyNotify) core_values_free);
  r->warnings = g_ptr_array_new_with_free_func (g_free);
  r->errors = g_ptr_array_new_with_free_func ((GDestroyNotify) recipe_error_free);
  r->origin = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  if (!g_utf8_validate (text, len, NULL)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_ENCODING, "%s: not valid UTF-8", path);
    return NULL;
  }
  parsed = scan_text (r, text, len, scanned);
  if (parsed && !g_key_file_load_from_data (kf, text, len, G_KEY_FILE_NONE, &e)) {
    add_error (r, 0, g_strdup_printf ("%s: %s", path, e->message));
    g_clear_error (&e);
    parsed = FALSE;
  }
  if (parsed)
    apply_overrides (r, kf, overrides, scanned);

  for (guint i = 0; i < cores->len; i++) {
    CoreValues *cv = g_new0 (CoreValues, 1);
    cv->core = g_ptr_array_index (cores, i);
    cv->params = stsim_params_new (cv->core->specs);
    stsim_params_set_path_vars (cv->params, r->data_dir, r->dir);
    g_ptr_array_add (r->core, cv);
  }

  for (guint i = 0; parsed && i < scanned->len; i++) {
    ScanSection *s = g_ptr_array_index (scanned, i);
    const char *dot = strchr (s->name, '.');
    g_autofree char *kind_name = dot ? g_strndup (s->name, dot - s->name) : g_strdup (s->name);
    StsimKind kind;
    CoreValues *cv = NULL;

    for (guint j = 0; j < r->core->len; j++)
      if (strcmp (((CoreValues *) g_ptr_array_index (r->core, j))->core->name, kind_name) == 0)
        cv = g_ptr_array_index (r->core, j);
    if (cv && !dot) {
      load_core (r, kf, s, cv);
    } else if (cv) {
      recipe_error (r, s->name, NULL, "core section [%s] takes no label", kind_name);
    } else if (stsim_kind_from_name (kind_name, &kind)) {
      if (dot && !stsim_util_label_is_valid (s->name, NULL)) {
        recipe_error (r, s->name, NULL, "invalid label '%s' (labels are [a-z0-9][a-z0-9_-]*)", dot + 1);
        continue;
      }
      load_component (r, kf, s, kind);
    } else {
      g_autoptr(GPtrArray) names = g_ptr_array_new ();
      g_autoptr(GString) all = g_string_new (NULL);
      for (guint k = 0; k < STSIM_KIND_N_KINDS; k++)
        g_ptr_array_add (names, (gpointer) stsim_kind_name (k));
      for (guint j = 0; j < r->core->len; j++)
        g_ptr_array_add (names, ((CoreValues *) g_ptr_array_index (r->core, j))->core->name);
      for (guint j = 0; j < names->len; j++)
        g_string_append_printf (all, "%s%s", j ? ", " : "", (char *) g_ptr_array_index (names, j));
      g_autofree char *hint = stsim_util_did_you_mean (kind_name, (const char *const *) names->pdata, names->len);
      recipe_error (r, s->name, NULL, "unknown section kind '%s'%s; sections are [KIND] or [KIND.LABEL] with KIND "
                    "one of %s", kind_name, hint, all->str);
    }
  }

  for (guint j = 0; j < r->core->len; j++) {
    CoreValues *cv = g_ptr_array_index (r->core, j);
    if (j == 0)
      finish_run (r, cv);
    if (!stsim_params_finish (cv->params, &e)) {
      recipe_error (r, cv->core->name, NULL, "%s", e->message);
      g_clear_error (&e);
    }
  }
  check_refs (r);
  if (r->errors->len == 0)
    order_sections (r);

  if (r->errors->len) {
    GString *msg = g_string_new (NULL);
    g_ptr_array_sort (r->errors, compare_errors);  /* stable: by line, then in the order found */
    for (guint i = 0; i < r->errors->len; i++)
      g_string_append_printf (msg, "%s%s", i ? "\n" : "", ((RecipeError *) g_ptr_array_index (r->errors, i))->text);
    g_set_error_literal (error, STSIM_ERROR, STSIM_ERROR_RECIPE, msg->str);
    g_string_free (msg, TRUE);
    return NULL;
  }
  g_ptr_array_add (r->warnings, NULL);
  g_clear_pointer (&r->errors, g_ptr_array_unref);
  g_clear_pointer (&r->origin, g_hash_table_unref);
  return g_steal_pointer (&r);
}

StsimRecipe *
stsim_recipe_load (StsimRegistry *reg, const char *path, const char *const *overrides, const char *data_dir,
                   GError **error)
{
  g_autofree char *text = NULL;
  gsize len;
  g_autoptr(GError) e = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  if (!g_file_get_contents (path, &text, &len, &e)) {
    g_set_error (error, STSIM_ERROR, g_error_matches (e, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? STSIM_ERROR_NOT_FOUND
                                                                                             : STSIM_ERROR_IO,
                 "cannot read recipe: %s", e->message);
    return NULL;
  }
  return stsim_recipe_load_data (reg, text, len, path, overrides, data_dir, error);
}

/* ---- accessors ----------------------------------------------------------------------------- */

const char *stsim_recipe_get_path (const StsimRecipe *r) { return r->path; }
const char *stsim_recipe_get_data_dir (const StsimRecipe *r) { return r->data_dir; }

const StsimParams *
stsim_recipe_get_core (const StsimRecipe *r, const char *section)
{
  for (guint i = 0; i < r->core->len; i++) {
    const CoreValues *cv = g_ptr_array_index (r->core, i);
    if (strcmp (cv->core->name, section) == 0)
      return cv->params;
  }
  return NULL;
}

#define RUN(r) (((const CoreValues *) g_ptr_array_index ((r)->core, 0))->params)

const char *stsim_recipe_get_name (const StsimRecipe *r) { return stsim_params_get_string (RUN (r), "name"); }
const char *stsim_recipe_get_output (const StsimRecipe *r) { return stsim_params_get_string (RUN (r), "output"); }
guint64 stsim_recipe_get_seed (const StsimRecipe *r) { return (guint64) stsim_params_get_int (RUN (r), "seed"); }
int stsim_recipe_get_threads (const StsimRecipe *r) { return (int) stsim_params_get_int (RUN (r), "threads"); }

const char *const *
stsim_recipe_get_warnings (const StsimRecipe *r)
{
  return (const char *const *) r->warnings->pdata;
}

guint
stsim_recipe_get_n_components (const StsimRecipe *r)
{
  return r->sections->len;
}

const StsimRecipeComponent *
stsim_recipe_get_component (const StsimRecipe *r, guint i)
{
  g_return_val_if_fail (i < r->sections->len, NULL);
  return &((Section *) g_ptr_array_index (r->sections, i))->pub;
}

const StsimRecipeComponent *
stsim_recipe_lookup_component (const StsimRecipe *r, const char *label)
{
  Section *s = find_section ((StsimRecipe *) r, label);
  return s ? &s->pub : NULL;
}

guint
stsim_recipe_get_n_ordered (const StsimRecipe *r)
{
  return r->ordered->len;
}

const StsimRecipeComponent *
stsim_recipe_get_ordered (const StsimRecipe *r, guint i)
{
  g_return_val_if_fail (i < r->ordered->len, NULL);
  return &((Section *) g_ptr_array_index (r->ordered, i))->pub;
}

guint
stsim_recipe_count_kind (const StsimRecipe *r, StsimKind kind)
{
  guint n = 0;
  for (guint i = 0; i < r->ordered->len; i++)
    n += ((Section *) g_ptr_array_index (r->ordered, i))->pub.kind == kind;
  return n;
}

/* ---- running ------------------------------------------------------------------------------- */

StsimContext *
stsim_recipe_new_context (const StsimRecipe *r)
{
  return stsim_context_new (r->data_dir, stsim_recipe_get_seed (r), stsim_recipe_get_threads (r));
}

gboolean
stsim_recipe_instantiate (const StsimRecipe *r, StsimContext *ctx, GError **error)
{
  for (guint i = 0; i < r->ordered->len; i++) {
    const Section *s = g_ptr_array_index (r->ordered, i);
    StsimComponent *c = stsim_component_new (s->pub.entry->desc, s->label, stsim_params_copy (s->params), ctx,
                                             error);
    if (!c || !stsim_context_add (ctx, c, error)) {
      g_prefix_error (error, "%s:%d: ", r->path, s->pub.line);
      return FALSE;
    }
  }
  return TRUE;
}

/* ---- resolved text ---------------------------------------------------------------------------- */

/* GKeyFile's escapes, so that g_key_file_get_string() gives @v back. */
static void
append_value (GString *out, const char *v)
{
  gsize len = strlen (v);
  for (gsize i = 0; i < len; i++) {
    char c = v[i];
    if (c == ' ' && (i == 0 || i == len - 1))
      g_string_append (out, "\\s");
    else if (c == '\\')
      g_string_append (out, "\\\\");
    else if (c == '\n')
      g_string_append (out, "\\n");
    else if (c == '\t')
      g_string_append (out, "\\t");
    else if (c == '\r')
      g_string_append (out, "\\r");
    else
      g_string_append_c (out, c);
  }
}

static void
append_params (GString *out, const StsimParams *params)
{
  for (const StsimParamSpec *p = stsim_params_get_specs (params); p && p->name; p++) {
    g_autofree char *v = stsim_params_to_string (params, p->name);
    if (!v)
      continue;
    g_string_append_printf (out, "%s = ", p->name);
    append_value (out, v);
    g_string_append_c (out, '\n');
  }
}

char *
stsim_recipe_to_string (const StsimRecipe *r)
{
  GString *out = g_string_new (NULL);
  g_autoptr(GPtrArray) plugins = g_ptr_array_new ();

  g_string_append_printf (out, "# Resolved recipe: every value explicit. Written by stsim %s.\n", STSIM_VERSION);
  for (guint i = 0; i < r->sections->len; i++) {
    const Section *s = g_ptr_array_index (r->sections, i);
    if (!g_ptr_array_find (plugins, s->pub.entry, NULL)) {
      gboolean dup = FALSE;
      for (guint j = 0; j < plugins->len; j++)
        dup |= ((const StsimRegistryEntry *) g_ptr_array_index (plugins, j))->plugin == s->pub.entry->plugin;
      if (!dup)
        g_ptr_array_add (plugins, (gpointer) s->pub.entry);
    }
  }
  for (guint i = 0; i < plugins->len; i++) {
    const StsimRegistryEntry *e = g_ptr_array_index (plugins, i);
    g_string_append_printf (out, "# plugin %s %s (%s)\n", e->plugin->name, e->plugin->version, e->file);
  }
  for (guint i = 0; i < r->core->len; i++) {
    const CoreValues *cv = g_ptr_array_index (r->core, i);
    if (i > 0 && !cv->present)
      continue;
    g_string_append_printf (out, "\n[%s]\n", cv->core->name);
    append_params (out, cv->params);
  }
  for (guint i = 0; i < r->sections->len; i++) {
    const Section *s = g_ptr_array_index (r->sections, i);
    g_string_append_printf (out, "\n[%s]\nuse = %s\nenabled = %s\n", s->label, s->use,
                            s->pub.enabled ? "true" : "false");
    if (s->pub.kind == STSIM_KIND_OBJECTIVE) {
      g_autofree char *w = stsim_util_format_double (s->pub.weight);
      g_string_append_printf (out, "weight = %s\n", w);
    }
    append_params (out, s->params);
  }
  return g_string_free (out, FALSE);
}

gboolean
stsim_recipe_write_resolved (const StsimRecipe *r, const char *dir, GError **error)
{
  g_autofree char *text = stsim_recipe_to_string (r);
  g_autofree char *path = g_build_filename (dir, "resolved.ini", NULL);
  g_autoptr(GError) e = NULL;

  if (g_mkdir_with_parents (dir, 0755) != 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot create %s: %s", dir, g_strerror (errno));
    return FALSE;
  }
  if (!g_file_set_contents (path, text, -1, &e)) {  /* temp file + rename: atomic */
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot write %s: %s", path, e->message);
    return FALSE;
  }
  return TRUE;
}
