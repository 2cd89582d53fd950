/* test_sqlinfo.c - statement analysis with libpg_query (daemon/sqlinfo.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sqlbody.h"
#include "sqlinfo.h"
#include "sqlreading.h"

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
	/* a LATIN1 text: not UTF-8, which it says (it said "too complex") */
	assert_int_equal(sqi_analyse("SELECT name FROM t WHERE name = 'Jos\xe9'", &info, err, sizeof(err)),
	                 -EILSEQ);
	assert_null(strstr(err, "Jos"));
	assert_non_null(strstr(err, "not UTF-8"));
}

static void test_hidden_writes_and_literals(void **state)
{
	struct sqi_info *info;
	char err[256];

	(void)state;
	/* a writing CTE, EXPLAIN ANALYZE, PREPARE: the write is seen, the CTE is no table */
	assert_int_equal(
	    sqi_analyse("WITH d AS (DELETE FROM secrets WHERE id = 1 RETURNING *) SELECT * FROM d;"
	                "EXPLAIN ANALYZE DELETE FROM shop.customers WHERE id = 2;"
	                "PREPARE p AS UPDATE t SET a = 1; SELECT 1 INTO newt FROM src",
	                &info, err, sizeof(err)),
	    0);
	assert_int_equal(info->n, 4);
	assert_int_equal(info->stmts[0].kind, SQI_DELETE);
	assert_true(table(&info->stmts[0], "secrets")->write);
	assert_null(table(&info->stmts[0], "d"));
	assert_true(table(&info->stmts[1], "customers")->write);
	assert_true(table(&info->stmts[2], "t")->write);
	assert_non_null(table(&info->stmts[3], "newt"));
	assert_non_null(table(&info->stmts[3], "src"));
	sqi_free(info);
	/* DROP names its tables as names, not RangeVars: they are its tables */
	assert_int_equal(sqi_analyse("DROP TABLE shop.customers, orders CASCADE; DROP VIEW IF EXISTS v;"
	                             "DROP MATERIALIZED VIEW s.m; DROP INDEX shop.i; DROP SEQUENCE q",
	                             &info, err, sizeof(err)),
	                 0);
	assert_non_null(table(&info->stmts[0], "customers"));
	assert_string_equal(table(&info->stmts[0], "customers")->schema, "shop");
	assert_non_null(table(&info->stmts[0], "orders"));
	assert_null(table(&info->stmts[0], "orders")->schema);
	assert_non_null(table(&info->stmts[1], "v"));
	assert_non_null(table(&info->stmts[2], "m"));
	assert_int_equal(info->stmts[3].ntables, 0); /* an index or sequence holds no rows */
	assert_int_equal(info->stmts[4].ntables, 0);
	sqi_free(info);
	/* comments and utility statements' literals never reach the logged text */
	assert_int_equal(
	    sqi_analyse("SELECT /* ssn 123-45-6789 */ name FROM t -- jane@example.com\n WHERE id = 5;"
	                "COPY t FROM '/tmp/jane.csv'; NOTIFY chan, 'jane'; COMMENT ON TABLE t IS 'jane'",
	                &info, err, sizeof(err)),
	    0);
	for (size_t i = 0; i < info->n; i++) {
		assert_null(strstr(info->stmts[i].normalized, "jane"));
		assert_null(strstr(info->stmts[i].normalized, "123-45"));
	}
	assert_string_equal(info->stmts[1].normalized, "CopyStmt");
	assert_string_equal(info->stmts[2].normalized, "NotifyStmt");
	sqi_free(info);
	/* too many tables: refused, not truncated */
	char *big = malloc(400 * 8 + 32), *p = big;
	p += sprintf(p, "SELECT 1 FROM t0");
	for (int i = 1; i < 300; i++)
		p += sprintf(p, ",t%d", i);
	assert_int_equal(sqi_analyse(big, &info, err, sizeof(err)), -E2BIG);
	assert_non_null(strstr(err, "too complex"));
	free(big);
}

/* The values a statement ties columns to: "qual.column=value" or "column=$n",
 * "+" for inserted values, in order. */
static void preds_of(const char *sql, const char *want)
{
	struct sqi_info *info;
	char err[128], got[1024] = "";

	assert_int_equal(sqi_analyse(sql, &info, err, sizeof(err)), 0);
	for (size_t i = 0; i < info->stmts[0].npreds; i++) {
		const struct sqi_pred *p = &info->stmts[0].preds[i];
		char one[256], val[64];
		if (p->param)
			snprintf(val, sizeof(val), "$%d", p->param);
		else
			snprintf(val, sizeof(val), "%s", p->value);
		snprintf(one, sizeof(one), "%s%s%s%s%s=%s", *got ? " " : "", p->insert ? "+" : "",
		         p->qual ? p->qual : "", p->qual ? "." : "", p->column, val);
		strncat(got, one, sizeof(got) - strlen(got) - 1);
	}
	if (strcmp(got, want))
		fail_msg("%s\n got  %s\n want %s", sql, got, want);
	sqi_free(info);
}

/* The table of info's statement i named name, or NULL. */
static const struct sqi_table *named(const struct sqi_info *info, size_t i, const char *name)
{
	for (size_t j = 0; j < info->stmts[i].ntables; j++)
		if (!strcmp(info->stmts[i].tables[j].name, name))
			return &info->stmts[i].tables[j];
	return NULL;
}

static void test_do_blocks(void **state)
{
	struct sqi_info *info;
	char err[256];

	(void)state;
	/* static SQL and expressions: their tables are the block's, a write as written */
	assert_int_equal(
	    sqi_analyse("DO $$ DECLARE n int; r record; BEGIN n := (SELECT count(*) FROM shop.orders); "
	                "IF n > 0 THEN UPDATE shop.customers SET country = 'DE' WHERE id = 1; "
	                "END IF; FOR r IN SELECT * FROM shop.tickets LOOP PERFORM 1; END LOOP; "
	                "END $$; DO LANGUAGE plpgsql $x$ BEGIN INSERT INTO a VALUES ('$custos0$'); "
	                "END $x$",
	                &info, err, sizeof(err)),
	    0);
	assert_int_equal(info->n, 2);
	assert_string_equal(info->stmts[0].normalized, "DoStmt");
	assert_true(named(info, 0, "customers") && named(info, 0, "customers")->write);
	assert_true(named(info, 0, "orders") && !named(info, 0, "orders")->write);
	assert_true(named(info, 0, "tickets") && !named(info, 0, "tickets")->write);
	assert_int_equal(info->stmts[0].hidden, 0);
	assert_true(named(info, 1, "a") && named(info, 1, "a")->write); /* a body holding a dollar tag */
	assert_int_equal(info->stmts[1].hidden, 0);
	sqi_free(info);
	/* what cannot be seen: dynamic SQL, another language */
	assert_int_equal(sqi_analyse("DO $$ BEGIN EXECUTE format('DELETE FROM %I', 't'); "
	                             "UPDATE seen SET a = 1; END $$; DO LANGUAGE plpython3u $$ pass $$",
	                             &info, err, sizeof(err)),
	                 0);
	assert_true(info->stmts[0].hidden == SQI_HIDDEN_DYNAMIC && named(info, 0, "seen") &&
	            named(info, 0, "seen")->write);
	assert_true(info->stmts[1].hidden == SQI_HIDDEN_LANGUAGE && !info->stmts[1].ntables);
	sqi_free(info);
	/* a block's body is a literal: two blocks never share an analysis */
	struct sqi_cache *c = sqi_cache_new(8);
	const struct sqi_info *a;
	const struct sqi_literal *lits;
	size_t nlits;
	assert_non_null(c);
	assert_int_equal(
	    sqi_cache_get(c, "DO $$ BEGIN PERFORM 1 FROM r; END $$", &a, &lits, &nlits, err, sizeof(err)), 0);
	assert_true(named(a, 0, "r") && !named(a, 0, "w"));
	assert_int_equal(
	    sqi_cache_get(c, "DO $$ BEGIN DELETE FROM w; END $$", &a, &lits, &nlits, err, sizeof(err)), 0);
	assert_true(named(a, 0, "w") && named(a, 0, "w")->write && !named(a, 0, "r"));
	sqi_cache_free(c);
}

