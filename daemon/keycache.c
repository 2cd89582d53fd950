/* keycache.c - see keycache.h. The keys live in one array in secure
 * memory; two chained hash indexes (by key id, by subject ref) and an LRU
 * list link its slots by number. Ids and refs are uniformly random (random
 * ids, HMAC refs), so their first bytes serve as the hash. */
#include "keycache.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "secmem.h"

#define NIL (-1)

struct slot {
	struct kc_key key;
	int32_t next_id, next_ref; /* hash chains */
	int32_t prev, next;        /* LRU list (most recent first), or the free list */
};

struct keycache {
	struct slot *s; /* secure memory */
	size_t limit, mask;
	int32_t *by_id, *by_ref; /* bucket heads */
	int32_t head, tail, free;
	struct kc_stats st;
};

static size_t bucket(const struct keycache *c, const uint8_t *bytes)
{
	uint64_t h;

	memcpy(&h, bytes, sizeof(h));
	return (size_t)h & c->mask;
}

struct keycache *kc_new(size_t limit)
{
	struct keycache *c = calloc(1, sizeof(*c));
	size_t nb = 1;

	if (!c || limit == 0 || limit > INT32_MAX / 2)
		return free(c), NULL;
	while (nb < limit)
		nb <<= 1;
	c->limit = limit;
	c->mask = nb - 1;
	c->s = secmem_alloc(limit * sizeof(*c->s));
	c->by_id = malloc(nb * sizeof(*c->by_id));
	c->by_ref = malloc(nb * sizeof(*c->by_ref));
	if (!c->s || !c->by_id || !c->by_ref) {
		kc_free(c);
		return NULL;
	}
	c->st.limit = limit;
	kc_clear(c);
	return c;
}

void kc_free(struct keycache *c)
{
	if (!c)
		return;
	secmem_free(c->s, c->limit * sizeof(*c->s));
	free(c->by_id);
	free(c->by_ref);
	free(c);
}

void kc_clear(struct keycache *c)
{
	OPENSSL_cleanse(c->s, c->limit * sizeof(*c->s));
	for (size_t i = 0; i <= c->mask; i++)
		c->by_id[i] = c->by_ref[i] = NIL;
	for (size_t i = 0; i < c->limit; i++)
		c->s[i].next = i + 1 < c->limit ? (int32_t)(i + 1) : NIL;
	c->free = 0;
	c->head = c->tail = NIL;
	c->st.count = 0;
}

static void lru_unlink(struct keycache *c, int32_t i)
{
	struct slot *s = &c->s[i];

	if (s->prev != NIL)
		c->s[s->prev].next = s->next;
	else
		c->head = s->next;
	if (s->next != NIL)
		c->s[s->next].prev = s->prev;
	else
		c->tail = s->prev;
}

static void lru_push(struct keycache *c, int32_t i)
{
	c->s[i].prev = NIL;
	c->s[i].next = c->head;
	if (c->head != NIL)
		c->s[c->head].prev = i;
	else
		c->tail = i;
	c->head = i;
}

/* Unlinks slot i from the chain starting at *head (linked by next_id or
 * next_ref, as by_ref says). */
static void chain_unlink(struct keycache *c, int32_t *head, int32_t i, bool by_ref)
{
	for (int32_t *p = head; *p != NIL; p = by_ref ? &c->s[*p].next_ref : &c->s[*p].next_id)
		if (*p == i) {
			*p = by_ref ? c->s[i].next_ref : c->s[i].next_id;
			return;
		}
}

static void remove_slot(struct keycache *c, int32_t i)
{
	struct slot *s = &c->s[i];

	chain_unlink(c, &c->by_id[bucket(c, s->key.k.id)], i, false);
	if (s->key.has_ref)
		chain_unlink(c, &c->by_ref[bucket(c, s->key.ref)], i, true);
	lru_unlink(c, i);
	OPENSSL_cleanse(s, sizeof(*s));
	s->next = c->free;
	c->free = i;
	c->st.count--;
}

static int32_t find_id(const struct keycache *c, const uint8_t *id)
{
	for (int32_t i = c->by_id[bucket(c, id)]; i != NIL; i = c->s[i].next_id)
		if (!memcmp(c->s[i].key.k.id, id, FC_KEYID_LEN))
			return i;
	return NIL;
}

static int32_t find_ref(const struct keycache *c, const uint8_t *ref)
{
	for (int32_t i = c->by_ref[bucket(c, ref)]; i != NIL; i = c->s[i].next_ref)
		if (!memcmp(c->s[i].key.ref, ref, SUBJECT_REF_LEN))
			return i;
	return NIL;
}

static bool hit(struct keycache *c, int32_t i, struct kc_key *ret)
{
	if (i == NIL) {
		c->st.misses++;
		return false;
	}
	c->st.hits++;
	if (c->head != i) {
		lru_unlink(c, i);
		lru_push(c, i);
	}
	*ret = c->s[i].key;
	return true;
}

bool kc_get(struct keycache *c, const uint8_t id[FC_KEYID_LEN], struct kc_key *ret)
{
	return hit(c, find_id(c, id), ret);
}

bool kc_get_subject(struct keycache *c, const uint8_t ref[SUBJECT_REF_LEN], struct kc_key *ret)
{
	return hit(c, find_ref(c, ref), ret);
}

void kc_put(struct keycache *c, const struct kc_key *key)
{
	int32_t i = find_id(c, key->k.id);

	if (i != NIL)
		remove_slot(c, i);
	if (c->free == NIL) {
		remove_slot(c, c->tail);
		c->st.evictions++;
	}
	i = c->free;
	struct slot *s = &c->s[i];
	c->free = s->next;
	s->key = *key;
	size_t b = bucket(c, key->k.id);
	s->next_id = c->by_id[b];
	c->by_id[b] = i;
	s->next_ref = NIL;
	if (key->has_ref) {
		b = bucket(c, key->ref);
		s->next_ref = c->by_ref[b];
		c->by_ref[b] = i;
	}
	lru_push(c, i);
	c->st.count++;
}

void kc_drop(struct keycache *c, const uint8_t id[FC_KEYID_LEN])
{
	int32_t i = find_id(c, id);

	if (i != NIL)
		remove_slot(c, i);
}

void kc_drop_subject(struct keycache *c, const uint8_t ref[SUBJECT_REF_LEN])
{
	for (int32_t i; (i = find_ref(c, ref)) != NIL;)
		remove_slot(c, i);
}

struct kc_stats kc_stats(const struct keycache *c)
{
	return c->st;
}
