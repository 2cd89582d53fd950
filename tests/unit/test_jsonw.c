/* test_jsonw.c - JSON string escaping (daemon/jsonw.c), checked against
 * exact expected text and against jansson's parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "buf.h"
#include "jsonw.h"

#define FFFD "\xef\xbf\xbd"

/* Loads JSON text that must be a single string; returns it (malloc'ed) and
 * its length, or NULL when jansson refuses the text. */
static char *parse_string(const char *text, size_t len, size_t *ret_len)
{
	json_error_t je;
	json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);

	if (!j)
		return NULL;
	if (!json_is_string(j)) {
		json_decref(j);
		return NULL;
	}
	size_t n = json_string_length(j);
	char *s = malloc(n + 1);
	assert_non_null(s);
	memcpy(s, json_string_value(j), n + 1);
	*ret_len = n;
	json_decref(j);
	return s;
}

/* Valid input: the exact output, and jansson gives the input back. */
struct valid_case {
	const char *name;
	const char *in;
	size_t inlen;
	const char *out; /* with the quotes */
};

#define VC(name, in, out)                                                                                    \
	{                                                                                                    \
		name, in, sizeof(in) - 1, out                                                                \
	}

static const struct valid_case valid_cases[] = {
	VC("empty", "", "\"\""),
	VC("plain ascii", "hello world", "\"hello world\""),
	VC("quote", "say \"hi\"", "\"say \\\"hi\\\"\""),
	VC("backslash", "a\\b", "\"a\\\\b\""),
	VC("only quote", "\"", "\"\\\"\""),
	VC("only backslash", "\\", "\"\\\\\""),
	VC("slash not escaped", "a/b", "\"a/b\""),
	VC("newline", "a\nb", "\"a\\nb\""),
	VC("carriage return", "a\rb", "\"a\\rb\""),
	VC("tab", "a\tb", "\"a\\tb\""),
	VC("crlf", "\r\n", "\"\\r\\n\""),
	VC("nul", "a\0b", "\"a\\u0000b\""),
	VC("soh", "\x01", "\"\\u0001\""),
	VC("backspace", "\b", "\"\\u0008\""),
	VC("form feed", "\f", "\"\\u000c\""),
	VC("vertical tab", "\v", "\"\\u000b\""),
	VC("escape", "\x1b[0m", "\"\\u001b[0m\""),
	VC("unit separator", "\x1f", "\"\\u001f\""),
	VC("space", " ", "\" \""),
	VC("del passes", "\x7f", "\"\x7f\""),
	VC("all specials", "\"\\\n\r\t\x01", "\"\\\"\\\\\\n\\r\\t\\u0001\""),
	VC("2-byte e acute", "caf\xc3\xa9", "\"caf\xc3\xa9\""),
	VC("2-byte lowest U+0080", "\xc2\x80", "\"\xc2\x80\""),
	VC("2-byte highest U+07FF", "\xdf\xbf", "\"\xdf\xbf\""),
	VC("3-byte euro", "\xe2\x82\xac 5", "\"\xe2\x82\xac 5\""),
	VC("3-byte lowest U+0800", "\xe0\xa0\x80", "\"\xe0\xa0\x80\""),
	VC("3-byte before surrogates U+D7FF", "\xed\x9f\xbf", "\"\xed\x9f\xbf\""),
	VC("3-byte after surrogates U+E000", "\xee\x80\x80", "\"\xee\x80\x80\""),
	VC("3-byte U+FFFD itself", FFFD, "\"" FFFD "\""),
	VC("3-byte U+FFFF", "\xef\xbf\xbf", "\"\xef\xbf\xbf\""),
	VC("4-byte emoji", "\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""),
	VC("4-byte lowest U+10000", "\xf0\x90\x80\x80", "\"\xf0\x90\x80\x80\""),
	VC("4-byte highest U+10FFFF", "\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""),
	VC("mixed", "\xce\xb1\"\xe4\xb8\xad\n\xf0\x9f\x8e\x89\\",
	   "\"\xce\xb1\\\"\xe4\xb8\xad\\n\xf0\x9f\x8e\x89\\\\\""),
	VC("cjk text", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\""),
};

/* Invalid input: the output is prefix, then one or more U+FFFD (at most
 * one per bad byte), then suffix; nothing of the bad bytes survives. */
struct invalid_case {
	const char *name;
	const char *in;
	size_t inlen;
	const char *prefix, *suffix; /* decoded */
	size_t bad_bytes;
};

#define IC(name, in, prefix, suffix, bad)                                                                    \
	{                                                                                                    \
		name, in, sizeof(in) - 1, prefix, suffix, bad                                                \
	}

static const struct invalid_case invalid_cases[] = {
	IC("lone continuation", "a\x80z", "a", "z", 1),
	IC("lone continuation at start", "\xbfz", "", "z", 1),
	IC("lone continuation at end", "a\xbf", "a", "", 1),
	IC("two continuations", "a\x80\x80z", "a", "z", 2),
	IC("overlong nul C0 80", "a\xc0\x80z", "a", "z", 2),
	IC("overlong slash C1 AF", "a\xc1\xafz", "a", "z", 2),
	IC("overlong 3-byte E0 80 80", "a\xe0\x80\x80z", "a", "z", 3),
	IC("overlong 3-byte E0 9F BF", "a\xe0\x9f\xbfz", "a", "z", 3),
	IC("overlong 4-byte F0 80 80 80", "a\xf0\x80\x80\x80z", "a", "z", 4),
	IC("overlong 4-byte F0 8F BF BF", "a\xf0\x8f\xbf\xbfz", "a", "z", 4),
	IC("surrogate ED A0 80", "a\xed\xa0\x80z", "a", "z", 3),
	IC("surrogate ED BF BF", "a\xed\xbf\xbfz", "a", "z", 3),
	IC("surrogate pair as CESU", "\xed\xa0\xbd\xed\xb8\x80", "", "", 6),
	IC("above U+10FFFF F4 90 80 80", "a\xf4\x90\x80\x80z", "a", "z", 4),
	IC("lead F5", "a\xf5\x80\x80\x80z", "a", "z", 4),
	IC("lead FE", "a\xfez", "a", "z", 1),
	IC("lead FF", "a\xffz", "a", "z", 1),
	IC("truncated 2-byte at end", "ab\xc3", "ab", "", 1),
	IC("truncated 3-byte at end", "ab\xe2\x82", "ab", "", 2),
	IC("truncated 4-byte at end", "ab\xf0\x9f\x98", "ab", "", 3),
	IC("truncated 3-byte before ascii", "a\xe2\x82z", "a", "z", 2),
	IC("truncated 4-byte before quote", "a\xf0\x9f\x98\"", "a", "\"", 3),
	IC("lead followed by lead", "a\xc3\xc3\xa9", "a", "\xc3\xa9", 1),
	IC("latin-1 text", "caf\xe9", "caf", "", 1),
	IC("latin-1 then newline", "\xe9\n", "", "\n", 1),
};

static void check_output_valid_json(const struct buf *b, size_t start)
{
	/* The output holds no raw control characters. */
	for (size_t i = start; i < b->len; i++)
		assert_true((unsigned char)b->p[i] >= 0x20);
}

static void test_valid_table(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < ARRAY_SIZE(valid_cases); i++) {
		const struct valid_case *c = &valid_cases[i];
		buf_reset(&b);
		jw_strn(&b, c->in, c->inlen);
		assert_false(b.failed);
		if (b.len != strlen(c->out) || memcmp(b.p, c->out, b.len))
			fail_msg("case \"%s\": output %.*s", c->name, (int)b.len, b.p);
		check_output_valid_json(&b, 0);
		size_t n;
		char *s = parse_string(b.p, b.len, &n);
		if (!s)
			fail_msg("case \"%s\": jansson refused the output", c->name);
		if (n != c->inlen || memcmp(s, c->in, n))
			fail_msg("case \"%s\": jansson read back something else", c->name);
		free(s);
	}
	buf_free(&b);
}

static void test_invalid_table(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < ARRAY_SIZE(invalid_cases); i++) {
		const struct invalid_case *c = &invalid_cases[i];
		buf_reset(&b);
		jw_strn(&b, c->in, c->inlen);
		assert_false(b.failed);
		check_output_valid_json(&b, 0);
		size_t n;
		char *s = parse_string(b.p, b.len, &n);
		if (!s)
			fail_msg("case \"%s\": jansson refused the output %.*s", c->name, (int)b.len, b.p);
		size_t pl = strlen(c->prefix), sl = strlen(c->suffix);
		if (n < pl + sl || memcmp(s, c->prefix, pl) || memcmp(s + n - sl, c->suffix, sl))
			fail_msg("case \"%s\": valid bytes around the bad ones were not kept", c->name);
		size_t mid = n - pl - sl;
		if (mid == 0 || mid % 3)
			fail_msg("case \"%s\": %zu bytes in place of the bad ones", c->name, mid);
		for (size_t k = 0; k < mid; k += 3)
			if (memcmp(s + pl + k, FFFD, 3))
				fail_msg("case \"%s\": bad bytes not replaced by U+FFFD", c->name);
		if (mid / 3 > c->bad_bytes)
			fail_msg("case \"%s\": %zu replacements for %zu bad bytes", c->name, mid / 3,
			         c->bad_bytes);
		free(s);
	}
	buf_free(&b);
}

