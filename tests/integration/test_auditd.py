"""The Linux audit trail, with a real auditd: custosd's checkpoints and
security events arrive in auditd's log, and `custosctl log verify
--anchors` uses them to catch a log whose tail was cut."""
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ctl, lines, segments
from daemon import Daemon, ensure_users, need_root

AUDITD = shutil.which("auditd") or "/usr/sbin/auditd"


def running_auditd():
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and (d / "comm").read_text().strip() == "auditd":
                return True
        except OSError:
            pass
    return False


@pytest.fixture
def auditd():
    need_root()
    if not os.path.exists(AUDITD):
        pytest.skip("auditd is not installed (scripts/deps.sh installs it)")
    if running_auditd():
        pytest.skip("an auditd is already running; the kernel talks to one at a time")
    d = Path(__import__("tempfile").mkdtemp(prefix="custos-auditd-", dir="/tmp"))
    log = d / "audit.log"
    conf = d / "auditd.conf"
    conf.write_text(f"log_file = {log}\nlog_format = RAW\nflush = INCREMENTAL_ASYNC\nfreq = 1\n"
                    "write_logs = yes\nlocal_events = yes\nmax_log_file = 100\nnum_logs = 2\n"
                    "space_left = 2\nadmin_space_left = 1\ndisk_full_action = IGNORE\n"
                    "disk_error_action = IGNORE\n")
    conf.chmod(0o640)
    proc = subprocess.Popen([AUDITD, "-n", "-c", str(d)], stdout=subprocess.DEVNULL,
                            stderr=open(d / "auditd.err", "w"))
    deadline = time.monotonic() + 20
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if not log.exists():
        proc.kill()
        pytest.skip(f"auditd did not start here: {(d / 'auditd.err').read_text()[-500:]}")
    yield log
    proc.terminate()
    proc.wait(timeout=20)
    shutil.rmtree(d, ignore_errors=True)


def wait_for_lines(path, pattern, n, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.findall(pattern, path.read_text(errors="replace"))
        if len(found) >= n:
            return found
        time.sleep(0.2)
    return re.findall(pattern, path.read_text(errors="replace"))


def test_anchors_reach_auditd_and_catch_a_cut_tail(auditd):
    ensure_users()
    d = Daemon({"anchor": "required", "checkpoint_seconds": 1})
    try:
        d.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            st = json.loads(d.ctl("status", "--json", check=0).stdout)["log"]
            if st["anchors_sent"] >= 3:
                break
            time.sleep(0.3)
        assert st["anchors_sent"] >= 3 and st["anchors_failed"] == 0
        d.ctl("reload", check=0)
        assert d.stop() == 0
        text_pattern = r"op=custos-checkpoint log=\w+ seq=(\d+) head=\w+"
        anchored = wait_for_lines(auditd, text_pattern, 4)
        assert len(anchored) >= 4
        events = auditd.read_text()
        for ev in ("op=custos-start", "op=custos-reload seq=", "op=custos-stop"):
            assert ev in events, ev
        # every record the logger wrote verifies against the anchors
        v = ctl("log", "verify", "--dir", d.log, "--key", d.key, "--anchors", auditd)
        assert v.returncode == 0, v.stdout + v.stderr
        # cut the tail back before the last anchored checkpoint: caught
        last = max(int(s) for s in anchored)
        seg = sorted(p for p in segments(d.log) if not p.name.endswith(".gz"))[-1]
        kept = [l for l in lines(seg) if json.loads(l)["seq"] < last]
        seg.write_bytes(b"".join(l + b"\n" for l in kept))
        v = ctl("log", "verify", "--dir", d.log, "--public-key", d.key, "--anchors", auditd)
        assert v.returncode == 1 and "tail cut" in v.stdout + v.stderr, v.stdout + v.stderr
    finally:
        d.cleanup()


def test_required_anchor_without_auditd_refuses_to_start():
    need_root()
    if running_auditd():
        pytest.skip("an auditd is running")
    ensure_users()
    d = Daemon({"anchor": "required"})
    try:
        d.start(wait=False)
        assert d.proc.wait(timeout=60) == 1
        assert "anchor = required, but no auditd is running" in d.errors()
        d.proc = None
    finally:
        d.cleanup()
