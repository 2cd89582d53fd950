/* test_anchors.c - checkpoint anchors written to and read back from an
 * auditd log (daemon/anchors.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/rand.h>

#include "anchors.h"
#include "buf.h"

static void rand_fill(void *p, size_t n)
{
	assert_int_equal(RAND_bytes(p, (int)n), 1);
}

/* Appends an auditd TRUSTED_APP line carrying anchor text as auditd
 * writes what audit_log_user_message() sent. */
static void add_audit_line(struct buf *b, const char *anchor, unsigned serial)
{
	buf_printf(
	    b,
	    "type=TRUSTED_APP msg=audit(1700000000.%03u:%u): pid=1 uid=0 auid=4294967295 "
	    "ses=4294967295 msg='%s exe=\"/usr/sbin/custosd\" hostname=? addr=? terminal=? res=success'\n",
	    serial % 1000, serial, anchor);
}

static void add_anchor_line(struct buf *b, const uint8_t id[LOG_ID_LEN], uint64_t seq,
                            const uint8_t hash[LOG_HASH_LEN], unsigned serial)
{
	struct buf a = BUF_INIT;

	anchor_format(&a, id, seq, hash);
	buf_addc(&a, '\0');
	assert_false(a.failed);
	add_audit_line(b, a.p, serial);
	buf_free(&a);
}

static void add_unrelated(struct buf *b, unsigned serial)
{
	buf_printf(
	    b,
	    "type=SYSCALL msg=audit(1700000000.%03u:%u): arch=c000003e syscall=59 success=yes exit=0 "
	    "a0=55d0 a1=55d1 a2=55d2 a3=0 items=2 ppid=1 pid=2 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 "
	    "egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm=\"ls\" exe=\"/usr/bin/ls\" key=(null)\n",
	    serial % 1000, serial);
}

static void test_format(void **state)
{
	(void)state;
	uint8_t id[LOG_ID_LEN], hash[LOG_HASH_LEN];
	char idhex[33], hhex[65], want[256];
	struct buf b = BUF_INIT;

	rand_fill(id, sizeof(id));
	rand_fill(hash, sizeof(hash));
	anchor_format(&b, id, 1234567, hash);
	buf_addc(&b, '\0');
	hex_encode(id, sizeof(id), idhex);
	hex_encode(hash, sizeof(hash), hhex);
	snprintf(want, sizeof(want), "op=custos-checkpoint log=%s seq=1234567 head=%s", idhex, hhex);
	assert_string_equal(b.p, want);
	buf_free(&b);
}

static void test_round_trip(void **state)
{
	(void)state;
	uint8_t id[LOG_ID_LEN], other[LOG_ID_LEN], h[5][LOG_HASH_LEN];
	const uint64_t seqs[5] = { 30001, 10001, 20001, 1, 18446744073709551615ull };
	struct buf text = BUF_INIT;
	struct lv_head *v = NULL;
	size_t n = 99, line = 0;

	rand_fill(id, sizeof(id));
	memcpy(other, id, sizeof(other));
	other[LOG_ID_LEN - 1] ^= 1; /* differs in the last byte only */
	unsigned serial = 100;
	add_unrelated(&text, serial++);
	for (size_t i = 0; i < 5; i++) {
		rand_fill(h[i], LOG_HASH_LEN);
		add_anchor_line(&text, id, seqs[i], h[i], serial++);
		add_unrelated(&text, serial++);
		/* Another log's anchor with a nearby seq. */
		uint8_t oh[LOG_HASH_LEN];
		rand_fill(oh, sizeof(oh));
		add_anchor_line(&text, other, seqs[i] + 5 > seqs[i] ? seqs[i] + 5 : 2, oh, serial++);
	}
	buf_adds(&text, "\n"); /* an empty line */
	buf_adds(&text, "type=USER_LOGIN msg=audit(1700000001.000:9): op=login acct=\"x\" res=failed\n");

	assert_int_equal(anchors_parse(text.p, text.len, id, &v, &n, &line), 0);
	assert_int_equal(n, 5);
	/* Sorted by seq: 1, 10001, 20001, 30001, max. */
	const size_t order[5] = { 3, 1, 2, 0, 4 };
	for (size_t i = 0; i < 5; i++) {
		assert_true(v[i].seq == seqs[order[i]]);
		assert_memory_equal(v[i].hash, h[order[i]], LOG_HASH_LEN);
		assert_non_null(v[i].source);
		assert_string_equal(v[i].source, "anchor");
	}
	free(v);

	/* The other log sees only its own. */
	v = NULL;
	assert_int_equal(anchors_parse(text.p, text.len, other, &v, &n, &line), 0);
	assert_int_equal(n, 5);
	for (size_t i = 1; i < n; i++)
		assert_true(v[i - 1].seq <= v[i].seq);
	free(v);

	/* A third log id: nothing. */
	uint8_t third[LOG_ID_LEN];
	rand_fill(third, sizeof(third));
	v = NULL;
	assert_int_equal(anchors_parse(text.p, text.len, third, &v, &n, &line), 0);
	assert_int_equal(n, 0);
	free(v);
	buf_free(&text);
}

