/* reportsig.h - signed report directories: an access report or a deletion
 * certificate is a directory of files, a SHA256SUMS manifest of them (the
 * format of sha256sum, so `sha256sum -c SHA256SUMS` checks it too), and
 * SHA256SUMS.sig, a JSON object:
 *
 *   {"algorithm": "Ed25519", "log_id": HEX, "seq": N, "signature": HEX}
 *
 * The signature is the audit log's checkpoint key's over
 * "custos-report-v1" | log id | seq | SHA-256(SHA256SUMS) (logkey.h): the
 * record at seq in that log notes the same digest, so a report is tied to
 * its place in the tamper-evident log. Anyone with the log's public key
 * (log.pub) can check it, offline. */
#ifndef CUSTOS_REPORTSIG_H
#define CUSTOS_REPORTSIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "logkey.h"
#include "util.h"

#define RS_SUMS "SHA256SUMS"
#define RS_SIG "SHA256SUMS.sig"
#define RS_MAX_FILES 16
#define RS_MAX_NAME 64
#define RS_MAX_SUMS (RS_MAX_FILES * (64 + 2 + RS_MAX_NAME + 1))
#define RS_MAX_SIG 1024

struct rs_sums {
	size_t n;
	struct {
		char name[RS_MAX_NAME + 1];
		uint8_t sha256[32];
	} f[RS_MAX_FILES];
};

struct rs_sig {
	uint8_t log_id[LOG_ID_LEN];
	uint64_t seq;
	uint8_t sig[LOG_SIG_LEN];
};

/* Creates name in dirfd (0640, never over an existing file) with data,
 * durably. 0 or -errno. */
int rs_write_file(int dirfd, const char *name, const void *data, size_t len) WUR;
/* Writes SHA256SUMS for the files named (in dirfd) and returns the
 * manifest's own SHA-256: what gets signed. 0 or -errno. */
int rs_write_sums(int dirfd, const char *const *names, size_t n, uint8_t ret_digest[32]) WUR;
/* Writes SHA256SUMS.sig. */
int rs_write_sig(int dirfd, const struct rs_sig *s) WUR;

/* Parsers for what a verifier reads (untrusted): 0 or -EINVAL with err. */
int rs_parse_sums(const char *text, size_t len, struct rs_sums *ret, char *err, size_t errlen) WUR;
int rs_parse_sig(const char *text, size_t len, struct rs_sig *ret, char *err, size_t errlen) WUR;

/* Checks the directory: every file listed has its hash, every other file
 * is listed, and the signature is the key's. 0 intact; 1 not (why in
 * err); a negative errno when it cannot be read. */
int rs_verify(const char *dir, const struct logkeys *k, struct rs_sums *ret_sums, struct rs_sig *ret_sig,
              char *err, size_t errlen) WUR;

#endif
