/* ipc.h - typed messages between custosd's roles, over SOCK_SEQPACKET
 * socketpairs (the kernel keeps message boundaries).
 *
 * A message is a header { u16 type, u16 nfields, u32 id } and fields, each
 * encoded by kind: u32 and u64 little-endian, i64 two's complement, a
 * string as u32 length + bytes (no NUL inside, at most IPC_MAX_STR), a hash
 * as 32 raw bytes, bytes as u32 length + bytes (NULs allowed, not
 * terminated). Every message type has a schema in the table in ipc.c:
 * a message whose type is unknown, whose fields do not match its schema,
 * or which carries a byte more or less than they need, is rejected; the
 * receiving role treats that as a fatal protocol error of its peer. */
#ifndef CUSTOS_IPC_H
#define CUSTOS_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "buf.h"
#include "util.h"

#define IPC_MAX_MSG (64u * 1024)
#define IPC_MAX_STR (32u * 1024)
#define IPC_MAX_FIELDS 16

/* IPC_KEYS_STATUS's fields that tell the last key rotation */
enum { KS_ROT_ID = 7, KS_ROT_RUNNING, KS_ROT_FAILED, KS_ROT_EPOCH, KS_ROT_REWRAPPED, KS_ROT_WHY };

enum ipc_type {
	IPC_ERROR = 1,      /* i64 -errno, s message */
	IPC_OK,             /* (no fields) */
	IPC_PING,           /* q sequence */
	IPC_PONG,           /* q sequence */
	IPC_LOG_APPEND,     /* a record and a security event: logmsg.h */
	IPC_LOG_APPENDED,   /* q seq */
	IPC_LOG_STATUS_REQ, /* (no fields) */
	IPC_LOG_STATUS, /* q head seq, h head hash, q checkpoints, q anchors ok, q anchors failed, q appended
	                 */
	IPC_KEYS_STATUS_REQ,
	IPC_KEYS_STATUS,  /* u epoch, q subject keys, q free keys, q shredded, q dead, q cache count, q cache
	                     limit; the last rotation: q id (0: none), q running, q failed, q epoch reached,
	                     q rewrapped, s why it failed */
	IPC_KEYS_ROTATE,  /* (no fields): start a rotation */
	IPC_KEYS_ROTATED, /* q the rotation's id: it runs; key status tells its end */
	IPC_RELOAD,       /* (no fields): control asks the parent */
	IPC_RELOADED,     /* i64 0 or -errno, s message */
	IPC_CONFIG,       /* s the configuration file's text: the parent tells a child */
	IPC_STOP,         /* (no fields): control asks the parent */
	IPC_ROLES_REQ,    /* (no fields) */
	IPC_ROLES,        /* s JSON array of roles, rendered by the parent */
	IPC_PEER,         /* s role: the attached fd is a channel to that role */
	IPC_KEYS_SUBJECT, /* s type, s id: the subject's data key (created on first use) */
	IPC_KEYS_SUBJECT_KEY, /* h ref, h key, h key id (16 bytes, zero-padded), q 1 when ref names the
	                         key's subject (0: a fresh key's, none) */
	IPC_KEYS_BY_ID,       /* h key id (zero-padded): that key, to decrypt with */
	IPC_KEYS_FRESH,       /* (no fields): a new key for a value of no known subject */
	IPC_KEYS_BIDX,        /* s table, s column: the key of that column's blind index */
	IPC_KEYS_BIDX_KEY,    /* h key */
	IPC_DSR_CALL,         /* s command, q caller's uid, s caller's name, s arguments (a JSON object) */
	IPC_DSR_RESULT,       /* s the result (JSON) */
	IPC_LOG_SIGN,      /* q request id, h digest: the dsr asks the logger to record and sign a report */
	IPC_LOG_SIGNED,    /* q seq of the report record, s signature (hex), s log id (hex) */
	IPC_KEYS_SHRED,    /* s type, s id, s key ids (32 hex each, concatenated): the dsr erases a subject */
	IPC_KEYS_SHREDDED, /* q keys destroyed */
	IPC_KEYS_REF,      /* s type, s id: the subject's ref, whether or not it has (or had) a key */
	IPC_KEYS_REF_IS,   /* h ref */
	IPC_KEYS_FLUSH,    /* (no fields): drop every cached data key (the dsr asks the parent, which asks
	                      the roles that cache keys; each answers IPC_OK once done) */
	IPC_LOG_BATCH,     /* b frames, each an IPC_LOG_APPEND (ipc_frame, ipc_unframe): many records, one
	                      message, one wakeup of the logger */
	IPC_TYPE_MAX
};

