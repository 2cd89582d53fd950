/* proxy_startup.c - a client connection's start: accepting it, the
 * startup packet (TLS, cancel requests), the connection to PostgreSQL
 * (TLS again when the database's sslmode asks), authentication passed
 * through untouched but for BackendKeyData (the proxy hands out its own
 * keys, so that a cancel reaches the right backend through it) and
 * SCRAM-SHA-256-PLUS (channel binding cannot span two TLS sessions).
 * From authentication on, proxy_conn.c frames both directions. */
#define _GNU_SOURCE
#include "proxy_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* --- authentication ------------------------------------------------------- */

/* BackendKeyData: the client gets the proxy's key for this connection. */
static int swap_keydata(struct pconn *c, const struct pgp_msg *m)
{
	uint8_t msg[13] = { 'K', 0, 0, 0, 12 };

	if (pgp_parse_keydata(m, &c->real_pid, &c->real_key))
		return -EBADMSG;
	pgp_put32(msg + 5, c->pid);
	pgp_put32(msg + 9, c->key);
	evbuffer_add(bufferevent_get_output(c->cli), msg, sizeof(msg));
	return 1;
}

/* AuthenticationSASL over TLS to PostgreSQL offers SCRAM-SHA-256-PLUS:
 * the client's TLS session is not PostgreSQL's, so it is left out. */
static int strip_plus(struct pconn *c, const struct pgp_msg *m)
{
	struct buf b = BUF_INIT;
	const char *p = (const char *)m->body + 4, *end = (const char *)m->body + m->len;

	buf_add(&b, m->body, 4);
	while (p < end && *p) {
		size_t n = strnlen(p, (size_t)(end - p));
		if (p + n == end)
			break;
		if (strcmp(p, "SCRAM-SHA-256-PLUS"))
			buf_add(&b, p, n + 1);
		p += n + 1;
	}
	buf_addc(&b, 0);
	int r = p < end && !*p && !b.failed ? 1 : -EBADMSG;
	if (r == 1) {
		struct buf out = BUF_INIT;
		pgp_message(&out, 'R', b.p, b.len);
		if (!out.failed)
			evbuffer_add(bufferevent_get_output(c->cli), out.p, out.len);
		buf_free(&out);
	}
	buf_free(&b);
	return r;
}

/* The connect timeout bounds connecting, TLS and authentication; a session
 * may then idle as long as it likes (libevent disables a bufferevent whose
 * timeout fires). */
static void clear_timeouts(struct pconn *c)
{
	struct bufferevent *under = bufferevent_get_underlying(c->srv);

	bufferevent_set_timeouts(c->srv, NULL, NULL);
	if (under)
		bufferevent_set_timeouts(under, NULL, NULL);
}

static const char *tx_ready(struct pconn *c, const struct pgp_msg *m)
{
	if (m->len != 1)
		return NULL;
	if (c->phase == PC_AUTH) {
		clear_timeouts(c);
		pc_read_directly(c);
	}
	c->txstatus = (char)m->body[0];
	c->phase = PC_READY;
	return "";
}

/* The server's messages during authentication. 0 forward, 1 consumed. */
int pc_auth_backend(struct pconn *c, const struct pgp_msg *m)
{
	switch (m->type) {
	case 'K': return swap_keydata(c, m);
	case 'R':
		if (m->len >= 4 && pgp_get32(m->body) == 10 && c->srv_tls)
			return strip_plus(c, m);
		return pgp_check_backend(m) ? -EBADMSG : 0;
	case 'Z': return tx_ready(c, m) ? 0 : -EBADMSG;
	case 'S': return pq_parameter(c, m);
	case 'N':
	case 'E':
	case 'v': return pgp_check_backend(m) ? -EBADMSG : 0;
	default: return -EBADMSG;
	}
}

/* --- connecting to PostgreSQL --------------------------------------------- */

/* As PostgreSQL sets its own sockets: no Nagle delay (a result released
 * after its record would otherwise wait for the client's delayed ACK of
 * what went before it: 40 ms a statement), and keepalives. */
static void tune_socket(evutil_socket_t fd)
{
	int on = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == 0) /* fails on Unix sockets */
		(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
}

