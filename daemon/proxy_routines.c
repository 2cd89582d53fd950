/* proxy_routines.c - what the database runs on a statement's behalf: the
 * functions and procedures it calls; the triggers, column defaults and
 * checks a write to a table runs; the writes a foreign key
 * makes in the tables that reference it. Each routine's definition is
 * analysed once (sqlbody.c); what it reaches is what its own statements
 * name and what the routines they call and the writes they make run
 * reach in turn, to a fixed point over a graph whose nodes are the
 * routines and the foreign keys. Only routines that reach a
 * policy table, or whose code cannot be seen, are kept, and the tables
 * whose writes lead to one: a statement's calls and writes are looked up
 * among those few. */
#define _GNU_SOURCE
#include "proxy_policy.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_encrypt.h"
#include "sqlbody.h"
#include "sqlinfo.h"

/* A routine of the catalog, or a foreign key, while its reach
 * is worked out. */
struct node {
	const struct cat_routine *cr; /* NULL: a foreign key's */
	const struct cat_fk *fk;
	struct sqb_routine *a; /* a routine's analysis (in ppol.analyses) */
	uint8_t *t;            /* PPR_* by policy table */
	const char *hidden, *enc;
	size_t *edges; /* the nodes it runs (indexes) */
	size_t nedges;
};

/* A write to table (one of events) runs node. */
struct link {
	const char *table; /* schema.name, the catalog's */
	size_t node;
	unsigned events; /* SQI_EV_*: one, for a trigger's or a rule's */
	bool rule;       /* a rule's: the statement's own write runs it, COPY's does not */
	bool before_row; /* a BEFORE ROW trigger's: the row it returns is stored */
	/* what the trigger stores as the row of this write adds to the reach
	 * (assigns_new): PPR_* by policy table (NULL: nothing) */
	uint8_t *adds;
};

struct build {
	struct ppol *pp;
	struct node *nodes;
	size_t nroutines, nnodes; /* routines first, then foreign keys */
	struct link *links;
	size_t nlinks;
};

/* Adds what a write through link l stores itself to a reach. */
static void take_link(const struct build *b, uint8_t *t, const char **enc, const struct link *l)
{
	for (size_t i = 0; l->adds && i < b->pp->n; i++) {
		t[i] |= l->adds[i];
		if ((l->adds[i] & PPR_ENC) && !*enc)
			*enc = b->nodes[l->node].cr->label;
	}
}

static bool encrypted(const struct pp_table *t, const char *col)
{
	for (int16_t i = 0; i < t->ncols; i++)
		if (t->cols[i].pc && t->cols[i].pc->encrypt && (!col || !strcmp(t->cols[i].name, col)))
			return true;
	return false;
}

