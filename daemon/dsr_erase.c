/* dsr_erase.c - erasure (GDPR Art. 17, CCPA right to delete). The plan
 * gives every policy column of every table the subject's rows reach an
 * action, from its `erase:` key:
 *
 *   delete_row    the table's rows are deleted (children before parents),
 *                 unless the table keeps a retained column: then anonymised
 *   anonymize     NULL, or for a NOT NULL column a value of its type that
 *                 says nothing: X's of the same length, 0, false, the year
 *   crypto_shred  the value stays, its key is destroyed; a value not yet
 *                 encrypted is anonymised instead (destroying a key would
 *                 not erase it)
 *   retain        kept until its date under its legal basis; an encrypted
 *                 one is re-encrypted under a key of its own, so that it
 *                 outlives the subject's keys
 *
 * and each erased column's blind index is cleared. The changes run in one
 * transaction of the customer database, recorded before they commit;
 * then the subject's keys are destroyed, and every outcome is checked by
 * reading the database again. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "colcrypt.h"
#include "dsr_run.h"
#include "fieldcrypt.h"
#include "keyclient.h"
#include "ledger.h"
#include "report.h"
#include "subjectrows.h"

#define MAX_TABLES 128
#define MAX_COLS 1024
#define MAX_PARAMS 32 /* retained encrypted columns of one table */

enum er_act { ER_DELETE, ER_ANONYMIZE, ER_SHRED, ER_RETAIN, ER_CLEAR_INDEX };

static const char *const act_names[] = {
	[ER_DELETE] = "delete_row", [ER_ANONYMIZE] = "anonymize",           [ER_SHRED] = "crypto_shred",
	[ER_RETAIN] = "retain",     [ER_CLEAR_INDEX] = "clear_blind_index",
};

struct er_col {
	const struct pol_column *pc; /* the policy column; for ER_CLEAR_INDEX the one indexed */
	const char *name;            /* the database column */
	enum er_act act;
	bool from_delete_row;     /* delete_row, anonymised because the row is retained */
	char anon[256];           /* the new value's SQL, of the column j0."name" */
	json_int_t values, plain; /* non-NULL values; ER_SHRED: of them not encrypted */
	json_int_t bad;           /* found not erased by the check */
	char erasable[16];        /* ER_RETAIN with a period: the day the last of it may go */
};

struct er_table {
	const struct pol_table *pt;
	int order;
	bool delete_rows;
	size_t first, ncols; /* its columns in erase.c */
	json_int_t rows;
	char **places; /* rows to delete: where they are (SRW_ROW_AT) */
	size_t nplaces;
};

/* An UPDATE of one row, made while reading and run after: changing rows
 * while the walk goes on could cut later tables' rows loose. */
struct pend {
	char *sql;
	int np;
	char *params[MAX_PARAMS + 1]; /* $1 where the row is (SRW_ROW_AT) */
};

struct erase {
	struct dsr *d;
	struct pend *pend;
	size_t npend, cappend;
	const char *type, *id;
	bool run; /* false: a dry run */
	struct catalog *cat;
	struct sm_map *m;
	struct er_table t[MAX_TABLES];
	size_t nt;
	struct er_col c[MAX_COLS];
	size_t nc;
	struct buf keyids; /* of the subject's encrypted values: destroyed */
	struct kc_key retain_key;
	bool have_retain_key;
	json_int_t reencrypted;
	char *err;
	size_t errlen;
};

/* ---- the plan ---- */

static bool starts(const char *s, const char *p)
{
	return !strncmp(s, p, strlen(p));
}

/* The SQL of an anonymised value for a column of this type. */
static int anon_expr(const struct cat_column *cc, char *out, size_t n)
{
	const char *t = cc->type;
	struct buf b = BUF_INIT;
	char q[160];

	buf_adds(&b, "j0.");
	sm_quote_ident(&b, cc->name);
	buf_addc(&b, 0);
	snprintf(q, sizeof(q), "%s", b.failed ? "" : b.p);
	buf_free(&b);
	if (!q[0])
		return -ENOMEM;
	if (!cc->notnull)
		snprintf(out, n, "NULL");
	else if (!strcmp(t, "text") || starts(t, "character"))
		snprintf(out, n, "repeat('X', char_length(%s))", q);
	else if (starts(t, "smallint") || starts(t, "integer") || starts(t, "bigint") ||
	         starts(t, "numeric") || starts(t, "real") || starts(t, "double"))
		snprintf(out, n, "0");
	else if (!strcmp(t, "boolean"))
		snprintf(out, n, "false");
	else if (starts(t, "timestamp") || !strcmp(t, "date"))
		snprintf(out, n, "date_trunc('year', %s)::%s", q, t);
	else
		return -EINVAL;
	return 0;
}

