/* role_control.c - the control role: the Unix control socket. Each caller
 * is identified by the kernel (SO_PEERCRED, SO_PEERGROUPS) and authorised
 * per command against the groups of custosd.conf; root may run anything.
 * Every request, allowed or refused, becomes an audit record before it
 * runs; one that cannot be recorded does not run. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "control_log.h"
#include "ctlproto.h"
#include "logfollow.h"
#include "logmsg.h"
#include "role.h"

#define MAX_CLIENTS 64
#define MAX_FOLLOWERS 64
#define FOLLOW_TICK_MS 200
#define FOLLOW_BATCH 2000 /* records per follower per tick */
#define CLIENT_TIMEOUT_S 10
#define CALL_TIMEOUT_MS 10000
#define ROTATE_TIMEOUT_S 3600 /* without news from the keeper, a rotation's client waits no longer */
#define RUN_TIMEOUT_MS 600000 /* a report or an erasure */

struct client {
	int fd;
	struct ucred cred;
	gid_t groups[64];
	int ngroups;
	int64_t since;   /* accepted at, mono_us() in seconds */
	size_t len, cap; /* cap: the request limit when it connected */
	char *buf;
};

/* A `log follow` client: it gets new records until it hangs up. */
struct follower {
	int fd;
	uid_t uid;
	struct lfollow *lf;
};

/* The client that started the running key rotation: control goes on
 * serving others and answers it (and records the outcome) once key status
 * shows the rotation's end. */
struct rotation_wait {
	struct client cl; /* fd -1: none */
	uint64_t id;
	/* a rotation this control role found running when it started (its
	 * predecessor's, which died waiting): its outcome is recorded all the
	 * same, with no client to tell */
	bool adopted;
	bool looked; /* whether it has asked the keeper yet */
};

struct control {
	int listen_fd;
	struct client c[MAX_CLIENTS];
	size_t n;
	struct follower f[MAX_FOLLOWERS];
	size_t nf;
	struct rotation_wait rot;
	struct pollfd pfd[MAX_CLIENTS + 1];
	uint8_t reply_buf[IPC_MAX_MSG + 1];
};

static size_t per_uid(const struct control *ct, uid_t uid)
{
	size_t n = 0;
	for (size_t i = 0; i < ct->n; i++)
		n += ct->c[i].cred.uid == uid;
	for (size_t i = 0; i < ct->nf; i++)
		n += ct->f[i].uid == uid;
	return n + (ct->rot.cl.fd >= 0 && ct->rot.cl.cred.uid == uid);
}

static void sync_pollfds(struct role_env *env, struct control *ct)
{
	ct->pfd[0] = (struct pollfd){ ct->listen_fd, POLLIN, 0 };
	for (size_t i = 0; i < ct->n; i++)
		ct->pfd[i + 1] = (struct pollfd){ ct->c[i].fd, POLLIN, 0 };
	env->extra = ct->pfd;
	env->nextra = ct->n + 1;
}

static void drop_client(struct role_env *env, struct control *ct, size_t i)
{
	close(ct->c[i].fd);
	free(ct->c[i].buf);
	ct->c[i] = ct->c[--ct->n];
	sync_pollfds(env, ct);
}

static void send_line(int fd, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	if (s) {
		size_t n = strlen(s);
		s[n] = '\n';
		(void)!send(fd, s, n + 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		free(s);
	}
	json_decref(j);
}

static void reply_error(int fd, const char *msg)
{
	send_line(fd, json_pack("{s:i, s:b, s:s}", "v", CP_VERSION, "ok", 0, "error", msg));
}

static void reply_ok(int fd, json_t *result)
{
	send_line(fd, json_pack("{s:i, s:b, s:o}", "v", CP_VERSION, "ok", 1, "result",
	                        result ? result : json_object()));
}

static void accept_client(struct role_env *env, struct control *ct)
{
	int fd = accept4(ct->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct client cl = { .fd = fd, .since = mono_us() / 1000000 };
	socklen_t len = sizeof(cl.cred), glen = sizeof(cl.groups);

	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cl.cred, &len) < 0) {
		close(fd);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, cl.groups, &glen) == 0)
		cl.ngroups = (int)(glen / sizeof(gid_t));
	if (ct->n == MAX_CLIENTS || per_uid(ct, cl.cred.uid) >= env->cfg->control_max_clients) {
		reply_error(fd, "too many connections from this user; try again later");
		close(fd);
		return;
	}
	cl.cap = env->cfg->control_max_request;
	if (!(cl.buf = malloc(cl.cap + 1))) {
		close(fd);
		return;
	}
	ct->c[ct->n++] = cl;
	sync_pollfds(env, ct);
}

