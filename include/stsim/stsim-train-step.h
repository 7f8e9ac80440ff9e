/* stsim-train-step.h: a training step as objectives and teachers see it,
 * and the corpus and masked-LM helpers they share with the trainer
 * (stsim-train.h runs the loop that makes the steps).
 *
 * ROW ORDER. A step holds B sentences and V views of them (V = 2 for
 * unsupervised SimCSE, 3 for supervised triples sent0/sent1/hard_neg). Its
 * token batch has V·B rows in VIEW-MAJOR order:
 *
 *   rows [0, B)     view 0 (sentence i at row i)
 *   rows [B, 2B)    view 1 (sentence i at row B + i)
 *   rows [2B, 3B)   view 2 (hard negatives; supervised only)
 *
 * (HF interleaves [s1, s1, s2, s2, ...]; the losses are invariant to the row
 * order, BatchNorm statistics too, and view-major makes z1 and z2 zero-copy
 * slices.) Every row draws its own dropout masks, so the two copies of a
 * sentence differ only by their dropout noise (method.md §3.2).
 *
 * LAZINESS. The student forward, pooling and head run on first request
 * (stsim_train_step_get_output / _get_pooled / _get_projected), so an
 * objective that needs its own forward (mlm alone, for pretraining) costs
 * no unused pass.
 *
 * An objective's loss() builds its scalar from autograd ops on the step's
 * tape; the engine (stsim-train.h) sums the weighted terms and runs backward once.
 */
#pragma once
#include <glib.h>
#include "stsim-error.h"
#include "stsim-export.h"
#include "stsim-tensor.h"
#include "stsim-autograd.h"
#include "stsim-rng.h"
#include "stsim-tokenizer.h"
#include "stsim-plugin.h"
#include "stsim-model.h"

G_BEGIN_DECLS

/* ---- corpus ------------------------------------------------------------ */
/* Sentences for training: one per line (UTF-8; empty and whitespace-only
 * lines skipped; a trailing CR is dropped), or rows of a CSV with named
 * columns (supervised triples). Invalid UTF-8, NUL bytes and malformed CSV
 * are STSIM_ERROR_ENCODING / STSIM_ERROR_DATA errors naming file:line. */
typedef struct _StsimCorpus StsimCorpus;

/* @paths: NULL-terminated; each a file, a folder (its .txt files, sorted
 * by name) or a glob pattern with '*' or '?' in the file name (matches
 * sorted by name). */
STSIM_API
StsimCorpus *stsim_corpus_load_lines (const char *const *paths, GError **error);
/* A CSV file with a header row naming at least @columns (NULL-terminated,
 * e.g. {"sent0", "sent1", "hard_neg", NULL}); other columns are ignored.
 * Parsed with libcsv (RFC 4180 quoting). */
STSIM_API
StsimCorpus *stsim_corpus_load_csv   (const char *path, const char *const *columns, GError **error);
STSIM_API
void         stsim_corpus_free       (StsimCorpus *corpus);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimCorpus, stsim_corpus_free)

/* Number of examples (lines, or CSV rows). */
STSIM_API
gsize        stsim_corpus_get_n       (const StsimCorpus *corpus);
/* Texts per example: 1 for lines, the number of @columns for CSV. */
STSIM_API
guint        stsim_corpus_get_n_views (const StsimCorpus *corpus);
STSIM_API
const char  *stsim_corpus_get_text    (const StsimCorpus *corpus, gsize i, guint view);
/* Where example @i came from, for messages: file and 1-based line. */
STSIM_API
const char  *stsim_corpus_get_location (const StsimCorpus *corpus, gsize i, guint *line);

/* ---- masked-LM corruption (method.md §3.9, §4.2 step 2) ----------------- */
typedef struct {
  double ratio;          /* probability that a maskable position is selected (0.15) */
  double mask_prob;      /* of the selected: replaced by the mask id (0.8) */
  double random_prob;    /* of the selected: replaced by a uniform id in [0, vocab) (0.1); rest unchanged */
} StsimMaskingConfig;

#define STSIM_MASKING_CONFIG_INIT { 0.15, 0.8, 0.1 }

