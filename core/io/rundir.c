/* rundir.c: the run-folder lock, fresh/overwrite/resume preparation,
 * removal of leftover temporary files and checks of a loaded resume state
 * (rundir.h). The resume fingerprint is in rundir-fingerprint.c. */
#include "io/rundir.h"
#include "io/bounded.h"
#include "stsim/stsim-error.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <glib/gstdio.h>

#define LOCK_GROUP "stsim-lock"
#define LOCK_ATTEMPTS 5

struct _StsimRunLock {
  char *path;
  char *token;    /* tells this lock from a later one at the same path */
  char *warning;
};

typedef struct {
  gint64  pid;
  guint64 proc_start;   /* field 22 of /proc/PID/stat; 0 when unknown */
  char   *host, *boot_id, *started, *command, *token;
} LockInfo;

static void
lock_info_clear (LockInfo *li)
{
  g_free (li->host);
  g_free (li->boot_id);
  g_free (li->started);
  g_free (li->command);
  g_free (li->token);
  memset (li, 0, sizeof *li);
}

/* ---- facts about processes -------------------------------------------------------- */

/* The start time of process @pid in clock ticks after boot (field 22 of
 * /proc/PID/stat): with the PID it names one process, even after the PID is
 * reused. FALSE when /proc does not tell (no /proc, process gone). */
static gboolean
proc_start_time (gint64 pid, guint64 *ticks)
{
  g_autofree char *path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/stat", pid);
  g_autofree char *text = NULL;
  if (!stsim_file_get_contents (path, STSIM_MIB, &text, NULL, NULL))
    return FALSE;
  /* The command name (field 2) may hold spaces and ')': fields 3.. follow the last ')'. */
  const char *p = strrchr (text, ')');
  if (!p)
    return FALSE;
  g_auto(GStrv) f = g_strsplit_set (p + 1, " \n", -1);
  guint k = 0;
  for (guint i = 0; f[i]; i++) {
    if (!*f[i])
      continue;
    if (++k == 20)  /* fields 3, 4, ...: the 20th is field 22 */
      return g_ascii_string_to_unsigned (f[i], 10, 0, G_MAXUINT64, ticks, NULL);
  }
  return FALSE;
}

static char *
boot_id (void)
{
  char *text = NULL;
  if (!stsim_file_get_contents ("/proc/sys/kernel/random/boot_id", STSIM_MIB, &text, NULL, NULL))
    return NULL;
  return g_strstrip (text);
}

/* This process's command line, arguments quoted where the shell needs it. */
static char *
command_line (void)
{
  g_autofree char *raw = NULL;
  gsize len = 0;
  if (!stsim_file_get_contents ("/proc/self/cmdline", STSIM_MIB, &raw, &len, NULL) || len == 0)
    return g_strdup (g_get_prgname () ? g_get_prgname () : "?");
  GString *s = g_string_new (NULL);
  for (gsize i = 0; i < len; i += strlen (raw + i) + 1) {
    const char *arg = raw + i;
    gboolean plain = *arg && strspn (arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                          "-_./=:,+@%") == strlen (arg);
    g_autofree char *q = plain ? g_strdup (arg) : g_shell_quote (arg);
    g_string_append_printf (s, "%s%s", s->len ? " " : "", q);
  }
  return g_string_free (s, FALSE);
}

/* ---- the lock file ------------------------------------------------------------------- */

static char *
lock_text (const LockInfo *li)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_key_file_set_int64 (kf, LOCK_GROUP, "pid", li->pid);
  g_key_file_set_string (kf, LOCK_GROUP, "host", li->host);
  g_key_file_set_string (kf, LOCK_GROUP, "boot_id", li->boot_id ? li->boot_id : "");
  g_key_file_set_uint64 (kf, LOCK_GROUP, "proc_start", li->proc_start);
  g_key_file_set_string (kf, LOCK_GROUP, "started", li->started);
  g_key_file_set_string (kf, LOCK_GROUP, "command", li->command);
  g_key_file_set_string (kf, LOCK_GROUP, "token", li->token);
  g_key_file_set_comment (kf, NULL, NULL,
                          " stsim-run holds this folder (docs/training.md, \"One run per folder\").\n"
                          " Remove this file only if no run is active here.", NULL);
  return g_key_file_to_data (kf, NULL, NULL);
}

