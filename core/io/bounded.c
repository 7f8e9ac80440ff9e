/* bounded.c: size-limited reads and depth-limited JSON (bounded.h). */
#include "io/bounded.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <glib/gstdio.h>

#define RAISE_HINT "set STSIM_MAX_INPUT_MB to raise it"

gsize
stsim_input_limit (gsize limit)
{
  const char *env = g_getenv ("STSIM_MAX_INPUT_MB");
  guint64 mb = 0;
  if (env && g_ascii_string_to_unsigned (env, 10, 1, G_MAXSIZE / STSIM_MIB, &mb, NULL))
    return (gsize) mb * STSIM_MIB;
  return limit;
}

static const char *
special_kind (mode_t m)
{
  if (S_ISCHR (m))
    return "a character device";
  if (S_ISBLK (m))
    return "a block device";
  if (S_ISSOCK (m))
    return "a socket";
  return NULL;
}

/* Reads @fd to its end, or fails once more than @limit bytes came;
 * @size_hint (0: unknown) is the expected length. */
static gboolean
read_fd (int fd, const char *path, gsize limit, gsize size_hint, char **contents, gsize *length, GError **error)
{
  gsize cap = size_hint ? MIN (size_hint + 2, limit + 2) : 0, len = 0;
  g_autofree char *buf = cap ? g_malloc (cap) : NULL;
  for (;;) {
    if (len > limit) {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                   "%s: more than %" G_GSIZE_FORMAT " MiB read, over the limit for this input "
                   "(an endless stream such as /dev/zero?); " RAISE_HINT, path, limit / STSIM_MIB);
      return FALSE;
    }
    if (len + 1 >= cap) {
      cap = MIN (MAX (cap * 2, 65536), limit + 2);
      buf = g_realloc (buf, cap);
    }
    gssize got = read (fd, buf + len, cap - len - 1);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      int e = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e), "Failed to read from file “%s”: %s", path,
                   g_strerror (e));
      return FALSE;
    }
    if (got == 0)
      break;
    len += (gsize) got;
  }
  buf[len] = '\0';
  *contents = g_steal_pointer (&buf);
  if (length)
    *length = len;
  return TRUE;
}

gboolean
stsim_file_get_contents (const char *path, gsize limit, char **contents, gsize *length, GError **error)
{
  g_return_val_if_fail (path != NULL && contents != NULL, FALSE);
  limit = stsim_input_limit (limit);
  GStatBuf st;
  /* stat() before open(): opening a FIFO blocks, and a device is never a file. */
  if (g_stat (path, &st) != 0) {
    int e = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e), "Failed to open file “%s”: %s", path,
                 g_strerror (e));
    return FALSE;
  }
  if (S_ISDIR (st.st_mode)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_ISDIR, "%s is a folder, not a file", path);
    return FALSE;
  }
  const char *kind = special_kind (st.st_mode);
  if (kind) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s is %s, not a regular file", path, kind);
    return FALSE;
  }
  if (S_ISREG (st.st_mode) && (guint64) st.st_size > (guint64) limit) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                 "%s is %" G_GUINT64_FORMAT " bytes, over the %" G_GSIZE_FORMAT " MiB limit for this input; "
                 RAISE_HINT, path, (guint64) st.st_size, limit / STSIM_MIB);
    return FALSE;
  }
  int fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) {
    int e = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e), "Failed to open file “%s”: %s", path,
                 g_strerror (e));
    return FALSE;
  }
  /* A regular file's size sizes the buffer (one allocation); streams grow it. */
  gsize hint = S_ISREG (st.st_mode) ? (gsize) st.st_size : 0;
  gboolean ok = read_fd (fd, path, limit, hint, contents, length, error);
  close (fd);
  return ok;
}

gboolean
stsim_stream_read_line (FILE *f, const char *name, guint64 lineno, gsize limit, GString *line, GError **error)
{
  int c;
  limit = stsim_input_limit (limit);
  g_string_truncate (line, 0);
  /* getc, not fgets: a NUL byte must count towards the limit too. */
  while ((c = getc (f)) != EOF && c != '\n') {
    if (line->len >= limit) {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                   "%s:%" G_GUINT64_FORMAT ": line longer than %" G_GSIZE_FORMAT " MiB (is the input text?); "
                   RAISE_HINT, name, lineno, limit / STSIM_MIB);
      return FALSE;
    }
    g_string_append_c (line, (char) c);
  }
  if (ferror (f)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_IO, "%s:%" G_GUINT64_FORMAT ": read failed", name, lineno);
    return FALSE;
  }
  return c == '\n' || line->len > 0;
}

int
stsim_json_depth (const char *s, gsize n, int stop)
{
  int depth = 0, max = 0;
  gboolean in_str = FALSE;
  for (gsize i = 0; i < n; i++) {
    char c = s[i];
    if (in_str) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_str = FALSE;
    } else if (c == '"') {
      in_str = TRUE;
    } else if (c == '[' || c == '{') {
      if (++depth > max && (max = depth) > stop)
        return stop + 1;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return max;
}

gboolean
stsim_json_load_data (JsonParser *parser, const char *data, gssize len, GError **error)
{
  gsize n = len < 0 ? strlen (data) : (gsize) len;
  if (stsim_json_depth (data, n, STSIM_JSON_MAX_DEPTH) > STSIM_JSON_MAX_DEPTH) {
    g_set_error (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA,
                 "JSON arrays and objects nest deeper than %d levels", STSIM_JSON_MAX_DEPTH);
    return FALSE;
  }
  return json_parser_load_from_data (parser, data, (gssize) n, error);
}

gboolean
stsim_json_load_file (JsonParser *parser, const char *path, gsize limit, GError **error)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  if (!stsim_file_get_contents (path, limit, &data, &len, error))
    return FALSE;
  return stsim_json_load_data (parser, data, (gssize) len, error);
}

/* Outside strings: drops ".0" after the exponent digits of a number, and
 * writes a non-finite number (json-glib prints "inf.0", "-nan.0"; JSON has
 * no such thing) as null. */
static char *
fix_numbers (const char *r)
{
  GString *w = g_string_sized_new (strlen (r) + 16);
  gboolean in_str = FALSE;
  while (*r) {
    char c = *r;
    if (in_str) {
      g_string_append_c (w, *r++);
      if (c == '\\' && *r)
        g_string_append_c (w, *r++);
      else if (c == '"')
        in_str = FALSE;
      continue;
    }
    in_str = c == '"';
    const char *t = r + (c == '-');
    if (g_ascii_strncasecmp (t, "inf", 3) == 0 || g_ascii_strncasecmp (t, "nan", 3) == 0) {
      r = t + 3;
      if (r[0] == '.' && r[1] == '0')
        r += 2;
      g_string_append (w, "null");
      continue;
    }
    g_string_append_c (w, *r++);
    if ((c == 'e' || c == 'E') && w->len > 1 && g_ascii_isdigit (w->str[w->len - 2])) {
      if (*r == '+' || *r == '-')
        g_string_append_c (w, *r++);
      while (g_ascii_isdigit (*r))
        g_string_append_c (w, *r++);
      if (r[0] == '.' && r[1] == '0' && !g_ascii_isdigit (r[2]))
        r += 2;
    }
  }
  return g_string_free (w, FALSE);
}

char *
stsim_json_to_data (JsonNode *root, gboolean pretty, gsize *len)
{
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, pretty);
  g_autofree char *raw = json_generator_to_data (gen, NULL);
  char *text = fix_numbers (raw);
  if (len)
    *len = strlen (text);
  return text;
}
