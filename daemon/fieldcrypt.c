/* fieldcrypt.c - see fieldcrypt.h */
#include "fieldcrypt.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>

#define AD_LABEL "custos-fc1"
#define AD_LABEL_LEN sizeof(AD_LABEL) /* with its NUL */
#define HEADER_LEN (FC_KEYID_LEN + FC_NONCE_LEN)
#define MAX_AD 1024

/* One cipher context per thread, freed when the thread ends. */
static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void ctx_free(void *p)
{
	EVP_CIPHER_CTX_free(p);
}

static void ctx_key_init(void)
{
	if (pthread_key_create(&ctx_key, ctx_free))
		abort(); /* only fails when the process is out of keys at start */
}

static EVP_CIPHER_CTX *cipher_ctx(void)
{
	pthread_once(&ctx_once, ctx_key_init);
	EVP_CIPHER_CTX *ctx = pthread_getspecific(ctx_key);
	if (!ctx && (ctx = EVP_CIPHER_CTX_new()) && pthread_setspecific(ctx_key, ctx)) {
		EVP_CIPHER_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

static int run_gcm(bool enc, const struct fc_key *k, const uint8_t *nonce, const char *ctx, size_t ctxlen,
                   const uint8_t *in, size_t n, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *c = cipher_ctx();
	uint8_t ad[AD_LABEL_LEN + FC_KEYID_LEN];
	int len, ok;

	if (!c || ctxlen > MAX_AD || n > FC_MAX_PLAINTEXT)
		return -ENOMEM;
	memcpy(ad, AD_LABEL, AD_LABEL_LEN);
	memcpy(ad + AD_LABEL_LEN, k->id, FC_KEYID_LEN);
	ok = EVP_CipherInit_ex2(c, EVP_aes_256_gcm(), k->key, nonce, enc, NULL) &&
	     EVP_CipherUpdate(c, NULL, &len, ad, sizeof(ad)) &&
	     EVP_CipherUpdate(c, NULL, &len, (const uint8_t *)ctx, (int)ctxlen) &&
	     (n == 0 || EVP_CipherUpdate(c, out, &len, in, (int)n));
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, FC_TAG_LEN, tag);
	ok = ok && EVP_CipherFinal_ex(c, out + n, &len);
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, FC_TAG_LEN, tag);
	EVP_CIPHER_CTX_reset(c); /* wipes the key schedule: no data key outlives its use */
	if (!ok)
		return enc ? -EIO : -EBADMSG;
	return 0;
}

/* Nonces are random (96 bits, as GCM recommends for many writers under
 * one key), drawn from the DRBG in blocks to spare a locked DRBG call per
 * value. A forked child must never reuse its parent's pool: the child's
 * only thread discards it (pthread_atfork). Nonces are not secret. */
#define NONCE_POOL (FC_NONCE_LEN * 256)
static __thread uint8_t nonce_pool[NONCE_POOL];
static __thread size_t nonce_used = NONCE_POOL;
static pthread_once_t nonce_once = PTHREAD_ONCE_INIT;

static void nonce_discard(void)
{
	nonce_used = NONCE_POOL;
}

static void nonce_init(void)
{
	if (pthread_atfork(NULL, NULL, nonce_discard))
		abort(); /* without it a child could repeat nonces: refuse to run */
}

static int next_nonce(uint8_t nonce[FC_NONCE_LEN])
{
	pthread_once(&nonce_once, nonce_init);
	if (nonce_used == NONCE_POOL) {
		if (RAND_bytes(nonce_pool, NONCE_POOL) != 1)
			return -EIO;
		nonce_used = 0;
	}
	memcpy(nonce, nonce_pool + nonce_used, FC_NONCE_LEN);
	nonce_used += FC_NONCE_LEN;
	return 0;
}

int fc_encrypt(const struct fc_key *k, const char *ctx, size_t ctxlen, const void *pt, size_t ptlen,
               struct buf *out)
{
	size_t rawlen = HEADER_LEN + ptlen + FC_TAG_LEN;
	size_t textlen = FC_PREFIX_LEN + 4 * ((rawlen + 2) / 3);

