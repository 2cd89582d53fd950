"""Code the database runs on a statement's behalf, through the proxy: the
functions and procedures a statement calls and the triggers and rules its
writes fire are read from the catalog and their bodies analysed, so that what
they touch is recorded, a write into an encrypted column Custos cannot
encrypt is refused, and code Custos cannot see is refused rather than
run unrecorded."""
import io
import time

import psycopg2
import pytest

from proxy import Proxy, Shop

ROUTINES = """
CREATE FUNCTION shop.count_customers() RETURNS bigint LANGUAGE sql STABLE
    AS 'SELECT count(*) FROM shop.customers';
CREATE FUNCTION shop.counted() RETURNS bigint LANGUAGE sql STABLE
    BEGIN ATOMIC SELECT shop.count_customers(); END;
CREATE FUNCTION shop.move(cid bigint, c text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN UPDATE shop.customers SET country = c WHERE id = cid; END $$;
CREATE FUNCTION shop.set_email(cid bigint, e text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN UPDATE shop.customers SET email = e WHERE id = cid; END $$;
CREATE PROCEDURE shop.cancel_orders(cid bigint) LANGUAGE sql
    AS $$UPDATE shop.orders SET status = 'cancelled' WHERE customer_id = cid AND status = 'pending'$$;
CREATE FUNCTION shop.add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE RETURN a + b;
CREATE FUNCTION shop.dyn(t text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint; BEGIN EXECUTE format('SELECT count(*) FROM %s', t) INTO n; RETURN n; END $$;
CREATE FUNCTION shop.builtin_len(text) RETURNS int LANGUAGE internal IMMUTABLE AS 'textlen';
CREATE TRUSTED LANGUAGE plfake HANDLER plpgsql_call_handler VALIDATOR plpgsql_validator;
CREATE FUNCTION shop.other_lang() RETURNS int LANGUAGE plfake AS $$BEGIN RETURN 1; END$$;
CREATE FUNCTION shop.numbers(n int) RETURNS TABLE(x int) LANGUAGE plpgsql AS $$
BEGIN FOR i IN 1..n LOOP x := i; RETURN NEXT; END LOOP; END $$;
CREATE FUNCTION shop.emails() RETURNS TABLE(e text) LANGUAGE plpgsql AS $$
BEGIN FOR e IN SELECT email FROM shop.customers LOOP RETURN NEXT; END LOOP; END $$;
CREATE FUNCTION shop.upsert_email(cid bigint, e text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN INSERT INTO shop.customers (id, country) VALUES (cid, 'IE') ON CONFLICT (id) DO UPDATE SET email = e; END $$;
CREATE FUNCTION shop.agg_step(st bigint, v int) RETURNS bigint LANGUAGE sql
    AS 'SELECT st + v + (SELECT count(*) FROM shop.customers)';
CREATE AGGREGATE shop.leaky(int) (SFUNC = shop.agg_step, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION shop.customers_exist(v int) RETURNS boolean LANGUAGE sql
    AS 'SELECT v IS NULL OR EXISTS (SELECT 1 FROM shop.customers)';
CREATE DOMAIN shop.checked AS int CHECK (shop.customers_exist(VALUE));
CREATE TABLE shop.checked_t (x shop.checked);
CREATE TABLE shop.parted (k int, customer_id bigint) PARTITION BY LIST (k);
CREATE TABLE shop.parted1 PARTITION OF shop.parted FOR VALUES IN (1);
CREATE TABLE shop.parted2 PARTITION OF shop.parted FOR VALUES IN (2);
CREATE FUNCTION shop.touch_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN UPDATE shop.customers SET country = 'IE' WHERE id = NEW.customer_id; RETURN NEW; END $$;
CREATE TRIGGER parted2_touch AFTER INSERT ON shop.parted2 FOR EACH ROW EXECUTE FUNCTION shop.touch_new();
INSERT INTO shop.parted VALUES (1, 1);
CREATE TABLE shop.memo (id int, customer_id bigint);
CREATE FUNCTION shop.touch_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN UPDATE shop.customers SET country = 'IE' WHERE id = OLD.customer_id; RETURN OLD; END $$;
CREATE TRIGGER memo_touch AFTER DELETE ON shop.memo FOR EACH ROW EXECUTE FUNCTION shop.touch_old();
INSERT INTO shop.memo VALUES (1, 1), (2, 2), (3, 3);
CREATE TABLE shop.ticket_kinds (id int PRIMARY KEY);
ALTER TABLE shop.support_tickets ADD COLUMN kind_id int REFERENCES shop.ticket_kinds (id);
CREATE TABLE shop.notes (customer_id bigint, body text);
CREATE FUNCTION shop.note_touches() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN UPDATE shop.customers SET country = 'IE' WHERE id = NEW.customer_id; RETURN NEW; END $$;
CREATE TRIGGER notes_touch AFTER INSERT ON shop.notes FOR EACH ROW EXECUTE FUNCTION shop.note_touches();
CREATE TABLE shop.signups (email text, name text);
CREATE FUNCTION shop.signup_copies() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO shop.customers (email, name, country) VALUES (NEW.email, NEW.name, 'IE'); RETURN NEW; END $$;
CREATE TRIGGER signups_copy AFTER INSERT ON shop.signups FOR EACH ROW EXECUTE FUNCTION shop.signup_copies();
CREATE FUNCTION shop.address_upper() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.street := upper(NEW.street); RETURN NEW; END $$;
CREATE TRIGGER address_upper BEFORE INSERT ON shop.addresses FOR EACH ROW EXECUTE FUNCTION shop.address_upper();
CREATE FUNCTION shop.address_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN SELECT 7 INTO NEW.customer_id; RETURN NEW; END $$;
CREATE TRIGGER address_owner BEFORE UPDATE ON shop.addresses FOR EACH ROW EXECUTE FUNCTION shop.address_owner();
CREATE TABLE shop.audit_trail (op text);
CREATE FUNCTION shop.audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO shop.audit_trail VALUES (TG_OP); RETURN COALESCE(NEW, OLD); END $$;
CREATE TRIGGER customers_audit AFTER INSERT OR UPDATE OR DELETE ON shop.customers FOR EACH ROW
    EXECUTE FUNCTION shop.audit_row();
CREATE TABLE shop.leads (email text, name text);
CREATE RULE leads_copy AS ON INSERT TO shop.leads DO ALSO
    INSERT INTO shop.customers (email, name, country) VALUES (NEW.email, NEW.name, 'IE');
CREATE TABLE shop.visits (customer_id bigint);
CREATE RULE visits_touch AS ON INSERT TO shop.visits DO ALSO
    UPDATE shop.customers SET country = 'PT' WHERE id = NEW.customer_id;
CREATE TABLE shop.quiet_leads (email text, name text);
CREATE RULE quiet_copy AS ON INSERT TO shop.quiet_leads DO ALSO
    INSERT INTO shop.customers (email, name, country) VALUES (NEW.email, NEW.name, 'IE');
ALTER TABLE shop.quiet_leads DISABLE RULE quiet_copy;
CREATE TABLE shop.quiet_signups (email text, name text);
CREATE TRIGGER quiet_signups_copy AFTER INSERT ON shop.quiet_signups FOR EACH ROW
    EXECUTE FUNCTION shop.signup_copies();
ALTER TABLE shop.quiet_signups DISABLE TRIGGER quiet_signups_copy;
CREATE TABLE shop.country_log (id bigint, country text);
CREATE RULE country_moves AS ON UPDATE TO shop.customers WHERE lower(new.country) <> lower(old.country)
    DO ALSO INSERT INTO shop.country_log VALUES (new.id, new.country);
CREATE TABLE shop.tally (n int);
INSERT INTO shop.tally VALUES (1);
CREATE RULE tally_kept AS ON DELETE TO shop.tally DO INSTEAD NOTHING;
CREATE TABLE shop.tally_log (n int);
CREATE RULE tally_when AS ON UPDATE TO shop.tally WHERE (SELECT count(*) FROM shop.customers) > 0
    DO ALSO INSERT INTO shop.tally_log VALUES (NEW.n);
CREATE FUNCTION shop.reading_performed() RETURNS void LANGUAGE plpgsql AS $$
BEGIN PERFORM set_config('standard_conforming_strings', 'off', false); END $$;
CREATE FUNCTION shop.reading_set() RETURNS void LANGUAGE plpgsql AS $$
BEGIN SET U&"standard\\005fconforming_strings" = off; END $$;
CREATE FUNCTION shop.reading_sql() RETURNS text LANGUAGE sql
    AS $$SELECT set_config(E'standard\\137conforming_strings', 'off', false)$$;
CREATE FUNCTION shop.reading_outer() RETURNS void LANGUAGE sql AS 'SELECT shop.reading_set()';
CREATE FUNCTION shop.tidy(cid bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN UPDATE shop.customers SET country = left('x\\' /*', 0) || country, email = 'plain@example.org'
WHERE id = cid --*/, 0) || country WHERE id = cid;
END $$;
CREATE VIEW shop.emailer AS SELECT shop.set_email(1, 'plain@example.org') IS NULL AS done;
CREATE VIEW shop.emailer_too AS SELECT * FROM shop.emailer;
CREATE VIEW shop.mover AS SELECT shop.move(5, 'FR') IS NULL AS done;
CREATE FUNCTION shop.defaulted(done boolean DEFAULT shop.set_email(1, 'plain@example.org') IS NULL)
    RETURNS boolean LANGUAGE sql AS 'SELECT done';
CREATE FUNCTION shop.emailing(cid bigint, e text) RETURNS boolean LANGUAGE sql
    AS 'SELECT shop.set_email(cid, e) IS NULL';
CREATE OPERATOR shop.==> (LEFTARG = bigint, RIGHTARG = text, FUNCTION = shop.emailing);
CREATE MATERIALIZED VIEW shop.emailed AS SELECT shop.set_email(1, 'plain@example.org') IS NULL AS done
    WITH NO DATA;
CREATE FUNCTION shop.guard(cid bigint) RETURNS boolean LANGUAGE sql SECURITY DEFINER
    AS $$SELECT shop.set_email(cid, 'plain@example.org') IS NULL$$;
CREATE TABLE shop.guarded (customer_id bigint);
INSERT INTO shop.guarded VALUES (1);
CREATE POLICY guarded_by ON shop.guarded USING (shop.guard(customer_id));
ALTER TABLE shop.guarded ENABLE ROW LEVEL SECURITY;
CREATE FUNCTION shop.counts(cid bigint) RETURNS boolean LANGUAGE sql SECURITY DEFINER
    AS 'SELECT EXISTS (SELECT 1 FROM shop.customers WHERE id = cid)';
CREATE TABLE shop.counted_rows (customer_id bigint);
INSERT INTO shop.counted_rows VALUES (1);
CREATE POLICY counted_by ON shop.counted_rows USING (shop.counts(customer_id));
ALTER TABLE shop.counted_rows ENABLE ROW LEVEL SECURITY;
CREATE TYPE shop.mailbox AS (e text);
CREATE FUNCTION shop.to_mailbox(e text) RETURNS shop.mailbox LANGUAGE plpgsql AS $$
BEGIN PERFORM shop.set_email(1, e); RETURN ROW(e); END $$;
CREATE CAST (text AS shop.mailbox) WITH FUNCTION shop.to_mailbox(text);
CREATE TABLE shop.later_rows (customer_id bigint);
INSERT INTO shop.later_rows VALUES (1);
ALTER TABLE shop.later_rows ENABLE ROW LEVEL SECURITY;
CREATE FUNCTION shop.app_setting(n text, v text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN RETURN set_config(n, v, false); END $$;
CREATE TABLE shop.reading_log (x int);
CREATE FUNCTION shop.reading_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_catalog.set_config('backslash_quote', 'on', false); RETURN NEW; END $$;
CREATE TRIGGER reading_log_set AFTER INSERT ON shop.reading_log FOR EACH ROW EXECUTE FUNCTION shop.reading_trigger();
"""


