"""A private, throwaway PostgreSQL server for the integration tests.

    server = PgServer(); server.start()       # or: with PgServer() as server:
    server.psql("SELECT 1")                   # SQL text ...
    server.psql(Path("schemas/shop.sql"))     # ... or a file
    psycopg2.connect(server.dsn)
    server.stop()                             # stops it and removes every file

The cluster lives in a fresh temporary directory (initdb, fsync off), listens
on a Unix socket in that directory only (optionally also on 127.0.0.1 on a
free port, with a password), and trusts local socket connections as the
superuser "postgres". PostgreSQL refuses to run as root, so when the tests run
as root the cluster belongs to the system user "custos-test" (created with
useradd if missing) and initdb, pg_ctl run through runuser; clients (psql,
psycopg2) still run as the caller.

Fixtures for test modules (import them: `from pg import pg, shop_db  # noqa`):

    pg            the session's server (a PgServer), started on first use
    shop_db       a database (a Database) holding schemas/shop.sql and
                  scripts/shop-data.sql at 1,000 customers, shared by the
                  session: change it only inside a transaction rolled back
    shop_db_copy  a fresh copy of it for one test, dropped afterwards

Environment: CUSTOS_PG_BINDIR names the server binaries' directory (default:
the newest /usr/lib/postgresql/*/bin, else initdb on PATH); CUSTOS_PG_KEEP=1
leaves the data directory behind for inspection (the server is still stopped).
"""
import atexit
import glob
import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOP_SCHEMA = ROOT / "schemas" / "shop.sql"
SHOP_DATA = ROOT / "scripts" / "shop-data.sql"
TEST_USER = "custos-test"
SUPERUSER = "postgres"

# libpq settings that must not leak from the caller's environment
_PG_ENV = re.compile(r"^PG(HOST|HOSTADDR|PORT|DATABASE|USER|PASSWORD|PASSFILE|SERVICE|SERVICEFILE|OPTIONS|"
                     r"SSLMODE|TARGETSESSIONATTRS|SYSCONFDIR|CONNECT_TIMEOUT|APPNAME|DATA)$")


class PgError(RuntimeError):
    pass


def bindir():
    """The directory holding initdb, pg_ctl and postgres."""
    env = os.environ.get("CUSTOS_PG_BINDIR")
    if env:
        return Path(env)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(re.search(r"/(\d+)/bin/", p).group(1)))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PgError("PostgreSQL server binaries not found: install postgresql-15 "
                  "(or set CUSTOS_PG_BINDIR)")


def _clean_env():
    env = {k: v for k, v in os.environ.items() if not _PG_ENV.match(k)}
    env.update(LC_ALL="C.UTF-8", PGCLIENTENCODING="UTF8", PGTZ="UTC")
    return env


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sbin(name):
    return shutil.which(name) or f"/usr/sbin/{name}"


