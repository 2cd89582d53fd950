/* control_log.c - the control role's side of `custosctl log show | export
 * | verify` without --dir: the log read or verified by custosd for a
 * member of the security group who cannot read its directory. Each runs
 * in a child process of its own, so that a long read never holds up the
 * control socket: the child answers the client, streams what it asked
 * for, and exits; the control role reaps it.
 *
 *   log-read {since, until, type, subject_ref} -> {"ok":true} then the
 *     records' exact lines, then {"custos_end":{"records":N}} or
 *     {"custos_end":{"error":"FAIL seq=N: ..."}}
 *   log-verify -> {"ok":true,"result":{"ok":..., "records", "head_seq",
 *     "head_hash", "unsigned_tail" | "fail_seq", "reason"}}, with the
 *     public key in the log directory (log.pub): chain and signatures. */
#define _GNU_SOURCE
#include "control_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctlproto.h"
#include "logread.h"
#include "logverify.h"

#define MAX_READERS 4

static pid_t readers[MAX_READERS];

static void send_json(int fd, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	if (s) {
		size_t n = strlen(s);
		s[n] = '\n';
		(void)!write_all(fd, s, n + 1);
		free(s);
	}
	json_decref(j);
}

static int send_line(void *arg, json_t *rec, const char *line, size_t len)
{
	struct iovec v[2] = { { (void *)line, len }, { "\n", 1 } };
	struct msghdr m = { .msg_iov = v, .msg_iovlen = 2 };
	int fd = *(int *)arg;

	(void)rec;
	return sendmsg(fd, &m, MSG_NOSIGNAL) == (ssize_t)len + 1 ? 0 : -EPIPE;
}

int cls_filter(const char *args, struct lrd_filter *f, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j = json_loads(args, JSON_REJECT_DUPLICATES, &je);
	const char *since = NULL, *until = NULL, *type = NULL, *ref = NULL;
	int r = -EINVAL;

	*f = (struct lrd_filter){ 0 };
	if (!j || json_unpack_ex(j, &je, JSON_STRICT, "{s?s, s?s, s?s, s?s}", "since", &since, "until",
	                         &until, "type", &type, "subject_ref", &ref))
		snprintf(err, errlen, "log-read: %s", j ? je.text : "arguments are not JSON");
	else if ((since && !ts_parse(since, &f->since)) || (until && !ts_parse(until, &f->until)))
		snprintf(err, errlen,
		         "log-read: since and until are times (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)");
	else if (type && (!*type || strlen(type) > 32 ||
	                  strspn(type, "abcdefghijklmnopqrstuvwxyz_-") != strlen(type)))
		snprintf(err, errlen, "log-read: type is a record type, such as access");
	else if (ref && (strlen(ref) != 64 || strspn(ref, "0123456789abcdef") != 64))
		snprintf(err, errlen, "log-read: subject_ref is 64 hexadecimal digits");
	else
		r = 0;
	f->has_since = since != NULL;
	f->has_until = until != NULL;
	f->type = !r && type ? strdup(type) : NULL;
	f->subject_ref = !r && ref ? strdup(ref) : NULL;
	json_decref(j);
	return r;
}

static void child_read(const char *dir, int fd, const struct lrd_filter *f)
{
	struct lrd_error e = { 0 };

	send_json(fd, json_pack("{s:i, s:b, s:{}}", "v", CP_VERSION, "ok", 1, "result"));
	int r = lrd_each(dir, f, send_line, &fd, &e);
	if (r == -EPIPE)
		return; /* the client went away */
	char msg[400];
	if (r == 1)
		snprintf(msg, sizeof(msg), "FAIL seq=%" PRIu64 ": %s", e.seq, e.reason);
	else if (r)
		snprintf(msg, sizeof(msg), "%s", *e.reason ? e.reason : strerror(-r));
	send_json(fd, r ? json_pack("{s:{s:s}}", "custos_end", "error", msg)
	                : json_pack("{s:{s:b}}", "custos_end", "done", 1));
}

static void child_verify(const char *dir, int fd)
{
	char path[4096], *text = NULL, err[512], hex[2 * LOG_HASH_LEN + 1];
	size_t len;
	struct logkeys k;
	struct lv_result res;

	snprintf(path, sizeof(path), "%s/log.pub", dir);
	int r = read_file(path, SECRET_TEXT_MAX, &text, &len);
	if (!r && logkey_parse(text, len, &k, err, sizeof(err)))
		r = -EINVAL;
	free(text);
	struct lv_opts o = { &k, NULL, 0 };
	if (!r && (r = lv_verify(dir, &o, &res, err, sizeof(err))) == 0) {
		hex_encode(res.head_hash, LOG_HASH_LEN, hex);
		json_t *result =
		    res.ok ? json_pack("{s:b, s:I, s:I, s:s, s:I}", "ok", 1, "records",
		                       (json_int_t)res.records, "head_seq", (json_int_t)res.head_seq,
		                       "head_hash", hex, "unsigned_tail", (json_int_t)res.unsigned_tail)
		           : json_pack("{s:b, s:I, s:s}", "ok", 0, "fail_seq", (json_int_t)res.fail_seq,
		                       "reason", res.reason);
		send_json(fd, json_pack("{s:i, s:b, s:o}", "v", CP_VERSION, "ok", 1, "result", result));
		return;
	}
	snprintf(path, sizeof(path), "the log cannot be verified: %s",
	         r == -EINVAL ? "log.pub is not readable" : err);
	send_json(fd, json_pack("{s:i, s:b, s:s}", "v", CP_VERSION, "ok", 0, "error", path));
}

static int free_slot(void)
{
	for (int i = 0; i < MAX_READERS; i++)
		if (!readers[i])
			return i;
	return -1;
}

int cls_start(const char *dir, int fd, enum cp_cmd cmd, const char *args, char *err, size_t errlen)
{
	struct lrd_filter f;

	if (cmd == CP_LOG_READ && cls_filter(args, &f, err, errlen))
		return -EINVAL;
	cls_reap();
	int slot = free_slot();
	if (slot < 0) {
		snprintf(err, errlen, "%d log reads are running: try again when one ends", MAX_READERS);
		if (cmd == CP_LOG_READ) {
			free((char *)f.type);
			free((char *)f.subject_ref);
		}
		return -EBUSY;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "cannot start a reader: %s", strerror(errno));
		return -errno;
	}
	if (pid == 0) { /* the reader: nothing of the role's but the client */
		signal(SIGPIPE, SIG_IGN);
		for (int i = 3; i < 1024; i++)
			if (i != fd)
				close(i);
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK); /* it may wait for a slow client */
		if (cmd == CP_LOG_READ)
			child_read(dir, fd, &f);
		else
			child_verify(dir, fd);
		_exit(0);
	}
	if (cmd == CP_LOG_READ) {
		free((char *)f.type);
		free((char *)f.subject_ref);
	}
	readers[slot] = pid;
	return 0;
}

void cls_reap(void)
{
	for (int i = 0; i < MAX_READERS; i++)
		if (readers[i] && waitpid(readers[i], NULL, WNOHANG) == readers[i])
			readers[i] = 0;
}