static void on_ssl_answer(struct bufferevent *bev, void *arg)
{
	struct pconn *c = arg;
	struct proxy *px = c->px;
	char a;

	if (bufferevent_read(bev, &a, 1) != 1)
		return;
	if (a != 'S' || evbuffer_get_length(bufferevent_get_input(bev))) {
		if (a == 'N' && px->up_sslmode == PX_SSL_PREFER)
			return pc_begin_session(c);
		return pc_fatal(c, PX_ERR_UPSTREAM, "the database server refused TLS");
	}
	SSL *ssl = SSL_new(px->up_tls);
	if (!ssl)
		return pc_fatal(c, PX_ERR_UPSTREAM, "out of memory");
	if (px->up_sslmode == PX_SSL_VERIFY_FULL) {
		SSL_set1_host(ssl, px->up_host);
		SSL_set_tlsext_host_name(ssl, px->up_host);
	}
	struct bufferevent *f = bufferevent_openssl_filter_new(px->base, bev, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                                       BEV_OPT_CLOSE_ON_FREE);
	if (!f)
		return pc_fatal(c, PX_ERR_UPSTREAM, "out of memory");
	c->srv = f;
	c->srv_tls = true;
	pc_begin_session(c);
}

static void on_upstream_event(struct bufferevent *bev, short what, void *arg)
{
	struct pconn *c = arg;
	static const uint8_t sslreq[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };

	if (what & BEV_EVENT_CONNECTED) {
		tune_socket(bufferevent_getfd(bev));
		if (!c->px->up_tls)
			return pc_begin_session(c);
		bufferevent_setcb(bev, on_ssl_answer, NULL, on_upstream_event, c);
		bufferevent_enable(bev, EV_READ);
		bufferevent_write(bev, sslreq, sizeof(sslreq));
		return;
	}
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF | BEV_EVENT_TIMEOUT)) {
		role_log(4, "proxy", "session %s: cannot reach PostgreSQL at %s", c->session, c->px->up_host);
		pc_fatal(c, PX_ERR_UPSTREAM, "the database server is unreachable");
	}
}

static void connect_upstream(struct pconn *c)
{
	struct proxy *px = c->px;

	c->phase = PC_UPSTREAM;
	bufferevent_disable(c->cli, EV_READ);
	c->srv = bufferevent_socket_new(px->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!c->srv)
		return pc_fatal(c, PX_ERR_UPSTREAM, "out of memory");
	bufferevent_setcb(c->srv, NULL, NULL, on_upstream_event, c);
	struct timeval tv = { (time_t)px->env->cfg->proxy_connect_timeout, 0 };
	bufferevent_set_timeouts(c->srv, &tv, &tv);
	if (bufferevent_socket_connect(c->srv, (struct sockaddr *)&px->up_addr, (int)px->up_addrlen))
		return pc_fatal(c, PX_ERR_UPSTREAM, "the database server is unreachable");
}

/* --- the startup packet ------------------------------------------------------ */

static void on_startup_read(struct bufferevent *bev, void *arg);

/* A cancel for a Query that has not reached PostgreSQL, waiting for keys,
 * the catalog or its attempt records, alone, fails it in place
 * (pc_cancel_waiting). Other messages waiting there (Parse, Bind,
 * Execute, COPY rows, a Query with a COMMIT or a SET) are followed by the
 * cancel once sent (pc_open_server, to_server_now): sent now, it would
 * find the backend idle, and PostgreSQL forgets a cancel that finds
 * nothing to stop. */
static void cancel_backend(struct proxy *px, uint32_t pid, uint32_t key)
{
	for (struct pconn *t = px->conns; t; t = t->next)
		if (t->pid == pid && t->key == key && t->real_pid) {
			if (pc_cancel_waiting(t))
				px->st.cancels++;
			else if (pc_cancel_follows(t))
				t->cancel_due = true;
			else
				pc_send_cancel(t);
			return;
		}
}

static void copy_param(char *dst, size_t n, const char *v)
{
	snprintf(dst, n, "%s", v ? v : "");
	for (char *p = dst; *p; p++) /* names for the log: no control characters */
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

static void start_tls(struct pconn *c)
{
	struct proxy *px = c->px;
	SSL *ssl = SSL_new(px->tls);
	struct bufferevent *f =
	    ssl ? bufferevent_openssl_filter_new(px->base, c->cli, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                         BEV_OPT_CLOSE_ON_FREE)
	        : NULL;
	if (!f) {
		SSL_free(ssl);
		return pc_fatal(c, PX_ERR_PROTOCOL, "out of memory");
	}
	c->cli = f;
	c->cli_tls = true;
	pc_watch_client(c, on_startup_read);
}

/* The client's TLS identity (its certificate's subject), once known. */
static void note_tls_identity(struct pconn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->cli);
	X509 *peer = ssl ? SSL_get1_peer_certificate(ssl) : NULL;

	if (peer) {
		X509_NAME_oneline(X509_get_subject_name(peer), c->tls_id, sizeof(c->tls_id));
		X509_free(peer);
		char subject[sizeof(c->tls_id)];
		memcpy(subject, c->tls_id, sizeof(subject));
		copy_param(c->tls_id, sizeof(c->tls_id), subject);
	} else if (ssl) {
		snprintf(c->tls_id, sizeof(c->tls_id), "%s", SSL_get_version(ssl));
	}
}

