/* pgencoding.h - a session's client encoding, for the values the proxy
 * encrypts and decrypts itself. PostgreSQL converts text between the
 * client's encoding and the database's; a value the proxy encrypts never
 * reaches that conversion, so the proxy does it: the plaintext inside a
 * ciphertext is always UTF-8 (what a client in any encoding reads back
 * as its own, and what access reports read), converted from the client's
 * encoding on the way in and back into it on the way out. */
#ifndef CUSTOS_PGENCODING_H
#define CUSTOS_PGENCODING_H

#include <iconv.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct pg_encoding {
	bool utf8;        /* UTF8 or SQL_ASCII: values are taken as UTF-8, and checked */
	iconv_t to, from; /* otherwise: to UTF-8 and from it (iconv's; (iconv_t)-1 when none) */
	bool unknown;     /* an encoding iconv has no conversion for: values are refused */
};

/* A session's encoding before it says: UTF-8. */
void pge_init(struct pg_encoding *e);
/* The encoding named (client_encoding's value, as PostgreSQL spells it). */
void pge_set(struct pg_encoding *e, const char *name);
void pge_free(struct pg_encoding *e);

/* The UTF-8 of v[0..n) in the client's encoding: *ret points to v itself
 * when no conversion is needed, else into conv (a secret buffer). 0;
 * -EILSEQ when v is not valid in the client's encoding (or not UTF-8, or
 * holds a NUL), or the encoding has no conversion here; -ENOMEM. */
int pge_to_utf8(const struct pg_encoding *e, const char *v, size_t n, struct buf *conv, const char **ret,
                size_t *ret_len);

/* Converts out[from..] (UTF-8) into the client's encoding, in place. 0;
 * -ERANGE when a character has no equivalent there (PostgreSQL's 22P05),
 * or the encoding has no conversion here; -ENOMEM. */
int pge_from_utf8(const struct pg_encoding *e, struct buf *out, size_t from);

#endif
