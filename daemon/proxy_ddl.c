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

#define PD_MAX_MADE_TEXT "256" /* SQI_MAX_CALLS: sqi_name_add's bound */

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
		"CreatePolicyStmt",
		"AlterPolicyStmt",
		"DefineStmt",
		"CreateCastStmt",
		"CreateEventTrigStmt",
		"AlterEventTrigStmt", /* the code policies, operators, aggregates, casts, DDL run */
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

/* DDL that reads and writes no rows of the relations it names: it may use
 * a relation made in the same transaction (what it makes in turn is
 * followed as made). */
static bool rowless(const struct sqi_stmt *s)
{
	static const char *const nodes[] = {
		"GrantStmt",       "CommentStmt", "AlterOwnerStmt", "IndexStmt",
		"ViewStmt",        "RenameStmt",  "AlterTableStmt", "AlterObjectSchemaStmt",
		"DropStmt",        "RuleStmt",    "CreateStmt",     "CreateStatsStmt",
		"SecLabelStmt",    "LockStmt",    "CreateTrigStmt", "CreatePolicyStmt",
		"AlterPolicyStmt", "VacuumStmt",  "ReindexStmt",
	};

	return node_is(s, nodes, ARRAY_SIZE(nodes));
}

/* What a queued statement of this connection is. */
enum pending { P_CODE_DDL, P_MAKES, P_DDL };

/* Whether DDL of this connection waits to run or to commit: until the
 * catalog shows it, what it changes is not known. */
static bool queued(const struct pconn *c, enum pending what)
{
	for (size_t i = c->qhead; i < c->qn; i++) {
		const struct pstmt *st = c->q[i].st;
		if (st && (what == P_CODE_DDL ? st->code_ddl : what == P_MAKES ? st->nmade != 0 : st->ddl))
			return true;
	}
	return false;
}

static void refuse(struct pstmt *st, const char *why)
{
	snprintf(st->refusal, sizeof(st->refusal), "%s", why);
	st->refusal_code = PX_ERR_ANALYSE;
}

/* The code DDL of this connection that has not committed (SQI_CODE_*). */
static unsigned code_pending(const struct pconn *c)
{
	unsigned code = c->code_reload;

	for (size_t i = c->qhead; i < c->qn; i++)
		code |= c->q[i].st ? c->q[i].st->code_ddl : 0;
	return code;
}

/* Whether s runs code of the catalog's without naming it: what a read of
 * its tables (views, policies) or a write of them runs, the event
 * triggers (DDL), the implicit casts. */
static bool runs_unnamed(const struct catalog *cat, const struct sqi_stmt *s)
{
	bool ddl = sqi_fires_event_triggers(s);

	for (size_t j = 0; cat && j < cat->nruns; j++) {
		const struct cat_runs *r = &cat->runs[j];
		if (!*r->table &&
		    (((r->events & SQI_EV_ANY) && sqi_evaluates(s)) || (ddl && (r->events & SQI_EV_DDL))))
			return true;
		for (size_t i = 0; *r->table && i < s->ntables; i++)
			if ((r->events & (SQI_EV_READ | (s->tables[i].write ? s->events : 0))) &&
			    ppol_named(r->table, s->tables[i].schema, s->tables[i].name))
				return true;
	}
	return false;
}

/* Refuses what may run code while code DDL of the same connection is
 * pending: a write (triggers), a TRUNCATE, a DO block; a call of a
 * routine; after DDL of code run unnamed (or a routine replaced), any
 * operator or cast too, and what runs code unnamed. */
static void after_code_ddl(struct pconn *c, const struct sqi_stmt *s, struct pstmt *st)
{
	unsigned pending = *st->refusal || !c->px->pp->n ? 0 : code_pending(c);

	if (!pending) /* (the common case: checked first, each statement passes here) */
		return;
	bool acts =
	    s->calls_by_name || !strcmp(s->normalized, "TruncateStmt") || !strcmp(s->normalized, "DoStmt");
	for (size_t i = 0; i < s->ntables; i++)
		acts |= s->tables[i].write;
	bool unnamed = s->ncalls || ((pending & SQI_CODE_UNNAMED) && runs_unnamed(c->px->pp->cat, s));
	if (!((acts ? SQI_CODE_ANY : unnamed ? SQI_CODE_UNNAMED : 0) & pending))
		return;
	refuse(st, "Custos sees code the database runs (a routine, trigger, operator, cast, policy) once its "
	           "definition has committed: send this after the transaction that defines it");
}

/* pg_temp_N, a session's temporary schema, is also pg_temp. */
static bool temp_schema(const char *s)
{
	return !strncmp(s, "pg_temp", 7) &&
	       (!s[7] || (s[7] == '_' && s[8] && strspn(s + 8, "0123456789") == strlen(s + 8)));
}

