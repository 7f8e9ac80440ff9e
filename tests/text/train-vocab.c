/* train-vocab: the library trainer (core/text/vocab-trainer.c) with the
 * settings that stsim-vocab does not offer, for compare-vocab.py: those of
 * the reference's default trainer (no special tokens, only the byte symbols
 * the corpus shows) and the reference's order of "##c" continuations.
 *
 *   train-vocab KIND SIZE SPECIALS BYTE_ALPHABET CONTINUATIONS OUT FILE...
 *
 * KIND wordpiece|wordpiece-cased|bpe; SPECIALS 1 (the kind's five) or 0
 * (none); BYTE_ALPHABET 1 or 0; CONTINUATIONS a file with one "##c" per line
 * in id order, or "-" for code point order. Writes the vocabulary to OUT and
 * prints nothing; errors go to stderr with exit 1. */
#include <stdio.h>
#include <string.h>
#include "stsim/stsim-vocab.h"

int
main (int argc, char **argv)
{
  if (argc < 8) {
    fprintf (stderr, "usage: train-vocab KIND SIZE SPECIALS BYTE_ALPHABET CONTINUATIONS OUT FILE...\n");
    return 2;
  }
  StsimVocabOptions o;
  stsim_vocab_options_init (&o, g_str_equal (argv[1], "bpe") ? STSIM_VOCAB_BPE : STSIM_VOCAB_WORDPIECE,
                            g_ascii_strtoll (argv[2], NULL, 10));
  o.lowercase = g_str_equal (argv[1], "wordpiece");
  static const char *const none[] = { NULL };
  if (g_str_equal (argv[3], "0"))
    o.special_tokens = none;
  o.byte_alphabet = g_str_equal (argv[4], "1");
  g_auto(GStrv) cont = NULL;
  g_autoptr(GError) error = NULL;
  if (!g_str_equal (argv[5], "-")) {
    g_autofree char *text = NULL;
    if (!g_file_get_contents (argv[5], &text, NULL, &error)) {
      fprintf (stderr, "train-vocab: %s\n", error->message);
      return 1;
    }
    cont = g_strsplit (g_strchomp (text), "\n", -1);
    if (text[0] == '\0') {
      g_strfreev (cont);
      cont = g_new0 (char *, 1);
    }
    o.continuation_order = (const char *const *) cont;
  }
  g_autoptr(StsimVocabTrainer) t = stsim_vocab_trainer_new (&o);
  for (int i = 7; i < argc; i++)
    if (!stsim_vocab_trainer_add_file (t, argv[i], &error))
      break;
  if (error == NULL && stsim_vocab_trainer_train (t, &error))
    stsim_vocab_trainer_save (t, argv[6], &error);
  if (error) {
    fprintf (stderr, "train-vocab: %s\n", error->message);
    return 1;
  }
  return 0;
}