struct ipc_field {
	char kind; /* 'u', 'q', 'i', 's', 'h', 'b' */
	union {
		uint64_t u; /* 'u', 'q' */
		int64_t i;
		struct {
			const char *p; /* points into the message buffer, NUL-terminated */
			size_t len;
		} s;           /* 's' */
		uint8_t h[32]; /* 'h' */
		struct {
			uint8_t *p; /* points into the message buffer */
			size_t len;
		} b; /* 'b' */
	};
};

struct ipc_msg {
	enum ipc_type type;
	uint32_t id; /* matches a reply to its request */
	size_t nfields;
	struct ipc_field f[IPC_MAX_FIELDS];
	int fd; /* IPC_PEER: the descriptor passed along; ignored otherwise */
};

/* The name and field schema of a type ("ssssi", ...); NULL when unknown. */
const char *ipc_type_name(unsigned type);
const char *ipc_schema(unsigned type);

/* Decodes len bytes of buf (which must have one spare byte after them:
 * strings are NUL-terminated in place). 0, or -EBADMSG. */
int ipc_decode(uint8_t *buf, size_t len, struct ipc_msg *ret) WUR;

/* Encodes a message from fields matching the type's schema into out
 * (IPC_MAX_MSG bytes). Returns the length, or -EMSGSIZE / -EINVAL. */
ssize_t ipc_encode(const struct ipc_msg *m, uint8_t *out) WUR;

/* Sends / receives one message (an IPC_PEER message passes m->fd along;
 * ipc_send leaves it open). ipc_recv returns 0, -EPIPE when the peer
 * is gone, -EBADMSG for a malformed or oversized message, or a descriptor
 * on any type but IPC_PEER, or -errno. buf holds IPC_MAX_MSG + 1 bytes and
 * backs the strings of *ret. */
int ipc_send(int fd, const struct ipc_msg *m) WUR;
int ipc_recv(int fd, uint8_t *buf, struct ipc_msg *ret) WUR;
/* ipc_send with sendmsg flags (MSG_DONTWAIT: -EAGAIN when the channel is full). */
int ipc_send_flags(int fd, const struct ipc_msg *m, int flags) WUR;
/* The same with recvmsg flags (MSG_DONTWAIT: -EAGAIN when none waits). */
int ipc_recv_flags(int fd, uint8_t *buf, struct ipc_msg *ret, int flags) WUR;

/* Builders for the common shapes. */
static inline struct ipc_field ipc_str(const char *s)
{
	struct ipc_field f = { .kind = 's' };
	f.s.p = s ? s : "";
	f.s.len = strlen(f.s.p);
	return f;
}

static inline struct ipc_field ipc_u64(uint64_t v)
{
	return (struct ipc_field){ .kind = 'q', .u = v };
}

static inline struct ipc_field ipc_i64(int64_t v)
{
	return (struct ipc_field){ .kind = 'i', .i = v };
}

/* Sends n messages (none IPC_PEER) in as few system calls as the socket
 * allows (sendmmsg). 0 or -errno. */
#define IPC_MAX_BATCH 256
int ipc_send_many(int fd, const struct ipc_msg *ms, size_t n) WUR;

/* Messages inside one: a 'b' field of frames, each a u32 length, the
 * encoded message and a spare byte (its strings' terminator on decoding).
 * One message of frames carries hundreds of records: one system call to
 * send them and one wakeup of the receiver.
 *
 * ipc_frame appends m's frame to frames: 0, -EMSGSIZE when the frames
 * would no longer fit in one message (then send them, and frame m into
 * the next), or an encoding error. ipc_unframe decodes the frame at *at
 * of field b into *ret and moves *at past it: 1, 0 at the end, or
 * -EBADMSG. */
#define IPC_MAX_FRAMES (IPC_MAX_MSG - 12) /* a header and the field's length */
int ipc_frame(struct buf *frames, const struct ipc_msg *m) WUR;
int ipc_unframe(const struct ipc_field *b, size_t *at, struct ipc_msg *ret) WUR;

/* Sends IPC_ERROR(err, message) in reply to id. */
int ipc_send_error(int fd, uint32_t id, int err, const char *message) WUR;

#endif
