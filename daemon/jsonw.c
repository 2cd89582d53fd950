/* jsonw.c - see jsonw.h */
#include "jsonw.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void jw_escape(struct buf *b, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";
	char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };

	switch (c) {
	case '"': buf_add(b, "\\\"", 2); break;
	case '\\': buf_add(b, "\\\\", 2); break;
	case '\n': buf_add(b, "\\n", 2); break;
	case '\r': buf_add(b, "\\r", 2); break;
	case '\t': buf_add(b, "\\t", 2); break;
	default: buf_add(b, e, 6); break;
	}
}

/* Whether any of the 8 bytes in x needs more than a copy: a control
 * character, '"', '\\' or a byte of 0x80 and above. The subtractions may
 * borrow into the next byte only from a byte that is flagged already. */
static bool needs_care(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;

	return ((x - ones * 0x20) | ((x ^ ones * '"') - ones) | ((x ^ ones * '\\') - ones) | x) & high;
}

void jw_strn(struct buf *b, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t run = 0; /* start of the current run of plain bytes */

	if (!buf_reserve(b, n + 2))
		return;
	buf_addc(b, '"');
	for (size_t i = 0; i < n;) {
		uint64_t x;
		if (n - i >= sizeof(x) && (memcpy(&x, s + i, sizeof(x)), !needs_care(x))) {
			i += sizeof(x);
			continue;
		}
		unsigned char c = s[i];
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			i++;
			continue;
		}
		size_t ulen = c >= 0x80 ? utf8_seq(s + i, n - i) : 0;
		if (ulen) {
			i += ulen;
			continue;
		}
		buf_add(b, s + run, i - run);
		if (c >= 0x80)
			buf_add(b, "\xef\xbf\xbd", 3);
		else
			jw_escape(b, c);
		run = ++i;
	}
	buf_add(b, s + run, n - run);
	buf_addc(b, '"');
}

void jw_u64(struct buf *b, uint64_t v)
{
	char tmp[20], *p = tmp + sizeof(tmp);

	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	buf_add(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

void jw_i64(struct buf *b, int64_t v)
{
	if (v < 0)
		buf_addc(b, '-');
	jw_u64(b, v < 0 ? -(uint64_t)v : (uint64_t)v);
}
