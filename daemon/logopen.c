/* logopen.c - creating a log, and loading one for appending: reading the
 * writer's state, finding the head, cutting a torn tail after a crash. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auditlog_int.h"
#include "secmem.h"

#define MAX_STATE 4096

static int errf(char *err, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int errf(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

static bool dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool empty = true;

	if (!d)
		return errno == ENOENT;
	while (empty && (e = readdir(d)))
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
	closedir(d);
	return empty;
}

/* The first record of a new log, written with its own small writer. */
static int write_genesis(const char *dir, const struct logstate *st)
{
	struct buf b = BUF_INIT;
	uint8_t zero[LOG_HASH_LEN] = { 0 }, h[LOG_HASH_LEN];
	char name[SEG_NAME_MAX], *path = NULL;
	struct lr_mac *m = lr_mac_new(st->mac_key);
	int r = m ? 0 : -ENOMEM;

	lr_begin(&b, 1, now_us(), "log_init");
	lr_init_body(&b, st->log_id);
	if (!r)
		r = lr_finish(&b, 0, zero, m, h);
	logseg_name(1, false, name);
	if (!r && asprintf(&path, "%s/%s", dir, name) < 0)
		r = -ENOMEM;
	if (!r)
		r = write_file_excl(path, b.p, b.len, 0640);
	lr_mac_free(m);
	buf_free(&b);
	free(path);
	return r;
}

