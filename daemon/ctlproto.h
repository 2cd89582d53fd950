/* ctlproto.h - the control protocol between custosctl and custosd's
 * control role, over the Unix control socket. One request per connection:
 * a JSON object on one line, at most control_max_request bytes,
 *
 *   {"v": 1, "cmd": "status"}
 *   {"v": 1, "cmd": "request-show", "args": {"id": 7}}
 *
 * answered with one JSON line, {"v":1,"ok":true,"result":{...}} or
 * {"v":1,"ok":false,"error":"..."}. A request of another version gets an
 * error saying which version this custosd speaks. After the reply to
 * log-follow, the connection carries the log's new records, one JSON line
 * each, until the client closes it. */
#ifndef CUSTOS_CTLPROTO_H
#define CUSTOS_CTLPROTO_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define CP_VERSION 1

enum cp_group { CP_SECURITY, CP_DPO, CP_ADMIN };

enum cp_cmd {
	CP_STATUS,
	CP_RELOAD,
	CP_KEYS_STATUS,
	CP_KEYS_ROTATE,
	CP_STOP,
	CP_LOG_FOLLOW,
	CP_LOG_READ,   /* records, streamed: custosctl log show | export without --dir */
	CP_LOG_VERIFY, /* the chain and signatures, with the log's public key */
	/* subject requests: the dsr role answers them (dsr.h) */
	CP_REQUEST_OPEN,
	CP_REQUEST_LIST,
	CP_REQUEST_SHOW,
	CP_REQUEST_EXTEND,
	CP_REQUEST_APPROVE,
	CP_REQUEST_DENY,
	CP_REQUEST_RUN,
	CP_NCMDS
};

struct cp_command {
	const char *name;
	enum cp_group group; /* who may run it */
	const char *summary;
	bool dsr;  /* answered by the dsr role, with the request's arguments */
	bool args; /* takes arguments (and so does every dsr command) */
};

extern const struct cp_command cp_commands[CP_NCMDS];
extern const char *const cp_group_names[3];

struct cp_request {
	enum cp_cmd cmd;
	char *args; /* the "args" object, compact JSON ("{}" when none); free() it */
};

/* Parses one request line. 0, or -EINVAL / -EPROTONOSUPPORT with err
 * saying what is wrong (safe to send back to the client). Only commands
 * answered by the dsr role take arguments; their checking is the dsr's. */
int cp_parse(const char *line, size_t len, struct cp_request *ret, char *err, size_t errlen) WUR;

#endif
