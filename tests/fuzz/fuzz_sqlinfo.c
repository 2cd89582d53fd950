/* fuzz_sqlinfo.c - statement analysis (daemon/sqlinfo.c): any text is
 * analysed or refused cleanly; an analysed statement has a kind, a
 * fingerprint and normalised text, and a refusal's message quotes none of
 * the input. */
#include "../../daemon/sqlinfo.c"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sqi_info *info;
	char err[256] = "", *sql;

	if (size > 4096 || !(sql = malloc(size + 1)))
		return 0;
	memcpy(sql, data, size);
	sql[size] = 0;
	int r = sqi_analyse(sql, &info, err, sizeof(err));
	CHECK(r == 0 || r == -EINVAL || r == -E2BIG || r == -ENOMEM);
	if (r == 0) {
		for (size_t i = 0; i < info->n; i++) {
			CHECK(info->stmts[i].kind <= SQI_OTHER && strlen(info->stmts[i].fingerprint) == 16);
			CHECK(info->stmts[i].normalized);
			for (size_t j = 0; j < info->stmts[i].ntables; j++)
				CHECK(info->stmts[i].tables[j].name);
		}
		sqi_free(info);
	} else if (r == -EINVAL) {
		CHECK(!strncmp(err, "the statement does not parse", 28) || !strncmp(err, "cannot analyse", 14));
	}
	free(sql);
	return 0;
}
