/* ctl_policy.c - `custosctl policy check`: validates policy files. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "catalog.h"
#include "colguard.h"
#include "ctl.h"
#include "ctl_keys.h"
#include "pgconn.h"
#include "policy.h"

static const char check_help[] = "Usage: custosctl policy check [--db CONNINFO] FILE...\n"
                                 "Validate policy files (policies/README.md documents the format). With\n"
                                 "--db (a libpq connection string) also bind them to the live catalog:\n"
                                 "tables and columns exist, encrypted columns can hold the ciphertext, and\n"
                                 "every table with personal data is reachable from a subject's root. Errors\n"
                                 "name file:line:col, say what is wrong and what would be right. Exits 0\n"
                                 "when the policy is valid, 1 when it is not, 2 on usage or I/O errors.\n";

/* Notes the encrypted columns the database would let plaintext into. */
static void say_unguarded(const struct policy *p, const struct catalog *cat)
{
	struct buf say = BUF_INIT;

	if (cg_unguarded(p, cat, &say))
		fprintf(stderr, "custosctl: note: %.*s\n", (int)say.len, say.p ? say.p : "");
	buf_free(&say);
}

/* Binds p to the catalog of the database at conninfo. 0 or EXIT_USAGE. */
static int bind_db(struct policy *p, const char *conninfo, struct buf *errs)
{
	PGconn *conn = pgc_connect(conninfo, "custosctl policy", NULL);
	struct catalog *cat = NULL;
	char err[512];
	int r = 0;

	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "custosctl: --db: %s", PQerrorMessage(conn));
		r = EXIT_USAGE;
	} else if (cat_load(conn, &cat, err, sizeof(err))) {
		fprintf(stderr, "custosctl: --db: %s", err);
		r = EXIT_USAGE;
	} else {
		pol_bind(p, cat, errs);
		say_unguarded(p, cat);
	}
	cat_free(cat);
	PQfinish(conn);
	return r;
}

int ctl_policy_load(const char *file, const char *db, struct policy **ret_p, struct catalog **ret_cat,
                    struct buf *errs)
{
	struct policy *p = pol_new();
	PGconn *conn = NULL;
	char err[512];
	int r = p ? pol_load(p, file, errs) : -ENOMEM;

	if (r)
		fprintf(stderr, "custosctl: %s: %s\n", file, strerror(-r));
	if (!r)
		pol_check(p, errs);
	if (!r && (conn = pgc_connect(db, "custosctl policy", NULL)) && PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "custosctl: --db: %s", PQerrorMessage(conn));
		r = -EIO;
	} else if (!r && cat_load(conn, ret_cat, err, sizeof(err))) {
		fprintf(stderr, "custosctl: --db: %s", err);
		r = -EIO;
	} else if (!r) {
		pol_bind(p, *ret_cat, errs);
	}
	PQfinish(conn);
	if (!r && p->errors) {
		fwrite(errs->p, 1, errs->len, stderr);
		fprintf(stderr, "custosctl: %s: %u error%s\n", file, p->errors, p->errors == 1 ? "" : "s");
		r = -EINVAL;
	}
	if (r) {
		pol_free(p);
		cat_free(*ret_cat);
		*ret_cat = NULL;
		return r == -EINVAL ? EXIT_BAD : EXIT_USAGE;
	}
	*ret_p = p;
	return 0;
}

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
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' },
		                              { "db", required_argument, NULL, 'd' },
		                              { 0 } };
	struct buf errs = BUF_INIT;
	struct policy *p;
	const char *db = NULL;
	int c, r = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'd') {
			db = optarg;
			continue;
		}
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
	r = r ? EXIT_USAGE : 0;
	if (!r)
		pol_check(p, &errs);
	if (!r && db)
		r = bind_db(p, db, &errs);
	if (errs.len)
		fwrite(errs.p, 1, errs.len, stderr);
	if (!r && !p->errors)
		summary(p);
	else if (!r)
		fprintf(stderr, "%u error%s\n", p->errors, p->errors == 1 ? "" : "s");
	int code = r ? r : p->errors ? EXIT_BAD : 0;
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
