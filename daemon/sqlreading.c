/* sqlreading.c - statements that change how PostgreSQL reads the ones
 * after them, and texts that read alike however they are read
 * (sqlreading.h). The first are read from the parse of each text, not
 * from its cached analysis, which is shared by texts differing in
 * constants alone: set_config(E'standard\137conforming_strings', ...)
 * and set_config('app.user', ...) would share one. */
#define _GNU_SOURCE
#include "sqlreading.h"

#include <pg_query.h>
#include <string.h>
#include <strings.h>

#include "sqlinfo_int.h"
#include "util.h"

static bool reading_setting(const char *name)
{
	static const char *const reading[] = { "standard_conforming_strings", "backslash_quote",
		                               "client_encoding" };

	for (size_t i = 0; name && i < ARRAY_SIZE(reading); i++)
		if (!strcasecmp(name, reading[i]))
			return true;
	return false;
}

/* set_config(setting, ...), pg_catalog's, whose setting is a reading
 * setting, or (when unnamed counts) not a constant (named notation
 * included). */
static bool sets_reading(json_t *call, bool unnamed)
{
	const char *schema, *name;
	json_t *first = json_array_get(json_object_get(call, "args"), 0);
	const char *setting = json_string_value(
	    json_object_get(json_object_get(json_object_get(first, "A_Const"), "sval"), "sval"));

	sqi_call_name(call, &schema, &name);
	return name && !strcmp(name, "set_config") && (!schema || !strcmp(schema, "pg_catalog")) &&
	       (setting ? reading_setting(setting) : unnamed);
}

static bool walk(json_t *node, bool unnamed, int depth)
{
	const char *key;
	json_t *v;
	size_t i;

	if (depth > 1000)
		return true;
	json_array_foreach(node, i, v)
	{
		if (walk(v, unnamed, depth + 1))
			return true;
	}
	json_object_foreach(node, key, v)
	{
		if (((!strcmp(key, "FuncCall") || !strcmp(key, "funccall")) && sets_reading(v, unnamed)) ||
		    ((!strcmp(key, "VariableSetStmt") || !strcmp(key, "setstmt")) && /* ALTER SYSTEM's */
		     reading_setting(json_string_value(json_object_get(v, "name")))))
			return true;
		if ((json_is_object(v) || json_is_array(v)) && walk(v, unnamed, depth + 1))
			return true;
	}
	return false;
}

/* SHOW of anything; SET standard_conforming_strings to on, or the client
 * encoding to UTF8: what it already is, or another that reads alike. */
static bool keeps(json_t *stmt)
{
	json_t *set = json_object_get(stmt, "VariableSetStmt"), *args = json_object_get(set, "args");
	const char *name = json_string_value(json_object_get(set, "name")), *kind, *v;
	static const char *const on[] = { "on", "true", "yes", "1" }, *const utf8[] = { "UTF8", "UTF-8",
		                                                                        "UNICODE" };

	if (json_object_get(stmt, "VariableShowStmt"))
		return true;
	kind = json_string_value(json_object_get(set, "kind"));
	v = json_string_value(json_object_get(
	    json_object_get(json_object_get(json_array_get(args, 0), "A_Const"), "sval"), "sval"));
	if (!name || !kind || strcmp(kind, "VAR_SET_VALUE") || json_array_size(args) != 1 || !v)
		return false;
	for (size_t i = 0; !strcasecmp(name, "standard_conforming_strings") && i < ARRAY_SIZE(on); i++)
		if (!strcasecmp(v, on[i]))
			return true;
	for (size_t i = 0; !strcasecmp(name, "client_encoding") && i < ARRAY_SIZE(utf8); i++)
		if (!strcasecmp(v, utf8[i]))
			return true;
	return false;
}

bool sqr_keeps_reading(const char *sql)
{
	PgQueryParseResult p = pg_query_parse(sql);
	json_t *tree = p.error ? NULL : json_loads(p.parse_tree, 0, NULL),
	       *stmts = json_object_get(tree, "stmts"), *s;
	bool r = json_array_size(stmts) > 0;
	size_t i;

	json_array_foreach(stmts, i, s)
	{
		r = r && keeps(json_object_get(s, "stmt"));
	}
	json_decref(tree);
	pg_query_free_parse_result(p);
	return r;
}

bool sqr_node_changes_reading(json_t *node)
{
	return walk(node, false, 0);
}

bool sqr_changes_reading(const char *sql)
{
	PgQueryParseResult p = pg_query_parse(sql);
	json_t *tree = p.error ? NULL : json_loads(p.parse_tree, 0, NULL);
	bool r = !tree || walk(tree, true, 0);

	json_decref(tree);
	pg_query_free_parse_result(p);
	return r;
}

/* --- texts that read alike under any setting ----------------------------------- */

