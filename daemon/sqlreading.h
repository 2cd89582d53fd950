/* sqlreading.h - statements that change how PostgreSQL reads the ones
 * after them: a SET of standard_conforming_strings, backslash_quote or
 * client_encoding, and set_config() of one. PostgreSQL reports the change
 * only at the end of the statement, by when a pipeline's next statements
 * may already be read under it; the proxy refuses such statements. */
#ifndef CUSTOS_SQLREADING_H
#define CUSTOS_SQLREADING_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Whether sql (a text of one or more statements) has such a SET in any
 * spelling, or calls set_config() with such a setting or one whose name
 * is not a constant; also when it does not parse. Parses sql: for texts
 * whose analysis shows a SET or a set_config() call, not for every one. */
bool sqr_changes_reading(const char *sql);

/* Whether sql, naming such a setting, leaves how statements read alone:
 * each of its statements a SHOW, a SET of standard_conforming_strings to
 * on or of the client encoding to UTF8 (what applications' drivers send
 * as they connect). */
bool sqr_keeps_reading(const char *sql);

/* The same, for one statement already parsed (a node of libpg_query's
 * JSON parse tree): a routine's, a DO block's; but a set_config() whose
 * setting is not a constant does not count (set_config(name, value) in a
 * helper for an application's own settings): what it may change is seen
 * to (sqr_reads_alike, and the session refused once PostgreSQL reports a
 * change). */
bool sqr_node_changes_reading(json_t *node);

/* Whether PostgreSQL reads the text sql (len bytes) alike whatever
 * standard_conforming_strings and backslash_quote are, and with
 * encodings, whatever the client encoding is (one of those PostgreSQL
 * accepts from clients): its strings, quoted names and comments begin
 * and end in the same places. For a statement sent before PostgreSQL has
 * reported what the ones before it may have changed (a pipeline), and
 * for code PostgreSQL reads when it runs it (a routine's body, a DO
 * block's: in the server's encoding): it then reads as Custos read it, or
 * not at all. Not alike either: a byte outside ASCII before an ASCII one
 * other than a letter, a digit or _ (with encodings), a $ after a number
 * or a parameter that may start a dollar quote. */
bool sqr_reads_alike(const char *sql, size_t len, bool encodings);

#endif