static bool calls(const struct sqi_name *c, size_t n, const char *schema, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if ((name ? c[i].name && !strcmp(c[i].name, name) : !c[i].name) &&
		    (schema ? c[i].schema && !strcmp(c[i].schema, schema) : !c[i].schema))
			return true;
	return false;
}

static void test_calls(void **state)
{
	struct sqi_info *info;
	char err[256];

	(void)state;
	assert_int_equal(
	    sqi_analyse(
	        "SELECT f(1), s.g(lower(x)) FROM h() WHERE k(2) > 0; CALL s.p(3); "
	        "DO $$ BEGIN PERFORM q(); END $$; "
	        "SELECT 1 OPERATOR(s.===) 2, x ==> ANY (SELECT 1) FROM t ORDER BY y USING <<<; "
	        "SELECT CAST(x AS s.box), y::text; "
	        "SELECT x BETWEEN 1 AND 2, x IN (SELECT 1), CASE x WHEN 1 THEN 2 END FROM a JOIN b USING (k)",
	        &info, err, sizeof(err)),
	    0);
	const struct sqi_stmt *a = &info->stmts[0], *b = &info->stmts[1], *c = &info->stmts[2],
	                      *d = &info->stmts[3], *e = &info->stmts[4], *f = &info->stmts[5];
	assert_int_equal(a->ncalls, 6);
	assert_true(calls(a->calls, a->ncalls, NULL, "f") && calls(a->calls, a->ncalls, "s", "g") &&
	            calls(a->calls, a->ncalls, NULL, "lower") && calls(a->calls, a->ncalls, NULL, "h") &&
	            calls(a->calls, a->ncalls, NULL, "k") && calls(a->calls, a->ncalls, NULL, ">"));
	assert_true(b->ncalls == 1 && calls(b->calls, b->ncalls, "s", "p"));
	assert_true(calls(c->calls, c->ncalls, NULL, "q")); /* a DO block's are the block's */
	/* operators run their functions: an expression's, ANY (SELECT ...)'s, ORDER BY ... USING's */
	assert_true(d->ncalls == 3 && calls(d->calls, d->ncalls, "s", "===") &&
	            calls(d->calls, d->ncalls, NULL, "==>") && calls(d->calls, d->ncalls, NULL, "<<<"));
	/* casts run theirs, named by the type cast to */
	assert_true(e->ncalls == 2 && calls(e->calls, e->ncalls, "s", "box") &&
	            calls(e->calls, e->ncalls, NULL, "text"));
	/* and the operators used unnamed: BETWEEN's, IN (SELECT ...)'s, CASE's, USING's */
	assert_true(f->ncalls == 6 && /* and BETWEEN, a name no operator has */
	            calls(f->calls, f->ncalls, NULL, ">=") && calls(f->calls, f->ncalls, NULL, "<") &&
	            calls(f->calls, f->ncalls, NULL, "="));
	sqi_free(info);
}

/* Which statements fire event triggers: DDL but on what no event trigger
 * sees, a DO block running DDL, SELECT INTO. */
static void test_event_triggers(void **state)
{
	static const struct {
		const char *sql;
		bool fires;
	} cases[] = {
		{ "CREATE TABLE t (x int)", true },
		{ "COMMENT ON TABLE t IS 'x'", true },
		{ "GRANT SELECT ON t TO r", true },
		{ "ALTER TABLE t ADD COLUMN y int", true },
		{ "SELECT 1 INTO t2", true },
		{ "DO $$BEGIN CREATE TABLE t3 (x int); END$$", true },
		{ "DO $$BEGIN PERFORM 1; END$$", false },
		{ "SELECT * FROM t", false },
		{ "INSERT INTO t VALUES (1)", false },
		{ "BEGIN", false },
		{ "SET work_mem = '8MB'", false },
		{ "TRUNCATE t", false },
		{ "CREATE ROLE r", false },
		{ "VACUUM t", false },
		{ "CREATE EVENT TRIGGER e ON ddl_command_end EXECUTE FUNCTION f()", false },
	};
	struct sqi_info *info;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(sqi_analyse(cases[i].sql, &info, err, sizeof(err)), 0);
		if (sqi_fires_event_triggers(&info->stmts[0]) != cases[i].fires)
			fail_msg("%s: fires %d", cases[i].sql, !cases[i].fires);
		sqi_free(info);
	}
}

/* The relations DDL makes or names anew (the catalog shows them once it
 * has committed). */
static void test_made(void **state)
{
	static const struct {
		const char *sql, *schema, *name, *schema2, *name2; /* name2: a second one made */
	} cases[] = {
		{ "CREATE VIEW s.v AS SELECT * FROM s.t", "s", "v", NULL, NULL },
		{ "CREATE OR REPLACE VIEW v AS SELECT 1", NULL, "v", NULL, NULL },
		{ "CREATE MATERIALIZED VIEW s.m AS SELECT * FROM t", "s", "m", NULL, NULL },
		{ "CREATE TABLE s.c () INHERITS (s.t)", "s", "c", "s", "t" },
		{ "CREATE TABLE p PARTITION OF s.t FOR VALUES IN (1)", NULL, "p", "s", "t" },
		{ "ALTER TABLE s.t RENAME TO u", "s", "u", NULL, NULL },
		{ "ALTER VIEW v RENAME TO w", NULL, "w", NULL, NULL },
		{ "ALTER TABLE s.t RENAME COLUMN a TO b", "s", "t", NULL, NULL },
		{ "ALTER TABLE s.t SET SCHEMA r", "r", "t", NULL, NULL },
		{ "ALTER SCHEMA s RENAME TO r", "r", NULL, NULL, NULL },
		{ "CREATE RULE x AS ON INSERT TO s.t DO INSTEAD NOTHING", "s", "t", NULL, NULL },
		{ "ALTER TABLE s.c INHERIT s.t", "s", "c", "s", "t" },
		{ "ALTER TABLE s.t ATTACH PARTITION s.p FOR VALUES IN (2)", "s", "t", "s", "p" },
		{ "CREATE SCHEMA crm CREATE VIEW v AS SELECT * FROM s.t CREATE TABLE x.y (a int)", "crm", "v",
		  NULL, NULL },
		{ "CREATE SCHEMA crm CREATE TABLE c () INHERITS (s.t)", "crm", "c", "s", "t" },
		{ "ALTER TABLE s.t ADD COLUMN c text", "s", "t", NULL, NULL },
		{ "DO $$BEGIN CREATE VIEW s.w AS SELECT * FROM s.t; END$$", "s", "w", NULL, NULL },
	};
	static const char *const none[] = { "CREATE TABLE s.t (a int REFERENCES s.u)",
		                            "CREATE TABLE x AS SELECT * FROM t",

		                            "ALTER FUNCTION f() RENAME TO g", "SELECT * FROM s.t",
		                            "DROP VIEW s.v" };
	struct sqi_info *info;
	char err[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(sqi_analyse(cases[i].sql, &info, err, sizeof(err)), 0);
		const struct sqi_stmt *s = &info->stmts[0];
		size_t n = cases[i].name2 ? 2 : 1;
		if (s->nmade != n || !calls(s->made, s->nmade, cases[i].schema, cases[i].name) ||
		    (cases[i].name2 && !calls(s->made, s->nmade, cases[i].schema2, cases[i].name2)))
			fail_msg("%s: %zu made", cases[i].sql, s->nmade);
		sqi_free(info);
	}
	for (size_t i = 0; i < ARRAY_SIZE(none); i++) {
		assert_int_equal(sqi_analyse(none[i], &info, err, sizeof(err)), 0);
		if (info->stmts[0].nmade)
			fail_msg("%s: made %s", none[i], info->stmts[0].made[0].name);
		sqi_free(info);
	}
	assert_int_equal(sqi_analyse("ALTER TABLE t RENAME COLUMN a TO b; DO $$BEGIN ANALYZE t; END$$; "
	                             "DO $$BEGIN INSERT INTO t VALUES (1); END$$",
	                             &info, err, sizeof(err)),
	                 0);
	assert_true(info->n == 3 && info->stmts[0].ncolumns == 2 &&
	            calls(info->stmts[0].columns, 2, NULL, "a") &&
	            calls(info->stmts[0].columns, 2, NULL, "b"));
	assert_true(info->stmts[1].body_ddl && !info->stmts[2].body_ddl);
	sqi_free(info);
}

