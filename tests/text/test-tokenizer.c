/* test-tokenizer.c: the common tokenizer layer and WordPiece on hand-made
 * vocabularies (expected ids worked out by hand) and on the real
 * bert-base-uncased vocabulary (ids from the data README and method.md §2.4).
 * Parity with Hugging Face on real and adversarial text is compare-tokenize.py's job. */
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include "stsim/stsim-tokenizer.h"
#include "test-util.h"

static char *
bert_vocab_path (void)
{
  const char *data = g_getenv ("STSIM_DATA");
  if (!data)
    return NULL;
  char *p = g_build_filename (data, "vocab", "bert-base-uncased", "vocab.txt", NULL);
  if (!g_file_test (p, G_FILE_TEST_EXISTS)) {
    g_free (p);
    return NULL;
  }
  return p;
}

static StsimTokenizer *
bert_or_skip (void)
{
  g_autofree char *p = bert_vocab_path ();
  if (!p) {
    g_test_skip ("STSIM_DATA/vocab/bert-base-uncased/vocab.txt not found");
    return NULL;
  }
  g_autoptr(GError) err = NULL;
  StsimTokenizer *tok = stsim_tokenizer_new_wordpiece (p, TRUE, &err);
  g_assert_no_error (err);
  return tok;
}

static char *
make_tmpdir (void)
{
  g_autoptr(GError) err = NULL;
  char *dir = g_dir_make_tmp ("stsim-tok-XXXXXX", &err);
  g_assert_no_error (err);
  return dir;
}

static void
write_file (const char *dir, const char *name, const char *contents, gssize len)
{
  g_autofree char *p = g_build_filename (dir, name, NULL);
  g_autoptr(GError) err = NULL;
  g_file_set_contents (p, contents, len, &err);
  g_assert_no_error (err);
}

/* A toy vocabulary: ids are line numbers. */
static const char toy_vocab[] =
  "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"  /* 0-4 */
  "un\nunaff\n##aff\n##able\n##a\n"       /* 5-9 */
  "a\n##b\nhello\n,\n!\n"                 /* 10-14 */
  "x\n##x\n";                             /* 15-16 */

static StsimTokenizer *
toy_tokenizer (char **dir_out)
{
  char *dir = make_tmpdir ();
  write_file (dir, "vocab.txt", toy_vocab, -1);
  g_autofree char *p = g_build_filename (dir, "vocab.txt", NULL);
  g_autoptr(GError) err = NULL;
  StsimTokenizer *tok = stsim_tokenizer_new_wordpiece (p, TRUE, &err);
  g_assert_no_error (err);
  *dir_out = dir;
  return tok;
}

static void
assert_ids (StsimTokenizer *tok, const char *text, gssize len, int max_len, const gint32 *expect, guint n)
{
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr(GError) err = NULL;
  gboolean ok = stsim_tokenizer_encode (tok, text, len, max_len, ids, &err);
  g_assert_no_error (err);
  g_assert_true (ok);
  g_assert_cmpmem (ids->data, ids->len * sizeof (gint32), expect, n * sizeof (gint32));
}

#define IDS(...) ((const gint32[]) { __VA_ARGS__ }), (sizeof ((const gint32[]) { __VA_ARGS__ }) / sizeof (gint32))

