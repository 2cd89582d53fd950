/* proxy_conn.h - one client connection through the proxy, as
 * proxy_startup.c (its start), proxy_conn.c (its life) and proxy_query.c
 * (its statements) share it. */
#ifndef CUSTOS_PROXY_CONN_H
#define CUSTOS_PROXY_CONN_H

#include "copytext.h"
#include "idtext.h"
#include "pgencoding.h"
#include "proxy.h"

enum pc_phase { PC_STARTUP, PC_UPSTREAM, PC_AUTH, PC_READY, PC_CLOSING };

/* A value the statement ties a subject's id column to (a predicate or an
 * inserted value): a constant, or parameter $param. */
struct spred {
	char *type; /* the subject type */
	char *value;
	int param;
	uint32_t col_type; /* the id column's type (what such a parameter is, uncast; else 0) */
	uint32_t id_type;  /* the id column's type */
	bool cast;
};

/* A statement's analysis and what the policy says about it; shared by a
 * prepared statement, its portals and the responses expected for them. */
struct pstmt {
	unsigned refs;
	struct ppol *pp; /* the policy it was analysed under (a reference: its plan points into it) */
	enum sqi_kind kind;
	bool sensitive; /* touches a policy table */
	bool record;    /* sensitive, or audit_statements = all */
	bool ddl;       /* may change the catalog */
	bool writes;    /* sensitive, and may change personal data: an attempt record goes first */
	char fp[17];
	char *text;   /* normalised; NULL unless recorded */
	char *table;  /* the first policy table, or NULL */
	char *detail; /* {"kind":...,"tables":[...]} */
	struct spred *sp;
	size_t nsp;
	struct pxe_plan *enc; /* the values it writes into encrypted columns, or NULL */
	uint32_t *ptypes;     /* its parameters' types: Parse's, then ParameterDescription's (0: not told) */
	uint32_t *itypes;     /* ... and as their use implies (idtext.h) */
	uint16_t nptypes;     /* of each */
	bool copy_out;        /* COPY table TO, in the text format or CSV (with HEADER or not), or binary */
	bool copy_header, copy_binary;
	struct ct_format copy_fmt;
	char **copy_cols; /* the columns it names (none: all) */
	size_t ncopy_cols;
	bool copy_quote_all; /* FORCE_QUOTE *, or of these columns */
	char **copy_quote;
	size_t ncopy_quote;
	unsigned code_ddl;     /* SQI_CODE_*: defines code the database runs (a routine, a trigger) */
	struct sqi_name *made; /* the relations it makes over personal data (proxy_ddl.c) */
	size_t nmade;
	struct sqi_name *names; /* a prepared statement: the relations it uses (proxy_ddl.c) */
	size_t nnames;
	char refusal[256];        /* why it may not run, or "" */
	const char *refusal_code; /* its SQLSTATE (PX_ERR_*) */
};

/* What an encrypted column's values become on their way to this client. */
enum pxc_out { PXC_PASS, PXC_DECRYPT, PXC_MASK, PXC_REFUSE };

/* How a result's columns map to the policy (from RowDescription). */
struct colmap {
	unsigned refs;
	struct ppol *pp; /* a reference: the pointers below live in it */
	uint16_t n;
	bool personal, subject; /* some column is personal data / a subject's id */
	const char *table;      /* a policy table a column comes from, a view's too (for the record) */
	bool rewrite, refuse;   /* some value is decrypted or masked / withheld with an error */
	const struct pp_column **f;
	uint8_t *out;         /* enum pxc_out, by column */
	uint8_t *form;        /* by column: 0, or a bytea's PXC_BYTEA_TEXT or PXC_BYTEA_BINARY */
	uint32_t *binary;     /* by column: the type of values in the binary format, 0 for text */
	uint8_t *quote;       /* by column: COPY TO's FORCE_QUOTE */
	struct ct_format fmt; /* COPY TO: its rows' format, and room to split one */
	struct ct_field *fields;
};
enum { PXC_BYTEA_TEXT = 1, PXC_BYTEA_BINARY };

struct portal {
	unsigned refs;
	struct pstmt *st;
	struct colmap *map;
	char **ids;       /* the bound values of st->sp's parameters (NULL: none or NULL) */
	bool attempted;   /* executed once: a write ran then, later Executes fetch its rows */
	uint64_t attempt; /* that write's attempt record, once durable (0: not yet, or none) */
};

