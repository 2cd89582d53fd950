/* parent.c - see parent.h */
#define _GNU_SOURCE
#include "parent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <jansson.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "auditlog_int.h"
#include "keyclient.h"
#include "logmsg.h"
#include "privs.h"
#include "role.h"
#include "secmem.h"

#define NROLES 5
#define FLUSH_TIMEOUT_MS 10000
#define START_TIMEOUT_S 60
#define STOP_TIMEOUT_S 30
#define MAX_RESTARTS 5 /* within RESTART_WINDOW_S: then custosd gives up */
#define RESTART_WINDOW_S 60

extern int role_control_listen_fd;
extern int role_proxy_listen_fds[CFG_MAX_LIST];
extern size_t role_proxy_nlisten;

/* Roles start in this order and stop in the reverse: the logger outlives
 * every role that records through it. */
static const struct role *const roles[NROLES] = { &role_logger, &role_keeper, &role_control, &role_dsr,
	                                          &role_proxy };

/* Channels between roles: the parent makes them, again after a restart. */
/* The proxy asks the keeper for the data keys of the values it encrypts
 * and decrypts; never for the master key, the KEKs or the log's keys. */
static const char *const links[][2] = { { "control", "logger" }, { "control", "keeper" },
	                                { "logger", "keeper" },  { "proxy", "logger" },
	                                { "proxy", "keeper" },   { "control", "dsr" },
	                                { "dsr", "logger" },     { "dsr", "keeper" } };

/* The dsr runs when there is a customer database to answer requests
 * from, the proxy when there is somewhere to listen. */
static bool wanted(const struct role *r, const struct cfg *c)
{
	return r == &role_dsr ? c->database != NULL : r == &role_proxy ? c->listen.n > 0 : true;
}

struct child {
	const struct role *role;
	pid_t pid;
	int fd;
	bool ready;
	unsigned restarts;
	time_t started, recent[MAX_RESTARTS];
	uint64_t pong; /* the last ping it answered */
};

struct parent {
	struct parent_opts *o;
	struct child kids[NROLES];
	int n; /* roles in use */
	int sigfd, listen_fd;
	bool stopping, sandbox_warned;
	uint64_t watchdog_us, ping;
	uint8_t buf[IPC_MAX_MSG + 1];
};

static void say(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(int prio, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "<%d>custosd: %s\n", prio, msg);
}

static struct child *kid(struct parent *p, const char *name)
{
	for (int i = 0; i < p->n; i++)
		if (!strcmp(p->kids[i].role->name, name))
			return &p->kids[i];
	return NULL;
}

/* --- a role's process ---------------------------------------------------- */

static size_t secure_heap_for(const struct role *r, const struct cfg *c)
{
	size_t need = 1u << 16, n = 1u << 16;

	if (r == &role_keeper && (c->database || c->keystore))
		need += (size_t)c->key_cache * 128 * 2; /* the cache is one allocation */
	if (r == &role_logger || r == &role_dsr)
		need += KCL_HEAP(KCL_SLOTS_LOGGER);
	if (r == &role_proxy)
		need += KCL_HEAP(KCL_SLOTS_PROXY);
	while (n < need)
		n <<= 1;
	return n;
}

static void child_setup(struct parent *p, struct child *k, int fd)
{
	sigset_t none;

	for (int i = 0; i < p->n; i++)
		if (p->kids[i].fd >= 0)
			close(p->kids[i].fd);
	close(p->sigfd);
	if (k->role != &role_control && p->listen_fd >= 0)
		close(p->listen_fd);
	for (size_t i = 0; k->role != &role_proxy && i < role_proxy_nlisten; i++)
		close(role_proxy_listen_fds[i]);
	char comm[16];
	snprintf(comm, sizeof(comm), "custos-%s", k->role->name);
	prctl(PR_SET_NAME, comm); /* ps and top show the role */
	signal(SIGTERM, SIG_IGN); /* roles stop when the parent says so, or its channel closes */
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (privs_limit_caps(k->role->audit_cap))
		fprintf(stderr, "<2>custosd[%s]: cannot drop capabilities\n", k->role->name), _exit(1);
	/* only the connection strings (and passwords) this role uses */
	cfg_free_text(p->o->config_text);
	p->o->config_text = NULL;
	cfg_keep_secrets(p->o->cfg, k->role->secrets);
	int r = privs_sandbox(k->role->name, p->o->cfg);
	if (r && r != -EOPNOTSUPP)
		fprintf(stderr, "<2>custosd[%s]: sandbox: %s\n", k->role->name, strerror(-r)), _exit(1);
	if (secmem_init(secure_heap_for(k->role, p->o->cfg)))
		fprintf(stderr, "<4>custosd[%s]: cannot lock memory for keys\n", k->role->name);
	(void)fd;
}