static void
test_special_ids_bert (void)
{
  g_autoptr(StsimTokenizer) tok = bert_or_skip ();
  if (!tok)
    return;
  /* data/vocab/README.md: [PAD]=0 [UNK]=100 [CLS]=101 [SEP]=102 [MASK]=103, 30,522 lines. */
  g_assert_cmpint (stsim_tokenizer_get_kind (tok), ==, STSIM_TOKENIZER_WORDPIECE);
  g_assert_cmpint (stsim_tokenizer_vocab_size (tok), ==, 30522);
  g_assert_cmpint (stsim_tokenizer_pad_id (tok), ==, 0);
  g_assert_cmpint (stsim_tokenizer_unk_id (tok), ==, 100);
  g_assert_cmpint (stsim_tokenizer_cls_id (tok), ==, 101);
  g_assert_cmpint (stsim_tokenizer_sep_id (tok), ==, 102);
  g_assert_cmpint (stsim_tokenizer_mask_id (tok), ==, 103);
  g_assert_cmpint (stsim_tokenizer_token_to_id (tok, "the"), ==, 1996);
  g_assert_cmpstr (stsim_tokenizer_id_to_token (tok, 1996), ==, "the");
  g_assert_cmpstr (stsim_tokenizer_id_to_token (tok, 30521), ==, "##～");
  g_assert_null (stsim_tokenizer_id_to_token (tok, 30522));
  g_assert_null (stsim_tokenizer_id_to_token (tok, -1));
  g_assert_cmpint (stsim_tokenizer_token_to_id (tok, "not-a-token"), ==, -1);
  /* HF all_special_ids: exactly the five; [unused0] (id 1) is not special. */
  const gint32 special[] = { 0, 100, 101, 102, 103 };
  for (guint i = 0; i < G_N_ELEMENTS (special); i++)
    g_assert_true (stsim_tokenizer_is_special (tok, special[i]));
  g_assert_false (stsim_tokenizer_is_special (tok, 1));
  g_assert_false (stsim_tokenizer_is_special (tok, 1996));
  g_assert_false (stsim_tokenizer_is_special (tok, -1));
}

static void
test_sanity_bert (void)
{
  g_autoptr(StsimTokenizer) tok = bert_or_skip ();
  if (!tok)
    return;
  /* method.md §2.4 */
  assert_ids (tok, "Hello, world!", -1, 0, IDS (101, 7592, 1010, 2088, 999, 102));
  assert_ids (tok, "", -1, 0, IDS (101, 102));
  assert_ids (tok, "   \t ", -1, 0, IDS (101, 102));
  /* A literal special token in the text is that token (HF added tokens,
   * matched before normalization), its lowercase spelling is plain text. */
  g_autoptr(GArray) a = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_assert_true (stsim_tokenizer_encode (tok, "x [MASK] y", -1, 0, a, NULL));
  g_assert_cmpint (a->len, ==, 5);
  g_assert_cmpint (g_array_index (a, gint32, 2), ==, 103);
  g_array_set_size (a, 0);
  g_assert_true (stsim_tokenizer_encode (tok, "[mask]", -1, 0, a, NULL));
  g_assert_cmpint (a->len, ==, 5);  /* [CLS] [ mask ] [SEP] */
  g_assert_cmpint (g_array_index (a, gint32, 1), ==, stsim_tokenizer_token_to_id (tok, "["));
}

static void
test_wordpiece_greedy (void)
{
  char *dir = NULL;
  StsimTokenizer *tok = toy_tokenizer (&dir);
  /* Longest match first: "unaffable" = unaff ##able, not un ##aff ##able. */
  assert_ids (tok, "unaffable", -1, 0, IDS (2, 6, 8, 3));
  /* "unaffa": unaff ##a */
  assert_ids (tok, "unaffa", -1, 0, IDS (2, 6, 9, 3));
  /* "unab": un, then "##ab" is absent, "##a" fits, then "##b". */
  assert_ids (tok, "unab", -1, 0, IDS (2, 5, 9, 11, 3));
  /* A piece that fails makes the whole word one [UNK]: "unq". */
  assert_ids (tok, "unq hello", -1, 0, IDS (2, 1, 12, 3));
  /* Uppercase and accents fold (uncased); punctuation splits. */
  assert_ids (tok, "HÉLLO,Ünaff!", -1, 0, IDS (2, 12, 13, 6, 14, 3));
  /* 100 characters are still WordPiece'd (x ##x * 99), 101 are [UNK]. */
  g_autofree char *w100 = g_strnfill (100, 'x');
  g_autofree char *w101 = g_strnfill (101, 'x');
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_assert_true (stsim_tokenizer_encode (tok, w100, -1, 0, ids, NULL));
  g_assert_cmpint (ids->len, ==, 102);
  g_assert_cmpint (g_array_index (ids, gint32, 1), ==, 15);
  for (guint i = 2; i < 101; i++)
    g_assert_cmpint (g_array_index (ids, gint32, i), ==, 16);
  assert_ids (tok, w101, -1, 0, IDS (2, 1, 3));
  /* The limit counts characters after normalization: 100 "x\u0301"
   * (200 code points) strip to 100 x, which are still WordPiece'd. */
  GString *s = g_string_new (NULL);
  for (int i = 0; i < 100; i++)
    g_string_append (s, "x\xcc\x81");
  g_array_set_size (ids, 0);
  g_assert_true (stsim_tokenizer_encode (tok, s->str, -1, 0, ids, NULL));
  g_assert_cmpint (ids->len, ==, 102);
  g_string_free (s, TRUE);
  stsim_tokenizer_free (tok);
  stsim_test_remove_tree (dir);
  g_free (dir);
}

