/* proxy_routines.c - what the database runs on a statement's behalf: the
 * functions and procedures it calls, and the triggers, column defaults
 * and checks a write to a table runs. Each routine's definition is
 * analysed once per catalog load (sqlbody.c); what it reaches is what
 * its own statements name and what the routines they call and the
 * writes they make run reach in turn, to a fixed point. Only routines
 * that reach a policy table, or whose code cannot be seen, are kept: a
 * statement's calls are looked up among those few. */
#define _GNU_SOURCE
#include "proxy_policy.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sqlbody.h"

/* One routine of the catalog while its reach is worked out. */
struct node {
	const struct cat_routine *cr;
	struct sqb_routine *a; /* its analysis (in ppol.analyses) */
	uint8_t *t;            /* PPR_* by policy table */
	const char *hidden, *enc;
	size_t *edges; /* the routines it runs (indexes) */
	size_t nedges;
};

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
static int edges_named(const struct ppol *pp, struct node *n, const char *schema, const char *name)
{
	int err = 0;

	for (size_t j = 0; !err && j < pp->cat->nroutines; j++)
		if (ppol_named(pp->cat->routines[j].name, schema, name))
			err = add_edge(n, j);
	return err;
}

static size_t by_oid(const struct catalog *cat, uint32_t oid)
{
	for (size_t j = 0; j < cat->nroutines; j++)
		if (cat->routines[j].oid == oid)
			return j;
	return SIZE_MAX;
}

/* Edges to what a write to [schema.]name runs. */
static int edges_run(const struct ppol *pp, struct node *n, const char *schema, const char *name)
{
	int err = 0;

	for (size_t i = 0; !err && i < pp->cat->nruns; i++) {
		size_t j = ppol_named(pp->cat->runs[i].table, schema, name)
		               ? by_oid(pp->cat, pp->cat->runs[i].routine)
		               : SIZE_MAX;
		if (j != SIZE_MAX)
			err = add_edge(n, j);
	}
	return err;
}

