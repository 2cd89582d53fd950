/* fieldcrypt.h - AES-256-GCM field encryption in Custos's text-safe format.
 *
 *   "cx1." base64( key_id[16] | nonce[12] | ciphertext[n] | tag[16] )
 *
 * The associated data is "custos-fc1" NUL key_id context, where context
 * binds the value to where it lives (table, column, subject). The format is
 * documented byte by byte in SECURITY.md. */
#ifndef CUSTOS_FIELDCRYPT_H
#define CUSTOS_FIELDCRYPT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "util.h"

#define FC_KEY_LEN 32
#define FC_KEYID_LEN 16
#define FC_NONCE_LEN 12
#define FC_TAG_LEN 16
#define FC_PREFIX "cx1."
#define FC_PREFIX_LEN 4
#define FC_MAX_PLAINTEXT (1u << 24)

/* A data key and its id. Allocate in secure memory (secmem.h). */
struct fc_key {
	uint8_t id[FC_KEYID_LEN];
	uint8_t key[FC_KEY_LEN];
};

/* Appends the ciphertext text to out. 0 or a negative errno. */
int fc_encrypt(const struct fc_key *k, const char *ctx, size_t ctxlen, const void *pt, size_t ptlen,
               struct buf *out) WUR;

/* Reads the key id of a ciphertext. 0, -EINVAL (not a Custos ciphertext)
 * or -EPROTONOSUPPORT (another version). */
int fc_key_id(const char *ct, size_t len, uint8_t ret_id[FC_KEYID_LEN]) WUR;

/* Appends the plaintext to out. 0; -EINVAL malformed; -EPROTONOSUPPORT
 * other version; -ENOKEY the key is not the one named; -EBADMSG altered,
 * wrong key or wrong context. Nothing is appended on failure. */
int fc_decrypt(const struct fc_key *k, const char *ctx, size_t ctxlen, const char *ct, size_t len,
               struct buf *out) WUR;

/* The length of the ciphertext text of a ptlen-byte value. */
static inline size_t fc_text_len(size_t ptlen)
{
	return FC_PREFIX_LEN + 4 * ((FC_KEYID_LEN + FC_NONCE_LEN + ptlen + FC_TAG_LEN + 2) / 3);
}

/* Key wrapping for the keystore: a 32-byte key sealed under a key-
 * encryption key with AES-256-GCM, bound to ad (which names where the
 * wrapped key belongs). Wrapped form: version 0x01 | nonce[12] |
 * ciphertext[32] | tag[16]. fc_unwrap returns -EINVAL (wrong length),
 * -EPROTONOSUPPORT or -EBADMSG (wrong key, altered, or another place). */
#define FC_WRAP_VERSION 0x01
#define FC_WRAP_LEN (1 + FC_NONCE_LEN + FC_KEY_LEN + FC_TAG_LEN)
int fc_wrap(const uint8_t kek[FC_KEY_LEN], const void *ad, size_t adlen, const uint8_t key[FC_KEY_LEN],
            uint8_t out[FC_WRAP_LEN]) WUR;
int fc_unwrap(const uint8_t kek[FC_KEY_LEN], const void *ad, size_t adlen, const uint8_t *in, size_t len,
              uint8_t key[FC_KEY_LEN]) WUR;

/* A readable reason for an fc_* error. */
const char *fc_strerror(int err);

#endif
