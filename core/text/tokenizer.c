/* tokenizer.c: the public StsimTokenizer handle (stsim-tokenizer.h).
 *
 * Owns what both algorithms share: special ids, the literal special tokens
 * in the text, the [CLS] ... [SEP] / <s> ... </s> layout, truncation,
 * batching with right padding, and model-folder detection. The algorithms
 * (wordpiece.c, bpe.c) only turn plain text into content ids.
 *
 * Thread safety: after construction a tokenizer is read-only; encode and
 * encode_batch may run concurrently on one handle. */
#include <string.h>
#include <json-glib/json-glib.h>
#include "tokenizer-private.h"
#include "unicode.h"
#include "io/bounded.h"

/* The tokens HF registers as special added tokens (all_special_tokens).
 * They are matched on the raw text before normalization (normalized=false),
 * leftmost-longest, so "[MASK]" typed in a sentence is the mask id while
 * "[mask]" is plain text. RoBERTa's <mask> also swallows the whitespace on
 * its left (AddedToken(lstrip=True) in RobertaTokenizer). */
typedef struct {
  const char *text;
  gboolean    lstrip, rstrip;
} SpecialToken;

static const SpecialToken wordpiece_specials[] = {
  { "[PAD]" }, { "[UNK]" }, { "[CLS]" }, { "[SEP]" }, { "[MASK]" },
};
static const SpecialToken bpe_specials[] = {
  { "<s>" }, { "<pad>" }, { "</s>" }, { "<unk>" }, { "<mask>", .lstrip = TRUE },
};
#define N_SPECIALS 5

static const SpecialToken *
specials_of (const StsimTokenizer *tok)
{
  return tok->kind == STSIM_TOKENIZER_BPE ? bpe_specials : wordpiece_specials;
}

static gboolean
resolve_specials (StsimTokenizer *tok, const char *what, GError **error)
{
  const SpecialToken *sp = specials_of (tok);
  gint32 ids[N_SPECIALS];
  for (int i = 0; i < N_SPECIALS; i++) {
    ids[i] = tok->impl->token_to_id (tok->impl_data, sp[i].text);
    if (ids[i] < 0) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE,
                   "%s: the vocabulary has no special token %s (a %s vocabulary has %s %s %s %s %s)",
                   what, sp[i].text, tok->kind == STSIM_TOKENIZER_BPE ? "RoBERTa" : "BERT",
                   sp[0].text, sp[1].text, sp[2].text, sp[3].text, sp[4].text);
      return FALSE;
    }
  }
  if (tok->kind == STSIM_TOKENIZER_BPE) {
    tok->cls_id = ids[0]; tok->pad_id = ids[1]; tok->sep_id = ids[2]; tok->unk_id = ids[3]; tok->mask_id = ids[4];
  } else {
    tok->pad_id = ids[0]; tok->unk_id = ids[1]; tok->cls_id = ids[2]; tok->sep_id = ids[3]; tok->mask_id = ids[4];
  }
  return TRUE;
}

