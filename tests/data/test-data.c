/* stsim-data against a loopback HTTP server started by this test (no
 * network): fetch through --mirror, verify, evaluate; a flipped byte in a
 * pinned file; a server that dies mid-file and a run that continues the
 * partial file; --from; verify --strict; both archive layouts; the
 * missing-data hint of the other tools.
 *
 * The server is a thread with a blocking GSocket that serves one folder
 * (GET, Range: bytes=N-, 404, 416) and can close a connection after a given
 * number of body bytes and stop, as a server that dies does. The archives are
 * built here from $STSIM_DATA/senteval/downstream. Tool paths come from
 * STSIM_DATA_TOOL, STSIM_EVAL and STSIM_RUN (set by meson). */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/wait.h>
#include "test-util.h"

#define GOLD_FILE   "STS/STS12-en-test/STS.gs.MSRpar.txt"
#define GOLD_SHA256 "5526be59228bc34ccb3cb6f1f56c0d7278d3419b8886713ae016fd92b151f19c"

/* ---- the loopback server --------------------------------------------------------- */

typedef struct {
  char         *root;       /* the folder served */
  GSocket      *listener;
  GCancellable *cancel;
  GThread      *thread;
  guint16       port;
  goffset       die_after;  /* > 0: send this many body bytes of the first file, then close and stop */
  GMutex        lock;
  GPtrArray    *requests;   /* "PATH RANGE-START" of every GET, for the assertions */
} Server;

static void
send_all (GSocket *s, const char *buf, gsize n)
{
  while (n > 0) {
    gssize w = g_socket_send (s, buf, n, NULL, NULL);
    if (w <= 0)
      return;
    buf += w;
    n -= (gsize) w;
  }
}

/* Reads the request head; returns the path and the Range start (-1: none). */
static char *
read_request (GSocket *s, goffset *range_start)
{
  g_autoptr(GString) head = g_string_new (NULL);
  char buf[4096];
  while (!strstr (head->str, "\r\n\r\n") && head->len < 65536) {
    gssize r = g_socket_receive (s, buf, sizeof buf, NULL, NULL);
    if (r <= 0)
      return NULL;
    g_string_append_len (head, buf, r);
  }
  char path[1024];
  if (sscanf (head->str, "GET %1023s HTTP/", path) != 1)
    return NULL;
  const char *range = strstr (head->str, "\r\nRange: bytes=");
  *range_start = range ? g_ascii_strtoll (range + strlen ("\r\nRange: bytes="), NULL, 10) : -1;
  return g_strdup (path);
}

static void
serve_file (Server *sv, GSocket *s, const char *file, goffset start, gboolean *died)
{
  g_autofree char *data = NULL;
  gsize size = 0;
  if (!g_file_get_contents (file, &data, &size, NULL)) {
    const char *nf = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    send_all (s, nf, strlen (nf));
    return;
  }
  if (start >= (goffset) size) {
    g_autofree char *h = g_strdup_printf ("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */%"
                                          G_GSIZE_FORMAT "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", size);
    send_all (s, h, strlen (h));
    return;
  }
  goffset from = MAX (start, 0);
  g_autofree char *h = start >= 0
    ? g_strdup_printf ("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %" G_GOFFSET_FORMAT "-%" G_GSIZE_FORMAT
                       "/%" G_GSIZE_FORMAT "\r\nContent-Length: %" G_GOFFSET_FORMAT "\r\nConnection: close\r\n\r\n",
                       from, size - 1, size, (goffset) size - from)
    : g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Length: %" G_GSIZE_FORMAT "\r\nConnection: close\r\n\r\n", size);
  send_all (s, h, strlen (h));
  gsize n = size - (gsize) from;
  if (sv->die_after > 0 && (goffset) n > sv->die_after) {
    n = (gsize) sv->die_after;  /* dies mid-file: the client was promised more */
    *died = TRUE;
  }
  send_all (s, data + from, n);
}

