/* test-doc-refs: every document a tracked file cites exists, and every
 * numbered section it cites in such a document exists.
 *
 * Files: `git ls-files` of the source tree (argv[1]); without git, a walk
 * of the tree that skips hidden folders, build folders (those holding
 * meson-private/), runs/ and subprojects/. Binary files (a NUL byte in
 * their first 8 KiB) are skipped, and so is this file, whose examples name
 * missing documents on purpose.
 *
 * References: any `[dirs/]NAME.md` token that is not part of a longer
 * path, a URL or a word (so `https://…/README.md` and `foo.md.bak` are not
 * references). A reference is satisfied by a file in the repository:
 * relative to the repository root, to the citing file's folder, or, for a
 * bare name, in docs/. Documents of the data folder (STSIM_DATA, whose
 * layout docs/reproducing.md describes) satisfy references written
 * `../shared/data/X.md` or `data/X.md` (and, when the folder is there, a
 * data-relative path such as `vocab/README.md`); without the data folder
 * the two explicit forms are reported and taken on trust, so cite data
 * documents that way. Names the tools WRITE (`--markdown out.md`) are listed in
 * written_names below. Anything else, in particular a path that leaves the
 * repository (`../elsewhere/notes/design.md`) or a bare name of a document the
 * repository lacks (`design.md`), is a failure naming file:line.
 *
 * Sections: `§N[.M]` tokens (also `§3.2-3.5`, `§7-8`, `§4.2–§4.3`) and
 * `X.md section(s) N.M[, N.M]` / `X.md N.M` belong to the nearest reference
 * on their line (to the left, else to the right); lines of a document with
 * numbered headings (`## 3.`, `### 3.4`) that cite nothing refer to that
 * document itself. When the document has numbered headings, each number must
 * be one of them. */
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#define SELF "tests/tools/test-doc-refs.c"

static const char *const written_names[] = { "out.md", "OUT.md", "report.md", NULL };

static char *src_root;
static const char *data_dir;
static gboolean have_data;
static GHashTable *heading_cache;  /* repo-relative doc path -> GHashTable of numbers (or NULL) */
static GRegex *ref_re, *sect_re, *after_re;

/* ---- the file list ----------------------------------------------------------------- */

static void
walk (const char *rel, GPtrArray *out)
{
  g_autofree char *dir = g_build_filename (src_root, rel, NULL);
  g_autofree char *marker = g_build_filename (dir, "meson-private", NULL);
  if (g_file_test (marker, G_FILE_TEST_IS_DIR))
    return;
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d))) {
    if (name[0] == '.' || (!*rel && (!strcmp (name, "runs") || !strcmp (name, "subprojects"))))
      continue;
    char *child = *rel ? g_build_filename (rel, name, NULL) : g_strdup (name);
    g_autofree char *full = g_build_filename (src_root, child, NULL);
    if (g_file_test (full, G_FILE_TEST_IS_DIR) && !g_file_test (full, G_FILE_TEST_IS_SYMLINK)) {
      walk (child, out);
      g_free (child);
    } else
      g_ptr_array_add (out, child);
  }
}

static GPtrArray *
list_files (void)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  const char *argv[] = { "git", "-C", src_root, "ls-files", "-z", NULL };
  g_autofree char *listing = NULL;
  int status = -1;
  if (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                    &listing, NULL, &status, NULL)
      && g_spawn_check_wait_status (status, NULL) && listing && *listing) {
    /* NUL-separated names; GLib adds one more NUL at the end. */
    for (const char *p = listing; *p; p += strlen (p) + 1)
      g_ptr_array_add (out, g_strdup (p));
    return out;
  }
  g_test_message ("git ls-files is not available here: walking %s instead", src_root);
  walk ("", out);
  return out;
}

/* ---- resolving a reference ------------------------------------------------------------ */

/* @ref relative to the repository folder @dir ("" = root): the
 * repository-relative path of an existing file inside the repository, or NULL. */
static char *
in_repo (const char *dir, const char *ref)
{
  g_autofree char *base = g_build_filename (src_root, dir, NULL);
  g_autofree char *full = g_canonicalize_filename (ref, base);
  gsize n = strlen (src_root);
  if (strncmp (full, src_root, n) != 0 || full[n] != '/' || !g_file_test (full, G_FILE_TEST_IS_REGULAR))
    return NULL;
  return g_strdup (full + n + 1);
}

/* What @ref, cited in @file, names: a repository path, "" for a data-folder
 * document or a written file name (no sections to check), or NULL. */
