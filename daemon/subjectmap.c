/* subjectmap.c - see subjectmap.h. A breadth-first walk from the root
 * table down the edges "child.column references parent.column". */
#include "subjectmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A column pair of a link; a link of several columns is as many edges,
 * of the same con: a foreign key's constraint OID, or for the policy's
 * relation i, REL_CON(i) (beyond any OID). */
struct sm_edge {
	const char *child, *child_col, *parent, *parent_col;
	uint64_t con;
};

#define REL_CON(i) ((UINT64_C(1) << 32) + (i))

struct sm_node {
	const char *table;
	int via; /* index of the edge to its parent; -1 for the root */
};

struct sm_map {
	const struct pol_subject *subject;
	struct sm_edge *edges;
	size_t nedges;
	struct sm_node *nodes; /* reached tables, in breadth-first order */
	size_t nnodes;
};

static int collect_edges(struct sm_map *m, const struct policy *p, const struct catalog *c)
{
	size_t n = p->foreign_keys ? c->nfks : 0;

	for (size_t i = 0; i < p->nrelations; i++)
		n += p->relations[i].ncolumns;
	m->edges = calloc(n ? n : 1, sizeof(*m->edges));
	if (!m->edges)
		return -ENOMEM;
	for (size_t i = 0; i < p->nrelations; i++) {
		const struct pol_relation *r = &p->relations[i];
		for (size_t k = 0; k < r->ncolumns; k++)
			m->edges[m->nedges++] = (struct sm_edge){ r->from_table, r->from_columns[k],
				                                  r->to_table, r->to_columns[k], REL_CON(i) };
	}
	for (size_t i = 0; p->foreign_keys && i < c->nfks; i++) {
		const struct cat_fk *k = &c->fks[i];
		m->edges[m->nedges++] =
		    (struct sm_edge){ k->from_table, k->from_column, k->to_table, k->to_column, k->con };
	}
	return 0;
}

/* The next column pair of the link edge e is one of, from after (NULL:
 * the first), or NULL: a link is followed by all its columns at once. (A
 * con of 0, a catalog that names no constraints, is a link of its own.) */
static const struct sm_edge *next_pair(const struct sm_map *m, const struct sm_edge *e,
                                       const struct sm_edge *after)
{
	if (!e->con)
		return after ? NULL : e;
	for (const struct sm_edge *x = after ? after + 1 : m->edges; x < m->edges + m->nedges; x++)
		if (x->con == e->con && !strcmp(x->child, e->child) && !strcmp(x->parent, e->parent))
			return x;
	return NULL;
}

static const struct sm_node *find_node(const struct sm_map *m, const char *table)
{
	for (size_t i = 0; i < m->nnodes; i++)
		if (!strcmp(m->nodes[i].table, table))
			return &m->nodes[i];
	return NULL;
}

static int walk(struct sm_map *m)
{
	m->nodes = calloc(m->nedges + 1, sizeof(*m->nodes));
	if (!m->nodes)
		return -ENOMEM;
	m->nodes[m->nnodes++] = (struct sm_node){ m->subject->table, -1 };
	for (size_t at = 0; at < m->nnodes; at++)
		for (size_t e = 0; e < m->nedges; e++)
			if (!strcmp(m->edges[e].parent, m->nodes[at].table) &&
			    !find_node(m, m->edges[e].child))
				m->nodes[m->nnodes++] = (struct sm_node){ m->edges[e].child, (int)e };
	return 0;
}

int sm_build(const struct policy *p, const struct catalog *c, const char *type, struct sm_map **ret)
{
	struct sm_map *m = calloc(1, sizeof(*m));
	int err;

	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < p->nsubjects; i++)
		if (p->subjects[i].type && !strcmp(p->subjects[i].type, type))
			m->subject = &p->subjects[i];
	err = !m->subject || !m->subject->table || !m->subject->id_column ? -ENOENT : collect_edges(m, p, c);
	if (!err)
		err = walk(m);
	if (err) {
		sm_free(m);
		return err;
	}
	*ret = m;
	return 0;
}

void sm_free(struct sm_map *m)
{
	if (!m)
		return;
	free(m->edges);
	free(m->nodes);
	free(m);
}

