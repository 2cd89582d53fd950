/* role_proxy.c - the proxy role: applications connect here instead of to
 * PostgreSQL. It holds no capability and cannot read the master key (the
 * role that parses client traffic holds neither); it reaches the logger
 * and the keeper over its channels. One libevent loop serves the parent's
 * channel, the listening sockets the parent bound for it, and every
 * connection (proxy_startup.c, proxy_conn.c). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyclient.h"
#include "proxy.h"

#define STOP_GRACE_S 10      /* connections still open after this are cut */
#define CATALOG_REFRESH_S 60 /* the catalog and role memberships are read again */
#define KEY_TTL_S 10         /* a shredded subject's key leaves the proxy within this */

int role_proxy_listen_fds[CFG_MAX_LIST]; /* set by the parent before it forks */
size_t role_proxy_nlisten;

static int on_config(struct role_env *env, int fd, struct ipc_msg *m)
{
	(void)fd;
	if (m->type != IPC_CONFIG) {
		role_log(3, env->name, "unexpected %s message: protocol error", ipc_type_name(m->type));
		return -EBADMSG;
	}
	((struct proxy *)env->state)->pp_stale = true; /* loaded within a tick, in the background */
	(void)px_watch_start(env->state);              /* when the database is another */
	/* (listen addresses and TLS apply at the next start) */
	return 0;
}

static void begin_stop(struct proxy *px)
{
	if (px->stopping)
		return;
	px->stopping = true;
	for (size_t i = 0; i < px->nls; i++)
		evconnlistener_disable(px->ls[i]);
	role_log(6, "proxy", "stopping: %llu connection(s) to finish", (unsigned long long)px->st.active);
}

static void on_parent(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *px = arg;
	struct role_env *env = px->env;
	struct ipc_msg m;

	(void)what;
	int err = ipc_recv(fd, env->buf, &m);
	if (!err)
		err = role_from_parent(env, &m, on_config);
	if (err) {
		role_log(err == -EPIPE ? 6 : 3, env->name, "parent channel: %s",
		         err == -EPIPE ? "closed" : strerror(-err));
		px->exit_code = err == -EPIPE ? 0 : 1;
		event_base_loopbreak(px->base);
		return;
	}
	if (env->peers_changed) {
		env->peers_changed = false;
		lc_set_fd(px->lc, role_peer(env, "logger"));
		kcl_set_fd(px->keys, role_peer(env, "keeper"));
	}
	if (env->stopping)
		begin_stop(px);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *px = arg;
	struct lc_stats ls = lc_stats(px->lc);

	(void)fd;
	(void)what;
	kcl_tick(px->keys);
	if (px->pp && ++px->pp_ticks >= CATALOG_REFRESH_S * PX_TICKS_PER_S)
		px->pp_stale = true; /* DDL and role grants made around the proxy */
	if (px->pp_stale || !px->pp)
		px_reload(px);
	if (px->stopping) {
		if (++px->stop_ticks > STOP_GRACE_S * PX_TICKS_PER_S && px->conns) {
			role_log(4, "proxy", "cutting %llu connection(s) still open",
			         (unsigned long long)px->st.active);
			px_close_all(px, false);
		}
		if (!px->conns && ((ls.inflight == 0 && ls.queued == 0) ||
		                   px->stop_ticks > 2 * STOP_GRACE_S * PX_TICKS_PER_S))
			event_base_loopbreak(px->base);
	}
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	(void)l;
	px_accept(arg, fd, sa, salen);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
	static int64_t last;
	int err = EVUTIL_SOCKET_ERROR();

	(void)l;
	(void)arg;
	if (mono_us() - last > 10000000) { /* EMFILE and the like: say so now and then */
		role_log(4, "proxy", "accept: %s", strerror(err));
		last = mono_us();
	}
}

static int setup(struct proxy *px)
{
	char err[256];
	static const struct timeval tick = { 0, 1000000 / PX_TICKS_PER_S };

	if (!(px->base = event_base_new()) || !(px->lc = lc_new(px->base)) || px_loader_new(px) ||
	    !(px->sqi = sqi_cache_new(4096)) || !(px->keys = kcl_new(px->env, KEY_TTL_S, KCL_SLOTS_PROXY)) ||
	    kcl_async(px->keys, px->base, px_keys_ready, px))
		return -ENOMEM;
	px->env->keys = px->keys;
	int r = px_upstream_init(px, err, sizeof(err));
	if (!r)
		r = px_tls_init(px, err, sizeof(err));
	if (r) {
		role_log(2, "proxy", "%s", err);
		return r;
	}
	(void)px_load_policy(px);
	(void)px_watch_start(px);
	for (size_t i = 0; i < role_proxy_nlisten; i++) {
		px->ls[i] = evconnlistener_new(px->base, on_accept, px, LEV_OPT_CLOSE_ON_FREE, -1,
		                               role_proxy_listen_fds[i]);
		if (!px->ls[i])
			return -ENOMEM;
		evconnlistener_set_error_cb(px->ls[i], on_accept_error);
		px->nls++;
	}
	px->parent_ev = event_new(px->base, px->env->parent, EV_READ | EV_PERSIST, on_parent, px);
	px->tick = event_new(px->base, -1, EV_PERSIST, on_tick, px);
	if (!px->parent_ev || !px->tick || event_add(px->parent_ev, NULL) || event_add(px->tick, &tick))
		return -ENOMEM;
	lc_set_fd(px->lc, role_peer(px->env, "logger"));
	kcl_set_fd(px->keys, role_peer(px->env, "keeper"));
	return 0;
}

static void teardown(struct proxy *px)
{
	px_close_all(px, true);
	px_cancels_free(px);
	for (size_t i = 0; i < px->nls; i++)
		evconnlistener_free(px->ls[i]);
	if (px->parent_ev)
		event_free(px->parent_ev);
	if (px->tick)
		event_free(px->tick);
	lc_free(px->lc);
	keyprov_free(px->keys);
	sqi_cache_free(px->sqi);
	px_watch_stop(px);
	px_loader_free(px);
	ppol_unref(px->pp);
	SSL_CTX_free(px->tls);
	SSL_CTX_free(px->up_tls);
	if (px->base)
		event_base_free(px->base);
}

static int proxy_main(struct role_env *env)
{
	static struct proxy px;

	signal(SIGPIPE, SIG_IGN);
	px = (struct proxy){ .env = env };
	env->state = &px;
	int err = setup(&px);
	if (!err)
		err = role_ready(env);
	if (!err) {
		static const char *const tls[] = { "", " (TLS if offered)", " over TLS", " over verified TLS",
			                           " over verified TLS" };
		role_log(6, "proxy", "listening on %zu address(es), forwarding to %s%s", px.nls, px.up_host,
		         tls[px.up_sslmode]);
		event_base_dispatch(px.base);
	}
	struct lc_stats ls = lc_stats(px.lc);
	role_log(6, "proxy", "stopped: %llu connections, %llu statements, %llu records, %llu refused",
	         (unsigned long long)px.st.accepted, (unsigned long long)px.st.statements,
	         (unsigned long long)ls.durable, (unsigned long long)px.st.refused_statements);
	teardown(&px);
	return err ? 1 : px.exit_code;
}

/* the customer database: where it forwards to, and its catalog */
const struct role role_proxy = { "proxy", proxy_main, false, CFG_SECRET_DATABASE };
