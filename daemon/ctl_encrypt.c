/* ctl_encrypt.c - `custosctl encrypt-existing`: encrypts the plaintext
 * already in a database's policy columns, in batches of one transaction
 * each, so an interrupted run loses nothing and a rerun resumes (rows
 * already encrypted are skipped). Each row's values get its subject's key,
 * found along the policy's paths to the subject's root; a row with no
 * subject gets a fresh key of its own. Blind index columns are filled in
 * the same update. Then each encrypted column gets the database's guard
 * (colguard.h), so that plaintext can no longer be stored there. */
#define _GNU_SOURCE
#include <errno.h>
#include <openssl/crypto.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blindidx.h"
#include "catalog.h"
#include "colcrypt.h"
#include "colguard.h"
#include "ctl.h"
#include "ctl_keys.h"
#include "subjectrows.h"
#include "policy.h"
#include "subjectmap.h"

#define DEFAULT_BATCH 500

static const char help[] =
    "Usage: custosctl encrypt-existing --db CONNINFO --policy FILE [--table SCHEMA.TABLE]\n"
    "                                  [--batch N] [--keystore CONNINFO] [--master-key FILE]\n"
    "                                  [--kek FILE] [--no-guard]\n"
    "Encrypt the plaintext already in the database's encrypted columns (those with\n"
    "`encrypt: true` in the policy) and fill their blind indexes. Works in batches of N\n"
    "rows (default 500), one transaction each: interrupt it at any time and run it again\n"
    "to resume; rows already encrypted are skipped. Shows a progress bar on a terminal.\n"
    "Then guards each column: a CHECK constraint custos_encrypted_<column> has\n"
    "PostgreSQL refuse plaintext there, however it is written (SECURITY.md).\n"
    "Exits 0 when every value is encrypted and guarded, 1 when some could not be (a\n"
    "subject that was erased still has plaintext, or plaintext was written meanwhile:\n"
    "run it again), 2 on usage or database errors.\n\n"
    "  --db CONNINFO        the customer database (libpq connection string)\n"
    "  --policy FILE        the policy describing it\n"
    "  --table NAME         only this table\n"
    "  --batch N            rows per transaction\n"
    "  --keystore CONNINFO  the keystore database (default: --db with dbname=custos)\n"
    "  --master-key FILE    the master key (default: $CREDENTIALS_DIRECTORY/" CTL_MASTER_CRED ")\n"
    "  --kek FILE           the key-encryption-key file (default: " CTL_DEFAULT_KEK ")\n"
    "  --no-guard           leave the columns without the guard (plaintext may still be\n"
    "                       written past the proxy)\n";

/* One table's job: its encrypted columns, each with its blind index. */
struct job {
	const struct pol_table *t;
	const struct pol_subject *subject;
	const struct pol_column **cols;
	size_t ncols;
	struct buf from, root; /* the join from the table to its subject's root */
	uint64_t done, refused, page, pages;
};

struct run {
	PGconn *db;
	struct keystore *ks;
	uint64_t batch;
	bool tty, guard;
};

/* Rows where some column holds a value that is not shaped like a
 * ciphertext ("cx1." and base64) or an anonymised value (colguard.h):
 * "(j0.a !~ '...' OR j0.b !~ '...')". encrypt_row then checks each
 * value's framing itself. */
static void plaintext_filter(const struct job *j, struct buf *sql)
{
	buf_adds(sql, "(");
	for (size_t i = 0; i < j->ncols; i++) {
		buf_adds(sql, i ? " OR j0." : "j0.");
		sm_quote(sql, j->cols[i]->name);
		buf_adds(sql, " !~ " CG_GUARDED);
	}
	buf_adds(sql, ")");
}

static PGresult *query(struct run *r, const char *sql, int n, const char *const *v, ExecStatusType want)
{
	PGresult *res = PQexecParams(r->db, sql, n, NULL, v, NULL, NULL, 0);

	if (PQresultStatus(res) == want)
		return res;
	char e[512];
	fprintf(stderr, "custosctl: --db: %s\n", srw_db_error(res, e, sizeof(e)));
	PQclear(res);
	return NULL;
}

