/* sqlddl.c - the relations DDL makes or names anew, and the columns it
 * gives a default. The proxy knows what a relation reads and how its
 * columns map to the policy from the catalog, which shows DDL only once it
 * has committed: until then, statements of the same transaction that use
 * these names are refused (proxy_ddl.c); a default on an encrypted column
 * is refused at once (proxy_encrypt.c). And which DDL changes what code
 * statements run (code_ddl), and which fires event triggers. */
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

/* An expression that is NULL, perhaps cast: a default of no value. */
static bool null_const(json_t *e)
{
	json_t *cast;

	while ((cast = json_object_get(e, "TypeCast")))
		e = json_object_get(cast, "arg");
	return json_is_true(json_object_get(json_object_get(e, "A_Const"), "isnull"));
}

int sqi_default_add(struct sqi_stmt *st, const char *schema, const char *table, const char *column)
{
	if (!column)
		return 0;
	if (st->ndefaults == SQI_MAX_CALLS)
		return -E2BIG;
	struct sqi_default *v = realloc(st->defaults, (st->ndefaults + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	st->defaults = v;
	struct sqi_default *d = &v[st->ndefaults];
	*d = (struct sqi_default){ schema ? strdup(schema) : NULL, table ? strdup(table) : NULL,
		                   strdup(column) };
	if ((schema && !d->schema) || (table && !d->table) || !d->column)
		return free(d->schema), free(d->table), free(d->column), -ENOMEM;
	st->ndefaults++;
	return 0;
}

/* The i-th part of a qualified name, a list of String nodes. */
static const char *name_at(json_t *names, size_t i)
{
	return json_string_value(
	    json_object_get(json_object_get(json_array_get(names, i), "String"), "sval"));
}

static int rel_default(struct sqi_stmt *st, json_t *rv, const char *column)
{
	return sqi_default_add(st, json_string_value(json_object_get(rv, "schemaname")),
	                       json_string_value(json_object_get(rv, "relname")), column);
}

/* A type of PostgreSQL's own as the parser names it (pg_catalog.x, or
 * text and the like): not a domain, which may bring a default, nor
 * serial, which brings one. */
static bool builtin_type(json_t *type_name)
{
	static const char *const plain[] = { "text", "bytea", "varchar", "bpchar", "char" };
	json_t *names = json_object_get(type_name, "names");
	size_t n = json_array_size(names);
	const char *first = name_at(names, 0);

	if (n == 2 && first && !strcmp(first, "pg_catalog"))
		return true;
	for (size_t i = 0; n == 1 && first && i < ARRAY_SIZE(plain); i++)
		if (!strcmp(first, plain[i]))
			return true;
	return false;
}

/* Whether a column definition has PostgreSQL fill in values: a default
 * that is not NULL, a generated or identity column, a type that may
 * bring a default. */
static bool fills_in(json_t *coldef)
{
	json_t *c;
	size_t i;

	json_t *tn = json_object_get(coldef, "typeName"); /* none: a partition's, its parent's */
	if (tn && !builtin_type(tn))
		return true;
	json_array_foreach(json_object_get(coldef, "constraints"), i, c)
	{
		json_t *k = json_object_get(c, "Constraint");
		const char *type = json_string_value(json_object_get(k, "contype"));
		if (type &&
		    (!strcmp(type, "CONSTR_GENERATED") || !strcmp(type, "CONSTR_IDENTITY") ||
		     (!strcmp(type, "CONSTR_DEFAULT") && !null_const(json_object_get(k, "raw_expr")))))
			return true;
	}
	return false;
}

/* A column definition of relation rv that fills values in: the column
 * of rv, and of each of its parents (a child's column of the same name
 * is theirs). */
static int column_def(struct sqi_stmt *st, json_t *rv, json_t *parents, json_t *coldef)
{
	const char *name = json_string_value(json_object_get(coldef, "colname"));
	json_t *p;
	size_t i;
	int err = coldef && fills_in(coldef) ? rel_default(st, rv, name) : 0;

	json_array_foreach(parents, i, p)
	{
		if (!err && coldef && fills_in(coldef))
			err = rel_default(st, json_object_get(p, "RangeVar"), name);
	}
	return err;
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

/* Whether an ALTER TABLE subcommand turns a trigger or a rule on
 * (AT_EnableTrig, AT_EnableAlwaysRule, AT_EnableTrigAll, ...): a write to
 * the table runs code the catalog read did not see. (Turning one off, or
 * row-level security on, adds none.) */
static bool toggles(const char *sub)
{
	return !strncmp(sub, "AT_Enable", 9) && (strstr(sub, "Trig") || strstr(sub, "Rule"));
}

/* CREATE AGGREGATE and CREATE OPERATOR define code a statement runs by
 * using them; other DefineStmts (types, collations) not. */
static int defined(struct sqi_stmt *st, json_t *body)
{
	const char *kind = json_string_value(json_object_get(body, "kind"));

	if (kind && (!strcmp(kind, "OBJECT_AGGREGATE") || !strcmp(kind, "OBJECT_OPERATOR")))
		st->code_ddl |= SQI_CODE_ANY;
	return 0;
}

/* A routine made: only statements naming it run it, unless it replaces
 * one that operators, casts, views or policies may run. */
static int function_made(struct sqi_stmt *st, json_t *body)
{
	st->code_ddl |= json_is_true(json_object_get(body, "replace")) ? SQI_CODE_ANY : SQI_CODE_NAMED;
	return 0;
}

/* CREATE or ALTER POLICY: what a read of its table runs changes, as if
 * the table were made anew. */
static int policy(struct sqi_stmt *st, json_t *body)
{
	return made(st, json_object_get(body, "table"));
}

/* ALTER TABLE: a table made to inherit another, or attached as a
 * partition: both tables (a write into the parent goes into the child); a
 * column added (the table, and the column in st->columns); a trigger or
 * rule turned on (code_ddl). */
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
		st->code_ddl |= sub && toggles(sub) ? SQI_CODE_ANY : 0;
		if (sub && !strcmp(sub, "AT_AddColumn") && col)
			err = sqi_name_add(&st->columns, &st->ncolumns, NULL, col) ?: made(st, rel)
			          ?: column_def(st, rel, NULL, json_object_get(def, "ColumnDef"));
		else if (sub && !strcmp(sub, "AT_ColumnDefault") && def && !null_const(def))
			err = rel_default(st, rel, json_string_value(json_object_get(c, "name")));
		else if (sub && !strcmp(sub, "AT_AlterColumnType")) /* USING computes every value */
			err = rel_default(st, rel, json_string_value(json_object_get(c, "name")));
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
	json_array_foreach(json_object_get(body, "tableElts"), i, p)
	{
		if (!err)
			err = column_def(st, json_object_get(body, "relation"), parents,
			                 json_object_get(p, "ColumnDef"));
	}
	return err;
}

/* ALTER DOMAIN ... SET DEFAULT: every column of the domain defaults to it. */
static int domain_default(struct sqi_stmt *st, json_t *body)
{
	json_t *names = json_object_get(body, "typeName"), *def = json_object_get(body, "def");
	size_t n = json_array_size(names);
	const char *type = json_string_value(json_object_get(body, "subtype"));

	if (!type || strcmp(type, "T") || !def || null_const(def) || !n)
		return 0;
	return sqi_default_add(st, n > 1 ? name_at(names, n - 2) : NULL, NULL, name_at(names, n - 1));
}

/* CREATE SCHEMA s CREATE VIEW v ...: each element, its unqualified names
 * in s. */
static int schema_elements(struct sqi_stmt *st, json_t *body)
{
	const char *schema = json_string_value(json_object_get(body, "schemaname"));
	json_t *e;
	size_t i, from = st->nmade, defaults_from = st->ndefaults;

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
	for (i = defaults_from; schema && i < st->ndefaults; i++)
		if (!st->defaults[i].schema && !(st->defaults[i].schema = strdup(schema)))
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

static int select_into(struct sqi_stmt *st, json_t *body)
{
	st->select_into = json_object_get(body, "intoClause") != NULL;
	return 0;
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

bool sqi_fires_event_triggers(const struct sqi_stmt *s)
{
	static const char *const quiet[] = {
		"TransactionStmt",
		"VariableSetStmt",
		"VariableShowStmt",
		"DiscardStmt",
		"PrepareStmt",
		"ExecuteStmt",
		"DeallocateStmt",
		"DeclareCursorStmt",
		"FetchStmt",
		"ClosePortalStmt",
		"ListenStmt",
		"NotifyStmt",
		"UnlistenStmt",
		"LockStmt",
		"VacuumStmt",
		"ClusterStmt",
		"ReindexStmt",
		"CheckPointStmt",
		"LoadStmt",
		"ExplainStmt",
		"CallStmt",
		"TruncateStmt",
		"ConstraintsSetStmt",
		"CreatedbStmt",
		"DropdbStmt",
		"AlterDatabaseStmt",
		"AlterDatabaseSetStmt",
		"CreateRoleStmt",
		"AlterRoleStmt",
		"AlterRoleSetStmt",
		"DropRoleStmt",
		"GrantRoleStmt",
		"CreateTableSpaceStmt",
		"DropTableSpaceStmt",
		"AlterTableSpaceOptionsStmt",
		"CreateEventTrigStmt",
		"AlterEventTrigStmt",
		"AlterSystemStmt",
	};

	const char *node = s->kind == SQI_OTHER && s->normalized ? s->normalized : "";

	if (!strcmp(node, "DoStmt"))
		return s->body_ddl;
	if (s->nmade || s->select_into)
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(quiet); i++)
		if (!strcmp(node, quiet[i]))
			return false;
	return s->kind == SQI_OTHER;
}

bool sqi_evaluates(const struct sqi_stmt *s)
{
	static const char *const nodes[] = { "DoStmt",      "CallStmt",          "ExecuteStmt",
		                             "ExplainStmt", "CreateTableAsStmt", "DeclareCursorStmt",
		                             "FetchStmt",   "AlterTableStmt",    "RefreshMatViewStmt",
		                             "IndexStmt" };

	for (size_t i = 0; s->kind == SQI_OTHER && s->normalized && i < ARRAY_SIZE(nodes); i++)
		if (!strcmp(s->normalized, nodes[i]))
			return true;
	return s->kind != SQI_OTHER;
}

/* A routine, operator or type renamed or moved to another schema: the
 * names statements use for code change. */
static bool code_renamed(const char *node, json_t *body)
{
	static const char *const code[] = { "OBJECT_FUNCTION",  "OBJECT_PROCEDURE", "OBJECT_ROUTINE",
		                            "OBJECT_AGGREGATE", "OBJECT_OPERATOR",  "OBJECT_TYPE",
		                            "OBJECT_DOMAIN" };
	const char *type = json_string_value(
	    json_object_get(body, !strcmp(node, "RenameStmt") ? "renameType" : "objectType"));

	for (size_t i = 0; type && i < ARRAY_SIZE(code); i++)
		if (!strcmp(type, code[i]))
			return true;
	return false;
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
		    { "TransactionStmt", two_phase },
		    { "AlterDomainStmt", domain_default },
		    { "DefineStmt", defined },
		    { "CreateFunctionStmt", function_made },
		    { "SelectStmt", select_into },
		    { "CreatePolicyStmt", policy },
		    { "AlterPolicyStmt", policy } };

	static const struct {
		const char *node;
		unsigned code;
	} code[] = {
		{ "AlterFunctionStmt", SQI_CODE_ANY },      { "CreateTrigStmt", SQI_CODE_NAMED },
		{ "CreateCastStmt", SQI_CODE_UNNAMED },     { "CreatePolicyStmt", SQI_CODE_UNNAMED },
		{ "AlterPolicyStmt", SQI_CODE_UNNAMED },    { "CreateEventTrigStmt", SQI_CODE_UNNAMED },
		{ "AlterEventTrigStmt", SQI_CODE_UNNAMED }, { "CreateExtensionStmt", SQI_CODE_ANY },
		{ "AlterExtensionStmt", SQI_CODE_ANY },     { "AlterExtensionContentsStmt", SQI_CODE_ANY }
	};

	if ((!strcmp(node, "RenameStmt") || !strcmp(node, "AlterObjectSchemaStmt")) &&
	    code_renamed(node, body))
		st->code_ddl |= SQI_CODE_ANY;
	for (size_t i = 0; i < ARRAY_SIZE(code); i++)
		if (!strcmp(node, code[i].node))
			st->code_ddl |= code[i].code;
	for (size_t i = 0; i < ARRAY_SIZE(ddl); i++)
		if (!strcmp(node, ddl[i].node))
			return ddl[i].of(st, body);
	return 0;
}