/* A scan of a text for its quoted and commented spans, as PostgreSQL's
 * scanner finds them with standard_conforming_strings on, or off
 * (escapes: a plain '...' string takes backslash escapes, as E'...' does).
 * Where it cannot tell a prefix (E'...' after a digit), it takes the
 * string for a plain one: the two readings then differ rather than agree
 * wrongly. */
struct rscan {
	const char *text, *p, *end;
	bool escapes;
};

static bool ident_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '$' || ch >= 0x80;
}

static bool token_start(const struct rscan *s, const char *p)
{
	return p == s->text || !ident_char((unsigned char)p[-1]);
}

static const char *string_end(const struct rscan *s, const char *q)
{
	bool e = s->escapes || (q > s->text && (q[-1] == 'e' || q[-1] == 'E') && token_start(s, q - 1));

	for (q++; q < s->end; q++) {
		if (*q == '\\' && e)
			q++;
		else if (*q == '\'' && q + 1 < s->end && q[1] == '\'')
			q++;
		else if (*q == '\'')
			return q + 1;
	}
	return NULL;
}

static const char *comment_end(const struct rscan *s, const char *q)
{
	int depth = 0;

	do {
		if (q + 1 < s->end && q[0] == '/' && q[1] == '*')
			depth++, q += 2;
		else if (q + 1 < s->end && q[0] == '*' && q[1] == '/')
			depth--, q += 2;
		else if (++q >= s->end)
			return NULL;
	} while (depth);
	return q;
}

static const char *ident_end(const struct rscan *s, const char *q)
{
	for (q++; q < s->end; q++)
		if (*q == '"' && !(q + 1 < s->end && q[1] == '"'))
			return q + 1;
		else if (*q == '"')
			q++;
	return NULL;
}

/* $tag$...$tag$ from q ($, at a token's start); q itself when q is no such
 * quote's start ($1, a lone $). */
static const char *dollar_end(const struct rscan *s, const char *q)
{
	const char *t = q + 1;

	if (t < s->end && *t != '$' && (ident_char((unsigned char)*t) && !(*t >= '0' && *t <= '9')))
		while (t < s->end && ident_char((unsigned char)*t) && *t != '$')
			t++;
	if (t >= s->end || *t != '$')
		return q;
	size_t n = (size_t)(t + 1 - q);
	const char *close = memmem(t + 1, (size_t)(s->end - (t + 1)), q, n);
	return close ? close + n : NULL;
}

/* The next span: 1 ([*from, *to)), 0 none left, -1 unterminated, -2
 * where the scan cannot tell what PostgreSQL finds. */
static int next_span(struct rscan *s, size_t *from, size_t *to)
{
	for (const char *p = s->p; p < s->end; p++) {
		const char *q = p;
		if (*p == '-' && p + 1 < s->end && p[1] == '-')
			for (q = p + 2; q < s->end && *q != '\n' && *q != '\r'; q++)
				;
		else if (*p == '/' && p + 1 < s->end && p[1] == '*')
			q = comment_end(s, p);
		else if (*p == '"')
			q = ident_end(s, p);
		else if (*p == '\'')
			q = string_end(s, p);
		else if (*p == '$' && (q = dollar_end(s, p)) != p && !token_start(s, p)) {
			if (p[-1] == '$' || (p[-1] >= '0' && p[-1] <= '9'))
				return -2; /* after a number, PostgreSQL starts one */
			q = p;             /* inside a name */
		}
		if (q == p)
			continue;
		if (!q)
			return -1;
		*from = (size_t)(p - s->text);
		*to = (size_t)(q - s->text);
		s->p = q;
		return 1;
	}
	return 0;
}

/* A byte outside ASCII before one of the ASCII bytes that SJIS, BIG5,
 * GBK, GB18030, UHC or JOHAB may take as a character's second (0x30 to
 * 0x7E) but a name's own (a letter, a digit, _): read in one of those,
 * the text may lose a backslash, or a name may swallow what starts a
 * quote ($, E'). */
static bool encoding_sensitive(const char *sql, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		unsigned char a = (unsigned char)sql[i], b = (unsigned char)sql[i + 1];
		if (a >= 0x80 && b >= 0x30 && b <= 0x7e && !ident_char(b))
			return true;
	}
	return false;
}

bool sqr_reads_alike(const char *sql, size_t len, bool encodings)
{
	if (encodings && encoding_sensitive(sql, len))
		return false;
	if (!memchr(sql, '\\', len))
		return true; /* backslashes are all that standard_conforming_strings changes */
	struct rscan on = { sql, sql, sql + len, false }, off = { sql, sql, sql + len, true };
	size_t f1, t1, f2, t2;
	int r1, r2;
	do {
		r1 = next_span(&on, &f1, &t1);
		r2 = next_span(&off, &f2, &t2);
		if (r1 != r2 || r1 == -2 || (r1 == 1 && (f1 != f2 || t1 != t2)))
			return false;
	} while (r1 == 1);
	return true;
}
