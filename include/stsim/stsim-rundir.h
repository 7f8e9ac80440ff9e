/* stsim-rundir.h: the run folder's safety, for the tools that write one
 * (stsim-run): one run per folder (a lock file), a fresh run that never
 * inherits an older run's state (--overwrite removes it), and the leftovers
 * of interrupted atomic saves removed at the next start. The order:
 *
 *   lock_acquire -> remove_temps -> dir_prepare -> run -> lock_release
 *
 * The resume fingerprint and the checks of a loaded state are the
 * trainer's business (stsim_trainer_run, StsimTrainOptions.allow_changed).
 * Errors are in STSIM_ERROR: INVALID (a folder in use, a used folder for a
 * fresh run), NOT_FOUND (nothing to resume), IO. Every message names the
 * folder or file and says how to go on. */
#pragma once
#include <glib.h>
#include "stsim-export.h"

G_BEGIN_DECLS

/* ---- one run per folder ---------------------------------------------------------- */

#define STSIM_RUN_LOCK_FILE ".stsim-lock"

typedef struct _StsimRunLock StsimRunLock;

/* Creates @dir (with parents) and, atomically, @dir/.stsim-lock holding this
 * process's PID, host name, boot id, start time (wall clock and the /proc
 * start tick, which tells a reused PID apart) and command line.
 *
 * Another live run's lock fails at once, naming its PID, host, start time
 * and command. A lock of this host whose process is gone (kill(pid, 0) gives
 * ESRCH, the PID now belongs to another process, or the machine rebooted) is
 * stale: taken over, with a warning (stsim_run_lock_get_warning(), also
 * printed on stderr unless @quiet). A lock of another host is refused: its
 * process cannot be checked from here.
 *
 * @is_root FALSE (MPI ranks other than 0: rank 0 locks for the job): no lock
 * is taken, *@lock is NULL and TRUE is returned. */
STSIM_API
gboolean     stsim_run_lock_acquire     (const char *dir, gboolean is_root, gboolean quiet, StsimRunLock **lock,
                                         GError **error);
/* The takeover warning, or NULL when no stale lock was replaced. */
STSIM_API
const char  *stsim_run_lock_get_warning (const StsimRunLock *lock);
/* Removes the lock file if it is still this lock's, and frees @lock (NULL: nothing). */
STSIM_API
void         stsim_run_lock_release     (StsimRunLock *lock);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimRunLock, stsim_run_lock_release)

/* ---- fresh run, overwrite, resume ------------------------------------------------ */

typedef enum {
  STSIM_RUN_FRESH,      /* refuse a folder that holds a previous run's artefacts */
  STSIM_RUN_OVERWRITE,  /* remove those artefacts first (--overwrite) */
  STSIM_RUN_RESUME      /* require state/state.safetensors (--resume) */
} StsimRunMode;

/* Run artefacts are what a training run writes: resolved.ini,
 * metrics.jsonl, results.json, curves.svg, state/state.safetensors and the
 * model files of best/ (config.json, model.safetensors, tokenizer files).
 * FRESH fails (INVALID) when @dir holds any, naming them and suggesting
 * --overwrite, --resume or another [run] output. OVERWRITE deletes them
 * (and state/, best/ when that leaves them empty), never another file, and
 * before anything new is written, so no old state survives for a later
 * --resume; @removed (optional) gets what was removed ("state/",
 * "metrics.jsonl", "best/{config.json, model.safetensors} (best/ kept: it
 * holds other files)"),
 * NULL when nothing. RESUME fails (NOT_FOUND) without a state to resume. A
 * missing @dir is a fresh folder (RESUME: nothing to resume). Call it
 * holding the lock. */
STSIM_API
gboolean     stsim_run_dir_prepare      (const char *dir, StsimRunMode mode, char ***removed, GError **error);

/* Removes what interrupted atomic saves left in @dir: temporary folders of
 * best/ (.best.tmp-XXXXXX/, .best.old-XXXXXX/), state/state.safetensors.tmp-XXXXXX,
 * the temporary files of g_file_set_contents() beside resolved.ini,
 * metrics.jsonl, results.json and curves.svg (NAME.XXXXXX) and of the lock.
 * Only these exact patterns (XXXXXX = 6 letters or digits). @n_removed and
 * @bytes (optional) get the count and their size. Call it holding the lock:
 * no other process writes there then. */
STSIM_API
gboolean     stsim_run_dir_remove_temps (const char *dir, guint *n_removed, guint64 *bytes, GError **error);

G_END_DECLS