static gboolean
lock_parse (const char *text, const char *path, LockInfo *li, GError **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) local = NULL;
  memset (li, 0, sizeof *li);
  if (g_key_file_load_from_data (kf, text, -1, G_KEY_FILE_NONE, &local)) {
    li->pid = g_key_file_get_int64 (kf, LOCK_GROUP, "pid", &local);
    li->host = g_key_file_get_string (kf, LOCK_GROUP, "host", local ? NULL : &local);
  }
  if (local || li->pid <= 0 || !li->host || !*li->host) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "%s is not a valid stsim lock file (%s); remove it if no run is active in this folder", path,
                 local ? local->message : "no PID or host");
    lock_info_clear (li);
    return FALSE;
  }
  li->proc_start = g_key_file_get_uint64 (kf, LOCK_GROUP, "proc_start", NULL);
  li->boot_id = g_key_file_get_string (kf, LOCK_GROUP, "boot_id", NULL);
  li->started = g_key_file_get_string (kf, LOCK_GROUP, "started", NULL);
  li->command = g_key_file_get_string (kf, LOCK_GROUP, "command", NULL);
  li->token = g_key_file_get_string (kf, LOCK_GROUP, "token", NULL);
  if (!li->started)
    li->started = g_strdup ("?");
  if (!li->command)
    li->command = g_strdup ("?");
  return TRUE;
}

typedef enum { HOLDER_LIVE, HOLDER_OTHER_HOST, HOLDER_GONE, HOLDER_PID_REUSED, HOLDER_REBOOTED } HolderState;

static HolderState
holder_state (const LockInfo *li)
{
  if (strcmp (li->host, g_get_host_name ()) != 0)
    return HOLDER_OTHER_HOST;
  g_autofree char *boot = boot_id ();
  if (boot && li->boot_id && *li->boot_id && strcmp (boot, li->boot_id) != 0)
    return HOLDER_REBOOTED;
  if (li->pid > G_MAXINT || (kill ((pid_t) li->pid, 0) != 0 && errno == ESRCH))
    return HOLDER_GONE;
  guint64 now_start;
  if (li->proc_start && proc_start_time (li->pid, &now_start) && now_start != li->proc_start)
    return HOLDER_PID_REUSED;
  return HOLDER_LIVE;
}

static const char *
gone_reason (HolderState s)
{
  switch (s) {
  case HOLDER_GONE:       return "no such process";
  case HOLDER_PID_REUSED: return "the PID now belongs to another process";
  case HOLDER_REBOOTED:   return "the machine has rebooted since";
  default:                return "";
  }
}

static void
holder_error (const LockInfo *li, HolderState s, const char *dir, const char *path, GError **error)
{
  if (s == HOLDER_OTHER_HOST)
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "run folder %s is locked by a run on host %s (PID %" G_GINT64_FORMAT ", started %s: %s), which "
                 "cannot be checked from this host (%s); remove %s if no run is active on %s, or use another "
                 "[run] output", dir, li->host, li->pid, li->started, li->command, g_get_host_name (), path, li->host);
  else
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "run folder %s is in use by another run: PID %" G_GINT64_FORMAT " on host %s, started %s (%s); "
                 "wait for it to end, stop it, or use another [run] output (--set run.output=DIR)", dir, li->pid,
                 li->host, li->started, li->command);
}

/* Writes @text to a new temporary file beside @path; its name in *@tmp. */
static gboolean
write_temp (const char *path, const char *suffix, const char *text, char **tmp, GError **error)
{
  *tmp = g_strdup_printf ("%s.%s-XXXXXX", path, suffix);
  int fd = g_mkstemp_full (*tmp, O_WRONLY | O_CLOEXEC, 0644);
  gsize len = strlen (text), done = 0;
  int e = 0;
  if (fd < 0)
    e = errno;
  while (fd >= 0 && !e && done < len) {
    gssize w = write (fd, text + done, len - done);
    if (w < 0 && errno != EINTR)
      e = errno;
    else if (w > 0)
      done += (gsize) w;
  }
  if (fd >= 0 && close (fd) != 0 && !e)
    e = errno;
  if (e) {
    if (fd >= 0)
      g_unlink (*tmp);
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot write %s: %s", *tmp, g_strerror (e));
    g_clear_pointer (tmp, g_free);
    return FALSE;
  }
  return TRUE;
}

