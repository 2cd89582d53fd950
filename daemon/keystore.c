/* keystore.c - see keystore.h. The database work is plain libpq; bytea
 * goes in as binary parameters and comes back hex-encoded. */
#define _GNU_SOURCE
#include "keystore.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blindidx.h"
#include "kekfile.h"
#include "pgconn.h"
#include "keystore_int.h"
#include "secmem.h"

/* The schema's migrations: the one at index i takes it to version i + 1
 * (KS_SCHEMA_VERSION is how many there are). */
static const char *const migrations[] = {
#include "custos_sql.h"
	,
#include "custos_2_requests_sql.h"
	,
#include "custos_3_subject_index_sql.h"
	,
#include "custos_4_attempts_sql.h"
};
_Static_assert(ARRAY_SIZE(migrations) == KS_SCHEMA_VERSION, "KS_SCHEMA_VERSION counts the migrations");

int ksi_fail(struct keystore *ks, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ks->err, sizeof(ks->err), fmt, ap);
	va_end(ap);
	return r;
}

const char *ks_error(struct keystore *ks)
{
	return ks->err;
}

/* --- associated data: where each wrapped key belongs ------------------- */

static void ad_put(struct ad *a, const void *p, size_t n)
{
	memcpy(a->b + a->n, p, n);
	a->n += n;
}

struct ad ksi_ad_start(const char *label, const struct keystore *ks, uint32_t epoch)
{
	struct ad a = { .n = 0 };
	uint8_t be[4] = { epoch >> 24, epoch >> 16, epoch >> 8, epoch };

	ad_put(&a, label, strlen(label) + 1);
	ad_put(&a, ks->id, KEK_ID_LEN);
	ad_put(&a, be, sizeof(be));
	return a;
}

struct ad ksi_ad_data_key(const struct keystore *ks, uint32_t epoch, const struct kc_key *k)
{
	struct ad a = ksi_ad_start("custos-dk1", ks, epoch);
	uint8_t flag = k->has_ref;

	ad_put(&a, k->k.id, FC_KEYID_LEN);
	ad_put(&a, &flag, 1);
	if (k->has_ref)
		ad_put(&a, k->ref, SUBJECT_REF_LEN);
	return a;
}

/* --- libpq ------------------------------------------------------------- */

/* After each connect (PQreset too). */
static void session_settings(struct keystore *ks)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "SET client_min_messages = warning; SET lock_timeout = %u",
	         ks->lock_timeout_ms);
	PQclear(PQexec(ks->db, sql));
}

static void reconnect_if_lost(struct keystore *ks)
{
	if (PQstatus(ks->db) != CONNECTION_OK) {
		PQreset(ks->db);
		if (PQstatus(ks->db) == CONNECTION_OK)
			session_settings(ks);
	}
}

/* Runs sql with params (bytea ones binary: lens[i] > 0), checks the result
 * status. NULL with ks->err set on failure. */
PGresult *ksi_run(struct keystore *ks, ExecStatusType want, const char *sql, int n, const char *const *v,
                  const int *lens)
{
	int fmts[8] = { 0 };

	for (int i = 0; i < n && i < 8; i++)
		fmts[i] = lens && lens[i] > 0;
	reconnect_if_lost(ks);
	PGresult *r = PQexecParams(ks->db, sql, n, NULL, v, lens, fmts, 0);
	if (PQresultStatus(r) == want)
		return r;
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	ksi_fail(ks, -EIO, "keystore database: %s", msg ? msg : PQerrorMessage(ks->db));
	ks->err[strcspn(ks->err, "\n")] = 0;
	PQclear(r);
	return NULL;
}

/* Runs sql without parameters (it may hold several statements). */
int ksi_exec(struct keystore *ks, const char *sql)
{
	reconnect_if_lost(ks);
	PGresult *r = PQexec(ks->db, sql);
	int err = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -EIO;
	if (err) {
		const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
		ksi_fail(ks, -EIO, "keystore database: %s", msg ? msg : PQerrorMessage(ks->db));
		ks->err[strcspn(ks->err, "\n")] = 0;
	}
	PQclear(r);
	return err;
}

void ksi_rollback(struct keystore *ks)
{
	PQclear(PQexec(ks->db, "ROLLBACK"));
}

bool ksi_get_hex(PGresult *r, int row, int col, uint8_t *out, size_t n)
{
	const char *v = PQgetvalue(r, row, col);
	return strlen(v) == 2 * n && hex_decode(v, 2 * n, out);
}

