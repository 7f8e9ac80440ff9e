/* stsim-data: fetches, verifies and lists the data and checkpoints stsim uses.
 *
 *   stsim-data fetch  [--dest DIR] [--mirror URL | --from DIR] [ITEM...]
 *   stsim-data verify [--dest DIR] [--strict] [ITEM...]
 *   stsim-data list
 *
 * What the items are, where they come from and how each file is checked is
 * the manifest compiled into the tool (stsim-data.manifest). Every file is
 * checked before it is used: pinned files against the manifest's SHA-256,
 * the others for their structure and, after the first fetch, against the
 * SHA-256 recorded in DEST/stsim-data.lock. Downloads (the system's curl) go
 * to DEST/.stsim-data-partial/ITEM/ and are moved into place only once the
 * whole item is verified; a failed transfer keeps its partial file, which the
 * next run continues. Exit status: 0 success, 1 a failure, 2 usage
 * (docs/data.md, docs/error-codes.md). */
#include <errno.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include "tool-common.h"
#include "stsim/stsim-bounded.h"

#define LOCK_NAME    "stsim-data.lock"
#define PARTIAL_NAME ".stsim-data-partial"

static char *opt_dest, *opt_mirror, *opt_from;
static gboolean opt_strict;

static const GOptionEntry entries[] = {
  { "dest", 'd', 0, G_OPTION_ARG_FILENAME, &opt_dest,
    "data folder (default: $STSIM_DATA, else $XDG_DATA_HOME/stsim; verify: the folder the tools read)", "DIR" },
  { "mirror", 0, 0, G_OPTION_ARG_STRING, &opt_mirror, "fetch the same file names from this base URL", "URL" },
  { "from", 0, 0, G_OPTION_ARG_FILENAME, &opt_from, "take the files from this folder (no network)", "DIR" },
  { "strict", 0, 0, G_OPTION_ARG_NONE, &opt_strict, "verify: fail on any item with unpinned files", NULL },
  { NULL }
};

/* ---- the manifest ---------------------------------------------------------- */

typedef struct {
  char    *path;    /* under the item's dest */
  char    *sha256;  /* pinned hash, or NULL */
  gint64   lines, gold;
  int      fields;
  gboolean json, safetensors, zip, optional;
} DataFile;

typedef struct {
  char      *name, *description, *size, *license, *source, *archive, *mirror, *dest;
  gboolean   is_default;
  GPtrArray *files;  /* DataFile */
} DataItem;

static void
data_file_free (DataFile *f)
{
  g_free (f->path);
  g_free (f->sha256);
  g_free (f);
}

static void
data_item_free (DataItem *it)
{
  g_free (it->name); g_free (it->description); g_free (it->size); g_free (it->license);
  g_free (it->source); g_free (it->archive); g_free (it->mirror); g_free (it->dest);
  g_ptr_array_unref (it->files);
  g_free (it);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DataItem, data_item_free)

/* One "PATH = checks" line of a [files ITEM] group. */
static DataFile *
data_file_parse (const char *item, const char *path, const char *spec, GError **error)
{
  DataFile *f = g_new0 (DataFile, 1);
  g_auto(GStrv) words = g_strsplit_set (spec, " \t", -1);

  f->path = g_strdup (path);
  for (guint i = 0; words[i]; i++) {
    const char *w = words[i];
    if (!*w) continue;
    if (g_str_has_prefix (w, "sha256=") && strlen (w) == 7 + 64) f->sha256 = g_ascii_strdown (w + 7, -1);
    else if (g_str_has_prefix (w, "lines=")) f->lines = g_ascii_strtoll (w + 6, NULL, 10);
    else if (g_str_has_prefix (w, "gold=")) f->gold = g_ascii_strtoll (w + 5, NULL, 10);
    else if (g_str_has_prefix (w, "fields=")) f->fields = (int) g_ascii_strtoll (w + 7, NULL, 10);
    else if (!strcmp (w, "json")) f->json = TRUE;
    else if (!strcmp (w, "safetensors")) f->safetensors = TRUE;
    else if (!strcmp (w, "zip")) f->zip = TRUE;
    else if (!strcmp (w, "optional")) f->optional = TRUE;
    else {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "data manifest: [files %s] %s: unknown check '%s'",
                   item, path, w);
      data_file_free (f);
      return NULL;
    }
  }
  return f;
}

static DataItem *
data_item_load (GKeyFile *kf, const char *name, GError **error)
{
  g_autoptr(DataItem) it = g_new0 (DataItem, 1);
  g_autofree char *files_group = g_strconcat ("files ", name, NULL);
  g_auto(GStrv) keys = g_key_file_get_keys (kf, files_group, NULL, NULL);

  it->name = g_strdup (name);
  it->files = g_ptr_array_new_with_free_func ((GDestroyNotify) data_file_free);
#define STR(field, key) it->field = g_key_file_get_string (kf, name, key, NULL)
  STR (description, "description"); STR (size, "size"); STR (license, "license"); STR (source, "source");
  STR (archive, "archive"); STR (mirror, "mirror"); STR (dest, "dest");
#undef STR
  it->is_default = g_key_file_get_boolean (kf, name, "default", NULL);
  if (!it->source || !it->dest || !keys || !keys[0]) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "data manifest: [%s] needs source, dest and [%s]",
                 name, files_group);
    return NULL;
  }
  if (!it->mirror)
    it->mirror = g_strdup ("");
  for (guint i = 0; keys[i]; i++) {
    g_autofree char *spec = g_key_file_get_string (kf, files_group, keys[i], NULL);
    DataFile *f = data_file_parse (name, keys[i], spec ? spec : "", error);
    if (!f)
      return NULL;
    g_ptr_array_add (it->files, f);
  }
  return g_steal_pointer (&it);
}

