/* role_keeper.c - the keeper: the only role that reads the master key. It
 * opens the keystore (keystore.h), keeps unwrapped keys in its locked
 * cache, and answers key status and rotation requests. Without a
 * `database` (or `keystore`) setting it runs without a keystore and says
 * so to whoever asks.
 *
 * A rotation rewraps every live key, which takes a while with many: it
 * runs in a thread of its own, on a keystore connection of its own, as
 * `custosctl keys rotate` would in another process, while the keeper goes
 * on serving keys from its cache and the database (a new key waits for
 * the rotation's lock at most KEY_LOCK_WAIT_MS, then fails: the statement
 * that needed it is refused). The keystore's NOTIFY tells the keeper's own
 * connection of the new epoch. An erasure's keys to destroy wait for the
 * rotation in a thread of their own likewise. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "keystore.h"
#include "masterkey.h"
#include "role.h"
#include "secmem.h"

#define MASTER_CRED "master-key"
#define KEY_LOCK_WAIT_MS 1000
#define ROTATION_CACHE_KEYS 16 /* the rotating connection serves no keys */

/* Where the keystore is: what a connection to it needs, copied out of the
 * configuration (a reload may replace it while a rotation runs). */
struct ks_where {
	char *conninfo, *master_key, *kek_file;
	size_t cache_keys;
	unsigned lock_timeout_ms;
};

static void where_free(struct ks_where *w)
{
	if (w && w->conninfo)
		explicit_bzero(w->conninfo, strlen(w->conninfo)); /* it may hold a password */
	if (w) {
		free(w->conninfo);
		free(w->master_key);
		free(w->kek_file);
	}
}

static int where_of(const struct cfg *c, struct ks_where *w)
{
	*w = (struct ks_where){ .cache_keys = c->key_cache, .lock_timeout_ms = KEY_LOCK_WAIT_MS };
	w->conninfo = c->keystore ? strdup(c->keystore) : ks_default_conninfo(c->database);
	w->master_key = c->master_key ? strdup(c->master_key) : NULL;
	w->kek_file = strdup(c->kek_file);
	if (w->conninfo && w->kek_file && (w->master_key || !c->master_key))
		return 0;
	where_free(w);
	*w = (struct ks_where){ 0 };
	return -ENOMEM;
}

static int open_at(const char *name, const struct ks_where *w, struct keystore **ret)
{
	uint8_t *master = NULL;
	char err[1024];
	int r = masterkey_load(w->master_key, MASTER_CRED, &master, err, sizeof(err));

	if (!r) {
		struct ks_config kc = { .conninfo = w->conninfo,
			                .kek_path = w->kek_file,
			                .master_key = master,
			                .cache_keys = w->cache_keys,
			                .lock_timeout_ms = w->lock_timeout_ms };
		r = ks_open(&kc, ret, err, sizeof(err));
	}
	if (r)
		role_log(2, name, "keystore: %s", err);
	secmem_free(master, MASTER_KEY_LEN);
	return r;
}

static int open_keystore(struct role_env *env, struct keystore **ret)
{
	struct ks_where w;
	int r = where_of(env->cfg, &w);

	if (r)
		role_log(2, env->name, "keystore: out of memory");
	else
		r = open_at(env->name, &w, ret);
	where_free(&w);
	return r;
}

/* The keeper's keystore: once it has been opened, a lost connection
 * (PostgreSQL restarted) is retried in place every RETRY_S, and key
 * requests fail meanwhile (the records that need a key fail closed);
 * exiting would make the parent restart the keeper in a loop. */
#define RETRY_S 2

struct keeper {
	struct keystore *ks;
	bool configured;
	struct pollfd pf;
	int64_t next_try_us;
};

/* The last rotation, as key status tells it. One runs at a time, in its
 * thread, on a keystore connection of its own; whoever asked for it learns
 * its end from key status (control answers its client then), so no
 * channel waits on it. Its id tells a rotation of this keeper from one of
 * a keeper before a restart. */
