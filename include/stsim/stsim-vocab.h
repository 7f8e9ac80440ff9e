/* stsim-vocab.h: training a tokenizer vocabulary from corpus files, with the
 * semantics of Hugging Face's `tokenizers` trainers (docs/tokenizers.md,
 * "Training a vocabulary").
 *
 *   StsimVocabOptions o;
 *   stsim_vocab_options_init (&o, STSIM_VOCAB_WORDPIECE, 8000);
 *   g_autoptr(StsimVocabTrainer) t = stsim_vocab_trainer_new (&o);
 *   stsim_vocab_trainer_add_file (t, "corpus.txt", &err);
 *   stsim_vocab_trainer_train (t, &err);
 *   stsim_vocab_trainer_save (t, "my-vocab", &err);   // vocab.txt, tokenizer_config.json
 *
 * WordPiece: BERT normalisation and pre-tokenisation exactly as the
 * tokenizer does (core/text/wordpiece.c), then WordPieceTrainer's BPE-style
 * merges with "##" continuations. BPE: the byte-level pre-tokeniser of
 * core/text/bpe.c (add_prefix_space false, as RoBERTa) and BpeTrainer with
 * the 256-symbol byte alphabet. Special tokens take the first ids. */
#pragma once
#include <glib.h>
#include "stsim-export.h"
#include "stsim-error.h"

G_BEGIN_DECLS

typedef enum {
  STSIM_VOCAB_WORDPIECE,   /* vocab.txt; specials [PAD] [UNK] [CLS] [SEP] [MASK] */
  STSIM_VOCAB_BPE,         /* vocab.json + merges.txt; specials <s> <pad> </s> <unk> <mask> */
} StsimVocabKind;

/* Called during add_file and train: @stage is "read" (done/total in bytes
 * of the file, every 1024 lines and at its end) or "merge" (done/total in
 * tokens of the vocabulary, every 256 merges and at the end). */
typedef void (*StsimVocabProgress) (const char *stage, guint64 done, guint64 total, gpointer data);

typedef struct {
  StsimVocabKind kind;
  gint64   vocab_size;       /* specials + alphabet + merged tokens */
  guint64  min_frequency;    /* merging stops at the first pair seen fewer times (0 and 1: no limit) */
  gboolean lowercase;        /* WordPiece: NFD, strip accents, lowercase (an uncased model) */
  gint64   limit_alphabet;   /* keep only the N most frequent characters (<= 0: all) */
  /* NULL: the kind's five specials; an empty list ({ NULL }): none. */
  const char *const *special_tokens;
  /* BPE: FALSE leaves out byte symbols the corpus never shows (HF's default
   * BpeTrainer; the reference comparisons use it). Default TRUE. */
  gboolean byte_alphabet;
  /* WordPiece: the order in which "##c" continuation tokens take their ids
   * (HF takes a hash-map order that differs from run to run; tests pass the
   * reference's). NULL: code point order. */
  const char *const *continuation_order;
  StsimVocabProgress progress;
  gpointer           progress_data;
} StsimVocabOptions;

STSIM_API
void stsim_vocab_options_init (StsimVocabOptions *o, StsimVocabKind kind, gint64 vocab_size);

typedef struct _StsimVocabTrainer StsimVocabTrainer;

STSIM_API
StsimVocabTrainer *stsim_vocab_trainer_new  (const StsimVocabOptions *options);
STSIM_API
void               stsim_vocab_trainer_free (StsimVocabTrainer *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimVocabTrainer, stsim_vocab_trainer_free)

/* Counts the words of a UTF-8 text file, line by line ('\n' kept with its
 * line, as HF feeds lines). Invalid UTF-8 and NUL bytes are errors naming
 * file:line (STSIM_ERROR_ENCODING, STSIM_ERROR_DATA). */
STSIM_API
gboolean stsim_vocab_trainer_add_file (StsimVocabTrainer *t, const char *path, GError **error);
/* The same for text in memory; @name stands for the file in errors. */
STSIM_API
gboolean stsim_vocab_trainer_add_text (StsimVocabTrainer *t, const char *text, gsize len,
                                       const char *name, GError **error);
/* Distinct words counted so far. */
STSIM_API
guint    stsim_vocab_trainer_n_words  (StsimVocabTrainer *t);

/* Computes the vocabulary. STSIM_ERROR_DATA when nothing was counted,
 * STSIM_ERROR_INVALID when vocab_size is below specials + alphabet. */
STSIM_API
gboolean stsim_vocab_trainer_train (StsimVocabTrainer *t, GError **error);
/* After train: the tokens in id order and the merges in rank order (BPE:
 * byte-level text as in vocab.json; WordPiece merges are not saved). */
STSIM_API
guint       stsim_vocab_trainer_n_tokens (StsimVocabTrainer *t);
STSIM_API
const char *stsim_vocab_trainer_token    (StsimVocabTrainer *t, guint id);
STSIM_API
guint       stsim_vocab_trainer_n_merges (StsimVocabTrainer *t);
STSIM_API
void        stsim_vocab_trainer_merge    (StsimVocabTrainer *t, guint rank, const char **left, const char **right);
/* Initial symbols (specials + alphabet + continuations): the smallest vocab_size. */
STSIM_API
guint       stsim_vocab_trainer_n_initial (StsimVocabTrainer *t);

/* Writes the Hugging Face folder @dir (created if needed; each file written
 * atomically): vocab.txt, or vocab.json + merges.txt; tokenizer_config.json. */
STSIM_API
gboolean stsim_vocab_trainer_save (StsimVocabTrainer *t, const char *dir, GError **error);

G_END_DECLS
