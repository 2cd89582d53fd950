/* fuzz_policy - the policy parser (libyaml document walk, key tables,
 * error messages) on arbitrary bytes. */
#include "../../daemon/policy.c"

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy *p = pol_new();
	struct buf errs = BUF_INIT;

	CHECK(p);
	int r = pol_parse(p, "fuzz.yaml", (const char *)data, size, &errs);
	CHECK(r == 0 || r == -EFBIG || r == -ENOMEM);
	pol_check(p, &errs);
	/* every problem is reported, one line each, and counted */
	size_t lines = 0;
	for (size_t i = 0; i < errs.len; i++)
		lines += errs.p[i] == '\n';
	CHECK(lines >= p->errors && (p->errors > 0) == (lines > 0));
	for (size_t i = 0; i < p->ntables; i++)
		CHECK(pol_table(p, p->tables[i].name) != NULL);
	buf_free(&errs);
	pol_free(p);
	return 0;
}