static int spawn(struct parent *p, struct child *k)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -errno;
	}
	if (pid == 0) {
		close(sv[0]);
		child_setup(p, k, sv[1]);
		static struct role_env env;
		env = (struct role_env){ .name = k->role->name,
			                 .config_path = p->o->config_path,
			                 .cfg = p->o->cfg,
			                 .parent = sv[1] };
		fflush(stderr);
		_exit(k->role->main(&env));
	}
	close(sv[1]);
	k->pid = pid;
	k->fd = sv[0];
	k->ready = false;
	k->started = time(NULL);
	return 0;
}

/* Gives each pair of linked, running roles that includes name (NULL:
 * every pair) a fresh channel. */
static int link_role(struct parent *p, const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
		struct child *a = kid(p, links[i][0]), *b = kid(p, links[i][1]);
		int sv[2];
		if (name && strcmp(name, links[i][0]) && strcmp(name, links[i][1]))
			continue;
		if (!a || !b || a->pid <= 0 || b->pid <= 0)
			continue;
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
			return -errno;
		struct ipc_msg ma = { .type = IPC_PEER, .nfields = 1, .fd = sv[0] };
		struct ipc_msg mb = { .type = IPC_PEER, .nfields = 1, .fd = sv[1] };
		ma.f[0] = ipc_str(b->role->name);
		mb.f[0] = ipc_str(a->role->name);
		int err = ipc_send(a->fd, &ma);
		if (!err)
			err = ipc_send(b->fd, &mb);
		close(sv[0]);
		close(sv[1]);
		if (err)
			return err;
	}
	return 0;
}

/* --- records and status -------------------------------------------------- */

/* What a child sends while the parent waits for its reply: its pong. */
static void meanwhile(void *arg, struct ipc_msg *m)
{
	struct child *k = arg;

	if (m->type == IPC_PONG)
		k->pong = m->f[0].u;
	else if (m->type == IPC_OK)
		k->ready = true;
}

/* Appends a record of the service's own (start, stop, reload) through the
 * logger; event, when not "", goes to the Linux audit trail too. */
static int note(struct parent *p, const char *what, const char *result, const char *event)
{
	struct child *lg = kid(p, "logger");
	struct alog_actor actor = { .app = "custosd" };
	struct alog_rec rec = { .type = "service", .actor = &actor, .rows = -1 };
	struct ipc_msg m, r;
	struct buf lists = BUF_INIT;
	char detail[160];

	if (lg->pid <= 0 || !lg->ready)
		return -ENOTCONN;
	snprintf(detail, sizeof(detail), "{\"event\":\"%s\",\"result\":\"%s\",\"pid\":%ld}", what, result,
	         (long)getpid());
	rec.detail = detail;
	int err = logmsg_encode(&rec, event, false, &lists, &m);
	if (!err)
		err = ipc_call(NULL, lg->fd, &m, p->buf, &r, 10000, meanwhile, lg);
	buf_free(&lists);
	return err ? err : r.type == IPC_LOG_APPENDED ? 0 : -EIO;
}

