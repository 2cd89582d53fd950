/* ctl_keys.h - what the keystore commands share (ctl_keys.c,
 * ctl_encrypt.c): their options, and opening the keystore. */
#ifndef CUSTOS_CTL_KEYS_H
#define CUSTOS_CTL_KEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "keystore.h"

#define CTL_MASTER_CRED "master-key"
#define CTL_DEFAULT_KEK "/var/lib/custos/kek"

enum {
	KO_DB = 1000,
	KO_KEYSTORE,
	KO_MASTER,
	KO_KEK,
	KO_POLICY,
	KO_SUBJECT,
	KO_TABLE,
	KO_BATCH,
	KO_JSON,
	KO_SOCKET,
	KO_NO_GUARD
};

struct ctl_keys_args {
	const char *db, *keystore, *master, *kek, *policy, *subject, *table, *socket;
	uint64_t batch;
	bool json, no_guard;
};

/* Parses the options of a keystore command (allowed: KO_* ending in 0).
 * 0, or an exit code. */
int ctl_keys_args(int argc, char **argv, const char *group, const int *allowed, const char *help,
                  struct ctl_keys_args *a);

/* Loads the master key and opens the keystore. 0, or an exit code with
 * the reason printed. */
int ctl_keys_open(const struct ctl_keys_args *a, struct keystore **ret);

#include <libpq-fe.h>

struct policy;
struct catalog;
struct buf;
/* Loads and checks the policy file and binds it to the catalog of the
 * database at db. 0, or an exit code with the errors printed. */
int ctl_policy_load(const char *file, const char *db, struct policy **ret_p, struct catalog **ret_cat,
                    struct buf *errs);

#endif
