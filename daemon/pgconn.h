/* pgconn.h - Custos's own connections to PostgreSQL (custosd's: the
 * catalog, the keystore, a subject's rows; custosctl's): a connection
 * that hangs is bounded, so that a server that stopped answering or a
 * lost network holds up no role or command for longer than a timeout. */
#ifndef CUSTOS_PGCONN_H
#define CUSTOS_PGCONN_H

#include <libpq-fe.h>

/* Connects with connect_timeout 10 s, tcp_user_timeout 60 s, keepalives
 * after 30 s idle every 10 s, and application_name app; what conninfo
 * sets wins. encoding, unless NULL, is the client encoding whatever
 * conninfo says. As PQconnectdbParams: NULL only out of memory, else a
 * connection whose PQstatus tells. */
PGconn *pgc_connect(const char *conninfo, const char *app, const char *encoding);

#endif