static bool any_erase(const struct pol_table *pt, enum pol_erase e)
{
	for (size_t i = 0; i < pt->ncols; i++)
		if (pt->cols[i].erase == e)
			return true;
	return false;
}

static struct er_col *add_col(struct erase *e, const struct pol_table *pt, const struct pol_column *pc,
                              const char *name, enum er_act act)
{
	const struct cat_column *cc = cat_column(cat_table(e->cat, pt->name), name);
	struct er_col *c = e->nc < MAX_COLS ? &e->c[e->nc++] : NULL;

	if (!c) {
		snprintf(e->err, e->errlen, "more than %d columns to erase", MAX_COLS);
		return NULL;
	}
	*c = (struct er_col){ .pc = pc, .name = name, .act = act };
	if (!cc) {
		snprintf(e->err, e->errlen, "column %s.%s is not in the database", pt->name, name);
		return NULL;
	}
	if ((act == ER_ANONYMIZE || act == ER_SHRED || act == ER_CLEAR_INDEX) &&
	    anon_expr(cc, c->anon, sizeof(c->anon))) {
		snprintf(
		    e->err, e->errlen,
		    "%s.%s is NOT NULL of type %s, which cannot be anonymised: make it nullable, or erase "
		    "it another way in the policy",
		    pt->name, name, cc->type);
		return NULL;
	}
	return c;
}

static int plan_table(struct erase *e, const struct pol_table *pt, int order)
{
	struct er_table *t = &e->t[e->nt++];

	*t = (struct er_table){ .pt = pt, .order = order, .first = e->nc };
	t->delete_rows = any_erase(pt, POL_ERASE_DELETE_ROW) && !any_erase(pt, POL_ERASE_RETAIN);
	for (size_t i = 0; i < pt->ncols; i++) {
		const struct pol_column *pc = &pt->cols[i];
		enum er_act act = t->delete_rows                        ? ER_DELETE
		                  : pc->erase == POL_ERASE_RETAIN       ? ER_RETAIN
		                  : pc->erase == POL_ERASE_CRYPTO_SHRED ? ER_SHRED
		                                                        : ER_ANONYMIZE;
		if (act != ER_RETAIN && act != ER_DELETE && sm_is_link(e->m, pt->name, pc->name)) {
			snprintf(e->err, e->errlen,
			         "%s.%s links the subject's rows together: erase: must be retain, or the "
			         "table's rows "
			         "deleted (delete_row)",
			         pt->name, pc->name);
			return -EINVAL;
		}
		struct er_col *c = add_col(e, pt, pc, pc->name, act);
		if (!c)
			return -EINVAL;
		c->from_delete_row = pc->erase == POL_ERASE_DELETE_ROW && !t->delete_rows;
		if (pc->bidx_column && act != ER_RETAIN && act != ER_DELETE &&
		    !add_col(e, pt, pc, pc->bidx_column, ER_CLEAR_INDEX))
			return -EINVAL;
	}
	t->ncols = e->nc - t->first;
	return 0;
}

static int by_order_desc(const void *a, const void *b)
{
	return ((const struct er_table *)b)->order - ((const struct er_table *)a)->order;
}

static int plan(struct erase *e)
{
	int r = cat_load(e->d->data, &e->cat, e->err, e->errlen);

	if (!r && (r = sm_build(e->d->pol, e->cat, e->type, &e->m)))
		snprintf(e->err, e->errlen, "the policy has no subject type %.32s", e->type);
	for (size_t i = 0; !r && i < e->d->pol->ntables; i++) {
		const struct pol_table *pt = &e->d->pol->tables[i];
		int order = sm_order(e->m, pt->name);
		if (order < 0)
			continue; /* another subject type's */
		if (e->nt == MAX_TABLES) {
			snprintf(e->err, e->errlen, "more than %d tables to erase", MAX_TABLES);
			r = -E2BIG;
		} else {
			r = plan_table(e, pt, order);
		}
	}
	/* children first: a row is deleted before the row it references */
	if (!r)
		qsort(e->t, e->nt, sizeof(e->t[0]), by_order_desc);
	return r;
}

static struct er_table *table_of(struct erase *e, const struct pol_table *pt)
{
	for (size_t i = 0; i < e->nt; i++)
		if (e->t[i].pt == pt)
			return &e->t[i];
	return NULL;
}

