/* copytext.h - COPY's text and CSV formats, as PostgreSQL reads and writes
 * them (copyfromparse.c, copyto.c), under the options that shape them:
 * DELIMITER, NULL, and CSV's QUOTE and ESCAPE.
 *
 * Text: rows end at a newline no backslash escapes, fields at a delimiter
 * no backslash escapes, a field written exactly as the NULL string (before
 * its escapes are read) is NULL, and a backslash escapes the character
 * after it (\b \f \n \r \t \v, octal \ooo, hex \xhh, any other itself).
 *
 * CSV: fields end at a delimiter outside quotes, rows at a newline outside
 * quotes; inside quotes the escape character before a quote or itself
 * stands for that character (by default the escape is the quote: "" is a
 * quote); a field with no quote in it that is the NULL string is NULL.
 *
 * Binary: a header, then each row as a count of fields and each field's
 * length (-1: NULL) and bytes, then a count of -1. */
#ifndef CUSTOS_COPYTEXT_H
#define CUSTOS_COPYTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define CT_NULL_MAX 64 /* the longest NULL string the proxy reads rows under */

/* A COPY's format and options. */
struct ct_format {
	bool csv;
	char delim;
	char quote, escape;         /* CSV's */
	char null[CT_NULL_MAX + 1]; /* NULL as written */
	size_t null_len;
	unsigned set;    /* CT_SET_*: the options given (the others take their defaults) */
	bool one_column; /* CSV quotes a lone \. in a COPY of one column only (as PostgreSQL does) */
};
enum { CT_SET_DELIM = 1, CT_SET_NULL = 2, CT_SET_QUOTE = 4, CT_SET_ESCAPE = 8 };

/* PostgreSQL's defaults: a tab and \N (text); a comma, an empty string
 * and double quotes (CSV). */
void ct_format_init(struct ct_format *f, bool csv);

/* Sets COPY option name (format, delimiter, null, quote or escape) to
 * value, on a format zeroed to begin with; false for another option, or a
 * value the proxy does not read rows under: a format but text or csv, a
 * delimiter, quote or escape that is not one printable ASCII character
 * other than a letter or digit ('.' and '\' are no delimiter; a tab is
 * one), a NULL string longer than CT_NULL_MAX or with a line end in it.
 * Then ct_format_finish. */
bool ct_format_set(struct ct_format *f, const char *name, const char *value);

/* Gives the options not set their defaults (ESCAPE: the quote), and says
 * whether they hold together as PostgreSQL requires: the NULL string free
 * of the delimiter (and in CSV of the quote; in text, not ending in a
 * backslash that would escape what follows it), the delimiter not the
 * quote, QUOTE and ESCAPE in CSV only. */
bool ct_format_finish(struct ct_format *f);

/* Appends the options to a COPY statement: " (FORMAT csv, DELIMITER ';',
 * ...)", only those that are not the defaults (nothing for text with its
 * defaults and no header). */
void ct_format_sql(const struct ct_format *f, bool header, struct buf *out);

/* A row split off a stream of COPY data. */
struct ct_line {
	size_t len; /* the row, without its end of line */
	size_t eol; /* the end of line's bytes: 1 (\n), 2 (\r\n) or 0 (none: the end of the data) */
};

/* The next row of data[0..n): 1 and *l when a whole row is there, 0 when
 * it goes on past n, -EILSEQ for a carriage return that ends no row
 * (PostgreSQL would read it as data the client did not escape, or as
 * another end of line than the first row's). *scanned and *quoted (CSV:
 * whether the row so far ends inside quotes) keep the work done over
 * calls on the same row (0 and false to begin one). */
int ct_next_line(const struct ct_format *f, const char *data, size_t n, size_t *scanned, bool *quoted,
                 struct ct_line *l);

/* Whether row[0..len) (text) holds what PostgreSQL refuses in a row: a
 * backslash that escapes nothing (the end of the data), or \. other than
 * alone on its row (the end of the data marker, corrupt). */
bool ct_text_stray(const char *row, size_t len);

/* Whether row[0..len) (text) ends with a carriage return no backslash
 * escapes: at the end of the data, it ends a row. */
bool ct_ends_with_cr(const char *row, size_t len);

/* A field of a row. */
struct ct_field {
	const char *p; /* as written, escapes and quotes and all */
	size_t len;
};

/* Splits row[0..len) into fields: how many (at most max: -E2BIG when
 * there are more). */
int ct_split(const struct ct_format *f, const char *row, size_t len, struct ct_field *out, size_t max);

bool ct_is_null(const struct ct_format *f, const struct ct_field *field);

/* Appends the field's value, its escapes or quotes read. -EILSEQ when it
 * holds a NUL byte (PostgreSQL refuses one in text). */
int ct_value(const struct ct_format *f, const struct ct_field *field, struct buf *out);

/* Appends p[0..n) as a field: escaped (text), or quoted when it must be
 * (CSV). */
void ct_put(const struct ct_format *f, struct buf *out, const char *p, size_t n);
/* ct_put, quoted whatever it holds (CSV): COPY TO's FORCE_QUOTE. */
void ct_put_quoted(const struct ct_format *f, struct buf *out, const char *p, size_t n);

static inline void ct_put_null(const struct ct_format *f, struct buf *out)
{
	buf_add(out, f->null, f->null_len);
}

/* The binary format's file header (signature, flags and extension area)
 * at the start of p[0..n): 1 and its length, 0 when it goes on past n, -1
 * when p does not begin with one Custos reads (a flag that must be
 * understood, such as OIDs, is set). Rows follow it as a DataRow's values. */
int ct_binary_header(const uint8_t *p, size_t n, size_t *ret_len);

/* The next row of the binary format at p[0..n), of nfields fields into
 * out (a field's p is NULL for NULL): 1 and its length; 2 and 2 for the
 * trailer; 0 when it goes on past n; -1 when it is not a row of nfields. */
int ct_binary_row(const uint8_t *p, size_t n, struct ct_field *out, size_t nfields, size_t *ret_len);

#endif
