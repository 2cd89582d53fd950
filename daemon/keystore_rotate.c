/* keystore_rotate.c - key rotation (keystore.h, ks_rotate): the next
 * epoch's KEK goes into the KEK file's free slot, every live data key is
 * rewrapped under it in one transaction, then the old slot is wiped. A
 * crash at any point is finished or undone at the next open (load_kek). */
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "keystore_int.h"
#include "secmem.h"

/* Rewraps up to 1000 keys of epoch from under the old KEK (in
 * ks->sec->kek) to new_kek in epoch to. *ret_n counts them (0: done). */
static int rewrap_batch(struct keystore *ks, uint32_t from, uint32_t to, const uint8_t *new_kek,
                        size_t *ret_n)
{
	char e[16], t[16];
	const char *v[3] = { e, NULL, NULL };
	struct kc_key *k = secmem_alloc(sizeof(*k));
	struct buf ids = BUF_INIT, ws = BUF_INIT;
	uint8_t wrapped[FC_WRAP_LEN];
	char hex[2 * FC_WRAP_LEN + 1];
	int err = k ? 0 : -ENOMEM;

	snprintf(e, sizeof(e), "%" PRIu32, from);
	snprintf(t, sizeof(t), "%" PRIu32, to);
	PGresult *r = err ? NULL
	                  : ksi_run(ks, PGRES_TUPLES_OK, KEY_COLUMNS "WHERE epoch = $1::integer LIMIT 1000",
	                            1, v, NULL);
	if (!err && !r)
		err = -EIO;
	int n = r ? PQntuples(r) : 0;
	buf_adds(&ids, "{");
	buf_adds(&ws, "{");
	for (int i = 0; i < n && !err; i++) {
		memset(k, 0, sizeof(*k));
		k->has_ref = !PQgetisnull(r, i, 1);
		if (!ksi_get_hex(r, i, 0, k->k.id, FC_KEYID_LEN) ||
		    (k->has_ref && !ksi_get_hex(r, i, 1, k->ref, SUBJECT_REF_LEN)) ||
		    !ksi_get_hex(r, i, 3, wrapped, FC_WRAP_LEN)) {
			err = ksi_fail(ks, -EINVAL, "a custos.data_keys row is malformed");
			break;
		}
		if ((err = ksi_unwrap_row(ks, from, wrapped, k)))
			break;
		struct ad a = ksi_ad_data_key(ks, to, k);
		if (fc_wrap(new_kek, a.b, a.n, k->k.key, wrapped)) {
			err = ksi_fail(ks, -EIO, "wrapping failed");
			break;
		}
		buf_adds(&ids, i ? "," : "");
		buf_adds(&ws, i ? "," : "");
		buf_adds(&ids, PQgetvalue(r, i, 0));
		hex_encode(wrapped, FC_WRAP_LEN, hex);
		buf_adds(&ws, hex);
	}
	PQclear(r);
	buf_add(&ids, "}", 2); /* with the NUL */
	buf_add(&ws, "}", 2);
	if (!err && (ids.failed || ws.failed))
		err = ksi_fail(ks, -ENOMEM, "out of memory");
	if (!err && n > 0) {
		const char *u[3] = { t, ids.p, ws.p };
		r = ksi_run(
		    ks, PGRES_COMMAND_OK,
		    "UPDATE custos.data_keys d SET epoch = $1::integer, wrapped = decode(u.w, 'hex') "
		    "FROM unnest($2::text[], $3::text[]) AS u(id, w) WHERE d.key_id = decode(u.id, 'hex')",
		    3, u, NULL);
		err = r ? 0 : -EIO;
		PQclear(r);
	}
	secmem_free(k, sizeof(*k));
	buf_free(&ids);
	buf_free(&ws);
	*ret_n = err ? 0 : (size_t)n;
	return err;
}