static gpointer
server_main (gpointer user_data)
{
  Server *sv = user_data;
  gboolean died = FALSE;
  while (!died) {
    g_autoptr(GSocket) s = g_socket_accept (sv->listener, sv->cancel, NULL);
    if (!s)
      break;  /* cancelled: the test stops the server */
    goffset start = -1;
    g_autofree char *path = read_request (s, &start);
    if (path) {
      g_mutex_lock (&sv->lock);
      g_ptr_array_add (sv->requests, g_strdup_printf ("%s %" G_GOFFSET_FORMAT, path, start));
      g_mutex_unlock (&sv->lock);
      g_autofree char *file = strstr (path, "..") ? NULL : g_build_filename (sv->root, path, NULL);
      serve_file (sv, s, file ? file : "/nonexistent", start, &died);
    }
    g_socket_shutdown (s, FALSE, TRUE, NULL);
    g_socket_close (s, NULL);
  }
  g_socket_close (sv->listener, NULL);
  return NULL;
}

static Server *
server_start (const char *root, goffset die_after)
{
  Server *sv = g_new0 (Server, 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);  /* port 0: a free one */

  sv->root = g_strdup (root);
  sv->die_after = die_after;
  sv->cancel = g_cancellable_new ();
  sv->requests = g_ptr_array_new_with_free_func (g_free);
  g_mutex_init (&sv->lock);
  sv->listener = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_bind (sv->listener, any, TRUE, &error));
  g_assert_true (g_socket_listen (sv->listener, &error));
  g_autoptr(GSocketAddress) bound = g_socket_get_local_address (sv->listener, &error);
  g_assert_no_error (error);
  sv->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  sv->thread = g_thread_new ("loopback-http", server_main, sv);
  return sv;
}

static char *
server_url (Server *sv)
{
  return g_strdup_printf ("http://127.0.0.1:%u", sv->port);
}

/* Always stops: cancels the accept, joins the thread, frees everything. */
static void
server_stop (Server *sv)
{
  g_cancellable_cancel (sv->cancel);
  g_thread_join (sv->thread);
  g_object_unref (sv->listener);
  g_object_unref (sv->cancel);
  g_ptr_array_unref (sv->requests);
  g_mutex_clear (&sv->lock);
  g_free (sv->root);
  g_free (sv);
}

/* ---- fixture: a mirror folder, a destination, the tools ------------------------- */

typedef struct {
  char *tmp, *mirror, *dest;
  char *out, *err;
} Fixture;

static int
run_argv (Fixture *f, const char *const *argv)
{
  g_autoptr(GError) error = NULL;
  int status = -1;
  g_clear_pointer (&f->out, g_free);
  g_clear_pointer (&f->err, g_free);
  g_assert_true (g_spawn_sync (f->tmp, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &f->out, &f->err,
                               &status, &error));
  g_assert_no_error (error);
  g_assert_true (WIFEXITED (status));  /* never a crash */
  g_autofree char *cmd = g_strjoinv (" ", (char **) argv);
  g_test_message ("%s -> %d\nstdout:\n%s\nstderr:\n%s", cmd, WEXITSTATUS (status), f->out, f->err);
  return WEXITSTATUS (status);
}

/* Runs stsim-data with NULL-terminated arguments. */
static int
data_tool (Fixture *f, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  const char *arg;
  va_list ap;
  g_ptr_array_add (argv, (gpointer) g_getenv ("STSIM_DATA_TOOL"));
  va_start (ap, f);
  while ((arg = va_arg (ap, const char *)))
    g_ptr_array_add (argv, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  return run_argv (f, (const char *const *) argv->pdata);
}

static void
spawn_ok (const char *const *argv)
{
  int status = -1;
  g_autoptr(GError) error = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status,
                               &error));
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
}

static void
tar_create (const char *archive, const char *dir, const char *member)
{
  spawn_ok ((const char *[]) { "tar", "-cf", archive, "-C", dir, member, NULL });
}

