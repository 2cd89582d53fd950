/* proxy_rewrite.c - each execution of a statement that writes encrypted
 * columns or compares them (the plan: proxy_encrypt.c): the values are
 * encrypted under their row's key and their blind indexes computed, and
 * the text (a simple query, a Parse) or the Bind message that carries them
 * is rewritten. Plaintext lives here only in buffers wiped after use. */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blindidx.h"
#include "bytea.h"
#include "colcrypt.h"
#include "keyclient.h"
#include "proxy_encrypt.h"
#include "subjectmap.h"

/* --- keys and values ------------------------------------------------------- */

/* The subject id of a row's values (b: its Bind, or NULL): 0 with a copy
 * in *id, NULL when no subject is known;
 * -ENOTSUP when it is bound in binary as a type Custos does not read (a
 * fresh key would put its values out of its erasure's reach); -ENOMEM. */
static int row_id(const struct pxe_plan *p, unsigned row, const struct pgp_bind *b, char **id)
{
	int err = 0;

	*id = NULL;
	if (p->subject && p->sid_param[row] && b && p->sid_param[row] <= b->nparams)
		*id = pq_param_text(b, (unsigned)p->sid_param[row] - 1, p->sid_type, p->sid_cast[row], &err);
	else if (p->subject && p->sid_value[row] && !(*id = strdup(p->sid_value[row])))
		return -ENOMEM;
	return err;
}

/* The key of a row's values: its subject's, or a fresh one (no subject
 * known, or rows that take keys of their own: the subject named must not
 * be erased all the same). */
static int row_key(struct pconn *c, const struct pxe_plan *p, unsigned row, const struct pgp_bind *b,
                   struct kc_key *k)
{
	char *id;
	int err = row_id(p, row, b, &id);

	if (!err && id)
		err = kcl_subject(c->px->keys, p->subject, id, k);
	if (!err && (!id || p->own_keys))
		err = kcl_fresh(c->px->keys, k);
	free(id);
	return err;
}

/* Whether value v is encrypted (under b, a Bind, or in the text). */
static bool sealed(const struct pxe_value *v, const struct pgp_bind *b)
{
	return b ? v->param && v->param <= b->nparams && b->params[v->param - 1].len >= 0 : !v->null;
}

#define KEYS_AT_ONCE 128 /* a message needing more gets them one by one, waiting */

/* The rows and lookups of p whose keys its values need (b: their Bind). */
static unsigned rows_keyed(const struct pxe_plan *p, const struct pgp_bind *b)
{
	unsigned n = (unsigned)p->nlk, row = UINT32_MAX;

	for (size_t i = 0; i < p->n; i++)
		if (sealed(&p->v[i], b) && p->v[i].row != row) {
			row = p->v[i].row;
			n++;
		}
	return n;
}

/* Asks for the keys p's values need that are not cached; counts in *fresh
 * the rows of no known subject. */
static int plan_keys(struct pconn *c, const struct pxe_plan *p, const struct pgp_bind *b, unsigned *fresh)
{
	struct kc_key k;
	uint8_t key[BIDX_KEY_LEN];
	unsigned row = UINT32_MAX;
	int err = 0;
	char *id;

	for (size_t i = 0; err != -ENOMEM && i < p->n; i++) {
		const struct pxe_value *v = &p->v[i];
		if (!sealed(v, b))
			continue;
		if (v->row != row) {
			row = v->row;
			kcl_note(&err, row_id(p, row, b, &id));
			if (id)
				kcl_note(&err, kcl_subject_nowait(c->px->keys, p->subject, id, &k));
			*fresh += !id || p->own_keys;
			free(id);
		}
		if (v->col->pc->bidx_column)
			kcl_note(&err,
			         kcl_bidx_key_nowait(c->px->keys, v->col->table, v->col->pc->name, key));
	}
	for (size_t i = 0; i < p->nlk; i++)
		kcl_note(&err,
		         kcl_bidx_key_nowait(c->px->keys, p->lk[i].col->table, p->lk[i].col->pc->name, key));
	OPENSSL_cleanse(&k, sizeof(k));
	OPENSSL_cleanse(key, sizeof(key));
	return err;
}

