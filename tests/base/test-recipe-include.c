/* Recipe includes ([run] include = FILE, ...): key-by-key merging, nesting,
 * cycles, missing and malformed includes, error locations in included files,
 * ${recipe_dir} of the writing file, the flattened resolved text and --set.
 * Every case writes its recipes to a fresh temporary folder. */
#include <glib/gstdio.h>
#include <string.h>

#include "stsim/stsim-recipe.h"

static StsimRegistry *
test_registry (void)
{
  StsimRegistry *reg = stsim_registry_new ();
  g_autofree char *good = g_build_filename (g_getenv ("STSIM_TEST_PLUGIN_DIR"), "good", NULL);
  g_assert_true (stsim_registry_scan_path (reg, good, NULL));
  return reg;
}

/* A temporary folder of recipe files, removed (with every file written) when freed. */
typedef struct {
  char      *dir;
  GPtrArray *files;    /* absolute paths, in the order written */
  GPtrArray *folders;  /* subfolders created, in the order created */
} Fixture;

static Fixture *
fixture_new (void)
{
  Fixture *f = g_new0 (Fixture, 1);
  g_autoptr(GError) e = NULL;
  f->dir = g_dir_make_tmp ("stsim-include-XXXXXX", &e);
  g_assert_no_error (e);
  f->files = g_ptr_array_new_with_free_func (g_free);
  f->folders = g_ptr_array_new_with_free_func (g_free);
  return f;
}

static void
fixture_free (Fixture *f)
{
  for (guint i = 0; i < f->files->len; i++)
    g_unlink (g_ptr_array_index (f->files, i));
  for (guint i = f->folders->len; i > 0; i--)
    g_rmdir (g_ptr_array_index (f->folders, i - 1));
  g_assert_cmpint (g_rmdir (f->dir), ==, 0);  /* nothing left behind */
  g_ptr_array_unref (f->files);
  g_ptr_array_unref (f->folders);
  g_free (f->dir);
  g_free (f);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Fixture, fixture_free)

/* The absolute path of @name (relative to the fixture's folder). */
static char *
fx_path (Fixture *f, const char *name)
{
  return g_build_filename (f->dir, name, NULL);
}

/* Writes @text to @name, creating its folders; returns the absolute path. */
static char *
fx_write (Fixture *f, const char *name, const char *text)
{
  char *path = fx_path (f, name);
  g_autofree char *folder = g_path_get_dirname (path);
  g_autoptr(GError) e = NULL;

  if (!g_file_test (folder, G_FILE_TEST_IS_DIR)) {
    /* Each missing folder, outermost first, so that fixture_free() removes them all. */
    g_autoptr(GPtrArray) missing = g_ptr_array_new ();
    g_autofree char *d = g_strdup (folder);
    while (!g_file_test (d, G_FILE_TEST_IS_DIR)) {
      char *up = g_path_get_dirname (d);
      g_ptr_array_insert (missing, 0, g_steal_pointer (&d));
      d = up;
    }
    for (guint i = 0; i < missing->len; i++) {
      g_assert_cmpint (g_mkdir (g_ptr_array_index (missing, i), 0755), ==, 0);
      g_ptr_array_add (f->folders, g_ptr_array_index (missing, i));
    }
  }
  g_assert_true (g_file_set_contents (path, text, -1, &e));
  g_assert_no_error (e);
  if (!g_ptr_array_find_with_equal_func (f->files, path, g_str_equal, NULL))
    g_ptr_array_add (f->files, g_strdup (path));
  return path;
}

static StsimRecipe *
load_file (StsimRegistry *reg, const char *path, const char *const *overrides, GError **error)
{
  return stsim_recipe_load (reg, path, overrides, "/data", error);
}

/* Loads @path expecting the error message @expected exactly. */
static void
expect_error (const char *path, const char *const *overrides, const char *expected)
{
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = load_file (reg, path, overrides, &error);

  g_assert_null (r);
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE);
  g_assert_cmpstr (error->message, ==, expected);
}

