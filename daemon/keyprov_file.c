/* keyprov_file.c - the file key provider (see keyprov.h). Format, one
 * record per line:
 *
 *   custos-test-keys 1
 *   index <64 hex: index key>
 *   key <64 hex: subject ref> <32 hex: key id> <64 hex: data key>
 *   shredded <64 hex: subject ref>
 *
 * Keys are held in clear in this file: it is for tests and the demo only.
 * The keystore (keys issue) wraps them under the master key. */
#define _GNU_SOURCE
#include "keyprov.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blindidx.h"
#include "secmem.h"

#define MAX_FILE (256u << 20)
#define HEADER "custos-test-keys 1\n"

struct entry {
	uint8_t ref[SUBJECT_REF_LEN];
	struct fc_key k;
	bool shredded;
};

struct fileprov {
	struct keyprov kp;
	pthread_mutex_t mu;
	int fd;             /* open for appending new keys */
	uint8_t *index_key; /* secure memory */
	struct entry *v;    /* secure memory */
	size_t n, cap;
};

static struct entry *find(struct fileprov *p, const uint8_t *bytes, bool by_id)
{
	/* Linear scan: the provider is for tests and the demo, which use a
	 * few thousand subjects at most. */
	for (size_t i = p->n; i-- > 0;) {
		struct entry *e = &p->v[i];
		if (by_id ? !memcmp(e->k.id, bytes, FC_KEYID_LEN) && !e->shredded
		          : !memcmp(e->ref, bytes, SUBJECT_REF_LEN))
			return e;
	}
	return NULL;
}

static struct entry *grow(struct fileprov *p)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 64;
		struct entry *v = secmem_alloc(cap * sizeof(*v));
		if (!v)
			return NULL;
		if (p->v)
			memcpy(v, p->v, p->n * sizeof(*v));
		secmem_free(p->v, p->cap * sizeof(*v));
		p->v = v;
		p->cap = cap;
	}
	return &p->v[p->n++];
}

static int fp_ref(struct keyprov *kp, const char *type, const char *id, uint8_t ret[SUBJECT_REF_LEN])
{
	return bidx_subject_ref(((struct fileprov *)kp)->index_key, type, id, ret);
}

static int append_line(struct fileprov *p, const struct entry *e)
{
	char line[8 + 65 + 33 + 65 + 2], ref[65], id[33], key[65];

	hex_encode(e->ref, SUBJECT_REF_LEN, ref);
	hex_encode(e->k.id, FC_KEYID_LEN, id);
	hex_encode(e->k.key, FC_KEY_LEN, key);
	int n = snprintf(line, sizeof(line), "key %s %s %s\n", ref, id, key);
	ssize_t w = write(p->fd, line, (size_t)n);
	OPENSSL_cleanse(line, sizeof(line));
	OPENSSL_cleanse(key, sizeof(key));
	if (w != n)
		return w < 0 ? -errno : -EIO;
	return fdatasync(p->fd) < 0 ? -errno : 0;
}

static int fp_subject_key(struct keyprov *kp, const char *type, const char *id, struct fc_key *ret)
{
	struct fileprov *p = (struct fileprov *)kp;
	uint8_t ref[SUBJECT_REF_LEN];
	int err = fp_ref(kp, type, id, ref);

	if (err)
		return err;
	pthread_mutex_lock(&p->mu);
	struct entry *e = find(p, ref, false);
	if (e && e->shredded) {
		err = -ENOKEY;
	} else if (!e) {
		e = grow(p);
		if (!e) {
			err = -ENOMEM;
		} else {
			memcpy(e->ref, ref, sizeof(ref));
			if (RAND_bytes(e->k.id, FC_KEYID_LEN) != 1 || RAND_bytes(e->k.key, FC_KEY_LEN) != 1)
				err = -EIO;
			if (!err)
				err = append_line(p, e);
			if (err)
				p->n--;
		}
	}
	if (!err)
		*ret = e->k;
	pthread_mutex_unlock(&p->mu);
	return err;
}

static int fp_key_by_id(struct keyprov *kp, const uint8_t id[FC_KEYID_LEN], struct fc_key *ret)
{
	struct fileprov *p = (struct fileprov *)kp;

	pthread_mutex_lock(&p->mu);
	struct entry *e = find(p, id, true);
	if (e)
		*ret = e->k;
	pthread_mutex_unlock(&p->mu);
	return e ? 0 : -ENOKEY;
}

