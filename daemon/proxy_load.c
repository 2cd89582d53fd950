/* proxy_load.c - the policy and the catalog it is bound to (ppol_load):
 * loaded at start, and after routine or trigger DDL, while the event loop
 * waits; after other DDL, every CATALOG_REFRESH_S and on reload, in a
 * thread of its own. A load connects to PostgreSQL and reads its catalog
 * (some 45 ms for the sample shop, more for a large schema), and every
 * connection would wait that long with the loop.
 *
 * A session that ran DDL waits, once its transaction ends, for a load
 * begun after that to end (px_reload_after_now, px_catalog_read): its next
 * statements are analysed with the catalog that shows its DDL.
 *
 * The thread gets copies of what it reads of the configuration (a reload
 * replaces that) and a reference to the policy in use, whose routine
 * analyses it may take over (see ppol_load: nothing the loop reads). It
 * touches nothing else of the proxy, and says it is done through an
 * eventfd; the loop joins it before it looks at the result. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "colguard.h"
#include "config.h"
#include "proxy.h"

#define RETRY_US 1000000  /* after a failed load, the next no sooner */
#define EXIT_WAIT_MS 2000 /* for a load still running as the proxy stops */

struct px_loader {
	struct proxy *px;
	int fd; /* eventfd: the thread is done */
	struct event *done;
	bool running;
	int64_t failed_at;
	/* the job: the thread's alone while it runs */
	pthread_t thread;
	struct pol_list files;
	char *conninfo;
	struct ppol *prev, *pp;
	uint64_t seq; /* px->loads_started when it started */
	int rc;
	char err[256];
};

/* Says which policy tables the database has not (at the first load, and
 * when one goes): what is written under another name, a table renamed
 * while Custos was not running, say, is not known as personal data. */
static void say_missing(const struct ppol *old, const struct ppol *pp)
{
	for (size_t i = 0; pp->cat && i < pp->pol->ntables && i < pp->n; i++) {
		bool before = false;
		for (size_t j = 0; old && old->cat && j < old->pol->ntables && j < old->n; j++)
			before |= !old->t[j].oid && !strcmp(old->t[j].pt->name, pp->t[i].pt->name);
		if (!pp->t[i].oid && !before)
			role_log(
			    4, "proxy",
			    "policy table %s is not in the database (not made yet, dropped, or renamed while "
			    "Custos was not running): a table holding its rows under another name is not "
			    "known as personal data",
			    pp->t[i].pt->name);
	}
}

/* Says which encrypted columns the database would take plaintext into
 * (colguard.h), when their number changes: the proxy encrypts what it
 * sees written, the guard what it does not. */
static void say_unguarded(const struct ppol *old, const struct ppol *pp)
{
	struct buf say = BUF_INIT, before = BUF_INIT;
	size_t n = pp->cat ? cg_unguarded(pp->pol, pp->cat, &say) : 0;
	size_t was = old && old->cat ? cg_unguarded(old->pol, old->cat, &before) : 0;

	if (n && n != was)
		role_log(4, "proxy", "%.*s", (int)say.len, say.p ? say.p : "");
	buf_free(&say);
	buf_free(&before);
}

/* Takes a load's result: the new policy, or the old one kept and why not. */
static int adopt(struct proxy *px, int rc, struct ppol *pp, const char *err)
{
	if (rc) {
		if (strcmp(err, px->pp_error))
			role_log(px->pp ? 4 : 3, "proxy", "%s%s", err,
			         px->pp ? "; the previous policy stays"
			                : "; statements are refused until it loads");
		snprintf(px->pp_error, sizeof(px->pp_error), "%s", err);
		px->pp_stale = true; /* tried again (not before RETRY_US in the background) */
		return -1;
	}
	say_missing(px->pp, pp);
	say_unguarded(px->pp, pp);
	ppol_unref(px->pp);
	px->pp = pp;
	px->pp_error[0] = 0;
	return 0;
}

static void clear_job(struct px_loader *l)
{
	for (size_t i = 0; i < l->files.n; i++)
		free(l->files.v[i]);
	free(l->files.v);
	cfg_free_text(l->conninfo); /* it may hold a password */
	ppol_unref(l->prev);
	l->files = (struct pol_list){ 0 };
	l->conninfo = NULL;
	l->prev = l->pp = NULL;
}