static gint64
int_param (StsimRecipe *r, const char *label, const char *key)
{
  const StsimRecipeComponent *c = stsim_recipe_lookup_component (r, label);
  g_assert_nonnull (c);
  return stsim_params_get_int (c->params, key);
}

static double
double_param (StsimRecipe *r, const char *label, const char *key)
{
  const StsimRecipeComponent *c = stsim_recipe_lookup_component (r, label);
  g_assert_nonnull (c);
  return stsim_params_get_double (c->params, key);
}

static const char base_text[] =
  "# the shared budget\n"      /* 1 */
  "[run]\n"                    /* 2 */
  "seed = 7\n"                 /* 3 */
  "threads = 2\n"              /* 4 */
  "\n"                         /* 5 */
  "[encoder]\n"                /* 6 */
  "use = test-hash\n"          /* 7 */
  "dim = 16\n"                 /* 8 */
  "scale = 2\n"                /* 9 */
  "\n"                         /* 10 */
  "[evaluator.e]\n"            /* 11 */
  "use = test-eval\n"          /* 12 */
  "tag = from base\n";         /* 13 */

/* ---- merging ------------------------------------------------------------------------------ */

static void
test_override_one_key (void)
{
  g_autoptr(Fixture) f = fixture_new ();
  g_autofree char *base = fx_write (f, "base.ini", base_text);
  g_autofree char *child = fx_write (f, "child.ini", "[run]\ninclude = base.ini\n\n[encoder]\ndim = 32\n");
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = load_file (reg, child, NULL, &error);
  const StsimRecipeComponent *c;
  const char *const *files;

  g_assert_no_error (error);
  g_assert_cmpint (int_param (r, "encoder", "dim"), ==, 32);         /* the child's */
  g_assert_cmpfloat (double_param (r, "encoder", "scale"), ==, 2);   /* the base's, kept */
  g_assert_cmpuint (stsim_recipe_get_seed (r), ==, 7);
  g_assert_cmpint (stsim_recipe_get_threads (r), ==, 2);
  /* The run is named after the recipe run, not the base. */
  g_assert_cmpstr (stsim_recipe_get_name (r), ==, "child");
  g_assert_cmpstr (stsim_recipe_get_output (r), ==, "runs/child");
  g_assert_cmpstr (stsim_recipe_get_path (r), ==, child);
  /* The section was introduced by the base: its header is there. */
  c = stsim_recipe_lookup_component (r, "encoder");
  g_assert_cmpstr (c->file, ==, base);
  g_assert_cmpint (c->line, ==, 6);
  files = stsim_recipe_get_files (r);
  g_assert_cmpuint (g_strv_length ((char **) files), ==, 2);
  g_assert_cmpstr (files[0], ==, base);
  g_assert_cmpstr (files[1], ==, child);
}

/* [run] name names the run of the file that writes it: an including recipe is
 * another run (its own name, its own default folder), while the base's other
 * [run] keys merge as usual; --set and the recipe itself may still name it. */
