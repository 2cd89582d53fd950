/* logbody.c - see logbody.h */
#include "logbody.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "fieldcrypt.h"
#include "jsonw.h"
#include "logrec.h"
#include "secmem.h"

static void body_actor(struct buf *b, const struct alog_actor *a)
{
	const struct {
		const char *key, *val;
	} f[] = {
		{ "user", a->user },       { "app", a->app }, { "addr", a->addr },
		{ "session", a->session }, { "tls", a->tls },
	};
	bool first = true;

	buf_adds(b, ",\"actor\":{");
	for (size_t i = 0; i < ARRAY_SIZE(f); i++) {
		if (!f[i].val)
			continue;
		if (!first)
			buf_addc(b, ',');
		first = false;
		jw_key(b, f[i].key);
		jw_str(b, f[i].val);
	}
	buf_addc(b, '}');
}

static void body_object(struct buf *b, const struct alog_rec *r)
{
	buf_adds(b, ",\"object\":{\"table\":");
	jw_str(b, r->table);
	buf_adds(b, ",\"columns\":[");
	for (size_t i = 0; i < r->ncolumns; i++) {
		if (i)
			buf_addc(b, ',');
		jw_str(b, r->columns[i]);
	}
	buf_add(b, "]}", 2);
}

/* One subject: its ref, and its identifier encrypted under its own key. */
static int body_subject(struct keyprov *kp, struct buf *b, const struct alog_subject *s, struct fc_key *k)
{
	uint8_t ref[SUBJECT_REF_LEN];
	char hex[2 * SUBJECT_REF_LEN + 1];
	int r;

	r = kp->subject_key(kp, s->type, s->id, k);
	if (r == -ENOKEY) { /* erased: the record names nobody */
		buf_adds(b, "{\"erased\":true}");
		return 0;
	}
	if (r || (r = kp->subject_ref(kp, s->type, s->id, ref)))
		return r;
	hex_encode(ref, sizeof(ref), hex);
	buf_adds(b, "{\"ref\":\"");
	buf_adds(b, hex);
	buf_adds(b, "\",\"id\":\"");
	size_t tl = strlen(s->type), il = strlen(s->id);
	char *plain = malloc(tl + il + 2);
	if (!plain)
		return -ENOMEM;
	memcpy(plain, s->type, tl);
	plain[tl] = ':';
	memcpy(plain + tl + 1, s->id, il + 1);
	r = fc_encrypt(k, ALOG_SUBJECT_CTX, strlen(ALOG_SUBJECT_CTX), plain, tl + il + 1, b);
	OPENSSL_cleanse(plain, tl + il + 1);
	free(plain);
	buf_add(b, "\"}", 2);
	return r;
}

static int body_subjects(struct keyprov *kp, struct buf *b, const struct alog_rec *r)
{
	struct fc_key *k;
	int err = 0;

	if (!kp)
		return -ENOKEY;
	if (!(k = secmem_alloc(sizeof(*k))))
		return -ENOMEM;
	buf_adds(b, ",\"subjects\":[");
	for (size_t i = 0; !err && i < r->nsubjects; i++) {
		if (i)
			buf_addc(b, ',');
		err = body_subject(kp, b, &r->subjects[i], k);
	}
	buf_addc(b, ']');
	secmem_free(k, sizeof(*k));
	return err;
}

static bool valid_type(const char *t)
{
	size_t n = t ? strlen(t) : 0;

	if (n == 0 || n > LR_MAX_TYPE)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') || t[i] == '_'))
			return false;
	return true;
}

/* A record stays one line of JSON: detail must be an object, on one line. */
static bool valid_detail(const char *detail)
{
	if (strpbrk(detail, "\n\r"))
		return false;
	json_t *j = json_loads(detail, JSON_REJECT_DUPLICATES, NULL);
	bool ok = json_is_object(j);
	json_decref(j);
	return ok;
}

int logbody_render(const struct alog_rec *r, struct keyprov *kp, struct buf *b)
{
	int err = 0;

	static const char *const reserved[] = { "checkpoint", "log_init", "recovery" };

	if (!valid_type(r->type))
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(reserved); i++)
		if (!strcmp(r->type, reserved[i]))
			return -EINVAL; /* only the log itself writes these */
	if (r->detail && !valid_detail(r->detail))
		return -EINVAL;
	if (r->actor)
		body_actor(b, r->actor);
	if (r->table)
		body_object(b, r);
	if (r->nsubjects)
		err = body_subjects(kp, b, r);
	if (r->fingerprint) {
		buf_adds(b, ",\"fp\":");
		jw_str(b, r->fingerprint);
	}
	if (r->statement) {
		buf_adds(b, ",\"stmt\":");
		jw_str(b, r->statement);
	}
	if (r->rows >= 0) {
		buf_adds(b, ",\"rows\":");
		jw_i64(b, r->rows);
	}
	if (r->detail) {
		buf_adds(b, ",\"detail\":");
		buf_adds(b, r->detail);
	}
	if (!err && b->len > LR_MAX_BODY)
		err = -E2BIG; /* readers refuse longer lines: never acknowledge one */
	return err ? err : b->failed ? -ENOMEM : 0;
}
