/* libFuzzer target: the recipe parser (core/base/recipe.c, params.c) on
 * arbitrary text: sections, keys, includes (read through the bounded
 * reader), overrides and every parameter type, through a core section
 * [fuzz] whose table has one key of each type, and [run].
 * Checks: no crash; a recipe either loads and its resolved text loads again
 * to the same text, or fails with a GError in STSIM_ERROR. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "stsim/stsim-recipe.h"
#include "stsim/stsim-registry.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static StsimRegistry *reg;
static char *dir;

static const StsimParamSpec fuzz_specs[] = {
  { "flag", STSIM_PARAM_BOOL, "false", .blurb = "bool" },
  { "count", STSIM_PARAM_INT, "3", .min = 0, .max = 1000, .blurb = "int" },
  { "rate", STSIM_PARAM_DOUBLE, "0.5", .min = 0, .max = 1, .blurb = "double" },
  { "text", STSIM_PARAM_STRING, NULL, .blurb = "string" },
  { "tasks", STSIM_PARAM_STRING, "a,b", .choices = "a|b|c", .blurb = "string list" },
  { "mode", STSIM_PARAM_ENUM, "x", .choices = "x|y|z", .blurb = "enum" },
  { "file", STSIM_PARAM_PATH, NULL, .blurb = "path" },
  { "refs", STSIM_PARAM_REFS, NULL, .blurb = "refs" },
  { NULL }
};

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  reg = stsim_registry_new ();
  GError *e = NULL;
  if (!stsim_recipe_register_core_section ("fuzz", fuzz_specs, &e))
    abort ();
  dir = g_dir_make_tmp ("fuzz-recipe-XXXXXX", NULL);
  /* An include target that exists. */
  g_autofree char *inc = g_build_filename (dir, "inc.ini", NULL);
  g_file_set_contents (inc, "[fuzz]\ncount = 7\n", -1, NULL);
  return 0;
}

/* The text after the leading comment lines (which name the merged files). */
static const char *
skip_header (const char *t)
{
  while (*t == '#' || *t == '\n') {
    const char *nl = strchr (t, '\n');
    t = nl ? nl + 1 : t + strlen (t);
  }
  return t;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *path = g_build_filename (dir, "r.ini", NULL);
  GError *e = NULL;
  StsimRecipe *r = stsim_recipe_load_data (reg, (const char *) data, (gssize) size, path, NULL, "/data", &e);
  if (!r) {
    if (!e || e->domain != STSIM_ERROR || !e->message)
      __builtin_trap ();
    g_clear_error (&e);
    return 0;
  }
  /* The resolved text is a recipe too, and resolves to itself. */
  g_autofree char *text = stsim_recipe_to_string (r);
  StsimRecipe *again = stsim_recipe_load_data (reg, text, -1, path, NULL, "/data", &e);
  if (!again)
    __builtin_trap ();
  g_autofree char *text2 = stsim_recipe_to_string (again);
  if (strcmp (skip_header (text), skip_header (text2)) != 0)
    __builtin_trap ();
  stsim_recipe_free (again);
  stsim_recipe_free (r);
  return 0;
}
