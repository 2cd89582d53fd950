/* fuzz_copytext.c - COPY's text and CSV formats as the proxy reads them on
 * their way in (daemon/copytext.c), under their default options and others
 * (the first byte picks them): rows cut from a stream split at any point
 * are the rows cut from it whole; every field of every row reads without
 * a fault; and any value escaped, then read back, is the value again, one
 * field. The options themselves, read as COPY gives them, never fault. The
 * binary format's rows read within their bytes, and a row's beginning alone
 * reads as one that goes on. */
#include "../../daemon/copytext.c"
#include "fuzz_common.h"

#define MAX_ROWS 256

/* The rows of data[0..n), fed in pieces of `step` bytes as the proxy's
 * pending buffer gets them: their ends, into ends; how many, or -1. */
static int rows(const struct ct_format *f, const char *data, size_t n, size_t step, size_t *ends)
{
	size_t at = 0, have = 0, scanned = 0;
	bool quoted = false;
	int k = 0;
	struct ct_line l;

	while (at < n || have < n) {
		have = have + step < n ? have + step : n;
		int r;
		while ((r = ct_next_line(f, data + at, have - at, &scanned, &quoted, &l)) == 1) {
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
	int nf = ct_split(fmt, s, size, f, 64);

	CHECK(nf == -E2BIG || (nf >= 1 && nf <= 64));
	for (int i = 0; i < nf; i++) {
		buf_reset(&v);
		if (ct_value(fmt, &f[i], &v))
			continue;
		buf_reset(&esc);
		ct_put(fmt, &esc, v.p ? v.p : "", v.len);
		CHECK(ct_split(fmt, esc.p ? esc.p : "", esc.len, g, 2) == 1);
		/* (text writes a value that reads as the NULL string as it is, as PostgreSQL does) */
		CHECK(!ct_is_null(fmt, &g[0]) || (!fmt->csv && esc.len == fmt->null_len));
		buf_reset(&again);
		CHECK(!ct_value(fmt, &g[0], &again));
		CHECK(again.len == v.len && (!v.len || !memcmp(again.p, v.p, v.len)));
	}
	buf_free(&v);
	buf_free(&esc);
	buf_free(&again);
}

/* Option sets: {format, delimiter, null, quote, escape}, NULL the default. */
static const char *const options[][5] = {
	{ "text", NULL, NULL, NULL, NULL },  { "csv", NULL, NULL, NULL, NULL },
	{ "text", ";", "NULL", NULL, NULL }, { "text", "|", "", NULL, NULL },
	{ "csv", ";", "N/A", NULL, NULL },   { "csv", "|", NULL, "'", "\\" },
	{ "csv", "\t", "\\N", "$", "$" },    { "csv", ",", NULL, "\"", "!" },
};

static void format(struct ct_format *f, const char *const o[5])
{
	static const char *const names[] = { "format", "delimiter", "null", "quote", "escape" };

	memset(f, 0, sizeof(*f));
	for (int i = 0; i < 5; i++)
		CHECK(!o[i] || ct_format_set(f, names[i], o[i]));
	CHECK(ct_format_finish(f));
}

/* Options as a client may write them: name NUL value, from the input. */
static void any_options(const char *s, size_t size)
{
	static const char *const names[] = { "format", "delimiter", "null", "quote", "escape", "encoding" };
	char v[80];
	struct ct_format f = { 0 };
	struct buf sql = BUF_INIT;
	size_t n = size < sizeof(v) - 1 ? size : sizeof(v) - 1;

	memcpy(v, s, n);
	v[n] = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		(void)ct_format_set(&f, names[i], v + (n ? i % n : 0));
	if (ct_format_finish(&f))
		ct_format_sql(&f, true, &sql);
	buf_free(&sql);
}

/* The binary format: a header (or none), then rows of nfields. */
static void binary(const uint8_t *p, size_t n, size_t nfields)
{
	struct ct_field f[8];
	size_t at = 0, len = 0;
	int r = ct_binary_header(p, n, &len);

	CHECK(r >= -1 && r <= 1 && (r != 1 || (len >= 19 && len <= n)));
	at = r == 1 ? len : 0;
	while (at < n && (r = ct_binary_row(p + at, n - at, f, nfields, &len)) > 0) {
		CHECK(len >= 2 && len <= n - at && (r == 1 || len == 2));
		for (size_t i = 0; r == 1 && i < nfields; i++)
			CHECK(!f[i].p || ((const uint8_t *)f[i].p >= p + at &&
			                  (const uint8_t *)f[i].p + f[i].len <= p + at + len));
		CHECK(ct_binary_row(p + at, len - 1, f, nfields, &len) == 0 || r == 2);
		at += r == 2 ? n - at : len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ct_format f;
	size_t whole[MAX_ROWS], split[MAX_ROWS];

	if (!size)
		return 0;
	format(&f, options[data[0] % (sizeof(options) / sizeof(options[0]))]);
	const char *s = (const char *)data + 1;
	size--;
	int n = rows(&f, s, size, size ? size : 1, whole);
	int m = rows(&f, s, size, 1 + (size % 7), split);
	CHECK(n == m);
	for (int i = 0; i < n; i++)
		CHECK(whole[i] == split[i]);
	round_trips(&f, s, size);
	any_options(s, size);
	binary((const uint8_t *)s, size, data[0] % 8);
	return 0;
}
