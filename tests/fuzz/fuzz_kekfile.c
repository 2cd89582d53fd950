/* fuzz_kekfile.c - the KEK file parser (daemon/kekfile.c): any bytes give
 * a clean error or a file that formats back to the same bytes. */
#include "../../daemon/kekfile.c"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kek_file f;
	char err[256], again[KEK_FILE_LEN + 1];

	if (kek_parse((const char *)data, size, &f, err, sizeof(err))) {
		CHECK(err[0]);
		return 0;
	}
	format_file(&f, again);
	/* hex is accepted in either case; the formatter writes lower case */
	CHECK(size == KEK_FILE_LEN && !strncasecmp(again, (const char *)data, size));
	return 0;
}
