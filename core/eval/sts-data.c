/* sts-data.c: readers for SentEval's STS12-16, STS Benchmark and SICK files.
 *
 * Every reader follows SentEval's loaders (senteval/sts.py, sick.py as
 * modified by SimCSE) and turns everything they would have crashed on or
 * silently mis-read into an error naming the file and line.
 */
#include <csv.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "stsim/stsim-sts.h"
#include "io/bounded.h"

#define DATA_HINT \
  "point stsim at a folder laid out like ../shared/data (holding senteval/downstream/STS and " \
  "senteval/downstream/SICK) with --data DIR or the STSIM_DATA environment variable"

/* ---- text rules ----------------------------------------------------------- */

/* Python's str.isspace() set (what str.split() and str.strip() use). */
static gboolean
is_py_space (gunichar c)
{
  if (c < 0x80)
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20);
  return c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
         c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/* The character at @p (NUL-terminated at @end) and its length; a byte that
 * does not start a valid UTF-8 sequence counts as one non-space character,
 * so that no input can make the scan step over the terminator. */
static gsize
next_char (const char *p, const char *end, gunichar *c)
{
  gunichar u = g_utf8_get_char_validated (p, end - p);
  if (u == (gunichar) -1 || u == (gunichar) -2) {
    *c = 0xfffd;
    return 1;
  }
  *c = u;
  return g_utf8_skip[*(const guchar *) p];
}

char **
stsim_sts_split_whitespace (const char *text)
{
  g_return_val_if_fail (text != NULL, NULL);
  GPtrArray *tokens = g_ptr_array_new ();
  const char *p = text, *end = text + strlen (text);
  gunichar c;
  while (p < end) {
    gsize n = next_char (p, end, &c);
    if (is_py_space (c)) {
      p += n;
      continue;
    }
    const char *start = p;
    while (p < end && !is_py_space (c)) {
      p += n;
      if (p < end)
        n = next_char (p, end, &c);
    }
    g_ptr_array_add (tokens, g_strndup (start, p - start));
  }
  g_ptr_array_add (tokens, NULL);
  return (char **) g_ptr_array_free (tokens, FALSE);
}

char *
stsim_sts_normalize (const char *text)
{
  g_return_val_if_fail (text != NULL, NULL);
  g_auto (GStrv) tokens = stsim_sts_split_whitespace (text);
  return g_strjoinv (" ", tokens);
}

/* Python's str.strip(): the span of @s without leading/trailing whitespace. */
static void
py_strip (const char *s, gsize len, const char **start, gsize *out_len)
{
  const char *b = s, *e = s + len;
  while (b < e && is_py_space (g_utf8_get_char (b)))
    b = g_utf8_next_char (b);
  while (e > b) {
    const char *prev = g_utf8_find_prev_char (b, e);
    if (prev == NULL || !is_py_space (g_utf8_get_char (prev)))
      break;
    e = prev;
  }
  *start = b;
  *out_len = e - b;
}

/* ---- lines ---------------------------------------------------------------- */

typedef struct {
  char      *contents;  /* owned; terminators overwritten with NUL */
  GPtrArray *lines;     /* char* into contents */
  GArray    *lengths;   /* gsize */
} LineFile;

static void
line_file_clear (LineFile *lf)
{
  g_free (lf->contents);
  if (lf->lines)
    g_ptr_array_unref (lf->lines);
  if (lf->lengths)
    g_array_unref (lf->lengths);
  memset (lf, 0, sizeof *lf);
}

static gboolean
file_missing_error (const char *path, const char *what, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND,
                 "%s: missing (%s); the folder '%s' does not exist: %s", path, what, dir, DATA_HINT);
  else
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND,
                 "%s: missing (%s) in '%s': %s", path, what, dir, DATA_HINT);
  return FALSE;
}

/* Reads @path as UTF-8 lines. Lines end at \n, \r\n or \r (Python's universal
 * newlines); a final terminator does not add an empty line. */
