/* policy_bind.c - pol_bind(): the policy against the live catalog. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "fieldcrypt.h"
#include "policy.h"

/* "; did you mean "x"?" for the nearest of names, or "". */
static const char *hint(const char *s, const char *const *names, size_t n, char *buf, size_t len)
{
	const char *best = pol_suggest(s, names, n);

	if (best)
		snprintf(buf, len, "; did you mean \"%s\"?", best);
	else
		buf[0] = 0;
	return buf;
}

static const struct cat_table *find_table(struct policy *p, const struct catalog *c, struct buf *errs,
                                          const struct pol_pos *pos, const char *name)
{
	const struct cat_table *t = cat_table(c, name);
	const char **names;
	char h[128];

	if (t)
		return t;
	names = calloc(c->ntables ? c->ntables : 1, sizeof(*names));
	for (size_t i = 0; names && i < c->ntables; i++)
		names[i] = c->tables[i].name;
	pol_error(p, errs, pos, "table %s not found in the database%s", name,
	          names ? hint(name, names, c->ntables, h, sizeof(h)) : "");
	free(names);
	return NULL;
}

static const struct cat_column *find_column(struct policy *p, struct buf *errs, const struct pol_pos *pos,
                                            const struct cat_table *t, const char *name)
{
	const struct cat_column *col = cat_column(t, name);
	const char **names;
	char h[128];

	if (col)
		return col;
	names = calloc(t->ncols ? t->ncols : 1, sizeof(*names));
	for (size_t i = 0; names && i < t->ncols; i++)
		names[i] = t->cols[i].name;
	pol_error(p, errs, pos, "column \"%s\" not found in table %s%s", name, t->name,
	          names ? hint(name, names, t->ncols, h, sizeof(h)) : "");
	free(names);
	return NULL;
}

/* 0 when a column of this type holds values of need characters; else the
 * length it would need (or 1 when no length helps). */
static size_t type_room(const char *type, size_t need)
{
	unsigned n;

	if (!strcmp(type, "text") || !strcmp(type, "bytea") || !strcmp(type, "character varying"))
		return 0;
	if (sscanf(type, "character varying(%u)", &n) == 1)
		return n >= need ? 0 : need;
	return 1;
}

static void check_types(struct policy *p, struct buf *errs, const struct pol_table *pt,
                        const struct pol_column *pc, const struct cat_table *t, const struct cat_column *col)
{
	unsigned n = 0;

	if (pc->encrypt) {
		/* a value as long as the column allows must still fit encrypted */
		size_t plain = sscanf(col->type, "character varying(%u)", &n) == 1 ? n : 0;
		size_t room = type_room(col->type, fc_text_len(plain));
		if (room == 1)
			pol_error(
			    p, errs, &pc->pos,
			    "column %s.%s is %s, which cannot hold ciphertext; encrypted columns must be "
			    "text, character varying or bytea",
			    pt->name, pc->name, col->type);
		else if (room)
			pol_error(p, errs, &pc->pos,
			          "column %s.%s is %s: encrypted, a %zu-character value needs character "
			          "varying(%zu) or text",
			          pt->name, pc->name, col->type, plain, room);
	}
	const struct cat_column *from =
	    pc->retain_after ? find_column(p, errs, &pc->pos, t, pc->retain_after) : NULL;
	if (from && strncmp(from->type, "timestamp", 9) && strcmp(from->type, "date"))
		pol_error(p, errs, &pc->pos,
		          "column %s.%s: a retention runs from a date or timestamp column; %s is %s",
		          pt->name, pc->name, pc->retain_after, from->type);
	if (!pc->bidx_column)
		return;
	if (pc->encrypt && !strcmp(col->type, "bytea")) {
		pol_error(p, errs, &pc->pos,
		          "bytea column %s.%s cannot have a blind index (its text has several spellings of "
		          "one value)",
		          pt->name, pc->name);
		return;
	}
	const struct cat_column *ix = find_column(p, errs, &pc->pos, t, pc->bidx_column);
	if (ix && type_room(ix->type, 2 * (size_t)pc->bidx_bytes))
		pol_error(p, errs, &pc->pos,
		          "blind index column %s.%s is %s; it needs text or character varying(%u)", pt->name,
		          pc->bidx_column, ix->type, 2 * pc->bidx_bytes);
}

