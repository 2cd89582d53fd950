/* test_auditlog.c - the audit log end to end, on temporary directories:
 * create, open, append, rotate, seal, close, verify, read, and tampering
 * (daemon/auditlog.c, logopen.c, logseg.c, logverify.c, logread.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "anchors.h"
#include "auditlog.h"
#include "fieldcrypt.h"
#include "keyprov.h"
#include "logkey.h"
#include "logread.h"
#include "logseg.h"
#include "logverify.h"
#include "secmem.h"

#define MAX_READ (256u << 20)

struct env {
	char base[64];
	char dir[128]; /* the log directory */
	char key[128]; /* the verification key file */
	char kp[128];  /* the file key provider */
};

/* ---- helpers ---------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	if (!e)
		return -1;
	strcpy(e->base, "/tmp/custos-unit-XXXXXX");
	if (!mkdtemp(e->base))
		return -1;
	snprintf(e->dir, sizeof(e->dir), "%s/log", e->base);
	snprintf(e->key, sizeof(e->key), "%s/log.key", e->base);
	snprintf(e->kp, sizeof(e->kp), "%s/keys.txt", e->base);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	nftw(e->base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(e);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	if (secmem_init(1 << 16))
		print_message("secure heap unavailable; testing on the normal heap\n");
	return 0;
}

static struct alog_opts small_opts(void)
{
	/* 1 MiB segments: the spare segment the sealer prefills stays small. */
	return (struct alog_opts){ .durability = ALOG_SYNC,
		                   .segment_bytes = 1u << 20,
		                   .checkpoint_records = 100 };
}

static void create_log(struct env *e)
{
	char err[256] = "";
	int r = alog_create(e->dir, e->key, err, sizeof(err));
	if (r)
		fail_msg("alog_create: %d %s", r, err);
}

static struct alog *open_log(struct env *e, const struct alog_opts *o)
{
	struct alog *l = NULL;
	char err[256] = "";
	int r = alog_open(e->dir, o, &l, err, sizeof(err));
	if (r)
		fail_msg("alog_open: %d %s", r, err);
	assert_non_null(l);
	return l;
}

static struct keyprov *open_kp(struct env *e)
{
	struct keyprov *kp = NULL;
	char err[256] = "";
	int r = keyprov_file_open(e->kp, &kp, err, sizeof(err));
	if (r)
		fail_msg("keyprov_file_open: %d %s", r, err);
	return kp;
}

/* One synthetic record; no cmocka calls (a forked child uses it too). */
static int append_rec(struct alog *l, unsigned i, bool with_subject, size_t pad, uint64_t *ret_seq)
{
	static const char *cols[] = { "id", "total" };
	char fp[32], stmt[128], sid[32], *detail = NULL;
	struct alog_actor actor = { .user = "app_user", .app = "billing", .addr = "192.0.2.10" };
	struct alog_subject subj = { "customer", sid };

	snprintf(fp, sizeof(fp), "fp%08x", i);
	snprintf(stmt, sizeof(stmt), "SELECT id, total FROM orders WHERE id = $1 AND n = %u", i);
	snprintf(sid, sizeof(sid), "cust-%04u", i);
	if (pad) {
		detail = malloc(pad + 16);
		if (!detail)
			return -ENOMEM;
		strcpy(detail, "{\"pad\":\"");
		memset(detail + 8, 'p', pad);
		strcpy(detail + 8 + pad, "\"}");
	}
	struct alog_rec r = {
		.type = "select",
		.actor = &actor,
		.table = "orders",
		.columns = cols,
		.ncolumns = 2,
		.subjects = with_subject ? &subj : NULL,
		.nsubjects = with_subject ? 1 : 0,
		.fingerprint = fp,
		.statement = stmt,
		.rows = (int64_t)(i % 5),
		.detail = detail,
	};
	int err = alog_append(l, &r, ret_seq);
	free(detail);
	return err;
}

static void load_keys(struct env *e, struct logkeys *k, bool with_seed)
{
	char *text, err[256] = "";
	size_t len;

	assert_int_equal(read_file(e->key, 1 << 16, &text, &len), 0);
	int r = logkey_parse(text, len, k, err, sizeof(err));
	free(text);
	if (r)
		fail_msg("logkey_parse: %s", err);
	assert_true(k->has_seed);
	if (!with_seed) {
		k->has_seed = false;
		memset(k->seed, 0, sizeof(k->seed));
	}
}

static void verify_heads(struct env *e, bool with_seed, const struct lv_head *heads, size_t nheads,
                         struct lv_result *res)
{
	struct logkeys k;
	struct lv_opts o = { .keys = &k, .heads = heads, .nheads = nheads };
	char err[256] = "";

	load_keys(e, &k, with_seed);
	memset(res, 0, sizeof(*res));
	int r = lv_verify(e->dir, &o, res, err, sizeof(err));
	if (r)
		fail_msg("lv_verify: %d %s", r, err);
}

static void verify(struct env *e, bool with_seed, struct lv_result *res)
{
	verify_heads(e, with_seed, NULL, 0, res);
}

static void expect_ok(struct env *e, struct lv_result *res)
{
	verify(e, true, res);
	if (!res->ok)
		fail_msg("verification failed at %llu: %s", (unsigned long long)res->fail_seq, res->reason);
	struct lv_result pub;
	verify(e, false, &pub);
	if (!pub.ok)
		fail_msg("verification without the seed failed at %llu: %s", (unsigned long long)pub.fail_seq,
		         pub.reason);
	assert_true(pub.records == res->records);
	assert_true(pub.head_seq == res->head_seq);
	assert_memory_equal(pub.head_hash, res->head_hash, LOG_HASH_LEN);
}

/* What lrd_each saw. */
struct tally {
	uint64_t total, selects, inits, checkpoints, recoveries, other, last_seq;
	bool gap;
	json_t *recovery; /* the last recovery record */
	uint8_t last_hash[LOG_HASH_LEN];
};

static int tally_fn(void *arg, json_t *rec, const char *line, size_t len)
{
	struct tally *t = arg;
	uint64_t seq = (uint64_t)json_integer_value(json_object_get(rec, "seq"));
	const char *type = json_string_value(json_object_get(rec, "type"));

	if (seq != t->last_seq + 1)
		t->gap = true;
	t->last_seq = seq;
	t->total++;
	if (!type)
		t->other++;
	else if (!strcmp(type, "select"))
		t->selects++;
	else if (!strcmp(type, "log_init"))
		t->inits++;
	else if (!strcmp(type, "checkpoint"))
		t->checkpoints++;
	else if (!strcmp(type, "recovery")) {
		t->recoveries++;
		json_decref(t->recovery);
		t->recovery = json_incref(rec);
	} else
		t->other++;
	EVP_Digest(line, len, t->last_hash, NULL, EVP_sha256(), NULL);
	return 0;
}

