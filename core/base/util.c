/* util.c: edit distance, suggestions, name checks, number formatting. */
#include "base/util.h"

#include <math.h>
#include <string.h>

guint
stsim_util_edit_distance (const char *a, const char *b)
{
  gsize la = strlen (a), lb = strlen (b);
  g_autofree guint *row = g_new (guint, lb + 1);

  for (gsize j = 0; j <= lb; j++)
    row[j] = j;
  for (gsize i = 1; i <= la; i++) {
    guint diag = row[0];
    row[0] = i;
    for (gsize j = 1; j <= lb; j++) {
      guint up = row[j];
      guint cost = g_ascii_tolower (a[i - 1]) == g_ascii_tolower (b[j - 1]) ? 0 : 1;
      row[j] = MIN (MIN (row[j] + 1, row[j - 1] + 1), diag + cost);
      diag = up;
    }
  }
  return row[lb];
}

const char *
stsim_util_nearest (const char *name, const char *const *candidates, gssize n)
{
  const char *best = NULL;
  guint best_d = G_MAXUINT;
  guint limit = MAX (2, (guint) strlen (name) / 3);

  if (candidates == NULL)
    return NULL;
  for (gsize i = 0; n < 0 ? candidates[i] != NULL : i < (gsize) n; i++) {
    guint d = stsim_util_edit_distance (name, candidates[i]);
    if (d < best_d) {
      best_d = d;
      best = candidates[i];
    }
  }
  return best_d <= limit ? best : NULL;
}

char *
stsim_util_hint (const char *nearest)
{
  return nearest ? g_strdup_printf (" (did you mean '%s'?)", nearest) : g_strdup ("");
}

char *
stsim_util_did_you_mean (const char *name, const char *const *candidates, gssize n)
{
  return stsim_util_hint (stsim_util_nearest (name, candidates, n));
}

gboolean
stsim_util_name_is_valid (const char *name, const char *extra)
{
  if (name == NULL || !(name[0] >= 'a' && name[0] <= 'z'))
    return FALSE;
  for (const char *p = name + 1; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || (extra && strchr (extra, *p))))
      return FALSE;
  return TRUE;
}

gboolean
stsim_util_label_is_valid (const char *label, char **kind_out)
{
  const char *dot = strchr (label, '.');
  g_autofree char *kind = dot ? g_strndup (label, dot - label) : g_strdup (label);

  if (!stsim_util_name_is_valid (kind, NULL))
    return FALSE;
  if (dot) {
    const char *l = dot + 1;
    if (!g_ascii_islower (*l) && !g_ascii_isdigit (*l))
      return FALSE;
    for (; *l; l++)
      if (!g_ascii_islower (*l) && !g_ascii_isdigit (*l) && *l != '_' && *l != '-')
        return FALSE;
  }
  if (kind_out)
    *kind_out = g_steal_pointer (&kind);
  return TRUE;
}

char *
stsim_util_format_double (double v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE], fmt[8];

  if (v == (double) (gint64) v && fabs (v) < 1e15)  /* integral: no exponent, no ".0" */
    return g_strdup_printf ("%" G_GINT64_FORMAT, (gint64) v);
  for (int prec = 1; prec <= 17; prec++) {
    g_snprintf (fmt, sizeof fmt, "%%.%dg", prec);
    g_ascii_formatd (buf, sizeof buf, fmt, v);
    if (g_ascii_strtod (buf, NULL) == v)
      break;
  }
  return g_strdup (buf);
}
