/* sqlcache.c - the bounded cache of analyses (sqlinfo.h): statements that
 * differ only in their literals share one analysis, keyed by the text with
 * its literal tokens (PostgreSQL's own scanner finds them) marked; the
 * positions the proxy edits are anchored to those literals. */
#define _GNU_SOURCE
#include <errno.h>
#include <openssl/rand.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlinfo.h"
#include "sqlscan.h"

/* --- the cache ---------------------------------------------------------------- */

struct entry {
	char *sql;
	uint64_t hash;
	size_t nlits; /* its literals: as many as every text of its key has */
	struct sqi_info *info;
	struct entry *next_hash, *prev, *next; /* bucket chain; LRU list, most recent first */
};

struct sqi_cache {
	struct entry **buckets, *head, *tail;
	size_t nbuckets, n, max;
	uint64_t seed; /* statement texts come from clients: a secret seed spreads them */
	uint64_t hits, misses, evictions;
	struct sqi_info *uncached; /* the last analysis too large to cache */
	struct buf key;            /* the text with its literals marked */
	struct sqi_literal *lits;
	size_t nlits, litcap;
};

static uint64_t hash(const struct sqi_cache *c, const char *s)
{
	uint64_t h = 1469598103934665603ull ^ c->seed;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h ^ (h >> 29);
}

struct sqi_cache *sqi_cache_new(size_t max)
{
	struct sqi_cache *c = calloc(1, sizeof(*c));

	if (!c || !max)
		return free(c), NULL;
	c->max = max;
	for (c->nbuckets = 16; c->nbuckets < max; c->nbuckets <<= 1)
		;
	if (!(c->buckets = calloc(c->nbuckets, sizeof(*c->buckets))) ||
	    RAND_bytes((unsigned char *)&c->seed, sizeof(c->seed)) != 1) {
		sqi_cache_free(c);
		return NULL;
	}
	return c;
}

static void unlink_lru(struct sqi_cache *c, struct entry *e)
{
	*(e->prev ? &e->prev->next : &c->head) = e->next;
	*(e->next ? &e->next->prev : &c->tail) = e->prev;
}

static void push_lru(struct sqi_cache *c, struct entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	*(c->head ? &c->head->prev : &c->tail) = e;
	c->head = e;
}

static void evict(struct sqi_cache *c, struct entry *e)
{
	struct entry **p = &c->buckets[e->hash & (c->nbuckets - 1)];

	while (*p != e)
		p = &(*p)->next_hash;
	*p = e->next_hash;
	unlink_lru(c, e);
	sqi_free(e->info);
	free(e->sql);
	free(e);
	c->n--;
}

void sqi_cache_free(struct sqi_cache *c)
{
	if (!c)
		return;
	while (c->head)
		evict(c, c->head);
	sqi_free(c->uncached);
	buf_free(&c->key);
	free(c->lits);
	free(c->buckets);
	free(c);
}

static bool is_literal(PgQuery__Token t)
{
	return t == PG_QUERY__TOKEN__SCONST || t == PG_QUERY__TOKEN__USCONST ||
	       t == PG_QUERY__TOKEN__ICONST || t == PG_QUERY__TOKEN__FCONST || t == PG_QUERY__TOKEN__BCONST ||
	       t == PG_QUERY__TOKEN__XCONST;
}

/* A text of len bytes being scanned into c's key, made up to at. */
struct cursor {
	struct sqi_cache *c;
	const char *sql;
	size_t len, at;
};

/* The text between literals, up to upto, into the key. A byte that
 * marks a literal there (libpg_query's scanner takes it as a character)
 * would make the key another text's: such a text is not cached. */
static int add_text(struct cursor *k, size_t upto)
{
	if (memchr(k->sql + k->at, '\x01', upto - k->at))
		return -EINVAL;
	buf_add(&k->c->key, k->sql + k->at, upto - k->at);
	k->at = upto;
	return 0;
}

