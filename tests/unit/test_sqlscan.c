/* test_sqlscan.c - the plain-text literal scanner (daemon/sqlscan.c):
 * what it takes, the literals it finds there, and what it leaves to
 * libpg_query. tests/fuzz/fuzz_sqlscan.c checks it against libpg_query. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sqlscan.h"
#include "util.h"

struct scan {
	const char *sql;
	char lits[256];
};

static int collect(void *arg, size_t start, size_t end, enum sqs_token token)
{
	struct scan *s = arg;
	size_t n = strlen(s->lits);

	snprintf(s->lits + n, sizeof(s->lits) - n, "%s%c:%.*s", n ? " " : "", token == SQS_ICONST ? 'I' : 'S',
	         (int)(end - start), s->sql + start);
	return 0;
}

static int scan(const char *sql, char *lits, size_t n)
{
	struct scan s = { sql, "" };
	int r = sqs_scan(sql, collect, &s);

	snprintf(lits, n, "%s", s.lits);
	return r;
}

static void test_plain_texts_and_their_literals(void **state)
{
	static const struct {
		const char *sql, *lits;
	} cases[] = {
		{ "SELECT abalance FROM pgbench_accounts WHERE aid = 12345;", "I:12345" },
		{ "INSERT INTO t (a, b) VALUES ('Ann O''Neil', $1), ('', 7) RETURNING id",
		  "S:'Ann O''Neil' S:'' I:7" },
		{ "UPDATE \"My \"\"T\"\"\".x SET y=-1 WHERE z IN (1,2) AND w <> 'q'::text",
		  "I:1 I:1 I:2 S:'q'" },
		{ "select a$1, t1.c2 from t1 where c = 'x' 'y'",
		  "S:'x' S:'y'" },                                        /* no newline: two strings */
		{ "SELECT 'back\\slash', 'é'", "S:'back\\slash' S:'é'" }, /* standard strings */
		{ "SELECT 999999999", "I:999999999" },
		{ "", "" },
	};
	char lits[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(scan(cases[i].sql, lits, sizeof(lits)), 1);
		assert_string_equal(lits, cases[i].lits);
	}
}

static void test_other_constructs_are_left_to_libpg_query(void **state)
{
	static const char *const cases[] = {
		"SELECT 1.5",         "SELECT .5",
		"SELECT 1e3",         "SELECT 1234567890",
		"SELECT 0x1F",        "SELECT 12abc",
		"SELECT E'\\n'",      "SELECT e'x'",
		"SELECT U&'d\\0061'", "SELECT b'101'",
		"SELECT x'ff'",       "SELECT N'x'",
		"SELECT $$x$$",       "SELECT $q$x$q$",
		"SELECT $1a",         "SELECT 'a'\n'b'",
		"SELECT 'a' \r 'b'",  "SELECT 1 -- c",
		"SELECT /* c */ 1",   "SELECT 'open",
		"SELECT \"open",      "SELECT \"\"",
		"SELECT café",        "SELECT 1\\",
		"SELECT \v1",         "SELECT 1 ||||||||||||||||||||||||||||||||| 2",
	};
	char lits[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(scan(cases[i], lits, sizeof(lits)), 0);
	}
}

static int stop(void *arg, size_t start, size_t end, enum sqs_token token)
{
	(void)start;
	(void)end;
	(void)token;
	return ++*(int *)arg == 2 ? -12 : 0;
}

static void test_a_callback_error_stops_the_scan(void **state)
{
	int calls = 0;

	(void)state;
	assert_int_equal(sqs_scan("SELECT 1, 2, 3", stop, &calls), -12);
	assert_int_equal(calls, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_texts_and_their_literals),
		cmocka_unit_test(test_other_constructs_are_left_to_libpg_query),
		cmocka_unit_test(test_a_callback_error_stops_the_scan),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
