/* seggz.c - see seggz.h */
#define _GNU_SOURCE
#include "seggz.h"

#include <errno.h>
#include <limits.h>
#include <libdeflate.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define LEVEL 1 /* libdeflate's fastest: the sealer keeps up with the writer on one core */
/* Compressed bytes held, and the least kept there while the file has more:
 * a whole member fits, even one that did not compress. */
#define WINDOW (2 * SEGGZ_MEMBER)
#define LOW (SEGGZ_MEMBER + SEGGZ_MEMBER / 8)
#define GZIP_ID1 0x1f
#define GZIP_ID2 0x8b
#define FHCRC 0x02 /* the header's flag byte (its fourth): a CRC of the header follows it */

struct seggz {
	int fd;
	struct libdeflate_decompressor *d; /* member by member; NULL once gz took over */
	gzFile gz;
	uint8_t *win;
	size_t pos, fill;  /* the unread compressed bytes are win[pos, fill) */
	uint64_t file_off; /* the file offset of win[pos] */
	bool eof;          /* fd read to its end */
	int err;           /* a failed hand-over to gz, returned from then on */
	bool ended;        /* junk after the last member: ignored, as zlib ignores it */
};

/* ---- writing ------------------------------------------------------------ */

int seggz_write(int in, int out, uint64_t len)
{
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(LEVEL);
	size_t bound = c ? libdeflate_gzip_compress_bound(c, SEGGZ_MEMBER) : 0;
	char *plain = malloc(SEGGZ_MEMBER);
	uint8_t *packed = bound ? malloc(bound) : NULL;
	int err = plain && packed ? 0 : -ENOMEM;

	do { /* an empty segment still makes a gzip file: one empty member */
		size_t want = len < SEGGZ_MEMBER ? (size_t)len : SEGGZ_MEMBER, n = 0;
		if (!err)
			err = read_all(in, plain, want);
		if (!err && !(n = libdeflate_gzip_compress(c, plain, want, packed, bound)))
			err = -EIO;
		if (!err)
			err = write_all(out, packed, n);
		len -= want;
	} while (!err && len);
	free(packed);
	free(plain);
	libdeflate_free_compressor(c);
	return err;
}

/* ---- reading ------------------------------------------------------------ */

int seggz_open(int fd, struct seggz **ret)
{
	struct seggz *z = calloc(1, sizeof(*z));

	if (!z || !(z->win = malloc(WINDOW)) || !(z->d = libdeflate_alloc_decompressor())) {
		if (z)
			free(z->win);
		free(z);
		close(fd);
		return -ENOMEM;
	}
	z->fd = fd;
	*ret = z;
	return 0;
}

void seggz_free(struct seggz *z)
{
	if (!z)
		return;
	libdeflate_free_decompressor(z->d);
	free(z->win);
	if (z->gz)
		gzclose(z->gz);
	if (z->fd >= 0)
		close(z->fd);
	free(z);
}

/* Tops the window up to WINDOW bytes or the end of the file. */
static int fill_window(struct seggz *z)
{
	memmove(z->win, z->win + z->pos, z->fill - z->pos);
	z->fill -= z->pos;
	z->pos = 0;
	while (!z->eof && z->fill < WINDOW) {
		ssize_t n = read(z->fd, z->win + z->fill, WINDOW - z->fill);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		z->eof = n == 0;
		z->fill += (size_t)n;
	}
	return 0;
}

/* The next nonempty member whole: its length, 0 after the last one, or
 * -EAGAIN when libdeflate cannot take it (zlib goes on from there; the
 * file is a regular file, whose reads never fail with EAGAIN). */
static ssize_t read_member(struct seggz *z, char *buf, size_t cap)
{
	for (;;) {
		if (z->fill - z->pos < LOW && !z->eof) {
			int err = fill_window(z);
			if (err)
				return err;
		}
		if (z->pos == z->fill)
			return 0;
		size_t used = 0, got = 0;
		if (z->fill - z->pos < 4 || (z->win[z->pos + 3] & FHCRC))
			return -EAGAIN; /* zlib checks a header's CRC, libdeflate does not */
		if (libdeflate_gzip_decompress_ex(z->d, z->win + z->pos, z->fill - z->pos, buf, cap, &used,
		                                  &got) != LIBDEFLATE_SUCCESS)
			return -EAGAIN;
		z->pos += used;
		z->file_off += used;
		if (got)
			return (ssize_t)got;
	}
}

static int hand_to_zlib(struct seggz *z)
{
	libdeflate_free_decompressor(z->d);
	z->d = NULL;
	free(z->win);
	z->win = NULL;
	if (lseek(z->fd, (off_t)z->file_off, SEEK_SET) < 0)
		return -errno;
	if (!(z->gz = gzdopen(z->fd, "rb")))
		return -ENOMEM;
	z->fd = -1; /* gz's now */
	gzbuffer(z->gz, 1u << 18);
	return 0;
}

/* After a member, bytes that do not start another: zlib reads them as the
 * end of the file (a fresh gzFile there would hand them out as data). */
static bool junk_after_members(const struct seggz *z)
{
	const uint8_t *p = z->win + z->pos;

	return z->file_off && !(z->fill - z->pos >= 2 && p[0] == GZIP_ID1 && p[1] == GZIP_ID2);
}

ssize_t seggz_read(struct seggz *z, char *buf, size_t cap)
{
	if (z->ended)
		return 0;
	if (z->d) {
		ssize_t n = read_member(z, buf, cap);
		if (n != -EAGAIN)
			return n;
		if ((z->ended = junk_after_members(z)))
			return 0;
		z->err = hand_to_zlib(z);
	}
	if (z->err)
		return z->err;
	int n = gzread(z->gz, buf, cap < INT_MAX ? (unsigned)cap : INT_MAX), zerr = Z_OK;
	if (n < 0 || (gzerror(z->gz, &zerr), zerr != Z_OK))
		return -EBADMSG; /* Z_BUF_ERROR included: the file ends inside a member */
	return n;
}
