/* test_fieldcrypt.c - AES-256-GCM field encryption (daemon/fieldcrypt.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/rand.h>

#include "buf.h"
#include "fieldcrypt.h"
#include "secmem.h"

#define CTX "custos.test/table/column"
#define CTX_LEN (sizeof(CTX) - 1)

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

struct fx {
	struct fc_key *k, *other_id, *other_key;
};

static int group_setup(void **state)
{
	/* Without a secure heap secmem_alloc falls back to the normal heap. */
	if (secmem_init(1 << 16))
		print_message("secure heap unavailable; testing on the normal heap\n");
	struct fx *fx = calloc(1, sizeof(*fx));
	if (!fx)
		return -1;
	fx->k = secmem_alloc(sizeof(struct fc_key));
	fx->other_id = secmem_alloc(sizeof(struct fc_key));
	fx->other_key = secmem_alloc(sizeof(struct fc_key));
	if (!fx->k || !fx->other_id || !fx->other_key)
		return -1;
	if (RAND_bytes((uint8_t *)fx->k, sizeof(*fx->k)) != 1)
		return -1;
	/* Another key under another id. */
	if (RAND_bytes((uint8_t *)fx->other_id, sizeof(*fx->other_id)) != 1)
		return -1;
	/* Same id, other key bytes. */
	memcpy(fx->other_key->id, fx->k->id, FC_KEYID_LEN);
	if (RAND_bytes(fx->other_key->key, FC_KEY_LEN) != 1)
		return -1;
	*state = fx;
	return 0;
}

static int group_teardown(void **state)
{
	struct fx *fx = *state;

	secmem_free(fx->k, sizeof(struct fc_key));
	secmem_free(fx->other_id, sizeof(struct fc_key));
	secmem_free(fx->other_key, sizeof(struct fc_key));
	free(fx);
	return 0;
}

static uint8_t *random_bytes(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);
	assert_non_null(p);
	if (n)
		assert_int_equal(RAND_bytes(p, (int)n), 1);
	return p;
}

static void encrypt_ok(const struct fc_key *k, const void *pt, size_t n, struct buf *out)
{
	buf_reset(out);
	assert_int_equal(fc_encrypt(k, CTX, CTX_LEN, pt, n, out), 0);
	assert_false(out->failed);
}

static void test_round_trip_sizes(void **state)
{
	struct fx *fx = *state;
	const size_t sizes[] = { 0, 1, 2, 3, 15, 16, 17, 64, 255, 256, 100 * 1024 };
	struct buf ct = BUF_INIT, pt = BUF_INIT;

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		size_t n = sizes[i];
		uint8_t *v = random_bytes(n);
		encrypt_ok(fx->k, v, n, &ct);
		/* "cx1." then base64 of id | nonce | ciphertext | tag. */
		size_t raw = FC_KEYID_LEN + FC_NONCE_LEN + n + FC_TAG_LEN;
		assert_int_equal(ct.len, FC_PREFIX_LEN + 4 * ((raw + 2) / 3));
		assert_memory_equal(ct.p, "cx1.", 4);
		for (size_t j = FC_PREFIX_LEN; j < ct.len; j++)
			assert_true(strchr(b64_alphabet, ct.p[j]) || (ct.p[j] == '=' && j + 2 >= ct.len));
		buf_reset(&pt);
		assert_int_equal(fc_decrypt(fx->k, CTX, CTX_LEN, ct.p, ct.len, &pt), 0);
		assert_int_equal(pt.len, n);
		if (n)
			assert_memory_equal(pt.p, v, n);
		free(v);
	}
	buf_free(&ct);
	buf_free(&pt);
}

/* Both calls append to what the buffer holds. */
static void test_appends(void **state)
{
	struct fx *fx = *state;
	struct buf ct = BUF_INIT, pt = BUF_INIT;

	buf_adds(&ct, "prefix:");
	assert_int_equal(fc_encrypt(fx->k, CTX, CTX_LEN, "value", 5, &ct), 0);
	assert_memory_equal(ct.p, "prefix:cx1.", 11);
	buf_adds(&pt, "was:");
	assert_int_equal(fc_decrypt(fx->k, CTX, CTX_LEN, ct.p + 7, ct.len - 7, &pt), 0);
	assert_int_equal(pt.len, 9);
	assert_memory_equal(pt.p, "was:value", 9);
	buf_free(&ct);
	buf_free(&pt);
}

