/* policy.h - the data map: which tables and columns hold personal data,
 * about which subjects, why, for how long, how they are protected and how
 * they are erased (policies/README.md documents the YAML format). Loaded
 * with libyaml; every error names file:line:col and what would be right. */
#ifndef CUSTOS_POLICY_H
#define CUSTOS_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "util.h"

#define POL_MAX_FILE (1u << 20)

struct pol_pos {
	const char *file;
	unsigned line, col; /* 1-based */
};

struct pol_list {
	char **v;
	size_t n;
};

enum pol_erase { POL_ERASE_DELETE_ROW, POL_ERASE_ANONYMIZE, POL_ERASE_CRYPTO_SHRED, POL_ERASE_RETAIN };
enum pol_others { POL_OTHERS_MASK, POL_OTHERS_CIPHERTEXT, POL_OTHERS_REFUSE };

struct pol_column {
	char *name;
	struct pol_pos pos;
	char *category, *lawful_basis, *retention, *source;
	struct pol_list purposes, recipients, plaintext_roles;
	bool provided_by_subject, encrypt;
	bool about_others; /* data about other people (an agent's name): left out of access reports */
	char *bidx_column, *bidx_normalize; /* blind index: NULL when none */
	unsigned bidx_bytes;
	enum pol_erase erase;
	char *retain_basis, *retain_until; /* POL_ERASE_RETAIN */
	char *retain_after;                /* optional: the date column the period runs from */
	unsigned retain_years;             /* with retain_after: the period (1-100 years) */
	enum pol_others others_see;
};

struct pol_table {
	char *name; /* schema.table */
	struct pol_pos pos;
	struct pol_column *cols;
	size_t ncols;
};

struct pol_subject {
	char *type, *table, *id_column;
	struct pol_pos pos;
};

/* A link from rows of one table to rows of another the database's foreign
 * keys do not tell: from_columns[i] holds to_columns[i]'s value. */
#define POL_MAX_LINK_COLUMNS 32 /* as PostgreSQL's INDEX_MAX_KEYS */
struct pol_relation {
	char *from_table, *to_table;
	char **from_columns, **to_columns;
	size_t ncolumns;
	struct pol_pos pos;
};

/* Who answers subject requests, and what every report says of them
 * (GDPR Art. 13(1)(a)-(b), 15(1)(f)-(h), 15(2); CCPA §1798.115). */
struct pol_controller {
	char *name, *contact, *dpo, *authority;
	char *automated;                /* automated decisions, Art. 22: NULL none */
	struct pol_list transfers;      /* to third countries, each with its Art. 46 safeguard */
	struct pol_list sold_or_shared; /* CCPA: categories sold or shared, and to whom */
	struct pol_pos pos;             /* file NULL: not given */
};

/* Who must approve an erasure before it runs: nobody, any member of the
 * DPO group, or one other than the person who opened the request. */
enum pol_approval { POL_APPROVAL_NONE, POL_APPROVAL_ANY, POL_APPROVAL_SECOND_PERSON };

struct pol_requests {
	enum pol_approval erasure_approval; /* default: second_person */
	struct pol_pos pos;
};

struct policy {
	struct pol_subject *subjects;
	size_t nsubjects;
	struct pol_table *tables;
	size_t ntables;
	struct pol_relation *relations;
	size_t nrelations;
	bool foreign_keys; /* follow the database's foreign keys too */
	struct pol_controller controller;
	struct pol_requests requests;
	char **files; /* the file names positions point into */
	size_t nfiles;
	unsigned errors;
};

struct policy *pol_new(void);
void pol_free(struct policy *p);
/* Loads one policy file into p (several files make one policy). Problems
 * are appended to errs, one "file:line:col: message" line each, and
 * counted in p->errors. Returns 0, or a negative errno when the file
 * cannot be read at all. */
int pol_load(struct policy *p, const char *path, struct buf *errs) WUR;
/* The same for a policy already in memory, named name in messages. */
int pol_parse(struct policy *p, const char *name, const char *data, size_t len, struct buf *errs) WUR;
/* Loads and checks the files as one policy. NULL with the first problem
 * in err ("policy: file:line:col: ..."). */
struct policy *pol_load_all(const char *const *files, size_t nfiles, char *err, size_t errlen);
/* Checks what spans files: subjects' tables and relations name known
 * tables, nothing declared twice. */
void pol_check(struct policy *p, struct buf *errs);

struct catalog;
/* Binds the policy to the live catalog: tables and columns exist, encrypted
 * columns and blind indexes have types that can hold them, relations name
 * real columns, and every table with personal data is reachable from a
 * subject's root table along relations (and foreign keys). */
void pol_bind(struct policy *p, const struct catalog *c, struct buf *errs);

/* Appends "file:line:col: message" for pos to errs and counts it. */
void pol_error(struct policy *p, struct buf *errs, const struct pol_pos *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

const struct pol_table *pol_table(const struct policy *p, const char *name);
const struct pol_column *pol_column(const struct pol_table *t, const char *name);

/* The allowed word closest to s (edit distance at most 2), or NULL. */
const char *pol_suggest(const char *s, const char *const *words, size_t n);

#endif
