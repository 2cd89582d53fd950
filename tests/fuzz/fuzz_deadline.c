/* fuzz_deadline.c - dates as custosctl request takes them (daemon/deadline.c):
 * any bytes give -EINVAL or a date that formats back to the same text, and
 * whose deadlines fall after it. */
#include "../../daemon/deadline.c"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[32], again[11];
	struct dl_date d;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	if (dl_parse(s, &d))
		return 0;
	dl_format(&d, again);
	CHECK(!strcmp(again, s));
	for (int r = DL_GDPR; r <= DL_CCPA; r++) {
		struct dl_date first = dl_due((enum dl_regime)r, &d, false),
		               ext = dl_due((enum dl_regime)r, &d, true);
		CHECK(dl_days(&first) > dl_days(&d) && dl_days(&ext) > dl_days(&first));
		CHECK(dl_extension_allowed((enum dl_regime)r, &d, &first));
	}
	struct dl_date c = dl_confirm_by(&d);
	CHECK(dl_days(&c) - dl_days(&d) >= 12 && dl_days(&c) - dl_days(&d) <= 16);
	return 0;
}
