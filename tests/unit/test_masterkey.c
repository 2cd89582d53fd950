/* test_masterkey - loading the master key from a file or from systemd's
 * credentials directory, and refusing what is not private or not a key. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "masterkey.h"
#include "secmem.h"

static char dir[] = "/tmp/custos-mk.XXXXXX";

static void put(const char *name, const void *data, size_t n, mode_t mode)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	fchmod(fd, mode);
	close(fd);
}

static int load(const char *name, uint8_t **key)
{
	char path[256], err[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return masterkey_load(path, "custos-master-key", key, err, sizeof(err));
}

static void test_raw_and_hex(void **state)
{
	(void)state;
	uint8_t raw[32], *key;
	char hex[66];

	for (int i = 0; i < 32; i++)
		raw[i] = (uint8_t)(i * 7 + 1);
	put("raw", raw, 32, 0400);
	assert_int_equal(load("raw", &key), 0);
	assert_memory_equal(key, raw, 32);
	secmem_free(key, 32);
	hex_encode(raw, 32, hex);
	strcat(hex, "\n");
	put("hex", hex, 65, 0600);
	assert_int_equal(load("hex", &key), 0);
	assert_memory_equal(key, raw, 32);
	secmem_free(key, 32);
}

static void test_refuses_shared_files(void **state)
{
	(void)state;
	uint8_t raw[32] = { 1 }, *key = NULL;

	put("group", raw, 32, 0640);
	assert_int_equal(load("group", &key), -EACCES);
	put("world", raw, 32, 0604);
	assert_int_equal(load("world", &key), -EACCES);
	assert_null(key);
}

static void test_refuses_non_keys(void **state)
{
	(void)state;
	uint8_t *key = NULL;

	put("short", "abc", 3, 0400);
	assert_int_equal(load("short", &key), -EINVAL);
	put("upper", "AA00000000000000000000000000000000000000000000000000000000000000", 64, 0400);
	assert_int_equal(load("upper", &key), -EINVAL);
	put("long", "0000000000000000000000000000000000000000000000000000000000000000\n\n", 66, 0400);
	assert_int_equal(load("long", &key), -EINVAL);
	assert_int_equal(load("missing", &key), -ENOENT);
	assert_null(key);
}

static void test_credentials_directory(void **state)
{
	(void)state;
	uint8_t raw[32], *key;
	char err[512];

	memset(raw, 0x5a, sizeof(raw));
	put("custos-master-key", raw, 32, 0400);
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_int_equal(masterkey_load(NULL, "custos-master-key", &key, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "LoadCredential=custos-master-key"));
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	assert_int_equal(masterkey_load(NULL, "custos-master-key", &key, err, sizeof(err)), 0);
	assert_memory_equal(key, raw, 32);
	secmem_free(key, 32);
	unsetenv("CREDENTIALS_DIRECTORY");
}

static int setup(void **state)
{
	(void)state;
	if (secmem_init(1u << 16))
		fprintf(stderr, "note: no locked memory; keys use the plain heap\n");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raw_and_hex),
		cmocka_unit_test(test_refuses_shared_files),
		cmocka_unit_test(test_refuses_non_keys),
		cmocka_unit_test(test_credentials_directory),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