/* Asks, all at once, for the keys a message's plans need that are not
 * cached (b: their Bind, or NULL for literals): 0 when every one is at
 * hand, -EINPROGRESS while some are fetched (the message is taken again
 * when they come), or a key's refusal. Rows of no known subject get fresh
 * keys, kept ready a few at a time. A message of more than KEYS_AT_ONCE
 * rows gets its keys as it is encrypted, waiting for each it lacks (so
 * many could not all be at hand at once). */
static int keys_at_hand(struct pconn *c, const struct pxe_plan *const *plans, size_t n,
                        const struct pgp_bind *b)
{
	unsigned rows = 0, fresh = 0;
	int err = 0;

	for (size_t i = 0; i < n; i++)
		rows += plans[i] ? rows_keyed(plans[i], b) : 0;
	if (rows > KEYS_AT_ONCE)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (plans[i])
			kcl_note(&err, plan_keys(c, plans[i], b, &fresh));
	if (fresh)
		kcl_note(&err, kcl_fresh_reserve(c->px->keys, fresh));
	return err;
}

/* Appends the blind index of value (hex) for column col. */
int pxe_blind_index(struct pconn *c, const struct pp_column *col, const char *v, size_t len, struct buf *out)
{
	uint8_t key[BIDX_KEY_LEN];
	int norm = bidx_norm_from_name(col->pc->bidx_normalize ? col->pc->bidx_normalize : "none");
	struct buf conv = BUF_SECRET;
	const char *u = v;
	size_t un = len;
	int err =
	    col->bytea ? 0 : pge_to_utf8(&c->enc, v, len, &conv, &u, &un); /* (the index of its UTF-8) */

	if (!err)
		err = kcl_bidx_key(c->px->keys, col->table, col->pc->name, key);
	if (!err)
		err = bidx_compute(key, norm < 0 ? BIDX_NONE : (enum bidx_norm)norm, col->pc->bidx_bytes, u,
		                   un, out);
	OPENSSL_cleanse(key, sizeof(key));
	buf_free(&conv);
	return err;
}

int pxe_seal(const struct pconn *c, const struct pp_column *col, const struct kc_key *k, const char *v,
             size_t n, bool binary, struct buf *out)
{
	struct buf raw = BUF_SECRET, ct = BUF_INIT;
	int err = 0;

	if (!col->bytea) { /* its UTF-8 (PostgreSQL would refuse what is not valid in the client's encoding)
		            */
		struct buf conv = BUF_SECRET;
		const char *u;
		size_t un;
		err = pge_to_utf8(&c->enc, v, n, &conv, &u, &un);
		if (!err)
			err = cc_encrypt(col->table, col->pc->name, k, u, un, out);
		buf_free(&conv);
		return err;
	}
	if (!binary && !(err = by_decode(v, n, &raw))) { /* a bytea's text: its bytes are the value */
		v = raw.p ? raw.p : "";
		n = raw.len;
	}
	if (err == -EINVAL)
		err = -EDOM;
	if (!err)
		err = cc_encrypt(col->table, col->pc->name, k, v, n, binary ? out : &ct);
	if (!err && !binary)
		by_encode(ct.p, ct.len, out);
	OPENSSL_cleanse(raw.p, raw.cap);
	buf_free(&raw);
	buf_free(&ct);
	return err ? err : out->failed ? -ENOMEM : 0;
}

/* --- edits of a statement's text --------------------------------------------- */

struct edit {
	size_t pos, del;
	struct buf ins;
	unsigned order; /* edits at one position keep the order they were made in */
};

struct edits {
	struct edit *v;
	size_t n;
};

static struct buf *edit_add(struct edits *e, size_t pos, size_t del)
{
	struct edit *nv = realloc(e->v, (e->n + 1) * sizeof(*nv));

	if (!nv)
		return NULL;
	e->v = nv;
	nv[e->n] = (struct edit){ pos, del, BUF_INIT, (unsigned)e->n };
	return &nv[e->n++].ins;
}

