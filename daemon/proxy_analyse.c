#define _GNU_SOURCE
/* proxy_analyse.c - what a statement touches, as the proxy keeps it for
 * the statement's life (struct pstmt): from its analysis (sqlinfo.c) and
 * the policy, the tables and columns it reaches, directly or through code
 * the database runs for it, the subjects its predicates name, whether it
 * is recorded and what it holds back, and the refusal it earns when
 * Custos cannot see, encrypt or attribute what it does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "proxy_conn.h"

/* The policy table a predicate's column belongs to, when that column holds
 * a subject's id: among the statement's tables, the one its qualifier
 * names (or the insert's target), else any with a subject column of
 * that name. */
static const struct pp_table *pred_table(const struct ppol *pp, const struct sqi_stmt *s,
                                         const struct sqi_pred *p)
{
	for (size_t i = 0; i < s->ntables; i++) {
		const struct sqi_table *t = &s->tables[i];
		if (p->qual && strcmp(p->qual, t->alias ? t->alias : t->name))
			continue;
		if (p->insert && !t->write)
			continue;
		const struct pp_table *pt = ppol_by_name(pp, t->schema, t->name);
		if (pt && pt->subject_col && !strcmp(pt->subject_col, p->column))
			return pt;
	}
	return NULL;
}

int pq_literal_id(const struct sqi_literal *l, uint32_t type, bool bare, char **ret)
{
	*ret = NULL;
	if (idt_string(type) && (!bare || l->number))
		return -ENOTSUP; /* PostgreSQL converts it: '007'::int8 or 007 is stored as 7 */
	char *text = sqi_literal_text(l);
	int err = text ? idt_dup(type, text, strlen(text), ret) : -ENOMEM;

	free(text);
	return err;
}

static int subject_preds(struct pconn *c, const struct sqi_stmt *s, const struct sqi_literal *lits,
                         size_t nlits, struct pstmt *st)
{
	for (size_t i = 0; i < s->npreds; i++) {
		const struct sqi_pred *p = &s->preds[i];
		const struct pp_table *t = pred_table(c->px->pp, s, p);
		const struct pp_column *col = t ? ppol_column_named(t, t->subject_col) : NULL;
		bool lit = p->literal >= 0 && (size_t)p->literal < nlits;
		char *value = NULL;
		if (p->col_cast) /* id::int::bool = '1' matches many: attributed from rows, or counted */
			continue;
		int verr =
		    t && lit ? pq_literal_id(&lits[p->literal], col ? col->type_oid : 0, p->bare, &value) : 0;
		if (verr == -ENOMEM)
			return verr;
		if (!t || (!p->param && !value)) { /* (an id Custos cannot read as stored: nobody named) */
			free(value);
			continue;
		}
		struct spred *v = realloc(st->sp, (st->nsp + 1) * sizeof(*v));
		char *type = v ? strdup(t->subject) : NULL;
		if (v)
			st->sp = v;
		if (!type) {
			free(value);
			return -ENOMEM;
		}
		uint32_t id_type = col ? col->type_oid : 0;
		v[st->nsp++] =
		    (struct spred){ type, value, p->param, p->bare ? id_type : 0, id_type, !p->bare };
	}
	return 0;
}

/* The policy tables a table named in a statement stands for: itself, or
 * those a view reads (a view of a policy table is personal data too). */
static size_t named_tables(const struct ppol *pp, const struct sqi_table *t, const struct pp_table **out,
                           size_t max)
{
	const struct pp_table *pt = ppol_by_name(pp, t->schema, t->name);

	if (pt)
		out[0] = pt;
	return pt ? 1 : ppol_view_tables(pp, t->schema, t->name, out, max);
}

/* Whether a statement may change what it touches as PostgreSQL runs it:
 * all but reads (a SELECT writing through no CTE, COPY TO, cursors) and
 * statements that change no row (PREPARE, LOCK, VACUUM, CLUSTER, GRANT). */
