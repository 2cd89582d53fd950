"""Subject requests through custosd: the ledger (custos.requests), its
deadlines, who may do what, and the audit record of every step."""
import calendar
import datetime
import json

import psycopg2
import pytest

from daemon import daemon, ensure_user  # noqa: F401 (a fixture)
from proxy import Proxy, Shop

DPO_A, DPO_B, OUTSIDER = "ct-erin", "ct-frank", "ct-bob"


@pytest.fixture(scope="module")
def shop():
    s = Shop(customers=50)
    yield s
    s.stop()


@pytest.fixture
def custos(shop):
    for u in (DPO_A, DPO_B):
        ensure_user(u, ["custos-ctl", "custos-dpo"])
    ensure_user(OUTSIDER, ["custos-ctl"])
    p = Proxy(shop).start()
    yield p
    p.cleanup()


def req(p, *args, user=None, check=0):
    r = p.d.ctl("request", *args, "--json", user=user, check=check)
    return json.loads(r.stdout) if check == 0 else r


def add_months(d, n):
    m = d.month - 1 + n
    y, m = d.year + m // 12, m % 12 + 1
    return datetime.date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def ledger(p, rid):
    with psycopg2.connect(p.shop.direct(p.ks_name)) as c, c.cursor() as cur:
        cur.execute("SELECT status, due_on, extended_on, extension_reason, approved_by, denial_basis, "
                    "opened_by, subject_id FROM custos.requests WHERE id = %s", (rid,))
        return cur.fetchone()


def steps(p, rid):
    return [r["detail"]["step"] for r in p.d.records("request") if r["detail"]["request"] == rid]


def test_open_show_list_extend(custos):
    today = datetime.datetime.now(datetime.timezone.utc).date()
    r = req(custos, "open", "--regime", "gdpr", "--kind", "access", "--subject", "customer:7",
            "--via", "e-mail", "--verified-by", "alice", "--verification", "account login")
    rid = r["id"]
    assert r["status"] == "open" and r["subject_id"] == "7" and r["opened_by"] == "root"
    assert r["due_on"] == add_months(today, 1).isoformat() and r["confirm_by"] is None
    assert req(custos, "show", str(rid))["received_via"] == "e-mail"
    assert [x["id"] for x in req(custos, "list")] == [rid]

    e = req(custos, "extend", str(rid), "--reason", "many records across systems")
    assert e["due_on"] == min(add_months(today, 3), add_months(add_months(today, 1), 2)).isoformat()
    assert ledger(custos, rid)[3] == "many records across systems"
    again = req(custos, "extend", str(rid), "--reason", "more", check=1)
    assert "one extension" in again.stderr

    # every step is an audit record naming the subject by ref, its id encrypted
    assert steps(custos, rid) == ["open", "verify", "extend"]
    rec = custos.d.records("request")[0]
    assert rec["subjects"][0]["ref"] and rec["subjects"][0]["id"] != "customer:7"
    # and the text shows the ledger
    text = custosctl_text(custos, "show", str(rid))
    assert "due" in text and "many records across systems" in text


def custosctl_text(p, *args):
    return p.d.ctl("request", *args, check=0).stdout


def test_ccpa_deadlines_and_overdue(custos):
    r = req(custos, "open", "--regime", "ccpa", "--kind", "access", "--subject", "customer:8",
            "--received", "2025-12-26")
    assert r["due_on"] == "2026-02-09"          # 45 calendar days
    assert r["confirm_by"] == "2026-01-09"      # 10 business days
    assert r["overdue"] is True
    late = req(custos, "extend", str(r["id"]), "--reason", "x", check=1)
    assert "too late" in late.stderr and "45 days" in late.stderr
    fresh = req(custos, "open", "--regime", "gdpr", "--kind", "access", "--subject", "customer:9")
    assert [x["id"] for x in req(custos, "list", "--overdue")] == [r["id"]]
    rows = {line.split()[0]: line for line in custosctl_text(custos, "list").splitlines()[1:]}
    assert "! customer:8" in rows[str(r["id"])] and "! customer" not in rows[str(fresh["id"])]


