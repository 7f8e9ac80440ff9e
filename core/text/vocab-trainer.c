/* vocab-trainer.c: WordPiece and byte-level BPE vocabularies trained from a
 * corpus, step for step as Hugging Face's BpeTrainer (which WordPieceTrainer
 * wraps with a "##" continuation prefix). docs/tokenizers.md lists the facts
 * this reproduces and the few places where it differs on purpose.
 *
 *   1. count words: each line (with its '\n') is normalised and
 *      pre-tokenised by the tokenizer's own code (wordpiece.c, bpe.c);
 *   2. ids: special tokens, then the alphabet in code point order (BPE: the
 *      256 byte symbols), then (WordPiece) the "##c" continuations;
 *   3. merge: repeatedly the most frequent adjacent pair, ties to the
 *      smallest (left id, right id); a queue of candidates whose counts are
 *      refreshed lazily, exactly HF's loop, until vocab_size tokens exist,
 *      no pair is left, or the best pair is below min_frequency. */
#include <errno.h>
#include <string.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "stsim/stsim-vocab.h"
#include "tokenizer-private.h"
#include "unicode.h"
#include "io/bounded.h"

typedef struct {
  guint32 off, len;   /* symbols[off .. off + len) */
  guint64 count;
} Word;

/* One (pair, word) occurrence; sorted to group the words of each pair. */
typedef struct {
  guint64 pair;
  guint32 word;
} PairWord;

/* A queue entry: a pair, its count when queued, the words that hold it. */
typedef struct {
  guint64  count;
  guint64  pair;
  guint32 *pos;
  guint32  n_pos;
} Merge;

/* pair -> count, open addressing (HF's pair_counts). */
typedef struct {
  guint64 *keys;
  gint64  *vals;
  gsize    mask, used;
} PairMap;
#define PAIR_EMPTY G_MAXUINT64

struct _StsimVocabTrainer {
  StsimVocabOptions opt;
  char      **specials;        /* owned copies */
  char      **cont_order;
  GHashTable *counts;          /* word (UTF-8; BPE: raw bytes) -> guint64* count */
  guint64     n_lines;
  /* training */
  GPtrArray  *id_to_word;      /* char* */
  GHashTable *word_to_id;      /* char* (owned by id_to_word) -> id + 1 */
  guint       n_initial;
  GArray     *merges;          /* guint64 pair, in order */
  gboolean    trained;
};

void
stsim_vocab_options_init (StsimVocabOptions *o, StsimVocabKind kind, gint64 vocab_size)
{
  g_return_if_fail (o != NULL);
  memset (o, 0, sizeof *o);
  o->kind = kind;
  o->vocab_size = vocab_size;
  o->byte_alphabet = TRUE;
}

static const char *const wordpiece_specials[] = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", NULL };
static const char *const bpe_specials[] = { "<s>", "<pad>", "</s>", "<unk>", "<mask>", NULL };

StsimVocabTrainer *
stsim_vocab_trainer_new (const StsimVocabOptions *options)
{
  g_return_val_if_fail (options != NULL, NULL);
  StsimVocabTrainer *t = g_new0 (StsimVocabTrainer, 1);
  t->opt = *options;
  const char *const *sp = options->special_tokens;
  if (sp == NULL)
    sp = options->kind == STSIM_VOCAB_WORDPIECE ? wordpiece_specials : bpe_specials;
  t->specials = g_strdupv ((char **) sp);
  t->cont_order = options->continuation_order ? g_strdupv ((char **) options->continuation_order) : NULL;
  t->opt.special_tokens = NULL;
  t->opt.continuation_order = NULL;
  t->counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  t->id_to_word = g_ptr_array_new_with_free_func (g_free);
  t->word_to_id = g_hash_table_new (g_str_hash, g_str_equal);
  t->merges = g_array_new (FALSE, FALSE, sizeof (guint64));
  return t;
}

