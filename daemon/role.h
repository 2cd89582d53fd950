/* role.h - custosd's processes (DESIGN.md, "Architecture"). The parent
 * forks one process per role, each with a channel to the parent and
 * channels to the roles it talks to (passed as IPC_PEER messages, again
 * after a restart). A role serves requests on its channels with
 * role_serve(); a malformed message is a fatal protocol error: the role
 * exits and the parent restarts it. */
#ifndef CUSTOS_ROLE_H
#define CUSTOS_ROLE_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "ipc.h"

#define ROLE_MAX_PEERS 8

struct role_env;
struct keyprov;

/* Handles one request from a peer (or the parent) and replies on fd.
 * Returns 0, or a negative errno to end the role. */
typedef int (*role_handler)(struct role_env *env, int fd, struct ipc_msg *m);

struct role_peer {
	char name[16];
	int fd;
};

struct role_env {
	const char *name;
	const char *config_path;
	struct cfg *cfg;
	int parent; /* the channel to the parent */
	struct role_peer peers[ROLE_MAX_PEERS];
	size_t npeers;
	uint8_t buf[IPC_MAX_MSG + 1];
	bool stopping;
	bool peers_changed; /* the poll set is stale */
	void *state;        /* the role's own */
	/* more descriptors the role polls, with a callback when one is ready */
	struct pollfd *extra;
	size_t nextra;
	int (*on_extra)(struct role_env *env, struct pollfd *p);
	int (*on_tick)(struct role_env *env); /* every tick_ms (default 1000; on_tick may change it) */
	unsigned tick_ms;
	role_handler handler; /* set by role_serve */
	struct keyprov *keys; /* the role's key cache (keyclient.h), dropped on IPC_KEYS_FLUSH */
};

struct role {
	const char *name;
	int (*main)(struct role_env *env); /* the process's exit status */
	bool audit_cap;                    /* keeps CAP_AUDIT_WRITE */
	unsigned secrets;                  /* the secret settings it uses (CFG_SECRET_*) */
};

extern const struct role role_logger, role_keeper, role_control, role_dsr, role_proxy;

/* Serves the parent's channel and the peers' until the parent says stop,
 * the parent's channel closes, or the handler fails. Answers IPC_PING and
 * IPC_KEYS_FLUSH, takes IPC_PEER and IPC_CONFIG itself (reparsing the
 * configuration). */
int role_serve(struct role_env *env, role_handler h);

/* Handles one message from the parent (a role with its own event loop
 * calls it): pings, peers, a new configuration (then h), stop. */
int role_from_parent(struct role_env *env, struct ipc_msg *m, role_handler h);

/* Tells the parent the role is ready. */
int role_ready(struct role_env *env);

/* The channel to a peer role, or -1. */
int role_peer(const struct role_env *env, const char *name);

/* Sends req on fd and waits up to timeout_ms for the reply with its id.
 * A role (env not NULL) waiting on its parent's channel handles what the
 * parent sends meanwhile (a new configuration, a ping, a peer). */
int role_call(struct role_env *env, int fd, struct ipc_msg *req, uint8_t *buf, struct ipc_msg *ret,
              int timeout_ms) WUR;
/* The same, with other handed whatever else arrives on fd meanwhile (the
 * parent: a child's pong). Late replies to earlier calls are dropped. */
int ipc_call(struct role_env *env, int fd, struct ipc_msg *req, uint8_t *buf, struct ipc_msg *ret,
             int timeout_ms, void (*other)(void *arg, struct ipc_msg *m), void *arg) WUR;

/* Messages to stderr with sd-daemon priority prefixes ("<3>custosd[logger]: ..."). */
void role_log(int prio, const char *role, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
