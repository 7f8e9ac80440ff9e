/* safetensors.c: a validating reader and an atomic writer for HF
 * safetensors files (stsim-safetensors.h).
 *
 * Reader discipline (after ggml's GGUF loader): nothing in the file is trusted
 * until checked. The header length is bounded by the file size and a cap
 * before anything is parsed; the JSON nesting depth is bounded before
 * json-glib (a recursive parser) sees it; every shape product and byte size
 * is computed with overflow checks; byte ranges are checked against the data
 * section and against each other before any tensor is read. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include "stsim/stsim-safetensors.h"
#include "io/bounded.h"

/* Data are little-endian in the file; the reader and writer copy them as is. */
G_STATIC_ASSERT (G_BYTE_ORDER == G_LITTLE_ENDIAN);

/* HF's safetensors refuses headers above 100 MB; so do we. */
#define HEADER_CAP 100000000u
/* Our JSON is two levels deep; anything much deeper is not a safetensors header. */
#define MAX_JSON_DEPTH 8

static const struct {
  const char *name;
  gsize size;
} dtypes[STSIM_DTYPE_N_TYPES] = {
  [STSIM_DTYPE_BOOL] = { "BOOL", 1 },
  [STSIM_DTYPE_U8] = { "U8", 1 },
  [STSIM_DTYPE_I8] = { "I8", 1 },
  [STSIM_DTYPE_F8_E4M3] = { "F8_E4M3", 1 },
  [STSIM_DTYPE_F8_E5M2] = { "F8_E5M2", 1 },
  [STSIM_DTYPE_I16] = { "I16", 2 },
  [STSIM_DTYPE_U16] = { "U16", 2 },
  [STSIM_DTYPE_F16] = { "F16", 2 },
  [STSIM_DTYPE_BF16] = { "BF16", 2 },
  [STSIM_DTYPE_I32] = { "I32", 4 },
  [STSIM_DTYPE_U32] = { "U32", 4 },
  [STSIM_DTYPE_F32] = { "F32", 4 },
  [STSIM_DTYPE_F64] = { "F64", 8 },
  [STSIM_DTYPE_I64] = { "I64", 8 },
  [STSIM_DTYPE_U64] = { "U64", 8 },
};

const char *
stsim_dtype_name (StsimDtype dtype)
{
  return (guint) dtype < STSIM_DTYPE_N_TYPES ? dtypes[dtype].name : NULL;
}

gsize
stsim_dtype_size (StsimDtype dtype)
{
  return (guint) dtype < STSIM_DTYPE_N_TYPES ? dtypes[dtype].size : 0;
}

gboolean
stsim_dtype_readable_as_f32 (StsimDtype dtype)
{
  switch (dtype) {
  case STSIM_DTYPE_F32: case STSIM_DTYPE_F16: case STSIM_DTYPE_BF16:
  case STSIM_DTYPE_F64: case STSIM_DTYPE_I64: case STSIM_DTYPE_I32:
    return TRUE;
  default:
    return FALSE;
  }
}

static gboolean
dtype_from_name (const char *name, StsimDtype *out)
{
  for (int i = 0; i < STSIM_DTYPE_N_TYPES; i++)
    if (strcmp (dtypes[i].name, name) == 0) {
      *out = (StsimDtype) i;
      return TRUE;
    }
  return FALSE;
}

struct _StsimSafetensors {
  char            *path;
  GBytes          *bytes;
  const guint8    *payload;       /* data section */
  guint64          payload_size;
  StsimTensorInfo *infos;         /* data order */
  gsize            n;
  char           **names;         /* NULL-terminated, data order; infos[i].name aliases names[i] */
  GHashTable      *by_name;       /* name -> index + 1 */
  char           **meta_keys;     /* NULL-terminated, header order */
  GHashTable      *meta;          /* key -> value (strings owned by the table) */
};

void
stsim_safetensors_free (StsimSafetensors *st)
{
  if (!st)
    return;
  g_free (st->path);
  if (st->bytes)
    g_bytes_unref (st->bytes);
  g_free (st->infos);
  g_strfreev (st->names);
  if (st->by_name)
    g_hash_table_unref (st->by_name);
  g_strfreev (st->meta_keys);
  if (st->meta)
    g_hash_table_unref (st->meta);
  g_free (st);
}

