"""custosctl log init / verify / show / export, against real log directories."""
import json
import os
import re
import stat

from conftest import append, ctl, lines, record, segments, verify, WRITER, run

OK = re.compile(r"^OK records=(\d+) head=(\d+):([0-9a-f]{64})$")


def test_init_writes_key_offline_material_only_to_key_file(newlog):
    log, key = newlog
    assert stat.S_IMODE(key.stat().st_mode) == 0o400
    text = key.read_text()
    seed = re.search(r"^mac-seed ([0-9a-f]{64})$", text, re.M).group(1)
    for f in log.iterdir():
        assert seed not in f.read_text(errors="replace"), f"k0 leaked into {f.name}"
    assert stat.S_IMODE((log / "log.state").stat().st_mode) == 0o600
    assert "mac-seed" not in (log / "log.pub").read_text()


def test_init_refuses_to_overwrite(newlog, tmp_path):
    log, key = newlog
    p = ctl("log", "init", "--dir", log, "--key-out", tmp_path / "other.key")
    assert p.returncode == 2 and "refusing to overwrite" in p.stderr
    p = ctl("log", "init", "--dir", tmp_path / "other", "--key-out", key)
    assert p.returncode == 2 and "refusing to overwrite" in p.stderr
    assert not (tmp_path / "other.key").exists()


def test_verify_ok_with_key_and_public_key(filledlog):
    log, key, _ = filledlog
    code, out = verify(log, key)
    assert code == 0, out
    m = OK.match(out)
    assert m and int(m.group(1)) == int(m.group(2)) > 200
    p = ctl("log", "verify", "--dir", log, "--public-key", log / "log.pub")
    assert p.returncode == 0 and p.stdout.strip() == out
    last = lines(segments(log)[-1])[-1]
    assert m.group(3) == __import__("hashlib").sha256(last).hexdigest()


def test_verify_usage_errors(newlog):
    log, key = newlog
    assert ctl("log", "verify", "--dir", log).returncode == 2
    assert ctl("log", "verify", "--dir", log, "--key", key, "--public-key", key).returncode == 2
    assert ctl("log", "verify", "--dir", log, "--key", log / "log.pub").returncode == 2
    assert ctl("log", "verify", "--dir", log / "nope", "--key", key).returncode == 2
    assert ctl("log", "verify", "--dir", log, "--key", key, "--expect-head", "x").returncode == 2
    assert ctl("log", "nope").returncode == 2


def test_every_command_has_help():
    assert "Usage" in ctl("--help", check=0).stdout
    for cmd in ("init", "verify", "show", "export"):
        p = ctl("log", cmd, "--help", check=0)
        assert p.stdout.startswith(f"Usage: custosctl log {cmd}")


def test_show_decrypts_subjects_only_with_keys_and_after_shred_says_erased(filledlog):
    log, key, keys = filledlog
    # the raw identifier never reaches the log in clear
    for seg in segments(log):
        assert b"customer:1000" not in seg.read_bytes()
    plain = ctl("log", "show", "--dir", log, "--json", check=0).stdout
    assert "customer:1000" not in plain
    shown = ctl("log", "show", "--dir", log, "--json", "--keys", keys, check=0).stdout
    recs = [json.loads(l) for l in shown.splitlines()]
    ids = {s["id"] for r in recs for s in r.get("subjects", [])}
    assert "customer:1000" in ids and "customer:1019" in ids
    run(WRITER, "--keys", keys, "--shred", "customer:1000", check=0)
    shown = ctl("log", "show", "--dir", log, "--json", "--keys", keys, check=0).stdout
    ids = [s["id"] for l in shown.splitlines() for s in json.loads(l).get("subjects", [])]
    assert "customer:1000" not in ids and "[erased]" in ids and "customer:1019" in ids
    assert verify(log, key)[0] == 0


