/* curves.c: a run's metrics.jsonl drawn as curves.svg (curves.h).
 *
 * The SVG is written as plain text: two line charts do not justify a
 * plotting dependency, and text keeps the file small and diffable. */
#include "curves.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "stsim/stsim-error.h"
#include "io/bounded.h"

/* ---- reading metrics.jsonl ----------------------------------------------------------- */

typedef struct {
  char   *name;  /* "loss", "loss.<label>" or "dev" */
  GArray *x;     /* double: steps */
  GArray *y;     /* double: values, NAN where the line held null */
} Series;

typedef struct {
  GPtrArray *loss;  /* Series: "loss" first, then the loss.* terms in order of first appearance */
  Series    *dev;
} Curves;

static Series *
series_new (const char *name)
{
  Series *s = g_new0 (Series, 1);
  s->name = g_strdup (name);
  s->x = g_array_new (FALSE, FALSE, sizeof (double));
  s->y = g_array_new (FALSE, FALSE, sizeof (double));
  return s;
}

static void
series_free (Series *s)
{
  if (!s)
    return;
  g_free (s->name);
  g_array_unref (s->x);
  g_array_unref (s->y);
  g_free (s);
}

static void
series_add (Series *s, double x, double y)
{
  g_array_append_val (s->x, x);
  g_array_append_val (s->y, y);
}

static void
curves_clear (Curves *c)
{
  g_clear_pointer (&c->loss, g_ptr_array_unref);
  g_clear_pointer (&c->dev, series_free);
}

static Series *
curves_loss_series (Curves *c, const char *name)
{
  for (guint i = 0; i < c->loss->len; i++) {
    Series *s = g_ptr_array_index (c->loss, i);
    if (strcmp (s->name, name) == 0)
      return s;
  }
  Series *s = series_new (name);
  g_ptr_array_add (c->loss, s);
  return s;
}

/* A JSON number (integer or not) or null (*value = NAN); anything else is FALSE. */
static gboolean
node_number (JsonNode *node, double *value)
{
  if (JSON_NODE_HOLDS_NULL (node)) {
    *value = NAN;
    return TRUE;
  }
  if (!JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  GType t = json_node_get_value_type (node);
  if (t == G_TYPE_INT64)
    *value = (double) json_node_get_int (node);
  else if (t == G_TYPE_DOUBLE)
    *value = json_node_get_double (node);
  else
    return FALSE;
  return TRUE;
}

static gboolean
line_step (JsonObject *o, const char *path, guint line, double *step, GError **error)
{
  JsonNode *n = json_object_get_member (o, "step");
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64 ||
      json_node_get_int (n) < 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s:%u: \"step\" is missing or not a non-negative integer",
                 path, line);
    return FALSE;
  }
  *step = (double) json_node_get_int (n);
  return TRUE;
}

static gboolean
parse_line (Curves *c, const char *text, const char *path, guint line, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) e = NULL;
  if (!stsim_json_load_data (parser, text, -1, &e)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s:%u: not valid JSON (%s); every line of metrics.jsonl "
                 "is one JSON object", path, line, e->message);
    return FALSE;
  }
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s:%u: not a JSON object; every line of metrics.jsonl is "
                 "one JSON object", path, line);
    return FALSE;
  }
  JsonObject *o = json_node_get_object (root);
  JsonNode *tn = json_object_get_member (o, "type");
  if (tn == NULL || !JSON_NODE_HOLDS_VALUE (tn) || json_node_get_value_type (tn) != G_TYPE_STRING) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s:%u: no string member \"type\" (expected \"train\" or "
                 "\"eval\")", path, line);
    return FALSE;
  }
  const char *type = json_node_get_string (tn);
  double step, v;
  if (strcmp (type, "train") == 0) {
    if (!line_step (o, path, line, &step, error))
      return FALSE;
    g_autoptr(GList) members = json_object_get_members (o);
    for (GList *l = members; l; l = l->next) {
      const char *name = l->data;
      if (strcmp (name, "loss") != 0 && !g_str_has_prefix (name, "loss."))
        continue;
      if (!node_number (json_object_get_member (o, name), &v)) {
        g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s:%u: \"%s\" is not a number or null", path, line,
                     name);
        return FALSE;
      }
      series_add (curves_loss_series (c, name), step, v);
    }
  } else if (strcmp (type, "eval") == 0) {
    if (!line_step (o, path, line, &step, error))
      return FALSE;
    JsonNode *dn = json_object_get_member (o, "dev");
    if (dn == NULL || !node_number (dn, &v)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s:%u: \"dev\" is missing or not a number or null",
                   path, line);
      return FALSE;
    }
    series_add (c->dev, step, v);
  }
  /* Other types are left alone: later versions may log more kinds of line. */
  return TRUE;
}