static gboolean
line_file_read (LineFile *lf, const char *path, const char *what, GError **error)
{
  gsize len = 0;
  g_autoptr (GError) io_err = NULL;
  memset (lf, 0, sizeof *lf);
  if (!stsim_file_get_contents (path, STSIM_LIMIT_DATA, &lf->contents, &len, &io_err)) {
    if (g_error_matches (io_err, G_FILE_ERROR, G_FILE_ERROR_NOENT))
      return file_missing_error (path, what, error);
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "%s: cannot read (%s): %s", path, what, io_err->message);
    return FALSE;
  }
  lf->lines = g_ptr_array_new ();
  lf->lengths = g_array_new (FALSE, FALSE, sizeof (gsize));
  char *p = lf->contents, *end = lf->contents + len;
  while (p < end) {
    char *q = p;
    while (q < end && *q != '\n' && *q != '\r')
      q++;
    gsize line_len = q - p;
    g_ptr_array_add (lf->lines, p);
    g_array_append_val (lf->lengths, line_len);
    if (q < end && *q == '\r' && q + 1 < end && q[1] == '\n') {
      *q = '\0';
      q += 2;
    } else if (q < end) {
      *q = '\0';
      q += 1;
    }
    p = q;
  }
  for (guint i = 0; i < lf->lines->len; i++) {
    const char *line = g_ptr_array_index (lf->lines, i);
    gsize line_len = g_array_index (lf->lengths, gsize, i);
    const char *bad = NULL;
    if (!g_utf8_validate_len (line, line_len, &bad)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_ENCODING,
                   "%s:%u: invalid UTF-8 (byte 0x%02x at column %u%s); the STS files must be UTF-8 text",
                   path, i + 1, (guint) (guchar) *bad, (guint) (bad - line) + 1,
                   *bad == '\0' ? ", a NUL byte" : "");
      line_file_clear (lf);
      return FALSE;
    }
  }
  return TRUE;
}

/* ---- fields (libcsv) -------------------------------------------------------- */

/* SentEval splits these files on TAB and nothing else: quotes are ordinary
 * characters (STS-B has sentences with unbalanced '"'; a CSV reading that
 * honours quotes merges lines and loses pairs: 1,379 test pairs is the check).
 * So the delimiter is TAB, the quote byte is 0xFF, which never occurs in valid
 * UTF-8 (every line is validated first), and no byte counts as padding to trim.
 * Each line is parsed on its own (csv_parse, then csv_fini ends the row), which
 * keeps exact line numbers and leaves line splitting to the rules above. */
#define STS_CSV_NO_QUOTE 0xff

static int
csv_no_space (unsigned char c)
{
  (void) c;
  return 0;
}

typedef struct {
  GPtrArray *fields;  /* char*, owned */
} FieldSink;

static void
on_field (void *s, size_t len, void *data)
{
  FieldSink *sink = data;
  g_ptr_array_add (sink->fields, g_strndup (s ? s : "", s ? len : 0));
}

static void
on_row (int c, void *data)
{
  (void) c;
  (void) data;
}

typedef struct {
  struct csv_parser parser;
  gboolean          ready;
} TabParser;

static gboolean
tab_parser_init (TabParser *tp, const char *path, GError **error)
{
  if (csv_init (&tp->parser, 0) != 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "%s: cannot initialise the CSV parser", path);
    return FALSE;
  }
  csv_set_delim (&tp->parser, CSV_TAB);
  csv_set_quote (&tp->parser, STS_CSV_NO_QUOTE);
  csv_set_space_func (&tp->parser, csv_no_space);
  tp->ready = TRUE;
  return TRUE;
}

static void
tab_parser_clear (TabParser *tp)
{
  if (tp->ready)
    csv_free (&tp->parser);
  tp->ready = FALSE;
}

/* The TAB-separated fields of one line (an empty line has none). */
static GPtrArray *
tab_parser_split (TabParser *tp, const char *line, gsize len, const char *path, guint lineno, GError **error)
{
  FieldSink sink = { g_ptr_array_new_with_free_func (g_free) };
  if (csv_parse (&tp->parser, line, len, on_field, on_row, &sink) != len ||
      csv_fini (&tp->parser, on_field, on_row, &sink) != 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s:%u: cannot split the line into fields: %s",
                 path, lineno, csv_strerror (csv_error (&tp->parser)));
    g_ptr_array_unref (sink.fields);
    return NULL;
  }
  return sink.fields;
}

