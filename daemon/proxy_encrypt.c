/* proxy_encrypt.c - values on their way into encrypted policy columns
 * (DESIGN.md, "Field encryption"): the plaintext a client writes with an
 * INSERT or UPDATE is replaced by its ciphertext before PostgreSQL sees it —
 * in a simple query the literal's token in the text, in the extended
 * protocol the parameter's value in Bind.
 *
 * Each value is encrypted under the key of the row's subject: the subject
 * column's value in the same VALUES row, or, for an UPDATE, the one subject
 * its WHERE clause names; a row with no known subject gets a fresh key of
 * its own (erasure finds it by reading the subject's values). What cannot
 * be encrypted this way is refused (QC004), never written in the clear: an
 * expression, INSERT ... SELECT, COPY FROM, a write of all columns, an
 * UPDATE that does not name one subject, a literal in a prepared statement,
 * a parameter used elsewhere in the statement too, a bytea column. */
#include <errno.h>
#include <stdarg.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "colcrypt.h"
#include "keyclient.h"
#include "proxy_conn.h"

struct pxe_value {
	const struct pp_column *col;
	int param;   /* $n; 0: a literal */
	int literal; /* its index among the text's literals; -1 */
	unsigned row;
};

struct pxe_plan {
	const char *subject; /* the target's subject type; NULL: none */
	struct pxe_value *v;
	size_t n;
	unsigned nrows;
	int *sid_param;   /* by row: the parameter holding the subject's id; 0 */
	char **sid_value; /* by row: the id, known from the text; NULL */
};

void pxe_plan_free(struct pxe_plan *p)
{
	if (!p)
		return;
	for (unsigned i = 0; p->sid_value && i < p->nrows; i++)
		free(p->sid_value[i]);
	free(p->sid_value);
	free(p->sid_param);
	free(p->v);
	free(p);
}

/* --- the plan: made when the statement is analysed ---------------------------- */

static const struct pp_column *column_named(const struct pp_table *t, const char *name)
{
	for (int16_t i = 0; i < t->ncols; i++)
		if (t->cols[i].name && !strcmp(t->cols[i].name, name))
			return &t->cols[i];
	return NULL;
}

static bool has_encrypted(const struct pp_table *t)
{
	for (size_t i = 0; i < t->pt->ncols; i++)
		if (t->pt->cols[i].encrypt)
			return true;
	return false;
}

#define ALL_TARGETS                                                                                          \
	"Custos cannot encrypt the values of %s: the statement writes more than one table with encrypted "   \
	"columns, or one the catalog does not show yet"
#define ALL_COLUMNS                                                                                          \
	"Custos cannot encrypt the values of %s: the statement writes all its columns (no column list, a "   \
	"writing CTE, MERGE) or copies them in"

static bool literal_ok(const struct sqi_literal *l)
{
	char *v = sqi_literal_text(l);

	free(v);
	return v != NULL;
}

__attribute__((format(printf, 3, 4))) static int refuse(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -EPERM;
}

/* How many times $param appears in the text (a reuse would be encrypted too). */
static unsigned param_uses(const char *sql, int param)
{
	char tok[16];
	unsigned n = 0;
	int len = snprintf(tok, sizeof(tok), "$%d", param);

	for (const char *p = sql; (p = strstr(p, tok)); p += len)
		n += p[len] < '0' || p[len] > '9';
	return n;
}

/* The subject of each row: its id column's value in that row (INSERT), or
 * the one subject WHERE names (UPDATE). */
static int row_subjects(struct pxe_plan *p, const struct pp_table *t, const struct sqi_stmt *s,
                        const struct sqi_literal *lits, char *why, size_t n)
{
	if (!(p->sid_param = calloc(p->nrows, sizeof(int))) ||
	    !(p->sid_value = calloc(p->nrows, sizeof(char *))))
		return -ENOMEM;
	if (s->kind == SQI_INSERT) {
		for (size_t i = 0; t->subject_col && i < s->nwrites; i++) {
			const struct sqi_write *w = &s->writes[i];
			if (w->upsert || strcmp(w->column, t->subject_col) || w->row >= p->nrows)
				continue;
			if (w->kind == SQI_W_PARAM)
				p->sid_param[w->row] = w->param;
			else if (w->kind == SQI_W_CONST &&
			         !(p->sid_value[w->row] = sqi_literal_text(&lits[w->literal])))
				return -ENOMEM;
		}
		return 0;
	}
	const struct sqi_pred *one = NULL;
	unsigned found = 0;
	for (size_t i = 0; t->subject_col && i < s->npreds; i++)
		if (!s->preds[i].insert && !strcmp(s->preds[i].column, t->subject_col) && ++found)
			one = &s->preds[i];
	if (found != 1 || (!one->param && one->literal < 0))
		return refuse(why, n,
		              "Custos encrypts an UPDATE of %s.%s only when its WHERE names one subject "
		              "(its id column = a value), so that the value gets that subject's key",
		              t->name, t->subject_col ? t->subject_col : "(no subject column)");
	p->sid_param[0] = one->param;
	if (!one->param && !(p->sid_value[0] = sqi_literal_text(&lits[one->literal])))
		return -ENOMEM;
	return 0;
}

