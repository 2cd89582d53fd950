/* sqlwrites.c - the values a statement writes, where the proxy may have
 * to encrypt them or read a subject's id from them: an INSERT's VALUES
 * rows, an UPDATE's SET, an upsert's conflict target and DO UPDATE SET,
 * and COPY FROM's columns and format options (sqlinfo.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sqlinfo_int.h"

static int add_write(struct sqi_stmt *st, const char *column, json_t *v, unsigned row, int col_location)
{
	bool bare = sqi_untyped(v) == v;
	json_t *c = json_object_get(v = sqi_untyped(v), "A_Const"), *p = json_object_get(v, "ParamRef");
	json_t *ref = json_object_get(v, "ColumnRef");
	struct sqi_write w = { .kind = SQI_W_EXPR,
		               .literal = -1,
		               .row = row,
		               .bare = bare,
		               .value_location = -1,
		               .col_location = col_location,
		               .value_at = { -1, -1 },
		               .col_at = { -1, -1 } };

	if (st->nwrites == SQI_MAX_WRITES) { /* (an upsert's SET beyond: not followed) */
		st->writes_partial = st->write_all = true;
		return 0;
	}
	if (c && json_is_true(json_object_get(c, "isnull"))) {
		w.kind = SQI_W_NULL;
	} else if (c) {
		w.kind = SQI_W_CONST;
		w.value_location = (int)json_integer_value(json_object_get(c, "location"));
	} else if (p) {
		w.kind = SQI_W_PARAM;
		w.param = (int)json_integer_value(json_object_get(p, "number"));
		w.value_location = (int)json_integer_value(json_object_get(p, "location"));
	} else if (ref) {
		size_t nf;
		const char *qual, *name = sqi_col_name(ref, &nf, &qual);
		if (nf == 2 && qual && name && !strcmp(qual, "excluded") && !strcmp(name, column))
			w.kind = SQI_W_EXCLUDED;
	}
	if (!(st->nwrites & (st->nwrites - 1))) { /* full at each power of two: doubled */
		struct sqi_write *nv = realloc(st->writes, (st->nwrites ? 2 * st->nwrites : 1) * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		st->writes = nv;
	}
	if (!(w.column = strdup(column)))
		return -ENOMEM;
	st->writes[st->nwrites++] = w;
	return 0;
}

/* SET targets: ResTarget { name, val }; SET (a, b) = ... is an expression. */
static int writes_set(struct sqi_stmt *st, json_t *targets, bool upsert)
{
	json_t *t;
	size_t i;
	int err = 0;

	json_array_foreach(targets, i, t)
	{
		json_t *rt = json_object_get(t, "ResTarget");
		const char *name = json_string_value(json_object_get(rt, "name"));
		json_t *val = json_object_get(rt, "val");
		if (json_object_get(val, "MultiAssignRef"))
			val = NULL; /* an expression, whatever it is */
		size_t before = st->nwrites;
		if (name && !err && !(err = add_write(st, name, val, 0, -1)) && st->nwrites > before)
			st->writes[before].upsert = upsert;
	}
	return err;
}

/* ON CONFLICT (a, b): its columns (not an expression's, nor a constraint's). */
static int conflict_target(struct sqi_stmt *st, json_t *infer)
{
	json_t *elems = json_object_get(infer, "indexElems"), *v;
	size_t i;

	if (!json_array_size(elems) || !(st->conflict_cols = calloc(json_array_size(elems), sizeof(char *))))
		return json_array_size(elems) ? -ENOMEM : 0;
	json_array_foreach(elems, i, v)
	{
		const char *name =
		    json_string_value(json_object_get(json_object_get(v, "IndexElem"), "name"));
		if (name && !(st->conflict_cols[st->nconflict_cols++] = strdup(name)))
			return -ENOMEM;
	}
	return 0;
}

static int writes_insert(struct sqi_stmt *st, json_t *ins)
{
	json_t *cols = json_object_get(ins, "cols"), *sel, *rows, *row, *v;
	size_t i, j;
	int err = 0;

	sel = json_object_get(json_object_get(ins, "selectStmt"), "SelectStmt");
	rows = json_object_get(sel, "valuesLists");
	st->writes_partial |= json_object_get(ins, "selectStmt") && !json_array_size(rows);
	json_array_foreach(rows, i, row)
	{
		json_t *items = json_object_get(json_object_get(row, "List"), "items");
		json_array_foreach(items, j, v)
		{
			json_t *rt = json_object_get(json_array_get(cols, j), "ResTarget");
			const char *col = json_string_value(json_object_get(rt, "name"));
			if (!col)
				st->writes_partial = true; /* no column list: write_all says so too */
			else if (!err)
				err = add_write(st, col, v, (unsigned)i,
				                (int)json_integer_value(json_object_get(rt, "location")));
		}
	}
	json_t *oc = json_object_get(ins, "onConflictClause");
	if (!err && oc)
		err = writes_set(st, json_object_get(oc, "targetList"), true);
	if (!err && oc)
		err = conflict_target(st, json_object_get(oc, "infer"));
	return err;
}