StsimTokenizer *
stsim_tokenizer_new_wordpiece (const char *vocab_txt, gboolean lowercase, GError **error)
{
  g_return_val_if_fail (vocab_txt != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  StsimTokenizer *tok = g_new0 (StsimTokenizer, 1);
  tok->kind = STSIM_TOKENIZER_WORDPIECE;
  if (!stsim_wordpiece_init (tok, vocab_txt, lowercase, error) || !resolve_specials (tok, vocab_txt, error)) {
    stsim_tokenizer_free (tok);
    return NULL;
  }
  return tok;
}

StsimTokenizer *
stsim_tokenizer_new_bpe (const char *vocab_json, const char *merges_txt, GError **error)
{
  g_return_val_if_fail (vocab_json != NULL && merges_txt != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  StsimTokenizer *tok = g_new0 (StsimTokenizer, 1);
  tok->kind = STSIM_TOKENIZER_BPE;
  if (!stsim_bpe_init (tok, vocab_json, merges_txt, error) || !resolve_specials (tok, vocab_json, error)) {
    stsim_tokenizer_free (tok);
    return NULL;
  }
  return tok;
}

/* tokenizer_config.json of a BERT folder: do_lower_case (default true). The
 * keys that would ask for behaviour we do not implement are refused. */
static gboolean
read_bert_config (const char *path, gboolean *lowercase, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local = NULL;
  if (!stsim_json_load_file (parser, path, STSIM_LIMIT_JSON, &local)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s: not valid JSON: %s", path, local->message);
    return FALSE;
  }
  JsonNode *root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s: expected a JSON object", path);
    return FALSE;
  }
  JsonObject *obj = json_node_get_object (root);
  JsonNode *n = json_object_get_member (obj, "do_lower_case");
  if (n && !JSON_NODE_HOLDS_NULL (n)) {
    if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE,
                   "%s: \"do_lower_case\" must be true or false", path);
      return FALSE;
    }
    *lowercase = json_node_get_boolean (n);
  }
  n = json_object_get_member (obj, "strip_accents");
  if (n && !JSON_NODE_HOLDS_NULL (n)) {
    if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s: \"strip_accents\" must be true, false or null", path);
      return FALSE;
    }
    if (json_node_get_boolean (n) != *lowercase) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED,
                   "%s: \"strip_accents\": %s differs from \"do_lower_case\"; only accent stripping that follows "
                   "lowercasing is supported (remove the key or set it to null)",
                   path, json_node_get_boolean (n) ? "true" : "false");
      return FALSE;
    }
  }
  n = json_object_get_member (obj, "tokenize_chinese_chars");
  if (n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_BOOLEAN && !json_node_get_boolean (n)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED,
                 "%s: \"tokenize_chinese_chars\": false is not supported (CJK characters are always split)", path);
    return FALSE;
  }
  return TRUE;
}

StsimTokenizer *
stsim_tokenizer_new_from_dir (const char *dir, GError **error)
{
  g_return_val_if_fail (dir != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "%s: no such folder (expected a model folder with "
                 "vocab.txt, or vocab.json and merges.txt)", dir);
    return NULL;
  }
  g_autofree char *vocab_json = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (dir, "merges.txt", NULL);
  g_autofree char *vocab_txt = g_build_filename (dir, "vocab.txt", NULL);
  gboolean has_json = g_file_test (vocab_json, G_FILE_TEST_EXISTS);
  gboolean has_merges = g_file_test (merges, G_FILE_TEST_EXISTS);
  gboolean has_txt = g_file_test (vocab_txt, G_FILE_TEST_EXISTS);

  if (has_json && has_merges)
    return stsim_tokenizer_new_bpe (vocab_json, merges, error);
  if (has_txt) {
    gboolean lowercase = TRUE;
    g_autofree char *config = g_build_filename (dir, "tokenizer_config.json", NULL);
    if (g_file_test (config, G_FILE_TEST_EXISTS) && !read_bert_config (config, &lowercase, error))
      return NULL;
    return stsim_tokenizer_new_wordpiece (vocab_txt, lowercase, error);
  }
  if (has_json != has_merges) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "%s: has %s but no %s (a BPE tokenizer needs both)",
                 dir, has_json ? "vocab.json" : "merges.txt", has_json ? "merges.txt" : "vocab.json");
    return NULL;
  }
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND,
               "%s: no tokenizer files (expected vocab.txt for WordPiece, or vocab.json and merges.txt for BPE)", dir);
  return NULL;
}

void
stsim_tokenizer_free (StsimTokenizer *tok)
{
  if (!tok)
    return;
  if (tok->impl && tok->impl->free)
    tok->impl->free (tok->impl_data);
  g_free (tok);
}

StsimTokenizerKind
stsim_tokenizer_get_kind (const StsimTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, STSIM_TOKENIZER_WORDPIECE);
  return tok->kind;
}

gint32
stsim_tokenizer_vocab_size (const StsimTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, 0);
  return tok->impl->vocab_size (tok->impl_data);
}

