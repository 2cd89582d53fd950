/* reportsig.c - see reportsig.h */
#define _GNU_SOURCE
#include "reportsig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE (1ull << 32) /* a report larger than 4 GiB is refused */

static int hash_file(int dirfd, const char *name, uint8_t out[32])
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t b[65536];
	ssize_t n = 0;
	uint64_t total = 0;

	if (fd < 0 || !ctx) {
		int e = fd < 0 ? -errno : -ENOMEM;
		EVP_MD_CTX_free(ctx);
		if (fd >= 0)
			close(fd);
		return e;
	}
	int ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while (ok && (n = read(fd, b, sizeof(b))) > 0 && (total += (uint64_t)n) <= MAX_FILE)
		ok = EVP_DigestUpdate(ctx, b, (size_t)n);
	int e = n < 0 ? -errno : total > MAX_FILE ? -EFBIG : 0;
	if (!e && !(ok && EVP_DigestFinal_ex(ctx, out, NULL)))
		e = -EIO;
	EVP_MD_CTX_free(ctx);
	close(fd);
	return e;
}

int rs_write_file(int dirfd, const char *name, const void *data, size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);

	if (fd < 0)
		return -errno;
	int e = write_all(fd, data, len);

	if (!e && fdatasync(fd))
		e = -errno;
	close(fd);
	return e;
}

static bool good_name(const char *s, size_t n)
{
	if (n == 0 || n > RS_MAX_NAME || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		      s[i] == '-' || s[i] == '_'))
			return false;
	return true;
}

int rs_write_sums(int dirfd, const char *const *names, size_t n, uint8_t ret_digest[32])
{
	struct buf b = BUF_INIT;
	uint8_t h[32];
	char hex[65];
	int e = n > RS_MAX_FILES ? -E2BIG : 0;

	for (size_t i = 0; !e && i < n; i++) {
		if (!good_name(names[i], strlen(names[i])))
			e = -EINVAL;
		else if (!(e = hash_file(dirfd, names[i], h))) {
			hex_encode(h, 32, hex);
			buf_printf(&b, "%s  %s\n", hex, names[i]);
		}
	}
	if (!e && b.failed)
		e = -ENOMEM;
	if (!e)
		e = rs_write_file(dirfd, RS_SUMS, b.p, b.len);
	if (!e && !EVP_Digest(b.p, b.len, ret_digest, NULL, EVP_sha256(), NULL))
		e = -EIO;
	buf_free(&b);
	return e;
}

int rs_write_sig(int dirfd, const struct rs_sig *s)
{
	char id[2 * LOG_ID_LEN + 1], sig[2 * LOG_SIG_LEN + 1];

	hex_encode(s->log_id, LOG_ID_LEN, id);
	hex_encode(s->sig, LOG_SIG_LEN, sig);
	json_t *j =
	    json_pack("{s:s, s:s, s:I, s:s, s:s}", "algorithm", "Ed25519", "log_id", id, "seq",
	              (json_int_t)s->seq, "signature", sig, "signed",
	              "custos-report-v1 | log_id | seq (8 bytes, big-endian) | SHA-256 of SHA256SUMS");
	char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	int e = text ? rs_write_file(dirfd, RS_SIG, text, strlen(text)) : -ENOMEM;
	free(text);
	json_decref(j);
	return e;
}

int rs_parse_sums(const char *text, size_t len, struct rs_sums *ret, char *err, size_t errlen)
{
	size_t line = 0;

	ret->n = 0;
	for (size_t at = 0; at < len; line++) {
		const char *s = text + at, *nl = memchr(s, '\n', len - at);
		if (!nl) {
			snprintf(err, errlen, RS_SUMS " line %zu: no newline at its end", line + 1);
			return -EINVAL;
		}
		size_t n = (size_t)(nl - s);
		if (ret->n == RS_MAX_FILES) {
			snprintf(err, errlen, RS_SUMS ": more than %d files", RS_MAX_FILES);
			return -EINVAL;
		}
		if (n < 67 || s[64] != ' ' || s[65] != ' ' || !hex_decode(s, 64, ret->f[ret->n].sha256) ||
		    !good_name(s + 66, n - 66)) {
			snprintf(err, errlen, RS_SUMS " line %zu: expected \"<64 hex digits>  <file name>\"",
			         line + 1);
			return -EINVAL;
		}
		memcpy(ret->f[ret->n].name, s + 66, n - 66);
		ret->f[ret->n].name[n - 66] = 0;
		for (size_t i = 0; i < ret->n; i++)
			if (!strcmp(ret->f[i].name, ret->f[ret->n].name)) {
				snprintf(err, errlen, RS_SUMS " line %zu: a file listed twice", line + 1);
				return -EINVAL;
			}
		ret->n++;
		at += n + 1;
	}
	if (!ret->n) {
		snprintf(err, errlen, RS_SUMS " lists no files");
		return -EINVAL;
	}
	return 0;
}