static bool get_u32(PGresult *r, int row, int col, uint32_t *out)
{
	uint64_t v;
	if (!parse_u64(PQgetvalue(r, row, col), &v) || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* --- connection string ------------------------------------------------ */

static void add_value(struct buf *b, const char *kw, const char *v)
{
	buf_adds(b, b->len ? " " : "");
	buf_adds(b, kw);
	buf_adds(b, "='");
	for (; *v; v++) {
		if (*v == '\'' || *v == '\\')
			buf_addc(b, '\\');
		buf_addc(b, *v);
	}
	buf_addc(b, '\'');
}

char *ks_default_conninfo(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo ? conninfo : "", NULL);
	struct buf b = BUF_INIT;

	if (!opts)
		return NULL;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val && strcmp(o->keyword, "dbname"))
			add_value(&b, o->keyword, o->val);
	add_value(&b, "dbname", KS_DEFAULT_DBNAME);
	buf_addc(&b, 0);
	PQconninfoFree(opts);
	if (b.failed)
		buf_free(&b);
	return b.p;
}

/* --- opening ----------------------------------------------------------- */

static struct keystore *ks_new(const struct ks_config *cfg, char *err, size_t errlen)
{
	struct keystore *ks = calloc(1, sizeof(*ks));

	if (ks)
		pthread_mutex_init(&ks->mu, NULL);
	if (!ks || !(ks->sec = secmem_alloc(sizeof(*ks->sec))) || !(ks->kek_path = strdup(cfg->kek_path))) {
		snprintf(err, errlen, "out of memory");
		ks_close(ks);
		return NULL;
	}
	memcpy(ks->sec->master, cfg->master_key, sizeof(ks->sec->master));
	ks->db = pgc_connect(cfg->conninfo, "custosd keystore", NULL);
	if (PQstatus(ks->db) != CONNECTION_OK) {
		snprintf(err, errlen, "keystore database: %s", PQerrorMessage(ks->db));
		err[strcspn(err, "\n")] = 0;
		ks_close(ks);
		return NULL;
	}
	ks->lock_timeout_ms = cfg->lock_timeout_ms;
	session_settings(ks);
	return ks;
}

void ks_close(struct keystore *ks)
{
	if (!ks)
		return;
	PQfinish(ks->db);
	kc_free(ks->cache);
	secmem_free(ks->sec, sizeof(*ks->sec));
	free(ks->kek_path);
	pthread_mutex_destroy(&ks->mu);
	free(ks);
}

