/* catalog.c - see catalog.h */
#include "catalog.h"
#include "sqlinfo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A schema's name (nsp: its nspname) as a statement names it: every
 * session's temporary schema (pg_temp_N) is pg_temp. */
#define SCHEMA_AS_NAMED(nsp) "CASE WHEN " nsp " LIKE 'pg\\_temp\\_%' THEN 'pg_temp' ELSE " nsp " END"
#define NSP_NAME SCHEMA_AS_NAMED("n.nspname")
/* n is a schema of the database's users. */
#define USER_SCHEMA                                                                                          \
	"n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'"

static const char columns_sql[] =
    "SELECT " NSP_NAME
    " || '.' || c.relname, c.oid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnum, "
    "a.attnotnull, a.atthasdef OR a.attgenerated <> '' OR ty.typdefault IS NOT NULL, "
    "(SELECT max(CASE WHEN k.convalidated THEN 2 ELSE 1 END) FROM pg_constraint k " /* its guard */
    " WHERE k.conrelid = c.oid AND k.contype = 'c' AND k.conkey = ARRAY[a.attnum] "
    " AND k.conname LIKE 'custos\\_encrypted\\_%'), "
    "CASE WHEN ty.typtype <> 'd' THEN a.atttypid ELSE (" /* the type its binary format is: a domain's base */
    " WITH RECURSIVE d(t) AS (SELECT ty.typbasetype UNION ALL SELECT b.typbasetype FROM d "
    "  JOIN pg_type b ON b.oid = d.t AND b.typtype = 'd') "
    " SELECT d.t FROM d JOIN pg_type b ON b.oid = d.t AND b.typtype <> 'd') END, "
    "a.attgenerated <> '', "
    "COALESCE((SELECT co.collisdeterministic FROM pg_collation co WHERE co.oid = a.attcollation), true) "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_attribute a ON a.attrelid = c.oid JOIN pg_type ty ON ty.oid = a.atttypid "
    "WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped "
    "AND " USER_SCHEMA " ORDER BY c.oid, a.attnum";

static const char fks_sql[] =
    "SELECT fn.nspname || '.' || fc.relname, fa.attname, tn.nspname || '.' || tc.relname, ta.attname, "
    "k.confdeltype, k.confupdtype, k.oid "
    "FROM pg_constraint k "
    "JOIN pg_class fc ON fc.oid = k.conrelid JOIN pg_namespace fn ON fn.oid = fc.relnamespace "
    "JOIN pg_class tc ON tc.oid = k.confrelid JOIN pg_namespace tn ON tn.oid = tc.relnamespace "
    "CROSS JOIN LATERAL unnest(k.conkey, k.confkey) AS u(fk, pk) "
    "JOIN pg_attribute fa ON fa.attrelid = k.conrelid AND fa.attnum = u.fk "
    "JOIN pg_attribute ta ON ta.attrelid = k.confrelid AND ta.attnum = u.pk "
    "WHERE k.contype = 'f'";

/* A generated column depends on the columns its expression reads: its
 * default (pg_attrdef) on them, as PostgreSQL 15 records it, or the
 * column itself on them. */
static const char generated_sql[] =
    "WITH g(rel, col, src) AS ("
    "  SELECT ad.adrelid, ad.adnum, d.refobjsubid FROM pg_attrdef ad JOIN pg_depend d"
    "   ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass"
    "   AND d.refobjid = ad.adrelid AND d.refobjsubid > 0"
    "  UNION"
    "  SELECT d.objid, d.objsubid, d.refobjsubid FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
    "   AND d.refclassid = 'pg_class'::regclass AND d.objid = d.refobjid AND d.objsubid > 0"
    "   AND d.refobjsubid > 0) "
    "SELECT n.nspname || '.' || c.relname, ga.attname, sa.attname FROM g "
    "JOIN pg_attribute ga ON ga.attrelid = g.rel AND ga.attnum = g.col AND ga.attgenerated <> '' "
    "JOIN pg_attribute sa ON sa.attrelid = g.rel AND sa.attnum = g.src AND sa.attnum <> g.col "
    "JOIN pg_class c ON c.oid = g.rel JOIN pg_namespace n ON n.oid = c.relnamespace";

