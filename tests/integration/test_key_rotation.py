"""`custosctl keys rotate` under custosd: the keeper rotates in a thread of
its own while the control role waits to record the outcome. A control
role that dies meanwhile loses its client, not the outcome's record."""
import json
import os
import signal
import time

import pytest

from proxy import Proxy, Shop


@pytest.fixture(scope="module")
def shop():
    s = Shop(customers=10)
    yield s
    s.stop()


@pytest.fixture
def custos(shop):
    p = Proxy(shop).start()
    yield p
    p.cleanup()


def wait_for(what, timeout=20):
    deadline = time.monotonic() + timeout
    while not (got := what()):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return got


def test_a_rotation_outlives_the_control_role_that_started_it_and_is_recorded(custos):
    with custos.rotation_held() as rot:
        control = custos.d.pids()["control"]
        os.kill(control, signal.SIGKILL)
        wait_for(lambda: custos.d.pids().get("control") not in (None, control))  # the parent restarts it
        rot.communicate(timeout=30)
        assert rot.returncode != 0  # its client lost its answer with the process that held it
        wait_for(lambda: custos.d.ctl("status", check=None).returncode == 0)  # the new control role runs
        time.sleep(1)  # and has asked the keeper (at its first ticks, once it has the keeper's channel)

    def outcome():
        return [r for r in custos.d.records("control")
                if r["detail"]["command"] == "keys-rotate" and r["detail"]["result"] != "allowed"]
    recs = wait_for(outcome)
    assert [r["detail"]["result"] for r in recs] == ["ok"], recs
    assert "restarted" in recs[0]["detail"]["note"]
    # the keeper's own account of the rotation (its epoch in status follows the keystore's NOTIFY, later)
    rotation = json.loads(custos.d.ctl("status", "--json", check=0).stdout)["keys"]["rotation"]
    assert rotation["running"] is False and rotation["result"] == "ok" and rotation["epoch"] == 2, rotation