@pytest.fixture(scope="module")
def shop():
    s = Shop(customers=20)
    s.server.psql(ROUTINES, dbname="shop")
    s.server.psql(f"CREATE ROLE rls_reader LOGIN PASSWORD '{s.password}'; GRANT USAGE ON SCHEMA shop TO "
                  "rls_reader; GRANT SELECT ON ALL TABLES IN SCHEMA shop TO rls_reader", dbname="shop")
    yield s
    s.stop()


@pytest.fixture
def proxy(shop):
    p = Proxy(shop).start()
    yield p
    p.cleanup()


def records_of(proxy, stmt_start, n, timeout=10):
    deadline = time.time() + timeout
    while True:
        recs = [r for r in proxy.d.records() if r.get("stmt", "").startswith(stmt_start)]
        if len(recs) >= n or time.time() > deadline:
            return recs
        time.sleep(0.1)


def error_of(proxy, sql):
    """The SQLSTATE and message sql fails with through the proxy, or None."""
    conn = proxy.connect()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
        return None
    except psycopg2.Error as e:
        return e.pgcode, e.pgerror
    finally:
        conn.close()


def test_a_function_reading_a_policy_table_is_recorded(proxy):
    """SELECT f() where f, or a function f calls, reads shop.customers: an
    access to shop.customers, though the statement names no table."""
    assert proxy.psql("SELECT shop.count_customers()").stdout.strip() == "20"
    assert proxy.psql("SELECT shop.counted()").stdout.strip() == "20"
    recs = records_of(proxy, "SELECT shop.count_customers", 1) + records_of(proxy, "SELECT shop.counted", 1)
    assert [(r["type"], r["detail"].get("tables")) for r in recs] == [("access", ["shop.customers"])] * 2


def test_writes_by_functions_procedures_and_triggers_get_an_attempt_first(proxy, shop):
    """A function, a procedure or a trigger writing a policy table: the
    statement that runs it is recorded as a write, its attempt first."""
    proxy.psql("SELECT shop.move(3, 'FR')")
    proxy.psql("CALL shop.cancel_orders(3)")
    proxy.psql("INSERT INTO shop.notes VALUES (4, 'rang')")
    assert shop.value("SELECT country FROM shop.customers WHERE id = 3") == "FR"
    assert shop.value("SELECT country FROM shop.customers WHERE id = 4") == "IE"
    for start, table in (("SELECT shop.move", "shop.customers"), ("CallStmt", "shop.orders"),
                         ("INSERT INTO shop.notes", "shop.customers")):
        recs = records_of(proxy, start, 2)
        assert [r["type"] for r in recs] == ["attempt", "access"], (start, recs)
        assert recs[1]["detail"]["tables"] == [table] and recs[1]["detail"]["attempt"] == recs[0]["seq"]


