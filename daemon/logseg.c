/* logseg.c - see logseg.h */
#define _GNU_SOURCE
#include "logseg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logrec.h"
#include "seggz.h"

/* a line that may be a whole record, and room for a whole member of a
 * sealed segment after it */
#define READ_BUF (LR_MAX_LINE + SEGGZ_MEMBER)

void logseg_name(uint64_t first, bool gz, char ret[SEG_NAME_MAX])
{
	snprintf(ret, SEG_NAME_MAX, "seg-%020" PRIu64 ".jsonl%s", first, gz ? ".gz" : "");
}

static bool parse_name(const char *name, struct seginfo *ret)
{
	uint64_t first = 0;
	size_t n = strlen(name);

	if (n < 30 || memcmp(name, "seg-", 4) || memcmp(name + 24, ".jsonl", 6))
		return false;
	for (int i = 4; i < 24; i++) {
		if (name[i] < '0' || name[i] > '9' || first > UINT64_MAX / 10)
			return false;
		first = first * 10 + (uint64_t)(name[i] - '0');
	}
	if (n != 30 && !(n == 33 && !strcmp(name + 30, ".gz")))
		return false;
	ret->first = first;
	ret->gz = n == 33;
	logseg_name(first, ret->gz, ret->name);
	return true;
}

static int seg_cmp(const void *a, const void *b)
{
	const struct seginfo *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return (int)x->gz - (int)y->gz;
}

int logseg_list(const char *dir, struct seginfo **ret, size_t *ret_n)
{
	DIR *d = opendir(dir);
	struct seginfo *v = NULL, s;
	size_t n = 0, cap = 0;
	struct dirent *e;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (!parse_name(e->d_name, &s))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			struct seginfo *nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n++] = s;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), seg_cmp);
	*ret = v;
	*ret_n = n;
	return 0;
}

struct segreader {
	int fd;
	struct seggz *gz; /* a sealed segment's */
	char *buf;
	size_t pos, fill;
	uint64_t off; /* uncompressed offset of buf[pos] */
	bool eof, ended;
	bool trust_end; /* see segreader_trust_end */
};

int segreader_open(int dirfd, const struct seginfo *s, struct segreader **ret)
{
	struct segreader *r = calloc(1, sizeof(*r));

	if (!r || !(r->buf = malloc(READ_BUF))) {
		free(r);
		return -ENOMEM;
	}
	r->fd = openat(dirfd, s->name, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		int err = -errno;
		segreader_free(r);
		return err;
	}
	if (s->gz) {
		int err = seggz_open(r->fd, &r->gz);
		r->fd = -1;
		if (err) {
			segreader_free(r);
			return err;
		}
	}
	*ret = r;
	return 0;
}

int segreader_seek(struct segreader *r, uint64_t off)
{
	if (r->gz || off > INT64_MAX)
		return -EINVAL;
	if (lseek(r->fd, (off_t)off, SEEK_SET) < 0)
		return -errno;
	r->off = off;
	r->pos = r->fill = 0;
	r->eof = r->ended = false;
	return 0;
}

void segreader_free(struct segreader *r)
{
	if (!r)
		return;
	seggz_free(r->gz);
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	free(r);
}

/* Moves the unread rest to the front and reads more. */
static int refill(struct segreader *r)
{
	memmove(r->buf, r->buf + r->pos, r->fill - r->pos);
	r->fill -= r->pos;
	r->pos = 0;
	while (!r->eof && r->fill < READ_BUF) {
		ssize_t n;
		if (r->gz) {
			n = seggz_read(r->gz, r->buf + r->fill, READ_BUF - r->fill);
			if (n < 0)
				return (int)n;
		} else {
			n = read(r->fd, r->buf + r->fill, READ_BUF - r->fill);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
		}
		if (n == 0)
			r->eof = true;
		r->fill += (size_t)n;
		if (n > 0)
			break;
	}
	return 0;
}

/* After the end of the data: everything left must be filler. */
static int check_filler(struct segreader *r, uint64_t *ret_off)
{
	r->ended = true;
	for (;;) {
		for (size_t i = r->pos; i < r->fill; i++) {
			if (r->buf[i] != SEG_FILL) {
				*ret_off = r->off + (i - r->pos);
				return SEG_JUNK;
			}
		}
		r->off += r->fill - r->pos;
		r->pos = r->fill;
		if (r->eof)
			return SEG_END;
		int err = refill(r);
		if (err)
			return err;
	}
}