static void tally(struct env *e, struct tally *t)
{
	struct lrd_filter f = { 0 };
	struct lrd_error err = { 0 };

	memset(t, 0, sizeof(*t));
	int r = lrd_each(e->dir, &f, tally_fn, t, &err);
	if (r)
		fail_msg("lrd_each: %d at %llu: %s", r, (unsigned long long)err.seq, err.reason);
	assert_false(t->gap);
}

static void tally_free(struct tally *t)
{
	json_decref(t->recovery);
	t->recovery = NULL;
}

/* The records lrd_each sees are the ones verify counted. */
static void expect_counts(struct env *e, const struct lv_result *res, uint64_t selects, struct tally *t)
{
	tally(e, t);
	assert_true(t->total == res->records);
	assert_true(t->last_seq == res->head_seq);
	assert_memory_equal(t->last_hash, res->head_hash, LOG_HASH_LEN);
	assert_true(t->selects == selects);
	assert_true(t->inits == 1);
	assert_true(t->other == 0);
	assert_true(t->checkpoints >= 1);
	assert_true(t->total == t->selects + t->inits + t->checkpoints + t->recoveries);
}

static struct seginfo *list_segs(struct env *e, size_t *n)
{
	struct seginfo *v = NULL;

	assert_int_equal(logseg_list(e->dir, &v, n), 0);
	assert_true(*n >= 1);
	return v;
}

static void seg_path(struct env *e, const struct seginfo *s, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%s", e->dir, s->name);
}

/* The path of the last (active) segment, which must be plain. */
static void active_path(struct env *e, char *out, size_t outlen)
{
	size_t n;
	struct seginfo *v = list_segs(e, &n);

	assert_false(v[n - 1].gz);
	seg_path(e, &v[n - 1], out, outlen);
	free(v);
}

/* Finds the line of record seq in text: its offset and length. */
static bool find_record(const char *text, size_t len, uint64_t seq, size_t *ret_off, size_t *ret_len)
{
	char head[48];
	int hl = snprintf(head, sizeof(head), "{\"seq\":%llu,\"ts\"", (unsigned long long)seq);

	for (size_t off = 0; off < len;) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
		if (n >= (size_t)hl && !memcmp(text + off, head, (size_t)hl)) {
			*ret_off = off;
			*ret_len = n;
			return true;
		}
		off += n + 1;
	}
	return false;
}

static void write_whole(const char *path, const char *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	assert_int_equal(close(fd), 0);
}

/* Creates a log and appends n records in one session. */
static void make_log(struct env *e, unsigned n, const struct alog_opts *o)
{
	create_log(e);
	struct alog *l = open_log(e, o);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(append_rec(l, i, false, 0, NULL), 0);
	assert_int_equal(alog_close(l), 0);
}

/* A writer that dies without closing: opens, appends n, _exit()s. */
static void crashing_writer(struct env *e, unsigned n, const struct alog_opts *o)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct alog *l;
		char err[256];
		if (alog_open(e->dir, o, &l, err, sizeof(err)))
			_exit(2);
		for (unsigned i = 0; i < n; i++)
			if (append_rec(l, 1000 + i, false, 0, NULL))
				_exit(3);
		_exit(0); /* no alog_close: the process dies here */
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---- creating and opening -------------------------------------------- */

