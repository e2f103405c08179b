"""Ownership: what podkit did not create is never changed or removed.

Foreign containers (no io.podkit.pod label, or another pod's) that carry a pod's container
names, a foreign container sitting in a podkit sandbox's namespaces, and a foreign cgroup
at a pod's cgroup path: each is checked before and after the pod's converge and absent by
its ID, state, start time, restart count, PID, labels and (for cgroups) files.
"""

import os
import subprocess

import pytest

from conftest import BUSYBOX_IMAGE, CGROUP_ROOT, LABEL_POD

from .helpers import (MEMBER_COMMAND, POD_CONTROLLERS, assert_converged, assert_refused, basic_pod, cgroup_dirs,
                      default_parent, fingerprint, pod_containers, run_any, wait_running)

pytestmark = pytest.mark.reliability("ownership")


def _foreign(client, name, labels=None, **extra):
    container = client.containers.run(BUSYBOX_IMAGE, MEMBER_COMMAND, name=name, detach=True, labels=labels or {},
                                      **extra)
    wait_running(client, name)
    return fingerprint(container)


def _same(client, before):
    after = fingerprint(client.containers.get(before["id"]))
    assert after == before, "podkit changed a container it does not own:\nbefore %s\nafter  %s" % (before, after)


@pytest.mark.parametrize("member", ["sandbox", "app", "sidecar"])
def test_foreign_container_with_a_pods_name_before_the_pod(run_module, docker_client, pod_name, member):
    foreign = _foreign(docker_client, "%s_%s" % (pod_name, member))
    result = run_module("pod", expect_fail=True, **basic_pod(pod_name))
    assert_refused(result, "%s_%s" % (pod_name, member))
    _same(docker_client, foreign)
    assert pod_containers(docker_client, pod_name) == [], "the refused run created containers"
    assert cgroup_dirs(pod_name) == [], "the refused run created cgroups"

    result = run_module("pod", name=pod_name, state="absent")
    assert not result["changed"], result
    _same(docker_client, foreign)


def test_foreign_container_of_another_pod_with_our_member_name(run_module, docker_client, pod_name):
    foreign = _foreign(docker_client, "%s_app" % pod_name, labels={LABEL_POD: pod_name + "x"})
    result = run_module("pod", expect_fail=True, **basic_pod(pod_name))
    assert_refused(result, "%s_app" % pod_name, pod_name + "x")
    _same(docker_client, foreign)
    run_module("pod", name=pod_name, state="absent")
    _same(docker_client, foreign)


def test_foreign_container_takes_a_removed_members_name(run_module, docker_client, pod_name):
    run_module("pod", **basic_pod(pod_name))
    ids = assert_converged(docker_client, pod_name)
    docker_client.containers.get(ids["app"]).remove(force=True)
    foreign = _foreign(docker_client, "%s_app" % pod_name)
    kept = [fingerprint(docker_client.containers.get(ids[k])) for k in ("sandbox", "sidecar")]

    result = run_module("pod", expect_fail=True, **basic_pod(pod_name))
    assert_refused(result, "%s_app" % pod_name)
    _same(docker_client, foreign)
    for before in kept:
        _same(docker_client, before)

    result = run_module("pod", name=pod_name, state="absent")
    assert result["changed"]
    _same(docker_client, foreign)
    assert pod_containers(docker_client, pod_name) == []


def test_foreign_container_in_a_sandbox_namespaces(run_module, docker_client, pod_name):
    """A hand-made container joined to the sandbox (--network/--ipc container:<sandbox>, no labels).
    When the sandbox is recreated its namespaces go stale; that is acceptable, but podkit must not
    remove, restart or recreate it."""
    run_module("pod", **basic_pod(pod_name))
    ids = assert_converged(docker_client, pod_name)
    sandbox = "%s_sandbox" % pod_name
    name = "%s_handmade" % pod_name
    foreign = _foreign(docker_client, name, network_mode="container:" + sandbox, ipc_mode="container:" + sandbox)

    again = run_module("pod", **basic_pod(pod_name))
    assert not again["changed"] and again["actions"] == [], again["actions"]
    _same(docker_client, foreign)
    assert_converged(docker_client, pod_name)

    # A new hostname means a new sandbox, and every member is recreated; the foreign one is not.
    changed = run_module("pod", **basic_pod(pod_name, hostname="other-%s" % pod_name))
    assert changed["changed"]
    assert not any(name in action or "handmade" in action for action in changed["actions"]), changed["actions"]
    new_ids = assert_converged(docker_client, pod_name)
    assert new_ids["sandbox"] != ids["sandbox"]
    _same(docker_client, foreign)

    result = run_module("pod", name=pod_name, state="absent")
    assert result["changed"]
    assert pod_containers(docker_client, pod_name) == []
    _same(docker_client, foreign)


