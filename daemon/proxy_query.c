#define _GNU_SOURCE
/* proxy_query.c - the query protocol through the proxy.
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

#include "jsonw.h"
#include "logmsg.h"
#include "proxy_conn.h"

/* --- statements and portals ------------------------------------------------ */

static struct pstmt *st_ref(struct pstmt *st)
{
	if (st)
		st->refs++;
	return st;
}

static void st_unref(struct pstmt *st)
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
	free(st);
}

static void map_unref(struct colmap *m)
{
	if (!m || --m->refs)
		return;
	ppol_unref(m->pp);
	free(m->f);
	free(m);
}

static struct portal *portal_ref(struct portal *p)
{
	if (p)
		p->refs++;
	return p;
}

static void portal_unref(struct portal *p)
{
	if (!p || --p->refs)
		return;
	for (size_t i = 0; p->ids && i < p->st->nsp; i++)
		free(p->ids[i]);
	free(p->ids);
	st_unref(p->st);
	map_unref(p->map);
	free(p);
}

static bool is_ddl(const struct sqi_stmt *s)
{
	static const char *const nodes[] = { "CreateStmt",      "AlterTableStmt",    "DropStmt",
		                             "RenameStmt",      "CreateTableAsStmt", "ViewStmt",
		                             "CreateSchemaStmt" };

	for (size_t i = 0; s->kind == SQI_OTHER && i < ARRAY_SIZE(nodes); i++)
		if (!strcmp(s->normalized, nodes[i]))
			return true;
	return false;
}

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

static int subject_preds(struct pconn *c, const struct sqi_stmt *s, const struct sqi_literal *lits,
                         size_t nlits, struct pstmt *st)
{
	for (size_t i = 0; i < s->npreds; i++) {
		const struct sqi_pred *p = &s->preds[i];
		const struct pp_table *t = pred_table(c->px->pp, s, p);
		bool lit = p->literal >= 0 && (size_t)p->literal < nlits;
		char *value = t && lit ? sqi_literal_text(&lits[p->literal]) : NULL;
		if (!t || (!p->param && !value)) {
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
		v[st->nsp++] = (struct spred){ type, value, p->param };
	}
	return 0;
}

/* An encrypted column the statement would write plaintext into, or NULL.
 * The proxy does not encrypt statement values (yet): such a write is
 * refused rather than let through in the clear. */
static const struct pol_column *plaintext_write(const struct ppol *pp, const struct sqi_stmt *s,
                                                const char **ret_table)
{
	for (size_t i = 0; i < s->ntables; i++) {
		const struct pp_table *t =
		    s->tables[i].write ? ppol_by_name(pp, s->tables[i].schema, s->tables[i].name) : NULL;
		for (size_t j = 0; t && j < t->pt->ncols; j++) {
			const struct pol_column *c = &t->pt->cols[j];
			bool named = s->write_all;
			for (size_t k = 0; !named && k < s->nwrite_cols; k++)
				named = !strcmp(s->write_cols[k], c->name);
			if (c->encrypt && named) {
				*ret_table = t->name;
				return c;
			}
		}
	}
	return NULL;
}

static struct pstmt *analysed(struct pconn *c, const struct sqi_stmt *s, const struct sqi_literal *lits,
                              size_t nlits)
{
	struct proxy *px = c->px;
	struct pstmt *st = calloc(1, sizeof(*st));
	struct buf d = BUF_INIT;

	if (!st)
		return NULL;
	st->refs = 1;
	st->kind = s->kind;
	st->ddl = is_ddl(s);
	const char *table;
	const struct pol_column *enc = plaintext_write(px->pp, s, &table);
	if (enc)
		snprintf(
		    st->refusal, sizeof(st->refusal),
		    "Custos does not encrypt values written through the proxy yet: writing the encrypted "
		    "column %s.%s is refused (load it directly, then run custosctl encrypt-existing)",
		    table, enc->name);
	memcpy(st->fp, s->fingerprint, sizeof(st->fp));
	buf_adds(&d, "{\"kind\":");
	jw_str(&d, sqi_kind_name(s->kind));
	for (size_t i = 0; i < s->ntables; i++) {
		const struct pp_table *t = ppol_by_name(px->pp, s->tables[i].schema, s->tables[i].name);
		if (!t)
			continue;
		buf_adds(&d, st->sensitive ? "," : ",\"tables\":[");
		jw_str(&d, t->name);
		if (!st->sensitive)
			st->table = strdup(t->name);
		st->sensitive = true;
	}
	buf_adds(&d, st->sensitive ? "]}" : "}");
	buf_addc(&d, 0);
	/* a cursor or SQL-level prepared statement over personal data: what
	 * FETCH or EXECUTE returns later is taken as personal data too */
	bool defines = !strcmp(s->normalized, "DeclareCursorStmt") || !strcmp(s->normalized, "PrepareStmt");
	bool uses = !strcmp(s->normalized, "FetchStmt") || !strcmp(s->normalized, "ExecuteStmt");
	if (defines && st->sensitive)
		c->named_sensitive = true;
	if (uses && c->named_sensitive)
		st->sensitive = true;
	st->record = st->sensitive || px->env->cfg->audit_statements == CFG_AUDIT_ALL;
	st->detail = d.p;
	if (st->record)
		st->text = strdup(s->normalized);
	if (d.failed || (st->sensitive && !st->table && !uses) || (st->record && !st->text) ||
	    (st->sensitive && subject_preds(c, s, lits, nlits, st))) {
		if (d.failed)
			st->detail = NULL, buf_free(&d);
		st_unref(st);
		return NULL;
	}
	return st;
}

/* --- the queue of expected responses ---------------------------------------- */

static int push(struct pconn *c, struct xentry e)
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
				st_unref(e.st);
				portal_unref(e.portal);
				free(e.name);
				return -ENOBUFS;
			}
			c->q = q;
			c->qcap = cap;
		}
	}
	c->q[c->qn++] = e;
	return 0;
}

