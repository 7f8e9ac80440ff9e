/* st-file.c: safetensors reading and atomic streaming writing for the
 * trainer's state file (and the tests' fixtures). Every length, offset and
 * shape of a file is checked before its data is touched. */
#include "train/train-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#define ST_MAX_HEADER (100u * 1024u * 1024u)

struct _StsimStReader {
  char        *path;
  GMappedFile *map;
  const guint8 *data;   /* start of the data section */
  gsize        data_len;
  JsonObject  *header;
  JsonParser  *parser;
};

static int
dtype_size (const char *dtype)
{
  static const struct { const char *name; int size; } t[] = {
    { "F64", 8 }, { "F32", 4 }, { "F16", 2 }, { "BF16", 2 }, { "I64", 8 }, { "I32", 4 },
    { "I16", 2 }, { "I8", 1 }, { "U8", 1 }, { "BOOL", 1 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (t); i++)
    if (strcmp (t[i].name, dtype) == 0)
      return t[i].size;
  return 0;
}

void
stsim_st_reader_free (StsimStReader *r)
{
  if (!r)
    return;
  g_clear_object (&r->parser);
  if (r->map)
    g_mapped_file_unref (r->map);
  g_free (r->path);
  g_free (r);
}

static gboolean
check_entry (StsimStReader *r, const char *name, JsonNode *node, GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node))
    goto bad;
  JsonObject *o = json_node_get_object (node);
  if (!json_object_has_member (o, "dtype") || !json_object_has_member (o, "shape") ||
      !json_object_has_member (o, "data_offsets"))
    goto bad;
  JsonNode *dn = json_object_get_member (o, "dtype");
  if (!JSON_NODE_HOLDS_VALUE (dn) || json_node_get_value_type (dn) != G_TYPE_STRING)
    goto bad;
  int size = dtype_size (json_node_get_string (dn));
  if (!size) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED, "%s: tensor '%s' has unknown dtype '%s'", r->path,
                 name, json_node_get_string (dn));
    return FALSE;
  }
  JsonNode *sn = json_object_get_member (o, "shape"), *on = json_object_get_member (o, "data_offsets");
  if (!JSON_NODE_HOLDS_ARRAY (sn) || !JSON_NODE_HOLDS_ARRAY (on))
    goto bad;
  JsonArray *sa = json_node_get_array (sn), *oa = json_node_get_array (on);
  if (json_array_get_length (sa) > 8 || json_array_get_length (oa) != 2)
    goto bad;
  guint64 numel = 1;
  for (guint i = 0; i < json_array_get_length (sa); i++) {
    JsonNode *e = json_array_get_element (sa, i);
    if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_INT64 || json_node_get_int (e) < 0)
      goto bad;
    guint64 d = (guint64) json_node_get_int (e);
    if (d && numel > G_MAXUINT64 / 16 / d)
      goto bad;
    numel *= d;
  }
  for (guint i = 0; i < 2; i++) {
    JsonNode *e = json_array_get_element (oa, i);
    if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_INT64 || json_node_get_int (e) < 0)
      goto bad;
  }
  guint64 b = json_array_get_int_element (oa, 0), e = json_array_get_int_element (oa, 1);
  if (b > e || e > r->data_len || e - b != numel * (guint64) size) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT,
                 "%s: tensor '%s': data offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                 ") do not match its shape or the file size (truncated file?)",
                 r->path, name, b, e);
    return FALSE;
  }
  return TRUE;
bad:
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT, "%s: malformed header entry for tensor '%s'", r->path,
               name);
  return FALSE;
}

