/* fuzz_bytea.c - bytea's text forms (daemon/bytea.c), read from values
 * clients write into encrypted bytea columns: any text decodes or gives
 * -EINVAL, and any bytes encoded then decoded are the bytes again. */
#include "../../daemon/bytea.c"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out = BUF_INIT, hex = BUF_INIT, again = BUF_INIT;
	int err = by_decode((const char *)data, size, &out);

	CHECK(err == 0 || err == -EINVAL);
	CHECK(err || out.len <= size);
	by_encode((const char *)data, size, &hex);
	CHECK(!by_decode(hex.p, hex.len, &again));
	CHECK(again.len == size && (!size || !memcmp(again.p, data, size)));
	buf_free(&out);
	buf_free(&hex);
	buf_free(&again);
	return 0;
}
