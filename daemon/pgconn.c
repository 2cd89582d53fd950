/* pgconn.c - see pgconn.h */
#include "pgconn.h"

PGconn *pgc_connect(const char *conninfo, const char *app, const char *encoding)
{
	/* in index order, the last word wins: conninfo (dbname, expanded)
	 * overrides the bounds, and the encoding overrides conninfo */
	static const char *const keys[] = { "connect_timeout",  "tcp_user_timeout",
		                            "keepalives_idle",  "keepalives_interval",
		                            "application_name", "dbname",
		                            "client_encoding",  NULL };
	const char *values[] = { "10", "60000", "30", "10", app, conninfo, encoding, NULL };

	return PQconnectdbParams(keys, values, 1);
}
