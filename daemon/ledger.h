/* ledger.h - the request ledger: one row per data subject's request in
 * custos.requests (schemas/custos-2-requests.sql), the CCPA §7101 record.
 * Rows are read as JSON objects (column: value; dates YYYY-MM-DD, the
 * report's hash in hex) so that custosctl shows what the table holds.
 * Every function takes an open connection to the keystore database and
 * returns 0 or -errno with err saying why (never personal data). */
#ifndef CUSTOS_LEDGER_H
#define CUSTOS_LEDGER_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "deadline.h"
#include "util.h"

#define LG_MAX_TEXT 1000 /* reasons, bases, names: longer is refused */

enum lg_kind { LG_ACCESS, LG_ERASURE };

struct lg_new {
	enum dl_regime regime;
	enum lg_kind kind;
	const char *subject_type, *subject_id;
	struct dl_date received;
	const char *via, *verification, *verified_by, *opened_by; /* verification may be NULL */
};

int lg_begin(PGconn *db, char *err, size_t errlen) WUR;
int lg_commit(PGconn *db, char *err, size_t errlen) WUR;
void lg_rollback(PGconn *db);

/* Inserts a request (inside the caller's transaction); its id in *ret_id. */
int lg_insert(PGconn *db, const struct lg_new *n, int64_t *ret_id, char *err, size_t errlen) WUR;
/* One request as JSON; lock: FOR UPDATE (inside a transaction). -ENOENT
 * when there is no such request. */
int lg_get(PGconn *db, int64_t id, bool lock, json_t **ret, char *err, size_t errlen) WUR;
/* Requests, newest first, at most LG_LIST_MAX, with the fields a list
 * shows; overdue: only those past their due date on `today` and not
 * answered. Each has "overdue": true/false. */
#define LG_LIST_MAX 150 /* what fits one control reply */
int lg_list(PGconn *db, bool overdue, const struct dl_date *today, json_t **ret, char *err,
            size_t errlen) WUR;

/* Changes of state (the caller has checked that they are allowed). */
int lg_extend(PGconn *db, int64_t id, const struct dl_date *due, const struct dl_date *on, const char *reason,
              const char *by, char *err, size_t errlen) WUR;
int lg_approve(PGconn *db, int64_t id, const char *by, char *err, size_t errlen) WUR;
int lg_deny(PGconn *db, int64_t id, const char *basis, const char *by, char *err, size_t errlen) WUR;
int lg_start(PGconn *db, int64_t id, const char *by, char *err, size_t errlen) WUR;
/* The outcome of a run: completed (with the report) or failed (why). */
struct lg_outcome {
	bool ok;
	const char *response;      /* the nature of the response */
	const char *report_dir;    /* where the report or certificate is */
	uint8_t sha256[32];        /* of its signed manifest */
	uint64_t log_seq;          /* the audit record of the outcome */
	const char *error;         /* !ok */
	const uint8_t *erased_ref; /* an erasure: the subject's ref replaces its id */
};
int lg_finish(PGconn *db, int64_t id, const struct lg_outcome *o, char *err, size_t errlen) WUR;

/* A request's fields, checked. */
const char *lg_str(json_t *row, const char *key);

#endif