/* The schema version, or 0 when there is no keystore in the database. */
static int schema_version(struct keystore *ks, uint32_t *ret)
{
	PGresult *r = ksi_run(ks, PGRES_TUPLES_OK, "SELECT to_regclass('custos.schema_version') IS NOT NULL",
	                      0, NULL, NULL);
	if (!r)
		return -EIO;
	bool exists = !strcmp(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	*ret = 0;
	if (!exists)
		return 0;
	r = ksi_run(ks, PGRES_TUPLES_OK, "SELECT max(version) FROM custos.schema_version", 0, NULL, NULL);
	if (!r)
		return -EIO;
	int bad = !get_u32(r, 0, 0, ret);
	PQclear(r);
	return bad ? ksi_fail(ks, -EINVAL, "custos.schema_version is empty") : 0;
}

/* Applies the migrations after version (each file is a transaction that
 * locks custos.schema_version: a second process waits, then finds its
 * objects there). */
/* Migrations wait for their locks as long as it takes (lock_timeout is
 * for new keys). */
static int migrate(struct keystore *ks, uint32_t version)
{
	int r = ksi_exec(ks, "SET lock_timeout = 0");

	for (uint32_t v = version; !r && v < KS_SCHEMA_VERSION; v++)
		r = ksi_exec(ks, migrations[v]);
	session_settings(ks);
	return r;
}

/* Reads the keystore row: id and index key. */
static int load_identity(struct keystore *ks)
{
	uint8_t wrapped[FC_WRAP_LEN];
	PGresult *r =
	    ksi_run(ks, PGRES_TUPLES_OK,
	            "SELECT encode(id, 'hex'), encode(index_key, 'hex') FROM custos.keystore", 0, NULL, NULL);
	if (!r)
		return -EIO;
	int err =
	    PQntuples(r) != 1
	        ? ksi_fail(ks, -ENOENT, "the keystore is not initialised: run custosctl keys init")
	    : !ksi_get_hex(r, 0, 0, ks->id, KEK_ID_LEN) || !ksi_get_hex(r, 0, 1, wrapped, sizeof(wrapped))
	        ? ksi_fail(ks, -EINVAL, "custos.keystore row is malformed")
	        : 0;
	PQclear(r);
	if (err)
		return err;
	struct ad a = ksi_ad_start("custos-ik1", ks, 0);
	if (fc_unwrap(ks->sec->master, a.b, a.n, wrapped, sizeof(wrapped), ks->sec->index))
		return ksi_fail(ks, -EBADMSG,
		                "the index key does not unwrap: wrong master key for this keystore");
	return 0;
}

int ksi_active_epoch(struct keystore *ks, uint32_t *ret)
{
	PGresult *r = ksi_run(ks, PGRES_TUPLES_OK,
	                      "SELECT epoch FROM custos.kek_epochs WHERE state = 'active'", 0, NULL, NULL);
	if (!r)
		return -EIO;
	int err = PQntuples(r) == 1 && get_u32(r, 0, 0, ret)
	              ? 0
	              : ksi_fail(ks, -EINVAL, "the keystore has no active epoch");
	PQclear(r);
	return err;
}

/* Reads the KEK file under its lock and makes it agree with the database:
 * the active epoch's KEK is loaded; any other slot is a rotation that
 * either never committed or committed without destroying the old KEK, and
 * is wiped. Returns the locked fd, or a negative errno. */
int ksi_load_kek(struct keystore *ks, struct kek_file *f, unsigned *ret_slot)
{
	char err[400];
	int fd = kek_open(ks->kek_path, f, err, sizeof(err)), r = 0;
	uint32_t epoch = 0;
	unsigned i;

	if (fd < 0)
		return ksi_fail(ks, fd, "%s", err);
	if ((r = ksi_active_epoch(ks, &epoch)))
		goto out;
	if (memcmp(f->keystore_id, ks->id, KEK_ID_LEN)) {
		r = ksi_fail(ks, -EINVAL, "%s belongs to another keystore", ks->kek_path);
		goto out;
	}
	for (i = 0; i < KEK_SLOTS && f->slot[i].epoch != epoch; i++)
		;
	if (i == KEK_SLOTS) {
		r = ksi_fail(
		    ks, -ENOKEY,
		    "%s has no key for epoch %" PRIu32 ", the keystore's active epoch: the KEK of that epoch "
		    "was destroyed by a rotation, so this keystore (restored from a backup taken before "
		    "it?) cannot be unwrapped",
		    ks->kek_path, epoch);
		goto out;
	}
	struct ad a = ksi_ad_start("custos-kek1", ks, epoch);
	uint8_t *kek = secmem_alloc(FC_KEY_LEN); /* the live KEK changes only on success */
	if (!kek || fc_unwrap(ks->sec->master, a.b, a.n, f->slot[i].wrapped, FC_WRAP_LEN, kek)) {
		r = ksi_fail(ks, kek ? -EBADMSG : -ENOMEM,
		             "%s: the KEK of epoch %" PRIu32 " does not unwrap under this master key",
		             ks->kek_path, epoch);
		secmem_free(kek, FC_KEY_LEN);
		goto out;
	}
	memcpy(ks->sec->kek, kek, FC_KEY_LEN);
	secmem_free(kek, FC_KEY_LEN);
	ks->epoch = epoch;
	*ret_slot = i;
	struct kek_slot empty = { 0 };
	for (unsigned j = 0; j < KEK_SLOTS && !r; j++)
		if (j != i && f->slot[j].epoch && (r = kek_write_slot(fd, j, &empty)))
			ksi_fail(ks, r, "%s: %s", ks->kek_path, strerror(-r));
out:
	if (r) {
		close(fd);
		return r;
	}
	return fd;
}

static int reload_kek(struct keystore *ks)
{
	struct kek_file f;
	unsigned slot;
	int fd = ksi_load_kek(ks, &f, &slot);

	OPENSSL_cleanse(&f, sizeof(f));
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static int kp_subject_key(struct keyprov *kp, const char *type, const char *id, struct fc_key *ret);
static int kp_key_by_id(struct keyprov *kp, const uint8_t id[FC_KEYID_LEN], struct fc_key *ret);
static int kp_ref(struct keyprov *kp, const char *type, const char *id, uint8_t ret[SUBJECT_REF_LEN]);
int ks_subject_ref(struct keystore *ks, const char *type, const char *id, uint8_t ret[SUBJECT_REF_LEN])
{
	pthread_mutex_lock(&ks->mu);
	int r = bidx_subject_ref(ks->sec->index, type, id, ret);
	pthread_mutex_unlock(&ks->mu);
	return r;
}

static void kp_free(struct keyprov *kp);

int ks_open(const struct ks_config *cfg, struct keystore **ret, char *err, size_t errlen)
{
	struct keystore *ks = ks_new(cfg, err, errlen);
	uint32_t version;
	int r;

	if (!ks)
		return -EIO;
	ks->kp = (struct keyprov){ kp_subject_key, kp_key_by_id, kp_ref, kp_free };
	if (!(r = schema_version(ks, &version))) {
		if (version == 0)
			r = ksi_fail(ks, -ENOENT, "no keystore in this database: run custosctl keys init");
		else if (version < KS_SCHEMA_VERSION)
			r = migrate(ks, version);
		else if (version != KS_SCHEMA_VERSION)
			r = ksi_fail(ks, -EPROTONOSUPPORT,
			             "keystore schema version %" PRIu32 "; this Custos knows version %d",
			             version, KS_SCHEMA_VERSION);
	}
	if (!r)
		r = load_identity(ks);
	if (!r)
		r = reload_kek(ks);
	if (!r && !(ks->cache = kc_new(cfg->cache_keys ? cfg->cache_keys : KS_DEFAULT_CACHE_KEYS)))
		r = ksi_fail(ks, -ENOMEM, "out of memory for the key cache");
	if (r) {
		snprintf(err, errlen, "%s", ks->err);
		ks_close(ks);
		return r;
	}
	*ret = ks;
	return 0;
}

/* --- init -------------------------------------------------------------- */

static int make_identity(struct keystore *ks, struct kek_file *f, uint8_t wrapped_index[FC_WRAP_LEN])
{
	memset(f, 0, sizeof(*f));
	if (RAND_bytes(ks->id, KEK_ID_LEN) != 1 || RAND_bytes(ks->sec->index, KS_INDEX_KEY_LEN) != 1 ||
	    RAND_bytes(ks->sec->kek, FC_KEY_LEN) != 1)
		return ksi_fail(ks, -EIO, "no randomness");
	memcpy(f->keystore_id, ks->id, KEK_ID_LEN);
	f->slot[0].epoch = 1;
	struct ad ai = ksi_ad_start("custos-ik1", ks, 0), ak = ksi_ad_start("custos-kek1", ks, 1);
	if (fc_wrap(ks->sec->master, ai.b, ai.n, ks->sec->index, wrapped_index) ||
	    fc_wrap(ks->sec->master, ak.b, ak.n, ks->sec->kek, f->slot[0].wrapped))
		return ksi_fail(ks, -EIO, "wrapping failed");
	return 0;
}

static int init_rows(struct keystore *ks, const uint8_t wrapped_index[FC_WRAP_LEN])
{
	const char *v[2] = { (const char *)ks->id, (const char *)wrapped_index };
	const int lens[2] = { KEK_ID_LEN, FC_WRAP_LEN };
	PGresult *r;

	if (ksi_exec(ks, "BEGIN"))
		return -EIO;
	r = ksi_run(ks, PGRES_COMMAND_OK, "INSERT INTO custos.keystore (id, index_key) VALUES ($1, $2)", 2, v,
	            lens);
	if (r) {
		PQclear(r);
		r = ksi_run(ks, PGRES_COMMAND_OK,
		            "INSERT INTO custos.kek_epochs (epoch, state) VALUES (1, 'active')", 0, NULL,
		            NULL);
	}
	PQclear(r);
	if (!r)
		ksi_rollback(ks);
	return r ? 0 : -EIO;
}

int ks_init(const struct ks_config *cfg, char *err, size_t errlen)
{
	struct keystore *ks = ks_new(cfg, err, errlen);
	uint8_t wrapped_index[FC_WRAP_LEN];
	struct kek_file f;
	uint32_t version;
	int r;

	if (!ks)
		return -EIO;
	if (!(r = schema_version(ks, &version)) && version == 0)
		r = migrate(ks, 0);
	else if (!r && version != KS_SCHEMA_VERSION)
		r = ksi_fail(ks, -EPROTONOSUPPORT, "keystore schema version %" PRIu32 " is not %d", version,
		             KS_SCHEMA_VERSION);
	if (!r && !load_identity(ks))
		r = ksi_fail(ks, -EEXIST, "the keystore in this database is already initialised");
	if (!r)
		r = make_identity(ks, &f, wrapped_index);
	if (!r)
		r = init_rows(ks, wrapped_index); /* the transaction stays open */
	if (!r && (r = kek_create(cfg->kek_path, &f, ks->err, sizeof(ks->err))))
		ksi_rollback(ks);
	if (!r && ksi_exec(ks, "COMMIT") && load_identity(ks)) { /* unless it committed after all */
		r = -EIO;
		unlink(cfg->kek_path);
	}
	OPENSSL_cleanse(&f, sizeof(f));
	if (r)
		snprintf(err, errlen, "%s", ks->err);
	ks_close(ks);
	return r;
}

/* --- data keys --------------------------------------------------------- */

int ksi_unwrap_row(struct keystore *ks, uint32_t epoch, const uint8_t wrapped[FC_WRAP_LEN], struct kc_key *k)
{
	struct ad a = ksi_ad_data_key(ks, epoch, k);
	char id[2 * FC_KEYID_LEN + 1];

	if (!fc_unwrap(ks->sec->kek, a.b, a.n, wrapped, FC_WRAP_LEN, k->k.key))
		return 0;
	hex_encode(k->k.id, FC_KEYID_LEN, id);
	return ksi_fail(ks, -EBADMSG, "data key %s does not unwrap: its keystore row was altered", id);
}

/* Loads the key of the row selected by sql ($1: key id or subject ref):
 * columns key_id, subject_ref, epoch, wrapped. 0, -ENOENT (no row),
 * -ENOKEY (a destroyed epoch), -EIO, -EBADMSG. */
static int load_key(struct keystore *ks, const char *sql, const uint8_t *param, int len, struct kc_key *k)
{
	const char *v[1] = { (const char *)param };
	uint8_t wrapped[FC_WRAP_LEN];
	uint32_t epoch;

	for (int attempt = 0;; attempt++) {
		PGresult *r = ksi_run(ks, PGRES_TUPLES_OK, sql, 1, v, &len);
		if (!r)
			return -EIO;
		if (PQntuples(r) == 0) {
			PQclear(r);
			return -ENOENT;
		}
		memset(k, 0, sizeof(*k));
		k->has_ref = !PQgetisnull(r, 0, 1);
		bool ok = ksi_get_hex(r, 0, 0, k->k.id, FC_KEYID_LEN) &&
		          (!k->has_ref || ksi_get_hex(r, 0, 1, k->ref, SUBJECT_REF_LEN)) &&
		          get_u32(r, 0, 2, &epoch) && ksi_get_hex(r, 0, 3, wrapped, FC_WRAP_LEN);
		PQclear(r);
		if (!ok)
			return ksi_fail(ks, -EINVAL, "a custos.data_keys row is malformed");
		if (epoch == ks->epoch)
			return ksi_unwrap_row(ks, epoch, wrapped, k);
		if (epoch < ks->epoch || attempt > 0)
			return ksi_fail(ks, -ENOKEY,
			                "the key's epoch %" PRIu32 " was destroyed by a rotation", epoch);
		int err = reload_kek(ks); /* another process rotated */
		if (err)
			return err;
	}
}

int ks_key_by_id(struct keystore *ks, const uint8_t id[FC_KEYID_LEN], struct kc_key *ret)
{
	int err = 0;

	pthread_mutex_lock(&ks->mu);
	if (!kc_get(ks->cache, id, ret)) {
		err = load_key(ks, KEY_COLUMNS "WHERE key_id = $1", id, FC_KEYID_LEN, ret);
		if (err == -ENOENT)
			err = ksi_fail(ks, -ENOKEY, "no such key: destroyed, or never made by this keystore");
		if (!err)
			kc_put(ks->cache, ret);
	}
	pthread_mutex_unlock(&ks->mu);
	if (err)
		OPENSSL_cleanse(ret, sizeof(*ret));
	return err;
}

/* Inserts a new key for ref (NULL: no subject). 0, or -EAGAIN when no row
 * went in (the subject has a key, was erased, or the epoch moved on). */
static int insert_key(struct keystore *ks, struct kc_key *k)
{
	uint8_t wrapped[FC_WRAP_LEN];
	char epoch[16];

	if (RAND_bytes(k->k.id, FC_KEYID_LEN) != 1 || RAND_bytes(k->k.key, FC_KEY_LEN) != 1)
		return ksi_fail(ks, -EIO, "no randomness");
	struct ad a = ksi_ad_data_key(ks, ks->epoch, k);
	if (fc_wrap(ks->sec->kek, a.b, a.n, k->k.key, wrapped))
		return ksi_fail(ks, -EIO, "wrapping failed");
	snprintf(epoch, sizeof(epoch), "%" PRIu32, ks->epoch);
	const char *v[4] = { (const char *)k->k.id, k->has_ref ? (const char *)k->ref : NULL, epoch,
		             (const char *)wrapped };
	const int lens[4] = { FC_KEYID_LEN, SUBJECT_REF_LEN, 0, FC_WRAP_LEN };
	PGresult *r =
	    ksi_run(ks, PGRES_COMMAND_OK,
	            "INSERT INTO custos.data_keys (key_id, subject_ref, epoch, wrapped) "
	            "SELECT $1, $2, $3::integer, $4 "
	            "WHERE NOT EXISTS (SELECT 1 FROM custos.shredded_subjects WHERE subject_ref = $2) "
	            "AND EXISTS (SELECT 1 FROM custos.kek_epochs WHERE epoch = $3::integer "
	            "            AND state = 'active') "
	            "ON CONFLICT (subject_ref) DO NOTHING",
	            4, v, lens);
	if (!r)
		return -EIO;
	bool inserted = !strcmp(PQcmdTuples(r), "1");
	PQclear(r);
	return inserted ? 0 : -EAGAIN;
}

static int is_shredded(struct keystore *ks, const uint8_t ref[SUBJECT_REF_LEN])
{
	const char *v[1] = { (const char *)ref };
	const int len = SUBJECT_REF_LEN;
	PGresult *r = ksi_run(ks, PGRES_TUPLES_OK,
	                      "SELECT 1 FROM custos.shredded_subjects WHERE subject_ref = $1", 1, v, &len);
	if (!r)
		return -EIO;
	int n = PQntuples(r);
	PQclear(r);
	return n > 0;
}

static int subject_key_locked(struct keystore *ks, const uint8_t ref[SUBJECT_REF_LEN], struct kc_key *k)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		int err = load_key(ks, KEY_COLUMNS "WHERE subject_ref = $1", ref, SUBJECT_REF_LEN, k);
		if (err != -ENOENT)
			return err;
		if ((err = is_shredded(ks, ref)) != 0)
			return err < 0 ? err
			               : ksi_fail(ks, -ENOKEY, "the subject was erased; it gets no new key");
		memset(k, 0, sizeof(*k));
		memcpy(k->ref, ref, SUBJECT_REF_LEN);
		k->has_ref = true;
		if ((err = insert_key(ks, k)) != -EAGAIN)
			return err;
		if ((err = reload_kek(ks))) /* a rotation may have moved the epoch on */
			return err;
	}
	return ksi_fail(ks, -EIO, "could not make a key for the subject: the keystore keeps changing");
}