static const char inherits_sql[] =
    "SELECT i.inhrelid, i.inhparent FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "WHERE c.relkind IN ('r', 'p')";

/* The tables each view reads, through other views too (the rewrite
 * rule's dependencies). */
static const char views_sql[] =
    "WITH RECURSIVE reads(view, rel) AS ("
    "  SELECT r.ev_class, d.refobjid FROM pg_rewrite r JOIN pg_depend d ON d.objid = r.oid"
    "   AND d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass"
    "   AND d.refobjid <> r.ev_class"
    "  UNION"
    "  SELECT reads.view, d.refobjid FROM reads JOIN pg_rewrite r ON r.ev_class = reads.rel"
    "   JOIN pg_depend d ON d.objid = r.oid AND d.classid = 'pg_rewrite'::regclass"
    "   AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class) "
    "SELECT DISTINCT " SCHEMA_AS_NAMED("vn.nspname") " || '.' || v.relname, " SCHEMA_AS_NAMED(
        "tn.nspname") " || '.' || t.relname, v.oid "
                      "FROM reads JOIN pg_class v ON v.oid = reads.view JOIN pg_namespace vn ON vn.oid = "
                      "v.relnamespace "
                      "JOIN pg_class t ON t.oid = reads.rel JOIN pg_namespace tn ON tn.oid = t.relnamespace "
                      "WHERE v.relkind IN ('v', 'm') AND t.relkind IN ('r', 'p') "
                      "AND vn.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2";

/* The enabled rules of INSERT, UPDATE or DELETE (a view's SELECT rule is
 * its query) on tables and views in user schemas: a write to the table
 * runs the rule's actions instead or as well. */
#define RULES                                                                                                \
	"pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace "  \
	"WHERE r.ev_type <> '1' AND r.ev_enabled <> 'D' "                                                    \
	"AND n.nspname NOT IN ('pg_catalog', 'information_schema')"

/* The functions a catalog object's stored expressions call (classid,
 * objid: the object; fn: the function): by name, as an operator's
 * function, its commutator's or its negator's (the planner may use
 * either in its place), or the checks of a domain they cast to. */
#define FUNCTION_DEPS                                                                                        \
	"fdep(classid, objid, fn) AS ("                                                                      \
	"  SELECT d.classid, d.objid, d.refobjid FROM pg_depend d WHERE d.refclassid = 'pg_proc'::regclass"  \
	"  UNION SELECT d.classid, d.objid, o.oprcode::oid FROM pg_depend d JOIN pg_operator k"              \
	"   ON k.oid = d.refobjid JOIN pg_operator o ON o.oid IN (k.oid, k.oprcom, k.oprnegate)"             \
	"   WHERE d.refclassid = 'pg_operator'::regclass"                                                    \
	"  UNION SELECT d.classid, d.objid, c.refobjid FROM pg_depend d JOIN pg_constraint k"                \
	"   ON k.contypid = d.refobjid AND d.refclassid = 'pg_type'::regclass JOIN pg_depend c"              \
	"   ON c.classid = 'pg_constraint'::regclass AND c.objid = k.oid AND c.refclassid = "                \
	"'pg_proc'::regclass)"

/* A function f in schema fn that Custos reads: in a user schema, in a
 * language it can see (C and internal functions take a superuser to
 * make: trusted, as PostgreSQL's own operators and casts are). */
#define SEEN_FUNCTION                                                                                        \
	"fn.nspname NOT IN ('pg_catalog', 'information_schema') "                                            \
	"AND f.prolang NOT IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('c', 'internal'))"

/* The definition, for sqlbody.c, of code that runs the functions f (in
 * schema fn) that `from` (FROM ... WHERE ...) finds: a routine calling
 * each of them. */
