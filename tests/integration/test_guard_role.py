"""The host role runs podkit-guard where PID 1 is not systemd (this machine): a supervised background
process, scoped here to a record directory the test owns, that repairs a recorded pod, comes back
when killed, changes nothing on a second run, and is stopped by podkit_host_guard: false."""

import os
import signal
import time

from test_roles import HOST_VARS, play

from helpers import free_port, wait_for
from reliability.guard import MEMBERS, GuardProcess, pod_whole, web_pod


def test_host_role_runs_a_supervised_guard_and_stops_it(tmp_path, docker_client, pod_name):
    state = tmp_path / "state"
    guard = GuardProcess(state)
    role_vars = dict(HOST_VARS, podkit_host_guard=True, podkit_host_guard_state_dir=str(state),
                     podkit_host_guard_dir=str(tmp_path / "code"), podkit_host_guard_log=str(state / "guard.log"),
                     podkit_host_guard_resync=5)
    try:
        out, _first = play(tmp_path, ["host"], role_vars, name="first")
        assert "Start podkit-guard under its supervisor in the background (no systemd here)" in out
        assert oct(os.stat(state).st_mode & 0o777) == "0o700"
        status = guard.wait_synced(after=0)
        [pid] = guard.guard_pids()
        assert status["pid"] == pid and status["version"]
        # It runs the code the role installed, not this checkout's.
        with open("/proc/%d/environ" % pid, "rb") as stream:
            assert ("PYTHONPATH=%s" % (tmp_path / "code" / "podkit-guard.zip")).encode() in stream.read().split(b"\0")

        guard.module("pod", **web_pod(pod_name, free_port()))
        docker_client.containers.get("%s_sidecar" % pod_name).remove(force=True)
        assert wait_for(lambda: pod_whole(docker_client, pod_name, MEMBERS), 5) is not None, guard.log_text()

        os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: guard.guard_pids() not in ([], [pid]), 10) is not None, guard.log_text()

        _out, second = play(tmp_path, ["host"], role_vars, name="second")
        assert second["changed"] == 0, _out
    finally:
        out, _recap = play(tmp_path, ["host"], dict(role_vars, podkit_host_guard=False), name="off")
    assert "Stop podkit-guard's supervisor (no systemd here)" in out
    time.sleep(0.5)
    assert guard.guard_pids() == []
