/* test-rundir.c: run-folder safety (core/io/rundir.h): the lock (a second
 * run fails naming the first; stale locks of dead or reused PIDs are taken
 * over; another host's lock is refused), fresh / overwrite / resume, the
 * removal of leftovers of interrupted saves, the resume fingerprint (every
 * differing key listed; --allow-changed) and the checks of a loaded state.
 * Issue 19 items 1, 2, 5 and 7. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <glib/gstdio.h>

#include "io/rundir.h"
#include "stsim/stsim.h"
#include "stsim/stsim-recipe.h"
#include "stsim/stsim-registry.h"
#include "test-util.h"

static char *
make_tmp (void)
{
  g_autoptr(GError) e = NULL;
  char *d = g_dir_make_tmp ("stsim-rundir-XXXXXX", &e);
  g_assert_no_error (e);
  return d;
}

/* Writes @len bytes of @data (len < 0: a string) to @dir/@rel, making folders. */
static void
put (const char *dir, const char *rel, const char *data, gssize len)
{
  g_autofree char *p = g_build_filename (dir, rel, NULL);
  g_autofree char *parent = g_path_get_dirname (p);
  g_assert_cmpint (g_mkdir_with_parents (parent, 0755), ==, 0);
  g_assert_true (g_file_set_contents (p, data, len, NULL));
}

/* @n bytes of 'x'. */
static void
put_size (const char *dir, const char *rel, gsize n)
{
  g_autofree char *data = g_malloc (n + 1);
  memset (data, 'x', n);
  put (dir, rel, data, (gssize) n);
}

static gboolean
exists (const char *dir, const char *rel)
{
  g_autofree char *p = g_build_filename (dir, rel, NULL);
  GStatBuf st;
  return g_lstat (p, &st) == 0;
}

static void
assert_has (const char *message, const char *fragment)
{
  if (!strstr (message, fragment))
    g_error ("expected '%s' in: %s", fragment, message);
}

static char *
lock_path (const char *dir)
{
  return g_build_filename (dir, STSIM_RUN_LOCK_FILE, NULL);
}

/* ---- the lock ---------------------------------------------------------------------------- */

/* Two runs at once: a child process holds the lock while this one tries. */
static void
test_lock_concurrent (void)
{
  g_autofree char *dir = make_tmp ();
  int ready[2], go[2];
  g_assert_cmpint (pipe (ready), ==, 0);
  g_assert_cmpint (pipe (go), ==, 0);
  pid_t child = fork ();
  g_assert_cmpint (child, >=, 0);
  if (child == 0) {
    StsimRunLock *l = NULL;
    char c = stsim_run_lock_acquire (dir, TRUE, TRUE, &l, NULL) ? 'y' : 'n';
    if (write (ready[1], &c, 1) != 1 || read (go[0], &c, 1) != 1)
      _exit (3);
    stsim_run_lock_release (l);
    _exit (0);
  }
  char c = 0;
  g_assert_cmpint (read (ready[0], &c, 1), ==, 1);
  g_assert_cmpint (c, ==, 'y');

  StsimRunLock *mine = NULL;
  g_autoptr(GError) e = NULL;
  g_assert_false (stsim_run_lock_acquire (dir, TRUE, TRUE, &mine, &e));
  g_assert_error (e, STSIM_ERROR, STSIM_ERROR_INVALID);
  g_assert_null (mine);
  g_test_message ("%s", e->message);
  g_autofree char *pid = g_strdup_printf ("PID %d on host %s, started ", (int) child, g_get_host_name ());
  assert_has (e->message, pid);
  assert_has (e->message, "is in use by another run");
  assert_has (e->message, "another [run] output");

  /* The first run ends: its lock goes, and the folder is free again, without a warning. */
  g_assert_cmpint (write (go[1], "x", 1), ==, 1);
  int status;
  g_assert_cmpint (waitpid (child, &status, 0), ==, child);
  g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  g_autofree char *lp = lock_path (dir);
  g_assert_false (g_file_test (lp, G_FILE_TEST_EXISTS));
  g_clear_error (&e);
  g_assert_true (stsim_run_lock_acquire (dir, TRUE, TRUE, &mine, &e));
  g_assert_no_error (e);
  g_assert_null (stsim_run_lock_get_warning (mine));
  stsim_run_lock_release (mine);
  for (int i = 0; i < 2; i++) {
    close (ready[i]);
    close (go[i]);
  }
  stsim_test_remove_tree (dir);
}

/* The same process twice (a second run in one program) is refused too. */
static void
test_lock_same_process (void)
{
  g_autofree char *dir = make_tmp ();
  g_autoptr(StsimRunLock) first = NULL;
  g_autoptr(GError) e = NULL;
  g_assert_true (stsim_run_lock_acquire (dir, TRUE, TRUE, &first, &e));
  g_autofree char *lp = lock_path (dir);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (lp, &text, NULL, NULL));
  g_autofree char *pid_line = g_strdup_printf ("pid=%d\n", (int) getpid ());
  assert_has (text, pid_line);
  assert_has (text, "command=");
  assert_has (text, "started=");

  StsimRunLock *second = NULL;
  g_assert_false (stsim_run_lock_acquire (dir, TRUE, TRUE, &second, &e));
  g_assert_error (e, STSIM_ERROR, STSIM_ERROR_INVALID);
  g_autofree char *pid = g_strdup_printf ("PID %d on host %s", (int) getpid (), g_get_host_name ());
  assert_has (e->message, pid);
  /* The refused attempt left nothing behind. */
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint n = 0;
  while ((name = g_dir_read_name (d)))
    n++;
  g_assert_cmpuint (n, ==, 1);
  g_clear_pointer (&first, stsim_run_lock_release);
  g_assert_false (g_file_test (lp, G_FILE_TEST_EXISTS));
  stsim_test_remove_tree (dir);
}

/* A run killed without releasing: its PID is dead, the next run takes over. */
static void
test_lock_stale_dead (void)
{
  g_autofree char *dir = make_tmp ();
  pid_t child = fork ();
  g_assert_cmpint (child, >=, 0);
  if (child == 0) {
    StsimRunLock *l = NULL;
    _exit (stsim_run_lock_acquire (dir, TRUE, TRUE, &l, NULL) ? 0 : 1);  /* no release: a kill */
  }
  int status;
  g_assert_cmpint (waitpid (child, &status, 0), ==, child);
  g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  g_autofree char *lp = lock_path (dir);
  g_assert_true (g_file_test (lp, G_FILE_TEST_EXISTS));

  g_autoptr(StsimRunLock) l = NULL;
  g_autoptr(GError) e = NULL;
  g_assert_true (stsim_run_lock_acquire (dir, TRUE, TRUE, &l, &e));
  g_assert_no_error (e);
  const char *w = stsim_run_lock_get_warning (l);
  g_assert_nonnull (w);
  g_test_message ("%s", w);
  g_autofree char *pid = g_strdup_printf ("PID %d on %s", (int) child, g_get_host_name ());
  assert_has (w, pid);
  assert_has (w, "no such process");
  assert_has (w, "taking the lock over");
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (lp, &text, NULL, NULL));
  g_autofree char *pid_line = g_strdup_printf ("pid=%d\n", (int) getpid ());
  assert_has (text, pid_line);
  g_clear_pointer (&l, stsim_run_lock_release);
  stsim_test_remove_tree (dir);
}

