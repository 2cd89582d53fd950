/* ledger.c - see ledger.h */
#include "ledger.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const regimes[] = { [DL_GDPR] = "gdpr", [DL_CCPA] = "ccpa" };
static const char *const kinds[] = { [LG_ACCESS] = "access", [LG_ERASURE] = "erasure" };

/* One row as JSON: every column, the ref and hash in hex. */
#define ROW_JSON                                                                                             \
	"to_jsonb(r) - 'subject_ref' - 'report_sha256' || "                                                  \
	"jsonb_build_object('subject_ref', encode(r.subject_ref, 'hex'), "                                   \
	"'report_sha256', encode(r.report_sha256, 'hex'), "                                                  \
	"'overdue', r.status NOT IN ('completed', 'denied') AND r.due_on < $2::date)"

static int db_fail(PGconn *db, PGresult *r, char *err, size_t errlen)
{
	const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	snprintf(err, errlen, "request ledger: %s", m ? m : PQerrorMessage(db));
	err[strcspn(err, "\n")] = 0;
	PQclear(r);
	return -EIO;
}

/* Runs sql with text parameters; the result when its status is want. */
static PGresult *run(PGconn *db, ExecStatusType want, const char *sql, int n, const char *const *v, char *err,
                     size_t errlen)
{
	PGresult *r = PQexecParams(db, sql, n, NULL, v, NULL, NULL, 0);

	if (PQresultStatus(r) == want)
		return r;
	db_fail(db, r, err, errlen);
	return NULL;
}

static int exec(PGconn *db, const char *sql, int n, const char *const *v, char *err, size_t errlen)
{
	PGresult *r = run(db, PGRES_COMMAND_OK, sql, n, v, err, errlen);

	if (!r)
		return -EIO;
	bool none = !strcmp(PQcmdTuples(r), "0");
	PQclear(r);
	if (none) {
		snprintf(err, errlen, "request ledger: no such request");
		return -ENOENT;
	}
	return 0;
}

int lg_begin(PGconn *db, char *err, size_t errlen)
{
	PGresult *r = run(db, PGRES_COMMAND_OK, "BEGIN", 0, NULL, err, errlen);
	PQclear(r);
	return r ? 0 : -EIO;
}

int lg_commit(PGconn *db, char *err, size_t errlen)
{
	PGresult *r = run(db, PGRES_COMMAND_OK, "COMMIT", 0, NULL, err, errlen);
	bool ok = r && !strcmp(PQcmdStatus(r), "COMMIT"); /* a failed transaction "commits" as ROLLBACK */
	PQclear(r);
	if (r && !ok)
		snprintf(err, errlen, "request ledger: the transaction was rolled back");
	return ok ? 0 : -EIO;
}

void lg_rollback(PGconn *db)
{
	PQclear(PQexec(db, "ROLLBACK"));
}

static void date_text(const struct dl_date *d, char out[11])
{
	dl_format(d, out);
}

int lg_insert(PGconn *db, const struct lg_new *n, int64_t *ret_id, char *err, size_t errlen)
{
	char received[11], due[11], confirm[11];
	struct dl_date d = dl_due(n->regime, &n->received, false), c = dl_confirm_by(&n->received);

	date_text(&n->received, received);
	date_text(&d, due);
	date_text(&c, confirm);
	const char *v[] = { regimes[n->regime],
		            kinds[n->kind],
		            n->subject_type,
		            n->subject_id,
		            received,
		            n->via,
		            n->verification,
		            n->verified_by,
		            n->opened_by,
		            due,
		            n->regime == DL_CCPA ? confirm : NULL };
	PGresult *r = run(db, PGRES_TUPLES_OK,
	                  "INSERT INTO custos.requests (regime, kind, subject_type, subject_id, received_on, "
	                  "received_via, verification, verified_by, opened_by, due_on, confirm_by) "
	                  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
	                  (int)ARRAY_SIZE(v), v, err, errlen);
	if (!r)
		return -EIO;
	*ret_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return 0;
}

static json_t *rows_json(PGresult *r)
{
	json_t *a = json_array();

	for (int i = 0; a && i < PQntuples(r); i++)
		json_array_append_new(a, json_loads(PQgetvalue(r, i, 0), 0, NULL));
	return a;
}

static void today_text(char out[11])
{
	struct dl_date t = dl_from_days((int64_t)(time(NULL) / 86400));
	date_text(&t, out);
}

int lg_get(PGconn *db, int64_t id, bool lock, json_t **ret, char *err, size_t errlen)
{
	char ids[24], today[11];

	snprintf(ids, sizeof(ids), "%" PRId64, id);
	today_text(today);
	const char *v[] = { ids, today };
	PGresult *r = run(db, PGRES_TUPLES_OK,
	                  lock ? "SELECT " ROW_JSON " FROM custos.requests r WHERE id = $1 FOR UPDATE"
	                       : "SELECT " ROW_JSON " FROM custos.requests r WHERE id = $1",
	                  2, v, err, errlen);
	if (!r)
		return -EIO;
	json_t *a = PQntuples(r) == 1 ? rows_json(r) : NULL;
	PQclear(r);
	*ret = json_incref(json_array_get(a, 0));
	json_decref(a);
	if (!*ret)
		snprintf(err, errlen, "no request %" PRId64, id);
	return *ret ? 0 : -ENOENT;
}

