/* sqlbody.c - see sqlbody.h. libpg_query parses PL/pgSQL only as the body
 * of a CREATE FUNCTION: a DO block's body is wrapped in one, quoted with a
 * dollar tag it does not hold. */
#define _GNU_SOURCE
#include "sqlbody.h"
#include "sqlinfo_int.h"

#include <ctype.h>
#include <errno.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "sqlreading.h"

#define DO_DEPTH_MAX 4 /* a DO block running a DO block ... */

/* Each statement a body holds, analysed. */
typedef int (*stmt_fn)(void *arg, const struct sqi_stmt *s);

struct walk {
	stmt_fn fn;
	void *arg;
	int depth; /* of DO blocks */
	unsigned hidden;
};

/* One parsed statement node ({"InsertStmt": ...}): analysed, handed to
 * the walk's function. One that changes how statements read (a SET, a
 * set_config() naming such a setting) marks the body: PostgreSQL reports
 * the change only after the statement that ran it. */
static int one(struct walk *w, json_t *node)
{
	struct sqi_stmt s = { 0 };
	char name[64] = "";
	int err = sqi_classify(&s, node, name, w->depth + 1);

	if (sqr_node_changes_reading(node))
		w->hidden |= SQI_HIDDEN_READING;

	for (size_t t = 0; !strcmp(name, "TruncateStmt") && t < s.ntables; t++)
		s.tables[t].write = true; /* it fires the tables' TRUNCATE triggers */
	if (!err)
		err = w->fn(w->arg, &s);
	sqi_stmt_free(&s);
	return err;
}

/* SQL text, one statement or several: -EINVAL when it does not parse. */
static int sql_text(struct walk *w, const char *sql)
{
	PgQueryParseResult p = pg_query_parse(sql);
	json_t *tree = p.error ? NULL : json_loads(p.parse_tree, 0, NULL), *raw;
	size_t i;
	int err = tree ? 0 : -EINVAL;

	pg_query_free_parse_result(p);
	json_array_foreach(json_object_get(tree, "stmts"), i, raw)
	{
		if ((err = one(w, json_object_get(raw, "stmt"))))
			break;
	}
	json_decref(tree);
	return err;
}

/* --- PL/pgSQL ----------------------------------------------------------------- */

/* The statements whose SQL is built at run time: what they run cannot be
 * seen (their expressions, which build it, are walked all the same). */
static bool dynamic(const char *key, json_t *v)
{
	return !strcmp(key, "PLpgSQL_stmt_dynexecute") || !strcmp(key, "PLpgSQL_stmt_dynfors") ||
	       (json_is_object(v) && json_object_get(v, "dynquery"));
}

/* One expression's or statement's text, in the first reading that
 * parses: as SQL, as a SELECT of it, as a SELECT of an assignment's value. */
static int text(struct walk *w, const char *q)
{
	const char *assigned = strstr(q, ":=");
	const char *const selected[] = { q, assigned ? assigned + 2 : NULL };
	int err = sql_text(w, q);

	for (size_t i = 0; err == -EINVAL && i < ARRAY_SIZE(selected) && selected[i]; i++) {
		struct buf b = BUF_INIT;
		buf_printf(&b, "SELECT %s", selected[i]);
		err = b.failed ? -ENOMEM : sql_text(w, b.p);
		buf_free(&b);
	}
	if (err == -EINVAL || err == -E2BIG)
		w->hidden |= SQI_HIDDEN_UNPARSED, err = 0;
	return err;
}

static int walk(struct walk *w, json_t *node, int depth)
{
	const char *key;
	json_t *v;
	size_t i;
	int err = 0;

	if (depth > 200) {
		w->hidden |= SQI_HIDDEN_UNPARSED;
		return 0;
	}
	if (json_is_array(node)) {
		json_array_foreach(node, i, v)
		{
			if ((err = walk(w, v, depth + 1)))
				return err;
		}
		return 0;
	}
	json_object_foreach(node, key, v)
	{
		const char *q = json_string_value(json_object_get(v, "query"));
		w->hidden |= dynamic(key, v) ? SQI_HIDDEN_DYNAMIC : 0;
		if (!strcmp(key, "PLpgSQL_expr") && q)
			err = text(w, q);
		else if (json_is_object(v) || json_is_array(v))
			err = walk(w, v, depth + 1);
		if (err)
			return err;
	}
	return 0;
}