static void test_create_refuses_existing(void **state)
{
	struct env *e = *state;
	char err[256], key2[160], dir2[160], *before, *after;
	size_t blen, alen;
	struct stat st;

	create_log(e);
	assert_int_equal(stat(e->key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0400);
	assert_int_equal(read_file(e->key, 1 << 16, &before, &blen), 0);

	/* The same directory again, with a new key file. */
	snprintf(key2, sizeof(key2), "%s/other.key", e->base);
	err[0] = '\0';
	assert_int_equal(alog_create(e->dir, key2, err, sizeof(err)), -EEXIST);
	assert_true(strlen(err) > 0);
	assert_int_equal(access(key2, F_OK), -1);

	/* A new directory with the existing key file. */
	snprintf(dir2, sizeof(dir2), "%s/log2", e->base);
	err[0] = '\0';
	assert_int_equal(alog_create(dir2, e->key, err, sizeof(err)), -EEXIST);
	assert_true(strlen(err) > 0);

	/* Both again at once. */
	assert_int_equal(alog_create(e->dir, e->key, err, sizeof(err)), -EEXIST);

	/* Nothing was overwritten. */
	assert_int_equal(read_file(e->key, 1 << 16, &after, &alen), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	free(before);
	free(after);

	/* The original log is intact. */
	struct lv_result res;
	verify(e, true, &res);
	assert_true(res.ok);
	assert_true(res.records == 1);
}

static void test_create_in_empty_dir(void **state)
{
	struct env *e = *state;
	char err[256];
	struct lv_result res;

	assert_int_equal(mkdir(e->dir, 0750), 0);
	assert_int_equal(alog_create(e->dir, e->key, err, sizeof(err)), 0);
	verify(e, true, &res);
	assert_true(res.ok);
	assert_true(res.records == 1);
	assert_true(res.head_seq == 1);
}

/* The sequence number the next append will get. */
static uint64_t next_seq_of(struct alog *l)
{
	uint8_t h[LOG_HASH_LEN];
	uint64_t seq;

	alog_head(l, &seq, h);
	return seq + 1;
}

/* Only the preallocation's newline filler follows. */
static bool only_filler(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != '\n')
			return false;
	return true;
}

static void test_open_busy(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts();
	struct alog *l2 = NULL;
	char err[256] = "";

	create_log(e);
	struct alog *l = open_log(e, &o);
	uint64_t first = next_seq_of(l);
	assert_int_equal(alog_open(e->dir, &o, &l2, err, sizeof(err)), -EBUSY);
	assert_null(l2);
	assert_true(strlen(err) > 0);
	/* The first writer is unharmed. */
	uint64_t seq = 0;
	assert_int_equal(append_rec(l, 1, false, 0, &seq), 0);
	assert_true(seq == first);
	assert_int_equal(alog_close(l), 0);
	/* Free again once closed. */
	l = open_log(e, &o);
	assert_int_equal(alog_close(l), 0);
}

static void test_open_missing(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts();
	struct alog *l = NULL;
	char err[256];

	assert_int_not_equal(alog_open(e->dir, &o, &l, err, sizeof(err)), 0);
	assert_null(l);
	/* An empty directory is not a log. */
	assert_int_equal(mkdir(e->dir, 0750), 0);
	assert_int_not_equal(alog_open(e->dir, &o, &l, err, sizeof(err)), 0);
	assert_null(l);
}

/* ---- appending and verifying ----------------------------------------- */

static void test_append_1000_verify(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts();
	struct lv_result res;
	struct tally t;
	uint64_t seq, prev_seq = 1;

	create_log(e);
	o.kp = open_kp(e);
	assert_int_equal(access(e->kp, F_OK), 0); /* the provider created its file */
	struct alog *l = open_log(e, &o);
	for (unsigned i = 0; i < 1000; i++) {
		assert_int_equal(append_rec(l, i, i % 7 == 0, 0, &seq), 0);
		assert_true(seq > prev_seq);
		prev_seq = seq;
	}
	uint64_t head_seq;
	uint8_t head[LOG_HASH_LEN];
	alog_head(l, &head_seq, head);
	assert_true(head_seq >= seq);
	assert_int_equal(alog_close(l), 0);

	verify(e, true, &res);
	if (!res.ok)
		fail_msg("verification failed at %llu: %s", (unsigned long long)res.fail_seq, res.reason);
	expect_counts(e, &res, 1000, &t);
	/* Every 100 records a checkpoint, and one at close if needed. */
	assert_true(t.checkpoints >= 10);
	assert_true(res.records == 1000 + 1 + t.checkpoints);
	assert_true(res.head_seq == res.records);
	assert_true(res.unsigned_tail == 0); /* close ends with a checkpoint */
	assert_true(res.head_seq >= head_seq);
	tally_free(&t);

	/* Without the seed: the chain and signatures only. */
	struct lv_result pub;
	verify(e, false, &pub);
	assert_true(pub.ok);
	assert_true(pub.records == res.records);
	assert_true(pub.head_seq == res.head_seq);
	assert_memory_equal(pub.head_hash, res.head_hash, LOG_HASH_LEN);

	/* The subject ids are not in the log in clear. */
	char path[256], *text;
	size_t len;
	active_path(e, path, sizeof(path));
	assert_int_equal(read_file(path, MAX_READ, &text, &len), 0);
	assert_null(memmem(text, len, "cust-0007", 9));
	assert_non_null(memmem(text, len, "\"subjects\":[{\"ref\":\"", 20));
	free(text);
	keyprov_free(o.kp);
}

/* Subject ids decrypt with the provider's key; refs select records. */
struct subj_find {
	struct keyprov *kp;
	const char *want_ref;
	unsigned found, decrypted;
};

static int subj_fn(void *arg, json_t *rec, const char *line, size_t len)
{
	struct subj_find *s = arg;
	json_t *subj = json_array_get(json_object_get(rec, "subjects"), 0);
	const char *ref = json_string_value(json_object_get(subj, "ref"));
	const char *ct = json_string_value(json_object_get(subj, "id"));
	uint8_t id[FC_KEYID_LEN];
	struct fc_key *k = secmem_alloc(sizeof(*k));
	struct buf pt = BUF_INIT;

	(void)line;
	(void)len;
	if (!k)
		return -ENOMEM;
	if (ref && !strcmp(ref, s->want_ref))
		s->found++;
	if (ct && !fc_key_id(ct, strlen(ct), id) && !s->kp->key_by_id(s->kp, id, k) &&
	    !fc_decrypt(k, ALOG_SUBJECT_CTX, strlen(ALOG_SUBJECT_CTX), ct, strlen(ct), &pt) &&
	    pt.len == strlen("customer:cust-0021") && !memcmp(pt.p, "customer:cust-0021", pt.len))
		s->decrypted++;
	buf_free(&pt);
	secmem_free(k, sizeof(*k));
	return 0;
}

/* Submitted records: an eager one is durable when alog_wait returns; lazy
 * ones return once chained and become durable within batch_ms, without an
 * fdatasync each (they share one). */
static void test_submit_lazy_and_eager(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts();
	struct alog_actor a = { .user = "u" };
	struct alog_rec r = { .type = "access", .actor = &a, .rows = 1 };
	struct alog_ticket *t[50];
	uint64_t seq = 0, head_seq, last = 0;
	uint8_t head[LOG_HASH_LEN];

	o.durability = ALOG_SYNC;
	o.batch_ms = 200;
	o.checkpoint_records = 100000;
	o.checkpoint_ms = 600000;
	create_log(e);
	struct alog *l = open_log(e, &o);
	assert_int_equal(alog_submit(l, &r, false, &t[0]), 0);
	assert_int_equal(alog_wait(l, t[0], &seq), 0);
	alog_head(l, &head_seq, head);
	assert_true(head_seq >= seq); /* eager: durable on return */
	usleep(250000);               /* past batch_ms: the next lazy ones wait a window */
	for (int i = 0; i < 50; i++)
		assert_int_equal(alog_submit(l, &r, true, &t[i]), 0);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(alog_wait(l, t[i], &seq), 0);
		assert_true(seq > last);
		last = seq;
	}
	int64_t start = now_us();
	do {
		alog_head(l, &head_seq, head);
		if (head_seq >= last)
			break;
		usleep(1000);
	} while (now_us() - start < 2000000);
	assert_true(head_seq >= last); /* durable, within the window */
	assert_int_equal(alog_close(l), 0);
}

/* Lazy records that follow a sync wait out the window: appending them does
 * not wake the flusher into an fdatasync each (it did, 366 a second under
 * the proxy bench, with batch_ms at 10). */
