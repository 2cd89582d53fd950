/* proxy_conn.c - a client connection's life once it is started
 * (proxy_startup.c): both directions framed and handed to proxy_query.c,
 * which sees every message; output held until its record is durable;
 * what waits for keys taken again; closing.
 *
 * Flow control: a side whose unsent output exceeds PX_BUFFER_MAX stops
 * the other side from being read until it drains. */
#define _GNU_SOURCE
#include "proxy_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* --- reading ------------------------------------------------------------------ */

/* A session's plain sockets are read here rather than by their
 * bufferevents: libevent asks the kernel how much waits (FIONREAD) before
 * every read, a system call per message more than the read, and then
 * reads at most 4 KiB. What arrives goes into the bufferevent's input
 * and to its callbacks, as if it had read it. TLS sides, and every side
 * until authentication ends (its timeout is the bufferevent's), are read
 * by their bufferevents. */
static struct event **reader_of(struct pconn *c, const struct bufferevent *bev)
{
	return bev == c->cli ? &c->cli_rd : &c->srv_rd;
}

static void set_reading(struct pconn *c, struct bufferevent *bev, bool on)
{
	struct event *rd = *reader_of(c, bev);

	if (rd)
		(void)(on ? event_add(rd, NULL) : event_del(rd));
	else if (on)
		bufferevent_enable(bev, EV_READ);
	else
		bufferevent_disable(bev, EV_READ);
}

/* One read into in: the bytes read, 0 at the end, <0 an error (errno).
 * Socket calls, not readv/writev: those go through the file layer (its
 * position lock, a vector import), a cost per message that pgbouncer's
 * recv and send do not pay. Read into the process's own chunk and copied
 * on: space reserved in the evbuffer is a fresh 16 KB allocation per
 * message, which consolidates malloc's free lists each time, where a
 * message's own size comes from its thread cache. */
static ssize_t read_into(evutil_socket_t fd, struct evbuffer *in)
{
	static char chunk[PX_READ_CHUNK];
	ssize_t n = recv(fd, chunk, sizeof(chunk), 0);

	if (n > 0) {
		evbuffer_unfreeze(in, 0); /* a bufferevent keeps its input's end to itself */
		int r = evbuffer_add(in, chunk, (size_t)n);
		evbuffer_freeze(in, 0);
		if (r) {
			errno = ENOMEM;
			return -1;
		}
	}
	return n;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct pconn *c = arg;
	struct bufferevent *bev = c->cli && fd == bufferevent_getfd(c->cli) ? c->cli : c->srv;
	bufferevent_data_cb on_read;
	bufferevent_event_cb on_event;
	void *cbarg;

	(void)what;
	if (!bev)
		return;
	bufferevent_getcb(bev, &on_read, NULL, &on_event, &cbarg);
	ssize_t n = read_into(fd, bufferevent_get_input(bev));
	if (n > 0)
		return on_read(bev, cbarg);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	event_del(*reader_of(c, bev)); /* the end, or an error: as the bufferevent would say it */
	on_event(bev, BEV_EVENT_READING | (n ? BEV_EVENT_ERROR : BEV_EVENT_EOF), cbarg);
}

/* Authentication has ended: a plain side is read by on_readable from now
 * on, and reads if it read. Where that cannot be, the bufferevent goes on. */
static void read_directly(struct pconn *c, struct bufferevent *bev, bool tls)
{
	struct event **rd = reader_of(c, bev);

	if (tls || *rd ||
	    !(*rd = event_new(c->px->base, bufferevent_getfd(bev), EV_READ | EV_PERSIST, on_readable, c)))
		return;
	bool reading = bufferevent_get_enabled(bev) & EV_READ;
	bufferevent_disable(bev, EV_READ);
	if (reading)
		event_add(*rd, NULL);
	if (reading && evbuffer_get_length(bufferevent_get_input(bev)))
		bufferevent_trigger(bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS | BEV_TRIG_IGNORE_WATERMARKS);
}