/* The key up to a literal at [start, end), then its mark. */
static int add_literal(struct cursor *k, size_t start, size_t end, int token)
{
	struct sqi_cache *c = k->c;
	const char *sql = k->sql;

	if (start < k->at || end < start || end > k->len)
		return -EINVAL;
	if (c->nlits == c->litcap) {
		size_t cap = c->litcap ? 2 * c->litcap : 16;
		struct sqi_literal *v = realloc(c->lits, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		c->lits = v;
		c->litcap = cap;
	}
	c->lits[c->nlits++] =
	    (struct sqi_literal){ sql + start, end - start,
		                  token == PG_QUERY__TOKEN__ICONST || token == PG_QUERY__TOKEN__FCONST };
	if (add_text(k, start))
		return -EINVAL;
	buf_addc(&c->key, '\x01'); /* never outside a literal (add_text) */
	buf_addc(&c->key, (char)('@' + token % 32));
	k->at = end;
	return 0;
}

static int fast_literal(void *arg, size_t start, size_t end, enum sqs_token token)
{
	return add_literal(arg, start, end,
	                   token == SQS_ICONST ? PG_QUERY__TOKEN__ICONST : PG_QUERY__TOKEN__SCONST);
}

/* The literals as libpg_query's scanner gives them. */
static int slow_literals(struct cursor *k)
{
	PgQueryScanResult r = pg_query_scan(k->sql);
	PgQuery__ScanResult *u =
	    r.error ? NULL : pg_query__scan_result__unpack(NULL, r.pbuf.len, (const uint8_t *)r.pbuf.data);
	int err = u ? 0 : -EINVAL;

	for (size_t i = 0; u && !err && i < u->n_tokens; i++) {
		const PgQuery__ScanToken *t = u->tokens[i];
		if (is_literal(t->token))
			err = t->start < 0 || t->end < 0
			          ? -EINVAL
			          : add_literal(k, (size_t)t->start, (size_t)t->end, t->token);
	}
	if (u)
		pg_query__scan_result__free_unpacked(u, NULL);
	pg_query_free_scan_result(r);
	return err;
}

/* Scans sql into its key and literals: sqlscan.c for plain texts, else
 * libpg_query. -EINVAL when it does not scan. */
static int scan(struct sqi_cache *c, const char *sql)
{
	struct cursor k = { c, sql, strlen(sql), 0 };
	int err;

	buf_reset(&c->key);
	c->nlits = 0;
	if ((err = sqs_scan(sql, fast_literal, &k)) != 1) {
		buf_reset(&c->key);
		c->nlits = k.at = 0;
		if (!err)
			err = slow_literals(&k);
	} else {
		err = 0;
	}
	if (!err)
		err = add_text(&k, k.len);
	buf_addc(&c->key, 0);
	return err ? err : c->key.failed ? -ENOMEM : 0;
}

/* The literal that starts at location: the scanner gives them in order. */
static int literal_at(const struct sqi_cache *c, const char *sql, int location)
{
	size_t lo = 0, hi = c->nlits;

	while (location >= 0 && lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		ptrdiff_t at = c->lits[mid].p - sql;
		if (at == location)
			return (int)mid;
		if (at < location)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* location as a position that holds for every text of the same shape. */
static struct sqi_pos anchored(const struct sqi_cache *c, const char *sql, int location)
{
	size_t lo = 0, hi = c->nlits;

	if (location < 0)
		return (struct sqi_pos){ -1, -1 };
	while (lo < hi) { /* the first literal that does not end by location */
		size_t mid = lo + (hi - lo) / 2;
		if ((size_t)(c->lits[mid].p - sql) + c->lits[mid].len <= (size_t)location)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return (struct sqi_pos){ -1, location };
	size_t end = (size_t)(c->lits[lo - 1].p - sql) + c->lits[lo - 1].len;
	return (struct sqi_pos){ (int)lo - 1, location - (int)end };
}

/* Points each constant predicate at its literal, and forgets the values:
 * the cached analysis serves texts with other literals. */
static void link_literals(struct sqi_cache *c, const char *sql, struct sqi_info *info)
{
	for (size_t i = 0; i < info->n; i++) {
		for (size_t j = 0; j < info->stmts[i].npreds; j++) {
			struct sqi_pred *p = &info->stmts[i].preds[j];
			free(p->value);
			p->value = NULL;
			p->literal = literal_at(c, sql, p->location);
			p->at = anchored(c, sql, p->location);
		}
		for (size_t j = 0; j < info->stmts[i].nwrites; j++) {
			struct sqi_write *w = &info->stmts[i].writes[j];
			w->literal = w->kind == SQI_W_CONST ? literal_at(c, sql, w->value_location) : -1;
			w->value_at = anchored(c, sql, w->value_location);
			w->col_at = anchored(c, sql, w->col_location);
			if (w->kind == SQI_W_CONST && w->literal < 0)
				w->kind =
				    SQI_W_EXPR; /* a constant with no token of its own (-1 is an operator) */
		}
	}
}

char *sqi_literal_text(const struct sqi_literal *l)
{
	if (l->number)
		return strndup(l->p, l->len);
	if (l->len < 2 || l->p[0] != '\'' || l->p[l->len - 1] != '\'')
		return NULL; /* E'', U&'', $$, B'', X'': not an id as written */
	char *out = malloc(l->len), *o = out;
	for (size_t i = 1; out && i + 1 < l->len; i++) {
		if (l->p[i] != '\'') {
			*o++ = l->p[i];
		} else if (l->p[i + 1] == '\'') { /* '' is a quote */
			*o++ = '\'';
			i++;
		} else { /* 'a' <whitespace with a newline> 'b' is 'ab' (a comment between: not read here) */
			size_t j = i + 1;
			bool newline = false;
			for (; j < l->len && strchr(" \t\n\r\f", l->p[j]); j++)
				newline |= l->p[j] == '\n' || l->p[j] == '\r';
			if (!newline || j + 1 >= l->len || l->p[j] != '\'') {
				free(out);
				return NULL;
			}
			i = j;
		}
	}
	if (out)
		*o = 0;
	return out;
}

int sqi_cache_get(struct sqi_cache *c, const char *sql, const struct sqi_info **ret,
                  const struct sqi_literal **ret_lits, size_t *ret_nlits, char *err, size_t errlen)
{
	struct sqi_info *info;
	struct entry *e;
	int r = strlen(sql) > SQI_MAX_SQL ? -E2BIG : scan(c, sql);

	if (r) {
		int a = sqi_analyse(sql, &info, err, errlen); /* its message says what is wrong */
		if (!a) {
			sqi_free(info);
			snprintf(err, errlen, "the statement cannot be scanned");
		}
		return a ? a : r;
	}
	*ret_lits = c->lits;
	*ret_nlits = c->nlits;
	uint64_t h = hash(c, c->key.p);
	for (e = c->buckets[h & (c->nbuckets - 1)]; e; e = e->next_hash)
		if (e->hash == h && e->nlits == c->nlits && !strcmp(e->sql, c->key.p)) {
			unlink_lru(c, e);
			push_lru(c, e);
			*ret = e->info;
			c->hits++;
			return 0;
		}
	if ((r = sqi_analyse(sql, &info, err, errlen)))
		return r;
	c->misses++;
	link_literals(c, sql, info);
	if (c->key.len > SQI_CACHE_MAX_SQL || info->per_text) { /* kept for one call only */
		sqi_free(c->uncached);
		c->uncached = info;
		*ret = info;
		return 0;
	}
	if (!(e = calloc(1, sizeof(*e))) || !(e->sql = strdup(c->key.p))) {
		free(e);
		sqi_free(info);
		return -ENOMEM;
	}
	if (c->n == c->max) {
		evict(c, c->tail);
		c->evictions++;
	}
	e->hash = h;
	e->nlits = c->nlits;
	e->info = info;
	e->next_hash = c->buckets[h & (c->nbuckets - 1)];
	c->buckets[h & (c->nbuckets - 1)] = e;
	push_lru(c, e);
	c->n++;
	*ret = info;
	return 0;
}

void sqi_cache_stats(const struct sqi_cache *c, uint64_t *hits, uint64_t *misses, uint64_t *evictions)
{
	*hits = c->hits;
	*misses = c->misses;
	*evictions = c->evictions;
}