/* Checks one write into an encrypted column and adds it to the plan. */
static int plan_value(struct pxe_plan *p, const struct pp_table *t, const struct pp_column *col,
                      const struct sqi_write *w, const char *sql, const struct sqi_literal *lits,
                      bool extended, char *why, size_t n)
{
	if (w->kind == SQI_W_NULL || w->kind == SQI_W_EXCLUDED)
		return 0; /* nothing to encrypt / encrypted on its way in already */
	if (col->bytea)
		return refuse(why, n, "Custos does not encrypt values into the bytea column %s.%s yet",
		              t->name, col->name);
	if (w->kind == SQI_W_EXPR)
		return refuse(why, n,
		              "the encrypted column %s.%s is written with an expression: Custos encrypts "
		              "constants and parameters only",
		              t->name, col->name);
	if (w->kind == SQI_W_CONST && extended)
		return refuse(why, n,
		              "write the encrypted column %s.%s with a parameter: a constant in a prepared "
		              "statement would share one key between all its executions",
		              t->name, col->name);
	if (w->kind == SQI_W_CONST && !literal_ok(&lits[w->literal]))
		return refuse(why, n, "write the encrypted column %s.%s with a plain '...' string", t->name,
		              col->name);
	if (w->kind == SQI_W_PARAM && param_uses(sql, w->param) != 1)
		return refuse(
		    why, n,
		    "the parameter written into the encrypted column %s.%s is used elsewhere in the "
		    "statement too",
		    t->name, col->name);
	struct pxe_value *nv = realloc(p->v, (p->n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	p->v = nv;
	nv[p->n++] = (struct pxe_value){ col, w->kind == SQI_W_PARAM ? w->param : 0,
		                         w->kind == SQI_W_CONST ? w->literal : -1, w->row };
	return 0;
}

static int plan_table(struct pxe_plan *p, const struct pp_table *t, const struct sqi_stmt *s, const char *sql,
                      const struct sqi_literal *lits, bool extended, char *why, size_t n)
{
	if (s->write_all)
		return refuse(why, n, ALL_COLUMNS, t->name);
	for (size_t i = 0; (s->kind == SQI_COPY || s->writes_partial) && i < s->nwrite_cols; i++) {
		const struct pp_column *col = column_named(t, s->write_cols[i]);
		if (col && col->pc && col->pc->encrypt)
			return refuse(
			    why, n,
			    "Custos encrypts values one by one, not the rows of COPY FROM or INSERT ... "
			    "SELECT: %s.%s is encrypted",
			    t->name, col->name);
	}
	int err = 0;
	for (size_t i = 0; !err && i < s->nwrites; i++) {
		const struct pp_column *col = column_named(t, s->writes[i].column);
		if (!col || !col->pc || !col->pc->encrypt)
			continue;
		if (s->writes_partial || (s->writes[i].upsert && p->nrows > 1))
			return refuse(
			    why, n,
			    "Custos cannot encrypt what this statement writes into %s.%s (more values "
			    "than it follows, or an upsert of several rows)",
			    t->name, col->name);
		err = plan_value(p, t, col, &s->writes[i], sql, lits, extended, why, n);
	}
	if (!err && p->n)
		err = row_subjects(p, t, s, lits, why, n);
	return err;
}

int pxe_plan(struct pconn *c, const struct sqi_stmt *s, const char *sql, const struct sqi_literal *lits,
             bool extended, struct pxe_plan **ret, char *why, size_t n)
{
	*ret = NULL;
	for (size_t i = 0; i < s->ntables; i++) {
		const struct pp_table *t =
		    s->tables[i].write ? ppol_by_name(c->px->pp, s->tables[i].schema, s->tables[i].name)
		                       : NULL;
		if (!t || !has_encrypted(t))
			continue;
		if (*ret || !t->cols) { /* a second target, or one not in the database */
			pxe_plan_free(*ret);
			*ret = NULL;
			return refuse(why, n, ALL_TARGETS, t->name);
		}
		struct pxe_plan *p = calloc(1, sizeof(*p));
		if (!p)
			return -ENOMEM;
		p->subject = t->subject;
		for (size_t j = 0; j < s->nwrites; j++)
			if (s->writes[j].row + 1 > p->nrows)
				p->nrows = s->writes[j].row + 1;
		int err = plan_table(p, t, s, sql, lits, extended, why, n);
		if (err || !p->n) {
			pxe_plan_free(p);
			if (err)
				return err;
			continue;
		}
		*ret = p;
	}
	return 0;
}

/* --- encrypting: each execution ---------------------------------------------- */

/* The key of a row's values: its subject's, or a fresh one. */
static int row_key(struct pconn *c, const struct pxe_plan *p, unsigned row, const struct pgp_bind *b,
                   struct kc_key *k)
{
	char *id = NULL;

	if (p->subject && p->sid_param[row] && b && p->sid_param[row] <= b->nparams)
		id = pq_param_text(b, (unsigned)p->sid_param[row] - 1);
	else if (p->subject && p->sid_value[row] && !(id = strdup(p->sid_value[row])))
		return -ENOMEM;
	int err = id ? kcl_subject(c->px->keys, p->subject, id, k) : kcl_fresh(c->px->keys, k);
	free(id);
	return err;
}

/* Calls each(value, ciphertext) for the plan's values in order, each
 * encrypted under its row's key; plaintext(value) gives the bytes. */
typedef int (*pxe_each)(void *arg, const struct pxe_value *v, const struct buf *ct);
typedef int (*pxe_plain)(void *arg, const struct pxe_value *v, const char **p, size_t *len, char **owned);

static int encrypt_all(struct pconn *c, const struct pxe_plan *p, const struct pgp_bind *b, pxe_plain plain,
                       pxe_each each, void *arg)
{
	struct kc_key k;
	struct buf ct = BUF_INIT;
	unsigned row = UINT32_MAX;
	int err = 0;

	for (size_t i = 0; !err && i < p->n; i++) {
		const struct pxe_value *v = &p->v[i];
		const char *pt;
		size_t len;
		char *owned = NULL;
		if (v->row != row && !(err = row_key(c, p, v->row, b, &k)))
			row = v->row;
		if (!err)
			err = plain(arg, v, &pt, &len, &owned);
		if (!err && pt) {
			buf_reset(&ct);
			err = cc_encrypt(v->col->table, v->col->name, &k, pt, len, &ct);
		}
		if (owned) {
			OPENSSL_cleanse(owned, strlen(owned));
			free(owned);
		}
		if (!err)
			err = each(arg, v, pt ? &ct : NULL);
	}
	OPENSSL_cleanse(&k, sizeof(k));
	buf_free(&ct);
	return err;
}

/* - a simple query: literals replaced in the text - */

struct text_job {
	const char *sql;
	const struct sqi_literal *lits;
	struct lit_ct {
		int literal;
		char *ct; /* 'cx1...' */
	} * v;
	size_t n;
};

static int literal_plain(void *arg, const struct pxe_value *v, const char **p, size_t *len, char **owned)
{
	struct text_job *j = arg;

	if (!(*owned = sqi_literal_text(&j->lits[v->literal])))
		return -ENOMEM;
	*p = *owned;
	*len = strlen(*owned);
	return 0;
}

static int literal_ct(void *arg, const struct pxe_value *v, const struct buf *ct)
{
	struct text_job *j = arg;
	struct lit_ct *nv = realloc(j->v, (j->n + 1) * sizeof(*nv));
	char *q = nv && ct ? malloc(ct->len + 3) : NULL;

	if (nv)
		j->v = nv;
	if (!q)
		return -ENOMEM;
	q[0] = '\'';
	memcpy(q + 1, ct->p, ct->len);
	q[ct->len + 1] = '\'';
	q[ct->len + 2] = 0;
	j->v[j->n++] = (struct lit_ct){ v->literal, q };
	return 0;
}

static int by_literal(const void *a, const void *b)
{
	return ((const struct lit_ct *)a)->literal - ((const struct lit_ct *)b)->literal;
}

int pxe_query(struct pconn *c, const char *sql, const struct sqi_literal *lits, struct pxe_plan *const *plans,
              size_t nplans, struct buf *out)
{
	struct text_job j = { sql, lits, NULL, 0 };
	int err = 0;

	for (size_t i = 0; !err && i < nplans; i++)
		if (plans[i])
			err = encrypt_all(c, plans[i], NULL, literal_plain, literal_ct, &j);
	if (!err) {
		qsort(j.v, j.n, sizeof(*j.v), by_literal);
		const char *at = sql;
		for (size_t i = 0; i < j.n; i++) {
			const struct sqi_literal *l = &lits[j.v[i].literal];
			buf_add(out, at, (size_t)(l->p - at));
			buf_adds(out, j.v[i].ct);
			at = l->p + l->len;
		}
		buf_adds(out, at);
		buf_addc(out, 0);
		err = out->failed ? -ENOMEM : 0;
	}
	for (size_t i = 0; i < j.n; i++)
		free(j.v[i].ct);
	free(j.v);
	return err;
}

/* - the extended protocol: parameter values replaced in Bind - */

struct bind_job {
	const struct pgp_bind *b;
	struct buf **cts; /* by parameter: its ciphertext, or NULL */
};

static int param_plain(void *arg, const struct pxe_value *v, const char **p, size_t *len, char **owned)
{
	struct bind_job *j = arg;
	const struct pgp_value *pv = &j->b->params[v->param - 1];

	*owned = NULL;
	*p = pv->len < 0 ? NULL : (const char *)pv->p; /* NULL stays NULL */
	*len = pv->len < 0 ? 0 : (size_t)pv->len;
	return 0;
}

static int param_ct(void *arg, const struct pxe_value *v, const struct buf *ct)
{
	struct bind_job *j = arg;
	struct buf *copy;

	if (!ct)
		return 0;
	if (!(copy = calloc(1, sizeof(*copy))))
		return -ENOMEM;
	buf_add(copy, ct->p, ct->len);
	j->cts[v->param - 1] = copy;
	return copy->failed ? -ENOMEM : 0;
}

int pxe_bind(struct pconn *c, const struct pxe_plan *p, const struct pgp_bind *b, struct buf *out)
{
	struct bind_job j = { b, calloc(b->nparams ? b->nparams : 1, sizeof(struct buf *)) };
	struct buf body = BUF_INIT;
	int err = j.cts ? 0 : -ENOMEM;

	for (size_t i = 0; !err && i < p->n; i++)
		if (p->v[i].param > b->nparams)
			err = -EINVAL; /* PostgreSQL refuses the Bind; nothing to encrypt */
	if (!err)
		err = encrypt_all(c, p, b, param_plain, param_ct, &j);
	if (!err) {
		buf_add(&body, b->portal, strlen(b->portal) + 1);
		buf_add(&body, b->statement, strlen(b->statement) + 1);
		pgp_add16(&body, b->nformats);
		if (b->nformats)
			buf_add(&body, b->formats, 2u * b->nformats);
		pgp_add16(&body, b->nparams);
		for (uint16_t i = 0; i < b->nparams; i++)
			if (j.cts[i])
				pgp_add_value(&body, j.cts[i]->p, (int32_t)j.cts[i]->len);
			else
				pgp_add_value(&body, b->params[i].p, b->params[i].len);
		pgp_add16(&body, b->nresult_formats);
		if (b->nresult_formats)
			buf_add(&body, b->result_formats, 2u * b->nresult_formats);
		pgp_message(out, 'B', body.p, body.len);
		err = body.failed || out->failed ? -ENOMEM : 0;
	}
	for (uint16_t i = 0; j.cts && i < b->nparams; i++)
		if (j.cts[i]) {
			buf_free(j.cts[i]);
			free(j.cts[i]);
		}
	free(j.cts);
	buf_free(&body);
	return err;
}

const char *pxe_strerror(int err)
{
	switch (err) {
	case -ENOKEY: return "the row's subject was erased: no new personal data is stored under its name";
	case -EIO:
	case -ENOTCONN:
	case -ETIMEDOUT:
		return "no key to encrypt with now (the key store is unreachable): nothing was written";
	case -EINVAL: return "a parameter the statement writes is missing";
	default: return "the value cannot be encrypted: nothing was written";
	}
}
