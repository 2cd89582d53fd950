/* test_keyclient.c - the key client's asks without waiting (kcl_async):
 * against a peer on a socketpair that answers as the keeper does (a key
 * for every id asked; the keeper itself is exercised by the integration
 * tests), that a row's keys all come to hand and that every answer wakes
 * whoever waits for it, whichever call reads it. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "keyclient.h"
#include "secmem.h"

static int readies;

static void ready(void *arg)
{
	(void)arg;
	readies++;
}

/* Answers each ask for a key by id with that key, until the channel closes. */
static void keeper(int fd)
{
	static uint8_t buf[IPC_MAX_MSG + 1];
	struct ipc_msg m;

	while (!ipc_recv(fd, buf, &m)) {
		struct ipc_msg r = { .type = IPC_KEYS_SUBJECT_KEY, .id = m.id, .nfields = 4, .fd = -1 };
		for (int i = 0; i < 3; i++) {
			r.f[i].kind = 'h';
			memset(r.f[i].h, 0, sizeof(r.f[i].h));
		}
		memcpy(r.f[2].h, m.f[0].h, FC_KEYID_LEN);
		memset(r.f[1].h, m.f[0].h[0], FC_KEY_LEN);
		r.f[3] = ipc_u64(0);
		if (ipc_send(fd, &r))
			break;
	}
	_exit(0);
}

struct fixture {
	struct role_env env;
	struct event_base *base;
	struct keyprov *kp;
	pid_t pid;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	if (!(f->pid = fork())) {
		close(sv[0]);
		keeper(sv[1]);
	}
	close(sv[1]);
	f->env.name = "proxy";
	f->env.parent = -1;
	snprintf(f->env.peers[0].name, sizeof(f->env.peers[0].name), "keeper");
	f->env.peers[0].fd = sv[0];
	f->env.npeers = 1;
	assert_non_null(f->base = event_base_new());
	assert_non_null(f->kp = kcl_new(&f->env, 10, KCL_SLOTS_PROXY));
	assert_int_equal(kcl_async(f->kp, f->base, ready, NULL), 0);
	kcl_set_fd(f->kp, sv[0]);
	readies = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	keyprov_free(f->kp);
	close(f->env.peers[0].fd);
	waitpid(f->pid, NULL, 0);
	event_base_free(f->base);
	free(f);
	return 0;
}

/* The loop runs until ready() has been called once more (1 s at most). */
static void wait_ready(struct fixture *f)
{
	int before = readies;

	for (int i = 0; readies == before && i < 1000; i++) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
	assert_int_not_equal(readies, before);
}

static unsigned slot_of_id(const uint8_t id[FC_KEYID_LEN])
{
	uint8_t in[1 + FC_KEYID_LEN] = { 1 }, h[SHA256_DIGEST_LENGTH];

	memcpy(in + 1, id, FC_KEYID_LEN);
	SHA256(in, sizeof(in), h);
	return ((uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16) % KCL_SLOTS_PROXY;
}

/* Two keys of one row that share a cache slot: each answer pushes the
 * other out of the slot, yet the row's next try finds both. */
static void test_keys_sharing_a_slot(void **state)
{
	struct fixture *f = *state;
	uint8_t k1[FC_KEYID_LEN] = { 1 }, k2[FC_KEYID_LEN] = { 2 };
	struct kc_key k;

	for (uint32_t i = 0; slot_of_id(k2) != slot_of_id(k1); i++)
		memcpy(k2 + 4, &i, sizeof(i));
	assert_int_equal(kcl_key_nowait(f->kp, k1, &k), -EINPROGRESS);
	assert_int_equal(kcl_key_nowait(f->kp, k2, &k), -EINPROGRESS);
	wait_ready(f);
	while (kcl_key_nowait(f->kp, k2, &k) == -EINPROGRESS) /* both answers in */
		wait_ready(f);
	assert_int_equal(kcl_key_nowait(f->kp, k1, &k), 0);
	assert_memory_equal(k.k.id, k1, FC_KEYID_LEN);
	assert_int_equal(kcl_key_nowait(f->kp, k2, &k), 0);
	assert_memory_equal(k.k.id, k2, FC_KEYID_LEN);
}

/* An answer that a waiting call reads off the channel wakes those that
 * asked for it all the same. */
static void test_answer_read_by_a_call_wakes(void **state)
{
	struct fixture *f = *state;
	uint8_t k1[FC_KEYID_LEN] = { 7 }, k3[FC_KEYID_LEN] = { 9 };
	struct kc_key k;

	assert_int_equal(kcl_key_nowait(f->kp, k1, &k), -EINPROGRESS);
	assert_int_equal(kcl_key(f->kp, k3, &k), 0); /* reads k1's answer first */
	wait_ready(f);
	assert_int_equal(kcl_key_nowait(f->kp, k1, &k), 0);
	assert_int_equal(k.k.key[0], 7);
}

/* Without a channel (the keeper is being restarted), nothing waits. */
static void test_no_channel(void **state)
{
	struct fixture *f = *state;
	uint8_t k1[FC_KEYID_LEN] = { 5 };
	struct kc_key k;

	kcl_set_fd(f->kp, -1);
	assert_int_equal(kcl_key_nowait(f->kp, k1, &k), -ENOTCONN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_keys_sharing_a_slot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_read_by_a_call_wakes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_channel, setup, teardown),
	};
	if (secmem_init(1u << 23))
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
