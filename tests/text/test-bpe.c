/* Unit tests of the byte-level BPE tokenizer (core/text/bpe.c).
 *
 * Expected values come from outside the code under test: the GPT-2 byte
 * alphabet rebuilt here from its definition (method.md §2.2), merge orders
 * worked out by hand on a tiny model, and ids that Hugging Face's tokenizers
 * printed for roberta-base (tests/reference/tokenizers/ref-tokenize.js; the
 * command is next to each constant). Whole-corpus parity with the reference
 * is compare-roberta.sh's job. */
#include <string.h>
#include <time.h>
#include <glib/gstdio.h>
#include "stsim/stsim-tokenizer.h"
#include "text/tokenizer-private.h"

/* ---- the byte alphabet, from its definition ------------------------------ */

static gboolean
is_printable_byte (int b)
{
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

/* The alphabet by its definition: printable bytes stay, the others take
 * U+0100, U+0101, ... in byte order. */
static gunichar
byte_to_char (int byte)
{
  gunichar next = 256;
  for (int b = 0; b < byte; b++)
    next += !is_printable_byte (b);
  return is_printable_byte (byte) ? (gunichar) byte : next;
}

/* Its inverse: byte-level char -> byte, or -1. */
static int
char_to_byte (gunichar c)
{
  static int inverse[512];
  static gsize done = 0;
  if (g_once_init_enter (&done)) {
    for (int i = 0; i < 512; i++)
      inverse[i] = -1;
    for (int b = 0; b < 256; b++)
      inverse[byte_to_char (b)] = b;
    g_once_init_leave (&done, 1);
  }
  return c < 512 ? inverse[c] : -1;
}

static void
test_byte_table (void)
{
  g_autoptr(GHashTable) seen = g_hash_table_new (NULL, NULL);
  guint moved = 0;
  for (int b = 0; b < 256; b++) {
    gunichar c = stsim_bpe_byte_char ((guint8) b);
    g_assert_false (g_hash_table_contains (seen, GUINT_TO_POINTER (c)));
    g_hash_table_add (seen, GUINT_TO_POINTER (c));
    if (is_printable_byte (b)) {
      g_assert_cmpuint (c, ==, (gunichar) b);
    } else {
      /* the 68 others, in increasing byte order, from U+0100 on */
      g_assert_cmpuint (c, ==, 256 + moved);
      moved++;
    }
    g_assert_cmpuint (c, ==, byte_to_char (b));
    g_assert_true (g_unichar_isgraph (c));
  }
  g_assert_cmpuint (g_hash_table_size (seen), ==, 256);
  g_assert_cmpuint (moved, ==, 68);
  g_assert_cmpuint (stsim_bpe_byte_char (' '), ==, 0x120);  /* 'Ġ' */
  g_assert_cmpuint (stsim_bpe_byte_char ('\n'), ==, 0x10A); /* 'Ċ' */
}

/* ---- the pre-tokeniser, against splits HF printed ------------------------ */

static char *
pieces_of (const char *text)
{
  g_autoptr(GArray) ends = g_array_new (FALSE, FALSE, sizeof (gsize));
  stsim_bpe_pretokenize (text, strlen (text), ends);
  GString *out = g_string_new (NULL);
  gsize from = 0;
  for (guint k = 0; k < ends->len; k++) {
    gsize to = g_array_index (ends, gsize, k);
    g_string_append_printf (out, "%s[%.*s]", k ? " " : "", (int) (to - from), text + from);
    from = to;
  }
  return g_string_free (out, FALSE);
}

static void
test_pretokenize_spaces (void)
{
  /* node: byteLevelPreTokenizer(false, true).preTokenizeString("Hello world  x \t\ty  ")
   * -> Hello Ġworld Ġ Ġx Ġĉ ĉ y ĠĠ */
  g_autofree char *p = pieces_of ("Hello world  x \t\ty  ");
  g_assert_cmpstr (p, ==, "[Hello] [ world] [ ] [ x] [ \t] [\t] [y] [  ]");
}

static void
test_pretokenize_contractions (void)
{
  /* HF: I ' M Ġhe 's Ġ' S Ġ' LL Ġ' Re Ġx 's y (contractions are lower case only) */
  g_autofree char *p = pieces_of ("I'M he's 'S 'LL 'Re x'sy");
  g_assert_cmpstr (p, ==, "[I] ['] [M] [ he] ['s] [ '] [S] [ '] [LL] [ '] [Re] [ x] ['s] [y]");
}

static void
test_pretokenize_unicode_spaces (void)
{
  /* U+0085 and U+00A0 are \s for the reference; U+200B and U+180E are not.
   * HF on "a\u0085\u0085b": a Âħ Âħ b; on "a\u200b\u200bb": a âĢĭâĢĭ b */
  g_autofree char *p1 = pieces_of ("a\xc2\x85\xc2\x85" "b");
  g_assert_cmpstr (p1, ==, "[a] [\xc2\x85] [\xc2\x85] [b]");
  g_autofree char *p2 = pieces_of ("a\xe2\x80\x8b\xe2\x80\x8b" "b");
  g_assert_cmpstr (p2, ==, "[a] [\xe2\x80\x8b\xe2\x80\x8b] [b]");
  g_autofree char *p3 = pieces_of ("x\xc2\xa0y \xc2\xa0z");
  g_assert_cmpstr (p3, ==, "[x] [\xc2\xa0] [y] [ ] [\xc2\xa0] [z]");
}

static void
test_pretokenize_classes (void)
{
  /* \p{N} includes No and Nl (½, Ⅻ); a combining mark (Mn) is neither letter nor number. */
  g_autofree char *p1 = pieces_of ("x\xc2\xbd\xe2\x85\xab" "7 e\xcc\x81");
  g_assert_cmpstr (p1, ==, "[x] [\xc2\xbd\xe2\x85\xab" "7] [ e] [\xcc\x81]");
  /* U+1123F (Khojki, new in Unicode 15) is a letter for GLib 2.74 but not for
   * the reference (Unicode 14): it must stay apart from the letters around it. */
  g_autofree char *p2 = pieces_of ("a\xf0\x91\x88\xbf" "b");
  g_assert_cmpstr (p2, ==, "[a] [\xf0\x91\x88\xbf] [b]");
}

/* ---- a tiny model whose merges are worked out by hand -------------------- */

typedef struct {
  char *dir, *vocab, *merges;
} TinyModel;

static void
tiny_model_clear (TinyModel *m)
{
  if (m->vocab)
    g_unlink (m->vocab);
  if (m->merges)
    g_unlink (m->merges);
  if (m->dir)
    g_rmdir (m->dir);
  g_free (m->dir);
  g_free (m->vocab);
  g_free (m->merges);
}

/* The standard tiny vocabulary: id b for the char of byte b, then the
 * specials 256..260 and the merge products 261.. */
static const char *const tiny_extra[] = { "<s>", "<pad>", "</s>", "<unk>", "<mask>", "ab", "bc", "aa", "abc" };

/* @rename_x: the byte char 'x' is spelled "xx" instead (ids stay dense). */
static char *
tiny_vocab_json (gboolean rename_x)
{
  GString *s = g_string_new ("{");
  for (int b = 0; b < 256; b++) {
    char buf[8] = { 0 };
    g_unichar_to_utf8 (byte_to_char (b), buf);
    if (rename_x && b == 'x')
      strcpy (buf, "xx");
    if (strcmp (buf, "\"") == 0 || strcmp (buf, "\\") == 0)
      g_string_append_printf (s, "\"\\%s\": %d, ", buf, b);
    else
      g_string_append_printf (s, "\"%s\": %d, ", buf, b);
  }
  for (guint k = 0; k < G_N_ELEMENTS (tiny_extra); k++)
    g_string_append_printf (s, "\"%s\": %u%s", tiny_extra[k], 256 + k,
                            k + 1 < G_N_ELEMENTS (tiny_extra) ? ", " : "}");
  return g_string_free (s, FALSE);
}

/* Rank order matters: "b c" before "a b", so "abc" is a + bc (no "a bc"
 * merge) although "ab c" exists. */
static const char tiny_merges[] = "#version: 0.2\nb c\na b\na a\nab c\n";

static void
tiny_model_write (TinyModel *m, const char *vocab, gssize vlen, const char *merges, gssize mlen)
{
  g_autoptr(GError) err = NULL;
  m->dir = g_dir_make_tmp ("stsim-bpe-XXXXXX", &err);
  g_assert_no_error (err);
  m->vocab = g_build_filename (m->dir, "vocab.json", NULL);
  m->merges = g_build_filename (m->dir, "merges.txt", NULL);
  g_assert_true (g_file_set_contents (m->vocab, vocab, vlen, &err));
  g_assert_true (g_file_set_contents (m->merges, merges, mlen, &err));
}

static StsimTokenizer *
tiny_load (TinyModel *m, const char *vocab, const char *merges, GError **error)
{
  tiny_model_write (m, vocab, -1, merges, -1);
  return stsim_tokenizer_new_bpe (m->vocab, m->merges, error);
}

/* Content ids of @text (without <s> and </s>) as "a b c". */
static char *
content_ids (StsimTokenizer *tok, const char *text, gssize len)
{
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr(GError) err = NULL;
  g_assert_true (stsim_tokenizer_encode (tok, text, len, 0, ids, &err));
  g_assert_no_error (err);
  g_assert_cmpint (g_array_index (ids, gint32, 0), ==, stsim_tokenizer_cls_id (tok));
  g_assert_cmpint (g_array_index (ids, gint32, ids->len - 1), ==, stsim_tokenizer_sep_id (tok));
  GString *s = g_string_new (NULL);
  for (guint i = 1; i + 1 < ids->len; i++)
    g_string_append_printf (s, "%s%d", i > 1 ? " " : "", g_array_index (ids, gint32, i));
  return g_string_free (s, FALSE);
}

static void
assert_content (StsimTokenizer *tok, const char *text, const char *expect)
{
  g_autofree char *got = content_ids (tok, text, -1);
  g_assert_cmpstr (got, ==, expect);
}

static void
test_tiny_lowest_rank_first (void)
{
  TinyModel m = { 0 };
  g_autofree char *vocab = tiny_vocab_json (FALSE);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimTokenizer) tok = tiny_load (&m, vocab, tiny_merges, &err);
  g_assert_no_error (err);
  /* b c (rank 0) beats a b (rank 1); then a + bc has no rule: 97 262, not abc */
  assert_content (tok, "abc", "97 262");
  /* a b at 0 and 2; b a has no rule */
  assert_content (tok, "abab", "261 261");
  /* b c first, then the remaining a b: a bc ab */
  assert_content (tok, "abcab", "97 262 261");
  g_assert_cmpint (stsim_tokenizer_vocab_size (tok), ==, 265);
  g_assert_cmpint (stsim_tokenizer_cls_id (tok), ==, 256);
  g_assert_cmpint (stsim_tokenizer_pad_id (tok), ==, 257);
  g_assert_cmpint (stsim_tokenizer_sep_id (tok), ==, 258);
  g_assert_cmpint (stsim_tokenizer_mask_id (tok), ==, 260);
  tiny_model_clear (&m);
}