static void
copy_file (const char *from, const char *to)
{
  g_autofree char *dir = g_path_get_dirname (to);
  g_autoptr(GFile) a = g_file_new_for_path (from);
  g_autoptr(GFile) b = g_file_new_for_path (to);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_assert_true (g_file_copy (a, b, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, NULL));
}

/* The mirror: senteval.tar with downstream/ at its top level, the vocabularies. */
static void
fixture_setup (Fixture *f, gconstpointer data)
{
  const char *shared = g_getenv ("STSIM_DATA");
  g_autofree char *senteval = g_build_filename (shared, "senteval", NULL);
  g_assert_nonnull (shared);
  f->tmp = g_dir_make_tmp ("stsim-data-XXXXXX", NULL);
  f->mirror = g_build_filename (f->tmp, "mirror", NULL);
  f->dest = g_build_filename (f->tmp, "dest", NULL);
  g_assert_cmpint (g_mkdir_with_parents (f->mirror, 0755), ==, 0);
  g_autofree char *tar = g_build_filename (f->mirror, "senteval.tar", NULL);
  tar_create (tar, senteval, "downstream");
  const char *vocab[] = { "bert-base-uncased/vocab.txt", "roberta-base/vocab.json", "roberta-base/merges.txt" };
  for (gsize i = 0; i < G_N_ELEMENTS (vocab); i++) {
    g_autofree char *from = g_build_filename (shared, "vocab", vocab[i], NULL);
    g_autofree char *to = g_build_filename (f->mirror, vocab[i], NULL);
    copy_file (from, to);
  }
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  stsim_test_remove_tree (f->tmp);
  g_free (f->tmp); g_free (f->mirror); g_free (f->dest);
  g_free (f->out); g_free (f->err);
}

#define assert_contains(haystack, needle) \
  G_STMT_START { if (!strstr ((haystack), (needle))) \
    g_error ("expected '%s' in:\n%s", (needle), (haystack)); } G_STMT_END

static gboolean
exists_under (const char *dir, const char *rel)
{
  g_autofree char *p = g_build_filename (dir, rel, NULL);
  return g_file_test (p, G_FILE_TEST_EXISTS);
}

static char *
sha256_of_file (const char *path)
{
  g_autofree char *data = NULL;
  gsize n = 0;
  g_assert_true (g_file_get_contents (path, &data, &n, NULL));
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) data, n);
}

/* ---- the cases ------------------------------------------------------------------- */

/* fetch --mirror -> verify -> stsim-eval: the STS table of the tested copy. */
static void
test_mirror_verify_eval (Fixture *f, gconstpointer data)
{
  Server *sv = server_start (f->mirror, 0);
  g_autofree char *url = server_url (sv);
  int rc = data_tool (f, "fetch", "--dest", f->dest, "--mirror", url, "senteval", "vocab-bert-base-uncased",
                      "vocab-roberta-base", NULL);
  server_stop (sv);
  g_assert_cmpint (rc, ==, 0);
  assert_contains (f->out, "senteval: 80 files verified (53 pinned, 27 by structure)");
  assert_contains (f->out, "recorded the SHA-256 of 27 unpinned files");
  g_assert_true (exists_under (f->dest, "senteval/downstream/" GOLD_FILE));
  g_assert_true (exists_under (f->dest, "vocab/roberta-base/merges.txt"));
  g_assert_true (exists_under (f->dest, "stsim-data.lock"));
  g_assert_false (exists_under (f->dest, ".stsim-data-partial/senteval"));

  g_assert_cmpint (data_tool (f, "verify", "--dest", f->dest, NULL), ==, 0);
  assert_contains (f->out, "senteval: ok (53 pinned, 27 against stsim-data.lock, 0 by structure only)");
  assert_contains (f->out, "vocab-roberta-base: ok (2 pinned");
  assert_contains (f->out, "wiki1m: not fetched");

  /* A second fetch downloads nothing: the server is gone and it still succeeds. */
  g_assert_cmpint (data_tool (f, "fetch", "--dest", f->dest, "--mirror", url, "senteval", NULL), ==, 0);
  assert_contains (f->out, "senteval: already in");

  const char *eval[] = { g_getenv ("STSIM_EVAL"), "--encoder", "bow-idf", "--data", f->dest, NULL };
  g_assert_cmpint (run_argv (f, eval), ==, 0);
  assert_contains (f->out, "| 56.67 | 72.06 | 66.84 | 75.27 | 71.69 | 69.26 |  58.27 | 67.15 |");

  /* An unpinned file changed after the first fetch: the lock file catches it. */
  g_autofree char *input = g_build_filename (f->dest, "senteval/downstream/STS/STS12-en-test/STS.input.MSRpar.txt",
                                             NULL);
  g_autofree char *before = sha256_of_file (input);
  FILE *fp = fopen (input, "ab");
  fputs ("a\tb\n", fp);
  fclose (fp);
  g_autofree char *after = sha256_of_file (input);
  g_assert_cmpint (data_tool (f, "verify", "--dest", f->dest, "senteval", NULL), ==, 1);
  assert_contains (f->err, "STS.input.MSRpar.txt: SHA-256 mismatch");
  assert_contains (f->err, before);
  assert_contains (f->err, after);
}

