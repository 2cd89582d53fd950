/* bytea.c - see bytea.h. */
#include "bytea.h"

#include <errno.h>
#include <string.h>

static int hexdigit(char c)
{
	return c >= '0' && c <= '9'                     ? c - '0'
	       : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
	                                                : -1;
}

static int decode_hex(const char *s, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n;) {
		if (strchr(" \t\n\r", s[i]) && s[i]) {
			i++;
			continue;
		}
		int hi = hexdigit(s[i]), lo = i + 1 < n ? hexdigit(s[i + 1]) : -1;
		if (hi < 0 || lo < 0)
			return -EINVAL;
		buf_addc(out, (char)(hi << 4 | lo));
		i += 2;
	}
	return out->failed ? -ENOMEM : 0;
}

static int decode_escape(const char *s, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n;) {
		if (s[i] != '\\') {
			buf_addc(out, s[i++]);
		} else if (i + 1 < n && s[i + 1] == '\\') {
			buf_addc(out, '\\');
			i += 2;
		} else if (i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
		           s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			buf_addc(out,
			         (char)((s[i + 1] - '0') << 6 | (s[i + 2] - '0') << 3 | (s[i + 3] - '0')));
			i += 4;
		} else {
			return -EINVAL;
		}
	}
	return out->failed ? -ENOMEM : 0;
}

int by_decode(const char *s, size_t n, struct buf *out)
{
	if (n >= 2 && s[0] == '\\' && s[1] == 'x')
		return decode_hex(s + 2, n - 2, out);
	return decode_escape(s, n, out);
}

void by_encode(const char *p, size_t n, struct buf *out)
{
	static const char digits[] = "0123456789abcdef";

	buf_adds(out, "\\x");
	if (!buf_reserve(out, 2 * n))
		return;
	for (size_t i = 0; i < n; i++) {
		buf_addc(out, digits[(unsigned char)p[i] >> 4]);
		buf_addc(out, digits[(unsigned char)p[i] & 15]);
	}
}
