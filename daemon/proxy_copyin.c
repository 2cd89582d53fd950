/* proxy_copyin.c - COPY FROM STDIN into encrypted columns: the client's
 * rows (text or CSV under the options copytext.h reads, or the binary
 * format) on their way to PostgreSQL, as planned when the statement was
 * analysed (proxy_encrypt.c, struct pxe_copy).
 *
 * Rows are cut from the CopyData stream wherever the client split it,
 * from the first CopyData on, whether or not CopyInResponse came first. In
 * each, the encrypted fields become their ciphertext under the key of the
 * row's subject (its id field; a fresh key when it has none), the blind
 * indexes go into their fields, and the subject goes into the record. A
 * row that cannot be encrypted fails the whole COPY: the proxy sends
 * CopyFail, PostgreSQL writes none of it, and the client gets QC004 in
 * place of PostgreSQL's error. Plaintext lives in buffers wiped after use.
 *
 * A row whose keys are not at hand waits, with those after it, while they
 * are asked for (pxi_waiting): the rows before it go on, and the client's
 * next messages are read once pxi_resume has taken the rest. */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "copytext.h"
#include "keyclient.h"
#include "proxy_encrypt.h"

struct pxi {
	struct pstmt *st;            /* the plan: st->enc->copy */
	const struct ct_format *fmt; /* st->enc->copy's */
	struct buf pending;          /* a row the client has not finished */
	size_t scanned;              /* of pending, by the line reader */
	bool quoted;                 /* CSV: pending so far ends inside quotes */
	bool header_done;            /* the header row (HEADER) has passed */
	bool ended;                  /* after the \. row: what follows is not data */
	bool failed;                 /* CopyFail sent: the client's data goes nowhere */
	bool waiting;                /* pending's first row waits for its keys */
	bool binary;                 /* the binary format: a field's p is NULL for NULL */
	struct ct_field *f;
	struct buf *ct, *idx; /* by client field: its ciphertext, its blind index */
	struct buf out;
};

static void wipe(struct buf *b)
{
	OPENSSL_cleanse(b->p, b->cap);
	buf_reset(b);
}

void pxi_free(struct pconn *c)
{
	struct pxi *x = c->cin;

	if (!x)
		return;
	for (unsigned i = 0; x->ct && i < x->st->enc->copy->nin; i++) {
		wipe(&x->ct[i]);
		wipe(&x->idx[i]);
		buf_free(&x->ct[i]);
		buf_free(&x->idx[i]);
	}
	wipe(&x->pending);
	wipe(&x->out);
	buf_free(&x->pending);
	buf_free(&x->out);
	free(x->ct);
	free(x->idx);
	free(x->f);
	pq_st_unref(x->st);
	free(x);
	c->cin = NULL;
}

/* Fails the COPY: PostgreSQL gets CopyFail (why names no value: it goes
 * into the server's log), and the client gets why as QC004. */
static int fail(struct pconn *c, struct pxi *x, const char *why)
{
	struct buf msg = BUF_INIT;

	pgp_message(&msg, 'f', why, strlen(why) + 1);
	int err = msg.failed || pc_to_server(c, msg.p, msg.len) ? -ENOMEM : 0;
	buf_free(&msg);
	x->failed = true;
	x->waiting = false; /* no row goes anywhere now */
	c->res.refusal = why;
	c->res.refusal_code = PX_ERR_ENCRYPT;
	return err;
}

int pxi_start(struct pconn *c, struct pstmt *st)
{
	if (!st || st->kind != SQI_COPY)
		return 0;
	pxi_free(c); /* a COPY before it that the client never ended */
	const struct pxe_copy *cp = st->enc ? st->enc->copy : NULL;
	struct pxi *x = cp ? calloc(1, sizeof(*x)) : NULL;

	if (!cp)
		return 0; /* nothing to encrypt: the rows pass */
	if (!x || !(x->f = calloc(cp->nin + 1, sizeof(*x->f))) ||
	    !(x->ct = calloc(cp->nin, sizeof(*x->ct))) || !(x->idx = calloc(cp->nin, sizeof(*x->idx)))) {
		if (x)
			free(x->f), free(x->ct);
		free(x);
		return -ENOMEM;
	}
	x->st = pq_st_ref(st);
	x->pending.secret = x->out.secret = true; /* the client's rows, plaintext and all */
	x->fmt = &cp->fmt;
	x->binary = cp->binary;
	x->header_done = !cp->header && !cp->binary;
	c->cin = x;
	return 0;
}