/* A boolean option's word, as PostgreSQL's defGetBoolean takes it: 1, 0,
 * or -1 for another ("match", say). */
static int yes_no(const char *w)
{
	static const char *const words[][2] = { { "true", "false" }, { "on", "off" }, { "1", "0" } };

	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		for (int v = 0; v < 2; v++)
			if (!strcasecmp(w, words[i][v]))
				return !v;
	return -1;
}

/* FORCE_QUOTE: * or its columns' names (given once). */
static bool force_quote(struct sqi_stmt *st, json_t *arg)
{
	json_t *items = json_object_get(json_object_get(arg, "List"), "items"), *v;
	size_t i;

	if (st->copy_quote_all || st->copy_quote)
		return false;
	if (json_object_get(arg, "A_Star"))
		return st->copy_quote_all = true;
	if (!json_array_size(items) || !(st->copy_quote = calloc(json_array_size(items), sizeof(char *))))
		return false;
	json_array_foreach(items, i, v)
	{
		const char *name = json_string_value(json_object_get(json_object_get(v, "String"), "sval"));
		if (!name || !(st->copy_quote[st->ncopy_quote++] = strdup(name)))
			return false;
	}
	return true;
}

/* COPY's options the proxy reads rows under (copytext.h), HEADER (true or
 * false), FORMAT binary and FORCE_QUOTE; false for any other. */
static bool copy_options(struct sqi_stmt *st, json_t *options)
{
	json_t *o;
	size_t i;

	memset(&st->copy_format, 0, sizeof(st->copy_format));
	json_array_foreach(options, i, o)
	{
		json_t *d = json_object_get(o, "DefElem"), *arg = json_object_get(d, "arg");
		const char *name = json_string_value(json_object_get(d, "defname"));
		const char *fmt = json_string_value(json_object_get(json_object_get(arg, "String"), "sval"));
		json_t *b = json_object_get(arg, "Boolean");
		int flag = !arg  ? 1
		           : b   ? json_is_true(json_object_get(b, "boolval"))
		           : fmt ? yes_no(fmt)
		                 : -1;
		if (name && !strcmp(name, "header") && flag >= 0)
			st->copy_header = flag;
		else if (name && fmt && !strcmp(name, "format") && !strcmp(fmt, "binary"))
			st->copy_binary = true;
		else if (name && !fmt && !strcmp(name, "force_quote") && force_quote(st, arg))
			continue;
		else if (!name || !fmt || !ct_format_set(&st->copy_format, name, fmt))
			return false;
	}
	return ct_format_finish(&st->copy_format);
}

static int copy_columns(struct sqi_stmt *st, json_t *body)
{
	json_t *v;
	size_t i;

	st->copy_table = json_object_get(body, "relation") != NULL;
	bool understood = st->copy_table && copy_options(st, json_object_get(body, "options")) &&
	                  !json_object_get(body, "whereClause");
	if (st->copy_quote_all || st->ncopy_quote) /* what PostgreSQL takes: CSV, out */
		understood &= st->copy_format.csv && !json_is_true(json_object_get(body, "is_from"));
	st->copy_plain = understood && !st->copy_binary;
	st->copy_binary &= understood && !st->copy_header && !st->copy_format.set && !st->copy_format.csv;
	st->copy_stdin = !json_object_get(body, "filename");
	json_t *list = json_object_get(body, "attlist");
	if (!json_array_size(list))
		return 0;
	if (!(st->copy_cols = calloc(json_array_size(list), sizeof(char *))))
		return -ENOMEM;
	json_array_foreach(list, i, v)
	{
		const char *name = json_string_value(json_object_get(json_object_get(v, "String"), "sval"));
		if (!name || !(st->copy_cols[st->ncopy_cols++] = strdup(name)))
			return name ? -ENOMEM : -EINVAL;
	}
	return 0;
}

int sqi_writes(struct sqi_stmt *st, const char *node, json_t *body)
{
	if (!strcmp(node, "CopyStmt"))
		return copy_columns(st, body);
	if (!strcmp(node, "InsertStmt"))
		return writes_insert(st, body);
	if (!strcmp(node, "UpdateStmt"))
		return writes_set(st, json_object_get(body, "targetList"), false);
	return 0;
}
