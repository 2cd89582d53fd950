/* sqlbody.h - the SQL inside a DO block: its PL/pgSQL body parsed with
 * libpg_query (PostgreSQL's own PL/pgSQL parser), each statement and
 * expression handed over as SQL text, so that sqlinfo.c finds the tables
 * a DO block reads and writes as it finds a statement's. */
#ifndef CUSTOS_SQLBODY_H
#define CUSTOS_SQLBODY_H

#include <jansson.h>

/* Called with each SQL text of the body: 0 to go on, -EINVAL when the
 * text does not parse (an expression is then given again as a SELECT of
 * it), another <0 to stop with it. */
typedef int (*sqb_fn)(void *arg, const char *sql);

/* Walks a DoStmt node's body: 0 when fn saw all of it; 1 when some of it
 * cannot be seen (another language, dynamic SQL, a body or expression
 * that does not parse), fn having seen the rest; <0 fn's error or
 * -ENOMEM. */
int sqb_do_block(json_t *dostmt, sqb_fn fn, void *arg);

#endif
