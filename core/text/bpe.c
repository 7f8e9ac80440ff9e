/* Byte-level BPE of GPT-2 / RoBERTa (method.md §2.2).
 *
 * The ids match Hugging Face's RobertaTokenizerFast (Rust tokenizers 0.13).
 * tokenizer.c cuts out the literal special tokens and adds <s> ... </s>;
 * this file turns the text between them into content ids:
 *   1. the GPT-2 pattern
 *        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      splits it into pieces; a hand-written scanner over generated Unicode
 *      tables (unicode-tables.h: Unicode 14.0, the version of HF's regex
 *      engine; GLib's is newer and differs on 4,388 code points);
 *   2. every piece becomes one symbol per UTF-8 byte and is merged by rank:
 *      always the lowest-ranked adjacent pair, leftmost first, until no pair
 *      has a rank (a heap keeps long pieces O(n log n));
 *   3. results per piece are cached (bounded) because real text repeats words.
 */
#include "tokenizer-private.h"
#include "unicode-tables.h"
#include "unicode.h"

#include <json-glib/json-glib.h>
#include <string.h>
#include "io/bounded.h"

#define BPE_CACHE_MAX_ENTRIES 65536
#define BPE_CACHE_MAX_PIECE   256   /* bytes; longer pieces are rare and not worth keeping */

/* One merge rule: the pair (left id, right id) becomes new_id, rank = line order. */
typedef struct {
  guint64 key;      /* left << 32 | right; BPE_EMPTY_KEY marks a free slot */
  gint32  rank;
  gint32  new_id;
} BpeMerge;
#define BPE_EMPTY_KEY G_MAXUINT64

/* A cached piece. In the cache, ids and bytes live in the same allocation,
 * right after the struct (one malloc, and a lookup touches adjacent memory). */
typedef struct {
  const guint8 *bytes;
  gsize         len;
  guint         hash;
  guint         n_ids;
  gint32       *ids;
} BpeCacheEntry;

typedef struct {
  char       **tokens;      /* id -> token text in the byte-level alphabet */
  gint32       n_tokens;
  GHashTable  *token_ids;   /* token text (owned by tokens) -> id */
  gint32       byte_id[256];
  BpeMerge    *merges;      /* open addressing, capacity merge_mask + 1 */
  gsize        merge_mask;
  gsize        n_merges;
  GMutex       cache_lock;  /* encode may run on several threads */
  GHashTable  *cache;       /* BpeCacheEntry* -> itself */
} StsimBpe;

/* A queued merge: the pair whose left symbol sits at pos, by rank. */
typedef struct {
  gint32 rank, pos, new_id;
} BpeCandidate;

/* Scratch buffers of one encode call (never shared between threads). */
typedef struct {
  gint32       *sym;    /* symbol ids; a merged symbol keeps the left slot, -1 marks the freed right one */
  gint32       *next;
  gint32       *prev;
  gsize         cap;
  BpeCandidate *heap;
  gsize         heap_len, heap_cap;
} BpeWork;

/* ---- bytes <-> unicode ------------------------------------------------- */

/* GPT-2's reversible byte alphabet: printable Latin-1 bytes stand for
 * themselves, the 68 others (controls, space, DEL, NBSP, soft hyphen) are
 * moved in increasing order to U+0100.. so every byte is a visible char. */
gunichar
stsim_bpe_byte_char (guint8 byte)
{
  static gunichar table[256];
  static gsize done = 0;

  if (g_once_init_enter (&done)) {
    gunichar next = 256;
    for (int b = 0; b < 256; b++) {
      gboolean printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      table[b] = printable ? (gunichar) b : next++;
    }
    g_once_init_leave (&done, 1);
  }
  return table[byte];
}

/* ---- classes ------------------------------------------------------------ */

/* Class of the char at s[i] (valid UTF-8); *clen gets its byte length. */
static inline int
bpe_class_at (const guint8 *s, gsize i, gsize *clen)
{
  const guchar *p = s + i;
  gunichar c = stsim_utf8_next (&p);
  *clen = (gsize) (p - (s + i));
  return stsim_uclass (c);
}

/* ---- pre-tokenisation --------------------------------------------------- */

