/* proxy_watch.c - hearing of DDL made around the proxy. The event trigger
 * that `custosctl db watch` installs in the customer database notifies
 * channel custos_catalog at the end of every DDL command, whoever runs it;
 * a thread here holds a connection that LISTENs on it, and each
 * notification has the loop read the catalog again (px_reload), some tens
 * of milliseconds after the DDL committed instead of at the minute's read.
 *
 * The thread blocks in libpq (connecting takes up to connect_timeout), so
 * it owns what it uses: a copy of the connection string and its own
 * descriptors of the two eventfds, one the loop writes to end it, one it
 * writes to tell the loop. The loop never waits for it: a thread still
 * connecting when the proxy stops ends with the process. Connected again
 * after a loss, it tells the loop too (DDL may have run meanwhile).
 *
 * Any user of the database can notify the channel, and DDL may come in
 * bursts: the reads it starts are at least MIN_GAP_US apart (one asked for
 * sooner waits on a timer). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "config.h"
#include "pgconn.h"
#include "proxy.h"

#define RETRY_MS 5000      /* between attempts to connect */
#define MIN_GAP_US 1000000 /* between the catalog reads notifications start */

static const char listen_sql[] =
    "LISTEN custos_catalog; "
    "SELECT count(*) FROM pg_event_trigger WHERE evtname = 'custos_catalog' AND evtenabled <> 'D'";

struct px_watch { /* the loop's side */
	int stop, note;
	struct event *ev, *later;
	char *conninfo; /* the thread's, as it was given */
	int64_t last;   /* when a notification last started a read */
};

struct watcher { /* the thread's */
	char *conninfo;
	int stop, note;
	bool said_down, said_untold;
	bool heard_before; /* connected before: DDL may have run while it was not */
};

static void tell(int fd)
{
	static const uint64_t one = 1;
	if (write(fd, &one, sizeof(one)) != sizeof(one)) { /* an eventfd takes it */
	}
}

/* Waits ms (-1: for ever) for fd to be readable, or stop: 1 fd, 0 timed out, -1 stop. */
static int wait_for(const struct watcher *w, int fd, int ms)
{
	struct pollfd p[2] = { { .fd = w->stop, .events = POLLIN }, { .fd = fd, .events = POLLIN } };
	int n;

	do
		n = poll(p, fd >= 0 ? 2 : 1, ms);
	while (n < 0 && errno == EINTR);
	return n > 0 && p[0].revents ? -1 : n > 0;
}

/* LISTENs on conn, and says once whether the trigger is missing. */
static bool listening(struct watcher *w, PGconn *conn)
{
	PGresult *r = conn && PQstatus(conn) == CONNECTION_OK ? PQexec(conn, listen_sql) : NULL;
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	const char *why = conn ? PQerrorMessage(conn) : "out of memory";

	if (!ok && !w->said_down)
		role_log(4, "proxy",
		         "cannot listen for DDL on the database (%.*s): DDL made around the proxy is seen "
		         "at the next catalog read; trying again every %d s",
		         (int)strcspn(why, "\n"), why, RETRY_MS / 1000);
	w->said_down |= !ok;
	if (ok && !strcmp(PQgetvalue(r, 0, 0), "0") && !w->said_untold)
		role_log(5, "proxy",
		         "the database has no event trigger custos_catalog (`custosctl db watch` installs "
		         "it): DDL made around the proxy is seen at the next catalog read");
	w->said_untold |= ok && !strcmp(PQgetvalue(r, 0, 0), "0");
	PQclear(r);
	return ok;
}

/* Until the connection is lost or the loop says stop (-1). */
static int hear(struct watcher *w, PGconn *conn)
{
	int sock = PQsocket(conn), n;

	while ((n = wait_for(w, sock, -1)) > 0) {
		bool heard = false;
		if (!PQconsumeInput(conn))
			return 0;
		for (PGnotify *note; (note = PQnotifies(conn)); PQfreemem(note))
			heard = true;
		if (heard)
			tell(w->note);
	}
	return n;
}