static const char *group_setting(const struct cfg *c, enum cp_group g)
{
	return g == CP_SECURITY ? c->security_group : g == CP_DPO ? c->dpo_group : c->admin_group;
}

static bool authorised(const struct cfg *c, const struct client *cl, enum cp_group g)
{
	struct group gr, *res = NULL;
	char b[4096];

	if (cl->cred.uid == 0)
		return true;
	if (getgrnam_r(group_setting(c, g), &gr, b, sizeof(b), &res) || !res)
		return false;
	if (cl->cred.gid == res->gr_gid)
		return true;
	for (int i = 0; i < cl->ngroups; i++)
		if (cl->groups[i] == res->gr_gid)
			return true;
	return false;
}

/* "uid=1000(alice)": who asked, for the audit record. */
static void who(const struct client *cl, char *out, size_t n)
{
	struct passwd pw, *res = NULL;
	char b[4096];

	if (!getpwuid_r(cl->cred.uid, &pw, b, sizeof(b), &res) && res)
		snprintf(out, n, "uid=%u(%s)", (unsigned)cl->cred.uid, res->pw_name);
	else
		snprintf(out, n, "uid=%u", (unsigned)cl->cred.uid);
}

/* Records the request. 0, or an error: the request must not run. */
static int record_note(struct role_env *env, const struct client *cl, const char *cmd, const char *result,
                       const char *event, const char *note)
{
	char user[128], detail[384];
	struct alog_actor actor = { .user = user, .app = "custosctl" };
	struct alog_rec rec = { .type = "control", .actor = &actor, .rows = -1, .detail = detail };

	who(cl, user, sizeof(user));
	snprintf(detail, sizeof(detail), "{\"command\":\"%s\",\"result\":\"%s\",\"pid\":%d%s%s%s}", cmd,
	         result, (int)cl->cred.pid, note ? ",\"note\":\"" : "", note ? note : "", note ? "\"" : "");
	return logmsg_record(env, &rec, event, NULL);
}

static int record(struct role_env *env, const struct client *cl, const char *cmd, const char *result,
                  const char *event)
{
	return record_note(env, cl, cmd, result, event, NULL);
}

/* The reply each request expects. */
static enum ipc_type reply_to(enum ipc_type t)
{
	switch (t) {
	case IPC_LOG_STATUS_REQ: return IPC_LOG_STATUS;
	case IPC_KEYS_STATUS_REQ: return IPC_KEYS_STATUS;
	case IPC_KEYS_ROTATE: return IPC_KEYS_ROTATED;
	case IPC_RELOAD: return IPC_RELOADED;
	case IPC_ROLES_REQ: return IPC_ROLES;
	default: return IPC_OK;
	}
}

/* Asks a role; the reply lands in *ret. An IPC_ERROR reply becomes the
 * error message for the client. */
static int ask(struct role_env *env, struct control *ct, const char *role, enum ipc_type type, int timeout,
               struct ipc_msg *ret, char *why, size_t whylen)
{
	struct ipc_msg m = { .type = type };
	int fd = strcmp(role, "parent") ? role_peer(env, role) : env->parent;
	int err = fd < 0 ? -ENOTCONN : role_call(env, fd, &m, ct->reply_buf, ret, timeout);

