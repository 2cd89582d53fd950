/* logbody.h - an audit record's body: everything after its type, as the
 * log writes it (actor, object, subjects, statement, rows, detail), with
 * each subject's id encrypted under the subject's key (keyprov.h) beside
 * its ref. Rendered by the appender, outside the log's lock. */
#ifndef CUSTOS_LOGBODY_H
#define CUSTOS_LOGBODY_H

#include "auditlog.h"
#include "buf.h"
#include "keyprov.h"

/* Appends r's body to b. 0; -EINVAL for a bad or reserved type or a
 * detail that is not a one-line JSON object; -ENOKEY for subjects without
 * a key provider (or the provider's error); -E2BIG past LR_MAX_BODY;
 * -ENOMEM. */
int logbody_render(const struct alog_rec *r, struct keyprov *kp, struct buf *b);

#endif
