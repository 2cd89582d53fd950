/* copytext.c - see copytext.h. */
#include "copytext.h"

#include <errno.h>
#include <string.h>

int ct_next_line(const char *data, size_t n, size_t *scanned, struct ct_line *l)
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

bool ct_ends_with(const char *row, size_t len, char c)
{
	size_t k = 0;

	if (!len || row[len - 1] != c)
		return false;
	while (k + 1 < len && row[len - 2 - k] == '\\')
		k++;
	return c == '.' ? k % 2 == 1 : k % 2 == 0; /* `\.` itself, or a \r no backslash takes */
}

int ct_split(const char *row, size_t len, struct ct_field *f, size_t max)
{
	size_t n = 0, start = 0;

	for (size_t i = 0;; i++) {
		if (i < len && row[i] == '\\') {
			i++; /* escaped: not a tab that ends the field */
			continue;
		}
		if (i >= len || row[i] == '\t') {
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

int ct_unescape(const struct ct_field *f, struct buf *out)
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

void ct_escape(struct buf *out, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char e = p[i] == '\\'   ? '\\'
		         : p[i] == '\t' ? 't'
		         : p[i] == '\n' ? 'n'
		         : p[i] == '\r' ? 'r'
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

int ct_csv_next_line(const char *data, size_t n, size_t *scanned, bool *quoted, struct ct_line *l)
{
	size_t i = *scanned;

	for (; i < n; i++) {
		if (data[i] == '"') {
			*quoted = !*quoted; /* "" inside quotes: out and in again */
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

int ct_csv_split(const char *row, size_t len, struct ct_field *f, size_t max)
{
	size_t n = 0, start = 0;
	bool quoted = false;

	for (size_t i = 0;; i++) {
		if (i < len && row[i] == '"')
			quoted = !quoted;
		if (i < len && (quoted || row[i] != ','))
			continue;
		if (n == max)
			return -E2BIG;
		f[n++] = (struct ct_field){ row + start, i - start };
		start = i + 1;
		if (i >= len)
			return (int)n;
	}
}

int ct_csv_value(const struct ct_field *f, struct buf *out)
{
	bool quoted = false;

	for (size_t i = 0; i < f->len; i++) {
		char c = f->p[i];
		if (c == '"' && quoted && i + 1 < f->len && f->p[i + 1] == '"') {
			buf_addc(out, '"');
			i++;
		} else if (c == '"') {
			quoted = !quoted;
		} else if (!c) {
			return -EILSEQ;
		} else {
			buf_addc(out, c);
		}
	}
	return out->failed ? -ENOMEM : 0;
}

void ct_csv_quote(struct buf *out, const char *p, size_t n)
{
	bool plain = n && !memchr(p, '"', n) && !memchr(p, ',', n) && !memchr(p, '\n', n) &&
	             !memchr(p, '\r', n) && !(n == 2 && p[0] == '\\' && p[1] == '.');

	if (plain) {
		buf_add(out, p, n);
		return;
	}
	buf_addc(out, '"');
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '"')
			buf_addc(out, '"');
		buf_addc(out, p[i]);
	}
	buf_addc(out, '"');
}

/* --- the formats ------------------------------------------------------------------ */

static bool text_null(const struct ct_field *f)
{
	return ct_is_null(f);
}

static bool csv_null(const struct ct_field *f)
{
	return f->len == 0;
}

const struct ct_format ct_text = { '\t', "\\N", text_null, ct_split, ct_unescape, ct_escape };
const struct ct_format ct_csv = { ',', "", csv_null, ct_csv_split, ct_csv_value, ct_csv_quote };
