/* logverify.c - see logverify.h */
#define _GNU_SOURCE
#include "logverify.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logrec.h"
#include "logseg.h"
#include "secmem.h"

/* The verifier's walk along the chain. */
struct walk {
	const struct lv_opts *o;
	struct lv_result *res;
	uint64_t expect; /* next sequence number */
	uint8_t prev[LOG_HASH_LEN];
	uint64_t epoch;
	uint8_t *key; /* k(epoch), secure memory; NULL without the seed */
	struct lr_mac *mac;
	size_t next_head; /* index into o->heads */
	const struct seginfo *seg;
};

static bool fail(struct walk *w, uint64_t seq, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(struct walk *w, uint64_t seq, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->res->reason, sizeof(w->res->reason), fmt, ap);
	va_end(ap);
	w->res->fail_seq = seq;
	w->res->ok = false;
	return false;
}

static bool next_epoch(struct walk *w)
{
	w->epoch++;
	if (!w->key)
		return true;
	logkey_ratchet(w->key, w->key);
	lr_mac_free(w->mac);
	w->mac = lr_mac_new(w->key);
	return w->mac != NULL;
}

static bool check_special(struct walk *w, const struct lr_frame *f)
{
	uint8_t id[LOG_ID_LEN], sig[LOG_SIG_LEN];
	uint64_t epoch;

	if (f->seq == 1 || lr_is(f, "log_init")) {
		if (f->seq != 1 || !lr_is(f, "log_init") || !lr_init_parse(f, id))
			return fail(w, f->seq, "the log must start with exactly one log_init record");
		if (memcmp(id, w->o->keys->log_id, LOG_ID_LEN))
			return fail(w, f->seq, "this log was created with another key (log id differs)");
	}
	if (!lr_is(f, "checkpoint"))
		return true;
	if (!lr_checkpoint_parse(f, &epoch, sig))
		return fail(w, f->seq, "checkpoint malformed");
	if (epoch != w->epoch)
		return fail(w, f->seq, "checkpoint of epoch %" PRIu64 " where epoch %" PRIu64 " was due", epoch, w->epoch);
	if (!logkey_verify_sig(w->o->keys->pub, w->o->keys->log_id, f->seq, epoch, f->prev, sig))
		return fail(w, f->seq, "checkpoint signature invalid");
	w->res->unsigned_tail = 0;
	return next_epoch(w) || fail(w, f->seq, "out of memory");
}

static bool check_heads(struct walk *w, uint64_t seq, const uint8_t h[LOG_HASH_LEN])
{
	char hex[2 * LOG_HASH_LEN + 1];

	for (; w->next_head < w->o->nheads && w->o->heads[w->next_head].seq == seq; w->next_head++) {
		const struct lv_head *x = &w->o->heads[w->next_head];
		if (memcmp(x->hash, h, LOG_HASH_LEN)) {
			hex_encode(x->hash, LOG_HASH_LEN, hex);
			return fail(w, seq, "record differs from the %s %" PRIu64 ":%s", x->source, seq, hex);
		}
	}
	return true;
}

static bool check_line(struct walk *w, const char *line, size_t len, uint64_t off)
{
	struct lr_frame f;
	uint8_t d[LOG_HASH_LEN], h[LOG_HASH_LEN], mac[LOG_HASH_LEN];
	const char *why = lr_scan(line, len, &f);

	if (why)
		return fail(w, w->expect, "%s (%s, offset %" PRIu64 ")", why, w->seg->name, off);
	if (f.seq != w->expect)
		return fail(w, w->expect, "found record %" PRIu64 " (records inserted, removed or reordered; %s, offset %" PRIu64 ")",
			    f.seq, w->seg->name, off);
	if (CRYPTO_memcmp(f.prev, w->prev, LOG_HASH_LEN))
		return fail(w, f.seq, "prev does not match the hash of record %" PRIu64 " (chain broken)", f.seq - 1);
	if (lr_digest(line, len, d, h))
		return fail(w, f.seq, "cannot hash the record");
	if (w->mac && (lr_mac_compute(w->mac, d, mac) || CRYPTO_memcmp(mac, f.mac, LOG_HASH_LEN)))
		return fail(w, f.seq, "MAC mismatch: record altered (%s, offset %" PRIu64 ")", w->seg->name, off);
	w->res->unsigned_tail++;
	if (!check_special(w, &f) || !check_heads(w, f.seq, h))
		return false;
	memcpy(w->prev, h, LOG_HASH_LEN);
	w->expect++;
	w->res->records++;
	w->res->bytes += len + 1;
	return true;
}

