/* wordpiece.c: BERT's basic tokenizer + WordPiece, id for id identical to
 * Hugging Face's BertTokenizerFast (method.md §2.1; docs/tokenizers.md).
 *
 * Pipeline, in the order of HF's Rust BertNormalizer / BertPreTokenizer /
 * WordPiece (which differs from the slow Python tokenizer in small ways that
 * docs/tokenizers.md lists):
 *   clean -> CJK spacing -> [uncased: NFD, drop Mn, lowercase]
 *   -> split on whitespace, isolate punctuation -> greedy longest match. */
#include <string.h>
#include "tokenizer-private.h"
#include "unicode.h"
#include "io/bounded.h"

/* HF's WordPiece default max_input_chars_per_word. */
#define WORDPIECE_MAX_CHARS 100

typedef struct {
  guint32 hash;
  guint32 len;   /* bytes of the token text; slot empty when id < 0 */
  guint32 off;   /* into pool */
  gint32  id;
} VocabSlot;

typedef struct {
  char      *pool;        /* every token, NUL-terminated, in id order */
  guint32   *offsets;     /* id -> offset in pool */
  gint32     n_tokens;
  VocabSlot *slots;
  guint32    mask;
  guint32    max_word_bytes;   /* longest token not starting with "##" */
  guint32    max_cont_bytes;   /* longest "##" token, without the prefix */
  gint32     unk_id;
  gboolean   lowercase;
} WordPiece;

static inline guint32
fnv1a (guint32 h, const char *s, gsize n)
{
  for (gsize i = 0; i < n; i++) {
    h ^= (guchar) s[i];
    h *= 16777619u;
  }
  return h;
}

#define FNV_SEED 2166136261u

/* Id of the token @prefix + s[0..n), or -1. No allocation: the hash runs
 * over the two parts and the comparison checks them in place. */
static gint32
vocab_lookup (const WordPiece *wp, const char *prefix, gsize plen, const char *s, gsize n)
{
  guint32 h = fnv1a (fnv1a (FNV_SEED, prefix, plen), s, n);
  for (guint32 i = h & wp->mask;; i = (i + 1) & wp->mask) {
    const VocabSlot *slot = &wp->slots[i];
    if (slot->id < 0)
      return -1;
    if (slot->hash == h && slot->len == plen + n) {
      const char *t = wp->pool + slot->off;
      if (memcmp (t, prefix, plen) == 0 && memcmp (t + plen, s, n) == 0)
        return slot->id;
    }
  }
}

static void
vocab_insert (WordPiece *wp, guint32 off, guint32 len, gint32 id)
{
  const char *t = wp->pool + off;
  guint32 h = fnv1a (FNV_SEED, t, len);
  for (guint32 i = h & wp->mask;; i = (i + 1) & wp->mask) {
    VocabSlot *slot = &wp->slots[i];
    if (slot->id < 0) {
      *slot = (VocabSlot) { .hash = h, .len = len, .off = off, .id = id };
      return;
    }
    if (slot->hash == h && slot->len == len && memcmp (wp->pool + slot->off, t, len) == 0) {
      /* A repeated line: the later id wins, as in HF (a map insert per line). */
      slot->id = id;
      return;
    }
  }
}

static void
wordpiece_free (gpointer impl)
{
  WordPiece *wp = impl;
  if (!wp)
    return;
  g_free (wp->pool);
  g_free (wp->offsets);
  g_free (wp->slots);
  g_free (wp);
}

/* ---- normalization and pre-tokenization -------------------------------- */

/* Per-call scratch: encode may run on several threads at once, so nothing
 * mutable lives in the shared WordPiece. */
typedef struct {
  GString *word;    /* UTF-8 of one pre-token */
  GArray  *bounds;  /* byte offset of every char boundary of word */
} Scratch;

static void
clean_and_space (const char *text, gsize len, GArray *out)
{
  const guchar *p = (const guchar *) text, *end = p + len;
  while (p < end) {
    gunichar c = stsim_utf8_next (&p);
    if (c == 0 || c == 0xFFFD || stsim_unichar_bert_is_control (c))
      continue;
    if (stsim_unichar_is_white_space (c)) {
      c = ' ';
      g_array_append_val (out, c);
    } else if (c >= 0x3400 && stsim_unichar_bert_is_chinese (c)) {
      gunichar sp = ' ';
      g_array_append_val (out, sp);
      g_array_append_val (out, c);
      g_array_append_val (out, sp);
    } else {
      g_array_append_val (out, c);
    }
  }
}

static void
strip_and_lower (GArray *chars, GArray *norm)
{
  stsim_unicode_nfd_strip_mn ((const gunichar *) chars->data, chars->len, norm);
  /* Lowercase in place unless a mapping grows the string (only U+0130,
   * which NFD has already split, so the slow path is practically unused). */
  gunichar *v = (gunichar *) norm->data;
  for (guint i = 0; i < norm->len; i++) {
    gunichar lo[2];
    int k = stsim_unichar_to_lower_full (v[i], lo);
    v[i] = lo[0];
    if (k == 2) {
      g_array_insert_val (norm, i + 1, lo[1]);
      v = (gunichar *) norm->data;
      i++;
    }
  }
}