def test_a_routine_writing_an_encrypted_column_is_refused(proxy, shop):
    """What a function or a trigger writes into an encrypted column is
    computed in the database, where no key is: refused, nothing written."""
    before = shop.value("SELECT email FROM shop.customers WHERE id = 5")
    code, msg = error_of(proxy, "SELECT shop.set_email(5, 'plain@example.org')")
    assert code == "QC004" and "shop.set_email" in msg, msg
    assert shop.value("SELECT email FROM shop.customers WHERE id = 5") == before
    n = shop.value("SELECT count(*) FROM shop.customers")
    code, msg = error_of(proxy, "SELECT shop.upsert_email(5, 'plain@example.org')")
    assert code == "QC004" and "shop.upsert_email" in msg, msg
    code, msg = error_of(proxy, "INSERT INTO shop.signups VALUES ('new@example.org', 'New Person')")
    assert code == "QC004" and "shop.signup_copies" in msg, msg
    assert shop.value("SELECT count(*) FROM shop.customers") == n
    assert shop.value("SELECT count(*) FROM shop.signups") == 0


@pytest.mark.parametrize("sql", ["SELECT * FROM shop.emailer", "SELECT * FROM shop.emailer_too",
                                 "SELECT shop.defaulted()", "REFRESH MATERIALIZED VIEW shop.emailed",
                                 "SELECT 1::bigint OPERATOR(shop.==>) 'plain@example.org'",
                                 "SET search_path = shop, public; SELECT 1::bigint ==> 'plain@example.org'",
                                 "SELECT 1::bigint OPERATOR(shop.==>) ANY (SELECT 'plain@example.org'::text)",
                                 "SELECT 'plain@example.org'::text::shop.mailbox",
                                 "SELECT shop.mailbox('plain@example.org'::text)"])
def test_code_a_statement_runs_unnamed_is_followed(proxy, shop, sql):
    """A read of a view runs the functions its query calls (through the
    views it reads too), a call the functions its parameters' defaults
    call, a refresh of a materialized view those of its query, an operator
    or a cast its function: one writing an encrypted column is refused (it wrote the
    e-mail in plaintext, unrefused), one writing a policy table makes the
    read a recorded write."""
    email = "SELECT email FROM shop.customers WHERE id = 1"
    before = shop.value(email)
    code, msg = error_of(proxy, sql)
    assert code == "QC004" and "shop.set_email" in msg, msg
    unchanged = shop.value(email) == before
    assert unchanged, "the view's function wrote the e-mail"  # (values kept out of the output)
    proxy.psql("SELECT * FROM shop.mover")
    assert shop.value("SELECT country FROM shop.customers WHERE id = 5") == "FR"
    recs = records_of(proxy, "SELECT * FROM shop.mover", 2)
    assert [r["type"] for r in recs] == ["attempt", "access"], recs
    assert recs[1]["detail"]["tables"] == ["shop.customers"]


def test_row_level_security_runs_its_policies_functions(proxy, shop):
    """A table with row-level security runs its policies' functions on
    every read of it by a role they apply to: one writing an encrypted
    column is refused (it wrote the e-mail in plaintext, unrefused), one
    reading the customers makes the read an access to them."""
    before = shop.value("SELECT email FROM shop.customers WHERE id = 1")
    with pytest.raises(psycopg2.Error) as e, proxy.connect(user="rls_reader") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM shop.guarded")
    assert e.value.pgcode == "QC004" and "shop.set_email" in e.value.pgerror, e.value.pgerror
    unchanged = shop.value("SELECT email FROM shop.customers WHERE id = 1") == before
    assert unchanged, "the policy's function wrote the e-mail"  # (values kept out of the output)
    with proxy.connect(user="rls_reader") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM shop.counted_rows")
        assert cur.fetchone() == (1,)
    recs = records_of(proxy, "SELECT count(*) FROM shop.counted_rows", 1)
    assert [(r["type"], r["detail"].get("tables")) for r in recs] == [("access", ["shop.customers"])], recs


def test_operators_and_policies_made_through_the_proxy_are_followed(proxy, shop):
    """An operator or a row-level security policy made through the proxy
    is code Custos sees once it commits: in its transaction, a use of the
    operator or a read of the policy's table is refused; after it, the
    operator's function and the policy's are followed."""
    op = "SELECT 1::bigint OPERATOR(shop.~~>) 'plain@example.org'"
    define = "CREATE OPERATOR shop.~~> (LEFTARG = bigint, RIGHTARG = text, FUNCTION = shop.emailing)"
    policy = "CREATE POLICY later_by ON shop.later_rows USING (shop.counts(customer_id))"
    before = shop.value("SELECT email FROM shop.customers WHERE id = 1")
    conn = proxy.connect()
    try:
        conn.autocommit = True
        cur = conn.cursor()
        for ddl, use in ((define, op), (policy, "SELECT count(*) FROM shop.later_rows")):
            cur.execute("BEGIN")
            cur.execute(ddl)
            with pytest.raises(psycopg2.Error) as e:
                cur.execute(use)
            assert e.value.pgcode == "QC001" and "transaction" in e.value.pgerror, (use, e.value.pgerror)
            cur.execute("ROLLBACK")
            cur.execute(ddl)
        with pytest.raises(psycopg2.Error) as e:
            cur.execute(op)
        assert e.value.pgcode == "QC004" and "shop.set_email" in e.value.pgerror, e.value.pgerror
        cur.execute("DROP OPERATOR shop.~~> (bigint, text)")
    finally:
        conn.close()
    unchanged = shop.value("SELECT email FROM shop.customers WHERE id = 1") == before
    assert unchanged, "the operator's function wrote the e-mail"
    with proxy.connect(user="rls_reader") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM shop.later_rows")
        assert cur.fetchone() == (1,)
    shop.server.psql("DROP POLICY later_by ON shop.later_rows", dbname="shop")
    recs = records_of(proxy, "SELECT count(*) FROM shop.later_rows", 1)
    assert [(r["type"], r["detail"].get("tables")) for r in recs] == [("access", ["shop.customers"])], recs


def test_event_triggers_run_on_ddl(shop):
    """An event trigger runs its function on DDL: one writing an encrypted
    column has DDL through the proxy refused, and a call of a routine that
    runs DDL (each wrote the e-mail in plaintext, unrefused); other
    statements run."""
    shop.server.psql("CREATE FUNCTION shop.ddl_emails() RETURNS event_trigger LANGUAGE plpgsql AS $$ "
                     "BEGIN UPDATE shop.customers SET email = 'plain@example.org' WHERE id = 1; END $$; "
                     "CREATE EVENT TRIGGER ddl_emails ON ddl_command_end EXECUTE FUNCTION shop.ddl_emails(); "
                     "CREATE FUNCTION shop.makes_table() RETURNS void LANGUAGE plpgsql AS $$ "
                     "BEGIN CREATE TABLE IF NOT EXISTS shop.ddl_made2 (x int); END $$", dbname="shop")
    p = None
    try:
        p = Proxy(shop).start()
        before = shop.value("SELECT email FROM shop.customers WHERE id = 1")
        for ddl in ("CREATE TABLE shop.ddl_made (x int)", "COMMENT ON TABLE shop.orders IS 'o'",
                    "SELECT shop.makes_table()"):
            code, msg = error_of(p, ddl)
            assert code == "QC004" and "shop.ddl_emails" in msg, (ddl, msg)
        unchanged = shop.value("SELECT email FROM shop.customers WHERE id = 1") == before
        assert unchanged, "the event trigger wrote the e-mail"
        assert p.psql("SELECT count(*) FROM shop.orders WHERE customer_id = 1").stdout.strip().isdigit()
        assert error_of(p, "SET work_mem = '8MB'") is None
    finally:
        shop.server.psql("DROP EVENT TRIGGER ddl_emails; DROP FUNCTION shop.ddl_emails(); "
                         "DROP FUNCTION shop.makes_table()", dbname="shop")
        if p:
            p.cleanup()


