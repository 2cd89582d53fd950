/* logkey.c - see logkey.h */
#include "logkey.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>

#define RATCHET_LABEL "custos-log-ratchet-v1"
#define SIG_LABEL "custos-checkpoint-v1"
#define KEY_HEADER "custos-log-key 1"
#define STATE_HEADER "custos-log-state 1"

void logkey_ratchet(const uint8_t k[LOG_KEY_LEN], uint8_t ret[LOG_KEY_LEN])
{
	uint8_t in[sizeof(RATCHET_LABEL) - 1 + LOG_KEY_LEN];

	memcpy(in, RATCHET_LABEL, sizeof(RATCHET_LABEL) - 1);
	memcpy(in + sizeof(RATCHET_LABEL) - 1, k, LOG_KEY_LEN);
	EVP_Digest(in, sizeof(in), ret, NULL, EVP_sha256(), NULL);
	OPENSSL_cleanse(in, sizeof(in));
}

/* One "name value" line: where the value goes and how long it is. */
struct kv_field {
	const char *name;
	uint8_t *hex;  /* hex value of len bytes, or */
	uint64_t *num; /* a decimal number */
	size_t len;
	bool seen;
};

/* Parses header then name/value lines into fields. Unknown names,
 * duplicates and malformed values are errors. Returns the 1-based line of
 * the first error, or 0. */
static size_t kv_parse(const char *text, size_t len, const char *header, struct kv_field *f, size_t nf)
{
	size_t line = 0;

	for (const char *p = text, *end = text + len; p < end; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const char *sp = memchr(p, ' ', n);
		const char *next = p + n + 1;
		if (line == 0) {
			if (n != strlen(header) || memcmp(p, header, n))
				return 1;
			p = next;
			continue;
		}
		if (n == 0 || *p == '#') {
			p = next;
			continue;
		}
		size_t i = 0;
		while (sp && i < nf &&
		       ((size_t)(sp - p) != strlen(f[i].name) || memcmp(p, f[i].name, (size_t)(sp - p))))
			i++;
		if (!sp || i == nf || f[i].seen)
			return line + 1;
		const char *v = sp + 1;
		size_t vlen = n - (size_t)(v - p);
		char num[21];
		if (f[i].hex && (vlen != 2 * f[i].len || !hex_decode(v, vlen, f[i].hex)))
			return line + 1;
		if (f[i].num) {
			if (vlen == 0 || vlen >= sizeof(num))
				return line + 1;
			memcpy(num, v, vlen);
			num[vlen] = '\0';
			if (!parse_u64(num, f[i].num))
				return line + 1;
		}
		f[i].seen = true;
		p = next;
	}
	return line == 0 ? 1 : 0;
}

int logkey_parse(const char *text, size_t len, struct logkeys *ret, char *err, size_t errlen)
{
	struct logkeys k = { 0 };
	struct kv_field f[] = {
		{ "log-id", k.log_id, NULL, LOG_ID_LEN, false },
		{ "public-key", k.pub, NULL, 32, false },
		{ "mac-seed", k.seed, NULL, LOG_KEY_LEN, false },
	};
	size_t line = kv_parse(text, len, KEY_HEADER, f, ARRAY_SIZE(f));

	if (!line && (!f[0].seen || !f[1].seen))
		line = 1;
	if (line) {
		snprintf(err, errlen, "line %zu: %s", line,
		         line == 1 ? "not a Custos log key file (want \"" KEY_HEADER "\", log-id, public-key)"
		                   : "unknown, repeated or malformed entry");
		OPENSSL_cleanse(&k, sizeof(k));
		return -EINVAL;
	}
	k.has_seed = f[2].seen;
	*ret = k;
	OPENSSL_cleanse(&k, sizeof(k));
	return 0;
}

static void add_hex_line(struct buf *out, const char *name, const uint8_t *v, size_t n)
{
	char hex[2 * 64 + 1];

	hex_encode(v, n, hex);
	buf_printf(out, "%s %s\n", name, hex);
	OPENSSL_cleanse(hex, sizeof(hex));
}

void logkey_format(const struct logkeys *k, bool with_seed, struct buf *out)
{
	buf_adds(out, KEY_HEADER "\n");
	buf_adds(out, with_seed ? "# Custos audit log verification key: keep it offline. It proves\n"
	                          "# every record; whoever holds it could also forge records.\n"
	                        : "# Custos audit log public key: checks the chain and checkpoints.\n");
	add_hex_line(out, "log-id", k->log_id, LOG_ID_LEN);
	add_hex_line(out, "public-key", k->pub, 32);
	if (with_seed)
		add_hex_line(out, "mac-seed", k->seed, LOG_KEY_LEN);
}

int logstate_parse(const char *text, size_t len, struct logstate *ret)
{
	struct logstate s = { 0 };
	uint8_t check[32], want[32];
	struct kv_field f[] = {
		{ "log-id", s.log_id, NULL, LOG_ID_LEN, false },
		{ "epoch", NULL, &s.epoch, 0, false },
		{ "mac-key", s.mac_key, NULL, LOG_KEY_LEN, false },
		{ "sign-key", s.sign_key, NULL, 32, false },
		{ "check", check, NULL, 32, false },
	};
	const char *c = len > 71 ? text + len - 71 : NULL; /* "check <64 hex>\n" */
	int r = 0;

	if (!c || memcmp(c, "check ", 6) || kv_parse(text, len, STATE_HEADER, f, ARRAY_SIZE(f)))
		r = -EINVAL;
	for (size_t i = 0; !r && i < ARRAY_SIZE(f); i++)
		if (!f[i].seen)
			r = -EINVAL;
	if (!r) {
		EVP_Digest(text, (size_t)(c - text), want, NULL, EVP_sha256(), NULL);
		r = CRYPTO_memcmp(want, check, 32) ? -EBADMSG : 0;
	}
	if (!r)
		*ret = s;
	OPENSSL_cleanse(&s, sizeof(s));
	return r;
}