static void test_random_nonce(void **state)
{
	struct fx *fx = *state;
	struct buf a = BUF_INIT, b = BUF_INIT;

	encrypt_ok(fx->k, "same value", 10, &a);
	encrypt_ok(fx->k, "same value", 10, &b);
	assert_int_equal(a.len, b.len);
	assert_memory_not_equal(a.p, b.p, a.len);
	/* The key id (the first 16 raw bytes; the first 20 base64 chars
	 * encode 15 of them) is the same, the nonce differs. */
	assert_memory_equal(a.p, b.p, FC_PREFIX_LEN + 20);
	buf_free(&a);
	buf_free(&b);
}

static void test_key_id(void **state)
{
	struct fx *fx = *state;
	struct buf ct = BUF_INIT;
	uint8_t id[FC_KEYID_LEN];

	encrypt_ok(fx->k, "x", 1, &ct);
	memset(id, 0, sizeof(id));
	assert_int_equal(fc_key_id(ct.p, ct.len, id), 0);
	assert_memory_equal(id, fx->k->id, FC_KEYID_LEN);
	encrypt_ok(fx->other_id, "x", 1, &ct);
	assert_int_equal(fc_key_id(ct.p, ct.len, id), 0);
	assert_memory_equal(id, fx->other_id->id, FC_KEYID_LEN);

	assert_int_equal(fc_key_id("garbage", 7, id), -EINVAL);
	assert_int_equal(fc_key_id("cx1.", 4, id), -EINVAL);
	assert_int_equal(fc_key_id("cx2.AAAA", 8, id), -EPROTONOSUPPORT);
	buf_free(&ct);
}

/* A failed decryption appends nothing. */
static void expect_decrypt_error(const struct fc_key *k, const char *ctx, size_t ctxlen, const char *ct,
                                 size_t len, int want)
{
	struct buf pt = BUF_INIT;

	buf_adds(&pt, "keep");
	int r = fc_decrypt(k, ctx, ctxlen, ct, len, &pt);
	if (r != want)
		fail_msg("fc_decrypt returned %d (%s), want %d", r, r ? fc_strerror(r) : "success", want);
	assert_int_equal(pt.len, 4);
	assert_memory_equal(pt.p, "keep", 4);
	buf_free(&pt);
}

static void test_wrong_key_id(void **state)
{
	struct fx *fx = *state;
	struct buf ct = BUF_INIT;

	encrypt_ok(fx->k, "secret", 6, &ct);
	expect_decrypt_error(fx->other_id, CTX, CTX_LEN, ct.p, ct.len, -ENOKEY);
	buf_free(&ct);
}

static void test_wrong_key_bytes(void **state)
{
	struct fx *fx = *state;
	struct buf ct = BUF_INIT;

	encrypt_ok(fx->k, "secret", 6, &ct);
	expect_decrypt_error(fx->other_key, CTX, CTX_LEN, ct.p, ct.len, -EBADMSG);
	encrypt_ok(fx->k, "", 0, &ct);
	expect_decrypt_error(fx->other_key, CTX, CTX_LEN, ct.p, ct.len, -EBADMSG);
	buf_free(&ct);
}

static void test_wrong_context(void **state)
{
	struct fx *fx = *state;
	struct buf ct = BUF_INIT;

	encrypt_ok(fx->k, "secret", 6, &ct);
	expect_decrypt_error(fx->k, "custos.test/table/other", 23, ct.p, ct.len, -EBADMSG);
	expect_decrypt_error(fx->k, CTX, CTX_LEN - 1, ct.p, ct.len, -EBADMSG); /* a prefix */
	expect_decrypt_error(fx->k, CTX "x", CTX_LEN + 1, ct.p, ct.len, -EBADMSG);
	expect_decrypt_error(fx->k, "", 0, ct.p, ct.len, -EBADMSG);
	/* The empty context binds too. */
	buf_reset(&ct);
	assert_int_equal(fc_encrypt(fx->k, "", 0, "v", 1, &ct), 0);
	expect_decrypt_error(fx->k, "a", 1, ct.p, ct.len, -EBADMSG);
	struct buf pt = BUF_INIT;
	assert_int_equal(fc_decrypt(fx->k, "", 0, ct.p, ct.len, &pt), 0);
	assert_int_equal(pt.len, 1);
	buf_free(&pt);
	buf_free(&ct);
}

/* Replacing any one character of the base64 text by any other base64
 * character must never decrypt. Run for several lengths so every padding
 * case (0, 1 and 2 '=') is covered. */
