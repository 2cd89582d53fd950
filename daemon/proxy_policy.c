/* proxy_policy.c - see proxy_policy.h */
#include "proxy_policy.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgconn.h"
#include "subjectmap.h"

struct ppol *ppol_ref(struct ppol *pp)
{
	if (pp)
		pp->refs++;
	return pp;
}

void ppol_unref(struct ppol *pp)
{
	if (!pp || --pp->refs)
		return;
	for (size_t i = 0; i < pp->n; i++)
		free(pp->t[i].cols);
	free(pp->t);
	for (size_t i = 0; i < pp->nviews; i++) {
		free(pp->views[i].cols);
		free(pp->views[i].from);
	}
	free(pp->views);
	ppol_free_routines(pp);
	for (size_t i = 0; i < pp->nmembers; i++)
		free(pp->members[i]);
	free(pp->members);
	free(pp->fk_moves);
	cat_free(pp->cat);
	pol_free(pp->pol);
	free(pp);
}

/* The policy's plaintext roles as a text[] literal: {"a","b"}. */
static void role_array(const struct policy *pol, struct buf *out)
{
	buf_addc(out, '{');
	for (size_t i = 0; i < pol->ntables; i++)
		for (size_t j = 0; j < pol->tables[i].ncols; j++)
			for (size_t k = 0; k < pol->tables[i].cols[j].plaintext_roles.n; k++) {
				const char *r = pol->tables[i].cols[j].plaintext_roles.v[k];
				buf_adds(out, out->len > 1 ? ",\"" : "\"");
				for (; *r; r++) {
					if (*r == '"' || *r == '\\')
						buf_addc(out, '\\');
					buf_addc(out, *r);
				}
				buf_addc(out, '"');
			}
	buf_adds(out, "}");
	buf_addc(out, 0);
}

/* Who is a member (directly or through other roles) of a plaintext role. */
static int load_members(struct ppol *pp, PGconn *conn, char *err, size_t errlen)
{
	static const char sql[] =
	    "WITH RECURSIVE m(member, role) AS ("
	    "  SELECT member, roleid FROM pg_catalog.pg_auth_members"
	    "  UNION SELECT a.member, m.role FROM pg_catalog.pg_auth_members a JOIN m ON a.roleid = m.member)"
	    " SELECT u.rolname, r.rolname FROM m"
	    " JOIN pg_catalog.pg_roles u ON u.oid = m.member JOIN pg_catalog.pg_roles r ON r.oid = m.role"
	    " WHERE r.rolname = ANY($1::text[])";
	struct buf roles = BUF_INIT;
	role_array(pp->pol, &roles);
	const char *params[1] = { roles.p };
	PGresult *res = roles.failed ? NULL : PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
	int r = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "database: cannot read role memberships: %s", PQerrorMessage(conn));
		err[strcspn(err, "\n")] = 0;
		r = -EIO;
	}
	int n = r ? 0 : PQntuples(res);
	if (n && !(pp->members = calloc((size_t)n, sizeof(*pp->members))))
		r = -ENOMEM;
	for (int i = 0; !r && i < n; i++) {
		const char *u = PQgetvalue(res, i, 0), *g = PQgetvalue(res, i, 1);
		size_t ul = strlen(u), gl = strlen(g);
		if (!(pp->members[i] = malloc(ul + gl + 2))) {
			r = -ENOMEM;
			break;
		}
		memcpy(pp->members[i], u, ul + 1);
		memcpy(pp->members[i] + ul + 1, g, gl + 1);
		pp->nmembers++;
	}
	PQclear(res);
	buf_free(&roles);
	return r;
}

static int load_catalog(struct ppol *pp, PGconn *conn, char *err, size_t errlen)
{
	if (PQstatus(conn) != CONNECTION_OK) {
		snprintf(err, errlen, "database: %s", PQerrorMessage(conn));
		err[strcspn(err, "\n")] = 0;
		return -EIO;
	}
	/* a view's definition described takes its tables' locks: a table locked
	 * (ALTER, TRUNCATE, a REFRESH) fails the read soon, to be tried again */
	PQclear(PQexec(conn, "SET statement_timeout = '60s'; SET lock_timeout = '2s'"));
	int r = cat_load(conn, &pp->cat, err, errlen);
	return r ? r : load_members(pp, conn, err, errlen);
}

