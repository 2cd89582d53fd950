/* logverify.c - see logverify.h.
 *
 * Segments are verified in parallel, one worker per CPU: each checks the
 * framing, sequence, inner chain, signatures and MACs of its segment on its
 * own. A segment's epoch is known from its first checkpoint (every sealed
 * segment ends with one); the MACs of records before that checkpoint wait
 * for it, or, in a segment without one, for the stitch. The stitch then
 * walks the results in order: segment continuity, the chain across
 * segment boundaries, the epochs, and the first failure. */
#define _GNU_SOURCE
#include "logverify.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logrec.h"
#include "logseg.h"
#include "secmem.h"

#define MAX_WORKERS 8
#define LADDER_STEP 1024

/* k(e) = R^e(k0), shared by the workers: rungs[i] = k(i * LADDER_STEP),
 * grown on demand, so deriving any epoch's key costs at most LADDER_STEP
 * ratchets and the whole verification stays linear in the epochs. */
struct ladder {
	pthread_mutex_t mu;
	uint8_t *rungs; /* secure memory, n * LOG_KEY_LEN */
	size_t n, cap;
};

static bool ladder_grow(struct ladder *ld, size_t upto)
{
	while (ld->n <= upto) {
		if (ld->n == ld->cap) {
			size_t cap = ld->cap ? 2 * ld->cap : 16;
			uint8_t *v = secmem_alloc(cap * LOG_KEY_LEN);
			if (!v)
				return false;
			memcpy(v, ld->rungs, ld->n * LOG_KEY_LEN);
			secmem_free(ld->rungs, ld->cap * LOG_KEY_LEN);
			ld->rungs = v;
			ld->cap = cap;
		}
		uint8_t *k = ld->rungs + ld->n * LOG_KEY_LEN;
		memcpy(k, k - LOG_KEY_LEN, LOG_KEY_LEN);
		for (size_t i = 0; i < LADDER_STEP; i++)
			logkey_ratchet(k, k);
		ld->n++;
	}
	return true;
}

static bool ladder_key(struct ladder *ld, uint64_t epoch, uint8_t ret[LOG_KEY_LEN])
{
	pthread_mutex_lock(&ld->mu);
	bool ok = ladder_grow(ld, epoch / LADDER_STEP);
	if (ok)
		memcpy(ret, ld->rungs + epoch / LADDER_STEP * LOG_KEY_LEN, LOG_KEY_LEN);
	pthread_mutex_unlock(&ld->mu);
	for (uint64_t i = 0; ok && i < epoch % LADDER_STEP; i++)
		logkey_ratchet(ret, ret);
	return ok;
}

static int ladder_init(struct ladder *ld, const struct logkeys *k)
{
	*ld = (struct ladder){ .mu = PTHREAD_MUTEX_INITIALIZER };
	if (!k->has_seed)
		return 0;
	if (!(ld->rungs = secmem_alloc(16 * LOG_KEY_LEN)))
		return -ENOMEM;
	ld->cap = 16;
	ld->n = 1;
	memcpy(ld->rungs, k->seed, LOG_KEY_LEN);
	return 0;
}

static void ladder_free(struct ladder *ld)
{
	secmem_free(ld->rungs, ld->cap * LOG_KEY_LEN);
}

/* A record whose MAC waits for its epoch. */
struct pend {
	uint64_t seq;
	uint8_t d[LOG_HASH_LEN], mac[LOG_HASH_LEN];
};

/* What a worker found in one segment. */
struct segres {
	bool ok, any, has_cp, last_is_cp;
	int io_err;
	uint64_t fail_seq, records, bytes, last_seq, unsigned_tail;
	uint64_t first_cp_seq, first_cp_epoch, epoch; /* epoch: current, once known */
	uint8_t first_prev[LOG_HASH_LEN], last_hash[LOG_HASH_LEN];
	char reason[320];
	struct pend *pend;
	size_t npend, cap;
};

/* A worker's state while it walks one segment. */
struct walk {
	const struct lv_opts *o;
	struct ladder *ladder;
	const struct seginfo *seg;
	struct segres *r;
	uint8_t *key; /* k(epoch), secure memory; NULL without the seed */
	struct lr_mac *mac;
	size_t next_head;
};

