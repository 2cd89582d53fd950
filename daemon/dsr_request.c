/* dsr_request.c - the request commands: open, list, show, extend,
 * approve, deny, and run (dsr_run.c). Each checks its arguments, changes the
 * ledger and records the step in the audit log in one transaction: a step
 * that cannot be recorded does not happen. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dsr.h"
#include "dsr_run.h"
#include "ledger.h"
#include "logmsg.h"
#include "subjectmap.h"

#define MAX_SUBJECT_ID 256

static struct dl_date today(void)
{
	return dl_from_days((int64_t)(time(NULL) / 86400));
}

/* Free text from the command line: a reason, a basis, a name. */
static int check_text(const char *what, const char *s, char *err, size_t errlen)
{
	size_t n = s ? strlen(s) : 0;

	if (!s)
		return 0;
	if (n == 0 || n > LG_MAX_TEXT) {
		snprintf(err, errlen, "%s must be 1 to %d characters", what, LG_MAX_TEXT);
		return -EINVAL;
	}
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f) {
			snprintf(err, errlen, "%s must not hold control characters", what);
			return -EINVAL;
		}
	return 0;
}

static const struct pol_subject *subject_type(const struct policy *p, const char *type)
{
	for (size_t i = 0; i < p->nsubjects; i++)
		if (!strcmp(p->subjects[i].type, type))
			return &p->subjects[i];
	return NULL;
}

/* "TYPE:ID" into its parts (in buf). Names no identifier in errors. */
static int split_subject(const struct policy *p, const char *s, char *buf, size_t n, const char **type,
                         const char **id, char *err, size_t errlen)
{
	const char *colon = strchr(s, ':');

	if (!colon || colon == s || !colon[1] || strlen(colon + 1) > MAX_SUBJECT_ID || strlen(s) >= n) {
		snprintf(err, errlen, "--subject must be TYPE:ID (an ID of 1 to %d characters)",
		         MAX_SUBJECT_ID);
		return -EINVAL;
	}
	memcpy(buf, s, strlen(s) + 1);
	buf[colon - s] = 0;
	*type = buf;
	*id = buf + (colon - s) + 1;
	if (check_text("the subject's ID", *id, err, errlen))
		return -EINVAL;
	if (!subject_type(p, *type)) {
		snprintf(err, errlen, "no subject type \"%.32s\" in the policy", *type);
		return -EINVAL;
	}
	return 0;
}

/* The subject's id as the proxy names it (sm_stored_id): where the
 * request's report and erasure look. */
static int stored_id(struct dsr *d, const char *type, const char **id, char room[IDT_ROOM], char *err,
                     size_t errlen)
{
	struct catalog *cat = NULL;
	struct sm_map *m = NULL;
	int r = cat_load(d->data, &cat, err, errlen);

	if (!r && (r = sm_build(d->pol, cat, type, &m)))
		snprintf(err, errlen, "mapping the subject type %.32s: %s", type, strerror(-r));
	if (!r)
		r = sm_stored_id(m, cat, id, room, err, errlen);
	sm_free(m);
	cat_free(cat);
	return r;
}

int dsr_record(struct dsr *d, const struct dsr_caller *who, json_t *row, const char *step, const char *more,
               uint64_t *ret_seq)
{
	char detail[512];
	const char *type = lg_str(row, "subject_type"), *id = lg_str(row, "subject_id");
	struct alog_actor actor = { .user = who->user, .app = "custosctl" };
	struct alog_subject subj = { type, id };
	struct alog_rec rec = { .type = "request",
		                .actor = &actor,
		                .rows = -1,
		                .detail = detail,
		                .subjects = &subj,
		                .nsubjects = id != NULL };

	snprintf(detail, sizeof(detail),
	         "{\"request\":%" JSON_INTEGER_FORMAT
	         ",\"step\":\"%s\",\"regime\":\"%s\",\"kind\":\"%s\"%s%s}",
	         json_integer_value(json_object_get(row, "id")), step, lg_str(row, "regime"),
	         lg_str(row, "kind"), more && *more ? "," : "", more ? more : "");
	return logmsg_record(d->env, &rec, "", ret_seq);
}

json_t *dsr_finish(struct dsr *d, const struct dsr_caller *who, int64_t id, const char *step,
                   const char *more, char *err, size_t errlen)
{
	json_t *row = NULL;
	int r = lg_get(d->ledger, id, false, &row, err, errlen);

	/* "open+verify": two steps, both recorded before the change commits */
	const char *plus = strchr(step, '+');
	char first[32];
	snprintf(first, sizeof(first), "%.*s", plus ? (int)(plus - step) : (int)strlen(step), step);
	if (!r && (dsr_record(d, who, row, first, more, NULL) ||
	           (plus && dsr_record(d, who, row, plus + 1, "", NULL)))) {
		snprintf(err, errlen, "the step cannot be recorded in the audit log, so it was not taken");
		r = -EIO;
	}
	if (!r)
		r = lg_commit(d->ledger, err, errlen);
	else
		lg_rollback(d->ledger);
	if (r) {
		json_decref(row);
		return NULL;
	}
	return row;
}