static char *
shape_text (const gint64 *shape, guint n)
{
  GString *s = g_string_new ("[");
  for (guint i = 0; i < n; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "", shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

/* A non-negative JSON integer. */
static gboolean
node_uint (JsonNode *node, guint64 *out)
{
  if (!node || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  gint64 v = json_node_get_int (node);
  if (v < 0)
    return FALSE;
  *out = (guint64) v;
  return TRUE;
}

#define FAIL(...) do { g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT, __VA_ARGS__); return FALSE; } while (0)

static gboolean
parse_tensor (StsimSafetensors *st, const char *name, JsonNode *node, StsimTensorInfo *info, GError **error)
{
  const char *path = st->path;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    FAIL ("%s: tensor '%s': expected an object {\"dtype\", \"shape\", \"data_offsets\"}", path, name);
  JsonObject *obj = json_node_get_object (node);
  g_autoptr(GList) members = json_object_get_members (obj);
  for (GList *l = members; l; l = l->next)
    if (strcmp (l->data, "dtype") && strcmp (l->data, "shape") && strcmp (l->data, "data_offsets"))
      FAIL ("%s: tensor '%s': unknown key '%s' (expected dtype, shape, data_offsets)", path, name,
            (const char *) l->data);

  JsonNode *dt = json_object_get_member (obj, "dtype");
  if (!dt || !JSON_NODE_HOLDS_VALUE (dt) || json_node_get_value_type (dt) != G_TYPE_STRING)
    FAIL ("%s: tensor '%s': \"dtype\" is missing or not a string", path, name);
  if (!dtype_from_name (json_node_get_string (dt), &info->dtype)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED,
                 "%s: tensor '%s': unknown dtype '%s' (known: BOOL U8 I8 F8_E4M3 F8_E5M2 I16 U16 F16 BF16 "
                 "I32 U32 F32 F64 I64 U64)", path, name, json_node_get_string (dt));
    return FALSE;
  }

  JsonNode *sh = json_object_get_member (obj, "shape");
  if (!sh || !JSON_NODE_HOLDS_ARRAY (sh))
    FAIL ("%s: tensor '%s': \"shape\" is missing or not an array", path, name);
  JsonArray *sa = json_node_get_array (sh);
  guint nd = json_array_get_length (sa);
  if (nd > STSIM_SAFETENSORS_MAX_DIMS)
    FAIL ("%s: tensor '%s': %u dimensions, at most %d are supported", path, name, nd, STSIM_SAFETENSORS_MAX_DIMS);
  info->n_dims = nd;
  guint64 numel = 1;
  gboolean overflow = FALSE;
  for (guint i = 0; i < nd; i++) {
    guint64 d;
    if (!node_uint (json_array_get_element (sa, i), &d))
      FAIL ("%s: tensor '%s': shape[%u] is not a non-negative integer", path, name, i);
    info->shape[i] = (gint64) d;
    if (__builtin_mul_overflow (numel, d, &numel))
      overflow = TRUE;
  }
  guint64 n_bytes = 0;
  if (overflow || __builtin_mul_overflow (numel, (guint64) dtypes[info->dtype].size, &n_bytes)) {
    g_autofree char *s = shape_text (info->shape, nd);
    FAIL ("%s: tensor '%s': shape %s overflows 64-bit sizes", path, name, s);
  }
  info->n_elements = numel;
  info->n_bytes = n_bytes;

  JsonNode *off = json_object_get_member (obj, "data_offsets");
  if (!off || !JSON_NODE_HOLDS_ARRAY (off) || json_array_get_length (json_node_get_array (off)) != 2)
    FAIL ("%s: tensor '%s': \"data_offsets\" must be [begin, end]", path, name);
  guint64 b, e;
  if (!node_uint (json_array_get_element (json_node_get_array (off), 0), &b) ||
      !node_uint (json_array_get_element (json_node_get_array (off), 1), &e))
    FAIL ("%s: tensor '%s': data_offsets must be non-negative integers", path, name);
  if (b > e)
    FAIL ("%s: tensor '%s': data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "] begin after end",
          path, name, b, e);
  if (e > st->payload_size)
    FAIL ("%s: tensor '%s': data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "] run past the end of the "
          "data section (%" G_GUINT64_FORMAT " bytes; truncated file?)", path, name, b, e, st->payload_size);
  if (e - b != n_bytes) {
    g_autofree char *s = shape_text (info->shape, nd);
    FAIL ("%s: tensor '%s': shape %s of %s needs %" G_GUINT64_FORMAT " bytes but data_offsets [%" G_GUINT64_FORMAT
          ", %" G_GUINT64_FORMAT "] span %" G_GUINT64_FORMAT, path, name, s, dtypes[info->dtype].name,
          n_bytes, b, e, e - b);
  }
  info->offset = b;
  return TRUE;
}