static bool may_write(const struct sqi_stmt *s, const struct pstmt *st)
{
	static const char *const unchanging[] = { "DeclareCursorStmt", "FetchStmt",
		                                  "ClosePortalStmt",   "PrepareStmt", /* EXECUTE runs it */
		                                  "LockStmt",          "VacuumStmt",
		                                  "ClusterStmt",       "GrantStmt" };

	for (size_t i = 0; i < ARRAY_SIZE(unchanging); i++)
		if (!strcmp(s->normalized, unchanging[i]))
			return false;
	for (size_t i = 0; i < s->ntables; i++)
		if (s->tables[i].write)
			return true;
	return s->kind != SQI_SELECT && !st->copy_out;
}

/* A policy table the statement touches goes into its record's detail
 * once: one it names is marked in what its routines reach. */
#define LISTED 0x80
static void add_touched(const struct ppol *pp, struct buf *d, struct pstmt *st, const struct pp_table *t,
                        uint8_t *reach)
{
	if (reach && (reach[t - pp->t] & LISTED))
		return;
	if (reach)
		reach[t - pp->t] |= LISTED;
	buf_adds(d, st->sensitive ? "," : ",\"tables\":[");
	jw_str(d, t->name);
	if (!st->sensitive)
		st->table = strdup(t->name);
	st->sensitive = true;
}

static bool reach_writes(const struct ppol *pp, const struct pp_reach *r)
{
	for (size_t i = 0; r->t && i < pp->n; i++)
		if (r->t[i] & PPR_WRITE)
			return true;
	return false;
}

/* The table whose subject column code the statement runs updates, or
 * NULL. */
static const char *moves_subject(const struct ppol *pp, const struct pp_reach *r)
{
	for (size_t i = 0; r->t && i < pp->n; i++)
		if (r->t[i] & PPR_MOVE)
			return pp->t[i].name;
	return NULL;
}

/* Code the statement runs that Custos cannot see (a DO block's, a
 * routine's) is refused while the policy has tables: it may touch them
 * unrecorded (a DO block with a part libpg_query does not parse only when
 * its text names what could lead to one). So is a routine writing into
 * an encrypted column (what it writes there is computed in the database,
 * where no key is), or into the subject column of a table with one (its
 * rows would move to another subject, proxy_moves.c). */
static void ran_code(const struct ppol *pp, const struct sqi_stmt *s, struct pstmt *st,
                     const struct pp_reach *r)
{
	const char *moved;

	if (*st->refusal || !pp->n)
		return;
	bool unseen = (s->hidden & (SQI_HIDDEN_DYNAMIC | SQI_HIDDEN_LANGUAGE | SQI_HIDDEN_MISREAD)) ||
	              ((s->hidden & SQI_HIDDEN_UNPARSED) && (!s->body || ppol_mentions(pp, s->body)));
	if (unseen || r->hidden) {
		snprintf(
		    st->refusal, sizeof(st->refusal),
		    "Custos cannot see what %s runs (EXECUTE, a language other than SQL and PL/pgSQL, "
		    "code it does not parse or may read otherwise than PostgreSQL, or a change of how the "
		    "statements after it read): it might touch personal data unrecorded",
		    r->hidden ? r->hidden : "this DO block");
		st->refusal_code = PX_ERR_ANALYSE;
	} else if (r->enc) {
		snprintf(st->refusal, sizeof(st->refusal),
		         "Custos cannot encrypt what %s writes into an encrypted column: its values are "
		         "computed in the database",
		         r->enc);
		st->refusal_code = PX_ERR_ENCRYPT;
	} else if ((moved = moves_subject(pp, r))) {
		snprintf(
		    st->refusal, sizeof(st->refusal),
		    "Custos does not move rows to another subject: code this statement runs (a routine it "
		    "calls, a trigger, a rule) writes the subject column of %s, itself or through a foreign "
		    "key, and its encrypted values are under its subject's key",
		    moved);
		st->refusal_code = PX_ERR_ENCRYPT;
	}
}

