/* train-private.h: internals of core/train shared with its tests. */
#pragma once
#include <glib.h>
#include "stsim/stsim-train.h"

G_BEGIN_DECLS

/* ---- a small safetensors reader and a streaming writer ------------------ *
 * The trainer's state file and the tests' fixtures use the published
 * safetensors layout: u64 little-endian header length, JSON header
 * {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, data. */
typedef struct _StsimStReader StsimStReader;

StsimStReader *stsim_st_reader_open  (const char *path, GError **error);
void           stsim_st_reader_free  (StsimStReader *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimStReader, stsim_st_reader_free)
/* NULL when absent. */
const char    *stsim_st_reader_get_metadata (StsimStReader *r, const char *key);
/* The tensor's raw bytes (little-endian) with dtype "F32", "I64", ...; shape
 * and ndim optional. NULL (NOT_FOUND naming the file) when absent. */
gconstpointer  stsim_st_reader_get (StsimStReader *r, const char *name, const char **dtype, int *ndim,
                                    gint64 shape[8], gsize *n_bytes, GError **error);
/* F32 tensor copied into a new array of *numel floats (F64 and I64 are converted). */
float         *stsim_st_reader_get_f32 (StsimStReader *r, const char *name, gint64 *numel, GError **error);
/* I64/I32 tensor into a new gint32 array. */
gint32        *stsim_st_reader_get_i32 (StsimStReader *r, const char *name, gint64 *numel, GError **error);

typedef struct _StsimStWriter StsimStWriter;
StsimStWriter *stsim_st_writer_new (void);
void           stsim_st_writer_free (StsimStWriter *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimStWriter, stsim_st_writer_free)
void           stsim_st_writer_set_metadata (StsimStWriter *w, const char *key, const char *value);
/* @data is borrowed until write(): it must stay valid and unchanged. */
void           stsim_st_writer_add (StsimStWriter *w, const char *name, const char *dtype, int ndim,
                                    const gint64 *shape, gconstpointer data, gsize n_bytes);
/* Streams to a temporary file in the same folder, fsyncs, renames. */
gboolean       stsim_st_writer_write (StsimStWriter *w, const char *path, GError **error);

/* Writes @contents to @path atomically (g_file_set_contents) with an
 * STSIM_ERROR_IO naming the file. */
gboolean stsim_train_write_file (const char *path, const char *contents, gssize len, GError **error);

G_END_DECLS