static int
cmp_offset (gconstpointer a, gconstpointer b)
{
  const StsimTensorInfo *x = a, *y = b;
  if (x->offset != y->offset)
    return x->offset < y->offset ? -1 : 1;
  if (x->n_bytes != y->n_bytes)
    return x->n_bytes < y->n_bytes ? -1 : 1;
  return strcmp (x->name, y->name);
}

static gboolean
parse_header (StsimSafetensors *st, GError **error)
{
  gsize size = 0;
  const guint8 *data = g_bytes_get_data (st->bytes, &size);
  const char *path = st->path;

  if (size < 8)
    FAIL ("%s: truncated: %" G_GSIZE_FORMAT " bytes, a safetensors file starts with an 8-byte header length",
          path, size);
  guint64 n = 0;
  for (int i = 7; i >= 0; i--)
    n = (n << 8) | data[i];
  if (n > HEADER_CAP)
    FAIL ("%s: header length %" G_GUINT64_FORMAT " exceeds the %u-byte limit (not a safetensors file?)",
          path, n, HEADER_CAP);
  if (n > size - 8)
    FAIL ("%s: header length %" G_GUINT64_FORMAT " runs past the end of the file (%" G_GSIZE_FORMAT
          " bytes; truncated file?)", path, n, size);
  if (n == 0)
    FAIL ("%s: empty header (expected a JSON object)", path);
  const char *hdr = (const char *) data + 8;
  if (!g_utf8_validate_len (hdr, n, NULL))
    FAIL ("%s: the header is not UTF-8 JSON (not a safetensors file?)", path);
  if (stsim_json_depth (hdr, n, MAX_JSON_DEPTH) > MAX_JSON_DEPTH)
    FAIL ("%s: the header JSON nests deeper than %d levels", path, MAX_JSON_DEPTH);
  st->payload = data + 8 + n;
  st->payload_size = size - 8 - n;

  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GError) local = NULL;
  if (!json_parser_load_from_data (parser, hdr, (gssize) n, &local))
    FAIL ("%s: the header is not valid JSON: %s", path, local->message);
  JsonNode *root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root))
    FAIL ("%s: the header is not a JSON object", path);
  JsonObject *obj = json_node_get_object (root);

  g_autoptr(GList) members = json_object_get_members (obj);
  guint n_members = g_list_length (members);
  st->infos = g_new0 (StsimTensorInfo, n_members);
  st->names = g_new0 (char *, n_members + 1);
  st->meta = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  GPtrArray *keys = g_ptr_array_new ();
  gsize nt = 0;
  gboolean ok = TRUE;
  for (GList *l = members; l && ok; l = l->next) {
    const char *name = l->data;
    JsonNode *node = json_object_get_member (obj, name);
    if (strcmp (name, "__metadata__") == 0) {
      if (!JSON_NODE_HOLDS_OBJECT (node)) {
        g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT, "%s: \"__metadata__\" must be an object of strings",
                     path);
        ok = FALSE;
        break;
      }
      JsonObject *m = json_node_get_object (node);
      g_autoptr(GList) mk = json_object_get_members (m);
      for (GList *k = mk; k; k = k->next) {
        JsonNode *v = json_object_get_member (m, k->data);
        if (!JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_STRING) {
          g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT,
                       "%s: __metadata__ key '%s': values must be strings", path, (const char *) k->data);
          ok = FALSE;
          break;
        }
        char *key = g_strdup (k->data);
        g_hash_table_insert (st->meta, key, g_strdup (json_node_get_string (v)));
        g_ptr_array_add (keys, key);
      }
      continue;
    }
    if (name[0] == '\0') {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT, "%s: a tensor has an empty name", path);
      ok = FALSE;
      break;
    }
    st->names[nt] = g_strdup (name);
    st->infos[nt].name = st->names[nt];
    if (!parse_tensor (st, name, node, &st->infos[nt], error))
      ok = FALSE;
    nt++;
  }
  g_ptr_array_add (keys, NULL);
  /* keys' strings are owned by the hash table; keep a copy of the list. */
  st->meta_keys = g_strdupv ((char **) keys->pdata);
  g_ptr_array_free (keys, TRUE);
  st->n = nt;
  if (!ok)
    return FALSE;

  /* Sort into data order (names array follows), then check that the ranges
   * tile the data section exactly: no overlap, no gap, nothing after. */
  if (nt > 1)  /* qsort (NULL, 0, ...) is undefined */
    qsort (st->infos, nt, sizeof *st->infos, cmp_offset);
  for (gsize i = 0; i < nt; i++)
    st->names[i] = (char *) st->infos[i].name;
  guint64 end = 0;
  for (gsize i = 0; i < nt; i++) {
    const StsimTensorInfo *t = &st->infos[i];
    if (i > 0 && t->offset < end)
      FAIL ("%s: tensors '%s' [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT ") and '%s' [%" G_GUINT64_FORMAT ", %"
            G_GUINT64_FORMAT ") overlap", path, st->infos[i - 1].name, st->infos[i - 1].offset, end,
            t->name, t->offset, t->offset + t->n_bytes);
    if (t->offset > end)
      FAIL ("%s: bytes [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT ") of the data section belong to no tensor "
            "(before '%s')", path, end, t->offset, t->name);
    end = t->offset + t->n_bytes;
  }
  if (end != st->payload_size)
    FAIL ("%s: the data section has %" G_GUINT64_FORMAT " bytes after the last tensor (expected %" G_GUINT64_FORMAT
          " bytes in all)", path, st->payload_size - end, end);

  st->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  for (gsize i = 0; i < nt; i++)
    g_hash_table_insert (st->by_name, st->names[i], GSIZE_TO_POINTER (i + 1));
  return TRUE;
}