/* The PL/pgSQL body of def, a CREATE FUNCTION or PROCEDURE that has one
 * (libpg_query asserts it does); the parse kept in *keep when asked for,
 * NULL when it failed. */
static int plpgsql(struct walk *w, const char *def, json_t **keep)
{
	PgQueryPlpgsqlParseResult r = pg_query_parse_plpgsql(def);
	json_t *funcs = r.error || !r.plpgsql_funcs ? NULL : json_loads(r.plpgsql_funcs, 0, NULL);

	pg_query_free_plpgsql_parse_result(r);
	if (!funcs) {
		w->hidden |= SQI_HIDDEN_UNPARSED;
		return 0;
	}
	int err = walk(w, funcs, 0);
	if (keep)
		*keep = funcs;
	else
		json_decref(funcs);
	return err;
}

/* The string value of the DefElem named name in args (the first of a
 * list's, as CREATE FUNCTION's AS gives its body), or NULL. */
static const char *option(json_t *args, const char *name)
{
	json_t *d;
	size_t i;

	json_array_foreach(args, i, d)
	{
		json_t *e = json_object_get(d, "DefElem"), *arg = json_object_get(e, "arg");
		json_t *list = json_object_get(json_object_get(arg, "List"), "items");
		if (strcmp(json_string_value(json_object_get(e, "defname")) ?: "", name))
			continue;
		if (list)
			arg = json_array_get(list, 0);
		return json_string_value(json_object_get(json_object_get(arg, "String"), "sval"));
	}
	return NULL;
}

/* Whether a routine's own settings (SET options) change how its body
 * reads: PostgreSQL applies them before it compiles the body, while
 * libpg_query reads it as standard SQL does (a backslash before a quote
 * can hide a statement from one of them). */
static bool sets_reading(json_t *opts)
{
	static const char *const reading[] = { "standard_conforming_strings", "backslash_quote" };
	json_t *d;
	size_t i;

	json_array_foreach(opts, i, d)
	{
		json_t *e = json_object_get(d, "DefElem");
		const char *name = json_string_value(
		    json_object_get(json_object_get(json_object_get(e, "arg"), "VariableSetStmt"), "name"));
		if (strcmp(json_string_value(json_object_get(e, "defname")) ?: "", "set"))
			continue;
		for (size_t k = 0; k < ARRAY_SIZE(reading); k++)
			if (!name || !strcasecmp(name, reading[k]))
				return true;
	}
	return false;
}

/* --- DO blocks ---------------------------------------------------------------- */

/* A statement of a DO block's body: the tables it reads and writes, the
 * routines it calls, the relations it makes and the defaults it gives are
 * the block's (its other
 * facts are not: its values are the body's, not the statement text's). */
static int block_stmt(void *arg, const struct sqi_stmt *s)
{
	struct sqi_stmt *st = arg;
	int err = 0;

	st->hidden |= s->hidden;
	for (size_t t = 0; !err && t < s->ntables; t++)
		err = sqi_add_named(st, s->tables[t].schema, s->tables[t].name, NULL, s->tables[t].write);
	for (size_t c = 0; !err && c < s->ncalls; c++)
		err = sqi_name_add(&st->calls, &st->ncalls, s->calls[c].schema, s->calls[c].name);
	for (size_t m = 0; !err && m < s->nmade; m++)
		err = sqi_name_add(&st->made, &st->nmade, s->made[m].schema, s->made[m].name);
	for (size_t d = 0; !err && d < s->ndefaults; d++)
		err = sqi_default_add(st, s->defaults[d].schema, s->defaults[d].table, s->defaults[d].column);
	st->body_ddl |= s->kind == SQI_OTHER || s->body_ddl;
	st->code_ddl |= s->code_ddl;
	return err;
}

