/* sqlinfo.c - see sqlinfo.h. libpg_query parses the whole string into a
 * JSON tree (jansson reads it); each statement is then normalised and
 * fingerprinted on its own text, so its $n count from 1. */
#define _GNU_SOURCE
#include "sqlinfo.h"
#include "sqlinfo_int.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *node;
	enum sqi_kind kind;
} kinds[] = {
	{ "SelectStmt", SQI_SELECT },
	{ "InsertStmt", SQI_INSERT },
	{ "UpdateStmt", SQI_UPDATE },
	{ "DeleteStmt", SQI_DELETE },
	{ "CopyStmt", SQI_COPY },
	{ "MergeStmt", SQI_UPDATE }, /* it may insert, update and delete: a write of its target */
};

static const char *const kind_names[] = { "select", "insert", "update", "delete", "copy", "other" };

const char *sqi_kind_name(enum sqi_kind k)
{
	return (unsigned)k < ARRAY_SIZE(kind_names) ? kind_names[k] : "?";
}

int sqi_add_named(struct sqi_stmt *st, const char *schema, const char *name, const char *an, bool write)
{
	for (size_t i = 0; i < st->ntables; i++) /* once per table; a write wins */
		if (!strcmp(st->tables[i].name, name) &&
		    (schema ? st->tables[i].schema && !strcmp(st->tables[i].schema, schema)
		            : !st->tables[i].schema)) {
			st->tables[i].write |= write;
			return 0;
		}
	if (st->ntables == SQI_MAX_TABLES)
		return -E2BIG; /* refused, not truncated: the proxy fails closed on it */
	struct sqi_table *v = realloc(st->tables, (st->ntables + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	st->tables = v;
	struct sqi_table *t = &v[st->ntables];
	*t =
	    (struct sqi_table){ schema ? strdup(schema) : NULL, strdup(name), an ? strdup(an) : NULL, write };
	if (!t->name || (schema && !t->schema) || (an && !t->alias))
		return free(t->schema), free(t->name), free(t->alias), -ENOMEM;
	st->ntables++;
	return 0;
}

void sqi_names_free(struct sqi_name *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(names[i].schema);
		free(names[i].name);
	}
	free(names);
}

static bool same(const char *a, const char *b)
{
	return a && b ? !strcmp(a, b) : a == b;
}

int sqi_name_add(struct sqi_name **names, size_t *n, const char *schema, const char *name)
{
	for (size_t i = 0; i < *n; i++) /* once per name */
		if (same((*names)[i].name, name) && same((*names)[i].schema, schema))
			return 0;
	if (*n == SQI_MAX_CALLS)
		return -E2BIG;
	struct sqi_name *v = realloc(*names, (*n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	*names = v;
	struct sqi_name *c = &v[*n];
	*c = (struct sqi_name){ schema ? strdup(schema) : NULL, name ? strdup(name) : NULL };
	if ((name && !c->name) || (schema && !c->schema))
		return free(c->schema), free(c->name), -ENOMEM;
	(*n)++;
	return 0;
}

/* A list of names ([schema.]name, or catalog.schema.name): its last two. */
static void last_names(json_t *names, const char **schema, const char **name)
{
	size_t n = json_array_size(names);

	*name = json_string_value(
	    json_object_get(json_object_get(json_array_get(names, n - 1), "String"), "sval"));
	*schema = n >= 2 ? json_string_value(json_object_get(
	                       json_object_get(json_array_get(names, n - 2), "String"), "sval"))
	                 : NULL;
}

void sqi_call_name(json_t *call, const char **schema, const char **name)
{
	last_names(json_object_get(call, "funcname"), schema, name);
}

/* The nodes naming a routine a statement runs, and the field (in field
 * within: a list of names) that names it: a call's function; an
 * operator's (the catalog names an operator's function [schema.]op): an
 * expression's, x op ANY (SELECT ...)'s, ORDER BY ... USING op's; a
 * cast's (named by the type cast to). implied_operators() adds those a
 * node uses without naming them. */
static const struct {
	const char *node, *field, *within;
} callers[] = { { "FuncCall", "funcname", NULL }, { "funccall", "funcname", NULL },
	        { "A_Expr", "name", NULL },       { "SubLink", "operName", NULL },
	        { "SortBy", "useOp", NULL },      { "TypeCast", "names", "typeName" } };

/* The operators a node uses without naming them: BETWEEN's comparisons,
 * x IN (SELECT ...)'s and CASE x WHEN's =, JOIN ... USING's and NATURAL
 * JOIN's =. */
static int implied_operators(struct sqi_stmt *st, const char *key, json_t *v)
{
	static const char *const eq[] = { "=", NULL }, *const range[] = { ">=", "<=", ">", "<", NULL };
	const char *kind = json_string_value(json_object_get(v, "kind"));
	const char *sub = json_string_value(json_object_get(v, "subLinkType"));
	const char *const *ops = NULL;
	int err = 0;

	if (!strcmp(key, "A_Expr") && kind && strstr(kind, "BETWEEN"))
		ops = range;
	else if (!strcmp(key, "SubLink") && sub && !strcmp(sub, "ANY_SUBLINK") &&
	         !json_array_size(json_object_get(v, "operName")))
		ops = eq;
	else if ((!strcmp(key, "CaseExpr") && json_object_get(v, "arg")) ||
	         (!strcmp(key, "JoinExpr") &&
	          (json_object_get(v, "usingClause") || json_is_true(json_object_get(v, "isNatural")))))
		ops = eq;
	for (; !err && ops && *ops; ops++)
		err = sqi_name_add(&st->calls, &st->ncalls, NULL, *ops);
	return err;
}

static int add_call(struct sqi_stmt *st, const char *key, json_t *v)
{
	const char *schema, *name;
	int err = implied_operators(st, key, v);

	if (err)
		return err;
	for (size_t i = 0; i < ARRAY_SIZE(callers); i++)
		if (!strcmp(key, callers[i].node)) {
			json_t *in = callers[i].within ? json_object_get(v, callers[i].within) : v;
			last_names(json_object_get(in, callers[i].field), &schema, &name);
			st->calls_by_name |= name && !strcmp(callers[i].field, "funcname");
			return name ? sqi_name_add(&st->calls, &st->ncalls, schema, name) : 0;
		}
	return 0;
}

static int add_table(struct sqi_stmt *st, json_t *rv, bool write)
{
	const char *schema = json_string_value(json_object_get(rv, "schemaname"));
	const char *name = json_string_value(json_object_get(rv, "relname"));
	const char *an = json_string_value(json_object_get(json_object_get(rv, "alias"), "aliasname"));

	return name ? sqi_add_named(st, schema, name, an, write) : 0;
}

static const struct {
	const char *node;
	enum sqi_kind kind;
} writers[] = { { "InsertStmt", SQI_INSERT },
	        { "UpdateStmt", SQI_UPDATE },
	        { "DeleteStmt", SQI_DELETE },
	        { "MergeStmt", SQI_UPDATE } };

/* The kinds of write a DML node makes (SQI_EV_*): an upsert updates too. */
static unsigned write_events(const char *key, json_t *v)
{
	const char *action =
	    json_string_value(json_object_get(json_object_get(v, "onConflictClause"), "action"));

	if (!strcmp(key, "InsertStmt"))
		return SQI_EV_INSERT | (action && !strcmp(action, "ONCONFLICT_UPDATE") ? SQI_EV_UPDATE : 0);
	return !strcmp(key, "UpdateStmt")   ? SQI_EV_UPDATE
	       : !strcmp(key, "DeleteStmt") ? SQI_EV_DELETE
	       : !strcmp(key, "MergeStmt")  ? SQI_EV_INSERT | SQI_EV_UPDATE | SQI_EV_DELETE
	                                    : 0;
}

/* A DML node nested anywhere (a writing CTE, EXPLAIN ANALYZE, PREPARE,
 * COPY (query) TO): its target is written, and the statement counts as
 * that write too. */
static int nested_write(struct sqi_stmt *st, const char *key, json_t *v)
{
	for (size_t i = 0; i < ARRAY_SIZE(writers); i++)
		if (!strcmp(key, writers[i].node)) {
			json_t *rel = json_object_get(v, "relation");
			if (st->kind == SQI_SELECT || st->kind == SQI_OTHER)
				st->kind = writers[i].kind;
			st->events |= write_events(key, v);
			/* (a writing CTE beside a write of the same table: not followed) */
			st->write_all = st->nested_writes = true;
			return rel ? add_table(st, rel, true) : 0;
		}
	return 0;
}

/* DROP TABLE, VIEW, ... names its relations as lists of names, not
 * RangeVars: they are its tables (not written: like TRUNCATE's, no value
 * goes into them). */
static int dropped(struct sqi_stmt *st, json_t *drop)
{
	static const char *const relations[] = { "OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW",
		                                 "OBJECT_FOREIGN_TABLE" };
	const char *type = json_string_value(json_object_get(drop, "removeType"));
	json_t *o;
	size_t i;
	int err = 0;

	for (i = 0; type && i < ARRAY_SIZE(relations) && strcmp(type, relations[i]); i++)
		;
	if (!type || i == ARRAY_SIZE(relations))
		return 0;
	json_array_foreach(json_object_get(drop, "objects"), i, o)
	{
		json_t *names = json_object_get(json_object_get(o, "List"), "items");
		size_t n = json_array_size(names);
		const char *rel = json_string_value(
		    json_object_get(json_object_get(json_array_get(names, n - 1), "String"), "sval"));
		const char *schema =
		    n >= 2 ? json_string_value(json_object_get(
		                 json_object_get(json_array_get(names, n - 2), "String"), "sval"))
		           : NULL;
		json_t *rv = rel ? json_pack("{s:s}", "relname", rel) : NULL;
		if (rv && schema)
			json_object_set_new(rv, "schemaname", json_string(schema));
		err = !rel ? 0 : rv ? add_table(st, rv, false) : -ENOMEM;
		json_decref(rv);
		if (err)
			return err;
	}
	return 0;
}

/* Collects the tables under node: RangeVars in lists ({"RangeVar": ...})
 * and bare ones in fields (relation, rel, into); and the routines called
 * (functions, operators, casts). */
static int walk(struct sqi_stmt *st, json_t *node, int depth)
{
	const char *key;
	json_t *v;
	size_t i;
	int err = 0;

	if (depth > 1000)
		return -E2BIG;
	if (json_is_array(node)) {
		json_array_foreach(node, i, v)
		{
			if ((err = walk(st, v, depth + 1)))
				return err;
		}
		return 0;
	}
	json_object_foreach(node, key, v)
	{
		if (!strcmp(key, "RangeVar") || (json_is_object(v) && json_object_get(v, "relname")))
			err = add_table(st, v, false);
		else if (json_is_object(v) || json_is_array(v))
			err = add_call(st, key, v) ?: nested_write(st, key, v);
		if (!err && (json_is_object(v) || json_is_array(v)))
			err = walk(st, v, depth + 1);
		if (err)
			return err;
	}
	return 0;
}

/* Drops the names of WITH queries: they are not tables. */
static void drop_ctes(struct sqi_stmt *st, json_t *node, int depth)
{
	const char *key;
	json_t *v;
	size_t i;

	if (depth > 1000)
		return;
	if (json_is_array(node)) {
		json_array_foreach(node, i, v) drop_ctes(st, v, depth + 1);
		return;
	}
	json_object_foreach(node, key, v)
	{
		const char *name = json_string_value(json_object_get(v, "ctename"));
		if (!strcmp(key, "CommonTableExpr") && name)
			for (size_t t = 0; t < st->ntables; t++)
				if (!st->tables[t].schema && !strcmp(st->tables[t].name, name) &&
				    !st->tables[t].write) {
					free(st->tables[t].name);
					free(st->tables[t].alias);
					st->tables[t--] = st->tables[--st->ntables];
				}
		if (json_is_object(v) || json_is_array(v))
			drop_ctes(st, v, depth + 1);
	}
}

const char *sqi_col_name(json_t *columnref, size_t *ret_nfields, const char **ret_qual)
{
	json_t *fields = json_object_get(columnref, "fields");
	size_t nf = json_array_size(fields);

	*ret_nfields = nf;
	*ret_qual = nf >= 2 ? json_string_value(json_object_get(
	                          json_object_get(json_array_get(fields, nf - 2), "String"), "sval"))
	                    : NULL;
	return nf ? json_string_value(
	                json_object_get(json_object_get(json_array_get(fields, nf - 1), "String"), "sval"))
	          : NULL;
}

/* --- predicates ---------------------------------------------------------- */

json_t *sqi_untyped(json_t *v)
{
	json_t *cast;

	while ((cast = json_object_get(v, "TypeCast")))
		v = json_object_get(cast, "arg");
	return v;
}

static int add_pred(struct sqi_stmt *st, const char *qual, const char *column, int col_location, json_t *v,
                    bool insert, bool eq_left)
{
	bool bare = sqi_untyped(v) == v;
	json_t *c = json_object_get(v = sqi_untyped(v), "A_Const"), *p = json_object_get(v, "ParamRef");
	char num[32];
	const char *value = NULL;

	if (!c && !p)
		return 0; /* an expression: no value to tie the column to */
	if (c && json_object_get(c, "ival")) {
		snprintf(num, sizeof(num), "%lld",
		         (long long)json_integer_value(json_object_get(json_object_get(c, "ival"), "ival")));
		value = num;
	} else if (c) {
		value = json_string_value(json_object_get(json_object_get(c, "sval"), "sval"));
		if (!value)
			value = json_string_value(json_object_get(json_object_get(c, "fval"), "fval"));
		if (!value)
			return 0; /* NULL, booleans, bit strings: nobody's id */
	}
	if (st->npreds == SQI_MAX_PREDS)
		return 0; /* beyond: rows are attributed from results only */
	struct sqi_pred *v2 = realloc(st->preds, (st->npreds + 1) * sizeof(*v2));
	if (!v2)
		return -ENOMEM;
	st->preds = v2;
	struct sqi_pred *x = &v2[st->npreds];
	*x = (struct sqi_pred){ qual ? strdup(qual) : NULL,
		                strdup(column),
		                p ? (int)json_integer_value(json_object_get(p, "number")) : 0,
		                value ? strdup(value) : NULL,
		                insert,
		                (int)json_integer_value(json_object_get(c ? c : p, "location")),
		                -1,
		                eq_left && bare,
		                { -1, -1 },
		                col_location,
		                bare,
		                false };
	if ((qual && !x->qual) || !x->column || (value && !x->value))
		return free(x->qual), free(x->column), free(x->value), -ENOMEM;
	st->npreds++;
	return 0;
}

/* `col = v`, `v = col`, `col IN (...)` */
static int pred_expr(struct sqi_stmt *st, json_t *e)
{
	const char *kind = json_string_value(json_object_get(e, "kind"));
	const char *op = json_string_value(json_object_get(
	    json_object_get(json_array_get(json_object_get(e, "name"), 0), "String"), "sval"));
	json_t *lexpr = json_object_get(e, "lexpr"), *l = json_object_get(sqi_untyped(lexpr), "ColumnRef");
	json_t *r = json_object_get(e, "rexpr");
	bool in = kind && !strcmp(kind, "AEXPR_IN");

	if (!op || strcmp(op, "=") || !kind || (!in && strcmp(kind, "AEXPR_OP")))
		return 0;
	bool left = true, cast = sqi_untyped(lexpr) != lexpr;
	if (!l && !in) { /* v = col */
		left = false;
		l = json_object_get(sqi_untyped(r), "ColumnRef");
		cast = sqi_untyped(r) != r;
		r = lexpr;
	}
	size_t nf, before = st->npreds, i;
	const char *qual, *col = sqi_col_name(l, &nf, &qual);
	int at = (int)json_integer_value(json_object_get(l, "location"));
	if (!col || nf > 3)
		return 0;
	json_t *items = json_object_get(json_object_get(r, "List"), "items"), *v;
	int err = in ? 0 : add_pred(st, qual, col, at, r, false, left);
	if (in)
		json_array_foreach(items, i, v) if (!err) err = add_pred(st, qual, col, at, v, false, false);
	for (i = before; i < st->npreds; i++) { /* `id::int = '7'` matches a text id 007 too */
		st->preds[i].col_cast = cast;
		st->preds[i].plain &= !cast;
	}
	return err;
}

/* The top-level AND of a WHERE clause. */
static int preds_where(struct sqi_stmt *st, json_t *w, int depth)
{
	json_t *b = json_object_get(w, "BoolExpr"), *a, *v;
	size_t i;
	int err = 0;

	if (depth > 100)
		return 0;
	if (b) {
		const char *op = json_string_value(json_object_get(b, "boolop"));
		if (!op || strcmp(op, "AND_EXPR"))
			return 0;
		json_array_foreach(json_object_get(b, "args"), i, v) if (!err) err =
		    preds_where(st, v, depth + 1);
		return err;
	}
	return (a = json_object_get(w, "A_Expr")) ? pred_expr(st, a) : 0;
}

static int preds_insert(struct sqi_stmt *st, json_t *ins)
{
	json_t *cols = json_object_get(ins, "cols"), *rows, *row;
	size_t i, j;
	int err = 0;

	rows =
	    json_object_get(json_object_get(json_object_get(ins, "selectStmt"), "SelectStmt"), "valuesLists");
	json_array_foreach(rows, i, row)
	{
		json_t *items = json_object_get(json_object_get(row, "List"), "items"), *v;
		json_array_foreach(items, j, v)
		{
			const char *col = json_string_value(
			    json_object_get(json_object_get(json_array_get(cols, j), "ResTarget"), "name"));
			if (col && !err)
				err = add_pred(st, NULL, col, -1, v, true, false);
		}
	}
	return err;
}

static int add_write_col(struct sqi_stmt *st, const char *name)
{
	char **v = realloc(st->write_cols, (st->nwrite_cols + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	st->write_cols = v;
	if (!(v[st->nwrite_cols] = strdup(name)))
		return -ENOMEM;
	st->nwrite_cols++;
	return 0;
}

/* The columns a top-level INSERT, UPDATE or COPY FROM writes. */
static int written_columns(struct sqi_stmt *st, const char *node, json_t *body)
{
	json_t *list = NULL, *v;
	size_t i;
	int err = 0;

	if (!strcmp(node, "InsertStmt"))
		list = json_object_get(body, "cols");
	else if (!strcmp(node, "UpdateStmt"))
		list = json_object_get(body, "targetList");
	else if (!strcmp(node, "CopyStmt") && json_is_true(json_object_get(body, "is_from")))
		list = json_object_get(body, "attlist");
	else
		return 0;
	json_array_foreach(list, i, v)
	{
		const char *name =
		    json_string_value(json_object_get(json_object_get(v, "ResTarget"), "name"));
		if (!name)
			name = json_string_value(json_object_get(json_object_get(v, "String"), "sval"));
		if (!name || err)
			return err ? err : -EINVAL;
		err = add_write_col(st, name);
	}
	st->write_all |= !json_array_size(list);
	return err;
}

/* --- columns used in expressions ------------------------------------------------ */

/* Where a bare column is not an expression of it: an output column of
 * the statement itself (top: not inside a subquery, a CTE or a set
 * operation's branch, whose outputs are compared or renamed), a NULL
 * test's argument. (parent: the node's key; key: its field) */
static bool bare_slot(const char *parent, const char *key, bool top)
{
	if (!parent)
		return false;
	return (top && !strcmp(parent, "ResTarget") && !strcmp(key, "val")) ||
	       (!strcmp(parent, "NullTest") && !strcmp(key, "arg"));
}

static bool is_pred_column(const struct sqi_stmt *st, int location)
{
	for (size_t i = 0; i < st->npreds; i++)
		if (st->preds[i].col_location == location)
			return true;
	return false;
}

static int add_use(struct sqi_stmt *st, json_t *ref)
{
	size_t nf;
	const char *qual, *name = sqi_col_name(ref, &nf, &qual);

	if (!name || is_pred_column(st, (int)json_integer_value(json_object_get(ref, "location"))))
		return 0; /* `*`, or a predicate the proxy looks at on its own */
	for (size_t i = 0; i < st->nuses; i++)
		if (!strcmp(st->uses[i].column, name) && !qual == !st->uses[i].qual &&
		    (!qual || !strcmp(qual, st->uses[i].qual)))
			return 0;
	if (st->nuses == SQI_MAX_USES)
		return -E2BIG;
	struct sqi_use *v = realloc(st->uses, (st->nuses + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	st->uses = v;
	v[st->nuses] = (struct sqi_use){ qual ? strdup(qual) : NULL, strdup(name) };
	if ((qual && !v[st->nuses].qual) || !v[st->nuses].column)
		return free(v[st->nuses].qual), free(v[st->nuses].column), -ENOMEM;
	st->nuses++;
	return 0;
}

/* Whether a SELECT under key (its field) is nested: a subquery, a CTE, a
 * set operation's branch. A statement's query (a view's, a cursor's,
 * COPY's, EXPLAIN's) is not: its outputs are the statement's. */
static bool nested_select(const char *key, const char *k)
{
	return !strcmp(k, "larg") || !strcmp(k, "rarg") || (!strcmp(k, "SelectStmt") && strcmp(key, "query"));
}

/* The columns used anywhere in an expression under node (key: its key in
 * the tree; bare: node is a slot where a bare column is no expression;
 * top: node is outside any nested SELECT). */
static int uses_walk(struct sqi_stmt *st, json_t *node, const char *key, bool bare, bool top, int depth)
{
	const char *k;
	json_t *v;
	size_t i;
	int err = 0;

	if (depth > 1000)
		return -E2BIG;
	if (json_is_array(node)) {
		json_array_foreach(node, i, v) if (!err) err = uses_walk(st, v, key, bare, top, depth + 1);
		return err;
	}
	json_object_foreach(node, k, v)
	{
		if (!strcmp(k, "ColumnRef"))
			err = bare ? 0 : add_use(st, v);
		else if (json_is_object(v) || json_is_array(v))
			err = uses_walk(st, v, k, bare_slot(key, k, top), top && !nested_select(key, k),
			                depth + 1);
		if (err)
			return err;
	}
	return 0;
}

static int predicates(struct sqi_stmt *st, const char *node, json_t *body)
{
	if (!strcmp(node, "InsertStmt"))
		return preds_insert(st, body);
	json_t *w = json_object_get(body, "whereClause");
	return w ? preds_where(st, w, 0) : 0;
}

/* The kinds of write the statement makes: its own and its nested
 * writes'; TRUNCATE (CASCADE empties the tables that reference them too);
 * COPY FROM inserts; a DO block, or another statement that writes, may
 * make any. */
static unsigned events_of(const struct sqi_stmt *st, const char *node, json_t *body, size_t written)
{
	unsigned ev = st->events | write_events(node, body);
	const char *behavior = json_string_value(json_object_get(body, "behavior"));

	if (!strcmp(node, "TruncateStmt"))
		ev |= SQI_EV_TRUNCATE |
		      (behavior && !strcmp(behavior, "DROP_CASCADE") ? SQI_EV_TRUNCATE_CASCADE : 0);
	else if (!strcmp(node, "CopyStmt") && json_is_true(json_object_get(body, "is_from")))
		ev |= SQI_EV_INSERT;
	else if (written && !ev)
		ev = SQI_EV_ALL;
	return !strcmp(node, "DoStmt") ? SQI_EV_ALL : ev;
}

int sqi_classify(struct sqi_stmt *st, json_t *stmt, char node[64], int depth)
{
	const char *key;
	json_t *body;

	st->kind = SQI_OTHER;
	json_object_foreach(stmt, key, body)
	{
		for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
			if (!strcmp(key, kinds[i].node))
				st->kind = kinds[i].kind;
		json_t *rel = json_object_get(body, "relation");
		bool copy_from = st->kind == SQI_COPY && json_is_true(json_object_get(body, "is_from"));
		bool dml = st->kind == SQI_INSERT || st->kind == SQI_UPDATE || st->kind == SQI_DELETE;
		int err = rel && st->kind != SQI_OTHER ? add_table(st, rel, dml || copy_from) : 0;
		if (!err)
			err = walk(st, body, 0);
		if (!err && !strcmp(key, "DropStmt"))
			err = dropped(st, body);
		if (!err && !strcmp(key, "DoStmt"))
			err = sqi_do_block(st, body, depth);
		if (!err)
			err = sqi_made(st, key, body);
		if (!err)
			drop_ctes(st, body, 0);
		if (!err && st->kind != SQI_OTHER && st->kind != SQI_COPY)
			err = predicates(st, key, body);
		if (!err)
			err = uses_walk(st, body, key, false, true, 0);
		if (!err)
			err = written_columns(st, key, body);
		if (!err)
			err = sqi_writes(st, key, body);
		size_t written = 0; /* a write not followed by column: nested, or beside another */
		for (size_t t = 0; t < st->ntables; t++)
			written += st->tables[t].write;
		st->write_all |= written > 1 || (written && !st->nwrite_cols && strcmp(key, "DeleteStmt"));
		st->returning = json_array_size(json_object_get(body, "returningList")) > 0;
		st->events = events_of(st, key, body, written);
		snprintf(node, 64, "%s", key);
		return err;
	}
	return 0;
}

/* Removes comments (-- to the end of the line, nested slash-star ones)
 * outside quoted identifiers and strings: the parser keeps them in the
 * normalised text, and they may hold anything. */
static void strip_comments(char *s)
{
	char *out = s, quote = 0;

	for (char *p = s; *p;) {
		if (quote) {
			if (*p == quote)
				quote = 0;
			*out++ = *p++;
		} else if (*p == '"' || *p == '\'') {
			quote = *p;
			*out++ = *p++;
		} else if (p[0] == '-' && p[1] == '-') {
			p += strcspn(p, "\n");
		} else if (p[0] == '/' && p[1] == '*') {
			int depth = 0;
			do {
				if (p[0] == '/' && p[1] == '*')
					depth++, p += 2;
				else if (p[0] == '*' && p[1] == '/')
					depth--, p += 2;
				else
					p++;
			} while (*p && depth > 0);
			*out++ = ' ';
		} else {
			*out++ = *p++;
		}
	}
	*out = 0;
}

/* Fingerprints one statement's own text and gives the text to log: a
 * query's with its constants as $n and without comments; for COPY and
 * the other statements (whose literals the normaliser leaves: file
 * names, COMMENT ON, NOTIFY payloads) only their kind of node. */
static int describe(struct sqi_stmt *st, const char *text, const char *node)
{
	PgQueryFingerprintResult f = pg_query_fingerprint(text);
	int err = f.error || !f.fingerprint_str ? -EINVAL : 0;

	if (!err)
		snprintf(st->fingerprint, sizeof(st->fingerprint), "%s", f.fingerprint_str);
	pg_query_free_fingerprint_result(f);
	if (err || st->kind == SQI_COPY || st->kind == SQI_OTHER) {
		if (!err && !(st->normalized = strdup(node)))
			err = -ENOMEM;
		return err;
	}
	PgQueryNormalizeResult n = pg_query_normalize(text);
	if (n.error)
		err = -EINVAL;
	else if (!(st->normalized = strdup(n.normalized_query)))
		err = -ENOMEM;
	else
		strip_comments(st->normalized);
	pg_query_free_normalize_result(n);
	return err;
}

static int one_statement(struct sqi_info *info, const char *sql, size_t sqllen, json_t *raw)
{
	json_int_t loc = json_integer_value(json_object_get(raw, "stmt_location"));
	json_int_t len = json_integer_value(json_object_get(raw, "stmt_len"));
	struct sqi_stmt *st = &info->stmts[info->n];

	memset(st, 0, sizeof(*st));
	if (loc < 0 || (size_t)loc > sqllen || len < 0 || (size_t)len > sqllen - (size_t)loc)
		return -EINVAL;
	if (len == 0)
		len = (json_int_t)(sqllen - (size_t)loc);
	char *text = strndup(sql + loc, (size_t)len);
	if (!text)
		return -ENOMEM;
	info->n++;
	char node[64] = "";
	int err = sqi_classify(st, json_object_get(raw, "stmt"), node, 0);
	/* a DO block's body, a COPY's options (FORMAT 'csv'): literals the analysis reads */
	info->per_text |= !strcmp(node, "DoStmt") || !strcmp(node, "CopyStmt");
	if (!err)
		err = describe(st, text, node);
	free(text);
	return err;
}

int sqi_analyse(const char *sql, struct sqi_info **ret, char *err, size_t errlen)
{
	size_t sqllen = strlen(sql);
	struct sqi_info *info;

	if (sqllen > SQI_MAX_SQL) {
		snprintf(err, errlen, "the statement is longer than %u bytes", SQI_MAX_SQL);
		return -E2BIG;
	}
	PgQueryParseResult p = pg_query_parse(sql);
	if (p.error) {
		snprintf(err, errlen, "the statement does not parse (at character %d)", p.error->cursorpos);
		pg_query_free_parse_result(p);
		return -EINVAL;
	}
	json_error_t je;
	json_t *tree = json_loads(p.parse_tree, 0, &je), *stmts = json_object_get(tree, "stmts"), *raw;
	pg_query_free_parse_result(p);
	/* jansson refuses text that is not UTF-8 (a LATIN1 client's), and
	 * nesting beyond its limit (hundreds of nested subqueries) */
	bool utf8 = tree || json_error_code(&je) != json_error_invalid_utf8;
	int r = !tree ? (utf8 ? -E2BIG : -EILSEQ) : 0;
	size_t n = json_array_size(stmts), i;
	if (r)
		snprintf(err, errlen, "cannot analyse the statement: %s",
		         utf8 ? "too complex (nesting)"
		              : "its text is not UTF-8: send values beyond ASCII as parameters");
	if (!r && !(info = calloc(1, sizeof(*info))))
		r = -ENOMEM;
	if (!r && n && !(info->stmts = calloc(n, sizeof(*info->stmts)))) {
		free(info);
		r = -ENOMEM;
	}
	if (!r) {
		json_array_foreach(stmts, i, raw)
		{
			if ((r = one_statement(info, sql, sqllen, raw)))
				break;
		}
		if (r) {
			snprintf(err, errlen, "cannot analyse the statement: %s",
			         r == -E2BIG ? "too complex (tables or nesting)" : strerror(-r));
			sqi_free(info);
		} else {
			*ret = info;
		}
	}
	json_decref(tree);
	return r;
}

void sqi_stmt_free(struct sqi_stmt *s)
{
	for (size_t j = 0; j < s->ntables; j++) {
		free(s->tables[j].schema);
		free(s->tables[j].name);
		free(s->tables[j].alias);
	}
	free(s->tables);
	sqi_names_free(s->calls, s->ncalls);
	sqi_names_free(s->made, s->nmade);
	sqi_names_free(s->columns, s->ncolumns);
	for (size_t j = 0; j < s->ndefaults; j++) {
		free(s->defaults[j].schema);
		free(s->defaults[j].table);
		free(s->defaults[j].column);
	}
	free(s->defaults);
	for (size_t j = 0; j < s->npreds; j++) {
		free(s->preds[j].qual);
		free(s->preds[j].column);
		free(s->preds[j].value);
	}
	free(s->preds);
	for (size_t j = 0; j < s->nuses; j++) {
		free(s->uses[j].qual);
		free(s->uses[j].column);
	}
	free(s->uses);
	for (size_t j = 0; j < s->nwrite_cols; j++)
		free(s->write_cols[j]);
	free(s->write_cols);
	for (size_t j = 0; j < s->nwrites; j++)
		free(s->writes[j].column);
	free(s->writes);
	for (size_t j = 0; j < s->ncopy_cols; j++)
		free(s->copy_cols[j]);
	free(s->copy_cols);
	for (size_t j = 0; j < s->ncopy_quote; j++)
		free(s->copy_quote[j]);
	free(s->copy_quote);
	for (size_t j = 0; j < s->nconflict_cols; j++)
		free(s->conflict_cols[j]);
	free(s->conflict_cols);
	free(s->normalized);
	free(s->body);
}

void sqi_free(struct sqi_info *info)
{
	if (!info)
		return;
	for (size_t i = 0; i < info->n; i++)
		sqi_stmt_free(&info->stmts[i]);
	free(info->stmts);
	free(info);
}