static void
test_tiny_leftmost_on_ties (void)
{
  TinyModel m = { 0 };
  g_autofree char *vocab = tiny_vocab_json (FALSE);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimTokenizer) tok = tiny_load (&m, vocab, tiny_merges, &err);
  g_assert_no_error (err);
  /* overlapping a a pairs: the leftmost merges first */
  assert_content (tok, "aaa", "263 97");
  assert_content (tok, "aaaa", "263 263");
  assert_content (tok, "aaaaa", "263 263 97");
  tiny_model_clear (&m);
}

static void
test_tiny_merge_creates_new_pair (void)
{
  TinyModel m = { 0 };
  g_autofree char *vocab = tiny_vocab_json (FALSE);
  /* with "b c" gone, a b merges first and ab c (rank 2) then applies */
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimTokenizer) tok = tiny_load (&m, vocab, "#version: 0.2\na b\na a\nab c\n", &err);
  g_assert_no_error (err);
  assert_content (tok, "abc", "264");
  assert_content (tok, "abcc", "264 99");
  /* a space starts a piece: " abc" is Ġ + abc */
  assert_content (tok, "abc abc", "264 32 264");
  tiny_model_clear (&m);
}

static void
test_tiny_crlf_and_no_final_newline (void)
{
  TinyModel m = { 0 };
  g_autofree char *vocab = tiny_vocab_json (FALSE);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimTokenizer) tok = tiny_load (&m, vocab, "#version: 0.2\r\nb c\r\na b\r\na a\r\nab c", &err);
  g_assert_no_error (err);
  assert_content (tok, "abc", "97 262");
  assert_content (tok, "aaa", "263 97");
  tiny_model_clear (&m);
}