gint32 stsim_tokenizer_cls_id  (const StsimTokenizer *tok) { g_return_val_if_fail (tok, -1); return tok->cls_id; }
gint32 stsim_tokenizer_sep_id  (const StsimTokenizer *tok) { g_return_val_if_fail (tok, -1); return tok->sep_id; }
gint32 stsim_tokenizer_pad_id  (const StsimTokenizer *tok) { g_return_val_if_fail (tok, -1); return tok->pad_id; }
gint32 stsim_tokenizer_mask_id (const StsimTokenizer *tok) { g_return_val_if_fail (tok, -1); return tok->mask_id; }
gint32 stsim_tokenizer_unk_id  (const StsimTokenizer *tok) { g_return_val_if_fail (tok, -1); return tok->unk_id; }

gboolean
stsim_tokenizer_is_special (const StsimTokenizer *tok, gint32 id)
{
  g_return_val_if_fail (tok != NULL, FALSE);
  return id >= 0 && (id == tok->cls_id || id == tok->sep_id || id == tok->pad_id ||
                     id == tok->mask_id || id == tok->unk_id);
}

const char *
stsim_tokenizer_id_to_token (const StsimTokenizer *tok, gint32 id)
{
  g_return_val_if_fail (tok != NULL, NULL);
  return tok->impl->id_to_token (tok->impl_data, id);
}

gint32
stsim_tokenizer_token_to_id (const StsimTokenizer *tok, const char *token)
{
  g_return_val_if_fail (tok != NULL, -1);
  g_return_val_if_fail (token != NULL, -1);
  return tok->impl->token_to_id (tok->impl_data, token);
}

/* Byte length of the White_Space run that ends at s[end) (not before @floor). */
static gsize
space_run_before (const char *s, gsize floor, gsize end)
{
  gsize p = end;
  while (p > floor) {
    gsize k = p - 1;
    while (k > floor && ((guchar) s[k] & 0xC0) == 0x80)
      k--;
    const guchar *q = (const guchar *) s + k;
    if (!stsim_unichar_is_white_space (stsim_utf8_next (&q)))
      break;
    p = k;
  }
  return end - p;
}

static gsize
space_run_after (const char *s, gsize start, gsize len)
{
  const guchar *p = (const guchar *) s + start, *end = (const guchar *) s + len;
  while (p < end) {
    const guchar *q = p;
    if (!stsim_unichar_is_white_space (stsim_utf8_next (&q)))
      break;
    p = q;
  }
  return (gsize) (p - ((const guchar *) s + start));
}

/* Content ids of valid UTF-8 @text: the literal special tokens become their
 * ids, the text between them goes through the algorithm. */
static gboolean
encode_content (StsimTokenizer *tok, const char *text, gsize len, GArray *ids, GError **error)
{
  const SpecialToken *sp = specials_of (tok);
  gint32 sp_ids[N_SPECIALS];
  gsize sp_len[N_SPECIALS];
  gboolean first[256] = { FALSE };
  for (int k = 0; k < N_SPECIALS; k++) {
    sp_ids[k] = tok->impl->token_to_id (tok->impl_data, sp[k].text);
    sp_len[k] = strlen (sp[k].text);
    first[(guchar) sp[k].text[0]] = TRUE;
  }

  gsize seg = 0;  /* start of the text not yet encoded */
  gsize i = 0;
  while (i < len) {
    if (!first[(guchar) text[i]]) {
      i++;
      continue;
    }
    int best = -1;
    for (int k = 0; k < N_SPECIALS; k++)
      if (sp_ids[k] >= 0 && len - i >= sp_len[k] && memcmp (text + i, sp[k].text, sp_len[k]) == 0 &&
          (best < 0 || sp_len[k] > sp_len[best]))
        best = k;
    if (best < 0) {
      i++;
      continue;
    }
    gsize start = i, stop = i + sp_len[best];
    if (sp[best].lstrip)
      start -= space_run_before (text, seg, start);
    if (sp[best].rstrip)
      stop += space_run_after (text, stop, len);
    if (start > seg && !tok->impl->encode_content (tok->impl_data, text + seg, start - seg, ids, error))
      return FALSE;
    g_array_append_val (ids, sp_ids[best]);
    seg = i = stop;
  }
  if (seg < len && !tok->impl->encode_content (tok->impl_data, text + seg, len - seg, ids, error))
    return FALSE;
  return TRUE;
}

