/* blindidx.c - see blindidx.h */
#include "blindidx.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#define LABEL "custos-bidx1"

const char *const bidx_norm_names[BIDX_DIGITS + 1] = { "none", "lower", "trim", "lower_trim", "digits" };

int bidx_norm_from_name(const char *name)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(bidx_norm_names); i++)
		if (!strcmp(name, bidx_norm_names[i]))
			return (int)i;
	return -1;
}

void bidx_column_key(const uint8_t index_key[BIDX_KEY_LEN], const char *table, const char *column,
                     uint8_t ret[BIDX_KEY_LEN])
{
	struct buf in = BUF_INIT;
	unsigned len = BIDX_KEY_LEN;

	buf_add(&in, LABEL, sizeof(LABEL)); /* with its NUL */
	buf_add(&in, table, strlen(table) + 1);
	buf_adds(&in, column);
	HMAC(EVP_sha256(), index_key, BIDX_KEY_LEN, (const uint8_t *)in.p, in.len, ret, &len);
	buf_free(&in);
}

int bidx_subject_ref(const uint8_t index_key[BIDX_KEY_LEN], const char *type, const char *id, uint8_t ret[32])
{
	struct buf in = BUF_INIT;
	unsigned len = 32;

	buf_adds(&in, type);
	buf_adds(&in, ":");
	buf_adds(&in, id);
	bool ok =
	    in.p && HMAC(EVP_sha256(), index_key, BIDX_KEY_LEN, (const uint8_t *)in.p, in.len, ret, &len);
	if (in.p)
		OPENSSL_cleanse(in.p, in.len); /* the subject's identifier */
	buf_free(&in);
	return ok ? 0 : -ENOMEM;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The normalised form: ASCII case folding only, so the index never
 * depends on the locale. */
static void normalise(enum bidx_norm norm, const char *v, size_t n, char *out, size_t *ret_n)
{
	size_t o = 0;

	if (norm == BIDX_TRIM || norm == BIDX_LOWER_TRIM) {
		while (n && is_space(*v))
			v++, n--;
		while (n && is_space(v[n - 1]))
			n--;
	}
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (norm == BIDX_DIGITS && (c < '0' || c > '9'))
			continue;
		if ((norm == BIDX_LOWER || norm == BIDX_LOWER_TRIM) && c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		out[o++] = c;
	}
	*ret_n = o;
}

int bidx_compute(const uint8_t column_key[BIDX_KEY_LEN], enum bidx_norm norm, unsigned bytes,
                 const char *value, size_t len, struct buf *out)
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned maclen = sizeof(mac);
	char hex[2 * BIDX_MAX_BYTES + 1];
	size_t n;

	if (bytes < 1 || bytes > BIDX_MAX_BYTES || (unsigned)norm > BIDX_DIGITS)
		return -EINVAL;
	char *norm_v = malloc(len ? len : 1);
	if (!norm_v)
		return -ENOMEM;
	normalise(norm, value, len, norm_v, &n);
	bool ok =
	    HMAC(EVP_sha256(), column_key, BIDX_KEY_LEN, (const uint8_t *)norm_v, n, mac, &maclen) != NULL;
	OPENSSL_cleanse(norm_v, len ? len : 1);
	free(norm_v);
	if (!ok)
		return -EIO;
	hex_encode(mac, bytes, hex);
	buf_add(out, hex, 2 * bytes);
	return out->failed ? -ENOMEM : 0;
}
