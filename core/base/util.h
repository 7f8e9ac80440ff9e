/* util.h: small helpers shared by the registry, parameters and recipes (core-internal). */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

/* Levenshtein distance in bytes, case-insensitive for ASCII. */
guint       stsim_util_edit_distance (const char *a, const char *b);
/* The candidate nearest to @name when it is close enough to be a likely typo
 * (distance <= max (2, strlen (name) / 3)), else NULL. @n < 0: NULL-terminated. */
const char *stsim_util_nearest       (const char *name, const char *const *candidates, gssize n);
/* " (did you mean 'NEAREST'?)", or "" when @nearest is NULL; newly allocated. */
char       *stsim_util_hint          (const char *nearest);
/* stsim_util_hint (stsim_util_nearest (...)). */
char       *stsim_util_did_you_mean  (const char *name, const char *const *candidates, gssize n);
/* [a-z][a-z0-9<extra>]* */
gboolean    stsim_util_name_is_valid (const char *name, const char *extra);
/* A section label: KIND or KIND.LABEL, KIND [a-z][a-z0-9]*, LABEL
 * [a-z0-9][a-z0-9_-]*. @kind_out (optional) gets KIND. */
gboolean    stsim_util_label_is_valid (const char *label, char **kind_out);
/* Shortest text that parses back (g_ascii_strtod) to exactly @v. */
char       *stsim_util_format_double (double v);

G_END_DECLS
