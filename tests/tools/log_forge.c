/* log_forge - the attacker of the forward-integrity tests: someone who took
 * the host holds the log directory's current state (the current MAC key and
 * the signing key) but not k0. It rewrites record --seq in the plain active
 * segment (changing its "rows" to 999999) and re-chains, re-MACs and
 * re-signs every later record, so the chain and the checkpoint signatures
 * are valid again. Only verification with k0 can tell.
 *
 *   log_forge --dir DIR --seq N */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logrec.h"
#include "logseg.h"

static int die(const char *msg)
{
	fprintf(stderr, "log_forge: %s\n", msg);
	return 2;
}

/* Re-emits one record: same header and body except rows, new prev/mac. */
static int reemit(struct buf *out, const struct lr_frame *f, const struct logstate *st, struct lr_mac *m,
                  uint8_t prev[LOG_HASH_LEN], bool forge)
{
	char type[LR_MAX_TYPE + 1];
	size_t start = out->len;
	struct buf body = BUF_INIT;

	memcpy(type, f->type, f->typelen);
	type[f->typelen] = '\0';
	buf_add(out, "{\"seq\":", 7);
	buf_printf(out, "%llu,\"ts\":\"%.*s\",\"type\":\"%s\"", (unsigned long long)f->seq, TS_LEN, f->ts,
	           type);
	if (lr_is(f, "checkpoint")) {
		uint8_t sig[LOG_SIG_LEN];
		uint64_t epoch;
		if (!lr_checkpoint_parse(f, &epoch, sig) ||
		    logkey_sign(st->sign_key, st->log_id, f->seq, epoch, prev, sig))
			return -1;
		lr_checkpoint_body(&body, epoch, sig);
	} else {
		buf_add(&body, f->body, f->bodylen);
		char *rows = forge ? memmem(body.p, body.len, "\"rows\":", 7) : NULL;
		if (forge && !rows)
			return -1;
		if (rows) {
			struct buf b2 = BUF_INIT;
			buf_add(&b2, body.p, (size_t)(rows - body.p) + 7);
			buf_adds(&b2, "999999");
			char *end = rows + 7;
			while (end < body.p + body.len && *end >= '0' && *end <= '9')
				end++;
			buf_add(&b2, end, (size_t)(body.p + body.len - end));
			buf_free(&body);
			body = b2;
		}
	}
	buf_add(out, body.p, body.len);
	buf_free(&body);
	return lr_finish(out, start, prev, m, prev);
}

int main(int argc, char **argv)
{
	if (argc != 5 || strcmp(argv[1], "--dir") || strcmp(argv[3], "--seq"))
		return die("usage: log_forge --dir DIR --seq N");
	const char *dir = argv[2];
	uint64_t target = strtoull(argv[4], NULL, 10);
	char path[4096], *text, *state;
	size_t len, slen;
	struct logstate st;
	struct seginfo *v;
	size_t n;

	snprintf(path, sizeof(path), "%s/log.state", dir);
	if (read_file(path, 4096, &state, &slen) || logstate_parse(state, slen, &st))
		return die("cannot read log.state");
	if (logseg_list(dir, &v, &n) || n == 0 || v[n - 1].gz)
		return die("no plain active segment");
	snprintf(path, sizeof(path), "%s/%s", dir, v[n - 1].name);
	if (read_file(path, 1u << 30, &text, &len))
		return die("cannot read the segment");
	struct lr_mac *m = lr_mac_new(st.mac_key);
	struct buf out = BUF_INIT;
	uint8_t prev[LOG_HASH_LEN];
	bool started = false;
	for (char *p = text, *end = text + len; p < end && *p != '\n';) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		struct lr_frame f;
		if (!nl || lr_scan(p, (size_t)(nl - p), &f))
			return die("unreadable record");
		if (f.seq == target) {
			started = true;
			memcpy(prev, f.prev, LOG_HASH_LEN);
		}
		if (!started)
			buf_add(&out, p, (size_t)(nl - p) + 1);
		else if (reemit(&out, &f, &st, m, prev, f.seq == target))
			return die("cannot rewrite a record");
		p = nl + 1;
	}
	if (!started)
		return die("record not in the active segment");
	int fd = open(path, O_WRONLY | O_TRUNC);
	bool ok = fd >= 0 && write(fd, out.p, out.len) == (ssize_t)out.len && close(fd) == 0;
	buf_free(&out);
	lr_mac_free(m);
	free(text);
	free(state);
	free(v);
	return ok ? 0 : die("cannot write the segment");
}