/* ---- reading and changing ---- */

static bool every_column(const struct pol_column *c)
{
	(void)c;
	return true;
}

/* The re-encrypted value of a retained one, under the erasure's own key. */
static int reencrypt(struct erase *e, const struct pol_table *pt, const char *col, const char *v, size_t n,
                     struct buf *out)
{
	uint8_t id[FC_KEYID_LEN];
	struct kc_key k;
	struct buf plain = BUF_INIT;
	int r = fc_key_id(v, n, id) ? -EINVAL : kcl_key(e->d->kp, id, &k);

	if (!r)
		r = cc_decrypt_with(&k, pt->name, col, v, n, &plain);
	explicit_bzero(&k, sizeof(k));
	if (!r && !e->have_retain_key && !(r = kcl_fresh(e->d->kp, &e->retain_key)))
		e->have_retain_key = true;
	if (!r)
		r = cc_encrypt(pt->name, col, &e->retain_key, plain.p ? plain.p : "", plain.len, out);
	if (plain.p)
		explicit_bzero(plain.p, plain.len);
	buf_free(&plain);
	if (r)
		snprintf(e->err, e->errlen, "a retained value of %s.%s cannot be re-encrypted: %s", pt->name,
		         col, cc_strerror(r));
	return r;
}

/* The policy column's field in a row read with SRW_ROW (field 0). */
static int field_of(const struct pol_column *const *cols, size_t ncols, const struct pol_column *pc)
{
	for (size_t i = 0; i < ncols; i++)
		if (cols[i] == pc)
			return (int)i + 1;
	return -1;
}