static void
test_name_not_inherited (void)
{
  g_autoptr(Fixture) f = fixture_new ();
  g_autofree char *base = fx_write (f, "quick.ini", "[run]\nname = quick\nseed = 3\n[encoder]\nuse = test-hash\n");
  g_autofree char *lab = fx_write (f, "lab-a.ini", "[run]\ninclude = quick.ini\n[encoder]\ndim = 4\n");
  g_autofree char *named = fx_write (f, "lab-b.ini", "[run]\ninclude = quick.ini\nname = mine\n");
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) a = load_file (reg, lab, NULL, &error);
  g_autoptr(StsimRecipe) b = NULL, c = NULL, d = NULL;
  g_autofree char *text = NULL;

  g_assert_no_error (error);
  g_assert_cmpstr (stsim_recipe_get_name (a), ==, "lab-a");
  g_assert_cmpstr (stsim_recipe_get_output (a), ==, "runs/lab-a");
  g_assert_cmpuint (stsim_recipe_get_seed (a), ==, 3);
  text = stsim_recipe_to_string (a);
  g_assert_nonnull (strstr (text, "\n[run]\nname = lab-a\nseed = 3\n"));
  b = load_file (reg, named, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (stsim_recipe_get_name (b), ==, "mine");
  c = load_file (reg, lab, (const char *const[]) { "run.name=x", NULL }, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (stsim_recipe_get_output (c), ==, "runs/x");
  d = load_file (reg, base, NULL, &error);  /* the base alone keeps its name */
  g_assert_no_error (error);
  g_assert_cmpstr (stsim_recipe_get_name (d), ==, "quick");
}

static void
test_base_only_section (void)
{
  g_autoptr(Fixture) f = fixture_new ();
  g_autofree char *base = fx_write (f, "base.ini", base_text);
  g_autofree char *child = fx_write (f, "child.ini", "[run]\ninclude = base.ini\n"
                                                    "[objective.new]\nuse = test-objective\n");
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = load_file (reg, child, NULL, &error);
  const StsimRecipeComponent *c;

  g_assert_no_error (error);
  /* Merged order: the base's sections, then the child's new one. */
  g_assert_cmpuint (stsim_recipe_get_n_components (r), ==, 3);
  g_assert_cmpstr (stsim_recipe_get_component (r, 0)->label, ==, "encoder");
  g_assert_cmpstr (stsim_recipe_get_component (r, 1)->label, ==, "evaluator.e");
  g_assert_cmpstr (stsim_recipe_get_component (r, 2)->label, ==, "objective.new");
  c = stsim_recipe_lookup_component (r, "evaluator.e");
  g_assert_true (c->enabled);
  g_assert_cmpstr (stsim_params_get_string (c->params, "tag"), ==, "from base");
  g_assert_cmpstr (c->file, ==, base);
  g_assert_cmpint (c->line, ==, 11);
  c = stsim_recipe_lookup_component (r, "objective.new");
  g_assert_cmpstr (c->file, ==, child);
  g_assert_cmpint (c->line, ==, 3);
}

static void
test_disable_in_child (void)
{
  g_autoptr(Fixture) f = fixture_new ();
  g_autofree char *base = fx_write (f, "base.ini", "[encoder]\nuse = test-hash\n"
                                                  "[objective.a]\nuse = test-objective\nweight = 0.5\n"
                                                  "[objective.b]\nuse = test-objective\n");
  g_autofree char *child = fx_write (f, "child.ini", "[run]\ninclude = base.ini\n[objective.a]\nenabled = false\n");
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = load_file (reg, child, NULL, &error);
  const StsimRecipeComponent *c;

  g_assert_no_error (error);
  c = stsim_recipe_lookup_component (r, "objective.a");
  g_assert_false (c->enabled);
  g_assert_cmpstr (c->use, ==, "test-objective");   /* the rest of the section is the base's */
  g_assert_cmpfloat (c->weight, ==, 0.5);
  g_assert_true (stsim_recipe_lookup_component (r, "objective.b")->enabled);
  g_assert_cmpuint (stsim_recipe_count_kind (r, STSIM_KIND_OBJECTIVE), ==, 1);
  g_assert_cmpuint (stsim_recipe_get_n_ordered (r), ==, 2);
}

static void
test_include_order (void)
{
  g_autoptr(Fixture) f = fixture_new ();
  g_autofree char *a = fx_write (f, "a.ini", "[encoder]\nuse = test-hash\ndim = 3\nsalt = 1\n");
  g_autofree char *b = fx_write (f, "b.ini", "[encoder]\nuse = test-hash\ndim = 5\n");
  g_autofree char *ab = fx_write (f, "ab.ini", "[run]\ninclude = a.ini, b.ini\n");
  g_autofree char *ba = fx_write (f, "ba.ini", "[run]\ninclude = b.ini,a.ini\n");
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r1 = load_file (reg, ab, NULL, &error);
  g_autoptr(StsimRecipe) r2 = NULL;

  g_assert_no_error (error);
  g_assert_cmpint (int_param (r1, "encoder", "dim"), ==, 5);   /* the later include wins */
  g_assert_cmpint (int_param (r1, "encoder", "salt"), ==, 1);
  r2 = load_file (reg, ba, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (int_param (r2, "encoder", "dim"), ==, 3);
  g_assert_cmpint (int_param (r2, "encoder", "salt"), ==, 1);
  g_assert_cmpstr (stsim_recipe_get_files (r2)[0], ==, b);
  g_assert_cmpstr (stsim_recipe_get_files (r2)[1], ==, a);
  g_assert_cmpstr (stsim_recipe_get_files (r2)[2], ==, ba);
}

static void
test_nested (void)
{
  g_autoptr(Fixture) f = fixture_new ();
  /* Each include path is relative to the folder of the file that names it. */
  g_autofree char *base = fx_write (f, "sub/deep/base.ini", "[encoder]\nuse = test-hash\ndim = 8\nscale = 3\nsalt = 1\n");
  g_autofree char *mid = fx_write (f, "sub/mid.ini", "[run]\ninclude = deep/base.ini\nseed = 5\n[encoder]\ndim = 12\n");
  g_autofree char *top = fx_write (f, "top.ini", "[run]\ninclude = sub/mid.ini\n[encoder]\nscale = 4\n");
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = load_file (reg, top, NULL, &error);
  const char *const *files;

  g_assert_no_error (error);
  g_assert_cmpint (int_param (r, "encoder", "dim"), ==, 12);
  g_assert_cmpfloat (double_param (r, "encoder", "scale"), ==, 4);
  g_assert_cmpint (int_param (r, "encoder", "salt"), ==, 1);
  g_assert_cmpuint (stsim_recipe_get_seed (r), ==, 5);
  g_assert_cmpstr (stsim_recipe_get_name (r), ==, "top");
  files = stsim_recipe_get_files (r);
  g_assert_cmpuint (g_strv_length ((char **) files), ==, 3);
  g_assert_cmpstr (files[0], ==, base);
  g_assert_cmpstr (files[1], ==, mid);
  g_assert_cmpstr (files[2], ==, top);
}

static void
test_diamond (void)
{
  g_autoptr(Fixture) f = fixture_new ();
  g_autofree char *base = fx_write (f, "base.ini", "[encoder]\nuse = test-hash\ndim = 8\n");
  g_autofree char *b = fx_write (f, "b.ini", "[run]\ninclude = base.ini\n[encoder]\ndim = 9\n");
  g_autofree char *c = fx_write (f, "c.ini", "[run]\ninclude = base.ini\n");
  g_autofree char *top = fx_write (f, "top.ini", "[run]\ninclude = b.ini, c.ini\n");
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = load_file (reg, top, NULL, &error);
  const char *const *files;

  /* The same file twice is no cycle; read again through c.ini, base's dim comes last. */
  g_assert_no_error (error);
  g_assert_cmpint (int_param (r, "encoder", "dim"), ==, 8);
  files = stsim_recipe_get_files (r);
  g_assert_cmpuint (g_strv_length ((char **) files), ==, 4);
  g_assert_cmpstr (files[0], ==, base);
  g_assert_cmpstr (files[1], ==, b);
  g_assert_cmpstr (files[2], ==, c);
  g_assert_cmpstr (files[3], ==, top);
}

/* ---- errors ---------------------------------------------------------------------------------- */

static void
test_cycle (void)
{
  g_autoptr(Fixture) f = fixture_new ();
  g_autofree char *a = fx_write (f, "a.ini", "[run]\ninclude = b.ini\n[encoder]\nuse = test-hash\n");
  g_autofree char *b = fx_write (f, "b.ini", "# b\n[run]\ninclude = a.ini\n");
  g_autofree char *self = fx_write (f, "self.ini", "[run]\nseed = 1\ninclude = self.ini\n");
  g_autofree char *want = g_strdup_printf ("%s:2: [run] include 'b.ini': %s has errors (below)\n"
                                           "%s:3: [run] include cycle: %s -> %s -> %s", a, b, b, a, b, a);
  g_autofree char *want_self = g_strdup_printf ("%s:3: [run] include cycle: %s -> %s", self, self, self);

  expect_error (a, NULL, want);
  expect_error (self, NULL, want_self);
}

static void
test_depth_limit (void)
{
  g_autoptr(Fixture) f = fixture_new ();
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = NULL;
  g_autofree char *f0 = NULL, *f8 = NULL, *f9 = NULL, *tail = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GString) chain = NULL;

  /* f0 includes f1 ... includes f8: eight levels of includes. */
  for (int i = 0; i < 9; i++) {
    g_autofree char *name = g_strdup_printf ("f%d.ini", i);
    g_autofree char *text = i < 8 ? g_strdup_printf ("[run]\ninclude = f%d.ini\n", i + 1)
                                  : g_strdup ("[encoder]\nuse = test-hash\ndim = 9\n");
    g_free (fx_write (f, name, text));
  }
  f0 = fx_path (f, "f0.ini");
  r = load_file (reg, f0, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (int_param (r, "encoder", "dim"), ==, 9);
  g_assert_cmpuint (g_strv_length ((char **) stsim_recipe_get_files (r)), ==, 9);

  /* One more level is refused, at the line of the include that goes too deep. */
  f8 = fx_write (f, "f8.ini", "[run]\ninclude = f9.ini\n");
  f9 = fx_write (f, "f9.ini", "[encoder]\nuse = test-hash\n");
  g_clear_pointer (&r, stsim_recipe_free);
  r = load_file (reg, f0, NULL, &error);
  g_assert_null (r);
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE);
  lines = g_strsplit (error->message, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 9);  /* f0 ... f7: "has errors (below)"; f8: too deep */
  for (int i = 0; i < 8; i++) {
    g_autofree char *from = g_strdup_printf ("f%d.ini", i), *to = g_strdup_printf ("f%d.ini", i + 1);
    g_autofree char *from_path = fx_path (f, from), *to_path = fx_path (f, to);
    g_autofree char *want = g_strdup_printf ("%s:2: [run] include '%s': %s has errors (below)", from_path, to,
                                             to_path);
    g_assert_cmpstr (lines[i], ==, want);
  }
  chain = g_string_new (NULL);
  for (int i = 0; i < 9; i++) {
    g_autofree char *name = g_strdup_printf ("f%d.ini", i);
    g_autofree char *path = fx_path (f, name);
    g_string_append_printf (chain, "%s -> ", path);
  }
  g_string_append (chain, f9);
  tail = g_strdup_printf ("%s:2: [run] include: 'f9.ini' nests includes more than 8 deep: %s", f8, chain->str);
  g_assert_cmpstr (lines[8], ==, tail);
}

static void
test_missing_include (void)
{
  g_autoptr(Fixture) f = fixture_new ();
  g_autofree char *child = fx_write (f, "child.ini", "# needs a base\n[run]\ninclude = nope.ini\n"
                                                    "[encoder]\nuse = test-hash\n");
  g_autofree char *nope = fx_path (f, "nope.ini");
  g_autofree char *want = g_strdup_printf ("%s:3: [run] include: no file 'nope.ini' (%s; paths are relative to the "
                                           "folder of %s)", child, nope, child);
  g_autofree char *empty = fx_write (f, "empty.ini", "[run]\ninclude = base.ini,, base.ini\n");
  g_autofree char *want_empty = g_strdup_printf ("%s:2: [run] include: empty file name in 'base.ini,, base.ini' "
                                                 "(FILE[, FILE...])", empty);
  g_autofree char *badvar = fx_write (f, "badvar.ini", "[run]\ninclude = ${nope}/base.ini\n");
  g_autofree char *want_badvar = g_strdup_printf ("%s:2: [run] include: unknown variable in path '${nope}/base.ini' "
                                                  "(known: ${data}, ${recipe_dir})", badvar);

  expect_error (child, NULL, want);
  expect_error (empty, NULL, want_empty);
  expect_error (badvar, NULL, want_badvar);
}

static void
test_malformed_include (void)
{
  g_autoptr(Fixture) f = fixture_new ();
  g_autofree char *base = fx_write (f, "base.ini", "[encoder]\nuse = test-hash\noops\n");
  g_autofree char *child = fx_write (f, "child.ini", "[run]\ninclude = base.ini\n");
  g_autofree char *want = g_strdup_printf ("%s:2: [run] include 'base.ini': %s has errors (below)\n"
                                           "%s:3: 'oops' is not a [section], a key = value line or a # comment",
                                           child, base, base);
  g_autofree char *bin = fx_write (f, "bin.ini", "[run]\nname = \xff\n");
  g_autofree char *child2 = fx_write (f, "child2.ini", "[run]\ninclude = bin.ini\n");
  g_autofree char *want2 = g_strdup_printf ("%s:2: [run] include 'bin.ini': %s is not valid UTF-8", child2, bin);

  expect_error (child, NULL, want);
  expect_error (child2, NULL, want2);
}

static void
test_error_lines (void)
{
  g_autoptr(Fixture) f = fixture_new ();
  g_autofree char *base = fx_write (f, "base.ini",
                                    "[encoder]\n"          /* 1 */
                                    "use = test-hash\n"    /* 2 */
                                    "dim = 5000\n"         /* 3: out of range, left as it is */
                                    "pooling = maxx\n"     /* 4: out of range, fixed by the child */
                                    "colour = red\n"       /* 5: unknown key */
                                    "\n"                   /* 6 */
                                    "[evaluator.e]\n"      /* 7: no tag */
                                    "use = test-eval\n");  /* 8 */
  g_autofree char *child = fx_write (f, "child.ini",
                                     "[run]\n"               /* 1 */
                                     "include = base.ini\n"  /* 2 */
                                     "\n"                    /* 3 */
                                     "[encoder]\n"           /* 4 */
                                     "scale = 20\n"          /* 5 */
                                     "pooling = max\n");     /* 6 */
  g_autofree char *want = g_strdup_printf (
    "%s:5: [encoder] scale: 20 is outside [0, 10]\n"
    "%s:3: [encoder] dim: 5000 is outside [1, 1024]\n"
    "%s:5: [encoder] unknown key 'colour' for encoder 'test-hash'\n"
    "%s:7: [evaluator.e] missing required key 'tag' (string: copied into the report)",
    child, base, base, base);

  expect_error (child, NULL, want);
}

/* ---- paths ------------------------------------------------------------------------------------ */

static void
test_recipe_dir (void)
{
  g_autoptr(Fixture) f = fixture_new ();
  g_autofree char *base = fx_write (f, "shared/base.ini", "[encoder]\nuse = test-hash\nvocab = ${recipe_dir}/vocab\n"
                                                         "[objective]\nuse = test-objective\n");
  /* The include path itself may use ${recipe_dir} (the including file's folder). */
  g_autofree char *child = fx_write (f, "child.ini", "[run]\ninclude = ${recipe_dir}/shared/base.ini\n"
                                                    "output = ${recipe_dir}/out\n"
                                                    "[objective]\nlog = ${recipe_dir}/log.txt\n");
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = load_file (reg, child, NULL, &error);
  g_autofree char *vocab = fx_path (f, "shared/vocab");
  g_autofree char *log = fx_path (f, "log.txt");
  g_autofree char *out = fx_path (f, "out");

  g_assert_no_error (error);
  g_assert_cmpstr (stsim_params_get_string (stsim_recipe_lookup_component (r, "encoder")->params, "vocab"), ==,
                   vocab);
  g_assert_cmpstr (stsim_params_get_string (stsim_recipe_lookup_component (r, "objective")->params, "log"), ==,
                   log);
  g_assert_cmpstr (stsim_recipe_get_output (r), ==, out);
  g_assert_cmpstr (stsim_recipe_get_files (r)[0], ==, base);
}

static void
test_recipe_dir_default (void)
{
  g_autoptr(Fixture) f = fixture_new ();
  g_autofree char *base = fx_write (f, "shared/base.ini", "[encoder]\nuse = test-hash\n");
  g_autofree char *child = fx_write (f, "child.ini", "[run]\ninclude = shared/base.ini\n");
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  const char *const set[] = { "encoder.vocab=${recipe_dir}/v", NULL };
  g_autoptr(StsimRecipe) r = load_file (reg, child, set, &error);
  g_autofree char *v = fx_path (f, "v");

  /* --set is written by no file: ${recipe_dir} is the recipe's own folder. */
  g_assert_no_error (error);
  g_assert_cmpstr (stsim_params_get_string (stsim_recipe_lookup_component (r, "encoder")->params, "vocab"), ==, v);
}

/* ---- the flattened recipe -------------------------------------------------------------------- */

static void
test_resolved (void)
{
  g_autoptr(Fixture) f = fixture_new ();
  g_autofree char *base = fx_write (f, "base.ini", "[run]\nseed = 7\n[encoder]\nuse = test-hash\ndim = 16\n"
                                                  "vocab = ${recipe_dir}/vocab\n");
  g_autofree char *child = fx_write (f, "sub/child.ini", "[run]\ninclude = ../base.ini\n[encoder]\ndim = 32\n");
  g_autofree char *base_display = g_build_filename (f->dir, "sub", "..", "base.ini", NULL);
  g_autofree char *vocab = fx_path (f, "vocab");
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = load_file (reg, child, NULL, &error);
  g_autoptr(StsimRecipe) again = NULL, from_disk = NULL;
  g_autofree char *text = NULL, *text2 = NULL, *text3 = NULL, *expected = NULL, *resolved = NULL;
  g_autofree char *out = fx_path (f, "out");

  g_assert_no_error (error);
  text = stsim_recipe_to_string (r);
  expected = g_strdup_printf (
    "# Resolved recipe: every value explicit. Written by stsim %s.\n"
    "# Merged from %s, %s (in this order; later values win).\n"
    "# plugin test-good 1.2.3 (%s)\n"
    "\n[run]\nname = child\nseed = 7\nthreads = 0\noutput = runs/child\n"
    "\n[encoder]\nuse = test-hash\nenabled = true\ndim = 32\nscale = 1\nlowercase = true\npooling = mean\n"
    "vocab = %s\nsalt = 0\n",
    STSIM_VERSION_FOR_TESTS, base_display, child, stsim_recipe_lookup_component (r, "encoder")->entry->file, vocab);
  g_assert_cmpstr (text, ==, expected);

  /* It re-resolves to itself, from memory elsewhere and from where stsim-run writes it. */
  again = stsim_recipe_load_data (reg, text, -1, "/elsewhere/resolved.ini", NULL, "/other-data", &error);
  g_assert_no_error (error);
  text2 = stsim_recipe_to_string (again);
  g_assert_cmpstr (text2, ==, text);
  g_assert_cmpuint (g_strv_length ((char **) stsim_recipe_get_files (again)), ==, 1);

  g_assert_true (stsim_recipe_write_resolved (r, out, &error));
  g_assert_no_error (error);
  resolved = g_build_filename (out, "resolved.ini", NULL);
  g_ptr_array_add (f->files, g_strdup (resolved));
  g_ptr_array_add (f->folders, g_strdup (out));
  from_disk = load_file (reg, resolved, NULL, &error);
  g_assert_no_error (error);
  text3 = stsim_recipe_to_string (from_disk);
  g_assert_cmpstr (text3, ==, text);
}

static void
test_no_includes_no_merged_line (void)
{
  g_autoptr(Fixture) f = fixture_new ();
  g_autofree char *plain = fx_write (f, "plain.ini", "[run]\ninclude =\n[encoder]\nuse = test-hash\n");
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimRecipe) r = load_file (reg, plain, NULL, &error);
  g_autofree char *text = NULL;

  /* An empty include is allowed and names nothing. */
  g_assert_no_error (error);
  text = stsim_recipe_to_string (r);
  g_assert_null (strstr (text, "# Merged from"));
  g_assert_null (strstr (text, "include"));
  g_assert_cmpuint (g_strv_length ((char **) stsim_recipe_get_files (r)), ==, 1);
  g_assert_cmpstr (stsim_recipe_get_files (r)[0], ==, plain);
}