/* The database half of a rotation, in one transaction. */
static int rotate_db(struct keystore *ks, uint32_t to, const uint8_t *new_kek, uint64_t *ret_n)
{
	char e[16], t[16];
	const char *v[2] = { e, t };
	size_t n;
	int err;

	snprintf(e, sizeof(e), "%" PRIu32, ks->epoch);
	snprintf(t, sizeof(t), "%" PRIu32, to);
	if (ksi_exec(ks, "BEGIN") || ksi_exec(ks, "LOCK TABLE custos.data_keys IN SHARE ROW EXCLUSIVE MODE"))
		return ksi_rollback(ks), -EIO;
	PGresult *r =
	    ksi_run(ks, PGRES_COMMAND_OK,
	            "WITH old AS (UPDATE custos.kek_epochs SET state = 'retired', retired_at = now() "
	            "             WHERE epoch = $1::integer AND state = 'active' RETURNING epoch) "
	            "INSERT INTO custos.kek_epochs (epoch, state) SELECT $2::integer, 'active' FROM old",
	            2, v, NULL);
	err = !r                            ? -EIO
	      : strcmp(PQcmdTuples(r), "1") ? ksi_fail(ks, -EAGAIN, "the keystore's epoch changed")
	                                    : 0;
	PQclear(r);
	*ret_n = 0;
	while (!err && !(err = rewrap_batch(ks, ks->epoch, to, new_kek, &n)) && n)
		*ret_n += n;
	if (!err && ksi_exec(ks, "NOTIFY " NOTIFY_CHANNEL ", 'rotate'"))
		err = -EIO;
	if (err || ksi_exec(ks, "COMMIT"))
		return ksi_rollback(ks), err ? err : -EIO;
	return 0;
}

/* The database half failed, or seemed to: a COMMIT whose answer was lost
 * may have gone through. Ask the database which epoch is active: the old
 * one - wipe the new KEK; the new one - the rotation happened (0); no
 * answer - keep both KEKs, for the next open to reconcile. */
static int rotate_failed(struct keystore *ks, int fd, unsigned cur, uint32_t to, int err)
{
	static const struct kek_slot empty = { 0 };
	char why[sizeof(ks->err)];
	uint32_t active = 0;

	memcpy(why, ks->err, sizeof(why));
	int q = ksi_active_epoch(ks, &active);
	if (!q && active == to)
		return 0;
	if (!q && active == ks->epoch)
		(void)!kek_write_slot(fd, !cur, &empty);
	memcpy(ks->err, why, sizeof(why));
	return err;
}

int ks_rotate(struct keystore *ks, uint64_t *ret_rewrapped)
{
	struct kek_file f;
	unsigned cur;
	uint8_t *new_kek = secmem_alloc(FC_KEY_LEN);
	int err = new_kek ? 0 : -ENOMEM, fd = -1;

	pthread_mutex_lock(&ks->mu);
	if (!err && (fd = ksi_load_kek(ks, &f, &cur)) < 0)
		err = fd;
	uint32_t to = ks->epoch + 1;
	struct kek_slot next = { .epoch = to }, empty = { 0 };
	struct ad a = ksi_ad_start("custos-kek1", ks, to);
	if (!err && (RAND_bytes(new_kek, FC_KEY_LEN) != 1 ||
	             fc_wrap(ks->sec->master, a.b, a.n, new_kek, next.wrapped)))
		err = ksi_fail(ks, -EIO, "making the new KEK failed");
	/* 1: the new KEK is on disk before any key is wrapped under it */
	if (!err && (err = kek_write_slot(fd, !cur, &next)))
		ksi_fail(ks, err, "%s: %s", ks->kek_path, strerror(-err));
	/* 2: every live key moves to the new epoch, atomically */
	if (!err && (err = rotate_db(ks, to, new_kek, ret_rewrapped)))
		err = rotate_failed(ks, fd, cur, to, err);
	/* 3: the old KEK is destroyed (load_kek finishes this after a crash) */
	if (!err) {
		memcpy(ks->sec->kek, new_kek, FC_KEY_LEN);
		ks->epoch = to;
		if ((err = kek_write_slot(fd, cur, &empty)))
			ksi_fail(ks, err, "%s: destroying the old KEK: %s (it is retried at the next start)",
			         ks->kek_path, strerror(-err));
	}
	if (fd >= 0)
		close(fd);
	pthread_mutex_unlock(&ks->mu);
	OPENSSL_cleanse(&f, sizeof(f));
	secmem_free(new_kek, FC_KEY_LEN);
	return err;
}