int ks_subject_key(struct keystore *ks, const char *type, const char *id, struct kc_key *ret)
{
	uint8_t ref[SUBJECT_REF_LEN];
	int err;

	pthread_mutex_lock(&ks->mu);
	if (!(err = bidx_subject_ref(ks->sec->index, type, id, ref)) &&
	    !kc_get_subject(ks->cache, ref, ret) && !(err = subject_key_locked(ks, ref, ret)))
		kc_put(ks->cache, ret);
	pthread_mutex_unlock(&ks->mu);
	if (err)
		OPENSSL_cleanse(ret, sizeof(*ret));
	return err;
}

int ks_fresh_key(struct keystore *ks, struct kc_key *ret)
{
	int err;

	pthread_mutex_lock(&ks->mu);
	memset(ret, 0, sizeof(*ret));
	err = insert_key(ks, ret);
	if (err == -EAGAIN && !(err = reload_kek(ks)))
		err = insert_key(ks, ret);
	if (err == -EAGAIN)
		err = ksi_fail(ks, -EIO, "could not store a new key: the keystore's epoch keeps changing");
	if (!err)
		kc_put(ks->cache, ret);
	pthread_mutex_unlock(&ks->mu);
	if (err)
		OPENSSL_cleanse(ret, sizeof(*ret));
	return err;
}

