"""DDL through the proxy: what it makes or changes over personal data is
followed before and after it commits, and what would let plaintext into
an encrypted column, or personal data out unrecorded, is refused."""
import time

import psycopg2
import pytest

from conftest import ctl
from proxy import Proxy, Shop
from wire import msg, raw_session, read_msg


def refused_in(sock, readies, text):
    """Reads up to the readies-th ReadyForQuery: an ErrorResponse among the
    messages, QC001 saying text."""
    seen = []
    while seen.count(b"Z") < readies:
        t, body = read_msg(sock)
        seen.append(t)
        if t == b"E":
            assert b"CQC001" in body and text in body, body
    assert b"E" in seen, seen


def proxy_for_ddl(s):
    """A proxy in front of shop s, with app1 (of shop_app) allowed to make views in schema shop."""
    p = Proxy(s)
    p.add_user("app1", "shop_app")
    p.start()
    s.server.psql("GRANT CREATE ON SCHEMA shop TO shop_app", dbname="shop")
    return p


def test_a_write_right_after_ddl_sees_the_catalog_after_it():
    """A session's statements after its DDL commits wait until the proxy
    has read the catalog again: a write through a view over a policy
    table, sent the moment the view is made, is refused like any other
    (it used to reach the server before the proxy knew the view, and put
    plaintext into an encrypted column)."""
    s = Shop(customers=5)
    try:
        p = proxy_for_ddl(s)
        c = p.connect(user="app1")  # not `with c`: psycopg2 2.9 opens a transaction there
        c.autocommit = True
        with c.cursor() as cur:
            for i in range(5):
                cur.execute(f"CREATE VIEW shop.fresh{i} AS SELECT * FROM shop.customers")
                with pytest.raises(psycopg2.Error) as e:
                    cur.execute(f"INSERT INTO shop.fresh{i} (email, name, country) "
                                "VALUES ('v@example.org', 'V', 'DE')")
                assert e.value.pgcode == "QC004", (i, e.value.pgerror)
        c.close()
        assert s.server.psql("SELECT count(*) FROM shop.customers WHERE email = 'v@example.org'",
                             dbname="shop").strip() == "0"
    finally:
        s.stop()


def test_what_ddl_makes_over_personal_data_waits_for_its_commit():
    """A view (or child table, or new name) that DDL makes over a policy
    table is known to the proxy once that DDL has committed: before then,
    in the same transaction or query string, a statement naming it is
    refused (it used to put plaintext into an encrypted column, and read
    through it unrecorded). DDL over other tables is not held up."""
    s = Shop(customers=5)
    try:
        p = proxy_for_ddl(s)
        insert = "INSERT INTO {} (email, name, country) VALUES ('v@example.org', 'V', 'DE')"
        refused = {
            "view, then a write": ["BEGIN", "CREATE VIEW shop.f1 AS SELECT * FROM shop.customers",
                                   insert.format("shop.f1")],
            "unqualified": ["BEGIN", "CREATE VIEW shop.f2 AS SELECT * FROM shop.customers",
                            "SET LOCAL search_path = shop", insert.format("f2")],
            "one string": ["CREATE VIEW shop.f3 AS SELECT * FROM customers; " + insert.format("shop.f3")],
            "view, then a read": ["BEGIN", "CREATE VIEW shop.f4 AS SELECT id, country FROM shop.customers",
                                  "SELECT country FROM shop.f4"],
            "view of that view": ["BEGIN", "CREATE VIEW shop.f5 AS SELECT * FROM shop.customers",
                                  "CREATE VIEW shop.f6 AS SELECT * FROM shop.f5", insert.format("shop.f6")],
            "child table": ["BEGIN", "CREATE TABLE shop.vip () INHERITS (shop.customers)",
                            insert.format("shop.vip")],
            "renamed column": ["BEGIN", "ALTER TABLE shop.customers RENAME COLUMN email TO mail",
                               insert.format("shop.customers").replace("email", "mail")],
            "renamed table": ["BEGIN", "ALTER TABLE shop.customers RENAME TO people",
                              insert.format("shop.people")],
            "moved table": ["BEGIN", "CREATE SCHEMA crm", "ALTER TABLE shop.customers SET SCHEMA crm",
                            insert.format("crm.customers")],
            "renamed schema": ["BEGIN", "ALTER SCHEMA shop RENAME TO store", insert.format("store.customers")],
        }
        for case, stmts in refused.items():
            c = p.connect(user="app1" if "VIEW" in " ".join(stmts) else "postgres")  # the owner alters
            c.autocommit = True
            with c.cursor() as cur:
                for q in stmts[:-1]:
                    cur.execute(q)
                with pytest.raises(psycopg2.Error) as e:
                    cur.execute(stmts[-1])
                assert e.value.pgcode == "QC001", (case, e.value.pgerror)
                assert "committed" in e.value.pgerror, case
            c.close()
        # DDL prepared in one transaction and executed in another: it makes
        # its view when it runs; a pipelined write after it is refused
        sock = raw_session(p.port, "app1", s.password)
        sock.sendall(msg(b"P", b"mk\0CREATE VIEW shop.f7 AS SELECT * FROM shop.customers\0\0\0") + msg(b"S"))
        assert [read_msg(sock)[0] for _ in range(2)] == [b"1", b"Z"]
        bare = b"\0" * 6  # Bind: no formats, parameters or result formats
        sock.sendall(msg(b"Q", b"BEGIN\0") + msg(b"B", b"\0mk\0" + bare) + msg(b"E", b"\0\0\0\0\0") +
                     msg(b"P", b"\0" + insert.format("shop.f7").encode() + b"\0\0\0") + msg(b"B", b"\0\0" + bare) +
                     msg(b"E", b"\0\0\0\0\0") + msg(b"S") + msg(b"Q", b"ROLLBACK\0"))
        refused_in(sock, 3, b"committed")
        sock.close()
        assert s.server.psql("SELECT count(*) FROM shop.customers WHERE email = 'v@example.org'",
                             dbname="shop").strip() == "0"
        for v in ("f1", "f2", "f3", "f4", "f5", "f6", "f7", "vip"):  # rolled back, or never made
            assert s.server.psql(f"SELECT to_regclass('shop.{v}') IS NULL", dbname="shop").strip() == "t", v
        # a migration over other tables, and one adding to a policy table, run as before
        c = p.connect(user="app1")
        c.autocommit = True
        with c.cursor() as cur:
            for q in ["BEGIN", "CREATE TABLE shop.migrations (v text)",
                      "CREATE VIEW shop.versions AS SELECT v FROM shop.migrations",
                      "INSERT INTO shop.migrations VALUES ('1')", "SELECT v FROM shop.versions",
                      "CREATE VIEW shop.names AS SELECT id, name FROM shop.customers",
                      "INSERT INTO shop.migrations VALUES ('2')", "COMMIT"]:
                cur.execute(q)
            cur.execute("SELECT count(*) FROM shop.versions")
            assert cur.fetchone()[0] == 2
            # once committed, the view reads as its table does, and is not written through
            cur.execute("SELECT name FROM shop.names WHERE id = 2")
            assert not cur.fetchone()[0].startswith("cx1.")
            with pytest.raises(psycopg2.Error) as e:
                cur.execute("INSERT INTO shop.names (name) VALUES ('V')")
            assert e.value.pgcode == "QC004", e.value.pgerror
        c.close()
    finally:
        s.stop()


