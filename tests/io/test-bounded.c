/* test-bounded.c: the bounded readers (core/io/bounded.c) and every reader
 * that goes through them. Each input here crashed (deep JSON: json-glib's
 * recursive parser overflowed the stack), hung or grew memory without end
 * (/dev/zero, an endless FIFO) before; now each is a clear error naming the
 * file and the limit. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <glib/gstdio.h>

#include "stsim/stsim-bounded.h"
#include "stsim/stsim.h"
#include "stsim/stsim-sts.h"
#include "stsim/stsim-model.h"
#include "stsim/stsim-recipe.h"
#include "stsim/stsim-registry.h"
#include "stsim/stsim-tokenizer.h"
#include "stsim/stsim-train.h"
#include "stsim/stsim-curves.h"
#include "test-util.h"

static char *tmp;

static char *
tmp_path (const char *name)
{
  return g_build_filename (tmp, name, NULL);
}

static char *
write_tmp (const char *name, const char *data, gssize len)
{
  char *p = tmp_path (name);
  g_assert_true (g_file_set_contents (p, data, len, NULL));
  return p;
}

/* @depth nested arrays with @inner in the middle, e.g. [[[1]]]. */
static char *
nested_json (gsize depth, const char *prefix, const char *inner, const char *suffix)
{
  GString *s = g_string_new (prefix);
  for (gsize i = 0; i < depth; i++)
    g_string_append_c (s, '[');
  g_string_append (s, inner);
  for (gsize i = 0; i < depth; i++)
    g_string_append_c (s, ']');
  g_string_append (s, suffix);
  return g_string_free (s, FALSE);
}

static void
assert_message (const GError *e, const char *fragment)
{
  g_assert_nonnull (e);
  g_test_message ("%s", e->message);
  if (!strstr (e->message, fragment))
    g_error ("'%s' lacks '%s'", e->message, fragment);
}

/* ---- the readers themselves ------------------------------------------------ */

