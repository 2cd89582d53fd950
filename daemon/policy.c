/* policy.c - see policy.h. The YAML is loaded as a document with libyaml
 * and walked with key tables: one per mapping the format has. */
#define _GNU_SOURCE
#include "policy.h"

#include "blindidx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_NODES 200000 /* aliases can make a small file walk large */

struct ctx {
	struct policy *p;
	yaml_document_t *doc;
	const char *file;
	struct buf *errs;
	size_t visits;
};

static void err_at(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void err_at(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	buf_printf(c->errs, "%s:%zu:%zu: %s\n", c->file, n ? n->start_mark.line + 1 : 1,
	           n ? n->start_mark.column + 1 : 1, msg);
	c->p->errors++;
}

static struct pol_pos pos_of(struct ctx *c, const yaml_node_t *n)
{
	return (struct pol_pos){ c->file, (unsigned)n->start_mark.line + 1,
		                 (unsigned)n->start_mark.column + 1 };
}

static yaml_node_t *node(struct ctx *c, int id)
{
	if (++c->visits == MAX_NODES)
		err_at(c, NULL, "policy too large or too deeply aliased (over %d nodes)", MAX_NODES);
	return c->visits < MAX_NODES ? yaml_document_get_node(c->doc, id) : NULL;
}

static const char *text(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* ---- edit distance for "did you mean" ---- */

static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[64];

	if (la >= 63 || lb >= 63)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

const char *pol_suggest(const char *s, const char *const *words, size_t n)
{
	const char *best = NULL;
	size_t bd = 3;

	for (size_t i = 0; i < n; i++) {
		size_t d = distance(s, words[i]);
		if (d < bd) {
			bd = d;
			best = words[i];
		}
	}
	return best;
}

/* ---- scalars ---- */

static bool get_str(struct ctx *c, yaml_node_t *n, const char *what, char **ret)
{
	const char *s = text(n);

	if (!s || !*s) {
		err_at(c, n, "%s must be a non-empty string", what);
		return false;
	}
	free(*ret);
	*ret = strdup(s);
	return *ret != NULL;
}

static bool get_bool(struct ctx *c, yaml_node_t *n, const char *what, bool *ret)
{
	static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
	const char *s = text(n);

	for (size_t i = 0; s && i < ARRAY_SIZE(yes); i++) {
		if (!strcmp(s, yes[i]) || !strcmp(s, no[i])) {
			*ret = !strcmp(s, yes[i]);
			return true;
		}
	}
	err_at(c, n, "%s must be true or false", what);
	return false;
}

static bool get_enum(struct ctx *c, yaml_node_t *n, const char *what, const char *const *words, size_t nw,
                     int *ret)
{
	const char *s = text(n);
	struct buf all = BUF_INIT;

	for (size_t i = 0; s && i < nw; i++) {
		if (!strcmp(s, words[i])) {
			*ret = (int)i;
			return true;
		}
	}
	for (size_t i = 0; i < nw; i++)
		buf_printf(&all, "%s%s", i ? ", " : "", words[i]);
	const char *sug = s ? pol_suggest(s, words, nw) : NULL;
	if (sug)
		err_at(c, n, "%s \"%s\" is not one of %s; did you mean \"%s\"?", what, s, all.p, sug);
	else
		err_at(c, n, "%s must be one of %s", what, all.failed ? "the documented values" : all.p);
	buf_free(&all);
	return false;
}

static bool list_add(struct pol_list *l, const char *s)
{
	char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (!v)
		return false;
	l->v = v;
	return (l->v[l->n] = strdup(s)) && ++l->n;
}

static void list_free(struct pol_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	*l = (struct pol_list){ 0 };
}

/* A sequence of non-empty strings (may be empty: []). */
static bool get_list(struct ctx *c, yaml_node_t *n, const char *what, struct pol_list *ret)
{
	if (!n || n->type != YAML_SEQUENCE_NODE) {
		err_at(c, n, "%s must be a list, e.g. [a, b]", what);
		return false;
	}
	list_free(ret);
	for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
		yaml_node_t *e = node(c, *i);
		if (!text(e) || !*text(e)) {
			err_at(c, e ? e : n, "each entry of %s must be a non-empty string", what);
			return false;
		}
		if (!list_add(ret, text(e)))
			return false;
	}
	return true;
}

/* ---- mappings with key tables ---- */

struct key {
	const char *name;
	bool (*fn)(struct ctx *c, yaml_node_t *val, void *obj);
	bool required;
};

/* One error naming every required key that is missing. */
static void check_required(struct ctx *c, yaml_node_t *n, const struct key *keys, size_t nk, unsigned seen,
                           const char *where)
{
	struct buf missing = BUF_INIT;

	for (size_t i = 0; i < nk; i++)
		if (keys[i].required && !(seen & (1u << i)))
			buf_printf(&missing, "%s%s", missing.len ? ", " : "", keys[i].name);
	if (missing.len && !missing.failed)
		err_at(c, n, "%s: missing %s", where, missing.p);
	buf_free(&missing);
}

/* Calls each key's handler; refuses unknown and repeated keys. Returns a
 * bit per key table entry that was present. */
static unsigned walk_map(struct ctx *c, yaml_node_t *n, const struct key *keys, size_t nk, void *obj,
                         const char *where)
{
	const char *names[32];
	unsigned seen = 0;

	if (!n || n->type != YAML_MAPPING_NODE) {
		err_at(c, n, "%s must be a mapping of keys to values", where);
		return 0;
	}
	for (size_t i = 0; i < nk; i++)
		names[i] = keys[i].name;
	for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = node(c, pr->key), *v = node(c, pr->value);
		const char *name = text(k);
		size_t i = 0;
		while (name && i < nk && strcmp(name, keys[i].name))
			i++;
		if (!k || !v)
			return seen;
		if (!name || i == nk) {
			const char *sug = name ? pol_suggest(name, names, nk) : NULL;
			err_at(c, k, "unknown key \"%s\" in %s%s%s%s", name ? name : "(not a string)", where,
			       sug ? "; did you mean \"" : "", sug ? sug : "", sug ? "\"?" : "");
		} else if (seen & (1u << i)) {
			err_at(c, k, "key \"%s\" given twice in %s", name, where);
		} else {
			seen |= 1u << i;
			keys[i].fn(c, v, obj);
		}
	}
	return seen;
}

