/* logclient.h - a role's asynchronous channel to the logger, for roles
 * that run an event loop (the proxy): records are sent as the channel
 * takes them, many in flight, and each one's callback runs when the logger
 * has made it durable or refused it. */
#ifndef CUSTOS_LOGCLIENT_H
#define CUSTOS_LOGCLIENT_H

#include <event2/event.h>
#include <stdint.h>

#include "auditlog.h"

/* err 0: the record is durable at seq; otherwise it was not logged. */
typedef void (*lc_done)(void *arg, int err, uint64_t seq);

struct logclient;

/* Records queued during one pass of the event loop go out together at its
 * end (an event made active runs after those already active); lazy ones
 * alone wait up to 2 ms or until 64 are queued. */
struct logclient *lc_new(struct event_base *base);
/* Every record in flight fails with -ECONNABORTED; no callback runs after. */
void lc_free(struct logclient *lc);

/* A new channel to the logger (after a restart; the client keeps a
 * duplicate of fd); -1: none. Records in flight on the old one fail with
 * -EPIPE: whether they were written is unknown, so what they record must
 * not be served. */
void lc_set_fd(struct logclient *lc, int fd);

/* Queues a record. 0: done(arg, ...) runs later; otherwise it never runs
 * (-ENOTCONN without a logger, -ENOBUFS over the in-flight limit, or the
 * encoding's error). A lazy record is one nothing is held back for: the
 * logger makes it durable with its next group commit and does not answer,
 * so done never runs for it (a failure shows in the next eager record). */
int lc_append(struct logclient *lc, const struct alog_rec *r, const char *event, bool lazy, lc_done done,
              void *arg) WUR;

/* Forgets the callbacks for arg (its owner is gone); the records stay. */
void lc_forget(struct logclient *lc, void *arg);

/* Whether appends can be expected to succeed: a channel, and the last
 * answer was not a failure. */
bool lc_healthy(const struct logclient *lc);

struct lc_stats {
	uint64_t sent, durable, failed;
	uint64_t inflight; /* answers awaited */
	uint64_t queued;   /* not yet taken by the channel */
};
struct lc_stats lc_stats(const struct logclient *lc);

#endif
