/* proxy_moves.c - writes that would leave a subject's encrypted values in
 * rows of another subject: refused. A value is encrypted under its row's
 * subject's key; a row whose subject column changes keeps its values
 * under the first subject's key, out of the second's erasure and lost with
 * the first's. Such a change comes from a write of the subject column or
 * of a column it is generated from (UPDATE, an upsert's DO UPDATE), from
 * foreign keys that carry a write of another table into it (ON UPDATE or
 * ON DELETE CASCADE, SET NULL, SET DEFAULT, table after table), or from an
 * upsert updating a row it did not name the subject of.
 *
 * Which foreign keys carry a change into a subject column is worked out
 * once per catalog (ppol_index_moves), as a fixed point over the keys: a
 * statement then only looks up the keys on the tables it writes. A change
 * is followed column by column (struct web). */
#define _GNU_SOURCE /* qsort_r */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idtext.h"
#include "proxy_encrypt.h"
#include "sqlbody.h"

enum { CARRY_UPDATE = 1, CARRY_DELETE = 2 }; /* ppol.fk_moves bits */

static bool named(char *const *names, size_t n, const char *col)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], col))
			return true;
	return false;
}

/* Whether the statement may give col of its target another value: an
 * UPDATE's SET, an upsert's SET other than `col = EXCLUDED.col` on a
 * column it conflicts on whose equality is that of its text (keep: as ORMs
 * write every column, and it changes nothing), or any column of a write not
 * followed column by column (MERGE, a writing CTE, a DO block). */
static bool moves(const struct sqi_stmt *s, const char *col, bool keep)
{
	if (s->write_all && (s->events & SQI_EV_UPDATE) && (s->kind != SQI_INSERT || s->nested_writes))
		return true;
	if (s->kind == SQI_UPDATE && named(s->write_cols, s->nwrite_cols, col))
		return true;
	for (size_t i = 0; i < s->nwrites; i++)
		if (s->writes[i].upsert && !strcmp(s->writes[i].column, col) &&
		    (s->writes[i].kind != SQI_W_EXCLUDED || !keep ||
		     !named(s->conflict_cols, s->nconflict_cols, col)))
			return true;
	return false;
}

/* Whether table is named, or descends from one named, ancestor (inherits
 * it, or is its partition, at any depth). */
static bool is_or_descends(const struct catalog *c, const char *table, const char *ancestor)
{
	const struct cat_table *t = cat_table(c, table);

	for (size_t depth = 0; t && depth <= c->ninherits; depth++) {
		if (!strcmp(t->name, ancestor))
			return true;
		const struct cat_table *up = NULL;
		for (size_t i = 0; !up && i < c->ninherits; i++)
			if (c->inherits[i].child == t->oid)
				up = cat_table_by_oid(c, c->inherits[i].parent);
		t = up; /* (a table of several parents: the first; partitions have one) */
	}
	return !strcmp(table, ancestor);
}

/* Whether the stored generated column col of table, or of a table
 * descending from it (a partition may generate what its parent stores),
 * is computed from from. */
static bool generated_from(const struct catalog *c, const char *table, const char *col, const char *from)
{
	for (size_t i = 0; c && i < c->ngens; i++)
		if (!strcmp(c->gens[i].column, col) && !strcmp(c->gens[i].from, from) &&
		    is_or_descends(c, c->gens[i].table, table))
			return true;
	return false;
}

/* Whether the statement may change col of table: moves() it, or a column
 * it is generated from (PostgreSQL computes it again), in table or in a
 * table descending from it (a partition may generate what its parent
 * stores). */
static bool changes(const struct ppol *pp, const struct sqi_stmt *s, const char *table, const char *col,
                    bool keep)
{
	if (moves(s, col, keep))
		return true;
	for (size_t i = 0; pp->cat && i < pp->cat->ngens; i++) {
		const struct cat_generated *g = &pp->cat->gens[i];
		if (!strcmp(g->column, col) && moves(s, g->from, false) &&
		    is_or_descends(pp->cat, g->table, table))
			return true;
	}
	return false;
}

/* Whether PostgreSQL's equality on the column is that of its values' text
 * as Custos reads them: integers, oid, uuid, and (text) text or varchar
 * under a deterministic collation (not so for numeric 7.0 = 7, char(n),
 * citext, a nondeterministic collation; nor for text where another
 * collation may decide, as an index's does for ON CONFLICT). */
