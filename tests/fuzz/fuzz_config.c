/* fuzz_config.c - custosd's configuration parser (daemon/config.c): any
 * bytes give file:line errors or settings that dump and parse back to the
 * same settings; and each role's text (cfg_text_keeping) parses to them
 * without the secrets it does not keep. */
#include "../../daemon/config.c"
#include "fuzz_common.h"

static bool same(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* A role's text parses as the whole did, with only the kept secrets, on
 * the same lines (cfg_dump shows a secret as "(set)"). */
static void check_keeping(const uint8_t *data, size_t size, const struct cfg *whole, unsigned keep)
{
	struct cfg *c = cfg_new();
	struct buf text = BUF_INIT, errs = BUF_INIT, d1 = BUF_INIT, d2 = BUF_INIT;

	CHECK(c && !cfg_text_keeping((const char *)data, size, keep, &text));
	CHECK(cfg_parse(c, "role", text.p, text.len, &errs) == 0);
	size_t lines = 0, lines_in = 0;
	for (size_t i = 0; i < text.len; i++)
		lines += text.p[i] == '\n';
	for (size_t i = 0; i < size; i++)
		lines_in += data[i] == '\n';
	CHECK(lines == lines_in);
	CHECK(same(c->database, keep & CFG_SECRET_DATABASE ? whole->database : NULL));
	CHECK(same(c->keystore, keep & CFG_SECRET_KEYSTORE ? whole->keystore : NULL));
	struct cfg *w = cfg_new();
	CHECK(w && cfg_parse(w, "whole", (const char *)data, size, &errs) == 0);
	cfg_keep_secrets(w, keep);
	cfg_dump(c, &d1);
	cfg_dump(w, &d2);
	CHECK(d1.len == d2.len && !memcmp(d1.p, d2.p, d1.len));
	cfg_free(w);
	cfg_free(c);
	buf_free(&text);
	buf_free(&errs);
	buf_free(&d1);
	buf_free(&d2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg *c = cfg_new(), *again = cfg_new();
	struct buf errs = BUF_INIT, out = BUF_INIT, out2 = BUF_INIT, errs2 = BUF_INIT;

	CHECK(c && again);
	unsigned n = cfg_parse(c, "fuzz.conf", (const char *)data, size, &errs);
	CHECK((n == 0) == (errs.len == 0));
	for (size_t i = 0; i < errs.len;
	     i = (size_t)((char *)memchr(errs.p + i, '\n', errs.len - i) - errs.p) + 1)
		CHECK(!strncmp(errs.p + i, "fuzz.conf:", 10));
	if (n == 0 && !c->database && !c->keystore) {
		cfg_dump(c, &out);
		CHECK(cfg_parse(again, "dump", out.p, out.len, &errs2) == 0);
		cfg_dump(again, &out2);
		CHECK(out.len == out2.len && !memcmp(out.p, out2.p, out.len));
	}
	for (unsigned keep = 0; n == 0 && keep < 4; keep++)
		check_keeping(data, size, c, keep);
	buf_free(&errs);
	buf_free(&errs2);
	buf_free(&out);
	buf_free(&out2);
	cfg_free(c);
	cfg_free(again);
	return 0;
}
