/* blindidx.h - blind indexes: a keyed HMAC of a normalised value, truncated,
 * stored beside an encrypted column so equality lookups work on ciphertext.
 *
 *   column key  = HMAC-SHA256(index key, "custos-bidx1" NUL table NUL column)
 *   index value = lower-case hex of the first n bytes of
 *                 HMAC-SHA256(column key, normalise(value))
 *
 * The length n trades lookups against leakage: SECURITY.md explains it. */
#ifndef CUSTOS_BLINDIDX_H
#define CUSTOS_BLINDIDX_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "util.h"

#define BIDX_KEY_LEN 32
#define BIDX_MAX_BYTES 32

enum bidx_norm { BIDX_NONE, BIDX_LOWER, BIDX_TRIM, BIDX_LOWER_TRIM, BIDX_DIGITS };

/* Their names in policies, indexed by enum bidx_norm. */
extern const char *const bidx_norm_names[BIDX_DIGITS + 1];
/* The enum for a name; -1 when unknown. */
int bidx_norm_from_name(const char *name);

/* Derives the key of one column's index. */
void bidx_column_key(const uint8_t index_key[BIDX_KEY_LEN], const char *table, const char *column,
                     uint8_t ret[BIDX_KEY_LEN]);

/* The subject ref of a data subject: HMAC-SHA256(index key, "type:id").
 * The audit log and the keystore name subjects only by it. 0 or -ENOMEM. */
int bidx_subject_ref(const uint8_t index_key[BIDX_KEY_LEN], const char *type, const char *id,
                     uint8_t ret[32]) WUR;

/* Appends the index value (2 * bytes hex digits) of value to out.
 * 0, or -EINVAL for bytes outside 1..32, -ENOMEM. */
int bidx_compute(const uint8_t column_key[BIDX_KEY_LEN], enum bidx_norm norm, unsigned bytes,
                 const char *value, size_t len, struct buf *out) WUR;

#endif