/* Every item of the manifest, in its order. */
static GPtrArray *
manifest_load (GError **error)
{
  g_autoptr(GKeyFile) kf = tool_data_manifest (error);
  if (!kf)
    return NULL;
  g_auto(GStrv) groups = g_key_file_get_groups (kf, NULL);
  g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func ((GDestroyNotify) data_item_free);
  for (guint i = 0; groups[i]; i++) {
    if (g_str_has_prefix (groups[i], "files "))
      continue;
    DataItem *it = data_item_load (kf, groups[i], error);
    if (!it)
      return NULL;
    g_ptr_array_add (items, it);
  }
  return g_steal_pointer (&items);
}

static guint
item_n_pinned (const DataItem *it)
{
  guint n = 0;
  for (guint i = 0; i < it->files->len; i++)
    n += ((DataFile *) g_ptr_array_index (it->files, i))->sha256 != NULL;
  return n;
}

/* ---- checking one file ----------------------------------------------------- */

typedef struct {
  gint64 lines, nonempty;
  int    min_fields;
  char  *sha256;
} FileStats;

/* One pass over @path: SHA-256, lines (a last line without '\n' counts),
 * non-empty lines ('\r' alone is empty), the fewest tab-separated fields. */
static gboolean
file_stats (const char *path, FileStats *st, GError **error)
{
  FILE *fp = fopen (path, "rb");
  if (!fp) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot read %s: %s", path, g_strerror (errno));
    return FALSE;
  }
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  static char buf[1 << 16];
  size_t got;
  gboolean in_line = FALSE, has_text = FALSE;
  int fields = 1;

  memset (st, 0, sizeof *st);
  st->min_fields = G_MAXINT;
  while ((got = fread (buf, 1, sizeof buf, fp)) > 0) {
    g_checksum_update (sum, (const guchar *) buf, got);
    for (size_t i = 0; i < got; i++) {
      char c = buf[i];
      if (c == '\n') {
        st->lines++; st->nonempty += has_text; st->min_fields = MIN (st->min_fields, fields);
        in_line = has_text = FALSE; fields = 1;
        continue;
      }
      in_line = TRUE;
      has_text |= c != '\r';
      fields += c == '\t';
    }
  }
  gboolean failed = ferror (fp);
  fclose (fp);
  if (failed) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot read %s", path);
    return FALSE;
  }
  if (in_line) {
    st->lines++; st->nonempty += has_text; st->min_fields = MIN (st->min_fields, fields);
  }
  st->sha256 = g_strdup (g_checksum_get_string (sum));
  return TRUE;
}

/* A complete safetensors file: an 8-byte header length, a JSON header, and
 * exactly as many data bytes as the header's largest end offset. */
static gboolean
check_safetensors (const char *path, const char *name, GError **error)
{
  g_autoptr(GMappedFile) map = g_mapped_file_new (path, FALSE, error);
  if (!map)
    return FALSE;
  gsize size = g_mapped_file_get_length (map);
  const guchar *p = (const guchar *) g_mapped_file_get_contents (map);
  guint64 n = 0, end = 0;
  for (int i = 7; size >= 8 && i >= 0; i--)
    n = (n << 8) | p[i];
  g_autoptr(JsonParser) parser = json_parser_new ();
  if (size < 8 || n > size - 8 || !stsim_json_load_data (parser, (const char *) p + 8, (gssize) n, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA, "%s: not a safetensors file (unreadable header)", name);
    return FALSE;
  }
  JsonObject *o = json_node_get_object (json_parser_get_root (parser));
  g_autoptr(GList) names = json_object_get_members (o);
  for (GList *l = names; l; l = l->next) {
    JsonNode *t = json_object_get_member (o, l->data);
    JsonArray *off = JSON_NODE_HOLDS_OBJECT (t) && json_object_has_member (json_node_get_object (t), "data_offsets")
                       ? json_object_get_array_member (json_node_get_object (t), "data_offsets") : NULL;
    if (off && json_array_get_length (off) == 2)
      end = MAX (end, (guint64) json_array_get_int_element (off, 1));
  }
  if (8 + n + end != size) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA, "%s: %" G_GSIZE_FORMAT " bytes, but its header describes %"
                 G_GUINT64_FORMAT " (an incomplete download?)", name, size, 8 + n + end);
    return FALSE;
  }
  return TRUE;
}

/* A complete zip archive (PyTorch's format): the end-of-central-directory
 * record sits within the last 64 KiB + 22 bytes. */
