/* seggz.h - the gzip form of a sealed segment.
 *
 * A sealed segment is a gzip file of members holding SEGGZ_MEMBER bytes
 * of the segment each (RFC 1952 allows any number; gzip, zcat and every
 * zlib reader read them as one stream). Members this small are inflated
 * whole by libdeflate into the reader's own buffer, about twice as fast as
 * zlib's streaming inflate, without a buffer the size of the segment:
 * verifying a log spends about as long inflating as hashing.
 *
 * The reader takes any gzip file. From the first member libdeflate cannot
 * take whole (a larger one, one with a header CRC, damaged data, a file
 * that is not gzip) it goes on with zlib's gzread, which also hands out
 * the bytes before a damaged spot. Bytes after the last member that do not
 * start another are ignored, as zlib ignores them; a file that ends inside
 * a member is an error. */
#ifndef CUSTOS_SEGGZ_H
#define CUSTOS_SEGGZ_H

#include <stdint.h>
#include <sys/types.h>

#include "util.h"

#define SEGGZ_MEMBER (1u << 20)

/* Compresses len bytes read from in (from its offset) into out. 0, -EIO
 * when in ends early, or a negative errno. */
int seggz_write(int in, int out, uint64_t len) WUR;

struct seggz;

/* Takes fd (closed by seggz_free, or here on failure). 0 or a negative
 * errno. */
int seggz_open(int fd, struct seggz **ret) WUR;

/* Up to cap inflated bytes into buf: their count, 0 at the end, -EBADMSG
 * for data that is not valid gzip, or a negative errno. A cap of at least
 * SEGGZ_MEMBER keeps to the fast path. */
ssize_t seggz_read(struct seggz *z, char *buf, size_t cap) WUR;

void seggz_free(struct seggz *z);

#endif
