/* auditlog_int.h - the writer's state, shared by auditlog.c (appending)
 * and logopen.c (creating, loading, recovering). Not for other modules. */
#ifndef CUSTOS_AUDITLOG_INT_H
#define CUSTOS_AUDITLOG_INT_H

#include <pthread.h>

#include "auditlog.h"
#include "buf.h"
#include "logrec.h"
#include "logseg.h"

#define STATE_FILE "log.state"
#define PUB_FILE "log.pub"
#define LOCK_FILE "lock"

struct anode;

struct alog {
	pthread_mutex_t mu;
	pthread_cond_t cv;       /* io finished, durability advanced, rotation done */
	pthread_cond_t flush_cv; /* wakes the flusher */
	pthread_cond_t seal_cv;  /* wakes the sealer */
	struct alog_opts o;
	char *dir;
	int dirfd, lockfd, segfd, statefd;

	/* Chain and keys, under mu. st is in secure memory. */
	struct logstate *st, *st_snap;
	uint64_t st_on_disk; /* epoch the state file holds */
	struct lr_mac *mac;
	uint64_t next_seq;
	uint8_t head[LOG_HASH_LEN];
	bool last_is_cp;
	uint64_t since_cp, last_cp_seq;
	uint8_t last_cp_hash[LOG_HASH_LEN];
	int64_t last_cp_us;   /* this and the other _us times here: mono_us's clock */
	int64_t last_tick_us; /* the flusher's last pass (batch mode ticks from it) */

	/* Writing: records are formatted into pending; one thread at a time
	 * (io_busy) writes a swapped-out buffer and fdatasyncs. */
	struct buf pending, spare;
	bool io_busy, rotating;
	uint64_t pending_recs; /* records in pending */
	bool flusher_idle;     /* waiting for work: appenders signal flush_cv */
	/* sync mode: records someone waits on are synced at once; lazy ones
	 * (alog_submit) within batch_ms, with whatever comes along */
	uint64_t eager_pending;  /* formatted, not yet being synced */
	uint32_t eager_incoming; /* pushed, not yet formatted (atomic) */
	int64_t last_sync_us;
	int64_t flusher_wake_us; /* when the idle flusher means to wake */
	uint64_t written_seq, durable_seq;
	uint8_t durable_head[LOG_HASH_LEN];
	uint64_t seg_first, seg_size, seg_written;
	bool seg_prefilled; /* the active segment has filler after its data */
	int failed;         /* sticky: appends recover first */
	uint64_t gen;       /* bumped by each failure */
#define LOST_GENS 16
	uint64_t lost_from[LOST_GENS]; /* per failed generation: its first lost record */
	uint32_t tick;          /* futex word: bumped when appends progress (durable, formatted, failed) */
	struct anode *incoming; /* appends waiting for whoever holds mu (lock-free stack) */

	/* Background: the flusher (group commit, batch fsync, timed
	 * checkpoints) and the sealer (compresses full segments). */
	pthread_t flusher, sealer;
	bool stop, threads, spare_ready;
	struct seginfo *seal_q;
	size_t seal_n, seal_cap;
};

/* What loading found that a recovery record must state. */
struct alog_cut {
	uint64_t bytes, offset;
	uint8_t sha256[LOG_HASH_LEN];
	char segment[SEG_NAME_MAX];
};

/* logopen.c */
int alog_load(struct alog *l, struct alog_cut *ret_cut, char *err, size_t errlen) WUR;
void alog_unload(struct alog *l);
int alog_new_segment(struct alog *l) WUR;
int alog_write_state(struct alog *l, const struct logstate *s) WUR;

/* auditlog.c */
int alog_queue_seal(struct alog *l, const struct seginfo *s) WUR;

#endif