static void
test_tiny_no_header (void)
{
  TinyModel m = { 0 };
  g_autofree char *vocab = tiny_vocab_json (FALSE);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimTokenizer) tok = tiny_load (&m, vocab, "b c\na b\n", &err);
  g_assert_no_error (err);
  assert_content (tok, "abc", "97 262");
  tiny_model_clear (&m);
}

/* ---- errors in the model files ------------------------------------------- */

static void
assert_load_fails (const char *vocab, gssize vlen, const char *merges, gssize mlen,
                   int code, const char *const *needles)
{
  TinyModel m = { 0 };
  g_autoptr(GError) err = NULL;
  tiny_model_write (&m, vocab, vlen, merges, mlen);
  g_autoptr(StsimTokenizer) tok = stsim_tokenizer_new_bpe (m.vocab, m.merges, &err);
  g_assert_null (tok);
  g_assert_error (err, STSIM_ERROR, code);
  for (; *needles; needles++) {
    g_autofree char *needle = g_strdup_printf (*needles, m.dir);
    if (!strstr (err->message, needle))
      g_error ("error message “%s” lacks “%s”", err->message, needle);
  }
  tiny_model_clear (&m);
}

static void
test_merges_malformed_line (void)
{
  g_autofree char *vocab = tiny_vocab_json (FALSE);
  const char *const three[] = { "%s/merges.txt:3:", "a b c", NULL };
  assert_load_fails (vocab, -1, "#version: 0.2\nb c\na b c\n", -1, STSIM_ERROR_PARSE, three);
  const char *const tab[] = { "%s/merges.txt:2:", "two tokens", NULL };
  assert_load_fails (vocab, -1, "#version: 0.2\na\tb\n", -1, STSIM_ERROR_PARSE, tab);
  const char *const empty[] = { "%s/merges.txt:2:", NULL };
  assert_load_fails (vocab, -1, "#version: 0.2\n\nb c\n", -1, STSIM_ERROR_PARSE, empty);
  const char *const lead[] = { "%s/merges.txt:1:", NULL };
  assert_load_fails (vocab, -1, " b\n", -1, STSIM_ERROR_PARSE, lead);
}