static void progress(const struct run *r, const struct job *j, bool last)
{
	if (!r->tty) {
		if (last)
			printf("%s: %" PRIu64 " rows encrypted%s\n", j->t->name, j->done,
			       j->refused ? " (some values refused)" : "");
		return;
	}
	uint64_t page = j->page < j->pages ? j->page : j->pages;
	unsigned width = 30, pct = last || !j->pages ? 100 : (unsigned)(100 * page / j->pages);
	unsigned fill = pct * width / 100;
	fprintf(stderr, "\r%-28s [%.*s%*s] %3u%%  %" PRIu64 " rows encrypted", j->t->name, (int)fill,
	        "##############################", (int)(width - fill), "", pct, j->done);
	if (last)
		fputc('\n', stderr);
	fflush(stderr);
}

/* The key for one row: its subject's, or a fresh one. */
static int row_key(struct run *r, const struct job *j, PGresult *res, int row, struct kc_key *k)
{
	if (PQgetisnull(res, row, 1))
		return ks_fresh_key(r->ks, k);
	return ks_subject_key(r->ks, j->subject->type, PQgetvalue(res, row, 1), k);
}

/* Array elements are built as 'N' (NULL) or 'V' and the value, then
 * written quoted, with " and \ escaped: a value can hold any character,
 * and none may shift the elements after it. */
static void put_value(struct buf *b, const char *v)
{
	buf_reset(b);
	buf_addc(b, v ? 'V' : 'N');
	if (v)
		buf_adds(b, v);
}

static void element(struct buf *arr, const char *marked)
{
	buf_adds(arr, arr->len > 1 ? "," : "");
	if (marked[0] == 'N') {
		buf_adds(arr, "NULL");
		return;
	}
	buf_addc(arr, '"');
	for (const char *p = marked + 1; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_addc(arr, '\\');
		buf_addc(arr, *p);
	}
	buf_addc(arr, '"');
}

/* Whether a value is already a Custos ciphertext (its framing parses). */
static bool encrypted(const char *v, size_t n)
{
	uint8_t id[FC_KEYID_LEN];
	return fc_key_id(v, n, id) == 0;
}

/* Encrypts the values of one row into vals (column i's in vals[i], then
 * the blind indexes in column order; NULL stays NULL). 0, -ENOKEY (the
 * subject was erased), -errno. */
static int encrypt_row(struct run *r, struct job *j, PGresult *res, int row, struct buf *vals)
{
	struct kc_key k;
	uint8_t bkey[32];
	size_t nb = j->ncols;
	int err = row_key(r, j, res, row, &k);

	for (size_t i = 0; !err && i < j->ncols; i++) {
		const struct pol_column *c = j->cols[i];
		int f = 2 + (int)i, bf = 2 + (int)nb;
		const char *v = PQgetisnull(res, row, f) ? NULL : PQgetvalue(res, row, f);
		size_t n = v ? (size_t)PQgetlength(res, row, f) : 0;
		bool plain = v && !encrypted(v, n);
		put_value(&vals[i], plain ? "" : v); /* 'V', and the ciphertext appended */
		if (plain)
			err = cc_encrypt(j->t->name, c->name, &k, v, n, &vals[i]);
		if (err || !c->bidx_column)
			continue;
		const char *old = PQgetisnull(res, row, bf) ? NULL : PQgetvalue(res, row, bf);
		put_value(&vals[nb], plain ? "" : old); /* a new index for a new ciphertext */
		if (plain) {
			ks_bidx_key(r->ks, j->t->name, c->name, bkey);
			err = bidx_compute(bkey, bidx_norm_from_name(c->bidx_normalize), c->bidx_bytes, v, n,
			                   &vals[nb]);
		}
		nb++;
	}
	for (size_t i = 0; !err && i < nb; i++)
		buf_addc(&vals[i], 0);
	for (size_t i = 0; !err && i < nb; i++)
		if (vals[i].failed)
			err = -ENOMEM;
	OPENSSL_cleanse(&k, sizeof(k));
	OPENSSL_cleanse(bkey, sizeof(bkey));
	return err;
}

static size_t nbidx(const struct job *j)
{
	size_t n = 0;

	for (size_t i = 0; i < j->ncols; i++)
		n += j->cols[i]->bidx_column != NULL;
	return n;
}

/* SELECT <row>, <root id>, <columns>, <blind indexes> FROM ... WHERE
 * the row is in pages [$1, $2) and holds plaintext; <row> is its table and
 * place there (the rows of tables inheriting the policy table are read
 * too, and a ctid is a place in its own table only). */