static void test_lazy_waits_window(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts();
	struct alog_actor a = { .user = "u" };
	struct alog_rec r = { .type = "access", .actor = &a, .rows = 1 };
	struct alog_ticket *t;
	uint64_t seq = 0, head_seq;
	uint8_t head[LOG_HASH_LEN];

	o.batch_ms = 2000;
	o.checkpoint_records = 100000;
	o.checkpoint_ms = 600000;
	create_log(e);
	struct alog *l = open_log(e, &o);
	int64_t synced = now_us(); /* the window starts no earlier */
	assert_int_equal(alog_submit(l, &r, false, &t), 0);
	assert_int_equal(alog_wait(l, t, &seq), 0); /* eager: synced now */
	uint64_t eager = seq;
	for (int i = 0; i < 20; i++) {
		assert_int_equal(alog_submit(l, &r, true, &t), 0);
		assert_int_equal(alog_wait(l, t, &seq), 0);
		usleep(10000);
	}
	alog_head(l, &head_seq, head);
	if (now_us() - synced < 1000000) /* a stalled test thread proves nothing */
		assert_int_equal(head_seq, eager);
	int64_t start = now_us();
	while (head_seq < seq && now_us() - start < 5000000) {
		usleep(10000);
		alog_head(l, &head_seq, head);
	}
	assert_true(head_seq >= seq); /* and durable once the window ends */
	assert_int_equal(alog_close(l), 0);
}

/* The wall clock as a test sets it: clock_gettime is wrapped at link
 * time (the Makefile's --wrap), so that CLOCK_REALTIME can step back. */
static int64_t clock_back_s;
int __real_clock_gettime(clockid_t id, struct timespec *ts);
int __wrap_clock_gettime(clockid_t id, struct timespec *ts);
int __wrap_clock_gettime(clockid_t id, struct timespec *ts)
{
	int r = __real_clock_gettime(id, ts);

	if (!r && id == CLOCK_REALTIME)
		ts->tv_sec -= clock_back_s;
	return r;
}

static void wait_durable(struct alog *l, uint64_t seq, int64_t within_us)
{
	uint64_t head_seq;
	uint8_t head[LOG_HASH_LEN];
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		alog_head(l, &head_seq, head);
		if (head_seq >= seq)
			return;
		usleep(10000);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000000 + (t.tv_nsec - t0.tv_nsec) / 1000 < within_us);
	fail_msg("record %llu not durable after the wall clock stepped back", (unsigned long long)seq);
}

/* A wall clock stepped back (NTP, date -s) does not hold the flusher: a
 * batch-mode record, and a lazy sync-mode one, are still made durable
 * within their window. */
static void test_clock_stepped_back(void **state)
{
	struct env *e = *state;
	struct alog_actor a = { .user = "u" };
	struct alog_rec r = { .type = "access", .actor = &a, .rows = 1 };
	struct alog_ticket *t;
	uint64_t seq;

	create_log(e);
	for (int batch = 1; batch >= 0; batch--) {
		struct alog_opts o = small_opts();
		o.durability = batch ? ALOG_BATCH : ALOG_SYNC;
		o.batch_ms = 50;
		o.checkpoint_records = 100000;
		o.checkpoint_ms = 600000;
		struct alog *l = open_log(e, &o);
		assert_int_equal(alog_append(l, &r, &seq), 0);
		wait_durable(l, seq, 3000000);
		clock_back_s = 3600;
		assert_int_equal(alog_submit(l, &r, true, &t), 0);
		assert_int_equal(alog_wait(l, t, &seq), 0);
		wait_durable(l, seq, 3000000);
		clock_back_s = 0;
		assert_int_equal(alog_close(l), 0);
	}
}

static void test_subjects(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts();
	uint8_t ref[SUBJECT_REF_LEN];
	char refhex[2 * SUBJECT_REF_LEN + 1];

	create_log(e);
	o.kp = open_kp(e);
	struct alog *l = open_log(e, &o);
	for (unsigned i = 0; i < 50; i++)
		assert_int_equal(append_rec(l, i % 2 ? 21 : i, true, 0, NULL), 0); /* odd i: cust-0021 */
	assert_int_equal(alog_close(l), 0);

	assert_int_equal(o.kp->subject_ref(o.kp, "customer", "cust-0021", ref), 0);
	hex_encode(ref, sizeof(ref), refhex);
	struct subj_find s = { .kp = o.kp, .want_ref = refhex };
	struct lrd_filter f = { .subject_ref = refhex };
	struct lrd_error err;
	assert_int_equal(lrd_each(e->dir, &f, subj_fn, &s, &err), 0);
	assert_int_equal(s.found, 25);
	assert_int_equal(s.decrypted, 25);

	/* The same subject always gets the same key. */
	struct fc_key *k1 = secmem_alloc(sizeof(*k1)), *k2 = secmem_alloc(sizeof(*k2));
	assert_non_null(k1);
	assert_non_null(k2);
	assert_int_equal(o.kp->subject_key(o.kp, "customer", "cust-0021", k1), 0);
	assert_int_equal(o.kp->subject_key(o.kp, "customer", "cust-0021", k2), 0);
	assert_memory_equal(k1, k2, sizeof(*k1));
	secmem_free(k1, sizeof(*k1));
	secmem_free(k2, sizeof(*k2));

	struct lv_result res;
	expect_ok(e, &res);
	keyprov_free(o.kp);
}

struct walk_count {
	unsigned seen, named; /* records the callback saw; those naming subjects */
};

static int count_fn(void *arg, json_t *rec, const char *line, size_t len)
{
	struct walk_count *w = arg;

	(void)line, (void)len;
	w->seen++;
	w->named += json_object_get(rec, "subjects") != NULL;
	return 0;
}

/* A walk bounded by until_seq stops there and says where; the next one
 * resumes at that byte (it reads nothing before it: a damaged first line is
 * not seen), and records without the contains bytes are not parsed. */
static void test_walk_resumes(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts();
	char path[4096];
	uint64_t seq;

	o.checkpoint_records = 100000;
	create_log(e);
	o.kp = open_kp(e);
	struct alog *l = open_log(e, &o);
	for (unsigned i = 0; i < 40; i++)
		assert_int_equal(append_rec(l, i, i % 4 == 0, 0, &seq), 0); /* every fourth names a subject */
	assert_int_equal(alog_close(l), 0);
	keyprov_free(o.kp);

	struct lrd_pos pos = { 0 };
	struct lrd_error err;
	struct walk_count w = { 0 };
	struct lrd_filter f = { .until_seq = 21, .contains = "\"subjects\":[", .pos = &pos };
	assert_int_equal(lrd_each(e->dir, &f, count_fn, &w, &err), 0);
	assert_int_equal(pos.seq, 21);
	assert_true(pos.first > 0 && pos.off > 0);
	unsigned first = w.named;
	struct lrd_pos at21 = pos;
	assert_true(first >= 4 && first <= 6);

	/* spoil the segment's first line: only a walk from its start reads it */
	snprintf(path, sizeof(path), "%s/seg-%020llu.jsonl", e->dir, (unsigned long long)pos.first);
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "#", 1, 0), 1);
	close(fd);
	f = (struct lrd_filter){ .after_seq = 21, .contains = "\"subjects\":[", .pos = &pos };
	assert_int_equal(lrd_each(e->dir, &f, count_fn, &w, &err), 0);
	assert_int_equal(w.named, 10);     /* i = 0, 4, ..., 36 */
	assert_int_equal(w.seen, w.named); /* the others were not even parsed */
	assert_true(pos.seq > seq);        /* the checkpoint alog_close wrote */

	/* a position that does not match its record is refused, not trusted */
	struct lrd_pos stale = { at21.first, at21.off, 5 };
	f = (struct lrd_filter){ .after_seq = 5, .pos = &stale };
	assert_int_equal(lrd_each(e->dir, &f, count_fn, &w, &err), 1);
	f = (struct lrd_filter){ .after_seq = 5 };
	assert_int_equal(lrd_each(e->dir, &f, count_fn, &w, &err), 1); /* the spoilt line */
}

