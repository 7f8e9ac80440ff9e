/* bpe-pieces: stsim's byte-level BPE pre-tokeniser on each stdin line
 * ('\n'-separated). Output per line: the pieces mapped to GPT-2's byte
 * alphabet, separated by single spaces, the format of ref-bpe-pieces.js, so
 * compare-roberta.sh --pieces can check the scanner and its Unicode tables
 * without the merges hiding a wrong split. Exit 1 on invalid UTF-8. */
#include <stdio.h>
#include <string.h>
#include "text/tokenizer-private.h"
#include "text/unicode.h"

int
main (void)
{
  g_autoptr(GByteArray) in = g_byte_array_new ();
  guint8 buf[65536];
  size_t n;
  while ((n = fread (buf, 1, sizeof buf, stdin)) > 0)
    g_byte_array_append (in, buf, (guint) n);
  if (ferror (stdin)) {
    g_printerr ("bpe-pieces: cannot read stdin\n");
    return 1;
  }

  g_autoptr(GArray) ends = g_array_new (FALSE, FALSE, sizeof (gsize));
  g_autoptr(GString) out = g_string_new (NULL);
  const char *data = (const char *) in->data;
  gsize len = in->len, lineno = 0;
  for (gsize start = 0; start < len;) {
    const char *nl = memchr (data + start, '\n', len - start);
    gsize stop = nl ? (gsize) (nl - data) : len;
    lineno++;
    if (!stsim_utf8_validate (data + start, stop - start, NULL)) {
      g_printerr ("bpe-pieces: <stdin>:%" G_GSIZE_FORMAT ": invalid UTF-8\n", lineno);
      return 1;
    }
    g_array_set_size (ends, 0);
    stsim_bpe_pretokenize (data + start, stop - start, ends);
    gsize from = start;
    for (guint k = 0; k < ends->len; k++) {
      gsize to = start + g_array_index (ends, gsize, k);
      if (k > 0)
        g_string_append_c (out, ' ');
      for (gsize i = from; i < to; i++)
        g_string_append_unichar (out, stsim_bpe_byte_char ((guint8) data[i]));
      from = to;
    }
    g_string_append_c (out, '\n');
    start = stop + 1;
  }
  fwrite (out->str, 1, out->len, stdout);
  return fflush (stdout) == 0 ? 0 : 1;
}