static void
test_merges_unknown_token (void)
{
  g_autofree char *vocab = tiny_vocab_json (FALSE);
  const char *const side[] = { "%s/merges.txt:3:", "“zz”", "same model", NULL };
  assert_load_fails (vocab, -1, "#version: 0.2\nb c\na zz\n", -1, STSIM_ERROR_PARSE, side);
  /* both sides exist but their concatenation does not */
  const char *const joined[] = { "%s/merges.txt:2:", "“cd”", NULL };
  assert_load_fails (vocab, -1, "#version: 0.2\nc d\n", -1, STSIM_ERROR_PARSE, joined);
}

static void
test_merges_invalid_utf8 (void)
{
  g_autofree char *vocab = tiny_vocab_json (FALSE);
  const char *const line[] = { "%s/merges.txt:3:", NULL };
  assert_load_fails (vocab, -1, "#version: 0.2\nb c\na \xff\n", -1, STSIM_ERROR_ENCODING, line);
  const char *const nul[] = { "%s/merges.txt:2:", NULL };
  assert_load_fails (vocab, -1, "#version: 0.2\na \0b\n", 19, STSIM_ERROR_ENCODING, nul);
}

static void
test_vocab_not_object (void)
{
  const char *const needles[] = { "%s/vocab.json", "expected a JSON object", NULL };
  assert_load_fails ("[\"a\", \"b\"]", -1, tiny_merges, -1, STSIM_ERROR_PARSE, needles);
  assert_load_fails ("42", -1, tiny_merges, -1, STSIM_ERROR_PARSE, needles);
}

static void
test_vocab_not_json (void)
{
  const char *const needles[] = { "%s/vocab.json", "not valid JSON", NULL };
  assert_load_fails ("{\"a\": 0,", -1, tiny_merges, -1, STSIM_ERROR_PARSE, needles);
  const char *const empty[] = { "%s/vocab.json", NULL };
  assert_load_fails ("", -1, tiny_merges, -1, STSIM_ERROR_PARSE, empty);
}

static void
test_vocab_bad_ids (void)
{
  const char *const string_id[] = { "%s/vocab.json", "“a”", "integer", NULL };
  assert_load_fails ("{\"a\": \"0\"}", -1, "", -1, STSIM_ERROR_PARSE, string_id);
  const char *const float_id[] = { "“a”", "integer", NULL };
  assert_load_fails ("{\"a\": 0.5}", -1, "", -1, STSIM_ERROR_PARSE, float_id);
  const char *const dup[] = { "share id 0", NULL };
  assert_load_fails ("{\"a\": 0, \"b\": 0}", -1, "", -1, STSIM_ERROR_PARSE, dup);
  const char *const range[] = { "“b”", "id 7", NULL };
  assert_load_fails ("{\"a\": 0, \"b\": 7}", -1, "", -1, STSIM_ERROR_PARSE, range);
  const char *const neg[] = { "id -1", NULL };
  assert_load_fails ("{\"a\": -1}", -1, "", -1, STSIM_ERROR_PARSE, neg);
  const char *const empty[] = { "empty", NULL };
  assert_load_fails ("{}", -1, "", -1, STSIM_ERROR_PARSE, empty);
}

static void
test_vocab_missing_byte (void)
{
  g_autofree char *vocab = tiny_vocab_json (TRUE);
  const char *const needles[] = { "%s/vocab.json", "byte 0x78", "256 byte characters", NULL };
  assert_load_fails (vocab, -1, "", -1, STSIM_ERROR_PARSE, needles);
}

static void
test_missing_files (void)
{
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimTokenizer) tok = stsim_tokenizer_new_bpe ("/nonexistent/stsim/vocab.json",
                                                           "/nonexistent/stsim/merges.txt", &err);
  g_assert_null (tok);
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (err->message, "/nonexistent/stsim/vocab.json"));
}

