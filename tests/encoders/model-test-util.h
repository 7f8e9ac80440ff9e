/* model-test-util.h: helpers of the encoder tests: fixture paths, reading
 * reference tensors, and comparisons that print their max difference. */
#pragma once
#include <math.h>
#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "stsim/stsim-model.h"
#include "stsim/stsim-safetensors.h"

/* Tolerance of every parity check: |got - ref| <= 1e-4 * max(1, max|ref|)
 * per tensor (tests/reference/README.md: a real bug gives 1e-2 .. 1). */
#define PARITY_TOL 1e-4

static inline char *
fixture_dir (const char *name)
{
  return g_test_build_filename (G_TEST_DIST, "fixtures", "models", name, NULL);
}

static inline StsimSafetensors *
open_reference (const char *name)
{
  g_autofree char *dir = fixture_dir (name);
  g_autofree char *path = g_build_filename (dir, "reference.safetensors", NULL);
  g_autoptr(GError) error = NULL;
  StsimSafetensors *st = stsim_safetensors_open (path, &error);
  g_assert_no_error (error);
  return st;
}

static inline float *
ref_f32 (StsimSafetensors *st, const char *name, gint64 *numel)
{
  const StsimTensorInfo *info = stsim_safetensors_get_info (st, name);
  if (info == NULL)
    g_error ("reference tensor %s missing", name);
  float *x = g_new (float, MAX (info->n_elements, 1));
  g_autoptr(GError) error = NULL;
  stsim_safetensors_read_f32 (st, name, info->shape, info->n_dims, x, &error);
  g_assert_no_error (error);
  if (numel)
    *numel = (gint64) info->n_elements;
  return x;
}

/* The padded batch of a fixture: ids and mask [B, L], lengths from the mask. */
static inline void
ref_batch (StsimSafetensors *st, StsimTokenBatch *b)
{
  const StsimTensorInfo *info = stsim_safetensors_get_info (st, "input_ids");
  g_assert_nonnull (info);
  g_assert_cmpuint (info->n_dims, ==, 2);
  gsize B = (gsize) info->shape[0], L = (gsize) info->shape[1];
  g_autofree gint64 *ids = g_new (gint64, B * L);
  g_autofree gint64 *mask = g_new (gint64, B * L);
  g_autoptr(GError) error = NULL;
  stsim_safetensors_read_i64 (st, "input_ids", info->shape, 2, ids, &error);
  g_assert_no_error (error);
  stsim_safetensors_read_i64 (st, "attention_mask", info->shape, 2, mask, &error);
  g_assert_no_error (error);
  b->n = B;
  b->width = L;
  b->ids = g_new (gint32, B * L);
  b->mask = g_new (gint32, B * L);
  b->lengths = g_new0 (gint32, B);
  for (gsize i = 0; i < B * L; i++) {
    b->ids[i] = (gint32) ids[i];
    b->mask[i] = (gint32) mask[i];
    b->lengths[i / L] += (gint32) mask[i];
  }
}

static inline void
batch_free (StsimTokenBatch *b)
{
  g_free (b->ids);
  g_free (b->mask);
  g_free (b->lengths);
  memset (b, 0, sizeof *b);
}

static inline double
max_abs (const float *x, gint64 n)
{
  double m = 0;
  for (gint64 i = 0; i < n; i++)
    m = MAX (m, fabs ((double) x[i]));
  return m;
}

/* Max |got - ref|, printed with the tensor's scale; asserts the tolerance. */
static inline double
check_close (const char *what, const float *got, const float *ref, gint64 n)
{
  double d = 0, scale = max_abs (ref, n);
  for (gint64 i = 0; i < n; i++) {
    double e = fabs ((double) got[i] - (double) ref[i]);
    if (!(e <= d))  /* NaN counts as infinitely wrong */
      d = isnan (e) ? INFINITY : e;
  }
  g_test_message ("%-58s max|diff| %.3e  max|ref| %.3e  diff/max(1,max|ref|) %.2e",
                  what, d, scale, d / MAX (1.0, scale));
  if (!(d <= PARITY_TOL * MAX (1.0, scale)))
    g_error ("%s: max|diff| %.3e exceeds %.1e * max(1, %.3e)", what, d, PARITY_TOL, scale);
  return d;
}

/* A fresh temporary folder (removed by rm_tree). */
static inline char *
make_tmp_dir (void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp ("stsim-model-test-XXXXXX", &error);
  g_assert_no_error (error);
  return dir;
}

static inline void
rm_tree (const char *path)
{
  GStatBuf st;
  if (g_lstat (path, &st) != 0)
    return;
  if (S_ISDIR (st.st_mode)) {
    GDir *d = g_dir_open (path, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name (d)) != NULL) {
      g_autofree char *child = g_build_filename (path, name, NULL);
      rm_tree (child);
    }
    if (d)
      g_dir_close (d);
    g_rmdir (path);
  } else {
    g_unlink (path);
  }
}

static inline void
copy_file (const char *from, const char *to)
{
  g_autofree char *data = NULL;
  gsize len;
  g_autoptr(GError) error = NULL;
  g_file_get_contents (from, &data, &len, &error);
  g_assert_no_error (error);
  g_file_set_contents (to, data, (gssize) len, &error);
  g_assert_no_error (error);
}

/* Copies every regular file of @from into the new folder @to. */
static inline void
copy_dir (const char *from, const char *to)
{
  g_assert_cmpint (g_mkdir_with_parents (to, 0755), ==, 0);
  GDir *d = g_dir_open (from, 0, NULL);
  g_assert_nonnull (d);
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL) {
    g_autofree char *a = g_build_filename (from, name, NULL);
    g_autofree char *b = g_build_filename (to, name, NULL);
    copy_file (a, b);
  }
  g_dir_close (d);
}
