/* transfer-data.c: SentEval's readers of the seven transfer tasks
 * (senteval/binary.py, sst.py, trec.py, mrpc.py), in SentEval's row order.
 *
 * Encodings and line rules are SentEval's: MR, CR, SUBJ, MPQA and TREC are
 * read as Latin-1 (every byte one character, converted to UTF-8 here), SST
 * and MRPC as UTF-8; the binary tasks split lines as str.splitlines() does,
 * the others as a text file iterates (\n, \r\n, \r). Sentences are the
 * whitespace tokens re-joined by single spaces (SimCSE's batcher). Each split
 * is sorted by (token count, label), MRPC by (tokens of A, tokens of B,
 * label), as SentEval sorts before encoding: the row order decides the folds
 * and the shuffles, so it is part of the protocol. */
#include <stdlib.h>
#include <string.h>

#include "stsim/stsim-transfer.h"
#include "io/bounded.h"

#define DATA_HINT "point --data (or STSIM_DATA) at a folder laid out like ../shared/data " \
                  "(senteval/downstream/MR, ...), see docs/evaluation.md"

static const char *const task_names[] = { "MR", "CR", "SUBJ", "MPQA", "SST2", "TREC", "MRPC", NULL };

const char *const *
stsim_transfer_task_names (void)
{
  return task_names;
}

gboolean
stsim_transfer_is_task (const char *name)
{
  return name && g_strv_contains (task_names, name);
}

/* ---- lines ------------------------------------------------------------------ */

typedef struct {
  char      *path;
  GPtrArray *lines;   /* UTF-8 strings, owned */
} Lines;

static void
lines_clear (Lines *l)
{
  g_free (l->path);
  if (l->lines)
    g_ptr_array_unref (l->lines);
}

/* Every byte >= 0x80 becomes the code point of the same value. */
static char *
latin1_to_utf8 (const char *s, gsize len)
{
  GString *out = g_string_sized_new (len + 8);
  for (gsize i = 0; i < len; i++)
    g_string_append_unichar (out, (guchar) s[i]);
  return g_string_free (out, FALSE);
}

static gboolean
is_break (guchar c, gboolean splitlines)
{
  if (c == '\n' || c == '\r')
    return TRUE;
  /* str.splitlines() also breaks at \v, \f, \x1c-\x1e and \x85 (Latin-1 NEL). */
  return splitlines && (c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1e) || c == 0x85);
}