static int add_edge(struct node *n, size_t to)
{
	for (size_t i = 0; i < n->nedges; i++)
		if (n->edges[i] == to)
			return 0;
	size_t *v = realloc(n->edges, (n->nedges + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	n->edges = v;
	n->edges[n->nedges++] = to;
	return 0;
}

/* Edges to the routines named [schema.]name (every overload). */
static int edges_named(const struct build *b, struct node *n, const char *schema, const char *name)
{
	int err = 0;

	for (size_t j = 0; !err && j < b->nroutines; j++)
		if (ppol_named(b->nodes[j].cr->name, schema, name))
			err = add_edge(n, j);
	return err;
}

static size_t by_oid(const struct catalog *cat, uint32_t oid, bool rule)
{
	for (size_t j = 0; j < cat->nroutines; j++)
		if (cat->routines[j].oid == oid && cat->routines[j].rule == rule)
			return j;
	return SIZE_MAX;
}

/* Edges to what a write (one of events) to [schema.]name runs. */
static int edges_run(const struct build *b, struct node *n, const char *schema, const char *name,
                     unsigned events)
{
	int err = 0;

	for (size_t i = 0; !err && i < b->nlinks; i++)
		if ((b->links[i].events & events) && ppol_named(b->links[i].table, schema, name)) {
			err = add_edge(n, b->links[i].node);
			take_link(b, n->t, &n->enc, &b->links[i]);
		}
	return err;
}

/* The same, for the catalog's schema.name. */
static int edges_run_full(const struct build *b, struct node *n, const char *full, unsigned events)
{
	int err = 0;

	for (size_t i = 0; !err && i < b->nlinks; i++)
		if ((b->links[i].events & events) && !strcmp(b->links[i].table, full)) {
			err = add_edge(n, b->links[i].node);
			take_link(b, n->t, &n->enc, &b->links[i]);
		}
	return err;
}

/* A table a routine's statements name: the policy tables it stands for. */
static int reach_table(const struct build *b, struct node *n, const struct sqb_table *t)
{
	const struct ppol *pp = b->pp;
	const struct pp_table *ts[8];
	const struct pp_table *pt = ppol_by_name(pp, t->schema, t->name);
	size_t k = pt ? (ts[0] = pt, 1) : ppol_view_tables(pp, t->schema, t->name, ts, ARRAY_SIZE(ts));

	if (k > ARRAY_SIZE(ts))
		n->hidden = n->cr->label; /* more than it can follow */
	for (size_t i = 0; i < k && i < ARRAY_SIZE(ts); i++) {
		bool enc = t->write && (t->cols.all || !pt) && encrypted(ts[i], NULL);
		for (size_t c = 0; t->write && !enc && c < t->cols.n; c++)
			enc = encrypted(ts[i], t->cols.names[c]);
		bool update = t->write && (t->events & SQI_EV_UPDATE) != 0;
		bool move = update && (t->updated.all || !pt) && pxm_sets_subject(pp, ts[i], NULL);
		for (size_t c = 0; update && !move && c < t->updated.n; c++)
			move = pxm_sets_subject(pp, ts[i], t->updated.names[c]);
		n->t[ts[i] - pp->t] |=
		    PPR_READ | (t->write ? PPR_WRITE : 0) | (enc ? PPR_ENC : 0) | (move ? PPR_MOVE : 0);
		if (enc && !n->enc)
			n->enc = n->cr->label;
	}
	const struct sqi_table st = { .schema = t->schema, .name = t->name };
	const struct pp_table *far =
	    t->write
	        ? pxm_write_moves(pp, &st, &t->updated, t->events & SQI_EV_UPDATE, t->events & SQI_EV_DELETE)
	        : NULL; /* by foreign keys, into another table */
	if (far)
		n->t[far - pp->t] |= PPR_READ | PPR_WRITE | PPR_MOVE;
	return edges_run(b, n, t->schema, t->name, SQI_EV_READ | (t->write ? t->events : 0));
}

static bool ident_char(char c)
{
	return c == '_' || c == '$' || isalnum((unsigned char)c) || (unsigned char)c >= 0x80;
}

/* Whether def mentions the name of full (schema.name) as a word. */
static bool mentions(const char *def, const char *full)
{
	const char *dot = strchr(full, '.'), *name = dot ? dot + 1 : full;
	size_t len = strlen(name);

	for (const char *p = def; len && (p = strcasestr(p, name)); p++)
		if ((p == def || !ident_char(p[-1])) && !ident_char(p[len]))
			return true;
	return false;
}

/* Whether text names a policy table, a view over one (or holds a U&
 * identifier, which could spell any name). */
static bool names_policy(const struct ppol *pp, const char *text)
{
	bool named = strcasestr(text, "U&") != NULL;

	for (size_t i = 0; !named && i < pp->n; i++)
		named = mentions(text, pp->t[i].name);
	for (size_t i = 0; !named && i < pp->nviews; i++)
		named = mentions(text, pp->views[i].name);
	return named;
}

/* A body libpg_query does not parse: hidden when its text names a policy
 * table or a view over one; it runs the routines it names and what
 * writes to the tables it names run. */
static int reach_text(const struct build *b, struct node *n)
{
	const char *def = n->cr->def;
	int err = 0;

	if (names_policy(b->pp, def))
		n->hidden = n->cr->label;
	for (size_t j = 0; !err && j < b->nroutines; j++)
		if (mentions(def, b->nodes[j].cr->name))
			err = add_edge(n, j);
	for (size_t i = 0; !err && i < b->nlinks; i++)
		if (mentions(def, b->links[i].table))
			err = add_edge(n, b->links[i].node);
	return err;
}

bool ppol_mentions(const struct ppol *pp, const char *text)
{
	bool named = names_policy(pp, text);

	for (size_t i = 0; !named && i < pp->nroutines; i++)
		named = mentions(text, pp->routines[i].name);
	for (size_t i = 0; !named && i < pp->nruns; i++)
		named = mentions(text, pp->runs[i].table);
	return named;
}

/* A routine's analysis: the previous load's when its definition is the
 * same (a catalog read every minute does not parse every body again). */
static int analysis(struct ppol *prev, const struct cat_routine *cr, struct sqb_routine *out)
{
	for (size_t j = 0; prev && j < prev->nanalyses; j++) {
		struct cat_routine *old = &prev->cat->routines[j];
		if (old->oid && old->oid == cr->oid && !strcmp(old->def, cr->def)) {
			*out = prev->analyses[j];
			memset(&prev->analyses[j], 0, sizeof(prev->analyses[j]));
			old->oid = 0; /* taken (prev's reach was worked out long ago) */
			return 0;
		}
	}
	int err = sqb_routine(cr->def, out);
	if (err && err != -ENOMEM)
		out->hidden |= SQI_HIDDEN_UNPARSED, err = 0;
	return err;
}

static int analyse(const struct build *b, struct node *n)
{
	const struct sqb_routine *r = n->a;
	int err = 0;

	if (r->hidden & (SQI_HIDDEN_DYNAMIC | SQI_HIDDEN_LANGUAGE | SQI_HIDDEN_READING | SQI_HIDDEN_MISREAD))
		n->hidden = n->cr->label;
	if (r->hidden & SQI_HIDDEN_UNPARSED)
		err = reach_text(b, n);
	for (size_t i = 0; !err && i < r->ntables; i++)
		err = reach_table(b, n, &r->tables[i]);
	for (size_t i = 0; !err && i < r->ncalls; i++)
		err = edges_named(b, n, r->calls[i].schema, r->calls[i].name);
	return err ?: edges_run_full(b, n, "", SQI_EV_ANY | (r->ddl ? SQI_EV_DDL : 0));
}

/* What a foreign key's action writes in the referencing table: a
 * cascade's DELETE, SET NULL's or SET DEFAULT's UPDATE. */
static unsigned fk_writes(char action, bool on_delete)
{
	return action == 'c'                    ? (on_delete ? SQI_EV_DELETE : SQI_EV_UPDATE)
	       : action == 'n' || action == 'd' ? SQI_EV_UPDATE
	                                        : 0;
}

/* The writes to the referenced table that make the key act on the
 * referencing table: its actions', and TRUNCATE ... CASCADE, which
 * empties the referencing table whatever they are. */
static unsigned fk_events(const struct cat_fk *k)
{
	return SQI_EV_TRUNCATE_CASCADE | (fk_writes(k->on_delete, true) ? SQI_EV_DELETE : 0) |
	       (fk_writes(k->on_update, false) ? SQI_EV_UPDATE : 0);
}

/* A foreign key that acts: it writes the referencing table (which counts
 * when a policy table), and runs what those writes run. */
static int analyse_fk(const struct build *b, struct node *n)
{
	const struct pp_table *pt = NULL;
	unsigned ev = fk_writes(n->fk->on_delete, true) | fk_writes(n->fk->on_update, false) |
	              SQI_EV_TRUNCATE | SQI_EV_TRUNCATE_CASCADE;

	for (size_t i = 0; i < b->pp->n; i++)
		if (!strcmp(b->pp->t[i].name, n->fk->from_table))
			pt = &b->pp->t[i];
	if (pt)
		n->t[pt - b->pp->t] |= PPR_READ | PPR_WRITE;
	return edges_run_full(b, n, n->fk->from_table, ev);
}

/* Merges what from reaches into into; whether into changed. */
static bool merge(size_t ntables, uint8_t *into, const char **hidden, const char **enc, const uint8_t *from,
                  const char *from_hidden, const char *from_enc)
{
	bool changed = false;

	for (size_t i = 0; i < ntables; i++)
		if ((into[i] | from[i]) != into[i])
			into[i] |= from[i], changed = true;
	if (!*hidden && from_hidden)
		*hidden = from_hidden, changed = true;
	if (!*enc && from_enc)
		*enc = from_enc, changed = true;
	return changed;
}

static bool reaches(size_t ntables, const uint8_t *t, const char *hidden)
{
	for (size_t i = 0; !hidden && i < ntables; i++)
		if (t[i])
			return true;
	return hidden != NULL;
}

/* Keeps routine n (its reach moves into pp) when it reaches anything. */
static int keep(struct ppol *pp, struct node *n)
{
	if (!n->cr || !reaches(pp->n, n->t, n->hidden))
		return 0;
	struct pp_routine *v = realloc(pp->routines, (pp->nroutines + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	pp->routines = v;
	v[pp->nroutines++] = (struct pp_routine){ n->cr->name, { n->t, n->hidden, n->enc } };
	n->t = NULL;
	return 0;
}

/* The tables whose writes (of which events) lead to something, before
 * keep() takes the nodes' reach. */
static int index_runs(const struct build *b)
{
	struct ppol *pp = b->pp;

	for (size_t i = 0; i < b->nlinks; i++) {
		const struct link *l = &b->links[i];
		const struct node *n = &b->nodes[l->node];
		size_t k;
		if (!reaches(pp->n, n->t, n->hidden) && !l->adds)
			continue;
		for (k = 0; k < pp->nruns && (strcmp(pp->runs[k].table, l->table) ||
		                              pp->runs[k].events != l->events || pp->runs[k].rule != l->rule);
		     k++)
			;
		if (k == pp->nruns) {
			struct pp_runs *v = realloc(pp->runs, (pp->nruns + 1) * sizeof(*v));
			uint8_t *t = calloc(pp->n + 1, 1);
			if (v)
				pp->runs = v;
			if (!v || !t)
				return free(t), -ENOMEM;
			v[pp->nruns++] = (struct pp_runs){ l->table, l->events, l->rule, { t, NULL, NULL } };
		}
		struct pp_reach *r = &pp->runs[k].r;
		merge(pp->n, r->t, &r->hidden, &r->enc, n->t, n->hidden, n->enc);
		take_link(b, r->t, &r->enc, l);
	}
	return 0;
}

static int add_link(struct build *b, const char *table, size_t node, unsigned events, bool rule,
                    bool before_row)
{
	struct link *v = realloc(b->links, (b->nlinks + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	b->links = v;
	v[b->nlinks++] = (struct link){ table, node, events, rule, before_row, NULL };
	return 0;
}

/* The nodes (routines, then the cascading foreign keys, once per pair of
 * tables and actions) and what links tables to them. */
static int make_nodes(struct build *b, struct ppol *prev)
{
	struct ppol *pp = b->pp;
	const struct catalog *cat = pp->cat;
	size_t cap = cat->nroutines + cat->nfks;
	int err = 0;

	b->nroutines = cat->nroutines;
	if (!(b->nodes = calloc(cap ? cap : 1, sizeof(*b->nodes))) ||
	    (cat->nroutines && !(pp->analyses = calloc(cat->nroutines, sizeof(*pp->analyses)))))
		return -ENOMEM;
	for (size_t i = 0; !err && i < cat->nroutines; i++, pp->nanalyses++, b->nnodes++) {
		b->nodes[i].cr = &cat->routines[i];
		b->nodes[i].a = &pp->analyses[i];
		err = (b->nodes[i].t = calloc(pp->n + 1, 1)) ? analysis(prev, b->nodes[i].cr, b->nodes[i].a)
		                                             : -ENOMEM;
	}
	for (size_t i = 0; !err && i < cat->nruns; i++) {
		size_t j = by_oid(cat, cat->runs[i].routine, cat->runs[i].rule);
		for (unsigned ev = 1; !err && j != SIZE_MAX && ev <= SQI_EV_ANY; ev <<= 1)
			if (cat->runs[i].events & ev) /* a link an event: what the row holds differs */
				err = add_link(b, cat->runs[i].table, j, ev, cat->runs[i].rule,
				               cat->runs[i].before_row);
	}
	for (size_t i = 0; !err && i < cat->nfks; i++) {
		const struct cat_fk *k = &cat->fks[i];
		bool seen = false;
		for (size_t j = b->nroutines; !seen && j < b->nnodes; j++) /* a key of several columns */
			seen = !strcmp(b->nodes[j].fk->from_table, k->from_table) &&
			       !strcmp(b->nodes[j].fk->to_table, k->to_table) &&
			       b->nodes[j].fk->on_delete == k->on_delete &&
			       b->nodes[j].fk->on_update == k->on_update;
		if (seen)
			continue;
		struct node *n = &b->nodes[b->nnodes];
		n->fk = k;
		err = (n->t = calloc(pp->n + 1, 1))
		          ? add_link(b, k->to_table, b->nnodes++, fk_events(k), false, false)
		          : -ENOMEM;
	}
	return err;
}

/* Adds bits on policy table t to what link l's write adds. */
static int link_adds(struct link *l, size_t n, const struct pp_table *t, const struct ppol *pp, uint8_t bits)
{
	if (!l->adds && !(l->adds = calloc(n + 1, 1)))
		return -ENOMEM;
	l->adds[t - pp->t] |= bits;
	return 0;
}

/* The policy table whose subject column a foreign key carries an UPDATE
 * of table (the catalog's schema.name) into, of its columns cols. */
static const struct pp_table *carried(const struct ppol *pp, const char *table, const struct sqb_cols *cols)
{
	const char *dot = strchr(table, '.');
	char *schema = dot ? strndup(table, (size_t)(dot - table)) : NULL;
	const struct sqi_table st = { .schema = schema, .name = (char *)(dot ? dot + 1 : table) };
	const struct pp_table *t = !dot || schema ? pxm_write_moves(pp, &st, cols, true, false) : pp->t;

	free(schema);
	return t;
}

/* A BEFORE ROW trigger function storing column col of NEW (NULL: any) in
 * policy table t's row, on its link's event: into an encrypted column, a
 * value Custos cannot encrypt (PPR_ENC); into the subject column (or one
 * it is generated from), on an UPDATE the row's move to another subject
 * (PPR_MOVE), on an INSERT another subject than the statement's (the
 * table's rows get keys of their own: resubjects). */
static int stores_col(struct ppol *pp, struct link *l, const struct pp_table *t, const char *col)
{
	int err = encrypted(t, col) ? link_adds(l, pp->n, t, pp, PPR_READ | PPR_WRITE | PPR_ENC) : 0;

	if (!err && pxm_sets_subject(pp, t, col) && (l->events & SQI_EV_UPDATE))
		err = link_adds(l, pp->n, t, pp, PPR_READ | PPR_WRITE | PPR_MOVE);
	else if (pxm_sets_subject(pp, t, col))
		pp->t[t - pp->t].resubjects = true;
	return err;
}

/* What BEFORE ROW trigger functions store into NEW, by link (the same
 * function fires on other events and tables): the columns stores_col
 * weighs, and, on an UPDATE, a column a foreign key carries into a
 * subject column, a move of the rows referencing it. A field taken back
 * from OLD (NEW.id := OLD.id) stores nothing new on an UPDATE; on an
 * INSERT it stores NULL. */
static int assigns_new(struct build *b)
{
	struct ppol *pp = b->pp;
	int err = 0;

	for (size_t i = 0; !err && i < b->nlinks; i++) {
		struct link *l = &b->links[i];
		const struct node *n = &b->nodes[l->node];
		const struct sqb_routine *fn = n->cr && l->before_row ? n->a : NULL;
		const struct sqb_cols *a = fn ? &fn->assigns : NULL;
		const struct sqb_cols *k = fn && (l->events & SQI_EV_INSERT) ? &fn->keeps : NULL;
		bool stores =
		    a && (a->all || a->n || (k && k->n)) && (l->events & (SQI_EV_INSERT | SQI_EV_UPDATE));
		const struct cat_table *ct = stores ? cat_table(pp->cat, l->table) : NULL;
		const struct pp_table *t = ct ? ppol_by_oid(pp, ct->oid) : NULL;
		const struct pp_table *far =
		    stores && (l->events & SQI_EV_UPDATE) ? carried(pp, l->table, a) : NULL;
		if (far)
			err = link_adds(l, pp->n, far, pp, PPR_READ | PPR_WRITE | PPR_MOVE);
		for (size_t c = 0; !err && t && c < (a->all ? 1 : a->n); c++)
			err = stores_col(pp, l, t, a->all ? NULL : a->names[c]);
		for (size_t c = 0; !err && t && k && c < k->n; c++)
			err = stores_col(pp, l, t, k->names[c]);
	}
	return err;
}

static const char *unqualified(const char *full)
{
	const char *dot = strchr(full, '.');

	return dot ? dot + 1 : full;
}

static int routine_order(const void *a, const void *b)
{
	return strcmp(unqualified(((const struct pp_routine *)a)->name),
	              unqualified(((const struct pp_routine *)b)->name));
}

static int runs_order(const void *a, const void *b)
{
	return strcmp(unqualified(((const struct pp_runs *)a)->table),
	              unqualified(((const struct pp_runs *)b)->table));
}

/* The first of n elements of size bytes from base, sorted by the name at
 * off in each without its schema, whose name is name (n: none). */
static size_t first_named(const void *base, size_t n, size_t size, size_t off, const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *full = *(const char *const *)((const char *)base + mid * size + off);
		if (strcmp(unqualified(full), name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int ppol_index_routines(struct ppol *pp, struct ppol *prev)
{
	struct build b = { .pp = pp };
	int err = pp->cat && pp->n ? make_nodes(&b, prev) : 0;

	if (!err)
		err = assigns_new(&b);
	for (size_t i = 0; !err && i < b.nnodes; i++)
		err = b.nodes[i].cr ? analyse(&b, &b.nodes[i]) : analyse_fk(&b, &b.nodes[i]);
	/* to a fixed point: each round carries reach one call further */
	for (bool changed = !err; changed;) {
		changed = false;
		for (size_t i = 0; i < b.nnodes; i++)
			for (size_t e = 0; e < b.nodes[i].nedges; e++) {
				const struct node *to = &b.nodes[b.nodes[i].edges[e]];
				changed |= merge(pp->n, b.nodes[i].t, &b.nodes[i].hidden, &b.nodes[i].enc,
				                 to->t, to->hidden, to->enc);
			}
	}
	if (!err)
		err = index_runs(&b);
	for (size_t i = 0; !err && i < b.nroutines; i++)
		err = keep(pp, &b.nodes[i]);
	if (!err) { /* by name, for ppol_reach on every statement ("": the runs of no table first) */
		qsort(pp->routines, pp->nroutines, sizeof(*pp->routines), routine_order);
		qsort(pp->runs, pp->nruns, sizeof(*pp->runs), runs_order);
	}
	for (size_t i = 0; b.nodes && i < b.nnodes; i++) {
		free(b.nodes[i].t);
		free(b.nodes[i].edges);
	}
	free(b.nodes);
	for (size_t i = 0; i < b.nlinks; i++)
		free(b.links[i].adds);
	free(b.links);
	return err;
}

void ppol_free_routines(struct ppol *pp)
{
	for (size_t i = 0; i < pp->nanalyses; i++)
		sqb_routine_free(&pp->analyses[i]);
	free(pp->analyses);
	for (size_t i = 0; i < pp->nroutines; i++)
		free(pp->routines[i].r.t);
	for (size_t i = 0; i < pp->nruns; i++)
		free(pp->runs[i].r.t);
	free(pp->routines);
	free(pp->runs);
}

static int merge_into(const struct ppol *pp, struct pp_reach *out, const struct pp_reach *r)
{
	if (!out->t && !(out->t = calloc(pp->n + 1, 1)))
		return -ENOMEM;
	merge(pp->n, out->t, &out->hidden, &out->enc, r->t, r->hidden, r->enc);
	return 0;
}

int ppol_reach(const struct ppol *pp, const struct sqi_stmt *s, struct pp_reach *out)
{
	int err = 0;

	*out = (struct pp_reach){ 0 };
	for (size_t i = 0; !err && pp->nroutines && i < s->ncalls; i++) {
		const char *name = s->calls[i].name;
		for (size_t j = first_named(pp->routines, pp->nroutines, sizeof(*pp->routines),
		                            offsetof(struct pp_routine, name), name);
		     !err && j < pp->nroutines && !strcmp(unqualified(pp->routines[j].name), name); j++)
			if (ppol_named(pp->routines[j].name, s->calls[i].schema, name))
				err = merge_into(pp, out, &pp->routines[j].r);
	}
	/* TRUNCATE's tables are not marked written (no value goes into them) */
	bool truncate = s->normalized && !strcmp(s->normalized, "TruncateStmt");
	for (size_t i = 0; !err && pp->nruns && i < s->ntables; i++) {
		const char *name = s->tables[i].name;
		unsigned events = SQI_EV_READ | (s->tables[i].write || truncate ? s->events : 0);
		for (size_t j = first_named(pp->runs, pp->nruns, sizeof(*pp->runs),
		                            offsetof(struct pp_runs, table), name);
		     !err && j < pp->nruns && !strcmp(unqualified(pp->runs[j].table), name); j++)
			if ((pp->runs[j].events & events) && !(pp->runs[j].rule && s->kind == SQI_COPY) &&
			    ppol_named(pp->runs[j].table, s->tables[i].schema, name))
				err = merge_into(pp, out, &pp->runs[j].r);
	}
	/* table "" (sorted first): the event triggers' runs, and the implicit casts' */
	unsigned any =
	    (sqi_evaluates(s) ? SQI_EV_ANY : 0) | (pp->nruns && sqi_fires_event_triggers(s) ? SQI_EV_DDL : 0);
	for (size_t j = 0; !err && j < pp->nruns && !*pp->runs[j].table; j++)
		if (pp->runs[j].events & any)
			err = merge_into(pp, out, &pp->runs[j].r);
	if (err)
		free(out->t), out->t = NULL;
	return err;
}