StsimStReader *
stsim_st_reader_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr(StsimStReader) r = g_new0 (StsimStReader, 1);
  GError *local = NULL;
  r->path = g_strdup (path);
  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s is a folder, not a safetensors file", path);
    return NULL;
  }
  if (!(r->map = g_mapped_file_new (path, FALSE, &local))) {
    g_set_error (error, STSIM_ERROR, local->code == G_FILE_ERROR_NOENT ? STSIM_ERROR_NOT_FOUND : STSIM_ERROR_IO,
                 "%s", local->message);
    g_error_free (local);
    return NULL;
  }
  const guint8 *bytes = (const guint8 *) g_mapped_file_get_contents (r->map);
  gsize len = g_mapped_file_get_length (r->map);
  if (len < 8) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT, "%s: too short for a safetensors file (%" G_GSIZE_FORMAT
                 " bytes)", path, len);
    return NULL;
  }
  guint64 hlen = 0;
  for (int i = 7; i >= 0; i--)
    hlen = (hlen << 8) | bytes[i];
  if (hlen < 2 || hlen > ST_MAX_HEADER || hlen > len - 8) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT,
                 "%s: header length %" G_GUINT64_FORMAT " is impossible for a file of %" G_GSIZE_FORMAT " bytes",
                 path, hlen, len);
    return NULL;
  }
  if (!g_utf8_validate_len ((const char *) bytes + 8, hlen, NULL)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT, "%s: header is not UTF-8", path);
    return NULL;
  }
  r->data = bytes + 8 + hlen;
  r->data_len = len - 8 - hlen;
  r->parser = json_parser_new ();
  if (!json_parser_load_from_data (r->parser, (const char *) bytes + 8, hlen, &local)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT, "%s: header JSON: %s", path, local->message);
    g_error_free (local);
    return NULL;
  }
  JsonNode *root = json_parser_get_root (r->parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT, "%s: header is not a JSON object", path);
    return NULL;
  }
  r->header = json_node_get_object (root);
  g_autoptr(GList) members = json_object_get_members (r->header);
  for (GList *l = members; l; l = l->next) {
    const char *name = l->data;
    JsonNode *node = json_object_get_member (r->header, name);
    if (strcmp (name, "__metadata__") == 0) {
      if (!JSON_NODE_HOLDS_OBJECT (node)) {
        g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT, "%s: __metadata__ is not an object", path);
        return NULL;
      }
      continue;
    }
    if (!check_entry (r, name, node, error))
      return NULL;
  }
  return g_steal_pointer (&r);
}

const char *
stsim_st_reader_get_metadata (StsimStReader *r, const char *key)
{
  g_return_val_if_fail (r != NULL && key != NULL, NULL);
  if (!json_object_has_member (r->header, "__metadata__"))
    return NULL;
  JsonObject *md = json_object_get_object_member (r->header, "__metadata__");
  if (!json_object_has_member (md, key))
    return NULL;
  JsonNode *n = json_object_get_member (md, key);
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

gconstpointer
stsim_st_reader_get (StsimStReader *r, const char *name, const char **dtype, int *ndim, gint64 shape[8],
                     gsize *n_bytes, GError **error)
{
  g_return_val_if_fail (r != NULL && name != NULL, NULL);
  if (strcmp (name, "__metadata__") == 0 || !json_object_has_member (r->header, name)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "%s: no tensor '%s'", r->path, name);
    return NULL;
  }
  JsonObject *o = json_object_get_object_member (r->header, name);
  JsonArray *sa = json_object_get_array_member (o, "shape");
  JsonArray *oa = json_object_get_array_member (o, "data_offsets");
  if (dtype)
    *dtype = json_object_get_string_member (o, "dtype");
  if (ndim)
    *ndim = json_array_get_length (sa);
  if (shape)
    for (guint i = 0; i < json_array_get_length (sa); i++)
      shape[i] = json_array_get_int_element (sa, i);
  gint64 b = json_array_get_int_element (oa, 0), e = json_array_get_int_element (oa, 1);
  if (n_bytes)
    *n_bytes = e - b;
  return r->data + b;
}

