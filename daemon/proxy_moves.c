/* proxy_moves.c - writes that would leave a subject's encrypted values in
 * rows of another subject: refused. A value is encrypted under its row's
 * subject's key; a row whose subject column changes keeps its values
 * under the first subject's key, out of the second's erasure and lost with
 * the first's. Such a change comes from a write of the subject column
 * (UPDATE, an upsert's DO UPDATE, a foreign key's ON UPDATE CASCADE or SET
 * DEFAULT) or from an upsert updating a row it did not name the subject
 * of. */
#include <stdio.h>
#include <string.h>

#include "idtext.h"
#include "proxy_encrypt.h"

#define CASCADE_DEPTH 8 /* foreign keys followed from a written column */

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
	if (s->write_all && (s->events & SQI_EV_UPDATE))
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

/* The table with encrypted columns whose subject column table.column is. */
static const struct pp_table *subject_of(const struct ppol *pp, const char *table, const char *column)
{
	for (size_t i = 0; i < pp->n; i++) {
		const struct pp_table *t = &pp->t[i];
		if (t->cols && t->subject_col && pxe_has_encrypted(t) && !strcmp(t->name, table) &&
		    !strcmp(t->subject_col, column))
			return t;
	}
	return NULL;
}

/* The table with encrypted columns whose subject column a change of the
 * column fk references reaches through it (ON UPDATE CASCADE or SET
 * DEFAULT; for a deleted row, del, ON DELETE SET DEFAULT), and through the
 * keys that carry that change on. */
static const struct pp_table *carried(const struct ppol *pp, const struct cat_fk *fk, bool del, int depth)
{
	char act = del ? fk->on_delete : fk->on_update;

	if (depth >= CASCADE_DEPTH || (act != 'd' && (act != 'c' || del)))
		return NULL;
	const struct pp_table *t = subject_of(pp, fk->from_table, fk->from_column);
	for (size_t i = 0; !t && i < pp->cat->nfks; i++) {
		const struct cat_fk *next = &pp->cat->fks[i];
		if (!strcmp(next->to_table, fk->from_table) && !strcmp(next->to_column, fk->from_column))
			t = carried(pp, next, false, depth + 1);
	}
	return t;
}

/* A write of one of the statement's targets that a foreign key carries
 * into a subject column. */
static int cascaded(const struct ppol *pp, const struct sqi_stmt *s, const struct sqi_table *st, char *why,
                    size_t n)
{
	for (size_t i = 0; i < pp->cat->nfks; i++) {
		const struct cat_fk *fk = &pp->cat->fks[i];
		if (!ppol_named(fk->to_table, st->schema, st->name))
			continue;
		const struct pp_table *t = moves(s, fk->to_column, exact(pp, fk->to_table, fk->to_column))
		                               ? carried(pp, fk, false, 0)
		                               : NULL;
		if (!t && (s->events & SQI_EV_DELETE))
			t = carried(pp, fk, true, 0);
		if (t)
			return pxe_refuse(
			    why, n,
			    "Custos does not move rows of %s to another subject: this write of %s "
			    "reaches their subject column %s through the foreign key on %s.%s",
			    t->name, fk->to_table, t->subject_col, fk->from_table, fk->from_column);
	}
	return 0;
}

int pxm_cascades(const struct ppol *pp, const struct sqi_stmt *s, char *why, size_t n)
{
	int err = 0;

	for (size_t i = 0; !err && pp->cat && i < s->ntables; i++)
		if (s->tables[i].write)
			err = cascaded(pp, s, &s->tables[i], why, n);
	return err;
}

int pxm_table(const struct ppol *pp, const struct pp_table *t, const struct sqi_stmt *s, char *why, size_t n)
{
	if (!t->subject_col)
		return 0;
	bool on_subject = named(s->conflict_cols, s->nconflict_cols, t->subject_col);
	if (moves(s, t->subject_col, exact(pp, t->name, t->subject_col)))
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
