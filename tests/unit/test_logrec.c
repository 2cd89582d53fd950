/* test_logrec.c - record framing, hashing and MACs (daemon/logrec.c) and
 * the log's keys: ratchet, checkpoint signatures, key and state files
 * (daemon/logkey.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "buf.h"
#include "logkey.h"
#include "logrec.h"
#include "secmem.h"

#define TS0 (1709164800LL * 1000000 + 123456) /* 2024-02-29T00:00:00.123456Z */

static void rand_fill(void *p, size_t n)
{
	assert_int_equal(RAND_bytes(p, (int)n), 1);
}

static void sha256(const void *p, size_t n, uint8_t out[32])
{
	assert_int_equal(EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL), 1);
}

static void hmac_sha256(const uint8_t key[32], const uint8_t *d, size_t n, uint8_t out[32])
{
	unsigned len = 32;
	assert_non_null(HMAC(EVP_sha256(), key, 32, d, n, out, &len));
	assert_int_equal(len, 32);
}

/* Builds one record into a fresh NUL-terminated string (without its
 * newline); *ret_hash is what lr_finish returned. */
static char *make_line(struct lr_mac *m, uint64_t seq, int64_t ts, const char *type, const char *body,
                       const uint8_t prev[LOG_HASH_LEN], uint8_t ret_hash[LOG_HASH_LEN], size_t *ret_len)
{
	struct buf b = BUF_INIT;

	buf_adds(&b, "junk before the record"); /* lr_finish works from start */
	size_t start = b.len;
	lr_begin(&b, seq, ts, type);
	buf_adds(&b, body);
	assert_int_equal(lr_finish(&b, start, prev, m, ret_hash), 0);
	assert_false(b.failed);
	assert_int_equal(b.p[b.len - 1], '\n');
	size_t len = b.len - start - 1;
	char *s = malloc(len + 1);
	assert_non_null(s);
	memcpy(s, b.p + start, len);
	s[len] = '\0';
	buf_free(&b);
	*ret_len = len;
	return s;
}

/* A copy of s with the first occurrence of from replaced by to. */
static char *edit(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);
	assert_non_null(at);
	size_t n = strlen(s) - strlen(from) + strlen(to);
	char *r = malloc(n + 1);
	assert_non_null(r);
	size_t pre = (size_t)(at - s);
	memcpy(r, s, pre);
	strcpy(r + pre, to);
	strcat(r, at + strlen(from));
	return r;
}

struct fx {
	uint8_t key[LOG_KEY_LEN];
	struct lr_mac *m;
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (!fx || RAND_bytes(fx->key, sizeof(fx->key)) != 1 || !(fx->m = lr_mac_new(fx->key)))
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	lr_mac_free(fx->m);
	free(fx);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	if (secmem_init(1 << 16))
		print_message("secure heap unavailable; testing on the normal heap\n");
	return 0;
}

/* ---- framing -------------------------------------------------------- */

static void check_line(struct fx *fx, const char *line, size_t len, uint64_t seq, const char *type,
                       const char *body, const uint8_t prev[LOG_HASH_LEN], const uint8_t hash[LOG_HASH_LEN])
{
	struct lr_frame f;
	char ts[TS_LEN + 1];
	uint8_t d[32], h[32], want_d[32], want_h[32], want_mac[32];

	const char *why = lr_scan(line, len, &f);
	if (why)
		fail_msg("lr_scan refused a line lr_finish wrote: %s", why);
	assert_true(f.seq == seq);
	ts_format(TS0, ts);
	assert_memory_equal(f.ts, ts, TS_LEN);
	assert_int_equal(f.typelen, strlen(type));
	assert_memory_equal(f.type, type, f.typelen);
	assert_true(lr_is(&f, type));
	assert_false(lr_is(&f, "other"));
	assert_int_equal(f.bodylen, strlen(body));
	if (f.bodylen)
		assert_memory_equal(f.body, body, f.bodylen);
	assert_memory_equal(f.prev, prev, LOG_HASH_LEN);

	/* The hash is SHA-256 of the whole line, without its newline. */
	sha256(line, len, want_h);
	assert_memory_equal(hash, want_h, 32);
	/* d is SHA-256 of the line up to and including the comma after prev. */
	size_t plen = len - LR_TAIL_LEN;
	assert_int_equal(line[plen - 1], ',');
	assert_memory_equal(line + plen, "\"mac\":\"", 7);
	sha256(line, plen, want_d);
	assert_int_equal(lr_digest(line, len, d, h), 0);
	assert_memory_equal(d, want_d, 32);
	assert_memory_equal(h, want_h, 32);
	/* mac = HMAC-SHA256(key, d), computed by OpenSSL. */
	hmac_sha256(fx->key, want_d, 32, want_mac);
	assert_memory_equal(f.mac, want_mac, 32);
}