/* One flipped byte in a pinned gold-score file: an error naming the file and
 * both hashes, and nothing of the item left behind. */
static void
test_flipped_byte (Fixture *f, gconstpointer data)
{
  g_autofree char *tree = g_build_filename (f->tmp, "tree", NULL);
  g_autofree char *shared_sts = g_build_filename (g_getenv ("STSIM_DATA"), "senteval", "downstream", NULL);
  /* A copy of the STS and SICK folders with one byte of the gold file changed. */
  const char *sub[] = { "STS", "SICK" };
  for (gsize i = 0; i < G_N_ELEMENTS (sub); i++) {
    g_autofree char *src = g_build_filename (shared_sts, sub[i], NULL);
    g_autofree char *dst = g_build_filename (tree, "downstream", NULL);
    g_assert_cmpint (g_mkdir_with_parents (dst, 0755), ==, 0);
    spawn_ok ((const char *[]) { "cp", "-R", src, dst, NULL });
  }
  spawn_ok ((const char *[]) { "chmod", "-R", "u+w", tree, NULL });  /* the shared copy may be read-only */
  g_autofree char *gold = g_build_filename (tree, "downstream", GOLD_FILE, NULL);
  g_autofree char *text = NULL;
  gsize n = 0;
  g_assert_true (g_file_get_contents (gold, &text, &n, NULL));
  text[0] = text[0] == '4' ? '3' : '4';
  g_assert_true (g_file_set_contents (gold, text, n, NULL));
  g_autofree char *flipped = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) text, n);
  g_autofree char *tar = g_build_filename (f->mirror, "senteval.tar", NULL);
  tar_create (tar, tree, "downstream");

  Server *sv = server_start (f->mirror, 0);
  g_autofree char *url = server_url (sv);
  int rc = data_tool (f, "fetch", "--dest", f->dest, "--mirror", url, "senteval", NULL);
  server_stop (sv);
  g_assert_cmpint (rc, ==, 1);
  assert_contains (f->err, GOLD_FILE " in senteval.tar: SHA-256 mismatch");
  assert_contains (f->err, GOLD_SHA256);
  assert_contains (f->err, flipped);
  assert_contains (f->err, "nothing of it was kept");
  g_assert_false (exists_under (f->dest, "senteval"));
  g_assert_false (exists_under (f->dest, ".stsim-data-partial/senteval"));
  g_assert_false (exists_under (f->dest, "stsim-data.lock"));
}

/* The server dies mid-file: a clear error, the partial file kept; the next
 * run asks for the rest only (Range) and completes. */