static bool same_schema(const char *a, const char *b)
{
	return !strcmp(a, b) || (temp_schema(a) && temp_schema(b));
}

static bool is_made(const struct sqi_name *m, const char *schema, const char *name)
{
	if (!m->name)
		return schema && same_schema(m->schema, schema);
	return !strcmp(m->name, name) && (!m->schema || !schema || same_schema(m->schema, schema));
}

/* The name made in this transaction that a relation a statement names is. */
static const struct sqi_name *made_here(const struct pconn *c, const char *schema, const char *name)
{
	for (size_t i = 0; i < c->nmade; i++)
		if (is_made(&c->made[i], schema, name))
			return &c->made[i];
	return NULL;
}

bool pd_is_made(const struct pconn *c, const struct sqi_table *t)
{
	return made_here(c, t->schema, t->name) != NULL;
}

/* Whether s runs code of the database's own: a DO block, one of its
 * routines called, or fired by a write (triggers, defaults, checks). */
static bool runs_own_code(const struct ppol *pp, const struct sqi_stmt *s)
{
	if (!strcmp(s->normalized, "DoStmt") || !strcmp(s->normalized, "ExecuteStmt"))
		return true; /* EXECUTE: a statement prepared before, unseen now */
	for (size_t i = 0; pp->cat && i < s->ncalls; i++)
		for (size_t j = 0; j < pp->cat->nroutines; j++)
			if (ppol_named(pp->cat->routines[j].name, s->calls[i].schema, s->calls[i].name))
				return true;
	for (size_t i = 0; pp->cat && i < s->ntables; i++)
		for (size_t j = 0; s->tables[i].write && j < pp->cat->nruns; j++)
			if ((pp->cat->runs[j].events & s->events) &&
			    ppol_named(pp->cat->runs[j].table, s->tables[i].schema, s->tables[i].name))
				return true;
	return false;
}

/* Refuses a statement that uses a relation made in this transaction,
 * unless it is DDL that touches none of its rows, or that runs code that
 * might; returns whether it names one. */
static bool after_made(struct pconn *c, const struct sqi_stmt *s, struct pstmt *st)
{
	const struct sqi_name *m = NULL;

	for (size_t i = 0; !m && i < s->ntables; i++)
		m = made_here(c, s->tables[i].schema, s->tables[i].name);
	if (*st->refusal || (m && rowless(s)))
		return m != NULL;
	if (m) {
		snprintf(st->refusal, sizeof(st->refusal),
		         "Custos knows what %s%s%s%s is once the DDL of this transaction that made it has "
		         "committed: use it after COMMIT",
		         m->name ? "" : "the relations of schema ", m->schema ? m->schema : "",
		         m->name && m->schema ? "." : "", m->name ? m->name : "");
		st->refusal_code = PX_ERR_ANALYSE;
	} else if (c->nmade && runs_own_code(c->px->pp, s))
		refuse(st, "Custos cannot tell what code of the database does with relations DDL of this "
		           "transaction made, before it has committed: run this after COMMIT");
	return m != NULL;
}

/* Whether a column renamed or added is one the policy names (personal
 * data, a blind index, a subject's id) in the policy table t. */
static bool policy_column(const struct pp_table *t, const char *name)
{
	const struct pp_column *col = ppol_column_named(t, name);

	for (size_t i = 0; i < t->pt->ncols; i++)
		if (t->pt->cols[i].bidx_column && !strcmp(t->pt->cols[i].bidx_column, name))
			return true;
	return pol_column(t->pt, name) || (col && (col->pc || col->subject));
}

/* Whether what s makes counts: DDL over personal data, over relations
 * made before it, or renaming a schema (it may hold a policy table); not
 * a rename of a column the policy does not name. */
static bool makes(struct pconn *c, const struct sqi_stmt *s, const struct pstmt *st, bool uses_made)
{
	const struct ppol *pp = c->px->pp;
	bool schema = false;

	for (size_t i = 0; i < s->nmade; i++)
		schema |= !s->made[i].name;
	if (s->ncolumns && s->nmade == 1) { /* columns renamed or added, and nothing else */
		const struct pp_table *t = ppol_by_name(pp, s->made[0].schema, s->made[0].name);
		bool named = !t;
		for (size_t i = 0; t && i < s->ncolumns; i++)
			named |= policy_column(t, s->columns[i].name);
		if (!named)
			return false;
	}
	return s->nmade && (st->sensitive || uses_made || (schema && pp->n));
}

