/* sqlinfo_int.h - what sqlinfo.c (one statement) shares with sqlbody.c
 * (the statements inside code: DO blocks, functions and procedures),
 * sqlddl.c (what DDL makes), sqlwrites.c (the values written) and
 * sqlreading.c (changes of how statements read). */
#ifndef CUSTOS_SQLINFO_INT_H
#define CUSTOS_SQLINFO_INT_H

#include <jansson.h>

#include "sqlinfo.h"

/* sqlinfo.c: one parsed statement ({"InsertStmt": {...}}) into st. */
int sqi_classify(struct sqi_stmt *st, json_t *stmt, char node[64], int depth);
void sqi_stmt_free(struct sqi_stmt *s);
int sqi_add_named(struct sqi_stmt *st, const char *schema, const char *name, const char *an, bool write);
/* A FuncCall node's [schema.]name (of catalog.schema.name too); *name NULL without one. */
void sqi_call_name(json_t *call, const char **schema, const char **name);
/* A ColumnRef's column name, its number of fields and the one before the
 * name (its table's or alias's), or NULL. */
const char *sqi_col_name(json_t *columnref, size_t *ret_nfields, const char **ret_qual);
/* An expression without the casts around it. */
json_t *sqi_untyped(json_t *v);

/* sqlwrites.c: the values a statement of kind node (its body) writes. */
int sqi_writes(struct sqi_stmt *st, const char *node, json_t *body);

/* sqlddl.c: what DDL (node) makes or names anew, into st->made. */
int sqi_made(struct sqi_stmt *st, const char *node, json_t *body);
/* Adds a column given a default (see struct sqi_default): 0, -E2BIG over
 * SQI_MAX_CALLS, -ENOMEM. */
int sqi_default_add(struct sqi_stmt *st, const char *schema, const char *table, const char *column);

/* sqlbody.c: a DoStmt's body (depth: of DO blocks around it). */
int sqi_do_block(struct sqi_stmt *st, json_t *dostmt, int depth);

#endif
