/* fuzz_reportsig.c - what `custosctl report verify` reads from a report
 * directory (daemon/reportsig.c): SHA256SUMS and SHA256SUMS.sig. Any
 * bytes give a parse or a clean error. */
#include "../../daemon/reportsig.c"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rs_sums sums;
	struct rs_sig sig;
	char err[256] = "";

	int r = rs_parse_sums((const char *)data, size, &sums, err, sizeof(err));
	CHECK(r == 0 || (r == -EINVAL && err[0]));
	if (r == 0) {
		CHECK(sums.n >= 1 && sums.n <= RS_MAX_FILES);
		for (size_t i = 0; i < sums.n; i++)
			CHECK(good_name(sums.f[i].name, strlen(sums.f[i].name)));
	}
	err[0] = 0;
	r = rs_parse_sig((const char *)data, size, &sig, err, sizeof(err));
	CHECK(r == 0 || (r == -EINVAL && err[0]));
	return 0;
}
