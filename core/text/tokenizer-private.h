/* Internal: the two tokenizer algorithms implement this table; tokenizer.c
 * owns the public handle, special ids, batching and folder detection. */
#pragma once
#include "stsim/stsim-tokenizer.h"

typedef struct {
  /* Appends the content ids (no special tokens) of valid UTF-8 @text[0..len). */
  gboolean    (*encode_content) (gpointer impl, const char *text, gsize len, GArray *ids, GError **error);
  const char *(*id_to_token)    (gpointer impl, gint32 id);
  gint32      (*token_to_id)    (gpointer impl, const char *token);
  gint32      (*vocab_size)     (gpointer impl);
  void        (*free)           (gpointer impl);
} StsimTokenizerImpl;

struct _StsimTokenizer {
  StsimTokenizerKind        kind;
  const StsimTokenizerImpl *impl;
  gpointer                  impl_data;
  gint32 cls_id, sep_id, pad_id, mask_id, unk_id;
};

/* Constructors of the algorithms; they fill impl and impl_data only. */
gboolean stsim_wordpiece_init (StsimTokenizer *tok, const char *vocab_txt, gboolean lowercase, GError **error);
gboolean stsim_bpe_init       (StsimTokenizer *tok, const char *vocab_json, const char *merges_txt, GError **error);

/* bpe.c internals exposed for its tests: GPT-2's byte -> char alphabet, and
 * the pre-tokeniser alone (appends the end offset of each piece of valid
 * UTF-8 @text[0..len) to @ends, a GArray of gsize; special tokens not cut). */
gunichar stsim_bpe_byte_char   (guint8 byte);
void     stsim_bpe_pretokenize (const char *text, gsize len, GArray *ends);

/* wordpiece.c's normalisation and pre-tokenisation alone (BertNormalizer,
 * then BertPreTokenizer): calls @fn once per word of valid UTF-8
 * @text[0..len), in order, with its code points. The vocabulary trainer
 * counts these words, so it sees exactly what the tokenizer will split. */
typedef void (*StsimWordFunc) (const gunichar *word, gsize n, gpointer data);
void stsim_wordpiece_pretokenize (const char *text, gsize len, gboolean lowercase, StsimWordFunc fn, gpointer data);