gboolean
stsim_tokenizer_encode (StsimTokenizer *tok, const char *text, gssize len,
                        int max_len, GArray *ids, GError **error)
{
  g_return_val_if_fail (tok != NULL, FALSE);
  g_return_val_if_fail (text != NULL || len == 0, FALSE);
  g_return_val_if_fail (ids != NULL && g_array_get_element_size (ids) == sizeof (gint32), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  gsize n = len < 0 ? strlen (text) : (gsize) len;
  if (max_len == 1) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "max_len 1 cannot hold the two special tokens (use 2 or more, or 0 for no truncation)");
    return FALSE;
  }
  gsize bad = 0;
  if (!stsim_utf8_validate (text, n, &bad)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_ENCODING,
                 "invalid UTF-8 at byte %" G_GSIZE_FORMAT " (convert the text to UTF-8, e.g. with iconv)", bad + 1);
    return FALSE;
  }

  guint mark = ids->len;
  g_array_append_val (ids, tok->cls_id);
  if (!encode_content (tok, text, n, ids, error)) {
    g_array_set_size (ids, mark);
    return FALSE;
  }
  /* Truncation drops content ids from the end (HF's "longest_first" on one
   * sequence), keeping room for the closing token. */
  if (max_len > 0 && ids->len - mark + 1 > (guint) max_len)
    g_array_set_size (ids, mark + (guint) max_len - 1);
  g_array_append_val (ids, tok->sep_id);
  return TRUE;
}

gboolean
stsim_tokenizer_encode_batch (StsimTokenizer *tok, const char *const *texts, gsize n,
                              int max_len, StsimTokenBatch *out, GError **error)
{
  g_return_val_if_fail (tok != NULL, FALSE);
  g_return_val_if_fail (texts != NULL || n == 0, FALSE);
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  memset (out, 0, sizeof *out);
  g_autoptr(GArray) all = g_array_sized_new (FALSE, FALSE, sizeof (gint32), n * 16 + 1);
  g_autofree gsize *start = g_new (gsize, n + 1);
  gsize width = 0;
  for (gsize i = 0; i < n; i++) {
    start[i] = all->len;
    if (texts[i] == NULL) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "text %" G_GSIZE_FORMAT " of the batch is NULL", i + 1);
      return FALSE;
    }
    if (!stsim_tokenizer_encode (tok, texts[i], -1, max_len, all, error)) {
      g_prefix_error (error, "text %" G_GSIZE_FORMAT " of the batch: ", i + 1);
      return FALSE;
    }
    width = MAX (width, all->len - start[i]);
  }
  start[n] = all->len;

  out->n = n;
  out->width = width;
  if (n == 0)
    return TRUE;
  out->ids = g_new (gint32, n * width);
  out->mask = g_new0 (gint32, n * width);
  out->lengths = g_new (gint32, n);
  const gint32 *src = (const gint32 *) all->data;
  for (gsize i = 0; i < n; i++) {
    gsize k = start[i + 1] - start[i];
    gint32 *row = out->ids + i * width;
    memcpy (row, src + start[i], k * sizeof (gint32));
    for (gsize j = k; j < width; j++)
      row[j] = tok->pad_id;
    for (gsize j = 0; j < k; j++)
      out->mask[i * width + j] = 1;
    out->lengths[i] = (gint32) k;
  }
  return TRUE;
}

void
stsim_token_batch_clear (StsimTokenBatch *batch)
{
  if (!batch)
    return;
  g_free (batch->ids);
  g_free (batch->mask);
  g_free (batch->lengths);
  memset (batch, 0, sizeof *batch);
}
