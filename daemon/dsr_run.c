/* dsr_run.c - see dsr_run.h. A run is recorded as it starts ("run"), the
 * document is written to a new directory, the logger records its digest
 * and signs it ("report" record), and the ledger is completed with the
 * hash and the record's position ("complete"). A run that fails leaves
 * the request "failed", with why, to be run again. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dsr_run.h"
#include "ledger.h"
#include "report.h"
#include "reportsig.h"

#define SIGN_TIMEOUT_MS 30000

struct doc {
	const char *name;
	json_t *json; /* NULL: html */
	struct buf *html;
};

/* Creates report_dir/request-ID-TIMESTAMP; its path in path. */
static int make_dir(struct dsr *d, int64_t id, char *path, size_t n, char *err, size_t errlen)
{
	char ts[TS_LEN + 1], compact[32];
	size_t j = 0;

	ts_format(now_us(), ts);
	for (size_t i = 0; ts[i] && ts[i] != '.' && j < sizeof(compact) - 2; i++)
		if (ts[i] != '-' && ts[i] != ':')
			compact[j++] = ts[i];
	compact[j++] = 'Z';
	compact[j] = 0;
	snprintf(path, n, "%s/request-%" PRId64 "-%s", d->env->cfg->report_dir, id, compact);
	if (mkdir(path, 02750)) { /* a new directory: never add to another run's */
		snprintf(err, errlen, "cannot create the report directory under %s: %s",
		         d->env->cfg->report_dir, strerror(errno));
		return -errno;
	}
	return 0;
}

/* Asks the logger to record and sign digest; fills s. */
static int sign(struct dsr *d, int64_t id, const uint8_t digest[32], struct rs_sig *s, char *err,
                size_t errlen)
{
	static uint8_t buf[IPC_MAX_MSG + 1];
	struct ipc_msg m = { .type = IPC_LOG_SIGN, .nfields = 2 }, r;
	int fd = role_peer(d->env, "logger");

	m.f[0] = ipc_u64((uint64_t)id);
	m.f[1].kind = 'h';
	memcpy(m.f[1].h, digest, 32);
	int e = fd < 0 ? -ENOTCONN : role_call(d->env, fd, &m, buf, &r, SIGN_TIMEOUT_MS);
	if (!e && (r.type != IPC_LOG_SIGNED || r.f[1].s.len != 2 * LOG_SIG_LEN ||
	           r.f[2].s.len != 2 * LOG_ID_LEN || !hex_decode(r.f[1].s.p, r.f[1].s.len, s->sig) ||
	           !hex_decode(r.f[2].s.p, r.f[2].s.len, s->log_id)))
		e = r.type == IPC_ERROR && r.f[0].i < 0 ? (int)r.f[0].i : -EBADMSG;
	if (e) {
		snprintf(err, errlen, "the logger could not record and sign the report: %s", strerror(-e));
		return e;
	}
	s->seq = r.f[0].u;
	return 0;
}

/* Removes what a failed run wrote: an unsigned report holds personal
 * data and proves nothing. */
static void remove_dir(const char *path, const struct doc *docs, size_t n)
{
	static const char *const manifest[] = { RS_SUMS, RS_SIG };
	char f[4200];

	for (size_t i = 0; i < n + ARRAY_SIZE(manifest); i++) {
		snprintf(f, sizeof(f), "%s/%s", path, i < n ? docs[i].name : manifest[i - n]);
		(void)unlink(f);
	}
	(void)rmdir(path);
}

/* Writes the documents, the manifest and its signature into path. */
static int write_docs(struct dsr *d, int64_t id, const char *path, const struct doc *docs, size_t n,
                      uint8_t digest[32], struct rs_sig *sig, char *err, size_t errlen)
{
	const char *names[RS_MAX_FILES];
	int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), e = dirfd < 0 ? -errno : 0;

	for (size_t i = 0; !e && i < n; i++) {
		char *text = docs[i].json ? json_dumps(docs[i].json, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
		const char *p = docs[i].json ? text : docs[i].html->p;
		size_t len = docs[i].json ? (text ? strlen(text) : 0) : docs[i].html->len;
		e = !p ? -ENOMEM : rs_write_file(dirfd, docs[i].name, p, len);
		if (text)
			explicit_bzero(text, strlen(text));
		free(text);
		names[i] = docs[i].name;
	}
	if (!e)
		e = rs_write_sums(dirfd, names, n, digest);
	if (e)
		snprintf(err, errlen, "writing the report into %s: %s", path, strerror(-e));
	if (!e)
		e = sign(d, id, digest, sig, err, errlen);
	if (!e && (e = rs_write_sig(dirfd, sig)))
		snprintf(err, errlen, "writing %s: %s", RS_SIG, strerror(-e));
	if (!e && fsync(dirfd))
		e = -errno;
	if (dirfd >= 0)
		close(dirfd);
	if (e)
		remove_dir(path, docs, n);
	return e;
}

/* A document (doc: NULL when it could not be made, err says why) as
 * base.json and base.html, with portable.json when there is one, in a
 * new directory; signed; the outcome filled in. */
