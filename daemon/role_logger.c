/* role_logger.c - the logger: the only writer of the audit log. It appends
 * the records the other roles send (IPC_LOG_APPEND), reports the log's
 * head, and anchors every checkpoint in the Linux audit trail. With
 * `anchor = required` a failed anchor fails the append, like a failed
 * write; with best-effort it is counted and reported. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cap-ng.h>

#include "anchors.h"
#include "auditlog.h"
#include "keyclient.h"
#include "linuxaudit.h"
#include "logmsg.h"
#include "logrec.h"
#include "role.h"

#define KEY_TTL_S 10                 /* a shredded subject's key leaves the logger within this */
#define INIT_USER_NS_INO 0xEFFFFFFDu /* PROC_USER_INIT_INO */

#define BATCH_MAX 256

struct pending {
	struct alog_ticket *t;
	uint32_t id;
	int err;
	bool lazy; /* unanswered: nothing waits on it */
	char event[LR_MAX_TYPE + 17];
};

struct logger {
	struct alog *log;
	struct la audit;
	enum cfg_anchor anchor;
	uint64_t appended, checkpoints, anchors_ok, anchors_failed, failing;
	uint64_t last_cp_seq;
	int64_t last_cp_us;
	struct keyprov *kp; /* the keeper's subject keys */
	struct logmsg decoded;
	struct pending batch[BATCH_MAX];
	struct ipc_msg replies[BATCH_MAX];
};

static int on_checkpoint(void *arg, const uint8_t log_id[LOG_ID_LEN], uint64_t seq,
                         const uint8_t hash[LOG_HASH_LEN])
{
	struct logger *lg = arg;
	struct buf text = BUF_INIT;

	lg->checkpoints++;
	lg->last_cp_seq = seq;
	lg->last_cp_us = now_us();
	if (lg->anchor == CFG_ANCHOR_OFF)
		return 0;
	anchor_format(&text, log_id, seq, hash);
	buf_addc(&text, 0);
	int err = text.failed ? -ENOMEM : la_send(&lg->audit, text.p, true);
	buf_free(&text);
	if (err) {
		if (lg->anchors_failed++ == 0 || lg->anchor == CFG_ANCHOR_REQUIRED)
			role_log(lg->anchor == CFG_ANCHOR_REQUIRED ? 2 : 4, "logger",
			         "cannot anchor checkpoint %llu in the Linux audit trail%s",
			         (unsigned long long)seq,
			         lg->anchor == CFG_ANCHOR_REQUIRED ? "; appends fail until it works again"
			                                           : "");
		return lg->anchor == CFG_ANCHOR_REQUIRED ? -EIO : 0;
	}
	lg->anchors_ok++;
	return 0;
}

static int append(struct logger *lg, const struct alog_rec *r, uint64_t *ret_seq)
{
	int err = alog_append(lg->log, r, ret_seq);

	if (!err) {
		lg->appended++;
		lg->failing = 0;
	}
	return err;
}

/* A record that cannot be written fails the access it records (fail
 * closed); the first failure of a run is also a security event. */
static void fail_closed(struct role_env *env, struct logger *lg, int err)
{
	if (lg->failing++)
		return;
	role_log(2, env->name, "cannot append to the audit log (%s): the accesses it records are refused",
	         strerror(-err));
	if (lg->anchor != CFG_ANCHOR_OFF)
		(void)!la_send(&lg->audit, "op=custos-fail-closed", false);
}

/* A security event goes to the Linux audit trail too, pointing at its
 * record: "op=custos-<event> seq=<N>". */
static void security_event(struct role_env *env, struct logger *lg, const char *event, uint64_t seq)
{
	char text[128];

	if (lg->anchor == CFG_ANCHOR_OFF || strspn(event, "abcdefghijklmnopqrstuvwxyz-") != strlen(event) ||
	    strlen(event) > 48)
		return;
	snprintf(text, sizeof(text), "op=custos-%s seq=%llu", event, (unsigned long long)seq);
	if (la_send(&lg->audit, text, true) && lg->anchor == CFG_ANCHOR_REQUIRED)
		role_log(3, env->name, "cannot send security event %s to the Linux audit trail", event);
}

static int reply_status(struct logger *lg, int fd, uint32_t id)
{
	struct ipc_msg m = { .type = IPC_LOG_STATUS, .id = id, .nfields = 8 };
	uint64_t seq;

	m.f[1].kind = 'h';
	alog_head(lg->log, &seq, m.f[1].h);
	m.f[0] = ipc_u64(seq);
	m.f[2] = ipc_u64(lg->checkpoints);
	m.f[3] = ipc_u64(lg->anchors_ok);
	m.f[4] = ipc_u64(lg->anchors_failed);
	m.f[5] = ipc_u64(lg->appended);
	m.f[6] = ipc_u64(lg->last_cp_seq);
	m.f[7] = ipc_u64((uint64_t)lg->last_cp_us);
	return ipc_send(fd, &m);
}

