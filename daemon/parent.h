/* parent.h - custosd's parent process: it forks the roles (role.h),
 * links them, restarts a role that dies, reloads the configuration on
 * SIGHUP or on request, stops them in order on SIGTERM, and speaks to
 * systemd (READY, RELOADING, STOPPING, STATUS, WATCHDOG). */
#ifndef CUSTOS_PARENT_H
#define CUSTOS_PARENT_H

#include "config.h"

struct parent_opts {
	const char *config_path;
	struct cfg *cfg;   /* checked; the parent takes it over */
	char *config_text; /* the file's bytes, sent to the roles on reload */
};

/* Runs custosd until it is stopped. Returns the process's exit status. */
int parent_run(struct parent_opts *o);

/* Loads and checks a configuration file and the policies it names, and
 * refuses secret files others can read. Problems go to errs as file:line
 * lines; returns their number, or -errno when the file cannot be read. */
int parent_check_config(const char *path, struct cfg **ret, char **ret_text, struct buf *errs);

#endif
