/* policy.c - see policy.h. The YAML is loaded as a document with libyaml
 * and walked with key tables: one per mapping the format has. */
#define _GNU_SOURCE
#include "policy.h"

#include "blindidx.h"
#include "policy_yaml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ---- columns ---- */

struct colparse {
	struct pol_column col;
	unsigned seen;
};

#define COL(f) ((struct colparse *)obj)->col.f

static bool k_category(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	const char *s = pyl_text(v);
	size_t i = 0;

	/* fideslang style: lower-case dotted words, e.g. user.contact.email */
	while (s && ((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_' ||
	             (s[i] == '.' && i && s[i + 1] && s[i + 1] != '.')))
		i++;
	if (!s || !*s || s[i] || !strchr(s, '.')) {
		pyl_err(c, v, "category must be a dotted data category such as user.contact.email");
		return false;
	}
	return pyl_str(c, v, "category", &COL(category));
}

static bool k_purposes(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	return pyl_list(c, v, "purposes", &COL(purposes));
}

static bool k_lawful_basis(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	static const char *const bases[] = { "consent",         "contract",    "legal_obligation",
		                             "vital_interests", "public_task", "legitimate_interests" };
	int i;

	return pyl_enum(c, v, "lawful_basis (GDPR Art. 6(1))", bases, ARRAY_SIZE(bases), &i) &&
	       pyl_str(c, v, "lawful_basis", &COL(lawful_basis));
}

static bool k_retention(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	return pyl_str(c, v, "retention", &COL(retention));
}

static bool k_source(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	return pyl_str(c, v, "source", &COL(source));
}

static bool k_recipients(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	return pyl_list(c, v, "recipients", &COL(recipients));
}

static bool k_provided(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	return pyl_bool(c, v, "provided_by_subject", &COL(provided_by_subject));
}

static bool k_encrypt(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	return pyl_bool(c, v, "encrypt", &COL(encrypt));
}

static bool k_about(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	static const char *const whom[] = { "subject", "others" };
	int i;

	if (!pyl_enum(c, v, "about", whom, ARRAY_SIZE(whom), &i))
		return false;
	COL(about_others) = i == 1;
	return true;
}

static bool k_roles(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	return pyl_list(c, v, "plaintext_roles", &COL(plaintext_roles));
}

static bool k_others(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	static const char *const others[] = { "mask", "ciphertext", "refuse" };
	int i;

	if (!pyl_enum(c, v, "others_see", others, ARRAY_SIZE(others), &i))
		return false;
	COL(others_see) = (enum pol_others)i;
	return true;
}

static bool bidx_column(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	return pyl_str(c, v, "blind_index.column", &COL(bidx_column));
}

static bool bidx_normalize(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	int i;

	return pyl_enum(c, v, "blind_index.normalize", bidx_norm_names, ARRAY_SIZE(bidx_norm_names), &i) &&
	       pyl_str(c, v, "normalize", &COL(bidx_normalize));
}

static bool bidx_bytes(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	uint64_t n;

	if (!pyl_text(v) || !parse_u64(pyl_text(v), &n) || n < 1 || n > 32) {
		pyl_err(c, v, "blind_index.bytes must be a whole number from 1 to 32");
		return false;
	}
	COL(bidx_bytes) = (unsigned)n;
	return true;
}

static bool k_blind_index(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	static const struct pyl_key keys[] = { { "column", bidx_column, true },
		                               { "normalize", bidx_normalize, false },
		                               { "bytes", bidx_bytes, false } };
	unsigned seen = pyl_walk(c, v, keys, ARRAY_SIZE(keys), obj, "blind_index");

	if (!(seen & 1) && v && v->type == YAML_MAPPING_NODE)
		pyl_err(c, v, "blind_index needs column: the column that holds the index");
	if (!(seen & 2) && !COL(bidx_normalize))
		COL(bidx_normalize) = strdup("none");
	if (!(seen & 4))
		COL(bidx_bytes) = 8;
	return true;
}

static bool retain_basis(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	return pyl_str(c, v, "erase.retain", &COL(retain_basis));
}

static bool retain_until(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	return pyl_str(c, v, "erase.until", &COL(retain_until));
}

static bool retain_after(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	return pyl_str(c, v, "erase.after", &COL(retain_after));
}

static bool retain_years(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	const char *s = pyl_text(v);
	uint64_t n;

	if (!s || !parse_u64(s, &n) || n < 1 || n > 100) {
		pyl_err(c, v, "erase.years must be a whole number of years from 1 to 100");
		return false;
	}
	COL(retain_years) = (unsigned)n;
	return true;
}

static bool k_erase(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	static const char *const ways[] = { "delete_row", "anonymize", "crypto_shred" };
	static const struct pyl_key keys[] = { { "retain", retain_basis, true },
		                               { "until", retain_until, true },
		                               { "after", retain_after, false },
		                               { "years", retain_years, false } };
	int i;

	if (v && v->type == YAML_MAPPING_NODE) {
		unsigned seen = pyl_walk(c, v, keys, ARRAY_SIZE(keys), obj, "erase");
		pyl_required(c, v, keys, ARRAY_SIZE(keys), seen,
		             "erase: {retain: <the legal exception>, until: <when it ends>}");
		if (!(seen & 4) != !(seen & 8))
			pyl_err(c, v, "erase: after (a date column) and years go together");
		COL(erase) = POL_ERASE_RETAIN;
		return true;
	}
	if (!pyl_enum(c, v, "erase", ways, ARRAY_SIZE(ways), &i))
		return false;
	COL(erase) = (enum pol_erase)i;
	return true;
}

/* Required keys may come from the column or from its table's defaults. */
static const struct pyl_key column_keys[] = {
	{ "category", k_category, true },
	{ "purposes", k_purposes, true },
	{ "lawful_basis", k_lawful_basis, true },
	{ "retention", k_retention, true },
	{ "source", k_source, true },
	{ "recipients", k_recipients, true },
	{ "provided_by_subject", k_provided, true },
	{ "encrypt", k_encrypt, false },
	{ "blind_index", k_blind_index, false },
	{ "erase", k_erase, true },
	{ "plaintext_roles", k_roles, false },
	{ "others_see", k_others, false },
	{ "about", k_about, false },
};

static void column_free(struct pol_column *col)
{
	char **s[] = { &col->name,         &col->category,    &col->lawful_basis,   &col->retention,
		       &col->source,       &col->bidx_column, &col->bidx_normalize, &col->retain_basis,
		       &col->retain_until, &col->retain_after };

	for (size_t i = 0; i < ARRAY_SIZE(s); i++)
		free(*s[i]);
	pyl_list_free(&col->purposes);
	pyl_list_free(&col->recipients);
	pyl_list_free(&col->plaintext_roles);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void list_copy(struct pol_list *to, const struct pol_list *from)
{
	for (size_t i = 0; i < from->n; i++)
		pyl_list_add(to, from->v[i]);
}

/* A deep copy of a table's defaults, to start a column from. */
static void column_from_defaults(struct colparse *to, const struct colparse *d)
{
	const struct pol_column *f = &d->col;
	struct pol_column *t = &to->col;

	*to = *d;
	t->category = dup_or_null(f->category);
	t->lawful_basis = dup_or_null(f->lawful_basis);
	t->retention = dup_or_null(f->retention);
	t->source = dup_or_null(f->source);
	t->bidx_column = dup_or_null(f->bidx_column);
	t->bidx_normalize = dup_or_null(f->bidx_normalize);
	t->retain_basis = dup_or_null(f->retain_basis);
	t->retain_until = dup_or_null(f->retain_until);
	t->retain_after = dup_or_null(f->retain_after);
	t->purposes = t->recipients = t->plaintext_roles = (struct pol_list){ 0 };
	list_copy(&t->purposes, &f->purposes);
	list_copy(&t->recipients, &f->recipients);
	list_copy(&t->plaintext_roles, &f->plaintext_roles);
}

static void column_check(struct pyl_ctx *c, yaml_node_t *n, struct colparse *cp, const char *table)
{
	struct pol_column *col = &cp->col;
	char where[256];

	snprintf(where, sizeof(where), "column %s.%s (or its table's defaults)", table, col->name);
	pyl_required(c, n, column_keys, ARRAY_SIZE(column_keys), cp->seen, where);
	if (col->erase == POL_ERASE_CRYPTO_SHRED && !col->encrypt)
		pyl_err(c, n,
		        "column %s.%s: erase: crypto_shred needs encrypt: true (only encrypted values die "
		        "with their key)",
		        table, col->name);
	if (col->bidx_column && !col->encrypt)
		pyl_err(
		    c, n,
		    "column %s.%s: a blind_index is for encrypted columns; set encrypt: true or remove it",
		    table, col->name);
	if (col->bidx_column && !strcmp(col->bidx_column, col->name))
		pyl_err(c, n, "column %s.%s: the blind index needs a column of its own", table, col->name);
}

/* ---- tables ---- */

/* A lower-case SQL identifier path with exactly parts dot-separated parts. */
static bool ident(const char *s, size_t parts)
{
	size_t dots = 0;

	for (size_t i = 0; s[i]; i++) {
		bool first = i == 0 || s[i - 1] == '.';
		if (s[i] == '.') {
			if (first || !s[i + 1])
				return false;
			dots++;
		} else if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_' ||
		             (!first && s[i] >= '0' && s[i] <= '9'))) {
			return false;
		}
	}
	return *s && dots + 1 == parts;
}

