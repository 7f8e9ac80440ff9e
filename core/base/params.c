/* params.c: parameter tables (stsim-params.h): parsing, validation, values. */
#include "stsim/stsim-params.h"
#include "stsim/stsim-error.h"
#include "stsim/stsim-plugin.h"
#include "stsim/stsim-registry.h"
#include "base/util.h"

#include <errno.h>
#include <math.h>
#include <string.h>

typedef struct {
  gboolean set;
  gboolean b;
  gint64   i;
  double   d;
  char    *s;     /* STRING, ENUM, PATH (expanded) */
  char   **refs;  /* REFS */
} ParamValue;

struct _StsimParams {
  const StsimParamSpec *specs;
  guint                 n;
  ParamValue           *values;
  char                 *data_dir;
  char                 *recipe_dir;
};

static const char *const type_names[STSIM_PARAM_N_TYPES] = {
  [STSIM_PARAM_BOOL] = "bool", [STSIM_PARAM_INT] = "int", [STSIM_PARAM_DOUBLE] = "double",
  [STSIM_PARAM_STRING] = "string", [STSIM_PARAM_ENUM] = "enum", [STSIM_PARAM_PATH] = "path",
  [STSIM_PARAM_REFS] = "refs",
};

const char *
stsim_param_type_name (StsimParamType type)
{
  return (guint) type < STSIM_PARAM_N_TYPES ? type_names[type] : "invalid";
}

static void
value_clear (ParamValue *v)
{
  g_free (v->s);
  g_strfreev (v->refs);
  memset (v, 0, sizeof *v);
}

/* ---- parsing ------------------------------------------------------------ */

static gboolean
has_range (const StsimParamSpec *spec)
{
  return spec->min < spec->max;
}

static gboolean
check_range (const StsimParamSpec *spec, double v, const char *text, GError **error)
{
  if (!has_range (spec) || (v >= spec->min && v <= spec->max))
    return TRUE;
  if (spec->type == STSIM_PARAM_INT)
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "%s: %s is outside [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]",
                 spec->name, text, (gint64) spec->min, (gint64) spec->max);
  else {
    g_autofree char *lo = stsim_util_format_double (spec->min);
    g_autofree char *hi = stsim_util_format_double (spec->max);
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s: %s is outside [%s, %s]",
                 spec->name, text, lo, hi);
  }
  return FALSE;
}

static gboolean
parse_bool (const char *t, gboolean *out)
{
  static const char *const yes[] = { "true", "yes", "on", "1" }, *const no[] = { "false", "no", "off", "0" };
  for (guint i = 0; i < G_N_ELEMENTS (yes); i++) {
    if (g_ascii_strcasecmp (t, yes[i]) == 0)
      return *out = TRUE, TRUE;
    if (g_ascii_strcasecmp (t, no[i]) == 0)
      return *out = FALSE, TRUE;
  }
  return FALSE;
}

static char *
expand_path (const StsimParamSpec *spec, const char *t, const char *data_dir, const char *recipe_dir,
             GError **error)
{
  GString *out = g_string_new (NULL);
  const char *p = t;

  while (*p) {
    if (p[0] == '$' && p[1] == '{') {
      const char *end = strchr (p, '}');
      g_autofree char *var = end ? g_strndup (p + 2, end - p - 2) : NULL;
      if (var && strcmp (var, "data") == 0) {
        g_autofree char *def = data_dir ? NULL : stsim_data_dir_resolve (NULL);
        g_string_append (out, data_dir ? data_dir : def);
      } else if (var && strcmp (var, "recipe_dir") == 0) {
        if (!recipe_dir) {
          g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                       "%s: '%s' uses ${recipe_dir} outside a recipe file", spec->name, t);
          return g_string_free (out, TRUE), NULL;
        }
        g_string_append (out, recipe_dir);
      } else {
        g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                     "%s: unknown variable in path '%s' (known: ${data}, ${recipe_dir})", spec->name, t);
        return g_string_free (out, TRUE), NULL;
      }
      p = end + 1;
    } else
      g_string_append_c (out, *p++);
  }
  return g_string_free (out, FALSE);
}
/* STRING with choices: a comma-separated list, each item one of choices
 * "a|b|c" (e.g. the sts evaluator's tasks), so that a recipe check finds a
 * wrong item, not the component's creation. */