int rs_parse_sig(const char *text, size_t len, struct rs_sig *ret, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	const char *alg = NULL, *id = NULL, *sig = NULL, *what = NULL;
	json_int_t seq = -1;
	int r = -EINVAL;

	if (!j)
		snprintf(err, errlen, RS_SIG ": not JSON (%s)", je.text);
	else if (json_unpack_ex(j, &je, JSON_STRICT, "{s:s, s:s, s:I, s:s, s?s}", "algorithm", &alg, "log_id",
	                        &id, "seq", &seq, "signature", &sig, "signed", &what))
		snprintf(err, errlen, RS_SIG ": %s", je.text);
	else if (strcmp(alg, "Ed25519"))
		snprintf(err, errlen, RS_SIG ": algorithm is not Ed25519");
	else if (seq < 0 || strlen(id) != 2 * LOG_ID_LEN || !hex_decode(id, strlen(id), ret->log_id) ||
	         strlen(sig) != 2 * LOG_SIG_LEN || !hex_decode(sig, strlen(sig), ret->sig))
		snprintf(err, errlen, RS_SIG ": log_id, seq or signature malformed");
	else
		ret->seq = (uint64_t)seq, r = 0;
	json_decref(j);
	return r;
}

static int read_small(int dirfd, const char *name, size_t max, char **ret, size_t *len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return -errno;
	int e = read_fd(fd, max, ret, len);
	close(fd);
	return e;
}

/* Every regular file of the directory is listed (or is the manifest). */
static int all_listed(int dirfd, const struct rs_sums *s, char *err, size_t errlen)
{
	DIR *d = fdopendir(dup(dirfd));
	struct dirent *e;
	int r = 0;

	if (!d)
		return -errno;
	while (!r && (e = readdir(d))) {
		bool listed = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		              !strcmp(e->d_name, RS_SUMS) || !strcmp(e->d_name, RS_SIG);
		for (size_t i = 0; !listed && i < s->n; i++)
			listed = !strcmp(e->d_name, s->f[i].name);
		if (!listed) {
			snprintf(err, errlen, "%.64s is not covered by the signature", e->d_name);
			r = 1;
		}
	}
	closedir(d);
	return r;
}

int rs_verify(const char *dir, const struct logkeys *k, struct rs_sums *sums, struct rs_sig *sig, char *err,
              size_t errlen)
{
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char *text = NULL;
	size_t len = 0;
	uint8_t digest[32], h[32];
	int r;

	if (dirfd < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	if ((r = read_small(dirfd, RS_SIG, RS_MAX_SIG, &text, &len)) ||
	    (r = rs_parse_sig(text, len, sig, err, errlen) ? 1 : 0)) {
		if (r < 0)
			snprintf(err, errlen, RS_SIG ": %s", strerror(-r));
		goto out;
	}
	free(text);
	text = NULL;
	if ((r = read_small(dirfd, RS_SUMS, RS_MAX_SUMS, &text, &len))) {
		snprintf(err, errlen, RS_SUMS ": %s", strerror(-r));
		goto out;
	}
	if (rs_parse_sums(text, len, sums, err, errlen)) {
		r = 1;
		goto out;
	}
	if (!EVP_Digest(text, len, digest, NULL, EVP_sha256(), NULL)) {
		r = -EIO;
		goto out;
	}
	if (memcmp(sig->log_id, k->log_id, LOG_ID_LEN)) {
		snprintf(err, errlen, "signed for another audit log than this key's");
		r = 1;
		goto out;
	}
	if (!logkey_verify_report(k->pub, sig->log_id, sig->seq, digest, sig->sig)) {
		snprintf(err, errlen, "the signature does not match " RS_SUMS);
		r = 1;
		goto out;
	}
	for (size_t i = 0; !r && i < sums->n; i++) {
		int e = hash_file(dirfd, sums->f[i].name, h);
		if (e) {
			snprintf(err, errlen, "%s: %s", sums->f[i].name, strerror(-e));
			r = 1;
		} else if (memcmp(h, sums->f[i].sha256, 32)) {
			snprintf(err, errlen, "%s has been changed since it was signed", sums->f[i].name);
			r = 1;
		}
	}
	if (!r)
		r = all_listed(dirfd, sums, err, errlen);
out:
	free(text);
	close(dirfd);
	return r;
}