static void flip_every_position(const struct fc_key *k, size_t n)
{
	struct buf ct = BUF_INIT, pt = BUF_INIT;
	uint8_t *v = random_bytes(n);
	size_t successes = 0, tried = 0;

	encrypt_ok(k, v, n, &ct);
	char *copy = malloc(ct.len);
	assert_non_null(copy);
	for (size_t pos = FC_PREFIX_LEN; pos < ct.len; pos++) {
		for (const char *c = b64_alphabet; *c; c++) {
			if (*c == ct.p[pos])
				continue;
			memcpy(copy, ct.p, ct.len);
			copy[pos] = *c;
			buf_reset(&pt);
			int r = fc_decrypt(k, CTX, CTX_LEN, copy, ct.len, &pt);
			tried++;
			if (r == 0) {
				if (successes++ < 4)
					print_error(
					    "%zu-byte value: '%c' -> '%c' at offset %zu of %zu decrypts\n", n,
					    ct.p[pos], *c, pos, ct.len);
			} else {
				assert_true(r == -EBADMSG || r == -EINVAL || r == -ENOKEY);
				assert_int_equal(pt.len, 0);
			}
		}
	}
	free(copy);
	free(v);
	buf_free(&ct);
	buf_free(&pt);
	if (successes)
		fail_msg("%zu of %zu altered %zu-byte ciphertexts decrypted", successes, tried, n);
}

static void test_flips_empty(void **state)
{
	flip_every_position(((struct fx *)*state)->k, 0); /* 44 raw bytes: one '=' */
}

static void test_flips_1(void **state)
{
	flip_every_position(((struct fx *)*state)->k, 1); /* 45: none */
}

static void test_flips_16(void **state)
{
	flip_every_position(((struct fx *)*state)->k, 16); /* 60: none */
}

static void test_flips_17(void **state)
{
	flip_every_position(((struct fx *)*state)->k, 17); /* 61: two '=' */
}

static void test_flips_64(void **state)
{
	flip_every_position(((struct fx *)*state)->k, 64); /* 108: none */
}

static void test_flips_256(void **state)
{
	flip_every_position(((struct fx *)*state)->k, 256); /* 300: none */
}

/* Changing the key id to another key's id gives -ENOKEY, not success. The
 * '=' padding turned into data and data turned into '=' fail too. */
static void test_padding_changes(void **state)
{
	struct fx *fx = *state;
	struct buf ct = BUF_INIT;

	encrypt_ok(fx->k, "", 0, &ct); /* ends in one '=' */
	assert_int_equal(ct.p[ct.len - 1], '=');
	assert_true(ct.p[ct.len - 2] != '=');
	char *copy = malloc(ct.len + 1);
	assert_non_null(copy);
	/* Padding removed (length no longer a multiple of 4). */
	expect_decrypt_error(fx->k, CTX, CTX_LEN, ct.p, ct.len - 1, -EINVAL);
	/* '=' inside the text. */
	for (size_t pos = FC_PREFIX_LEN; pos < ct.len - 1; pos++) {
		memcpy(copy, ct.p, ct.len);
		copy[pos] = '=';
		struct buf pt = BUF_INIT;
		int r = fc_decrypt(fx->k, CTX, CTX_LEN, copy, ct.len, &pt);
		assert_true(r == -EINVAL || r == -EBADMSG);
		buf_free(&pt);
	}
	/* Other characters than base64. */
	const char junk[] = " \n\t.-_*~\"\\\x80\xff";
	for (size_t pos = FC_PREFIX_LEN; pos < ct.len; pos++) {
		for (const char *c = junk; *c; c++) {
			memcpy(copy, ct.p, ct.len);
			copy[pos] = *c;
			expect_decrypt_error(fx->k, CTX, CTX_LEN, copy, ct.len, -EINVAL);
		}
	}
	free(copy);
	buf_free(&ct);
}