UNNAMED = """
CREATE FUNCTION shop.set_email(cid bigint, e text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN UPDATE shop.customers SET email = e WHERE id = cid; END $$;
CREATE FUNCTION shop.w(cid bigint, e text) RETURNS boolean LANGUAGE sql SECURITY DEFINER
    AS 'SELECT shop.set_email(cid, e) IS NULL';
CREATE FUNCTION shop.wt(e text, cid bigint) RETURNS boolean LANGUAGE sql SECURITY DEFINER
    AS 'SELECT shop.set_email(cid, e) IS NULL';
CREATE FUNCTION shop.yes(cid bigint, e text) RETURNS boolean LANGUAGE plpgsql AS 'BEGIN RETURN true; END';
CREATE SCHEMA sneaky;
CREATE OPERATOR sneaky.= (LEFTARG = bigint, RIGHTARG = text, FUNCTION = shop.w);
CREATE OPERATOR sneaky.>= (LEFTARG = bigint, RIGHTARG = text, FUNCTION = shop.w);
CREATE OPERATOR sneaky.<= (LEFTARG = bigint, RIGHTARG = text, FUNCTION = shop.yes);
CREATE OPERATOR shop.<!> (LEFTARG = bigint, RIGHTARG = text, FUNCTION = shop.w);
CREATE OPERATOR shop.<%> (LEFTARG = bigint, RIGHTARG = text, FUNCTION = shop.yes, NEGATOR = OPERATOR(shop.<!>));
CREATE OPERATOR shop.==> (LEFTARG = bigint, RIGHTARG = text, FUNCTION = shop.w);
CREATE OPERATOR shop.~~~ (LEFTARG = bigint, RIGHTARG = text, FUNCTION = shop.yes);
CREATE FUNCTION shop.yes_rev(e text, cid bigint) RETURNS boolean LANGUAGE plpgsql AS 'BEGIN RETURN true; END';
CREATE OPERATOR shop.@@> (LEFTARG = bigint, RIGHTARG = text, FUNCTION = shop.w);
CREATE OPERATOR shop.<@@ (LEFTARG = text, RIGHTARG = bigint, FUNCTION = shop.yes_rev,
    COMMUTATOR = OPERATOR(shop.@@>));
CREATE TYPE shop.pair AS (a int);
CREATE FUNCTION shop.pw(x shop.pair, y shop.pair) RETURNS boolean LANGUAGE sql SECURITY DEFINER
    AS $$SELECT shop.set_email(1, 'plain@example.org') IS NULL$$;
CREATE OPERATOR sneaky.= (LEFTARG = shop.pair, RIGHTARG = shop.pair, FUNCTION = shop.pw);
CREATE VIEW shop.yesview AS SELECT 1::bigint OPERATOR(shop.~~~) 'x'::text AS x;
CREATE VIEW shop.opview AS SELECT 1::bigint OPERATOR(shop.==>) 'plain@example.org'::text AS x;
CREATE TABLE shop.opguard (customer_id bigint);
INSERT INTO shop.opguard VALUES (1);
CREATE POLICY opg ON shop.opguard USING (customer_id OPERATOR(shop.==>) 'plain@example.org'::text);
ALTER TABLE shop.opguard ENABLE ROW LEVEL SECURITY;
CREATE TABLE shop.rlsbase (customer_id bigint);
INSERT INTO shop.rlsbase VALUES (1);
CREATE POLICY rlsb ON shop.rlsbase USING (shop.w(customer_id, 'plain@example.org'));
ALTER TABLE shop.rlsbase ENABLE ROW LEVEL SECURITY;
CREATE VIEW shop.rlsview WITH (security_invoker = true) AS SELECT * FROM shop.rlsbase;
CREATE TABLE shop.opdef (customer_id bigint,
    ok boolean DEFAULT (1::bigint OPERATOR(shop.==>) 'plain@example.org'::text));
CREATE DOMAIN shop.mailish AS text CHECK (shop.w(1, VALUE) IS NOT NULL);
CREATE TYPE shop.box AS (e text);
CREATE FUNCTION shop.to_box(e text) RETURNS shop.box LANGUAGE plpgsql AS $$
BEGIN PERFORM shop.set_email(1, e); RETURN ROW(e); END $$;
CREATE CAST (text AS shop.box) WITH FUNCTION shop.to_box(text);
CREATE DOMAIN shop.boxdom AS shop.box;
CREATE FUNCTION shop.to_boxes(e text) RETURNS shop.box[] LANGUAGE plpgsql AS $$
BEGIN PERFORM shop.set_email(1, e); RETURN ARRAY[ROW(e)::shop.box]; END $$;
CREATE CAST (text AS shop.box[]) WITH FUNCTION shop.to_boxes(text);
CREATE VIEW shop.dview AS SELECT 'plain@example.org'::shop.mailish AS x;
CREATE TABLE shop.arrd (m shop.mailish[]);
CREATE TABLE shop.outer_t (customer_id bigint);
INSERT INTO shop.outer_t VALUES (1);
CREATE POLICY outer_p ON shop.outer_t USING (EXISTS (SELECT 1 FROM shop.rlsbase));
ALTER TABLE shop.outer_t ENABLE ROW LEVEL SECURITY;
"""


def test_code_run_without_its_name_is_followed():
    """What a statement runs that it does not name: an operator's negator,
    the operators BETWEEN, IN (SELECT ...), CASE and JOIN ... USING use,
    an operator in a view, a policy or a default, the policies of the
    tables a view or a policy reads, a domain's check (cast to, in a view,
    in an array column), a cast to a domain or an array, an operator over
    a session's own function (pg_temp): each ran a function writing an
    e-mail in plaintext unrefused (reviewers'). In a transaction replacing
    a function, what may run it unnamed is refused until it commits."""
    s = Shop(customers=5)
    p = None
    try:
        s.server.psql(UNNAMED, dbname="shop")
        s.server.psql(f"CREATE ROLE rls_reader LOGIN PASSWORD '{s.password}'; GRANT USAGE ON SCHEMA shop TO "
                      "rls_reader; GRANT SELECT ON ALL TABLES IN SCHEMA shop TO rls_reader", dbname="shop")
        p = Proxy(s).start()
        before = s.value("SELECT email FROM shop.customers WHERE id = 1")
        plain = "'plain@example.org'::text"
        stmts = [f"SELECT NOT (1::bigint OPERATOR(shop.<%>) {plain})", f"SELECT {plain} OPERATOR(shop.<@@) 1::bigint",
                 "SET search_path = sneaky, public; SELECT 1 FROM (SELECT ROW(1)::shop.pair AS k) a "
                 "JOIN (SELECT ROW(1)::shop.pair AS k) b USING (k)",
                 f"SET search_path = sneaky, public; SELECT 1::bigint BETWEEN {plain} AND 'z'::text",
                 f"SET search_path = sneaky, public; SELECT 1::bigint IN (SELECT {plain})",
                 f"SET search_path = sneaky, public; SELECT CASE 1::bigint WHEN {plain} THEN 1 END",
                 "SELECT * FROM shop.opview", "INSERT INTO shop.opdef (customer_id) VALUES (1)",
                 f"SELECT {plain}::shop.mailish", f"SELECT {plain}::shop.boxdom", f"SELECT {plain}::shop.box[]",
                 "SELECT * FROM shop.dview", "INSERT INTO shop.arrd VALUES ('{plain@example.org}')"]
        for sql in stmts:
            code, msg = error_of(p, sql)
            assert code == "QC004" and "shop.set_email" in msg, (sql, msg)
        for rel in ("shop.opguard", "shop.rlsview", "shop.outer_t"):
            with pytest.raises(psycopg2.Error) as e, p.connect(user="rls_reader") as c, c.cursor() as cur:
                cur.execute(f"SELECT count(*) FROM {rel}")
            assert e.value.pgcode == "QC004", (rel, e.value.pgerror)
        with p.connect() as c, c.cursor() as cur:  # an operator over pg_temp's function, one session
            cur.execute("CREATE FUNCTION pg_temp.tw(cid bigint, e text) RETURNS boolean LANGUAGE sql "
                        "AS 'SELECT shop.set_email(cid, e) IS NULL'")
            cur.execute("CREATE OPERATOR shop.#@# (LEFTARG = bigint, RIGHTARG = text, FUNCTION = pg_temp.tw)")
            c.commit()
            with pytest.raises(psycopg2.Error) as e:
                cur.execute(f"SELECT 1::bigint OPERATOR(shop.#@#) {plain}")
            assert e.value.pgcode == "QC004", e.value.pgerror
        replace = ("CREATE OR REPLACE FUNCTION shop.yes(cid bigint, e text) RETURNS boolean "
                   "LANGUAGE plpgsql AS 'BEGIN RETURN true; END'")
        for ddl in (replace, f"DO $d${replace}; END$d$".replace("DO $d$", "DO $d$BEGIN "),
                    "ALTER FUNCTION shop.yes(bigint, text) RENAME TO yes2"):
            for use in ("SELECT 1::bigint OPERATOR(shop.~~~) 'x'::text", "SELECT * FROM shop.yesview"):
                with p.connect() as c, c.cursor() as cur:  # code changed: what runs it unnamed waits
                    cur.execute(ddl)
                    with pytest.raises(psycopg2.Error) as e:
                        cur.execute(use)
                    assert e.value.pgcode == "QC001" and "transaction" in e.value.pgerror, (ddl, use)
        unchanged = s.value("SELECT email FROM shop.customers WHERE id = 1") == before
        assert unchanged, "code run unnamed wrote the e-mail"  # (values kept out of the output)
    finally:
        if p:
            p.cleanup()
        s.stop()


