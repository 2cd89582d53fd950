/* proxy_ddl.c - what a session's DDL changes. The proxy learns what a
 * relation reads, and what code the database runs, from the catalog,
 * which shows DDL only once it has committed. So after a transaction with
 * DDL ends, the catalog is read again (the session's next statements wait
 * for it; after routine or trigger DDL the event loop reads it at once),
 * and until then, in the same transaction, query string or pipeline, what
 * depends on the DDL is refused: calls and writes after routine or
 * trigger DDL; statements using a relation that DDL over personal data
 * made or named anew (a view, a child table, a renamed one). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_conn.h"

static bool node_is(const struct sqi_stmt *s, const char *const *nodes, size_t n)
{
	for (size_t i = 0; s->kind == SQI_OTHER && i < n; i++)
		if (!strcmp(s->normalized, nodes[i]))
			return true;
	return false;
}

/* DDL that may change what the catalog says. */
static bool is_ddl(const struct sqi_stmt *s)
{
	static const char *const nodes[] = {
		"CreateStmt",
		"AlterTableStmt",
		"DropStmt",
		"RenameStmt",
		"CreateTableAsStmt",
		"ViewStmt",
		"RuleStmt",
		"CreateTrigStmt", /* what a view reads */
		"CreateFunctionStmt",
		"AlterFunctionStmt", /* what a routine runs */
		"CreateExtensionStmt",
		"AlterExtensionStmt", /* which routines are an extension's */
		"CreateSchemaStmt",
		"AlterObjectSchemaStmt", /* where a table or view is */
		"CreateRoleStmt",
		"AlterRoleStmt",
		"DropRoleStmt",
		"GrantRoleStmt", /* who reads plaintext */
	};

	return node_is(s, nodes, ARRAY_SIZE(nodes));
}

/* DDL that changes what code the database runs on a statement's behalf. */
static bool is_code_ddl(const struct sqi_stmt *s)
{
	static const char *const nodes[] = { "CreateFunctionStmt", "AlterFunctionStmt",
		                             "CreateTrigStmt",     "CreateExtensionStmt",
		                             "AlterExtensionStmt", "AlterExtensionContentsStmt" };

	return node_is(s, nodes, ARRAY_SIZE(nodes));
}

/* DDL that reads and writes no rows of the relations it names: it may use
 * a relation made in the same transaction (what it makes in turn is
 * followed as made). */
static bool rowless(const struct sqi_stmt *s)
{
	static const char *const nodes[] = {
		"GrantStmt",  "CommentStmt",     "AlterOwnerStmt",        "IndexStmt", "ViewStmt",
		"RenameStmt", "AlterTableStmt",  "AlterObjectSchemaStmt", "DropStmt",  "RuleStmt",
		"CreateStmt", "CreateStatsStmt", "SecLabelStmt",          "LockStmt",  "CreateTrigStmt"
	};

	return node_is(s, nodes, ARRAY_SIZE(nodes));
}

/* Whether routine or trigger DDL of this connection waits to run or to
 * commit: until the catalog shows it, what the routines do is not known. */
static bool queued(const struct pconn *c, bool code)
{
	for (size_t i = c->qhead; i < c->qn; i++)
		if (c->q[i].st && (code ? c->q[i].st->code_ddl : c->q[i].st->nmade))
			return true;
	return false;
}

/* Refuses what may run code while routine or trigger DDL of the same
 * connection is pending: a call, a write (triggers), a DO block. */
static void after_code_ddl(struct pconn *c, const struct sqi_stmt *s, struct pstmt *st)
{
	bool runs = s->ncalls || !strcmp(s->normalized, "TruncateStmt") || !strcmp(s->normalized, "DoStmt");

	for (size_t i = 0; i < s->ntables; i++)
		runs |= s->tables[i].write;
	if (*st->refusal || !runs || !c->px->pp->n || !(c->code_reload || queued(c, true)))
		return;
	snprintf(st->refusal, sizeof(st->refusal),
	         "Custos sees the code of a routine or trigger once its definition has committed: send this "
	         "after the transaction that defines it");
	st->refusal_code = PX_ERR_ANALYSE;
}

/* The name made in this transaction that a statement's table is. */
static const struct sqi_name *made_here(const struct pconn *c, const struct sqi_table *t)
{
	for (size_t i = 0; i < c->nmade; i++) {
		const struct sqi_name *m = &c->made[i];
		if (m->name ? !strcmp(m->name, t->name) &&
		                  (!m->schema || !t->schema || !strcmp(m->schema, t->schema))
		            : t->schema && !strcmp(m->schema, t->schema))
			return m;
	}
	return NULL;
}

/* Refuses a statement that uses a relation made in this transaction, unless
 * it is DDL that touches none of its rows; returns whether it names one. */
static bool after_made(struct pconn *c, const struct sqi_stmt *s, struct pstmt *st)
{
	const struct sqi_name *m = NULL;

	for (size_t i = 0; !m && i < s->ntables; i++)
		m = made_here(c, &s->tables[i]);
	if (!m || *st->refusal || rowless(s))
		return m != NULL;
	snprintf(st->refusal, sizeof(st->refusal),
	         "Custos knows what %s%s%s%s is once the DDL of this transaction that made it has committed: "
	         "use it after COMMIT",
	         m->name ? "" : "the relations of schema ", m->schema ? m->schema : "",
	         m->name && m->schema ? "." : "", m->name ? m->name : "");
	st->refusal_code = PX_ERR_ANALYSE;
	return true;
}

int pd_analysed(struct pconn *c, const struct sqi_stmt *s, struct pstmt *st)
{
	bool schema = false; /* a schema renamed: it may hold a policy table */

	st->ddl = is_ddl(s);
	after_code_ddl(c, s, st);
	st->code_ddl = is_code_ddl(s);
	bool uses_made = after_made(c, s, st);
	for (size_t i = 0; i < s->nmade; i++)
		schema |= !s->made[i].name;
	if (!s->nmade || *st->refusal || !(st->sensitive || uses_made || (schema && c->px->pp->n)))
		return 0;
	for (size_t i = 0; i < s->nmade; i++)
		if (sqi_name_add(&st->made, &st->nmade, s->made[i].schema, s->made[i].name))
			return -ENOMEM;
	return pd_made(c, st);
}

int pd_made(struct pconn *c, const struct pstmt *st)
{
	for (size_t i = 0; st && i < st->nmade; i++) {
		int err = sqi_name_add(&c->made, &c->nmade, st->made[i].schema, st->made[i].name);
		if (err)
			return err;
	}
	return 0;
}

void pd_forget_made(struct pconn *c, size_t n)
{
	if (n >= c->nmade)
		return;
	for (size_t i = n; i < c->nmade; i++) {
		free(c->made[i].schema);
		free(c->made[i].name);
	}
	c->nmade = n;
}

void pd_tx_ended(struct pconn *c)
{
	if (c->txstatus != 'I')
		return;
	if (!queued(c, false))
		pd_forget_made(c, 0);
	/* routine or trigger DDL: the catalog is read now, the loop waiting;
	 * other DDL: in the background, this session's next statements waiting */
	bool now = c->code_reload && !queued(c, true);
	if (c->ddl_done && !now)
		c->catalog_after = px_reload_after_now(c->px);
	c->ddl_done = false;
	if (now && !px_load_policy(c->px))
		c->code_reload = false;
}

void pd_free(struct pconn *c)
{
	sqi_names_free(c->made, c->nmade);
	c->made = NULL;
	c->nmade = 0;
}