/* The COPY formats whose rows the proxy reads: text and CSV under the
 * options copytext.h knows, and binary with no other option. */
static void test_copy_formats(void **state)
{
	static const struct {
		const char *sql;
		bool plain, binary;
	} cases[] = {
		{ "COPY t TO STDOUT", true, false },
		{ "COPY t TO STDOUT (FORMAT csv, HEADER, DELIMITER ';')", true, false },
		{ "COPY t (a, b) TO STDOUT (FORMAT binary)", false, true },
		{ "COPY t FROM STDIN WITH (FORMAT 'binary')", false, true },
		{ "COPY t TO STDOUT (FORMAT binary, HEADER)", false, false },
		{ "COPY t TO STDOUT (FORMAT binary, ENCODING 'LATIN1')", false, false },
		{ "COPY t TO STDOUT (FORMAT csv, FORCE_QUOTE *)", true, false },
		{ "COPY t TO STDOUT (FORMAT csv, FORCE_QUOTE (a, b))", true, false },
		{ "COPY t FROM STDIN (FORMAT csv, FORCE_QUOTE *)", false, false },
		{ "COPY t TO STDOUT (FORCE_QUOTE *)", false, false },
		{ "COPY t TO STDOUT (FORMAT csv, FORCE_QUOTE *, FORCE_QUOTE (a))", false, false },
		{ "COPY t TO STDOUT (FORMAT csv, FORCE_NOT_NULL (a))", false, false },
		{ "COPY (SELECT * FROM t) TO STDOUT (FORMAT binary)", false, false },
	};
	struct sqi_info *info;
	char err[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(sqi_analyse(cases[i].sql, &info, err, sizeof(err)), 0);
		const struct sqi_stmt *s = &info->stmts[0];
		if (s->copy_plain != cases[i].plain || s->copy_binary != cases[i].binary)
			fail_msg("%s: plain %d binary %d", cases[i].sql, s->copy_plain, s->copy_binary);
		sqi_free(info);
	}
}

static bool same_str(const char *a, const char *b)
{
	return a && b ? !strcmp(a, b) : a == b;
}

/* DDL giving a column a default (or a generated expression) names it;
 * a default of NULL, dropping one, or other DDL does not. */
static void test_defaults(void **state)
{
	static const struct {
		const char *sql, *schema, *table, *column;
	} cases[] = {
		{ "ALTER TABLE s.t ALTER COLUMN c SET DEFAULT 'x'", "s", "t", "c" },
		{ "ALTER TABLE t ALTER c SET DEFAULT lower('X')", NULL, "t", "c" },
		{ "ALTER TABLE t ADD COLUMN c text DEFAULT 'x'", NULL, "t", "c" },
		{ "ALTER TABLE t ADD c text GENERATED ALWAYS AS (upper(d)) STORED", NULL, "t", "c" },
		{ "CREATE TABLE s.t (a int, c text NOT NULL DEFAULT ''::text)", "s", "t", "c" },
		{ "ALTER TABLE t ALTER COLUMN c TYPE varchar(20) USING 'x'", NULL, "t", "c" },
		{ "ALTER TABLE t ALTER c TYPE varchar(20)", NULL, "t", "c" },
		{ "ALTER TABLE t ADD c serial", NULL, "t", "c" },
		{ "ALTER TABLE t ADD c s.domain", NULL, "t", "c" },
		{ "ALTER TABLE t ADD c int GENERATED ALWAYS AS IDENTITY", NULL, "t", "c" },
		{ "DO $$BEGIN ALTER TABLE s.t ALTER c SET DEFAULT 'x'; END$$", "s", "t", "c" },
		{ "ALTER DOMAIN s.d SET DEFAULT 'x'", "s", NULL, "d" },
		{ "ALTER DOMAIN d SET DEFAULT 1", NULL, NULL, "d" },
		{ "CREATE SCHEMA s CREATE TABLE t (c text DEFAULT 'x')", "s", "t", "c" },
	};
	static const char *const none[] = {
		"ALTER TABLE t ALTER COLUMN c SET DEFAULT NULL",
		"ALTER TABLE t ALTER COLUMN c SET DEFAULT NULL::text",
		"ALTER TABLE t ALTER COLUMN c DROP DEFAULT",
		"ALTER TABLE t ADD COLUMN c text DEFAULT NULL",
		"CREATE TABLE t (a int, c text)",
		"ALTER DOMAIN d DROP DEFAULT",
		"ALTER DOMAIN d SET NOT NULL",
		"CREATE DOMAIN d AS text DEFAULT 'x'", /* no column has it yet */
		"ALTER TABLE t ADD c varchar(3) NOT NULL",
		"ALTER TABLE t ADD c text[]",
		"CREATE TABLE p PARTITION OF s.t (c NOT NULL) FOR VALUES IN (1)",
	};
	struct sqi_info *info;
	char err[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(sqi_analyse(cases[i].sql, &info, err, sizeof(err)), 0);
		const struct sqi_stmt *s = &info->stmts[0];
		if (s->ndefaults != 1 || !same_str(s->defaults[0].schema, cases[i].schema) ||
		    !same_str(s->defaults[0].table, cases[i].table) ||
		    !same_str(s->defaults[0].column, cases[i].column))
			fail_msg("%s: %zu defaults", cases[i].sql, s->ndefaults);
		sqi_free(info);
	}
	/* a child's column of its parent's name is the parent's column too */
	assert_int_equal(
	    sqi_analyse("CREATE TABLE t (c text DEFAULT 'x') INHERITS (s.u)", &info, err, sizeof(err)), 0);
	const struct sqi_stmt *child = &info->stmts[0];
	assert_true(child->ndefaults == 2 && !strcmp(child->defaults[0].table, "t") &&
	            !strcmp(child->defaults[1].table, "u") && !strcmp(child->defaults[1].schema, "s") &&
	            !strcmp(child->defaults[1].column, "c"));
	sqi_free(info);
	for (size_t i = 0; i < ARRAY_SIZE(none); i++) {
		assert_int_equal(sqi_analyse(none[i], &info, err, sizeof(err)), 0);
		if (info->stmts[0].ndefaults)
			fail_msg("%s: a default of %s", none[i], info->stmts[0].defaults[0].column);
		sqi_free(info);
	}
}

static void test_events(void **state)
{
	struct sqi_info *info;
	char err[256];

	(void)state;
	assert_int_equal(
	    sqi_analyse("INSERT INTO a (x) VALUES (1); INSERT INTO a (x) VALUES (1) ON CONFLICT (x) "
	                "DO UPDATE SET x = 2; UPDATE a SET x = 1; DELETE FROM a; TRUNCATE a; "
	                "MERGE INTO a USING b ON a.x = b.x WHEN MATCHED THEN DELETE; "
	                "WITH d AS (DELETE FROM a RETURNING x) INSERT INTO b SELECT x FROM d; "
	                "COPY a FROM STDIN; TRUNCATE a CASCADE; "
	                "WITH d AS (DELETE FROM a RETURNING *) INSERT INTO a SELECT * FROM d; "
	                "COPY (DELETE FROM a RETURNING x) TO STDOUT; COPY a TO STDOUT",
	                &info, err, sizeof(err)),
	    0);
	const unsigned want[] = {
		SQI_EV_INSERT,
		SQI_EV_INSERT | SQI_EV_UPDATE,
		SQI_EV_UPDATE,
		SQI_EV_DELETE,
		SQI_EV_TRUNCATE,
		SQI_EV_INSERT | SQI_EV_UPDATE | SQI_EV_DELETE,
		SQI_EV_INSERT | SQI_EV_DELETE,
		SQI_EV_INSERT,
		SQI_EV_TRUNCATE | SQI_EV_TRUNCATE_CASCADE,
		SQI_EV_INSERT | SQI_EV_DELETE, /* the same table, written two ways */
		SQI_EV_DELETE,
		0,
	};
	assert_int_equal(info->n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < info->n; i++)
		assert_int_equal(info->stmts[i].events, want[i]);
	sqi_free(info);
}