static gboolean
lines_read (Lines *l, const char *dir, const char *file, gboolean latin1, gboolean splitlines, GError **error)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr (GError) e = NULL;
  l->path = g_build_filename (dir, file, NULL);
  l->lines = g_ptr_array_new_with_free_func (g_free);
  if (!stsim_file_get_contents (l->path, STSIM_LIMIT_DATA, &text, &len, &e)) {
    g_set_error (error, STSIM_ERROR, g_error_matches (e, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? STSIM_ERROR_NOT_FOUND
                                                                                          : STSIM_ERROR_IO,
                 "%s: %s; %s", l->path, e->message, DATA_HINT);
    return FALSE;
  }
  gsize start = 0;
  for (gsize i = 0; i <= len; i++) {
    if (i < len && !is_break ((guchar) text[i], splitlines))
      continue;
    if (i == len && start == len)
      break;  /* no empty line after the last terminator */
    const char *s = text + start;
    gsize n = i - start;
    if (latin1)
      g_ptr_array_add (l->lines, latin1_to_utf8 (s, n));
    else if (!g_utf8_validate_len (s, n, NULL)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s:%u: not valid UTF-8 (SentEval reads this file as "
                   "UTF-8)", l->path, l->lines->len + 1);
      return FALSE;
    } else
      g_ptr_array_add (l->lines, g_strndup (s, n));
    if (i < len && text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')
      i++;
    start = i + 1;
  }
  return TRUE;
}

/* Python's str.strip() for the ASCII whitespace a line can end with. */
static char *
strip (const char *s)
{
  while (*s && strchr (" \t\n\r\v\f\x1c\x1d\x1e\x1f", *s))
    s++;
  gsize n = strlen (s);
  while (n > 0 && strchr (" \t\n\r\v\f\x1c\x1d\x1e\x1f", s[n - 1]))
    n--;
  return g_strndup (s, n);
}

static guint
count_tokens (const char *s)
{
  g_auto (GStrv) t = stsim_sts_split_whitespace (s);
  return g_strv_length (t);
}

/* ---- rows and sorting --------------------------------------------------------- */

typedef struct {
  char  *s1, *s2;   /* normalised */
  guint  n1, n2;    /* token counts */
  gint32 y;
  gsize  index;     /* file order, the final tie-break (Python's sort is stable) */
} Row;

static void
row_set (Row *r, const char *s1, const char *s2, gint32 y, gsize index)
{
  r->s1 = stsim_sts_normalize (s1);
  r->n1 = count_tokens (s1);
  r->s2 = s2 ? stsim_sts_normalize (s2) : NULL;
  r->n2 = s2 ? count_tokens (s2) : 0;
  r->y = y;
  r->index = index;
}

static int
row_cmp (const void *a, const void *b)
{
  const Row *x = a, *y = b;
  if (x->n1 != y->n1)
    return x->n1 < y->n1 ? -1 : 1;
  if (x->n2 != y->n2)
    return x->n2 < y->n2 ? -1 : 1;
  if (x->y != y->y)
    return x->y < y->y ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* Sorts @rows (consumed) into a split. */
static StsimTransferSplit *
split_from_rows (const char *name, GArray *rows)
{
  qsort (rows->data, rows->len, sizeof (Row), row_cmp);
  StsimTransferSplit *s = g_new0 (StsimTransferSplit, 1);
  s->name = g_strdup (name);
  s->n = rows->len;
  s->s1 = g_new0 (char *, s->n + 1);
  gboolean pairs = rows->len > 0 && g_array_index (rows, Row, 0).s2 != NULL;
  s->s2 = pairs ? g_new0 (char *, s->n + 1) : NULL;
  s->y = g_new (gint32, MAX (s->n, 1));
  for (guint i = 0; i < rows->len; i++) {
    Row *r = &g_array_index (rows, Row, i);
    s->s1[i] = r->s1;
    if (pairs)
      s->s2[i] = r->s2;
    s->y[i] = r->y;
  }
  g_array_unref (rows);
  return s;
}

static void
split_free (gpointer p)
{
  StsimTransferSplit *s = p;
  g_free (s->name);
  g_strfreev (s->s1);
  g_strfreev (s->s2);
  g_free (s->y);
  g_free (s);
}

void
stsim_transfer_task_free (StsimTransferTask *task)
{
  if (task == NULL)
    return;
  g_free (task->name);
  g_ptr_array_unref (task->splits);
  g_strfreev (task->prepare);
  g_free (task);
}

static void
add_prepare (GPtrArray *prep, const char *text)
{
  g_ptr_array_add (prep, stsim_sts_normalize (text));
}

/* ---- the four task formats ------------------------------------------------------ */

/* binary.py: pos lines labelled 1, then neg lines labelled 0. */
static gboolean
load_binary (StsimTransferTask *t, const char *dir, const char *pos, const char *neg, GError **error)
{
  Lines lp = { 0 }, ln = { 0 };
  gboolean ok = lines_read (&lp, dir, pos, TRUE, TRUE, error) && lines_read (&ln, dir, neg, TRUE, TRUE, error);
  for (int side = 0; ok && side < 2; side++) {
    Lines *l = side == 0 ? &lp : &ln;
    if (l->lines->len == 0) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s: no sentences", l->path);
      ok = FALSE;
    }
  }
  if (ok) {
    GArray *rows = g_array_new (FALSE, TRUE, sizeof (Row));
    g_autoptr (GPtrArray) pr = g_ptr_array_new ();
    for (int side = 0; side < 2; side++) {
      Lines *l = side == 0 ? &lp : &ln;
      for (guint i = 0; i < l->lines->len; i++) {
        Row r;
        row_set (&r, l->lines->pdata[i], NULL, side == 0 ? 1 : 0, rows->len);
        g_array_append_val (rows, r);
        add_prepare (pr, l->lines->pdata[i]);
      }
    }
    g_ptr_array_add (pr, NULL);
    t->n_prepare = pr->len - 1;
    t->prepare = (char **) g_ptr_array_free (g_steal_pointer (&pr), FALSE);
    g_ptr_array_add (t->splits, split_from_rows ("all", rows));
  }
  lines_clear (&lp);
  lines_clear (&ln);
  return ok;
}

/* sst.py (binary): "sentence<TAB>label", label 0 or 1. */
static gboolean
load_sst_file (Lines *l, GArray *rows, GError **error)
{
  for (guint i = 0; i < l->lines->len; i++) {
    g_autofree char *line = strip (l->lines->pdata[i]);
    g_auto (GStrv) f = g_strsplit (line, "\t", -1);
    g_autofree char *label = g_strv_length (f) >= 2 ? strip (f[1]) : NULL;
    char *end = NULL;
    gint64 y = label ? g_ascii_strtoll (label, &end, 10) : -1;
    if (label == NULL || *label == '\0' || *end != '\0' || (y != 0 && y != 1)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s:%u: expected 'sentence<TAB>label' with label 0 or 1",
                   l->path, i + 1);
      return FALSE;
    }
    Row r;
    row_set (&r, f[0], NULL, (gint32) y, rows->len);
    g_array_append_val (rows, r);
  }
  return TRUE;
}