/* Whether a lock or the time ran out for res: the load fails, to be tried
 * again (a definition that cannot be described for good maps nothing). */
static bool ran_out(const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return state && (!strcmp(state, "55P03") || !strcmp(state, "57014"));
}

/* What a view shows of its policy table's columns: PostgreSQL describes
 * the view's definition (pg_get_viewdef), and its RowDescription names the
 * table (or view) column behind each column that is one as it is. A
 * computed column is not mapped: its values reach the client as the table
 * holds them. A definition that does not describe maps none. */
static int map_view(struct pp_view *v, PGconn *conn)
{
	char oid[16];
	const char *params[] = { oid };
	int r = 0;

	snprintf(oid, sizeof(oid), "%u", v->oid);
	PGresult *def = PQexecParams(conn, "SELECT pg_catalog.pg_get_viewdef($1::pg_catalog.oid)", 1, NULL,
	                             params, NULL, NULL, 0);
	bool ok = PQresultStatus(def) == PGRES_TUPLES_OK && PQntuples(def) == 1 && !PQgetisnull(def, 0, 0);
	PGresult *prep = ok ? PQprepare(conn, "", PQgetvalue(def, 0, 0), 0, NULL) : NULL;
	PGresult *desc = PQresultStatus(prep) == PGRES_COMMAND_OK ? PQdescribePrepared(conn, "") : NULL;
	if (ran_out(def) || ran_out(prep) || ran_out(desc))
		r = -EAGAIN;
	int n = PQresultStatus(desc) == PGRES_COMMAND_OK ? PQnfields(desc) : 0;
	if (n > 0 && n <= INT16_MAX &&
	    (!(v->cols = calloc((size_t)n, sizeof(*v->cols))) ||
	     !(v->from = calloc((size_t)n, sizeof(*v->from)))))
		r = -ENOMEM;
	for (int i = 0; !r && v->cols && i < n; i++, v->ncols++) {
		uint32_t from = PQftable(desc, i);
		if (from == v->t->oid)
			v->cols[i] = ppol_column(v->t, (int16_t)PQftablecol(desc, i));
		else
			v->from[i] = (struct pp_origin){ from, (int16_t)PQftablecol(desc, i) };
	}
	PQclear(desc);
	PQclear(prep);
	PQclear(def);
	return r;
}

/* The policy table's column (of t; NULL: any) that column attnum of the
 * view with this OID shows as it is, or NULL. */
static const struct pp_column *view_column(const struct ppol *pp, const struct pp_table *t, uint32_t oid,
                                           int16_t attnum)
{
	for (size_t i = 0; oid && i < pp->nviews; i++) {
		const struct pp_view *v = &pp->views[i];
		if (v->oid == oid && (!t || v->t == t) && attnum >= 1 && attnum <= v->ncols &&
		    v->cols[attnum - 1])
			return v->cols[attnum - 1];
	}
	return NULL;
}

/* A view's column that shows another view's, over the same table, as it
 * is shows what that one shows: a level of views a round. */
static void map_views_of_views(struct ppol *pp)
{
	bool more = true;

	for (int round = 0; more && round < 16; round++) {
		more = false;
		for (size_t i = 0; i < pp->nviews; i++) {
			struct pp_view *v = &pp->views[i];
			for (int16_t a = 0; v->from && a < v->ncols; a++)
				if (!v->cols[a] &&
				    (v->cols[a] = view_column(pp, v->t, v->from[a].oid, v->from[a].attnum)))
					more = true;
		}
	}
	for (size_t i = 0; i < pp->nviews; i++) {
		free(pp->views[i].from);
		pp->views[i].from = NULL;
	}
}

/* Where the column named name is in t's columns, or -1. */
static int column_index(const struct pp_table *t, const char *name)
{
	for (int16_t i = 0; name && i < t->ncols; i++)
		if (t->cols[i].name && !strcmp(t->cols[i].name, name))
			return i;
	return -1;
}

/* The policy's name of a policy table the catalog shows renamed (or name). */
static const char *policy_name(const struct ppol *pp, const char *name)
{
	for (size_t i = 0; i < pp->pol->ntables && i < pp->n; i++)
		if (pp->t[i].oid && !strcmp(pp->t[i].name, name))
			return pp->t[i].pt->name;
	return name;
}

