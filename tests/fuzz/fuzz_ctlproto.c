/* fuzz_ctlproto.c - the control protocol's request decoder
 * (daemon/ctlproto.c): any bytes give a known command or a clean error. */
#include "../../daemon/ctlproto.c"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cp_request req;
	char err[256] = "";

	int r = cp_parse((const char *)data, size, &req, err, sizeof(err));
	CHECK(r == 0 || r == -EINVAL || r == -EPROTONOSUPPORT || r == -ENOMEM);
	if (r == 0) {
		CHECK(req.cmd < CP_NCMDS);
		CHECK(req.args && req.args[0] == '{');
		CHECK(!strcmp(req.args, "{}") || cp_commands[req.cmd].dsr);
		free(req.args);
	} else
		CHECK(err[0] && memchr(err, 0, sizeof(err)));
	return 0;
}