enum xkind {
	X_PARSE,
	X_BIND,
	X_DESCRIBE,
	X_EXECUTE,
	X_CLOSE,
	X_SYNC,
	X_QSTMT,
	X_QEND,
	X_REFUSE_Q, /* a refusal: the error the server gives the failing statement sent in its place */
	X_REFUSE_X,
	X_ABORT /* the failing statement that aborts a transaction a withheld result was part of */
};

/* A response the backend owes, in order. */
struct xentry {
	enum xkind kind;
	struct pstmt *st;
	struct portal *portal;
	const char *sqlstate; /* refusals */
	char *msg;
	char what, *name; /* X_PARSE, X_BIND, X_CLOSE: the name it defines or closes ('S'/'P') */
	bool own;         /* X_DESCRIBE the proxy sent itself: its answer is not the client's */
	uint64_t serial;  /* pq_push numbers the entries of a connection */
	uint64_t attempt; /* the seq of its statement's attempt record (0: none) */
};

/* Output held back until the records before it are durable. */
enum hold_state { H_OPEN, H_WAITING, H_DONE, H_FREE };
struct hold {
	struct hold *next;
	struct evbuffer *b;
	enum hold_state state;
};

struct ticket { /* a record in flight, answered in order */
	struct ticket *next;
	struct hold *hold; /* released when durable; NULL: none */
	bool partial;      /* a part of a result whose rows go on */
	bool attempt;      /* a write's attempt: what goes to the server from mark on waits for it */
	uint64_t mark;
	uint64_t serial; /* the attempt's entry (its access record names the attempt) */
};

struct named {
	char *name;
	void *obj;
};

/* The result of the statement at the head of the queue. */
struct result {
	bool active;
	bool header; /* COPY TO ... HEADER: the next row is the columns' names (binary: the file's header) */
	bool binary; /* COPY TO in the binary format */
	struct colmap *map;
	struct hold *hold;
	uint64_t rows, unattributed, subjects_over;
	uint64_t recorded; /* rows in the parts recorded so far */
	unsigned part;
	struct alog_subject *subjects; /* ids allocated; types from the policy */
	size_t nsubjects;
	const char *error; /* SQLSTATE of an ErrorResponse */
	char errcode[6];
	const char *refusal; /* the rows are withheld: an ERROR with this message ends the result */
	const char *refusal_code;
};

struct pconn {
	struct pconn *prev, *next;
	struct proxy *px;
	struct bufferevent *cli, *srv;
	struct event *cli_rd, *srv_rd; /* plain sides once the session runs: proxy_conn.c reads them */
	enum pc_phase phase;
	bool cli_tls, srv_tls, srv_paused, cli_paused, dying;
	bool srv_keys_wait, cli_keys_wait; /* a message waits for keys to decrypt or encrypt with */
	bool query_waits; /* the client's input starts with a Query that waited for keys, not yet taken */
	uint64_t catalog_after; /* its DDL committed: its next statements wait for this catalog read */
	char user[64], db[64], app[64], addr[64], session[24], tls_id[256];
	uint32_t pid, key, real_pid, real_key;
	struct buf startup;
	char txstatus;
	/* the query protocol */
	struct xentry *q;
	size_t qhead, qn, qcap;
	uint64_t serials;
	bool skip;                     /* extended protocol: a refusal drops messages until Sync */
	bool ran;                      /* a Bind or Execute since the last Sync: it may have run code */
	bool drop;                     /* a withheld result: the server's answers up to ReadyForQuery go */
	bool copy_in;                  /* the server reads COPY data: Sync means nothing to it */
	bool copy_done_early;          /* the client ended its COPY before CopyInResponse */
	bool scs_off, unsafe_encoding; /* the text may not read as libpg_query reads it */
	struct pg_encoding enc;        /* client_encoding: what the values it encrypts are in */
	bool named_sensitive;          /* a cursor or SQL prepared statement over personal data exists */
	unsigned code_reload; /* SQI_CODE_* of code DDL that ran: the catalog is read again once it commits */
	bool ddl_done;        /* DDL ran in the transaction: the catalog is read again after it */
	struct sqi_name
	    *made; /* what DDL of the transaction made over personal data: refused until it commits */
	size_t nmade;
	struct named *stmts, *portals;
	size_t nstmts, nportals;
	struct result res;
	struct pxi *cin; /* COPY FROM into encrypted columns: its rows on their way in */
	struct hold *hq, **hq_tail;
	size_t held;
	struct ticket *tk, **tk_tail;
	/* what goes to the server while writes wait for their attempt records */
	struct evbuffer *gated;
	unsigned gates;     /* attempt records not yet durable */
	bool cancel_due;    /* a cancel came while the writes waited: it follows the first */
	unsigned cancels;   /* cancels of its backend on their way: its client waits */
	uint64_t gated_out; /* bytes released from gated so far: gated's start in the stream */
};