/* End of the run of chars of class @k starting at @i. */
static gsize
bpe_run_end (const guint8 *s, gsize n, gsize i, int k)
{
  while (i < n) {
    gsize clen;
    if (bpe_class_at (s, i, &clen) != k)
      break;
    i += clen;
  }
  return i;
}

/* End of the piece the GPT-2 pattern matches at @i (< n). The alternatives
 * are tried in the pattern's order; every char matches one of them, so the
 * pieces tile the text. */
static gsize
bpe_next_piece (const guint8 *s, gsize n, gsize i)
{
  gsize clen;
  int k = bpe_class_at (s, i, &clen);

  if (s[i] == '\'' && i + 1 < n) {
    guint8 a = s[i + 1], b = i + 2 < n ? s[i + 2] : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
      return i + 2;
    if (((a == 'r' || a == 'v') && b == 'e') || (a == 'l' && b == 'l'))
      return i + 3;
  }
  /* " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": only U+0020 is the optional space. */
  if (s[i] == ' ' && i + 1 < n) {
    gsize dlen;
    int kd = bpe_class_at (s, i + 1, &dlen);
    if (kd != STSIM_UCLASS_SPACE)
      return bpe_run_end (s, n, i + 1, kd);
  }
  if (k != STSIM_UCLASS_SPACE)
    return bpe_run_end (s, n, i, k);

  /* "\s+(?!\S)|\s+": a white-space run; when a non-space follows, its last
   * char is left to lead the next piece, unless the run is that one char. */
  gsize last = i, e = i;
  while (e < n) {
    gsize l;
    if (bpe_class_at (s, e, &l) != STSIM_UCLASS_SPACE)
      break;
    last = e;
    e += l;
  }
  if (e == n)
    return n;
  return last > i ? last : e;
}

void
stsim_bpe_pretokenize (const char *text, gsize len, GArray *ends)
{
  g_return_if_fail (text != NULL || len == 0);
  g_return_if_fail (ends != NULL && g_array_get_element_size (ends) == sizeof (gsize));
  g_return_if_fail (stsim_utf8_validate (text, len, NULL));

  for (gsize i = 0; i < len;) {
    i = bpe_next_piece ((const guint8 *) text, len, i);
    g_array_append_val (ends, i);
  }
}

/* ---- merges ------------------------------------------------------------- */

static inline guint64
bpe_pair_key (gint32 a, gint32 b)
{
  return ((guint64) (guint32) a << 32) | (guint32) b;
}

static inline gsize
bpe_pair_slot (guint64 key, gsize mask)
{
  /* Fibonacci hashing spreads the structured (id, id) keys. */
  return (gsize) ((key * G_GUINT64_CONSTANT (0x9E3779B97F4A7C15)) >> 32) & mask;
}

static const BpeMerge *
bpe_merge_lookup (const StsimBpe *bpe, gint32 a, gint32 b)
{
  guint64 key = bpe_pair_key (a, b);
  for (gsize i = bpe_pair_slot (key, bpe->merge_mask);; i = (i + 1) & bpe->merge_mask) {
    const BpeMerge *m = &bpe->merges[i];
    if (m->key == key)
      return m;
    if (m->key == BPE_EMPTY_KEY)
      return NULL;
  }
}

/* A repeated pair keeps its last rank, as HF's hash map does. */
static void
bpe_merge_insert (StsimBpe *bpe, gint32 a, gint32 b, gint32 rank, gint32 new_id)
{
  guint64 key = bpe_pair_key (a, b);
  gsize i = bpe_pair_slot (key, bpe->merge_mask);
  while (bpe->merges[i].key != BPE_EMPTY_KEY && bpe->merges[i].key != key)
    i = (i + 1) & bpe->merge_mask;
  if (bpe->merges[i].key == BPE_EMPTY_KEY)
    bpe->n_merges++;
  bpe->merges[i] = (BpeMerge) { key, rank, new_id };
}

/* ---- BPE of one piece ---------------------------------------------------- */

static inline gboolean
bpe_cand_less (const BpeCandidate *x, const BpeCandidate *y)
{
  return x->rank < y->rank || (x->rank == y->rank && x->pos < y->pos);
}

