/* train-test-util.h: small helpers shared by the trainer tests. */
#pragma once
#include <stdarg.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "stsim/stsim-plugin.h"
#include "test-util.h"

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

/* The objective @c's loss on @step (its vtable's loss op); fails the test
 * on an error and checks that the loss is a scalar. */
static inline StsimTensor *
train_test_loss (StsimComponent *c, StsimTrainStep *step)
{
  GError *err = NULL;
  const StsimObjectiveVTable *vt = stsim_component_get_desc (c)->vtable;
  StsimTensor *loss = NULL;
  if (!vt->loss (stsim_component_get_state (c), step, &loss, &err))
    g_error ("loss failed: %s", err->message);
  g_assert_nonnull (loss);
  g_assert_cmpint (loss->numel, ==, 1);
  return loss;
}
