/* proxy.h - the proxy role (DESIGN.md, "The proxy"): applications connect
 * to it instead of PostgreSQL. One libevent loop per proxy process;
 * role_proxy.c runs it, proxy_startup.c takes a connection from startup
 * through TLS and authentication, proxy_conn.c carries it on, framing both
 * directions, and proxy_query.c follows the query
 * protocol: it analyses statements, matches results to the policy,
 * records every access, and holds back what the client may see until its
 * record is durable. */
#ifndef CUSTOS_PROXY_H
#define CUSTOS_PROXY_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "logclient.h"
#include "pgproto.h"
#include "proxy_policy.h"
#include "role.h"
#include "sqlinfo.h"

/* SQLSTATEs of the proxy's own refusals: class QC (implementation-defined,
 * documented in SECURITY.md). */
#define PX_ERR_ANALYSE "QC001"  /* the statement cannot be analysed */
#define PX_ERR_LOG "QC002"      /* the audit log cannot record the access */
#define PX_ERR_POLICY "QC003"   /* the policy cannot be loaded or matched */
#define PX_ERR_ENCRYPT "QC004"  /* a value cannot be encrypted on its way in */
#define PX_ERR_DECRYPT "QC005"  /* a value cannot be decrypted, or may not be read, on its way out */
#define PX_ERR_UPSTREAM "08006" /* connection_failure: PostgreSQL is unreachable */
#define PX_ERR_PROTOCOL "08P01" /* protocol_violation */

#define PX_HOLD_MAX (1u << 20)    /* held-back output per connection before a partial record */
#define PX_BUFFER_MAX (4u << 20)  /* unsent output before the other side stops being read */
#define PX_READ_CHUNK (16u << 10) /* the most one read of a socket takes */
#define PX_SEND_CHUNKS 16         /* the most buffer chunks one send takes */
#define PX_SEND_SMALL 1024        /* what one send takes in one piece */
#define PX_MAX_PIPELINE 65536     /* responses one connection may have outstanding */
#define PX_MAX_NAMED 4096         /* prepared statements and portals per connection */
#define PX_MAX_SUBJECTS 256       /* subjects named per record; beyond, counted */

enum px_sslmode { PX_SSL_DISABLE, PX_SSL_PREFER, PX_SSL_REQUIRE, PX_SSL_VERIFY_CA, PX_SSL_VERIFY_FULL };

struct px_stats {
	uint64_t accepted, active, refused_statements, protocol_errors, records, record_failures, statements,
	    bulk_alerts, cancels, cancels_lost;
};

struct pconn;
struct pcancel;

#define PX_TICKS_PER_S 10 /* the proxy's timer ticks every 100 ms */

struct proxy {
	struct role_env *env;
	struct event_base *base;
	struct logclient *lc;
	struct sqi_cache *sqi;
	struct keyprov *keys; /* data keys, from the keeper */
	struct ppol *pp;
	char pp_error[256]; /* why pp is NULL */
	bool pp_stale;      /* DDL ran: reload the catalog */
	unsigned pp_ticks;  /* since it was loaded (PX_TICKS_PER_S a second) */
	struct px_loader *loader;
	struct px_watch *watch;             /* hears of DDL made around the proxy */
	uint64_t loads_started, loads_done; /* catalog reads begun; the last that ended (read or failed) */
	SSL_CTX *tls, *up_tls;
	enum px_sslmode up_sslmode;
	char up_host[256];
	struct sockaddr_storage up_addr;
	socklen_t up_addrlen;
	struct evconnlistener *ls[CFG_MAX_LIST];
	size_t nls;
	struct pconn *conns;     /* a doubly linked list */
	struct pcancel *cancels; /* CancelRequests on their way to PostgreSQL (proxy_cancel.c) */
	uint64_t sessions;
	struct px_stats st;
	bool stopping;
	unsigned stop_ticks;
	int exit_code;
	struct event *tick, *parent_ev;
};

/* proxy_setup.c */
int px_upstream_init(struct proxy *px, char *err, size_t errlen) WUR;
int px_tls_init(struct proxy *px, char *err, size_t errlen) WUR;
/* proxy_startup.c */
void px_accept(struct proxy *px, evutil_socket_t fd, const struct sockaddr *sa, int salen);
/* proxy_conn.c */
void px_close_all(struct proxy *px, bool now); /* now: only once the loop has ended */
/* proxy_cancel.c: ends the cancels on their way (once the loop has ended) */
void px_cancels_free(struct proxy *px);
/* Keys have come from the keeper: the connections waiting on them go on. */
void px_keys_ready(void *px);
/* A catalog read has ended: the connections waiting for it go on. */
void px_catalog_read(struct proxy *px);

/* proxy_load.c: loads the policy and the catalog again, now (the loop
 * waits): 0, or -1 with the previous policy kept and why logged. */
int px_load_policy(struct proxy *px);
/* ... in the background, unless a load runs already or failed within the
 * last second; pp_stale stays set until one starts. */
void px_reload(struct proxy *px);
/* The same, for a session's DDL that just committed: the number of the
 * first load that starts after it (it ends when loads_done reaches it). */
uint64_t px_reload_after_now(struct proxy *px);
int px_loader_new(struct proxy *px);
void px_loader_free(struct proxy *px);

/* proxy_watch.c: listens for the database's notice of DDL (its event
 * trigger), and reads the catalog again at each; started again when the
 * configuration changes. 0 or -errno (logged; the minute's read stays). */
int px_watch_start(struct proxy *px);
void px_watch_stop(struct proxy *px);

#endif
