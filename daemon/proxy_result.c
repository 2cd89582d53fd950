/* proxy_result.c - the backend's responses, matched against the head of
 * the queue proxy_query.c keeps: results are mapped to the policy, their
 * subjects collected, held back, and recorded (see proxy_query.c's
 * opening comment for the whole). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "proxy_conn.h"

/* --- the backend ------------------------------------------------------------- */

static bool has_result(const struct xentry *e)
{
	return e && (e->kind == X_QSTMT || e->kind == X_EXECUTE);
}

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
		pq_named_subjects(&c->res, e->st, e->portal);
	}
	if (c->res.map && c->res.map->refuse && !c->res.refusal) {
		c->res.refusal = "the policy withholds a column of this result from this database user";
		c->res.refusal_code = PX_ERR_DECRYPT;
	}
	if (hold && !c->res.hold && ((e->st && e->st->sensitive) || (c->res.map && c->res.map->personal)))
		pq_gate(c);
}

static struct colmap *new_map(uint16_t n)
{
	struct colmap *map = calloc(1, sizeof(*map));

	if (map && !(map->f = calloc(n ? n : 1, sizeof(*map->f)))) {
		free(map);
		map = NULL;
	}
	return map;
}

/* The result's columns as the policy sees them, by the table OID and
 * attribute number RowDescription gives. A column of a view over a policy
 * table makes the result personal data (held and recorded), whatever the
 * statement's analysis saw (a prepared statement over a view redefined
 * since); it is the table's column when the view shows that as it is. A
 * view the catalog does not show yet (made in the same message) is not
 * seen. */
static struct colmap *map_result(struct pconn *c, const struct pgp_msg *m)
{
	struct pgp_rowdesc rd;
	struct colmap *map = NULL;
	bool oom = false;

	if (!c->px->pp || pgp_parse_rowdesc(m, &rd))
		return NULL;
	for (uint16_t i = 0; i < rd.n && !oom; i++) {
		const struct pp_table *t = ppol_by_oid(c->px->pp, rd.fields[i].table_oid);
		const struct pp_table *via = t ? NULL : ppol_view_by_oid(c->px->pp, rd.fields[i].table_oid);
		const struct pp_column *col =
		    via ? ppol_view_column(c->px->pp, rd.fields[i].table_oid, rd.fields[i].attnum)
		        : ppol_column(t, rd.fields[i].attnum);
		if (!via && (!col || (!col->pc && !col->subject)))
			continue;
		if (!map && !(map = new_map(rd.n))) {
			oom = true;
			break;
		}
		map->f[i] = col;
		map->personal |= via || col->pc != NULL;
		map->subject |= col && col->subject != NULL;
		if (!map->table && (via || col->pc))
			map->table = col && col->pc ? col->table : via->name;
	}
	if (oom)
		pc_fatal(c, PX_ERR_DECRYPT, "out of memory");
	if (map) {
		map->refs = 1;
		map->n = rd.n;
		map->pp = ppol_ref(c->px->pp);
		if (pxc_map(c, map, &rd)) {
			pq_map_unref(map);
			map = NULL;
			pc_fatal(c, PX_ERR_DECRYPT, "out of memory");
		}
	}
	free(rd.fields);
	return map;
}

/* A value that cannot be decrypted (err from pxc_row, pxc_copyrow)
 * withholds the rest of the result: true when err is such a failure. */
static bool withheld(struct pconn *c, int err)
{
	static const struct {
		int err;
		const char *log, *client;
	} why[] = {
		{ -EIO, "no key to decrypt a value with (keeper or keystore unreachable)",
		  "a value cannot be decrypted now: the key store is unreachable" },
		{ -EILSEQ, "a COPY TO row does not read as the COPY's columns under its options",
		  "a row of the COPY cannot be read under its options and is withheld" },
		{ -EKEYREJECTED, "a value failed its integrity check: altered, or moved from elsewhere",
		  "a value failed its integrity check and is withheld" },
		{ -ERANGE, "a decrypted value has no equivalent in the client's encoding",
		  "a value has a character with no equivalent in the client's encoding and is withheld" },
	};
	size_t i = 0;

	while (i < ARRAY_SIZE(why) && why[i].err != err)
		i++;
	if (i == ARRAY_SIZE(why))
		return false;
	role_log(3, "proxy", "session %s: %s", c->session, why[i].log);
	c->res.refusal = why[i].client;
	c->res.refusal_code = PX_ERR_DECRYPT;
	return true;
}

