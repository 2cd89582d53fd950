/* ctl_keys.c - `custosctl keys init | status | rotate | shred`: the
 * keystore, driven directly over libpq until the daemon's keeper takes
 * these behind the control socket. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "ctl.h"
#include "ctl_keys.h"
#include "jsonw.h"
#include "masterkey.h"
#include "pgconn.h"
#include "policy.h"
#include "secmem.h"
#include "subjectmap.h"
#include "subjectrows.h"

static const struct option all_opts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "db", required_argument, NULL, KO_DB },
	{ "keystore", required_argument, NULL, KO_KEYSTORE },
	{ "master-key", required_argument, NULL, KO_MASTER },
	{ "kek", required_argument, NULL, KO_KEK },
	{ "policy", required_argument, NULL, KO_POLICY },
	{ "subject", required_argument, NULL, KO_SUBJECT },
	{ "table", required_argument, NULL, KO_TABLE },
	{ "batch", required_argument, NULL, KO_BATCH },
	{ "json", no_argument, NULL, KO_JSON },
	{ "socket", required_argument, NULL, KO_SOCKET },
	{ "no-guard", no_argument, NULL, KO_NO_GUARD },
	{ 0 },
};

#define COMMON_HELP                                                                                          \
	"  --db CONNINFO        the customer database (libpq connection string)\n"                           \
	"  --keystore CONNINFO  the keystore database (default: --db with dbname=custos)\n"                  \
	"  --master-key FILE    the master key, 32 bytes or 64 hex digits, mode 0400 or 0600\n"              \
	"                       (default: $CREDENTIALS_DIRECTORY/" CTL_MASTER_CRED ")\n"                     \
	"  --kek FILE           the key-encryption-key file (default: " CTL_DEFAULT_KEK ")\n"

static const char *option_name(int val)
{
	for (const struct option *o = all_opts; o->name; o++)
		if (o->val == val)
			return o->name;
	return "?";
}

int ctl_keys_args(int argc, char **argv, const char *group, const int *allowed, const char *help,
                  struct ctl_keys_args *a)
{
	int c;

	*a = (struct ctl_keys_args){ .kek = CTL_DEFAULT_KEK };
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", all_opts, NULL)) != -1) {
		bool ok = c == 'h';
		for (const int *p = allowed; *p && !ok; p++)
			ok = *p == c;
		if (c == '?')
			return EXIT_USAGE;
		if (!ok)
			return ctl_usage_error("%s%s does not take --%s", group, argv[0], option_name(c));
		switch (c) {
		case 'h': fputs(help, stdout); exit(0);
		case KO_DB: a->db = optarg; break;
		case KO_KEYSTORE: a->keystore = optarg; break;
		case KO_MASTER: a->master = optarg; break;
		case KO_KEK: a->kek = optarg; break;
		case KO_POLICY: a->policy = optarg; break;
		case KO_SUBJECT: a->subject = optarg; break;
		case KO_TABLE: a->table = optarg; break;
		case KO_JSON: a->json = true; break;
		case KO_SOCKET: a->socket = optarg; break;
		case KO_NO_GUARD: a->no_guard = true; break;
		case KO_BATCH:
			if (!parse_u64(optarg, &a->batch) || !a->batch || a->batch > 1000000)
				return ctl_usage_error("--batch: '%s' is not a number from 1 to 1000000",
				                       optarg);
			break;
		}
	}
	if (optind < argc)
		return ctl_usage_error("%s%s: unexpected argument '%s'", group, argv[0], argv[optind]);
	bool daemon = false; /* commands that can go through custosd instead */
	for (const int *p = allowed; *p; p++)
		daemon |= *p == KO_SOCKET;
	if (!a->db && !a->keystore && !daemon)
		return ctl_usage_error("%s%s: give --db CONNINFO (or --keystore CONNINFO)", group, argv[0]);
	return 0;
}

/* The keystore's connection string: --keystore, or --db's with
 * dbname=custos. Freed by the caller. */
static char *keystore_conninfo(const struct ctl_keys_args *a)
{
	return a->keystore ? strdup(a->keystore) : ks_default_conninfo(a->db);
}

int ctl_keys_open(const struct ctl_keys_args *a, struct keystore **ret)
{
	uint8_t *master = NULL;
	char err[1024], *conninfo = keystore_conninfo(a);
	int r;

	if (!conninfo) {
		fprintf(stderr, "custosctl: --db: not a valid connection string\n");
		return EXIT_USAGE;
	}
	if ((r = masterkey_load(a->master, CTL_MASTER_CRED, &master, err, sizeof(err))) == 0) {
		struct ks_config cfg = {
			.conninfo = conninfo, .kek_path = a->kek, .master_key = master, .cache_keys = 4096
		};
		r = ks_open(&cfg, ret, err, sizeof(err));
	}
	secmem_free(master, MASTER_KEY_LEN);
	free(conninfo);
	if (r)
		fprintf(stderr, "custosctl: %s\n", err);
	return r ? EXIT_USAGE : 0;
}

