"""custosctl policy check: the sample policy is valid; broken ones are
refused with file:line:col messages that say what would be right."""
import re
from pathlib import Path

import pytest

from conftest import ctl

ROOT = Path(__file__).resolve().parents[2]
LOC = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$")


def test_sample_policy_is_valid():
    p = ctl("policy", "check", ROOT / "policies" / "shop.yaml")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("OK subjects=1 tables=9 ")


BROKEN = {
    "typo_key": ("""custos-policy: 1
subjects: {customer: {table: shop.customers, id: id}}
tables:
  shop.customers:
    columns:
      email:
        categroy: user.contact.email
""", 7, 9, 'unknown key "categroy" in column shop.customers.email; did you mean "category"?'),
    "bad_enum": ("""custos-policy: 1
subjects: {customer: {table: shop.customers, id: id}}
tables:
  shop.customers:
    defaults: {category: user.name, purposes: [a], lawful_basis: contract, retention: 1y,
               source: s, recipients: [], provided_by_subject: true}
    columns:
      name: {erase: crypto_shredd, encrypt: true}
""", 8, 21, 'did you mean "crypto_shred"?'),
    "shred_needs_encrypt": ("""custos-policy: 1
subjects: {customer: {table: shop.customers, id: id}}
tables:
  shop.customers:
    defaults: {category: user.name, purposes: [a], lawful_basis: contract, retention: 1y,
               source: s, recipients: [], provided_by_subject: true}
    columns:
      name: {erase: crypto_shred}
""", 8, 7, "crypto_shred needs encrypt: true"),
    "missing_keys": ("""custos-policy: 1
subjects: {customer: {table: shop.customers, id: id}}
tables:
  shop.customers:
    columns:
      name: {category: user.name}
""", 6, 7, "missing purposes, lawful_basis, retention, source, recipients, provided_by_subject, erase"),
    "version": ("custos-policy: 2\n", 1, 16, "policy format 1"),
    "not_yaml": ("custos-policy: 1\ntables: [\n", 3, 1, "not valid YAML"),
    "bad_table_name": ("""custos-policy: 1
tables:
  Customers: {columns: {}}
""", 3, 3, "tables are named schema.table"),
    "duplicate_key": ("""custos-policy: 1
custos-policy: 1
""", 2, 1, 'key "custos-policy" given twice'),
    "retain_needs_until": ("""custos-policy: 1
subjects: {customer: {table: shop.customers, id: id}}
tables:
  shop.invoices:
    defaults: {category: user.name, purposes: [a], lawful_basis: contract, retention: 1y,
               source: s, recipients: [], provided_by_subject: true}
    columns:
      billing_name: {erase: {retain: "tax law"}}
""", 8, 29, "missing until"),
    "controller_missing_keys": ("""custos-policy: 1
controller:
  name: Example Shop Ltd
""", 3, 3, "controller: missing contact, supervisory_authority"),
    "controller_twice": ("""custos-policy: 1
controller: {name: a, contact: b, supervisory_authority: c}
requests: {erasure_approval: none}
requests: {erasure_approval: any}
""", 4, 1, 'key "requests" given twice'),
    "approval_typo": ("""custos-policy: 1
requests:
  erasure_approval: second_persn
""", 3, 21, 'did you mean "second_person"?'),
    "relation_sides_differ": ("""custos-policy: 1
relations:
  - from: [shop.notes.tenant, shop.notes.customer_id]
    to: shop.customers.id
""", 3, 5, "relation: from names 2 columns and to 1; they pair up in order"),
    "relation_two_tables": ("""custos-policy: 1
relations:
  - {from: [shop.notes.tenant, shop.memos.customer_id], to: [shop.customers.tenant, shop.customers.id]}
""", 3, 32, "from names the columns of one table: shop.memos is not shop.notes"),
    "relation_column_twice": ("""custos-policy: 1
relations:
  - {from: [shop.notes.id, shop.notes.id], to: [shop.customers.tenant, shop.customers.id]}
""", 3, 28, "from names column id twice"),
    "relation_split": ("""custos-policy: 1
relations:
  - {from: shop.notes.tenant, to: shop.customers.tenant}
  - {from: shop.notes.customer_id, to: shop.customers.id}
""", 4, 5, "a second relation from shop.notes to shop.customers, to other columns (the first at "),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_policy_names_file_line_col(tmp_path, name):
    text, line, col, want = BROKEN[name]
    f = tmp_path / f"{name}.yaml"
    f.write_text(text)
    p = ctl("policy", "check", f)
    assert p.returncode == 1, p.stdout + p.stderr
    errors = [LOC.match(l) for l in p.stderr.splitlines() if LOC.match(l)]
    hit = [m for m in errors if want in m["msg"]]
    assert hit, p.stderr
    assert (int(hit[0]["line"]), int(hit[0]["col"])) == (line, col), p.stderr
    assert hit[0]["file"] == str(f)


def test_two_links_to_the_same_columns_are_two_ways_to_one_subject(tmp_path):
    """A buyer's and a seller's id, both a customer's: two relations
    between the same tables to the same column are not a key split in two,
    and the policy is valid (it was refused; found by a reviewer)."""
    f = tmp_path / "p.yaml"
    f.write_text("custos-policy: 1\nrelations:\n  - {from: shop.sales.buyer_id, to: shop.customers.id}\n"
                 "  - {from: shop.sales.seller_id, to: shop.customers.id}\n")
    p = ctl("policy", "check", f)
    assert p.returncode == 0, p.stderr


def test_table_declared_in_two_files(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    body = """custos-policy: 1
tables:
  shop.customers:
    defaults: {category: user.name, purposes: [a], lawful_basis: contract, retention: 1y,
               source: s, recipients: [], provided_by_subject: true}
    columns:
      name: {erase: anonymize}
"""
    a.write_text("subjects: {customer: {table: shop.customers, id: id}}\n" + body)
    b.write_text(body)
    p = ctl("policy", "check", a, b)
    assert p.returncode == 1 and f"{b}:3:3: table shop.customers declared twice" in p.stderr


def test_controller_declared_in_two_files(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("custos-policy: 1\ncontroller: {name: a, contact: b, supervisory_authority: c}\n")
    b.write_text("custos-policy: 1\n\ncontroller: {name: a, contact: b, supervisory_authority: c}\n")
    p = ctl("policy", "check", a, b)
    assert p.returncode == 1 and f"{b}:3:13: controller: given again (first at {a}:2)" in p.stderr


def test_usage_and_io_errors(tmp_path):
    assert ctl("policy", "check").returncode == 2
    assert ctl("policy", "check", tmp_path / "missing.yaml").returncode == 2
    assert ctl("policy", "check", "--help").stdout.startswith("Usage: custosctl policy check")


# -- bound to a live catalog (--db) -----------------------------------------

from pg import pg, shop_db, shop_db_copy  # noqa: E402,F401 (fixtures)

COLUMN = """    defaults: {{category: user.name, purposes: [a], lawful_basis: contract, retention: 1y,
               source: s, recipients: [], provided_by_subject: true}}
    columns:
      {col}: {{erase: {erase}, encrypt: {enc}}}
"""


def policy(tmp_path, table, col, erase="crypto_shred", enc="true", extra=""):
    f = tmp_path / "p.yaml"
    f.write_text("custos-policy: 1\nsubjects: {customer: {table: shop.customers, id: id}}\n" + extra +
                 f"tables:\n  {table}:\n" + COLUMN.format(col=col, erase=erase, enc=enc))
    return f


def check_db(db, f):
    return ctl("policy", "check", "--db", db.dsn, f)


def test_shop_policy_binds_to_the_shop_database(shop_db):
    p = ctl("policy", "check", "--db", shop_db.dsn, ROOT / "policies" / "shop.yaml")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("OK ")
    # the shop's plaintext is not encrypted yet, so no column is guarded (encrypt-existing guards them)
    assert "note: 13 encrypted columns are not guarded by the database (shop.customers.email, " \
           "shop.customers.name, shop.customers.phone, shop.customers.date_of_birth, shop.addresses.street " \
           "and 8 more)" in p.stderr, p.stderr


def test_db_column_typo_is_named_with_a_suggestion(shop_db, tmp_path):
    f = policy(tmp_path, "shop.customers", "emial")
    p = check_db(shop_db, f)
    assert p.returncode == 1
    assert f'{f}:8:7: column "emial" not found in table shop.customers; did you mean "email"?' in p.stderr


def test_db_table_typo(shop_db, tmp_path):
    f = policy(tmp_path, "shop.customer", "email")
    p = check_db(shop_db, f)
    assert p.returncode == 1
    assert 'table shop.customer not found in the database; did you mean "shop.customers"?' in p.stderr


def test_db_types_that_cannot_hold_ciphertext(shop_db_copy, tmp_path):
    shop_db_copy.psql("ALTER TABLE shop.customers ADD COLUMN nickname varchar(20), ADD COLUMN shoe_size int;")
    p = check_db(shop_db_copy, policy(tmp_path, "shop.customers", "nickname"))
    assert p.returncode == 1 and re.search(r"needs character varying\(\d+\) or text", p.stderr), p.stderr
    p = check_db(shop_db_copy, policy(tmp_path, "shop.customers", "shoe_size"))
    assert p.returncode == 1 and "integer, which cannot hold ciphertext" in p.stderr, p.stderr
    p = check_db(shop_db_copy, policy(tmp_path, "shop.customers", "shoe_size", erase="anonymize", enc="false"))
    assert p.returncode == 0, p.stderr
    # a bytea column is encrypted byte for byte; a blind index of its text would differ by spelling
    shop_db_copy.psql("ALTER TABLE shop.customers ADD COLUMN photo bytea, ADD COLUMN photo_bidx text;")
    f = policy(tmp_path, "shop.customers", "photo")
    f.write_text(f.read_text().replace("encrypt: true}", "encrypt: true, blind_index: {column: photo_bidx}}"))
    p = check_db(shop_db_copy, f)
    assert p.returncode == 1 and "bytea column shop.customers.photo cannot have a blind index" in p.stderr, \
        p.stderr


def test_db_table_unreachable_from_any_subject(shop_db_copy, tmp_path):
    shop_db_copy.psql("CREATE TABLE shop.notes (id int PRIMARY KEY, customer_ref bigint, note text);")
    f = policy(tmp_path, "shop.notes", "note")
    p = check_db(shop_db_copy, f)
    assert p.returncode == 1 and "table shop.notes holds personal data, but nothing leads" in p.stderr
    rel = "relations:\n  - {from: shop.notes.customer_ref, to: shop.customers.id}\n"
    assert check_db(shop_db_copy, policy(tmp_path, "shop.notes", "note", extra=rel)).returncode == 0
    shop_db_copy.psql("ALTER TABLE shop.notes ADD FOREIGN KEY (customer_ref) REFERENCES shop.customers (id);")
    assert check_db(shop_db_copy, f).returncode == 0
    shop_db_copy.psql("ALTER TABLE shop.notes ADD COLUMN tenant int;")
    rel = "relations:\n  - {from: [shop.notes.tenant, shop.notes.customer_ref], to: [shop.customers.id, " \
          "shop.customers.country]}\n"  # a link of two columns: both must exist
    assert check_db(shop_db_copy, policy(tmp_path, "shop.notes", "note", extra=rel)).returncode == 0
    p = check_db(shop_db_copy, policy(tmp_path, "shop.notes", "note", extra=rel.replace("country", "tenant")))
    assert p.returncode == 1 and 'column "tenant" not found in table shop.customers' in p.stderr, p.stderr
    off = "foreign_keys: false\n"
    p = check_db(shop_db_copy, policy(tmp_path, "shop.notes", "note", extra=off))
    assert p.returncode == 1 and "(foreign_keys: false)" in p.stderr


def test_db_unreachable_server_is_a_usage_error(tmp_path):
    f = policy(tmp_path, "shop.customers", "email")
    p = ctl("policy", "check", "--db", "host=/nonexistent port=1 connect_timeout=2", f)
    assert p.returncode == 2 and "--db" in p.stderr