int sqi_do_block(struct sqi_stmt *st, json_t *dostmt, int depth)
{
	json_t *args = json_object_get(dostmt, "args");
	const char *body = option(args, "as"), *lang = option(args, "language");
	struct walk w = { block_stmt, st, depth, 0 };
	struct buf f = BUF_INIT;
	char tag[32];

	if (depth >= DO_DEPTH_MAX)
		return -E2BIG;
	if (!body || (lang && strcasecmp(lang, "plpgsql"))) {
		st->hidden |= SQI_HIDDEN_LANGUAGE;
		return 0;
	}
	for (unsigned n = 0;; n++) { /* a dollar tag the body does not hold */
		snprintf(tag, sizeof(tag), "$custos%u$", n);
		if (!strstr(body, tag))
			break;
	}
	/* PostgreSQL reads the body as it runs it, under the settings then */
	if (!sqr_reads_alike(body, strlen(body), false))
		st->hidden |= SQI_HIDDEN_MISREAD;
	buf_printf(&f, "CREATE FUNCTION custos_do() RETURNS void LANGUAGE plpgsql AS %s%s%s", tag, body, tag);
	int err = f.failed ? -ENOMEM : plpgsql(&w, f.p, NULL);
	buf_free(&f);
	st->hidden |= w.hidden;
	if (!err && (st->hidden & SQI_HIDDEN_UNPARSED) && !st->body && !(st->body = strdup(body)))
		err = -ENOMEM;
	return err;
}

/* --- routines ----------------------------------------------------------------- */

static int add_col(struct sqb_cols *c, const char *col)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->names[i], col))
			return 0;
	char **v = realloc(c->names, (c->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	c->names = v;
	return (c->names[c->n] = strdup(col)) ? (c->n++, 0) : -ENOMEM;
}

static void cols_free(struct sqb_cols *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->names[i]);
	free(c->names);
}

static struct sqb_table *routine_table(struct sqb_routine *r, const struct sqi_table *st)
{
	for (size_t i = 0; i < r->ntables; i++) {
		struct sqb_table *t = &r->tables[i];
		if (!strcmp(t->name, st->name) &&
		    (st->schema ? t->schema && !strcmp(t->schema, st->schema) : !t->schema))
			return t;
	}
	struct sqb_table *v = realloc(r->tables, (r->ntables + 1) * sizeof(*v));
	if (!v)
		return NULL;
	r->tables = v;
	struct sqb_table *t = &v[r->ntables];
	*t = (struct sqb_table){ .schema = st->schema ? strdup(st->schema) : NULL, .name = strdup(st->name) };
	if (!t->name || (st->schema && !t->schema))
		return free(t->schema), free(t->name), NULL;
	r->ntables++;
	return t;
}

/* A statement of a routine: its tables, with the columns it writes (a
 * statement writing more than one table, or one without a column list,
 * has write_all) and of them those an UPDATE or an upsert's DO UPDATE
 * writes (all, where the statement's writes are not read one by one),
 * and its calls. */
static int routine_stmt(void *arg, const struct sqi_stmt *s)
{
	struct sqb_routine *r = arg;
	bool upd = s->events & SQI_EV_UPDATE;
	bool one_by_one = s->kind == SQI_UPDATE || (s->kind == SQI_INSERT && !s->writes_partial);
	int err = 0;

	r->hidden |= s->hidden;
	r->ddl |= sqi_fires_event_triggers(s);
	for (size_t i = 0; !err && i < s->ntables; i++) {
		struct sqb_table *t = routine_table(r, &s->tables[i]);
		if (!t)
			return -ENOMEM;
		if (!s->tables[i].write)
			continue;
		t->write = true;
		t->events |= s->events;
		t->cols.all |= s->write_all;
		t->updated.all |= upd && (s->write_all || s->nested_writes || !one_by_one);
		for (size_t c = 0; !err && !s->write_all && c < s->nwrite_cols; c++)
			err = add_col(&t->cols, s->write_cols[c])
			          ?: (upd && s->kind == SQI_UPDATE ? add_col(&t->updated, s->write_cols[c])
			                                           : 0);
		for (size_t c = 0; !err && !s->write_all && c < s->nwrites; c++) /* DO UPDATE SET's too */
			err = add_col(&t->cols, s->writes[c].column)
			          ?: (upd && (s->kind == SQI_UPDATE || s->writes[c].upsert)
			                  ? add_col(&t->updated, s->writes[c].column)
			                  : 0);
	}
	for (size_t c = 0; !err && c < s->ncalls; c++)
		err = sqi_name_add(&r->calls, &r->ncalls, s->calls[c].schema, s->calls[c].name);
	return err;
}