float *
stsim_st_reader_get_f32 (StsimStReader *r, const char *name, gint64 *numel, GError **error)
{
  const char *dtype;
  gsize n_bytes;
  gconstpointer p = stsim_st_reader_get (r, name, &dtype, NULL, NULL, &n_bytes, error);
  if (!p)
    return NULL;
  gint64 n = n_bytes / dtype_size (dtype);
  float *out = g_new (float, MAX (n, 1));
  if (strcmp (dtype, "F32") == 0)
    memcpy (out, p, n_bytes);
  else if (strcmp (dtype, "F64") == 0)
    for (gint64 i = 0; i < n; i++) {
      double d;
      memcpy (&d, (const guint8 *) p + 8 * i, 8);
      out[i] = (float) d;
    }
  else if (strcmp (dtype, "I64") == 0)
    for (gint64 i = 0; i < n; i++) {
      gint64 d;
      memcpy (&d, (const guint8 *) p + 8 * i, 8);
      out[i] = (float) d;
    }
  else {
    g_free (out);
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED, "%s: tensor '%s' has dtype %s, expected F32", r->path,
                 name, dtype);
    return NULL;
  }
  if (numel)
    *numel = n;
  return out;
}

gint32 *
stsim_st_reader_get_i32 (StsimStReader *r, const char *name, gint64 *numel, GError **error)
{
  const char *dtype;
  gsize n_bytes;
  gconstpointer p = stsim_st_reader_get (r, name, &dtype, NULL, NULL, &n_bytes, error);
  if (!p)
    return NULL;
  int size = dtype_size (dtype);
  gint64 n = n_bytes / size;
  gint32 *out = g_new (gint32, MAX (n, 1));
  if (strcmp (dtype, "I32") == 0)
    memcpy (out, p, n_bytes);
  else if (strcmp (dtype, "I64") == 0)
    for (gint64 i = 0; i < n; i++) {
      gint64 d;
      memcpy (&d, (const guint8 *) p + 8 * i, 8);
      if (d < G_MININT32 || d > G_MAXINT32) {
        g_free (out);
        g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s: tensor '%s' element %" G_GINT64_FORMAT
                     " does not fit in 32 bits", r->path, name, i);
        return NULL;
      }
      out[i] = (gint32) d;
    }
  else {
    g_free (out);
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED, "%s: tensor '%s' has dtype %s, expected an integer",
                 r->path, name, dtype);
    return NULL;
  }
  if (numel)
    *numel = n;
  return out;
}

/* ---- writer ------------------------------------------------------------------ */

typedef struct {
  char         *name;
  char          dtype[8];
  int           ndim;
  gint64        shape[8];
  gconstpointer data;
  gsize         n_bytes;
} StEntry;

struct _StsimStWriter {
  GArray     *entries;   /* StEntry, kept in insertion order */
  GHashTable *metadata;
};

static void
entry_clear (gpointer p)
{
  g_free (((StEntry *) p)->name);
}

StsimStWriter *
stsim_st_writer_new (void)
{
  StsimStWriter *w = g_new0 (StsimStWriter, 1);
  w->entries = g_array_new (FALSE, TRUE, sizeof (StEntry));
  g_array_set_clear_func (w->entries, entry_clear);
  w->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return w;
}

void
stsim_st_writer_free (StsimStWriter *w)
{
  if (!w)
    return;
  g_array_unref (w->entries);
  g_hash_table_unref (w->metadata);
  g_free (w);
}

void
stsim_st_writer_set_metadata (StsimStWriter *w, const char *key, const char *value)
{
  g_return_if_fail (w != NULL && key != NULL && value != NULL);
  g_hash_table_replace (w->metadata, g_strdup (key), g_strdup (value));
}

void
stsim_st_writer_add (StsimStWriter *w, const char *name, const char *dtype, int ndim, const gint64 *shape,
                     gconstpointer data, gsize n_bytes)
{
  g_return_if_fail (w != NULL && name != NULL && dtype_size (dtype) > 0 && ndim >= 0 && ndim <= 8);
  StEntry e = { .name = g_strdup (name), .ndim = ndim, .data = data, .n_bytes = n_bytes };
  g_strlcpy (e.dtype, dtype, sizeof e.dtype);
  for (int i = 0; i < ndim; i++)
    e.shape[i] = shape[i];
  g_array_append_val (w->entries, e);
}