static gboolean
curves_read (Curves *c, const char *path, GError **error)
{
  g_autofree char *text = NULL;
  g_autoptr(GError) e = NULL;
  if (!stsim_file_get_contents (path, STSIM_LIMIT_METRICS, &text, NULL, &e)) {
    g_set_error (error, STSIM_ERROR, g_error_matches (e, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? STSIM_ERROR_NOT_FOUND
                                                                                           : STSIM_ERROR_IO,
                 "cannot read %s: %s", path, e->message);
    return FALSE;
  }
  c->loss = g_ptr_array_new_with_free_func ((GDestroyNotify) series_free);
  c->dev = series_new ("dev");
  /* The total first, whatever the member order of the lines. */
  curves_loss_series (c, "loss");
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    char *l = g_strstrip (lines[i]);
    if (*l && !parse_line (c, l, path, i + 1, error))
      return FALSE;
  }
  /* A run whose lines have no "loss" member (none so far) has no total. */
  Series *total = g_ptr_array_index (c->loss, 0);
  if (total->x->len == 0)
    g_ptr_array_remove_index (c->loss, 0);
  return TRUE;
}

/* ---- axes -------------------------------------------------------------------------------- */

double
stsim_curves_nice_range (double *lo, double *hi, guint target)
{
  if (!isfinite (*lo) || !isfinite (*hi)) {
    *lo = 0;
    *hi = 1;
  }
  if (*hi < *lo) {
    double t = *lo;
    *lo = *hi;
    *hi = t;
  }
  if (*hi - *lo <= 1e-12 * MAX (fabs (*lo), fabs (*hi))) {
    double pad = *lo != 0 ? 0.1 * fabs (*lo) : 1;
    *lo -= pad;
    *hi += pad;
  }
  double raw = (*hi - *lo) / MAX (target, 1u);
  double mag = pow (10, floor (log10 (raw)));
  double f = raw / mag;
  /* The tolerance keeps 0.05 / 5 = 0.010000000000000002 a step of 0.01. */
  double step = (f <= 1 + 1e-9 ? 1 : f <= 2 + 1e-9 ? 2 : f <= 5 + 1e-9 ? 5 : 10) * mag;
  /* The epsilons keep a bound that is already a multiple from moving a step. */
  *lo = floor (*lo / step + 1e-9) * step;
  *hi = ceil (*hi / step - 1e-9) * step;
  return step;
}

char *
stsim_curves_format (char *buf, double v, int digits)
{
  char fmt[16];
  g_snprintf (fmt, sizeof fmt, "%%.%dg", digits);
  if (fabs (v) < 1e-300)
    v = 0;  /* no "-0" labels */
  return g_ascii_formatd (buf, G_ASCII_DTOSTR_BUF_SIZE, fmt, v);
}

typedef struct {
  double   lo, hi;    /* data range after widening */
  double   step;      /* tick step of a linear axis */
  gboolean log;       /* log10 scale */
  double   p0, p1;    /* pixels of lo and hi */
} Axis;

static double
axis_map (const Axis *a, double v)
{
  double t = a->log ? (log10 (v) - log10 (a->lo)) / (log10 (a->hi) - log10 (a->lo)) : (v - a->lo) / (a->hi - a->lo);
  return a->p0 + t * (a->p1 - a->p0);
}

/* Pixel coordinates with one decimal: enough for a screen, small on disk. */
void
stsim_curves_append_px (GString *out, double v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_string_append (out, g_ascii_formatd (buf, sizeof buf, "%.1f", v));
}

void
stsim_curves_append_text (GString *out, double x, double y, const char *anchor, const char *attrs, const char *text)
{
  g_autofree char *esc = g_markup_escape_text (text, -1);
  g_string_append (out, "<text x=\"");
  stsim_curves_append_px (out, x);
  g_string_append (out, "\" y=\"");
  stsim_curves_append_px (out, y);
  g_string_append_printf (out, "\" text-anchor=\"%s\"%s%s>%s</text>\n", anchor, attrs ? " " : "", attrs ? attrs : "",
                          esc);
}