static gboolean
check_list (const StsimParamSpec *spec, const char *text, GError **error)
{
  g_auto(GStrv) choices = g_strsplit (spec->choices, "|", -1);
  g_auto(GStrv) parts = g_strsplit (text, ",", -1);
  guint n = 0;
  for (guint i = 0; parts[i]; i++) {
    const char *item = g_strstrip (parts[i]);
    if (*item == '\0')
      continue;
    n++;
    if (!g_strv_contains ((const char *const *) choices, item)) {
      g_autofree char *hint = stsim_util_did_you_mean (item, (const char *const *) choices, -1);
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s: '%s' is not one of %s%s", spec->name, item,
                   spec->choices, hint);
      return FALSE;
    }
  }
  if (n == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s: empty list (give one or more of %s, comma-separated)",
                 spec->name, spec->choices);
    return FALSE;
  }
  return TRUE;
}


static gboolean
parse_value (const StsimParamSpec *spec, const char *text, const char *data_dir, const char *recipe_dir,
             ParamValue *out, GError **error)
{
  g_autofree char *t = g_strstrip (g_strdup (text));
  ParamValue v = { .set = TRUE };

  if (!g_utf8_validate (text, -1, NULL)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_ENCODING, "value for %s is not valid UTF-8", spec->name);
    return FALSE;
  }

  switch (spec->type) {
  case STSIM_PARAM_BOOL:
    if (!parse_bool (t, &v.b)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                   "value '%s' for %s is not a boolean (true/false, yes/no, on/off, 1/0)", t, spec->name);
      return FALSE;
    }
    break;

  case STSIM_PARAM_INT: {
    g_autoptr(GError) e = NULL;
    if (!g_ascii_string_to_signed (t, 10, G_MININT64, G_MAXINT64, &v.i, &e)) {
      gboolean overflow = g_error_matches (e, G_NUMBER_PARSER_ERROR, G_NUMBER_PARSER_ERROR_OUT_OF_BOUNDS);
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "value '%s' for %s is not %s", t, spec->name,
                   overflow ? "a 64-bit integer (too large)" : "an integer");
      return FALSE;
    }
    if (!check_range (spec, (double) v.i, t, error))
      return FALSE;
    break;
  }

  case STSIM_PARAM_DOUBLE: {
    char *end = NULL;
    errno = 0;
    v.d = g_ascii_strtod (t, &end);
    if (*t == '\0' || end == t || *end != '\0') {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "value '%s' for %s is not a number", t, spec->name);
      return FALSE;
    }
    if (!isfinite (v.d)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_NUMERIC, "value '%s' for %s is not a finite number", t,
                   spec->name);
      return FALSE;
    }
    if (!check_range (spec, v.d, t, error))
      return FALSE;
    break;
  }

  case STSIM_PARAM_STRING:
    if (spec->choices && !check_list (spec, t, error))
      return FALSE;
    v.s = g_strdup (text);
    break;

  case STSIM_PARAM_ENUM: {
    g_auto(GStrv) choices = g_strsplit (spec->choices ? spec->choices : "", "|", -1);
    if (!g_strv_contains ((const char *const *) choices, t)) {
      g_autofree char *hint = stsim_util_did_you_mean (t, (const char *const *) choices, -1);
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s: '%s' is not one of %s%s", spec->name, t,
                   spec->choices ? spec->choices : "(no choices)", hint);
      return FALSE;
    }
    v.s = g_steal_pointer (&t);
    break;
  }

  case STSIM_PARAM_PATH:
    if (*t == '\0') {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "value for %s is an empty path", spec->name);
      return FALSE;
    }
    if (!(v.s = expand_path (spec, t, data_dir, recipe_dir, error)))
      return FALSE;
    break;

  case STSIM_PARAM_REFS: {
    g_auto(GStrv) parts = g_strsplit (t, ",", -1);
    GPtrArray *labels = g_ptr_array_new_with_free_func (g_free);
    for (guint i = 0; parts[i]; i++) {
      g_autofree char *kind = NULL;
      char *l = g_strstrip (parts[i]);
      if (*l == '\0' && parts[1] == NULL)
        break;  /* "" is the empty list */
      if (!stsim_util_label_is_valid (l, &kind)) {
        g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                     "%s: '%s' is not a section label (KIND or KIND.LABEL)", spec->name, l);
      } else if (spec->choices && strcmp (kind, spec->choices) != 0) {
        g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s: '%s' is not a %s section", spec->name, l,
                     spec->choices);
      } else if (g_ptr_array_find_with_equal_func (labels, l, g_str_equal, NULL)) {
        g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s: '%s' is listed twice", spec->name, l);
      } else {
        g_ptr_array_add (labels, g_strdup (l));
        continue;
      }
      g_ptr_array_unref (labels);
      return FALSE;
    }
    g_ptr_array_add (labels, NULL);
    v.refs = (char **) g_ptr_array_free (labels, FALSE);
    break;
  }

  default:
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s has an invalid type %d", spec->name, spec->type);
    return FALSE;
  }

  *out = v;
  return TRUE;
}