static void
bpe_heap_push (BpeWork *w, gint32 rank, gint32 pos, gint32 new_id)
{
  if (w->heap_len == w->heap_cap) {
    w->heap_cap = MAX (64, w->heap_cap * 2);
    w->heap = g_renew (BpeCandidate, w->heap, w->heap_cap);
  }
  gsize i = w->heap_len++;
  BpeCandidate c = { rank, pos, new_id };
  while (i > 0) {
    gsize parent = (i - 1) / 2;
    if (!bpe_cand_less (&c, &w->heap[parent]))
      break;
    w->heap[i] = w->heap[parent];
    i = parent;
  }
  w->heap[i] = c;
}

static BpeCandidate
bpe_heap_pop (BpeWork *w)
{
  BpeCandidate top = w->heap[0];
  BpeCandidate last = w->heap[--w->heap_len];
  gsize i = 0, n = w->heap_len;
  for (;;) {
    gsize l = 2 * i + 1, r = l + 1, m = i;
    const BpeCandidate *best = &last;
    if (l < n && bpe_cand_less (&w->heap[l], best)) {
      m = l;
      best = &w->heap[l];
    }
    if (r < n && bpe_cand_less (&w->heap[r], best))
      m = r;
    if (m == i)
      break;
    w->heap[i] = w->heap[m];
    i = m;
  }
  if (n > 0)
    w->heap[i] = last;
  return top;
}

static void
bpe_work_reserve (BpeWork *w, gsize n)
{
  if (n <= w->cap)
    return;
  w->cap = MAX (n, 2 * w->cap);
  w->sym = g_renew (gint32, w->sym, w->cap);
  w->next = g_renew (gint32, w->next, w->cap);
  w->prev = g_renew (gint32, w->prev, w->cap);
}

static void
bpe_work_clear (BpeWork *w)
{
  g_free (w->sym);
  g_free (w->next);
  g_free (w->prev);
  g_free (w->heap);
}

static void
bpe_push_pair (const StsimBpe *bpe, BpeWork *w, gint32 left)
{
  gint32 right = w->next[left];
  if (right < 0)
    return;
  const BpeMerge *m = bpe_merge_lookup (bpe, w->sym[left], w->sym[right]);
  if (m)
    bpe_heap_push (w, m->rank, left, m->new_id);
}

/* Merges the bytes of one piece and appends the resulting ids. Same order as
 * HF's Word::merge_all: lowest rank first, ties to the leftmost position; a
 * queued candidate is dropped when its pair no longer yields its token. */
static void
bpe_merge_piece (const StsimBpe *bpe, BpeWork *w, const guint8 *p, gsize n, GArray *ids)
{
  bpe_work_reserve (w, n);
  for (gsize i = 0; i < n; i++) {
    w->sym[i] = bpe->byte_id[p[i]];
    w->prev[i] = (gint32) i - 1;
    w->next[i] = i + 1 < n ? (gint32) i + 1 : -1;
  }
  w->heap_len = 0;
  for (gsize i = 0; i + 1 < n; i++)
    bpe_push_pair (bpe, w, (gint32) i);

  while (w->heap_len > 0) {
    BpeCandidate c = bpe_heap_pop (w);
    if (w->sym[c.pos] < 0)
      continue;
    gint32 right = w->next[c.pos];
    if (right < 0)
      continue;
    const BpeMerge *m = bpe_merge_lookup (bpe, w->sym[c.pos], w->sym[right]);
    if (!m || m->new_id != c.new_id)
      continue;
    w->sym[c.pos] = c.new_id;
    w->sym[right] = -1;
    w->next[c.pos] = w->next[right];
    if (w->next[right] >= 0)
      w->prev[w->next[right]] = c.pos;
    if (w->prev[c.pos] >= 0)
      bpe_push_pair (bpe, w, w->prev[c.pos]);
    bpe_push_pair (bpe, w, c.pos);
  }
  for (gint32 i = 0; i >= 0; i = w->next[i])
    g_array_append_val (ids, w->sym[i]);
}

/* ---- cache --------------------------------------------------------------- */

static guint
bpe_cache_hash (gconstpointer key)
{
  return ((const BpeCacheEntry *) key)->hash;
}

static gboolean
bpe_cache_equal (gconstpointer a, gconstpointer b)
{
  const BpeCacheEntry *x = a, *y = b;
  return x->hash == y->hash && x->len == y->len && memcmp (x->bytes, y->bytes, x->len) == 0;
}

