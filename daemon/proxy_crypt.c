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

#include "bytea.h"
#include "colcrypt.h"
#include "copytext.h"
#include "keyclient.h"
#include "proxy_conn.h"

#define BYTEA_OID 17
#define MASK "********"

static enum pxc_out out_for(const struct pconn *c, const struct colmap *map, const struct pp_column *f)
{
	if (!f || !f->pc || !f->pc->encrypt)
		return PXC_PASS;
	if (ppol_plaintext(map->pp, c->user, f->pc))
		return PXC_DECRYPT;
	static const enum pxc_out others[] = { [POL_OTHERS_MASK] = PXC_MASK,
		                               [POL_OTHERS_CIPHERTEXT] = PXC_PASS,
		                               [POL_OTHERS_REFUSE] = PXC_REFUSE };
	return others[f->pc->others_see];
}

int pxc_map(struct pconn *c, struct colmap *map, const struct pgp_rowdesc *rd)
{
	size_t n = rd->n ? rd->n : 1;

	if (!(map->out = calloc(n, 1)) || !(map->form = calloc(n, 1)) ||
	    !(map->binary = calloc(n, sizeof(*map->binary))))
		return -ENOMEM;
	for (uint16_t i = 0; i < rd->n; i++) {
		map->out[i] = (uint8_t)out_for(c, map, map->f[i]);
		/* (a type of 0 would be taken as not known: no type Custos reads) */
		map->binary[i] = !rd->fields[i].format    ? 0
		                 : rd->fields[i].type_oid ? rd->fields[i].type_oid
		                                          : UINT32_MAX;
		if (rd->fields[i].type_oid == BYTEA_OID)
			map->form[i] = rd->fields[i].format ? PXC_BYTEA_BINARY : PXC_BYTEA_TEXT;
		map->rewrite |= map->out[i] == PXC_DECRYPT || map->out[i] == PXC_MASK;
		map->refuse |= map->out[i] == PXC_REFUSE;
	}
	return 0;
}

/* Appends the plaintext of ciphertext ct to out. 0; 1 when its key is
 * destroyed (the value is erased: NULL); -EINPROGRESS when the key is
 * being fetched (try again when it comes); -EKEYREJECTED when it fails its
 * check; -ERANGE when it has no equivalent in the client's encoding; -EIO
 * when no key can be had; -ENOMEM. A value that is not a
 * Custos ciphertext (plaintext from before encryption) is appended as it is. */
static int decrypt_to(struct pconn *c, const struct pp_column *f, const char *ct, size_t len, struct buf *out)
{
	uint8_t id[FC_KEYID_LEN];
	struct kc_key k;
	int err = fc_key_id(ct, len, id);

	if (err == -EINVAL) {
		buf_add(out, ct, len);
		return out->failed ? -ENOMEM : 0;
	}
	if (!err)
		err = c->px->keys ? kcl_key_nowait(c->px->keys, id, &k) : -ENOTCONN;
	if (err == -ENOKEY)
		return 1;
	if (err == -EINPROGRESS)
		return err;
	size_t at = out->len;
	if (!err)
		err = cc_decrypt_with(&k, f->table, f->pc->name, ct, len, out);
	if (!err && !f->bytea) /* UTF-8, as it went in: into the client's encoding */
		err = pge_from_utf8(&c->enc, out, at);
	OPENSSL_cleanse(&k, sizeof(k));
	if (err == -EBADMSG || err == -EINVAL || err == -EPROTONOSUPPORT)
		return -EKEYREJECTED;
	return err == -ENOMEM || err == -ERANGE ? err : err ? -EIO : 0;
}

/* decrypt_to for a bytea value (form: PXC_BYTEA_*): its bytes are the
 * ciphertext's text, and in the text format they come and go as hex. */
static int decrypt_bytea(struct pconn *c, const struct pp_column *f, const char *v, size_t len, int form,
                         struct buf *out)
{
	struct buf ct = BUF_INIT, plain = BUF_SECRET;

	if (form == PXC_BYTEA_BINARY)
		return decrypt_to(c, f, v, len, out);
	int err = by_decode(v, len, &ct);
	if (err == -EINVAL) { /* not what PostgreSQL writes: passed as it is */
		buf_add(out, v, len);
		err = 0;
	} else if (!err && !(err = decrypt_to(c, f, ct.p ? ct.p : "", ct.len, &plain))) {
		by_encode(plain.p, plain.len, out);
	}
	OPENSSL_cleanse(plain.p, plain.cap);
	buf_free(&plain);
	buf_free(&ct);
	return err ? err : out->failed ? -ENOMEM : 0;
}

