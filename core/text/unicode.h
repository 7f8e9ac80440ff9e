/* unicode.h: the character classes and transforms of Hugging Face's BERT
 * normalizer and pre-tokenizer (core-internal; method.md §2.1).
 *
 * HF's fast tokenizer (the reference, tokenizers 0.13 in Rust) takes its
 * categories from the `unicode_categories` crate, whose tables are Unicode
 * 8.0, while GLib 2.74 follows Unicode 15.0. The predicates below are GLib's
 * categories corrected to what the reference does, point by point; every
 * scalar value is checked against the reference by tests/text (codepoints).
 * docs/tokenizers.md lists each difference and why it exists. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

/* Strict UTF-8 (RFC 3629: no overlongs, no surrogates, nothing past
 * U+10FFFF). Unlike g_utf8_validate_len() a NUL byte is valid: it is the
 * character U+0000, which the normalizer removes. On failure *bad_offset (may
 * be NULL) gets the byte offset of the first invalid sequence. */
gboolean stsim_utf8_validate (const char *text, gsize len, gsize *bad_offset);

/* Decodes the character at @p of VALID UTF-8 and advances @p. */
static inline gunichar
stsim_utf8_next (const guchar **p)
{
  const guchar *s = *p;
  gunichar c = s[0];
  if (c < 0x80) {
    *p = s + 1;
    return c;
  }
  if (c < 0xE0) {
    *p = s + 2;
    return ((c & 0x1F) << 6) | (s[1] & 0x3F);
  }
  if (c < 0xF0) {
    *p = s + 3;
    return ((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
  }
  *p = s + 4;
  return ((c & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

/* Encodes @c as UTF-8 into @out (room for 4 bytes); returns the byte count. */
static inline int
stsim_utf8_put (gunichar c, char *out)
{
  if (c < 0x80) {
    out[0] = (char) c;
    return 1;
  }
  if (c < 0x800) {
    out[0] = (char) (0xC0 | (c >> 6));
    out[1] = (char) (0x80 | (c & 0x3F));
    return 2;
  }
  if (c < 0x10000) {
    out[0] = (char) (0xE0 | (c >> 12));
    out[1] = (char) (0x80 | ((c >> 6) & 0x3F));
    out[2] = (char) (0x80 | (c & 0x3F));
    return 3;
  }
  out[0] = (char) (0xF0 | (c >> 18));
  out[1] = (char) (0x80 | ((c >> 12) & 0x3F));
  out[2] = (char) (0x80 | ((c >> 6) & 0x3F));
  out[3] = (char) (0x80 | (c & 0x3F));
  return 4;
}

/* Rust's char::is_whitespace (the Unicode White_Space property). */
gboolean stsim_unichar_is_white_space (gunichar c);
/* HF BertNormalizer's is_control: category Cc, Cf, Co or Cs (Unicode 8.0),
 * except \t \n \r. Unassigned code points are NOT control (they are kept). */
gboolean stsim_unichar_bert_is_control (gunichar c);
/* HF's is_bert_punc: ASCII punctuation or category P* (Unicode 8.0). */
gboolean stsim_unichar_bert_is_punct (gunichar c);
/* Category Mn as HF's strip_accents sees it (Unicode 8.0). */
gboolean stsim_unichar_bert_is_mn (gunichar c);
/* HF's is_chinese_char (its ranges, including one typo kept for parity). */
gboolean stsim_unichar_bert_is_chinese (gunichar c);
/* Rust's char::to_lowercase: writes 1 or 2 characters to @out. */
int      stsim_unichar_to_lower_full (gunichar c, gunichar out[2]);

/* NFD of @in[0..n) with the characters of category Mn (as above) removed,
 * appended to @out (gunichar). Canonical ordering is applied before the
 * marks are removed, as a full NFD would. */
void     stsim_unicode_nfd_strip_mn (const gunichar *in, gsize n, GArray *out);

G_END_DECLS