/* proxy_conn.c */
struct evbuffer *pc_client_out(struct pconn *c); /* where output to the client goes now */
void pc_release(struct pconn *c);                /* sends held output that may go */
void pc_keys_ready(struct pconn *c);     /* what waited for keys is taken again (px_keys_ready: all) */
bool pc_cancel_waiting(struct pconn *c); /* a Query not yet at PostgreSQL fails as cancelled: true */
/* What the client sent waits in the proxy (for its records, its keys or,
 * with nothing of the session's running, the catalog): a cancel goes to
 * PostgreSQL after it (cancel_due). */
bool pc_cancel_follows(struct pconn *c);
void pc_cancel_ended(struct pconn *c); /* one of c's cancels is over: its client may be read again */
int pc_pass(struct pconn *c, const struct pgp_msg *m, struct evbuffer *in); /* forwards m now, held or not */
int pc_write(struct pconn *c, const void *data, size_t n);                  /* to the client, held or not */
/* Where output to the server goes now: behind the writes waiting for
 * their attempt records, or out. */
struct evbuffer *pc_server_out(struct pconn *c);
int pc_to_server(struct pconn *c, const void *data, size_t n); /* 0 or -ENOMEM */
/* An attempt record is on its way: what goes to the server from now on
 * waits for it. 0 or -ENOMEM; *ret_mark: where in the stream it starts. */
int pc_gate_server(struct pconn *c, uint64_t *ret_mark);
/* The first waiting attempt is durable: what precedes upto (the next
 * waiting attempt's mark; ignored when none waits) goes. */
void pc_open_server(struct pconn *c, uint64_t upto);
void pc_fatal(struct pconn *c, const char *sqlstate, const char *msg);
void pc_error(struct pconn *c, const char *sqlstate, const char *msg); /* ERROR, in order */
void pc_kill(struct pconn *c);                                         /* at once, nothing more sent */
void pc_send_now(struct bufferevent *bev, bool tls); /* what waits for a plain socket, at once */
void pc_begin_session(struct pconn *c);              /* to PostgreSQL: authentication begins */
void pc_watch_client(struct pconn *c, bufferevent_data_cb on_read);
void pc_read_directly(struct pconn *c); /* both sides read without libevent's copies */

/* proxy_startup.c */
int pc_auth_backend(struct pconn *c, const struct pgp_msg *m); /* the server's messages until ReadyForQuery */

/* proxy_cancel.c */
/* A CancelRequest for c's backend, now; c's client is not read until it
 * has reached PostgreSQL (or failed to), when pc_cancel_ended runs. */
void pc_send_cancel(struct pconn *c);
void pc_cancels_forget(struct pconn *c); /* c ends: its cancels go on without it */

/* proxy_query.c and proxy_analyse.c: what proxy_result.c shares of the
 * statements and the queue */
struct pstmt *pq_st_ref(struct pstmt *st);
void pq_st_unref(struct pstmt *st);
struct portal *pq_portal_ref(struct portal *p);
void pq_portal_unref(struct portal *p);
void pq_map_unref(struct colmap *m);
struct xentry *pq_head(struct pconn *c);
int pq_push(struct pconn *c, struct xentry e); /* what the backend owes next */
void pq_pop(struct pconn *c);
void pq_res_reset(struct pconn *c);
int pq_confirm(struct pconn *c, const struct xentry *e); /* a definition the server confirmed */
/* A literal as a subject's id in a column of this type, as PostgreSQL
 * stores it (idtext.h; bare: not cast), into *ret: 0; -ENOTSUP when
 * Custos cannot tell what PostgreSQL makes of it; -ENOMEM. */