/* Appends the plaintext of one value of a DataRow (length and bytes). */
static int decrypt_value(struct pconn *c, const struct pp_column *f, int form, const struct pgp_value *v,
                         struct buf *out)
{
	size_t at = out->len;

	pgp_add32(out, 0);
	int err = form ? decrypt_bytea(c, f, (const char *)v->p, (size_t)v->len, form, out)
	               : decrypt_to(c, f, (const char *)v->p, (size_t)v->len, out);
	if (err == 1) { /* erased: NULL */
		out->len = at;
		pgp_add_value(out, NULL, -1);
		return 0;
	}
	if (!err && !out->failed)
		pgp_put32((uint8_t *)out->p + at, (uint32_t)(out->len - at - 4));
	return err;
}

int pxc_row(struct pconn *c, const struct colmap *map, char type, const uint8_t *head, size_t nhead,
            const struct pgp_value *v, uint16_t n, struct buf *out)
{
	size_t start = out->len;
	int err = 0;

	buf_addc(out, type);
	pgp_add32(out, 0);
	buf_add(out, head, nhead);
	pgp_add16(out, n);
	for (uint16_t i = 0; i < n && (!err || err == -EINPROGRESS); i++) {
		int e = 0;
		if (v[i].len < 0 || map->out[i] == PXC_PASS)
			pgp_add_value(out, v[i].p, v[i].len);
		else if (map->out[i] == PXC_MASK)
			pgp_add_value(out, MASK, (int32_t)strlen(MASK));
		else
			e = decrypt_value(c, map->f[i], map->form[i], &v[i], out);
		if (e && (e != -EINPROGRESS || !err))
			err = e; /* after a key being fetched, the others' are asked for too */
	}
	if (!err && out->failed)
		err = -ENOMEM;
	if (!err)
		pgp_put32((uint8_t *)out->p + start + 1, (uint32_t)(out->len - start - 1));
	return err;
}

/* --- COPY TO: rows in the text format ------------------------------------------- */

