/* catalog.h - what PostgreSQL's catalog says about the customer database:
 * tables, their columns and types, and the foreign keys between them.
 * Loaded with libpq; the policy is bound to it (policy_bind.c), the proxy
 * matches result columns to it. */
#ifndef CUSTOS_CATALOG_H
#define CUSTOS_CATALOG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Whether the database itself refuses plaintext in a column (colguard.h). */
enum cat_guard {
	CAT_UNGUARDED,
	CAT_GUARD_NEW_ROWS, /* NOT VALID: rows written from now on; rows already there unchecked */
	CAT_GUARD_ALL_ROWS,
};

struct cat_column {
	char *name;
	char *type; /* format_type(): "text", "character varying(20)", "bytea", ... */
	int attnum;
	bool notnull;
	bool defaulted; /* a default or generated expression (its own or its domain's) */
	enum cat_guard guard;
	uint32_t type_oid; /* its type's, or its domain's base type's: what the binary format sends */
	bool generated;    /* COPY without a column list leaves it out */
	bool bytewise;     /* no collation, or a deterministic one (text: equal values are equal bytes) */
};

struct cat_table {
	char *name; /* schema.table */
	uint32_t oid;
	struct cat_column *cols;
	size_t ncols;
};

/* One column pair of a foreign key: from references to. */
struct cat_fk {
	char *from_table, *from_column, *to_table, *to_column;
	char on_delete, on_update; /* pg_constraint's confdeltype, confupdtype: a, r, c, n, d */
	uint32_t con;              /* the constraint (a key of several columns is a row each) */
};

/* A stored generated column is computed from another column of its
 * table: a write of that one changes it. */
struct cat_generated {
	char *table, *column, *from; /* (table named as in cat_fk) */
};

/* A view (or materialized view) reads a table: directly, or through
 * other views. */
struct cat_view_dep {
	char *view, *table; /* schema.name */
	uint32_t oid;       /* the view's (RowDescription names it) */
};

/* A function or procedure of the database's own (not the system's, not
 * an extension's): what it runs, as pg_get_functiondef() prints it. */
struct cat_routine {
	char *name; /* schema.name (overloads share it); a rule's is "": nothing calls it */
	uint32_t oid;
	char *def;   /* CREATE OR REPLACE FUNCTION ..., or a rule's CREATE RULE ... */
	bool rule;   /* a rewrite rule (an INSERT, UPDATE or DELETE rule), whose OID is pg_rewrite's */
	char *label; /* for messages: "the routine shop.f", "the rule r on shop.t" */
};

/* A writing statement on a table (or a view) runs a routine: one of its
 * triggers, or a function its column defaults or checks call. */
struct cat_runs {
	char *table; /* schema.name */
	uint32_t routine;
	unsigned events; /* SQI_EV_* (sqlinfo.h): the writes that run it (SQI_EV_READ: the reads) */
	bool rule;       /* routine is a rule's OID */
	bool before_row; /* a BEFORE ... FOR EACH ROW trigger: what it stores in NEW is the row written */
};

/* A table inherits another, or is a partition of it (pg_inherits). */
struct cat_inherit {
	uint32_t child, parent;
};

struct catalog {
	struct cat_table *tables;
	size_t ntables;
	struct cat_inherit *inherits;
	size_t ninherits;
	struct cat_fk *fks;
	size_t nfks;
	struct cat_generated *gens;
	size_t ngens;
	struct cat_view_dep *views;
	size_t nviews;
	struct cat_routine *routines;
	size_t nroutines;
	struct cat_runs *runs;
	size_t nruns;
	struct cat_table **by_name, **by_oid; /* the tables sorted, for cat_table(), cat_table_by_oid() */
};

/* Reads the catalog of the database conn is connected to (user schemas
 * only). 0, or -EIO with err set to the server's message. */
int cat_load(PGconn *conn, struct catalog **ret, char *err, size_t errlen) WUR;
void cat_free(struct catalog *c);
/* A table by name or OID (binary searches), or NULL. */
const struct cat_table *cat_table(const struct catalog *c, const char *name);
const struct cat_table *cat_table_by_oid(const struct catalog *c, uint32_t oid);
const struct cat_column *cat_column(const struct cat_table *t, const char *name);

#endif