/* Passes the row as this client may see it (row: decrypted already, when
 * its map rewrites it; err: the decryption's): 2 passed on, 1 withheld. */
static int pass_row(struct pconn *c, const struct pgp_msg *hdr, struct evbuffer *in, struct buf *row, int err)
{
	struct result *r = &c->res;

	if (r->refusal) {
		evbuffer_drain(in, hdr->size);
		return 1;
	}
	if (!r->map || !r->map->rewrite)
		return pc_pass(c, hdr, in) ? -ENOMEM : 2;
	evbuffer_drain(in, hdr->size);
	if (!err && pc_write(c, row->p, row->len))
		err = -ENOMEM;
	if (withheld(c, err))
		return 1;
	return err ? err : 2;
}

/* 2: the row went on (or was withheld); 3: it waits for keys to decrypt
 * it with, untouched, to be taken again when they come. */
/* A subject column's value in a row (in the text format, or in the binary
 * one for a type whose text form can be had): whether it names one. */
static bool row_subject(struct result *r, uint16_t i, const struct pgp_value *v)
{
	char room[IDT_ROOM];
	const char *id = (const char *)v->p;
	int len = v->len;

	if (!r->map->f[i] || !r->map->f[i]->subject || len < 0)
		return false;
	if (r->map->binary && r->map->binary[i] && (len = idt_binary(r->map->binary[i], v, room, &id)) < 0)
		return false;
	pq_add_subject(r, r->map->f[i]->subject, (const uint8_t *)id, len);
	return true;
}

static int on_datarow(struct pconn *c, const struct pgp_msg *hdr, struct evbuffer *in)
{
	struct result *r = &c->res;
	static struct pgp_value vals[PGP_MAX_FIELDS];
	uint16_t n = 0;

	if (!r->map || (!r->map->subject && !r->map->rewrite)) {
		r->rows++;
		r->unattributed += r->hold != NULL && !r->nsubjects; /* a predicate may name them */
		return pass_row(c, hdr, in, NULL, 0);
	}
	const uint8_t *p = evbuffer_pullup(in, (ssize_t)hdr->size);
	struct pgp_msg m = *hdr;
	if (!p)
		return -ENOMEM;
	m.body = p + 5;
	if (pgp_parse_datarow(&m, vals, PGP_MAX_FIELDS, &n) || n != r->map->n)
		return -EBADMSG;
	struct buf row = BUF_SECRET;
	int err = r->map->rewrite && !r->refusal ? pxc_row(c, r->map, 'D', NULL, 0, vals, n, &row) : 0;
	if (err != -EINPROGRESS) {
		r->rows++;
		bool named = false;
		for (uint16_t i = 0; i < n; i++)
			named |= row_subject(r, i, &vals[i]);
		r->unattributed += !named;
		err = pass_row(c, hdr, in, &row, err);
	}
	OPENSSL_cleanse(row.p, row.len);
	buf_free(&row);
	return err == -EINPROGRESS ? 3 : err;
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
		err = pq_record(c, st, rows, bulk ? "bulk-access" : "", partial);
	}
	if (!err && st && st->ddl)
		c->px->pp_stale = c->ddl_done = true;
	if (partial && !err) {
		r->part++;
		r->recorded += r->rows;
		r->rows = r->unattributed = r->subjects_over = 0;
		for (size_t i = 0; i < r->nsubjects; i++)
			free((char *)r->subjects[i].id);
		r->nsubjects = 0;
		pq_gate(c);
	}
	return err;
}

/* The server's answer to the failing statement the proxy sent in place of
 * a refused one: the refusal goes instead (nothing, for X_ABORT's). */
static void refused(struct pconn *c, const struct xentry *e, const struct pgp_msg *m, struct evbuffer *in)
{
	evbuffer_drain(in, m->size);
	if (e->kind != X_ABORT) {
		pc_error(c, e->sqlstate, e->msg);
		c->px->st.refused_statements++;
	}
}