/* --- output, holds and closing ---------------------------------------------- */

struct evbuffer *pc_client_out(struct pconn *c)
{
	if (!c->hq)
		return bufferevent_get_output(c->cli);
	struct hold *t = (struct hold *)((char *)c->hq_tail - offsetof(struct hold, next));
	if (t->state == H_OPEN || t->state == H_FREE)
		return t->b;
	struct hold *h = calloc(1, sizeof(*h)); /* behind a record in flight: wait for it */
	if (!h || !(h->b = evbuffer_new())) {
		free(h);
		return NULL;
	}
	h->state = H_FREE;
	*c->hq_tail = h;
	c->hq_tail = &h->next;
	return h->b;
}

int pc_write(struct pconn *c, const void *data, size_t n)
{
	if (c->phase == PC_CLOSING)
		return -EPIPE; /* failed closed: nothing more reaches the client */
	struct evbuffer *out = pc_client_out(c);

	if (!out || evbuffer_add(out, data, n))
		return -ENOMEM;
	if (out != bufferevent_get_output(c->cli))
		c->held += n;
	return 0;
}

int pc_pass(struct pconn *c, const struct pgp_msg *m, struct evbuffer *in)
{
	if (c->phase == PC_CLOSING)
		return -EPIPE; /* failed closed: nothing more reaches the client */
	struct evbuffer *out = pc_client_out(c);

	if (!out || evbuffer_remove_buffer(in, out, m->size) != (int)m->size)
		return -ENOMEM;
	if (out != bufferevent_get_output(c->cli))
		c->held += m->size;
	return 0;
}

/* One send of out's first chunks: the bytes the socket took, <0 an error.
 * A short reply in pieces (a result, then its ReadyForQuery) is copied
 * into one: cheaper than the kernel's import of a vector. */
static ssize_t send_some(struct evbuffer *out, evutil_socket_t fd)
{
	struct evbuffer_iovec v[PX_SEND_CHUNKS];
	struct iovec io[ARRAY_SIZE(v)];
	char small[PX_SEND_SMALL];
	int nv = evbuffer_peek(out, -1, NULL, v, ARRAY_SIZE(v));
	ev_ssize_t k;

	if (nv > 1 && evbuffer_get_length(out) <= sizeof(small) &&
	    (k = evbuffer_copyout(out, small, sizeof(small))) > 0) {
		v[0] = (struct evbuffer_iovec){ small, (size_t)k };
		nv = 1;
	}
	if (nv > (int)ARRAY_SIZE(v))
		nv = ARRAY_SIZE(v);
	for (int i = 0; i < nv; i++)
		io[i] = (struct iovec){ v[i].iov_base, v[i].iov_len };
	ssize_t n =
	    nv == 1 ? send(fd, io[0].iov_base, io[0].iov_len, MSG_NOSIGNAL)
	            : sendmsg(fd, &(struct msghdr){ .msg_iov = io, .msg_iovlen = (size_t)nv }, MSG_NOSIGNAL);
	if (n > 0)
		evbuffer_drain(out, (size_t)n);
	return n;
}

/* Writes what waits for a plain socket at once, instead of a round
 * through the event loop (two epoll_ctl calls and a wakeup per message);
 * only what the socket does not take waits for EV_WRITE. TLS output goes
 * through its bufferevent. */
void pc_send_now(struct bufferevent *bev, bool tls)
{
	struct evbuffer *out = bev ? bufferevent_get_output(bev) : NULL;

	if (!out)
		return;
	if (!tls && evbuffer_get_length(out)) {
		evbuffer_unfreeze(out, 1); /* a bufferevent keeps its output's start to itself */
		while (evbuffer_get_length(out) && send_some(out, bufferevent_getfd(bev)) > 0)
			;
		evbuffer_freeze(out, 1);
	}
	if (evbuffer_get_length(out))
		bufferevent_enable(bev, EV_WRITE); /* the rest, or an error, when the socket says */
	else if (!tls)
		bufferevent_disable(bev, EV_WRITE);
}