/* @n processes start acquiring at the same moment: exactly one gets the
 * lock, the others are refused (none may believe it holds the lock while
 * another does). Returns after every child has released and exited. */
static void
race (const char *dir, guint n)
{
  int go[2], res[2], done[2];
  g_assert_cmpint (pipe (go), ==, 0);
  g_assert_cmpint (pipe (res), ==, 0);
  g_assert_cmpint (pipe (done), ==, 0);
  g_autofree pid_t *kids = g_new (pid_t, n);
  for (guint i = 0; i < n; i++) {
    kids[i] = fork ();
    g_assert_cmpint (kids[i], >=, 0);
    if (kids[i] == 0) {
      char c;
      close (go[1]);
      close (done[1]);
      if (read (go[0], &c, 1) != 1)
        _exit (3);
      StsimRunLock *l = NULL;
      GError *e = NULL;
      gboolean got = stsim_run_lock_acquire (dir, TRUE, TRUE, &l, &e);
      c = got ? 'y' : e && g_error_matches (e, STSIM_ERROR, STSIM_ERROR_INVALID) ? 'n' : '?';
      if (write (res[1], &c, 1) != 1)
        _exit (3);
      while (read (done[0], &c, 1) > 0)  /* hold until the parent has counted */
        ;
      stsim_run_lock_release (l);
      _exit (0);
    }
  }
  close (go[0]);
  close (res[1]);
  close (done[0]);
  g_autofree char *all = g_malloc0 (n + 1);
  memset (all, 'g', n);
  g_assert_cmpint (write (go[1], all, n), ==, (gssize) n);
  guint yes = 0, no = 0;
  for (guint i = 0; i < n; i++) {
    char c = 0;
    g_assert_cmpint (read (res[0], &c, 1), ==, 1);
    yes += c == 'y';
    no += c == 'n';
  }
  g_assert_cmpuint (yes, ==, 1);
  g_assert_cmpuint (no, ==, n - 1);
  close (done[1]);
  for (guint i = 0; i < n; i++) {
    int status;
    g_assert_cmpint (waitpid (kids[i], &status, 0), ==, kids[i]);
    g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  }
  close (go[1]);
  close (res[0]);
}

/* A lock left by a process that is gone. */
static void
leave_stale_lock (const char *dir)
{
  pid_t child = fork ();
  g_assert_cmpint (child, >=, 0);
  if (child == 0) {
    StsimRunLock *l = NULL;
    _exit (stsim_run_lock_acquire (dir, TRUE, TRUE, &l, NULL) ? 0 : 1);
  }
  int status;
  g_assert_cmpint (waitpid (child, &status, 0), ==, child);
  g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
}

static void
test_lock_race (void)
{
  /* Every child that finds the stale lock waits 20 ms before removing it,
   * so all six judge it stale before any removes it: a plain unlink of
   * the stale lock then gave six holders here; the folder's flock (and,
   * without it, the compare-and-put-back) gives one. */
  g_setenv ("STSIM_TEST_LOCK_DELAY_MS", "20", TRUE);
  for (int round = 0; round < 3; round++) {
    g_autofree char *dir = make_tmp ();
    race (dir, 6);                /* a free folder */
    leave_stale_lock (dir);
    race (dir, 6);                /* a stale lock, which all six find at once */
    g_autofree char *lp = lock_path (dir);
    g_assert_false (g_file_test (lp, G_FILE_TEST_EXISTS));
    g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
    g_assert_null (g_dir_read_name (d));  /* no temporary file left behind */
    stsim_test_remove_tree (dir);
  }
  g_unsetenv ("STSIM_TEST_LOCK_DELAY_MS");
}

/* A lock file written by hand (the format is documented text). */
static void
write_lock (const char *dir, gint64 pid, const char *host, guint64 proc_start, const char *boot)
{
  g_autofree char *text = g_strdup_printf ("[stsim-lock]\npid=%" G_GINT64_FORMAT "\nhost=%s\nboot_id=%s\n"
                                           "proc_start=%" G_GUINT64_FORMAT "\nstarted=2026-12-05T10:00:00Z\n"
                                           "command=stsim-run recipes/x.ini\ntoken=0123\n",
                                           pid, host, boot, proc_start);
  put (dir, STSIM_RUN_LOCK_FILE, text, -1);
}

static guint64
own_start_ticks (void)
{
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents ("/proc/self/stat", &text, NULL, NULL));
  g_auto(GStrv) f = g_strsplit (strrchr (text, ')') + 2, " ", -1);
  return g_ascii_strtoull (f[19], NULL, 10);  /* field 22 */
}

static char *
own_boot_id (void)
{
  char *text = NULL;
  g_assert_true (g_file_get_contents ("/proc/sys/kernel/random/boot_id", &text, NULL, NULL));
  return g_strstrip (text);
}

/* A live PID that now belongs to another process (its start time differs):
 * stale. The same PID with the right start time: busy. */
static void
test_lock_pid_reused (void)
{
  g_autofree char *dir = make_tmp ();
  g_autofree char *boot = own_boot_id ();
  guint64 start = own_start_ticks ();
  write_lock (dir, getpid (), g_get_host_name (), start, boot);
  StsimRunLock *l = NULL;
  g_autoptr(GError) e = NULL;
  g_assert_false (stsim_run_lock_acquire (dir, TRUE, TRUE, &l, &e));
  g_assert_error (e, STSIM_ERROR, STSIM_ERROR_INVALID);
  assert_has (e->message, "started 2026-12-05T10:00:00Z (stsim-run recipes/x.ini)");
  g_clear_error (&e);

  write_lock (dir, getpid (), g_get_host_name (), start + 1, boot);
  g_assert_true (stsim_run_lock_acquire (dir, TRUE, TRUE, &l, &e));
  g_assert_no_error (e);
  assert_has (stsim_run_lock_get_warning (l), "the PID now belongs to another process");
  stsim_run_lock_release (l);

  /* Same host, but written before a reboot: stale whatever the PID. */
  write_lock (dir, getpid (), g_get_host_name (), start, "00000000-0000-0000-0000-000000000000");
  g_assert_true (stsim_run_lock_acquire (dir, TRUE, TRUE, &l, &e));
  assert_has (stsim_run_lock_get_warning (l), "rebooted");
  stsim_run_lock_release (l);
  stsim_test_remove_tree (dir);
}

