/* fuzz-util.h: helpers shared by the fuzz targets that go through files. */
#pragma once
#include <stdio.h>
#include <glib.h>

/* Plain write: g_file_set_contents syncs to disk, which costs most of a run. */
static inline gboolean
fuzz_write_all (const char *path, const void *data, gsize len)
{
  FILE *f = fopen (path, "wb");
  if (!f)
    return FALSE;
  gboolean ok = fwrite (data, 1, len, f) == len;
  return fclose (f) == 0 && ok;
}
