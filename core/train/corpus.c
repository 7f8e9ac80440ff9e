/* corpus.c: training sentences, one per line or CSV rows (stsim-train.h).
 *
 * The whole corpus is validated when it is loaded, so that a bad byte is
 * reported once with its file and line before any step runs, never half way
 * through an epoch. */
#include "stsim/stsim-train.h"

#include <csv.h>
#include <stdlib.h>
#include <string.h>
#include "io/bounded.h"

typedef struct {
  char  *text;   /* V texts joined by NULs: text, text + off[1], ... */
  guint  file;   /* index into files */
  guint  line;
} Example;

struct _StsimCorpus {
  GPtrArray *files;    /* char* */
  GArray    *ex;       /* Example */
  GPtrArray *chunks;   /* char*: file contents / joined text owned here */
  guint      n_views;
};

static StsimCorpus *
corpus_new (guint n_views)
{
  StsimCorpus *c = g_new0 (StsimCorpus, 1);
  c->files = g_ptr_array_new_with_free_func (g_free);
  c->ex = g_array_new (FALSE, FALSE, sizeof (Example));
  c->chunks = g_ptr_array_new_with_free_func (g_free);
  c->n_views = n_views;
  return c;
}

void
stsim_corpus_free (StsimCorpus *corpus)
{
  if (!corpus)
    return;
  g_ptr_array_unref (corpus->files);
  g_array_unref (corpus->ex);
  g_ptr_array_unref (corpus->chunks);
  g_free (corpus);
}

gsize
stsim_corpus_get_n (const StsimCorpus *corpus)
{
  g_return_val_if_fail (corpus != NULL, 0);
  return corpus->ex->len;
}

guint
stsim_corpus_get_n_views (const StsimCorpus *corpus)
{
  g_return_val_if_fail (corpus != NULL, 0);
  return corpus->n_views;
}

const char *
stsim_corpus_get_text (const StsimCorpus *corpus, gsize i, guint view)
{
  g_return_val_if_fail (corpus != NULL && i < corpus->ex->len && view < corpus->n_views, NULL);
  const char *t = g_array_index (corpus->ex, Example, i).text;
  for (guint v = 0; v < view; v++)
    t += strlen (t) + 1;
  return t;
}

const char *
stsim_corpus_get_location (const StsimCorpus *corpus, gsize i, guint *line)
{
  g_return_val_if_fail (corpus != NULL && i < corpus->ex->len, NULL);
  const Example *e = &g_array_index (corpus->ex, Example, i);
  if (line)
    *line = e->line;
  return g_ptr_array_index (corpus->files, e->file);
}

/* ---- line files ------------------------------------------------------------ */

static gboolean
is_blank (const char *s, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isspace (s[i]))
      return FALSE;
  return TRUE;
}

static gboolean
load_line_file (StsimCorpus *c, const char *path, GError **error)
{
  char *data = NULL;
  gsize len = 0;
  GError *local = NULL;

  if (!stsim_file_get_contents (path, STSIM_LIMIT_CORPUS, &data, &len, &local)) {
    g_set_error (error, STSIM_ERROR, local->code == G_FILE_ERROR_NOENT ? STSIM_ERROR_NOT_FOUND : STSIM_ERROR_IO,
                 "corpus: %s", local->message);
    g_error_free (local);
    return FALSE;
  }
  g_ptr_array_add (c->chunks, data);
  g_ptr_array_add (c->files, g_strdup (path));
  guint file = c->files->len - 1;

  char *p = data, *end = data + len;
  guint line = 0;
  /* A UTF-8 byte order mark at the very start is not text. */
  if (len >= 3 && memcmp (p, "\xEF\xBB\xBF", 3) == 0)
    p += 3;
  while (p < end) {
    char *nl = memchr (p, '\n', end - p);
    char *stop = nl ? nl : end;
    line++;
    gsize n = stop - p;
    if (n > 0 && p[n - 1] == '\r')
      n--;
    if (memchr (p, '\0', n)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_ENCODING,
                   "%s:%u: NUL byte in a corpus line (is this a binary file?)", path, line);
      return FALSE;
    }
    const char *bad = NULL;
    if (!g_utf8_validate_len (p, n, &bad)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_ENCODING,
                   "%s:%u: invalid UTF-8 at byte %" G_GSIZE_FORMAT " of the line "
                   "(convert the file to UTF-8, e.g. iconv -f latin1 -t utf-8)",
                   path, line, (gsize) (bad - p) + 1);
      return FALSE;
    }
    if (!is_blank (p, n)) {
      p[n] = '\0';  /* terminates the sentence in place (over '\r' or '\n') */
      Example e = { .text = p, .file = file, .line = line };
      g_array_append_val (c->ex, e);
    }
    p = nl ? nl + 1 : end;
  }
  /* A last line without '\n' is terminated by the NUL that
   * stsim_file_get_contents always appends. */
  return TRUE;
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static gboolean
has_glob (const char *s)
{
  return strpbrk (s, "*?[") != NULL;
}

/* Files of one corpus entry: the file itself, a folder's *.txt, or a glob's
 * matches (in one folder), sorted by name so that the order and hence the
 * shuffle do not depend on the file system. */
