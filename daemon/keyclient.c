/* keyclient.c - see keyclient.h. The cache is direct-mapped: a slot is
 * chosen by SHA-256("type\0id"), which is not secret (the ref, an HMAC
 * under the index key, is the keeper's to compute).
 *
 * Keys asked without waiting (kcl_key_nowait) wait in a FIFO for the
 * keeper's answers, which come in order; their message ids have the top
 * bit set, apart from role_call's, so that a call waiting on the same
 * channel hands them here (ipc_call's other). An answer fills the cache,
 * a refusal too (a destroyed key for the TTL, a failure briefly),
 * so that the caller's next try finds it either way. */
#include "keyclient.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blindidx.h"
#include "secmem.h"

#define CALL_TIMEOUT_MS 10000
#define ASKED_MAX 256        /* keys asked without waiting, not yet answered */
#define ASYNC_ID 0x80000000u /* their message ids */
#define FAILED_TTL_US 100000 /* a failure is the answer this long: to the tries it wakes */
#define FRESH_POOL 64        /* fresh keys fetched ahead (kcl_fresh_reserve) */

struct slot {
	uint8_t lookup[SHA256_DIGEST_LENGTH];
	struct kc_key k;
	int err;            /* 0, or the answer: -ENOKEY (destroyed), a failure */
	int64_t expires_us; /* on mono_us(); 0: empty */
};

enum ask_kind { ASK_BY_ID, ASK_SUBJECT, ASK_BIDX, ASK_FRESH };

struct asked {
	enum ask_kind kind;
	uint8_t lookup[SHA256_DIGEST_LENGTH];
	uint8_t id[FC_KEYID_LEN]; /* ASK_BY_ID: the key's */
	uint32_t msg;
	bool stale; /* asked before a flush: its answer may be a key destroyed since */
	int64_t at_us;
};

#define SHRED_TIMEOUT_MS 60000

struct keyclient {
	struct keyprov kp; /* first: the interface */
	struct role_env *env;
	int64_t ttl_us;
	struct slot *slots; /* nslots, in locked memory */
	unsigned nslots;
	uint8_t buf[IPC_MAX_MSG + 1];
	/* without waiting (kcl_async) */
	struct event_base *base;
	int fd;             /* its own copy of the keeper's channel (kcl_set_fd), or -1 */
	struct event *ev;   /* reads the answers on fd */
	struct event *wake; /* runs ready(ready_arg) from the loop */
	void (*ready)(void *);
	void *ready_arg;
	struct slot *recent; /* the last ASKED_MAX answers, a ring in locked memory from recent_at */
	size_t recent_at;
	int64_t unsent_since;          /* a key could not be asked (no room) since, or 0 */
	struct asked asked[ASKED_MAX]; /* a FIFO from ahead */
	size_t ahead, nasked;
	uint32_t next_msg;
	struct kc_key *pool; /* FRESH_POOL fresh keys, in locked memory: npool of them */
	unsigned npool, fresh_asked;
	unsigned fresh_window; /* asked ahead: doubles with each key, 1 after a failure */
	int fresh_err;         /* the last fresh key asked failed so, until fresh_err_until */
	int64_t fresh_err_until;
};

/* A subject's slot is found by SHA-256(type NUL id), a key's by
 * SHA-256(0x01 id): no type begins with 0x01. */
static void lookup_hash(const void *a, size_t alen, const void *b, size_t blen,
                        uint8_t out[SHA256_DIGEST_LENGTH])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL) || !EVP_DigestUpdate(c, a, alen) ||
	    !EVP_DigestUpdate(c, b, blen) || !EVP_DigestFinal_ex(c, out, NULL))
		memset(out, 0, SHA256_DIGEST_LENGTH); /* a slot nobody matches: the keeper is asked */
	EVP_MD_CTX_free(c);
}

static void id_lookup(const uint8_t id[FC_KEYID_LEN], uint8_t out[SHA256_DIGEST_LENGTH])
{
	static const uint8_t mark = 1;

	lookup_hash(&mark, 1, id, FC_KEYID_LEN, out);
}

/* A blind index key's slot: by SHA-256(0x02 SHA-256(table NUL column)). */
static void bidx_lookup(const char *table, const char *column, uint8_t out[SHA256_DIGEST_LENGTH])
{
	static const uint8_t mark = 2;
	uint8_t t[SHA256_DIGEST_LENGTH];

	lookup_hash(table, strlen(table) + 1, column, strlen(column), t);
	lookup_hash(&mark, 1, t, sizeof(t), out);
}