void ks_bidx_key(struct keystore *ks, const char *table, const char *column, uint8_t ret[32])
{
	bidx_column_key(ks->sec->index, table, column, ret);
}

/* --- erasure ----------------------------------------------------------- */

/* "{hex,hex,...}": a text[] literal of key ids. */
static char *id_array(const uint8_t (*ids)[FC_KEYID_LEN], size_t n)
{
	char *s = malloc(2 + n * (2 * FC_KEYID_LEN + 1) + 1), *p = s;

	if (!s)
		return NULL;
	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		hex_encode(ids[i], FC_KEYID_LEN, p);
		p += 2 * FC_KEYID_LEN;
	}
	*p++ = '}';
	*p = 0;
	return s;
}

static int shred_locked(struct keystore *ks, const uint8_t ref[SUBJECT_REF_LEN], const char *ids,
                        uint64_t *ret_destroyed)
{
	const char *v[2] = { (const char *)ref, ids };
	const int lens[2] = { SUBJECT_REF_LEN, 0 };
	char count[24];
	uint8_t id[FC_KEYID_LEN];

	/* the lock keeps a concurrent first use from making the subject a new key;
	 * it waits for a rotation as long as that takes (lock_timeout is for new keys) */
	if (ksi_exec(ks, "BEGIN; SET LOCAL lock_timeout = 0") ||
	    ksi_exec(ks, "LOCK TABLE custos.data_keys IN SHARE ROW EXCLUSIVE MODE"))
		return ksi_rollback(ks), -EIO;
	/* a key found in the subject's rows dies only if it is the subject's, or
	 * was made without a subject: never another subject's key */
	PGresult *r = ksi_run(
	    ks, PGRES_TUPLES_OK,
	    "DELETE FROM custos.data_keys WHERE subject_ref = $1 OR (subject_ref IS NULL AND key_id IN "
	    "(SELECT decode(h, 'hex') FROM unnest($2::text[]) AS h)) "
	    "RETURNING encode(key_id, 'hex')",
	    2, v, lens);
	if (!r)
		return ksi_rollback(ks), -EIO;
	int n = PQntuples(r);
	for (int i = 0; i < n; i++)
		if (ksi_get_hex(r, i, 0, id, sizeof(id)))
			kc_drop(ks->cache, id);
	PQclear(r);
	snprintf(count, sizeof(count), "%d", n);
	v[1] = count;
	r = ksi_run(
	    ks, PGRES_COMMAND_OK,
	    "INSERT INTO custos.shredded_subjects (subject_ref, keys_destroyed) VALUES ($1, $2::integer) "
	    "ON CONFLICT (subject_ref) DO UPDATE SET shredded_at = now(), "
	    "keys_destroyed = custos.shredded_subjects.keys_destroyed + EXCLUDED.keys_destroyed",
	    2, v, lens);
	PQclear(r);
	/* every process holding keys in its cache drops them at the commit */
	if (!r || ksi_exec(ks, "NOTIFY " NOTIFY_CHANNEL ", 'shred'") || ksi_exec(ks, "COMMIT"))
		return ksi_rollback(ks), -EIO;
	*ret_destroyed = (uint64_t)n;
	return 0;
}

