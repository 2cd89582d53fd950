/* role.c - see role.h: the serving loop every role runs. */
#include "role.h"

#include "keyclient.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

void role_log(int prio, const char *role, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "<%d>custosd[%s]: %s\n", prio, role, msg);
}

int role_peer(const struct role_env *env, const char *name)
{
	for (size_t i = 0; i < env->npeers; i++)
		if (!strcmp(env->peers[i].name, name))
			return env->peers[i].fd;
	return -1;
}

static int add_peer(struct role_env *env, struct ipc_msg *m)
{
	const char *name = m->f[0].s.p;

	if (m->f[0].s.len >= sizeof(env->peers[0].name)) {
		close(m->fd);
		return -EBADMSG;
	}
	env->peers_changed = true;
	for (size_t i = 0; i < env->npeers; i++)
		if (!strcmp(env->peers[i].name, name)) { /* the role restarted: a new channel */
			close(env->peers[i].fd);
			env->peers[i].fd = m->fd;
			return 0;
		}
	if (env->npeers == ROLE_MAX_PEERS) {
		close(m->fd);
		return -EBADMSG;
	}
	snprintf(env->peers[env->npeers].name, sizeof(env->peers[0].name), "%s", name);
	env->peers[env->npeers++].fd = m->fd;
	return 0;
}

static int reconfigure(struct role_env *env, struct ipc_msg *m)
{
	struct cfg *c = cfg_new();
	struct buf errs = BUF_INIT;

	if (!c)
		return -ENOMEM;
	/* the parent checked this text; a failure here is a broken invariant */
	unsigned n = cfg_parse_checked(c, env->config_path, m->f[0].s.p, m->f[0].s.len, &errs);
	explicit_bzero((char *)m->f[0].s.p, m->f[0].s.len); /* the connection strings this role uses */
	buf_free(&errs);
	if (n) {
		cfg_free(c);
		return -EBADMSG;
	}
	cfg_free(env->cfg);
	env->cfg = c;
	return 0;
}

/* The parent's own messages. */
int role_from_parent(struct role_env *env, struct ipc_msg *m, role_handler h)
{
	struct ipc_msg r = { .type = IPC_PONG, .id = m->id, .nfields = 1 };

	switch (m->type) {
	case IPC_PING: r.f[0] = m->f[0]; return ipc_send(env->parent, &r);
	case IPC_PEER: return add_peer(env, m);
	case IPC_CONFIG: {
		int err = reconfigure(env, m);
		return err ? err : h(env, env->parent, m);
	}
	case IPC_STOP: env->stopping = true; return 0;
	case IPC_KEYS_FLUSH:
		if (env->keys)
			kcl_flush(env->keys);
		r = (struct ipc_msg){ .type = IPC_OK, .id = m->id };
		return ipc_send(env->parent, &r);
	default: return h(env, env->parent, m);
	}
}

/* Serves one ready channel: index 0 is the parent's. */
static int serve_one(struct role_env *env, int fd, bool parent, role_handler h)
{
	struct ipc_msg m;
	int err = ipc_recv(fd, env->buf, &m);

	if (err == -EPIPE && !parent) { /* a peer went away; the parent sends a new channel */
		for (size_t i = 0; i < env->npeers; i++)
			if (env->peers[i].fd == fd) {
				close(fd);
				env->peers[i] = env->peers[--env->npeers];
				env->peers_changed = true;
				break;
			}
		return 0;
	}
	if (err) {
		role_log(err == -EPIPE ? 6 : 3, env->name, "%s channel: %s", parent ? "parent" : "peer",
		         err == -EPIPE     ? "closed"
		         : err == -EBADMSG ? "malformed message"
		                           : strerror(-err));
		return err;
	}
	return parent ? role_from_parent(env, &m, h) : h(env, fd, &m);
}