def _ensure_test_user():
    """The unprivileged system user that owns the cluster when we are root."""
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        pass
    p = subprocess.run([_sbin("useradd"), "--system", "--user-group", "--no-create-home",
                        "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                        "--comment", "Custos test databases", TEST_USER],
                       capture_output=True, text=True)
    try:  # another session may have created it meanwhile (useradd exits 9)
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        raise PgError(f"useradd {TEST_USER} failed: {p.stderr.strip()}") from None


class PgServer:
    """One PostgreSQL cluster in a temporary directory."""

    def __init__(self, tcp=False, settings=None):
        self.tcp = tcp
        self.settings = dict(settings or {})
        self.bin = bindir()
        self.as_user = None          # pwd entry of the cluster owner when we are root
        self.tmp = None
        self.port = None
        self.password = None         # for TCP connections only
        self.running = False

    # -- paths and connection strings -----------------------------------

    @property
    def datadir(self):
        return self.tmp / "data"

    @property
    def sockdir(self):
        return self.tmp / "sock"

    @property
    def logfile(self):
        return self.tmp / "postgres.log"

    def conninfo(self, dbname="postgres", tcp=False):
        """A libpq connection string (psycopg2.connect(), psql -d)."""
        if tcp:
            if not self.tcp:
                raise PgError("server was started without tcp=True")
            return (f"host=127.0.0.1 port={self.port} user={SUPERUSER} "
                    f"password={self.password} dbname={dbname}")
        return f"host={self.sockdir} port={self.port} user={SUPERUSER} dbname={dbname}"

    @property
    def dsn(self):
        return self.conninfo()

    # -- lifecycle ------------------------------------------------------

    def _run(self, *args, owner=False, check=True, timeout=120, **kw):
        """Runs a command, as the cluster owner when owner is set and we are root."""
        cmd = [str(a) for a in args]
        if owner and self.as_user:
            cmd = [_sbin("runuser"), "-u", TEST_USER, "--"] + cmd
        p = subprocess.run(cmd, capture_output=True, text=True, env=_clean_env(),
                           cwd=self.tmp, timeout=timeout, **kw)
        if check and p.returncode != 0:
            raise PgError(f"{' '.join(cmd)} exited {p.returncode}\n{p.stdout}\n{p.stderr}{self._log_tail()}")
        return p

    def _log_tail(self, lines=30):
        try:
            text = self.logfile.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\n--- postgres.log ---\n" + "\n".join(text) if text else ""

    def start(self):
        if self.running:
            return self
        if os.geteuid() == 0:
            self.as_user = _ensure_test_user()
        # The socket path must stay under ~100 bytes and, as root, be reachable
        # by the cluster owner: a short directory under /tmp.
        base = tempfile.gettempdir()
        if self.as_user or len(base) > 40:
            base = "/tmp"
        self.tmp = Path(tempfile.mkdtemp(prefix="custos-pg-", dir=base))
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        self.port = _free_port()
        self.password = secrets.token_hex(16)
        self.sockdir.mkdir(mode=0o700)
        pwfile = self.tmp / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self.as_user:
            for p in (self.tmp, self.sockdir, pwfile):
                os.chown(p, self.as_user.pw_uid, self.as_user.pw_gid)
        self._run(self.bin / "initdb", "-D", self.datadir, "-U", SUPERUSER, "--pwfile", pwfile,
                  "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
                  "--locale=C", "--no-sync", owner=True)
        pwfile.unlink()
        conf = {
            "listen_addresses": "'127.0.0.1'" if self.tcp else "''",
            "port": self.port,
            "unix_socket_directories": f"'{self.sockdir}'",
            "unix_socket_permissions": "0700",
            "max_connections": 50,
            "shared_buffers": "'128MB'",
            "work_mem": "'32MB'",
            "maintenance_work_mem": "'256MB'",
            # a throwaway cluster: speed over durability
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "wal_level": "minimal",
            "max_wal_senders": 0,
            "max_wal_size": "'2GB'",
            "checkpoint_timeout": "'30min'",
            "autovacuum": "off",
            "timezone": "'UTC'",
            "log_timezone": "'UTC'",
            "logging_collector": "off",
            "log_min_messages": "warning",
        }
        conf.update(self.settings)
        with open(self.datadir / "postgresql.conf", "a") as f:
            f.write("\n# custos tests (tests/integration/pg.py)\n")
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())
        self._run(self.bin / "pg_ctl", "start", "-w", "-t", "60", "-D", self.datadir,
                  "-l", self.logfile, owner=True)
        self.running = True

    def stop(self):
        """Stops the server and removes its directory; safe to call twice."""
        if self.tmp is None:
            return
        if self.running or (self.datadir / "postmaster.pid").exists():
            p = self._run(self.bin / "pg_ctl", "stop", "-w", "-t", "30", "-m", "immediate",
                          "-D", self.datadir, owner=True, check=False)
            if p.returncode != 0:
                self._kill_postmaster()
        self.running = False
        if os.environ.get("CUSTOS_PG_KEEP") != "1":
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp = None
        atexit.unregister(self.stop)

    def _kill_postmaster(self):
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGQUIT)
        except (OSError, ValueError, IndexError):
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- clients --------------------------------------------------------

    def psql(self, sql, dbname="postgres", vars=None, check=True, timeout=300, tuples=True):
        """Runs SQL text (str) or a file (a Path) with psql, stopping at the
        first error, which raises PgError; returns stdout (unaligned tuples
        only, unless tuples=False), or with check=False the CompletedProcess.
        vars are psql variables (-v name=value)."""
        if not self.running:
            raise PgError("server is not running")
        args = [self.psql_bin(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.conninfo(dbname)]
        if tuples:
            args += ["-A", "-t"]
        for k, v in (vars or {}).items():
            args += ["-v", f"{k}={v}"]
        if isinstance(sql, os.PathLike):
            args += ["-f", Path(sql).resolve()]
            stdin = None
        else:
            args += ["-f", "-"]
            stdin = sql
        p = subprocess.run([str(a) for a in args], input=stdin, capture_output=True, text=True,
                           env=_clean_env(), timeout=timeout)
        if check and p.returncode != 0:
            raise PgError(f"psql exited {p.returncode}\n{p.stderr}")
        return p.stdout if check else p

    def psql_bin(self):
        own = self.bin / "psql"
        return own if own.exists() else (shutil.which("psql") or "psql")

    def connect(self, dbname="postgres", **kw):
        import psycopg2
        return psycopg2.connect(self.conninfo(dbname), **kw)

    def createdb(self, name, template=None):
        tpl = f" TEMPLATE {quote_ident(template)}" if template else ""
        self.psql(f"CREATE DATABASE {quote_ident(name)}{tpl};")
        return Database(self, name)

    def dropdb(self, name):
        self.psql(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE);")


class Database:
    """One database of a PgServer."""

    def __init__(self, server, name):
        self.server, self.name = server, name

    @property
    def dsn(self):
        return self.server.conninfo(self.name)

    conninfo = dsn

    def psql(self, sql, **kw):
        return self.server.psql(sql, dbname=self.name, **kw)

    def connect(self, **kw):
        return self.server.connect(self.name, **kw)

    def load_shop(self, customers=1000):
        """Loads the shop schema and its sample data at the given scale."""
        self.psql(SHOP_SCHEMA)
        self.load_shop_data(customers)
        return self

    def load_shop_data(self, customers=1000):
        self.psql(SHOP_DATA, vars={"customers": customers})
        return self


def quote_ident(name):
    return '"' + name.replace('"', '""') + '"'


# -- pytest fixtures --------------------------------------------------------

_server = None
_shop = None
_names = itertools.count(1)


def _sigterm_as_interrupt():
    """pg_ctl detaches the server from our session, so a test run killed by
    SIGTERM (a CI timeout) would leave it running: treat SIGTERM like ^C,
    which pytest turns into an orderly stop that runs the cleanups."""
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL):
        def interrupt(signum, frame):
            raise KeyboardInterrupt("SIGTERM")
        signal.signal(signal.SIGTERM, interrupt)