def test_erasure_approval_by_a_second_person(custos):
    r = req(custos, "open", "--regime", "gdpr", "--kind", "erasure", "--subject", "customer:11",
            user=DPO_A)
    rid = str(r["id"])
    own = req(custos, "approve", rid, user=DPO_A, check=1)
    assert "opened by you" in own.stderr and ledger(custos, r["id"])[0] == "open"
    ok = req(custos, "approve", rid, user=DPO_B)
    assert ok["status"] == "approved" and ok["approved_by"] == DPO_B
    assert "is approved: it cannot be approved" in req(custos, "approve", rid, user=DPO_B, check=1).stderr
    d = req(custos, "deny", rid, "--basis", "GDPR Art. 17(3)(e): legal claims", user=DPO_A)
    assert d["status"] == "denied" and d["response"] == "denied"
    assert steps(custos, r["id"]) == ["open", "approve", "deny"]
    acc = req(custos, "open", "--regime", "gdpr", "--kind", "access", "--subject", "customer:12")
    assert "only erasures are approved" in req(custos, "approve", str(acc["id"]), check=1).stderr


def test_a_subject_id_is_taken_as_postgresql_stores_it(custos):
    """customer:007 is customer 7, as PostgreSQL stores a bigint id and as
    the proxy names it in the log and the keystore: a request opened as
    typed would miss its accesses in the report and leave its erasure
    mark where the proxy does not look. An ID its column's type cannot
    hold is refused."""
    r = req(custos, "open", "--regime", "gdpr", "--kind", "access", "--subject", "customer: +007")
    assert r["subject_id"] == "7" and ledger(custos, r["id"])[7] == "7"
    bad = req(custos, "open", "--regime", "gdpr", "--kind", "access", "--subject", "customer:seven", check=1)
    assert "not a value of shop.customers.id's type (bigint)" in bad.stderr and "seven" not in bad.stderr


def test_who_may_and_what_is_refused(custos):
    out = req(custos, "list", user=OUTSIDER, check=1)
    assert "needs membership in the dpo group (custos-dpo)" in out.stderr
    assert req(custos, "list", user=DPO_A) == []
    bad = {
        ("--subject", "shopper:1"): 'no subject type "shopper"',
        ("--subject", "customer:"): "TYPE:ID",
        ("--received", "2026-02-30"): "YYYY-MM-DD",
        ("--received", "2999-01-01"): "in the future",
        ("--regime", "lgpd"): "gdpr or ccpa",
        ("--verified-by", "x"): "go together",
    }
    for (opt, val), want in bad.items():
        args = {"--regime": "gdpr", "--kind": "access", "--subject": "customer:1", opt: val}
        flat = [x for kv in args.items() for x in kv]
        p = req(custos, "open", *flat, check=1)
        assert want in p.stderr, (opt, p.stderr)
        assert "customer:1" not in p.stderr
    assert "is not a request ID" in req(custos, "show", "x", check=2).stderr
    assert "no request 99" in req(custos, "show", "99", check=1).stderr
    assert "--reason is required" in req(custos, "extend", "1", check=2).stderr
    assert req(custos, "list") == []  # nothing half-made
    # custosd is still answering
    assert custos.d.ctl("status", check=0)


def test_a_version_1_keystore_is_migrated(shop):
    p = Proxy(shop)
    try:
        with psycopg2.connect(shop.direct(p.ks_name)) as c, c.cursor() as cur:
            cur.execute("DROP TABLE custos.requests, custos.subject_index, custos.subject_index_state; "
                        "DELETE FROM custos.schema_version WHERE version > 1")
        p.start()
        r = req(p, "open", "--regime", "gdpr", "--kind", "access", "--subject", "customer:3")
        assert r["id"] == 1
        with psycopg2.connect(shop.direct(p.ks_name)) as c, c.cursor() as cur:
            cur.execute("SELECT max(version) FROM custos.schema_version")
            assert cur.fetchone()[0] == 4
    finally:
        p.cleanup()


def test_without_a_database_requests_say_what_is_missing(daemon):
    p = daemon.start().ctl("request", "list", check=1)
    assert "it runs when custosd.conf sets database" in p.stderr
