/* pgproto.c - see pgproto.h */
#include "pgproto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* --- a bounds-checked reader ------------------------------------------------- */

struct rd {
	const uint8_t *p;
	size_t len, at;
	bool bad;
};

static struct rd reader(const struct pgp_msg *m)
{
	return (struct rd){ m->body, m->len, 0, false };
}

static const uint8_t *take(struct rd *r, size_t n)
{
	if (r->bad || r->len - r->at < n) {
		r->bad = true;
		return NULL;
	}
	r->at += n;
	return r->p + r->at - n;
}

static uint32_t u32(struct rd *r)
{
	const uint8_t *b = take(r, 4);
	return b ? (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3] : 0;
}

static uint16_t u16(struct rd *r)
{
	const uint8_t *b = take(r, 2);
	return b ? (uint16_t)(b[0] << 8 | b[1]) : 0;
}

static uint8_t u8(struct rd *r)
{
	const uint8_t *b = take(r, 1);
	return b ? *b : 0;
}

/* A NUL-terminated string inside the message. */
static const char *str(struct rd *r)
{
	if (r->bad)
		return NULL;
	const uint8_t *nul = memchr(r->p + r->at, 0, r->len - r->at);
	if (!nul) {
		r->bad = true;
		return NULL;
	}
	const char *s = (const char *)r->p + r->at;
	r->at = (size_t)(nul - r->p) + 1;
	return s;
}

/* A length-prefixed value: -1 is NULL. */
static struct pgp_value value(struct rd *r)
{
	int32_t n = (int32_t)u32(r);
	struct pgp_value v = { NULL, n };

	if (n < -1)
		r->bad = true;
	else if (n >= 0)
		v.p = take(r, (size_t)n);
	return v;
}

/* The reader consumed the message exactly. */
static int done(const struct rd *r)
{
	return !r->bad && r->at == r->len ? 0 : -EBADMSG;
}

/* --- framing ------------------------------------------------------------------ */

int pgp_header(const uint8_t hdr[5], uint32_t max, size_t *ret_size)
{
	uint32_t len = pgp_get32(hdr + 1);

	if (len < 4)
		return -EBADMSG;
	if (len > max)
		return -EMSGSIZE;
	*ret_size = (size_t)len + 1;
	return 1;
}

int pgp_frame(const uint8_t *buf, size_t n, uint32_t max, struct pgp_msg *ret)
{
	size_t size;

	if (n < 5)
		return 0;
	int r = pgp_header(buf, max, &size);
	if (r < 0 || n < size)
		return r < 0 ? r : 0;
	*ret = (struct pgp_msg){ (char)buf[0], buf + 5, size - 5, size };
	return 1;
}

int pgp_frame_startup(const uint8_t *buf, size_t n, size_t *ret_size)
{
	if (n < 4)
		return 0;
	uint32_t len = pgp_get32(buf);
	if (len < 8)
		return -EBADMSG;
	if (len > PGP_MAX_STARTUP)
		return -EMSGSIZE;
	if (n < len)
		return 0;
	*ret_size = len;
	return 1;
}

int pgp_parse_startup(const uint8_t *buf, size_t size, struct pgp_startup *ret)
{
	struct pgp_msg m = { 0, buf + 4, size < 4 ? 0 : size - 4, size };
	struct rd r = reader(&m);
	uint32_t code = u32(&r);

	memset(ret, 0, sizeof(*ret));
	if (size < 8 || size > PGP_MAX_STARTUP || pgp_get32(buf) != size)
		return -EBADMSG;
	if (code == PGP_SSL_REQUEST || code == PGP_GSSENC_REQUEST) {
		ret->kind = code == PGP_SSL_REQUEST ? PGP_SSL : PGP_GSSENC;
		return done(&r);
	}
	if (code == PGP_CANCEL_REQUEST) {
		ret->kind = PGP_CANCEL;
		ret->cancel_pid = u32(&r);
		ret->cancel_key = u32(&r);
		return done(&r);
	}
	ret->kind = PGP_STARTUP;
	ret->version = code;
	if (code >> 16 != 3)
		return -EPROTONOSUPPORT;
	for (;;) {
		const char *k = str(&r);
		if (!k || !*k)
			break;
		const char *v = str(&r);
		if (!v || ret->nparams == PGP_MAX_PARAMS)
			return -EBADMSG;
		ret->keys[ret->nparams] = k;
		ret->values[ret->nparams++] = v;
	}
	if (done(&r) || !pgp_startup_param(ret, "user"))
		return -EBADMSG;
	return 0;
}

const char *pgp_startup_param(const struct pgp_startup *s, const char *key)
{
	for (size_t i = 0; i < s->nparams; i++)
		if (!strcmp(s->keys[i], key))
			return s->values[i];
	return NULL;
}

/* --- frontend ----------------------------------------------------------------- */

int pgp_parse_query(const struct pgp_msg *m, const char **ret_sql)
{
	struct rd r = reader(m);

	*ret_sql = str(&r);
	return done(&r);
}

