/* Every recipe shipped under recipes/ validates against the real plugins:
 * `stsim-inspect --recipe FILE` resolves it (includes merged, every key,
 * type, range, choice and section reference checked) and exits 0. The files
 * are found by walking the folder, so a new recipe is covered without
 * touching this test. Model folders and runs/ outputs need not exist:
 * validation does not open them. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/wait.h>

static void
collect (const char *dir, GPtrArray *out)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) d = g_dir_open (dir, 0, &error);
  g_assert_no_error (error);
  const char *name;
  while ((name = g_dir_read_name (d))) {
    g_autofree char *path = g_build_filename (dir, name, NULL);
    if (g_file_test (path, G_FILE_TEST_IS_DIR))
      collect (path, out);
    else if (g_str_has_suffix (name, ".ini"))
      g_ptr_array_add (out, g_steal_pointer (&path));
  }
}

static gint
compare_paths (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static void
test_recipe (gconstpointer data)
{
  const char *path = data;
  const char *inspect = g_getenv ("STSIM_INSPECT");
  const char *plugins = g_getenv ("STSIM_PLUGIN_PATH");
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(GError) error = NULL;
  int status = -1;

  g_assert_nonnull (inspect);
  g_assert_nonnull (plugins);
  const char *argv[] = { inspect, "--plugin-path", plugins, "--recipe", path, NULL };
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error));
  g_assert_no_error (error);
  g_assert_true (WIFEXITED (status));
  if (WEXITSTATUS (status) != 0)
    g_test_message ("%s:\n%s", path, err);
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);
  /* The resolved text names every merged file first, so an include that was
   * silently skipped would show here. */
  g_assert_nonnull (strstr (out, "# Resolved recipe"));
  /* Shipped recipes use no deprecated key (e.g. [train] pooler). */
  g_assert_null (strstr (err, "deprecated"));
}

/* Runs stsim-inspect --recipe on a shipped recipe with @set (NULL-terminated
 * overrides); returns its exit status, stderr in *err. */
static int
inspect_with (const char *recipe, const char *const *set, char **err)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "..", "recipes", recipe, NULL);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  int status = -1;

  g_ptr_array_add (argv, (gpointer) g_getenv ("STSIM_INSPECT"));
  g_ptr_array_add (argv, "--plugin-path");
  g_ptr_array_add (argv, (gpointer) g_getenv ("STSIM_PLUGIN_PATH"));
  g_ptr_array_add (argv, "--recipe");
  g_ptr_array_add (argv, path);
  for (guint i = 0; set[i]; i++) {
    g_ptr_array_add (argv, "--set");
    g_ptr_array_add (argv, (gpointer) set[i]);
  }
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, err, &status,
                               &error));
  g_assert_no_error (error);
  g_assert_true (WIFEXITED (status));
  g_test_message ("%s:\n%s", recipe, *err);
  return WEXITSTATUS (status);
}

/* The quick start, changed one key at a time as a student would: a label
 * given without its kind (or a kind without its label) names the section
 * that has the key; the encoder's pooler alone switches the pooling. */
static void
test_quickstart_overrides (void)
{
  g_autofree char *err = NULL;

  g_assert_cmpint (inspect_with ("quickstart.ini", (const char *const[]) { "objective.temperature=0.1",
                                                                           "contrastive.temperature=0.1", NULL },
                                 &err), ==, 1);
  g_assert_nonnull (strstr (err, "--set 'objective.temperature=0.1': this recipe has no section [objective] "
                                 "(did you mean 'objective.contrastive.temperature'?)"));
  g_assert_nonnull (strstr (err, "--set 'contrastive.temperature=0.1': this recipe has no section [contrastive] "
                                 "(did you mean 'objective.contrastive.temperature'?)"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (inspect_with ("quickstart.ini", (const char *const[]) { "encoder.pooler=cls", NULL }, &err), ==, 0);
  g_clear_pointer (&err, g_free);
  /* DiffCSE's BN head never trains the MLP that cls would evaluate through. */
  g_assert_cmpint (inspect_with ("diffcse-bert-base.ini", (const char *const[]) { "encoder.pooler=cls", NULL }, &err),
                   ==, 1);
  g_assert_nonnull (strstr (err, "[encoder] pooler = cls evaluates through the MLP"));
}

/* stsim-inspect --recipe refuses an unknown STS task as stsim-run does
 * (it checked only the parameter's type before). */
static void
test_unknown_sts_task (void)
{
  const char *inspect = g_getenv ("STSIM_INSPECT");
  const char *plugins = g_getenv ("STSIM_PLUGIN_PATH");
  g_autofree char *tmp = g_dir_make_tmp ("stsim-recipes-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (tmp, "bad-task.ini", NULL);
  g_assert_true (g_file_set_contents (path, "[encoder]\nuse = bow-idf\n[evaluator.sts]\nuse = sts\n"
                                            "tasks = STS12, STS17\n", -1, NULL));
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(GError) error = NULL;
  int status = -1;
  const char *argv[] = { inspect, "--plugin-path", plugins, "--recipe", path, NULL };
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error));
  g_assert_true (WIFEXITED (status));
  g_test_message ("%s", err);
  g_assert_cmpint (WEXITSTATUS (status), ==, 1);
  g_assert_nonnull (strstr (err, "bad-task.ini:5: [evaluator.sts] tasks: 'STS17' is not one of STS12|"));
  g_unlink (path);
  g_rmdir (tmp);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_autofree char *root = g_test_build_filename (G_TEST_DIST, "..", "recipes", NULL);
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  collect (root, files);
  g_ptr_array_sort (files, compare_paths);  /* stable test names and order */
  /* The folder ships at least the quick start, the published settings and
   * the mini comparison: an empty walk means a wrong path, not success. */
  g_assert_cmpuint (files->len, >=, 20);
  for (guint i = 0; i < files->len; i++) {
    const char *path = files->pdata[i];
    g_autofree char *rel = g_strdup (path + strlen (root));
    g_autofree char *test = g_strconcat ("/recipes", rel, NULL);
    g_test_add_data_func (test, path, test_recipe);
  }
  g_test_add_func ("/recipes-overrides/quickstart", test_quickstart_overrides);
  g_test_add_func ("/recipes-check/unknown-sts-task", test_unknown_sts_task);
  return g_test_run ();
}