static gboolean
check_zip (const char *path, const char *name, GError **error)
{
  g_autoptr(GMappedFile) map = g_mapped_file_new (path, FALSE, error);
  if (!map)
    return FALSE;
  gsize size = g_mapped_file_get_length (map);
  const char *p = g_mapped_file_get_contents (map);
  gsize lo = size > 65557 ? size - 65557 : 0;
  for (gsize i = size >= 22 ? size - 22 + 1 : 0; i-- > lo;)
    if (memcmp (p + i, "PK\x05\x06", 4) == 0)
      return TRUE;
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA, "%s: not a complete zip archive (an incomplete download?)", name);
  return FALSE;
}

/* Checks @path against @f; errors call it @name. @locked: the SHA-256
 * recorded on first fetch (or NULL). On success *@sha256 is the file's SHA-256. */
static gboolean
check_file (const DataFile *f, const char *path, const char *name, const char *locked, char **sha256,
            GError **error)
{
  FileStats st;
  g_autoptr(GError) e = NULL;
  if (!file_stats (path, &st, error))
    return FALSE;
  g_autofree char *hash = st.sha256;
  if (f->sha256 && strcmp (f->sha256, hash))
    g_set_error (&e, STSIM_ERROR, STSIM_ERROR_DATA, "%s: SHA-256 mismatch: expected %s (pinned in the manifest), "
                 "got %s", name, f->sha256, hash);
  else if (!f->sha256 && locked && strcmp (locked, hash))
    g_set_error (&e, STSIM_ERROR, STSIM_ERROR_DATA, "%s: SHA-256 mismatch: expected %s (recorded in %s on first "
                 "fetch), got %s", name, locked, LOCK_NAME, hash);
  else if (f->lines && st.lines != f->lines)
    g_set_error (&e, STSIM_ERROR, STSIM_ERROR_DATA, "%s: %" G_GINT64_FORMAT " lines, expected %" G_GINT64_FORMAT,
                 name, st.lines, f->lines);
  else if (f->gold && st.nonempty != f->gold)
    g_set_error (&e, STSIM_ERROR, STSIM_ERROR_DATA, "%s: %" G_GINT64_FORMAT " gold scores, expected %"
                 G_GINT64_FORMAT, name, st.nonempty, f->gold);
  else if (f->fields && st.lines && st.min_fields < f->fields)
    g_set_error (&e, STSIM_ERROR, STSIM_ERROR_DATA, "%s: a line with %d tab-separated fields, expected at least %d",
                 name, st.min_fields, f->fields);
  if (!e && f->json) {
    g_autoptr(JsonParser) parser = json_parser_new_immutable ();
    if (!stsim_json_load_file (parser, path, STSIM_LIMIT_VOCAB, NULL))
      g_set_error (&e, STSIM_ERROR, STSIM_ERROR_DATA, "%s: not valid JSON", name);
  }
  if (e || (f->safetensors && !check_safetensors (path, name, &e)) || (f->zip && !check_zip (path, name, &e))) {
    g_propagate_error (error, g_steal_pointer (&e));
    return FALSE;
  }
  *sha256 = g_steal_pointer (&hash);
  return TRUE;
}

/* ---- folders ----------------------------------------------------------------- */

/* Removes @path and everything under it; symbolic links are removed, never followed. */
static void
remove_tree (const char *path)
{
  if (!g_file_test (path, G_FILE_TEST_IS_SYMLINK) && g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_autoptr(GDir) d = g_dir_open (path, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name (d))) {
      g_autofree char *child = g_build_filename (path, name, NULL);
      remove_tree (child);
    }
    g_rmdir (path);
  } else {
    g_unlink (path);
  }
}

static gboolean
make_parent (const char *path, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  if (g_mkdir_with_parents (dir, 0755) != 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot create %s: %s", dir, g_strerror (errno));
    return FALSE;
  }
  return TRUE;
}

static goffset
file_size (const char *path)
{
  GStatBuf st;
  return g_stat (path, &st) == 0 ? (goffset) st.st_size : -1;
}

/* ---- the run: destination, lock file ----------------------------------------- */

typedef struct {
  char     *dest;       /* the data folder */
  char     *lock_path;  /* DEST/stsim-data.lock */
  GKeyFile *lock;       /* SHA-256 of unpinned files, recorded on first fetch */
} Run;

static gboolean
run_init (Run *r, const char *dest, GError **error)
{
  r->dest = g_canonicalize_filename (dest, NULL);
  r->lock_path = g_build_filename (r->dest, LOCK_NAME, NULL);
  r->lock = g_key_file_new ();
  g_autoptr(GError) e = NULL;
  if (!g_key_file_load_from_file (r->lock, r->lock_path, G_KEY_FILE_KEEP_COMMENTS, &e) &&
      !g_error_matches (e, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA, "%s: %s (remove it to record the hashes afresh)",
                 r->lock_path, e->message);
    return FALSE;
  }
  return TRUE;
}

static void
run_clear (Run *r)
{
  g_free (r->dest);
  g_free (r->lock_path);
  g_key_file_free (r->lock);
}