static void
test_server_dies (Fixture *f, gconstpointer data)
{
  const goffset cut = 3 * 1024 * 1024;
  Server *sv = server_start (f->mirror, cut);
  g_autofree char *url = server_url (sv);
  int rc = data_tool (f, "fetch", "--dest", f->dest, "--mirror", url, "senteval", NULL);
  server_stop (sv);
  g_assert_cmpint (rc, ==, 1);
  assert_contains (f->err, "the server closed the connection before the end of the file");
  assert_contains (f->err, "the next run continues them");
  g_autofree char *part = g_build_filename (f->dest, ".stsim-data-partial", "senteval", "senteval.tar.part", NULL);
  GStatBuf st;
  g_assert_cmpint (g_stat (part, &st), ==, 0);
  g_assert_cmpint (st.st_size, ==, cut);
  g_assert_false (exists_under (f->dest, "senteval"));

  sv = server_start (f->mirror, 0);
  g_free (url);
  url = server_url (sv);
  rc = data_tool (f, "fetch", "--dest", f->dest, "--mirror", url, "senteval", NULL);
  g_autofree char *expect = g_strdup_printf ("/senteval.tar %" G_GOFFSET_FORMAT, cut);
  g_assert_cmpuint (sv->requests->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (sv->requests, 0), ==, expect);
  server_stop (sv);
  g_assert_cmpint (rc, ==, 0);
  assert_contains (f->out, "continuing a partial download");
  assert_contains (f->out, "senteval: 80 files verified");
  g_assert_false (exists_under (f->dest, ".stsim-data-partial/senteval"));
  g_assert_cmpint (data_tool (f, "verify", "--dest", f->dest, "senteval", NULL), ==, 0);
}

/* --from a folder (no server), from a tar whose top level is the task folders;
 * verify --strict accepts fully pinned items and fails on senteval. */
static void
test_from_and_strict (Fixture *f, gconstpointer data)
{
  g_autofree char *downstream = g_build_filename (g_getenv ("STSIM_DATA"), "senteval", "downstream", NULL);
  g_autofree char *tar = g_build_filename (f->mirror, "senteval.tar", NULL);
  tar_create (tar, downstream, ".");
  g_assert_cmpint (data_tool (f, "fetch", "--dest", f->dest, "--from", f->mirror, "senteval",
                              "vocab-bert-base-uncased", NULL), ==, 0);
  assert_contains (f->out, "senteval: 80 files verified");
  g_assert_true (exists_under (f->dest, "senteval/downstream/SICK/SICK_test_annotated.txt"));
  g_assert_true (exists_under (f->dest, "vocab/bert-base-uncased/vocab.txt"));

  g_assert_cmpint (data_tool (f, "verify", "--strict", "--dest", f->dest, "vocab-bert-base-uncased", NULL), ==, 0);
  g_assert_cmpint (data_tool (f, "verify", "--strict", "--dest", f->dest, "senteval", NULL), ==, 1);
  assert_contains (f->err, "senteval: 27 files are not pinned in the manifest (--strict)");
  g_assert_cmpint (data_tool (f, "verify", "--dest", f->dest, "senteval", NULL), ==, 0);

  /* --from without the file: an error naming both places looked at. */
  g_assert_cmpint (data_tool (f, "fetch", "--dest", f->dest, "--from", f->mirror, "wiki1m", NULL), ==, 1);
  assert_contains (f->err, "holds no wiki1m_for_simcse.txt");
  g_assert_cmpint (data_tool (f, "fetch", "--mirror", "http://127.0.0.1:1", "--from", f->mirror, NULL), ==, 2);
  g_assert_cmpint (data_tool (f, "fetch", "no-such-item", NULL), ==, 2);
}

/* A checkpoint item (files one by one, into models/NAME): config.json and
 * model.safetensors by structure (a truncated safetensors is caught), the
 * vocabulary pinned, the optional tokenizer_config.json absent. */
