/* rundir.h: run-folder safety (core-internal): one run per folder (a lock
 * file), a fresh run that never inherits an older run's state, leftovers of
 * interrupted atomic saves removed, a resume that refuses a changed run (a
 * fingerprint of everything that determines the trajectory) and checks of a
 * loaded resume state. stsim-run and the trainer call these in this order:
 *
 *   lock_acquire -> remove_temps -> dir_prepare -> (resume: load the state,
 *   state_check_*, fingerprint_compare) -> train -> lock_release
 *
 * Errors are in STSIM_ERROR: INVALID (a folder in use, a used folder for a
 * fresh run), NOT_FOUND (nothing to resume), IO, CHECKPOINT (a state that
 * is invalid or from a changed run). Every message names the folder, file
 * or key and says how to go on. The folder part (lock, prepare, temporary
 * files) is public: stsim/stsim-rundir.h, which this includes. */
#pragma once
#include <glib.h>
#include "stsim/stsim-rundir.h"

G_BEGIN_DECLS

/* ---- the resume fingerprint ------------------------------------------------------- */

/* Metadata key of the fingerprint (JSON text) in the resume state. */
#define STSIM_RUN_FINGERPRINT_KEY "stsim.run_fingerprint"

/* A flat, sorted map KEY -> VALUE of everything that determines a training
 * run's trajectory:
 *   SECTION.KEY          every key of the resolved recipe, but those that
 *                        cannot change the trajectory (run.output, run.name,
 *                        run.threads, train.log_every, train.save_every,
 *                        train.keep_state, train.test);
 *   checkpoint:SECTION.KEY  "sha256 HEX" of the checkpoint a recipe value
 *                        names (a folder with model.safetensors, or a
 *                        .safetensors file): the model, a teacher's model, a
 *                        generator;
 *   file:SECTION.KEY[/NAME]  "sha256 HEX" of another file a value names (a
 *                        model config.json), or of the config and tokenizer
 *                        files (config.json, vocab.txt, vocab.json,
 *                        merges.txt, tokenizer*.json, ...) of a folder it names;
 *   corpus:PATH          "BYTES bytes, sha256 HEX" of each corpus file;
 *   plugin:NAME          the plugin's version (from resolved.ini);
 *   run:ranks            the number of ranks;
 *   stsim:version        this stsim's version. */
typedef struct _StsimRunFingerprint StsimRunFingerprint;

StsimRunFingerprint *stsim_run_fingerprint_new   (void);
void                 stsim_run_fingerprint_free  (StsimRunFingerprint *fp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimRunFingerprint, stsim_run_fingerprint_free)
void                 stsim_run_fingerprint_set   (StsimRunFingerprint *fp, const char *key, const char *value);
const char          *stsim_run_fingerprint_get   (const StsimRunFingerprint *fp, const char *key);
/* The keys, sorted (owned by @fp). */
GPtrArray           *stsim_run_fingerprint_keys  (const StsimRunFingerprint *fp);

/* Every key of @resolved_ini (the text of resolved.ini,
 * stsim_recipe_to_string()), the checkpoints and files its values name
 * (hashed once each) and the plugin versions. @origin names the text in errors. */
gboolean stsim_run_fingerprint_add_recipe (StsimRunFingerprint *fp, const char *resolved_ini, const char *origin,
                                           gboolean quiet, GError **error);
/* Size and SHA-256 of each file (a file listed twice is hashed once); a
 * progress line on stderr for big files unless @quiet. */
gboolean stsim_run_fingerprint_add_corpus (StsimRunFingerprint *fp, const char *const *files, gboolean quiet,
                                           GError **error);
void     stsim_run_fingerprint_set_ranks  (StsimRunFingerprint *fp, int n_ranks);

/* All of the above: what the trainer calls. */
StsimRunFingerprint *stsim_run_fingerprint_build (const char *resolved_ini, const char *const *corpus_files,
                                                  int n_ranks, gboolean quiet, GError **error);

/* JSON object text (sorted keys) for the state's metadata, and back;
 * @origin (the state file) names the text in errors (CHECKPOINT). */
char                *stsim_run_fingerprint_to_json   (const StsimRunFingerprint *fp);
StsimRunFingerprint *stsim_run_fingerprint_from_json (const char *json, const char *origin, GError **error);

/* Refuses (CHECKPOINT) when @saved and @now differ in a key that no pattern
 * of @allowed (NULL-terminated, exact keys or globs such as 'corpus:*')
 * matches, listing every differing key with both values and hinting at
 * `--resume --allow-changed KEY...`. A pattern that matches no key of either
 * is an error too (a typo must not pass silently). @changed (optional) gets
 * the allowed differences, one "KEY: SAVED -> NOW" each (NULL when none),
 * for the caller to print. @origin names the state file. */
gboolean stsim_run_fingerprint_compare (const StsimRunFingerprint *saved, const StsimRunFingerprint *now,
                                        const char *const *allowed, const char *origin, char ***changed,
                                        GError **error);

/* ---- checks of a loaded resume state ----------------------------------------------- */

/* The scalar fields of a resume state, as read (signed: a hand-edited or
 * corrupt file may hold anything). */
typedef struct {
  gint64   step;          /* optimizer steps taken */
  gint64   total_steps;   /* of the recipe that resumes */
  gint64   epoch;
  gint64   index;         /* next example of the epoch's permutation */
  gint64   n_examples;    /* corpus size */
  gint64   batch_size;
  gboolean has_best;
  double   best;
  gint64   best_step;
  gint64   bad_total;     /* skipped (non-finite) steps */
  gint64   bad_in_row;
} StsimRunStatePosition;

/* Checks 0 <= step <= total_steps, 0 <= epoch <= step, 0 <= index <=
 * n_examples (index == n_examples: the epoch is used up), 1 <= batch_size,
 * 0 <= bad_in_row <= bad_total <= step, 0 <= best_step <= step and a finite
 * best when has_best. The error (CHECKPOINT) names @path, the field, its
 * value and the allowed range. */
gboolean stsim_run_state_check_position (const StsimRunStatePosition *pos, const char *path, GError **error);

/* One more integer field (an Adam step count, an RNG offset): @lo <= @value
 * <= @hi, else an error naming @path and @field. */
gboolean stsim_run_state_check_range    (gint64 value, gint64 lo, gint64 hi, const char *field, const char *path,
                                         GError **error);

/* Every value of tensor @name (@n floats) finite, else an error naming @path,
 * the tensor, the first bad element and how many are bad. */
gboolean stsim_run_state_check_finite   (const float *data, gsize n, const char *name, const char *path,
                                         GError **error);

/* Adam's second moments and BN running variances: finite and >= 0 (a
 * negative one makes sqrt() NaN at the first step). Errors as above. */
gboolean stsim_run_state_check_nonnegative (const float *data, gsize n, const char *name, const char *path,
                                            GError **error);

G_END_DECLS