static void parse_column(struct pyl_ctx *c, struct pol_table *t, yaml_node_t *k, yaml_node_t *v,
                         const struct colparse *defaults)
{
	struct colparse cp;
	char where[256];
	const char *name = pyl_text(k);

	if (!name || !ident(name, 1)) {
		pyl_err(c, k, "column names are lower-case SQL identifiers (got \"%s\")", name ? name : "?");
		return;
	}
	for (size_t i = 0; i < t->ncols; i++)
		if (!strcmp(t->cols[i].name, name))
			pyl_err(c, k, "column %s.%s declared twice (first at line %u)", t->name, name,
			        t->cols[i].pos.line);
	column_from_defaults(&cp, defaults);
	cp.col.name = strdup(name);
	cp.col.pos = pyl_pos(c, k);
	snprintf(where, sizeof(where), "column %s.%s", t->name, name);
	cp.seen |= pyl_walk(c, v, column_keys, ARRAY_SIZE(column_keys), &cp, where);
	column_check(c, k, &cp, t->name);
	struct pol_column *cols = realloc(t->cols, (t->ncols + 1) * sizeof(*cols));
	if (!cols) {
		column_free(&cp.col);
		return;
	}
	t->cols = cols;
	t->cols[t->ncols++] = cp.col;
}