static void bind_tables(struct policy *p, const struct catalog *c, struct buf *errs)
{
	for (size_t i = 0; i < p->ntables; i++) {
		const struct pol_table *pt = &p->tables[i];
		const struct cat_table *t = find_table(p, c, errs, &pt->pos, pt->name);
		for (size_t j = 0; t && j < pt->ncols; j++) {
			const struct cat_column *col =
			    find_column(p, errs, &pt->cols[j].pos, t, pt->cols[j].name);
			if (col)
				check_types(p, errs, pt, &pt->cols[j], t, col);
		}
	}
}

static void bind_refs(struct policy *p, const struct catalog *c, struct buf *errs)
{
	for (size_t i = 0; i < p->nsubjects; i++) {
		const struct pol_subject *s = &p->subjects[i];
		const struct cat_table *t = s->table ? find_table(p, c, errs, &s->pos, s->table) : NULL;
		if (t && s->id_column)
			find_column(p, errs, &s->pos, t, s->id_column);
	}
	for (size_t i = 0; i < p->nrelations; i++) {
		const struct pol_relation *r = &p->relations[i];
		const struct cat_table *f = find_table(p, c, errs, &r->pos, r->from_table);
		const struct cat_table *t = find_table(p, c, errs, &r->pos, r->to_table);
		for (size_t k = 0; k < r->ncolumns; k++) {
			if (f)
				find_column(p, errs, &r->pos, f, r->from_columns[k]);
			if (t)
				find_column(p, errs, &r->pos, t, r->to_columns[k]);
		}
	}
}

static bool is_root(const struct policy *p, const char *table)
{
	for (size_t i = 0; i < p->nsubjects; i++)
		if (p->subjects[i].table && !strcmp(p->subjects[i].table, table))
			return true;
	return false;
}

/* Follows relations (and foreign keys) from table towards the tables it
 * references, looking for a subject's root. seen holds visited names. */
static bool reaches_root(const struct policy *p, const struct catalog *c, const char *table,
                         const char **seen, size_t *nseen, size_t cap)
{
	if (is_root(p, table))
		return true;
	for (size_t i = 0; i < *nseen; i++)
		if (!strcmp(seen[i], table))
			return false;
	if (*nseen == cap)
		return false;
	seen[(*nseen)++] = table;
	for (size_t i = 0; i < p->nrelations; i++)
		if (!strcmp(p->relations[i].from_table, table) &&
		    reaches_root(p, c, p->relations[i].to_table, seen, nseen, cap))
			return true;
	for (size_t i = 0; p->foreign_keys && i < c->nfks; i++)
		if (!strcmp(c->fks[i].from_table, table) &&
		    reaches_root(p, c, c->fks[i].to_table, seen, nseen, cap))
			return true;
	return false;
}

static void check_reachable(struct policy *p, const struct catalog *c, struct buf *errs)
{
	size_t cap = c->ntables + p->ntables + 1;
	const char **seen = calloc(cap, sizeof(*seen));

	for (size_t i = 0; seen && i < p->ntables; i++) {
		size_t nseen = 0;
		const struct pol_table *t = &p->tables[i];
		if (cat_table(c, t->name) && !reaches_root(p, c, t->name, seen, &nseen, cap))
			pol_error(
			    p, errs, &t->pos,
			    "table %s holds personal data, but nothing leads from it to a subject's root "
			    "table; add a foreign key or a relations: entry%s",
			    t->name, p->foreign_keys ? "" : " (foreign_keys: false)");
	}
	free(seen);
}

void pol_bind(struct policy *p, const struct catalog *c, struct buf *errs)
{
	bind_tables(p, c, errs);
	bind_refs(p, c, errs);
	check_reachable(p, c, errs);
}