static bool exact(const struct ppol *pp, const char *table, const char *column, bool text)
{
	enum { TEXTOID = 25, VARCHAROID = 1043 };
	const struct cat_table *t = pp->cat ? cat_table(pp->cat, table) : NULL;
	const struct cat_column *c = t ? cat_column(t, column) : NULL;

	return c && (idt_exact(c->type_oid) ||
	             (text && (c->type_oid == TEXTOID || c->type_oid == VARCHAROID) && c->bytewise));
}

/* --- the keys that carry a change into a subject column ------------------ */

/* The subject column of table, when the policy encrypts a column of it. */
static const char *subject_column(const struct ppol *pp, const char *table)
{
	for (size_t i = 0; i < pp->n; i++)
		if (pp->t[i].cols && pp->t[i].subject_col && pxe_has_encrypted(&pp->t[i]) &&
		    !strcmp(pp->t[i].name, table))
			return pp->t[i].subject_col;
	return NULL;
}

/* The key rows side by side by what they reference (table, column): a
 * referenced column, an endpoint, is known by the place of its first row
 * in that order, and a referenced table likewise; and by constraint, the
 * rows of a key of several columns side by side. A change is followed
 * column by column, into the columns a key's action writes (and those
 * generated from them), and on only through keys referencing one of
 * those. */
struct span {
	size_t at, n;
};

struct web {
	const struct ppol *pp;
	size_t *order;         /* key rows by referenced table, column */
	size_t *keys, *key_at; /* key rows by constraint; by key row: where its key's start */
	long *tab;             /* by key row: its referencing table as a referenced one (-1: none) */
	long *to_col, *to_tab; /* by key row: its referenced column's endpoint, table's */
	uint8_t *sets;         /* by key row: CARRY_* of its actions that set a subject column */
	struct span *writes;   /* by key row, ON UPDATE then ON DELETE: the endpoints its action changes */
	long *eps;             /* (those endpoints, of every row) */
	size_t neps, epscap;
	uint8_t *changed; /* by endpoint: a change of it is carried into a subject column */
	uint8_t *deleted; /* by referenced table: a delete of its rows is */
};

static int by_target(const void *a, const void *b, void *cat)
{
	const struct cat_fk *x = &((const struct catalog *)cat)->fks[*(const size_t *)a],
	                    *y = &((const struct catalog *)cat)->fks[*(const size_t *)b];

	return strcmp(x->to_table, y->to_table) ?: strcmp(x->to_column, y->to_column);
}

static int by_key(const void *a, const void *b, void *cat)
{
	uint32_t x = ((const struct catalog *)cat)->fks[*(const size_t *)a].con,
	         y = ((const struct catalog *)cat)->fks[*(const size_t *)b].con;

	return (x > y) - (x < y);
}

/* The place in w->order of the first key row referencing table (column;
 * NULL: any of its columns), or -1. */
static long referenced(const struct web *w, const char *table, const char *column)
{
	const struct catalog *c = w->pp->cat;
	size_t lo = 0, hi = c->nfks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct cat_fk *k = &c->fks[w->order[mid]];
		int d = strcmp(k->to_table, table);
		if (!d && column)
			d = strcmp(k->to_column, column);
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	const struct cat_fk *k = lo < c->nfks ? &c->fks[w->order[lo]] : NULL;
	return k && !strcmp(k->to_table, table) && (!column || !strcmp(k->to_column, column)) ? (long)lo : -1;
}