/* The catalog's foreign keys with renamed policy tables under the
 * policy's names, as the policy's relations and subjects name them: the
 * subject maps reach from a renamed subject table to those naming it. */
static int policy_fks(const struct ppol *pp, struct catalog *as)
{
	*as = *pp->cat;
	if (!(as->fks = calloc(pp->cat->nfks + 1, sizeof(*as->fks))))
		return -ENOMEM;
	for (size_t i = 0; i < pp->cat->nfks; i++) {
		as->fks[i] = pp->cat->fks[i];
		as->fks[i].from_table = (char *)policy_name(pp, as->fks[i].from_table);
		as->fks[i].to_table = (char *)policy_name(pp, as->fks[i].to_table);
	}
	return 0;
}

/* Marks the columns that hold a subject's id, one subject map for all
 * tables: a policy table under the policy's name (renamed or not), as are
 * the tables related to it (their own foreign keys are not its). */
static int mark_subjects(struct ppol *pp)
{
	struct catalog as;
	int err = pp->cat ? policy_fks(pp, &as) : 0;

	for (size_t s = 0; !err && pp->cat && s < pp->pol->nsubjects; s++) {
		struct sm_map *m;
		int r = sm_build(pp->pol, &as, pp->pol->subjects[s].type, &m);
		if (r == -ENOENT)
			continue;
		if ((err = r))
			break;
		for (size_t i = 0; i < pp->n; i++) {
			struct pp_table *t = &pp->t[i];
			int k = column_index(t, sm_direct_column(m, t->pt->name));
			if (k < 0)
				continue;
			t->cols[k].subject = pp->pol->subjects[s].type;
			if (!t->subject_col) {
				t->subject_col = t->cols[k].name;
				t->subject = pp->pol->subjects[s].type;
			}
		}
		sm_free(m);
	}
	if (pp->cat)
		free(as.fks);
	return err;
}

/* The policy's columns that the catalog read before had at attribute
 * numbers of this table that now hold another name: renamed since. Their
 * values are encrypted and bound as before, under the policy's name. */
static void follow_columns(struct pp_table *t, const struct ppol *prev)
{
	const struct pp_table *was = prev ? ppol_by_oid(prev, t->oid) : NULL;

	for (int16_t k = 0; was && k < t->ncols && k < was->ncols; k++) {
		const struct pol_column *pc = was->cols[k].pc;
		if (pc && t->cols[k].name && !t->cols[k].pc)
			t->cols[k].pc = pol_column(t->pt, pc->name);
	}
}

/* Policy table pt as table ct of the catalog (NULL: not in the database
 * yet, matched by name only): itself, or one related to it; its columns
 * by name, or by where they were at the last read (prev). */
static int index_table(const struct pol_table *pt, const struct cat_table *ct, const struct ppol *prev,
                       struct pp_table *t)
{
	*t = (struct pp_table){ .pt = pt, .name = ct ? ct->name : pt->name };
	if (!ct)
		return 0;
	t->oid = ct->oid;
	for (size_t i = 0; i < ct->ncols; i++)
		if (ct->cols[i].attnum > t->ncols)
			t->ncols = (int16_t)ct->cols[i].attnum;
	if (!(t->cols = calloc((size_t)t->ncols + 1, sizeof(*t->cols))))
		return -ENOMEM;
	for (size_t i = 0; i < ct->ncols; i++) {
		const struct cat_column *cc = &ct->cols[i];
		if (cc->attnum < 1)
			continue;
		t->cols[cc->attnum - 1] = (struct pp_column){ .pc = pol_column(pt, cc->name),
			                                      .name = cc->name,
			                                      .table = pt->name,
			                                      .rel = t->name,
			                                      .type = cc->type,
			                                      .type_oid = cc->type_oid,
			                                      .generated = cc->generated,
			                                      .bytea = cc->type && !strcmp(cc->type, "bytea"),
			                                      .defaulted = cc->defaulted };
	}
	follow_columns(t, prev);
	return 0;
}

/* A policy table in the catalog: by its name, or by the OID it had at the
 * last read, renamed or moved to another schema since (its rows are the
 * same personal data). */
static const struct cat_table *find_table(const struct catalog *cat, const struct ppol *prev,
                                          const char *name)
{
	const struct cat_table *ct = cat ? cat_table(cat, name) : NULL;

	for (size_t i = 0; cat && !ct && prev && i < prev->pol->ntables && i < prev->n; i++)
		if (prev->t[i].oid && !strcmp(prev->t[i].pt->name, name))
			ct = cat_table_by_oid(cat, prev->t[i].oid);
	return ct;
}

