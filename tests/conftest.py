"""The test bed: a real Docker engine, the real cgroup filesystem, the real modules.

Fixtures here never mock what podkit drives. Modules are run the way Ansible runs
them on a host (a Python process reading ANSIBLE_MODULE_ARGS, printing JSON), and
every test pod gets a unique name and is removed afterwards with its containers
and cgroup directories, whatever the test did.
"""

import json
import os
import pathlib
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from helpers import (  # noqa: E402
    BUSYBOX_IMAGE, DOCKER_HOST, HOST_STATE_DIR, LABEL_POD, NAMES_MADE, PAUSE_IMAGE, STATE_DIR, ModuleRunner, export_pod,
    export_pods, listed_containers, remove_pod_leftovers, round_trip_many, unique_name, use_collection)

use_collection()
from ansible_collections.podkit.docker.plugins.module_utils._record import read_record  # noqa: E402  pylint: disable=wrong-import-position

# The test process records where its module runs do: a test that calls converge_pod in process (test_pods)
# recorded its pods in the host's /var/lib/podkit, where a podkit-guard started later would bring them back.
os.environ["PODKIT_STATE_DIR"] = str(STATE_DIR)

# What the round trip of the pods tests leave did (issue 17): pods, seconds, and the pods left out with why.
ROUND_TRIPS = {"pods": 0, "seconds": 0.0, "module_runs": 0, "left_out": {}, "exported_only": {}}


@pytest.fixture(scope="session")
def docker_client():
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=DOCKER_HOST, version="auto")
    client.ping()
    for image in (PAUSE_IMAGE, BUSYBOX_IMAGE):
        client.images.get(image)  # built by `make images`; raises if missing
    yield client
    client.close()


@pytest.fixture
def run_module():
    return ModuleRunner()


# Pods waiting for their round trip: at most ROUND_TRIP_BATCH, then the batch is taken (and at the end of each
# test module). Three module runs a batch instead of three a pod: the module's start (Python, imports) is most of
# a run's time, and the fixture took 150-190 s of the integration stage that way (issue 27).
ROUND_TRIP_BATCH = 16
_WAITING = []


class _Waiting:
    """A pod left by a test, kept as it is until its batch is round-tripped, then removed."""

    def __init__(self, nodeid, client, name):
        self.nodeid = nodeid
        self.client = client
        self.name = name
        self.at_rest = _containers_state(client, name)


def _containers_state(client, name):
    return sorted((c.name, c.id, c.status) for c in client.containers.list(
        all=True, filters={"label": "%s=%s" % (LABEL_POD, name)}))


def round_trip_left_pod(request, client, name):
    """Before a test's pod is removed: export it, validate the export against the Kubernetes schema,
    apply it (check mode, then real) and require no action (issue 17).

    Every pod podkit made is taken, by the pod or pods module or by pod_sandbox and pod_container (its
    export tells the pod module to leave the pod cgroup's limits as they are), running or stopped (its
    export says state: stopped), when it has its sandbox and a member. A test that breaks its pod on
    purpose says so with ``@pytest.mark.no_roundtrip("why")``. The pods left out are counted, with why, in the
    summary at the end of the run.

    Returns True when the pod waits for its batch (round_trip_waiting): it is then left as it is, and the
    batch removes it. A pod that holds a port on the host goes through at once (a batch of its own), so a
    later test may take the same port, and so does the pod of a disruptive test.
    """
    marker = request.node.get_closest_marker("no_roundtrip")
    containers = client.containers.list(all=True, filters={"label": "%s=%s" % (LABEL_POD, name)})
    if not containers:
        # A hand-made pod (the article's recipe) named after the test's pod: exported and validated.
        hand_made = [c for c in client.containers.list(all=True, filters={"name": "^/%s_sandbox$" % name})
                     if LABEL_POD not in c.labels]
        # (A lone container with that name that nobody joined is no pod: pod_facts does not report it.)
        if hand_made and marker is None and _timed(export_pod, ModuleRunner(), hand_made[0].name,
                                                   include_unmanaged=True, required=False):
            ROUND_TRIPS["exported_only"].setdefault("hand-made (exported and validated)", []).append(request.node.nodeid)
        return False
    if marker is not None:
        reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
        assert reason, "no_roundtrip needs a reason"
        ROUND_TRIPS["left_out"].setdefault("test opted out: " + reason, []).append(request.node.nodeid)
        return False
    sandboxes = [c for c in containers if c.labels.get("io.podkit.role") == "sandbox"]
    why = None
    if len(sandboxes) != 1:
        why = "no sandbox when the test ended (a member left alone): no Pod to read back"
    elif not any(c.labels.get("io.podkit.role") == "member" for c in containers):
        why = "no member when the test ended"
    elif len(set(c.status == "running" for c in containers if c.labels.get("io.podkit.role") != "init")) > 1:
        why = "partly running when the test ended"
    if why:
        # Not applied back, but its export must still validate.
        _timed(export_pod, ModuleRunner(), name)
        if why.startswith(("no member", "partly")):
            acts = _timed(recorded_spec_acts, name)
            if acts is None:
                why += " (made by pod_sandbox/pod_container, which keep no record): no Pod at rest to read back"
            else:
                # The proof it is no pod at rest that the export fails: its own recorded spec would act on it
                # (an init container that failed runs again, a member in back-off is started).
                assert acts, "%s is %s, yet applying its own recorded spec would do nothing" % (name, why)
                why += " (its own recorded spec would act on it: %s)" % acts[0].split(":")[0]
        ROUND_TRIPS["exported_only"].setdefault(why, []).append(request.node.nodeid)
        return False
    _WAITING.append(_Waiting(request.node.nodeid, client, name))
    host_config = client.api.inspect_container(sandboxes[0].id)["HostConfig"]
    # At once too: after a disruptive test, the next may stop the engine under a waiting pod.
    if len(_WAITING) >= ROUND_TRIP_BATCH or host_config.get("PortBindings") or host_config.get("NetworkMode") == "host" \
            or request.node.get_closest_marker("disruptive") is not None:
        round_trip_waiting()
    return True