static char *
value_to_string (const StsimParamSpec *spec, const ParamValue *v)
{
  if (!v->set)
    return NULL;
  switch (spec->type) {
  case STSIM_PARAM_BOOL:   return g_strdup (v->b ? "true" : "false");
  case STSIM_PARAM_INT:    return g_strdup_printf ("%" G_GINT64_FORMAT, v->i);
  case STSIM_PARAM_DOUBLE: return stsim_util_format_double (v->d);
  case STSIM_PARAM_REFS:   return g_strjoinv (", ", v->refs);
  default:                 return g_strdup (v->s);
  }
}

gboolean
stsim_param_parse_check (const StsimParamSpec *spec, const char *value, const char *data_dir,
                         const char *recipe_dir, char **canonical_out, GError **error)
{
  ParamValue v = { 0 };

  g_return_val_if_fail (spec != NULL && value != NULL, FALSE);
  if (!parse_value (spec, value, data_dir, recipe_dir, &v, error))
    return FALSE;
  if (canonical_out)
    *canonical_out = value_to_string (spec, &v);
  value_clear (&v);
  return TRUE;
}

/* ---- tables --------------------------------------------------------------- */

const StsimParamSpec *
stsim_param_specs_lookup (const StsimParamSpec *specs, const char *name)
{
  for (; specs && specs->name; specs++)
    if (strcmp (specs->name, name) == 0)
      return specs;
  return NULL;
}

