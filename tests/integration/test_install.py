"""make install, the systemd unit and the example configuration."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from daemon import CUSTOSD

ROOT = Path(__file__).resolve().parents[2]


def install(dest):
    """What `make install` runs, on the binaries under test."""
    env = dict(__import__("os").environ, DESTDIR=str(dest), PREFIX="/usr/local")
    return subprocess.run(["sh", "scripts/install.sh", str(CUSTOSD.parent)], cwd=ROOT, env=env,
                          capture_output=True, text=True)


def test_make_install_into_destdir(tmp_path):
    dest = tmp_path / "dest"
    make = subprocess.run(["make", "-n", "install", "DESTDIR=/x", "PREFIX=/usr/local"], cwd=ROOT,
                          capture_output=True, text=True)
    assert 'PREFIX="/usr/local" DESTDIR="/x" sh scripts/install.sh' in make.stdout
    p = install(dest)
    assert p.returncode == 0, p.stderr
    for f in ("usr/local/sbin/custosd", "usr/local/bin/custosctl", "etc/custos/custosd.conf",
              "usr/local/lib/systemd/system/custosd.service", "usr/local/lib/sysusers.d/custos.conf",
              "usr/local/lib/tmpfiles.d/custos.conf", "usr/local/share/custos/schemas/custos.sql",
              "usr/local/share/custos/policies/shop.yaml"):
        assert (dest / f).exists(), f
    unit = (dest / "usr/local/lib/systemd/system/custosd.service").read_text()
    assert "ExecStart=/usr/local/sbin/custosd -c /etc/custos/custosd.conf" in unit
    # a second install keeps the administrator's configuration
    conf = dest / "etc/custos/custosd.conf"
    conf.write_text("durability = batch\n")
    p = install(dest)
    assert p.returncode == 0 and conf.read_text() == "durability = batch\n"
    assert (dest / "etc/custos/custosd.conf.example").exists()


def test_unit_exposure_is_low():
    if not shutil.which("systemd-analyze"):
        pytest.skip("no systemd-analyze")
    p = subprocess.run(["systemd-analyze", "security", "--offline=true", str(ROOT / "scripts/custosd.service")],
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for custosd.service: ([\d.]+)", p.stdout + p.stderr)
    assert m, p.stdout + p.stderr
    assert float(m.group(1)) <= 2.0
    unit = (ROOT / "scripts/custosd.service").read_text()
    for d in ("Type=notify", "WatchdogSec=", "LoadCredential=master-key:", "StateDirectory=custos",
              "RuntimeDirectory=custos", "User=custos", "AmbientCapabilities=CAP_AUDIT_WRITE",
              "CapabilityBoundingSet=CAP_AUDIT_WRITE"):
        assert d in unit, d


def test_example_configuration_shows_the_defaults(tmp_path):
    """scripts/custosd.conf documents every setting with its default: it
    reads exactly like an empty file."""
    empty = tmp_path / "empty.conf"
    empty.write_text("")
    a = subprocess.run([str(CUSTOSD), "--print-config", "-c", str(empty)], capture_output=True, text=True)
    b = subprocess.run([str(CUSTOSD), "--print-config", "-c", str(ROOT / "scripts/custosd.conf")],
                       capture_output=True, text=True)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert len(a.stdout.splitlines()) >= 15 and a.stdout == b.stdout
    text = (ROOT / "scripts/custosd.conf").read_text()
    for line in a.stdout.splitlines():
        key = line.split(" = ")[0]
        assert re.search(rf"^#?{key} = ", text, re.M), f"{key} is not documented in scripts/custosd.conf"
