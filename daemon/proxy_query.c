#define _GNU_SOURCE
/* proxy_query.c - the query protocol through the proxy: the frontend's
 * side (statements, the queue of expected responses, definitions,
 * refusals). proxy_analyse.c works out what each statement touches,
 * proxy_result.c follows the backend's responses and proxy_record.c
 * records them.
 *
 * Every frontend message that the backend answers pushes what it owes
 * onto a queue (xentry); backend messages are matched against its head,
 * so each result is tied to its statement whatever the pipelining. A
 * statement on a policy table (by name from its analysis, or because its
 * result carries policy columns) is recorded when it completes, and what
 * the client would see from its first result message on is held back
 * until that record is durable (holds, in proxy_conn.c). Records of
 * other statements (audit_statements = all) hold nothing.
 *
 * What cannot be analysed, or recorded, is refused with an ErrorResponse
 * of class QC, in order with the responses before it: simple queries get
 * their ReadyForQuery from the proxy, the extended protocol drops messages
 * up to the next Sync, which PostgreSQL answers. */
#include <errno.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_conn.h"
#include "proxy_encrypt.h"
#include "sqlreading.h"

/* --- statements and portals ------------------------------------------------ */

struct pstmt *pq_st_ref(struct pstmt *st)
{
	if (st)
		st->refs++;
	return st;
}

void pq_st_unref(struct pstmt *st)
{
	if (!st || --st->refs)
		return;
	free(st->text);
	free(st->table);
	free(st->detail);
	for (size_t i = 0; i < st->nsp; i++) {
		free(st->sp[i].type);
		free(st->sp[i].value);
	}
	free(st->sp);
	free(st->ptypes);
	free(st->itypes);
	pxe_plan_free(st->enc);
	sqi_names_free(st->made, st->nmade);
	sqi_names_free(st->names, st->nnames);
	for (size_t i = 0; i < st->ncopy_cols; i++)
		free(st->copy_cols[i]);
	free(st->copy_cols);
	for (size_t i = 0; i < st->ncopy_quote; i++)
		free(st->copy_quote[i]);
	free(st->copy_quote);
	ppol_unref(st->pp);
	free(st);
}

void pq_map_unref(struct colmap *m)
{
	if (!m || --m->refs)
		return;
	ppol_unref(m->pp);
	free(m->f);
	free(m->out);
	free(m->form);
	free(m->binary);
	free(m->quote);
	free(m->fields);
	free(m);
}

struct portal *pq_portal_ref(struct portal *p)
{
	if (p)
		p->refs++;
	return p;
}

void pq_portal_unref(struct portal *p)
{
	if (!p || --p->refs)
		return;
	for (size_t i = 0; p->ids && i < p->st->nsp; i++)
		free(p->ids[i]);
	free(p->ids);
	pq_st_unref(p->st);
	pq_map_unref(p->map);
	free(p);
}

/* --- the queue of expected responses ---------------------------------------- */

int pq_push(struct pconn *c, struct xentry e)
{
	if (c->qhead && c->qhead == c->qn)
		c->qhead = c->qn = 0;
	if (c->qn == c->qcap) {
		if (c->qhead) {
			memmove(c->q, c->q + c->qhead, (c->qn - c->qhead) * sizeof(*c->q));
			c->qn -= c->qhead;
			c->qhead = 0;
		} else {
			size_t cap = c->qcap ? 2 * c->qcap : 16;
			struct xentry *q = cap <= PX_MAX_PIPELINE ? realloc(c->q, cap * sizeof(*q)) : NULL;
			if (!q) {
				pq_st_unref(e.st);
				pq_portal_unref(e.portal);
				free(e.name);
				return -ENOBUFS;
			}
			c->q = q;
			c->qcap = cap;
		}
	}
	e.serial = ++c->serials;
	c->q[c->qn++] = e;
	return 0;
}

struct xentry *pq_head(struct pconn *c)
{
	return c->qhead < c->qn ? &c->q[c->qhead] : NULL;
}