#define FN_NAME SCHEMA_AS_NAMED("fn.nspname")
#define CALLING(from)                                                                                        \
	"'CREATE FUNCTION custos_calls() RETURNS void LANGUAGE sql BEGIN ATOMIC ' || coalesce(("             \
	"SELECT string_agg(format('SELECT %I.%I();', " FN_NAME ", f.proname), ' ') " from "), '') || ' END'"

/* An aggregate (p) runs its support functions. */
#define AGGREGATE_FUNCS                                                                                      \
	"FROM pg_aggregate a JOIN pg_proc f ON f.oid IN (a.aggtransfn, a.aggfinalfn, a.aggcombinefn, "       \
	"a.aggserialfn, a.aggdeserialfn, a.aggmtransfn, a.aggminvtransfn, a.aggmfinalfn) "                   \
	"JOIN pg_namespace fn ON fn.oid = f.pronamespace WHERE a.aggfnoid = p.oid"
#define AGGREGATE_DEF CALLING(AGGREGATE_FUNCS)

/* Not an extension's member that a superuser owns (trusted as the
 * extension is: a member its owner added to it is not). */
#define NOT_TRUSTED(catalog, object, owner)                                                                  \
	"NOT EXISTS (SELECT 1 FROM pg_depend e JOIN pg_roles o ON o.oid = " owner                            \
	" WHERE e.classid = '" catalog "'::regclass AND e.objid = " object                                   \
	" AND e.deptype = 'e' AND o.rolsuper)"
#define FUNCTION_TRUSTED NOT_TRUSTED("pg_proc", "p.oid", "p.proowner")
#define OPERATOR_TRUSTED NOT_TRUSTED("pg_operator", "p.oid", "p.oprowner")
#define CAST_TRUSTED NOT_TRUSTED("pg_proc", "f.oid", "f.proowner")

/* Functions, procedures and aggregates in user schemas, but those of
 * extensions a superuser owns. */
#define FUNCTIONS_SQL                                                                                        \
	"SELECT " NSP_NAME " || '.' || p.proname, p.oid, "                                                   \
	"CASE WHEN p.prokind = 'a' THEN " AGGREGATE_DEF " ELSE pg_get_functiondef(p.oid) END, false, "       \
	"'the routine ' || " NSP_NAME " || '.' || p.proname "                                                \
	"FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "                                      \
	"WHERE p.prokind IN ('f', 'p', 'a') AND " USER_SCHEMA " AND " FUNCTION_TRUSTED

/* The functions an operator p runs: its own, its commutator's and its
 * negator's (the planner may use either in its place). */
#define OPERATOR_FUNCS                                                                                       \
	"FROM pg_operator o JOIN pg_proc f ON f.oid = o.oprcode "                                            \
	"JOIN pg_namespace fn ON fn.oid = f.pronamespace "                                                   \
	"WHERE o.oid IN (p.oid, p.oprcom, p.oprnegate) AND " SEEN_FUNCTION
#define OPERATOR_DEF CALLING(OPERATOR_FUNCS)

/* Operators in user schemas that run such functions, but those of
 * extensions a superuser owns, named schema.op, as a statement uses them. */
#define OPERATORS_SQL                                                                                        \
	"SELECT " NSP_NAME " || '.' || p.oprname, p.oid, " OPERATOR_DEF ", false, "                          \
	"'the operator ' || " NSP_NAME " || '.' || p.oprname "                                               \
	"FROM pg_operator p JOIN pg_namespace n ON n.oid = p.oprnamespace "                                  \
	"WHERE " USER_SCHEMA " AND " OPERATOR_TRUSTED " AND EXISTS (SELECT 1 " OPERATOR_FUNCS ")"

/* Casts by such functions (but those of extensions a superuser owns),
 * named by the type they cast to (t, in schema tn) as a statement names
 * it (x::schema.type, or schema.type(x), which is a call), by the
 * domains over it, and, for an array type, by its element type (a
 * statement names schema.type[]). */
