/* config.h - custosd's configuration file (/etc/custos/custosd.conf; the
 * repository's example, with every setting and its default, is
 * scripts/custosd.conf). One `key = value` per line; the value is the rest
 * of the line, trimmed, so connection strings need no quoting. Lines
 * starting with # are comments. Keys that may repeat (policy, listen) add
 * one value each. Errors name file:line and say what would be right. */
#ifndef CUSTOS_CONFIG_H
#define CUSTOS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auditlog.h"
#include "buf.h"
#include "policy.h"
#include "util.h"

#define CFG_MAX_FILE (32u * 1024) /* it travels to the roles in one IPC string */
#define CFG_MAX_LIST 64

enum cfg_anchor { CFG_ANCHOR_OFF, CFG_ANCHOR_BEST_EFFORT, CFG_ANCHOR_REQUIRED };
enum cfg_audit { CFG_AUDIT_POLICY, CFG_AUDIT_ALL };

struct cfg {
	/* the audit log */
	char *log_dir;
	enum alog_durability durability;
	uint64_t checkpoint_seconds, checkpoint_records, segment_bytes;
	enum cfg_anchor anchor;
	/* policies, databases and keys */
	struct pol_list policies;
	char *database, *keystore; /* keystore NULL: database's, with dbname=custos */
	char *master_key;          /* NULL: $CREDENTIALS_DIRECTORY/master-key */
	char *kek_file;
	uint64_t key_cache;
	char *report_dir; /* access reports and deletion certificates */
	/* the proxy */
	struct pol_list listen;
	char *tls_cert, *tls_key, *tls_client_ca;
	enum cfg_audit audit_statements; /* every statement, or those on policy tables */
	uint64_t bulk_rows;              /* unattributed rows in one statement: an alert */
	uint64_t proxy_max_message, proxy_max_clients;
	uint64_t proxy_connect_timeout; /* seconds, from connect to the first ReadyForQuery */
	/* the control socket */
	char *control_socket, *control_group; /* the socket's group: who may connect at all */
	char *security_group, *dpo_group, *admin_group;
	uint64_t control_max_request, control_max_clients;
	/* privileges */
	char *user;
};

/* A configuration holding every default. NULL when out of memory. */
struct cfg *cfg_new(void);
void cfg_free(struct cfg *c);

/* Parses data (the file named name) into c. Problems are appended to errs
 * as "name:line: message" lines; returns how many there were. */
unsigned cfg_parse(struct cfg *c, const char *name, const char *data, size_t len, struct buf *errs);
/* The same for a text cfg_parse already accepted (a role's copy from the
 * parent): connection strings are not given to libpq again (cfg_parse
 * does that in a child process, which a role need not fork). */
unsigned cfg_parse_checked(struct cfg *c, const char *name, const char *data, size_t len, struct buf *errs);

/* Reads and parses path. Returns the number of problems, or a negative
 * errno when the file cannot be read (errs says why). */
int cfg_load(struct cfg *c, const char *path, struct buf *errs) WUR;

/* Writes every setting and its value as `key = value` lines. */
void cfg_dump(const struct cfg *c, struct buf *out);

/* The settings that may hold secrets (connection strings with their
 * passwords): each role is given only those it uses. */
#define CFG_SECRET_DATABASE 1u
#define CFG_SECRET_KEYSTORE 2u

/* Wipes and drops from c the secret settings that are not in keep. */
void cfg_keep_secrets(struct cfg *c, unsigned keep);

/* The configuration text (checked by cfg_parse) for a role that keeps
 * only the secrets in keep: the lines setting the others, and every
 * comment, are left empty (line numbers hold). 0 or -ENOMEM; wipe out
 * after use. */
int cfg_text_keeping(const char *text, size_t len, unsigned keep, struct buf *out) WUR;

/* Overwrites a text that held secrets, then frees it. */
void cfg_free_text(char *text);

#endif
