/* role_keeper.c - the keeper: the only role that reads the master key. It
 * opens the keystore (keystore.h), keeps unwrapped keys in its locked
 * cache, and answers key status and rotation requests. Without a
 * `database` (or `keystore`) setting it runs without a keystore and says
 * so to whoever asks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "keystore.h"
#include "masterkey.h"
#include "role.h"
#include "secmem.h"

#define MASTER_CRED "master-key"

static int open_keystore(struct role_env *env, struct keystore **ret)
{
	const struct cfg *c = env->cfg;
	char *conninfo = c->keystore ? strdup(c->keystore) : ks_default_conninfo(c->database);
	uint8_t *master = NULL;
	char err[1024];
	int r = conninfo ? masterkey_load(c->master_key, MASTER_CRED, &master, err, sizeof(err)) : -ENOMEM;

	if (!r) {
		struct ks_config kc = { .conninfo = conninfo,
			                .kek_path = c->kek_file,
			                .master_key = master,
			                .cache_keys = c->key_cache };
		r = ks_open(&kc, ret, err, sizeof(err));
	}
	if (r)
		role_log(2, env->name, "keystore: %s", conninfo ? err : "out of memory");
	secmem_free(master, MASTER_KEY_LEN);
	free(conninfo);
	return r;
}

static int reply_status(struct keystore *ks, int fd, uint32_t id)
{
	struct ipc_msg m = { .type = IPC_KEYS_STATUS, .id = id, .nfields = 7 };
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
	return ipc_send(fd, &m);
}

static int rotate(struct role_env *env, struct keystore *ks, int fd, uint32_t id)
{
	struct ipc_msg m = { .type = IPC_KEYS_ROTATED, .id = id, .nfields = 2 };
	struct ks_status st;
	uint64_t n;

	if (ks_rotate(ks, &n) || ks_status(ks, &st)) {
		role_log(3, env->name, "key rotation failed: %s", ks_error(ks));
		return ipc_send_error(fd, id, -EIO, ks_error(ks));
	}
	role_log(5, env->name, "rotated to key epoch %u: %llu keys rewrapped", st.epoch,
	         (unsigned long long)n);
	m.f[0] = ipc_u64(st.epoch);
	m.f[1] = ipc_u64(n);
	return ipc_send(fd, &m);
}

/* A subject's key for the logger (the ids in access records). */
static int subject_key(struct keystore *ks, int fd, const struct ipc_msg *m)
{
	struct keyprov *kp = ks_keyprov(ks);
	struct ipc_msg r = { .type = IPC_KEYS_SUBJECT_KEY, .id = m->id, .nfields = 3 };
	struct fc_key *k = secmem_alloc(sizeof(*k));
	int err = k ? kp->subject_ref(kp, m->f[0].s.p, m->f[1].s.p, r.f[0].h) : -ENOMEM;

	if (!err)
		err = kp->subject_key(kp, m->f[0].s.p, m->f[1].s.p, k);
	if (!err) {
		r.f[0].kind = r.f[1].kind = r.f[2].kind = 'h';
		memcpy(r.f[1].h, k->key, FC_KEY_LEN);
		memcpy(r.f[2].h, k->id, FC_KEYID_LEN);
		err = ipc_send(fd, &r);
	} else {
		err =
		    ipc_send_error(fd, m->id, err, err == -ENOKEY ? "the subject was erased" : ks_error(ks));
	}
	OPENSSL_cleanse(&r, sizeof(r));
	secmem_free(k, sizeof(*k));
	return err;
}

static int handle(struct role_env *env, int fd, struct ipc_msg *m)
{
	struct keystore *ks = env->state;

	switch (m->type) {
	case IPC_KEYS_STATUS_REQ:
	case IPC_KEYS_ROTATE:
		if (!ks)
			return ipc_send_error(
			    fd, m->id, -ENOENT,
			    "no keystore configured (set database or keystore in custosd.conf)");
		return m->type == IPC_KEYS_ROTATE ? rotate(env, ks, fd, m->id) : reply_status(ks, fd, m->id);
	case IPC_KEYS_SUBJECT:
		if (!ks)
			return ipc_send_error(fd, m->id, -ENOENT,
			                      "no keystore configured"); /* not "erased" */
		return subject_key(ks, fd, m);
	case IPC_CONFIG: return 0; /* the keystore's settings apply at the next start */
	default:
		role_log(3, env->name, "unexpected %s message: protocol error", ipc_type_name(m->type));
		return -EBADMSG;
	}
}

static int on_notify(struct role_env *env, struct pollfd *p)
{
	struct keystore *ks = env->state;
	int n = ks_notified(ks);

	(void)p;
	if (n < 0)
		role_log(3, env->name, "keystore: %s", ks_error(ks));
	return n < 0 ? n : 0; /* the keystore connection is gone: the parent restarts the keeper */
}

static int keeper_main(struct role_env *env)
{
	struct keystore *ks = NULL;

	if ((env->cfg->database || env->cfg->keystore) && open_keystore(env, &ks))
		return 1;
	env->state = ks;
	struct pollfd pf = { ks ? ks_socket(ks) : -1, POLLIN, 0 };
	if (ks && ks_listen(ks)) {
		role_log(2, env->name, "keystore: %s", ks_error(ks));
		ks_close(ks);
		return 1;
	}
	if (ks) { /* a shred or rotation by another process reaches the cache */
		env->extra = &pf;
		env->nextra = 1;
		env->on_extra = on_notify;
	}
	int err = role_ready(env);
	if (!err)
		err = role_serve(env, handle);
	ks_close(ks);
	return err ? 1 : 0;
}

const struct role role_keeper = { "keeper", keeper_main, false };
