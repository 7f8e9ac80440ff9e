/* stsim-bounded.h: size-limited file reads and depth-limited JSON parsing.
 * Every file, stream and JSON text that stsim and its tools read goes
 * through these, so that an endless input (/dev/zero, a FIFO that never
 * ends) or a deeply nested JSON (json-glib's parser recurses) gets an error
 * naming the file and the limit instead of eating memory or the stack.
 *
 * Errors are in G_FILE_ERROR (reads) and JSON_PARSER_ERROR (JSON), like the
 * GLib and json-glib calls they replace, so callers wrap them as before. */
#pragma once
#include <stdio.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include "stsim-export.h"

G_BEGIN_DECLS

#define STSIM_MIB ((gsize) 1 << 20)
/* Default limits, in bytes. The environment variable STSIM_MAX_INPUT_MB
 * (a whole number of MiB) replaces all of them when set. */
#define STSIM_LIMIT_RECIPE   (4 * STSIM_MIB)      /* a recipe or an include */
#define STSIM_LIMIT_JSON     (64 * STSIM_MIB)     /* config.json, tokenizer_config.json, results.json */
#define STSIM_LIMIT_VOCAB    (256 * STSIM_MIB)    /* vocab.txt, vocab.json, merges.txt, tokenizer.json */
#define STSIM_LIMIT_DATA     (256 * STSIM_MIB)    /* one STS data file */
#define STSIM_LIMIT_METRICS  (1024 * STSIM_MIB)   /* metrics.jsonl */
#define STSIM_LIMIT_CORPUS   (4096 * STSIM_MIB)   /* one corpus file (lines or CSV); all of stdin of stsim-encode */
#define STSIM_LIMIT_LINE     (1 * STSIM_MIB)      /* one line of standard input */
/* Deepest JSON nesting accepted: stsim's JSON files are at most 5 levels deep. */
#define STSIM_JSON_MAX_DEPTH 64

/* @limit, or STSIM_MAX_INPUT_MB MiB when that variable is set to a positive number. */
STSIM_API
gsize    stsim_input_limit (gsize limit);

/* g_file_get_contents() with a size limit: regular files over the limit are
 * refused before reading; FIFOs and other streams are read up to the limit;
 * folders, character and block devices and sockets are refused. Contents are
 * NUL-terminated. Errors in G_FILE_ERROR, naming @path and the limit. */
STSIM_API
gboolean stsim_file_get_contents (const char *path, gsize limit, char **contents, gsize *length, GError **error);

/* Reads one line (without its '\n') from @f into @line; FALSE with no error
 * at the end of input. A line longer than @limit bytes is an error
 * (G_FILE_ERROR_FAILED) naming @name and @lineno. */
STSIM_API
gboolean stsim_stream_read_line (FILE *f, const char *name, guint64 lineno, gsize limit, GString *line,
                                 GError **error);

/* The deepest nesting of [ and { in @data, outside strings; stops counting
 * once it passes @stop (returns stop + 1 then). */
STSIM_API
int      stsim_json_depth (const char *data, gsize len, int stop);

/* json_parser_load_from_data() after checking that @data nests at most
 * STSIM_JSON_MAX_DEPTH deep (JSON_PARSER_ERROR_INVALID_DATA otherwise).
 * @len < 0: NUL-terminated. */
STSIM_API
gboolean stsim_json_load_data (JsonParser *parser, const char *data, gssize len, GError **error);

/* json_parser_load_from_file() through stsim_file_get_contents() and
 * stsim_json_load_data(). */
STSIM_API
gboolean stsim_json_load_file (JsonParser *parser, const char *path, gsize limit, GError **error);

/* json_generator_to_data() of @root (pretty-printed or not), made valid
 * JSON: json-glib appends ".0" to every double printed without a '.', so
 * 1e308 came out as "1e+308.0", which no JSON reader (ours included)
 * accepts; that suffix is dropped after an exponent, and a non-finite
 * double (printed "inf.0", "nan.0") is written as null. @len (optional)
 * gets the length. */
STSIM_API
char    *stsim_json_to_data (JsonNode *root, gboolean pretty, gsize *len);

G_END_DECLS
