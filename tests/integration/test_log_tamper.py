"""verify must catch every kind of tampering DESIGN.md and the issue name,
and name the first bad record."""
import gzip
import zlib
import json
import random
import re
import shutil

import pytest

from conftest import FORGE, append, ctl, line_hash, lines, record, run, segments, verify

FAIL = re.compile(r"^FAIL seq=(\d+): .+")


@pytest.fixture
def log3(newlog, tmp_path):
    """A log of 3 segments (2 sealed) and checkpoints every 25 records."""
    log, key = newlog
    append(log, [record(i) for i in range(600)], None,
           ["--segment-bytes", "65536", "--checkpoint-records", "25"])
    # reopen until the sealer has compressed the full segments
    import time
    for _ in range(100):
        if sum(s.name.endswith(".gz") for s in segments(log)) >= 2:
            break
        append(log, [], None, ["--segment-bytes", "65536"])
        time.sleep(0.1)
    assert sum(s.name.endswith(".gz") for s in segments(log)) >= 2
    assert verify(log, key)[0] == 0
    return log, key


def active(log):
    return [s for s in segments(log) if not s.name.endswith(".gz")][-1]


def rewrite_active(log, fn):
    seg = active(log)
    recs = lines(seg)
    recs = fn(recs)
    seg.write_bytes(b"".join(r + b"\n" for r in recs))


def seq_of(line):
    return json.loads(line)["seq"]


def expect_fail(log, key, seq=None, *extra):
    code, out = verify(log, key, *extra)
    assert code == 1, out
    m = FAIL.match(out)
    assert m, out
    if seq is not None:
        assert int(m.group(1)) == seq, out
    return out


@pytest.mark.parametrize("field", ["seq", "ts", "type", "body", "prev", "mac", "brace"])
def test_changed_byte_in_plain_segment(log3, field):
    log, key = log3
    recs = lines(active(log))
    i = len(recs) // 2
    line = bytearray(recs[i])
    pos = {"seq": 7, "ts": 20, "type": line.index(b'"type":"') + 9,
           "body": line.index(b'"actor"') + 10, "prev": line.index(b'"prev":"') + 30,
           "mac": line.index(b'"mac":"') + 40, "brace": len(line) - 1}[field]
    line[pos] = ord("3") if line[pos] != ord("3") else ord("4")
    want = seq_of(recs[i])
    rewrite_active(log, lambda r: r[:i] + [bytes(line)] + r[i + 1:])
    expect_fail(log, key, want)
    # with only the public key the chain still catches it (at this record or the next)
    p = ctl("log", "verify", "--dir", log, "--public-key", log / "log.pub")
    assert p.returncode == 1 and int(FAIL.match(p.stdout).group(1)) in (want, want + 1)


def same_content(a, b):
    """Whether two gzip files hold the same bytes (a damaged one does not)."""
    try:
        return gzip.decompress(a) == gzip.decompress(b)
    except (OSError, EOFError, zlib.error):
        return False


def test_random_byte_changes_anywhere(log3, tmp_path):
    log, key = log3
    rng = random.Random(7)
    for n in range(40):
        copy = tmp_path / f"c{n}"
        shutil.copytree(log, copy)
        seg = rng.choice(segments(copy))
        data = bytearray(seg.read_bytes())
        if not seg.name.endswith(".gz"):
            data = data[: data.find(b"\n\n") + 1 or len(data)]
        pos = rng.randrange(len(data))
        before = bytes(data)
        data[pos] ^= 1 << rng.randrange(8)
        seg.write_bytes(bytes(data))
        if seg.name.endswith(".gz") and same_content(before, bytes(data)):
            # the gzip header's time stamp, or a padding bit after the last
            # deflate block: the records are byte for byte the same
            shutil.rmtree(copy)
            continue
        code, out = verify(copy, key)
        assert code == 1 and FAIL.match(out), f"{seg.name}@{pos}: {out}"
        shutil.rmtree(copy)