static void quote_part(struct buf *sql, const char *s, size_t n)
{
	buf_adds(sql, "\"");
	for (size_t i = 0; i < n; i++)
		buf_add(sql, s[i] == '"' ? "\"\"" : &s[i], s[i] == '"' ? 2 : 1);
	buf_adds(sql, "\"");
}

void sm_quote_ident(struct buf *sql, const char *name)
{
	quote_part(sql, name, strlen(name));
}

void sm_quote(struct buf *sql, const char *name)
{
	const char *dot = strchr(name, '.');

	if (dot) {
		quote_part(sql, name, (size_t)(dot - name));
		buf_adds(sql, ".");
		name = dot + 1;
	}
	quote_part(sql, name, strlen(name));
}

static void alias_col(struct buf *sql, unsigned alias, const char *col)
{
	char a[16];

	snprintf(a, sizeof(a), "j%u.", alias);
	buf_adds(sql, a);
	sm_quote(sql, col);
}

bool sm_is_link(const struct sm_map *m, const char *table, const char *column)
{
	if (!strcmp(table, m->subject->table) && !strcmp(column, m->subject->id_column))
		return true;
	for (size_t i = 1; i < m->nnodes; i++) {
		const struct sm_edge *e = &m->edges[m->nodes[i].via];
		for (const struct sm_edge *x = next_pair(m, e, NULL); x; x = next_pair(m, e, x))
			if ((!strcmp(x->child, table) && !strcmp(x->child_col, column)) ||
			    (!strcmp(x->parent, table) && !strcmp(x->parent_col, column)))
				return true;
	}
	return false;
}

int sm_order(const struct sm_map *m, const char *table)
{
	const struct sm_node *n = find_node(m, table);

	return n ? (int)(n - m->nodes) : -1;
}

int sm_from(const struct sm_map *m, const char *table, struct buf *sql, struct buf *root_id)
{
	const struct sm_node *n = find_node(m, table);
	unsigned alias = 0;
	char a[16];

	if (!n)
		return -ENOENT;
	buf_adds(sql, " FROM ");
	sm_quote(sql, table);
	buf_adds(sql, " AS j0");
	for (; n->via >= 0; alias++) {
		const struct sm_edge *e = &m->edges[n->via];
		snprintf(a, sizeof(a), " AS j%u ON ", alias + 1);
		buf_adds(sql, " LEFT JOIN ");
		sm_quote(sql, e->parent);
		buf_adds(sql, a);
		for (const struct sm_edge *x = next_pair(m, e, NULL); x; x = next_pair(m, e, x)) {
			if (x != next_pair(m, e, NULL))
				buf_adds(sql, " AND ");
			alias_col(sql, alias + 1, x->parent_col);
			buf_adds(sql, " = ");
			alias_col(sql, alias, x->child_col);
		}
		n = find_node(m, e->parent);
	}
	alias_col(root_id, alias, m->subject->id_column);
	return sql->failed || root_id->failed ? -ENOMEM : 0;
}

const char *sm_direct_column(const struct sm_map *m, const char *table)
{
	const struct sm_node *n = find_node(m, table);

	if (!n)
		return NULL;
	if (n->via < 0)
		return m->subject->id_column;
	const struct sm_edge *e = &m->edges[n->via];
	for (const struct sm_edge *x = next_pair(m, e, NULL); x && !strcmp(e->parent, m->subject->table);
	     x = next_pair(m, e, x))
		if (!strcmp(x->parent_col, m->subject->id_column))
			return x->child_col;
	return NULL;
}

int sm_stored_id(const struct sm_map *m, const struct catalog *c, const char **id, char room[IDT_ROOM],
                 char *err, size_t errlen)
{
	const struct pol_subject *s = m->subject;
	const struct cat_table *t = cat_table(c, s->table);
	const struct cat_column *col = t ? cat_column(t, s->id_column) : NULL;

	if (!col) {
		snprintf(err, errlen, "the database has no column %s.%s (the subject type %s's id)", s->table,
		         s->id_column, s->type);
		return -ENOENT;
	}
	if (idt_text(col->type_oid, *id, strlen(*id), room, id) < 0) {
		snprintf(err, errlen, "the subject's ID is not a value of %s.%s's type (%s)", s->table,
		         s->id_column, col->type);
		return -EINVAL;
	}
	return 0;
}
