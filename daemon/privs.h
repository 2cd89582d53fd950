/* privs.h - what each custosd process may do.
 *
 * Started as root (outside systemd), custosd drops to its user keeping
 * only CAP_AUDIT_WRITE (libcap-ng); under systemd the unit does that.
 * Then each role gives up what it does not need: capabilities (only the
 * logger keeps CAP_AUDIT_WRITE), and, with Landlock, file access: only
 * the logger may write the log directory, only the keeper may read the
 * master key and the KEK file. */
#ifndef CUSTOS_PRIVS_H
#define CUSTOS_PRIVS_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "util.h"

/* Drops from root to uid/gid, keeping CAP_AUDIT_WRITE only. 0 or -errno. */
int privs_drop_user(uid_t uid, gid_t gid) WUR;

/* Clears every capability, or every one but CAP_AUDIT_WRITE. */
int privs_limit_caps(bool keep_audit) WUR;

/* Confines a role's file access with Landlock:
 *   logger  - reads everywhere except the master key and KEK file; writes only the log directory
 *   keeper  - reads everywhere, and the master key and KEK file; writes only the KEK file
 *   control - reads everywhere except the master key and KEK file; writes nothing
 * Returns 0, or -EOPNOTSUPP when the kernel has no Landlock (the caller
 * warns: the file rules then rest on permissions alone). */
int privs_sandbox(const char *role, const struct cfg *c) WUR;
bool privs_sandbox_supported(void);

#endif
