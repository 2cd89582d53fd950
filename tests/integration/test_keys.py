"""The keystore and field encryption against a real PostgreSQL: keys init,
status, rotate and shred; encrypt-existing; and the promise crypto-shredding
makes about backups (a dump of the keystore taken before a shred is useless
once the epoch has been rotated)."""
import json
import os
import secrets
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import BUILD, CTL, ctl, run
from pg import pg, shop_db, shop_db_copy  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "policies" / "shop.yaml"
DECRYPT = BUILD / "tests" / "ks_decrypt"

# (table, key column, encrypted column) probes used across the tests
PROBES = [("shop.customers", "id", "email"), ("shop.customers", "id", "name"),
          ("shop.addresses", "id", "street"), ("shop.payments", "id", "billing_address"),
          ("shop.ticket_messages", "id", "body")]


class Keys:
    """A keystore for one customer database: its own database, a master key
    file and a KEK file."""

    def __init__(self, db, tmp_path):
        self.db = db
        self.ks = db.server.createdb(f"ks_{db.name}")
        self.master = tmp_path / "master.key"
        self.master.write_text(secrets.token_hex(32) + "\n")
        self.master.chmod(0o400)
        self.kek = tmp_path / "kek"

    def args(self):
        return ["--db", self.db.dsn, "--keystore", self.ks.dsn, "--master-key", self.master,
                "--kek", self.kek]

    def ctl(self, *args, **kw):
        return ctl(*args, *self.args(), **kw)

    def decrypt(self, items, keystore=None):
        """[(table, column, ciphertext)] -> [("ok", plaintext) | ("err", NAME)]"""
        text = "".join(f"{t}\t{c}\t{v}\n" for t, c, v in items)
        p = run(DECRYPT, keystore or self.ks.dsn, self.master, self.kek, input=text)
        assert p.returncode == 0, p.stderr
        return [tuple(line.split("\t", 1)) for line in p.stdout.splitlines()]


@pytest.fixture
def keys(shop_db_copy, tmp_path):
    k = Keys(shop_db_copy, tmp_path)
    k.ctl("keys", "init", check=0)
    try:
        yield k
    finally:
        k.db.server.dropdb(k.ks.name)


def values(db, table, column, key="id", where="true"):
    out = db.psql(f"SELECT {key}, coalesce({column}, '<NULL>') FROM {table} WHERE {where} ORDER BY {key}")
    return dict(line.split("|", 1) for line in out.splitlines())


def subject_where(table, customer):
    """SQL selecting the rows of one customer in a probe table."""
    return {
        "shop.customers": f"id = {customer}",
        "shop.addresses": f"customer_id = {customer}",
        "shop.payments": f"order_id IN (SELECT id FROM shop.orders WHERE customer_id = {customer})",
        "shop.ticket_messages": f"ticket_id IN (SELECT id FROM shop.support_tickets WHERE customer_id = {customer})",
    }[table]


def test_init_status_and_refusals(keys, tmp_path):
    st = stat.S_IMODE(keys.kek.stat().st_mode)
    assert st == 0o600
    p = keys.ctl("keys", "status", check=0)
    assert "epoch           1" in p.stdout
    assert "0 of subjects, 0 without a subject" in p.stdout
    p = keys.ctl("keys", "status", "--json", check=0)
    assert '"epoch":1' in p.stdout and '"subject_keys":0' in p.stdout
    # nothing is overwritten
    p = keys.ctl("keys", "init", check=2)
    assert "already initialised" in p.stderr or "refusing to overwrite" in p.stderr
    # a master key others can read is refused
    loose = tmp_path / "loose.key"
    loose.write_text(secrets.token_hex(32))
    loose.chmod(0o644)
    p = ctl("keys", "status", "--keystore", keys.ks.dsn, "--master-key", loose, "--kek", keys.kek, check=2)
    assert "readable by group or others" in p.stderr
    # the wrong master key does not open the keystore
    other = tmp_path / "other.key"
    other.write_text(secrets.token_hex(32))
    other.chmod(0o400)
    p = ctl("keys", "status", "--keystore", keys.ks.dsn, "--master-key", other, "--kek", keys.kek, check=2)
    assert "wrong master key" in p.stderr
    # a KEK file of another keystore is refused
    p = ctl("keys", "status", "--keystore", keys.db.server.conninfo("postgres"), "--master-key",
            keys.master, "--kek", keys.kek, check=2)
    assert "no keystore in this database" in p.stderr