int ks_shred(struct keystore *ks, const char *type, const char *id, const uint8_t (*ids)[FC_KEYID_LEN],
             size_t nids, uint64_t *ret_destroyed)
{
	uint8_t ref[SUBJECT_REF_LEN];
	char *arr = id_array(ids, nids);
	int err = arr ? 0 : -ENOMEM;

	pthread_mutex_lock(&ks->mu);
	if (!err)
		err = bidx_subject_ref(ks->sec->index, type, id, ref);
	bool ref_ok = !err;
	if (!err)
		err = shred_locked(ks, ref, arr, ret_destroyed);
	if (arr && ref_ok)
		kc_drop_subject(ks->cache, ref); /* even on failure: the next use rereads */
	pthread_mutex_unlock(&ks->mu);
	free(arr);
	return err;
}

/* --- status ------------------------------------------------------------ */

int ks_status(struct keystore *ks, struct ks_status *st)
{
	PGresult *r;
	int err = 0;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&ks->mu);
	char e[16];
	const char *v[1] = { e };
	snprintf(e, sizeof(e), "%" PRIu32, ks->epoch);
	r = ksi_run(
	    ks, PGRES_TUPLES_OK,
	    "SELECT (SELECT max(version) FROM custos.schema_version), "
	    "to_char((SELECT created_at FROM custos.kek_epochs WHERE epoch = $1::integer) AT TIME ZONE "
	    "'UTC', "
	    "        'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
	    "count(*) FILTER (WHERE epoch = $1::integer AND subject_ref IS NOT NULL), "
	    "count(*) FILTER (WHERE epoch = $1::integer AND subject_ref IS NULL), "
	    "count(*) FILTER (WHERE epoch <> $1::integer), "
	    "(SELECT count(*) FROM custos.shredded_subjects) FROM custos.data_keys",
	    1, v, NULL);
	if (!r || !get_u32(r, 0, 0, &st->schema_version) ||
	    !parse_u64(PQgetvalue(r, 0, 2), &st->subject_keys) ||
	    !parse_u64(PQgetvalue(r, 0, 3), &st->free_keys) ||
	    !parse_u64(PQgetvalue(r, 0, 4), &st->dead_keys) ||
	    !parse_u64(PQgetvalue(r, 0, 5), &st->shredded_subjects))
		err = r ? ksi_fail(ks, -EINVAL, "unexpected status reply") : -EIO;
	if (!err) {
		snprintf(st->epoch_since, sizeof(st->epoch_since), "%s", PQgetvalue(r, 0, 1));
		st->epoch = ks->epoch;
		memcpy(st->keystore_id, ks->id, sizeof(st->keystore_id));
		st->cache = kc_stats(ks->cache);
	}
	PQclear(r);
	pthread_mutex_unlock(&ks->mu);
	return err;
}