static void
test_lock_other_host (void)
{
  g_autofree char *dir = make_tmp ();
  write_lock (dir, 4242, "gpu-node-17.example", 1, "x");
  StsimRunLock *l = NULL;
  g_autoptr(GError) e = NULL;
  g_assert_false (stsim_run_lock_acquire (dir, TRUE, TRUE, &l, &e));
  g_assert_error (e, STSIM_ERROR, STSIM_ERROR_INVALID);
  g_test_message ("%s", e->message);
  g_autofree char *lp = lock_path (dir);
  g_autofree char *hint = g_strdup_printf ("remove %s if no run is active on gpu-node-17.example", lp);
  assert_has (e->message, "locked by a run on host gpu-node-17.example (PID 4242");
  assert_has (e->message, hint);
  g_assert_true (g_file_test (lp, G_FILE_TEST_EXISTS));  /* untouched */
  stsim_test_remove_tree (dir);
}

static void
test_lock_corrupt_and_ranks (void)
{
  g_autofree char *dir = make_tmp ();
  /* Ranks other than 0: no lock, no file. */
  StsimRunLock *l = NULL;
  g_autoptr(GError) e = NULL;
  g_assert_true (stsim_run_lock_acquire (dir, FALSE, TRUE, &l, &e));
  g_assert_null (l);
  g_autofree char *lp = lock_path (dir);
  g_assert_false (g_file_test (lp, G_FILE_TEST_EXISTS));
  stsim_run_lock_release (NULL);

  put (dir, STSIM_RUN_LOCK_FILE, "garbage\n", -1);
  g_assert_false (stsim_run_lock_acquire (dir, TRUE, TRUE, &l, &e));
  g_assert_error (e, STSIM_ERROR, STSIM_ERROR_INVALID);
  assert_has (e->message, lp);
  assert_has (e->message, "is not a valid stsim lock file");
  assert_has (e->message, "remove it if no run is active");

  /* A lock replaced by another holder is not removed by the old one's release. */
  g_clear_error (&e);
  g_unlink (lp);
  g_assert_true (stsim_run_lock_acquire (dir, TRUE, TRUE, &l, &e));
  write_lock (dir, getpid (), g_get_host_name (), 1, "x");
  stsim_run_lock_release (l);
  g_assert_true (g_file_test (lp, G_FILE_TEST_EXISTS));
  stsim_test_remove_tree (dir);
}

/* ---- fresh, overwrite, resume ----------------------------------------------------------------- */

/* What a finished training run leaves, plus files of the user. */
static void
fill_run (const char *dir)
{
  put (dir, "resolved.ini", "[run]\nseed = 1\n", -1);
  put (dir, "metrics.jsonl", "{\"type\":\"train\",\"step\":10}\n", -1);
  put (dir, "results.json", "{}\n", -1);
  put (dir, "curves.svg", "<svg/>\n", -1);
  put (dir, "state/state.safetensors", "0123456789", -1);
  put (dir, "best/config.json", "{}\n", -1);
  put (dir, "best/model.safetensors", "0123456789", -1);
  put (dir, "best/vocab.txt", "[PAD]\n", -1);
  put (dir, "best/tokenizer_config.json", "{}\n", -1);
}

static void
test_prepare_fresh (void)
{
  g_autofree char *dir = make_tmp ();
  g_autoptr(GError) e = NULL;
  g_autofree char *missing = g_build_filename (dir, "not-yet", NULL);
  g_assert_true (stsim_run_dir_prepare (missing, STSIM_RUN_FRESH, NULL, &e));
  g_assert_no_error (e);
  /* User files alone are no run. */
  put (dir, "notes.txt", "mine\n", -1);
  g_assert_true (stsim_run_dir_prepare (dir, STSIM_RUN_FRESH, NULL, &e));

  fill_run (dir);
  g_assert_false (stsim_run_dir_prepare (dir, STSIM_RUN_FRESH, NULL, &e));
  g_assert_error (e, STSIM_ERROR, STSIM_ERROR_INVALID);
  g_test_message ("%s", e->message);
  g_autofree char *what = g_strdup_printf ("run folder %s already holds a run (resolved.ini, metrics.jsonl, "
                                           "results.json, curves.svg, state/, best/)", dir);
  assert_has (e->message, what);
  assert_has (e->message, "--resume");
  assert_has (e->message, "--overwrite");
  assert_has (e->message, "[run] output");
  g_assert_true (exists (dir, "state/state.safetensors"));  /* refused: nothing touched */

  /* One artefact is enough: a state left by a run killed early. */
  g_clear_error (&e);
  g_autofree char *dir2 = make_tmp ();
  put (dir2, "state/state.safetensors", "x", -1);
  g_assert_false (stsim_run_dir_prepare (dir2, STSIM_RUN_FRESH, NULL, &e));
  assert_has (e->message, "already holds a run (state/)");
  stsim_test_remove_tree (dir);
  stsim_test_remove_tree (dir2);
}

