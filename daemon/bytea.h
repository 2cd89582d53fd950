/* bytea.h - bytea's text forms, as PostgreSQL reads and writes them
 * (varlena.c, byteain and byteaout): hex, `\x` then pairs of hex digits
 * (whitespace between pairs), and the escape form, where `\\` is a
 * backslash, `\ooo` an octal byte and every other byte itself. An
 * encrypted bytea column holds the bytes of the value's ciphertext text. */
#ifndef CUSTOS_BYTEA_H
#define CUSTOS_BYTEA_H

#include <stddef.h>

#include "buf.h"

/* Appends the bytes s[0..n) stands for. -EINVAL when it is no bytea text. */
int by_decode(const char *s, size_t n, struct buf *out);
/* Appends p[0..n) in the hex form. */
void by_encode(const char *p, size_t n, struct buf *out);

#endif
