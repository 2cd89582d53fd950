"""make bench, subject requests at scale (issue: an access report in under
2 s and an erasure in under 200 ms with 1,000,000 customers and a
10,000,000-record audit log; report time must not grow with the log).

A shop of BENCH_CUSTOMERS customers (default 1,000,000) behind custosd; an
audit log pre-filled with synthetic access records naming 200 other
customers (alog_writer), first a tenth of BENCH_LOG_RECORDS (default
10,000,000), then all of it. A handful of customers sign up and shop
through the proxy (their values encrypted on the way in) and are read back,
so the log holds their accesses too. Access reports are timed at both log
sizes (the ratio shows whether report time follows the log), then
erasures. Times are wall-clock `custosctl request run`, best of three."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from daemon import ensure_user  # noqa: E402
from proxy import Proxy, Shop  # noqa: E402

CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "1000000"))
RECORDS = int(os.environ.get("BENCH_LOG_RECORDS", "10000000"))
WRITER = ROOT / "build" / "tests" / "alog_writer"
DPO_A, DPO_B = "ct-erin", "ct-frank"


def fill_log(proxy, n):
    """Appends n synthetic access records; the time taken and the last one's seq."""
    t = time.monotonic()
    p = subprocess.Popen([str(WRITER), "--dir", str(proxy.d.log), "--keys", str(proxy.d.dir / "bench.keys"),
                          "--durability", "batch", "--generate", str(n), "--threads", "2", "--subjects", "200"],
                         stdout=subprocess.PIPE, text=True)
    last = max(int(line.split()[1]) for line in p.stdout if line.startswith("ack "))
    if p.wait():
        raise SystemExit("alog_writer failed")
    return time.monotonic() - t, last


def sign_up(proxy, n):
    """n customers made through the proxy, with addresses, orders, a ticket;
    each read back twice (their accesses in the log). Their ids."""
    import psycopg2
    c = psycopg2.connect(proxy.dsn(user="shop_web", application_name="shop-web"))
    ids = []
    with c.cursor() as cur:
        for i in range(n):
            cur.execute("INSERT INTO shop.customers (email, name, phone, country) VALUES (%s, %s, %s, 'DE') "
                        "RETURNING id", (f"bench-{i}-{time.time_ns()}@example.org", f"Bench Customer {i}",
                                         "+49 30 1234567"))
            cid = cur.fetchone()[0]
            for kind in ("shipping", "billing"):
                cur.execute("INSERT INTO shop.addresses (customer_id, kind, street, city, postal_code, country) "
                            "VALUES (%s, %s, 'Hauptstr. 1', 'Berlin', '10115', 'DE')", (cid, kind))
            for _ in range(3):
                cur.execute("INSERT INTO shop.orders (customer_id, total_cents, currency) VALUES (%s, 1999, 'EUR')",
                            (cid,))
            c.commit()
            for _ in range(2):
                cur.execute("SELECT name, email FROM shop.customers WHERE id = %s", (cid,))
                cur.fetchall()
                cur.execute("SELECT id, total_cents FROM shop.orders WHERE customer_id = %s", (cid,))
                cur.fetchall()
            ids.append(cid)
    c.close()
    return ids


def indexed(proxy):
    import psycopg2
    with psycopg2.connect(proxy.shop.direct(proxy.ks_name)) as c, c.cursor() as cur:
        cur.execute("SELECT coalesce(max(indexed_seq), 0) FROM custos.subject_index_state")
        return cur.fetchone()[0]


def wait_indexed(proxy, upto, timeout=1800):
    t = time.monotonic()
    while indexed(proxy) < upto:
        if time.monotonic() - t > timeout:
            raise SystemExit("the subject index did not catch up")
        time.sleep(0.5)
    return time.monotonic() - t


def timed_run(proxy, rid, user=None):
    t = time.monotonic()
    p = proxy.d.ctl("request", "run", str(rid), "--json", user=user)
    dt = time.monotonic() - t
    if p.returncode:
        raise SystemExit(f"request run {rid}: {p.stderr}")
    return dt, json.loads(p.stdout)


def open_req(proxy, kind, cid, user=None):
    p = proxy.d.ctl("request", "open", "--regime", "gdpr", "--kind", kind, "--subject", f"customer:{cid}",
                    "--json", user=user)
    return json.loads(p.stdout)["id"]


def reports(proxy, ids):
    times = []
    for cid in ids:
        dt, row = timed_run(proxy, open_req(proxy, "access", cid))
        rep = json.loads((Path(row["report_dir"]) / "report.json").read_text())
        assert rep["accessed_by"]["total"] >= 4, rep["accessed_by"]["total"]
        times.append(dt)
    return min(times)


def head_seq(proxy):
    out = subprocess.run([str(ROOT / "build" / "custosctl"), "status", "--json"], capture_output=True, text=True,
                         env=dict(os.environ, CUSTOS_SOCKET=str(proxy.d.sock)))
    return json.loads(out.stdout)["log"]["head_seq"]


def main():
    if os.geteuid() != 0:
        print("requests bench: needs root (PostgreSQL as an unprivileged user); skipped")
        return
    for u in (DPO_A, DPO_B):
        ensure_user(u, ["custos-ctl", "custos-dpo"])
    t = time.monotonic()
    shop = Shop(customers=CUSTOMERS)
    load_s = time.monotonic() - t
    proxy = None
    try:
        proxy = Proxy(shop)
        proxy.d.settings.update(durability="batch")
        proxy.d.write_conf()
        proxy.add_user("shop_web", "shop_app")
        small = RECORDS // 10
        fill_s, last = fill_log(proxy, small)
        proxy.start()
        wait_indexed(proxy, last)
        ids = sign_up(proxy, 9)
        r1 = reports(proxy, ids[:3])
        proxy.d.stop()
        more_s, last = fill_log(proxy, RECORDS - small)
        fill_s += more_s
        proxy.d.start()
        head = head_seq(proxy)
        idx2 = wait_indexed(proxy, last)
        rate = (RECORDS - small) / max(idx2, 0.001)
        r2 = reports(proxy, ids[3:6])
        erase = []
        for cid in ids[6:9]:
            rid = open_req(proxy, "erasure", cid, user=DPO_A)
            proxy.d.ctl("request", "approve", str(rid), user=DPO_B)
            erase.append(timed_run(proxy, rid, user=DPO_A)[0])
        print(f"requests bench: {CUSTOMERS:,} customers (loaded in {load_s:.0f} s), audit log of "
              f"{head:,} records (written in {fill_s:.0f} s)")
        print(f"  subject index: {rate:,.0f} records/s catching up {RECORDS - small:,} records")
        print(f"  access report, log of {small + 60:,}: {r1 * 1000:8.0f} ms   target < 2000 ms")
        print(f"  access report, log of {head:,}: {r2 * 1000:8.0f} ms   target < 2000 ms; "
              f"ratio to the small log {r2 / r1:.2f} (target: not growing with the log)")
        print(f"  erasure (dry run not counted): {min(erase) * 1000:8.0f} ms   target < 200 ms")
    finally:
        if proxy:
            proxy.cleanup()
        shop.stop()


if __name__ == "__main__":
    main()
