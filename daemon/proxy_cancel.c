/* proxy_cancel.c - a CancelRequest forwarded to PostgreSQL for a
 * session's backend, without holding up the proxy's other sessions: a
 * connection of its own, driven by the event loop. PostgreSQL answers a
 * cancel with nothing and closes its end once the backend has been
 * signalled; as libpq's PQcancel does, the cancel waits for that (at most
 * CANCEL_WAIT_S), and the session's client is not read meanwhile, so that
 * what it sends next cannot be what the signal lands on. A session has
 * one cancel on its way at most, another that comes meanwhile follows it:
 * a client cannot have the proxy open connections to PostgreSQL faster
 * than they close. */
#define _GNU_SOURCE
#include "proxy_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CANCEL_WAIT_S 1

struct pcancel {
	struct proxy *px;
	struct pconn *c; /* the session it holds; NULL once that has ended */
	struct event *ev;
	int fd;
	uint8_t req[16];
	struct pcancel *next;
};

static void cancel_free(struct pcancel *k)
{
	struct pcancel **p = &k->px->cancels;

	while (*p != k)
		p = &(*p)->next;
	*p = k->next;
	if (k->ev)
		event_free(k->ev);
	close(k->fd);
	free(k);
}

/* The cancel is over, done or not: its session goes on. */
static void cancel_end(struct pcancel *k)
{
	struct pconn *c = k->c;

	cancel_free(k);
	if (c)
		pc_cancel_ended(c);
}

/* It never reached PostgreSQL (err: an errno). */
static void not_sent(struct proxy *px, int err)
{
	px->st.cancels_lost++;
	role_log(4, "proxy", "a cancel request could not be sent to PostgreSQL at %s (%s)", px->up_host,
	         strerror(err));
}

static void on_closed(evutil_socket_t fd, short what, void *arg)
{
	struct pcancel *k = arg;
	char b[64];
	ssize_t r;

	if (what & EV_READ) {
		while ((r = recv(fd, b, sizeof(b), 0)) > 0)
			;
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return; /* open still */
	}
	cancel_end(k);
}

static void on_connected(evutil_socket_t fd, short what, void *arg)
{
	struct pcancel *k = arg;
	int err = 0;
	socklen_t len = sizeof(err);
	struct timeval wait = { CANCEL_WAIT_S, 0 };

	event_free(k->ev);
	k->ev = NULL;
	if (!(what & EV_WRITE) || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) || err ||
	    send(fd, k->req, sizeof(k->req), MSG_NOSIGNAL) != (ssize_t)sizeof(k->req)) {
		not_sent(k->px, err ? err : (what & EV_WRITE) ? errno : ETIMEDOUT);
		return cancel_end(k);
	}
	k->px->st.cancels++;
	if (!(k->ev = event_new(k->px->base, fd, EV_READ | EV_PERSIST, on_closed, k)) ||
	    event_add(k->ev, &wait))
		cancel_end(k);
}

void pc_send_cancel(struct pconn *t)
{
	struct proxy *px = t->px;
	struct pcancel *k = calloc(1, sizeof(*k));
	struct timeval tv = { (time_t)px->env->cfg->proxy_connect_timeout, 0 };

	if (t->cancels || !k) { /* one at a time: this one follows (pc_cancel_ended) */
		t->cancel_due = t->cancels > 0;
		free(k);
		return;
	}
	t->cancel_due = false;
	*k = (struct pcancel){ px, t, NULL, -1, { 0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e }, px->cancels };
	pgp_put32(k->req + 8, t->real_pid);
	pgp_put32(k->req + 12, t->real_key);
	k->fd = socket(px->up_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (k->fd < 0 ||
	    (connect(k->fd, (struct sockaddr *)&px->up_addr, px->up_addrlen) && errno != EINPROGRESS) ||
	    !(k->ev = event_new(px->base, k->fd, EV_WRITE, on_connected, k)) || event_add(k->ev, &tv)) {
		not_sent(px, errno); /* a Unix socket's full queue too (EAGAIN): PostgreSQL is swamped */
		if (k->ev)
			event_free(k->ev);
		if (k->fd >= 0)
			close(k->fd);
		free(k);
		return;
	}
	px->cancels = k;
	t->cancels++;
}

void pc_cancels_forget(struct pconn *c)
{
	for (struct pcancel *k = c->px->cancels; k; k = k->next)
		if (k->c == c)
			k->c = NULL;
	c->cancels = 0;
}

void px_cancels_free(struct proxy *px)
{
	while (px->cancels)
		cancel_free(px->cancels);
}