static int publish(struct dsr *d, int64_t id, const char *base, json_t *doc, json_t *portable,
                   struct lg_outcome *o, char *path, size_t pathlen, char *err, size_t errlen)
{
	char json_name[32], html_name[32];
	struct buf html = BUF_INIT;
	struct rs_sig sig;
	int e = doc ? 0 : -EIO;

	snprintf(json_name, sizeof(json_name), "%s.json", base);
	snprintf(html_name, sizeof(html_name), "%s.html", base);
	if (!e) {
		rpt_html(doc, &html);
		e = html.failed ? -ENOMEM : make_dir(d, id, path, pathlen, err, errlen);
	}
	const struct doc docs[] = { { json_name, doc, NULL },
		                    { html_name, NULL, &html },
		                    { "portable.json", portable, NULL } };
	if (!e)
		e = write_docs(d, id, path, docs, portable ? 3 : 2, o->sha256, &sig, err, errlen);
	if (!e) {
		o->log_seq = sig.seq;
		o->report_dir = path;
	}
	if (html.p)
		explicit_bzero(html.p, html.len);
	buf_free(&html);
	json_decref(doc);
	json_decref(portable);
	return e;
}

/* The run's end in the ledger, recorded; the row, or NULL. */
static json_t *conclude(struct dsr *d, const struct dsr_caller *who, int64_t id, struct lg_outcome *o,
                        char *err, size_t errlen)
{
	char more[256] = "", e2[512];
	json_t *row;

	if (lg_begin(d->ledger, e2, sizeof(e2)) || lg_finish(d->ledger, id, o, e2, sizeof(e2))) {
		lg_rollback(d->ledger);
		if (o->ok)
			snprintf(err, errlen, "%s", e2);
		return NULL;
	}
	if (o->ok) {
		char hex[65];
		hex_encode(o->sha256, 32, hex);
		snprintf(more, sizeof(more), "\"sha256\":\"%s\",\"report_seq\":%" PRIu64, hex, o->log_seq);
	}
	row = dsr_finish(d, who, id, o->ok ? "complete" : "fail", more, o->ok ? err : e2,
	                 o->ok ? errlen : sizeof(e2));
	if (!o->ok)
		json_decref(row), row = NULL; /* err already says why the run failed */
	return row;
}

/* Whether the request may run now, by its kind, state and approvals. */
static json_t *lock_runnable(struct dsr *d, int64_t id, char *err, size_t errlen)
{
	json_t *row = dsr_lock(d, id, "open approved running failed", "run", err, errlen);
	bool erasure = row && !strcmp(lg_str(row, "kind"), "erasure");

	if (erasure && d->pol->requests.erasure_approval != POL_APPROVAL_NONE &&
	    !lg_str(row, "approved_by")) {
		snprintf(err, errlen,
		         "request %" PRId64
		         " is an erasure not yet approved: custosctl request approve %" PRId64 "%s",
		         id, id,
		         d->pol->requests.erasure_approval == POL_APPROVAL_SECOND_PERSON
		             ? " (by someone other than its opener)"
		             : "");
		json_decref(row);
		lg_rollback(d->ledger);
		return NULL;
	}
	return row;
}

static json_t *dry_run(struct dsr *d, const struct dsr_caller *who, json_t *row, char *err, size_t errlen)
{
	json_t *plan = NULL;

	if (strcmp(lg_str(row, "kind"), "erasure"))
		snprintf(err, errlen, "--dry-run is for erasures; an access report changes nothing");
	else
		plan = dsr_erase_plan(d, row, err, errlen);
	lg_rollback(d->ledger);
	if (plan && dsr_record(d, who, row, "dry-run", "", NULL)) {
		snprintf(err, errlen, "the dry run cannot be recorded in the audit log");
		json_decref(plan);
		plan = NULL;
	}
	json_decref(row);
	return plan;
}

json_t *dsr_run(struct dsr *d, const struct dsr_caller *who, int64_t id, bool dry, char *err, size_t errlen)
{
	json_t *row = lock_runnable(d, id, err, errlen);
	char path[4096];
	uint8_t ref[32];
	struct lg_outcome o = { .ok = true };

	if (!row)
		return NULL;
	if (dry)
		return dry_run(d, who, row, err, errlen);
	json_decref(row);
	if (lg_start(d->ledger, id, who->user, err, errlen)) {
		lg_rollback(d->ledger);
		return NULL;
	}
	if (!(row = dsr_finish(d, who, id, "run", "", err, errlen)))
		return NULL;
	int e;
	if (strcmp(lg_str(row, "kind"), "erasure")) {
		json_t *portable = NULL, *doc = dsr_access_report(d, row, &portable, err, errlen);
		o.response = "access report delivered";
		e = publish(d, id, "report", doc, portable, &o, path, sizeof(path), err, errlen);
	} else {
		json_t *doc = dsr_erase(d, who, row, ref, err, errlen);
		o.response = "erased; deletion certificate issued";
		o.erased_ref = ref;
		e = publish(d, id, "certificate", doc, NULL, &o, path, sizeof(path), err, errlen);
	}
	json_decref(row);
	if (e) {
		o = (struct lg_outcome){ .ok = false, .error = err };
		conclude(d, who, id, &o, err, errlen);
		return NULL;
	}
	return conclude(d, who, id, &o, err, errlen);
}