/* trec.py: "LABEL:fine question", Latin-1; the fine label is dropped. */
static gboolean
load_trec_file (Lines *l, GArray *rows, GError **error)
{
  static const char *const labels[] = { "ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM", NULL };
  for (guint i = 0; i < l->lines->len; i++) {
    g_autofree char *line = strip (l->lines->pdata[i]);
    const char *colon = strchr (line, ':');
    const char *space = colon ? strchr (colon + 1, ' ') : NULL;
    g_autofree char *target = colon ? g_strndup (line, colon - line) : NULL;
    gint32 y = -1;
    for (gint32 k = 0; target && labels[k]; k++)
      if (strcmp (target, labels[k]) == 0)
        y = k;
    if (space == NULL || y < 0) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s:%u: expected 'LABEL:fine question' with LABEL one of "
                   "ABBR, DESC, ENTY, HUM, LOC, NUM", l->path, i + 1);
      return FALSE;
    }
    Row r;
    row_set (&r, space + 1, NULL, y, rows->len);
    g_array_append_val (rows, r);
  }
  return TRUE;
}

/* mrpc.py: a header line, then "Quality<TAB>id1<TAB>id2<TAB>s1<TAB>s2". */
static gboolean
load_mrpc_file (Lines *l, GArray *rows, GError **error)
{
  for (guint i = 1; i < l->lines->len; i++) {
    g_autofree char *line = strip (l->lines->pdata[i]);
    g_auto (GStrv) f = g_strsplit (line, "\t", -1);
    g_autofree char *label = f[0] ? strip (f[0]) : NULL;
    char *end = NULL;
    gint64 y = label && *label ? g_ascii_strtoll (label, &end, 10) : -1;
    if (g_strv_length (f) < 5 || end == NULL || *end != '\0' || (y != 0 && y != 1)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s:%u: expected 'Quality<TAB>#1 ID<TAB>#2 ID<TAB>"
                   "#1 String<TAB>#2 String' with Quality 0 or 1 (the first line is the header)", l->path, i + 1);
      return FALSE;
    }
    Row r;
    row_set (&r, f[3], f[4], (gint32) y, rows->len);
    g_array_append_val (rows, r);
  }
  if (rows->len == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s: no pair after the header line", l->path);
    return FALSE;
  }
  return TRUE;
}

typedef gboolean (*FileLoader) (Lines *l, GArray *rows, GError **error);

/* Tasks with named splits; the prepare list is every split's s1 (then s2) in
 * file order, split after split, as SentEval's do_prepare lists them. */