StsimSafetensors *
stsim_safetensors_open_bytes (GBytes *bytes, const char *label, GError **error)
{
  g_return_val_if_fail (bytes != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  StsimSafetensors *st = g_new0 (StsimSafetensors, 1);
  st->path = g_strdup (label ? label : "<memory>");
  st->bytes = g_bytes_ref (bytes);
  if (!parse_header (st, error)) {
    stsim_safetensors_free (st);
    return NULL;
  }
  return st;
}

StsimSafetensors *
stsim_safetensors_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* Mapping a FIFO blocks and a device is no file: only regular files. */
  GStatBuf sb;
  if (g_stat (path, &sb) == 0 && !S_ISREG (sb.st_mode)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "%s: cannot open: not a regular file (%s)", path,
                 S_ISDIR (sb.st_mode) ? "a folder" : S_ISFIFO (sb.st_mode) ? "a FIFO" : "a device or socket");
    return NULL;
  }
  g_autoptr(GError) local = NULL;
  GMappedFile *mf = g_mapped_file_new (path, FALSE, &local);
  if (!mf) {
    g_set_error (error, STSIM_ERROR,
                 g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? STSIM_ERROR_NOT_FOUND : STSIM_ERROR_IO,
                 "%s: cannot open: %s", path, local->message);
    return NULL;
  }
  GBytes *bytes = g_mapped_file_get_bytes (mf);
  g_mapped_file_unref (mf);
  StsimSafetensors *st = stsim_safetensors_open_bytes (bytes, path, error);
  g_bytes_unref (bytes);
  return st;
}

const char *
stsim_safetensors_get_path (const StsimSafetensors *st)
{
  g_return_val_if_fail (st != NULL, NULL);
  return st->path;
}