/* --- the server's side: writes wait for their attempt records ----------------- */

struct evbuffer *pc_server_out(struct pconn *c)
{
	return c->gates ? c->gated : bufferevent_get_output(c->srv);
}

int pc_to_server(struct pconn *c, const void *data, size_t n)
{
	return evbuffer_add(pc_server_out(c), data, n) ? -ENOMEM : 0;
}

static size_t server_bound(struct pconn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->srv)) +
	       (c->gated ? evbuffer_get_length(c->gated) : 0);
}

int pc_gate_server(struct pconn *c, uint64_t *ret_mark)
{
	if (!c->gated && !(c->gated = evbuffer_new()))
		return -ENOMEM;
	*ret_mark = c->gated_out + evbuffer_get_length(c->gated);
	c->gates++;
	return 0;
}

/* The session's DDL committed, and the catalog read begun after it has
 * not ended: its next statements wait (px_catalog_read). */
static bool catalog_pending(const struct pconn *c)
{
	return c->catalog_after > c->px->loads_done;
}

bool pc_cancel_follows(struct pconn *c)
{
	return c->gates || c->cli_keys_wait ||
	       (catalog_pending(c) && !pq_head(c) && c->cli &&
	        evbuffer_get_length(bufferevent_get_input(c->cli)));
}

/* Reads the client again once what goes to the server has room; from the
 * event loop, not from the caller (a record's answer, say). */
static void resume_client(struct pconn *c)
{
	if (c->cli_paused && !c->cli_keys_wait && !catalog_pending(c) && !c->cancels && c->srv &&
	    server_bound(c) < PX_BUFFER_MAX) {
		c->cli_paused = false;
		set_reading(c, c->cli, true);
		bufferevent_trigger(c->cli, EV_READ, BEV_TRIG_DEFER_CALLBACKS | BEV_TRIG_IGNORE_WATERMARKS);
	}
}

void pc_cancel_ended(struct pconn *c)
{
	if (--c->cancels || c->phase == PC_CLOSING)
		return;
	if (c->cancel_due && !pc_cancel_follows(c))
		pc_send_cancel(c); /* one that came meanwhile */
	if (!c->cancels)           /* (or it could not be sent) */
		resume_client(c);
}

void pc_open_server(struct pconn *c, uint64_t upto)
{
	if (!c->gates || c->phase == PC_CLOSING)
		return;
	size_t n = --c->gates ? (size_t)(upto - c->gated_out) : evbuffer_get_length(c->gated);
	if (evbuffer_remove_buffer(c->gated, bufferevent_get_output(c->srv), n) != (int)n)
		return pc_fatal(c, PX_ERR_LOG, "out of memory");
	c->gated_out += n;
	pc_send_now(c->srv, c->srv_tls);
	if (c->cancel_due)
		pc_send_cancel(c);
	resume_client(c);
}

static void resume_server(struct pconn *c)
{
	if (c->srv && c->srv_paused && !c->srv_keys_wait && c->held < PX_HOLD_MAX &&
	    evbuffer_get_length(bufferevent_get_output(c->cli)) < PX_BUFFER_MAX) {
		c->srv_paused = false;
		set_reading(c, c->srv, true);
		/* what was read before the pause: the socket may have no more to say */
		if (evbuffer_get_length(bufferevent_get_input(c->srv)))
			bufferevent_trigger(c->srv, EV_READ,
			                    BEV_TRIG_DEFER_CALLBACKS | BEV_TRIG_IGNORE_WATERMARKS);
	}
}