/* An SQL routine's BEGIN ATOMIC body (lists of statements) or RETURN. */
static int atomic_body(struct walk *w, json_t *node, int depth)
{
	json_t *items = json_object_get(json_object_get(node, "List"), "items"), *v;
	size_t i;
	int err = 0;

	if (depth > 8)
		return w->hidden |= SQI_HIDDEN_UNPARSED, 0;
	if (!items)
		return json_is_object(node) ? one(w, node) : 0;
	json_array_foreach(items, i, v)
	{
		if ((err = atomic_body(w, v, depth + 1)))
			break;
	}
	return err;
}

/* A trigger function's parse, read for what it stores as the row: its
 * NEW and OLD datums, and where it found their stores. */
struct trig {
	struct sqb_cols *a, *keeps;
	json_t *datums;
	json_int_t new_no, old_no; /* (not "new": the C++ keyword confuses tools) */
	bool old_unsure;           /* OLD may not be the row: stored into, or a label named old */
	bool aliases;              /* the body declares an ALIAS, a name its parse does not show */
	bool returns_old;          /* a RETURN OLD: the row stored is OLD as the function left it */
};

/* NEW's field datum d names, or NULL. */
static const char *new_field(const struct trig *t, json_int_t d)
{
	json_t *f = json_object_get(json_array_get(t->datums, (size_t)d), "PLpgSQL_recfield");

	return json_integer_value(json_object_get(f, "recparentno")) == t->new_no
	           ? json_string_value(json_object_get(f, "fieldname"))
	           : NULL;
}

/* Datum d, assigned somewhere: NEW whole, or one of its fields (a
 * PLpgSQL_recfield of it); OLD or one of its fields. */
static int assigned(struct trig *t, json_int_t d)
{
	json_t *f = json_object_get(json_array_get(t->datums, (size_t)d), "PLpgSQL_recfield");
	const char *name = new_field(t, d);

	if (d == t->old_no || (f && json_integer_value(json_object_get(f, "recparentno")) == t->old_no))
		t->old_unsure = true;
	if (d == t->new_no)
		t->a->all = true;
	else if (name)
		return add_col(t->a, name);
	return 0;
}

/* Whether sql, parsed, is SELECT rec.field and nothing else. */
static bool selects_field(const char *sql, const char *rec, const char *field)
{
	PgQueryParseResult p = pg_query_parse(sql);
	json_t *tree = p.error ? NULL : json_loads(p.parse_tree, 0, NULL);
	json_t *stmts = json_object_get(tree, "stmts");
	json_t *sel = json_object_get(json_object_get(json_array_get(stmts, 0), "stmt"), "SelectStmt");
	json_t *targets = json_object_get(sel, "targetList");
	json_t *res = json_object_get(json_array_get(targets, 0), "ResTarget");
	json_t *fields = json_object_get(json_object_get(json_object_get(res, "val"), "ColumnRef"), "fields");
	const char *r =
	    json_string_value(json_object_get(json_object_get(json_array_get(fields, 0), "String"), "sval"));
	const char *f =
	    json_string_value(json_object_get(json_object_get(json_array_get(fields, 1), "String"), "sval"));
	/* a plain SELECT has its targets, a limit option and an operator (none) */
	bool only = json_array_size(stmts) == 1 && json_object_size(sel) == 3 &&
	            json_object_get(sel, "limitOption") && json_object_get(sel, "op") &&
	            json_array_size(targets) == 1 && json_object_size(res) == 2 &&
	            json_array_size(fields) == 2 && r && !strcmp(r, rec) && f && !strcmp(f, field);

	pg_query_free_parse_result(p);
	json_decref(tree);
	return only;
}

/* Where PL/pgSQL's assignment text splits: its first := or = token, as
 * PostgreSQL's scanner finds it (not in a string or a comment). */