static int write_dir_file(const char *dir, const char *name, const struct buf *b, mode_t mode)
{
	char *path;

	if (b->failed || asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	int r = write_file_excl(path, b->p, b->len, mode);
	free(path);
	return r;
}

/* Makes new keys: st (writer, epoch 1) and k (verifier, with k0). */
static int new_keys(struct logstate *st, struct logkeys *k)
{
	if (RAND_bytes(k->log_id, LOG_ID_LEN) != 1 || RAND_bytes(k->seed, LOG_KEY_LEN) != 1 ||
	    RAND_bytes(st->sign_key, 32) != 1 || logkey_public(st->sign_key, k->pub))
		return -EIO;
	k->has_seed = true;
	memcpy(st->log_id, k->log_id, LOG_ID_LEN);
	st->epoch = 1;
	logkey_ratchet(k->seed, st->mac_key);
	return 0;
}

int alog_create(const char *dir, const char *keyout, char *err, size_t errlen)
{
	struct logstate *st = secmem_alloc(sizeof(*st));
	struct logkeys *k = secmem_alloc(sizeof(*k));
	struct buf kb = BUF_INIT, pb = BUF_INIT, sb = BUF_INIT;
	int r = st && k ? 0 : -ENOMEM;

	if (!r && !dir_is_empty(dir))
		r = errf(err, errlen, -EEXIST, "%s: directory exists and is not empty; refusing to overwrite",
		         dir);
	if (!r && access(keyout, F_OK) == 0)
		r = errf(err, errlen, -EEXIST, "%s: file exists; refusing to overwrite", keyout);
	if (!r && mkdir(dir, 0750) < 0 && errno != EEXIST)
		r = errf(err, errlen, -errno, "%s: cannot create directory: %s", dir, strerror(errno));
	if (!r && (r = new_keys(st, k)))
		errf(err, errlen, r, "cannot generate keys");
	if (!r && (!buf_reserve(&kb, SECRET_TEXT_MAX) || !buf_reserve(&sb, SECRET_TEXT_MAX)))
		r = -ENOMEM; /* sized up front: no realloc leaves keys behind */
	if (!r) {
		logkey_format(k, true, &kb);
		logkey_format(k, false, &pb);
		logstate_format(st, &sb);
		r = kb.failed ? -ENOMEM : write_file_excl(keyout, kb.p, kb.len, 0400);
		if (r)
			errf(err, errlen, r, "%s: cannot write key file: %s", keyout, strerror(-r));
	}
	if (!r && ((r = write_dir_file(dir, PUB_FILE, &pb, 0644)) ||
	           (r = write_dir_file(dir, STATE_FILE, &sb, 0600)) || (r = write_genesis(dir, st))))
		errf(err, errlen, r, "%s: cannot write the new log: %s", dir, strerror(-r));
	if (kb.p)
		OPENSSL_cleanse(kb.p, kb.cap);
	if (sb.p)
		OPENSSL_cleanse(sb.p, sb.cap);
	buf_free(&kb);
	buf_free(&pb);
	buf_free(&sb);
	secmem_free(st, sizeof(*st));
	secmem_free(k, sizeof(*k));
	return r;
}

static int read_state(struct alog *l, char *err, size_t errlen)
{
	char buf[MAX_STATE + 1];

	l->statefd = openat(l->dirfd, STATE_FILE, O_RDWR | O_CLOEXEC);
	if (l->statefd < 0)
		return errf(err, errlen, -errno, STATE_FILE ": cannot open: %s", strerror(errno));
	if (check_private(l->statefd))
		return errf(err, errlen, -EACCES,
		            STATE_FILE ": readable by group or others; refusing to use it");
	ssize_t n = pread(l->statefd, buf, MAX_STATE, 0);
	int r = n < 0 ? -errno : logstate_parse(buf, (size_t)n, l->st);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (r)
		return errf(err, errlen, r, STATE_FILE ": %s",
		            r == -EBADMSG ? "damaged (check failed)" : "malformed");
	l->st_on_disk = l->st->epoch;
	return 0;
}

int alog_write_state(struct alog *l, const struct logstate *s)
{
	struct buf b = BUF_INIT;

	/* Room for it all at once: a realloc would leave a copy of the keys
	 * in freed heap memory. */
	if (!buf_reserve(&b, SECRET_TEXT_MAX))
		return -ENOMEM;
	logstate_format(s, &b);
	int r = b.failed ? -ENOMEM : 0;
	if (!r && pwrite(l->statefd, b.p, b.len, 0) != (ssize_t)b.len)
		r = -EIO;
	if (!r && fdatasync(l->statefd) < 0)
		r = -errno;
	if (b.p)
		OPENSSL_cleanse(b.p, b.cap);
	buf_free(&b);
	return r;
}

/* What scanning a segment found. */
#define CP_KEEP 8

/* A checkpoint seen while scanning: enough to check its MAC later. */
struct cp_seen {
	uint64_t epoch;
	uint8_t d[LOG_HASH_LEN], mac[LOG_HASH_LEN];
};

struct scan {
	uint64_t last_seq, records, since_cp, cp_epoch; /* cp_epoch 0: none */
	struct cp_seen cps[CP_KEEP];                    /* the last ones, by epoch modulo CP_KEEP */
	uint8_t last_hash[LOG_HASH_LEN];
	bool last_is_cp, torn;
	uint64_t good_bytes; /* offset after the last whole line */
};

static int scan_line(struct scan *sc, const char *line, size_t len, uint64_t expect_seq)
{
	struct lr_frame f;
	uint8_t d[LOG_HASH_LEN], h[LOG_HASH_LEN], sig[LOG_SIG_LEN];
	uint64_t epoch;

	if (lr_scan(line, len, &f) || f.seq != expect_seq)
		return -EBADMSG;
	if (sc->records && memcmp(f.prev, sc->last_hash, LOG_HASH_LEN))
		return -EBADMSG;
	if (lr_digest(line, len, d, h))
		return -EIO;
	sc->last_is_cp = lr_is(&f, "checkpoint");
	if (sc->last_is_cp) {
		if (!lr_checkpoint_parse(&f, &epoch, sig) || (sc->cp_epoch && epoch != sc->cp_epoch + 1))
			return -EBADMSG;
		struct cp_seen *cp = &sc->cps[epoch % CP_KEEP];
		cp->epoch = epoch;
		memcpy(cp->d, d, LOG_HASH_LEN);
		memcpy(cp->mac, f.mac, LOG_HASH_LEN);
		sc->cp_epoch = epoch;
		sc->since_cp = 0;
	} else {
		sc->since_cp++;
	}
	memcpy(sc->last_hash, h, LOG_HASH_LEN);
	sc->last_seq = f.seq;
	sc->records++;
	return 0;
}

/* Reads a whole segment, checking its framing and chain. In the active
 * segment (torn_ok) a damaged last line, an unterminated fragment or junk
 * after the data is what a crash leaves: it is cut. */
static int scan_segment(struct alog *l, const struct seginfo *s, bool torn_ok, struct scan *sc, char *err,
                        size_t errlen)
{
	struct segreader *rd;
	const char *line;
	bool bad = false;
	size_t len;
	uint64_t off = 0, badoff = 0;
	int r = segreader_open(l->dirfd, s, &rd);

	*sc = (struct scan){ 0 };
	while (r >= 0 && (r = segreader_next(rd, &line, &len, &off)) == SEG_LINE) {
		if (scan_line(sc, line, len, s->first + sc->records) < 0) {
			bad = true; /* torn, if nothing but filler follows */
			badoff = off;
			r = segreader_next(rd, &line, &len, &off);
			break;
		}
		sc->good_bytes = off + len + 1;
	}
	bool crash_tail = bad ? r == SEG_END || r == SEG_JUNK : r == SEG_TORN || r == SEG_JUNK;
	if (crash_tail && torn_ok)
		sc->torn = true;
	else if (bad || r != SEG_END)
		r = r < 0 ? r : -EBADMSG;
	else
		r = 0;
	segreader_free(rd);
	if (r < 0)
		return errf(err, errlen, r,
		            "%s: record at offset %" PRIu64 " is damaged (%s); run `custosctl log verify`",
		            s->name, bad ? badoff : off, strerror(-r));
	return 0;
}

/* Brings the writer's epoch up to the log, whose last checkpoint closed
 * epoch cp_epoch (0: none yet). The state file may lag one checkpoint
 * behind after a crash; it never runs ahead unless the tail was cut. */
static int reconcile_epoch(struct alog *l, const struct scan *sc, char *err, size_t errlen)
{
	uint64_t cp_epoch = sc->cp_epoch;

	if (l->st->epoch == cp_epoch + 1)
		return 0;
	if (l->st->epoch > cp_epoch + 1)
		return errf(err, errlen, -EBADMSG,
		            "the log ends before its last checkpoint (state epoch %" PRIu64
		            ", log epoch %" PRIu64 "): the tail was cut; run `custosctl log verify`",
		            l->st->epoch, cp_epoch + 1);
	/* Each step forward must be a checkpoint MACed with the key in hand:
	 * an edited epoch number cannot move the writer's key. */
	while (l->st->epoch <= cp_epoch) {
		const struct cp_seen *cp = &sc->cps[l->st->epoch % CP_KEEP];
		struct lr_mac *m = lr_mac_new(l->st->mac_key);
		uint8_t mac[LOG_HASH_LEN];
		bool ok = m && cp->epoch == l->st->epoch && !lr_mac_compute(m, cp->d, mac) &&
		          !CRYPTO_memcmp(mac, cp->mac, LOG_HASH_LEN);
		lr_mac_free(m);
		if (!ok)
			return errf(err, errlen, -EBADMSG,
			            "the checkpoint of epoch %" PRIu64
			            " does not verify under the writer's key: the "
			            "log was altered; run `custosctl log verify`",
			            l->st->epoch);
		logkey_ratchet(l->st->mac_key, l->st->mac_key);
		l->st->epoch++;
	}
	int r = alog_write_state(l, l->st);
	if (!r)
		l->st_on_disk = l->st->epoch;
	return r ? errf(err, errlen, r, STATE_FILE ": cannot write: %s", strerror(-r)) : 0;
}

/* The end of what a crash left after the data: the last byte that is not
 * filler (a torn line, or a later page that reached the disk first). */
static int tail_end(int fd, uint64_t from, uint64_t size, uint64_t *ret)
{
	char buf[65536];

	while (size > from) {
		size_t n = size - from < sizeof(buf) ? (size_t)(size - from) : sizeof(buf);
		if (pread(fd, buf, n, (off_t)(size - n)) != (ssize_t)n)
			return -EIO;
		for (size_t i = n; i-- > 0;)
			if (buf[i] != SEG_FILL) {
				*ret = size - n + i + 1;
				return 0;
			}
		size -= n;
	}
	*ret = from;
	return 0;
}

/* Describes [from, to) of fd for the recovery record: where, how long,
 * and its SHA-256. */
static int describe_cut(int fd, const struct seginfo *s, uint64_t from, uint64_t to, struct alog_cut *cut)
{
	char buf[65536];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int r = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) ? 0 : -ENOMEM;

	for (uint64_t off = from; !r && off < to;) {
		size_t n = to - off < sizeof(buf) ? (size_t)(to - off) : sizeof(buf);
		if (pread(fd, buf, n, (off_t)off) != (ssize_t)n || !EVP_DigestUpdate(md, buf, n))
			r = -EIO;
		off += n;
	}
	if (!r && !EVP_DigestFinal_ex(md, cut->sha256, NULL))
		r = -EIO;
	EVP_MD_CTX_free(md);
	cut->offset = from;
	cut->bytes = to - from;
	memcpy(cut->segment, s->name, SEG_NAME_MAX);
	return r;
}

