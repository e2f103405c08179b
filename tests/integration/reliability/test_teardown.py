"""Teardown: after state absent, nothing of a pod is left on the host: no container (labelled or
named after it), no volume, no cgroup directory in any hierarchy (Docker's cgroupfs driver makes
the parent in every one of them, not only cpu/memory/pids), no slice, no lock file.
"""

import os

import pytest

from helpers import BUSYBOX_IMAGE, CGROUP_ROOT, LABEL_POD, PAUSE_IMAGE, hierarchies

from .helpers import (MEMBER_COMMAND, assert_converged, assert_nothing_of, basic_pod, cgroup_dirs, host_state,
                      pod_containers)

pytestmark = pytest.mark.reliability("teardown")


def _manifest_pod(pod):
    manifest = dict(apiVersion="v1", kind="Pod", metadata=dict(name=pod), spec=dict(
        shareProcessNamespace=True,
        volumes=[dict(name="scratch", emptyDir={}), dict(name="hosttmp", hostPath=dict(path="/tmp"))],
        initContainers=[dict(name="init", image=BUSYBOX_IMAGE, command=["sh", "-c", "echo ready > /scratch/ready"],
                             volumeMounts=[dict(name="scratch", mountPath="/scratch")])],
        containers=[dict(name="main", image=BUSYBOX_IMAGE, command=MEMBER_COMMAND,
                         resources=dict(limits=dict(memory="32Mi", cpu="100m")),
                         volumeMounts=[dict(name="scratch", mountPath="/scratch"),
                                       dict(name="hosttmp", mountPath="/host-tmp", readOnly=True)])]))
    return dict(name=pod, sandbox_image=PAUSE_IMAGE, pull="never", manifest=manifest)


def _absent_leaves_nothing(run_module, client, pod):
    check = run_module("pod", check=True, name=pod, state="absent")
    assert check["changed"] and check["actions"], check
    assert pod_containers(client, pod), "check mode removed containers"
    result = run_module("pod", name=pod, state="absent")
    assert result["changed"]
    assert [str(a) for a in result["actions"]] == [str(a) for a in check["actions"]]
    assert_nothing_of(client, pod)
    assert client.volumes.list(filters={"label": "%s=%s" % (LABEL_POD, pod)}) == []
    again = run_module("pod", name=pod, state="absent")
    assert not again["changed"] and again["actions"] == [], again
    assert_nothing_of(client, pod)


def test_absent_of_a_running_pod(run_module, docker_client, pod_name):
    run_module("pod", **basic_pod(pod_name))
    assert_converged(docker_client, pod_name)
    # The parent exists in every hierarchy once containers run in it, not only in cpu/memory/pids.
    found = {p.split("/")[4] for p in cgroup_dirs(pod_name)}
    assert {"cpu", "memory", "pids", "devices", "freezer"} <= found, found
    _absent_leaves_nothing(run_module, docker_client, pod_name)


def test_absent_of_a_manifest_pod_with_volumes_and_init_containers(run_module, docker_client, pod_name):
    result = run_module("pod", **_manifest_pod(pod_name))
    assert result["changed"]
    assert pod_containers(docker_client, pod_name)
    _absent_leaves_nothing(run_module, docker_client, pod_name)
    assert os.path.isdir("/tmp"), "absent touched a hostPath volume's directory"


def test_absent_of_a_pod_with_its_own_cgroup_parent(run_module, docker_client, pod_name):
    parent = "/rel-teardown-%s" % pod_name
    run_module("pod", **basic_pod(pod_name, cgroup_parent=parent))
    assert_converged(docker_client, pod_name, parent=parent)
    _absent_leaves_nothing(run_module, docker_client, pod_name)
    assert not any((h / parent.lstrip("/")).exists() for h in hierarchies())


def test_absent_of_a_stopped_pod(run_module, docker_client, pod_name):
    run_module("pod", **basic_pod(pod_name))
    run_module("pod", **basic_pod(pod_name, state="stopped"))
    assert all(not c.attrs["State"]["Running"] for c in pod_containers(docker_client, pod_name))
    _absent_leaves_nothing(run_module, docker_client, pod_name)


def test_absent_of_a_broken_pod(run_module, docker_client, pod_name):
    """The sandbox removed by hand and a member killed: absent still removes everything else."""
    run_module("pod", **basic_pod(pod_name))
    ids = assert_converged(docker_client, pod_name)
    docker_client.containers.get(ids["sandbox"]).remove(force=True)
    docker_client.containers.get(ids["app"]).kill()
    _absent_leaves_nothing(run_module, docker_client, pod_name)


def test_absent_of_a_pod_that_never_existed(run_module, docker_client, pod_name):
    result = run_module("pod", name=pod_name, state="absent")
    assert not result["changed"] and result["actions"] == [], result
    assert host_state(docker_client, pod_name) == dict(containers={}, cgroups=[], locks=[], slices=[])


def test_pod_containers_and_cgroup_removed_by_the_lower_modules(run_module, docker_client, pod_name):
    """pod_container and pod_sandbox with state absent, then cgroup_parent absent: the same end state."""
    parent = "/podkit/pod-%s" % pod_name
    run_module("cgroup_parent", name=parent, memory="64Mi")
    run_module("pod_sandbox", pod=pod_name, image=PAUSE_IMAGE, pull="never", cgroup_parent=parent)
    run_module("pod_container", pod=pod_name, name="app", image=BUSYBOX_IMAGE, pull="never", command=MEMBER_COMMAND)
    assert len(pod_containers(docker_client, pod_name)) == 2
    assert run_module("pod_container", pod=pod_name, name="app", state="absent")["changed"]
    assert run_module("pod_sandbox", pod=pod_name, state="absent")["changed"]
    assert run_module("cgroup_parent", name=parent, state="absent")["changed"]
    assert_nothing_of(docker_client, pod_name)
    assert not (CGROUP_ROOT / "memory" / parent.lstrip("/")).exists()