/* ---- scores --------------------------------------------------------------- */

/* A decimal number as Python's float() reads it, but finite only: NaN and Inf
 * are errors here, not data. Surrounding whitespace is allowed. */
static gboolean
parse_score (const char *text, gsize len, double *out)
{
  const char *s;
  gsize n;
  py_strip (text, len, &s, &n);
  if (n == 0 || n > 64)
    return FALSE;
  char buf[65];
  memcpy (buf, s, n);
  buf[n] = '\0';
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isdigit (buf[i]) && buf[i] != '.' && buf[i] != '-' && buf[i] != '+' &&
        buf[i] != 'e' && buf[i] != 'E')
      return FALSE;
  char *end = NULL;
  errno = 0;
  double v = g_ascii_strtod (buf, &end);
  if (end != buf + n || errno == ERANGE || !isfinite (v))
    return FALSE;
  *out = v;
  return TRUE;
}

static void
set_bad_score (GError **error, const char *path, guint lineno, const char *text, gsize len, const char *col)
{
  g_autofree char *shown = g_strndup (text, MIN (len, 40));
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA,
               "%s:%u: %s '%s%s' is not a finite decimal number", path, lineno, col, shown,
               len > 40 ? "..." : "");
}

/* ---- splits --------------------------------------------------------------- */

typedef struct {
  GPtrArray *s1, *s2;
  GArray    *gold, *lines;
} SplitBuilder;

static void
builder_init (SplitBuilder *b)
{
  b->s1 = g_ptr_array_new_with_free_func (g_free);
  b->s2 = g_ptr_array_new_with_free_func (g_free);
  b->gold = g_array_new (FALSE, FALSE, sizeof (double));
  b->lines = g_array_new (FALSE, FALSE, sizeof (guint));
}

static void
builder_clear (SplitBuilder *b)
{
  g_clear_pointer (&b->s1, g_ptr_array_unref);
  g_clear_pointer (&b->s2, g_ptr_array_unref);
  g_clear_pointer (&b->gold, g_array_unref);
  g_clear_pointer (&b->lines, g_array_unref);
}

static void
builder_add (SplitBuilder *b, const char *s1, const char *s2, double gold, guint line)
{
  g_ptr_array_add (b->s1, stsim_sts_normalize (s1));
  g_ptr_array_add (b->s2, stsim_sts_normalize (s2));
  g_array_append_val (b->gold, gold);
  g_array_append_val (b->lines, line);
}

static StsimStsSplit *
builder_finish (SplitBuilder *b, const char *name, const char *path)
{
  StsimStsSplit *split = g_new0 (StsimStsSplit, 1);
  split->name = g_strdup (name);
  split->path = g_strdup (path);
  split->n = b->gold->len;
  g_ptr_array_add (b->s1, NULL);
  g_ptr_array_add (b->s2, NULL);
  split->s1 = (char **) g_ptr_array_free (g_steal_pointer (&b->s1), FALSE);
  split->s2 = (char **) g_ptr_array_free (g_steal_pointer (&b->s2), FALSE);
  split->gold = (double *) (void *) g_array_free (g_steal_pointer (&b->gold), FALSE);
  split->lines = (guint *) (void *) g_array_free (g_steal_pointer (&b->lines), FALSE);
  return split;
}

void
stsim_sts_split_free (StsimStsSplit *split)
{
  if (split == NULL)
    return;
  g_free (split->name);
  g_free (split->path);
  g_strfreev (split->s1);
  g_strfreev (split->s2);
  g_free (split->gold);
  g_free (split->lines);
  g_free (split);
}

/* SentEval reads STS12-16 with str.splitlines(), which also breaks lines at
 * these characters; a file holding one would be split differently there, so
 * it is reported instead of being read one way or the other. */
