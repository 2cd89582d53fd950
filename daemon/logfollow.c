/* logfollow.c - see logfollow.h. The active segment is prefilled with
 * newlines and records overwrite them, so a line is taken only once it is
 * framed completely and its sequence number is the next one; anything
 * else is a record still being written, read again next time. */
#define _GNU_SOURCE
#include "logfollow.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logrec.h"
#include "logseg.h"

#define CHUNK (256u * 1024)

struct lfollow {
	int dirfd, fd;  /* the log directory; the segment being read */
	uint64_t first; /* that segment's first sequence number */
	uint64_t off;   /* where its unread data starts */
	uint64_t last;  /* the last record passed on */
	char *buf;      /* CHUNK + LR_MAX_LINE */
};

/* The newest plain segment. -ENOENT when there is none. */
static int newest(const char *dir, struct seginfo *ret)
{
	struct seginfo *v;
	size_t n;
	int err = logseg_list(dir, &v, &n);

	if (err)
		return err;
	err = -ENOENT;
	for (size_t i = n; i-- > 0;)
		if (!v[i].gz) {
			*ret = v[i];
			err = 0;
			break;
		}
	free(v);
	return err;
}

static int open_segment(struct lfollow *f, const struct seginfo *s, uint64_t off)
{
	int fd = openat(f->dirfd, s->name, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (f->fd >= 0)
		close(f->fd);
	f->fd = fd;
	f->first = s->first;
	f->off = off;
	return 0;
}

int lf_open(const char *dir, struct lfollow **ret)
{
	struct lfollow *f = calloc(1, sizeof(*f));
	struct seginfo s;
	uint64_t end;
	int err;

	if (!f || !(f->buf = malloc(CHUNK + LR_MAX_LINE)))
		return free(f), -ENOMEM;
	f->fd = -1;
	f->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	err = f->dirfd < 0 ? -errno : newest(dir, &s);
	if (!err)
		err = logseg_data_end(f->dirfd, &s, &end);
	if (!err)
		err = open_segment(f, &s, end);
	/* the last record: read back from the end for its seq */
	if (!err && end) {
		size_t n = end < LR_MAX_LINE ? (size_t)end : LR_MAX_LINE;
		ssize_t r = pread(f->fd, f->buf, n, (off_t)(end - n));
		struct lr_frame fr;
		if (r == (ssize_t)n && n > 1) {
			char *start = memrchr(f->buf, '\n', n - 1);
			start = start ? start + 1 : f->buf;
			if (!lr_scan(start, (size_t)(f->buf + n - 1 - start), &fr))
				f->last = fr.seq;
		}
	}
	if (!err && !end)
		f->last = s.first - 1;
	if (err) {
		lf_close(f);
		return err;
	}
	*ret = f;
	return 0;
}

void lf_close(struct lfollow *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	if (f->dirfd >= 0)
		close(f->dirfd);
	free(f->buf);
	free(f);
}

uint64_t lf_last(const struct lfollow *f)
{
	return f->last;
}

/* Passes on the complete next records in buf[0, n). Returns how many
 * bytes were consumed (also when fn failed: *ret_err), and counts the
 * records in *count. */
static size_t take(struct lfollow *f, const char *buf, size_t n, int (*fn)(void *, const char *, size_t),
                   void *arg, unsigned max, unsigned *count, int *ret_err)
{
	size_t used = 0;

	*ret_err = 0;
	while (*count < max && used < n) {
		const char *nl = memchr(buf + used, '\n', n - used);
		if (!nl)
			break;
		size_t len = (size_t)(nl - (buf + used));
		struct lr_frame fr;
		if (len == 0 || lr_scan(buf + used, len, &fr) || fr.seq != f->last + 1)
			break; /* filler, or a record not written completely yet */
		int r = fn(arg, buf + used, len);
		if (r < 0) {
			*ret_err = r; /* this record was not passed on: it is the next one still */
			break;
		}
		f->last = fr.seq;
		used += len + 1;
		(*count)++;
	}
	return used;
}

/* Moves on to the next segment once the logger has: its successor exists. */
static int next_segment(struct lfollow *f, bool *moved)
{
	struct seginfo s;
	char name[SEG_NAME_MAX];

	*moved = false;
	logseg_name(f->last + 1, false, name);
	snprintf(s.name, sizeof(s.name), "%s", name);
	s.first = f->last + 1;
	s.gz = false;
	if (f->last + 1 == f->first || faccessat(f->dirfd, name, F_OK, 0)) {
		logseg_name(f->last + 1, true, name);
		/* sealed before we got there: this follower fell too far behind */
		return f->last + 1 != f->first && !faccessat(f->dirfd, name, F_OK, 0) ? -ESTALE : 0;
	}
	*moved = true;
	return open_segment(f, &s, 0);
}

int lf_poll(struct lfollow *f, int (*fn)(void *arg, const char *line, size_t len), void *arg, unsigned max)
{
	unsigned count = 0;

	for (int rounds = 0; rounds < 64 && count < max; rounds++) {
		ssize_t n = pread(f->fd, f->buf, CHUNK + LR_MAX_LINE, (off_t)f->off);
		if (n < 0)
			return -errno;
		int ferr;
		size_t used = take(f, f->buf, (size_t)n, fn, arg, max, &count, &ferr);
		f->off += used;
		if (ferr)
			return ferr;
		if (used > 0)
			continue;
		bool moved;
		int err = next_segment(f, &moved);
		if (err)
			return err;
		if (!moved)
			break;
	}
	return (int)count;
}
