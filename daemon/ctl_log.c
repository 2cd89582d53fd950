/* ctl_log.c - `custosctl log ...`: init, verify, show, export. These work
 * offline on a log directory (or a copy of one), with no daemon running. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anchors.h"
#include "auditlog.h"
#include "ctl.h"
#include "logread.h"
#include "logshow.h"
#include "logverify.h"
#include "secmem.h"

#define MAX_KEY_FILE 4096
#define MAX_ANCHOR_FILE (1ull << 30)

enum {
	OPT_HELP = 'h',
	OPT_DIR = 1000,
	OPT_KEY_OUT,
	OPT_KEY,
	OPT_PUB,
	OPT_HEAD,
	OPT_ANCHORS,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_TYPE,
	OPT_REF,
	OPT_JSON,
	OPT_KEYS,
	OPT_FORMAT,
	OPT_WIDE,
	OPT_SOCKET
};

static const struct option all_opts[] = {
	{ "help", no_argument, NULL, OPT_HELP },
	{ "dir", required_argument, NULL, OPT_DIR },
	{ "key-out", required_argument, NULL, OPT_KEY_OUT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "public-key", required_argument, NULL, OPT_PUB },
	{ "expect-head", required_argument, NULL, OPT_HEAD },
	{ "anchors", required_argument, NULL, OPT_ANCHORS },
	{ "since", required_argument, NULL, OPT_SINCE },
	{ "until", required_argument, NULL, OPT_UNTIL },
	{ "type", required_argument, NULL, OPT_TYPE },
	{ "subject-ref", required_argument, NULL, OPT_REF },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "keys", required_argument, NULL, OPT_KEYS },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "wide", no_argument, NULL, OPT_WIDE },
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ 0 },
};

static const char *option_name(int val)
{
	for (const struct option *o = all_opts; o->name; o++)
		if (o->val == val)
			return o->name;
	return "?";
}

struct args {
	const char *dir, *key_out, *key, *pub, *head, *anchors, *type, *ref, *keys, *format;
	const char *socket, *since_s, *until_s; /* through custosd: the times as given */
	bool json, wide;
	struct lrd_filter filter;
};

/* Parses options; allowed lists the ones this command takes. */
static int parse_args(int argc, char **argv, const int *allowed, const char *help, struct args *a)
{
	int c;

	*a = (struct args){ 0 };
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", all_opts, NULL)) != -1) {
		bool ok = c == OPT_HELP;
		for (const int *p = allowed; *p && !ok; p++)
			ok = *p == c;
		if (c == '?')
			return EXIT_USAGE; /* getopt said which */
		if (!ok)
			return ctl_usage_error("log %s does not take --%s", argv[0], option_name(c));
		switch (c) {
		case OPT_HELP: fputs(help, stdout); exit(0);
		case OPT_DIR: a->dir = optarg; break;
		case OPT_KEY_OUT: a->key_out = optarg; break;
		case OPT_KEY: a->key = optarg; break;
		case OPT_PUB: a->pub = optarg; break;
		case OPT_HEAD: a->head = optarg; break;
		case OPT_ANCHORS: a->anchors = optarg; break;
		case OPT_TYPE: a->filter.type = optarg; break;
		case OPT_REF: a->filter.subject_ref = optarg; break;
		case OPT_JSON: a->json = true; break;
		case OPT_WIDE: a->wide = true; break;
		case OPT_KEYS: a->keys = optarg; break;
		case OPT_FORMAT: a->format = optarg; break;
		case OPT_SOCKET: a->socket = optarg; break;
		case OPT_SINCE:
		case OPT_UNTIL: {
			bool since = c == OPT_SINCE;
			if (!ts_parse(optarg, since ? &a->filter.since : &a->filter.until))
				return ctl_usage_error(
				    "--%s: '%s' is not a time (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)",
				    since ? "since" : "until", optarg);
			*(since ? &a->filter.has_since : &a->filter.has_until) = true;
			*(since ? &a->since_s : &a->until_s) = optarg;
			break;
		}
		}
	}
	if (optind < argc)
		return ctl_usage_error("log %s: unexpected argument '%s'", argv[0], argv[optind]);
	bool daemon = false; /* commands that also go through custosd, without --dir */
	for (const int *p = allowed; *p; p++)
		daemon |= *p == OPT_SOCKET;
	if (!a->dir && !daemon)
		return ctl_usage_error("log %s: --dir DIR is required", argv[0]);
	if (a->dir && a->socket)
		return ctl_usage_error("log %s: --dir reads the log here, --socket asks custosd: not both",
		                       argv[0]);
	return 0;
}

