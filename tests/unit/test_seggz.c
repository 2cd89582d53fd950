/* test_seggz.c - the gzip form of sealed segments (daemon/seggz.c):
 * members of SEGGZ_MEMBER bytes that zlib reads as one stream, and a
 * reader that hands over to zlib at the first member libdeflate cannot
 * take whole, without losing or repeating a byte. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "seggz.h"
#include "util.h"

struct bytes {
	uint8_t *p;
	size_t len;
};

/* Lines that look like records: compressible, but not trivially. */
static struct bytes text(size_t len, unsigned seed)
{
	struct bytes t = { malloc(len), len };
	size_t n = 0;

	assert_non_null(t.p);
	srandom(seed);
	while (n < len) {
		char line[160];
		int k = snprintf(line, sizeof(line),
		                 "{\"seq\":%zu,\"type\":\"access\",\"rows\":%ld,\"x\":\"%08lx%08lx\"}\n", n,
		                 random() % 100, random(), random());
		size_t m = (size_t)k < len - n ? (size_t)k : len - n;
		memcpy(t.p + n, line, m);
		n += m;
	}
	return t;
}

static int memfd_of(const void *p, size_t len)
{
	int fd = memfd_create("seggz", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, p, len), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static struct bytes contents(int fd)
{
	off_t end = lseek(fd, 0, SEEK_END);
	struct bytes b = { malloc(end > 0 ? (size_t)end : 1), (size_t)end };

	assert_non_null(b.p);
	assert_int_equal(pread(fd, b.p, b.len, 0), (ssize_t)b.len);
	return b;
}

/* The sealed form of t, as logseg_seal writes it. */
static struct bytes seal(struct bytes t)
{
	int in = memfd_of(t.p, t.len), out = memfd_create("sealed", MFD_CLOEXEC);

	assert_true(out >= 0);
	assert_int_equal(seggz_write(in, out, t.len), 0);
	struct bytes z = contents(out);
	close(in);
	close(out);
	return z;
}

/* Everything seggz_read hands out with reads of at most cap bytes; *ret_err
 * is the error that ended it (0 at the end). */
static struct bytes unseal(struct bytes z, size_t cap, int *ret_err)
{
	struct seggz *g;
	struct bytes out = { NULL, 0 };
	char *buf = malloc(cap);
	ssize_t n;

	assert_non_null(buf);
	assert_int_equal(seggz_open(memfd_of(z.p, z.len), &g), 0);
	while ((n = seggz_read(g, buf, cap)) > 0) {
		assert_true((size_t)n <= cap);
		out.p = realloc(out.p, out.len + (size_t)n);
		assert_non_null(out.p);
		memcpy(out.p + out.len, buf, (size_t)n);
		out.len += (size_t)n;
	}
	*ret_err = (int)n;
	seggz_free(g);
	free(buf);
	return out;
}

/* What zlib's gzread (and so zcat) makes of z. */
static struct bytes zlib_view(struct bytes z)
{
	gzFile g = gzdopen(memfd_of(z.p, z.len), "rb");
	struct bytes out = { malloc(64u << 20), 0 };
	int n;

	assert_non_null(g);
	while ((n = gzread(g, out.p + out.len, 1u << 20)) > 0)
		out.len += (size_t)n;
	assert_int_equal(n, 0);
	assert_int_equal(gzclose(g), Z_OK);
	return out;
}

/* The offsets where z's gzip members end. */
static size_t member_ends(struct bytes z, size_t *ends, size_t max)
{
	uint8_t sink[1 << 16];
	size_t n = 0, at = 0;

	while (at < z.len && n < max) {
		z_stream s = { 0 };
		assert_int_equal(inflateInit2(&s, 16 + MAX_WBITS), Z_OK);
		s.next_in = z.p + at;
		s.avail_in = (uInt)(z.len - at);
		int r;
		do {
			s.next_out = sink;
			s.avail_out = sizeof(sink);
			r = inflate(&s, Z_NO_FLUSH);
		} while (r == Z_OK);
		assert_int_equal(r, Z_STREAM_END);
		at = z.len - s.avail_in;
		ends[n++] = at;
		inflateEnd(&s);
	}
	return n;
}

static void assert_same(struct bytes a, struct bytes b)
{
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.p, b.p, a.len);
}

