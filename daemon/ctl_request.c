/* ctl_request.c - `custosctl request open | list | show | extend |
 * approve | deny | run`: data subjects' requests, through custosd's control
 * socket (the DPO group's commands; the dsr role answers them). */
#define _GNU_SOURCE
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "util.h"

#define CALL_TIMEOUT_MS 60000
#define RUN_TIMEOUT_MS 660000 /* custosd gives a run 600 s */

enum {
	RO_REGIME = 1,
	RO_KIND,
	RO_SUBJECT,
	RO_RECEIVED,
	RO_VIA,
	RO_VERIFIED_BY,
	RO_VERIFICATION,
	RO_OVERDUE,
	RO_REASON,
	RO_BASIS,
	RO_DRY_RUN,
	RO_JSON,
	RO_SOCKET,
};

static const struct option opts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "regime", required_argument, NULL, RO_REGIME },
	{ "kind", required_argument, NULL, RO_KIND },
	{ "subject", required_argument, NULL, RO_SUBJECT },
	{ "received", required_argument, NULL, RO_RECEIVED },
	{ "via", required_argument, NULL, RO_VIA },
	{ "verified-by", required_argument, NULL, RO_VERIFIED_BY },
	{ "verification", required_argument, NULL, RO_VERIFICATION },
	{ "overdue", no_argument, NULL, RO_OVERDUE },
	{ "reason", required_argument, NULL, RO_REASON },
	{ "basis", required_argument, NULL, RO_BASIS },
	{ "dry-run", no_argument, NULL, RO_DRY_RUN },
	{ "json", no_argument, NULL, RO_JSON },
	{ "socket", required_argument, NULL, RO_SOCKET },
	{ 0 },
};

/* The JSON argument each option becomes (NULL: handled apart). */
static const char *const arg_names[] = {
	[RO_REGIME] = "regime",
	[RO_KIND] = "kind",
	[RO_SUBJECT] = "subject",
	[RO_RECEIVED] = "received",
	[RO_VIA] = "via",
	[RO_VERIFIED_BY] = "verified_by",
	[RO_VERIFICATION] = "verification",
	[RO_OVERDUE] = "overdue",
	[RO_REASON] = "reason",
	[RO_BASIS] = "basis",
	[RO_DRY_RUN] = "dry_run",
};

struct subcmd {
	const char *name, *help;
	const int *allowed;  /* options besides --help, --json, --socket; 0-terminated */
	const int *required; /* 0-terminated */
	bool takes_id;
	void (*show)(json_t *);
	int timeout_ms;
};

#define COMMON_HELP                                                                                          \
	"  --json            print the result as JSON\n"                                                     \
	"  --socket PATH     custosd's control socket (default $CUSTOS_SOCKET or\n"                          \
	"                    /run/custos/control.sock)\n"                                                    \
	"  -h, --help        this help\n\n"                                                                  \
	"Needs membership in custosd's DPO group (dpo_group, default custos-dpo). Every\n"                   \
	"step is recorded in the audit log before it counts.\n"

static const char *name_of(int opt)
{
	for (const struct option *o = opts; o->name; o++)
		if (o->val == opt)
			return o->name;
	return "?";
}

static void field(const char *label, json_t *row, const char *key)
{
	json_t *v = json_object_get(row, key);

	if (json_is_string(v) && *json_string_value(v))
		printf("%-18s %s\n", label, json_string_value(v));
	else if (json_is_integer(v))
		printf("%-18s %" JSON_INTEGER_FORMAT "\n", label, json_integer_value(v));
}

