/* test_auditlog_faults - regressions for defects a review found in the
 * append, rotation, recovery and verification paths. Each test failed
 * before its fix. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "auditlog.h"
#include "logseg.h"
#include "logverify.h"
#include "secmem.h"

struct env {
	char dir[64], key[80];
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char tmpl[] = "/tmp/custos-faults.XXXXXX";

	if (!e || !mkdtemp(tmpl))
		return -1;
	snprintf(e->dir, sizeof(e->dir), "%s/log", tmpl);
	snprintf(e->key, sizeof(e->key), "%s/log.key", tmpl);
	char err[256];
	if (alog_create(e->dir, e->key, err, sizeof(err)))
		return -1;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf %.*s", (int)(strrchr(e->dir, '/') - e->dir), e->dir);
	int r = system(cmd);
	free(e);
	return r;
}

static struct alog *open_log(struct env *e, struct alog_opts *o)
{
	struct alog *l = NULL;
	char err[256];

	if (alog_open(e->dir, o, &l, err, sizeof(err)))
		fail_msg("open: %s", err);
	return l;
}

static void verify_ok(struct env *e, uint64_t min_records)
{
	struct logkeys k;
	struct lv_opts o = { .keys = &k };
	struct lv_result res;
	char *text, err[256];
	size_t len;

	assert_int_equal(read_file(e->key, 4096, &text, &len), 0);
	assert_int_equal(logkey_parse(text, len, &k, err, sizeof(err)), 0);
	free(text);
	assert_int_equal(lv_verify(e->dir, &o, &res, err, sizeof(err)), 0);
	if (!res.ok)
		fail_msg("verify: FAIL seq=%llu: %s", (unsigned long long)res.fail_seq, res.reason);
	assert_true(res.records >= min_records);
}

static size_t count_segments(struct env *e)
{
	DIR *d = opendir(e->dir);
	struct dirent *de;
	size_t n = 0;

	while (d && (de = readdir(d)))
		n += !strncmp(de->d_name, "seg-", 4);
	if (d)
		closedir(d);
	return n;
}

static const struct alog_rec rec = { .type = "access",
	                             .statement = "SELECT email FROM customers WHERE id = $1",
	                             .rows = 1 };

/* Review finding 1: a batch log closed just after a rotation, reopened in
 * sync mode, had its live segment sealed (and acknowledged records lost). */
static void test_sync_reopen_after_batch_rotation(void **state)
{
	struct env *e = *state;
	struct alog_opts batch = { .durability = ALOG_BATCH, .segment_bytes = 65536 };
	struct alog_opts sync = { .durability = ALOG_SYNC, .segment_bytes = 65536 };
	uint64_t seq, last = 0;

	struct alog *l = open_log(e, &batch);
	size_t before = count_segments(e);
	while (count_segments(e) == before)
		assert_int_equal(alog_append(l, &rec, &seq), 0);
	assert_int_equal(alog_close(l), 0);
	l = open_log(e, &sync);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(alog_append(l, &rec, &last), 0);
		if (i == 4)
			sleep(2); /* the sealer runs */
	}
	assert_int_equal(alog_close(l), 0);
	l = open_log(e, &sync);
	assert_int_equal(alog_close(l), 0);
	verify_ok(e, last);
}

static struct alog *shared;
static int stop;

static void *appender(void *arg)
{
	(void)arg;
	for (int i = 0; i < 3000 && !__atomic_load_n(&stop, __ATOMIC_RELAXED); i++)
		if (alog_append(shared, &rec, NULL))
			break;
	return NULL;
}

static void *checkpointer(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
		if (alog_checkpoint(shared))
			break;
	return NULL;
}

/* Review finding 2: alog_checkpoint() during a rotation wrote its record
 * into the new segment's file, out of place. */
static void test_checkpoints_racing_rotation(void **state)
{
	struct env *e = *state;
	struct alog_opts o = { .durability = ALOG_SYNC, .segment_bytes = 65536 };
	pthread_t t[5];

	shared = open_log(e, &o);
	__atomic_store_n(&stop, 0, __ATOMIC_RELAXED);
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, appender, NULL);
	pthread_create(&t[4], NULL, checkpointer, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	pthread_join(t[4], NULL);
	assert_int_equal(alog_close(shared), 0);
	verify_ok(e, 12000);
}