static struct slot *slot_of(struct keyclient *kc, const uint8_t h[SHA256_DIGEST_LENGTH])
{
	return &kc->slots[((uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16) % kc->nslots];
}

static void fill(struct keyclient *kc, const uint8_t h[SHA256_DIGEST_LENGTH], const struct kc_key *k)
{
	struct slot *s = slot_of(kc, h);

	memcpy(s->lookup, h, SHA256_DIGEST_LENGTH);
	s->k = *k;
	s->err = 0;
	s->expires_us = mono_us() + kc->ttl_us;
}

static void fill_error(struct keyclient *kc, const uint8_t h[SHA256_DIGEST_LENGTH], int err)
{
	struct slot *s = slot_of(kc, h);

	OPENSSL_cleanse(&s->k, sizeof(s->k));
	memcpy(s->lookup, h, SHA256_DIGEST_LENGTH);
	s->err = err;
	s->expires_us = mono_us() + (err == -ENOKEY ? kc->ttl_us : FAILED_TTL_US);
}

static bool live(const struct slot *s, const uint8_t h[SHA256_DIGEST_LENGTH], int64_t now)
{
	return s->expires_us > now && !memcmp(s->lookup, h, SHA256_DIGEST_LENGTH);
}

/* The live slot for h, or NULL: in the cache, or among the recent answers
 * (which two keys of one row, sharing a slot, cannot push out of reach of
 * the row's next try). */
static struct slot *hit(struct keyclient *kc, const uint8_t h[SHA256_DIGEST_LENGTH])
{
	struct slot *s = slot_of(kc, h);
	int64_t now = mono_us();

	if (live(s, h, now))
		return s;
	for (size_t i = 0; kc->recent && i < ASKED_MAX; i++)
		if (live(&kc->recent[i], h, now))
			return &kc->recent[i];
	return NULL;
}

static void answered(void *arg, struct ipc_msg *m);

/* One request to the keeper; r holds its answer of type want. */
static int call(struct keyclient *kc, struct ipc_msg *req, enum ipc_type want, struct ipc_msg *r)
{
	int fd = role_peer(kc->env, "keeper");

	if (fd < 0)
		return -ENOTCONN;
	int err = ipc_call(kc->env, fd, req, kc->buf, r, CALL_TIMEOUT_MS, answered, kc);
	if (!err && r->type == IPC_ERROR)
		err = r->f[0].i < 0 && r->f[0].i > -4096 ? (int)r->f[0].i : -EIO;
	else if (!err && r->type != want)
		err = -EBADMSG;
	return err;
}

/* The key an IPC_KEYS_SUBJECT_KEY answer carries. */
static void key_of(const struct ipc_msg *m, struct kc_key *k)
{
	memcpy(k->ref, m->f[0].h, SUBJECT_REF_LEN);
	memcpy(k->k.key, m->f[1].h, FC_KEY_LEN);
	memcpy(k->k.id, m->f[2].h, FC_KEYID_LEN);
	k->has_ref = m->f[3].u != 0;
}

/* The request for a key by its id. */
static struct ipc_msg by_id(const uint8_t id[FC_KEYID_LEN])
{
	struct ipc_msg req = { .type = IPC_KEYS_BY_ID, .nfields = 1 };