/* Adds @observed (path -> SHA-256) of @it to the lock file and saves it. */
static gboolean
run_record (Run *r, const DataItem *it, GHashTable *observed, GError **error)
{
  if (g_hash_table_size (observed) == 0)
    return TRUE;
  gboolean fresh = !g_key_file_has_group (r->lock, it->name);
  for (guint i = 0; i < it->files->len; i++) {  /* in manifest order */
    const char *path = ((DataFile *) g_ptr_array_index (it->files, i))->path;
    const char *sha = g_hash_table_lookup (observed, path);
    if (sha)
      g_key_file_set_string (r->lock, it->name, path, sha);
  }
  if (fresh)
    g_key_file_set_comment (r->lock, it->name, NULL,
                            " SHA-256 of unpinned files, recorded by stsim-data fetch (docs/data.md)", NULL);
  g_autofree char *text = g_key_file_to_data (r->lock, NULL, NULL);
  if (!tool_write_text (r->lock_path, text, error))
    return FALSE;
  g_print ("%s: recorded the SHA-256 of %u unpinned file%s in %s (first fetch: later verifies compare against it)\n",
           it->name, g_hash_table_size (observed), g_hash_table_size (observed) == 1 ? "" : "s", r->lock_path);
  return TRUE;
}

/* Checks every file of @it under @root; errors name them "PATH in @within"
 * (an archive not yet in place) or by their full path (@within NULL).
 * Unpinned files without a lock entry go into @observed (if not NULL);
 * *@n_unpinned counts the unpinned files present. */
static gboolean
item_verify_at (Run *r, const DataItem *it, const char *root, const char *within, GHashTable *observed,
                guint *n_unpinned, GError **error)
{
  *n_unpinned = 0;
  for (guint i = 0; i < it->files->len; i++) {
    const DataFile *f = g_ptr_array_index (it->files, i);
    g_autofree char *full = g_build_filename (root, f->path, NULL);
    g_autofree char *locked = f->sha256 ? NULL : g_key_file_get_string (r->lock, it->name, f->path, NULL);
    g_autofree char *sha = NULL;
    g_autofree char *name = within ? g_strdup_printf ("%s in %s", f->path, within) : g_strdup (full);
    if (!g_file_test (full, G_FILE_TEST_IS_REGULAR)) {
      if (f->optional)
        continue;
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "%s is missing (item '%s')", name, it->name);
      return FALSE;
    }
    if (!check_file (f, full, name, locked, &sha, error))
      return FALSE;
    *n_unpinned += f->sha256 == NULL;
    if (!f->sha256 && !locked && observed)
      g_hash_table_insert (observed, g_strdup (f->path), g_steal_pointer (&sha));
  }
  return TRUE;
}

/* How many files of @it are under @root. */
static guint
item_n_present (const DataItem *it, const char *root)
{
  guint n = 0;
  for (guint i = 0; i < it->files->len; i++) {
    g_autofree char *full = g_build_filename (root, ((DataFile *) g_ptr_array_index (it->files, i))->path, NULL);
    n += g_file_test (full, G_FILE_TEST_IS_REGULAR);
  }
  return n;
}

static char *
item_root (Run *r, const DataItem *it)
{
  return g_build_filename (r->dest, it->dest, NULL);
}

/* Whether every required file of @it is in place. */
static gboolean
item_complete (Run *r, const DataItem *it)
{
  g_autofree char *root = item_root (r, it);
  for (guint i = 0; i < it->files->len; i++) {
    const DataFile *f = g_ptr_array_index (it->files, i);
    g_autofree char *full = g_build_filename (root, f->path, NULL);
    if (!f->optional && !g_file_test (full, G_FILE_TEST_EXISTS))
      return FALSE;
  }
  return TRUE;
}

/* Whether any part of @it is in place (an archive's folder, or a required file). */
static gboolean
item_present (Run *r, const DataItem *it)
{
  g_autofree char *root = item_root (r, it);
  if (it->archive)
    return g_file_test (root, G_FILE_TEST_IS_DIR);
  for (guint i = 0; i < it->files->len; i++) {
    const DataFile *f = g_ptr_array_index (it->files, i);
    g_autofree char *full = g_build_filename (root, f->path, NULL);
    if (!f->optional && g_file_test (full, G_FILE_TEST_EXISTS))
      return TRUE;
  }
  return FALSE;
}

/* ---- getting one file ---------------------------------------------------------- */

/* What curl's exit status @code means, for the error message. */
static const char *
curl_reason (int code)
{
  switch (code) {
  case 6:  return "could not resolve the host";
  case 7:  return "could not connect to the server";
  case 18: return "the server closed the connection before the end of the file";
  case 22: return "the server answered with an HTTP error";
  case 28: return "the transfer timed out";
  case 52: return "the server sent nothing";
  case 56: return "the connection broke while receiving";
  default: return "the transfer failed";
  }
}

/* Runs curl once: @url into @part, continuing @part when it holds bytes.
 * *@http is the last HTTP status, *@exit_code curl's exit status. */
