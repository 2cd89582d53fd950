/* logfollow.h - following a live audit log, like `tail -f` across
 * segments: new records as the logger writes them, each one whole and
 * framed (lr_scan), in order. A reader of the log directory, never a
 * writer; it holds the segment it reads open, so sealing does not
 * disturb it. */
#ifndef CUSTOS_LOGFOLLOW_H
#define CUSTOS_LOGFOLLOW_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct lfollow;

/* Starts following dir after its current last record. 0 or -errno. */
int lf_open(const char *dir, struct lfollow **ret) WUR;
void lf_close(struct lfollow *f);

/* Calls fn with each record written since the last call (the exact line,
 * without newline), at most max of them. Returns how many, or a negative
 * errno (or fn's negative return); -ESTALE when the follower fell so far
 * behind that the segment it needs was sealed meanwhile. */
int lf_poll(struct lfollow *f, int (*fn)(void *arg, const char *line, size_t len), void *arg,
            unsigned max) WUR;

/* The sequence number of the last record passed to fn (or the log's last
 * record when following started). */
uint64_t lf_last(const struct lfollow *f);

#endif
