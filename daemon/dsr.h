/* dsr.h - the dsr role: data subjects' requests (DESIGN.md, "Subject
 * requests"). The control role hands it each `custosctl request ...`
 * command with the caller's name; it keeps the request ledger (ledger.h)
 * in the keystore database, reads the customer database for reports and
 * erasures, and records every step in the audit log before it counts. */
#ifndef CUSTOS_DSR_H
#define CUSTOS_DSR_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "keyprov.h"
#include "logread.h"
#include "policy.h"
#include "role.h"

struct dsr {
	struct role_env *env;
	PGconn *ledger; /* the keystore database */
	PGconn *data;   /* the customer database */
	struct policy *pol;
	struct keyprov *kp;       /* subject keys and refs, from the keeper */
	bool index_failing;       /* the subject index could not be brought up to date */
	struct lrd_pos index_pos; /* where the index's last walk of the log stopped */
	bool reload;              /* a new configuration came: read the policy again */
};

struct dsr_caller {
	uint64_t uid;
	const char *user; /* login name, or "uid=N" */
};

/* Runs one command (a cp_commands name, "request-open", ...) with its
 * arguments. The result, or NULL with err (no personal data in it). */
json_t *dsr_call(struct dsr *d, const char *cmd, const struct dsr_caller *who, json_t *args, char *err,
                 size_t errlen);

/* Records one step of request id (step: "open", "approve", ...) in the
 * audit log, naming its subject; detail may add members (a JSON object's
 * inside, "" for none). 0, or the error that kept it from the log. */
int dsr_record(struct dsr *d, const struct dsr_caller *who, json_t *row, const char *step, const char *more,
               uint64_t *ret_seq) WUR;

/* Begins a transaction and locks request id for a change; NULL (rolled
 * back, err set) when it is not in one of the states allowed (a
 * space-separated list). doing: "approved", ... for the message. */
json_t *dsr_lock(struct dsr *d, int64_t id, const char *states, const char *doing, char *err, size_t errlen);
/* Records the step and commits, or rolls back. The request's row, read
 * again after the change, or NULL. "a+b" records two steps, a then b. */
json_t *dsr_finish(struct dsr *d, const struct dsr_caller *who, int64_t id, const char *step,
                   const char *more, char *err, size_t errlen);

#endif