const char *const *
stsim_safetensors_list (const StsimSafetensors *st, gsize *n_out)
{
  g_return_val_if_fail (st != NULL, NULL);
  if (n_out)
    *n_out = st->n;
  return (const char *const *) st->names;
}

const StsimTensorInfo *
stsim_safetensors_get_info (const StsimSafetensors *st, const char *name)
{
  g_return_val_if_fail (st != NULL && name != NULL, NULL);
  gsize i = GPOINTER_TO_SIZE (g_hash_table_lookup (st->by_name, name));
  return i ? &st->infos[i - 1] : NULL;
}

static const StsimTensorInfo *
lookup_or_error (const StsimSafetensors *st, const char *name, GError **error)
{
  const StsimTensorInfo *t = stsim_safetensors_get_info (st, name);
  if (!t)
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "%s: no tensor '%s' (the file has %" G_GSIZE_FORMAT
                 " tensors)", st->path, name, st->n);
  return t;
}

gconstpointer
stsim_safetensors_get_data (const StsimSafetensors *st, const char *name, gsize *n_bytes, GError **error)
{
  g_return_val_if_fail (st != NULL && name != NULL, NULL);
  const StsimTensorInfo *t = lookup_or_error (st, name, error);
  if (!t)
    return NULL;
  if (n_bytes)
    *n_bytes = t->n_bytes;
  return st->payload + t->offset;
}

static gboolean
check_shape (const StsimSafetensors *st, const StsimTensorInfo *t, const gint64 *shape, guint n_dims, GError **error)
{
  gboolean same = t->n_dims == n_dims;
  for (guint i = 0; same && i < n_dims; i++)
    same = t->shape[i] == shape[i];
  if (!same) {
    g_autofree char *want = shape_text (shape, n_dims);
    g_autofree char *have = shape_text (t->shape, t->n_dims);
    FAIL ("%s: tensor '%s' has shape %s, expected %s", st->path, t->name, have, want);
  }
  return TRUE;
}

/* IEEE binary16 -> binary32, exact for every value (subnormals, inf, NaN payloads). */
static inline float
half_to_float (guint16 h)
{
  guint32 sign = (guint32) (h >> 15) << 31, exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        exp--;
      }
      bits = sign | (exp << 23) | ((mant & 0x3FF) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  memcpy (&f, &bits, 4);
  return f;
}

gboolean
stsim_safetensors_read_f32 (const StsimSafetensors *st, const char *name, const gint64 *shape, guint n_dims,
                            float *out, GError **error)
{
  g_return_val_if_fail (st != NULL && name != NULL, FALSE);
  g_return_val_if_fail (shape != NULL || n_dims == 0, FALSE);
  g_return_val_if_fail (out != NULL, FALSE);
  const StsimTensorInfo *t = lookup_or_error (st, name, error);
  if (!t || !check_shape (st, t, shape, n_dims, error))
    return FALSE;
  const guint8 *src = st->payload + t->offset;
  guint64 n = t->n_elements;
  switch (t->dtype) {
  case STSIM_DTYPE_F32:
    memcpy (out, src, n * 4);
    break;
  case STSIM_DTYPE_F16:
    for (guint64 i = 0; i < n; i++) {
      guint16 h;
      memcpy (&h, src + 2 * i, 2);
      out[i] = half_to_float (h);
    }
    break;
  case STSIM_DTYPE_BF16:
    for (guint64 i = 0; i < n; i++) {
      guint16 h;
      memcpy (&h, src + 2 * i, 2);
      guint32 bits = (guint32) h << 16;
      memcpy (&out[i], &bits, 4);
    }
    break;
  case STSIM_DTYPE_F64:
    for (guint64 i = 0; i < n; i++) {
      double d;
      memcpy (&d, src + 8 * i, 8);
      out[i] = (float) d;
    }
    break;
  case STSIM_DTYPE_I64:
    for (guint64 i = 0; i < n; i++) {
      gint64 v;
      memcpy (&v, src + 8 * i, 8);
      out[i] = (float) v;
    }
    break;
  case STSIM_DTYPE_I32:
    for (guint64 i = 0; i < n; i++) {
      gint32 v;
      memcpy (&v, src + 4 * i, 4);
      out[i] = (float) v;
    }
    break;
  default:
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED,
                 "%s: tensor '%s' has dtype %s, which cannot be read as fp32 (F32 F16 BF16 F64 I64 I32 can)",
                 st->path, t->name, dtypes[t->dtype].name);
    return FALSE;
  }
  return TRUE;
}