struct tableparse {
	struct colparse defaults;
	yaml_node_t *columns;
};

static bool t_defaults(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	struct tableparse *tp = obj;

	tp->defaults.seen |= pyl_walk(c, v, column_keys, ARRAY_SIZE(column_keys), &tp->defaults, "defaults");
	return true;
}

static bool t_columns(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	(void)c;
	((struct tableparse *)obj)->columns = v;
	return true;
}

static void table_free(struct pol_table *t)
{
	for (size_t i = 0; i < t->ncols; i++)
		column_free(&t->cols[i]);
	free(t->cols);
	free(t->name);
}

static void parse_columns(struct pyl_ctx *c, struct pol_table *t, struct tableparse *tp)
{
	if (tp->columns->type != YAML_MAPPING_NODE) {
		pyl_err(c, tp->columns, "%s: columns must map column names to their description", t->name);
		return;
	}
	for (yaml_node_pair_t *pr = tp->columns->data.mapping.pairs.start;
	     pr < tp->columns->data.mapping.pairs.top; pr++) {
		yaml_node_t *ck = pyl_node(c, pr->key), *cv = pyl_node(c, pr->value);
		if (!ck || !cv)
			return;
		parse_column(c, t, ck, cv, &tp->defaults);
	}
}

static void parse_table(struct pyl_ctx *c, yaml_node_t *k, yaml_node_t *v)
{
	static const struct pyl_key keys[] = { { "defaults", t_defaults, false },
		                               { "columns", t_columns, true } };
	struct tableparse tp = { 0 };
	struct pol_table t = { 0 };

	if (!pyl_text(k) || !ident(pyl_text(k), 2)) {
		pyl_err(c, k, "tables are named schema.table in lower case (got \"%s\")",
		        pyl_text(k) ? pyl_text(k) : "?");
		return;
	}
	t.name = strdup(pyl_text(k));
	t.pos = pyl_pos(c, k);
	pyl_required(c, k, keys, ARRAY_SIZE(keys), pyl_walk(c, v, keys, ARRAY_SIZE(keys), &tp, t.name),
	             t.name);
	if (tp.columns)
		parse_columns(c, &t, &tp);
	column_free(&tp.defaults.col);
	struct pol_table *nv = realloc(c->p->tables, (c->p->ntables + 1) * sizeof(*nv));
	if (!nv) {
		table_free(&t);
		return;
	}
	c->p->tables = nv;
	c->p->tables[c->p->ntables++] = t;
}

