"""podkit-guard keeps recorded pods whole with no playbook run between the fault and the check:
a restarted sandbox or a killed pause process (members back in the new sandbox's net and ipc
namespaces, the published port answering), a member removed, the guard itself killed. A pod made
absent is never brought back. Every guard here is scoped to the test's own record directory."""

import json
import os
import stat
import time
import uuid

import pytest

from helpers import BUSYBOX_IMAGE, PAUSE_IMAGE, free_port, wait_for

from .guard import MEMBERS, SLEEP, answers, kill_pause, pod_whole, web_pod

pytestmark = pytest.mark.reliability("faults")

REPAIR_S = 5


def _deploy(guard, docker_client, pod):
    port = free_port()
    guard.module("pod", **web_pod(pod, port))
    assert pod_whole(docker_client, pod, MEMBERS)
    assert wait_for(lambda: answers(port), 10) is not None
    guard.start()
    return port


def _assert_repaired(guard, docker_client, pod, port, fault):
    took = wait_for(lambda: pod_whole(docker_client, pod, MEMBERS) and answers(port), REPAIR_S)
    assert took is not None, "pod %s not whole within %ss after %s; guard log:\n%s" % (
        pod, REPAIR_S, fault, guard.log_text())
    return took


def test_sandbox_restarted(guard, docker_client, pod_name):
    port = _deploy(guard, docker_client, pod_name)
    sandbox = docker_client.containers.get("%s_sandbox" % pod_name)
    old = sandbox.attrs["State"]["Pid"]
    sandbox.restart(timeout=1)
    assert docker_client.containers.get(sandbox.id).attrs["State"]["Pid"] != old
    _assert_repaired(guard, docker_client, pod_name, port, "docker restart of the sandbox")
    assert guard.logged("repair pod=%s container=web action=recreate reason=stale network namespace" % pod_name), \
        guard.log_text()


def test_pause_killed(guard, docker_client, pod_name):
    port = _deploy(guard, docker_client, pod_name)
    kill_pause(docker_client, pod_name)
    _assert_repaired(guard, docker_client, pod_name, port, "SIGKILL of the pause process")


def test_member_removed(guard, docker_client, pod_name):
    port = _deploy(guard, docker_client, pod_name)
    docker_client.containers.get("%s_web" % pod_name).remove(force=True)
    _assert_repaired(guard, docker_client, pod_name, port, "docker rm -f of a member")
    assert guard.logged("repair pod=%s container=web action=create" % pod_name), guard.log_text()


def test_guard_killed_comes_back_and_resyncs(guard, docker_client, pod_name):
    port = _deploy(guard, docker_client, pod_name)
    [first] = guard.guard_pids()
    syncs = guard.status()["syncs"]
    # Fault while no guard runs: the one that comes back must find it in its start resync.
    import os
    import signal
    os.kill(first, signal.SIGKILL)
    docker_client.containers.get("%s_sidecar" % pod_name).remove(force=True)
    status = guard.wait_synced(after=0 if guard.status().get("pid") != first else syncs, timeout=15)
    assert status["pid"] != first and guard.guard_pids() == [status["pid"]]
    _assert_repaired(guard, docker_client, pod_name, port, "the guard killed and a member removed")


def test_absent_pod_stays_absent(guard, docker_client, pod_name):
    _deploy(guard, docker_client, pod_name)
    assert (guard.state_dir / "pods" / ("%s.json" % pod_name)).exists()
    guard.module("pod", name=pod_name, state="absent")
    assert not (guard.state_dir / "pods" / ("%s.json" % pod_name)).exists()
    syncs = guard.status()["syncs"]
    guard.wait_synced(after=syncs, timeout=15)      # a full resync has run since
    time.sleep(1)
    assert docker_client.containers.list(all=True, filters={"label": "io.podkit.pod=%s" % pod_name}) == []


