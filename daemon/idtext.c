/* idtext.c - see idtext.h */
#include "idtext.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	OID_NAME = 19,
	OID_INT8 = 20,
	OID_INT2 = 21,
	OID_INT4 = 23,
	OID_TEXT = 25,
	OID_OID = 26,
	OID_BPCHAR = 1042,
	OID_VARCHAR = 1043,
	OID_UUID = 2950
};

static int64_t big_endian(const uint8_t *p, int32_t len)
{
	uint64_t x = 0;

	for (int32_t i = 0; i < len; i++)
		x = x << 8 | p[i];
	if (len < 8 && (x >> (len * 8 - 1)) & 1)
		x |= ~0ull << (len * 8); /* a negative number of fewer bytes */
	return (int64_t)x;
}

static int uuid_text(const uint8_t *p, char *out)
{
	static const char hex[] = "0123456789abcdef";
	int n = 0;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[n++] = '-';
		out[n++] = hex[p[i] >> 4];
		out[n++] = hex[p[i] & 15];
	}
	out[n] = 0;
	return n;
}

int idt_binary(uint32_t type_oid, const struct pgp_value *v, char room[IDT_ROOM], const char **ret)
{
	static const struct {
		uint32_t oid;
		int32_t len; /* 0: any */
	} types[] = { { OID_INT2, 2 },    { OID_INT4, 4 },   { OID_INT8, 8 },
		      { OID_OID, 4 },     { OID_UUID, 16 },  { OID_TEXT, 0 },
		      { OID_VARCHAR, 0 }, { OID_BPCHAR, 0 }, { OID_NAME, 0 } };
	size_t i = 0;

	while (i < ARRAY_SIZE(types) && types[i].oid != type_oid)
		i++;
	bool known = i < ARRAY_SIZE(types);
	if (v->len < 0 || !known || (types[i].len && v->len != types[i].len))
		return -1;
	*ret = room;
	if (type_oid == OID_UUID)
		return uuid_text(v->p, room);
	if (known && !types[i].len) {
		*ret = (const char *)v->p;
		return v->len;
	}
	if (type_oid == OID_OID)
		return snprintf(room, IDT_ROOM, "%llu", (unsigned long long)(uint32_t)big_endian(v->p, 4));
	return snprintf(room, IDT_ROOM, "%lld", (long long)big_endian(v->p, v->len));
}

/* The digits of an integer as PostgreSQL reads one (int2in ... int8in):
 * spaces around, a sign, and a 0x, 0o or 0b prefix and _ between digits
 * (PostgreSQL 16 on). Returns whether v[0..n) is one, into *ret. */
static bool integer(const char *v, size_t n, long long *ret)
{
	size_t i = 0;
	bool neg = false, digits = false;
	unsigned base = 10;
	unsigned long long x = 0;

	while (i < n && isspace((unsigned char)v[i]))
		i++;
	while (n > i && isspace((unsigned char)v[n - 1]))
		n--;
	if (i < n && (v[i] == '+' || v[i] == '-'))
		neg = v[i++] == '-';
	if (n - i > 2 && v[i] == '0' && strchr("xXoObB", v[i + 1])) {
		base = strchr("xX", v[i + 1]) ? 16 : strchr("oO", v[i + 1]) ? 8 : 2;
		i += 2;
	}
	for (; i < n; i++) {
		int d = isdigit((unsigned char)v[i])         ? v[i] - '0'
		        : isxdigit((unsigned char)v[i])      ? tolower((unsigned char)v[i]) - 'a' + 10
		        : v[i] == '_' && digits && i + 1 < n ? -2
		                                             : -1;
		if (d == -2)
			continue;
		if (d < 0 || (unsigned)d >= base || x > (~0ull - (unsigned)d) / base)
			return false;
		x = x * base + (unsigned)d;
		digits = true;
	}
	if (!digits || x > (neg ? 1ull << 63 : (1ull << 63) - 1))
		return false;
	*ret = neg ? (long long)(0 - x) : (long long)x;
	return true;
}

/* A uuid as uuid_in reads one: 32 hex digits, in braces or not, a hyphen
 * allowed after each group of four. Returns whether v[0..n) is one. */
static bool uuid(const char *v, size_t n, uint8_t out[16])
{
	size_t i = 0, k = 0;

	if (n >= 2 && v[0] == '{' && v[n - 1] == '}') {
		i = 1;
		n--;
	}
	for (; i < n; i++) {
		if (v[i] == '-' && k && k % 4 == 0 && k < 32 && i + 1 < n && v[i + 1] != '-')
			continue;
		if (!isxdigit((unsigned char)v[i]) || k == 32)
			return false;
		unsigned d = isdigit((unsigned char)v[i])
		                 ? (unsigned)(v[i] - '0')
		                 : (unsigned)(tolower((unsigned char)v[i]) - 'a' + 10);
		out[k / 2] = (uint8_t)(k % 2 ? out[k / 2] | d : d << 4);
		k++;
	}
	return k == 32;
}

int idt_text(uint32_t type_oid, const char *v, size_t n, char room[IDT_ROOM], const char **ret)
{
	long long x;
	uint8_t u[16];
	bool whole =
	    type_oid == OID_INT2 || type_oid == OID_INT4 || type_oid == OID_INT8 || type_oid == OID_OID;

	*ret = room;
	if (whole) /* (a negative oid PostgreSQL would wrap around: not read) */
		return integer(v, n, &x) && (type_oid != OID_OID || x >= 0)
		           ? snprintf(room, IDT_ROOM, "%lld", x)
		           : -1;
	if (type_oid == OID_UUID)
		return uuid(v, n, u) ? uuid_text(u, room) : -1;
	*ret = v;
	return (int)n;
}

bool idt_exact(uint32_t type_oid)
{
	return type_oid == OID_INT2 || type_oid == OID_INT4 || type_oid == OID_INT8 || type_oid == OID_OID ||
	       type_oid == OID_UUID;
}

bool idt_string(uint32_t type_oid)
{
	return type_oid == OID_TEXT || type_oid == OID_VARCHAR || type_oid == OID_NAME;
}

int idt_dup(uint32_t type_oid, const char *v, size_t n, char **ret)
{
	char room[IDT_ROOM];
	const char *t;
	int len = idt_text(type_oid, v, n, room, &t);

	*ret = len < 0 ? NULL : strndup(t, (size_t)len);
	return len < 0 ? -ENOTSUP : *ret ? 0 : -ENOMEM;
}
