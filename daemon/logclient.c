/* logclient.c - see logclient.h. The channel is a SOCK_SEQPACKET
 * socketpair, whose messages arrive whole or not at all. Records are
 * framed in order into one IPC_LOG_BATCH message until the end of the
 * loop's pass, then go out together; full messages wait in outq for the
 * channel to take them. Lazy records alone wait a little longer, up to
 * LC_LAZY_US or LC_LAZY_MAX of them: the logger makes them durable within
 * its batch window anyway, and each wakeup of its costs more than the
 * records it brings. The logger answers in order, so the waiting callbacks
 * are a FIFO ring. */
#define _GNU_SOURCE
#include "logclient.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "logmsg.h"

#define LC_MAX_INFLIGHT 65536 /* a power of two */
#define LC_LAZY_US 2000
#define LC_LAZY_MAX 64 /* worth a wakeup of the logger */

struct waiter {
	uint32_t id;
	lc_done done;
	void *arg;
};

struct outmsg { /* an IPC_LOG_BATCH */
	struct outmsg *next;
	unsigned records;
	size_t len;
	uint8_t data[];
};

struct logclient {
	struct event_base *base;
	struct event *ev;
	int fd;
	uint32_t next_id;
	struct waiter *ring; /* LC_MAX_INFLIGHT */
	size_t head, n;
	struct buf frames; /* the records of the message being built */
	unsigned framed;   /* ... how many */
	struct outmsg *outq, **outq_tail;
	bool last_failed, armed_write;
	bool flush_pending; /* flush_ev is active (flush now) or pending (a timer, for lazy records) */
	bool flush_now;     /* ... and active */
	unsigned queued;    /* framed, or in outq */
	int64_t failed_at_us;
	struct event *flush_ev;
	struct buf lists;
	uint8_t enc[IPC_MAX_MSG], rbuf[IPC_MAX_MSG + 1];
	struct lc_stats st;
};

static void on_event(evutil_socket_t fd, short what, void *arg);
static void on_flush(evutil_socket_t fd, short what, void *arg);
static int flush_out(struct logclient *lc);

struct logclient *lc_new(struct event_base *base)
{
	struct logclient *lc = calloc(1, sizeof(*lc));

	if (!lc || !(lc->ring = calloc(LC_MAX_INFLIGHT, sizeof(*lc->ring)))) {
		free(lc);
		return NULL;
	}
	lc->base = base;
	lc->fd = -1;
	lc->outq_tail = &lc->outq;
	if (!(lc->flush_ev = event_new(base, -1, 0, on_flush, lc))) {
		free(lc->ring);
		free(lc);
		return NULL;
	}
	return lc;
}

/* Fails every waiter with err. */
static void fail_all(struct logclient *lc, int err)
{
	while (lc->n) {
		struct waiter w = lc->ring[lc->head];
		lc->head = (lc->head + 1) & (LC_MAX_INFLIGHT - 1);
		lc->n--;
		lc->st.failed++;
		if (w.done)
			w.done(w.arg, err, 0);
	}
	for (struct outmsg *m = lc->outq, *next; m; m = next) {
		next = m->next;
		free(m);
	}
	lc->outq = NULL;
	lc->outq_tail = &lc->outq;
	buf_reset(&lc->frames);
	lc->queued = lc->framed = 0;
}

static void drop_channel(struct logclient *lc, int err)
{
	if (lc->ev)
		event_free(lc->ev);
	lc->ev = NULL;
	if (lc->fd >= 0)
		close(lc->fd); /* its own duplicate: the role layer owns the channel */
	lc->fd = -1;
	fail_all(lc, err);
}

void lc_free(struct logclient *lc)
{
	if (!lc)
		return;
	for (size_t i = 0; i < LC_MAX_INFLIGHT; i++)
		lc->ring[i].done = NULL;
	if (lc->fd >= 0)
		(void)flush_out(lc); /* lazy records still waiting their 2 ms: as many as the channel takes */
	drop_channel(lc, -ECONNABORTED);
	event_free(lc->flush_ev);
	buf_free(&lc->lists);
	buf_free(&lc->frames);
	free(lc->ring);
	free(lc);
}