static void
test_file_limits (void)
{
  g_autoptr(GError) e = NULL;
  char *data = NULL;
  gsize len = 0;

  g_assert_false (stsim_file_get_contents ("/dev/zero", STSIM_LIMIT_JSON, &data, &len, &e));
  assert_message (e, "/dev/zero is a character device, not a regular file");
  g_clear_error (&e);
  g_assert_false (stsim_file_get_contents (tmp, STSIM_LIMIT_JSON, &data, &len, &e));
  g_assert_error (e, G_FILE_ERROR, G_FILE_ERROR_ISDIR);
  g_clear_error (&e);
  g_autofree char *missing = tmp_path ("missing");
  g_assert_false (stsim_file_get_contents (missing, STSIM_LIMIT_JSON, &data, &len, &e));
  g_assert_error (e, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_clear_error (&e);

  /* A regular file over the limit is refused before it is read. */
  g_autofree char *big = tmp_path ("big");
  int fd = g_open (big, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (ftruncate (fd, (off_t) 3 << 20), ==, 0);  /* 3 MiB, sparse */
  close (fd);
  g_setenv ("STSIM_MAX_INPUT_MB", "2", TRUE);
  g_assert_cmpuint (stsim_input_limit (STSIM_LIMIT_CORPUS), ==, 2 * STSIM_MIB);
  g_assert_false (stsim_file_get_contents (big, STSIM_LIMIT_CORPUS, &data, &len, &e));
  assert_message (e, "is 3145728 bytes, over the 2 MiB limit for this input; set STSIM_MAX_INPUT_MB to raise it");
  g_clear_error (&e);
  g_setenv ("STSIM_MAX_INPUT_MB", "4", TRUE);
  g_assert_true (stsim_file_get_contents (big, STSIM_LIMIT_CORPUS, &data, &len, &e));
  g_assert_no_error (e);
  g_assert_cmpuint (len, ==, 3 << 20);
  g_assert_cmpint (data[len], ==, 0);
  g_free (data);
  g_unsetenv ("STSIM_MAX_INPUT_MB");
  /* Malformed values of the variable leave the default. */
  g_setenv ("STSIM_MAX_INPUT_MB", "lots", TRUE);
  g_assert_cmpuint (stsim_input_limit (STSIM_LIMIT_CORPUS), ==, STSIM_LIMIT_CORPUS);
  g_unsetenv ("STSIM_MAX_INPUT_MB");
  g_unlink (big);

  /* An empty file: "" with a NUL, length 0. */
  g_autofree char *empty = write_tmp ("empty", "", 0);
  g_assert_true (stsim_file_get_contents (empty, STSIM_LIMIT_JSON, &data, &len, &e));
  g_assert_cmpuint (len, ==, 0);
  g_assert_cmpstr (data, ==, "");
  g_free (data);
}

static gpointer
endless_writer (gpointer path)
{
  int fd = g_open (path, O_WRONLY, 0);
  static char chunk[65536];
  /* Writes until the reader closes its end (EPIPE; SIGPIPE is ignored). */
  while (fd >= 0 && write (fd, chunk, sizeof chunk) > 0)
    ;
  if (fd >= 0)
    close (fd);
  return NULL;
}

/* A FIFO that never ends is read up to the limit, then refused. */
static void
test_fifo_endless (void)
{
  g_autofree char *fifo = tmp_path ("fifo");
  g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
  g_setenv ("STSIM_MAX_INPUT_MB", "1", TRUE);
  GThread *w = g_thread_new ("writer", endless_writer, fifo);
  g_autoptr(GError) e = NULL;
  char *data = NULL;
  g_assert_false (stsim_file_get_contents (fifo, STSIM_LIMIT_CORPUS, &data, NULL, &e));
  assert_message (e, "more than 1 MiB read, over the limit for this input (an endless stream such as /dev/zero?)");
  g_thread_join (w);
  /* The corpus reader says which corpus file. */
  w = g_thread_new ("writer", endless_writer, fifo);
  g_clear_error (&e);
  const char *const paths[] = { fifo, NULL };
  g_assert_null (stsim_corpus_load_lines (paths, &e));
  assert_message (e, "corpus: ");
  assert_message (e, "over the limit");
  g_thread_join (w);
  g_unsetenv ("STSIM_MAX_INPUT_MB");
  g_unlink (fifo);
}

static void
test_stream_line (void)
{
  g_autofree char *path = tmp_path ("lines");
  /* "ab\n", a NUL inside a line, a last line without '\n'. */
  g_assert_true (g_file_set_contents (path, "ab\nc\0d\nlast", 11, NULL));
  FILE *f = g_fopen (path, "rb");
  g_autoptr(GString) line = g_string_new (NULL);
  g_autoptr(GError) e = NULL;
  g_assert_true (stsim_stream_read_line (f, "x", 1, 16, line, &e));
  g_assert_cmpstr (line->str, ==, "ab");
  g_assert_true (stsim_stream_read_line (f, "x", 2, 16, line, &e));
  g_assert_cmpuint (line->len, ==, 3);
  g_assert_cmpmem (line->str, 3, "c\0d", 3);
  g_assert_true (stsim_stream_read_line (f, "x", 3, 16, line, &e));
  g_assert_cmpstr (line->str, ==, "last");
  g_assert_false (stsim_stream_read_line (f, "x", 4, 16, line, &e));
  g_assert_no_error (e);
  fclose (f);
  /* /dev/zero: one endless line of NULs, stopped at the limit. */
  f = g_fopen ("/dev/zero", "rb");
  g_assert_false (stsim_stream_read_line (f, "<stdin>", 1, STSIM_LIMIT_LINE, line, &e));
  assert_message (e, "<stdin>:1: line longer than 1 MiB");
  fclose (f);
}

static void
test_json_depth (void)
{
  g_assert_cmpint (stsim_json_depth ("{\"a\": [1, {\"b\": []}]}", 21, 64), ==, 4);
  /* Brackets inside strings, escaped quotes and backslashes do not count. */
  const char *s = "[\"[[[\\\"[[\", \"\\\\\", [\"]]]\"]]";
  g_assert_cmpint (stsim_json_depth (s, strlen (s), 64), ==, 2);
  g_autofree char *deep = nested_json (100000, "", "1", "");
  g_assert_cmpint (stsim_json_depth (deep, strlen (deep), 64), ==, 65);
  g_autoptr(JsonParser) p = json_parser_new ();
  g_autoptr(GError) e = NULL;
  g_assert_false (stsim_json_load_data (p, deep, -1, &e));
  g_assert_error (e, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA);
  assert_message (e, "nest deeper than 64 levels");
  g_clear_error (&e);
  /* 64 levels parse; strings full of brackets parse. */
  g_autofree char *ok = nested_json (64, "", "1", "");
  g_assert_true (stsim_json_load_data (p, ok, -1, &e));
  g_autofree char *brackets = nested_json (100000, "\"", "", "\"");
  g_assert_true (stsim_json_load_data (p, brackets, -1, &e));
  g_assert_no_error (e);
}

/* Doubles written by the project's JSON writer read back exactly, and the
 * output is JSON (json-glib alone wrote 1e308 as "1e+308.0"). */
static void
test_json_write_round_trip (void)
{
  static const double v[] = { 1e308, -1e308, 1e21, 2.5e-300, 0.1, 3.0, 1.0 / 3, 4e-7, G_MAXDOUBLE };
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "s");
  json_builder_add_string_value (b, "1e5.0 \"2E+3.0\" \\e1.0");
  json_builder_set_member_name (b, "v");
  json_builder_begin_array (b);
  for (gsize i = 0; i < G_N_ELEMENTS (v); i++)
    json_builder_add_double_value (b, v[i]);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "nan");
  json_builder_add_double_value (b, NAN);
  json_builder_set_member_name (b, "inf");
  json_builder_add_double_value (b, -INFINITY);
  json_builder_end_object (b);
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  for (int pretty = 0; pretty < 2; pretty++) {
    gsize len = 0;
    g_autofree char *text = stsim_json_to_data (root, pretty, &len);
    g_assert_cmpuint (len, ==, strlen (text));
    g_test_message ("%s", text);
    g_assert_null (strstr (text, "308.0"));
    g_autoptr(JsonParser) p = json_parser_new ();
    g_autoptr(GError) e = NULL;
    g_assert_true (stsim_json_load_data (p, text, -1, &e));
    g_assert_no_error (e);
    JsonObject *o = json_node_get_object (json_parser_get_root (p));
    g_assert_cmpstr (json_object_get_string_member (o, "s"), ==, "1e5.0 \"2E+3.0\" \\e1.0");
    JsonArray *a = json_object_get_array_member (o, "v");
    /* Non-finite values have no JSON form: null. */
    g_assert_true (JSON_NODE_HOLDS_NULL (json_object_get_member (o, "nan")));
    g_assert_true (JSON_NODE_HOLDS_NULL (json_object_get_member (o, "inf")));
    for (gsize i = 0; i < G_N_ELEMENTS (v); i++) {
      JsonNode *n = json_array_get_element (a, i);
      g_assert_cmpint (json_node_get_value_type (n), ==, G_TYPE_DOUBLE);
      g_assert_cmpfloat (json_node_get_double (n), ==, v[i]);
    }
  }
}

