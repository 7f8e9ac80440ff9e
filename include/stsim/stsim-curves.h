/* stsim-curves.h: training curves of a run as a self-contained SVG.
 *
 * Drawn from the run's metrics.jsonl (docs/training.md): panel 1 the loss
 * terms over steps ("loss" and every "loss.*" member of the "train" lines),
 * panel 2 the STS-B dev Spearman of the "eval" lines with the best point
 * marked. The trainer redraws OUTPUT/curves.svg after every dev evaluation
 * and at the end; `stsim-report --curves RUN_DIR` redraws it by hand.
 *
 *   if (!stsim_curves_write_svg ("runs/x/metrics.jsonl", "runs/x/curves.svg", "x", &error))
 *     g_printerr ("%s\n", error->message);
 */
#pragma once
#include <glib.h>
#include "stsim-export.h"

G_BEGIN_DECLS

/* Reads @metrics_jsonl and writes the SVG to @svg_path atomically (temporary
 * file + rename). @title (may be NULL) heads the picture. Errors: the file
 * cannot be read (STSIM_ERROR_IO), a line that is not a JSON object or has a
 * member of the wrong type (STSIM_ERROR_PARSE, message "FILE:LINE: ..."), the
 * SVG cannot be written (STSIM_ERROR_IO). A file without "train" or "eval"
 * lines still gives a picture, with the empty panels saying so. */
STSIM_API
gboolean stsim_curves_write_svg (const char *metrics_jsonl, const char *svg_path, const char *title,
                                 GError **error);

/* Axis helper shared with stsim-report: widens [*lo, *hi] to multiples of a
 * 1-2-5 step giving about @target intervals and returns that step. An empty
 * or degenerate range is widened around its value first. */
STSIM_API
double   stsim_curves_nice_range (double *lo, double *hi, guint target);

/* @v as "%.*g" text with '.' as the decimal point whatever the locale, in
 * @buf (G_ASCII_DTOSTR_BUF_SIZE bytes); returns @buf. */
STSIM_API
char    *stsim_curves_format     (char *buf, double v, int digits);

/* SVG text primitives shared with stsim-report: a pixel coordinate with one
 * decimal ('.' whatever the locale), and a <text> element at (@x, @y) with
 * @anchor (start|middle|end), optional raw @attrs and escaped @text. */
STSIM_API
void     stsim_curves_append_px   (GString *out, double v);
STSIM_API
void     stsim_curves_append_text (GString *out, double x, double y, const char *anchor, const char *attrs,
                                   const char *text);

G_END_DECLS