static int add_endpoint(struct web *w, long e)
{
	if (e < 0)
		return 0;
	if (w->neps == w->epscap) {
		size_t cap = w->epscap ? 2 * w->epscap : 64;
		long *v = realloc(w->eps, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		w->eps = v, w->epscap = cap;
	}
	w->eps[w->neps++] = e;
	return 0;
}

/* Key row i's action act writes col of its referencing table: whether that
 * sets the table's subject column (col itself, unless to NULL, or a
 * column generated from col), and the endpoints it changes (col's, and
 * those of the columns generated from it). */
static int written(struct web *w, size_t i, char act, bool del, const char *col)
{
	const struct catalog *c = w->pp->cat;
	const char *table = c->fks[i].from_table, *subject = subject_column(w->pp, table);

	if (subject && (strcmp(subject, col) ? generated_from(c, table, subject, col) : act != 'n'))
		w->sets[i] |= del ? CARRY_DELETE : CARRY_UPDATE;
	int err = add_endpoint(w, referenced(w, table, col));
	for (size_t g = 0; !err && g < c->ngens; g++)
		if (!strcmp(c->gens[g].from, col) && !strcmp(c->gens[g].table, table))
			err = add_endpoint(w, referenced(w, table, c->gens[g].column));
	return err;
}

/* What key row i's action writes (on update, or del: on delete): CASCADE
 * its own column, and of the other columns of its key those whose
 * equality is not that of their text (PostgreSQL sets every column of the
 * key to the referenced row's values: `7` becomes `7.0`); SET NULL and SET
 * DEFAULT every column of its key. */
static int note_writes(struct web *w, size_t i, bool del)
{
	const struct catalog *c = w->pp->cat;
	char act = del ? c->fks[i].on_delete : c->fks[i].on_update;
	struct span *sp = &w->writes[2 * i + del];
	int err = 0;

	sp->at = w->neps;
	if ((act == 'c' && !del) || act == 'n' || act == 'd')
		for (size_t j = w->key_at[i]; !err && j < c->nfks && c->fks[w->keys[j]].con == c->fks[i].con;
		     j++) {
			const struct cat_fk *o = &c->fks[w->keys[j]];
			/* (the referenced column's collation matches the rows when it is not deterministic)
			 */
			if (act != 'c' || w->keys[j] == i ||
			    !exact(w->pp, o->from_table, o->from_column, true) ||
			    !exact(w->pp, o->to_table, o->to_column, true))
				err = written(w, i, act, del, o->from_column);
		}
	sp->n = w->neps - sp->at;
	return err;
}

static bool any_changed(const struct web *w, const struct span *sp)
{
	for (size_t e = sp->at; e < sp->at + sp->n; e++)
		if (w->changed[w->eps[e]])
			return true;
	return false;
}

/* What key row i carries (CARRY_*) into a subject column, as far as
 * w->changed and w->deleted know. */
static uint8_t carries(const struct web *w, size_t i)
{
	const struct cat_fk *k = &w->pp->cat->fks[i];
	bool update = (w->sets[i] & CARRY_UPDATE) || any_changed(w, &w->writes[2 * i]);
	bool del = k->on_delete == 'c' ? w->tab[i] >= 0 && w->deleted[w->tab[i]]
	                               : (w->sets[i] & CARRY_DELETE) || any_changed(w, &w->writes[2 * i + 1]);

	return (update ? CARRY_UPDATE : 0) | (del ? CARRY_DELETE : 0);
}

static int web_make(struct web *w, const struct ppol *pp)
{
	const struct catalog *c = pp->cat;
	size_t n = c->nfks + 1;

	*w = (struct web){ .pp = pp };
	w->order = calloc(n, sizeof(size_t)), w->keys = calloc(n, sizeof(size_t));
	w->key_at = calloc(n, sizeof(size_t)), w->tab = calloc(n, sizeof(long));
	w->to_col = calloc(n, sizeof(long)), w->to_tab = calloc(n, sizeof(long));
	w->writes = calloc(2 * n, sizeof(struct span)), w->changed = calloc(n, 3);
	if (!w->order || !w->keys || !w->key_at || !w->tab || !w->to_col || !w->to_tab || !w->writes ||
	    !w->changed)
		return -ENOMEM;
	w->deleted = w->changed + n, w->sets = w->changed + 2 * n;
	for (size_t i = 0; i < c->nfks; i++)
		w->order[i] = w->keys[i] = i;
	qsort_r(w->order, c->nfks, sizeof(size_t), by_target, (void *)c);
	qsort_r(w->keys, c->nfks, sizeof(size_t), by_key, (void *)c);
	for (size_t j = 0; j < c->nfks; j++) /* the first row of each key */
		w->key_at[w->keys[j]] =
		    j && c->fks[w->keys[j - 1]].con == c->fks[w->keys[j]].con ? w->key_at[w->keys[j - 1]] : j;
	int err = 0;
	for (size_t i = 0; !err && i < c->nfks; i++) {
		const struct cat_fk *k = &c->fks[i];
		w->tab[i] = referenced(w, k->from_table, NULL);
		w->to_col[i] = referenced(w, k->to_table, k->to_column);
		w->to_tab[i] = referenced(w, k->to_table, NULL);
		err = note_writes(w, i, false) ?: note_writes(w, i, true);
	}
	return err;
}

static void web_free(struct web *w)
{
	free(w->order), free(w->keys), free(w->key_at), free(w->tab), free(w->to_col);
	free(w->to_tab), free(w->writes), free(w->eps), free(w->changed);
}

/* Marks the keys that carry a change into a subject column: to a fixed
 * point, since a key carries what the keys referencing the columns its
 * action writes carry (bits only grow: at most two passes a key, each
 * pass over the keys). */
static int mark_keys(struct ppol *pp)
{
	struct web w;
	int err = web_make(&w, pp);

	for (bool more = !err; more;) {
		more = false;
		for (size_t i = 0; i < pp->cat->nfks; i++) {
			uint8_t bits = carries(&w, i);
			if (bits == pp->fk_moves[i])
				continue;
			pp->fk_moves[i] = bits;
			more = true;
			w.changed[w.to_col[i]] |= (bits & CARRY_UPDATE) != 0;
			w.deleted[w.to_tab[i]] |= (bits & CARRY_DELETE) != 0;
		}
	}
	web_free(&w);
	return err;
}

int ppol_index_moves(struct ppol *pp)
{
	if (!pp->cat || !pp->cat->nfks)
		return 0;
	if (!(pp->fk_moves = calloc(pp->cat->nfks, 1)))
		return -ENOMEM;
	int err = mark_keys(pp);
	bool any = false;
	for (size_t i = 0; !err && i < pp->cat->nfks; i++)
		any |= pp->fk_moves[i] != 0;
	if (!any) { /* most catalogs: nothing for a statement to look up */
		free(pp->fk_moves);
		pp->fk_moves = NULL;
	}
	return err;
}

/* --- each statement ------------------------------------------------------ */

/* How the statement's target st writes rows of the catalog table name:
 * ROWS_OWN as that table or one it descends from (inherits, at any depth,
 * or is a partition of: a write of a parent is one of its descendants'
 * rows, their columns of the same names), ROWS_VIEW through a view
 * reading one of those (its columns may be named otherwise: any column),
 * or 0. Ancestors are walked breadth-first, each once. */
enum { ROWS_OWN = 1, ROWS_VIEW };
static int writes_rows_of(const struct catalog *c, const char *name, const struct sqi_table *st)
{
	const struct cat_table *t = cat_table(c, name);
	const struct cat_table **seen = calloc(c->ninherits + 2, sizeof(*seen));
	size_t n = 0;
	int how = 0;

	if (!seen || !t) /* (out of memory: as if written, failing closed) */
		return !seen || ppol_named(name, st->schema, st->name) ? ROWS_OWN : 0;
	seen[n++] = t;
	for (size_t at = 0; !how && at < n; at++) {
		const char *rel = seen[at]->name;
		how = ppol_named(rel, st->schema, st->name) ? ROWS_OWN : 0;
		for (size_t i = 0; !how && i < c->nviews; i++)
			how = !strcmp(c->views[i].table, rel) &&
			              ppol_named(c->views[i].view, st->schema, st->name)
			          ? ROWS_VIEW
			          : 0;
		for (size_t i = 0; i < c->ninherits && n <= c->ninherits; i++) {
			const struct cat_table *p = c->inherits[i].child == seen[at]->oid
			                                ? cat_table_by_oid(c, c->inherits[i].parent)
			                                : NULL;
			bool known = false;
			for (size_t j = 0; p && j < n; j++)
				known |= seen[j] == p;
			if (p && !known)
				seen[n++] = p;
		}
	}
	free(seen);
	return how;
}

int pxm_cascades(const struct ppol *pp, const struct sqi_stmt *s, char *why, size_t n)
{
	bool writes = false;

	for (size_t j = 0; j < s->ntables; j++)
		writes |= s->tables[j].write;
	for (size_t i = 0; writes && pp->fk_moves && i < pp->cat->nfks; i++) {
		const struct cat_fk *k = &pp->cat->fks[i];
		uint8_t bits = pp->fk_moves[i];
		for (size_t j = 0; bits && j < s->ntables; j++) {
			int how =
			    s->tables[j].write ? writes_rows_of(pp->cat, k->to_table, &s->tables[j]) : 0;
			bool update = how == ROWS_VIEW
			                  ? (s->events & SQI_EV_UPDATE) != 0
			                  : how && changes(pp, s, k->to_table, k->to_column,
			                                   exact(pp, k->to_table, k->to_column, false));
			if (((bits & CARRY_UPDATE) && update) ||
			    ((bits & CARRY_DELETE) && how && (s->events & SQI_EV_DELETE)))
				return pxe_refuse(
				    why, n,
				    "Custos does not move rows to another subject: this write of %s "
				    "reaches, through the foreign key on %s.%s, the subject column of "
				    "a table with encrypted values under its subject's key",
				    k->to_table, k->from_table, k->from_column);
		}
	}
	return 0;
}

/* The policy table the change foreign key first carries moves rows of:
 * its referencing table, or one further down the keys that carry the
 * change on, breadth-first, each key once. NULL: none found (or out of
 * memory). */
static const struct pp_table *carried_to(const struct ppol *pp, size_t first)
{
	const struct catalog *c = pp->cat;
	size_t *queue = calloc(c->nfks, sizeof(*queue)), n = 0;
	uint8_t *seen = calloc(c->nfks, 1);
	const struct pp_table *t = NULL;

	if (queue && seen)
		queue[n++] = first, seen[first] = 1;
	for (size_t at = 0; at < n && !t; at++) {
		const char *from = c->fks[queue[at]].from_table;
		const struct cat_table *ct = cat_table(c, from);
		t = ct ? ppol_by_oid(pp, ct->oid) : NULL;
		t = t && t->subject_col ? t : NULL;
		for (size_t j = 0; !t && j < c->nfks; j++)
			if (pp->fk_moves[j] && !seen[j] && !strcmp(c->fks[j].to_table, from))
				queue[n++] = j, seen[j] = 1;
	}
	free(queue);
	free(seen);
	return t;
}

/* Whether a write of cols (all: any) changes column col of table. */
static bool cols_change(const struct catalog *c, const char *table, const char *col,
                        const struct sqb_cols *cols)
{
	bool changed = cols->all || named(cols->names, cols->n, col);

	for (size_t i = 0; !changed && i < cols->n; i++)
		changed = generated_from(c, table, col, cols->names[i]);
	return changed;
}

const struct pp_table *pxm_write_moves(const struct ppol *pp, const struct sqi_table *st,
                                       const struct sqb_cols *cols, bool update, bool del)
{
	for (size_t i = 0; pp->fk_moves && i < pp->cat->nfks; i++) {
		const struct cat_fk *k = &pp->cat->fks[i];
		uint8_t bits = pp->fk_moves[i];
		int how = bits ? writes_rows_of(pp->cat, k->to_table, st) : 0;
		if (!how)
			continue;
		bool changed = how == ROWS_VIEW || cols_change(pp->cat, k->to_table, k->to_column, cols);
		if (((bits & CARRY_UPDATE) && update && changed) || ((bits & CARRY_DELETE) && del)) {
			const struct pp_table *to = carried_to(pp, i);
			return to ? to : pp->t; /* (found: a key carries a change only into a policy table) */
		}
	}
	return NULL;
}

int pxm_table(const struct ppol *pp, const struct pp_table *t, const struct sqi_stmt *s, char *why, size_t n)
{
	if (!t->subject_col)
		return 0;
	const struct pp_column *sc = ppol_column_named(t, t->subject_col);
	bool on_subject = named(s->conflict_cols, s->nconflict_cols, t->subject_col);
	if (changes(pp, s, t->name, t->subject_col, sc && idt_exact(sc->type_oid)))
		return pxe_refuse(why, n,
		                  "Custos does not move a row of %s to another subject (a write of %s): its "
		                  "encrypted values are under its subject's key",
		                  t->name, t->subject_col);
	for (size_t i = 0; !on_subject && i < s->nwrites; i++) {
		const struct sqi_write *w = &s->writes[i];
		const struct pp_column *col = ppol_column_named(t, w->column);
		if (w->upsert && w->kind != SQI_W_NULL && col && col->pc && col->pc->encrypt)
			return pxe_refuse(
			    why, n,
			    "Custos encrypts what ON CONFLICT ... DO UPDATE writes into %s.%s only "
			    "when the conflict target names the subject column, ON CONFLICT (%s): "
			    "the row it updates may be another subject's",
			    t->name, col->name, t->subject_col);
	}
	return 0;
}

bool pxm_sets_subject(const struct ppol *pp, const struct pp_table *t, const char *col)
{
	if (!t->subject_col || !pxe_has_encrypted(t))
		return false;
	if (!col || !strcmp(col, t->subject_col))
		return true;
	return generated_from(pp->cat, t->name, t->subject_col, col);
}