def test_changed_record_inside_compressed_segment(log3):
    log, key = log3
    seg = max((s for s in segments(log) if s.name.endswith(".gz")), key=lambda s: s.stat().st_size)
    recs = gzip.decompress(seg.read_bytes()).splitlines()
    i = next(j for j in range(len(recs) // 2, len(recs)) if b'"rows":1' in recs[j])
    recs[i] = recs[i].replace(b'"rows":1', b'"rows":7')
    seg.write_bytes(gzip.compress(b"".join(r + b"\n" for r in recs)))
    expect_fail(log, key, seq_of(recs[i]))


def test_inserted_deleted_reordered_records(log3, tmp_path):
    log, key = log3
    cases = {
        "insert": lambda r: r[:10] + [r[9]] + r[10:],
        "delete": lambda r: r[:10] + r[11:],
        "reorder": lambda r: r[:10] + [r[11], r[10]] + r[12:],
    }
    for name, fn in cases.items():
        copy = tmp_path / name
        shutil.copytree(log, copy)
        first = seq_of(lines(active(copy))[0])
        rewrite_active(copy, fn)
        expect_fail(copy, key, first + 10)


def test_removed_segment(log3):
    log, key = log3
    middle = segments(log)[1]
    middle.unlink()
    out = expect_fail(log, key)
    assert "missing" in out


def test_tail_cut_caught_only_with_expected_head(log3):
    log, key = log3
    code, out = verify(log, key)
    head = out.split("head=")[1]
    rewrite_active(log, lambda r: r[:-5])
    assert verify(log, key)[0] == 0  # a shorter log is still a valid log...
    out = expect_fail(log, key, None, "--expect-head", head)  # ...but not the one expected
    assert "tail cut" in out


def test_rewrite_with_current_key_caught_only_with_k0(log3):
    """The root attacker: holds log.state (current MAC key, signing key),
    not k0. The chain and signatures re-verify; the MACs of earlier epochs
    do not."""
    log, key = log3
    target = seq_of(lines(active(log))[3])
    run(FORGE, "--dir", log, "--seq", target, check=0)
    p = ctl("log", "verify", "--dir", log, "--public-key", log / "log.pub")
    assert p.returncode == 0, "the forgery should fool chain and signature checks"
    out = expect_fail(log, key, target)
    assert "MAC" in out


def test_garbage_segment_reports_fail_not_crash(newlog):
    log, key = newlog
    seg = segments(log)[0]
    rng = random.Random(1)
    for n in range(30):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000)))
        seg.write_bytes(blob)
        code, out = verify(log, key)
        assert code == 1 and FAIL.match(out), out
        for cmd in (["show"], ["export", "--format", "cef"]):
            p = ctl("log", *cmd, "--dir", log)
            assert p.returncode in (0, 1), p.stderr
            if p.returncode == 1:
                assert FAIL.match(p.stderr), p.stderr


def test_anchors_from_auditd_log(log3, tmp_path):
    log, key = log3
    logid = re.search(r"^log-id (\w+)$", key.read_text(), re.M).group(1)
    cps = []
    for seg in segments(log):
        data = gzip.decompress(seg.read_bytes()) if seg.name.endswith(".gz") else None
        for l in (data.splitlines() if data else lines(seg)):
            r = json.loads(l)
            if r["type"] == "checkpoint":
                cps.append((r["seq"], line_hash(l)))
    anchors = tmp_path / "audit.log"
    text = "type=DAEMON_START msg=audit(1700000000.001:1): op=start ver=3.0.9 res=success\n"
    for i, (seq, h) in enumerate(cps):
        text += (f"type=TRUSTED_APP msg=audit(1700000001.{i:03d}:{i + 2}): pid=42 uid=0 auid=4294967295 "
                 f"ses=4294967295 msg='op=custos-checkpoint log={logid} seq={seq} head={h} "
                 f"exe=\"/usr/sbin/custosd\" hostname=? addr=? terminal=? res=success'\n")
    anchors.write_text(text)
    assert verify(log, key, "--anchors", anchors)[0] == 0
    last_cp = cps[-1][0]
    rewrite_active(log, lambda r: [l for l in r if seq_of(l) < last_cp])
    out = expect_fail(log, key, None, "--anchors", anchors)
    assert "anchor" in out and "tail cut" in out
    bad = tmp_path / "bad.log"
    bad.write_text(text.replace("seq=", "seq=x", 1))
    assert ctl("log", "verify", "--dir", log, "--key", key, "--anchors", bad).returncode == 2