void pq_res_reset(struct pconn *c)
{
	struct result *r = &c->res;

	if (r->hold) { /* a result that needed no record after all (an empty query) */
		r->hold->state = H_FREE;
		r->hold = NULL;
		pc_release(c);
	}
	pq_map_unref(r->map);
	for (size_t i = 0; i < r->nsubjects; i++)
		free((char *)r->subjects[i].id);
	free(r->subjects);
	*r = (struct result){ 0 };
}

void pq_pop(struct pconn *c)
{
	struct xentry *e = pq_head(c);

	if (!e)
		return;
	if (e->st && e->st->code_ddl)
		c->code_reload |=
		    e->st->code_ddl; /* it ran, or failed: read the catalog once its transaction ends */
	pq_st_unref(e->st);
	pq_portal_unref(e->portal);
	free(e->name);
	free(e->msg); /* a refusal passed over */
	c->qhead++;
	pq_res_reset(c);
}

/* A refusal fails on the server too, as an error there would: the proxy
 * sends, in place of what it refused, a statement that cannot succeed,
 * and puts its own error in place of the server's answer to it (an error
 * whatever state the session is in: 25P02 in a failed transaction, 42P05
 * should the client have a statement of that name). A transaction the
 * refused statement was part of is aborted on the server, not only in the
 * client's eyes; the answers keep their order without the proxy having to
 * keep it. The extended protocol's failing Parse is a named one: a failed
 * Parse of the unnamed statement would drop the client's. */
static const char refused_sql[] = "SELECT 'Custos refused a statement'::pg_catalog.int4";

int pq_send_failing(struct pconn *c, bool simple)
{
	struct buf body = BUF_INIT, msg = BUF_INIT;

	if (!simple)
		buf_add(&body, "custos_refused", sizeof("custos_refused"));
	buf_add(&body, refused_sql, sizeof(refused_sql));
	if (!simple)
		pgp_add16(&body, 0);
	pgp_message(&msg, simple ? 'Q' : 'P', body.p, body.len);
	int err = body.failed || msg.failed || pc_to_server(c, msg.p, msg.len) ? -ENOMEM : 0;
	buf_free(&body);
	buf_free(&msg);
	return err;
}

static int refuse(struct pconn *c, enum xkind kind, const char *sqlstate, const char *msg)
{
	char *copy = strdup(msg);
	int err =
	    copy ? pq_push(c, (struct xentry){ .kind = kind, .sqlstate = sqlstate, .msg = copy }) : -ENOMEM;

	if (err) {
		free(copy);
		return err;
	}
	if (kind == X_REFUSE_Q && (err = pq_push(c, (struct xentry){ .kind = X_QEND })))
		return err;
	if (kind == X_REFUSE_X)
		c->skip = true;
	return pq_send_failing(c, kind == X_REFUSE_Q) ?: 1;
}

/* --- named statements and portals ------------------------------------------- */

static struct named *find(struct named *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].name, name))
			return &v[i];
	return NULL;
}

/* Definitions take effect when the server confirms them (ParseComplete,
 * BindComplete, CloseComplete): a Parse of a name in use fails there and
 * the old statement stays. Until then, later messages of the same
 * pipeline see the pending definition. what: 'S' or 'P'. */
static const struct xentry *pending(struct pconn *c, char what, const char *name)
{
	for (size_t i = c->qn; i-- > c->qhead;) {
		const struct xentry *e = &c->q[i];
		if (e->name && e->what == what && !strcmp(e->name, name))
			return e;
	}
	return NULL;
}

static struct pstmt *lookup_stmt(struct pconn *c, const char *name, bool *found)
{
	const struct xentry *e = pending(c, 'S', name);
	struct named *n = e ? NULL : find(c->stmts, c->nstmts, name);

	*found = (e && e->kind == X_PARSE) || n;
	return e ? (e->kind == X_PARSE ? e->st : NULL) : n ? n->obj : NULL;
}

static struct portal *lookup_portal(struct pconn *c, const char *name)
{
	const struct xentry *e = pending(c, 'P', name);
	struct named *n = e ? NULL : find(c->portals, c->nportals, name);

