/* logmsg.h - an audit record on its way to the logger: one IPC_LOG_APPEND
 * message carries an alog_rec (logrec.h's fields, before chaining) and an
 * optional security event for the Linux audit trail. Every role that
 * records (parent, control, proxy) encodes with logmsg_encode; the logger
 * decodes with logmsg_decode, which bounds everything it accepts. */
#ifndef CUSTOS_LOGMSG_H
#define CUSTOS_LOGMSG_H

#include "auditlog.h"
#include "ipc.h"

#define LOGMSG_MAX_COLUMNS 256
#define LOGMSG_MAX_SUBJECTS 256

/* Lists inside one string field: items end with LOGMSG_ITEM; a subject is
 * "type" LOGMSG_PART "id". Names and ids holding either byte are refused. */
#define LOGMSG_ITEM '\x1e'
#define LOGMSG_PART '\x1f'

struct logmsg {
	struct alog_rec rec;
	struct alog_actor actor;
	const char *event; /* "" or NULL: none */
	bool lazy;         /* nothing waits on it: durable with the next group, unanswered */
	/* decode's storage */
	const char *columns[LOGMSG_MAX_COLUMNS];
	struct alog_subject subjects[LOGMSG_MAX_SUBJECTS];
};

/* Encodes r (and event) into m; the lists are rendered into lists, which
 * must outlive m. 0, or -EINVAL when a name or id holds a separator,
 * -E2BIG over the limits. */
int logmsg_encode(const struct alog_rec *r, const char *event, bool lazy, struct buf *lists,
                  struct ipc_msg *m) WUR;

/* Decodes m (its strings are split in place) into out. 0 or -EBADMSG. */
int logmsg_decode(struct ipc_msg *m, struct logmsg *out) WUR;

struct role_env;
/* Records r (and event) through the role's logger and waits until it is
 * durable: 0 with its sequence number in *ret_seq (may be NULL), or an
 * error (-ENOTCONN: no logger): then it was not recorded. */
int logmsg_record(struct role_env *env, const struct alog_rec *r, const char *event, uint64_t *ret_seq) WUR;

#endif