static char *roles_json(struct parent *p)
{
	json_t *a = json_array();

	for (int i = 0; i < p->n; i++) {
		const struct child *k = &p->kids[i];
		json_array_append_new(a, json_pack("{s:s, s:i, s:b, s:i, s:I}", "name", k->role->name, "pid",
		                                   (int)k->pid, "up", k->pid > 0 && k->ready, "restarts",
		                                   (int)k->restarts, "since", (json_int_t)k->started));
	}
	char *s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

static void notify_status(struct parent *p)
{
	struct child *lg = kid(p, "logger");
	struct ipc_msg m = { .type = IPC_LOG_STATUS_REQ }, r;
	int up = 0;

	for (int i = 0; i < p->n; i++)
		up += p->kids[i].pid > 0 && p->kids[i].ready;
	if (lg->ready && !ipc_call(NULL, lg->fd, &m, p->buf, &r, 2000, meanwhile, lg) &&
	    r.type == IPC_LOG_STATUS) {
		char head[17];
		hex_encode(r.f[1].h, 8, head);
		sd_notifyf(0, "STATUS=%d of %d roles up; log head %llu (%s...)", up, p->n,
		           (unsigned long long)r.f[0].u, head);
	} else {
		sd_notifyf(0, "STATUS=%d of %d roles up; logger not answering", up, p->n);
	}
}

/* --- reload -------------------------------------------------------------- */

/* The new configuration's text for k, with only its own secrets. */
static int send_config(struct parent *p, const struct child *k)
{
	struct buf b = BUF_INIT;
	const char *text = p->o->config_text;
	int err = cfg_text_keeping(text, strlen(text), k->role->secrets, &b);

	buf_addc(&b, 0); /* within what cfg_text_keeping reserved */
	if (!err) {
		struct ipc_msg m = { .type = IPC_CONFIG, .nfields = 1 };
		m.f[0] = ipc_str(b.p);
		err = ipc_send(k->fd, &m);
	}
	if (b.p)
		explicit_bzero(b.p, b.cap);
	buf_free(&b);
	return err;
}

static int reload(struct parent *p, char *why, size_t whylen)
{
	struct cfg *c = NULL;
	char *text = NULL;
	struct buf errs = BUF_INIT;

	sd_notify(0, "RELOADING=1");
	int n = parent_check_config(p->o->config_path, &c, &text, &errs);
	if (!n && strlen(text) > IPC_MAX_STR) {
		buf_printf(&errs, "%s: larger than %u bytes\n", p->o->config_path, IPC_MAX_STR);
		n = 1;
	}
	/* recorded before it applies: a reload that cannot be recorded does not happen */
	if (!n && note(p, "reload", "ok", "reload")) {
		buf_printf(&errs, "the reload cannot be recorded in the audit log\n");
		n = 1;
	}
	if (n) {
		buf_addc(&errs, 0);
		snprintf(why, whylen, "%s", errs.p ? errs.p : "out of memory");
		why[strcspn(why, "\n")] = 0; /* the first problem; the journal gets them all */
		say(3, "reload refused, the running configuration stays: %s", errs.p ? errs.p : "");
		(void)!note(p, "reload", "refused", "reload-failed");
		cfg_free(c);
		cfg_free_text(text);
		buf_free(&errs);
		sd_notify(0, "READY=1");
		return -EINVAL;
	}
	cfg_free(p->o->cfg);
	cfg_free_text(p->o->config_text);
	p->o->cfg = c;
	p->o->config_text = text;
	int sent = 0;
	for (int i = 0; i < p->n; i++)
		if (p->kids[i].pid > 0 && send_config(p, &p->kids[i])) {
			say(3, "cannot send the new configuration to %s; restarting it",
			    p->kids[i].role->name);
			kill(p->kids[i].pid, SIGKILL); /* it restarts with the new configuration */
		} else {
			sent++;
		}
	snprintf(why, whylen, "configuration and policies reloaded (%d of %d roles)", sent, p->n);
	say(5, "%s", why);
	buf_free(&errs);
	sd_notify(0, "READY=1");
	return 0;
}

/* --- the roles' requests ------------------------------------------------- */

static void kill_role(struct child *k, const char *why)
{
	say(3, "%s (pid %d): %s; stopping it", k->role->name, (int)k->pid, why);
	kill(k->pid, SIGKILL);
}

/* After an erasure: every role that caches data keys drops them, so that
 * none serves a destroyed key's values from memory. Answers the dsr once
 * all have (an error when one could not). */
static int flush_keys(struct parent *p, uint32_t id, struct child *asker)
{
	struct ipc_msg m = { .type = IPC_KEYS_FLUSH }, r;
	int err = 0;

	for (int i = 0; !err && i < p->n; i++) {
		struct child *k = &p->kids[i];
		if (k == asker || k->pid <= 0 || (k->role != &role_proxy && k->role != &role_logger))
			continue;
		err = ipc_call(NULL, k->fd, &m, p->buf, &r, FLUSH_TIMEOUT_MS, meanwhile, k);
		if (!err && r.type != IPC_OK)
			err = -EIO;
	}
	if (err)
		return ipc_send_error(asker->fd, id, err, "a role's key cache could not be dropped");
	r = (struct ipc_msg){ .type = IPC_OK, .id = id };
	return ipc_send(asker->fd, &r);
}

static void from_child(struct parent *p, struct child *k)
{
	struct ipc_msg m, r = { .type = IPC_OK };
	char why[512];
	int err = ipc_recv(k->fd, p->buf, &m);

	if (err == -EPIPE) /* it died: SIGCHLD follows */
		return;
	if (err)
		return kill_role(k, "malformed message on its channel (protocol error)");
	bool control = k->role == &role_control;
	if (!control && (m.type == IPC_ROLES_REQ || m.type == IPC_RELOAD || m.type == IPC_STOP))
		return kill_role(k, "a request only the control role may make (protocol error)");
	switch (m.type) {
	case IPC_OK: k->ready = true; return;
	case IPC_PONG: k->pong = m.f[0].u; return;
	case IPC_LOG_APPENDED:
	case IPC_LOG_STATUS:
	case IPC_ERROR: return; /* a reply that came after its call timed out */
	case IPC_ROLES_REQ: {
		char *s = roles_json(p);
		r = (struct ipc_msg){ .type = IPC_ROLES, .id = m.id, .nfields = 1 };
		r.f[0] = ipc_str(s ? s : "[]");
		err = ipc_send(k->fd, &r);
		free(s);
		break;
	}
	case IPC_RELOAD: {
		int rr = reload(p, why, sizeof(why));
		r = (struct ipc_msg){ .type = IPC_RELOADED, .id = m.id, .nfields = 2 };
		r.f[0] = ipc_i64(rr);
		r.f[1] = ipc_str(why);
		err = ipc_send(k->fd, &r);
		break;
	}
	case IPC_STOP:
		r.id = m.id;
		err = ipc_send(k->fd, &r);
		p->stopping = true;
		break;
	case IPC_KEYS_FLUSH:
		if (k->role != &role_dsr)
			return kill_role(k, "a request only the dsr role may make (protocol error)");
		err = flush_keys(p, m.id, k);
		break;
	default: return kill_role(k, "unexpected message (protocol error)");
	}
	if (err)
		say(4, "cannot answer %s: %s", k->role->name, strerror(-err));
}

/* --- children's lives ---------------------------------------------------- */

static bool crash_looping(struct child *k)
{
	time_t now = (time_t)(mono_us() / 1000000);

	memmove(k->recent + 1, k->recent, (MAX_RESTARTS - 1) * sizeof(*k->recent));
	k->recent[0] = now;
	return k->recent[MAX_RESTARTS - 1] && now - k->recent[MAX_RESTARTS - 1] < RESTART_WINDOW_S;
}

static void describe(int status, char *out, size_t n)
{
	if (WIFSIGNALED(status))
		snprintf(out, n, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(out, n, "exited with status %d", WEXITSTATUS(status));
}

/* Reaps dead roles and restarts them. -ECHILD when one keeps dying. */
static int reap(struct parent *p)
{
	int status, err = 0;
	pid_t pid;
	char how[64];

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *k = NULL;
		for (int i = 0; i < p->n; i++)
			if (p->kids[i].pid == pid)
				k = &p->kids[i];
		if (!k)
			continue;
		close(k->fd);
		k->fd = -1;
		k->pid = 0;
		k->ready = false;
		describe(status, how, sizeof(how));
		if (p->stopping)
			continue;
		say(3, "%s %s", k->role->name, how);
		if (crash_looping(k)) {
			say(2, "%s died %d times within %d s; stopping custosd", k->role->name, MAX_RESTARTS,
			    RESTART_WINDOW_S);
			err = -ECHILD;
			continue;
		}
		k->restarts++;
		int r = spawn(p, k);
		if (!r && (r = link_role(p, k->role->name)) == -EPIPE)
			r = 0; /* its peer died too: it is relinked when that one restarts */
		if (r) {
			say(2, "cannot restart %s: %s", k->role->name, strerror(-r));
			err = r;
		}
	}
	return err; /* sticky: a later successful restart does not hide a crash loop */
}

/* Waits until every role said it is ready. */
static int wait_ready(struct parent *p)
{
	int64_t deadline = mono_us() + START_TIMEOUT_S * 1000000LL;

	for (;;) {
		int ready = 0;
		struct pollfd pf[NROLES];
		for (int i = 0; i < p->n; i++) {
			ready += p->kids[i].ready;
			pf[i] = (struct pollfd){ p->kids[i].fd, POLLIN, 0 };
		}
		if (ready == p->n)
			return 0;
		for (int i = 0; i < p->n; i++)
			if (p->kids[i].pid <= 0)
				return -ECHILD;
		if (mono_us() > deadline)
			return -ETIMEDOUT;
		if (poll(pf, p->n, 200) > 0)
			for (int i = 0; i < p->n; i++)
				if (pf[i].revents)
					from_child(p, &p->kids[i]);
		pid_t pid;
		int status;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			for (int i = 0; i < p->n; i++)
				if (p->kids[i].pid == pid) {
					char how[64];
					describe(status, how, sizeof(how));
					say(2, "%s %s while starting", p->kids[i].role->name, how);
					p->kids[i].pid = 0;
				}
	}
}

/* Stops one role within STOP_TIMEOUT_S. */
static void stop_one(struct parent *p, struct child *k)
{
	struct ipc_msg m = { .type = IPC_STOP };

	p->stopping = true;
	if (k->pid <= 0)
		return;
	if (ipc_send(k->fd, &m))
		kill(k->pid, SIGTERM);
	for (int t = 0; t < STOP_TIMEOUT_S * 100; t++) {
		int status;
		if (waitpid(k->pid, &status, WNOHANG) == k->pid) {
			k->pid = 0;
			break;
		}
		usleep(10000);
	}
	if (k->pid > 0) {
		say(3, "%s did not stop within %d s; killing it", k->role->name, STOP_TIMEOUT_S);
		kill(k->pid, SIGKILL);
		waitpid(k->pid, NULL, 0);
		k->pid = 0;
	}
	close(k->fd);
	k->fd = -1;
}

/* Stops the roles in reverse order of start; the logger last, after it
 * recorded the stop. */
static void stop_all(struct parent *p, const char *result)
{
	sd_notify(0, "STOPPING=1");
	for (int i = p->n; i-- > 1;)
		stop_one(p, &p->kids[i]);
	if (note(p, "stop", result, "stop"))
		say(3, "cannot record the stop in the audit log");
	stop_one(p, &p->kids[0]);
}

/* --- the control socket and privileges ---------------------------------- */

static int listen_control(const struct cfg *c, uid_t uid, gid_t gid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0 || strlen(c->control_socket) >= sizeof(sa.sun_path))
		return fd < 0 ? -errno : -ENAMETOOLONG;
	strcpy(sa.sun_path, c->control_socket);
	char dir[sizeof(sa.sun_path)];
	snprintf(dir, sizeof(dir), "%s", c->control_socket);
	*strrchr(dir, '/') = 0;
	if (*dir && mkdir(dir, 0755) == 0) {
		/* ours: custosd (as its user) removes the socket when it stops */
		if (geteuid() == 0 && chown(dir, uid, (gid_t)-1))
			return close(fd), -errno;
	} else if (*dir && errno != EEXIST) {
		return close(fd), -errno;
	}
	/* a socket left by a custosd that died: nobody answers on it */
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(probe);
		close(fd);
		return -EADDRINUSE;
	}
	if (probe >= 0)
		close(probe);
	unlink(c->control_socket);
	mode_t old = umask(0117);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (!r && geteuid() == 0)
		r = chown(c->control_socket, uid, gid);
	if (!r)
		r = chmod(c->control_socket, 0660);
	if (!r)
		r = listen(fd, 64);
	if (r) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* One of the proxy's addresses: host:port, or a Unix socket path that
 * anyone may connect to (PostgreSQL's own authentication follows). */
static int listen_one(const char *addr)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai = NULL;
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	const struct sockaddr *sa = (const struct sockaddr *)&un;
	socklen_t salen = sizeof(un);
	char host[256];
	int one = 1, fd, r;

	if (*addr == '/') {
		snprintf(un.sun_path, sizeof(un.sun_path), "%s", addr);
		unlink(addr);
	} else {
		const char *colon = strrchr(addr, ':');
		snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
		if (*host == '[' && host[strlen(host) - 1] == ']') { /* [IPv6] */
			memmove(host, host + 1, strlen(host));
			host[strlen(host) - 1] = 0;
		}
		if ((r = getaddrinfo(host, colon + 1, &hints, &ai)))
			return -EADDRNOTAVAIL;
		sa = ai->ai_addr;
		salen = ai->ai_addrlen;
	}
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	r = fd < 0 ? -errno : 0;
	if (!r && sa->sa_family != AF_UNIX && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		r = -errno;
	if (!r && bind(fd, sa, salen))
		r = -errno;
	if (!r && sa->sa_family == AF_UNIX && chmod(addr, 0666))
		r = -errno;
	if (!r && listen(fd, 1024))
		r = -errno;
	if (ai)
		freeaddrinfo(ai);
	if (r && fd >= 0)
		close(fd);
	return r ? r : fd;
}

static int listen_proxy(const struct cfg *c)
{
	for (size_t i = 0; i < c->listen.n; i++) {
		int fd = listen_one(c->listen.v[i]);
		if (fd < 0) {
			say(2, "proxy: cannot listen on %s: %s", c->listen.v[i], strerror(-fd));
			return fd;
		}
		role_proxy_listen_fds[role_proxy_nlisten++] = fd;
	}
	return 0;
}

/* The user to run as (when started as root) and the control socket's group. */
static int lookup_ids(const struct cfg *c, uid_t *uid, gid_t *gid, gid_t *sock_gid)
{
	struct passwd *pw = getpwnam(c->user);
	struct group *gr = getgrnam(c->control_group);

	if (!pw) {
		say(2, "user %s does not exist (create it, or set user in the configuration)", c->user);
		return -ENOENT;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	*sock_gid = gr ? gr->gr_gid : pw->pw_gid;
	if (!gr)
		say(4, "group %s does not exist: the control socket's group is %s's own", c->control_group,
		    c->user);
	return 0;
}

/* --- checking a configuration -------------------------------------------- */

static void check_secret(const char *path, const char *what, struct buf *errs, int *n)
{
	struct stat st;

	if (!path || stat(path, &st))
		return; /* a missing file is reported by whoever opens it */
	if (st.st_mode & 077) {
		buf_printf(errs, "%s: %s is readable by group or others; chmod 0600 it\n", path, what);
		(*n)++;
	}
}

int parent_check_config(const char *path, struct cfg **ret, char **ret_text, struct buf *errs)
{
	struct cfg *c = cfg_new();
	char *text = NULL, state[4096];
	size_t len;
	int n = c ? read_file(path, CFG_MAX_FILE, &text, &len) : -ENOMEM;

	if (n) {
		buf_printf(errs, "%s: %s\n", path, n == -EFBIG ? "larger than 32 KiB" : strerror(-n));
		cfg_free(c);
		return n;
	}
	n = (int)cfg_parse(c, path, text, len, errs);
	struct policy *pol = pol_new();
	for (size_t i = 0; pol && i < c->policies.n; i++) {
		int r = pol_load(pol, c->policies.v[i], errs);
		if (r)
			buf_printf(errs, "%s: %s\n", c->policies.v[i], strerror(-r)), n++;
	}
	if (pol) {
		pol_check(pol, errs);
		n += (int)pol->errors;
	}
	pol_free(pol);
	check_secret(c->master_key, "the master key", errs, &n);
	check_secret(c->kek_file, "the KEK file", errs, &n);
	snprintf(state, sizeof(state), "%s/%s", c->log_dir, STATE_FILE);
	check_secret(state, "the log's key state", errs, &n);
	if (n) {
		cfg_free(c);
		cfg_free_text(text);
		return n;
	}
	*ret = c;
	*ret_text = text;
	return 0;
}

/* --- the main loop -------------------------------------------------------- */

/* The keeper locks its key cache in memory: as root (outside systemd,
 * where LimitMEMLOCK= does this) make room before dropping privileges. */
static void raise_memlock(const struct cfg *c)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)secure_heap_for(&role_keeper, c); /* per process: the keeper's is the largest */

	if (getrlimit(RLIMIT_MEMLOCK, &rl) || rl.rlim_cur >= need)
		return;
	if (geteuid() == 0 || rl.rlim_max >= need) {
		rl.rlim_cur = need;
		if (rl.rlim_max < need)
			rl.rlim_max = need;
		if (setrlimit(RLIMIT_MEMLOCK, &rl))
			say(4, "cannot raise the locked-memory limit: keys may be swapped out");
	}
}