void pc_release(struct pconn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->cli);

	while (c->hq && (c->hq->state == H_DONE || c->hq->state == H_FREE)) {
		struct hold *h = c->hq;
		if (h->state == H_FREE && !h->next)
			break; /* the tail keeps collecting until something is gated behind it */
		c->held -= evbuffer_get_length(h->b);
		evbuffer_add_buffer(out, h->b);
		evbuffer_free(h->b);
		c->hq = h->next;
		free(h);
	}
	if (c->hq && c->hq->state == H_FREE && !c->hq->next) { /* nothing ahead of it: send */
		c->held -= evbuffer_get_length(c->hq->b);
		evbuffer_add_buffer(out, c->hq->b);
		evbuffer_free(c->hq->b);
		free(c->hq);
		c->hq = NULL;
	}
	if (!c->hq)
		c->hq_tail = &c->hq;
	pc_send_now(c->cli, c->cli_tls);
	resume_server(c);
}

static void drop_holds(struct pconn *c)
{
	while (c->hq) {
		struct hold *h = c->hq;
		c->hq = h->next;
		evbuffer_free(h->b);
		free(h);
	}
	c->hq_tail = &c->hq;
	c->held = 0;
	for (struct ticket *t = c->tk; t; t = t->next)
		t->hold = NULL;
	c->res.hold = NULL;
}

static void conn_free(struct pconn *c)
{
	struct proxy *px = c->px;

	lc_forget(px->lc, c);
	pc_cancels_forget(c);
	drop_holds(c); /* first: nothing held is released on the way out */
	pq_free(c);
	while (c->tk) {
		struct ticket *t = c->tk;
		c->tk = t->next;
		free(t);
	}
	if (c->cli_rd)
		event_free(c->cli_rd);
	if (c->srv_rd)
		event_free(c->srv_rd);
	if (c->cli)
		bufferevent_free(c->cli);
	if (c->srv)
		bufferevent_free(c->srv);
	if (c->gated)
		evbuffer_free(c->gated);
	buf_free(&c->startup);
	pge_free(&c->enc);
	if (c->prev)
		c->prev->next = c->next;
	else
		px->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	px->st.active--;
	free(c);
}

static void free_later(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_free(arg);
}

/* Connections are freed from the loop, never inside their own callbacks. */
void pc_kill(struct pconn *c)
{
	static const struct timeval now = { 0, 0 };

	if (c->dying)
		return;
	c->dying = true;
	c->phase = PC_CLOSING;
	set_reading(c, c->cli, false);
	bufferevent_disable(c->cli, EV_WRITE);
	if (c->srv) {
		set_reading(c, c->srv, false);
		bufferevent_disable(c->srv, EV_WRITE);
	}
	if (event_base_once(c->px->base, -1, EV_TIMEOUT, free_later, c, &now))
		role_log(3, "proxy", "cannot schedule closing session %s", c->session);
}

static void on_client_flushed(struct bufferevent *bev, void *arg)
{
	struct pconn *c = arg;

	if (c->phase == PC_CLOSING && evbuffer_get_length(bufferevent_get_output(c->cli)) == 0)
		return pc_kill(c);
	pc_send_now(bev, c->cli_tls);
	resume_server(c);
}

/* Closes once what is queued for the client is sent. */
static void close_soon(struct pconn *c)
{
	c->phase = PC_CLOSING;
	if (c->srv) {
		set_reading(c, c->srv, false); /* freed with the session: never inside its own callback */
		bufferevent_free(c->srv);
		c->srv = NULL;
	}
	set_reading(c, c->cli, false);
	bufferevent_setwatermark(c->cli, EV_WRITE, 0, 0);
	if (evbuffer_get_length(bufferevent_get_output(c->cli)) == 0)
		pc_kill(c);
	else
		bufferevent_enable(c->cli, EV_WRITE);
}

static void error_msg(struct evbuffer *out, const char *severity, const char *sqlstate, const char *msg)
{
	struct buf b = BUF_INIT;

	pgp_error(&b, severity, sqlstate, msg);
	if (!b.failed && out)
		evbuffer_add(out, b.p, b.len);
	buf_free(&b);
}

