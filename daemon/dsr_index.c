/* dsr_index.c - see dsr_index.h */
#include "dsr_index.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logkey.h"
#include "logread.h"

#define BATCH_ROWS 50000 /* index rows sent in one COPY */

struct batch {
	struct dsr *d;
	struct buf copy;
	size_t rows;
	uint64_t last; /* the last access record seen */
	char id[2 * LOG_ID_LEN + 1];
	char *err;
	size_t errlen;
};

/* The log's id, from its public key file (log.pub in the log directory). */
static int log_id(const char *dir, char out[2 * LOG_ID_LEN + 1], char *err, size_t errlen)
{
	char path[4096], *text = NULL, e[256];
	size_t len;
	struct logkeys k;

	snprintf(path, sizeof(path), "%s/log.pub", dir);
	int r = read_file(path, SECRET_TEXT_MAX, &text, &len);
	if (!r && logkey_parse(text, len, &k, e, sizeof(e)))
		r = -EINVAL;
	free(text);
	if (r) {
		snprintf(err, errlen, "the audit log's id cannot be read from %s: %s", path, strerror(-r));
		return r;
	}
	hex_encode(k.log_id, LOG_ID_LEN, out);
	return 0;
}

/* A text field for COPY's text format: NULL as \N, specials escaped. */
static void copy_text(struct buf *b, const char *s)
{
	if (!s) {
		buf_adds(b, "\\N");
		return;
	}
	for (; *s; s++) {
		if (*s == '\\' || *s == '\t' || *s == '\n' || *s == '\r')
			buf_printf(b, "\\%c", *s == '\t' ? 't' : *s == '\n' ? 'n' : *s == '\r' ? 'r' : '\\');
		else
			buf_addc(b, *s);
	}
}

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* The client's address without its port: "10.0.0.5:51234" -> "10.0.0.5". */
static void host_of(const char *addr, char *out, size_t n)
{
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	size_t len = addr ? strlen(addr) : 0;

	if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1))
		len = (size_t)(colon - addr);
	snprintf(out, n, "%.*s", (int)len, addr ? addr : "");
}

static int flush(struct batch *b)
{
	PGconn *db = b->d->ledger;
	char seq[24];
	const char *v[] = { b->id, seq };
	PGresult *r = PQexec(db, "BEGIN");
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

	PQclear(r);
	if (ok && b->rows) {
		r = PQexec(db,
		           "COPY custos.subject_index (log_id, subject_ref, seq, ts, actor_user, actor_app, "
		           "actor_host, object, rows, kind, attempt) FROM STDIN");
		ok = PQresultStatus(r) == PGRES_COPY_IN;
		PQclear(r);
		ok = ok && PQputCopyData(db, b->copy.p, (int)b->copy.len) == 1;
		ok = PQputCopyEnd(db, ok ? NULL : "failed") == 1 && ok;
		r = PQgetResult(db);
		ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		while ((r = PQgetResult(db)))
			PQclear(r);
	}
	snprintf(seq, sizeof(seq), "%" PRIu64, b->last);
	if (ok) {
		r = PQexecParams(db,
		                 "INSERT INTO custos.subject_index_state (log_id, indexed_seq) "
		                 "VALUES (decode($1, 'hex'), $2) ON CONFLICT (log_id) DO UPDATE SET "
		                 "indexed_seq = EXCLUDED.indexed_seq, updated_at = now()",
		                 2, NULL, v, NULL, NULL, 0);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
	}
	r = PQexec(db, ok ? "COMMIT" : "ROLLBACK");
	ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok) {
		snprintf(b->err, b->errlen, "the subject index cannot be written: %s", PQerrorMessage(db));
		b->err[strcspn(b->err, "\n")] = 0;
	}
	b->copy.len = 0;
	b->rows = 0;
	return ok ? 0 : -EIO;
}

/* One row per subject an access or attempt record names. */
static int on_record(void *arg, json_t *rec, const char *line, size_t len)
{
	struct batch *b = arg;
	json_t *actor = json_object_get(rec, "actor"), *s;
	json_int_t seq = json_integer_value(json_object_get(rec, "seq"));
	const char *kind = str(rec, "type");
	json_t *attempt = json_object_get(json_object_get(rec, "detail"), "attempt");
	size_t i;
	char host[128];

	(void)line, (void)len;
	b->last = (uint64_t)seq;
	if (!kind || (strcmp(kind, "access") && strcmp(kind, "attempt")))
		return 0;
	host_of(str(actor, "addr"), host, sizeof(host));
	json_t *subjects = json_object_get(rec, "subjects");
	json_array_foreach(subjects, i, s)
	{
		const char *ref = str(s, "ref");
		bool seen = false;
		if (!ref || strlen(ref) != 64 || strspn(ref, "0123456789abcdef") != 64)
			continue;                       /* an erased subject, or nobody */
		for (size_t j = 0; j < i && !seen; j++) /* one row per subject and record */
			seen = !strcmp(ref, str(json_array_get(subjects, j), "ref") ?: "");
		if (seen)
			continue;
		buf_printf(&b->copy, "\\\\x%s\t\\\\x%s\t%" JSON_INTEGER_FORMAT "\t", b->id, ref, seq);
		copy_text(&b->copy, str(rec, "ts"));
		buf_addc(&b->copy, '\t');
		copy_text(&b->copy, str(actor, "user"));
		buf_addc(&b->copy, '\t');
		copy_text(&b->copy, str(actor, "app"));
		buf_addc(&b->copy, '\t');
		copy_text(&b->copy, host);
		buf_addc(&b->copy, '\t');
		copy_text(&b->copy, str(json_object_get(rec, "object"), "table"));
		json_t *rows = json_object_get(rec, "rows");
		if (json_is_integer(rows))
			buf_printf(&b->copy, "\t%" JSON_INTEGER_FORMAT, json_integer_value(rows));
		else
			buf_adds(&b->copy, "\t\\N");
		buf_printf(&b->copy, "\t%s\t", kind);
		if (json_is_integer(attempt) && !strcmp(kind, "access"))
			buf_printf(&b->copy, "%" JSON_INTEGER_FORMAT "\n", json_integer_value(attempt));
		else
			buf_adds(&b->copy, "\\N\n");
		b->rows++;
	}
	if (b->copy.failed)
		return -ENOMEM;
	return b->rows >= BATCH_ROWS ? flush(b) : 0;
}