static int start(struct parent *p)
{
	int err = 0;

	for (int i = 0; !err && i < p->n; i++)
		err = spawn(p, &p->kids[i]);
	/* a role that died at once cannot be linked: wait_ready says which */
	if (!err && link_role(p, NULL) == -EPIPE)
		usleep(100000);
	return err ? err : wait_ready(p);
}

/* Feeds systemd's watchdog when every role answered the last round of
 * pings, and pings again. A role that stops answering starves it. */
static void watchdog(struct parent *p)
{
	struct ipc_msg m = { .type = IPC_PING, .nfields = 1 };
	bool all = true;

	for (int i = 0; i < p->n; i++)
		all &= p->kids[i].pid > 0 && p->kids[i].pong >= p->ping;
	if (all || !p->ping)
		sd_notify(0, "WATCHDOG=1");
	m.f[0] = ipc_u64(++p->ping);
	for (int i = 0; i < p->n; i++)
		if (p->kids[i].pid > 0)
			(void)!ipc_send(p->kids[i].fd, &m);
}

static int on_signal(struct parent *p)
{
	struct signalfd_siginfo si;
	char why[256];

	if (read(p->sigfd, &si, sizeof(si)) != sizeof(si))
		return 0;
	switch (si.ssi_signo) {
	case SIGCHLD: return reap(p);
	case SIGHUP: (void)reload(p, why, sizeof(why)); return 0;
	default:
		say(6, "stopping (signal %u)", si.ssi_signo);
		p->stopping = true;
		return 0;
	}
}

