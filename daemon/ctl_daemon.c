/* ctl_daemon.c - custosctl commands that talk to a running custosd over
 * its control socket (ctlproto.h): status, reload, stop, and keys status
 * and rotate when no --db is given. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "ctlproto.h"
#include "logshow.h"

#define DEFAULT_SOCKET "/run/custos/control.sock"
#define MAX_REPLY (1u << 20)

static const char *socket_path(const char *opt)
{
	const char *env = getenv("CUSTOS_SOCKET");
	return opt ? opt : env && *env ? env : DEFAULT_SOCKET;
}

/* What came after the reply's line (log-follow's first records). */
static struct {
	char *p;
	size_t len;
} follow_rest;

/* Sends {"v":1,"cmd":cmd[,"args":args]} and reads the reply's line.
 * NULL (having said why) when custosd cannot be reached or answers
 * nonsense. With ret_fd the connection stays open for what follows. */
static json_t *request_on(const char *path, const char *cmd, json_t *args, int timeout_ms, int *ret_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char *line = NULL, *buf = malloc(MAX_REPLY + 1), *nl = NULL;
	size_t len = 0;
	json_t *req = args ? json_pack("{s:i, s:s, s:O}", "v", CP_VERSION, "cmd", cmd, "args", args)
	                   : json_pack("{s:i, s:s}", "v", CP_VERSION, "cmd", cmd);

	if (req)
		line = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (fd < 0 || !buf || !line || strlen(path) >= sizeof(sa.sun_path))
		goto fail;
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "custosctl: %s: %s%s\n", path, strerror(errno),
		        errno == ENOENT || errno == ECONNREFUSED ? " (is custosd running?)"
		        : errno == EACCES                        ? " (are you in the control socket's group?)"
		                                                 : "");
		goto out;
	}
	ssize_t n = (ssize_t)strlen(line);
	line[n] = '\n'; /* json_dumps's NUL: the line's end */
	/* custosd may have answered and closed already (a refusal): read it */
	if (send(fd, line, (size_t)n + 1, MSG_NOSIGNAL) != n + 1 && errno != EPIPE && errno != ECONNRESET)
		goto fail;
	free(line);
	line = NULL;
	struct pollfd p = { fd, POLLIN, 0 };
	while (len < MAX_REPLY && !(nl = memchr(buf, '\n', len)) && poll(&p, 1, timeout_ms) > 0) {
		ssize_t r = recv(fd, buf + len, MAX_REPLY - len, 0);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	json_t *j = nl ? json_loadb(buf, (size_t)(nl - buf), 0, NULL) : NULL;
	if (!j || !json_is_object(j)) {
		fprintf(stderr, "custosctl: %s: %s\n", path,
		        len ? "not a custosd reply" : "no reply from custosd");
		json_decref(j);
		goto out;
	}
	if (ret_fd) {
		follow_rest.len = len - (size_t)(nl + 1 - buf);
		follow_rest.p = buf;
		memmove(buf, nl + 1, follow_rest.len);
		*ret_fd = fd;
		return j;
	}
	free(buf);
	close(fd);
	return j;
fail:
	fprintf(stderr, "custosctl: %s: %s\n", path, strerror(errno ? errno : EINVAL));
out:
	free(line);
	free(buf);
	if (fd >= 0)
		close(fd);
	return NULL;
}

int ctl_daemon_call(const char *sock, const char *cmd, bool json, int timeout_ms, void (*show)(json_t *))
{
	return ctl_daemon_call_args(sock, cmd, NULL, json, timeout_ms, show);
}

int ctl_daemon_call_args(const char *sock, const char *cmd, json_t *args, bool json, int timeout_ms,
                         void (*show)(json_t *))
{
	json_t *j = request_on(socket_path(sock), cmd, args, timeout_ms, NULL);

	if (!j)
		return EXIT_USAGE;
	json_t *ok = json_object_get(j, "ok"), *result = json_object_get(j, "result");
	int code = 0;
	if (!json_is_true(ok)) {
		const char *e = json_string_value(json_object_get(j, "error"));
		fprintf(stderr, "custosctl: custosd: %s\n", e ? e : "request failed");
		code = EXIT_BAD;
	} else if (json || !show) {
		char *s = json_dumps(result, JSON_COMPACT);
		if (json && s)
			puts(s);
		free(s);
	} else {
		show(result);
	}
	json_decref(j);
	return code;
}

json_t *ctl_daemon_result(const char *sock, const char *cmd, json_t *args, int timeout_ms)
{
	json_t *j = request_on(socket_path(sock), cmd, args, timeout_ms ? timeout_ms : 600000, NULL),
	       *res = NULL;

	if (j && json_is_true(json_object_get(j, "ok")))
		res = json_incref(json_object_get(j, "result"));
	else if (j)
		fprintf(stderr, "custosctl: custosd: %s\n",
		        json_string_value(json_object_get(j, "error")) ?: "request failed");
	json_decref(j);
	return res;
}

