/* sqlddl.c - the relations DDL makes or names anew. The proxy knows what a
 * relation reads and how its columns map to the policy from the catalog,
 * which shows DDL only once it has committed: until then, statements of
 * the same transaction that use these names are refused (proxy_ddl.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sqlinfo_int.h"

static int made(struct sqi_stmt *st, json_t *rv)
{
	const char *name = json_string_value(json_object_get(rv, "relname"));

	return name ? sqi_name_add(&st->made, &st->nmade,
	                           json_string_value(json_object_get(rv, "schemaname")), name)
	            : 0;
}

/* ALTER ... RENAME: a relation (its new name, in its schema), a column
 * (the relation is no longer what the catalog says; both names in
 * st->columns), a schema (every relation in it: name NULL). */
static int renamed(struct sqi_stmt *st, json_t *body)
{
	static const char *const relations[] = { "OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW",
		                                 "OBJECT_FOREIGN_TABLE" };
	const char *type = json_string_value(json_object_get(body, "renameType"));
	const char *to = json_string_value(json_object_get(body, "newname"));
	json_t *rel = json_object_get(body, "relation");

	if (!type || !to)
		return 0;
	if (!strcmp(type, "OBJECT_SCHEMA"))
		return sqi_name_add(&st->made, &st->nmade, to, NULL);
	if (!strcmp(type, "OBJECT_COLUMN")) {
		const char *from = json_string_value(json_object_get(body, "subname"));
		int err = from ? sqi_name_add(&st->columns, &st->ncolumns, NULL, from) : 0;
		return err ?: sqi_name_add(&st->columns, &st->ncolumns, NULL, to) ?: made(st, rel);
	}
	for (size_t i = 0; i < ARRAY_SIZE(relations); i++)
		if (!strcmp(type, relations[i]))
			return sqi_name_add(&st->made, &st->nmade,
			                    json_string_value(json_object_get(rel, "schemaname")), to);
	return 0;
}

/* ALTER TABLE: a table made to inherit another, or attached as a
 * partition: both tables (a write into the parent goes into the child); a
 * column added (the table, and the column in st->columns). */
static int altered(struct sqi_stmt *st, json_t *body)
{
	json_t *cmd, *rel = json_object_get(body, "relation");
	size_t i;
	int err = 0;

	json_array_foreach(json_object_get(body, "cmds"), i, cmd)
	{
		json_t *c = json_object_get(cmd, "AlterTableCmd"), *def = json_object_get(c, "def");
		const char *sub = json_string_value(json_object_get(c, "subtype"));
		const char *col =
		    json_string_value(json_object_get(json_object_get(def, "ColumnDef"), "colname"));
		if (sub && !strcmp(sub, "AT_AddColumn") && col)
			err = sqi_name_add(&st->columns, &st->ncolumns, NULL, col) ?: made(st, rel);
		else if (sub && !strcmp(sub, "AT_AddInherit"))
			err = made(st, rel) ?: made(st, json_object_get(def, "RangeVar"));
		else if (sub && !strcmp(sub, "AT_AttachPartition"))
			err = made(st, rel)
			          ?: made(st, json_object_get(json_object_get(def, "PartitionCmd"), "name"));
		if (err)
			return err;
	}
	return 0;
}

/* CREATE TABLE ... INHERITS, PARTITION OF: the table and its parents. */
static int created(struct sqi_stmt *st, json_t *body)
{
	json_t *parents = json_object_get(body, "inhRelations"), *p;
	size_t i;
	int err = json_array_size(parents) ? made(st, json_object_get(body, "relation")) : 0;

	json_array_foreach(parents, i, p)
	{
		if (!err)
			err = made(st, json_object_get(p, "RangeVar"));
	}
	return err;
}

/* CREATE SCHEMA s CREATE VIEW v ...: each element, its unqualified names
 * in s. */
static int schema_elements(struct sqi_stmt *st, json_t *body)
{
	const char *schema = json_string_value(json_object_get(body, "schemaname"));
	json_t *e;
	size_t i, from = st->nmade;

	json_array_foreach(json_object_get(body, "schemaElts"), i, e)
	{
		const char *node;
		json_t *b;
		json_object_foreach(e, node, b)
		{
			int err = sqi_made(st, node, b);
			if (err)
				return err;
		}
	}
	for (i = from; schema && i < st->nmade; i++)
		if (!st->made[i].schema && !(st->made[i].schema = strdup(schema)))
			return -ENOMEM;
	return 0;
}

/* PREPARE TRANSACTION, COMMIT or ROLLBACK PREPARED: two-phase commit, in
 * which DDL commits apart from its session. */
static int two_phase(struct sqi_stmt *st, json_t *body)
{
	const char *kind = json_string_value(json_object_get(body, "kind"));

	st->tx_prepare = kind && !strcmp(kind, "TRANS_STMT_PREPARE");
	st->tx_prepared_end = kind && (!strcmp(kind, "TRANS_STMT_COMMIT_PREPARED") ||
	                               !strcmp(kind, "TRANS_STMT_ROLLBACK_PREPARED"));
	return 0;
}

static int view(struct sqi_stmt *st, json_t *body)
{
	return made(st, json_object_get(body, "view"));
}

static int matview(struct sqi_stmt *st, json_t *body) /* CREATE TABLE AS too */
{
	const char *type = json_string_value(json_object_get(body, "objtype"));

	return type && !strcmp(type, "OBJECT_MATVIEW")
	           ? made(st, json_object_get(json_object_get(body, "into"), "rel"))
	           : 0;
}

static int rule(struct sqi_stmt *st, json_t *body)
{
	return made(st, json_object_get(body, "relation"));
}

static int moved(struct sqi_stmt *st, json_t *body) /* ALTER ... SET SCHEMA */
{
	const char *to = json_string_value(json_object_get(body, "newschema"));
	const char *name = json_string_value(json_object_get(json_object_get(body, "relation"), "relname"));

	return to && name ? sqi_name_add(&st->made, &st->nmade, to, name) : 0;
}

int sqi_made(struct sqi_stmt *st, const char *node, json_t *body)
{
	static const struct {
		const char *node;
		int (*of)(struct sqi_stmt *st, json_t *body);
	} ddl[] = { { "ViewStmt", view },
		    { "CreateTableAsStmt", matview },
		    { "CreateStmt", created },
		    { "CreateSchemaStmt", schema_elements },
		    { "RuleStmt", rule },
		    { "AlterObjectSchemaStmt", moved },
		    { "RenameStmt", renamed },
		    { "AlterTableStmt", altered },
		    { "TransactionStmt", two_phase } };

	for (size_t i = 0; i < ARRAY_SIZE(ddl); i++)
		if (!strcmp(node, ddl[i].node))
			return ddl[i].of(st, body);
	return 0;
}