/* Moves the stale lock @seen (its text) out of the way. Another process may
 * have replaced it meanwhile: what was moved is compared with @seen and
 * put back when it is not the stale lock. */
static gboolean
remove_stale (const char *path, const char *seen, GError **error)
{
  g_autofree char *aside = NULL;
  if (!write_temp (path, "stale", "", &aside, error))
    return FALSE;
  if (g_rename (path, aside) != 0) {
    int e = errno;
    g_unlink (aside);
    if (e == ENOENT)
      return TRUE;  /* gone already: the caller tries again */
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot remove the stale lock %s: %s", path, g_strerror (e));
    return FALSE;
  }
  g_autofree char *moved = NULL;
  if (stsim_file_get_contents (aside, STSIM_MIB, &moved, NULL, NULL) && strcmp (moved, seen) != 0)
    (void) link (aside, path);  /* a live lock: back (if the place is taken, the new holder keeps it) */
  g_unlink (aside);
  return TRUE;
}

static StsimRunLock *
lock_new (const char *path, const char *token)
{
  StsimRunLock *l = g_new0 (StsimRunLock, 1);
  l->path = g_strdup (path);
  l->token = g_strdup (token);
  return l;
}

/* One attempt to place @tmp at @path: TRUE and *@placed on success. */
static gboolean
try_place (const char *tmp, const char *path, const char *text, gboolean *placed, GError **error)
{
  *placed = FALSE;
  if (link (tmp, path) == 0) {
    *placed = TRUE;
    return TRUE;
  }
  int e = errno;
  if (e == EEXIST)
    return TRUE;
  if (e != EPERM && e != ENOTSUP && e != EOPNOTSUPP && e != EMLINK) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot create the lock %s: %s", path, g_strerror (e));
    return FALSE;
  }
  /* A file system without hard links: O_EXCL (a reader may then see the
   * file before its text; it tries again then). */
  int fd = g_open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    e = errno;
    if (e == EEXIST)
      return TRUE;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot create the lock %s: %s", path, g_strerror (e));
    return FALSE;
  }
  gboolean ok = write (fd, text, strlen (text)) == (gssize) strlen (text);
  ok = close (fd) == 0 && ok;
  if (!ok) {
    g_unlink (path);
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot write the lock %s", path);
    return FALSE;
  }
  *placed = TRUE;
  return TRUE;
}

static void
fill_own_info (LockInfo *li)
{
  li->pid = getpid ();
  li->host = g_strdup (g_get_host_name ());
  li->boot_id = boot_id ();
  if (!proc_start_time (li->pid, &li->proc_start))
    li->proc_start = 0;
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  li->started = g_date_time_format (now, "%Y-%m-%dT%H:%M:%SZ");
  li->command = command_line ();
  li->token = g_strdup_printf ("%08x%08x%08x%08x", g_random_int (), g_random_int (), g_random_int (), g_random_int ());
}