/* ---- every JSON input ---------------------------------------------------- */

static void
test_config_json (void)
{
  g_autofree char *deep = nested_json (100000, "{\"model_type\": \"bert\", \"x\": ", "1", "}");
  g_autofree char *cfg = write_tmp ("config.json", deep, -1);
  StsimModelConfig c;
  g_autoptr(GError) e = NULL;
  g_assert_false (stsim_model_config_load (cfg, &c, &e));
  assert_message (e, "config.json");
  assert_message (e, "deeper than 64 levels");
  g_clear_error (&e);
  /* config.json pointing at /dev/zero (a symbolic link). */
  g_unlink (cfg);
  g_assert_cmpint (symlink ("/dev/zero", cfg), ==, 0);
  g_assert_false (stsim_model_config_load (cfg, &c, &e));
  assert_message (e, "character device");
  g_unlink (cfg);
}

/* A model folder from @fixture with @name replaced by @data (or a link to
 * /dev/zero when @data is NULL). */
static char *
model_with (const char *fixture, const char *name, const char *data)
{
  g_autofree char *src = g_test_build_filename (G_TEST_DIST, "fixtures", "models", fixture, NULL);
  char *dir = g_build_filename (tmp, fixture, NULL);
  stsim_test_remove_tree (dir);
  g_assert_cmpint (g_mkdir (dir, 0755), ==, 0);
  g_autoptr(GDir) d = g_dir_open (src, 0, NULL);
  g_assert_nonnull (d);
  const char *n;
  while ((n = g_dir_read_name (d))) {
    g_autofree char *a = g_build_filename (src, n, NULL);
    g_autofree char *b = g_build_filename (dir, n, NULL);
    g_assert_cmpint (symlink (a, b), ==, 0);
  }
  g_autofree char *target = g_build_filename (dir, name, NULL);
  g_unlink (target);
  if (data)
    g_assert_true (g_file_set_contents (target, data, -1, NULL));
  else
    g_assert_cmpint (symlink ("/dev/zero", target), ==, 0);
  return dir;
}

static void
test_tokenizer_files (void)
{
  g_autoptr(GError) e = NULL;
  g_autofree char *deep = nested_json (100000, "{\"a\": ", "0", "}");
  g_autofree char *m1 = model_with ("roberta-tiny", "vocab.json", deep);
  g_assert_null (stsim_tokenizer_new_from_dir (m1, &e));
  assert_message (e, "vocab.json");
  assert_message (e, "deeper than 64 levels");
  g_clear_error (&e);
  g_autofree char *m2 = model_with ("roberta-tiny", "merges.txt", NULL);
  g_assert_null (stsim_tokenizer_new_from_dir (m2, &e));
  assert_message (e, "character device");
  g_clear_error (&e);
  g_autofree char *m3 = model_with ("bert-tiny", "vocab.txt", NULL);
  g_assert_null (stsim_tokenizer_new_from_dir (m3, &e));
  assert_message (e, "vocab.txt");
  assert_message (e, "character device");
  g_clear_error (&e);
  g_autofree char *m4 = model_with ("bert-tiny", "tokenizer_config.json", deep);
  g_assert_null (stsim_tokenizer_new_from_dir (m4, &e));
  assert_message (e, "tokenizer_config.json");
  assert_message (e, "deeper than 64 levels");
  g_clear_error (&e);
  /* Loading the whole model copies the tokenizer files: bounded too. */
  g_autofree char *m5 = model_with ("bert-tiny", "vocab.txt", NULL);
  g_assert_null (stsim_model_load (m5, STSIM_MODEL_FROZEN, 0, &e));
  assert_message (e, "character device");
  g_clear_error (&e);
  g_autofree char *m6 = model_with ("bert-tiny", "config.json", NULL);
  g_assert_null (stsim_model_load (m6, STSIM_MODEL_FROZEN, 0, &e));
  assert_message (e, "character device");
  g_clear_error (&e);
  g_autofree char *m7 = model_with ("bert-tiny", "model.safetensors", NULL);
  g_assert_null (stsim_model_load (m7, STSIM_MODEL_FROZEN, 0, &e));
  assert_message (e, "not a regular file");
}

