/* stsim-profile.h: an opt-in wall-clock profile of the numerics ops, for
 * stsim-bench --profile (what bounds a workload).
 *
 * Ops run one after another on the calling thread (threads live inside an
 * op), so the counters are plain globals. Off by default: a disabled probe
 * is one load and one branch. Entries are keyed by static name strings. */
#pragma once
#include <glib.h>
#include <time.h>
#include "stsim-export.h"

G_BEGIN_DECLS

typedef struct {
  const char *name;
  double      seconds;
  double      flops;    /* GEMM work (2·M·N·K) the entry did, or 0 */
  guint64     calls;
} StsimProfEntry;

/* Read by STSIM_PROF_BEGIN/END; set it with stsim_profile_set_enabled(). */
STSIM_API
extern gboolean stsim_profile_on;

STSIM_API
void  stsim_profile_set_enabled (gboolean enabled);
STSIM_API
void  stsim_profile_reset (void);
STSIM_API
void  stsim_profile_add (const char *name, double seconds, double flops);
/* Copies up to @max entries (in first-use order); returns how many exist. */
STSIM_API
gsize stsim_profile_get (StsimProfEntry *out, gsize max);

static inline double
stsim_prof_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

#define STSIM_PROF_BEGIN(var) double var = stsim_profile_on ? stsim_prof_now () : 0.0
#define STSIM_PROF_END(var, name, flops) \
  do { if (stsim_profile_on) stsim_profile_add ((name), stsim_prof_now () - (var), (flops)); } while (0)

G_END_DECLS
