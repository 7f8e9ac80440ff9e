/* rundir-fingerprint.c: the resume fingerprint (rundir.h): what determines
 * a training run's trajectory, as a flat sorted KEY -> VALUE map that the
 * resume state stores and --resume compares. */
#include "io/rundir.h"
#include "io/bounded.h"
#include "stsim/stsim-error.h"
#include "stsim-config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

/* Files at least this big get a progress line while they are hashed. */
#define PROGRESS_BYTES (64 * STSIM_MIB)
#define HASH_CHUNK (1 * STSIM_MIB)

struct _StsimRunFingerprint {
  GTree      *map;      /* char* -> char*, sorted */
  GHashTable *hashed;   /* real path -> "BYTES\tHEX": each file is hashed once */
  GHashTable *file_of;  /* "file:" key -> real path, so that a corpus file is listed once */
  GPtrArray  *keys;     /* stsim_run_fingerprint_keys() */
};

/* Recipe keys that cannot change the trajectory: where the run goes, what
 * it is called, the thread count (results are thread-count independent,
 * docs/performance.md), how often it logs and saves, what is left at the end,
 * whether it tests, and the all-reduce bucket size (the sum over ranks has a
 * fixed order whatever the buckets, docs/distributed.md). Everything else is
 * compared. */
static const char *const ignored_keys[] = {
  "run.output", "run.name", "run.threads",
  "train.log_every", "train.save_every", "train.keep_state", "train.test", "train.allreduce_bucket_mb", NULL
};

static int
compare_keys (gconstpointer a, gconstpointer b, gpointer unused)
{
  return strcmp (a, b);
}

StsimRunFingerprint *
stsim_run_fingerprint_new (void)
{
  StsimRunFingerprint *fp = g_new0 (StsimRunFingerprint, 1);
  fp->map = g_tree_new_full (compare_keys, NULL, g_free, g_free);
  fp->hashed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  fp->file_of = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  fp->keys = g_ptr_array_new ();
  stsim_run_fingerprint_set (fp, "stsim:version", STSIM_VERSION);
  return fp;
}

void
stsim_run_fingerprint_free (StsimRunFingerprint *fp)
{
  if (!fp)
    return;
  g_tree_unref (fp->map);
  g_hash_table_unref (fp->hashed);
  g_hash_table_unref (fp->file_of);
  g_ptr_array_unref (fp->keys);
  g_free (fp);
}

void
stsim_run_fingerprint_set (StsimRunFingerprint *fp, const char *key, const char *value)
{
  g_return_if_fail (fp != NULL && key != NULL && value != NULL);
  g_tree_replace (fp->map, g_strdup (key), g_strdup (value));
}

const char *
stsim_run_fingerprint_get (const StsimRunFingerprint *fp, const char *key)
{
  g_return_val_if_fail (fp != NULL && key != NULL, NULL);
  return g_tree_lookup (fp->map, key);
}

static gboolean
collect_key (gpointer key, gpointer value, gpointer keys)
{
  g_ptr_array_add (keys, key);
  return FALSE;
}

GPtrArray *
stsim_run_fingerprint_keys (const StsimRunFingerprint *fp)
{
  g_return_val_if_fail (fp != NULL, NULL);
  g_ptr_array_set_size (fp->keys, 0);
  g_tree_foreach (fp->map, collect_key, fp->keys);
  return fp->keys;
}

void
stsim_run_fingerprint_set_ranks (StsimRunFingerprint *fp, int n_ranks)
{
  g_autofree char *v = g_strdup_printf ("%d", n_ranks);
  stsim_run_fingerprint_set (fp, "run:ranks", v);
}

/* ---- hashing ---------------------------------------------------------------------------- */