void
stsim_vocab_trainer_free (StsimVocabTrainer *t)
{
  if (t == NULL)
    return;
  g_strfreev (t->specials);
  g_strfreev (t->cont_order);
  g_hash_table_unref (t->counts);
  g_hash_table_unref (t->word_to_id);
  g_ptr_array_unref (t->id_to_word);
  g_array_unref (t->merges);
  g_free (t);
}

/* ---- 1. counting words ------------------------------------------------- */

static void
count_word (StsimVocabTrainer *t, const char *w, gsize n)
{
  g_autofree char *key = g_strndup (w, n);
  guint64 *c = g_hash_table_lookup (t->counts, key);
  if (c == NULL) {
    c = g_new0 (guint64, 1);
    g_hash_table_insert (t->counts, g_steal_pointer (&key), c);
  }
  (*c)++;
}

static void
count_wordpiece_word (const gunichar *w, gsize n, gpointer data)
{
  char buf[400];
  GString *s = NULL;
  gsize len = 0;
  if (n * 4 <= sizeof buf) {
    for (gsize i = 0; i < n; i++)
      len += (gsize) stsim_utf8_put (w[i], buf + len);
    count_word (data, buf, len);
    return;
  }
  s = g_string_sized_new (n * 4);
  for (gsize i = 0; i < n; i++) {
    char c[4];
    g_string_append_len (s, c, stsim_utf8_put (w[i], c));
  }
  count_word (data, s->str, s->len);
  g_string_free (s, TRUE);
}

/* One line of valid UTF-8, '\n' included when the file had it. */
static void
count_line (StsimVocabTrainer *t, const char *line, gsize len, GArray *ends)
{
  if (t->opt.kind == STSIM_VOCAB_WORDPIECE) {
    stsim_wordpiece_pretokenize (line, len, t->opt.lowercase, count_wordpiece_word, t);
    return;
  }
  /* BPE pieces are counted by their raw bytes: the byte alphabet maps them
   * one to one, so the mapping can wait until training. */
  g_array_set_size (ends, 0);
  stsim_bpe_pretokenize (line, len, ends);
  gsize start = 0;
  for (guint i = 0; i < ends->len; i++) {
    gsize end = g_array_index (ends, gsize, i);
    count_word (t, line + start, end - start);
    start = end;
  }
}

gboolean
stsim_vocab_trainer_add_text (StsimVocabTrainer *t, const char *text, gsize len, const char *name, GError **error)
{
  g_return_val_if_fail (t != NULL && (text != NULL || len == 0), FALSE);
  g_return_val_if_fail (!t->trained, FALSE);
  g_autoptr(GArray) ends = g_array_new (FALSE, FALSE, sizeof (gsize));
  guint64 line_no = 0;
  for (gsize pos = 0; pos < len; line_no++) {
    const char *nl = memchr (text + pos, '\n', len - pos);
    gsize end = nl ? (gsize) (nl - text) + 1 : len;
    const char *line = text + pos;
    gsize n = end - pos;
    const char *nul = memchr (line, '\0', n);
    if (nul != NULL) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA,
                   "%s:%" G_GUINT64_FORMAT ": a NUL byte at byte %" G_GSIZE_FORMAT " of the line: this looks like "
                   "a binary file, not a text corpus (one UTF-8 sentence per line)",
                   name, line_no + 1, (gsize) (nul - line) + 1);
      return FALSE;
    }
    gsize bad = 0;
    if (!stsim_utf8_validate (line, n, &bad)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_ENCODING,
                   "%s:%" G_GUINT64_FORMAT ": invalid UTF-8 at byte %" G_GSIZE_FORMAT " of the line "
                   "(a corpus must be UTF-8 text; convert it, e.g. with iconv)", name, line_no + 1, bad + 1);
      return FALSE;
    }
    count_line (t, line, n, ends);
    pos = end;
    /* Every 1024 lines; the caller decides how often to show it. */
    if (t->opt.progress && (line_no & 1023) == 1023 && pos < len)
      t->opt.progress ("read", pos, len, t->opt.progress_data);
  }
  t->n_lines += line_no;
  if (t->opt.progress)
    t->opt.progress ("read", len, len, t->opt.progress_data);
  return TRUE;
}

