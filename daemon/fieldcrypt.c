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

/* The cipher, fetched once: an implicit fetch (EVP_aes_256_gcm()) costs a
 * provider lookup on every use, a third of the time for short values. */
static EVP_CIPHER *gcm;
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;

static void gcm_fetch(void)
{
	gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

/* AES-256-GCM of n bytes under key with the associated data ad1 | ad2. */
static int run_gcm(bool enc, const uint8_t key[FC_KEY_LEN], const uint8_t *nonce, const void *ad1,
                   size_t ad1len, const void *ad2, size_t ad2len, const uint8_t *in, size_t n, uint8_t *out,
                   uint8_t *tag)
{
	EVP_CIPHER_CTX *c = cipher_ctx();
	int len, ok;

	pthread_once(&gcm_once, gcm_fetch);
	if (!c || !gcm || ad2len > MAX_AD || n > FC_MAX_PLAINTEXT)
		return -ENOMEM;
	ok = EVP_CipherInit_ex2(c, gcm, key, nonce, enc, NULL) &&
	     EVP_CipherUpdate(c, NULL, &len, ad1, (int)ad1len) &&
	     (ad2len == 0 || EVP_CipherUpdate(c, NULL, &len, ad2, (int)ad2len)) &&
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

/* Field values are mostly short: their raw bytes live on the stack. */
#define STACK_RAW 512

static void fc_ad(const struct fc_key *k, uint8_t ad[AD_LABEL_LEN + FC_KEYID_LEN])
{
	memcpy(ad, AD_LABEL, AD_LABEL_LEN);
	memcpy(ad + AD_LABEL_LEN, k->id, FC_KEYID_LEN);
}

int fc_encrypt(const struct fc_key *k, const char *ctx, size_t ctxlen, const void *pt, size_t ptlen,
               struct buf *out)
{
	size_t rawlen = HEADER_LEN + ptlen + FC_TAG_LEN;
	size_t textlen = fc_text_len(ptlen);
	uint8_t stack[STACK_RAW], ad[AD_LABEL_LEN + FC_KEYID_LEN];

	if (ptlen > FC_MAX_PLAINTEXT)
		return -E2BIG;
	uint8_t *raw = rawlen <= sizeof(stack) ? stack : malloc(rawlen);
	if (!raw || !buf_reserve(out, textlen + 1)) {
		if (raw != stack)
			free(raw);
		return -ENOMEM;
	}
	fc_ad(k, ad);
	memcpy(raw, k->id, FC_KEYID_LEN);
	int err = next_nonce(raw + FC_KEYID_LEN);
	if (!err)
		err = run_gcm(true, k->key, raw + FC_KEYID_LEN, ad, sizeof(ad), ctx, ctxlen, pt, ptlen,
		              raw + HEADER_LEN, raw + HEADER_LEN + ptlen);
	if (!err) {
		buf_add(out, FC_PREFIX, FC_PREFIX_LEN);
		EVP_EncodeBlock((unsigned char *)out->p + out->len, raw, (int)rawlen);
		out->len += textlen - FC_PREFIX_LEN;
	}
	OPENSSL_cleanse(raw, rawlen);
	if (raw != stack)
		free(raw);
	return err;
}

/* The 6-bit value of a base64 character, or -1. */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Strict base64: length a multiple of 4, padding only at the end, and
 * canonical: the unused low bits of the last character are zero, so a
 * value has exactly one spelling. Returns the decoded length, or -1. out
 * must hold 3 * len / 4 bytes. */
static long b64_decode(const char *s, size_t len, uint8_t *out)
{
	size_t pad = 0;

	if (len == 0 || len % 4)
		return -1;
	while (pad < 2 && s[len - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < len - pad; i++)
		if (b64_value((unsigned char)s[i]) < 0)
			return -1;
	if (pad && (b64_value((unsigned char)s[len - 1 - pad]) & (pad == 1 ? 0x3 : 0xf)))
		return -1;
	if (EVP_DecodeBlock(out, (const unsigned char *)s, (int)len) < 0)
		return -1;
	return (long)(len / 4 * 3 - pad);
}

/* Decodes ct into raw (a stack buffer of STACK_RAW bytes, or a fresh
 * allocation when the value is larger); checks prefix and length. */
static int fc_unpack(const char *ct, size_t len, uint8_t *stack, uint8_t **ret_raw, size_t *ret_rawlen)
{
	if (len < FC_PREFIX_LEN || memcmp(ct, "cx", 2) || ct[3] != '.')
		return -EINVAL;
	if (memcmp(ct, FC_PREFIX, FC_PREFIX_LEN))
		return -EPROTONOSUPPORT;
	len -= FC_PREFIX_LEN;
	if (len > 4 * ((FC_MAX_PLAINTEXT + HEADER_LEN + FC_TAG_LEN + 2) / 3))
		return -EINVAL;
	size_t cap = len / 4 * 3 + 3;
	uint8_t *raw = cap <= STACK_RAW ? stack : malloc(cap);
	if (!raw)
		return -ENOMEM;
	long n = b64_decode(ct + FC_PREFIX_LEN, len, raw);
	if (n < (long)(HEADER_LEN + FC_TAG_LEN)) {
		if (raw != stack)
			free(raw);
		return -EINVAL;
	}
	*ret_raw = raw;
	*ret_rawlen = (size_t)n;
	return 0;
}

int fc_key_id(const char *ct, size_t len, uint8_t ret_id[FC_KEYID_LEN])
{
	uint8_t stack[STACK_RAW], *raw;
	size_t rawlen;
	int err = fc_unpack(ct, len, stack, &raw, &rawlen);

	if (err)
		return err;
	memcpy(ret_id, raw, FC_KEYID_LEN);
	if (raw != stack)
		free(raw);
	return 0;
}

int fc_decrypt(const struct fc_key *k, const char *ctx, size_t ctxlen, const char *ct, size_t len,
               struct buf *out)
{
	uint8_t stack[STACK_RAW], ad[AD_LABEL_LEN + FC_KEYID_LEN], *raw;
	size_t rawlen;
	int err = fc_unpack(ct, len, stack, &raw, &rawlen);

	if (err)
		return err;
	size_t n = rawlen - HEADER_LEN - FC_TAG_LEN;
	fc_ad(k, ad);
	if (CRYPTO_memcmp(raw, k->id, FC_KEYID_LEN))
		err = -ENOKEY;
	else if (!buf_reserve(out, n + 1))
		err = -ENOMEM;
	else
		err = run_gcm(false, k->key, raw + FC_KEYID_LEN, ad, sizeof(ad), ctx, ctxlen,
		              raw + HEADER_LEN, n, (uint8_t *)out->p + out->len, raw + HEADER_LEN + n);
	if (!err)
		out->len += n;
	else if (out->p)
		OPENSSL_cleanse(out->p + out->len, out->cap - out->len);
	if (raw != stack)
		free(raw);
	return err;
}

int fc_wrap(const uint8_t kek[FC_KEY_LEN], const void *ad, size_t adlen, const uint8_t key[FC_KEY_LEN],
            uint8_t out[FC_WRAP_LEN])
{
	out[0] = FC_WRAP_VERSION;
	int err = next_nonce(out + 1);
	return err ? err
	           : run_gcm(true, kek, out + 1, ad, adlen, NULL, 0, key, FC_KEY_LEN, out + 1 + FC_NONCE_LEN,
	                     out + 1 + FC_NONCE_LEN + FC_KEY_LEN);
}

int fc_unwrap(const uint8_t kek[FC_KEY_LEN], const void *ad, size_t adlen, const uint8_t *in, size_t len,
              uint8_t key[FC_KEY_LEN])
{
	if (len != FC_WRAP_LEN)
		return -EINVAL;
	if (in[0] != FC_WRAP_VERSION)
		return -EPROTONOSUPPORT;
	uint8_t tag[FC_TAG_LEN];
	memcpy(tag, in + 1 + FC_NONCE_LEN + FC_KEY_LEN, FC_TAG_LEN);
	int err =
	    run_gcm(false, kek, in + 1, ad, adlen, NULL, 0, in + 1 + FC_NONCE_LEN, FC_KEY_LEN, key, tag);
	if (err)
		OPENSSL_cleanse(key, FC_KEY_LEN);
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