/* A FATAL error to the client, ahead of anything held back (which is
 * dropped: it waited for a record that will not be), then close. */
void pc_fatal(struct pconn *c, const char *sqlstate, const char *msg)
{
	if (c->phase == PC_CLOSING)
		return;
	drop_holds(c);
	error_msg(bufferevent_get_output(c->cli), "FATAL", sqlstate, msg);
	close_soon(c);
}

void pc_error(struct pconn *c, const char *sqlstate, const char *msg)
{
	struct buf b = BUF_INIT;

	pgp_error(&b, "ERROR", sqlstate, msg);
	if (b.failed || pc_write(c, b.p, b.len))
		pc_fatal(c, PX_ERR_PROTOCOL, "out of memory");
	buf_free(&b);
}

/* --- the query phase: framing both directions --------------------------- */

static void on_client_read(struct bufferevent *bev, void *arg);

/* Frames the next message in `in`: 1 and m (body pulled up when want
 * says so, else only the header), 0 when incomplete, <0 malformed. */
static int next_msg(struct evbuffer *in, uint32_t max, bool (*want)(char), struct pgp_msg *m)
{
	uint8_t hdr[5];
	size_t size;

	if (evbuffer_copyout(in, hdr, 5) < 5)
		return 0;
	int r = pgp_header(hdr, max, &size);
	if (r < 0)
		return r;
	if (evbuffer_get_length(in) < size)
		return 0;
	*m = (struct pgp_msg){ (char)hdr[0], NULL, size - 5, size };
	if (want((char)hdr[0])) {
		const uint8_t *p = evbuffer_pullup(in, (ssize_t)size);
		if (!p)
			return -ENOMEM;
		m->body = p + 5;
	}
	return 1;
}

static bool want_all(char type)
{
	(void)type;
	return true;
}

static bool want_backend(char type)
{
	return type != 'D' && type != 'd'; /* rows: proxy_query.c pulls them up when it needs them */
}

static void on_server_read(struct bufferevent *bev, void *arg)
{
	struct pconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct pgp_msg m;
	int r = 0;

	while (c->phase != PC_CLOSING && !c->srv_paused &&
	       (r = next_msg(in, (uint32_t)c->px->env->cfg->proxy_max_message, want_backend, &m)) > 0) {
		r = c->phase == PC_AUTH ? pc_auth_backend(c, &m) : pq_backend(c, &m, in);
		if (r < 0)
			break;
		if (r == 3) { /* the message stays until its keys come (px_keys_ready) */
			c->srv_paused = c->srv_keys_wait = true;
			set_reading(c, c->srv, false);
			break;
		}
		if (r == 0 && pc_pass(c, &m, in))
			return pc_fatal(c, PX_ERR_PROTOCOL, "out of memory");
		if (r == 1)
			evbuffer_drain(in, m.size);
		if (c->held >= PX_HOLD_MAX ||
		    evbuffer_get_length(bufferevent_get_output(c->cli)) >= PX_BUFFER_MAX) {
			c->srv_paused = true;
			set_reading(c, c->srv, false);
		}
	}
	if (c->phase != PC_CLOSING && r < 0) {
		c->px->st.protocol_errors++;
		role_log(4, "proxy", "session %s: malformed, unexpected or oversized message from PostgreSQL",
		         c->session);
		return pc_fatal(c, PX_ERR_PROTOCOL,
		                "malformed or oversized message from the database server");
	}
	if (c->phase == PC_CLOSING)
		return;
	pc_send_now(c->cli, c->cli_tls);
	if (evbuffer_get_length(bufferevent_get_output(c->srv))) /* a statement of the proxy's own */
		pc_send_now(c->srv, c->srv_tls);
}