gboolean
stsim_vocab_trainer_add_file (StsimVocabTrainer *t, const char *path, GError **error)
{
  g_return_val_if_fail (t != NULL && path != NULL, FALSE);
  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s: is a folder, not a corpus file", path);
    return FALSE;
  }
  /* Mapping a FIFO blocks and a device is no corpus: regular files only. */
  if (g_file_test (path, G_FILE_TEST_EXISTS) && !g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "%s: not a regular file (a device, FIFO or socket)", path);
    return FALSE;
  }
  g_autoptr(GError) local = NULL;
  g_autoptr(GMappedFile) map = g_mapped_file_new (path, FALSE, &local);
  if (map == NULL) {
    g_set_error (error, STSIM_ERROR, g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT)
                 ? STSIM_ERROR_NOT_FOUND : STSIM_ERROR_IO, "%s: cannot read the corpus file: %s", path, local->message);
    return FALSE;
  }
  return stsim_vocab_trainer_add_text (t, g_mapped_file_get_contents (map), g_mapped_file_get_length (map),
                                       path, error);
}

guint
stsim_vocab_trainer_n_words (StsimVocabTrainer *t)
{
  g_return_val_if_fail (t != NULL, 0);
  return g_hash_table_size (t->counts);
}

/* ---- pair map ------------------------------------------------------------ */

static void
pair_map_init (PairMap *m, gsize want)
{
  gsize cap = 1024;
  while (cap < want * 2)
    cap <<= 1;
  m->keys = g_new (guint64, cap);
  m->vals = g_new0 (gint64, cap);
  memset (m->keys, 0xff, cap * sizeof (guint64));
  m->mask = cap - 1;
  m->used = 0;
}

static void
pair_map_clear (PairMap *m)
{
  g_free (m->keys);
  g_free (m->vals);
}

static inline gsize
pair_slot (guint64 key, gsize mask)
{
  return (gsize) ((key * G_GUINT64_CONSTANT (0x9E3779B97F4A7C15)) >> 29) & mask;
}

static gint64 *pair_map_ref (PairMap *m, guint64 key);

static void
pair_map_grow (PairMap *m)
{
  PairMap old = *m;
  pair_map_init (m, (old.mask + 1));
  for (gsize i = 0; i <= old.mask; i++)
    if (old.keys[i] != PAIR_EMPTY)
      *pair_map_ref (m, old.keys[i]) = old.vals[i];
  pair_map_clear (&old);
}

/* The count of @key, inserted as 0 when new. */
static gint64 *
pair_map_ref (PairMap *m, guint64 key)
{
  if ((m->used + 1) * 2 > m->mask + 1)
    pair_map_grow (m);
  gsize i = pair_slot (key, m->mask);
  while (m->keys[i] != PAIR_EMPTY && m->keys[i] != key)
    i = (i + 1) & m->mask;
  if (m->keys[i] == PAIR_EMPTY) {
    m->keys[i] = key;
    m->vals[i] = 0;
    m->used++;
  }
  return &m->vals[i];
}

static inline guint64
pair_key (guint32 a, guint32 b)
{
  return ((guint64) a << 32) | b;
}

/* ---- the merge queue: count descending, then pair ascending -------------- */

static inline gboolean
merge_before (const Merge *x, const Merge *y)
{
  return x->count > y->count || (x->count == y->count && x->pair < y->pair);
}

static void
queue_push (GArray *q, Merge m)
{
  g_array_append_val (q, m);
  Merge *h = (Merge *) q->data;
  gsize i = q->len - 1;
  while (i > 0) {
    gsize parent = (i - 1) / 2;
    if (!merge_before (&m, &h[parent]))
      break;
    h[i] = h[parent];
    i = parent;
  }
  h[i] = m;
}

