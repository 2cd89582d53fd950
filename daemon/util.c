/* util.c - see util.h */
#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* 0..15 for lower-case hex digits, 16 for everything else: upper case is
 * not canonical and is refused. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init" /* the range default is meant */
static const uint8_t hex_values[256] = {
	[0 ... 255] = 16, ['0'] = 0,  ['1'] = 1,  ['2'] = 2,  ['3'] = 3,  ['4'] = 4,
	['5'] = 5,        ['6'] = 6,  ['7'] = 7,  ['8'] = 8,  ['9'] = 9,  ['a'] = 10,
	['b'] = 11,       ['c'] = 12, ['d'] = 13, ['e'] = 14, ['f'] = 15,
};
#pragma GCC diagnostic pop

bool hex_decode(const char *in, size_t hexlen, uint8_t *out)
{
	const unsigned char *s = (const unsigned char *)in;
	unsigned bad = 0;

	if (hexlen % 2)
		return false;
	for (size_t i = 0; i < hexlen / 2; i++) {
		unsigned hi = hex_values[s[2 * i]], lo = hex_values[s[2 * i + 1]];
		bad |= (hi | lo) & 16;
		out[i] = (uint8_t)(hi << 4 | (lo & 15));
	}
	return !bad;
}

int64_t now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

int64_t mono_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* Every audit record carries a time stamp: the date and time are formatted
 * once a second (per thread), the microseconds by hand. */
void ts_format(int64_t us, char out[TS_LEN + 1])
{
	static __thread struct {
		int64_t sec;
		char text[TS_SECONDS_LEN + 1];
	} last = { .sec = -1 };
	if (us < 0)
		us = 0; /* no record predates 1970 */
	int64_t sec = us / 1000000;
	unsigned frac = (unsigned)(us % 1000000);

	if (sec != last.sec) {
		time_t t = (time_t)sec;
		struct tm tm;
		char tmp[64];
		gmtime_r(&t, &tm);
		snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d", (tm.tm_year + 1900) % 10000,
		         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		memcpy(last.text, tmp, TS_SECONDS_LEN);
		last.sec = sec;
	}
	memcpy(out, last.text, TS_SECONDS_LEN);
	out[TS_SECONDS_LEN] = '.';
	for (int i = TS_LEN - 2; i > TS_SECONDS_LEN; i--, frac /= 10)
		out[i] = (char)('0' + frac % 10);
	out[TS_LEN - 1] = 'Z';
	out[TS_LEN] = '\0';
}

static bool digits(const char *s, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*ret = v;
	return true;
}

bool ts_parse(const char *s, int64_t *ret_us)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
	size_t n = strlen(s);

	if (n < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
	    !digits(s + 8, 2, &d))
		return false;
	if (n > 10) {
		if (n < 20 || s[10] != 'T' || !digits(s + 11, 2, &h) || s[13] != ':' ||
		    !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
			return false;
		if (n == 27 && s[19] == '.' && digits(s + 20, 6, &frac) && s[26] == 'Z')
			;
		else if (!(n == 20 && s[19] == 'Z'))
			return false;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return false;
	struct tm tm = {
		.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec
	};
	time_t t = timegm(&tm);
	if (tm.tm_mday != d) /* 2026-02-30 normalised to March */
		return false;
	*ret_us = (int64_t)t * 1000000 + frac;
	return true;
}

bool parse_u64(const char *s, uint64_t *ret)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*ret = v;
	return true;
}

bool parse_size(const char *s, uint64_t *ret)
{
	static const struct {
		char c;
		unsigned shift;
	} units[] = {
		{ 'K', 10 },
		{ 'M', 20 },
		{ 'G', 30 },
	};
	char num[32];
	size_t n = s ? strlen(s) : 0;
	unsigned shift = 0;

	if (n == 0 || n >= sizeof(num))
		return false;
	memcpy(num, s, n + 1);
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (num[n - 1] == units[i].c) {
			shift = units[i].shift;
			num[--n] = '\0';
			break; /* one suffix at most */
		}
	}
	uint64_t v;
	if (!parse_u64(num, &v) || v > (UINT64_MAX >> shift))
		return false;
	*ret = v << shift;
	return true;
}

int read_fd(int fd, size_t max, char **ret_buf, size_t *ret_len)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;
	char *buf = malloc((size_t)st.st_size + 1);
	size_t len = 0;
	ssize_t r = 0;
	while (buf && len < (size_t)st.st_size && (r = read(fd, buf + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)r;
	int err = !buf ? -ENOMEM : r < 0 ? -errno : 0;
	if (err) {
		free(buf);
		return err;
	}
	buf[len] = '\0';
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

int read_file(const char *path, size_t max, char **ret_buf, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int err = read_fd(fd, max, ret_buf, ret_len);
	close(fd);
	return err;
}

int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

int write_file_excl(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	int err = write_all(fd, data, len);
	if (!err && (fchmod(fd, mode) < 0 || fsync(fd) < 0))
		err = -errno;
	close(fd);
	if (err) {
		unlink(path);
		return err;
	}
	char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	err = fsync_dir(dirname(copy));
	free(copy);
	return err;
}

int check_private(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	return (st.st_mode & 077) ? -EACCES : 0;
}

size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0xc2)
		return 0;
	if (s[0] < 0xe0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] < 0xf0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] < 0xf5) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

bool utf8_valid(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0, k; i < n; i += k)
		if (!u[i] || !(k = u[i] < 0x80 ? 1 : utf8_seq(u + i, n - i)))
			return false;
	return true;
}