static int by_pos(const void *a, const void *b)
{
	const struct edit *x = a, *y = b;

	if (x->pos != y->pos)
		return x->pos < y->pos ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* The text with the edits made; -EINVAL when two overlap. */
static int edits_apply(struct edits *e, const char *text, struct buf *out)
{
	size_t at = 0, len = strlen(text);

	qsort(e->v, e->n, sizeof(*e->v), by_pos);
	for (size_t i = 0; i < e->n; i++) {
		const struct edit *x = &e->v[i];
		if (x->pos < at || x->pos + x->del > len || x->ins.failed)
			return x->ins.failed ? -ENOMEM : -EINVAL;
		buf_add(out, text + at, x->pos - at);
		buf_add(out, x->ins.p, x->ins.len);
		at = x->pos + x->del;
	}
	buf_add(out, text + at, len - at);
	buf_addc(out, 0);
	return out->failed ? -ENOMEM : 0;
}

static void edits_free(struct edits *e)
{
	for (size_t i = 0; i < e->n; i++) {
		OPENSSL_cleanse(e->v[i].ins.p, e->v[i].ins.len);
		buf_free(&e->v[i].ins);
	}
	free(e->v);
}

/* The end of the token at pos: a quoted identifier, a '...' string, $n, or a word. */
static size_t token_end(const char *t, size_t pos)
{
	char q = t[pos] == '"' || t[pos] == '\'' ? t[pos] : 0;
	size_t i = pos + 1;

	if (q) {
		for (; t[i]; i++)
			if (t[i] == q && t[i + 1] == q)
				i++;
			else if (t[i] == q)
				return i + 1;
		return i;
	}
	while (t[i] && (t[i] == '_' || t[i] == '$' || (t[i] >= '0' && t[i] <= '9') ||
	                ((t[i] | 0x20) >= 'a' && (t[i] | 0x20) <= 'z') || (unsigned char)t[i] >= 0x80))
		i++;
	return i;
}

/* Where a blind index goes beside its column: `, idx` after the column in
 * an INSERT's column list (once), and the value after the column's value. */
static int bidx_beside(struct edits *e, const struct pxe_plan *p, const struct pxe_value *v, const char *text,
                       const struct sqi_literal *lits, const struct buf *value)
{
	const char *idx = v->col->pc->bidx_column;
	long col = sqi_pos_at(&v->col_at, text, lits), val = sqi_pos_at(&v->value_at, text, lits);
	struct buf *b;

	if (val < 0 || (p->insert && col < 0))
		return -EINVAL;
	if (p->insert && v->row == 0) {
		if (!(b = edit_add(e, token_end(text, (size_t)col), 0)))
			return -ENOMEM;
		buf_adds(b, ", ");
		sm_quote_ident(b, idx);
	}
	if (!(b = edit_add(e, token_end(text, (size_t)val), 0)))
		return -ENOMEM;
	buf_adds(b, ", ");
	if (!p->insert) {
		sm_quote_ident(b, idx);
		buf_adds(b, " = ");
	}
	buf_add(b, value->p, value->len);
	return 0;
}

/* A comparison through the blind index: v becomes
 * ANY(ARRAY(SELECT col FROM table WHERE idx = v')). */
static int lookup_edit(struct edits *e, const struct pxe_lookup *l, const char *text,
                       const struct sqi_literal *lits, const struct buf *value)
{
	long at = sqi_pos_at(&l->at, text, lits);
	struct buf *b = at < 0 ? NULL : edit_add(e, (size_t)at, token_end(text, (size_t)at) - (size_t)at);

	if (at < 0)
		return -EINVAL;
	if (!b)
		return -ENOMEM;
	buf_adds(b, "ANY(ARRAY(SELECT ");
	sm_quote_ident(b, l->col->name);
	buf_adds(b, " FROM ");
	sm_quote(b, l->col->rel);
	buf_adds(b, " WHERE ");
	sm_quote_ident(b, l->col->pc->bidx_column);
	buf_adds(b, " = ");
	buf_add(b, value->p, value->len);
	buf_adds(b, "))");
	return 0;
}

static void quoted(struct buf *out, const struct buf *v)
{
	buf_addc(out, '\'');
	buf_add(out, v->p, v->len); /* base64 and hex: no quote inside */
	buf_addc(out, '\'');
}

/* --- a simple query: literals ----------------------------------------------------- */

static int query_plan(struct pconn *c, const struct pxe_plan *p, const char *sql,
                      const struct sqi_literal *lits, struct edits *e)
{
	struct kc_key k;
	struct buf ct = BUF_INIT, idx = BUF_INIT, q = BUF_INIT;
	unsigned row = UINT32_MAX;
	int err = 0;

	for (size_t i = 0; !err && i < p->n; i++) {
		const struct pxe_value *v = &p->v[i];
		if (v->null) { /* its blind index is NULL too */
			buf_reset(&q);
			buf_adds(&q, "NULL");
			err = bidx_beside(e, p, v, sql, lits, &q);
			continue;
		}
		const struct sqi_literal *l = &lits[v->literal];
		char *pt = sqi_literal_text(l);
		struct buf *b;
		if (!pt)
			err = -ENOMEM;
		if (!err && v->row != row && !(err = row_key(c, p, v->row, NULL, &k)))
			row = v->row;
		buf_reset(&ct);
		if (!err)
			err = pxe_seal(c, v->col, &k, pt, strlen(pt), false, &ct);
		if (!err && !(b = edit_add(e, (size_t)(l->p - sql), l->len)))
			err = -ENOMEM;
		if (!err)
			quoted(b, &ct);
		if (!err && v->col->pc->bidx_column) {
			buf_reset(&idx);
			buf_reset(&q);
			if (!(err = pxe_blind_index(c, v->col, pt, strlen(pt), &idx))) {
				quoted(&q, &idx);
				err = bidx_beside(e, p, v, sql, lits, &q);
			}
		}
		if (pt) {
			OPENSSL_cleanse(pt, strlen(pt));
			free(pt);
		}
	}
	for (size_t i = 0; !err && i < p->nlk; i++) {
		char *pt = sqi_literal_text(&lits[p->lk[i].literal]);
		buf_reset(&idx);
		buf_reset(&q);
		err = pt ? pxe_blind_index(c, p->lk[i].col, pt, strlen(pt), &idx) : -ENOMEM;
		if (!err) {
			quoted(&q, &idx);
			err = lookup_edit(e, &p->lk[i], sql, lits, &q);
		}
		if (pt) {
			OPENSSL_cleanse(pt, strlen(pt));
			free(pt);
		}
	}
	OPENSSL_cleanse(&k, sizeof(k));
	buf_free(&ct);
	buf_free(&idx);
	buf_free(&q);
	return err;
}

int pxe_query(struct pconn *c, const char *sql, const struct sqi_literal *lits, struct pxe_plan *const *plans,
              size_t nplans, struct buf *out)
{
	struct edits e = { 0 };
	int err = 0;

	for (size_t i = 0; i < nplans; i++)
		if (plans[i] && plans[i]->copy) { /* its rows are encrypted as they come */
			if (nplans > 1)
				return -EXDEV;
			buf_adds(out, plans[i]->copy->text ? plans[i]->copy->text : sql);
			buf_addc(out, 0);
			return out->failed ? -ENOMEM : 0;
		}
	err = keys_at_hand(c, (const struct pxe_plan *const *)plans, nplans, NULL);
	for (size_t i = 0; !err && i < nplans; i++)
		if (plans[i])
			err = query_plan(c, plans[i], sql, lits, &e);
	if (!err)
		err = edits_apply(&e, sql, out);
	edits_free(&e);
	return err;
}

/* --- the extended protocol: Parse, then each Bind ---------------------------------- */

bool pxe_rewrites_parse(const struct pxe_plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].null)
			return true;
	return p->nextra || p->nlk || (p->copy && p->copy->text);
}