static const struct sqb_table *routine_table(const struct sqb_routine *r, const char *name)
{
	for (size_t i = 0; i < r->ntables; i++)
		if (!strcmp(r->tables[i].name, name))
			return &r->tables[i];
	return NULL;
}

static void test_routines(void **state)
{
	struct sqb_routine r;

	(void)state;
	/* PL/pgSQL, a trigger's: NEW is known; the columns each write names */
	assert_int_equal(sqb_routine("CREATE OR REPLACE FUNCTION s.t() RETURNS trigger LANGUAGE plpgsql AS "
	                             "$function$ BEGIN UPDATE s.c SET country = NEW.c WHERE id = NEW.id; "
	                             "INSERT INTO s.h SELECT NEW.*; PERFORM s.other(NEW.id); "
	                             "DELETE FROM s.d WHERE id = 1; RETURN NEW; END $function$",
	                             &r),
	                 0);
	assert_int_equal(r.hidden, 0);
	const struct sqb_table *t = routine_table(&r, "c");
	assert_true(t && t->write && !t->cols.all && t->cols.n == 1 && !strcmp(t->cols.names[0], "country"));
	assert_true(!t->updated.all && t->updated.n == 1 && !strcmp(t->updated.names[0], "country"));
	assert_true((t = routine_table(&r, "h")) && t->write && t->cols.all && !t->updated.all);
	assert_true((t = routine_table(&r, "d")) && t->write && !t->cols.all && !t->cols.n);
	assert_true(routine_table(&r, "c")->events == SQI_EV_UPDATE && t->events == SQI_EV_DELETE);
	assert_true(calls(r.calls, r.ncalls, "s", "other"));
	sqb_routine_free(&r);
	/* an INSERT's columns are not updated; an UPDATE's and an upsert's SET are */
	assert_int_equal(
	    sqb_routine("CREATE FUNCTION s.n(a int) RETURNS void LANGUAGE sql AS "
	                "'INSERT INTO s.x (id, v) VALUES (a, 1); UPDATE s.x SET v = 2 WHERE id = a; "
	                "INSERT INTO s.x (id, w) VALUES (a, 3) ON CONFLICT (id) DO UPDATE SET w = 4'",
	                &r),
	    0);
	t = routine_table(&r, "x");
	assert_true(t && t->cols.n == 3 && !t->updated.all && t->updated.n == 2 &&
	            !strcmp(t->updated.names[0], "v") && !strcmp(t->updated.names[1], "w"));
	sqb_routine_free(&r);
	/* SQL: a string body, a BEGIN ATOMIC one, RETURN */
	assert_int_equal(sqb_routine("CREATE FUNCTION s.a(p int) RETURNS int LANGUAGE sql AS "
	                             "'SELECT count(*) FROM s.r; UPDATE s.w SET a = p'",
	                             &r),
	                 0);
	assert_true(r.hidden == 0 && routine_table(&r, "r") && !routine_table(&r, "r")->write &&
	            routine_table(&r, "w") && routine_table(&r, "w")->write);
	sqb_routine_free(&r);
	assert_int_equal(sqb_routine("CREATE FUNCTION s.b(p int) RETURNS int LANGUAGE sql BEGIN ATOMIC "
	                             "INSERT INTO s.i (id) VALUES (b.p); SELECT s.f(1); END",
	                             &r),
	                 0);
	assert_true(r.hidden == 0 && routine_table(&r, "i") && routine_table(&r, "i")->write &&
	            calls(r.calls, r.ncalls, "s", "f"));
	sqb_routine_free(&r);
	assert_int_equal(sqb_routine("CREATE FUNCTION s.c(p int) RETURNS int LANGUAGE sql RETURN p + "
	                             "(SELECT max(id) FROM s.m)",
	                             &r),
	                 0);
	assert_true(r.hidden == 0 && routine_table(&r, "m"));
	sqb_routine_free(&r);
	/* a parameter's default runs in the calls that leave it out */
	assert_int_equal(sqb_routine("CREATE FUNCTION s.h(a int DEFAULT s.g(1)) RETURNS int LANGUAGE sql "
	                             "AS 'SELECT a'",
	                             &r),
	                 0);
	assert_true(calls(r.calls, r.ncalls, "s", "g"));
	sqb_routine_free(&r);
	/* what cannot be seen */
	assert_int_equal(sqb_routine("CREATE FUNCTION s.d() RETURNS int LANGUAGE plpgsql AS $$ BEGIN "
	                             "EXECUTE 'TRUNCATE s.x'; RETURN 1; END $$",
	                             &r),
	                 0);
	assert_int_equal(r.hidden, SQI_HIDDEN_DYNAMIC);
	sqb_routine_free(&r);
	assert_int_equal(sqb_routine("CREATE FUNCTION s.e() RETURNS int LANGUAGE plperl AS 'return 1'", &r),
	                 0);
	assert_int_equal(r.hidden, SQI_HIDDEN_LANGUAGE);
	sqb_routine_free(&r);
	/* C and internal: only a superuser makes them, trusted */
	assert_int_equal(sqb_routine("CREATE FUNCTION s.e() RETURNS int LANGUAGE c AS 'lib', 'sym'", &r), 0);
	assert_int_equal(r.hidden, 0);
	sqb_routine_free(&r);
	assert_int_equal(sqb_routine("CREATE FUNCTION s.f() RETURNS TABLE(x int) LANGUAGE plpgsql AS $$ "
	                             "BEGIN x := 1; RETURN NEXT; END $$",
	                             &r),
	                 0); /* libpg_query 15 does not know the OUT parameter */
	assert_int_equal(r.hidden, SQI_HIDDEN_UNPARSED);
	sqb_routine_free(&r);
	assert_int_equal(sqb_routine("CREATE FUNCTION s.g() RETURNS int LANGUAGE sql AS 'SELEC 1'", &r), 0);
	assert_int_equal(r.hidden, SQI_HIDDEN_UNPARSED);
	sqb_routine_free(&r);
	/* a trigger function's assignments to NEW; what it only reads of NEW is not one */
	assert_int_equal(
	    sqb_routine("CREATE FUNCTION s.t() RETURNS trigger LANGUAGE plpgsql AS $$ DECLARE n int; "
	                "BEGIN NEW.id := NEW.x + 1; new.cid = 2; SELECT 7 INTO NEW.z; "
	                "GET DIAGNOSTICS NEW.g = ROW_COUNT; n := NEW.y; RETURN NEW; END $$",
	                &r),
	    0);
	assert_true(!r.assigns.all && r.assigns.n == 4 && !strcmp(r.assigns.names[0], "id") &&
	            !strcmp(r.assigns.names[1], "cid") && !strcmp(r.assigns.names[2], "z") &&
	            !strcmp(r.assigns.names[3], "g"));
	sqb_routine_free(&r);
	assert_int_equal(sqb_routine("CREATE FUNCTION s.t() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
	                             "SELECT * INTO NEW FROM s.x; RETURN NEW; END $$",
	                             &r),
	                 0);
	assert_true(r.assigns.all);
	sqb_routine_free(&r);
	assert_int_equal(sqb_routine("CREATE FUNCTION s.t() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
	                             "NEW := OLD; RETURN NEW; END $$",
	                             &r),
	                 0);
	assert_true(r.assigns.all);
	sqb_routine_free(&r);
	/* a field taken back from OLD is kept, not stored; unless OLD may not be the row's */
	static const struct {
		const char *body, *assigns, *keeps;
	} keeps[] = {
		{ "NEW.id := OLD.id; new.\"Cid\" = old . \"Cid\"", "", "id,Cid" },
		{ "NEW.id := OLD.id; NEW.id := 2", "id", "id" },
		{ "NEW.id := OLD.cid; NEW.cid := OLD.cid + 1; NEW.x := (OLD.x); NEW.y := OLD.y FROM s.t",
		  "id,cid,y", "x" }, /* (the parentheses are no part of the parse) */
		{ "OLD.id := 2; NEW.id := OLD.id", "id", "" },
		{ "SELECT 2 INTO OLD.cid; NEW.id := OLD.id", "id", "" },
		{ "<<b>> DECLARE old record; BEGIN NEW.id := OLD.id; END", "id", "" },
		{ "<<Old>> DECLARE id int := 7; BEGIN NEW.id := old.id; END", "id", "" },
		{ "CALL s.p(OLD.id); NEW.id := OLD.id", "id", "" },
		/* found by a reviewer: a := in a comment or a string, OLD named another way, a field's part
		 */
		{ "NEW.email = 'plain' -- := OLD.email\n; NEW.id = 99 -- := OLD.id\n", "email,id", "" },
		{ "NEW.email = 'a:= OLD.email --'", "email", "" },
		{ "CALL s.p(t.old.email); NEW.email := OLD.email", "email", "" },
		{ "CALL s.p(U&\"\\006Fld\".email); NEW.email := OLD.email", "email", "" },
		{ "NEW.a[2:3] := OLD.a; NEW.j['k'] := OLD.j", "a,j", "" },
		{ "NEW.id := OLD.id /* := 2 */; NEW.\"ID\" := U&\"\\006Fld\".\"ID\"", "", "id,ID" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(keeps); i++) {
		char def[512], got[2][64];
		snprintf(def, sizeof(def),
		         "CREATE FUNCTION s.t() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN %s; RETURN NEW; "
		         "END $$",
		         keeps[i].body);
		assert_int_equal(sqb_routine(def, &r), 0);
		const struct sqb_cols *c[2] = { &r.assigns, &r.keeps };
		for (int k = 0; k < 2; k++) {
			got[k][0] = 0;
			for (size_t j = 0; j < c[k]->n; j++)
				snprintf(got[k] + strlen(got[k]), sizeof(got[k]) - strlen(got[k]), "%s%s",
				         j ? "," : "", c[k]->names[j]);
		}
		assert_false(r.assigns.all);
		assert_string_equal(got[0], keeps[i].assigns);
		assert_string_equal(got[1], keeps[i].keeps);
		sqb_routine_free(&r);
	}
	/* the row a trigger returns is stored: NEW, OLD, NULL assign nothing; another row all */
	static const struct {
		const char *body;
		bool all;
	} rows[] = { { "IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; RETURN NEW", false },
		     { "RETURN null", false },
		     { "RETURN jsonb_populate_record(NEW, '{}')", true },
		     { "CALL s.p(NEW.id); RETURN NEW", true },
		     { "CALL s.p(1); RETURN NEW", false },
		     { "CALL s.p(t.new.email); RETURN NEW", true },
		     { "DECLARE n ALIAS FOR new; BEGIN CALL s.p(n.email); END; RETURN NEW", true },
		     { "CALL s.p(TG_OP); RETURN NEW", false },
		     /* found by a reviewer: OLD changed and returned, NEW's name another variable's */
		     { "OLD.email := 'x'; RETURN OLD", true },
		     { "SELECT * INTO OLD FROM s.c WHERE id = 2; RETURN OLD", true },
		     { "DECLARE new s.c; BEGIN new := OLD; new.email := 'x'; RETURN new; END", true },
		     { "DECLARE n ALIAS FOR new; BEGIN n.email := 'x'; END; RETURN NEW", true },
		     { "<<b>> DECLARE r record; old ALIAS FOR r; BEGIN NEW.id := old.id; END; RETURN NEW",
		       true },
		     { "DECLARE r record; BEGIN r := NEW; r.id := 2; RETURN r; END; RETURN NULL", true } };
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		char def[256];
		snprintf(def, sizeof(def),
		         "CREATE FUNCTION s.t() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN %s; END $$",
		         rows[i].body);
		assert_int_equal(sqb_routine(def, &r), 0);
		assert_int_equal(r.assigns.all, rows[i].all);
		sqb_routine_free(&r);
	}
	/* a routine's own settings that change how its body reads: not what it reads as here */
	assert_int_equal(
	    sqb_routine("CREATE FUNCTION s.t() RETURNS trigger LANGUAGE plpgsql SET search_path = s "
	                "SET standard_conforming_strings TO 'off' AS $$ BEGIN RETURN NEW; END $$",
	                &r),
	    0);
	assert_true(r.assigns.all && (r.hidden & SQI_HIDDEN_UNPARSED));
	sqb_routine_free(&r);
	assert_int_equal(
	    sqb_routine("CREATE FUNCTION s.t() RETURNS trigger LANGUAGE plpgsql SET search_path = s "
	                "AS $$ BEGIN RETURN NEW; END $$",
	                &r),
	    0);
	assert_true(!r.assigns.all && !r.hidden);
	sqb_routine_free(&r);
	/* a rule, as pg_get_ruledef() gives it: its actions are its statements */
	assert_int_equal(sqb_routine("CREATE RULE r AS ON INSERT TO s.v DO INSTEAD (INSERT INTO s.c (email) "
	                             "VALUES (new.e); UPDATE s.u SET n = 1 WHERE id = new.id;)",
	                             &r),
	                 0);
	assert_true(r.hidden == 0 && (t = routine_table(&r, "c")) && t->write && t->cols.n == 1 &&
	            !strcmp(t->cols.names[0], "email") && (t = routine_table(&r, "u")) && t->write &&
	            t->events == SQI_EV_UPDATE);
	sqb_routine_free(&r);
	assert_int_equal(sqb_routine("CREATE RULE r AS ON DELETE TO s.v DO INSTEAD NOTHING", &r), 0);
	assert_true(r.hidden == 0 && r.ntables == 0);
	sqb_routine_free(&r);
	/* its condition: the routines it calls, the tables its subqueries read */
	assert_int_equal(
	    sqb_routine("CREATE RULE r AS ON UPDATE TO s.v WHERE lower(old.n) < s.f(new.n) "
	                "AND (SELECT count(*) FROM s.c) > 0 DO ALSO INSERT INTO s.l VALUES (new.n)",
	                &r),
	    0);
	assert_true(r.hidden == 0 && calls(r.calls, r.ncalls, "s", "f") && routine_table(&r, "c") &&
	            !routine_table(&r, "c")->write && routine_table(&r, "l")->write);
	sqb_routine_free(&r);
	/* not one routine's definition */
	assert_int_equal(sqb_routine("SELECT 1", &r), -EINVAL);
	sqb_routine_free(&r);
	assert_int_equal(sqb_routine("CREATE FUNCTION a() RETURNS int LANGUAGE sql RETURN 1; SELECT 2", &r),
	                 -EINVAL);
	sqb_routine_free(&r);
}

