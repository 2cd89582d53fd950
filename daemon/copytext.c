/* copytext.c - see copytext.h. */
#include "copytext.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

/* --- the options ------------------------------------------------------------------ */

/* One printable ASCII character, not a letter or digit (a tab too, for
 * a delimiter): what the proxy reads rows under. */
static bool one_char(const char *v, bool delim)
{
	unsigned char c = (unsigned char)v[0];

	if (!c || v[1])
		return false;
	if (delim && c == '\t')
		return true;
	if (c < 0x21 || c > 0x7e || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'))
		return false;
	return !delim || (c != '\\' && c != '.');
}

bool ct_format_set(struct ct_format *f, const char *name, const char *value)
{
	size_t n = strlen(value);

	if (!strcmp(name, "format") && (!strcmp(value, "text") || !strcmp(value, "csv"))) {
		f->csv = !strcmp(value, "csv");
		return true;
	}
	if (!strcmp(name, "null") && n <= CT_NULL_MAX && !strpbrk(value, "\r\n")) {
		memcpy(f->null, value, n + 1);
		f->null_len = n;
		f->set |= CT_SET_NULL;
		return true;
	}
	static const struct {
		const char *name;
		unsigned set;
		size_t at; /* of the character in struct ct_format */
	} chars[] = { { "delimiter", CT_SET_DELIM, offsetof(struct ct_format, delim) },
		      { "quote", CT_SET_QUOTE, offsetof(struct ct_format, quote) },
		      { "escape", CT_SET_ESCAPE, offsetof(struct ct_format, escape) } };
	for (size_t i = 0; i < sizeof(chars) / sizeof(chars[0]); i++)
		if (!strcmp(name, chars[i].name) && one_char(value, chars[i].set == CT_SET_DELIM)) {
			((char *)f)[chars[i].at] = value[0];
			f->set |= chars[i].set;
			return true;
		}
	return false;
}

bool ct_format_finish(struct ct_format *f)
{
	if (!(f->set & CT_SET_DELIM))
		f->delim = f->csv ? ',' : '\t';
	if (!(f->set & CT_SET_NULL))
		f->null_len = strlen(strcpy(f->null, f->csv ? "" : "\\N"));
	if (!(f->set & CT_SET_QUOTE))
		f->quote = '"';
	if (!(f->set & CT_SET_ESCAPE))
		f->escape = f->quote;
	if (memchr(f->null, f->delim, f->null_len))
		return false;
	size_t k = 0; /* text: a NULL string ending in a backslash would escape the delimiter after it */
	while (!f->csv && k < f->null_len && f->null[f->null_len - 1 - k] == '\\')
		k++;
	if (k % 2)
		return false;
	if (!f->csv)
		return !(f->set & (CT_SET_QUOTE | CT_SET_ESCAPE));
	return f->delim != f->quote && !memchr(f->null, f->quote, f->null_len);
}

void ct_format_init(struct ct_format *f, bool csv)
{
	*f = (struct ct_format){ .csv = csv };
	(void)ct_format_finish(f);
}

/* A string literal of SQL (standard_conforming_strings on). */
static void literal(struct buf *out, const char *p, size_t n)
{
	buf_addc(out, '\'');
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\'')
			buf_addc(out, '\'');
		buf_addc(out, p[i]);
	}
	buf_addc(out, '\'');
}

void ct_format_sql(const struct ct_format *f, bool header, struct buf *out)
{
	static const struct {
		const char *name;
		unsigned set;
		size_t at;
	} chars[] = { { "DELIMITER", CT_SET_DELIM, offsetof(struct ct_format, delim) },
		      { "QUOTE", CT_SET_QUOTE, offsetof(struct ct_format, quote) },
		      { "ESCAPE", CT_SET_ESCAPE, offsetof(struct ct_format, escape) } };

	if (!f->csv && !header && !f->set)
		return;
	buf_printf(out, " (FORMAT %s, HEADER %s", f->csv ? "csv" : "text", header ? "true" : "false");
	for (size_t i = 0; i < sizeof(chars) / sizeof(chars[0]); i++)
		if (f->set & chars[i].set) {
			buf_printf(out, ", %s ", chars[i].name);
			literal(out, (const char *)f + chars[i].at, 1);
		}
	if (f->set & CT_SET_NULL) {
		buf_adds(out, ", NULL ");
		literal(out, f->null, f->null_len);
	}
	buf_addc(out, ')');
}