def test_what_ddl_makes_is_followed_through_schemas_code_and_prepared_statements():
    """The ways around the refusal above that a review found, each of which
    put plaintext into shop.customers: a view made as an element of CREATE
    SCHEMA, or in pg_temp named as pg_temp_N; a policy table attached as a
    partition or made to inherit, written through the parent; a routine
    written before, or a DO block, writing through a view made in the
    transaction; a statement prepared before the DDL; PREPARE TRANSACTION.
    And a policy table renamed is still the policy table."""
    s = Shop(customers=5, settings={"max_prepared_transactions": 2})
    try:
        s.server.psql("CREATE FUNCTION shop.w(e text) RETURNS void LANGUAGE plpgsql AS "
                      "$$BEGIN INSERT INTO shop.f9 (email, name, country) VALUES (e, 'P', 'DE'); END$$; "
                      "CREATE TABLE shop.plain (email text, name text, country char(2)); "
                      "CREATE VIEW shop.fv AS SELECT email, name, country FROM shop.plain; "
                      "GRANT ALL ON shop.plain, shop.fv TO PUBLIC; CREATE ROLE shop_app; "
                      "ALTER TABLE shop.customers ADD COLUMN note text; "
                      "ALTER VIEW shop.fv OWNER TO shop_app", dbname="shop")
        p = proxy_for_ddl(s)
        values = "(email, name, country) VALUES ('v@example.org', 'V', 'DE')"

        def refused(user, *stmts, last=None):
            c = p.connect(user=user)
            c.autocommit = True
            with c.cursor() as cur:
                for q in stmts:
                    cur.execute(q)
                with pytest.raises(psycopg2.Error) as e:
                    cur.execute(last(cur) if callable(last) else last)
                assert e.value.pgcode == "QC001", (stmts, e.value.pgerror)
            c.close()
            return e.value.pgerror

        refused("postgres", "BEGIN", "CREATE SCHEMA crm CREATE VIEW v AS SELECT * FROM shop.customers",
                last=f"INSERT INTO crm.v {values}")

        def temp_name(cur):
            cur.execute("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()")
            return f"INSERT INTO {cur.fetchone()[0]}.v {values}"
        refused("app1", "BEGIN", "CREATE VIEW pg_temp.v AS SELECT * FROM shop.customers", last=temp_name)
        refused("postgres", "BEGIN", "CREATE TABLE shop.allc (LIKE shop.customers) PARTITION BY LIST (country)",
                "ALTER TABLE shop.allc ATTACH PARTITION shop.customers DEFAULT",
                last="INSERT INTO shop.allc (id, email, name, country, created_at) "
                     "VALUES (9001, 'v@example.org', 'V', 'DE', now())")
        refused("postgres", "BEGIN", "CREATE TABLE shop.par (name text)",
                "ALTER TABLE shop.customers INHERIT shop.par", last="UPDATE shop.par SET name = 'V'")
        refused("app1", "BEGIN", "CREATE VIEW shop.f9 AS SELECT * FROM shop.customers",
                last="SELECT shop.w('v@example.org')")
        refused("app1", f"PREPARE ins AS INSERT INTO shop.fv {values}", "BEGIN",
                "CREATE OR REPLACE VIEW shop.fv AS SELECT email, name, country FROM shop.customers",
                last="EXECUTE ins")
        refused("app1", "BEGIN", last="DO $$BEGIN CREATE VIEW shop.f11 AS SELECT * FROM shop.customers; END$$")
        refused("app1", "BEGIN", "CREATE VIEW shop.f20 AS SELECT * FROM shop.customers",
                last="PREPARE TRANSACTION 'x'")
        views = [f"CREATE VIEW shop.m{i} AS SELECT id FROM shop.customers" for i in range(256)]
        assert "at most 256" in refused("app1", "BEGIN", *views, last="CREATE VIEW shop.m256 AS SELECT 1 "
                                        "FROM shop.customers")
        assert s.server.psql("SELECT count(*) FROM shop.customers WHERE email = 'v@example.org' OR "
                             "name = 'V'", dbname="shop").strip() == "0"
        refused("postgres", "BEGIN", "ALTER TABLE shop.customers DROP COLUMN phone",
                "ALTER TABLE shop.customers ADD COLUMN phone text",
                last="UPDATE shop.customers SET phone = '+49 30 0' WHERE id = 1")
        # a column the policy does not name, renamed or added: the table is used on in the transaction
        c = p.connect()
        c.autocommit = True
        with c.cursor() as cur:
            for q in ("BEGIN", "ALTER TABLE shop.customers RENAME COLUMN note TO remark",
                      "ALTER TABLE shop.customers ADD COLUMN extra int", "SELECT count(*) FROM shop.customers",
                      "ROLLBACK"):
                cur.execute(q)
            # committed: a parent of a policy table is written as the policy table; a renamed
            # encrypted column is still encrypted; a renamed table keeps its subject column
            for q in ("ALTER TABLE shop.customers RENAME COLUMN phone TO phone_number",
                      "ALTER TABLE shop.addresses RENAME TO addrs",
                      "CREATE TABLE shop.allc (LIKE shop.customers) PARTITION BY LIST (country)",
                      "ALTER TABLE shop.allc ATTACH PARTITION shop.customers DEFAULT",
                      "GRANT ALL ON shop.allc TO shop_app"):
                cur.execute(q)
        c.close()
        app = p.connect(user="app1")
        app.autocommit = True
        with app.cursor() as cur:
            cur.execute("INSERT INTO shop.allc (id, email, name, country, created_at) "
                        "VALUES (9001, 'a@example.org', 'A', 'DE', now())")
            cur.execute("UPDATE shop.customers SET phone_number = '+49 30 1' WHERE id = 1")
            cur.execute("INSERT INTO shop.addrs (customer_id, kind, street, city, postal_code, country) "
                        "VALUES (2, 'billing', 'Street 1', 'City', '10115', 'DE')")
        app.close()
        assert s.server.psql("SELECT email || ' ' || phone_number FROM shop.customers WHERE id IN (9001, 1) "
                             "ORDER BY id", dbname="shop").split() != []
        for sql in ("SELECT email FROM shop.customers WHERE id = 9001",
                    "SELECT phone_number FROM shop.customers WHERE id = 1",
                    "SELECT street FROM shop.addrs ORDER BY id DESC LIMIT 1"):
            assert s.server.psql(sql, dbname="shop").startswith("cx1."), sql
        rec = [r for r in p.access(wait_for=1) if r["object"]["table"] == "shop.addrs"]
        assert len(rec) == 1 and len(rec[0]["subjects"]) == 1, rec
        c = p.connect()
        c.autocommit = True
        with c.cursor() as cur:
            for q in ("ALTER TABLE shop.allc DETACH PARTITION shop.customers", "DROP TABLE shop.allc"):
                cur.execute(q)
        c.close()
        refused("postgres", "BEGIN", "ALTER TABLE shop.customers RENAME COLUMN phone_number TO tel",
                last="UPDATE shop.customers SET tel = '+49 30 2' WHERE id = 1")
        refused("app1", last="DO $$BEGIN CREATE TEMP VIEW w AS SELECT * FROM shop.customers; "
                             f"INSERT INTO w {values}; END$$")
        c = p.connect(user="app1")  # temporary views, named as pg_temp too, are views like others
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute("CREATE TEMP VIEW tv AS SELECT * FROM shop.customers")
            for name in ("tv", "pg_temp.tv"):
                with pytest.raises(psycopg2.Error) as e:
                    cur.execute(f"INSERT INTO {name} {values}")
                assert e.value.pgcode == "QC004", e.value.pgerror
        c.close()
        # DDL as a named statement runs; a statement prepared before another session's DDL
        # changed what it names is refused
        sock = raw_session(p.port, "postgres", s.password)
        sock.sendall(msg(b"P", b"d\0CREATE VIEW shop.v2 AS SELECT id, email FROM shop.customers\0\0\0") +
                     msg(b"B", b"\0d\0" + b"\0" * 6) + msg(b"E", b"\0\0\0\0\0") + msg(b"S"))
        seen = []
        while b"Z" not in seen:
            seen.append(read_msg(sock)[0])
        assert b"E" not in seen, seen
        sock.sendall(msg(b"P", b"\0" + f"INSERT INTO shop.fv {values}".encode() + b"\0\0\0") + msg(b"S"))
        assert [read_msg(sock)[0] for _ in range(2)] == [b"1", b"Z"]
        other = p.connect(user="app1")
        other.autocommit = True
        with other.cursor() as cur:
            cur.execute("CREATE OR REPLACE VIEW shop.fv AS SELECT email, name, country FROM shop.customers")
            cur.execute("SELECT 1")  # after the catalog read that its DDL started
        other.close()
        sock.sendall(msg(b"B", b"\0\0" + b"\0" * 6) + msg(b"E", b"\0\0\0\0\0") + msg(b"S"))
        refused_in(sock, 1, b"prepare it again")
        sock.close()
        # a named statement prepared on a table whose name then goes to the policy table
        sock = raw_session(p.port, "postgres", s.password)
        ins = f"INSERT INTO shop.plain {values}".encode()
        sock.sendall(msg(b"P", b"ins\0" + ins + b"\0\0\0") + msg(b"S"))
        assert [read_msg(sock)[0] for _ in range(2)] == [b"1", b"Z"]
        sock.sendall(msg(b"Q", b"DROP VIEW shop.fv; ALTER TABLE shop.plain RENAME TO plain_old; "
                               b"ALTER TABLE shop.customers RENAME TO plain\0"))
        while read_msg(sock)[0] != b"Z":
            pass
        sock.sendall(msg(b"B", b"\0ins\0" + b"\0" * 6) + msg(b"E", b"\0\0\0\0\0") + msg(b"S"))
        refused_in(sock, 1, b"prepare it again")
        sock.close()
        # the policy table renamed is still the policy table: what is written into it is encrypted
        app = p.connect(user="app1")
        app.autocommit = True
        with app.cursor() as cur:
            cur.execute("INSERT INTO shop.plain (email, name, country) VALUES ('r@example.org', 'R', 'DE')")
            cur.execute("SELECT email FROM shop.plain WHERE email = 'r@example.org'")
            assert cur.fetchone()[0] == "r@example.org"
        app.close()
        stored = s.server.psql("SELECT email FROM shop.plain ORDER BY id DESC LIMIT 1", dbname="shop")
        assert stored.startswith("cx1."), stored
        assert s.server.psql("SELECT count(*) FROM shop.plain WHERE email = 'r@example.org'",
                             dbname="shop").strip() == "0"
    finally:
        s.stop()


