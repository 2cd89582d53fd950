/* test_copytext.c - COPY's text and CSV formats, and their options, as
 * PostgreSQL reads and writes them (daemon/copytext.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "copytext.h"

static struct ct_format text, csv;

static int setup(void **state)
{
	(void)state;
	ct_format_init(&text, false);
	ct_format_init(&csv, true);
	return 0;
}

static void value_is(const char *field, const char *want, size_t want_len)
{
	struct ct_field f = { field, strlen(field) };
	struct buf v = BUF_INIT;

	assert_int_equal(ct_value(&text, &f, &v), 0);
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
	assert_int_equal(ct_value(&text, &nul, &v), -EILSEQ);
	buf_free(&v);
	struct ct_field n = { "\\N", 2 }, n2 = { "\\\\N", 3 };
	assert_true(ct_is_null(&text, &n));
	assert_false(ct_is_null(&text, &n2));
}

static void test_fields(void **state)
{
	struct ct_field f[4];
	const char *row = "1\ta\\\tb\t\\N\t";

	(void)state;
	assert_int_equal(ct_split(&text, row, strlen(row), f, 4), 4); /* an escaped tab ends no field */
	assert_int_equal(f[1].len, 4);
	assert_memory_equal(f[1].p, "a\\\tb", 4);
	assert_true(ct_is_null(&text, &f[2]));
	assert_int_equal(f[3].len, 0);
	assert_int_equal(ct_split(&text, row, strlen(row), f, 3), -E2BIG);
	assert_int_equal(ct_split(&text, "", 0, f, 4), 1);
}

static void test_lines(void **state)
{
	const char *data = "a\\\nb\nc\r\nd\\";
	struct ct_line l;
	size_t scanned = 0;
	bool quoted = false;

	(void)state;
	assert_int_equal(ct_next_line(&text, data, strlen(data), &scanned, &quoted, &l), 1);
	assert_int_equal(l.len, 4); /* an escaped newline is data */
	assert_int_equal(l.eol, 1);
	assert_int_equal(ct_next_line(&text, data + 5, strlen(data) - 5, &scanned, &quoted, &l), 1);
	assert_int_equal(l.len, 1);
	assert_int_equal(l.eol, 2);
	assert_int_equal(ct_next_line(&text, data + 8, strlen(data) - 8, &scanned, &quoted, &l),
	                 0); /* d\ : more to come */
	assert_int_equal(scanned, 1);
	assert_int_equal(ct_next_line(&text, "d\\\n\n", 4, &scanned, &quoted, &l), 1);
	assert_int_equal(l.len, 3);
	scanned = 0;
	assert_int_equal(ct_next_line(&text, "a\rb\n", 4, &scanned, &quoted, &l), -EILSEQ);
	scanned = 0;
	assert_int_equal(ct_next_line(&text, "a\r", 2, &scanned, &quoted, &l), 0); /* \r\n perhaps */
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
	assert_int_equal(ct_next_line(&csv, data, 8, &scanned, &quoted, &l), 0); /* inside quotes */
	assert_true(quoted);
	assert_int_equal(ct_next_line(&csv, data, strlen(data), &scanned, &quoted, &l), 1);
	assert_int_equal(l.eol, 2);
	assert_int_equal(ct_split(&csv, data, l.len, f, 4), 4);
	assert_int_equal(ct_value(&csv, &f[1], &v), 0);
	assert_int_equal(v.len, 7);
	assert_memory_equal(v.p, "a,\"b\"\nc", 7);
	assert_int_equal(f[2].len, 0); /* NULL */
	assert_int_equal(f[3].len, 2); /* "": an empty string */
	buf_reset(&v);
	const char *rest = data + l.len + l.eol;
	assert_int_equal(ct_split(&csv, rest, strlen(rest), f, 4), 2);
	assert_int_equal(ct_value(&csv, &f[1], &v), 0);
	assert_int_equal(v.len, 3);
	assert_memory_equal(v.p, "xyz", 3); /* quotes inside a field, as PostgreSQL reads them */
	buf_reset(&v);
	ct_put(&csv, &v, "a\"b", 3);
	assert_int_equal(v.len, 6);
	assert_memory_equal(v.p, "\"a\"\"b\"", 6);
	buf_free(&v);
	scanned = 0;
	quoted = false;
	assert_int_equal(ct_next_line(&csv, "a\rb\n", 4, &scanned, &quoted, &l), -EILSEQ);
}

