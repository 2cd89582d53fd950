/* jsonw.h - writes JSON text into a struct buf. Used where the exact bytes
 * matter (audit records are hashed as written) and on hot paths; parsing
 * is done with jansson. */
#ifndef CUSTOS_JSONW_H
#define CUSTOS_JSONW_H

#include <stdint.h>

#include "buf.h"

/* Appends s (n bytes) as a JSON string with quotes. Bytes that are not
 * valid UTF-8 are replaced by U+FFFD so the output is always valid JSON. */
void jw_strn(struct buf *b, const char *s, size_t n);
void jw_u64(struct buf *b, uint64_t v);
void jw_i64(struct buf *b, int64_t v);

static inline void jw_str(struct buf *b, const char *s)
{
	jw_strn(b, s, strlen(s));
}

/* Appends "key": ; the caller writes the separating commas. */
static inline void jw_key(struct buf *b, const char *key)
{
	buf_addc(b, '"');
	buf_adds(b, key);
	buf_add(b, "\":", 2);
}

#endif