	if (ptlen > FC_MAX_PLAINTEXT)
		return -E2BIG;
	uint8_t *raw = malloc(rawlen);
	if (!raw || !buf_reserve(out, textlen + 1)) {
		free(raw);
		return -ENOMEM;
	}
	memcpy(raw, k->id, FC_KEYID_LEN);
	int err = next_nonce(raw + FC_KEYID_LEN);
	if (!err)
		err = run_gcm(true, k, raw + FC_KEYID_LEN, ctx, ctxlen, pt, ptlen, raw + HEADER_LEN,
		              raw + HEADER_LEN + ptlen);
	if (!err) {
		buf_add(out, FC_PREFIX, FC_PREFIX_LEN);
		EVP_EncodeBlock((unsigned char *)out->p + out->len, raw, (int)rawlen);
		out->len += textlen - FC_PREFIX_LEN;
	}
	OPENSSL_cleanse(raw, rawlen);
	free(raw);
	return err;
}

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
	       c == '/';
}

/* Strict base64: length a multiple of 4, padding only at the end. Returns
 * the decoded length, or -1. out must hold 3 * len / 4 bytes. */
static long b64_decode(const char *s, size_t len, uint8_t *out)
{
	size_t pad = 0;

	if (len == 0 || len % 4)
		return -1;
	while (pad < 2 && s[len - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < len - pad; i++)
		if (!b64_char(s[i]))
			return -1;
	if (EVP_DecodeBlock(out, (const unsigned char *)s, (int)len) < 0)
		return -1;
	/* Canonical only: the unused bits of the last character must be zero,
	 * so a value has exactly one spelling. Re-encoding checks it. */
	long n = (long)(len / 4 * 3 - pad);
	char *again = malloc(len + 1);
	bool same = again && EVP_EncodeBlock((unsigned char *)again, out, (int)n) == (int)len &&
	            !memcmp(again, s, len);
	free(again);
	return same ? n : -1;
}

/* Decodes ct into a freshly allocated buffer; checks prefix and length. */
static int fc_unpack(const char *ct, size_t len, uint8_t **ret_raw, size_t *ret_rawlen)
{
	if (len < FC_PREFIX_LEN || memcmp(ct, "cx", 2) || ct[3] != '.')
		return -EINVAL;
	if (memcmp(ct, FC_PREFIX, FC_PREFIX_LEN))
		return -EPROTONOSUPPORT;
	len -= FC_PREFIX_LEN;
	if (len > 4 * ((FC_MAX_PLAINTEXT + HEADER_LEN + FC_TAG_LEN + 2) / 3))
		return -EINVAL;
	uint8_t *raw = malloc(len / 4 * 3 + 3);
	if (!raw)
		return -ENOMEM;
	long n = b64_decode(ct + FC_PREFIX_LEN, len, raw);
	if (n < (long)(HEADER_LEN + FC_TAG_LEN)) {
		free(raw);
		return -EINVAL;
	}
	*ret_raw = raw;
	*ret_rawlen = (size_t)n;
	return 0;
}

int fc_key_id(const char *ct, size_t len, uint8_t ret_id[FC_KEYID_LEN])
{
	uint8_t *raw;
	size_t rawlen;
	int err = fc_unpack(ct, len, &raw, &rawlen);

	if (err)
		return err;
	memcpy(ret_id, raw, FC_KEYID_LEN);
	free(raw);
	return 0;
}

int fc_decrypt(const struct fc_key *k, const char *ctx, size_t ctxlen, const char *ct, size_t len,
               struct buf *out)
{
	uint8_t *raw;
	size_t rawlen;
	int err = fc_unpack(ct, len, &raw, &rawlen);

	if (err)
		return err;
	size_t n = rawlen - HEADER_LEN - FC_TAG_LEN;
	if (CRYPTO_memcmp(raw, k->id, FC_KEYID_LEN))
		err = -ENOKEY;
	else if (!buf_reserve(out, n + 1))
		err = -ENOMEM;
	else
		err = run_gcm(false, k, raw + FC_KEYID_LEN, ctx, ctxlen, raw + HEADER_LEN, n,
		              (uint8_t *)out->p + out->len, raw + HEADER_LEN + n);
	if (!err)
		out->len += n;
	else if (out->p)
		OPENSSL_cleanse(out->p + out->len, out->cap - out->len);
	free(raw);
	return err;
}

const char *fc_strerror(int err)
{
	static const struct {
		int err;
		const char *msg;
	} msgs[] = {
		{ -EINVAL, "not a well-formed Custos ciphertext" },
		{ -EPROTONOSUPPORT, "ciphertext of an unsupported format version" },
		{ -ENOKEY, "ciphertext made with another key" },
		{ -EBADMSG, "ciphertext altered, or bound to another table, column or subject" },
		{ -ENOMEM, "out of memory" },
		{ -E2BIG, "value too large to encrypt" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(msgs); i++)
		if (msgs[i].err == err)
			return msgs[i].msg;
	return "encryption failure";
}