static int defer(struct erase *e, struct buf *sql, const char *const *params, int np)
{
	if (sql->failed)
		return -ENOMEM;
	if (e->npend == e->cappend) {
		size_t cap = e->cappend ? 2 * e->cappend : 64;
		struct pend *v = realloc(e->pend, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		e->pend = v;
		e->cappend = cap;
	}
	struct pend *p = &e->pend[e->npend];
	*p = (struct pend){ .sql = strdup(sql->p), .np = np };
	int ok = p->sql != NULL;
	for (int i = 0; i < np; i++)
		ok &= (p->params[i] = strdup(params[i])) != NULL;
	e->npend++; /* freed whole or not at all */
	return ok ? 0 : -ENOMEM;
}

static void pend_free(struct pend *p)
{
	free(p->sql);
	for (int i = 0; i < p->np; i++)
		if (p->params[i]) {
			explicit_bzero(p->params[i], strlen(p->params[i]));
			free(p->params[i]);
		}
}

/* Runs the UPDATEs made while reading. */
static int apply_updates(struct erase *e)
{
	for (size_t i = 0; i < e->npend; i++) {
		struct pend *p = &e->pend[i];
		PGresult *u = PQexecParams(e->d->data, p->sql, p->np, NULL, (const char *const *)p->params,
		                           NULL, NULL, 0);
		if (PQresultStatus(u) != PGRES_COMMAND_OK) {
			char m[512];
			snprintf(e->err, e->errlen, "erasing: %s",
			         u ? srw_db_error(u, m, sizeof(m)) : "out of memory");
			PQclear(u);
			return -EIO;
		}
		PQclear(u);
	}
	return 0;
}

/* One row of a table that keeps its rows: its UPDATE, with the values
 * that change. */
static int update_row(struct erase *e, struct er_table *t, const struct pol_column *const *cols, size_t ncols,
                      PGresult *r, int row)
{
	struct buf sql = BUF_INIT, vals[MAX_PARAMS] = { BUF_INIT };
	const char *params[MAX_PARAMS + 1];
	int np = 1, nset = 0, err = 0;

	buf_adds(&sql, "UPDATE ");
	sm_quote(&sql, t->pt->name);
	buf_adds(&sql, " AS j0 SET ");
	params[0] = PQgetvalue(r, row, 0);
	for (size_t i = t->first; !err && i < t->first + t->ncols; i++) {
		struct er_col *c = &e->c[i];
		int f = c->act == ER_CLEAR_INDEX ? -1 : field_of(cols, ncols, c->pc);
		const char *v = f > 0 && !PQgetisnull(r, row, f) ? PQgetvalue(r, row, f) : NULL;
		size_t n = f > 0 ? (size_t)PQgetlength(r, row, f) : 0;
		uint8_t id[FC_KEYID_LEN];
		bool encrypted = v && !fc_key_id(v, n, id);
		char value[300];
		if (v)
			c->values++;
		if (c->act == ER_ANONYMIZE || c->act == ER_CLEAR_INDEX ||
		    (c->act == ER_SHRED && v && !encrypted)) {
			c->plain += c->act == ER_SHRED;
			snprintf(value, sizeof(value), "%s", c->anon);
		} else if (c->act == ER_RETAIN && encrypted && !e->run) {
			e->reencrypted++;
			continue;
		} else if (c->act == ER_RETAIN && encrypted) {
			if (np > MAX_PARAMS) {
				snprintf(e->err, e->errlen, "%s has more than %d retained encrypted columns",
				         t->pt->name, MAX_PARAMS);
				err = -E2BIG;
				break;
			}
			err = reencrypt(e, t->pt, c->name, v, n, &vals[np - 1]);
			buf_addc(&vals[np - 1], 0);
			params[np] = vals[np - 1].p;
			e->reencrypted++;
			snprintf(value, sizeof(value), "$%d", ++np);
		} else {
			continue;
		}
		buf_adds(&sql, nset++ ? ", " : "");
		sm_quote_ident(&sql, c->name);
		buf_printf(&sql, " = %s", value);
	}
	buf_adds(&sql, " WHERE " SRW_IS_AT("j0", "$1"));
	buf_addc(&sql, 0);
	if (!err && nset && e->run)
		err = defer(e, &sql, params, np);
	for (int i = 0; i < MAX_PARAMS; i++) {
		if (vals[i].p)
			explicit_bzero(vals[i].p, vals[i].len);
		buf_free(&vals[i]);
	}
	buf_free(&sql);
	return err;
}

/* Each table's rows: their keys noted, then updated now or deleted later. */
static int on_rows(void *arg, const struct pol_table *pt, const struct pol_column *const *cols, size_t ncols,
                   PGresult *r)
{
	struct erase *e = arg;
	struct er_table *t = table_of(e, pt);
	uint8_t id[FC_KEYID_LEN];
	int err = 0;

	if (!t)
		return 0;
	t->rows = PQntuples(r);
	/* the keys to destroy: of every value but the retained ones (a retained value outlives the subject's
	 * keys under a key of its own, which must live on) */
	for (int i = 0; i < PQntuples(r); i++)
		for (size_t j = 0; j < ncols; j++)
			if (cols[j]->encrypt && (t->delete_rows || cols[j]->erase != POL_ERASE_RETAIN) &&
			    !PQgetisnull(r, i, (int)j + 1) &&
			    !fc_key_id(PQgetvalue(r, i, (int)j + 1), (size_t)PQgetlength(r, i, (int)j + 1),
			               id))
				buf_add(&e->keyids, id, sizeof(id));
	if (t->delete_rows) {
		for (size_t i = t->first; i < t->first + t->ncols; i++)
			for (int k = 0; k < PQntuples(r); k++)
				e->c[i].values += e->c[i].act != ER_CLEAR_INDEX &&
				                  !PQgetisnull(r, k, field_of(cols, ncols, e->c[i].pc));
		if (e->keyids.failed)
			return -ENOMEM;
		t->places = calloc((size_t)PQntuples(r) + 1, sizeof(char *));
		for (int i = 0; t->places && i < PQntuples(r); i++)
			if ((t->places[t->nplaces] = strdup(PQgetvalue(r, i, 0))))
				t->nplaces++;
		return t->places && t->nplaces == (size_t)PQntuples(r) ? 0 : -ENOMEM;
	}
	for (int i = 0; !err && i < PQntuples(r); i++)
		err = update_row(e, t, cols, ncols, r, i);
	return err ? err : e->keyids.failed ? -ENOMEM : 0;
}

/* When each retained column with a period (erase: after, years) may be
 * erased: its latest date among the subject's rows, plus the years. */
static int retain_dates(struct erase *e)
{
	for (size_t i = 0; i < e->nt; i++)
		for (size_t j = e->t[i].first; j < e->t[i].first + e->t[i].ncols; j++) {
			struct er_col *c = &e->c[j];
			struct buf sql = BUF_INIT, root = BUF_INIT;
			if (c->act != ER_RETAIN || !c->pc->retain_after)
				continue;
			buf_adds(&sql, "SELECT to_char(max(j0.");
			sm_quote_ident(&sql, c->pc->retain_after);
			buf_printf(&sql, ") + interval '%u years', 'YYYY-MM-DD') ", c->pc->retain_years);
			int err = sm_from(e->m, e->t[i].pt->name, &sql, &root);
			buf_adds(&sql, " WHERE ");
			buf_add(&sql, root.p, root.len);
			buf_adds(&sql, " = $1");
			buf_addc(&sql, 0);
			PGresult *r = err || sql.failed
			                  ? NULL
			                  : PQexecParams(e->d->data, sql.p, 1, NULL, &e->id, NULL, NULL, 0);
			if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
			    !PQgetisnull(r, 0, 0))
				snprintf(c->erasable, sizeof(c->erasable), "%s", PQgetvalue(r, 0, 0));
			else if (PQresultStatus(r) != PGRES_TUPLES_OK)
				err = -EIO;
			PQclear(r);
			buf_free(&sql);
			buf_free(&root);
			if (err) {
				snprintf(e->err, e->errlen, "the retention of %s.%s cannot be dated",
				         e->t[i].pt->name, c->name);
				return err;
			}
		}
	return 0;
}