static void show_request(json_t *row)
{
	static const char *const rows[][2] = {
		{ "request", "id" },
		{ "regime", "regime" },
		{ "kind", "kind" },
		{ "status", "status" },
		{ "subject type", "subject_type" },
		{ "subject", "subject_id" },
		{ "received", "received_on" },
		{ "received via", "received_via" },
		{ "verification", "verification" },
		{ "verified by", "verified_by" },
		{ "opened by", "opened_by" },
		{ "due", "due_on" },
		{ "confirm receipt by", "confirm_by" },
		{ "extended on", "extended_on" },
		{ "extension reason", "extension_reason" },
		{ "approved by", "approved_by" },
		{ "denied by", "denied_by" },
		{ "denial basis", "denial_basis" },
		{ "ran by", "ran_by" },
		{ "completed", "completed_at" },
		{ "response", "response" },
		{ "report", "report_dir" },
		{ "report sha256", "report_sha256" },
		{ "log record", "log_seq" },
		{ "error", "error" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
		field(rows[i][0], row, rows[i][1]);
	if (json_is_true(json_object_get(row, "overdue")))
		printf("%-18s %s\n", "OVERDUE", "the due date has passed");
}

static void show_list(json_t *rows)
{
	size_t i;
	json_t *r;

	printf("%-6s %-5s %-8s %-10s %-10s %-11s %s\n", "ID", "LAW", "KIND", "STATUS", "RECEIVED", "DUE",
	       "SUBJECT");
	json_array_foreach(rows, i, r)
	{
		const char *id = json_string_value(json_object_get(r, "subject_id"));
		printf("%-6" JSON_INTEGER_FORMAT " %-5s %-8s %-10s %-10s %-10s%s %s:%s\n",
		       json_integer_value(json_object_get(r, "id")),
		       json_string_value(json_object_get(r, "regime")),
		       json_string_value(json_object_get(r, "kind")),
		       json_string_value(json_object_get(r, "status")),
		       json_string_value(json_object_get(r, "received_on")),
		       json_string_value(json_object_get(r, "due_on")),
		       json_is_true(json_object_get(r, "overdue")) ? "!" : " ",
		       json_string_value(json_object_get(r, "subject_type")), id ? id : "[erased]");
	}
	if (!i)
		printf("(no requests)\n");
	else if (i >= 150)
		printf("(the newest %zu shown: use --overdue, or request show ID for others)\n", i);
}

/* `request run`: the request when done; the plan of an erasure's dry run. */
static void show_run(json_t *r)
{
	json_t *c;
	size_t i;

	if (!json_is_true(json_object_get(r, "dry_run")))
		return show_request(r);
	printf("dry run of request %" JSON_INTEGER_FORMAT ": nothing was changed\n\n",
	       json_integer_value(json_object_get(r, "request")));
	printf("%-40s %-18s %-52s %6s %6s\n", "COLUMN", "ACTION", "OUTCOME", "ROWS", "VALUES");
	json_array_foreach(json_object_get(r, "columns"), i, c)
	{
		printf("%-40s %-18s %-52s %6" JSON_INTEGER_FORMAT " %6" JSON_INTEGER_FORMAT "\n",
		       json_string_value(json_object_get(c, "column")),
		       json_string_value(json_object_get(c, "action")),
		       json_string_value(json_object_get(c, "outcome")),
		       json_integer_value(json_object_get(c, "rows")),
		       json_integer_value(json_object_get(c, "values")));
	}
	printf("\nretained\n");
	json_array_foreach(json_object_get(r, "retained"), i, c)
	{
		const char *from = json_string_value(json_object_get(c, "erasable_from"));
		printf("  %s until %s%s%s: %s\n", json_string_value(json_object_get(c, "column")),
		       json_string_value(json_object_get(c, "until")), from ? ", erasable from " : "",
		       from ? from : "", json_string_value(json_object_get(c, "basis")));
	}
	printf("recipients to notify\n");
	json_array_foreach(json_object_get(r, "notify"), i, c)
	{
		printf("  %s\n", json_string_value(json_object_get(c, "recipient")));
	}
	printf("keys to destroy: the subject's, and %" JSON_INTEGER_FORMAT " found in its values\n",
	       json_integer_value(json_object_get(r, "encrypted_with_keys")));
}

static const int open_opts[] = { RO_REGIME, RO_KIND,        RO_SUBJECT,      RO_RECEIVED,
	                         RO_VIA,    RO_VERIFIED_BY, RO_VERIFICATION, 0 };
static const int open_req[] = { RO_REGIME, RO_KIND, RO_SUBJECT, 0 };
static const int list_opts[] = { RO_OVERDUE, 0 };
static const int none[] = { 0 };
static const int extend_opts[] = { RO_REASON, 0 };
static const int deny_opts[] = { RO_BASIS, 0 };
static const int run_opts[] = { RO_DRY_RUN, 0 };

static const struct subcmd subcmds[] = {
	{ "open",
	  "Usage: custosctl request open --regime gdpr|ccpa --kind access|erasure --subject TYPE:ID\n"
	  "                              [--received YYYY-MM-DD] [--via HOW]\n"
	  "                              [--verified-by NAME --verification METHOD]\n\n"
	  "Records a data subject's request in the ledger, with its due date: GDPR one\n"
	  "month from receipt (Art. 12(3)), CCPA 45 days and a receipt confirmation within\n"
	  "10 business days (§7021). TYPE is a subject type of the policy; ID is read as\n"
	  "its id column stores it (customer:007 is customer 7 when the id is a number).\n\n"
	  "  --received DATE   the day it was received (default: today, UTC)\n"
	  "  --via HOW         how it was made: e-mail, web form, letter (default custosctl)\n"
	  "  --verified-by, --verification  who checked the requester's identity, and how\n",
	  open_opts, open_req, false, show_request, CALL_TIMEOUT_MS },
	{ "list",
	  "Usage: custosctl request list [--overdue]\n\n"
	  "Lists requests, newest first, with their due dates (! marks one overdue).\n\n"
	  "  --overdue         only those past their due date and not answered\n",
	  list_opts, none, false, show_list, CALL_TIMEOUT_MS },
	{ "show", "Usage: custosctl request show ID\n\nShows one request: every field of the ledger.\n", none,
	  none, true, show_request, CALL_TIMEOUT_MS },
	{ "extend",
	  "Usage: custosctl request extend ID --reason TEXT\n\n"
	  "Extends the due date once, within the first period: GDPR by two months,\n"
	  "CCPA by 45 days. Tell the subject the reason.\n",
	  extend_opts, extend_opts, true, show_request, CALL_TIMEOUT_MS },
	{ "approve",
	  "Usage: custosctl request approve ID\n\n"
	  "Approves an erasure. With the policy's erasure_approval: second_person\n"
	  "(the default), the approver is not the person who opened it.\n",
	  none, none, true, show_request, CALL_TIMEOUT_MS },
	{ "deny",
	  "Usage: custosctl request deny ID --basis TEXT\n\n"
	  "Denies a request, with its legal basis (GDPR Art. 12(4)/(5), CCPA §1798.105(d)).\n",
	  deny_opts, deny_opts, true, show_request, CALL_TIMEOUT_MS },
	{ "run",
	  "Usage: custosctl request run ID [--dry-run]\n\n"
	  "Carries out a request. An access request produces the access report: a\n"
	  "directory under custosd's report_dir with report.json, report.html (for the\n"
	  "subject), portable.json (Art. 20) and their signed manifest (SHA256SUMS,\n"
	  "SHA256SUMS.sig; check with custosctl report verify). An approved erasure\n"
	  "deletes, anonymises or keeps each column as the policy says, in one\n"
	  "transaction, destroys the subject's keys, reads everything again to check, and\n"
	  "issues a signed deletion certificate (certificate.json, certificate.html).\n\n"
	  "  --dry-run         an erasure: show what would happen, change nothing\n",
	  run_opts, none, true, show_run, RUN_TIMEOUT_MS },
};

static bool in(const int *list, int v)
{
	for (; *list; list++)
		if (*list == v)
			return true;
	return false;
}

static int run_subcmd(const struct subcmd *sc, int argc, char **argv)
{
	json_t *args = json_object();
	const char *sock = NULL;
	bool as_json = false, seen[ARRAY_SIZE(arg_names)] = { 0 };
	int c, code = EXIT_USAGE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			printf("%s\n%s", sc->help, COMMON_HELP);
			json_decref(args);
			exit(0);
		}
		if (c == '?')
			goto out;
		if (c == RO_JSON) {
			as_json = true;
		} else if (c == RO_SOCKET) {
			sock = optarg;
		} else if (!in(sc->allowed, c)) {
			code = ctl_usage_error("request %s does not take --%s", sc->name, name_of(c));
			goto out;
		} else {
			seen[c] = true;
			json_object_set_new(args, arg_names[c],
			                    c == RO_OVERDUE || c == RO_DRY_RUN ? json_true()
			                                                       : json_string(optarg));
		}
	}
	for (const int *r = sc->required; *r; r++)
		if (!seen[*r]) {
			code = ctl_usage_error("request %s: --%s is required", sc->name, name_of(*r));
			goto out;
		}
	if (sc->takes_id) {
		uint64_t id;
		if (optind >= argc) {
			code =
			    ctl_usage_error("request %s: which request? (custosctl request list)", sc->name);
			goto out;
		}
		if (!parse_u64(argv[optind], &id) || !id || id > INT64_MAX) {
			code =
			    ctl_usage_error("request %s: '%s' is not a request ID", sc->name, argv[optind]);
			goto out;
		}
		json_object_set_new(args, "id", json_integer((json_int_t)id));
		optind++;
	}
	if (optind < argc) {
		code = ctl_usage_error("request %s: unexpected argument '%s'", sc->name, argv[optind]);
		goto out;
	}
	char cmd[32];
	snprintf(cmd, sizeof(cmd), "request-%s", sc->name);
	code = ctl_daemon_call_args(sock, cmd, args, as_json, sc->timeout_ms, sc->show);
out:
	json_decref(args);
	return code;
}

#define SUBCMD(n, i)                                                                                         \
	static int cmd_##n(int argc, char **argv)                                                            \
	{                                                                                                    \
		return run_subcmd(&subcmds[i], argc, argv);                                                  \
	}
SUBCMD(open, 0)
SUBCMD(list, 1)
SUBCMD(show, 2)
SUBCMD(extend, 3)
SUBCMD(approve, 4)
SUBCMD(deny, 5)
SUBCMD(run, 6)

static const struct ctl_cmd cmds[] = {
	{ "open", cmd_open, "record a subject's access or erasure request" },
	{ "list", cmd_list, "requests and their due dates" },
	{ "show", cmd_show, "one request" },
	{ "extend", cmd_extend, "extend a due date, with the reason" },
	{ "approve", cmd_approve, "approve an erasure" },
	{ "deny", cmd_deny, "deny a request, with its basis" },
	{ "run", cmd_run, "produce the access report, or carry out the erasure" },
};

const struct ctl_group ctl_request_group = { "request", cmds, ARRAY_SIZE(cmds),
	                                     "data subjects' requests (GDPR, CCPA)" };
