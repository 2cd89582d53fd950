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
	const char *table;   /* schema.table: with name, where an encrypted value is bound to */
	const char *subject; /* this column holds the id of a subject of this type */
	bool bytea;
};

struct pp_table {
	const struct pol_table *pt;
	const char *name; /* schema.table */
	uint32_t oid;
	struct pp_column *cols; /* by attnum - 1 */
	int16_t ncols;
	const char *subject_col, *subject; /* a column holding a subject's id, and its type */
};

/* A view (or materialized view) that reads a policy table. */
struct pp_view {
	const char *name; /* schema.view */
	uint32_t oid;
	const struct pp_table *t;
};

struct ppol {
	unsigned refs;
	struct policy *pol;
	struct catalog *cat;
	struct pp_table *t;
	size_t n;
	struct pp_view *views; /* one per (view, policy table) */
	size_t nviews;
	char **members; /* "member NUL role" pairs: who holds the policy's plaintext roles */
	size_t nmembers;
};

/* Loads the policy files and the catalog of the database at conninfo.
 * 0, or -errno with err saying why (no personal data in it). */
int ppol_load(const char *const *files, size_t nfiles, const char *conninfo, struct ppol **ret, char *err,
              size_t errlen) WUR;
/* Results mapped under an older policy keep it alive while they last. */
struct ppol *ppol_ref(struct ppol *pp);
void ppol_unref(struct ppol *pp);

const struct pp_table *ppol_by_oid(const struct ppol *pp, uint32_t oid);
/* A table named in a statement: schema NULL matches any schema (a policy
 * table is never missed through search_path). */
const struct pp_table *ppol_by_name(const struct ppol *pp, const char *schema, const char *name);
/* The policy tables a view (or materialized view) named in a statement
 * reads, through other views too: at most max of them into out; how many
 * there are. */
size_t ppol_view_tables(const struct ppol *pp, const char *schema, const char *name,
                        const struct pp_table **out, size_t max);
/* A policy table the view with this OID reads (RowDescription names the
 * view for its columns); NULL when it reads none. */
const struct pp_table *ppol_view_by_oid(const struct ppol *pp, uint32_t oid);
const struct pp_column *ppol_column(const struct pp_table *t, int16_t attnum);
const struct pp_column *ppol_column_named(const struct pp_table *t, const char *name);
/* Whether the database user reads column pc in clear: it is one of the
 * column's plaintext roles, or a member of one (pg_auth_members, as the
 * catalog was loaded; superuser alone is not enough). */
bool ppol_plaintext(const struct ppol *pp, const char *user, const struct pol_column *pc);

#endif
