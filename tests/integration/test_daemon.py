"""custosd as a real process: configuration checks, readiness, the roles'
privileges, control authorisation for users in and out of each group,
reload with good and broken files, restart of a killed role, graceful stop
and kill -9 with the log verifying afterwards."""
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ctl
from daemon import Daemon, daemon, ensure_user, ensure_users, need_root  # noqa: F401 (fixture)

CAP_AUDIT_WRITE = 1 << 29


def status_json(d, user=None):
    p = d.ctl("status", "--json", user=user, check=0)
    return json.loads(p.stdout)


def connect(path):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(str(path))
    c.settimeout(15)
    return c


def send_raw(c, data):
    """Sends data on a control connection; returns custosd's reply line."""
    c.sendall(data)
    out = b""
    while not out.endswith(b"\n"):
        chunk = c.recv(65536)
        if not chunk:
            break
        out += chunk
    c.close()
    return out


def proc_status(pid):
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    return fields


def try_in(pid, call):
    """Runs a libc call inside a role's process (gdb) and returns its result:
    the only honest way to test what that process may do."""
    import subprocess
    p = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", f"call (int){call}"],
                       capture_output=True, text=True, timeout=120)
    for line in p.stdout.splitlines():
        if line.startswith("$1 = "):
            return int(line.split("=")[1])
    raise AssertionError(f"gdb could not run {call} in {pid}:\n{p.stdout}\n{p.stderr}")


# -- configuration --------------------------------------------------------