IBOX = ("CREATE TYPE shop.ibox AS (e text); CREATE TABLE shop.iboxes (b shop.ibox); "
        "CREATE FUNCTION shop.to_ibox(e text) RETURNS shop.ibox LANGUAGE plpgsql AS "
        "$$BEGIN PERFORM shop.set_email(1, e); RETURN ROW(e); END$$; "
        "CREATE FUNCTION shop.takes_ibox(b shop.ibox) RETURNS int LANGUAGE sql AS 'SELECT 1'; ")
MOOD = ("CREATE TYPE shop.mood AS ENUM ('a'); CREATE FUNCTION shop.mood_json(m shop.mood) RETURNS json "
        "LANGUAGE plpgsql AS $$BEGIN PERFORM shop.set_email(1, 'plain@example.org'); RETURN '1'; END$$; ")


@pytest.mark.parametrize("setup, use, drop", [
    (IBOX + "CREATE CAST (text AS shop.ibox) WITH FUNCTION shop.to_ibox(text) AS IMPLICIT",
     "SELECT shop.takes_ibox('plain@example.org'::text)", "DROP CAST (text AS shop.ibox)"),
    (IBOX + "CREATE CAST (text AS shop.ibox) WITH FUNCTION shop.to_ibox(text) AS ASSIGNMENT",
     "INSERT INTO shop.iboxes VALUES ('plain@example.org'::text)", "DROP CAST (text AS shop.ibox)"),
    (MOOD + "CREATE CAST (shop.mood AS json) WITH FUNCTION shop.mood_json(shop.mood)",
     "SELECT to_json('a'::shop.mood)", "DROP CAST (shop.mood AS json)")])
def test_implicit_and_assignment_casts_count_as_run_by_any_statement(setup, use, drop):
    """A cast PostgreSQL applies unasked (AS IMPLICIT, AS ASSIGNMENT, or to
    json in to_json()) runs where no statement names it: its function
    counts as run by every statement that evaluates expressions. One
    writing an e-mail in plaintext (which it did through the proxy,
    unrefused, reviewers found) has them refused, not SET or DROP: the
    cast can be dropped through the proxy, and they run again."""
    s = Shop(customers=5)
    p = None
    try:
        s.server.psql(UNNAMED.split("CREATE SCHEMA sneaky;")[0] + setup, dbname="shop")
        p = Proxy(s).start()
        before = s.value("SELECT email FROM shop.customers WHERE id = 1")
        for sql in (use, "SELECT 1"):
            code, msg = error_of(p, sql)
            assert code == "QC004" and "shop.set_email" in msg, (sql, msg)
        unchanged = s.value("SELECT email FROM shop.customers WHERE id = 1") == before
        assert unchanged, "the cast wrote the e-mail"  # (values kept out of the output)
        assert error_of(p, "SET work_mem = '8MB'") is None
        assert error_of(p, drop) is None
        deadline = time.time() + 10  # the catalog is read again after the DDL commits
        while error_of(p, "SELECT 1") is not None and time.time() < deadline:
            time.sleep(0.2)
        assert error_of(p, "SELECT 1") is None
    finally:
        if p:
            p.cleanup()
        s.stop()


def test_operators_are_not_taken_for_code_they_do_not_run():
    """Operators and casts are matched by their symbol and type name alone,
    so the ones Custos trusts must not stand in the way: an extension's
    (citext's, owned by a role that is no longer a superuser, as on managed
    databases), whose C functions only a superuser could make (trusted, as
    a function in C or internal is); in a transaction that defines a
    routine, a statement using operators and casts but calling nothing
    runs; a DO block that only SETs is no code DDL (each was refused,
    reviewers found)."""
    s = Shop(customers=5)
    p = None
    try:
        s.server.psql("CREATE ROLE ext_owner SUPERUSER; SET ROLE ext_owner; CREATE EXTENSION citext; "
                      "RESET ROLE; ALTER ROLE ext_owner NOSUPERUSER; "
                      "CREATE FUNCTION shop.blen(text) RETURNS int LANGUAGE internal IMMUTABLE AS 'textlen'",
                      dbname="shop")
        p = Proxy(s).start()
        for sql in ("SELECT id FROM shop.orders WHERE id = 1", "SELECT 'a'::citext = 'A'::citext",
                    "SELECT 'a'::text || 'b'", "SELECT 'x'::citext::text LIKE 'x'", "SELECT shop.blen('x')"):
            assert error_of(p, sql) is None, sql
        c = p.connect()
        try:
            with c.cursor() as cur:
                cur.execute("CREATE FUNCTION shop.later() RETURNS int LANGUAGE sql AS 'SELECT 1'")
                cur.execute("SELECT id, status::varchar FROM shop.orders WHERE id > 0 ORDER BY id LIMIT 1")
                c.rollback()
                cur.execute("DO $$BEGIN SET LOCAL statement_timeout = 5000; END$$")  # not code DDL
                cur.execute("SELECT count(*) FROM shop.orders")
                cur.execute("CREATE FUNCTION shop.later() RETURNS int LANGUAGE sql AS 'SELECT 1'")
                with pytest.raises(psycopg2.Error) as e:  # a call: the routine may be the new one
                    cur.execute("SELECT shop.later()")
                assert e.value.pgcode == "QC001", e.value.pgerror
        finally:
            c.close()
    finally:
        if p:
            p.cleanup()
        s.stop()