/* ---- columns ---- */

struct colparse {
	struct pol_column col;
	unsigned seen;
};

#define COL(f) ((struct colparse *)obj)->col.f

static bool k_category(struct ctx *c, yaml_node_t *v, void *obj)
{
	const char *s = text(v);
	size_t i = 0;

	/* fideslang style: lower-case dotted words, e.g. user.contact.email */
	while (s && ((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_' ||
	             (s[i] == '.' && i && s[i + 1] && s[i + 1] != '.')))
		i++;
	if (!s || !*s || s[i] || !strchr(s, '.')) {
		err_at(c, v, "category must be a dotted data category such as user.contact.email");
		return false;
	}
	return get_str(c, v, "category", &COL(category));
}

static bool k_purposes(struct ctx *c, yaml_node_t *v, void *obj)
{
	return get_list(c, v, "purposes", &COL(purposes));
}

static bool k_lawful_basis(struct ctx *c, yaml_node_t *v, void *obj)
{
	static const char *const bases[] = { "consent",         "contract",    "legal_obligation",
		                             "vital_interests", "public_task", "legitimate_interests" };
	int i;

	return get_enum(c, v, "lawful_basis (GDPR Art. 6(1))", bases, ARRAY_SIZE(bases), &i) &&
	       get_str(c, v, "lawful_basis", &COL(lawful_basis));
}

static bool k_retention(struct ctx *c, yaml_node_t *v, void *obj)
{
	return get_str(c, v, "retention", &COL(retention));
}

static bool k_source(struct ctx *c, yaml_node_t *v, void *obj)
{
	return get_str(c, v, "source", &COL(source));
}

static bool k_recipients(struct ctx *c, yaml_node_t *v, void *obj)
{
	return get_list(c, v, "recipients", &COL(recipients));
}

static bool k_provided(struct ctx *c, yaml_node_t *v, void *obj)
{
	return get_bool(c, v, "provided_by_subject", &COL(provided_by_subject));
}

static bool k_encrypt(struct ctx *c, yaml_node_t *v, void *obj)
{
	return get_bool(c, v, "encrypt", &COL(encrypt));
}

static bool k_about(struct ctx *c, yaml_node_t *v, void *obj)
{
	static const char *const whom[] = { "subject", "others" };
	int i;

	if (!get_enum(c, v, "about", whom, ARRAY_SIZE(whom), &i))
		return false;
	COL(about_others) = i == 1;
	return true;
}

static bool k_roles(struct ctx *c, yaml_node_t *v, void *obj)
{
	return get_list(c, v, "plaintext_roles", &COL(plaintext_roles));
}

static bool k_others(struct ctx *c, yaml_node_t *v, void *obj)
{
	static const char *const others[] = { "mask", "ciphertext", "refuse" };
	int i;

	if (!get_enum(c, v, "others_see", others, ARRAY_SIZE(others), &i))
		return false;
	COL(others_see) = (enum pol_others)i;
	return true;
}

static bool bidx_column(struct ctx *c, yaml_node_t *v, void *obj)
{
	return get_str(c, v, "blind_index.column", &COL(bidx_column));
}

static bool bidx_normalize(struct ctx *c, yaml_node_t *v, void *obj)
{
	int i;

	return get_enum(c, v, "blind_index.normalize", bidx_norm_names, ARRAY_SIZE(bidx_norm_names), &i) &&
	       get_str(c, v, "normalize", &COL(bidx_normalize));
}

static bool bidx_bytes(struct ctx *c, yaml_node_t *v, void *obj)
{
	uint64_t n;

	if (!text(v) || !parse_u64(text(v), &n) || n < 1 || n > 32) {
		err_at(c, v, "blind_index.bytes must be a whole number from 1 to 32");
		return false;
	}
	COL(bidx_bytes) = (unsigned)n;
	return true;
}

static bool k_blind_index(struct ctx *c, yaml_node_t *v, void *obj)
{
	static const struct key keys[] = { { "column", bidx_column, true },
		                           { "normalize", bidx_normalize, false },
		                           { "bytes", bidx_bytes, false } };
	unsigned seen = walk_map(c, v, keys, ARRAY_SIZE(keys), obj, "blind_index");

	if (!(seen & 1) && v && v->type == YAML_MAPPING_NODE)
		err_at(c, v, "blind_index needs column: the column that holds the index");
	if (!(seen & 2) && !COL(bidx_normalize))
		COL(bidx_normalize) = strdup("none");
	if (!(seen & 4))
		COL(bidx_bytes) = 8;
	return true;
}

static bool retain_basis(struct ctx *c, yaml_node_t *v, void *obj)
{
	return get_str(c, v, "erase.retain", &COL(retain_basis));
}

static bool retain_until(struct ctx *c, yaml_node_t *v, void *obj)
{
	return get_str(c, v, "erase.until", &COL(retain_until));
}

static bool k_erase(struct ctx *c, yaml_node_t *v, void *obj)
{
	static const char *const ways[] = { "delete_row", "anonymize", "crypto_shred" };
	static const struct key keys[] = { { "retain", retain_basis, true },
		                           { "until", retain_until, true } };
	int i;

	if (v && v->type == YAML_MAPPING_NODE) {
		check_required(c, v, keys, ARRAY_SIZE(keys),
		               walk_map(c, v, keys, ARRAY_SIZE(keys), obj, "erase"),
		               "erase: {retain: <the legal exception>, until: <when it ends>}");
		COL(erase) = POL_ERASE_RETAIN;
		return true;
	}
	if (!get_enum(c, v, "erase", ways, ARRAY_SIZE(ways), &i))
		return false;
	COL(erase) = (enum pol_erase)i;
	return true;
}

/* Required keys may come from the column or from its table's defaults. */
static const struct key column_keys[] = {
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
	char **s[] = { &col->name,           &col->category,     &col->lawful_basis,
		       &col->retention,      &col->source,       &col->bidx_column,
		       &col->bidx_normalize, &col->retain_basis, &col->retain_until };

	for (size_t i = 0; i < ARRAY_SIZE(s); i++)
		free(*s[i]);
	list_free(&col->purposes);
	list_free(&col->recipients);
	list_free(&col->plaintext_roles);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void list_copy(struct pol_list *to, const struct pol_list *from)
{
	for (size_t i = 0; i < from->n; i++)
		list_add(to, from->v[i]);
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
	t->purposes = t->recipients = t->plaintext_roles = (struct pol_list){ 0 };
	list_copy(&t->purposes, &f->purposes);
	list_copy(&t->recipients, &f->recipients);
	list_copy(&t->plaintext_roles, &f->plaintext_roles);
}

static void column_check(struct ctx *c, yaml_node_t *n, struct colparse *cp, const char *table)
{
	struct pol_column *col = &cp->col;
	char where[256];

	snprintf(where, sizeof(where), "column %s.%s (or its table's defaults)", table, col->name);
	check_required(c, n, column_keys, ARRAY_SIZE(column_keys), cp->seen, where);
	if (col->erase == POL_ERASE_CRYPTO_SHRED && !col->encrypt)
		err_at(c, n,
		       "column %s.%s: erase: crypto_shred needs encrypt: true (only encrypted values die "
		       "with their key)",
		       table, col->name);
	if (col->bidx_column && !col->encrypt)
		err_at(c, n,
		       "column %s.%s: a blind_index is for encrypted columns; set encrypt: true or remove it",
		       table, col->name);
	if (col->bidx_column && !strcmp(col->bidx_column, col->name))
		err_at(c, n, "column %s.%s: the blind index needs a column of its own", table, col->name);
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

static void parse_column(struct ctx *c, struct pol_table *t, yaml_node_t *k, yaml_node_t *v,
                         const struct colparse *defaults)
{
	struct colparse cp;
	char where[256];
	const char *name = text(k);

	if (!name || !ident(name, 1)) {
		err_at(c, k, "column names are lower-case SQL identifiers (got \"%s\")", name ? name : "?");
		return;
	}
	for (size_t i = 0; i < t->ncols; i++)
		if (!strcmp(t->cols[i].name, name))
			err_at(c, k, "column %s.%s declared twice (first at line %u)", t->name, name,
			       t->cols[i].pos.line);
	column_from_defaults(&cp, defaults);
	cp.col.name = strdup(name);
	cp.col.pos = pos_of(c, k);
	snprintf(where, sizeof(where), "column %s.%s", t->name, name);
	cp.seen |= walk_map(c, v, column_keys, ARRAY_SIZE(column_keys), &cp, where);
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

static bool t_defaults(struct ctx *c, yaml_node_t *v, void *obj)
{
	struct tableparse *tp = obj;

	tp->defaults.seen |= walk_map(c, v, column_keys, ARRAY_SIZE(column_keys), &tp->defaults, "defaults");
	return true;
}

static bool t_columns(struct ctx *c, yaml_node_t *v, void *obj)
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

static void parse_columns(struct ctx *c, struct pol_table *t, struct tableparse *tp)
{
	if (tp->columns->type != YAML_MAPPING_NODE) {
		err_at(c, tp->columns, "%s: columns must map column names to their description", t->name);
		return;
	}
	for (yaml_node_pair_t *pr = tp->columns->data.mapping.pairs.start;
	     pr < tp->columns->data.mapping.pairs.top; pr++) {
		yaml_node_t *ck = node(c, pr->key), *cv = node(c, pr->value);
		if (!ck || !cv)
			return;
		parse_column(c, t, ck, cv, &tp->defaults);
	}
}

static void parse_table(struct ctx *c, yaml_node_t *k, yaml_node_t *v)
{
	static const struct key keys[] = { { "defaults", t_defaults, false },
		                           { "columns", t_columns, true } };
	struct tableparse tp = { 0 };
	struct pol_table t = { 0 };

	if (!text(k) || !ident(text(k), 2)) {
		err_at(c, k, "tables are named schema.table in lower case (got \"%s\")",
		       text(k) ? text(k) : "?");
		return;
	}
	t.name = strdup(text(k));
	t.pos = pos_of(c, k);
	check_required(c, k, keys, ARRAY_SIZE(keys), walk_map(c, v, keys, ARRAY_SIZE(keys), &tp, t.name),
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

static bool s_table(struct ctx *c, yaml_node_t *v, void *obj)
{
	if (text(v) && !ident(text(v), 2)) {
		err_at(c, v, "table must be named schema.table");
		return false;
	}
	return get_str(c, v, "table", &((struct pol_subject *)obj)->table);
}

static bool s_id(struct ctx *c, yaml_node_t *v, void *obj)
{
	if (text(v) && !ident(text(v), 1)) {
		err_at(c, v, "id must be a column name");
		return false;
	}
	return get_str(c, v, "id", &((struct pol_subject *)obj)->id_column);
}

static void parse_subject(struct ctx *c, yaml_node_t *k, yaml_node_t *v)
{
	static const struct key keys[] = { { "table", s_table, true }, { "id", s_id, true } };
	struct pol_subject s = { 0 };

	if (!text(k) || !ident(text(k), 1)) {
		err_at(c, k, "subject types are lower-case words such as customer");
		return;
	}
	s.type = strdup(text(k));
	s.pos = pos_of(c, k);
	check_required(c, k, keys, ARRAY_SIZE(keys), walk_map(c, v, keys, ARRAY_SIZE(keys), &s, s.type),
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

/* "schema.table.column" into its table and column. */
static bool split_column(struct ctx *c, yaml_node_t *v, const char *what, char **table, char **column)
{
	const char *s = text(v), *dot;

	if (!s || !ident(s, 3)) {
		err_at(c, v, "%s must name a column as schema.table.column", what);
		return false;
	}
	dot = strrchr(s, '.');
	free(*table);
	free(*column);
	*table = strndup(s, (size_t)(dot - s));
	*column = strdup(dot + 1);
	return *table && *column;
}

static bool r_from(struct ctx *c, yaml_node_t *v, void *obj)
{
	struct pol_relation *r = obj;
	return split_column(c, v, "from", &r->from_table, &r->from_column);
}

static bool r_to(struct ctx *c, yaml_node_t *v, void *obj)
{
	struct pol_relation *r = obj;
	return split_column(c, v, "to", &r->to_table, &r->to_column);
}

static bool k_relations(struct ctx *c, yaml_node_t *v, void *obj)
{
	static const struct key keys[] = { { "from", r_from, true }, { "to", r_to, true } };

	(void)obj;
	if (!v || v->type != YAML_SEQUENCE_NODE) {
		err_at(c, v,
		       "relations must be a list of {from: schema.table.column, to: schema.table.column}");
		return false;
	}
	for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
		yaml_node_t *e = node(c, *i);
		struct pol_relation r = { 0 };
		if (!e)
			return false;
		r.pos = pos_of(c, e);
		check_required(c, e, keys, ARRAY_SIZE(keys),
		               walk_map(c, e, keys, ARRAY_SIZE(keys), &r, "relation"), "relation");
		struct pol_relation *nv = realloc(c->p->relations, (c->p->nrelations + 1) * sizeof(*nv));
		if (!nv)
			return false;
		c->p->relations = nv;
		c->p->relations[c->p->nrelations++] = r;
	}
	return true;
}

/* ---- the document ---- */

static bool each_pair(struct ctx *c, yaml_node_t *v, const char *what,
                      void (*fn)(struct ctx *, yaml_node_t *, yaml_node_t *))
{
	if (!v || v->type != YAML_MAPPING_NODE) {
		err_at(c, v, "%s must be a mapping", what);
		return false;
	}
	for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = node(c, pr->key), *val = node(c, pr->value);
		if (!k || !val)
			return false;
		fn(c, k, val);
	}
	return true;
}

static bool k_version(struct ctx *c, yaml_node_t *v, void *obj)
{
	(void)obj;
	if (!text(v) || strcmp(text(v), "1")) {
		err_at(c, v, "this Custos reads policy format 1 (custos-policy: 1)");
		return false;
	}
	return true;
}

static bool k_fks(struct ctx *c, yaml_node_t *v, void *obj)
{
	(void)obj;
	return get_bool(c, v, "foreign_keys", &c->p->foreign_keys);
}

static bool k_subjects(struct ctx *c, yaml_node_t *v, void *obj)
{
	(void)obj;
	return each_pair(c, v, "subjects", parse_subject);
}

static bool k_tables(struct ctx *c, yaml_node_t *v, void *obj)
{
	(void)obj;
	return each_pair(c, v, "tables", parse_table);
}

static void parse_document(struct ctx *c)
{
	static const struct key keys[] = {
		{ "custos-policy", k_version, true }, { "foreign_keys", k_fks, false },
		{ "subjects", k_subjects, false },    { "relations", k_relations, false },
		{ "tables", k_tables, false },
	};
	yaml_node_t *root = yaml_document_get_root_node(c->doc);

	if (!root) {
		err_at(c, NULL, "empty policy: it needs at least custos-policy: 1");
		return;
	}
	unsigned seen = walk_map(c, root, keys, ARRAY_SIZE(keys), NULL, "the policy");
	if (root->type == YAML_MAPPING_NODE)
		check_required(c, root, keys, ARRAY_SIZE(keys), seen, "the policy");
}

struct policy *pol_new(void)
{
	struct policy *p = calloc(1, sizeof(*p));

	if (p)
		p->foreign_keys = true;
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
	for (size_t i = 0; i < p->nrelations; i++) {
		struct pol_relation *r = &p->relations[i];
		free(r->from_table);
		free(r->from_column);
		free(r->to_table);
		free(r->to_column);
	}
	for (size_t i = 0; i < p->nfiles; i++)
		free(p->files[i]);
	free(p->tables);
	free(p->subjects);
	free(p->relations);
	free(p->files);
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
	struct ctx c = { .p = p, .doc = &doc, .errs = errs };

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
	if (!p->nsubjects && p->ntables)
		pol_error(p, errs, &p->tables[0].pos,
		          "personal data needs a subject: declare subjects: with the root table of each");
}
