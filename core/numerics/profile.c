/* profile.c: the opt-in op profile of numerics-profile.h. */
#include <string.h>
#include "numerics-profile.h"

#define MAX_ENTRIES 64

gboolean stsim_profile_on = FALSE;
static StsimProfEntry entries[MAX_ENTRIES];
static gsize n_entries;

void
stsim_profile_set_enabled (gboolean enabled)
{
  stsim_profile_on = enabled;
}

void
stsim_profile_reset (void)
{
  memset (entries, 0, sizeof entries);
  n_entries = 0;
}

void
stsim_profile_add (const char *name, double seconds, double flops)
{
  gsize i;
  for (i = 0; i < n_entries; i++)
    if (entries[i].name == name || strcmp (entries[i].name, name) == 0)
      break;
  if (i == n_entries) {
    if (n_entries == MAX_ENTRIES)
      return;   /* full: later names are dropped, never a crash */
    entries[n_entries++].name = name;
  }
  entries[i].seconds += seconds;
  entries[i].flops += flops;
  entries[i].calls++;
}

gsize
stsim_profile_get (StsimProfEntry *out, gsize max)
{
  if (out)
    memcpy (out, entries, MIN (max, n_entries) * sizeof (StsimProfEntry));
  return n_entries;
}