static int on_error(struct pconn *c, const struct pgp_msg *m, struct evbuffer *in)
{
	struct pgp_notice n;
	struct xentry *e = pq_head(c);

	if (pgp_parse_notice(m, &n))
		return -EBADMSG;
	if (!e)
		return 0; /* FATAL out of the blue (shutdown) */
	bool simple = e->kind == X_QSTMT || e->kind == X_QEND || e->kind == X_REFUSE_Q || e->kind == X_ABORT;
	bool result = has_result(e);
	if (result) {
		begin(c, e, true);
		c->res.error = "";
		snprintf(c->res.errcode, sizeof(c->res.errcode), "%s", n.code ? n.code : "");
	}
	pxi_abandon(c);
	pc_keys_ready(c); /* what waited behind the rows goes on (to nowhere) */
	if (e->kind == X_REFUSE_Q || e->kind == X_REFUSE_X || e->kind == X_ABORT) {
		refused(c, e, m, in);
	} else if (result && c->res.refusal) { /* the proxy's reason for the error (a COPY it failed) */
		evbuffer_drain(in, m->size);
		pc_error(c, c->res.refusal_code, c->res.refusal);
		c->px->st.refused_statements++;
	} else if (pc_pass(c, m, in)) {
		return -ENOMEM;
	}
	if (result && finish(c, e, (int64_t)c->res.rows, false))
		return -1;
	/* the rest of the query string, or everything up to Sync, is skipped */
	while ((e = pq_head(c)) && e->kind != (simple ? X_QEND : X_SYNC))
		pq_pop(c);
	return 2;
}

static int on_ready(struct pconn *c, const struct pgp_msg *m)
{
	struct xentry *e;

	if (m->len != 1)
		return -EBADMSG;
	c->txstatus = (char)m->body[0];
	c->copy_done_early = false;
	while ((e = pq_head(c))) {
		bool last = e->kind == X_SYNC || e->kind == X_QEND;
		pq_pop(c);
		if (last)
			break;
	}
	pd_tx_ended(c);
	return 0;
}

static int on_rowdesc(struct pconn *c, const struct pgp_msg *m)
{
	struct xentry *e = pq_head(c);

	if (!e)
		return -EPROTO;
	if (e->kind == X_DESCRIBE) {
		bool own = e->own;
		if (e->portal) {
			pq_map_unref(e->portal->map);
			e->portal->map = map_result(c, m);
		}
		pq_pop(c);
		return own; /* the proxy's own Describe: not for the client */
	}
	if (e->kind != X_QSTMT)
		return -EPROTO;
	pq_res_reset(c);
	c->res.map = map_result(c, m); /* it may show personal data the analysis did not see */
	begin(c, e, true);
	return 0;
}

/* ParameterStatus: application_name for the actor; the
 * settings that change how a statement's text is read. libpg_query reads
 * it as PostgreSQL does with standard_conforming_strings on and a client
 * encoding with no backslash inside a character (UTF8, SQL_ASCII, the
 * LATINs...): otherwise a string could end where the proxy sees none. */
int pq_parameter(struct pconn *c, const struct pgp_msg *m)
{
	if (pgp_check_backend(m))
		return -EBADMSG; /* below, both strings end inside the message */
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
		pge_set(&c->enc, v);
		c->unsafe_encoding = false;
		for (size_t i = 0; i < ARRAY_SIZE(unsafe); i++)
			c->unsafe_encoding |= !strcasecmp(v, unsafe[i]);
	}
	return 0;
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

/* CopyOutResponse of COPY table TO: its rows are matched to the table's
 * columns like a DataRow's. */
static int copy_out(struct pconn *c, const struct xentry *e, const struct pgp_msg *m)
{
	if (m->len < 3)
		return -EBADMSG;
	uint16_t n = (uint16_t)(m->body[1] << 8 | m->body[2]);
	bool binary = m->body[0] != 0;
	if (m->len != 3 + 2u * n)
		return -EBADMSG;
	if (!e->st || !e->st->copy_out || c->res.map || binary != e->st->copy_binary)
		return 0; /* not a table's columns: passed as stored */
	c->res.header = e->st->copy_header || binary;
	c->res.binary = binary;
	c->res.map = pxc_copy_map(c, e->st, n);
	if (c->res.map && c->res.map->refuse && !c->res.refusal) {
		c->res.refusal = "the policy withholds a column of this COPY from this database user";
		c->res.refusal_code = PX_ERR_DECRYPT;
	}
	return 0;
}

