/* test_role.c - the roles' serving loop (daemon/role.c) and IPC framing
 * (daemon/ipc.c): requests are answered, pings ponged, peers taken, and a
 * malformed message ends the role (a fatal protocol error). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "role.h"

static uint8_t buf[IPC_MAX_MSG + 1];

/* The test's handler: answers IPC_LOG_STATUS_REQ with IPC_OK. */
static int handler(struct role_env *env, int fd, struct ipc_msg *m)
{
	(void)env;
	if (m->type != IPC_LOG_STATUS_REQ)
		return -EBADMSG;
	struct ipc_msg r = { .type = IPC_OK, .id = m->id };
	return ipc_send(fd, &r);
}

/* Forks a role serving sv[1]; returns its pid. */
static pid_t serve(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	pid_t pid = fork();
	if (pid == 0) {
		static struct role_env env;
		close(sv[0]);
		env = (struct role_env){ .name = "test", .parent = sv[1], .cfg = cfg_new() };
		_exit(role_serve(&env, handler) ? 3 : 0);
	}
	close(sv[1]);
	return pid;
}

static int exit_code(pid_t pid)
{
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_requests_and_pings(void **state)
{
	int sv[2];
	pid_t pid = serve(sv);
	struct ipc_msg m = { .type = IPC_LOG_STATUS_REQ }, r;

	(void)state;
	assert_int_equal(role_call(NULL, sv[0], &m, buf, &r, 5000), 0);
	assert_int_equal(r.type, IPC_OK);
	struct ipc_msg ping = { .type = IPC_PING, .nfields = 1 };
	ping.f[0] = ipc_u64(42);
	assert_int_equal(role_call(NULL, sv[0], &ping, buf, &r, 5000), 0);
	assert_int_equal(r.type, IPC_PONG);
	assert_int_equal(r.f[0].u, 42);
	/* a peer channel, then a request over it */
	int pv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pv), 0);
	struct ipc_msg peer = { .type = IPC_PEER, .nfields = 1, .fd = pv[1] };
	peer.f[0] = ipc_str("control");
	assert_int_equal(ipc_send(sv[0], &peer), 0);
	close(pv[1]);
	assert_int_equal(role_call(NULL, pv[0], &m, buf, &r, 5000), 0);
	assert_int_equal(r.type, IPC_OK);
	/* a stop ends it cleanly */
	struct ipc_msg stop = { .type = IPC_STOP };
	assert_int_equal(ipc_send(sv[0], &stop), 0);
	assert_int_equal(exit_code(pid), 0);
	close(pv[0]);
	close(sv[0]);
}

static void test_malformed_is_fatal(void **state)
{
	static const uint8_t junk[][12] = {
		{ 0xff, 0xff, 0, 0, 0, 0, 0, 0 },              /* unknown type */
		{ IPC_PING, 0, 1, 0, 1, 0, 0, 0, 1, 2, 3, 4 }, /* a field too short */
		{ IPC_OK, 0, 1, 0, 0, 0, 0, 0 },               /* more fields than the schema */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		int sv[2];
		pid_t pid = serve(sv);
		assert_true(send(sv[0], junk[i], sizeof(junk[i]), 0) > 0);
		assert_int_equal(exit_code(pid), 3);
		close(sv[0]);
	}
	/* a descriptor on a message that must not carry one */
	int sv[2], pv[2];
	pid_t pid = serve(sv);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pv), 0);
	struct ipc_msg peer = { .type = IPC_PEER, .nfields = 1, .fd = pv[1] };
	peer.f[0] = ipc_str("x");
	uint8_t raw[IPC_MAX_MSG];
	ssize_t n = ipc_encode(&peer, raw);
	assert_true(n > 0);
	raw[0] = IPC_CONFIG; /* same schema ("s"), but a config carries no descriptor */
	char cm[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { raw, (size_t)n };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm, .msg_controllen = sizeof(cm)
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &pv[1], sizeof(int));
	assert_true(sendmsg(sv[0], &mh, 0) == n);
	assert_int_equal(exit_code(pid), 3);
	close(sv[0]);
	close(pv[0]);
	close(pv[1]);
}