/* Review finding 3: a record over the line limit was acknowledged and made
 * the log unreadable. */
static void test_oversized_record_refused(void **state)
{
	struct env *e = *state;
	struct alog_opts o = { 0 };
	size_t n = (1u << 20) + 100;
	char *stmt = malloc(n + 1);
	uint64_t seq;

	memset(stmt, 'x', n);
	stmt[n] = '\0';
	struct alog_rec big = { .type = "access", .statement = stmt, .rows = -1 };
	struct alog_rec nl = { .type = "access", .detail = "{\"a\":\n1}", .rows = -1 };
	struct alog_rec notobj = { .type = "access", .detail = "[1]", .rows = -1 };
	struct alog *l = open_log(e, &o);
	assert_int_equal(alog_append(l, &big, &seq), -E2BIG);
	assert_int_equal(alog_append(l, &nl, &seq), -EINVAL);
	assert_int_equal(alog_append(l, &notobj, &seq), -EINVAL);
	assert_int_equal(alog_append(l, &rec, &seq), 0);
	assert_int_equal(alog_close(l), 0);
	free(stmt);
	l = open_log(e, &o);
	assert_int_equal(alog_close(l), 0);
	verify_ok(e, seq);
}

/* Review finding 4: verify re-derived keys from k0 at every checkpoint
 * (quadratic) and believed a checkpoint's claimed epoch (a forged huge
 * epoch made it run forever). */
static void test_verify_forged_epoch_fails_fast(void **state)
{
	struct env *e = *state;
	struct alog_opts o = { .checkpoint_records = 2 };
	char seg[128], *text, err[256];
	size_t len;

	struct alog *l = open_log(e, &o);
	for (int i = 0; i < 400; i++)
		assert_int_equal(alog_append(l, &rec, NULL), 0);
	assert_int_equal(alog_close(l), 0);
	/* 200 epochs verify quickly */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	verify_ok(e, 400);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 5);
	/* claim an absurd epoch in the first checkpoint of the active segment */
	struct seginfo *v;
	size_t n;
	assert_int_equal(logseg_list(e->dir, &v, &n), 0);
	snprintf(seg, sizeof(seg), "%s/%s", e->dir, v[n - 1].name);
	free(v);
	assert_int_equal(read_file(seg, 1u << 28, &text, &len), 0);
	char *ep = strstr(text, "\"epoch\":");
	assert_non_null(ep);
	char *forged;
	assert_true(asprintf(&forged, "%.*s\"epoch\":99999999999%s", (int)(ep - text), text, ep + 8) > 0);
	int fd = open(seg, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, forged, strlen(forged)), (ssize_t)strlen(forged));
	close(fd);
	free(forged);
	free(text);
	struct logkeys k;
	struct lv_opts vo = { .keys = &k };
	struct lv_result res;
	assert_int_equal(read_file(e->key, 4096, &text, &len), 0);
	assert_int_equal(logkey_parse(text, len, &k, err, sizeof(err)), 0);
	free(text);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(lv_verify(e->dir, &vo, &res, err, sizeof(err)), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_false(res.ok);
	assert_true(t1.tv_sec - t0.tv_sec < 5);
	/* and the writer refuses to open it instead of ratcheting to that epoch */
	struct alog *l2 = NULL;
	assert_int_not_equal(alog_open(e->dir, &o, &l2, err, sizeof(err)), 0);
}

/* Review finding 5: the writer believed the epoch written in the last
 * checkpoint and ratcheted its key forward to it, destroying the real one. */
