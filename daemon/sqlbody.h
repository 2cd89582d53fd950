/* sqlbody.h - the SQL inside code the database runs: a DO block's body, a
 * function's or a procedure's. PL/pgSQL is parsed with libpg_query
 * (PostgreSQL's own PL/pgSQL parser) and each of its statements and
 * expressions analysed as sqlinfo.c analyses a statement; the statements
 * of an SQL routine likewise. DO blocks come through sqi_analyse (their
 * tables become the DoStmt's); routines come from the catalog, for the
 * proxy to know what a statement calling them touches. */
#ifndef CUSTOS_SQLBODY_H
#define CUSTOS_SQLBODY_H

#include <stdbool.h>
#include <stddef.h>

#include "sqlinfo.h"
#include "util.h"

/* Columns a routine writes: all of them, or those named. */
struct sqb_cols {
	bool all;
	char **names;
	size_t n;
};

/* A table a routine's statements name. */
struct sqb_table {
	char *schema; /* NULL when the body did not name one */
	char *name;
	bool write;      /* some statement writes it (INSERT, UPDATE, DELETE, MERGE, COPY FROM, TRUNCATE) */
	unsigned events; /* SQI_EV_*: how */
	/* the columns its writes write (all: no column list, MERGE, a writing
	 * CTE; none: DELETE only), and those of them its UPDATEs and upserts'
	 * DO UPDATE SET write (an INSERT's columns do not move a row) */
	struct sqb_cols cols, updated;
};

struct sqb_routine {
	struct sqb_table *tables;
	size_t ntables;
	struct sqi_name *calls; /* the routines its statements call */
	size_t ncalls;
	unsigned hidden; /* SQI_HIDDEN_* */
	bool ddl;        /* it runs DDL, which fires the event triggers */
	/* A PL/pgSQL trigger function's assignments to NEW, the row a write
	 * stores (NEW.id := ..., SELECT ... INTO NEW.id, ...; all: NEW whole). */
	struct sqb_cols assigns;
	/* Its fields it only takes back from OLD (NEW.id := OLD.id): on an
	 * UPDATE the row's own values, nothing new; on an INSERT, NULL. Not
	 * listed in assigns unless stored otherwise too. Empty when the
	 * function stores into OLD, or a variable of its hides OLD. */
	struct sqb_cols keeps;
};

/* Analyses a routine from its definition: one CREATE FUNCTION or
 * CREATE PROCEDURE, as pg_get_functiondef() gives it, or a rule's CREATE
 * RULE, as pg_get_ruledef() does (its actions are its statements). 0 (out then holds
 * what it found; sqb_routine_free frees it, on failure too); -EINVAL when
 * def is not one such statement; -ENOMEM. */
int sqb_routine(const char *def, struct sqb_routine *out) WUR;
void sqb_routine_free(struct sqb_routine *r);

#endif
