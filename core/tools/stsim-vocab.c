/* stsim-vocab: trains a tokenizer vocabulary from corpus files.
 *
 *   stsim-vocab --kind wordpiece|bpe --size N [--min-frequency F] [--lowercase]
 *               [--limit-alphabet N] --out DIR FILE...
 *
 * Writes a Hugging Face tokenizer folder that every stsim tool and encoder
 * loads: vocab.txt (WordPiece, BERT specials first) or vocab.json +
 * merges.txt (byte-level BPE, RoBERTa specials first), and
 * tokenizer_config.json. The trainer is core/text/vocab-trainer.c
 * (Hugging Face `tokenizers` semantics, docs/tokenizers.md). Progress goes to
 * stderr; stdout gets "vocab_size = N", the number a model config.json needs.
 * Exit status: 0 success, 1 a failure (unreadable or binary corpus, too
 * small a size, write error), 2 usage. */
#include <stdio.h>
#include <string.h>

#include "stsim/stsim-vocab.h"
#include "tool-common.h"

static char *opt_kind = NULL;
static gint64 opt_size = 0;
static gint64 opt_min_frequency = 0;
static gboolean opt_lowercase = FALSE;
static gint64 opt_limit_alphabet = 0;
static char *opt_out = NULL;

static const GOptionEntry entries[] = {
  { "kind", 'k', 0, G_OPTION_ARG_STRING, &opt_kind, "wordpiece (vocab.txt, BERT) or bpe (vocab.json + merges.txt, "
    "RoBERTa byte level)", "KIND" },
  { "size", 's', 0, G_OPTION_ARG_INT64, &opt_size, "vocabulary size: special tokens + alphabet + merged tokens", "N" },
  { "min-frequency", 0, 0, G_OPTION_ARG_INT64, &opt_min_frequency,
    "stop merging at the first pair seen fewer than F times (default 0: no limit)", "F" },
  { "lowercase", 0, 0, G_OPTION_ARG_NONE, &opt_lowercase,
    "WordPiece: strip accents and lowercase (an uncased model, as bert-base-uncased)", NULL },
  { "limit-alphabet", 0, 0, G_OPTION_ARG_INT64, &opt_limit_alphabet,
    "keep only the N most frequent characters (default: all)", "N" },
  { "out", 'o', 0, G_OPTION_ARG_FILENAME, &opt_out, "output folder (created if needed)", "DIR" },
  { NULL }
};

typedef struct {
  const char *file;
  gint64      last;   /* monotonic time of the last line printed */
} Progress;

static void
progress (const char *stage, guint64 done, guint64 total, gpointer data)
{
  Progress *p = data;
  gint64 now = g_get_monotonic_time ();
  gboolean final = done >= total;
  if (!final && now - p->last < G_USEC_PER_SEC)
    return;
  if (final && g_str_equal (stage, "merge"))
    return;   /* the summary line says it */
  p->last = now;
  if (g_str_equal (stage, "read"))
    g_printerr ("stsim-vocab: %s: %" G_GUINT64_FORMAT "%% of %.1f MB read\n", p->file,
                total ? done * 100 / total : 100, total / 1e6);
  else
    g_printerr ("stsim-vocab: merging: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " tokens\n", done, total);
}

/* The other kind's files in @dir would make the folder ambiguous. */
static gboolean
check_out_dir (StsimVocabKind kind, GError **error)
{
  const char *other[] = { "vocab.json", "merges.txt", NULL, NULL };
  if (kind == STSIM_VOCAB_BPE) {
    other[0] = "vocab.txt";
    other[1] = NULL;
  }
  for (const char **f = other; *f; f++) {
    g_autofree char *path = g_build_filename (opt_out, *f, NULL);
    if (g_file_test (path, G_FILE_TEST_EXISTS)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s: already holds %s of a %s tokenizer; "
                   "write the new vocabulary to another folder", opt_out, *f,
                   kind == STSIM_VOCAB_BPE ? "WordPiece" : "BPE");
      return FALSE;
    }
  }
  return TRUE;
}