static void test_open_refuses_forged_last_epoch(void **state)
{
	struct env *e = *state;
	struct alog_opts o = { 0 };
	char seg[128], *text, err[256];
	size_t len;
	struct seginfo *v;
	size_t n;

	struct alog *l = open_log(e, &o);
	for (int i = 0; i < 5; i++)
		assert_int_equal(alog_append(l, &rec, NULL), 0);
	assert_int_equal(alog_close(l), 0); /* ends with a checkpoint */
	assert_int_equal(logseg_list(e->dir, &v, &n), 0);
	snprintf(seg, sizeof(seg), "%s/%s", e->dir, v[n - 1].name);
	free(v);
	assert_int_equal(read_file(seg, 1u << 28, &text, &len), 0);
	char *ep = strstr(text, "\"epoch\":");
	while (ep && strstr(ep + 1, "\"epoch\":"))
		ep = strstr(ep + 1, "\"epoch\":"); /* the last checkpoint */
	assert_non_null(ep);
	int fd = open(seg, O_WRONLY);
	assert_true(fd >= 0);
	/* one digit more: epoch E becomes E0 (an unauthenticated edit) */
	char *end = ep + 8;
	while (*end >= '0' && *end <= '9')
		end++;
	assert_int_equal(pwrite(fd, "0", 1, end - text), 1);
	assert_int_equal(pwrite(fd, end, strlen(end), end - text + 1), (ssize_t)strlen(end));
	close(fd);
	free(text);
	char state_before[512] = { 0 }, state_after[512] = { 0 };
	char sp[128];
	snprintf(sp, sizeof(sp), "%s/log.state", e->dir);
	fd = open(sp, O_RDONLY);
	assert_true(read(fd, state_before, sizeof(state_before)) > 0);
	close(fd);
	struct alog *l2 = NULL;
	assert_int_not_equal(alog_open(e->dir, &o, &l2, err, sizeof(err)), 0);
	fd = open(sp, O_RDONLY);
	assert_true(read(fd, state_after, sizeof(state_after)) > 0);
	close(fd);
	assert_memory_equal(state_before, state_after, sizeof(state_before)); /* the key was not moved */
}

/* Review finding 9: a crash hole (data after the filler, an earlier page
 * lost) was wiped without a recovery record. */
static void test_crash_hole_is_recorded(void **state)
{
	struct env *e = *state;
	struct alog_opts o = { .durability = ALOG_SYNC, .segment_bytes = 1u << 20 };
	char seg[128], *text;
	size_t len;
	struct seginfo *v;
	size_t n;
	static const char junk[] = "{\"seq\":77,\"ts\":\"2026-11-23T00:00:00.000000Z\",\"type\":\"access\"";

	struct alog *l = open_log(e, &o);
	for (int i = 0; i < 5; i++)
		assert_int_equal(alog_append(l, &rec, NULL), 0);
	assert_int_equal(alog_close(l), 0);
	assert_int_equal(logseg_list(e->dir, &v, &n), 0);
	snprintf(seg, sizeof(seg), "%s/%s", e->dir, v[n - 1].name);
	free(v);
	assert_int_equal(read_file(seg, 1u << 28, &text, &len), 0);
	size_t end = (size_t)(strstr(text, "\n\n") - text) + 1; /* where the filler starts */
	free(text);
	int fd = open(seg, O_WRONLY);
	assert_int_equal(pwrite(fd, junk, strlen(junk), (off_t)(end + 4096)), (ssize_t)strlen(junk));
	close(fd);
	l = open_log(e, &o);
	assert_int_equal(alog_close(l), 0);
	assert_int_equal(read_file(seg, 1u << 28, &text, &len), 0);
	char want[64];
	snprintf(want, sizeof(want), "\"offset\":%zu,\"bytes\":%zu", end, 4096 + strlen(junk));
	char *recov = strstr(text, "\"type\":\"recovery\"");
	assert_non_null(recov);
	if (!strstr(recov, want))
		fail_msg("recovery record lacks %s", want);
	assert_null(strstr(text, "\"seq\":77,")); /* the junk is gone */
	free(text);
	verify_ok(e, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sync_reopen_after_batch_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoints_racing_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_record_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_forged_epoch_fails_fast, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_forged_last_epoch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_hole_is_recorded, setup, teardown),
	};
	if (secmem_init(1u << 16))
		fprintf(stderr, "note: no locked memory\n");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