/* judge_existing() holding the folder's flock. */
static gboolean
judge_locked (const char *dir, const char *path, char **warning, GError **error)
{
  g_autofree char *text = NULL;
  GError *local = NULL;
  if (!stsim_file_get_contents (path, STSIM_MIB, &text, NULL, &local)) {
    gboolean gone = g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    if (!gone)
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot read the lock: %s", local->message);
    g_error_free (local);
    return gone;  /* released meanwhile: try again */
  }
  LockInfo held;
  if (!lock_parse (text, path, &held, error))
    return FALSE;
  HolderState s = holder_state (&held);
  gboolean stale = s == HOLDER_GONE || s == HOLDER_PID_REUSED || s == HOLDER_REBOOTED;
  /* Testing only: widen the window between judging and removing, in which
   * a racing process could replace the lock (tests/io/test-rundir.c). */
  const char *delay = g_getenv ("STSIM_TEST_LOCK_DELAY_MS");
  if (stale && delay)
    g_usleep (1000 * g_ascii_strtoull (delay, NULL, 10));
  if (!stale)
    holder_error (&held, s, dir, path, error);
  else if (remove_stale (path, text, error)) {
    g_free (*warning);
    *warning = g_strdup_printf ("%s: the run that locked this folder (PID %" G_GINT64_FORMAT " on %s, started %s: "
                                "%s) is gone (%s); taking the lock over", path, held.pid, held.host, held.started,
                                held.command, gone_reason (s));
  } else
    stale = FALSE;
  lock_info_clear (&held);
  return stale;
}

/* The lock exists: decides from its text whether to take it over (TRUE,
 * *@warning set) or to fail. Two processes that both find a stale lock must
 * not both remove "it" (the second would remove the first one's new lock):
 * judging and removing happen under an flock() of the folder, which the
 * kernel drops when a process dies. Where the folder cannot be flock()ed
 * (NFS), remove_stale()'s compare-and-put-back is what is left. */
static gboolean
judge_existing (const char *dir, const char *path, char **warning, GError **error)
{
  int guard = g_open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (guard >= 0 && flock (guard, LOCK_EX) != 0) {
    close (guard);
    guard = -1;
  }
  gboolean ok = judge_locked (dir, path, warning, error);
  if (guard >= 0)
    close (guard);  /* releases the flock */
  return ok;
}

gboolean
stsim_run_lock_acquire (const char *dir, gboolean is_root, gboolean quiet, StsimRunLock **lock, GError **error)
{
  g_return_val_if_fail (dir != NULL && lock != NULL, FALSE);
  *lock = NULL;
  if (!is_root)
    return TRUE;
  if (g_mkdir_with_parents (dir, 0755) != 0) {
    int e = errno;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot create the run folder %s: %s", dir, g_strerror (e));
    return FALSE;
  }
  g_autofree char *path = g_build_filename (dir, STSIM_RUN_LOCK_FILE, NULL);
  LockInfo me = { 0 };
  fill_own_info (&me);
  g_autofree char *text = lock_text (&me);
  g_autofree char *tmp = NULL;
  g_autofree char *warning = NULL;
  gboolean ok = write_temp (path, "tmp", text, &tmp, error);
  for (int attempt = 0; ok && !*lock; attempt++) {
    gboolean placed;
    if (!(ok = try_place (tmp, path, text, &placed, error)))
      break;
    if (placed) {
      *lock = lock_new (path, me.token);
      (*lock)->warning = g_steal_pointer (&warning);
    } else if (attempt + 1 == LOCK_ATTEMPTS) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot take the lock %s: other processes keep taking it; "
                   "is another run starting in %s?", path, dir);
      ok = FALSE;
    } else {
      ok = judge_existing (dir, path, &warning, error);
    }
  }
  if (tmp)
    g_unlink (tmp);
  lock_info_clear (&me);
  if (ok && (*lock)->warning && !quiet)
    g_printerr ("warning: %s\n", (*lock)->warning);
  return ok;
}

const char *
stsim_run_lock_get_warning (const StsimRunLock *lock)
{
  return lock ? lock->warning : NULL;
}

void
stsim_run_lock_release (StsimRunLock *lock)
{
  if (!lock)
    return;
  g_autofree char *text = NULL;
  LockInfo li;
  /* Only our own lock: a folder taken over meanwhile keeps its new holder's. */
  if (stsim_file_get_contents (lock->path, STSIM_MIB, &text, NULL, NULL) && lock_parse (text, lock->path, &li, NULL)) {
    if (g_strcmp0 (li.token, lock->token) == 0)
      g_unlink (lock->path);
    lock_info_clear (&li);
  }
  g_free (lock->path);
  g_free (lock->token);
  g_free (lock->warning);
  g_free (lock);
}

/* ---- run artefacts ------------------------------------------------------------------- */

