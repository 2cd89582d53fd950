/* sqlbody.c - see sqlbody.h. libpg_query parses PL/pgSQL only as a
 * CREATE FUNCTION: the body is wrapped in one, quoted with a dollar tag it
 * does not hold. */
#define _GNU_SOURCE
#include "sqlbody.h"

#include <errno.h>
#include <pg_query.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "util.h"

struct walk {
	sqb_fn fn;
	void *arg;
	bool opaque;
};

/* The statements whose SQL is built at run time: what they run cannot be
 * seen (their expressions, which build it, are walked all the same). */
static bool dynamic(const char *key, json_t *v)
{
	return !strcmp(key, "PLpgSQL_stmt_dynexecute") || !strcmp(key, "PLpgSQL_stmt_dynfors") ||
	       (json_is_object(v) && json_object_get(v, "dynquery"));
}

/* One expression's or statement's text, in the first reading fn parses:
 * as SQL, as a SELECT of it, as a SELECT of an assignment's value. */
static int text(struct walk *w, const char *q)
{
	const char *assigned = strstr(q, ":=");
	const char *const selected[] = { q, assigned ? assigned + 2 : NULL };
	int err = w->fn(w->arg, q);

	for (size_t i = 0; err == -EINVAL && i < ARRAY_SIZE(selected) && selected[i]; i++) {
		struct buf b = BUF_INIT;
		buf_printf(&b, "SELECT %s", selected[i]);
		err = b.failed ? -ENOMEM : w->fn(w->arg, b.p);
		buf_free(&b);
	}
	if (err == -EINVAL)
		w->opaque = true, err = 0;
	return err;
}

static int walk(struct walk *w, json_t *node, int depth)
{
	const char *key;
	json_t *v;
	size_t i;
	int err = 0;

	if (depth > 200) {
		w->opaque = true;
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
		w->opaque |= dynamic(key, v);
		if (!strcmp(key, "PLpgSQL_expr") && q)
			err = text(w, q);
		else if (json_is_object(v) || json_is_array(v))
			err = walk(w, v, depth + 1);
		if (err)
			return err;
	}
	return 0;
}

/* The value of the DefElem named name in args, or NULL. */
static const char *option(json_t *args, const char *name)
{
	json_t *d;
	size_t i;

	json_array_foreach(args, i, d)
	{
		json_t *e = json_object_get(d, "DefElem");
		if (!strcmp(json_string_value(json_object_get(e, "defname")) ?: "", name))
			return json_string_value(
			    json_object_get(json_object_get(json_object_get(e, "arg"), "String"), "sval"));
	}
	return NULL;
}

int sqb_do_block(json_t *dostmt, sqb_fn fn, void *arg)
{
	json_t *args = json_object_get(dostmt, "args");
	const char *body = option(args, "as"), *lang = option(args, "language");
	struct walk w = { fn, arg, false };
	struct buf f = BUF_INIT;
	char tag[32];
	int err = 0;

	if (!body || (lang && strcasecmp(lang, "plpgsql")))
		return 1;
	for (unsigned n = 0;; n++) { /* a dollar tag the body does not hold */
		snprintf(tag, sizeof(tag), "$custos%u$", n);
		if (!strstr(body, tag))
			break;
	}
	buf_printf(&f, "CREATE FUNCTION custos_do() RETURNS void LANGUAGE plpgsql AS %s%s%s", tag, body, tag);
	if (f.failed) {
		buf_free(&f);
		return -ENOMEM;
	}
	PgQueryPlpgsqlParseResult r = pg_query_parse_plpgsql(f.p);
	json_t *funcs = r.error || !r.plpgsql_funcs ? NULL : json_loads(r.plpgsql_funcs, 0, NULL);
	pg_query_free_plpgsql_parse_result(r);
	buf_free(&f);
	if (!funcs)
		return 1;
	err = walk(&w, funcs, 0);
	json_decref(funcs);
	return err ? err : w.opaque;
}