static void select_sql(const struct job *j, struct buf *sql)
{
	buf_adds(sql, "SELECT " SRW_ROW_AT ", ");
	buf_add(sql, j->root.p, j->root.len);
	for (size_t i = 0; i < j->ncols; i++) {
		buf_adds(sql, ", j0.");
		sm_quote(sql, j->cols[i]->name);
	}
	for (size_t i = 0; i < j->ncols; i++)
		if (j->cols[i]->bidx_column) {
			buf_adds(sql, ", j0.");
			sm_quote(sql, j->cols[i]->bidx_column);
		}
	buf_add(sql, j->from.p, j->from.len);
	buf_adds(sql, " WHERE j0.ctid >= format('(%s,0)', $1::bigint)::tid "
	              "AND j0.ctid < format('(%s,0)', $2::bigint)::tid AND ");
	plaintext_filter(j, sql);
	buf_adds(sql, " FOR UPDATE OF j0");
}

/* UPDATE t AS x SET a = u.v0, ... FROM unnest($1::text[], $2::text[], ...)
 * AS u(at, v0, ...) WHERE x is at u.at */
static void update_sql(const struct job *j, struct buf *sql)
{
	size_t nb = nbidx(j), n = j->ncols + nb, b = 0;

	buf_adds(sql, "UPDATE ");
	sm_quote(sql, j->t->name);
	buf_adds(sql, " AS x SET ");
	for (size_t i = 0; i < j->ncols; i++) {
		sm_quote(sql, j->cols[i]->name);
		buf_printf(sql, " = u.v%zu, ", i);
		if (j->cols[i]->bidx_column) {
			sm_quote(sql, j->cols[i]->bidx_column);
			buf_printf(sql, " = u.v%zu, ", j->ncols + b++);
		}
	}
	sql->len -= 2;
	buf_adds(sql, " FROM unnest($1::text[]");
	for (size_t i = 0; i < n; i++)
		buf_printf(sql, ", $%zu::text[]", i + 2);
	buf_adds(sql, ") AS u(at");
	for (size_t i = 0; i < n; i++)
		buf_printf(sql, ", v%zu", i);
	buf_adds(sql, ") WHERE " SRW_IS_AT("x", "u.at"));
}

struct batch {
	struct buf sel, upd;
	struct buf *arr, *vals; /* n + 1 arrays (tids first), n row values */
	size_t n;
};

/* Encrypts the rows with plaintext in pages [from, to), in one transaction. */
static int run_batch(struct run *r, struct job *j, struct batch *b, uint64_t from, uint64_t to)
{
	char f[24], t[24];
	const char *v[2] = { f, t };
	int err = 0;

	snprintf(f, sizeof(f), "%" PRIu64, from);
	snprintf(t, sizeof(t), "%" PRIu64, to);
	PGresult *res = query(r, "BEGIN", 0, NULL, PGRES_COMMAND_OK);
	PQclear(res);
	if (!res || !(res = query(r, b->sel.p, 2, v, PGRES_TUPLES_OK)))
		return -EIO;
	for (size_t i = 0; i <= b->n; i++) {
		buf_reset(&b->arr[i]);
		buf_adds(&b->arr[i], "{");
	}
	int rows = PQntuples(res), updated = 0;
	for (int row = 0; row < rows && !err; row++) {
		err = encrypt_row(r, j, res, row, b->vals);
		if (err == -ENOKEY) {
			j->refused++;
			err = 0;
			continue;
		}
		char tid[48];
		snprintf(tid, sizeof(tid), "V%s", PQgetvalue(res, row, 0));
		element(&b->arr[0], tid);
		for (size_t i = 0; !err && i < b->n; i++)
			element(&b->arr[i + 1], b->vals[i].p);
		updated++;
	}
	if (err)
		fprintf(stderr, "custosctl: %s: %s\n", j->t->name,
		        err == -EIO ? ks_error(r->ks) : cc_strerror(err));
	PQclear(res);
	const char **params = calloc(b->n + 1, sizeof(*params));
	for (size_t i = 0; !err && params && i <= b->n; i++) {
		buf_adds(&b->arr[i], "}");
		buf_addc(&b->arr[i], 0);
		params[i] = b->arr[i].p;
		err = b->arr[i].failed ? -ENOMEM : 0;
	}
	if (!params)
		err = -ENOMEM;
	if (!err && updated && !(res = query(r, b->upd.p, (int)b->n + 1, params, PGRES_COMMAND_OK)))
		err = -EIO;
	if (!err && updated)
		PQclear(res);
	free(params);
	res = query(r, err ? "ROLLBACK" : "COMMIT", 0, NULL, PGRES_COMMAND_OK);
	PQclear(res);
	j->done += (uint64_t)updated;
	return err ? err : res ? 0 : -EIO;
}

