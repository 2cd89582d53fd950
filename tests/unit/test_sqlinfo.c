/* test_sqlinfo.c - statement analysis with libpg_query (daemon/sqlinfo.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sqlinfo.h"

static const struct sqi_table *table(const struct sqi_stmt *st, const char *name)
{
	for (size_t i = 0; i < st->ntables; i++)
		if (!strcmp(st->tables[i].name, name))
			return &st->tables[i];
	return NULL;
}

static void test_statements(void **state)
{
	struct sqi_info *info;
	char err[256];
	const char *sql =
	    "SELECT c.name FROM shop.customers c JOIN shop.orders o ON o.customer_id = c.id "
	    "WHERE c.email = 'jane@example.com';"
	    "INSERT INTO shop.addresses (customer_id, city) VALUES (42, 'Oslo') RETURNING id;"
	    "UPDATE shop.customers SET phone = '+47 555' FROM shop.orders WHERE orders.id = 7;"
	    "DELETE FROM tickets WHERE id = 3; COPY shop.customers (email) FROM STDIN; SET x = 1";

	(void)state;
	assert_int_equal(sqi_analyse(sql, &info, err, sizeof(err)), 0);
	assert_int_equal(info->n, 6);
	const enum sqi_kind want[] = { SQI_SELECT, SQI_INSERT, SQI_UPDATE, SQI_DELETE, SQI_COPY, SQI_OTHER };
	for (size_t i = 0; i < 6; i++) {
		assert_int_equal(info->stmts[i].kind, want[i]);
		assert_int_equal(strlen(info->stmts[i].fingerprint), 16);
		/* no literal reaches the normalised text */
		assert_null(strstr(info->stmts[i].normalized, "jane"));
		assert_null(strstr(info->stmts[i].normalized, "Oslo"));
		assert_null(strstr(info->stmts[i].normalized, "555"));
	}
	assert_string_equal(info->stmts[1].normalized,
	                    "INSERT INTO shop.addresses (customer_id, city) VALUES ($1, $2) RETURNING id");
	const struct sqi_table *t = table(&info->stmts[0], "customers");
	assert_non_null(t);
	assert_string_equal(t->schema, "shop");
	assert_false(t->write);
	assert_non_null(table(&info->stmts[0], "orders"));
	assert_true(table(&info->stmts[1], "addresses")->write);
	assert_true(info->stmts[1].returning);
	assert_true(table(&info->stmts[2], "customers")->write);
	assert_false(table(&info->stmts[2], "orders")->write);
	t = table(&info->stmts[3], "tickets");
	assert_true(t->write);
	assert_null(t->schema);
	assert_true(table(&info->stmts[4], "customers")->write);
	assert_int_equal(info->stmts[5].ntables, 0);
	sqi_free(info);
	/* the same shape, other values: the same fingerprint */
	struct sqi_info *a, *b;
	assert_int_equal(sqi_analyse("SELECT * FROM t WHERE id = 1", &a, err, sizeof(err)), 0);
	assert_int_equal(sqi_analyse("select *   from t where id = 99", &b, err, sizeof(err)), 0);
	assert_string_equal(a->stmts[0].fingerprint, b->stmts[0].fingerprint);
	sqi_free(a);
	sqi_free(b);
}

static void test_errors_quote_nothing(void **state)
{
	struct sqi_info *info = NULL;
	char err[256];

	(void)state;
	assert_int_equal(
	    sqi_analyse("SELEC email FROM t WHERE email = 'jane@example.com'", &info, err, sizeof(err)),
	    -EINVAL);
	assert_null(strstr(err, "jane"));
	assert_null(strstr(err, "SELEC"));
	assert_non_null(strstr(err, "does not parse"));
}

static void test_cache(void **state)
{
	struct sqi_cache *c = sqi_cache_new(2);
	const struct sqi_info *i1, *i2, *again;
	char err[256];

	(void)state;
	assert_int_equal(sqi_cache_get(c, "SELECT 1", &i1, err, sizeof(err)), 0);
	assert_int_equal(sqi_cache_get(c, "SELECT 1", &again, err, sizeof(err)), 0);
	assert_ptr_equal(i1, again);
	assert_int_equal(sqi_cache_get(c, "SELECT 2", &i2, err, sizeof(err)), 0);
	assert_int_equal(sqi_cache_get(c, "SELECT 1", &again, err, sizeof(err)), 0); /* 1 is now the newest */
	assert_ptr_equal(i1, again);
	assert_int_equal(sqi_cache_get(c, "SELECT 3", &again, err, sizeof(err)), 0); /* evicts 2 */
	assert_int_equal(sqi_cache_get(c, "SELECT 1", &again, err, sizeof(err)), 0);
	assert_ptr_equal(i1, again);
	assert_int_equal(sqi_cache_get(c, "nonsense here", &again, err, sizeof(err)), -EINVAL);
	sqi_cache_free(c);
	assert_null(sqi_cache_new(0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_statements),
		cmocka_unit_test(test_errors_quote_nothing),
		cmocka_unit_test(test_cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
