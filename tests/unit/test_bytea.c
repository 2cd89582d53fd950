/* test_bytea.c - bytea's text forms as PostgreSQL reads them (daemon/bytea.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bytea.h"

static void reads_as(const char *text, const char *want, size_t n)
{
	struct buf b = BUF_INIT;

	assert_int_equal(by_decode(text, strlen(text), &b), 0);
	assert_int_equal(b.len, n);
	assert_memory_equal(b.p ? b.p : "", want, n);
	buf_free(&b);
}

static void refused(const char *text)
{
	struct buf b = BUF_INIT;

	assert_int_equal(by_decode(text, strlen(text), &b), -EINVAL);
	buf_free(&b);
}

static void test_forms(void **state)
{
	(void)state;
	reads_as("\\x00ff41", "\0\377A", 3);
	reads_as("\\x 00 FF\n41 ", "\0\377A", 3); /* whitespace between pairs */
	reads_as("\\x", "", 0);
	reads_as("plain\\\\ \\101\\000", "plain\\ A\0", 9);
	reads_as("", "", 0);
	refused("\\x0");   /* half a byte */
	refused("\\x0 0"); /* inside a pair */
	refused("\\xzz");
	refused("a\\b");  /* escape form: only \\ and \ooo */
	refused("\\400"); /* beyond a byte */
	refused("\\12");
	struct buf hex = BUF_INIT;
	by_encode("\0\377A", 3, &hex);
	assert_int_equal(hex.len, 8);
	assert_memory_equal(hex.p, "\\x00ff41", 8);
	buf_free(&hex);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
