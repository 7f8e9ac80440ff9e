/* test-safetensors.c: the safetensors reader's validation (each corrupt case
 * gives its own precise error), dtype conversions against hand-computed
 * values, and writer round trips (bit-identical). Cross-checks with an
 * independent Python writer/reader are in cross-check.py. */
#include <math.h>
#include <string.h>
#include <glib/gstdio.h>
#include "stsim/stsim-safetensors.h"

/* 8-byte little-endian length + @header + the @len bytes of @payload. */
static GBytes *
make_file_with (const char *header, gconstpointer payload, gsize len)
{
  gsize n = strlen (header);
  guint8 *buf = g_malloc (8 + n + len);
  for (int i = 0; i < 8; i++)
    buf[i] = (guint8) ((guint64) n >> (8 * i));
  memcpy (buf + 8, header, n);
  if (len)
    memcpy (buf + 8 + n, payload, len);
  return g_bytes_new_take (buf, 8 + n + len);
}

/* The same with @payload_len bytes 0, 1, 2, ... */
static GBytes *
make_file (const char *header, gsize payload_len)
{
  g_autofree guint8 *payload = g_malloc (payload_len + 1);
  for (gsize i = 0; i < payload_len; i++)
    payload[i] = (guint8) i;
  return make_file_with (header, payload, payload_len);
}

/* Opening @header + payload fails with @code and a message containing every
 * string of @needles. */
static void
expect_error (const char *header, gsize payload_len, int code, const char *const *needles)
{
  g_autoptr(GBytes) b = make_file (header, payload_len);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimSafetensors) st = stsim_safetensors_open_bytes (b, "bad.safetensors", &err);
  g_assert_null (st);
  g_assert_error (err, STSIM_ERROR, code);
  g_assert_nonnull (strstr (err->message, "bad.safetensors"));
  for (const char *const *n = needles; *n; n++) {
    if (!strstr (err->message, *n))
      g_error ("message \"%s\" lacks \"%s\"", err->message, *n);
  }
}

#define NEEDLES(...) ((const char *const[]) { __VA_ARGS__, NULL })
#define CK STSIM_ERROR_CHECKPOINT

static void
test_truncated (void)
{
  for (gsize len = 0; len < 8; len++) {
    g_autoptr(GBytes) b = g_bytes_new ("\x10\0\0\0\0\0\0\0", len);
    g_autoptr(GError) err = NULL;
    g_assert_null (stsim_safetensors_open_bytes (b, "t.safetensors", &err));
    g_assert_error (err, STSIM_ERROR, CK);
    g_assert_nonnull (strstr (err->message, "truncated"));
  }
}

static void
test_header_length (void)
{
  /* Length 1000 but only 20 bytes follow. */
  guint8 raw[28] = { 0xE8, 0x03 };
  memcpy (raw + 8, "{}                  ", 20);
  g_autoptr(GBytes) b = g_bytes_new (raw, sizeof raw);
  g_autoptr(GError) err = NULL;
  g_assert_null (stsim_safetensors_open_bytes (b, "t.safetensors", &err));
  g_assert_error (err, STSIM_ERROR, CK);
  g_assert_nonnull (strstr (err->message, "header length 1000 runs past the end of the file (28 bytes"));
  g_clear_error (&err);

  /* A huge length (all bits set): refused by the cap before anything else. */
  guint8 huge[16];
  memset (huge, 0xFF, 8);
  memcpy (huge + 8, "{}      ", 8);
  g_autoptr(GBytes) hb = g_bytes_new (huge, sizeof huge);
  g_assert_null (stsim_safetensors_open_bytes (hb, "t.safetensors", &err));
  g_assert_error (err, STSIM_ERROR, CK);
  g_assert_nonnull (strstr (err->message, "exceeds the 100000000-byte limit"));
}

