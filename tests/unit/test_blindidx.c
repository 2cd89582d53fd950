/* test_blindidx - blind index values: normalisation, keys per column,
 * truncation, and agreement with a plain HMAC-SHA256. */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "blindidx.h"

static const uint8_t index_key[BIDX_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };

static char *idx(const char *table, const char *column, enum bidx_norm norm, unsigned bytes, const char *v)
{
	static char out[2 * BIDX_MAX_BYTES + 1];
	uint8_t ck[BIDX_KEY_LEN];
	struct buf b = BUF_INIT;

	bidx_column_key(index_key, table, column, ck);
	assert_int_equal(bidx_compute(ck, norm, bytes, v, strlen(v), &b), 0);
	assert_int_equal(b.len, 2 * bytes);
	memcpy(out, b.p, b.len);
	out[b.len] = '\0';
	buf_free(&b);
	return out;
}

static void test_normalisation_makes_equal_values_match(void **state)
{
	(void)state;
	char a[65];
	strcpy(a, idx("shop.customers", "email", BIDX_LOWER_TRIM, 8, "Ann@Example.COM "));
	assert_string_equal(a, idx("shop.customers", "email", BIDX_LOWER_TRIM, 8, "  ann@example.com"));
	assert_string_not_equal(a, idx("shop.customers", "email", BIDX_LOWER_TRIM, 8, "ann@example.org"));
	assert_string_not_equal(a, idx("shop.customers", "email", BIDX_NONE, 8, "Ann@Example.COM "));
	strcpy(a, idx("shop.customers", "phone", BIDX_DIGITS, 8, "+49 (30) 1234-567"));
	assert_string_equal(a, idx("shop.customers", "phone", BIDX_DIGITS, 8, "4930 1234567"));
}

static void test_columns_have_their_own_keys(void **state)
{
	(void)state;
	char a[65];
	strcpy(a, idx("shop.customers", "email", BIDX_NONE, 16, "x"));
	assert_string_not_equal(a, idx("shop.customers", "name", BIDX_NONE, 16, "x"));
	assert_string_not_equal(a, idx("shop.invoices", "email", BIDX_NONE, 16, "x"));
	/* "a\0bc" vs "ab\0c": the separators keep table and column apart */
	strcpy(a, idx("s.a", "bc", BIDX_NONE, 16, "x"));
	assert_string_not_equal(a, idx("s.ab", "c", BIDX_NONE, 16, "x"));
}

static void test_is_truncated_hmac(void **state)
{
	(void)state;
	uint8_t ck[BIDX_KEY_LEN], mac[32];
	unsigned len = 32;
	char hex[65];

	bidx_column_key(index_key, "t.t", "c", ck);
	HMAC(EVP_sha256(), ck, sizeof(ck), (const uint8_t *)"abc", 3, mac, &len);
	hex_encode(mac, 32, hex);
	assert_string_equal(idx("t.t", "c", BIDX_NONE, 32, "abc"), hex);
	hex[8] = '\0';
	assert_string_equal(idx("t.t", "c", BIDX_NONE, 4, "abc"), hex);
}

static void test_refuses_bad_lengths(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	uint8_t ck[BIDX_KEY_LEN] = { 0 };

	assert_int_equal(bidx_compute(ck, BIDX_NONE, 0, "a", 1, &b), -EINVAL);
	assert_int_equal(bidx_compute(ck, BIDX_NONE, 33, "a", 1, &b), -EINVAL);
	assert_int_equal(bidx_compute(ck, (enum bidx_norm)9, 8, "a", 1, &b), -EINVAL);
	assert_int_equal(b.len, 0);
	assert_int_equal(bidx_compute(ck, BIDX_TRIM, 8, "   ", 3, &b), 0); /* empty after trimming */
	assert_int_equal(bidx_norm_from_name("lower_trim"), BIDX_LOWER_TRIM);
	assert_int_equal(bidx_norm_from_name("upper"), -1);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalisation_makes_equal_values_match),
		cmocka_unit_test(test_columns_have_their_own_keys),
		cmocka_unit_test(test_is_truncated_hmac),
		cmocka_unit_test(test_refuses_bad_lengths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
