/* keyprov.h - where the audit log gets per-subject data keys and subject
 * refs. The log module only sees this interface; the keystore (keystore.c)
 * and the file provider below implement it. */
#ifndef CUSTOS_KEYPROV_H
#define CUSTOS_KEYPROV_H

#include <stdint.h>

#include "fieldcrypt.h"
#include "util.h"

#define SUBJECT_REF_LEN 32

struct keyprov {
	/* The data key for a subject, created on first use. 0 or -errno;
	 * -ENOKEY when the subject was erased and must not get a new key. */
	int (*subject_key)(struct keyprov *kp, const char *type, const char *id, struct fc_key *ret);
	/* The key with this id: 0, -ENOKEY when destroyed or unknown. */
	int (*key_by_id)(struct keyprov *kp, const uint8_t id[FC_KEYID_LEN], struct fc_key *ret);
	/* HMAC-SHA256 of "type:id" under the index key. */
	int (*subject_ref)(struct keyprov *kp, const char *type, const char *id,
	                   uint8_t ret[SUBJECT_REF_LEN]);
	void (*free)(struct keyprov *kp);
};

/* The file provider: one text file, mode 0600, holding the index key and
 * one line per subject key. It stands in for the keystore in tests and the
 * demo; erasing a subject removes its line (keyprov_file_shred). */
int keyprov_file_open(const char *path, struct keyprov **ret, char *err, size_t errlen) WUR;
int keyprov_file_shred(const char *path, const char *type, const char *id) WUR;

static inline void keyprov_free(struct keyprov *kp)
{
	if (kp)
		kp->free(kp);
}

#endif
