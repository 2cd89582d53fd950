"""Crash safety: kill -9 of an appender in sync mode, and a full disk."""
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import time

import pytest

from conftest import WRITER, append, ctl, record, run, verify


def logged_access_seqs(log):
    out = ctl("log", "show", "--dir", log, "--json", "--type", "access", check=0).stdout
    return {json.loads(l)["seq"] for l in out.splitlines()}


def acks_until_killed(log, seconds, threads=4, segment_bytes=262144):
    p = subprocess.Popen([str(WRITER), "--dir", str(log), "--generate", "100000000", "--threads", str(threads),
                          "--segment-bytes", str(segment_bytes), "--checkpoint-records", "97"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    acked, buf, deadline = [], b"", time.time() + seconds
    fd = p.stdout.fileno()
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.01)
        if r:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
    p.send_signal(signal.SIGKILL)
    buf += p.stdout.read()
    p.wait()
    # only whole "ack N" lines were printed after the append returned
    for l in buf.split(b"\n")[:-1]:
        if l.startswith(b"ack "):
            acked.append(int(l.split()[1]))
    return acked


def test_kill9_during_sync_appends_loses_nothing_acknowledged(newlog):
    log, key = newlog
    rng = random.Random(2026)
    all_acked = []
    for round_ in range(20):
        acked = acks_until_killed(log, rng.uniform(0.05, 0.6))
        all_acked += acked
        # the next open recovers; then the log verifies and holds every ack
        append(log, [], None, [])
        code, out = verify(log, key)
        assert code == 0, f"round {round_}: {out}"
        head = int(out.split("head=")[1].split(":")[0])
        assert not acked or max(acked) <= head
    present = logged_access_seqs(log)
    missing = set(all_acked) - present
    assert not missing, f"acknowledged but not in the log: {sorted(missing)[:10]}"
    assert len(all_acked) > 200


def test_torn_tail_is_cut_and_recorded(newlog):
    log, key = newlog
    append(log, [record(i) for i in range(10)])
    seg = sorted(log.glob("seg-*.jsonl"))[-1]
    data = seg.read_bytes()
    end = data.find(b"\n\n")
    end = len(data) if end < 0 else end + 1
    torn = b'{"seq":999,"ts":"2026-11-23T00:00:00.000000Z","type":"access","actor":{"us'
    seg.write_bytes(data[:end] + torn)
    code, out = verify(log, key)
    assert code == 1 and "torn" in out
    append(log, [record(11)])
    assert verify(log, key)[0] == 0
    rec = [json.loads(l) for l in ctl("log", "show", "--dir", log, "--json", "--type", "recovery",
                                      check=0).stdout.splitlines()]
    assert len(rec) == 1 and rec[0]["cut"]["bytes"] == len(torn)


def small_fs(tmp_path, size):
    """A small tmpfs of our own (root, or a user+mount namespace)."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], check=True)
    return mnt


def test_full_disk_fails_appends_then_resumes(tmp_path):
    mnt = small_fs(tmp_path, "6m")
    try:
        log, key = mnt / "log", tmp_path / "log.key"
        ctl("log", "init", "--dir", log, "--key-out", key, check=0)
        filler = mnt / "filler"
        p = subprocess.Popen([str(WRITER), "--dir", str(log), "--segment-bytes", "262144",
                              "--checkpoint-records", "50"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        def one(i):
            p.stdin.write(json.dumps(record(i)) + "\n")
            p.stdin.flush()
            return p.stdout.readline().strip()
        acked, errors = [], []
        acked.append(one(0))  # the writer has the log open before the disk fills
        assert acked[0].startswith("ack"), acked
        # fill the file system up to the last few pages
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
        for i in range(3000):
            r = one(i)
            (acked if r.startswith("ack") else errors).append(r)
            if len(errors) >= 5:
                break
        assert errors and all("No space left on device" in e for e in errors), errors[:3]
        filler.unlink()
        after = [one(10000 + i) for i in range(600)]
        assert all(a.startswith("ack") for a in after), after[:3]
        acked += after
        p.stdin.close()
        assert p.wait(timeout=60) == 1  # 1: some appends failed, as they should
        assert "close" not in p.stderr.read()
        code, out = verify(log, key)
        assert code == 0, out
        present = logged_access_seqs(log)
        got = {int(a.split()[1]) for a in acked}
        assert got <= present
        rec = ctl("log", "show", "--dir", log, "--json", "--type", "recovery", check=0).stdout
        assert "No space left on device" in rec
    finally:
        subprocess.run(["umount", "-l", str(mnt)])