/* Watches for writability only while something waits to be sent. */
static void arm(struct logclient *lc)
{
	bool want = lc->outq != NULL;

	if (want == lc->armed_write)
		return;
	event_del(lc->ev);
	event_assign(lc->ev, lc->base, lc->fd, EV_READ | EV_PERSIST | (want ? EV_WRITE : 0), on_event, lc);
	event_add(lc->ev, NULL);
	lc->armed_write = want;
}

void lc_set_fd(struct logclient *lc, int fd)
{
	if (lc->fd >= 0)
		drop_channel(lc, -EPIPE);
	if (fd < 0 || (fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
		return;
	lc->fd = fd;
	lc->ev = event_new(lc->base, fd, EV_READ | EV_PERSIST, on_event, lc);
	lc->last_failed = lc->armed_write = false;
	if (!lc->ev || event_add(lc->ev, NULL)) { /* no channel rather than a half one */
		if (lc->ev)
			event_free(lc->ev);
		lc->ev = NULL;
		close(fd);
		lc->fd = -1;
	}
}

/* Queues the records framed so far as one message. */
/* Queues m, which carries that many records. */
static int queue(struct logclient *lc, const struct ipc_msg *m, unsigned records)
{
	ssize_t len = ipc_encode(m, lc->enc);

	if (len < 0)
		return (int)len;
	struct outmsg *o = malloc(sizeof(*o) + (size_t)len);
	if (!o)
		return -ENOMEM;
	o->next = NULL;
	o->records = records;
	o->len = (size_t)len;
	memcpy(o->data, lc->enc, (size_t)len);
	*lc->outq_tail = o;
	lc->outq_tail = &o->next;
	return 0;
}

static int seal(struct logclient *lc)
{
	struct ipc_msg m = { .type = IPC_LOG_BATCH, .nfields = 1, .fd = -1 };

	if (!lc->framed)
		return 0;
	m.f[0] = (struct ipc_field){ .kind = 'b', .b = { (uint8_t *)lc->frames.p, lc->frames.len } };
	int err = queue(lc, &m, lc->framed);
	if (!err) {
		buf_reset(&lc->frames);
		lc->framed = 0;
	}
	return err;
}

/* Sends what waits, many messages a system call; 0, or the channel's
 * error. */
static int flush_out(struct logclient *lc)
{
	struct mmsghdr mh[64];
	struct iovec iov[64];
	int err = seal(lc);

	if (err)
		return err;
	while (lc->outq) {
		unsigned n = 0;
		for (struct outmsg *m = lc->outq; m && n < 64; m = m->next, n++) {
			iov[n] = (struct iovec){ m->data, m->len };
			mh[n] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[n], .msg_iovlen = 1 } };
		}
		int w = sendmmsg(lc->fd, mh, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
		for (int i = 0; i < w; i++) {
			struct outmsg *m = lc->outq;
			lc->outq = m->next;
			lc->queued -= m->records;
			free(m);
		}
		if (!lc->outq)
			lc->outq_tail = &lc->outq;
	}
	return 0;
}

/* After the loop's I/O callbacks: what they queued goes out together. */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct logclient *lc = arg;

	(void)fd;
	(void)what;
	event_del(lc->flush_ev); /* the lazy records' timer, when an eager one came first */
	lc->flush_pending = lc->flush_now = false;
	if (lc->fd < 0)
		return;
	int err = flush_out(lc);
	if (err)
		drop_channel(lc, err);
	else
		arm(lc);
}

