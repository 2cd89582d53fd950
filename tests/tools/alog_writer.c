/* alog_writer - a test and demo driver for the audit log's append API,
 * standing in for the logger role until the daemon has one.
 *
 *   alog_writer --dir DIR [--keys FILE] [--durability sync|batch]
 *               [--segment-bytes N] [--checkpoint-records N] [--checkpoint-ms N]
 *               [--generate N --threads W]
 *
 * Without --generate it reads one JSON object per stdin line:
 *   {"type":"access","actor":{"user":"alice","addr":"10.0.0.5"},"table":"customers",
 *    "columns":["email"],"subjects":[["customer","42"]],"fp":"..","stmt":"..","rows":1}
 * and prints "ack SEQ" once each record is acknowledged, or "err REASON".
 * With --generate it appends N synthetic records from W threads, printing
 * "ack SEQ" likewise; with --subjects M (and --keys) each names one of M
 * customers, in turn. --shred TYPE:ID erases a subject's key in --keys. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auditlog.h"
#include "secmem.h"

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static struct alog *lg;
static uint64_t gen_left, gen_subjects, gen_next;

static void ack(uint64_t seq)
{
	pthread_mutex_lock(&out_mu);
	printf("ack %llu\n", (unsigned long long)seq);
	fflush(stdout);
	pthread_mutex_unlock(&out_mu);
}

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int append_json(json_t *j)
{
	struct alog_actor actor;
	json_t *a = json_object_get(j, "actor"), *cols = json_object_get(j, "columns");
	json_t *subs = json_object_get(j, "subjects"), *x;
	const char *colv[64];
	struct alog_subject subv[64];
	size_t i;
	char *detail =
	    json_object_get(j, "detail") ? json_dumps(json_object_get(j, "detail"), JSON_COMPACT) : NULL;
	struct alog_rec r = {
		.type = jstr(j, "type"),
		.table = jstr(j, "table"),
		.fingerprint = jstr(j, "fp"),
		.statement = jstr(j, "stmt"),
		.detail = detail,
		.rows = json_is_integer(json_object_get(j, "rows"))
		            ? json_integer_value(json_object_get(j, "rows"))
		            : -1,
	};
	if (a) {
		actor = (struct alog_actor){ jstr(a, "user"), jstr(a, "app"), jstr(a, "addr"),
			                     jstr(a, "session"), jstr(a, "tls") };
		r.actor = &actor;
	}
	json_array_foreach(cols, i, x) if (i < 64) colv[r.ncolumns++] = json_string_value(x);
	json_array_foreach(subs, i, x) if (i < 64) subv[r.nsubjects++] =
	    (struct alog_subject){ json_string_value(json_array_get(x, 0)),
		                   json_string_value(json_array_get(x, 1)) };
	r.columns = colv;
	r.subjects = subv;
	uint64_t seq;
	int err = alog_append(lg, &r, &seq);
	free(detail);
	if (err) {
		printf("err %s\n", strerror(-err));
		fflush(stdout);
	} else {
		ack(seq);
	}
	return err;
}

static void *generate(void *arg)
{
	(void)arg;
	static const char *const cols[] = { "email", "name" };
	struct alog_actor actor = { "app_rw", "shop-web", "10.0.0.7", "s-1", NULL };
	struct alog_rec r = { .type = "access",
		              .actor = &actor,
		              .table = "public.customers",
		              .columns = cols,
		              .ncolumns = 2,
		              .fingerprint = "8f2c1d0e5a7b3c41",
		              .statement = "SELECT email, name FROM customers WHERE id = $1",
		              .rows = 1 };
	char id[24];
	struct alog_subject subj = { "customer", id };
	for (;;) {
		if (__atomic_fetch_sub(&gen_left, 1, __ATOMIC_RELAXED) == 0 || gen_left > (1ull << 62))
			return NULL;
		if (gen_subjects) {
			snprintf(id, sizeof(id), "%llu",
			         (unsigned long long)(__atomic_fetch_add(&gen_next, 1, __ATOMIC_RELAXED) %
			                                  gen_subjects +
			                              1));
			r.subjects = &subj;
			r.nsubjects = 1;
		}
		uint64_t seq;
		int err = alog_append(lg, &r, &seq);
		if (err) {
			fprintf(stderr, "alog_writer: append failed: %s\n", strerror(-err));
			continue;
		}
		ack(seq);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", 1, 0, 'd' },
		{ "keys", 1, 0, 'k' },
		{ "durability", 1, 0, 'D' },
		{ "segment-bytes", 1, 0, 's' },
		{ "checkpoint-records", 1, 0, 'c' },
		{ "checkpoint-ms", 1, 0, 'm' },
		{ "generate", 1, 0, 'g' },
		{ "threads", 1, 0, 't' },
		{ "shred", 1, 0, 'S' },
		{ "subjects", 1, 0, 'u' },
		{ 0 },
	};
	struct alog_opts o = { 0 };
	const char *dir = NULL, *keys = NULL, *shred = NULL;
	int c, threads = 1, failures = 0;
	char err[512];

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'k': keys = optarg; break;
		case 'D': o.durability = strcmp(optarg, "batch") ? ALOG_SYNC : ALOG_BATCH; break;
		case 's': o.segment_bytes = strtoull(optarg, NULL, 10); break;
		case 'c': o.checkpoint_records = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'm': o.checkpoint_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'g': gen_left = strtoull(optarg, NULL, 10); break;
		case 't': threads = atoi(optarg); break;
		case 'S': shred = optarg; break;
		case 'u': gen_subjects = strtoull(optarg, NULL, 10); break;
		default: return 2;
		}
	}
	if (shred) {
		char *colon = strchr(shred, ':');
		if (!keys || !colon)
			return fprintf(stderr, "usage: alog_writer --keys FILE --shred TYPE:ID\n"), 2;
		*colon = '\0';
		int r = keyprov_file_shred(keys, shred, colon + 1);
		if (r)
			fprintf(stderr, "alog_writer: shred: %s\n", strerror(-r));
		return r ? 1 : 0;
	}
	if (!dir || threads < 1 || threads > 256)
		return fprintf(stderr, "usage: alog_writer --dir DIR ... (see the source)\n"), 2;
	if (secmem_init(1u << 16))
		fprintf(stderr, "alog_writer: warning: cannot lock memory\n");
	if (keys && keyprov_file_open(keys, &o.kp, err, sizeof(err)))
		return fprintf(stderr, "alog_writer: %s\n", err), 2;
	if (alog_open(dir, &o, &lg, err, sizeof(err)))
		return fprintf(stderr, "alog_writer: %s\n", err), 2;
	if (gen_left) {
		pthread_t t[256];
		for (int i = 0; i < threads; i++)
			pthread_create(&t[i], NULL, generate, NULL);
		for (int i = 0; i < threads; i++)
			pthread_join(t[i], NULL);
	} else {
		char *line = NULL;
		size_t cap = 0;
		while (getline(&line, &cap, stdin) > 0) {
			json_t *j = json_loads(line, 0, NULL);
			if (!j)
				printf("err not a JSON object\n"), fflush(stdout);
			failures += !j || append_json(j);
			json_decref(j);
		}
		free(line);
	}
	int r = alog_close(lg);
	if (r)
		fprintf(stderr, "alog_writer: close: %s\n", strerror(-r));
	keyprov_free(o.kp);
	return r || failures ? 1 : 0;
}