static struct xentry *head(struct pconn *c)
{
	return c->qhead < c->qn ? &c->q[c->qhead] : NULL;
}

static void res_reset(struct pconn *c)
{
	struct result *r = &c->res;

	if (r->hold) { /* a result that needed no record after all (an empty query) */
		r->hold->state = H_FREE;
		r->hold = NULL;
		pc_release(c);
	}
	map_unref(r->map);
	for (size_t i = 0; i < r->nsubjects; i++)
		free((char *)r->subjects[i].id);
	free(r->subjects);
	*r = (struct result){ 0 };
}

static void emit_refusals(struct pconn *c);

static void pop(struct pconn *c)
{
	struct xentry *e = head(c);

	if (!e)
		return;
	st_unref(e->st);
	portal_unref(e->portal);
	free(e->name);
	c->qhead++;
	res_reset(c);
}

static void emit_refusals(struct pconn *c)
{
	struct xentry *e;

	while ((e = head(c)) && (e->kind == X_REFUSE_Q || e->kind == X_REFUSE_X)) {
		pc_error(c, e->sqlstate, e->msg);
		if (e->kind == X_REFUSE_Q) {
			uint8_t z[6] = { 'Z', 0, 0, 0, 5, (uint8_t)(c->txstatus ? c->txstatus : 'I') };
			if (pc_write(c, z, sizeof(z)))
				pc_fatal(c, PX_ERR_PROTOCOL, "out of memory");
		}
		c->px->st.refused_statements++;
		free(e->msg);
		c->qhead++;
	}
}

void pq_settle(struct pconn *c)
{
	if (c->phase == PC_READY)
		emit_refusals(c);
}

static int refuse(struct pconn *c, enum xkind kind, const char *sqlstate, const char *msg)
{
	char *copy = strdup(msg);
	int err =
	    copy ? push(c, (struct xentry){ .kind = kind, .sqlstate = sqlstate, .msg = copy }) : -ENOMEM;

	if (err) {
		free(copy);
		return err;
	}
	if (kind == X_REFUSE_X)
		c->skip = true;
	emit_refusals(c);
	return 1;
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
	st_unref(p);
}

static void portal_unref_v(void *p)
{
	portal_unref(p);
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
		return true;
	for (size_t i = 0; i < info->n; i++)
		if (!strcmp(info->stmts[i].normalized, "VariableSetStmt") && strcasestr(sql, "names"))
			return true; /* SET NAMES */
	return false;
}