static int
train (StsimVocabKind kind, char **files)
{
  g_autoptr(GError) error = NULL;
  if (!check_out_dir (kind, &error)) {
    tool_print_error (error);
    return STSIM_EXIT_INVALID;
  }
  Progress p = { NULL, 0 };
  StsimVocabOptions o;
  stsim_vocab_options_init (&o, kind, opt_size);
  o.min_frequency = (guint64) opt_min_frequency;
  o.lowercase = opt_lowercase;
  o.limit_alphabet = opt_limit_alphabet;
  o.progress = progress;
  o.progress_data = &p;
  g_autoptr(StsimVocabTrainer) t = stsim_vocab_trainer_new (&o);
  for (char **f = files; *f; f++) {
    p.file = *f;
    p.last = g_get_monotonic_time ();
    if (!stsim_vocab_trainer_add_file (t, *f, &error)) {
      tool_print_error (error);
      return STSIM_EXIT_INVALID;
    }
  }
  g_printerr ("stsim-vocab: %u distinct words in %u file%s; merging up to %" G_GINT64_FORMAT " tokens\n",
              stsim_vocab_trainer_n_words (t), g_strv_length (files), files[1] ? "s" : "", opt_size);
  if (!stsim_vocab_trainer_train (t, &error) || !stsim_vocab_trainer_save (t, opt_out, &error)) {
    tool_print_error (error);
    return STSIM_EXIT_INVALID;
  }
  guint n = stsim_vocab_trainer_n_tokens (t);
  g_printerr ("stsim-vocab: %u tokens (%u initial symbols, %u merges) written to %s\n", n,
              stsim_vocab_trainer_n_initial (t), stsim_vocab_trainer_n_merges (t), opt_out);
  if (n < opt_size)
    g_printerr ("stsim-vocab: warning: only %u of the %" G_GINT64_FORMAT " tokens asked for: %s\n", n, opt_size,
                opt_min_frequency > 1 ? "no pair is left that occurs --min-frequency times"
                                      : "every word of the corpus is already one token");
  printf ("vocab_size = %u\n", n);
  return fflush (stdout) == 0 ? STSIM_EXIT_OK : STSIM_EXIT_INVALID;
}

static int
run (char **files)
{
  StsimVocabKind kind;
  if (!opt_kind)
    return tool_usage_error ("--kind wordpiece|bpe is required");
  if (g_str_equal (opt_kind, "wordpiece"))
    kind = STSIM_VOCAB_WORDPIECE;
  else if (g_str_equal (opt_kind, "bpe"))
    kind = STSIM_VOCAB_BPE;
  else
    return tool_usage_error ("unknown --kind '%s' (wordpiece or bpe)", opt_kind);
  if (!opt_out)
    return tool_usage_error ("--out DIR is required");
  if (!files[0])
    return tool_usage_error ("no corpus FILE given (text files, one sentence per line)");
  if (opt_min_frequency < 0 || opt_limit_alphabet < 0)
    return tool_usage_error ("--min-frequency and --limit-alphabet must not be negative");
  if (opt_lowercase && kind == STSIM_VOCAB_BPE)
    return tool_usage_error ("--lowercase is for --kind wordpiece (byte-level BPE, as RoBERTa's, keeps the text as is)");
  /* Five specials, and for BPE the 256 byte symbols, are known before reading. */
  gint64 least = kind == STSIM_VOCAB_BPE ? 5 + 256 : 5 + 1;
  if (opt_size < least)
    return tool_usage_error ("--size %" G_GINT64_FORMAT " is below the %" G_GINT64_FORMAT " initial symbols "
                             "(5 special tokens%s)", opt_size, least,
                             kind == STSIM_VOCAB_BPE ? " + the 256-symbol byte alphabet" : " + at least one character");
  return train (kind, files);
}

int
main (int argc, char **argv)
{
  g_set_prgname ("stsim-vocab");
  g_autoptr(GOptionContext) ctx = g_option_context_new ("FILE...");
  g_option_context_set_summary (ctx, "Trains a WordPiece or byte-level BPE vocabulary from corpus files "
                                "(Hugging Face tokenizers' trainers) and writes a tokenizer folder.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_auto(GStrv) args = g_strdupv (argv);
  if (!tool_parse_options (ctx, &args))
    return STSIM_EXIT_USAGE;
  int status = run (args + 1);
  g_free (opt_kind);
  g_free (opt_out);
  return status;
}
