/* kekfile.c - see kekfile.h */
#define _GNU_SOURCE
#include "kekfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define MAGIC "custos-kek 1 "

static void format_slot(const struct kek_slot *s, char out[KEK_SLOT_LEN + 1])
{
	if (!s->epoch) {
		memset(out, ' ', KEK_SLOT_LEN - 1);
		out[KEK_SLOT_LEN - 1] = '\n';
		out[KEK_SLOT_LEN] = 0;
		return;
	}
	int n = snprintf(out, KEK_SLOT_LEN + 1, "epoch %010" PRIu32 " ", s->epoch);
	hex_encode(s->wrapped, FC_WRAP_LEN, out + n);
	out[KEK_SLOT_LEN - 1] = '\n';
	out[KEK_SLOT_LEN] = 0;
}

static int parse_slot(const char *p, struct kek_slot *s)
{
	uint64_t epoch;
	char digits[11];

	memset(s, 0, sizeof(*s));
	if (p[KEK_SLOT_LEN - 1] != '\n')
		return -1;
	if (strspn(p, " ") == KEK_SLOT_LEN - 1)
		return 0;
	if (memcmp(p, "epoch ", 6) || p[16] != ' ')
		return -1;
	memcpy(digits, p + 6, 10);
	digits[10] = 0;
	if (strspn(digits, "0123456789") != 10 || !parse_u64(digits, &epoch) || !epoch ||
	    epoch > UINT32_MAX || !hex_decode(p + 17, 2 * FC_WRAP_LEN, s->wrapped))
		return -1;
	s->epoch = (uint32_t)epoch;
	return 0;
}

int kek_parse(const char *data, size_t len, struct kek_file *ret, char *err, size_t errlen)
{
	memset(ret, 0, sizeof(*ret));
	if (len != KEK_FILE_LEN) {
		snprintf(err, errlen, "not a Custos KEK file (%zu bytes, expected %zu)", len,
		         (size_t)KEK_FILE_LEN);
		return -EINVAL;
	}
	if (memcmp(data, MAGIC, sizeof(MAGIC) - 1) || data[KEK_HEADER_LEN - 1] != '\n' ||
	    !hex_decode(data + sizeof(MAGIC) - 1, 2 * KEK_ID_LEN, ret->keystore_id)) {
		snprintf(err, errlen, "line 1: expected \"custos-kek 1 <keystore id>\"");
		return -EINVAL;
	}
	for (unsigned i = 0; i < KEK_SLOTS; i++)
		if (parse_slot(data + KEK_HEADER_LEN + i * KEK_SLOT_LEN, &ret->slot[i])) {
			snprintf(err, errlen,
			         "line %u: expected \"epoch <10 digits> <wrapped key>\" or blanks", i + 2);
			return -EINVAL;
		}
	if (ret->slot[0].epoch && ret->slot[0].epoch == ret->slot[1].epoch) {
		snprintf(err, errlen, "line 3: epoch %" PRIu32 " twice", ret->slot[0].epoch);
		return -EINVAL;
	}
	return 0;
}

static void format_file(const struct kek_file *f, char out[KEK_FILE_LEN + 1])
{
	memcpy(out, MAGIC, sizeof(MAGIC) - 1);
	hex_encode(f->keystore_id, KEK_ID_LEN, out + sizeof(MAGIC) - 1);
	out[KEK_HEADER_LEN - 1] = '\n';
	for (unsigned i = 0; i < KEK_SLOTS; i++)
		format_slot(&f->slot[i], out + KEK_HEADER_LEN + i * KEK_SLOT_LEN);
}

int kek_create(const char *path, const struct kek_file *f, char *err, size_t errlen)
{
	char text[KEK_FILE_LEN + 1];

	format_file(f, text);
	int r = write_file_excl(path, text, KEK_FILE_LEN, 0600);
	OPENSSL_cleanse(text, sizeof(text));
	if (r)
		snprintf(err, errlen, "%s: %s", path,
		         r == -EEXIST ? "exists; refusing to overwrite a KEK file" : strerror(-r));
	return r;
}

int kek_open(const char *path, struct kek_file *ret, char *err, size_t errlen)
{
	char text[KEK_FILE_LEN + 1];
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW), r;

	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	if ((r = check_private(fd))) {
		snprintf(err, errlen, "%s: %s", path,
		         r == -EACCES ? "readable by group or others; chmod 0600 it" : strerror(-r));
	} else if (flock(fd, LOCK_EX) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: lock: %s", path, strerror(errno));
	} else {
		ssize_t n = pread(fd, text, sizeof(text), 0);
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		} else if ((r = kek_parse(text, (size_t)n, ret, err, errlen))) {
			char why[160];
			snprintf(why, sizeof(why), "%s", err);
			snprintf(err, errlen, "%s: %s", path, why);
		}
	}
	OPENSSL_cleanse(text, sizeof(text));
	if (r) {
		close(fd);
		return r;
	}
	return fd;
}

int kek_write_slot(int fd, unsigned i, const struct kek_slot *s)
{
	char text[KEK_SLOT_LEN + 1];

	if (i >= KEK_SLOTS)
		return -EINVAL;
	format_slot(s, text);
	ssize_t n = pwrite(fd, text, KEK_SLOT_LEN, (off_t)(KEK_HEADER_LEN + i * KEK_SLOT_LEN));
	int r = n < 0 ? -errno : n != (ssize_t)KEK_SLOT_LEN ? -EIO : fdatasync(fd) < 0 ? -errno : 0;
	OPENSSL_cleanse(text, sizeof(text));
	return r;
}
