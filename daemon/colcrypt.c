/* colcrypt.c - see colcrypt.h */
#include "colcrypt.h"

#include <errno.h>
#include <openssl/crypto.h>

static void context(struct buf *ctx, const char *table, const char *column, const struct kc_key *k)
{
	char ref[2 * SUBJECT_REF_LEN + 1] = "";

	if (k->has_ref)
		hex_encode(k->ref, SUBJECT_REF_LEN, ref);
	buf_add(ctx, "col1", 5);
	buf_add(ctx, table, strlen(table) + 1);
	buf_add(ctx, column, strlen(column) + 1);
	buf_adds(ctx, ref);
}

int cc_encrypt(const char *table, const char *column, const struct kc_key *k, const char *value, size_t n,
               struct buf *out)
{
	struct buf ctx = BUF_INIT;

	context(&ctx, table, column, k);
	int err = ctx.failed ? -ENOMEM : fc_encrypt(&k->k, ctx.p, ctx.len, value, n, out);
	buf_free(&ctx);
	return err;
}

int cc_decrypt_with(const struct kc_key *k, const char *table, const char *column, const char *ct, size_t n,
                    struct buf *out)
{
	struct buf ctx = BUF_INIT;

	context(&ctx, table, column, k);
	int err = ctx.failed ? -ENOMEM : fc_decrypt(&k->k, ctx.p, ctx.len, ct, n, out);
	buf_free(&ctx);
	return err;
}

int cc_decrypt(struct keystore *ks, const char *table, const char *column, const char *ct, size_t n,
               struct buf *out)
{
	uint8_t id[FC_KEYID_LEN];
	struct kc_key k;
	int err = fc_key_id(ct, n, id);

	if (!err)
		err = ks_key_by_id(ks, id, &k);
	if (!err)
		err = cc_decrypt_with(&k, table, column, ct, n, out);
	OPENSSL_cleanse(&k, sizeof(k));
	return err;
}

const char *cc_strerror(int err)
{
	if (err == -ENOKEY)
		return "the value's key is destroyed (erased) or unknown to this keystore";
	if (err == -EIO)
		return "the keystore cannot be read";
	if (err == -EBUSY)
		return "a key rotation is running: try again once it ends";
	return fc_strerror(err);
}
