/* proxy_moves.c - writes that would leave a subject's encrypted values in
 * rows of another subject: refused. A value is encrypted under its row's
 * subject's key; a row whose subject column changes keeps its values
 * under the first subject's key, out of the second's erasure and lost with
 * the first's. Such a change comes from a write of the subject column
 * (UPDATE, an upsert's DO UPDATE), from foreign keys that carry a write of
 * another table into it (ON UPDATE or ON DELETE CASCADE, SET NULL, SET
 * DEFAULT, table after table), or from an upsert updating a row it did not
 * name the subject of.
 *
 * Which foreign keys carry a change into a subject column is worked out
 * once per catalog (ppol_index_moves), as a fixed point over the keys: a
 * statement then only looks up the keys on the tables it writes. Beyond
 * the first key a change is followed table by table (a change of one
 * column of a table stands for a change of any), which refuses more than
 * it must, never less. */
#define _GNU_SOURCE /* qsort_r */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idtext.h"
#include "proxy_encrypt.h"

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

/* Whether PostgreSQL's equality on the column is that of its values' text
 * as Custos reads them (not so for numeric 7.0 = 7, citext, a
 * nondeterministic collation). */
static bool exact(const struct ppol *pp, const char *table, const char *column)
{
	const struct cat_table *t = pp->cat ? cat_table(pp->cat, table) : NULL;
	const struct cat_column *c = t ? cat_column(t, column) : NULL;

	return c && idt_exact(c->type_oid);
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

/* Whether key k's action (ON UPDATE CASCADE or SET DEFAULT; del: ON
 * DELETE SET DEFAULT, a cascading delete moving no row) writes the subject
 * column of its referencing table: the column itself, or one beside it in
 * the same key (SET DEFAULT sets them all; a key of several columns is one
 * catalog row a column). */
static bool sets_subject(const struct ppol *pp, const struct cat_fk *k, bool del)
{
	char act = del ? k->on_delete : k->on_update;
	const char *subject = act == 'd' || (act == 'c' && !del) ? subject_column(pp, k->from_table) : NULL;

	if (!subject || !strcmp(subject, k->from_column))
		return subject != NULL;
	for (size_t i = 0; act == 'd' && i < pp->cat->nfks; i++) {
		const struct cat_fk *o = &pp->cat->fks[i];
		if (!strcmp(o->from_table, k->from_table) && !strcmp(o->to_table, k->to_table) &&
		    !strcmp(o->from_column, subject) && (del ? o->on_delete : o->on_update) == 'd')
			return true;
	}
	return false;
}

static int by_name(const void *a, const void *b, void *cat)
{
	const struct catalog *c = cat;

	return strcmp(c->tables[*(const size_t *)a].name, c->tables[*(const size_t *)b].name);
}

/* The table's index among the catalog's (names: their indexes sorted by
 * name), or -1. */
static long table_index(const struct catalog *c, const size_t *names, const char *name)
{
	size_t lo = 0, hi = c->ntables;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = strcmp(c->tables[names[mid]].name, name);
		if (!d)
			return (long)names[mid];
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* What key k carries (CARRY_*) once changes reach its referencing table
 * from (changed: a column of it changed, deleted: a row of it deleted;
 * by table index; a table the catalog does not list counts as both) or
 * sets its subject column (sets: sets_subject's, as CARRY_* bits). */
static uint8_t carries(const struct cat_fk *k, long from, uint8_t sets, const uint8_t *changed,
                       const uint8_t *deleted)
{
	bool on = from < 0 || changed[from], gone = from < 0 || deleted[from];
	uint8_t bits = 0;

	if (k->on_update == 'c' || k->on_update == 'n' || k->on_update == 'd')
		bits |= on ? CARRY_UPDATE : sets & CARRY_UPDATE;
	if (k->on_delete == 'c')
		bits |= gone ? CARRY_DELETE : 0;
	else if (k->on_delete == 'n' || k->on_delete == 'd')
		bits |= on ? CARRY_DELETE : sets & CARRY_DELETE;
	return bits;
}

/* Marks the keys that carry a change into a subject column: to a fixed
 * point, since a key carries what the keys referencing its table carry
 * (bits only grow: at most two passes a key, each pass over the keys). */
static int mark_keys(struct ppol *pp, const size_t *names)
{
	const struct catalog *c = pp->cat;
	uint8_t *changed = calloc(c->ntables + 1, 2), *sets = calloc(c->nfks + 1, 1);
	long *from = calloc(c->nfks + 1, sizeof(*from)), *to = calloc(c->nfks + 1, sizeof(*to));
	int err = changed && sets && from && to ? 0 : -ENOMEM;

	uint8_t *deleted = changed ? changed + c->ntables : NULL;
	for (size_t i = 0; !err && i < c->nfks; i++) {
		from[i] = table_index(c, names, c->fks[i].from_table);
		to[i] = table_index(c, names, c->fks[i].to_table);
		sets[i] = (sets_subject(pp, &c->fks[i], false) ? CARRY_UPDATE : 0) |
		          (sets_subject(pp, &c->fks[i], true) ? CARRY_DELETE : 0);
	}
	for (bool more = !err; more;) {
		more = false;
		for (size_t i = 0; i < c->nfks; i++) {
			uint8_t bits = carries(&c->fks[i], from[i], sets[i], changed, deleted);
			if (bits == pp->fk_moves[i])
				continue;
			pp->fk_moves[i] = bits;
			more = true;
			if (to[i] >= 0) {
				changed[to[i]] |= (bits & CARRY_UPDATE) != 0;
				deleted[to[i]] |= (bits & CARRY_DELETE) != 0;
			}
		}
	}
	free(changed), free(sets), free(from), free(to);
	return err;
}

int ppol_index_moves(struct ppol *pp)
{
	if (!pp->cat || !pp->cat->nfks)
		return 0;
	size_t *names = calloc(pp->cat->ntables + 1, sizeof(*names));
	if (!(pp->fk_moves = calloc(pp->cat->nfks, 1)) || !names) {
		free(names);
		return -ENOMEM;
	}
	for (size_t i = 0; i < pp->cat->ntables; i++)
		names[i] = i;
	qsort_r(names, pp->cat->ntables, sizeof(*names), by_name, pp->cat);
	int err = mark_keys(pp, names);
	free(names);
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
			bool update = how == ROWS_VIEW ? (s->events & SQI_EV_UPDATE) != 0
			                               : how && moves(s, k->to_column,
			                                              exact(pp, k->to_table, k->to_column));
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

int pxm_table(const struct pp_table *t, const struct sqi_stmt *s, char *why, size_t n)
{
	if (!t->subject_col)
		return 0;
	const struct pp_column *sc = ppol_column_named(t, t->subject_col);
	bool on_subject = named(s->conflict_cols, s->nconflict_cols, t->subject_col);
	if (moves(s, t->subject_col, sc && idt_exact(sc->type_oid)))
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