static void
test_clean_and_split (void)
{
  char *dir = NULL;
  StsimTokenizer *tok = toy_tokenizer (&dir);
  /* NUL, a control char, a zero-width space and U+FFFD vanish; a tab, CR and
   * an ideographic space separate words. NUL needs an explicit length. */
  assert_ids (tok, "hel\x00lo", 6, 0, IDS (2, 12, 3));
  assert_ids (tok, "he\x01ll\xe2\x80\x8bo\xef\xbf\xbd", -1, 0, IDS (2, 12, 3));
  assert_ids (tok, "x\tx\rx\xe3\x80\x80x", -1, 0, IDS (2, 15, 15, 15, 15, 3));
  /* CJK characters become words of their own: 中 is not in the toy vocab. */
  assert_ids (tok, "x\xe4\xb8\xadx", -1, 0, IDS (2, 15, 1, 15, 3));
  stsim_tokenizer_free (tok);
  stsim_test_remove_tree (dir);
  g_free (dir);
}

static void
test_truncation (void)
{
  char *dir = NULL;
  StsimTokenizer *tok = toy_tokenizer (&dir);
  /* content: x , x ! hello (5 ids) */
  assert_ids (tok, "x,x!hello", -1, 0, IDS (2, 15, 13, 15, 14, 12, 3));
  assert_ids (tok, "x,x!hello", -1, 7, IDS (2, 15, 13, 15, 14, 12, 3));
  assert_ids (tok, "x,x!hello", -1, 100, IDS (2, 15, 13, 15, 14, 12, 3));
  assert_ids (tok, "x,x!hello", -1, 6, IDS (2, 15, 13, 15, 14, 3));
  assert_ids (tok, "x,x!hello", -1, 4, IDS (2, 15, 13, 3));
  assert_ids (tok, "x,x!hello", -1, 2, IDS (2, 3));
  /* Truncation cuts between the pieces of a word, as HF does. */
  assert_ids (tok, "unaffable", -1, 3, IDS (2, 6, 3));
  /* max_len 1 cannot hold [CLS] and [SEP]. */
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr(GError) err = NULL;
  g_assert_false (stsim_tokenizer_encode (tok, "x", -1, 1, ids, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_INVALID);
  g_assert_cmpint (ids->len, ==, 0);
  stsim_tokenizer_free (tok);
  stsim_test_remove_tree (dir);
  g_free (dir);
}

static void
test_truncation_bert (void)
{
  g_autoptr(StsimTokenizer) tok = bert_or_skip ();
  if (!tok)
    return;
  const char *s = "a man is playing a flute while another man plays a guitar in the park .";
  g_autoptr(GArray) full = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr(GArray) cut = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_assert_true (stsim_tokenizer_encode (tok, s, -1, 0, full, NULL));
  g_assert_cmpint (full->len, ==, 18);
  g_assert_true (stsim_tokenizer_encode (tok, s, -1, 8, cut, NULL));
  g_assert_cmpint (cut->len, ==, 8);
  g_assert_cmpmem (cut->data, 7 * sizeof (gint32), full->data, 7 * sizeof (gint32));
  g_assert_cmpint (g_array_index (cut, gint32, 7), ==, 102);
}

static void
test_invalid_utf8 (void)
{
  char *dir = NULL;
  StsimTokenizer *tok = toy_tokenizer (&dir);
  static const struct {
    const char *bytes;
    gsize offset;  /* 1-based byte the message names */
  } bad[] = {
    { "ok \xff", 4 },                  /* a byte that is never UTF-8 */
    { "\xc0\xaf", 1 },                 /* overlong '/' */
    { "\xe0\x80\xaf", 1 },             /* overlong, 3 bytes */
    { "x\xed\xa0\x80", 2 },            /* a UTF-16 surrogate */
    { "ab\xe2\x82", 3 },               /* truncated sequence at the end */
    { "\xe2\x82x", 1 },                /* truncated sequence mid-text */
    { "\xf4\x90\x80\x80", 1 },         /* past U+10FFFF */
    { "\x80", 1 },                     /* lone continuation byte */
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
    gint32 keep = 42;
    g_array_append_val (ids, keep);
    g_autoptr(GError) err = NULL;
    g_assert_false (stsim_tokenizer_encode (tok, bad[i].bytes, -1, 0, ids, &err));
    g_assert_error (err, STSIM_ERROR, STSIM_ERROR_ENCODING);
    g_autofree char *want = g_strdup_printf ("at byte %" G_GSIZE_FORMAT " ", bad[i].offset);
    g_assert_nonnull (strstr (err->message, want));
    /* On error the array is unchanged. */
    g_assert_cmpint (ids->len, ==, 1);
    g_assert_cmpint (g_array_index (ids, gint32, 0), ==, 42);
  }
  /* The largest scalar value and a 4-byte emoji are fine. */
  assert_ids (tok, "\xf4\x8f\xbf\xbf", -1, 0, IDS (2, 1, 3));
  stsim_tokenizer_free (tok);
  stsim_test_remove_tree (dir);
  g_free (dir);
}

static void
test_batch (void)
{
  char *dir = NULL;
  StsimTokenizer *tok = toy_tokenizer (&dir);
  const char *texts[] = { "hello", "x, x!", "", "unaffable" };
  StsimTokenBatch b;
  g_autoptr(GError) err = NULL;
  g_assert_true (stsim_tokenizer_encode_batch (tok, texts, 4, 0, &b, &err));
  g_assert_no_error (err);
  g_assert_cmpuint (b.n, ==, 4);
  g_assert_cmpuint (b.width, ==, 6);
  const gint32 want_ids[4][6] = {
    { 2, 12, 3, 0, 0, 0 },
    { 2, 15, 13, 15, 14, 3 },
    { 2, 3, 0, 0, 0, 0 },
    { 2, 6, 8, 3, 0, 0 },
  };
  const gint32 want_len[4] = { 3, 6, 2, 4 };
  for (int i = 0; i < 4; i++) {
    g_assert_cmpint (b.lengths[i], ==, want_len[i]);
    for (int j = 0; j < 6; j++) {
      g_assert_cmpint (b.ids[i * 6 + j], ==, want_ids[i][j]);
      g_assert_cmpint (b.mask[i * 6 + j], ==, j < want_len[i] ? 1 : 0);
    }
  }
  stsim_token_batch_clear (&b);
  g_assert_null (b.ids);
  g_assert_cmpuint (b.n, ==, 0);

  /* Truncation applies to every row. */
  g_assert_true (stsim_tokenizer_encode_batch (tok, texts, 4, 3, &b, &err));
  g_assert_cmpuint (b.width, ==, 3);
  g_assert_cmpint (b.ids[1 * 3 + 2], ==, 3);
  g_assert_cmpint (b.lengths[2], ==, 2);
  stsim_token_batch_clear (&b);

  /* An empty batch. */
  g_assert_true (stsim_tokenizer_encode_batch (tok, texts, 0, 0, &b, &err));
  g_assert_cmpuint (b.n, ==, 0);
  g_assert_cmpuint (b.width, ==, 0);
  stsim_token_batch_clear (&b);

  /* Invalid UTF-8 in row 3: the error names it and nothing is allocated. */
  const char *bad[] = { "hello", "x", "x\xff", "x" };
  g_assert_false (stsim_tokenizer_encode_batch (tok, bad, 4, 0, &b, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_ENCODING);
  g_assert_nonnull (strstr (err->message, "text 3 of the batch"));
  g_assert_null (b.ids);
  g_assert_null (b.mask);
  stsim_tokenizer_free (tok);
  stsim_test_remove_tree (dir);
  g_free (dir);
}

static void
test_batch_bert_pad (void)
{
  g_autoptr(StsimTokenizer) tok = bert_or_skip ();
  if (!tok)
    return;
  const char *texts[] = { "Hello, world!", "hi" };
  StsimTokenBatch b;
  g_assert_true (stsim_tokenizer_encode_batch (tok, texts, 2, 0, &b, NULL));
  g_assert_cmpuint (b.width, ==, 6);
  g_assert_cmpint (b.lengths[1], ==, 3);
  g_assert_cmpint (b.ids[6 + 2], ==, 102);
  g_assert_cmpint (b.ids[6 + 3], ==, 0);  /* [PAD] */
  g_assert_cmpint (b.ids[6 + 5], ==, 0);
  stsim_token_batch_clear (&b);
}

static void
test_vocab_errors (void)
{
  g_autofree char *dir = make_tmpdir ();
  g_autoptr(GError) err = NULL;
  g_autofree char *p = g_build_filename (dir, "vocab.txt", NULL);

  /* Missing file. */
  g_assert_null (stsim_tokenizer_new_wordpiece (p, TRUE, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (err->message, p));
  g_clear_error (&err);

  /* Empty file. */
  write_file (dir, "vocab.txt", "", 0);
  g_assert_null (stsim_tokenizer_new_wordpiece (p, TRUE, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_PARSE);
  g_assert_nonnull (strstr (err->message, "empty"));
  g_clear_error (&err);

  /* Invalid UTF-8 on line 3. */
  write_file (dir, "vocab.txt", "[PAD]\n[UNK]\nab\xfe\n", -1);
  g_assert_null (stsim_tokenizer_new_wordpiece (p, TRUE, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_PARSE);
  g_assert_nonnull (strstr (err->message, "vocab.txt:3:"));
  g_clear_error (&err);

  /* No [MASK]. */
  write_file (dir, "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n", -1);
  g_assert_null (stsim_tokenizer_new_wordpiece (p, TRUE, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_PARSE);
  g_assert_nonnull (strstr (err->message, "[MASK]"));
  g_clear_error (&err);

  /* No [UNK]. */
  write_file (dir, "vocab.txt", "[PAD]\n[CLS]\n[SEP]\n[MASK]\n", -1);
  g_assert_null (stsim_tokenizer_new_wordpiece (p, TRUE, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_PARSE);
  g_assert_nonnull (strstr (err->message, "[UNK]"));
  g_clear_error (&err);

  /* CRLF lines and trailing spaces are trimmed; a final line without '\n'
   * counts; a repeated token keeps its last id. */
  write_file (dir, "vocab.txt", "[PAD]\r\n[UNK] \n[CLS]\n[SEP]\n[MASK]\nab\nab\ncd", -1);
  g_autoptr(StsimTokenizer) tok = stsim_tokenizer_new_wordpiece (p, TRUE, &err);
  g_assert_no_error (err);
  g_assert_cmpint (stsim_tokenizer_vocab_size (tok), ==, 8);
  g_assert_cmpint (stsim_tokenizer_pad_id (tok), ==, 0);
  g_assert_cmpint (stsim_tokenizer_unk_id (tok), ==, 1);
  g_assert_cmpint (stsim_tokenizer_token_to_id (tok, "ab"), ==, 6);
  g_assert_cmpint (stsim_tokenizer_token_to_id (tok, "cd"), ==, 7);
  g_assert_cmpstr (stsim_tokenizer_id_to_token (tok, 5), ==, "ab");
  assert_ids (tok, "ab cd", -1, 0, IDS (2, 6, 7, 3));
  stsim_test_remove_tree (dir);
}

static void
test_from_dir (void)
{
  g_autofree char *dir = make_tmpdir ();
  g_autoptr(GError) err = NULL;

  /* Nothing there. */
  g_assert_null (stsim_tokenizer_new_from_dir (dir, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (err->message, "vocab.txt"));
  g_clear_error (&err);

  /* Not a folder. */
  g_autofree char *nodir = g_build_filename (dir, "nope", NULL);
  g_assert_null (stsim_tokenizer_new_from_dir (nodir, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_clear_error (&err);

  /* vocab.json alone is half a BPE tokenizer. */
  write_file (dir, "vocab.json", "{}", -1);
  g_assert_null (stsim_tokenizer_new_from_dir (dir, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (err->message, "merges.txt"));
  g_clear_error (&err);

  /* vocab.txt -> WordPiece, uncased by default. */
  write_file (dir, "vocab.txt", toy_vocab, -1);
  {
    g_autoptr(StsimTokenizer) tok = stsim_tokenizer_new_from_dir (dir, &err);
    g_assert_no_error (err);
    g_assert_cmpint (stsim_tokenizer_get_kind (tok), ==, STSIM_TOKENIZER_WORDPIECE);
    assert_ids (tok, "HELLO", -1, 0, IDS (2, 12, 3));
  }
  /* do_lower_case false -> cased: "HELLO" is not in the vocab. */
  write_file (dir, "tokenizer_config.json", "{\"do_lower_case\": false, \"strip_accents\": null}", -1);
  {
    g_autoptr(StsimTokenizer) tok = stsim_tokenizer_new_from_dir (dir, &err);
    g_assert_no_error (err);
    assert_ids (tok, "HELLO hello", -1, 0, IDS (2, 1, 12, 3));
    /* Cased keeps accents: "héllo" is no longer "hello". */
    assert_ids (tok, "h\xc3\xa9llo", -1, 0, IDS (2, 1, 3));
  }
  write_file (dir, "tokenizer_config.json", "{\"do_lower_case\": true}", -1);
  {
    g_autoptr(StsimTokenizer) tok = stsim_tokenizer_new_from_dir (dir, &err);
    g_assert_no_error (err);
    assert_ids (tok, "HELLO", -1, 0, IDS (2, 12, 3));
  }
  /* Malformed or unsupported configurations are errors naming the file. */
  write_file (dir, "tokenizer_config.json", "{\"do_lower_case\": fals", -1);
  g_assert_null (stsim_tokenizer_new_from_dir (dir, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_PARSE);
  g_assert_nonnull (strstr (err->message, "tokenizer_config.json"));
  g_clear_error (&err);
  write_file (dir, "tokenizer_config.json", "{\"do_lower_case\": \"yes\"}", -1);
  g_assert_null (stsim_tokenizer_new_from_dir (dir, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_PARSE);
  g_assert_nonnull (strstr (err->message, "do_lower_case"));
  g_clear_error (&err);
  write_file (dir, "tokenizer_config.json", "{\"do_lower_case\": true, \"strip_accents\": false}", -1);
  g_assert_null (stsim_tokenizer_new_from_dir (dir, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (err->message, "strip_accents"));
  g_clear_error (&err);
  stsim_test_remove_tree (dir);
}

static void
test_from_dir_bpe (void)
{
  const char *data = g_getenv ("STSIM_DATA");
  g_autofree char *src = data ? g_build_filename (data, "vocab", "roberta-base", NULL) : NULL;
  if (!src || !g_file_test (src, G_FILE_TEST_IS_DIR)) {
    g_test_skip ("STSIM_DATA/vocab/roberta-base not found");
    return;
  }
  /* vocab.json + merges.txt win over a vocab.txt in the same folder. */
  g_autofree char *dir = make_tmpdir ();
  g_autofree char *vj = g_build_filename (src, "vocab.json", NULL);
  g_autofree char *mt = g_build_filename (src, "merges.txt", NULL);
  g_autofree char *vj2 = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *mt2 = g_build_filename (dir, "merges.txt", NULL);
  g_assert_cmpint (symlink (vj, vj2), ==, 0);
  g_assert_cmpint (symlink (mt, mt2), ==, 0);
  write_file (dir, "vocab.txt", toy_vocab, -1);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimTokenizer) tok = stsim_tokenizer_new_from_dir (dir, &err);
  if (err && g_error_matches (err, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED)) {
    g_test_skip ("BPE not built in yet");
    stsim_test_remove_tree (dir);
    return;
  }
  g_assert_no_error (err);
  g_assert_cmpint (stsim_tokenizer_get_kind (tok), ==, STSIM_TOKENIZER_BPE);
  /* data/vocab/README.md: <s>=0 <pad>=1 </s>=2 <unk>=3 <mask>=50264 */
  g_assert_cmpint (stsim_tokenizer_cls_id (tok), ==, 0);
  g_assert_cmpint (stsim_tokenizer_pad_id (tok), ==, 1);
  g_assert_cmpint (stsim_tokenizer_sep_id (tok), ==, 2);
  g_assert_cmpint (stsim_tokenizer_unk_id (tok), ==, 3);
  g_assert_cmpint (stsim_tokenizer_mask_id (tok), ==, 50264);
  g_assert_true (stsim_tokenizer_is_special (tok, 50264));
  g_assert_false (stsim_tokenizer_is_special (tok, 4));
  /* method.md §2.4 */
  assert_ids (tok, "Hello world", -1, 0, IDS (0, 31414, 232, 2));
  stsim_test_remove_tree (dir);
}

/* Every input the WordPiece fuzzer ever crashed on (tests/fixtures/fuzz/wordpiece). */
static void
test_fuzz_regressions (void)
{
  g_autoptr(StsimTokenizer) tok = bert_or_skip ();
  if (!tok)
    return;
  const char *srcdir = g_getenv ("G_TEST_SRCDIR");
  g_autofree char *dir = g_build_filename (srcdir ? srcdir : ".", "fixtures", "fuzz", "wordpiece", NULL);
  GDir *d = g_dir_open (dir, 0, NULL);
  if (!d) {
    g_test_skip ("no fuzz regression inputs");
    return;
  }
  const char *name;
  while ((name = g_dir_read_name (d))) {
    g_autofree char *p = g_build_filename (dir, name, NULL);
    g_autofree char *data = NULL;
    gsize len = 0;
    g_assert_true (g_file_get_contents (p, &data, &len, NULL));
    g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
    g_autoptr(GError) err = NULL;
    gboolean ok = stsim_tokenizer_encode (tok, data, (gssize) len, 0, ids, &err);
    g_assert_true (ok == (err == NULL));
    if (ok) {
      g_assert_cmpint (g_array_index (ids, gint32, 0), ==, 101);
      g_assert_cmpint (g_array_index (ids, gint32, ids->len - 1), ==, 102);
    }
  }
  g_dir_close (d);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/tokenizer/bert/special-ids", test_special_ids_bert);
  g_test_add_func ("/tokenizer/bert/sanity", test_sanity_bert);
  g_test_add_func ("/tokenizer/bert/truncation", test_truncation_bert);
  g_test_add_func ("/tokenizer/bert/batch-pad", test_batch_bert_pad);
  g_test_add_func ("/tokenizer/wordpiece/greedy", test_wordpiece_greedy);
  g_test_add_func ("/tokenizer/wordpiece/clean-and-split", test_clean_and_split);
  g_test_add_func ("/tokenizer/truncation", test_truncation);
  g_test_add_func ("/tokenizer/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/tokenizer/batch", test_batch);
  g_test_add_func ("/tokenizer/vocab-errors", test_vocab_errors);
  g_test_add_func ("/tokenizer/from-dir/wordpiece", test_from_dir);
  g_test_add_func ("/tokenizer/from-dir/bpe", test_from_dir_bpe);
  g_test_add_func ("/tokenizer/fuzz-regressions", test_fuzz_regressions);
  return g_test_run ();
}
