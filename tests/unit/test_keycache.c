/* test_keycache.c - the data-key cache (daemon/keycache.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keycache.h"
#include "secmem.h"

/* A key whose id, key bytes and ref all derive from n; ref from subj. */
static struct kc_key key_n(unsigned n, int subj)
{
	struct kc_key k;

	memset(&k, 0, sizeof(k));
	for (size_t i = 0; i < FC_KEYID_LEN; i++)
		k.k.id[i] = (uint8_t)(n * 131 + i * 7 + (n >> 8));
	memcpy(k.k.id, &n, sizeof(n));
	memset(k.k.key, (int)(n & 0xff) ^ 0x5a, FC_KEY_LEN);
	k.has_ref = subj >= 0;
	if (k.has_ref) {
		memset(k.ref, 0, SUBJECT_REF_LEN);
		memcpy(k.ref, &subj, sizeof(subj));
		k.ref[31] = 0xee;
	}
	return k;
}

static void test_put_get(void **state)
{
	struct keycache *c = kc_new(4);
	struct kc_key k = key_n(1, 10), got;

	(void)state;
	assert_non_null(c);
	assert_false(kc_get(c, k.k.id, &got));
	kc_put(c, &k);
	assert_true(kc_get(c, k.k.id, &got));
	assert_memory_equal(&got, &k, sizeof(k));
	assert_true(kc_get_subject(c, k.ref, &got));
	assert_memory_equal(got.k.id, k.k.id, FC_KEYID_LEN);
	struct kc_key free_key = key_n(2, -1);
	kc_put(c, &free_key);
	assert_true(kc_get(c, free_key.k.id, &got));
	assert_false(got.has_ref);
	struct kc_stats st = kc_stats(c);
	assert_int_equal(st.count, 2);
	assert_int_equal(st.hits, 3);
	assert_int_equal(st.misses, 1);
	kc_free(c);
}

static void test_lru_eviction(void **state)
{
	struct keycache *c = kc_new(3);
	struct kc_key k[4], got;

	(void)state;
	for (unsigned i = 0; i < 4; i++)
		k[i] = key_n(i, (int)i);
	kc_put(c, &k[0]);
	kc_put(c, &k[1]);
	kc_put(c, &k[2]);
	assert_true(kc_get(c, k[0].k.id, &got)); /* 0 is now the most recent; 1 the least */
	kc_put(c, &k[3]);
	assert_false(kc_get(c, k[1].k.id, &got));
	assert_false(kc_get_subject(c, k[1].ref, &got));
	assert_true(kc_get(c, k[0].k.id, &got));
	assert_true(kc_get(c, k[2].k.id, &got));
	assert_true(kc_get(c, k[3].k.id, &got));
	assert_int_equal(kc_stats(c).evictions, 1);
	assert_int_equal(kc_stats(c).count, 3);
	kc_free(c);
}

static void test_drop(void **state)
{
	struct keycache *c = kc_new(8);
	struct kc_key a = key_n(1, 7), b = key_n(2, 7), d = key_n(3, 8), got;

	(void)state;
	kc_put(c, &a);
	kc_put(c, &b);
	kc_put(c, &d);
	kc_drop_subject(c, a.ref);
	assert_false(kc_get(c, a.k.id, &got));
	assert_false(kc_get(c, b.k.id, &got));
	assert_true(kc_get(c, d.k.id, &got));
	kc_drop(c, d.k.id);
	assert_false(kc_get_subject(c, d.ref, &got));
	assert_int_equal(kc_stats(c).count, 0);
	kc_put(c, &a);
	kc_put(c, &a); /* the same id twice replaces */
	assert_int_equal(kc_stats(c).count, 1);
	kc_clear(c);
	assert_false(kc_get(c, a.k.id, &got));
	kc_free(c);
}

/* Random operations against a plain array model with the same LRU rule. */
static void test_against_model(void **state)
{
	enum { LIMIT = 16, IDS = 64, OPS = 200000 };
	struct keycache *c = kc_new(LIMIT);
	unsigned model[LIMIT]; /* ids, most recent first */
	size_t n = 0;
	struct kc_key got;

	(void)state;
	srand(42);
	for (int op = 0; op < OPS; op++) {
		unsigned id = (unsigned)rand() % IDS;
		struct kc_key k = key_n(id, (int)(id % 5 == 0 ? -1 : (int)id));
		size_t at = n;
		for (size_t i = 0; i < n; i++)
			if (model[i] == id)
				at = i;
		int what = rand() % 4;
		if (what == 0) { /* put */
			if (at == n && n == LIMIT)
				n--;
			if (at < n) {
				memmove(model + 1, model, at * sizeof(*model));
			} else {
				memmove(model + 1, model, n * sizeof(*model));
				n++;
			}
			model[0] = id;
			kc_put(c, &k);
		} else if (what == 1) { /* drop */
			if (at < n) {
				memmove(model + at, model + at + 1, (n - at - 1) * sizeof(*model));
				n--;
			}
			kc_drop(c, k.k.id);
		} else { /* get, by id or by subject */
			bool cached = what == 2 || !k.has_ref ? kc_get(c, k.k.id, &got)
			                                      : kc_get_subject(c, k.ref, &got);
			assert_int_equal(cached, at < n);
			if (cached) {
				assert_memory_equal(&got, &k, sizeof(k));
				memmove(model + 1, model, at * sizeof(*model));
				model[0] = id;
			}
		}
		assert_int_equal(kc_stats(c).count, n);
	}
	kc_free(c);
}

static void test_limits(void **state)
{
	(void)state;
	assert_null(kc_new(0));
	struct keycache *c = kc_new(1);
	struct kc_key a = key_n(1, 1), b = key_n(2, 2), got;
	kc_put(c, &a);
	kc_put(c, &b);
	assert_false(kc_get(c, a.k.id, &got));
	assert_true(kc_get(c, b.k.id, &got));
	kc_free(c);
	kc_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get), cmocka_unit_test(test_lru_eviction),
		cmocka_unit_test(test_drop),    cmocka_unit_test(test_against_model),
		cmocka_unit_test(test_limits),
	};
	if (secmem_init(1 << 16))
		print_message("secure heap unavailable; testing on the normal heap\n");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
