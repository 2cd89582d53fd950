/* keystore.h - the key hierarchy behind field encryption and erasure.
 *
 *   master key (file or systemd credential, never stored by Custos)
 *     wraps the KEK of each epoch, kept in the KEK file (kekfile.h)
 *       which wraps the per-subject data keys, kept in PostgreSQL
 *       (schema custos, schemas/custos.sql), only ever wrapped
 *     and wraps the index key (subject refs and blind indexes)
 *
 * Unwrapped data keys are cached in locked memory (keycache.h). A subject
 * is erased by destroying its keys (ks_shred); rotating the KEK
 * (ks_rotate) rewraps live keys and destroys the old epoch's KEK, so that
 * copies of destroyed keys in dumps and backups of the keystore can never
 * be unwrapped again. SECURITY.md describes the whole scheme.
 *
 * Thread-safe: one mutex serialises callers (the cache makes the common
 * case a lookup under it). */
#ifndef CUSTOS_KEYSTORE_H
#define CUSTOS_KEYSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keycache.h"
#include "keyprov.h"
#include "util.h"

#define KS_SCHEMA_VERSION 4 /* 1 the keys, 2 the request ledger, 3 the subject index, 4 its attempts */
#define KS_INDEX_KEY_LEN 32

struct ks_config {
	const char *conninfo; /* libpq connection string of the keystore database */
	const char *kek_path; /* the KEK file */
	const uint8_t *master_key;
	size_t cache_keys; /* the cache's limit (0: the default); each key takes
	                    * about 128 bytes of the secure heap (secmem_init) */
	/* how long making a new key waits for a lock (0: as long as it
	 * takes): while another connection rotates; erasure and migrations
	 * wait as long as it takes */
	unsigned lock_timeout_ms;
};

#define KS_DEFAULT_CACHE_KEYS 65536
#define KS_DEFAULT_DBNAME "custos"

/* The keystore's default connection string: the customer database's
 * (conninfo, key=value or URI), with dbname=custos. NULL when conninfo
 * does not parse. Free with free(). */
char *ks_default_conninfo(const char *conninfo);

struct ks_status {
	uint32_t epoch, schema_version;
	char epoch_since[TS_LEN + 1];
	uint64_t subject_keys, free_keys; /* live keys, with and without a subject */
	uint64_t dead_keys;               /* rows of destroyed epochs (restored from a backup) */
	uint64_t shredded_subjects;
	uint8_t keystore_id[16];
	struct kc_stats cache;
};

struct keystore;

/* Creates the keystore: applies schemas/custos.sql in the database, makes
 * the keystore's id, index key and first epoch, and writes the KEK file
 * (refusing to overwrite one). 0, or a negative errno with err set. */
int ks_init(const struct ks_config *cfg, char *err, size_t errlen) WUR;

/* Opens the keystore, checks its schema version, and reconciles the KEK
 * file with the database (finishing or undoing an interrupted rotation).
 * 0, or a negative errno with err set. */
int ks_open(const struct ks_config *cfg, struct keystore **ret, char *err, size_t errlen) WUR;
void ks_close(struct keystore *ks);

/* The current data key of a subject, made on first use. 0; -ENOKEY when
 * the subject was erased; -EIO (database) with ks_error() saying why. */
int ks_subject_key(struct keystore *ks, const char *type, const char *id, struct kc_key *ret) WUR;
/* A new key for values written without a known subject. */
int ks_fresh_key(struct keystore *ks, struct kc_key *ret) WUR;
/* The key with this id. 0; -ENOKEY destroyed (shredded, or only found in
 * an epoch that was rotated away) or never made; -EIO. */
int ks_key_by_id(struct keystore *ks, const uint8_t id[FC_KEYID_LEN], struct kc_key *ret) WUR;
/* The key of one column's blind index. */
void ks_bidx_key(struct keystore *ks, const char *table, const char *column, uint8_t ret[32]);

/* The subject's ref (HMAC of "type:id" under the index key), whether or
 * not it has a key: an erased subject's too. */
int ks_subject_ref(struct keystore *ks, const char *type, const char *id, uint8_t ret[32]) WUR;

/* Destroys the keys of a subject: its own key and the keys with the ids
 * given (found in the subject's values), and remembers the subject as
 * erased. *ret_destroyed counts the keys destroyed. */
int ks_shred(struct keystore *ks, const char *type, const char *id, const uint8_t (*ids)[FC_KEYID_LEN],
             size_t nids, uint64_t *ret_destroyed) WUR;

/* Starts a new epoch: rewraps every live key under a new KEK, then
 * destroys the old epoch's KEK. *ret_rewrapped counts the keys. */
int ks_rotate(struct keystore *ks, uint64_t *ret_rewrapped) WUR;

int ks_status(struct keystore *ks, struct ks_status *ret) WUR;

/* Changes made by other processes (custosctl keys shred or rotate while
 * custosd runs): ks_listen subscribes (PostgreSQL LISTEN); when
 * ks_socket() is readable, ks_notified() takes the notifications - a
 * shred empties the key cache, a rotation reloads the KEK. It returns how
 * many there were, or a negative errno. */
int ks_listen(struct keystore *ks) WUR;
int ks_socket(struct keystore *ks);
int ks_notified(struct keystore *ks) WUR;
/* Drops every key from the cache (keys destroyed on another connection). */
void ks_forget_keys(struct keystore *ks);

/* What went wrong in the last failed call (no personal data). */
const char *ks_error(struct keystore *ks);

/* The keystore as the audit log's key provider. Freeing it leaves the
 * keystore open. */
struct keyprov *ks_keyprov(struct keystore *ks);

#endif
