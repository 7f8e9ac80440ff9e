/* libFuzzer target: the bounded JSON reader (core/io/bounded.c) and the
 * JSON inputs behind it. The first byte picks the consumer, the rest is the
 * file's text:
 *   0  stsim_json_load_data, then the project's writer: what parses must
 *      write back as JSON that parses again to the same text
 *   1  config.json   (stsim_model_config_load)
 *   2  vocab.json    (stsim_tokenizer_new_bpe with a few merges)
 *   3  metrics.jsonl (stsim_curves_write_svg: the report's and the trainer's reader)
 *   4  tokenizer_config.json of a BERT folder (stsim_tokenizer_new_from_dir)
 *   5  the resume state's run fingerprint (stsim_run_fingerprint_from_json):
 *      what parses must write back to a fixed point and compare equal to itself
 * Checks: no crash, no stack overflow on deep nesting, every failure a GError. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include "io/bounded.h"
#include "io/rundir.h"
#include "stsim/stsim-error.h"
#include "stsim/stsim-model.h"
#include "stsim/stsim-tokenizer.h"
#include "train/curves.h"
#include "fuzz-util.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static char *dir, *merges, *bert_dir;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  dir = g_dir_make_tmp ("fuzz-json-XXXXXX", NULL);
  /* A few merges: loading roberta-base's 50000 would cost most of a run. */
  merges = g_build_filename (dir, "merges.txt", NULL);
  g_file_set_contents (merges, "#version: 0.2\n\xc4\xa0 a\na b\n\xc4\xa0" "a b\n", -1, NULL);
  /* A BERT folder whose tokenizer_config.json is the input. */
  bert_dir = g_build_filename (dir, "bert", NULL);
  g_mkdir (bert_dir, 0700);
  g_autofree char *vocab = g_build_filename (bert_dir, "vocab.txt", NULL);
  g_file_set_contents (vocab, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\n", -1, NULL);
  return 0;
}

static void
check_error (gboolean ok, GError *e)
{
  if (!ok && (e == NULL || e->message == NULL))
    __builtin_trap ();
  g_clear_error (&e);
}

static void
round_trip (const char *text, gsize len)
{
  g_autoptr(JsonParser) p = json_parser_new ();
  GError *e = NULL;
  if (!stsim_json_load_data (p, text, (gssize) len, &e) || !json_parser_get_root (p)) {
    check_error (FALSE, e ? e : g_error_new_literal (STSIM_ERROR, STSIM_ERROR_PARSE, "empty"));
    return;
  }
  g_autofree char *out = stsim_json_to_data (json_parser_get_root (p), len % 2, NULL);
  g_autoptr(JsonParser) q = json_parser_new ();
  if (!stsim_json_load_data (q, out, -1, &e))
    __builtin_trap ();  /* the writer produced text that is not JSON */
  g_autofree char *again = stsim_json_to_data (json_parser_get_root (q), len % 2, NULL);
  if (strcmp (out, again) != 0)
    __builtin_trap ();  /* not a fixed point: something changed on the way */
}

static void
fingerprint_round_trip (const char *text, gsize len)
{
  g_autofree char *nul = g_strndup (text, len);
  GError *e = NULL;
  g_autoptr(StsimRunFingerprint) fp = stsim_run_fingerprint_from_json (nul, "fuzz", &e);
  if (!fp) {
    check_error (FALSE, e);
    return;
  }
  g_autofree char *out = stsim_run_fingerprint_to_json (fp);
  g_autoptr(StsimRunFingerprint) again = stsim_run_fingerprint_from_json (out, "fuzz", &e);
  if (!again)
    __builtin_trap ();  /* the writer produced a fingerprint its reader refuses */
  g_autofree char *out2 = stsim_run_fingerprint_to_json (again);
  if (strcmp (out, out2) != 0)
    __builtin_trap ();
  g_auto(GStrv) changed = NULL;
  if (!stsim_run_fingerprint_compare (fp, again, NULL, "fuzz", &changed, &e))
    __builtin_trap ();  /* a fingerprint differs from its own copy */
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  int mode = data[0] % 6;
  const char *text = (const char *) data + 1;
  gsize len = size - 1;
  GError *e = NULL;
  if (mode == 0) {
    g_autofree char *nul = g_strndup (text, len);  /* json-glib wants NUL-free text or a length */
    round_trip (nul, strlen (nul));
    return 0;
  }
  if (mode == 5) {
    fingerprint_round_trip (text, len);
    return 0;
  }
  static const char *const names[] = { NULL, "config.json", "vocab.json", "metrics.jsonl", "tokenizer_config.json" };
  g_autofree char *path = mode == 4 ? g_build_filename (bert_dir, names[mode], NULL)
                                    : g_build_filename (dir, names[mode], NULL);
  if (!fuzz_write_all (path, text, len))
    return 0;
  if (mode == 1) {
    StsimModelConfig c;
    check_error (stsim_model_config_load (path, &c, &e), e);
  } else if (mode == 2) {
    StsimTokenizer *t = stsim_tokenizer_new_bpe (path, merges, &e);
    check_error (t != NULL, e);
    stsim_tokenizer_free (t);
  } else if (mode == 3) {
    g_autofree char *svg = g_build_filename (dir, "curves.svg", NULL);
    check_error (stsim_curves_write_svg (path, svg, "fuzz", &e), e);
  } else {
    StsimTokenizer *t = stsim_tokenizer_new_from_dir (bert_dir, &e);
    check_error (t != NULL, e);
    stsim_tokenizer_free (t);
  }
  return 0;
}
