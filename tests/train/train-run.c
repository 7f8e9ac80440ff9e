/* train-run: a test driver of stsim_trainer_run() that does not depend on
 * stsim-run: RECIPE [--resume] [--stop-after-steps K] [--quiet]
 * [--set S.K=V]... Exit 0 on success, 1 with the error on stderr. */
#include <stdlib.h>

#include "stsim/stsim.h"
#include "stsim/stsim-recipe.h"
#include "stsim/stsim-registry.h"
#include "stsim/stsim-train.h"

int
main (int argc, char **argv)
{
  gboolean resume = FALSE, quiet = FALSE;
  gint64 stop = 0;
  char **sets = NULL;
  GOptionEntry entries[] = {
    { "resume", 0, 0, G_OPTION_ARG_NONE, &resume, "resume", NULL },
    { "quiet", 0, 0, G_OPTION_ARG_NONE, &quiet, "quiet", NULL },
    { "stop-after-steps", 0, 0, G_OPTION_ARG_INT64, &stop, "simulated kill", "K" },
    { "set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &sets, "override", "S.K=V" },
    { NULL }
  };
  g_autoptr(GOptionContext) oc = g_option_context_new ("RECIPE");
  g_autoptr(GError) error = NULL;
  g_option_context_add_main_entries (oc, entries, NULL);
  if (!g_option_context_parse (oc, &argc, &argv, &error) || argc != 2) {
    g_printerr ("usage: train-run RECIPE [--resume] [--stop-after-steps K] [--set S.K=V]\n");
    return 2;
  }
  g_autoptr(StsimRegistry) reg = stsim_registry_new ();
  stsim_registry_scan_default (reg);
  g_autoptr(StsimRecipe) recipe = stsim_recipe_load (reg, argv[1], (const char *const *) sets, NULL, &error);
  g_strfreev (sets);
  if (!recipe) {
    g_printerr ("%s\n", error->message);
    return 1;
  }
  g_autoptr(StsimContext) ctx = stsim_recipe_new_context (recipe);
  StsimTrainOptions opts = STSIM_TRAIN_OPTIONS_INIT;
  opts.resume = resume;
  opts.quiet = quiet;
  opts.stop_after_steps = stop;
  if (!stsim_recipe_instantiate (recipe, ctx, &error) || !stsim_trainer_run (recipe, ctx, &opts, &error)) {
    g_printerr ("%s\n", error->message);
    return 1;
  }
  return 0;
}