def test_an_after_trigger_stores_no_row(proxy, shop):
    """What an AFTER trigger returns is not stored: an audit trigger on the
    customers returning COALESCE(NEW, OLD) leaves their writes alone (every
    INSERT and UPDATE of them was refused; found by a reviewer)."""
    n = shop.value("SELECT count(*) FROM shop.audit_trail")
    proxy.psql("INSERT INTO shop.customers (id, email, name, country) VALUES (900, 'trail@example.org', 'T', 'IE')")
    proxy.psql("UPDATE shop.customers SET email = 'trail2@example.org' WHERE id = 900")
    proxy.psql("DELETE FROM shop.customers WHERE id = 900")  # (the others count the customers)
    assert shop.value("SELECT count(*) FROM shop.audit_trail") == n + 3


def test_a_trigger_assigning_new_writes_the_row_it_fires_on(proxy, shop):
    """A trigger function assigning NEW's fields writes them: into an
    encrypted column, a value computed in the database, refused as a
    routine's write is; into the subject column on UPDATE, a move of the
    row to another subject, refused. Nothing is written."""
    n = shop.value("SELECT count(*) FROM shop.addresses")
    code, msg = error_of(proxy, "INSERT INTO shop.addresses (customer_id, kind, street, city, postal_code, "
                                "country) VALUES (3, 'billing', 'Elm Street 5', 'Graz', '8010', 'AT')")
    assert code == "QC004" and "the routine shop.address_upper" in msg, msg
    assert shop.value("SELECT count(*) FROM shop.addresses") == n
    before = shop.value("SELECT string_agg(customer_id::text, ',' ORDER BY id) FROM shop.addresses")
    code, msg = error_of(proxy, "UPDATE shop.addresses SET kind = 'billing' WHERE customer_id = 3")
    assert code == "QC004" and "does not move rows to another subject" in msg and \
        "shop.addresses" in msg, msg
    assert shop.value("SELECT string_agg(customer_id::text, ',' ORDER BY id) FROM shop.addresses") == before


def test_a_rule_runs_as_a_trigger_would(proxy, shop):
    """A rule (CREATE RULE) on a table is code a write to it runs: one
    copying values into an encrypted column is refused, nothing written;
    one updating a policy table makes the write an access to it, its
    attempt first, as does one whose condition reads a policy table; one
    whose condition calls a function (lower()) runs (a call in the
    condition used to count as code Custos cannot see, and every UPDATE of
    the customers was refused; found by a reviewer); one that touches
    nothing runs unrecorded. COPY FROM runs no rule, as in PostgreSQL (it
    was refused for the rule's write)."""
    n = shop.value("SELECT count(*) FROM shop.customers")
    code, msg = error_of(proxy, "INSERT INTO shop.leads VALUES ('lead@example.org', 'Lead Person')")
    assert code == "QC004" and "the rule leads_copy on shop.leads" in msg, msg
    assert shop.value("SELECT count(*) FROM shop.customers") == n
    assert shop.value("SELECT count(*) FROM shop.leads") == 0
    with proxy.connect() as conn, conn.cursor() as cur:  # COPY FROM runs no rule
        cur.copy_expert("COPY shop.leads FROM STDIN", io.StringIO("copied@example.org\tCopied\n"))
    assert shop.value("SELECT count(*) FROM shop.leads") == 1
    assert shop.value("SELECT count(*) FROM shop.customers") == n
    proxy.psql("INSERT INTO shop.visits VALUES (6)")
    assert shop.value("SELECT country FROM shop.customers WHERE id = 6") == "PT"
    recs = records_of(proxy, "INSERT INTO shop.visits", 2)
    assert [r["type"] for r in recs] == ["attempt", "access"], recs
    assert recs[1]["detail"]["tables"] == ["shop.customers"] and recs[1]["detail"]["attempt"] == recs[0]["seq"]
    proxy.psql("UPDATE shop.tally SET n = 2")
    recs = records_of(proxy, "UPDATE shop.tally", 1)
    assert recs and recs[0]["detail"]["tables"] == ["shop.customers"], recs
    proxy.psql("UPDATE shop.customers SET country = 'NO' WHERE id = 9")
    assert shop.value("SELECT country FROM shop.country_log WHERE id = 9") == "NO"
    proxy.psql("DELETE FROM shop.tally")
    assert shop.value("SELECT count(*) FROM shop.tally") == 1  # DO INSTEAD NOTHING
    time.sleep(0.5)
    assert not records_of(proxy, "DELETE FROM shop.tally", 1, timeout=0)


STORES_ANOTHER_ROW = {  # a BEFORE INSERT trigger's body, each storing another customer_id than NEW's
    "a RETURN of another row": "BEGIN RETURN jsonb_populate_record(NEW, '{\"customer_id\": 2}'); END",
    "a record variable": "DECLARE r record; BEGIN r := NEW; r.customer_id := 2; RETURN r; END",
    "a CALL given NEW": "BEGIN CALL shop.owner_of(NEW.customer_id); RETURN NEW; END",
    "a FETCH into NEW": "DECLARE c refcursor; BEGIN OPEN c FOR SELECT 2; FETCH c INTO NEW.customer_id; "
                        "CLOSE c; RETURN NEW; END",
}


@pytest.mark.parametrize("how", STORES_ANOTHER_ROW)
def test_a_trigger_that_may_store_another_row_is_refused(how):
    """A BEFORE trigger stores the row it returns, whatever it assigned:
    one returning another row, one a CALL may write NEW back into, and one
    whose body libpg_query does not parse (a record variable's field, a
    cursor) may store any value in any column, an encrypted one too: the
    INSERT is refused, nothing written (found by a reviewer: each put the
    row under another subject unseen)."""
    s = Shop(customers=3)
    try:
        s.server.psql("CREATE PROCEDURE shop.owner_of(INOUT c bigint) LANGUAGE plpgsql AS $p$ BEGIN c := 2; "
                      "END $p$; CREATE FUNCTION shop.address_owner() RETURNS trigger LANGUAGE plpgsql AS $$ "
                      f"{STORES_ANOTHER_ROW[how]} $$; CREATE TRIGGER address_owner BEFORE INSERT ON "
                      "shop.addresses FOR EACH ROW EXECUTE FUNCTION shop.address_owner()", dbname="shop")
        p = Proxy(s).start()
        n = s.value("SELECT count(*) FROM shop.addresses")
        code, msg = error_of(p, "INSERT INTO shop.addresses (customer_id, kind, street, city, postal_code, "
                                "country) VALUES (1, 'billing', 'Elm Street 5', 'Graz', '8010', 'AT')")
        assert code == "QC004" and "the routine shop.address_owner" in msg, msg
        assert s.value("SELECT count(*) FROM shop.addresses") == n
    finally:
        s.stop()


KEEPS = {  # a BEFORE UPDATE trigger's body on the customers: what its UPDATE gets (None: done)
    "takes the id and e-mail back from OLD": ("NEW.id := OLD.id; NEW.email = (OLD.email)", None),
    "changes OLD first": ("OLD.id := 2; NEW.id := OLD.id", "does not move rows"),
    "has a variable hiding OLD": ("DECLARE old shop.customers; BEGIN SELECT * INTO old FROM shop.customers "
                                  "WHERE id = 2; NEW.id := OLD.id; END", "does not move rows"),
    "stores an e-mail address of its own": ("NEW.email := OLD.email || 'x'", "cannot encrypt what"),
    # found by a reviewer: each put plaintext or another subject's id in the row, unrefused
    "has := in a comment": ("NEW.email = 'plain@example.org' -- := OLD.email\n", "cannot encrypt what"),
    "names OLD through an alias": ("DECLARE r record; old ALIAS FOR r; BEGIN SELECT 99::bigint AS id INTO r; "
                                   "NEW.id := old.id; END", "cannot encrypt what"),  # (any ALIAS: all of NEW)
    "has a CALL write OLD back": ("CALL shop.set_back(keep.old.email); NEW.email := OLD.email",
                                  "cannot encrypt what"),
    "changes OLD and returns it": ("OLD.email := 'plain@example.org'; RETURN OLD", "cannot encrypt what"),
    "returns a variable named new": ("DECLARE new shop.customers; BEGIN new := jsonb_populate_record(OLD, "
                                     "'{\"email\": \"plain@example.org\"}'); RETURN new; END",
                                     "cannot encrypt what"),
}