static const char *const reading_refusal =
    "changing standard_conforming_strings or the client encoding through Custos is refused: it changes "
    "how statements read";

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
	size_t pushed = 0; /* push() may compact the queue: count, do not remember where */
	bool sensitive = false;
	int r = 0;
	char refusal[sizeof(((struct pstmt *)0)->refusal)] = "";
	for (size_t i = 0; !r && i < info->n; i++) {
		struct pstmt *st = analysed(c, &info->stmts[i], lits, nlits);
		r = st ? push(c, (struct xentry){ .kind = X_QSTMT, .st = st }) : -ENOMEM;
		pushed += !r;
		sensitive |= st && st->sensitive;
		if (st && *st->refusal && !*refusal)
			memcpy(refusal, st->refusal, sizeof(refusal));
	}
	if (!r && !info->n && !(r = push(c, (struct xentry){ .kind = X_QSTMT })))
		pushed++;
	if (!r && ((why = unavailable(c, sensitive)) || *refusal)) {
		for (; pushed; pushed--) { /* none of it runs */
			c->qn--;
			st_unref(c->q[c->qn].st);
		}
		return *refusal ? refuse(c, X_REFUSE_Q, PX_ERR_ENCRYPT, refusal)
		                : refuse(c, X_REFUSE_Q, PX_ERR_LOG, why);
	}
	c->px->st.statements += info->n;
	return r ? r : push(c, (struct xentry){ .kind = X_QEND });
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
	if (info->n > 1) /* PostgreSQL refuses it too; nothing runs */
		return refuse(c, X_REFUSE_X, "42601",
		              "cannot insert multiple commands into a prepared statement");
	struct pstmt *st = info->n ? analysed(c, &info->stmts[0], lits, nlits) : NULL;
	if (info->n && !st)
		return -ENOMEM;
	if (st && *st->refusal) {
		int r = refuse(c, X_REFUSE_X, PX_ERR_ENCRYPT, st->refusal);
		st_unref(st);
		return r;
	}
	char *name = strdup(p.name);
	if (!name) {
		st_unref(st);
		return -ENOMEM;
	}
	return push(c, (struct xentry){ .kind = X_PARSE, .st = st, .what = 'S', .name = name });
}

/* A bound parameter as an id: text as it is, binary integers in decimal. */
static char *param_text(const struct pgp_bind *b, unsigned i)
{
	const struct pgp_value *v = &b->params[i];
	char num[24];

	if (v->len < 0)
		return NULL;
	if (pgp_bind_format(b, i) == 0)
		return strndup((const char *)v->p, (size_t)v->len);
	if (v->len == 4 || v->len == 8) {
		int64_t x = 0;
		for (int32_t k = 0; k < v->len; k++)
			x = (int64_t)((uint64_t)x << 8 | v->p[k]);
		if (v->len == 4)
			x = (int32_t)x;
		snprintf(num, sizeof(num), "%lld", (long long)x);
		return strdup(num);
	}
	return NULL; /* another binary type: not attributed from the parameter */
}

static int bound_ids(struct portal *p, const struct pgp_bind *b)
{
	const struct pstmt *st = p->st;

	if (!st || !st->nsp)
		return 0;
	if (!(p->ids = calloc(st->nsp, sizeof(*p->ids))))
		return -ENOMEM;
	for (size_t i = 0; i < st->nsp; i++)
		if (st->sp[i].param >= 1 && st->sp[i].param <= b->nparams)
			p->ids[i] = param_text(b, (unsigned)st->sp[i].param - 1);
	return 0;
}

static int on_bind(struct pconn *c, const struct pgp_msg *m)
{
	struct pgp_bind b;

	if (pgp_parse_bind(m, &b))
		return -EBADMSG;
	bool found;
	struct pstmt *st = lookup_stmt(c, b.statement, &found);
	struct portal *p = found ? calloc(1, sizeof(*p)) : NULL;
	char *name = p ? strdup(b.portal) : NULL;
	int r = 0;
	if (!found)
		r = refuse(c, X_REFUSE_X, "26000", "prepared statement does not exist");
	else if (!p || !name)
		r = -ENOMEM;
	if (!r) {
		p->refs = 1;
		p->st = st_ref(st);
		if (!(r = bound_ids(p, &b))) {
			r = push(c,
			         (struct xentry){ .kind = X_BIND, .portal = p, .what = 'P', .name = name });
			p = NULL; /* the entry owns them now, or push freed them */
			name = NULL;
		}
	}
	portal_unref(p);
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
	return push(c, (struct xentry){ .kind = X_DESCRIBE, .portal = portal_ref(p) });
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
	c->px->st.statements++;
	return push(c, (struct xentry){ .kind = X_EXECUTE, .st = st_ref(p->st), .portal = portal_ref(p) });
}