static int loop(struct parent *p)
{
	int64_t last_status = 0, last_dog = 0;
	int err = 0;

	while (!p->stopping && !err) {
		struct pollfd pf[NROLES + 1];
		pf[0] = (struct pollfd){ p->sigfd, POLLIN, 0 };
		for (int i = 0; i < p->n; i++)
			pf[i + 1] = (struct pollfd){ p->kids[i].fd, p->kids[i].fd >= 0 ? POLLIN : 0, 0 };
		if (poll(pf, p->n + 1, 1000) < 0 && errno != EINTR)
			return -errno;
		if (pf[0].revents) {
			/* a role may have been restarted: its old revents mean nothing now */
			err = on_signal(p);
			continue;
		}
		for (int i = 0; i < p->n && !err; i++)
			if (pf[i + 1].revents && p->kids[i].fd >= 0)
				from_child(p, &p->kids[i]);
		int64_t now = mono_us() / 1000000; /* intervals: a stepped wall clock must not stretch them */
		if (p->watchdog_us && (uint64_t)(now - last_dog) * 2000000 >= p->watchdog_us) {
			watchdog(p);
			last_dog = now;
		}
		if (now - last_status >= 10) {
			notify_status(p);
			last_status = now;
		}
	}
	return err;
}

static int setup_signals(struct parent *p)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	p->sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	return p->sigfd < 0 ? -errno : 0;
}