/* jw_strn appends: what was in the buffer stays. */
static void test_appends(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;

	buf_adds(&b, "[1,");
	jw_str(&b, "x\"y");
	buf_addc(&b, ',');
	jw_strn(&b, "ab\0cd", 5);
	buf_addc(&b, ']');
	assert_int_equal(b.len, strlen("[1,\"x\\\"y\",\"ab\\u0000cd\"]"));
	assert_memory_equal(b.p, "[1,\"x\\\"y\",\"ab\\u0000cd\"]", b.len);
	buf_free(&b);
}

/* The length argument is honoured: bytes after n are not read. */
static void test_length_bounded(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;

	jw_strn(&b, "abc\"def", 3);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.p, "\"abc\"", 5);
	buf_reset(&b);
	/* A valid 2-byte sequence cut by n is invalid within n. */
	jw_strn(&b, "a\xc3\xa9", 2);
	assert_int_equal(b.len, 2 + 1 + 3);
	assert_memory_equal(b.p, "\"a" FFFD "\"", b.len);
	buf_free(&b);
}

/* Every single byte value, alone. */
static void test_every_byte(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;

	for (int c = 0; c < 256; c++) {
		char in = (char)c;
		buf_reset(&b);
		jw_strn(&b, &in, 1);
		size_t n;
		char *s = parse_string(b.p, b.len, &n);
		assert_non_null(s);
		if (c < 0x80) {
			assert_int_equal(n, 1);
			assert_int_equal((unsigned char)s[0], c);
		} else {
			assert_int_equal(n, 3);
			assert_memory_equal(s, FFFD, 3);
		}
		free(s);
	}
	buf_free(&b);
}

