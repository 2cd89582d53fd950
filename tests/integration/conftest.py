"""Shared fixtures for Custos's integration tests: they drive the real
binaries (build/custosctl, build/tests/alog_writer, ...) on real files."""
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

BUILD = Path(os.environ.get("CUSTOS_BUILD", Path(__file__).resolve().parents[2] / "build"))
CTL = BUILD / "custosctl"
WRITER = BUILD / "tests" / "alog_writer"
FORGE = BUILD / "tests" / "log_forge"


def run(*args, check=None, input=None, timeout=120):
    """Runs a command; returns CompletedProcess with text output."""
    p = subprocess.run([str(a) for a in args], input=input, capture_output=True, text=True,
                       timeout=timeout)
    if check is not None:
        assert p.returncode == check, f"{args} exited {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def ctl(*args, **kw):
    return run(CTL, *args, **kw)


def record(i, subject=None, **extra):
    """A realistic access record for alog_writer's stdin."""
    r = {"type": "access",
         "actor": {"user": "app_rw", "app": "shop-web", "addr": "10.0.0.7", "session": f"s{i % 7}"},
         "table": "public.customers", "columns": ["email", "name"],
         "fp": "8f2c1d0e5a7b3c41", "stmt": "SELECT email, name FROM customers WHERE id = $1",
         "rows": 1}
    if subject:
        r["subjects"] = [list(subject)]
    r.update(extra)
    return r


def append(log, records, keys=None, extra_args=(), check=True):
    """Appends records with alog_writer; returns the list of acked seqs."""
    args = [WRITER, "--dir", log]
    if keys:
        args += ["--keys", keys]
    args += list(extra_args)
    p = run(*args, input="".join(json.dumps(r) + "\n" for r in records))
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return [int(l.split()[1]) for l in p.stdout.splitlines() if l.startswith("ack ")]


def segments(log):
    return sorted(p for p in Path(log).iterdir() if p.name.startswith("seg-"))


def lines(path):
    """The records of a segment, plain (without the filler) or sealed."""
    data = Path(path).read_bytes()
    if str(path).endswith(".gz"):
        import gzip
        data = gzip.decompress(data)
    end = data.find(b"\n\n")
    data = data[: end + 1] if end >= 0 else data
    return data.splitlines()


def line_hash(line):
    return hashlib.sha256(line).hexdigest()


def verify(log, key, *extra):
    """Returns (exit code, first stdout line)."""
    p = ctl("log", "verify", "--dir", log, "--key", key, *extra)
    return p.returncode, (p.stdout.strip().splitlines() or [""])[0]


@pytest.fixture
def newlog(tmp_path):
    """A freshly initialised log: (dir, key file)."""
    log, key = tmp_path / "log", tmp_path / "log.key"
    ctl("log", "init", "--dir", log, "--key-out", key, check=0)
    return log, key


@pytest.fixture
def filledlog(newlog, tmp_path):
    """A log holding 200 records, 20 naming subjects: (dir, key, keys file)."""
    log, key = newlog
    keys = tmp_path / "subjects.keys"
    recs = [record(i, ("customer", str(1000 + i // 10)) if i % 10 == 0 else None) for i in range(200)]
    append(log, recs, keys, ["--checkpoint-records", "50"])
    return log, key, keys