int role_serve(struct role_env *env, role_handler h)
{
	env->handler = h;
	struct pollfd p[1 + ROLE_MAX_PEERS + 130];
	int64_t last_tick = mono_us();

	while (!env->stopping) {
		unsigned tick = env->tick_ms ? env->tick_ms : 1000; /* on_tick may change it */
		size_t n = 0, npeers = env->npeers;
		p[n++] = (struct pollfd){ env->parent, POLLIN, 0 };
		for (size_t i = 0; i < npeers; i++)
			p[n++] = (struct pollfd){ env->peers[i].fd, POLLIN, 0 };
		size_t extra = n;
		for (size_t i = 0; i < env->nextra && n < ARRAY_SIZE(p); i++)
			p[n++] = env->extra[i];
		if (poll(p, n, (int)tick) < 0 && errno != EINTR)
			return -errno;
		int err = 0;
		/* a served message may close or replace channels: then poll anew */
		env->peers_changed = false;
		for (size_t i = 0; !err && !env->peers_changed && i < extra; i++)
			if (p[i].revents)
				err = serve_one(env, p[i].fd, i == 0, h);
		for (size_t i = extra; !err && !env->peers_changed && i < n; i++)
			if (p[i].revents)
				err = env->on_extra(env, &p[i]);
		if (!err && env->on_tick && mono_us() - last_tick >= (int64_t)tick * 1000) {
			last_tick = mono_us();
			err = env->on_tick(env);
		}
		if (err)
			return err;
	}
	return 0;
}

int role_ready(struct role_env *env)
{
	struct ipc_msg m = { .type = IPC_OK };
	return ipc_send(env->parent, &m);
}

static bool unsolicited(enum ipc_type t)
{
	return t == IPC_PING || t == IPC_PEER || t == IPC_CONFIG || t == IPC_STOP;
}

static uint32_t next_id;

/* What arrived while a call waited that is not its reply: a role answers
 * what its parent sends meanwhile; a late reply to an earlier call that
 * timed out (an older id) is dropped. Anything else breaks the protocol. */
static int meanwhile(struct role_env *env, int fd, struct ipc_msg *m, void (*other)(void *, struct ipc_msg *),
                     void *arg)
{
	if (m->id && m->id < next_id && !unsolicited(m->type))
		return 0;
	if (other) {
		other(arg, m);
		return 0;
	}
	if (env && fd == env->parent && unsolicited(m->type))
		return role_from_parent(env, m, env->handler);
	return -EBADMSG;
}

int ipc_call(struct role_env *env, int fd, struct ipc_msg *req, uint8_t *buf, struct ipc_msg *ret,
             int timeout_ms, void (*other)(void *, struct ipc_msg *), void *arg)
{
	int64_t deadline = mono_us() + (int64_t)timeout_ms * 1000;

	req->id = ++next_id;
	int err = ipc_send(fd, req);
	bool parent_waits = false; /* a request from the parent waits for role_serve */
	while (!err) {
		/* a role waiting on a peer still answers its parent (pings) */
		struct pollfd p[2] = { { fd, POLLIN, 0 }, { env ? env->parent : -1, POLLIN, 0 } };
		int left = (int)((deadline - mono_us()) / 1000), r;
		if (left <= 0)
			return -ETIMEDOUT;
		do
			r = poll(p, env && fd != env->parent && !parent_waits ? 2 : 1, left);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return -errno;
		if (r && p[1].revents && fd != env->parent && !parent_waits) {
			/* a request (the logger's status, an append) is left on the
			 * channel: handling it here would re-enter the role's handler,
			 * which is in the middle of the request that made this call */
			uint8_t type[2];
			if (recv(env->parent, type, sizeof(type), MSG_PEEK | MSG_DONTWAIT) ==
			        (ssize_t)sizeof(type) &&
			    !unsolicited((unsigned)(type[0] | type[1] << 8))) {
				parent_waits = true;
				continue;
			}
			if ((err = ipc_recv(env->parent, buf, ret)) ||
			    (err = unsolicited(ret->type) ? role_from_parent(env, ret, env->handler)
			                                  : -EBADMSG))
				return err;
		}
		if (!r || !p[0].revents)
			continue;
		if ((err = ipc_recv(fd, buf, ret)))
			return err;
		if (ret->id == req->id && !unsolicited(ret->type))
			return 0;
		err = meanwhile(env, fd, ret, other, arg);
	}
	return err;
}

int role_call(struct role_env *env, int fd, struct ipc_msg *req, uint8_t *buf, struct ipc_msg *ret,
              int timeout_ms)
{
	return ipc_call(env, fd, req, buf, ret, timeout_ms, NULL, NULL);
}