def test_default_keystore_database(shop_db_copy, tmp_path):
    """Without --keystore the keystore goes into a database of its own
    (dbname=custos), created when missing."""
    k = Keys(shop_db_copy, tmp_path)
    server = shop_db_copy.server
    server.dropdb("custos")
    try:
        p = ctl("keys", "init", "--db", shop_db_copy.dsn, "--master-key", k.master, "--kek", k.kek, check=0)
        assert "created database custos" in p.stdout
        assert server.psql("SELECT count(*) FROM custos.kek_epochs", dbname="custos").strip() == "1"
        assert server.psql("SELECT to_regclass('custos.data_keys')", dbname=shop_db_copy.name).strip() == ""
    finally:
        server.dropdb("custos")
    server.dropdb(k.ks.name)


def test_encrypt_existing_round_trip(keys):
    before = {(t, c): values(keys.db, t, c, k) for t, k, c in PROBES}
    p = keys.ctl("encrypt-existing", "--policy", POLICY, check=0)
    assert "shop.customers: 1000 rows encrypted" in p.stdout
    for (t, c), old in before.items():
        new = values(keys.db, t, c)
        assert new.keys() == old.keys()
        items = [(t, c, v) for v in new.values() if v != "<NULL>"]
        assert items and all(v.startswith("cx1.") for _, _, v in items)
        got = keys.decrypt(items)
        assert [x[1] for x in got] == [v for v in old.values() if v != "<NULL>"], (t, c)
    # every encrypted column of the policy now holds ciphertext only
    n = keys.db.psql("SELECT count(*) FROM shop.customers WHERE email NOT LIKE 'cx1.%' "
                     "OR phone NOT LIKE 'cx1.%' OR date_of_birth NOT LIKE 'cx1.%'").strip()
    assert n == "0"
    # blind index: 16 hex digits, and the same e-mail in other case finds the row
    bidx = keys.db.psql("SELECT email_bidx FROM shop.customers ORDER BY id").split()
    assert len(bidx) == 1000 and len(set(bidx)) == 1000  # distinct e-mails, distinct indexes
    assert all(len(b) == 16 and set(b) <= set("0123456789abcdef") for b in bidx)
    # a rerun has nothing left to do
    p = keys.ctl("encrypt-existing", "--policy", POLICY, check=0)
    assert "shop.customers: 0 rows encrypted" in p.stdout
    st = keys.ctl("keys", "status", check=0).stdout
    assert "1000 of subjects" in st


def encrypted_columns():
    """{"table.column"} of every column the shop's policy encrypts."""
    tables = yaml.safe_load(POLICY.read_text())["tables"]
    return {f"{t.split('.')[1]}.{c}" for t, spec in tables.items() for c, col in spec["columns"].items()
            if {**spec.get("defaults", {}), **(col or {})}.get("encrypt")}


def guards(db):
    """{"table.column": validated} of the columns with a guard of their own."""
    out = db.psql("SELECT c.relname || '.' || a.attname, k.convalidated FROM pg_constraint k "
                  "JOIN pg_class c ON c.oid = k.conrelid "
                  "JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1] "
                  "WHERE k.contype = 'c' AND k.conname LIKE 'custos\\_encrypted\\_%' AND k.conislocal")
    return {col: v == "t" for col, v in (line.split("|") for line in out.splitlines())}


def refused_plaintext(db, sql):
    """Whether PostgreSQL refuses sql for a guard (check_violation, 23514)."""
    p = db.server.psql(sql, dbname=db.name, check=False)
    return p.returncode != 0 and "custos_encrypted_" in p.stderr


