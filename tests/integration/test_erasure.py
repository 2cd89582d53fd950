"""Erasure: a dry run that changes nothing; the run in one transaction
(rows deleted children first, columns anonymised, encrypted values left to
their destroyed keys, retained ones re-keyed so they outlive them), every
outcome read again, a signed deletion certificate; a failure half-way that
leaves the database as it was and can be run again."""
import contextlib
import io
import json
import os
import subprocess
import time
from pathlib import Path

import jsonschema
import psycopg2
import pytest

from conftest import CTL, ctl
from daemon import ensure_user
from proxy import Proxy, Shop

DPO_A, DPO_B = "ct-erin", "ct-frank"
CERT_SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "deletion-certificate.schema.json")
                         .read_text())


@pytest.fixture(scope="module")
def shop():
    s = Shop(customers=50)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def custos(shop):
    for u in (DPO_A, DPO_B):
        ensure_user(u, ["custos-ctl", "custos-dpo"])
    p = Proxy(shop)
    p.encrypt_existing()
    p.add_user("app1", "shop_app")
    p.start()
    yield p
    p.cleanup()


def req(p, *args, user=None, check=0):
    r = p.d.ctl("request", *args, "--json", user=user, check=check)
    return json.loads(r.stdout) if check == 0 else r


def q(p, sql, *args):
    with psycopg2.connect(p.shop.direct()) as c, c.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else None


TABLES = {"customers": "id", "addresses": "customer_id", "orders": "customer_id",
          "support_tickets": "customer_id", "marketing_consents": "customer_id", "invoices": "customer_id"}


def counts(p, cid):
    return {t: q(p, f"SELECT count(*) FROM shop.{t} WHERE {col} = %s", cid)[0][0] for t, col in TABLES.items()}


def open_erasure(p, cid):
    r = req(p, "open", "--regime", "gdpr", "--kind", "erasure", "--subject", f"customer:{cid}", user=DPO_A)
    req(p, "approve", str(r["id"]), user=DPO_B)
    return r["id"]


@contextlib.contextmanager
def erasable(ddl, policy="", before=None):
    """Three customers, ddl run on their shop and policy appended to the
    shop's policy, before(proxy) called, the plaintext encrypted, app1 a
    plaintext role and the DPOs ready: the shop and its started proxy."""
    s = Shop(customers=3)
    try:
        for u in (DPO_A, DPO_B):
            ensure_user(u, ["custos-ctl", "custos-dpo"])
        s.server.psql(ddl, dbname="shop")
        p = Proxy(s)
        with open(p.d.settings["policy"], "a") as f:
            f.write(policy)
        if before:
            before(p)
        p.encrypt_existing()
        p.add_user("app1", "shop_app")
        p.start()
        yield s, p
    finally:
        s.stop()