/* One streamed line: a record, or the stream's end. 1 at the end (0 when
 * it ended well), 0 to go on, or EXIT_* */
static int stream_line(const char *p, size_t n, int (*fn)(void *, json_t *, const char *, size_t), void *arg,
                       int *code)
{
	json_t *rec = json_loadb(p, n, 0, NULL), *end;

	if (!json_is_object(rec)) {
		json_decref(rec);
		*code = EXIT_USAGE;
		fprintf(stderr, "custosctl: custosd sent something that is not a record\n");
		return 1;
	}
	if ((end = json_object_get(rec, "custos_end"))) {
		const char *e = json_string_value(json_object_get(end, "error"));
		if (e)
			fprintf(stderr, "%s\n", e);
		*code = !e ? 0 : !strncmp(e, "FAIL", 4) ? EXIT_BAD : EXIT_USAGE;
		json_decref(rec);
		return 1;
	}
	int r = fn(arg, rec, p, n);
	json_decref(rec);
	if (r)
		*code = EXIT_USAGE;
	return r != 0;
}

int ctl_daemon_stream(const char *sock, const char *cmd, json_t *args,
                      int (*fn)(void *arg, json_t *rec, const char *line, size_t len), void *arg)
{
	int fd = -1, code = EXIT_USAGE, done = 0;
	json_t *j = request_on(socket_path(sock), cmd, args, 60000, &fd);

	if (!j)
		return EXIT_USAGE;
	if (!json_is_true(json_object_get(j, "ok"))) {
		fprintf(stderr, "custosctl: custosd: %s\n",
		        json_string_value(json_object_get(j, "error")) ?: "request failed");
		json_decref(j);
		close(fd);
		free(follow_rest.p);
		return EXIT_BAD;
	}
	json_decref(j);
	size_t cap = MAX_REPLY, len = follow_rest.len;
	char *buf = follow_rest.p; /* request_on's buffer, MAX_REPLY + 1 bytes */
	while (!done) {
		char *p = buf, *nl;
		while (!done && (nl = memchr(p, '\n', len - (size_t)(p - buf)))) {
			done = stream_line(p, (size_t)(nl - p), fn, arg, &code);
			p = nl + 1;
		}
		len -= (size_t)(p - buf);
		memmove(buf, p, len);
		if (done)
			break;
		ssize_t n = len < cap ? recv(fd, buf + len, cap - len, 0) : -1;
		if (n <= 0) {
			fprintf(stderr, "custosctl: custosd ended the stream early\n");
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	free(buf);
	return code;
}

static json_int_t num(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static void show_status(json_t *r)
{
	json_t *roles = json_object_get(r, "roles"), *log = json_object_get(r, "log"),
	       *keys = json_object_get(r, "keys"), *role;
	size_t i;

	printf("roles\n");
	json_array_foreach(roles, i, role)
	{
		printf("  %-9s pid %-7lld %s, %lld restarts\n",
		       json_string_value(json_object_get(role, "name")), num(role, "pid"),
		       json_is_true(json_object_get(role, "up")) ? "up" : "DOWN", num(role, "restarts"));
	}
	if (json_object_get(log, "error"))
		printf("log             %s\n", json_string_value(json_object_get(log, "error")));
	else
		printf("log             head %lld (%.16s...), %lld appended since start\n"
		       "checkpoints     %lld since start, the last at seq %lld (%s); anchors %lld sent, %lld "
		       "failed "
		       "(anchor = %s)\n",
		       num(log, "head_seq"), json_string_value(json_object_get(log, "head_hash")),
		       num(log, "appended"), num(log, "checkpoints"), num(log, "last_checkpoint_seq"),
		       json_string_value(json_object_get(log, "last_checkpoint_ts")),
		       num(log, "anchors_sent"), num(log, "anchors_failed"),
		       json_string_value(json_object_get(log, "anchor_mode")));
	if (json_object_get(keys, "error"))
		printf("keys            %s\n", json_string_value(json_object_get(keys, "error")));
	else
		printf("keys            epoch %lld; %lld of subjects, %lld without; %lld erased subjects; "
		       "cache %lld of %lld\n",
		       num(keys, "epoch"), num(keys, "subject_keys"), num(keys, "free_keys"),
		       num(keys, "shredded_subjects"), num(keys, "cached_keys"), num(keys, "cache_limit"));
}

static void show_message(json_t *r)
{
	const char *m = json_string_value(json_object_get(r, "message"));
	puts(m ? m : "done");
}

struct simple {
	const char *name, *cmd, *help;
	void (*show)(json_t *);
};

static const struct simple simples[] = {
	{ "status", "status",
	  "Usage: custosctl status [--json] [--socket PATH]\n"
	  "Show custosd's roles and their health, the audit log's head, checkpoints and\n"
	  "anchors, and the keystore. Needs the security group (custosd.conf).\n",
	  show_status },
	{ "reload", "reload",
	  "Usage: custosctl reload [--socket PATH]\n"
	  "Have custosd reread its configuration and policies. A broken file is refused\n"
	  "and the running configuration stays; the reply says why. Needs the admin group.\n",
	  show_message },
	{ "stop", "stop",
	  "Usage: custosctl stop [--socket PATH]\n"
	  "Stop custosd: a final checkpoint is written. Needs the admin group.\n",
	  show_message },
};

static int run_simple(const struct simple *s, int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' },
		                              { "json", no_argument, NULL, 'j' },
		                              { "socket", required_argument, NULL, 's' },
		                              { 0 } };
	const char *sock = NULL;
	bool json = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h')
			return fputs(s->help, stdout), 0;
		if (c == 's')
			sock = optarg;
		else if (c == 'j')
			json = true;
		else
			return EXIT_USAGE;
	}
	if (optind < argc)
		return ctl_usage_error("%s: unexpected argument '%s'", s->name, argv[optind]);
	return ctl_daemon_call(sock, s->cmd, json, 15000, json ? NULL : s->show);
}

static int cmd_status(int argc, char **argv)
{
	return run_simple(&simples[0], argc, argv);
}

static int cmd_reload(int argc, char **argv)
{
	return run_simple(&simples[1], argc, argv);
}

static int cmd_stop(int argc, char **argv)
{
	return run_simple(&simples[2], argc, argv);
}

static const struct ctl_cmd status_cmd[] = { { "status", cmd_status, "custosd's roles, log and keys" } };
static const struct ctl_cmd reload_cmd[] = { { "reload", cmd_reload, "reload custosd's configuration" } };
static const struct ctl_cmd stop_cmd[] = { { "stop", cmd_stop, "stop custosd" } };

const struct ctl_group ctl_status_group = { "status", status_cmd, 0, "custosd's roles, log and keys" };
const struct ctl_group ctl_reload_group = { "reload", reload_cmd, 0, "reload custosd's configuration" };
const struct ctl_group ctl_stop_group = { "stop", stop_cmd, 0, "stop custosd" };

/* ---- log follow ---- */

static const char follow_help[] =
    "Usage: custosctl log follow [--json] [--wide] [--socket PATH]\n"
    "Show audit records as custosd writes them, like `journalctl -f`, until\n"
    "interrupted: a table, or the records' exact JSON lines with --json. Needs the\n"
    "security group.\n";

/* Prints the lines in buf[0, *len); keeps an unfinished last line. */
static void print_lines(char *buf, size_t *len, bool json, bool wide)
{
	char *p = buf, *nl;

	while ((nl = memchr(p, '\n', *len - (size_t)(p - buf)))) {
		if (json) {
			fwrite(p, 1, (size_t)(nl - p) + 1, stdout);
		} else {
			json_t *rec = json_loadb(p, (size_t)(nl - p), 0, NULL);
			if (rec)
				ls_table_row(stdout, rec, wide);
			json_decref(rec);
		}
		p = nl + 1;
	}
	*len -= (size_t)(p - buf);
	memmove(buf, p, *len);
	fflush(stdout);
}

int ctl_log_follow(int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' },
		                              { "json", no_argument, NULL, 'j' },
		                              { "wide", no_argument, NULL, 'w' },
		                              { "socket", required_argument, NULL, 's' },
		                              { 0 } };
	const char *sock = NULL;
	bool json = false, wide = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h')
			return fputs(follow_help, stdout), 0;
		if (c == 's')
			sock = optarg;
		else if (c == 'j')
			json = true;
		else if (c == 'w')
			wide = true;
		else
			return EXIT_USAGE;
	}
	if (optind < argc)
		return ctl_usage_error("log follow: unexpected argument '%s'", argv[optind]);
	int fd = -1;
	json_t *j = request_on(socket_path(sock), "log-follow", NULL, 15000, &fd);
	if (!j)
		return EXIT_USAGE;
	if (!json_is_true(json_object_get(j, "ok"))) {
		const char *e = json_string_value(json_object_get(j, "error"));
		fprintf(stderr, "custosctl: custosd: %s\n", e ? e : "request failed");
		json_decref(j);
		close(fd);
		return EXIT_BAD;
	}
	json_decref(j);
	if (!json)
		ls_table_header(stdout);
	fflush(stdout);
	static char buf[1u << 21];
	size_t len = follow_rest.len;
	memcpy(buf, follow_rest.p, len);
	for (;;) {
		print_lines(buf, &len, json, wide);
		ssize_t n = recv(fd, buf + len, sizeof(buf) - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	fprintf(stderr, "custosctl: custosd closed the connection\n");
	return EXIT_BAD;
}
