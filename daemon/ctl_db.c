/* ctl_db.c - `custosctl db watch`: installs in the customer database the
 * event trigger that tells custosd of DDL at once (proxy_watch.c): at the
 * end of every DDL command, whoever runs it, a notification on channel
 * custos_catalog. Installing an event trigger takes a superuser. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>

#include <libpq-fe.h>

#include "ctl.h"
#include "pgconn.h"
#include "util.h"

static const char help[] =
    "Usage: custosctl db watch --db CONNINFO [--remove]\n"
    "Install in the customer database the event trigger custos_catalog, which tells\n"
    "custosd's proxy of every DDL command as it commits (NOTIFY custos_catalog), so that\n"
    "the proxy reads the catalog again at once: a view, a rename or a default made\n"
    "without passing through the proxy is then known within some tens of milliseconds,\n"
    "not at the next minute's read. Its function is custos_watch.catalog_changed(), in a\n"
    "schema of its own, made if missing and refused when owned by a role that is not a\n"
    "superuser (who could drop the trigger). DDL on temporary tables notifies nothing.\n"
    "Running it again makes both anew. Takes a superuser. While it is installed, DDL in a\n"
    "transaction prepared for two-phase commit (PREPARE TRANSACTION) fails: PostgreSQL\n"
    "does not prepare a transaction that has notified.\n"
    "Exits 0 when done, 2 on usage or database errors.\n\n"
    "  --db CONNINFO  the customer database (libpq connection string)\n"
    "  --remove       drop the trigger and its function instead\n";

/* The function is made anew, by the superuser running this: one of its
 * name made before by another role would keep that role as its owner,
 * who could then change what every DDL command runs, a superuser's too.
 * DDL on temporary tables only (a session's scratch tables) notifies
 * nothing: the proxy reads no session's temporary objects it has not
 * seen made. The schema is the function's alone: its owner could drop
 * the function, and the triggers with it. */
static const char install_sql[] =
    "SET client_min_messages = warning; BEGIN; "
    "DO $$BEGIN IF EXISTS (SELECT FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner "
    " WHERE n.nspname = 'custos_watch' AND NOT r.rolsuper) THEN RAISE EXCEPTION "
    " 'schema custos_watch is owned by a role that is not a superuser, who could drop the "
    "trigger: drop the schema, or give it to a superuser'; END IF; END$$; "
    "CREATE SCHEMA IF NOT EXISTS custos_watch; "
    "DROP EVENT TRIGGER IF EXISTS custos_catalog; "
    "DROP EVENT TRIGGER IF EXISTS custos_catalog_drop; "
    "DROP FUNCTION IF EXISTS custos_watch.catalog_changed() CASCADE; "
    "CREATE FUNCTION custos_watch.catalog_changed() RETURNS event_trigger "
    " LANGUAGE plpgsql SET search_path = pg_catalog AS $$BEGIN "
    "  IF TG_EVENT = 'sql_drop' THEN "
    "    IF EXISTS (SELECT FROM pg_event_trigger_dropped_objects() WHERE NOT is_temporary) THEN "
    "      PERFORM pg_notify('custos_catalog', ''); "
    "    END IF; "
    "  ELSIF EXISTS (SELECT FROM pg_event_trigger_ddl_commands() "
    "                WHERE schema_name IS NULL OR left(schema_name, 7) <> 'pg_temp') THEN "
    "    PERFORM pg_notify('custos_catalog', ''); "
    "  END IF; "
    " END$$; "
    "CREATE EVENT TRIGGER custos_catalog ON ddl_command_end EXECUTE FUNCTION custos_watch.catalog_changed(); "
    "CREATE EVENT TRIGGER custos_catalog_drop ON sql_drop EXECUTE FUNCTION custos_watch.catalog_changed(); "
    "COMMIT";

static const char remove_sql[] = "SET client_min_messages = warning; BEGIN; "
                                 "DROP EVENT TRIGGER IF EXISTS custos_catalog; "
                                 "DROP EVENT TRIGGER IF EXISTS custos_catalog_drop; "
                                 "DROP FUNCTION IF EXISTS custos_watch.catalog_changed(); "
                                 "COMMIT";

static int cmd_watch(int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' },
		                              { "db", required_argument, NULL, 'd' },
		                              { "remove", no_argument, NULL, 'r' },
		                              { 0 } };
	const char *db = NULL;
	bool remove = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(help, stdout);
			return 0;
		}
		if (c != 'd' && c != 'r')
			return ctl_usage_error("db watch: unexpected option");
		if (c == 'd')
			db = optarg;
		remove |= c == 'r';
	}
	if (!db || optind != argc)
		return ctl_usage_error("db watch: give --db CONNINFO and nothing else");
	PGconn *conn = pgc_connect(db, "custosctl db watch", NULL);
	PGresult *r =
	    PQstatus(conn) == CONNECTION_OK ? PQexec(conn, remove ? remove_sql : install_sql) : NULL;
	int code = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : EXIT_USAGE;
	if (code)
		fprintf(stderr, "custosctl: --db: %s", PQerrorMessage(conn));
	else
		printf(remove ? "event trigger custos_catalog removed\n"
		              : "event trigger custos_catalog installed: custosd hears of DDL at once\n");
	PQclear(r);
	PQfinish(conn);
	return code;
}

static const struct ctl_cmd db_cmds[] = {
	{ "watch", cmd_watch, "install the event trigger that tells custosd of DDL at once" },
};

const struct ctl_group ctl_db_group = {
	"db",
	db_cmds,
	ARRAY_SIZE(db_cmds),
	"the customer database's side of Custos",
};
