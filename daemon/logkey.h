/* logkey.h - the audit log's keys: the MAC ratchet, checkpoint signatures,
 * the offline verification key file and the writer's state file.
 *
 *   k1 = R(k0), k(e+1) = R(ke), R(k) = SHA-256("custos-log-ratchet-v1" | k)
 *
 * k0 leaves the host at init; the state file holds only the current ke and
 * is overwritten in place when the epoch advances. */
#ifndef CUSTOS_LOGKEY_H
#define CUSTOS_LOGKEY_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "util.h"

#define LOG_ID_LEN 16
#define LOG_KEY_LEN 32
#define LOG_HASH_LEN 32
#define LOG_SIG_LEN 64
#define SECRET_TEXT_MAX 1024 /* the key and state files are shorter */

/* What a verifier holds: the key file (seed and public key) or only the
 * public key file. */
struct logkeys {
	uint8_t log_id[LOG_ID_LEN];
	uint8_t pub[32];
	bool has_seed;
	uint8_t seed[LOG_KEY_LEN]; /* k0 */
};

/* What the writer holds, in the state file. */
struct logstate {
	uint8_t log_id[LOG_ID_LEN];
	uint64_t epoch;
	uint8_t mac_key[LOG_KEY_LEN]; /* k(epoch) */
	uint8_t sign_key[32];         /* Ed25519 private key */
};

void logkey_ratchet(const uint8_t k[LOG_KEY_LEN], uint8_t ret[LOG_KEY_LEN]);

/* Key files: "custos-log-key 1" then "name value" lines. Parses both the
 * full key file and the public one. 0 or -EINVAL with err set. */
int logkey_parse(const char *text, size_t len, struct logkeys *ret, char *err, size_t errlen) WUR;
void logkey_format(const struct logkeys *k, bool with_seed, struct buf *out);

/* The state file has a fixed size, so advancing the epoch overwrites the
 * old key where it lay. */
int logstate_parse(const char *text, size_t len, struct logstate *ret) WUR;
void logstate_format(const struct logstate *s, struct buf *out);

/* Ed25519 over "custos-checkpoint-v1" | log_id | seq | epoch | prev. */
int logkey_sign(const uint8_t sign_key[32], const uint8_t log_id[LOG_ID_LEN], uint64_t seq, uint64_t epoch,
                const uint8_t prev[LOG_HASH_LEN], uint8_t ret[LOG_SIG_LEN]) WUR;
bool logkey_verify_sig(const uint8_t pub[32], const uint8_t log_id[LOG_ID_LEN], uint64_t seq, uint64_t epoch,
                       const uint8_t prev[LOG_HASH_LEN], const uint8_t sig[LOG_SIG_LEN]);
/* Ed25519 over "custos-report-v1" | log_id | seq | digest: a report or
 * certificate (its manifest's SHA-256), bound to the log record at seq
 * that notes it. Checked with the log's public key. */
int logkey_sign_report(const uint8_t sign_key[32], const uint8_t log_id[LOG_ID_LEN], uint64_t seq,
                       const uint8_t digest[LOG_HASH_LEN], uint8_t ret[LOG_SIG_LEN]) WUR;
bool logkey_verify_report(const uint8_t pub[32], const uint8_t log_id[LOG_ID_LEN], uint64_t seq,
                          const uint8_t digest[LOG_HASH_LEN], const uint8_t sig[LOG_SIG_LEN]);
int logkey_public(const uint8_t sign_key[32], uint8_t ret_pub[32]) WUR;

#endif