int pq_literal_id(const struct sqi_literal *l, uint32_t type, bool bare, char **ret);
/* What statement s of sql touches and what it earns (proxy_analyse.c):
 * a new pstmt (its refusal set when it is to be refused), or NULL when
 * memory ran out or its subjects cannot be read from its text.
 * parse_nparams: the Parse's parameter count, -1 for a simple Query. */
struct pstmt *pq_analysed(struct pconn *c, const struct sqi_stmt *s, const char *sql,
                          const struct sqi_literal *lits, size_t nlits, int parse_nparams);
/* Parameter i bound in b as a subject's id in a column of type col, as
 * PostgreSQL stores it (idtext.h; one in the binary format read through
 * b->types, or b->inferred; cast: the statement casts it), or NULL: NULL,
 * or -ENOTSUP in *err when Custos cannot tell what PostgreSQL makes of it
 * (-ENOMEM). */
char *pq_param_text(const struct pgp_bind *b, unsigned i, uint32_t col, bool cast, int *err);
/* ParameterDescription of st: the types its parameters have. */
int pq_param_types(struct pstmt *st, const struct pgp_msg *m);
void pq_res_subject(struct pconn *c, const char *type, const char *id); /* of the head's result */
int pq_send_failing(struct pconn *c, bool simple); /* to the server: a statement that fails */

/* proxy_ddl.c: what a session's DDL changes */
/* Of a statement being analysed (st->sensitive known): st->ddl and
 * code_ddl, the refusals of what depends on DDL not yet committed, and the
 * relations it makes over personal data (into st->made and the session's).
 * 0 or -ENOMEM. */
int pd_analysed(struct pconn *c, const struct sqi_stmt *s, struct pstmt *st) WUR;
/* st (NULL: none) runs now. 0, -ENOMEM, -E2BIG (too many made in the transaction). */
int pd_made(struct pconn *c, const struct pstmt *st) WUR;
/* Whether DDL of the session's open transaction made or named anew the
 * relation a statement names (pd_analysed refuses the statement then). */
bool pd_is_made(const struct pconn *c, const struct sqi_table *t);
/* A prepared statement keeps the names of the relations it uses: 0 or -ENOMEM. */
int pd_keep_names(struct pstmt *st, const struct sqi_stmt *s) WUR;
/* Why a prepared statement may not run now (NULL: it may): DDL of this
 * transaction made a relation it names, or a catalog read since it was
 * prepared says a name of it stands for something else. */
const char *pd_stale(const struct pconn *c, const struct pstmt *st);
void pd_forget_made(struct pconn *c, size_t n); /* keeps the first n: the rest did not run */
/* At ReadyForQuery: once a transaction with DDL ends, the catalog is read
 * again (now, for routine or trigger DDL: statements wait for it), and
 * what it made is known from then on. */
void pd_tx_ended(struct pconn *c);
void pd_free(struct pconn *c);

/* proxy_crypt.c: encrypted columns on their way out */
int pxc_map(struct pconn *c, struct colmap *map, const struct pgp_rowdesc *rd) WUR;
/* Appends a message of type holding a row (its values v, after the bytes
 * head) as this client may see it: a DataRow, or a CopyData of COPY TO's
 * binary format (head: the file's header, before the first row). 0;
 * -EKEYREJECTED when a value fails its check; -EIO when no key can be had. */
int pxc_row(struct pconn *c, const struct colmap *map, char type, const uint8_t *head, size_t nhead,
            const struct pgp_value *v, uint16_t n, struct buf *out) WUR;

/* The map of a COPY TO's columns (ncols from CopyOutResponse), or NULL
 * when its rows cannot be followed column by column. In the binary format
 * its rows are read as pxc_row's. */
struct colmap *pxc_copy_map(struct pconn *c, const struct pstmt *st, uint16_t ncols);
/* Appends a COPY TO row (under the COPY's format and options) as this
 * client may see it. -EILSEQ when it does not read as the map's columns. */
int pxc_copyrow(struct pconn *c, const struct colmap *map, const uint8_t *row, size_t len,
                struct buf *out) WUR;

/* proxy_encrypt.c: values on their way into encrypted columns */
struct pxe_plan;
/* What s writes into encrypted columns (NULL: nothing). 0; -EPERM with why
 * when it cannot be encrypted (the statement is refused); -ENOMEM. */
int pxe_plan(struct pconn *c, const struct sqi_stmt *s, const char *sql, const struct sqi_literal *lits,
             int parse_nparams, struct pxe_plan **ret, char *why, size_t n) WUR; /* -1: a simple query */