/* Deletes the rows of the tables that lose them, children first. */
static int delete_rows(struct erase *e)
{
	for (size_t i = 0; i < e->nt; i++) {
		struct er_table *t = &e->t[i];
		struct buf sql = BUF_INIT, arr = BUF_INIT, tids = BUF_INIT;
		if (!t->delete_rows || !t->nplaces)
			continue;
		buf_adds(&sql, "DELETE FROM ");
		sm_quote(&sql, t->pt->name);
		buf_adds(&sql,
		         " AS d WHERE d.ctid = ANY($1::tid[]) AND " SRW_PLACE("d") " = ANY($2::text[])");
		buf_addc(&sql, 0);
		buf_addc(&arr, '{');
		buf_addc(&tids, '{');
		for (size_t k = 0; k < t->nplaces; k++) {
			const char *at = strchr(t->places[k], '/');
			buf_printf(&arr, "%s\"%s\"", k ? "," : "", t->places[k]);
			buf_printf(&tids, "%s\"%s\"", k ? "," : "", at ? at + 1 : "");
		}
		buf_adds(&arr, "}");
		buf_addc(&arr, 0);
		buf_adds(&tids, "}");
		buf_addc(&tids, 0);
		const char *p[2] = { tids.p, arr.p };
		PGresult *r = sql.failed || arr.failed || tids.failed
		                  ? NULL
		                  : PQexecParams(e->d->data, sql.p, 2, NULL, p, NULL, NULL, 0);
		int err = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -EIO;
		if (err) {
			char m[512];
			snprintf(e->err, e->errlen, "deleting from %s: %s", t->pt->name,
			         r ? srw_db_error(r, m, sizeof(m)) : "out of memory");
		}
		PQclear(r);
		buf_free(&sql);
		buf_free(&arr);
		buf_free(&tids);
		if (err)
			return err;
	}
	return 0;
}

/* ---- checking, after the commit and the keys' destruction ---- */

static int on_check(void *arg, const struct pol_table *pt, const struct pol_column *const *cols, size_t ncols,
                    PGresult *r)
{
	struct erase *e = arg;
	struct er_table *t = table_of(e, pt);

	if (!t)
		return 0;
	for (size_t i = t->first; i < t->first + t->ncols; i++) {
		struct er_col *c = &e->c[i];
		int f = field_of(cols, ncols, c->pc);
		for (int k = 0; k < PQntuples(r) && f > 0; k++) {
			const char *v = PQgetvalue(r, k, f);
			size_t n = (size_t)PQgetlength(r, k, f);
			uint8_t id[FC_KEYID_LEN];
			struct kc_key key;
			bool null = PQgetisnull(r, k, f);
			if (t->delete_rows)
				c->bad++; /* the row is still there */
			else if (c->act == ER_SHRED && !null && !fc_key_id(v, n, id))
				c->bad += kcl_key(e->d->kp, id, &key) !=
				          -ENOKEY; /* (not encrypted: check_anonymised) */
			else if (c->act == ER_RETAIN && !null && c->pc->encrypt && !fc_key_id(v, n, id))
				c->bad += kcl_key(e->d->kp, id, &key) != 0;
			explicit_bzero(&key, sizeof(key));
		}
	}
	return 0;
}