static void test_members_read_back_by_both(void **state)
{
	(void)state;
	struct bytes t = text(3 * SEGGZ_MEMBER + SEGGZ_MEMBER / 2, 1), z = seal(t);
	size_t ends[8];
	int err;

	assert_int_equal(member_ends(z, ends, 8), 4);
	assert_int_equal(ends[3], z.len);
	struct bytes fast = unseal(z, 2 * SEGGZ_MEMBER, &err), viaz = zlib_view(z);
	assert_int_equal(err, 0);
	assert_same(fast, t);
	assert_same(viaz, t);
	/* reads smaller than a member: zlib from the start */
	struct bytes small = unseal(z, 1000, &err);
	assert_int_equal(err, 0);
	assert_same(small, t);
	free(small.p), free(viaz.p), free(fast.p), free(z.p), free(t.p);
}

static void test_empty_segment_is_a_gzip_file(void **state)
{
	(void)state;
	struct bytes t = { (uint8_t *)"", 0 }, z = seal(t);
	int err;

	assert_true(z.len >= 18); /* a header and a trailer */
	struct bytes out = unseal(z, SEGGZ_MEMBER, &err), viaz = zlib_view(z);
	assert_int_equal(err, 0);
	assert_int_equal(out.len, 0);
	assert_int_equal(viaz.len, 0);
	free(out.p), free(viaz.p), free(z.p);
}

/* A member larger than the read: zlib takes over there, and goes on
 * through the members after it. */