static bool fail_at(struct segres *r, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail_at(struct segres *r, uint64_t seq, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	r->fail_seq = seq;
	r->ok = false;
	return false;
}

/* Sets w->key and w->mac to k(epoch) = R^epoch(k0). */
static bool set_epoch_key(struct walk *w, uint64_t epoch)
{
	if (!w->o->keys->has_seed)
		return true;
	if (!ladder_key(w->ladder, epoch, w->key))
		return false;
	lr_mac_free(w->mac);
	w->mac = lr_mac_new(w->key);
	return w->mac != NULL;
}

/* After a checkpoint: k(e + 1) = R(k(e)). */
static bool next_epoch_key(struct walk *w)
{
	if (!w->o->keys->has_seed)
		return true;
	logkey_ratchet(w->key, w->key);
	lr_mac_free(w->mac);
	w->mac = lr_mac_new(w->key);
	return w->mac != NULL;
}

static bool check_pending(struct walk *w, struct segres *r)
{
	uint8_t mac[LOG_HASH_LEN];

	for (size_t i = 0; w->mac && i < r->npend; i++) {
		struct pend *p = &r->pend[i];
		if (lr_mac_compute(w->mac, p->d, mac) || CRYPTO_memcmp(mac, p->mac, LOG_HASH_LEN))
			return fail_at(r, p->seq, "MAC mismatch: record altered");
	}
	r->npend = 0;
	return true;
}

static bool check_mac(struct walk *w, const struct lr_frame *f, const uint8_t d[LOG_HASH_LEN])
{
	struct segres *r = w->r;
	uint8_t mac[LOG_HASH_LEN];

	if (!w->o->keys->has_seed)
		return true;
	if (r->epoch) {
		if (lr_mac_compute(w->mac, d, mac) || CRYPTO_memcmp(mac, f->mac, LOG_HASH_LEN))
			return fail_at(r, f->seq, "MAC mismatch: record altered (%s)", w->seg->name);
		return true;
	}
	if (r->npend == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 1024;
		struct pend *p = realloc(r->pend, cap * sizeof(*p));
		if (!p)
			return fail_at(r, f->seq, "out of memory");
		r->pend = p;
		r->cap = cap;
	}
	struct pend *p = &r->pend[r->npend++];
	p->seq = f->seq;
	memcpy(p->d, d, LOG_HASH_LEN);
	memcpy(p->mac, f->mac, LOG_HASH_LEN);
	return true;
}

static bool check_checkpoint(struct walk *w, const struct lr_frame *f, const uint8_t d[LOG_HASH_LEN])
{
	struct segres *r = w->r;
	uint8_t sig[LOG_SIG_LEN];
	uint64_t epoch;

	if (!lr_checkpoint_parse(f, &epoch, sig))
		return fail_at(r, f->seq, "checkpoint malformed");
	if (r->epoch && epoch != r->epoch)
		return fail_at(r, f->seq, "checkpoint of epoch %" PRIu64 " where epoch %" PRIu64 " was due",
		               epoch, r->epoch);
	if (!r->epoch && epoch > f->seq)
		return fail_at(r, f->seq,
		               "checkpoint claims epoch %" PRIu64 ", more than the %" PRIu64
		               " records so far allow",
		               epoch, f->seq);
	if (!r->epoch) {
		r->has_cp = true;
		r->first_cp_seq = f->seq;
		r->first_cp_epoch = r->epoch = epoch;
		if (!set_epoch_key(w, epoch) || !check_pending(w, r))
			return r->ok ? fail_at(r, f->seq, "out of memory") : false;
	}
	if (!check_mac(w, f, d))
		return false;
	if (!logkey_verify_sig(w->o->keys->pub, w->o->keys->log_id, f->seq, epoch, f->prev, sig))
		return fail_at(r, f->seq, "checkpoint signature invalid");
	r->unsigned_tail = 0;
	r->epoch = epoch + 1;
	return next_epoch_key(w) || fail_at(r, f->seq, "out of memory");
}

static bool check_init(struct walk *w, const struct lr_frame *f)
{
	uint8_t id[LOG_ID_LEN];

	if (f->seq != 1 && !lr_is(f, "log_init"))
		return true;
	if (f->seq != 1 || !lr_is(f, "log_init") || !lr_init_parse(f, id))
		return fail_at(w->r, f->seq, "the log must start with exactly one log_init record");
	if (memcmp(id, w->o->keys->log_id, LOG_ID_LEN))
		return fail_at(w->r, f->seq, "this log was created with another key (log id differs)");
	return true;
}

static bool check_heads(struct walk *w, uint64_t seq, const uint8_t h[LOG_HASH_LEN])
{
	char hex[2 * LOG_HASH_LEN + 1];

	for (; w->next_head < w->o->nheads && w->o->heads[w->next_head].seq <= seq; w->next_head++) {
		const struct lv_head *x = &w->o->heads[w->next_head];
		if (x->seq == seq && memcmp(x->hash, h, LOG_HASH_LEN)) {
			hex_encode(x->hash, LOG_HASH_LEN, hex);
			return fail_at(w->r, seq, "record differs from the %s %" PRIu64 ":%s", x->source, seq,
			               hex);
		}
	}
	return true;
}

static bool check_line(struct walk *w, const char *line, size_t len, uint64_t off)
{
	struct segres *r = w->r;
	struct lr_frame f;
	uint8_t d[LOG_HASH_LEN], h[LOG_HASH_LEN];
	uint64_t expect = w->seg->first + r->records;
	const char *why = lr_scan(line, len, &f);

	if (why)
		return fail_at(r, expect, "%s (%s, offset %" PRIu64 ")", why, w->seg->name, off);
	if (f.seq != expect)
		return fail_at(r, expect,
		               "found record %" PRIu64
		               " (records inserted, removed or reordered; %s, offset %" PRIu64 ")",
		               f.seq, w->seg->name, off);
	if (!r->any)
		memcpy(r->first_prev, f.prev, LOG_HASH_LEN);
	else if (memcmp(f.prev, r->last_hash, LOG_HASH_LEN) /* public hashes */)
		return fail_at(r, f.seq, "prev does not match the hash of record %" PRIu64 " (chain broken)",
		               f.seq - 1);
	if (lr_digest(line, len, d, h))
		return fail_at(r, f.seq, "cannot hash the record");
	r->unsigned_tail++;
	if (!check_init(w, &f))
		return false;
	if (lr_is(&f, "checkpoint") ? !check_checkpoint(w, &f, d) : !check_mac(w, &f, d))
		return false;
	if (!check_heads(w, f.seq, h))
		return false;
	memcpy(r->last_hash, h, LOG_HASH_LEN);
	r->last_is_cp = lr_is(&f, "checkpoint");
	r->any = true;
	r->last_seq = f.seq;
	r->records++;
	r->bytes += len + 1;
	return true;
}

static size_t first_head(const struct lv_opts *o, uint64_t seq)
{
	size_t lo = 0, hi = o->nheads;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (o->heads[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void walk_segment(const struct lv_opts *o, struct ladder *ld, int dirfd, const struct seginfo *s,
                         struct segres *r)
{
	struct walk w = { .o = o, .ladder = ld, .seg = s, .r = r, .next_head = first_head(o, s->first) };
	struct segreader *rd;
	const char *line;
	size_t len;
	uint64_t off = 0;
	int n;

	r->ok = true;
	if (o->keys->has_seed && !(w.key = secmem_alloc(LOG_KEY_LEN))) {
		r->io_err = -ENOMEM;
		return;
	}
	if ((r->io_err = segreader_open(dirfd, s, &rd))) {
		secmem_free(w.key, LOG_KEY_LEN);
		return;
	}
	while ((n = segreader_next(rd, &line, &len, &off)) == SEG_LINE && check_line(&w, line, len, off))
		;
	uint64_t at = s->first + r->records;
	if (n == SEG_TORN)
		fail_at(r, at,
		        "unterminated last line (a torn write, cut when the writer next opens the log; %s, "
		        "offset %" PRIu64 ")",
		        s->name, off);
	else if (n == SEG_JUNK)
		fail_at(r, at, "data after the end of segment %s (offset %" PRIu64 ")", s->name, off);
	else if (n == -E2BIG)
		fail_at(r, at, "line longer than %u bytes (%s, offset %" PRIu64 ")", LR_MAX_LINE, s->name,
		        off);
	else if (n == -EBADMSG)
		fail_at(r, at, "compressed segment %s is damaged (after offset %" PRIu64 ")", s->name, off);
	else if (n < 0)
		r->io_err = n;
	segreader_free(rd);
	lr_mac_free(w.mac);
	secmem_free(w.key, LOG_KEY_LEN);
}

struct pool {
	const struct lv_opts *o;
	struct ladder *ladder;
	int dirfd;
	const struct seginfo *segs;
	struct segres *res;
	size_t n, next;
};

static void *worker(void *arg)
{
	struct pool *p = arg;

	for (;;) {
		size_t i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
		if (i >= p->n)
			return NULL;
		walk_segment(p->o, p->ladder, p->dirfd, &p->segs[i], &p->res[i]);
	}
}

static void run_pool(struct pool *p)
{
	pthread_t t[MAX_WORKERS];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t nt = cpus < 1 ? 1 : (size_t)cpus, started = 0;

	if (nt > MAX_WORKERS)
		nt = MAX_WORKERS;
	if (nt > p->n)
		nt = p->n;
	for (size_t i = 1; i < nt; i++)
		started += pthread_create(&t[started], NULL, worker, p) == 0;
	worker(p);
	for (size_t i = 0; i < started; i++)
		pthread_join(t[i], NULL);
}

/* The stitch: walks the segments' results in order. */
struct stitch {
	const struct lv_opts *o;
	struct ladder *ladder;
	struct lv_result *res;
	uint64_t expect, epoch;
	uint8_t prev[LOG_HASH_LEN];
};

static bool stitch_fail(struct stitch *st, uint64_t seq, const char *reason)
{
	st->res->ok = false;
	st->res->fail_seq = seq;
	snprintf(st->res->reason, sizeof(st->res->reason), "%s", reason);
	return false;
}

static bool stitch_one(struct stitch *st, const struct seginfo *s, struct segres *r, bool final)
{
	char why[320];

	if (s->first != st->expect) {
		if (s->first > st->expect)
			snprintf(why, sizeof(why),
			         "segment with records %" PRIu64 "..%" PRIu64 " is missing (next is %s)",
			         st->expect, s->first - 1, s->name);
		else
			snprintf(why, sizeof(why), "segment %s overlaps the records before it", s->name);
		return stitch_fail(st, st->expect, why);
	}
	if (r->any && CRYPTO_memcmp(r->first_prev, st->prev, LOG_HASH_LEN)) {
		snprintf(why, sizeof(why),
		         "prev does not match the hash of record %" PRIu64 " (chain broken across %s)",
		         s->first - 1, s->name);
		return stitch_fail(st, s->first, why);
	}
	if (r->npend) { /* no checkpoint in this segment: its epoch is the running one */
		struct walk w = {
			.o = st->o, .ladder = st->ladder, .r = r, .key = secmem_alloc(LOG_KEY_LEN)
		};
		bool ok = w.key && set_epoch_key(&w, st->epoch) && check_pending(&w, r);
		lr_mac_free(w.mac);
		secmem_free(w.key, LOG_KEY_LEN);
		if (!ok)
			return stitch_fail(st, r->fail_seq, r->ok ? "out of memory" : r->reason);
	}
	if (r->has_cp && r->first_cp_epoch != st->epoch) {
		snprintf(why, sizeof(why), "checkpoint of epoch %" PRIu64 " where epoch %" PRIu64 " was due",
		         r->first_cp_epoch, st->epoch);
		return stitch_fail(st, r->first_cp_seq, why);
	}
	if (!r->ok)
		return stitch_fail(st, r->fail_seq, r->reason);
	if (!final && r->any && !r->last_is_cp) {
		/* the writer ends every segment with a checkpoint before the next;
		 * without it, later records could be rewritten unsigned */
		snprintf(why, sizeof(why),
		         "segment %s does not end with a checkpoint (records removed or rewritten)", s->name);
		return stitch_fail(st, r->last_seq, why);
	}
	if (r->any) {
		st->expect = r->last_seq + 1;
		memcpy(st->prev, r->last_hash, LOG_HASH_LEN);
	}
	if (r->has_cp)
		st->epoch = r->epoch;
	st->res->records += r->records;
	st->res->bytes += r->bytes;
	st->res->unsigned_tail = r->has_cp ? r->unsigned_tail : st->res->unsigned_tail + r->unsigned_tail;
	return true;
}

static void stitch(const struct lv_opts *o, struct ladder *ld, const struct seginfo *v, struct segres *res,
                   size_t n, struct lv_result *out)
{
	struct stitch st = { .o = o, .ladder = ld, .res = out, .expect = 1, .epoch = 1 };
	uint64_t last;

	*out = (struct lv_result){ .ok = true };
	for (size_t i = 0; i < n && stitch_one(&st, &v[i], &res[i], i + 1 == n); i++)
		;
	last = st.expect - 1;
	out->head_seq = last;
	memcpy(out->head_hash, st.prev, LOG_HASH_LEN);
	if (out->ok && out->records == 0)
		stitch_fail(&st, 1, "the log has no records");
	size_t h = first_head(o, st.expect);
	if (out->ok && h < o->nheads) {
		char why[320];
		snprintf(why, sizeof(why),
		         "the log ends at record %" PRIu64 ", before the %s %" PRIu64 " (tail cut)", last,
		         o->heads[h].source, o->heads[h].seq);
		stitch_fail(&st, st.expect, why);
	}
}

/* Drops the plain copy of a segment whose sealed copy exists (a seal that
 * was interrupted between rename and unlink). */
static size_t dedupe(struct seginfo *v, size_t n)
{
	size_t out = 0;

	for (size_t i = 0; i < n; i++)
		if (!(i + 1 < n && v[i + 1].first == v[i].first))
			v[out++] = v[i];
	return out;
}

int lv_verify(const char *dir, const struct lv_opts *o, struct lv_result *ret, char *err, size_t errlen)
{
	struct seginfo *v = NULL;
	struct segres *res = NULL;
	size_t n = 0;
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = dirfd < 0 ? -errno : logseg_list(dir, &v, &n);

	struct ladder ld;
	int lr = ladder_init(&ld, o->keys);
	if (!r) {
		n = dedupe(v, n);
		res = calloc(n ? n : 1, sizeof(*res));
		r = res && !lr ? 0 : -ENOMEM;
	}
	if (!r) {
		struct pool p = { o, &ld, dirfd, v, res, n, 0 };
		run_pool(&p);
		for (size_t i = 0; !r && i < n; i++)
			if ((r = res[i].io_err))
				snprintf(err, errlen, "%s/%s: %s", dir, v[i].name, strerror(-r));
	} else {
		snprintf(err, errlen, "%s: %s", dir, strerror(-r));
	}
	if (!r)
		stitch(o, &ld, v, res, n, ret);
	ladder_free(&ld);
	for (size_t i = 0; res && i < n; i++)
		free(res[i].pend);
	free(res);
	free(v);
	if (dirfd >= 0)
		close(dirfd);
	return r;
}

bool lv_parse_head(const char *s, struct lv_head *ret)
{
	const char *colon = strchr(s, ':');
	char num[24];

	if (!colon || (size_t)(colon - s) >= sizeof(num) || strlen(colon + 1) != 2 * LOG_HASH_LEN)
		return false;
	memcpy(num, s, (size_t)(colon - s));
	num[colon - s] = '\0';
	return parse_u64(num, &ret->seq) && ret->seq > 0 &&
	       hex_decode(colon + 1, 2 * LOG_HASH_LEN, ret->hash);
}
