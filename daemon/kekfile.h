/* kekfile.h - the key-encryption-key file: the one piece of the key
 * hierarchy kept outside the database, so that a dump of the keystore is
 * useless once the epoch it was taken in has been rotated away.
 *
 * It holds the current epoch's KEK, wrapped under the master key, and
 * during a rotation the next one. The file has a fixed size and each slot
 * is overwritten in place (never renamed away), so a destroyed epoch's
 * wrapped key does not linger in a freed block of the file:
 *
 *   custos-kek 1 <32 hex: keystore id>\n
 *   epoch <10 digits> <122 hex: wrapped KEK>\n     (slot 0)
 *   epoch <10 digits> <122 hex: wrapped KEK>\n     (slot 1)
 *
 * An empty slot is 139 spaces and a newline. */
#ifndef CUSTOS_KEKFILE_H
#define CUSTOS_KEKFILE_H

#include <stddef.h>
#include <stdint.h>

#include "fieldcrypt.h"
#include "util.h"

#define KEK_SLOTS 2
#define KEK_ID_LEN 16
#define KEK_HEADER_LEN (sizeof("custos-kek 1 ") - 1 + 2 * KEK_ID_LEN + 1)
#define KEK_SLOT_LEN (sizeof("epoch ") - 1 + 10 + 1 + 2 * FC_WRAP_LEN + 1)
#define KEK_FILE_LEN (KEK_HEADER_LEN + KEK_SLOTS * KEK_SLOT_LEN)

struct kek_slot {
	uint32_t epoch; /* 0: empty */
	uint8_t wrapped[FC_WRAP_LEN];
};

struct kek_file {
	uint8_t keystore_id[KEK_ID_LEN];
	struct kek_slot slot[KEK_SLOTS];
};

/* Parses the file's bytes. 0, or -EINVAL with err naming the line. */
int kek_parse(const char *data, size_t len, struct kek_file *ret, char *err, size_t errlen) WUR;

/* Creates path (mode 0600, refusing to overwrite) holding one epoch. */
int kek_create(const char *path, const struct kek_file *f, char *err, size_t errlen) WUR;

/* Opens path for update, takes an exclusive lock on it (held until the fd
 * is closed) and reads it. Refuses a file readable by group or others.
 * Returns the fd, or a negative errno with err set. */
int kek_open(const char *path, struct kek_file *ret, char *err, size_t errlen) WUR;

/* Overwrites slot i in place and fdatasyncs. 0 or a negative errno. */
int kek_write_slot(int fd, unsigned i, const struct kek_slot *s) WUR;

#endif
