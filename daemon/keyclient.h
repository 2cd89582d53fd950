/* keyclient.h - a key provider (keyprov.h) for roles other than the
 * keeper: subject keys and refs come from the keeper over the role's
 * channel to it, and stay in a small cache in locked memory for at most
 * ttl_s seconds (so a key destroyed by a shred is gone from here within
 * that time). Used by the logger for the subject ids in access records,
 * and by the proxy for the values it encrypts and decrypts. */
#ifndef CUSTOS_KEYCLIENT_H
#define CUSTOS_KEYCLIENT_H

#include <event2/event.h>

#include "keycache.h"
#include "keyprov.h"
#include "role.h"

#define KCL_SLOTS_LOGGER 1024 /* the subjects of records in flight */
#define KCL_SLOTS_PROXY 16384 /* the keys of the values applications read back and forth */
/* locked memory a cache of slots needs, with the recent answers and fresh keys */
#define KCL_HEAP(slots) ((size_t)(slots)*128 + 65536)

/* NULL when out of (locked) memory. */
struct keyprov *kcl_new(struct role_env *env, unsigned ttl_s, unsigned slots);

/* What the proxy needs beyond keyprov: a key with whose it is (the
 * associated data of a column value names the subject's ref). 0 or
 * -errno; -ENOKEY when destroyed. kp must come from kcl_new. */
int kcl_subject(struct keyprov *kp, const char *type, const char *id, struct kc_key *ret) WUR;
int kcl_key(struct keyprov *kp, const uint8_t id[FC_KEYID_LEN], struct kc_key *ret) WUR;
int kcl_fresh(struct keyprov *kp, struct kc_key *ret) WUR;
/* Without waiting (the proxy, whose one loop serves every connection):
 * once kcl_async has been called, the _nowait calls answer from the
 * cache only. A key not there is asked of the keeper and -EINPROGRESS returned;
 * ready(arg) runs in base's loop when answers have come (a key, or a
 * refusal, which the next try then finds), and kcl_tick, called now and
 * then, fails what the keeper has not answered within 10 s. Before
 * kcl_async, they wait like the calls without _nowait. */
int kcl_async(struct keyprov *kp, struct event_base *base, void (*ready)(void *), void *arg) WUR;
/* The keeper's channel to ask on without waiting (a copy is kept): at the
 * start, and whenever the keeper is restarted. Before it, or -1: -ENOTCONN. */
void kcl_set_fd(struct keyprov *kp, int fd);
int kcl_key_nowait(struct keyprov *kp, const uint8_t id[FC_KEYID_LEN], struct kc_key *ret) WUR;
int kcl_subject_nowait(struct keyprov *kp, const char *type, const char *id, struct kc_key *ret) WUR;
int kcl_bidx_key_nowait(struct keyprov *kp, const char *table, const char *column, uint8_t ret[32]) WUR;
/* Fresh keys for n values of no known subject, ahead: 0 when kcl_fresh
 * will have them at hand (or when n is more than the few kept ready: then
 * it waits for each), -EINPROGRESS while they are fetched, or a failure. */
int kcl_fresh_reserve(struct keyprov *kp, unsigned n) WUR;
void kcl_tick(struct keyprov *kp);
/* Keeps in *err the answer that matters of several asked together:
 * waiting for one outweighs the others' refusals, the first refusal the
 * rest. */
static inline void kcl_note(int *err, int e)
{
	if (e && (e == -EINPROGRESS || !*err))
		*err = e;
}
/* The key of a column's blind index (BIDX_KEY_LEN bytes). */
int kcl_bidx_key(struct keyprov *kp, const char *table, const char *column, uint8_t ret[32]) WUR;

/* Erases a subject: destroys its key and the keys of the ids given (found
 * in its values), then has every role's key cache dropped (through the
 * parent), so that no destroyed key outlives this call in memory.
 * *ret_destroyed counts the keys. -ESTALE: destroyed, but the caches
 * could not all be dropped. */
int kcl_shred(struct keyprov *kp, const char *type, const char *id, const uint8_t (*ids)[FC_KEYID_LEN],
              size_t n, uint64_t *ret_destroyed) WUR;
/* A subject's ref, even an erased subject's (nothing is cached). */
int kcl_subject_ref(struct keyprov *kp, const char *type, const char *id, uint8_t ret[SUBJECT_REF_LEN]) WUR;
/* Forgets every cached key: what follows asks the keeper. */
void kcl_flush(struct keyprov *kp);

#endif