/* Waits for the thread and takes its result. */
static int finish(struct px_loader *l)
{
	uint64_t n;

	pthread_join(l->thread, NULL);
	if (read(l->fd, &n, sizeof(n)) != sizeof(n)) { /* its count: it wrote before it ended */
	}
	l->running = false;
	int r = adopt(l->px, l->rc, l->pp, l->err);
	l->failed_at = r ? mono_us() : 0;
	clear_job(l);
	l->px->loads_done = l->seq;
	px_catalog_read(l->px);
	return r;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) == sizeof(n) && ((struct px_loader *)arg)->running)
		(void)finish(arg);
}

static void *load(void *arg)
{
	struct px_loader *l = arg;
	static const uint64_t one = 1;

	l->rc = ppol_load((const char *const *)l->files.v, l->files.n, l->conninfo, l->prev, &l->pp, l->err,
	                  sizeof(l->err));
	if (write(l->fd, &one, sizeof(one)) != sizeof(one)) { /* an eventfd takes it */
	}
	return NULL;
}

int px_loader_new(struct proxy *px)
{
	struct px_loader *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->px = px;
	l->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->fd < 0 || !(l->done = event_new(px->base, l->fd, EV_READ | EV_PERSIST, on_done, l)) ||
	    event_add(l->done, NULL)) {
		if (l->done)
			event_free(l->done);
		if (l->fd >= 0)
			close(l->fd);
		free(l);
		return -ENOMEM;
	}
	px->loader = l;
	return 0;
}

/* A load still running is waited for a while, then left to end with the
 * process (whose role ends with _exit). */
void px_loader_free(struct proxy *px)
{
	struct px_loader *l = px->loader;
	struct pollfd p = { .fd = l ? l->fd : -1, .events = POLLIN };

	if (!l)
		return;
	event_free(l->done);
	if (l->running && poll(&p, 1, EXIT_WAIT_MS) == 1)
		(void)finish(l);
	if (l->running)
		return;
	close(l->fd);
	free(l);
	px->loader = NULL;
}

int px_load_policy(struct proxy *px)
{
	const struct cfg *c = px->env->cfg;
	struct ppol *pp = NULL;
	char err[256];

	if (px->loader && px->loader->running)
		(void)finish(px->loader); /* its previous policy is the one this load takes over from */
	uint64_t seq = ++px->loads_started;
	px->pp_stale = false;
	px->pp_ticks = 0;
	int rc = ppol_load((const char *const *)c->policies.v, c->policies.n, c->database, px->pp, &pp, err,
	                   sizeof(err));
	int r = adopt(px, rc, pp, err);
	if (!r && px->loader)
		px->loader->failed_at = 0;
	px->loads_done = seq;
	px_catalog_read(px);
	return r;
}

static int copy_job(struct px_loader *l, const struct cfg *c)
{
	if (c->policies.n && !(l->files.v = calloc(c->policies.n, sizeof(char *))))
		return -ENOMEM;
	for (; l->files.n < c->policies.n; l->files.n++)
		if (!(l->files.v[l->files.n] = strdup(c->policies.v[l->files.n])))
			return -ENOMEM;
	return c->database && !(l->conninfo = strdup(c->database)) ? -ENOMEM : 0;
}

void px_reload(struct proxy *px)
{
	struct px_loader *l = px->loader;

	if (l->running || (l->failed_at && mono_us() - l->failed_at < RETRY_US))
		return; /* (pp_stale stays: the next tick asks again) */
	if (copy_job(l, px->env->cfg)) {
		clear_job(l);
		return;
	}
	l->prev = px->pp ? ppol_ref(px->pp) : NULL;
	l->seq = px->loads_started + 1;
	if (pthread_create(&l->thread, NULL, load, l)) {
		clear_job(l);
		(void)px_load_policy(px); /* no thread: the loop waits, as before */
		return;
	}
	px->loads_started = l->seq;
	px->pp_stale = false;
	px->pp_ticks = 0;
	l->running = true;
}

uint64_t px_reload_after_now(struct proxy *px)
{
	uint64_t next = px->loads_started + 1; /* begun now, or after the one running */

	px->pp_stale = true;
	px_reload(px);
	return next;
}