/* The subjects of a row of COPY TO (its subject columns): whether any. */
static bool copy_subjects(struct result *r, const char *row, size_t len)
{
	const struct colmap *map = r->map;
	struct buf id = BUF_SECRET;
	bool named = false;
	int n = len && row[len - 1] == '\n' ? ct_split(&map->fmt, row, len - 1, map->fields, map->n) : -1;

	for (int i = 0; i < n && i < map->n; i++) {
		if (!map->f[i] || !map->f[i]->subject || ct_is_null(&map->fmt, &map->fields[i]))
			continue;
		buf_reset(&id);
		if (ct_value(&map->fmt, &map->fields[i], &id) || id.len > INT32_MAX)
			continue;
		pq_add_subject(r, map->f[i]->subject, (const uint8_t *)(id.p ? id.p : ""), (int32_t)id.len);
		named = true;
	}
	buf_free(&id);
	return named;
}

/* A message of COPY TO in the binary format: a row (after the file's
 * header, in the first), or the trailer. Each holds its row as a DataRow
 * does, and is handled as one (PostgreSQL sends one row a message). */
static int on_copybinary(struct pconn *c, const struct pgp_msg *hdr, struct evbuffer *in)
{
	static struct pgp_value vals[PGP_MAX_FIELDS];
	struct result *r = &c->res;
	const struct colmap *map = r->map;
	uint16_t n = 0;
	const uint8_t *p = evbuffer_pullup(in, (ssize_t)hdr->size);

	if (!p)
		return -ENOMEM;
	size_t head = 0;
	if (r->header && ct_binary_header(p + 5, hdr->len, &head) != 1)
		head = 0; /* the whole header comes with the first row */
	struct pgp_msg t = { .type = 'd', .body = p + 5 + head, .len = hdr->len - head };
	bool trailer = t.len == 2 && t.body[0] == 0xff && t.body[1] == 0xff;
	if (!map || r->refusal || (!map->rewrite && !map->subject)) {
		r->header = false;
		r->rows += !trailer;
		r->unattributed += !trailer && !r->refusal && r->hold != NULL && !r->nsubjects;
		return r->refusal ? (evbuffer_drain(in, hdr->size), 2) : pc_pass(c, hdr, in) ? -ENOMEM : 2;
	}
	int err = (r->header && !head) ||
	                  (!trailer && (pgp_parse_datarow(&t, vals, PGP_MAX_FIELDS, &n) || n != map->n))
	              ? -EILSEQ
	              : 0;
	bool parsed = !err;
	struct buf msg = BUF_SECRET;
	if (!err && !trailer && map->rewrite)
		err = pxc_row(c, map, 'd', p + 5, head, vals, n, &msg);
	if (err != -EINPROGRESS) {
		r->header = false;
		bool named = false;
		for (uint16_t i = 0; parsed && !trailer && i < n; i++)
			named |= row_subject(r, i, &vals[i]);
		r->rows += !trailer;
		r->unattributed += !trailer && !named;
		if (!err && (trailer || !map->rewrite))
			err = pc_pass(c, hdr, in) ? -ENOMEM : 0;
		else
			evbuffer_drain(in,
			               hdr->size); /* (one that does not read as the table's row: withheld) */
		if (!err && map->rewrite && !trailer && pc_write(c, msg.p, msg.len))
			err = -ENOMEM;
	}
	OPENSSL_cleanse(msg.p, msg.len);
	buf_free(&msg);
	return err == -EINPROGRESS ? 3 : withheld(c, err) ? 2 : err ? err : 2;
}

/* A row of COPY TO: attributed by its subject column, and passed as this
 * client may see it. 2: handled; 3: it waits for keys, untouched. */