def shared_server(config=None):
    """The session's server, started on first use and stopped at the end of
    the session (or at exit, ^C or SIGTERM), whether the tests passed or not."""
    global _server
    if _server is None or not _server.running:
        _sigterm_as_interrupt()
        _server = PgServer().start()
        if config is not None:
            config.add_cleanup(_server.stop)
    return _server


@pytest.fixture(scope="session")
def pg(request):
    """The session's private PostgreSQL server (a PgServer)."""
    return shared_server(request.config)


def shared_shop_db(config=None):
    """The session's shop database, loaded on first use."""
    global _shop
    server = shared_server(config)
    if _shop is None or _shop.server is not server:
        _shop = server.createdb(f"shop_{next(_names)}").load_shop(1000)
    return _shop


@pytest.fixture(scope="session")
def shop_db(request):
    """A database with the shop schema and 1,000 customers, shared by the
    session: change it only in a transaction that is rolled back, and close
    connections to it (shop_db_copy copies it, which needs it idle)."""
    return shared_shop_db(request.config)


@pytest.fixture
def shop_db_copy(request):
    """A private copy of the shop database for one test, dropped afterwards."""
    template = shared_shop_db(request.config)
    db = template.server.createdb(f"shop_copy_{next(_names)}", template=template.name)
    yield db
    db.server.dropdb(db.name)
