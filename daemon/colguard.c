/* colguard.c - see colguard.h. The constraint is found by its name's
 * prefix and its one column (conkey), so it is still found after the
 * column or the table is renamed; an inheriting table's copy counts. A
 * name another column's guard took (before a rename) gives way to one
 * with the column's attnum.
 *
 * Adding it takes the table's ACCESS EXCLUSIVE lock, and a statement
 * waiting for that lock holds up every other one on the table: it waits
 * LOCK_TIMEOUT at most, then the column stays unguarded (-EAGAIN). */
#define _GNU_SOURCE
#include "colguard.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "subjectmap.h"
#include "subjectrows.h"

#define NAME_MAX_BYTES 63 /* NAMEDATALEN - 1: PostgreSQL would cut a longer name */
#define LOCK_TIMEOUT "5s"

/* The column's attnum, its guard's name and whether it is validated, and
 * whether the name $3 is another constraint's of the table. */
static const char state_sql[] =
    "SELECT a.attnum, k.conname, k.convalidated, "
    " EXISTS (SELECT FROM pg_constraint t WHERE t.conrelid = a.attrelid AND t.conname = $3) "
    "FROM pg_attribute a "
    "LEFT JOIN pg_constraint k ON k.conrelid = a.attrelid AND k.contype = 'c' "
    " AND k.conkey = ARRAY[a.attnum] AND k.conname LIKE 'custos\\_encrypted\\_%' "
    "WHERE a.attrelid = $1::regclass AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped "
    "ORDER BY k.convalidated DESC NULLS LAST LIMIT 1";

/* Runs sql with params; 0, or -EIO with err naming what failed. */
static int run(PGconn *db, const char *sql, int n, const char *const *v, PGresult **ret, char *err,
               size_t errlen)
{
	PGresult *r = PQexecParams(db, sql, n, NULL, v, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		if (ret)
			*ret = r;
		else
			PQclear(r);
		return 0;
	}
	char e[400];
	const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	int rc = code && !strcmp(code, "55P03") ? -EAGAIN : code && !strcmp(code, "23514") ? -EBADMSG : -EIO;
	snprintf(err, errlen, "%s", r ? srw_db_error(r, e, sizeof(e)) : PQerrorMessage(db));
	PQclear(r);
	return rc;
}

/* The ALTER TABLE that adds the guard, named name. */
static void add_sql(struct buf *sql, const char *table, const char *column, const char *name)
{
	buf_adds(sql, "ALTER TABLE ");
	sm_quote(sql, table);
	buf_adds(sql, " ADD CONSTRAINT ");
	sm_quote_ident(sql, name);
	buf_adds(sql, " CHECK (");
	sm_quote_ident(sql, column);
	buf_adds(sql, " ~ " CG_GUARDED ") NOT VALID");
}

/* Adds the guard, or with validate checks the rows already there. */
static int alter(PGconn *db, const char *table, const char *column, const char *name, bool validate,
                 char *err, size_t errlen)
{
	struct buf sql = BUF_INIT;

	if (validate) {
		buf_adds(&sql, "ALTER TABLE ");
		sm_quote(&sql, table);
		buf_adds(&sql, " VALIDATE CONSTRAINT ");
		sm_quote_ident(&sql, name);
	} else {
		add_sql(&sql, table, column, name);
	}
	buf_addc(&sql, 0);
	int r = sql.failed ? -ENOMEM
	                   : run(db, "SET lock_timeout = '" LOCK_TIMEOUT "'", 0, NULL, NULL, err, errlen);
	if (!r)
		r = run(db, sql.p, 0, NULL, NULL, err, errlen);
	if (r == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (r == -EAGAIN)
		snprintf(err, errlen,
		         "its table's lock was not had within " LOCK_TIMEOUT
		         " (a transaction holds the table): run it again");
	if (r == -EBADMSG)
		snprintf(err, errlen,
		         "rows already there hold plaintext (or another value than a ciphertext)");
	PQclear(PQexec(db, "RESET lock_timeout"));
	buf_free(&sql);
	return r;
}

int cg_guard(PGconn *db, const char *table, const char *column, enum cat_guard *state, char *err,
             size_t errlen)
{
	struct buf rel = BUF_INIT;
	PGresult *r = NULL;
	char name[NAME_MAX_BYTES + 1];

	sm_quote(&rel, table);
	buf_addc(&rel, 0);
	snprintf(name, sizeof(name), CG_PREFIX "%s", column);
	const char *v[] = { rel.failed ? "" : rel.p, column, name };
	int rc = run(db, state_sql, 3, v, &r, err, errlen);
	buf_free(&rel);
	if (rc)
		return rc;
	if (PQntuples(r) != 1) {
		snprintf(err, errlen, "column %s.%s is not in the database", table, column);
		PQclear(r);
		return -EIO;
	}
	*state = PQgetisnull(r, 0, 1)          ? CAT_UNGUARDED
	         : *PQgetvalue(r, 0, 2) == 't' ? CAT_GUARD_ALL_ROWS
	                                       : CAT_GUARD_NEW_ROWS;
	if (*state != CAT_UNGUARDED)
		snprintf(name, sizeof(name), "%s", PQgetvalue(r, 0, 1));
	else if (strlen(CG_PREFIX) + strlen(column) > NAME_MAX_BYTES || *PQgetvalue(r, 0, 3) == 't')
		snprintf(name, sizeof(name), CG_PREFIX "%s", PQgetvalue(r, 0, 0)); /* its attnum */
	PQclear(r);
	if (*state == CAT_UNGUARDED && !(rc = alter(db, table, column, name, false, err, errlen)))
		*state = CAT_GUARD_NEW_ROWS;
	if (!rc && *state == CAT_GUARD_NEW_ROWS && !(rc = alter(db, table, column, name, true, err, errlen)))
		*state = CAT_GUARD_ALL_ROWS;
	return rc;
}

#define NAMED_MAX 5 /* unguarded columns named in the sentence */

size_t cg_unguarded(const struct policy *p, const struct catalog *cat, struct buf *say)
{
	struct buf names = BUF_INIT;
	size_t n = 0;

	for (size_t i = 0; i < p->ntables; i++) {
		const struct pol_table *t = &p->tables[i];
		const struct cat_table *ct = cat_table(cat, t->name);
		for (size_t j = 0; ct && j < t->ncols; j++) {
			const struct cat_column *cc = cat_column(ct, t->cols[j].name);
			bool text =
			    cc && (!strcmp(cc->type, "text") || !strncmp(cc->type, "character varying", 17));
			if (!t->cols[j].encrypt || !text || cc->guard != CAT_UNGUARDED)
				continue; /* (encrypt-existing guards text columns only) */
			if (n++ < NAMED_MAX)
				buf_printf(&names, "%s%s.%s", n > 1 ? ", " : "", t->name, cc->name);
		}
	}
	if (n > NAMED_MAX)
		buf_printf(&names, " and %zu more", n - NAMED_MAX);
	if (n)
		buf_printf(say,
		           "%zu encrypted column%s not guarded by the database (%.*s): plaintext written "
		           "past the proxy would be stored there; `custosctl encrypt-existing` guards each "
		           "once it is encrypted",
		           n, n == 1 ? " is" : "s are", (int)names.len, names.p ? names.p : "");
	buf_free(&names);
	return n;
}
