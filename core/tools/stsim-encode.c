/* stsim-encode: sentences on stdin, sentence embeddings out.
 *
 *   stsim-encode --model DIR [--pooler NAME] [--batch N] [--max-len N] [--npy FILE] < sentences.txt
 *
 * Lines end at '\n' only: every other byte, '\r' included, belongs to the
 * line, and a final line without '\n' counts. The model runs in eval mode
 * (no dropout) without truncation unless --max-len says so. Output: one line
 * per input line, the vector as space-separated floats printed with %.9g
 * (enough digits to give back the exact float32); or with --npy, a float32
 * (N, D) .npy file (format 1.0, '<f4', C order) written atomically, and
 * nothing on stdout. Exit status: 0 success, 1 a failure (unreadable model,
 * invalid UTF-8 on a line, write error), 2 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "stsim/stsim-model.h"
#include "tool-common.h"
#include "stsim/stsim-bounded.h"

static char *opt_model = NULL;
static char *opt_pooler = NULL;
static char *opt_npy = NULL;
static gint opt_batch = 64;
static gint opt_max_len = 0;

static const GOptionEntry entries[] = {
  { "model", 'm', 0, G_OPTION_ARG_FILENAME, &opt_model,
    "Hugging Face model folder (config.json, model.safetensors, tokenizer files)", "DIR" },
  { "pooler", 'p', 0, G_OPTION_ARG_STRING, &opt_pooler,
    "sentence vector: " STSIM_POOLER_CHOICES " (default cls_before_pooler)", "NAME" },
  { "batch", 'b', 0, G_OPTION_ARG_INT, &opt_batch, "sentences per batch (default 64)", "N" },
  { "max-len", 0, 0, G_OPTION_ARG_INT, &opt_max_len,
    "truncate to at most N tokens, specials included (N >= 2; default: no truncation)", "N" },
  { "npy", 0, 0, G_OPTION_ARG_FILENAME, &opt_npy, "write a float32 (N, D) .npy file instead of text", "FILE" },
  { NULL }
};

/* The .npy 1.0 layout: magic, version, u16 header length, a Python dict
 * literal padded with spaces and ended by '\n' so that the data starts at a
 * multiple of 64 bytes, then the raw little-endian floats. */
static GBytes *
npy_bytes (const float *x, gsize n, gsize d)
{
  g_autofree char *dict = g_strdup_printf ("{'descr': '<f4', 'fortran_order': False, 'shape': (%" G_GSIZE_FORMAT
                                           ", %" G_GSIZE_FORMAT "), }", n, d);
  gsize prefix = 10, hlen = strlen (dict) + 1;
  hlen += (64 - (prefix + hlen) % 64) % 64;
  GByteArray *out = g_byte_array_sized_new ((guint) (prefix + hlen + n * d * 4));
  const guint8 magic[8] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0 };
  g_byte_array_append (out, magic, 8);
  guint8 len_le[2] = { (guint8) (hlen & 0xff), (guint8) (hlen >> 8) };
  g_byte_array_append (out, len_le, 2);
  g_byte_array_append (out, (const guint8 *) dict, (guint) strlen (dict));
  for (gsize i = strlen (dict); i + 1 < hlen; i++)
    g_byte_array_append (out, (const guint8 *) " ", 1);
  g_byte_array_append (out, (const guint8 *) "\n", 1);
  for (gsize i = 0; i < n * d; i++) {
    guint32 u;
    memcpy (&u, &x[i], 4);
    u = GUINT32_TO_LE (u);
    g_byte_array_append (out, (const guint8 *) &u, 4);
  }
  return g_byte_array_free_to_bytes (out);
}