static void test_predicates(void **state)
{
	struct sqi_info *info;
	char err[128];

	(void)state;
	assert_int_equal(
	    sqi_analyse("SELECT 1 FROM shop.customers c JOIN t ON true", &info, err, sizeof(err)), 0);
	assert_string_equal(table(&info->stmts[0], "customers")->alias, "c");
	assert_null(table(&info->stmts[0], "t")->alias);
	sqi_free(info);
	preds_of(
	    "SELECT name FROM shop.customers c WHERE c.id = 5 AND country IN ('DE', $2) AND id = $1::int",
	    "c.id=5 country=DE country=$2 id=$1");
	preds_of("SELECT 1 FROM t WHERE 7 = id", "id=7");
	preds_of("SELECT 1 FROM t WHERE id = 5 OR id = 6", ""); /* not a conjunction: no tie */
	preds_of("SELECT 1 FROM t WHERE id > 5 AND id <> 6 AND id = lower('x')", "");
	preds_of("UPDATE t SET a = 1 WHERE id = 'abc'", "id=abc");
	preds_of("DELETE FROM t WHERE (id = 3 AND (k = 4))", "id=3 k=4");
	preds_of("INSERT INTO shop.orders (customer_id, status) VALUES (5, 'x'), ($1, NULL)",
	         "+customer_id=5 +status=x +customer_id=$1");
	preds_of("SELECT * FROM t WHERE id = NULL", "");
}

