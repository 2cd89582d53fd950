/* control_log.h - reading and verifying the log for control clients, in
 * reader processes (control_log.c). */
#ifndef CUSTOS_CONTROL_LOG_H
#define CUSTOS_CONTROL_LOG_H

#include <stddef.h>

#include "ctlproto.h"

/* Starts a reader answering the client on fd (CP_LOG_READ with its
 * arguments, or CP_LOG_VERIFY); the caller then closes its own copy of
 * fd. 0, or -errno with err for the client (nothing was sent). */
int cls_start(const char *dir, int fd, enum cp_cmd cmd, const char *args, char *err, size_t errlen);
/* The filter of a log-read request's arguments (untrusted JSON): 0, its
 * type and subject_ref copies to free; or -EINVAL with err. */
struct lrd_filter;
int cls_filter(const char *args, struct lrd_filter *f, char *err, size_t errlen);
/* Reaps the readers that have ended (call it now and then). */
void cls_reap(void);

#endif
