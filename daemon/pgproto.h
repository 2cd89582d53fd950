/* pgproto.h - the PostgreSQL v3 wire protocol, as the proxy reads and
 * writes it (https://www.postgresql.org/docs/current/protocol-message-formats.html).
 *
 * Every byte comes from a peer that may be hostile: a message's length is
 * checked against a limit before anything is allocated for it, and the
 * typed decoders read through a bounds-checked reader, require every
 * string to be terminated inside the message and every byte of the
 * message to be accounted for. They return 0 or -EBADMSG and never read
 * outside the message; decoded strings and values point into it. */
#ifndef CUSTOS_PGPROTO_H
#define CUSTOS_PGPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "util.h"

#define PGP_PROTOCOL_3 196608u /* 3.0 */
#define PGP_SSL_REQUEST 80877103u
#define PGP_GSSENC_REQUEST 80877104u
#define PGP_CANCEL_REQUEST 80877102u
#define PGP_MAX_STARTUP 10000u /* what PostgreSQL itself accepts */
#define PGP_MAX_PARAMS 64      /* startup parameters */
#define PGP_MAX_FIELDS 1664    /* columns of a row: PostgreSQL's own limit */
#define PGP_MAX_BIND 65535     /* parameters of a statement (int16) */

/* A framed message: its type byte, and its body (after the length). */
struct pgp_msg {
	char type;
	const uint8_t *body;
	size_t len;  /* of the body */
	size_t size; /* of the whole message on the wire */
};

/* Frames the next message at the start of buf[0, n). Returns 1 and *ret
 * when it is all there, 0 when more bytes are needed, -EMSGSIZE when its
 * declared length exceeds max (nothing need be read), -EBADMSG when the
 * length field is impossible (under 4). */
int pgp_frame(const uint8_t *buf, size_t n, uint32_t max, struct pgp_msg *ret) WUR;
/* The whole size of the message whose first five bytes are hdr: 1 and
 * *ret_size, or -EMSGSIZE / -EBADMSG like pgp_frame. */
int pgp_header(const uint8_t hdr[5], uint32_t max, size_t *ret_size) WUR;

/* --- the startup packet (no type byte) ------------------------------------ */

enum pgp_startup_kind { PGP_STARTUP, PGP_SSL, PGP_GSSENC, PGP_CANCEL };

struct pgp_startup {
	enum pgp_startup_kind kind;
	uint32_t version; /* PGP_STARTUP */
	const char *keys[PGP_MAX_PARAMS], *values[PGP_MAX_PARAMS];
	size_t nparams;
	uint32_t cancel_pid, cancel_key; /* PGP_CANCEL */
};

/* Frames a startup packet like pgp_frame (1, 0, -EMSGSIZE over
 * PGP_MAX_STARTUP, -EBADMSG); *ret_size is its length. */
int pgp_frame_startup(const uint8_t *buf, size_t n, size_t *ret_size) WUR;
/* Decodes a whole startup packet of size bytes. A 3.x startup must name
 * a user; other protocol versions are -EPROTONOSUPPORT. */
int pgp_parse_startup(const uint8_t *buf, size_t size, struct pgp_startup *ret) WUR;
const char *pgp_startup_param(const struct pgp_startup *s, const char *key);

/* --- frontend messages ------------------------------------------------------ */

int pgp_parse_query(const struct pgp_msg *m, const char **ret_sql) WUR; /* 'Q' */

struct pgp_parse { /* 'P' */
	const char *name, *query;
	uint16_t nparams;
	const uint8_t *param_oids; /* nparams big-endian u32 */
};
int pgp_parse_parse(const struct pgp_msg *m, struct pgp_parse *ret) WUR;

struct pgp_value {
	const uint8_t *p;
	int32_t len; /* -1: NULL */
};

struct pgp_bind { /* 'B' */
	const char *portal, *statement;
	uint16_t nformats, nparams, nresult_formats;
	const uint8_t *formats, *result_formats; /* big-endian u16 each */
	struct pgp_value *params;                /* allocated: free() it */
	const uint32_t *types, *inferred;        /* not read: the statement's parameter types, if known */
	uint16_t ntypes;
};
int pgp_parse_bind(const struct pgp_msg *m, struct pgp_bind *ret) WUR;
/* The format (0 text, 1 binary) of parameter i. */
int pgp_bind_format(const struct pgp_bind *b, unsigned i);

struct pgp_target { /* 'D' Describe, 'C' Close: 'S' statement or 'P' portal */
	char what;
	const char *name;
};
int pgp_parse_target(const struct pgp_msg *m, struct pgp_target *ret) WUR;

struct pgp_execute { /* 'E' */
	const char *portal;
	uint32_t max_rows;
};
int pgp_parse_execute(const struct pgp_msg *m, struct pgp_execute *ret) WUR;

/* Checks a frontend message of any type: its body is what its type says.
 * 0; -EBADMSG malformed; -EPROTO a type a client never sends. */
int pgp_check_frontend(const struct pgp_msg *m) WUR;

/* --- backend messages -------------------------------------------------------- */

struct pgp_field {
	const char *name;
	uint32_t table_oid;
	int16_t attnum;
	uint32_t type_oid;
	int16_t typlen;
	int32_t typmod;
	int16_t format;
};

struct pgp_rowdesc { /* 'T' */
	uint16_t n;
	struct pgp_field *fields; /* allocated: free() it */
};
int pgp_parse_rowdesc(const struct pgp_msg *m, struct pgp_rowdesc *ret) WUR;

/* 'D': the values of a row, into vals (room for max). */
int pgp_parse_datarow(const struct pgp_msg *m, struct pgp_value *vals, uint16_t max, uint16_t *ret_n) WUR;

struct pgp_notice { /* 'E', 'N' */
	const char *severity, *code, *message;
};
int pgp_parse_notice(const struct pgp_msg *m, struct pgp_notice *ret) WUR;

/* 'K' */
int pgp_parse_keydata(const struct pgp_msg *m, uint32_t *ret_pid, uint32_t *ret_key) WUR;

/* Checks a backend message of any type, like pgp_check_frontend. */
int pgp_check_backend(const struct pgp_msg *m) WUR;

/* --- writing ----------------------------------------------------------------- */

/* Big-endian integers, as the protocol has them. */
static inline uint32_t pgp_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void pgp_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void pgp_add32(struct buf *out, uint32_t v)
{
	uint8_t b[4];

	pgp_put32(b, v);
	buf_add(out, b, 4);
}

static inline void pgp_add16(struct buf *out, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	buf_add(out, b, 2);
}

/* A value of a DataRow or Bind: its length (-1: NULL) and bytes. */
static inline void pgp_add_value(struct buf *out, const void *p, int32_t len)
{
	pgp_add32(out, (uint32_t)len);
	if (len > 0)
		buf_add(out, p, (size_t)len);
}

/* Appends an ErrorResponse: severity ("ERROR", "FATAL"), SQLSTATE, message. */
void pgp_error(struct buf *out, const char *severity, const char *sqlstate, const char *message);
/* Appends a message of type with body[0, n). */
void pgp_message(struct buf *out, char type, const void *body, size_t n);

#endif
