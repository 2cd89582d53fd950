/* fuzz_ipc.c - the IPC message decoder (daemon/ipc.c): any bytes are
 * rejected, or decode into fields matching the type's schema that encode
 * back to the very same bytes. */
#include "../../daemon/ipc.c"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[IPC_MAX_MSG + 1], again[IPC_MAX_MSG];
	struct ipc_msg m;

	if (size > IPC_MAX_MSG)
		return 0;
	memcpy(buf, data, size);
	if (ipc_decode(buf, size, &m))
		return 0;
	const char *schema = ipc_schema(m.type);
	CHECK(schema && m.nfields == strlen(schema));
	for (size_t i = 0; i < m.nfields; i++) {
		CHECK(m.f[i].kind == schema[i]);
		if (m.f[i].kind == 's')
			CHECK(strlen(m.f[i].s.p) == m.f[i].s.len && m.f[i].s.len <= IPC_MAX_STR);
	}
	ssize_t n = ipc_encode(&m, again);
	CHECK(n == (ssize_t)size && !memcmp(again, data, size));
	return 0;
}
