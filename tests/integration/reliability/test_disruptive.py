"""dockerd stopped and started again: pods come back as their restart policy says, and a converge
afterwards repairs what did not (or reports no change when nothing needs it).

This stops the engine every other suite runs against, so it is marked ``disruptive``: it runs
only with PODKIT_TEST_DISRUPTIVE=1, which scripts/test.sh sets in its own stage
(reliability-disruptive) after every other pytest stage; elsewhere it is deselected, and the
summary line says it was not run.
"""

import copy
import os
import pathlib
import signal
import subprocess
import time

import docker
import pytest

from helpers import DOCKER_HOST, TOP

from .helpers import MEMBERS, assert_converged, basic_pod, pod_containers

pytestmark = [pytest.mark.disruptive, pytest.mark.reliability("faults")]

PIDFILE = pathlib.Path("/var/run/docker.pid")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_dockerd():
    pid = int(PIDFILE.read_text().strip())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 180
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid), "dockerd (pid %d) did not exit after SIGTERM" % pid


def _start_dockerd():
    subprocess.run([str(TOP / "scripts" / "start-dockerd.sh")], check=True, timeout=300)


def _wait(predicate, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return predicate()


def _running(client, pod):
    states = {}
    for container in pod_containers(client, pod):
        key = container.labels.get("io.podkit.container") or container.labels.get("io.podkit.role")
        states[key] = container.attrs["State"]["Running"]
    return states


def test_dockerd_stopped_and_started(run_module, pod_names):
    pods = dict(Always=pod_names(), Never=pod_names())
    for policy, pod in pods.items():
        result = run_module("pod", **basic_pod(pod, restart_policy=policy))
        assert result["changed"]
    client = docker.DockerClient(base_url=DOCKER_HOST, version="auto")
    pids = {}
    for pod in pods.values():
        assert_converged(client, pod)
        pids[pod] = [c.attrs["State"]["Pid"] for c in pod_containers(client, pod)]
    client.close()

    try:
        _stop_dockerd()
        for pod, pod_pids in pids.items():
            assert not any(_alive(pid) for pid in pod_pids), "pod %s kept processes without dockerd" % pod
    finally:
        _start_dockerd()

    client = docker.DockerClient(base_url=DOCKER_HOST, version="auto")
    try:
        always, never = pods["Always"], pods["Never"]
        whole = dict(dict.fromkeys(MEMBERS, True), sandbox=True)
        # restartPolicy Always: Docker brings the pod back itself. The sandbox (unless-stopped) must
        # come back; a member Docker starts before its sandbox runs cannot join it and stays down
        # (Docker starts restored containers in no particular order), which the converge repairs.
        _wait(lambda: _running(client, always) == whole)
        back = _running(client, always)
        assert back.get("sandbox"), "the sandbox of %s did not come back with dockerd: %s" % (always, back)
        # restartPolicy Never: the sandbox (unless-stopped) comes back, the members stay down until
        # podkit is asked.
        assert _wait(lambda: _running(client, never).get("sandbox")), _running(client, never)
        assert not any(_running(client, never).get(m) for m in MEMBERS), _running(client, never)

        # Always: the converge finds the pod whole, or repairs (and names) what did not come back.
        result = run_module("pod", **basic_pod(always, restart_policy="Always"))
        for member in MEMBERS:
            if not back.get(member):
                assert any(member in action for action in result["actions"]), (back, result["actions"])
        assert_converged(client, always)
        again = run_module("pod", **basic_pod(always, restart_policy="Always"))
        assert not again["changed"] and again["actions"] == [], again["actions"]

        # Never: as the kubelet does, podkit does not restart members that ran and exited; the
        # converge reports no change for them and leaves them exited (the sandbox runs).
        result = run_module("pod", **basic_pod(never, restart_policy="Never"))
        assert not any(a.split(":")[0].split()[-1] in MEMBERS for a in result["actions"]), result["actions"]
        states = _running(client, never)
        assert states == dict(dict.fromkeys(MEMBERS, False), sandbox=True), states
        again = run_module("pod", **basic_pod(never, restart_policy="Never"))
        assert not again["changed"] and again["actions"] == [], again["actions"]
        # Asked to start (state: restarted), the Never pod comes back whole in the sandbox's namespaces.
        run_module("pod", **basic_pod(never, restart_policy="Never", state="restarted"))
        assert_converged(client, never)
    finally:
        client.close()


def test_with_dockerd_stopped_a_misspelled_field_is_named_not_the_engine(run_module, pod_name):
    """Issue 23: input is checked before the engine is reached. With the real dockerd stopped (not a
    socket nobody listens on, as tests/integration/test_input_first.py uses), a pod task whose
    manifest misspells a field fails naming that field; the same pod spelled right names the engine."""
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod_name},
                "spec": {"containers": [{"name": "app", "imagee": "podkit/busybox:latest", "command": ["sleep", "60"]}]}}
    good = copy.deepcopy(manifest)
    good["spec"]["containers"][0]["image"] = good["spec"]["containers"][0].pop("imagee")
    try:
        _stop_dockerd()
        assert not _answers(), "dockerd still answers on %s" % DOCKER_HOST
        for check in (False, True):
            result = run_module("pod", check=check, expect_fail=True, pull="never", manifest=manifest)
            assert "spec.containers[0].imagee is not supported" in result["msg"], result["msg"]
            assert "Docker daemon" not in result["msg"] and "docker_host" not in result["msg"], result["msg"]
        result = run_module("pod", expect_fail=True, pull="never", manifest=good)
        assert result["msg"].startswith("docker_host: no Docker daemon answers"), result["msg"]
    finally:
        _start_dockerd()
    client = docker.DockerClient(base_url=DOCKER_HOST, version="auto")
    try:
        assert client.containers.list(all=True, filters={"label": "io.podkit.pod=%s" % pod_name}) == []
    finally:
        client.close()


def _answers():
    """Whether anything answers Docker's API on DOCKER_HOST."""
    try:
        client = docker.DockerClient(base_url=DOCKER_HOST, version="auto", timeout=5)
    except docker.errors.DockerException:
        return False
    client.close()
    return True