static struct ct_format with(bool is_csv, const char *delim, const char *null, const char *quote,
                             const char *escape)
{
	struct ct_format f = { .csv = is_csv };

	assert_true(!delim || ct_format_set(&f, "delimiter", delim));
	assert_true(!null || ct_format_set(&f, "null", null));
	assert_true(!quote || ct_format_set(&f, "quote", quote));
	assert_true(!escape || ct_format_set(&f, "escape", escape));
	assert_true(ct_format_finish(&f));
	return f;
}

static void value_in(const struct ct_format *f, const char *field, const char *want)
{
	struct ct_field fl = { field, strlen(field) };
	struct buf v = BUF_INIT;

	assert_false(ct_is_null(f, &fl));
	assert_int_equal(ct_value(f, &fl, &v), 0);
	buf_addc(&v, 0);
	assert_string_equal(v.p, want);
	buf_free(&v);
}

static void put_is(const struct ct_format *f, const char *value, const char *want)
{
	struct buf v = BUF_INIT;

	ct_put(f, &v, value, strlen(value));
	buf_addc(&v, 0);
	assert_string_equal(v.p ? v.p : "", want);
	buf_free(&v);
}

static void test_options(void **state)
{
	struct ct_field fl[5];
	struct ct_line l;
	size_t scanned = 0;
	bool quoted = false;
	struct buf sql = BUF_INIT;

	(void)state;
	/* text with ';' and NULL 'NULL': an escaped ';' is data, NULL is compared as written */
	struct ct_format t = with(false, ";", "NULL", NULL, NULL);
	const char *row = "1;a\\;b;NULL;\\NULL";
	assert_int_equal(ct_split(&t, row, strlen(row), fl, 4), 4);
	value_in(&t, "a\\;b", "a;b");
	assert_true(ct_is_null(&t, &fl[2]));
	assert_false(ct_is_null(&t, &fl[3]));
	put_is(&t, "a;b\\c\td", "a\\;b\\\\c\\td");
	/* CSV with ';', quote ' and escape \: \' and \\ count inside quotes only */
	struct ct_format c = with(true, ";", "N/A", "'", "\\");
	const char *data = "1;'a\\';b\\\\';N/A;'N/A';x\\y\n";
	assert_int_equal(ct_next_line(&c, data, 8, &scanned, &quoted, &l), 0);
	assert_true(quoted); /* the escaped quote does not close them */
	assert_int_equal(ct_next_line(&c, data, strlen(data), &scanned, &quoted, &l), 1);
	assert_int_equal(ct_split(&c, data, l.len, fl, 4), -E2BIG);
	assert_int_equal(ct_split(&c, data, l.len, fl, 5), 5);
	assert_true(ct_is_null(&c, &fl[2]));
	assert_false(ct_is_null(&c, &fl[3])); /* quoted: the string N/A */
	value_in(&c, "'a\\';b\\\\'", "a';b\\");
	value_in(&c, "x\\y", "x\\y"); /* outside quotes an escape is itself */
	put_is(&c, "N/A", "'N/A'");
	put_is(&c, "a'b\\c", "'a\\'b\\\\c'");
	put_is(&c, "", "");
	/* ESCAPE defaults to QUOTE */
	struct ct_format q = with(true, NULL, NULL, "$", NULL);
	assert_int_equal(q.escape, '$');
	value_in(&q, "$a$$b$", "a$b");
	/* what the proxy does not read rows under, or PostgreSQL refuses */
	struct ct_format bad = { 0 };
	assert_false(ct_format_set(&bad, "delimiter", "ab"));
	assert_false(ct_format_set(&bad, "delimiter", "x"));
	assert_false(ct_format_set(&bad, "delimiter", "\\"));
	assert_false(ct_format_set(&bad, "delimiter", "\n"));
	assert_false(ct_format_set(&bad, "quote", "\t"));
	assert_false(ct_format_set(&bad, "null", "a\rb"));
	assert_false(ct_format_set(&bad, "encoding", "UTF8"));
	assert_false(ct_format_set(&bad, "format", "binary"));
	assert_true(ct_format_set(&bad, "null", "a;b") && ct_format_set(&bad, "delimiter", ";"));
	assert_false(ct_format_finish(&bad)); /* the delimiter in the NULL string */
	bad = (struct ct_format){ 0 };
	assert_true(ct_format_set(&bad, "quote", "'"));
	assert_false(ct_format_finish(&bad)); /* QUOTE in the text format */
	bad = (struct ct_format){ .csv = true };
	assert_true(ct_format_set(&bad, "delimiter", "'") && ct_format_set(&bad, "quote", "'"));
	assert_false(ct_format_finish(&bad));
	bad = (struct ct_format){ 0 };
	assert_true(ct_format_set(&bad, "null", "x\\"));
	assert_false(ct_format_finish(&bad)); /* it would escape the delimiter after it */
	/* what PostgreSQL refuses in a text row; control characters written as it writes them */
	assert_true(ct_text_stray("a\t\\.\tb", 6));
	assert_true(ct_text_stray("a\tb\\", 4));
	assert_false(ct_text_stray("a\\\\.\tb\\\\", 8));
	put_is(&text, "\b\f\v\001", "\\b\\f\\v\001");
	/* as a statement gives them again */
	ct_format_sql(&c, true, &sql);
	buf_addc(&sql, 0);
	assert_string_equal(sql.p,
	                    " (FORMAT csv, HEADER true, DELIMITER ';', QUOTE '''', ESCAPE '\\', NULL 'N/A')");
	buf_reset(&sql);
	ct_format_sql(&text, false, &sql);
	assert_int_equal(sql.len, 0);
	buf_free(&sql);
}

