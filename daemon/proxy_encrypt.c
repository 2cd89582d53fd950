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
 * expression, INSERT ... SELECT, COPY FROM other than STDIN in the text
 * format (its rows: proxy_copyin.c), a write of all columns, an
 * UPDATE that does not name one subject, a literal in a prepared statement,
 * a parameter used elsewhere in the statement too; and a default of an
 * encrypted column, which PostgreSQL would fill in unencrypted: given by
 * DDL, or left to by an INSERT or COPY. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "colcrypt.h"
#include "keyclient.h"
#include "proxy_encrypt.h"
#include "subjectmap.h"

void pxe_plan_free(struct pxe_plan *p)
{
	if (!p)
		return;
	for (unsigned i = 0; p->sid_value && i < p->nrows; i++)
		free(p->sid_value[i]);
	free(p->sid_value);
	free(p->sid_param);
	free(p->sid_cast);
	free(p->v);
	free(p->lk);
	if (p->copy) {
		free(p->copy->enc);
		free(p->copy->idx_of);
		free(p->copy->text);
		free(p->copy);
	}
	free(p);
}

/* --- the plan: made when the statement is analysed ---------------------------- */

bool pxe_has_encrypted(const struct pp_table *t)
{
	for (size_t i = 0; i < t->pt->ncols; i++)
		if (t->pt->cols[i].encrypt)
			return true;
	return false;
}

#define NAMEDATALEN_MAX 256 /* a part of a type's name: PostgreSQL's are at most 63 bytes */
#define ALL_TARGETS                                                                                          \
	"Custos cannot encrypt the values of %s: the statement writes more than one table with encrypted "   \
	"columns, or one the catalog does not show yet"
#define THROUGH_VIEW                                                                                         \
	"Custos cannot encrypt the values of %s: the statement writes through a view; write to the table "   \
	"itself"
#define AMBIGUOUS                                                                                            \
	"Custos cannot encrypt the values of %s: the name is a table's and a view's (over %s) in different " \
	"schemas; name the table's schema"
#define ALL_COLUMNS                                                                                          \
	"Custos cannot encrypt the values of %s: the statement writes all its columns (no column list, a "   \
	"writing CTE, MERGE, a DO block, more values than Custos follows) or copies them in"
#define TWO_POLICIES                                                                                         \
	"Custos cannot encrypt the values of %s: it is related by inheritance to two policy tables, %s and " \
	"%s, and its rows are keyed as neither's; write to them"
#define DEFAULTED                                                                                            \
	"Custos cannot encrypt what PostgreSQL fills in itself: the encrypted column %s.%s has a default "   \
	"(or is generated), and this write leaves it to that; write the column, or drop its default"
#define DEFAULT_SET                                                                                          \
	"Custos cannot encrypt what PostgreSQL fills in itself: this would have PostgreSQL write values "    \
	"of the encrypted column %s.%s (a default, a generated or identity column, a domain, a new type)"

static bool literal_ok(const struct sqi_literal *l)
{
	char *v = sqi_literal_text(l);

	free(v);
	return v != NULL;
}

int pxe_refuse(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -EPERM;
}

/* The $n parameters of the text ($01 is $1): how many are $param, and the
 * highest (into *max). Strings and comments are not skipped: a $n in them
 * counts, which only ever refuses more. */
static unsigned params_in(const char *sql, int param, int *max)
{
	unsigned n = 0;

	for (const char *q = strchr(sql, '$'); q; q = strchr(q + 1, '$')) {
		if (q[1] < '0' || q[1] > '9' || (q > sql && (isalnum((unsigned char)q[-1]) || q[-1] == '_')))
			continue; /* not a parameter: $$, $tag$, an identifier's $ */
		char *end;
		long v = strtol(q + 1, &end, 10);
		n += v == param;
		if (max && v > *max && v <= 65535)
			*max = (int)v;
	}
	return n;
}

#define UNREAD_ID                                                                                            \
	"Custos encrypts a write into %s only when the subject's id (%s) is a value of its column's type "   \
	"as PostgreSQL stores it: not cast into a text id, not a number PostgreSQL converts (12.0, 1e3), "   \
	"not a text written as a number"

