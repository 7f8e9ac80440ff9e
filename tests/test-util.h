/* test-util.h: helpers shared by the test programs (not part of libstsim). */
#pragma once

#include <glib.h>

/* Removes @path: a file, or a folder with everything under it. Symbolic
 * links are removed, never followed. Errors are ignored: tests call it to
 * clean up their own temporary folders. */
void stsim_test_remove_tree (const char *path);
