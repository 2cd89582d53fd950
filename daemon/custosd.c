/* custosd - the Custos daemon. Reads its configuration, then runs as a
 * parent process supervising one process per role (parent.h, role.h).
 * Messages go to stderr with sd-daemon priority prefixes, for journald. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parent.h"

#define VERSION "0.2.0"
#define DEFAULT_CONFIG "/etc/custos/custosd.conf"

static const char usage_text[] =
    "Usage: custosd [-c FILE] [--check-config]\n"
    "Run the Custos daemon: the audit logger, the keeper of keys and the control\n"
    "socket, each a process of its own, supervised by this one.\n\n"
    "  -c, --config FILE   the configuration (default " DEFAULT_CONFIG ";\n"
    "                      scripts/custosd.conf documents every setting)\n"
    "      --check-config  check the configuration and the policies it names, print\n"
    "                      what is wrong as file:line messages, and exit: 0 valid, 1 not\n"
    "      --print-config  check, then print every setting's value (defaults included;\n"
    "                      connection strings show as \"(set)\")\n"
    "  -h, --help          this text\n"
    "      --version       the version\n\n"
    "Signals: SIGHUP reloads the configuration and policies (a broken one is refused\n"
    "and the running one stays); SIGTERM or SIGINT stop custosd after a final\n"
    "checkpoint. Started as root, custosd drops to its user (setting `user`).\n";

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "config", required_argument, 0, 'c' }, { "check-config", no_argument, 0, 'k' },
		{ "print-config", no_argument, 0, 'p' }, { "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, 'V' },      { 0 },
	};
	const char *path = DEFAULT_CONFIG;
	bool check = false, print = false;
	int c;

	while ((c = getopt_long(argc, argv, "c:h", lo, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'k': check = true; break;
		case 'p': print = check = true; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 'V': puts("custosd " VERSION); return 0;
		default: fputs("Try 'custosd --help'.\n", stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "custosd: unexpected argument '%s'\nTry 'custosd --help'.\n", argv[optind]);
		return 2;
	}
	struct parent_opts o = { .config_path = path };
	struct buf errs = BUF_INIT;
	int n = parent_check_config(path, &o.cfg, &o.config_text, &errs);
	if (n) {
		fwrite(errs.p, 1, errs.len, stderr);
		if (n > 0)
			fprintf(stderr, "custosd: %s: %d problem%s\n", path, n, n == 1 ? "" : "s");
		buf_free(&errs);
		return 1;
	}
	buf_free(&errs);
	if (print) {
		cfg_dump(o.cfg, &errs);
		fwrite(errs.p, 1, errs.len, stdout);
		buf_free(&errs);
	} else if (check) {
		printf("custosd: %s: configuration and %zu polic%s OK\n", path, o.cfg->policies.n,
		       o.cfg->policies.n == 1 ? "y" : "ies");
	}
	if (check) {
		cfg_free(o.cfg);
		cfg_free_text(o.config_text);
		return 0;
	}
	int r = parent_run(&o);
	cfg_free(o.cfg);
	cfg_free_text(o.config_text);
	return r;
}
