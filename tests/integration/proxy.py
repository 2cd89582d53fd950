"""A custosd with its proxy in front of a real PostgreSQL loaded with the
sample shop: the helpers the proxy tests share."""
import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import time

from conftest import CTL, ctl
from daemon import Daemon, ensure_user, need_root
from pg import PgServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POLICY = os.path.join(ROOT, "policies", "shop.yaml")


_keystores = itertools.count(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Shop:
    """A TCP PostgreSQL with a password (custosd runs as user custos, which
    may not enter the test clusters' socket directories) and the shop."""

    def __init__(self, customers=200, settings=None):
        need_root()
        self.server = PgServer(tcp=True, settings=settings).start()
        try:
            self.db = self.server.createdb("shop").load_shop(customers)
        except BaseException:
            self.server.stop()
            raise
        self.password = self.server.password
        self.proxies = []  # stopped with the shop, should a test not have

    def direct(self, dbname="shop"):
        return self.server.conninfo(dbname, tcp=True)

    def stop(self):
        try:
            for p in self.proxies:
                p.d.cleanup()
        finally:
            self.server.stop()

    def value(self, sql):
        """The first value of sql's result, read directly (not through a proxy)."""
        import psycopg2
        conn = psycopg2.connect(self.direct())
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchone()[0]
        finally:
            conn.close()


class Proxy:
    """custosd with a keystore, the shop policy and a proxy listener."""

    def __init__(self, shop, settings=None, tls=None, dbname="shop"):
        self.shop, self.dbname = shop, dbname
        self.port = free_port()
        base = {"listen": f"127.0.0.1:{self.port}", "database": shop.direct(dbname)}
        if tls:
            base.update(tls_cert=tls[0], tls_key=tls[1])
        self.d = Daemon({**base, **(settings or {})})
        shop.proxies.append(self)
        # custosd runs as custos: a checkout in a 0700 directory is out of its reach
        policy = self.d.dir / "shop.yaml"
        shutil.copy(POLICY, policy)
        os.chmod(policy, 0o644)
        self.d.settings.setdefault("policy", policy)
        key = self.d.dir / "master.key"
        key.write_text(os.urandom(32).hex() + "\n")
        key.chmod(0o400)
        kek = self.d.dir / "kek"
        self.ks_name = f"ks_{next(_keystores)}"
        shop.server.createdb(self.ks_name)
        keystore = shop.direct(self.ks_name)
        ctl("keys", "init", "--db", shop.direct(dbname), "--keystore", keystore, "--master-key", key,
            "--kek", kek, check=0)
        custos = ensure_user("custos")
        os.chown(key, custos.pw_uid, 0)
        reports = self.d.dir / "reports"  # subject requests' reports and certificates
        reports.mkdir()
        os.chown(reports, custos.pw_uid, 0)
        self.d.settings.update(master_key=key, kek_file=kek, keystore=keystore, report_dir=reports)
        self.d.write_conf()
        self.keyargs = ["--keystore", keystore, "--master-key", key, "--kek", kek]

    def encrypt_existing(self):
        """Encrypts the shop's plaintext in its encrypted columns (with this
        proxy's keystore), as an operator would before putting Custos in front."""
        p = ctl("encrypt-existing", "--db", self.shop.direct(self.dbname), "--policy", self.d.settings["policy"],
                *self.keyargs, check=0)
        assert "rows encrypted" in p.stdout
        return self

    def add_user(self, name, *roles):
        """A login role of the shop database (the shop's password), member of roles."""
        db = self.shop.server
        for r in roles:
            db.psql(f"DO $$BEGIN CREATE ROLE {r}; EXCEPTION WHEN duplicate_object THEN NULL; END$$",
                    dbname=self.dbname)
        member = f" IN ROLE {', '.join(roles)}" if roles else ""
        db.psql(f"CREATE ROLE {name} LOGIN PASSWORD '{self.shop.password}'{member};"
                f"GRANT USAGE ON SCHEMA shop TO {name};"
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA shop TO {name};"
                f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA shop TO {name}", dbname=self.dbname)

    def start(self):
        self.d.start()
        return self

    def dsn(self, dbname=None, user="postgres", **extra):
        dbname = dbname or self.dbname
        parts = {"host": "127.0.0.1", "port": self.port, "user": user,
                 "password": self.shop.password, "dbname": dbname, **extra}
        return " ".join(f"{k}={v}" for k, v in parts.items())

    def psql(self, sql, check=True, **extra):
        p = subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
                            self.dsn(**extra), "-c", sql],
                           capture_output=True, text=True, timeout=60)
        if check:
            assert p.returncode == 0, p.stderr
        return p

    def connect(self, **kw):
        import psycopg2
        return psycopg2.connect(self.dsn(**kw))

    def refused_keeping_reading(self, sql):
        """The error sql fails with (psycopg2's), standard_conforming_strings
        still on after it (asked in words that do not name it: those are refused)."""
        import psycopg2
        conn = self.connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                try:
                    cur.execute(sql)
                except psycopg2.Error as e:
                    err = e
                else:
                    raise AssertionError(f"not refused: {sql}")
                cur.execute("SELECT setting FROM pg_settings WHERE name LIKE 'standard%strings'")
                assert cur.fetchone()[0] == "on"
                cur.execute("SELECT set_config('app.user_id', '42', false)")  # others' settings go on
                return err
        finally:
            conn.close()

    def access(self, wait_for=None, timeout=10):
        """The access records; with wait_for, waits until that many exist."""
        deadline = time.time() + timeout
        while True:
            recs = self.d.records("access")
            if wait_for is None or len(recs) >= wait_for or time.time() > deadline:
                return recs
            time.sleep(0.1)

    def key_lock_waiters(self):
        """How many keystore transactions wait for a lock on the keys' table."""
        return int(self.shop.server.psql("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = "
                                         "'custos.data_keys'::regclass", dbname=self.ks_name))

    @contextlib.contextmanager
    def rotation_held(self):
        """`custosctl keys rotate`, started while this holds the keys' table:
        the rotation waits for the lock until the block ends. Yields its
        process (its output is piped)."""
        import psycopg2
        hold = psycopg2.connect(self.d.settings["keystore"])
        try:
            hold.cursor().execute("LOCK TABLE custos.data_keys IN ROW EXCLUSIVE MODE")
            rot = subprocess.Popen([str(CTL), "keys", "rotate"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env=dict(os.environ, CUSTOS_SOCKET=str(self.d.sock)))
            deadline = time.monotonic() + 20
            while not self.key_lock_waiters():
                assert time.monotonic() < deadline and rot.poll() is None  # the rotation waits for the lock
                time.sleep(0.1)
            yield rot
        finally:
            hold.rollback()
            hold.close()

    def log_text(self):
        out = b""
        for p in sorted(self.d.log.iterdir()):
            if p.name.startswith("seg-"):
                data = p.read_bytes()
                if p.name.endswith(".gz"):
                    import gzip
                    data = gzip.decompress(data)
                out += data
        return out

    def cleanup(self):
        self.d.cleanup()
        self.shop.proxies.remove(self)
        self.shop.server.dropdb(self.ks_name)