/* ---- --set -------------------------------------------------------------------------------------- */

static void
test_set_beats_include (void)
{
  g_autoptr(Fixture) f = fixture_new ();
  g_autofree char *base = fx_write (f, "base.ini", base_text);
  g_autofree char *child = fx_write (f, "child.ini", "[run]\ninclude = base.ini\n[encoder]\ndim = 32\n");
  g_autoptr(StsimRegistry) reg = test_registry ();
  g_autoptr(GError) error = NULL;
  const char *const set[] = { "encoder.dim=64", "evaluator.e.tag=cli", "run.seed=3", NULL };
  g_autoptr(StsimRecipe) r = load_file (reg, child, set, &error);
  g_autofree char *want = g_strdup_printf (
    "--set 'run.include=other.ini': [run] include can only be given in a recipe file\n"
    "%s: [encoder] dim: 5000 is outside [1, 1024] (from --set)", child);

  g_assert_no_error (error);
  g_assert_cmpint (int_param (r, "encoder", "dim"), ==, 64);
  g_assert_cmpstr (stsim_params_get_string (stsim_recipe_lookup_component (r, "evaluator.e")->params, "tag"), ==,
                   "cli");
  g_assert_cmpuint (stsim_recipe_get_seed (r), ==, 3);
  expect_error (child, (const char *const[]) { "run.include=other.ini", "encoder.dim=5000", NULL }, want);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/recipe-include/override-one-key", test_override_one_key);
  g_test_add_func ("/recipe-include/name-not-inherited", test_name_not_inherited);
  g_test_add_func ("/recipe-include/base-only-section", test_base_only_section);
  g_test_add_func ("/recipe-include/disable-in-child", test_disable_in_child);
  g_test_add_func ("/recipe-include/order", test_include_order);
  g_test_add_func ("/recipe-include/nested", test_nested);
  g_test_add_func ("/recipe-include/diamond", test_diamond);
  g_test_add_func ("/recipe-include/error/cycle", test_cycle);
  g_test_add_func ("/recipe-include/error/depth", test_depth_limit);
  g_test_add_func ("/recipe-include/error/missing", test_missing_include);
  g_test_add_func ("/recipe-include/error/malformed", test_malformed_include);
  g_test_add_func ("/recipe-include/error/lines", test_error_lines);
  g_test_add_func ("/recipe-include/recipe-dir", test_recipe_dir);
  g_test_add_func ("/recipe-include/recipe-dir-set", test_recipe_dir_default);
  g_test_add_func ("/recipe-include/resolved", test_resolved);
  g_test_add_func ("/recipe-include/no-includes", test_no_includes_no_merged_line);
  g_test_add_func ("/recipe-include/set", test_set_beats_include);
  return g_test_run ();
}