	if (!err && ret->type == IPC_ERROR) {
		snprintf(why, whylen, "%s: %s", role, ret->f[1].s.p);
		return -EIO;
	}
	if (!err && ret->type != reply_to(type)) {
		snprintf(why, whylen, "%s: an unexpected reply", role);
		return -EBADMSG;
	}
	if (err)
		snprintf(why, whylen, "%s: %s", role, err == -ENOTCONN ? "not running" : strerror(-err));
	return err;
}

static json_t *hex_json(const uint8_t *p, size_t n)
{
	char h[65];
	hex_encode(p, n < 32 ? n : 32, h);
	return json_string(h);
}

static json_t *log_status(struct role_env *env, struct control *ct)
{
	struct ipc_msg r;
	char why[256];

	if (ask(env, ct, "logger", IPC_LOG_STATUS_REQ, CALL_TIMEOUT_MS, &r, why, sizeof(why)))
		return json_pack("{s:s}", "error", why);
	char ts[TS_LEN + 1] = "";
	if (r.f[7].u)
		ts_format((int64_t)r.f[7].u, ts);
	return json_pack("{s:I, s:o, s:I, s:s, s:I, s:I, s:I, s:I, s:s}", "head_seq", (json_int_t)r.f[0].u,
	                 "head_hash", hex_json(r.f[1].h, 32), "last_checkpoint_seq", (json_int_t)r.f[6].u,
	                 "last_checkpoint_ts", ts, "checkpoints", (json_int_t)r.f[2].u, "anchors_sent",
	                 (json_int_t)r.f[3].u, "anchors_failed", (json_int_t)r.f[4].u, "appended",
	                 (json_int_t)r.f[5].u, "anchor_mode",
	                 env->cfg->anchor == CFG_ANCHOR_REQUIRED ? "required"
	                 : env->cfg->anchor == CFG_ANCHOR_OFF    ? "off"
	                                                         : "best-effort");
}

/* The last rotation, from IPC_KEYS_STATUS. */
static json_t *rotation_json(const struct ipc_msg *r)
{
	if (r->f[KS_ROT_RUNNING].u)
		return json_pack("{s:b}", "running", 1);
	if (r->f[KS_ROT_FAILED].u)
		return json_pack("{s:b, s:s, s:s}", "running", 0, "result", "failed", "error",
		                 r->f[KS_ROT_WHY].s.p);
	return json_pack("{s:b, s:s, s:I, s:I}", "running", 0, "result", "ok", "epoch",
	                 (json_int_t)r->f[KS_ROT_EPOCH].u, "rewrapped", (json_int_t)r->f[KS_ROT_REWRAPPED].u);
}

static json_t *keys_status(struct role_env *env, struct control *ct)
{
	struct ipc_msg r;
	char why[256];

	if (ask(env, ct, "keeper", IPC_KEYS_STATUS_REQ, CALL_TIMEOUT_MS, &r, why, sizeof(why)))
		return json_pack("{s:s}", "error", why);
	json_t *k = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "epoch", (json_int_t)r.f[0].u,
	                      "subject_keys", (json_int_t)r.f[1].u, "free_keys", (json_int_t)r.f[2].u,
	                      "shredded_subjects", (json_int_t)r.f[3].u, "dead_keys", (json_int_t)r.f[4].u,
	                      "cached_keys", (json_int_t)r.f[5].u, "cache_limit", (json_int_t)r.f[6].u);
	if (k && r.f[KS_ROT_ID].u) /* a rotation since the keeper started */
		json_object_set_new(k, "rotation", rotation_json(&r));
	return k;
}

static void do_status(struct role_env *env, struct control *ct, int fd)
{
	struct ipc_msg r;
	char why[256];
	json_t *roles = NULL;

	if (!ask(env, ct, "parent", IPC_ROLES_REQ, CALL_TIMEOUT_MS, &r, why, sizeof(why)))
		roles = json_loads(r.f[0].s.p, 0, NULL);
	reply_ok(fd, json_pack("{s:o, s:o, s:o}", "roles", roles ? roles : json_pack("{s:s}", "error", why),
	                       "log", log_status(env, ct), "keys", keys_status(env, ct)));
}