static Merge
queue_pop (GArray *q)
{
  Merge *h = (Merge *) q->data;
  Merge top = h[0], last = h[q->len - 1];
  gsize n = q->len - 1, i = 0;
  for (;;) {
    gsize l = 2 * i + 1, r = l + 1, m = i;
    const Merge *best = &last;
    if (l < n && merge_before (&h[l], best)) {
      m = l;
      best = &h[l];
    }
    if (r < n && merge_before (&h[r], best))
      m = r;
    if (m == i)
      break;
    h[i] = h[m];
    i = m;
  }
  if (n > 0)
    h[i] = last;
  g_array_set_size (q, n);
  return top;
}

static int
pair_word_cmp (gconstpointer a, gconstpointer b)
{
  const PairWord *x = a, *y = b;
  if (x->pair != y->pair)
    return x->pair < y->pair ? -1 : 1;
  return (x->word > y->word) - (x->word < y->word);
}

/* Sorts (pair, word) occurrences and queues each pair with its distinct
 * words and current count, if positive (HF's where_to_update drain). */
static void
queue_groups (GArray *q, GArray *occ, PairMap *counts)
{
  g_array_sort (occ, pair_word_cmp);
  const PairWord *o = (const PairWord *) occ->data;
  for (guint i = 0; i < occ->len;) {
    guint j = i;
    while (j < occ->len && o[j].pair == o[i].pair)
      j++;
    gint64 c = *pair_map_ref (counts, o[i].pair);
    if (c > 0) {
      Merge m = { (guint64) c, o[i].pair, g_new (guint32, j - i), 0 };
      for (guint k = i; k < j; k++)
        if (m.n_pos == 0 || m.pos[m.n_pos - 1] != o[k].word)
          m.pos[m.n_pos++] = o[k].word;
      queue_push (q, m);
    }
    i = j;
  }
  g_array_set_size (occ, 0);
}

/* ---- 2. ids: specials, alphabet, continuations ---------------------------- */

static guint32
token_add (StsimVocabTrainer *t, const char *s)
{
  gpointer v = g_hash_table_lookup (t->word_to_id, s);
  if (v != NULL)
    return GPOINTER_TO_UINT (v) - 1;
  char *copy = g_strdup (s);
  g_ptr_array_add (t->id_to_word, copy);
  g_hash_table_insert (t->word_to_id, copy, GUINT_TO_POINTER (t->id_to_word->len));
  return t->id_to_word->len - 1;
}

static gint32
token_lookup (StsimVocabTrainer *t, const char *s)
{
  gpointer v = g_hash_table_lookup (t->word_to_id, s);
  return v ? (gint32) GPOINTER_TO_UINT (v) - 1 : -1;
}

/* The characters of a counted word: code points (WordPiece) or byte symbols (BPE). */
static void
word_chars (StsimVocabTrainer *t, const char *w, GArray *out)
{
  g_array_set_size (out, 0);
  const guchar *p = (const guchar *) w;
  while (*p) {
    gunichar c = t->opt.kind == STSIM_VOCAB_BPE ? stsim_bpe_byte_char (*p++) : stsim_utf8_next (&p);
    g_array_append_val (out, c);
  }
}

typedef struct {
  gunichar c;
  guint64  count;
} CharCount;

static int
char_by_count (gconstpointer a, gconstpointer b)
{
  /* Fewest first; among equals the higher code point goes first (HF's
   * unstable sort leaves this open). */
  const CharCount *x = a, *y = b;
  if (x->count != y->count)
    return x->count < y->count ? -1 : 1;
  return (y->c > x->c) - (y->c < x->c);
}

static int
char_by_code (gconstpointer a, gconstpointer b)
{
  const CharCount *x = a, *y = b;
  return (x->c > y->c) - (x->c < y->c);
}

