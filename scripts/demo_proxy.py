"""make demo, the proxy part: a private PostgreSQL with the sample shop,
custosd in front of it, the shop's application workload through the proxy,
and the access records it produced. Run as root (PostgreSQL runs as an
unprivileged user, custosd drops to `custos`)."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from proxy import Proxy, Shop  # noqa: E402


def say(text):
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def workload(proxy):
    """What the shop's web application and support desk do in a minute."""
    import psycopg2
    web = psycopg2.connect(proxy.dsn(application_name="shop-web"))
    support = psycopg2.connect(proxy.dsn(application_name="support-desk"))
    with web.cursor() as cur:
        for customer in (42, 7, 1001):
            cur.execute("SELECT id, name, email, country FROM shop.customers WHERE id = %s", (customer,))
            cur.fetchall()
            cur.execute("SELECT id, status, total_cents FROM shop.orders WHERE customer_id = %s", (customer,))
            cur.fetchall()
        cur.execute("UPDATE shop.customers SET country = 'FR' WHERE id = %s", (7,))
        cur.execute("INSERT INTO shop.orders (customer_id, total_cents, currency) VALUES (%s, 4990, 'EUR')",
                    (42,))
        web.commit()
        try:
            cur.execute("UPDATE shop.customers SET email = 'new@example.org' WHERE id = 42")
        except psycopg2.Error as e:
            print(f"refused, as it should be: {e.pgcode} {e.pgerror.strip().splitlines()[0]}")
            web.rollback()
    with support.cursor() as cur:
        cur.execute("SELECT t.id, t.subject FROM shop.support_tickets t WHERE t.customer_id IN (42, 7)")
        cur.fetchall()
        cur.execute("SELECT id, country FROM shop.customers WHERE country = 'DE' LIMIT 50")
        cur.fetchall()
    web.close()
    support.close()


def main():
    if os.geteuid() != 0:
        say("The proxy demo needs root (it starts PostgreSQL as an unprivileged user); skipped")
        return
    say("A private PostgreSQL with the sample shop (2,000 customers), custosd in front of it")
    shop = Shop(customers=2000)
    proxy = None
    try:
        proxy = Proxy(shop).start()
        print(f"PostgreSQL on 127.0.0.1:{shop.server.port}; the proxy on 127.0.0.1:{proxy.port}")
        print(f"roles: {proxy.d.pids()}")
        say("The shop's applications work through the proxy (psycopg2)")
        workload(proxy)
        say("The access records they produced (custosctl log show --type access)")
        subprocess.run([str(ROOT / "build" / "custosctl"), "log", "show", "--dir", str(proxy.d.log),
                        "--type", "access"], check=False)
        say("One of them in full: subjects as refs, their ids encrypted under their own keys")
        recs = proxy.access(wait_for=1)
        print(json.dumps(recs[0], indent=1)[:1500])
        say("Stop custosd and verify the log offline")
        proxy.d.stop()
        subprocess.run([str(ROOT / "build" / "custosctl"), "log", "verify", "--dir", str(proxy.d.log),
                        "--key", str(proxy.d.key)], check=False)
    finally:
        if proxy:
            proxy.cleanup()
        shop.stop()


if __name__ == "__main__":
    main()
