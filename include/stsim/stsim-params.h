/* stsim-params.h: parameter tables, the single source of truth for what a
 * recipe may say about a component.
 *
 * A plugin declares one static table; the registry validates it at load time,
 * the recipe parser checks every key against it, stsim-inspect prints it and
 * the resolved recipe writes every value back from it.
 *
 *   static const StsimParamSpec contrastive_params[] = {
 *     { "temperature", STSIM_PARAM_DOUBLE, "0.05", .min = 1e-4, .max = 10,
 *       .blurb = "softmax temperature tau of the cosine logits" },
 *     { "pooler", STSIM_PARAM_ENUM, "cls", .choices = "cls|avg|avg_first_last",
 *       .blurb = "how token states become one vector" },
 *     { "teachers", STSIM_PARAM_REFS, NULL, .choices = "teacher",
 *       .blurb = "labels of teacher sections", .flags = STSIM_PARAM_REQUIRED },
 *     { NULL }
 *   };
 *
 * Defaults are text, parsed by exactly the code that parses recipe values, so
 * a default can never be something a recipe could not say.
 */
#pragma once
#include <glib.h>
#include "stsim-export.h"

G_BEGIN_DECLS

typedef enum {
  STSIM_PARAM_BOOL,     /* true/false (also yes/no, on/off, 1/0) */
  STSIM_PARAM_INT,      /* 64-bit signed; range [min, max] when min < max */
  STSIM_PARAM_DOUBLE,   /* finite double; range [min, max] when min < max */
  STSIM_PARAM_STRING,   /* any UTF-8 text; with choices "a|b|c": a comma-separated list of them */
  STSIM_PARAM_ENUM,     /* one of choices "a|b|c" */
  STSIM_PARAM_PATH,     /* a file or folder; ${data} and ${recipe_dir} expand */
  STSIM_PARAM_REFS,     /* comma-separated labels of other sections ("teacher.t1, teacher.t2");
                           choices, when set, names the kind they must have */
  STSIM_PARAM_N_TYPES
} StsimParamType;

typedef enum {
  STSIM_PARAM_REQUIRED   = 1u << 0,  /* must be given; default_value must then be NULL */
  STSIM_PARAM_EXPERT     = 1u << 1,  /* hidden from the short inspect listing */
  STSIM_PARAM_DEPRECATED = 1u << 2,  /* accepted with a warning */
} StsimParamFlags;

typedef struct {
  const char     *name;          /* [a-z][a-z0-9_]*, unique within the table */
  StsimParamType  type;
  const char     *default_value; /* NULL: no default (unset unless given) */
  double          min, max;      /* INT/DOUBLE bounds, inclusive, used when min < max */
  const char     *choices;       /* ENUM, STRING list: "a|b|c"; REFS: required kind or NULL */
  const char     *blurb;         /* one line, shown by stsim-inspect */
  guint           flags;         /* StsimParamFlags */
} StsimParamSpec;

STSIM_API
const char *stsim_param_type_name (StsimParamType type);

/* Resolved values of one component's table. */
typedef struct _StsimParams StsimParams;

STSIM_API
StsimParams *stsim_params_new (const StsimParamSpec *specs);
STSIM_API
void         stsim_params_free (StsimParams *params);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimParams, stsim_params_free)

/* Checks @specs (names, types, defaults that parse, ranges, choices) as the
 * registry does before it trusts a plugin. @where prefixes messages. */
STSIM_API
gboolean stsim_param_specs_validate (const StsimParamSpec *specs, const char *where, GError **error);

STSIM_API
const StsimParamSpec *stsim_params_get_specs (const StsimParams *params);
STSIM_API
const StsimParamSpec *stsim_param_specs_lookup (const StsimParamSpec *specs, const char *name);

/* Parses @value with the rules of the parameter's type and range. */
STSIM_API
gboolean stsim_params_set (StsimParams *params, const char *name, const char *value, GError **error);
/* Applies defaults; fails naming each required parameter that is still unset. */
STSIM_API
gboolean stsim_params_finish (StsimParams *params, GError **error);

STSIM_API
gboolean           stsim_params_is_set     (const StsimParams *params, const char *name);
/* TRUE when @name holds its spec's default value (or, without a default, is
 * unset). After stsim_params_finish() a default counts as set, and a resolved
 * recipe writes defaults out, so "the user left it alone" is this test. */
STSIM_API
gboolean           stsim_params_is_default (const StsimParams *params, const char *name);
STSIM_API
gboolean           stsim_params_get_bool   (const StsimParams *params, const char *name);
STSIM_API
gint64             stsim_params_get_int    (const StsimParams *params, const char *name);
STSIM_API
double             stsim_params_get_double (const StsimParams *params, const char *name);
/* STRING, ENUM and PATH values; NULL when unset. */
STSIM_API
const char        *stsim_params_get_string (const StsimParams *params, const char *name);
/* REFS: the labels, NULL-terminated; *n_out (optional) gets their count. */
STSIM_API
const char *const *stsim_params_get_refs   (const StsimParams *params, const char *name, gsize *n_out);
/* Canonical text of a value, as the resolved recipe writes it; NULL when unset. */
STSIM_API
char              *stsim_params_to_string  (const StsimParams *params, const char *name);

/* Additions beyond the first contract. */
/* A deep copy (values and path variables). */
STSIM_API
StsimParams       *stsim_params_copy       (const StsimParams *params);
/* What ${data} and ${recipe_dir} expand to in PATH values set or defaulted
 * afterwards. Unset data_dir: stsim's data root (STSIM_DATA or the build
 * default); unset recipe_dir: ${recipe_dir} is an error. */
STSIM_API
void               stsim_params_set_path_vars (StsimParams *params, const char *data_dir, const char *recipe_dir);
/* Parses @value for @spec without storing it (the recipe parser's check);
 * @canonical_out (optional) gets the canonical text. */
STSIM_API
gboolean           stsim_param_parse_check (const StsimParamSpec *spec, const char *value,
                                            const char *data_dir, const char *recipe_dir,
                                            char **canonical_out, GError **error);

G_END_DECLS