static int indexed(struct dsr *d, const char *id, uint64_t *ret, char *err, size_t errlen)
{
	const char *v[] = { id };
	PGresult *r = PQexecParams(
	    d->ledger, "SELECT indexed_seq FROM custos.subject_index_state WHERE log_id = decode($1, 'hex')",
	    1, NULL, v, NULL, NULL, 0);
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK;

	*ret = ok && PQntuples(r) ? strtoull(PQgetvalue(r, 0, 0), NULL, 10) : 0;
	if (!ok) {
		snprintf(err, errlen, "the subject index cannot be read: %s", PQerrorMessage(d->ledger));
		err[strcspn(err, "\n")] = 0;
	}
	PQclear(r);
	return ok ? 0 : -EIO;
}

int dsr_index_catch_up(struct dsr *d, uint64_t max, char *err, size_t errlen)
{
	struct batch b = { .d = d, .copy = BUF_INIT, .err = err, .errlen = errlen };
	struct lrd_error le = { 0 };
	int r = log_id(d->env->cfg->log_dir, b.id, err, errlen);

	if (!r)
		r = indexed(d, b.id, &b.last, err, errlen);
	uint64_t from = b.last, until = max ? b.last + max : 0;
	struct lrd_pos pos = d->index_pos;
	for (int tries = 0; !r; tries++) {
		/* the logger may seal (compress and rename) a segment under the reader: read on from
		 * where it stopped, in the segments as they are now */
		/* only records naming subjects are parsed (on_record takes accesses and attempts) */
		struct lrd_filter f = { .type = NULL,
			                .after_seq = b.last,
			                .until_seq = until,
			                .contains = "\"subjects\":[",
			                .trust_end = true,
			                .pos = &pos };
		r = lrd_each(d->env->cfg->log_dir, &f, on_record, &b, &le);
		if (pos.seq > b.last)
			b.last = pos.seq; /* and the records without subjects up to there */
		if (r != -ENOENT || tries == 2)
			break;
		r = 0;
	}
	if (r > 0 || (r < 0 && r != -EIO && r != -ENOMEM))
		snprintf(err, errlen, "the audit log cannot be read after seq %" PRIu64 ": %s", b.last,
		         le.reason);
	if (!r && (b.rows || b.last != from))
		r = flush(&b);
	d->index_pos = r ? (struct lrd_pos){ 0 } : pos; /* after a failure, read from a segment's start */
	buf_free(&b.copy);
	return r > 0 ? -EIO : r < 0 ? r : until && b.last >= until;
}

json_t *dsr_index_accesses(struct dsr *d, const char *ref, char *err, size_t errlen)
{
	char id[2 * LOG_ID_LEN + 1], limit[16];
	json_t *j = NULL;

	if (log_id(d->env->cfg->log_dir, id, err, errlen))
		return NULL;
	snprintf(limit, sizeof(limit), "%d", DSR_RECENT_ACCESSES);
	const char *v[] = { id, ref, limit };
	PGresult *r = PQexecParams(
	    d->ledger,
	    "WITH i AS (SELECT * FROM custos.subject_index WHERE log_id = decode($1, 'hex') AND "
	    "subject_ref = decode($2, 'hex')), s AS (SELECT * FROM i WHERE kind = 'access') "
	    "SELECT json_build_object('total', (SELECT count(*) FROM s), "
	    "'by_actor', (SELECT coalesce(json_agg(a ORDER BY a.first), '[]') FROM (SELECT "
	    "coalesce(actor_user, '') AS user, coalesce(actor_app, '') AS application, "
	    "coalesce(actor_host, '') AS \"from\", "
	    "coalesce(array_agg(DISTINCT object) FILTER (WHERE object IS NOT NULL), '{}') AS tables, "
	    "count(*) AS count, min(ts) AS first, max(ts) AS last FROM s GROUP BY 1, 2, 3) a), "
	    "'recent', (SELECT coalesce(json_agg(x ORDER BY x.seq), '[]') FROM (SELECT seq, ts AS at, "
	    "coalesce(actor_user, '') AS user, actor_app AS application, actor_host AS \"from\", object AS "
	    "table, "
	    "rows FROM s ORDER BY seq DESC LIMIT $3::int) x), "
	    /* writes whose attempt is in the log but not the access record that follows one */
	    "'attempted', (SELECT coalesce(json_agg(x ORDER BY x.seq), '[]') FROM (SELECT seq, ts AS at, "
	    "coalesce(actor_user, '') AS user, actor_app AS application, actor_host AS \"from\", object AS "
	    "table FROM i WHERE kind = 'attempt' AND NOT EXISTS (SELECT 1 FROM custos.subject_index f "
	    "WHERE f.log_id = i.log_id AND f.attempt = i.seq) ORDER BY seq DESC LIMIT $3::int) x))",
	    3, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		j = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
	if (!j) {
		snprintf(err, errlen, "the subject index cannot be read: %s", PQerrorMessage(d->ledger));
		err[strcspn(err, "\n")] = 0;
	}
	PQclear(r);
	return j;
}
