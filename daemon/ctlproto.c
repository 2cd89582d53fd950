/* ctlproto.c - see ctlproto.h */
#include "ctlproto.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

const struct cp_command cp_commands[CP_NCMDS] = {
	[CP_STATUS] = { "status", CP_SECURITY, "roles, log head, checkpoints, anchors, keys" },
	[CP_RELOAD] = { "reload", CP_ADMIN, "reread the configuration and policies" },
	[CP_KEYS_STATUS] = { "keys-status", CP_SECURITY, "the keystore's epoch and key counts" },
	[CP_KEYS_ROTATE] = { "keys-rotate", CP_ADMIN, "start a new key epoch" },
	[CP_STOP] = { "stop", CP_ADMIN, "stop custosd" },
	[CP_LOG_FOLLOW] = { "log-follow", CP_SECURITY, "new audit records as they are written" },
};

const char *const cp_group_names[3] = { "security", "dpo", "admin" };

int cp_parse(const char *line, size_t len, struct cp_request *ret, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	json_int_t v = 0;
	const char *cmd = NULL;
	int r = -EINVAL;

	if (!j) {
		snprintf(err, errlen, "not JSON: %s", je.text);
		return -EINVAL;
	}
	if (!json_is_object(j) || json_unpack(j, "{s:I, s:s}", "v", &v, "cmd", &cmd)) {
		snprintf(err, errlen, "expected {\"v\": %d, \"cmd\": \"...\"}", CP_VERSION);
	} else if (v != CP_VERSION) {
		snprintf(err, errlen,
		         "protocol version %lld is not supported: this custosd speaks version %d",
		         (long long)v, CP_VERSION);
		r = -EPROTONOSUPPORT;
	} else if (json_object_size(j) != 2) {
		snprintf(err, errlen, "unexpected members besides \"v\" and \"cmd\"");
	} else {
		for (size_t i = 0; i < CP_NCMDS; i++)
			if (!strcmp(cp_commands[i].name, cmd)) {
				ret->cmd = (enum cp_cmd)i;
				r = 0;
			}
		if (r)
			snprintf(err, errlen, "unknown command \"%.64s\"", cmd);
	}
	json_decref(j);
	return r;
}
