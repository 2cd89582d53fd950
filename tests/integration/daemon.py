"""Running the real custosd for tests: a configuration in a directory other
users can reach, readiness through a NOTIFY_SOCKET like systemd's, and
custosctl run as other users (runuser) to test the control socket's
authorisation."""
import atexit
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import BUILD, CTL, ctl

LSAN_SUPP = Path(__file__).resolve().parents[1] / "fuzz" / "lsan.supp"

CUSTOSD = BUILD / "custosd"
_shared = {}


def as_other_user(binary):
    """binary, copied where other users may run it: the build directory
    may sit in a checkout only its owner can enter (mktemp -d is 0700)."""
    if binary not in _shared:
        d = Path(tempfile.mkdtemp(prefix="custos-bin-", dir="/tmp"))
        os.chmod(d, 0o755)
        copy = d / binary.name
        shutil.copy2(binary, copy)
        os.chmod(copy, 0o755)
        _shared[binary] = copy
        atexit.register(shutil.rmtree, d, True)
    return _shared[binary]
RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"

# users and groups the authorisation tests create (the groups are
# custosd.conf's defaults)
GROUPS = ["custos-ctl", "custos-security", "custos-dpo", "custos-admin"]
USERS = {  # name: supplementary groups
    "ct-alice": ["custos-ctl", "custos-security"],
    "ct-bob": ["custos-ctl"],
    "ct-carol": ["custos-ctl", "custos-admin"],
    "ct-dave": [],
}


def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root: starts custosd as root and creates users")


def ensure_user(name, groups=(), system=True):
    for g in groups:
        try:
            grp.getgrnam(g)
        except KeyError:
            subprocess.run(["groupadd", "--system", g], check=False, capture_output=True)
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system" if system else "--no-user-group", "--no-create-home",
                        "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
                       check=False, capture_output=True)
    if groups:
        subprocess.run(["usermod", "-a", "-G", ",".join(groups), name], check=True, capture_output=True)
    return pwd.getpwnam(name)


def ensure_users():
    ensure_user("custos")
    for name, groups in USERS.items():
        ensure_user(name, groups)


class Notify:
    """A NOTIFY_SOCKET that collects what custosd tells systemd."""

    def __init__(self, path):
        self.path = str(path)
        if os.path.exists(self.path):
            os.unlink(self.path)  # the last run's
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o777)
        self.sock.settimeout(0.2)
        self.messages = []
        self.lock = threading.Lock()
        # drained all along, as systemd does: a full queue would block custosd
        self.thread = threading.Thread(target=self._drain_forever, daemon=True)
        self.thread.start()

    def _drain_forever(self):
        while self.sock is not None:
            self.drain()

    def drain(self):
        with self.lock:
            while self.sock is not None:
                try:
                    self.messages.append(self.sock.recv(4096).decode())
                except (socket.timeout, BlockingIOError, OSError):
                    return self.messages
            return self.messages

    def wait_for(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            if any(text in m for m in self.messages):
                return True
            if self.sock is None or time.monotonic() > deadline:
                return False

    def close(self):
        """Keeps what was said; later wait_for calls look only at that."""
        if self.sock is not None:
            self.drain()
            with self.lock:
                self.sock.close()
                self.sock = None
            self.thread.join(timeout=5)


class Daemon:
    """custosd with its own log, configuration and control socket."""

    def __init__(self, settings=None):
        self.dir = Path(tempfile.mkdtemp(prefix="custosd-", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.log = self.dir / "log"
        self.key = self.dir / "log.key"
        self.sock = self.dir / "run" / "control.sock"
        self.conf = self.dir / "custosd.conf"
        self.stderr = self.dir / "custosd.err"
        ctl("log", "init", "--dir", self.log, "--key-out", self.key, check=0)
        self.settings = {"log_dir": self.log, "control_socket": self.sock, "checkpoint_seconds": 1,
                         "anchor": "off", **(settings or {})}
        self.write_conf()
        self.proc = None
        self.notify = None

    def write_conf(self, extra=""):
        lines = []
        for k, v in self.settings.items():
            for one in (v if isinstance(v, list) else [v]):
                lines.append(f"{k} = {one}")
        self.conf.write_text("\n".join(lines) + "\n" + extra)

    def start(self, as_user=None, wait=True):
        self.notify = Notify(self.dir / "notify.sock")
        cmd = [str(as_other_user(CUSTOSD) if as_user else CUSTOSD), "-c", str(self.conf)]
        if as_user:
            cmd = [RUNUSER, "-u", as_user, "--"] + cmd
        env = dict(os.environ, NOTIFY_SOCKET=self.notify.path)
        # under make asan: libraries' own leaks (libpg_query's, one byte per PL/pgSQL
        # body it does not parse) are not custosd's; its users must read the list
        supp = self.dir / "lsan.supp"
        shutil.copy(LSAN_SUPP, supp)
        supp.chmod(0o644)
        env["LSAN_OPTIONS"] = f"suppressions={supp}"
        with open(self.stderr, "a") as err:
            # its own session, as systemd starts a service (and as pgbouncer -d puts itself)
            self.proc = subprocess.Popen(cmd, stderr=err, env=env, start_new_session=True)
        if wait and not self.notify.wait_for("READY=1"):
            raise AssertionError(f"custosd did not get ready:\n{self.errors()}")
        return self

    def errors(self):
        return self.stderr.read_text() if self.stderr.exists() else ""

    def ctl(self, *args, user=None, check=None, **kw):
        cmd = [str(as_other_user(CTL) if user else CTL), *map(str, args)]
        if user:
            cmd = [RUNUSER, "-u", user, "--"] + cmd
        env = dict(os.environ, CUSTOS_SOCKET=str(self.sock))
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, **kw)
        if check is not None:
            assert p.returncode == check, f"{cmd} exited {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p

    def pids(self):
        """{role: pid} from the process names (custos-logger, ...)."""
        out = {}
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                comm = (d / "comm").read_text().strip()
                status = (d / "status").read_text()
            except OSError:
                continue
            ppid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
            if comm.startswith("custos-") and self.proc and ppid == self.main_pid():
                out[comm[len("custos-"):]] = int(d.name)
        return out

    def main_pid(self):
        """custosd's own pid (runuser forks it as a child)."""
        if self.proc is None:
            return None
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            children = []
        for c in children:
            try:
                if Path(f"/proc/{c}/comm").read_text().strip() == "custosd":
                    return int(c)
            except OSError:
                pass
        return self.proc.pid

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.main_pid(), sig)
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.notify.close()
        self.proc = None
        return code

    def verify(self, *extra):
        return ctl("log", "verify", "--dir", self.log, "--key", self.key, *extra)

    def records(self, type_=None):
        import json
        args = ["log", "show", "--dir", self.log, "--json"] + (["--type", type_] if type_ else [])
        p = ctl(*args, check=0)
        return [json.loads(line) for line in p.stdout.splitlines()]

    def cleanup(self):
        if self.proc is not None:
            self.stop(signal.SIGKILL)
        errors = self.errors()
        shutil.rmtree(self.dir, ignore_errors=True)
        # under make asan / ubsan a role that hit a memory error is restarted
        # by the parent and the test may pass: its report fails the test
        for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if mark in errors:
                at = errors.index(mark)
                raise AssertionError(f"sanitizer report from custosd:\n{errors[max(0, at - 200):at + 3000]}")


@pytest.fixture
def daemon():
    d = Daemon()
    yield d
    d.cleanup()