static struct {
	pthread_mutex_t mu;
	uint64_t id, started; /* 0: none since the keeper started */
	bool running, failed;
	uint32_t epoch; /* reached */
	uint64_t rewrapped;
	char why[512];
} rot = { .mu = PTHREAD_MUTEX_INITIALIZER };

static bool rotation_running(void)
{
	pthread_mutex_lock(&rot.mu);
	bool running = rot.running;
	pthread_mutex_unlock(&rot.mu);
	return running;
}

#define ROTATION_BUSY "a key rotation is running: try again once it ends"

static int reply_status(struct keystore *ks, int fd, uint32_t id)
{
	struct ipc_msg m = { .type = IPC_KEYS_STATUS, .id = id, .nfields = 13 };
	struct ks_status st;

	if (ks_status(ks, &st))
		return ipc_send_error(fd, id, -EIO, ks_error(ks));
	m.f[0] = ipc_u64(st.epoch);
	m.f[1] = ipc_u64(st.subject_keys);
	m.f[2] = ipc_u64(st.free_keys);
	m.f[3] = ipc_u64(st.shredded_subjects);
	m.f[4] = ipc_u64(st.dead_keys);
	m.f[5] = ipc_u64(st.cache.count);
	m.f[6] = ipc_u64(st.cache.limit);
	pthread_mutex_lock(&rot.mu);
	m.f[KS_ROT_ID] = ipc_u64(rot.id);
	m.f[KS_ROT_RUNNING] = ipc_u64(rot.running);
	m.f[KS_ROT_FAILED] = ipc_u64(rot.failed);
	m.f[KS_ROT_EPOCH] = ipc_u64(rot.epoch);
	m.f[KS_ROT_REWRAPPED] = ipc_u64(rot.rewrapped);
	m.f[KS_ROT_WHY] = ipc_str(rot.why);
	int err = ipc_send(fd, &m); /* (it copies rot.why) */
	pthread_mutex_unlock(&rot.mu);
	return err;
}

struct rotation { /* what the thread needs: the configuration may be replaced meanwhile */
	const char *name;
	struct ks_where where;
};

static void *rotation_main(void *arg)
{
	struct rotation *rt = arg;
	struct keystore *ks = NULL;
	struct ks_status st = { 0 };
	uint64_t n = 0;
	char why[sizeof(rot.why)] = "";

	if (open_at(rt->name, &rt->where, &ks))
		snprintf(why, sizeof(why), "the keystore cannot be opened to rotate it");
	else if (ks_rotate(ks, &n) || ks_status(ks, &st))
		snprintf(why, sizeof(why), "%s", ks_error(ks));
	ks_close(ks);
	if (*why)
		role_log(3, rt->name, "key rotation failed: %s", why);
	else
		role_log(5, rt->name, "rotated to key epoch %u: %llu keys rewrapped", st.epoch,
		         (unsigned long long)n);
	pthread_mutex_lock(&rot.mu);
	rot.running = false;
	rot.failed = *why;
	rot.epoch = st.epoch;
	rot.rewrapped = n;
	memcpy(rot.why, why, sizeof(why));
	pthread_mutex_unlock(&rot.mu);
	where_free(&rt->where);
	free(rt);
	return NULL;
}