static gboolean
check_no_odd_breaks (const char *line, const char *path, guint lineno, GError **error)
{
  for (const char *p = line; *p; p = g_utf8_next_char (p)) {
    gunichar c = g_utf8_get_char (p);
    if (c == 0x0b || c == 0x0c || c == 0x1c || c == 0x1d || c == 0x1e || c == 0x85 || c == 0x2028 ||
        c == 0x2029) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA,
                   "%s:%u: column %u holds U+%04X, a line break for SentEval's reader; "
                   "replace it with a space", path, lineno, (guint) (p - line) + 1, c);
      return FALSE;
    }
  }
  return TRUE;
}

StsimStsSplit *
stsim_sts_read_semeval (const char *input_path, const char *gold_path, const char *name, GError **error)
{
  g_return_val_if_fail (input_path != NULL && gold_path != NULL && name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  LineFile in = { 0 }, gs = { 0 };
  TabParser tp = { 0 };
  SplitBuilder b = { 0 };
  StsimStsSplit *result = NULL;

  if (!line_file_read (&in, input_path, "STS sentence pairs", error) ||
      !line_file_read (&gs, gold_path, "STS gold scores", error) ||
      !tab_parser_init (&tp, input_path, error))
    goto out;

  builder_init (&b);
  guint n_in = in.lines->len, n_gs = gs.lines->len;
  for (guint i = 0; i < MAX (n_in, n_gs); i++) {
    if (i >= n_in || i >= n_gs) {
      gboolean gold_short = i >= n_gs;
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA,
                   "%s:%u: no matching line %u in %s (%u input lines, %u gold lines); "
                   "every input line needs one gold line (an empty gold line skips the pair)",
                   gold_short ? input_path : gold_path, i + 1, i + 1, gold_short ? gold_path : input_path,
                   n_in, n_gs);
      goto out;
    }
    const char *gline = g_ptr_array_index (gs.lines, i);
    gsize glen = g_array_index (gs.lengths, gsize, i);
    const char *iline = g_ptr_array_index (in.lines, i);
    gsize ilen = g_array_index (in.lengths, gsize, i);

    if (!check_no_odd_breaks (iline, input_path, i + 1, error) ||
        !check_no_odd_breaks (gline, gold_path, i + 1, error))
      goto out;
    g_autoptr (GPtrArray) fields = tab_parser_split (&tp, iline, ilen, input_path, i + 1, error);
    if (fields == NULL)
      goto out;
    if (fields->len != 2) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA,
                   "%s:%u: expected 2 TAB-separated fields (sentence1, sentence2), found %u",
                   input_path, i + 1, fields->len);
      goto out;
    }
    if (glen == 0)  /* SentEval keeps only the pairs with a gold score */
      continue;
    double score;
    if (!parse_score (gline, glen, &score)) {
      set_bad_score (error, gold_path, i + 1, gline, glen, "gold score");
      goto out;
    }
    builder_add (&b, g_ptr_array_index (fields, 0), g_ptr_array_index (fields, 1), score, i + 1);
  }
  result = builder_finish (&b, name, input_path);

out:
  builder_clear (&b);
  tab_parser_clear (&tp);
  line_file_clear (&in);
  line_file_clear (&gs);
  return result;
}

/* STS-B and SICK: SentEval reads them line by line, strips the line and splits
 * it on TAB, taking the sentences and score from fixed columns; extra columns
 * are ignored. */