/* ---- init ---- */

static const char init_help[] = "Usage: custosctl log init --dir DIR --key-out FILE\n"
                                "Create a new audit log in DIR. FILE (mode 0400) receives the offline\n"
                                "verification key: the MAC seed k0 and the checkpoint public key. Keep it\n"
                                "off this host. DIR keeps only the writer's current key. Nothing existing\n"
                                "is overwritten.\n";

static int cmd_init(int argc, char **argv)
{
	static const int allowed[] = { OPT_DIR, OPT_KEY_OUT, 0 };
	struct args a;
	char err[512];
	int r = parse_args(argc, argv, allowed, init_help, &a);

	if (r)
		return r;
	if (!a.key_out)
		return ctl_usage_error("log init: --key-out FILE is required");
	if ((r = alog_create(a.dir, a.key_out, err, sizeof(err)))) {
		fprintf(stderr, "custosctl: log init: %s\n", err);
		return EXIT_USAGE;
	}
	printf("created audit log %s\nverification key written to %s: move it off this host\n", a.dir,
	       a.key_out);
	return 0;
}

/* ---- verify ---- */

static const char verify_help[] =
    "Usage: custosctl log verify --dir DIR (--key FILE | --public-key FILE)\n"
    "                            [--expect-head SEQ:HASH] [--anchors FILE]\n"
    "       custosctl log verify [--socket PATH]   (custosd checks its own log)\n"
    "Verify an audit log offline. With --key (the file from `log init`) every\n"
    "record's MAC is checked, which catches rewriting by someone who took the\n"
    "host later; with --public-key (DIR/log.pub) the hash chain and the signed\n"
    "checkpoints. --expect-head and --anchors (an auditd log holding the\n"
    "checkpoints sent to the Linux audit trail) also catch a cut tail.\n"
    "Prints `OK records=N head=SEQ:HASH` and exits 0, or `FAIL seq=N: reason`\n"
    "and exits 1; exits 2 on usage or I/O errors. Without --dir, custosd checks the\n"
    "chain and signatures of the log it writes, with its public key, for members\n"
    "of the security group (the offline check with --key is the stronger one).\n";

static int load_keys(const struct args *a, struct logkeys *k)
{
	const char *path = a->key ? a->key : a->pub;
	char *text, err[256];
	size_t len;
	int r = read_file(path, MAX_KEY_FILE, &text, &len);

	if (r) {
		fprintf(stderr, "custosctl: %s: %s\n", path, strerror(-r));
		return EXIT_USAGE;
	}
	r = logkey_parse(text, len, k, err, sizeof(err));
	OPENSSL_cleanse(text, len);
	free(text);
	if (r) {
		fprintf(stderr, "custosctl: %s: %s\n", path, err);
		return EXIT_USAGE;
	}
	if (a->key && !k->has_seed)
		return ctl_usage_error("%s holds no MAC seed: it is a public key file; use --public-key",
		                       path);
	k->has_seed = a->key != NULL;
	return 0;
}

static int load_heads(const struct args *a, const struct logkeys *k, struct lv_head **ret, size_t *n)
{
	struct lv_head *v = NULL;
	char *text = NULL;
	size_t len, line = 0;
	int r = 0;

	*n = 0;
	if (a->anchors && (r = read_file(a->anchors, MAX_ANCHOR_FILE, &text, &len))) {
		fprintf(stderr, "custosctl: %s: %s\n", a->anchors, strerror(-r));
		return EXIT_USAGE;
	}
	if (text && (r = anchors_parse(text, len, k->log_id, &v, n, &line))) {
		free(text);
		fprintf(stderr, "custosctl: %s:%zu: malformed Custos checkpoint anchor\n", a->anchors, line);
		return EXIT_USAGE;
	}
	free(text);
	if (a->head) {
		struct lv_head h = { .source = "expected head" };
		struct lv_head *nv = realloc(v, (*n + 1) * sizeof(*v));
		if (!lv_parse_head(a->head, &h) || !nv) {
			free(nv ? nv : v);
			return ctl_usage_error("--expect-head: '%s' is not SEQ:HASH (HASH: 64 hex digits)",
			                       a->head);
		}
		v = nv;
		size_t i = *n;
		while (i > 0 && v[i - 1].seq > h.seq)
			v[i] = v[i - 1], i--;
		v[i] = h;
		(*n)++;
	}
	*ret = v;
	return 0;
}