/* --- text ------------------------------------------------------------------------- */

static int text_next_line(const char *data, size_t n, size_t *scanned, struct ct_line *l)
{
	size_t i = *scanned;

	while (i < n) {
		char ch = data[i];
		if (ch == '\\') {
			if (i + 1 == n)
				break; /* what it escapes comes later */
			i += 2;
			continue;
		}
		if (ch == '\n') {
			*l = (struct ct_line){ i, 1 };
			*scanned = 0;
			return 1;
		}
		if (ch == '\r') {
			if (i + 1 == n)
				break;
			if (data[i + 1] != '\n')
				return -EILSEQ;
			*l = (struct ct_line){ i, 2 };
			*scanned = 0;
			return 1;
		}
		i++;
	}
	*scanned = i;
	return 0;
}

bool ct_text_stray(const char *row, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (row[i] != '\\')
			continue;
		if (i + 1 == len || row[i + 1] == '.')
			return true;
		i++;
	}
	return false;
}

bool ct_ends_with_cr(const char *row, size_t len)
{
	size_t k = 0;

	if (!len || row[len - 1] != '\r')
		return false;
	while (k + 1 < len && row[len - 2 - k] == '\\')
		k++;
	return k % 2 == 0; /* no backslash takes it */
}

static int text_split(char delim, const char *row, size_t len, struct ct_field *f, size_t max)
{
	size_t n = 0, start = 0;

	for (size_t i = 0;; i++) {
		if (i < len && row[i] == '\\') {
			i++; /* escaped: not a delimiter that ends the field */
			continue;
		}
		if (i >= len || row[i] == delim) {
			if (n == max)
				return -E2BIG;
			size_t end = i < len ? i : len;
			f[n++] = (struct ct_field){ row + start, end - start };
			start = i + 1;
			if (i >= len)
				return (int)n;
		}
	}
}

static int hexval(char c)
{
	return c >= '0' && c <= '9'                     ? c - '0'
	       : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
	                                                : -1;
}

/* An escape's value at p (after the backslash; end: the field's end): the
 * byte, and how many characters it took. */
static char escaped(const char *p, const char *end, size_t *took)
{
	static const char simple[][2] = { { 'b', '\b' }, { 'f', '\f' }, { 'n', '\n' },
		                          { 'r', '\r' }, { 't', '\t' }, { 'v', '\v' } };
	unsigned v = 0;
	size_t k = 0;

	if (*p >= '0' && *p <= '7') {
		for (; k < 3 && p + k < end && p[k] >= '0' && p[k] <= '7'; k++)
			v = v * 8 + (unsigned)(p[k] - '0');
		*took = k;
		return (char)(v & 0377);
	}
	if (*p == 'x' && p + 1 < end && hexval(p[1]) >= 0) {
		for (k = 1; k < 3 && p + k < end && hexval(p[k]) >= 0; k++)
			v = v * 16 + (unsigned)hexval(p[k]);
		*took = k;
		return (char)v;
	}
	*took = 1;
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
		if (*p == simple[i][0])
			return simple[i][1];
	return *p;
}

