/* keyclient.c - see keyclient.h. The cache is direct-mapped: a slot is
 * chosen by SHA-256("type\0id"), which is not secret (the ref, an HMAC
 * under the index key, is the keeper's to compute). */
#include "keyclient.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "secmem.h"

#define CALL_TIMEOUT_MS 10000

struct slot {
	uint8_t lookup[SHA256_DIGEST_LENGTH];
	uint8_t ref[SUBJECT_REF_LEN];
	struct fc_key k;
	int64_t expires_us; /* 0: empty */
};

struct keyclient {
	struct keyprov kp; /* first: the interface */
	struct role_env *env;
	int64_t ttl_us;
	struct slot *slots; /* KCL_SLOTS, in locked memory */
	uint8_t buf[IPC_MAX_MSG + 1];
};

static void lookup_hash(const char *type, const char *id, uint8_t out[SHA256_DIGEST_LENGTH])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL) || !EVP_DigestUpdate(c, type, strlen(type) + 1) ||
	    !EVP_DigestUpdate(c, id, strlen(id)) || !EVP_DigestFinal_ex(c, out, NULL))
		memset(out, 0, SHA256_DIGEST_LENGTH); /* a slot nobody matches: the keeper is asked */
	EVP_MD_CTX_free(c);
}

/* The subject's slot, filled from the keeper when missing or stale. */
static int fetch(struct keyclient *kc, const char *type, const char *id, struct slot **ret)
{
	uint8_t h[SHA256_DIGEST_LENGTH];
	struct ipc_msg req = { .type = IPC_KEYS_SUBJECT, .nfields = 2 }, r;

	lookup_hash(type, id, h);
	struct slot *s = &kc->slots[(h[0] | h[1] << 8) % KCL_SLOTS];
	if (s->expires_us > now_us() && !memcmp(s->lookup, h, sizeof(h))) {
		*ret = s;
		return 0;
	}
	int fd = role_peer(kc->env, "keeper");
	if (fd < 0)
		return -ENOTCONN;
	req.f[0] = ipc_str(type);
	req.f[1] = ipc_str(id);
	int err = role_call(kc->env, fd, &req, kc->buf, &r, CALL_TIMEOUT_MS);
	if (!err && r.type == IPC_ERROR)
		err = r.f[0].i < 0 && r.f[0].i > -4096 ? (int)r.f[0].i : -EIO;
	else if (!err && r.type != IPC_KEYS_SUBJECT_KEY)
		err = -EBADMSG;
	if (!err) {
		memcpy(s->lookup, h, sizeof(h));
		memcpy(s->ref, r.f[0].h, SUBJECT_REF_LEN);
		memcpy(s->k.key, r.f[1].h, FC_KEY_LEN);
		memcpy(s->k.id, r.f[2].h, FC_KEYID_LEN);
		s->expires_us = now_us() + kc->ttl_us;
		*ret = s;
	}
	OPENSSL_cleanse(kc->buf, sizeof(kc->buf)); /* the key travelled through it */
	return err;
}

static int kcl_subject_key(struct keyprov *kp, const char *type, const char *id, struct fc_key *ret)
{
	struct slot *s;
	int err = fetch((struct keyclient *)kp, type, id, &s);

	if (!err)
		*ret = s->k;
	return err;
}

static int kcl_ref(struct keyprov *kp, const char *type, const char *id, uint8_t ret[SUBJECT_REF_LEN])
{
	struct slot *s;
	int err = fetch((struct keyclient *)kp, type, id, &s);

	if (!err)
		memcpy(ret, s->ref, SUBJECT_REF_LEN);
	return err;
}

static int kcl_key_by_id(struct keyprov *kp, const uint8_t id[FC_KEYID_LEN], struct fc_key *ret)
{
	(void)kp;
	(void)id;
	(void)ret;
	return -EOPNOTSUPP; /* the log only writes */
}

static void kcl_free(struct keyprov *kp)
{
	struct keyclient *kc = (struct keyclient *)kp;

	secmem_free(kc->slots, KCL_SLOTS * sizeof(*kc->slots));
	free(kc);
}

struct keyprov *kcl_new(struct role_env *env, unsigned ttl_s)
{
	struct keyclient *kc = calloc(1, sizeof(*kc));

	if (!kc || !(kc->slots = secmem_alloc(KCL_SLOTS * sizeof(*kc->slots)))) {
		free(kc);
		return NULL;
	}
	kc->kp = (struct keyprov){ kcl_subject_key, kcl_key_by_id, kcl_ref, kcl_free };
	kc->env = env;
	kc->ttl_us = (int64_t)ttl_s * 1000000;
	return &kc->kp;
}
