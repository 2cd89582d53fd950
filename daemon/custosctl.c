/* custosctl - drives Custos: `custosctl GROUP COMMAND [OPTIONS]`. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "secmem.h"
#include "util.h"

#define VERSION "0.1.0"

static const struct ctl_group *const groups[] = {
	&ctl_status_group, &ctl_reload_group,  &ctl_stop_group, &ctl_log_group,     &ctl_policy_group,
	&ctl_keys_group,   &ctl_encrypt_group, &ctl_db_group,   &ctl_request_group, &ctl_report_group,
};

int ctl_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("custosctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'custosctl --help'.\n", stderr);
	return EXIT_USAGE;
}

static void usage(FILE *f)
{
	fputs("Usage: custosctl GROUP COMMAND [OPTIONS]\n"
	      "Drive Custos, the audit daemon for PostgreSQL. Each command takes --help.\n\n",
	      f);
	for (size_t g = 0; g < ARRAY_SIZE(groups); g++) {
		if (!groups[g]->ncmds) {
			fprintf(f, "%s:\n  %-19s %s\n", groups[g]->name, groups[g]->name, groups[g]->summary);
			continue;
		}
		fprintf(f, "%s: %s\n", groups[g]->name, groups[g]->summary);
		for (size_t c = 0; c < groups[g]->ncmds; c++)
			fprintf(f, "  %s %-10s %s\n", groups[g]->name, groups[g]->cmds[c].name,
			        groups[g]->cmds[c].summary);
	}
	fputs("\nExit status: 0 success; 1 the log or file checked is bad; 2 usage or I/O error.\n", f);
}

static const struct ctl_group *find_group(const char *name)
{
	for (size_t g = 0; g < ARRAY_SIZE(groups); g++)
		if (!strcmp(groups[g]->name, name))
			return groups[g];
	return NULL;
}

static int run_cmd(const struct ctl_cmd *cmd, int argc, char **argv)
{
	/* room for the keystore's key cache (4096 keys) and the log's keys */
	if (secmem_init(1u << 20))
		fputs("custosctl: warning: cannot lock memory for keys\n", stderr);
	return cmd->run(argc, argv);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr), EXIT_USAGE;
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return usage(stdout), 0;
	if (!strcmp(argv[1], "--version"))
		return puts("custosctl " VERSION), 0;
	const struct ctl_group *g = find_group(argv[1]);
	if (!g)
		return ctl_usage_error("unknown command group '%s'", argv[1]);
	if (!g->ncmds)
		return run_cmd(&g->cmds[0], argc - 1, argv + 1);
	if (argc < 3 || !strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")) {
		usage(argc < 3 ? stderr : stdout);
		return argc < 3 ? EXIT_USAGE : 0;
	}
	for (size_t c = 0; c < g->ncmds; c++) {
		if (strcmp(g->cmds[c].name, argv[2]))
			continue;
		return run_cmd(&g->cmds[c], argc - 2, argv + 2);
	}
	return ctl_usage_error("unknown command '%s %s'", argv[1], argv[2]);
}
