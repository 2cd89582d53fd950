/* anchors.h - checkpoint anchors in the Linux audit trail. The logger sends
 *   op=custos-checkpoint log=<32 hex> seq=<N> head=<64 hex>
 * with audit_log_user_message(); auditd writes it into its log, out of the
 * log directory's reach. `custosctl log verify --anchors` reads them back. */
#ifndef CUSTOS_ANCHORS_H
#define CUSTOS_ANCHORS_H

#include <stdint.h>

#include "buf.h"
#include "logkey.h"
#include "logverify.h"

#define ANCHOR_OP "op=custos-checkpoint"
#define ANCHOR_MAX_FILE (1ull << 32)

void anchor_format(struct buf *b, const uint8_t log_id[LOG_ID_LEN], uint64_t seq,
                   const uint8_t hash[LOG_HASH_LEN]);

/* Reads the anchors of log_id from an auditd log (other logs' anchors and
 * other lines are skipped) into a list sorted by seq. 0; -EINVAL with
 * *ret_line the first malformed anchor line; -ENOMEM. */
int anchors_parse(const char *text, size_t len, const uint8_t log_id[LOG_ID_LEN], struct lv_head **ret,
                  size_t *ret_n, size_t *ret_line) WUR;

#endif