static int text_value(const struct ct_field *f, struct buf *out)
{
	const char *p = f->p, *end = f->p + f->len;

	while (p < end) {
		const char *bs = memchr(p, '\\', (size_t)(end - p));
		const char *stop = bs ? bs : end;
		if (memchr(p, 0, (size_t)(stop - p)))
			return -EILSEQ;
		buf_add(out, p, (size_t)(stop - p));
		if (!bs || bs + 1 == end)
			break; /* a backslash that ends the row escapes nothing: dropped, as PostgreSQL does
			        */
		size_t took;
		char c = escaped(bs + 1, end, &took);
		if (!c)
			return -EILSEQ;
		buf_addc(out, c);
		p = bs + 1 + took;
	}
	return out->failed ? -ENOMEM : 0;
}

static void text_put(char delim, struct buf *out, const char *p, size_t n)
{
	static const char letter[] = {
		['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't', ['\v'] = 'v'
	};

	for (size_t i = 0; i < n; i++) {
		unsigned char u = (unsigned char)p[i];
		char e = u < sizeof(letter) && letter[u] ? letter[u]
		         : p[i] == '\\' || p[i] == delim ? p[i]
		                                         : 0;
		if (e) {
			buf_addc(out, '\\');
			buf_addc(out, e);
		} else {
			buf_addc(out, p[i]);
		}
	}
}

/* --- CSV ----------------------------------------------------------------------- */

/* Inside quotes at p[i]: whether an escape character begins there (the
 * escape, then a quote or the escape): 1; 0 not; -1 not known yet (the
 * data ends after the escape). */
static int csv_escape_at(const struct ct_format *f, const char *p, size_t n, size_t i)
{
	if (p[i] != f->escape || f->escape == f->quote)
		return 0; /* (a doubled quote toggles out of quotes and in again) */
	if (i + 1 == n)
		return -1;
	return p[i + 1] == f->quote || p[i + 1] == f->escape;
}

static int csv_next_line(const struct ct_format *f, const char *data, size_t n, size_t *scanned, bool *quoted,
                         struct ct_line *l)
{
	size_t i = *scanned;

	for (; i < n; i++) {
		int esc = *quoted ? csv_escape_at(f, data, n, i) : 0;
		if (esc < 0)
			break; /* what it escapes comes later */
		if (esc) {
			i++;
			continue;
		}
		if (data[i] == f->quote) {
			*quoted = !*quoted;
			continue;
		}
		if (*quoted || (data[i] != '\n' && data[i] != '\r'))
			continue;
		if (data[i] == '\r' && i + 1 == n)
			break; /* \r\n perhaps */
		if (data[i] == '\r' && data[i + 1] != '\n')
			return -EILSEQ;
		*l = (struct ct_line){ i, data[i] == '\r' ? 2 : 1 };
		*scanned = 0;
		*quoted = false;
		return 1;
	}
	*scanned = i;
	return 0;
}

static int csv_split(const struct ct_format *fmt, const char *row, size_t len, struct ct_field *f, size_t max)
{
	size_t n = 0, start = 0;
	bool quoted = false;

	for (size_t i = 0;; i++) {
		if (i < len && quoted && csv_escape_at(fmt, row, len, i) > 0) {
			i++;
			continue;
		}
		if (i < len && row[i] == fmt->quote)
			quoted = !quoted;
		if (i < len && (quoted || row[i] != fmt->delim))
			continue;
		if (n == max)
			return -E2BIG;
		f[n++] = (struct ct_field){ row + start, i - start };
		start = i + 1;
		if (i >= len)
			return (int)n;
	}
}

static int csv_value(const struct ct_format *fmt, const struct ct_field *f, struct buf *out)
{
	bool quoted = false;

	for (size_t i = 0; i < f->len; i++) {
		char c = f->p[i];
		bool doubled =
		    c == fmt->quote && fmt->escape == fmt->quote && i + 1 < f->len && f->p[i + 1] == c;
		if (quoted && (doubled || csv_escape_at(fmt, f->p, f->len, i) > 0)) {
			buf_addc(out, f->p[++i]);
		} else if (c == fmt->quote) {
			quoted = !quoted;
		} else if (!c) {
			return -EILSEQ;
		} else {
			buf_addc(out, c);
		}
	}
	return out->failed ? -ENOMEM : 0;
}

static void csv_put(const struct ct_format *f, struct buf *out, const char *p, size_t n, bool force)
{
	bool plain = !force && !(n == f->null_len && !memcmp(p, f->null, n)) && !memchr(p, f->quote, n) &&
	             !memchr(p, f->delim, n) && !memchr(p, '\n', n) && !memchr(p, '\r', n) &&
	             !(f->one_column && n == 2 && p[0] == '\\' && p[1] == '.');

	if (plain) {
		buf_add(out, p, n);
		return;
	}
	buf_addc(out, f->quote);
	for (size_t i = 0; i < n; i++) {
		if (p[i] == f->quote || p[i] == f->escape)
			buf_addc(out, f->escape);
		buf_addc(out, p[i]);
	}
	buf_addc(out, f->quote);
}

/* --- either ----------------------------------------------------------------------- */

int ct_next_line(const struct ct_format *f, const char *data, size_t n, size_t *scanned, bool *quoted,
                 struct ct_line *l)
{
	return f->csv ? csv_next_line(f, data, n, scanned, quoted, l) : text_next_line(data, n, scanned, l);
}

int ct_split(const struct ct_format *f, const char *row, size_t len, struct ct_field *out, size_t max)
{
	return f->csv ? csv_split(f, row, len, out, max) : text_split(f->delim, row, len, out, max);
}

bool ct_is_null(const struct ct_format *f, const struct ct_field *field)
{
	/* text: as written, before escapes are read; CSV: with no quote in it */
	return field->len == f->null_len && !memcmp(field->p, f->null, f->null_len) &&
	       !(f->csv && memchr(field->p, f->quote, field->len));
}

int ct_value(const struct ct_format *f, const struct ct_field *field, struct buf *out)
{
	return f->csv ? csv_value(f, field, out) : text_value(field, out);
}

void ct_put(const struct ct_format *f, struct buf *out, const char *p, size_t n)
{
	if (f->csv)
		csv_put(f, out, p, n, false);
	else
		text_put(f->delim, out, p, n);
}

void ct_put_quoted(const struct ct_format *f, struct buf *out, const char *p, size_t n)
{
	if (f->csv)
		csv_put(f, out, p, n, true);
	else
		text_put(f->delim, out, p, n);
}

/* --- binary ----------------------------------------------------------------------- */

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int ct_binary_header(const uint8_t *p, size_t n, size_t *ret_len)
{
	static const uint8_t signature[11] = { 'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0 };

	if (n && memcmp(p, signature, n < sizeof(signature) ? n : sizeof(signature)))
		return -1;
	if (n < 19)
		return 0;
	uint32_t flags = get32(p + 11), ext = get32(p + 15);
	if (flags >> 16)
		return -1;
	if (n - 19 < ext)
		return 0;
	*ret_len = 19 + (size_t)ext;
	return 1;
}

int ct_binary_row(const uint8_t *p, size_t n, struct ct_field *out, size_t nfields, size_t *ret_len)
{
	size_t at = 2;

	if (n < 2)
		return 0;
	int16_t count = (int16_t)(p[0] << 8 | p[1]);
	if (count == -1) {
		*ret_len = 2;
		return 2;
	}
	if (count < 0 || (size_t)count != nfields)
		return -1;
	for (size_t i = 0; i < nfields; i++) {
		if (n - at < 4)
			return 0;
		int32_t size = (int32_t)get32(p + at);
		at += 4;
		if (size < -1)
			return -1;
		if (size >= 0 && n - at < (size_t)size)
			return 0;
		out[i] =
		    (struct ct_field){ size < 0 ? NULL : (const char *)p + at, size < 0 ? 0 : (size_t)size };
		at += size < 0 ? 0 : (size_t)size;
	}
	*ret_len = at;
	return 1;
}