static void
test_header_not_json (void)
{
  expect_error ("this is not json", 0, CK, NEEDLES ("not valid JSON"));
  expect_error ("[1, 2, 3]", 0, CK, NEEDLES ("not a JSON object"));
  expect_error ("{\"a\": {\"dtype\": \"F32\"", 0, CK, NEEDLES ("not valid JSON"));
  expect_error ("{\"a\xff\": 1}", 0, CK, NEEDLES ("not UTF-8"));
  expect_error ("{\"a\": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}", 0, CK, NEEDLES ("deeper than"));
  expect_error ("{\"a\": 1}", 0, CK, NEEDLES ("tensor 'a'", "expected an object"));
  expect_error ("{\"__metadata__\": {\"k\": 1}}", 0, CK, NEEDLES ("__metadata__ key 'k'", "strings"));
  expect_error ("{\"__metadata__\": [1]}", 0, CK, NEEDLES ("\"__metadata__\" must be an object"));
}

static void
test_bad_entries (void)
{
  expect_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8], \"extra\": 1}}", 8, CK,
                NEEDLES ("tensor 'w'", "unknown key 'extra'"));
  expect_error ("{\"w\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", 8, CK, NEEDLES ("tensor 'w'", "\"dtype\""));
  expect_error ("{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 8]}}", 8, CK, NEEDLES ("tensor 'w'", "\"shape\""));
  expect_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [2]}}", 8, CK, NEEDLES ("tensor 'w'", "data_offsets"));
  expect_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", 8, CK,
                NEEDLES ("tensor 'w'", "shape[0]"));
  expect_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [2.5], \"data_offsets\": [0, 8]}}", 8, CK,
                NEEDLES ("tensor 'w'", "shape[0]"));
  expect_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8, 9]}}", 8, CK,
                NEEDLES ("tensor 'w'", "[begin, end]"));
  expect_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, -8]}}", 8, CK,
                NEEDLES ("tensor 'w'", "non-negative"));
  expect_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", 4, CK,
                NEEDLES ("tensor 'w'", "9 dimensions"));
  expect_error ("{\"\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, CK,
                NEEDLES ("empty name"));
}

static void
test_offsets_out_of_range (void)
{
  expect_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 12, CK,
                NEEDLES ("tensor 'w'", "[0, 16] run past the end of the data section (12 bytes"));
}

static void
test_begin_after_end (void)
{
  expect_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 4]}}", 8, CK,
                NEEDLES ("tensor 'w'", "[8, 4] begin after end"));
}

static void
test_overlap (void)
{
  expect_error ("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12, CK,
                NEEDLES ("'a' [0, 8)", "'b' [4, 12)", "overlap"));
  /* The same range twice. */
  expect_error ("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                " \"b\": {\"dtype\": \"I32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8, CK,
                NEEDLES ("overlap"));
}

static void
test_gap_and_trailing (void)
{
  expect_error ("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}", 12, CK,
                NEEDLES ("bytes [4, 8) of the data section belong to no tensor", "'b'"));
  expect_error ("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 10, CK,
                NEEDLES ("6 bytes after the last tensor"));
}

static void
test_unknown_dtype (void)
{
  expect_error ("{\"w\": {\"dtype\": \"F12\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                STSIM_ERROR_UNSUPPORTED, NEEDLES ("tensor 'w'", "unknown dtype 'F12'"));
}

static void
test_shape_size_mismatch (void)
{
  expect_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 20]}}", 20, CK,
                NEEDLES ("tensor 'w'", "shape [2, 3] of F32 needs 24 bytes but data_offsets [0, 20] span 20"));
  expect_error ("{\"w\": {\"dtype\": \"BF16\", \"shape\": [3], \"data_offsets\": [0, 12]}}", 12, CK,
                NEEDLES ("needs 6 bytes"));
}

static void
test_shape_overflow (void)
{
  /* 2^32 * 2^32 elements overflow 64 bits; so does 2^62 elements x 4 bytes. */
  expect_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 0]}}", 0,
                CK, NEEDLES ("tensor 'w'", "overflows"));
  expect_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904], \"data_offsets\": [0, 0]}}", 0,
                CK, NEEDLES ("tensor 'w'", "overflows"));
  /* A product that wraps to a small number must not pass: (2^62 + 1) * 4
   * elements wrap to 4, which 16 bytes of F32 would seem to match. */
  expect_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [4611686018427387905, 4], \"data_offsets\": [0, 16]}}",
                16, CK, NEEDLES ("overflows"));
}