static bool assign_op(const char *text, size_t *start, size_t *end)
{
	PgQueryScanResult r = pg_query_scan(text);
	PgQuery__ScanResult *u =
	    r.error ? NULL : pg_query__scan_result__unpack(NULL, r.pbuf.len, (const uint8_t *)r.pbuf.data);
	bool found = false;

	for (size_t i = 0; u && !found && i < u->n_tokens; i++) {
		const PgQuery__ScanToken *t = u->tokens[i];
		if ((found = t->token == PG_QUERY__TOKEN__COLON_EQUALS ||
		             t->token == PG_QUERY__TOKEN__ASCII_61)) {
			*start = (size_t)t->start;
			*end = (size_t)t->end;
		}
	}
	if (u)
		pg_query__scan_result__free_unpacked(u, NULL);
	pg_query_free_scan_result(r);
	return found && *start <= *end && *end <= strlen(text);
}

/* An assignment NEW.x := OLD.x (or =), each side that and nothing else
 * as parsed: the field back as the row had it. */
static bool restores(const struct trig *t, json_t *assign)
{
	const char *field = new_field(t, json_integer_value(json_object_get(assign, "varno")));
	const char *q = json_string_value(
	    json_object_get(json_object_get(json_object_get(assign, "expr"), "PLpgSQL_expr"), "query"));
	size_t op, value;
	char *target = NULL, *from = NULL;

	if (!field || !q || !assign_op(q, &op, &value) || asprintf(&target, "SELECT %.*s", (int)op, q) < 0)
		return false;
	bool r = asprintf(&from, "SELECT %s", q + value) >= 0 && selects_field(target, "new", field) &&
	         selects_field(from, "old", field);
	free(target);
	free(from);
	return r;
}

/* Whether text holds word, in any case, not inside a longer word. */
static bool has_word(const char *text, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = text; (p = strcasestr(p, word)); p += n)
		if ((p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '_')) &&
		    !(isalnum((unsigned char)p[n]) || p[n] == '_' || p[n] == '$'))
			return true;
	return false;
}

/* Whether a CALL's arguments may name rec ("new", "old"): a column
 * reference with it among its names (label-qualified, quoted or escaped,
 * as parsed), or any column reference where the body declares an alias. */
static bool call_names(const struct trig *t, json_t *node, const char *rec, int depth)
{
	const char *key;
	json_t *v, *f;
	size_t i;

	if (depth > 100)
		return true;
	json_array_foreach(node, i, v)
	{
		if (call_names(t, v, rec, depth + 1))
			return true;
	}
	json_object_foreach(node, key, v)
	{
		if (!strcmp(key, "ColumnRef") && t->aliases)
			return true;
		if (!strcmp(key, "ColumnRef"))
			json_array_foreach(json_object_get(v, "fields"), i, f)
			{
				const char *name =
				    json_string_value(json_object_get(json_object_get(f, "String"), "sval"));
				if (name && !strcmp(name, rec))
					return true;
			}
		if ((json_is_object(v) || json_is_array(v)) && call_names(t, v, rec, depth + 1))
			return true;
	}
	return false;
}

/* A CALL in a trigger function: an INOUT argument writes its variable
 * back, NEW's field (a store) or OLD's (OLD no longer the row). What does
 * not parse may do either. */
static void call_stores(struct trig *t, const char *call)
{
	PgQueryParseResult p = pg_query_parse(call);
	json_t *tree = p.error ? NULL : json_loads(p.parse_tree, 0, NULL);

	if (!tree || call_names(t, tree, "new", 0))
		t->a->all = true;
	if (!tree || call_names(t, tree, "old", 0))
		t->old_unsure = true;
	pg_query_free_parse_result(p);
	json_decref(tree);
}

/* Whether a datum other than rec (NEW or OLD, datum no) is named name: a
 * block's variable hiding it, which rec.x or RETURN rec would read; or
 * one libpg_query took for a block's, where PostgreSQL, which knows the
 * types, sees the record (a variable of a domain named record). */
static bool rec_hidden(const struct trig *t, const char *name, json_int_t no)
{
	json_t *d;
	size_t i;

	json_array_foreach(t->datums, i, d)
	{
		const char *key;
		json_t *v;
		json_object_foreach(d, key, v)
		{
			const char *ref = json_string_value(json_object_get(v, "refname"));
			if ((json_int_t)i != no && ref && !strcasecmp(ref, name))
				return true;
		}
	}
	return false;
}

/* A RETURN whose row is not NEW, OLD or NULL: a BEFORE trigger's row
 * stored in NEW's place, whatever it holds (RETURN r, RETURN
 * jsonb_populate_record(NEW, ...)). */
