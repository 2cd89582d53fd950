/* logfollow.c - see logfollow.h. The active segment is prefilled with
 * newlines and records overwrite them, so a line is taken only once it is
 * framed completely and its sequence number is the next one; anything
 * else is a record still being written, read again next time. */
#define _GNU_SOURCE
#include "logfollow.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logrec.h"
#include "logseg.h"

#define CHUNK (256u * 1024)
#define IDLE_READ (64u * 1024)

struct lfollow {
	int dirfd, fd;  /* the log directory; the segment being read */
	uint64_t first; /* that segment's first sequence number */
	uint64_t off;   /* where its unread data starts */
	uint64_t last;  /* the last record passed on */
	char *buf;      /* CHUNK + LR_MAX_LINE */
	char *dir;      /* the log directory's path */
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

static int skip(void *arg, const char *line, size_t len)
{
	(void)arg, (void)line, (void)len;
	return 0;
}

int lf_open(const char *dir, struct lfollow **ret)
{
	struct lfollow *f = calloc(1, sizeof(*f));
	struct seginfo s;
	int err;

	if (!f || !(f->buf = malloc(CHUNK + LR_MAX_LINE)) || !(f->dir = strdup(dir))) {
		if (f)
			free(f->buf);
		return free(f), -ENOMEM;
	}
	f->fd = -1;
	f->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	err = f->dirfd < 0 ? -errno : newest(dir, &s);
	if (!err)
		err = open_segment(f, &s, 0);
	/* follow from now: pass over what the active segment holds, record by
	 * record, so a record still being written is the first one delivered */
	if (!err)
		f->last = s.first - 1;
	while (!err && (err = lf_poll(f, skip, NULL, UINT_MAX)) > 0)
		err = 0;
	if (err < 0) {
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
	free(f->dir);
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
		if (len == 0 || lr_scan(buf + used, len, &fr))
			break;           /* filler, or a record not written completely yet */
		if (fr.seq <= f->last) { /* passed on already (from a sealed copy) */
			used += len + 1;
			continue;
		}
		if (fr.seq != f->last + 1) {
			*ret_err = -EBADMSG; /* a gap: not a log this follower can trust */
			break;
		}
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

/* Passes on the records of a segment sealed before the follower got to
 * it (a reader that fell behind): gzip cannot seek, so it is read from
 * its start each time, skipping what was passed on already. */
static int drain_sealed(struct lfollow *f, const struct seginfo *s, int (*fn)(void *, const char *, size_t),
                        void *arg, unsigned max, unsigned *count)
{
	struct segreader *r;
	const char *line;
	size_t len;
	uint64_t off;
	int err = segreader_open(f->dirfd, s, &r), k = SEG_END;

	if (err)
		return err;
	while (!err && *count < max && (k = segreader_next(r, &line, &len, &off)) == SEG_LINE) {
		struct lr_frame fr;
		if (lr_scan(line, len, &fr) || fr.seq > f->last + 1)
			err = -EBADMSG;
		else if (fr.seq == f->last + 1 && !(err = fn(arg, line, len))) {
			f->last = fr.seq;
			(*count)++;
		}
	}
	if (!err && k < 0)
		err = k;
	segreader_free(r);
	return err;
}

/* The segment holding sequence number seq: the last one whose first is
 * not after it (a plain one before a sealed one of the same first). */
static int containing(struct lfollow *f, uint64_t seq, struct seginfo *ret)
{
	struct seginfo *v;
	size_t n;
	int err;

	if ((err = logseg_list(f->dir, &v, &n)))
		return err;
	err = -ENOENT;
	for (size_t i = 0; i < n && v[i].first <= seq; i++)
		if (err || v[i].first != ret->first || !v[i].gz) {
			*ret = v[i];
			err = 0;
		}
	free(v);
	return err;
}

/* Moves on once the logger has: to the segment that holds the next
 * record, plain (read on from there) or sealed already (passed on whole,
 * for a reader that fell behind). */
static int next_segment(struct lfollow *f, int (*fn)(void *, const char *, size_t), void *arg, unsigned max,
                        unsigned *count, bool *moved)
{
	struct seginfo s = { .first = 0 };
	uint64_t before = f->last;
	int err = containing(f, f->last + 1, &s);

	*moved = false;
	if (err == -ENOENT || (!err && s.first == f->first && !s.gz))
		return 0; /* still the segment being read */
	if (err)
		return err;
	if (!s.gz) {
		*moved = true;
		return open_segment(f, &s, 0); /* records up to f->last in it are skipped */
	}
	err = drain_sealed(f, &s, fn, arg, max, count);
	*moved = f->last != before;
	return err;
}

int lf_poll(struct lfollow *f, int (*fn)(void *arg, const char *line, size_t len), void *arg, unsigned max)
{
	unsigned count = 0;

	for (int rounds = 0; count < max; rounds++) {
		/* a small read while idle; the whole window for a long line */
		size_t want = rounds ? CHUNK + LR_MAX_LINE : IDLE_READ;
		ssize_t n = pread(f->fd, f->buf, want, (off_t)f->off);
		if (n < 0)
			return -errno;
		if ((size_t)n == want && want == IDLE_READ && !memchr(f->buf, '\n', (size_t)n))
			continue; /* no whole line in the small window: read the large one */
		int ferr;
		size_t used = take(f, f->buf, (size_t)n, fn, arg, max, &count, &ferr);
		f->off += used;
		if (ferr)
			return ferr;
		if (used > 0)
			continue;
		bool moved;
		int err = next_segment(f, fn, arg, max, &count, &moved);
		if (err)
			return err;
		if (!moved)
			break;
	}
	return (int)count;
}
