/* logverify.h - offline verification of an audit log directory: framing,
 * sequence, hash chain, MACs (with the key file), checkpoint signatures,
 * and truncation against an expected head or anchors from auditd. */
#ifndef CUSTOS_LOGVERIFY_H
#define CUSTOS_LOGVERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "logkey.h"
#include "util.h"

/* A head the log must still contain: from --expect-head or an anchor. */
struct lv_head {
	uint64_t seq;
	uint8_t hash[LOG_HASH_LEN];
	const char *source; /* "expected head", "anchor" */
};

struct lv_opts {
	const struct logkeys *keys;  /* MACs are checked when keys->has_seed */
	const struct lv_head *heads; /* sorted by seq */
	size_t nheads;
};

struct lv_result {
	bool ok;
	uint64_t records, head_seq;
	uint8_t head_hash[LOG_HASH_LEN];
	uint64_t bytes;         /* uncompressed bytes read */
	uint64_t unsigned_tail; /* records after the last checkpoint */
	uint64_t fail_seq;
	char reason[320];
};

/* 0 with the verdict in ret, or a negative errno when the directory or a
 * segment cannot be read at all (err says which). */
int lv_verify(const char *dir, const struct lv_opts *o, struct lv_result *ret, char *err, size_t errlen) WUR;

/* Parses "SEQ:HASH". */
bool lv_parse_head(const char *s, struct lv_head *ret) WUR;

#endif