static json_t *c_open(struct dsr *d, const struct dsr_caller *who, json_t *args, char *err, size_t errlen)
{
	const char *regime, *kind, *subject, *received = NULL, *via = "custosctl", *by = NULL, *method = NULL;
	char buf[MAX_SUBJECT_ID + 64], room[IDT_ROOM];
	struct lg_new n = { .opened_by = who->user, .received = today() };
	json_error_t je;
	int64_t id;

	if (json_unpack_ex(args, &je, JSON_STRICT, "{s:s, s:s, s:s, s?s, s?s, s?s, s?s}", "regime", &regime,
	                   "kind", &kind, "subject", &subject, "received", &received, "via", &via,
	                   "verified_by", &by, "verification", &method)) {
		snprintf(err, errlen, "request-open: %s", je.text);
		return NULL;
	}
	int rg = dl_regime_from_name(regime);
	if (rg < 0 || (strcmp(kind, "access") && strcmp(kind, "erasure"))) {
		snprintf(err, errlen, "--regime is gdpr or ccpa; --kind is access or erasure");
		return NULL;
	}
	n.regime = (enum dl_regime)rg;
	n.kind = strcmp(kind, "access") ? LG_ERASURE : LG_ACCESS;
	if (received && dl_parse(received, &n.received)) {
		snprintf(err, errlen, "--received must be a date, YYYY-MM-DD");
		return NULL;
	}
	struct dl_date t = today();
	if (dl_days(&n.received) > dl_days(&t)) {
		snprintf(err, errlen, "--received is in the future");
		return NULL;
	}
	if ((!by) != (!method)) {
		snprintf(err, errlen, "--verified-by and --verification go together");
		return NULL;
	}
	if (split_subject(d->pol, subject, buf, sizeof(buf), &n.subject_type, &n.subject_id, err, errlen) ||
	    stored_id(d, n.subject_type, &n.subject_id, room, err, errlen) ||
	    check_text("--via", via, err, errlen) || check_text("--verified-by", by, err, errlen) ||
	    check_text("--verification", method, err, errlen))
		return NULL;
	n.via = via;
	n.verified_by = by;
	n.verification = method;
	if (lg_begin(d->ledger, err, errlen))
		return NULL;
	if (lg_insert(d->ledger, &n, &id, err, errlen)) {
		lg_rollback(d->ledger);
		return NULL;
	}
	return dsr_finish(d, who, id, by ? "open+verify" : "open", "", err, errlen);
}

static bool get_id(json_t *args, const char *cmd, const char *fmt_extra, int64_t *id, const char **text,
                   char *err, size_t errlen)
{
	json_int_t v = 0;
	json_error_t je;
	int r = fmt_extra ? json_unpack_ex(args, &je, JSON_STRICT, "{s:I, s:s}", "id", &v, fmt_extra, text)
	                  : json_unpack_ex(args, &je, JSON_STRICT, "{s:I}", "id", &v);

	if (r) {
		snprintf(err, errlen, "%s: %s", cmd, je.text);
		return false;
	}
	if (v <= 0) {
		snprintf(err, errlen, "%s: a request ID is a positive number", cmd);
		return false;
	}
	*id = (int64_t)v;
	return true;
}

static json_t *c_list(struct dsr *d, const struct dsr_caller *who, json_t *args, char *err, size_t errlen)
{
	int overdue = 0;
	json_error_t je;
	json_t *rows;
	struct dl_date t = today();

	(void)who;
	if (json_unpack_ex(args, &je, JSON_STRICT, "{s?b}", "overdue", &overdue)) {
		snprintf(err, errlen, "request-list: %s", je.text);
		return NULL;
	}
	return lg_list(d->ledger, overdue, &t, &rows, err, errlen) ? NULL : rows;
}

static json_t *c_show(struct dsr *d, const struct dsr_caller *who, json_t *args, char *err, size_t errlen)
{
	int64_t id;
	json_t *row;

	(void)who;
	if (!get_id(args, "request-show", NULL, &id, NULL, err, errlen))
		return NULL;
	return lg_get(d->ledger, id, false, &row, err, errlen) ? NULL : row;
}