int pgp_parse_parse(const struct pgp_msg *m, struct pgp_parse *ret)
{
	struct rd r = reader(m);

	ret->name = str(&r);
	ret->query = str(&r);
	ret->nparams = u16(&r);
	ret->param_oids = take(&r, 4u * ret->nparams);
	return done(&r);
}

/* n format codes, each 0 (text) or 1 (binary). */
static const uint8_t *formats(struct rd *r, uint16_t n)
{
	const uint8_t *f = take(r, 2u * n);

	for (uint16_t i = 0; f && i < n; i++)
		if (f[2 * i] || f[2 * i + 1] > 1)
			r->bad = true;
	return f;
}

int pgp_parse_bind(const struct pgp_msg *m, struct pgp_bind *ret)
{
	struct rd r = reader(m);

	memset(ret, 0, sizeof(*ret));
	ret->portal = str(&r);
	ret->statement = str(&r);
	ret->nformats = u16(&r);
	ret->formats = formats(&r, ret->nformats);
	ret->nparams = u16(&r);
	if (r.bad || (ret->nformats > 1 && ret->nformats != ret->nparams) ||
	    (size_t)ret->nparams * 4 > r.len - r.at)
		return -EBADMSG; /* each parameter takes at least 4 bytes: no allocation for lies */
	if (ret->nparams && !(ret->params = calloc(ret->nparams, sizeof(*ret->params))))
		return -ENOMEM;
	for (uint16_t i = 0; i < ret->nparams; i++)
		ret->params[i] = value(&r);
	ret->nresult_formats = u16(&r);
	ret->result_formats = formats(&r, ret->nresult_formats);
	if (done(&r)) {
		free(ret->params);
		ret->params = NULL;
		return -EBADMSG;
	}
	return 0;
}

int pgp_bind_format(const struct pgp_bind *b, unsigned i)
{
	if (b->nformats == 0)
		return 0;
	unsigned k = b->nformats == 1 ? 0 : i;
	return b->formats[2 * k + 1];
}

int pgp_parse_target(const struct pgp_msg *m, struct pgp_target *ret)
{
	struct rd r = reader(m);

	ret->what = (char)u8(&r);
	ret->name = str(&r);
	return ret->what == 'S' || ret->what == 'P' ? done(&r) : -EBADMSG;
}

int pgp_parse_execute(const struct pgp_msg *m, struct pgp_execute *ret)
{
	struct rd r = reader(m);

	ret->portal = str(&r);
	ret->max_rows = u32(&r);
	return done(&r);
}

static int check_function_call(const struct pgp_msg *m)
{
	struct rd r = reader(m);

	u32(&r); /* the function's oid */
	uint16_t nf = u16(&r);
	formats(&r, nf);
	uint16_t np = u16(&r);
	if (nf > 1 && nf != np)
		return -EBADMSG;
	for (uint16_t i = 0; i < np && !r.bad; i++)
		value(&r);
	formats(&r, 1);
	return done(&r);
}

static int check_empty(const struct pgp_msg *m)
{
	return m->len == 0 ? 0 : -EBADMSG;
}

static int check_one_string(const struct pgp_msg *m)
{
	struct rd r = reader(m);
	str(&r);
	return done(&r);
}

int pgp_check_frontend(const struct pgp_msg *m)
{
	const char *sql;
	struct pgp_parse p;
	struct pgp_bind b;
	struct pgp_target t;
	struct pgp_execute e;
	int r;

	switch (m->type) {
	case 'Q': return pgp_parse_query(m, &sql);
	case 'P': return pgp_parse_parse(m, &p);
	case 'B':
		r = pgp_parse_bind(m, &b);
		free(b.params);
		return r;
	case 'D':
	case 'C': return pgp_parse_target(m, &t);
	case 'E': return pgp_parse_execute(m, &e);
	case 'S':
	case 'H':
	case 'X':
	case 'c': return check_empty(m);
	case 'f': return check_one_string(m);
	case 'd':
	case 'p': return 0; /* copy data; password and SASL messages (the server checks those) */
	case 'F': return check_function_call(m);
	default: return -EPROTO;
	}
}

/* --- backend ------------------------------------------------------------------- */

int pgp_parse_rowdesc(const struct pgp_msg *m, struct pgp_rowdesc *ret)
{
	struct rd r = reader(m);

	ret->fields = NULL;
	ret->n = u16(&r);
	/* each field takes at least 19 bytes: no allocation for lies */
	if (r.bad || ret->n > PGP_MAX_FIELDS || (size_t)ret->n * 19 > r.len - r.at)
		return -EBADMSG;
	if (ret->n && !(ret->fields = calloc(ret->n, sizeof(*ret->fields))))
		return -ENOMEM;
	for (uint16_t i = 0; i < ret->n && !r.bad; i++) {
		struct pgp_field *f = &ret->fields[i];
		f->name = str(&r);
		f->table_oid = u32(&r);
		f->attnum = (int16_t)u16(&r);
		f->type_oid = u32(&r);
		f->typlen = (int16_t)u16(&r);
		f->typmod = (int32_t)u32(&r);
		f->format = (int16_t)u16(&r);
		if (f->format != 0 && f->format != 1)
			r.bad = true;
	}
	if (done(&r)) {
		free(ret->fields);
		ret->fields = NULL;
		return -EBADMSG;
	}
	return 0;
}