/* Starts a rotation and answers at once with its id. */
static int rotate(struct role_env *env, int fd, uint32_t id)
{
	struct rotation *rt = calloc(1, sizeof(*rt));
	int err = rt ? where_of(env->cfg, &rt->where) : -ENOMEM;
	pthread_attr_t attr;
	pthread_t t;

	pthread_mutex_lock(&rot.mu);
	if (!err && rot.running)
		err = -EBUSY;
	if (!err) {
		rt->name = env->name;
		rt->where.cache_keys = ROTATION_CACHE_KEYS;
		rt->where.lock_timeout_ms = 0; /* it waits for the keys being made, then they wait */
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		err = -pthread_create(&t, &attr, rotation_main, rt);
		pthread_attr_destroy(&attr);
	}
	if (!err) {
		rot.id = (uint64_t)getpid() << 32 | ++rot.started;
		rot.running = true;
		rot.failed = false;
		*rot.why = 0;
	}
	uint64_t started = rot.id;
	pthread_mutex_unlock(&rot.mu);
	if (err) {
		if (rt)
			where_free(&rt->where); /* where_of left it empty when it failed */
		free(rt);
		return ipc_send_error(fd, id, err,
		                      err == -EBUSY ? "a key rotation is already running"
		                                    : "the rotation cannot be started");
	}
	struct ipc_msg m = { .type = IPC_KEYS_ROTATED, .id = id, .nfields = 1 };
	m.f[0] = ipc_u64(started);
	return ipc_send(fd, &m);
}

/* Sends a data key: IPC_KEYS_SUBJECT_KEY, or the error that kept it. */
static int send_key(struct keystore *ks, int fd, uint32_t id, int err, const struct kc_key *k)
{
	struct ipc_msg r = { .type = IPC_KEYS_SUBJECT_KEY, .id = id, .nfields = 4 };

	if (err == -ENOKEY)
		return ipc_send_error(fd, id, err, "the key is destroyed (its subject was erased)");
	if (err && rotation_running()) { /* a new key may have waited for the rotation's lock, and gave up */
		char why[512];
		snprintf(why, sizeof(why), "%s (%s)", ROTATION_BUSY, ks_error(ks));
		return ipc_send_error(fd, id, -EBUSY, why);
	}
	if (err)
		return ipc_send_error(fd, id, err, ks_error(ks));
	r.f[0].kind = r.f[1].kind = r.f[2].kind = 'h';
	memcpy(r.f[0].h, k->ref, SUBJECT_REF_LEN);
	memcpy(r.f[1].h, k->k.key, FC_KEY_LEN);
	memcpy(r.f[2].h, k->k.id, FC_KEYID_LEN);
	r.f[3] = ipc_u64(k->has_ref);
	err = ipc_send(fd, &r);
	OPENSSL_cleanse(&r, sizeof(r));
	return err;
}

/* A data key for the logger (the ids in access records) or the proxy
 * (values on their way in and out): a subject's, one by id, a fresh one. */
static int data_key(struct keystore *ks, int fd, const struct ipc_msg *m)
{
	struct kc_key *k = secmem_alloc(sizeof(*k));
	int err = -ENOMEM;

	if (k && m->type == IPC_KEYS_SUBJECT)
		err = ks_subject_key(ks, m->f[0].s.p, m->f[1].s.p, k);
	else if (k && m->type == IPC_KEYS_BY_ID)
		err = ks_key_by_id(ks, m->f[0].h, k);
	else if (k)
		err = ks_fresh_key(ks, k);
	err = send_key(ks, fd, m->id, err, k);
	secmem_free(k, sizeof(*k));
	return err;
}

/* The key of one column's blind index, for the proxy's lookups and writes. */
static int bidx_key(struct keystore *ks, int fd, const struct ipc_msg *m)
{
	struct ipc_msg r = { .type = IPC_KEYS_BIDX_KEY, .id = m->id, .nfields = 1 };

	r.f[0].kind = 'h';
	ks_bidx_key(ks, m->f[0].s.p, m->f[1].s.p, r.f[0].h);
	int err = ipc_send(fd, &r);
	OPENSSL_cleanse(&r, sizeof(r));
	return err;
}

static int shred_reply(int fd, uint32_t id, int err, const char *why, uint64_t destroyed)
{
	struct ipc_msg r = { .type = IPC_KEYS_SHREDDED, .id = id, .nfields = 1 };

	if (err)
		return ipc_send_error(fd, id, err, why);
	r.f[0] = ipc_u64(destroyed);
	return ipc_send(fd, &r);
}