json_t *dsr_lock(struct dsr *d, int64_t id, const char *states, const char *doing, char *err, size_t errlen)
{
	json_t *row = NULL;

	if (lg_begin(d->ledger, err, errlen))
		return NULL;
	if (lg_get(d->ledger, id, true, &row, err, errlen)) {
		lg_rollback(d->ledger);
		return NULL;
	}
	const char *st = lg_str(row, "status");
	size_t n = strlen(st);
	for (const char *p = strstr(states, st); p; p = strstr(p + 1, st))
		if ((p == states || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
			return row;
	snprintf(err, errlen, "request %" PRId64 " is %s: it cannot be %s", id, st, doing);
	json_decref(row);
	lg_rollback(d->ledger);
	return NULL;
}

static json_t *c_extend(struct dsr *d, const struct dsr_caller *who, json_t *args, char *err, size_t errlen)
{
	const char *reason;
	int64_t id;
	struct dl_date received, on = today();
	json_t *row;

	if (!get_id(args, "request-extend", "reason", &id, &reason, err, errlen) ||
	    check_text("--reason", reason, err, errlen) ||
	    !(row = dsr_lock(d, id, "open approved failed", "extended", err, errlen)))
		return NULL;
	enum dl_regime rg = (enum dl_regime)dl_regime_from_name(lg_str(row, "regime"));
	int r = dl_parse(lg_str(row, "received_on"), &received);
	if (!r && lg_str(row, "extended_on")) {
		snprintf(err, errlen,
		         "request %" PRId64 " was extended already: the rules allow one extension", id);
		r = -EALREADY;
	} else if (!r && !dl_extension_allowed(rg, &received, &on)) {
		snprintf(err, errlen,
		         "too late to extend request %" PRId64
		         ": an extension must be noticed within the first "
		         "period (%s)",
		         id, rg == DL_GDPR ? "GDPR Art. 12(3): one month" : "CCPA §7021: 45 days");
		r = -ETIME;
	}
	struct dl_date due = dl_due(rg, &received, true);
	if (!r)
		r = lg_extend(d->ledger, id, &due, &on, reason, who->user, err, errlen);
	json_decref(row);
	if (r) {
		lg_rollback(d->ledger);
		return NULL;
	}
	return dsr_finish(d, who, id, "extend", "", err, errlen);
}

static json_t *c_approve(struct dsr *d, const struct dsr_caller *who, json_t *args, char *err, size_t errlen)
{
	int64_t id;
	json_t *row;
	int r = 0;

	if (!get_id(args, "request-approve", NULL, &id, NULL, err, errlen) ||
	    !(row = dsr_lock(d, id, "open", "approved", err, errlen)))
		return NULL;
	if (strcmp(lg_str(row, "kind"), "erasure")) {
		snprintf(err, errlen, "request %" PRId64 " is an access request: only erasures are approved",
		         id);
		r = -EINVAL;
	} else if (d->pol->requests.erasure_approval == POL_APPROVAL_SECOND_PERSON &&
	           !strcmp(lg_str(row, "opened_by"), who->user)) {
		snprintf(err, errlen,
		         "request %" PRId64
		         " was opened by you: the policy (erasure_approval: second_person) "
		         "needs another member of the DPO group to approve it",
		         id);
		r = -EPERM;
	}
	if (!r)
		r = lg_approve(d->ledger, id, who->user, err, errlen);
	json_decref(row);
	if (r) {
		lg_rollback(d->ledger);
		return NULL;
	}
	return dsr_finish(d, who, id, "approve", "", err, errlen);
}

static json_t *c_deny(struct dsr *d, const struct dsr_caller *who, json_t *args, char *err, size_t errlen)
{
	const char *basis;
	int64_t id;
	json_t *row;

	if (!get_id(args, "request-deny", "basis", &id, &basis, err, errlen) ||
	    check_text("--basis", basis, err, errlen) ||
	    !(row = dsr_lock(d, id, "open approved failed", "denied", err, errlen)))
		return NULL;
	json_decref(row);
	if (lg_deny(d->ledger, id, basis, who->user, err, errlen)) {
		lg_rollback(d->ledger);
		return NULL;
	}
	return dsr_finish(d, who, id, "deny", "", err, errlen);
}

static json_t *c_run(struct dsr *d, const struct dsr_caller *who, json_t *args, char *err, size_t errlen)
{
	json_int_t v = 0;
	int dry = 0;
	json_error_t je;

	if (json_unpack_ex(args, &je, JSON_STRICT, "{s:I, s?b}", "id", &v, "dry_run", &dry)) {
		snprintf(err, errlen, "request-run: %s", je.text);
		return NULL;
	}
	if (v <= 0) {
		snprintf(err, errlen, "request-run: a request ID is a positive number");
		return NULL;
	}
	return dsr_run(d, who, (int64_t)v, dry, err, errlen);
}

static const struct {
	const char *name;
	json_t *(*fn)(struct dsr *d, const struct dsr_caller *who, json_t *args, char *err, size_t errlen);
} commands[] = {
	{ "request-open", c_open },     { "request-list", c_list },       { "request-show", c_show },
	{ "request-extend", c_extend }, { "request-approve", c_approve }, { "request-deny", c_deny },
	{ "request-run", c_run },
};

json_t *dsr_call(struct dsr *d, const char *cmd, const struct dsr_caller *who, json_t *args, char *err,
                 size_t errlen)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(commands[i].name, cmd))
			return commands[i].fn(d, who, args, err, errlen);
	snprintf(err, errlen, "the dsr role does not know %.64s", cmd);
	return NULL;
}
