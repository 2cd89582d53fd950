/* ctl.h - custosctl's command tables. Each command module exports a table;
 * custosctl.c dispatches on the first words of the command line.
 * Exit codes: 0 success, 1 the checked thing is bad (verify FAIL, invalid
 * policy), 2 usage or I/O error. */
#ifndef CUSTOS_CTL_H
#define CUSTOS_CTL_H

#include <stdbool.h>
#include <stddef.h>

#define EXIT_BAD 1
#define EXIT_USAGE 2

struct ctl_cmd {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
	const char *summary;
};

struct ctl_group {
	const char *name;
	const struct ctl_cmd *cmds;
	size_t ncmds;
	const char *summary;
};

extern const struct ctl_group ctl_log_group;
extern const struct ctl_group ctl_policy_group;
extern const struct ctl_group ctl_keys_group;
extern const struct ctl_group ctl_request_group, ctl_report_group;
/* A group with ncmds 0 is a command on its own: cmds[0] runs with argv[0]
 * its name. */
extern const struct ctl_group ctl_encrypt_group, ctl_db_group;
extern const struct ctl_group ctl_status_group, ctl_reload_group, ctl_stop_group;

/* Sends a control request to custosd (socket: NULL for $CUSTOS_SOCKET or
 * /run/custos/control.sock) and prints the result, with show or as JSON.
 * Returns the exit code. */
struct json_t;
/* `custosctl log follow`, through the control socket. */
int ctl_log_follow(int argc, char **argv);
int ctl_daemon_call(const char *socket, const char *cmd, bool json, int timeout_ms,
                    void (*show)(struct json_t *));
/* A command's result object (NULL when it failed: the error was said). */
struct json_t *ctl_daemon_result(const char *socket, const char *cmd, struct json_t *args, int timeout_ms);
/* A command whose answer streams records (log-read): fn gets each one.
 * 0, EXIT_BAD (a damaged record, said) or EXIT_USAGE. */
int ctl_daemon_stream(const char *socket, const char *cmd, struct json_t *args,
                      int (*fn)(void *arg, struct json_t *rec, const char *line, size_t len), void *arg);
/* The same with the command's arguments (a JSON object). */
int ctl_daemon_call_args(const char *socket, const char *cmd, struct json_t *args, bool json, int timeout_ms,
                         void (*show)(struct json_t *));

/* Prints "custosctl: <message>" to stderr and returns EXIT_USAGE. */
int ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
