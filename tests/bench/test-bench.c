/* test-bench: stsim-bench end to end on tiny batches.
 *
 * Runs every workload of the mini config for one step on both batch kinds
 * and checks the JSON it writes: one cell per combination, finite positive
 * timings and memory, and the documented FLOP count (docs/performance.md)
 * against the GEMM work the library actually did, which the op profile
 * records from the runtime shapes of every cblas_sgemm call. */
#include <math.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

static const char *bench_path;

static double
profile_flops (JsonObject *cell, const char *name)
{
  JsonArray *a = json_object_get_array_member (cell, "profile");
  for (guint i = 0; a && i < json_array_get_length (a); i++) {
    JsonObject *e = json_array_get_object_element (a, i);
    if (g_strcmp0 (json_object_get_string_member (e, "name"), name) == 0)
      return json_object_get_double_member (e, "flops");
  }
  return 0.0;
}

static void
test_bench_cells (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("test-bench-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *json = g_build_filename (dir, "out.json", NULL);
  const char *argv[] = { bench_path, "--configs", "mini", "--workloads", "encode,simcse,paper", "--threads", "1",
                         "--batches", "synthetic,real", "--steps", "1", "--warmup", "0", "--batch-size", "4",
                         "--profile", "--json", json, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error));
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("stsim-bench failed: %s", err);

  g_autoptr(JsonParser) p = json_parser_new ();
  g_assert_true (json_parser_load_from_file (p, json, &error));
  g_assert_no_error (error);
  JsonArray *cells = json_object_get_array_member (json_node_get_object (json_parser_get_root (p)), "cells");
  g_assert_cmpuint (json_array_get_length (cells), ==, 6);
  const double H = 256, FF = 1024, layers = 4, L = 32;
  for (guint i = 0; i < 6; i++) {
    JsonObject *c = json_array_get_object_element (cells, i);
    const char *work = json_object_get_string_member (c, "workload");
    const char *kind = json_object_get_string_member (c, "batches");
    g_assert_true (json_object_has_member (c, "stsim"));
    JsonObject *s = json_object_get_object_member (c, "stsim");
    double med = json_object_get_double_member (s, "median");
    g_assert_true (isfinite (med) && med > 0);
    g_assert_cmpint (json_object_get_int_member (s, "peak_rss_kb"), >, 0);
    double flops = json_object_get_double_member (s, "flops_per_step");
    g_assert_true (isfinite (flops) && flops > 0);
    if (g_strcmp0 (work, "simcse") != 0 || g_strcmp0 (kind, "synthetic") != 0)
      continue;
    /* SimCSE on 2B = 8 rows of exactly 32 tokens: dense layers and the MLP
     * forward, backward twice that, attention 4·l·l·H per row block. */
    double rows = 8, tok = rows * L;
    double dense = layers * tok * 2 * (4 * H * H + 2 * H * FF) + rows * 2 * H * H;
    double attn = layers * rows * 4 * L * L * H;
    double fwd = profile_flops (s, "linear.gemm.fwd"), bwd = profile_flops (s, "linear.gemm.bwd");
    g_assert_cmpfloat (fabs (fwd - dense), <, 1e-9 * dense);
    g_assert_cmpfloat (fabs (bwd - 2 * dense), <, 1e-9 * dense);
    g_assert_cmpfloat (fabs (flops - 3 * (dense + attn)), <, 1e-9 * flops);
  }
  g_remove (json);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc < 2) {
    g_printerr ("usage: test-bench PATH-TO-stsim-bench\n");
    return 1;
  }
  bench_path = argv[1];
  g_test_add_func ("/bench/cells", test_bench_cells);
  return g_test_run ();
}
