/* custos-bench - Custos's benchmarks. Prints key=value pairs as its last
 * line; tests/bench/run.sh (make bench) runs the standard set beside
 * reference figures measured in the same run.
 *
 *   custos-bench log --dir DIR --records N --writers W --durability sync|batch
 *                    --record-bytes B [--segment-bytes S]
 *   custos-bench verify --dir DIR --key FILE
 *   custos-bench settle --dir DIR     (waits until every full segment is sealed)
 *   custos-bench crypt --bytes N      (field encryption and decryption, ops/s)
 *   custos-bench keycache --records N (key-cache lookups/s with N keys cached)
 *   custos-bench ipc --dir DIR --records N --durability D
 *                                     (appends through the logger role's IPC)
 *   custos-bench control --socket PATH --records N
 *                                     (latency of `status` on custosd's socket) */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auditlog.h"
#include "fieldcrypt.h"
#include "keycache.h"
#include "logmsg.h"
#include "role.h"
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include "logverify.h"
#include "secmem.h"

struct bcfg {
	const char *dir, *key;
	uint64_t records, writers, record_bytes, segment_bytes, bytes;
	enum alog_durability durability;
};

struct worker {
	pthread_t t;
	struct alog *l;
	struct alog_rec *rec;
	uint64_t n;
	uint32_t *lat_us;
	int err;
};