	return e ? (e->kind == X_BIND ? e->portal : NULL) : n ? n->obj : NULL;
}

static int set_named(struct named **v, size_t *n, const char *name, void *obj, void (*unref)(void *))
{
	struct named *e = find(*v, *n, name);

	if (e) {
		unref(e->obj);
		e->obj = obj;
		return 0;
	}
	if (*n == PX_MAX_NAMED)
		return -ENOBUFS;
	struct named *nv = realloc(*v, (*n + 1) * sizeof(*nv));
	char *copy = strdup(name);
	if (nv)
		*v = nv;
	if (!nv || !copy) {
		free(copy);
		return -ENOMEM;
	}
	nv[(*n)++] = (struct named){ copy, obj };
	return 0;
}

static void drop_named(struct named *v, size_t *n, const char *name, void (*unref)(void *))
{
	struct named *e = find(v, *n, name);

	if (!e)
		return;
	unref(e->obj);
	free(e->name);
	*e = v[--*n];
}

static void st_unref_v(void *p)
{
	pq_st_unref(p);
}

static void portal_unref_v(void *p)
{
	pq_portal_unref(p);
}

/* --- the frontend ----------------------------------------------------------- */

static const char *unavailable(struct pconn *c, bool sensitive)
{
	if (!c->px->pp)
		return "Custos has no usable policy: statements are refused until it loads";
	if (c->scs_off || c->unsafe_encoding)
		return "Custos reads statements only with standard_conforming_strings on and a client "
		       "encoding "
		       "without backslashes inside characters (UTF8, for one)";
	if (sensitive && !lc_healthy(c->px->lc))
		return "the audit log cannot record this access, so it is refused";
	return NULL;
}

/* A statement that may change how the next ones' text reads (a string
 * ending where libpg_query sees none): the proxy refuses it rather than
 * track a change that could take effect before it sees the server's
 * ParameterStatus (a pipeline, a string of several statements). */
static bool changes_reading(const char *sql, const struct sqi_info *info)
{
	if (strcasestr(sql, "standard_conforming_strings") || strcasestr(sql, "client_encoding") ||
	    strcasestr(sql, "backslash_quote"))
		return !sqr_keeps_reading(sql);
	for (size_t i = 0; i < info->n; i++) {
		const struct sqi_stmt *st = &info->stmts[i];
		bool set = !strcmp(st->normalized, "VariableSetStmt") ||
		           !strcmp(st->normalized, "AlterSystemStmt"); /* in effect at the next reload */
		if (st->hidden & SQI_HIDDEN_READING)
			return true; /* a DO block's statement */
		if (set && strcasestr(sql, "names"))
			return !sqr_keeps_reading(sql); /* SET NAMES */
		for (size_t k = 0; !set && k < st->ncalls; k++)
			set = !strcmp(st->calls[k].name, "set_config");
		if (set && !strcmp(st->normalized, "DoStmt"))
			return true; /* its body's calls: no constant to read there */
		if (set)             /* in other spellings: U&"...", E'\137', a name computed */
			return sqr_changes_reading(sql);
	}
	return false;
}

static const char *const reading_refusal =
    "changing standard_conforming_strings or the client encoding through Custos is refused: it changes "
    "how statements read";

/* A text that reaches PostgreSQL before it has told the proxy what the
 * statements before it changed (a ParameterStatus comes only with
 * ReadyForQuery): code they ran (a view's, a default's, an operator's)
 * may have changed how it reads. It must read alike either way. */
static bool unsure(struct pconn *c)
{
	return c->ran || pq_head(c);
}

static bool reads_unsure(struct pconn *c, const char *sql)
{
	return unsure(c) && !sqr_reads_alike(sql, strlen(sql), true);
}

/* COPY FROM's rows, which the proxy splits to encrypt their values, are
 * read by PostgreSQL in the client encoding of when they come: statements
 * before the COPY (in its Query too) may have changed it unreported. */
