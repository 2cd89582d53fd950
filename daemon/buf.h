/* buf.h - a growable byte buffer that remembers allocation failure, so a
 * message or record is built with unchecked calls and checked once. */
#ifndef CUSTOS_BUF_H
#define CUSTOS_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "util.h"

struct buf {
	char *p;
	size_t len, cap;
	bool failed; /* an allocation failed; contents are incomplete */
	bool secret; /* it holds personal data or keys: a block it outgrows, or frees, is wiped first */
};

#define BUF_INIT                                                                                             \
	{                                                                                                    \
		NULL, 0, 0, false, false                                                                     \
	}
#define BUF_SECRET                                                                                           \
	{                                                                                                    \
		NULL, 0, 0, false, true                                                                      \
	}

bool buf_reserve(struct buf *b, size_t extra);
void buf_free(struct buf *b);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void buf_reset(struct buf *b)
{
	b->len = 0;
	b->failed = false;
}

static inline void buf_add(struct buf *b, const void *data, size_t n)
{
	if (n == 0)
		return;
	if (b->cap - b->len < n && !buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static inline void buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

static inline void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* Swaps the contents of two buffers (double buffering without copies). */
static inline void buf_swap(struct buf *a, struct buf *b)
{
	struct buf t = *a;
	*a = *b;
	*b = t;
}

#endif