static double mono(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *work(void *arg)
{
	struct worker *w = arg;

	for (uint64_t i = 0; i < w->n; i++) {
		double t0 = mono();
		int r = alog_append(w->l, w->rec, NULL);
		if (r) {
			w->err = r;
			return NULL;
		}
		double us = (mono() - t0) * 1e6;
		w->lat_us[i] = us > 4e9 ? UINT32_MAX : (uint32_t)us;
	}
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int usage(void)
{
	fputs("usage: custos-bench log --dir DIR --records N --writers W --durability sync|batch\n"
	      "                        --record-bytes B [--segment-bytes S]\n"
	      "       custos-bench verify --dir DIR --key FILE\n"
	      "       custos-bench settle --dir DIR\n"
	      "       custos-bench crypt --bytes N\n"
	      "       custos-bench keycache --records N\n"
	      "       custos-bench ipc --dir DIR --records N --durability sync|batch\n"
	      "       custos-bench control --socket PATH --records N\n",
	      stderr);
	return 2;
}

/* A record of about cfg->record_bytes on disk: the statement is padded. */
static void make_record(const struct bcfg *c, struct alog_rec *r, struct alog_actor *a, char **stmt)
{
	static const char *const cols[] = { "email", "name", "phone" };
	static const size_t overhead = 400; /* framing, actor, object, fp, prev, mac */
	size_t pad = c->record_bytes > overhead ? c->record_bytes - overhead : 8;

	*a = (struct alog_actor){ "app_rw", "shop-web", "10.1.2.3", "c0ffee-17", NULL };
	*stmt = malloc(pad + 1);
	const char *base = "SELECT email, name, phone FROM public.customers WHERE id = $1 /* ";
	for (size_t i = 0; i < pad; i++)
		(*stmt)[i] = i < strlen(base) ? base[i] : (char)('a' + i % 26);
	(*stmt)[pad] = '\0';
	*r = (struct alog_rec){ .type = "access",
		                .actor = a,
		                .table = "public.customers",
		                .columns = cols,
		                .ncolumns = 3,
		                .fingerprint = "5e1a8c03d2b7f964",
		                .statement = *stmt,
		                .rows = 1 };
}

static int run_log(const struct bcfg *c)
{
	struct alog_opts o = { .durability = c->durability, .segment_bytes = c->segment_bytes };
	struct alog *l;
	struct alog_rec rec;
	struct alog_actor actor;
	char err[512], *stmt;
	struct worker *w = calloc(c->writers, sizeof(*w));
	uint32_t *lat = calloc(c->records, sizeof(*lat));
	uint64_t per = c->records / c->writers, done = 0;

	if (!w || !lat || alog_open(c->dir, &o, &l, err, sizeof(err)))
		return fprintf(stderr, "custos-bench: %s\n", w && lat ? err : "out of memory"), 1;
	make_record(c, &rec, &actor, &stmt);
	double t0 = mono();
	for (uint64_t i = 0; i < c->writers; i++) {
		w[i] = (struct worker){ .l = l, .rec = &rec, .n = per, .lat_us = lat + i * per };
		pthread_create(&w[i].t, NULL, work, &w[i]);
	}
	int failed = 0;
	for (uint64_t i = 0; i < c->writers; i++) {
		pthread_join(w[i].t, NULL);
		done += w[i].n;
		if (w[i].err && !failed)
			failed = w[i].err;
	}
	double secs = mono() - t0;
	int r = alog_close(l);
	if (failed || r)
		return fprintf(stderr, "custos-bench: append failed: %s\n", strerror(-(failed ? failed : r))),
		       1;
	qsort(lat, done, sizeof(*lat), cmp_u32);
	printf("mode=%s writers=%" PRIu64 " records=%" PRIu64
	       " seconds=%.3f records_per_s=%.0f p50_us=%u p99_us=%u\n",
	       c->durability == ALOG_SYNC ? "sync" : "batch", c->writers, done, secs, (double)done / secs,
	       lat[done / 2], lat[done * 99 / 100]);
	free(stmt);
	free(lat);
	free(w);
	return 0;
}

static int run_verify(const struct bcfg *c)
{
	struct logkeys *k = secmem_alloc(sizeof(*k));
	struct lv_opts o = { .keys = k };
	struct lv_result res;
	char *text, err[512];
	size_t len;

	if (!k || read_file(c->key, 4096, &text, &len) || logkey_parse(text, len, k, err, sizeof(err)))
		return fprintf(stderr, "custos-bench: %s: cannot read the key file\n", c->key), 1;
	free(text);
	double t0 = mono();
	int r = lv_verify(c->dir, &o, &res, err, sizeof(err));
	double secs = mono() - t0;
	if (r || !res.ok)
		return fprintf(stderr, "custos-bench: verify: %s\n", r ? err : res.reason), 1;
	printf("records=%" PRIu64 " bytes=%" PRIu64 " seconds=%.3f mb_per_s=%.1f mean_record_bytes=%" PRIu64
	       "\n",
	       res.records, res.bytes, secs, (double)res.bytes / 1e6 / secs, res.bytes / res.records);
	secmem_free(k, sizeof(*k));
	return 0;
}

/* Opens the log and waits for the sealer to finish its backlog, so that a
 * following run measures the log's size, not leftover compression. */
static int run_settle(const struct bcfg *c)
{
	struct alog_opts o = { .durability = ALOG_BATCH };
	struct alog *l;
	char err[512];

	if (alog_open(c->dir, &o, &l, err, sizeof(err)))
		return fprintf(stderr, "custos-bench: %s\n", err), 1;
	double t0 = mono();
	while (alog_unsealed(l) && mono() - t0 < 600)
		usleep(100000);
	printf("sealed_in_s=%.1f\n", mono() - t0);
	return alog_close(l) ? 1 : 0;
}

/* Field encryption as the proxy will use it: one value at a time, the
 * context binding table, column and subject. */
static int run_crypt(uint64_t bytes)
{
	struct fc_key *k = secmem_alloc(sizeof(*k));
	static const char ctx[] = "shop.customers|email|customer:42";
	struct buf ct = BUF_INIT, pt = BUF_INIT;
	char *value = malloc(bytes + 1);
	uint64_t n = 0;

	if (!k || !value || bytes > FC_MAX_PLAINTEXT)
		return fprintf(stderr, "custos-bench: out of memory\n"), 1;
	memset(value, 'v', bytes);
	memset(k, 7, sizeof(*k));
	double t0 = mono(), enc_s, dec_s;
	for (n = 0; mono() - t0 < 1.0; n++) {
		buf_reset(&ct);
		if (fc_encrypt(k, ctx, sizeof(ctx) - 1, value, bytes, &ct))
			return fprintf(stderr, "custos-bench: encrypt failed\n"), 1;
	}
	enc_s = (double)n / (mono() - t0);
	t0 = mono();
	for (n = 0; mono() - t0 < 1.0; n++) {
		buf_reset(&pt);
		if (fc_decrypt(k, ctx, sizeof(ctx) - 1, ct.p, ct.len, &pt) || pt.len != bytes)
			return fprintf(stderr, "custos-bench: decrypt failed\n"), 1;
	}
	dec_s = (double)n / (mono() - t0);
	printf("bytes=%" PRIu64 " encrypt_per_s=%.0f decrypt_per_s=%.0f\n", bytes, enc_s, dec_s);
	buf_free(&ct);
	buf_free(&pt);
	free(value);
	secmem_free(k, sizeof(*k));
	return 0;
}

/* Key-cache hits in random order over n cached keys: the bare cache, and
 * as the keystore does it (under its mutex, copying the key out). */
static int run_keycache(uint64_t n)
{
	struct keycache *kc = kc_new(n);
	struct kc_key *k = secmem_alloc(sizeof(*k));
	uint8_t(*ids)[FC_KEYID_LEN] = malloc(n * FC_KEYID_LEN);
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	uint64_t hits = 0, i;
	double t0, bare_s, locked_s;

	if (!kc || !k || !ids)
		return fprintf(stderr, "custos-bench: out of memory for %" PRIu64 " keys\n", n), 1;
	for (i = 0; i < n; i++) {
		memset(k, 0, sizeof(*k));
		if (RAND_bytes(k->k.id, FC_KEYID_LEN) != 1 || RAND_bytes(k->ref, SUBJECT_REF_LEN) != 1)
			return 1;
		k->has_ref = true;
		memcpy(ids[i], k->k.id, FC_KEYID_LEN);
		kc_put(kc, k);
	}
	uint64_t x = 88172645463325252ull; /* xorshift: cheap random order */
	t0 = mono();
	for (i = 0; (i & 1023) || mono() - t0 < 1.0; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		hits += kc_get(kc, ids[x % n], k);
	}
	bare_s = (double)i / (mono() - t0);
	t0 = mono();
	for (i = 0; (i & 1023) || mono() - t0 < 1.0; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		pthread_mutex_lock(&mu);
		hits += kc_get(kc, ids[x % n], k);
		pthread_mutex_unlock(&mu);
	}
	locked_s = (double)i / (mono() - t0);
	printf("keys=%" PRIu64 " lookups_per_s=%.0f locked_lookups_per_s=%.0f hits=%" PRIu64 "\n", n, bare_s,
	       locked_s, hits);
	kc_free(kc);
	secmem_free(k, sizeof(*k));
	free(ids);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Appends as another role does: IPC_LOG_APPEND to a logger process over
 * its channel, one request at a time (the bench plays the parent). */
static int run_ipc(const struct bcfg *c)
{
	struct cfg *conf = cfg_new();
	int sv[2];
	static uint8_t buf[IPC_MAX_MSG + 1];
	struct ipc_msg m, r;
	struct alog_actor actor = { .user = "shop_app", .app = "bench", .addr = "10.0.0.7" };
	struct alog_rec rec = { .type = "query", .actor = &actor, .rows = 1 };
	struct buf lists = BUF_INIT;
	char detail[600];

	if (!conf || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return 1;
	free(conf->log_dir);
	conf->log_dir = strdup(c->dir);
	conf->durability = c->durability;
	conf->anchor = CFG_ANCHOR_OFF;
	pid_t pid = fork();
	if (pid == 0) {
		static struct role_env env;
		close(sv[0]);
		env = (struct role_env){
			.name = "logger", .config_path = "bench", .cfg = conf, .parent = sv[1]
		};
		_exit(role_logger.main(&env));
	}
	close(sv[1]);
	if (ipc_recv(sv[0], buf, &r) || r.type != IPC_OK)
		return fprintf(stderr, "custos-bench: the logger did not start\n"), 1;
	snprintf(detail, sizeof(detail), "{\"pad\":\"%0*d\"}",
	         (int)(c->record_bytes > 200 ? c->record_bytes - 200 : 1), 0);
	rec.detail = detail;
	if (logmsg_encode(&rec, "", false, &lists, &m))
		return fprintf(stderr, "custos-bench: cannot encode the record\n"), 1;
	double t0 = mono();
	for (uint64_t i = 0; i < c->records; i++)
		if (role_call(NULL, sv[0], &m, buf, &r, 10000) || r.type != IPC_LOG_APPENDED)
			return fprintf(stderr, "custos-bench: append %" PRIu64 " failed\n", i), 1;
	double secs = mono() - t0;
	buf_free(&lists);
	struct ipc_msg stop = { .type = IPC_STOP };
	(void)!ipc_send(sv[0], &stop);
	waitpid(pid, NULL, 0);
	printf("mode=%s records=%" PRIu64 " seconds=%.3f records_per_s=%.0f\n",
	       c->durability == ALOG_SYNC ? "sync" : "batch", c->records, secs, (double)c->records / secs);
	cfg_free(conf);
	return 0;
}

/* One `status` request on the control socket; its latency in µs, or < 0. */
static double one_status(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static const char req[] = "{\"v\":1,\"cmd\":\"status\"}\n";
	char reply[8192];
	size_t got = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	double t0 = mono();
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1)
		got = 0;
	else
		for (ssize_t n; got < sizeof(reply) && (n = read(fd, reply + got, sizeof(reply) - got)) > 0;)
			got += (size_t)n;
	double us = (mono() - t0) * 1e6;
	if (fd >= 0)
		close(fd);
	static const char ok[] = "{\"v\":1,\"ok\":true";
	return got >= sizeof(ok) && !memcmp(reply, ok, sizeof(ok) - 1) ? us : -1;
}

static int run_control(const struct bcfg *c)
{
	double *lat = calloc(c->records, sizeof(*lat));

	if (!lat || !c->dir)
		return usage();
	for (uint64_t i = 0; i < c->records; i++)
		if ((lat[i] = one_status(c->dir)) < 0)
			return fprintf(stderr, "custos-bench: status %" PRIu64 " failed\n", i), 1;
	qsort(lat, c->records, sizeof(*lat), cmp_double);
	printf("requests=%" PRIu64 " p50_us=%.0f p99_us=%.0f\n", c->records, lat[c->records / 2],
	       lat[c->records * 99 / 100]);
	free(lat);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", 1, 0, 'd' },
		{ "records", 1, 0, 'n' },
		{ "writers", 1, 0, 'w' },
		{ "durability", 1, 0, 'D' },
		{ "record-bytes", 1, 0, 'b' },
		{ "segment-bytes", 1, 0, 's' },
		{ "key", 1, 0, 'k' },
		{ "help", 0, 0, 'h' },
		{ "bytes", 1, 0, 'B' },
		{ "socket", 1, 0, 'd' },
		{ 0 },
	};
	struct bcfg c = { .records = 100000, .writers = 1, .record_bytes = 512 };
	int o;

	if (argc < 2 || (strcmp(argv[1], "log") && strcmp(argv[1], "verify") && strcmp(argv[1], "settle") &&
	                 strcmp(argv[1], "crypt") && strcmp(argv[1], "keycache") && strcmp(argv[1], "ipc") &&
	                 strcmp(argv[1], "control")))
		return usage();
	optind = 2;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		bool ok = true;
		switch (o) {
		case 'd': c.dir = optarg; break;
		case 'k': c.key = optarg; break;
		case 'B': ok = parse_u64(optarg, &c.bytes); break;
		case 'n': ok = parse_u64(optarg, &c.records); break;
		case 'w': ok = parse_u64(optarg, &c.writers) && c.writers >= 1 && c.writers <= 1024; break;
		case 'b': ok = parse_u64(optarg, &c.record_bytes); break;
		case 's': ok = parse_size(optarg, &c.segment_bytes); break;
		case 'D':
			ok = !strcmp(optarg, "sync") || !strcmp(optarg, "batch");
			c.durability = strcmp(optarg, "batch") ? ALOG_SYNC : ALOG_BATCH;
			break;
		case 'h': return usage(), 0;
		default: return usage();
		}
		if (!ok)
			return fprintf(stderr, "custos-bench: bad value for --%s\n",
			               opts[optind > 0 ? 0 : 0].name),
			       2;
	}
	if (!strcmp(argv[1], "keycache")) {
		if (secmem_init(1u << 24))
			fputs("custos-bench: warning: cannot lock memory; the cache is on the normal heap\n",
			      stderr);
		return run_keycache(c.records ? c.records : 65536);
	}
	if (!strcmp(argv[1], "control"))
		return run_control(&c);
	if (!strcmp(argv[1], "crypt"))
		return secmem_init(1u << 16) ? 1 : run_crypt(c.bytes ? c.bytes : 64);
	if (!c.dir || (argv[1][0] == 'v' && !c.key))
		return usage();
	if (secmem_init(1u << 20)) /* ipc's logger keeps its key cache there: KCL_HEAP(KCL_SLOTS_LOGGER) */
		fputs("custos-bench: warning: cannot lock memory\n", stderr);
	if (!strcmp(argv[1], "settle"))
		return run_settle(&c);
	if (!strcmp(argv[1], "ipc"))
		return run_ipc(&c);
	return argv[1][0] == 'l' ? run_log(&c) : run_verify(&c);
}