static const char *const run_files[] = { "resolved.ini", "metrics.jsonl", "results.json", "curves.svg", NULL };
static const char *const state_files[] = { "state.safetensors", NULL };
/* What stsim_model_save writes into best/ (core/model/model-io.c). */
static const char *const best_files[] = {
  "config.json", "model.safetensors", "vocab.txt", "vocab.json", "merges.txt", "tokenizer.json",
  "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", NULL
};

static gboolean
is_entry (const char *path)
{
  GStatBuf st;
  return g_lstat (path, &st) == 0 && !S_ISDIR (st.st_mode);
}

static gboolean
is_real_dir (const char *path)
{
  GStatBuf st;
  return g_lstat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

/* The artefacts of @sub (NULL: @dir itself) from @names that exist, as
 * paths relative to @dir, appended to @found. */
static void
find_in (const char *dir, const char *sub, const char *const *names, GPtrArray *found)
{
  g_autofree char *base = sub ? g_build_filename (dir, sub, NULL) : g_strdup (dir);
  if (sub && !is_real_dir (base))
    return;
  for (guint i = 0; names[i]; i++) {
    g_autofree char *p = g_build_filename (base, names[i], NULL);
    if (is_entry (p))
      g_ptr_array_add (found, sub ? g_build_filename (sub, names[i], NULL) : g_strdup (names[i]));
  }
}

/* "resolved.ini, metrics.jsonl, state/, best/": folders once. */
static char *
summarise (GPtrArray *found)
{
  GString *s = g_string_new (NULL);
  const char *last_dir = NULL;
  for (guint i = 0; i < found->len; i++) {
    const char *name = g_ptr_array_index (found, i);
    const char *slash = strchr (name, '/');
    if (slash && last_dir && strncmp (name, last_dir, slash - name + 1) == 0)
      continue;
    last_dir = slash ? name : NULL;
    g_string_append_printf (s, "%s%.*s", s->len ? ", " : "", slash ? (int) (slash - name + 1) : (int) strlen (name),
                            name);
  }
  return g_string_free (s, FALSE);
}

/* Deletes the artefacts of @sub, then @sub itself when that empties it. */
static gboolean
remove_in (const char *dir, const char *sub, const char *const *names, GPtrArray *removed, GError **error)
{
  g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func (g_free);
  find_in (dir, sub, names, found);
  for (guint i = 0; i < found->len; i++) {
    g_autofree char *p = g_build_filename (dir, g_ptr_array_index (found, i), NULL);
    if (g_unlink (p) != 0 && errno != ENOENT) {
      int e = errno;
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "--overwrite: cannot delete %s: %s", p, g_strerror (e));
      return FALSE;
    }
  }
  if (!sub) {
    for (guint i = 0; i < found->len; i++)
      g_ptr_array_add (removed, g_strdup (g_ptr_array_index (found, i)));
    return TRUE;
  }
  g_autofree char *base = g_build_filename (dir, sub, NULL);
  if (is_real_dir (base) && g_rmdir (base) == 0)
    g_ptr_array_add (removed, g_strdup_printf ("%s/", sub));
  else if (found->len) {
    GString *s = g_string_new (NULL);
    for (guint i = 0; i < found->len; i++)
      g_string_append_printf (s, "%s%s", i ? ", " : "", (char *) g_ptr_array_index (found, i) + strlen (sub) + 1);
    g_ptr_array_add (removed, g_strdup_printf ("%s/{%s} (%s/ kept: it holds other files)", sub, s->str, sub));
    g_string_free (s, TRUE);
  }
  return TRUE;
}

static GPtrArray *
find_artefacts (const char *dir)
{
  GPtrArray *found = g_ptr_array_new_with_free_func (g_free);
  find_in (dir, NULL, run_files, found);
  find_in (dir, "state", state_files, found);
  find_in (dir, "best", best_files, found);
  return found;
}