static guint
bpe_bytes_hash (const guint8 *p, gsize n)
{
  /* FNV-1a */
  guint32 h = 2166136261u;
  for (gsize i = 0; i < n; i++)
    h = (h ^ p[i]) * 16777619u;
  return h;
}

static void
bpe_encode_piece (StsimBpe *bpe, BpeWork *w, const guint8 *p, gsize n, GArray *ids)
{
  if (n == 1) {
    g_array_append_val (ids, bpe->byte_id[p[0]]);
    return;
  }
  if (n > BPE_CACHE_MAX_PIECE) {
    bpe_merge_piece (bpe, w, p, n, ids);
    return;
  }

  BpeCacheEntry probe = { p, n, bpe_bytes_hash (p, n), 0, NULL };
  g_mutex_lock (&bpe->cache_lock);
  const BpeCacheEntry *hit = g_hash_table_lookup (bpe->cache, &probe);
  if (hit)
    g_array_append_vals (ids, hit->ids, hit->n_ids);
  g_mutex_unlock (&bpe->cache_lock);
  if (hit)
    return;

  guint start = ids->len;
  bpe_merge_piece (bpe, w, p, n, ids);

  guint n_ids = ids->len - start;
  BpeCacheEntry *e = g_malloc (sizeof (BpeCacheEntry) + n_ids * sizeof (gint32) + n);
  e->ids = (gint32 *) (e + 1);
  e->bytes = (const guint8 *) (e->ids + n_ids);
  e->len = n;
  e->hash = probe.hash;
  e->n_ids = n_ids;
  memcpy (e->ids, &g_array_index (ids, gint32, start), n_ids * sizeof (gint32));
  memcpy ((guint8 *) e->bytes, p, n);
  g_mutex_lock (&bpe->cache_lock);
  /* Bounded: start afresh when full, so a long run adapts to new text. */
  if (g_hash_table_size (bpe->cache) >= BPE_CACHE_MAX_ENTRIES)
    g_hash_table_remove_all (bpe->cache);
  g_hash_table_add (bpe->cache, e);  /* replaces an equal entry another thread added */
  g_mutex_unlock (&bpe->cache_lock);
}

/* ---- encode -------------------------------------------------------------- */

static gboolean
bpe_encode_content (gpointer impl, const char *text, gsize len, GArray *ids, GError **error)
{
  StsimBpe *bpe = impl;
  const guint8 *s = (const guint8 *) text;
  gsize bad;

  g_return_val_if_fail (bpe != NULL && ids != NULL, FALSE);
  g_return_val_if_fail (text != NULL || len == 0, FALSE);

  /* symbol positions are gint32 */
  if (len > G_MAXINT32) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "text of %" G_GSIZE_FORMAT " bytes: the BPE tokenizer takes at most 2 GiB at once "
                 "(split the input into sentences)", len);
    return FALSE;
  }
  if (!stsim_utf8_validate (text, len, &bad)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_ENCODING,
                 "invalid UTF-8 at byte %" G_GSIZE_FORMAT " (0x%02x): the BPE tokenizer needs UTF-8 text; "
                 "convert the input (e.g. iconv -f latin1 -t utf-8)", bad, s[bad]);
    return FALSE;
  }

  BpeWork w = { 0 };
  for (gsize i = 0; i < len;) {
    gsize end = bpe_next_piece (s, len, i);
    bpe_encode_piece (bpe, &w, s + i, end - i, ids);
    i = end;
  }
  bpe_work_clear (&w);
  return TRUE;
}

static const char *
bpe_id_to_token (gpointer impl, gint32 id)
{
  StsimBpe *bpe = impl;
  return id >= 0 && id < bpe->n_tokens ? bpe->tokens[id] : NULL;
}

static gint32
bpe_token_to_id (gpointer impl, const char *token)
{
  StsimBpe *bpe = impl;
  gpointer value;
  if (!token || !g_hash_table_lookup_extended (bpe->token_ids, token, NULL, &value))
    return -1;
  return GPOINTER_TO_INT (value);
}

static gint32
bpe_vocab_size (gpointer impl)
{
  return ((StsimBpe *) impl)->n_tokens;
}