def test_a_table_that_inherits_a_policy_table_is_that_table():
    """A child table (INHERITS, or a partition: both are pg_inherits) of a
    policy table holds that table's rows (a read of the parent returns
    them): the proxy encrypts what is written into it, decrypts what is
    read from it, and records both with their subjects, as for the parent
    (it used to store plaintext there)."""
    s = Shop(customers=5)
    try:
        s.server.psql("CREATE TABLE shop.vip (since date, referred_by bigint REFERENCES shop.customers) "
                      "INHERITS (shop.customers); CREATE TABLE shop.vvip () INHERITS (shop.vip); "
                      "CREATE TABLE shop.named (name text); ALTER TABLE shop.customers INHERIT shop.named; "
                      "CREATE TABLE shop.products (sku text) INHERITS (shop.named); "
                      "GRANT ALL ON shop.products, shop.named TO PUBLIC", dbname="shop")
        p = Proxy(s)
        p.add_user("app1", "shop_app")
        p.add_user("clerk")
        p.start()
        app = p.connect(user="app1")
        app.autocommit = True
        with app.cursor() as cur:
            for i, t in ((1000, "vip"), (1001, "vvip")):
                cur.execute(f"INSERT INTO shop.{t} (id, email, name, country, referred_by) "
                            f"VALUES ({i}, 'c{i}@example.org', 'C', 'DE', 1)")
                cur.execute(f"SELECT email FROM shop.{t} WHERE id = {i}")
                assert cur.fetchone()[0] == f"c{i}@example.org"
            cur.execute("SELECT email FROM shop.customers WHERE id IN (1000, 1001) ORDER BY id")
            assert [r[0] for r in cur.fetchall()] == ["c1000@example.org", "c1001@example.org"]
            # a table the policy table inherits is written as it is; another of its children is not
            cur.execute("INSERT INTO shop.named (name) VALUES ('N'); INSERT INTO shop.products VALUES ('P', 'S')")
        app.close()
        assert s.server.psql("SELECT name FROM ONLY shop.named", dbname="shop").startswith("cx1.")
        assert s.server.psql("SELECT name FROM shop.products", dbname="shop").strip() == "P"
        stored = s.server.psql("SELECT email FROM shop.vip ORDER BY id", dbname="shop").split()
        assert len(stored) == 2 and all(e.startswith("cx1.") for e in stored), stored
        clerk = p.connect(user="clerk")
        with clerk.cursor() as cur:
            cur.execute("SELECT email FROM shop.vvip")
            assert "@" not in cur.fetchone()[0]
        clerk.close()
        recs = [r for r in p.access(wait_for=7) if r["object"]["table"] != "shop.named"]
        assert len(recs) == 6, recs
        refs = {}  # by table: the subject its insert and its read by id name
        for r in recs:
            if "WHERE id = " in r["stmt"] or r["stmt"].startswith("INSERT"):
                refs.setdefault(r["object"]["table"], set()).update(x["ref"] for x in r["subjects"])
        assert set(refs) == {"shop.vip", "shop.vvip"} and all(len(v) == 1 for v in refs.values()), refs
        parent = [r for r in recs if r["object"]["table"] == "shop.customers"]
        assert len(parent) == 1 and {x["ref"] for x in parent[0]["subjects"]} == set().union(*refs.values())
        assert [r["rows"] for r in recs if r["stmt"] == "SELECT email FROM shop.vvip"] == [1]
    finally:
        s.stop()