static void
add_char_count (GHashTable *index, GArray *chars, gunichar c, guint64 n)
{
  gpointer v = g_hash_table_lookup (index, GUINT_TO_POINTER (c));
  if (v == NULL) {
    CharCount cc = { c, 0 };
    g_array_append_val (chars, cc);
    g_hash_table_insert (index, GUINT_TO_POINTER (c), GUINT_TO_POINTER (chars->len));
    v = GUINT_TO_POINTER (chars->len);
  }
  CharCount *cc = &g_array_index (chars, CharCount, GPOINTER_TO_UINT (v) - 1);
  cc->count = n == G_MAXUINT64 || cc->count > G_MAXUINT64 - n ? G_MAXUINT64 : cc->count + n;
}

/* HF's compute_alphabet: every character by its total count, the initial
 * alphabet pinned to the maximum, the rarest dropped beyond limit_alphabet,
 * the rest in code point order. */
static void
compute_alphabet (StsimVocabTrainer *t)
{
  g_autoptr(GHashTable) index = g_hash_table_new (g_direct_hash, g_direct_equal);
  g_autoptr(GArray) chars = g_array_new (FALSE, FALSE, sizeof (CharCount));
  g_autoptr(GArray) cs = g_array_new (FALSE, FALSE, sizeof (gunichar));
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, t->counts);
  while (g_hash_table_iter_next (&it, &k, &v)) {
    word_chars (t, k, cs);
    for (guint i = 0; i < cs->len; i++)
      add_char_count (index, chars, g_array_index (cs, gunichar, i), *(guint64 *) v);
  }
  if (t->opt.kind == STSIM_VOCAB_BPE && t->opt.byte_alphabet)
    for (int b = 0; b < 256; b++)
      add_char_count (index, chars, stsim_bpe_byte_char ((guint8) b), G_MAXUINT64);
  if (t->opt.limit_alphabet > 0 && chars->len > (guint64) t->opt.limit_alphabet) {
    g_array_sort (chars, char_by_count);
    g_array_remove_range (chars, 0, chars->len - (guint) t->opt.limit_alphabet);
  }
  g_array_sort (chars, char_by_code);
  for (guint i = 0; i < chars->len; i++) {
    char s[8] = { 0 };
    stsim_utf8_put (g_array_index (chars, CharCount, i).c, s);
    token_add (t, s);
  }
}

static char *
continuation (gunichar c)
{
  char s[8] = { '#', '#' };
  s[2 + stsim_utf8_put (c, s + 2)] = '\0';
  return g_strdup (s);
}

static int
unichar_cmp (gconstpointer a, gconstpointer b)
{
  gunichar x = *(const gunichar *) a, y = *(const gunichar *) b;
  return (x > y) - (x < y);
}

/* WordPiece: "##c" for every kept character seen after a word's first, in
 * the given order or else by code point (HF: hash-map order). */
static void
add_continuations (StsimVocabTrainer *t)
{
  if (t->cont_order) {
    for (char **s = t->cont_order; *s; s++)
      token_add (t, *s);
    return;
  }
  g_autoptr(GHashTable) seen = g_hash_table_new (g_direct_hash, g_direct_equal);
  g_autoptr(GArray) cs = g_array_new (FALSE, FALSE, sizeof (gunichar));
  g_autoptr(GArray) list = g_array_new (FALSE, FALSE, sizeof (gunichar));
  GHashTableIter it;
  gpointer k;
  g_hash_table_iter_init (&it, t->counts);
  while (g_hash_table_iter_next (&it, &k, NULL)) {
    word_chars (t, k, cs);
    for (guint i = 1; i < cs->len; i++) {
      gunichar c = g_array_index (cs, gunichar, i);
      char s[8] = { 0 };
      stsim_utf8_put (c, s);
      if (token_lookup (t, s) >= 0 && !g_hash_table_contains (seen, GUINT_TO_POINTER (c))) {
        g_hash_table_add (seen, GUINT_TO_POINTER (c));
        g_array_append_val (list, c);
      }
    }
  }
  g_array_sort (list, unichar_cmp);
  for (guint i = 0; i < list->len; i++) {
    g_autofree char *s = continuation (g_array_index (list, gunichar, i));
    token_add (t, s);
  }
}

/* HF's tokenize_words: each word as symbol ids; characters outside the
 * alphabet (dropped by limit_alphabet) are skipped. */
