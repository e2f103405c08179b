"""Faults a pod host meets, each followed by a converge with the pod module and the kernel's view:
one sandbox and one running container per member, members in the sandbox's net and ipc
namespaces (/proc/<pid>/ns), everything under the pod's cgroup parent, whose directories
exist with the pod-level limits; a further run then changes nothing.
"""

import os
import time

import pytest

from helpers import BUSYBOX_IMAGE, CGROUP_ROOT, ns_inode

from .helpers import (MEMBERS, Background, assert_converged, basic_pod, cgroup_dirs, default_parent,
                      pod_containers, wait_running)

pytestmark = pytest.mark.reliability("faults")


def _deploy(run_module, client, pod, **extra):
    result = run_module("pod", **basic_pod(pod, **extra))
    assert result["changed"]
    return assert_converged(client, pod)


def _repair(run_module, client, pod, expect_in_actions=(), **extra):
    """Converge after a fault: reported as a change naming what was repaired, then a no-op."""
    result = run_module("pod", **basic_pod(pod, **extra))
    assert result["changed"], "the fault was not repaired: %s" % result
    text = "\n".join(result["actions"])
    for needle in expect_in_actions:
        assert needle in text, "actions do not mention %r: %s" % (needle, result["actions"])
    ids = assert_converged(client, pod)
    again = run_module("pod", **basic_pod(pod, **extra))
    assert not again["changed"] and again["actions"] == [], again["actions"]
    assert assert_converged(client, pod) == ids
    return ids, result


def _net(client, name):
    return ns_inode(client.containers.get(name).attrs["State"]["Pid"], "net")


def test_sandbox_killed(run_module, docker_client, pod_name):
    before = _deploy(run_module, docker_client, pod_name)
    docker_client.containers.get(before["sandbox"]).kill()
    assert docker_client.containers.get(before["sandbox"]).status == "exited"
    after, _result = _repair(run_module, docker_client, pod_name, expect_in_actions=("sandbox",))
    for member in MEMBERS:
        assert after[member] != before[member], "%s still joins the dead sandbox's namespaces" % member


def test_sandbox_restarted(run_module, docker_client, pod_name):
    before = _deploy(run_module, docker_client, pod_name)
    old_net = _net(docker_client, before["sandbox"])
    docker_client.containers.get(before["sandbox"]).restart(timeout=1)
    # The restarted sandbox has a new network namespace; the members still sit in the old one.
    assert _net(docker_client, before["sandbox"]) != old_net
    assert _net(docker_client, before["app"]) == old_net
    after, _result = _repair(run_module, docker_client, pod_name, expect_in_actions=MEMBERS)
    assert after["sandbox"] == before["sandbox"], "a restarted sandbox needs no recreation"


def test_sandbox_removed(run_module, docker_client, pod_name):
    before = _deploy(run_module, docker_client, pod_name)
    docker_client.containers.get(before["sandbox"]).remove(force=True)
    after, _result = _repair(run_module, docker_client, pod_name, expect_in_actions=("sandbox",) + MEMBERS)
    assert after["sandbox"] != before["sandbox"]
    for member in MEMBERS:
        assert after[member] != before[member]


def test_sandbox_process_crashed(run_module, docker_client, pod_name):
    """The pause process dies behind Docker's back; Docker's restart policy brings the sandbox back
    with new namespaces, and the converge moves the members into them."""
    before = _deploy(run_module, docker_client, pod_name)
    sandbox = docker_client.containers.get(before["sandbox"])
    os.kill(sandbox.attrs["State"]["Pid"], 9)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sandbox.reload()
        if sandbox.attrs["RestartCount"] >= 1 and sandbox.attrs["State"]["Running"]:
            break
        time.sleep(0.2)
    _repair(run_module, docker_client, pod_name, expect_in_actions=MEMBERS)


def test_member_removed(run_module, docker_client, pod_name):
    before = _deploy(run_module, docker_client, pod_name)
    docker_client.containers.get(before["app"]).remove(force=True)
    after, result = _repair(run_module, docker_client, pod_name, expect_in_actions=("app",))
    assert after["sandbox"] == before["sandbox"] and after["sidecar"] == before["sidecar"], \
        "only the removed member may change: %s" % result["actions"]
    assert after["app"] != before["app"]