/* What the client sent goes to the server; a cancel that came while it
 * waited for keys follows it (as pc_open_server does for attempts). */
static void to_server_now(struct pconn *c)
{
	pc_send_now(c->srv, c->srv_tls);
	if (c->cancel_due && !pc_cancel_follows(c))
		pc_send_cancel(c);
}

/* The client's next message waits for keys: it stays (px_keys_ready). */
static void wait_for_keys(struct pconn *c)
{
	c->cli_paused = c->cli_keys_wait = true;
	set_reading(c, c->cli, false);
	pc_send_now(c->srv, c->srv_tls);
}

static void on_client_read(struct bufferevent *bev, void *arg)
{
	struct pconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct pgp_msg m;
	int r = 0;

	if (c->phase == PC_CLOSING)
		return; /* (its server side may be gone already) */
	if (pxi_waiting(c) && pxi_resume(c))
		return pc_fatal(c, PX_ERR_PROTOCOL, "out of memory");
	if (pxi_waiting(c))
		return wait_for_keys(c);

	while (c->phase == PC_AUTH || c->phase == PC_READY) {
		if (catalog_pending(c) || c->cancels) {
			c->cli_paused = true;
			set_reading(c, c->cli, false);
			to_server_now(c);
			return;
		}
		if ((r = next_msg(in, (uint32_t)c->px->env->cfg->proxy_max_message, want_all, &m)) <= 0) {
			to_server_now(c);
			break;
		}
		if (c->phase == PC_AUTH) { /* password, SASL: passed through */
			r = m.type == 'p' ? 0 : -EPROTO;
		} else {
			r = pq_frontend(c, &m);
			c->query_waits = r == 3 && m.type == 'Q';
		}
		if (r < 0 && c->phase != PC_CLOSING) {
			c->px->st.protocol_errors++;
			role_log(4, "proxy", "session %s: protocol violation by the client", c->session);
			return pc_fatal(c, PX_ERR_PROTOCOL, "protocol violation");
		}
		if (c->phase == PC_CLOSING)
			return;
		if (r == 0 && evbuffer_remove_buffer(in, pc_server_out(c), m.size) != (int)m.size)
			return pc_fatal(c, PX_ERR_PROTOCOL, "out of memory");
		if (r == 1)
			evbuffer_drain(in, m.size);
		if (r == 3 || pxi_waiting(c)) /* the message, or COPY rows, wait for keys */
			return wait_for_keys(c);
		if (m.type == 'X') {
			set_reading(c, c->cli, false);
			pc_send_now(c->srv, c->srv_tls);
			return;
		}
		if (server_bound(c) >= PX_BUFFER_MAX) {
			c->cli_paused = true;
			set_reading(c, c->cli, false);
			to_server_now(c);
			return;
		}
	}
	if (r < 0 && c->phase != PC_CLOSING) {
		c->px->st.protocol_errors++;
		role_log(4, "proxy", "session %s: malformed or oversized message from the client",
		         c->session);
		pc_fatal(c, PX_ERR_PROTOCOL, r == -EMSGSIZE ? "message too large" : "malformed message");
	}
}

static void on_server_flushed(struct bufferevent *bev, void *arg)
{
	struct pconn *c = arg;

	pc_send_now(bev, c->srv_tls);
	resume_client(c);
}

static void on_client_event(struct bufferevent *bev, short what, void *arg)
{
	struct pconn *c = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		pc_kill(c); /* PostgreSQL ends the session when its socket closes */
}