int segreader_next(struct segreader *r, const char **ret_line, size_t *ret_len, uint64_t *ret_off)
{
	if (r->ended)
		return SEG_END;
	for (;;) {
		char *start = r->buf + r->pos;
		size_t avail = r->fill - r->pos;
		char *nl = memchr(start, '\n', avail);
		if (nl == start && r->trust_end)
			return r->ended = true, SEG_END;
		if (nl == start)
			return check_filler(r, ret_off);
		if (nl || (r->eof && avail)) {
			size_t len = nl ? (size_t)(nl - start) : avail;
			*ret_line = start;
			*ret_len = len;
			*ret_off = r->off;
			r->pos += len + (nl != NULL);
			r->off += len + (nl != NULL);
			return nl ? SEG_LINE : SEG_TORN;
		}
		if (r->eof)
			return SEG_END;
		if (avail > LR_MAX_LINE) {
			*ret_off = r->off;
			return -E2BIG;
		}
		int err = refill(r);
		if (err)
			return err;
	}
}

void segreader_trust_end(struct segreader *r)
{
	r->trust_end = true;
}

int logseg_data_end(int dirfd, const struct seginfo *s, uint64_t *ret)
{
	struct segreader *r;
	const char *line;
	size_t len;
	uint64_t off, end = 0;
	int n = segreader_open(dirfd, s, &r);

	while (n == 0 && (n = segreader_next(r, &line, &len, &off)) == SEG_LINE)
		end = off + len + 1, n = 0;
	segreader_free(r);
	if (n == SEG_END)
		*ret = end;
	return n == SEG_END ? 0 : n < 0 ? n : -EBADMSG;
}

int logseg_seal(int dirfd, const struct seginfo *s)
{
	char gzname[SEG_NAME_MAX], tmp[SEG_NAME_MAX + 8];
	int in = -1, out = -1, err;
	uint64_t len;

	if ((err = logseg_data_end(dirfd, s, &len)))
		return err;
	logseg_name(s->first, true, gzname);
	snprintf(tmp, sizeof(tmp), "%s.tmp", gzname);
	in = openat(dirfd, s->name, O_RDONLY | O_CLOEXEC);
	out = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (in < 0 || out < 0)
		err = -errno;
	if (!err)
		err = seggz_write(in, out, len);
	if (!err && fsync(out) < 0)
		err = -errno;
	if (!err && renameat(dirfd, tmp, dirfd, gzname) < 0)
		err = -errno;
	if (!err && fsync(dirfd) < 0)
		err = -errno;
	if (!err && unlinkat(dirfd, s->name, 0) < 0)
		err = -errno;
	if (!err && fsync(dirfd) < 0)
		err = -errno;
	if (err)
		unlinkat(dirfd, tmp, 0);
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return err;
}

int logseg_fill(int fd, uint64_t from, uint64_t to)
{
	static const size_t chunk = 1u << 20;
	char *buf = malloc(chunk);
	int err = buf ? 0 : -ENOMEM;

	if (buf)
		memset(buf, SEG_FILL, chunk);
	while (!err && from < to) {
		size_t n = to - from < chunk ? (size_t)(to - from) : chunk;
		ssize_t w = pwrite(fd, buf, n, (off_t)from);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			err = w < 0 ? -errno : -EIO;
		else
			from += (uint64_t)w;
	}
	free(buf);
	if (!err && fdatasync(fd) < 0)
		err = -errno;
	return err;
}

int logseg_prefill(int dirfd, const char *name, uint64_t bytes)
{
	char tmp[SEG_NAME_MAX + 8];
	int fd, err;

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	err = logseg_fill(fd, 0, bytes);
	close(fd);
	if (!err && renameat(dirfd, tmp, dirfd, name) < 0)
		err = -errno;
	if (!err && fsync(dirfd) < 0)
		err = -errno;
	if (err)
		unlinkat(dirfd, tmp, 0);
	return err;
}
