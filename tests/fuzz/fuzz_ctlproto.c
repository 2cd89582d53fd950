/* fuzz_ctlproto.c - the control protocol's request decoder
 * (daemon/ctlproto.c): any bytes give a known command or a clean error. */
#include "../../daemon/ctlproto.c"
#include "control_log.h"
#include "fuzz_common.h"
#include "logread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cp_request req;
	char err[256] = "";

	int r = cp_parse((const char *)data, size, &req, err, sizeof(err));
	CHECK(r == 0 || r == -EINVAL || r == -EPROTONOSUPPORT || r == -ENOMEM);
	if (r == 0) {
		CHECK(req.cmd < CP_NCMDS);
		CHECK(req.args && req.args[0] == '{');
		CHECK(!strcmp(req.args, "{}") || cp_commands[req.cmd].args || cp_commands[req.cmd].dsr);
		if (req.cmd == CP_LOG_READ) { /* the filter's own checks */
			struct lrd_filter f;
			char e[256] = "";
			if (cls_filter(req.args, &f, e, sizeof(e)) == 0) {
				CHECK(!f.subject_ref || strlen(f.subject_ref) == 64);
				free((char *)f.type);
				free((char *)f.subject_ref);
			} else {
				CHECK(e[0]);
			}
		}
		free(req.args);
	} else
		CHECK(err[0] && memchr(err, 0, sizeof(err)));
	return 0;
}