/* ---- subjects and relations ---- */

static bool s_table(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	if (pyl_text(v) && !ident(pyl_text(v), 2)) {
		pyl_err(c, v, "table must be named schema.table");
		return false;
	}
	return pyl_str(c, v, "table", &((struct pol_subject *)obj)->table);
}

static bool s_id(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	if (pyl_text(v) && !ident(pyl_text(v), 1)) {
		pyl_err(c, v, "id must be a column name");
		return false;
	}
	return pyl_str(c, v, "id", &((struct pol_subject *)obj)->id_column);
}

static void parse_subject(struct pyl_ctx *c, yaml_node_t *k, yaml_node_t *v)
{
	static const struct pyl_key keys[] = { { "table", s_table, true }, { "id", s_id, true } };
	struct pol_subject s = { 0 };

	if (!pyl_text(k) || !ident(pyl_text(k), 1)) {
		pyl_err(c, k, "subject types are lower-case words such as customer");
		return;
	}
	s.type = strdup(pyl_text(k));
	s.pos = pyl_pos(c, k);
	pyl_required(c, k, keys, ARRAY_SIZE(keys), pyl_walk(c, v, keys, ARRAY_SIZE(keys), &s, s.type),
	             s.type);
	struct pol_subject *nv = realloc(c->p->subjects, (c->p->nsubjects + 1) * sizeof(*nv));
	if (!nv) {
		free(s.type);
		free(s.table);
		free(s.id_column);
		return;
	}
	c->p->subjects = nv;
	c->p->subjects[c->p->nsubjects++] = s;
}

/* A link's columns: "schema.table.column", or a list of such names of
 * one table's columns (a link of several columns, paired in order). What
 * is wrong leaves table NULL and no columns. */
