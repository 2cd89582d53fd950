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


def main():
    if os.geteuid() != 0:
        say("The proxy demo needs root (it starts PostgreSQL as an unprivileged user); skipped")
        return
    say("A private PostgreSQL with the sample shop (2,000 customers), custosd in front of it")
    shop = Shop(customers=2000)
    proxy = None
    try:
        say("Its personal columns encrypted in place (custosctl encrypt-existing), then custosd started")
        proxy = Proxy(shop).encrypt_existing()
        proxy.add_user("shop_web", "shop_app")
        proxy.add_user("agent", "support")
        proxy.add_user("analyst")
        proxy.start()
        print(f"PostgreSQL on 127.0.0.1:{shop.server.port}; the proxy on 127.0.0.1:{proxy.port}")
        print(f"roles: {proxy.d.pids()}")
        say("The shop's applications work through the proxy (psycopg2)")
        workload(proxy, shop)
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