#define TYPE_NAME SCHEMA_AS_NAMED("tn.nspname") " || '.' || t.typname"
#define CAST_FUNC "FROM pg_proc f JOIN pg_namespace fn ON fn.oid = f.pronamespace WHERE f.oid = k.castfunc"
#define CAST_DEF CALLING(CAST_FUNC)
#define CASTS_SQL                                                                                            \
	"SELECT " TYPE_NAME ", k.oid, " CAST_DEF ", false, "                                                 \
	"'the cast to ' || format_type(k.casttarget, NULL) FROM pg_cast k "                                  \
	"JOIN pg_proc f ON f.oid = k.castfunc JOIN pg_namespace fn ON fn.oid = f.pronamespace "              \
	"JOIN pg_type ct ON ct.oid = k.casttarget JOIN pg_type t ON t.oid = ct.oid "                         \
	"OR (t.typtype = 'd' AND t.typbasetype = ct.oid) OR (ct.typcategory = 'A' AND t.oid = ct.typelem) "  \
	"JOIN pg_namespace tn ON tn.oid = t.typnamespace WHERE " SEEN_FUNCTION " AND " CAST_TRUSTED

/* A cast to a domain (t) runs the functions its constraints call. */
#define DOMAIN_FUNCS                                                                                         \
	"FROM pg_constraint k JOIN fdep d ON d.classid = 'pg_constraint'::regclass AND d.objid = k.oid "     \
	"JOIN pg_proc f ON f.oid = d.fn JOIN pg_namespace fn ON fn.oid = f.pronamespace "                    \
	"WHERE k.contypid = t.oid AND " SEEN_FUNCTION
#define DOMAIN_DEF CALLING(DOMAIN_FUNCS)
#define DOMAINS_SQL                                                                                          \
	"SELECT " TYPE_NAME ", t.oid, " DOMAIN_DEF ", false, 'the domain ' || " TYPE_NAME " "                \
	"FROM pg_type t JOIN pg_namespace tn ON tn.oid = t.typnamespace WHERE t.typtype = 'd' "              \
	"AND EXISTS (SELECT 1 " DOMAIN_FUNCS ")"

/* The rules, as code that nothing calls by name. */
#define RULES_SQL                                                                                            \
	"SELECT '', r.oid, pg_get_ruledef(r.oid), true, "                                                    \
	"'the rule ' || quote_ident(r.rulename) || ' on ' || " NSP_NAME " || '.' || c.relname FROM " RULES

/* The code a statement may run: what it names (functions, operators,
 * casts, domains), and the rules. */
static const char routines_sql[] = "WITH " FUNCTION_DEPS " " FUNCTIONS_SQL " UNION ALL " OPERATORS_SQL
                                   " UNION ALL " CASTS_SQL " UNION ALL " DOMAINS_SQL " UNION ALL " RULES_SQL;

/* The events of a trigger (tgtype's INSERT, UPDATE, DELETE, TRUNCATE bits)
 * as SQI_EV_* bits. */
#define TRIGGER_EVENTS                                                                                       \
	"(((t.tgtype::int & 4) <> 0)::int + 2 * ((t.tgtype::int & 16) <> 0)::int + "                         \
	"4 * ((t.tgtype::int & 8) <> 0)::int + 8 * ((t.tgtype::int & 32) <> 0)::int)"

/* SQI_EV_DDL: the event triggers' functions, which DDL runs. SQI_EV_ANY:
 * the functions of implicit and assignment casts, which any statement may
 * run without naming their type. */
#define DDL_EVENT "64"
#define ANY_EVENT "128"

/* The events on which row-level security policies run: reads and writes
 * (INSERT, UPDATE, DELETE). */
#define POLICY_EVENTS "39"

