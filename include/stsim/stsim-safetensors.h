/* stsim-safetensors.h: reading and writing Hugging Face safetensors files.
 *
 * Format: an 8-byte little-endian header length n, n bytes of JSON mapping
 * each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} plus an
 * optional "__metadata__" object of string -> string, then the data section
 * (offsets are relative to it), little-endian, row-major.
 *
 * The reader checks every length, offset, dtype and shape before it touches
 * the data: the header length against the file size and a 100 MB cap, every
 * tensor's byte range against the data section, its size against
 * product(shape) x dtype size (with overflow checks), no overlaps, no gaps and
 * no trailing bytes (as HF's own validator requires). Errors are
 * STSIM_ERROR_CHECKPOINT (STSIM_ERROR_UNSUPPORTED for an unknown dtype) and
 * name the file and the tensor.
 *
 *   g_autoptr(StsimSafetensors) st = stsim_safetensors_open ("model.safetensors", &err);
 *   const gint64 shape[] = { 30522, 768 };
 *   stsim_safetensors_read_f32 (st, "embeddings.word_embeddings.weight", shape, 2, buf, &err);
 *
 *   g_autoptr(StsimSafetensorsWriter) w = stsim_safetensors_writer_new ();
 *   stsim_safetensors_writer_set_metadata (w, "format", "pt");
 *   stsim_safetensors_writer_add_f32 (w, "pooler.dense.bias", shape1, 1, bias, &err);
 *   stsim_safetensors_writer_write (w, "out/model.safetensors", &err);  // atomic
 */
#pragma once
#include <glib.h>
#include "stsim-export.h"
#include "stsim-error.h"

G_BEGIN_DECLS

typedef enum {
  STSIM_DTYPE_BOOL,
  STSIM_DTYPE_U8,
  STSIM_DTYPE_I8,
  STSIM_DTYPE_F8_E4M3,
  STSIM_DTYPE_F8_E5M2,
  STSIM_DTYPE_I16,
  STSIM_DTYPE_U16,
  STSIM_DTYPE_F16,
  STSIM_DTYPE_BF16,
  STSIM_DTYPE_I32,
  STSIM_DTYPE_U32,
  STSIM_DTYPE_F32,
  STSIM_DTYPE_F64,
  STSIM_DTYPE_I64,
  STSIM_DTYPE_U64,
  STSIM_DTYPE_N_TYPES
} StsimDtype;

/* "F32", ... and bytes per element; NULL / 0 for an invalid value. */
STSIM_API
const char *stsim_dtype_name (StsimDtype dtype);
STSIM_API
gsize       stsim_dtype_size (StsimDtype dtype);
/* TRUE when stsim_safetensors_read_f32() converts this dtype: F32, F16, BF16,
 * F64, I64, I32 (the integers exactly up to 2^24). */
STSIM_API
gboolean    stsim_dtype_readable_as_f32 (StsimDtype dtype);

#define STSIM_SAFETENSORS_MAX_DIMS 8

typedef struct {
  const char *name;
  StsimDtype  dtype;
  guint       n_dims;
  gint64      shape[STSIM_SAFETENSORS_MAX_DIMS];
  guint64     n_elements;
  guint64     offset;    /* of the first byte, from the start of the data section */
  guint64     n_bytes;
} StsimTensorInfo;

typedef struct _StsimSafetensors StsimSafetensors;

/* Maps @path (read-only) and validates the header. */
STSIM_API
StsimSafetensors *stsim_safetensors_open (const char *path, GError **error);
/* The same from a buffer, which is referenced, not copied; @label names the
 * source in messages. */
STSIM_API
StsimSafetensors *stsim_safetensors_open_bytes (GBytes *bytes, const char *label, GError **error);
STSIM_API
void              stsim_safetensors_free (StsimSafetensors *st);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimSafetensors, stsim_safetensors_free)