gboolean
stsim_run_dir_prepare (const char *dir, StsimRunMode mode, char ***removed, GError **error)
{
  g_return_val_if_fail (dir != NULL, FALSE);
  if (removed)
    *removed = NULL;
  g_autoptr(GPtrArray) found = find_artefacts (dir);
  g_autofree char *what = summarise (found);
  if (mode == STSIM_RUN_FRESH && found->len > 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "run folder %s already holds a run (%s); a new run would mix with it. Continue that run with "
                 "--resume, replace it with --overwrite, or write elsewhere ([run] output, --set run.output=DIR)",
                 dir, what);
    return FALSE;
  }
  if (mode == STSIM_RUN_RESUME) {
    g_autofree char *state = g_build_filename (dir, "state", "state.safetensors", NULL);
    if (is_entry (state))
      return TRUE;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND,
                 "--resume: nothing to resume in %s: no state/state.safetensors (%s%s); run without --resume "
                 "to start it%s", dir, found->len ? "it holds " : "no run was saved there",
                 found->len ? what : "", found->len ? " (with --overwrite to replace what is there)" : "");
    return FALSE;
  }
  if (mode != STSIM_RUN_OVERWRITE || found->len == 0)
    return TRUE;
  g_autoptr(GPtrArray) gone = g_ptr_array_new_with_free_func (g_free);
  /* state/ first: once it is gone no --resume can pick up the old run. */
  gboolean ok = remove_in (dir, "state", state_files, gone, error) && remove_in (dir, "best", best_files, gone, error) &&
                remove_in (dir, NULL, run_files, gone, error);
  if (ok && removed && gone->len) {
    g_ptr_array_add (gone, NULL);
    *removed = (char **) g_ptr_array_steal (gone, NULL);
  }
  return ok;
}

/* ---- leftovers of interrupted saves ----------------------------------------------------- */

/* @name is @prefix followed by exactly six letters or digits (mkstemp's X's). */
static gboolean
is_temp_name (const char *name, const char *prefix)
{
  gsize n = strlen (prefix);
  if (strncmp (name, prefix, n) != 0 || strlen (name + n) != 6)
    return FALSE;
  for (const char *p = name + n; *p; p++)
    if (!g_ascii_isalnum (*p))
      return FALSE;
  return TRUE;
}

static gboolean
is_run_temp (const char *name)
{
  static const char *const prefixes[] = {
    ".best.tmp-", ".best.old-",                                   /* stsim_model_save of best/ */
    "resolved.ini.", "metrics.jsonl.", "results.json.", "curves.svg.",  /* g_file_set_contents */
    STSIM_RUN_LOCK_FILE ".tmp-", STSIM_RUN_LOCK_FILE ".stale-",   /* the lock */
    NULL
  };
  for (guint i = 0; prefixes[i]; i++)
    if (is_temp_name (name, prefixes[i]))
      return TRUE;
  return FALSE;
}

/* Deletes @path (a folder with what it holds; symbolic links are not followed). */
static gboolean
remove_tree (const char *path, guint64 *bytes, GError **error)
{
  GStatBuf st;
  if (g_lstat (path, &st) != 0)
    return TRUE;
  if (S_ISDIR (st.st_mode)) {
    g_autoptr(GDir) d = g_dir_open (path, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name (d))) {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (!remove_tree (child, bytes, error))
        return FALSE;
    }
  } else if (S_ISREG (st.st_mode))
    *bytes += (guint64) st.st_size;
  if (g_remove (path) != 0 && errno != ENOENT) {
    int e = errno;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot delete the temporary %s: %s", path, g_strerror (e));
    return FALSE;
  }
  return TRUE;
}

/* Deletes the entries of folder @dir that @match accepts. */
static gboolean
remove_matching (const char *dir, gboolean (*match) (const char *), guint *n, guint64 *bytes, GError **error)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  if (!d)
    return TRUE;  /* no folder, no leftovers */
  g_autoptr(GPtrArray) hits = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while ((name = g_dir_read_name (d)))
    if (match (name))
      g_ptr_array_add (hits, g_build_filename (dir, name, NULL));
  for (guint i = 0; i < hits->len; i++) {
    if (!remove_tree (g_ptr_array_index (hits, i), bytes, error))
      return FALSE;
    (*n)++;
  }
  return TRUE;
}

