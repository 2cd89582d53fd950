/* ctl_policy.c - `custosctl policy check`: validates policy files. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "policy.h"

static const char check_help[] = "Usage: custosctl policy check FILE...\n"
                                 "Validate policy files (policies/README.md documents the format). Errors\n"
                                 "name file:line:col, say what is wrong and what would be right. Exits 0\n"
                                 "when the policy is valid, 1 when it is not, 2 on usage or I/O errors.\n";

static void summary(const struct policy *p)
{
	size_t cols = 0, enc = 0, bidx = 0;

	for (size_t i = 0; i < p->ntables; i++) {
		cols += p->tables[i].ncols;
		for (size_t j = 0; j < p->tables[i].ncols; j++) {
			enc += p->tables[i].cols[j].encrypt;
			bidx += p->tables[i].cols[j].bidx_column != NULL;
		}
	}
	printf("OK subjects=%zu tables=%zu columns=%zu encrypted=%zu blind_indexes=%zu relations=%zu\n",
	       p->nsubjects, p->ntables, cols, enc, bidx, p->nrelations);
}

static int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' }, { 0 } };
	struct buf errs = BUF_INIT;
	struct policy *p;
	int c, r = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c != 'h')
			return ctl_usage_error("policy check: unexpected option");
		fputs(check_help, stdout);
		return 0;
	}
	if (optind == argc)
		return ctl_usage_error("policy check: give one or more policy files");
	if (!(p = pol_new()))
		return EXIT_USAGE;
	for (int i = optind; !r && i < argc; i++)
		if ((r = pol_load(p, argv[i], &errs)))
			fprintf(stderr, "custosctl: %s: %s\n", argv[i], strerror(-r));
	if (!r)
		pol_check(p, &errs);
	if (errs.len)
		fwrite(errs.p, 1, errs.len, stderr);
	if (!r && !p->errors)
		summary(p);
	else if (!r)
		fprintf(stderr, "%u error%s\n", p->errors, p->errors == 1 ? "" : "s");
	int code = r ? EXIT_USAGE : p->errors ? EXIT_BAD : 0;
	buf_free(&errs);
	pol_free(p);
	return code;
}

static const struct ctl_cmd policy_cmds[] = {
	{ "check", cmd_check, "validate policy files" },
};

const struct ctl_group ctl_policy_group = {
	"policy",
	policy_cmds,
	ARRAY_SIZE(policy_cmds),
	"the data map: policies describing personal data",
};