static int on_copydata(struct pconn *c, const struct pgp_msg *hdr, struct evbuffer *in)
{
	struct result *r = &c->res;
	struct buf row = BUF_SECRET;

	if (r->binary)
		return on_copybinary(c, hdr, in);

	if (r->header) { /* the columns' names */
		r->header = false;
		return r->refusal ? (evbuffer_drain(in, hdr->size), 2) : pc_pass(c, hdr, in) ? -ENOMEM : 2;
	}
	if (!r->map || (!r->map->rewrite && !r->map->subject && !r->refusal)) {
		r->rows++;
		r->unattributed += r->hold != NULL && !r->nsubjects;
		return pc_pass(c, hdr, in) ? -ENOMEM : 2;
	}
	if (r->refusal) {
		r->rows++;
		evbuffer_drain(in, hdr->size);
		return 2;
	}
	const uint8_t *p = evbuffer_pullup(in, (ssize_t)hdr->size);
	if (!p)
		return -ENOMEM;
	int err = r->map->rewrite ? pxc_copyrow(c, r->map, p + 5, hdr->len, &row) : 0;
	if (err == -EINPROGRESS) {
		OPENSSL_cleanse(row.p, row.len);
		buf_free(&row);
		return 3;
	}
	r->rows++;
	r->unattributed += !copy_subjects(r, (const char *)p + 5, hdr->len);
	if (!r->map->rewrite)
		return pc_pass(c, hdr, in) ? -ENOMEM : 2;
	struct buf msg = BUF_SECRET;
	if (!err)
		pgp_message(&msg, 'd', row.p, row.len);
	OPENSSL_cleanse(row.p, row.len);
	buf_free(&row);
	evbuffer_drain(in, hdr->size); /* (a row that is not one of the table's columns: withheld) */
	if (!err && (msg.failed || pc_write(c, msg.p, msg.len)))
		err = -ENOMEM;
	OPENSSL_cleanse(msg.p, msg.len);
	buf_free(&msg);
	if (withheld(c, err))
		return 2;
	return err ? err : 2;
}

/* The end of a withheld result: an ERROR in place of CommandComplete, and
 * what the server still answers before ReadyForQuery is dropped, as the
 * server itself would skip it after an error. */
static int withhold(struct pconn *c, const struct pgp_msg *m, struct evbuffer *in)
{
	struct xentry *e = pq_head(c);
	bool simple = e->kind == X_QSTMT;
	enum xkind last = simple ? X_QEND : X_SYNC;
	struct buf b = BUF_INIT;

	/* The server saw no error: what the client queued after this statement
	 * runs there all the same. The proxy can stand in for the server's
	 * skipping only when nothing is queued after it; otherwise the session
	 * ends (the client and the server could not agree on what ran). */
	if (c->qhead + 1 < c->qn && c->q[c->qhead + 1].kind != last) {
		c->px->st.refused_statements++;
		if (!finish(c, e, 0, false))
			pc_fatal(c, c->res.refusal_code, c->res.refusal);
		return -1;
	}
	pgp_error(&b, "ERROR", c->res.refusal_code, c->res.refusal);
	evbuffer_drain(in, m->size);
	int err = b.failed || pc_write(c, b.p, b.len) ? -ENOMEM : 0;
	buf_free(&b);
	c->res.error = "";
	snprintf(c->res.errcode, sizeof(c->res.errcode), "%s", c->res.refusal_code);
	c->px->st.refused_statements++;
	if (!err && finish(c, e, 0, false))
		return -1;
	while ((e = pq_head(c)) && e->kind != last)
		pq_pop(c);
	c->drop = true;
	return err ? err : 2;
}

/* The end of a withheld result inside a transaction: the transaction is
 * aborted on the server as well, by a failing statement whose
 * ReadyForQuery ('E') the client gets in place of this one. What the
 * client pipelined after it has already gone to the server, into a
 * transaction the client saw fail: the session ends instead, which rolls
 * the transaction back unless what was pipelined ended it (a COMMIT the
 * server has already run). */
static int abort_transaction(struct pconn *c, const struct pgp_msg *m, struct evbuffer *in)
{
	int r = on_ready(c, m); /* before the drain: m points into the buffer */

	evbuffer_drain(in, m->size);
	if (r)
		return -EBADMSG;
	if (pq_head(c)) {
		pc_fatal(c, PX_ERR_DECRYPT,
		         "a result was withheld inside a transaction with statements queued "
		         "after it: the session ends and the transaction with it");
		return -1;
	}
	if (pq_send_failing(c, true) || pq_push(c, (struct xentry){ .kind = X_ABORT }) ||
	    pq_push(c, (struct xentry){ .kind = X_QEND }))
		return -ENOMEM;
	return 2;
}

/* While dropping: what still reaches the client. */
static int dropping(struct pconn *c, const struct pgp_msg *m, struct evbuffer *in)
{
	switch (m->type) {
	case 'Z':
		c->drop = false;
		if (m->len == 1 && m->body[0] == 'T') /* the client saw an error inside its transaction */
			return abort_transaction(c, m, in);
		return on_ready(c, m);
	case 'S': return pq_parameter(c, m);
	case 'N':
	case 'A': return pgp_check_backend(m) ? -EBADMSG : 0;
	default: evbuffer_drain(in, m->size); return 2;
	}
}