/* Runs an admin command that returns a status and message (reload) or a
 * result (stop). */
static void do_simple(struct role_env *env, struct control *ct, int fd, enum cp_cmd cmd, const char **outcome)
{
	struct ipc_msg r;
	char why[512];

	*outcome = "failed";
	switch (cmd) {
	case CP_KEYS_STATUS: {
		json_t *k = keys_status(env, ct);
		if (json_object_get(k, "error"))
			reply_error(fd, json_string_value(json_object_get(k, "error")));
		else
			reply_ok(fd, k), k = NULL;
		json_decref(k);
		return;
	}
	case CP_RELOAD:
		if (ask(env, ct, "parent", IPC_RELOAD, CALL_TIMEOUT_MS, &r, why, sizeof(why)))
			return reply_error(fd, why);
		if (r.f[0].i)
			return reply_error(fd, r.f[1].s.p);
		*outcome = "ok";
		return reply_ok(fd, json_pack("{s:s}", "message", r.f[1].s.p));
	case CP_STOP:
		if (ask(env, ct, "parent", IPC_STOP, CALL_TIMEOUT_MS, &r, why, sizeof(why)))
			return reply_error(fd, why);
		*outcome = "ok";
		return reply_ok(fd, NULL);
	default: return;
	}
}

/* Starts a key rotation; true when it runs (the client waits for its end,
 * which check_rotation tells it). */
static bool start_rotation(struct role_env *env, struct control *ct, struct client *cl, const char **outcome)
{
	struct ipc_msg r;
	char why[512];

	*outcome = "failed";
	if (ct->rot.cl.fd >= 0 || ct->rot.adopted) { /* its end not told yet: one at a time */
		reply_error(cl->fd, "a key rotation is already running");
		return false;
	}
	if (ask(env, ct, "keeper", IPC_KEYS_ROTATE, CALL_TIMEOUT_MS, &r, why, sizeof(why))) {
		reply_error(cl->fd, why);
		return false;
	}
	ct->rot = (struct rotation_wait){ .cl = *cl, .id = r.f[0].u, .looked = true };
	ct->rot.cl.buf = NULL;
	ct->rot.cl.len = 0;
	ct->rot.cl.since = mono_us() / 1000000;
	return true;
}

static void end_rotation(struct role_env *env, struct control *ct, const char *outcome)
{
	(void)!record_note(env, &ct->rot.cl, "keys-rotate", outcome, "key-rotation",
	                   ct->rot.adopted ? "the control role restarted during the rotation: its requester, "
	                                     "recorded when asking, was not told"
	                                   : NULL);
	if (ct->rot.cl.fd >= 0)
		close(ct->rot.cl.fd);
	ct->rot.cl.fd = -1;
	ct->rot.adopted = false;
}

/* A rotation running when this control role started: the one its
 * predecessor waited on. Its requester was recorded then; its outcome
 * is recorded when it ends, under custosd's own user. */
static void adopt_rotation(struct control *ct, const struct ipc_msg *r)
{
	ct->rot.looked = true;
	if (!r->f[KS_ROT_RUNNING].u)
		return;
	ct->rot = (struct rotation_wait){ .id = r->f[KS_ROT_ID].u, .adopted = true, .looked = true };
	ct->rot.cl.fd = -1;
	ct->rot.cl.cred = (struct ucred){ getpid(), geteuid(), getegid() };
	ct->rot.cl.since = mono_us() / 1000000;
}

static void tell(int fd, const char *why)
{
	if (fd >= 0)
		reply_error(fd, why);
}