def test_a_default_on_an_encrypted_column_is_refused():
    """PostgreSQL fills in a column's default itself, unencrypted. DDL
    through the proxy that gives an encrypted column a default (or adds
    one with a default, which fills every row, or makes it generated) is
    refused; where the catalog shows such a default made elsewhere, the
    column's own or its domain's, an INSERT or COPY that leaves the column
    to it is refused (QC004). Defaults of NULL and of other columns go
    through. (SET DEFAULT used to store its constant in the clear.)"""
    import io
    s = Shop(customers=5)
    try:
        s.server.psql('CREATE DOMAIN shop."birth.day" AS text; CREATE SCHEMA other; '
                      'CREATE DOMAIN other."birth.day" AS text; CREATE DOMAIN shop.tel AS text DEFAULT \'1\'; '
                      'ALTER TABLE shop.customers ALTER COLUMN date_of_birth TYPE shop."birth.day"; '
                      'ALTER DOMAIN shop."birth.day" SET DEFAULT \'1970-01-01\'; '
                      "ALTER TABLE shop.customers ALTER COLUMN phone SET DEFAULT '+353 1 000 0000'",
                      dbname="shop")
        p = Proxy(s).start()
        c = p.connect()
        c.autocommit = True

        def refused(sql, copy=None):
            with c.cursor() as cur:
                with pytest.raises(psycopg2.Error) as e:
                    if copy:
                        cur.copy_expert(sql, io.StringIO(copy))
                    else:
                        cur.execute(sql)
            assert e.value.pgcode == "QC004", (sql, e.value.pgerror)
            assert "encrypted column shop.customers." in e.value.pgerror, e.value.pgerror

        for sql in ("ALTER TABLE shop.customers ALTER COLUMN email SET DEFAULT 'x@example.org'",
                    "ALTER TABLE customers ALTER name SET DEFAULT 'N'::text",
                    "ALTER TABLE shop.customers DROP COLUMN phone, ADD COLUMN phone text DEFAULT '1'",
                    "ALTER TABLE shop.customers DROP COLUMN phone, "
                    "ADD COLUMN phone text GENERATED ALWAYS AS (country) STORED",
                    "ALTER DOMAIN shop.\"birth.day\" SET DEFAULT '2000-01-01'",
                    "BEGIN; ALTER TABLE shop.customers RENAME TO gone; "
                    "CREATE TABLE shop.customers (id bigint, name text DEFAULT 'N'); COMMIT",
                    # a new type computes every value; a domain or serial brings a default
                    "ALTER TABLE shop.customers ALTER COLUMN phone TYPE varchar(40) USING '+353 1 555 0100'",
                    "ALTER TABLE shop.customers DROP COLUMN phone, ADD COLUMN phone shop.tel",
                    "ALTER TABLE shop.customers DROP COLUMN phone, ADD COLUMN phone serial",
                    "DO $$BEGIN ALTER TABLE shop.customers ALTER COLUMN phone SET DEFAULT '1'; END$$",
                    "CREATE TABLE shop.vip (phone text DEFAULT '1') INHERITS (shop.customers)"):
            refused(sql)
        with c.cursor() as cur:
            cur.execute("ROLLBACK")
            cur.execute('ALTER DOMAIN other."birth.day" SET DEFAULT \'x\'; '  # another schema's domain
                        "CREATE SCHEMA crm CREATE TABLE customers (email text DEFAULT ''); DROP SCHEMA crm CASCADE")
            cur.execute("ALTER TABLE shop.customers ALTER COLUMN email SET DEFAULT NULL; "
                        "ALTER TABLE shop.customers ALTER COLUMN country SET DEFAULT 'IE'; "
                        "INSERT INTO shop.orders (customer_id, total_cents, currency) VALUES (1, 100, 'EUR')")
        # the defaults made directly: phone's own, and date_of_birth's domain's
        refused("INSERT INTO shop.customers (id, email, name, country, phone) "
                "VALUES (100, 'a100@example.org', 'A', 'IE', '1')")
        refused("INSERT INTO shop.customers (id, email, name, date_of_birth) "
                "VALUES (101, 'a101@example.org', 'A', '1990-01-01')")
        refused("COPY shop.customers (id, email, name, country, date_of_birth) FROM STDIN",
                "102\ta102@example.org\tA\tIE\t1990-01-01\n")
        with c.cursor() as cur:
            cur.execute("INSERT INTO shop.customers (id, email, name, phone, date_of_birth) "
                        "VALUES (103, 'a103@example.org', 'A', '1', '1990-01-01')")
            cur.copy_expert("COPY shop.customers (id, email, name, phone, date_of_birth) FROM STDIN",
                            io.StringIO("104\ta104@example.org\tA\t1\t1990-01-01\n"))
            cur.execute("SELECT country FROM shop.customers WHERE id = 103")
            assert cur.fetchone() == ("IE",)  # the default of a column not encrypted
        c.close()
        rows = s.server.psql("SELECT id, email, phone, date_of_birth FROM shop.customers WHERE id >= 100 "
                             "ORDER BY id", dbname="shop").split()
        assert len(rows) == 2, rows
        for r in rows:
            assert all(v.startswith("cx1.") for v in r.split("|")[1:]), r
        assert s.server.psql("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'shop' "
                             "AND table_name = 'customers' AND column_default IS NOT NULL "
                             "AND column_name IN ('email', 'name')", dbname="shop").strip() == "0"
    finally:
        s.stop()