static void copy_unsure(struct pstmt *st, bool after_others)
{
	if (!after_others || !st || st->kind != SQI_COPY || !st->enc || !st->enc->copy || *st->refusal)
		return;
	snprintf(
	    st->refusal, sizeof(st->refusal),
	    "COPY FROM into encrypted columns is refused after statements PostgreSQL has not finished "
	    "(in its Query string, too): they may have changed the client encoding its rows are read in");
	st->refusal_code = PX_ERR_ANALYSE;
}

static const char *const unsure_refusal =
    "this statement reads otherwise with standard_conforming_strings off or another client encoding "
    "(a backslash in a string), and statements before it that PostgreSQL has not finished may have "
    "changed those: Custos refuses it rather than read it one way while PostgreSQL reads it another";

static int on_query(struct pconn *c, const struct pgp_msg *m)
{
	const char *sql, *why;
	const struct sqi_info *info;
	const struct sqi_literal *lits;
	size_t nlits;
	char err[128];
	char msg[192];

	if (pgp_parse_query(m, &sql))
		return -EBADMSG;
	if ((why = unavailable(c, false)))
		return refuse(c, X_REFUSE_Q, PX_ERR_POLICY, why);
	if (sqi_cache_get(c->px->sqi, sql, &info, &lits, &nlits, err, sizeof(err))) {
		snprintf(msg, sizeof(msg), "Custos cannot analyse this statement (%s)", err);
		return refuse(c, X_REFUSE_Q, PX_ERR_ANALYSE, msg);
	}
	if (changes_reading(sql, info))
		return refuse(c, X_REFUSE_Q, PX_ERR_ANALYSE, reading_refusal);
	if (reads_unsure(c, sql))
		return refuse(c, X_REFUSE_Q, PX_ERR_ANALYSE, unsure_refusal);
	size_t pushed = 0; /* pq_push() may compact the queue: count, do not remember where */
	size_t made = c->nmade;
	bool sensitive = false;
	int r = 0;
	char refusal[sizeof(((struct pstmt *)0)->refusal)] = "";
	const char *refusal_code = PX_ERR_ENCRYPT;
	struct pxe_plan **plans = calloc(info->n ? info->n : 1, sizeof(*plans));
	size_t nplans = 0;
	bool after_others = unsure(c);
	for (size_t i = 0; !r && i < info->n; i++) {
		struct pstmt *st = plans ? pq_analysed(c, &info->stmts[i], sql, lits, nlits, -1) : NULL;
		copy_unsure(st, after_others || i > 0);
		r = st ? pq_push(c, (struct xentry){ .kind = X_QSTMT, .st = st }) : -ENOMEM;
		pushed += !r;
		sensitive |= st && st->sensitive;
		if (st && *st->refusal && !*refusal) {
			memcpy(refusal, st->refusal, sizeof(refusal));
			refusal_code = st->refusal_code;
		}
		if (!r && st->enc)
			plans[nplans++] = st->enc;
	}
	if (!r && !info->n && !(r = pq_push(c, (struct xentry){ .kind = X_QSTMT })))
		pushed++;
	struct buf text = BUF_INIT;
	int enc = !r && nplans && !*refusal ? pxe_query(c, sql, lits, plans, info->n, &text) : 0;
	free(plans);
	if (!r && ((why = unavailable(c, sensitive)) || *refusal || enc)) {
		buf_free(&text);
		for (; pushed; pushed--) { /* none of it runs (yet) */
			c->qn--;
			pq_st_unref(c->q[c->qn].st);
		}
		pd_forget_made(c, made);
		if (*refusal)
			return refuse(c, X_REFUSE_Q, refusal_code, refusal);
		if (enc && enc != -EINPROGRESS)
			return refuse(c, X_REFUSE_Q, PX_ERR_ENCRYPT, pxe_strerror(enc));
		return why ? refuse(c, X_REFUSE_Q, PX_ERR_LOG, why) : 3; /* 3: again when its keys come */
	}
	c->px->st.statements += info->n;
	for (size_t i = 0; !r && i < pushed; i++) { /* a COPY's rows: encrypted from the first */
		const struct xentry *e = &c->q[c->qn - pushed + i];
		r = e->st && e->st->writes ? pq_attempt(c, e->st, NULL, e->serial) : 0;
		if (!r)
			r = pxi_start(c, e->st);
	}
	if (!r && text.p) { /* the text with its values encrypted goes instead */
		struct buf q = BUF_INIT;
		pgp_message(&q, 'Q', text.p, text.len);
		r = q.failed || pc_to_server(c, q.p, q.len) ? -ENOMEM : 1;
		buf_free(&q);
	}
	buf_free(&text);
	int e = r < 0 ? r : pq_push(c, (struct xentry){ .kind = X_QEND });
	return e ? e : r;
}

