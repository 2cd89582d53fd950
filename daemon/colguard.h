/* colguard.h - the database's own guard on an encrypted column: a CHECK
 * constraint, custos_encrypted_<column>, under which PostgreSQL stores in
 * the column only NULL, a Custos ciphertext, or what erasure writes into a
 * NOT NULL column it anonymises (X's):
 *
 *   CHECK (email ~ '^(cx1[.][A-Za-z0-9+/]{40,}={0,2}|X+)$')
 *
 * The proxy encrypts what it sees written. The guard refuses plaintext
 * however else it comes: a direct connection, a table renamed or a column
 * added before the proxy read the catalog again, a table inheriting a
 * policy table, a default set by a routine. PostgreSQL keeps the
 * constraint through renames and gives it to inheriting tables and
 * partitions, so what the proxy does not follow fails closed.
 * `custosctl encrypt-existing` puts it on once the column is encrypted. */
#ifndef CUSTOS_COLGUARD_H
#define CUSTOS_COLGUARD_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"
#include "policy.h"
#include "util.h"

#define CG_PREFIX "custos_encrypted_"

/* What a Custos ciphertext's text (fieldcrypt.h) looks like, in
 * PostgreSQL's regular expressions (no backslash: the same in any quoting);
 * and, as an SQL literal, what a guarded column holds: a ciphertext, or
 * X's alone, what erasure anonymises a NOT NULL column's ciphertext to (so
 * a value of X's alone is taken as anonymised, never as plaintext to
 * encrypt; an empty string is plaintext). */
#define CG_CIPHERTEXT "cx1[.][A-Za-z0-9+/]{40,}={0,2}"
#define CG_GUARDED "'^(" CG_CIPHERTEXT "|X+)$'"

/* Guards column of table (schema.table): adds the constraint NOT VALID
 * when the column has none, then has PostgreSQL check every row already
 * there. *state says where it stands after. 0; or with err saying why (no
 * value is quoted): -EBADMSG rows already there hold something else (the
 * guard holds for new rows), -EAGAIN the table's lock was not had in time,
 * -EIO. */
int cg_guard(PGconn *db, const char *table, const char *column, enum cat_guard *state, char *err,
             size_t errlen) WUR;

/* The number of the policy's encrypted columns that the catalog shows
 * unguarded (columns the database lacks are not counted); when there are
 * some, a sentence naming them (the first few) is appended to say. */
size_t cg_unguarded(const struct policy *p, const struct catalog *cat, struct buf *say);

#endif