/* Pages in the table, and pages per batch for about r->batch rows. */
static int table_size(struct run *r, const struct job *j, uint64_t *pages, uint64_t *step)
{
	static const char sql[] = /* of the largest of the table and those inheriting it */
	    "WITH RECURSIVE f(oid) AS (SELECT $1::regclass::oid UNION "
	    "SELECT i.inhrelid FROM pg_inherits i JOIN f ON i.inhparent = f.oid) "
	    "SELECT max(pg_relation_size(c.oid)) / current_setting('block_size')::bigint, "
	    "greatest(sum(c.reltuples), 0)::bigint FROM pg_class c JOIN f ON c.oid = f.oid";
	const char *v[1] = { j->t->name };
	uint64_t tuples = 0;
	PGresult *res = query(r, sql, 1, v, PGRES_TUPLES_OK);
	if (!res)
		return -EIO;
	bool ok = PQntuples(res) == 1 && parse_u64(PQgetvalue(res, 0, 0), pages) &&
	          parse_u64(PQgetvalue(res, 0, 1), &tuples);
	PQclear(res);
	if (!ok)
		return -EIO;
	uint64_t per_page = *pages && tuples ? (tuples + *pages - 1) / *pages : 50;
	*step = r->batch / per_page ? r->batch / per_page : 1;
	return 0;
}

static int run_job(struct run *r, struct job *j)
{
	struct batch b = { BUF_INIT, BUF_INIT, NULL, NULL, j->ncols + nbidx(j) };
	uint64_t pages = 0, step = 1;
	int err = table_size(r, j, &pages, &step);

	b.arr = calloc(b.n + 1, sizeof(*b.arr));
	b.vals = calloc(b.n, sizeof(*b.vals));
	if (!b.arr || !b.vals)
		err = -ENOMEM;
	select_sql(j, &b.sel);
	update_sql(j, &b.upd);
	buf_addc(&b.sel, 0);
	buf_addc(&b.upd, 0);
	if (b.sel.failed || b.upd.failed)
		err = -ENOMEM;
	/* one page more than the size read: the table may grow meanwhile */
	j->pages = pages + 1;
	for (j->page = 0; !err && j->page < j->pages; j->page += step) {
		err = run_batch(r, j, &b, j->page, j->page + step);
		progress(r, j, false);
	}
	if (!err)
		progress(r, j, true);
	for (size_t i = 0; b.arr && i <= b.n; i++)
		buf_free(&b.arr[i]);
	for (size_t i = 0; b.vals && i < b.n; i++)
		buf_free(&b.vals[i]);
	free(b.arr);
	free(b.vals);
	buf_free(&b.sel);
	buf_free(&b.upd);
	return err;
}

/* The job for table t: its encrypted columns and the subject it leads to. */
static int make_job(const struct policy *p, const struct catalog *cat, struct sm_map *const *maps,
                    const struct pol_table *t, struct job *j)
{
	const struct cat_table *ct = cat_table(cat, t->name);

	*j = (struct job){ .t = t };
	j->cols = calloc(t->ncols, sizeof(*j->cols));
	if (!j->cols)
		return -ENOMEM;
	for (size_t i = 0; i < t->ncols; i++) {
		const struct cat_column *cc = ct ? cat_column(ct, t->cols[i].name) : NULL;
		if (!t->cols[i].encrypt)
			continue;
		if (cc && strcmp(cc->type, "text") && strncmp(cc->type, "character varying", 17)) {
			fprintf(
			    stderr,
			    "custosctl: %s.%s is %s: encrypt-existing handles text and character varying\n",
			    t->name, t->cols[i].name, cc->type);
			return -EINVAL;
		}
		j->cols[j->ncols++] = &t->cols[i];
	}
	for (size_t s = 0; j->ncols && s < p->nsubjects && !j->subject; s++) {
		buf_reset(&j->from);
		buf_reset(&j->root);
		if (!sm_from(maps[s], t->name, &j->from, &j->root))
			j->subject = &p->subjects[s];
	}
	if (j->ncols && !j->subject) {
		fprintf(stderr, "custosctl: %s: no subject's root leads to this table\n", t->name);
		return -EINVAL;
	}
	return 0;
}

/* Guards the job's columns: for rows written from now on, and for every
 * row when all hold ciphertext. 0, or EXIT_BAD when a guard is not whole
 * (after a lock not had, the table's other columns are not tried). */