/* The path or label given at open. */
STSIM_API
const char *stsim_safetensors_get_path (const StsimSafetensors *st);
/* Tensor names in data order, NULL-terminated; owned by @st. */
STSIM_API
const char *const *stsim_safetensors_list (const StsimSafetensors *st, gsize *n_out);
/* NULL when there is no tensor of that name. */
STSIM_API
const StsimTensorInfo *stsim_safetensors_get_info (const StsimSafetensors *st, const char *name);
/* The tensor's raw little-endian bytes (valid while @st lives). */
STSIM_API
gconstpointer stsim_safetensors_get_data (const StsimSafetensors *st, const char *name, gsize *n_bytes,
                                          GError **error);

/* Converts tensor @name to fp32 into @out, which holds product(@shape)
 * floats. The tensor must have exactly @shape (@n_dims dims): otherwise an
 * error names the tensor, the expected and the actual shape. Missing tensor:
 * STSIM_ERROR_NOT_FOUND; a dtype not convertible: STSIM_ERROR_UNSUPPORTED. */
STSIM_API
gboolean stsim_safetensors_read_f32 (const StsimSafetensors *st, const char *name,
                                     const gint64 *shape, guint n_dims, float *out, GError **error);
/* The same for an I64 or I32 tensor into int64. */
STSIM_API
gboolean stsim_safetensors_read_i64 (const StsimSafetensors *st, const char *name,
                                     const gint64 *shape, guint n_dims, gint64 *out, GError **error);

/* Tensor @name whatever its shape, converted as by read_f32() / read_i64()
 * into a new array (g_free) of *@n_out elements: for callers that learn the
 * shape from the file (test fixtures, tools). NULL with the same errors. */
STSIM_API
float   *stsim_safetensors_dup_f32 (const StsimSafetensors *st, const char *name, gsize *n_out, GError **error);
STSIM_API
gint64  *stsim_safetensors_dup_i64 (const StsimSafetensors *st, const char *name, gsize *n_out, GError **error);

/* "__metadata__" entries: value of @key or NULL; keys NULL-terminated, owned by @st. */
STSIM_API
const char        *stsim_safetensors_get_metadata  (const StsimSafetensors *st, const char *key);
STSIM_API
const char *const *stsim_safetensors_metadata_keys (const StsimSafetensors *st, gsize *n_out);

/* ---- writer ------------------------------------------------------------ */
typedef struct _StsimSafetensorsWriter StsimSafetensorsWriter;

STSIM_API
StsimSafetensorsWriter *stsim_safetensors_writer_new (void);
STSIM_API
void stsim_safetensors_writer_free (StsimSafetensorsWriter *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimSafetensorsWriter, stsim_safetensors_writer_free)

/* Adds a tensor. The data is referenced, not copied: it must stay valid until
 * write() returns. Errors: an empty, repeated or "__metadata__" name, a
 * negative dimension, more than STSIM_SAFETENSORS_MAX_DIMS dims. */
STSIM_API
gboolean stsim_safetensors_writer_add_f32 (StsimSafetensorsWriter *w, const char *name,
                                           const gint64 *shape, guint n_dims, const float *data, GError **error);
STSIM_API
gboolean stsim_safetensors_writer_add_i64 (StsimSafetensorsWriter *w, const char *name,
                                           const gint64 *shape, guint n_dims, const gint64 *data, GError **error);
/* A "__metadata__" entry (replaces an earlier value of @key); UTF-8 only. */
STSIM_API
gboolean stsim_safetensors_writer_set_metadata (StsimSafetensorsWriter *w, const char *key, const char *value,
                                                GError **error);
/* Writes the file atomically: a temporary file in the same folder, fsync,
 * then rename over @path. The header is padded with spaces to a multiple of
 * 8 bytes as HF's writer does; tensors are laid out largest dtype first, then
 * by name, so every tensor is aligned to its element size. */
STSIM_API
gboolean stsim_safetensors_writer_write (StsimSafetensorsWriter *w, const char *path, GError **error);

G_END_DECLS