def test_dry_run_then_erasure_with_certificate(custos):
    cid = 5
    before = counts(custos, cid)
    rid = open_erasure(custos, cid)
    snapshot = q(custos, "SELECT * FROM shop.customers WHERE id = %s", cid)
    name = custos.psql(f"SELECT name FROM shop.customers WHERE id = {cid}", user="app1").stdout.strip()
    assert name and not name.startswith("cx1.")  # decrypted for the application, its key now cached

    plan = req(custos, "run", str(rid), "--dry-run", user=DPO_A)
    assert plan["dry_run"] is True
    cols = {c["column"]: c for c in plan["columns"]}
    assert cols["shop.customers.email"]["action"] == "crypto_shred"
    assert cols["shop.customers.email_bidx"]["action"] == "clear_blind_index"
    assert cols["shop.addresses.country"]["action"] == "anonymize"
    assert cols["shop.invoices.billing_name"]["action"] == "retain"
    assert cols["shop.marketing_consents.channel"]["outcome"] == "deleted with its row"
    assert cols["shop.orders.status"]["rows"] == before["orders"]
    assert q(custos, "SELECT * FROM shop.customers WHERE id = %s", cid) == snapshot  # nothing changed
    assert req(custos, "show", str(rid))["status"] == "approved"
    text = custos.d.ctl("request", "run", str(rid), "--dry-run", check=0).stdout
    assert "nothing was changed" in text and "shop.invoices.billing_name" in text

    row = req(custos, "run", str(rid), user=DPO_A)
    assert row["status"] == "completed" and row["subject_id"] is None and len(row["subject_ref"]) == 64
    after = counts(custos, cid)
    assert after["marketing_consents"] == 0 and after["support_tickets"] == 0
    assert after["orders"] == before["orders"] and after["invoices"] == before["invoices"]  # retained
    assert after["customers"] == 1  # kept, anonymised: orders and invoices still point at it
    email, bidx, country = q(custos, "SELECT email, email_bidx, country FROM shop.customers WHERE id = %s", cid)[0]
    assert email.startswith("cx1.") and bidx is None and country == "XX"
    # the proxy read the customer a moment ago, with their key in its cache:
    # the erasure dropped it there too, so the application now reads NULL
    assert custos.psql(f"SELECT name, email, country FROM shop.customers WHERE id = {cid}",
                       user="app1").stdout.strip() == "||XX"

    # the certificate: every column verified, retained items with basis and end, recipients
    out = Path(row["report_dir"])
    cert = json.loads((out / "certificate.json").read_text())
    jsonschema.validate(cert, CERT_SCHEMA, format_checker=jsonschema.FormatChecker())
    assert all(c["verified"] for c in cert["erasure"]["items"])
    kept = {r["column"]: r for r in cert["retained"]["items"]}
    assert kept["shop.invoices.billing_name"]["until"] == "10 years after issue"
    assert "17(3)(b)" in kept["shop.invoices.billing_name"]["basis"]
    assert {"payment processor", "parcel carrier"} <= {r["recipient"] for r in cert["notify"]["items"]}
    assert cert["keys"]["destroyed"] >= 1 and cert["keys"]["reencrypted_for_retention"] >= 1
    assert cert["erasure"]["rule"] == "GDPR Art. 17(1)" and cert["notify"]["rule"] == "GDPR Art. 19"
    assert ctl("report", "verify", out, "--public-key", custos.d.log / "log.pub", check=0).stdout.startswith(
        "OK files=2")
    assert "<section id=\"retained\">" in (out / "certificate.html").read_text()

    steps = [r["detail"]["step"] for r in custos.d.records("request") if r["detail"]["request"] == rid]
    assert steps == ["open", "approve", "dry-run", "dry-run", "run", "erase", "complete"]
    erase = next(r for r in custos.d.records("request") if r["detail"].get("step") == "erase")
    assert cert["log"]["erasure_record"] == erase["seq"]
    # an access request after the erasure: what is left, erased values marked
    acc = req(custos, "open", "--regime", "gdpr", "--kind", "access", "--subject", f"customer:{cid}")
    done = req(custos, "run", str(acc["id"]))
    rep = json.loads((Path(done["report_dir"]) / "report.json").read_text())
    cust = next(t for t in rep["personal_data"]["tables"] if t["table"] == "shop.customers")["rows"][0]
    assert cust["email"] == "[erased]" and cust["country"] == "XX"
    assert rep["accessed_by"]["total"] == 0 and "erased" in rep["accessed_by"]["searched"]
    # a second run is refused: it is completed
    assert "is completed: it cannot be run" in req(custos, "run", str(rid), check=1).stderr


def test_unapproved_erasure_does_not_run(custos):
    r = req(custos, "open", "--regime", "ccpa", "--kind", "erasure", "--subject", "customer:6", user=DPO_A)
    p = req(custos, "run", str(r["id"]), user=DPO_A, check=1)
    assert "not yet approved" in p.stderr and "someone other than its opener" in p.stderr
    assert req(custos, "show", str(r["id"]))["status"] == "open"