static void
add_problem (GString *msg, const char *where, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

static void
add_problem (GString *msg, const char *where, const char *fmt, ...)
{
  va_list ap;
  if (msg->len)
    g_string_append (msg, "; ");
  else if (where)
    g_string_append_printf (msg, "%s: ", where);
  va_start (ap, fmt);
  g_string_append_vprintf (msg, fmt, ap);
  va_end (ap);
}

gboolean
stsim_param_specs_validate (const StsimParamSpec *specs, const char *where, GError **error)
{
  g_autoptr(GString) msg = g_string_new (NULL);
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

  for (const StsimParamSpec *s = specs; s && s->name; s++) {
    const char *n = s->name;
    if (!stsim_util_name_is_valid (n, "_")) {
      add_problem (msg, where, "parameter name '%s' is not [a-z][a-z0-9_]*", n);
      continue;
    }
    if (!g_hash_table_add (seen, (gpointer) n))
      add_problem (msg, where, "parameter '%s' is declared twice", n);
    if ((guint) s->type >= STSIM_PARAM_N_TYPES) {
      add_problem (msg, where, "parameter '%s' has an invalid type %d", n, (int) s->type);
      continue;
    }
    if (s->blurb == NULL || s->blurb[0] == '\0')
      add_problem (msg, where, "parameter '%s' has no blurb", n);
    if ((s->flags & STSIM_PARAM_REQUIRED) && s->default_value)
      add_problem (msg, where, "parameter '%s' is required but has a default ('%s')", n, s->default_value);
    if ((s->type == STSIM_PARAM_INT || s->type == STSIM_PARAM_DOUBLE) &&
        (isnan (s->min) || isnan (s->max) || s->min > s->max))
      add_problem (msg, where, "parameter '%s' has an invalid range [%g, %g]", n, s->min, s->max);
    if (s->type == STSIM_PARAM_ENUM || (s->type == STSIM_PARAM_STRING && s->choices)) {
      g_auto(GStrv) choices = g_strsplit (s->choices ? s->choices : "", "|", -1);
      gboolean ok = s->choices && s->choices[0];
      for (guint i = 0; ok && choices[i]; i++)
        ok = choices[i][0] != '\0' && !g_strv_contains ((const char *const *) choices + i + 1, choices[i]);
      if (!ok) {
        add_problem (msg, where, "enum parameter '%s' needs choices \"a|b|c\" (non-empty, distinct), has '%s'",
                     n, s->choices ? s->choices : "(none)");
        continue;
      }
    }
    if (s->type == STSIM_PARAM_REFS && s->choices) {
      StsimKind k;
      if (!stsim_kind_from_name (s->choices, &k))
        add_problem (msg, where, "refs parameter '%s' names an unknown kind '%s'", n, s->choices);
    }
    if (s->default_value) {
      g_autoptr(GError) e = NULL;
      if (!stsim_param_parse_check (s, s->default_value, "/data", "/recipe", NULL, &e))
        add_problem (msg, where, "default of parameter '%s' is invalid: %s", n, e->message);
    }
  }
  if (msg->len) {
    g_set_error_literal (error, STSIM_ERROR, STSIM_ERROR_INVALID, msg->str);
    return FALSE;
  }
  return TRUE;
}

/* ---- values ---------------------------------------------------------------- */

StsimParams *
stsim_params_new (const StsimParamSpec *specs)
{
  StsimParams *p = g_new0 (StsimParams, 1);
  p->specs = specs;
  for (const StsimParamSpec *s = specs; s && s->name; s++)
    p->n++;
  p->values = g_new0 (ParamValue, MAX (p->n, 1));
  return p;
}

void
stsim_params_free (StsimParams *params)
{
  if (!params)
    return;
  for (guint i = 0; i < params->n; i++)
    value_clear (&params->values[i]);
  g_free (params->values);
  g_free (params->data_dir);
  g_free (params->recipe_dir);
  g_free (params);
}

StsimParams *
stsim_params_copy (const StsimParams *params)
{
  StsimParams *c;

  g_return_val_if_fail (params != NULL, NULL);
  c = stsim_params_new (params->specs);
  stsim_params_set_path_vars (c, params->data_dir, params->recipe_dir);
  for (guint i = 0; i < params->n; i++) {
    c->values[i] = params->values[i];
    c->values[i].s = g_strdup (params->values[i].s);
    c->values[i].refs = g_strdupv (params->values[i].refs);
  }
  return c;
}

void
stsim_params_set_path_vars (StsimParams *params, const char *data_dir, const char *recipe_dir)
{
  g_return_if_fail (params != NULL);
  g_free (params->data_dir);
  g_free (params->recipe_dir);
  params->data_dir = g_strdup (data_dir);
  params->recipe_dir = g_strdup (recipe_dir);
}

const StsimParamSpec *
stsim_params_get_specs (const StsimParams *params)
{
  return params->specs;
}

static int
index_of (const StsimParams *params, const char *name)
{
  for (guint i = 0; i < params->n; i++)
    if (strcmp (params->specs[i].name, name) == 0)
      return (int) i;
  return -1;
}

gboolean
stsim_params_set (StsimParams *params, const char *name, const char *value, GError **error)
{
  int i;
  ParamValue v;

  g_return_val_if_fail (params != NULL && name != NULL && value != NULL, FALSE);
  if ((i = index_of (params, name)) < 0) {
    g_autoptr(GPtrArray) names = g_ptr_array_new ();
    for (guint j = 0; j < params->n; j++)
      g_ptr_array_add (names, (gpointer) params->specs[j].name);
    g_autofree char *hint = stsim_util_did_you_mean (name, (const char *const *) names->pdata, names->len);
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "unknown parameter '%s'%s", name, hint);
    return FALSE;
  }
  if (!parse_value (&params->specs[i], value, params->data_dir, params->recipe_dir, &v, error))
    return FALSE;
  value_clear (&params->values[i]);
  params->values[i] = v;
  return TRUE;
}

gboolean
stsim_params_finish (StsimParams *params, GError **error)
{
  g_autoptr(GString) missing = g_string_new (NULL);
  guint n_missing = 0;

  g_return_val_if_fail (params != NULL, FALSE);
  for (guint i = 0; i < params->n; i++) {
    const StsimParamSpec *s = &params->specs[i];
    if (params->values[i].set)
      continue;
    if (s->default_value) {
      if (!parse_value (s, s->default_value, params->data_dir, params->recipe_dir, &params->values[i], error))
        return FALSE;
    } else if (s->flags & STSIM_PARAM_REQUIRED) {
      g_string_append_printf (missing, "%s'%s'", n_missing++ ? ", " : "", s->name);
    }
  }
  if (n_missing) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "missing required parameter%s %s",
                 n_missing > 1 ? "s" : "", missing->str);
    return FALSE;
  }
  return TRUE;
}