static gboolean
expand_entry (const char *entry, GPtrArray *out, GError **error)
{
  g_autofree char *dir = NULL;
  g_autofree char *pattern = NULL;

  if (has_glob (entry)) {
    dir = g_path_get_dirname (entry);
    pattern = g_path_get_basename (entry);
    if (has_glob (dir)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                   "corpus: '%s': wildcards are only allowed in the file name, not in folders", entry);
      return FALSE;
    }
  } else if (g_file_test (entry, G_FILE_TEST_IS_DIR)) {
    dir = g_strdup (entry);
    pattern = g_strdup ("*.txt");
  } else if (g_file_test (entry, G_FILE_TEST_EXISTS)) {
    g_ptr_array_add (out, g_strdup (entry));
    return TRUE;
  } else {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND,
                 "corpus: '%s' does not exist (give a file, a folder of .txt files or a pattern like corpus/*.txt)",
                 entry);
    return FALSE;
  }

  GError *local = NULL;
  g_autoptr(GDir) d = g_dir_open (dir, 0, &local);
  if (!d) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "corpus: '%s': %s", entry, local->message);
    g_error_free (local);
    return FALSE;
  }
  g_autoptr(GPatternSpec) spec = g_pattern_spec_new (pattern);
  g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while ((name = g_dir_read_name (d))) {
    g_autofree char *full = g_build_filename (dir, name, NULL);
    if (g_pattern_spec_match_string (spec, name) && g_file_test (full, G_FILE_TEST_IS_REGULAR))
      g_ptr_array_add (found, g_steal_pointer (&full));
  }
  if (found->len == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "corpus: '%s' matches no file (looked for %s in %s)",
                 entry, pattern, dir);
    return FALSE;
  }
  g_ptr_array_sort (found, compare_strings);
  for (guint i = 0; i < found->len; i++)
    g_ptr_array_add (out, g_strdup (g_ptr_array_index (found, i)));
  return TRUE;
}

StsimCorpus *
stsim_corpus_load_lines (const char *const *paths, GError **error)
{
  g_return_val_if_fail (paths != NULL, NULL);
  g_autoptr(StsimCorpus) c = corpus_new (1);
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func (g_free);

  for (gsize i = 0; paths[i]; i++)
    if (!expand_entry (paths[i], files, error))
      return NULL;
  if (files->len == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "corpus: no file given");
    return NULL;
  }
  /* A file reached twice (listed twice, or through two patterns or links)
   * is read once, at its first place, so that it does not count double. */
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (guint i = 0; i < files->len; i++) {
    const char *file = g_ptr_array_index (files, i);
    char *real = realpath (file, NULL);
    char *key = real ? g_strdup (real) : g_strdup (file);
    free (real);
    const char *first = g_hash_table_lookup (seen, key);
    if (first) {
      g_printerr ("corpus: %s is the same file as %s, listed before: read once\n", file, first);
      g_free (key);
      continue;
    }
    g_hash_table_insert (seen, key, g_strdup (file));
    if (!load_line_file (c, file, error))
      return NULL;
  }
  if (c->ex->len == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA, "corpus: %s%s holds no sentence (every line is empty)",
                 (char *) g_ptr_array_index (files, 0), files->len > 1 ? " and the other files" : "");
    return NULL;
  }
  return g_steal_pointer (&c);
}

/* ---- CSV -------------------------------------------------------------------- */

typedef struct {
  StsimCorpus *c;
  const char  *path;
  const char *const *want;
  guint        n_want;
  int         *col_of;     /* header column -> wanted index or -1 */
  guint        n_header;
  GPtrArray   *header;     /* while reading row 1 */
  char       **row;        /* n_want fields of the current row */
  guint        col;
  guint        record;     /* 1-based record number */
  guint        line;       /* physical line where the current record started */
  guint        cur_line;   /* physical line being read */
  GError      *error;
} CsvState;

static void
csv_field (void *s, size_t len, void *user)
{
  CsvState *st = user;
  if (st->error)
    return;
  if (!s) {  /* CSV_EMPTY_IS_NULL: an empty, unquoted field */
    s = "";
    len = 0;
  }
  if (st->record == 1) {
    g_ptr_array_add (st->header, g_strndup (s, len));
    return;
  }
  if (st->col == 0)
    st->line = st->cur_line;  /* blank lines between records are skipped by libcsv */
  if (st->col < st->n_header && st->col_of[st->col] >= 0) {
    const char *bad = NULL;
    if (!g_utf8_validate_len (s, len, &bad) || memchr (s, '\0', len)) {
      g_set_error (&st->error, STSIM_ERROR, STSIM_ERROR_ENCODING, "%s:%u: column '%s' is not valid UTF-8",
                   st->path, st->line, st->want[st->col_of[st->col]]);
      return;
    }
    g_free (st->row[st->col_of[st->col]]);
    st->row[st->col_of[st->col]] = g_strndup (s, len);
  }
  st->col++;
}