static void test_subject_without_provider(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts(); /* no kp */
	struct lv_result res;
	uint64_t seq;

	create_log(e);
	struct alog *l = open_log(e, &o);
	uint64_t first = next_seq_of(l);
	assert_int_equal(append_rec(l, 1, true, 0, NULL), -ENOKEY);
	assert_int_equal(append_rec(l, 2, false, 0, &seq), 0);
	assert_true(seq == first); /* the refused record took no number */
	assert_int_equal(alog_close(l), 0);
	expect_ok(e, &res);
}

static void test_invalid_type(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts();
	struct lv_result res;
	struct tally t;
	const char *bad[] = { "Bad",      "",         "checkpoint",
		              "log_init", "recovery", "a1",
		              "sel ect",  "select\"", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		              NULL };
	uint64_t seq;

	create_log(e);
	struct alog *l = open_log(e, &o);
	uint64_t first = next_seq_of(l);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct alog_rec r = { .type = bad[i], .rows = -1 };
		int err = alog_append(l, &r, &seq);
		if (err != -EINVAL)
			fail_msg("type \"%s\": alog_append returned %d", bad[i] ? bad[i] : "(null)", err);
	}
	/* The longest valid type, and the log still works. */
	struct alog_rec ok = { .type = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", .rows = -1 };
	assert_int_equal(alog_append(l, &ok, &seq), 0);
	assert_true(seq == first);
	assert_int_equal(append_rec(l, 0, false, 0, &seq), 0);
	assert_true(seq == first + 1);
	assert_int_equal(alog_close(l), 0);
	verify(e, true, &res);
	assert_true(res.ok);
	tally(e, &t);
	assert_true(t.total == res.records);
	assert_true(t.other == 1); /* the 32-a record */
	assert_true(t.selects == 1);
	tally_free(&t);
}

static void test_reopen_continues(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts();
	struct lv_result res, res2;
	struct tally t;
	uint64_t seq, hseq;
	uint8_t hhash[LOG_HASH_LEN];

	make_log(e, 10, &o);
	verify(e, true, &res);
	assert_true(res.ok);

	struct alog *l = open_log(e, &o);
	/* The head after reopening is the head verify found. */
	alog_head(l, &hseq, hhash);
	assert_true(hseq == res.head_seq);
	assert_memory_equal(hhash, res.head_hash, LOG_HASH_LEN);
	assert_int_equal(append_rec(l, 10, false, 0, &seq), 0);
	assert_true(seq == res.head_seq + 1);
	assert_int_equal(append_rec(l, 11, false, 0, &seq), 0);
	assert_true(seq == res.head_seq + 2);
	alog_head(l, &hseq, hhash);
	assert_true(hseq >= seq);
	assert_int_equal(alog_close(l), 0);

	/* Reopen and close without appending: nothing is added. */
	expect_ok(e, &res2);
	l = open_log(e, &o);
	alog_head(l, &hseq, hhash);
	assert_true(hseq == res2.head_seq);
	assert_memory_equal(hhash, res2.head_hash, LOG_HASH_LEN);
	assert_int_equal(alog_close(l), 0);
	expect_ok(e, &res);
	assert_true(res.head_seq == res2.head_seq);
	assert_memory_equal(res.head_hash, res2.head_hash, LOG_HASH_LEN);

	expect_counts(e, &res, 12, &t);
	assert_true(t.checkpoints >= 2); /* one per close */
	tally_free(&t);

	/* The head as an expected head: verified; altered or beyond the
	 * end: refused. */
	struct lv_head h = { .seq = hseq, .source = "expected head" };
	memcpy(h.hash, hhash, LOG_HASH_LEN);
	verify_heads(e, true, &h, 1, &res);
	assert_true(res.ok);
	h.hash[5] ^= 1;
	verify_heads(e, true, &h, 1, &res);
	assert_false(res.ok);
	assert_true(res.fail_seq == hseq);
	h.hash[5] ^= 1;
	h.seq = hseq + 1;
	verify_heads(e, true, &h, 1, &res);
	assert_false(res.ok);
}

/* on_checkpoint hands out anchors; they verify the log. */
struct anchors_seen {
	struct buf text;
	uint8_t log_id[LOG_ID_LEN];
	unsigned n;
	uint64_t last_seq;
	bool out_of_order;
};

static int on_cp(void *arg, const uint8_t log_id[LOG_ID_LEN], uint64_t seq, const uint8_t hash[LOG_HASH_LEN])
{
	struct anchors_seen *a = arg;
	struct buf one = BUF_INIT;

	assert_memory_equal(log_id, a->log_id, LOG_ID_LEN);
	if (seq <= a->last_seq)
		a->out_of_order = true;
	a->last_seq = seq;
	anchor_format(&one, a->log_id, seq, hash);
	buf_printf(
	    &a->text,
	    "type=TRUSTED_APP msg=audit(1700000000.123:%u): pid=1 uid=0 auid=4294967295 "
	    "ses=4294967295 msg='%.*s exe=\"/usr/sbin/custosd\" hostname=? addr=? terminal=? res=success'\n",
	    456 + a->n, (int)one.len, one.p);
	buf_free(&one);
	a->n++;
	return 0;
}