/* Anonymised columns and cleared indexes hold what anonymising gives. */
static int check_anonymised(struct erase *e)
{
	for (size_t i = 0; i < e->nt; i++) {
		struct er_table *t = &e->t[i];
		for (size_t j = t->first; !t->delete_rows && j < t->first + t->ncols; j++) {
			struct er_col *c = &e->c[j];
			struct buf sql = BUF_INIT, root = BUF_INIT;
			if (c->act != ER_ANONYMIZE && c->act != ER_CLEAR_INDEX &&
			    !(c->act == ER_SHRED && c->plain))
				continue;
			buf_adds(&sql, "SELECT count(*) ");
			int err = sm_from(e->m, t->pt->name, &sql, &root);
			buf_adds(&sql, " WHERE ");
			buf_add(&sql, root.p, root.len);
			buf_adds(&sql, " = $1 AND j0.");
			sm_quote_ident(&sql, c->name);
			buf_printf(&sql, " IS DISTINCT FROM %s", c->anon);
			if (c->act == ER_SHRED) { /* the values that were not encrypted */
				buf_adds(&sql, " AND j0.");
				sm_quote_ident(&sql, c->name);
				buf_adds(&sql, "::text NOT LIKE 'cx1.%'");
			}
			buf_addc(&sql, 0);
			PGresult *r = err || sql.failed
			                  ? NULL
			                  : PQexecParams(e->d->data, sql.p, 1, NULL, &e->id, NULL, NULL, 0);
			if (PQresultStatus(r) == PGRES_TUPLES_OK)
				c->bad += strtoll(PQgetvalue(r, 0, 0), NULL, 10);
			else
				err = -EIO;
			PQclear(r);
			buf_free(&sql);
			buf_free(&root);
			if (err) {
				snprintf(e->err, e->errlen, "checking %s.%s after the erasure failed",
				         t->pt->name, c->name);
				return err;
			}
		}
	}
	return 0;
}

/* ---- the documents ---- */

static const char *outcome(const struct er_table *t, const struct er_col *c)
{
	if (t->delete_rows)
		return "deleted with its row";
	switch (c->act) {
	case ER_ANONYMIZE: return c->from_delete_row ? "anonymised (its row is retained)" : "anonymised";
	case ER_SHRED:
		return c->plain ? "crypto-shredded; values not yet encrypted were anonymised"
		                : "crypto-shredded";
	case ER_RETAIN: return "retained";
	case ER_CLEAR_INDEX: return "blind index cleared";
	default: return "deleted";
	}
}

static json_t *columns_json(struct erase *e, bool checked)
{
	json_t *items = json_array();
	char q[256];

	for (size_t i = 0; i < e->nt; i++) {
		const struct er_table *t = &e->t[i];
		for (size_t j = t->first; j < t->first + t->ncols; j++) {
			const struct er_col *c = &e->c[j];
			snprintf(q, sizeof(q), "%s.%s", t->pt->name, c->name);
			json_t *o =
			    json_pack("{s:s, s:s, s:s, s:I, s:I}", "column", q, "action", act_names[c->act],
			              "outcome", outcome(t, c), "rows", t->rows, "values", c->values);
			if (checked)
				json_object_set_new(o, "verified", json_boolean(!c->bad));
			json_array_append_new(items, o);
		}
	}
	return items;
}

static json_t *retained_json(struct erase *e)
{
	json_t *items = json_array();
	char q[256];

	for (size_t i = 0; i < e->nt; i++)
		for (size_t j = e->t[i].first; j < e->t[i].first + e->t[i].ncols; j++) {
			const struct er_col *c = &e->c[j];
			if (c->act != ER_RETAIN)
				continue;
			snprintf(q, sizeof(q), "%s.%s", e->t[i].pt->name, c->name);
			json_t *o =
			    json_pack("{s:s, s:s, s:s, s:I}", "column", q, "basis", c->pc->retain_basis,
			              "until", c->pc->retain_until, "rows", e->t[i].rows);
			if (c->erasable[0])
				json_object_set_new(o, "erasable_from", json_string(c->erasable));
			json_array_append_new(items, o);
		}
	return items;
}

/* Art. 19, §7022(b)(3): the recipients of what was erased. */
static json_t *notify_json(struct erase *e)
{
	json_t *by = json_object(), *items = json_array(), *v;
	const char *k;
	char q[256];

	for (size_t i = 0; i < e->nt; i++)
		for (size_t j = e->t[i].first; j < e->t[i].first + e->t[i].ncols; j++) {
			const struct er_col *c = &e->c[j];
			if (c->act == ER_RETAIN || c->act == ER_CLEAR_INDEX || !e->t[i].rows)
				continue;
			snprintf(q, sizeof(q), "%s.%s", e->t[i].pt->name, c->name);
			for (size_t r = 0; r < c->pc->recipients.n; r++) {
				json_t *cols = json_object_get(by, c->pc->recipients.v[r]);
				if (!cols)
					json_object_set_new(by, c->pc->recipients.v[r], cols = json_array());
				json_array_append_new(cols, json_string(q));
			}
		}
	json_object_foreach(by, k, v)
	    json_array_append_new(items, json_pack("{s:s, s:O}", "recipient", k, "columns", v));
	json_decref(by);
	return items;
}

