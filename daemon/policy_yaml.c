/* policy_yaml.c - see policy_yaml.h */
#include "policy_yaml.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pyl_err(struct pyl_ctx *c, const yaml_node_t *n, const char *fmt, ...)
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

struct pol_pos pyl_pos(struct pyl_ctx *c, const yaml_node_t *n)
{
	return (struct pol_pos){ c->file, (unsigned)n->start_mark.line + 1,
		                 (unsigned)n->start_mark.column + 1 };
}

yaml_node_t *pyl_node(struct pyl_ctx *c, int id)
{
	if (++c->visits == PYL_MAX_NODES)
		pyl_err(c, NULL, "policy too large or too deeply aliased (over %d nodes)", PYL_MAX_NODES);
	return c->visits < PYL_MAX_NODES ? yaml_document_get_node(c->doc, id) : NULL;
}

const char *pyl_text(const yaml_node_t *n)
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

bool pyl_str(struct pyl_ctx *c, yaml_node_t *n, const char *what, char **ret)
{
	const char *s = pyl_text(n);

	if (!s || !*s) {
		pyl_err(c, n, "%s must be a non-empty string", what);
		return false;
	}
	free(*ret);
	*ret = strdup(s);
	return *ret != NULL;
}

bool pyl_bool(struct pyl_ctx *c, yaml_node_t *n, const char *what, bool *ret)
{
	const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
	const char *s = pyl_text(n);

	for (size_t i = 0; s && i < ARRAY_SIZE(yes); i++) {
		if (!strcmp(s, yes[i]) || !strcmp(s, no[i])) {
			*ret = !strcmp(s, yes[i]);
			return true;
		}
	}
	pyl_err(c, n, "%s must be true or false", what);
	return false;
}

bool pyl_enum(struct pyl_ctx *c, yaml_node_t *n, const char *what, const char *const *words, size_t nw,
              int *ret)
{
	const char *s = pyl_text(n);
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
		pyl_err(c, n, "%s \"%s\" is not one of %s; did you mean \"%s\"?", what, s, all.p, sug);
	else
		pyl_err(c, n, "%s must be one of %s", what, all.failed ? "the documented values" : all.p);
	buf_free(&all);
	return false;
}

bool pyl_list_add(struct pol_list *l, const char *s)
{
	char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (!v)
		return false;
	l->v = v;
	return (l->v[l->n] = strdup(s)) && ++l->n;
}

void pyl_list_free(struct pol_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	*l = (struct pol_list){ 0 };
}

/* A sequence of non-empty strings (may be empty: []). */
bool pyl_list(struct pyl_ctx *c, yaml_node_t *n, const char *what, struct pol_list *ret)
{
	if (!n || n->type != YAML_SEQUENCE_NODE) {
		pyl_err(c, n, "%s must be a list, e.g. [a, b]", what);
		return false;
	}
	pyl_list_free(ret);
	for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
		yaml_node_t *e = pyl_node(c, *i);
		if (!pyl_text(e) || !*pyl_text(e)) {
			pyl_err(c, e ? e : n, "each entry of %s must be a non-empty string", what);
			return false;
		}
		if (!pyl_list_add(ret, pyl_text(e)))
			return false;
	}
	return true;
}

/* ---- mappings with key tables ---- */

/* One error naming every required key that is missing. */
void pyl_required(struct pyl_ctx *c, yaml_node_t *n, const struct pyl_key *keys, size_t nk, unsigned seen,
                  const char *where)
{
	struct buf missing = BUF_INIT;

	for (size_t i = 0; i < nk; i++)
		if (keys[i].required && !(seen & (1u << i)))
			buf_printf(&missing, "%s%s", missing.len ? ", " : "", keys[i].name);
	if (missing.len && !missing.failed)
		pyl_err(c, n, "%s: missing %s", where, missing.p);
	buf_free(&missing);
}

/* Calls each key's handler; refuses unknown and repeated keys. Returns a
 * bit per key table entry that was present. */
unsigned pyl_walk(struct pyl_ctx *c, yaml_node_t *n, const struct pyl_key *keys, size_t nk, void *obj,
                  const char *where)
{
	const char *names[32];
	unsigned seen = 0;

	if (!n || n->type != YAML_MAPPING_NODE) {
		pyl_err(c, n, "%s must be a mapping of keys to values", where);
		return 0;
	}
	for (size_t i = 0; i < nk; i++)
		names[i] = keys[i].name;
	for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = pyl_node(c, pr->key), *v = pyl_node(c, pr->value);
		const char *name = pyl_text(k);
		size_t i = 0;
		while (name && i < nk && strcmp(name, keys[i].name))
			i++;
		if (!k || !v)
			return seen;
		if (!name || i == nk) {
			const char *sug = name ? pol_suggest(name, names, nk) : NULL;
			pyl_err(c, k, "unknown key \"%s\" in %s%s%s%s", name ? name : "(not a string)", where,
			        sug ? "; did you mean \"" : "", sug ? sug : "", sug ? "\"?" : "");
		} else if (seen & (1u << i)) {
			pyl_err(c, k, "key \"%s\" given twice in %s", name, where);
		} else {
			seen |= 1u << i;
			keys[i].fn(c, v, obj);
		}
	}
	return seen;
}