def test_encrypt_existing_guards_every_encrypted_column(keys):
    """Once its values are encrypted, each encrypted column gets a CHECK
    constraint: PostgreSQL itself refuses plaintext there, whoever writes
    it, and still takes NULL, ciphertext and what erasure anonymises to."""
    p = keys.ctl("encrypt-existing", "--policy", POLICY, "--no-guard", check=0)
    assert "guarded" not in p.stdout and guards(keys.db) == {}
    assert not refused_plaintext(keys.db, "UPDATE shop.customers SET phone = '+1 555 0100' WHERE id = 1")
    p = keys.ctl("encrypt-existing", "--policy", POLICY, check=0)  # encrypts it, then checks every row
    assert "shop.customers: 1 rows encrypted" in p.stdout
    want = encrypted_columns()
    assert len(want) >= 9 and guards(keys.db) == dict.fromkeys(want, True)
    assert p.stdout.count("guarded (every row)") == len(want)
    assert refused_plaintext(keys.db, "UPDATE shop.customers SET email = 'someone@example.org' WHERE id = 2")
    assert refused_plaintext(keys.db, "INSERT INTO shop.customers (email, name, country) "
                                      "VALUES ('cx1.' || repeat('A', 60), 'Someone', 'DE')")
    assert refused_plaintext(keys.db, "UPDATE shop.addresses SET street = 'cx1.short' WHERE id = 1")
    ok = "UPDATE shop.customers SET phone = NULL, name = repeat('X', 7) WHERE id = 3; " \
         "UPDATE shop.customers SET name = (SELECT email FROM shop.customers WHERE id = 4) WHERE id = 5"
    assert keys.db.psql(ok) is not None
    # a guard renamed with its column, and given to a table inheriting its table
    keys.db.psql("ALTER TABLE shop.customers RENAME COLUMN phone TO telephone; "
                 "CREATE TABLE shop.vip_customers () INHERITS (shop.customers)")
    assert refused_plaintext(keys.db, "UPDATE shop.customers SET telephone = '+1 555 0100' WHERE id = 6")
    assert refused_plaintext(keys.db, "INSERT INTO shop.vip_customers (id, email, name, country) "
                                      "VALUES (100001, 'cx1.' || repeat('B', 60), 'XXX', 'DE'); "
                                      "UPDATE shop.vip_customers SET telephone = '+1 555 0100'")
    # a rerun finds the guards in place, under their old names
    keys.db.psql("DROP TABLE shop.vip_customers; "
                 "ALTER TABLE shop.customers RENAME COLUMN telephone TO phone")
    p = keys.ctl("encrypt-existing", "--policy", POLICY, check=0)
    assert p.stdout.count("guarded (every row)") == len(want)
    assert guards(keys.db) == dict.fromkeys(want, True)
    # a new column under a name whose guard went with the old column gets a guard of its own
    keys.db.psql("ALTER TABLE shop.customers RENAME COLUMN phone TO phone_old; "
                 "ALTER TABLE shop.customers ADD COLUMN phone text")
    keys.ctl("encrypt-existing", "--policy", POLICY, "--table", "shop.customers", check=0)
    assert guards(keys.db) == {**dict.fromkeys(want, True), "customers.phone_old": True}
    assert refused_plaintext(keys.db, "UPDATE shop.customers SET phone = '+1 555 0100' WHERE id = 7")


def test_anonymised_values_are_not_plaintext(keys):
    """What erasure anonymises a NOT NULL encrypted column to (X's) is not
    plaintext that an erased subject left: encrypt-existing leaves it, and
    guards every row (it used to count such rows refused, and leave every
    guard of their table unchecked for the rows already there)."""
    keys.ctl("encrypt-existing", "--policy", POLICY, "--no-guard", check=0)
    keys.ctl("keys", "shred", "--subject", "customer:42", "--policy", POLICY, check=0)
    keys.db.psql("UPDATE shop.addresses SET city = repeat('X', 5) WHERE customer_id = 42")
    p = keys.ctl("encrypt-existing", "--policy", POLICY, "--table", "shop.addresses", check=0)
    assert "shop.addresses: 0 rows encrypted" in p.stdout
    assert "shop.addresses.city: guarded (every row)" in p.stdout


