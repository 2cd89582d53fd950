/* anchors.c - see anchors.h */
#define _GNU_SOURCE
#include "anchors.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void anchor_format(struct buf *b, const uint8_t log_id[LOG_ID_LEN], uint64_t seq,
                   const uint8_t hash[LOG_HASH_LEN])
{
	char id[2 * LOG_ID_LEN + 1], h[2 * LOG_HASH_LEN + 1];

	hex_encode(log_id, LOG_ID_LEN, id);
	hex_encode(hash, LOG_HASH_LEN, h);
	buf_printf(b, ANCHOR_OP " log=%s seq=%llu head=%s", id, (unsigned long long)seq, h);
}

/* The value of " key=" within [p, end), up to a space or quote. */
static bool field(const char *p, const char *end, const char *key, const char **ret, size_t *ret_len)
{
	size_t klen = strlen(key);

	for (const char *s = p; s + 1 + klen < end; s++) { /* s[1 + klen] is read */
		if (*s != ' ' || memcmp(s + 1, key, klen) || s[1 + klen] != '=')
			continue;
		const char *v = s + 2 + klen, *e = v;
		while (e < end && *e != ' ' && *e != '\'' && *e != '"')
			e++;
		*ret = v;
		*ret_len = (size_t)(e - v);
		return true;
	}
	return false;
}

static bool parse_anchor(const char *p, const char *end, uint8_t log_id[LOG_ID_LEN], struct lv_head *h)
{
	const char *v;
	size_t n;
	char num[21];

	if (!field(p, end, "log", &v, &n) || n != 2 * LOG_ID_LEN || !hex_decode(v, n, log_id))
		return false;
	if (!field(p, end, "head", &v, &n) || n != 2 * LOG_HASH_LEN || !hex_decode(v, n, h->hash))
		return false;
	if (!field(p, end, "seq", &v, &n) || n == 0 || n >= sizeof(num))
		return false;
	memcpy(num, v, n);
	num[n] = '\0';
	h->source = "anchor";
	return parse_u64(num, &h->seq) && h->seq > 0;
}

static int head_cmp(const void *a, const void *b)
{
	const struct lv_head *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int anchors_parse(const char *text, size_t len, const uint8_t log_id[LOG_ID_LEN], struct lv_head **ret,
                  size_t *ret_n, size_t *ret_line)
{
	struct lv_head *v = NULL, h;
	size_t n = 0, cap = 0, line = 0;
	uint8_t id[LOG_ID_LEN];

	for (const char *p = text, *end = text + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		const char *op = memmem(p, (size_t)(e - p), ANCHOR_OP " ", sizeof(ANCHOR_OP));
		line++;
		if (op && !parse_anchor(op + sizeof(ANCHOR_OP) - 1, e, id, &h)) {
			free(v);
			*ret_line = line;
			return -EINVAL;
		}
		if (op && !memcmp(id, log_id, LOG_ID_LEN)) {
			if (n == cap) {
				cap = cap ? 2 * cap : 64;
				struct lv_head *nv = realloc(v, cap * sizeof(*v));
				if (!nv) {
					free(v);
					return -ENOMEM;
				}
				v = nv;
			}
			v[n++] = h;
		}
		p = e + 1;
	}
	if (n)
		qsort(v, n, sizeof(*v), head_cmp);
	*ret = v;
	*ret_n = n;
	return 0;
}
