/* proxy_policy.h - the policy as the proxy looks things up: by a result
 * column's table OID and attribute number (RowDescription), and by a
 * table name from a statement's analysis. Built from the policy files and
 * the customer database's catalog, again after DDL and on reload. */
#ifndef CUSTOS_PROXY_POLICY_H
#define CUSTOS_PROXY_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"
#include "policy.h"
#include "util.h"

struct pp_column {
	const struct pol_column *pc; /* NULL: not personal data itself */
	const char *name;
	const char *table;   /* the policy table: with pc->name, what an encrypted value is bound to */
	const char *rel;     /* schema.table as SQL names it: table, one inheriting it, or table renamed */
	const char *subject; /* this column holds the id of a subject of this type */
	const char *type;    /* format_type() */
	uint32_t type_oid;   /* its values' type in the binary format */
	bool generated;      /* COPY without a column list leaves it out */
	bool bytea;
	bool defaulted; /* PostgreSQL fills in a value a write leaves out (cat_column) */
};

struct pp_table {
	const struct pol_table *pt;
	const char *name; /* schema.table */
	uint32_t oid;
	struct pp_column *cols; /* by attnum - 1 */
	int16_t ncols;
	const char *subject_col, *subject; /* a column holding a subject's id, and its type */
	bool ancestor;                     /* a table pt inherits or is a partition of (at any depth) */
	bool resubjects; /* a trigger an INSERT fires may set the subject column: rows get their own keys */
	const struct pol_table *also; /* a second policy table it is related to (not written) */
};

/* A view (or materialized view) that reads a policy table. */
struct pp_view {
	const char *name; /* schema.view */
	uint32_t oid;
	const struct pp_table *t;
	const struct pp_column **cols; /* by the view's attnum - 1: t's column it shows as it is, or NULL */
	int16_t ncols;
	struct pp_origin { /* ... while the policy loads: the column of another view it shows */
		uint32_t oid;
		int16_t attnum;
	} * from;
};

/* What the database runs on a statement's behalf reaches (proxy_routines.c):
 * by policy table, PPR_* bits. */
enum {
	PPR_READ = 1,
	PPR_WRITE = 2,
	PPR_ENC = 4, /* writes into an encrypted column */
	PPR_MOVE = 8 /* updates the subject column of a table with encrypted columns */
};
struct pp_reach {
	uint8_t *t;         /* by index in ppol.t; NULL: nothing */
	const char *hidden; /* a routine or rule whose code cannot be seen (its label), or NULL */
	const char *enc;    /* a routine or rule that writes into an encrypted column, or NULL */
};

/* A function or procedure that reaches a policy table or hides its code. */
struct pp_routine {
	const char *name; /* schema.name: a statement's call matches every overload */
	struct pp_reach r;
};

/* A table (or view) whose writes run such routines (triggers, defaults,
 * checks) or write a policy table through a cascading foreign key. */
struct pp_runs {
	const char *table; /* schema.name */
	unsigned events;   /* SQI_EV_*: the writes that run it */
	bool rule;         /* its rules (which COPY FROM does not run), or the rest */
	struct pp_reach r;
};

struct sqb_routine;
struct ppol {
	unsigned refs;
	struct policy *pol;
	struct catalog *cat;
	struct pp_table *t;
	size_t n;
	struct pp_view *views; /* one per (view, policy table) */
	size_t nviews;
	struct pp_routine *routines;
	size_t nroutines;
	struct pp_runs *runs;
	size_t nruns;
	struct sqb_routine *analyses; /* of cat->routines, by index (the next load reuses them) */
	size_t nanalyses;
	uint8_t *fk_moves; /* by cat->fks: what a change of its referenced row carries into a
	                    * subject column (proxy_moves.c); NULL: no keys */
	char **members;    /* "member NUL role" pairs: who holds the policy's plaintext roles */
	size_t nmembers;
};

/* Loads the policy files and the catalog of the database at conninfo
 * (prev, the policy loaded before or NULL, gives up the analyses of the
 * routines whose definitions are unchanged). 0, or -errno with err saying
 * why (no personal data in it). */
int ppol_load(const char *const *files, size_t nfiles, const char *conninfo, struct ppol *prev,
              struct ppol **ret, char *err, size_t errlen) WUR;
/* Results mapped under an older policy keep it alive while they last. */
struct ppol *ppol_ref(struct ppol *pp);
void ppol_unref(struct ppol *pp);

const struct pp_table *ppol_by_oid(const struct ppol *pp, uint32_t oid);
/* Whether full (schema.name) is what a statement names: schema NULL
 * matches any schema. */
bool ppol_named(const char *full, const char *schema, const char *name);
/* A table named in a statement: schema NULL matches any schema (a policy
 * table is never missed through search_path). */
const struct pp_table *ppol_by_name(const struct ppol *pp, const char *schema, const char *name);
/* The policy tables a view (or materialized view) named in a statement
 * reads, through other views too: at most max of them into out; how many
 * there are. */
size_t ppol_view_tables(const struct ppol *pp, const char *schema, const char *name,
                        const struct pp_table **out, size_t max);
/* The policy table's column a view's column shows as it is, or NULL. */
const struct pp_column *ppol_view_column(const struct ppol *pp, uint32_t oid, int16_t attnum);
/* A policy table the view with this OID reads (RowDescription names the
 * view for its columns); NULL when it reads none. */
const struct pp_table *ppol_view_by_oid(const struct ppol *pp, uint32_t oid);
const struct pp_column *ppol_column(const struct pp_table *t, int16_t attnum);
const struct pp_column *ppol_column_named(const struct pp_table *t, const char *name);
/* Whether the database user reads column pc in clear: it is one of the
 * column's plaintext roles, or a member of one (pg_auth_members, as the
 * catalog was loaded; superuser alone is not enough). */
bool ppol_plaintext(const struct ppol *pp, const char *user, const struct pol_column *pc);

/* What the routines statement s calls, and those its writes run, reach:
 * 0 (out->t is then NULL or to be freed), or -ENOMEM. */
struct sqi_stmt;
int ppol_reach(const struct ppol *pp, const struct sqi_stmt *s, struct pp_reach *out) WUR;
/* Whether text (a DO block's body that does not parse) names a policy
 * table, a view over one, or a routine or table whose code reaches one. */
bool ppol_mentions(const struct ppol *pp, const char *text);
/* proxy_routines.c, for ppol_load and ppol_unref */
int ppol_index_routines(struct ppol *pp, struct ppol *prev) WUR;
/* proxy_moves.c: marks the catalog's foreign keys that carry a change into
 * the subject column of a table with encrypted columns (fk_moves). */
int ppol_index_moves(struct ppol *pp) WUR;
void ppol_free_routines(struct ppol *pp);

#endif
