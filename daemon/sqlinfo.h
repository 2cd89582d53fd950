/* sqlinfo.h - what a SQL string does, analysed once with libpg_query (the
 * PostgreSQL parser): each statement's kind, its fingerprint, its text
 * with every constant replaced by $n (the only form that may reach the
 * audit log), and the tables it reads and writes. Analyses are cached by
 * statement text, with a bound. */
#ifndef CUSTOS_SQLINFO_H
#define CUSTOS_SQLINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "copytext.h"
#include "util.h"

#define SQI_MAX_SQL (1u << 20)
#define SQI_MAX_TABLES 256            /* per statement; more is refused */
#define SQI_CACHE_MAX_SQL (16u << 10) /* longer texts are analysed, not cached */

enum sqi_kind { SQI_SELECT, SQI_INSERT, SQI_UPDATE, SQI_DELETE, SQI_COPY, SQI_OTHER };

/* A routine (function or procedure) a statement calls, as it names it. */
#define SQI_MAX_CALLS 256 /* per statement; more is refused */
struct sqi_name {
	char *schema; /* NULL when the statement did not name one */
	char *name;
};
/* A column given a default: [schema.]table's column; table NULL: the
 * domain [schema.]column (its columns default to it). */
struct sqi_default {
	char *schema, *table, *column;
};

/* Adds [schema.]name to a list of names (once; schema or name may be
 * NULL): 0, -E2BIG over SQI_MAX_CALLS, -ENOMEM. */
int sqi_name_add(struct sqi_name **names, size_t *n, const char *schema, const char *name) WUR;
void sqi_names_free(struct sqi_name *names, size_t n);

/* The kinds of write a statement makes to the tables it writes (those a
 * trigger fires on, a foreign key acts on). */
enum {
	SQI_EV_INSERT = 1,
	SQI_EV_UPDATE = 2,
	SQI_EV_DELETE = 4,
	SQI_EV_TRUNCATE = 8,
	SQI_EV_TRUNCATE_CASCADE = 16, /* TRUNCATE ... CASCADE: the referencing tables too */
	SQI_EV_ALL = 31,
	SQI_EV_READ = 32, /* not a write: a read of a view, which runs what its query calls */
	SQI_EV_DDL = 64,  /* not a write: DDL, which fires the database's event triggers */
	SQI_EV_ANY = 128  /* any statement: what implicit and assignment casts run, unseen where */
};

/* The code DDL changes: run by statements naming it (routines, and
 * triggers on their writes), or by statements using it unnamed
 * (operators, casts, policies, views' functions, event triggers). */
enum { SQI_CODE_NAMED = 1, SQI_CODE_UNNAMED = 2, SQI_CODE_ANY = 3 };

/* What of a code body (a DO block's, a routine's) cannot be seen. */
enum {
	SQI_HIDDEN_DYNAMIC = 1,  /* SQL built as it runs (EXECUTE) */
	SQI_HIDDEN_UNPARSED = 2, /* a part libpg_query does not parse, or too deep or large to analyse */
	SQI_HIDDEN_LANGUAGE = 4, /* a language other than SQL and PL/pgSQL (C and internal are trusted) */
	SQI_HIDDEN_READING = 8,  /* a change of how the statements after it read (sqlreading.h) */
	SQI_HIDDEN_MISREAD = 16, /* text PostgreSQL, reading it when it runs, may read otherwise */
};

struct sqi_table {
	char *schema; /* NULL when the statement did not name one */
	char *name;
	char *alias; /* NULL when none */
	bool write;  /* the target of INSERT, UPDATE, DELETE or COPY FROM */
};

/* A position in a statement's text that holds in every text sharing its
 * cached analysis: so many bytes after the end of a literal (-1: after the
 * start of the text). sqi_cache_get sets these; sqi_pos_at finds them. */
struct sqi_pos {
	int anchor;
	int offset; /* -1: none */
};

/* A value a statement ties a column to: `col = v` or `col IN (v, ...)`
 * in the top-level AND of its WHERE clause, or an INSERT's VALUES for
 * the column. It tells whose rows a statement touches. */
#define SQI_MAX_PREDS 1024
struct sqi_pred {
	char *qual; /* the table or alias that qualifies the column, or NULL */
	char *column;
	int param;         /* $n (1-based); 0: a constant */
	char *value;       /* the constant as text (sqi_analyse only; NULL in cached analyses) */
	bool insert;       /* a value inserted into the statement's target */
	int location;      /* of the constant, or of the parameter's $n, in the text */
	int literal;       /* the constant's index among the text's literals (the cache's); -1 */
	bool plain;        /* `col = v` with the column on the left and v with no cast: v can be rewritten */
	struct sqi_pos at; /* location, in this text */
	int col_location;  /* of the column's reference (-1: an insert's) */
	bool bare;         /* v with no cast: a parameter's type is the column's */
	bool col_cast;     /* the column is cast (id::int = '7'): v may match other ids too (007) */
};