int pd_analysed(struct pconn *c, const struct sqi_stmt *s, struct pstmt *st)
{
	st->ddl = is_ddl(s) || (!strcmp(s->normalized, "DoStmt") && s->body_ddl) || s->tx_prepared_end;
	after_code_ddl(c, s, st);
	st->code_ddl = s->code_ddl;
	bool uses_made = after_made(c, s, st);
	if (!*st->refusal && s->tx_prepare && (c->nmade || c->ddl_done || c->code_reload || queued(c, P_DDL)))
		refuse(st, "Custos reads the catalog again when DDL commits in its session: commit a "
		           "transaction with DDL rather than prepare it");
	if (*st->refusal || !makes(c, s, st, uses_made))
		return 0;
	if (!strcmp(s->normalized, "DoStmt")) { /* its statements cannot be told apart */
		refuse(st,
		       "Custos cannot follow a relation a DO block makes over personal data: make it with a "
		       "statement of its own");
		return 0;
	}
	for (size_t i = 0; i < s->nmade; i++)
		if (sqi_name_add(&st->made, &st->nmade, s->made[i].schema, s->made[i].name))
			return -ENOMEM;
	int err = pd_made(c, st);
	if (err == -E2BIG)
		refuse(st, "Custos follows at most " PD_MAX_MADE_TEXT " relations made over personal data in "
		           "one transaction: commit some first");
	return err == -E2BIG ? 0 : err;
}

int pd_keep_names(struct pstmt *st, const struct sqi_stmt *s)
{
	for (size_t i = 0; i < s->ntables; i++)
		if (sqi_name_add(&st->names, &st->nnames, s->tables[i].schema, s->tables[i].name))
			return -ENOMEM; /* -E2BIG: SQI_MAX_TABLES is SQI_MAX_CALLS */
	return 0;
}

/* Whether two loads' entries of a policy table encrypt the same columns
 * (by attribute number), with the same defaults, and write it alike. */
static bool same_columns(const struct pp_table *a, const struct pp_table *b)
{
	if (!a->also != !b->also)
		return false;
	for (int16_t k = 0; k < a->ncols || k < b->ncols; k++) {
		const struct pp_column *x = k < a->ncols ? &a->cols[k] : NULL,
		                       *y = k < b->ncols ? &b->cols[k] : NULL;
		bool ex = x && x->pc && x->pc->encrypt, ey = y && y->pc && y->pc->encrypt;
		if (ex != ey || (ex && x->defaulted != y->defaulted))
			return false;
	}
	return true;
}

/* Whether a name a statement uses stands for the same policy table (or a
 * view over the same ones), encrypted alike, under policies a and b. */
static bool resolves_same(const struct ppol *a, const struct ppol *b, const char *schema, const char *name)
{
	const struct pp_table *ta = ppol_by_name(a, schema, name), *tb = ppol_by_name(b, schema, name);
	const struct pp_table *va[8], *vb[8];
	size_t na = ppol_view_tables(a, schema, name, va, ARRAY_SIZE(va));
	size_t nb = ppol_view_tables(b, schema, name, vb, ARRAY_SIZE(vb));

	if (!ta != !tb || (ta && (strcmp(ta->pt->name, tb->pt->name) || !same_columns(ta, tb))) || na != nb)
		return false;
	for (size_t i = 0; i < na && i < ARRAY_SIZE(va); i++)
		if (strcmp(va[i]->pt->name, vb[i]->pt->name))
			return false;
	return true;
}

/* Whether n is a name st itself makes (DDL prepared as a named statement). */
static bool own_name(const struct pstmt *st, const struct sqi_name *n)
{
	for (size_t i = 0; i < st->nmade; i++)
		if (is_made(&st->made[i], n->schema, n->name))
			return true;
	return false;
}

const char *pd_stale(const struct pconn *c, const struct pstmt *st)
{
	for (size_t i = 0; st && i < st->nnames; i++) {
		const struct sqi_name *n = &st->names[i];
		if (made_here(c, n->schema, n->name) && !own_name(st, n))
			return "this statement was prepared before DDL of its transaction made or renamed a "
			       "relation it names: prepare it again after COMMIT";
		if (st->pp != c->px->pp && !resolves_same(st->pp, c->px->pp, n->schema, n->name))
			return "this statement was prepared before DDL changed what a relation it names "
			       "is (a view, a policy table, renamed, an encrypted column with a default): "
			       "prepare it again";
	}
	return NULL;
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
	if (!queued(c, P_MAKES))
		pd_forget_made(c, 0);
	/* routine or trigger DDL: the catalog is read now, the loop waiting;
	 * other DDL: in the background, this session's next statements waiting */
	bool now = c->code_reload && !queued(c, P_CODE_DDL);
	if (c->ddl_done && !now)
		c->catalog_after = px_reload_after_now(c->px);
	c->ddl_done = false;
	if (now && !px_load_policy(c->px))
		c->code_reload = 0;
}

void pd_free(struct pconn *c)
{
	sqi_names_free(c->made, c->nmade);
	c->made = NULL;
	c->nmade = 0;
}