int pxi_check(struct pconn *c, const struct pstmt *st, const struct pgp_msg *m)
{
	struct pxi *x = c->cin;

	if (!st || !st->enc || !st->enc->copy)
		return 0;
	if (!x && c->copy_done_early)
		return 0; /* the client sent its rows and ended before this: they went encrypted */
	if (!x || x->st != st)
		return -EPROTO;
	/* CopyInResponse: the format, with the columns planned */
	if (m->len < 3 || m->body[0] != x->binary ||
	    (m->body[1] << 8 | m->body[2]) != (int)st->enc->copy->nout)
		return x->failed ? 0
		                 : fail(c, x,
		                        "PostgreSQL asks for other COPY columns or another format than "
		                        "Custos planned: nothing was written");
	return 0;
}

/* Field i of the row: whether NULL, and its value. */
static bool is_null(const struct pxi *x, unsigned i)
{
	return x->binary ? !x->f[i].p : ct_is_null(x->fmt, &x->f[i]);
}

static int field_value(const struct pxi *x, unsigned i, struct buf *out)
{
	if (!x->binary)
		return ct_value(x->fmt, &x->f[i], out);
	buf_add(out, x->f[i].p, x->f[i].len);
	return out->failed ? -ENOMEM : 0;
}

/* The row's key, once a field needs it. */
static int row_key(struct pconn *c, const struct pxi *x, const char *id, struct kc_key *k, bool *have)
{
	if (*have)
		return 0;
	bool own = x->st->enc->own_keys; /* the subject named, not erased; the key the row's own */
	int err = id ? kcl_subject(c->px->keys, x->st->enc->subject, id, k) : 0;
	if (!err && (!id || own))
		err = kcl_fresh(c->px->keys, k);
	*have = !err;
	return err;
}

/* The field's ciphertext as the COPY's format gives it (a bytea's hex has
 * a backslash for the text format to escape). */
static int seal_field(const struct pconn *c, const struct pxi *x, const struct pp_column *col,
                      const struct kc_key *k, const struct buf *plain, struct buf *out)
{
	struct buf ct = BUF_INIT;
	int err = pxe_seal(c, col, k, plain->p ? plain->p : "", plain->len, x->binary, &ct);

	if (!err && x->binary)
		buf_add(out, ct.p, ct.len);
	else if (!err)
		ct_put(x->fmt, out, ct.p ? ct.p : "", ct.len);
	buf_free(&ct);
	return err ? err : out->failed ? -ENOMEM : 0;
}

/* Encrypts and indexes the row's encrypted fields into x->ct and x->idx. */
static int seal(struct pconn *c, struct pxi *x, const char *id)
{
	const struct pxe_copy *cp = x->st->enc->copy;
	struct buf plain = BUF_SECRET;
	struct kc_key k;
	bool have = false;
	int err = 0;

	for (unsigned i = 0; !err && i < cp->nin; i++) {
		wipe(&x->ct[i]);
		wipe(&x->idx[i]);
		if (!cp->enc[i] || is_null(x, i))
			continue;
		wipe(&plain);
		err = field_value(x, i, &plain);
		if (!err)
			err = row_key(c, x, id, &k, &have);
		if (!err)
			err = seal_field(c, x, cp->enc[i], &k, &plain, &x->ct[i]);
		if (!err && cp->enc[i]->pc->bidx_column)
			err = pxe_blind_index(c, cp->enc[i], plain.p ? plain.p : "", plain.len, &x->idx[i]);
	}
	OPENSSL_cleanse(&k, sizeof(k));
	wipe(&plain);
	buf_free(&plain);
	return err;
}

