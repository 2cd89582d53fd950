/* ctl_report.c - `custosctl report verify DIR`: checks a signed report or
 * certificate directory (reportsig.h) offline, with the audit log's key
 * file or public key file. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "logkey.h"
#include "reportsig.h"

static const char verify_help[] =
    "Usage: custosctl report verify DIR (--public-key FILE | --key FILE)\n\n"
    "Checks a report or deletion certificate that custosd produced: every file\n"
    "is the one signed, no file was added, and the signature is the audit log's\n"
    "(its checkpoint key, bound to the log record that notes the report).\n"
    "Prints \"OK files=N log_seq=SEQ\", or \"FAIL: <reason>\".\n\n"
    "  --public-key FILE the log's public key file (log.pub in its directory)\n"
    "  --key FILE        or the log's verification key file (custosctl log init)\n"
    "  -h, --help        this help\n\n"
    "Exit status: 0 intact, 1 not, 2 usage or I/O error.\n";

static int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' },
		                              { "public-key", required_argument, NULL, 'p' },
		                              { "key", required_argument, NULL, 'k' },
		                              { 0 } };
	const char *keyfile = NULL;
	int c, n = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(verify_help, stdout);
			return 0;
		}
		if (c == '?')
			return EXIT_USAGE;
		keyfile = optarg;
		n++;
	}
	if (n != 1)
		return ctl_usage_error("report verify: give exactly one of --public-key FILE and --key FILE");
	if (optind + 1 != argc)
		return ctl_usage_error("report verify: which directory? (one DIR)");
	char *text = NULL, err[512];
	size_t len;
	struct logkeys k;
	int r = read_file(keyfile, SECRET_TEXT_MAX, &text, &len);
	if (r) {
		fprintf(stderr, "custosctl: %s: %s\n", keyfile, strerror(-r));
		return EXIT_USAGE;
	}
	r = logkey_parse(text, len, &k, err, sizeof(err));
	explicit_bzero(text, len);
	free(text);
	if (r) {
		fprintf(stderr, "custosctl: %s: %s\n", keyfile, err);
		return EXIT_USAGE;
	}
	struct rs_sums sums;
	struct rs_sig sig;
	r = rs_verify(argv[optind], &k, &sums, &sig, err, sizeof(err));
	explicit_bzero(&k, sizeof(k));
	if (r < 0) {
		fprintf(stderr, "custosctl: %s\n", err);
		return EXIT_USAGE;
	}
	if (r) {
		printf("FAIL: %s\n", err);
		return EXIT_BAD;
	}
	printf("OK files=%zu log_seq=%llu\n", sums.n, (unsigned long long)sig.seq);
	return 0;
}

static const struct ctl_cmd cmds[] = {
	{ "verify", cmd_verify, "check a signed report or certificate" },
};

const struct ctl_group ctl_report_group = { "report", cmds, ARRAY_SIZE(cmds),
	                                    "subject-request reports and deletion certificates" };