static void
append_line (GString *out, double x1, double y1, double x2, double y2, const char *attrs)
{
  g_string_append (out, "<line x1=\"");
  stsim_curves_append_px (out, x1);
  g_string_append (out, "\" y1=\"");
  stsim_curves_append_px (out, y1);
  g_string_append (out, "\" x2=\"");
  stsim_curves_append_px (out, x2);
  g_string_append (out, "\" y2=\"");
  stsim_curves_append_px (out, y2);
  g_string_append_printf (out, "\" %s/>\n", attrs);
}

/* Layout (pixels). */
enum { W = 800, H = 650, PLOT_L = 76, PLOT_R = 590, LEGEND_X = 606, P1_TOP = 64, P1_BOT = 300, P2_TOP = 380,
       P2_BOT = 600 };

/* Grid lines, tick labels and frame of a panel with x axis @xa and y axis @ya. */
static void
append_axes (GString *out, const Axis *xa, const Axis *ya)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  double xstep = xa->step;
  for (int k = 0;; k++) {
    double v = xa->lo + k * xstep;
    if (v > xa->hi + 1e-9 * xstep)
      break;
    double px = axis_map (xa, v);
    append_line (out, px, ya->p0, px, ya->p1, "stroke=\"#e6e6e6\"");
    append_line (out, px, ya->p0, px, ya->p0 + 4, "stroke=\"#444\"");
    stsim_curves_append_text (out, px, ya->p0 + 17, "middle", NULL, stsim_curves_format (buf, v, 8));
  }
  if (ya->log) {
    int d0 = (int) lround (log10 (ya->lo)), d1 = (int) lround (log10 (ya->hi));
    int stride = (d1 - d0 + 7) / 8;  /* at most about 8 labelled decades */
    for (int d = d0; d <= d1; d++) {
      double py = axis_map (ya, pow (10, d));
      append_line (out, xa->p0, py, xa->p1, py, "stroke=\"#e6e6e6\"");
      if ((d - d0) % MAX (stride, 1) != 0)
        continue;
      append_line (out, xa->p0 - 4, py, xa->p0, py, "stroke=\"#444\"");
      stsim_curves_append_text (out, xa->p0 - 7, py + 4, "end", NULL, stsim_curves_format (buf, pow (10, d), 3));
    }
  } else {
    double ystep = ya->step;
    for (int k = 0;; k++) {
      double v = ya->lo + k * ystep;
      if (v > ya->hi + 1e-9 * ystep)
        break;
      double py = axis_map (ya, v);
      append_line (out, xa->p0, py, xa->p1, py, "stroke=\"#e6e6e6\"");
      append_line (out, xa->p0 - 4, py, xa->p0, py, "stroke=\"#444\"");
      stsim_curves_append_text (out, xa->p0 - 7, py + 4, "end", NULL, stsim_curves_format (buf, v, 6));
    }
  }
  g_string_append_printf (out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n",
                          (int) xa->p0, (int) ya->p1, (int) (xa->p1 - xa->p0), (int) (ya->p0 - ya->p1));
  stsim_curves_append_text (out, (xa->p0 + xa->p1) / 2, ya->p0 + 36, "middle", NULL, "step");
}

/* Plain numbers give a linear y range; a log one needs positive values. */
static void
series_range (const Series *s, double *lo, double *hi)
{
  for (guint i = 0; i < s->y->len; i++) {
    double v = g_array_index (s->y, double, i);
    if (!isfinite (v))
      continue;
    *lo = MIN (*lo, v);
    *hi = MAX (*hi, v);
  }
}

static void
append_polyline (GString *out, const Series *s, const Axis *xa, const Axis *ya, const char *cls, const char *style)
{
  g_autofree char *name = g_markup_escape_text (s->name, -1);
  g_string_append_printf (out, "<polyline class=\"%s\" data-name=\"%s\" fill=\"none\" %s points=\"", cls, name, style);
  gboolean first = TRUE;
  for (guint i = 0; i < s->y->len; i++) {
    double v = g_array_index (s->y, double, i);
    if (!isfinite (v) || (ya->log && v <= 0))
      continue;  /* null: an interval without a good step */
    if (!first)
      g_string_append_c (out, ' ');
    first = FALSE;
    stsim_curves_append_px (out, axis_map (xa, g_array_index (s->x, double, i)));
    g_string_append_c (out, ',');
    stsim_curves_append_px (out, axis_map (ya, v));
  }
  g_string_append (out, "\"/>\n");
}