static gboolean
write_all (int fd, const void *buf, gsize n, const char *path, GError **error)
{
  const guint8 *p = buf;
  while (n > 0) {
    ssize_t k = write (fd, p, MIN (n, (gsize) 1 << 30));
    if (k < 0) {
      if (errno == EINTR)
        continue;
      int e = errno;
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "writing %s: %s", path, g_strerror (e));
      return FALSE;
    }
    p += k;
    n -= k;
  }
  return TRUE;
}

gboolean
stsim_st_writer_write (StsimStWriter *w, const char *path, GError **error)
{
  g_return_val_if_fail (w != NULL && path != NULL, FALSE);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  if (g_hash_table_size (w->metadata)) {
    json_builder_set_member_name (b, "__metadata__");
    json_builder_begin_object (b);
    g_autoptr(GList) keys = g_list_sort (g_hash_table_get_keys (w->metadata), (GCompareFunc) strcmp);
    for (GList *l = keys; l; l = l->next) {
      json_builder_set_member_name (b, l->data);
      json_builder_add_string_value (b, g_hash_table_lookup (w->metadata, l->data));
    }
    json_builder_end_object (b);
  }
  guint64 offset = 0;
  for (guint i = 0; i < w->entries->len; i++) {
    StEntry *e = &g_array_index (w->entries, StEntry, i);
    json_builder_set_member_name (b, e->name);
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "dtype");
    json_builder_add_string_value (b, e->dtype);
    json_builder_set_member_name (b, "shape");
    json_builder_begin_array (b);
    for (int d = 0; d < e->ndim; d++)
      json_builder_add_int_value (b, e->shape[d]);
    json_builder_end_array (b);
    json_builder_set_member_name (b, "data_offsets");
    json_builder_begin_array (b);
    json_builder_add_int_value (b, offset);
    json_builder_add_int_value (b, offset + e->n_bytes);
    json_builder_end_array (b);
    json_builder_end_object (b);
    offset += e->n_bytes;
  }
  json_builder_end_object (b);
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  gsize hlen = 0;
  g_autofree char *header = json_generator_to_data (gen, &hlen);
  /* Pad with spaces so that the data section is 8-byte aligned. */
  GString *h = g_string_new_len (header, hlen);
  while ((8 + h->len) % 8)
    g_string_append_c (h, ' ');
  guint8 len8[8];
  for (int i = 0; i < 8; i++)
    len8[i] = (guint8) (((guint64) h->len >> (8 * i)) & 0xff);

  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *tmpl = g_strdup_printf ("%s/.%s.XXXXXX", dir, base);
  int fd = g_mkstemp (tmpl);
  if (fd < 0) {
    int e = errno;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot create a temporary file in %s: %s", dir,
                 g_strerror (e));
    g_string_free (h, TRUE);
    return FALSE;
  }
  gboolean ok = write_all (fd, len8, 8, path, error) && write_all (fd, h->str, h->len, path, error);
  g_string_free (h, TRUE);
  for (guint i = 0; ok && i < w->entries->len; i++) {
    StEntry *e = &g_array_index (w->entries, StEntry, i);
    ok = write_all (fd, e->data, e->n_bytes, path, error);
  }
  /* fsync before rename: after a crash the name points at complete data. */
  if (ok && fsync (fd) != 0) {
    int e = errno;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "fsync %s: %s", tmpl, g_strerror (e));
    ok = FALSE;
  }
  close (fd);
  if (ok && g_rename (tmpl, path) != 0) {
    int e = errno;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "renaming %s to %s: %s", tmpl, path, g_strerror (e));
    ok = FALSE;
  }
  if (!ok)
    g_unlink (tmpl);
  return ok;
}

gboolean
stsim_train_write_file (const char *path, const char *contents, gssize len, GError **error)
{
  GError *local = NULL;
  if (!g_file_set_contents (path, contents, len, &local)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "%s", local->message);
    g_error_free (local);
    return FALSE;
  }
  return TRUE;
}
