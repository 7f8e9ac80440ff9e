/* kind.c: component kind names. */
#include "stsim/stsim-plugin.h"

#include <string.h>

static const char *const kind_names[STSIM_KIND_N_KINDS] = {
  [STSIM_KIND_ENCODER] = "encoder",
  [STSIM_KIND_OBJECTIVE] = "objective",
  [STSIM_KIND_TEACHER] = "teacher",
  [STSIM_KIND_EVALUATOR] = "evaluator",
};

const char *
stsim_kind_name (StsimKind kind)
{
  return (guint) kind < STSIM_KIND_N_KINDS ? kind_names[kind] : "invalid";
}

gboolean
stsim_kind_from_name (const char *name, StsimKind *out)
{
  for (guint k = 0; name && k < STSIM_KIND_N_KINDS; k++)
    if (strcmp (name, kind_names[k]) == 0) {
      if (out)
        *out = (StsimKind) k;
      return TRUE;
    }
  return FALSE;
}
