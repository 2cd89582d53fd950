/* custosd - the Custos daemon. For now it is the logger alone: it holds the
 * audit log open, writes checkpoints on time (idle or not), records its own
 * start and stop, and on SIGTERM or SIGINT writes a final checkpoint and
 * closes. The roles of DESIGN.md (keeper, control, proxy, ...) join it in
 * later issues. Messages go to stderr with sd-daemon priority prefixes. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auditlog.h"
#include "secmem.h"

#define VERSION "0.1.0"

static const char usage_text[] =
    "Usage: custosd --log-dir DIR [--durability sync|batch] [--checkpoint-seconds N]\n"
    "               [--checkpoint-records N] [--segment-bytes SIZE]\n"
    "Run the Custos logger on the audit log in DIR (create it first with\n"
    "`custosctl log init`). Stops cleanly on SIGTERM or SIGINT.\n";

struct opts {
	const char *dir;
	struct alog_opts log;
};

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "log-dir", 1, 0, 'd' },
		{ "durability", 1, 0, 'D' },
		{ "checkpoint-seconds", 1, 0, 'c' },
		{ "checkpoint-records", 1, 0, 'n' },
		{ "segment-bytes", 1, 0, 's' },
		{ "help", 0, 0, 'h' },
		{ "version", 0, 0, 'V' },
		{ 0 },
	};
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		bool ok = true;
		switch (c) {
		case 'd': o->dir = optarg; break;
		case 'D':
			ok = !strcmp(optarg, "sync") || !strcmp(optarg, "batch");
			o->log.durability = strcmp(optarg, "batch") ? ALOG_SYNC : ALOG_BATCH;
			break;
		case 'c':
			ok = parse_u64(optarg, &v) && v >= 1 && v <= 86400;
			o->log.checkpoint_ms = (uint32_t)(v * 1000);
			break;
		case 'n':
			ok = parse_u64(optarg, &v) && v >= 1 && v <= 10000000;
			o->log.checkpoint_records = (uint32_t)v;
			break;
		case 's':
			ok = parse_size(optarg, &o->log.segment_bytes) && o->log.segment_bytes >= 65536;
			break;
		case 'h': fputs(usage_text, stdout); exit(0);
		case 'V': puts("custosd " VERSION); exit(0);
		default: fputs(usage_text, stderr); return 2;
		}
		if (!ok) {
			fprintf(stderr, "<3>custosd: invalid value for %s: %s\n", argv[optind - 1], optarg);
			return 2;
		}
	}
	if (!o->dir || optind < argc) {
		fputs(usage_text, stderr);
		return 2;
	}
	return 0;
}

static int note(struct alog *l, const char *event)
{
	char detail[64];
	snprintf(detail, sizeof(detail), "{\"event\":\"%s\",\"pid\":%ld}", event, (long)getpid());
	struct alog_rec r = { .type = "service", .rows = -1, .detail = detail };
	return alog_append(l, &r, NULL);
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct alog *l;
	char err[512];
	sigset_t set;
	int sig, r = parse(argc, argv, &o);

	if (r)
		return r;
	if (secmem_init(1u << 16))
		fputs("<4>custosd: cannot lock memory for keys; keys may be swapped out\n", stderr);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* before the log's threads start */
	if ((r = alog_open(o.dir, &o.log, &l, err, sizeof(err)))) {
		fprintf(stderr, "<3>custosd: %s\n", err);
		return 1;
	}
	if ((r = note(l, "start")))
		fprintf(stderr, "<3>custosd: cannot write to the audit log: %s\n", strerror(-r));
	else
		fprintf(stderr, "<6>custosd: logging to %s\n", o.dir);
	while (!r && sigwait(&set, &sig) == 0 && sig != SIGTERM && sig != SIGINT)
		;
	if (!r && (r = note(l, "stop")))
		fprintf(stderr, "<3>custosd: cannot write the stop record: %s\n", strerror(-r));
	int cr = alog_close(l);
	if (cr)
		fprintf(stderr, "<3>custosd: closing the audit log: %s\n", strerror(-cr));
	else
		fprintf(stderr, "<6>custosd: stopped\n");
	return r || cr ? 1 : 0;
}