/* Parse's text: lookups through the blind index, and $m beside each
 * blind-indexed parameter for its index. A literal compared is indexed now. */
int pxe_parse(struct pconn *c, const struct pxe_plan *p, const char *sql, const struct sqi_literal *lits,
              struct buf *out)
{
	struct edits e = { 0 };
	struct buf v = BUF_INIT, idx = BUF_INIT;
	uint8_t idxkey[BIDX_KEY_LEN];
	int err = 0;

	if (p->copy) {
		buf_adds(out, p->copy->text ? p->copy->text : sql);
		buf_addc(out, 0);
		return out->failed ? -ENOMEM : 0;
	}
	for (size_t i = 0; i < p->nlk; i++)
		if (!p->lk[i].param)
			kcl_note(&err, kcl_bidx_key_nowait(c->px->keys, p->lk[i].col->table,
			                                   p->lk[i].col->pc->name, idxkey));
	OPENSSL_cleanse(idxkey, sizeof(idxkey));
	for (size_t i = 0; !err && i < p->n; i++)
		if (p->v[i].bidx_param || p->v[i].null) {
			buf_reset(&v);
			if (p->v[i].null)
				buf_adds(&v, "NULL");
			else
				buf_printf(&v, "$%d", p->v[i].bidx_param);
			err = bidx_beside(&e, p, &p->v[i], sql, lits, &v);
		}
	for (size_t i = 0; !err && i < p->nlk; i++) {
		const struct pxe_lookup *l = &p->lk[i];
		buf_reset(&v);
		if (l->param) {
			buf_printf(&v, "$%d", l->param);
		} else {
			char *pt = sqi_literal_text(&lits[l->literal]);
			buf_reset(&idx);
			err = pt ? pxe_blind_index(c, l->col, pt, strlen(pt), &idx) : -ENOMEM;
			if (!err)
				quoted(&v, &idx);
			if (pt) {
				OPENSSL_cleanse(pt, strlen(pt));
				free(pt);
			}
		}
		if (!err)
			err = lookup_edit(&e, l, sql, lits, &v);
	}
	if (!err)
		err = edits_apply(&e, sql, out);
	edits_free(&e);
	buf_free(&v);
	buf_free(&idx);
	return err;
}

