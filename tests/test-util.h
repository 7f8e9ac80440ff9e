/* test-util.h: helpers shared by the test programs (not part of libstsim). */
#pragma once

#include <glib.h>

/* Removes @path: a file, or a folder with everything under it. Symbolic
 * links are removed, never followed. Errors are ignored: tests call it to
 * clean up their own temporary folders. */
void stsim_test_remove_tree (const char *path);

/* Copies the safetensors file @src to @dst (tensors as F32 or I64), passing
 * each F32 tensor through @edit (may be NULL) and setting metadata
 * @meta_key to @meta_value (when @meta_key is not NULL). */
typedef void (*StsimTestTensorEdit) (const char *name, float *x, gsize n);
void stsim_test_rewrite_safetensors (const char *src, const char *dst, StsimTestTensorEdit edit,
                                     const char *meta_key, const char *meta_value);

/* Copies the model folder @from into the new folder @to with every word
 * embedding set to +-3e38: finite weights (loading accepts them) on which
 * the encoder overflows to NaN. Aborts the test on failure. */
void stsim_test_make_overflowing_model (const char *from, const char *to);