static bool named(char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

struct colmap *pxc_copy_map(struct pconn *c, const struct pstmt *st, uint16_t ncols)
{
	const char *dot = st->table ? strchr(st->table, '.') : NULL;
	char schema[64];
	const struct pp_table *t = NULL;

	if (dot && c->px->pp && (size_t)(dot - st->table) < sizeof(schema)) {
		snprintf(schema, sizeof(schema), "%.*s", (int)(dot - st->table), st->table);
		t = ppol_by_name(c->px->pp, schema, dot + 1);
	}
	struct colmap *map = t && t->cols && st->copy_out ? calloc(1, sizeof(*map)) : NULL;

	if (!map)
		return NULL;
	map->refs = 1;
	if (!(map->f = calloc(ncols ? ncols : 1, sizeof(*map->f))) ||
	    !(map->out = calloc(ncols ? ncols : 1, 1)) || !(map->form = calloc(ncols ? ncols : 1, 1)) ||
	    !(map->binary = calloc(ncols ? ncols : 1, sizeof(*map->binary))) ||
	    !(map->quote = calloc(ncols ? ncols : 1, 1)) ||
	    !(map->fields = calloc(ncols + 1u, sizeof(*map->fields))))
		goto none;
	map->n = ncols;
	map->fmt = st->copy_fmt;
	map->fmt.one_column = ncols == 1;
	map->pp = ppol_ref(c->px->pp);
	if (st->ncopy_cols != 0 && st->ncopy_cols != ncols)
		goto none; /* not the columns the server sends */
	uint16_t n = 0;
	for (int16_t a = 0; n < ncols && a < t->ncols; a++) { /* the columns named, in their order, or all */
		const struct pp_column *col =
		    st->ncopy_cols ? ppol_column_named(t, st->copy_cols[n]) : &t->cols[a];
		if (!st->ncopy_cols && (!col->name || col->generated))
			continue; /* a dropped column, or one COPY leaves out */
		if (!col)
			goto none;
		map->f[n] = col;
		map->out[n] = (uint8_t)out_for(c, map, col);
		map->form[n] = !col->bytea ? 0 : st->copy_binary ? PXC_BYTEA_BINARY : PXC_BYTEA_TEXT;
		map->binary[n] = st->copy_binary ? col->type_oid : 0;
		map->quote[n] = st->copy_quote_all || named(st->copy_quote, st->ncopy_quote, col->name);
		map->rewrite |= map->out[n] == PXC_DECRYPT || map->out[n] == PXC_MASK;
		map->refuse |= map->out[n] == PXC_REFUSE;
		map->personal |= col->pc != NULL;
		map->subject |= col->subject != NULL;
		n++;
	}
	if (n != ncols)
		goto none;
	return map;
none:
	pq_map_unref(map);
	return NULL;
}

/* A value of column i of COPY TO as a field, quoted when it must be or
 * FORCE_QUOTE says so. */
static void put(const struct colmap *map, uint16_t i, struct buf *out, const char *p, size_t n)
{
	(map->quote && map->quote[i] ? ct_put_quoted : ct_put)(&map->fmt, out, p, n);
}

/* A bytea field of COPY's text or CSV: hex (escaped in the text format). */
static int copy_bytea(struct pconn *c, const struct colmap *map, uint16_t i, const struct ct_field *field,
                      struct buf *out)
{
	struct buf text = BUF_INIT, plain = BUF_SECRET;
	int err = ct_value(&map->fmt, field, &text);

	if (!err)
		err = decrypt_bytea(c, map->f[i], text.p ? text.p : "", text.len, PXC_BYTEA_TEXT, &plain);
	if (err == 1)
		ct_put_null(&map->fmt, out);
	else if (!err)
		put(map, i, out, plain.p ? plain.p : "", plain.len);
	OPENSSL_cleanse(plain.p, plain.cap);
	buf_free(&plain);
	buf_free(&text);
	return err == 1 ? 0 : err;
}

/* An encrypted field of COPY TO (not NULL), as this client may see it. */
static int copy_field(struct pconn *c, const struct colmap *map, uint16_t i, const struct ct_field *field,
                      struct buf *out)
{
	struct buf ct = BUF_INIT, plain = BUF_SECRET;
	int err = 0;

	if (map->out[i] == PXC_MASK) {
		put(map, i, out, MASK, strlen(MASK));
		return out->failed ? -ENOMEM : 0;
	}
	if (map->form[i])
		return copy_bytea(c, map, i, field, out);
	err = ct_value(&map->fmt, field, &ct); /* (a quoted one begins with the quote) */
	if (!err && (ct.len < FC_PREFIX_LEN || memcmp(ct.p, FC_PREFIX, FC_PREFIX_LEN))) {
		buf_free(&ct);
		buf_add(out, field->p, field->len); /* plaintext from before encryption: as stored */
		return out->failed ? -ENOMEM : 0;
	}
	if (!err)
		err = decrypt_to(c, map->f[i], ct.p ? ct.p : "", ct.len, &plain);
	if (err == 1) {
		ct_put_null(&map->fmt, out);
		err = 0;
	} else if (!err) {
		put(map, i, out, plain.p ? plain.p : "", plain.len);
	}
	OPENSSL_cleanse(plain.p, plain.cap);
	buf_free(&plain);
	buf_free(&ct);
	return err;
}

int pxc_copyrow(struct pconn *c, const struct colmap *map, const uint8_t *row, size_t len, struct buf *out)
{
	const char *p = (const char *)row;
	int err = 0;

	if (!len || p[len - 1] != '\n' || ct_split(&map->fmt, p, len - 1, map->fields, map->n) != (int)map->n)
		return -EILSEQ; /* not one row of the table's columns */
	for (uint16_t i = 0; i < map->n && (!err || err == -EINPROGRESS); i++) {
		const struct ct_field *f = &map->fields[i];
		int e = 0;
		if (i)
			buf_addc(out, map->fmt.delim);
		if (ct_is_null(&map->fmt, f) || map->out[i] == PXC_PASS || map->out[i] == PXC_REFUSE)
			buf_add(out, f->p, f->len);
		else
			e = copy_field(c, map, i, f, out);
		if (e && (e != -EINPROGRESS || !err))
			err = e; /* as in pxc_row */
	}
	buf_addc(out, '\n');
	return err ? err : out->failed ? -ENOMEM : 0;
}