static void *watch(void *arg)
{
	struct watcher *w = arg;

	for (int n = 0; n >= 0; n = wait_for(w, -1, RETRY_MS)) {
		PGconn *conn = pgc_connect(w->conninfo, "custosd catalog", NULL);
		if (wait_for(w, -1, 0) < 0) { /* stopped while it connected */
			PQfinish(conn);
			break;
		}
		if (listening(w, conn)) {
			w->said_down = false;
			if (w->heard_before)
				tell(w->note);
			w->heard_before = true;
			if ((n = hear(w, conn)) == 0)
				role_log(
				    4, "proxy",
				    "the connection listening for DDL was lost: connecting again in %d s",
				    RETRY_MS / 1000);
		}
		PQfinish(conn);
		if (n < 0)
			break;
	}
	cfg_free_text(w->conninfo); /* it may hold a password */
	close(w->stop);
	close(w->note);
	free(w);
	return NULL;
}

static void read_now(struct proxy *px)
{
	px->watch->last = mono_us();
	px->pp_stale = true;
	px_reload(px);
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	read_now(arg);
}

static void on_note(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *px = arg;
	struct px_watch *pw = px->watch;
	int64_t since = mono_us() - pw->last;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) != sizeof(n) || evtimer_pending(pw->later, NULL))
		return;
	if (since >= MIN_GAP_US) {
		read_now(px);
		return;
	}
	struct timeval wait = { 0, (suseconds_t)(MIN_GAP_US - since) };
	evtimer_add(pw->later, &wait);
}

/* Starts a thread for it. 0 or -errno. */
static int start(struct px_watch *pw, const char *conninfo)
{
	struct watcher *w = calloc(1, sizeof(*w));
	pthread_attr_t attr;
	pthread_t t;
	int err = w && (w->conninfo = strdup(conninfo)) ? 0 : -ENOMEM;

	if (w)
		w->stop = w->note = -1;
	if (!err && ((w->stop = fcntl(pw->stop, F_DUPFD_CLOEXEC, 0)) < 0 ||
	             (w->note = fcntl(pw->note, F_DUPFD_CLOEXEC, 0)) < 0))
		err = -errno;
	if (!err && (err = -pthread_attr_init(&attr)) == 0) {
		err = -pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (!err)
			err = -pthread_create(&t, &attr, watch, w);
		pthread_attr_destroy(&attr);
	}
	if (!err || !w)
		return err;
	if (w->stop >= 0)
		close(w->stop);
	if (w->note >= 0)
		close(w->note);
	cfg_free_text(w->conninfo);
	free(w);
	return err;
}

void px_watch_stop(struct proxy *px)
{
	struct px_watch *pw = px->watch;

	if (!pw)
		return;
	if (pw->ev) /* out of the loop's epoll set before its descriptor closes */
		event_free(pw->ev);
	if (pw->later)
		event_free(pw->later);
	if (pw->stop >= 0) {
		tell(pw->stop);
		close(pw->stop);
	}
	if (pw->note >= 0)
		close(pw->note);
	cfg_free_text(pw->conninfo);
	free(pw);
	px->watch = NULL;
}

int px_watch_start(struct proxy *px)
{
	const char *conninfo = px->env->cfg->database;
	struct px_watch *pw = px->watch;

	if (pw && conninfo && !strcmp(pw->conninfo, conninfo))
		return 0; /* the same database: listening already */
	px_watch_stop(px);
	if (!conninfo || !(pw = calloc(1, sizeof(*pw))))
		return conninfo ? -ENOMEM : 0;
	pw->stop = eventfd(0, EFD_CLOEXEC);
	pw->note = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int err = pw->stop < 0 || pw->note < 0 ? -errno : 0;
	if (!err && (!(pw->conninfo = strdup(conninfo)) ||
	             !(pw->ev = event_new(px->base, pw->note, EV_READ | EV_PERSIST, on_note, px)) ||
	             !(pw->later = evtimer_new(px->base, on_later, px)) || event_add(pw->ev, NULL)))
		err = -ENOMEM;
	px->watch = pw;
	if (!err)
		err = start(pw, conninfo);
	if (err) {
		role_log(4, "proxy", "cannot listen for DDL on the database: %s", strerror(-err));
		px_watch_stop(px);
	}
	return err;
}