/* "a,b" for the columns written, "*" for all of them. */
static void writes_of(const char *sql, const char *want)
{
	struct sqi_info *info;
	char err[128], got[256] = "";

	assert_int_equal(sqi_analyse(sql, &info, err, sizeof(err)), 0);
	const struct sqi_stmt *st = &info->stmts[0];
	for (size_t i = 0; i < st->nwrite_cols; i++) {
		strcat(got, i ? "," : "");
		strcat(got, st->write_cols[i]);
	}
	if (st->write_all)
		strcat(got, "*");
	if (strcmp(got, want))
		fail_msg("%s\n got  %s\n want %s", sql, got, want);
	sqi_free(info);
}

/* Columns used in expressions: not bare output columns, NULL tests, write
 * targets or top-level predicates; each name once. */
static void uses_are(const char *sql, const char *want)
{
	struct sqi_info *info;
	char err[256], got[256] = "";

	assert_int_equal(sqi_analyse(sql, &info, err, sizeof(err)), 0);
	for (size_t i = 0; i < info->stmts[0].nuses; i++) {
		const struct sqi_use *u = &info->stmts[0].uses[i];
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s%s%s", *got ? " " : "",
		         u->qual ? u->qual : "", u->qual ? "." : "", u->column);
	}
	assert_string_equal(got, want);
	sqi_free(info);
}

static void test_uses(void **state)
{
	(void)state;
	uses_are(
	    "SELECT id, c.email, * FROM customers c WHERE email = $1 AND c.id IN (1, 2) AND phone IS NULL",
	    "");
	uses_are("SELECT id FROM customers WHERE email LIKE 'a%' OR id = 1", "email id");
	uses_are("SELECT lower(name), name FROM customers ORDER BY name, email", "name email");
	uses_are("SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.email = 'x'",
	         "c.id o.customer_id");
	uses_are("SELECT 1 FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE email = 'x')",
	         "customer_id id email");
	uses_are("SELECT * FROM (SELECT email AS e FROM customers) s WHERE e = 'x'", "email");
	uses_are("SELECT email FROM customers UNION SELECT name FROM customers", "email name");
	uses_are("UPDATE customers SET phone = '1', name = name WHERE id = 3 RETURNING email", "");
	uses_are("INSERT INTO customers (email) VALUES ('a') ON CONFLICT (email) DO UPDATE SET name = "
	         "upper(excluded.name)",
	         "excluded.name");
	/* the statement's query is its output (a view's, a cursor's, COPY's) */
	uses_are(
	    "CREATE VIEW v AS SELECT id, name AS n FROM customers WHERE email = 'x' AND lower(phone) = 'y'",
	    "email phone");
	uses_are("DECLARE c CURSOR FOR SELECT email FROM customers", "");
	uses_are("COPY (SELECT email FROM customers) TO STDOUT", "");
	uses_are("CREATE VIEW v AS SELECT email FROM customers UNION SELECT name FROM customers",
	         "email name");
}

static void test_written_columns(void **state)
{
	(void)state;
	writes_of("INSERT INTO c (email, name) VALUES ('a', 'b')", "email,name");
	writes_of("INSERT INTO c VALUES ('a', 'b')", "*");
	writes_of("INSERT INTO c SELECT * FROM d", "*");
	writes_of("UPDATE c SET email = 'x', (name, phone) = ('a', 'b') WHERE id = 1", "email,name,phone");
	writes_of("COPY c (email) FROM STDIN", "email");
	writes_of("COPY c FROM STDIN", "*");
	writes_of("COPY c TO STDOUT", "");
	writes_of("DELETE FROM c WHERE id = 1", "");
	writes_of("SELECT * FROM c", "");
	writes_of("WITH x AS (INSERT INTO c (email) VALUES ('a') RETURNING id) SELECT * FROM x", "*");
	writes_of("WITH x AS (UPDATE d SET a = 1 RETURNING id) INSERT INTO c (email) SELECT 'a' FROM x",
	          "email*");
	writes_of("MERGE INTO c USING d ON c.id = d.id WHEN MATCHED THEN UPDATE SET email = d.email", "*");
	/* a writing CTE beside a write of the same table (it passed as the outer write alone) */
	writes_of("WITH x AS (UPDATE c SET name = 'p' RETURNING 1) INSERT INTO c (email) VALUES ('a')",
	          "email*");
	writes_of("WITH x AS (UPDATE c SET name = 'p' RETURNING 1) DELETE FROM c WHERE false", "*");
	/* more values than followed: an upsert's SET beyond them would go unchecked */
	struct buf many = BUF_INIT;
	buf_printf(&many, "INSERT INTO c (a) VALUES (1)");
	for (unsigned i = 0; i < SQI_MAX_WRITES; i++)
		buf_printf(&many, ",(1)");
	buf_printf(&many, " ON CONFLICT (a) DO UPDATE SET b = 'x'");
	buf_addc(&many, 0);
	writes_of(many.p, "a*");
	buf_free(&many);
	/* MERGE writes its target (it was taken for a read once) */
	struct sqi_info *info;
	char err[128];
	assert_int_equal(sqi_analyse("MERGE INTO c USING d ON c.id = d.id WHEN MATCHED THEN DELETE", &info,
	                             err, sizeof(err)),
	                 0);
	assert_true(table(&info->stmts[0], "c")->write);
	assert_false(table(&info->stmts[0], "d")->write);
	sqi_free(info);
}

/* ON CONFLICT's target columns; a cast column in a predicate */
static void test_conflict_target_and_cast_columns(void **state)
{
	struct sqi_info *info;
	char err[128];

	(void)state;
	assert_int_equal(sqi_analyse("INSERT INTO c (id, a) VALUES (1, 2) ON CONFLICT (id, (lower(a)), b) "
	                             "DO UPDATE SET a = 1",
	                             &info, err, sizeof(err)),
	                 0);
	assert_int_equal(info->stmts[0].nconflict_cols, 2);
	assert_string_equal(info->stmts[0].conflict_cols[0], "id");
	assert_string_equal(info->stmts[0].conflict_cols[1], "b");
	sqi_free(info);
	assert_int_equal(
	    sqi_analyse("INSERT INTO c (id) VALUES (1) ON CONFLICT ON CONSTRAINT c_pkey DO UPDATE "
	                "SET a = 1",
	                &info, err, sizeof(err)),
	    0);
	assert_int_equal(info->stmts[0].nconflict_cols, 0);
	sqi_free(info);
	assert_int_equal(sqi_analyse("SELECT 1 FROM c WHERE id::int = '7' AND name = 'x' AND '8' = c.id::int",
	                             &info, err, sizeof(err)),
	                 0);
	const struct sqi_stmt *st = &info->stmts[0];
	assert_int_equal(st->npreds, 3);
	assert_true(st->preds[0].col_cast && !st->preds[0].plain && st->preds[0].bare);
	assert_true(!st->preds[1].col_cast && st->preds[1].plain);
	assert_true(st->preds[2].col_cast && !strcmp(st->preds[2].qual, "c"));
	sqi_free(info);
}

/* The values written, through the cache: "col=K" with K the kind (c/literal
 * index, $n, null, excluded, expr) and @row when not 0; "+" when partial. */