static gboolean
curl_run (const char *url, const char *part, gboolean resume, int *http, int *exit_code, char **err_text,
          GError **error)
{
  gboolean tty = isatty (STDERR_FILENO);
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  g_strv_builder_addv (b, (const char *[]) { "curl", "--fail", "--location", "--connect-timeout", "30",
                                             "--speed-limit", "1024", "--speed-time", "120",
                                             "--write-out", "%{http_code}", "--output", part, NULL });
  /* A terminal gets curl's progress bar; logs get one line per file (fetch_file). */
  g_strv_builder_addv (b, tty ? (const char *[]) { "--progress-bar", NULL }
                              : (const char *[]) { "--silent", "--show-error", NULL });
  if (resume)
    g_strv_builder_addv (b, (const char *[]) { "--continue-at", "-", NULL });
  g_strv_builder_add (b, url);
  g_auto(GStrv) argv = g_strv_builder_end (b);
  g_autofree char *out = NULL;
  int status = 0;
  g_autoptr(GError) e = NULL;
  if (!g_spawn_sync (NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, tty ? NULL : err_text, &status, &e)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot run curl (%s): install curl, or fetch with --from DIR "
                 "from files downloaded elsewhere", e->message);
    return FALSE;
  }
  *http = out ? atoi (out) : 0;
  *exit_code = WIFEXITED (status) ? WEXITSTATUS (status) : 128;
  return TRUE;
}

/* Downloads @url into @part, continuing what an earlier run left there. An
 * optional file the server does not have (404) sets *@absent. */
static gboolean
download (const char *url, const char *part, gboolean optional, gboolean *absent, GError **error)
{
  for (int attempt = 0; attempt < 2; attempt++) {
    goffset have = file_size (part);
    gboolean resume = have > 0;
    int http = 0, code = 0;
    g_autofree char *err_text = NULL;
    if (!make_parent (part, error) || !curl_run (url, part, resume, &http, &code, &err_text, error))
      return FALSE;
    if (code == 0)
      return TRUE;
    if (resume && http == 416)
      return TRUE;  /* nothing left to fetch: the partial file is whole; verification decides */
    if (code == 33 || (resume && http == 200)) {
      g_print ("  the server cannot continue a partial download; starting %s over\n", url);
      g_unlink (part);
      continue;
    }
    if (file_size (part) == 0)
      g_unlink (part);
    if (optional && http == 404) {
      *absent = TRUE;
      return TRUE;
    }
    g_autofree char *detail = err_text ? g_strstrip (g_strdup (err_text)) : NULL;
    goffset kept = file_size (part);
    g_autofree char *kept_text = kept > 0 ? g_strdup_printf ("; the %" G_GOFFSET_FORMAT " bytes received are kept "
                                                             "in %s and the next run continues them", kept, part)
                                          : g_strdup ("");
    g_autofree char *http_text = http >= 400 ? g_strdup_printf (", HTTP %d", http) : g_strdup ("");
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "downloading %s failed: %s (curl exit status %d%s%s%s)%s", url,
                 curl_reason (code), code, http_text,
                 detail && *detail ? ": " : "", detail ? detail : "", kept_text);
    return FALSE;
  }
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "downloading %s failed twice", url);
  return FALSE;
}

/* Where --from holds @name (under the item's mirror prefix): DIR/PREFIX/NAME,
 * else DIR/NAME's last component (files saved by hand side by side). */
static char *
from_path (const DataItem *it, const char *name)
{
  g_autofree char *rel = g_strconcat (it->mirror, name, NULL);
  g_autofree char *base = g_path_get_basename (name);
  g_autofree char *a = g_build_filename (opt_from, rel, NULL);
  g_autofree char *b = g_build_filename (opt_from, base, NULL);
  if (g_file_test (a, G_FILE_TEST_IS_REGULAR))
    return g_steal_pointer (&a);
  return g_file_test (b, G_FILE_TEST_IS_REGULAR) ? g_steal_pointer (&b) : NULL;
}

static char *
file_url (const DataItem *it, const char *name)
{
  if (opt_mirror)
    return g_strconcat (opt_mirror, g_str_has_suffix (opt_mirror, "/") ? "" : "/", it->mirror, name, NULL);
  return g_strconcat (it->source, name, NULL);
}

/* Brings file @name of @it into @part: a copy from --from, or a download. */
static gboolean
obtain (const DataItem *it, const char *name, gboolean optional, const char *part, gboolean *absent, GError **error)
{
  *absent = FALSE;
  if (opt_from) {
    g_autofree char *src = from_path (it, name);
    if (!src) {
      *absent = optional;
      g_autofree char *base = g_path_get_basename (name);
      if (!optional && *it->mirror)
        g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "--from %s holds neither %s%s nor %s (item '%s')",
                     opt_from, it->mirror, name, base, it->name);
      else if (!optional)
        g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "--from %s holds no %s (item '%s')", opt_from, name,
                     it->name);
      return optional;
    }
    g_autoptr(GFile) from = g_file_new_for_path (src);
    g_autoptr(GFile) to = g_file_new_for_path (part);
    g_print ("%s: copying %s\n", it->name, src);
    return make_parent (part, error) && g_file_copy (from, to, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, error);
  }
  g_autofree char *url = file_url (it, name);
  gint64 t0 = g_get_monotonic_time ();
  goffset before = MAX (file_size (part), 0);
  g_print ("%s: downloading %s%s\n", it->name, url, before > 0 ? " (continuing a partial download)" : "");
  if (!download (url, part, optional, absent, error))
    return FALSE;
  if (!*absent)
    g_print ("%s: %s: %.1f MB in %.1f s\n", it->name, name, file_size (part) / 1e6,
             (g_get_monotonic_time () - t0) / 1e6);
  return TRUE;
}

/* ---- fetching items ------------------------------------------------------------ */