/* Appends arriving together share one fdatasync: the logger takes every
 * append already waiting on the channel (up to BATCH_MAX), queues them
 * all, then waits for each and answers, in order, those that are not lazy
 * (logmsg.h); the answers go out together. A lazy record that fails is
 * not answered either: the failure is logged and the next record that is
 * waited on fails too (the log stays failed until it recovers). */
static int submit(struct logger *lg, struct ipc_msg *m, struct pending *p)
{
	struct logmsg *lm = &lg->decoded;

	p->id = m->id;
	p->t = NULL;
	if (m->type != IPC_LOG_APPEND || logmsg_decode(m, lm))
		return -EBADMSG;
	snprintf(p->event, sizeof(p->event), "%s", lm->event);
	p->lazy = lm->lazy;
	p->err = alog_submit(lg->log, &lm->rec, lm->lazy, &p->t);
	return 0;
}

/* Waits for one record and makes its answer in r. */
static void answer(struct role_env *env, struct logger *lg, struct pending *p, struct ipc_msg *r)
{
	uint64_t seq = 0;
	int err = p->err ? p->err : alog_wait(lg->log, p->t, &seq);

	if (err) {
		fail_closed(env, lg, err);
		*r = (struct ipc_msg){ .type = IPC_ERROR, .id = p->id, .nfields = 2 };
		r->f[0] = ipc_i64(err);
		r->f[1] = ipc_str(strerror(-err));
		return;
	}
	lg->appended++;
	lg->failing = 0;
	if (*p->event)
		security_event(env, lg, p->event, seq);
	*r = (struct ipc_msg){ .type = IPC_LOG_APPENDED, .id = p->id, .nfields = 1 };
	r->f[0] = ipc_u64(seq);
}

/* Waits for the n records submitted and sends their answers. */
static int answer_all(struct role_env *env, int fd, size_t n)
{
	struct logger *lg = env->state;
	size_t nr = 0;

	for (size_t i = 0; i < n; i++) {
		if (!lg->batch[i].t && !lg->batch[i].err)
			continue; /* the malformed one that ended it */
		answer(env, lg, &lg->batch[i], &lg->replies[nr]);
		nr += !lg->batch[i].lazy; /* a lazy record is not answered: its sender keeps no state */
	}
	return ipc_send_many(fd, lg->replies, nr); /* the answers together: one wakeup */
}

/* Submits m's record, or each of a batch's (answering the group so far
 * whenever it is full). */
static int take(struct role_env *env, int fd, struct ipc_msg *m, size_t *n)
{
	struct logger *lg = env->state;
	struct ipc_msg one;
	size_t at = 0;
	int r, err;

	if (m->type == IPC_LOG_APPEND)
		return submit(lg, m, &lg->batch[(*n)++]);
	while ((r = ipc_unframe(&m->f[0], &at, &one)) > 0) {
		if (*n == BATCH_MAX) {
			err = answer_all(env, fd, *n);
			*n = 0; /* answered, or failed: either way done with */
			if (err)
				return err;
		}
		if ((err = submit(lg, &one, &lg->batch[(*n)++])))
			return err;
	}
	return r;
}

static int handle(struct role_env *env, int fd, struct ipc_msg *m);

static int append_batch(struct role_env *env, int fd, struct ipc_msg *m)
{
	size_t n = 0;
	int err = take(env, fd, m, &n), rerr = 0;
	bool other = false;

	while (!err && n < BATCH_MAX && !(rerr = ipc_recv_flags(fd, env->buf, m, MSG_DONTWAIT))) {
		if (m->type != IPC_LOG_APPEND && m->type != IPC_LOG_BATCH) {
			other = true;
			break;
		}
		err = take(env, fd, m, &n);
	}
	int serr = answer_all(env, fd, n);
	if (!err)
		err = serr;
	if (err)
		return err;
	if (rerr && rerr != -EAGAIN && rerr != -EWOULDBLOCK)
		return rerr == -EPIPE ? 0 : rerr; /* a closed peer: role_serve sees it next */
	return other ? handle(env, fd, m) : 0;
}

/* A report or certificate: a record noting its digest, and a signature
 * over both (logkey_sign_report). Only the dsr asks. */
