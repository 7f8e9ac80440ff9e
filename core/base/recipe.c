/* recipe.c: INI recipes validated against parameter tables (stsim-recipe.h). */
#include "stsim/stsim-recipe.h"
#include "base/util.h"
#include "train/train-config.h"
#include "stsim-config.h"

#include <errno.h>
#include <string.h>
#include "io/bounded.h"

/* ---- core sections -------------------------------------------------------------- */

typedef struct {
  char                 *name;
  const StsimParamSpec *specs;
} CoreSection;

static const StsimParamSpec run_specs[] = {
  { "name", STSIM_PARAM_STRING, NULL,
    .blurb = "name of the run; default: the recipe file name without .ini (never taken from an included file)" },
  { "seed", STSIM_PARAM_INT, "42", .min = 0, .max = 4294967295.0,
    .blurb = "seed of every random stream (dropout, masking, shuffling, initialisation)" },
  { "threads", STSIM_PARAM_INT, "0", .min = 0, .max = 4096, .blurb = "worker threads; 0 = all cores" },
  { "output", STSIM_PARAM_PATH, NULL,
    .blurb = "folder for resolved.ini, results and checkpoints; default: runs/<name>, plus -<8 hex> when --set "
             "values were given (a hash of them)" },
  /* Read while merging, never stored: listed so that stsim-inspect shows it. */
  { "include", STSIM_PARAM_PATH, NULL,
    .blurb = "recipes read before this one, comma-separated, relative to this file's folder" },
  { NULL }
};
#define RUN_INCLUDE_SPEC (&run_specs[G_N_ELEMENTS (run_specs) - 2])

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
    /* The core sections libstsim itself reads, given here rather than
     * registered from a constructor. */
    CoreSection *train = g_new0 (CoreSection, 1);
    train->name = g_strdup ("train");
    train->specs = stsim_train_config_get_specs ();
    g_ptr_array_add (core_sections, train);
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

char **
stsim_recipe_list_core_sections (void)
{
  GPtrArray *names = g_ptr_array_new ();
  G_LOCK (core_sections);
  core_sections_init_locked ();
  for (guint i = 0; i < core_sections->len; i++)
    g_ptr_array_add (names, g_strdup (((CoreSection *) g_ptr_array_index (core_sections, i))->name));
  G_UNLOCK (core_sections);
  g_ptr_array_add (names, NULL);
  return (char **) g_ptr_array_free (names, FALSE);
}

const StsimParamSpec *
stsim_recipe_lookup_core_section (const char *name)
{
  const CoreSection *c;
  g_return_val_if_fail (name != NULL, NULL);
  G_LOCK (core_sections);
  c = core_section_lookup_locked (name);
  G_UNLOCK (core_sections);
  return c ? c->specs : NULL;
}

/* Checks across sections (stsim_recipe_register_check), in the order registered. */
G_LOCK_DEFINE_STATIC (checks);
static GArray *checks;  /* StsimRecipeCheckFunc */

void
stsim_recipe_register_check (StsimRecipeCheckFunc check)
{
  g_return_if_fail (check != NULL);
  G_LOCK (checks);
  if (!checks)
    checks = g_array_new (FALSE, FALSE, sizeof (StsimRecipeCheckFunc));
  for (guint i = 0; i < checks->len; i++)
    if (g_array_index (checks, StsimRecipeCheckFunc, i) == check) {
      G_UNLOCK (checks);
      return;
    }
  g_array_append_val (checks, check);
  G_UNLOCK (checks);
}

static GArray *
checks_snapshot (void)
{
  GArray *a = g_array_new (FALSE, FALSE, sizeof (StsimRecipeCheckFunc));
  G_LOCK (checks);
  if (checks)
    g_array_append_vals (a, checks->data, checks->len);
  G_UNLOCK (checks);
  return a;
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
  int   file;  /* index into StsimRecipe.files; G_MAXINT when the error has no place */
  int   line;  /* for sorting; G_MAXINT when the error has no line */
  char *text;
} RecipeError;

static void
recipe_error_free (RecipeError *e)
{
  g_free (e->text);
  g_free (e);
}