/* A table related to two policy tables makes those related to it through
 * the first (inheriting it, or inherited by it) so too: its rows may be
 * theirs. (Set once both policy tables' relatives were indexed.) */
static void spread_also(struct ppol *pp)
{
	for (bool more = true; more;) {
		more = false;
		for (size_t j = 0; j < pp->cat->ninherits; j++) {
			const struct cat_inherit *h = &pp->cat->inherits[j];
			const struct pp_table *a = ppol_by_oid(pp, h->child), *b = ppol_by_oid(pp, h->parent);
			if (!a || !b || a->pt != b->pt || !a->also == !b->also ||
			    a - pp->t < (ptrdiff_t)pp->pol->ntables ||
			    b - pp->t < (ptrdiff_t)pp->pol->ntables)
				continue;
			pp->t[(a->also ? b : a) - pp->t].also = a->also ? a->also : b->also;
			more = true;
		}
	}
}

/* The tables related to a policy table by inheritance, at any depth, are
 * that table: those inheriting it or its partitions (a read of it returns
 * their rows), and its ancestors, those it inherits or is a partition of
 * (a write into them may go into it), but not their other descendants.
 * Their values are encrypted, decrypted and keyed as its own. */
static int index_related(struct ppol *pp, const struct ppol *prev)
{
	for (size_t i = 0; pp->cat && i < pp->n; i++)
		for (size_t j = 0; pp->t[i].oid && j < pp->cat->ninherits; j++) {
			const struct cat_inherit *h = &pp->cat->inherits[j];
			bool down = h->parent == pp->t[i].oid && !pp->t[i].ancestor;
			uint32_t other = down ? h->child : h->child == pp->t[i].oid ? h->parent : 0;
			const struct pp_table *known = other ? ppol_by_oid(pp, other) : NULL;
			size_t k = known ? (size_t)(known - pp->t) : 0;
			if (known && k >= pp->pol->ntables && known->pt != pp->t[i].pt && !known->also)
				pp->t[k].also = pp->t[i].pt; /* related to a second policy table */
			const struct cat_table *ct =
			    other && !known ? cat_table_by_oid(pp->cat, other) : NULL;
			if (!ct)
				continue;
			struct pp_table *v = realloc(pp->t, (pp->n + 1) * sizeof(*v));
			if (!v)
				return -ENOMEM;
			pp->t = v;
			int r = index_table(pp->t[i].pt, ct, prev, &pp->t[pp->n]);
			pp->t[pp->n].ancestor = !down;
			pp->t[pp->n].also = pp->t[i].also;
			pp->n++; /* its columns are freed with the rest */
			if (r)
				return r;
		}
	spread_also(pp);
	return 0;
}

/* The views that read policy tables, out of all the catalog's: a
 * statement's tables are looked up among these few. */
static int index_views(struct ppol *pp)
{
	for (size_t i = 0; pp->cat && i < pp->cat->nviews; i++) {
		const struct cat_view_dep *v = &pp->cat->views[i];
		for (size_t j = 0; j < pp->n; j++) {
			if (strcmp(pp->t[j].name, v->table))
				continue;
			struct pp_view *nv = realloc(pp->views, (pp->nviews + 1) * sizeof(*nv));
			if (!nv)
				return -ENOMEM;
			pp->views = nv;
			pp->views[pp->nviews++] =
			    (struct pp_view){ .name = v->view, .oid = v->oid, .t = &pp->t[j] };
		}
	}
	return 0;
}

int ppol_load(const char *const *files, size_t nfiles, const char *conninfo, struct ppol *prev,
              struct ppol **ret, char *err, size_t errlen)
{
	struct ppol *pp = calloc(1, sizeof(*pp));
	int r = pp ? 0 : -ENOMEM;