static void
bpe_free (gpointer impl)
{
  StsimBpe *bpe = impl;
  if (!bpe)
    return;
  if (bpe->tokens)
    for (gint32 i = 0; i < bpe->n_tokens; i++)
      g_free (bpe->tokens[i]);
  g_free (bpe->tokens);
  g_clear_pointer (&bpe->token_ids, g_hash_table_unref);
  g_free (bpe->merges);
  g_clear_pointer (&bpe->cache, g_hash_table_unref);
  g_mutex_clear (&bpe->cache_lock);
  g_free (bpe);
}

static const StsimTokenizerImpl bpe_impl = {
  .encode_content = bpe_encode_content,
  .id_to_token    = bpe_id_to_token,
  .token_to_id    = bpe_token_to_id,
  .vocab_size     = bpe_vocab_size,
  .free           = bpe_free,
};

/* ---- loading ------------------------------------------------------------- */

static gboolean
bpe_read_file (const char *path, const char *what, char **contents, gsize *len, GError **error)
{
  g_autoptr(GError) local = NULL;
  if (stsim_file_get_contents (path, STSIM_LIMIT_VOCAB, contents, len, &local))
    return TRUE;
  gboolean missing = g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_set_error (error, STSIM_ERROR, missing ? STSIM_ERROR_NOT_FOUND : STSIM_ERROR_IO,
               "cannot read the BPE %s %s: %s%s", what, path, local->message,
               missing ? " (a byte-level BPE model folder holds vocab.json and merges.txt)" : "");
  return FALSE;
}

static gboolean
bpe_load_vocab (StsimBpe *bpe, const char *path, GError **error)
{
  g_autofree char *data = NULL;
  gsize len;
  g_autoptr(GError) local = NULL;

  if (!bpe_read_file (path, "vocabulary", &data, &len, error))
    return FALSE;
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  if (!stsim_json_load_data (parser, data, (gssize) len, &local)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE,
                 "%s: not valid JSON (%s); expected the vocab.json of a byte-level BPE model", path,
                 local->message);
    return FALSE;
  }
  JsonNode *root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE,
                 "%s: the top level is %s, expected a JSON object mapping each token to its id "
                 "(the vocab.json of a byte-level BPE model)",
                 path, root ? json_node_type_name (root) : "empty");
    return FALSE;
  }
  JsonObject *obj = json_node_get_object (root);
  guint n = json_object_get_size (obj);
  if (n == 0 || n > G_MAXINT32 / 2) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s: %s, expected a token -> id map", path,
                 n == 0 ? "the object is empty" : "too many entries");
    return FALSE;
  }

  bpe->n_tokens = (gint32) n;
  bpe->tokens = g_new0 (char *, n);
  bpe->token_ids = g_hash_table_new (g_str_hash, g_str_equal);

  JsonObjectIter iter;
  const char *token;
  JsonNode *node;
  json_object_iter_init (&iter, obj);
  while (json_object_iter_next (&iter, &token, &node)) {
    if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE,
                   "%s: token “%s” maps to a %s, expected an integer id", path, token,
                   JSON_NODE_HOLDS_VALUE (node) ? g_type_name (json_node_get_value_type (node))
                                                 : json_node_type_name (node));
      return FALSE;
    }
    gint64 id = json_node_get_int (node);
    if (id < 0 || id >= n) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE,
                   "%s: token “%s” has id %" G_GINT64_FORMAT ", outside 0..%u; the ids of the %u tokens "
                   "must be 0..%u, one each", path, token, id, n - 1, n, n - 1);
      return FALSE;
    }
    if (bpe->tokens[id]) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE,
                   "%s: tokens “%s” and “%s” share id %" G_GINT64_FORMAT "; every token needs its own id",
                   path, bpe->tokens[id], token, id);
      return FALSE;
    }
    if (g_hash_table_contains (bpe->token_ids, token)) {
      /* Only reachable when a key holds U+0000 and collides after C-string truncation. */
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE,
                   "%s: token “%s” appears twice (a key containing \\u0000?)", path, token);
      return FALSE;
    }
    bpe->tokens[id] = g_strdup (token);
    g_hash_table_insert (bpe->token_ids, bpe->tokens[id], GINT_TO_POINTER ((gint) id));
  }
  /* n distinct ids in 0..n-1 cover the range, so no slot is NULL here. */

  for (int b = 0; b < 256; b++) {
    char buf[8] = { 0 };
    g_unichar_to_utf8 (stsim_bpe_byte_char ((guint8) b), buf);
    gint32 id = bpe_token_to_id (bpe, buf);
    if (id < 0) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE,
                   "%s: no token for byte 0x%02x (“%s”); a byte-level BPE vocabulary has a token for "
                   "each of the 256 byte characters (is this a GPT-2/RoBERTa vocab.json?)", path, b, buf);
      return FALSE;
    }
    bpe->byte_id[b] = id;
  }
  return TRUE;
}

