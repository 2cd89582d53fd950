/* sqlreading.h - statements that change how PostgreSQL reads the ones
 * after them: a SET of standard_conforming_strings, backslash_quote or
 * client_encoding, and set_config() of one. PostgreSQL reports the change
 * only at the end of the statement, by when a pipeline's next statements
 * may already be read under it; the proxy refuses such statements. */
#ifndef CUSTOS_SQLREADING_H
#define CUSTOS_SQLREADING_H

#include <jansson.h>
#include <stdbool.h>

/* Whether sql (a text of one or more statements) has such a SET in any
 * spelling, or calls set_config() with such a setting or one whose name
 * is not a constant; also when it does not parse. Parses sql: for texts
 * whose analysis shows a SET or a set_config() call, not for every one. */
bool sqr_changes_reading(const char *sql);

/* The same, for one statement already parsed (a node of libpg_query's
 * JSON parse tree): a routine's, a DO block's. */
bool sqr_node_changes_reading(json_t *node);

#endif
