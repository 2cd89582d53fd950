/* linuxaudit.c - see linuxaudit.h */
#include "linuxaudit.h"

#include <dirent.h>
#include <signal.h>
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

/* The pid in auditd's pid file, if that process exists. kill(pid, 0)
 * answers even when /proc hides other users' processes (ProtectProc=). */
static bool pidfile_alive(const char *path)
{
	FILE *f = fopen(path, "r");
	long pid = 0;

	if (!f)
		return false;
	bool ok = fscanf(f, "%ld", &pid) == 1 && pid > 1;
	fclose(f);
	return ok && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* Whether a process of this name is visible in /proc. */
static bool process_named(const char *name)
{
	DIR *d = opendir("/proc");
	bool found = false;

	for (struct dirent *e; d && !found && (e = readdir(d));) {
		char path[300], comm[32] = "";
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (f && fgets(comm, sizeof(comm), f)) {
			comm[strcspn(comm, "\n")] = 0;
			found = !strcmp(comm, name);
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return found;
}

bool la_auditd_running(struct la *a)
{
	/* The kernel tells only a holder of CAP_AUDIT_CONTROL which daemon it
	 * talks to, and custosd does not hold it: look for the process. */
	(void)a;
	return pidfile_alive("/run/auditd.pid") || process_named("auditd");
}
