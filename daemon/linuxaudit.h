/* linuxaudit.h - messages to the Linux audit trail (libaudit): checkpoint
 * anchors and security events (start, stop, reload, key rotation, refused
 * control requests, fail-closed trips, tamper found). Sending needs
 * CAP_AUDIT_WRITE in the initial user namespace and a kernel with audit. */
#ifndef CUSTOS_LINUXAUDIT_H
#define CUSTOS_LINUXAUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "logkey.h"
#include "util.h"

struct la {
	int fd; /* the audit netlink socket, or -1 */
	uint64_t sent, failed;
};

/* Opens the netlink socket. 0, or -errno (no audit support). */
int la_open(struct la *a) WUR;
void la_close(struct la *a);

/* Sends "op=<op> <fields>" as a trusted-application message. 0, or -EIO
 * when the kernel refused it: libaudit returns 0, not an error, when it
 * does, and this counts that as the failure it is. */
int la_send(struct la *a, const char *text, bool success) WUR;

/* Whether an auditd is running to receive messages (a process of that
 * name: the kernel tells only holders of CAP_AUDIT_CONTROL). */
bool la_auditd_running(struct la *a);

#endif
