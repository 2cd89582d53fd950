/* fuzz_pgproto_startup.c - the startup packet (daemon/pgproto.c):
 * SSLRequest, GSSENCRequest, CancelRequest or a 3.x startup with its
 * parameters, and nothing read outside the packet. */
#include "../../daemon/pgproto.c"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pgp_startup s;
	size_t n;

	int r = pgp_frame_startup(data, size, &n);
	CHECK(r == 0 || r == 1 || r == -EMSGSIZE || r == -EBADMSG);
	if (r != 1)
		return 0;
	CHECK(n >= 8 && n <= size && n <= PGP_MAX_STARTUP);
	uint8_t *copy = malloc(n);
	CHECK(copy);
	memcpy(copy, data, n);
	r = pgp_parse_startup(copy, n, &s);
	CHECK(r == 0 || r == -EBADMSG || r == -EPROTONOSUPPORT);
	if (r == 0 && s.kind == PGP_STARTUP) {
		CHECK(pgp_startup_param(&s, "user") != NULL && s.nparams <= PGP_MAX_PARAMS);
		for (size_t i = 0; i < s.nparams; i++)
			CHECK((const uint8_t *)s.values[i] + strlen(s.values[i]) < copy + n);
	}
	free(copy);
	return 0;
}
