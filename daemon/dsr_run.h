/* dsr_run.h - carrying out a request: `custosctl request run ID`. An
 * access request produces the access report (dsr_access.c); an erasure
 * the deletion certificate. Either is written to a directory of its own
 * under report_dir, recorded and signed through the logger (reportsig.h),
 * and the ledger gets its hash. */
#ifndef CUSTOS_DSR_RUN_H
#define CUSTOS_DSR_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "dsr.h"

json_t *dsr_run(struct dsr *d, const struct dsr_caller *who, int64_t id, bool dry_run, char *err,
                size_t errlen);

/* The access report of the request in row; the portable copy (Art. 20)
 * in *ret_portable. NULL with err. */
json_t *dsr_access_report(struct dsr *d, json_t *row, json_t **ret_portable, char *err, size_t errlen);

/* An erasure's dry run: per table and column what would happen, and to how
 * many rows and values; nothing changes. NULL with err. */
json_t *dsr_erase_plan(struct dsr *d, json_t *row, char *err, size_t errlen);
/* The erasure: the database changed in one transaction (recorded as step
 * "erase" before it commits), the keys destroyed, every outcome read
 * again. The deletion certificate, and the subject's ref in ret_ref; NULL
 * with err (the request may be run again). */
json_t *dsr_erase(struct dsr *d, const struct dsr_caller *who, json_t *row, uint8_t ret_ref[32], char *err,
                  size_t errlen);

#endif
