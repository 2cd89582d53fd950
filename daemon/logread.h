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

struct lrd_filter {
	bool has_since, has_until;
	int64_t since, until; /* microseconds, inclusive since, exclusive until */
	const char *type;
	const char *subject_ref; /* 64 hex */
	uint64_t after_seq;      /* only records after it (0: all); earlier segments are not read */
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