/* Started as root: the state custosd writes becomes its user's (under
 * systemd, StateDirectory= does this). The log directory is flat. */
static void hand_over(const char *path, uid_t uid, gid_t gid, bool dir)
{
	if (lchown(path, uid, gid) && errno != ENOENT)
		say(4, "cannot hand %s to uid %u: %s", path, (unsigned)uid, strerror(errno));
	DIR *d = dir ? opendir(path) : NULL;
	for (struct dirent *e; d && (e = readdir(d));)
		if (e->d_name[0] != '.' || (e->d_name[1] && strcmp(e->d_name, "..")))
			if (fchownat(dirfd(d), e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW))
				say(4, "cannot hand %s/%s to uid %u", path, e->d_name, (unsigned)uid);
	if (d)
		closedir(d);
}

static int become_user(struct parent *p, uid_t uid, gid_t gid)
{
	if (geteuid() != 0)
		return 0;
	hand_over(p->o->cfg->log_dir, uid, gid, true);
	hand_over(p->o->cfg->kek_file, uid, gid, false);
	int err = privs_drop_user(uid, gid);
	if (err)
		say(2, "cannot drop to user %s: %s", p->o->cfg->user, strerror(-err));
	return err;
}

int parent_run(struct parent_opts *o)
{
	static struct parent p;
	uid_t uid = getuid();
	gid_t gid = getgid(), sock_gid = gid;
	int err;

	p = (struct parent){ .o = o, .sigfd = -1, .listen_fd = -1 };
	for (int i = 0; i < NROLES; i++)
		if (wanted(roles[i], o->cfg))
			p.kids[p.n++] = (struct child){ .role = roles[i], .fd = -1 };
	if (geteuid() == 0 && lookup_ids(o->cfg, &uid, &gid, &sock_gid))
		return 1;
	raise_memlock(o->cfg);
	if ((p.listen_fd = listen_control(o->cfg, uid, sock_gid)) < 0) {
		say(2, "control socket %s: %s", o->cfg->control_socket,
		    p.listen_fd == -EADDRINUSE ? "another custosd is answering on it"
		                               : strerror(-p.listen_fd));
		return 1;
	}
	role_control_listen_fd = p.listen_fd;
	if (listen_proxy(o->cfg) || setup_signals(&p) || become_user(&p, uid, gid))
		return 1;
	if (privs_sandbox_supported() == false)
		say(4, "this kernel has no Landlock: file access between roles rests on permissions alone");
	sd_watchdog_enabled(0, &p.watchdog_us);
	if ((err = start(&p))) {
		say(2, "cannot start: %s",
		    err == -ETIMEDOUT ? "a role did not get ready in time" : strerror(-err));
		stop_all(&p, "failed");
		unlink(o->cfg->control_socket);
		return 1;
	}
	(void)!note(&p, "start", "ok", "start");
	say(6, "running: log %s, control socket %s", o->cfg->log_dir, o->cfg->control_socket);
	sd_notify(0, "READY=1");
	notify_status(&p);
	err = loop(&p);
	stop_all(&p, err ? "failed" : "ok");
	unlink(o->cfg->control_socket);
	close(p.listen_fd);
	say(6, "stopped");
	return err ? 1 : 0;
}