/* Without --dir: custosd verifies its log with its public key. */
static int verify_by_daemon(const struct args *a)
{
	json_t *res = a->key || a->pub || a->head || a->anchors
	                  ? NULL
	                  : ctl_daemon_result(a->socket, "log-verify", NULL, 0);

	if (a->key || a->pub || a->head || a->anchors)
		return ctl_usage_error(
		    "log verify: --key, --public-key, --expect-head and --anchors need --dir "
		    "(a copy of the log); without it custosd checks the chain and signatures");
	if (!res)
		return EXIT_USAGE;
	int r = 0;
	if (json_is_true(json_object_get(res, "ok"))) {
		printf("OK records=%" JSON_INTEGER_FORMAT " head=%" JSON_INTEGER_FORMAT ":%s\n",
		       json_integer_value(json_object_get(res, "records")),
		       json_integer_value(json_object_get(res, "head_seq")),
		       json_string_value(json_object_get(res, "head_hash")));
	} else {
		printf("FAIL seq=%" JSON_INTEGER_FORMAT ": %s\n",
		       json_integer_value(json_object_get(res, "fail_seq")),
		       json_string_value(json_object_get(res, "reason")));
		r = EXIT_BAD;
	}
	json_decref(res);
	return r;
}

static int cmd_verify(int argc, char **argv)
{
	static const int allowed[] = { OPT_DIR, OPT_KEY, OPT_PUB, OPT_HEAD, OPT_ANCHORS, OPT_SOCKET, 0 };
	struct args a;
	struct logkeys *k = secmem_alloc(sizeof(*k));
	struct lv_head *heads = NULL;
	struct lv_result res;
	char err[512], hex[2 * LOG_HASH_LEN + 1];
	size_t nheads = 0;
	int r = k ? parse_args(argc, argv, allowed, verify_help, &a) : EXIT_USAGE;

	if (!r && !a.dir) {
		secmem_free(k, sizeof(*k));
		return verify_by_daemon(&a);
	}
	if (!r && !a.key == !a.pub)
		r = ctl_usage_error("log verify: give exactly one of --key FILE and --public-key FILE");
	if (!r)
		r = load_keys(&a, k);
	if (!r)
		r = load_heads(&a, k, &heads, &nheads);
	struct lv_opts o = { k, heads, nheads };
	if (!r && (r = lv_verify(a.dir, &o, &res, err, sizeof(err)))) {
		fprintf(stderr, "custosctl: log verify: %s\n", err);
		r = EXIT_USAGE;
	} else if (!r && res.ok) {
		hex_encode(res.head_hash, LOG_HASH_LEN, hex);
		printf("OK records=%" PRIu64 " head=%" PRIu64 ":%s\n", res.records, res.head_seq, hex);
		if (res.unsigned_tail && !a.key)
			fprintf(stderr,
			        "note: the last %" PRIu64 " records follow the last checkpoint; only "
			        "--key, --expect-head or --anchors vouch for them\n",
			        res.unsigned_tail);
	} else if (!r) {
		printf("FAIL seq=%" PRIu64 ": %s\n", res.fail_seq, res.reason);
		r = EXIT_BAD;
	}
	free(heads);
	secmem_free(k, sizeof(*k));
	return r;
}

/* ---- show and export ---- */

static const char show_help[] =
    "Usage: custosctl log show (--dir DIR | [--socket PATH]) [--since TS] [--until TS]\n"
    "                          [--type T] [--subject-ref REF] [--keys FILE] [--json] [--wide]\n"
    "With --dir the log is read here; without, custosd reads it for a member of\n"
    "its security group.\n"
    "Show audit records: a table, or JSON Lines with --json. Subjects are named\n"
    "by their ref; with --keys (a key provider file) their identifiers are\n"
    "decrypted, or shown as [erased] when their key was destroyed. TS is\n"
    "YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC). This does not verify the log:\n"
    "use `custosctl log verify`.\n";

static const char export_help[] =
    "Usage: custosctl log export (--dir DIR | [--socket PATH]) --format jsonl|cef\n"
    "                            [--since TS]\n"
    "Without --dir, custosd reads its log for a member of its security group.\n"
    "Export audit records for a SIEM: the exact JSON Lines, or ArcSight CEF.\n"
    "Subjects appear by their ref only; no personal data leaves the log.\n";

