/* libFuzzer target: the byte-level BPE tokenizer on arbitrary bytes, with the
 * real roberta-base vocab.json + merges.txt ($STSIM_FUZZ_MODEL, a model
 * folder, else the data folder the build was configured with).
 *
 *   CC=clang meson setup build-fuzz -Dfuzzing=true && ninja -C build-fuzz tests/fuzz/fuzz-bpe
 *   build-fuzz/tests/fuzz/fuzz-bpe -max_total_time=600 -jobs=1 CORPUS_DIR tests/fuzz/seeds/bpe
 *
 * Beyond "no crash, no leak" it checks what must hold for every input:
 * encode succeeds exactly when the input is UTF-8 (U+0000 allowed); the ids
 * are <s> content </s> and in range; the content ids spell the input bytes
 * back through the GPT-2 byte alphabet; the pieces of the pre-tokeniser tile
 * the input; truncation keeps a prefix and the closing </s>; the cache gives
 * the same ids as a first encode. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "stsim/stsim-tokenizer.h"
#include "text/tokenizer-private.h"

static StsimTokenizer *tok;
static int char_to_byte[512];

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *dir = getenv ("STSIM_FUZZ_MODEL");
  if (!dir)
    dir = STSIM_FUZZ_DEFAULT_MODEL;
  g_autoptr(GError) err = NULL;
  tok = stsim_tokenizer_new_from_dir (dir, &err);
  if (!tok) {
    g_printerr ("fuzz-bpe: %s (set STSIM_FUZZ_MODEL to the roberta-base folder)\n", err->message);
    abort ();
  }
  for (int i = 0; i < 512; i++)
    char_to_byte[i] = -1;
  for (int b = 0; b < 256; b++)
    char_to_byte[stsim_bpe_byte_char ((guint8) b)] = b;
  return 0;
}

/* UTF-8 by GLib's validator, with NUL (valid U+0000, refused by GLib) masked. */
static gboolean
is_utf8 (const uint8_t *data, size_t size)
{
  g_autofree char *copy = g_memdup2 (data, size);
  for (size_t i = 0; i < size; i++)
    if (copy[i] == '\0')
      copy[i] = 'x';
  return g_utf8_validate_len (copy, size, NULL);
}

static void
check_spelling (const uint8_t *data, size_t size, const GArray *ids)
{
  g_autoptr(GByteArray) back = g_byte_array_sized_new ((guint) size);
  for (guint i = 0; i < ids->len; i++) {
    const char *t = stsim_tokenizer_id_to_token (tok, g_array_index (ids, gint32, i));
    g_assert_nonnull (t);
    for (const char *p = t; *p; p = g_utf8_next_char (p)) {
      gunichar c = g_utf8_get_char (p);
      g_assert_true (c < 512 && char_to_byte[c] >= 0);
      guint8 b = (guint8) char_to_byte[c];
      g_byte_array_append (back, &b, 1);
    }
  }
  g_assert_cmpmem (back->data, back->len, data, size);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *text = (const char *) data;
  gint32 vocab = stsim_tokenizer_vocab_size (tok);
  gboolean valid = is_utf8 (data, size);

  /* the public path: specials, layout */
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr(GError) err = NULL;
  gboolean ok = stsim_tokenizer_encode (tok, text, (gssize) size, 0, ids, &err);
  g_assert_true (ok == valid);
  if (!ok) {
    g_assert_error (err, STSIM_ERROR, STSIM_ERROR_ENCODING);
    g_assert_cmpuint (ids->len, ==, 0);
    return 0;
  }
  g_assert_cmpuint (ids->len, >=, 2);
  g_assert_cmpint (g_array_index (ids, gint32, 0), ==, stsim_tokenizer_cls_id (tok));
  g_assert_cmpint (g_array_index (ids, gint32, ids->len - 1), ==, stsim_tokenizer_sep_id (tok));
  for (guint i = 0; i < ids->len; i++)
    g_assert_true (g_array_index (ids, gint32, i) >= 0 && g_array_index (ids, gint32, i) < vocab);

  /* truncation keeps a prefix and </s> */
  int max_len = size > 0 ? 2 + data[0] % 24 : 2;
  g_autoptr(GArray) cut = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_assert_true (stsim_tokenizer_encode (tok, text, (gssize) size, max_len, cut, NULL));
  g_assert_cmpuint (cut->len, ==, MIN (ids->len, (guint) max_len));
  g_assert_cmpmem (cut->data, (cut->len - 1) * sizeof (gint32), ids->data, (cut->len - 1) * sizeof (gint32));
  g_assert_cmpint (g_array_index (cut, gint32, cut->len - 1), ==, stsim_tokenizer_sep_id (tok));

  /* the algorithm alone (no special-token cutting): content spells the input */
  g_autoptr(GArray) content = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_assert_true (tok->impl->encode_content (tok->impl_data, text, size, content, NULL));
  check_spelling (data, size, content);
  /* a second encode is served from the cache and must agree */
  g_autoptr(GArray) again = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_assert_true (tok->impl->encode_content (tok->impl_data, text, size, again, NULL));
  g_assert_cmpmem (again->data, again->len * sizeof (gint32), content->data, content->len * sizeof (gint32));

  /* pieces tile the input */
  g_autoptr(GArray) ends = g_array_new (FALSE, FALSE, sizeof (gsize));
  stsim_bpe_pretokenize (text, size, ends);
  gsize prev = 0;
  for (guint i = 0; i < ends->len; i++) {
    gsize e = g_array_index (ends, gsize, i);
    g_assert_cmpuint (e, >, prev);
    prev = e;
  }
  g_assert_cmpuint (prev, ==, size);
  return 0;
}