def test_a_trigger_taking_fields_back_from_old_stores_nothing_new():
    """NEW.id := OLD.id in a BEFORE UPDATE trigger (a key kept from
    changing) stores the row's own value: the UPDATE goes on (it was refused
    as a move, and NEW.email := OLD.email as a value Custos cannot encrypt).
    Where OLD may hold something else, it is a store like any other."""
    s = Shop(customers=3)
    try:
        s.server.psql("CREATE PROCEDURE shop.set_back(INOUT e text) LANGUAGE plpgsql AS $$ BEGIN "
                      "e := 'plain@example.org'; END $$", dbname="shop")
        for how, (body, refused) in KEEPS.items():
            body = body if body.startswith("DECLARE") else f"BEGIN {body}; END"
            s.server.psql("CREATE OR REPLACE FUNCTION shop.keep() RETURNS trigger LANGUAGE plpgsql AS $$ "
                          f"{body.replace('; END', '; RETURN NEW; END')} $$; DROP TRIGGER IF EXISTS keep "
                          "ON shop.customers; CREATE TRIGGER keep BEFORE UPDATE ON shop.customers FOR EACH ROW "
                          "EXECUTE FUNCTION shop.keep()", dbname="shop")
            p = Proxy(s).start()
            try:
                row = "SELECT {} FROM shop.customers WHERE id = 1"
                email, name = s.value(row.format("email")), s.value(row.format("name"))
                err = error_of(p, "UPDATE shop.customers SET name = 'Renamed', email = 'new@example.org' "
                                  "WHERE id = 1")
                kept = (s.value(row.format("email")) == email, s.value(row.format("name")) == name)
                if refused:
                    assert err and err[0] == "QC004" and refused in err[1] and kept == (True, True), (how, err)
                else:
                    assert err is None and kept == (True, False), (how, err, kept)
            finally:
                p.cleanup()
    finally:
        s.stop()


@pytest.mark.parametrize("toggle", ["ENABLE ROW LEVEL SECURITY", "DISABLE TRIGGER ALL"])
def test_turning_code_off_in_a_transaction_leaves_its_writes_alone(proxy, shop, toggle):
    """What an ALTER TABLE turns off, or row-level security, adds no code a
    write runs: the transaction's writes go on (they were refused as after
    ENABLE TRIGGER; found by a reviewer)."""
    conn = proxy.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"ALTER TABLE shop.quiet_leads {toggle}")
            cur.execute("INSERT INTO shop.quiet_leads VALUES ('x@example.org', 'X')")
    finally:
        conn.rollback()
        conn.close()


@pytest.mark.parametrize("table, toggle", [("quiet_leads", "RULE quiet_copy"),
                                           ("quiet_signups", "TRIGGER quiet_signups_copy")])
def test_a_rule_or_trigger_enabled_in_a_transaction_is_code_ddl(proxy, shop, table, toggle):
    """ALTER TABLE ... ENABLE RULE or TRIGGER changes what a write runs, as
    CREATE TRIGGER does: until it commits and the catalog is read again,
    the transaction's writes are refused. A disabled rule, which the
    catalog leaves out, ran unseen once enabled in the same transaction
    and put plaintext into an encrypted column (found by a reviewer)."""
    conn = proxy.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"ALTER TABLE shop.{table} ENABLE {toggle}")
            with pytest.raises(psycopg2.Error) as e:
                cur.execute(f"INSERT INTO shop.{table} VALUES ('quiet@example.org', 'Q')")
            assert e.value.pgcode == "QC001", e.value.pgerror
    finally:
        conn.rollback()
        conn.close()
    assert shop.value("SELECT count(*) FROM shop.customers WHERE email = 'quiet@example.org'") == 0


@pytest.mark.parametrize("sql, routine", [
    ("SELECT shop.dyn('shop.customers')", "shop.dyn"),          # EXECUTE
    ("SELECT shop.other_lang()", "shop.other_lang"),             # another language
    ("SELECT e FROM shop.emails()", "shop.emails"),              # a body libpg_query does not parse, naming a policy table
    ("DO $$ BEGIN EXECUTE 'SELECT 1 FROM shop.customers'; END $$", "DO block"),
    # bodies PostgreSQL reads when it runs them, under the settings then: with standard_conforming_strings
    # off, tidy's writes an e-mail in plaintext, and the block's a count of customers unrecorded (a reviewer's)
    ("SELECT shop.tidy(1)", "shop.tidy"),
    ("DO $d$ BEGIN PERFORM left('x\\' /*', 0); RAISE NOTICE '%', (SELECT count(*) FROM shop.customers); "
     "--*/, 0);\nEND $d$", "DO block"),
])
def test_code_custos_cannot_see_is_refused(proxy, sql, routine):
    code, msg = error_of(proxy, sql)
    assert code == "QC001" and routine in msg, msg


@pytest.mark.parametrize("sql, routine", [
    ("SELECT shop.reading_performed()", "shop.reading_performed"),  # PERFORM set_config()
    ("SELECT shop.reading_set()", "shop.reading_set"),              # SET, the name spelled with U&
    ("SELECT shop.reading_sql()", "shop.reading_sql"),              # an SQL function, E'\\137'
    ("SELECT shop.reading_outer()", "shop.reading_set"),            # through another routine
    ("INSERT INTO shop.reading_log VALUES (1)", "shop.reading_trigger"),  # a trigger
])
def test_code_changing_how_statements_read_is_refused(proxy, sql, routine):
    """A routine that turns standard_conforming_strings off: PostgreSQL
    reports it only after the statement, by when it may have read the next
    ones of a pipeline otherwise than Custos did. Such code is refused (it
    ran, unrefused, and the session's setting was off after it)."""
    e = proxy.refused_keeping_reading(sql)
    assert e.pgcode == "QC001" and routine in e.pgerror, e.pgerror
    assert proxy.psql("SELECT shop.add(1, 2)").stdout.strip() == "3"


def test_a_routine_setting_what_it_is_told_runs_and_the_reading_it_changes_ends_the_session(proxy):
    """set_config(n, v) in a helper for the application's own settings runs
    (it was refused: the setting is not a constant). Told to turn
    standard_conforming_strings off, it does, and PostgreSQL says so: the
    session's statements are refused from then on."""
    conn = proxy.connect()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT shop.app_setting('app.user_id', '42')")
            assert cur.fetchone() == ("42",)
            cur.execute("SELECT shop.app_setting('standard_' || 'conforming_strings', 'off')")
            with pytest.raises(psycopg2.Error) as e:
                cur.execute("SELECT 1")
            assert "reads statements only with standard_conforming_strings on" in e.value.pgerror
    finally:
        conn.close()