static void test_anchors(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts();
	struct anchors_seen a = { .text = BUF_INIT };
	struct logkeys k;
	struct lv_head *heads = NULL;
	size_t nheads = 0, line = 0;
	struct lv_result res;

	o.checkpoint_records = 20;
	o.on_checkpoint = on_cp;
	o.arg = &a;
	create_log(e);
	load_keys(e, &k, true);
	memcpy(a.log_id, k.log_id, LOG_ID_LEN);
	struct alog *l = open_log(e, &o);
	for (unsigned i = 0; i < 100; i++)
		assert_int_equal(append_rec(l, i, false, 0, NULL), 0);
	assert_int_equal(alog_close(l), 0);
	assert_true(a.n >= 5);
	assert_false(a.out_of_order);

	assert_int_equal(anchors_parse(a.text.p, a.text.len, k.log_id, &heads, &nheads, &line), 0);
	assert_int_equal(nheads, a.n);
	verify_heads(e, true, heads, nheads, &res);
	if (!res.ok)
		fail_msg("verification with anchors failed at %llu: %s", (unsigned long long)res.fail_seq,
		         res.reason);
	/* Each anchor is a checkpoint record. */
	assert_true(heads[nheads - 1].seq == res.head_seq);
	assert_memory_equal(heads[nheads - 1].hash, res.head_hash, LOG_HASH_LEN);
	/* An anchor the log does not match. */
	heads[1].hash[0] ^= 0x10;
	verify_heads(e, true, heads, nheads, &res);
	assert_false(res.ok);
	assert_true(res.fail_seq == heads[1].seq);
	free(heads);
	buf_free(&a.text);
}

/* ---- segments --------------------------------------------------------- */

static bool all_sealed(struct env *e, size_t *ret_n)
{
	size_t n;
	struct seginfo *v = list_segs(e, &n);
	bool ok = !v[n - 1].gz;

	for (size_t i = 0; ok && i + 1 < n; i++)
		ok = v[i].gz && v[i + 1].first != v[i].first;
	free(v);
	*ret_n = n;
	return ok;
}

static void check_rotation(struct env *e, struct alog_opts *o, unsigned nrec)
{
	struct lv_result res, res2;
	struct tally t;
	size_t n;

	create_log(e);
	struct alog *l = open_log(e, o);
	for (unsigned i = 0; i < nrec; i++)
		assert_int_equal(append_rec(l, i, false, 200, NULL), 0);
	assert_int_equal(alog_close(l), 0);

	struct seginfo *v = list_segs(e, &n);
	assert_true(n >= 3);
	/* Consecutive segments: each starts where the last ended. */
	for (size_t i = 0; i + 1 < n; i++)
		assert_true(v[i + 1].first > v[i].first);
	assert_true(v[0].first == 1);
	free(v);
	expect_ok(e, &res);
	expect_counts(e, &res, nrec, &t);
	tally_free(&t);

	/* The sealer compresses the full segments of an open log. */
	l = open_log(e, o);
	bool sealed = false;
	for (int i = 0; i < 100 && !(sealed = all_sealed(e, &n)); i++)
		nanosleep(&(struct timespec){ 0, 100 * 1000 * 1000 }, NULL);
	assert_int_equal(alog_close(l), 0);
	if (!sealed)
		fail_msg("full segments not sealed within 10 s");
	assert_true(n >= 3);

	expect_ok(e, &res2);
	assert_true(res2.records == res.records);
	assert_true(res2.head_seq == res.head_seq);
	assert_memory_equal(res2.head_hash, res.head_hash, LOG_HASH_LEN);
	expect_counts(e, &res2, nrec, &t);
	tally_free(&t);

	/* Appending after sealing goes on in the active segment. */
	l = open_log(e, o);
	uint64_t seq;
	assert_int_equal(append_rec(l, 0, false, 0, &seq), 0);
	assert_true(seq == res.head_seq + 1);
	assert_int_equal(alog_close(l), 0);
	expect_ok(e, &res2);
	assert_true(res2.head_seq > seq);
}

static void test_rotation_sync(void **state)
{
	struct alog_opts o = { .durability = ALOG_SYNC,
		               .segment_bytes = 64u << 10,
		               .checkpoint_records = 10 };

	check_rotation(*state, &o, 1000);
}

static void test_rotation_batch(void **state)
{
	struct alog_opts o = {
		.durability = ALOG_BATCH, .batch_ms = 5, .segment_bytes = 64u << 10, .checkpoint_records = 10
	};

	check_rotation(*state, &o, 1000);
}

static void test_batch_default_segments(void **state)
{
	struct env *e = *state;
	struct alog_opts o = { .durability = ALOG_BATCH, .batch_ms = 2, .segment_bytes = 1u << 20 };
	struct lv_result res;
	struct tally t;

	create_log(e);
	struct alog *l = open_log(e, &o);
	for (unsigned i = 0; i < 2000; i++)
		assert_int_equal(append_rec(l, i, false, 0, NULL), 0);
	assert_int_equal(alog_close(l), 0);
	expect_ok(e, &res);
	expect_counts(e, &res, 2000, &t);
	assert_true(res.unsigned_tail == 0);
	tally_free(&t);
}

/* ---- tampering -------------------------------------------------------- */

/* Changes one byte of record seq's line (at pos within the line, found
 * by what), then verifies. */
static void tamper_record(struct env *e, uint64_t seq, const char *what, char to, struct lv_result *res,
                          bool with_seed)
{
	char path[256], *text;
	size_t len, off, n;

	active_path(e, path, sizeof(path));
	assert_int_equal(read_file(path, MAX_READ, &text, &len), 0);
	assert_true(find_record(text, len, seq, &off, &n));
	char *at = memmem(text + off, n, what, strlen(what));
	assert_non_null(at);
	assert_true(*at != to);
	*at = to;
	write_whole(path, text, len);
	free(text);
	verify(e, with_seed, res);
}

static void test_tamper_body(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts();
	struct lv_result res;

	make_log(e, 60, &o); /* checkpoints at about 101: none before 60 */
	tamper_record(e, 30, "SELECT", 'T', &res, true);
	assert_false(res.ok);
	if (res.fail_seq != 30)
		fail_msg("altered record 30 reported at %llu: %s", (unsigned long long)res.fail_seq,
		         res.reason);
	/* Without the seed, the chain still breaks at or right after it. */
	verify(e, false, &res);
	assert_false(res.ok);
	assert_true(res.fail_seq == 30 || res.fail_seq == 31);
}