gboolean
stsim_safetensors_read_i64 (const StsimSafetensors *st, const char *name, const gint64 *shape, guint n_dims,
                            gint64 *out, GError **error)
{
  g_return_val_if_fail (st != NULL && name != NULL, FALSE);
  g_return_val_if_fail (shape != NULL || n_dims == 0, FALSE);
  g_return_val_if_fail (out != NULL, FALSE);
  const StsimTensorInfo *t = lookup_or_error (st, name, error);
  if (!t || !check_shape (st, t, shape, n_dims, error))
    return FALSE;
  const guint8 *src = st->payload + t->offset;
  if (t->dtype == STSIM_DTYPE_I64) {
    memcpy (out, src, t->n_elements * 8);
  } else if (t->dtype == STSIM_DTYPE_I32) {
    for (guint64 i = 0; i < t->n_elements; i++) {
      gint32 v;
      memcpy (&v, src + 4 * i, 4);
      out[i] = v;
    }
  } else {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED,
                 "%s: tensor '%s' has dtype %s, expected I64 or I32", st->path, t->name, dtypes[t->dtype].name);
    return FALSE;
  }
  return TRUE;
}

/* Every element of @name, as read_f32 (@as_f32) or read_i64 would give them. */
static gpointer
dup_tensor (const StsimSafetensors *st, const char *name, gboolean as_f32, gsize *n_out, GError **error)
{
  g_return_val_if_fail (st != NULL && name != NULL, NULL);
  const StsimTensorInfo *t = lookup_or_error (st, name, error);
  if (!t)
    return NULL;
  /* +1: a tensor with a zero dimension still yields a non-NULL array. */
  gpointer out = g_malloc_n (t->n_elements + 1, as_f32 ? sizeof (float) : sizeof (gint64));
  gboolean ok = as_f32 ? stsim_safetensors_read_f32 (st, name, t->shape, t->n_dims, out, error)
                       : stsim_safetensors_read_i64 (st, name, t->shape, t->n_dims, out, error);
  if (!ok) {
    g_free (out);
    return NULL;
  }
  if (n_out)
    *n_out = t->n_elements;
  return out;
}

float *
stsim_safetensors_dup_f32 (const StsimSafetensors *st, const char *name, gsize *n_out, GError **error)
{
  return dup_tensor (st, name, TRUE, n_out, error);
}

gint64 *
stsim_safetensors_dup_i64 (const StsimSafetensors *st, const char *name, gsize *n_out, GError **error)
{
  return dup_tensor (st, name, FALSE, n_out, error);
}

const char *
stsim_safetensors_get_metadata (const StsimSafetensors *st, const char *key)
{
  g_return_val_if_fail (st != NULL && key != NULL, NULL);
  return g_hash_table_lookup (st->meta, key);
}

const char *const *
stsim_safetensors_metadata_keys (const StsimSafetensors *st, gsize *n_out)
{
  g_return_val_if_fail (st != NULL, NULL);
  if (n_out)
    *n_out = g_strv_length (st->meta_keys);
  return (const char *const *) st->meta_keys;
}

/* ---- writer ------------------------------------------------------------ */

typedef struct {
  char         *name;
  StsimDtype    dtype;
  guint         n_dims;
  gint64        shape[STSIM_SAFETENSORS_MAX_DIMS];
  gconstpointer data;
  guint64       n_bytes;
} WriterEntry;

struct _StsimSafetensorsWriter {
  GArray     *entries;    /* WriterEntry */
  GHashTable *names;
  GPtrArray  *meta_keys;  /* insertion order; strings owned by meta */
  GHashTable *meta;
};

static void
writer_entry_clear (gpointer p)
{
  g_free (((WriterEntry *) p)->name);
}