static void
test_f16_bf16 (void)
{
  /* F16 bit patterns and their values, worked out by hand:
   * sign | 5-bit exponent (bias 15) | 10-bit mantissa. */
  static const struct { guint16 h; float v; } f16[] = {
    { 0x3C00, 1.0f }, { 0xC000, -2.0f }, { 0x7BFF, 65504.0f }, { 0x3555, 0.333251953125f },
    { 0x0001, 5.9604644775390625e-08f },  /* 2^-24, smallest subnormal */
    { 0x03FF, 6.0975551605224609e-05f },  /* 1023 * 2^-24, largest subnormal */
    { 0x0400, 6.103515625e-05f },         /* 2^-14, smallest normal */
    { 0x8001, -5.9604644775390625e-08f }, { 0x0000, 0.0f },
  };
  /* BF16 is the top half of an F32. */
  static const struct { guint16 h; float v; } bf16[] = {
    { 0x3F80, 1.0f }, { 0xC0A0, -5.0f }, { 0x4049, 3.140625f }, { 0x7F7F, 3.3895313892515355e38f },
    { 0x0001, 9.183549615799121e-41f },   /* 2^-133, smallest subnormal */
    { 0x0080, 1.1754943508222875e-38f },  /* 2^-126 */
  };
  guint n16 = G_N_ELEMENTS (f16) + 4, nb = G_N_ELEMENTS (bf16) + 4;
  g_autofree guint16 *payload = g_new (guint16, n16 + nb);
  for (guint i = 0; i < G_N_ELEMENTS (f16); i++)
    payload[i] = f16[i].h;
  /* +inf, -inf, NaN, -0 */
  payload[n16 - 4] = 0x7C00; payload[n16 - 3] = 0xFC00; payload[n16 - 2] = 0x7E01; payload[n16 - 1] = 0x8000;
  for (guint i = 0; i < G_N_ELEMENTS (bf16); i++)
    payload[n16 + i] = bf16[i].h;
  payload[n16 + nb - 4] = 0x7F80; payload[n16 + nb - 3] = 0xFF80; payload[n16 + nb - 2] = 0x7FC1;
  payload[n16 + nb - 1] = 0x8000;

  g_autofree char *header = g_strdup_printf (
    "{\"h\": {\"dtype\": \"F16\", \"shape\": [%u], \"data_offsets\": [0, %u]},"
    " \"b\": {\"dtype\": \"BF16\", \"shape\": [%u], \"data_offsets\": [%u, %u]}}",
    n16, 2 * n16, nb, 2 * n16, 2 * (n16 + nb));
  gsize hl = strlen (header);
  guint8 *buf = g_malloc (8 + hl + 2 * (n16 + nb));
  memset (buf, 0, 8);
  buf[0] = (guint8) hl;
  memcpy (buf + 8, header, hl);
  memcpy (buf + 8 + hl, payload, 2 * (n16 + nb));
  g_autoptr(GBytes) bytes = g_bytes_new_take (buf, 8 + hl + 2 * (n16 + nb));
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimSafetensors) st = stsim_safetensors_open_bytes (bytes, "conv", &err);
  g_assert_no_error (err);

  float out[32];
  gint64 shape = n16;
  g_assert_true (stsim_safetensors_read_f32 (st, "h", &shape, 1, out, &err));
  g_assert_no_error (err);
  for (guint i = 0; i < G_N_ELEMENTS (f16); i++)
    g_assert_cmpfloat (out[i], ==, f16[i].v);
  g_assert_true (isinf (out[n16 - 4]) && out[n16 - 4] > 0);
  g_assert_true (isinf (out[n16 - 3]) && out[n16 - 3] < 0);
  g_assert_true (isnan (out[n16 - 2]));
  g_assert_true (out[n16 - 1] == 0.0f && signbit (out[n16 - 1]));
  g_assert_true (signbit (out[7]));

  shape = nb;
  g_assert_true (stsim_safetensors_read_f32 (st, "b", &shape, 1, out, &err));
  for (guint i = 0; i < G_N_ELEMENTS (bf16); i++)
    g_assert_cmpfloat (out[i], ==, bf16[i].v);
  g_assert_true (isinf (out[nb - 4]) && out[nb - 4] > 0);
  g_assert_true (isinf (out[nb - 3]) && out[nb - 3] < 0);
  g_assert_true (isnan (out[nb - 2]));
  g_assert_true (out[nb - 1] == 0.0f && signbit (out[nb - 1]));
}