/* Opens the active segment for writing. After a crash, everything after
 * the last whole record is described in *cut (for the recovery record)
 * and overwritten with filler. */
static int open_active(struct alog *l, const struct seginfo *s, const struct scan *sc, struct alog_cut *cut)
{
	struct stat st;
	uint64_t end;
	int r = 0;

	*cut = (struct alog_cut){ 0 };
	l->segfd = openat(l->dirfd, s->name, O_RDWR | O_CLOEXEC);
	if (l->segfd < 0 || fstat(l->segfd, &st) < 0)
		return -errno;
	if (sc->torn && !(r = tail_end(l->segfd, sc->good_bytes, (uint64_t)st.st_size, &end)) &&
	    !(r = describe_cut(l->segfd, s, sc->good_bytes, end, cut)))
		r = logseg_fill(l->segfd, sc->good_bytes, (uint64_t)st.st_size);
	if (r)
		return r;
	l->seg_first = s->first;
	l->seg_size = l->seg_written = sc->good_bytes;
	l->seg_prefilled = (uint64_t)st.st_size > sc->good_bytes;
	return 0;
}

/* Removes leftovers of an interrupted seal and queues unsealed segments. */
static int tidy_segments(struct alog *l, struct seginfo *v, size_t *n)
{
	size_t out = 0;

	for (size_t i = 0; i < *n; i++) {
		if (i + 1 < *n && v[i + 1].first == v[i].first && !v[i].gz && v[i + 1].gz) {
			if (unlinkat(l->dirfd, v[i].name, 0) < 0)
				return -errno; /* the .gz was complete: it was renamed in place */
			continue;
		}
		v[out++] = v[i];
	}
	*n = out;
	for (size_t i = 0; i + 1 < out; i++)
		if (!v[i].gz && alog_queue_seal(l, &v[i]))
			return -ENOMEM;
	return 0;
}

