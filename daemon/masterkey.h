/* masterkey.h - the master key: 32 bytes from a file, or from systemd's
 * credentials directory ($CREDENTIALS_DIRECTORY/<name>, LoadCredential=).
 * The file holds the key raw (32 bytes) or as 64 hex digits and a newline;
 * a file readable by group or others is refused. The key goes to secure
 * memory; the read buffer is wiped. */
#ifndef CUSTOS_MASTERKEY_H
#define CUSTOS_MASTERKEY_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define MASTER_KEY_LEN 32

/* Loads the key from path, or, when path is NULL, from the credential
 * named cred. *ret is secure memory: free with secmem_free(.., 32).
 * 0; -EACCES readable by others; -EINVAL not a key; -ENOENT; -errno. */
int masterkey_load(const char *path, const char *cred, uint8_t **ret, char *err, size_t errlen) WUR;

#endif
