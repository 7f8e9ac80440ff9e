/* dist-run: the test driver of data-parallel runs (docs/distributed.md):
 * RECIPE [--resume] [--stop-after-steps K] [--set S.K=V]... [--quiet]
 *        [--kill-rank R] [--error-rank R]
 * Runs under mpirun or alone (one rank). With --kill-rank R, rank R stops
 * after K steps and kills itself with SIGKILL (a crashed machine, as far as
 * the others can tell); with --error-rank R it stops after K steps with an
 * error, as stsim-run does on a failure (message, then the whole job stops).
 * The other ranks run on and must be stopped by the launcher. Exit 0 on
 * success, 1 with the error on stderr. */
#include <signal.h>
#include <stdlib.h>

#include "stsim/stsim.h"
#include "stsim/stsim-recipe.h"
#include "stsim/stsim-registry.h"
#include "stsim/stsim-train.h"
#include "stsim/stsim-dist.h"

static int
fail (const char *what, const GError *error)
{
  g_printerr ("dist-run: %s%s: %s\n", stsim_dist_prefix (), what, error->message);
  stsim_dist_abort (1);
  return 1;
}

int
main (int argc, char **argv)
{
  gboolean resume = FALSE, quiet = FALSE;
  gint64 stop = 0;
  int kill_rank = -1, error_rank = -1;
  char **sets = NULL;
  GOptionEntry entries[] = {
    { "resume", 0, 0, G_OPTION_ARG_NONE, &resume, "resume", NULL },
    { "quiet", 0, 0, G_OPTION_ARG_NONE, &quiet, "quiet", NULL },
    { "stop-after-steps", 0, 0, G_OPTION_ARG_INT64, &stop, "simulated kill (every rank, or --kill-rank's)", "K" },
    { "kill-rank", 0, 0, G_OPTION_ARG_INT, &kill_rank, "this rank SIGKILLs itself after K steps", "R" },
    { "error-rank", 0, 0, G_OPTION_ARG_INT, &error_rank, "this rank fails after K steps", "R" },
    { "set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &sets, "override", "S.K=V" },
    { NULL }
  };
  g_set_prgname ("dist-run");
  g_autoptr(GError) error = NULL;
  if (!stsim_dist_init (&argc, &argv, &error)) {
    g_printerr ("dist-run: %s\n", error->message);
    return 1;
  }
  g_autoptr(GOptionContext) oc = g_option_context_new ("RECIPE");
  g_option_context_add_main_entries (oc, entries, NULL);
  if (!g_option_context_parse (oc, &argc, &argv, &error) || argc != 2) {
    g_printerr ("usage: dist-run RECIPE [--resume] [--stop-after-steps K] [--kill-rank R] [--error-rank R] "
                "[--set S.K=V]\n");
    stsim_dist_abort (2);
    return 2;
  }
  const int rank = stsim_dist_rank ();
  const gboolean victim = rank == kill_rank || rank == error_rank;
  g_autoptr(StsimRegistry) reg = stsim_registry_new ();
  stsim_registry_scan_default (reg);
  g_autoptr(StsimRecipe) recipe = stsim_recipe_load (reg, argv[1], (const char *const *) sets, NULL, &error);
  g_strfreev (sets);
  if (!recipe)
    return fail ("recipe", error);
  g_autoptr(StsimContext) ctx = stsim_recipe_new_context (recipe);
  StsimTrainOptions opts = STSIM_TRAIN_OPTIONS_INIT;
  opts.resume = resume;
  opts.quiet = quiet;
  /* With a victim rank only the victim stops early. */
  opts.stop_after_steps = (kill_rank < 0 && error_rank < 0) || victim ? stop : 0;
  if (!stsim_recipe_instantiate (recipe, ctx, &error) || !stsim_trainer_run (recipe, ctx, &opts, &error))
    return fail ("training", error);
  if (rank == kill_rank)
    raise (SIGKILL);
  if (rank == error_rank) {
    g_set_error (&error, STSIM_ERROR, STSIM_ERROR_FAILED, "simulated failure after %" G_GINT64_FORMAT " steps", stop);
    return fail ("training", error);
  }
  stsim_dist_finalize ();
  return 0;
}