/* The new values of a Bind, by parameter (0-based; the added ones after
 * the client's): NULL where the client's value stays. */
struct bind_values {
	struct buf **v;
	size_t n;
};

static struct buf *bind_set(struct bind_values *bv, int param)
{
	size_t i = (size_t)param - 1;

	if (i >= bv->n)
		return NULL;
	if (!bv->v[i])
		bv->v[i] = calloc(1, sizeof(struct buf));
	return bv->v[i];
}

static int bind_values(struct pconn *c, const struct pxe_plan *p, const struct pgp_bind *b,
                       struct bind_values *bv)
{
	struct kc_key k;
	unsigned row = UINT32_MAX;
	int err = 0;

	for (size_t i = 0; !err && i < p->n; i++) {
		const struct pxe_value *v = &p->v[i];
		if (!v->param)
			continue; /* a NULL in the text: its index was written at Parse */
		const struct pgp_value *pv = &b->params[v->param - 1];
		struct buf *out;
		if (pv->len < 0)
			continue; /* NULL stays NULL, and so does its index */
		if (v->row != row && !(err = row_key(c, p, v->row, b, &k)))
			row = v->row;
		if (!err && !(out = bind_set(bv, v->param)))
			err = -ENOMEM;
		if (!err)
			err = pxe_seal(c, v->col, &k, (const char *)pv->p, (size_t)pv->len,
			               pgp_bind_format(b, (unsigned)v->param - 1) == 1, out);
		if (!err && v->bidx_param && !(out = bind_set(bv, v->bidx_param)))
			err = -ENOMEM;
		if (!err && v->bidx_param)
			err = pxe_blind_index(c, v->col, (const char *)pv->p, (size_t)pv->len, out);
	}
	for (size_t i = 0; !err && i < p->nlk; i++) {
		const struct pxe_lookup *l = &p->lk[i];
		const struct pgp_value *pv = l->param ? &b->params[l->param - 1] : NULL;
		struct buf *out;
		if (!pv || pv->len < 0)
			continue; /* a literal, indexed at Parse; col = NULL finds nothing either way */
		if (!(out = bind_set(bv, l->param)))
			err = -ENOMEM;
		else
			err = pxe_blind_index(c, l->col, (const char *)pv->p, (size_t)pv->len, out);
	}
	OPENSSL_cleanse(&k, sizeof(k));
	return err;
}