static void
test_prepare_overwrite (void)
{
  g_autofree char *dir = make_tmp ();
  fill_run (dir);
  put (dir, "notes.txt", "mine\n", -1);
  put (dir, "my-plots/loss.png", "png", -1);
  put (dir, "best/model-card.txt", "my model card\n", -1);
  g_auto(GStrv) removed = NULL;
  g_autoptr(GError) e = NULL;
  g_assert_true (stsim_run_dir_prepare (dir, STSIM_RUN_OVERWRITE, &removed, &e));
  g_assert_no_error (e);
  g_autofree char *list = g_strjoinv (" | ", removed);
  g_test_message ("removed: %s", list);
  g_assert_cmpstr (list, ==, "state/ | best/{config.json, model.safetensors, vocab.txt, tokenizer_config.json} "
                   "(best/ kept: it holds other files) | resolved.ini | metrics.jsonl | results.json | curves.svg");
  g_assert_false (exists (dir, "state"));
  g_assert_false (exists (dir, "metrics.jsonl"));
  g_assert_false (exists (dir, "resolved.ini"));
  g_assert_false (exists (dir, "best/model.safetensors"));
  g_assert_true (exists (dir, "notes.txt"));
  g_assert_true (exists (dir, "my-plots/loss.png"));
  g_assert_true (exists (dir, "best/model-card.txt"));

  /* Nothing left that --resume could pick up, nothing a fresh run would refuse. */
  g_assert_false (stsim_run_dir_prepare (dir, STSIM_RUN_RESUME, NULL, &e));
  g_assert_error (e, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_clear_error (&e);
  g_assert_true (stsim_run_dir_prepare (dir, STSIM_RUN_FRESH, NULL, &e));

  /* A run folder of its own: best/ goes as a whole; a second overwrite removes nothing. */
  g_auto(GStrv) again = NULL;
  g_autofree char *dir2 = make_tmp ();
  fill_run (dir2);
  g_assert_true (stsim_run_dir_prepare (dir2, STSIM_RUN_OVERWRITE, &again, &e));
  g_autofree char *list2 = g_strjoinv (" | ", again);
  g_assert_cmpstr (list2, ==, "state/ | best/ | resolved.ini | metrics.jsonl | results.json | curves.svg");
  g_autoptr(GDir) d = g_dir_open (dir2, 0, NULL);
  g_assert_null (g_dir_read_name (d));
  g_clear_pointer (&again, g_strfreev);
  g_assert_true (stsim_run_dir_prepare (dir2, STSIM_RUN_OVERWRITE, &again, &e));
  g_assert_null (again);
  stsim_test_remove_tree (dir);
  stsim_test_remove_tree (dir2);
}

static void
test_prepare_resume (void)
{
  g_autofree char *dir = make_tmp ();
  g_autoptr(GError) e = NULL;
  g_assert_false (stsim_run_dir_prepare (dir, STSIM_RUN_RESUME, NULL, &e));
  g_assert_error (e, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_test_message ("%s", e->message);
  assert_has (e->message, "nothing to resume");
  assert_has (e->message, "no run was saved there");
  g_clear_error (&e);
  /* A run that ended with keep_state = none, or was killed before its first save. */
  put (dir, "resolved.ini", "[run]\n", -1);
  put (dir, "metrics.jsonl", "\n", -1);
  g_assert_false (stsim_run_dir_prepare (dir, STSIM_RUN_RESUME, NULL, &e));
  assert_has (e->message, "no state/state.safetensors (it holds resolved.ini, metrics.jsonl)");
  assert_has (e->message, "--overwrite");
  g_clear_error (&e);
  put (dir, "state/state.safetensors", "x", -1);
  g_assert_true (stsim_run_dir_prepare (dir, STSIM_RUN_RESUME, NULL, &e));
  g_assert_no_error (e);
  g_assert_true (exists (dir, "metrics.jsonl"));  /* resume keeps everything */
  stsim_test_remove_tree (dir);
}

/* ---- leftovers of interrupted saves --------------------------------------------------------------- */

static void
test_remove_temps (void)
{
  g_autofree char *dir = make_tmp ();
  fill_run (dir);
  /* The exact names the savers use (mkstemp: six letters or digits). */
  put_size (dir, "state/state.safetensors.tmp-a1B2c3", 1000);
  put_size (dir, ".best.tmp-Zq09xY/model.safetensors", 100);
  put_size (dir, ".best.tmp-Zq09xY/config.json", 2);
  put_size (dir, ".best.old-AAAAAA/config.json", 2);
  put_size (dir, "metrics.jsonl.AMLUZ3", 3);
  put_size (dir, "resolved.ini.q1w2e3", 4);
  put_size (dir, "results.json.000000", 5);
  put_size (dir, "curves.svg.zzzzzz", 6);
  put_size (dir, ".stsim-lock.tmp-123abc", 1);
  put_size (dir, ".stsim-lock.stale-ABC123", 0);
  /* Look-alikes that are not ours: kept. */
  const char *keep[] = { "metrics.jsonl.bak", "metrics.jsonl.1234567", "metrics.jsonl.12345", "notes.txt.ABCDEF",
                         ".best.tmp-abc", ".other.tmp-ABCDEF", "state/state.safetensors.tmp-ab.cd",
                         "state/other.tmp-ABCDEF", "best/model.safetensors.tmp-abcdef", NULL };
  for (guint i = 0; keep[i]; i++)
    put (dir, keep[i], "k", 1);
  guint n = 0;
  guint64 bytes = 0;
  g_autoptr(GError) e = NULL;
  g_assert_true (stsim_run_dir_remove_temps (dir, &n, &bytes, &e));
  g_assert_no_error (e);
  g_assert_cmpuint (n, ==, 9);  /* .best.tmp-Zq09xY/ counts once */
  g_assert_cmpuint (bytes, ==, 1000 + 100 + 2 + 2 + 3 + 4 + 5 + 6 + 1 + 0);
  g_assert_false (exists (dir, "state/state.safetensors.tmp-a1B2c3"));
  g_assert_false (exists (dir, ".best.tmp-Zq09xY"));
  g_assert_false (exists (dir, ".best.old-AAAAAA"));
  g_assert_false (exists (dir, "curves.svg.zzzzzz"));
  for (guint i = 0; keep[i]; i++)
    g_assert_true (exists (dir, keep[i]));
  /* The run itself is untouched. */
  g_assert_true (exists (dir, "state/state.safetensors"));
  g_assert_true (exists (dir, "best/model.safetensors"));
  g_assert_true (exists (dir, "metrics.jsonl"));
  /* Nothing more the second time; a folder that is not there has no leftovers. */
  g_assert_true (stsim_run_dir_remove_temps (dir, &n, &bytes, &e));
  g_assert_cmpuint (n, ==, 0);
  g_assert_cmpuint (bytes, ==, 0);
  g_autofree char *missing = g_build_filename (dir, "nope", NULL);
  g_assert_true (stsim_run_dir_remove_temps (missing, &n, NULL, &e));
  g_assert_cmpuint (n, ==, 0);
  stsim_test_remove_tree (dir);
}

/* Leftovers made with the savers' own templates (g_mkstemp, as they call
 * it): g_file_set_contents' NAME.XXXXXX and the safetensors writer's
 * NAME.tmp-XXXXXX, as a kill between write and rename leaves them. */
static void
test_remove_temps_real_writer (void)
{
  g_autofree char *dir = make_tmp ();
  g_autofree char *state_dir = g_build_filename (dir, "state", NULL);
  g_assert_cmpint (g_mkdir_with_parents (state_dir, 0755), ==, 0);
  g_autofree char *target = g_build_filename (state_dir, "state.safetensors", NULL);
  /* g_file_set_contents' temporary name, as a kill between write and rename leaves it. */
  g_autofree char *resolved = g_build_filename (dir, "resolved.ini", NULL);
  g_autofree char *tmpl = g_strdup_printf ("%s.XXXXXX", resolved);
  int fd = g_mkstemp (tmpl);
  g_assert_cmpint (fd, >=, 0);
  close (fd);
  /* The safetensors writer's: "<path>.tmp-XXXXXX". */
  g_autofree char *tmpl2 = g_strdup_printf ("%s.tmp-XXXXXX", target);
  fd = g_mkstemp (tmpl2);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, "12345678", 8), ==, 8);
  close (fd);
  guint n = 0;
  guint64 bytes = 0;
  g_autoptr(GError) e = NULL;
  g_assert_true (stsim_run_dir_remove_temps (dir, &n, &bytes, &e));
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpuint (bytes, ==, 8);
  g_assert_false (g_file_test (tmpl, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (tmpl2, G_FILE_TEST_EXISTS));
  stsim_test_remove_tree (dir);
}

/* ---- the fingerprint --------------------------------------------------------------------------------- */

typedef struct {
  char *dir, *corpus, *model, *teacher;
} FpFixture;

/* Text in the shape of resolved.ini: %s = output, corpus, model, teacher model, lr, threads, log_every. */
static const char resolved_tmpl[] =
  "# Resolved recipe: every value explicit. Written by stsim 0.1.0.\n"
  "# plugin bert 0.1.0 (/build/plugins/bert.so)\n"
  "# plugin contrastive 0.2.0 (/build/plugins/contrastive.so)\n"
  "\n[run]\nname = demo\nseed = 42\nthreads = %s\noutput = %s\n"
  "\n[train]\ncorpus = %s\nsteps = 100\nlr = %s\nlog_every = %s\nbatch_size = 16\n"
  "\n[encoder]\nuse = bert\nenabled = true\nmodel = %s\nmax_len = 32\n"
  "\n[teacher]\nuse = encoder-teacher\nenabled = true\nmodel = %s\n"
  "\n[objective.contrastive]\nuse = contrastive\nenabled = true\nweight = 1\ntemperature = 0.05\n";

static char *
resolved_text (const FpFixture *f, const char *output, const char *lr, const char *threads, const char *log_every)
{
  return g_strdup_printf (resolved_tmpl, threads, output, f->corpus, lr, log_every, f->model, f->teacher);
}

static void
fp_fixture_init (FpFixture *f)
{
  f->dir = make_tmp ();
  f->corpus = g_build_filename (f->dir, "corpus.txt", NULL);
  f->model = g_build_filename (f->dir, "model", NULL);
  f->teacher = g_build_filename (f->dir, "teacher.safetensors", NULL);
  put (f->dir, "corpus.txt", "abc", 3);
  put (f->dir, "model/model.safetensors", "model weights v1", -1);
  put (f->dir, "model/config.json", "{}", -1);
  put (f->dir, "teacher.safetensors", "teacher weights", -1);
}

static void
fp_fixture_clear (FpFixture *f)
{
  stsim_test_remove_tree (f->dir);
  g_free (f->dir);
  g_free (f->corpus);
  g_free (f->model);
  g_free (f->teacher);
}

static StsimRunFingerprint *
fp_build (const FpFixture *f, const char *output, const char *lr, int ranks)
{
  g_autofree char *text = resolved_text (f, output, lr, "1", "10");
  const char *const files[] = { f->corpus, NULL };
  g_autoptr(GError) e = NULL;
  StsimRunFingerprint *fp = stsim_run_fingerprint_build (text, files, ranks, TRUE, &e);
  g_assert_no_error (e);
  return fp;
}

/* SHA-256 of "abc" (FIPS 180-2, appendix B.1). */
#define SHA_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void
test_fingerprint_contents (void)
{
  FpFixture f;
  fp_fixture_init (&f);
  g_autoptr(StsimRunFingerprint) fp = fp_build (&f, "runs/a", "3e-05", 1);
  g_autofree char *ck = g_compute_checksum_for_string (G_CHECKSUM_SHA256, "model weights v1", -1);
  g_autofree char *ck_t = g_compute_checksum_for_string (G_CHECKSUM_SHA256, "teacher weights", -1);
  g_autofree char *ck_model = g_strdup_printf ("sha256 %s", ck);
  g_autofree char *ck_teacher = g_strdup_printf ("sha256 %s", ck_t);
  g_autofree char *corpus_key = g_strdup_printf ("corpus:%s", f.corpus);
  g_assert_cmpstr (stsim_run_fingerprint_get (fp, "train.lr"), ==, "3e-05");
  g_assert_cmpstr (stsim_run_fingerprint_get (fp, "run.seed"), ==, "42");
  g_assert_cmpstr (stsim_run_fingerprint_get (fp, "objective.contrastive.temperature"), ==, "0.05");
  g_assert_cmpstr (stsim_run_fingerprint_get (fp, "encoder.model"), ==, f.model);
  g_assert_cmpstr (stsim_run_fingerprint_get (fp, corpus_key), ==, "3 bytes, sha256 " SHA_ABC);
  g_assert_cmpstr (stsim_run_fingerprint_get (fp, "checkpoint:encoder.model"), ==, ck_model);
  g_assert_cmpstr (stsim_run_fingerprint_get (fp, "checkpoint:teacher.model"), ==, ck_teacher);
  /* The model folder's config.json: SHA-256 of "{}". */
  g_assert_cmpstr (stsim_run_fingerprint_get (fp, "file:encoder.model/config.json"), ==,
                   "sha256 44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
  g_assert_null (stsim_run_fingerprint_get (fp, "file:encoder.model/vocab.txt"));  /* not there */
  g_assert_null (stsim_run_fingerprint_get (fp, "file:teacher.model"));
  g_assert_cmpstr (stsim_run_fingerprint_get (fp, "plugin:bert"), ==, "0.1.0");
  g_assert_cmpstr (stsim_run_fingerprint_get (fp, "plugin:contrastive"), ==, "0.2.0");
  g_assert_cmpstr (stsim_run_fingerprint_get (fp, "run:ranks"), ==, "1");
  g_assert_nonnull (stsim_run_fingerprint_get (fp, "stsim:version"));
  /* Keys that cannot change the trajectory are not there. */
  g_assert_null (stsim_run_fingerprint_get (fp, "run.output"));
  g_assert_null (stsim_run_fingerprint_get (fp, "run.name"));
  g_assert_null (stsim_run_fingerprint_get (fp, "run.threads"));
  g_assert_null (stsim_run_fingerprint_get (fp, "train.log_every"));
  g_assert_null (stsim_run_fingerprint_get (fp, "checkpoint:train.corpus"));

  /* JSON and back: the same map, sorted keys. */
  g_autofree char *json = stsim_run_fingerprint_to_json (fp);
  g_test_message ("%s", json);
  g_autoptr(GError) e = NULL;
  g_autoptr(StsimRunFingerprint) back = stsim_run_fingerprint_from_json (json, "state.safetensors", &e);
  g_assert_no_error (e);
  g_autofree char *json2 = stsim_run_fingerprint_to_json (back);
  g_assert_cmpstr (json, ==, json2);
  g_assert_true (stsim_run_fingerprint_compare (back, fp, NULL, "state.safetensors", NULL, &e));
  GPtrArray *keys = stsim_run_fingerprint_keys (fp);
  for (guint i = 1; i < keys->len; i++)
    g_assert_cmpint (strcmp (keys->pdata[i - 1], keys->pdata[i]), <, 0);
  fp_fixture_clear (&f);
}

static void
test_fingerprint_identical_and_ignored (void)
{
  FpFixture f;
  fp_fixture_init (&f);
  g_autoptr(StsimRunFingerprint) a = fp_build (&f, "runs/a", "3e-05", 1);
  g_autofree char *text = resolved_text (&f, "runs/elsewhere", "3e-05", "8", "50");
  const char *const files[] = { f.corpus, NULL };
  g_autoptr(GError) e = NULL;
  g_autoptr(StsimRunFingerprint) b = stsim_run_fingerprint_build (text, files, 1, TRUE, &e);
  g_assert_no_error (e);
  char **changed = NULL;
  g_assert_true (stsim_run_fingerprint_compare (a, b, NULL, "s", &changed, &e));
  g_assert_no_error (e);
  g_assert_null (changed);
  fp_fixture_clear (&f);
}

/* Flips one byte of @path in place (same size). */
static void
flip_byte (const char *path, gsize at)
{
  g_autofree char *data = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  g_assert_cmpuint (at, <, len);
  data[at] ^= 0x20;
  g_assert_true (g_file_set_contents (path, data, len, NULL));
}

static void
test_fingerprint_mismatch (void)
{
  FpFixture f;
  fp_fixture_init (&f);
  g_autoptr(StsimRunFingerprint) saved = fp_build (&f, "runs/a", "3e-05", 1);
  g_autoptr(GError) e = NULL;

  /* Each change alone is named by its key with both values. */
  g_autoptr(StsimRunFingerprint) lr = fp_build (&f, "runs/a", "1e-4", 1);
  g_assert_false (stsim_run_fingerprint_compare (saved, lr, NULL, "runs/a/state/state.safetensors", NULL, &e));
  g_assert_error (e, STSIM_ERROR, STSIM_ERROR_CHECKPOINT);
  g_test_message ("%s", e->message);
  assert_has (e->message, "runs/a/state/state.safetensors: --resume refused: this run differs from the saved one in 1 key:");
  assert_has (e->message, "\n  train.lr: saved 3e-05, now 1e-4\n");
  assert_has (e->message, "--resume --allow-changed KEY... (here --allow-changed train.lr)");
  g_clear_error (&e);

  g_autoptr(StsimRunFingerprint) ranks = fp_build (&f, "runs/a", "3e-05", 2);
  g_assert_false (stsim_run_fingerprint_compare (saved, ranks, NULL, "s", NULL, &e));
  assert_has (e->message, "run:ranks: saved 1, now 2");
  g_clear_error (&e);

  flip_byte (f.corpus, 1);  /* "aBc": same size */
  g_autoptr(StsimRunFingerprint) corpus = fp_build (&f, "runs/a", "3e-05", 1);
  g_assert_false (stsim_run_fingerprint_compare (saved, corpus, NULL, "s", NULL, &e));
  g_autofree char *aBc = g_compute_checksum_for_string (G_CHECKSUM_SHA256, "aBc", -1);
  g_autofree char *want = g_strdup_printf ("1 key:\n  corpus:%s: saved 3 bytes, sha256 " SHA_ABC ", now 3 bytes, sha256 %s",
                                           f.corpus, aBc);
  assert_has (e->message, want);
  g_clear_error (&e);

  g_autofree char *weights = g_build_filename (f.model, "model.safetensors", NULL);
  flip_byte (weights, 3);
  g_autoptr(StsimRunFingerprint) all = fp_build (&f, "runs/a", "1e-4", 1);
  g_assert_false (stsim_run_fingerprint_compare (saved, all, NULL, "s", NULL, &e));
  g_test_message ("%s", e->message);
  /* EVERY differing key, in order, and a hint naming them all. */
  assert_has (e->message, "differs from the saved one in 3 keys:\n  checkpoint:encoder.model: saved sha256 ");
  g_autofree char *corpus_line = g_strdup_printf ("\n  corpus:%s: saved", f.corpus);
  assert_has (e->message, corpus_line);
  assert_has (e->message, "\n  train.lr: saved 3e-05, now 1e-4\n");
  g_autofree char *hint = g_strdup_printf ("--allow-changed checkpoint:encoder.model corpus:%s train.lr)", f.corpus);
  assert_has (e->message, hint);
  g_clear_error (&e);

  /* Allowed: by exact key, by pattern; the accepted changes are returned. */
  const char *const allow[] = { "train.lr", "corpus:*", "checkpoint:encoder.model", NULL };
  g_auto(GStrv) changed = NULL;
  g_assert_true (stsim_run_fingerprint_compare (saved, all, allow, "s", &changed, &e));
  g_assert_no_error (e);
  g_assert_cmpuint (g_strv_length (changed), ==, 3);
  g_assert_cmpstr (changed[2], ==, "train.lr: 3e-05 -> 1e-4");
  /* Allowing some is not allowing all. */
  const char *const some[] = { "train.lr", NULL };
  g_assert_false (stsim_run_fingerprint_compare (saved, all, some, "s", NULL, &e));
  assert_has (e->message, "in 2 keys:");
  g_assert_null (strstr (e->message, "train.lr: saved"));
  g_clear_error (&e);
  /* A typo is an error, not a silent pass. */
  const char *const typo[] = { "train.lrr", NULL };
  g_assert_false (stsim_run_fingerprint_compare (saved, lr, typo, "s", NULL, &e));
  g_assert_error (e, STSIM_ERROR, STSIM_ERROR_INVALID);
  assert_has (e->message, "--allow-changed train.lrr: no such key in the run fingerprint");
  g_clear_error (&e);

  /* The model's config.json changed (the weights did not, since the last build). */
  g_autoptr(StsimRunFingerprint) before = fp_build (&f, "runs/a", "3e-05", 1);
  g_autofree char *config = g_build_filename (f.model, "config.json", NULL);
  flip_byte (config, 0);
  g_autoptr(StsimRunFingerprint) after = fp_build (&f, "runs/a", "3e-05", 1);
  g_assert_false (stsim_run_fingerprint_compare (before, after, NULL, "s", NULL, &e));
  assert_has (e->message, "in 1 key:\n  file:encoder.model/config.json: saved sha256 44136fa3");
  fp_fixture_clear (&f);
}

static void
test_fingerprint_bad_json (void)
{
  const char *bad[] = { "[1,2]", "{\"train.lr\": 3}", "not json", "{\"a\": {\"b\": \"c\"}}", "", "  \n", NULL };
  for (guint i = 0; bad[i]; i++) {
    g_autoptr(GError) e = NULL;
    g_assert_null (stsim_run_fingerprint_from_json (bad[i], "st.safetensors", &e));
    g_assert_error (e, STSIM_ERROR, STSIM_ERROR_CHECKPOINT);
    assert_has (e->message, "st.safetensors: the run fingerprint");
  }
  /* Deeply nested: the bounded reader refuses it, no stack overflow. */
  GString *deep = g_string_new (NULL);
  for (int i = 0; i < 100000; i++)
    g_string_append_c (deep, '[');
  g_autoptr(GError) e = NULL;
  g_assert_null (stsim_run_fingerprint_from_json (deep->str, "st.safetensors", &e));
  g_assert_error (e, STSIM_ERROR, STSIM_ERROR_CHECKPOINT);
  g_string_free (deep, TRUE);
  /* A corpus file that is not there. */
  g_autoptr(StsimRunFingerprint) fp = stsim_run_fingerprint_new ();
  const char *const files[] = { "/nonexistent/corpus.txt", NULL };
  g_clear_error (&e);
  g_assert_false (stsim_run_fingerprint_add_corpus (fp, files, TRUE, &e));
  g_assert_error (e, STSIM_ERROR, STSIM_ERROR_IO);
  assert_has (e->message, "/nonexistent/corpus.txt");
}

/* Big files are hashed with a progress line; the value is SHA-256 of 64 MiB
 * of zero bytes as coreutils' sha256sum gives it. */
static void
test_fingerprint_progress (void)
{
  if (g_test_subprocess ()) {
    g_autofree char *dir = make_tmp ();
    g_autofree char *big = g_build_filename (dir, "big.txt", NULL);
    FILE *f = g_fopen (big, "wb");
    g_assert_nonnull (f);
    g_assert_cmpint (ftruncate (fileno (f), 64 << 20), ==, 0);  /* sparse: quick to make */
    fclose (f);
    g_autoptr(StsimRunFingerprint) fp = stsim_run_fingerprint_new ();
    const char *const files[] = { big, big, NULL };  /* twice: hashed once */
    g_autoptr(GError) e = NULL;
    g_assert_true (stsim_run_fingerprint_add_corpus (fp, files, FALSE, &e));
    g_autofree char *key = g_strdup_printf ("corpus:%s", big);
    g_assert_cmpstr (stsim_run_fingerprint_get (fp, key), ==,
                     "67108864 bytes, sha256 3b6a07d0d404fab4e23b6d34bc6696a6a312dd92821332385e5af7c01c421351");
    stsim_test_remove_tree (dir);
    return;
  }
  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*hashing *big.txt (64 MiB) for the resume fingerprint*hashed *big.txt (64 MiB) in *");
  /* Once: one "hashed" line, not two. */
  g_test_trap_assert_stderr_unmatched ("*hashed*hashed*");
}

/* The fingerprint of a real recipe's resolved text (stsim_recipe_to_string). */
static void
test_fingerprint_real_recipe (void)
{
  g_autofree char *dir = make_tmp ();
  const char *src = g_getenv ("G_TEST_SRCDIR");
  g_autofree char *model = g_build_filename (src ? src : ".", "fixtures", "models", "bert-tiny", NULL);
  g_autofree char *corpus = g_build_filename (src ? src : ".", "train", "data", "small-corpus.txt", NULL);
  g_autofree char *text = g_strdup_printf ("[run]\noutput = %s/out\nthreads = 1\n[train]\ncorpus = %s\nsteps = 10\n"
                                           "lr = 1e-3\n[encoder]\nuse = bert\nmodel = %s\n"
                                           "[objective.contrastive]\nuse = contrastive\n[evaluator.sts]\nuse = sts\n",
                                           dir, corpus, model);
  g_autoptr(StsimRegistry) reg = stsim_registry_new ();
  stsim_registry_scan_default (reg);
  g_autoptr(GError) e = NULL;
  const char *const faster[] = { "train.lr=2e-3", "run.threads=2", NULL };
  StsimRecipe *r1 = stsim_recipe_load_data (reg, text, -1, "/r/a.ini", NULL, NULL, &e);
  g_assert_no_error (e);
  StsimRecipe *r2 = stsim_recipe_load_data (reg, text, -1, "/r/a.ini", faster, NULL, &e);
  g_assert_no_error (e);
  g_autofree char *t1 = stsim_recipe_to_string (r1);
  g_autofree char *t2 = stsim_recipe_to_string (r2);
  const char *const files[] = { corpus, NULL };
  g_autoptr(StsimRunFingerprint) a = stsim_run_fingerprint_build (t1, files, 1, TRUE, &e);
  g_assert_no_error (e);
  g_autoptr(StsimRunFingerprint) b = stsim_run_fingerprint_build (t2, files, 1, TRUE, &e);
  g_assert_no_error (e);
  g_autofree char *weights = g_build_filename (model, "model.safetensors", NULL);
  g_autofree char *sum = NULL;
  gsize len;
  g_autofree char *data = NULL;
  g_assert_true (g_file_get_contents (weights, &data, &len, NULL));
  sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) data, len);
  g_autofree char *want = g_strdup_printf ("sha256 %s", sum);
  g_assert_cmpstr (stsim_run_fingerprint_get (a, "checkpoint:encoder.model"), ==, want);
  g_assert_nonnull (stsim_run_fingerprint_get (a, "file:encoder.model/config.json"));
  g_assert_nonnull (stsim_run_fingerprint_get (a, "file:encoder.model/vocab.txt"));
  g_assert_cmpstr (stsim_run_fingerprint_get (a, "train.batch_size"), ==, "64");  /* defaults too */
  g_assert_nonnull (stsim_run_fingerprint_get (a, "plugin:bert"));
  g_assert_null (stsim_run_fingerprint_get (a, "run.output"));
  g_assert_false (stsim_run_fingerprint_compare (a, b, NULL, "s", NULL, &e));
  g_test_message ("%s", e->message);
  assert_has (e->message, "in 1 key:\n  train.lr: saved 0.001, now 0.002\n");
  stsim_recipe_free (r1);
  stsim_recipe_free (r2);
  stsim_test_remove_tree (dir);
}