/* ---- roberta-base --------------------------------------------------------- */

static StsimTokenizer *roberta_tok;

/* roberta-base from $STSIM_DATA, loaded once; NULL when the data is absent. */
static StsimTokenizer *
roberta (void)
{
  const char *data = g_getenv ("STSIM_DATA");
  if (!roberta_tok && data) {
    g_autofree char *dir = g_build_filename (data, "vocab", "roberta-base", NULL);
    g_autoptr(GError) err = NULL;
    roberta_tok = stsim_tokenizer_new_from_dir (dir, &err);
    g_assert_no_error (err);
  }
  return roberta_tok;
}

#define NEED_ROBERTA(tok)                                                      \
  StsimTokenizer *tok = roberta ();                                            \
  if (!tok) {                                                                  \
    g_test_skip ("STSIM_DATA is not set: no roberta-base vocabulary");         \
    return;                                                                    \
  }

static char *
all_ids (StsimTokenizer *tok, const char *text, gssize len, int max_len)
{
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr(GError) err = NULL;
  g_assert_true (stsim_tokenizer_encode (tok, text, len, max_len, ids, &err));
  g_assert_no_error (err);
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < ids->len; i++)
    g_string_append_printf (s, "%s%d", i ? " " : "", g_array_index (ids, gint32, i));
  return g_string_free (s, FALSE);
}

static void
assert_ids (StsimTokenizer *tok, const char *text, gssize len, int max_len, const char *expect)
{
  g_autofree char *got = all_ids (tok, text, len, max_len);
  g_assert_cmpstr (got, ==, expect);
}

static void
test_roberta_golden (void)
{
  NEED_ROBERTA (tok);
  g_assert_cmpint (stsim_tokenizer_get_kind (tok), ==, STSIM_TOKENIZER_BPE);
  g_assert_cmpint (stsim_tokenizer_vocab_size (tok), ==, 50265);
  g_assert_cmpint (stsim_tokenizer_pad_id (tok), ==, 1);
  g_assert_cmpint (stsim_tokenizer_mask_id (tok), ==, 50264);
  /* method.md §2.4 */
  assert_ids (tok, "Hello world", -1, 0, "0 31414 232 2");
  /* printf "they'll  say\t\"naïve\" 3.14 😀\n" | node ref-tokenize.js --bpe ... */
  assert_ids (tok, "they'll  say\t\"na\xc3\xafve\" 3.14 \xf0\x9f\x98\x80", -1, 0,
              "0 10010 581 1437 224 50117 113 2133 48350 113 155 4 1570 17841 7471 2");
  assert_ids (tok, "", -1, 0, "0 2");
  g_assert_cmpstr (stsim_tokenizer_id_to_token (tok, 232), ==, "\xc4\xa0world");  /* Ġworld */
  g_assert_cmpint (stsim_tokenizer_token_to_id (tok, "Hello"), ==, 31414);
  g_assert_null (stsim_tokenizer_id_to_token (tok, 50265));
  g_assert_null (stsim_tokenizer_id_to_token (tok, -1));
  g_assert_cmpint (stsim_tokenizer_token_to_id (tok, "no such token here"), ==, -1);
}

static void
test_roberta_nul_byte (void)
{
  NEED_ROBERTA (tok);
  /* printf 'a\000b\n' | node ref-tokenize.js --bpe ...: U+0000 is byte char Ā (50108) */
  assert_ids (tok, "a\0b", 3, 0, "0 102 50108 428 2");
}

static void
test_roberta_truncation_keeps_eos (void)
{
  NEED_ROBERTA (tok);
  const char *s = "A man is playing a large flute on the stage tonight .";
  /* node ref-tokenize.js --bpe ... [--max-len 8] */
  assert_ids (tok, s, -1, 0, "0 250 313 16 816 10 739 2342 4467 15 5 1289 3422 479 2");
  assert_ids (tok, s, -1, 8, "0 250 313 16 816 10 739 2");
  assert_ids (tok, s, -1, 2, "0 2");
  assert_ids (tok, s, -1, 15, "0 250 313 16 816 10 739 2342 4467 15 5 1289 3422 479 2");
  assert_ids (tok, s, -1, 100, "0 250 313 16 816 10 739 2342 4467 15 5 1289 3422 479 2");
}