static void answered(struct logclient *lc, const struct ipc_msg *m)
{
	struct waiter w = lc->ring[lc->head];
	int err = m->type == IPC_LOG_APPENDED ? 0 : m->type == IPC_ERROR ? (int)m->f[0].i : -EBADMSG;

	if (err >= 0 && m->type != IPC_LOG_APPENDED)
		err = -EIO;
	lc->head = (lc->head + 1) & (LC_MAX_INFLIGHT - 1);
	lc->n--;
	lc->last_failed = err != 0;
	if (err)
		lc->failed_at_us = mono_us();
	if (err)
		lc->st.failed++;
	else
		lc->st.durable++;
	if (w.done)
		w.done(w.arg, err, err ? 0 : m->f[0].u);
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
	struct logclient *lc = arg;
	struct ipc_msg m;
	int err = 0;

	if (what & EV_WRITE)
		err = flush_out(lc);
	while (!err && (what & EV_READ) && lc->fd == fd) {
		err = ipc_recv_flags(fd, lc->rbuf, &m, MSG_DONTWAIT);
		if (err == -EAGAIN || err == -EWOULDBLOCK) {
			err = 0;
			break;
		}
		if (!err && (!lc->n || lc->ring[lc->head].id != m.id ||
		             (m.type != IPC_LOG_APPENDED && m.type != IPC_ERROR)))
			err = -EBADMSG; /* the logger answers in order, and only this */
		if (!err)
			answered(lc, &m);
	}
	if (err) {
		drop_channel(lc, err);
		return;
	}
	if (lc->fd == fd)
		arm(lc);
}

/* Flushes at the end of the loop's pass (now), or within LC_LAZY_US. */
static void schedule_flush(struct logclient *lc, bool now)
{
	static const struct timeval lazy = { 0, LC_LAZY_US };

	if (now && !lc->flush_now) {
		event_active(lc->flush_ev, EV_TIMEOUT, 1);
		lc->flush_pending = lc->flush_now = true;
	} else if (!lc->flush_pending) {
		lc->flush_pending = !event_add(lc->flush_ev, &lazy);
		if (!lc->flush_pending) /* no timer: at once, then */
			schedule_flush(lc, true);
	}
}

int lc_append(struct logclient *lc, const struct alog_rec *r, const char *event, bool lazy, lc_done done,
              void *arg)
{
	struct ipc_msg m;

	if (lc->fd < 0)
		return -ENOTCONN;
	if (lc->n == LC_MAX_INFLIGHT)
		return -ENOBUFS;
	int err = logmsg_encode(r, event, lazy, &lc->lists, &m);
	if (err)
		return err;
	m.id = ++lc->next_id;
	if ((err = ipc_frame(&lc->frames, &m)) == -EMSGSIZE && lc->framed && !(err = seal(lc)))
		err = ipc_frame(&lc->frames, &m); /* the next message's first */
	if (!err)
		lc->framed++;
	else if (err == -EMSGSIZE && !(err = seal(lc))) /* too large a frame: a message of its own */
		err = queue(lc, &m, 1);
	if (err)
		return err;
	lc->queued++;
	schedule_flush(lc, !lazy || lc->queued >= LC_LAZY_MAX);
	lc->st.sent++;
	if (lazy)
		return 0; /* not answered */
	lc->ring[(lc->head + lc->n) & (LC_MAX_INFLIGHT - 1)] = (struct waiter){ m.id, done, arg };
	lc->n++;
	return 0;
}

void lc_forget(struct logclient *lc, void *arg)
{
	for (size_t i = 0; i < lc->n; i++) {
		struct waiter *w = &lc->ring[(lc->head + i) & (LC_MAX_INFLIGHT - 1)];
		if (w->arg == arg)
			w->done = NULL;
	}
}

bool lc_healthy(const struct logclient *lc)
{
	/* a failure is believed for a second: then one record may try again
	 * (its result is held, so a failed try serves nothing) */
	return lc->fd >= 0 && (!lc->last_failed || mono_us() - lc->failed_at_us > 1000000);
}

struct lc_stats lc_stats(const struct logclient *lc)
{
	struct lc_stats s = lc->st;
	s.inflight = lc->n;
	s.queued = lc->queued;
	return s;
}
