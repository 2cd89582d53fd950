/* test_copytext.c - COPY's text format as PostgreSQL reads it (daemon/copytext.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "copytext.h"

static void value_is(const char *field, const char *want, size_t want_len)
{
	struct ct_field f = { field, strlen(field) };
	struct buf v = BUF_INIT;

	assert_int_equal(ct_unescape(&f, &v), 0);
	assert_int_equal(v.len, want_len);
	assert_memory_equal(v.p ? v.p : "", want, want_len);
	buf_free(&v);
}

static void test_escapes(void **state)
{
	(void)state;
	value_is("plain", "plain", 5);
	value_is("a\\tb\\nc\\\\d", "a\tb\nc\\d", 7);
	value_is("\\101\\60x\\0601", "A0x01", 5);        /* octal, up to three digits */
	value_is("\\x41\\x4g\\xg", "A\4gxg", 5);         /* hex, one or two digits; \x alone is x */
	value_is("\\b\\f\\r\\v\\q\\.", "\b\f\r\vq.", 6); /* any other character is itself */
	value_is("end\\", "end", 3);                     /* a last backslash escapes nothing */
	struct ct_field nul = { "a\\000b", 6 };
	struct buf v = BUF_INIT;
	assert_int_equal(ct_unescape(&nul, &v), -EILSEQ);
	buf_free(&v);
	struct ct_field n = { "\\N", 2 }, n2 = { "\\\\N", 3 };
	assert_true(ct_is_null(&n));
	assert_false(ct_is_null(&n2));
}

static void test_fields(void **state)
{
	struct ct_field f[4];
	const char *row = "1\ta\\\tb\t\\N\t";

	(void)state;
	assert_int_equal(ct_split(row, strlen(row), f, 4), 4); /* an escaped tab ends no field */
	assert_int_equal(f[1].len, 4);
	assert_memory_equal(f[1].p, "a\\\tb", 4);
	assert_true(ct_is_null(&f[2]));
	assert_int_equal(f[3].len, 0);
	assert_int_equal(ct_split(row, strlen(row), f, 3), -E2BIG);
	assert_int_equal(ct_split("", 0, f, 4), 1);
}

static void test_lines(void **state)
{
	const char *data = "a\\\nb\nc\r\nd\\";
	struct ct_line l;
	size_t scanned = 0;

	(void)state;
	assert_int_equal(ct_next_line(data, strlen(data), &scanned, &l), 1);
	assert_int_equal(l.len, 4); /* an escaped newline is data */
	assert_int_equal(l.eol, 1);
	assert_int_equal(ct_next_line(data + 5, strlen(data) - 5, &scanned, &l), 1);
	assert_int_equal(l.len, 1);
	assert_int_equal(l.eol, 2);
	assert_int_equal(ct_next_line(data + 8, strlen(data) - 8, &scanned, &l), 0); /* d\ : more to come */
	assert_int_equal(scanned, 1);
	assert_int_equal(ct_next_line("d\\\n\n", 4, &scanned, &l), 1);
	assert_int_equal(l.len, 3);
	scanned = 0;
	assert_int_equal(ct_next_line("a\rb\n", 4, &scanned, &l), -EILSEQ);
	scanned = 0;
	assert_int_equal(ct_next_line("a\r", 2, &scanned, &l), 0); /* \r\n perhaps */
}

static void test_csv(void **state)
{
	const char *data = "1,\"a,\"\"b\"\"\nc\",,\"\"\r\n2,x\"y\"z";
	struct ct_line l;
	struct ct_field f[4];
	size_t scanned = 0;
	bool quoted = false;
	struct buf v = BUF_INIT;

	(void)state;
	assert_int_equal(ct_csv_next_line(data, 8, &scanned, &quoted, &l), 0); /* inside quotes */
	assert_true(quoted);
	assert_int_equal(ct_csv_next_line(data, strlen(data), &scanned, &quoted, &l), 1);
	assert_int_equal(l.eol, 2);
	assert_int_equal(ct_csv_split(data, l.len, f, 4), 4);
	assert_int_equal(ct_csv_value(&f[1], &v), 0);
	assert_int_equal(v.len, 7);
	assert_memory_equal(v.p, "a,\"b\"\nc", 7);
	assert_int_equal(f[2].len, 0); /* NULL */
	assert_int_equal(f[3].len, 2); /* "": an empty string */
	buf_reset(&v);
	const char *rest = data + l.len + l.eol;
	assert_int_equal(ct_csv_split(rest, strlen(rest), f, 4), 2);
	assert_int_equal(ct_csv_value(&f[1], &v), 0);
	assert_int_equal(v.len, 3);
	assert_memory_equal(v.p, "xyz", 3); /* quotes inside a field, as PostgreSQL reads them */
	buf_reset(&v);
	ct_csv_quote(&v, "a\"b", 3);
	assert_int_equal(v.len, 6);
	assert_memory_equal(v.p, "\"a\"\"b\"", 6);
	buf_free(&v);
	scanned = 0;
	quoted = false;
	assert_int_equal(ct_csv_next_line("a\rb\n", 4, &scanned, &quoted, &l), -EILSEQ);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_csv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