static void
test_roberta_invalid_utf8 (void)
{
  NEED_ROBERTA (tok);
  static const struct {
    const char *text;
    gssize      len;
  } bad[] = {
    { "abc \x80 def", -1 },          /* lone continuation byte */
    { "\xc0\xaf", -1 },              /* overlong '/' */
    { "\xe0\x80\xaf", -1 },          /* overlong, three bytes */
    { "x\xed\xa0\x80y", -1 },        /* UTF-16 surrogate U+D800 */
    { "\xf4\x90\x80\x80", -1 },      /* past U+10FFFF */
    { "caf\xc3", -1 },               /* truncated at the end */
    { "\xe2\x82", 2 },               /* truncated by the length */
    { "\xff\xfe", -1 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
    gint32 sentinel = 77;
    g_array_append_val (ids, sentinel);
    g_autoptr(GError) err = NULL;
    g_assert_false (stsim_tokenizer_encode (tok, bad[i].text, bad[i].len, 0, ids, &err));
    g_assert_error (err, STSIM_ERROR, STSIM_ERROR_ENCODING);
    g_assert_cmpuint (ids->len, ==, 1);
    g_assert_cmpint (g_array_index (ids, gint32, 0), ==, 77);
  }
}

static void
test_impl_rejects_invalid_utf8 (void)
{
  /* bpe.c's own entry point checks too: it is reachable without tokenizer.c's check. */
  NEED_ROBERTA (tok);
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr(GError) err = NULL;
  g_assert_false (tok->impl->encode_content (tok->impl_data, "ok \xe2\x28\xa1", 6, ids, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_ENCODING);
  g_assert_nonnull (strstr (err->message, "byte 3"));
  g_assert_cmpuint (ids->len, ==, 0);
}

/* Bytes spelled by content ids, through the independent inverse alphabet. */
static GByteArray *
bytes_of_ids (StsimTokenizer *tok, const gint32 *ids, guint n)
{
  GByteArray *out = g_byte_array_new ();
  for (guint i = 0; i < n; i++) {
    const char *t = stsim_tokenizer_id_to_token (tok, ids[i]);
    g_assert_nonnull (t);
    for (const char *p = t; *p; p = g_utf8_next_char (p)) {
      int b = char_to_byte (g_utf8_get_char (p));
      g_assert_cmpint (b, >=, 0);
      guint8 byte = (guint8) b;
      g_byte_array_append (out, &byte, 1);
    }
  }
  return out;
}

static void
assert_round_trip (StsimTokenizer *tok, const char *text, gsize len)
{
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr(GError) err = NULL;
  g_assert_true (tok->impl->encode_content (tok->impl_data, text, len, ids, &err));
  g_assert_no_error (err);
  g_autoptr(GByteArray) back = bytes_of_ids (tok, (const gint32 *) ids->data, ids->len);
  g_assert_cmpmem (back->data, back->len, text, len);
}

static char *
read_fixture (const char *name, gsize *len)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "fixtures", "tokenizer", name, NULL);
  char *data = NULL;
  g_autoptr(GError) err = NULL;
  g_assert_true (g_file_get_contents (path, &data, len, &err));
  g_assert_no_error (err);
  return data;
}

static void
test_roberta_round_trip (void)
{
  NEED_ROBERTA (tok);
  gsize len;
  g_autofree char *cases = read_fixture ("hard-cases-bpe.txt", &len);
  guint n = 0;
  for (char *line = cases, *end = cases + len; line < end; n++) {
    char *nl = memchr (line, '\n', (gsize) (end - line));
    gsize l = nl ? (gsize) (nl - line) : (gsize) (end - line);
    assert_round_trip (tok, line, l);
    line += l + 1;
  }
  g_assert_cmpuint (n, >, 50);
}

static void
test_roberta_long_piece (void)
{
  NEED_ROBERTA (tok);
  /* One 200,000-letter piece and one 100,000-digit piece: the heap keeps this
   * O(n log n) (a rescanning merge loop would take minutes). */
  gsize n = 300000;
  g_autofree char *s = g_malloc (n);
  for (gsize i = 0; i < 200000; i++)
    s[i] = "abcdefghij"[(i * 7 + i / 13) % 10];
  for (gsize i = 200000; i < n; i++)
    s[i] = (char) ('0' + (i % 7));
  gint64 t0 = g_get_monotonic_time ();
  assert_round_trip (tok, s, n);
  g_test_message ("300,000-byte input in %.0f ms", (g_get_monotonic_time () - t0) / 1000.0);
}

typedef struct {
  StsimTokenizer *tok;
  const char     *text;
  gsize           len;
  char           *result;
} ThreadJob;

