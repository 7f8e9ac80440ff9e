/* test-util-model.h: helpers for test programs that link libstsim (not
 * part of libstsim; test-util.h has the ones that need GLib only). */
#pragma once

#include <glib.h>

/* Copies the safetensors file @src to @dst (tensors as F32 or I64), passing
 * each F32 tensor through @edit (may be NULL) and setting metadata
 * @meta_key to @meta_value (when @meta_key is not NULL). */
typedef void (*StsimTestTensorEdit) (const char *name, float *x, gsize n);
void stsim_test_rewrite_safetensors (const char *src, const char *dst, StsimTestTensorEdit edit,
                                     const char *meta_key, const char *meta_value);

/* Copies the model folder @from into the new folder @to with every word
 * embedding set to 3e38: finite weights (loading accepts them) on which
 * the encoder overflows to NaN. Aborts the test on failure. */
void stsim_test_make_overflowing_model (const char *from, const char *to);
