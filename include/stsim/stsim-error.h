/* stsim-error.h: the one error domain of libstsim and its plugins.
 *
 * Contract: every fallible function returns gboolean (or a pointer, NULL on
 * failure) and fills a GError in STSIM_ERROR. Messages name the file, line,
 * key or tensor at fault and end with a hint where one exists. The library
 * never calls exit() or abort(); only the tools map errors to exit codes.
 *
 *   g_autoptr(GError) err = NULL;
 *   if (!stsim_recipe_validate (recipe, &err))
 *     g_printerr ("%s\n", err->message);
 */
#pragma once
#include <glib.h>
#include "stsim-export.h"

G_BEGIN_DECLS

#define STSIM_ERROR (stsim_error_quark ())
STSIM_API
GQuark stsim_error_quark (void);

/* Codes are stable: docs/error-codes.md lists each with its meaning. */
typedef enum {
  STSIM_ERROR_FAILED = 1,     /* anything not covered below */
  STSIM_ERROR_INVALID,        /* a value out of range, wrong type, bad argument */
  STSIM_ERROR_IO,             /* open/read/write/rename failed */
  STSIM_ERROR_PARSE,          /* malformed text: recipe, JSON, CSV, vocab */
  STSIM_ERROR_NOT_FOUND,      /* a file, component, key or tensor that is not there */
  STSIM_ERROR_PLUGIN,         /* a plugin failed to load or validate */
  STSIM_ERROR_RECIPE,         /* a recipe that does not validate */
  STSIM_ERROR_CHECKPOINT,     /* a corrupt or mismatched checkpoint/safetensors file */
  STSIM_ERROR_DATA,           /* malformed data set or corpus */
  STSIM_ERROR_NUMERIC,        /* NaN/Inf where a number was needed */
  STSIM_ERROR_ENCODING,       /* invalid UTF-8 */
  STSIM_ERROR_UNSUPPORTED,    /* valid but not implemented (e.g. an unknown dtype) */
} StsimErrorCode;

STSIM_API
const char *stsim_error_code_name (StsimErrorCode code);

G_END_DECLS