static char *
resolve (const char *file, const char *ref, gboolean *unverified)
{
  g_autofree char *dir = g_path_get_dirname (file);
  const char *d = strcmp (dir, ".") == 0 ? "" : dir;
  char *r;
  gboolean bare = strchr (ref, '/') == NULL;

  if (!g_str_has_prefix (ref, "../shared/data/")) {
    if ((r = in_repo (d, ref)) || (r = in_repo ("", ref)) || (bare && (r = in_repo ("docs", ref))))
      return r;
  }
  if (bare) {
    for (guint i = 0; written_names[i]; i++)
      if (strcmp (ref, written_names[i]) == 0)
        return g_strdup ("");
    return NULL;
  }
  gboolean prefixed = g_str_has_prefix (ref, "../shared/data/") || g_str_has_prefix (ref, "data/");
  const char *in_data = g_str_has_prefix (ref, "../shared/data/") ? ref + strlen ("../shared/data/")
                      : g_str_has_prefix (ref, "data/") ? ref + strlen ("data/") : ref;
  if (!have_data) {
    /* Only the explicit data forms can be taken on trust. */
    *unverified = prefixed;
    return prefixed ? g_strdup ("") : NULL;
  }
  if (g_str_has_prefix (in_data, "../"))
    return NULL;
  g_autofree char *full = g_build_filename (data_dir, in_data, NULL);
  return g_file_test (full, G_FILE_TEST_IS_REGULAR) ? g_strdup ("") : NULL;
}

/* The numbers of the numbered headings of repository document @path
 * ("## 3. SimCSE", "### 3.4 Poolers"), or NULL when it has none. */
static GHashTable *
headings (const char *path)
{
  gpointer cached;
  if (g_hash_table_lookup_extended (heading_cache, path, NULL, &cached))
    return cached;
  g_autofree char *full = g_build_filename (src_root, path, NULL), *text = NULL;
  GHashTable *set = NULL;
  if (g_str_has_suffix (path, ".md") && g_file_get_contents (full, &text, NULL, NULL)) {
    g_autoptr(GRegex) re = g_regex_new ("^#{1,6}[ \\t]+([0-9]+(?:\\.[0-9]+)*)\\.?(?:[ \\t]|$)",
                                        G_REGEX_MULTILINE | G_REGEX_RAW, 0, NULL);
    g_autoptr(GMatchInfo) m = NULL;
    for (g_regex_match (re, text, 0, &m); g_match_info_matches (m); g_match_info_next (m, NULL)) {
      if (!set)
        set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_hash_table_add (set, g_match_info_fetch (m, 1));
    }
  }
  g_hash_table_insert (heading_cache, g_strdup (path), set);
  return set;
}

/* ---- one line ---------------------------------------------------------------------------- */

typedef struct {
  int   start, end;
  char *target;  /* repository path, "" (nothing to check), or NULL (missing) */
} Ref;

static void
check_numbers (const char *file, int lineno, const char *target, const char *numbers, GString *errors)
{
  GHashTable *set = target && *target ? headings (target) : NULL;
  if (!set)
    return;
  g_autoptr(GRegex) num = g_regex_new ("[0-9]+(?:\\.[0-9]+)*", G_REGEX_RAW, 0, NULL);
  g_autoptr(GMatchInfo) m = NULL;
  for (g_regex_match (num, numbers, 0, &m); g_match_info_matches (m); g_match_info_next (m, NULL)) {
    g_autofree char *n = g_match_info_fetch (m, 0);
    if (!g_hash_table_contains (set, n))
      g_string_append_printf (errors, "%s:%d: cites section %s of %s, which has no such section\n", file, lineno, n,
                              target);
  }
}

/* Appends one message per problem of @line (1-based @lineno of @file). */
static void
check_line (const char *file, int lineno, const char *line, GString *errors)
{
  g_autoptr(GArray) refs = g_array_new (FALSE, FALSE, sizeof (Ref));
  g_autoptr(GMatchInfo) m = NULL;
  for (g_regex_match (ref_re, line, 0, &m); g_match_info_matches (m); g_match_info_next (m, NULL)) {
    Ref r;
    gboolean unverified = FALSE;
    g_match_info_fetch_pos (m, 0, &r.start, &r.end);
    g_autofree char *text = g_match_info_fetch (m, 0);
    r.target = resolve (file, text, &unverified);
    if (!r.target)
      g_string_append_printf (errors, "%s:%d: cites %s, which is not a file of the repository%s\n", file, lineno,
                              text, have_data ? " or of the data folder" : "");
    else if (unverified)
      g_test_message ("%s:%d: %s not checked (no data folder)", file, lineno, text);
    g_array_append_val (refs, r);
  }
  /* "X.md section 3.5", "X.md 4.2-4.3" right after a reference. */
  for (guint i = 0; i < refs->len; i++) {
    Ref *r = &g_array_index (refs, Ref, i);
    g_autoptr(GMatchInfo) a = NULL;
    if (g_regex_match_full (after_re, line, -1, r->end, G_REGEX_MATCH_ANCHORED, &a, NULL)) {
      g_autofree char *word = g_match_info_fetch (a, 1), *nums = g_match_info_fetch (a, 2);
      if (*word || strchr (nums, '.'))
        check_numbers (file, lineno, r->target, nums, errors);
    }
  }
  /* § tokens: the nearest reference to the left, else to the right, else
   * the citing document itself. */
  g_autoptr(GMatchInfo) s = NULL;
  for (g_regex_match (sect_re, line, 0, &s); g_match_info_matches (s); g_match_info_next (s, NULL)) {
    int start, end;
    g_match_info_fetch_pos (s, 0, &start, &end);
    const char *target = NULL;
    for (guint i = 0; i < refs->len; i++) {
      Ref *r = &g_array_index (refs, Ref, i);
      if (r->end <= start || !target)
        target = r->target ? r->target : "";
      if (r->end > start)
        break;
    }
    if (!target && refs->len == 0)
      target = file;
    g_autofree char *nums = g_match_info_fetch (s, 0);
    check_numbers (file, lineno, target, nums, errors);
  }
  for (guint i = 0; i < refs->len; i++)
    g_free (g_array_index (refs, Ref, i).target);
}