/* ---- init ---- */

static const char init_help[] =
    "Usage: custosctl keys init --db CONNINFO [--keystore CONNINFO] [--master-key FILE] [--kek FILE]\n"
    "Create the keystore: the custos schema (schemas/custos.sql) in the keystore database,\n"
    "which is created first when it is the default one and does not exist; the keystore's\n"
    "index key; and the first key-encryption-key epoch, written to the KEK file (mode 0600,\n"
    "never overwritten). Keep the KEK file out of long-lived backups: rotating destroys\n"
    "the old epoch's key there, which is what makes keystore backups unreadable.\n\n" COMMON_HELP;

/* Creates the default keystore database (dbname=custos) when missing. */
static int create_database(const char *db)
{
	PGconn *c = pgc_connect(db, "custosctl keys", NULL);
	int r = 0;

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "custosctl: --db: %s", PQerrorMessage(c));
		PQfinish(c);
		return EXIT_USAGE;
	}
	PGresult *res = PQexec(c, "SELECT 1 FROM pg_database WHERE datname = '" KS_DEFAULT_DBNAME "'");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 0) {
		PQclear(res);
		res = PQexec(c, "CREATE DATABASE " KS_DEFAULT_DBNAME);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			char e[512];
			fprintf(stderr, "custosctl: creating database " KS_DEFAULT_DBNAME ": %s\n",
			        srw_db_error(res, e, sizeof(e)));
			r = EXIT_USAGE;
		} else {
			printf("created database " KS_DEFAULT_DBNAME "\n");
		}
	}
	PQclear(res);
	PQfinish(c);
	return r;
}

static int cmd_init(int argc, char **argv)
{
	static const int allowed[] = { KO_DB, KO_KEYSTORE, KO_MASTER, KO_KEK, 0 };
	struct ctl_keys_args a;
	uint8_t *master = NULL;
	char err[1024], *conninfo;
	int r = ctl_keys_args(argc, argv, "keys ", allowed, init_help, &a);

	if (r || (!a.keystore && (r = create_database(a.db))))
		return r;
	if (!(conninfo = keystore_conninfo(&a)))
		return ctl_usage_error("--db: not a valid connection string");
	if (!(r = masterkey_load(a.master, CTL_MASTER_CRED, &master, err, sizeof(err)))) {
		struct ks_config cfg = { .conninfo = conninfo, .kek_path = a.kek, .master_key = master };
		r = ks_init(&cfg, err, sizeof(err));
	}
	secmem_free(master, MASTER_KEY_LEN);
	free(conninfo);
	if (r) {
		fprintf(stderr, "custosctl: %s\n", err);
		return EXIT_USAGE;
	}
	printf("keystore initialised: epoch 1; KEK file %s\n", a.kek);
	return 0;
}

/* ---- status ---- */

static const char status_help[] =
    "Usage: custosctl keys status [--json] [--socket PATH]\n"
    "       custosctl keys status --db CONNINFO [--keystore CONNINFO] [--master-key FILE]\n"
    "                            [--kek FILE] [--json]\n"
    "Show the keystore: its epoch and how many keys it holds. Without --db or --keystore\n"
    "custosd's keeper answers (the security group may ask). Keys of destroyed epochs are\n"
    "rows restored from a backup taken before a rotation; they cannot be unwrapped.\n\n" COMMON_HELP
    "  --json               one JSON object\n"
    "  --socket PATH        custosd's control socket (default $CUSTOS_SOCKET or\n"
    "                       /run/custos/control.sock)\n";

static int ks_fail(struct keystore *ks)
{
	fprintf(stderr, "custosctl: %s\n", ks_error(ks));
	return EXIT_USAGE;
}

static int db_fail(PGconn *db)
{
	fprintf(stderr, "custosctl: --db: %s", PQerrorMessage(db));
	return EXIT_USAGE;
}