static int on_close(struct pconn *c, const struct pgp_msg *m)
{
	struct pgp_target t;

	if (pgp_parse_target(m, &t))
		return -EBADMSG;
	char *name = strdup(t.name);
	return name ? push(c, (struct xentry){ .kind = X_CLOSE, .what = t.what, .name = name }) : -ENOMEM;
}

int pq_frontend(struct pconn *c, const struct pgp_msg *m)
{
	if (c->skip && m->type != 'S')
		return pgp_check_frontend(m) ? -EBADMSG : 1;
	switch (m->type) {
	case 'Q': return on_query(c, m);
	case 'P': return on_parse(c, m);
	case 'B': return on_bind(c, m);
	case 'D': return on_describe(c, m);
	case 'E': return on_execute(c, m);
	case 'C': return on_close(c, m);
	case 'S': c->skip = false; return c->copy_in ? 0 : push(c, (struct xentry){ .kind = X_SYNC });
	case 'c':
	case 'f': c->copy_in = false; return pgp_check_frontend(m) ? -EBADMSG : 0;
	case 'H':
	case 'X':
	case 'd': return pgp_check_frontend(m) ? -EBADMSG : 0;
	default: return -EPROTO; /* 'p' and others have no place here */
	}
}

/* --- records and holds -------------------------------------------------------- */

static void gate(struct pconn *c)
{
	struct hold *h;

	if (c->res.hold)
		return;
	if (!(h = calloc(1, sizeof(*h))) || !(h->b = evbuffer_new())) {
		free(h); /* nothing may pass unheld: the connection ends */
		return pc_fatal(c, PX_ERR_LOG, "out of memory");
	}
	h->state = H_OPEN;
	*c->hq_tail = h;
	c->hq_tail = &h->next;
	c->res.hold = h;
}

static void build_detail(struct pconn *c, const struct pstmt *st, struct buf *d)
{
	const struct result *r = &c->res;

	buf_adds(d, st->detail);
	d->len--; /* the closing brace */
	if (r->error) {
		buf_adds(d, ",\"error\":");
		jw_str(d, r->errcode);
	}
	if (r->unattributed) {
		buf_adds(d, ",\"unattributed\":");
		jw_u64(d, r->unattributed);
	}
	if (r->subjects_over) {
		buf_adds(d, ",\"subjects_not_named\":");
		jw_u64(d, r->subjects_over);
	}
	if (r->part) {
		buf_adds(d, ",\"part\":");
		jw_u64(d, r->part);
	}
	buf_adds(d, "}");
	buf_addc(d, 0);
}

/* The result's columns that are personal data, for the record. */
static size_t personal_columns(const struct result *r, const char **cols, size_t max)
{
	size_t n = 0;

	for (uint16_t i = 0; r->map && i < r->map->n && n < max; i++) {
		const struct pp_column *f = r->map->f[i];
		bool dup = false;
		if (!f || !f->pc)
			continue;
		for (size_t j = 0; j < n; j++)
			dup |= !strcmp(cols[j], f->name);
		if (!dup)
			cols[n++] = f->name;
	}
	return n;
}

/* Records the head's statement (so far, when partial). -1 when the
 * connection failed closed. */
