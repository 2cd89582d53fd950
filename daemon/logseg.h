/* logseg.h - the audit log's segment files: naming, listing, reading lines
 * from plain or gzip segments, and sealing (compressing) a full segment.
 *
 *   seg-<first seq, 20 digits>.jsonl      the active segment, or one not sealed yet
 *   seg-<first seq, 20 digits>.jsonl.gz   a sealed segment
 *   spare.seg                             a prefilled file, the next segment
 *
 * Segments are preallocated by filling them with newlines, so appending
 * overwrites blocks that exist and fdatasync flushes data only. The data
 * ends at the first empty line; everything after it must be filler. JSON
 * Lines readers (jq) skip the blank lines; sealed segments hold none. */
#ifndef CUSTOS_LOGSEG_H
#define CUSTOS_LOGSEG_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

#define SEG_NAME_MAX 48
#define SEG_FILL '\n'
#define SEG_SPARE "spare.seg"

/* What segreader_next found. */
enum {
	SEG_END = 0,  /* end of the data */
	SEG_LINE = 1, /* a line */
	SEG_TORN = 2, /* an unterminated last fragment */
	SEG_JUNK = 3, /* bytes other than filler after the end of the data */
};

struct seginfo {
	uint64_t first; /* sequence number of its first record */
	bool gz;
	char name[SEG_NAME_MAX];
};

void logseg_name(uint64_t first, bool gz, char ret[SEG_NAME_MAX]);
/* Segments of dir sorted by first sequence number, then plain before gz.
 * 0 or a negative errno. */
int logseg_list(const char *dir, struct seginfo **ret, size_t *ret_n) WUR;

struct segreader;
int segreader_open(int dirfd, const struct seginfo *s, struct segreader **ret) WUR;
/* Next line without its newline: one of SEG_*, or -E2BIG a line over the
 * limit, -EBADMSG corrupt compressed data, another negative errno.
 * *ret_off is the offset (uncompressed) of the line or of the junk. */
int segreader_next(struct segreader *r, const char **ret_line, size_t *ret_len, uint64_t *ret_off) WUR;
/* Goes on reading a plain (uncompressed) segment at off, the start of a
 * line; -EINVAL for a compressed one. */
int segreader_seek(struct segreader *r, uint64_t off) WUR;
/* From now on the data ends at the first empty line: SEG_END, without
 * reading the filler after it for junk. */
void segreader_trust_end(struct segreader *r);
void segreader_free(struct segreader *r);

/* Where the data of a segment ends (the offset of the filler). */
int logseg_data_end(int dirfd, const struct seginfo *s, uint64_t *ret) WUR;

/* Compresses the data of seg into seg.gz (through a temporary file,
 * fsynced, renamed) and removes the plain file. */
int logseg_seal(int dirfd, const struct seginfo *s) WUR;

/* Writes bytes of filler into name (via a temporary file), fsynced. */
int logseg_prefill(int dirfd, const char *name, uint64_t bytes) WUR;
/* Overwrites [from, to) of fd with filler and fdatasyncs. */
int logseg_fill(int fd, uint64_t from, uint64_t to) WUR;

#endif