def test_a_failure_half_way_leaves_the_database_as_it_was(custos):
    cid = 8
    rid = open_erasure(custos, cid)
    # a table outside the policy that still references the customer's tickets:
    # deleting them violates its foreign key, half way through the transaction
    q(custos, "CREATE TABLE public.ticket_audit (ticket_id bigint REFERENCES shop.support_tickets (id)); "
              "INSERT INTO public.ticket_audit SELECT id FROM shop.support_tickets WHERE customer_id = %s", cid)
    if not q(custos, "SELECT count(*) FROM public.ticket_audit")[0][0]:
        q(custos, "INSERT INTO shop.support_tickets (customer_id, subject, status) VALUES (%s, 'x', 'open'); "
                  "INSERT INTO public.ticket_audit SELECT id FROM shop.support_tickets WHERE customer_id = %s",
          cid, cid)
    before = q(custos, "SELECT * FROM shop.customers WHERE id = %s", cid)
    consents = q(custos, "SELECT count(*) FROM shop.marketing_consents WHERE customer_id = %s", cid)
    try:
        p = req(custos, "run", str(rid), check=1)
        assert "deleting from shop.support_tickets" in p.stderr and "SQLSTATE 23503" in p.stderr
        assert q(custos, "SELECT * FROM shop.customers WHERE id = %s", cid) == before
        assert q(custos, "SELECT count(*) FROM shop.marketing_consents WHERE customer_id = %s", cid) == consents
        failed = req(custos, "show", str(rid))
        assert failed["status"] == "failed" and "SQLSTATE 23503" in failed["error"]
        # keys were not destroyed: the customer's e-mail still decrypts for the report
        acc = req(custos, "open", "--regime", "gdpr", "--kind", "access", "--subject", f"customer:{cid}")
        assert req(custos, "run", str(acc["id"]))["status"] == "completed"
    finally:
        q(custos, "DROP TABLE public.ticket_audit")
    done = req(custos, "run", str(rid))
    assert done["status"] == "completed"
    assert q(custos, "SELECT count(*) FROM shop.marketing_consents WHERE customer_id = %s", cid) == [(0,)]


def test_an_erasure_that_fails_after_its_keys_are_destroyed_can_run_again(custos):
    cid = 12
    rid = open_erasure(custos, cid)
    reports = Path(custos.d.settings["report_dir"])
    reports.chmod(0o500)  # the certificate cannot be written: the run fails after the keys are gone
    custos_uid = os.stat(reports).st_uid
    try:
        p = req(custos, "run", str(rid), check=1)
        assert "cannot create the report directory" in p.stderr
        show = custos.d.ctl("request", "show", str(rid), "--json", check=None)
        assert show.returncode == 0, show.stderr + custos.d.errors()[-3000:]
        assert json.loads(show.stdout)["status"] == "failed"
        assert q(custos, "SELECT count(*) FROM shop.marketing_consents WHERE customer_id = %s", cid) == [(0,)]
    finally:
        reports.chmod(0o700)
        os.chown(reports, custos_uid, 0)
    done = req(custos, "run", str(rid))
    assert done["status"] == "completed" and done["subject_id"] is None
    cert = json.loads((Path(done["report_dir"]) / "certificate.json").read_text())
    assert all(c["verified"] for c in cert["erasure"]["items"])
    assert cert["keys"]["destroyed"] == 0  # the first run destroyed them


def test_an_erasure_that_must_re_key_during_a_key_rotation_says_so(custos):
    """A rotation holds the keys' table while it rewraps them. An erasure
    whose retained values need new keys cannot have them: it stops at once,
    before its transaction commits, saying a rotation is running; keys are
    served meanwhile, and the request runs once the rotation ends."""
    rid = open_erasure(custos, 20)  # customer 20 has invoices, retained
    with custos.rotation_held() as rot:
        started = time.monotonic()
        p = req(custos, "run", str(rid), check=1)
        assert time.monotonic() - started < 15
        assert "key rotation is running" in p.stderr, p.stderr
        assert q(custos, "SELECT count(*) FROM shop.customers WHERE id = 20") == [(1,)]  # nothing changed
        with custos.connect(user="app1") as c, c.cursor() as cur2:  # keys are served meanwhile
            cur2.execute("SELECT email FROM shop.customers WHERE id = 3")
            assert "@" in cur2.fetchone()[0]
        assert rot.poll() is None
    out, err = rot.communicate(timeout=60)
    assert rot.returncode == 0, err
    assert req(custos, "run", str(rid))["status"] == "completed"