static char *
tmp_path (const char *name)
{
  g_autoptr(GError) err = NULL;
  g_autofree char *dir = g_dir_make_tmp ("stsim-st-XXXXXX", &err);
  g_assert_no_error (err);
  return g_build_filename (dir, name, NULL);
}

static void
rm_file_and_dir (const char *path)
{
  g_autofree char *dir = g_path_get_dirname (path);
  GDir *d = g_dir_open (dir, 0, NULL);
  const char *n;
  while (d && (n = g_dir_read_name (d))) {
    g_autofree char *p = g_build_filename (dir, n, NULL);
    g_remove (p);
  }
  if (d)
    g_dir_close (d);
  g_rmdir (dir);
}

static guint
count_files (const char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  guint n = 0;
  while (d && g_dir_read_name (d))
    n++;
  if (d)
    g_dir_close (d);
  return n;
}

static void
test_roundtrip (void)
{
  g_autofree char *path = tmp_path ("model.safetensors");
  /* Awkward bit patterns: NaN with payload, -0, inf, subnormals, random bits. */
  guint32 bits[24];
  GRand *rng = g_rand_new_with_seed (7);
  for (guint i = 0; i < G_N_ELEMENTS (bits); i++)
    bits[i] = g_rand_int (rng);
  g_rand_free (rng);
  bits[0] = 0x7FC12345; bits[1] = 0x80000000; bits[2] = 0x7F800000; bits[3] = 0x00000001; bits[4] = 0xFF800000;
  float w[24];
  memcpy (w, bits, sizeof w);
  const float bias[3] = { 0.5f, -1.25f, 3.0f };
  const gint64 pos[5] = { 0, 1, -7, G_MAXINT64, G_MININT64 };
  const gint64 sw[3] = { 2, 3, 4 }, sb[1] = { 3 }, sp[2] = { 1, 5 };

  g_autoptr(GError) err = NULL;
  {
    g_autoptr(StsimSafetensorsWriter) wr = stsim_safetensors_writer_new ();
    g_assert_true (stsim_safetensors_writer_set_metadata (wr, "format", "pt", &err));
    g_assert_true (stsim_safetensors_writer_set_metadata (wr, "recipe", "[a]\nb = \"c\"\\", &err));
    g_assert_true (stsim_safetensors_writer_set_metadata (wr, "format", "pt2", &err));
    g_assert_true (stsim_safetensors_writer_add_f32 (wr, "encoder.w", sw, 3, w, &err));
    g_assert_true (stsim_safetensors_writer_add_f32 (wr, "a.bias", sb, 1, bias, &err));
    g_assert_true (stsim_safetensors_writer_add_i64 (wr, "position_ids", sp, 2, pos, &err));
    g_assert_true (stsim_safetensors_writer_add_f32 (wr, "scalar", NULL, 0, bias, &err));
    /* Errors: repeated name, reserved name, negative dimension. */
    g_assert_false (stsim_safetensors_writer_add_f32 (wr, "a.bias", sb, 1, bias, &err));
    g_assert_error (err, STSIM_ERROR, STSIM_ERROR_INVALID);
    g_clear_error (&err);
    g_assert_false (stsim_safetensors_writer_add_f32 (wr, "__metadata__", sb, 1, bias, &err));
    g_clear_error (&err);
    const gint64 neg[1] = { -1 };
    g_assert_false (stsim_safetensors_writer_add_f32 (wr, "n", neg, 1, bias, &err));
    g_clear_error (&err);
    g_assert_true (stsim_safetensors_writer_write (wr, path, &err));
    g_assert_no_error (err);
  }
  g_autofree char *dir = g_path_get_dirname (path);
  g_assert_cmpuint (count_files (dir), ==, 1);  /* no temporary file left */

  /* Header length is a multiple of 8 and the header is space-padded. */
  g_autofree char *raw = NULL;
  gsize raw_len = 0;
  g_assert_true (g_file_get_contents (path, &raw, &raw_len, NULL));
  guint64 hl = 0;
  memcpy (&hl, raw, 8);
  g_assert_cmpuint (hl % 8, ==, 0);
  g_assert_cmpuint (raw_len, ==, 8 + hl + sizeof w + sizeof bias + sizeof pos + 4);

  g_autoptr(StsimSafetensors) st = stsim_safetensors_open (path, &err);
  g_assert_no_error (err);
  gsize n = 0;
  const char *const *names = stsim_safetensors_list (st, &n);
  g_assert_cmpuint (n, ==, 4);
  /* Data order: 8-byte dtypes first, then by name. */
  g_assert_cmpstr (names[0], ==, "position_ids");
  g_assert_cmpstr (names[1], ==, "a.bias");
  g_assert_cmpstr (names[2], ==, "encoder.w");
  g_assert_cmpstr (names[3], ==, "scalar");
  g_assert_null (names[4]);
  g_assert_cmpstr (stsim_safetensors_get_metadata (st, "format"), ==, "pt2");
  g_assert_cmpstr (stsim_safetensors_get_metadata (st, "recipe"), ==, "[a]\nb = \"c\"\\");
  g_assert_null (stsim_safetensors_get_metadata (st, "nope"));
  const char *const *keys = stsim_safetensors_metadata_keys (st, &n);
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpstr (keys[0], ==, "format");

  const StsimTensorInfo *info = stsim_safetensors_get_info (st, "encoder.w");
  g_assert_nonnull (info);
  g_assert_cmpint (info->dtype, ==, STSIM_DTYPE_F32);
  g_assert_cmpuint (info->n_dims, ==, 3);
  g_assert_cmpint (info->shape[2], ==, 4);
  g_assert_cmpuint (info->n_elements, ==, 24);
  float back[24];
  g_assert_true (stsim_safetensors_read_f32 (st, "encoder.w", sw, 3, back, &err));
  g_assert_cmpmem (back, sizeof back, w, sizeof w);
  gsize nb = 0;
  gconstpointer rawp = stsim_safetensors_get_data (st, "encoder.w", &nb, &err);
  g_assert_cmpmem (rawp, nb, w, sizeof w);
  gint64 pback[5];
  g_assert_true (stsim_safetensors_read_i64 (st, "position_ids", sp, 2, pback, &err));
  g_assert_cmpmem (pback, sizeof pback, pos, sizeof pos);
  float s;
  g_assert_true (stsim_safetensors_read_f32 (st, "scalar", NULL, 0, &s, &err));
  g_assert_cmpfloat (s, ==, 0.5f);

  /* Expected-shape check names the tensor and both shapes. */
  const gint64 wrong[2] = { 6, 4 };
  g_assert_false (stsim_safetensors_read_f32 (st, "encoder.w", wrong, 2, back, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_CHECKPOINT);
  g_assert_nonnull (strstr (err->message, "tensor 'encoder.w' has shape [2, 3, 4], expected [6, 4]"));
  g_clear_error (&err);
  g_assert_false (stsim_safetensors_read_f32 (st, "missing", sw, 3, back, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (err->message, "'missing'"));
  g_clear_error (&err);
  g_assert_false (stsim_safetensors_read_i64 (st, "a.bias", sb, 1, pback, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED);
  g_clear_error (&err);

  /* Overwriting is atomic too and leaves one file. */
  {
    g_autoptr(StsimSafetensorsWriter) wr = stsim_safetensors_writer_new ();
    g_assert_true (stsim_safetensors_writer_add_f32 (wr, "x", sb, 1, bias, &err));
    g_assert_true (stsim_safetensors_writer_write (wr, path, &err));
  }
  g_assert_cmpuint (count_files (dir), ==, 1);
  g_autoptr(StsimSafetensors) st2 = stsim_safetensors_open (path, &err);
  g_assert_no_error (err);
  g_assert_nonnull (stsim_safetensors_get_info (st2, "x"));
  g_assert_null (stsim_safetensors_get_info (st2, "encoder.w"));

  /* The first file truncated on disk: its last tensor runs past the end. */
  g_autofree char *cut = g_build_filename (dir, "cut.safetensors", NULL);
  g_assert_true (g_file_set_contents (cut, raw, (gssize) raw_len - 3, NULL));
  g_assert_null (stsim_safetensors_open (cut, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_CHECKPOINT);
  g_assert_nonnull (strstr (err->message, "cut.safetensors: tensor 'scalar'"));
  g_assert_nonnull (strstr (err->message, "run past the end"));
  g_clear_error (&err);
  rm_file_and_dir (path);
}

static void
test_io_errors (void)
{
  g_autoptr(GError) err = NULL;
  g_assert_null (stsim_safetensors_open ("/nonexistent/model.safetensors", &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (err->message, "/nonexistent/model.safetensors"));
  g_clear_error (&err);

  g_autoptr(StsimSafetensorsWriter) wr = stsim_safetensors_writer_new ();
  const gint64 s1[1] = { 1 };
  const float v = 1;
  g_assert_true (stsim_safetensors_writer_add_f32 (wr, "x", s1, 1, &v, &err));
  g_assert_false (stsim_safetensors_writer_write (wr, "/nonexistent/dir/model.safetensors", &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_IO);
  g_assert_nonnull (strstr (err->message, "/nonexistent/dir/model.safetensors"));
}

static void
test_empty_file_and_dtypes (void)
{
  /* A file with no tensors is valid. */
  g_autoptr(GBytes) b = make_file ("{}      ", 0);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimSafetensors) st = stsim_safetensors_open_bytes (b, "e", &err);
  g_assert_no_error (err);
  gsize n = 99;
  stsim_safetensors_list (st, &n);
  g_assert_cmpuint (n, ==, 0);

  /* Integer and F64 tensors convert; U8 is valid but not readable as fp32. */
  gint32 i32[2] = { -3, 16777216 };
  double f64[2] = { 0.1, -1e300 };
  guint8 u8[4] = { 1, 2, 3, 4 };
  const char *h = "{\"i\": {\"dtype\": \"I32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                  " \"d\": {\"dtype\": \"F64\", \"shape\": [2], \"data_offsets\": [8, 24]},"
                  " \"u\": {\"dtype\": \"U8\", \"shape\": [2, 2], \"data_offsets\": [24, 28]}}";
  gsize hl = strlen (h);
  guint8 *buf = g_malloc0 (8 + hl + 28);
  buf[0] = (guint8) hl;
  memcpy (buf + 8, h, hl);
  memcpy (buf + 8 + hl, i32, 8);
  memcpy (buf + 8 + hl + 8, f64, 16);
  memcpy (buf + 8 + hl + 24, u8, 4);
  g_autoptr(GBytes) b2 = g_bytes_new_take (buf, 8 + hl + 28);
  g_autoptr(StsimSafetensors) st2 = stsim_safetensors_open_bytes (b2, "d", &err);
  g_assert_no_error (err);
  float out[4];
  const gint64 s2[1] = { 2 }, s22[2] = { 2, 2 };
  g_assert_true (stsim_safetensors_read_f32 (st2, "i", s2, 1, out, &err));
  g_assert_cmpfloat (out[0], ==, -3.0f);
  g_assert_cmpfloat (out[1], ==, 16777216.0f);
  g_assert_true (stsim_safetensors_read_f32 (st2, "d", s2, 1, out, &err));
  g_assert_cmpfloat (out[0], ==, 0.1f);
  g_assert_true (isinf (out[1]) && out[1] < 0);
  gint64 iv[2];
  g_assert_true (stsim_safetensors_read_i64 (st2, "i", s2, 1, iv, &err));
  g_assert_cmpint (iv[0], ==, -3);
  g_assert_false (stsim_safetensors_read_f32 (st2, "u", s22, 2, out, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (err->message, "tensor 'u' has dtype U8"));
  g_assert_cmpstr (stsim_dtype_name (STSIM_DTYPE_BF16), ==, "BF16");
  g_assert_cmpuint (stsim_dtype_size (STSIM_DTYPE_F64), ==, 8);
}

/* dup_f32 / dup_i64: whatever the shape, a new array of every element
 * (converted as read_f32 / read_i64 do); errors as theirs. */
static void
test_dup (void)
{
  const float f[6] = { 1.5f, -2.0f, 0.0f, 3.25f, -0.125f, 1e30f };
  const gint32 i32[3] = { -7, 0, G_MAXINT32 };
  const guint8 u8[2] = { 1, 2 };
  const char *h = "{\"f\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]},"
                  " \"i\": {\"dtype\": \"I32\", \"shape\": [3], \"data_offsets\": [24, 36]},"
                  " \"e\": {\"dtype\": \"F32\", \"shape\": [0, 4], \"data_offsets\": [36, 36]},"
                  " \"u\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [36, 38]}}";
  guint8 payload[38];
  memcpy (payload, f, 24);
  memcpy (payload + 24, i32, 12);
  memcpy (payload + 36, u8, 2);
  g_autoptr(GBytes) b = make_file_with (h, payload, sizeof payload);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimSafetensors) st = stsim_safetensors_open_bytes (b, "dup.safetensors", &err);
  g_assert_no_error (err);

  gsize n = 0;
  g_autofree float *fv = stsim_safetensors_dup_f32 (st, "f", &n, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (n, ==, 6);
  g_assert_cmpmem (fv, n * sizeof (float), f, sizeof f);
  g_autofree float *iv_f = stsim_safetensors_dup_f32 (st, "i", &n, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (n, ==, 3);
  g_assert_cmpfloat (iv_f[0], ==, -7.0f);
  g_assert_cmpfloat (iv_f[2], ==, 2147483648.0f);  /* 2^31 - 1 rounds to 2^31 in fp32 */
  g_autofree gint64 *iv = stsim_safetensors_dup_i64 (st, "i", &n, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (n, ==, 3);
  g_assert_cmpint (iv[0], ==, -7);
  g_assert_cmpint (iv[1], ==, 0);
  g_assert_cmpint (iv[2], ==, G_MAXINT32);
  /* A tensor with a zero dimension: no elements, still an array to free. */
  n = 99;
  g_autofree float *ev = stsim_safetensors_dup_f32 (st, "e", &n, &err);
  g_assert_no_error (err);
  g_assert_nonnull (ev);
  g_assert_cmpuint (n, ==, 0);

  n = 99;
  g_assert_null (stsim_safetensors_dup_f32 (st, "missing", &n, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (err->message, "dup.safetensors: no tensor 'missing'"));
  g_assert_cmpuint (n, ==, 99);  /* untouched on error */
  g_clear_error (&err);
  g_assert_null (stsim_safetensors_dup_f32 (st, "u", NULL, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (err->message, "tensor 'u' has dtype U8"));
  g_clear_error (&err);
  g_assert_null (stsim_safetensors_dup_i64 (st, "f", NULL, &err));
  g_assert_error (err, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (err->message, "tensor 'f' has dtype F32, expected I64 or I32"));
}

/* Files laid out by other writers, in insertion order rather than ours
 * (largest dtype first): an I64 tensor after three floats starts at an
 * unaligned offset, and metadata come after the tensors. Such files (the
 * trainer's state files of earlier versions among them) read exactly. */
static void
test_foreign_layout (void)
{
  const float f[3] = { 0.25f, -8.0f, 3.0f };
  const gint64 ids[2] = { -1, G_MAXINT64 };
  const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                  "\"ids\":{\"dtype\":\"I64\",\"shape\":[1,2],\"data_offsets\":[12,28]},"
                  "\"__metadata__\":{\"k\":\"{\\\"step\\\":4,\\\"s\\\":[1]}\"}}";
  g_autofree char *padded = g_strdup_printf ("%-*s", (int) ((strlen (h) + 7) / 8 * 8), h);
  guint8 payload[28];
  memcpy (payload, f, 12);
  memcpy (payload + 12, ids, 16);
  g_autoptr(GBytes) b = make_file_with (padded, payload, sizeof payload);
  g_autoptr(GError) err = NULL;
  g_autoptr(StsimSafetensors) st = stsim_safetensors_open_bytes (b, "old.safetensors", &err);
  g_assert_no_error (err);
  gsize n = 0;
  const char *const *names = stsim_safetensors_list (st, &n);
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpstr (names[0], ==, "a");
  g_assert_cmpstr (names[1], ==, "ids");
  g_assert_cmpuint (stsim_safetensors_get_info (st, "ids")->offset, ==, 12);
  g_assert_cmpstr (stsim_safetensors_get_metadata (st, "k"), ==, "{\"step\":4,\"s\":[1]}");
  float fb[3];
  const gint64 s3[1] = { 3 }, s12[2] = { 1, 2 };
  g_assert_true (stsim_safetensors_read_f32 (st, "a", s3, 1, fb, &err));
  g_assert_cmpmem (fb, sizeof fb, f, sizeof f);
  gint64 ib[2];
  g_assert_true (stsim_safetensors_read_i64 (st, "ids", s12, 2, ib, &err));
  g_assert_no_error (err);
  g_assert_cmpint (ib[0], ==, -1);
  g_assert_cmpint (ib[1], ==, G_MAXINT64);
}

/* Every input the fuzzer ever crashed on, replayed (tests/fixtures/fuzz). */
static void
test_fuzz_regressions (void)
{
  const char *srcdir = g_getenv ("G_TEST_SRCDIR");
  g_autofree char *dir = g_build_filename (srcdir ? srcdir : ".", "fixtures", "fuzz", "safetensors", NULL);
  GDir *d = g_dir_open (dir, 0, NULL);
  if (!d) {
    g_test_skip ("no fuzz regression inputs");
    return;
  }
  const char *name;
  guint n = 0;
  while ((name = g_dir_read_name (d))) {
    g_autofree char *p = g_build_filename (dir, name, NULL);
    g_autofree char *data = NULL;
    gsize len = 0;
    g_assert_true (g_file_get_contents (p, &data, &len, NULL));
    g_autoptr(GBytes) b = g_bytes_new (data, len);
    g_autoptr(GError) err = NULL;
    g_autoptr(StsimSafetensors) st = stsim_safetensors_open_bytes (b, name, &err);
    /* Either it opens and every tensor reads, or it fails cleanly. */
    g_assert_true ((st != NULL) == (err == NULL));
    n++;
  }
  g_dir_close (d);
  g_test_message ("%u regression inputs", n);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/safetensors/corrupt/truncated", test_truncated);
  g_test_add_func ("/safetensors/corrupt/header-length", test_header_length);
  g_test_add_func ("/safetensors/corrupt/header-not-json", test_header_not_json);
  g_test_add_func ("/safetensors/corrupt/bad-entries", test_bad_entries);
  g_test_add_func ("/safetensors/corrupt/offsets-out-of-range", test_offsets_out_of_range);
  g_test_add_func ("/safetensors/corrupt/begin-after-end", test_begin_after_end);
  g_test_add_func ("/safetensors/corrupt/overlap", test_overlap);
  g_test_add_func ("/safetensors/corrupt/gap-and-trailing", test_gap_and_trailing);
  g_test_add_func ("/safetensors/corrupt/unknown-dtype", test_unknown_dtype);
  g_test_add_func ("/safetensors/corrupt/shape-size-mismatch", test_shape_size_mismatch);
  g_test_add_func ("/safetensors/corrupt/shape-overflow", test_shape_overflow);
  g_test_add_func ("/safetensors/convert/f16-bf16", test_f16_bf16);
  g_test_add_func ("/safetensors/convert/other-dtypes", test_empty_file_and_dtypes);
  g_test_add_func ("/safetensors/roundtrip", test_roundtrip);
  g_test_add_func ("/safetensors/io-errors", test_io_errors);
  g_test_add_func ("/safetensors/dup", test_dup);
  g_test_add_func ("/safetensors/foreign-layout", test_foreign_layout);
  g_test_add_func ("/safetensors/fuzz-regressions", test_fuzz_regressions);
  return g_test_run ();
}