/* ParameterDescription of a statement the proxy added parameters to (the
 * blind indexes it writes): the client sees its own parameters only. */
static int own_params(struct pconn *c, const struct pgp_msg *m, struct evbuffer *in, unsigned extra)
{
	const uint8_t *p = evbuffer_pullup(in, (ssize_t)m->size);
	struct buf b = BUF_INIT;

	if (!p)
		return -ENOMEM;
	uint16_t n = m->len >= 2 ? (uint16_t)(p[5] << 8 | p[6]) : 0;
	if (m->len != 2 + 4u * n || n < extra)
		return -EBADMSG;
	n = (uint16_t)(n - extra);
	uint8_t count[2] = { (uint8_t)(n >> 8), (uint8_t)n };
	buf_add(&b, count, 2);
	buf_add(&b, p + 7, 4u * n);
	struct buf msg = BUF_INIT;
	pgp_message(&msg, 't', b.p, b.len);
	evbuffer_drain(in, m->size);
	int err = b.failed || msg.failed || pc_write(c, msg.p, msg.len) ? -ENOMEM : 2;
	buf_free(&b);
	buf_free(&msg);
	return err;
}

/* 0: forward the message, 1: consumed, 2: passed on already (pc_pass),
 * 3: not yet (it waits for keys, and is taken again when they come),
 * <0: the connection ends (an error the caller reports, or -1 when it has
 * already failed closed). */
int pq_backend(struct pconn *c, const struct pgp_msg *m, struct evbuffer *in)
{
	struct xentry *e = pq_head(c);

	if (c->drop)
		return dropping(c, m, in);
	switch (m->type) {
	case 'D':
	case 'd':
		if (!has_result(e))
			return -EPROTO;
		begin(c, e, true);
		int r = m->type == 'D' ? on_datarow(c, m, in) : on_copydata(c, m, in);
		if (r < 0)
			return r == -ENOMEM ? r : -EBADMSG;
		if (r == 3)
			return r;
		/* a large result is recorded in parts: the server must not wait on a full hold */
		if (c->res.hold && c->held >= PX_HOLD_MAX && finish(c, e, (int64_t)c->res.rows, true))
			return -1;
		return 2;
	case 'T': return on_rowdesc(c, m);
	case 'C':
		if (!has_result(e) || pgp_check_backend(m))
			return -EPROTO;
		begin(c, e, true);
		if (c->res.refusal)
			return withhold(c, m, in);
		int64_t rows = tag_rows(m, &c->res);
		if (pc_pass(c, m, in)) /* into the hold its record releases */
			return -ENOMEM;
		if (finish(c, e, rows, false))
			return -1;
		pq_pop(c);
		return 2;
	case 'I':
	case 's':
		if (!has_result(e))
			return -EPROTO;
		begin(c, e, true);
		if (c->res.refusal)
			return withhold(c, m, in);
		if (pc_pass(c, m, in))
			return -ENOMEM;
		if (m->type == 's' && finish(c, e, (int64_t)c->res.rows, false))
			return -1;
		pq_pop(c);
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
		if (pq_confirm(c, e))
			return -ENOMEM;
		bool own = e->own;
		pq_pop(c);
		return own; /* NoData for the proxy's own Describe: not for the client */
	case 't':
		if (!e || e->kind != X_DESCRIBE)
			return -EPROTO;
		if (e->st && pq_param_types(e->st, m))
			return -EBADMSG;
		return e->st && pxe_added_params(e->st->enc)
		           ? own_params(c, m, in, pxe_added_params(e->st->enc))
		           : 0;
	case 'G':
	case 'W':
		if (!has_result(e))
			return -EPROTO;
		/* copy in: the client must see it to send its rows; the outcome waits */
		begin(c, e, false);
		if (m->type == 'G' && pxi_check(c, e->st, m))
			return -EPROTO;
		if (!c->copy_done_early)
			copy_in(c); /* else the Syncs queued after it are the client's next ones */
		c->copy_done_early = false;
		return 0;
	case 'H':
	case 'c':
		if (!has_result(e))
			return -EPROTO;
		begin(c, e, true);
		return m->type == 'H' ? copy_out(c, e, m) : 0;
	case 'S': return pq_parameter(c, m);
	case 'N':
	case 'A': return pgp_check_backend(m) ? -EBADMSG : 0;
	default: return -EPROTO;
	}
}
