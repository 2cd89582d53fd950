/* linuxaudit.c - see linuxaudit.h */
#include "linuxaudit.h"

#include <errno.h>
#include <libaudit.h>
#include <unistd.h>

int la_open(struct la *a)
{
	a->sent = a->failed = 0;
	a->fd = audit_open();
	return a->fd < 0 ? -errno : 0;
}

void la_close(struct la *a)
{
	if (a->fd >= 0)
		audit_close(a->fd);
	a->fd = -1;
}

int la_send(struct la *a, const char *text, bool success)
{
	int r = a->fd < 0 ? -1
	                  : audit_log_user_message(a->fd, AUDIT_TRUSTED_APP, text, NULL, NULL, NULL, success);
	if (r <= 0) {
		a->failed++;
		return -EIO;
	}
	a->sent++;
	return 0;
}

bool la_auditd_running(struct la *a)
{
	struct audit_reply rep;

	if (a->fd < 0 || audit_request_status(a->fd) <= 0)
		return false;
	for (int i = 0; i < 10; i++) {
		int r = audit_get_reply(a->fd, &rep, GET_REPLY_BLOCKING, 0);
		if (r > 0 && rep.type == AUDIT_GET)
			return rep.status->enabled && rep.status->pid != 0;
		if (r <= 0)
			break;
	}
	return false;
}
