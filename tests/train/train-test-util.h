/* train-test-util.h: small helpers shared by the trainer tests. */
#pragma once
#include <stdarg.h>
#include <glib.h>
#include <glib/gstdio.h>

/* Removes @path and everything below it. */
static inline void
train_test_rm_rf (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK)) {
    GDir *d = g_dir_open (path, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name (d))) {
      char *child = g_build_filename (path, name, NULL);
      train_test_rm_rf (child);
      g_free (child);
    }
    if (d)
      g_dir_close (d);
    g_rmdir (path);
  } else
    g_unlink (path);
}

/* tests/fixtures (G_TEST_SRCDIR is tests/ under meson test). */
static inline char *
train_test_fixture (const char *first, ...)
{
  const char *src = g_getenv ("G_TEST_SRCDIR");
  char *path = g_build_filename (src ? src : ".", "fixtures", first, NULL);
  va_list ap;
  const char *part;
  va_start (ap, first);
  while ((part = va_arg (ap, const char *))) {
    char *next = g_build_filename (path, part, NULL);
    g_free (path);
    path = next;
  }
  va_end (ap);
  return path;
}

/* An objective straight from the registry (stsim_component_new_simple, label
 * = its name, no context), NULL-terminated key, value, ... pairs; fails the
 * test on any error. */
#define train_test_objective(reg, name, ...) ({                                      \
    GError *err_ = NULL;                                                             \
    StsimComponent *c_ = stsim_component_new_simple ((reg), STSIM_KIND_OBJECTIVE, (name), \
                                                     (name), NULL, &err_, __VA_ARGS__); \
    g_assert_no_error (err_);                                                        \
    g_assert_nonnull (c_);                                                           \
    c_; })