static void
csv_record (int term, void *user)
{
  CsvState *st = user;
  if (st->error)
    return;
  if (st->record == 1) {
    st->n_header = st->header->len;
    st->col_of = g_new (int, st->n_header);
    for (guint j = 0; j < st->n_header; j++) {
      const char *h = g_ptr_array_index (st->header, j);
      /* A UTF-8 BOM before the first header name is not part of it. */
      if (j == 0 && g_str_has_prefix (h, "\xEF\xBB\xBF"))
        h += 3;
      st->col_of[j] = -1;
      for (guint k = 0; k < st->n_want; k++)
        if (strcmp (g_strstrip ((char *) h), st->want[k]) == 0)
          st->col_of[j] = k;
    }
    for (guint k = 0; k < st->n_want; k++) {
      gboolean found = FALSE;
      for (guint j = 0; j < st->n_header; j++)
        found |= st->col_of[j] == (int) k;
      if (!found) {
        g_set_error (&st->error, STSIM_ERROR, STSIM_ERROR_DATA,
                     "%s:1: the header has no column '%s' (the file needs a header row naming its columns, e.g. %s)",
                     st->path, st->want[k], "sent0,sent1,hard_neg");
        return;
      }
    }
  } else {
    if (st->col != st->n_header) {
      g_set_error (&st->error, STSIM_ERROR, STSIM_ERROR_DATA, "%s:%u: %u fields where the header has %u",
                   st->path, st->line, st->col, st->n_header);
      return;
    }
    GString *joined = g_string_new (NULL);
    gboolean blank = FALSE;
    for (guint k = 0; k < st->n_want; k++) {
      /* SimCSE's loader turns a missing field into " "; a blank sentence
       * would train on nothing, so it is an error here. */
      if (!st->row[k] || is_blank (st->row[k], strlen (st->row[k])))
        blank = TRUE;
      g_string_append (joined, st->row[k] ? st->row[k] : "");
      g_string_append_c (joined, '\0');
    }
    if (blank) {
      g_set_error (&st->error, STSIM_ERROR, STSIM_ERROR_DATA, "%s:%u: an empty field in a required column",
                   st->path, st->line);
      g_string_free (joined, TRUE);
      return;
    }
    Example e = { .file = 0, .line = st->line };
    e.text = g_string_free (joined, FALSE);
    g_ptr_array_add (st->c->chunks, e.text);
    g_array_append_val (st->c->ex, e);
  }
  for (guint k = 0; k < st->n_want; k++)
    g_clear_pointer (&st->row[k], g_free);
  st->col = 0;
  st->record++;
  st->line = st->cur_line + 1;
}

StsimCorpus *
stsim_corpus_load_csv (const char *path, const char *const *columns, GError **error)
{
  g_return_val_if_fail (path != NULL && columns != NULL && columns[0] != NULL, NULL);
  g_autofree char *data = NULL;
  gsize len = 0;
  GError *local = NULL;

  if (!stsim_file_get_contents (path, STSIM_LIMIT_CORPUS, &data, &len, &local)) {
    g_set_error (error, STSIM_ERROR, local->code == G_FILE_ERROR_NOENT ? STSIM_ERROR_NOT_FOUND : STSIM_ERROR_IO,
                 "pairs: %s", local->message);
    g_error_free (local);
    return NULL;
  }
  g_autoptr(StsimCorpus) c = corpus_new (g_strv_length ((char **) columns));
  g_ptr_array_add (c->files, g_strdup (path));
  CsvState st = { .c = c, .path = path, .want = columns, .n_want = c->n_views, .record = 1, .line = 1,
                  .cur_line = 1 };
  st.header = g_ptr_array_new_with_free_func (g_free);
  st.row = g_new0 (char *, st.n_want);

  struct csv_parser p;
  csv_init (&p, CSV_APPEND_NULL | CSV_EMPTY_IS_NULL);
  /* Feed line by line so that errors can name the physical line. */
  const char *q = data, *end = data + len;
  while (q < end && !st.error) {
    const char *nl = memchr (q, '\n', end - q);
    const char *stop = nl ? nl + 1 : end;
    if (csv_parse (&p, q, stop - q, csv_field, csv_record, &st) != (size_t) (stop - q) && !st.error)
      g_set_error (&st.error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s:%u: malformed CSV (%s)", path, st.cur_line,
                   csv_strerror (csv_error (&p)));
    st.cur_line++;
    q = stop;
  }
  if (!st.error) {
    st.cur_line--;
    if (csv_fini (&p, csv_field, csv_record, &st) != 0 && !st.error)
      g_set_error (&st.error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s:%u: malformed CSV at the end of the file (%s)",
                   path, st.line, csv_strerror (csv_error (&p)));
  }
  csv_free (&p);
  for (guint k = 0; k < st.n_want; k++)
    g_free (st.row[k]);
  g_free (st.row);
  g_free (st.col_of);
  g_ptr_array_unref (st.header);
  if (st.error) {
    g_propagate_error (error, st.error);
    return NULL;
  }
  if (st.record == 1) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA, "%s: empty file (expected a header row and examples)", path);
    return NULL;
  }
  if (c->ex->len == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA, "%s: a header but no example rows", path);
    return NULL;
  }
  return g_steal_pointer (&c);
}