static void values_of(const char *sql, const char *want)
{
	struct sqi_cache *c = sqi_cache_new(4);
	const struct sqi_info *info;
	const struct sqi_literal *lits;
	size_t nlits;
	char err[128], got[512] = "", item[64];

	assert_int_equal(sqi_cache_get(c, sql, &info, &lits, &nlits, err, sizeof(err)), 0);
	const struct sqi_stmt *st = &info->stmts[0];
	for (size_t i = 0; i < st->nwrites; i++) {
		const struct sqi_write *w = &st->writes[i];
		static const char *const kinds[] = { "", "$", "null", "excluded", "expr" };
		if (w->kind == SQI_W_CONST)
			snprintf(item, sizeof(item), "%s=c%d", w->column, w->literal);
		else if (w->kind == SQI_W_PARAM)
			snprintf(item, sizeof(item), "%s=$%d", w->column, w->param);
		else
			snprintf(item, sizeof(item), "%s=%s", w->column, kinds[w->kind]);
		strcat(got, i ? " " : "");
		strcat(got, item);
		if (w->row)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "@%u", w->row);
	}
	if (st->writes_partial)
		strcat(got, "+");
	if (strcmp(got, want))
		fail_msg("%s\n got  %s\n want %s", sql, got, want);
	sqi_cache_free(c);
}

static void test_written_values(void **state)
{
	(void)state;
	values_of("INSERT INTO c (email, name) VALUES ('a', $1), (NULL, 'b'::text)",
	          "email=c0 name=$1 email=null@1 name=c1@1");
	values_of("SELECT 'x', 1; ", "");
	values_of("UPDATE c SET email = $2, name = 'x', phone = lower('y') WHERE id = 4",
	          "email=$2 name=c0 phone=expr");
	values_of("UPDATE c SET (email, name) = ('a', 'b') WHERE id = 1", "email=expr name=expr");
	values_of("INSERT INTO c (email) SELECT email FROM d", "+");
	values_of("INSERT INTO c (id, email) VALUES (1, DEFAULT)", "id=c0 email=expr");
	values_of("INSERT INTO c (id, email) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET email = "
	          "EXCLUDED.email, name = EXCLUDED.phone, phone = 'p'",
	          "id=c0 email=c1 email=excluded name=expr phone=c2");
	values_of("INSERT INTO c (n) VALUES (-5)", "n=expr");
}

static void test_cache(void **state)
{
	struct sqi_cache *c = sqi_cache_new(2);
	const struct sqi_info *i1, *i2, *again;
	const struct sqi_literal *lits;
	size_t nlits;
	char err[256];

	(void)state;
	assert_int_equal(sqi_cache_get(c, "SELECT a FROM t", &i1, &lits, &nlits, err, sizeof(err)), 0);
	assert_int_equal(sqi_cache_get(c, "SELECT a FROM t", &again, &lits, &nlits, err, sizeof(err)), 0);
	assert_ptr_equal(i1, again);
	assert_int_equal(sqi_cache_get(c, "SELECT b FROM t", &i2, &lits, &nlits, err, sizeof(err)), 0);
	assert_int_equal(sqi_cache_get(c, "SELECT a FROM t", &again, &lits, &nlits, err, sizeof(err)), 0);
	assert_ptr_equal(i1, again); /* a is now the newest */
	assert_int_equal(sqi_cache_get(c, "SELECT c FROM t", &again, &lits, &nlits, err, sizeof(err)), 0);
	assert_int_equal(sqi_cache_get(c, "SELECT a FROM t", &again, &lits, &nlits, err, sizeof(err)), 0);
	assert_ptr_equal(i1, again);
	uint64_t hits, misses, evictions;
	sqi_cache_stats(c, &hits, &misses, &evictions);
	assert_int_equal(hits, 3);
	assert_int_equal(misses, 3);
	assert_int_equal(evictions, 1);
	assert_int_equal(sqi_cache_get(c, "SELECT b FROM t", &again, &lits, &nlits, err, sizeof(err)), 0);
	sqi_cache_stats(c, &hits, &misses, &evictions);
	assert_int_equal(misses, 4); /* b was evicted: analysed anew */
	assert_int_equal(sqi_cache_get(c, "nonsense here", &again, &lits, &nlits, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "does not parse"));
	sqi_cache_free(c);
	assert_null(sqi_cache_new(0));
}

/* Texts that differ only in literals share an analysis; each gets its own
 * literals, and predicates point into them. Anything else is a new key. */
static void test_cache_by_structure(void **state)
{
	struct sqi_cache *c = sqi_cache_new(16);
	const struct sqi_info *a, *b;
	const struct sqi_literal *lits;
	size_t nlits;
	char err[256], *v;

	(void)state;
	assert_int_equal(sqi_cache_get(c, "SELECT x FROM t WHERE id = 5 AND k = 'a''b'", &a, &lits, &nlits,
	                               err, sizeof(err)),
	                 0);
	assert_int_equal(nlits, 2);
	assert_int_equal(sqi_cache_get(c, "SELECT x FROM t WHERE id = 7123 AND k = 'zz'", &b, &lits, &nlits,
	                               err, sizeof(err)),
	                 0);
	assert_ptr_equal(a, b);
	assert_int_equal(nlits, 2);
	assert_int_equal(b->stmts[0].npreds, 2);
	assert_null(b->stmts[0].preds[0].value); /* the first text's values are not kept */
	v = sqi_literal_text(&lits[b->stmts[0].preds[0].literal]);
	assert_string_equal(v, "7123");
	free(v);
	v = sqi_literal_text(&lits[b->stmts[0].preds[1].literal]);
	assert_string_equal(v, "zz");
	free(v);
	assert_int_equal(sqi_cache_get(c, "SELECT x FROM t WHERE id = 5 AND k = 'a''b'", &b, &lits, &nlits,
	                               err, sizeof(err)),
	                 0);
	v = sqi_literal_text(&lits[b->stmts[0].preds[1].literal]);
	assert_string_equal(v, "a'b");
	free(v);
	/* a string continued on the next line (SQL's 'a' <newline> 'b') is one literal, 'ab'; a CR counts as
	 * a newline, as in PostgreSQL's scanner */
	static const struct {
		const char *sql, *value;
	} continued[] = {
		{ "SELECT x FROM t WHERE id = 5 AND k = 'a'\n'b'", "ab" },
		{ "SELECT x FROM t WHERE id = 5 AND k = 'a''' \r\r ''''", "a''" },
		{ "SELECT x FROM t WHERE id = 5 AND k = 'x'\n  'y'\n'z'", "xyz" },
	};
	for (size_t i = 0; i < sizeof(continued) / sizeof(*continued); i++) {
		struct sqi_info *fresh;
		assert_int_equal(sqi_cache_get(c, continued[i].sql, &b, &lits, &nlits, err, sizeof(err)), 0);
		v = sqi_literal_text(&lits[b->stmts[0].preds[1].literal]);
		assert_non_null(v);
		assert_string_equal(v, continued[i].value);
		free(v);
		assert_int_equal(sqi_analyse(continued[i].sql, &fresh, err, sizeof(err)), 0);
		assert_string_equal(fresh->stmts[0].preds[1].value, continued[i].value);
		sqi_free(fresh);
	}
	/* an escape string is the same structure, but not taken as an id as written */
	assert_int_equal(sqi_cache_get(c, "SELECT x FROM t WHERE id = 5 AND k = E'a\\'b'", &b, &lits, &nlits,
	                               err, sizeof(err)),
	                 0);
	assert_ptr_equal(a, b);
	assert_null(sqi_literal_text(&lits[b->stmts[0].preds[1].literal]));
	static const char *const others[] = {
		"SELECT x FROM t2 WHERE id = 5 AND k = 'a'",     /* another table */
		"SELECT x FROM t WHERE id = $1 AND k = 'a'",     /* a parameter */
		"SELECT x FROM t WHERE id = 5 AND k = \"a\"",    /* an identifier */
		"SELECT x FROM t WHERE id = 5 AND k = 'a' -- 1", /* a comment */
	};
	for (size_t i = 0; i < sizeof(others) / sizeof(*others); i++) {
		assert_int_equal(sqi_cache_get(c, others[i], &b, &lits, &nlits, err, sizeof(err)), 0);
		if (b == a)
			fail_msg("%s shares the analysis of another statement", others[i]);
	}
	/* the mark the key gives a literal, written out where no literal is:
	 * not the key of a statement with literals there */
	const struct sqi_info *marked;
	assert_int_equal(
	    sqi_cache_get(c, "UPDATE t SET a = 1 WHERE id = 5", &b, &lits, &nlits, err, sizeof(err)), 0);
	assert_int_not_equal(sqi_cache_get(c, "UPDATE t SET a = \x01J WHERE id = \x01J", &marked, &lits,
	                                   &nlits, err, sizeof(err)),
	                     0);
	uint64_t hits, misses, evictions;
	sqi_cache_stats(c, &hits, &misses, &evictions);
	assert_int_equal(hits, 6);
	sqi_cache_free(c);
}