static bool returns_other(struct trig *t, json_t *ret)
{
	const char *q = json_string_value(
	    json_object_get(json_object_get(json_object_get(ret, "expr"), "PLpgSQL_expr"), "query"));
	json_t *var = json_object_get(ret, "retvarno");

	if (json_is_integer(var) && json_integer_value(var) == t->old_no)
		t->returns_old = true;
	if (json_is_integer(var))
		return json_integer_value(var) != t->new_no && json_integer_value(var) != t->old_no;
	if (!q)
		return false;
	while (isspace((unsigned char)*q))
		q++;
	size_t n = strlen(q);
	while (n && isspace((unsigned char)q[n - 1]))
		n--;
	if (n == 3 && !strncasecmp(q, "old", 3))
		t->returns_old = true;
	return !(n == 3 && (!strncasecmp(q, "new", 3) || !strncasecmp(q, "old", 3))) &&
	       !(n == 4 && !strncasecmp(q, "null", 4));
}

/* What a trigger function's statements store into NEW: the datums under
 * "varno" (an assignment, a row's field, a loop's variable), "dno" (a
 * record target: SELECT ... INTO NEW) or "target" (GET DIAGNOSTICS); all
 * of it for a RETURN of another row or a CALL given NEW (an INOUT
 * argument writes it back). Expressions are text here, and name none. */
static int targets(struct trig *t, json_t *node, int depth)
{
	const char *key;
	json_t *v;
	size_t i;
	int err = 0;

	if (depth > 200)
		return t->a->all = true, 0;
	if (json_is_array(node))
		json_array_foreach(node, i, v)
		{
			if ((err = targets(t, v, depth + 1)))
				return err;
		}
	json_object_foreach(node, key, v)
	{
		const char *call =
		    !strcmp(key, "PLpgSQL_stmt_call")
		        ? json_string_value(json_object_get(
		              json_object_get(json_object_get(v, "expr"), "PLpgSQL_expr"), "query"))
		        : NULL;
		if (!strcmp(key, "PLpgSQL_stmt_return") && returns_other(t, v))
			t->a->all = true;
		if (call)
			call_stores(t, call);
		/* old.x names a variable of a block labelled old */
		if (!strcmp(key, "label") && json_is_string(v) && !strcasecmp(json_string_value(v), "old"))
			t->old_unsure = true;
		if (!strcmp(key, "PLpgSQL_stmt_assign") && restores(t, v))
			err =
			    add_col(t->keeps, new_field(t, json_integer_value(json_object_get(v, "varno"))));
		else if (json_is_integer(v) &&
		         (!strcmp(key, "varno") || !strcmp(key, "dno") || !strcmp(key, "target")))
			err = assigned(t, json_integer_value(v));
		else if (json_is_object(v) || json_is_array(v))
			err = targets(t, v, depth + 1);
		if (err)
			return err;
	}
	return 0;
}

/* What a trigger function (one with a NEW) stores into NEW, and which of
 * its fields it only takes back from OLD (those count as stores where
 * OLD may not hold the row's own values). */
static int assigns_new(struct sqb_routine *r, json_t *funcs, const char *def)
{
	json_t *fn = json_object_get(json_array_get(funcs, 0), "PLpgSQL_function");
	json_t *nv = json_object_get(fn, "new_varno"), *ov = json_object_get(fn, "old_varno");
	struct trig t = { .a = &r->assigns,
		          .keeps = &r->keeps,
		          .datums = json_object_get(fn, "datums"),
		          .new_no = json_integer_value(nv),
		          .old_no = json_integer_value(ov),
		          .aliases = has_word(def, "alias") };
	if (!json_is_integer(nv))
		return 0;
	int err = targets(&t, json_object_get(fn, "action"), 0);
	bool old_unsure =
	    t.old_unsure || t.aliases || !json_is_integer(ov) || rec_hidden(&t, "old", t.old_no);

	/* NEW under another name, or another variable under its; OLD, changed, returned */
	if (t.aliases || rec_hidden(&t, "new", t.new_no) || (old_unsure && t.returns_old))
		r->assigns.all = true;
	if (!err && r->keeps.n && old_unsure) {
		for (size_t i = 0; !err && i < r->keeps.n; i++)
			err = add_col(&r->assigns, r->keeps.names[i]);
		cols_free(&r->keeps);
		memset(&r->keeps, 0, sizeof(r->keeps));
	}
	return err;
}