static const char *const palette[] = { "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                       "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf" };

/* Stroke of loss series @i: the total dashed black, the terms in palette order. */
static char *
loss_style (const Curves *c, guint i)
{
  const Series *s = g_ptr_array_index (c->loss, i);
  if (strcmp (s->name, "loss") == 0)
    return g_strdup ("stroke=\"#222\" stroke-width=\"2\" stroke-dasharray=\"6 3\"");
  const Series *first = g_ptr_array_index (c->loss, 0);
  guint term = strcmp (first->name, "loss") == 0 ? i - 1 : i;
  return g_strdup_printf ("stroke=\"%s\" stroke-width=\"1.5\"", palette[term % G_N_ELEMENTS (palette)]);
}

static void
append_loss_panel (GString *out, const Curves *c, const Axis *xa_in)
{
  Axis xa = *xa_in;
  double lo = INFINITY, hi = -INFINITY;
  for (guint i = 0; i < c->loss->len; i++)
    series_range (g_ptr_array_index (c->loss, i), &lo, &hi);
  if (!isfinite (lo)) {
    stsim_curves_append_text (out, (PLOT_L + PLOT_R) / 2.0, (P1_TOP + P1_BOT) / 2.0, "middle", "fill=\"#888\"",
                 "no loss values yet");
    return;
  }
  /* Log scale when the values span more than two decades (a loss falling
   * from 10 to 0.003 is otherwise a flat line after the first steps). */
  Axis ya = { .lo = lo, .hi = hi, .p0 = P1_BOT, .p1 = P1_TOP };
  ya.log = lo > 0 && hi / lo > 100;
  if (ya.log) {
    ya.lo = pow (10, floor (log10 (lo)));
    ya.hi = pow (10, ceil (log10 (hi)));
  } else
    ya.step = stsim_curves_nice_range (&ya.lo, &ya.hi, 5);
  stsim_curves_append_text (out, PLOT_L, P1_TOP - 10, "start", "font-weight=\"bold\"",
               ya.log ? "loss (log scale)" : "loss");
  append_axes (out, &xa, &ya);
  /* Terms first, the dashed total on top: with one objective they coincide. */
  for (int pass = 0; pass < 2; pass++)
    for (guint i = 0; i < c->loss->len; i++) {
      const Series *s = g_ptr_array_index (c->loss, i);
      if ((strcmp (s->name, "loss") == 0) == (pass == 1)) {
        g_autofree char *style = loss_style (c, i);
        append_polyline (out, s, &xa, &ya, "loss", style);
      }
    }
  /* Legend, in the column right of the plot. */
  double y = P1_TOP + 8;
  for (guint i = 0; i < c->loss->len; i++, y += 18) {
    const Series *s = g_ptr_array_index (c->loss, i);
    g_autofree char *style = loss_style (c, i);
    append_line (out, LEGEND_X, y, LEGEND_X + 22, y, style);
    stsim_curves_append_text (out, LEGEND_X + 28, y + 4, "start", NULL,
                 strcmp (s->name, "loss") == 0 ? "loss (weighted total)" : s->name + strlen ("loss."));
  }
}

static void
append_dev_panel (GString *out, const Curves *c, const Axis *xa)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  const Series *s = c->dev;
  double lo = INFINITY, hi = -INFINITY;
  series_range (s, &lo, &hi);
  stsim_curves_append_text (out, PLOT_L, P2_TOP - 10, "start", "font-weight=\"bold\"", "STS-B dev Spearman");
  if (!isfinite (lo)) {
    stsim_curves_append_text (out, (PLOT_L + PLOT_R) / 2.0, (P2_TOP + P2_BOT) / 2.0, "middle", "fill=\"#888\"",
                 "no dev evaluations yet");
    return;
  }
  Axis ya = { .lo = lo, .hi = hi, .p0 = P2_BOT, .p1 = P2_TOP };
  ya.step = stsim_curves_nice_range (&ya.lo, &ya.hi, 5);
  append_axes (out, xa, &ya);
  append_polyline (out, s, xa, &ya, "dev", "stroke=\"#1f77b4\" stroke-width=\"2\"");
  /* The best point as the trainer selects it: strictly greater, so ties
   * keep the earlier step. */
  guint best = G_MAXUINT;
  for (guint i = 0; i < s->y->len; i++) {
    double v = g_array_index (s->y, double, i);
    if (isfinite (v) && (best == G_MAXUINT || v > g_array_index (s->y, double, best)))
      best = i;
  }
  double bx = axis_map (xa, g_array_index (s->x, double, best));
  double by = axis_map (&ya, g_array_index (s->y, double, best));
  for (guint i = 0; i < s->y->len; i++) {
    double v = g_array_index (s->y, double, i);
    if (!isfinite (v))
      continue;
    g_string_append (out, "<circle class=\"dev-point\" cx=\"");
    stsim_curves_append_px (out, axis_map (xa, g_array_index (s->x, double, i)));
    g_string_append (out, "\" cy=\"");
    stsim_curves_append_px (out, axis_map (&ya, v));
    g_string_append (out, "\" r=\"2.5\" fill=\"#1f77b4\"/>\n");
  }
  g_string_append (out, "<circle class=\"best\" cx=\"");
  stsim_curves_append_px (out, bx);
  g_string_append (out, "\" cy=\"");
  stsim_curves_append_px (out, by);
  g_string_append (out, "\" r=\"6\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\"/>\n");
  double y = P2_TOP + 8;
  append_line (out, LEGEND_X, y, LEGEND_X + 22, y, "stroke=\"#1f77b4\" stroke-width=\"2\"");
  stsim_curves_append_text (out, LEGEND_X + 28, y + 4, "start", NULL, "dev Spearman");
  y += 18;
  g_string_append_printf (out, "<circle cx=\"%d\" cy=\"%.0f\" r=\"5\" fill=\"none\" stroke=\"#d62728\" "
                          "stroke-width=\"2\"/>\n", LEGEND_X + 11, y);
  g_autofree char *label = g_strdup_printf ("best %s at step %.0f", stsim_curves_format (buf, g_array_index (s->y,
                                            double, best), 4), g_array_index (s->x, double, best));
  stsim_curves_append_text (out, LEGEND_X + 28, y + 4, "start", NULL, label);
}