static char *
encode_lines (StsimTokenizer *tok, const char *text, gsize len)
{
  GString *out = g_string_new (NULL);
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  for (const char *line = text, *end = text + len; line < end;) {
    const char *nl = memchr (line, '\n', (gsize) (end - line));
    gsize l = nl ? (gsize) (nl - line) : (gsize) (end - line);
    g_array_set_size (ids, 0);
    if (!stsim_tokenizer_encode (tok, line, (gssize) l, 0, ids, NULL))
      g_string_append (out, "ERROR");
    for (guint i = 0; i < ids->len; i++)
      g_string_append_printf (out, " %d", g_array_index (ids, gint32, i));
    g_string_append_c (out, '\n');
    line += l + 1;
  }
  return g_string_free (out, FALSE);
}

static gpointer
thread_job (gpointer data)
{
  ThreadJob *job = data;
  for (int rep = 0; rep < 20; rep++) {
    char *r = encode_lines (job->tok, job->text, job->len);
    if (job->result && strcmp (job->result, r) != 0) {
      g_free (r);
      return GINT_TO_POINTER (1);
    }
    g_free (job->result);
    job->result = r;
  }
  return NULL;
}

static void
test_roberta_threads (void)
{
  /* The piece cache is shared: concurrent encodes must not disturb each other. */
  StsimTokenizer *shared = roberta ();
  if (!shared) {
    g_test_skip ("STSIM_DATA is not set");
    return;
  }
  const char *data = g_getenv ("STSIM_DATA");
  g_autofree char *dir = g_build_filename (data, "vocab", "roberta-base", NULL);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimTokenizer) tok = stsim_tokenizer_new_from_dir (dir, &err);
  g_assert_no_error (err);
  gsize len;
  g_autofree char *cases = read_fixture ("hard-cases-bpe.txt", &len);
  g_autofree char *expect = encode_lines (shared, cases, len);

  ThreadJob jobs[4];
  GThread *threads[4];
  for (int t = 0; t < 4; t++) {
    jobs[t] = (ThreadJob) { tok, cases, len, NULL };
    threads[t] = g_thread_new ("bpe", thread_job, &jobs[t]);
  }
  for (int t = 0; t < 4; t++) {
    g_assert_null (g_thread_join (threads[t]));
    g_assert_cmpstr (jobs[t].result, ==, expect);
    g_free (jobs[t].result);
  }
}

static void
test_roberta_cache_overflow (void)
{
  /* More distinct pieces than the cache holds (65,536): results must not
   * depend on what the cache happened to keep. A fresh tokenizer encodes each
   * word first with an empty cache; the shared one sees them after 70,000. */
  NEED_ROBERTA (shared);
  const char *data = g_getenv ("STSIM_DATA");
  g_autofree char *dir = g_build_filename (data, "vocab", "roberta-base", NULL);
  g_autoptr(GError) err = NULL;
  GString *text = g_string_new (NULL);
  for (guint i = 0; i < 70000; i++) {
    char w[8];
    guint v = i;
    for (int k = 0; k < 4; k++, v /= 26)
      w[k] = (char) ('a' + v % 26);
    w[4] = 'q';
    w[5] = 0;
    g_string_append_printf (text, " %s", w);
  }
  g_autofree char *first = all_ids (shared, text->str, (gssize) text->len, 0);
  g_autofree char *second = all_ids (shared, text->str, (gssize) text->len, 0);
  g_assert_cmpstr (first, ==, second);
  g_autoptr(StsimTokenizer) fresh = stsim_tokenizer_new_from_dir (dir, &err);
  g_assert_no_error (err);
  for (guint i = 0; i < 5; i++) {
    const char *w = text->str + 1 + 6 * (i * 13331 % 70000);
    g_autofree char *word = g_strndup (w - 1, 6);
    g_autofree char *a = all_ids (fresh, word, -1, 0);
    g_autofree char *b = all_ids (shared, word, -1, 0);
    g_assert_cmpstr (a, ==, b);
  }
  g_string_free (text, TRUE);
}

/* STS-B and SICK sentences, read as SentEval reads them. */
static void
append_columns (GPtrArray *out, const char *path, guint skip_lines, const int *cols, int ncols)
{
  g_autofree char *data = NULL;
  g_autoptr(GError) err = NULL;
  g_assert_true (g_file_get_contents (path, &data, NULL, &err));
  g_auto(GStrv) lines = g_strsplit (data, "\n", -1);
  for (guint i = skip_lines; lines[i]; i++) {
    if (!*lines[i])
      continue;
    g_auto(GStrv) f = g_strsplit (lines[i], "\t", -1);
    for (int c = 0; c < ncols; c++)
      if (g_strv_length (f) > (guint) cols[c])
        g_ptr_array_add (out, g_strdup (f[cols[c]]));
  }
}