int lg_list(PGconn *db, bool overdue, const struct dl_date *today, json_t **ret, char *err, size_t errlen)
{
	char t[11], limit[16];

	date_text(today, t);
	snprintf(limit, sizeof(limit), "%d", LG_LIST_MAX);
	const char *v[] = { overdue ? "t" : "f", t, limit };
	PGresult *r = run(
	    db, PGRES_TUPLES_OK,
	    "SELECT json_build_object('id', id, 'regime', regime, 'kind', kind, 'status', status, "
	    "'subject_type', subject_type, 'subject_id', subject_id, 'received_on', received_on, "
	    "'due_on', due_on, 'overdue', status NOT IN ('completed', 'denied') AND due_on < $2::date) "
	    "FROM custos.requests WHERE NOT $1::bool OR "
	    "(status NOT IN ('completed', 'denied') AND due_on < $2::date) ORDER BY id DESC LIMIT $3::int",
	    3, v, err, errlen);
	if (!r)
		return -EIO;
	*ret = rows_json(r);
	PQclear(r);
	return *ret ? 0 : -ENOMEM;
}

/* An UPDATE of request id ($1) with one or two more parameters. */
static int update(PGconn *db, int64_t id, const char *sql, const char *a, const char *b, char *err,
                  size_t errlen)
{
	char ids[24];

	snprintf(ids, sizeof(ids), "%" PRId64, id);
	const char *v[] = { ids, a, b };
	return exec(db, sql, b ? 3 : 2, v, err, errlen);
}

int lg_extend(PGconn *db, int64_t id, const struct dl_date *due, const struct dl_date *on, const char *reason,
              const char *by, char *err, size_t errlen)
{
	static const char sql[] = "UPDATE custos.requests SET due_on = $2, extended_on = $3, "
	                          "extension_reason = $4, extended_by = $5 WHERE id = $1";
	char d[11], o[11], ids[24];

	date_text(due, d);
	date_text(on, o);
	snprintf(ids, sizeof(ids), "%" PRId64, id);
	const char *v[] = { ids, d, o, reason, by };
	return exec(db, sql, 5, v, err, errlen);
}

int lg_approve(PGconn *db, int64_t id, const char *by, char *err, size_t errlen)
{
	return update(db, id,
	              "UPDATE custos.requests SET status = 'approved', approved_by = $2, approved_at = now() "
	              "WHERE id = $1",
	              by, NULL, err, errlen);
}

int lg_deny(PGconn *db, int64_t id, const char *basis, const char *by, char *err, size_t errlen)
{
	return update(db, id,
	              "UPDATE custos.requests SET status = 'denied', denial_basis = $2, denied_by = $3, "
	              "response = 'denied' WHERE id = $1",
	              basis, by, err, errlen);
}

int lg_start(PGconn *db, int64_t id, const char *by, char *err, size_t errlen)
{
	return update(
	    db, id, "UPDATE custos.requests SET status = 'running', ran_by = $2, error = NULL WHERE id = $1",
	    by, NULL, err, errlen);
}

int lg_finish(PGconn *db, int64_t id, const struct lg_outcome *o, char *err, size_t errlen)
{
	char ids[24], seq[24], sha[65], ref[65];

	snprintf(ids, sizeof(ids), "%" PRId64, id);
	snprintf(seq, sizeof(seq), "%" PRIu64, o->log_seq);
	hex_encode(o->sha256, 32, sha);
	if (o->erased_ref)
		hex_encode(o->erased_ref, 32, ref);
	const char *ok[] = { ids, o->response, o->report_dir, sha, seq, o->erased_ref ? ref : NULL };
	const char *failed[] = { ids, o->error };
	if (!o->ok)
		return exec(db, "UPDATE custos.requests SET status = 'failed', error = $2 WHERE id = $1", 2,
		            failed, err, errlen);
	return exec(db,
	            "UPDATE custos.requests SET status = 'completed', completed_at = now(), response = $2, "
	            "report_dir = $3, report_sha256 = decode($4, 'hex'), log_seq = $5, error = NULL, "
	            "subject_ref = CASE WHEN $6::text IS NULL THEN subject_ref ELSE decode($6, 'hex') END, "
	            "subject_id = CASE WHEN $6::text IS NULL THEN subject_id END WHERE id = $1",
	            6, ok, err, errlen);
}

const char *lg_str(json_t *row, const char *key)
{
	return json_string_value(json_object_get(row, key));
}