static void test_build_and_scan(void **state)
{
	struct fx *fx = *state;
	const struct {
		uint64_t seq;
		const char *type, *body;
	} cases[] = {
		{ 1, "log_init", ",\"log\":\"00112233445566778899aabbccddeeff\",\"version\":1" },
		{ 2, "select", "" },
		{ 3, "select", ",\"actor\":{\"user\":\"app\"},\"rows\":3" },
		{ 42, "x", ",\"a\":\"}\\\"prev\\\":\\\"\"" },
		{ 1000000, "a_b_c", ",\"detail\":{\"nested\":[1,2,{\"k\":null}]}" },
		{ 10000000000000000000ull, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", ",\"x\":1" }, /* 32 chars */
	};
	uint8_t prev[32] = { 0 }, hash[32];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t len;
		char *line =
		    make_line(fx->m, cases[i].seq, TS0, cases[i].type, cases[i].body, prev, hash, &len);
		char want_head[64];
		snprintf(want_head, sizeof(want_head), "{\"seq\":%llu,\"ts\":\"",
		         (unsigned long long)cases[i].seq);
		assert_memory_equal(line, want_head, strlen(want_head));
		check_line(fx, line, len, cases[i].seq, cases[i].type, cases[i].body, prev, hash);
		memcpy(prev, hash, 32); /* chain the next one */
		free(line);
	}
}

/* lr_finish's hash of one line is the next line's prev. */
static void test_chain(void **state)
{
	struct fx *fx = *state;
	uint8_t zero[32] = { 0 }, h1[32], h2[32];
	size_t l1, l2;
	char *a = make_line(fx->m, 1, TS0, "one", "", zero, h1, &l1);
	char *b = make_line(fx->m, 2, TS0, "two", "", h1, h2, &l2);
	struct lr_frame f;
	uint8_t want[32];

	assert_null(lr_scan(b, l2, &f));
	sha256(a, l1, want);
	assert_memory_equal(f.prev, want, 32);
	assert_memory_not_equal(h1, h2, 32);
	free(a);
	free(b);
}

static void test_mac_matches_openssl_hmac(void **state)
{
	(void)state;
	uint8_t key[32], d[32], got[32], want[32];

	for (int i = 0; i < 300; i++) {
		if (i == 0)
			memset(key, 0, sizeof(key));
		else if (i == 1)
			memset(key, 0xff, sizeof(key));
		else
			rand_fill(key, sizeof(key));
		struct lr_mac *m = lr_mac_new(key);
		assert_non_null(m);
		/* Several digests per key: the precomputed state is reused. */
		for (int j = 0; j < 4; j++) {
			rand_fill(d, sizeof(d));
			assert_int_equal(lr_mac_compute(m, d, got), 0);
			hmac_sha256(key, d, 32, want);
			assert_memory_equal(got, want, 32);
		}
		lr_mac_free(m);
	}
}

static void test_digest_short(void **state)
{
	(void)state;
	uint8_t d[32], h[32];

	assert_int_equal(lr_digest("short", 5, d, h), -EINVAL);
}

static void test_scan_refuses_truncations(void **state)
{
	struct fx *fx = *state;
	uint8_t prev[32], hash[32];
	struct lr_frame f;
	size_t len;

	rand_fill(prev, sizeof(prev));
	char *line = make_line(fx->m, 12345, TS0, "update", ",\"rows\":7,\"stmt\":\"UPDATE t SET a = $1\"",
	                       prev, hash, &len);
	assert_null(lr_scan(line, len, &f));
	for (size_t n = 0; n < len; n++) {
		if (lr_scan(line, n, &f) == NULL)
			fail_msg("lr_scan accepted the line cut to %zu of %zu bytes", n, len);
	}
	/* A cut at the front is no better. */
	for (size_t n = 1; n < len; n++)
		assert_non_null(lr_scan(line + n, len - n, &f));
	free(line);
}

static void expect_refused(const char *line, const char *what)
{
	struct lr_frame f;

	if (lr_scan(line, strlen(line), &f) == NULL)
		fail_msg("lr_scan accepted a line with %s", what);
}