def _make_foreign_cgroup(pod, memory):
    """The pod's default cgroup path, made by someone else, with their own memory limit."""
    parent = default_parent(pod).lstrip("/")
    for controller in POD_CONTROLLERS:
        (CGROUP_ROOT / controller / parent).mkdir(parents=True, exist_ok=True)
    (CGROUP_ROOT / "memory" / parent / "memory.limit_in_bytes").write_text(str(memory))
    return parent


def _cgroup_view(parent):
    return dict(dirs=sorted(str(CGROUP_ROOT / c / parent) for c in POD_CONTROLLERS
                            if (CGROUP_ROOT / c / parent).is_dir()),
                memory=(CGROUP_ROOT / "memory" / parent / "memory.limit_in_bytes").read_text().strip(),
                quota=(CGROUP_ROOT / "cpu" / parent / "cpu.cfs_quota_us").read_text().strip(),
                procs=sorted((CGROUP_ROOT / "memory" / parent / "cgroup.procs").read_text().split()))


def test_foreign_cgroup_with_a_process_at_the_pods_path(run_module, docker_client, pod_name):
    """Someone's cgroup, with a process and a 200Mi limit, sits where the pod's would go. podkit must
    not change its limits, put the pod into it, or remove it: the run is refused naming it."""
    parent = _make_foreign_cgroup(pod_name, 200 * 1024 * 1024)
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        for controller in POD_CONTROLLERS:
            (CGROUP_ROOT / controller / parent / "cgroup.procs").write_text(str(sleeper.pid))
        before = _cgroup_view(parent)
        assert before["procs"] == [str(sleeper.pid)]

        result = run_module("pod", expect_fail=True, **basic_pod(pod_name))
        assert_refused(result, "/" + parent)
        assert _cgroup_view(parent) == before
        assert pod_containers(docker_client, pod_name) == []

        result = run_any("pod", name=pod_name, state="absent")
        if result.get("failed"):
            assert_refused(result, "/" + parent)
        else:
            assert not result["changed"], result
        assert _cgroup_view(parent) == before
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_foreign_empty_cgroup_at_the_pods_path(run_module, docker_client, pod_name):
    """An empty cgroup with foreign limits at the pod's path: a converge must not take it over (its
    limits stay), and absent of a pod podkit never made must not remove it."""
    parent = _make_foreign_cgroup(pod_name, 200 * 1024 * 1024)
    before = _cgroup_view(parent)

    result = run_module("pod", name=pod_name, state="absent")
    assert not result["changed"], result
    assert _cgroup_view(parent) == before

    result = run_module("pod", expect_fail=True, **basic_pod(pod_name))
    assert_refused(result, "/" + parent)
    assert _cgroup_view(parent) == before
    assert pod_containers(docker_client, pod_name) == []


def test_user_given_cgroup_parent_is_adopted_but_not_removed_with_foreign_processes(run_module, docker_client,
                                                                                  pod_name):
    """The article's way: the user made /pod-<pod> (cgcreate) and names it as cgroup_parent. podkit may
    set the pod's limits there (it was asked to), but absent never removes it while someone else's
    process lives in it: it refuses, naming the process, and leaves that process alone."""
    parent = "rel-%s" % pod_name
    for controller in POD_CONTROLLERS:
        (CGROUP_ROOT / controller / parent).mkdir()
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        (CGROUP_ROOT / "memory" / parent / "cgroup.procs").write_text(str(sleeper.pid))
        run_module("pod", **basic_pod(pod_name, cgroup_parent="/" + parent))
        assert_converged(docker_client, pod_name, parent="/" + parent)
        result = run_any("pod", name=pod_name, state="absent")
        assert pod_containers(docker_client, pod_name) == []
        assert (CGROUP_ROOT / "memory" / parent).is_dir()
        assert (CGROUP_ROOT / "memory" / parent / "cgroup.procs").read_text().split() == [str(sleeper.pid)]
        assert sleeper.poll() is None
        if result.get("failed"):
            assert_refused(result, "/" + parent, str(sleeper.pid))
    finally:
        sleeper.kill()
        sleeper.wait()
        for controller in POD_CONTROLLERS:
            path = CGROUP_ROOT / controller / parent
            if path.is_dir():
                os.rmdir(path)
