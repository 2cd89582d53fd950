/* colcrypt.h - encrypting a column's value with the keystore's keys. The
 * associated data binds the value to its table, column and subject:
 *
 *   context = "col1" NUL table NUL column NUL hex(subject ref)
 *
 * with an empty ref for a key made without a known subject. The subject
 * comes from the key (the keystore knows whose key it is), so a reader
 * needs only the ciphertext and where it was read from. */
#ifndef CUSTOS_COLCRYPT_H
#define CUSTOS_COLCRYPT_H

#include "buf.h"
#include "keystore.h"

/* Appends the ciphertext of value (n bytes) under key k. 0 or -errno. */
int cc_encrypt(const char *table, const char *column, const struct kc_key *k, const char *value, size_t n,
               struct buf *out) WUR;

/* Appends the plaintext of ct. 0; the fc_decrypt errors; -ENOKEY when the
 * key is destroyed (the value is erased); -EIO keystore unreachable. */
int cc_decrypt(struct keystore *ks, const char *table, const char *column, const char *ct, size_t n,
               struct buf *out) WUR;

/* The same with the key the ciphertext names already at hand. */
int cc_decrypt_with(const struct kc_key *k, const char *table, const char *column, const char *ct, size_t n,
                    struct buf *out) WUR;

/* A readable reason for a cc_* error. */
const char *cc_strerror(int err);

#endif