def round_trip_waiting():
    """The round trip of every waiting pod, in one pod_facts run and one pods run in check mode then one for
    real (helpers.round_trip_many); each pod is then removed. A pod whose containers changed since its test
    ended (a member that exited, restarted) was not at rest: its export is validated, not applied."""
    batch, _WAITING[:] = list(_WAITING), []
    if not batch:
        return
    start = time.monotonic()
    runner = ModuleRunner()
    try:
        try:
            exports = export_pods(runner, [w.name for w in batch])
            ROUND_TRIPS["module_runs"] += 1
            at_rest = {}
            for waiting in batch:
                if _containers_state(waiting.client, waiting.name) == waiting.at_rest:
                    at_rest[waiting.name] = exports[waiting.name]
                else:
                    ROUND_TRIPS["exported_only"].setdefault(
                        "changed on its own after its test ended: not at rest", []).append(waiting.nodeid)
            if at_rest:
                round_trip_many(runner, batch[0].client, at_rest)
                ROUND_TRIPS["module_runs"] += 2
            ROUND_TRIPS["pods"] += len(at_rest)
        except AssertionError as exc:
            raise AssertionError("round trip of the pods these tests left (%s): %s" % (
                ", ".join("%s by %s" % (w.name, w.nodeid) for w in batch), exc)) from exc
    finally:
        ROUND_TRIPS["seconds"] += time.monotonic() - start
        for waiting in batch:
            remove_pod_leftovers(waiting.client, waiting.name)


@pytest.fixture(scope="module", autouse=True)
def _round_trip_batch():
    """Takes the pods a test module's tests left to their round trip once its last test is done."""
    yield
    round_trip_waiting()


def recorded_spec_acts(name):
    """The actions applying ``name``'s recorded spec (what the pod module last applied) would take, in
    check mode; None when the pod has no record (pod_sandbox and pod_container keep none)."""
    recorded = read_record(name, str(STATE_DIR))
    if recorded is None:
        return None
    params = dict((k, v) for k, v in recorded.items() if v is not None)
    return ModuleRunner()("pod", check=True, _ansible_no_log=True, **params)["actions"]


def _timed(function, *args, **kwargs):
    start = time.monotonic()
    try:
        return function(*args, **kwargs)
    finally:
        ROUND_TRIPS["seconds"] += time.monotonic() - start


@pytest.fixture
def pod_name(request, docker_client):
    """A pod name no other test uses; everything of it is removed afterwards (after the round trip)."""
    name = unique_name()
    remove_pod_leftovers(docker_client, name)
    yield name
    waiting = False
    try:
        waiting = round_trip_left_pod(request, docker_client, name)
    finally:
        if not waiting:
            remove_pod_leftovers(docker_client, name)


