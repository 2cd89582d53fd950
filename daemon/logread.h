/* logread.h - reading audit records in order for show and export (no
 * verification: that is logverify.h). Each record is framed with lr_scan
 * and parsed with jansson; a damaged one stops the walk with its sequence
 * number and offset. */
#ifndef CUSTOS_LOGREAD_H
#define CUSTOS_LOGREAD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* Where a walk stopped: a later walk that starts after the same record
 * resumes there, without reading the segment again from its start. */
struct lrd_pos {
	uint64_t first; /* the segment's first record (0: no position) */
	uint64_t off;   /* the byte after the last line read */
	uint64_t seq;   /* the last record read */
};

struct lrd_filter {
	bool has_since, has_until;
	int64_t since, until; /* microseconds, inclusive since, exclusive until */
	const char *type;
	const char *subject_ref; /* 64 hex */
	uint64_t after_seq;      /* only records after it (0: all); earlier segments are not read */
	uint64_t until_seq;      /* the walk ends after it (0: at the log's end) */
	/* only records whose line holds these bytes; the others are framed but
	 * neither parsed nor checked further (a cheap test, for readers that
	 * trust the log's writer: a verifier must not use it) */
	const char *contains;
	/* the active segment's (the last plain one's) data ends at its first
	 * empty line: the filler after it (most of a 64 MiB segment) is not
	 * read (a verifier must read it, and find any junk there) */
	bool trust_end;
	/* in: resume there when it is a plain segment and pos->seq is
	 * after_seq; out: where the walk stopped (after the record the
	 * callback stopped it at) */
	struct lrd_pos *pos;
};

/* Called with each record that passes the filter; the line's exact bytes
 * too. A nonzero return stops the walk and is returned. */
typedef int (*lrd_fn)(void *arg, json_t *rec, const char *line, size_t len);

struct lrd_error {
	uint64_t seq; /* the record that could not be read */
	char reason[256];
};

/* 0 all read; 1 a damaged record (described in ret_err); a negative errno
 * on I/O errors (also described); or the callback's nonzero return. */
int lrd_each(const char *dir, const struct lrd_filter *f, lrd_fn fn, void *arg,
             struct lrd_error *ret_err) WUR;

#endif