/* Answers the client of a rotation that ended, from key status. */
static void check_rotation(struct role_env *env, struct control *ct)
{
	struct ipc_msg r;
	char why[512];

	if (ct->rot.cl.fd < 0 && !ct->rot.adopted && ct->rot.looked)
		return;
	if (ask(env, ct, "keeper", IPC_KEYS_STATUS_REQ, CALL_TIMEOUT_MS, &r, why, sizeof(why))) {
		if (!ct->rot.looked)
			return; /* the keeper is not up yet: ask at the next tick */
		if (mono_us() / 1000000 - ct->rot.cl.since <= ROTATE_TIMEOUT_S)
			return; /* the keeper is restarting, or its keystore: ask again */
		tell(ct->rot.cl.fd, why);
		return end_rotation(env, ct, "unknown");
	}
	if (!ct->rot.looked)
		return adopt_rotation(ct, &r);
	if (r.f[KS_ROT_ID].u == ct->rot.id && r.f[KS_ROT_RUNNING].u) {
		ct->rot.cl.since = mono_us() / 1000000; /* news: it runs */
		return;
	}
	if (r.f[KS_ROT_ID].u != ct->rot.id) {
		tell(ct->rot.cl.fd, "the keeper restarted during the rotation, so its outcome is unknown: "
		                    "`custosctl keys status` tells the epoch now");
		return end_rotation(env, ct, "unknown");
	}
	if (r.f[KS_ROT_FAILED].u) {
		snprintf(why, sizeof(why), "keeper: %s", r.f[KS_ROT_WHY].s.p);
		tell(ct->rot.cl.fd, why);
		return end_rotation(env, ct, "failed");
	}
	if (ct->rot.cl.fd >= 0)
		reply_ok(ct->rot.cl.fd, json_pack("{s:I, s:I}", "epoch", (json_int_t)r.f[KS_ROT_EPOCH].u,
		                                  "rewrapped", (json_int_t)r.f[KS_ROT_REWRAPPED].u));
	end_rotation(env, ct, "ok");
}

/* Turns the client into a follower. true when it was (the connection
 * stays open). */
static bool start_follow(struct role_env *env, struct control *ct, struct client *cl)
{
	struct lfollow *lf;
	int err = ct->nf == MAX_FOLLOWERS ? -EMFILE : lf_open(env->cfg->log_dir, &lf);

	if (err) {
		char msg[128];
		snprintf(msg, sizeof(msg), "cannot follow the log: %s", strerror(-err));
		reply_error(cl->fd, msg);
		return false;
	}
	reply_ok(cl->fd, json_pack("{s:I}", "after_seq", (json_int_t)lf_last(lf)));
	ct->f[ct->nf++] = (struct follower){ cl->fd, cl->cred.uid, lf };
	return true;
}

static void drop_follower(struct control *ct, size_t i)
{
	close(ct->f[i].fd);
	lf_close(ct->f[i].lf);
	ct->f[i] = ct->f[--ct->nf];
}

/* Sends one record, whole, or nothing yet (-EAGAIN) while the client's
 * socket has no room: a slow reader is paused, not buffered for. */
static int send_record(void *arg, const char *line, size_t len)
{
	int fd = *(int *)arg, queued = 0, cap = 0;
	socklen_t sl = sizeof(cap);
	struct iovec v[2] = { { (void *)line, len }, { "\n", 1 } };
	struct msghdr mh = { .msg_iov = v, .msg_iovlen = 2 };

	if (ioctl(fd, SIOCOUTQ, &queued) || getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cap, &sl))
		return -EPIPE;
	if (queued > 0 && (size_t)(cap - queued) < 2 * (len + 1))
		return -EAGAIN; /* an empty queue takes any record: the send may then block briefly */
	ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	return n == (ssize_t)len + 1 ? 0 : n < 0 && errno == EAGAIN ? -EAGAIN : -EPIPE;
}