static int dup_names(char ***out, size_t *nout, char *const *in, size_t n)
{
	if (n && !(*out = calloc(n, sizeof(char *))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!((*out)[(*nout)++] = strdup(in[i])))
			return -ENOMEM;
	return 0;
}

/* COPY table TO, in the text format, CSV or binary: its rows are
 * decrypted as they go out. -ENOMEM, or 0. */
static int copy_out(struct pstmt *st, const struct sqi_stmt *s)
{
	if (s->kind != SQI_COPY || !(s->copy_plain || s->copy_binary) || s->ntables != 1 ||
	    s->tables[0].write)
		return 0;
	st->copy_out = true;
	st->copy_binary = s->copy_binary;
	st->copy_fmt = s->copy_format;
	st->copy_header = s->copy_header;
	st->copy_quote_all = s->copy_quote_all;
	return dup_names(&st->copy_cols, &st->ncopy_cols, s->copy_cols, s->ncopy_cols)
	           ?: dup_names(&st->copy_quote, &st->ncopy_quote, s->copy_quote, s->ncopy_quote);
}

/* The record's detail: the statement's kind and the policy tables it
 * touches (those it names, those views it names read, those the code it
 * runs reaches); the first is the record's table. */
static void describe(const struct ppol *pp, const struct sqi_stmt *s, struct pstmt *st, uint8_t *reach,
                     struct buf *d)
{
	buf_adds(d, "{\"kind\":");
	jw_str(d, sqi_kind_name(s->kind));
	for (size_t i = 0; i < s->ntables; i++) {
		const struct pp_table *ts[8];
		size_t n = named_tables(pp, &s->tables[i], ts, ARRAY_SIZE(ts));
		for (size_t j = 0; j < n && j < ARRAY_SIZE(ts); j++)
			add_touched(pp, d, st, ts[j], reach);
	}
	for (size_t i = 0; reach && i < pp->n; i++)
		if (reach[i])
			add_touched(pp, d, st, &pp->t[i], reach);
	buf_adds(d, st->sensitive ? "]}" : "}");
	buf_addc(d, 0);
}

struct pstmt *pq_analysed(struct pconn *c, const struct sqi_stmt *s, const char *sql,
                          const struct sqi_literal *lits, size_t nlits, int parse_nparams)
{
	struct proxy *px = c->px;
	struct pstmt *st = calloc(1, sizeof(*st));
	struct buf d = BUF_INIT;

	if (!st)
		return NULL;
	st->refs = 1;
	st->pp = ppol_ref(px->pp); /* its plan points into it: a reload must not free it */
	st->kind = s->kind;
	int err = pxe_plan(c, s, sql, lits, parse_nparams, &st->enc, st->refusal, sizeof(st->refusal));
	if (err && err != -EPERM) {
		pq_st_unref(st);
		return NULL;
	}
	memcpy(st->fp, s->fingerprint, sizeof(st->fp));
	struct pp_reach reach;
	if (copy_out(st, s) || ppol_reach(px->pp, s, &reach)) {
		pq_st_unref(st);
		return NULL;
	}
	if (*st->refusal)
		st->refusal_code = PX_ERR_ENCRYPT;
	ran_code(px->pp, s, st, &reach);
	bool run_writes = reach_writes(px->pp, &reach);
	describe(px->pp, s, st, reach.t, &d);
	if (pd_analysed(c, s, st)) {
		free(reach.t);
		buf_free(&d);
		pq_st_unref(st);
		return NULL;
	}
	/* a cursor or SQL-level prepared statement over personal data: what
	 * FETCH or EXECUTE returns later is taken as personal data too */
	bool defines = !strcmp(s->normalized, "DeclareCursorStmt") || !strcmp(s->normalized, "PrepareStmt");
	bool uses = !strcmp(s->normalized, "FetchStmt") || !strcmp(s->normalized, "ExecuteStmt");
	if (defines && st->sensitive)
		c->named_sensitive = true;
	if (uses && c->named_sensitive)
		st->sensitive = true;
	st->record = st->sensitive || px->env->cfg->audit_statements == CFG_AUDIT_ALL;
	st->writes = st->sensitive && (may_write(s, st) || run_writes);
	free(reach.t);
	st->detail = d.p;
	st->text = strdup(s->normalized); /* a result may yet show personal data (map_result) */
	if (d.failed || (st->sensitive && !st->table && !uses) || !st->text ||
	    (st->sensitive && subject_preds(c, s, lits, nlits, st))) {
		if (d.failed)
			st->detail = NULL, buf_free(&d);
		pq_st_unref(st);
		return NULL;
	}
	return st;
}
