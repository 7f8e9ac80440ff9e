/* libFuzzer target: the corpus readers (core/train/corpus.c) on an
 * arbitrary file: one sentence per line (first byte even) or the
 * sent0,sent1,hard_neg CSV of supervised SimCSE (odd).
 * Checks: no crash; a loaded corpus has at least one example, every text is
 * NUL-terminated valid UTF-8 without a line break (line files) and names
 * a line inside the file; failures are GErrors in STSIM_ERROR. */
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include "stsim/stsim-train.h"
#include "fuzz-util.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static char *dir;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  dir = g_dir_make_tmp ("fuzz-corpus-XXXXXX", NULL);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  gboolean csv = data[0] & 1;
  g_autofree char *path = g_build_filename (dir, csv ? "pairs.csv" : "corpus.txt", NULL);
  if (!fuzz_write_all (path, data + 1, size - 1))
    return 0;
  GError *e = NULL;
  static const char *const cols[] = { "sent0", "sent1", "hard_neg", NULL };
  const char *const paths[] = { path, NULL };
  StsimCorpus *c = csv ? stsim_corpus_load_csv (path, cols, &e) : stsim_corpus_load_lines (paths, &e);
  if (!c) {
    if (!e || e->domain != STSIM_ERROR || !e->message)
      __builtin_trap ();
    g_clear_error (&e);
    return 0;
  }
  gsize n = stsim_corpus_get_n (c);
  if (n == 0 || n > size)
    __builtin_trap ();
  for (gsize i = 0; i < n; i++)
    for (guint v = 0; v < (csv ? 3u : 1u); v++) {
      const char *t = stsim_corpus_get_text (c, i, v);
      if (!t || !g_utf8_validate (t, -1, NULL) || (!csv && strchr (t, '\n')))
        __builtin_trap ();
    }
  stsim_corpus_free (c);
  return 0;
}