def test_member_killed(run_module, docker_client, pod_name):
    before = _deploy(run_module, docker_client, pod_name)
    docker_client.containers.get(before["sidecar"]).kill()
    after, result = _repair(run_module, docker_client, pod_name, expect_in_actions=("sidecar",))
    assert after["sandbox"] == before["sandbox"] and after["app"] == before["app"], result["actions"]


def test_pod_cgroup_removed_while_the_pod_is_down(run_module, docker_client, pod_name):
    before = _deploy(run_module, docker_client, pod_name)
    for key in MEMBERS + ("sandbox",):
        docker_client.containers.get(before[key]).stop(timeout=5)
    parent = default_parent(pod_name)
    for path in sorted(cgroup_dirs(pod_name), key=lambda p: p.count("/"), reverse=True):
        os.rmdir(path)
    assert cgroup_dirs(pod_name) == []
    assert not (CGROUP_ROOT / "memory" / parent.lstrip("/")).exists()
    _repair(run_module, docker_client, pod_name, expect_in_actions=("cgroup",))


def test_pod_cgroup_limits_changed_behind_podkit(run_module, docker_client, pod_name):
    """Someone rewrote the pod's memory limit by hand: the converge puts the pod's limit back."""
    _deploy(run_module, docker_client, pod_name)
    limit = CGROUP_ROOT / "memory" / default_parent(pod_name).lstrip("/") / "memory.limit_in_bytes"
    limit.write_text(str(512 * 1024 * 1024))
    _repair(run_module, docker_client, pod_name, expect_in_actions=("cgroup",))


def _slow_init_pod(pod):
    # An init container that takes a while gives the interrupted run a well-defined middle:
    # the sandbox exists, the init container runs, no member exists yet.
    return basic_pod(pod, init_containers=[dict(
        name="setup", image=BUSYBOX_IMAGE, command=["sleep", "3"],
        # With a limit, so the pod keeps its kubelet-derived limits (every container has one).
        resources=dict(limits=dict(memory="16Mi", cpu="100m")))])


def _wait_for_container(client, name, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.api.containers(all=True, filters={"name": "^/%s$" % name}):
            return True
        if not proc.running():
            return False
        time.sleep(0.02)
    return False


def test_run_killed_while_an_init_container_runs_then_run_again(run_module, docker_client, pod_name):
    run = Background("pod", _slow_init_pod(pod_name))
    try:
        assert _wait_for_container(docker_client, "%s_setup" % pod_name, run), \
            "the run ended before its init container was created: %s" % (run.result() if not run.running() else "")
        assert run.running()
    finally:
        run.kill()
    present = sorted(c.name for c in pod_containers(docker_client, pod_name))
    assert "%s_sandbox" % pod_name in present and not any(n.endswith(("_app", "_sidecar")) for n in present), \
        "the run was not interrupted halfway: %s" % present
    result = run_module("pod", **_slow_init_pod(pod_name))
    assert result["changed"]
    assert_converged(docker_client, pod_name)
    again = run_module("pod", **_slow_init_pod(pod_name))
    assert not again["changed"] and again["actions"] == [], again["actions"]


@pytest.mark.parametrize("appears", ["sandbox", "app"], ids=["as-the-sandbox-appears", "as-the-first-member-appears"])
def test_run_killed_as_a_container_appears_then_run_again(run_module, docker_client, pod_name, appears):
    run = Background("pod", basic_pod(pod_name))
    try:
        _wait_for_container(docker_client, "%s_%s" % (pod_name, appears), run)
    finally:
        if run.running():
            run.kill()
    run_module("pod", **basic_pod(pod_name))
    assert_converged(docker_client, pod_name)
    names = sorted(c.name for c in pod_containers(docker_client, pod_name))
    assert names == sorted("%s_%s" % (pod_name, k) for k in ("sandbox",) + MEMBERS), names
    again = run_module("pod", **basic_pod(pod_name))
    assert not again["changed"] and again["actions"] == [], again["actions"]
    assert wait_running(docker_client, "%s_app" % pod_name)