static void
progress (const char *path, guint64 done, guint64 size, gint64 t0, gboolean end)
{
  gboolean tty = isatty (2);
  if (end)
    g_printerr ("%shashed %s (%" G_GUINT64_FORMAT " MiB) in %.1f s\n", tty ? "\r\033[K" : "", path,
                size / STSIM_MIB, (g_get_monotonic_time () - t0) / 1e6);
  else if (tty)
    g_printerr ("\r\033[Khashing %s for the resume fingerprint: %3d%%", path, (int) (100.0 * done / size));
  else if (done == 0)
    g_printerr ("hashing %s (%" G_GUINT64_FORMAT " MiB) for the resume fingerprint\n", path, size / STSIM_MIB);
}

static char *
real_path (const char *path)
{
  char *real = realpath (path, NULL);
  char *r = g_strdup (real ? real : path);
  free (real);
  return r;
}

/* "BYTES\tHEX" of @path: its size and SHA-256, read once per fingerprint. */
static const char *
hash_file (StsimRunFingerprint *fp, const char *path, gboolean quiet, GError **error)
{
  g_autofree char *key = real_path (path);
  const char *known = g_hash_table_lookup (fp->hashed, key);
  if (known)
    return known;
  FILE *f = g_fopen (path, "rb");
  struct stat st;
  if (!f || fstat (fileno (f), &st) != 0 || !S_ISREG (st.st_mode)) {
    int e = errno;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "resume fingerprint: cannot read %s: %s", path,
                 f ? "not a regular file" : g_strerror (e));
    if (f)
      fclose (f);
    return NULL;
  }
  g_autoptr(GChecksum) ck = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree guchar *buf = g_malloc (HASH_CHUNK);
  guint64 done = 0, size = (guint64) st.st_size;
  gboolean show = !quiet && size >= PROGRESS_BYTES;
  gint64 t0 = g_get_monotonic_time (), shown = 0;
  gsize got;
  if (show)
    progress (path, 0, size, t0, FALSE);
  while ((got = fread (buf, 1, HASH_CHUNK, f)) > 0) {
    g_checksum_update (ck, buf, got);
    done += got;
    if (show && g_get_monotonic_time () - shown > G_USEC_PER_SEC / 2) {
      progress (path, MIN (done, size), size, t0, FALSE);
      shown = g_get_monotonic_time ();
    }
  }
  gboolean failed = ferror (f);
  fclose (f);
  if (failed) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "resume fingerprint: reading %s failed", path);
    return NULL;
  }
  if (show)
    progress (path, done, size, t0, TRUE);
  char *value = g_strdup_printf ("%" G_GUINT64_FORMAT "\t%s", done, g_checksum_get_string (ck));
  g_hash_table_insert (fp->hashed, g_steal_pointer (&key), value);
  return value;
}

gboolean
stsim_run_fingerprint_add_corpus (StsimRunFingerprint *fp, const char *const *files, gboolean quiet, GError **error)
{
  g_return_val_if_fail (fp != NULL, FALSE);
  for (guint i = 0; files && files[i]; i++) {
    /* A recipe value that names this file ([train] corpus = one file) gave
     * a "file:" key: the "corpus:" key replaces it. */
    g_autofree char *real = real_path (files[i]);
    GHashTableIter it;
    gpointer fkey, fpath;
    g_hash_table_iter_init (&it, fp->file_of);
    while (g_hash_table_iter_next (&it, &fkey, &fpath))
      if (strcmp (fpath, real) == 0) {
        g_tree_remove (fp->map, fkey);
        g_hash_table_iter_remove (&it);
      }
    const char *h = hash_file (fp, files[i], quiet, error);
    if (!h)
      return FALSE;
    const char *tab = strchr (h, '\t');
    g_autofree char *key = g_strdup_printf ("corpus:%s", files[i]);
    g_autofree char *value = g_strdup_printf ("%.*s bytes, sha256 %s", (int) (tab - h), h, tab + 1);
    stsim_run_fingerprint_set (fp, key, value);
  }
  return TRUE;
}

