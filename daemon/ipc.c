/* ipc.c - see ipc.h */
#define _GNU_SOURCE
#include "ipc.h"

#include "buf.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

static const struct {
	const char *name, *schema;
} types[IPC_TYPE_MAX] = {
	[IPC_ERROR] = { "error", "is" },
	[IPC_OK] = { "ok", "" },
	[IPC_PING] = { "ping", "q" },
	[IPC_PONG] = { "pong", "q" },
	[IPC_LOG_APPEND] = { "log-append", "sssssssssssissu" },
	[IPC_LOG_APPENDED] = { "log-appended", "q" },
	[IPC_LOG_STATUS_REQ] = { "log-status-request", "" },
	[IPC_LOG_STATUS] = { "log-status", "qhqqqqqq" },
	[IPC_KEYS_STATUS_REQ] = { "keys-status-request", "" },
	[IPC_KEYS_STATUS] = { "keys-status", "uqqqqqqqqqqqs" },
	[IPC_KEYS_ROTATE] = { "keys-rotate", "" },
	[IPC_KEYS_ROTATED] = { "keys-rotated", "q" },
	[IPC_RELOAD] = { "reload", "" },
	[IPC_RELOADED] = { "reloaded", "is" },
	[IPC_CONFIG] = { "config", "s" },
	[IPC_STOP] = { "stop", "" },
	[IPC_ROLES_REQ] = { "roles-request", "" },
	[IPC_ROLES] = { "roles", "s" },
	[IPC_PEER] = { "peer", "s" },
	[IPC_KEYS_SUBJECT] = { "keys-subject", "ss" },
	[IPC_KEYS_SUBJECT_KEY] = { "keys-subject-key", "hhhq" },
	[IPC_KEYS_BY_ID] = { "keys-by-id", "h" },
	[IPC_KEYS_FRESH] = { "keys-fresh", "" },
	[IPC_KEYS_BIDX] = { "keys-bidx", "ss" },
	[IPC_KEYS_BIDX_KEY] = { "keys-bidx-key", "h" },
	[IPC_DSR_CALL] = { "dsr-call", "sqss" },
	[IPC_DSR_RESULT] = { "dsr-result", "s" },
	[IPC_LOG_SIGN] = { "log-sign", "qh" },
	[IPC_LOG_SIGNED] = { "log-signed", "qss" },
	[IPC_KEYS_SHRED] = { "keys-shred", "sss" },
	[IPC_KEYS_SHREDDED] = { "keys-shredded", "q" },
	[IPC_KEYS_FLUSH] = { "keys-flush", "" },
	[IPC_KEYS_REF] = { "keys-ref", "ss" },
	[IPC_KEYS_REF_IS] = { "keys-ref-is", "h" },
	[IPC_LOG_BATCH] = { "log-batch", "b" },
};

#define HEADER_LEN 8

const char *ipc_type_name(unsigned type)
{
	return type < IPC_TYPE_MAX ? types[type].name : NULL;
}

const char *ipc_schema(unsigned type)
{
	return type < IPC_TYPE_MAX ? types[type].schema : NULL;
}

/* A bounds-checked reader over the message. */
struct rd {
	uint8_t *p;
	size_t len, at;
};

static bool get(struct rd *r, void *out, size_t n)
{
	if (r->len - r->at < n)
		return false;
	memcpy(out, r->p + r->at, n);
	r->at += n;
	return true;
}

static bool get_le(struct rd *r, size_t n, uint64_t *v)
{
	uint8_t b[8];

	if (!get(r, b, n))
		return false;
	*v = 0;
	for (size_t i = n; i-- > 0;)
		*v = *v << 8 | b[i];
	return true;
}

static bool get_field(struct rd *r, char kind, struct ipc_field *f)
{
	uint64_t n;

	f->kind = kind;
	switch (kind) {
	case 'u': return get_le(r, 4, &f->u);
	case 'q': return get_le(r, 8, &f->u);
	case 'i': return get_le(r, 8, (uint64_t *)&f->i);
	case 'h': return get(r, f->h, sizeof(f->h));
	case 's':
		if (!get_le(r, 4, &n) || n > IPC_MAX_STR || r->len - r->at < n)
			return false;
		f->s.p = (const char *)r->p + r->at;
		f->s.len = (size_t)n;
		r->at += (size_t)n;
		return !memchr(f->s.p, 0, f->s.len);
	case 'b':
		if (!get_le(r, 4, &n) || n > IPC_MAX_FRAMES || r->len - r->at < n)
			return false;
		f->b.p = r->p + r->at;
		f->b.len = (size_t)n;
		r->at += (size_t)n;
		return true;
	default: return false;
	}
}