static void
tokenize_words (StsimVocabTrainer *t, GArray *words, GArray *symbols)
{
  g_autoptr(GArray) cs = g_array_new (FALSE, FALSE, sizeof (gunichar));
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, t->counts);
  while (g_hash_table_iter_next (&it, &k, &v)) {
    word_chars (t, k, cs);
    Word w = { symbols->len, 0, *(guint64 *) v };
    for (guint i = 0; i < cs->len; i++) {
      char s[8] = { 0 };
      gunichar c = g_array_index (cs, gunichar, i);
      stsim_utf8_put (c, s);
      if (token_lookup (t, s) < 0)
        continue;
      guint32 id;
      if (i > 0 && t->opt.kind == STSIM_VOCAB_WORDPIECE) {
        g_autofree char *cont = continuation (c);
        id = token_add (t, cont);
      } else {
        id = (guint32) token_lookup (t, s);
      }
      g_array_append_val (symbols, id);
      w.len++;
    }
    g_array_append_val (words, w);
  }
}

/* ---- 3. merges ------------------------------------------------------------ */

typedef struct {
  PairMap *counts;
  GArray  *occ;     /* PairWord: pairs a merge created, with their word */
  guint64  count;   /* of the word being merged */
  guint32  word;
} Changes;

static inline void
change (Changes *ch, guint32 a, guint32 b, int delta)
{
  guint64 p = pair_key (a, b);
  *pair_map_ref (ch->counts, p) += delta * (gint64) ch->count;
  if (delta > 0) {
    PairWord pw = { p, ch->word };
    g_array_append_val (ch->occ, pw);
  }
}

/* HF's Word::merge: every (a, b) left to right becomes @rep; the pairs it
 * breaks lose the word's count and the pairs it forms gain it. */
static void
word_merge (guint32 *s, guint32 *len, guint32 a, guint32 b, guint32 rep, Changes *ch)
{
  for (guint32 i = 0; i < *len; i++) {
    if (s[i] != a || i + 1 >= *len || s[i + 1] != b)
      continue;
    if (i > 0) {
      change (ch, s[i - 1], a, -1);
      change (ch, s[i - 1], rep, 1);
    }
    s[i] = rep;
    memmove (s + i + 1, s + i + 2, (*len - i - 2) * sizeof (guint32));
    (*len)--;
    if (i + 1 < *len) {
      change (ch, b, s[i + 1], -1);
      change (ch, rep, s[i + 1], 1);
    }
  }
}

/* The token a merge of (a, b) makes: WordPiece drops b's "##". */
static char *
merged_token (StsimVocabTrainer *t, guint32 a, guint32 b)
{
  const char *left = g_ptr_array_index (t->id_to_word, a);
  const char *right = g_ptr_array_index (t->id_to_word, b);
  if (t->opt.kind == STSIM_VOCAB_WORDPIECE && g_str_has_prefix (right, "##"))
    right += 2;
  return g_strconcat (left, right, NULL);
}