def test_unrecorded_pod_left_alone(guard, docker_client, pod_name, pod_names):
    """A pod deployed without a record in the guard's directory is not the guard's: not repaired."""
    port = _deploy(guard, docker_client, pod_name)
    other = pod_names()
    guard.run("pod", **web_pod(other, free_port()))     # recorded elsewhere (the tests' own directory)
    docker_client.containers.get("%s_web" % other).remove(force=True)
    docker_client.containers.get("%s_web" % pod_name).remove(force=True)
    _assert_repaired(guard, docker_client, pod_name, port, "docker rm -f of a member")
    syncs = guard.status()["syncs"]
    guard.wait_synced(after=syncs, timeout=15)
    assert docker_client.containers.list(all=True, filters={"name": "^/%s_web$" % other}) == []


def test_check_mode_records_nothing_and_the_record_is_root_only(guard, pod_name):
    record = guard.state_dir / "pods" / ("%s.json" % pod_name)
    args = dict(web_pod(pod_name, free_port()))
    args["containers"][1] = dict(args["containers"][1], env={"TOKEN": "s3cret-16"}, secret_env=["TOKEN"])
    guard.module("pod", check=True, **args)
    assert not record.exists()
    result = guard.module("pod", **args)
    assert "s3cret-16" not in json.dumps(result)
    info = os.stat(record)
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o600)
    assert stat.S_IMODE(os.stat(record.parent).st_mode) == 0o700
    # The record holds what converge_pod needs again, secrets included (hence root-only).
    assert json.loads(record.read_text())["params"]["containers"][1]["env"] == {"TOKEN": "s3cret-16"}


def _labelled_manifest(pod, group):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "labels": {"podkit-test": group}},
            "spec": {"containers": [{"name": m, "image": BUSYBOX_IMAGE, "command": SLEEP} for m in MEMBERS]}}


def _containers(docker_client, pod):
    return docker_client.containers.list(all=True, filters={"label": "io.podkit.pod=%s" % pod})


def test_pods_module_records_and_forgets_and_a_pruned_pod_stays_gone(guard, docker_client, pod_names):
    """The pods module records every pod it converges (root-only), and forgets those it removes: an entry
    with state absent, a pod pruned, and a recorded pod whose containers were all removed by hand (it is
    still the host's: pruned by its record). The guard, started afterwards and running during a later
    prune, brings none of them back."""
    group = "g" + uuid.uuid4().hex[:8]
    keep, absent, pruned, emptied, later = [pod_names() for _index in range(5)]
    records = guard.state_dir / "pods"

    def pods(names, **extra):
        entries = [dict(manifest=_labelled_manifest(n, group)) if isinstance(n, str) else n for n in names]
        return guard.module("pods", pods=entries, sandbox_image=PAUSE_IMAGE, pull="never", **extra)

    def recorded():
        return sorted(p.name[:-len(".json")] for p in records.glob("*.json"))

    pods([keep, absent, pruned, emptied])
    assert recorded() == sorted([keep, absent, pruned, emptied])
    assert {stat.S_IMODE(os.stat(p).st_mode) for p in records.glob("*.json")} == {0o600}
    for container in _containers(docker_client, emptied):
        container.remove(force=True)
    checked = pods([keep, dict(name=absent, state="absent")], check=True, prune=True, prune_selector={"podkit-test": group})
    assert recorded() == sorted([keep, absent, pruned, emptied]), "check mode deleted a record"
    result = pods([keep, dict(name=absent, state="absent")], prune=True, prune_selector={"podkit-test": group})
    assert result["actions"] == checked["actions"]
    assert result["pods"][pruned]["pruned"] and result["pods"][emptied]["pruned"], result["pods"]
    assert recorded() == [keep]
    for pod in (absent, pruned, emptied):
        assert _containers(docker_client, pod) == []

    guard.start()
    assert wait_for(lambda: pod_whole(docker_client, keep, MEMBERS), 10) is not None, guard.log_text()
    pods([keep, later])
    assert pod_whole(docker_client, later, MEMBERS) and recorded() == sorted([keep, later])
    syncs = guard.status()["syncs"]
    # Pruned while the guard runs: the die and destroy events name it, but its record is gone first.
    pods([keep], prune=True, prune_selector={"podkit-test": group})
    assert recorded() == [keep]
    guard.wait_synced(after=syncs, timeout=15)      # a full resync has run since
    time.sleep(1)
    for pod in (absent, pruned, emptied, later):
        assert _containers(docker_client, pod) == [], pod
    assert "pod=%s" % later not in guard.log_text()