static bool split_columns(struct pyl_ctx *c, yaml_node_t *v, const char *what, char **table, char ***cols,
                          size_t *n)
{
	bool list = v->type == YAML_SEQUENCE_NODE;
	yaml_node_item_t *items = list ? v->data.sequence.items.start : NULL;
	size_t count = list ? (size_t)(v->data.sequence.items.top - items) : 1;

	if (!count || count > POL_MAX_LINK_COLUMNS) {
		pyl_err(c, v, "%s must name 1 to %d columns", what, POL_MAX_LINK_COLUMNS);
		return false;
	}
	if (!(*cols = calloc(count, sizeof(**cols))))
		return false;
	for (size_t k = 0; k < count; k++) {
		yaml_node_t *e = list ? pyl_node(c, items[k]) : v;
		const char *s = e ? pyl_text(e) : NULL, *dot;
		if (!s || !ident(s, 3)) {
			pyl_err(c, e ? e : v,
			        "%s must name a column as schema.table.column, or a list of them", what);
			goto fail;
		}
		dot = strrchr(s, '.');
		size_t tl = (size_t)(dot - s);
		if (*table && (strncmp(*table, s, tl) || (*table)[tl])) {
			pyl_err(c, e, "%s names the columns of one table: %.*s is not %s", what, (int)tl, s,
			        *table);
			goto fail;
		}
		for (size_t j = 0; j < *n; j++)
			if (!strcmp((*cols)[j], dot + 1)) {
				pyl_err(c, e, "%s names column %s twice", what, dot + 1);
				goto fail;
			}
		if ((!*table && !(*table = strndup(s, tl))) || !((*cols)[*n] = strdup(dot + 1)))
			goto fail;
		(*n)++;
	}
	return true;
fail:
	while (*n)
		free((*cols)[--*n]);
	free(*cols);
	free(*table);
	*cols = NULL;
	*table = NULL;
	return false;
}

/* A relation as parsed: the two sides count their columns apart until
 * they are compared. */
struct relparse {
	struct pol_relation r;
	size_t nto;
};

static bool r_from(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	struct relparse *rp = obj;
	return split_columns(c, v, "from", &rp->r.from_table, &rp->r.from_columns, &rp->r.ncolumns);
}

static bool r_to(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	struct relparse *rp = obj;
	return split_columns(c, v, "to", &rp->r.to_table, &rp->r.to_columns, &rp->nto);
}

static void relation_free(struct pol_relation *r, size_t nto)
{
	free(r->from_table);
	free(r->to_table);
	for (size_t i = 0; i < r->ncolumns; i++)
		free(r->from_columns[i]);
	for (size_t i = 0; i < nto; i++)
		free(r->to_columns[i]);
	free(r->from_columns);
	free(r->to_columns);
}

static bool k_relations(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	static const struct pyl_key keys[] = { { "from", r_from, true }, { "to", r_to, true } };

	(void)obj;
	if (!v || v->type != YAML_SEQUENCE_NODE) {
		pyl_err(c, v,
		        "relations must be a list of {from: schema.table.column, to: schema.table.column}");
		return false;
	}
	for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
		yaml_node_t *e = pyl_node(c, *i);
		struct relparse rp = { 0 };
		if (!e)
			return false;
		rp.r.pos = pyl_pos(c, e);
		pyl_required(c, e, keys, ARRAY_SIZE(keys),
		             pyl_walk(c, e, keys, ARRAY_SIZE(keys), &rp, "relation"), "relation");
		bool ok = rp.r.from_table && rp.r.to_table; /* else what is wrong is told */
		if (ok && rp.r.ncolumns != rp.nto) {
			pyl_err(c, e, "relation: from names %zu columns and to %zu; they pair up in order",
			        rp.r.ncolumns, rp.nto);
			ok = false;
		}
		struct pol_relation *nv =
		    ok ? realloc(c->p->relations, (c->p->nrelations + 1) * sizeof(*nv)) : NULL;
		if (!nv) {
			relation_free(&rp.r, rp.nto);
			if (ok)
				return false;
			continue;
		}
		c->p->relations = nv;
		c->p->relations[c->p->nrelations++] = rp.r;
	}
	return true;
}

/* ---- the document ---- */

static bool each_pair(struct pyl_ctx *c, yaml_node_t *v, const char *what,
                      void (*fn)(struct pyl_ctx *, yaml_node_t *, yaml_node_t *))
{
	if (!v || v->type != YAML_MAPPING_NODE) {
		pyl_err(c, v, "%s must be a mapping", what);
		return false;
	}
	for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = pyl_node(c, pr->key), *val = pyl_node(c, pr->value);
		if (!k || !val)
			return false;
		fn(c, k, val);
	}
	return true;
}