/* Verifies one segment. Returns 0 (verdict in res) or a negative errno. */
static int walk_segment(struct walk *w, int dirfd, const struct seginfo *s)
{
	struct segreader *rd;
	const char *line;
	size_t len;
	uint64_t off = 0;
	int r;

	w->seg = s;
	if (s->first != w->expect) {
		if (s->first > w->expect)
			fail(w, w->expect, "segment with records %" PRIu64 "..%" PRIu64 " is missing (next is %s)",
			     w->expect, s->first - 1, s->name);
		else
			fail(w, w->expect, "segment %s overlaps the records before it", s->name);
		return 0;
	}
	if ((r = segreader_open(dirfd, s, &rd)))
		return r;
	while ((r = segreader_next(rd, &line, &len, &off)) == 1 && check_line(w, line, len, off))
		;
	segreader_free(rd);
	if (r == 2)
		fail(w, w->expect, "unterminated last line (a torn write; the writer cuts it when it next opens the log; %s, offset %" PRIu64 ")",
		     s->name, off);
	else if (r == -E2BIG)
		fail(w, w->expect, "line longer than %u bytes (%s, offset %" PRIu64 ")", LR_MAX_LINE, s->name, off);
	else if (r == -EBADMSG)
		fail(w, w->expect, "compressed segment %s is damaged (after offset %" PRIu64 ")", s->name, off);
	else if (r < 0)
		return r;
	return 0;
}

static void finish(struct walk *w)
{
	struct lv_result *res = w->res;
	uint64_t last = w->expect - 1;

	res->head_seq = last;
	memcpy(res->head_hash, w->prev, LOG_HASH_LEN);
	if (res->ok && res->records == 0)
		fail(w, 1, "the log has no records");
	if (res->ok && w->next_head < w->o->nheads) {
		const struct lv_head *x = &w->o->heads[w->next_head];
		fail(w, last + 1, "the log ends at record %" PRIu64 ", before the %s %" PRIu64 " (tail cut)", last,
		     x->source, x->seq);
	}
}

static int walk_init(struct walk *w, const struct lv_opts *o, struct lv_result *res)
{
	*res = (struct lv_result){ .ok = true };
	*w = (struct walk){ .o = o, .res = res, .expect = 1, .epoch = 1 };
	if (!o->keys->has_seed)
		return 0;
	if (!(w->key = secmem_alloc(LOG_KEY_LEN)))
		return -ENOMEM;
	logkey_ratchet(o->keys->seed, w->key);
	w->mac = lr_mac_new(w->key);
	return w->mac ? 0 : -ENOMEM;
}

int lv_verify(const char *dir, const struct lv_opts *o, struct lv_result *res, char *err, size_t errlen)
{
	struct walk w = { 0 };
	struct seginfo *v = NULL;
	size_t n = 0;
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = dirfd < 0 ? -errno : logseg_list(dir, &v, &n);

	if (r) {
		snprintf(err, errlen, "%s: %s", dir, strerror(-r));
		goto out;
	}
	if ((r = walk_init(&w, o, res))) {
		snprintf(err, errlen, "out of memory");
		goto out_walk;
	}
	for (size_t i = 0; res->ok && i < n; i++) {
		if (i + 1 < n && v[i + 1].first == v[i].first)
			continue; /* plain and sealed copy after an interrupted seal: read the sealed one */
		if ((r = walk_segment(&w, dirfd, &v[i]))) {
			snprintf(err, errlen, "%s/%s: %s", dir, v[i].name, strerror(-r));
			break;
		}
	}
	if (!r)
		finish(&w);
out_walk:
	lr_mac_free(w.mac);
	secmem_free(w.key, LOG_KEY_LEN);
out:
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