/* An item already in place: TRUE when it verifies (*@done set), an error
 * when it is there but does not verify (never overwritten: it may be the
 * user's own copy). */
static gboolean
check_in_place (Run *r, const DataItem *it, gboolean *done, GError **error)
{
  g_autofree char *root = item_root (r, it);
  g_autoptr(GHashTable) observed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  guint n_unpinned = 0;
  *done = FALSE;
  if (it->archive ? !item_present (r, it) : !item_complete (r, it))
    return TRUE;  /* a files item with some files missing: fetch_files keeps those that verify */
  if (!item_verify_at (r, it, root, NULL, observed, &n_unpinned, error)) {
    g_prefix_error (error, "%s is there but does not verify (remove it and fetch again): ", root);
    return FALSE;
  }
  *done = TRUE;
  g_print ("%s: already in %s and verified\n", it->name, root);
  return run_record (r, it, observed, error);
}

/* Moves the verified @from into place as @to. */
static gboolean
move_into_place (const char *from, const char *to, GError **error)
{
  if (!make_parent (to, error))
    return FALSE;
  if (g_rename (from, to) != 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot move %s to %s: %s", from, to, g_strerror (errno));
    return FALSE;
  }
  return TRUE;
}

static gboolean
finish_item (Run *r, const DataItem *it, const char *root, GHashTable *observed, guint n_unpinned)
{
  guint n = item_n_present (it, root);
  g_print ("%s: %u file%s verified (%u pinned, %u by structure) in %s\n", it->name, n, n == 1 ? "" : "s",
           n - n_unpinned, n_unpinned, root);
  g_autoptr(GError) e = NULL;
  if (!run_record (r, it, observed, &e)) {
    tool_print_error (e);
    return FALSE;
  }
  return TRUE;
}

/* Files fetched one by one into the staging folder; moved into place together. */
static gboolean
fetch_files (Run *r, const DataItem *it, const char *staging, GError **error)
{
  g_autofree char *root = item_root (r, it);
  g_autoptr(GHashTable) observed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(GPtrArray) staged = g_ptr_array_new ();  /* DataFile, borrowed */
  guint n_unpinned = 0;

  for (guint i = 0; i < it->files->len; i++) {
    const DataFile *f = g_ptr_array_index (it->files, i);
    g_autofree char *part = g_strconcat (staging, G_DIR_SEPARATOR_S, f->path, ".part", NULL);
    g_autofree char *locked = f->sha256 ? NULL : g_key_file_get_string (r->lock, it->name, f->path, NULL);
    g_autofree char *sha = NULL;
    g_autofree char *final = g_build_filename (root, f->path, NULL);
    gboolean absent = FALSE;
    if (g_file_test (final, G_FILE_TEST_EXISTS)) {  /* from an earlier fetch: kept when it verifies */
      if (!check_file (f, final, final, locked, &sha, error)) {
        g_prefix_error (error, "%s: a file already there does not verify (remove it and fetch again): ", it->name);
        return FALSE;
      }
      n_unpinned += f->sha256 == NULL;
      if (!f->sha256 && !locked)
        g_hash_table_insert (observed, g_strdup (f->path), g_steal_pointer (&sha));
      continue;
    }
    if (!obtain (it, f->path, f->optional, part, &absent, error))
      return FALSE;  /* the partial file stays for the next run */
    if (absent)
      continue;
    g_autofree char *src = opt_from ? from_path (it, f->path) : file_url (it, f->path);
    g_autofree char *name = g_strdup_printf ("%s from %s", f->path, src);
    if (!check_file (f, part, name, locked, &sha, error)) {
      remove_tree (staging);
      g_prefix_error (error, "%s: nothing of it was kept: ", it->name);
      return FALSE;
    }
    n_unpinned += f->sha256 == NULL;
    if (!f->sha256 && !locked)
      g_hash_table_insert (observed, g_strdup (f->path), g_steal_pointer (&sha));
    g_ptr_array_add (staged, (gpointer) f);
  }
  for (guint i = 0; i < staged->len; i++) {
    const DataFile *f = g_ptr_array_index (staged, i);
    g_autofree char *part = g_strconcat (staging, G_DIR_SEPARATOR_S, f->path, ".part", NULL);
    g_autofree char *final = g_build_filename (root, f->path, NULL);
    if (!move_into_place (part, final, error))
      return FALSE;
  }
  remove_tree (staging);
  return finish_item (r, it, root, observed, n_unpinned);
}

/* The folder of an unpacked archive that holds the task folders: downstream/,
 * senteval/downstream/, or the top level itself. */
static char *
find_task_root (const char *unpacked)
{
  const char *const candidates[] = { "downstream", "senteval/downstream", "." };
  for (gsize i = 0; i < G_N_ELEMENTS (candidates); i++) {
    g_autofree char *root = g_build_filename (unpacked, candidates[i], NULL);
    g_autofree char *sts = g_build_filename (root, "STS", NULL);
    g_autofree char *sick = g_build_filename (root, "SICK", NULL);
    if (g_file_test (sts, G_FILE_TEST_IS_DIR) || g_file_test (sick, G_FILE_TEST_IS_DIR))
      return g_canonicalize_filename (root, NULL);
  }
  return NULL;
}