static int send_parse(struct pconn *c, const struct pgp_parse *p, const char *query)
{
	struct buf body = BUF_INIT, msg = BUF_INIT;

	buf_add(&body, p->name, strlen(p->name) + 1);
	buf_add(&body, query, strlen(query) + 1);
	pgp_add16(&body, p->nparams);
	if (p->nparams)
		buf_add(&body, p->param_oids, 4u * p->nparams);
	pgp_message(&msg, 'P', body.p, body.len);
	int r = body.failed || msg.failed || pc_to_server(c, msg.p, msg.len) ? -ENOMEM : 1;
	buf_free(&body);
	buf_free(&msg);
	return r;
}

/* Room for param's type in both of st's arrays. */
static int param_room(struct pstmt *st, unsigned param)
{
	if (param <= st->nptypes)
		return 0;
	uint32_t *told = realloc(st->ptypes, param * sizeof(*told));
	if (told)
		st->ptypes = told;
	uint32_t *inferred = told ? realloc(st->itypes, param * sizeof(*inferred)) : NULL;
	if (!inferred)
		return -ENOMEM;
	st->itypes = inferred;
	memset(told + st->nptypes, 0, (param - st->nptypes) * sizeof(*told));
	memset(inferred + st->nptypes, 0, (param - st->nptypes) * sizeof(*inferred));
	st->nptypes = (uint16_t)param;
	return 0;
}

/* Parameter param's type, as Parse tells it or as its use implies (a
 * subject's id compared with or written into its column, uncast). A
 * number no Bind can reach is let be. */
static int param_type(struct pstmt *st, int param, uint32_t type, bool told)
{
	if (param < 1 || param > PGP_MAX_BIND || !type)
		return 0;
	if (param_room(st, (unsigned)param))
		return -ENOMEM;
	uint32_t *slot = &(told ? st->ptypes : st->itypes)[param - 1];
	if (!*slot)
		*slot = type;
	return 0;
}

/* The types of st's parameters, for those bound in binary: Parse's, and
 * for one that holds a subject's id, uncast, its column's (what
 * PostgreSQL infers). ParameterDescription fills in Parse's blanks. */
static int param_types(struct pstmt *st, const struct pgp_parse *p)
{
	int err = 0;
	uint32_t type;
	int param;

	for (uint16_t i = 0; i < p->nparams && !err; i++)
		err = param_type(st, i + 1, pgp_get32(p->param_oids + 4u * i), true);
	for (size_t i = 0; i < st->nsp && !err; i++)
		err = param_type(st, st->sp[i].param, st->sp[i].col_type, false);
	for (unsigned r = 0; (param = pxe_subject_param(st->enc, r, &type)) >= 0 && !err; r++)
		err = param_type(st, param, type, false);
	return err;
}

