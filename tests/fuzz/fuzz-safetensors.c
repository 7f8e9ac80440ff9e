/* libFuzzer target: the safetensors reader on arbitrary bytes.
 * Every input must either open and read back cleanly or fail with a GError;
 * ASan/UBSan catch any out-of-bounds access or undefined behaviour. */
#include <stdint.h>
#include <string.h>
#include "stsim/stsim-safetensors.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GBytes *bytes = g_bytes_new_static (data, size);
  GError *err = NULL;
  StsimSafetensors *st = stsim_safetensors_open_bytes (bytes, "fuzz", &err);
  if ((st == NULL) == (err == NULL))
    __builtin_trap ();
  if (st) {
    gsize n = 0;
    const char *const *names = stsim_safetensors_list (st, &n);
    guint64 total = 0;
    for (gsize i = 0; i < n; i++) {
      const StsimTensorInfo *t = stsim_safetensors_get_info (st, names[i]);
      if (!t || t->offset + t->n_bytes > size)
        __builtin_trap ();
      total += t->n_bytes;
      /* n_bytes <= size was validated, so these allocations are bounded. */
      float *f = g_new (float, t->n_elements + 1);
      if (!stsim_safetensors_read_f32 (st, t->name, t->shape, t->n_dims, f, &err))
        g_clear_error (&err);
      gint64 *v = g_new (gint64, t->n_elements + 1);
      if (!stsim_safetensors_read_i64 (st, t->name, t->shape, t->n_dims, v, &err))
        g_clear_error (&err);
      g_free (f);
      g_free (v);
      gsize nb = 0;
      if (!stsim_safetensors_get_data (st, t->name, &nb, NULL) || nb != t->n_bytes)
        __builtin_trap ();
    }
    if (total > size)
      __builtin_trap ();
    gsize nk = 0;
    const char *const *keys = stsim_safetensors_metadata_keys (st, &nk);
    for (gsize i = 0; i < nk; i++)
      if (!stsim_safetensors_get_metadata (st, keys[i]))
        __builtin_trap ();
    stsim_safetensors_free (st);
  }
  g_clear_error (&err);
  g_bytes_unref (bytes);
  return 0;
}