static void test_truncations(void **state)
{
	struct fx *fx = *state;
	const size_t sizes[] = { 0, 1, 2, 16, 64 };
	struct buf ct = BUF_INIT;

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		uint8_t *v = random_bytes(sizes[i]);
		encrypt_ok(fx->k, v, sizes[i], &ct);
		for (size_t len = 0; len < ct.len; len++) {
			struct buf pt = BUF_INIT;
			int r = fc_decrypt(fx->k, CTX, CTX_LEN, ct.p, len, &pt);
			if (r == 0)
				fail_msg("%zu-byte value: ciphertext cut to %zu of %zu chars decrypts",
				         sizes[i], len, ct.len);
			assert_true(r == -EINVAL || r == -EBADMSG);
			assert_int_equal(pt.len, 0);
			buf_free(&pt);
			uint8_t id[FC_KEYID_LEN];
			if (len <
			    FC_PREFIX_LEN + 4 * ((FC_KEYID_LEN + FC_NONCE_LEN + FC_TAG_LEN + 2) / 3) - 1)
				assert_int_equal(fc_key_id(ct.p, len, id), -EINVAL);
		}
		/* Dropping bytes from the front of the body is no better. */
		for (size_t cut = 1; cut < ct.len - FC_PREFIX_LEN; cut++) {
			char *s = malloc(ct.len);
			assert_non_null(s);
			memcpy(s, "cx1.", 4);
			memcpy(s + 4, ct.p + 4 + cut, ct.len - 4 - cut);
			struct buf pt = BUF_INIT;
			assert_int_not_equal(fc_decrypt(fx->k, CTX, CTX_LEN, s, ct.len - cut, &pt), 0);
			buf_free(&pt);
			free(s);
		}
		free(v);
	}
	buf_free(&ct);
}

static void test_other_version(void **state)
{
	struct fx *fx = *state;
	struct buf ct = BUF_INIT;
	uint8_t id[FC_KEYID_LEN];

	encrypt_ok(fx->k, "v", 1, &ct);
	ct.p[2] = '2';
	expect_decrypt_error(fx->k, CTX, CTX_LEN, ct.p, ct.len, -EPROTONOSUPPORT);
	assert_int_equal(fc_key_id(ct.p, ct.len, id), -EPROTONOSUPPORT);
	expect_decrypt_error(fx->k, CTX, CTX_LEN, "cx2.", 4, -EPROTONOSUPPORT);
	expect_decrypt_error(fx->k, CTX, CTX_LEN, "cx0.AAAA", 8, -EPROTONOSUPPORT);
	buf_free(&ct);
}