static void test_tamper_body_after_checkpoint(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts();
	struct lv_result res;

	o.checkpoint_records = 10; /* the record lies after a checkpoint */
	make_log(e, 60, &o);
	tamper_record(e, 40, "orders", 'x', &res, true);
	assert_false(res.ok);
	if (res.fail_seq != 40)
		fail_msg("altered record 40 reported at %llu: %s", (unsigned long long)res.fail_seq,
		         res.reason);
}

static void test_tamper_last_record(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts();
	struct lv_result res;

	make_log(e, 20, &o);
	verify(e, true, &res);
	uint64_t last = res.head_seq; /* the final checkpoint */
	tamper_record(e, last, "\"epoch\":", 'E', &res, true);
	assert_false(res.ok);
	assert_true(res.fail_seq == last);
}

static void test_tamper_mac_and_prev(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts();
	struct lv_result res;
	char path[256], *text;
	size_t len, off, n;

	make_log(e, 30, &o);
	active_path(e, path, sizeof(path));
	assert_int_equal(read_file(path, MAX_READ, &text, &len), 0);
	/* One hex digit of record 12's MAC. */
	assert_true(find_record(text, len, 12, &off, &n));
	char *mac = text + off + n - 66;
	assert_memory_equal(mac - 7, "\"mac\":\"", 7);
	char saved = mac[10];
	mac[10] = mac[10] == '0' ? '1' : '0';
	write_whole(path, text, len);
	verify(e, true, &res);
	assert_false(res.ok);
	assert_true(res.fail_seq == 12);
	mac[10] = saved;
	/* One hex digit of record 17's prev. */
	assert_true(find_record(text, len, 17, &off, &n));
	char *prev = (char *)memmem(text + off, n, "\"prev\":\"", 8) + 8;
	prev[3] = prev[3] == '0' ? '1' : '0';
	write_whole(path, text, len);
	verify(e, true, &res);
	assert_false(res.ok);
	assert_true(res.fail_seq == 17);
	verify(e, false, &res);
	assert_false(res.ok);
	assert_true(res.fail_seq == 17);
	free(text);
}

static void test_delete_line(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts();
	struct lv_result res;
	char path[256], *text;
	size_t len, off, n;

	make_log(e, 40, &o);
	active_path(e, path, sizeof(path));
	assert_int_equal(read_file(path, MAX_READ, &text, &len), 0);
	assert_true(find_record(text, len, 20, &off, &n));
	memmove(text + off, text + off + n + 1, len - off - n - 1);
	write_whole(path, text, len - n - 1);
	free(text);
	verify(e, true, &res);
	assert_false(res.ok);
	assert_true(res.fail_seq == 20);
	verify(e, false, &res);
	assert_false(res.ok);
	assert_true(res.fail_seq == 20);
	/* The writer refuses to append to a damaged log. */
	struct alog *l = NULL;
	char err[256];
	assert_int_not_equal(alog_open(e->dir, &o, &l, err, sizeof(err)), 0);
	assert_null(l);
}

static void test_swap_lines(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts();
	struct lv_result res;
	char path[256], *text;
	size_t len, off1, n1, off2, n2;

	make_log(e, 40, &o);
	active_path(e, path, sizeof(path));
	assert_int_equal(read_file(path, MAX_READ, &text, &len), 0);
	assert_true(find_record(text, len, 10, &off1, &n1));
	assert_true(find_record(text, len, 11, &off2, &n2));
	assert_true(off2 == off1 + n1 + 1);
	char *tmp = malloc(n1 + n2 + 2);
	assert_non_null(tmp);
	memcpy(tmp, text + off2, n2 + 1);
	memcpy(tmp + n2 + 1, text + off1, n1 + 1);
	memcpy(text + off1, tmp, n1 + n2 + 2);
	write_whole(path, text, len);
	free(tmp);
	free(text);
	verify(e, true, &res);
	assert_false(res.ok);
	assert_true(res.fail_seq == 10);
}

/* Checks the recovery record's account of the cut. */
static void expect_recovery(struct env *e, size_t cut_off, const char *frag, size_t fraglen)
{
	struct tally t;
	uint8_t h[32];
	char hex[65];

	tally(e, &t);
	assert_true(t.recoveries == 1);
	json_t *cut = json_object_get(t.recovery, "cut");
	assert_non_null(cut);
	assert_true((size_t)json_integer_value(json_object_get(cut, "bytes")) == fraglen);
	assert_true((size_t)json_integer_value(json_object_get(cut, "offset")) == cut_off);
	EVP_Digest(frag, fraglen, h, NULL, EVP_sha256(), NULL);
	hex_encode(h, sizeof(h), hex);
	assert_string_equal(json_string_value(json_object_get(cut, "sha256")), hex);
	tally_free(&t);
}

/* A writer died in the middle of a line: the file ends without newline. */
static void test_torn_tail(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts();
	struct lv_result res;
	char path[256], *text;
	size_t len, off, n;

	make_log(e, 20, &o);
	crashing_writer(e, 30, &o);
	verify(e, true, &res);
	assert_true(res.ok);
	uint64_t last = res.head_seq;
	active_path(e, path, sizeof(path));
	assert_int_equal(read_file(path, MAX_READ, &text, &len), 0);
	assert_true(find_record(text, len, last, &off, &n));
	assert_true(only_filler(text + off + n + 1, len - off - n - 1)); /* it is the last line */
	assert_non_null(memmem(text + off, n, "\"type\":\"select\"", 15));
	size_t keep = n / 2;
	assert_int_equal(truncate(path, (off_t)(off + keep)), 0);

	verify(e, true, &res);
	assert_false(res.ok);
	assert_true(res.fail_seq == last);
	if (!strstr(res.reason, "torn"))
		fail_msg("reason does not mention a torn write: %s", res.reason);

	/* The writer cuts it, says so in a recovery record, and goes on. */
	struct alog *l = open_log(e, &o);
	uint64_t seq;
	assert_int_equal(append_rec(l, 77, false, 0, &seq), 0);
	assert_true(seq == last + 1); /* recovery took the torn record's number */
	assert_int_equal(alog_close(l), 0);
	expect_ok(e, &res);
	expect_recovery(e, off, text + off, keep);
	free(text);
}