def test_a_guard_waits_for_its_tables_lock_a_while_only(keys):
    """Adding a guard takes its table's ACCESS EXCLUSIVE lock, and while it
    waits every other statement on the table waits behind it: a
    transaction holding the table makes encrypt-existing give up after a
    few seconds and say so, rather than hold the application up."""
    c = keys.db.connect()
    try:
        with c.cursor() as cur:
            cur.execute("SELECT count(*) FROM shop.customers")  # holds ACCESS SHARE until the end
            start = time.monotonic()
            p = keys.ctl("encrypt-existing", "--policy", POLICY, "--table", "shop.customers", check=1)
            took = time.monotonic() - start
        assert "lock was not had within 5s" in p.stderr and took < 30
        assert p.stderr.count("not guarded") == 1  # the table's other columns are not tried
    finally:
        c.rollback()
        c.close()
    keys.ctl("encrypt-existing", "--policy", POLICY, "--table", "shop.customers", check=0)


def test_encrypt_existing_resumes_after_kill(keys):
    emails = values(keys.db, "shop.customers", "email")
    proc = subprocess.Popen([str(CTL), "encrypt-existing", "--policy", str(POLICY), "--batch", "5",
                             "--table", "shop.customers", *map(str, keys.args())],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = int(keys.db.psql("SELECT count(*) FROM shop.customers WHERE email LIKE 'cx1.%'"))
        if done >= 50:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = int(keys.db.psql("SELECT count(*) FROM shop.customers WHERE email LIKE 'cx1.%'"))
    assert 0 < done < 1000, "the run finished before it could be interrupted"
    keys.ctl("encrypt-existing", "--policy", POLICY, "--table", "shop.customers", check=0)
    new = values(keys.db, "shop.customers", "email")
    got = keys.decrypt([("shop.customers", "email", v) for v in new.values()])
    # each value encrypted exactly once: it decrypts to the original plaintext
    assert [x for x in got] == [("ok", v) for v in emails.values()]


def test_tampered_values_fail_cleanly(keys):
    keys.ctl("encrypt-existing", "--policy", POLICY, "--table", "shop.customers", check=0)
    email = values(keys.db, "shop.customers", "email", where="id = 7")["7"]
    name = values(keys.db, "shop.customers", "name", where="id = 7")["7"]
    body = email[4:]
    flipped = "cx1." + body[:30] + ("A" if body[30] != "A" else "B") + body[31:]
    got = keys.decrypt([
        ("shop.customers", "email", flipped),            # altered
        ("shop.customers", "name", email),               # moved to another column
        ("shop.addresses", "email", email),              # moved to another table
        ("shop.customers", "email", email[:-3]),         # truncated
        ("shop.customers", "email", "cx2." + body),      # another version
        ("shop.customers", "email", "hello"),            # not a ciphertext
        ("shop.customers", "name", name),                # and the real thing still works
    ])
    assert [g[0] for g in got] == ["err"] * 6 + ["ok"]
    assert [g[1] for g in got[:6]] == ["EBADMSG", "EBADMSG", "EBADMSG", "EINVAL", "EPROTONOSUPPORT",
                                       "EINVAL"]


def test_shred_rotate_and_restored_dump(keys, tmp_path):
    """The promise: dump the keystore, shred a subject, rotate, restore the
    dump: the subject's values still cannot be decrypted; others' can."""
    keys.ctl("encrypt-existing", "--policy", POLICY, check=0)
    victim, other = 42, 43
    cipher = {c: {(t, col): values(keys.db, t, col, where=subject_where(t, c)) for t, _, col in PROBES}
              for c in (victim, other)}
    assert all(cipher[victim][t, col] for t, _, col in PROBES if t != "shop.ticket_messages")

    def decrypt_all(customer, keystore=None):
        items = [(t, col, v) for t, _, col in PROBES for v in cipher[customer][t, col].values() if v != "<NULL>"]
        return keys.decrypt(items, keystore)

    assert all(r[0] == "ok" for r in decrypt_all(victim))
    dump = tmp_path / "keystore.sql"
    server = keys.db.server
    p = run(Path(server.bin) / "pg_dump", "--data-only", "--inserts", "--on-conflict-do-nothing",
            "--schema", "custos", "-d", keys.ks.dsn, "-f", dump, check=0)
    full = tmp_path / "keystore-full.sql"
    run(Path(server.bin) / "pg_dump", "--schema", "custos", "-d", keys.ks.dsn, "-f", full, check=0)

    p = keys.ctl("keys", "shred", "--subject", f"customer:{victim}", "--policy", POLICY, check=0)
    assert "keys destroyed" in p.stdout and str(victim) not in p.stdout
    assert all(r == ("err", "ENOKEY") for r in decrypt_all(victim))
    assert all(r[0] == "ok" for r in decrypt_all(other))

    kek_before = keys.kek.read_bytes()
    p = keys.ctl("keys", "rotate", check=0)
    assert "rotated to epoch 2" in p.stdout
    kek_after = keys.kek.read_bytes()
    assert len(kek_after) == len(kek_before)
    assert b"epoch 0000000001" not in kek_after and b"epoch 0000000002" in kek_after

    # restore the dump into the live keystore: the victim's rows come back...
    keys.ks.psql(dump)
    dead = int(keys.ks.psql("SELECT count(*) FROM custos.data_keys WHERE epoch = 1"))
    assert dead > 0
    # ...but their epoch's key is gone
    assert all(r == ("err", "ENOKEY") for r in decrypt_all(victim))
    assert all(r[0] == "ok" for r in decrypt_all(other))
    assert f"dead keys       {dead}" in keys.ctl("keys", "status", check=0).stdout

    # a keystore restored whole from the old dump cannot be opened at all
    old = server.createdb(f"ks_old_{keys.db.name}")
    try:
        old.psql(full)
        p = run(DECRYPT, old.dsn, keys.master, keys.kek, input="")
        assert p.returncode == 2 and "epoch 1" in p.stderr and "destroyed" in p.stderr
    finally:
        server.dropdb(old.name)


def test_erased_subject_fails_closed(keys):
    """After a shred, plaintext that appears for the subject (written past
    an unguarded column) is not given a new key: encrypt-existing leaves it
    and says so, and guards the column for the rows written from then on.
    (customer:042 is customer 42, whose id is a bigint: it was erased as
    the text 042, and 42 got a new key.)"""
    keys.ctl("encrypt-existing", "--policy", POLICY, "--no-guard", check=0)
    keys.ctl("keys", "shred", "--subject", "customer:042", "--policy", POLICY, check=0)
    keys.db.psql("UPDATE shop.addresses SET city = 'Plaintext' WHERE customer_id = 42")
    p = keys.ctl("encrypt-existing", "--policy", POLICY, "--table", "shop.addresses", check=1)
    assert "left unencrypted" in p.stderr and "erased" in p.stderr
    assert "Plaintext" not in p.stdout + p.stderr
    assert "shop.addresses.city: guarded (rows written from now on)" in p.stdout
    assert guards(keys.db)["addresses.city"] is False
    assert refused_plaintext(keys.db, "UPDATE shop.addresses SET city = 'Other' WHERE customer_id = 43")


def test_usage_errors(keys):
    p = keys.ctl("keys", "shred", "--policy", POLICY, check=2)
    assert "--subject TYPE:ID" in p.stderr
    p = keys.ctl("keys", "shred", "--subject", "robot:1", "--policy", POLICY, check=2)
    assert "no subject type 'robot'" in p.stderr
    p = keys.ctl("keys", "shred", "--subject", "customer:seven", "--policy", POLICY, check=2)
    assert "not a value of shop.customers.id's type (bigint)" in p.stderr and "seven" not in p.stderr
    p = keys.ctl("encrypt-existing", "--policy", POLICY, "--table", "shop.nothing", check=2)
    assert "not in the policy" in p.stderr
    p = ctl("keys", "shred", "--subject", "customer:1", check=2)
    assert "--db" in p.stderr
    # without --db, status asks a running custosd
    p = ctl("keys", "status", "--socket", "/nonexistent/control.sock", check=2)
    assert "is custosd running?" in p.stderr
    for cmd in (["keys", "init"], ["keys", "status"], ["keys", "rotate"], ["keys", "shred"],
                ["encrypt-existing"]):
        p = ctl(*cmd, "--help", check=0)
        assert p.stdout.startswith("Usage: custosctl " + " ".join(cmd))


def test_fresh_keys_die_with_the_subject_they_end_up_with(keys):
    """A value written without a known subject (a guest's ticket) gets a key
    of its own; once the ticket is matched to a customer, erasing that
    customer finds the key by reading the customer's values."""
    db = keys.db
    db.psql("ALTER TABLE shop.support_tickets ALTER customer_id DROP NOT NULL")
    tid = db.psql("INSERT INTO shop.support_tickets (customer_id, subject) "
                  "VALUES (NULL, 'Guest question') RETURNING id").split()[0]
    db.psql(f"INSERT INTO shop.ticket_messages (ticket_id, author_kind, author_name, body) "
            f"VALUES ({tid}, 'customer', 'Guest', 'Where is my parcel?')")
    keys.ctl("encrypt-existing", "--policy", POLICY, "--table", "shop.ticket_messages", check=0)
    keys.ctl("encrypt-existing", "--policy", POLICY, "--table", "shop.support_tickets", check=0)
    # one fresh key for the ticket's row, one for the message's
    assert " of subjects, 2 without a subject" in keys.ctl("keys", "status", check=0).stdout
    body = db.psql(f"SELECT body FROM shop.ticket_messages WHERE ticket_id = {tid}").strip()
    assert keys.decrypt([("shop.ticket_messages", "body", body)]) == [("ok", "Where is my parcel?")]
    db.psql(f"UPDATE shop.support_tickets SET customer_id = 42 WHERE id = {tid}")
    keys.ctl("keys", "shred", "--subject", "customer:42", "--policy", POLICY, check=0)
    assert keys.decrypt([("shop.ticket_messages", "body", body)]) == [("err", "ENOKEY")]
    # another customer's messages are untouched
    other = db.psql("SELECT body FROM shop.ticket_messages m JOIN shop.support_tickets t ON t.id = m.ticket_id "
                    "WHERE t.customer_id <> 42 ORDER BY m.id LIMIT 1").strip()
    assert other.startswith("cx1.")
    assert keys.decrypt([("shop.ticket_messages", "body", other)])[0][0] == "ok"


def test_progress_bar_on_a_terminal(keys):
    """On a terminal encrypt-existing draws a progress bar on stderr; in a
    pipe it prints one summary line per table."""
    import pty
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(CTL), "encrypt-existing", "--policy", str(POLICY), "--table",
                             "shop.customers", "--batch", "100", *map(str, keys.args())],
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    assert proc.wait(timeout=60) == 0
    os.close(master)
    text = out.decode()
    assert "\rshop.customers" in text and "100%" in text and "[###" in text
    assert "1000 rows encrypted" in text