static char *
curves_render (const Curves *c, const char *title)
{
  GString *out = g_string_new (NULL);
  g_string_append_printf (out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                          "font-family=\"sans-serif\" font-size=\"12\">\n"
                          "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H, W, H);
  stsim_curves_append_text (out, W / 2.0, 30, "middle", "font-size=\"16\" font-weight=\"bold\"", title ? title : "training");

  /* One step axis for both panels, so that a dev point sits under its loss. */
  double xmax = 0;
  for (guint i = 0; i < c->loss->len; i++) {
    const Series *s = g_ptr_array_index (c->loss, i);
    for (guint k = 0; k < s->x->len; k++)
      xmax = MAX (xmax, g_array_index (s->x, double, k));
  }
  for (guint k = 0; k < c->dev->x->len; k++)
    xmax = MAX (xmax, g_array_index (c->dev->x, double, k));
  Axis xa = { .lo = 0, .hi = xmax > 0 ? xmax : 1, .p0 = PLOT_L, .p1 = PLOT_R };
  xa.step = stsim_curves_nice_range (&xa.lo, &xa.hi, 6);

  append_loss_panel (out, c, &xa);
  append_dev_panel (out, c, &xa);
  g_string_append (out, "</svg>\n");
  return g_string_free (out, FALSE);
}

/* ---- entry points ---------------------------------------------------------------------- */

gboolean
stsim_curves_write_svg (const char *metrics_jsonl, const char *svg_path, const char *title, GError **error)
{
  g_return_val_if_fail (metrics_jsonl != NULL && svg_path != NULL, FALSE);
  Curves c = { 0 };
  if (!curves_read (&c, metrics_jsonl, error)) {
    curves_clear (&c);
    return FALSE;
  }
  g_autofree char *svg = curves_render (&c, title);
  curves_clear (&c);
  g_autoptr(GError) e = NULL;
  if (!g_file_set_contents (svg_path, svg, -1, &e)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot write %s: %s", svg_path, e->message);
    return FALSE;
  }
  return TRUE;
}

void
stsim_curves_update (const char *out_dir, const char *title)
{
  g_autofree char *metrics = g_build_filename (out_dir, "metrics.jsonl", NULL);
  g_autofree char *svg = g_build_filename (out_dir, "curves.svg", NULL);
  g_autoptr(GError) e = NULL;
  if (!stsim_curves_write_svg (metrics, svg, title, &e))
    g_printerr ("warning: curves.svg not drawn: %s\n", e->message);
}