def test_an_erasure_waiting_for_a_key_rotation_leaves_keys_served(custos):
    """An erasure with only keys to destroy waits for a running rotation's
    lock to destroy them. It waits in a thread of the keeper's own: keys
    are served meanwhile, and the erasure completes once the rotation ends."""
    cid = q(custos, "SELECT min(id) FROM shop.customers c WHERE id > 30 AND NOT EXISTS "
                    "(SELECT 1 FROM shop.invoices i WHERE i.customer_id = c.id)")[0][0]
    other = cid + 1
    with custos.connect(user="app1") as c, c.cursor() as cur0:  # its key, cached in the keeper and the proxy
        cur0.execute("SELECT email FROM shop.customers WHERE id = %s", (cid,))
        assert "@" in cur0.fetchone()[0]
    rid = open_erasure(custos, cid)
    env = dict(os.environ, CUSTOS_SOCKET=str(custos.d.sock))
    with custos.rotation_held() as rot:
        run = subprocess.Popen([str(CTL), "request", "run", str(rid), "--json"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 30
        while not any(r["detail"].get("request") == rid and r["detail"].get("step") == "erase"
                      for r in custos.d.records("request")):
            assert time.monotonic() < deadline and run.poll() is None  # its rows go; its keys wait
            time.sleep(0.2)
        time.sleep(0.5)
        started = time.monotonic()
        with custos.connect(user="app1", connect_timeout=10) as c, c.cursor() as cur2:
            cur2.execute("SELECT email FROM shop.customers WHERE id = %s", (other,))  # a key not cached
            assert "@" in cur2.fetchone()[0]
        assert time.monotonic() - started < 5
        assert run.poll() is None and rot.poll() is None
    out, err = rot.communicate(timeout=60)
    assert rot.returncode == 0, err
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0 and json.loads(out)["status"] == "completed", out + err  # its keys were checked gone
    with custos.connect(user="app1") as c, c.cursor() as cur0:
        cur0.execute("SELECT email FROM shop.customers WHERE id = %s", (cid,))
        assert cur0.fetchone()[0] is None  # erased: no cached key decrypts it


def test_a_reload_between_requests_rereads_the_policy(custos):
    assert custos.d.ctl("reload", check=0)
    acc = req(custos, "open", "--regime", "gdpr", "--kind", "access", "--subject", "customer:13")
    assert req(custos, "run", str(acc["id"]))["status"] == "completed"


def test_a_policy_that_would_cut_rows_loose_is_refused(shop):
    p = Proxy(shop)
    try:
        policy = Path(p.d.settings["policy"])
        text = policy.read_text().replace('''      street:
        category: user.contact.address.street''', '''      customer_id:
        category: user.unique_id
        encrypt: false
        erase: anonymize
      street:
        category: user.contact.address.street''')
        policy.write_text(text)
        p.start()
        rid = req(p, "open", "--regime", "gdpr", "--kind", "erasure", "--subject", "customer:14", user=DPO_A)["id"]
        req(p, "approve", str(rid), user=DPO_B)
        out = req(p, "run", str(rid), "--dry-run", check=1)
        assert "shop.addresses.customer_id links the subject's rows together" in out.stderr
    finally:
        p.cleanup()


def test_rows_deleted_in_a_table_inheriting_a_policy_table_are_the_subjects_only():
    """Erasure's delete_row reaches the rows of a table inheriting a policy
    table, and deletes the subject's row there and no other, though another
    subject's row in the parent sits at the same place (ctid)."""
    with erasable("CREATE TABLE shop.consents_archive () INHERITS (shop.marketing_consents); "
                  "INSERT INTO shop.consents_archive (id, customer_id, channel, granted, source) "
                  "VALUES (9001, 3, 'post', false, 'checkout'); "
                  "VACUUM FULL shop.marketing_consents; VACUUM FULL shop.consents_archive") as (s, p):
        sql = "SELECT tableoid::regclass::text, ctid::text, id, customer_id FROM shop.marketing_consents ORDER BY id"
        before = q(p, sql)
        at = {(r[0], r[1]): r[3] for r in before}
        assert at.get(("shop.consents_archive", "(0,1)")) == 3 and at.get(("shop.marketing_consents", "(0,1)"), 3) != 3, \
            before
        rid = open_erasure(p, 3)
        assert req(p, "run", str(rid))["status"] == "completed"
        assert [r[2] for r in q(p, sql)] == [r[2] for r in before if r[3] != 3]


def test_rows_of_a_table_inheriting_a_policy_table_are_told_apart():
    """A row of a table inheriting a policy table may sit at the same place
    (ctid) in its table as another subject's row in the parent: encrypting
    the plaintext already there, and erasing one subject, touch each row
    itself and no other (they used to write the child's values over the
    parent's row, and anonymise both)."""
    plain = []

    def read_plaintext(p):
        plain.extend(q(p, "SELECT tableoid::regclass::text, ctid::text, id, email, country FROM shop.customers "
                          "ORDER BY id"))
        assert ("shop.customers", "(0,1)") in [r[:2] for r in plain] and ("shop.vip", "(0,1)") in \
            [r[:2] for r in plain]
    with erasable("CREATE TABLE shop.vip (tier int) INHERITS (shop.customers); "
                  "INSERT INTO shop.vip (id, email, name, country, tier) "
                  "VALUES (501, 'vip@example.org', 'Vip', 'DE', 1)", before=read_plaintext) as (s, p):
        with p.connect(user="app1") as c, c.cursor() as cur:
            cur.execute("SELECT id, email FROM shop.customers ORDER BY id")
            own = cur.fetchall() == [(r[2], r[3]) for r in plain]  # (no values in the test's output)
            assert own, "a row reads another's values after encrypt-existing"
        s.server.psql("VACUUM FULL shop.customers; VACUUM FULL shop.vip", dbname="shop")  # at (0,1) both again
        assert q(p, "SELECT count(*) FROM shop.customers WHERE ctid = '(0,1)'") == [(2,)]
        before = q(p, "SELECT id, email, country FROM shop.customers ORDER BY id")
        assert all(r[1].startswith("cx1.") for r in before)
        rid = open_erasure(p, 501)
        assert req(p, "run", str(rid))["status"] == "completed"
        after = q(p, "SELECT id, email, country FROM shop.customers ORDER BY id")
        others = after[:-1] == before[:-1]
        assert others, "the erasure changed another subject's row"
        erased = after[-1][0] == 501 and after[-1][2] != before[-1][2]
        assert erased, "the subject's own row was not anonymised"


TENANT_NOTES = """
  shop.tenant_notes:
    defaults:
      purposes: [customer_support]
      lawful_basis: contract
      retention: 1 year
      source: the customer
      recipients: []
      provided_by_subject: true
      plaintext_roles: [shop_app]
      others_see: mask
    columns:
      note:
        category: user.content
        encrypt: true
        erase: crypto_shred
"""


@pytest.mark.parametrize("key,link", [("(tenant, customer_id)", "fk"), ("(customer_id, tenant)", "fk"),
                                      ("(tenant, customer_id)", "relation")])
def test_a_key_of_several_columns_leads_to_its_subject_by_all_of_them(key, link):
    """A table reaching its subject through a link of several columns,
    (tenant, customer_id) referencing customers (tenant, id), as a foreign
    key or as the policy's relation: its rows are the customer's whose id
    the link names, whatever the order of its columns. The map followed
    the key's first column alone: with the tenant first, another customer
    of the same tenant's note was the erased customer's too (its key
    destroyed), and a note went under no customer's key (found by a
    reviewer). A relation could name one column only."""
    cols = key.strip("()").split(", ")
    refs = ["id" if c == "customer_id" else c for c in cols]
    fk = f", FOREIGN KEY {key} REFERENCES shop.customers ({', '.join(refs)})" if link == "fk" else ""
    relation = ("relations:\n  - from: [" + ", ".join(f"shop.tenant_notes.{c}" for c in cols) +
                "]\n    to: [" + ", ".join(f"shop.customers.{c}" for c in refs) + "]\n")
    with erasable("ALTER TABLE shop.customers ADD COLUMN tenant int NOT NULL DEFAULT 1; "
                  "ALTER TABLE shop.customers ADD UNIQUE (tenant, id); ALTER TABLE shop.customers "
                  "ADD UNIQUE (id, tenant); CREATE TABLE shop.tenant_notes (tenant int NOT NULL, "
                  f"customer_id bigint NOT NULL, note text{fk})",
                  TENANT_NOTES + (relation if link == "relation" else "")) as (s, p):
        s.server.psql("GRANT ALL ON shop.tenant_notes TO shop_app", dbname="shop")
        with p.connect(user="app1") as c, c.cursor() as cur:
            for cid in (1, 2):
                cur.execute("INSERT INTO shop.tenant_notes (tenant, customer_id, note) VALUES (1, %s, %s)",
                            (cid, f"note of {cid}"))
        rid = open_erasure(p, 1)
        assert req(p, "run", str(rid))["status"] == "completed"
        with p.connect(user="app1") as c, c.cursor() as cur:
            cur.execute("SELECT note FROM shop.tenant_notes WHERE customer_id = 2")
            kept = cur.fetchall() == [("note of 2",)]
        assert kept, "the erasure of customer 1 reached customer 2's note"
        with p.connect(user="app1") as c, c.cursor() as cur:
            cur.execute("SELECT note FROM shop.tenant_notes WHERE customer_id = 1")
            assert cur.fetchall() == [(None,)]  # its key is gone: NULL


def test_rows_a_trigger_may_give_another_subject_take_keys_of_their_own():
    """An INSERT naming the subject while a trigger it fires may set the
    subject column (NEW.customer_id := ...): the values cannot take the
    named subject's key, or erasing that subject would destroy the row's
    new subject's data. They take a key of their own, and the erasure of
    the row's subject finds it by the row's values; a subject named that
    was erased gets no new data all the same (it did; found by a reviewer).
    The same trigger on
    UPDATE could move a row to another subject: an UPDATE is refused, an
    INSERT not (it was, the function's flag being its every event's;
    found by a reviewer)."""
    with erasable("CREATE FUNCTION shop.address_owner() RETURNS trigger LANGUAGE plpgsql AS $$ "
                  "BEGIN IF NEW.kind = 'gift' THEN NEW.customer_id := 2; END IF; RETURN NEW; END $$; "
                  "ALTER TABLE shop.addresses DROP CONSTRAINT addresses_kind_check; "
                  "CREATE TRIGGER address_owner BEFORE INSERT OR UPDATE ON shop.addresses FOR EACH ROW "
                  "EXECUTE FUNCTION shop.address_owner()") as (s, p):
        with p.connect(user="app1") as c, c.cursor() as cur:
            cur.execute("INSERT INTO shop.addresses (customer_id, kind, street, city, postal_code, country) "
                        "VALUES (1, 'gift', 'Elm Street 5', 'Graz', '8010', 'AT')")
            cur.copy_expert("COPY shop.addresses (customer_id, kind, street, city, postal_code, country) "
                            "FROM STDIN", io.StringIO("1\tgift\tOak Road 9\tLinz\t4020\tAT\n"))
        with p.connect(user="app1") as c, c.cursor() as cur:
            with pytest.raises(psycopg2.Error) as e:
                cur.execute("UPDATE shop.addresses SET country = 'DE' WHERE customer_id = 3")
            assert e.value.pgcode == "QC004" and "another subject" in e.value.pgerror, e.value.pgerror
        gifts = "SELECT street FROM shop.addresses WHERE kind = 'gift' ORDER BY id"
        assert q(p, "SELECT DISTINCT customer_id FROM shop.addresses WHERE kind = 'gift'") == [(2,)]
        assert req(p, "run", str(open_erasure(p, 1)))["status"] == "completed"
        with p.connect(user="app1") as c, c.cursor() as cur:
            cur.execute(gifts)
            kept = cur.fetchall() == [("Elm Street 5",), ("Oak Road 9",)]
        assert kept, "the erasure of customer 1 reached customer 2's addresses"
        with p.connect(user="app1") as c, c.cursor() as cur:  # an erased subject gets no new data
            with pytest.raises(psycopg2.Error) as e:
                cur.execute("INSERT INTO shop.addresses (customer_id, kind, street, city, postal_code, country) "
                            "VALUES (1, 'billing', 'Late Road 1', 'Graz', '8010', 'AT')")
            assert "was erased" in e.value.pgerror, e.value.pgerror
        with p.connect(user="app1") as c, c.cursor() as cur:
            with pytest.raises(psycopg2.Error) as e:
                cur.copy_expert("COPY shop.addresses (customer_id, kind, street, city, postal_code, country) "
                                "FROM STDIN", io.StringIO("1\tbilling\tLate Road 2\tLinz\t4020\tAT\n"))
            assert "was erased" in e.value.pgerror, e.value.pgerror
        assert req(p, "run", str(open_erasure(p, 2)))["status"] == "completed"
        with p.connect(user="app1") as c, c.cursor() as cur:
            cur.execute(gifts)
            assert set(cur.fetchall()) <= {(None,)}  # deleted, or their keys gone