static int record(struct pconn *c, const struct pstmt *st, int64_t rows, const char *event, bool partial)
{
	struct result *r = &c->res;
	struct alog_actor actor = { c->user, c->app, c->addr, c->session, *c->tls_id ? c->tls_id : NULL };
	const char *cols[64];
	struct buf d = BUF_INIT;
	struct ticket *t = calloc(1, sizeof(*t));

	build_detail(c, st, &d);
	struct alog_rec rec = { .type = "access",
		                .actor = &actor,
		                .table = st->table,
		                .columns = cols,
		                .ncolumns = st->table ? personal_columns(r, cols, ARRAY_SIZE(cols)) : 0,
		                .subjects = r->subjects,
		                .nsubjects = r->nsubjects,
		                .fingerprint = st->fp,
		                .statement = st->text,
		                .rows = rows,
		                .detail = d.p };
	int err = !t || d.failed ? -ENOMEM : lc_append(c->px->lc, &rec, event, !r->hold, pq_record_done, c);
	buf_free(&d);
	if (err) {
		free(t);
		c->px->st.record_failures++;
		if (!r->hold)
			return 0; /* nothing waits on it: the access was not to personal data */
		role_log(3, "proxy", "session %s: cannot send an access record to the logger (%s)",
		         c->session, strerror(-err));
		pc_fatal(c, PX_ERR_LOG, "the audit log cannot record this access; nothing was served");
		return -1;
	}
	c->px->st.records++;
	if (!r->hold) { /* lazy: no answer comes */
		free(t);
		return 0;
	}
	t->hold = r->hold;
	t->partial = partial;
	r->hold->state = H_WAITING;
	r->hold = NULL;
	*c->tk_tail = t;
	c->tk_tail = &t->next;
	return 0;
}

void pq_record_done(void *arg, int err, uint64_t seq)
{
	struct pconn *c = arg;
	struct ticket *t = c->tk;

	(void)seq;
	if (!t)
		return;
	c->tk = t->next;
	if (!c->tk)
		c->tk_tail = &c->tk;
	struct hold *h = t->hold;
	bool partial = t->partial;
	free(t);
	if (err) {
		c->px->st.record_failures++;
		if (!h)
			return;
		if (partial) /* its statement's rows go on after it: no error can stand in for them */
			return pc_fatal(c, PX_ERR_LOG,
			                "the audit log cannot record this access; the rest is not served");
		/* what the statement returned is never sent: an error takes its place */
		struct buf e = BUF_INIT;
		pgp_error(&e, "ERROR", PX_ERR_LOG,
		          "the audit log cannot record this access; nothing was served");
		c->held -= evbuffer_get_length(h->b);
		evbuffer_drain(h->b, evbuffer_get_length(h->b));
		if (e.failed || evbuffer_add(h->b, e.p, e.len)) {
			buf_free(&e);
			return pc_fatal(c, PX_ERR_LOG, "the audit log cannot record this access");
		}
		c->held += e.len;
		buf_free(&e);
		c->px->st.refused_statements++;
	}
	if (h) {
		h->state = H_DONE;
		pc_release(c);
	}
}

/* --- the backend ------------------------------------------------------------- */

static bool has_result(const struct xentry *e)
{
	return e && (e->kind == X_QSTMT || e->kind == X_EXECUTE);
}

static void add_subject(struct result *r, const char *type, const uint8_t *v, int32_t len);

/* The head's result begins (its first message). */
/* The head's result begins (its first message), or goes on; hold: what
 * follows waits for its record when it is personal data (by the
 * statement's tables, or by its result's columns). */
static void begin(struct pconn *c, struct xentry *e, bool hold)
{
	if (!c->res.active) {
		c->res.active = true;
		if (e->kind == X_EXECUTE && e->portal && e->portal->map && !c->res.map) {
			c->res.map = e->portal->map;
			c->res.map->refs++;
		}
		for (size_t i = 0; e->st && i < e->st->nsp; i++) {
			const char *id = e->st->sp[i].param
			                     ? (e->portal && e->portal->ids ? e->portal->ids[i] : NULL)
			                     : e->st->sp[i].value;
			if (id)
				add_subject(&c->res, e->st->sp[i].type, (const uint8_t *)id,
				            (int32_t)strlen(id));
		}
	}
	if (hold && !c->res.hold && ((e->st && e->st->sensitive) || (c->res.map && c->res.map->personal)))
		gate(c);
}

static struct colmap *map_result(struct pconn *c, const struct pgp_msg *m)
{
	struct pgp_rowdesc rd;
	struct colmap *map = NULL;

