"""make demo, the main story: a private PostgreSQL with the sample shop,
custosd in front of it, the shop's application workload through the proxy
and the access records it produced; then a Data Protection Officer answers
a customer's access request (a signed report) and erasure request
(approved by a second person, carried out, certified), and the security
team verifies the log. Everything it made is kept under build/demo/story.
Run as root (PostgreSQL runs as an unprivileged user, custosd drops to
`custos`, the two DPOs are Unix users in the custos-dpo group)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from daemon import ensure_user  # noqa: E402
from proxy import Proxy, Shop  # noqa: E402

CTL = ROOT / "build" / "custosctl"
STORY = ROOT / "build" / "demo" / "story"
DPOS = ("dpo-anna", "dpo-ben")


def say(text):
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def workload(proxy, shop):
    """What the shop's web application, its support desk and an analyst do
    in a minute. The shop's personal columns are encrypted in the database;
    Custos decrypts them for the roles the policy allows."""
    import psycopg2
    web = psycopg2.connect(proxy.dsn(user="shop_web", application_name="shop-web"))
    support = psycopg2.connect(proxy.dsn(user="agent", application_name="support-desk"))
    analyst = psycopg2.connect(proxy.dsn(user="analyst", application_name="bi-tool"))
    with web.cursor() as cur:
        for customer in (42, 7, 1001):
            cur.execute("SELECT id, name, email, country FROM shop.customers WHERE id = %s", (customer,))
            cur.fetchall()
            cur.execute("SELECT id, status, total_cents FROM shop.orders WHERE customer_id = %s", (customer,))
            cur.fetchall()
        cur.execute("SELECT name FROM shop.customers WHERE id = 42")
        print(f"shop-web (role shop_app) reads customer 42's name: {cur.fetchone()[0]}")
        cur.execute("UPDATE shop.customers SET email = %s WHERE id = %s", ("new-42@example.org", 42))
        cur.execute("INSERT INTO shop.orders (customer_id, total_cents, currency) VALUES (%s, 4990, 'EUR')",
                    (42,))
        web.commit()
        cur.execute("SELECT id FROM shop.customers WHERE email = %s", ("NEW-42@example.org",))
        print(f"shop-web finds the customer by e-mail through the blind index: id {cur.fetchone()[0]}")
    stored = psycopg2.connect(shop.direct())
    with stored.cursor() as cur:
        cur.execute("SELECT name, email FROM shop.customers WHERE id = 42")
        name, email = cur.fetchone()
        print(f"what PostgreSQL holds for them: name {name[:28]}…, email {email[:28]}…")
    stored.close()
    with support.cursor() as cur:
        cur.execute("SELECT t.id, t.subject FROM shop.support_tickets t WHERE t.customer_id IN (42, 7)")
        cur.fetchall()
    with analyst.cursor() as cur:
        cur.execute("SELECT id, name, country FROM shop.customers WHERE country = 'DE' LIMIT 50")
        print(f"bi-tool (no plaintext role) reads names as: {cur.fetchall()[0][1]}")
        try:
            cur.execute("SELECT id, date_of_birth FROM shop.customers WHERE id = 42")
        except psycopg2.Error as e:
            print(f"bi-tool asks for a date of birth: refused, as the policy says ({e.pgcode})")
            analyst.rollback()
        try:
            cur.execute("UPDATE shop.customers SET email = lower(email) WHERE id = 42")
        except psycopg2.Error as e:
            print(f"a write Custos cannot encrypt value by value: refused ({e.pgcode})")
    for c in (web, support, analyst):
        c.close()


def dpo(proxy, user, *args):
    """custosctl run by a DPO (a Unix user in the custos-dpo group), shown."""
    print(f"{user}$ custosctl {' '.join(args)}", flush=True)
    p = proxy.d.ctl(*args, user=user)
    print((p.stdout + p.stderr).rstrip())
    return p


def as_json(proxy, user, *args):
    p = proxy.d.ctl(*args, "--json", user=user)
    if p.returncode:
        raise SystemExit(f"custosctl {' '.join(args)}: {p.stderr}")
    return json.loads(p.stdout)


def access_request(proxy):
    say("A customer asks what we hold about them (GDPR Art. 15). DPO anna records the request")
    dpo(proxy, DPOS[0], "request", "open", "--regime", "gdpr", "--kind", "access", "--subject", "customer:42",
        "--via", "e-mail", "--verified-by", DPOS[0], "--verification", "reply from the account's address")
    rid = as_json(proxy, DPOS[0], "request", "list")[0]["id"]
    say("She runs it: the report is built from the data, the policy and the audit log")
    dpo(proxy, DPOS[0], "request", "run", str(rid))
    row = as_json(proxy, DPOS[0], "request", "show", str(rid))
    rep = json.loads((Path(row["report_dir"]) / "report.json").read_text())
    tables = {t["table"]: len(t["rows"]) for t in rep["personal_data"]["tables"]}
    print(f"rows about customer 42, by table: {tables}")
    who = [(a["user"], a["application"], a["count"]) for a in rep["accessed_by"]["by_actor"]]
    print(f"who accessed their records (from the audit log): {who}")
    print(f"left out as other people's data (Art. 15(4)): {[x['column'] for x in rep['left_out']['items']]}")
    say("Anyone with the log's public key can check the report was not altered")
    subprocess.run([str(CTL), "report", "verify", row["report_dir"], "--public-key", str(proxy.d.log / "log.pub")],
                   check=False)
    return row["report_dir"]


def erasure_request(proxy):
    say("The customer then asks to be erased (Art. 17). anna opens it; the policy wants a second person")
    dpo(proxy, DPOS[0], "request", "open", "--regime", "gdpr", "--kind", "erasure", "--subject", "customer:42",
        "--via", "e-mail", "--verified-by", DPOS[0], "--verification", "reply from the account's address")
    rid = str(as_json(proxy, DPOS[0], "request", "list")[0]["id"])
    dpo(proxy, DPOS[0], "request", "approve", rid)
    dpo(proxy, DPOS[1], "request", "approve", rid)
    say("A dry run shows what will happen, column by column; nothing changes yet")
    dpo(proxy, DPOS[0], "request", "run", rid, "--dry-run")
    say("The erasure: one transaction, then the keys destroyed, then everything read again")
    dpo(proxy, DPOS[0], "request", "run", rid)
    row = as_json(proxy, DPOS[0], "request", "show", rid)
    cert = json.loads((Path(row["report_dir"]) / "certificate.json").read_text())
    say("The deletion certificate (certificate.json; certificate.html for people)")
    for c in cert["erasure"]["items"]:
        mark = "ok" if c["verified"] else "NOT VERIFIED"
        print(f"  {c['column']:<40} {c['outcome']:<48} rows {c['rows']:<3} {mark}")
    for r in cert["retained"]["items"]:
        when = f", erasable from {r['erasable_from']}" if "erasable_from" in r else ""
        print(f"  kept: {r['column']} until {r['until']}{when} ({r['basis']})")
    print(f"  keys destroyed: {cert['keys']['destroyed']}; recipients to notify: "
          f"{[n['recipient'] for n in cert['notify']['items']]}; erasure record: seq {cert['log']['erasure_record']}")
    return row["report_dir"]


def after_erasure(proxy):
    import psycopg2
    say("The shop's application reads customer 42 again: what was erased is gone")
    web = psycopg2.connect(proxy.dsn(user="shop_web", application_name="shop-web"))
    with web.cursor() as cur:
        cur.execute("SELECT name, email, country FROM shop.customers WHERE id = 42")
        print(f"name, email, country: {cur.fetchone()}")
        cur.execute("SELECT count(*) FROM shop.invoices WHERE customer_id = 42")
        print(f"invoices kept for the tax authority: {cur.fetchone()[0]}")
    web.close()


def main():
    if os.geteuid() != 0:
        say("The demo's story needs root (it starts PostgreSQL as an unprivileged user); skipped")
        return
    for u in DPOS:
        ensure_user(u, ["custos-ctl", "custos-dpo"])
    say("A private PostgreSQL with the sample shop (2,000 customers), custosd in front of it")
    shop = Shop(customers=2000)
    proxy = None
    try:
        say("Its personal columns encrypted in place (custosctl encrypt-existing), then custosd started")
        proxy = Proxy(shop)
        proxy.encrypt_existing()
        proxy.add_user("shop_web", "shop_app")
        proxy.add_user("agent", "support")
        proxy.add_user("analyst")
        proxy.start()
        print(f"PostgreSQL on 127.0.0.1:{shop.server.port}; the proxy on 127.0.0.1:{proxy.port}")
        print(f"roles: {proxy.d.pids()}")
        say("The shop's applications work through the proxy (psycopg2)")
        workload(proxy, shop)
        say("The access records they produced (custosctl log show --type access)")
        subprocess.run([str(CTL), "log", "show", "--dir", str(proxy.d.log), "--type", "access"], check=False)
        say("One of them in full: subjects as refs, their ids encrypted under their own keys")
        recs = proxy.access(wait_for=1)
        print(json.dumps(recs[0], indent=1)[:1500])
        report = access_request(proxy)
        certificate = erasure_request(proxy)
        after_erasure(proxy)
        say("The security team stops custosd and verifies the log offline, with the key from log init")
        proxy.d.stop()
        subprocess.run([str(CTL), "log", "verify", "--dir", str(proxy.d.log), "--key", str(proxy.d.key)],
                       check=False)
        keep(proxy, report, certificate)
    finally:
        if proxy:
            proxy.cleanup()
        shop.stop()


def keep(proxy, report, certificate):
    """Copies what the story made out of custosd's scratch directory."""
    if STORY.exists():
        shutil.rmtree(STORY)
    STORY.mkdir(parents=True)
    shutil.copytree(proxy.d.log, STORY / "log")
    shutil.copy(proxy.d.key, STORY / "log.key")
    shutil.copytree(report, STORY / "access-report")
    shutil.copytree(certificate, STORY / "deletion-certificate")
    say("Files")
    print(f"audit log:             {STORY / 'log'}   (verify: custosctl log verify --dir ... --key ...)")
    print(f"verification key:      {STORY / 'log.key'}   (keep it offline)")
    print(f"access report:         {STORY / 'access-report'}/report.html, report.json, portable.json")
    print(f"deletion certificate:  {STORY / 'deletion-certificate'}/certificate.html, certificate.json")
    print(f"check either:          custosctl report verify DIR --public-key {STORY / 'log' / 'log.pub'}")


if __name__ == "__main__":
    main()