static void test_parent_gone_ends_the_role(void **state)
{
	int sv[2];
	pid_t pid = serve(sv);

	(void)state;
	close(sv[0]);
	assert_int_equal(exit_code(pid), 3);
}

static void test_encode_refuses(void **state)
{
	uint8_t out[IPC_MAX_MSG];
	struct ipc_msg m = { .type = IPC_PING, .nfields = 2 };

	(void)state;
	assert_int_equal(ipc_encode(&m, out), -EINVAL); /* wrong field count */
	m = (struct ipc_msg){ .type = IPC_CONFIG, .nfields = 1 };
	m.f[0] = ipc_u64(1);
	assert_int_equal(ipc_encode(&m, out), -EINVAL); /* wrong kind */
	static char big[IPC_MAX_STR + 2];
	memset(big, 'x', sizeof(big) - 1);
	m.f[0] = ipc_str(big);
	assert_int_equal(ipc_encode(&m, out), -EINVAL); /* string over the limit */
	m = (struct ipc_msg){ .type = IPC_PEER, .nfields = 1, .fd = -1 };
	m.f[0] = ipc_str("logger");
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	assert_int_equal(ipc_send(sv[0], &m), -EINVAL); /* a peer without a descriptor */
	close(sv[0]);
	close(sv[1]);
}

/* Many messages in one: frames fill a message's worth, travel over the
 * channel and come back whole; a frame cut short or running past the
 * field is refused. */
static void test_frames(void **state)
{
	static uint8_t pkt[IPC_MAX_MSG + 1];
	static char text[1000];
	struct buf frames = BUF_INIT;
	struct ipc_msg m = { .type = IPC_ERROR, .nfields = 2 }, one, got;
	size_t n = 0, at = 0;
	int sv[2], err;

	(void)state;
	memset(text, 'x', sizeof(text) - 1);
	m.f[1] = ipc_str(text);
	for (;; n++) {
		m.id = (uint32_t)n + 1;
		m.f[0] = ipc_i64(-(int64_t)m.id);
		if ((err = ipc_frame(&frames, &m)))
			break;
	}
	assert_int_equal(err, -EMSGSIZE);
	assert_int_equal(n, IPC_MAX_FRAMES / (8 + 8 + 4 + sizeof(text) - 1 + 5));
	struct ipc_msg batch = { .type = IPC_LOG_BATCH, .nfields = 1, .fd = -1 };
	batch.f[0] = (struct ipc_field){ .kind = 'b', .b = { (uint8_t *)frames.p, frames.len } };
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	assert_int_equal(ipc_send(sv[0], &batch), 0);
	assert_int_equal(ipc_recv(sv[1], pkt, &got), 0);
	assert_int_equal(got.type, IPC_LOG_BATCH);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(ipc_unframe(&got.f[0], &at, &one), 1);
		assert_int_equal(one.id, i + 1);
		assert_int_equal(one.f[0].i, -(int64_t)(i + 1));
		assert_string_equal(one.f[1].s.p, text);
	}
	assert_int_equal(ipc_unframe(&got.f[0], &at, &one), 0);
	close(sv[0]);
	close(sv[1]);

	struct ipc_field cut = got.f[0];
	cut.b.len = 4 + 8 + 8 + 4 + sizeof(text) - 1; /* no spare byte */
	at = 0;
	assert_int_equal(ipc_unframe(&cut, &at, &one), -EBADMSG);
	cut.b.len = 3; /* not even a length */
	at = 0;
	assert_int_equal(ipc_unframe(&cut, &at, &one), -EBADMSG);
	uint8_t bad[] = { 2, 0, 0, 0, 1, 0, 0 }; /* a frame too short for a header */
	cut.b = (typeof(cut.b)){ bad, sizeof(bad) };
	at = 0;
	assert_int_equal(ipc_unframe(&cut, &at, &one), -EBADMSG);
	buf_free(&frames);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests_and_pings),
		cmocka_unit_test(test_malformed_is_fatal),
		cmocka_unit_test(test_parent_gone_ends_the_role),
		cmocka_unit_test(test_encode_refuses),
		cmocka_unit_test(test_frames),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