int pgp_parse_datarow(const struct pgp_msg *m, struct pgp_value *vals, uint16_t max, uint16_t *ret_n)
{
	struct rd r = reader(m);
	uint16_t n = u16(&r);

	if (n > max || n > PGP_MAX_FIELDS)
		return -EBADMSG;
	for (uint16_t i = 0; i < n && !r.bad; i++)
		vals[i] = value(&r);
	*ret_n = n;
	return done(&r);
}

int pgp_parse_notice(const struct pgp_msg *m, struct pgp_notice *ret)
{
	struct rd r = reader(m);

	memset(ret, 0, sizeof(*ret));
	for (uint8_t code; (code = u8(&r)) && !r.bad;) {
		const char *v = str(&r);
		if (code == 'S' || code == 'V')
			ret->severity = v;
		else if (code == 'C')
			ret->code = v;
		else if (code == 'M')
			ret->message = v;
	}
	return done(&r);
}

int pgp_parse_keydata(const struct pgp_msg *m, uint32_t *ret_pid, uint32_t *ret_key)
{
	struct rd r = reader(m);

	*ret_pid = u32(&r);
	*ret_key = u32(&r);
	return done(&r);
}

static int check_auth(const struct pgp_msg *m)
{
	struct rd r = reader(m);
	uint32_t code = u32(&r);

	if (r.bad || code > 12)
		return -EBADMSG;
	if (code == 0 || code == 3 || code == 2 || code == 6 || code == 7 || code == 9)
		return done(&r); /* Ok, cleartext, Kerberos, SCM, GSS, SSPI */
	if (code == 5) {
		take(&r, 4); /* MD5: the salt */
		return done(&r);
	}
	return 0; /* SASL (10-12) and GSS continue: opaque */
}

static int check_backend_misc(const struct pgp_msg *m)
{
	struct rd r = reader(m);

	switch (m->type) {
	case 'S': str(&r), str(&r); break;
	case 'Z': {
		uint8_t s = u8(&r);
		if (s != 'I' && s != 'T' && s != 'E')
			return -EBADMSG;
		break;
	}
	case 'C': str(&r); break;
	case 'A': u32(&r), str(&r), str(&r); break;
	case 't': take(&r, 4u * u16(&r)); break;
	case 'G':
	case 'H':
	case 'W':
		if (u8(&r) > 1)
			return -EBADMSG;
		formats(&r, u16(&r));
		break;
	case 'V': value(&r); break;
	case 'v': {
		u32(&r);
		uint32_t n = u32(&r);
		for (uint32_t i = 0; i < n && !r.bad; i++)
			str(&r);
		break;
	}
	default: return -EPROTO;
	}
	return done(&r);
}

int pgp_check_backend(const struct pgp_msg *m)
{
	struct pgp_rowdesc rd;
	struct pgp_notice nt;
	struct pgp_value vals[PGP_MAX_FIELDS];
	uint16_t n;
	uint32_t a, b;
	int r;

	switch (m->type) {
	case 'R': return check_auth(m);
	case 'K': return pgp_parse_keydata(m, &a, &b);
	case 'T':
		r = pgp_parse_rowdesc(m, &rd);
		free(rd.fields);
		return r;
	case 'D': return pgp_parse_datarow(m, vals, PGP_MAX_FIELDS, &n);
	case 'E':
	case 'N': return pgp_parse_notice(m, &nt);
	case '1':
	case '2':
	case '3':
	case 'n':
	case 's':
	case 'I':
	case 'c': return check_empty(m);
	case 'd': return 0;
	default: return check_backend_misc(m);
	}
}

/* --- writing ---------------------------------------------------------------- */

void pgp_message(struct buf *out, char type, const void *body, size_t n)
{
	uint32_t len = (uint32_t)n + 4;
	uint8_t h[5] = { (uint8_t)type, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
		         (uint8_t)len };

	buf_add(out, h, sizeof(h));
	buf_add(out, body, n);
}

void pgp_error(struct buf *out, const char *severity, const char *sqlstate, const char *message)
{
	struct buf b = BUF_INIT;

	buf_addc(&b, 'S');
	buf_add(&b, severity, strlen(severity) + 1);
	buf_addc(&b, 'V');
	buf_add(&b, severity, strlen(severity) + 1);
	buf_addc(&b, 'C');
	buf_add(&b, sqlstate, strlen(sqlstate) + 1);
	buf_addc(&b, 'M');
	buf_add(&b, message, strlen(message) + 1);
	buf_addc(&b, 0);
	if (b.failed)
		out->failed = true;
	else
		pgp_message(out, 'E', b.p, b.len);
	buf_free(&b);
}