def test_show_filters(filledlog):
    log, _, keys = filledlog
    def seqs(*args):
        out = ctl("log", "show", "--dir", log, "--json", *args, check=0).stdout
        return [json.loads(l) for l in out.splitlines()]
    assert all(r["type"] == "checkpoint" for r in seqs("--type", "checkpoint"))
    assert len(seqs("--type", "checkpoint")) >= 4
    some = next(r for r in seqs() if r.get("subjects"))
    ref = some["subjects"][0]["ref"]
    hits = seqs("--subject-ref", ref)
    assert hits and all(any(s["ref"] == ref for s in r["subjects"]) for r in hits)
    assert seqs("--since", "2999-01-01") == []
    assert len(seqs("--until", "2000-01-01")) == 0
    assert ctl("log", "show", "--dir", log, "--since", "yesterday").returncode == 2
    table = ctl("log", "show", "--dir", log, "--keys", keys, check=0).stdout
    assert table.splitlines()[0].split()[:3] == ["SEQ", "TIME", "(UTC)"]
    assert "customer:1010" in table


def test_export_jsonl_is_the_exact_records(filledlog):
    log, _, _ = filledlog
    out = ctl("log", "export", "--dir", log, "--format", "jsonl", check=0).stdout.encode()
    want = b"".join(l + b"\n" for s in segments(log) for l in lines(s))
    assert out == want


def test_export_cef_escapes(newlog):
    log, _ = newlog
    append(log, [record(1, stmt="SELECT a=b | c\\d\nFROM t", actor={"user": "x|y=z", "addr": "10.1.1.1"})])
    out = ctl("log", "export", "--dir", log, "--format", "cef", check=0).stdout.splitlines()
    access = [l for l in out if "|access|" in l]
    assert len(access) == 1
    line = access[0]
    assert line.startswith("CEF:0|Custos|custosd|")
    assert "msg=SELECT a\\=b | c\\\\d\\nFROM t" in line
    assert "suser=x|y\\=z" in line and "src=10.1.1.1" in line
    assert ctl("log", "export", "--dir", log, "--format", "xml").returncode == 2
    append(log, [record(2, actor={"user": "u", "addr": "[local]"})])
    out = ctl("log", "export", "--dir", log, "--format", "cef", check=0).stdout
    assert "shost=[local]" in out and "src=[local]" not in out  # src must be an IP address


def test_records_and_segments_readable_by_jq_and_zcat(tmp_path, newlog):
    log, key = newlog
    append(log, [record(i) for i in range(3000)], None, ["--segment-bytes", "65536"])
    append(log, [], None, [])  # reopen: the sealer runs
    import time, shutil, subprocess
    deadline = time.time() + 20
    while not any(s.name.endswith(".gz") for s in segments(log)) and time.time() < deadline:
        append(log, [], None, [])
        time.sleep(0.2)
    gz = [s for s in segments(log) if s.name.endswith(".gz")]
    assert gz, "no segment was sealed"
    z = subprocess.run(f"zcat {gz[0]} | jq -c .seq", shell=True, capture_output=True, text=True)
    assert z.returncode == 0 and z.stdout.split()[0] == "1"
    plain = [s for s in segments(log) if not s.name.endswith(".gz")][-1]
    j = subprocess.run(["jq", "-c", ".type", str(plain)], capture_output=True, text=True)
    assert j.returncode == 0, j.stderr
    assert verify(log, key)[0] == 0


def test_records_match_the_published_schema(filledlog, tmp_path):
    import jsonschema
    from pathlib import Path
    log, _, _ = filledlog
    # a torn tail and its recovery record too
    seg = segments(log)[-1]
    data = seg.read_bytes()
    end = data.find(b"\n\n")
    seg.write_bytes(data[: end + 1 if end >= 0 else len(data)] + b'{"seq":9')
    append(log, [record(1, detail={"note": "x"})])
    schema = json.loads((Path(__file__).parents[2] / "schemas" / "audit-record.schema.json").read_text())
    out = ctl("log", "export", "--dir", log, "--format", "jsonl", check=0).stdout
    types = set()
    for line in out.splitlines():
        rec = json.loads(line)
        jsonschema.validate(rec, schema)
        types.add(rec["type"])
    assert {"log_init", "access", "checkpoint", "recovery"} <= types