def test_a_statement_prepared_before_a_default_is_prepared_again():
    """A named statement prepared while an encrypted column had no default,
    and executed once the catalog shows one, is refused until prepared
    again: it leaves the column to the default, which PostgreSQL would
    store unencrypted (it used to)."""
    import struct
    s = Shop(customers=5)
    try:
        p = Proxy(s).start()
        sock = raw_session(p.port, "postgres", s.password)
        sql = b"INSERT INTO shop.customers (id, email, name, country) VALUES ($1, $2, $3, $4)"
        sock.sendall(msg(b"P", b"ins\0" + sql + b"\0\0\0") + msg(b"S"))
        assert [read_msg(sock)[0] for _ in range(2)] == [b"1", b"Z"]
        s.server.psql("ALTER TABLE shop.customers ALTER COLUMN phone SET DEFAULT '+353 1 555 0100'",
                      dbname="shop")
        c = p.connect()
        c.autocommit = True
        with c.cursor() as cur:  # DDL through the proxy: the catalog is read again
            cur.execute("CREATE TABLE shop.scratch (a int)")
            cur.execute("SELECT 1")
        c.close()
        values = [b"800", b"p@example.org", b"P", b"IE"]
        bind = b"\0ins\0" + struct.pack("!HH", 0, len(values))
        for v in values:
            bind += struct.pack("!i", len(v)) + v
        sock.sendall(msg(b"B", bind + struct.pack("!H", 0)) + msg(b"E", b"\0\0\0\0\0") + msg(b"S"))
        refused_in(sock, 1, b"prepare it again")
        sock.close()
        assert s.server.psql("SELECT count(*) FROM shop.customers WHERE id = 800", dbname="shop").strip() == "0"
    finally:
        s.stop()


