/* proxy_crypt.c - encrypted policy columns on their way to the client
 * (DESIGN.md, "Field encryption"). Each result column is matched to the
 * policy through RowDescription; for an encrypted one the policy says
 * what this database user gets: the plaintext (a plaintext role, or a
 * member of one), a mask, the ciphertext, or an error instead of the rows.
 * Keys come from the keeper through the key client's cache.
 *
 * A value that is not a Custos ciphertext (written before the column was
 * encrypted) passes as it is; a value whose key was destroyed (its subject
 * was erased) reads as NULL; a value that fails its integrity check, or
 * whose key cannot be had, ends the result with an error: nothing is
 * passed that Custos could not vouch for. */
#include <errno.h>
#include <openssl/crypto.h>
#include <string.h>

#include "colcrypt.h"
#include "keyclient.h"
#include "proxy_conn.h"

#define BYTEA_OID 17
#define MASK "********"

static enum pxc_out out_for(const struct pconn *c, const struct colmap *map, const struct pp_column *f,
                            const struct pgp_field *rf)
{
	if (!f || !f->pc || !f->pc->encrypt || rf->type_oid == BYTEA_OID)
		return PXC_PASS; /* bytea ciphertexts are passed as stored (SECURITY.md) */
	if (ppol_plaintext(map->pp, c->user, f->pc))
		return PXC_DECRYPT;
	static const enum pxc_out others[] = { [POL_OTHERS_MASK] = PXC_MASK,
		                               [POL_OTHERS_CIPHERTEXT] = PXC_PASS,
		                               [POL_OTHERS_REFUSE] = PXC_REFUSE };
	return others[f->pc->others_see];
}

int pxc_map(struct pconn *c, struct colmap *map, const struct pgp_rowdesc *rd)
{
	if (!(map->out = calloc(rd->n ? rd->n : 1, 1)))
		return -ENOMEM;
	for (uint16_t i = 0; i < rd->n; i++) {
		map->out[i] = (uint8_t)out_for(c, map, map->f[i], &rd->fields[i]);
		map->rewrite |= map->out[i] == PXC_DECRYPT || map->out[i] == PXC_MASK;
		map->refuse |= map->out[i] == PXC_REFUSE;
	}
	return 0;
}

/* Appends the plaintext of one value (length and bytes). */
static int decrypt_value(struct pconn *c, const struct pp_column *f, const struct pgp_value *v,
                         struct buf *out)
{
	uint8_t id[FC_KEYID_LEN];
	struct kc_key k;
	int err = fc_key_id((const char *)v->p, (size_t)v->len, id);

	if (err == -EINVAL) { /* not a ciphertext: plaintext from before encryption */
		pgp_add_value(out, v->p, v->len);
		return 0;
	}
	if (!err)
		err = c->px->keys ? kcl_key(c->px->keys, id, &k) : -ENOTCONN;
	if (err == -ENOKEY) { /* erased: the value is gone */
		pgp_add_value(out, NULL, -1);
		return 0;
	}
	if (!err) {
		size_t at = out->len;
		pgp_add32(out, 0);
		err = cc_decrypt_with(&k, f->table, f->name, (const char *)v->p, (size_t)v->len, out);
		if (!err && !out->failed)
			pgp_put32((uint8_t *)out->p + at, (uint32_t)(out->len - at - 4));
	}
	OPENSSL_cleanse(&k, sizeof(k));
	if (err == -EBADMSG || err == -EINVAL || err == -EPROTONOSUPPORT)
		return -EKEYREJECTED;
	return err == -ENOMEM ? err : err ? -EIO : 0;
}

int pxc_datarow(struct pconn *c, const struct colmap *map, const struct pgp_value *v, uint16_t n,
                struct buf *out)
{
	size_t start = out->len;
	int err = 0;

	buf_addc(out, 'D');
	pgp_add32(out, 0);
	pgp_add16(out, n);
	for (uint16_t i = 0; i < n && !err; i++) {
		if (v[i].len < 0 || map->out[i] == PXC_PASS)
			pgp_add_value(out, v[i].p, v[i].len);
		else if (map->out[i] == PXC_MASK)
			pgp_add_value(out, MASK, (int32_t)strlen(MASK));
		else
			err = decrypt_value(c, map->f[i], &v[i], out);
	}
	if (!err && out->failed)
		err = -ENOMEM;
	if (!err)
		pgp_put32((uint8_t *)out->p + start + 1, (uint32_t)(out->len - start - 1));
	return err;
}
