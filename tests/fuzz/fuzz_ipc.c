/* fuzz_ipc.c - the IPC message decoder (daemon/ipc.c): any bytes are
 * rejected, or decode into fields matching the type's schema that encode
 * back to the very same bytes. A record (IPC_LOG_APPEND) is then decoded as
 * the logger does (daemon/logmsg.c): refused, or bounded lists whose
 * record encodes again; so is each record framed in an IPC_LOG_BATCH. */
#include "../../daemon/ipc.c"
#include "../../daemon/logmsg.h"
#include "fuzz_common.h"

static void check_record(struct ipc_msg *m)
{
	static struct logmsg lm;
	struct buf lists = BUF_INIT;
	struct ipc_msg again;

	if (logmsg_decode(m, &lm))
		return;
	CHECK(lm.rec.ncolumns <= LOGMSG_MAX_COLUMNS && lm.rec.nsubjects <= LOGMSG_MAX_SUBJECTS);
	for (size_t i = 0; i < lm.rec.nsubjects; i++)
		CHECK(*lm.rec.subjects[i].type && *lm.rec.subjects[i].id);
	CHECK(logmsg_encode(&lm.rec, lm.event, lm.lazy, &lists, &again) == 0);
	buf_free(&lists);
}

/* A batch's frames: each decodes as a message of its own, or the batch
 * ends refused; a record among them is checked as above. */
static void check_frames(struct ipc_msg *m)
{
	struct ipc_msg one;
	size_t at = 0, last = 0;
	int r;

	while ((r = ipc_unframe(&m->f[0], &at, &one)) > 0) {
		CHECK(at > last && at <= m->f[0].b.len);
		last = at;
		if (one.type == IPC_LOG_APPEND)
			check_record(&one);
	}
	CHECK(r == 0 || r == -EBADMSG);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[IPC_MAX_MSG + 1], again[IPC_MAX_MSG];
	struct ipc_msg m;

	if (size > IPC_MAX_MSG)
		return 0;
	memcpy(buf, data, size);
	if (ipc_decode(buf, size, &m))
		return 0;
	const char *schema = ipc_schema(m.type);
	CHECK(schema && m.nfields == strlen(schema));
	for (size_t i = 0; i < m.nfields; i++) {
		CHECK(m.f[i].kind == schema[i]);
		if (m.f[i].kind == 's')
			CHECK(strlen(m.f[i].s.p) == m.f[i].s.len && m.f[i].s.len <= IPC_MAX_STR);
	}
	ssize_t n = ipc_encode(&m, again);
	CHECK(n == (ssize_t)size && !memcmp(again, data, size));
	if (m.type == IPC_LOG_APPEND)
		check_record(&m);
	if (m.type == IPC_LOG_BATCH)
		check_frames(&m);
	return 0;
}