/* Corrupts @ids [n_rows * width] (right-padded rows of @lengths tokens)
 * into @out_ids and writes the original id at every selected position of
 * @labels (others get -100). Special ids (stsim_tokenizer_is_special) and
 * pads are never selected. Draws from @rng in row-major order, three
 * uniforms per maskable position, so the result depends only on the
 * generator's position. Returns the number of selected positions. */
STSIM_API
gsize stsim_mask_tokens (StsimTokenizer *tok, const StsimMaskingConfig *config, StsimRng *rng,
                         const gint32 *ids, const gint32 *lengths, gsize n_rows, gsize width,
                         gint32 *out_ids, gint32 *labels);

/* ---- the step, as objectives see it ------------------------------------- */
STSIM_API
StsimTape              *stsim_train_step_get_tape      (StsimTrainStep *step);
/* B: sentences of this step (the last step of an epoch may have fewer). */
STSIM_API
gsize                   stsim_train_step_get_n_sentences (StsimTrainStep *step);
/* V: views per sentence (2 unsupervised, 3 with hard negatives). */
STSIM_API
guint                   stsim_train_step_get_n_views   (StsimTrainStep *step);
/* Text of sentence @i (< B) in view @v (unsupervised: both views the same). */
STSIM_API
const char             *stsim_train_step_get_text      (StsimTrainStep *step, gsize i, guint view);
/* All V·B row texts in row order (NULL-terminated; owned by the step). */
STSIM_API
const char *const      *stsim_train_step_get_row_texts (StsimTrainStep *step);
/* The V·B rows tokenized with max_len, view-major (see ROW ORDER). */
STSIM_API
const StsimTokenBatch  *stsim_train_step_get_batch     (StsimTrainStep *step);
STSIM_API
StsimModel             *stsim_train_step_get_model     (StsimTrainStep *step);
STSIM_API
StsimTokenizer         *stsim_train_step_get_tokenizer (StsimTrainStep *step);
/* Optimizer steps already taken (0 at the first step) and the planned total. */
STSIM_API
guint64                 stsim_train_step_get_step      (StsimTrainStep *step);
STSIM_API
guint64                 stsim_train_step_get_total_steps (StsimTrainStep *step);
STSIM_API
guint64                 stsim_train_step_get_seed      (StsimTrainStep *step);
/* The student's forward output over all rows (train mode, run once). */
STSIM_API
const StsimModelOutput *stsim_train_step_get_output (StsimTrainStep *step, GError **error);
/* Pooled vectors h [V·B, H] (the trained encoder's pooler; its cls and
 * cls_before_pooler both give the first token's state, the head adds the
 * MLP) and head outputs z [V·B, H] ([train] head: mlp, bn or none). */
STSIM_API
StsimTensor            *stsim_train_step_get_pooled    (StsimTrainStep *step, GError **error);
STSIM_API
StsimTensor            *stsim_train_step_get_projected (StsimTrainStep *step, GError **error);
/* z of view @v: [B, H], a zero-copy slice of the projected vectors. */
STSIM_API
StsimTensor            *stsim_train_step_get_view      (StsimTrainStep *step, guint view, GError **error);
/* A generator for this step and @stream: a pure function of (run seed,
 * stream, step), so resuming needs no RNG state. Objectives use
 * STSIM_RNG_STREAM_MASKING, or STSIM_RNG_STREAM_USER + k for their own. */
STSIM_API
void                    stsim_train_step_init_rng      (StsimTrainStep *step, guint32 stream, StsimRng *rng);
/* Per-step scratch shared between objectives (teachers' score matrices,
 * DiffCSE's masked batch): data lives until the step ends, then @destroy
 * runs. Setting a key again replaces (and destroys) the old value. */
STSIM_API
void                    stsim_train_step_set_data      (StsimTrainStep *step, const char *key, gpointer data,
                                                        GDestroyNotify destroy);
STSIM_API
gpointer                stsim_train_step_get_data      (StsimTrainStep *step, const char *key);
/* An extra scalar for metrics.jsonl (averaged over the logging interval),
 * e.g. the fraction of replaced tokens; the name gets the objective label. */
STSIM_API
void                    stsim_train_step_log           (StsimTrainStep *step, const char *name, double value);
/* The label of the objective whose loss() is running ("objective.mlm"). */
STSIM_API
const char             *stsim_train_step_get_objective_label (StsimTrainStep *step);