static void test_no_final_newline(void **state)
{
	(void)state;
	uint8_t id[LOG_ID_LEN], h[LOG_HASH_LEN];
	struct buf text = BUF_INIT;
	struct lv_head *v = NULL;
	size_t n = 0, line = 0;

	rand_fill(id, sizeof(id));
	rand_fill(h, sizeof(h));
	add_unrelated(&text, 1);
	add_anchor_line(&text, id, 77, h, 2);
	text.len--; /* drop the last newline */
	assert_int_equal(anchors_parse(text.p, text.len, id, &v, &n, &line), 0);
	assert_int_equal(n, 1);
	assert_true(v[0].seq == 77);
	assert_memory_equal(v[0].hash, h, LOG_HASH_LEN);
	free(v);
	buf_free(&text);
}

static void test_empty(void **state)
{
	(void)state;
	uint8_t id[LOG_ID_LEN] = { 0 };
	struct lv_head *v = NULL;
	size_t n = 99, line = 0;

	assert_int_equal(anchors_parse("", 0, id, &v, &n, &line), 0);
	assert_int_equal(n, 0);
	free(v);
	v = NULL;
	assert_int_equal(anchors_parse("\n\n\n", 3, id, &v, &n, &line), 0);
	assert_int_equal(n, 0);
	free(v);
}

/* Many anchors, in reverse order: sorted on the way out. */
static void test_many_sorted(void **state)
{
	(void)state;
	uint8_t id[LOG_ID_LEN], h[LOG_HASH_LEN];
	struct buf text = BUF_INIT;
	struct lv_head *v = NULL;
	size_t n = 0, line = 0;

	rand_fill(id, sizeof(id));
	for (unsigned i = 0; i < 500; i++) {
		memset(h, (int)(i & 0xff), sizeof(h));
		add_anchor_line(&text, id, (uint64_t)(500 - i) * 1000, h, i);
	}
	assert_int_equal(anchors_parse(text.p, text.len, id, &v, &n, &line), 0);
	assert_int_equal(n, 500);
	for (size_t i = 0; i < n; i++) {
		assert_true(v[i].seq == (uint64_t)(i + 1) * 1000);
		assert_int_equal(v[i].hash[0], (499 - i) & 0xff);
	}
	free(v);
	buf_free(&text);
}

/* The nth line of a text is a malformed anchor: -EINVAL naming it. */
static void expect_malformed(const char *anchor, const char *what)
{
	uint8_t id[LOG_ID_LEN], h[LOG_HASH_LEN];
	struct buf text = BUF_INIT;
	struct lv_head *v = NULL;
	size_t n = 0, line = 0;

	rand_fill(id, sizeof(id));
	rand_fill(h, sizeof(h));
	add_unrelated(&text, 1);             /* line 1 */
	add_anchor_line(&text, id, 5, h, 2); /* line 2 */
	add_unrelated(&text, 3);             /* line 3 */
	add_audit_line(&text, anchor, 4);    /* line 4 */
	add_anchor_line(&text, id, 6, h, 5); /* line 5 */
	int r = anchors_parse(text.p, text.len, id, &v, &n, &line);
	if (r != -EINVAL)
		fail_msg("anchor with %s: anchors_parse returned %d", what, r);
	if (line != 4)
		fail_msg("anchor with %s: reported line %zu, want 4", what, line);
	buf_free(&text);
}

static void test_malformed(void **state)
{
	(void)state;
	const char *id = "00112233445566778899aabbccddeeff";
	const char *head = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char a[512];

	struct {
		const char *log, *seq, *head, *what;
	} cases[] = {
		{ id, "seq=10", "head=0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
		  "upper-case head hex" },
		{ id, "seq=10", "head=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
		  "non-hex head" },
		{ id, "seq=10", "head=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
		  "a short head" },
		{ id, "seq=10", "head=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef00",
		  "a long head" },
		{ id, "seq=10", "", "no head" },
		{ id, "", NULL, "no seq" },
		{ id, "seq=", NULL, "an empty seq" },
		{ id, "seq=0", NULL, "seq 0" },
		{ id, "seq=-1", NULL, "a negative seq" },
		{ id, "seq=1x", NULL, "a seq with junk" },
		{ id, "seq=18446744073709551616", NULL, "a seq over 2^64" },
		{ "00112233445566778899aabbccddeef", "seq=10", NULL, "a short log id" },
		{ "00112233445566778899AABBCCDDEEFF", "seq=10", NULL, "an upper-case log id" },
		{ NULL, "seq=10", NULL, "no log id" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char logf[64] = "", headf[128];
		if (cases[i].log)
			snprintf(logf, sizeof(logf), " log=%s", cases[i].log);
		if (cases[i].head)
			snprintf(headf, sizeof(headf), "%s%s", cases[i].head[0] ? " " : "", cases[i].head);
		else
			snprintf(headf, sizeof(headf), " head=%s", head);
		snprintf(a, sizeof(a), "op=custos-checkpoint%s%s%s%s", logf, cases[i].seq[0] ? " " : "",
		         cases[i].seq, headf);
		expect_malformed(a, cases[i].what);
	}
}

/* A malformed anchor of any log fails the parse: it cannot be told whose
 * it is, and a forged line must not be skipped silently. */
static void test_malformed_first_line(void **state)
{
	(void)state;
	uint8_t id[LOG_ID_LEN] = { 0 };
	struct lv_head *v = NULL;
	size_t n = 0, line = 0;
	const char *text = "op=custos-checkpoint log=zz seq=1 head=00\nsomething else\n";

	assert_int_equal(anchors_parse(text, strlen(text), id, &v, &n, &line), -EINVAL);
	assert_int_equal(line, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_no_final_newline),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_many_sorted),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_malformed_first_line),
	};

	return cmocka_run_group_tests_name("anchors", tests, NULL, NULL);
}