static void remove_tmp_files(struct alog *l)
{
	int fd = dup(l->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n > 4 && !strcmp(e->d_name + n - 4, ".tmp") &&
		    (!strncmp(e->d_name, "seg-", 4) || !strncmp(e->d_name, SEG_SPARE, strlen(SEG_SPARE))))
			unlinkat(l->dirfd, e->d_name, 0);
	}
	closedir(d);
}

/* Scans the active segment for the head and the last checkpoint, and the
 * segment before it when the active one lacks either: every sealed segment
 * ends with a checkpoint. */
static int find_head(struct alog *l, struct seginfo *v, size_t n, struct scan *sc, char *err, size_t errlen)
{
	struct scan prev;
	int r = scan_segment(l, &v[n - 1], !v[n - 1].gz, sc, err, errlen);

	if (r)
		return r;
	if (sc->records == 0 && n == 1)
		return errf(err, errlen, -EBADMSG, "%s is empty: the log was never initialised", v[0].name);
	if ((sc->records && sc->cp_epoch) || n == 1)
		return 0;
	if ((r = scan_segment(l, &v[n - 2], false, &prev, err, errlen)))
		return r;
	if (prev.last_seq + 1 != v[n - 1].first)
		return errf(err, errlen, -EBADMSG, "%s does not follow %s", v[n - 1].name, v[n - 2].name);
	if (sc->records == 0) {
		sc->last_seq = prev.last_seq;
		memcpy(sc->last_hash, prev.last_hash, LOG_HASH_LEN);
		sc->last_is_cp = prev.last_is_cp;
		sc->since_cp = prev.since_cp;
	}
	sc->cp_epoch = prev.cp_epoch;
	memcpy(sc->cps, prev.cps, sizeof(sc->cps));
	return 0;
}