	if (!c->px->pp || pgp_parse_rowdesc(m, &rd))
		return NULL;
	for (uint16_t i = 0; i < rd.n; i++) {
		const struct pp_column *col =
		    ppol_column(ppol_by_oid(c->px->pp, rd.fields[i].table_oid), rd.fields[i].attnum);
		if (!col || (!col->pc && !col->subject))
			continue;
		if (!map && (map = calloc(1, sizeof(*map))) && !(map->f = calloc(rd.n, sizeof(*map->f)))) {
			free(map);
			map = NULL;
		}
		if (!map)
			break;
		map->f[i] = col;
		map->personal |= col->pc != NULL;
		map->subject |= col->subject != NULL;
	}
	if (map) {
		map->refs = 1;
		map->n = rd.n;
		map->pp = ppol_ref(c->px->pp);
	}
	free(rd.fields);
	return map;
}

static void add_subject(struct result *r, const char *type, const uint8_t *v, int32_t len)
{
	if (len <= 0 || len > 256 || memchr(v, 0, (size_t)len) || memchr(v, LOGMSG_ITEM, (size_t)len) ||
	    memchr(v, LOGMSG_PART, (size_t)len)) {
		r->unattributed++;
		return;
	}
	for (size_t i = 0; i < r->nsubjects; i++)
		if (!strcmp(r->subjects[i].type, type) &&
		    !strncmp(r->subjects[i].id, (const char *)v, (size_t)len) && !r->subjects[i].id[len])
			return;
	if (r->nsubjects == PX_MAX_SUBJECTS) {
		r->subjects_over++;
		return;
	}
	char *id = strndup((const char *)v, (size_t)len);
	struct alog_subject *nv = realloc(r->subjects, (r->nsubjects + 1) * sizeof(*nv));
	if (nv)
		r->subjects = nv;
	if (!id || !nv) {
		free(id);
		r->unattributed++;
		return;
	}
	r->subjects[r->nsubjects++] = (struct alog_subject){ type, id };
}

static int on_datarow(struct pconn *c, const struct pgp_msg *hdr, struct evbuffer *in)
{
	struct result *r = &c->res;
	static struct pgp_value vals[PGP_MAX_FIELDS];
	uint16_t n;

	r->rows++;
	if (!r->map || !r->map->subject) {
		r->unattributed += r->hold != NULL && !r->nsubjects; /* a predicate may name them */
		return 0;
	}
	const uint8_t *p = evbuffer_pullup(in, (ssize_t)hdr->size);
	struct pgp_msg m = *hdr;
	if (!p)
		return -ENOMEM;
	m.body = p + 5;
	if (pgp_parse_datarow(&m, vals, PGP_MAX_FIELDS, &n) || n != r->map->n)
		return -EBADMSG;
	bool named = false;
	for (uint16_t i = 0; i < n; i++)
		if (r->map->f[i] && r->map->f[i]->subject && vals[i].len >= 0) {
			add_subject(r, r->map->f[i]->subject, vals[i].p, vals[i].len);
			named = true;
		}
	r->unattributed += !named;
	return 0;
}

/* The rows of this part of the result: CommandComplete's count (the
 * whole result's) less the parts recorded already, or those counted. */
static int64_t tag_rows(const struct pgp_msg *m, const struct result *r)
{
	const char *t = (const char *)m->body, *sp = memrchr(t, ' ', m->len);
	char *end;

	if (!sp || !m->len || t[m->len - 1])
		return (int64_t)r->rows;
	long long v = strtoll(sp + 1, &end, 10);
	return *end || v < 0 || (uint64_t)v < r->recorded ? (int64_t)r->rows : v - (int64_t)r->recorded;
}

/* The head's statement finished (or, partial, a chunk of its rows is held). */
static int finish(struct pconn *c, struct xentry *e, int64_t rows, bool partial)
{
	struct result *r = &c->res;
	const struct pstmt *st = e->st;
	bool bulk = r->unattributed >= c->px->env->cfg->bulk_rows;
	int err = 0;

	if (st && st->kind == SQI_SELECT && rows == 0 && !r->part) {
		/* a predicate named them, but nothing of theirs was read: no
		 * record names them (each would cost the subject a data key) */
		for (size_t i = 0; i < r->nsubjects; i++)
			free((char *)r->subjects[i].id);
		r->nsubjects = 0;
	}
	if (st && (st->record || r->hold)) {
		if (bulk)
			c->px->st.bulk_alerts++;
		err = record(c, st, rows, bulk ? "bulk-access" : "", partial);
	}
	if (!err && st && st->ddl)
		c->px->pp_stale = true;
	if (partial && !err) {
		r->part++;
		r->recorded += r->rows;
		r->rows = r->unattributed = r->subjects_over = 0;
		for (size_t i = 0; i < r->nsubjects; i++)
			free((char *)r->subjects[i].id);
		r->nsubjects = 0;
		gate(c);
	}
	return err;
}