static void
check_file (const char *file, GString *errors)
{
  g_autofree char *full = g_build_filename (src_root, file, NULL), *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents (full, &text, &len, NULL) || memchr (text, '\0', MIN (len, 8192)))
    return;
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  for (int i = 0; lines[i]; i++)
    check_line (file, i + 1, lines[i], errors);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void
test_repository (void)
{
  g_autoptr(GPtrArray) files = list_files ();
  g_autoptr(GString) errors = g_string_new (NULL);
  g_assert_cmpuint (files->len, >, 50);
  for (guint i = 0; i < files->len; i++)
    if (strcmp (g_ptr_array_index (files, i), SELF) != 0)
      check_file (g_ptr_array_index (files, i), errors);
  if (errors->len)
    g_test_message ("%s", errors->str);
  g_assert_cmpstr (errors->str, ==, "");
}

/* The checker itself: what it must reject and what it must let pass. */
static void
test_checker (void)
{
  const struct { const char *line; gboolean ok; } cases[] = {
    { "the design (../elsewhere/notes/design.md) says", FALSE },
    { "see design.md §8", FALSE },
    { "as in style-anchors.md", FALSE },
    { "see docs/nowhere.md", FALSE },
    { "(method.md §3.3, §3.8)", TRUE },
    { "method.md §42 says", FALSE },
    { "§1.2 of `docs/method.md`", TRUE },
    { "docs/method.md sections 3.3, 3.8, 4.2-4.3 and 5.4-5.6", TRUE },
    { "docs/method.md section 3.75", FALSE },
    { "(method.md §3.2-§3.9; §7-8)", TRUE },
    { "(method.md §3.2-§3.19)", FALSE },
    { "https://github.com/someone/elsewhere/README.md", TRUE },
    { "stsim-report --markdown out.md", TRUE },
    { "docs/plugin-guide.md and README.md", TRUE },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr(GString) errors = g_string_new (NULL);
    check_line ("docs/example.md", 1, cases[i].line, errors);
    g_test_message ("%s -> %s", cases[i].line, errors->len ? errors->str : "ok");
    g_assert_cmpint (errors->len == 0, ==, cases[i].ok);
  }
}

/* Cache values may be NULL (a document without numbered headings). */
static void
unref_set (gpointer set)
{
  if (set)
    g_hash_table_unref (set);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc < 2) {
    g_printerr ("usage: test-doc-refs SOURCE_ROOT\n");
    return 2;
  }
  src_root = g_canonicalize_filename (argv[1], NULL);
  data_dir = g_getenv ("STSIM_DATA");
  have_data = data_dir && g_file_test (data_dir, G_FILE_TEST_IS_DIR);
  heading_cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, unref_set);
  ref_re = g_regex_new ("(?<![A-Za-z0-9_./-])(?:\\.\\.?/)*(?:[A-Za-z0-9_.-]+/)*[A-Za-z0-9_-]+\\.md(?![A-Za-z0-9_])",
                        G_REGEX_RAW, 0, NULL);
  /* §N, §N-M, §N–§M, §N, §M ... (a comma continues only with another §). */
  sect_re = g_regex_new ("§ ?[0-9]+(?:\\.[0-9]+)*(?:(?: ?(?:-|–|—) ?(?:§ ?)?|, ?§ ?)[0-9]+(?:\\.[0-9]+)*)*",
                         G_REGEX_RAW, 0, NULL);
  after_re = g_regex_new ("[`*)]*[ \\t]+(sections? |)([0-9]+(?:\\.[0-9]+)*(?: ?(?:-|–|,|and) ?[0-9]+(?:\\.[0-9]+)*)*)",
                          G_REGEX_RAW, 0, NULL);
  g_assert_nonnull (ref_re);
  g_assert_nonnull (sect_re);
  g_assert_nonnull (after_re);
  g_test_add_func ("/doc-refs/checker", test_checker);
  g_test_add_func ("/doc-refs/repository", test_repository);
  int rc = g_test_run ();
  g_hash_table_unref (heading_cache);
  g_regex_unref (ref_re);
  g_regex_unref (sect_re);
  g_regex_unref (after_re);
  g_free (src_root);
  return rc;
}