/* The same in a prefilled segment: the torn line is followed by filler. */
static void test_torn_tail_prefilled(void **state)
{
	struct env *e = *state;
	struct alog_opts o = { .durability = ALOG_SYNC,
		               .segment_bytes = 16u << 10,
		               .checkpoint_records = 50 };
	struct lv_result res;
	char path[256], *text;
	size_t len, off, n;

	make_log(e, 10, &o);
	crashing_writer(e, 150, &o); /* several rotations */
	/* The active segment must be a prefilled one ending in an ordinary
	 * record: if the last append ended a segment or wrote a checkpoint, or
	 * the sealer had not prepared the spare before the last rotation (it
	 * works in the background: under ASan it is sometimes late), append
	 * more until it is so. */
	uint64_t last = 0;
	for (int tries = 0;; tries++) {
		assert_true(tries < 200);
		verify(e, true, &res);
		assert_true(res.ok);
		last = res.head_seq;
		active_path(e, path, sizeof(path));
		assert_int_equal(read_file(path, MAX_READ, &text, &len), 0);
		if (find_record(text, len, last, &off, &n) &&
		    memmem(text + off, n, "\"type\":\"select\"", 15) && len > off + n + 1)
			break;
		free(text);
		crashing_writer(e, 1, &o);
	}
	size_t nsegs;
	free(list_segs(e, &nsegs));
	assert_true(nsegs >= 3);
	assert_true(len > off + n + 1); /* filler follows */
	assert_int_equal(text[off + n + 1], '\n');
	char *copy = malloc(len);
	assert_non_null(copy);
	memcpy(copy, text, len);
	size_t keep = n / 3;
	memset(copy + off + keep, '\n', n - keep); /* the rest never reached the disk */
	write_whole(path, copy, len);

	verify(e, true, &res);
	assert_false(res.ok);
	assert_true(res.fail_seq == last);

	struct alog *l = open_log(e, &o);
	assert_int_equal(append_rec(l, 5, false, 0, NULL), 0);
	assert_int_equal(alog_close(l), 0);
	expect_ok(e, &res);
	expect_recovery(e, off, text + off, keep);
	free(copy);
	free(text);
}

/* After a clean close the last line is the final checkpoint. Cutting it
 * is not what a crash does (the state file advances only after it is on
 * disk): the writer may refuse, but if it goes on, what it writes must
 * verify. */
static void check_torn_final_checkpoint(struct env *e, struct alog_opts *o, unsigned nrec)
{
	struct lv_result res;
	char path[256], *text, err[256] = "";
	size_t len, off, n;

	make_log(e, nrec, o);
	verify(e, true, &res);
	assert_true(res.ok);
	uint64_t last = res.head_seq;
	active_path(e, path, sizeof(path));
	assert_int_equal(read_file(path, MAX_READ, &text, &len), 0);
	assert_true(find_record(text, len, last, &off, &n));
	assert_true(only_filler(text + off + n + 1, len - off - n - 1));
	assert_non_null(memmem(text + off, n, "\"type\":\"checkpoint\"", 19));
	assert_int_equal(truncate(path, (off_t)(off + n / 2)), 0);
	free(text);

	verify(e, true, &res);
	assert_false(res.ok);
	if (!strstr(res.reason, "torn"))
		fail_msg("reason does not mention a torn write: %s", res.reason);

	struct alog *l = NULL;
	int r = alog_open(e->dir, o, &l, err, sizeof(err));
	if (r) {
		/* Refused: it must say why, and leave the log as it was. */
		assert_null(l);
		assert_int_equal(r, -EBADMSG);
		assert_true(strlen(err) > 0);
		verify(e, true, &res);
		assert_false(res.ok);
		return;
	}
	assert_int_equal(append_rec(l, 9, false, 0, NULL), 0);
	assert_int_equal(alog_close(l), 0);
	verify(e, true, &res);
	if (!res.ok)
		fail_msg("alog_open accepted the cut log, but the result fails verification at %llu: %s",
		         (unsigned long long)res.fail_seq, res.reason);
}

static void test_torn_final_checkpoint_only(void **state)
{
	struct alog_opts o = small_opts(); /* no checkpoint before the final one */

	check_torn_final_checkpoint(*state, &o, 20);
}

static void test_torn_final_checkpoint_after_others(void **state)
{
	struct alog_opts o = small_opts();

	o.checkpoint_records = 5;
	check_torn_final_checkpoint(*state, &o, 22);
}

/* Junk after the data of a sealed-to-be segment is reported. */
static void test_junk_after_data(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts();
	struct lv_result res;
	char path[256];

	make_log(e, 5, &o);
	active_path(e, path, sizeof(path));
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "\n\n\nxx\n", 6), 6);
	close(fd);
	verify(e, true, &res);
	assert_false(res.ok);
}

/* A walk that trusts the writer stops at the active segment's filler and
 * reads none of it (up to 64 MiB, read on every tick of the subject
 * indexer before); a walk that does not reads it all, and finds junk. */
static void test_walk_trusting_the_end(void **state)
{
	struct env *e = *state;
	struct alog_opts o = small_opts();
	struct lrd_error err;
	struct walk_count w = { 0 };
	char path[256];

	make_log(e, 5, &o);
	active_path(e, path, sizeof(path));
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "\n\n\nxx\n", 6), 6); /* filler, then junk */
	close(fd);
	struct lrd_filter f = { .trust_end = true };
	assert_int_equal(lrd_each(e->dir, &f, count_fn, &w, &err), 0);
	assert_true(w.seen >= 5);
	f = (struct lrd_filter){ .trust_end = false };
	assert_int_equal(lrd_each(e->dir, &f, count_fn, &w, &err), 1);
	assert_non_null(strstr(err.reason, "data after the end of the segment"));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_create_refuses_existing),
		T(test_create_in_empty_dir),
		T(test_open_busy),
		T(test_open_missing),
		T(test_append_1000_verify),
		T(test_submit_lazy_and_eager),
		T(test_lazy_waits_window),
		T(test_clock_stepped_back),
		T(test_subjects),
		T(test_walk_resumes),
		T(test_walk_trusting_the_end),
		T(test_subject_without_provider),
		T(test_invalid_type),
		T(test_reopen_continues),
		T(test_anchors),
		T(test_rotation_sync),
		T(test_rotation_batch),
		T(test_batch_default_segments),
		T(test_tamper_body),
		T(test_tamper_body_after_checkpoint),
		T(test_tamper_last_record),
		T(test_tamper_mac_and_prev),
		T(test_delete_line),
		T(test_swap_lines),
		T(test_torn_tail),
		T(test_torn_tail_prefilled),
		T(test_torn_final_checkpoint_only),
		T(test_torn_final_checkpoint_after_others),
		T(test_junk_after_data),
	};
#undef T

	return cmocka_run_group_tests_name("auditlog", tests, group_setup, NULL);
}