StsimSafetensorsWriter *
stsim_safetensors_writer_new (void)
{
  StsimSafetensorsWriter *w = g_new0 (StsimSafetensorsWriter, 1);
  w->entries = g_array_new (FALSE, FALSE, sizeof (WriterEntry));
  g_array_set_clear_func (w->entries, writer_entry_clear);
  w->names = g_hash_table_new (g_str_hash, g_str_equal);
  w->meta_keys = g_ptr_array_new ();
  w->meta = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return w;
}

void
stsim_safetensors_writer_free (StsimSafetensorsWriter *w)
{
  if (!w)
    return;
  g_hash_table_unref (w->names);
  g_array_unref (w->entries);
  g_ptr_array_unref (w->meta_keys);
  g_hash_table_unref (w->meta);
  g_free (w);
}

static gboolean
writer_add (StsimSafetensorsWriter *w, const char *name, StsimDtype dtype, const gint64 *shape, guint n_dims,
            gconstpointer data, GError **error)
{
  g_return_val_if_fail (w != NULL && name != NULL, FALSE);
  g_return_val_if_fail (shape != NULL || n_dims == 0, FALSE);
  if (name[0] == '\0' || strcmp (name, "__metadata__") == 0 || !g_utf8_validate (name, -1, NULL)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "tensor name '%s' is not allowed", name);
    return FALSE;
  }
  if (g_hash_table_contains (w->names, name)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "tensor '%s' is added twice", name);
    return FALSE;
  }
  if (n_dims > STSIM_SAFETENSORS_MAX_DIMS) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "tensor '%s': %u dimensions, at most %d",
                 name, n_dims, STSIM_SAFETENSORS_MAX_DIMS);
    return FALSE;
  }
  WriterEntry e = { .dtype = dtype, .n_dims = n_dims, .data = data };
  guint64 numel = 1;
  for (guint i = 0; i < n_dims; i++) {
    if (shape[i] < 0 || __builtin_mul_overflow (numel, (guint64) shape[i], &numel)) {
      g_autofree char *s = shape_text (shape, n_dims);
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "tensor '%s': invalid shape %s", name, s);
      return FALSE;
    }
    e.shape[i] = shape[i];
  }
  if (__builtin_mul_overflow (numel, (guint64) dtypes[dtype].size, &e.n_bytes)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "tensor '%s': size overflows", name);
    return FALSE;
  }
  g_return_val_if_fail (data != NULL || e.n_bytes == 0, FALSE);
  e.name = g_strdup (name);
  g_array_append_val (w->entries, e);
  g_hash_table_add (w->names, e.name);
  return TRUE;
}

gboolean
stsim_safetensors_writer_add_f32 (StsimSafetensorsWriter *w, const char *name, const gint64 *shape, guint n_dims,
                                  const float *data, GError **error)
{
  return writer_add (w, name, STSIM_DTYPE_F32, shape, n_dims, data, error);
}

gboolean
stsim_safetensors_writer_add_i64 (StsimSafetensorsWriter *w, const char *name, const gint64 *shape, guint n_dims,
                                  const gint64 *data, GError **error)
{
  return writer_add (w, name, STSIM_DTYPE_I64, shape, n_dims, data, error);
}

gboolean
stsim_safetensors_writer_set_metadata (StsimSafetensorsWriter *w, const char *key, const char *value,
                                       GError **error)
{
  g_return_val_if_fail (w != NULL && key != NULL && value != NULL, FALSE);
  if (!g_utf8_validate (key, -1, NULL) || !g_utf8_validate (value, -1, NULL)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_ENCODING, "metadata key or value is not UTF-8");
    return FALSE;
  }
  /* insert() keeps the existing key string when @key is already there, so
   * the order list stays valid. */
  if (!g_hash_table_contains (w->meta, key)) {
    char *k = g_strdup (key);
    g_hash_table_insert (w->meta, k, g_strdup (value));
    g_ptr_array_add (w->meta_keys, k);
  } else {
    g_hash_table_insert (w->meta, g_strdup (key), g_strdup (value));
  }
  return TRUE;
}