static int on_parse(struct pconn *c, const struct pgp_msg *m)
{
	struct pgp_parse p;
	const struct sqi_info *info;
	const struct sqi_literal *lits;
	size_t nlits;
	const char *why;
	char err[128];
	char msg[192];

	if (pgp_parse_parse(m, &p))
		return -EBADMSG;
	if ((why = unavailable(c, false)))
		return refuse(c, X_REFUSE_X, PX_ERR_POLICY, why);
	if (sqi_cache_get(c->px->sqi, p.query, &info, &lits, &nlits, err, sizeof(err))) {
		snprintf(msg, sizeof(msg), "Custos cannot analyse this statement (%s)", err);
		return refuse(c, X_REFUSE_X, PX_ERR_ANALYSE, msg);
	}
	if (changes_reading(p.query, info))
		return refuse(c, X_REFUSE_X, PX_ERR_ANALYSE, reading_refusal);
	if (reads_unsure(c, p.query))
		return refuse(c, X_REFUSE_X, PX_ERR_ANALYSE, unsure_refusal);
	if (info->n > 1) /* PostgreSQL refuses it too; nothing runs */
		return refuse(c, X_REFUSE_X, "42601",
		              "cannot insert multiple commands into a prepared statement");
	struct pstmt *st = info->n ? pq_analysed(c, &info->stmts[0], p.query, lits, nlits, p.nparams) : NULL;
	if (info->n && (!st || pd_keep_names(st, &info->stmts[0]))) {
		pq_st_unref(st);
		return -ENOMEM;
	}
	copy_unsure(st, unsure(c));
	if (st && *st->refusal) {
		int r = refuse(c, X_REFUSE_X, st->refusal_code, st->refusal);
		pq_st_unref(st);
		return r;
	}
	struct buf text = BUF_INIT;
	int enc =
	    st && st->enc && pxe_rewrites_parse(st->enc) ? pxe_parse(c, st->enc, p.query, lits, &text) : 0;
	if (enc) {
		buf_free(&text);
		pq_st_unref(st);
		return enc == -EINPROGRESS ? 3 : refuse(c, X_REFUSE_X, PX_ERR_ENCRYPT, pxe_strerror(enc));
	}
	if (st && param_types(st, &p)) {
		pq_st_unref(st);
		return -ENOMEM;
	}
	char *name = strdup(p.name);
	int r = name ? pq_push(c, (struct xentry){ .kind = X_PARSE, .st = st, .what = 'S', .name = name })
	             : -ENOMEM;
	if (!name)
		pq_st_unref(st);
	if (!r && text.p) /* the text that looks its values up through their blind indexes goes instead */
		r = send_parse(c, &p, text.p);
	buf_free(&text);
	return r;
}

char *pq_param_text(const struct pgp_bind *b, unsigned i, uint32_t col, bool cast, int *err)
{
	const struct pgp_value *v = &b->params[i];
	char room[IDT_ROOM], room2[IDT_ROOM];
	const char *text = (const char *)v->p;
	uint32_t told = i < b->ntypes ? b->types[i] : 0, type = told            ? told
	                                                        : i < b->ntypes ? b->inferred[i]
	                                                                        : 0;
	int len = v->len;
	char *id = NULL;

	if (len < 0)
		return NULL;
	if (pgp_bind_format(b, i) != 0) /* its bytes, through the type they are */
		len = idt_binary(type, v, room, &text);
	else if (idt_string(col) && (cast || (told && !idt_string(told))))
		len = -1; /* converted into the text PostgreSQL stores: '007'::int8 is 7 */
	if (len >= 0)     /* as the column stores it */
		len = idt_text(col, text, (size_t)len, room2, &text);
	if (len < 0)
		*err = -ENOTSUP;
	else if (!(id = strndup(text, (size_t)len)))
		*err = -ENOMEM;
	return id;
}

int pq_param_types(struct pstmt *st, const struct pgp_msg *m)
{
	uint16_t n = m->len >= 2 ? (uint16_t)(m->body[0] << 8 | m->body[1]) : 0;

	if (m->len != 2 + 4u * n)
		return -EBADMSG;
	for (uint16_t i = 0; i < n; i++) /* (Parse's word stands: it is the same) */
		if (param_type(st, i + 1, pgp_get32(m->body + 2 + 4u * i), true))
			return -ENOMEM;
	return 0;
}

static int bound_ids(struct portal *p, const struct pgp_bind *b)
{
	const struct pstmt *st = p->st;

	if (!st || !st->nsp)
		return 0;
	if (!(p->ids = calloc(st->nsp, sizeof(*p->ids))))
		return -ENOMEM;
	for (size_t i = 0; i < st->nsp; i++) {
		int unread = 0; /* (an id in binary of a type not read: the predicate names no one) */
		if (st->sp[i].param >= 1 && st->sp[i].param <= b->nparams)
			p->ids[i] = pq_param_text(b, (unsigned)st->sp[i].param - 1, st->sp[i].id_type,
			                          st->sp[i].cast, &unread);
	}
	return 0;
}

