/* fuzz_copytext.c - COPY's text and CSV formats as the proxy reads them on
 * their way in (daemon/copytext.c): rows cut from a stream split at any point are the
 * rows cut from it whole; every field of every row reads without a fault;
 * and any value escaped, then read back, is the value again, one field. */
#include "../../daemon/copytext.c"
#include "fuzz_common.h"

#define MAX_ROWS 256

static int next_line(bool csv, const char *data, size_t n, size_t *scanned, bool *quoted, struct ct_line *l)
{
	return csv ? ct_csv_next_line(data, n, scanned, quoted, l) : ct_next_line(data, n, scanned, l);
}

/* The rows of data[0..n), fed in pieces of `step` bytes as the proxy's
 * pending buffer gets them: their ends, into ends; how many, or -1. */
static int rows(bool csv, const char *data, size_t n, size_t step, size_t *ends)
{
	size_t at = 0, have = 0, scanned = 0;
	bool quoted = false;
	int k = 0;
	struct ct_line l;

	while (at < n || have < n) {
		have = have + step < n ? have + step : n;
		int r;
		while ((r = next_line(csv, data + at, have - at, &scanned, &quoted, &l)) == 1) {
			CHECK(l.eol == 1 || l.eol == 2);
			at += l.len + l.eol;
			CHECK(at <= have && data[at - 1] == '\n');
			if (k == MAX_ROWS)
				return k;
			ends[k++] = at;
		}
		if (r < 0)
			return -1;
		if (have == n)
			break;
	}
	return k;
}

/* Every field of s[0..size) in format fmt reads without a fault, and its
 * value written back and read again is the same value, in one field that
 * is not NULL. */
static void round_trips(const struct ct_format *fmt, const char *s, size_t size)
{
	struct ct_field f[64], g[2];
	struct buf v = BUF_INIT, esc = BUF_INIT, again = BUF_INIT;
	int nf = fmt->split(s, size, f, 64);

	CHECK(nf == -E2BIG || (nf >= 1 && nf <= 64));
	for (int i = 0; i < nf; i++) {
		buf_reset(&v);
		if (fmt->value(&f[i], &v))
			continue;
		buf_reset(&esc);
		fmt->put(&esc, v.p ? v.p : "", v.len);
		CHECK(fmt->split(esc.p ? esc.p : "", esc.len, g, 2) == 1 && !fmt->is_null(&g[0]));
		buf_reset(&again);
		CHECK(!fmt->value(&g[0], &again));
		CHECK(again.len == v.len && (!v.len || !memcmp(again.p, v.p, v.len)));
	}
	buf_free(&v);
	buf_free(&esc);
	buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	size_t whole[MAX_ROWS], split[MAX_ROWS];

	for (int csv = 0; csv < 2; csv++) {
		int n = rows(csv, s, size, size ? size : 1, whole);
		int m = rows(csv, s, size, 1 + (size % 7), split);
		CHECK(n == m);
		for (int i = 0; i < n; i++)
			CHECK(whole[i] == split[i]);
	}
	round_trips(&ct_text, s, size);
	round_trips(&ct_csv, s, size);
	return 0;
}