/* A table a routine's statements name: the policy tables it stands for. */
static int reach_table(const struct ppol *pp, struct node *n, const struct sqb_table *t)
{
	const struct pp_table *ts[8];
	const struct pp_table *pt = ppol_by_name(pp, t->schema, t->name);
	size_t k = pt ? (ts[0] = pt, 1) : ppol_view_tables(pp, t->schema, t->name, ts, ARRAY_SIZE(ts));

	if (k > ARRAY_SIZE(ts))
		n->hidden = n->cr->name; /* more than it can follow */
	for (size_t i = 0; i < k && i < ARRAY_SIZE(ts); i++) {
		bool enc = t->write && (t->all_cols || !pt) && encrypted(ts[i], NULL);
		for (size_t c = 0; t->write && !enc && c < t->ncols; c++)
			enc = encrypted(ts[i], t->cols[c]);
		n->t[ts[i] - pp->t] |= PPR_READ | (t->write ? PPR_WRITE : 0) | (enc ? PPR_ENC : 0);
		if (enc && !n->enc)
			n->enc = n->cr->name;
	}
	return t->write ? edges_run(pp, n, t->schema, t->name) : 0;
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
static int reach_text(const struct ppol *pp, struct node *n)
{
	const char *def = n->cr->def;
	int err = 0;

	if (names_policy(pp, def))
		n->hidden = n->cr->name;
	for (size_t j = 0; !err && j < pp->cat->nroutines; j++)
		if (mentions(def, pp->cat->routines[j].name))
			err = add_edge(n, j);
	for (size_t i = 0; !err && i < pp->cat->nruns; i++) {
		size_t j = mentions(def, pp->cat->runs[i].table) ? by_oid(pp->cat, pp->cat->runs[i].routine)
		                                                 : SIZE_MAX;
		if (j != SIZE_MAX)
			err = add_edge(n, j);
	}
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

static int analyse(const struct ppol *pp, struct node *n)
{
	const struct sqb_routine *r = n->a;
	int err = 0;

	if (r->hidden & (SQI_HIDDEN_DYNAMIC | SQI_HIDDEN_LANGUAGE))
		n->hidden = n->cr->name;
	if (r->hidden & SQI_HIDDEN_UNPARSED)
		err = reach_text(pp, n);
	for (size_t i = 0; !err && i < r->ntables; i++)
		err = reach_table(pp, n, &r->tables[i]);
	for (size_t i = 0; !err && i < r->ncalls; i++)
		err = edges_named(pp, n, r->calls[i].schema, r->calls[i].name);
	return err;
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

/* Keeps n (its reach moves into pp) when it reaches anything. */
static int keep(struct ppol *pp, struct node *n)
{
	if (!reaches(pp->n, n->t, n->hidden))
		return 0;
	struct pp_routine *v = realloc(pp->routines, (pp->nroutines + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	pp->routines = v;
	v[pp->nroutines++] = (struct pp_routine){ n->cr->name, { n->t, n->hidden, n->enc } };
	n->t = NULL;
	return 0;
}

/* The tables whose writes run routines that reach something. */
static int index_runs(struct ppol *pp, const struct node *nodes)
{
	for (size_t i = 0; i < pp->cat->nruns; i++) {
		const struct cat_runs *x = &pp->cat->runs[i];
		size_t j = by_oid(pp->cat, x->routine), k;
		const struct node *n = j == SIZE_MAX ? NULL : &nodes[j];
		const struct pp_routine *kept = NULL;
		for (size_t r = 0; n && r < pp->nroutines && !kept; r++)
			kept = pp->routines[r].name == n->cr->name ? &pp->routines[r] : NULL;
		if (!kept)
			continue;
		for (k = 0; k < pp->nruns && strcmp(pp->runs[k].table, x->table); k++)
			;
		if (k == pp->nruns) {
			struct pp_runs *v = realloc(pp->runs, (pp->nruns + 1) * sizeof(*v));
			uint8_t *t = calloc(pp->n + 1, 1);
			if (v)
				pp->runs = v;
			if (!v || !t)
				return free(t), -ENOMEM;
			v[pp->nruns++] = (struct pp_runs){ x->table, { t, NULL, NULL } };
		}
		struct pp_reach *r = &pp->runs[k].r;
		merge(pp->n, r->t, &r->hidden, &r->enc, kept->r.t, kept->r.hidden, kept->r.enc);
	}
	return 0;
}

int ppol_index_routines(struct ppol *pp, struct ppol *prev)
{
	size_t n = pp->cat && pp->n ? pp->cat->nroutines : 0;
	struct node *nodes = n ? calloc(n, sizeof(*nodes)) : NULL;
	int err = n && !nodes ? -ENOMEM : 0;

	if (!err && n && !(pp->analyses = calloc(n, sizeof(*pp->analyses))))
		err = -ENOMEM;
	for (size_t i = 0; !err && i < n; i++, pp->nanalyses++) {
		nodes[i].cr = &pp->cat->routines[i];
		nodes[i].a = &pp->analyses[i];
		err = (nodes[i].t = calloc(pp->n + 1, 1)) ? analysis(prev, nodes[i].cr, nodes[i].a) : -ENOMEM;
	}
	for (size_t i = 0; !err && i < n; i++)
		err = analyse(pp, &nodes[i]);
	/* to a fixed point: each round carries reach one call further */
	for (bool changed = !err; changed;) {
		changed = false;
		for (size_t i = 0; i < n; i++)
			for (size_t e = 0; e < nodes[i].nedges; e++) {
				const struct node *to = &nodes[nodes[i].edges[e]];
				changed |= merge(pp->n, nodes[i].t, &nodes[i].hidden, &nodes[i].enc, to->t,
				                 to->hidden, to->enc);
			}
	}
	for (size_t i = 0; !err && i < n; i++)
		err = keep(pp, &nodes[i]);
	if (!err && n)
		err = index_runs(pp, nodes);
	for (size_t i = 0; nodes && i < n; i++) {
		free(nodes[i].t);
		free(nodes[i].edges);
	}
	free(nodes);
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
	for (size_t i = 0; !err && pp->nroutines && i < s->ncalls; i++)
		for (size_t j = 0; !err && j < pp->nroutines; j++)
			if (ppol_named(pp->routines[j].name, s->calls[i].schema, s->calls[i].name))
				err = merge_into(pp, out, &pp->routines[j].r);
	bool truncate = s->normalized && !strcmp(s->normalized, "TruncateStmt"); /* its triggers */
	for (size_t i = 0; !err && pp->nruns && i < s->ntables; i++)
		for (size_t j = 0; !err && (s->tables[i].write || truncate) && j < pp->nruns; j++)
			if (ppol_named(pp->runs[j].table, s->tables[i].schema, s->tables[i].name))
				err = merge_into(pp, out, &pp->runs[j].r);
	if (err)
		free(out->t), out->t = NULL;
	return err;
}
