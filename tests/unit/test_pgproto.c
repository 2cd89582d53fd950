/* test_pgproto.c - PostgreSQL protocol messages (daemon/pgproto.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pgproto.h"

/* Builds a message from a body given as bytes. */
static struct buf mk(char type, const void *body, size_t n)
{
	struct buf b = BUF_INIT;
	pgp_message(&b, type, body, n);
	return b;
}

static struct pgp_msg frame(const struct buf *b)
{
	struct pgp_msg m;
	assert_int_equal(pgp_frame((const uint8_t *)b->p, b->len, 1u << 20, &m), 1);
	return m;
}

static void test_framing(void **state)
{
	struct buf b = mk('Q', "SELECT 1", 9);
	struct pgp_msg m;

	(void)state;
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(pgp_frame((const uint8_t *)b.p, n, 1u << 20, &m), 0); /* not all there yet */
	assert_int_equal(pgp_frame((const uint8_t *)b.p, b.len, 1u << 20, &m), 1);
	assert_int_equal(m.type, 'Q');
	assert_int_equal(m.len, 9);
	assert_int_equal(m.size, b.len);
	assert_int_equal(pgp_frame((const uint8_t *)b.p, b.len, 12, &m), -EMSGSIZE); /* over the limit */
	const uint8_t bad[] = { 'Q', 0, 0, 0, 3 };
	assert_int_equal(pgp_frame(bad, sizeof(bad), 1u << 20, &m), -EBADMSG);
	/* a huge declared length is refused before any of it arrives */
	const uint8_t huge[] = { 'D', 0x7f, 0xff, 0xff, 0xff };
	assert_int_equal(pgp_frame(huge, sizeof(huge), 1u << 20, &m), -EMSGSIZE);
	buf_free(&b);
}

static void test_startup(void **state)
{
	static const uint8_t pkt[] = { 0,   0,   0,   41,  0,   3,   0,   0,   'u', 's', 'e', 'r', 0,
		                       's', 'h', 'o', 'p', '_', 'a', 'p', 'p', 0,   'd', 'a', 't', 'a',
		                       'b', 'a', 's', 'e', 0,   's', 'h', 'o', 'p', 0,   0 };
	uint8_t p[64];
	struct pgp_startup s;
	size_t n;

	(void)state;
	memcpy(p, pkt, sizeof(pkt));
	p[3] = sizeof(pkt);
	assert_int_equal(pgp_frame_startup(p, sizeof(pkt), &n), 1);
	assert_int_equal(pgp_parse_startup(p, n, &s), 0);
	assert_int_equal(s.kind, PGP_STARTUP);
	assert_string_equal(pgp_startup_param(&s, "user"), "shop_app");
	assert_string_equal(pgp_startup_param(&s, "database"), "shop");
	assert_null(pgp_startup_param(&s, "options"));
	p[sizeof(pkt) - 1] = 'x'; /* no final terminator */
	assert_int_equal(pgp_parse_startup(p, n, &s), -EBADMSG);
	p[sizeof(pkt) - 1] = 0;
	p[5] = 2; /* protocol 2.0 */
	assert_int_equal(pgp_parse_startup(p, n, &s), -EPROTONOSUPPORT);
	static const uint8_t ssl[] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };
	assert_int_equal(pgp_parse_startup(ssl, sizeof(ssl), &s), 0);
	assert_int_equal(s.kind, PGP_SSL);
	static const uint8_t cancel[] = {
		0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 4, 0xd2, 0, 0, 0x16, 0x2e
	};
	assert_int_equal(pgp_parse_startup(cancel, sizeof(cancel), &s), 0);
	assert_int_equal(s.kind, PGP_CANCEL);
	assert_int_equal(s.cancel_pid, 1234);
	assert_int_equal(s.cancel_key, 5678);
	static const uint8_t nouser[] = { 0, 0, 0, 9, 0, 3, 0, 0, 0 };
	assert_int_equal(pgp_parse_startup(nouser, sizeof(nouser), &s), -EBADMSG);
	static const uint8_t big[] = { 0, 1, 0, 0 };
	assert_int_equal(pgp_frame_startup(big, sizeof(big), &n), -EMSGSIZE);
}

