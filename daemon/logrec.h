/* logrec.h - one audit record, one line:
 *
 *   {"seq":N,"ts":"<UTC>","type":"<name>"<,body fields>,"prev":"<hex>","mac":"<hex>"}
 *
 * P is the line up to and including the comma after prev; mac is
 * HMAC-SHA256(k_epoch, SHA-256(P)); prev is SHA-256 of the previous line's
 * exact bytes (without its newline). The framing is fixed so a verifier
 * checks a line without parsing its JSON body. */
#ifndef CUSTOS_LOGREC_H
#define CUSTOS_LOGREC_H

#include <openssl/evp.h>
#include <stdint.h>

#include "buf.h"
#include "logkey.h"
#include "util.h"

#define LR_MAX_TYPE 32
#define LR_MAX_LINE (1u << 20) /* longer lines are refused and reported */
#define LR_TAIL_LEN 73         /* "mac":"<64 hex>"} */
#define LR_PREV_LEN 75         /* ,"prev":"<64 hex>", */
/* The longest header: {"seq":<20 digits>,"ts":"<TS_LEN>","type":"<LR_MAX_TYPE>" */
#define LR_MAX_HEAD (7 + 20 + 7 + TS_LEN + 10 + LR_MAX_TYPE + 1)
#define LR_MAX_BODY (LR_MAX_LINE - LR_MAX_HEAD - LR_PREV_LEN - LR_TAIL_LEN)

struct lr_frame {
	uint64_t seq;
	const char *ts; /* TS_LEN bytes */
	const char *type;
	size_t typelen;
	const char *body; /* the body fields, starting at their comma */
	size_t bodylen;
	uint8_t prev[LOG_HASH_LEN];
	uint8_t mac[LOG_HASH_LEN];
};

/* Checks the framing of one line (without newline). Returns NULL when it
 * is well framed, else a static description of the first problem. */
const char *lr_scan(const char *line, size_t len, struct lr_frame *ret) WUR;

static inline bool lr_is(const struct lr_frame *f, const char *type)
{
	return f->typelen == strlen(type) && !memcmp(f->type, type, f->typelen);
}

/* The MAC key of one epoch, ready for use. */
struct lr_mac;
struct lr_mac *lr_mac_new(const uint8_t key[LOG_KEY_LEN]);
void lr_mac_free(struct lr_mac *m);

/* Hashes a whole line: ret_d = SHA-256(P), ret_h = SHA-256(line). */
int lr_digest(const char *line, size_t len, uint8_t ret_d[LOG_HASH_LEN], uint8_t ret_h[LOG_HASH_LEN]) WUR;
int lr_mac_compute(struct lr_mac *m, const uint8_t d[LOG_HASH_LEN], uint8_t ret[LOG_HASH_LEN]) WUR;

/* Writing: lr_begin writes the header at the end of b; body fields follow
 * (each starting with a comma); lr_finish appends prev, mac and newline
 * and returns the line's hash. */
void lr_begin(struct buf *b, uint64_t seq, int64_t ts_us, const char *type);
int lr_finish(struct buf *b, size_t start, const uint8_t prev[LOG_HASH_LEN], struct lr_mac *m,
              uint8_t ret_hash[LOG_HASH_LEN]) WUR;

/* Bodies that the log itself writes, in fixed form so that verification
 * needs no JSON parser:
 *   checkpoint  ,"epoch":E,"sig":"<128 hex>"
 *   log_init    ,"log":"<32 hex>","version":1 */
void lr_checkpoint_body(struct buf *b, uint64_t epoch, const uint8_t sig[LOG_SIG_LEN]);
bool lr_checkpoint_parse(const struct lr_frame *f, uint64_t *ret_epoch, uint8_t ret_sig[LOG_SIG_LEN]) WUR;
void lr_init_body(struct buf *b, const uint8_t log_id[LOG_ID_LEN]);
bool lr_init_parse(const struct lr_frame *f, uint8_t ret_log_id[LOG_ID_LEN]) WUR;
#endif