@pytest.fixture
def pod_names(request, docker_client):
    """A factory of unique pod names, all cleaned up afterwards (after the round trip)."""
    names = []

    def make():
        names.append(unique_name())
        return names[-1]

    yield make
    waiting = set()
    try:
        for name in names:
            if round_trip_left_pod(request, docker_client, name):
                waiting.add(name)
    finally:
        for name in names:
            if name not in waiting:
                remove_pod_leftovers(docker_client, name)


def pytest_terminal_summary(terminalreporter):
    if not ROUND_TRIPS["pods"] and not ROUND_TRIPS["left_out"] and not ROUND_TRIPS["exported_only"]:
        return
    terminalreporter.write_line("round trip (export, validate, apply as a no-op) of the pods tests left: %d pods in %d"
                                " batched module runs, %.1f s with the exports below"
                                % (ROUND_TRIPS["pods"], ROUND_TRIPS["module_runs"], ROUND_TRIPS["seconds"]))
    for title, table in (("exported and validated only", ROUND_TRIPS["exported_only"]),
                         ("left out", ROUND_TRIPS["left_out"])):
        for why, tests in sorted(table.items()):
            terminalreporter.write_line("  %s, %s: %d (%s)" % (title, why, len(tests), ", ".join(sorted(set(tests)))))


_SESSION_START = None


def pytest_sessionstart(session):
    global _SESSION_START  # pylint: disable=global-statement
    _SESSION_START = int(time.time()) - 1


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if a test left a container or a record of a pod it named, or if anything made the
    engine pull an image: tests never pull."""
    _fail_on_leftovers(session)
    if _SESSION_START is None:
        return
    try:
        import docker
        client = docker.DockerClient(base_url=DOCKER_HOST, version="auto")
        events = list(client.events(since=_SESSION_START, until=int(time.time()) + 1, decode=True,
                                    filters={"type": "image", "event": "pull"}))
    except Exception:  # pylint: disable=broad-except
        return  # no engine: the tests that needed one have failed already
    # An attempted pull cannot leave the host: scripts/start-dockerd.sh points the
    # engine's proxy at a closed loopback port. A pull that succeeded shows here, except
    # those from the private registry the pull tests run on loopback (tests/registry.py).
    from registry import is_loopback_pull  # pylint: disable=import-outside-toplevel
    events = [e for e in events if not is_loopback_pull(e.get("id", ""))]
    if events:
        names = sorted({e.get("id", "?") for e in events})
        session.config.get_terminal_writer().line(
            "ERROR: the tests made the engine pull images: %s" % names, red=True)
        session.exitstatus = 1


def _made_here(pod):
    """Whether ``pod`` is (or is a replica of a workload) named by this session's tests."""
    return any(name in pod for name in NAMES_MADE)


def leftovers(client):
    """What is left of the pods this session's tests named: containers, records where a guard would find
    them (the tests' state directory and the host's) and lock files. Each is removed too, and named."""
    left = []
    for directory in (STATE_DIR / "pods", HOST_STATE_DIR / "pods", STATE_DIR / "workloads"):
        for record in sorted(directory.glob("*.json")) if directory.is_dir() else []:
            if _made_here(record.name[:-len(".json")]):
                left.append("record %s" % record)
                record.unlink()
    for lock in sorted(pathlib.Path("/run/podkit").glob("*.lock")):
        if _made_here(lock.name[:-len(".lock")]):
            left.append("lock file %s" % lock)
            lock.unlink()
    if client is not None:
        for name, labels in listed_containers(client):
            if _made_here(labels.get(LABEL_POD) or name):
                left.append("container %s" % name)
                remove_pod_leftovers(client, labels.get(LABEL_POD) or name.split("_")[0])
    return left


def _fail_on_leftovers(session):
    if not NAMES_MADE:
        return
    try:
        import docker  # pylint: disable=import-outside-toplevel
        client = docker.DockerClient(base_url=DOCKER_HOST, version="auto")
    except Exception:  # pylint: disable=broad-except
        client = None   # no engine: the records are still checked
    try:
        left = leftovers(client)
    finally:
        if client is not None:
            client.close()
    if left:
        session.config.get_terminal_writer().line(
            "ERROR: the tests left what they made (removed now): %s" % json.dumps(left), red=True)
        session.exitstatus = 1
