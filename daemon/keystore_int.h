/* keystore_int.h - what the keystore's files share (keystore.c: opening,
 * data keys, erasure; keystore_rotate.c: rotation). Not for other
 * modules: they use keystore.h. */
#ifndef CUSTOS_KEYSTORE_INT_H
#define CUSTOS_KEYSTORE_INT_H

#include <libpq-fe.h>
#include <pthread.h>

#include "kekfile.h"
#include "keystore.h"

#define NOTIFY_CHANNEL "custos_keys"

struct ks_secrets {
	uint8_t master[32], kek[FC_KEY_LEN], index[KS_INDEX_KEY_LEN];
};

struct keystore {
	struct keyprov kp;
	pthread_mutex_t mu;
	PGconn *db;
	char *kek_path;
	uint8_t id[KEK_ID_LEN];
	uint32_t epoch;
	struct ks_secrets *sec; /* secure memory */
	struct keycache *cache;
	unsigned lock_timeout_ms;
	char err[512];
};

#define KEY_COLUMNS                                                                                          \
	"SELECT encode(key_id, 'hex'), encode(subject_ref, 'hex'), epoch, encode(wrapped, 'hex') "           \
	"FROM custos.data_keys "

/* Associated data: where each wrapped key belongs. */
struct ad {
	uint8_t b[16 + KEK_ID_LEN + 4 + FC_KEYID_LEN + 1 + SUBJECT_REF_LEN];
	size_t n;
};

struct ad ksi_ad_start(const char *label, const struct keystore *ks, uint32_t epoch);
struct ad ksi_ad_data_key(const struct keystore *ks, uint32_t epoch, const struct kc_key *k);

/* Sets ks->err; returns r. */
int ksi_fail(struct keystore *ks, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Runs sql with params (bytea ones binary: lens[i] > 0), checks the result
 * status. NULL with ks->err set on failure. */
PGresult *ksi_run(struct keystore *ks, ExecStatusType want, const char *sql, int n, const char *const *v,
                  const int *lens);
/* Runs sql without parameters (it may hold several statements). */
int ksi_exec(struct keystore *ks, const char *sql);
void ksi_rollback(struct keystore *ks);
bool ksi_get_hex(PGresult *r, int row, int col, uint8_t *out, size_t n);

/* The epoch the database says is active. */
int ksi_active_epoch(struct keystore *ks, uint32_t *ret);
/* Opens and locks the KEK file, takes the active epoch's KEK into ks and
 * wipes the other slots; the file's descriptor (still locked), or -errno. */
int ksi_load_kek(struct keystore *ks, struct kek_file *f, unsigned *ret_slot);
/* Unwraps a data key row of epoch under ks's KEK into k. */
int ksi_unwrap_row(struct keystore *ks, uint32_t epoch, const uint8_t wrapped[FC_WRAP_LEN], struct kc_key *k);

#endif