static void
test_roberta_speed (void)
{
  NEED_ROBERTA (shared);
  const char *data = g_getenv ("STSIM_DATA");
  g_autoptr(GPtrArray) sents = g_ptr_array_new_with_free_func (g_free);
  const int sts_cols[] = { 5, 6 }, sick_cols[] = { 1, 2 };
  const char *sts[] = { "sts-train.csv", "sts-dev.csv", "sts-test.csv" };
  const char *sick[] = { "SICK_train.txt", "SICK_trial.txt", "SICK_test_annotated.txt" };
  for (int i = 0; i < 3; i++) {
    g_autofree char *p = g_build_filename (data, "senteval", "downstream", "STS", "STSBenchmark", sts[i], NULL);
    append_columns (sents, p, 0, sts_cols, 2);
    g_autofree char *q = g_build_filename (data, "senteval", "downstream", "SICK", sick[i], NULL);
    append_columns (sents, q, 1, sick_cols, 2);
  }
  g_assert_cmpuint (sents->len, ==, 37110);

  g_autofree char *dir = g_build_filename (data, "vocab", "roberta-base", NULL);
  g_autoptr(GError) err = NULL;
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr(StsimTokenizer) tok = stsim_tokenizer_new_from_dir (dir, &err);
  g_assert_no_error (err);
  gint64 t1 = g_get_monotonic_time ();
  clock_t c1 = clock ();
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  for (guint i = 0; i < sents->len; i++)
    g_assert_true (stsim_tokenizer_encode (tok, sents->pdata[i], -1, 0, ids, NULL));
  gint64 t2 = g_get_monotonic_time ();
  double cpu = (double) (clock () - c1) / CLOCKS_PER_SEC;
  g_test_message ("load %.1f ms; %u sentences, %u ids in %.1f ms wall, %.1f ms CPU (cold cache)",
                  (t1 - t0) / 1000.0, sents->len, ids->len, (t2 - t1) / 1000.0, cpu * 1000.0);
  /* A loose bound on CPU time (not wall: the machine may be shared) that
   * still catches a quadratic or uncached path, also under ASan. */
  g_assert_cmpfloat (cpu, <, 5.0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/bpe/byte-table", test_byte_table);
  g_test_add_func ("/bpe/pretokenize/spaces", test_pretokenize_spaces);
  g_test_add_func ("/bpe/pretokenize/contractions", test_pretokenize_contractions);
  g_test_add_func ("/bpe/pretokenize/unicode-spaces", test_pretokenize_unicode_spaces);
  g_test_add_func ("/bpe/pretokenize/classes", test_pretokenize_classes);
  g_test_add_func ("/bpe/tiny/lowest-rank-first", test_tiny_lowest_rank_first);
  g_test_add_func ("/bpe/tiny/leftmost-on-ties", test_tiny_leftmost_on_ties);
  g_test_add_func ("/bpe/tiny/merge-creates-new-pair", test_tiny_merge_creates_new_pair);
  g_test_add_func ("/bpe/tiny/crlf-no-final-newline", test_tiny_crlf_and_no_final_newline);
  g_test_add_func ("/bpe/tiny/no-header", test_tiny_no_header);
  g_test_add_func ("/bpe/load/merges-malformed-line", test_merges_malformed_line);
  g_test_add_func ("/bpe/load/merges-unknown-token", test_merges_unknown_token);
  g_test_add_func ("/bpe/load/merges-invalid-utf8", test_merges_invalid_utf8);
  g_test_add_func ("/bpe/load/vocab-not-object", test_vocab_not_object);
  g_test_add_func ("/bpe/load/vocab-not-json", test_vocab_not_json);
  g_test_add_func ("/bpe/load/vocab-bad-ids", test_vocab_bad_ids);
  g_test_add_func ("/bpe/load/vocab-missing-byte", test_vocab_missing_byte);
  g_test_add_func ("/bpe/load/missing-files", test_missing_files);
  g_test_add_func ("/bpe/roberta/golden", test_roberta_golden);
  g_test_add_func ("/bpe/roberta/nul-byte", test_roberta_nul_byte);
  g_test_add_func ("/bpe/roberta/truncation-keeps-eos", test_roberta_truncation_keeps_eos);
  g_test_add_func ("/bpe/roberta/invalid-utf8", test_roberta_invalid_utf8);
  g_test_add_func ("/bpe/roberta/impl-invalid-utf8", test_impl_rejects_invalid_utf8);
  g_test_add_func ("/bpe/roberta/round-trip", test_roberta_round_trip);
  g_test_add_func ("/bpe/roberta/long-piece", test_roberta_long_piece);
  g_test_add_func ("/bpe/roberta/threads", test_roberta_threads);
  g_test_add_func ("/bpe/roberta/cache-overflow", test_roberta_cache_overflow);
  g_test_add_func ("/bpe/roberta/speed", test_roberta_speed);
  int rc = g_test_run ();
  g_clear_pointer (&roberta_tok, stsim_tokenizer_free);
  return rc;
}