int alog_load(struct alog *l, struct alog_cut *ret_cut, char *err, size_t errlen)
{
	struct seginfo *v = NULL;
	size_t n = 0;
	struct scan sc;
	int r = read_state(l, err, errlen);

	if (r)
		return r;
	remove_tmp_files(l);
	if ((r = logseg_list(l->dir, &v, &n)) || n == 0) {
		free(v);
		return errf(err, errlen, r ? r : -ENOENT,
		            "no log segments found: not a Custos log directory");
	}
	if (!(r = tidy_segments(l, v, &n)) && v[n - 1].gz) {
		/* Sealed with no successor: start the next segment. */
		r = find_head(l, v, n, &sc, err, errlen);
		free(v);
		return r ? r
		         : errf(err, errlen, -EBADMSG,
		                "the active segment is missing (the last one is sealed): the tail was "
		                "removed; run `custosctl log verify`");
	}
	if (!r)
		r = find_head(l, v, n, &sc, err, errlen);
	if (!r)
		r = reconcile_epoch(l, &sc, err, errlen);
	if (!r && (r = open_active(l, &v[n - 1], &sc, ret_cut)))
		errf(err, errlen, r, "%s: cannot open for appending: %s", v[n - 1].name, strerror(-r));
	free(v);
	if (r)
		return r;
	l->next_seq = sc.last_seq + 1;
	l->written_seq = l->durable_seq = sc.last_seq;
	memcpy(l->head, sc.last_hash, LOG_HASH_LEN);
	memcpy(l->durable_head, sc.last_hash, LOG_HASH_LEN);
	l->last_is_cp = sc.last_is_cp;
	l->since_cp = sc.since_cp;
	l->last_cp_seq = 0; /* nothing to anchor until the next checkpoint */
	memset(l->last_cp_hash, 0, LOG_HASH_LEN);
	l->pending_recs = 0;
	l->last_cp_us = mono_us();
	l->mac = lr_mac_new(l->st->mac_key);
	return l->mac ? 0 : errf(err, errlen, -ENOMEM, "out of memory");
}

void alog_unload(struct alog *l)
{
	if (l->segfd >= 0)
		close(l->segfd);
	if (l->statefd >= 0)
		close(l->statefd);
	l->segfd = l->statefd = -1;
	lr_mac_free(l->mac);
	l->mac = NULL;
	buf_reset(&l->pending);
	buf_reset(&l->spare);
}

/* Starts the segment for next_seq. In sync mode it is the sealer's
 * prefilled spare, so fdatasync has no metadata to write; when no spare is
 * ready (and in batch mode, which fsyncs rarely) it is an empty file:
 * prefilling here would stall every appender behind the mutex. */
int alog_new_segment(struct alog *l)
{
	char name[SEG_NAME_MAX];
	struct stat st;
	int r = 0;

	logseg_name(l->next_seq, false, name);
	bool spare = l->o.durability == ALOG_SYNC && fstatat(l->dirfd, SEG_SPARE, &st, 0) == 0 &&
	             (uint64_t)st.st_size == l->o.segment_bytes;
	if (spare) {
		if (renameat(l->dirfd, SEG_SPARE, l->dirfd, name) < 0)
			r = -errno;
	} else {
		int fd = openat(l->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd < 0)
			r = -errno;
		else
			close(fd);
	}
	if (!r && fsync(l->dirfd) < 0)
		r = -errno;
	int fd = r ? -1 : openat(l->dirfd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return r ? r : -errno;
	close(l->segfd);
	l->segfd = fd;
	l->seg_first = l->next_seq;
	l->seg_size = l->seg_written = 0;
	l->seg_prefilled = spare;
	return 0;
}