static void test_garbage(void **state)
{
	struct fx *fx = *state;
	const char *bad[] = {
		"",
		"c",
		"cx",
		"cx1",
		"cx1.",
		"CX1.AAAA",
		"cx1-AAAA",
		"hello world",
		"cx1.A",
		"cx1.AAAA",
		"cx1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA===",
		"cx1.====",
		"cx1.AA==AAAA",
		"cx1.!!!!",
		"cx1. AAA",
		"{\"json\":1}",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_decrypt_error(fx->k, CTX, CTX_LEN, bad[i], strlen(bad[i]), -EINVAL);
	/* Well-formed base64 of the minimum length with a random body: not
	 * malformed, just not authentic. */
	struct buf ct = BUF_INIT;
	encrypt_ok(fx->k, "", 0, &ct);
	for (size_t j = FC_PREFIX_LEN + 24; j < ct.len - 1; j++)
		ct.p[j] = 'Q';
	expect_decrypt_error(fx->k, CTX, CTX_LEN, ct.p, ct.len, -EBADMSG);
	buf_free(&ct);
}

static void test_too_large(void **state)
{
	struct fx *fx = *state;
	struct buf ct = BUF_INIT;
	char *big = calloc(1, FC_MAX_PLAINTEXT + 1);

	assert_non_null(big);
	assert_int_equal(fc_encrypt(fx->k, CTX, CTX_LEN, big, FC_MAX_PLAINTEXT + 1, &ct), -E2BIG);
	assert_int_equal(ct.len, 0);
	free(big);
	buf_free(&ct);
}

static void test_strerror(void **state)
{
	(void)state;
	const int errs[] = { -EINVAL, -EPROTONOSUPPORT, -ENOKEY, -EBADMSG, -ENOMEM, -E2BIG };
	const char *msgs[ARRAY_SIZE(errs)];

	for (size_t i = 0; i < ARRAY_SIZE(errs); i++) {
		msgs[i] = fc_strerror(errs[i]);
		assert_non_null(msgs[i]);
		assert_true(strlen(msgs[i]) > 0);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(msgs[i], msgs[j]);
	}
	const char *other = fc_strerror(-EIO);
	assert_non_null(other);
	assert_true(strlen(other) > 0);
	for (size_t i = 0; i < ARRAY_SIZE(errs); i++)
		assert_string_not_equal(other, msgs[i]);
}

/* A forked child must not repeat the nonces its parent will use. */
static void test_wrap_round_trip(void **state)
{
	uint8_t kek[FC_KEY_LEN], key[FC_KEY_LEN], back[FC_KEY_LEN], w[FC_WRAP_LEN], w2[FC_WRAP_LEN];
	static const char ad[] = "custos-dk1 place";

	(void)state;
	memset(kek, 1, sizeof(kek));
	memset(key, 2, sizeof(key));
	assert_int_equal(fc_wrap(kek, ad, sizeof(ad), key, w), 0);
	assert_int_equal(fc_wrap(kek, ad, sizeof(ad), key, w2), 0);
	assert_memory_not_equal(w, w2, sizeof(w)); /* fresh nonce each time */
	assert_int_equal(w[0], FC_WRAP_VERSION);
	assert_memory_not_equal(w + 1 + FC_NONCE_LEN, key, FC_KEY_LEN);
	assert_int_equal(fc_unwrap(kek, ad, sizeof(ad), w, sizeof(w), back), 0);
	assert_memory_equal(back, key, sizeof(key));
}

static void test_wrap_refuses(void **state)
{
	uint8_t kek[FC_KEY_LEN], key[FC_KEY_LEN], back[FC_KEY_LEN], w[FC_WRAP_LEN];
	static const char ad[] = "place one", other[] = "place two";

	(void)state;
	memset(kek, 1, sizeof(kek));
	memset(key, 2, sizeof(key));
	assert_int_equal(fc_wrap(kek, ad, sizeof(ad), key, w), 0);
	assert_int_equal(fc_unwrap(kek, other, sizeof(other), w, sizeof(w), back), -EBADMSG);
	assert_int_equal(fc_unwrap(kek, ad, sizeof(ad), w, sizeof(w) - 1, back), -EINVAL);
	for (size_t i = 1; i < sizeof(w); i++) {
		w[i] ^= 0x10;
		memset(back, 0x55, sizeof(back));
		assert_int_equal(fc_unwrap(kek, ad, sizeof(ad), w, sizeof(w), back), -EBADMSG);
		for (size_t j = 0; j < sizeof(back); j++)
			assert_int_equal(back[j], 0); /* nothing of a wrong key is left */
		w[i] ^= 0x10;
	}
	w[0] = 2;
	assert_int_equal(fc_unwrap(kek, ad, sizeof(ad), w, sizeof(w), back), -EPROTONOSUPPORT);
	w[0] = FC_WRAP_VERSION;
	kek[31] ^= 1;
	assert_int_equal(fc_unwrap(kek, ad, sizeof(ad), w, sizeof(w), back), -EBADMSG);
}

static void test_fork_does_not_repeat_nonces(void **state)
{
	(void)state;
	struct fc_key k;
	struct buf a = BUF_INIT, b = BUF_INIT;
	int fds[2];

	memset(&k, 3, sizeof(k));
	assert_int_equal(fc_encrypt(&k, "c", 1, "x", 1, &a), 0); /* fills this thread's pool */
	buf_reset(&a);
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int ok =
		    fc_encrypt(&k, "c", 1, "x", 1, &b) == 0 && write(fds[1], b.p, b.len) == (ssize_t)b.len;
		_exit(ok ? 0 : 1);
	}
	close(fds[1]);
	char child[256];
	ssize_t n = read(fds[0], child, sizeof(child));
	int status;
	waitpid(pid, &status, 0);
	assert_true(n > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(fc_encrypt(&k, "c", 1, "x", 1, &a), 0);
	/* base64 of key id (16) + nonce (12): the first 36 characters after cx1. */
	assert_true((size_t)n == a.len);
	assert_memory_not_equal(child + 4, a.p + 4, 36);
	close(fds[0]);
	buf_free(&a);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_sizes), cmocka_unit_test(test_appends),
		cmocka_unit_test(test_random_nonce),     cmocka_unit_test(test_key_id),
		cmocka_unit_test(test_wrong_key_id),     cmocka_unit_test(test_wrong_key_bytes),
		cmocka_unit_test(test_wrong_context),    cmocka_unit_test(test_flips_empty),
		cmocka_unit_test(test_flips_1),          cmocka_unit_test(test_flips_16),
		cmocka_unit_test(test_flips_17),         cmocka_unit_test(test_flips_64),
		cmocka_unit_test(test_flips_256),        cmocka_unit_test(test_padding_changes),
		cmocka_unit_test(test_truncations),      cmocka_unit_test(test_other_version),
		cmocka_unit_test(test_garbage),          cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_strerror),         cmocka_unit_test(test_fork_does_not_repeat_nonces),
		cmocka_unit_test(test_wrap_round_trip),  cmocka_unit_test(test_wrap_refuses),
	};

	return cmocka_run_group_tests_name("fieldcrypt", tests, group_setup, group_teardown);
}