#define TYPE_BIT(t) (1u << (t))

/* The value of @name, which must be of one of the types in @types (TYPE_BIT mask). */
static const ParamValue *
get_value (const StsimParams *params, const char *name, guint types)
{
  int i;

  g_return_val_if_fail (params != NULL && name != NULL, NULL);
  i = index_of (params, name);
  if (i < 0) {
    g_critical ("stsim_params_get: no parameter '%s'", name);
    return NULL;
  }
  if (!(types & TYPE_BIT (params->specs[i].type))) {
    g_critical ("stsim_params_get: parameter '%s' is a %s parameter; use the getter of that type", name,
                stsim_param_type_name (params->specs[i].type));
    return NULL;
  }
  return &params->values[i];
}

gboolean
stsim_params_is_set (const StsimParams *params, const char *name)
{
  int i;
  g_return_val_if_fail (params != NULL && name != NULL, FALSE);
  i = index_of (params, name);
  return i >= 0 && params->values[i].set;
}

gboolean
stsim_params_is_default (const StsimParams *params, const char *name)
{
  int i;
  g_return_val_if_fail (params != NULL && name != NULL, FALSE);
  if ((i = index_of (params, name)) < 0)
    return FALSE;
  const StsimParamSpec *spec = &params->specs[i];
  const ParamValue *now = &params->values[i];
  if (!spec->default_value)
    return !now->set;
  /* Compare parsed values, so that "0.05" equals 0.05 and a PATH default
   * compares after ${data} expansion. */
  ParamValue def = { 0 };
  if (!parse_value (spec, spec->default_value, params->data_dir, params->recipe_dir, &def, NULL))
    return FALSE;
  gboolean same = now->b == def.b && now->i == def.i && (now->d == def.d || (isnan (now->d) && isnan (def.d))) &&
                  g_strcmp0 (now->s, def.s) == 0;
  for (guint k = 0; same && (now->refs || def.refs); k++) {
    const char *x = now->refs ? now->refs[k] : NULL, *y = def.refs ? def.refs[k] : NULL;
    same = g_strcmp0 (x, y) == 0;
    if (!x || !y)
      break;
  }
  value_clear (&def);
  return same;
}

gboolean
stsim_params_get_bool (const StsimParams *params, const char *name)
{
  const ParamValue *v = get_value (params, name, TYPE_BIT (STSIM_PARAM_BOOL));
  return v ? v->b : FALSE;
}

gint64
stsim_params_get_int (const StsimParams *params, const char *name)
{
  const ParamValue *v = get_value (params, name, TYPE_BIT (STSIM_PARAM_INT));
  return v ? v->i : 0;
}

double
stsim_params_get_double (const StsimParams *params, const char *name)
{
  const ParamValue *v = get_value (params, name, TYPE_BIT (STSIM_PARAM_DOUBLE));
  return v ? v->d : 0.0;
}

const char *
stsim_params_get_string (const StsimParams *params, const char *name)
{
  const ParamValue *v = get_value (params, name, TYPE_BIT (STSIM_PARAM_STRING) | TYPE_BIT (STSIM_PARAM_ENUM) |
                                                 TYPE_BIT (STSIM_PARAM_PATH));
  return v ? v->s : NULL;
}

const char *const *
stsim_params_get_refs (const StsimParams *params, const char *name, gsize *n_out)
{
  const ParamValue *v = get_value (params, name, TYPE_BIT (STSIM_PARAM_REFS));
  if (n_out)
    *n_out = v && v->refs ? g_strv_length (v->refs) : 0;
  return v ? (const char *const *) v->refs : NULL;
}

char *
stsim_params_to_string (const StsimParams *params, const char *name)
{
  int i;
  g_return_val_if_fail (params != NULL && name != NULL, NULL);
  i = index_of (params, name);
  g_return_val_if_fail (i >= 0, NULL);
  return value_to_string (&params->specs[i], &params->values[i]);
}
