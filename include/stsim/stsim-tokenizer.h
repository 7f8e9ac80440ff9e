/* stsim-tokenizer.h: text -> token ids, identical to Hugging Face's tokenizers.
 *
 * Two algorithms behind one handle: BERT uncased WordPiece (vocab.txt) and
 * GPT-2/RoBERTa byte-level BPE (vocab.json + merges.txt); method.md §2.
 *
 *   g_autoptr(StsimTokenizer) tok = stsim_tokenizer_new_from_dir ("models/mini", &err);
 *   g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
 *   stsim_tokenizer_encode (tok, "Hello, world!", -1, 0, ids, &err);
 *   // ids = 101 7592 1010 2088 999 102
 *
 * Input must be valid UTF-8: invalid input is an STSIM_ERROR_ENCODING error
 * (callers add the file and line), never a crash and never silently altered.
 */
#pragma once
#include <glib.h>
#include "stsim-export.h"
#include "stsim-error.h"

G_BEGIN_DECLS

typedef struct _StsimTokenizer StsimTokenizer;

typedef enum {
  STSIM_TOKENIZER_WORDPIECE,  /* BERT */
  STSIM_TOKENIZER_BPE,        /* RoBERTa / GPT-2 byte level */
} StsimTokenizerKind;

/* vocab.txt of a BERT model; @lowercase TRUE for uncased models. */
STSIM_API
StsimTokenizer *stsim_tokenizer_new_wordpiece (const char *vocab_txt, gboolean lowercase, GError **error);
/* vocab.json + merges.txt of a RoBERTa/GPT-2 model. */
STSIM_API
StsimTokenizer *stsim_tokenizer_new_bpe       (const char *vocab_json, const char *merges_txt, GError **error);
/* A model folder: vocab.json + merges.txt -> BPE, else vocab.txt -> WordPiece
 * (lowercase unless tokenizer_config.json says do_lower_case false). */
STSIM_API
StsimTokenizer *stsim_tokenizer_new_from_dir  (const char *dir, GError **error);
STSIM_API
void            stsim_tokenizer_free          (StsimTokenizer *tok);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimTokenizer, stsim_tokenizer_free)

STSIM_API
StsimTokenizerKind stsim_tokenizer_get_kind (const StsimTokenizer *tok);
STSIM_API
gint32 stsim_tokenizer_vocab_size (const StsimTokenizer *tok);
/* Special ids: BERT [CLS] [SEP] [PAD] [MASK] [UNK]; RoBERTa <s> </s> <pad> <mask> <unk>. */
STSIM_API
gint32 stsim_tokenizer_cls_id  (const StsimTokenizer *tok);
STSIM_API
gint32 stsim_tokenizer_sep_id  (const StsimTokenizer *tok);
STSIM_API
gint32 stsim_tokenizer_pad_id  (const StsimTokenizer *tok);
STSIM_API
gint32 stsim_tokenizer_mask_id (const StsimTokenizer *tok);
STSIM_API
gint32 stsim_tokenizer_unk_id  (const StsimTokenizer *tok);
/* TRUE for the ids HF lists in all_special_ids (never masked in training). */
STSIM_API
gboolean stsim_tokenizer_is_special (const StsimTokenizer *tok, gint32 id);
/* Token text of @id (NULL when out of range) and id of a token text (-1 when absent). */
STSIM_API
const char *stsim_tokenizer_id_to_token (const StsimTokenizer *tok, gint32 id);
STSIM_API
gint32      stsim_tokenizer_token_to_id (const StsimTokenizer *tok, const char *token);

/* Appends the ids of one sentence, special tokens included, to @ids (gint32).
 * @len < 0: NUL-terminated. @max_len > 0 truncates the content so that the
 * result has at most max_len ids and still ends with the closing special
 * token; @max_len <= 0: no truncation. On error @ids is unchanged. */
STSIM_API
gboolean stsim_tokenizer_encode (StsimTokenizer *tok, const char *text, gssize len,
                                 int max_len, GArray *ids, GError **error);

/* A right-padded batch: ids[n * width] and mask[n * width] (1 real, 0 pad),
 * width = the longest row; lengths[n] = real tokens per row. */
typedef struct {
  gsize   n, width;
  gint32 *ids;
  gint32 *mask;
  gint32 *lengths;
} StsimTokenBatch;

STSIM_API
gboolean stsim_tokenizer_encode_batch (StsimTokenizer *tok, const char *const *texts, gsize n,
                                       int max_len, StsimTokenBatch *out, GError **error);
STSIM_API
void     stsim_token_batch_clear (StsimTokenBatch *batch);

G_END_DECLS