/* The subject of each row: its id column's value in that row (INSERT), or
 * the one subject WHERE names (UPDATE). */
static int row_subjects(struct pxe_plan *p, const struct pp_table *t, const struct sqi_stmt *s,
                        const struct sqi_literal *lits, char *why, size_t n)
{
	if (!(p->sid_param = calloc(p->nrows, sizeof(int))) ||
	    !(p->sid_value = calloc(p->nrows, sizeof(char *))) ||
	    !(p->sid_cast = calloc(p->nrows, sizeof(bool))))
		return -ENOMEM;
	const struct pp_column *sc = t->subject_col ? ppol_column_named(t, t->subject_col) : NULL;
	p->sid_type = sc ? sc->type_oid : 0; /* (an id is read as PostgreSQL stores it: idtext.h) */
	if (s->kind == SQI_INSERT) {
		for (size_t i = 0; t->subject_col && i < s->nwrites; i++) {
			const struct sqi_write *w = &s->writes[i];
			if (w->upsert || strcmp(w->column, t->subject_col) || w->row >= p->nrows)
				continue;
			if (w->kind == SQI_W_PARAM) {
				p->sid_param[w->row] = w->param;
				p->sid_cast[w->row] = !w->bare;
			} else if (w->kind == SQI_W_CONST) {
				int err = pq_literal_id(&lits[w->literal], p->sid_type, w->bare,
				                        &p->sid_value[w->row]);
				if (err)
					return err == -ENOTSUP
					           ? pxe_refuse(why, n, UNREAD_ID, t->name, t->subject_col)
					           : err;
			}
		}
		return 0;
	}
	const struct sqi_pred *one = NULL;
	unsigned found = 0;
	const struct sqi_table *target = NULL;
	for (size_t i = 0; i < s->ntables && !target; i++)
		if (s->tables[i].write)
			target = &s->tables[i];
	for (size_t i = 0; target && t->subject_col && i < s->npreds; i++) {
		const struct sqi_pred *pr = &s->preds[i];
		bool ours = pr->qual
		                ? !strcmp(pr->qual, target->alias ? target->alias : target->name)
		                : s->ntables == 1; /* with FROM, an unqualified column may be another's */
		if (!pr->insert && !pr->col_cast && ours && !strcmp(pr->column, t->subject_col) && ++found)
			one = pr;
	}
	if (found != 1 || (!one->param && one->literal < 0))
		return pxe_refuse(why, n,
		                  "Custos encrypts an UPDATE of %s.%s only when its WHERE names one subject "
		                  "(its id column = a value), so that the value gets that subject's key",
		                  t->name, t->subject_col ? t->subject_col : "(no subject column)");
	p->sid_param[0] = one->param;
	p->sid_cast[0] = !one->bare;
	int err =
	    one->param ? 0 : pq_literal_id(&lits[one->literal], p->sid_type, one->bare, &p->sid_value[0]);
	return err == -ENOTSUP ? pxe_refuse(why, n, UNREAD_ID, t->name, t->subject_col) : err;
}