/* A file read into the recipe: the recipe itself (index 0) or an include. */
typedef struct {
  char *display;  /* as messages name it: the include path joined to the including file's folder */
  char *canon;    /* absolute, to recognise the same file and cycles */
  char *dir;      /* absolute folder: what ${recipe_dir} means in the values it writes */
} RecipeFile;

static void
recipe_file_free (RecipeFile *f)
{
  g_free (f->display);
  g_free (f->canon);
  g_free (f->dir);
  g_free (f);
}

/* Where a section header or a key was written. */
typedef struct {
  int file;  /* index into StsimRecipe.files */
  int line;  /* 0: --set */
} Origin;

/* How deep includes may nest (the recipe itself is depth 0). */
#define MAX_INCLUDE_DEPTH 8

struct _StsimRecipe {
  StsimRegistry *reg;
  char          *path, *dir, *data_dir;
  GPtrArray     *sections;  /* Section*, file order */
  GPtrArray     *ordered;   /* Section*, enabled, instantiation order */
  GPtrArray     *core;      /* CoreValues* */
  GPtrArray     *warnings;  /* char*, NULL-terminated when loaded */
  GPtrArray     *files;     /* RecipeFile*, in the order first read; [0] is the recipe */
  GPtrArray     *merged;    /* const char* (display names), in merge order, NULL-terminated when loaded */
  char          *provenance; /* a "# Merged from ..." line carried over from a flattened recipe */
  char          *set_hash;   /* 8 hex digits naming the --set values; NULL without any */
  gboolean       output_default; /* [run] output was derived, not given */
  /* while loading */
  GPtrArray     *errors;    /* RecipeError* */
  GHashTable    *origin;    /* "section" or "section\037key" -> Origin* (line 0: --set) */
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
  g_ptr_array_unref (r->files);
  g_ptr_array_unref (r->merged);
  g_free (r->provenance);
  g_free (r->set_hash);
  if (r->errors)
    g_ptr_array_unref (r->errors);
  if (r->origin)
    g_hash_table_unref (r->origin);
  g_free (r);
}

/* ---- locations and errors ------------------------------------------------------------ */

#define RECIPE_FILE(r, i) ((RecipeFile *) g_ptr_array_index ((r)->files, (i)))

static char *
origin_key (const char *section, const char *key)
{
  return key ? g_strdup_printf ("%s\037%s", section, key) : g_strdup (section);
}

/* Where @section (and @key) was last written; NULL when nowhere. */
static const Origin *
origin_get (StsimRecipe *r, const char *section, const char *key)
{
  g_autofree char *k = origin_key (section, key);
  return g_hash_table_lookup (r->origin, k);
}

/* The line of @section (and @key); 0 when it came from --set, -1 when unknown. */
static int
origin_line (StsimRecipe *r, const char *section, const char *key)
{
  const Origin *o = origin_get (r, section, key);
  return o ? o->line : -1;
}

/* The folder ${recipe_dir} means in the value of @key: that of the file that wrote it. */
static const char *
origin_dir (StsimRecipe *r, const char *section, const char *key)
{
  const Origin *o = origin_get (r, section, key);
  return o ? RECIPE_FILE (r, o->file)->dir : r->dir;
}

static void
set_origin (StsimRecipe *r, const char *section, const char *key, int file, int line)
{
  Origin *o = g_new (Origin, 1);
  o->file = file;
  o->line = line;
  g_hash_table_replace (r->origin, origin_key (section, key), o);
}