/* Asks for the keys the row needs that are not at hand: 0 when all are,
 * -EINPROGRESS while some are fetched, or a key's refusal (which fails
 * the COPY here rather than be asked again in the loop). */
static int keys_at_hand(struct pconn *c, const struct pxi *x, const char *id)
{
	const struct pxe_copy *cp = x->st->enc->copy;
	struct kc_key k;
	uint8_t key[32];
	int err = 0;
	bool any = false;

	for (unsigned i = 0; i < cp->nin; i++) {
		if (!cp->enc[i] || is_null(x, i))
			continue;
		any = true;
		if (cp->enc[i]->pc->bidx_column)
			kcl_note(&err, kcl_bidx_key_nowait(c->px->keys, cp->enc[i]->table,
			                                   cp->enc[i]->pc->name, key));
	}
	if (any && id)
		kcl_note(&err, kcl_subject_nowait(c->px->keys, x->st->enc->subject, id, &k));
	if (any && (!id || x->st->enc->own_keys))
		kcl_note(&err, kcl_fresh_reserve(c->px->keys, 1));
	OPENSSL_cleanse(&k, sizeof(k));
	OPENSSL_cleanse(key, sizeof(key));
	return err;
}

/* The subject's id from its field (NULL: none), into id, as PostgreSQL
 * stores it; -ENOTSUP when Custos cannot read it so (a binary format it
 * does not read, a text that is no value of the column's type). */
static int subject_id(struct pxi *x, struct buf *id)
{
	const struct pxe_copy *cp = x->st->enc->copy;
	int s = cp->subject;
	char room[IDT_ROOM];
	const char *text;

	if (s < 0 || is_null(x, (unsigned)s))
		return 0;
	struct pgp_value v = { (const uint8_t *)x->f[s].p, (int32_t)x->f[s].len };
	int len = x->binary ? idt_binary(cp->subject_type, &v, room, &text) : 0;
	if (len < 0)
		return -ENOTSUP;
	struct buf raw = BUF_SECRET;
	int err = x->binary ? 0 : field_value(x, (unsigned)s, &raw);
	if (!x->binary && !err) /* as PostgreSQL stores it (idtext.h) */
		len = idt_text(cp->subject_type, raw.p ? raw.p : "", raw.len, room, &text);
	if (!err && len < 0)
		err = -ENOTSUP;
	if (!err)
		buf_add(id, text, (size_t)len);
	buf_addc(id, 0);
	buf_free(&raw);
	return err ? err : id->failed ? -ENOMEM : 0;
}

static const char wait_keys[] = "";

/* The row in x->f encrypted and indexed, and its subject recorded: NULL,
 * why it fails the COPY, or wait_keys (nothing done). */
static const char *encrypt_row(struct pconn *c, struct pxi *x)
{
	struct buf id = BUF_SECRET;
	int err = subject_id(x, &id);

	if (!err && (err = keys_at_hand(c, x, id.p)) == -EINPROGRESS) {
		wipe(&id);
		buf_free(&id);
		return wait_keys;
	}
	if (!err)
		err = seal(c, x, id.p);
	if (!err && id.p)
		pq_res_subject(c, x->st->enc->subject, id.p);
	wipe(&id);
	buf_free(&id);
	if (err == -EILSEQ)
		return "a COPY value holds a NUL byte, or is not valid in the client's encoding: nothing was "
		       "written";
	if (err == -ENOTSUP)
		return "the subject's id is not a value of its column's type Custos can read as PostgreSQL "
		       "stores it: nothing was written";
	return err ? pxe_strerror(err) : NULL;
}

/* The row as PostgreSQL gets it (eol: its end of line's bytes), into
 * x->out: the client's fields, the encrypted ones as ciphertext, and the
 * blind indexes. */