/* An expression, read as SELECT <e> reads: the routines it calls, the
 * tables its subqueries read. */
static int expression(struct walk *w, json_t *e)
{
	json_t *sel = json_pack("{s:{s:[{s:{s:O}}]}}", "SelectStmt", "targetList", "ResTarget", "val", e);
	int err = sel ? one(w, sel) : -ENOMEM;

	json_decref(sel);
	return err;
}

/* A rule's condition (an expression) and its actions, each a statement. */
static int rule_actions(struct walk *w, json_t *rule)
{
	json_t *cond = json_object_get(rule, "whereClause"), *v;
	size_t i;
	int err = cond ? expression(w, cond) : 0;

	json_array_foreach(json_object_get(rule, "actions"), i, v)
	{
		if (err || (err = one(w, v)))
			break;
	}
	return err;
}

int sqb_routine(const char *def, struct sqb_routine *out)
{
	struct walk w = { routine_stmt, out, 0, 0 };
	PgQueryParseResult p = pg_query_parse(def);
	json_t *tree = p.error ? NULL : json_loads(p.parse_tree, 0, NULL);
	json_t *stmts = json_object_get(tree, "stmts"),
	       *stmt = json_object_get(json_array_get(stmts, 0), "stmt");
	json_t *cf = json_object_get(stmt, "CreateFunctionStmt"), *rule = json_object_get(stmt, "RuleStmt");
	json_t *opts = json_object_get(cf, "options"), *atomic = json_object_get(cf, "sql_body");
	const char *lang = option(opts, "language"), *as = option(opts, "as");
	int err = 0;

	memset(out, 0, sizeof(*out));
	pg_query_free_parse_result(p);
	if (json_array_size(stmts) != 1 || !(cf || rule)) {
		json_decref(tree);
		return -EINVAL;
	}
	if (rule)
		err = rule_actions(&w, rule);
	else if (lang && !strcasecmp(lang, "plpgsql") && as) {
		json_t *funcs = NULL;
		err = plpgsql(&w, def, &funcs);
		if (!err && funcs)
			err = assigns_new(out, funcs, def);
		else if (!funcs && strcasestr(def, "RETURNS trigger"))
			out->assigns.all = true; /* a trigger's body not parsed: it may store anything */
		json_decref(funcs);
	} else if (lang && !strcasecmp(lang, "sql") && as)
		err = sql_text(&w, as);
	else if (lang && !strcasecmp(lang, "sql") && atomic)
		err = atomic_body(&w, atomic, 0);
	else if (!lang || (strcasecmp(lang, "c") && strcasecmp(lang, "internal")))
		out->hidden |= SQI_HIDDEN_LANGUAGE; /* C and internal: only a superuser makes them, trusted */
	json_t *param;
	size_t i;
	json_array_foreach(json_object_get(cf, "parameters"), i, param)
	{ /* a default runs in each call that leaves its parameter out */
		json_t *d = json_object_get(json_object_get(param, "FunctionParameter"), "defexpr");
		if (d && !err)
			err = expression(&w, d);
	}
	if (err == -EINVAL || err == -E2BIG)
		err = 0, out->hidden |= SQI_HIDDEN_UNPARSED;
	if (as && !sqr_reads_alike(as, strlen(as), false))
		out->hidden |= SQI_HIDDEN_MISREAD; /* read at its first call, under the settings then */
	if (sets_reading(opts)) { /* its body is not what it reads as here: it may do anything */
		out->hidden |= SQI_HIDDEN_UNPARSED;
		out->assigns.all = true;
	}
	out->hidden |= w.hidden;
	json_decref(tree);
	return err;
}

void sqb_routine_free(struct sqb_routine *r)
{
	for (size_t i = 0; i < r->ntables; i++) {
		cols_free(&r->tables[i].cols);
		cols_free(&r->tables[i].updated);
		free(r->tables[i].schema);
		free(r->tables[i].name);
	}
	free(r->tables);
	cols_free(&r->assigns);
	cols_free(&r->keeps);
	sqi_names_free(r->calls, r->ncalls);
	memset(r, 0, sizeof(*r));
}