def test_keystore_in_the_customer_database(shop_db_copy, tmp_path):
    k = Keys(shop_db_copy, tmp_path)
    k.ks.server.dropdb(k.ks.name)
    k.ks = shop_db_copy  # --keystore is the customer database itself
    k.ctl("keys", "init", check=0)
    k.ctl("encrypt-existing", "--policy", POLICY, "--table", "shop.customers", check=0)
    email = values(shop_db_copy, "shop.customers", "email", where="id = 5")["5"]
    assert k.decrypt([("shop.customers", "email", email)])[0][0] == "ok"
    assert "1000 of subjects" in k.ctl("keys", "status", check=0).stdout


def test_values_that_look_like_ciphertext_or_break_arrays(keys):
    """Plaintext shaped like a ciphertext, or holding characters that
    delimit array literals, is encrypted like any other value, and every
    row gets its own value back."""
    tricky = {1: "cx1.a,b", 2: 'x"y}z\\', 3: "NULL", 4: "a, b", 5: "{1,2}", 6: "cx1.AAAA"}
    for cid, name in tricky.items():
        keys.db.psql(f"UPDATE shop.customers SET name = $${name}$$ WHERE id = {cid}")
    keys.ctl("encrypt-existing", "--policy", POLICY, "--table", "shop.customers", "--batch", "3", check=0)
    got = values(keys.db, "shop.customers", "name", where="id <= 6")
    res = keys.decrypt([("shop.customers", "name", got[str(cid)]) for cid in tricky])
    assert res == [("ok", name) for name in tricky.values()]
    st = json.loads(keys.ctl("keys", "status", "--json", check=0).stdout)  # valid JSON
    assert st["subject_keys"] == 1000
    # the known limit: a value that is itself a well-formed ciphertext (framing,
    # base64, a key id) is taken as encrypted and left as it is (SECURITY.md)
    fake = "cx1." + "A" * 60
    keys.db.psql(f"UPDATE shop.customers SET name = '{fake}' WHERE id = 7")
    keys.ctl("encrypt-existing", "--policy", POLICY, "--table", "shop.customers", check=0)
    assert values(keys.db, "shop.customers", "name", where="id = 7")["7"] == fake