int ipc_decode(uint8_t *buf, size_t len, struct ipc_msg *ret)
{
	struct rd r = { buf, len, 0 };
	uint64_t type, nfields, id;
	const char *schema;

	if (len > IPC_MAX_MSG || !get_le(&r, 2, &type) || !get_le(&r, 2, &nfields) || !get_le(&r, 4, &id))
		return -EBADMSG;
	if (!(schema = ipc_schema((unsigned)type)) || !types[type].name || nfields != strlen(schema))
		return -EBADMSG;
	ret->type = (enum ipc_type)type;
	ret->id = (uint32_t)id;
	ret->fd = -1;
	ret->nfields = (size_t)nfields;
	for (size_t i = 0; i < ret->nfields; i++)
		if (!get_field(&r, schema[i], &ret->f[i]))
			return -EBADMSG;
	if (r.at != len)
		return -EBADMSG;
	/* NUL-terminate strings in place: each is followed by the next
	 * field, already decoded into *ret (hashes are copied), or by the
	 * spare byte after the message. */
	for (size_t i = ret->nfields; i-- > 0;)
		if (ret->f[i].kind == 's')
			((char *)ret->f[i].s.p)[ret->f[i].s.len] = 0;
	return 0;
}

/* A writer that remembers overflow. */
struct wr {
	uint8_t *p;
	size_t at;
	bool full;
};

static void put(struct wr *w, const void *p, size_t n)
{
	if (w->full || IPC_MAX_MSG - w->at < n) {
		w->full = true;
		return;
	}
	memcpy(w->p + w->at, p, n);
	w->at += n;
}

static void put_le(struct wr *w, size_t n, uint64_t v)
{
	uint8_t b[8];

	for (size_t i = 0; i < n; i++, v >>= 8)
		b[i] = (uint8_t)v;
	put(w, b, n);
}

ssize_t ipc_encode(const struct ipc_msg *m, uint8_t *out)
{
	const char *schema = ipc_schema(m->type);
	struct wr w = { out, 0, false };

	if (!schema || !types[m->type].name || m->nfields != strlen(schema))
		return -EINVAL;
	put_le(&w, 2, m->type);
	put_le(&w, 2, m->nfields);
	put_le(&w, 4, m->id);
	for (size_t i = 0; i < m->nfields; i++) {
		const struct ipc_field *f = &m->f[i];
		if (f->kind != schema[i] && !(schema[i] == 'u' && f->kind == 'q'))
			return -EINVAL;
		switch (schema[i]) {
		case 'u':
			if (f->u > UINT32_MAX)
				return -EINVAL;
			put_le(&w, 4, f->u);
			break;
		case 'q': put_le(&w, 8, f->u); break;
		case 'i': put_le(&w, 8, (uint64_t)f->i); break;
		case 'h': put(&w, f->h, sizeof(f->h)); break;
		case 's':
			if (f->s.len > IPC_MAX_STR || memchr(f->s.p, 0, f->s.len))
				return -EINVAL;
			put_le(&w, 4, f->s.len);
			put(&w, f->s.p, f->s.len);
			break;
		case 'b':
			if (f->b.len > IPC_MAX_FRAMES)
				return -EINVAL;
			put_le(&w, 4, f->b.len);
			put(&w, f->b.p, f->b.len);
			break;
		}
	}
	return w.full ? -EMSGSIZE : (ssize_t)w.at;
}

int ipc_send(int fd, const struct ipc_msg *m)
{
	return ipc_send_flags(fd, m, 0);
}

int ipc_send_flags(int fd, const struct ipc_msg *m, int flags)
{
	uint8_t buf[IPC_MAX_MSG];
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cm;
	ssize_t n = ipc_encode(m, buf), w;

	if (n < 0)
		return (int)n;
	struct iovec iov = { buf, (size_t)n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (m->type == IPC_PEER) { /* only a peer message carries a descriptor */
		if (m->fd < 0)
			return -EINVAL;
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.b;
		mh.msg_controllen = sizeof(cm.b);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &m->fd, sizeof(int));
	}
	do
		w = sendmsg(fd, &mh, MSG_NOSIGNAL | flags);
	while (w < 0 && errno == EINTR);
	int err = w < 0 ? (errno == ECONNRESET ? -EPIPE : -errno) : w == n ? 0 : -EIO;
	explicit_bzero(buf, (size_t)n); /* no copy on the stack of what went (configuration, reports) */
	return err;
}