static void
json_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (const guchar *p = (const guchar *) s; *p; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_printf (out, "\\%c", *p);
    else if (*p < 0x20)
      g_string_append_printf (out, "\\u%04x", *p);
    else
      g_string_append_c (out, (char) *p);
  }
  g_string_append_c (out, '"');
}

static int
cmp_writer_entry (gconstpointer a, gconstpointer b)
{
  const WriterEntry *x = a, *y = b;
  gsize sx = dtypes[x->dtype].size, sy = dtypes[y->dtype].size;
  if (sx != sy)
    return sx > sy ? -1 : 1;
  return strcmp (x->name, y->name);
}

static gboolean
write_all (int fd, const void *buf, gsize n)
{
  const guint8 *p = buf;
  while (n > 0) {
    gsize chunk = MIN (n, (gsize) 1 << 30);
    ssize_t k = write (fd, p, chunk);
    if (k < 0) {
      if (errno == EINTR)
        continue;
      return FALSE;
    }
    p += k;
    n -= (gsize) k;
  }
  return TRUE;
}

gboolean
stsim_safetensors_writer_write (StsimSafetensorsWriter *w, const char *path, GError **error)
{
  g_return_val_if_fail (w != NULL && path != NULL, FALSE);

  g_array_sort (w->entries, cmp_writer_entry);
  GString *h = g_string_new ("{");
  if (w->meta_keys->len) {
    g_string_append (h, "\"__metadata__\":{");
    for (guint i = 0; i < w->meta_keys->len; i++) {
      const char *k = w->meta_keys->pdata[i];
      if (i)
        g_string_append_c (h, ',');
      json_string (h, k);
      g_string_append_c (h, ':');
      json_string (h, g_hash_table_lookup (w->meta, k));
    }
    g_string_append_c (h, '}');
  }
  guint64 off = 0;
  for (guint i = 0; i < w->entries->len; i++) {
    const WriterEntry *e = &g_array_index (w->entries, WriterEntry, i);
    if (h->len > 1)
      g_string_append_c (h, ',');
    json_string (h, e->name);
    g_string_append_printf (h, ":{\"dtype\":\"%s\",\"shape\":[", dtypes[e->dtype].name);
    for (guint d = 0; d < e->n_dims; d++)
      g_string_append_printf (h, "%s%" G_GINT64_FORMAT, d ? "," : "", e->shape[d]);
    g_string_append_printf (h, "],\"data_offsets\":[%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT "]}", off,
                            off + e->n_bytes);
    off += e->n_bytes;
  }
  g_string_append_c (h, '}');
  /* Pad with spaces so the data section starts 8-byte aligned (HF does the same). */
  while (h->len % 8)
    g_string_append_c (h, ' ');
  guint8 len_le[8];
  guint64 n = h->len;
  for (int i = 0; i < 8; i++)
    len_le[i] = (guint8) (n >> (8 * i));

  g_autofree char *tmp = g_strdup_printf ("%s.tmp-XXXXXX", path);
  int fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) {
    int errsv = errno;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "%s: cannot create a temporary file beside it: %s",
                 path, g_strerror (errsv));
    g_string_free (h, TRUE);
    return FALSE;
  }
  gboolean ok = write_all (fd, len_le, 8) && write_all (fd, h->str, h->len);
  for (guint i = 0; ok && i < w->entries->len; i++) {
    const WriterEntry *e = &g_array_index (w->entries, WriterEntry, i);
    ok = write_all (fd, e->data, e->n_bytes);
  }
  g_string_free (h, TRUE);
  /* mkstemp creates 0600; a checkpoint is an ordinary readable file. */
  if (ok)
    ok = fchmod (fd, 0644) == 0;
  if (ok)
    ok = fsync (fd) == 0;
  int errsv = errno;
  if (close (fd) != 0 && ok) {
    ok = FALSE;
    errsv = errno;
  }
  if (ok && g_rename (tmp, path) != 0) {
    ok = FALSE;
    errsv = errno;
  }
  if (!ok) {
    g_unlink (tmp);
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "%s: writing failed: %s", path, g_strerror (errsv));
    return FALSE;
  }
  return TRUE;
}
