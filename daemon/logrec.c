/* logrec.c - see logrec.h */
/* The low-level SHA256_* calls are deprecated in OpenSSL 3; see below. */
#define OPENSSL_API_COMPAT 10101
#include "logrec.h"

#include <errno.h>
#include <openssl/sha.h>
#include <openssl/crypto.h>
#include <stdlib.h>

#include "jsonw.h"
#include "secmem.h"

#define HEAD "{\"seq\":"
#define HEAD_LEN (sizeof(HEAD) - 1)
#define TS_KEY ",\"ts\":\""
#define TYPE_KEY "\",\"type\":\""
#define PREV_KEY ",\"prev\":\""
#define MAC_KEY "\"mac\":\""
#define MIN_LINE                                                                                             \
	(HEAD_LEN + 1 + sizeof(TS_KEY) - 1 + TS_LEN + sizeof(TYPE_KEY) - 1 + 2 + LR_PREV_LEN + LR_TAIL_LEN)

static const char *scan_seq(const char **p, const char *end, uint64_t *ret)
{
	const char *s = *p;
	uint64_t v = 0;

	if (s >= end || *s < '1' || *s > '9')
		return "sequence number missing or malformed";
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return "sequence number out of range";
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*ret = v;
	return NULL;
}

static bool expect(const char **p, const char *end, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(end - *p) < n || memcmp(*p, lit, n))
		return false;
	*p += n;
	return true;
}

const char *lr_scan(const char *line, size_t len, struct lr_frame *ret)
{
	const char *p = line, *end, *err;
	struct lr_frame f;

	if (len < MIN_LINE || len > LR_MAX_LINE)
		return len > LR_MAX_LINE ? "line too long" : "line too short to be a record";
	end = line + len - LR_TAIL_LEN - LR_PREV_LEN; /* where the body ends */
	if (!expect(&p, end, HEAD))
		return "line does not start a record";
	if ((err = scan_seq(&p, end, &f.seq)))
		return err;
	if (!expect(&p, end, TS_KEY) || (size_t)(end - p) < TS_LEN)
		return "time stamp missing";
	f.ts = p;
	p += TS_LEN;
	if (!expect(&p, end, TYPE_KEY))
		return "record type missing";
	f.type = p;
	while (p < end && ((*p >= 'a' && *p <= 'z') || *p == '_'))
		p++;
	f.typelen = (size_t)(p - f.type);
	if (f.typelen == 0 || f.typelen > LR_MAX_TYPE || !expect(&p, end, "\""))
		return "record type malformed";
	if (p < end && *p != ',')
		return "record body malformed";
	f.body = p;
	f.bodylen = (size_t)(end - p);
	p = end;
	if (!expect(&p, line + len, PREV_KEY) || !hex_decode(p, 2 * LOG_HASH_LEN, f.prev))
		return "prev hash missing or malformed";
	p += 2 * LOG_HASH_LEN;
	if (!expect(&p, line + len, "\",") || !expect(&p, line + len, MAC_KEY) ||
	    !hex_decode(p, 2 * LOG_HASH_LEN, f.mac))
		return "MAC missing or malformed";
	p += 2 * LOG_HASH_LEN;
	if (!expect(&p, line + len, "\"}"))
		return "record does not end its line";
	*ret = f;
	return NULL;
}

/* The hot paths of append and verify hash every line once (SHA-256 of the
 * prefix, continued over the tail) and MAC a 32-byte digest. OpenSSL's
 * low-level SHA256_* calls do this with a struct copy where EVP would
 * allocate a context copy and take the provider's locks; measured, they
 * nearly double verification speed. HMAC is RFC 2104 on top, with the
 * keyed inner and outer states computed once per epoch (it is checked
 * against OpenSSL's HMAC() in tests/unit/test_logrec.c). */
struct lr_mac {
	SHA256_CTX inner, outer;
};

struct lr_mac *lr_mac_new(const uint8_t key[LOG_KEY_LEN])
{
	struct lr_mac *m = secmem_alloc(sizeof(*m));
	uint8_t pad[2][SHA256_CBLOCK];

	if (!m)
		return NULL;
	memset(pad, 0, sizeof(pad));
	memcpy(pad[0], key, LOG_KEY_LEN);
	memcpy(pad[1], key, LOG_KEY_LEN);
	for (size_t i = 0; i < SHA256_CBLOCK; i++) {
		pad[0][i] ^= 0x36;
		pad[1][i] ^= 0x5c;
	}
	SHA256_Init(&m->inner);
	SHA256_Update(&m->inner, pad[0], SHA256_CBLOCK);
	SHA256_Init(&m->outer);
	SHA256_Update(&m->outer, pad[1], SHA256_CBLOCK);
	OPENSSL_cleanse(pad, sizeof(pad));
	return m;
}

void lr_mac_free(struct lr_mac *m)
{
	secmem_free(m, sizeof(*m));
}

int lr_mac_compute(struct lr_mac *m, const uint8_t d[LOG_HASH_LEN], uint8_t ret[LOG_HASH_LEN])
{
	SHA256_CTX c = m->inner;
	uint8_t in[LOG_HASH_LEN];

	SHA256_Update(&c, d, LOG_HASH_LEN);
	SHA256_Final(in, &c);
	c = m->outer;
	SHA256_Update(&c, in, LOG_HASH_LEN);
	SHA256_Final(ret, &c);
	OPENSSL_cleanse(&c, sizeof(c));
	return 0;
}