static void bind_message(const struct pgp_bind *b, const struct bind_values *bv, uint16_t nextra,
                         struct buf *out)
{
	struct buf body = BUF_INIT;
	uint16_t n = (uint16_t)(b->nparams + nextra);

	buf_add(&body, b->portal, strlen(b->portal) + 1);
	buf_add(&body, b->statement, strlen(b->statement) + 1);
	bool each = b->nformats > 1; /* one format per parameter: the added ones are text */
	pgp_add16(&body, each ? n : b->nformats);
	if (b->nformats)
		buf_add(&body, b->formats, 2u * b->nformats);
	for (uint16_t i = 0; each && i < nextra; i++)
		pgp_add16(&body, 0);
	pgp_add16(&body, n);
	for (uint16_t i = 0; i < n; i++) {
		const struct buf *v = bv->v[i];
		if (v)
			pgp_add_value(&body, v->p, (int32_t)v->len);
		else if (i < b->nparams)
			pgp_add_value(&body, b->params[i].p, b->params[i].len);
		else
			pgp_add_value(&body, NULL, -1);
	}
	pgp_add16(&body, b->nresult_formats);
	if (b->nresult_formats)
		buf_add(&body, b->result_formats, 2u * b->nresult_formats);
	pgp_message(out, 'B', body.p, body.len);
	if (body.failed)
		out->failed = true;
	OPENSSL_cleanse(body.p, body.len);
	buf_free(&body);
}

int pxe_bind(struct pconn *c, const struct pxe_plan *p, const struct pgp_bind *b, struct buf *out)
{
	size_t n = (size_t)b->nparams + p->nextra;
	if (n > UINT16_MAX)
		return -EINVAL;
	struct bind_values bv = { calloc(n ? n : 1, sizeof(struct buf *)), n };
	int err = bv.v ? 0 : -ENOMEM;

	for (size_t i = 0; !err && i < p->n; i++)
		if (p->v[i].param > b->nparams)
			err = -EINVAL; /* PostgreSQL refuses the Bind; nothing to encrypt */
	for (size_t i = 0; !err && i < p->nlk; i++)
		if (p->lk[i].param > b->nparams)
			err = -EINVAL;
	if (!err)
		err = keys_at_hand(c, &p, 1, b);
	if (!err)
		err = bind_values(c, p, b, &bv);
	if (!err) {
		bind_message(b, &bv, (uint16_t)p->nextra, out);
		err = out->failed ? -ENOMEM : 0;
	}
	for (size_t i = 0; bv.v && i < n; i++)
		if (bv.v[i]) {
			buf_free(bv.v[i]);
			free(bv.v[i]);
		}
	free(bv.v);
	return err;
}

unsigned pxe_added_params(const struct pxe_plan *p)
{
	return p ? p->nextra : 0;
}

int pxe_subject_param(const struct pxe_plan *p, unsigned row, uint32_t *ret_type)
{
	if (!p || !p->sid_param || row >= p->nrows)
		return -1;
	*ret_type = p->sid_cast[row] ? 0 : p->sid_type;
	return p->sid_param[row];
}

const char *pxe_strerror(int err)

{
	switch (err) {
	case -ENOKEY: return "the row's subject was erased: no new personal data is stored under its name";
	case -EIO:
	case -ENOTCONN:
	case -ETIMEDOUT:
		return "no key to encrypt with now (the key store is unreachable): nothing was written";
	case -EINVAL: return "a parameter the statement writes is missing";
	case -EXDEV: return "COPY FROM into encrypted columns must be a query of its own";
	case -EDOM:
		return "a value for an encrypted bytea column is not bytea text (\\x and hex, or the escape "
		       "form)";
	case -EILSEQ:
		return "a value for an encrypted column is not valid in the client's encoding, or holds a "
		       "NUL "
		       "byte (PostgreSQL would refuse it): nothing was written";
	case -ENOTSUP:
		return "the row's subject's id is bound as a value Custos cannot read as PostgreSQL stores "
		       "it "
		       "(in binary, a type other than the integers, oid, uuid and the string types; a number "
		       "PostgreSQL converts; a cast into a text id): its values would not be under its key";
	default: return "the value cannot be encrypted: nothing was written";
	}
}
