/* st-tool: a test helper for cross-check.py.
 *   st-tool dump FILE    every tensor in data order: "name dtype [shape]" then
 *                        the fp32 bits of its elements in hex, or "unsupported"
 *   st-tool write FILE   writes the fixed tensors cross-check.py expects */
#include <stdio.h>
#include <string.h>
#include "stsim/stsim-safetensors.h"

static int
dump (const char *path)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimSafetensors) st = stsim_safetensors_open (path, &err);
  if (!st) {
    fprintf (stderr, "%s\n", err->message);
    return 1;
  }
  gsize n = 0;
  const char *const *names = stsim_safetensors_list (st, &n);
  for (gsize i = 0; i < n; i++) {
    const StsimTensorInfo *t = stsim_safetensors_get_info (st, names[i]);
    printf ("%s %s [", t->name, stsim_dtype_name (t->dtype));
    for (guint d = 0; d < t->n_dims; d++)
      printf ("%s%" G_GINT64_FORMAT, d ? "," : "", t->shape[d]);
    printf ("]");
    if (!stsim_dtype_readable_as_f32 (t->dtype)) {
      printf (" unsupported\n");
      continue;
    }
    float *v = g_new (float, t->n_elements ? t->n_elements : 1);
    if (!stsim_safetensors_read_f32 (st, t->name, t->shape, t->n_dims, v, &err)) {
      fprintf (stderr, "%s\n", err->message);
      return 1;
    }
    for (guint64 k = 0; k < t->n_elements; k++) {
      guint32 bits;
      memcpy (&bits, &v[k], 4);
      printf (" %08x", bits);
    }
    printf ("\n");
    g_free (v);
  }
  gsize nk = 0;
  const char *const *keys = stsim_safetensors_metadata_keys (st, &nk);
  for (gsize i = 0; i < nk; i++)
    printf ("meta %s=%s\n", keys[i], stsim_safetensors_get_metadata (st, keys[i]));
  return 0;
}

static int
write_demo (const char *path)
{
  /* w[i] = i * 0.25 - 1 (exact in fp32), emb = fixed bit patterns, ids = i * 1e12 - 5 */
  float w[15], emb[8];
  gint64 ids[4];
  for (int i = 0; i < 15; i++)
    w[i] = i * 0.25f - 1.0f;
  const guint32 eb[8] = { 0x7FC00000, 0x80000000, 0x7F800000, 0x00000001, 0xFF800000, 0x3F800000, 0x12345678,
                          0xDEADBEEF };
  memcpy (emb, eb, sizeof emb);
  for (int i = 0; i < 4; i++)
    ids[i] = (gint64) i * 1000000000000LL - 5;
  const gint64 sw[2] = { 3, 5 }, se[3] = { 2, 2, 2 }, si[1] = { 4 };
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimSafetensorsWriter) wr = stsim_safetensors_writer_new ();
  if (!stsim_safetensors_writer_set_metadata (wr, "format", "pt", &err) ||
      !stsim_safetensors_writer_set_metadata (wr, "note", "quote \" backslash \\ newline \n tab \t é", &err) ||
      !stsim_safetensors_writer_add_f32 (wr, "w", sw, 2, w, &err) ||
      !stsim_safetensors_writer_add_f32 (wr, "emb", se, 3, emb, &err) ||
      !stsim_safetensors_writer_add_i64 (wr, "ids", si, 1, ids, &err) ||
      !stsim_safetensors_writer_write (wr, path, &err)) {
    fprintf (stderr, "%s\n", err->message);
    return 1;
  }
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc == 3 && strcmp (argv[1], "dump") == 0)
    return dump (argv[2]);
  if (argc == 3 && strcmp (argv[1], "write") == 0)
    return write_demo (argv[2]);
  fprintf (stderr, "usage: st-tool (dump|write) FILE\n");
  return 2;
}