static void on_server_event(struct bufferevent *bev, short what, void *arg)
{
	struct pconn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT) {
		role_log(4, "proxy", "session %s: PostgreSQL did not complete the session's start in time",
		         c->session);
		return pc_fatal(c, PX_ERR_UPSTREAM, "the database server did not answer in time");
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		on_server_read(c->srv, c); /* its last words (a FATAL) first */
		if (c->phase == PC_CLOSING)
			return;
		if (what & BEV_EVENT_ERROR)
			role_log(4, "proxy", "session %s: PostgreSQL connection lost", c->session);
		if (c->phase == PC_UPSTREAM)
			return pc_fatal(c, PX_ERR_UPSTREAM, "the database server is unreachable");
		/* what is held waits for records: close once it is sent */
		if (c->hq) {
			pc_fatal(c, PX_ERR_UPSTREAM, "the database server closed the connection");
			return;
		}
		close_soon(c);
	}
}

/* Authentication begins: the startup packet goes to the server, and both
 * sides are framed from now on. */
void pc_begin_session(struct pconn *c)
{
	c->phase = PC_AUTH;
	bufferevent_setcb(c->srv, on_server_read, on_server_flushed, on_server_event, c);
	bufferevent_setwatermark(c->srv, EV_WRITE, PX_BUFFER_MAX / 2, 0);
	bufferevent_enable(c->srv, EV_READ | EV_WRITE);
	bufferevent_write(c->srv, c->startup.p, c->startup.len);
	buf_free(&c->startup);
	bufferevent_setcb(c->cli, on_client_read, on_client_flushed, on_client_event, c);
	bufferevent_enable(c->cli, EV_READ);
	on_client_read(c->cli, c);
}

void pc_watch_client(struct pconn *c, bufferevent_data_cb on_read)
{
	bufferevent_setcb(c->cli, on_read, on_client_flushed, on_client_event, c);
	bufferevent_setwatermark(c->cli, EV_WRITE, PX_BUFFER_MAX / 2, 0);
	bufferevent_enable(c->cli, EV_READ | EV_WRITE);
}

void pc_read_directly(struct pconn *c)
{
	read_directly(c, c->cli, c->cli_tls);
	read_directly(c, c->srv, c->srv_tls);
}

/* A statement that fails as a cancelled one does (57014), failing the
 * transaction it is in as PostgreSQL would: it goes in place of a Query
 * that has not reached PostgreSQL when the client cancels it. A cancel
 * sent after the Query could find the backend still reading it, and
 * PostgreSQL forgets a cancel then. */
static int cancelled_query(struct buf *q)
{
	static const char cancelled[] = "DO $custos$BEGIN RAISE query_canceled USING MESSAGE = "
	                                "'canceling statement due to user request'; END$custos$";

	pgp_message(q, 'Q', cancelled, sizeof(cancelled));
	return q->failed ? -ENOMEM : 0;
}

/* The length of the one Query message b holds, alone; 0 if it holds
 * anything else. */
static size_t query_alone(struct evbuffer *b)
{
	uint8_t hdr[5];

	if (evbuffer_copyout(b, hdr, 5) != 5 || hdr[0] != 'Q' ||
	    evbuffer_get_length(b) != 1 + (size_t)pgp_get32(hdr + 1))
		return 0;
	return evbuffer_get_length(b);
}

/* Only one Query's statements wait for PostgreSQL's answer (nothing
 * before it is still running there), and none of them is of the kind
 * that ends a transaction or sets something (a COMMIT first would have
 * committed before a cancel could stop anything). */
static bool one_query_owed(const struct pconn *c)
{
	for (size_t i = c->qhead; i < c->qn; i++)
		if (c->q[i].kind != (i + 1 < c->qn ? X_QSTMT : X_QEND) ||
		    (c->q[i].kind == X_QSTMT && (!c->q[i].st || c->q[i].st->kind == SQI_OTHER)))
			return false;
	return c->qhead < c->qn;
}

/* Each statement of sql reads or writes: none ends a transaction or sets
 * something, so failing them all in place is what a cancel could have
 * done. False when sql cannot be analysed. */
