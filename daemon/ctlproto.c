/* ctlproto.c - see ctlproto.h */
#include "ctlproto.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct cp_command cp_commands[CP_NCMDS] = {
	[CP_STATUS] = { "status", CP_SECURITY, "roles, log head, checkpoints, anchors, keys" },
	[CP_RELOAD] = { "reload", CP_ADMIN, "reread the configuration and policies" },
	[CP_KEYS_STATUS] = { "keys-status", CP_SECURITY, "the keystore's epoch and key counts" },
	[CP_KEYS_ROTATE] = { "keys-rotate", CP_ADMIN, "start a new key epoch" },
	[CP_STOP] = { "stop", CP_ADMIN, "stop custosd" },
	[CP_LOG_FOLLOW] = { "log-follow", CP_SECURITY, "new audit records as they are written" },
	[CP_LOG_READ] = { "log-read", CP_SECURITY, "the log's records, filtered", false, true },
	[CP_LOG_VERIFY] = { "log-verify", CP_SECURITY, "verify the log's chain and signatures" },
	[CP_REQUEST_OPEN] = { "request-open", CP_DPO, "record a subject's request", true },
	[CP_REQUEST_LIST] = { "request-list", CP_DPO, "the requests and their deadlines", true },
	[CP_REQUEST_SHOW] = { "request-show", CP_DPO, "one request", true },
	[CP_REQUEST_EXTEND] = { "request-extend", CP_DPO, "extend a request's deadline, with a reason",
	                        true },
	[CP_REQUEST_APPROVE] = { "request-approve", CP_DPO, "approve an erasure", true },
	[CP_REQUEST_DENY] = { "request-deny", CP_DPO, "deny a request, with its basis", true },
	[CP_REQUEST_RUN] = { "request-run", CP_DPO, "produce the report or carry out the erasure", true },
};

const char *const cp_group_names[3] = { "security", "dpo", "admin" };

static int find_cmd(const char *name, enum cp_cmd *ret)
{
	for (size_t i = 0; i < CP_NCMDS; i++)
		if (!strcmp(cp_commands[i].name, name)) {
			*ret = (enum cp_cmd)i;
			return 0;
		}
	return -EINVAL;
}

int cp_parse(const char *line, size_t len, struct cp_request *ret, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je), *args = NULL;
	json_int_t v = 0;
	const char *cmd = NULL;
	int r = -EINVAL;

	ret->args = NULL;
	if (!j) {
		snprintf(err, errlen, "not JSON: %s", je.text);
		return -EINVAL;
	}
	if (!json_is_object(j) || json_unpack(j, "{s:I, s:s, s?o}", "v", &v, "cmd", &cmd, "args", &args)) {
		snprintf(err, errlen, "expected {\"v\": %d, \"cmd\": \"...\"}", CP_VERSION);
	} else if (v != CP_VERSION) {
		snprintf(err, errlen,
		         "protocol version %lld is not supported: this custosd speaks version %d",
		         (long long)v, CP_VERSION);
		r = -EPROTONOSUPPORT;
	} else if (json_object_size(j) != 2u + (args != NULL)) {
		snprintf(err, errlen, "unexpected members besides \"v\", \"cmd\" and \"args\"");
	} else if (find_cmd(cmd, &ret->cmd)) {
		snprintf(err, errlen, "unknown command \"%.64s\"", cmd);
	} else if (args && !cp_commands[ret->cmd].args && !cp_commands[ret->cmd].dsr) {
		snprintf(err, errlen, "%s takes no arguments", cmd);
	} else if (args && !json_is_object(args)) {
		snprintf(err, errlen, "\"args\" must be an object");
	} else if (!(ret->args = args ? json_dumps(args, JSON_COMPACT) : strdup("{}"))) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
	} else {
		r = 0;
	}
	json_decref(j);
	return r;
}
