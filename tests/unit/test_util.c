/* test_util.c - hex, time stamps and number parsing (daemon/util.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "util.h"

/* ---- hex ---------------------------------------------------------------- */

static void test_hex_known(void **state)
{
	(void)state;
	const uint8_t in[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff };
	char out[2 * sizeof(in) + 1];

	memset(out, 'X', sizeof(out));
	hex_encode(in, sizeof(in), out);
	assert_string_equal(out, "00017f80abcdefff");

	uint8_t back[sizeof(in)];
	assert_true(hex_decode(out, strlen(out), back));
	assert_memory_equal(back, in, sizeof(in));

	/* Empty input: an empty string, and decoding nothing succeeds. */
	hex_encode(in, 0, out);
	assert_string_equal(out, "");
	assert_true(hex_decode("", 0, back));
}

static void test_hex_round_trip_all_bytes(void **state)
{
	(void)state;
	uint8_t in[256], back[256];
	char hex[2 * 256 + 1];

	for (int i = 0; i < 256; i++)
		in[i] = (uint8_t)i;
	hex_encode(in, sizeof(in), hex);
	assert_int_equal(strlen(hex), 512);
	for (size_t i = 0; i < 512; i++)
		assert_true((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'));
	memset(back, 0, sizeof(back));
	assert_true(hex_decode(hex, 512, back));
	assert_memory_equal(back, in, sizeof(in));
}

static void test_hex_refuses_upper_case(void **state)
{
	(void)state;
	uint8_t out[4];

	assert_true(hex_decode("abcdef01", 8, out));
	assert_false(hex_decode("ABCDEF01", 8, out));
	assert_false(hex_decode("abcdeF01", 8, out));
	assert_false(hex_decode("Abcdef01", 8, out));
	assert_false(hex_decode("abcdef0A", 8, out));
}

static void test_hex_refuses_non_hex(void **state)
{
	(void)state;
	uint8_t out[4];
	char s[9];

	/* Every byte that is not [0-9a-f], in every position. */
	for (int c = 0; c < 256; c++) {
		bool is_hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
		for (int pos = 0; pos < 8; pos++) {
			memcpy(s, "0123abcd", 9);
			s[pos] = (char)c;
			assert_int_equal(hex_decode(s, 8, out), is_hex);
		}
	}
	assert_false(hex_decode("0g", 2, out));
	assert_false(hex_decode("  ", 2, out));
	assert_false(hex_decode("0x", 2, out));
	assert_false(hex_decode("-1", 2, out));
}

static void test_hex_refuses_odd_length(void **state)
{
	(void)state;
	uint8_t out[4];

	assert_false(hex_decode("a", 1, out));
	assert_false(hex_decode("abc", 3, out));
	assert_false(hex_decode("0123456", 7, out));
	assert_true(hex_decode("0123456", 6, out)); /* the even prefix is fine */
	assert_memory_equal(out, "\x01\x23\x45", 3);
}

/* ---- time stamps -------------------------------------------------------- */

static void test_ts_format_known(void **state)
{
	(void)state;
	char ts[TS_LEN + 1];

	ts_format(0, ts);
	assert_string_equal(ts, "1970-01-01T00:00:00.000000Z");
	ts_format(1709164800LL * 1000000 + 123456, ts);
	assert_string_equal(ts, "2024-02-29T00:00:00.123456Z");
	ts_format(1795435200LL * 1000000 + 1, ts);
	assert_string_equal(ts, "2026-11-23T12:00:00.000001Z");
	ts_format(253402300799LL * 1000000 + 999999, ts);
	assert_string_equal(ts, "9999-12-31T23:59:59.999999Z");
	assert_int_equal(strlen(ts), TS_LEN);
}

/* The date and time are kept from the last call in the same second: a
 * new second, or an earlier one, must not reuse them. */
static void test_ts_format_reuses_only_the_same_second(void **state)
{
	(void)state;
	char ts[TS_LEN + 1];
	const int64_t s = 1795435200LL * 1000000;

	ts_format(s + 7, ts);
	assert_string_equal(ts, "2026-11-23T12:00:00.000007Z");
	ts_format(s + 999999, ts);
	assert_string_equal(ts, "2026-11-23T12:00:00.999999Z");
	ts_format(s + 1000000, ts);
	assert_string_equal(ts, "2026-11-23T12:00:01.000000Z");
	ts_format(s - 1, ts);
	assert_string_equal(ts, "2026-11-23T11:59:59.999999Z");
	ts_format(s + 86400LL * 1000000 + 10, ts);
	assert_string_equal(ts, "2026-11-24T12:00:00.000010Z");
	ts_format(-5, ts);
	assert_string_equal(ts, "1970-01-01T00:00:00.000000Z");
}

static void test_ts_round_trip_microseconds(void **state)
{
	(void)state;
	char ts[TS_LEN + 1];
	int64_t back;
	/* A spread of instants, each with a distinct microsecond part. */
	const int64_t fixed[] = {
		0,
		1,
		999999,
		1000000,
		946684800LL * 1000000 + 500000,
		1709164800LL * 1000000 + 123456,
		1709251199LL * 1000000 + 999999,
		253402300799LL * 1000000 + 999999,
	};

	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++) {
		ts_format(fixed[i], ts);
		assert_true(ts_parse(ts, &back));
		assert_int_equal(back, fixed[i]);
	}
	srandom(12345);
	for (int i = 0; i < 10000; i++) {
		int64_t us = ((int64_t)random() << 31 | random()) % (253402300799LL * 1000000);
		ts_format(us, ts);
		assert_int_equal(strlen(ts), TS_LEN);
		assert_true(ts_parse(ts, &back));
		assert_int_equal(back, us);
	}
	int64_t now = now_us();
	ts_format(now, ts);
	assert_true(ts_parse(ts, &back));
	assert_int_equal(back, now);
}

static void test_ts_parse_forms(void **state)
{
	(void)state;
	int64_t us = -1;

	assert_true(ts_parse("2024-02-29", &us));
	assert_int_equal(us, 1709164800LL * 1000000);
	assert_true(ts_parse("2024-02-29T00:00:00Z", &us));
	assert_int_equal(us, 1709164800LL * 1000000);
	assert_true(ts_parse("2024-02-29T12:34:56Z", &us));
	assert_int_equal(us, (1709164800LL + 12 * 3600 + 34 * 60 + 56) * 1000000);
	assert_true(ts_parse("2024-02-29T12:34:56.000007Z", &us));
	assert_int_equal(us, (1709164800LL + 12 * 3600 + 34 * 60 + 56) * 1000000 + 7);
	assert_true(ts_parse("1970-01-01", &us));
	assert_int_equal(us, 0);
	assert_true(ts_parse("2000-01-01", &us));
	assert_int_equal(us, 946684800LL * 1000000);
}

static void test_ts_parse_calendar(void **state)
{
	(void)state;
	int64_t us;
	const char *valid[] = {
		"2024-02-29", "2000-02-29", "2023-02-28",           "2023-12-31",
		"2023-01-31", "2023-04-30", "2024-02-29T23:59:59Z",
	};
	const char *invalid[] = {
		"2023-02-29", "2026-02-30",           "2100-02-29",
		"2023-04-31", "2023-06-31",           "2023-09-31",
		"2023-11-31", "2023-02-30T00:00:00Z", "2023-02-29T00:00:00.000000Z",
		"2024-02-30", "2024-01-32",           "2024-01-00",
		"2024-00-10", "2024-13-01",
	};

	for (size_t i = 0; i < ARRAY_SIZE(valid); i++) {
		if (!ts_parse(valid[i], &us))
			fail_msg("refused valid date %s", valid[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(invalid); i++) {
		if (ts_parse(invalid[i], &us))
			fail_msg("accepted invalid date %s", invalid[i]);
	}
}

static void test_ts_parse_malformed(void **state)
{
	(void)state;
	const char *bad[] = {
		"",
		"2024",
		"2024-02",
		"2024-2-29",
		"2024-02-9",
		"24-02-29",
		"2024/02/29",
		"2024-02-29 ",
		" 2024-02-29",
		"2024-02-29X",
		"2024-02-29T",
		"2024-02-29T00:00",
		"2024-02-29T00:00:00",
		"2024-02-29 00:00:00Z",
		"2024-02-29t00:00:00Z",
		"2024-02-29T00:00:00z",
		"2024-02-29T00-00-00Z",
		"2024-02-29T24:00:00Z",
		"2024-02-29T23:60:00Z",
		"2024-02-29T23:59:61Z",
		"2024-02-29T0a:00:00Z",
		"2024-02-29T00:00:00.Z",
		"2024-02-29T00:00:00.1Z",
		"2024-02-29T00:00:00.12345Z",
		"2024-02-29T00:00:00.1234567Z",
		"2024-02-29T00:00:00.123456",
		"2024-02-29T00:00:00.12345aZ",
		"2024-02-29T00:00:00,123456Z",
		"2024-02-29T00:00:00.123456Z ",
		"2024-02-29T00:00:00.123456Zjunk",
		"2024-02-29T00:00:00Zjunk",
		"abcd-ef-gh",
		"2024-0a-29",
		"+024-02-29",
		"-024-02-29",
	};
	int64_t us = 42;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (ts_parse(bad[i], &us))
			fail_msg("accepted malformed time stamp \"%s\"", bad[i]);
	}
	assert_int_equal(us, 42); /* untouched on failure */
}

/* ---- numbers ------------------------------------------------------------ */

static void test_parse_u64(void **state)
{
	(void)state;
	uint64_t v;

	assert_true(parse_u64("0", &v));
	assert_int_equal(v, 0);
	assert_true(parse_u64("1", &v));
	assert_int_equal(v, 1);
	assert_true(parse_u64("1234567890", &v));
	assert_int_equal(v, 1234567890);
	assert_true(parse_u64("18446744073709551615", &v));
	assert_true(v == UINT64_MAX);
	assert_true(parse_u64("007", &v));
	assert_int_equal(v, 7);
}

static void test_parse_u64_refuses(void **state)
{
	(void)state;
	const char *bad[] = {
		"",
		"18446744073709551616",
		"18446744073709551620",
		"99999999999999999999",
		"100000000000000000000",
		"-1",
		"-0",
		"+1",
		" 1",
		"1 ",
		"1\n",
		"12a",
		"0x10",
		"1e3",
		"1.0",
		"a",
		"1_000",
	};
	uint64_t v = 77;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (parse_u64(bad[i], &v))
			fail_msg("parse_u64 accepted \"%s\"", bad[i]);
	}
	assert_false(parse_u64(NULL, &v));
	assert_int_equal(v, 77);
}

static void test_parse_size(void **state)
{
	(void)state;
	uint64_t v;

	assert_true(parse_size("64M", &v));
	assert_true(v == (64ull << 20));
	assert_true(parse_size("1G", &v));
	assert_true(v == (1ull << 30));
	assert_true(parse_size("10K", &v));
	assert_true(v == 10240);
	assert_true(parse_size("4096", &v));
	assert_true(v == 4096);
	assert_true(parse_size("0K", &v));
	assert_true(v == 0);
	assert_true(parse_size("17179869183G", &v)); /* (2^34 - 1) << 30: the largest G */
	assert_true(v == (((1ull << 34) - 1) << 30));
	assert_true(parse_size("18446744073709551615", &v));
	assert_true(v == UINT64_MAX);
}

static void test_parse_size_refuses(void **state)
{
	(void)state;
	const char *bad[] = {
		"",
		"junk",
		"64MB",
		"64 M",
		" 64M",
		"64T",
		"1.5G",
		"-1K",
		"+1K",
		"M64",
		"64m", /* the suffixes are upper case */
		"10KK",
		"17179869184G", /* 2^64: overflow */
		"18014398509481984M",
		"18014398509481984K",
		"18446744073709551616",
		"99999999999999999999999999999999999999K",
	};
	uint64_t v = 99;

	int accepted = 0;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint64_t before = v;
		if (parse_size(bad[i], &v)) {
			print_error("parse_size accepted \"%s\" (as %llu)\n", bad[i], (unsigned long long)v);
			accepted++;
			v = before;
		}
	}
	assert_int_equal(accepted, 0);
	assert_int_equal(v, 99);
	assert_false(parse_size(NULL, &v));
}