/* ---- checks of a loaded state --------------------------------------------------------------------------- */

static StsimRunStatePosition
good_position (void)
{
  return (StsimRunStatePosition) { .step = 40, .total_steps = 100, .epoch = 2, .index = 16, .n_examples = 300,
                                   .batch_size = 16, .has_best = TRUE, .best = 0.71, .best_step = 30,
                                   .bad_total = 2, .bad_in_row = 1 };
}

static void
expect_position_error (StsimRunStatePosition p, const char *fragment)
{
  g_autoptr(GError) e = NULL;
  g_assert_false (stsim_run_state_check_position (&p, "runs/a/state/state.safetensors", &e));
  g_assert_error (e, STSIM_ERROR, STSIM_ERROR_CHECKPOINT);
  g_test_message ("%s", e->message);
  assert_has (e->message, "runs/a/state/state.safetensors: invalid resume state: ");
  assert_has (e->message, fragment);
}

static void
test_state_position (void)
{
  StsimRunStatePosition p = good_position ();
  g_autoptr(GError) e = NULL;
  g_assert_true (stsim_run_state_check_position (&p, "s", &e));
  g_assert_no_error (e);
  /* Bounds are inclusive where a real run reaches them. */
  p.step = p.total_steps;
  p.index = p.n_examples;
  p.epoch = 0;
  p.has_best = FALSE;
  p.best = NAN;
  g_assert_true (stsim_run_state_check_position (&p, "s", &e));

  p = good_position (); p.step = -7;
  expect_position_error (p, "step = -7 is outside [0, 100]");
  p = good_position (); p.step = 101;
  expect_position_error (p, "step = 101 is outside [0, 100]");
  p = good_position (); p.index = 1000000000000;
  expect_position_error (p, "index = 1000000000000 is outside [0, 300]");
  p = good_position (); p.index = -1;
  expect_position_error (p, "index = -1");
  p = good_position (); p.epoch = 41;
  expect_position_error (p, "epoch = 41 is outside [0, 40]");
  p = good_position (); p.best_step = 41;
  expect_position_error (p, "best_step = 41 is outside [0, 40]");
  p = good_position (); p.bad_in_row = 3;
  expect_position_error (p, "bad_in_row = 3 is outside [0, 2]");
  p = good_position (); p.batch_size = 0;
  expect_position_error (p, "batch_size = 0");
  p = good_position (); p.best = INFINITY;
  expect_position_error (p, "best = inf is not a finite score");
  g_assert_false (stsim_run_state_check_range (-3, 0, 40, "0.student.adam_t", "s", &e));
  assert_has (e->message, "0.student.adam_t = -3 is outside [0, 40]");
}