	if (pp)
		pp->refs = 1;
	if (!r && !(pp->pol = pol_load_all(files, nfiles, err, errlen)))
		r = -EINVAL;
	if (!r && pp->pol->ntables && !conninfo) {
		snprintf(err, errlen, "the policy names tables, but no database is configured");
		r = -EINVAL;
	}
	PGconn *conn = !r && conninfo ? pgc_connect(conninfo, "custosd catalog", NULL) : NULL;
	if (conn)
		r = load_catalog(pp, conn, err, errlen);
	else if (!r && conninfo)
		r = -ENOMEM;
	if (!r && !(pp->t = calloc(pp->pol->ntables + 1, sizeof(*pp->t))))
		r = -ENOMEM;
	for (size_t i = 0; !r && i < pp->pol->ntables; i++, pp->n++)
		r = index_table(&pp->pol->tables[i], find_table(pp->cat, prev, pp->pol->tables[i].name), prev,
		                &pp->t[i]);
	if (!r)
		r = index_related(pp, prev);
	if (!r)
		r = mark_subjects(pp);
	if (!r)
		r = index_views(pp);
	for (size_t i = 0; !r && conn && i < pp->nviews; i++)
		if ((r = map_view(&pp->views[i], conn)) == -EAGAIN)
			snprintf(err, errlen,
			         "database: a view's tables were locked while the catalog was read");
	if (!r && conn && PQstatus(conn) != CONNECTION_OK) { /* views would map nothing, silently */
		snprintf(err, errlen, "database: the connection was lost reading the catalog");
		r = -EIO;
	}
	if (!r)
		map_views_of_views(pp);
	PQfinish(conn);
	if (!r) /* (the keys first: a routine's writes may be carried by them) */
		r = ppol_index_moves(pp);
	if (!r)
		r = ppol_index_routines(pp, prev);
	if (r) {
		if (r == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		ppol_unref(pp);
		return r;
	}
	*ret = pp;
	return 0;
}

const struct pp_table *ppol_by_oid(const struct ppol *pp, uint32_t oid)
{
	for (size_t i = 0; oid && i < pp->n; i++)
		if (pp->t[i].oid == oid)
			return &pp->t[i];
	return NULL;
}

bool ppol_named(const char *full, const char *schema, const char *name)
{
	const char *dot = strchr(full, '.'), *rel = dot ? dot + 1 : full;

	return !strcmp(rel, name) && (!schema || (dot && strlen(schema) == (size_t)(dot - full) &&
	                                          !strncmp(full, schema, (size_t)(dot - full))));
}

const struct pp_table *ppol_by_name(const struct ppol *pp, const char *schema, const char *name)
{
	for (size_t i = 0; i < pp->n; i++)
		if (ppol_named(pp->t[i].name, schema, name))
			return &pp->t[i];
	return NULL;
}

size_t ppol_view_tables(const struct ppol *pp, const char *schema, const char *name,
                        const struct pp_table **out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < pp->nviews; i++) {
		const struct pp_table *t =
		    ppol_named(pp->views[i].name, schema, name) ? pp->views[i].t : NULL;
		for (size_t j = 0; t && j < n && j < max; j++)
			if (out[j] == t)
				t = NULL; /* read through two paths, or two views of that name */
		if (t && n < max)
			out[n] = t;
		n += t != NULL;
	}
	return n;
}

const struct pp_column *ppol_view_column(const struct ppol *pp, uint32_t oid, int16_t attnum)
{
	return view_column(pp, NULL, oid, attnum);
}

const struct pp_table *ppol_view_by_oid(const struct ppol *pp, uint32_t oid)
{
	for (size_t i = 0; oid && i < pp->nviews; i++)
		if (pp->views[i].oid == oid)
			return pp->views[i].t;
	return NULL;
}

const struct pp_column *ppol_column(const struct pp_table *t, int16_t attnum)
{
	return t && attnum >= 1 && attnum <= t->ncols ? &t->cols[attnum - 1] : NULL;
}

const struct pp_column *ppol_column_named(const struct pp_table *t, const char *name)
{
	int k = column_index(t, name);

	return k < 0 ? NULL : &t->cols[k];
}

bool ppol_plaintext(const struct ppol *pp, const char *user, const struct pol_column *pc)
{
	for (size_t i = 0; i < pc->plaintext_roles.n; i++) {
		const char *role = pc->plaintext_roles.v[i];
		if (!strcmp(role, user))
			return true;
		for (size_t j = 0; j < pp->nmembers; j++)
			if (!strcmp(pp->members[j], user) &&
			    !strcmp(pp->members[j] + strlen(pp->members[j]) + 1, role))
				return true;
	}
	return false;
}
