/* pgencoding.c - see pgencoding.h */
#include "pgencoding.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* PostgreSQL's names of encodings (pg_wchar.h) and iconv's (glibc). */
static const struct {
	const char *pg, *iconv;
} names[] = {
	{ "LATIN1", "ISO-8859-1" },
	{ "LATIN2", "ISO-8859-2" },
	{ "LATIN3", "ISO-8859-3" },
	{ "LATIN4", "ISO-8859-4" },
	{ "LATIN5", "ISO-8859-9" },
	{ "LATIN6", "ISO-8859-10" },
	{ "LATIN7", "ISO-8859-13" },
	{ "LATIN8", "ISO-8859-14" },
	{ "LATIN9", "ISO-8859-15" },
	{ "LATIN10", "ISO-8859-16" },
	{ "ISO_8859_5", "ISO-8859-5" },
	{ "ISO_8859_6", "ISO-8859-6" },
	{ "ISO_8859_7", "ISO-8859-7" },
	{ "ISO_8859_8", "ISO-8859-8" },
	{ "WIN1250", "CP1250" },
	{ "WIN1251", "CP1251" },
	{ "WIN1252", "CP1252" },
	{ "WIN1253", "CP1253" },
	{ "WIN1254", "CP1254" },
	{ "WIN1255", "CP1255" },
	{ "WIN1256", "CP1256" },
	{ "WIN1257", "CP1257" },
	{ "WIN1258", "CP1258" },
	{ "WIN866", "CP866" },
	{ "WIN874", "CP874" },
	{ "KOI8R", "KOI8-R" },
	{ "KOI8U", "KOI8-U" },
	{ "EUC_JP", "EUC-JP" },
	{ "EUC_CN", "EUC-CN" },
	{ "EUC_KR", "EUC-KR" },
	{ "EUC_TW", "EUC-TW" },
	{ "EUC_JIS_2004", "EUC-JISX0213" },
	{ "SJIS", "SHIFT_JIS" },
	{ "SHIFT_JIS_2004", "SHIFT_JISX0213" },
	{ "BIG5", "BIG5" },
	{ "GBK", "GBK" },
	{ "GB18030", "GB18030" },
	{ "UHC", "CP949" },
	{ "JOHAB", "JOHAB" },
};

#define NONE ((iconv_t)-1)

void pge_init(struct pg_encoding *e)
{
	*e = (struct pg_encoding){ .utf8 = true, .to = NONE, .from = NONE };
}

void pge_free(struct pg_encoding *e)
{
	if (e->to != NONE)
		iconv_close(e->to);
	if (e->from != NONE)
		iconv_close(e->from);
	pge_init(e);
}

void pge_set(struct pg_encoding *e, const char *name)
{
	pge_free(e);
	if (!strcasecmp(name, "UTF8") || !strcasecmp(name, "SQL_ASCII"))
		return;
	e->utf8 = false;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcasecmp(name, names[i].pg)) {
			e->to = iconv_open("UTF-8", names[i].iconv);
			e->from = iconv_open(names[i].iconv, "UTF-8");
		}
	e->unknown = e->to == NONE || e->from == NONE;
}

/* Appends the conversion of in[0..n) by cd to out: 0, -EILSEQ, -ENOMEM. */
static int convert(iconv_t cd, const char *in, size_t n, struct buf *out)
{
	char *src = (char *)in;
	size_t left = n;

	(void)iconv(cd, NULL, NULL, NULL, NULL); /* a fresh state */
	while (left) {
		if (!buf_reserve(out, left * 4 + 16))
			return -ENOMEM;
		char *dst = out->p + out->len;
		size_t room = out->cap - out->len;
		size_t r = iconv(cd, &src, &left, &dst, &room);
		out->len = (size_t)(dst - out->p);
		if (r == (size_t)-1 && errno != E2BIG)
			return -EILSEQ; /* invalid, incomplete, or without an equivalent */
	}
	for (;;) { /* what the converter holds back (CP1258: a letter a combining mark may follow) */
		if (!buf_reserve(out, 64))
			return -ENOMEM;
		char *dst = out->p + out->len;
		size_t room = out->cap - out->len;
		size_t r = iconv(cd, NULL, NULL, &dst, &room);
		out->len = (size_t)(dst - out->p);
		if (r != (size_t)-1)
			return 0;
		if (errno != E2BIG)
			return -EILSEQ;
	}
}

int pge_to_utf8(const struct pg_encoding *e, const char *v, size_t n, struct buf *conv, const char **ret,
                size_t *ret_len)
{
	*ret = v;
	*ret_len = n;
	if (e->utf8)
		return utf8_valid(v, n) ? 0 : -EILSEQ;
	if (e->unknown || memchr(v, 0, n))
		return -EILSEQ;
	int err = convert(e->to, v, n, conv);
	*ret = conv->p ? conv->p : "";
	*ret_len = conv->len;
	return err;
}

int pge_from_utf8(const struct pg_encoding *e, struct buf *out, size_t from)
{
	if (e->utf8)
		return 0;
	if (e->unknown)
		return -ERANGE;
	struct buf conv = BUF_SECRET;
	int err = convert(e->from, out->p + from, out->len - from, &conv);
	out->len = from;
	if (!err)
		buf_add(out, conv.p, conv.len);
	buf_free(&conv);
	return err ? (err == -EILSEQ ? -ERANGE : err) : out->failed ? -ENOMEM : 0;
}
