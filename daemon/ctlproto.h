/* ctlproto.h - the control protocol between custosctl and custosd's
 * control role, over the Unix control socket. One request per connection:
 * a JSON object on one line, at most control_max_request bytes,
 *
 *   {"v": 1, "cmd": "status"}
 *
 * answered with one JSON line, {"v":1,"ok":true,"result":{...}} or
 * {"v":1,"ok":false,"error":"..."}. A request of another version gets an
 * error saying which version this custosd speaks. After the reply to
 * log-follow, the connection carries the log's new records, one JSON line
 * each, until the client closes it. */
#ifndef CUSTOS_CTLPROTO_H
#define CUSTOS_CTLPROTO_H

#include <stddef.h>

#include "util.h"

#define CP_VERSION 1

enum cp_group { CP_SECURITY, CP_DPO, CP_ADMIN };

enum cp_cmd { CP_STATUS, CP_RELOAD, CP_KEYS_STATUS, CP_KEYS_ROTATE, CP_STOP, CP_LOG_FOLLOW, CP_NCMDS };

struct cp_command {
	const char *name;
	enum cp_group group; /* who may run it */
	const char *summary;
};

extern const struct cp_command cp_commands[CP_NCMDS];
extern const char *const cp_group_names[3];

struct cp_request {
	enum cp_cmd cmd;
};

/* Parses one request line. 0, or -EINVAL / -EPROTONOSUPPORT with err
 * saying what is wrong (safe to send back to the client). */
int cp_parse(const char *line, size_t len, struct cp_request *ret, char *err, size_t errlen) WUR;

#endif