static void feed_followers(struct control *ct)
{
	char c;

	for (size_t i = ct->nf; i-- > 0;) {
		/* a follower only listens: readable means it hung up (or misbehaves) */
		if (recv(ct->f[i].fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) >= 0 || errno != EAGAIN) {
			drop_follower(ct, i);
			continue;
		}
		int r = lf_poll(ct->f[i].lf, send_record, &ct->f[i].fd, FOLLOW_BATCH);
		if (r < 0 && r != -EAGAIN)
			drop_follower(ct, i); /* gone, or fell a whole sealed segment behind */
	}
}

/* The caller's login name, or "uid=N". */
static void login(const struct client *cl, char *out, size_t n)
{
	struct passwd pw, *res = NULL;
	char b[4096];

	if (!getpwuid_r(cl->cred.uid, &pw, b, sizeof(b), &res) && res)
		snprintf(out, n, "%s", res->pw_name);
	else
		snprintf(out, n, "uid=%u", (unsigned)cl->cred.uid);
}

/* A subject-request command: the dsr role answers it. */
static void do_dsr(struct role_env *env, struct control *ct, const struct client *cl,
                   const struct cp_request *req, const char **outcome)
{
	char user[128], why[512];
	struct ipc_msg r, m = { .type = IPC_DSR_CALL, .nfields = 4 };
	int fd = role_peer(env, "dsr");

	*outcome = "failed";
	if (strlen(req->args) > IPC_MAX_STR)
		return reply_error(cl->fd, "the request's arguments are too long");
	login(cl, user, sizeof(user));
	m.f[0] = ipc_str(cp_commands[req->cmd].name);
	m.f[1] = ipc_u64(cl->cred.uid);
	m.f[2] = ipc_str(user);
	m.f[3] = ipc_str(req->args);
	int err = fd < 0 ? -ENOTCONN
	                 : role_call(env, fd, &m, ct->reply_buf, &r,
	                             req->cmd == CP_REQUEST_RUN ? RUN_TIMEOUT_MS : CALL_TIMEOUT_MS);
	if (err == -ENOTCONN) /* the role holds no connection string: it cannot tell which it is */
		return reply_error(cl->fd,
		                   "subject requests need the dsr role, which is not running: it runs "
		                   "when custosd.conf sets database (the customer database)");
	if (err) {
		snprintf(why, sizeof(why), "dsr: %s", strerror(-err));
		return reply_error(cl->fd, why);
	}
	if (r.type == IPC_ERROR)
		return reply_error(cl->fd, r.f[1].s.p);
	json_t *result = r.type == IPC_DSR_RESULT ? json_loads(r.f[0].s.p, 0, NULL) : NULL;
	if (!result)
		return reply_error(cl->fd, "dsr: an unexpected reply");
	*outcome = "ok";
	reply_ok(cl->fd, result);
}

/* Returns true when the client's connection was kept (a follower). */
static bool run_request(struct role_env *env, struct control *ct, struct client *cl, size_t len)
{
	struct cp_request req;
	char err[256];
	bool kept = false;

	if (cp_parse(cl->buf, len, &req, err, sizeof(err))) {
		(void)!record(env, cl, "(malformed)", "refused", "control-refused");
		reply_error(cl->fd, err);
		return false;
	}
	const struct cp_command *c = &cp_commands[req.cmd];
	if (!authorised(env->cfg, cl, c->group)) {
		snprintf(err, sizeof(err), "refused: %s needs membership in the %s group (%s)", c->name,
		         cp_group_names[c->group], group_setting(env->cfg, c->group));
		int rec = record(env, cl, c->name, "refused", "control-refused");
		reply_error(cl->fd, rec ? "refused, and the refusal could not be recorded" : err);
		goto out;
	}
	bool changes = req.cmd == CP_RELOAD || req.cmd == CP_KEYS_ROTATE || req.cmd == CP_STOP;
	if (record(env, cl, c->name, "allowed", "")) { /* fail closed */
		reply_error(cl->fd, "the request cannot be recorded in the audit log, so it does not run");
		goto out;
	}
	const char *outcome = "ok";
	if (req.cmd == CP_LOG_FOLLOW)
		kept = start_follow(env, ct, cl);
	else if (req.cmd == CP_KEYS_ROTATE)
		kept = start_rotation(env, ct, cl, &outcome); /* recorded when it ends */
	else if (req.cmd == CP_LOG_READ || req.cmd == CP_LOG_VERIFY) {
		if (cls_start(env->cfg->log_dir, cl->fd, req.cmd, req.args, err, sizeof(err)))
			reply_error(cl->fd, err); /* else the reader answers */
	} else if (req.cmd == CP_STATUS)
		do_status(env, ct, cl->fd);
	else if (c->dsr)
		do_dsr(env, ct, cl, &req, &outcome);
	else
		do_simple(env, ct, cl->fd, req.cmd, &outcome);
	if (changes && !kept)
		(void)!record(env, cl, c->name, outcome, req.cmd == CP_KEYS_ROTATE ? "key-rotation" : "");
out:
	free(req.args);
	return kept;
}