/* A size takes one suffix: "10MK" is not 10 MiB (nor 10 GiB). */
static void test_parse_size_refuses_two_suffixes(void **state)
{
	(void)state;
	const char *bad[] = { "10MK", "10GM", "10GK", "1GMK", "5KM", "5MG" };
	uint64_t v;
	int accepted = 0;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (parse_size(bad[i], &v)) {
			print_error("parse_size accepted \"%s\" (as %llu)\n", bad[i], (unsigned long long)v);
			accepted++;
		}
	}
	assert_int_equal(accepted, 0);
}

/* A suffix alone is no size; it must also not read before the string
 * (AddressSanitizer reports it when it does). */
static void test_parse_size_suffix_only(void **state)
{
	(void)state;
	const char *bad[] = { "K", "M", "G", "MK", "GK" };
	uint64_t v;
	int accepted = 0;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (parse_size(bad[i], &v)) {
			print_error("parse_size accepted \"%s\"\n", bad[i]);
			accepted++;
		}
	}
	assert_int_equal(accepted, 0);
}

static void test_utf8_valid(void **state)
{
	static const struct {
		const char *s;
		size_t n;
		bool ok;
	} cases[] = {
		{ "plain", 5, true },
		{ "caf\xc3\xa9", 5, true },
		{ "\xe2\x82\xac", 3, true },
		{ "\xf0\x9f\x98\x80", 4, true },
		{ "", 0, true },
		{ "a\0b", 3, false },
		{ "\xff", 1, false },
		{ "\xc3(", 2, false },
		{ "\xc0\x80", 2, false },
		{ "\xe2\x82", 2, false },
		{ "\xed\xa0\x80", 3, false },
		{ "\xf4\x90\x80\x80", 4, false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(utf8_valid(cases[i].s, cases[i].n), cases[i].ok);
}

/* A secret buffer keeps its contents as it grows into new blocks, and
 * stays secret after it is freed (for its next use). */
static void test_buf_secret_grows(void **state)
{
	struct buf b = BUF_SECRET, plain = BUF_INIT;

	(void)state;
	for (int i = 0; i < 5000; i++) {
		char c = (char)('a' + i % 26);
		buf_addc(&b, c);
		buf_addc(&plain, c);
	}
	assert_false(b.failed);
	assert_int_equal(b.len, 5000);
	assert_memory_equal(b.p, plain.p, 5000);
	buf_free(&b);
	assert_true(b.secret && !b.p && !b.len && !b.cap);
	buf_adds(&b, "again");
	assert_true(b.len == 5 && !memcmp(b.p, "again", 5));
	buf_free(&b);
	buf_free(&plain);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_valid),
		cmocka_unit_test(test_buf_secret_grows),
		cmocka_unit_test(test_hex_known),
		cmocka_unit_test(test_hex_round_trip_all_bytes),
		cmocka_unit_test(test_hex_refuses_upper_case),
		cmocka_unit_test(test_hex_refuses_non_hex),
		cmocka_unit_test(test_hex_refuses_odd_length),
		cmocka_unit_test(test_ts_format_known),
		cmocka_unit_test(test_ts_format_reuses_only_the_same_second),
		cmocka_unit_test(test_ts_round_trip_microseconds),
		cmocka_unit_test(test_ts_parse_forms),
		cmocka_unit_test(test_ts_parse_calendar),
		cmocka_unit_test(test_ts_parse_malformed),
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_parse_u64_refuses),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_size_refuses),
		cmocka_unit_test(test_parse_size_refuses_two_suffixes),
		cmocka_unit_test(test_parse_size_suffix_only),
	};

	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