/* A shred while a rotation runs waits for the rotation's lock: it runs in
 * a thread of its own, on a keystore connection of its own (as `custosctl
 * keys shred` would in another process), so that the keeper goes on
 * serving keys, and answers on a duplicate of the asker's channel when it
 * is done (an asker that stopped waiting ignores it). The main thread
 * drops its cached keys before its next request (forget_shredded). One
 * at a time. */
struct shred_job {
	const char *name;
	struct ks_where where;
	int fd;
	uint32_t id;
	char *type, *subject;
	uint8_t (*ids)[FC_KEYID_LEN];
	size_t n;
};

static bool shredding;    /* under rot.mu */
static uint64_t shredded; /* under rot.mu: shreds done by threads, for the main thread's cache */

static void shred_job_free(struct shred_job *j)
{
	if (j->fd >= 0)
		close(j->fd);
	where_free(&j->where);
	free(j->type);
	free(j->subject);
	free(j->ids);
	free(j);
}

static void *shred_main(void *arg)
{
	struct shred_job *j = arg;
	struct keystore *ks = NULL;
	uint64_t destroyed = 0;
	int err = open_at(j->name, &j->where, &ks) ? -EIO : 0;

	if (!err)
		err = ks_shred(ks, j->type, j->subject, (const uint8_t(*)[FC_KEYID_LEN])j->ids, j->n,
		               &destroyed);
	/* before the answer: the asker's next request (a check that the keys
	 * are gone, another part of its ids) must find the keeper's cache
	 * without them, and the keeper free for another shred */
	pthread_mutex_lock(&rot.mu);
	shredded += !err;
	shredding = false;
	pthread_mutex_unlock(&rot.mu);
	(void)shred_reply(j->fd, j->id, err, ks ? ks_error(ks) : "the keystore cannot be opened", destroyed);
	ks_close(ks);
	shred_job_free(j);
	return NULL;
}