static int on_error(struct pconn *c, const struct pgp_msg *m, struct evbuffer *in)
{
	struct pgp_notice n;
	struct xentry *e = head(c);

	if (pgp_parse_notice(m, &n))
		return -EBADMSG;
	if (!e)
		return 0; /* FATAL out of the blue (shutdown) */
	bool simple = e->kind == X_QSTMT || e->kind == X_QEND;
	bool result = has_result(e);
	if (result) {
		begin(c, e, true);
		c->res.error = "";
		snprintf(c->res.errcode, sizeof(c->res.errcode), "%s", n.code ? n.code : "");
	}
	if (pc_pass(c, m, in))
		return -ENOMEM;
	if (result && finish(c, e, (int64_t)c->res.rows, false))
		return -1;
	/* the rest of the query string, or everything up to Sync, is skipped */
	while ((e = head(c)) && e->kind != (simple ? X_QEND : X_SYNC))
		pop(c);
	return 2;
}

static int on_ready(struct pconn *c, const struct pgp_msg *m)
{
	struct xentry *e;

	if (m->len != 1)
		return -EBADMSG;
	c->txstatus = (char)m->body[0];
	while ((e = head(c))) {
		bool last = e->kind == X_SYNC || e->kind == X_QEND;
		pop(c);
		if (last)
			break;
	}
	return 0;
}

static int on_rowdesc(struct pconn *c, const struct pgp_msg *m)
{
	struct xentry *e = head(c);

	if (!e)
		return -EPROTO;
	if (e->kind == X_DESCRIBE) {
		if (e->portal) {
			map_unref(e->portal->map);
			e->portal->map = map_result(c, m);
		}
		pop(c);
		return 0;
	}
	if (e->kind != X_QSTMT)
		return -EPROTO;
	res_reset(c);
	c->res.map = map_result(c, m); /* it may show personal data the analysis did not see */
	begin(c, e, true);
	return 0;
}

/* ParameterStatus (checked already): application_name for the actor; the
 * settings that change how a statement's text is read. libpg_query reads
 * it as PostgreSQL does with standard_conforming_strings on and a client
 * encoding with no backslash inside a character (UTF8, SQL_ASCII, the
 * LATINs...): otherwise a string could end where the proxy sees none. */
