/* Helpers for test programs that link libstsim: rewritten safetensors
 * files and model folders built at test time. */
#include "test-util-model.h"

#include <string.h>
#include <glib/gstdio.h>
#include "stsim/stsim-safetensors.h"

void
stsim_test_rewrite_safetensors (const char *src, const char *dst, StsimTestTensorEdit edit, const char *meta_key,
                                const char *meta_value)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimSafetensors) st = stsim_safetensors_open (src, &error);
  g_assert_no_error (error);
  g_autoptr(StsimSafetensorsWriter) w = stsim_safetensors_writer_new ();
  gsize n = 0;
  const char *const *names = stsim_safetensors_list (st, &n);
  g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func (g_free);
  for (gsize i = 0; i < n; i++) {
    const StsimTensorInfo *info = stsim_safetensors_get_info (st, names[i]);
    gsize numel = 0;
    if (info->dtype == STSIM_DTYPE_I64 || info->dtype == STSIM_DTYPE_I32) {
      gint64 *ids = stsim_safetensors_dup_i64 (st, names[i], &numel, &error);
      g_assert_no_error (error);
      g_ptr_array_add (keep, ids);
      g_assert_true (stsim_safetensors_writer_add_i64 (w, names[i], info->shape, info->n_dims, ids, &error));
      continue;
    }
    float *x = stsim_safetensors_dup_f32 (st, names[i], &numel, &error);
    g_assert_no_error (error);
    if (edit)
      edit (names[i], x, numel);
    g_ptr_array_add (keep, x);
    g_assert_true (stsim_safetensors_writer_add_f32 (w, names[i], info->shape, info->n_dims, x, &error));
  }
  gsize nk = 0;
  const char *const *keys = stsim_safetensors_metadata_keys (st, &nk);
  for (gsize i = 0; i < nk; i++)
    g_assert_true (stsim_safetensors_writer_set_metadata (w, keys[i], stsim_safetensors_get_metadata (st, keys[i]),
                                                          &error));
  if (meta_key)
    g_assert_true (stsim_safetensors_writer_set_metadata (w, meta_key, meta_value, &error));
  g_assert_true (stsim_safetensors_writer_write (w, dst, &error));
}

static void
overflow_word_embeddings (const char *name, float *x, gsize n)
{
  if (g_str_has_suffix (name, "word_embeddings.weight"))
    for (gsize j = 0; j < n; j++)
      x[j] = 3e38f;  /* one sign: any summation order overflows (alternating signs may cancel) */
}

void
stsim_test_make_overflowing_model (const char *from, const char *to)
{
  g_autoptr(GError) error = NULL;
  g_assert_cmpint (g_mkdir_with_parents (to, 0755), ==, 0);
  g_autoptr(GDir) d = g_dir_open (from, 0, &error);
  g_assert_no_error (error);
  const char *name;
  while ((name = g_dir_read_name (d))) {
    g_autofree char *a = g_build_filename (from, name, NULL);
    g_autofree char *b = g_build_filename (to, name, NULL);
    g_autofree char *data = NULL;
    gsize len = 0;
    if (strcmp (name, "model.safetensors") == 0 || !g_file_get_contents (a, &data, &len, NULL))
      continue;
    g_assert_true (g_file_set_contents (b, data, (gssize) len, &error));
  }
  g_autofree char *src = g_build_filename (from, "model.safetensors", NULL);
  g_autofree char *dst = g_build_filename (to, "model.safetensors", NULL);
  stsim_test_rewrite_safetensors (src, dst, overflow_word_embeddings, NULL, NULL);
}
