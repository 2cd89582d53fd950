/* keycache.h - unwrapped data keys, kept for reuse in locked memory
 * (secmem.h: mlock()ed, out of core dumps) with a limit on their number.
 * The least recently used key is evicted, and wiped, when the cache is
 * full. Not thread-safe: the keystore serialises its callers. */
#ifndef CUSTOS_KEYCACHE_H
#define CUSTOS_KEYCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fieldcrypt.h"
#include "keyprov.h"

/* A data key, and the subject it belongs to (has_ref false for a key
 * made for a value written without a known subject). */
struct kc_key {
	struct fc_key k;
	uint8_t ref[SUBJECT_REF_LEN];
	bool has_ref;
};

struct kc_stats {
	uint64_t hits, misses, evictions;
	size_t count, limit;
};

struct keycache;

/* A cache for at most limit keys (1 or more); NULL when out of memory. */
struct keycache *kc_new(size_t limit);
void kc_free(struct keycache *c); /* wipes every key; NULL is a no-op */

/* Copies the key with this id, or the current key of the subject with
 * this ref, into *ret (secure memory). true when it was cached. */
bool kc_get(struct keycache *c, const uint8_t id[FC_KEYID_LEN], struct kc_key *ret);
bool kc_get_subject(struct keycache *c, const uint8_t ref[SUBJECT_REF_LEN], struct kc_key *ret);

/* Caches a key (replacing one with the same id). */
void kc_put(struct keycache *c, const struct kc_key *key);

/* Forgets (and wipes) the key with this id / every key of a subject /
 * every key. */
void kc_drop(struct keycache *c, const uint8_t id[FC_KEYID_LEN]);
void kc_drop_subject(struct keycache *c, const uint8_t ref[SUBJECT_REF_LEN]);
void kc_clear(struct keycache *c);

struct kc_stats kc_stats(const struct keycache *c);

#endif