static int by_id(const void *a, const void *b)
{
	return memcmp(a, b, FC_KEYID_LEN);
}

/* The key ids found, each once; how many. */
static size_t unique_keys(struct erase *e)
{
	size_t n = e->keyids.len / FC_KEYID_LEN, u = 0;
	uint8_t(*ids)[FC_KEYID_LEN] = (uint8_t(*)[FC_KEYID_LEN])e->keyids.p;

	if (!n)
		return 0;
	qsort(ids, n, FC_KEYID_LEN, by_id);
	for (size_t i = 1; i < n; i++)
		if (memcmp(ids[i], ids[u], FC_KEYID_LEN))
			memcpy(ids[++u], ids[i], FC_KEYID_LEN);
	e->keyids.len = (u + 1) * FC_KEYID_LEN;
	return u + 1;
}

static void erase_free(struct erase *e)
{
	for (size_t i = 0; i < e->nt; i++) {
		for (size_t k = 0; k < e->t[i].nplaces; k++)
			free(e->t[i].places[k]);
		free(e->t[i].places);
	}
	buf_free(&e->keyids);
	for (size_t i = 0; i < e->npend; i++)
		pend_free(&e->pend[i]);
	free(e->pend);
	explicit_bzero(&e->retain_key, sizeof(e->retain_key));
	sm_free(e->m);
	cat_free(e->cat);
}

json_t *dsr_erase_plan(struct dsr *d, json_t *row, char *err, size_t errlen)
{
	struct erase e = { .d = d,
		           .type = lg_str(row, "subject_type"),
		           .id = lg_str(row, "subject_id"),
		           .err = err,
		           .errlen = errlen };
	json_t *res = NULL;
	int r = plan(&e);

	if (!r)
		r = srw_rows(d->data, d->pol, e.m, e.id, every_column, SRW_ROW, on_rows, &e, err, errlen);
	if (!r)
		r = retain_dates(&e);
	if (!r)
		res = json_pack("{s:b, s:I, s:o, s:o, s:o, s:I}", "dry_run", 1, "request",
		                json_integer_value(json_object_get(row, "id")), "columns",
		                columns_json(&e, false), "retained", retained_json(&e), "notify",
		                notify_json(&e), "encrypted_with_keys", (json_int_t)unique_keys(&e));
	erase_free(&e);
	return res;
}

static json_t *certificate(struct erase *e, json_t *row, const uint8_t ref[32], uint64_t keys, uint64_t seq)
{
	const struct pol_controller *ctl = &e->d->pol->controller;
	bool ccpa = !strcmp(lg_str(row, "regime"), "ccpa");
	char now[TS_LEN + 1], refhex[65];

	ts_format(now_us(), now);
	hex_encode(ref, 32, refhex);
	json_t *doc = json_pack(
	    "{s:{s:s, s:s, s:i, s:s}, s:O, s:{s:s?, s:s?, s:s?, s:s?}, s:{s:s, s:s, s:s}}", "report", "kind",
	    "erasure", "regime", ccpa ? "ccpa" : "gdpr", "format", RPT_FORMAT, "generated_at", now, "request",
	    row, "controller", "name", ctl->name, "contact", ctl->contact, "dpo", ctl->dpo,
	    "supervisory_authority", ctl->authority, "subject", "type", e->type, "id", e->id, "ref", refhex);
	json_object_set_new(doc, "erasure",
	                    json_pack("{s:s, s:o}", "rule",
	                              ccpa ? "CCPA §1798.105(a), §7022(b)" : "GDPR Art. 17(1)", "items",
	                              columns_json(e, true)));
	json_object_set_new(doc, "retained",
	                    json_pack("{s:s, s:o}", "rule", ccpa ? "CCPA §1798.105(d)" : "GDPR Art. 17(3)",
	                              "items", retained_json(e)));
	json_object_set_new(
	    doc, "keys",
	    json_pack(
	        "{s:s, s:I, s:I, s:s}", "rule", ccpa ? "CCPA §7022(b)(1)" : "GDPR Art. 17(1)", "destroyed",
	        (json_int_t)keys, "reencrypted_for_retention", e->reencrypted, "effect",
	        "the subject's data key, and the keys of values written for them before they were known, are "
	        "destroyed: values encrypted under them, in the database, in its backups and in the audit "
	        "log, can no longer be read"));
	json_object_set_new(doc, "notify",
	                    json_pack("{s:s, s:o}", "rule", ccpa ? "CCPA §7022(b)(3)" : "GDPR Art. 19",
	                              "items", notify_json(e)));
	json_object_set_new(
	    doc, "verification",
	    json_pack("{s:s, s:s}", "rule", "GDPR Art. 5(2), CCPA §7101 (accountability)", "method",
	              "every outcome was checked by reading the database again after the commit "
	              "and the keys' destruction; each column says whether it held"));
	json_object_set_new(doc, "log",
	                    json_pack("{s:s, s:I}", "rule", "GDPR Art. 5(2) (accountability)",
	                              "erasure_record", (json_int_t)seq));
	return doc;
}

