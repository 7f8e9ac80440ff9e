/* stsim-tokenize: sentences on stdin, token ids on stdout.
 *
 *   stsim-tokenize --model DIR [--max-len N] < sentences.txt
 *
 * Lines end at '\n' only: every other byte, '\r' included, belongs to the
 * line, and a final line without '\n' counts. Each output line holds the ids
 * of one input line, special tokens included, separated by single spaces; an
 * empty line gives just the special tokens. Exit status: 0 success, 1 a
 * failure (unreadable model, invalid UTF-8 on a line, write error), 2 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "stsim/stsim-tokenizer.h"
#include "stsim/stsim-bounded.h"

static char *opt_model = NULL;
static gint opt_max_len = 0;

static const GOptionEntry entries[] = {
  { "model", 'm', 0, G_OPTION_ARG_FILENAME, &opt_model,
    "model folder: vocab.txt (WordPiece) or vocab.json + merges.txt (BPE)", "DIR" },
  { "max-len", 0, 0, G_OPTION_ARG_INT, &opt_max_len,
    "truncate to at most N ids, closing special token kept (N >= 2; default: no truncation)", "N" },
  { NULL }
};

/* Appends the decimal text of @v to @out. */
static void
append_id (GString *out, gint32 v)
{
  char buf[16];
  int n = 0;
  guint32 u = v < 0 ? (guint32) -(gint64) v : (guint32) v;
  do {
    buf[n++] = (char) ('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0)
    g_string_append_c (out, '-');
  while (n)
    g_string_append_c (out, buf[--n]);
}

int
main (int argc, char **argv)
{
  g_autoptr(GOptionContext) ctx = g_option_context_new ("< SENTENCES");
  g_option_context_set_summary (ctx, "Tokenizes one sentence per stdin line and prints the token ids.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    g_printerr ("stsim-tokenize: %s (see --help)\n", error->message);
    return 2;
  }
  if (argc > 1) {
    g_printerr ("stsim-tokenize: unexpected argument '%s' (the sentences come on stdin)\n", argv[1]);
    return 2;
  }
  if (!opt_model) {
    g_printerr ("stsim-tokenize: --model DIR is required (see --help)\n");
    return 2;
  }
  if (opt_max_len < 0 || opt_max_len == 1) {
    g_printerr ("stsim-tokenize: --max-len must be 2 or more (or 0 for no truncation), got %d\n", opt_max_len);
    return 2;
  }

  g_autoptr(StsimTokenizer) tok = stsim_tokenizer_new_from_dir (opt_model, &error);
  if (!tok) {
    g_printerr ("stsim-tokenize: %s\n", error->message);
    g_free (opt_model);
    return 1;
  }

  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr(GString) out = g_string_sized_new (1 << 16);
  g_autoptr(GString) line = g_string_new (NULL);
  guint64 lineno = 0;
  int status = 0;
  while (stsim_stream_read_line (stdin, "<stdin>", lineno + 1, STSIM_LIMIT_LINE, line, &error)) {
    lineno++;
    g_array_set_size (ids, 0);
    if (!stsim_tokenizer_encode (tok, line->str, (gssize) line->len, opt_max_len, ids, &error)) {
      g_printerr ("stsim-tokenize: <stdin>:%" G_GUINT64_FORMAT ": %s\n", lineno, error->message);
      status = 1;
      break;
    }
    for (guint i = 0; i < ids->len; i++) {
      if (i)
        g_string_append_c (out, ' ');
      append_id (out, g_array_index (ids, gint32, i));
    }
    g_string_append_c (out, '\n');
    if (out->len > (1 << 16) - 256) {
      if (fwrite (out->str, 1, out->len, stdout) != out->len)
        break;
      g_string_truncate (out, 0);
    }
  }
  if (status == 0 && error) {
    g_printerr ("stsim-tokenize: %s\n", error->message);
    status = 1;
  }
  if (out->len && fwrite (out->str, 1, out->len, stdout) != out->len)
    status = 1;
  if (fflush (stdout) != 0 || ferror (stdout)) {
    g_printerr ("stsim-tokenize: writing stdout failed\n");
    status = 1;
  }
  g_free (opt_model);
  return status;
}