/* ---- the recipe --------------------------------------------------------------------------- */

/* Files of a model or tokenizer folder that shape the run besides the
 * weights (model.safetensors, which is the "checkpoint:" key). */
static const char *const model_files[] = {
  "config.json", "vocab.txt", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
  "special_tokens_map.json", "added_tokens.json", NULL
};

/* Sets @fkey to "sha256 HEX" of @path. */
static gboolean
add_hash (StsimRunFingerprint *fp, const char *fkey, const char *path, gboolean quiet, GError **error)
{
  const char *h = hash_file (fp, path, quiet, error);
  if (!h)
    return FALSE;
  g_autofree char *value = g_strdup_printf ("sha256 %s", strchr (h, '\t') + 1);
  stsim_run_fingerprint_set (fp, fkey, value);
  if (g_str_has_prefix (fkey, "file:"))
    g_hash_table_replace (fp->file_of, g_strdup (fkey), real_path (path));
  return TRUE;
}

/* What a recipe value names on disk, hashed: a .safetensors file or a
 * folder's model.safetensors as "checkpoint:KEY" (the model, a teacher's, a
 * generator's); the config and tokenizer files of such a folder (or of a
 * vocabulary folder) as "file:KEY/NAME"; any other regular file (a model
 * config.json) as "file:KEY". Values that name nothing add nothing. */
static gboolean
add_files (StsimRunFingerprint *fp, const char *key, const char *value, gboolean quiet, GError **error)
{
  if (!*value || strchr (value, '\n'))
    return TRUE;
  if (g_file_test (value, G_FILE_TEST_IS_REGULAR)) {
    g_autofree char *fkey = g_strdup_printf ("%s:%s", g_str_has_suffix (value, ".safetensors") ? "checkpoint" : "file",
                                             key);
    return add_hash (fp, fkey, value, quiet, error);
  }
  if (!g_file_test (value, G_FILE_TEST_IS_DIR))
    return TRUE;
  g_autofree char *weights = g_build_filename (value, "model.safetensors", NULL);
  g_autofree char *ck_key = g_strdup_printf ("checkpoint:%s", key);
  if (g_file_test (weights, G_FILE_TEST_IS_REGULAR) && !add_hash (fp, ck_key, weights, quiet, error))
    return FALSE;
  for (guint i = 0; model_files[i]; i++) {
    g_autofree char *p = g_build_filename (value, model_files[i], NULL);
    g_autofree char *fkey = g_strdup_printf ("file:%s/%s", key, model_files[i]);
    if (g_file_test (p, G_FILE_TEST_IS_REGULAR) && !add_hash (fp, fkey, p, quiet, error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
add_value (StsimRunFingerprint *fp, const char *key, const char *value, gboolean quiet, GError **error)
{
  if (g_strv_contains (ignored_keys, key))
    return TRUE;
  stsim_run_fingerprint_set (fp, key, value);
  return add_files (fp, key, value, quiet, error);
}

/* resolved.ini names each plugin in a comment: "# plugin NAME VERSION (FILE)". */
static void
add_plugins (StsimRunFingerprint *fp, const char *text)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    if (!g_str_has_prefix (lines[i], "# plugin "))
      continue;
    g_auto(GStrv) w = g_strsplit (lines[i] + strlen ("# plugin "), " ", 3);
    if (!w[0] || !w[1] || !*w[0])
      continue;
    g_autofree char *key = g_strdup_printf ("plugin:%s", w[0]);
    stsim_run_fingerprint_set (fp, key, w[1]);
  }
}

gboolean
stsim_run_fingerprint_add_recipe (StsimRunFingerprint *fp, const char *resolved_ini, const char *origin,
                                  gboolean quiet, GError **error)
{
  g_return_val_if_fail (fp != NULL && resolved_ini != NULL, FALSE);
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) local = NULL;
  if (!g_key_file_load_from_data (kf, resolved_ini, -1, G_KEY_FILE_NONE, &local)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "resume fingerprint: %s: %s", origin ? origin : "recipe",
                 local->message);
    return FALSE;
  }
  g_auto(GStrv) groups = g_key_file_get_groups (kf, NULL);
  for (guint g = 0; groups[g]; g++) {
    g_auto(GStrv) keys = g_key_file_get_keys (kf, groups[g], NULL, NULL);
    for (guint k = 0; keys && keys[k]; k++) {
      g_autofree char *v = g_key_file_get_string (kf, groups[g], keys[k], NULL);
      if (!v)
        v = g_key_file_get_value (kf, groups[g], keys[k], NULL);
      g_autofree char *key = g_strdup_printf ("%s.%s", groups[g], keys[k]);
      if (v && !add_value (fp, key, v, quiet, error))
        return FALSE;
    }
  }
  add_plugins (fp, resolved_ini);
  return TRUE;
}

