/* fuzz_logverify - libFuzzer target for offline verification (logverify.c)
 * and, on the same files, the reader behind `log show` and `log export`
 * (logread.c), both through the segment reader (logseg.c).
 *
 * Input: one mode byte, then the contents of segment 1.
 *   bit 0  write a gzip segment, seg-00000000000000000001.jsonl.gz, instead
 *          of the plain seg-00000000000000000001.jsonl
 *   bit 1  (with bit 0) the contents already are gzip data: write them as
 *          they are, so the decompressor sees damaged streams too
 *   bit 2  verify against an expected head (record 10 of the seed log)
 *   bit 3  read with a filter (type, time range, subject)
 *
 * The segment goes into one temporary directory per process (under
 * $TMPDIR), rewritten for each input. The keys are those of the log the
 * seeds were taken from, so the seeds verify and the fuzzer starts from
 * records whose MACs and checkpoint signatures hold. */
#include "../../daemon/logverify.c"

#include <zlib.h>

#include "fuzz_common.h"
#include "logread.h"

#define SEED_LOG_ID "cc86bcd665a43d067388f72ce38ece5e"
#define SEED_PUB "9152eef8384a2d9f1a923b10de203122912c3baa727f338514bee1b15681311c"
#define SEED_MAC_SEED "832bf47636ab647339da251d162495cb9fc75139946c77c2600dcf20261ffa8d"
#define SEED_HEAD "10:43d55846ba276fe779afb5051112e54a2e4935da8460815fd518b4b14ede8099"

static char dir[4096], plain[4096 + 64], gz[4096 + 64];
static struct logkeys keys;
static struct lv_head head;
static bool verbose; /* FUZZ_VERBOSE=1: print the verdicts (to check seeds) */

static void cleanup(void)
{
	unlink(plain);
	unlink(gz);
	rmdir(dir);
}

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/fuzz_logverify.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("fuzz_logverify: mkdtemp");
		abort();
	}
	snprintf(plain, sizeof(plain), "%s/seg-00000000000000000001.jsonl", dir);
	snprintf(gz, sizeof(gz), "%s/seg-00000000000000000001.jsonl.gz", dir);
	atexit(cleanup);
	fuzz_hex(SEED_LOG_ID, keys.log_id, LOG_ID_LEN);
	fuzz_hex(SEED_PUB, keys.pub, 32);
	fuzz_hex(SEED_MAC_SEED, keys.seed, LOG_KEY_LEN);
	keys.has_seed = true;
	if (!lv_parse_head(SEED_HEAD, &head))
		abort();
	head.source = "expected head";
	verbose = getenv("FUZZ_VERBOSE") != NULL;
}

static void write_plain(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f)) {
		perror(path);
		abort();
	}
}

static void write_gz(const char *path, const uint8_t *p, size_t n)
{
	gzFile f = gzopen(path, "wb1");

	if (!f || (n && gzwrite(f, p, (unsigned)n) != (int)n) || gzclose(f) != Z_OK) {
		fprintf(stderr, "fuzz_logverify: cannot write %s\n", path);
		abort();
	}
}

static int each(void *arg, json_t *rec, const char *line, size_t len)
{
	(void)arg;
	(void)rec;
	(void)line;
	(void)len;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lv_opts o = { .keys = &keys };
	struct lv_result res;
	struct lrd_filter all = { 0 };
	struct lrd_filter some = {
		.has_since = true,
		.has_until = true,
		.since = 1700000000000000,
		.until = 4102444800000000,
		.type = "access",
		.subject_ref = "4e2c6a1f0b9d8e7c6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f",
	};
	struct lrd_error rerr;
	char err[512];

	if (!dir[0])
		setup();
	if (size == 0)
		return 0;
	uint8_t mode = data[0];
	data++;
	size--;

	unlink(plain);
	unlink(gz);
	if (!(mode & 1))
		write_plain(plain, data, size);
	else if (mode & 2)
		write_plain(gz, data, size);
	else
		write_gz(gz, data, size);

	if (mode & 4) {
		o.heads = &head;
		o.nheads = 1;
	}
	int r = lv_verify(dir, &o, &res, err, sizeof(err));
	CHECK(r <= 0);
	if (r == 0 && res.ok) /* each record is a line of at least 202 bytes */
		CHECK(res.records > 0 && res.head_seq == res.records &&
		      ((mode & 3) == 3 || res.records <= size / 203 + 1));
	if (verbose)
		fprintf(stderr, "verify: r=%d ok=%d records=%llu: %s\n", r, r ? 0 : res.ok,
		        r ? 0ull : (unsigned long long)res.records, r ? err : res.reason);
	r = lrd_each(dir, mode & 8 ? &some : &all, each, NULL, &rerr);
	CHECK(r <= 1);
	if (verbose)
		fprintf(stderr, "read: r=%d %s\n", r, r ? rerr.reason : "");
	return 0;
}