static bool reads_and_writes(struct pconn *c, const char *sql)
{
	const struct sqi_info *info;
	const struct sqi_literal *lits;
	size_t nlits;
	char err[64];

	if (sqi_cache_get(c->px->sqi, sql, &info, &lits, &nlits, err, sizeof(err)) || !info->n)
		return false;
	for (size_t i = 0; i < info->n; i++)
		if (info->stmts[i].kind == SQI_OTHER)
			return false;
	return true;
}

/* A Query waiting for keys (or for the catalog after the session's DDL),
 * with nothing before it at PostgreSQL, goes through as the cancelled
 * statement, if it only reads and writes (see one_query_owed). With
 * statements before it still running, or a COMMIT in it, the cancel
 * follows it: false. */
static bool cancel_before_keys(struct pconn *c)
{
	struct evbuffer *in = c->cli ? bufferevent_get_input(c->cli) : NULL;
	struct pgp_msg m;
	const char *sql;
	struct buf q = BUF_INIT;

	if (!(c->query_waits || catalog_pending(c)) || c->phase != PC_READY || c->gates || pq_head(c) ||
	    next_msg(in, (uint32_t)c->px->env->cfg->proxy_max_message, want_all, &m) != 1 || m.type != 'Q' ||
	    pgp_parse_query(&m, &sql) || !reads_and_writes(c, sql))
		return false;
	bool done =
	    !cancelled_query(&q) && evbuffer_drain(in, m.size) == 0 && evbuffer_prepend(in, q.p, q.len) == 0;
	buf_free(&q);
	if (!done) {
		pc_fatal(c, PX_ERR_PROTOCOL, "out of memory");
		return true;
	}
	c->query_waits = c->cli_keys_wait = false; /* the keys asked for find nothing waiting */
	resume_client(c);
	return true;
}

/* A Query held back until its attempt records are durable, alone at the
 * gate (the client sent nothing after it) and with nothing before it at
 * PostgreSQL, is replaced with the cancelled statement: its statements
 * fail as the first of them would have. Each gate's mark is where the
 * Query starts, so the marks hold. */
static bool cancel_gated(struct pconn *c)
{
	struct buf q = BUF_INIT;
	size_t n;

	if (!c->gates || c->phase != PC_READY || evbuffer_get_length(bufferevent_get_output(c->srv)) ||
	    !(n = query_alone(c->gated)) || !one_query_owed(c))
		return false;
	for (const struct ticket *t = c->tk; t; t = t->next)
		if (t->attempt && t->mark != c->gated_out)
			return false;
	bool done = !cancelled_query(&q) && evbuffer_drain(c->gated, n) == 0 &&
	            evbuffer_add(c->gated, q.p, q.len) == 0;
	buf_free(&q);
	if (!done)
		pc_fatal(c, PX_ERR_PROTOCOL, "out of memory");
	return true;
}

bool pc_cancel_waiting(struct pconn *c)
{
	return cancel_before_keys(c) || cancel_gated(c);
}

void pc_keys_ready(struct pconn *c)
{
	bool srv = c->srv_keys_wait, cli = c->cli_keys_wait;

	c->srv_keys_wait = c->cli_keys_wait = false;
	if (c->phase == PC_CLOSING)
		return; /* (its server side may be gone already) */
	if (srv)
		resume_server(c);
	if (cli)
		resume_client(c);
}

void px_keys_ready(void *arg)
{
	struct proxy *px = arg;

	for (struct pconn *c = px->conns; c; c = c->next)
		pc_keys_ready(c);
}

void px_catalog_read(struct proxy *px)
{
	for (struct pconn *c = px->conns; c; c = c->next)
		if (c->catalog_after && !catalog_pending(c) && c->phase != PC_CLOSING) {
			c->catalog_after = 0;
			resume_client(c);
		}
}

void px_close_all(struct proxy *px, bool now)
{
	if (now) { /* the loop has ended: no deferred free will run */
		while (px->conns)
			conn_free(px->conns);
		return;
	}
	for (struct pconn *c = px->conns; c; c = c->next)
		pc_kill(c);
}