static void print_status(const struct ks_status *st, bool json)
{
	char id[33];

	hex_encode(st->keystore_id, sizeof(st->keystore_id), id);
	if (!json) {
		printf("keystore        %s (schema version %" PRIu32 ")\n", id, st->schema_version);
		printf("epoch           %" PRIu32 " (since %s)\n", st->epoch, st->epoch_since);
		printf("keys            %" PRIu64 " of subjects, %" PRIu64 " without a subject\n",
		       st->subject_keys, st->free_keys);
		printf("erased          %" PRIu64 " subjects\n", st->shredded_subjects);
		printf("dead keys       %" PRIu64 " (of destroyed epochs)\n", st->dead_keys);
		return;
	}
	struct buf b = BUF_INIT;
	buf_adds(&b, "{");
	jw_key(&b, "keystore_id");
	jw_str(&b, id);
	buf_adds(&b, ",");
	jw_key(&b, "schema_version");
	jw_u64(&b, st->schema_version);
	buf_adds(&b, ",");
	jw_key(&b, "epoch");
	jw_u64(&b, st->epoch);
	buf_adds(&b, ",");
	jw_key(&b, "epoch_since");
	jw_str(&b, st->epoch_since);
	buf_adds(&b, ",");
	jw_key(&b, "subject_keys");
	jw_u64(&b, st->subject_keys);
	buf_adds(&b, ",");
	jw_key(&b, "free_keys");
	jw_u64(&b, st->free_keys);
	buf_adds(&b, ",");
	jw_key(&b, "shredded_subjects");
	jw_u64(&b, st->shredded_subjects);
	buf_adds(&b, ",");
	jw_key(&b, "dead_keys");
	jw_u64(&b, st->dead_keys);
	buf_adds(&b, "}\n");
	fwrite(b.p, 1, b.len, stdout);
	buf_free(&b);
}

static int cmd_status(int argc, char **argv)
{
	static const int allowed[] = { KO_DB, KO_KEYSTORE, KO_MASTER, KO_KEK, KO_JSON, KO_SOCKET, 0 };
	struct ctl_keys_args a;
	struct keystore *ks;
	struct ks_status st;
	int r = ctl_keys_args(argc, argv, "keys ", allowed, status_help, &a);

	if (!r && !a.db && !a.keystore)
		return ctl_daemon_call(a.socket, "keys-status", true, 15000, NULL);
	if (r || (r = ctl_keys_open(&a, &ks)))
		return r;
	if (ks_status(ks, &st))
		r = ks_fail(ks);
	else
		print_status(&st, a.json);
	ks_close(ks);
	return r;
}

/* ---- rotate ---- */

static const char rotate_help[] =
    "Usage: custosctl keys rotate [--socket PATH]\n"
    "       custosctl keys rotate --db CONNINFO [--keystore CONNINFO] [--master-key FILE] [--kek FILE]\n"
    "Through custosd's keeper (the admin group may ask), or directly with --db or\n"
    "--keystore when custosd is not running. Start a new key-encryption-key epoch: rewrap every live data "
    "key under a new KEK, in one\n"
    "transaction, then destroy the old epoch's KEK. Dumps and backups of the keystore taken\n"
    "before cannot be unwrapped afterwards, so keys shredded since are gone from them too.\n\n" COMMON_HELP;

static int cmd_rotate(int argc, char **argv)
{
	static const int allowed[] = { KO_DB, KO_KEYSTORE, KO_MASTER, KO_KEK, KO_SOCKET, 0 };
	struct ctl_keys_args a;
	struct keystore *ks;
	struct ks_status st;
	uint64_t n;
	int r = ctl_keys_args(argc, argv, "keys ", allowed, rotate_help, &a);

	if (!r && !a.db && !a.keystore)
		return ctl_daemon_call(a.socket, "keys-rotate", true, 3600000,
		                       NULL); /* a rotation of many keys */
	if (r || (r = ctl_keys_open(&a, &ks)))
		return r;
	if (ks_rotate(ks, &n) || ks_status(ks, &st))
		r = ks_fail(ks);
	else
		printf("rotated to epoch %" PRIu32 ": %" PRIu64
		       " keys rewrapped; the old epoch's key is destroyed\n",
		       st.epoch, n);
	ks_close(ks);
	return r;
}

/* ---- shred ---- */

static const char shred_help[] =
    "Usage: custosctl keys shred --subject TYPE:ID --db CONNINFO --policy FILE\n"
    "                           [--keystore CONNINFO] [--master-key FILE] [--kek FILE]\n"
    "Erase a data subject by destroying keys: the subject's own data key, and every key\n"
    "named by the encrypted values found in the subject's rows (the policy says which\n"
    "tables and columns, and how they lead to the subject). The subject gets no new key\n"
    "afterwards. Copies of the keystore taken before (dumps, backups) still hold the keys\n"
    "until the next `custosctl keys rotate`.\n\n" COMMON_HELP "  --policy FILE        the policy\n"
    "  --subject TYPE:ID    the subject, e.g. customer:42\n";

/* Adds the key ids of the ciphertexts in r (all columns) to ids. */
static bool encrypted(const struct pol_column *c)
{
	return c->encrypt;
}

struct ids {
	struct buf *ids;
	size_t *nvalues;
};

