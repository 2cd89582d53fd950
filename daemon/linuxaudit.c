/* linuxaudit.c - see linuxaudit.h */
#include "linuxaudit.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
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
	/* The kernel only tells a holder of CAP_AUDIT_CONTROL which daemon it
	 * talks to, and custosd does not hold it: look for the process. */
	DIR *d = opendir("/proc");
	bool found = false;

	(void)a;
	for (struct dirent *e; d && !found && (e = readdir(d));) {
		char path[300], comm[32] = "";
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (f && fgets(comm, sizeof(comm), f))
			found = !strcmp(comm, "auditd\n");
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return found;
}