static int shred_in_thread(struct role_env *env, int fd, struct ipc_msg *m, uint8_t (*ids)[FC_KEYID_LEN],
                           size_t n)
{
	struct shred_job *j = calloc(1, sizeof(*j));
	int err = j ? where_of(env->cfg, &j->where) : -ENOMEM;
	pthread_attr_t attr;
	pthread_t t;

	if (j) {
		j->fd = -1;
		j->ids = ids;
		j->n = n;
	}
	if (!err && (!(j->type = strdup(m->f[0].s.p)) || !(j->subject = strdup(m->f[1].s.p))))
		err = -ENOMEM;
	if (!err && (j->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
		err = -errno;
	pthread_mutex_lock(&rot.mu);
	if (!err && shredding)
		err = -EBUSY;
	if (!err) {
		j->name = env->name;
		j->where.lock_timeout_ms = 0; /* it waits for the rotation (an answer later than its asker
		                               * waits for is dropped there: running it again is harmless) */
		j->where.cache_keys = ROTATION_CACHE_KEYS; /* it serves no keys */
		j->id = m->id;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		err = -pthread_create(&t, &attr, shred_main, j);
		pthread_attr_destroy(&attr);
		shredding = !err;
	}
	pthread_mutex_unlock(&rot.mu);
	if (!err)
		return 0;
	if (j)
		shred_job_free(j);
	else
		free(ids);
	return shred_reply(fd, m->id, err, err == -EBUSY ? ROTATION_BUSY : "the erasure cannot be started",
	                   0);
}

/* Destroys a subject's keys: its own, and those of the ids given. */
static int shred(struct role_env *env, struct keystore *ks, int fd, struct ipc_msg *m)
{
	size_t n = m->f[2].s.len / (2 * FC_KEYID_LEN);
	uint8_t(*ids)[FC_KEYID_LEN] = calloc(n ? n : 1, FC_KEYID_LEN);
	uint64_t destroyed = 0;
	int err = ids ? 0 : -ENOMEM;

	if (!err && m->f[2].s.len % (2 * FC_KEYID_LEN))
		err = -EINVAL;
	for (size_t i = 0; !err && i < n; i++)
		if (!hex_decode(m->f[2].s.p + i * 2 * FC_KEYID_LEN, 2 * FC_KEYID_LEN, ids[i]))
			err = -EINVAL;
	if (!err && rotation_running())
		return shred_in_thread(env, fd, m, ids, n);
	if (!err)
		err = ks_shred(ks, m->f[0].s.p, m->f[1].s.p, (const uint8_t(*)[FC_KEYID_LEN])ids, n,
		               &destroyed);
	free(ids);
	return shred_reply(fd, m->id, err, err == -EINVAL ? "malformed key ids" : ks_error(ks), destroyed);
}

/* Who may ask what: key management is the control role's; data keys go
 * to the roles that encrypt (the logger: subject ids in records; the
 * proxy: values in and out) and to the dsr, which decrypts a subject's
 * values for their report and erases subjects. */
static bool allowed(struct role_env *env, int fd, enum ipc_type t)
{
	static const struct {
		enum ipc_type type;
		const char *peers[3];
	} rules[] = {
		{ IPC_KEYS_STATUS_REQ, { "control" } },
		{ IPC_KEYS_ROTATE, { "control" } },
		{ IPC_KEYS_SUBJECT, { "logger", "proxy", "dsr" } },
		{ IPC_KEYS_BY_ID, { "proxy", "dsr" } },
		{ IPC_KEYS_FRESH, { "proxy", "dsr" } },
		{ IPC_KEYS_SHRED, { "dsr" } },
		{ IPC_KEYS_REF, { "dsr" } },
		{ IPC_KEYS_BIDX, { "proxy" } },
	};

	for (size_t i = 0; i < ARRAY_SIZE(rules); i++)
		if (rules[i].type == t)
			for (size_t j = 0; j < ARRAY_SIZE(rules[i].peers); j++)
				if (rules[i].peers[j] && role_peer(env, rules[i].peers[j]) == fd)
					return true;
	return t == IPC_CONFIG && fd == env->parent;
}

/* Drops the keys from the cache when a shred thread destroyed some since
 * the last request (its NOTIFY may come later than the next request). */
static void forget_shredded(struct keystore *ks)
{
	static uint64_t seen;

	pthread_mutex_lock(&rot.mu);
	uint64_t now = shredded;
	pthread_mutex_unlock(&rot.mu);
	if (now != seen && ks)
		ks_forget_keys(ks);
	seen = now;
}

static int handle(struct role_env *env, int fd, struct ipc_msg *m)
{
	if (!allowed(env, fd, m->type)) {
		role_log(3, env->name, "%s from a role that may not ask for it: refused",
		         ipc_type_name(m->type));
		return ipc_send_error(fd, m->id, -EPERM, "not for this role");
	}
	const struct keeper *kp = env->state;
	struct keystore *ks = kp->ks;

	forget_shredded(ks);

	bool wants_keys = m->type == IPC_KEYS_SUBJECT || m->type == IPC_KEYS_BY_ID ||
	                  m->type == IPC_KEYS_SHRED || m->type == IPC_KEYS_FRESH || m->type == IPC_KEYS_BIDX;

	if (kp->configured && !ks &&
	    (m->type == IPC_KEYS_STATUS_REQ || m->type == IPC_KEYS_ROTATE || wants_keys))
		return ipc_send_error(fd, m->id, -EIO,
		                      "the keystore is unreachable; custosd is reconnecting");

	switch (m->type) {
	case IPC_KEYS_STATUS_REQ:
	case IPC_KEYS_ROTATE:
		if (!ks)
			return ipc_send_error(
			    fd, m->id, -ENOENT,
			    "no keystore configured (set database or keystore in custosd.conf)");
		return m->type == IPC_KEYS_ROTATE ? rotate(env, fd, m->id) : reply_status(ks, fd, m->id);
	case IPC_KEYS_BIDX:
		if (!ks)
			return ipc_send_error(fd, m->id, -ENOENT, "no keystore configured");
		return bidx_key(ks, fd, m);
	case IPC_KEYS_SUBJECT:
	case IPC_KEYS_BY_ID:
	case IPC_KEYS_FRESH:
		if (!ks)
			return ipc_send_error(fd, m->id, -ENOENT,
			                      "no keystore configured"); /* not "erased" */
		return data_key(ks, fd, m);
	case IPC_KEYS_SHRED:
		if (!ks)
			return ipc_send_error(fd, m->id, -ENOENT, "no keystore configured");
		return shred(env, ks, fd, m);
	case IPC_KEYS_REF: {
		struct ipc_msg r = { .type = IPC_KEYS_REF_IS, .id = m->id, .nfields = 1 };
		r.f[0].kind = 'h';
		if (!ks || ks_subject_ref(ks, m->f[0].s.p, m->f[1].s.p, r.f[0].h))
			return ipc_send_error(fd, m->id, -EIO, "no keystore, or the ref cannot be computed");
		return ipc_send(fd, &r);
	}
	case IPC_CONFIG: return 0; /* the keystore's settings apply at the next start */
	default:
		role_log(3, env->name, "unexpected %s message: protocol error", ipc_type_name(m->type));
		return -EBADMSG;
	}
}

static int on_notify(struct role_env *env, struct pollfd *p);

static int connect_keystore(struct role_env *env, struct keeper *kp)
{
	int err = open_keystore(env, &kp->ks);

	if (!err && ks_listen(kp->ks)) {
		role_log(2, env->name, "keystore: %s", ks_error(kp->ks));
		ks_close(kp->ks);
		kp->ks = NULL;
		err = -EIO;
	}
	if (err)
		return err;
	kp->pf = (struct pollfd){ ks_socket(kp->ks), POLLIN, 0 };
	env->extra = &kp->pf; /* a shred or rotation by another process reaches the cache */
	env->nextra = 1;
	env->on_extra = on_notify;
	return 0;
}

static int on_notify(struct role_env *env, struct pollfd *p)
{
	struct keeper *kp = env->state;
	int n = ks_notified(kp->ks);

	(void)p;
	if (n >= 0)
		return 0;
	role_log(3, env->name, "keystore connection lost (%s); reconnecting every %d s", ks_error(kp->ks),
	         RETRY_S);
	ks_close(kp->ks);
	kp->ks = NULL;
	env->nextra = 0;
	kp->next_try_us = mono_us() + RETRY_S * 1000000;
	return 0;
}

static int on_tick(struct role_env *env)
{
	struct keeper *kp = env->state;

	if (kp->configured && !kp->ks && mono_us() >= kp->next_try_us) {
		if (connect_keystore(env, kp) == 0)
			role_log(5, env->name, "keystore reconnected");
		else
			kp->next_try_us = mono_us() + RETRY_S * 1000000;
	}
	return 0;
}

static int keeper_main(struct role_env *env)
{
	static struct keeper kp;

	kp = (struct keeper){ .configured = env->cfg->database || env->cfg->keystore };
	env->state = &kp;
	if (kp.configured && connect_keystore(env, &kp))
		return 1; /* at start, a keystore that cannot be opened is a configuration error */
	env->on_tick = on_tick;
	int err = role_ready(env);
	if (!err)
		err = role_serve(env, handle);
	ks_close(kp.ks);
	return err ? 1 : 0;
}

/* the keystore (by default on the customer database's server: see ks_default_conninfo) */
const struct role role_keeper = { "keeper", keeper_main, false, CFG_SECRET_DATABASE | CFG_SECRET_KEYSTORE };