/* Statements that change how the ones after them read, however spelled;
 * and the code that does (a DO block's, a routine's) marked as such. */
static void test_reading_changes(void **state)
{
	(void)state;
	static const struct {
		const char *sql;
		bool changes;
	} rows[] = {
		{ "SET standard_conforming_strings = off", true },
		{ "SET U&\"standard\\005fconforming_strings\" TO off", true },
		{ "RESET backslash_quote", true },
		{ "SET NAMES 'GBK'", true },
		{ "ALTER SYSTEM SET U&\"standard\\005fconforming_strings\" = off", true },
		{ "SELECT set_config(E'standard\\137conforming_strings', 'off', false)", true },
		{ "SELECT pg_catalog.set_config(setting_name => 'client_encoding', new_value => 'GBK', "
		  "is_local => false)",
		  true },
		{ "SELECT set_config(name, 'off', false) FROM pg_settings", true },
		{ "SELEC 1", true }, /* what does not parse may do anything */
		{ "SET work_mem = '64MB'", false },
		{ "ALTER SYSTEM SET work_mem = '64MB'", false },
		{ "SELECT set_config('app.user_id', '42', false)", false },
		{ "SELECT s.set_config('standard_conforming_strings', 'off')", false }, /* not PostgreSQL's */
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (sqr_changes_reading(rows[i].sql) != rows[i].changes)
			fail_msg("%s: %s", rows[i].sql, rows[i].changes ? "not seen" : "seen");
	/* what drivers send as they connect leaves the reading alone */
	static const struct {
		const char *sql;
		bool keeps;
	} connects[] = {
		{ "SHOW standard_conforming_strings", true },
		{ "SET standard_conforming_strings = on", true },
		{ "set client_encoding to 'UTF8'", true },
		{ "SET NAMES 'utf-8'; SHOW client_encoding", true },
		{ "SET standard_conforming_strings = off", false },
		{ "SET client_encoding TO 'SJIS'", false },
		{ "RESET client_encoding", false },
		{ "SHOW client_encoding; SELECT 1", false },
		{ "SELEC 1", false },
	};
	for (size_t i = 0; i < sizeof(connects) / sizeof(connects[0]); i++)
		if (sqr_keeps_reading(connects[i].sql) != connects[i].keeps)
			fail_msg("%s: %s", connects[i].sql, connects[i].keeps ? "refused" : "let through");

	struct sqi_info *info;
	char err[128];
	assert_int_equal(sqi_analyse("DO $$ BEGIN SET U&\"standard\\005fconforming_strings\" = off; END $$; "
	                             "DO $$ BEGIN SET work_mem = '1MB'; END $$",
	                             &info, err, sizeof(err)),
	                 0);
	assert_int_equal(info->stmts[0].hidden, SQI_HIDDEN_READING);
	assert_int_equal(info->stmts[1].hidden, 0);
	sqi_free(info);
	struct sqb_routine r;
	static const char *const routines[] = {
		"CREATE FUNCTION s.a() RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
		"PERFORM set_config('standard_conforming_strings', 'off', false); END $$",
		"CREATE FUNCTION s.b() RETURNS text LANGUAGE sql AS "
		"$$ SELECT set_config(E'backslash\\137quote', 'on', false) $$",
		"CREATE FUNCTION s.c() RETURNS void LANGUAGE sql BEGIN ATOMIC "
		"SELECT set_config('client_encoding', 'SJIS', true); END",
		"CREATE FUNCTION s.d() RETURNS void LANGUAGE plpgsql AS $$ DECLARE v text; BEGIN "
		"v := set_config('standard_conforming_strings', 'off', false); END $$",
	};
	for (size_t i = 0; i < sizeof(routines) / sizeof(routines[0]); i++) {
		assert_int_equal(sqb_routine(routines[i], &r), 0);
		if (r.hidden != SQI_HIDDEN_READING)
			fail_msg("routine %zu: hidden %u", i, r.hidden);
		sqb_routine_free(&r);
	}
	static const char *const helpers[] = {
		"CREATE FUNCTION s.e() RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
		"PERFORM set_config('app.user_id', '42', false); END $$",
		"CREATE FUNCTION s.f(n text, v text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
		"PERFORM set_config(n, v, false); END $$", /* a helper for the application's settings */
	};
	for (size_t i = 0; i < sizeof(helpers) / sizeof(helpers[0]); i++) {
		assert_int_equal(sqb_routine(helpers[i], &r), 0);
		if (r.hidden)
			fail_msg("helper %zu: hidden %u", i, r.hidden);
		sqb_routine_free(&r);
	}

	/* texts that read alike with standard_conforming_strings on and off */
	static const struct {
		const char *sql;
		bool alike;
	} texts[] = {
		{ "SELECT 'it''s', \"a\"\"b\" FROM t", true },
		{ "SELECT 'a\\b', 'c'", true },                           /* a backslash before no quote */
		{ "SELECT E'x\\'y', 'z'", true },                         /* E'' reads alike either way */
		{ "SELECT $$x\\'$$, $t$\\'$t$, 'y'", true },              /* dollar quotes too */
		{ "-- it's \\'\nSELECT 1 /* \\' /* nested */ */", true }, /* comments */
		{ "SELECT 'x\\' , 'y'", false },
		{ "UPDATE t SET a = left('x\\' /*', 0) || a, b = 'p' WHERE id = 1 --*/, 0) || a WHERE id = 1",
		  false },
		{ "SELECT 'C:\\'", false },        /* with them off, never ends */
		{ "SELECT 1E'x\\'", false },       /* E'' or not, it cannot tell: taken for a plain one */
		{ "SELECT '\xc3\xa9\\z'", false }, /* a backslash after a byte outside ASCII */
		{ "SELECT $1, a$$b FROM t WHERE c = '\\'", false },
		{ "SELECT 1$a$\\'$a$", false }, /* a dollar quote after a number: it cannot tell */
		/* in SJIS, \x81@ is one character: $$ no longer starts a quote (a reviewer's) */
		{ "SELECT (SELECT \xc4\x81@$$x$$ FROM s), email = 'p' --$$ FROM s)", false },
		{ "SELECT 'caf\xc3\xa9', '\xc3\xa9"
		  "1', 'na\xc3\xafve_x'",
		  true }, /* names' bytes are safe */
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (sqr_reads_alike(texts[i].sql, strlen(texts[i].sql), true) != texts[i].alike)
			fail_msg("%s: read %s", texts[i].sql, texts[i].alike ? "otherwise" : "alike");
	/* a body is in the server's encoding: only the backslashes count */
	const char *body = "SELECT \xc4\x81@$$x$$";
	assert_true(sqr_reads_alike(body, strlen(body), false));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_statements),
		cmocka_unit_test(test_errors_quote_nothing),
		cmocka_unit_test(test_hidden_writes_and_literals),
		cmocka_unit_test(test_do_blocks),
		cmocka_unit_test(test_calls),
		cmocka_unit_test(test_event_triggers),
		cmocka_unit_test(test_made),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_routines),
		cmocka_unit_test(test_predicates),
		cmocka_unit_test(test_uses),
		cmocka_unit_test(test_written_columns),
		cmocka_unit_test(test_written_values),
		cmocka_unit_test(test_conflict_target_and_cast_columns),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_copy_formats),
		cmocka_unit_test(test_cache_by_structure),
		cmocka_unit_test(test_reading_changes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