def test_a_do_block_libpg_query_does_not_parse_is_refused_only_near_personal_data(proxy):
    """libpg_query 15 does not parse every PL/pgSQL body (a cursor
    declaration): such a block runs when its text names nothing that leads
    to personal data, and is refused when it does."""
    proxy.psql("DO $$ DECLARE c CURSOR FOR SELECT 1; BEGIN OPEN c; CLOSE c; END $$")
    code, msg = error_of(proxy, "DO $$ DECLARE c CURSOR FOR SELECT email FROM shop.customers; "
                                "BEGIN OPEN c; CLOSE c; END $$")
    assert code == "QC001" and "DO block" in msg, msg


def test_routines_touching_no_personal_data_run_unrecorded(proxy):
    """A function that reaches no policy table (one whose body libpg_query
    does not parse but names none, too) runs as before, with no record."""
    assert proxy.psql("SELECT shop.add(1, 2), lower('X')").stdout.strip() == "3|x"
    assert proxy.psql("SELECT count(*) FROM shop.numbers(4)").stdout.strip() == "4"
    time.sleep(0.5)
    assert not [r for r in proxy.d.records() if "shop.add" in r.get("stmt", "") or "numbers" in r.get("stmt", "")]


def test_a_routine_created_through_the_proxy_is_known_after_it(proxy):
    """CREATE FUNCTION through the proxy reloads the catalog: the next
    statements see what the new function does, and what the others do
    (analysed at the first load, their analyses reused) still holds."""
    proxy.psql("CREATE FUNCTION shop.late() RETURNS bigint LANGUAGE sql AS 'SELECT max(id) FROM shop.customers'")
    deadline = time.time() + 10  # within 100 ms of the DDL, or later on a busy machine
    while not records_of(proxy, "SELECT shop.late", 1, timeout=0.2) and time.time() < deadline:
        proxy.psql("SELECT shop.late()")
    recs = records_of(proxy, "SELECT shop.late", 1)
    assert recs and recs[-1]["detail"]["tables"] == ["shop.customers"]
    proxy.psql("SELECT shop.counted()")
    assert records_of(proxy, "SELECT shop.counted", 1)[-1]["detail"]["tables"] == ["shop.customers"]
    assert error_of(proxy, "SELECT shop.dyn('shop.orders')")[0] == "QC001"


def test_a_temporary_function_is_seen(proxy):
    """pg_temp.f is every session's temporary schema's f: a temporary
    function reading a policy table is recorded like any other."""
    conn = proxy.connect()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE FUNCTION pg_temp.leak() RETURNS SETOF text LANGUAGE sql "
                        "AS 'SELECT email FROM shop.customers'")
            cur.execute("SELECT pg_temp.leak()")
            assert cur.rowcount == 20
    finally:
        conn.close()
    recs = records_of(proxy, "SELECT pg_temp.leak", 1)
    assert recs and recs[0]["detail"]["tables"] == ["shop.customers"]


def test_code_defined_in_the_same_transaction_or_string_is_refused(proxy):
    """What a routine does is known once the catalog shows it, after its
    definition commits: a call (or a write, which may fire a trigger)
    after routine DDL in the same transaction, or in the same query
    string, is refused; once committed, the routine is seen."""
    create = ("CREATE FUNCTION shop.fresh() RETURNS bigint LANGUAGE sql "
              "AS 'SELECT count(*) FROM shop.customers'")
    code, msg = error_of(proxy, create + "; SELECT shop.fresh()")
    assert code == "QC001" and "committed" in msg, msg
    conn = proxy.connect()
    try:
        with conn.cursor() as cur:  # a transaction: psycopg2 opens one
            cur.execute(create)
            with pytest.raises(psycopg2.Error) as e:
                cur.execute("SELECT shop.fresh()")
            assert e.value.pgcode == "QC001"
        conn.rollback()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(create)
            cur.execute("SELECT shop.fresh()")  # the next statement: the catalog was read at commit
            assert cur.fetchone()[0] == 20
    finally:
        conn.close()
    recs = records_of(proxy, "SELECT shop.fresh", 1)
    assert recs and recs[0]["detail"]["tables"] == ["shop.customers"]


def test_a_cascading_delete_counts_as_a_write_of_the_tables_it_reaches(proxy):
    """DELETE FROM customers deletes their addresses and orders too (ON
    DELETE CASCADE): its records name those policy tables as well. An
    UPDATE of customers, which no foreign key acts on, names only them."""
    proxy.psql("DELETE FROM shop.customers WHERE id = -1")
    proxy.psql("UPDATE shop.customers SET country = 'DE' WHERE id = -1")
    recs = records_of(proxy, "DELETE FROM shop.customers", 2)
    assert [r["type"] for r in recs] == ["attempt", "access"], recs
    tables = recs[1]["detail"]["tables"]
    assert tables[0] == "shop.customers" and {"shop.addresses", "shop.orders"} <= set(tables), tables
    assert recs[1]["object"]["table"] == "shop.customers"
    upd = records_of(proxy, "UPDATE shop.customers", 2)
    assert upd[1]["detail"]["tables"] == ["shop.customers"], upd


def test_an_aggregate_and_a_domain_check_run_what_they_call(proxy):
    """An aggregate runs its support functions; a column's domain CHECK
    runs its function on INSERT and UPDATE: what those read is recorded."""
    assert proxy.psql("SELECT shop.leaky(1)").stdout.strip() == "21"
    proxy.psql("INSERT INTO shop.checked_t VALUES (1)")
    for start in ("SELECT shop.leaky", "INSERT INTO shop.checked_t"):
        recs = records_of(proxy, start, 1)
        assert recs and recs[-1]["detail"]["tables"] == ["shop.customers"], (start, recs)


@pytest.mark.parametrize("sql", [
    "INSERT INTO shop.memo VALUES (9, 9)",  # a DELETE trigger: not run by an INSERT
])
def test_a_trigger_runs_only_for_its_events(proxy, sql):
    proxy.psql(sql)
    time.sleep(0.5)
    assert not [r for r in proxy.d.records() if r.get("stmt", "").startswith("INSERT INTO shop.memo")]


@pytest.mark.parametrize("sql, start", [
    ("DELETE FROM shop.memo WHERE id = 1", "DELETE FROM shop.memo"),
    ("WITH d AS (DELETE FROM shop.memo WHERE id = 2 RETURNING *) INSERT INTO shop.memo "
     "SELECT id + 10, customer_id FROM d", "WITH d AS"),  # the same table, written two ways
    ("COPY (DELETE FROM shop.memo WHERE id = 3 RETURNING id) TO STDOUT", "CopyStmt"),
    ("UPDATE shop.parted SET k = 2 WHERE k = 1", "UPDATE shop.parted"),  # the row moves: INSERT into parted2
])
def test_every_kind_of_write_a_statement_makes_runs_its_triggers(proxy, sql, start):
    proxy.psql(sql)
    recs = records_of(proxy, start, 2)
    assert [r["type"] for r in recs] == ["attempt", "access"], recs
    assert "shop.customers" in recs[1]["detail"]["tables"], recs


def test_truncate_cascade_empties_the_tables_that_reference_it(proxy):
    """TRUNCATE ... CASCADE empties every table referencing the truncated
    one, whatever its foreign key's actions (last: it empties the tickets)."""
    code, _ = error_of(proxy, "TRUNCATE shop.ticket_kinds")  # referenced: PostgreSQL refuses
    assert code == "0A000"
    proxy.psql("TRUNCATE shop.ticket_kinds CASCADE")
    recs = records_of(proxy, "TruncateStmt", 2)
    assert [r["type"] for r in recs] == ["attempt", "access"], recs
    assert "shop.support_tickets" in recs[1]["detail"]["tables"], recs
