/* fuzz_fieldcrypt - libFuzzer target for field encryption (fieldcrypt.c).
 *
 * The input is used twice:
 *  - as ciphertext text: fc_key_id() and fc_decrypt() with a fixed key and
 *    context must fail cleanly or, on success, agree with each other; and
 *    as a wrapped key, which must not unwrap (unless it is a real one);
 *  - as plaintext: fc_encrypt() then fc_decrypt() must give it back, and
 *    decrypting under another context must fail.
 * The seeds hold ciphertexts made with this key and context, so mutations
 * start from text that decrypts. */
#include "../../daemon/fieldcrypt.c"

#include "fuzz_common.h"

#define KEY_ID "00112233445566778899aabbccddeeff"
#define KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define CTX "public.customers/email/customer:42"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fc_key k;
	static bool init;
	const char *text = (const char *)data;
	uint8_t id[FC_KEYID_LEN];
	struct buf pt = BUF_INIT, ct = BUF_INIT, back = BUF_INIT;

	if (!init) {
		fuzz_hex(KEY_ID, k.id, FC_KEYID_LEN);
		fuzz_hex(KEY, k.key, FC_KEY_LEN);
		init = true;
	}

	/* The input as a ciphertext. */
	int ri = fc_key_id(text, size, id);
	int rd = fc_decrypt(&k, CTX, sizeof(CTX) - 1, text, size, &pt);
	CHECK(ri == 0 || ri == -EINVAL || ri == -EPROTONOSUPPORT || ri == -ENOMEM);
	CHECK(rd == 0 || rd == -EINVAL || rd == -EPROTONOSUPPORT || rd == -ENOKEY || rd == -EBADMSG ||
	      rd == -ENOMEM);
	if (ri != -ENOMEM && rd != -ENOMEM && ri)
		CHECK(rd == ri); /* malformed for one is malformed for the other */
	if (!ri && rd != -ENOMEM)
		CHECK((rd == -ENOKEY) == !!memcmp(id, k.id, FC_KEYID_LEN));
	if (!rd)
		CHECK(size >= FC_PREFIX_LEN + 60 && pt.len <= size);
	else
		CHECK(pt.len == 0);
	(void)fc_strerror(rd);

	/* The input as a wrapped key: only a real wrapping of key k unwraps. */
	uint8_t unwrapped[FC_KEY_LEN];
	int ru = fc_unwrap(k.key, CTX, sizeof(CTX), data, size, unwrapped);
	CHECK(ru == 0 || ru == -EINVAL || ru == -EPROTONOSUPPORT || ru == -EBADMSG || ru == -ENOMEM);
	CHECK(ru != -EINVAL || size != FC_WRAP_LEN);
	if (size >= FC_KEY_LEN) {
		uint8_t w[FC_WRAP_LEN];
		CHECK(fc_wrap(k.key, CTX, sizeof(CTX), data, w) == 0);
		CHECK(fc_unwrap(k.key, CTX, sizeof(CTX), w, sizeof(w), unwrapped) == 0);
		CHECK(!memcmp(unwrapped, data, FC_KEY_LEN));
	}

	/* The input as a plaintext. */
	int re = fc_encrypt(&k, CTX, sizeof(CTX) - 1, data, size, &ct);
	CHECK(re == 0 && !ct.failed);
	CHECK(ct.len == FC_PREFIX_LEN + 4 * ((FC_KEYID_LEN + FC_NONCE_LEN + size + FC_TAG_LEN + 2) / 3));
	CHECK(fc_key_id(ct.p, ct.len, id) == 0 && !memcmp(id, k.id, FC_KEYID_LEN));
	rd = fc_decrypt(&k, CTX, sizeof(CTX) - 1, ct.p, ct.len, &back);
	CHECK(rd == 0);
	CHECK(back.len == size && (size == 0 || !memcmp(back.p, data, size)));
	back.len = 0;
	CHECK(fc_decrypt(&k, CTX, sizeof(CTX) - 2, ct.p, ct.len, &back) == -EBADMSG && back.len == 0);

	buf_free(&pt);
	buf_free(&ct);
	buf_free(&back);
	return 0;
}