/* Checks one write into an encrypted column and adds it to the plan. */
static int plan_value(struct pxe_plan *p, const struct pp_table *t, const struct pp_column *col,
                      const struct sqi_write *w, const char *sql, const struct sqi_literal *lits,
                      bool extended, char *why, size_t n)
{
	bool null_index = w->kind == SQI_W_NULL && col->pc->bidx_column && p->insert && !w->upsert;
	if ((w->kind == SQI_W_NULL && !null_index) || w->kind == SQI_W_EXCLUDED)
		return 0; /* nothing to encrypt / encrypted on its way in already */
	if (w->kind == SQI_W_EXPR)
		return pxe_refuse(why, n,
		                  "the encrypted column %s.%s is written with an expression: Custos encrypts "
		                  "constants and parameters only",
		                  t->name, col->name);
	if (w->kind == SQI_W_PARAM && !extended)
		return pxe_refuse(why, n, "a parameter in a simple query (%s.%s): PostgreSQL refuses it",
		                  t->name, col->name);
	if (w->kind == SQI_W_CONST && extended)
		return pxe_refuse(
		    why, n,
		    "write the encrypted column %s.%s with a parameter: a constant in a prepared "
		    "statement would share one key between all its executions",
		    t->name, col->name);
	if (w->kind == SQI_W_CONST && !literal_ok(&lits[w->literal]))
		return pxe_refuse(why, n, "write the encrypted column %s.%s with a plain '...' string",
		                  t->name, col->name);
	if (w->kind == SQI_W_PARAM && params_in(sql, w->param, NULL) != 1)
		return pxe_refuse(
		    why, n,
		    "the parameter written into the encrypted column %s.%s is used elsewhere in the "
		    "statement too",
		    t->name, col->name);
	struct pxe_value *nv = realloc(p->v, (p->n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	p->v = nv;
	if (col->pc->bidx_column && (!w->bare || (p->insert && w->col_at.offset < 0) || w->upsert))
		return pxe_refuse(
		    why, n,
		    "the encrypted column %s.%s has a blind index: write it with a plain value (no cast, "
		    "not in ON CONFLICT), so that Custos can write its index beside it",
		    t->name, col->name);
	nv[p->n++] = (struct pxe_value){ .col = col,
		                         .param = w->kind == SQI_W_PARAM ? w->param : 0,
		                         .literal = w->kind == SQI_W_CONST ? w->literal : -1,
		                         .row = w->row,
		                         .value_at = w->value_at,
		                         .col_at = w->col_at,
		                         .null = w->kind == SQI_W_NULL };
	return 0;
}

/* The types whose binary format is their text's bytes. */
static bool text_type(uint32_t oid)
{
	return oid == 25 || oid == 1043 || oid == 1042; /* text, varchar, bpchar */
}

/* COPY FROM STDIN into a table with encrypted columns (text, CSV or binary):
 * which of the client's fields are encrypted, which holds the subject's
 * id, and where each blind index goes — into its column's field when the
 * client names it (whatever it sent there is replaced), else into a field
 * the proxy adds, naming the column in the statement it sends instead. */
static int plan_copy(struct pxe_plan *p, const struct pp_table *t, const struct sqi_stmt *s, char *why,
                     size_t n)
{
	const struct sqi_table *target = &s->tables[0];
	size_t nin = s->ncopy_cols;

	if (!s->copy_table || !(s->copy_plain || s->copy_binary) || !s->copy_stdin || s->ntables != 1)
		return pxe_refuse(why, n,
		                  "Custos encrypts COPY FROM STDIN into %s in the text format or CSV, with "
		                  "HEADER, DELIMITER, NULL, QUOTE and ESCAPE (one printable character each, "
		                  "not a letter or digit), or in binary, and no other options (no FORCE_*, "
		                  "ENCODING, WHERE, file or program)",
		                  t->name);
	for (int16_t a = 0; !s->ncopy_cols && a < t->ncols;
	     a++) /* no list: the columns COPY takes, in order */
		nin += t->cols[a].name && !t->cols[a].generated;
	struct pxe_copy *cp = calloc(1, sizeof(*cp));
	if (!cp || !(cp->enc = calloc(nin + 1, sizeof(*cp->enc))) ||
	    !(cp->idx_of = calloc(2 * nin + 1, sizeof(*cp->idx_of))))
		return free(cp ? cp->enc : NULL), free(cp), -ENOMEM;
	p->copy = cp;
	cp->nin = cp->nout = (unsigned)nin;
	cp->fmt = s->copy_format;
	cp->header = s->copy_header;
	cp->binary = s->copy_binary;
	cp->subject = -1;
	const char **names = calloc(2 * nin + 1, sizeof(*names));
	if (!names)
		return -ENOMEM;
	for (size_t i = 0, a = 0; i < nin; i++) {
		while (!s->ncopy_cols && (!t->cols[a].name || t->cols[a].generated))
			a++;
		names[i] = s->ncopy_cols ? s->copy_cols[i] : t->cols[a++].name;
		const struct pp_column *col = ppol_column_named(t, names[i]);
		cp->idx_of[i] = -1;
		if (t->subject_col && !strcmp(names[i], t->subject_col)) {
			cp->subject = (int)i;
			cp->subject_type = col ? col->type_oid : 0;
		}
		if (col && col->pc && col->pc->encrypt)
			cp->enc[i] = col;
	}
	for (unsigned i = 0; i < cp->nin; i++) {
		const char *idx = cp->enc[i] ? cp->enc[i]->pc->bidx_column : NULL;
		unsigned j = 0;
		while (idx && j < cp->nout && strcmp(names[j], idx))
			j++;
		if (idx && j == cp->nout)
			names[cp->nout++] = idx;
		const struct pp_column *ic = idx ? ppol_column_named(t, idx) : NULL;
		if (idx && cp->binary && !(ic && text_type(ic->type_oid))) {
			free(names);
			return pxe_refuse(
			    why, n,
			    "Custos writes the blind index %s of %s in COPY's binary format into a "
			    "text or varchar column only",
			    idx, t->name);
		}
		if (idx)
			cp->idx_of[j] = (int)i;
	}
	/* the statement PostgreSQL gets: the columns named in the order the
	 * rows are read in (never the catalog's, which may have changed), and
	 * the blind index columns added */
	struct buf text = BUF_INIT;
	buf_adds(&text, "COPY ");
	if (target->schema) {
		sm_quote_ident(&text, target->schema);
		buf_addc(&text, '.');
	}
	sm_quote_ident(&text, target->name);
	for (unsigned i = 0; i < cp->nout; i++) {
		buf_adds(&text, i ? ", " : " (");
		sm_quote_ident(&text, names[i]);
	}
	buf_adds(&text, ") FROM STDIN");
	if (cp->binary)
		buf_adds(&text, " (FORMAT binary)");
	else
		ct_format_sql(&s->copy_format, s->copy_header, &text);
	buf_addc(&text, 0);
	free(names);
	if (text.failed)
		return buf_free(&text), -ENOMEM;
	cp->text = text.p;
	return 0;
}

/* The columns a write names: an INSERT's or UPDATE's, a COPY's list. */
static char *const *named_columns(const struct sqi_stmt *s, size_t *n)
{
	*n = s->kind == SQI_COPY ? s->ncopy_cols : s->nwrite_cols;
	return s->kind == SQI_COPY ? s->copy_cols : s->write_cols;
}

/* A write naming a column the catalog does not show: made or renamed by
 * DDL of another session, or outside the proxy, since the catalog was read
 * (or none, which PostgreSQL refuses anyway). Its values would not be
 * known as the encrypted column's: refused, and the catalog read again
 * (at most once a second for this). */
static int columns_known(struct proxy *px, const struct pp_table *t, const struct sqi_stmt *s, char *why,
                         size_t n)
{
	size_t nnames;
	char *const *names = named_columns(s, &nnames);
	const char *unknown = NULL;

	for (size_t i = 0; !unknown && i < nnames; i++)
		if (!ppol_column_named(t, names[i]))
			unknown = names[i];
	for (size_t i = 0; !unknown && i < s->nwrites; i++) /* ON CONFLICT DO UPDATE SET's too */
		if (s->writes[i].upsert && !ppol_column_named(t, s->writes[i].column))
			unknown = s->writes[i].column;
	if (!unknown)
		return 0;
	if (px->pp_ticks >= PX_TICKS_PER_S)
		px->pp_stale = true;
	return pxe_refuse(
	    why, n,
	    "Custos does not know the column %s of %s yet: DDL since its last catalog read made "
	    "or renamed it; send this again",
	    unknown, t->name);
}

/* An INSERT or COPY FROM that leaves an encrypted column with a default
 * out: PostgreSQL would store the default as it is. (An UPDATE sets a
 * default only where it says DEFAULT, an expression: refused as one.) */
static int defaults_left(const struct pp_table *t, const struct sqi_stmt *s, char *why, size_t n)
{
	size_t nnames;
	char *const *names = named_columns(s, &nnames);

	if (s->kind != SQI_INSERT && s->kind != SQI_COPY)
		return 0;
	for (int16_t a = 0; a < t->ncols; a++) {
		const struct pp_column *col = &t->cols[a];
		size_t i = 0;
		if (!col->name || !col->pc || !col->pc->encrypt || !col->defaulted)
			continue;
		while (i < nnames && strcmp(names[i], col->name))
			i++;
		/* (COPY with no list: every column but the generated ones) */
		bool left = s->kind == SQI_COPY && !nnames ? col->generated : i == nnames;
		if (left)
			return pxe_refuse(why, n, DEFAULTED, t->name, col->name);
	}
	return 0;
}

static int plan_table(struct pxe_plan *p, const struct ppol *pp, const struct pp_table *t,
                      const struct sqi_stmt *s, const char *sql, const struct sqi_literal *lits,
                      bool extended, char *why, size_t n)
{
	if (s->write_all && s->kind != SQI_COPY)
		return pxe_refuse(why, n, ALL_COLUMNS, t->name);
	int derr = defaults_left(t, s, why, n);
	if (derr)
		return derr;
	if (s->kind == SQI_COPY)
		return plan_copy(p, t, s, why, n);
	derr = pxm_table(pp, t, s, why, n);
	if (derr)
		return derr;
	for (size_t i = 0; s->writes_partial && i < s->nwrite_cols; i++) {
		const struct pp_column *col = ppol_column_named(t, s->write_cols[i]);
		if (col && col->pc && col->pc->encrypt)
			return pxe_refuse(
			    why, n,
			    "Custos encrypts values one by one, not the rows of INSERT ... SELECT: %s.%s "
			    "is encrypted",
			    t->name, col->name);
	}
	int err = 0;
	for (size_t i = 0; !err && i < s->nwrites; i++) {
		const struct pp_column *col = ppol_column_named(t, s->writes[i].column);
		if (!col || !col->pc || !col->pc->encrypt)
			continue;
		if (s->writes_partial || (s->writes[i].upsert && p->nrows > 1))
			return pxe_refuse(
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

/* The encrypted column a reference names (qual: its table or alias, or
 * NULL), among the statement's tables; NULL when it names none. */
static const struct pp_column *encrypted_col(struct pconn *c, const struct sqi_stmt *s, const char *qual,
                                             const char *column)
{
	for (size_t i = 0; i < s->ntables; i++) {
		const struct sqi_table *st = &s->tables[i];
		if (qual && strcmp(qual, st->alias ? st->alias : st->name))
			continue;
		const struct pp_table *t = ppol_by_name(c->px->pp, st->schema, st->name);
		const struct pp_column *col = t ? ppol_column_named(t, column) : NULL;
		if (col && col->pc && col->pc->encrypt)
			return col;
	}
	return NULL;
}

/* Comparisons with encrypted columns: through their blind index, or refused
 * (a comparison with ciphertext would find nothing, silently). */
static int plan_lookups(struct pconn *c, struct pxe_plan *p, const struct sqi_stmt *s, const char *sql,
                        const struct sqi_literal *lits, bool extended, char *why, size_t n)
{
	for (size_t i = 0; i < s->nuses; i++) {
		const struct pp_column *col = encrypted_col(c, s, s->uses[i].qual, s->uses[i].column);
		if (col)
			return pxe_refuse(
			    why, n,
			    "the encrypted column %s.%s is used in an expression (compared, joined "
			    "on, sorted, grouped, or passed to a function or an operator), where "
			    "PostgreSQL would see its ciphertext only: Custos compares it as `%s = "
			    "value` at the top level of a WHERE clause, through its blind index",
			    col->table, col->name, col->name);
	}
	for (size_t i = 0; i < s->npreds; i++) {
		const struct sqi_pred *pr = &s->preds[i];
		const struct pp_column *col = pr->insert ? NULL : encrypted_col(c, s, pr->qual, pr->column);
		if (!col)
			continue;
		if (!col->pc->bidx_column || col->bytea)
			return pxe_refuse(
			    why, n,
			    "the encrypted column %s.%s has no blind index: it cannot be compared "
			    "with a value",
			    col->table, col->name);
		if (!pr->plain || (!pr->param && (pr->literal < 0 || !literal_ok(&lits[pr->literal]))) ||
		    (pr->param && (!extended || params_in(sql, pr->param, NULL) != 1)))
			return pxe_refuse(
			    why, n,
			    "compare the encrypted column %s.%s as `%s = value` (a plain string or a "
			    "parameter used once): Custos looks it up through its blind index",
			    col->table, col->name, col->name);
		struct pxe_lookup *nv = realloc(p->lk, (p->nlk + 1) * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		p->lk = nv;
		nv[p->nlk++] = (struct pxe_lookup){ col, pr->param, pr->param ? -1 : pr->literal, pr->at };
	}
	return 0;
}

/* The highest $n in the text, or the Parse's declared count. */
static int max_param(const char *sql, int declared)
{
	int max = declared;

	params_in(sql, 0, &max);
	return max;
}

static int plan_writes(struct pconn *c, struct pxe_plan *p, const struct sqi_stmt *s, const char *sql,
                       const struct sqi_literal *lits, bool extended, char *why, size_t n)
{
	const struct pp_table *target = NULL;

	for (size_t i = 0; i < s->ntables; i++) {
		const struct pp_table *t =
		    s->tables[i].write && !pd_is_made(c, &s->tables[i])
		        ? ppol_by_name(c->px->pp, s->tables[i].schema, s->tables[i].name)
		        : NULL; /* (made in this transaction: refused as such) */
		if (t && t->also && s->kind != SQI_DELETE)
			return pxe_refuse(why, n, TWO_POLICIES, t->name, t->pt->name, t->also->name);
		if (!t || !pxe_has_encrypted(t))
			continue;
		if (target || !t->cols) /* a second target, or one not in the database */
			return pxe_refuse(why, n, ALL_TARGETS, t->name);
		target = t;
	}
	if (!target)
		return 0;
	p->subject = target->subject;
	p->insert = s->kind == SQI_INSERT;
	p->own_keys = target->resubjects && (p->insert || s->kind == SQI_COPY);
	for (size_t j = 0; j < s->nwrites; j++)
		if (s->writes[j].row + 1 > p->nrows)
			p->nrows = s->writes[j].row + 1;
	return columns_known(c->px, target, s, why, n)
	           ?: plan_table(p, c->px->pp, target, s, sql, lits, extended, why, n);
}

/* A write through a view over a table with encrypted columns would put
 * plaintext in them (the proxy does not map a view's columns): refused. */
static int through_view(struct pconn *c, const struct sqi_stmt *s, char *why, size_t n)
{
	for (size_t i = 0; i < s->ntables; i++) {
		const struct pp_table *t[8];
		const struct sqi_table *st = &s->tables[i];
		size_t k =
		    st->write ? ppol_view_tables(c->px->pp, st->schema, st->name, t, ARRAY_SIZE(t)) : 0;
		if (k > ARRAY_SIZE(t))
			return pxe_refuse(why, n, THROUGH_VIEW, "more tables than Custos checks");
		for (size_t j = 0; j < k; j++) {
			if (!pxe_has_encrypted(t[j]))
				continue;
			if (!st->schema && ppol_by_name(c->px->pp, NULL, st->name))
				return pxe_refuse(why, n, AMBIGUOUS, st->name, t[j]->name);
			return pxe_refuse(why, n, THROUGH_VIEW, t[j]->name);
		}
	}
	return 0;
}

/* The next part of a name format_type() prints (schema.name, either
 * perhaps quoted, "" doubling a quote) into part, from *p on; *p is left
 * past it and its dot. */
static void name_part(const char **p, char *part, size_t max)
{
	const char *q = *p;
	size_t n = 0;
	bool quoted = *q == '"';

	for (q += quoted; *q && (quoted ? !(q[0] == '"' && q[1] != '"') : *q != '.'); q++) {
		if (quoted && q[0] == '"')
			q++;
		if (n + 1 < max)
			part[n++] = *q;
	}
	q += quoted && *q == '"';
	*p = q + (*q == '.');
	part[n] = 0;
}

/* Whether a column's type (format_type()) is the domain [schema.]name;
 * an unqualified one matches any schema (it is the one search_path
 * finds, which only refuses more). */
static bool type_named(const char *type, const char *schema, const char *name)
{
	char a[NAMEDATALEN_MAX], b[NAMEDATALEN_MAX];
	const char *p = type ? type : "";

	name_part(&p, a, sizeof(a));
	if (!*p)
		return !strcmp(a, name);
	name_part(&p, b, sizeof(b));
	return !*p && !strcmp(b, name) && (!schema || !strcmp(a, schema));
}

/* DDL that has PostgreSQL fill in an encrypted column's values (sqlddl.c
 * says which: a default, a generated or identity column, a domain or new
 * type, given by ALTER TABLE, CREATE TABLE of a policy table's name or of
 * its child, or ALTER DOMAIN of an encrypted column's type): refused,
 * since what PostgreSQL fills in is never encrypted. */
static int defaults_set(const struct ppol *pp, const struct sqi_stmt *s, char *why, size_t n)
{
	for (size_t i = 0; i < s->ndefaults; i++) {
		const struct sqi_default *d = &s->defaults[i];
		for (size_t j = 0; !d->table && j < pp->n; j++) /* a domain */
			for (int16_t a = 0; a < pp->t[j].ncols; a++) {
				const struct pp_column *col = &pp->t[j].cols[a];
				if (col->pc && col->pc->encrypt &&
				    type_named(col->type, d->schema, d->column))
					return pxe_refuse(why, n, DEFAULT_SET, pp->t[j].name, col->name);
			}
		const struct pp_table *t = d->table ? ppol_by_name(pp, d->schema, d->table) : NULL;
		const struct pp_column *col = t && t->cols ? ppol_column_named(t, d->column) : NULL;
		const struct pol_column *pc = col ? col->pc : t ? pol_column(t->pt, d->column) : NULL;
		if (pc && pc->encrypt)
			return pxe_refuse(why, n, DEFAULT_SET, t->name, d->column);
	}
	return 0;
}

int pxe_plan(struct pconn *c, const struct sqi_stmt *s, const char *sql, const struct sqi_literal *lits,
             int parse_nparams, struct pxe_plan **ret, char *why, size_t n)
{
	bool encrypted = false; /* most statements touch no encrypted table: nothing to plan */
	for (size_t i = 0; i < s->ntables && !encrypted; i++) {
		const struct pp_table *t = ppol_by_name(c->px->pp, s->tables[i].schema, s->tables[i].name);
		encrypted = t && (pxe_has_encrypted(t) || t->also);
	}
	*ret = NULL;
	int verr = through_view(c, s, why, n) ?: defaults_set(c->px->pp, s, why, n)
	                                       ?: pxm_cascades(c->px->pp, s, why, n);
	if (verr)
		return verr;
	if (!encrypted)
		return 0;
	struct pxe_plan *p = calloc(1, sizeof(*p));
	int err = p ? plan_writes(c, p, s, sql, lits, parse_nparams >= 0, why, n) : -ENOMEM;

	if (!err)
		err = plan_lookups(c, p, s, sql, lits, parse_nparams >= 0, why, n);
	if (!err && parse_nparams >= 0) { /* the blind indexes of parameters: parameters of their own */
		int next = max_param(sql, parse_nparams);
		for (size_t i = 0; i < p->n; i++)
			if (p->v[i].col->pc->bidx_column && p->v[i].param) {
				p->v[i].bidx_param = ++next;
				p->nextra++;
			}
		if (next > 65535 - 1)
			err = pxe_refuse(why, n, "too many parameters to add blind indexes to");
	}
	if (err || (!p->n && !p->nlk && !p->copy)) {
		pxe_plan_free(p);
		p = NULL;
	}
	*ret = p;
	return err;
}