/* Random bytes always give text that jansson accepts; random valid UTF-8
 * comes back unchanged. */
static void test_random(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	unsigned char in[200];
	srandom(4242);

	for (int iter = 0; iter < 20000; iter++) {
		size_t n = (size_t)(random() % sizeof(in));
		for (size_t i = 0; i < n; i++)
			in[i] = (unsigned char)random();
		buf_reset(&b);
		jw_strn(&b, (const char *)in, n);
		check_output_valid_json(&b, 0);
		size_t m;
		char *s = parse_string(b.p, b.len, &m);
		if (!s)
			fail_msg("iteration %d: jansson refused the output", iter);
		free(s);
	}

	/* Valid UTF-8 made of random code points of every length. */
	for (int iter = 0; iter < 5000; iter++) {
		size_t n = 0;
		while (n + 4 <= sizeof(in)) {
			uint32_t cp;
			switch (random() % 4) {
			case 0: cp = (uint32_t)(random() % 0x80); break;
			case 1: cp = 0x80 + (uint32_t)(random() % (0x800 - 0x80)); break;
			case 2:
				do
					cp = 0x800 + (uint32_t)(random() % (0x10000 - 0x800));
				while (cp >= 0xd800 && cp <= 0xdfff);
				break;
			default: cp = 0x10000 + (uint32_t)(random() % (0x110000 - 0x10000)); break;
			}
			if (cp < 0x80) {
				in[n++] = (unsigned char)cp;
			} else if (cp < 0x800) {
				in[n++] = (unsigned char)(0xc0 | cp >> 6);
				in[n++] = (unsigned char)(0x80 | (cp & 0x3f));
			} else if (cp < 0x10000) {
				in[n++] = (unsigned char)(0xe0 | cp >> 12);
				in[n++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
				in[n++] = (unsigned char)(0x80 | (cp & 0x3f));
			} else {
				in[n++] = (unsigned char)(0xf0 | cp >> 18);
				in[n++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
				in[n++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
				in[n++] = (unsigned char)(0x80 | (cp & 0x3f));
			}
			if (random() % 16 == 0)
				break;
		}
		buf_reset(&b);
		jw_strn(&b, (const char *)in, n);
		size_t m;
		char *s = parse_string(b.p, b.len, &m);
		if (!s)
			fail_msg("iteration %d: jansson refused valid UTF-8 output", iter);
		if (m != n || memcmp(s, in, n))
			fail_msg("iteration %d: valid UTF-8 did not come back unchanged", iter);
		free(s);
	}
	buf_free(&b);
}

/* A long string crosses any internal chunking. */
static void test_long(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	size_t n = 100000;
	char *in = malloc(n);
	assert_non_null(in);

	for (size_t i = 0; i < n; i++)
		in[i] = "ab\"\\\n\xc3\xa9"[i % 7];
	/* Each period of 7 holds a valid é (0xC3 0xA9); 100000 % 7 == 5 does
	 * not cut one, so the whole input is valid UTF-8. */
	jw_strn(&b, in, n);
	assert_false(b.failed);
	size_t m;
	char *s = parse_string(b.p, b.len, &m);
	assert_non_null(s);
	assert_int_equal(m, n);
	assert_memory_equal(s, in, n);
	free(s);
	free(in);
	buf_free(&b);
}

static void test_numbers(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;

	jw_u64(&b, 0);
	buf_addc(&b, ' ');
	jw_u64(&b, UINT64_MAX);
	buf_addc(&b, ' ');
	jw_u64(&b, 10);
	buf_addc(&b, ' ');
	jw_i64(&b, INT64_MIN);
	buf_addc(&b, ' ');
	jw_i64(&b, -1);
	buf_addc(&b, '\0');
	assert_string_equal(b.p, "0 18446744073709551615 10 -9223372036854775808 -1");
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_table), cmocka_unit_test(test_invalid_table),
		cmocka_unit_test(test_appends),     cmocka_unit_test(test_length_bounded),
		cmocka_unit_test(test_every_byte),  cmocka_unit_test(test_random),
		cmocka_unit_test(test_long),        cmocka_unit_test(test_numbers),
	};

	return cmocka_run_group_tests_name("jsonw", tests, NULL, NULL);
}
