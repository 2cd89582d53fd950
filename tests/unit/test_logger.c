/* test_logger.c - the logger role's handling of appends (daemon/role_logger.c,
 * included for its static functions), against a real log in a temp dir. */
#include "../../daemon/role_logger.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "secmem.h"

/* A batch of more records than the logger answers at once, from a peer
 * that is gone before the answers: the error is the peer's, and no record
 * is waited for twice (a double free in the log's tickets, under ASan). */
static void test_batch_to_a_peer_gone(void **state)
{
	static struct role_env env;
	static struct logger lg = { .audit = { .fd = -1 } };
	static uint8_t pkt[IPC_MAX_MSG + 1];
	char err[256] = "", dir[] = "/tmp/custos-test-logger-XXXXXX", ldir[128], key[128];
	struct alog_opts o = { .durability = ALOG_SYNC,
		               .segment_bytes = 1u << 20,
		               .checkpoint_records = 100 };
	struct buf frames = BUF_INIT, lists = BUF_INIT;
	struct alog_actor actor = { .app = "test" };
	struct alog_rec rec = { .type = "access", .actor = &actor, .rows = 1 };
	struct ipc_msg batch = { .type = IPC_LOG_BATCH, .nfields = 1, .fd = -1 }, got;
	int sv[2];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(ldir, sizeof(ldir), "%s/log", dir);
	snprintf(key, sizeof(key), "%s/log.key", dir);
	assert_int_equal(alog_create(ldir, key, err, sizeof(err)), 0);
	assert_int_equal(alog_open(ldir, &o, &lg.log, err, sizeof(err)), 0);
	env.name = "logger";
	env.state = &lg;
	env.parent = -1;
	for (uint32_t i = 0; i < BATCH_MAX + 44; i++) {
		struct ipc_msg m;
		assert_int_equal(logmsg_encode(&rec, "", false, &lists, &m), 0);
		m.id = i + 1;
		assert_int_equal(ipc_frame(&frames, &m), 0);
	}
	batch.f[0] = (struct ipc_field){ .kind = 'b', .b = { (uint8_t *)frames.p, frames.len } };
	ssize_t n = ipc_encode(&batch, pkt);
	assert_true(n > 0);
	assert_int_equal(ipc_decode(pkt, (size_t)n, &got), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	close(sv[1]);
	assert_int_equal(handle(&env, sv[0], &got), -EPIPE);
	close(sv[0]);
	assert_int_equal(alog_close(lg.log), 0);
	buf_free(&frames);
	buf_free(&lists);
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_to_a_peer_gone),
	};
	(void)!secmem_init(1u << 16);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