static int sign_report(struct role_env *env, struct logger *lg, int fd, struct ipc_msg *m)
{
	char detail[160], dhex[65], sighex[2 * LOG_SIG_LEN + 1], idhex[2 * LOG_ID_LEN + 1];
	uint8_t sig[LOG_SIG_LEN], log_id[LOG_ID_LEN];
	struct alog_actor actor = { .app = "custosd" };
	struct alog_rec rec = { .type = "report", .actor = &actor, .rows = -1, .detail = detail };
	uint64_t seq;

	if (fd != role_peer(env, "dsr"))
		return ipc_send_error(fd, m->id, -EPERM, "only the dsr role has reports signed");
	hex_encode(m->f[1].h, 32, dhex);
	snprintf(detail, sizeof(detail), "{\"request\":%" PRIu64 ",\"sha256\":\"%s\"}", m->f[0].u, dhex);
	int err = alog_append(lg->log, &rec, &seq);
	if (!err)
		err = alog_sign_report(lg->log, seq, m->f[1].h, sig, log_id);
	if (err)
		return ipc_send_error(fd, m->id, err, "the report cannot be recorded and signed");
	lg->appended++;
	hex_encode(sig, sizeof(sig), sighex);
	hex_encode(log_id, sizeof(log_id), idhex);
	struct ipc_msg r = { .type = IPC_LOG_SIGNED, .id = m->id, .nfields = 3 };
	r.f[0] = ipc_u64(seq);
	r.f[1] = ipc_str(sighex);
	r.f[2] = ipc_str(idhex);
	return ipc_send(fd, &r);
}

static int handle(struct role_env *env, int fd, struct ipc_msg *m)
{
	struct logger *lg = env->state;

	switch (m->type) {
	case IPC_LOG_APPEND:
	case IPC_LOG_BATCH: return append_batch(env, fd, m);
	case IPC_LOG_SIGN: return sign_report(env, lg, fd, m);
	case IPC_LOG_STATUS_REQ: return reply_status(lg, fd, m->id);
	case IPC_CONFIG: return 0; /* durability and intervals apply at the next start */
	default:
		role_log(3, env->name, "unexpected %s message: protocol error", ipc_type_name(m->type));
		return -EBADMSG;
	}
}

/* anchor = required: CAP_AUDIT_WRITE in the initial user namespace (the
 * kernel ignores audit messages from others) and a running auditd. */
static const char *anchor_missing(struct logger *lg)
{
	struct stat self;

	capng_get_caps_process();
	if (!capng_have_capability(CAPNG_EFFECTIVE, CAP_AUDIT_WRITE))
		return "custosd does not hold CAP_AUDIT_WRITE";
	if (stat("/proc/self/ns/user", &self) == 0 && self.st_ino != INIT_USER_NS_INO)
		return "custosd runs in a user namespace other than the initial one";
	if (la_open(&lg->audit))
		return "the Linux audit trail cannot be opened (no audit in this kernel?)";
	if (!la_auditd_running(&lg->audit))
		return "no auditd is running to receive the anchors";
	return NULL;
}

static int open_log(struct role_env *env, struct logger *lg)
{
	const struct cfg *c = env->cfg;
	struct alog_opts o = {
		.durability = c->durability,
		.segment_bytes = c->segment_bytes,
		.checkpoint_records = (uint32_t)c->checkpoint_records,
		.checkpoint_ms = (uint32_t)(c->checkpoint_seconds * 1000),
		.on_checkpoint = on_checkpoint,
		.arg = lg,
		.kp = lg->kp,
	};
	char err[512];

	lg->anchor = c->anchor;
	const char *missing = lg->anchor == CFG_ANCHOR_REQUIRED ? anchor_missing(lg) : NULL;
	if (missing) {
		role_log(2, env->name, "anchor = required, but %s", missing);
		return -EIO;
	}
	if (lg->anchor == CFG_ANCHOR_BEST_EFFORT && lg->audit.fd < 0 && la_open(&lg->audit))
		role_log(4, env->name, "the Linux audit trail cannot be opened; anchoring is off");
	int r = alog_open(c->log_dir, &o, &lg->log, err, sizeof(err));
	if (r) {
		role_log(2, env->name, "%s", err);
		if (r == -EBADMSG && lg->anchor != CFG_ANCHOR_OFF) /* the log was tampered with or damaged */
			(void)!la_send(&lg->audit, "op=custos-tamper-found", false);
		return -EIO;
	}
	return 0;
}

static int logger_main(struct role_env *env)
{
	static struct logger lg = { .audit = { .fd = -1 } };
	struct alog_actor actor = { .app = "custosd" };
	struct alog_rec rec = { .type = "service", .actor = &actor, .rows = -1 };
	uint64_t seq;
	char detail[64];

	env->state = &lg;
	if (!(lg.kp = kcl_new(env, KEY_TTL_S, KCL_SLOTS_LOGGER))) {
		role_log(2, env->name, "cannot lock memory for subject keys");
		return 1;
	}
	env->keys = lg.kp;
	if (open_log(env, &lg))
		return 1;
	snprintf(detail, sizeof(detail), "{\"role\":\"logger\",\"pid\":%ld}", (long)getpid());
	rec.detail = detail;
	int err = append(&lg, &rec, &seq);
	if (!err)
		err = role_ready(env);
	if (!err)
		err = role_serve(env, handle);
	int cerr = alog_close(lg.log); /* a final checkpoint */
	if (cerr)
		role_log(3, env->name, "closing the audit log: %s", strerror(-cerr));
	la_close(&lg.audit);
	keyprov_free(lg.kp);
	return err || cerr ? 1 : 0;
}

const struct role role_logger = { "logger", logger_main, true, 0 };