/* Reads from a client; runs its request once a whole line is in. */
static void read_client(struct role_env *env, struct control *ct, size_t i)
{
	struct client *cl = &ct->c[i];
	size_t max = cl->cap; /* a reload may change the setting, not this buffer */
	ssize_t n = recv(cl->fd, cl->buf + cl->len, max + 1 - cl->len, 0);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		return drop_client(env, ct, i);
	cl->len += (size_t)n;
	char *nl = memchr(cl->buf, '\n', cl->len);
	if (!nl && cl->len > max) {
		char msg[96];
		snprintf(msg, sizeof(msg), "request larger than %zu bytes", max);
		reply_error(cl->fd, msg);
	} else if (nl) {
		if (run_request(env, ct, cl, (size_t)(nl - cl->buf))) {
			cl->fd = -1; /* a follower, or the rotation's wait, owns the connection now */
			free(cl->buf);
			ct->c[i] = ct->c[--ct->n];
			sync_pollfds(env, ct);
			return;
		}
	} else {
		return;
	}
	drop_client(env, ct, i);
}

static int on_extra(struct role_env *env, struct pollfd *p)
{
	struct control *ct = env->state;

	if (p->fd == ct->listen_fd)
		accept_client(env, ct);
	for (size_t i = 0; i < ct->n; i++)
		if (ct->c[i].fd == p->fd) {
			read_client(env, ct, i);
			break;
		}
	return 0;
}

static int on_tick(struct role_env *env)
{
	struct control *ct = env->state;
	int64_t now = mono_us() / 1000000;

	check_rotation(env, ct);
	feed_followers(ct);
	cls_reap();
	for (size_t i = ct->n; i-- > 0;)
		if (now - ct->c[i].since > CLIENT_TIMEOUT_S) {
			reply_error(ct->c[i].fd, "timed out waiting for a request");
			drop_client(env, ct, i);
		}
	return 0;
}

static int handle(struct role_env *env, int fd, struct ipc_msg *m)
{
	(void)fd;
	if (m->type == IPC_CONFIG)
		return 0; /* groups and limits are read from env->cfg at each request */
	role_log(3, env->name, "unexpected %s message: protocol error", ipc_type_name(m->type));
	return -EBADMSG;
}

int role_control_listen_fd = -1; /* set by the parent before it forks */

static int control_main(struct role_env *env)
{
	static struct control ct;

	ct.listen_fd = role_control_listen_fd;
	ct.rot.cl.fd = -1;
	env->state = &ct;
	env->on_extra = on_extra;
	env->on_tick = on_tick;
	env->tick_ms = FOLLOW_TICK_MS;
	sync_pollfds(env, &ct);
	int err = role_ready(env);
	if (!err)
		check_rotation(env, &ct); /* a rotation its predecessor waited on, before any client */
	if (!err)
		err = role_serve(env, handle);
	while (ct.n)
		drop_client(env, &ct, ct.n - 1);
	while (ct.nf)
		drop_follower(&ct, ct.nf - 1);
	return err ? 1 : 0;
}

const struct role role_control = { "control", control_main, false, 0 };
