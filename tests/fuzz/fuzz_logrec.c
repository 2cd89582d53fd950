/* fuzz_logrec - libFuzzer target for the record framing in logrec.c.
 *
 * The input is one line (without its newline). lr_scan() must never read
 * outside it; when it frames the line, the frame must lie inside the line,
 * the body parsers (checkpoint, log_init) run on it, and the record is
 * rebuilt with the writer's own functions (lr_begin, lr_*_body, lr_finish),
 * which must give a line that frames again to the same fields and whose
 * hash lr_digest() agrees with. lr_digest() and lr_mac_compute() are also
 * checked against OpenSSL's SHA256() and HMAC() on every input. Any
 * disagreement aborts. */
#include "../../daemon/logrec.c"

#include <openssl/hmac.h>

#include "fuzz_common.h"

static const uint8_t mac_key[LOG_KEY_LEN] = { 0x6b, 0x30, 0x2d, 0x66, 0x75, 0x7a, 0x7a };

static struct lr_mac *fixed_mac(void)
{
	static struct lr_mac *m;

	if (!m && !(m = lr_mac_new(mac_key)))
		abort();
	return m;
}

static bool inside(const char *line, size_t len, const char *p, size_t n)
{
	return p >= line && (size_t)(p - line) <= len && n <= len - (size_t)(p - line);
}

/* Rebuilds the framed record with the writer's functions and checks that
 * it frames to the same fields. */
static void rebuild(const char *line, size_t len, const struct lr_frame *f)
{
	struct buf b = BUF_INIT;
	struct lr_frame g;
	char type[LR_MAX_TYPE + 1];
	uint8_t h[LOG_HASH_LEN], d[LOG_HASH_LEN], h2[LOG_HASH_LEN], mac[LOG_HASH_LEN];

	memcpy(type, f->type, f->typelen);
	type[f->typelen] = '\0';
	lr_begin(&b, f->seq, 1700000000123456, type);
	buf_add(&b, f->body, f->bodylen);
	CHECK(lr_finish(&b, 0, f->prev, fixed_mac(), h) == 0 && !b.failed);
	CHECK(b.len > 0 && b.p[b.len - 1] == '\n');
	CHECK(lr_scan(b.p, b.len - 1, &g) == NULL);
	CHECK(g.seq == f->seq && g.typelen == f->typelen && !memcmp(g.type, f->type, f->typelen));
	CHECK(g.bodylen == f->bodylen && !memcmp(g.body, f->body, f->bodylen));
	CHECK(!memcmp(g.prev, f->prev, LOG_HASH_LEN));
	CHECK(lr_digest(b.p, b.len - 1, d, h2) == 0 && !memcmp(h, h2, LOG_HASH_LEN));
	CHECK(lr_mac_compute(fixed_mac(), d, mac) == 0 && !memcmp(mac, g.mac, LOG_HASH_LEN));
	/* The framing has one spelling: the rebuilt line equals the input
	 * except for the time stamp and the MAC value. */
	size_t ts_off = (size_t)(f->ts - line), mac_off = len - LR_TAIL_LEN + sizeof(MAC_KEY) - 1;
	CHECK(b.len - 1 == len);
	CHECK(!memcmp(b.p, line, ts_off));
	CHECK(!memcmp(b.p + ts_off + TS_LEN, line + ts_off + TS_LEN, mac_off - ts_off - TS_LEN));
	CHECK(!memcmp(b.p + len - 2, line + len - 2, 2));
	buf_free(&b);
}

/* lr_digest and lr_mac_compute against OpenSSL's one-shot functions. */
static void check_hashes(const char *line, size_t len)
{
	uint8_t d[LOG_HASH_LEN], h[LOG_HASH_LEN], want_d[LOG_HASH_LEN], want_h[LOG_HASH_LEN];
	uint8_t mac[LOG_HASH_LEN], want_mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;

	if (len < LR_TAIL_LEN) {
		CHECK(lr_digest(line, len, d, h) != 0);
		return;
	}
	CHECK(lr_digest(line, len, d, h) == 0);
	CHECK(EVP_Digest(line, len - LR_TAIL_LEN, want_d, NULL, EVP_sha256(), NULL) == 1);
	CHECK(EVP_Digest(line, len, want_h, NULL, EVP_sha256(), NULL) == 1);
	CHECK(!memcmp(d, want_d, LOG_HASH_LEN) && !memcmp(h, want_h, LOG_HASH_LEN));
	CHECK(lr_mac_compute(fixed_mac(), d, mac) == 0);
	CHECK(HMAC(EVP_sha256(), mac_key, LOG_KEY_LEN, d, LOG_HASH_LEN, want_mac, &maclen) &&
	      maclen == LOG_HASH_LEN);
	CHECK(!memcmp(mac, want_mac, LOG_HASH_LEN));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct lr_frame f;
	uint8_t id[LOG_ID_LEN], sig[LOG_SIG_LEN];
	uint64_t epoch;

	check_hashes(line, size);
	if (lr_scan(line, size, &f))
		return 0;
	CHECK(f.seq > 0);
	CHECK(inside(line, size, f.ts, TS_LEN));
	CHECK(inside(line, size, f.type, f.typelen) && f.typelen > 0 && f.typelen <= LR_MAX_TYPE);
	CHECK(inside(line, size, f.body, f.bodylen));
	CHECK(f.body + f.bodylen == line + size - LR_TAIL_LEN - LR_PREV_LEN);
	CHECK(f.bodylen == 0 || f.body[0] == ',');

	if (lr_checkpoint_parse(&f, &epoch, sig)) {
		/* The checkpoint body has one spelling: rewriting it gives the same bytes. */
		struct buf b = BUF_INIT;
		lr_checkpoint_body(&b, epoch, sig);
		CHECK(!b.failed && b.len == f.bodylen && !memcmp(b.p, f.body, b.len));
		buf_free(&b);
	}
	if (lr_init_parse(&f, id)) {
		struct buf b = BUF_INIT;
		lr_init_body(&b, id);
		CHECK(!b.failed && b.len == f.bodylen && !memcmp(b.p, f.body, b.len));
		buf_free(&b);
	}
	(void)lr_is(&f, "checkpoint");
	rebuild(line, size, &f);
	return 0;
}