static gboolean
load_splits (StsimTransferTask *t, const char *dir, const char *const *files, const char *const *names,
             gboolean latin1, FileLoader load, GError **error)
{
  g_autoptr (GPtrArray) pr = g_ptr_array_new ();
  g_autoptr (GPtrArray) second = g_ptr_array_new ();
  for (gsize k = 0; files[k]; k++) {
    Lines l = { 0 };
    GArray *rows = g_array_new (FALSE, TRUE, sizeof (Row));
    gboolean ok = lines_read (&l, dir, files[k], latin1, FALSE, error) && load (&l, rows, error);
    lines_clear (&l);
    if (ok && rows->len == 0) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s/%s: no examples", dir, files[k]);
      ok = FALSE;
    }
    if (!ok) {
      for (guint i = 0; i < rows->len; i++) {
        g_free (g_array_index (rows, Row, i).s1);
        g_free (g_array_index (rows, Row, i).s2);
      }
      g_array_unref (rows);
      return FALSE;
    }
    /* rows are still in file order here */
    g_ptr_array_set_size (second, 0);
    for (guint i = 0; i < rows->len; i++) {
      g_ptr_array_add (pr, g_strdup (g_array_index (rows, Row, i).s1));
      if (g_array_index (rows, Row, i).s2)
        g_ptr_array_add (second, g_strdup (g_array_index (rows, Row, i).s2));
    }
    for (guint i = 0; i < second->len; i++)
      g_ptr_array_add (pr, second->pdata[i]);
    g_ptr_array_add (t->splits, split_from_rows (names[k], rows));
  }
  t->n_prepare = pr->len;
  g_ptr_array_add (pr, NULL);
  t->prepare = (char **) g_ptr_array_free (g_steal_pointer (&pr), FALSE);
  return TRUE;
}

/* The folder holding the transfer tasks (SentEval's data/downstream). */
static char *
find_task_dir (const char *data_dir, const char *sub, GError **error)
{
  const char *const candidates[] = { "senteval/downstream", "downstream", "." };
  for (gsize i = 0; i < G_N_ELEMENTS (candidates); i++) {
    g_autofree char *dir = g_build_filename (data_dir, candidates[i], sub, NULL);
    if (g_file_test (dir, G_FILE_TEST_IS_DIR))
      return g_steal_pointer (&dir);
  }
  g_autofree char *expected = g_build_filename (data_dir, "senteval", "downstream", sub, NULL);
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "no folder '%s' (looked for '%s'): %s", sub, expected,
               DATA_HINT);
  return NULL;
}

StsimTransferTask *
stsim_transfer_task_load (const char *data_dir, const char *name, GError **error)
{
  g_return_val_if_fail (data_dir != NULL && name != NULL, NULL);
  if (!stsim_transfer_is_task (name)) {
    g_autofree char *known = g_strjoinv (",", (char **) task_names);
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "unknown transfer task '%s' (choose from %s)", name, known);
    return NULL;
  }
  const char *sub = strcmp (name, "SST2") == 0 ? "SST/binary" : name;
  g_autofree char *dir = find_task_dir (data_dir, sub, error);
  if (dir == NULL)
    return NULL;
  g_autoptr (StsimTransferTask) t = g_new0 (StsimTransferTask, 1);
  t->name = g_strdup (name);
  t->splits = g_ptr_array_new_with_free_func (split_free);
  t->n_classes = 2;
  gboolean ok;
  if (strcmp (name, "SST2") == 0) {
    static const char *const files[] = { "sentiment-train", "sentiment-dev", "sentiment-test", NULL };
    static const char *const names[] = { "train", "dev", "test" };
    t->scheme = STSIM_TRANSFER_SPLIT;
    ok = load_splits (t, dir, files, names, FALSE, load_sst_file, error);
  } else if (strcmp (name, "TREC") == 0) {
    static const char *const files[] = { "train_5500.label", "TREC_10.label", NULL };
    static const char *const names[] = { "train", "test" };
    t->scheme = STSIM_TRANSFER_KFOLD;
    t->n_classes = 6;
    ok = load_splits (t, dir, files, names, TRUE, load_trec_file, error);
  } else if (strcmp (name, "MRPC") == 0) {
    static const char *const files[] = { "msr_paraphrase_train.txt", "msr_paraphrase_test.txt", NULL };
    static const char *const names[] = { "train", "test" };
    t->scheme = STSIM_TRANSFER_KFOLD;
    t->pairs = TRUE;
    ok = load_splits (t, dir, files, names, FALSE, load_mrpc_file, error);
  } else {
    static const char *const files[][3] = {
      { "MR", "rt-polarity.pos", "rt-polarity.neg" }, { "CR", "custrev.pos", "custrev.neg" },
      { "SUBJ", "subj.objective", "subj.subjective" }, { "MPQA", "mpqa.pos", "mpqa.neg" },
    };
    t->scheme = STSIM_TRANSFER_INNER_KFOLD;
    ok = FALSE;
    for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
      if (strcmp (files[i][0], name) == 0)
        ok = load_binary (t, dir, files[i][1], files[i][2], error);
  }
  return ok ? g_steal_pointer (&t) : NULL;
}