/* What a write to a table runs, and on which writes: its enabled triggers
 * (and the functions their WHEN conditions call), the functions its
 * column defaults and constraints call, those of its columns' domains
 * (INSERT, UPDATE); and what a write to one of its partitions or
 * inheriting tables runs, which a write to it may make (an UPDATE moving
 * a row deletes it from one partition and inserts it into another). Its
 * rules, which PostgreSQL applies to the table a statement names only.
 * Whether a trigger fires BEFORE, FOR EACH ROW: the row it returns is the
 * one stored. The functions its row-level security policies call, which
 * run on its reads and writes (counted whether or not row-level security
 * is on for it). What a read of a view runs: the functions its query
 * calls, those of the views it reads and the policies of the tables they
 * read (SQI_EV_READ); a materialized view's query, which runs when it is
 * refreshed, counts as run by any statement naming it. The enabled event
 * triggers' functions, which DDL runs (SQI_EV_DDL, table ""); the
 * functions of implicit and assignment casts, and of casts to json,
 * which any statement may run (to_json() runs those; SQI_EV_ANY, table
 * ""). A policy whose expression reads a table runs what reads of it run.
 * A function counts as called where an operator is used, or a domain
 * with checks (FUNCTION_DEPS). */
static const char runs_sql[] =
    "WITH RECURSIVE " FUNCTION_DEPS ", "
    "v(view, rel) AS ("
    "  SELECT c.oid, c.oid FROM pg_class c WHERE c.relkind IN ('v', 'm')"
    "  UNION SELECT v.view, d.refobjid FROM v JOIN pg_rewrite r ON r.ev_class = v.rel AND r.ev_type = '1'"
    "   JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid"
    "   AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class"
    "   JOIN pg_class k ON k.oid = d.refobjid AND k.relkind = 'v'), "
    "vfn(view, fn) AS ("
    "  SELECT v.view, d.fn FROM v JOIN pg_rewrite r ON r.ev_class = v.rel AND r.ev_type = '1'"
    "   JOIN fdep d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid"
    "  UNION SELECT v.view, d.fn FROM v JOIN pg_rewrite r ON r.ev_class = v.rel AND r.ev_type = '1'"
    "   JOIN pg_depend t ON t.classid = 'pg_rewrite'::regclass AND t.objid = r.oid"
    "   AND t.refclassid = 'pg_class'::regclass JOIN pg_policy p ON p.polrelid = t.refobjid"
    "   JOIN fdep d ON d.classid = 'pg_policy'::regclass AND d.objid = p.oid), "
    "x(rel, fn, ev, b) AS ("
    "  SELECT t.tgrelid, t.tgfoid, " TRIGGER_EVENTS ", (t.tgtype::int & 3) = 3 FROM pg_trigger t"
    "   WHERE NOT t.tgisinternal AND t.tgenabled <> 'D'"
    "  UNION SELECT t.tgrelid, d.fn, " TRIGGER_EVENTS ", false FROM pg_trigger t JOIN fdep d"
    "   ON d.classid = 'pg_trigger'::regclass AND d.objid = t.oid"
    "   WHERE NOT t.tgisinternal AND t.tgenabled <> 'D'"
    "  UNION SELECT a.adrelid, d.fn, 3, false FROM pg_attrdef a JOIN fdep d"
    "   ON d.classid = 'pg_attrdef'::regclass AND d.objid = a.oid"
    "  UNION SELECT k.conrelid, d.fn, 3, false FROM pg_constraint k JOIN fdep d"
    "   ON d.classid = 'pg_constraint'::regclass AND d.objid = k.oid WHERE k.conrelid <> 0"
    "  UNION SELECT a.attrelid, d.fn, 3, false FROM pg_constraint k JOIN fdep d"
    "   ON d.classid = 'pg_constraint'::regclass AND d.objid = k.oid"
    "   JOIN pg_type dt ON dt.oid = k.contypid"
    "   JOIN pg_attribute a ON a.atttypid IN (dt.oid, dt.typarray) AND NOT a.attisdropped"
    "  UNION SELECT p.polrelid, d.fn, " POLICY_EVENTS ", false FROM pg_policy p JOIN fdep d"
    "   ON d.classid = 'pg_policy'::regclass AND d.objid = p.oid"
    "  UNION SELECT a.attrelid, d.fn, 3, false FROM pg_type t JOIN fdep d"
    "   ON d.classid = 'pg_type'::regclass AND d.objid = t.oid"
    "   JOIN pg_attribute a ON a.atttypid = t.oid AND NOT a.attisdropped WHERE t.typtype = 'd'"
    "  UNION SELECT s.rel, x.fn, CASE WHEN s.policy THEN " POLICY_EVENTS
    "   ELSE x.ev | CASE WHEN (x.ev & 5) <> 0 THEN 2 ELSE 0 END END, x.b AND NOT s.policy FROM x JOIN ("
    "   SELECT i.inhrelid AS src, i.inhparent AS rel, false AS policy FROM pg_inherits i"
    "   UNION ALL SELECT t.refobjid, p.polrelid, true FROM pg_policy p JOIN pg_depend t"
    "   ON t.classid = 'pg_policy'::regclass AND t.objid = p.oid AND t.refclassid = 'pg_class'::regclass) s"
    "   ON s.src = x.rel AND (NOT s.policy OR (x.ev & 32) <> 0)) "
    "SELECT " NSP_NAME " || '.' || c.relname, x.fn, x.ev, false, x.b FROM x "
    "JOIN pg_class c ON c.oid = x.rel JOIN pg_namespace n ON n.oid = c.relnamespace "
    "UNION ALL SELECT " NSP_NAME " || '.' || c.relname, r.oid, "
    "CASE r.ev_type WHEN '3' THEN 1 WHEN '2' THEN 2 ELSE 4 END, true, false FROM " RULES " "
    "UNION SELECT " NSP_NAME " || '.' || c.relname, vfn.fn, 32, false, false FROM vfn "
    "JOIN pg_class c ON c.oid = vfn.view JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "UNION SELECT '', e.evtfoid, " DDL_EVENT
    ", false, false FROM pg_event_trigger e WHERE e.evtenabled <> 'D' "
    "UNION SELECT '', k.castfunc, " ANY_EVENT
    ", false, false FROM pg_cast k JOIN pg_proc f ON f.oid = k.castfunc JOIN pg_namespace fn ON fn.oid = "
    "f.pronamespace WHERE (k.castcontext IN ('i', 'a') OR k.casttarget IN ('json'::regtype, "
    "'jsonb'::regtype)) "
    "AND " SEEN_FUNCTION;