static void
test_state_finite (void)
{
  float v[1000];
  for (guint i = 0; i < G_N_ELEMENTS (v); i++)
    v[i] = (float) i * 1e-3f - 0.5f;
  g_autoptr(GError) e = NULL;
  g_assert_true (stsim_run_state_check_finite (v, G_N_ELEMENTS (v), "0.student.param", "s", &e));
  g_assert_true (stsim_run_state_check_finite (NULL, 0, "empty", "s", &e));
  v[612] = NAN;
  v[900] = -INFINITY;
  g_assert_false (stsim_run_state_check_finite (v, G_N_ELEMENTS (v), "0.student.param", "runs/a/state/state.safetensors",
                                                &e));
  g_assert_error (e, STSIM_ERROR, STSIM_ERROR_CHECKPOINT);
  g_test_message ("%s", e->message);
  assert_has (e->message, "runs/a/state/state.safetensors: invalid resume state: tensor '0.student.param' has 2 "
                          "non-finite value(s) (the first, element 612, is nan)");
  g_clear_error (&e);

  /* Second moments: non-negative too. */
  float m2[4] = { 0.0f, 1e-8f, 3.0f, 2.0f };
  g_assert_true (stsim_run_state_check_nonnegative (m2, 4, "0.student.adam_v", "s", &e));
  m2[3] = -1e-12f;
  g_assert_false (stsim_run_state_check_nonnegative (m2, 4, "0.student.adam_v", "s", &e));
  assert_has (e->message, "tensor '0.student.adam_v' holds -1e-12 at element 3");
  g_clear_error (&e);
  m2[3] = INFINITY;
  g_assert_false (stsim_run_state_check_nonnegative (m2, 4, "0.student.adam_v", "s", &e));
  assert_has (e->message, "non-finite");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/rundir/lock/concurrent", test_lock_concurrent);
  g_test_add_func ("/rundir/lock/same-process", test_lock_same_process);
  g_test_add_func ("/rundir/lock/stale-dead", test_lock_stale_dead);
  g_test_add_func ("/rundir/lock/race", test_lock_race);
  g_test_add_func ("/rundir/lock/pid-reused", test_lock_pid_reused);
  g_test_add_func ("/rundir/lock/other-host", test_lock_other_host);
  g_test_add_func ("/rundir/lock/corrupt-and-ranks", test_lock_corrupt_and_ranks);
  g_test_add_func ("/rundir/prepare/fresh", test_prepare_fresh);
  g_test_add_func ("/rundir/prepare/overwrite", test_prepare_overwrite);
  g_test_add_func ("/rundir/prepare/resume", test_prepare_resume);
  g_test_add_func ("/rundir/temps/patterns", test_remove_temps);
  g_test_add_func ("/rundir/temps/real-names", test_remove_temps_real_writer);
  g_test_add_func ("/rundir/fingerprint/contents", test_fingerprint_contents);
  g_test_add_func ("/rundir/fingerprint/identical-and-ignored", test_fingerprint_identical_and_ignored);
  g_test_add_func ("/rundir/fingerprint/mismatch", test_fingerprint_mismatch);
  g_test_add_func ("/rundir/fingerprint/bad-json", test_fingerprint_bad_json);
  g_test_add_func ("/rundir/fingerprint/progress", test_fingerprint_progress);
  g_test_add_func ("/rundir/fingerprint/real-recipe", test_fingerprint_real_recipe);
  g_test_add_func ("/rundir/state/position", test_state_position);
  g_test_add_func ("/rundir/state/finite", test_state_finite);
  return g_test_run ();
}
