/* fuzz_config.c - custosd's configuration parser (daemon/config.c): any
 * bytes give file:line errors or settings that dump and parse back to the
 * same settings. */
#include "../../daemon/config.c"
#include "fuzz_common.h"

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
	buf_free(&errs);
	buf_free(&errs2);
	buf_free(&out);
	buf_free(&out2);
	cfg_free(c);
	cfg_free(again);
	return 0;
}
