/* dsr_index.h - the subject index (schemas/custos-3-subject-index.sql):
 * the audit log's access records by subject ref, in the keystore
 * database, so that an access report finds a subject's accesses in
 * milliseconds however long the log. The dsr role brings it up to date
 * every few seconds and before every report, reading only the records
 * written since (logread's after_seq). */
#ifndef CUSTOS_DSR_INDEX_H
#define CUSTOS_DSR_INDEX_H

#include <jansson.h>

#include "dsr.h"

#define DSR_RECENT_ACCESSES 200 /* listed one by one in a report; all are counted */

/* Indexes the access records written since the last call, reading at
 * most max records (0: all). 0 done, 1 more to do, or -errno with err (what was
 * indexed stays). */
int dsr_index_catch_up(struct dsr *d, uint64_t max, char *err, size_t errlen) WUR;

/* A subject's accesses, by ref (64 hex): {total, by_actor, recent}. NULL
 * with err. */
json_t *dsr_index_accesses(struct dsr *d, const char *ref, char *err, size_t errlen);

#endif