static StsimStsSplit *
read_columns (const char *path, const char *name, const char *what, gboolean header,
              guint col_s1, guint col_s2, guint col_score, GError **error)
{
  LineFile lf = { 0 };
  TabParser tp = { 0 };
  SplitBuilder b = { 0 };
  StsimStsSplit *result = NULL;
  guint need = MAX (col_score, MAX (col_s1, col_s2)) + 1;

  if (!line_file_read (&lf, path, what, error) || !tab_parser_init (&tp, path, error))
    goto out;
  builder_init (&b);
  for (guint i = 0; i < lf.lines->len; i++) {
    const char *line;
    gsize len;
    py_strip (g_ptr_array_index (lf.lines, i), g_array_index (lf.lengths, gsize, i), &line, &len);
    g_autoptr (GPtrArray) fields = tab_parser_split (&tp, line, len, path, i + 1, error);
    if (fields == NULL)
      goto out;
    if (header && i == 0) {
      /* A file without its header would lose its first pair silently. */
      if (fields->len == 0 || strcmp (g_ptr_array_index (fields, 0), "pair_ID") != 0) {
        g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA,
                     "%s:1: expected the header line 'pair_ID<TAB>sentence_A<TAB>sentence_B<TAB>"
                     "relatedness_score<TAB>entailment_judgment'", path);
        goto out;
      }
      continue;
    }
    if (fields->len < need) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA,
                   "%s:%u: expected at least %u TAB-separated fields (score in column %u, sentences in "
                   "columns %u and %u), found %u", path, i + 1, need, col_score + 1, col_s1 + 1, col_s2 + 1,
                   fields->len);
      goto out;
    }
    const char *score_text = g_ptr_array_index (fields, col_score);
    double score;
    if (!parse_score (score_text, strlen (score_text), &score)) {
      set_bad_score (error, path, i + 1, score_text, strlen (score_text), "score");
      goto out;
    }
    builder_add (&b, g_ptr_array_index (fields, col_s1), g_ptr_array_index (fields, col_s2), score, i + 1);
  }
  if (header && lf.lines->len == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA, "%s: empty file (expected a header line and pairs)", path);
    goto out;
  }
  result = builder_finish (&b, name, path);

out:
  builder_clear (&b);
  tab_parser_clear (&tp);
  line_file_clear (&lf);
  return result;
}

