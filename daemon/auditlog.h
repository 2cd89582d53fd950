/* auditlog.h - the tamper-evident audit log: append, group commit,
 * checkpoints, segment rotation, crash recovery. One process writes a log
 * (the logger role); an flock on the directory enforces it. Records are
 * described in logrec.h, keys in logkey.h, segments in logseg.h. */
#ifndef CUSTOS_AUDITLOG_H
#define CUSTOS_AUDITLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "keyprov.h"
#include "logkey.h"
#include "util.h"

enum alog_durability {
	ALOG_SYNC,  /* an append returns once its record is on disk */
	ALOG_BATCH, /* fdatasync every batch_ms; a crash loses at most that window */
};

struct alog_opts {
	enum alog_durability durability;
	uint32_t batch_ms;           /* default 10 */
	uint64_t segment_bytes;      /* default 64 MiB */
	uint32_t checkpoint_records; /* default 10000 */
	uint32_t checkpoint_ms;      /* default 60000, idle or not */
	struct keyprov *kp;          /* needed for records that name subjects */
	/* Called (without locks held) with every durable checkpoint: the
	 * anchor in the Linux audit trail. A nonzero return fails appends. */
	int (*on_checkpoint)(void *arg, const uint8_t log_id[LOG_ID_LEN], uint64_t seq,
	                     const uint8_t hash[LOG_HASH_LEN]);
	void *arg;
};

struct alog_actor {
	const char *user, *app, *addr, *session, *tls;
};

struct alog_subject {
	const char *type, *id; /* the log keeps a ref and the id encrypted */
};

struct alog_rec {
	const char *type; /* [a-z_]{1,32} */
	const struct alog_actor *actor;
	const char *table;
	const char *const *columns;
	size_t ncolumns;
	const struct alog_subject *subjects;
	size_t nsubjects;
	const char *fingerprint;
	const char *statement; /* normalised: constants replaced by $n */
	int64_t rows;          /* < 0 when not applicable */
	const char *detail;    /* a JSON object rendered by trusted code, or NULL */
};

struct alog;

/* Signs a report's digest bound to record seq (logkey_sign_report) with
 * the checkpoint key; the log's id in ret_log_id. */
int alog_sign_report(struct alog *l, uint64_t seq, const uint8_t digest[32], uint8_t ret_sig[64],
                     uint8_t ret_log_id[16]) WUR;

/* Creates a new log in dir and the verification key file keyout (0400).
 * Refuses to overwrite anything. 0 or a negative errno, err says why. */
int alog_create(const char *dir, const char *keyout, char *err, size_t errlen) WUR;
/* Opens a log for appending, recovering from a crash if needed. */
int alog_open(const char *dir, const struct alog_opts *o, struct alog **ret, char *err, size_t errlen) WUR;
/* Appends a record; in sync mode returns once it is durable. 0 or a
 * negative errno (-ENOSPC, -EIO, ...): the record was not logged. */
int alog_append(struct alog *l, const struct alog_rec *r, uint64_t *ret_seq) WUR;
/* The same in two steps, so that one thread can have many records in
 * flight and share their fdatasync: alog_submit queues a record (0, or
 * the error that refused it); alog_wait waits for it like alog_append and
 * frees the ticket. Wait for tickets in the order they were made. A lazy
 * record is one nothing waits on: in sync mode alog_wait returns once it
 * is in the chain, and it is made durable within batch_ms, with the next
 * group commit. */
struct alog_ticket;
int alog_submit(struct alog *l, const struct alog_rec *r, bool lazy, struct alog_ticket **ret) WUR;
int alog_wait(struct alog *l, struct alog_ticket *t, uint64_t *ret_seq) WUR;
/* Writes a checkpoint now and makes everything durable. */
int alog_checkpoint(struct alog *l) WUR;
/* Full segments waiting to be compressed by the background sealer. */
size_t alog_unsealed(struct alog *l);
/* The last durable record. */
void alog_head(struct alog *l, uint64_t *ret_seq, uint8_t ret_hash[LOG_HASH_LEN]);
/* Writes a final checkpoint, flushes and closes. NULL is a no-op. */
int alog_close(struct alog *l);

#define ALOG_SUBJECT_CTX "audit-log/subject-id"

#endif