/* WordPiece of one pre-token (code points w[0..n)): appends its ids. */
static void
wordpiece_word (const WordPiece *wp, const gunichar *w, gsize n, Scratch *sc, GArray *ids)
{
  if (n > WORDPIECE_MAX_CHARS) {
    g_array_append_val (ids, wp->unk_id);
    return;
  }
  g_string_truncate (sc->word, 0);
  g_array_set_size (sc->bounds, 0);
  for (gsize i = 0; i < n; i++) {
    guint32 b = (guint32) sc->word->len;
    g_array_append_val (sc->bounds, b);
    char buf[4];
    g_string_append_len (sc->word, buf, stsim_utf8_put (w[i], buf));
  }
  guint32 total = (guint32) sc->word->len;
  g_array_append_val (sc->bounds, total);

  const char *s = sc->word->str;
  const guint32 *bounds = (const guint32 *) sc->bounds->data;
  guint mark = ids->len;
  gsize si = 0;   /* index into bounds of the piece start */
  while (si < n) {
    guint32 start = bounds[si];
    guint32 limit = si == 0 ? wp->max_word_bytes : wp->max_cont_bytes;
    gint32 id = -1;
    gsize ei = n;
    /* Longest first: skip ends beyond the longest token in the vocab. */
    while (ei > si && bounds[ei] - start > limit)
      ei--;
    for (; ei > si; ei--) {
      id = si == 0 ? vocab_lookup (wp, "", 0, s + start, bounds[ei] - start)
                   : vocab_lookup (wp, "##", 2, s + start, bounds[ei] - start);
      if (id >= 0)
        break;
    }
    if (id < 0) {
      /* No piece fits: the whole word is [UNK]. */
      g_array_set_size (ids, mark);
      g_array_append_val (ids, wp->unk_id);
      return;
    }
    g_array_append_val (ids, id);
    si = ei;
  }
}

void
stsim_wordpiece_pretokenize (const char *text, gsize len, gboolean lowercase, StsimWordFunc fn, gpointer data)
{
  GArray *chars = g_array_sized_new (FALSE, FALSE, sizeof (gunichar), len + 8);
  GArray *norm = NULL;
  clean_and_space (text, len, chars);
  const GArray *src = chars;
  if (lowercase) {
    norm = g_array_sized_new (FALSE, FALSE, sizeof (gunichar), chars->len + 8);
    strip_and_lower (chars, norm);
    src = norm;
  }

  const gunichar *v = (const gunichar *) src->data;
  gsize n = src->len, i = 0;
  while (i < n) {
    gunichar c = v[i];
    if (c == ' ' || stsim_unichar_is_white_space (c)) {
      i++;
      continue;
    }
    if (stsim_unichar_bert_is_punct (c)) {
      fn (v + i, 1, data);
      i++;
      continue;
    }
    gsize j = i + 1;
    while (j < n && v[j] != ' ' && !stsim_unichar_is_white_space (v[j]) && !stsim_unichar_bert_is_punct (v[j]))
      j++;
    fn (v + i, j - i, data);
    i = j;
  }
  g_array_unref (chars);
  if (norm)
    g_array_unref (norm);
}

typedef struct {
  const WordPiece *wp;
  Scratch         *sc;
  GArray          *ids;
} EncodeCall;

static void
encode_word (const gunichar *w, gsize n, gpointer data)
{
  EncodeCall *call = data;
  wordpiece_word (call->wp, w, n, call->sc, call->ids);
}

static gboolean
wordpiece_encode_content (gpointer impl, const char *text, gsize len, GArray *ids, GError **error)
{
  const WordPiece *wp = impl;
  Scratch sc = {
    .word = g_string_sized_new (64),
    .bounds = g_array_sized_new (FALSE, FALSE, sizeof (guint32), 64),
  };
  EncodeCall call = { wp, &sc, ids };
  stsim_wordpiece_pretokenize (text, len, wp->lowercase, encode_word, &call);
  g_string_free (sc.word, TRUE);
  g_array_unref (sc.bounds);
  return TRUE;
}

static const char *
wordpiece_id_to_token (gpointer impl, gint32 id)
{
  const WordPiece *wp = impl;
  if (id < 0 || id >= wp->n_tokens)
    return NULL;
  return wp->pool + wp->offsets[id];
}

static gint32
wordpiece_token_to_id (gpointer impl, const char *token)
{
  return vocab_lookup (impl, "", 0, token, strlen (token));
}

static gint32
wordpiece_vocab_size (gpointer impl)
{
  return ((const WordPiece *) impl)->n_tokens;
}

