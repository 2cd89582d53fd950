/* subjectrows.c - see subjectrows.h */
#include "subjectrows.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *srw_db_error(const PGresult *r, char *out, size_t n)
{
	const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

	/* data exceptions quote the offending value, and its DETAIL the row:
	 * neither may reach a message */
	if (code && !strncmp(code, "22", 2))
		snprintf(out, n, "a value does not fit its column's type (SQLSTATE %s)", code);
	else
		snprintf(out, n, "%s (SQLSTATE %s)", msg ? msg : "error", code ? code : "?");
	return out;
}

static int one_table(PGconn *db, const struct pol_table *t, const struct sm_map *m, const char *id,
                     bool (*want)(const struct pol_column *), unsigned flags, srw_fn fn, void *arg, char *err,
                     size_t errlen)
{
	const struct pol_column *cols[256];
	struct buf sql = BUF_INIT, root = BUF_INIT;
	size_t n = 0;

	buf_adds(&sql, flags & SRW_ROW ? "SELECT " SRW_ROW_AT : "SELECT ");
	for (size_t c = 0; c < t->ncols; c++) {
		if (!want(&t->cols[c]))
			continue;
		if (n == ARRAY_SIZE(cols)) {
			snprintf(err, errlen, "%s has more than %zu personal columns", t->name,
			         ARRAY_SIZE(cols));
			buf_free(&sql);
			return -E2BIG;
		}
		buf_adds(&sql, n || (flags & SRW_ROW) ? ", j0." : "j0.");
		sm_quote_ident(&sql, t->cols[c].name);
		cols[n++] = &t->cols[c];
	}
	int r = n ? sm_from(m, t->name, &sql, &root) : 0;
	if (r == -ENOENT || !n) {
		r = 0; /* another subject type's table, or nothing wanted */
	} else if (!r) {
		buf_adds(&sql, " WHERE ");
		buf_add(&sql, root.p, root.len);
		buf_adds(&sql, flags & SRW_LOCK ? " = $1 FOR UPDATE OF j0" : " = $1");
		buf_addc(&sql, 0);
		PGresult *res = sql.failed ? NULL : PQexecParams(db, sql.p, 1, NULL, &id, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			char e[512];
			snprintf(err, errlen, "reading %s: %s", t->name,
			         res ? srw_db_error(res, e, sizeof(e)) : "out of memory");
			r = -EIO;
		} else {
			r = fn(arg, t, cols, n, res);
		}
		PQclear(res);
	}
	buf_free(&sql);
	buf_free(&root);
	return r;
}

int srw_rows(PGconn *db, const struct policy *p, const struct sm_map *m, const char *id,
             bool (*want)(const struct pol_column *c), unsigned flags, srw_fn fn, void *arg, char *err,
             size_t errlen)
{
	int r = 0;

	for (size_t t = 0; !r && t < p->ntables; t++)
		r = one_table(db, &p->tables[t], m, id, want, flags, fn, arg, err, errlen);
	return r;
}

int srw_each(PGconn *db, const struct policy *p, const struct sm_map *m, const char *id,
             bool (*want)(const struct pol_column *c), srw_fn fn, void *arg, char *err, size_t errlen)
{
	return srw_rows(db, p, m, id, want, 0, fn, arg, err, errlen);
}