	req.f[0].kind = 'h';
	memcpy(req.f[0].h, id, FC_KEYID_LEN); /* zero-padded */
	return req;
}

/* Asks the keeper for the key req names. */
static int ask(struct keyclient *kc, struct ipc_msg *req, struct kc_key *ret)
{
	struct ipc_msg r;
	int err = call(kc, req, IPC_KEYS_SUBJECT_KEY, &r);

	if (!err)
		key_of(&r, ret);
	OPENSSL_cleanse(kc->buf, sizeof(kc->buf)); /* the key travelled through it */
	OPENSSL_cleanse(&r, sizeof(r));
	return err;
}

/* The subject's key, from the cache or the keeper. */
static int fetch(struct keyclient *kc, const char *type, const char *id, struct kc_key *ret)
{
	uint8_t h[SHA256_DIGEST_LENGTH], hid[SHA256_DIGEST_LENGTH];
	struct ipc_msg req = { .type = IPC_KEYS_SUBJECT, .nfields = 2 };
	struct slot *s;

	lookup_hash(type, strlen(type) + 1, id, strlen(id), h);
	if ((s = hit(kc, h)) && !s->err) {
		*ret = s->k;
		return 0;
	}
	req.f[0] = ipc_str(type);
	req.f[1] = ipc_str(id);
	int err = ask(kc, &req, ret);
	if (!err) {
		fill(kc, h, ret);
		id_lookup(ret->k.id, hid);
		fill(kc, hid, ret);
	}
	return err;
}

static int kcl_subject_key(struct keyprov *kp, const char *type, const char *id, struct fc_key *ret)
{
	struct kc_key k;
	int err = fetch((struct keyclient *)kp, type, id, &k);

	if (!err)
		*ret = k.k;
	OPENSSL_cleanse(&k, sizeof(k));
	return err;
}

static int kcl_ref(struct keyprov *kp, const char *type, const char *id, uint8_t ret[SUBJECT_REF_LEN])
{
	struct kc_key k;
	int err = fetch((struct keyclient *)kp, type, id, &k);

	if (!err)
		memcpy(ret, k.ref, SUBJECT_REF_LEN);
	OPENSSL_cleanse(&k, sizeof(k));
	return err;
}

int kcl_key(struct keyprov *kp, const uint8_t id[FC_KEYID_LEN], struct kc_key *ret)
{
	struct keyclient *kc = (struct keyclient *)kp;
	struct ipc_msg req = by_id(id);
	uint8_t h[SHA256_DIGEST_LENGTH];
	struct slot *s;

	id_lookup(id, h);
	if ((s = hit(kc, h))) {
		if (!s->err)
			*ret = s->k;
		return s->err;
	}
	int err = ask(kc, &req, ret);
	if (!err && memcmp(ret->k.id, id, FC_KEYID_LEN))
		err = -EBADMSG;
	if (!err)
		fill(kc, h, ret);
	return err;
}

int kcl_subject(struct keyprov *kp, const char *type, const char *id, struct kc_key *ret)
{
	return fetch((struct keyclient *)kp, type, id, ret);
}

int kcl_fresh(struct keyprov *kp, struct kc_key *ret)
{
	struct keyclient *kc = (struct keyclient *)kp;
	struct ipc_msg req = { .type = IPC_KEYS_FRESH };
	uint8_t h[SHA256_DIGEST_LENGTH];
	int err = 0;

	if (kc->npool) {
		*ret = kc->pool[--kc->npool];
		OPENSSL_cleanse(&kc->pool[kc->npool], sizeof(*ret));
	} else {
		err = ask(kc, &req, ret);
	}
	if (!err) {
		id_lookup(ret->k.id, h);
		fill(kc, h, ret); /* what is written now is often read back soon */
	}
	return err;
}

int kcl_bidx_key(struct keyprov *kp, const char *table, const char *column, uint8_t ret[BIDX_KEY_LEN])
{
	struct keyclient *kc = (struct keyclient *)kp;
	struct ipc_msg req = { .type = IPC_KEYS_BIDX, .nfields = 2 }, r;
	uint8_t h[SHA256_DIGEST_LENGTH];
	struct slot *s;

	bidx_lookup(table, column, h);
	if ((s = hit(kc, h)) && !s->err) {
		memcpy(ret, s->k.k.key, BIDX_KEY_LEN);
		return 0;
	}
	req.f[0] = ipc_str(table);
	req.f[1] = ipc_str(column);
	int err = call(kc, &req, IPC_KEYS_BIDX_KEY, &r);
	if (!err) {
		struct kc_key k = { 0 };
		memcpy(k.k.key, r.f[0].h, BIDX_KEY_LEN);
		memcpy(ret, r.f[0].h, BIDX_KEY_LEN);
		fill(kc, h, &k);
		OPENSSL_cleanse(&k, sizeof(k));
	}
	OPENSSL_cleanse(kc->buf, sizeof(kc->buf));
	OPENSSL_cleanse(&r, sizeof(r));
	return err;
}

static int kcl_key_by_id(struct keyprov *kp, const uint8_t id[FC_KEYID_LEN], struct fc_key *ret)
{
	struct kc_key k;
	int err = kcl_key(kp, id, &k);

	if (!err)
		*ret = k.k;
	OPENSSL_cleanse(&k, sizeof(k));
	return err;
}

/* --- without waiting ------------------------------------------------------- */

static struct asked *asked_at(struct keyclient *kc, size_t i)
{
	return &kc->asked[(kc->ahead + i) % ASKED_MAX];
}

/* ready() runs from the loop, once, whoever read the answers: on_answers,
 * or a call waiting on the channel (ipc_call's other). */
static void wake(struct keyclient *kc)
{
	if (kc->wake)
		event_active(kc->wake, EV_TIMEOUT, 1);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct keyclient *kc = arg;

	(void)fd;
	(void)what;
	kc->ready(kc->ready_arg);
}

/* What came of an asked key: k, or err. A key is cached, a refusal too
 * (a destroyed key for the TTL, a failure for the tries it wakes), and kept among
 * the recent answers; nothing asked before a flush is. A fresh key joins
 * the pool. */
static void settle(struct keyclient *kc, const struct asked *a, const struct kc_key *k, int err)
{
	uint8_t hid[SHA256_DIGEST_LENGTH];

	wake(kc);
	if (a->kind == ASK_FRESH) { /* no subject's: a flush leaves it be */
		kc->fresh_asked--;
		if (err) {
			kc->fresh_err = err;
			kc->fresh_err_until = mono_us() + FAILED_TTL_US;
			kc->fresh_window = 1;
			return;
		}
		if (kc->npool < FRESH_POOL)
			kc->pool[kc->npool++] = *k;
		if (kc->fresh_window < FRESH_POOL / 2)
			kc->fresh_window *= 2;
		return;
	}
	if (a->stale)
		return;
	if (err)
		fill_error(kc, a->lookup, err);
	else
		fill(kc, a->lookup, k);
	kc->recent[kc->recent_at++ % ASKED_MAX] = *slot_of(kc, a->lookup);
	if (!err && a->kind == ASK_SUBJECT) { /* and by its id, to read back what is written with it */
		id_lookup(k->k.id, hid);
		fill(kc, hid, k);
	}
}

/* The asked keys up to the n-th fail with err. */
static void fail_asked(struct keyclient *kc, size_t n, int err)
{
	for (; n; n--, kc->nasked--) {
		settle(kc, asked_at(kc, 0), NULL, err);
		kc->ahead = (kc->ahead + 1) % ASKED_MAX;
	}
}

/* The key or refusal m brings for a. */
static int answer_of(const struct asked *a, const struct ipc_msg *m, struct kc_key *k)
{
	if (m->type == IPC_KEYS_SUBJECT_KEY && a->kind != ASK_BIDX &&
	    (a->kind != ASK_BY_ID || !memcmp(m->f[2].h, a->id, FC_KEYID_LEN))) {
		key_of(m, k);
		return 0;
	}
	if (m->type == IPC_KEYS_BIDX_KEY && a->kind == ASK_BIDX) {
		memcpy(k->k.key, m->f[0].h, BIDX_KEY_LEN);
		return 0;
	}
	return m->type == IPC_ERROR && m->f[0].i < 0 && m->f[0].i > -4096 ? (int)m->f[0].i : -EIO;
}

/* An answer to a key asked without waiting (the FIFO's head; those asked
 * before it that the keeper skipped fail). Anything else is dropped: a
 * late answer to a call that timed out. m is wiped either way. */
static void answered(void *arg, struct ipc_msg *m)
{
	struct keyclient *kc = arg;
	struct kc_key k = { 0 };
	size_t i = 0;

	while (i < kc->nasked && asked_at(kc, i)->msg != m->id)
		i++;
	if (i < kc->nasked) {
		fail_asked(kc, i, -EIO);
		struct asked a = *asked_at(kc, 0);
		kc->ahead = (kc->ahead + 1) % ASKED_MAX;
		kc->nasked--;
		settle(kc, &a, &k, answer_of(&a, m, &k));
		OPENSSL_cleanse(&k, sizeof(k));
	}
	OPENSSL_cleanse(m, sizeof(*m));
}

/* Lets go of the channel; what was asked on it fails. */
static void drop_channel(struct keyclient *kc)
{
	if (kc->ev)
		event_free(kc->ev);
	kc->ev = NULL;
	if (kc->fd >= 0)
		close(kc->fd);
	kc->fd = -1;
	fail_asked(kc, kc->nasked, -EIO);
}

/* Half a ring of answers at most a pass: the connections they wake try
 * again before more come in and push theirs out of the recent ones. */
static void on_answers(evutil_socket_t fd, short what, void *arg)
{
	struct keyclient *kc = arg;
	struct ipc_msg m;
	int err = 0;

	(void)what;
	for (size_t n = 0; n < ASKED_MAX / 2 && !(err = ipc_recv_flags((int)fd, kc->buf, &m, MSG_DONTWAIT));
	     n++)
		answered(kc, &m);
	OPENSSL_cleanse(kc->buf, sizeof(kc->buf));
	if (err && err != -EAGAIN && err != -EWOULDBLOCK)
		drop_channel(kc); /* the keeper is gone: a new channel comes with kcl_set_fd */
}

void kcl_set_fd(struct keyprov *kp, int fd)
{
	struct keyclient *kc = (struct keyclient *)kp;

	struct stat now, held;

	if (!kc->base)
		return;
	if (fd >= 0 && kc->fd >= 0 && !fstat(fd, &now) && !fstat(kc->fd, &held) &&
	    now.st_ino == held.st_ino && now.st_dev == held.st_dev)
		return; /* the same channel (another role's changed): what is asked on it stands */
	drop_channel(kc);
	if (fd < 0 || (fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
		return;
	kc->ev = event_new(kc->base, fd, EV_READ | EV_PERSIST, on_answers, kc);
	if (!kc->ev || event_add(kc->ev, NULL)) { /* no channel rather than a half one */
		if (kc->ev)
			event_free(kc->ev);
		kc->ev = NULL;
		close(fd);
		return;
	}
	kc->fd = fd;
}

int kcl_async(struct keyprov *kp, struct event_base *base, void (*ready)(void *), void *arg)
{
	struct keyclient *kc = (struct keyclient *)kp;

	if (!(kc->pool = secmem_alloc(FRESH_POOL * sizeof(*kc->pool))) ||
	    !(kc->recent = secmem_alloc(ASKED_MAX * sizeof(*kc->recent))) ||
	    !(kc->wake = event_new(base, -1, 0, on_wake, kc)))
		return -ENOMEM;
	kc->base = base;
	kc->fresh_window = 1;
	kc->ready = ready;
	kc->ready_arg = arg;
	return 0;
}

/* No room to ask now (the FIFO or the channel is full): the answers that
 * make room wake the caller to try again, or kcl_tick does. -EINPROGRESS,
 * or -ETIMEDOUT once there has been none for the call timeout. */
static int no_room(struct keyclient *kc)
{
	int64_t now = mono_us();

	if (!kc->unsent_since)
		kc->unsent_since = now;
	return now - kc->unsent_since > CALL_TIMEOUT_MS * 1000LL ? -ETIMEDOUT : -EINPROGRESS;
}

/* Asks req of the keeper, once for lookup h: -EINPROGRESS (or a failure
 * to ask). id: the key's, when req asks for one by its id. */
static int ask_later(struct keyclient *kc, const uint8_t h[SHA256_DIGEST_LENGTH], struct ipc_msg *req,
                     enum ask_kind kind, const uint8_t *id)
{
	int err;

	if (kc->fd < 0)
		return -ENOTCONN;
	for (size_t i = 0; kind != ASK_FRESH && i < kc->nasked; i++)
		if (!asked_at(kc, i)->stale && !memcmp(asked_at(kc, i)->lookup, h, SHA256_DIGEST_LENGTH))
			return -EINPROGRESS;
	if (kc->nasked == ASKED_MAX)
		return no_room(kc);
	req->id = ASYNC_ID | (++kc->next_msg & ~ASYNC_ID);
	req->fd = -1;
	if ((err = ipc_send_flags(kc->fd, req, MSG_DONTWAIT)))
		return err == -EAGAIN || err == -EWOULDBLOCK ? no_room(kc) : err;
	kc->unsent_since = 0;
	struct asked *a = asked_at(kc, kc->nasked++);
	*a = (struct asked){ .kind = kind, .msg = req->id, .at_us = mono_us() };
	memcpy(a->lookup, h, SHA256_DIGEST_LENGTH);
	if (id)
		memcpy(a->id, id, FC_KEYID_LEN);
	kc->fresh_asked += kind == ASK_FRESH;
	return -EINPROGRESS;
}

/* The cached answer for h: 0 with the key in *ret, the refusal, or
 * -EINPROGRESS once it is asked for with req. */
static int nowait(struct keyclient *kc, const uint8_t h[SHA256_DIGEST_LENGTH], struct ipc_msg *req,
                  enum ask_kind kind, const uint8_t *id, struct kc_key *ret)
{
	struct slot *s = hit(kc, h);

	if (s) {
		if (!s->err)
			*ret = s->k;
		return s->err;
	}
	return ask_later(kc, h, req, kind, id);
}

int kcl_key_nowait(struct keyprov *kp, const uint8_t id[FC_KEYID_LEN], struct kc_key *ret)
{
	struct keyclient *kc = (struct keyclient *)kp;
	struct ipc_msg req = by_id(id);
	uint8_t h[SHA256_DIGEST_LENGTH];

	if (!kc->base)
		return kcl_key(kp, id, ret);
	id_lookup(id, h);
	return nowait(kc, h, &req, ASK_BY_ID, id, ret);
}

int kcl_subject_nowait(struct keyprov *kp, const char *type, const char *id, struct kc_key *ret)
{
	struct keyclient *kc = (struct keyclient *)kp;
	struct ipc_msg req = { .type = IPC_KEYS_SUBJECT, .nfields = 2 };
	uint8_t h[SHA256_DIGEST_LENGTH];

	if (!kc->base)
		return kcl_subject(kp, type, id, ret);
	lookup_hash(type, strlen(type) + 1, id, strlen(id), h);
	req.f[0] = ipc_str(type);
	req.f[1] = ipc_str(id);
	return nowait(kc, h, &req, ASK_SUBJECT, NULL, ret);
}

int kcl_bidx_key_nowait(struct keyprov *kp, const char *table, const char *column, uint8_t ret[BIDX_KEY_LEN])
{
	struct keyclient *kc = (struct keyclient *)kp;
	struct ipc_msg req = { .type = IPC_KEYS_BIDX, .nfields = 2 };
	uint8_t h[SHA256_DIGEST_LENGTH];
	struct kc_key k;

	if (!kc->base)
		return kcl_bidx_key(kp, table, column, ret);
	bidx_lookup(table, column, h);
	req.f[0] = ipc_str(table);
	req.f[1] = ipc_str(column);
	int err = nowait(kc, h, &req, ASK_BIDX, NULL, &k);
	if (!err)
		memcpy(ret, k.k.key, BIDX_KEY_LEN);
	OPENSSL_cleanse(&k, sizeof(k));
	return err;
}

int kcl_fresh_reserve(struct keyprov *kp, unsigned n)
{
	struct keyclient *kc = (struct keyclient *)kp;
	static const uint8_t none[SHA256_DIGEST_LENGTH];
	struct ipc_msg req = { .type = IPC_KEYS_FRESH };
	unsigned want = n > kc->fresh_window ? n : kc->fresh_window; /* (a row at a time fills no pool) */
	int err = 0;

	if (!kc->base || n > FRESH_POOL)
		return 0; /* more than a pool's worth: kcl_fresh waits for each */
	if (kc->fresh_err && mono_us() < kc->fresh_err_until)
		err = kc->fresh_err;
	while (!err && kc->npool + kc->fresh_asked < want) {
		size_t before = kc->nasked;
		err = ask_later(kc, none, &req, ASK_FRESH, NULL);
		if (err == -EINPROGRESS && kc->nasked == before)
			break; /* no room to ask now: answers will make it */
		err = err == -EINPROGRESS ? 0 : err;
	}
	return kc->npool >= n ? 0 : err ? err : -EINPROGRESS;
}

void kcl_tick(struct keyprov *kp)
{
	struct keyclient *kc = (struct keyclient *)kp;

	if (kc->nasked && mono_us() - asked_at(kc, 0)->at_us > CALL_TIMEOUT_MS * 1000LL) {
		role_log(3, "keys", "the keeper has not answered for %d s", CALL_TIMEOUT_MS / 1000);
		fail_asked(kc, kc->nasked, -ETIMEDOUT);
	}
	if (kc->unsent_since)
		wake(kc); /* those waiting for room to ask try again */
}

static void kcl_free(struct keyprov *kp)
{
	struct keyclient *kc = (struct keyclient *)kp;

	drop_channel(kc);
	if (kc->wake)
		event_free(kc->wake);
	secmem_free(kc->pool, FRESH_POOL * sizeof(*kc->pool));
	secmem_free(kc->recent, ASKED_MAX * sizeof(*kc->recent));

	secmem_free(kc->slots, kc->nslots * sizeof(*kc->slots));
	free(kc);
}

struct keyprov *kcl_new(struct role_env *env, unsigned ttl_s, unsigned slots)
{
	struct keyclient *kc = calloc(1, sizeof(*kc));

	_Static_assert(sizeof(struct slot) <= 128, "KCL_HEAP counts 128 bytes a slot");
	if (!kc || !slots || !(kc->slots = secmem_alloc(slots * sizeof(*kc->slots)))) {
		free(kc);
		return NULL;
	}
	kc->kp = (struct keyprov){ kcl_subject_key, kcl_key_by_id, kcl_ref, kcl_free };
	kc->env = env;
	kc->fd = -1;
	kc->nslots = slots;
	kc->ttl_us = (int64_t)ttl_s * 1000000;
	return &kc->kp;
}

void kcl_flush(struct keyprov *kp)
{
	struct keyclient *kc = (struct keyclient *)kp;

	OPENSSL_cleanse(kc->slots, kc->nslots * sizeof(*kc->slots));
	if (kc->recent)
		OPENSSL_cleanse(kc->recent, ASKED_MAX * sizeof(*kc->recent));
	for (size_t i = 0; i < kc->nasked; i++)
		asked_at(kc, i)->stale = true; /* answered maybe before the keys were destroyed */
}

#define SHRED_IDS_PER_MSG (IPC_MAX_STR / (2 * FC_KEYID_LEN))

int kcl_shred(struct keyprov *kp, const char *type, const char *id, const uint8_t (*ids)[FC_KEYID_LEN],
              size_t n, uint64_t *ret_destroyed)
{
	struct keyclient *kc = (struct keyclient *)kp;
	int fd = role_peer(kc->env, "keeper"), err = fd < 0 ? -ENOTCONN : 0;
	char *hex = malloc(SHRED_IDS_PER_MSG * 2 * FC_KEYID_LEN + 1);
	size_t at = 0;

	*ret_destroyed = 0;
	if (!hex)
		err = -ENOMEM;
	do { /* at least once: the subject's own key, with no ids */
		size_t k = n - at < SHRED_IDS_PER_MSG ? n - at : SHRED_IDS_PER_MSG;
		struct ipc_msg req = { .type = IPC_KEYS_SHRED, .nfields = 3 }, r;
		for (size_t i = 0; !err && i < k; i++)
			hex_encode(ids[at + i], FC_KEYID_LEN, hex + 2 * FC_KEYID_LEN * i);
		if (err)
			break;
		hex[2 * FC_KEYID_LEN * k] = 0;
		req.f[0] = ipc_str(type);
		req.f[1] = ipc_str(id);
		req.f[2] = ipc_str(hex);
		err = role_call(kc->env, fd, &req, kc->buf, &r, SHRED_TIMEOUT_MS);
		if (!err && r.type != IPC_KEYS_SHREDDED)
			err = r.type == IPC_ERROR && r.f[0].i < 0 ? (int)r.f[0].i : -EIO;
		if (!err)
			*ret_destroyed += r.f[0].u;
		at += k;
	} while (!err && at < n);
	free(hex);
	kcl_flush(kp);
	if (!err) { /* and every other role's copies */
		struct ipc_msg req = { .type = IPC_KEYS_FLUSH }, r;
		err = role_call(kc->env, kc->env->parent, &req, kc->buf, &r, SHRED_TIMEOUT_MS);
		if (!err && r.type != IPC_OK)
			err = -EIO;
		if (err)
			err = -ESTALE; /* destroyed, but a copy may live on in a cache */
	}
	return err;
}

int kcl_subject_ref(struct keyprov *kp, const char *type, const char *id, uint8_t ret[SUBJECT_REF_LEN])
{
	struct keyclient *kc = (struct keyclient *)kp;
	struct ipc_msg req = { .type = IPC_KEYS_REF, .nfields = 2 }, r;
	int fd = role_peer(kc->env, "keeper");
	int err = fd < 0 ? -ENOTCONN : 0;

	req.f[0] = ipc_str(type);
	req.f[1] = ipc_str(id);
	if (!err)
		err = role_call(kc->env, fd, &req, kc->buf, &r, SHRED_TIMEOUT_MS);
	if (!err && r.type != IPC_KEYS_REF_IS)
		err = r.type == IPC_ERROR && r.f[0].i < 0 ? (int)r.f[0].i : -EIO;
	if (!err)
		memcpy(ret, r.f[0].h, SUBJECT_REF_LEN);
	return err;
}