StsimRunFingerprint *
stsim_run_fingerprint_build (const char *resolved_ini, const char *const *corpus_files, int n_ranks, gboolean quiet,
                             GError **error)
{
  g_autoptr(StsimRunFingerprint) fp = stsim_run_fingerprint_new ();
  if (!stsim_run_fingerprint_add_recipe (fp, resolved_ini, "resolved.ini", quiet, error) ||
      !stsim_run_fingerprint_add_corpus (fp, corpus_files, quiet, error))
    return NULL;
  stsim_run_fingerprint_set_ranks (fp, n_ranks);
  return g_steal_pointer (&fp);
}

/* ---- JSON ------------------------------------------------------------------------------------ */

static gboolean
build_member (gpointer key, gpointer value, gpointer builder)
{
  json_builder_set_member_name (builder, key);
  json_builder_add_string_value (builder, value);
  return FALSE;
}

char *
stsim_run_fingerprint_to_json (const StsimRunFingerprint *fp)
{
  g_return_val_if_fail (fp != NULL, NULL);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  g_tree_foreach (fp->map, build_member, b);
  json_builder_end_object (b);
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  return stsim_json_to_data (root, FALSE, NULL);
}

StsimRunFingerprint *
stsim_run_fingerprint_from_json (const char *json, const char *origin, GError **error)
{
  g_return_val_if_fail (json != NULL, NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local = NULL;
  /* An empty text parses, with no root at all. */
  JsonNode *root = stsim_json_load_data (parser, json, -1, &local) ? json_parser_get_root (parser) : NULL;
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT, "%s: the run fingerprint is not a JSON object%s%s",
                 origin, local ? ": " : "", local ? local->message : "");
    return NULL;
  }
  JsonObject *o = json_node_get_object (root);
  g_autoptr(StsimRunFingerprint) fp = stsim_run_fingerprint_new ();
  g_tree_remove (fp->map, "stsim:version");  /* the saved one, or none */
  g_autoptr(GList) members = json_object_get_members (o);
  for (GList *l = members; l; l = l->next) {
    JsonNode *n = json_object_get_member (o, l->data);
    if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT,
                   "%s: the run fingerprint is malformed: '%s' is not a string", origin, (char *) l->data);
      return NULL;
    }
    stsim_run_fingerprint_set (fp, l->data, json_node_get_string (n));
  }
  return g_steal_pointer (&fp);
}

/* ---- comparing ---------------------------------------------------------------------------------- */

static gboolean
matches_any (const char *const *patterns, const char *key)
{
  for (guint i = 0; patterns && patterns[i]; i++)
    if (g_pattern_match_simple (patterns[i], key))
      return TRUE;
  return FALSE;
}