static bool k_version(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	(void)obj;
	if (!pyl_text(v) || strcmp(pyl_text(v), "1")) {
		pyl_err(c, v, "this Custos reads policy format 1 (custos-policy: 1)");
		return false;
	}
	return true;
}

static bool k_fks(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	(void)obj;
	return pyl_bool(c, v, "foreign_keys", &c->p->foreign_keys);
}

static bool k_subjects(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	(void)obj;
	return each_pair(c, v, "subjects", parse_subject);
}

static bool k_tables(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	(void)obj;
	return each_pair(c, v, "tables", parse_table);
}

static void parse_document(struct pyl_ctx *c)
{
	static const struct pyl_key keys[] = {
		{ "custos-policy", k_version, true },
		{ "foreign_keys", k_fks, false },
		{ "subjects", k_subjects, false },
		{ "relations", k_relations, false },
		{ "tables", k_tables, false },
		{ "controller", pol_parse_controller, false },
		{ "requests", pol_parse_requests, false },
	};
	yaml_node_t *root = yaml_document_get_root_node(c->doc);

	if (!root) {
		pyl_err(c, NULL, "empty policy: it needs at least custos-policy: 1");
		return;
	}
	unsigned seen = pyl_walk(c, root, keys, ARRAY_SIZE(keys), NULL, "the policy");
	if (root->type == YAML_MAPPING_NODE)
		pyl_required(c, root, keys, ARRAY_SIZE(keys), seen, "the policy");
}

struct policy *pol_new(void)
{
	struct policy *p = calloc(1, sizeof(*p));

	if (p) {
		p->foreign_keys = true;
		p->requests.erasure_approval = POL_APPROVAL_SECOND_PERSON;
	}
	return p;
}

void pol_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->ntables; i++)
		table_free(&p->tables[i]);
	for (size_t i = 0; i < p->nsubjects; i++) {
		free(p->subjects[i].type);
		free(p->subjects[i].table);
		free(p->subjects[i].id_column);
	}
	for (size_t i = 0; i < p->nrelations; i++)
		relation_free(&p->relations[i], p->relations[i].ncolumns);
	for (size_t i = 0; i < p->nfiles; i++)
		free(p->files[i]);
	free(p->tables);
	free(p->subjects);
	free(p->relations);
	free(p->files);
	pol_controller_free(&p->controller);
	free(p);
}

static const char *keep_name(struct policy *p, const char *path)
{
	char **v = realloc(p->files, (p->nfiles + 1) * sizeof(*v));

	if (!v)
		return NULL;
	p->files = v;
	if (!(v[p->nfiles] = strdup(path)))
		return NULL;
	return v[p->nfiles++];
}

