/* fuzz_logkey - libFuzzer target for the key file and state file parsers
 * (logkey.c): logkey_parse() and logstate_parse() on the input. What
 * parses must format back (logkey_format, logstate_format) to text that
 * parses to the same keys. */
#include "../../daemon/logkey.c"

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct logkeys k, k2;
	struct logstate s, s2;
	char err[256];

	err[0] = '\0';
	if (logkey_parse(text, size, &k, err, sizeof(err)) == 0) {
		struct buf b = BUF_INIT;
		logkey_format(&k, k.has_seed, &b);
		CHECK(!b.failed);
		CHECK(logkey_parse(b.p, b.len, &k2, err, sizeof(err)) == 0);
		CHECK(!memcmp(&k, &k2, sizeof(k)));
		buf_free(&b);
	} else {
		CHECK(!strncmp(err, "line ", 5));
	}

	int r = logstate_parse(text, size, &s);
	CHECK(r == 0 || r == -EINVAL || r == -EBADMSG);
	if (r == 0) {
		struct buf b = BUF_INIT;
		logstate_format(&s, &b);
		CHECK(!b.failed);
		CHECK(logstate_parse(b.p, b.len, &s2) == 0 && !memcmp(&s, &s2, sizeof(s)));
		buf_free(&b);
	}
	return 0;
}