/* Gives the owner write access under @path: an archive made from a
 * read-only copy would otherwise unpack into folders nobody can clean up. */
static void
make_writable (const char *path)
{
  GStatBuf st;
  if (g_lstat (path, &st) != 0 || S_ISLNK (st.st_mode))
    return;
  g_chmod (path, (st.st_mode & 07777) | (S_ISDIR (st.st_mode) ? 0700 : 0600));
  if (!S_ISDIR (st.st_mode))
    return;
  g_autoptr(GDir) d = g_dir_open (path, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d))) {
    g_autofree char *child = g_build_filename (path, name, NULL);
    make_writable (child);
  }
}

static gboolean
unpack_tar (const char *archive, const char *into, GError **error)
{
  const char *argv[] = { "tar", "-xf", archive, "-C", into, "--no-same-owner", NULL };
  g_autofree char *err = NULL;
  int status = 0;
  if (g_mkdir_with_parents (into, 0755) != 0 ||
      !g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                     &err, &status, error))
    return FALSE;
  if (!g_spawn_check_wait_status (status, NULL)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA, "%s is not a complete tar archive: %s", archive,
                 err ? g_strstrip (err) : "tar failed");
    return FALSE;
  }
  make_writable (into);
  return TRUE;
}

/* An archive: downloaded (or taken from --from), unpacked next to it, checked,
 * and its task folder moved into place in one rename. */
static gboolean
fetch_archive (Run *r, const DataItem *it, const char *staging, GError **error)
{
  g_autofree char *root = item_root (r, it);
  g_autofree char *part = g_strconcat (staging, G_DIR_SEPARATOR_S, it->archive, ".part", NULL);
  g_autofree char *unpacked = g_build_filename (staging, "unpacked", NULL);
  g_autofree char *archive = opt_from ? from_path (it, it->archive) : g_strdup (part);
  g_autoptr(GHashTable) observed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  gboolean absent = FALSE;
  guint n_unpinned = 0;

  if (!archive) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "--from %s holds no %s%s (item '%s')", opt_from,
                 it->mirror, it->archive, it->name);
    return FALSE;
  }
  if (!opt_from && !obtain (it, it->archive, FALSE, part, &absent, error))
    return FALSE;  /* the partial file stays for the next run */
  remove_tree (unpacked);
  g_print ("%s: unpacking %s\n", it->name, archive);
  g_autofree char *tasks = unpack_tar (archive, unpacked, error) ? find_task_root (unpacked) : NULL;
  if (!tasks && error && !*error)
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA, "%s holds neither downstream/ nor the task folders "
                 "(STS/, SICK/) at its top level", archive);
  g_autofree char *archive_name = g_path_get_basename (it->archive);
  if (!tasks || !item_verify_at (r, it, tasks, archive_name, observed, &n_unpinned, error)) {
    remove_tree (staging);
    g_prefix_error (error, "%s: nothing of it was kept: ", it->name);
    return FALSE;
  }
  if (!move_into_place (tasks, root, error))
    return FALSE;
  remove_tree (staging);
  return finish_item (r, it, root, observed, n_unpinned);
}

static gboolean
fetch_item (Run *r, const DataItem *it, GError **error)
{
  g_autofree char *staging = g_build_filename (r->dest, PARTIAL_NAME, it->name, NULL);
  gboolean done = FALSE;
  if (!check_in_place (r, it, &done, error))
    return FALSE;
  if (done)
    return TRUE;
  return it->archive ? fetch_archive (r, it, staging, error) : fetch_files (r, it, staging, error);
}

/* ---- the commands ---------------------------------------------------------------- */

static int
cmd_list (GPtrArray *items)
{
  for (guint i = 0; i < items->len; i++) {
    const DataItem *it = g_ptr_array_index (items, i);
    guint n = it->files->len, pinned = item_n_pinned (it);
    g_print ("%s%s\n  %s\n  size     %s\n  into     %s/\n  source   %s%s\n  license  %s\n  checks   %u file%s: "
             "%u pinned by SHA-256, %u by structure and the lock file\n",
             it->name, it->is_default ? "  (fetched by default)" : "", it->description ? it->description : "",
             it->size ? it->size : "?", it->dest, it->source, it->archive ? it->archive : "",
             it->license ? it->license : "?", n, n == 1 ? "" : "s", pinned, n - pinned);
  }
  return STSIM_EXIT_OK;
}

static int
cmd_fetch (Run *r, GPtrArray *chosen)
{
  int status = STSIM_EXIT_OK;
  for (guint i = 0; i < chosen->len; i++) {
    g_autoptr(GError) e = NULL;
    if (!fetch_item (r, g_ptr_array_index (chosen, i), &e)) {
      tool_print_error (e);
      status = STSIM_EXIT_INVALID;
    }
  }
  g_autofree char *used = stsim_data_dir_resolve (NULL);
  if (strcmp (used, r->dest) != 0)
    g_print ("note: without --data the tools read %s, not %s: run them with --data %s or STSIM_DATA=%s\n", used,
             r->dest, r->dest, r->dest);
  return status;
}