struct out {
	struct keyprov *kp;
	bool json, wide, cef, raw;
};

static int print_rec(void *arg, json_t *rec, const char *line, size_t len)
{
	struct out *o = arg;

	if (o->raw) {
		fwrite(line, 1, len, stdout);
		putchar('\n');
	} else if (o->cef) {
		ls_cef(stdout, rec);
		putchar('\n');
	} else {
		ls_decrypt_subjects(rec, o->kp);
		if (o->json) {
			json_dumpf(rec, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			putchar('\n');
		} else {
			ls_table_row(stdout, rec, o->wide);
		}
	}
	return ferror(stdout) ? -EIO : 0;
}

/* The request's arguments for log-read: the filter as given. */
static json_t *read_args(const struct args *a)
{
	json_t *j = json_object();

	if (a->since_s)
		json_object_set_new(j, "since", json_string(a->since_s));
	if (a->until_s)
		json_object_set_new(j, "until", json_string(a->until_s));
	if (a->filter.type)
		json_object_set_new(j, "type", json_string(a->filter.type));
	if (a->filter.subject_ref)
		json_object_set_new(j, "subject_ref", json_string(a->filter.subject_ref));
	return j;
}

static int walk(const struct args *a, struct out *o)
{
	if (!a->dir) { /* custosd reads it */
		json_t *args = read_args(a);
		int r = ctl_daemon_stream(a->socket, "log-read", args, print_rec, o);
		json_decref(args);
		fflush(stdout);
		return r;
	}
	struct lrd_error e = { 0 };
	int r = lrd_each(a->dir, &a->filter, print_rec, o, &e);

	fflush(stdout);
	if (r == 1) {
		fprintf(stderr, "FAIL seq=%" PRIu64 ": %s\n", e.seq, e.reason);
		return EXIT_BAD;
	}
	if (r) {
		fprintf(stderr, "custosctl: %s\n", r == -EIO && !*e.reason ? "write error" : e.reason);
		return EXIT_USAGE;
	}
	return 0;
}

static int cmd_show(int argc, char **argv)
{
	static const int allowed[] = { OPT_DIR,  OPT_SINCE, OPT_UNTIL, OPT_TYPE,   OPT_REF,
		                       OPT_KEYS, OPT_JSON,  OPT_WIDE,  OPT_SOCKET, 0 };
	struct args a;
	struct out o = { 0 };
	char err[512];
	int r = parse_args(argc, argv, allowed, show_help, &a);

	if (r)
		return r;
	if (a.keys && (r = keyprov_file_open(a.keys, &o.kp, err, sizeof(err)))) {
		fprintf(stderr, "custosctl: %s\n", err);
		return EXIT_USAGE;
	}
	o.json = a.json;
	o.wide = a.wide || !isatty(STDOUT_FILENO);
	if (!o.json)
		ls_table_header(stdout);
	r = walk(&a, &o);
	keyprov_free(o.kp);
	return r;
}

static int cmd_export(int argc, char **argv)
{
	static const int allowed[] = { OPT_DIR, OPT_FORMAT, OPT_SINCE, OPT_SOCKET, 0 };
	struct args a;
	struct out o = { 0 };
	int r = parse_args(argc, argv, allowed, export_help, &a);

	if (r)
		return r;
	if (!a.format || (strcmp(a.format, "jsonl") && strcmp(a.format, "cef")))
		return ctl_usage_error("log export: --format must be jsonl or cef");
	o.raw = !strcmp(a.format, "jsonl");
	o.cef = !o.raw;
	return walk(&a, &o);
}

static const struct ctl_cmd log_cmds[] = {
	{ "init", cmd_init, "create a new audit log and its offline verification key" },
	{ "verify", cmd_verify, "verify a log offline: chain, MACs, signatures, anchors" },
	{ "show", cmd_show, "show records as a table or JSON Lines" },
	{ "export", cmd_export, "export records for a SIEM (jsonl or CEF)" },
	{ "follow", ctl_log_follow, "show records live as custosd writes them" },
};

const struct ctl_group ctl_log_group = {
	"log",
	log_cmds,
	ARRAY_SIZE(log_cmds),
	"the tamper-evident audit log",
};