static void put_text(struct pxi *x, const char *eol, size_t neol)
{
	const struct pxe_copy *cp = x->st->enc->copy;

	for (unsigned j = 0; j < cp->nout; j++) {
		int src = cp->idx_of[j];
		if (j)
			buf_addc(&x->out, x->fmt->delim);
		if (src >= 0 && is_null(x, (unsigned)src))
			ct_put_null(x->fmt, &x->out);
		else if (src >= 0)
			ct_put(x->fmt, &x->out, x->idx[src].p, x->idx[src].len);
		else if (cp->enc[j] && !is_null(x, j))
			buf_add(&x->out, x->ct[j].p, x->ct[j].len);
		else
			buf_add(&x->out, x->f[j].p, x->f[j].len);
	}
	buf_add(&x->out, eol, neol);
}

/* put_text in the binary format. */
static void put_binary(struct pxi *x)
{
	const struct pxe_copy *cp = x->st->enc->copy;

	pgp_add16(&x->out, (uint16_t)cp->nout);
	for (unsigned j = 0; j < cp->nout; j++) {
		int src = cp->idx_of[j];
		const struct buf *b = src >= 0 ? &x->idx[src] : cp->enc[j] ? &x->ct[j] : NULL;
		bool null = is_null(x, src >= 0 ? (unsigned)src : j);
		if (null)
			pgp_add_value(&x->out, NULL, -1);
		else if (b)
			pgp_add_value(&x->out, b->p, (int32_t)b->len);
		else
			pgp_add_value(&x->out, x->f[j].p, (int32_t)x->f[j].len);
	}
}

/* One row of the text format or CSV as PostgreSQL gets it, into x->out:
 * NULL, why it fails the COPY, or wait_keys (nothing done). */
static const char *copy_row(struct pconn *c, struct pxi *x, const char *row, size_t len, const char *eol,
                            size_t neol)
{
	const struct pxe_copy *cp = x->st->enc->copy;

	if (!x->header_done) { /* HEADER: the column names, as they are */
		x->header_done = true;
		buf_add(&x->out, row, len + neol);
		return NULL;
	}
	bool end = len == 2 && row[0] == '\\' && row[1] == '.'; /* \. alone */
	if (end && x->fmt->csv)
		return "a CSV row of \\. alone ends the data in some PostgreSQL versions and is a value in "
		       "others (quote it): nothing was written";
	if (end) {
		x->ended = true;
		buf_add(&x->out, row, len + neol);
		return NULL;
	}
	if (!x->fmt->csv && ct_text_stray(row, len)) /* \. elsewhere in it too */
		return "a COPY row holds \\. (the end of the data) or ends in a backslash that escapes "
		       "nothing: nothing was written";
	if (ct_split(x->fmt, row, len, x->f, cp->nin) != (int)cp->nin)
		return "a COPY row has more or fewer fields than the COPY has columns: nothing was written";
	const char *why = encrypt_row(c, x);
	if (!why)
		put_text(x, eol, neol);
	return why ? why : x->out.failed ? "out of memory" : NULL;
}

static int next_line(struct pxi *x, size_t at, struct ct_line *l)
{
	const char *p = x->pending.p + at;
	size_t n = x->pending.len - at;

	return ct_next_line(x->fmt, p, n, &x->scanned, &x->quoted, l);
}

/* The rows of the text format or CSV complete in x->pending from *at on
 * (all of it when last), into x->out: NULL, why the COPY fails, or
 * wait_keys (*at: the row that waits). */
static const char *take_text(struct pconn *c, struct pxi *x, size_t *at, bool last)
{
	struct ct_line l;
	const char *why = NULL;
	int r;

	while (!why && !x->ended && (r = next_line(x, *at, &l)) != 0) {
		if (r < 0)
			return "a carriage return in COPY data ends no row (escape it as \\r): nothing was "
			       "written";
		why = copy_row(c, x, x->pending.p + *at, l.len, x->pending.p + *at + l.len, l.eol);
		if (why != wait_keys)
			*at += l.len + l.eol;
	}
	if (why || !last || x->ended || *at == x->pending.len)
		return why;
	/* a last row without its newline */
	bool cr = x->fmt->csv ? !x->quoted && x->pending.p[x->pending.len - 1] == '\r'
	                      : ct_ends_with_cr(x->pending.p + *at, x->pending.len - *at);
	if (cr)
		return "a carriage return in COPY data ends no row (escape it as \\r): nothing was written";
	if (x->fmt->csv && x->quoted)
		return "the COPY data ends inside a quoted CSV field: nothing was written";
	return copy_row(c, x, x->pending.p + *at, x->pending.len - *at, "", 0);
}