static int collect_ids(void *arg, const struct pol_table *t, const struct pol_column *const *cols,
                       size_t ncols, PGresult *r)
{
	struct ids *x = arg;
	uint8_t id[FC_KEYID_LEN];

	(void)t, (void)cols, (void)ncols;
	for (int i = 0; i < PQntuples(r); i++)
		for (int j = 0; j < PQnfields(r); j++) {
			if (PQgetisnull(r, i, j) ||
			    fc_key_id(PQgetvalue(r, i, j), (size_t)PQgetlength(r, i, j), id))
				continue;
			(*x->nvalues)++;
			buf_add(x->ids, id, sizeof(id));
		}
	return x->ids->failed ? -ENOMEM : 0;
}

/* The key ids in the subject's encrypted values, read from the customer
 * database along the policy's paths. */
static int subject_key_ids(PGconn *db, const struct policy *p, const struct sm_map *m, const char *id,
                           struct buf *ids, size_t *nvalues)
{
	struct ids x = { ids, nvalues };
	char err[768];
	int r = srw_each(db, p, m, id, encrypted, collect_ids, &x, err, sizeof(err));

	if (r)
		fprintf(stderr, "custosctl: %s\n", r == -ENOMEM ? "out of memory" : err);
	return r;
}

/* The subject's encrypted values' key ids, and its id as the proxy names
 * it (*id then points into room or stays: sm_stored_id). */
static int find_values(const struct ctl_keys_args *a, const char *type, const char **id, char room[IDT_ROOM],
                       struct buf *ids, size_t *nvalues)
{
	struct policy *p = NULL;
	struct catalog *cat = NULL;
	struct sm_map *m = NULL;
	struct buf errs = BUF_INIT;
	char err[256];
	int r = ctl_policy_load(a->policy, a->db, &p, &cat, &errs);

	if (!r && sm_build(p, cat, type, &m))
		r = ctl_usage_error("--subject: the policy has no subject type '%s'", type);
	if (!r && sm_stored_id(m, cat, id, room, err, sizeof(err)))
		r = ctl_usage_error("--subject: %s", err);
	PGconn *db = r ? NULL : srw_connect(a->db, "custosctl keys");
	if (db && PQstatus(db) != CONNECTION_OK)
		r = db_fail(db);
	if (!r && subject_key_ids(db, p, m, *id, ids, nvalues))
		r = EXIT_USAGE;
	PQfinish(db);
	sm_free(m);
	cat_free(cat);
	pol_free(p);
	buf_free(&errs);
	return r;
}

static int cmd_shred(int argc, char **argv)
{
	static const int allowed[] = { KO_DB, KO_KEYSTORE, KO_MASTER, KO_KEK, KO_POLICY, KO_SUBJECT, 0 };
	struct ctl_keys_args a;
	struct keystore *ks = NULL;
	struct buf ids = BUF_INIT;
	size_t nvalues = 0;
	uint64_t destroyed;
	int r = ctl_keys_args(argc, argv, "keys ", allowed, shred_help, &a);

	if (r)
		return r;
	char *colon = a.subject ? strchr(a.subject, ':') : NULL;
	if (!colon || colon == a.subject || !colon[1])
		return ctl_usage_error("keys shred: --subject TYPE:ID is required");
	if (!a.db || !a.policy)
		return ctl_usage_error(
		    "keys shred: --db and --policy are required, to find the subject's values");
	*colon = 0;
	const char *id = colon + 1;
	char room[IDT_ROOM];
	if ((r = find_values(&a, a.subject, &id, room, &ids, &nvalues)) || (r = ctl_keys_open(&a, &ks)))
		goto out;
	if (ks_shred(ks, a.subject, id, (const uint8_t(*)[FC_KEYID_LEN])ids.p, ids.len / FC_KEYID_LEN,
	             &destroyed)) {
		fprintf(stderr, "custosctl: %s\n", ks_error(ks));
		r = EXIT_USAGE;
	} else {
		printf("erased a %s subject: %" PRIu64 " keys destroyed (%zu encrypted values found); run "
		       "`custosctl keys rotate` to make older keystore backups unreadable too\n",
		       a.subject, destroyed, nvalues);
	}
out:
	ks_close(ks);
	buf_free(&ids);
	return r;
}

static const struct ctl_cmd keys_cmds[] = {
	{ "init", cmd_init, "create the keystore and the first key epoch" },
	{ "status", cmd_status, "show the keystore's epoch and key counts" },
	{ "rotate", cmd_rotate, "rewrap live keys under a new epoch; destroy the old" },
	{ "shred", cmd_shred, "erase a subject by destroying its keys" },
};

const struct ctl_group ctl_keys_group = {
	"keys",
	keys_cmds,
	ARRAY_SIZE(keys_cmds),
	"the keystore: key epochs, rotation and crypto-shredding",
};
