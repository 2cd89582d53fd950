/* copytext.h - COPY's text format, as PostgreSQL reads and writes it
 * (copyfromparse.c): rows end at a newline no backslash escapes, fields end
 * at a tab no backslash escapes, a field of exactly \N is NULL, and a
 * backslash escapes the character after it (\b \f \n \r \t \v, octal \ooo,
 * hex \xhh, any other character itself). */
#ifndef CUSTOS_COPYTEXT_H
#define CUSTOS_COPYTEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* A row split off a stream of COPY data. */
struct ct_line {
	size_t len; /* the row, without its end of line */
	size_t eol; /* the end of line's bytes: 1 (\n), 2 (\r\n) or 0 (none: the end of the data) */
};

/* The next row of data[0..n): 1 and *l when a whole row is there, 0 when
 * it goes on past n, -EILSEQ for a carriage return that ends no row
 * (PostgreSQL would read it as data the client did not escape, or as
 * another end of line than the first row's). *scanned keeps the work done
 * over calls on the same row (0 to begin one). */
int ct_next_line(const char *data, size_t n, size_t *scanned, struct ct_line *l);

/* Whether row[0..len) ends with a character no backslash escapes, c:
 * `\.` (c '.') ends the data wherever it is in a row, and a carriage
 * return (c '\r') at the end of the data ends a row. */
bool ct_ends_with(const char *row, size_t len, char c);

/* A field of a row. */
struct ct_field {
	const char *p; /* as written, escapes and all */
	size_t len;
};

/* Splits row[0..len) into fields: how many (at most max: -E2BIG when
 * there are more). */
int ct_split(const char *row, size_t len, struct ct_field *f, size_t max);

static inline bool ct_is_null(const struct ct_field *f)
{
	return f->len == 2 && f->p[0] == '\\' && f->p[1] == 'N';
}

/* Appends the field's value, its escapes read. -EILSEQ when it holds a NUL
 * byte (PostgreSQL refuses one in text). */
int ct_unescape(const struct ct_field *f, struct buf *out);
/* Appends p[0..n) escaped for the text format. */
void ct_escape(struct buf *out, const char *p, size_t n);

/* CSV, with PostgreSQL's defaults (copyfromparse.c, CopyReadAttributesCSV):
 * fields end at a comma outside double quotes, "" inside quotes is a
 * quote, rows end at a newline outside quotes, and an empty field with no
 * quotes at all is NULL. *quoted keeps whether the row so far ends inside
 * quotes, over calls (false to begin one). Otherwise as above. */
int ct_csv_next_line(const char *data, size_t n, size_t *scanned, bool *quoted, struct ct_line *l);
int ct_csv_split(const char *row, size_t len, struct ct_field *f, size_t max);
/* Appends the field's value, its quotes read. -EILSEQ for a NUL byte. */
int ct_csv_value(const struct ct_field *f, struct buf *out);
/* Appends p[0..n) as a CSV field (quoted when it must be). */
void ct_csv_quote(struct buf *out, const char *p, size_t n);

/* COPY's two formats, as tables of the functions above. */
struct ct_format {
	char delim;
	const char *null; /* NULL as written */
	bool (*is_null)(const struct ct_field *f);
	int (*split)(const char *row, size_t len, struct ct_field *f, size_t max);
	int (*value)(const struct ct_field *f, struct buf *out);
	void (*put)(struct buf *out, const char *p, size_t n); /* a value, escaped or quoted */
};
extern const struct ct_format ct_text, ct_csv;

#endif
