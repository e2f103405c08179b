"""Concurrent runs: on one pod they are serialised (exactly one of each container, one run does
the work); on different pods they do not wait for each other (a run on pod B completes while
pod A's lock is held; A's run waits for it and has created nothing meanwhile).
"""

import fcntl
import os

import pytest

from .helpers import (MEMBERS, Background, assert_converged, assert_nothing_of, basic_pod, lock_files,
                      pod_containers)

pytestmark = pytest.mark.reliability("concurrency")

# The pod lock as plugins/modules/pod.py documents it: flock on /run/podkit/<pod>.lock.
LOCK_DIR = "/run/podkit"


def _names(client, pod):
    return sorted(c.name for c in pod_containers(client, pod))


def _expected(pod):
    return sorted("%s_%s" % (pod, k) for k in ("sandbox",) + MEMBERS)


def test_three_runs_on_one_new_pod_at_once(docker_client, pod_name):
    runs = [Background("pod", basic_pod(pod_name)) for _run in range(3)]
    results = [run.result() for run in runs]
    for result in results:
        assert not result.get("failed"), result.get("msg")
    assert sorted(r["changed"] for r in results) == [False, False, True], \
        "one run must create the pod and the others find it done: %s" % [r["actions"] for r in results]
    assert _names(docker_client, pod_name) == _expected(pod_name)
    assert_converged(docker_client, pod_name)


def test_runs_on_two_pods_at_once(docker_client, pod_names):
    pods = [pod_names(), pod_names()]
    runs = [Background("pod", basic_pod(pod)) for pod in pods]
    for run, pod in zip(runs, pods):
        result = run.result()
        assert not result.get("failed") and result["changed"], result.get("msg")
        assert _names(docker_client, pod) == _expected(pod)
        assert_converged(docker_client, pod)
    locks = [lock_files(pod) for pod in pods]
    assert locks[0] and locks[1] and set(locks[0]).isdisjoint(locks[1]), locks


def _hold_lock(pod):
    os.makedirs(LOCK_DIR, exist_ok=True)
    handle = open(os.path.join(LOCK_DIR, "%s.lock" % pod), "a")
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def test_a_held_pod_lock_blocks_that_pod_only(docker_client, pod_names):
    held, free = pod_names(), pod_names()
    handle = _hold_lock(held)
    try:
        blocked = Background("pod", basic_pod(held))
        other = Background("pod", basic_pod(free))
        result = other.result()
        assert not result.get("failed") and result["changed"], result.get("msg")
        assert_converged(docker_client, free)
        # The other pod's run is done while this one still waits, having done nothing.
        assert blocked.running(), "the run on %s did not wait for its pod's lock: %s" % (held, blocked.result())
        assert pod_containers(docker_client, held) == []
    finally:
        handle.close()
    result = blocked.result()
    assert not result.get("failed") and result["changed"], result.get("msg")
    assert_converged(docker_client, held)


def test_present_and_absent_at_once_leave_one_consistent_state(run_module, docker_client, pod_name):
    run_module("pod", **basic_pod(pod_name))
    changed = basic_pod(pod_name, hostname="changed-%s" % pod_name)
    runs = [Background("pod", changed), Background("pod", dict(name=pod_name, state="absent"))]
    for run in runs:
        result = run.result()
        assert not result.get("failed"), result.get("msg")
    if pod_containers(docker_client, pod_name):
        # present ran last: the whole pod, in the new sandbox.
        assert_converged(docker_client, pod_name)
    else:
        # absent ran last: nothing of the pod is left.
        assert_nothing_of(docker_client, pod_name)
    run_module("pod", name=pod_name, state="absent")
    assert_nothing_of(docker_client, pod_name)


def test_two_runs_with_different_specs_on_one_pod(run_module, docker_client, pod_name):
    """Two runs wanting different limits: the pod ends as one of them wants, whole, not a mix."""
    small = basic_pod(pod_name)
    big = basic_pod(pod_name)
    big["containers"] = [dict(c, resources=dict(limits=dict(memory="128Mi", cpu="1"))) for c in big["containers"]]
    runs = [Background("pod", small), Background("pod", big)]
    for run in runs:
        result = run.result()
        assert not result.get("failed"), result.get("msg")
    memory = None
    for args, limit, quota in ((small, 96 * 1024 * 1024, 75000), (big, 256 * 1024 * 1024, 200000)):
        again = run_module("pod", check=True, **args)
        if not again["changed"]:
            memory = limit
            assert_converged(docker_client, pod_name, memory=limit, cpu_quota=quota)
    assert memory is not None, "the pod matches neither run's spec"


def test_the_smaller_spec_after_the_bigger_one(run_module, docker_client, pod_name):
    """The sequential core of the test above: a pod whose members had 1 CPU each is converged to 500m
    and 250m. The pod's CFS quota shrinks below the running members' own quotas, which cgroup v1
    refuses until they are recreated, so the order of the writes matters."""
    big = basic_pod(pod_name)
    big["containers"] = [dict(c, resources=dict(limits=dict(memory="128Mi", cpu="1"))) for c in big["containers"]]
    run_module("pod", **big)
    assert_converged(docker_client, pod_name, memory=256 * 1024 * 1024, cpu_quota=200000)
    result = run_module("pod", **basic_pod(pod_name))
    assert result["changed"]
    assert_converged(docker_client, pod_name)
