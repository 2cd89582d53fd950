/* fuzz_pgproto_stream.h - the body shared by the frontend and backend
 * message fuzz targets: the input is a stream of messages; each is framed
 * within its declared length and checked (with CHECK_MESSAGE, the side's
 * checker) on a copy of its body alone, so ASan sees any read past it;
 * EACH_MESSAGE, when defined, is given each one as well. */
#include "../../daemon/pgproto.c"
#include "fuzz_common.h"

#define MAX (64u * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pgp_msg m;
	size_t at = 0;
	int r;

	while ((r = pgp_frame(data + at, size - at, MAX, &m)) == 1) {
		CHECK(m.size == m.len + 5 && m.size <= size - at && m.body == data + at + 5);
		uint8_t *body = malloc(m.len ? m.len : 1);
		CHECK(body);
		memcpy(body, m.body, m.len);
		m.body = body;
		r = CHECK_MESSAGE(&m);
		CHECK(r == 0 || r == -EBADMSG || r == -EPROTO || r == -ENOMEM);
#ifdef EACH_MESSAGE
		EACH_MESSAGE(&m);
#endif
		free(body);
		at += m.size;
	}
	CHECK(r == 0 || r == -EMSGSIZE || r == -EBADMSG);
	return 0;
}
