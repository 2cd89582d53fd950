/* proxy_record.c - a statement's access record and what waits for it:
 * the subjects its text and its result name, the record sent to the
 * logger when the statement completes (or an attempt before a write that
 * commits as it runs), and the hold that keeps what the client would see
 * back until the record is durable (see proxy_query.c's opening comment). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "logmsg.h"
#include "proxy_conn.h"

void pq_gate(struct pconn *c)
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
	const struct xentry *e = pq_head(c);

	buf_adds(d, st->detail);
	d->len--; /* the closing brace */
	if (e && e->attempt) {
		buf_adds(d, ",\"attempt\":");
		jw_u64(d, e->attempt);
	}
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

static struct alog_actor actor_of(const struct pconn *c)
{
	return (struct alog_actor){ c->user, c->app, c->addr, c->session, *c->tls_id ? c->tls_id : NULL };
}

static void queue_ticket(struct pconn *c, struct ticket *t)
{
	*c->tk_tail = t;
	c->tk_tail = &t->next;
}

/* Records the head's statement (so far, when partial). -1 when the
 * connection failed closed. */
int pq_record(struct pconn *c, const struct pstmt *st, int64_t rows, const char *event, bool partial)
{
	struct result *r = &c->res;
	struct alog_actor actor = actor_of(c);
	const char *cols[64];
	struct buf d = BUF_INIT;
	struct ticket *t = calloc(1, sizeof(*t));

	const char *table = st->table ? st->table : r->map ? r->map->table : NULL;

	build_detail(c, st, &d);
	struct alog_rec rec = { .type = "access",
		                .actor = &actor,
		                .table = table,
		                .columns = cols,
		                .ncolumns = table ? personal_columns(r, cols, ARRAY_SIZE(cols)) : 0,
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
	queue_ticket(c, t);
	return 0;
}

/* The subjects st names before it runs (bound in p): its predicates' and
 * inserted values. */
void pq_named_subjects(struct result *r, const struct pstmt *st, const struct portal *p)
{
	for (size_t i = 0; st && i < st->nsp; i++) {
		const char *id = st->sp[i].param ? (p && p->ids ? p->ids[i] : NULL) : st->sp[i].value;
		if (id)
			pq_add_subject(r, st->sp[i].type, (const uint8_t *)id, (int32_t)strlen(id));
	}
}

/* A write commits as PostgreSQL runs it when no transaction is open (and
 * a pipeline may commit one before its result is back): so the server
 * gets it, and what follows it, only once this record is durable. Its
 * access record follows with what the result tells. */
int pq_attempt(struct pconn *c, const struct pstmt *st, const struct portal *p, uint64_t serial)
{
	struct alog_actor actor = actor_of(c);
	struct result named = { 0 };
	struct ticket *t = calloc(1, sizeof(*t));

	pq_named_subjects(&named, st, p);
	struct alog_rec rec = { .type = "attempt",
		                .actor = &actor,
		                .table = st->table,
		                .subjects = named.subjects,
		                .nsubjects = named.nsubjects,
		                .fingerprint = st->fp,
		                .statement = st->text,
		                .rows = -1,
		                .detail = st->detail };
	int err = !t ? -ENOMEM : pc_gate_server(c, &t->mark);
	if (!err && (err = lc_append(c->px->lc, &rec, "", false, pq_record_done, c)))
		c->gates--;
	for (size_t i = 0; i < named.nsubjects; i++)
		free((char *)named.subjects[i].id);
	free(named.subjects);
	if (err) {
		free(t);
		c->px->st.record_failures++;
		c->px->st.refused_statements++;
		role_log(3, "proxy", "session %s: cannot send an attempt record to the logger (%s)",
		         c->session, strerror(-err));
		pc_fatal(c, PX_ERR_LOG, "the audit log cannot record this write; it was not sent");
		return -1;
	}
	c->px->st.records++;
	t->attempt = true;
	t->serial = serial;
	queue_ticket(c, t);
	return 0;
}

void pq_record_done(void *arg, int err, uint64_t seq)
{
	struct pconn *c = arg;
	struct ticket *t = c->tk;

	if (!t)
		return;
	c->tk = t->next;
	if (!c->tk)
		c->tk_tail = &c->tk;
	struct hold *h = t->hold;
	bool partial = t->partial, attempt = t->attempt;
	uint64_t serial = t->serial;
	free(t);
	if (attempt && err) { /* the write and what follows it never reach the server */
		c->px->st.record_failures++;
		c->px->st.refused_statements++;
		role_log(3, "proxy", "session %s: the logger could not record an attempt (%s)", c->session,
		         strerror(-err));
		return pc_fatal(c, PX_ERR_LOG, "the audit log cannot record this write; it was not sent");
	}
	if (attempt) {
		struct portal *p = NULL;
		for (size_t i = c->qhead; i < c->qn; i++) /* its statement's access record names it */
			if (c->q[i].serial == serial) {
				c->q[i].attempt = seq;
				p = c->q[i].portal;
			}
		if (p) /* and so do those of its portal's later Executes, queued or to come */
			p->attempt = seq;
		for (size_t i = c->qhead; p && i < c->qn; i++)
			if (c->q[i].portal == p)
				c->q[i].attempt = seq;
		const struct ticket *next = c->tk;
		while (next && !next->attempt)
			next = next->next;
		return pc_open_server(c, next ? next->mark : 0);
	}
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

void pq_add_subject(struct result *r, const char *type, const uint8_t *v, int32_t len)
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

void pq_res_subject(struct pconn *c, const char *type, const char *id)
{
	pq_add_subject(&c->res, type, (const uint8_t *)id, (int32_t)strnlen(id, 257));
}