static int on_bind(struct pconn *c, const struct pgp_msg *m)
{
	struct pgp_bind b;

	if (pgp_parse_bind(m, &b))
		return -EBADMSG;
	bool found;
	struct pstmt *st = lookup_stmt(c, b.statement, &found);
	if (st) { /* what a parameter in the binary format is */
		b.types = st->ptypes;
		b.inferred = st->itypes;
		b.ntypes = st->nptypes;
	}
	struct portal *p = found ? calloc(1, sizeof(*p)) : NULL;
	char *name = p ? strdup(b.portal) : NULL;
	int r = 0;
	if (!found)
		r = refuse(c, X_REFUSE_X, "26000", "prepared statement does not exist");
	else if (!p || !name)
		r = -ENOMEM;
	struct buf enc = BUF_INIT;
	if (!r && st && st->enc && (r = pxe_bind(c, st->enc, &b, &enc))) {
		r = r == -EINPROGRESS ? 3 : refuse(c, X_REFUSE_X, PX_ERR_ENCRYPT, pxe_strerror(r));
		buf_free(&enc);
		free(p); /* nothing in it yet */
		free(name);
		free(b.params);
		return r;
	}
	if (!r) {
		p->refs = 1;
		p->st = pq_st_ref(st);
		if (!(r = bound_ids(p, &b))) {
			r = pq_push(
			    c, (struct xentry){ .kind = X_BIND, .portal = p, .what = 'P', .name = name });
			p = NULL; /* the entry owns them now, or push freed them */
			name = NULL;
		}
	}
	if (!r && enc.len) /* the Bind with its values encrypted goes instead */
		r = pc_to_server(c, enc.p, enc.len) ? -ENOMEM : 1;
	buf_free(&enc);
	pq_portal_unref(p);
	free(name);
	free(b.params);
	return r;
}

static int on_describe(struct pconn *c, const struct pgp_msg *m)
{
	struct pgp_target t;

	if (pgp_parse_target(m, &t))
		return -EBADMSG;
	struct portal *p = t.what == 'P' ? lookup_portal(c, t.name) : NULL;
	bool found;
	struct pstmt *st = t.what == 'S' ? lookup_stmt(c, t.name, &found) : NULL;
	return pq_push(
	    c, (struct xentry){ .kind = X_DESCRIBE, .st = pq_st_ref(st), .portal = pq_portal_ref(p) });
}

/* A portal over personal data that the client executes without having
 * described it (a prepared statement it knows the shape of): the proxy
 * describes it itself, so that its result's columns are matched to the
 * policy (and decrypted) all the same. */
static int describe_for_client(struct pconn *c, struct portal *p, const char *name)
{
	struct buf b = BUF_INIT;

	buf_addc(&b, 'P');
	buf_add(&b, name, strlen(name) + 1);
	struct buf msg = BUF_INIT;
	pgp_message(&msg, 'D', b.p, b.len);
	int err = b.failed || msg.failed || pc_to_server(c, msg.p, msg.len) ? -ENOMEM : 0;
	buf_free(&b);
	buf_free(&msg);
	return err ? err
	           : pq_push(c,
	                     (struct xentry){ .kind = X_DESCRIBE, .portal = pq_portal_ref(p), .own = true });
}