static int guard_job(struct run *r, const struct job *j)
{
	static const char *const said[] = {
		[CAT_GUARD_NEW_ROWS] = "rows written from now on", [CAT_GUARD_ALL_ROWS] = "every row"
	};
	int code = 0, rc = 0;

	for (size_t i = 0; rc != -EAGAIN && i < j->ncols; i++) {
		enum cat_guard st = CAT_UNGUARDED;
		char err[512];
		if ((rc = cg_guard(r->db, j->t->name, j->cols[i]->name, &st, err, sizeof(err))))
			fprintf(stderr, "custosctl: %s.%s: not guarded%s: %s\n", j->t->name, j->cols[i]->name,
			        st == CAT_GUARD_NEW_ROWS ? " for the rows already there" : "", err);
		if (st != CAT_UNGUARDED)
			printf("%s.%s: guarded (%s)\n", j->t->name, j->cols[i]->name, said[st]);
		if (st != CAT_GUARD_ALL_ROWS)
			code = EXIT_BAD;
	}
	return code;
}

static void free_job(struct job *j)
{
	free(j->cols);
	buf_free(&j->from);
	buf_free(&j->root);
}

static int encrypt_tables(struct run *r, const struct policy *p, const struct catalog *cat, const char *only)
{
	struct sm_map **maps = calloc(p->nsubjects + 1, sizeof(*maps));
	size_t matched = 0;
	uint64_t refused = 0;
	int err = maps ? 0 : -ENOMEM, guarded = 0;

	for (size_t s = 0; !err && s < p->nsubjects; s++)
		err = sm_build(p, cat, p->subjects[s].type, &maps[s]);
	for (size_t i = 0; !err && i < p->ntables; i++) {
		struct job j;
		if (only && strcmp(only, p->tables[i].name))
			continue;
		matched++;
		err = make_job(p, cat, maps, &p->tables[i], &j);
		if (!err && j.ncols)
			err = run_job(r, &j);
		if (!err && j.ncols && r->guard && guard_job(r, &j))
			guarded = EXIT_BAD;
		refused += j.refused;
		free_job(&j);
	}
	for (size_t s = 0; maps && s < p->nsubjects; s++)
		sm_free(maps[s]);
	free(maps);
	if (!err && only && !matched)
		return ctl_usage_error("encrypt-existing: --table %s is not in the policy", only);
	if (err)
		return EXIT_USAGE;
	if (refused) {
		fprintf(stderr, "custosctl: %" PRIu64 " rows left unencrypted: their subjects were erased\n",
		        refused);
		return EXIT_BAD;
	}
	return guarded;
}

static int cmd_encrypt(int argc, char **argv)
{
	static const int allowed[] = { KO_DB,    KO_KEYSTORE, KO_MASTER,   KO_KEK, KO_POLICY,
		                       KO_TABLE, KO_BATCH,    KO_NO_GUARD, 0 };
	struct ctl_keys_args a;
	struct policy *p = NULL;
	struct catalog *cat = NULL;
	struct buf errs = BUF_INIT;
	struct run r = { .tty = isatty(STDERR_FILENO) };
	int code = ctl_keys_args(argc, argv, "", allowed, help, &a);

	if (code)
		return code;
	if (!a.db || !a.policy)
		return ctl_usage_error("encrypt-existing: --db and --policy are required");
	r.batch = a.batch ? a.batch : DEFAULT_BATCH;
	r.guard = !a.no_guard;
	if ((code = ctl_policy_load(a.policy, a.db, &p, &cat, &errs)) || (code = ctl_keys_open(&a, &r.ks)))
		goto out;
	r.db = srw_connect(a.db, "custosctl encrypt-existing");
	if (PQstatus(r.db) != CONNECTION_OK) {
		fprintf(stderr, "custosctl: --db: %s", PQerrorMessage(r.db));
		code = EXIT_USAGE;
		goto out;
	}
	code = encrypt_tables(&r, p, cat, a.table);
out:
	PQfinish(r.db);
	ks_close(r.ks);
	cat_free(cat);
	pol_free(p);
	buf_free(&errs);
	return code;
}

static const struct ctl_cmd encrypt_cmds[] = {
	{ "encrypt-existing", cmd_encrypt, "encrypt the plaintext already in policy columns" },
};

const struct ctl_group ctl_encrypt_group = {
	"encrypt-existing",
	encrypt_cmds,
	0, /* a command on its own: `custosctl encrypt-existing ...` */
	"encrypt the plaintext already in policy columns",
};