def test_check_config(daemon, tmp_path):
    import subprocess
    from daemon import CUSTOSD
    ok = subprocess.run([str(CUSTOSD), "--check-config", "-c", str(daemon.conf)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "configuration and 0 policies OK" in ok.stdout
    bad = tmp_path / "bad.conf"
    bad.write_text("log_dir = /var/lib/custos/log\ndurabilty = sync\ncheckpoint_seconds = 0\n"
                   "anchor = requried\nlisten = nowhere\npolicy = relative.yaml\n")
    p = subprocess.run([str(CUSTOSD), "--check-config", "-c", str(bad)], capture_output=True, text=True)
    assert p.returncode == 1
    assert f'{bad}:2: unknown setting "durabilty"; did you mean "durability"?' in p.stderr
    assert f"{bad}:3: checkpoint_seconds: \"0\" is not a whole number from 1 to 86400" in p.stderr
    assert f'{bad}:4: anchor: "requried" is not one of off, best-effort, required; did you mean "required"?' in p.stderr
    assert f"{bad}:5: listen:" in p.stderr and f"{bad}:6: policy:" in p.stderr
    # a master key others can read is refused
    key = tmp_path / "master.key"
    key.write_text("00" * 32)
    key.chmod(0o644)
    conf = tmp_path / "key.conf"
    conf.write_text(f"master_key = {key}\n")
    p = subprocess.run([str(CUSTOSD), "--check-config", "-c", str(conf)], capture_output=True, text=True)
    assert p.returncode == 1 and "the master key is readable by group or others" in p.stderr
    # a policy with an error is named with file:line:col
    pol = tmp_path / "p.yaml"
    pol.write_text("custos-policy: 1\nsubjects: {customer: {table: shop.customers, id: id}}\n"
                   "tables:\n  shop.customers:\n    columns:\n      email: {categroy: user.contact.email}\n")
    conf.write_text(f"policy = {pol}\n")
    p = subprocess.run([str(CUSTOSD), "--check-config", "-c", str(conf)], capture_output=True, text=True)
    assert p.returncode == 1 and f"{pol}:6:" in p.stderr and 'did you mean "category"' in p.stderr
    # a broken connection string is named, and no piece of it is quoted (libpq's messages quote
    # the fragment they stop at, a password's too)
    for dsn in ("host=db password=Sesame Sesame2", "postgresql://u:Sesame3@[::1",
                "host=db 'Sesame4'", "host=db password='Sesame5", 'postgresql://u"x:Sesame6@[::1/db',
                'password=my pass"Sesame7 x'):
        conf.write_text(f"database = {dsn}\n")
        p = subprocess.run([str(CUSTOSD), "--check-config", "-c", str(conf)], capture_output=True, text=True)
        assert p.returncode == 1 and f"{conf}:1: database: not a libpq connection string" in p.stderr
        assert "Sesame" not in p.stderr + p.stdout, p.stderr.replace("Sesame", "S*****")


# -- running as root: readiness, privileges ------------------------------------

def test_ready_status_and_privileges(daemon):
    need_root()
    ensure_users()
    daemon.start()
    assert daemon.notify.wait_for("STATUS=3 of 3 roles up")
    st = status_json(daemon)
    assert [r["name"] for r in st["roles"]] == ["logger", "keeper", "control"]
    assert all(r["up"] for r in st["roles"])
    assert st["log"]["head_seq"] >= 3
    # checkpoints every second: the last one is named, with its time
    deadline = time.monotonic() + 10
    while status_json(daemon)["log"]["last_checkpoint_seq"] == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    log = status_json(daemon)["log"]
    assert 0 < log["last_checkpoint_seq"] <= log["head_seq"] and log["last_checkpoint_ts"].endswith("Z")
    assert "the last at seq" in daemon.ctl("status", check=0).stdout
    pids = daemon.pids()
    assert set(pids) == {"logger", "keeper", "control"}
    custos = ensure_user("custos")
    for role, pid in pids.items() | {("parent", daemon.main_pid())}:
        s = proc_status(pid)
        assert s["Uid"].split()[:2] == [str(custos.pw_uid)] * 2, role
        caps = int(s["CapEff"], 16)
        assert caps == (CAP_AUDIT_WRITE if role in ("logger", "parent") else 0), (role, s["CapEff"])
        assert int(s["CapBnd"], 16) == 0, role
    # only the logger may write the log directory
    probe = daemon.log / "probe"
    for role, pid in pids.items():
        fd = try_in(pid, f'open("{probe}", 0101, 0600)')
        assert (fd >= 0) == (role == "logger"), (role, fd)
        if fd >= 0:
            try_in(pid, f"close({fd})")
            probe.unlink()
    daemon.stop()
    assert daemon.verify().returncode == 0


def test_only_the_keeper_reads_the_master_key(tmp_path):
    need_root()
    ensure_users()
    d = Daemon()
    try:
        key = d.dir / "master.key"
        key.write_text("11" * 32 + "\n")
        key.chmod(0o400)
        os.chown(key, ensure_user("custos").pw_uid, 0)
        d.settings["master_key"] = key
        d.write_conf()
        d.start()
        pids = d.pids()
        assert set(pids) == {"logger", "keeper", "control"}
        for role, pid in pids.items():
            fd = try_in(pid, f'open("{key}", 0)')
            assert (fd >= 0) == (role == "keeper"), (role, fd)
            if fd >= 0:
                try_in(pid, f"close({fd})")
    finally:
        d.cleanup()


# -- the control socket --------------------------------------------------------

def test_control_authorisation(daemon):
    need_root()
    ensure_users()
    daemon.start()
    # security group: status yes, reload no
    p = daemon.ctl("status", user="ct-alice", check=0)
    assert "logger" in p.stdout
    p = daemon.ctl("reload", user="ct-alice", check=1)
    assert "refused: reload needs membership in the admin group (custos-admin)" in p.stderr
    # in the socket's group only: nothing
    p = daemon.ctl("status", user="ct-bob", check=1)
    assert "needs membership in the security group (custos-security)" in p.stderr
    # admin: reload yes
    p = daemon.ctl("reload", user="ct-carol", check=0)
    assert "reloaded" in p.stdout
    # not even in the socket's group: the socket itself refuses
    p = daemon.ctl("status", user="ct-dave", check=2)
    assert "Permission denied" in p.stderr
    # every request, allowed or refused, is a record: who, what, result
    recs = [(r["actor"]["user"], r["detail"]["command"], r["detail"]["result"])
            for r in daemon.records("control")]
    uid = {n: ensure_user(n).pw_uid for n in ("ct-alice", "ct-bob", "ct-carol")}
    assert (f"uid={uid['ct-alice']}(ct-alice)", "status", "allowed") in recs
    assert (f"uid={uid['ct-alice']}(ct-alice)", "reload", "refused") in recs
    assert (f"uid={uid['ct-bob']}(ct-bob)", "status", "refused") in recs
    assert (f"uid={uid['ct-carol']}(ct-carol)", "reload", "allowed") in recs
    assert (f"uid={uid['ct-carol']}(ct-carol)", "reload", "ok") in recs


def test_control_protocol_errors(daemon):
    need_root()
    ensure_users()
    daemon.start()

    def raw(data):
        return json.loads(send_raw(connect(daemon.sock), data))

    r = raw(b'{"v":2,"cmd":"status"}\n')
    assert not r["ok"] and "this custosd speaks version 1" in r["error"]
    r = raw(b'{"v":1,"cmd":"format-disk"}\n')
    assert not r["ok"] and 'unknown command "format-disk"' in r["error"]
    r = raw(b"\x00\xff garbage\n")
    assert not r["ok"] and "not JSON" in r["error"]
    r = raw(b"x" * 70000)
    assert not r["ok"] and "larger than 65536 bytes" in r["error"]
    # and it still answers
    assert status_json(daemon)["log"]["head_seq"] > 0


# -- reload, restart, stop -------------------------------------------------------

def test_reload_good_and_broken(daemon, tmp_path):
    need_root()
    ensure_users()
    daemon.start()
    good = daemon.dir / "good.yaml"
    good.write_text((__import__("pathlib").Path(__file__).resolve().parents[2] / "policies" / "shop.yaml").read_text())
    os.chmod(good, 0o644)
    daemon.settings["policy"] = good
    daemon.write_conf()
    p = daemon.ctl("reload", check=0)
    assert "reloaded" in p.stdout
    # a broken policy: refused, the running configuration stays
    good.write_text(good.read_text().replace("category: user.contact.email", "categroy: user.contact.email"))
    p = daemon.ctl("reload", check=1)
    assert "categroy" in p.stderr
    assert "reload refused" in daemon.errors()
    assert all(r["up"] for r in status_json(daemon)["roles"])
    # SIGHUP with the broken file: the same
    reloading = sum(m.count("RELOADING=1") for m in daemon.notify.drain())
    os.kill(daemon.main_pid(), signal.SIGHUP)
    deadline = time.monotonic() + 20
    while daemon.errors().count("reload refused") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert daemon.errors().count("reload refused") == 2
    time.sleep(0.3)
    assert sum(m.count("RELOADING=1") for m in daemon.notify.drain()) == reloading + 1
    events = [(r["detail"]["event"], r["detail"]["result"]) for r in daemon.records("service")
              if "event" in r["detail"]]
    assert ("reload", "ok") in events and events.count(("reload", "refused")) == 2


def test_killed_role_is_restarted_without_losing_records(daemon):
    need_root()
    ensure_users()
    daemon.start()
    for role in ("logger", "keeper", "control"):
        pid = daemon.pids()[role]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            # while the logger restarts, requests cannot be recorded and are refused
            p = daemon.ctl("status", "--json")
            if p.returncode == 0:
                st = json.loads(p.stdout)
                r = next(r for r in st["roles"] if r["name"] == role)
                if r["up"] and r["pid"] != pid:
                    break
            time.sleep(0.2)
        else:
            raise AssertionError(f"{role} was not restarted:\n{daemon.errors()}")
        assert r["restarts"] == 1, (role, st, daemon.errors())
    before = status_json(daemon)["log"]["head_seq"]
    assert daemon.stop() == 0
    assert daemon.verify().returncode == 0
    seqs = [r["seq"] for r in daemon.records()]
    assert seqs == list(range(1, len(seqs) + 1)) and seqs[-1] > before


def test_graceful_stop_and_kill_9(daemon):
    need_root()
    ensure_users()
    daemon.start()
    t0 = time.monotonic()
    assert daemon.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 30
    assert daemon.notify.wait_for("STOPPING=1", timeout=1)
    recs = daemon.records()
    assert recs[-1]["type"] == "checkpoint"
    assert any(r["type"] == "service" and r["detail"].get("event") == "stop" for r in recs)
    assert not daemon.sock.exists()
    # kill -9 the whole process group mid-run, start again: the log recovers
    daemon.start()
    pids = daemon.pids()
    os.kill(daemon.main_pid(), signal.SIGKILL)
    for pid in pids.values():
        os.kill(pid, signal.SIGKILL)
    daemon.proc.wait()
    daemon.proc = None
    daemon.notify.close()
    daemon.start()
    assert status_json(daemon)["log"]["head_seq"] > recs[-1]["seq"]
    daemon.stop()
    v = daemon.verify()
    assert v.returncode == 0, v.stdout + v.stderr


def test_runs_as_an_unprivileged_user(daemon):
    """Started by a plain user, custosd keeps that user and has no
    capabilities at all; with best-effort anchoring it runs on."""
    need_root()
    user = ensure_user("custos")
    daemon.settings["anchor"] = "best-effort"
    daemon.write_conf()
    for p in [daemon.dir, daemon.log, *daemon.log.iterdir()]:
        os.chown(p, user.pw_uid, user.pw_gid)
    daemon.start(as_user="custos")
    pids = daemon.pids()
    assert set(pids) == {"logger", "keeper", "control"}
    for role, pid in pids.items():
        s = proc_status(pid)
        assert s["Uid"].split()[0] == str(user.pw_uid)
        assert int(s["CapEff"], 16) == 0, role
    p = daemon.ctl("status", user="custos", check=1)
    assert "needs membership in the security group" in p.stderr
    assert daemon.stop() == 0
    assert daemon.verify().returncode == 0


def raw_status(path):
    """One `status` request straight on the socket (no process to start)."""
    send_raw(connect(path), b'{"v":1,"cmd":"status"}\n')


def test_log_follow(daemon):
    """`custosctl log follow` shows records as they are written, across a
    segment rotation, each exactly as it is in the log."""
    import subprocess
    need_root()
    ensure_users()
    daemon.settings["segment_bytes"] = "64K"
    daemon.write_conf()
    daemon.start()
    env = dict(os.environ, CUSTOS_SOCKET=str(daemon.sock))
    f = subprocess.Popen([str(__import__("daemon").CTL), "log", "follow", "--json"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    import threading
    got_lines = []
    reader = threading.Thread(target=lambda: got_lines.extend(iter(f.stdout.readline, b"")))
    # the follower is registered once its own request is a record
    deadline = time.monotonic() + 20
    while not any(r["type"] == "control" and r["detail"]["command"] == "log-follow"
                  for r in daemon.records("control")) and time.monotonic() < deadline:
        time.sleep(0.1)
    reader.start()
    for _ in range(1000):  # ~300 KB of records, across several 64K segments
        raw_status(daemon.sock)
    head = json.loads(daemon.ctl("status", "--json", check=0).stdout)["log"]["head_seq"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (got_lines and json.loads(got_lines[-1])["seq"] >= head):
        time.sleep(0.2)
    # a user outside the security group may not follow
    p = daemon.ctl("log", "follow", user="ct-bob", check=1)
    assert "needs membership in the security group" in p.stderr
    daemon.stop()
    f.wait(timeout=30)
    reader.join(timeout=30)
    out = b"".join(got_lines)
    got = [json.loads(line) for line in out.decode().splitlines()]
    seqs = [r["seq"] for r in got]
    assert len(seqs) > 1000 and seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs[:5]
    assert seqs[-1] >= head
    assert sum(1 for r in got if r["type"] == "control" and r["detail"]["command"] == "status") >= 1000
    assert len(list(daemon.log.glob("seg-*"))) > 2  # it did cross segments
    # the lines are the log's exact bytes
    from conftest import lines, segments
    all_lines = {json.loads(l)["seq"]: l for s in segments(daemon.log) for l in lines(s) if l.strip()}
    for line in out.splitlines()[:50]:
        assert all_lines[json.loads(line)["seq"]] == line


def test_a_wall_clock_stepped_back_stops_nothing(daemon, tmp_path):
    """The wall clock steps back an hour three seconds after the start (an
    LD_PRELOAD shim, tests/integration/clockstep.c), as NTP may step a clock
    that ran ahead: the watchdog is still fed, no role is restarted and
    control still answers, since every interval runs on CLOCK_MONOTONIC."""
    need_root()
    shim = tmp_path / "clockstep.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", shim, Path(__file__).parent / "clockstep.c"],
                   check=True)
    env = {"WATCHDOG_USEC": "2000000", "LD_PRELOAD": str(shim), "CLOCKSTEP_AFTER": "3",
           "CLOCKSTEP_BY": "3600",
           "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        daemon.start()
    finally:
        for k, v in saved.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v
    count = lambda what: sum(m.count(what) for m in daemon.notify.messages)  # noqa: E731
    time.sleep(4)  # past the step
    daemon.notify.drain()
    fed, told = count("WATCHDOG=1"), count("STATUS=")
    # the roles' ticks go on: `log follow` is fed by control's
    env = dict(os.environ, CUSTOS_SOCKET=str(daemon.sock))
    f = subprocess.Popen([str(__import__("daemon").CTL), "log", "follow", "--json"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=env)
    try:
        time.sleep(11)
        daemon.ctl("status", check=0)
        time.sleep(2)
    finally:
        f.terminate()
    followed = [json.loads(line) for line in f.communicate(timeout=10)[0].splitlines()]
    daemon.notify.drain()
    assert count("WATCHDOG=1") - fed >= 5
    assert count("STATUS=") > told  # every 10 s
    assert any(r["type"] == "control" and r["detail"]["command"] == "status" for r in followed), followed
    assert all(r["restarts"] == 0 for r in status_json(daemon)["roles"])


def test_watchdog_and_connection_limit(daemon):
    need_root()
    ensure_users()
    daemon.settings["control_max_clients"] = 3
    daemon.write_conf()
    os.environ["WATCHDOG_USEC"] = "2000000"
    try:
        daemon.start()
    finally:
        del os.environ["WATCHDOG_USEC"]
    assert daemon.notify.wait_for("WATCHDOG=1", timeout=10)
    # fed all along, also across the status updates that query the logger
    time.sleep(12)
    daemon.notify.drain()
    assert sum(m.count("WATCHDOG=1") for m in daemon.notify.messages) >= 5
    assert all(r["restarts"] == 0 for r in status_json(daemon)["roles"])
    # three idle connections from one user are the limit; the fourth is turned away
    idle = [connect(daemon.sock) for _ in range(3)]
    time.sleep(0.3)
    p = daemon.ctl("status", check=1)
    assert "too many connections" in p.stderr
    for c in idle:
        c.close()
    time.sleep(0.5)
    daemon.ctl("status", check=0)


@pytest.fixture(scope="module")
def tcp_pg():
    """A server on loopback TCP with a password: the keeper runs as user
    custos, which may not enter the test clusters' socket directories."""
    from pg import PgServer
    need_root()
    server = PgServer(tcp=True).start()
    yield server
    server.stop()


def with_keystore(d, server):
    """Configures daemon d with a keystore made in server's database
    keystore (a master key custos may read, a KEK file): its KEK file."""
    key = d.dir / "master.key"
    key.write_text(os.urandom(32).hex() + "\n")
    key.chmod(0o400)
    kek = d.dir / "kek"
    dsn = server.conninfo("keystore", tcp=True)
    ctl("keys", "init", "--keystore", dsn, "--master-key", key, "--kek", kek, check=0)
    os.chown(key, ensure_user("custos").pw_uid, 0)
    d.settings.update(keystore=dsn, master_key=key, kek_file=kek)
    d.write_conf()
    return kek


def test_keys_through_the_keeper(tcp_pg):
    """With a keystore configured, the keeper answers keys status and
    rotates on an admin's request; others are refused."""
    ensure_users()
    d = Daemon()
    ks = tcp_pg.createdb("keystore")
    try:
        kek = with_keystore(d, tcp_pg)
        d.start()
        st = json.loads(d.ctl("keys", "status", check=0).stdout)
        assert st["epoch"] == 1 and st["cache_limit"] == 65536
        p = d.ctl("keys", "rotate", user="ct-alice", check=1)
        assert "needs membership in the admin group" in p.stderr
        r = json.loads(d.ctl("keys", "rotate", user="ct-carol", check=0).stdout)
        assert r["epoch"] == 2
        assert json.loads(d.ctl("status", "--json", check=0).stdout)["keys"]["epoch"] == 2
        assert b"epoch 0000000001" not in kek.read_bytes()
        recs = [(r["detail"]["command"], r["detail"]["result"]) for r in d.records("control")]
        assert ("keys-rotate", "ok") in recs and ("keys-rotate", "refused") in recs
    finally:
        d.cleanup()
        tcp_pg.dropdb(ks.name)


def test_a_keystore_server_that_does_not_answer_holds_the_keeper_no_longer_than_a_timeout(tcp_pg):
    """A keystore whose server accepts connections but does not answer
    (stopped, as a hung host or a lost network leaves it) is given up on
    after connect_timeout, 10 s, with an error naming the keystore: the
    keeper used to wait for it for ever, custosd with it."""
    ensure_users()
    d = Daemon()
    ks = tcp_pg.createdb("keystore")
    postmaster = int((tcp_pg.datadir / "postmaster.pid").read_text().split()[0])
    try:
        with_keystore(d, tcp_pg)
        os.kill(postmaster, signal.SIGSTOP)
        started = time.monotonic()
        d.start(wait=False)
        try:
            rc = d.proc.wait(timeout=60)
        finally:
            os.kill(postmaster, signal.SIGCONT)
        assert rc != 0 and 8 < time.monotonic() - started < 40, (rc, d.errors())
        assert re.search(r"keystore.*timeout", d.errors()), d.errors()
    finally:
        d.cleanup()
        tcp_pg.dropdb(ks.name)


def test_reload_does_not_resize_a_waiting_request(daemon):
    """A client connected before a reload keeps the request limit it
    connected under (a larger new limit must not let it overflow)."""
    need_root()
    ensure_users()
    daemon.start()
    c = connect(daemon.sock)
    time.sleep(0.3)
    daemon.settings["control_max_request"] = "1M"
    daemon.write_conf()
    daemon.ctl("reload", check=0)
    assert "larger than 65536 bytes" in json.loads(send_raw(c, b"x" * 70000 + b"\n"))["error"]
    assert all(r["up"] and r["restarts"] == 0 for r in status_json(daemon)["roles"])


def test_log_show_export_and_verify_through_custosd(daemon):
    """Without --dir, custosctl log show, export and verify ask custosd: a
    member of the security group reads and checks the log without access to
    its directory; the records are the log's exact lines; a damaged record
    is reported as by the offline commands."""
    need_root()
    ensure_users()
    daemon.settings["segment_bytes"] = "64K"
    daemon.write_conf()
    daemon.start()
    for _ in range(600):  # ~180 KB of records: several segments, sealed and compressed
        raw_status(daemon.sock)
    out = daemon.ctl("log", "export", "--format", "jsonl", user="ct-alice", check=0).stdout
    from conftest import lines, segments
    all_lines = {json.loads(l)["seq"]: l for s in segments(daemon.log) for l in lines(s) if l.strip()}
    got = out.encode().splitlines()
    seqs = [json.loads(l)["seq"] for l in got]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > 600
    assert all(all_lines[s] == l for s, l in zip(seqs, got))
    shown = daemon.ctl("log", "show", "--json", "--type", "control", "--since", "2020-01-01", user="ct-alice",
                       check=0).stdout.splitlines()
    assert len(shown) >= 600 and all(json.loads(l)["type"] == "control" for l in shown)
    table = daemon.ctl("log", "show", "--type", "service", user="ct-alice", check=0).stdout
    assert "service" in table
    ok = daemon.ctl("log", "verify", user="ct-alice", check=0).stdout
    assert ok.startswith("OK records=")
    # refused: outside the security group; bad arguments; offline-only options
    assert "needs membership in the security group" in daemon.ctl("log", "show", user="ct-bob", check=1).stderr
    assert "type is a record type" in daemon.ctl("log", "show", "--type", "Bad!", user="ct-alice",
                                                 check=1).stderr
    assert "need --dir" in daemon.ctl("log", "verify", "--key", daemon.key, check=2).stderr
    # a damaged record in a sealed segment (the logger reopens only the last): custosd's verify and
    # show say where
    import gzip
    sealed, data = next((p, d) for p in sorted(daemon.log.glob("seg-*.jsonl.gz"))
                        for d in [gzip.decompress(p.read_bytes())] if b'"command":"status"' in d)
    at = data.index(b'"command":"status"')
    sealed.write_bytes(gzip.compress(data[:at] + b'"command":"statux"' + data[at + 18:]))
    bad = daemon.ctl("log", "verify", user="ct-alice", check=None)
    assert bad.returncode == 1 and bad.stdout.startswith("FAIL seq="), (bad.stdout, daemon.verify().stdout)
    assert daemon.ctl("status", check=0)  # custosd goes on