/* SHA-256 of the prefix into d; *line_ctx is left ready for the tail. */
static void digest_prefix(const char *line, size_t plen, SHA256_CTX *line_ctx, uint8_t d[LOG_HASH_LEN])
{
	SHA256_CTX prefix;

	SHA256_Init(line_ctx);
	SHA256_Update(line_ctx, line, plen);
	prefix = *line_ctx;
	SHA256_Final(d, &prefix);
}

int lr_digest(const char *line, size_t len, uint8_t ret_d[LOG_HASH_LEN], uint8_t ret_h[LOG_HASH_LEN])
{
	SHA256_CTX c;

	if (len < LR_TAIL_LEN)
		return -EINVAL;
	digest_prefix(line, len - LR_TAIL_LEN, &c, ret_d);
	SHA256_Update(&c, line + len - LR_TAIL_LEN, LR_TAIL_LEN);
	SHA256_Final(ret_h, &c);
	return 0;
}

void lr_begin(struct buf *b, uint64_t seq, int64_t ts_us, const char *type)
{
	char ts[TS_LEN + 1];

	ts_format(ts_us, ts);
	buf_add(b, HEAD, HEAD_LEN);
	jw_u64(b, seq);
	buf_add(b, TS_KEY, sizeof(TS_KEY) - 1);
	buf_add(b, ts, TS_LEN);
	buf_add(b, TYPE_KEY, sizeof(TYPE_KEY) - 1);
	buf_adds(b, type);
	buf_addc(b, '"');
}

int lr_finish(struct buf *b, size_t start, const uint8_t prev[LOG_HASH_LEN], struct lr_mac *m,
              uint8_t ret_hash[LOG_HASH_LEN])
{
	uint8_t d[LOG_HASH_LEN], mac[LOG_HASH_LEN], h[LOG_HASH_LEN];

	if (!buf_reserve(b, LR_PREV_LEN + LR_TAIL_LEN + 1))
		return -ENOMEM;
	buf_add(b, PREV_KEY, sizeof(PREV_KEY) - 1);
	hex_encode(prev, LOG_HASH_LEN, b->p + b->len); /* reserved above; NUL overwritten next */
	b->len += 2 * LOG_HASH_LEN;
	buf_add(b, "\",", 2);
	buf_add(b, MAC_KEY, sizeof(MAC_KEY) - 1);
	b->len += 2 * LOG_HASH_LEN + 2; /* filled in below */
	char *line = b->p + start, *tail = b->p + b->len - LR_TAIL_LEN;
	SHA256_CTX c;
	digest_prefix(line, b->len - start - LR_TAIL_LEN, &c, d);
	if (lr_mac_compute(m, d, mac))
		return -EIO;
	hex_encode(mac, LOG_HASH_LEN, tail + sizeof(MAC_KEY) - 1);
	memcpy(b->p + b->len - 2, "\"}", 2);
	SHA256_Update(&c, tail, LR_TAIL_LEN);
	SHA256_Final(h, &c);
	buf_addc(b, '\n');
	memcpy(ret_hash, h, LOG_HASH_LEN);
	return 0;
}

void lr_checkpoint_body(struct buf *b, uint64_t epoch, const uint8_t sig[LOG_SIG_LEN])
{
	char hex[2 * LOG_SIG_LEN + 1];

	hex_encode(sig, LOG_SIG_LEN, hex);
	buf_adds(b, ",\"epoch\":");
	jw_u64(b, epoch);
	buf_adds(b, ",\"sig\":\"");
	buf_add(b, hex, 2 * LOG_SIG_LEN);
	buf_addc(b, '"');
}

bool lr_checkpoint_parse(const struct lr_frame *f, uint64_t *ret_epoch, uint8_t ret_sig[LOG_SIG_LEN])
{
	const char *p = f->body, *end = f->body + f->bodylen;
	uint64_t epoch;

	if (!expect(&p, end, ",\"epoch\":") || scan_seq(&p, end, &epoch) || !expect(&p, end, ",\"sig\":\"") ||
	    end - p != 2 * LOG_SIG_LEN + 1 || !hex_decode(p, 2 * LOG_SIG_LEN, ret_sig) || end[-1] != '"')
		return false;
	*ret_epoch = epoch;
	return true;
}

void lr_init_body(struct buf *b, const uint8_t log_id[LOG_ID_LEN])
{
	char hex[2 * LOG_ID_LEN + 1];

	hex_encode(log_id, LOG_ID_LEN, hex);
	buf_adds(b, ",\"log\":\"");
	buf_adds(b, hex);
	buf_adds(b, "\",\"version\":1");
}

bool lr_init_parse(const struct lr_frame *f, uint8_t ret_log_id[LOG_ID_LEN])
{
	const char *p = f->body, *end = f->body + f->bodylen;

	if (!expect(&p, end, ",\"log\":\"") || end - p < 2 * LOG_ID_LEN ||
	    !hex_decode(p, 2 * LOG_ID_LEN, ret_log_id))
		return false;
	p += 2 * LOG_ID_LEN;
	return expect(&p, end, "\",\"version\":1") && p == end;
}
