/* sqlscan.h - the literal tokens of plain SQL texts, found without a
 * round through libpg_query's scanner (which packs every token of a text
 * into protobuf for its caller to unpack: most of the time a cached
 * statement costs). It takes only texts made of what most applications
 * send: identifiers, quoted identifiers, keywords, punctuation, integers
 * of up to nine digits, standard '...' strings and $n parameters. Any
 * other construct (E'', U&'', $$ quotes, comments, decimals, strings
 * continued across lines, bytes outside ASCII between tokens) is left
 * to libpg_query; on what it takes, it finds exactly the literals
 * libpg_query's scanner finds (tests/fuzz/fuzz_sqlscan.c checks that). */
#ifndef CUSTOS_SQLSCAN_H
#define CUSTOS_SQLSCAN_H

#include <stddef.h>

enum sqs_token { SQS_ICONST, SQS_SCONST }; /* libpg_query's ICONST and SCONST */

/* Called for each literal, in order: 0 to go on, <0 to stop with it. */
typedef int (*sqs_literal_fn)(void *arg, size_t start, size_t end, enum sqs_token token);

/* 1 when sql was scanned (each literal given to fn), 0 when it holds
 * something left to libpg_query (fn may have seen some literals: start
 * again), or fn's error. */
int sqs_scan(const char *sql, sqs_literal_fn fn, void *arg);

#endif