int pol_parse(struct policy *p, const char *name, const char *data, size_t len, struct buf *errs)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	struct pyl_ctx c = { .p = p, .doc = &doc, .errs = errs };

	if (len > POL_MAX_FILE)
		return -EFBIG;
	if (!(c.file = keep_name(p, name)) || !yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	if (!yaml_parser_load(&parser, &doc)) {
		buf_printf(errs, "%s:%zu:%zu: not valid YAML: %s\n", name, parser.problem_mark.line + 1,
		           parser.problem_mark.column + 1, parser.problem ? parser.problem : "syntax error");
		p->errors++;
	} else {
		parse_document(&c);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	return 0;
}

int pol_load(struct policy *p, const char *path, struct buf *errs)
{
	char *data;
	size_t len;
	int r = read_file(path, POL_MAX_FILE, &data, &len);

	if (r)
		return r;
	r = pol_parse(p, path, data, len, errs);
	free(data);
	return r;
}

struct policy *pol_load_all(const char *const *files, size_t nfiles, char *err, size_t errlen)
{
	struct buf errs = BUF_INIT;
	struct policy *p = pol_new();
	int r = p ? 0 : -ENOMEM;

	for (size_t i = 0; !r && i < nfiles; i++)
		r = pol_load(p, files[i], &errs);
	if (!r)
		pol_check(p, &errs);
	if (!r && p->errors)
		r = -EINVAL;
	if (r) {
		buf_addc(&errs, 0);
		snprintf(err, errlen, "policy: %s", errs.p && *errs.p ? errs.p : strerror(-r));
		err[strcspn(err, "\n")] = 0;
		pol_free(p);
		p = NULL;
	}
	buf_free(&errs);
	return p;
}

/* ---- across files ---- */

const struct pol_table *pol_table(const struct policy *p, const char *name)
{
	for (size_t i = 0; i < p->ntables; i++)
		if (!strcmp(p->tables[i].name, name))
			return &p->tables[i];
	return NULL;
}

const struct pol_column *pol_column(const struct pol_table *t, const char *name)
{
	for (size_t i = 0; t && i < t->ncols; i++)
		if (!strcmp(t->cols[i].name, name))
			return &t->cols[i];
	return NULL;
}

void pol_error(struct policy *p, struct buf *errs, const struct pol_pos *pos, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	buf_printf(errs, "%s:%u:%u: %s\n", pos->file, pos->line, pos->col, msg);
	p->errors++;
}

/* Two relations between the same two tables to other columns of the
 * referenced one: the halves of one key of several columns, which the map
 * would follow one at a time (two links to the same columns, a buyer's and
 * a seller's id, are two ways to one subject: it follows the first). */
static bool split_key(const struct pol_relation *a, const struct pol_relation *b)
{
	if (strcmp(a->from_table, b->from_table) || strcmp(a->to_table, b->to_table))
		return false;
	if (a->ncolumns != b->ncolumns)
		return true;
	for (size_t k = 0; k < a->ncolumns; k++)
		if (strcmp(a->to_columns[k], b->to_columns[k]))
			return true;
	return false;
}

void pol_check(struct policy *p, struct buf *errs)
{
	for (size_t i = 0; i < p->ntables; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(p->tables[i].name, p->tables[j].name))
				pol_error(p, errs, &p->tables[i].pos,
				          "table %s declared twice (first at %s:%u)", p->tables[i].name,
				          p->tables[j].pos.file, p->tables[j].pos.line);
	for (size_t i = 0; i < p->nsubjects; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(p->subjects[i].type, p->subjects[j].type))
				pol_error(p, errs, &p->subjects[i].pos,
				          "subject type %s declared twice (first at %s:%u)",
				          p->subjects[i].type, p->subjects[j].pos.file,
				          p->subjects[j].pos.line);
	for (size_t i = 0; i < p->ntables; i++) {
		const struct pol_table *t = &p->tables[i];
		for (size_t j = 0; j < t->ncols; j++)
			if (t->cols[j].bidx_column && pol_column(t, t->cols[j].bidx_column))
				pol_error(p, errs, &t->cols[j].pos,
				          "column %s.%s: its blind index column %s is itself declared as "
				          "personal data",
				          t->name, t->cols[j].name, t->cols[j].bidx_column);
	}
	for (size_t i = 0; i < p->nrelations; i++)
		for (size_t j = 0; j < i; j++)
			if (split_key(&p->relations[i], &p->relations[j]))
				pol_error(
				    p, errs, &p->relations[i].pos,
				    "a second relation from %s to %s, to other columns (the first at %s:%u): "
				    "the map follows one link between two tables; a link of several columns "
				    "is one relation listing them, from: [%s.a, %s.b], to: [...]",
				    p->relations[i].from_table, p->relations[i].to_table,
				    p->relations[j].pos.file, p->relations[j].pos.line,
				    p->relations[i].from_table, p->relations[i].from_table);
	if (!p->nsubjects && p->ntables)
		pol_error(p, errs, &p->tables[0].pos,
		          "personal data needs a subject: declare subjects: with the root table of each");
}
