/* auditlog.c - appending to the audit log: records (their bodies are logbody.c's), group commit,
 * checkpoints, rotation and the background flusher and sealer. Opening,
 * creating and crash recovery are in logopen.c. */
#define _GNU_SOURCE
#include "auditlog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "auditlog_int.h"
#include "jsonw.h"
#include "logbody.h"
#include "secmem.h"

#define BATCH_WRITE_BYTES (1u << 20) /* batch mode writes (unsynced) past this */

static const struct alog_opts defaults = {
	.durability = ALOG_SYNC,
	.batch_ms = 10,
	.segment_bytes = 64u << 20,
	.checkpoint_records = 10000,
	.checkpoint_ms = 60000,
};

/* Durability waiters sleep on a futex, not on mu: a group of them wakes
 * and returns at once instead of queueing for the mutex one by one. */
static void wake_durable(struct alog *l)
{
	__atomic_add_fetch(&l->tick, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &l->tick, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* A write failed: records of this generation after durable_seq are lost
 * (remembered per generation, so their waiters can tell), and appends
 * recover from disk first. */
static void fail_locked(struct alog *l, int err)
{
	if (!l->failed) {
		__atomic_store_n(&l->failed, err, __ATOMIC_RELAXED);
		__atomic_store_n(&l->lost_from[l->gen % LOST_GENS], l->durable_seq + 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&l->gen, 1, __ATOMIC_RELEASE);
		wake_durable(l);
	}
}

/* ---- appending, under mu ---------------------------------------------- */

static int alog_append_locked(struct alog *l, const char *type, const struct buf *body, uint64_t *ret_seq)
{
	size_t start = l->pending.len;
	uint64_t seq = l->next_seq;

	lr_begin(&l->pending, seq, now_us(), type);
	buf_add(&l->pending, body->p, body->len);
	int r = lr_finish(&l->pending, start, l->head, l->mac, l->head);
	if (r) {
		l->pending.len = start; /* nothing of it remains */
		l->pending.failed = false;
		return r;
	}
	l->next_seq++;
	l->pending_recs++;
	l->seg_size += l->pending.len - start;
	l->last_is_cp = false;
	l->since_cp++;
	if (ret_seq)
		*ret_seq = seq;
	return 0;
}

int alog_sign_report(struct alog *l, uint64_t seq, const uint8_t digest[32], uint8_t ret_sig[64],
                     uint8_t ret_log_id[16])
{
	memcpy(ret_log_id, l->st->log_id, LOG_ID_LEN); /* neither it nor the signing key ever changes */
	return logkey_sign_report(l->st->sign_key, l->st->log_id, seq, digest, ret_sig);
}

/* Appends a checkpoint over the current head and advances the epoch. */
static int checkpoint_locked(struct alog *l)
{
	uint8_t sig[LOG_SIG_LEN];
	struct buf body = BUF_INIT;
	uint64_t seq;
	struct lr_mac *next;
	int r = logkey_sign(l->st->sign_key, l->st->log_id, l->next_seq, l->st->epoch, l->head, sig);

	if (r)
		return r;
	lr_checkpoint_body(&body, l->st->epoch, sig);
	r = body.failed ? -ENOMEM : alog_append_locked(l, "checkpoint", &body, &seq);
	buf_free(&body);
	if (r)
		return r;
	logkey_ratchet(l->st->mac_key, l->st->mac_key);
	l->st->epoch++;
	next = lr_mac_new(l->st->mac_key);
	if (!next) {
		fail_locked(l, -ENOMEM); /* the key is gone: only a reload recovers */
		return -ENOMEM;
	}
	lr_mac_free(l->mac);
	l->mac = next;
	l->last_is_cp = true;
	l->since_cp = 0;
	l->last_cp_seq = seq;
	memcpy(l->last_cp_hash, l->head, LOG_HASH_LEN);
	l->last_cp_us = mono_us();
	return 0;
}

/* ---- writing ---------------------------------------------------------- */

/* What one flush writes, snapshotted under mu. */
struct flush {
	struct buf *b;
	uint64_t upto;
	uint8_t head[LOG_HASH_LEN];
	bool sync, state, anchor;
	uint64_t cp_seq;
	uint8_t cp_hash[LOG_HASH_LEN];
	uint64_t off;
};

static int pwrite_all(int fd, const char *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* The slow part of a flush, run without mu (io_busy keeps others out). */
static int flush_io(struct alog *l, struct flush *f)
{
	int r = pwrite_all(l->segfd, f->b->p, f->b->len, f->off);

	if (!r && f->sync && fdatasync(l->segfd) < 0)
		r = -errno;
	if (!r && f->state)
		r = alog_write_state(l, l->st_snap);
	if (!r && f->anchor && l->o.on_checkpoint)
		r = l->o.on_checkpoint(l->o.arg, l->st->log_id, f->cp_seq, f->cp_hash) ? -EIO : 0;
	return r;
}

/* Writes what is pending, and fdatasyncs when sync. Called and returns
 * with mu held; releases it during the I/O. */
static int flush_locked(struct alog *l, bool sync)
{
	while (l->io_busy)
		pthread_cond_wait(&l->cv, &l->mu);
	if (l->failed)
		return l->failed;
	if (l->pending.len == 0 && (!sync || l->durable_seq == l->written_seq))
		return 0;
	struct flush f = { .b = &l->spare, .upto = l->next_seq - 1, .sync = sync, .off = l->seg_written };
	buf_swap(&l->pending, &l->spare);
	l->pending_recs = 0;
	if (sync) {
		l->eager_pending = 0;
		l->last_sync_us = mono_us();
	}
	memcpy(f.head, l->head, LOG_HASH_LEN);
	if (sync && l->st_on_disk < l->st->epoch && l->last_cp_seq <= f.upto) {
		*l->st_snap = *l->st; /* the state after the newest checkpoint */
		f.state = true;
	}
	if (sync && l->last_cp_seq > l->durable_seq && l->last_cp_seq <= f.upto) {
		f.anchor = true;
		f.cp_seq = l->last_cp_seq;
		memcpy(f.cp_hash, l->last_cp_hash, LOG_HASH_LEN);
	}
	l->io_busy = true;
	pthread_mutex_unlock(&l->mu);
	int r = flush_io(l, &f);
	pthread_mutex_lock(&l->mu);
	l->io_busy = false;
	if (r) {
		fail_locked(l, r);
	} else {
		l->seg_written += f.b->len;
		l->written_seq = f.upto;
		if (sync) {
			memcpy(l->durable_head, f.head, LOG_HASH_LEN);
			__atomic_store_n(&l->durable_seq, f.upto, __ATOMIC_RELEASE);
			wake_durable(l);
		}
		if (f.state)
			l->st_on_disk = l->st_snap->epoch;
	}
	buf_reset(f.b);
	pthread_cond_broadcast(&l->cv);
	return r;
}

/* Ends the active segment with a checkpoint and starts the next one. The
 * mutex is released during the flush: rotating keeps everyone else from
 * appending meanwhile, and a second rotation waits for the first. */
static int rotate_locked(struct alog *l)
{
	while (l->rotating)
		pthread_cond_wait(&l->cv, &l->mu);
	if (l->seg_size == 0)
		return 0; /* nothing to end (another thread just rotated) */
	int r = l->last_is_cp ? 0 : checkpoint_locked(l);

	l->rotating = true;
	if (!r)
		r = flush_locked(l, true);
	struct seginfo old = { .first = l->seg_first };
	logseg_name(old.first, false, old.name);
	if (!r && !(r = alog_new_segment(l))) {
		l->spare_ready = l->o.durability == ALOG_BATCH;
		r = alog_queue_seal(l, &old);
	}
	if (r)
		fail_locked(l, r);
	l->rotating = false;
	pthread_cond_broadcast(&l->cv);
	pthread_cond_signal(&l->flush_cv); /* it sleeps through rotations */
	return r;
}

/* ---- recovery from a failed write ------------------------------------- */

static int append_recovery(struct alog *l, const struct alog_cut *cut, int after_err, uint64_t lost)
{
	struct buf b = BUF_INIT;
	char hex[2 * LOG_HASH_LEN + 1];

	if (cut->bytes) {
		hex_encode(cut->sha256, LOG_HASH_LEN, hex);
		buf_printf(
		    &b, ",\"cut\":{\"segment\":\"%s\",\"offset\":%llu,\"bytes\":%llu,\"sha256\":\"%s\"}",
		    cut->segment, (unsigned long long)cut->offset, (unsigned long long)cut->bytes, hex);
	}
	if (after_err) {
		buf_adds(&b, ",\"after_error\":");
		jw_str(&b, strerror(-after_err));
		buf_printf(&b, ",\"discarded_unacknowledged\":%llu", (unsigned long long)lost);
	}
	int r = b.failed ? -ENOMEM : alog_append_locked(l, "recovery", &b, NULL);
	buf_free(&b);
	return r ? r : flush_locked(l, true);
}

/* After a failed write: reload from disk and note what was lost. */
static int recover_locked(struct alog *l)
{
	struct alog_cut cut;
	char err[256];
	int failed = l->failed;
	uint64_t lost_from = l->written_seq + 1, upto = l->next_seq - 1;

	alog_unload(l);
	int r = alog_load(l, &cut, err, sizeof(err));
	if (r)
		return r; /* still failed; the next append tries again */
	l->failed = 0;
	if (l->next_seq > lost_from)
		lost_from = l->next_seq;
	r = append_recovery(l, &cut, failed, upto >= lost_from ? upto - lost_from + 1 : 0);
	if (r) {
		alog_unload(l);
		fail_locked(l, r);
	}
	return r;
}

/* ---- the public API --------------------------------------------------- */

/* Each appending thread renders into a buffer of its own, freed when the
 * thread ends. */
static pthread_key_t body_key;
static pthread_once_t body_once = PTHREAD_ONCE_INIT;

static void body_free(void *p)
{
	buf_free(p);
	free(p);
}

static void body_key_init(void)
{
	if (pthread_key_create(&body_key, body_free))
		abort(); /* only fails when the process is out of keys at start */
}

static struct buf *body_buf(void)
{
	pthread_once(&body_once, body_key_init);
	struct buf *b = pthread_getspecific(body_key);
	if (!b && (b = calloc(1, sizeof(*b))) && pthread_setspecific(body_key, b)) {
		free(b);
		b = NULL;
	}
	if (b)
		buf_reset(b);
	return b;
}

/* ---- appending: flat combining -----------------------------------------
 *
 * An appender pushes its record onto a lock-free stack and tries to take
 * mu; whoever holds mu formats every record waiting there (chain, MAC),
 * so a group of appenders arriving together does not queue on the mutex
 * one by one. Appenders then sleep on a futex until their record is
 * durable (sync) or formatted (batch), helping to combine if they find
 * their record still waiting. */

struct anode {
	struct anode *next;
	const char *type;
	const struct buf *body;
	bool lazy;         /* nobody waits for it to be durable */
	uint64_t seq, gen; /* set when done */
	int err;
	uint32_t done; /* formatted or refused: seq, gen, err are set */
};

static void push_node(struct alog *l, struct anode *n)
{
	if (!n->lazy)
		__atomic_add_fetch(&l->eager_incoming, 1, __ATOMIC_RELAXED);
	n->next = __atomic_load_n(&l->incoming, __ATOMIC_RELAXED);
	while (
	    !__atomic_compare_exchange_n(&l->incoming, &n->next, n, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

/* Formats one record into pending, with the checkpoint or rotation it
 * makes due. After done is set the node belongs to its appender again. */
static void format_node(struct alog *l, struct anode *n)
{
	int r = 0;

	if (l->failed && !l->io_busy)
		r = recover_locked(l);
	else if (l->failed)
		r = l->failed;
	if (!r)
		r = alog_append_locked(l, n->type, n->body, &n->seq);
	if (!n->lazy) {
		l->eager_pending++;
		__atomic_sub_fetch(&l->eager_incoming, 1, __ATOMIC_RELAXED);
	}
	n->gen = l->gen; /* a failure of what follows fails this record too */
	if (!r && l->since_cp >= l->o.checkpoint_records && (r = checkpoint_locked(l)))
		fail_locked(l, r);
	if (!r && l->seg_size >= l->o.segment_bytes)
		(void)rotate_locked(l); /* a failure is sticky and bumps gen */
	n->err = r;
	__atomic_store_n(&n->done, 1, __ATOMIC_RELEASE);
}

#define COMBINE_LATER SIZE_MAX

/* Formats everything queued, oldest first. Returns how many records of
 * other appenders it formatted, or COMBINE_LATER during a rotation. */
static size_t combine_locked(struct alog *l, const struct anode *self)
{
	struct anode *list, *fifo, *next;
	size_t others = 0;

	if (l->rotating)
		return COMBINE_LATER; /* the rotating thread combines once the new segment is in place */
	while ((list = __atomic_exchange_n(&l->incoming, NULL, __ATOMIC_ACQUIRE))) {
		for (fifo = NULL; list; list = next) {
			next = list->next;
			list->next = fifo;
			fifo = list;
		}
		for (; fifo; fifo = next) {
			next = fifo->next;
			others += fifo != self;
			format_node(l, fifo);
		}
	}
	/* lazy records only: wake the flusher if it sleeps past their window */
	if (l->o.durability == ALOG_SYNC && l->flusher_idle && l->pending_recs &&
	    (l->eager_pending || l->flusher_wake_us > l->last_sync_us + (int64_t)l->o.batch_ms * 1000))
		pthread_cond_signal(&l->flush_cv);
	else if (l->o.durability == ALOG_BATCH && l->pending.len >= BATCH_WRITE_BYTES)
		(void)flush_locked(l, false); /* a failure is sticky */
	return others;
}

static void try_combine(struct alog *l, const struct anode *self)
{
	while (__atomic_load_n(&l->incoming, __ATOMIC_ACQUIRE) && pthread_mutex_trylock(&l->mu) == 0) {
		size_t others = combine_locked(l, self);
		pthread_mutex_unlock(&l->mu);
		if (others == COMBINE_LATER)
			return; /* wait_node sleeps; the rotating thread formats it */
		if (others && l->o.durability == ALOG_BATCH)
			wake_durable(l); /* their appenders wait for formatting only */
	}
}

/* 0 when n's record is durable, an error when it was lost, -EAGAIN while
 * undecided. durable_seq is read between two reads of gen (a seqlock), so
 * a number reused after a failure is never taken for this record's. */
static int durable_verdict(struct alog *l, const struct anode *n)
{
	uint64_t g1 = __atomic_load_n(&l->gen, __ATOMIC_ACQUIRE);
	uint64_t durable = __atomic_load_n(&l->durable_seq, __ATOMIC_ACQUIRE);
	uint64_t g2 = __atomic_load_n(&l->gen, __ATOMIC_ACQUIRE);

	if (g1 == n->gen && g2 == n->gen)
		return durable >= n->seq ? 0 : -EAGAIN;
	if (g2 - n->gen < LOST_GENS &&
	    n->seq < __atomic_load_n(&l->lost_from[n->gen % LOST_GENS], __ATOMIC_RELAXED))
		return 0; /* made durable before the failure */
	int err = __atomic_load_n(&l->failed, __ATOMIC_RELAXED);
	return err ? err : -EIO;
}

/* Sleeps until n is durable (sync, unless it is lazy) or formatted
 * (batch). The timeout bounds the wait of a record pushed just as the
 * combiner let go of mu. */
static int wait_node(struct alog *l, struct anode *n)
{
	static const struct timespec poll = { 0, 1000000 };

	for (;;) {
		uint32_t tick = __atomic_load_n(&l->tick, __ATOMIC_ACQUIRE);
		if (!__atomic_load_n(&n->done, __ATOMIC_ACQUIRE)) {
			try_combine(l, n);
			if (__atomic_load_n(&n->done, __ATOMIC_ACQUIRE))
				continue;
		} else if (n->err || l->o.durability == ALOG_BATCH || n->lazy) {
			return n->err;
		} else {
			int r = durable_verdict(l, n);
			if (r != -EAGAIN)
				return r;
		}
		syscall(SYS_futex, &l->tick, FUTEX_WAIT_PRIVATE, tick, &poll, NULL, 0);
	}
}

int alog_append(struct alog *l, const struct alog_rec *rec, uint64_t *ret_seq)
{
	struct buf *body = body_buf();
	struct anode n = { .type = rec->type, .body = body };
	int r = body ? logbody_render(rec, l->o.kp, body) : -ENOMEM;

	if (r)
		return r;
	push_node(l, &n);
	try_combine(l, &n);
	r = wait_node(l, &n);
	if (!r && ret_seq)
		*ret_seq = n.seq;
	return r;
}

struct alog_ticket {
	struct anode n;
	struct buf body;
	char type[LR_MAX_TYPE + 1];
};

int alog_submit(struct alog *l, const struct alog_rec *rec, bool lazy, struct alog_ticket **ret)
{
	struct alog_ticket *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	if ((r = logbody_render(rec, l->o.kp, &t->body))) {
		buf_free(&t->body);
		free(t);
		return r;
	}
	snprintf(t->type, sizeof(t->type), "%s", rec->type); /* logbody_render checked it */
	t->n = (struct anode){ .type = t->type, .body = &t->body, .lazy = lazy };
	push_node(l, &t->n);
	try_combine(l, &t->n);
	*ret = t;
	return 0;
}

int alog_wait(struct alog *l, struct alog_ticket *t, uint64_t *ret_seq)
{
	int r = wait_node(l, &t->n);

	if (!r && ret_seq)
		*ret_seq = t->n.seq;
	buf_free(&t->body);
	free(t);
	return r;
}

int alog_checkpoint(struct alog *l)
{
	pthread_mutex_lock(&l->mu);
	while (l->rotating)
		pthread_cond_wait(&l->cv, &l->mu);
	combine_locked(l, NULL);
	int r = l->failed ? l->failed : checkpoint_locked(l);
	if (!r)
		r = flush_locked(l, true);
	pthread_mutex_unlock(&l->mu);
	return r;
}

void alog_head(struct alog *l, uint64_t *ret_seq, uint8_t ret_hash[LOG_HASH_LEN])
{
	pthread_mutex_lock(&l->mu);
	*ret_seq = l->durable_seq;
	memcpy(ret_hash, l->durable_head, LOG_HASH_LEN);
	pthread_mutex_unlock(&l->mu);
}

size_t alog_unsealed(struct alog *l)
{
	pthread_mutex_lock(&l->mu);
	size_t n = l->seal_n;
	pthread_mutex_unlock(&l->mu);
	return n;
}

int alog_queue_seal(struct alog *l, const struct seginfo *s)
{
	for (size_t i = 0; i < l->seal_n; i++)
		if (l->seal_q[i].first == s->first)
			return 0;
	if (l->seal_n == l->seal_cap) {
		size_t cap = l->seal_cap ? 2 * l->seal_cap : 8;
		struct seginfo *q = realloc(l->seal_q, cap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		l->seal_q = q;
		l->seal_cap = cap;
	}
	l->seal_q[l->seal_n++] = *s;
	pthread_cond_signal(&l->seal_cv);
	return 0;
}

/* The CLOCK_MONOTONIC time us microseconds from now, for the condition
 * variables' timed waits. */
static struct timespec deadline_us(int64_t us)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += us / 1000000;
	t.tv_nsec += (us % 1000000) * 1000;
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	return t;
}

/* While the log is failed (a full disk), the flusher retries recovery
 * once a second, so timed checkpoints resume without waiting for an append. */
static void retry_recovery(struct alog *l)
{
	struct timespec t = deadline_us(1000000);

	pthread_cond_timedwait(&l->flush_cv, &l->mu, &t);
	if (!l->stop && l->failed && !l->io_busy && !l->rotating)
		(void)recover_locked(l);
}

static bool sync_work(struct alog *l)
{
	return l->o.durability == ALOG_SYNC && !l->failed && !l->rotating &&
	       (l->pending.len || l->durable_seq < l->written_seq ||
	        __atomic_load_n(&l->incoming, __ATOMIC_ACQUIRE));
}

static int64_t earlier(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* When the flusher has work next (mono_us's clock): at once for records
 * someone waits on; at the end of the window that began with the last
 * fdatasync for lazy ones (sync) or at the next tick (batch); at the next
 * timed checkpoint in any case. */
static int64_t flusher_due_us(struct alog *l)
{
	int64_t due = l->last_cp_us + (int64_t)l->o.checkpoint_ms * 1000;
	int64_t window = (int64_t)l->o.batch_ms * 1000;

	if (l->o.durability == ALOG_BATCH)
		return earlier(due, l->last_tick_us + window);
	if (!sync_work(l))
		return due;
	if (l->eager_pending || __atomic_load_n(&l->eager_incoming, __ATOMIC_RELAXED))
		return 0;
	return earlier(due, l->last_sync_us + window);
}

/* Sleeps until due unless an appender signals sooner (combine_locked). */
static void flusher_sleep(struct alog *l, int64_t due)
{
	struct timespec t = deadline_us(due - mono_us());

	l->flusher_wake_us = due;
	l->flusher_idle = true;
	pthread_cond_timedwait(&l->flush_cv, &l->mu, &t);
	l->flusher_idle = false;
}

/* The flusher: group commit in sync mode, the periodic fdatasync in batch
 * mode, and checkpoints on time, idle or not. It wakes when work is due,
 * and only then. */
static void *flusher_main(void *arg)
{
	struct alog *l = arg;

	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		if (l->failed && !l->rotating) {
			retry_recovery(l);
			continue;
		}
		int64_t now = mono_us(), due = l->rotating
		                                   ? now + 1000000
		                                   : flusher_due_us(l); /* rotations signal their end */
		if (due > now) {
			flusher_sleep(l, due);
			continue;
		}
		size_t others = combine_locked(l, NULL);
		if (others && others != COMBINE_LATER && l->o.durability == ALOG_BATCH)
			wake_durable(l);
		if (now / 1000 >= l->last_cp_us / 1000 + l->o.checkpoint_ms && checkpoint_locked(l))
			l->last_cp_us = mono_us(); /* try again at the next interval */
		l->last_tick_us = now;
		if (l->pending.len || l->durable_seq < l->written_seq)
			(void)flush_locked(l, true);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* Keeps a prefilled spare segment ready for the next rotation. */
static int prepare_spare(struct alog *l)
{
	uint64_t bytes = l->o.segment_bytes;
	struct stat st;

	pthread_mutex_unlock(&l->mu);
	int r = fstatat(l->dirfd, SEG_SPARE, &st, 0) == 0 && (uint64_t)st.st_size == bytes
	            ? 0
	            : logseg_prefill(l->dirfd, SEG_SPARE, bytes);
	pthread_mutex_lock(&l->mu);
	l->spare_ready = !r;
	return r;
}

static int seal_next(struct alog *l)
{
	struct seginfo s = l->seal_q[0];

	pthread_mutex_unlock(&l->mu);
	int r = logseg_seal(l->dirfd, &s);
	if (r == -ENOENT && faccessat(l->dirfd, s.name, F_OK, 0) < 0)
		r = 0; /* sealed already: the plain file is gone */
	pthread_mutex_lock(&l->mu);
	if (!r)
		memmove(l->seal_q, l->seal_q + 1, --l->seal_n * sizeof(*l->seal_q));
	return r;
}

/* The sealer: prepares spare segments and compresses full ones in the
 * background; after a failure (a full disk) it tries again a second later. */
static void *sealer_main(void *arg)
{
	struct alog *l = arg;

	/* Compression is background work: let appends have the CPU first.
	 * Failing that, sealing competes evenly, which is only slower. */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		int r = 0;
		if (!l->spare_ready)
			r = prepare_spare(l);
		else if (l->seal_n)
			r = seal_next(l);
		else
			pthread_cond_wait(&l->seal_cv, &l->mu);
		if (r) {
			struct timespec t = deadline_us(1000000);
			pthread_cond_timedwait(&l->seal_cv, &l->mu, &t);
		}
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

static int lock_dir(struct alog *l, char *err, size_t errlen)
{
	l->lockfd = openat(l->dirfd, LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (l->lockfd < 0 || flock(l->lockfd, LOCK_EX | LOCK_NB) < 0) {
		int r = -errno;
		snprintf(err, errlen, "%s: %s", l->dir,
		         r == -EWOULDBLOCK ? "the log is open in another process" : strerror(-r));
		return r == -EWOULDBLOCK ? -EBUSY : r;
	}
	return 0;
}

static struct alog *alog_new(const char *dir, const struct alog_opts *o)
{
	struct alog *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->o = o ? *o : defaults;
	if (!l->o.batch_ms)
		l->o.batch_ms = defaults.batch_ms;
	if (!l->o.segment_bytes)
		l->o.segment_bytes = defaults.segment_bytes;
	if (!l->o.checkpoint_records)
		l->o.checkpoint_records = defaults.checkpoint_records;
	if (!l->o.checkpoint_ms)
		l->o.checkpoint_ms = defaults.checkpoint_ms;
	l->dirfd = l->lockfd = l->segfd = l->statefd = -1;
	l->spare_ready = l->o.durability == ALOG_BATCH; /* batch mode needs no spare */
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	/* Appends hold mu for a microsecond or two: spinning briefly beats
	 * sleeping when a group of appenders arrives at once. */
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&l->mu, &ma);
	pthread_mutexattr_destroy(&ma);
	pthread_cond_init(&l->cv, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->flush_cv, &ca);
	pthread_cond_init(&l->seal_cv, &ca);
	pthread_condattr_destroy(&ca);
	l->dir = strdup(dir);
	l->st = secmem_alloc(sizeof(*l->st));
	l->st_snap = secmem_alloc(sizeof(*l->st_snap));
	if (!l->dir || !l->st || !l->st_snap) {
		alog_close(l);
		return NULL;
	}
	return l;
}

static void release(struct alog *l)
{
	alog_unload(l);
	if (l->lockfd >= 0)
		close(l->lockfd);
	if (l->dirfd >= 0)
		close(l->dirfd);
	secmem_free(l->st, sizeof(*l->st));
	secmem_free(l->st_snap, sizeof(*l->st_snap));
	buf_free(&l->pending);
	buf_free(&l->spare);
	free(l->seal_q);
	free(l->dir);
	pthread_cond_destroy(&l->flush_cv);
	pthread_cond_destroy(&l->seal_cv);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

/* The preallocation is only an optimisation: on a full disk the log goes on
 * appending to the segment it has (and rotates once space returns). */
static int move_to_prefilled(struct alog *l)
{
	int r;

	if (l->seg_size == 0)
		r = logseg_fill(l->segfd, 0, l->o.segment_bytes);
	else if (!(r = logseg_prefill(l->dirfd, SEG_SPARE, l->o.segment_bytes)))
		return rotate_locked(l);
	if (r == -ENOSPC || r == -EDQUOT)
		return 0;
	l->seg_prefilled = !r;
	return r;
}

/* Records what a crash left, and in sync mode moves to a preallocated
 * segment if the active one is not (a new log, or one written in batch
 * mode): appends beyond a file's end make every fdatasync write metadata. */
static int after_load(struct alog *l, const struct alog_cut *cut)
{
	int r = 0;

	pthread_mutex_lock(&l->mu);
	if (cut->bytes)
		r = append_recovery(l, cut, 0, 0);
	if (!r && l->o.durability == ALOG_SYNC && !l->seg_prefilled)
		r = move_to_prefilled(l);
	pthread_mutex_unlock(&l->mu);
	return r;
}

static void stop_threads(struct alog *l, bool sealer)
{
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_broadcast(&l->flush_cv);
	pthread_cond_broadcast(&l->seal_cv);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->flusher, NULL);
	if (sealer)
		pthread_join(l->sealer, NULL);
}

static int start_threads(struct alog *l)
{
	if (pthread_create(&l->flusher, NULL, flusher_main, l))
		return -EAGAIN;
	if (pthread_create(&l->sealer, NULL, sealer_main, l)) {
		stop_threads(l, false);
		return -EAGAIN;
	}
	return 0;
}

int alog_open(const char *dir, const struct alog_opts *o, struct alog **ret, char *err, size_t errlen)
{
	struct alog *l = alog_new(dir, o);
	struct alog_cut cut;
	int r;

	if (!l)
		return -ENOMEM;
	l->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dirfd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
	} else if (!(r = lock_dir(l, err, errlen)) && !(r = alog_load(l, &cut, err, errlen))) {
		r = after_load(l, &cut);
		if (r)
			snprintf(err, errlen, "%s: cannot record the recovery or start a segment: %s", dir,
			         strerror(-r));
	}
	if (!r)
		r = start_threads(l);
	if (r) {
		release(l);
		return r;
	}
	l->threads = true;
	*ret = l;
	return 0;
}

int alog_close(struct alog *l)
{
	int r = 0;

	if (!l)
		return 0;
	if (l->threads) {
		stop_threads(l, true);
		pthread_mutex_lock(&l->mu);
		r = l->failed ? l->failed : l->last_is_cp ? 0 : checkpoint_locked(l);
		if (!r)
			r = flush_locked(l, true);
		pthread_mutex_unlock(&l->mu);
	}
	release(l);
	return r;
}