/* The descriptors that came with a message: the first is kept in *ret_fd,
 * any others are closed. */
static void take_fds(struct msghdr *mh, int *ret_fd)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*ret_fd < 0)
				*ret_fd = fd;
			else
				close(fd);
		}
	}
}

int ipc_recv(int fd, uint8_t *buf, struct ipc_msg *ret)
{
	return ipc_recv_flags(fd, buf, ret, 0);
}

int ipc_recv_flags(int fd, uint8_t *buf, struct ipc_msg *ret, int flags)
{
	union {
		char b[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = { buf, IPC_MAX_MSG + 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof(cm.b)
	};
	int passed = -1, err;
	ssize_t n;

	do
		n = recvmsg(fd, &mh, MSG_TRUNC | MSG_CMSG_CLOEXEC | flags);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ECONNRESET ? -EPIPE : -errno;
	take_fds(&mh, &passed);
	if (n == 0)
		err = -EPIPE;
	else if ((size_t)n > IPC_MAX_MSG || (mh.msg_flags & MSG_CTRUNC))
		err = -EBADMSG;
	else if (!(err = ipc_decode(buf, (size_t)n, ret)) && (ret->type == IPC_PEER) != (passed >= 0))
		err = -EBADMSG;
	if (err) {
		if (passed >= 0)
			close(passed);
		return err;
	}
	ret->fd = passed;
	return 0;
}

int ipc_send_many(int fd, const struct ipc_msg *ms, size_t n)
{
	struct buf b = BUF_INIT;
	size_t off[IPC_MAX_BATCH + 1];
	struct mmsghdr mh[IPC_MAX_BATCH];
	struct iovec iov[IPC_MAX_BATCH];
	if (n > IPC_MAX_BATCH)
		return -E2BIG;
	int err = 0;

	for (size_t i = 0; !err && i < n; i++) {
		off[i] = b.len;
		if (ms[i].type == IPC_PEER || !buf_reserve(&b, IPC_MAX_MSG)) {
			err = ms[i].type == IPC_PEER ? -EINVAL : -ENOMEM;
			break;
		}
		ssize_t len = ipc_encode(&ms[i], (uint8_t *)b.p + b.len);
		if (len < 0)
			err = (int)len;
		else
			b.len += (size_t)len;
	}
	off[n] = b.len;
	for (size_t i = 0; !err && i < n; i++) {
		iov[i] = (struct iovec){ b.p + off[i], off[i + 1] - off[i] };
		mh[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
	}
	for (size_t sent = 0; !err && sent < n;) { /* blocking: each call sends at least one */
		int w = sendmmsg(fd, mh + sent, (unsigned)(n - sent), MSG_NOSIGNAL);
		if (w < 0 && errno != EINTR)
			err = errno == ECONNRESET ? -EPIPE : -errno;
		else if (w > 0)
			sent += (size_t)w;
	}
	buf_free(&b);
	return err;
}

int ipc_frame(struct buf *frames, const struct ipc_msg *m)
{
	if (!buf_reserve(frames, 4 + IPC_MAX_MSG + 1))
		return -ENOMEM;
	uint8_t *at = (uint8_t *)frames->p + frames->len;
	ssize_t n = ipc_encode(m, at + 4);
	if (n < 0)
		return (int)n;
	if ((size_t)n + 5 > IPC_MAX_FRAMES - frames->len)
		return -EMSGSIZE;
	for (size_t i = 0; i < 4; i++)
		at[i] = (uint8_t)((size_t)n >> 8 * i);
	at[4 + n] = 0;
	frames->len += (size_t)n + 5;
	return 0;
}

int ipc_unframe(const struct ipc_field *b, size_t *at, struct ipc_msg *ret)
{
	struct rd r = { b->b.p, b->b.len, *at };
	uint64_t n;

	if (r.at == r.len)
		return 0;
	if (!get_le(&r, 4, &n) || r.len - r.at <= n) /* its bytes and the spare one */
		return -EBADMSG;
	*at = r.at + (size_t)n + 1;
	return ipc_decode(r.p + r.at, (size_t)n, ret) ? -EBADMSG : 1;
}

int ipc_send_error(int fd, uint32_t id, int err, const char *message)
{
	struct ipc_msg m = { .type = IPC_ERROR, .id = id, .nfields = 2, .fd = -1 };

	m.f[0] = ipc_i64(err);
	m.f[1] = ipc_str(message);
	return ipc_send(fd, &m);
}