static int on_startup(struct pconn *c, const uint8_t *p, size_t size)
{
	struct pgp_startup s;
	static const char no = 'N', yes = 'S';
	struct evbuffer *out = bufferevent_get_output(c->cli);

	if (pgp_parse_startup(p, size, &s))
		return -EBADMSG;
	switch (s.kind) {
	case PGP_SSL:
		if (c->cli_tls || !c->px->tls) {
			evbuffer_add(out, &no, 1);
			return 0;
		}
		/* bytes after SSLRequest would be taken as inside TLS: refuse them */
		if (evbuffer_get_length(bufferevent_get_input(c->cli)) != size)
			return -EPROTO;
		evbuffer_add(out, &yes, 1);
		evbuffer_drain(bufferevent_get_input(c->cli), size);
		pc_send_now(c->cli, false); /* in the clear, before the handshake */
		start_tls(c);
		return 1;
	case PGP_GSSENC: evbuffer_add(out, &no, 1); return 0;
	case PGP_CANCEL: cancel_backend(c->px, s.cancel_pid, s.cancel_key); return -ECANCELED;
	case PGP_STARTUP: break;
	}
	copy_param(c->user, sizeof(c->user), pgp_startup_param(&s, "user"));
	copy_param(c->db, sizeof(c->db), pgp_startup_param(&s, "database"));
	copy_param(c->app, sizeof(c->app), pgp_startup_param(&s, "application_name"));
	if (c->cli_tls)
		note_tls_identity(c);
	buf_add(&c->startup, p, size);
	return c->startup.failed ? -ENOMEM : 2;
}

static void on_startup_read(struct bufferevent *bev, void *arg)
{
	struct pconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t hdr[4];
	size_t size;

	while (c->phase == PC_STARTUP && evbuffer_copyout(in, hdr, 4) == 4) {
		int r = pgp_frame_startup(hdr, 4, &size);
		if (r == 0)
			r = pgp_frame_startup(evbuffer_pullup(in, 4), evbuffer_get_length(in), &size);
		if (r == 0)
			return;
		if (r > 0)
			r = on_startup(c, evbuffer_pullup(in, (ssize_t)size), size);
		if (r == 1)
			return; /* TLS starts: the filter reads from now on */
		if (r < 0) {
			if (r != -ECANCELED)
				pc_fatal(c, PX_ERR_PROTOCOL, "invalid startup packet");
			else
				pc_kill(c);
			return;
		}
		evbuffer_drain(in, size);
		pc_send_now(c->cli, c->cli_tls); /* an answer to SSLRequest or GSSENCRequest */
		if (r == 2)
			connect_upstream(c);
	}
}

/* --- accepting ---------------------------------------------------------------- */

static void describe_peer(char *out, size_t n, const struct sockaddr *sa)
{
	char host[INET6_ADDRSTRLEN] = "";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(out, n, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(out, n, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(out, n, "local");
	}
}

void px_accept(struct proxy *px, evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
	struct pconn *c = calloc(1, sizeof(*c));

	(void)salen;
	if (!c || px->st.active >= px->env->cfg->proxy_max_clients || px->stopping) {
		static const char busy[] = "too many connections to the Custos proxy";
		struct buf b = BUF_INIT;
		pgp_error(&b, "FATAL", "53300", busy);
		if (!b.failed && write(fd, b.p, b.len) < 0) { /* best effort */
		}
		buf_free(&b);
		close(fd);
		free(c);
		return;
	}
	pge_init(&c->enc);
	tune_socket(fd);
	c->px = px;
	c->hq_tail = &c->hq;
	c->tk_tail = &c->tk;
	c->cli = bufferevent_socket_new(px->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->cli) {
		close(fd);
		free(c);
		return;
	}
	describe_peer(c->addr, sizeof(c->addr), sa);
	snprintf(c->session, sizeof(c->session), "%llx-%llu", (unsigned long long)getpid(),
	         (unsigned long long)++px->sessions);
	do {
		if (RAND_bytes((uint8_t *)&c->pid, sizeof(c->pid)) != 1 ||
		    RAND_bytes((uint8_t *)&c->key, sizeof(c->key)) != 1)
			c->pid = 0;
		c->pid &= 0x7fffffff; /* clients print it as a positive pid */
	} while (!c->pid);
	c->next = px->conns;
	if (px->conns)
		px->conns->prev = c;
	px->conns = c;
	px->st.accepted++;
	px->st.active++;
	pc_watch_client(c, on_startup_read);
}