static gboolean
is_state_temp (const char *name)
{
  return is_temp_name (name, "state.safetensors.tmp-");  /* stsim_safetensors_writer_write */
}

gboolean
stsim_run_dir_remove_temps (const char *dir, guint *n_removed, guint64 *bytes, GError **error)
{
  g_return_val_if_fail (dir != NULL, FALSE);
  guint n = 0;
  guint64 b = 0;
  g_autofree char *state = g_build_filename (dir, "state", NULL);
  gboolean ok = remove_matching (dir, is_run_temp, &n, &b, error) &&
                (!is_real_dir (state) || remove_matching (state, is_state_temp, &n, &b, error));
  if (n_removed)
    *n_removed = n;
  if (bytes)
    *bytes = b;
  return ok;
}

/* ---- checks of a loaded state ------------------------------------------------------------- */

gboolean
stsim_run_state_check_range (gint64 value, gint64 lo, gint64 hi, const char *field, const char *path,
                             GError **error)
{
  if (value >= lo && value <= hi)
    return TRUE;
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT,
               "%s: invalid resume state: %s = %" G_GINT64_FORMAT " is outside [%" G_GINT64_FORMAT ", %"
               G_GINT64_FORMAT "]; the file is damaged or was edited: resume from an intact state, or start the "
               "run again (--overwrite)", path, field, value, lo, hi);
  return FALSE;
}

gboolean
stsim_run_state_check_position (const StsimRunStatePosition *s, const char *path, GError **error)
{
  g_return_val_if_fail (s != NULL && path != NULL, FALSE);
  if (!stsim_run_state_check_range (s->total_steps, 0, G_MAXINT64, "total_steps", path, error) ||
      !stsim_run_state_check_range (s->step, 0, s->total_steps, "step", path, error) ||
      !stsim_run_state_check_range (s->epoch, 0, s->step, "epoch", path, error) ||
      !stsim_run_state_check_range (s->n_examples, 1, G_MAXINT64, "n_examples", path, error) ||
      !stsim_run_state_check_range (s->index, 0, s->n_examples, "index", path, error) ||
      !stsim_run_state_check_range (s->batch_size, 1, G_MAXINT64, "batch_size", path, error) ||
      !stsim_run_state_check_range (s->bad_total, 0, s->step, "bad_total", path, error) ||
      !stsim_run_state_check_range (s->bad_in_row, 0, s->bad_total, "bad_in_row", path, error) ||
      !stsim_run_state_check_range (s->best_step, 0, s->step, "best_step", path, error))
    return FALSE;
  if (s->has_best && !isfinite (s->best)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT,
                 "%s: invalid resume state: best = %g is not a finite score; the file is damaged or was edited: "
                 "resume from an intact state, or start the run again (--overwrite)", path, s->best);
    return FALSE;
  }
  return TRUE;
}

gboolean
stsim_run_state_check_finite (const float *data, gsize n, const char *name, const char *path, GError **error)
{
  g_return_val_if_fail (data != NULL || n == 0, FALSE);
  gsize first = n, bad = 0;
  for (gsize i = 0; i < n; i++)
    if (!isfinite (data[i])) {
      if (first == n)
        first = i;
      bad++;
    }
  if (bad == 0)
    return TRUE;
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT,
               "%s: invalid resume state: tensor '%s' has %" G_GSIZE_FORMAT " non-finite value(s) (the first, "
               "element %" G_GSIZE_FORMAT ", is %g); the file is damaged or was edited: resume from an intact state, "
               "or start the run again (--overwrite)", path, name, bad, first, (double) data[first]);
  return FALSE;
}

gboolean
stsim_run_state_check_nonnegative (const float *data, gsize n, const char *name, const char *path, GError **error)
{
  if (!stsim_run_state_check_finite (data, n, name, path, error))
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (data[i] < 0.0f) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT,
                   "%s: invalid resume state: tensor '%s' holds %g at element %" G_GSIZE_FORMAT ", but its values "
                   "cannot be negative; the file is damaged or was edited: resume from an intact state, or start "
                   "the run again (--overwrite)", path, name, (double) data[i], i);
      return FALSE;
    }
  return TRUE;
}
