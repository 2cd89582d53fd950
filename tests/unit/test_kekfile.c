/* test_kekfile.c - the KEK file (daemon/kekfile.c): format, parse errors,
 * in-place slot updates, and refusing files others can read. */
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

#include "kekfile.h"

static struct kek_file sample(void)
{
	struct kek_file f;

	memset(&f, 0, sizeof(f));
	memset(f.keystore_id, 0xab, sizeof(f.keystore_id));
	f.slot[0].epoch = 7;
	memset(f.slot[0].wrapped, 0x11, FC_WRAP_LEN);
	return f;
}

/* A fresh name in a private directory (kek_create refuses existing files). */
static char *tmpname(void)
{
	static char dir[64], path[96];
	snprintf(dir, sizeof(dir), "/tmp/custos-kek-test.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/kek", dir);
	return path;
}

/* Removes tmpname()'s file and its directory. */
static void rmname(char *path)
{
	unlink(path);
	*strrchr(path, '/') = 0;
	rmdir(path);
}

static void test_create_open_update(void **state)
{
	struct kek_file f = sample(), g;
	char err[256], *path = tmpname();

	(void)state;
	assert_int_equal(kek_create(path, &f, err, sizeof(err)), 0);
	assert_int_equal(kek_create(path, &f, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "refusing to overwrite"));
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, KEK_FILE_LEN);
	assert_int_equal(st.st_mode & 0777, 0600);
	int fd = kek_open(path, &g, err, sizeof(err));
	assert_true(fd >= 0);
	assert_memory_equal(&f, &g, sizeof(f));
	struct kek_slot next = { .epoch = 8 };
	memset(next.wrapped, 0x22, FC_WRAP_LEN);
	assert_int_equal(kek_write_slot(fd, 1, &next), 0);
	struct kek_slot empty = { 0 };
	assert_int_equal(kek_write_slot(fd, 0, &empty), 0);
	assert_int_equal(kek_write_slot(fd, 2, &empty), -EINVAL);
	close(fd);
	fd = kek_open(path, &g, err, sizeof(err));
	assert_true(fd >= 0);
	assert_int_equal(g.slot[0].epoch, 0);
	assert_int_equal(g.slot[1].epoch, 8);
	assert_memory_equal(g.slot[1].wrapped, next.wrapped, FC_WRAP_LEN);
	close(fd);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, KEK_FILE_LEN); /* overwritten in place */
	/* nothing of epoch 7 is left in the file */
	char buf[KEK_FILE_LEN + 1] = { 0 };
	fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, buf, KEK_FILE_LEN), KEK_FILE_LEN);
	close(fd);
	assert_null(strstr(buf, "epoch 0000000007"));
	assert_null(strstr(buf, "1111111111"));
	chmod(path, 0640);
	assert_int_equal(kek_open(path, &g, err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "readable by group or others"));
	rmname(path);
}

static void test_parse_errors(void **state)
{
	struct kek_file f = sample(), g;
	char text[KEK_FILE_LEN + 1], bad[KEK_FILE_LEN + 1], err[256];
	char *path = tmpname();

	(void)state;
	assert_int_equal(kek_create(path, &f, err, sizeof(err)), 0);
	int fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, text, KEK_FILE_LEN), KEK_FILE_LEN);
	close(fd);
	rmname(path);
	assert_int_equal(kek_parse(text, KEK_FILE_LEN, &g, err, sizeof(err)), 0);
	assert_int_equal(kek_parse(text, KEK_FILE_LEN - 1, &g, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a Custos KEK file"));
	memcpy(bad, text, KEK_FILE_LEN);
	bad[3] = 'X';
	assert_int_equal(kek_parse(bad, KEK_FILE_LEN, &g, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "line 1"));
	memcpy(bad, text, KEK_FILE_LEN);
	bad[KEK_HEADER_LEN + 8] = 'x'; /* a digit of the epoch */
	assert_int_equal(kek_parse(bad, KEK_FILE_LEN, &g, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "line 2"));
	memcpy(bad, text, KEK_FILE_LEN);
	bad[KEK_HEADER_LEN + KEK_SLOT_LEN + 5] = 'x'; /* the blank slot */
	assert_int_equal(kek_parse(bad, KEK_FILE_LEN, &g, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "line 3"));
	/* the same epoch twice */
	memcpy(bad, text, KEK_FILE_LEN);
	memcpy(bad + KEK_HEADER_LEN + KEK_SLOT_LEN, text + KEK_HEADER_LEN, KEK_SLOT_LEN);
	assert_int_equal(kek_parse(bad, KEK_FILE_LEN, &g, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "twice"));
	/* epoch 0 is not an epoch */
	memcpy(bad, text, KEK_FILE_LEN);
	memcpy(bad + KEK_HEADER_LEN + 6, "0000000000", 10);
	assert_int_equal(kek_parse(bad, KEK_FILE_LEN, &g, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_open_update),
		cmocka_unit_test(test_parse_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