/* The binary format: its header, a row of two fields (one NULL), the trailer. */
static void test_binary(void **state)
{
	static const uint8_t data[] = { 'P',  'G',  'C',  'O',  'P',  'Y', '\n', 0xff, '\r',
		                        '\n', 0, /* signature */
		                        0,    0,    0,    0,    0,    0,   0,    2,    0xaa,
		                        0xbb, /* flags, extension */
		                        0,    2,    0,    0,    0,    3,   'a',  'b',  'c', /* a row */
		                        0xff, 0xff, 0xff, 0xff, 0xff, 0xff }; /* NULL, trailer */
	struct ct_field f[2];
	size_t len = 0;

	(void)state;
	assert_int_equal(ct_binary_header(data, 10, &len), 0);
	assert_int_equal(ct_binary_header(data, 20, &len), 0); /* the extension goes on */
	assert_int_equal(ct_binary_header(data, sizeof(data), &len), 1);
	assert_int_equal(len, 21);
	assert_int_equal(ct_binary_header((const uint8_t *)"PGCOPX", 6, &len), -1);
	uint8_t oids[19];
	memcpy(oids, data, 19);
	oids[12] = 1; /* the OIDs flag */
	assert_int_equal(ct_binary_header(oids, 19, &len), -1);
	const uint8_t *row = data + 21;
	assert_int_equal(ct_binary_row(row, 12, f, 2, &len), 0);
	assert_int_equal(ct_binary_row(row, 13, f, 3, &len), -1);
	assert_int_equal(ct_binary_row(row, sizeof(data) - 21, f, 2, &len), 1);
	assert_int_equal(len, 13);
	assert_true(f[0].len == 3 && !memcmp(f[0].p, "abc", 3) && f[1].p == NULL);
	assert_int_equal(ct_binary_row(row + 13, 2, f, 2, &len), 2);
	static const uint8_t negative[] = { 0, 1, 0xff, 0xff, 0xff, 0xfe };
	assert_int_equal(ct_binary_row(negative, sizeof(negative), f, 1, &len), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escapes), cmocka_unit_test(test_fields),  cmocka_unit_test(test_lines),
		cmocka_unit_test(test_csv),     cmocka_unit_test(test_options), cmocka_unit_test(test_binary),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
