"""Ownership: what podkit did not create is never changed or removed.

Foreign containers (no io.podkit.pod label, or another pod's) that carry a pod's container
names, a foreign container sitting in a podkit sandbox's namespaces, and a foreign cgroup
at a pod's cgroup path: each is checked before and after the pod's converge and absent by
its ID, state, start time, restart count, PID, labels and (for cgroups) files.
"""

import subprocess

import pytest

from helpers import BUSYBOX_IMAGE, CGROUP_ROOT, LABEL_POD

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


def _make_foreign_cgroup(parent, memory):
    """A cgroup at ``parent`` made by someone else, with their own memory limit."""
    parent = parent.lstrip("/")
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


# What podkit does with a cgroup it finds at a pod's cgroup path (the decision this suite holds it to):
# - holding processes that are not the pod's containers: the run is refused, naming the cgroup; podkit
#   neither rewrites its limits nor starts the pod in it, and absent never removes it;
# - empty (made by hand, e.g. the article's cgcreate, or left by an earlier run): it is adopted, the
#   pod's limits are written to it (that is what a user naming it as cgroup_parent asks for);
# - absent of a pod podkit has no container of removes no cgroup: podkit has no evidence it is the pod's.


@pytest.mark.parametrize("where", ["default", "given"])
def test_foreign_cgroup_with_a_process_at_the_pods_path(run_module, docker_client, pod_name, where):
    """Someone's cgroup, with a process and a 200Mi limit, sits at the pod's cgroup path (podkit's
    default, or the cgroup_parent the user names)."""
    path = default_parent(pod_name) if where == "default" else "/rel-%s" % pod_name
    extra = {} if where == "default" else dict(cgroup_parent=path)
    parent = _make_foreign_cgroup(path, 200 * 1024 * 1024)
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        for controller in POD_CONTROLLERS:
            (CGROUP_ROOT / controller / parent / "cgroup.procs").write_text(str(sleeper.pid))
        before = _cgroup_view(parent)
        assert before["procs"] == [str(sleeper.pid)]

        result = run_module("pod", expect_fail=True, **basic_pod(pod_name, **extra))
        assert_refused(result, path, str(sleeper.pid))
        assert _cgroup_view(parent) == before
        assert pod_containers(docker_client, pod_name) == []

        result = run_any("pod", name=pod_name, state="absent", **extra)
        if result.get("failed"):
            assert_refused(result, path)
        else:
            assert not result["changed"], result
        assert _cgroup_view(parent) == before
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("where", ["default", "given"])
def test_foreign_empty_cgroup_at_the_pods_path(run_module, docker_client, pod_name, where):
    path = default_parent(pod_name) if where == "default" else "/rel-%s" % pod_name
    extra = {} if where == "default" else dict(cgroup_parent=path)
    parent = _make_foreign_cgroup(path, 200 * 1024 * 1024)
    before = _cgroup_view(parent)

    # No container of the pod: absent has no evidence the cgroup is the pod's, and leaves it.
    result = run_module("pod", name=pod_name, state="absent", **extra)
    assert not result["changed"] and result["actions"] == [], result
    assert _cgroup_view(parent) == before

    # Adopted: the pod runs in it, with the pod's limits.
    run_module("pod", **basic_pod(pod_name, **extra))
    assert_converged(docker_client, pod_name, parent=path)
    result = run_module("pod", name=pod_name, state="absent", **extra)
    assert result["changed"]
    assert pod_containers(docker_client, pod_name) == []