static void
test_metrics_jsonl (void)
{
  g_autofree char *line = nested_json (100000, "{\"step\": 1, \"x\": ", "1", "}\n");
  g_autofree char *metrics = write_tmp ("metrics.jsonl", line, -1);
  g_autofree char *svg = tmp_path ("curves.svg");
  g_autoptr(GError) e = NULL;
  g_assert_false (stsim_curves_write_svg (metrics, svg, "t", &e));
  assert_message (e, "metrics.jsonl:1: not valid JSON");
  assert_message (e, "deeper than 64 levels");
}

/* ---- recipes, corpora, STS data --------------------------------------------- */

static void
test_recipe_inputs (void)
{
  g_autoptr(StsimRegistry) reg = stsim_registry_new ();
  g_autoptr(GError) e = NULL;
  g_assert_null (stsim_recipe_load (reg, "/dev/zero", NULL, NULL, &e));
  assert_message (e, "cannot read recipe: /dev/zero is a character device");
  g_clear_error (&e);
  g_autofree char *inc = write_tmp ("inc.ini", "[run]\ninclude = /dev/zero\n", -1);
  g_assert_null (stsim_recipe_load (reg, inc, NULL, NULL, &e));
  assert_message (e, "include '/dev/zero': /dev/zero is a character device");
  g_clear_error (&e);
  /* A recipe over the limit. */
  g_autofree char *big = tmp_path ("big.ini");
  GString *s = g_string_new ("[run]\n");
  while (s->len <= STSIM_LIMIT_RECIPE)
    g_string_append (s, "# a comment line that pads the recipe out to the limit and past it\n");
  g_assert_true (g_file_set_contents (big, s->str, (gssize) s->len, NULL));
  g_string_free (s, TRUE);
  g_assert_null (stsim_recipe_load (reg, big, NULL, NULL, &e));
  assert_message (e, "over the 4 MiB limit");
  g_unlink (big);
}

static void
test_corpus_and_data (void)
{
  g_autoptr(GError) e = NULL;
  const char *const zero[] = { "/dev/zero", NULL };
  g_assert_null (stsim_corpus_load_lines (zero, &e));
  assert_message (e, "corpus: /dev/zero is a character device");
  g_clear_error (&e);
  const char *const cols[] = { "sent0", "sent1", NULL };
  g_assert_null (stsim_corpus_load_csv ("/dev/zero", cols, &e));
  assert_message (e, "character device");
  g_clear_error (&e);
  g_assert_null (stsim_sts_read_benchmark ("/dev/zero", "test", &e));
  assert_message (e, "/dev/zero");
  assert_message (e, "character device");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  signal (SIGPIPE, SIG_IGN);
  tmp = g_dir_make_tmp ("stsim-bounded-XXXXXX", NULL);
  g_unsetenv ("STSIM_MAX_INPUT_MB");
  g_test_add_func ("/io/bounded/file-limits", test_file_limits);
  g_test_add_func ("/io/bounded/fifo-endless", test_fifo_endless);
  g_test_add_func ("/io/bounded/stream-line", test_stream_line);
  g_test_add_func ("/io/bounded/json-depth", test_json_depth);
  g_test_add_func ("/io/bounded/json-write-round-trip", test_json_write_round_trip);
  g_test_add_func ("/io/bounded/config-json", test_config_json);
  g_test_add_func ("/io/bounded/tokenizer-files", test_tokenizer_files);
  g_test_add_func ("/io/bounded/metrics-jsonl", test_metrics_jsonl);
  g_test_add_func ("/io/bounded/recipe", test_recipe_inputs);
  g_test_add_func ("/io/bounded/corpus-and-data", test_corpus_and_data);
  int rc = g_test_run ();
  stsim_test_remove_tree (tmp);
  return rc;
}