def test_a_shred_reaches_running_processes(keys):
    """A process that already holds a subject's key in its cache (the
    keeper, here ks_decrypt doing as it does) loses it when another process
    shreds the subject: PostgreSQL notifies every listener."""
    keys.ctl("encrypt-existing", "--policy", POLICY, "--table", "shop.customers", check=0)
    email = values(keys.db, "shop.customers", "email", where="id = 42")["42"]
    proc = subprocess.Popen([str(DECRYPT), keys.ks.dsn, str(keys.master), str(keys.kek)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = f"shop.customers\temail\t{email}\n"
    proc.stdin.write(line)
    proc.stdin.flush()
    assert proc.stdout.readline().startswith("ok\t")  # the key is cached now
    keys.ctl("keys", "shred", "--subject", "customer:42", "--policy", POLICY, check=0)
    deadline = time.monotonic() + 20  # the notification arrives asynchronously
    while True:
        proc.stdin.write(line)
        proc.stdin.flush()
        answer = proc.stdout.readline().strip()
        if answer == "err\tENOKEY" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert answer == "err\tENOKEY"
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0


def test_opening_the_keystore_waits_for_a_rotation(keys):
    """A rotation writes the new epoch's KEK to the KEK file, then moves the
    keys in one transaction. Opening the keystore meanwhile (custosctl keys
    status, the keeper reconnecting) waits for it (the KEK file is locked):
    were it to read the file then, it would take the new KEK for the
    leftover of a failed rotation and wipe it, and the keys would commit
    wrapped under a KEK that no longer exists."""
    import psycopg2
    keys.ctl("encrypt-existing", "--policy", POLICY, "--table", "shop.customers", check=0)
    email = values(keys.db, "shop.customers", "email", where="id = 42")["42"]
    hold = psycopg2.connect(keys.ks.dsn)
    hold.cursor().execute("LOCK TABLE custos.data_keys IN ROW EXCLUSIVE MODE")  # the rotation waits for it

    def start(*args):
        return subprocess.Popen([str(CTL), "keys", *args, *map(str, keys.args())], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    rot = start("rotate")
    try:
        deadline = time.monotonic() + 20
        while not int(keys.ks.psql("SELECT count(*) FROM pg_locks WHERE NOT granted")):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert b"epoch 0000000002" in keys.kek.read_bytes()
        status = start("status")
        deadline = time.monotonic() + 20
        while "FLOCK" not in "".join(line for line in open("/proc/locks") if "->" in line):
            assert time.monotonic() < deadline and status.poll() is None  # it waits for the KEK file
            time.sleep(0.1)
    finally:
        hold.rollback()
        hold.close()
    out, err = rot.communicate(timeout=60)
    assert rot.returncode == 0 and "rotated to epoch 2" in out, err
    out, err = status.communicate(timeout=60)
    assert status.returncode == 0 and "epoch" in out, err
    assert keys.decrypt([("shop.customers", "email", email)])[0][0] == "ok"