static int on_execute(struct pconn *c, const struct pgp_msg *m)
{
	struct pgp_execute e;
	const char *why;

	if (pgp_parse_execute(m, &e))
		return -EBADMSG;
	struct portal *p = lookup_portal(c, e.portal);
	if (!p)
		return refuse(c, X_REFUSE_X, "34000", "portal does not exist");
	if ((why = unavailable(c, p->st && p->st->sensitive)))
		return refuse(c, X_REFUSE_X, PX_ERR_LOG, why);
	int err = !p->map && p->st && p->st->sensitive ? describe_for_client(c, p, e.portal) : 0;
	if (err)
		return err;
	if ((why = pd_stale(c, p->st)))
		return refuse(c, X_REFUSE_X, PX_ERR_ANALYSE, why);
	if ((err = pd_made(c, p->st)) == -E2BIG) /* prepared DDL: what it makes is made now */
		return refuse(c, X_REFUSE_X, PX_ERR_ANALYSE, "too many relations made in one transaction");
	if (err)
		return err;
	c->px->st.statements++;
	if ((err = pq_push(c, (struct xentry){ .kind = X_EXECUTE,
	                                       .st = pq_st_ref(p->st),
	                                       .portal = pq_portal_ref(p),
	                                       .attempt = p->attempt })))
		return err;
	if (p->st && p->st->writes && !p->attempted &&
	    (err = pq_attempt(c, p->st, p, c->q[c->qn - 1].serial)))
		return err;
	p->attempted = true;
	return pxi_start(c, p->st);
}

static int on_close(struct pconn *c, const struct pgp_msg *m)
{
	struct pgp_target t;

	if (pgp_parse_target(m, &t))
		return -EBADMSG;
	char *name = strdup(t.name);
	return name ? pq_push(c, (struct xentry){ .kind = X_CLOSE, .what = t.what, .name = name }) : -ENOMEM;
}

int pq_frontend(struct pconn *c, const struct pgp_msg *m)
{
	if (c->skip && m->type != 'S')
		return pgp_check_frontend(m) ? -EBADMSG : 1;
	switch (m->type) {
	case 'Q': return on_query(c, m);
	case 'P': return on_parse(c, m);
	case 'B': c->ran = true; return on_bind(c, m); /* a domain's check on a parameter runs code */
	case 'D': return on_describe(c, m);
	case 'E': c->ran = true; return on_execute(c, m);
	case 'C': return on_close(c, m);
	case 'S':
		c->skip = c->ran = false; /* until its ReadyForQuery, pq_head(c) */
		return c->copy_in ? 0 : pq_push(c, (struct xentry){ .kind = X_SYNC });
	case 'c':
	case 'f': {
		int r = pgp_check_frontend(m) ? -EBADMSG : c->cin ? pxi_end(c, m) : 0;
		if (r != 3) { /* 3: its rows wait for keys, and it with them */
			c->copy_done_early = !c->copy_in;
			c->copy_in = false;
		}
		return r;
	}
	case 'd': return pgp_check_frontend(m) ? -EBADMSG : c->cin ? pxi_data(c, m) : 0;
	case 'H':
	case 'X': return pgp_check_frontend(m) ? -EBADMSG : 0;
	default: return -EPROTO; /* 'p' and others have no place here */
	}
}

/* The server confirmed a definition or a close: it takes effect. */
int pq_confirm(struct pconn *c, const struct xentry *e)
{
	switch (e->kind) {
	case X_PARSE: return set_named(&c->stmts, &c->nstmts, e->name, pq_st_ref(e->st), st_unref_v);
	case X_BIND:
		return set_named(&c->portals, &c->nportals, e->name, pq_portal_ref(e->portal),
		                 portal_unref_v);
	case X_CLOSE:
		if (e->what == 'S')
			drop_named(c->stmts, &c->nstmts, e->name, st_unref_v);
		else
			drop_named(c->portals, &c->nportals, e->name, portal_unref_v);
		return 0;
	default: return 0;
	}
}

void pq_free(struct pconn *c)
{
	while (pq_head(c)) {
		struct xentry *e = pq_head(c);
		pq_st_unref(e->st);
		pq_portal_unref(e->portal);
		free(e->msg);
		free(e->name);
		c->qhead++;
	}
	free(c->q);
	pxi_free(c);
	pq_res_reset(c);
	for (size_t i = 0; i < c->nstmts; i++) {
		pq_st_unref(c->stmts[i].obj);
		free(c->stmts[i].name);
	}
	for (size_t i = 0; i < c->nportals; i++) {
		pq_portal_unref(c->portals[i].obj);
		free(c->portals[i].name);
	}
	free(c->stmts);
	free(c->portals);
	pd_free(c);
}