void pxe_plan_free(struct pxe_plan *p);
/* The query text with the plans' literals encrypted (NUL-terminated). 0 or
 * -errno (-ENOKEY: a subject was erased; -EIO, -ENOTCONN: no keys now). */
int pxe_query(struct pconn *c, const char *sql, const struct sqi_literal *lits, struct pxe_plan *const *plans,
              size_t nplans, struct buf *out) WUR;
/* The Bind message b with its parameters for p encrypted. */
int pxe_bind(struct pconn *c, const struct pxe_plan *p, const struct pgp_bind *b, struct buf *out) WUR;
/* Why pxe_query or pxe_bind failed, for the client. */
const char *pxe_strerror(int err);
/* Whether a Parse of p's statement goes with another text (blind indexes),
 * and that text; the parameters the proxy adds to its Binds. */
bool pxe_rewrites_parse(const struct pxe_plan *p);
int pxe_parse(struct pconn *c, const struct pxe_plan *p, const char *sql, const struct sqi_literal *lits,
              struct buf *out) WUR;
unsigned pxe_added_params(const struct pxe_plan *p);
/* The parameter holding row's subject's id (0: none; -1: no such row), and
 * its type as its column's (0: it is cast, the cast's). */
int pxe_subject_param(const struct pxe_plan *p, unsigned row, uint32_t *ret_type);

/* proxy_copyin.c: COPY FROM STDIN into encrypted columns. pxi_start, as
 * the client's COPY statement goes to the server (st: its statement):
 * the rows that follow are encrypted, whether or not the client waits for
 * CopyInResponse; pxi_check, on CopyInResponse: the server's columns are
 * those planned. */
int pxi_start(struct pconn *c, struct pstmt *st) WUR;
int pxi_check(struct pconn *c, const struct pstmt *st, const struct pgp_msg *copy_in_response) WUR;
int pxi_data(struct pconn *c, const struct pgp_msg *m) WUR; /* CopyData: 1 (consumed) or -errno */
int pxi_end(struct pconn *c, const struct pgp_msg *m) WUR;  /* CopyDone, CopyFail: 0 (forward), 1, 3 */
/* Rows wait for their keys: the client's next messages wait too, until
 * pxi_resume (0 or -errno) has taken the rows (and pxi_waiting is false). */
bool pxi_waiting(const struct pconn *c);
int pxi_resume(struct pconn *c) WUR;
void pxi_abandon(struct pconn *c); /* PostgreSQL ended the COPY */
void pxi_free(struct pconn *c);

/* proxy_query.c and proxy_result.c */
/* A client's message: 0 forward it, 1 consumed (or replaced), 3 not yet
 * (it stays until the keys to encrypt it with come), <0 the connection
 * ends. */
int pq_frontend(struct pconn *c, const struct pgp_msg *m);
int pq_backend(struct pconn *c, const struct pgp_msg *m, struct evbuffer *in);
int pq_parameter(struct pconn *c, const struct pgp_msg *m); /* ParameterStatus: 0 or -EBADMSG */
void pq_free(struct pconn *c);
void pq_record_done(void *arg, int err, uint64_t seq);
/* Records that st (bound in p, or NULL) is about to be sent to the server,
 * which then gets nothing more until the record is durable. 0; -1 when
 * the connection failed closed. */
int pq_attempt(struct pconn *c, const struct pstmt *st, const struct portal *p, uint64_t serial);

/* proxy_record.c: what proxy_result.c records and holds */
/* Holds back what the client would see of the head's result from here on
 * (until its record is durable); the connection fails closed when it
 * cannot. */
void pq_gate(struct pconn *c);
/* Records the head's statement st (rows; a security event or ""; so far,
 * when partial): its hold, if any, waits for the record to be durable.
 * 0; -1 when the connection failed closed. */
int pq_record(struct pconn *c, const struct pstmt *st, int64_t rows, const char *event, bool partial);
/* Adds the subjects st names before it runs (bound in p) to r. */
void pq_named_subjects(struct result *r, const struct pstmt *st, const struct portal *p);
/* Adds the subject (type, the id's len bytes) to r once; an id Custos
 * cannot log, or one over PX_MAX_SUBJECTS, counts as unattributed. */
void pq_add_subject(struct result *r, const char *type, const uint8_t *v, int32_t len);

#endif