/* merges.txt: optional "#version" lines, then one "LEFT RIGHT" per line; the
 * rank of a merge is its position among the merge lines (HF's reading). */
static gboolean
bpe_load_merges (StsimBpe *bpe, const char *path, GError **error)
{
  g_autofree char *data = NULL;
  gsize len, bad;

  if (!bpe_read_file (path, "merges", &data, &len, error))
    return FALSE;
  const char *nul = memchr (data, '\0', len);
  bad = len;
  if (!stsim_utf8_validate (data, len, &bad) || nul) {
    if (nul && (gsize) (nul - data) < bad)
      bad = (gsize) (nul - data);
    guint line = 1;
    for (gsize i = 0; i < bad; i++)
      line += data[i] == '\n';
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_ENCODING,
                 "%s:%u: invalid UTF-8 or a NUL byte (at byte %" G_GSIZE_FORMAT "); merges.txt must be UTF-8 text",
                 path, line, bad);
    return FALSE;
  }

  /* Each line holds at most one merge: size the table for the line count. */
  gsize lines = 1;
  for (gsize i = 0; i < len; i++)
    lines += data[i] == '\n';
  gsize cap = 64;
  while (cap < 2 * lines)
    cap *= 2;
  bpe->merges = g_new (BpeMerge, cap);
  bpe->merge_mask = cap - 1;
  for (gsize i = 0; i < cap; i++)
    bpe->merges[i].key = BPE_EMPTY_KEY;

  gint32 rank = 0;
  guint lineno = 0;
  g_autoptr(GString) joined = g_string_new (NULL);
  for (char *p = data, *end = data + len; p < end;) {
    char *nl = memchr (p, '\n', (gsize) (end - p));
    char *eol = nl ? nl : end;
    char *next = nl ? nl + 1 : end;
    lineno++;
    if (eol > p && eol[-1] == '\r')
      eol--;
    *eol = '\0';
    if (g_str_has_prefix (p, "#version")) {
      p = next;
      continue;
    }
    char *sp = strchr (p, ' ');
    if (!sp || sp == p || sp[1] == '\0' || strchr (sp + 1, ' ')) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE,
                   "%s:%u: expected a merge “LEFT RIGHT” (two tokens separated by one space), found “%s”",
                   path, lineno, p);
      return FALSE;
    }
    *sp = '\0';
    const char *left = p, *right = sp + 1;
    g_string_assign (joined, left);
    g_string_append (joined, right);
    gint32 a = bpe_token_to_id (bpe, left), b = bpe_token_to_id (bpe, right);
    gint32 c = bpe_token_to_id (bpe, joined->str);
    const char *missing = a < 0 ? left : b < 0 ? right : c < 0 ? joined->str : NULL;
    if (missing) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE,
                   "%s:%u: the merge “%s %s” needs the token “%s”, which is not in the vocabulary "
                   "(vocab.json and merges.txt must come from the same model)",
                   path, lineno, left, right, missing);
      return FALSE;
    }
    bpe_merge_insert (bpe, a, b, rank++, c);
    p = next;
  }
  return TRUE;
}

gboolean
stsim_bpe_init (StsimTokenizer *tok, const char *vocab_json, const char *merges_txt, GError **error)
{
  g_return_val_if_fail (tok != NULL, FALSE);
  g_return_val_if_fail (vocab_json != NULL && merges_txt != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  StsimBpe *bpe = g_new0 (StsimBpe, 1);
  g_mutex_init (&bpe->cache_lock);
  if (!bpe_load_vocab (bpe, vocab_json, error) || !bpe_load_merges (bpe, merges_txt, error)) {
    bpe_free (bpe);
    return FALSE;
  }
  bpe->cache = g_hash_table_new_full (bpe_cache_hash, bpe_cache_equal, g_free, NULL);

  tok->impl = &bpe_impl;
  tok->impl_data = bpe;
  return TRUE;
}
