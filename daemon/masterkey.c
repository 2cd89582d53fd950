/* masterkey.c - see masterkey.h */
#define _GNU_SOURCE
#include "masterkey.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "secmem.h"

#define MAX_KEY_FILE 128

static int read_private(const char *path, char *buf, size_t cap, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int r = fd < 0 ? -errno : check_private(fd);
	ssize_t n = 0;

	if (!r && (n = read(fd, buf, cap)) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	*ret_len = n > 0 ? (size_t)n : 0;
	return r;
}

/* 32 raw bytes, or 64 lower-case hex digits with an optional newline. */
static bool decode(const char *buf, size_t n, uint8_t *key)
{
	if (n == MASTER_KEY_LEN) {
		memcpy(key, buf, MASTER_KEY_LEN);
		return true;
	}
	if (n == 2 * MASTER_KEY_LEN + 1 && buf[n - 1] == '\n')
		n--;
	return n == 2 * MASTER_KEY_LEN && hex_decode(buf, n, key);
}

int masterkey_load(const char *path, const char *cred, uint8_t **ret, char *err, size_t errlen)
{
	char where[4096], buf[MAX_KEY_FILE];
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	size_t n;
	int r;

	if (!path && (!dir || !*dir)) {
		snprintf(err, errlen,
		         "no master key: give a key file, or run under systemd with LoadCredential=%s", cred);
		return -ENOENT;
	}
	if (path)
		snprintf(where, sizeof(where), "%s", path);
	else
		snprintf(where, sizeof(where), "%s/%s", dir, cred);
	r = read_private(where, buf, sizeof(buf), &n);
	uint8_t *key = r ? NULL : secmem_alloc(MASTER_KEY_LEN);
	if (!r && !key)
		r = -ENOMEM;
	if (!r && !decode(buf, n, key))
		r = -EINVAL;
	OPENSSL_cleanse(buf, sizeof(buf));
	if (r) {
		secmem_free(key, MASTER_KEY_LEN);
		snprintf(err, errlen, "%s: %s", where,
		         r == -EACCES   ? "readable by group or others; refusing to use it (chmod 0400)"
		         : r == -EINVAL ? "not a master key (want 32 bytes, or 64 hex digits)"
		                        : strerror(-r));
		return r;
	}
	*ret = key;
	return 0;
}