/* ---- data-parallel steps (docs/distributed.md) --------------------------- *
 * Under MPI (mpirun -np W stsim-run RECIPE) every rank holds the whole model
 * and the whole GLOBAL batch of B sentences; rank r runs the student on its
 * shard only: sentences [first, first + n) of every view, i.e. rows
 * v·B + first + i. What the accessors above return in that case:
 *   - n_sentences, texts, row texts and get_batch: the GLOBAL batch (the same
 *     on every rank, so teachers and masking draw exactly as one process);
 *   - get_pooled, get_projected, get_view: the GLOBAL [V·B, H] rows, all
 *     gathered; this rank's rows carry gradients, the others are constants
 *     (the head's batch norm takes its statistics over every rank's rows);
 *   - get_output: the student forward over THIS RANK's rows only
 *     (get_local_batch, in that order).
 * A loss built on the global views is the same number on every rank and
 * gives each rank the exact gradient of its own rows; the trainer sums the
 * parameter gradients over the ranks, so the update equals one process's.
 * An objective that runs its own forward (mlm, diff-predict) must instead
 * run it on this rank's rows only and normalise with GLOBAL counts
 * (stsim_train_step_sum_over_ranks), so that the ranks' losses add up to the
 * single-process loss, and say so with stsim_train_step_set_loss_local; its
 * forward passes the whole batch and this rank's rows of it
 * (StsimForwardOptions.whole, whole_rows), so that its dropout draws the
 * single-process masks, as get_output's does. With one process everything
 * below is the identity (shard = whole batch). */
STSIM_API
guint                   stsim_train_step_get_n_ranks   (StsimTrainStep *step);
STSIM_API
guint                   stsim_train_step_get_rank      (StsimTrainStep *step);
/* This rank's sentences [*first, *first + *n) of the B. */
STSIM_API
void                    stsim_train_step_get_shard     (StsimTrainStep *step, gsize *first, gsize *n);
/* The V·n rows of this rank (view-major: view v's n rows, then view v+1's),
 * as a token batch; get_output runs on exactly these rows. */
STSIM_API
const StsimTokenBatch  *stsim_train_step_get_local_batch (StsimTrainStep *step);
/* Global row index (into get_batch / get_projected) of local row @i. */
STSIM_API
gsize                   stsim_train_step_local_row     (StsimTrainStep *step, gsize i);
/* Sums @values [n] over the ranks in place (global counts of masked tokens,
 * say). A collective: every rank's objective must call it equally often,
 * in the same order. */
STSIM_API
gboolean                stsim_train_step_sum_over_ranks (StsimTrainStep *step, double *values, gsize n,
                                                         GError **error);
/* Declares that the loss the running objective returns covers only this
 * rank's rows (normalised so that the ranks' losses add up to the global
 * loss): the trainer then logs the sum over ranks. Without it a loss is
 * taken to be computed on the global views, the same on every rank. */
STSIM_API
void                    stsim_train_step_set_loss_local (StsimTrainStep *step);

/* ---- a step without a trainer (testing objectives) ---------------------- *
 * Like GStreamer's GstHarness: an objective's loss() can be driven with
 * chosen inputs. A detached step has B sentences, V views, no head (z = h)
 * and the pooler cls_before_pooler. Give it either projected vectors
 * directly, or a model and row texts (then the forward runs lazily). */
STSIM_API
StsimTrainStep *stsim_train_step_new_detached (StsimTape *tape, gsize n_sentences, guint n_views,
                                               guint64 seed, guint64 step);
STSIM_API
void            stsim_train_step_free          (StsimTrainStep *step);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimTrainStep, stsim_train_step_free)
/* @z [V·B, H], view-major (see ROW ORDER); the step does not own it. */
STSIM_API
void            stsim_train_step_set_projected (StsimTrainStep *step, StsimTensor *z);
/* @texts: the V·B row texts, view-major; tokenized now with @max_len. The
 * model is borrowed. */
STSIM_API
gboolean        stsim_train_step_set_model     (StsimTrainStep *step, StsimModel *model,
                                                const char *const *texts, int max_len, GError **error);
/* Extra values logged by the objectives (stsim_train_step_log), or NAN. */
STSIM_API
double          stsim_train_step_get_logged    (StsimTrainStep *step, const char *name);

G_END_DECLS