void pq_parameter(struct pconn *c, const struct pgp_msg *m)
{
	static const char *const unsafe[] = { "BIG5",           "GBK",   "GB18030", "SJIS",
		                              "SHIFT_JIS_2004", "JOHAB", "UHC" };
	const char *k = (const char *)m->body, *v = k + strlen(k) + 1;

	if (!strcmp(k, "application_name")) {
		snprintf(c->app, sizeof(c->app), "%s", v);
		for (char *p = c->app; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
	} else if (!strcmp(k, "standard_conforming_strings")) {
		c->scs_off = strcmp(v, "on") != 0;
	} else if (!strcmp(k, "client_encoding")) {
		c->unsafe_encoding = false;
		for (size_t i = 0; i < ARRAY_SIZE(unsafe); i++)
			c->unsafe_encoding |= !strcasecmp(v, unsafe[i]);
	}
}

/* The server confirmed a definition or a close: it takes effect. */
static int confirm(struct pconn *c, const struct xentry *e)
{
	switch (e->kind) {
	case X_PARSE: return set_named(&c->stmts, &c->nstmts, e->name, st_ref(e->st), st_unref_v);
	case X_BIND:
		return set_named(&c->portals, &c->nportals, e->name, portal_ref(e->portal), portal_unref_v);
	case X_CLOSE:
		if (e->what == 'S')
			drop_named(c->stmts, &c->nstmts, e->name, st_unref_v);
		else
			drop_named(c->portals, &c->nportals, e->name, portal_unref_v);
		return 0;
	default: return 0;
	}
}

/* The server reads COPY data now: it ignores Sync and Flush until the
 * client's CopyDone or CopyFail, so a Sync the client sent after its
 * Execute (libpq does) gets no ReadyForQuery: it is not waited for. */
static void copy_in(struct pconn *c)
{
	c->copy_in = true;
	while (c->qhead + 1 < c->qn && c->q[c->qhead + 1].kind == X_SYNC) {
		memmove(&c->q[c->qhead + 1], &c->q[c->qhead + 2], (c->qn - c->qhead - 2) * sizeof(*c->q));
		c->qn--;
	}
}

/* 0: forward the message, 1: consumed, 2: passed on already (pc_pass),
 * <0: the connection ends (an error the caller reports, or -1 when it has
 * already failed closed). */
int pq_backend(struct pconn *c, const struct pgp_msg *m, struct evbuffer *in)
{
	struct xentry *e = head(c);

	switch (m->type) {
	case 'D':
	case 'd':
		if (!has_result(e))
			return -EPROTO;
		begin(c, e, true);
		if (m->type == 'D' ? on_datarow(c, m, in) : (c->res.rows++, 0))
			return -EBADMSG;
		if (pc_pass(c, m, in))
			return -ENOMEM;
		/* a large result is recorded in parts: the server must not wait on a full hold */
		if (c->res.hold && c->held >= PX_HOLD_MAX && finish(c, e, (int64_t)c->res.rows, true))
			return -1;
		return 2;
	case 'T': return on_rowdesc(c, m);
	case 'C':
		if (!has_result(e) || pgp_check_backend(m))
			return -EPROTO;
		begin(c, e, true);
		int64_t rows = tag_rows(m, &c->res);
		if (pc_pass(c, m, in)) /* into the hold its record releases */
			return -ENOMEM;
		if (finish(c, e, rows, false))
			return -1;
		pop(c);
		return 2;
	case 'I':
	case 's':
		if (!has_result(e))
			return -EPROTO;
		begin(c, e, true);
		if (pc_pass(c, m, in))
			return -ENOMEM;
		if (m->type == 's' && finish(c, e, (int64_t)c->res.rows, false))
			return -1;
		pop(c);
		return 2;
	case 'E': return on_error(c, m, in);
	case 'Z': return on_ready(c, m);
	case '1':
	case '2':
	case '3':
	case 'n':
		if (!e || e->kind != (m->type == '1'   ? X_PARSE
		                      : m->type == '2' ? X_BIND
		                      : m->type == '3' ? X_CLOSE
		                                       : X_DESCRIBE))
			return -EPROTO;
		if (confirm(c, e))
			return -ENOMEM;
		pop(c);
		return 0;
	case 't': return e && e->kind == X_DESCRIBE ? 0 : -EPROTO;
	case 'G':
	case 'W':
		if (!has_result(e))
			return -EPROTO;
		/* copy in: the client must see it to send its rows; the outcome waits */
		begin(c, e, false);
		copy_in(c);
		return 0;
	case 'H':
	case 'c':
		if (!has_result(e))
			return -EPROTO;
		begin(c, e, true);
		return 0;
	case 'S':
		if (pgp_check_backend(m))
			return -EBADMSG;
		pq_parameter(c, m);
		return 0;
	case 'N':
	case 'A': return pgp_check_backend(m) ? -EBADMSG : 0;
	default: return -EPROTO;
	}
}

void pq_free(struct pconn *c)
{
	while (head(c)) {
		struct xentry *e = head(c);
		st_unref(e->st);
		portal_unref(e->portal);
		free(e->msg);
		free(e->name);
		c->qhead++;
	}
	free(c->q);
	res_reset(c);
	for (size_t i = 0; i < c->nstmts; i++) {
		st_unref(c->stmts[i].obj);
		free(c->stmts[i].name);
	}
	for (size_t i = 0; i < c->nportals; i++) {
		portal_unref(c->portals[i].obj);
		free(c->portals[i].name);
	}
	free(c->stmts);
	free(c->portals);
}
