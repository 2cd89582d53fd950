/* proxy_encrypt.h - what proxy_encrypt.c (the plan, made when a statement
 * is analysed) and proxy_rewrite.c (each execution) share: which values a
 * statement writes into encrypted columns, which it compares with them
 * through their blind index, and under whose key. */
#ifndef CUSTOS_PROXY_ENCRYPT_H
#define CUSTOS_PROXY_ENCRYPT_H

#include "keyclient.h"
#include "proxy_conn.h"

/* A value written into an encrypted column. */
struct pxe_value {
	const struct pp_column *col;
	int param;               /* $n; 0: a literal */
	int literal;             /* its index among the text's literals; -1 */
	unsigned row;            /* of VALUES; 0 for UPDATE */
	struct sqi_pos value_at; /* of the literal or the $n in the text */
	struct sqi_pos col_at;   /* of the column in an INSERT's column list */
	int bidx_param;          /* extended: the parameter the proxy adds for its blind index; 0 */
	bool null;               /* NULL: nothing to encrypt, and NULL for its blind index */
};

/* `col = v` on an encrypted column: v becomes its blind index, and the
 * comparison ANY(ARRAY(SELECT col FROM table WHERE index = v)). */
struct pxe_lookup {
	const struct pp_column *col;
	int param;   /* $n; 0: a literal */
	int literal; /* -1 */
	struct sqi_pos at;
};

/* COPY FROM STDIN in the text format, CSV or binary: its rows, field by field. */
struct pxe_copy {
	unsigned nin, nout;           /* fields from the client; to PostgreSQL (blind indexes added) */
	const struct pp_column **enc; /* by client field: the encrypted column it fills; NULL */
	int *idx_of;                  /* by field to PostgreSQL: the client field it is the index of; -1 */
	int subject;                  /* the client field holding the subject's id; -1 */
	uint32_t subject_type;        /* binary: that field's type */
	struct ct_format fmt;         /* FORMAT and the options of its rows */
	bool header;                  /* HEADER */
	bool binary;                  /* FORMAT binary */
	char *text;                   /* the statement PostgreSQL gets instead of the client's */
};

struct pxe_plan {
	bool insert;
	const char *subject; /* the target's subject type; NULL: none */
	bool own_keys;       /* rows a trigger may give another subject (resubjects): a fresh key each */
	struct pxe_value *v;
	size_t n;
	unsigned nrows;
	int *sid_param;    /* by row: the parameter holding the subject's id; 0 */
	uint32_t sid_type; /* the subject's id column's type (what such a parameter is, uncast) */
	bool *sid_cast;    /* by row: the parameter is cast (its type is the cast's) */
	char **sid_value;  /* by row: the id, known from the text; NULL */
	struct pxe_lookup *lk;
	size_t nlk;
	unsigned nextra; /* extended: parameters the proxy adds (blind index values) */
	struct pxe_copy *copy;
};

/* Appends the ciphertext of value v[0..n) for column col under key k: its
 * text, or for a bytea column its bytes (binary: v and out are a binary
 * parameter's) or their text (hex). -EDOM for a bytea text that is none;
 * -EILSEQ for a text that is not UTF-8 (or holds a NUL) in a UTF8 session. */
int pxe_seal(const struct pconn *c, const struct pp_column *col, const struct kc_key *k, const char *v,
             size_t n, bool binary, struct buf *out);
/* Appends the blind index (hex) of value v[0..len) for column col. */
int pxe_blind_index(struct pconn *c, const struct pp_column *col, const char *v, size_t len, struct buf *out);

/* A refusal: why (n bytes) says it; returns -EPERM. */
__attribute__((format(printf, 3, 4))) int pxe_refuse(char *why, size_t n, const char *fmt, ...);
/* Whether the policy encrypts a column of t. */
bool pxe_has_encrypted(const struct pp_table *t);

/* proxy_moves.c: a write that would leave a subject's encrypted values in
 * rows of another subject (0, or -EPERM with why): of t's subject column,
 * or an upsert into t that may update another subject's row; */
int pxm_table(const struct ppol *pp, const struct pp_table *t, const struct sqi_stmt *s, char *why, size_t n);
/* ... a write of any table that foreign keys carry into such a column. */
int pxm_cascades(const struct ppol *pp, const struct sqi_stmt *s, char *why, size_t n);
/* Whether an UPDATE of t's column col (NULL: of any) may change t's
 * subject column, t having encrypted columns: it is that column, or one
 * the subject column is generated from. */
bool pxm_sets_subject(const struct ppol *pp, const struct pp_table *t, const char *col);
/* The policy table whose subject column a foreign key carries code's write
 * of st into (with update, an UPDATE of the referenced column, one it is
 * generated from or any through a view, of those cols names; with del, a
 * DELETE), or NULL. */
struct sqb_cols;
const struct pp_table *pxm_write_moves(const struct ppol *pp, const struct sqi_table *st,
                                       const struct sqb_cols *cols, bool update, bool del);

#endif