static void
test_checkpoint (Fixture *f, gconstpointer data)
{
  g_autofree char *fixture = g_build_filename (g_getenv ("G_TEST_SRCDIR"), "fixtures", "models", "roberta-tiny",
                                               NULL);
  const char *names[] = { "config.json", "model.safetensors" };
  for (gsize i = 0; i < G_N_ELEMENTS (names); i++) {
    g_autofree char *from = g_build_filename (fixture, names[i], NULL);
    g_autofree char *to = g_build_filename (f->mirror, "roberta-base", names[i], NULL);
    copy_file (from, to);
  }
  /* Truncated weights first: the error says so and nothing is moved into place. */
  g_autofree char *weights = g_build_filename (f->mirror, "roberta-base", "model.safetensors", NULL);
  g_autofree char *full = NULL;
  gsize n = 0;
  g_assert_true (g_file_get_contents (weights, &full, &n, NULL));
  g_assert_true (g_file_set_contents (weights, full, (gssize) n - 100, NULL));
  Server *sv = server_start (f->mirror, 0);
  g_autofree char *url = server_url (sv);
  g_assert_cmpint (data_tool (f, "fetch", "--dest", f->dest, "--mirror", url, "roberta-base", NULL), ==, 1);
  assert_contains (f->err, "model.safetensors from ");
  assert_contains (f->err, "but its header describes");
  g_assert_false (exists_under (f->dest, "models/roberta-base"));

  g_assert_true (g_file_set_contents (weights, full, (gssize) n, NULL));
  int rc = data_tool (f, "fetch", "--dest", f->dest, "--mirror", url, "roberta-base", NULL);
  server_stop (sv);
  g_assert_cmpint (rc, ==, 0);
  assert_contains (f->out, "roberta-base: 4 files verified (2 pinned, 2 by structure)");
  g_assert_true (exists_under (f->dest, "models/roberta-base/model.safetensors"));
  g_assert_true (exists_under (f->dest, "models/roberta-base/merges.txt"));
  g_assert_cmpint (data_tool (f, "verify", "--dest", f->dest, "roberta-base", NULL), ==, 0);
  assert_contains (f->out, "roberta-base: ok (2 pinned, 2 against stsim-data.lock, 0 by structure only)");
}

/* A tool that misses data names the item and the exact fetch command. */
static void
test_missing_data_hint (Fixture *f, gconstpointer data)
{
  g_assert_cmpint (g_mkdir_with_parents (f->dest, 0755), ==, 0);
  const char *eval[] = { g_getenv ("STSIM_EVAL"), "--encoder", "bow-idf", "--data", f->dest, NULL };
  g_assert_cmpint (run_argv (f, eval), ==, 1);
  g_autofree char *quoted = g_shell_quote (f->dest);
  g_autofree char *hint = g_strdup_printf ("fetch it with: stsim-data fetch --dest %s senteval", quoted);
  assert_contains (f->err, hint);

  /* The quick start: first the vocabulary, then (with it fetched) the corpus. */
  g_autofree char *recipe = g_build_filename (g_getenv ("G_TEST_SRCDIR"), "..", "recipes", "quickstart.ini", NULL);
  const char *quick[] = { g_getenv ("STSIM_RUN"), recipe, "--data", f->dest, NULL };
  g_assert_cmpint (run_argv (f, quick), ==, 1);
  g_free (hint);
  hint = g_strdup_printf ("fetch it with: stsim-data fetch --dest %s vocab-bert-base-uncased", quoted);
  assert_contains (f->err, hint);
  g_assert_cmpint (data_tool (f, "fetch", "--dest", f->dest, "--from", f->mirror, "vocab-bert-base-uncased", NULL),
                   ==, 0);
  g_assert_cmpint (run_argv (f, quick), ==, 1);
  g_free (hint);
  hint = g_strdup_printf ("fetch it with: stsim-data fetch --dest %s wiki1m", quoted);
  assert_contains (f->err, hint);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(name, fn) g_test_add ("/data/" name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("mirror-verify-eval", test_mirror_verify_eval);
  ADD ("flipped-byte", test_flipped_byte);
  ADD ("server-dies", test_server_dies);
  ADD ("from-and-strict", test_from_and_strict);
  ADD ("checkpoint", test_checkpoint);
  ADD ("missing-data-hint", test_missing_data_hint);
  return g_test_run ();
}