def test_a_table_that_inherits_two_policy_tables_is_not_written():
    """A table inheriting two policy tables holds both one's and the
    other's personal data, keyed and bound as neither: writes into it are
    refused (QC004), and so are writes into a table two policy tables
    inherit (it used to be taken as the first policy table's alone, and
    the other's encrypted columns stored in the clear)."""
    s = Shop(customers=5)
    try:
        s.server.psql("CREATE TABLE shop.both () INHERITS (shop.customers, shop.payments); "
                      "CREATE TABLE shop.both2 () INHERITS (shop.both); "
                      "CREATE TABLE shop.sale () INHERITS (shop.orders, shop.payments); "
                      "CREATE TABLE shop.base (id bigint); ALTER TABLE shop.customers INHERIT shop.base; "
                      "ALTER TABLE shop.payments INHERIT shop.base", dbname="shop")
        p = Proxy(s).start()
        c = p.connect()
        c.autocommit = True
        for sql in ("INSERT INTO shop.both (id, email, name, country, order_id, method, card_last4, "
                    "billing_address, amount_cents) VALUES (500, 'b@example.org', 'B', 'IE', 1, 'card', "
                    "'4242', '1 Main St', 100)",
                    "UPDATE shop.both SET card_last4 = '4242' WHERE id = 500",
                    "INSERT INTO shop.both2 (id, email, name, country, order_id, method, card_last4, "
                    "billing_address, amount_cents) VALUES (501, 'b@example.org', 'B', 'IE', 1, 'card', "
                    "'4242', '1 Main St', 100)",
                    "INSERT INTO shop.sale (id, customer_id, total_cents, currency, order_id, method, "
                    "card_last4, billing_address, amount_cents) VALUES (502, 1, 100, 'EUR', 1, 'card', "
                    "'4242', '1 Main St', 100)",
                    "INSERT INTO shop.base (id) VALUES (7)"):
            with c.cursor() as cur:
                with pytest.raises(psycopg2.Error) as e:
                    cur.execute(sql)
            assert e.value.pgcode == "QC004", (sql, e.value.pgerror)
            assert " and shop.payments" in e.value.pgerror, e.value.pgerror
        with c.cursor() as cur:  # reads and deletes go on, and a policy table is still written
            cur.execute("SELECT count(*) FROM shop.both")
            assert cur.fetchone() == (0,)
            cur.execute("DELETE FROM shop.both WHERE id = 500")
            cur.execute("INSERT INTO shop.customers (id, email, name, country) "
                        "VALUES (501, 'c@example.org', 'C', 'IE')")
        c.close()
        assert s.server.psql("SELECT (SELECT count(*) FROM shop.both) + (SELECT count(*) FROM shop.sale)",
                             dbname="shop").strip() == "0"
    finally:
        s.stop()


def test_a_renamed_encrypted_column_still_reads_its_values():
    """An encrypted value is bound to its policy table and column as the
    policy names them, not as the catalog does today: values written
    before a column's rename read in clear after it, and values written
    after it once the column has its old name again (they used to fail
    their integrity check and be withheld, QC005)."""
    s = Shop(customers=5)
    try:
        p = proxy_for_ddl(s)
        app = p.connect(user="app1")
        app.autocommit = True
        admin = p.connect()
        admin.autocommit = True

        def phones():
            with app.cursor() as cur:
                cur.execute("SELECT * FROM shop.customers WHERE id IN (801, 802) ORDER BY id")
                names = [d.name for d in cur.description]
                col = "phone" if "phone" in names else "tel"
                return [r[names.index(col)] for r in cur.fetchall()]

        with app.cursor() as cur:
            cur.execute("INSERT INTO shop.customers (id, email, name, country, phone) "
                        "VALUES (801, 'r801@example.org', 'R', 'DE', '+49 30 801')")
        with admin.cursor() as cur:
            cur.execute("ALTER TABLE shop.customers RENAME COLUMN phone TO tel")
        assert phones() == ["+49 30 801"]
        # another session's write under the new name, sent before the proxy has read the catalog
        # again, is refused until it has (it used to reach the server unencrypted)
        deadline = time.monotonic() + 10
        while True:
            try:
                with app.cursor() as cur:
                    cur.execute("INSERT INTO shop.customers (id, email, name, country, tel) "
                                "VALUES (802, 'r802@example.org', 'R', 'DE', '+49 30 802')")
                break
            except psycopg2.Error as e:
                assert e.pgcode == "QC004" and "does not know the column tel" in e.pgerror, e.pgerror
                assert time.monotonic() < deadline, "the catalog was not read again"
                time.sleep(0.05)
        assert phones() == ["+49 30 801", "+49 30 802"]
        with admin.cursor() as cur:
            cur.execute("ALTER TABLE shop.customers RENAME COLUMN tel TO phone")
        assert phones() == ["+49 30 801", "+49 30 802"]
        app.close()
        admin.close()
        stored = s.server.psql("SELECT phone FROM shop.customers WHERE id IN (801, 802)", dbname="shop").split()
        assert len(stored) == 2 and all(v.startswith("cx1.") for v in stored), stored
    finally:
        s.stop()


def test_a_policy_table_the_database_lacks_is_said_once():
    """A policy table the catalog does not show (renamed while Custos was
    not running, say) is named in the operational log when the proxy
    loads the catalog, once, not at every read after it."""
    s = Shop(customers=5)
    try:
        s.server.psql("ALTER TABLE shop.support_tickets RENAME TO tickets_old", dbname="shop")
        p = Proxy(s).start()
        c = p.connect()
        c.autocommit = True
        with c.cursor() as cur:  # DDL: the catalog is read again after it
            cur.execute("CREATE TABLE shop.scratch (a int)")
            cur.execute("SELECT count(*) FROM shop.customers")
        c.close()
        said = "policy table shop.support_tickets is not in the database"
        assert p.d.errors().count(said) == 1, p.d.errors()
        assert "policy table shop.customers" not in p.d.errors()
        # and so are the encrypted columns of the others that the database does not guard
        assert p.d.errors().count("encrypted columns are not guarded by the database") == 1, p.d.errors()
    finally:
        s.stop()