/* --- other processes' changes ------------------------------------------------ */

int ks_listen(struct keystore *ks)
{
	pthread_mutex_lock(&ks->mu);
	int err = ksi_exec(ks, "LISTEN " NOTIFY_CHANNEL);
	pthread_mutex_unlock(&ks->mu);
	return err;
}

int ks_socket(struct keystore *ks)
{
	return PQsocket(ks->db);
}

void ks_forget_keys(struct keystore *ks)
{
	pthread_mutex_lock(&ks->mu);
	kc_clear(ks->cache);
	pthread_mutex_unlock(&ks->mu);
}

int ks_notified(struct keystore *ks)
{
	int n = 0, err = 0;

	pthread_mutex_lock(&ks->mu);
	if (!PQconsumeInput(ks->db))
		err = ksi_fail(ks, -EIO, "keystore database: %s", PQerrorMessage(ks->db));
	for (PGnotify *nt; !err && (nt = PQnotifies(ks->db)); PQfreemem(nt), n++) {
		if (!strcmp(nt->extra, "shred"))
			kc_clear(ks->cache); /* which keys went is not said: all go */
		else if (!strcmp(nt->extra, "rotate"))
			err = reload_kek(ks);
	}
	pthread_mutex_unlock(&ks->mu);
	return err ? err : n;
}

/* --- the audit log's key provider --------------------------------------- */

static int kp_subject_key(struct keyprov *kp, const char *type, const char *id, struct fc_key *ret)
{
	struct kc_key k;
	int err = ks_subject_key((struct keystore *)kp, type, id, &k);

	if (!err)
		*ret = k.k;
	OPENSSL_cleanse(&k, sizeof(k));
	return err;
}

static int kp_key_by_id(struct keyprov *kp, const uint8_t id[FC_KEYID_LEN], struct fc_key *ret)
{
	struct kc_key k;
	int err = ks_key_by_id((struct keystore *)kp, id, &k);

	if (!err)
		*ret = k.k;
	OPENSSL_cleanse(&k, sizeof(k));
	return err;
}

static int kp_ref(struct keyprov *kp, const char *type, const char *id, uint8_t ret[SUBJECT_REF_LEN])
{
	return bidx_subject_ref(((struct keystore *)kp)->sec->index, type, id, ret);
}

static void kp_free(struct keyprov *kp)
{
	(void)kp; /* the keystore owns itself */
}

struct keyprov *ks_keyprov(struct keystore *ks)
{
	return &ks->kp;
}