static void test_bind(void **state)
{
	/* portal "", statement "s1", 1 format (binary), 2 params ("42", NULL), 0 result formats */
	static const uint8_t body[] = { 0, 's', '1', 0,   0,   1,    0,    1,    0,    2, 0,
		                        0, 0,   2,   '4', '2', 0xff, 0xff, 0xff, 0xff, 0, 0 };
	struct buf b = mk('B', body, sizeof(body));
	struct pgp_msg m = frame(&b);
	struct pgp_bind bd;

	(void)state;
	assert_int_equal(pgp_parse_bind(&m, &bd), 0);
	assert_string_equal(bd.statement, "s1");
	assert_int_equal(bd.nparams, 2);
	assert_int_equal(bd.params[0].len, 2);
	assert_memory_equal(bd.params[0].p, "42", 2);
	assert_int_equal(bd.params[1].len, -1);
	assert_int_equal(pgp_bind_format(&bd, 1), 1);
	free(bd.params);
	/* claims 65535 parameters in a short message: refused without allocating */
	uint8_t lie[sizeof(body)];
	memcpy(lie, body, sizeof(body));
	lie[8] = 0xff, lie[9] = 0xff;
	struct buf b2 = mk('B', lie, sizeof(lie));
	m = frame(&b2);
	assert_int_equal(pgp_parse_bind(&m, &bd), -EBADMSG);
	assert_null(bd.params);
	/* a parameter running past the end */
	memcpy(lie, body, sizeof(body));
	lie[13] = 100;
	struct buf b3 = mk('B', lie, sizeof(lie));
	m = frame(&b3);
	assert_int_equal(pgp_parse_bind(&m, &bd), -EBADMSG);
	buf_free(&b);
	buf_free(&b2);
	buf_free(&b3);
}

static void test_rowdesc_datarow(void **state)
{
	static const uint8_t t[] = { 0, 1, 'e', 'm', 'a', 'i',  'l',  0,    0,    0,    0x40, 0, 0,
		                     2, 0, 0,   0,   25,  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0 };
	static const uint8_t d[] = { 0, 1, 0, 0, 0, 4, 'c', 'x', '1', '.' };
	struct buf bt = mk('T', t, sizeof(t)), bd = mk('D', d, sizeof(d));
	struct pgp_msg m = frame(&bt);
	struct pgp_rowdesc rd;
	struct pgp_value v[4];
	uint16_t n;

	(void)state;
	assert_int_equal(pgp_parse_rowdesc(&m, &rd), 0);
	assert_int_equal(rd.n, 1);
	assert_string_equal(rd.fields[0].name, "email");
	assert_int_equal(rd.fields[0].table_oid, 16384);
	assert_int_equal(rd.fields[0].attnum, 2);
	assert_int_equal(rd.fields[0].type_oid, 25);
	free(rd.fields);
	m = frame(&bd);
	assert_int_equal(pgp_parse_datarow(&m, v, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].len, 4);
	assert_int_equal(pgp_parse_datarow(&m, v, 0, &n), -EBADMSG); /* more columns than room */
	assert_int_equal(pgp_check_backend(&m), 0);
	buf_free(&bt);
	buf_free(&bd);
}

static void test_error_round_trip(void **state)
{
	struct buf b = BUF_INIT;
	struct pgp_notice nt;

	(void)state;
	pgp_error(&b, "ERROR", "CU001", "Custos cannot record this access, so it is refused");
	struct pgp_msg m = frame(&b);
	assert_int_equal(m.type, 'E');
	assert_int_equal(pgp_parse_notice(&m, &nt), 0);
	assert_string_equal(nt.severity, "ERROR");
	assert_string_equal(nt.code, "CU001");
	assert_string_equal(nt.message, "Custos cannot record this access, so it is refused");
	buf_free(&b);
}

static void test_checks(void **state)
{
	struct buf ok = mk('S', NULL, 0), bad = mk('S', "x", 1), unknown = mk('Y', NULL, 0),
	           z = mk('Z', "Q", 1);

	(void)state;
	struct pgp_msg m = frame(&ok);
	assert_int_equal(pgp_check_frontend(&m), 0);
	m = frame(&bad);
	assert_int_equal(pgp_check_frontend(&m), -EBADMSG);
	m = frame(&unknown);
	assert_int_equal(pgp_check_frontend(&m), -EPROTO);
	assert_int_equal(pgp_check_backend(&m), -EPROTO);
	m = frame(&z);
	assert_int_equal(pgp_check_backend(&m), -EBADMSG); /* ReadyForQuery with an unknown status */
	struct buf q = mk('Q', "SELECT", 6);               /* no terminator */
	m = frame(&q);
	assert_int_equal(pgp_check_frontend(&m), -EBADMSG);
	buf_free(&ok);
	buf_free(&bad);
	buf_free(&unknown);
	buf_free(&z);
	buf_free(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_startup),
		cmocka_unit_test(test_bind),
		cmocka_unit_test(test_rowdesc_datarow),
		cmocka_unit_test(test_error_round_trip),
		cmocka_unit_test(test_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