static int
run (void)
{
  g_autoptr(GError) error = NULL;
  StsimPooler pooler = STSIM_POOL_CLS_BEFORE_POOLER;
  if (opt_pooler && !stsim_pooler_from_name (opt_pooler, &pooler))
    return tool_usage_error ("unknown --pooler '%s' (one of %s)", opt_pooler, STSIM_POOLER_CHOICES);
  if (opt_batch < 1)
    return tool_usage_error ("--batch must be 1 or more, got %d", opt_batch);
  if (opt_max_len < 0 || opt_max_len == 1)
    return tool_usage_error ("--max-len must be 2 or more (or 0 for no truncation), got %d", opt_max_len);

  /* Read every line first: the model sorts the whole input by length. */
  g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GString) line = g_string_new (NULL);
  gsize total = 0, total_limit = stsim_input_limit (STSIM_LIMIT_CORPUS);
  while (stsim_stream_read_line (stdin, "<stdin>", lines->len + 1, STSIM_LIMIT_LINE, line, &error)) {
    if (!g_utf8_validate (line->str, (gssize) line->len, NULL)) {
      g_printerr ("%s: <stdin>:%u: invalid UTF-8 (or a NUL byte); the input must be UTF-8 text\n",
                  g_get_prgname (), lines->len + 1);
      return STSIM_EXIT_INVALID;
    }
    /* Every line is kept (the model sorts them by length): bound the sum too. */
    if ((total += line->len + 1) > total_limit) {
      g_printerr ("%s: <stdin>: more than %" G_GSIZE_FORMAT " MiB of input, over the limit; "
                  "set STSIM_MAX_INPUT_MB to raise it\n", g_get_prgname (), total_limit / STSIM_MIB);
      return STSIM_EXIT_INVALID;
    }
    g_ptr_array_add (lines, g_strndup (line->str, line->len));
  }
  if (error) {
    tool_print_error (error);
    return STSIM_EXIT_INVALID;
  }

  guint flags = STSIM_MODEL_FROZEN | (pooler == STSIM_POOL_CLS ? STSIM_MODEL_POOLER : 0);
  g_autoptr(StsimModel) model = stsim_model_load (opt_model, flags, 0, &error);
  if (model == NULL) {
    tool_print_error (error);
    return STSIM_EXIT_INVALID;
  }
  if (stsim_model_get_initialized (model) & STSIM_MODEL_POOLER) {
    g_printerr ("%s: %s has no pooler.dense weights, which --pooler cls needs "
                "(use cls_before_pooler, avg, avg_first_last or avg_top2)\n", g_get_prgname (), opt_model);
    return STSIM_EXIT_INVALID;
  }
  stsim_model_set_encode_batch (model, opt_batch);
  gsize n = lines->len, d = stsim_model_get_dim (model);
  g_autofree float *emb = g_new (float, MAX (n * d, 1));
  if (!stsim_model_encode (model, (const char *const *) lines->pdata, n, pooler, opt_max_len, emb, &error)) {
    /* "sentence K: ..." -> name the input line instead. */
    const char *msg = error->message;
    gsize k;
    char *end;
    if (g_str_has_prefix (msg, "sentence ") && (k = g_ascii_strtoull (msg + 9, &end, 10), end[0] == ':'))
      g_printerr ("%s: <stdin>:%" G_GSIZE_FORMAT "%s\n", g_get_prgname (), k + 1, end);
    else
      tool_print_error (error);
    return STSIM_EXIT_INVALID;
  }

  /* A NaN or infinite embedding is a model that overflows, not a result. */
  for (gsize i = 0; i < n * d; i++)
    if (!isfinite (emb[i])) {
      g_printerr ("%s: <stdin>:%" G_GSIZE_FORMAT ": the embedding has a non-finite value (%s at dimension %"
                  G_GSIZE_FORMAT "): the model overflows on this sentence; check the model's weights\n",
                  g_get_prgname (), i / d + 1, isnan (emb[i]) ? "NaN" : "infinity", i % d);
      return STSIM_EXIT_INVALID;
    }

  if (opt_npy) {
    g_autoptr(GBytes) npy = npy_bytes (emb, n, d);
    gsize len;
    const char *data = g_bytes_get_data (npy, &len);
    if (!g_file_set_contents (opt_npy, data, (gssize) len, &error)) {
      g_printerr ("%s: %s\n", g_get_prgname (), error->message);
      return STSIM_EXIT_INVALID;
    }
    return STSIM_EXIT_OK;
  }
  g_autoptr(GString) out = g_string_sized_new (1 << 16);
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  for (gsize i = 0; i < n; i++) {
    for (gsize j = 0; j < d; j++) {
      if (j)
        g_string_append_c (out, ' ');
      g_string_append (out, g_ascii_formatd (buf, sizeof buf, "%.9g", emb[i * d + j]));
    }
    g_string_append_c (out, '\n');
    if (out->len > (1 << 16) - 256 || i + 1 == n) {
      if (fwrite (out->str, 1, out->len, stdout) != out->len)
        break;
      g_string_truncate (out, 0);
    }
  }
  if (fflush (stdout) != 0 || ferror (stdout)) {
    g_printerr ("%s: writing stdout failed\n", g_get_prgname ());
    return STSIM_EXIT_INVALID;
  }
  return STSIM_EXIT_OK;
}

int
main (int argc, char **argv)
{
  g_set_prgname ("stsim-encode");
  g_autoptr(GOptionContext) ctx = g_option_context_new ("< SENTENCES");
  g_option_context_set_summary (ctx, "Embeds one sentence per stdin line with a BERT/RoBERTa/DistilBERT model.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_auto(GStrv) args = g_strdupv (argv);
  if (!tool_parse_options (ctx, &args))
    return STSIM_EXIT_USAGE;
  int status;
  if (g_strv_length (args) > 1)
    status = tool_usage_error ("unexpected argument '%s' (the sentences come on stdin)", args[1]);
  else if (!opt_model)
    status = tool_usage_error ("--model DIR is required");
  else
    status = run ();
  g_free (opt_model);
  g_free (opt_pooler);
  g_free (opt_npy);
  return status;
}
