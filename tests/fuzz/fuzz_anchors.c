/* fuzz_anchors - libFuzzer target for anchors_parse() (anchors.c), which
 * reads checkpoint anchors back out of an auditd log that
 * `custosctl log verify --anchors FILE` is given.
 *
 * The input is the log's text, passed with its exact length and no NUL
 * after it: the parser must stay within len. The anchors it returns must
 * be sorted, have seq > 0, and print back (anchor_format) to text that
 * parses to the same anchor. */
#include "../../daemon/anchors.c"

#include "fuzz_common.h"

#define SEED_LOG_ID "cc86bcd665a43d067388f72ce38ece5e"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t id[LOG_ID_LEN];
	struct lv_head *v = NULL, *w = NULL;
	size_t n = 0, m = 0, line = 0;

	if (!id[0])
		fuzz_hex(SEED_LOG_ID, id, LOG_ID_LEN);
	int r = anchors_parse((const char *)data, size, id, &v, &n, &line);
	CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
	if (r == -EINVAL)
		CHECK(line >= 1 && line <= size + 1);
	if (r)
		return 0;
	CHECK(n == 0 || v);
	for (size_t i = 0; i < n; i++) {
		CHECK(v[i].seq > 0 && v[i].source && !strcmp(v[i].source, "anchor"));
		CHECK(i == 0 || v[i - 1].seq <= v[i].seq);
		/* Round trip through the writer's format. */
		struct buf b = BUF_INIT;
		anchor_format(&b, id, v[i].seq, v[i].hash);
		CHECK(!b.failed);
		CHECK(anchors_parse(b.p, b.len, id, &w, &m, &line) == 0 && m == 1);
		CHECK(w[0].seq == v[i].seq && !memcmp(w[0].hash, v[i].hash, LOG_HASH_LEN));
		free(w);
		buf_free(&b);
	}
	free(v);
	return 0;
}
