/* train-private.h: internals of core/train shared with its tests. */
#pragma once
#include <glib.h>
#include "stsim/stsim-train.h"
#include "stsim/stsim-safetensors.h"

G_BEGIN_DECLS

/* Writes @contents to @path atomically (g_file_set_contents) with an
 * STSIM_ERROR_IO naming the file. (state.c) */
gboolean stsim_train_write_file (const char *path, const char *contents, gssize len, GError **error);
/* Block @name of @st, exactly @n floats of F32 (a converted dtype would not
 * resume bit-identically), into @dst. Errors name the file. (state.c) */
gboolean stsim_train_read_block (StsimSafetensors *st, const char *name, float *dst, gint64 n, GError **error);

G_END_DECLS
