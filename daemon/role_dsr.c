/* role_dsr.c - the dsr role's process: its connections to the keystore
 * database (the ledger) and the customer database, made when the first
 * request arrives and again after they break, and its requests from the
 * control role. See dsr.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsr.h"
#include "dsr_index.h"
#include "keyclient.h"
#include "keystore.h"
#include "subjectrows.h"

#define KEY_TTL_S 10
#define INDEX_TICK_MS 2000
#define INDEX_PER_TICK 50000 /* log records read (only those naming subjects are parsed): under a second */
#define INDEX_BEHIND_MS 20

static int connect_one(PGconn **db, const char *conninfo, const char *what, char *err, size_t errlen)
{
	if (*db && PQstatus(*db) == CONNECTION_OK)
		return 0;
	PQfinish(*db);
	*db = srw_connect(conninfo, "custosd subject requests");
	if (PQstatus(*db) == CONNECTION_OK) { /* a request waits for locks and statements, not forever */
		PQclear(PQexec(*db, "SET lock_timeout = '10s'; SET statement_timeout = '300s'"));
		return 0;
	}
	snprintf(err, errlen, "cannot connect to the %s: %s", what, PQerrorMessage(*db));
	err[strcspn(err, "\n")] = 0;
	PQfinish(*db);
	*db = NULL;
	return -EIO;
}

/* Connections and policy, made on first use. */
static int ready(struct dsr *d, char *err, size_t errlen)
{
	const struct cfg *c = d->env->cfg;

	if (!c->database) {
		snprintf(err, errlen, "no customer database is configured (database in custosd.conf)");
		return -ENOENT;
	}
	if (d->reload) {
		pol_free(d->pol);
		d->pol = NULL;
		d->reload = false;
	}
	if (!d->pol &&
	    !(d->pol = pol_load_all((const char *const *)c->policies.v, c->policies.n, err, errlen)))
		return -EINVAL;
	char *ks = c->keystore ? strdup(c->keystore) : ks_default_conninfo(c->database);
	int r = ks ? connect_one(&d->ledger, ks, "keystore database", err, errlen) : -ENOMEM;
	free(ks);
	if (!r)
		r = connect_one(&d->data, c->database, "customer database", err, errlen);
	return r;
}

static int handle(struct role_env *env, int fd, struct ipc_msg *m)
{
	struct dsr *d = env->state;
	char err[1024] = "";

	if (m->type == IPC_CONFIG) { /* policies are read again before the next request: this may */
		d->reload = true;    /* arrive while one runs, inside a call to another role */
		return 0;
	}
	if (m->id && fd != role_peer(env, "control") && fd != env->parent) {
		/* the answer to a call that timed out (a shred that waited for a key
		 * rotation longer than the dsr waited for it) */
		role_log(5, env->name, "a late %s: ignored", ipc_type_name(m->type));
		return 0;
	}
	if (m->type != IPC_DSR_CALL || fd != role_peer(env, "control")) {
		role_log(3, env->name, "unexpected %s message: protocol error", ipc_type_name(m->type));
		return -EBADMSG;
	}
	struct dsr_caller who = { m->f[1].u, m->f[2].s.p };
	json_error_t je;
	json_t *args = json_loads(m->f[3].s.p, JSON_REJECT_DUPLICATES, &je), *res = NULL;
	if (!json_is_object(args))
		snprintf(err, sizeof(err), "the arguments are not a JSON object");
	else if (!ready(d, err, sizeof(err)))
		res = dsr_call(d, m->f[0].s.p, &who, args, err, sizeof(err));
	json_decref(args);
	if (!res)
		return ipc_send_error(fd, m->id, -EINVAL, err[0] ? err : "failed");
	char *s = json_dumps(res, JSON_COMPACT);
	json_decref(res);
	if (!s || strlen(s) > IPC_MAX_STR) {
		free(s);
		return ipc_send_error(fd, m->id, -E2BIG,
		                      "the result is too large to send; use --json filters");
	}
	struct ipc_msg r = { .type = IPC_DSR_RESULT, .id = m->id, .nfields = 1 };
	r.f[0] = ipc_str(s);
	int e = ipc_send(fd, &r);
	explicit_bzero(s, strlen(s)); /* a report's result names its subject */
	free(s);
	return e;
}

/* Keeps the subject index close to the log's head, so that a report has
 * little to catch up. Problems are said once, not every tick. */
static int on_tick(struct role_env *env)
{
	struct dsr *d = env->state;
	char err[1024];
	int r = ready(d, err, sizeof(err));

	if (!r) /* a bounded share each tick: the role answers its parent's pings in between */
		r = dsr_index_catch_up(d, INDEX_PER_TICK, err, sizeof(err));
	env->tick_ms = r > 0 ? INDEX_BEHIND_MS : INDEX_TICK_MS; /* behind: soon again */
	if (r > 0)
		r = 0;
	if (r && !d->index_failing)
		role_log(4, env->name, "subject index: %s", err);
	else if (!r && d->index_failing)
		role_log(6, env->name, "subject index: up to date again");
	d->index_failing = r != 0;
	return 0;
}

static int dsr_main(struct role_env *env)
{
	static struct dsr d;

	d = (struct dsr){ .env = env };
	env->state = &d;
	if (!(d.kp = kcl_new(env, KEY_TTL_S, KCL_SLOTS_LOGGER)))
		return 1;
	env->keys = d.kp;
	env->on_tick = on_tick;
	env->tick_ms = INDEX_TICK_MS;
	int err = role_ready(env);
	if (!err)
		err = role_serve(env, handle);
	PQfinish(d.ledger);
	PQfinish(d.data);
	pol_free(d.pol);
	keyprov_free(d.kp);
	return err ? 1 : 0;
}

/* the customer database for reports and erasure, the keystore for the ledger */
const struct role role_dsr = { "dsr", dsr_main, false, CFG_SECRET_DATABASE | CFG_SECRET_KEYSTORE };