static void
merge_loop (StsimVocabTrainer *t, GArray *words, GArray *symbols)
{
  PairMap counts;
  pair_map_init (&counts, 1 << 16);
  g_autoptr(GArray) occ = g_array_new (FALSE, FALSE, sizeof (PairWord));
  g_autoptr(GArray) queue = g_array_new (FALSE, FALSE, sizeof (Merge));
  guint32 *sym = (guint32 *) symbols->data;
  Word *w = (Word *) words->data;

  Changes ch = { &counts, occ, 0, 0 };
  for (guint i = 0; i < words->len; i++)
    for (guint32 k = 0; k + 1 < w[i].len; k++) {
      ch.count = w[i].count;
      ch.word = i;
      change (&ch, sym[w[i].off + k], sym[w[i].off + k + 1], 1);
    }
  queue_groups (queue, occ, &counts);

  guint64 min_freq = t->opt.min_frequency;
  while ((gint64) t->id_to_word->len < t->opt.vocab_size && queue->len > 0) {
    Merge top = queue_pop (queue);
    gint64 now = *pair_map_ref (&counts, top.pair);
    if (top.count != (guint64) now) {
      /* A stale count: queue again with the current one (HF does, even at 0). */
      top.count = (guint64) now;
      queue_push (queue, top);
      continue;
    }
    if (top.count < 1 || min_freq > top.count) {
      g_free (top.pos);
      break;
    }
    guint32 a = (guint32) (top.pair >> 32), b = (guint32) top.pair;
    g_autofree char *tok = merged_token (t, a, b);
    guint32 rep = token_add (t, tok);
    g_array_append_val (t->merges, top.pair);
    for (guint32 i = 0; i < top.n_pos; i++) {
      Word *wi = &w[top.pos[i]];
      ch.count = wi->count;
      ch.word = top.pos[i];
      word_merge (sym + wi->off, &wi->len, a, b, rep, &ch);
    }
    queue_groups (queue, occ, &counts);
    g_free (top.pos);
    if (t->opt.progress && (t->merges->len & 255) == 0)
      t->opt.progress ("merge", t->id_to_word->len, (guint64) t->opt.vocab_size, t->opt.progress_data);
  }
  for (guint i = 0; i < queue->len; i++)
    g_free (g_array_index (queue, Merge, i).pos);
  pair_map_clear (&counts);
  if (t->opt.progress)
    t->opt.progress ("merge", t->id_to_word->len, (guint64) t->opt.vocab_size, t->opt.progress_data);
}

gboolean
stsim_vocab_trainer_train (StsimVocabTrainer *t, GError **error)
{
  g_return_val_if_fail (t != NULL && !t->trained, FALSE);
  if (g_hash_table_size (t->counts) == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA,
                 "the corpus has no words (%" G_GUINT64_FORMAT " lines, all empty or white space): "
                 "give files with text, one sentence per line", t->n_lines);
    return FALSE;
  }
  for (char **s = t->specials; *s; s++)
    token_add (t, *s);
  guint n_specials = t->id_to_word->len;
  compute_alphabet (t);
  guint n_alphabet = t->id_to_word->len - n_specials;
  if (t->opt.kind == STSIM_VOCAB_WORDPIECE)
    add_continuations (t);
  g_autoptr(GArray) words = g_array_new (FALSE, FALSE, sizeof (Word));
  g_autoptr(GArray) symbols = g_array_new (FALSE, FALSE, sizeof (guint32));
  tokenize_words (t, words, symbols);
  t->n_initial = t->id_to_word->len;
  if (t->opt.vocab_size < (gint64) t->n_initial) {
    guint n_cont = t->n_initial - n_specials - n_alphabet;
    g_autofree char *cont = n_cont ? g_strdup_printf (" + %u ## continuations", n_cont) : g_strdup ("");
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "vocabulary size %" G_GINT64_FORMAT " is below the %u initial symbols of this corpus "
                 "(%u special tokens + %u alphabet characters%s): ask for at least %u%s",
                 t->opt.vocab_size, t->n_initial, n_specials, n_alphabet, cont, t->n_initial,
                 t->opt.kind == STSIM_VOCAB_WORDPIECE ? ", or limit the alphabet" : "");
    return FALSE;
  }
  merge_loop (t, words, symbols);
  t->trained = TRUE;
  return TRUE;
}

guint
stsim_vocab_trainer_n_tokens (StsimVocabTrainer *t)
{
  g_return_val_if_fail (t != NULL, 0);
  return t->id_to_word->len;
}

const char *
stsim_vocab_trainer_token (StsimVocabTrainer *t, guint id)
{
  g_return_val_if_fail (t != NULL && id < t->id_to_word->len, NULL);
  return g_ptr_array_index (t->id_to_word, id);
}

guint
stsim_vocab_trainer_n_merges (StsimVocabTrainer *t)
{
  g_return_val_if_fail (t != NULL, 0);
  return t->merges->len;
}