StsimStsSplit *
stsim_sts_read_benchmark (const char *path, const char *name, GError **error)
{
  g_return_val_if_fail (path != NULL && name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return read_columns (path, name, "STS Benchmark split", FALSE, 5, 6, 4, error);
}

StsimStsSplit *
stsim_sts_read_sick (const char *path, const char *name, GError **error)
{
  g_return_val_if_fail (path != NULL && name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return read_columns (path, name, "SICK split", TRUE, 1, 2, 3, error);
}

/* ---- tasks ---------------------------------------------------------------- */

typedef enum { FMT_SEMEVAL, FMT_BENCHMARK, FMT_SICK } TaskFormat;

typedef struct {
  const char *name, *short_name, *dir;
  TaskFormat  format;
  const char *subsets[7];  /* SemEval stems, or split names */
  const char *files[7];    /* split files (STS-B, SICK) */
} TaskDef;

/* Subsets as SimCSE's SentEval evaluates them (STS13 without SMT). */
static const TaskDef task_defs[] = {
  { "STS12", "STS12", "STS/STS12-en-test", FMT_SEMEVAL,
    { "MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews" }, { NULL } },
  { "STS13", "STS13", "STS/STS13-en-test", FMT_SEMEVAL, { "FNWN", "headlines", "OnWN" }, { NULL } },
  { "STS14", "STS14", "STS/STS14-en-test", FMT_SEMEVAL,
    { "deft-forum", "deft-news", "headlines", "images", "OnWN", "tweet-news" }, { NULL } },
  { "STS15", "STS15", "STS/STS15-en-test", FMT_SEMEVAL,
    { "answers-forums", "answers-students", "belief", "headlines", "images" }, { NULL } },
  { "STS16", "STS16", "STS/STS16-en-test", FMT_SEMEVAL,
    { "answer-answer", "headlines", "plagiarism", "postediting", "question-question" }, { NULL } },
  { "STSBenchmark", "STS-B", "STS/STSBenchmark", FMT_BENCHMARK, { "train", "dev", "test" },
    { "sts-train.csv", "sts-dev.csv", "sts-test.csv" } },
  { "SICKRelatedness", "SICK-R", "SICK", FMT_SICK, { "train", "dev", "test" },
    { "SICK_train.txt", "SICK_trial.txt", "SICK_test_annotated.txt" } },
};

static const TaskDef *
task_def_lookup (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (task_defs); i++)
    if (strcmp (task_defs[i].name, name) == 0)
      return &task_defs[i];
  return NULL;
}

const char *const *
stsim_sts_task_names (void)
{
  static const char *const names[] = { "STS12", "STS13", "STS14", "STS15", "STS16",
                                       "STSBenchmark", "SICKRelatedness", NULL };
  return names;
}

const char *
stsim_sts_task_short_name (const char *task)
{
  g_return_val_if_fail (task != NULL, NULL);
  const TaskDef *def = task_def_lookup (task);
  return def ? def->short_name : NULL;
}

gboolean
stsim_sts_task_has_splits (const char *task)
{
  g_return_val_if_fail (task != NULL, FALSE);
  const TaskDef *def = task_def_lookup (task);
  return def != NULL && def->format != FMT_SEMEVAL;
}

char *
stsim_sts_find_root (const char *data_dir, GError **error)
{
  g_return_val_if_fail (data_dir != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  if (!g_file_test (data_dir, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND,
                 "STS data folder '%s' does not exist: %s", data_dir, DATA_HINT);
    return NULL;
  }
  const char *const candidates[] = { "senteval/downstream", "downstream", "." };
  for (gsize i = 0; i < G_N_ELEMENTS (candidates); i++) {
    g_autofree char *root = g_build_filename (data_dir, candidates[i], NULL);
    g_autofree char *sts = g_build_filename (root, "STS", NULL);
    g_autofree char *sick = g_build_filename (root, "SICK", NULL);
    if (g_file_test (sts, G_FILE_TEST_IS_DIR) || g_file_test (sick, G_FILE_TEST_IS_DIR))
      return strcmp (candidates[i], ".") == 0 ? g_strdup (data_dir) : g_steal_pointer (&root);
  }
  g_autofree char *expected = g_build_filename (data_dir, "senteval", "downstream", "STS", NULL);
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND,
               "no STS data in '%s' (looked for '%s'): %s", data_dir, expected, DATA_HINT);
  return NULL;
}

void
stsim_sts_task_free (StsimStsTask *task)
{
  if (task == NULL)
    return;
  g_free (task->name);
  g_free (task->dir);
  if (task->splits)
    g_ptr_array_unref (task->splits);
  g_free (task);
}

StsimStsTask *
stsim_sts_task_load (const char *data_dir, const char *task_name, GError **error)
{
  g_return_val_if_fail (data_dir != NULL && task_name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  const TaskDef *def = task_def_lookup (task_name);
  if (def == NULL) {
    g_autofree char *all = g_strjoinv (", ", (char **) stsim_sts_task_names ());
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "unknown STS task '%s' (known: %s)", task_name, all);
    return NULL;
  }
  g_autofree char *root = stsim_sts_find_root (data_dir, error);
  if (root == NULL)
    return NULL;

  g_autoptr (StsimStsTask) task = g_new0 (StsimStsTask, 1);
  task->name = g_strdup (def->name);
  task->dir = g_build_filename (root, def->dir, NULL);
  task->splits = g_ptr_array_new_with_free_func ((GDestroyNotify) stsim_sts_split_free);
  if (!g_file_test (task->dir, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "%s: folder '%s' is missing: %s",
                 def->name, task->dir, DATA_HINT);
    return NULL;
  }
  for (gsize i = 0; i < G_N_ELEMENTS (def->subsets) && def->subsets[i]; i++) {
    StsimStsSplit *split = NULL;
    if (def->format == FMT_SEMEVAL) {
      g_autofree char *in_name = g_strdup_printf ("STS.input.%s.txt", def->subsets[i]);
      g_autofree char *gs_name = g_strdup_printf ("STS.gs.%s.txt", def->subsets[i]);
      g_autofree char *in_path = g_build_filename (task->dir, in_name, NULL);
      g_autofree char *gs_path = g_build_filename (task->dir, gs_name, NULL);
      split = stsim_sts_read_semeval (in_path, gs_path, def->subsets[i], error);
    } else {
      g_autofree char *path = g_build_filename (task->dir, def->files[i], NULL);
      split = def->format == FMT_BENCHMARK ? stsim_sts_read_benchmark (path, def->subsets[i], error)
                                           : stsim_sts_read_sick (path, def->subsets[i], error);
    }
    if (split == NULL)
      return NULL;
    g_ptr_array_add (task->splits, split);
  }
  return g_steal_pointer (&task);
}
