/* curves.h: the trainer's side of the training curves (internal); the
 * drawing itself is public, stsim/stsim-curves.h. */
#pragma once
#include <glib.h>
#include "stsim/stsim-curves.h"

G_BEGIN_DECLS

/* The trainer's hook: redraws @out_dir/curves.svg from @out_dir/metrics.jsonl.
 * Drawing is a by-product of a run, never a reason to fail it, so a failure is
 * a warning on stderr. */
void     stsim_curves_update    (const char *out_dir, const char *title);

G_END_DECLS
