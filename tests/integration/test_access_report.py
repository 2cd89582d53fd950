"""The access report: a subject's data found along the policy's paths and
decrypted, what the policy says of it, who accessed it (from the audit
log), Art. 15(4) and §7024(d) left out or withheld, written as JSON (valid
against its schema), HTML (rendered by headless Chromium) and a portable
copy, and signed so that tampering shows."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import jsonschema
import psycopg2
import pytest

from conftest import ctl
from proxy import Proxy, Shop

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "access-report.schema.json").read_text())
ARTIFACTS = ROOT / "build" / "test-artifacts"


@pytest.fixture(scope="module")
def shop():
    s = Shop(customers=50)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def custos(shop):
    p = Proxy(shop)
    with psycopg2.connect(shop.direct()) as c, c.cursor() as cur:
        cur.execute("SELECT email, name FROM shop.customers WHERE id = 7")
        p.plain = cur.fetchone()
        cur.execute("SELECT count(*) FROM shop.orders WHERE customer_id = 7")
        p.orders = cur.fetchone()[0]
    p.encrypt_existing()
    p.add_user("app1", "shop_app")
    p.start()
    # the application reads customer 7's record and orders through the proxy
    p.psql("SELECT email, name FROM shop.customers WHERE id = 7", user="app1")
    p.psql("SELECT id, status FROM shop.orders WHERE customer_id = 7", user="app1")
    p.access(wait_for=2)
    yield p
    p.cleanup()


def run_report(p, regime, subject="customer:7"):
    o = json.loads(p.d.ctl("request", "open", "--regime", regime, "--kind", "access", "--subject", subject,
                           "--json", check=0).stdout)
    r = p.d.ctl("request", "run", str(o["id"]), "--json", check=0)
    return json.loads(r.stdout)


def test_gdpr_access_report(custos):
    row = run_report(custos, "gdpr")
    assert row["status"] == "completed" and row["response"] == "access report delivered"
    out = Path(row["report_dir"])
    assert sorted(f.name for f in out.iterdir()) == ["SHA256SUMS", "SHA256SUMS.sig", "portable.json",
                                                     "report.html", "report.json"]
    rep = json.loads((out / "report.json").read_text())
    jsonschema.validate(rep, SCHEMA, format_checker=jsonschema.FormatChecker())

    # the copy: decrypted, every table reached from the subject
    tables = {t["table"]: t for t in rep["personal_data"]["tables"]}
    cust = tables["shop.customers"]["rows"]
    assert [(r["email"], r["name"]) for r in cust] == [custos.plain]
    assert len(tables["shop.orders"]["rows"]) == custos.orders
    assert rep["confirmation"] == {"rule": "GDPR Art. 15(1)", "processed": True,
                                   "rows": sum(len(t["rows"]) for t in tables.values())}
    # Art. 15(4): agents' names are not the subject's data
    assert all("author_name" not in r for r in tables["shop.ticket_messages"]["rows"])
    assert {"column": "shop.ticket_messages.author_name", "why": "data about other people (Art. 15(4))"} \
        in rep["left_out"]["items"]
    # GDPR withholds nothing: the card's last digits are the subject's
    assert rep["withheld"]["items"] == [] and "card_last4" in tables["shop.payments"]["columns"][0]["name"]
    # what the policy says
    cats = {c["category"] for c in rep["categories"]["items"]}
    assert {"user.contact.email", "user.name", "user.behavior.purchase_history"} <= cats
    recip = {r["recipient"] for r in rep["recipients"]["items"]}
    assert "parcel carrier" in recip and "tax authority" in recip
    assert rep["complaint"]["authority"].startswith("Data Protection Commission")
    assert rep["purposes"]["rule"] == "GDPR Art. 15(1)(a)"
    # who accessed it: app1, through the proxy
    acc = rep["accessed_by"]
    assert acc["total"] >= 2 and [a["user"] for a in acc["by_actor"]] == ["app1"], acc["by_actor"]
    assert {"shop.customers", "shop.orders"} <= set(acc["by_actor"][0]["tables"])
    # Art. 20: only what the subject provided
    port = json.loads((out / "portable.json").read_text())
    assert port["data"]["shop.customers"][0]["email"] == custos.plain[0]
    assert "created_at" not in port["data"]["shop.customers"][0] and "shop.orders" not in port["data"]

    # the ledger holds the manifest's hash; the log the report's record
    sums = (out / "SHA256SUMS").read_bytes()
    assert row["report_sha256"] == hashlib.sha256(sums).hexdigest()
    recs = custos.d.records("report")
    assert recs[-1]["detail"] == {"request": row["id"], "sha256": row["report_sha256"]}
    steps = [r["detail"]["step"] for r in custos.d.records("request") if r["detail"]["request"] == row["id"]]
    assert steps == ["open", "run", "complete"]
    # no personal data in the log: neither the address nor the name
    text = custos.log_text()
    assert custos.plain[0].encode() not in text and custos.plain[1].encode() not in text


def test_report_signature_catches_tampering(custos, tmp_path):
    row = run_report(custos, "gdpr", "customer:9")
    pub = custos.d.log / "log.pub"
    ok = ctl("report", "verify", row["report_dir"], "--public-key", pub, check=0)
    assert ok.stdout.startswith("OK files=3 log_seq=")
    assert ctl("report", "verify", row["report_dir"], "--key", custos.d.key, check=0)
    copy = tmp_path / "r"
    shutil.copytree(row["report_dir"], copy)
    html = copy / "report.html"
    html.write_text(html.read_text().replace("customer", "costumer", 1))
    bad = ctl("report", "verify", copy, "--public-key", pub, check=1)
    assert bad.stdout == "FAIL: report.html has been changed since it was signed\n"
    shutil.rmtree(copy)
    shutil.copytree(row["report_dir"], copy)
    (copy / "extra.txt").write_text("x")
    assert "extra.txt is not covered" in ctl("report", "verify", copy, "--public-key", pub, check=1).stdout
    (copy / "extra.txt").unlink()
    sums = copy / "SHA256SUMS"
    sums.write_text(sums.read_text().replace("report.json", "report.jsn"))
    assert "signature does not match" in ctl("report", "verify", copy, "--public-key", pub, check=1).stdout
    assert "exactly one of" in ctl("report", "verify", copy, check=2).stderr


def test_ccpa_report_withholds_the_7024d_items(custos):
    row = run_report(custos, "ccpa")
    rep = json.loads((Path(row["report_dir"]) / "report.json").read_text())
    jsonschema.validate(rep, SCHEMA, format_checker=jsonschema.FormatChecker())
    held = {w["column"]: w["holds"] for w in rep["withheld"]["items"]}
    assert held == {"shop.payments.card_last4": "a financial account number"}
    pay = next(t for t in rep["personal_data"]["tables"] if t["table"] == "shop.payments")
    assert all("card_last4" not in r for r in pay["rows"])
    assert "card_last4" not in json.dumps(json.loads((Path(row["report_dir"]) / "portable.json").read_text()))
    assert rep["categories"]["rule"] == "CCPA §1798.110(a)(1)"
    assert rep["not_searched"]["items"][0].startswith("backups")


def test_report_html_renders_in_chromium(custos):
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.fail("chromium is not installed (scripts/deps.sh installs it)")
    row = run_report(custos, "gdpr", "customer:11")
    html = Path(row["report_dir"]) / "report.html"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "access-report.png"
    if shot.exists():
        shot.unlink()
    common = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
              "--user-data-dir=" + str(custos.d.dir / "chromium")]
    p = subprocess.run(common + ["--window-size=1200,4000", f"--screenshot={shot}", html.as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20000, p.stderr[-2000:]
    console = [l for l in p.stderr.splitlines() if "CONSOLE" in l]
    assert console == []
    dom = subprocess.run(common + ["--dump-dom", html.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    for section in ("confirmation", "personal_data", "accessed_by", "complaint", "portability"):
        assert f'<section id="{section}">' in dom
    assert "GDPR Art. 15(1)(b)" in dom


def test_accesses_come_from_the_subject_index_as_the_log_grows(custos):
    first = json.loads((Path(run_report(custos, "gdpr", "customer:7")["report_dir"]) / "report.json")
                       .read_text())["accessed_by"]["total"]
    n = len(custos.access())
    custos.psql("SELECT name FROM shop.customers WHERE id = 7", user="app1")
    custos.access(wait_for=n + 1)
    rep = json.loads((Path(run_report(custos, "gdpr", "customer:7")["report_dir"]) / "report.json").read_text())
    assert rep["accessed_by"]["total"] == first + 1
    assert rep["accessed_by"]["recent"][-1]["table"] == "shop.customers"
    with psycopg2.connect(custos.shop.direct(custos.ks_name)) as c, c.cursor() as cur:
        cur.execute("SELECT indexed_seq FROM custos.subject_index_state")
        assert cur.fetchone()[0] >= rep["accessed_by"]["recent"][-1]["seq"]
        cur.execute("SELECT count(*) FROM custos.subject_index WHERE subject_ref = decode(%s, 'hex')",
                    (custos.access()[-1]["subjects"][0]["ref"],))
        assert cur.fetchone()[0] >= 1


def test_a_write_whose_access_record_never_came_is_listed_as_attempted(custos):
    """A write is recorded (`attempt`) before PostgreSQL runs it; the proxy
    killed while PostgreSQL runs it, its access record never comes, but the
    write commits. The subject's report lists that attempt, and not the
    attempt of a write whose access record followed."""
    custos.psql("UPDATE shop.customers SET country = 'XP' WHERE id = 9")
    slow = "UPDATE shop.customers SET country = 'XQ' WHERE id = 9 AND (SELECT true FROM pg_sleep(3))"
    before = {r["seq"] for r in custos.d.records("attempt")}
    conn = custos.connect()
    conn.autocommit = True
    failed = []

    def write():
        try:
            conn.cursor().execute(slow)
        except psycopg2.Error as e:
            failed.append(e)
    t = threading.Thread(target=write)
    t.start()
    deadline = time.time() + 10
    while not (new := [r for r in custos.d.records("attempt") if r["seq"] not in before and
                       "pg_sleep" in r["stmt"]]):
        assert time.time() < deadline, "no attempt record"
        time.sleep(0.05)
    os.kill(custos.d.pids()["proxy"], signal.SIGKILL)
    t.join(30)
    assert failed  # the client lost its connection with the proxy
    deadline = time.time() + 30
    while custos.psql("SELECT country FROM shop.customers WHERE id = 9", check=False).stdout.strip() != "XQ":
        assert time.time() < deadline, "the write did not commit (or the proxy did not come back)"
        time.sleep(0.2)
    answered = {r["detail"]["attempt"] for r in custos.d.records("access") if "attempt" in r.get("detail", {})}
    assert new[0]["seq"] not in answered
    rep = json.loads((Path(run_report(custos, "gdpr", "customer:9")["report_dir"]) / "report.json").read_text())
    jsonschema.validate(rep, SCHEMA, format_checker=jsonschema.FormatChecker())
    attempted = rep["accessed_by"]["attempted"]
    assert [a["seq"] for a in attempted] == [new[0]["seq"]], attempted
    assert attempted[0]["table"] == "shop.customers" and attempted[0]["user"] == "postgres"
    assert rep["accessed_by"]["total"] >= 1  # the first write's access record
