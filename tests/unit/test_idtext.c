/* test_idtext.c - subject ids as PostgreSQL gives them back, from the
 * binary format and from text written any way PostgreSQL reads it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "idtext.h"

static int text_of(uint32_t oid, const void *p, int32_t len, char *out)
{
	char room[IDT_ROOM];
	const char *t;
	struct pgp_value v = { p, len };
	int n = idt_binary(oid, &v, room, &t);

	if (n >= 0)
		snprintf(out, 64, "%.*s", n, t);
	return n;
}

static void test_binary_text(void **state)
{
	static const uint8_t i8[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe }, i4[] = { 0, 1, 0, 0 },
	                     i2[] = { 0x80, 0 }, oid[] = { 0xff, 0xff, 0xff, 0xff },
	                     uuid[] = { 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
		                        0,    1,    2,    3,    4,    5,    6,    0xff };
	char t[64];

	(void)state;
	assert_int_equal(text_of(20, i8, 8, t), 2);
	assert_string_equal(t, "-2");
	assert_int_equal(text_of(23, i4, 4, t), 5);
	assert_string_equal(t, "65536");
	assert_int_equal(text_of(21, i2, 2, t), 6);
	assert_string_equal(t, "-32768");
	assert_int_equal(text_of(26, oid, 4, t), 10);
	assert_string_equal(t, "4294967295");
	assert_int_equal(text_of(2950, uuid, 16, t), 36);
	assert_string_equal(t, "12345678-9abc-def0-0001-0203040506ff");
	assert_int_equal(text_of(25, "a\\x", 3, t), 3);
	assert_string_equal(t, "a\\x");
	assert_int_equal(text_of(0, i4, 4, t), -1); /* a type not known: not guessed from its length */
	assert_int_equal(text_of(0, i8, 8, t), -1);
	/* not one of its type, another type, NULL */
	assert_int_equal(text_of(20, i4, 4, t), -1);
	assert_int_equal(text_of(2950, uuid, 15, t), -1);
	assert_int_equal(text_of(0, i2, 2, t), -1);
	assert_int_equal(text_of(701, i8, 8, t), -1); /* float8 */
	assert_int_equal(text_of(25, NULL, -1, t), -1);
}

static void test_text(void **state)
{
	static const struct {
		uint32_t oid;
		const char *in, *out; /* out NULL: not read */
	} cases[] = {
		{ 20, "007", "7" },
		{ 20, " +42 ", "42" },
		{ 23, "-0", "0" },
		{ 20, "0x1F", "31" },
		{ 20, "0o17", "15" },
		{ 20, "0b101", "5" },
		{ 20, "1_000", "1000" },
		{ 20, "-9223372036854775808", "-9223372036854775808" },
		{ 20, "9223372036854775808", NULL }, /* out of range */
		{ 20, "12a", NULL },
		{ 20, "12.0", NULL }, /* PostgreSQL converts a numeric: not read */
		{ 26, "-1", NULL },
		{ 20, "", NULL },
		{ 20, "0x", NULL },
		{ 2950, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" },
		{ 2950, "{a0eebc999c0b4ef8bb6d6bb9bd380a11}", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" },
		{ 2950, "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" },
		{ 2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", NULL },
		{ 2950, "-a0eebc999c0b4ef8bb6d6bb9bd380a11", NULL },
		{ 25, " 007 ", " 007 " },
	};
	char room[IDT_ROOM];
	const char *t;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = idt_text(cases[i].oid, cases[i].in, strlen(cases[i].in), room, &t);
		if (!cases[i].out ? n != -1
		                  : n != (int)strlen(cases[i].out) || memcmp(t, cases[i].out, (size_t)n))
			fail_msg("%s: %d", cases[i].in, n);
	}
}

/* equality as text: integers, oid, uuid; not numeric (7.0 = 7), text (a collation) */
static void test_exact(void **state)
{
	(void)state;
	assert_true(idt_exact(20) && idt_exact(23) && idt_exact(21) && idt_exact(26) && idt_exact(2950));
	assert_false(idt_exact(1700) || idt_exact(25) || idt_exact(1043) || idt_exact(1042) || idt_exact(0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_binary_text),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_exact),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