static void test_larger_member_goes_to_zlib(void **state)
{
	(void)state;
	struct bytes a = text(SEGGZ_MEMBER, 2), b = text(SEGGZ_MEMBER + SEGGZ_MEMBER / 2, 3),
	             c = text(SEGGZ_MEMBER / 2, 4);
	struct bytes za = seal(a), zc = seal(c);
	unsigned long bound = compressBound((uLong)b.len) + 64;
	struct bytes zb = { malloc(bound), 0 };
	z_stream s = { 0 };

	assert_int_equal(deflateInit2(&s, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
	s.next_in = b.p, s.avail_in = (uInt)b.len, s.next_out = zb.p, s.avail_out = (uInt)bound;
	assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
	zb.len = bound - s.avail_out;
	deflateEnd(&s);

	struct bytes all = { malloc(za.len + zb.len + zc.len), za.len + zb.len + zc.len };
	memcpy(all.p, za.p, za.len);
	memcpy(all.p + za.len, zb.p, zb.len);
	memcpy(all.p + za.len + zb.len, zc.p, zc.len);
	struct bytes want = { malloc(a.len + b.len + c.len), a.len + b.len + c.len };
	memcpy(want.p, a.p, a.len);
	memcpy(want.p + a.len, b.p, b.len);
	memcpy(want.p + a.len + b.len, c.p, c.len);
	int err;
	struct bytes out = unseal(all, SEGGZ_MEMBER, &err);
	assert_int_equal(err, 0);
	assert_same(out, want);
	free(out.p), free(want.p), free(all.p), free(za.p), free(zb.p), free(zc.p);
	free(a.p), free(b.p), free(c.p);
}

/* A damaged member: the members before it are handed out whole, then the
 * reader fails; it never ends quietly. */
static void test_damaged_member_fails_after_the_ones_before(void **state)
{
	(void)state;
	struct bytes t = text(3 * SEGGZ_MEMBER, 5), z = seal(t);
	size_t ends[8];

	assert_int_equal(member_ends(z, ends, 8), 3);
	for (int i = 0; i < 20; i++) {
		size_t at = ends[0] + 10 + (size_t)random() % (ends[1] - ends[0] - 20);
		uint8_t was = z.p[at];
		z.p[at] ^= (uint8_t)(1u << (random() % 8));
		int err;
		struct bytes out = unseal(z, 2 * SEGGZ_MEMBER, &err);
		assert_int_equal(err, -EBADMSG);
		assert_true(out.len >= SEGGZ_MEMBER);
		assert_memory_equal(out.p, t.p, SEGGZ_MEMBER);
		free(out.p);
		z.p[at] = was;
	}
	free(z.p), free(t.p);
}

static struct bytes joined(struct bytes a, const void *tail, size_t n)
{
	struct bytes j = { malloc(a.len + n + 1), a.len + n };

	assert_non_null(j.p);
	memcpy(j.p, a.p, a.len);
	memcpy(j.p + a.len, tail, n);
	return j;
}

/* Bytes after the last member that start no other are not data (zlib and
 * zcat ignore them); a file cut inside a member is an error, not an end. */
static void test_junk_after_members_and_cut_files(void **state)
{
	(void)state;
	struct bytes t = text(SEGGZ_MEMBER + 5000, 6), z = seal(t);
	static const uint8_t zeros[16], one[1] = { 0x1f };
	const struct {
		const void *p;
		size_t n;
	} tails[] = { { "GARBAGE\n", 8 }, { zeros, sizeof(zeros) }, { one, 1 } };
	int err;

	for (size_t i = 0; i < ARRAY_SIZE(tails); i++) {
		struct bytes j = joined(z, tails[i].p, tails[i].n), out = unseal(j, 2 * SEGGZ_MEMBER, &err);
		assert_int_equal(err, 0);
		assert_same(out, t);
		free(out.p), free(j.p);
	}
	for (size_t cut = 1; cut <= 9; cut += 4) { /* inside the trailer, and the data */
		struct bytes c = { z.p, z.len - cut }, out = unseal(c, 2 * SEGGZ_MEMBER, &err);
		assert_int_equal(err, -EBADMSG);
		free(out.p);
	}
	free(z.p), free(t.p);
}

/* A member whose header carries a CRC of itself (FHCRC) is zlib's: it
 * checks that CRC. */
static void test_a_header_crc_is_checked(void **state)
{
	(void)state;
	struct bytes t = text(4000, 7), z = seal(t);
	struct bytes h = { malloc(z.len + 2), z.len + 2 };
	int err;

	assert_non_null(h.p);
	assert_true(z.len > 10 && (z.p[3] & 0x1e) == 0); /* a bare 10-byte header */
	memcpy(h.p, z.p, 10);
	h.p[3] |= 0x02;
	uLong crc = crc32(0, h.p, 10);
	h.p[10] = (uint8_t)(crc & 0xff);
	h.p[11] = (uint8_t)(crc >> 8 & 0xff);
	memcpy(h.p + 12, z.p + 10, z.len - 10);
	struct bytes out = unseal(h, 2 * SEGGZ_MEMBER, &err);
	assert_int_equal(err, 0);
	assert_same(out, t);
	free(out.p);
	h.p[10] ^= 1;
	out = unseal(h, 2 * SEGGZ_MEMBER, &err);
	assert_int_equal(err, -EBADMSG);
	assert_int_equal(out.len, 0);
	free(out.p), free(h.p), free(z.p), free(t.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_members_read_back_by_both),
		cmocka_unit_test(test_empty_segment_is_a_gzip_file),
		cmocka_unit_test(test_larger_member_goes_to_zlib),
		cmocka_unit_test(test_damaged_member_fails_after_the_ones_before),
		cmocka_unit_test(test_junk_after_members_and_cut_files),
		cmocka_unit_test(test_a_header_crc_is_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
