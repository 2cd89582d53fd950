/* sqlreading.c - statements that change how PostgreSQL reads the ones
 * after them (sqlreading.h). Read from the parse of each text, not from
 * its cached analysis, which is shared by texts differing in constants
 * alone: set_config(E'standard\137conforming_strings', ...) and
 * set_config('app.user', ...) would share one. */
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

/* set_config(setting, ...), pg_catalog's, whose setting is not a
 * constant (named notation included) or is a reading setting. */
static bool sets_reading(json_t *call)
{
	const char *schema, *name;
	json_t *first = json_array_get(json_object_get(call, "args"), 0);
	const char *setting = json_string_value(
	    json_object_get(json_object_get(json_object_get(first, "A_Const"), "sval"), "sval"));

	sqi_call_name(call, &schema, &name);
	return name && !strcmp(name, "set_config") && (!schema || !strcmp(schema, "pg_catalog")) &&
	       (!setting || reading_setting(setting));
}

static bool walk(json_t *node, int depth)
{
	const char *key;
	json_t *v;
	size_t i;

	if (depth > 1000)
		return true;
	json_array_foreach(node, i, v)
	{
		if (walk(v, depth + 1))
			return true;
	}
	json_object_foreach(node, key, v)
	{
		if (((!strcmp(key, "FuncCall") || !strcmp(key, "funccall")) && sets_reading(v)) ||
		    ((!strcmp(key, "VariableSetStmt") || !strcmp(key, "setstmt")) && /* ALTER SYSTEM's */
		     reading_setting(json_string_value(json_object_get(v, "name")))))
			return true;
		if ((json_is_object(v) || json_is_array(v)) && walk(v, depth + 1))
			return true;
	}
	return false;
}

bool sqr_node_changes_reading(json_t *node)
{
	return walk(node, 0);
}

bool sqr_changes_reading(const char *sql)
{
	PgQueryParseResult p = pg_query_parse(sql);
	json_t *tree = p.error ? NULL : json_loads(p.parse_tree, 0, NULL);
	bool r = !tree || walk(tree, 0);

	json_decref(tree);
	pg_query_free_parse_result(p);
	return r;
}