static PGresult *query(PGconn *conn, const char *sql, int ncols, char *err, size_t errlen)
{
	PGresult *r = PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != ncols) {
		snprintf(err, errlen, "reading the catalog: %s", PQerrorMessage(conn));
		PQclear(r);
		return NULL;
	}
	return r;
}

static int add_column(struct catalog *c, PGresult *r, int row)
{
	const char *table = PQgetvalue(r, row, 0);
	uint32_t oid = (uint32_t)strtoul(PQgetvalue(r, row, 1), NULL, 10);
	struct cat_table *t = c->ntables ? &c->tables[c->ntables - 1] : NULL;

	if (!t || t->oid != oid) {
		struct cat_table *v = realloc(c->tables, (c->ntables + 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		c->tables = v;
		t = &c->tables[c->ntables++];
		*t = (struct cat_table){ .name = strdup(table), .oid = oid };
		if (!t->name)
			return -ENOMEM;
	}
	struct cat_column *cols = realloc(t->cols, (t->ncols + 1) * sizeof(*cols));
	if (!cols)
		return -ENOMEM;
	t->cols = cols;
	struct cat_column *col = &t->cols[t->ncols++];
	*col = (struct cat_column){ strdup(PQgetvalue(r, row, 2)),
		                    strdup(PQgetvalue(r, row, 3)),
		                    atoi(PQgetvalue(r, row, 4)),
		                    !strcmp(PQgetvalue(r, row, 5), "t"),
		                    !strcmp(PQgetvalue(r, row, 6), "t"),
		                    (enum cat_guard)(atoi(PQgetvalue(r, row, 7)) & 3),
		                    (uint32_t)strtoul(PQgetvalue(r, row, 8), NULL, 10),
		                    !strcmp(PQgetvalue(r, row, 9), "t"),
		                    !strcmp(PQgetvalue(r, row, 10), "t") };
	return col->name && col->type ? 0 : -ENOMEM;
}

static int add_inherit(struct catalog *c, PGresult *r, int row)
{
	struct cat_inherit *v = realloc(c->inherits, (c->ninherits + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	c->inherits = v;
	c->inherits[c->ninherits++] =
	    (struct cat_inherit){ (uint32_t)strtoul(PQgetvalue(r, row, 0), NULL, 10),
		                  (uint32_t)strtoul(PQgetvalue(r, row, 1), NULL, 10) };
	return 0;
}

static int add_fk(struct catalog *c, PGresult *r, int row)
{
	struct cat_fk *v = realloc(c->fks, (c->nfks + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	c->fks = v;
	struct cat_fk *fk = &c->fks[c->nfks++];
	*fk = (struct cat_fk){ strdup(PQgetvalue(r, row, 0)),
		               strdup(PQgetvalue(r, row, 1)),
		               strdup(PQgetvalue(r, row, 2)),
		               strdup(PQgetvalue(r, row, 3)),
		               PQgetvalue(r, row, 4)[0],
		               PQgetvalue(r, row, 5)[0],
		               (uint32_t)strtoul(PQgetvalue(r, row, 6), NULL, 10) };
	return fk->from_table && fk->from_column && fk->to_table && fk->to_column ? 0 : -ENOMEM;
}

static int add_generated(struct catalog *c, PGresult *r, int row)
{
	struct cat_generated *v = realloc(c->gens, (c->ngens + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	c->gens = v;
	struct cat_generated *g = &c->gens[c->ngens++];
	*g = (struct cat_generated){ strdup(PQgetvalue(r, row, 0)), strdup(PQgetvalue(r, row, 1)),
		                     strdup(PQgetvalue(r, row, 2)) };
	return g->table && g->column && g->from ? 0 : -ENOMEM;
}

static int add_view(struct catalog *c, PGresult *r, int row)
{
	struct cat_view_dep *v = realloc(c->views, (c->nviews + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	c->views = v;
	struct cat_view_dep *d = &c->views[c->nviews++];
	*d = (struct cat_view_dep){ strdup(PQgetvalue(r, row, 0)), strdup(PQgetvalue(r, row, 1)),
		                    (uint32_t)strtoul(PQgetvalue(r, row, 2), NULL, 10) };
	return d->view && d->table ? 0 : -ENOMEM;
}

static int add_routine(struct catalog *c, PGresult *r, int row)
{
	struct cat_routine *v = realloc(c->routines, (c->nroutines + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	c->routines = v;
	struct cat_routine *f = &c->routines[c->nroutines++];
	*f = (struct cat_routine){ strdup(PQgetvalue(r, row, 0)),
		                   (uint32_t)strtoul(PQgetvalue(r, row, 1), NULL, 10),
		                   strdup(PQgetvalue(r, row, 2)), *PQgetvalue(r, row, 3) == 't',
		                   strdup(PQgetvalue(r, row, 4)) };
	return f->name && f->def && f->label ? 0 : -ENOMEM;
}

static int add_runs(struct catalog *c, PGresult *r, int row)
{
	struct cat_runs *v = realloc(c->runs, (c->nruns + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	c->runs = v;
	struct cat_runs *x = &c->runs[c->nruns++];
	*x = (struct cat_runs){ strdup(PQgetvalue(r, row, 0)),
		                (uint32_t)strtoul(PQgetvalue(r, row, 1), NULL, 10),
		                (unsigned)atoi(PQgetvalue(r, row, 2)) &
		                    (SQI_EV_ALL | SQI_EV_READ | SQI_EV_DDL | SQI_EV_ANY),
		                *PQgetvalue(r, row, 3) == 't', *PQgetvalue(r, row, 4) == 't' };
	return x->table ? 0 : -ENOMEM;
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(struct cat_table *const *)a)->name, (*(struct cat_table *const *)b)->name);
}

static int by_oid(const void *a, const void *b)
{
	uint32_t x = (*(struct cat_table *const *)a)->oid, y = (*(struct cat_table *const *)b)->oid;
	return (x > y) - (x < y);
}

/* The tables sorted by name and by OID: a write's plan looks tables up
 * for every foreign key it may carry, and a catalog may hold thousands. */
static int index_tables(struct catalog *c)
{
	if (!(c->by_name = calloc(c->ntables + 1, sizeof(*c->by_name))) ||
	    !(c->by_oid = calloc(c->ntables + 1, sizeof(*c->by_oid))))
		return -ENOMEM;
	for (size_t i = 0; i < c->ntables; i++)
		c->by_name[i] = c->by_oid[i] = &c->tables[i];
	qsort(c->by_name, c->ntables, sizeof(*c->by_name), by_name);
	qsort(c->by_oid, c->ntables, sizeof(*c->by_oid), by_oid);
	return 0;
}

int cat_load(PGconn *conn, struct catalog **ret, char *err, size_t errlen)
{
	struct catalog *c = calloc(1, sizeof(*c));
	static const struct {
		const char *sql;
		int ncols;
		int (*add)(struct catalog *c, PGresult *r, int row);
	} parts[] = { { columns_sql, 11, add_column }, { inherits_sql, 2, add_inherit },
		      { fks_sql, 7, add_fk },          { generated_sql, 3, add_generated },
		      { views_sql, 3, add_view },      { routines_sql, 5, add_routine },
		      { runs_sql, 5, add_runs } };
	int r = c ? 0 : -ENOMEM;

	for (size_t p = 0; !r && p < ARRAY_SIZE(parts); p++) {
		PGresult *res = query(conn, parts[p].sql, parts[p].ncols, err, errlen);
		r = res ? 0 : -EIO;
		for (int i = 0; !r && i < PQntuples(res); i++)
			r = parts[p].add(c, res, i);
		PQclear(res);
	}
	if (!r)
		r = index_tables(c);
	if (r) {
		if (r == -ENOMEM)
			snprintf(err, errlen, "out of memory reading the catalog");
		cat_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

void cat_free(struct catalog *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->ntables; i++) {
		for (size_t j = 0; j < c->tables[i].ncols; j++) {
			free(c->tables[i].cols[j].name);
			free(c->tables[i].cols[j].type);
		}
		free(c->tables[i].cols);
		free(c->tables[i].name);
	}
	for (size_t i = 0; i < c->nfks; i++) {
		free(c->fks[i].from_table);
		free(c->fks[i].from_column);
		free(c->fks[i].to_table);
		free(c->fks[i].to_column);
	}
	for (size_t i = 0; i < c->ngens; i++) {
		free(c->gens[i].table);
		free(c->gens[i].column);
		free(c->gens[i].from);
	}
	for (size_t i = 0; i < c->nviews; i++) {
		free(c->views[i].view);
		free(c->views[i].table);
	}
	for (size_t i = 0; i < c->nroutines; i++) {
		free(c->routines[i].name);
		free(c->routines[i].def);
		free(c->routines[i].label);
	}
	for (size_t i = 0; i < c->nruns; i++)
		free(c->runs[i].table);
	free(c->tables);
	free(c->inherits);
	free(c->fks);
	free(c->gens);
	free(c->views);
	free(c->routines);
	free(c->runs);
	free(c->by_name);
	free(c->by_oid);
	free(c);
}

const struct cat_table *cat_table(const struct catalog *c, const char *name)
{
	struct cat_table key = { .name = (char *)name }, *k = &key;
	struct cat_table **hit = bsearch(&k, c->by_name, c->ntables, sizeof(*c->by_name), by_name);

	return hit ? *hit : NULL;
}

const struct cat_table *cat_table_by_oid(const struct catalog *c, uint32_t oid)
{
	struct cat_table key = { .oid = oid }, *k = &key;
	struct cat_table **hit = bsearch(&k, c->by_oid, c->ntables, sizeof(*c->by_oid), by_oid);

	return hit ? *hit : NULL;
}

const struct cat_column *cat_column(const struct cat_table *t, const char *name)
{
	for (size_t i = 0; t && i < t->ncols; i++)
		if (!strcmp(t->cols[i].name, name))
			return &t->cols[i];
	return NULL;
}
