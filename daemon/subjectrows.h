/* subjectrows.h - reading one data subject's rows: for each policy table
 * the subject map (subjectmap.h) reaches, the chosen columns of the rows
 * that lead to the subject's root row. Used to find the keys of the
 * subject's values (keys shred), for access reports and for erasure. */
#ifndef CUSTOS_SUBJECTROWS_H
#define CUSTOS_SUBJECTROWS_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "pgconn.h"
#include "policy.h"
#include "subjectmap.h"

/* A connection to the customer database (or the keystore) whose text
 * comes and goes as UTF-8, whatever the database's default client
 * encoding: the plaintext inside a ciphertext is UTF-8 (pgencoding.h). */
static inline PGconn *srw_connect(const char *conninfo, const char *app)
{
	return pgc_connect(conninfo, app, "UTF8");
}

/* Called with each table's rows: r has one field per column in cols. A
 * nonzero return stops the walk and is returned. */
typedef int (*srw_fn)(void *arg, const struct pol_table *t, const struct pol_column *const *cols,
                      size_t ncols, PGresult *r);

/* The columns want() accepts, of every table (tables with none are
 * skipped, and so are tables of other subject types). 0; -EIO with err
 * naming the table (never a value); or fn's return. */
int srw_each(PGconn *db, const struct policy *p, const struct sm_map *m, const char *id,
             bool (*want)(const struct pol_column *c), srw_fn fn, void *arg, char *err, size_t errlen) WUR;

/* How srw_rows reads: with each row's place first (field 0, SRW_ROW_AT),
 * and locked FOR UPDATE (inside the caller's transaction). */
enum { SRW_ROW = 1, SRW_LOCK = 2 };

/* The place of a row of rel, as text: its table's OID and its ctid there,
 * "oid/ctid" (the rows of tables inheriting a policy table are read with
 * it, and a ctid is a place in its own table only); SRW_ROW_AT, of j0.
 * SRW_IS_AT(rel, at) is a condition true of the row of rel at that place
 * (a TID scan). */
#define SRW_PLACE(rel) rel ".tableoid::text || '/' || " rel ".ctid::text"
#define SRW_ROW_AT SRW_PLACE("j0")
#define SRW_IS_AT(rel, at)                                                                                   \
	rel ".ctid = split_part(" at ", '/', 2)::tid AND " rel ".tableoid = split_part(" at ", '/', 1)::oid"

int srw_rows(PGconn *db, const struct policy *p, const struct sm_map *m, const char *id,
             bool (*want)(const struct pol_column *c), unsigned flags, srw_fn fn, void *arg, char *err,
             size_t errlen) WUR;

/* A database error, safe to show: data exceptions quote values, so
 * only their SQLSTATE is given. */
const char *srw_db_error(const PGresult *r, char *out, size_t n);

#endif