static int db_exec(struct erase *e, const char *sql)
{
	PGresult *r = PQexec(e->d->data, sql);
	char m[512];
	int err = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -EIO;

	if (!err && !strcmp(sql, "COMMIT") && strcmp(PQcmdStatus(r), "COMMIT"))
		err = -EIO; /* a failed transaction "commits" as ROLLBACK */
	if (err)            /* the message only: its DETAIL may quote a row's values */
		snprintf(e->err, e->errlen, "customer database, %s: %s", sql,
		         r ? srw_db_error(r, m, sizeof(m)) : "no connection");
	PQclear(r);
	return err;
}

static json_int_t total_bad(const struct erase *e)
{
	json_int_t n = 0;
	for (size_t i = 0; i < e->nc; i++)
		n += e->c[i].bad;
	return n;
}

json_t *dsr_erase(struct dsr *d, const struct dsr_caller *who, json_t *row, uint8_t ret_ref[32], char *err,
                  size_t errlen)
{
	struct erase e = { .d = d,
		           .type = lg_str(row, "subject_type"),
		           .id = lg_str(row, "subject_id"),
		           .run = true,
		           .err = err,
		           .errlen = errlen };
	uint64_t seq = 0, keys = 0;
	json_t *doc = NULL;
	char more[256];
	int r = plan(&e);

	if (!r && (r = kcl_subject_ref(d->kp, e.type, e.id, ret_ref)))
		snprintf(err, errlen, "the subject's ref cannot be had from the keeper: %s", strerror(-r));
	if (!r)
		r = db_exec(&e, "BEGIN");
	if (!r) /* everything is read (and locked) before anything changes */
		r = srw_rows(d->data, d->pol, e.m, e.id, every_column, SRW_ROW | SRW_LOCK, on_rows, &e, err,
		             errlen);
	if (!r)
		r = retain_dates(&e);
	if (!r)
		r = apply_updates(&e);
	if (!r)
		r = delete_rows(&e);
	if (!r) { /* recorded before it commits, naming the subject while its key still exists */
		snprintf(more, sizeof(more), "\"keys_found\":%zu,\"reencrypted\":%" JSON_INTEGER_FORMAT,
		         unique_keys(&e), e.reencrypted);
		if ((r = dsr_record(d, who, row, "erase", more, &seq)))
			snprintf(err, errlen,
			         "the erasure cannot be recorded in the audit log, so it was not made");
	}
	if (!r)
		r = db_exec(&e, "COMMIT");
	else
		PQclear(PQexec(d->data, "ROLLBACK"));
	if (!r && (r = kcl_shred(d->kp, e.type, e.id, (const uint8_t(*)[FC_KEYID_LEN])e.keyids.p,
	                         e.keyids.len / FC_KEYID_LEN, &keys)))
		snprintf(err, errlen,
		         r == -ESTALE
		             ? "the keys are destroyed, but a role's cached copies could not all be dropped: "
		               "run the request again"
		             : "the database is erased but the keys could not be destroyed (%s): run the "
		               "request again",
		         strerror(-r));
	if (!r) {
		r = srw_each(d->data, d->pol, e.m, e.id, every_column, on_check, &e, err, errlen);
		if (!r)
			r = check_anonymised(&e);
	}
	if (!r && total_bad(&e)) {
		snprintf(err, errlen,
		         "reading again after the erasure found %" JSON_INTEGER_FORMAT
		         " values not erased: run the request again",
		         total_bad(&e));
		r = -EIO;
	}
	if (!r)
		doc = certificate(&e, row, ret_ref, keys, seq);
	erase_free(&e);
	return doc;
}