/* A column used in an expression anywhere in a statement: compared,
 * joined on, passed to an operator or a function, sorted or grouped by;
 * anything but a bare output column, a NULL test, a write's target or a
 * predicate above (each name once). PostgreSQL holds only the ciphertext
 * of an encrypted column: the proxy refuses such uses of one. */
#define SQI_MAX_USES 4096
struct sqi_use {
	char *qual; /* the table or alias that qualifies the column, or NULL */
	char *column;
};

/* A value a statement writes into a column: each item of an INSERT's
 * VALUES rows, each SET of an UPDATE, each SET of INSERT ... ON CONFLICT
 * DO UPDATE. What the proxy needs to encrypt it on its way in. */
enum sqi_wkind {
	SQI_W_CONST,    /* a constant (literal: its index among the text's literals) */
	SQI_W_PARAM,    /* $param */
	SQI_W_NULL,     /* NULL */
	SQI_W_EXCLUDED, /* ON CONFLICT ... SET col = EXCLUDED.col: the value being inserted */
	SQI_W_EXPR      /* anything else: DEFAULT, a function, a subquery, a column */
};
#define SQI_MAX_WRITES 65536
struct sqi_write {
	char *column;
	enum sqi_wkind kind;
	int param;
	int literal;        /* the constant's index among the text's literals (the cache's); -1 */
	unsigned row;       /* the VALUES row (0 for UPDATE) */
	bool upsert;        /* ON CONFLICT DO UPDATE: it writes whichever row conflicts */
	bool bare;          /* the constant or parameter with no cast: text may follow it */
	int value_location; /* of the constant or the parameter's $n; -1 */
	int col_location;   /* of the column's name in an INSERT's column list; -1 */
	struct sqi_pos value_at, col_at; /* the same, in this text */
};

struct sqi_stmt {
	enum sqi_kind kind;
	char fingerprint[17]; /* 16 hex digits */
	char *normalized;     /* constants replaced by $n, comments removed; for COPY and
	                       * other statements only the kind of node ("CopyStmt") */
	struct sqi_table *tables;
	size_t ntables;
	bool returning;  /* INSERT/UPDATE/DELETE ... RETURNING */
	unsigned events; /* SQI_EV_*: every kind it may make (a DO block: all) */
	/* a DO block: its tables and calls are those its body's statements and
	 * expressions name (sqlbody.c); hidden says what of it cannot be seen
	 * (SQI_HIDDEN_*), body is its text when a part does not parse (the
	 * proxy looks for the names it knows in it) */
	unsigned hidden;
	char *body;
	/* the routines it calls by name: FuncCall nodes anywhere, CALL (the
	 * catalog tells which are the database's own and what they do) */
	struct sqi_name *calls;
	size_t ncalls;
	struct sqi_pred *preds;
	size_t npreds;
	struct sqi_use *uses;
	size_t nuses;
	/* the columns the statement writes: those an INSERT, UPDATE or COPY
	 * FROM names; write_all when a write names none (all columns) or is
	 * not followed column by column (a writing CTE, MERGE) */
	char **write_cols;
	size_t nwrite_cols;
	bool write_all;
	bool nested_writes; /* a write below the statement's own (a writing CTE, ...) */
	/* the values written, item by item; writes_partial when an INSERT's
	 * rows do not come from VALUES (INSERT ... SELECT) or there are more
	 * than SQI_MAX_WRITES */
	struct sqi_write *writes;
	size_t nwrites;
	bool writes_partial;
	/* INSERT ... ON CONFLICT (a, b): the columns of its target (not
	 * ON CONSTRAINT's, nor an expression's) */
	char **conflict_cols;
	size_t nconflict_cols;
	/* COPY of a table (not of a query): the columns it names (none: all),
	 * and whether the proxy can read its rows (plain: no WHERE, no options
	 * but FORMAT text or csv and HEADER; csv, header: those options) */
	char **copy_cols;
	size_t ncopy_cols;
	bool copy_table, copy_plain, copy_header;
	bool copy_binary;    /* FORMAT binary and no other option: a COPY TO's rows can be read */
	bool copy_quote_all; /* COPY TO ... (FORMAT csv, FORCE_QUOTE *) */
	char **copy_quote;   /* ... or FORCE_QUOTE (these columns) */
	size_t ncopy_quote;
	struct ct_format copy_format; /* FORMAT, DELIMITER, NULL, QUOTE, ESCAPE (copy_plain: understood) */
	bool copy_stdin;              /* from or to the client (not a file or a program of the server's) */
	/* DDL: the relations it makes or names anew, which the catalog shows
	 * once it has committed (a view or materialized view; a table made to
	 * inherit, or a partition; a relation renamed, moved to another
	 * schema, with a column renamed or a rule added); name NULL: every
	 * relation of a renamed schema */
	struct sqi_name *made;
	size_t nmade;
	/* ALTER TABLE ... RENAME COLUMN, ADD COLUMN: the columns renamed (old
	 * and new names) or added, as names with no schema */
	struct sqi_name *columns;
	size_t ncolumns;
	/* DDL giving columns a default or a generated expression other than
	 * NULL, which PostgreSQL fills in itself */
	struct sqi_default *defaults;
	size_t ndefaults;
	bool body_ddl;      /* a DO block: a statement of its body that is not DML (DDL, say) */
	unsigned code_ddl;  /* SQI_CODE_*: DDL changing what code statements run (a DO block's: its body's) */
	bool select_into;   /* SELECT ... INTO a new table (which is DDL to event triggers) */
	bool calls_by_name; /* of its calls, some name a function (not only operators and casts) */
	bool tx_prepare;    /* PREPARE TRANSACTION */
	bool tx_prepared_end; /* COMMIT PREPARED, ROLLBACK PREPARED */
};