/* take_text for the binary format: its header, rows and trailer. */
static const char *take_binary(struct pconn *c, struct pxi *x, size_t *at, bool last)
{
	const char *why = NULL;

	while (!why && !x->ended) {
		const uint8_t *p = (const uint8_t *)x->pending.p + *at;
		size_t n = x->pending.len - *at, len = 0;
		int r = x->header_done ? ct_binary_row(p, n, x->f, x->st->enc->copy->nin, &len)
		                       : ct_binary_header(p, n, &len);
		if (r == 0)
			break;
		if (r < 0)
			return x->header_done
			           ? "a binary COPY row has more or fewer fields than the COPY has "
			             "columns: nothing was written"
			           : "the COPY data does not begin with the binary format's header "
			             "(or sets a flag Custos does not know): nothing was written";
		if (!x->header_done || r == 2) { /* the header or the trailer, as they are */
			x->ended = x->header_done;
			x->header_done = true;
			buf_add(&x->out, p, len);
		} else if (!(why = encrypt_row(c, x))) {
			put_binary(x);
		}
		if (why != wait_keys)
			*at += len;
	}
	if (!why && last && !x->ended && *at < x->pending.len)
		why = "the binary COPY data ends inside a row: nothing was written";
	return why;
}

/* The rows complete in x->pending (all of it when last), to PostgreSQL. */
static int flush_rows(struct pconn *c, struct pxi *x, bool last)
{
	size_t at = 0;
	const char *why = x->binary ? take_binary(c, x, &at, last) : take_text(c, x, &at, last);

	if (!why && x->out.failed)
		why = "out of memory";
	x->waiting = why == wait_keys;
	if (why && !x->waiting) {
		wipe(&x->out);
		return fail(c, x, why);
	}
	if (last && !x->waiting)
		at = x->pending.len;
	OPENSSL_cleanse(x->pending.p, at);
	memmove(x->pending.p, x->pending.p + at, x->pending.len - at);
	x->pending.len -= at;
	if (!x->waiting && x->pending.len > c->px->env->cfg->proxy_max_message)
		return fail(c, x, "a COPY row is longer than proxy_max_message: nothing was written");
	if (!x->out.len)
		return 0;
	struct buf msg = BUF_SECRET;
	pgp_message(&msg, 'd', x->out.p, x->out.len);
	int err = msg.failed || pc_to_server(c, msg.p, msg.len) ? -ENOMEM : 0;
	OPENSSL_cleanse(msg.p, msg.len); /* ciphertext, but the copy need not linger */
	buf_free(&msg);
	wipe(&x->out);
	return err;
}

int pxi_data(struct pconn *c, const struct pgp_msg *m)
{
	struct pxi *x = c->cin;

	if (x->failed || x->ended)
		return 1;
	buf_add(&x->pending, m->body, m->len);
	if (x->pending.failed)
		return -ENOMEM;
	return flush_rows(c, x, false) ?: 1;
}

bool pxi_waiting(const struct pconn *c)
{
	return c->cin && c->cin->waiting;
}

int pxi_resume(struct pconn *c)
{
	if (c->cin->failed) {
		c->cin->waiting = false;
		return 0;
	}
	return flush_rows(c, c->cin, false);
}

int pxi_end(struct pconn *c, const struct pgp_msg *m)
{
	struct pxi *x = c->cin;
	int err = m->type == 'c' && !x->failed ? flush_rows(c, x, true) : 0;
	bool drop = x->failed;

	if (!err && x->waiting)
		return 3; /* the CopyDone, after the rows that wait */

	pxi_free(c);
	return err ? err : drop ? 1 : 0;
}

/* PostgreSQL ended the COPY (an error): what the client still sends goes nowhere. */
void pxi_abandon(struct pconn *c)
{
	if (c->cin) {
		c->cin->failed = true;
		c->cin->waiting = false; /* no row goes anywhere now */
	}
}