def test_a_renamed_subject_table_still_names_the_subjects_of_those_linked_to_it():
    """After the subject's own table (shop.customers) is renamed, the
    tables whose foreign keys lead to it still name its subjects: an
    order's customer_id is the subject of the order, as before the rename
    (it used to be counted as unattributed)."""
    s = Shop(customers=5)
    try:
        p = Proxy(s).start()
        c = p.connect()
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute("INSERT INTO shop.orders (customer_id, total_cents, currency) VALUES (2, 100, 'EUR')")
            cur.execute("SELECT customer_id, status FROM shop.orders WHERE customer_id = 2")
            before = len(cur.fetchall())
            cur.execute("ALTER TABLE shop.customers RENAME TO clients")
            cur.execute("SELECT customer_id, status FROM shop.orders WHERE customer_id = 2")
            assert len(cur.fetchall()) == before
            cur.execute("SELECT id, country FROM shop.clients WHERE id = 2")
        c.close()
        recs = [r for r in p.access(wait_for=4) if r["type"] == "access"]
        reads = [r for r in recs if r["stmt"].startswith("SELECT")]
        assert [r["object"]["table"] for r in reads] == ["shop.orders", "shop.orders", "shop.clients"], reads
        refs = [[x["ref"] for x in r.get("subjects", [])] for r in reads]
        assert len(refs[0]) == 1 and refs[0] == refs[1] == refs[2], reads
    finally:
        s.stop()


def test_columns_renamed_or_added_outside_the_proxy():
    """Columns renamed or added directly on PostgreSQL: a write naming one
    before the proxy has read the catalog again (an upsert's SET too) is
    refused, and has the catalog read again within a second or so rather
    than at the minute's read; a renamed column's blind index still finds
    its rows (its key is bound to the policy's name)."""
    s = Shop(customers=5)
    try:
        p = proxy_for_ddl(s)
        app = p.connect(user="app1")
        app.autocommit = True

        def until_known(sql, column):
            start = time.monotonic()
            while True:
                try:
                    with app.cursor() as cur:
                        cur.execute(sql)
                    return
                except psycopg2.Error as e:
                    assert e.pgcode == "QC004" and f"does not know the column {column}" in e.pgerror, e.pgerror
                    assert time.monotonic() - start < 10, "the catalog was not read again"
                    time.sleep(0.1)

        with app.cursor() as cur:
            cur.execute("INSERT INTO shop.customers (id, email, name, country) "
                        "VALUES (901, 'b901@example.org', 'B', 'DE')")
        s.server.psql("ALTER TABLE shop.customers RENAME COLUMN phone TO tel; "
                      "ALTER TABLE shop.customers ADD COLUMN newsletter boolean", dbname="shop")
        with app.cursor() as cur:
            with pytest.raises(psycopg2.Error) as e:
                cur.execute("INSERT INTO shop.customers (id, email, name, country) "
                            "VALUES (901, 'b901@example.org', 'B', 'DE') ON CONFLICT (id) DO UPDATE SET tel = '1'")
            assert e.value.pgcode == "QC004" and "does not know the column tel" in e.value.pgerror, e.value.pgerror
        until_known("UPDATE shop.customers SET newsletter = true WHERE id = 901", "newsletter")
        s.server.psql("ALTER TABLE shop.customers RENAME COLUMN email TO mail", dbname="shop")
        until_known("UPDATE shop.customers SET mail = 'c1@example.org' WHERE id = 1", "mail")
        with app.cursor() as cur:  # a value indexed before the rename, and one after it
            cur.execute("SELECT id, newsletter FROM shop.customers WHERE mail = 'b901@example.org'")
            assert cur.fetchall() == [(901, True)]
            cur.execute("SELECT id FROM shop.customers WHERE mail = 'c1@example.org'")
            assert cur.fetchall() == [(1,)]
        app.close()
        assert s.server.psql("SELECT count(*) FROM shop.customers WHERE tel = '1'", dbname="shop").strip() == "0"
    finally:
        s.stop()


def test_plaintext_the_proxy_cannot_see_coming_is_refused_by_the_database():
    """Changes made directly on PostgreSQL reach the proxy at its next
    catalog read: until then it takes a renamed policy table for another
    table, and does not know a new default. Once encrypt-existing has
    guarded the encrypted columns, the plaintext such a write would store
    is refused by PostgreSQL itself (check_violation), and none is stored
    (before the guards, both writes stored it)."""
    s = Shop(customers=5)
    try:
        p = Proxy(s).encrypt_existing()
        p.add_user("app1", "shop_app")
        p.start()
        app = p.connect(user="app1")
        app.autocommit = True
        with app.cursor() as cur:  # the proxy has read the catalog
            cur.execute("SELECT count(*) FROM shop.customers")
        s.server.psql("ALTER TABLE shop.customers RENAME TO clients; "
                      "ALTER TABLE shop.addresses ALTER COLUMN street SET DEFAULT 'Unknown street'",
                      dbname="shop")
        writes = ["INSERT INTO shop.clients (id, email, name, country) "
                  "VALUES (901, 'guard901@example.org', 'Guard', 'DE')",
                  "INSERT INTO shop.addresses (customer_id, kind, city, postal_code, country) "
                  "VALUES (1, 'billing', 'Cork', 'T12', 'IE')"]
        codes = []
        for sql in writes:
            with app.cursor() as cur:
                try:
                    cur.execute(sql)
                    codes.append(None)
                except psycopg2.Error as e:
                    codes.append(e.pgcode)
        app.close()
        assert codes == ["23514", "23514"]
        assert "not guarded" not in p.d.errors()
        stored = s.server.psql("SELECT (SELECT count(*) FROM shop.clients WHERE email = 'guard901@example.org') + "
                               "(SELECT count(*) FROM shop.addresses WHERE street = 'Unknown street')",
                               dbname="shop").strip()
        assert stored == "0"
    finally:
        s.stop()