struct sqi_info {
	struct sqi_stmt *stmts;
	size_t n;
	bool per_text; /* it depends on a literal's contents (a DO block's body, a COPY's
	                * options): never shared */
};

/* Analyses sql (no statements at all is n == 0). 0; -EINVAL when it does
 * not parse (err then gives the position only: parser messages quote the
 * text, which may hold personal data); -E2BIG over SQI_MAX_SQL, over
 * SQI_MAX_TABLES tables in a statement, or nested too deep; -EILSEQ when
 * the text is not UTF-8; -ENOMEM. err says which. */
int sqi_analyse(const char *sql, struct sqi_info **ret, char *err, size_t errlen) WUR;
void sqi_free(struct sqi_info *info);

const char *sqi_kind_name(enum sqi_kind k);
/* Whether s may fire event triggers: DDL, but for the commands that fire
 * none (on databases, roles, tablespaces, event triggers; transaction
 * control, SET, VACUUM, ...), or a DO block running DDL. */
bool sqi_fires_event_triggers(const struct sqi_stmt *s);
/* Whether s evaluates expressions, where implicit casts run: not SET,
 * BEGIN, DROP and most other utility statements (so that a cast Custos
 * cannot see, which refuses what evaluates, can be dropped through it). */
bool sqi_evaluates(const struct sqi_stmt *s);

/* A literal of a statement's text (a token of PostgreSQL's own scanner). */
struct sqi_literal {
	const char *p;
	size_t len;
	bool number;
};

/* The byte offset of pos in sql (whose literals are lits), or -1. */
static inline long sqi_pos_at(const struct sqi_pos *pos, const char *sql, const struct sqi_literal *lits)
{
	if (pos->offset < 0)
		return -1;
	return (pos->anchor >= 0 ? (long)(lits[pos->anchor].p - sql + (long)lits[pos->anchor].len) : 0) +
	       pos->offset;
}

/* The literal as a value: a number as written, a plain '...' string
 * unquoted; NULL for other forms (E'', U&'', $$) or out of memory. */
char *sqi_literal_text(const struct sqi_literal *l);

/* A bounded cache of analyses (least recently used out). Statements that
 * differ only in their literals share one analysis: the key is the text
 * with every literal token, as PostgreSQL's scanner finds them, replaced
 * by a mark no text can hold there; the literals of this text come back
 * with it (predicates point into them). Not thread-safe: one per proxy
 * process. */
struct sqi_cache;
struct sqi_cache *sqi_cache_new(size_t max);
void sqi_cache_free(struct sqi_cache *c);
/* The analysis of sql, from the cache or made now (and cached), and its
 * literals. Both stay valid until the next call (and sql as long). */
int sqi_cache_get(struct sqi_cache *c, const char *sql, const struct sqi_info **ret,
                  const struct sqi_literal **ret_lits, size_t *ret_nlits, char *err, size_t errlen) WUR;
void sqi_cache_stats(const struct sqi_cache *c, uint64_t *hits, uint64_t *misses, uint64_t *evictions);

#endif