static void fp_free(struct keyprov *kp)
{
	struct fileprov *p = (struct fileprov *)kp;

	secmem_free(p->v, p->cap * sizeof(*p->v));
	secmem_free(p->index_key, 32);
	if (p->fd >= 0)
		close(p->fd);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static bool hexfield(const char *s, size_t n, uint8_t *out)
{
	return strlen(s) == 2 * n && hex_decode(s, 2 * n, out);
}

static void mark_shredded(struct fileprov *p, const uint8_t *ref)
{
	for (size_t i = 0; i < p->n; i++) {
		if (!memcmp(p->v[i].ref, ref, SUBJECT_REF_LEN)) {
			p->v[i].shredded = true;
			OPENSSL_cleanse(&p->v[i].k, sizeof(p->v[i].k));
		}
	}
}

/* Parses one line into p; returns false when malformed. */
static bool parse_line(struct fileprov *p, char *line)
{
	enum { REF = 2 * SUBJECT_REF_LEN, ID = 2 * FC_KEYID_LEN, KEY = 2 * FC_KEY_LEN };
	struct entry *e;

	if (!strncmp(line, "index ", 6))
		return hexfield(line + 6, 32, p->index_key);
	if (!strncmp(line, "shredded ", 9)) {
		if (!(e = grow(p)) || !hexfield(line + 9, SUBJECT_REF_LEN, e->ref))
			return false;
		e->shredded = true;
		mark_shredded(p, e->ref);
		return true;
	}
	if (strncmp(line, "key ", 4) || strlen(line) != 4 + REF + 1 + ID + 1 + KEY || line[4 + REF] != ' ' ||
	    line[5 + REF + ID] != ' ' || !(e = grow(p)))
		return false;
	return hex_decode(line + 4, REF, e->ref) && hex_decode(line + 5 + REF, ID, e->k.id) &&
	       hex_decode(line + 6 + REF + ID, KEY, e->k.key);
}

static int load(struct fileprov *p, const char *path, char *err, size_t errlen)
{
	char *text;
	size_t len;
	int r = read_file(path, MAX_FILE, &text, &len);

	if (r == -ENOENT) {
		uint8_t k[32];
		char line[sizeof(HEADER) + 80], hex[65];
		if (RAND_bytes(k, sizeof(k)) != 1)
			return -EIO;
		hex_encode(k, sizeof(k), hex);
		int n = snprintf(line, sizeof(line), HEADER "index %s\n", hex);
		r = write_file_excl(path, line, (size_t)n, 0600);
		OPENSSL_cleanse(line, sizeof(line));
		OPENSSL_cleanse(hex, sizeof(hex));
		OPENSSL_cleanse(k, sizeof(k));
		if (r)
			return r;
		r = read_file(path, MAX_FILE, &text, &len);
	}
	if (r)
		return r;
	r = strncmp(text, HEADER, strlen(HEADER)) ? -EINVAL : 0;
	size_t lineno = 1;
	char *save, *line = strtok_r(text + strlen(HEADER), "\n", &save);
	for (; !r && line; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		if (!parse_line(p, line)) {
			snprintf(err, errlen, "%s:%zu: malformed key line", path, lineno);
			r = -EINVAL;
		}
	}
	if (r == -EINVAL && lineno == 1)
		snprintf(err, errlen, "%s:1: not a Custos test key file", path);
	OPENSSL_cleanse(text, len);
	free(text);
	return r;
}

int keyprov_file_open(const char *path, struct keyprov **ret, char *err, size_t errlen)
{
	struct fileprov *p = calloc(1, sizeof(*p));

	snprintf(err, errlen, "%s: cannot open key file", path);
	if (!p)
		return -ENOMEM;
	p->kp = (struct keyprov){ fp_subject_key, fp_key_by_id, fp_ref, fp_free };
	pthread_mutex_init(&p->mu, NULL);
	p->index_key = secmem_alloc(32);
	p->fd = -1;
	int r = p->index_key ? load(p, path, err, errlen) : -ENOMEM;
	if (!r) {
		p->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
		r = p->fd < 0 ? -errno : check_private(p->fd);
		if (r == -EACCES)
			snprintf(err, errlen, "%s: key file is readable by group or others", path);
	}
	if (r) {
		fp_free(&p->kp);
		return r;
	}
	*ret = &p->kp;
	return 0;
}

/* Rewrites the file without the subject's key lines, adding a tombstone, so
 * the key is gone from the file (a copy elsewhere is the caller's problem). */
int keyprov_file_shred(const char *path, const char *type, const char *id)
{
	struct keyprov *kp;
	char err[256], hex[2 * SUBJECT_REF_LEN + 1], *text, *tmp = NULL;
	uint8_t ref[SUBJECT_REF_LEN];
	size_t len;
	struct buf out = BUF_INIT;

	int r = keyprov_file_open(path, &kp, err, sizeof(err));
	if (r)
		return r;
	r = kp->subject_ref(kp, type, id, ref);
	keyprov_free(kp);
	if (r || (r = read_file(path, MAX_FILE, &text, &len)))
		return r;
	hex_encode(ref, sizeof(ref), hex);
	if (!buf_reserve(&out, len + 128)) /* no realloc: it would leave keys in freed memory */
		r = -ENOMEM;
	for (char *save, *l = strtok_r(text, "\n", &save); !r && l; l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, "key ", 4) || strncmp(l + 4, hex, 2 * SUBJECT_REF_LEN)) {
			buf_adds(&out, l);
			buf_addc(&out, '\n');
		}
	}
	buf_printf(&out, "shredded %s\n", hex);
	if (out.failed || asprintf(&tmp, "%s.tmp", path) < 0)
		r = -ENOMEM;
	if (!r)
		unlink(tmp);
	if (!r && !(r = write_file_excl(tmp, out.p, out.len, 0600)) && rename(tmp, path) < 0)
		r = -errno;
	OPENSSL_cleanse(text, len);
	if (out.p)
		OPENSSL_cleanse(out.p, out.cap);
	free(text);
	free(tmp);
	buf_free(&out);
	return r;
}