static char *
vlocated (StsimRecipe *r, const char *section, const char *key, const char *fmt, va_list ap)
{
  const Origin *o = section ? origin_get (r, section, key) : NULL;
  int line = o ? o->line : -1;
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  GString *s = g_string_new (line > 0 ? RECIPE_FILE (r, o->file)->display : r->path);

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
add_error (StsimRecipe *r, int file, int line, char *text)
{
  RecipeError *e = g_new0 (RecipeError, 1);
  e->file = line > 0 ? file : G_MAXINT;
  e->line = line > 0 ? line : G_MAXINT;
  e->text = text;
  g_ptr_array_add (r->errors, e);
}

/* By file (in the order first read: the recipe, then its includes), then line. */
static int
compare_errors (gconstpointer a, gconstpointer b)
{
  const RecipeError *x = *(RecipeError *const *) a, *y = *(RecipeError *const *) b;
  if (x->file != y->file)
    return (x->file > y->file) - (x->file < y->file);
  return (x->line > y->line) - (x->line < y->line);
}

static void
recipe_error (StsimRecipe *r, const char *section, const char *key, const char *fmt, ...) G_GNUC_PRINTF (4, 5);

static void
recipe_error (StsimRecipe *r, const char *section, const char *key, const char *fmt, ...)
{
  va_list ap;
  const Origin *o = section ? origin_get (r, section, key) : NULL;
  va_start (ap, fmt);
  add_error (r, o ? o->file : 0, o ? o->line : -1, vlocated (r, section, key, fmt, ap));
  va_end (ap);
}

/* An error at @line of file @file, in @section, before the merged recipe exists. */
static void
file_error (StsimRecipe *r, int file, int line, const char *section, const char *fmt, ...) G_GNUC_PRINTF (5, 6);

static void
file_error (StsimRecipe *r, int file, int line, const char *section, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;
  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  add_error (r, file, line, g_strdup_printf ("%s:%d: [%s] %s", RECIPE_FILE (r, file)->display, line, section, msg));
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

void
stsim_recipe_check_error (StsimRecipe *r, const char *section, const char *key, const char *fmt, ...)
{
  va_list ap;
  const Origin *o;
  g_return_if_fail (r != NULL && r->errors != NULL && r->origin != NULL);  /* only while loading */
  o = section ? origin_get (r, section, key) : NULL;
  va_start (ap, fmt);
  add_error (r, o ? o->file : 0, o ? o->line : -1, vlocated (r, section, key, fmt, ap));
  va_end (ap);
}

void
stsim_recipe_check_warning (StsimRecipe *r, const char *section, const char *key, const char *fmt, ...)
{
  va_list ap;
  g_return_if_fail (r != NULL && r->origin != NULL);  /* only while loading */
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

/* The line of @section (and @key) in one file's @lines; 0 when absent. */
static int
scan_line (GHashTable *lines, const char *section, const char *key)
{
  g_autofree char *k = origin_key (section, key);
  return GPOINTER_TO_INT (g_hash_table_lookup (lines, k));
}

/* The line that stsim_recipe_to_string() writes to say which files were merged. */
#define MERGED_PREFIX "# Merged from "

/* GKeyFile has no line numbers: find them (into @lines, origin_key -> line), and the
 * problems GKeyFile would hide (duplicate sections and keys) or report without a line,
 * in one file, @file. */
static gboolean
scan_text (StsimRecipe *r, int file, const char *text, gsize length, GPtrArray *sections, GHashTable *lines)
{
  const char *path = RECIPE_FILE (r, file)->display;
  gboolean fatal = FALSE;

  g_autofree char *copy = g_strndup (text, length);
  g_auto(GStrv) split = g_strsplit (copy, "\n", -1);
  ScanSection *cur = NULL;

  for (int i = 0; split[i]; i++) {
    int n = i + 1;
    char *l = g_strstrip (split[i]);
    char *eq;
    if (*l == '#') {
      /* A flattened recipe keeps saying which files it was merged from. */
      if (file == 0 && !cur && !r->provenance && g_str_has_prefix (l, MERGED_PREFIX))
        r->provenance = g_strdup (l);
      continue;
    }
    if (*l == '\0')
      continue;
    if (*l == '[') {
      int prev;
      if (l[strlen (l) - 1] != ']') {
        add_error (r, file, n, g_strdup_printf ("%s:%d: malformed section header '%s'", path, n, l));
        fatal = TRUE;
        cur = NULL;
        continue;
      }
      l[strlen (l) - 1] = '\0';
      l++;
      if ((prev = scan_line (lines, l, NULL)) > 0) {
        add_error (r, file, n, g_strdup_printf ("%s:%d: section [%s] appears twice (first at line %d)",
                                                 path, n, l, prev));
        cur = scan_find (sections, l);
        continue;
      }
      g_hash_table_replace (lines, origin_key (l, NULL), GINT_TO_POINTER (n));
      cur = scan_add (sections, l);
    } else if ((eq = strchr (l, '='))) {
      int prev;
      *eq = '\0';
      g_strstrip (l);
      if (!cur) {
        add_error (r, file, n, g_strdup_printf ("%s:%d: key '%s' is outside any section", path, n, l));
        fatal = TRUE;
        continue;
      }
      if ((prev = scan_line (lines, cur->name, l)) > 0) {
        add_error (r, file, n, g_strdup_printf ("%s:%d: [%s] key '%s' appears twice (first at line %d)",
                                                 path, n, cur->name, l, prev));
        continue;
      }
      g_hash_table_replace (lines, origin_key (cur->name, l), GINT_TO_POINTER (n));
      g_ptr_array_add (cur->keys, g_strdup (l));
    } else {
      add_error (r, file, n, g_strdup_printf ("%s:%d: '%s' is not a [section], a key = value line or a "
                                               "# comment", path, n, l));
      fatal = TRUE;
    }
  }
  return !fatal;
}

/* ---- includes and merging ------------------------------------------------------------- */

/* The index of the file @canon in r->files, registering it if new. */
static int
register_file (StsimRecipe *r, const char *display, const char *canon)
{
  RecipeFile *f;
  for (guint i = 0; i < r->files->len; i++)
    if (strcmp (RECIPE_FILE (r, i)->canon, canon) == 0)
      return (int) i;
  f = g_new0 (RecipeFile, 1);
  f->display = g_strdup (display);
  f->canon = g_strdup (canon);
  f->dir = g_path_get_dirname (canon);
  g_ptr_array_add (r->files, f);
  return (int) r->files->len - 1;
}

/* "a.ini -> b.ini -> @last", from @chain[@from] (file indices). */
static char *
chain_text (StsimRecipe *r, GArray *chain, guint from, const char *last)
{
  GString *s = g_string_new (NULL);
  for (guint i = from; i < chain->len; i++)
    g_string_append_printf (s, "%s -> ", RECIPE_FILE (r, g_array_index (chain, int, i))->display);
  g_string_append (s, last);
  return g_string_free (s, FALSE);
}

static gboolean read_file (StsimRecipe *r, int file, const char *text, gsize length, GArray *chain,
                           GKeyFile *merged, GPtrArray *scanned);

/* Reads the includes named by [run] include of @file (whose key file is @kf) into the merged
 * recipe, in order. FALSE if any of them is missing or malformed. */
static gboolean
read_includes (StsimRecipe *r, int file, GKeyFile *kf, GHashTable *lines, GArray *chain, GKeyFile *merged,
               GPtrArray *scanned)
{
  int line = scan_line (lines, "run", "include");
  const RecipeFile *f = RECIPE_FILE (r, file);
  g_autofree char *value = NULL;
  g_autofree char *including_dir = NULL;
  g_auto(GStrv) items = NULL;
  g_autoptr(GError) e = NULL;
  gboolean ok = TRUE;

  if (line <= 0)
    return TRUE;
  if (!(value = g_key_file_get_string (kf, "run", "include", &e))) {
    file_error (r, file, line, "run", "include: %s", e->message);
    return FALSE;
  }
  if (*g_strstrip (value) == '\0')
    return TRUE;  /* include = (nothing) */
  items = g_strsplit (value, ",", -1);
  for (guint i = 0; items[i]; i++)
    if (*g_strstrip (items[i]) == '\0') {
      file_error (r, file, line, "run", "include: empty file name in '%s' (FILE[, FILE...])", value);
      return FALSE;
    }
  including_dir = g_path_get_dirname (f->display);
  for (guint i = 0; items[i]; i++) {
    const char *item = items[i];
    g_autofree char *expanded = NULL, *full = NULL, *canon = NULL, *display = NULL, *text = NULL;
    gsize len;
    int sub;
    gboolean cycle = FALSE;

    if (!stsim_param_parse_check (RUN_INCLUDE_SPEC, item, r->data_dir, f->dir, &expanded, &e)) {
      file_error (r, file, line, "run", "%s", e->message);
      g_clear_error (&e);
      ok = FALSE;
      continue;
    }
    /* Relative to the including file's folder, not the working directory. */
    full = g_path_is_absolute (expanded) ? g_strdup (expanded) : g_build_filename (f->dir, expanded, NULL);
    canon = g_canonicalize_filename (full, NULL);
    display = g_path_is_absolute (expanded) || strcmp (including_dir, ".") == 0
              ? g_strdup (expanded) : g_build_filename (including_dir, expanded, NULL);
    for (guint j = 0; j < chain->len && !cycle; j++)
      if (strcmp (RECIPE_FILE (r, g_array_index (chain, int, j))->canon, canon) == 0) {
        g_autofree char *names = chain_text (r, chain, j, display);
        file_error (r, file, line, "run", "include cycle: %s", names);
        cycle = TRUE;
      }
    if (cycle) {
      ok = FALSE;
      continue;
    }
    if (chain->len > MAX_INCLUDE_DEPTH) {
      g_autofree char *nest = chain_text (r, chain, 0, display);
      file_error (r, file, line, "run", "include: '%s' nests includes more than %d deep: %s", item,
                  MAX_INCLUDE_DEPTH, nest);
      ok = FALSE;
      continue;
    }
    if (!stsim_file_get_contents (full, STSIM_LIMIT_RECIPE, &text, &len, &e)) {
      if (g_error_matches (e, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        file_error (r, file, line, "run", "include: no file '%s' (%s; paths are relative to the folder of %s)",
                    item, canon, f->display);
      else
        file_error (r, file, line, "run", "include '%s': %s", item, e->message);
      g_clear_error (&e);
      ok = FALSE;
      continue;
    }
    sub = register_file (r, display, canon);
    if (!g_utf8_validate (text, len, NULL)) {
      file_error (r, file, line, "run", "include '%s': %s is not valid UTF-8", item, RECIPE_FILE (r, sub)->display);
      ok = FALSE;
      continue;
    }
    g_array_append_val (chain, sub);
    if (!read_file (r, sub, text, len, chain, merged, scanned)) {
      file_error (r, file, line, "run", "include '%s': %s has errors (below)",
                  item, RECIPE_FILE (r, sub)->display);
      ok = FALSE;
    }
    g_array_set_size (chain, chain->len - 1);
  }
  return ok;
}

/* Reads one recipe file into the merged recipe (@merged, @scanned, r->origin): the files
 * its [run] include names first, in order, then its own sections and keys; a key replaces
 * the same key read earlier, key by key. @chain: the files including it, outermost first,
 * ending with @file. FALSE if it or an include could not be read or parsed. */
static gboolean
read_file (StsimRecipe *r, int file, const char *text, gsize length, GArray *chain, GKeyFile *merged,
           GPtrArray *scanned)
{
  g_autoptr(GPtrArray) sections = g_ptr_array_new_with_free_func ((GDestroyNotify) scan_section_free);
  g_autoptr(GHashTable) lines = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) e = NULL;

  if (!scan_text (r, file, text, length, sections, lines))
    return FALSE;
  if (!g_key_file_load_from_data (kf, text, length, G_KEY_FILE_NONE, &e)) {
    add_error (r, file, 0, g_strdup_printf ("%s: %s", RECIPE_FILE (r, file)->display, e->message));
    return FALSE;
  }
  if (!read_includes (r, file, kf, lines, chain, merged, scanned))
    return FALSE;

  for (guint i = 0; i < sections->len; i++) {
    ScanSection *fs = g_ptr_array_index (sections, i);
    ScanSection *s = scan_find (scanned, fs->name);
    if (!s) {
      s = scan_add (scanned, fs->name);
      set_origin (r, fs->name, NULL, file, scan_line (lines, fs->name, NULL));
    }
    for (guint j = 0; j < fs->keys->len; j++) {
      const char *key = g_ptr_array_index (fs->keys, j);
      g_autofree char *raw = NULL;
      if (strcmp (fs->name, "run") == 0 && strcmp (key, "include") == 0)
        continue;  /* done: the merged recipe has no includes */
      if (file != 0 && strcmp (fs->name, "run") == 0 && strcmp (key, "name") == 0)
        continue;  /* a name names its own file's run: an including recipe is another run */
      if (!(raw = g_key_file_get_value (kf, fs->name, key, NULL)))
        continue;  /* cannot happen: GKeyFile read the same text */
      if (!origin_get (r, fs->name, key))
        g_ptr_array_add (s->keys, g_strdup (key));
      set_origin (r, fs->name, key, file, scan_line (lines, fs->name, key));
      g_key_file_set_value (merged, fs->name, key, raw);
    }
  }
  if (!g_ptr_array_find (r->merged, RECIPE_FILE (r, file)->display, NULL))
    g_ptr_array_add (r->merged, RECIPE_FILE (r, file)->display);
  return TRUE;
}

/* ---- overrides ----------------------------------------------------------------------- */

/* Whether @overrides give [@section] a `use`: a --set that adds a whole section. */
static gboolean
overrides_give_use (const char *const *overrides, const char *section)
{
  g_autofree char *want = g_strdup_printf ("%s.use", section);
  for (guint i = 0; overrides[i]; i++) {
    const char *eq = strchr (overrides[i], '=');
    g_autofree char *lhs = eq ? g_strstrip (g_strndup (overrides[i], eq - overrides[i])) : NULL;
    if (lhs && strcmp (lhs, want) == 0)
      return TRUE;
  }
  return FALSE;
}

/* Whether the merged section [@section] (its `use` read from @kf) takes @key. */
static gboolean
section_takes_key (StsimRecipe *r, GKeyFile *kf, const char *section, const char *key)
{
  const char *dot = strchr (section, '.');
  g_autofree char *kind_name = dot ? g_strndup (section, dot - section) : g_strdup (section);
  g_autofree char *use = g_key_file_get_string (kf, section, "use", NULL);
  const StsimParamSpec *core = dot ? NULL : stsim_recipe_lookup_core_section (section);
  const StsimRegistryEntry *e;
  StsimKind kind;

  if (core)
    return stsim_param_specs_lookup (core, key) != NULL;
  if (!stsim_kind_from_name (kind_name, &kind))
    return FALSE;
  if (strcmp (key, "use") == 0 || strcmp (key, "enabled") == 0 ||
      (kind == STSIM_KIND_OBJECTIVE && strcmp (key, "weight") == 0))
    return TRUE;
  e = use ? stsim_registry_find (r->reg, kind, g_strstrip (use), NULL) : NULL;
  return e && stsim_param_specs_lookup (e->desc->params, key) != NULL;
}

/* For a --set naming a section the recipe lacks, the SECTION.KEY it likely meant: the
 * sections of which it is the kind (`objective` -> [objective.contrastive]) or the label
 * (`contrastive`), else the nearest spelling; those that take @key first. NULL: none. */
static char *
override_hint (StsimRecipe *r, GKeyFile *kf, GPtrArray *sections, const char *section, const char *key)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new (), near = g_ptr_array_new (), fits = g_ptr_array_new ();
  g_autofree char *as_kind = g_strdup_printf ("%s.", section);
  g_autofree char *as_label = g_strdup_printf (".%s", section);
  GPtrArray *pick;
  GString *hint;

  for (guint i = 0; i < sections->len; i++) {
    const char *name = ((ScanSection *) g_ptr_array_index (sections, i))->name;
    g_ptr_array_add (names, (gpointer) name);
    if (g_str_has_prefix (name, as_kind) || g_str_has_suffix (name, as_label))
      g_ptr_array_add (near, (gpointer) name);
  }
  if (near->len == 0) {
    const char *n = stsim_util_nearest (section, (const char *const *) names->pdata, names->len);
    if (n)
      g_ptr_array_add (near, (gpointer) n);
  }
  for (guint i = 0; i < near->len; i++)
    if (section_takes_key (r, kf, g_ptr_array_index (near, i), key))
      g_ptr_array_add (fits, g_ptr_array_index (near, i));
  pick = fits->len ? fits : near;
  if (pick->len == 0)
    return NULL;
  hint = g_string_new (pick->len == 1 ? " (did you mean " : " (did you mean one of ");
  for (guint i = 0; i < pick->len; i++)
    g_string_append_printf (hint, "%s'%s.%s'", i ? ", " : "", (char *) g_ptr_array_index (pick, i), key);
  g_string_append (hint, "?)");
  return g_string_free (hint, FALSE);
}

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
      add_error (r, 0, 0, g_strdup_printf ("--set '%s': expected SECTION.KEY=VALUE", o));
      continue;
    }
    *dot = '\0';
    if (strcmp (lhs, "run") == 0 && strcmp (dot + 1, "include") == 0) {
      /* Includes are merged before overrides apply: too late to read another file. */
      add_error (r, 0, 0, g_strdup_printf ("--set '%s': [run] include can only be given in a recipe file", o));
      continue;
    }
    if (!(s = scan_find (sections, lhs))) {
      /* A key for a section the recipe lacks, and no `use` to add one: most likely a
       * short or misspelt label; say which section has the key. */
      g_autofree char *hint = NULL, *kind = NULL, *add = NULL;
      if (!stsim_recipe_lookup_core_section (lhs) && !overrides_give_use (overrides, lhs) &&
          (hint = override_hint (r, kf, sections, lhs, dot + 1))) {
        if (stsim_util_label_is_valid (lhs, &kind) && stsim_kind_from_name (kind, NULL))
          add = g_strdup_printf ("; to add it, also --set %s.use=NAME", lhs);
        add_error (r, 0, 0, g_strdup_printf ("--set '%s': this recipe has no section [%s]%s%s", o, lhs, hint,
                                             add ? add : ""));
        continue;
      }
      s = scan_add (sections, lhs);
      set_origin (r, lhs, NULL, 0, 0);
    }
    if (origin_line (r, lhs, dot + 1) < 0)
      g_ptr_array_add (s->keys, g_strdup (dot + 1));
    set_origin (r, lhs, dot + 1, 0, 0);
    {
      g_autofree char *value = g_strstrip (g_strdup (eq + 1));
      g_key_file_set_value (kf, lhs, dot + 1, value);
    }
  }
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* 8 hex digits of SHA-256 over the --set values (SECTION.KEY=VALUE, spaces around both
 * trimmed, the last of a repeated key, sorted), so that the same values in any order give
 * the same run folder; NULL when there are none. [run] name and output do not count:
 * they name the folder themselves. */
static char *
overrides_hash (const char *const *overrides)
{
  g_autoptr(GHashTable) last = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GString) text = g_string_new (NULL);
  GHashTableIter it;
  gpointer k, v;

  for (guint i = 0; overrides && overrides[i]; i++) {
    const char *eq = strchr (overrides[i], '=');
    char *lhs = eq ? g_strstrip (g_strndup (overrides[i], eq - overrides[i])) : g_strdup (overrides[i]);
    if (strcmp (lhs, "run.name") == 0 || strcmp (lhs, "run.output") == 0) {
      g_free (lhs);
      continue;
    }
    g_hash_table_replace (last, lhs, eq ? g_strstrip (g_strdup (eq + 1)) : g_strdup (""));
  }
  if (g_hash_table_size (last) == 0)
    return NULL;
  g_hash_table_iter_init (&it, last);
  while (g_hash_table_iter_next (&it, &k, &v))
    g_ptr_array_add (items, g_strdup_printf ("%s=%s", (char *) k, (char *) v));
  g_ptr_array_sort (items, compare_strings);
  for (guint i = 0; i < items->len; i++)
    g_string_append_printf (text, "%s\n", (char *) g_ptr_array_index (items, i));
  {
    g_autofree char *sum = g_compute_checksum_for_string (G_CHECKSUM_SHA256, text->str, text->len);
    return g_strndup (sum, 8);
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
    /* ${recipe_dir}: the folder of the file that wrote this value (an include's own folder). */
    stsim_params_set_path_vars (params, r->data_dir, origin_dir (r, s->name, key));
    if (!(value = g_key_file_get_string (kf, s->name, key, &e)) || !stsim_params_set (params, key, value, &e)) {
      recipe_error (r, s->name, key, "%s", e->message);
      ok = FALSE;
      continue;
    }
    if (spec->flags & STSIM_PARAM_DEPRECATED)
      recipe_warning (r, s->name, key, "parameter '%s' is deprecated: %s", key, spec->blurb);
  }
  /* Defaults, and whoever copies the parameters later, see the recipe's own folder. */
  stsim_params_set_path_vars (params, r->data_dir, r->dir);
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
  {
    const Origin *o = origin_get (r, s->name, NULL);
    sec->pub.file = o && o->line > 0 ? RECIPE_FILE (r, o->file)->display : r->path;
  }
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
  static const char *const run_only[] = { "include", NULL };  /* read while merging; named in hints */
  g_autofree char *what = g_strdup_printf ("[%s]", cv->core->name);
  cv->present = TRUE;
  set_keys (r, kf, s, cv->params, strcmp (cv->core->name, "run") == 0 ? run_only : NULL, what);
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
    /* Variants of one recipe (--set values) get folders of their own. */
    g_autofree char *leaf = r->set_hash ? g_strdup_printf ("%s-%s", stsim_params_get_string (p, "name"), r->set_hash)
                                        : g_strdup (stsim_params_get_string (p, "name"));
    g_autofree char *out = g_build_filename ("runs", leaf, NULL);
    r->output_default = TRUE;
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
  r->files = g_ptr_array_new_with_free_func ((GDestroyNotify) recipe_file_free);
  r->merged = g_ptr_array_new ();
  r->errors = g_ptr_array_new_with_free_func ((GDestroyNotify) recipe_error_free);
  r->origin = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  if (!g_utf8_validate (text, len, NULL)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_ENCODING, "%s: not valid UTF-8", path);
    return NULL;
  }
  {
    g_autofree char *canon = g_canonicalize_filename (path, NULL);
    g_autoptr(GArray) chain = g_array_new (FALSE, FALSE, sizeof (int));
    int top = register_file (r, path, canon);
    g_array_append_val (chain, top);
    parsed = read_file (r, top, text, len, chain, kf, scanned);
  }
  if (parsed)
    apply_overrides (r, kf, overrides, scanned);
  r->set_hash = overrides_hash (overrides);

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
  if (r->errors->len == 0) {
    /* Checks across sections see a recipe whose every section is valid:
     * the core sections' own, then the registered ones. */
    stsim_train_check_recipe (r);
    g_autoptr(GArray) fns = checks_snapshot ();
    for (guint i = 0; i < fns->len; i++)
      g_array_index (fns, StsimRecipeCheckFunc, i) (r);
  }

  if (r->errors->len) {
    GString *msg = g_string_new (NULL);
    g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
    g_ptr_array_sort (r->errors, compare_errors);  /* stable: by file and line, then in the order found */
    for (guint i = 0; i < r->errors->len; i++) {
      const char *text = ((RecipeError *) g_ptr_array_index (r->errors, i))->text;
      if (g_hash_table_add (seen, (gpointer) text))  /* a file included twice says it once */
        g_string_append_printf (msg, "%s%s", msg->len ? "\n" : "", text);
    }
    g_set_error_literal (error, STSIM_ERROR, STSIM_ERROR_RECIPE, msg->str);
    g_string_free (msg, TRUE);
    return NULL;
  }
  g_ptr_array_add (r->warnings, NULL);
  g_ptr_array_add (r->merged, NULL);
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
  if (!stsim_file_get_contents (path, STSIM_LIMIT_RECIPE, &text, &len, &e)) {
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
const char *const *stsim_recipe_get_files (const StsimRecipe *r) { return (const char *const *) r->merged->pdata; }

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
gboolean stsim_recipe_get_output_is_default (const StsimRecipe *r) { return r->output_default; }
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
      g_prefix_error (error, "%s:%d: ", s->pub.file, s->pub.line);
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
  if (r->merged->len > 2) {  /* NULL-terminated: more than one file */
    g_autofree char *names = g_strjoinv (", ", (char **) r->merged->pdata);
    g_string_append_printf (out, MERGED_PREFIX "%s (in this order; later values win).\n", names);
  } else if (r->provenance) {
    g_string_append_printf (out, "%s\n", r->provenance);
  }
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