static void test_scan_refuses(void **state)
{
	struct fx *fx = *state;
	uint8_t prev[32], hash[32];
	size_t len;
	char *s;

	memset(prev, 0xab, sizeof(prev)); /* prev hex is "abab..." */
	char *line = make_line(fx->m, 7, TS0, "select", ",\"rows\":1", prev, hash, &len);
	assert_null(lr_scan(line, len, &(struct lr_frame){ 0 }));

	struct {
		const char *from, *to, *what;
	} edits[] = {
		{ "{\"seq\":7,", "{\"seq\":07,", "a leading-zero seq" },
		{ "{\"seq\":7,", "{\"seq\":0,", "seq 0" },
		{ "{\"seq\":7,", "{\"seq\":-7,", "a negative seq" },
		{ "{\"seq\":7,", "{\"seq\":+7,", "a signed seq" },
		{ "{\"seq\":7,", "{\"seq\": 7,", "a space before seq" },
		{ "{\"seq\":7,", "{\"seq\":7 ,", "a space after seq" },
		{ "{\"seq\":7,", "{\"seq\":\"7\",", "a quoted seq" },
		{ "{\"seq\":7,", "{\"seq\":99999999999999999999,", "a seq over 2^64" },
		{ "{\"seq\":7,", "{ \"seq\":7,", "a space in the head" },
		{ "{\"seq\":7,", "{\"Seq\":7,", "a renamed seq key" },
		{ "\"ts\":\"2024", "\"ts\":\"24", "a short time stamp" },
		{ "\"ts\":", "\"time\":", "a renamed ts key" },
		{ "\"type\":\"select\"", "\"type\":\"sel3ct\"", "a type with a digit" },
		{ "\"type\":\"select\"", "\"type\":\"Select\"", "a type with upper case" },
		{ "\"type\":\"select\"", "\"type\":\"seLect\"", "a type with upper case inside" },
		{ "\"type\":\"select\"", "\"type\":\"sel-ect\"", "a type with a dash" },
		{ "\"type\":\"select\"", "\"type\":\"sel ect\"", "a type with a space" },
		{ "\"type\":\"select\"", "\"type\":\"\"", "an empty type" },
		{ "\"type\":\"select\"", "\"type\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", "a 33-char type" },
		{ "\"type\":\"select\"", "\"type\":select", "an unquoted type" },
		{ "\"select\",", "\"select\"x,", "a body not starting with a comma" },
		{ "\"prev\":\"abab", "\"prev\":\"ABab", "upper-case hex in prev" },
		{ "\"prev\":\"abab", "\"prev\":\"abaB", "one upper-case hex digit in prev" },
		{ "\"prev\":\"abab", "\"prev\":\"gbab", "a non-hex digit in prev" },
		{ "\"prev\":\"abab", "\"prev\":\"bab", "a short prev" },
		{ "\"prev\":", "\"prev\" :", "a space in the prev key" },
		{ "\"mac\":\"", "\"mac\" :\"", "a space in the mac key" },
		{ "\"mac\":\"", "\"MAC\":\"", "an upper-case mac key" },
		{ "\"}", "\" ", "a missing closing brace" },
		{ "\"}", "\"]", "a bracket for the brace" },
		{ "\"}", "\"}}", "a doubled brace" },
		{ "\"}", "\"} ", "trailing space" },
		{ "\"}", "\"}\n", "a newline inside" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(edits); i++) {
		s = edit(line, edits[i].from, edits[i].to);
		expect_refused(s, edits[i].what);
		free(s);
	}

	/* Upper case and non-hex in the mac: every position. */
	char *mac = strstr(line, "\"mac\":\"") + 7;
	for (size_t i = 0; i < 64; i++) {
		s = strdup(line);
		char *p = s + (mac - line);
		char c = p[i];
		p[i] = c >= 'a' && c <= 'f' ? (char)(c - 'a' + 'A') : 'x';
		expect_refused(s, "a bad mac digit");
		free(s);
	}
	/* The same for prev. */
	char *pv = strstr(line, "\"prev\":\"") + 8;
	for (size_t i = 0; i < 64; i++) {
		s = strdup(line);
		char *p = s + (pv - line);
		p[i] = p[i] == 'a' ? 'A' : 'B';
		expect_refused(s, "an upper-case prev digit");
		free(s);
	}
	free(line);

	/* Types lr_begin writes without checking; lr_scan refuses them. */
	const char *bad_types[] = { "ab1", "aBc", "A", "type2", "a.b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
	for (size_t i = 0; i < ARRAY_SIZE(bad_types); i++) {
		s = make_line(fx->m, 9, TS0, bad_types[i], "", prev, hash, &len);
		expect_refused(s, "a malformed type");
		free(s);
	}
	/* seq 0 as lr_begin writes it. */
	s = make_line(fx->m, 0, TS0, "select", "", prev, hash, &len);
	expect_refused(s, "seq 0");
	free(s);
	/* Too long. */
	struct buf big = BUF_INIT;
	lr_begin(&big, 1, TS0, "big");
	buf_adds(&big, ",\"x\":\"");
	while (big.len < LR_MAX_LINE)
		buf_adds(&big, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	buf_addc(&big, '"');
	uint8_t h[32];
	assert_int_equal(lr_finish(&big, 0, prev, fx->m, h), 0);
	struct lr_frame f;
	const char *why = lr_scan(big.p, big.len - 1, &f);
	assert_non_null(why);
	assert_non_null(strstr(why, "long"));
	buf_free(&big);
}

/* ---- bodies the log writes itself ------------------------------------ */

static void test_checkpoint_body(void **state)
{
	struct fx *fx = *state;
	const uint64_t epochs[] = { 1, 2, 9, 10, 123456789, 1000000000000000000ull };
	uint8_t sig[LOG_SIG_LEN], got[LOG_SIG_LEN], prev[32], hash[32];

	rand_fill(prev, sizeof(prev));
	for (size_t i = 0; i < ARRAY_SIZE(epochs); i++) {
		struct buf body = BUF_INIT;
		rand_fill(sig, sizeof(sig));
		lr_checkpoint_body(&body, epochs[i], sig);
		buf_addc(&body, '\0');
		size_t len;
		char *line = make_line(fx->m, 100 + i, TS0, "checkpoint", body.p, prev, hash, &len);
		struct lr_frame f;
		assert_null(lr_scan(line, len, &f));
		assert_true(lr_is(&f, "checkpoint"));
		uint64_t epoch = 0;
		memset(got, 0, sizeof(got));
		assert_true(lr_checkpoint_parse(&f, &epoch, got));
		assert_true(epoch == epochs[i]);
		assert_memory_equal(got, sig, LOG_SIG_LEN);
		free(line);
		buf_free(&body);
	}
}

static bool parse_cp_body(const char *body, uint64_t *epoch, uint8_t sig[LOG_SIG_LEN])
{
	struct lr_frame f = { .body = body, .bodylen = strlen(body) };
	return lr_checkpoint_parse(&f, epoch, sig);
}

static void test_checkpoint_parse_refuses(void **state)
{
	(void)state;
	char hex[2 * LOG_SIG_LEN + 1], buf[512];
	uint8_t sig[LOG_SIG_LEN];
	uint64_t epoch;

	memset(hex, '7', 2 * LOG_SIG_LEN);
	hex[2 * LOG_SIG_LEN] = '\0';
	snprintf(buf, sizeof(buf), ",\"epoch\":5,\"sig\":\"%s\"", hex);
	assert_true(parse_cp_body(buf, &epoch, sig));
	assert_true(epoch == 5);

	/* A short sig: 126 and 127 hex digits. */
	snprintf(buf, sizeof(buf), ",\"epoch\":5,\"sig\":\"%.126s\"", hex);
	assert_false(parse_cp_body(buf, &epoch, sig));
	snprintf(buf, sizeof(buf), ",\"epoch\":5,\"sig\":\"%.127s\"", hex);
	assert_false(parse_cp_body(buf, &epoch, sig));
	snprintf(buf, sizeof(buf), ",\"epoch\":5,\"sig\":\"\"");
	assert_false(parse_cp_body(buf, &epoch, sig));
	/* A long one. */
	snprintf(buf, sizeof(buf), ",\"epoch\":5,\"sig\":\"%s77\"", hex);
	assert_false(parse_cp_body(buf, &epoch, sig));
	/* Upper case. */
	hex[10] = 'A';
	snprintf(buf, sizeof(buf), ",\"epoch\":5,\"sig\":\"%s\"", hex);
	assert_false(parse_cp_body(buf, &epoch, sig));
	hex[10] = '7';
	/* Epochs. */
	const char *epochs[] = { "0", "05", "-5", "", "x", "5.0", "\"5\"" };
	for (size_t i = 0; i < ARRAY_SIZE(epochs); i++) {
		snprintf(buf, sizeof(buf), ",\"epoch\":%s,\"sig\":\"%s\"", epochs[i], hex);
		if (parse_cp_body(buf, &epoch, sig))
			fail_msg("checkpoint with epoch %s accepted", epochs[i]);
	}
	/* Shape. */
	snprintf(buf, sizeof(buf), ",\"epoch\":5,\"sig\":\"%s", hex);
	assert_false(parse_cp_body(buf, &epoch, sig));
	snprintf(buf, sizeof(buf), ",\"epoch\":5,\"sig\":\"%s\",\"x\":1", hex);
	assert_false(parse_cp_body(buf, &epoch, sig));
	snprintf(buf, sizeof(buf), ",\"sig\":\"%s\",\"epoch\":5", hex);
	assert_false(parse_cp_body(buf, &epoch, sig));
	snprintf(buf, sizeof(buf), ",\"epoch\":5, \"sig\":\"%s\"", hex);
	assert_false(parse_cp_body(buf, &epoch, sig));
	assert_false(parse_cp_body("", &epoch, sig));
}

static void test_init_body(void **state)
{
	struct fx *fx = *state;
	uint8_t id[LOG_ID_LEN], got[LOG_ID_LEN], zero[32] = { 0 }, hash[32];
	struct buf body = BUF_INIT;

	rand_fill(id, sizeof(id));
	lr_init_body(&body, id);
	buf_addc(&body, '\0');
	size_t len;
	char *line = make_line(fx->m, 1, TS0, "log_init", body.p, zero, hash, &len);
	struct lr_frame f;
	assert_null(lr_scan(line, len, &f));
	assert_true(lr_is(&f, "log_init"));
	memset(got, 0, sizeof(got));
	assert_true(lr_init_parse(&f, got));
	assert_memory_equal(got, id, LOG_ID_LEN);
	free(line);

	/* Refused variants. */
	char hex[2 * LOG_ID_LEN + 1], buf[256];
	hex_encode(id, LOG_ID_LEN, hex);
	const char *fmts[] = {
		",\"log\":\"%s\",\"version\":2",   ",\"log\":\"%s\",\"version\":1,\"x\":1",
		",\"log\":\"%s\",\"version\":10",  ",\"log\":\"%s\"",
		",\"log\":\"%s\", \"version\":1",  ",\"log\":\"%.30s\",\"version\":1",
		",\"log\":\"%s00\",\"version\":1", ",\"version\":1,\"log\":\"%s\"",
	};
	for (size_t i = 0; i < ARRAY_SIZE(fmts); i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		snprintf(buf, sizeof(buf), fmts[i], hex);
#pragma GCC diagnostic pop
		struct lr_frame g = { .body = buf, .bodylen = strlen(buf) };
		if (lr_init_parse(&g, got))
			fail_msg("log_init body %zu accepted", i);
	}
	/* Upper-case id. */
	snprintf(buf, sizeof(buf), ",\"log\":\"%s\",\"version\":1", hex);
	struct lr_frame g = { .body = buf, .bodylen = strlen(buf) };
	assert_true(lr_init_parse(&g, got));
	char *p = strstr(buf, hex);
	for (size_t i = 0; i < 32; i++) {
		if (p[i] >= 'a' && p[i] <= 'f') {
			p[i] = (char)(p[i] - 'a' + 'A');
			break;
		}
		if (i == 31) /* all digits: make one non-hex */
			p[i] = 'G';
	}
	assert_false(lr_init_parse(&g, got));
	buf_free(&body);
}

/* ---- logkey: ratchet and signatures --------------------------------- */

static void test_ratchet(void **state)
{
	(void)state;
	uint8_t k0[32], k1[32], k1b[32], k2[32], in[21 + 32], want[32], inplace[32];

	rand_fill(k0, sizeof(k0));
	logkey_ratchet(k0, k1);
	logkey_ratchet(k0, k1b);
	assert_memory_equal(k1, k1b, 32);
	assert_memory_not_equal(k1, k0, 32);
	logkey_ratchet(k1, k2);
	assert_memory_not_equal(k2, k1, 32);
	assert_memory_not_equal(k2, k0, 32);
	/* R(k) = SHA-256("custos-log-ratchet-v1" | k) */
	memcpy(in, "custos-log-ratchet-v1", 21);
	memcpy(in + 21, k0, 32);
	sha256(in, sizeof(in), want);
	assert_memory_equal(k1, want, 32);
	/* In place, as the writer uses it. */
	memcpy(inplace, k0, 32);
	logkey_ratchet(inplace, inplace);
	assert_memory_equal(inplace, k1, 32);
	/* Another k0 gives another k1. */
	k0[0] ^= 1;
	logkey_ratchet(k0, k1b);
	assert_memory_not_equal(k1b, k1, 32);
}

static void test_sign_verify(void **state)
{
	(void)state;
	uint8_t sk[32], pub[32], pub2[32], other_pub[32], id[LOG_ID_LEN], prev[32], sig[LOG_SIG_LEN],
	    sig2[LOG_SIG_LEN];
	const uint64_t seq = 1001, epoch = 7;

	rand_fill(sk, sizeof(sk));
	rand_fill(id, sizeof(id));
	rand_fill(prev, sizeof(prev));
	assert_int_equal(logkey_public(sk, pub), 0);
	assert_int_equal(logkey_public(sk, pub2), 0);
	assert_memory_equal(pub, pub2, 32);
	assert_int_equal(logkey_sign(sk, id, seq, epoch, prev, sig), 0);
	assert_true(logkey_verify_sig(pub, id, seq, epoch, prev, sig));
	/* Ed25519 is deterministic. */
	assert_int_equal(logkey_sign(sk, id, seq, epoch, prev, sig2), 0);
	assert_memory_equal(sig, sig2, LOG_SIG_LEN);

	assert_false(logkey_verify_sig(pub, id, seq + 1, epoch, prev, sig));
	assert_false(logkey_verify_sig(pub, id, seq - 1, epoch, prev, sig));
	assert_false(logkey_verify_sig(pub, id, seq | (1ull << 40), epoch, prev, sig));
	assert_false(logkey_verify_sig(pub, id, seq, epoch + 1, prev, sig));
	assert_false(logkey_verify_sig(pub, id, seq, epoch | (1ull << 63), prev, sig));
	/* seq and epoch are not interchangeable. */
	assert_int_equal(logkey_sign(sk, id, epoch, seq, prev, sig2), 0);
	assert_false(logkey_verify_sig(pub, id, seq, epoch, prev, sig2));
	for (size_t i = 0; i < 32; i++) {
		prev[i] ^= 0x01;
		assert_false(logkey_verify_sig(pub, id, seq, epoch, prev, sig));
		prev[i] ^= 0x01;
	}
	for (size_t i = 0; i < LOG_ID_LEN; i++) {
		id[i] ^= 0x80;
		assert_false(logkey_verify_sig(pub, id, seq, epoch, prev, sig));
		id[i] ^= 0x80;
	}
	for (size_t i = 0; i < LOG_SIG_LEN; i++) {
		sig[i] ^= 0x04;
		assert_false(logkey_verify_sig(pub, id, seq, epoch, prev, sig));
		sig[i] ^= 0x04;
	}
	assert_true(logkey_verify_sig(pub, id, seq, epoch, prev, sig));
	/* Another key's public key. */
	sk[0] ^= 1;
	assert_int_equal(logkey_public(sk, other_pub), 0);
	assert_memory_not_equal(other_pub, pub, 32);
	assert_false(logkey_verify_sig(other_pub, id, seq, epoch, prev, sig));
}

/* ---- logkey: key file ---------------------------------------------- */

static void make_keys(struct logkeys *k)
{
	uint8_t sk[32];

	memset(k, 0, sizeof(*k));
	rand_fill(k->log_id, sizeof(k->log_id));
	rand_fill(sk, sizeof(sk));
	assert_int_equal(logkey_public(sk, k->pub), 0);
	rand_fill(k->seed, sizeof(k->seed));
	k->has_seed = true;
}

static size_t count_lines(const struct buf *b)
{
	size_t n = 0;
	for (size_t i = 0; i < b->len; i++)
		n += b->p[i] == '\n';
	return n;
}

static void test_keyfile_round_trip(void **state)
{
	(void)state;
	struct logkeys k, got;
	struct buf b = BUF_INIT;
	char err[256], seedhex[65];

	make_keys(&k);
	logkey_format(&k, true, &b);
	assert_false(b.failed);
	assert_memory_equal(b.p, "custos-log-key 1\n", 17);
	memset(&got, 0x55, sizeof(got));
	assert_int_equal(logkey_parse(b.p, b.len, &got, err, sizeof(err)), 0);
	assert_true(got.has_seed);
	assert_memory_equal(got.log_id, k.log_id, LOG_ID_LEN);
	assert_memory_equal(got.pub, k.pub, 32);
	assert_memory_equal(got.seed, k.seed, LOG_KEY_LEN);

	/* The public file has no seed, not even in another form. */
	buf_reset(&b);
	logkey_format(&k, false, &b);
	buf_addc(&b, '\0');
	hex_encode(k.seed, LOG_KEY_LEN, seedhex);
	assert_null(strstr(b.p, seedhex));
	assert_null(strstr(b.p, "mac-seed"));
	memset(&got, 0x55, sizeof(got));
	assert_int_equal(logkey_parse(b.p, b.len - 1, &got, err, sizeof(err)), 0);
	assert_false(got.has_seed);
	assert_memory_equal(got.log_id, k.log_id, LOG_ID_LEN);
	assert_memory_equal(got.pub, k.pub, 32);

	/* Without a final newline, and with blank and comment lines. */
	char hex[65], text[512];
	hex_encode(k.log_id, LOG_ID_LEN, hex);
	int n = snprintf(text, sizeof(text), "custos-log-key 1\n\n# comment\nlog-id %s\n", hex);
	hex_encode(k.pub, 32, hex);
	n += snprintf(text + n, sizeof(text) - (size_t)n, "public-key %s", hex);
	assert_int_equal(logkey_parse(text, (size_t)n, &got, err, sizeof(err)), 0);
	assert_memory_equal(got.pub, k.pub, 32);
	assert_false(got.has_seed);
	buf_free(&b);
}

/* Expects logkey_parse to refuse text, naming line want_line. */
static void expect_key_refused(const char *text, size_t len, size_t want_line, const char *what)
{
	struct logkeys got;
	char err[256] = "", want[32];

	int r = logkey_parse(text, len, &got, err, sizeof(err));
	if (r != -EINVAL)
		fail_msg("key file with %s: logkey_parse returned %d", what, r);
	snprintf(want, sizeof(want), "line %zu:", want_line);
	if (strncmp(err, want, strlen(want)))
		fail_msg("key file with %s: error \"%s\", want it to start with \"%s\"", what, err, want);
}

static void test_keyfile_refuses(void **state)
{
	(void)state;
	struct logkeys k;
	struct buf b = BUF_INIT, t = BUF_INIT;
	char hex[65];

	make_keys(&k);
	logkey_format(&k, true, &b);
	size_t lines = count_lines(&b);
	hex_encode(k.log_id, LOG_ID_LEN, hex);

	/* Missing or wrong header. */
	const char *nl = memchr(b.p, '\n', b.len);
	expect_key_refused(nl + 1, b.len - (size_t)(nl + 1 - b.p), 1, "no header");
	buf_adds(&t, "custos-log-key 2");
	buf_add(&t, nl, b.len - (size_t)(nl - b.p));
	expect_key_refused(t.p, t.len, 1, "a version 2 header");
	buf_reset(&t);
	buf_adds(&t, "custos-log-key 1 ");
	buf_add(&t, nl, b.len - (size_t)(nl - b.p));
	expect_key_refused(t.p, t.len, 1, "a trailing space in the header");
	expect_key_refused("", 0, 1, "nothing");

	/* Lines added at the end: each names the added line. */
	const char *extra[] = {
		"colour 00",  "log-id 00112233445566778899aabbccddeeff", "log-id",
		"#ok\nbogus", "Log-id 00112233445566778899aabbccddeeff",
	};
	const size_t extra_line[] = { lines + 1, lines + 1, lines + 1, lines + 2, lines + 1 };
	const char *extra_what[] = { "an unknown key", "a duplicated log-id", "a name without value",
		                     "an unknown key after a comment", "a name in upper case" };
	for (size_t i = 0; i < ARRAY_SIZE(extra); i++) {
		buf_reset(&t);
		buf_add(&t, b.p, b.len);
		buf_adds(&t, extra[i]);
		buf_addc(&t, '\n');
		expect_key_refused(t.p, t.len, extra_line[i], extra_what[i]);
	}

	/* An empty or short seed added to a public file. */
	struct buf pub = BUF_INIT;
	logkey_format(&k, false, &pub);
	size_t publines = count_lines(&pub);
	const char *seeds[] = { "mac-seed ", "mac-seed 0011", "mac-seed  00112233445566778899aabbccddeeff" };
	for (size_t i = 0; i < ARRAY_SIZE(seeds); i++) {
		buf_reset(&t);
		buf_add(&t, pub.p, pub.len);
		buf_adds(&t, seeds[i]);
		expect_key_refused(t.p, t.len, publines + 1, "a malformed seed");
	}
	buf_free(&pub);

	/* A duplicated line, byte for byte. */
	buf_reset(&t);
	buf_add(&t, b.p, b.len);
	buf_printf(&t, "log-id %s\n", hex);
	expect_key_refused(t.p, t.len, lines + 1, "a duplicated line");

	/* Bad hex in a value: replace the log-id line. */
	char bad[128];
	const char *badvals[] = { "00112233445566778899aabbccddee", "00112233445566778899aabbccddeeff00",
		                  "00112233445566778899AABBCCDDEEFF", "00112233445566778899aabbccddeefg",
		                  "0011223344556677 8899aabbccddeef" };
	char *logid_line = strstr(b.p, "log-id ");
	assert_non_null(logid_line);
	size_t logid_lineno = 1;
	for (const char *p = b.p; p < logid_line; p++)
		logid_lineno += *p == '\n';
	for (size_t i = 0; i < ARRAY_SIZE(badvals); i++) {
		buf_reset(&t);
		buf_add(&t, b.p, (size_t)(logid_line - b.p));
		snprintf(bad, sizeof(bad), "log-id %s", badvals[i]);
		buf_adds(&t, bad);
		const char *rest = strchr(logid_line, '\n');
		buf_add(&t, rest, b.len - (size_t)(rest - b.p));
		expect_key_refused(t.p, t.len, logid_lineno, "a bad log-id value");
	}

	/* Missing public key or log id: the file as a whole is refused. */
	buf_reset(&t);
	buf_printf(&t, "custos-log-key 1\nlog-id %s\n", hex);
	expect_key_refused(t.p, t.len, 1, "no public key");
	hex_encode(k.pub, 32, hex);
	buf_reset(&t);
	buf_printf(&t, "custos-log-key 1\npublic-key %s\n", hex);
	expect_key_refused(t.p, t.len, 1, "no log id");
	buf_free(&b);
	buf_free(&t);
}

/* ---- logkey: state file -------------------------------------------- */

static void make_state(struct logstate *s, uint64_t epoch)
{
	memset(s, 0, sizeof(*s));
	rand_fill(s->log_id, sizeof(s->log_id));
	rand_fill(s->mac_key, sizeof(s->mac_key));
	rand_fill(s->sign_key, sizeof(s->sign_key));
	s->epoch = epoch;
}

static void test_state_round_trip(void **state)
{
	(void)state;
	const uint64_t epochs[] = { 1, 2, 123456789, UINT64_MAX };
	struct logstate s, got;
	struct buf b = BUF_INIT;
	size_t len0 = 0;

	for (size_t i = 0; i < ARRAY_SIZE(epochs); i++) {
		make_state(&s, epochs[i]);
		buf_reset(&b);
		logstate_format(&s, &b);
		assert_false(b.failed);
		/* The same size whatever the epoch: it is overwritten in place. */
		if (i == 0)
			len0 = b.len;
		assert_int_equal(b.len, len0);
		memset(&got, 0x5a, sizeof(got));
		assert_int_equal(logstate_parse(b.p, b.len, &got), 0);
		assert_memory_equal(got.log_id, s.log_id, LOG_ID_LEN);
		assert_true(got.epoch == s.epoch);
		assert_memory_equal(got.mac_key, s.mac_key, LOG_KEY_LEN);
		assert_memory_equal(got.sign_key, s.sign_key, 32);
	}
	/* Formatting appends. */
	buf_reset(&b);
	buf_adds(&b, "xyz");
	logstate_format(&s, &b);
	assert_int_equal(b.len, 3 + len0);
	assert_int_equal(logstate_parse(b.p + 3, b.len - 3, &got), 0);
	buf_free(&b);
}

static void test_state_same_length(void **state)
{
	(void)state;
	struct logstate s;
	struct buf a = BUF_INIT, b = BUF_INIT;

	make_state(&s, 1);
	logstate_format(&s, &a);
	s.epoch = 123456789;
	logstate_format(&s, &b);
	assert_int_equal(a.len, b.len);
	assert_memory_not_equal(a.p, b.p, a.len);
	buf_free(&a);
	buf_free(&b);
}

static void test_state_check_line(void **state)
{
	(void)state;
	struct logstate s, got;
	struct buf b = BUF_INIT;
	size_t changed = 0;

	make_state(&s, 42);
	logstate_format(&s, &b);
	char *t = malloc(b.len);
	assert_non_null(t);
	/* Every byte of every value (after "name "), changed to another
	 * valid digit: the check line catches it. */
	const char *p = memchr(b.p, '\n', b.len) + 1; /* after the header */
	while (p < b.p + b.len) {
		const char *eol = memchr(p, '\n', (size_t)(b.p + b.len - p));
		const char *v = memchr(p, ' ', (size_t)(eol - p)) + 1;
		for (const char *c = v; c < eol; c++) {
			size_t off = (size_t)(c - b.p);
			memcpy(t, b.p, b.len);
			t[off] = *c == '0' ? '1' : '0';
			int r = logstate_parse(t, b.len, &got);
			if (r != -EBADMSG)
				fail_msg("state with byte %zu changed: %d, want -EBADMSG", off, r);
			changed++;
		}
		p = eol + 1;
	}
	assert_int_equal(changed, 32 + 20 + 64 + 64 + 64);
	assert_int_equal(logstate_parse(b.p, b.len, &got), 0);
	free(t);
	buf_free(&b);
}

static void test_state_malformed(void **state)
{
	(void)state;
	struct logstate s, got;
	struct buf b = BUF_INIT, t = BUF_INIT;

	make_state(&s, 3);
	logstate_format(&s, &b);
	/* Every truncation. */
	for (size_t n = 0; n < b.len; n++)
		assert_int_not_equal(logstate_parse(b.p, n, &got), 0);
	/* Extra bytes after the check line. */
	buf_add(&t, b.p, b.len);
	buf_addc(&t, '\n');
	assert_int_not_equal(logstate_parse(t.p, t.len, &got), 0);
	/* Names, header and characters outside the alphabet. */
	const struct {
		const char *from, *to;
	} edits[] = {
		{ "custos-log-state 1", "custos-log-state 2" },
		{ "epoch ", "epocj " },
		{ "mac-key ", "mac-kez " },
		{ "sign-key ", "sign-kez " },
		{ "log-id ", "log-ie " },
		{ "epoch 0", "epoch x" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(edits); i++) {
		buf_reset(&t);
		buf_add(&t, b.p, b.len);
		buf_addc(&t, '\0');
		char *e = edit(t.p, edits[i].from, edits[i].to);
		int r = logstate_parse(e, strlen(e), &got);
		if (r == 0)
			fail_msg("state with \"%s\" for \"%s\" accepted", edits[i].to, edits[i].from);
		free(e);
	}
	/* An upper-case digit in the mac key. */
	buf_reset(&t);
	buf_add(&t, b.p, b.len);
	char *mk = memmem(t.p, t.len, "mac-key ", 8) + 8;
	for (int i = 0; i < 64; i++)
		if (mk[i] >= 'a' && mk[i] <= 'f') {
			mk[i] = (char)(mk[i] - 'a' + 'A');
			break;
		} else if (i == 63) {
			mk[i] = 'G';
		}
	assert_int_equal(logstate_parse(t.p, t.len, &got), -EINVAL);
	buf_free(&b);
	buf_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_build_and_scan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain, setup, teardown),
		cmocka_unit_test(test_mac_matches_openssl_hmac),
		cmocka_unit_test(test_digest_short),
		cmocka_unit_test_setup_teardown(test_scan_refuses_truncations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_body, setup, teardown),
		cmocka_unit_test(test_checkpoint_parse_refuses),
		cmocka_unit_test_setup_teardown(test_init_body, setup, teardown),
		cmocka_unit_test(test_ratchet),
		cmocka_unit_test(test_sign_verify),
		cmocka_unit_test(test_keyfile_round_trip),
		cmocka_unit_test(test_keyfile_refuses),
		cmocka_unit_test(test_state_round_trip),
		cmocka_unit_test(test_state_same_length),
		cmocka_unit_test(test_state_check_line),
		cmocka_unit_test(test_state_malformed),
	};

	return cmocka_run_group_tests_name("logrec", tests, group_setup, NULL);
}