def test_ddl_made_around_the_proxy_is_heard_of_at_once():
    """With the event trigger `custosctl db watch` installs, the proxy hears
    of DDL made directly on PostgreSQL as it commits, and reads the catalog
    again: a view made there over a policy table is read through the proxy
    with its access record within a couple of seconds (without the trigger,
    at the minute's read). --remove drops the trigger; installing twice is
    fine."""
    s = Shop(customers=5)
    try:
        assert ctl("db", "watch", "--help", check=0).stdout.startswith("Usage: custosctl db watch --db")
        assert "give --db CONNINFO" in ctl("db", "watch", check=2).stderr
        for _ in range(2):
            out = ctl("db", "watch", "--db", s.direct("shop"), check=0).stdout
            assert "event trigger custos_catalog installed" in out
        p = Proxy(s).start()
        c = p.connect()
        with c.cursor() as cur:
            cur.execute("SELECT count(*) FROM shop.orders")
        c.close()
        assert "no event trigger custos_catalog" not in p.d.errors()

        def read_through(view, within):
            s.server.psql(f"CREATE VIEW shop.{view} AS SELECT id, name FROM shop.customers", dbname="shop")
            start, seen = time.monotonic(), []
            while not seen and time.monotonic() - start < within:
                c = p.connect()
                with c.cursor() as cur:
                    cur.execute(f"SELECT id, name FROM shop.{view} WHERE id = 2")
                    cur.fetchall()
                c.close()
                seen = [r for r in p.access() if f"shop.{view}" in r["stmt"]]
                time.sleep(0.05)
            assert seen, f"reads through {view} were not recorded"
            assert seen[0]["object"]["table"] == "shop.customers" and len(seen[0]["subjects"]) == 1

        read_through("people", 5)
        # PostgreSQL restarted: the proxy listens again (tried every 5 s), and reads the catalog then
        s.server._run(s.server.bin / "pg_ctl", "restart", "-w", "-m", "fast", "-D", s.server.datadir,
                      "-l", s.server.logfile, owner=True)
        read_through("persons", 15)
        assert p.d.errors().count("the connection listening for DDL was lost") == 1, p.d.errors()
        ctl("db", "watch", "--remove", "--db", s.direct("shop"), check=0)
        assert s.server.psql("SELECT count(*) FROM pg_event_trigger", dbname="shop").strip() == "0"
    finally:
        s.stop()


def test_without_the_event_trigger_the_proxy_says_so():
    s = Shop(customers=5)
    try:
        p = Proxy(s).start()
        deadline = time.monotonic() + 10
        while "no event trigger custos_catalog" not in p.d.errors() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "(`custosctl db watch` installs it)" in p.d.errors(), p.d.errors()
    finally:
        s.stop()


def test_db_watch_makes_its_function_anew():
    """`custosctl db watch` makes its function anew, owned by the superuser
    who runs it: one of that name another role made before (whose body would
    run inside every DDL command, a superuser's too) is dropped, not kept
    with its owner; a schema of its name owned by such a role is refused;
    and DDL on temporary tables notifies nothing."""
    s = Shop(customers=1)
    try:
        s.server.psql("CREATE ROLE app_owner LOGIN; GRANT CREATE ON DATABASE shop TO app_owner; "
                      "SET ROLE app_owner; CREATE SCHEMA custos_watch; "
                      "CREATE FUNCTION custos_watch.catalog_changed() RETURNS event_trigger LANGUAGE plpgsql "
                      "AS $$BEGIN RAISE NOTICE 'app_owner ran'; END$$", dbname="shop")
        # the schema is app_owner's, who could drop the trigger: refused until it is a superuser's
        assert "owned by a role that is not a superuser" in ctl("db", "watch", "--db", s.direct("shop"),
                                                                 check=2).stderr
        s.server.psql("ALTER SCHEMA custos_watch OWNER TO CURRENT_USER", dbname="shop")
        ctl("db", "watch", "--db", s.direct("shop"), check=0)
        owner = s.server.psql("SELECT pg_get_userbyid(p.proowner) = current_user FROM pg_proc p "
                              "JOIN pg_event_trigger t ON t.evtfoid = p.oid WHERE t.evtname = 'custos_catalog'",
                              dbname="shop").strip()
        assert owner == "t"
        c = s.server.connect(dbname="shop")
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute("LISTEN custos_catalog")
            cur.execute("CREATE TEMP TABLE scratch (a int); DROP TABLE scratch")
            temp = len(c.notifies)
            cur.execute("CREATE TABLE public.kept (a int)")
            kept = len(c.notifies)
        c.close()
        assert (temp, kept) == (0, 1)
    finally:
        s.stop()


def test_notifications_read_the_catalog_at_most_once_a_second():
    """DDL (or NOTIFY custos_catalog, which any user can send) ten times a
    second has the proxy read the catalog once a second, not at each."""
    s = Shop(customers=1, settings={"log_connections": "on"})
    try:
        ctl("db", "watch", "--db", s.direct("shop"), check=0)
        p = Proxy(s).start()

        def reads():
            return s.server.logfile.read_text().count("application_name=custosd catalog")

        deadline = time.monotonic() + 10
        while reads() < 2 and time.monotonic() < deadline:  # the first read, and the listener's connection
            time.sleep(0.1)
        time.sleep(0.5)
        before = reads()
        c = s.server.connect(dbname="shop")
        c.autocommit = True
        with c.cursor() as cur:
            for i in range(20):  # over two seconds
                cur.execute(f"CREATE TABLE public.burst{i} (a int)")
                cur.execute("NOTIFY custos_catalog")
                time.sleep(0.1)
        c.close()
        time.sleep(1.5)
        assert 2 <= reads() - before <= 4, reads() - before
        assert p.d.errors().count("cannot listen") == 0
    finally:
        s.stop()