void
stsim_vocab_trainer_merge (StsimVocabTrainer *t, guint rank, const char **left, const char **right)
{
  g_return_if_fail (t != NULL && rank < t->merges->len);
  guint64 p = g_array_index (t->merges, guint64, rank);
  *left = g_ptr_array_index (t->id_to_word, (guint32) (p >> 32));
  *right = g_ptr_array_index (t->id_to_word, (guint32) p);
}

guint
stsim_vocab_trainer_n_initial (StsimVocabTrainer *t)
{
  g_return_val_if_fail (t != NULL, 0);
  return t->n_initial;
}

/* ---- saving -------------------------------------------------------------- */

static gboolean
write_file (const char *dir, const char *name, const char *text, gsize len, GError **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) local = NULL;
  /* g_file_set_contents writes a temporary file and renames it. */
  if (!g_file_set_contents (path, text, (gssize) len, &local)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "%s: cannot write: %s", path, local->message);
    return FALSE;
  }
  return TRUE;
}

static gboolean
save_wordpiece (StsimVocabTrainer *t, const char *dir, GError **error)
{
  g_autoptr(GString) s = g_string_new (NULL);
  for (guint i = 0; i < t->id_to_word->len; i++) {
    g_string_append (s, g_ptr_array_index (t->id_to_word, i));
    g_string_append_c (s, '\n');
  }
  g_autofree char *config = g_strdup_printf ("{\n  \"do_lower_case\": %s,\n  \"tokenizer_class\": \"BertTokenizer\"\n}\n",
                                             t->opt.lowercase ? "true" : "false");
  return write_file (dir, "vocab.txt", s->str, s->len, error)
         && write_file (dir, "tokenizer_config.json", config, strlen (config), error);
}

/* merges.txt as HF's BPE::save writes it: a repeated pair (the same token
 * reached twice) keeps only its last rank. */
static char *
merges_text (StsimVocabTrainer *t)
{
  g_autoptr(GHashTable) last = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL, NULL);
  guint64 *p = (guint64 *) t->merges->data;
  for (guint i = 0; i < t->merges->len; i++)
    g_hash_table_insert (last, &p[i], GUINT_TO_POINTER (i + 1));
  GString *s = g_string_new ("#version: 0.2\n");
  for (guint i = 0; i < t->merges->len; i++) {
    if (GPOINTER_TO_UINT (g_hash_table_lookup (last, &p[i])) != i + 1)
      continue;
    const char *left, *right;
    stsim_vocab_trainer_merge (t, i, &left, &right);
    g_string_append_printf (s, "%s %s\n", left, right);
  }
  return g_string_free (s, FALSE);
}

static gboolean
save_bpe (StsimVocabTrainer *t, const char *dir, GError **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  for (guint i = 0; i < t->id_to_word->len; i++) {
    json_builder_set_member_name (b, g_ptr_array_index (t->id_to_word, i));
    json_builder_add_int_value (b, i);
  }
  json_builder_end_object (b);
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  gsize len = 0;
  g_autofree char *json = stsim_json_to_data (root, FALSE, &len);
  g_autofree char *merges = merges_text (t);
  static const char config[] = "{\n  \"add_prefix_space\": false,\n  \"tokenizer_class\": \"RobertaTokenizer\"\n}\n";
  return write_file (dir, "vocab.json", json, len, error)
         && write_file (dir, "merges.txt", merges, strlen (merges), error)
         && write_file (dir, "tokenizer_config.json", config, strlen (config), error);
}

gboolean
stsim_vocab_trainer_save (StsimVocabTrainer *t, const char *dir, GError **error)
{
  g_return_val_if_fail (t != NULL && dir != NULL, FALSE);
  g_return_val_if_fail (t->trained, FALSE);
  if (g_mkdir_with_parents (dir, 0777) != 0) {
    int e = errno;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "%s: cannot create the folder: %s", dir, g_strerror (e));
    return FALSE;
  }
  return t->opt.kind == STSIM_VOCAB_WORDPIECE ? save_wordpiece (t, dir, error) : save_bpe (t, dir, error);
}
