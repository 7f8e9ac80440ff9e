/* libFuzzer target: the WordPiece tokenizer on arbitrary bytes, with the real
 * bert-base-uncased vocabulary ($STSIM_FUZZ_VOCAB, else the data folder the
 * build was configured with).
 * Checks: no crash; invalid UTF-8 is exactly what GLib also rejects (for
 * NUL-free input) and gives STSIM_ERROR_ENCODING; valid input gives
 * [CLS] ... [SEP] with every id in range; truncation respects max_len and
 * keeps a prefix of the untruncated ids; a batch row equals the single encode. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "stsim/stsim-tokenizer.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static StsimTokenizer *tok;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *vocab = getenv ("STSIM_FUZZ_VOCAB");
  if (!vocab)
    vocab = STSIM_FUZZ_DEFAULT_VOCAB;
  GError *err = NULL;
  tok = stsim_tokenizer_new_wordpiece (vocab, TRUE, &err);
  if (!tok) {
    g_printerr ("fuzz-wordpiece: %s (set STSIM_FUZZ_VOCAB)\n", err->message);
    abort ();
  }
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *text = (const char *) data;
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  GError *err = NULL;
  gboolean ok = stsim_tokenizer_encode (tok, text, (gssize) size, 0, ids, &err);
  gboolean has_nul = memchr (data, 0, size) != NULL;
  if (!has_nul && ok != g_utf8_validate_len (text, size, NULL))
    __builtin_trap ();
  if (!ok) {
    if (!g_error_matches (err, STSIM_ERROR, STSIM_ERROR_ENCODING) || ids->len != 0)
      __builtin_trap ();
    g_clear_error (&err);
    g_array_unref (ids);
    return 0;
  }
  gint32 n_vocab = stsim_tokenizer_vocab_size (tok);
  const gint32 *v = (const gint32 *) ids->data;
  if (ids->len < 2 || v[0] != stsim_tokenizer_cls_id (tok) || v[ids->len - 1] != stsim_tokenizer_sep_id (tok))
    __builtin_trap ();
  for (guint i = 0; i < ids->len; i++)
    if (v[i] < 0 || v[i] >= n_vocab)
      __builtin_trap ();

  int max_len = 2 + (size ? data[0] % 16 : 0);
  GArray *cut = g_array_new (FALSE, FALSE, sizeof (gint32));
  if (!stsim_tokenizer_encode (tok, text, (gssize) size, max_len, cut, &err))
    __builtin_trap ();
  guint want = MIN (ids->len, (guint) max_len);
  if (cut->len != want || memcmp (cut->data, ids->data, (want - 1) * sizeof (gint32)) != 0 ||
      g_array_index (cut, gint32, want - 1) != stsim_tokenizer_sep_id (tok))
    __builtin_trap ();

  if (!has_nul) {
    char *copy = g_strndup (text, size);
    const char *texts[2] = { copy, "" };
    StsimTokenBatch b;
    if (!stsim_tokenizer_encode_batch (tok, texts, 2, 0, &b, &err))
      __builtin_trap ();
    if (b.width != ids->len || (gsize) b.lengths[0] != ids->len || b.lengths[1] != 2 ||
        memcmp (b.ids, ids->data, ids->len * sizeof (gint32)) != 0)
      __builtin_trap ();
    stsim_token_batch_clear (&b);
    g_free (copy);
  }
  g_array_unref (cut);
  g_array_unref (ids);
  return 0;
}