/* An --allow-changed pattern that matches no key: most likely a typo. */
static gboolean
check_patterns (const StsimRunFingerprint *saved, const StsimRunFingerprint *now, const char *const *allowed,
                GError **error)
{
  for (guint i = 0; allowed && allowed[i]; i++) {
    const char *const one[] = { allowed[i], NULL };
    gboolean hit = FALSE;
    const StsimRunFingerprint *both[] = { saved, now };
    for (guint f = 0; f < 2 && !hit; f++) {
      GPtrArray *keys = stsim_run_fingerprint_keys (both[f]);
      for (guint k = 0; k < keys->len && !hit; k++)
        hit = matches_any (one, g_ptr_array_index (keys, k));
    }
    if (!hit) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                   "--allow-changed %s: no such key in the run fingerprint (keys are SECTION.KEY of the recipe, "
                   "such as train.steps, and corpus:PATH, checkpoint:SECTION.KEY, file:SECTION.KEY, plugin:NAME, run:ranks, "
                   "stsim:version; patterns such as 'corpus:*' work too)", allowed[i]);
      return FALSE;
    }
  }
  return TRUE;
}

/* Every key of @a and @b, sorted, once. */
static GPtrArray *
union_keys (const StsimRunFingerprint *a, const StsimRunFingerprint *b)
{
  g_autoptr(GTree) all = g_tree_new ((GCompareFunc) strcmp);
  const StsimRunFingerprint *both[] = { a, b };
  for (guint f = 0; f < 2; f++) {
    GPtrArray *keys = stsim_run_fingerprint_keys (both[f]);
    for (guint k = 0; k < keys->len; k++)
      g_tree_insert (all, g_ptr_array_index (keys, k), NULL);
  }
  GPtrArray *out = g_ptr_array_new ();
  g_tree_foreach (all, collect_key, out);
  return out;
}

gboolean
stsim_run_fingerprint_compare (const StsimRunFingerprint *saved, const StsimRunFingerprint *now,
                               const char *const *allowed, const char *origin, char ***changed, GError **error)
{
  g_return_val_if_fail (saved != NULL && now != NULL, FALSE);
  if (changed)
    *changed = NULL;
  if (!check_patterns (saved, now, allowed, error))
    return FALSE;
  g_autoptr(GPtrArray) keys = union_keys (saved, now);
  g_autoptr(GString) refused = g_string_new (NULL);
  g_autoptr(GString) names = g_string_new (NULL);
  g_autoptr(GPtrArray) ok_changes = g_ptr_array_new_with_free_func (g_free);
  guint n_refused = 0;
  for (guint i = 0; i < keys->len; i++) {
    const char *key = g_ptr_array_index (keys, i);
    const char *a = stsim_run_fingerprint_get (saved, key), *b = stsim_run_fingerprint_get (now, key);
    if (g_strcmp0 (a, b) == 0)
      continue;
    if (matches_any (allowed, key)) {
      g_ptr_array_add (ok_changes, g_strdup_printf ("%s: %s -> %s", key, a ? a : "(absent)", b ? b : "(absent)"));
      continue;
    }
    g_string_append_printf (refused, "\n  %s: saved %s, now %s", key, a ? a : "(absent)", b ? b : "(absent)");
    g_autofree char *quoted = strpbrk (key, " \t'\"\\$*?[") ? g_shell_quote (key) : g_strdup (key);
    g_string_append_printf (names, " %s", quoted);
    n_refused++;
  }
  if (n_refused) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT,
                 "%s: --resume refused: this run differs from the saved one in %u key%s:%s\nresume with the "
                 "recipe, data and checkpoints of the saved run; to continue with a deliberate change, name each "
                 "changed key: --resume --allow-changed KEY... (here --allow-changed%s); or start a new run "
                 "(--overwrite, or another [run] output)", origin, n_refused, n_refused == 1 ? "" : "s",
                 refused->str, names->str);
    return FALSE;
  }
  if (changed && ok_changes->len) {
    g_ptr_array_add (ok_changes, NULL);
    *changed = (char **) g_ptr_array_steal (ok_changes, NULL);
  }
  return TRUE;
}