static const StsimTokenizerImpl wordpiece_impl = {
  .encode_content = wordpiece_encode_content,
  .id_to_token = wordpiece_id_to_token,
  .token_to_id = wordpiece_token_to_id,
  .vocab_size = wordpiece_vocab_size,
  .free = wordpiece_free,
};

/* ---- loading ------------------------------------------------------------ */

/* Length of @s[0..n) without trailing White_Space (Rust's str::trim_end). */
static gsize
trim_end_len (const char *s, gsize n)
{
  while (n > 0) {
    gsize k = n - 1;
    while (k > 0 && ((guchar) s[k] & 0xC0) == 0x80)
      k--;
    const guchar *p = (const guchar *) s + k;
    if (!stsim_unichar_is_white_space (stsim_utf8_next (&p)))
      break;
    n = k;
  }
  return n;
}

gboolean
stsim_wordpiece_init (StsimTokenizer *tok, const char *vocab_txt, gboolean lowercase, GError **error)
{
  g_return_val_if_fail (tok != NULL, FALSE);
  g_return_val_if_fail (vocab_txt != NULL, FALSE);

  g_autofree char *contents = NULL;
  gsize size = 0;
  g_autoptr(GError) local = NULL;
  if (!stsim_file_get_contents (vocab_txt, STSIM_LIMIT_VOCAB, &contents, &size, &local)) {
    g_set_error (error, STSIM_ERROR, g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT)
                 ? STSIM_ERROR_NOT_FOUND : STSIM_ERROR_IO,
                 "%s: cannot read the WordPiece vocabulary: %s", vocab_txt, local->message);
    return FALSE;
  }
  if (size > G_MAXINT32 / 2) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s: %" G_GSIZE_FORMAT " bytes is too large for a vocab.txt",
                 vocab_txt, size);
    return FALSE;
  }

  /* Lines end at '\n' (a final line without one counts); each keeps its
   * text up to trailing whitespace, as HF's reader does ("\r\n" included). */
  gsize n_lines = 0;
  for (gsize i = 0; i < size; i++)
    if (contents[i] == '\n')
      n_lines++;
  if (size > 0 && contents[size - 1] != '\n')
    n_lines++;
  if (n_lines == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE,
                 "%s: the vocabulary is empty (expected one WordPiece token per line)", vocab_txt);
    return FALSE;
  }

  WordPiece *wp = g_new0 (WordPiece, 1);
  wp->lowercase = lowercase;
  wp->pool = g_malloc (size + 1);
  wp->offsets = g_new (guint32, n_lines);
  wp->n_tokens = (gint32) n_lines;
  guint32 cap = 16;
  while (cap < n_lines * 2)
    cap <<= 1;
  wp->slots = g_new (VocabSlot, cap);
  for (guint32 i = 0; i < cap; i++)
    wp->slots[i].id = -1;
  wp->mask = cap - 1;

  gsize pos = 0, pool_len = 0;
  for (gsize line = 0; line < n_lines; line++) {
    const char *s = contents + pos;
    const char *nl = memchr (s, '\n', size - pos);
    gsize n = nl ? (gsize) (nl - s) : size - pos;
    gsize bad = 0;
    if (!stsim_utf8_validate (s, n, &bad)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE,
                   "%s:%" G_GSIZE_FORMAT ": invalid UTF-8 at byte %" G_GSIZE_FORMAT " of the line "
                   "(a vocab.txt is UTF-8, one token per line)", vocab_txt, line + 1, bad + 1);
      wordpiece_free (wp);
      return FALSE;
    }
    n = trim_end_len (s, n);
    memcpy (wp->pool + pool_len, s, n);
    wp->pool[pool_len + n] = '\0';
    wp->offsets[line] = (guint32) pool_len;
    vocab_insert (wp, (guint32) pool_len, (guint32) n, (gint32) line);
    if (n >= 2 && s[0] == '#' && s[1] == '#')
      wp->max_cont_bytes = MAX (wp->max_cont_bytes, (guint32) n - 2);
    else
      wp->max_word_bytes = MAX (wp->max_word_bytes, (guint32) n);
    pool_len += n + 1;
    pos += (nl ? (gsize) (nl - s) + 1 : size - pos);
  }
  /* A "##x" token can also match a word start as a plain token ("##" + ...),
   * so the word limit must cover them too. */
  wp->max_word_bytes = MAX (wp->max_word_bytes, wp->max_cont_bytes + 2);

  wp->unk_id = vocab_lookup (wp, "", 0, "[UNK]", 5);
  if (wp->unk_id < 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE,
                 "%s: the vocabulary has no [UNK] token (is this a BERT vocab.txt?)", vocab_txt);
    wordpiece_free (wp);
    return FALSE;
  }

  tok->impl = &wordpiece_impl;
  tok->impl_data = wp;
  return TRUE;
}