void logstate_format(const struct logstate *s, struct buf *out)
{
	uint8_t check[32];
	size_t start = out->len;

	buf_adds(out, STATE_HEADER "\n");
	add_hex_line(out, "log-id", s->log_id, LOG_ID_LEN);
	buf_printf(out, "epoch %020" PRIu64 "\n", s->epoch);
	add_hex_line(out, "mac-key", s->mac_key, LOG_KEY_LEN);
	add_hex_line(out, "sign-key", s->sign_key, 32);
	if (out->failed)
		return;
	EVP_Digest(out->p + start, out->len - start, check, NULL, EVP_sha256(), NULL);
	add_hex_line(out, "check", check, 32);
}

static void sig_message(uint8_t *m, const uint8_t log_id[LOG_ID_LEN], uint64_t seq, uint64_t epoch,
                        const uint8_t prev[LOG_HASH_LEN])
{
	size_t o = sizeof(SIG_LABEL) - 1;

	memcpy(m, SIG_LABEL, o);
	memcpy(m + o, log_id, LOG_ID_LEN);
	o += LOG_ID_LEN;
	for (int i = 7; i >= 0; i--)
		m[o++] = (uint8_t)(seq >> (8 * i));
	for (int i = 7; i >= 0; i--)
		m[o++] = (uint8_t)(epoch >> (8 * i));
	memcpy(m + o, prev, LOG_HASH_LEN);
}

#define SIG_MSG_LEN (sizeof(SIG_LABEL) - 1 + LOG_ID_LEN + 16 + LOG_HASH_LEN)
#define REPORT_LABEL "custos-report-v1"
#define REPORT_MSG_LEN (sizeof(REPORT_LABEL) - 1 + LOG_ID_LEN + 8 + LOG_HASH_LEN)

static int ed_sign(const uint8_t sign_key[32], const uint8_t *m, size_t n, uint8_t ret[LOG_SIG_LEN])
{
	size_t siglen = LOG_SIG_LEN;
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, sign_key, 32);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	int ok = pk && ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk) == 1 &&
	         EVP_DigestSign(ctx, ret, &siglen, m, n) == 1;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return ok ? 0 : -EIO;
}

static bool ed_verify(const uint8_t pub[32], const uint8_t *m, size_t n, const uint8_t sig[LOG_SIG_LEN])
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	bool ok = pk && ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1 &&
	          EVP_DigestVerify(ctx, sig, LOG_SIG_LEN, m, n) == 1;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return ok;
}

int logkey_sign(const uint8_t sign_key[32], const uint8_t log_id[LOG_ID_LEN], uint64_t seq, uint64_t epoch,
                const uint8_t prev[LOG_HASH_LEN], uint8_t ret[LOG_SIG_LEN])
{
	uint8_t m[SIG_MSG_LEN];

	sig_message(m, log_id, seq, epoch, prev);
	return ed_sign(sign_key, m, sizeof(m), ret);
}

bool logkey_verify_sig(const uint8_t pub[32], const uint8_t log_id[LOG_ID_LEN], uint64_t seq, uint64_t epoch,
                       const uint8_t prev[LOG_HASH_LEN], const uint8_t sig[LOG_SIG_LEN])
{
	uint8_t m[SIG_MSG_LEN];

	sig_message(m, log_id, seq, epoch, prev);
	return ed_verify(pub, m, sizeof(m), sig);
}

static void report_message(uint8_t *m, const uint8_t log_id[LOG_ID_LEN], uint64_t seq,
                           const uint8_t digest[LOG_HASH_LEN])
{
	size_t o = sizeof(REPORT_LABEL) - 1;

	memcpy(m, REPORT_LABEL, o);
	memcpy(m + o, log_id, LOG_ID_LEN);
	o += LOG_ID_LEN;
	for (int i = 7; i >= 0; i--)
		m[o++] = (uint8_t)(seq >> (8 * i));
	memcpy(m + o, digest, LOG_HASH_LEN);
}

int logkey_sign_report(const uint8_t sign_key[32], const uint8_t log_id[LOG_ID_LEN], uint64_t seq,
                       const uint8_t digest[LOG_HASH_LEN], uint8_t ret[LOG_SIG_LEN])
{
	uint8_t m[REPORT_MSG_LEN];

	report_message(m, log_id, seq, digest);
	return ed_sign(sign_key, m, sizeof(m), ret);
}

bool logkey_verify_report(const uint8_t pub[32], const uint8_t log_id[LOG_ID_LEN], uint64_t seq,
                          const uint8_t digest[LOG_HASH_LEN], const uint8_t sig[LOG_SIG_LEN])
{
	uint8_t m[REPORT_MSG_LEN];

	report_message(m, log_id, seq, digest);
	return ed_verify(pub, m, sizeof(m), sig);
}

int logkey_public(const uint8_t sign_key[32], uint8_t ret_pub[32])
{
	size_t len = 32;
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, sign_key, 32);
	int ok = pk && EVP_PKEY_get_raw_public_key(pk, ret_pub, &len) == 1;

	EVP_PKEY_free(pk);
	return ok ? 0 : -EIO;
}