static gboolean
verify_item (Run *r, const DataItem *it, gboolean named, GError **error)
{
  g_autofree char *root = item_root (r, it);
  g_autoptr(GHashTable) observed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  guint n_unpinned = 0;
  if (!item_present (r, it)) {
    if (named)
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "%s: not in %s", it->name, root);
    else
      g_print ("%s: not fetched\n", it->name);
    return !named;
  }
  if (!item_verify_at (r, it, root, NULL, observed, &n_unpinned, error))
    return FALSE;
  if (opt_strict && n_unpinned) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA, "%s: %u file%s not pinned in the manifest (--strict); "
                 "docs/data.md says how a maintainer pins them", it->name, n_unpinned,
                 n_unpinned == 1 ? " is" : "s are");
    return FALSE;
  }
  guint unlocked = g_hash_table_size (observed);
  g_print ("%s: ok (%u pinned, %u against %s, %u by structure only%s)\n", it->name,
           item_n_present (it, root) - n_unpinned, n_unpinned - unlocked, LOCK_NAME, unlocked,
           unlocked ? ": not fetched by stsim-data, no recorded hash" : "");
  return TRUE;
}

static int
cmd_verify (Run *r, GPtrArray *chosen, gboolean named)
{
  int status = STSIM_EXIT_OK;
  g_print ("verifying %s\n", r->dest);
  for (guint i = 0; i < chosen->len; i++) {
    g_autoptr(GError) e = NULL;
    if (!verify_item (r, g_ptr_array_index (chosen, i), named, &e)) {
      tool_print_error (e);
      status = STSIM_EXIT_INVALID;
    }
  }
  return status;
}

/* The items named on the command line, or the default ones (fetch) / all (verify). */
static GPtrArray *
choose_items (GPtrArray *items, char **names, gboolean defaults_only)
{
  g_autoptr(GPtrArray) chosen = g_ptr_array_new ();
  for (guint i = 0; i < items->len; i++) {
    DataItem *it = g_ptr_array_index (items, i);
    if (!names[0] && (!defaults_only || it->is_default))
      g_ptr_array_add (chosen, it);
  }
  for (guint n = 0; names[n]; n++) {
    guint i = 0;
    while (i < items->len && strcmp (((DataItem *) g_ptr_array_index (items, i))->name, names[n]))
      i++;
    if (i == items->len) {
      tool_usage_error ("unknown item '%s' ('stsim-data list' shows them)", names[n]);
      return NULL;
    }
    g_ptr_array_add (chosen, g_ptr_array_index (items, i));
  }
  return g_steal_pointer (&chosen);
}

int
main (int argc, char **argv)
{
  g_autoptr(GOptionContext) ctx = g_option_context_new ("fetch|verify|list [ITEM...]");
  g_auto(GStrv) args = g_strdupv (argv);
  g_autoptr(GError) error = NULL;

  g_set_prgname ("stsim-data");
  setvbuf (stdout, NULL, _IOLBF, 0);  /* progress lines and errors stay in order in logs */
  g_option_context_set_summary (ctx, "Fetches, verifies and lists the data and checkpoints stsim uses "
                                     "(docs/data.md).\nItems: 'stsim-data list'. fetch without ITEM brings the "
                                     "items marked as fetched by default.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!tool_parse_options (ctx, &args))
    return STSIM_EXIT_USAGE;
  const char *cmd = args[1];
  if (!cmd)
    return tool_usage_error ("no command (one of fetch, verify, list)");
  if (strcmp (cmd, "fetch") && strcmp (cmd, "verify") && strcmp (cmd, "list"))
    return tool_usage_error ("unknown command '%s' (one of fetch, verify, list)", cmd);
  if (opt_mirror && opt_from)
    return tool_usage_error ("--mirror and --from exclude each other");
  if ((opt_mirror || opt_from) && strcmp (cmd, "fetch"))
    return tool_usage_error ("--mirror and --from apply to fetch only");
  if (opt_strict && strcmp (cmd, "verify"))
    return tool_usage_error ("--strict applies to verify only");

  g_autoptr(GPtrArray) items = manifest_load (&error);
  if (!items) {
    tool_print_error (error);
    return STSIM_EXIT_INVALID;
  }
  if (!strcmp (cmd, "list"))
    return cmd_list (items);
  g_autoptr(GPtrArray) chosen = choose_items (items, args + 2, !strcmp (cmd, "fetch"));
  if (!chosen)
    return STSIM_EXIT_USAGE;

  g_autofree char *dest = opt_dest ? g_strdup (opt_dest)
                          : !strcmp (cmd, "fetch") ? tool_data_fetch_dest () : stsim_data_dir_resolve (NULL);
  Run run = { 0 };
  int status;
  if (!run_init (&run, dest, &error)) {
    tool_print_error (error);
    status = STSIM_EXIT_INVALID;
  } else if (!strcmp (cmd, "fetch")) {
    status = g_mkdir_with_parents (run.dest, 0755) == 0 ? cmd_fetch (&run, chosen) : STSIM_EXIT_INVALID;
    if (status == STSIM_EXIT_INVALID && !g_file_test (run.dest, G_FILE_TEST_IS_DIR))
      g_printerr ("stsim-data: cannot create %s: %s\n", run.dest, g_strerror (errno));
  } else {
    status = cmd_verify (&run, chosen, args[2] != NULL);
  }
  run_clear (&run);
  return status;
}
