"""Planning without an engine: what the reconciler decides from a given observed state."""

import pytest

from ansible_collections.podkit.docker.plugins.module_utils._cgroups import UNLIMITED, CgroupLimits, split_limits
from ansible_collections.podkit.docker.plugins.module_utils._docker import Container, docker_time, split_image_ref
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._labels import LABEL_POD, LABEL_SANDBOX_ID
from ansible_collections.podkit.docker.plugins.module_utils._reconcile import (
    Action, CgroupRemoval, CgroupState, CgroupWrite, Plan, Planner, PodState, Seen, VolumeRemoval,
    config_changes, plan_pod)
from ansible_collections.podkit.docker.plugins.module_utils._spec import (
    ContainerSpec, PortMapping, Resources, SandboxSpec, Volume, secret_values)
from ansible_collections.podkit.docker.plugins.module_utils._wanted import (
    CgroupTarget, PodWanted, want_member, want_sandbox)

POD = "foo"
PARENT = "/podkit/pod-foo"
SANDBOX_ID = "s" * 64


def images(**ids):
    """Image IDs as observe finds them (None: not on the host)."""
    return dict({"pause": "sha256:p", "busybox": "sha256:b"}, **ids)


def wanted_sandbox(**kw):
    return want_sandbox(SandboxSpec(pod=POD, image="pause", **kw), PARENT)


def wanted_member(name="app", **kw):
    kw.setdefault("command", ["sleep", "1d"])
    spec = ContainerSpec(name=name, image="busybox", resources=Resources(memory_limit=268435456), **kw)
    return want_member(POD, spec, {}, PARENT)


def seen(wanted, container_id, image_id, running=True, namespaces=None, extra=None, exit_code=0):
    attrs = {
        "Id": container_id, "Name": "/" + wanted.name, "Image": image_id,
        "Config": {"Labels": wanted.labels_for(POD, extra), "Image": wanted.image},
        "State": {"Running": running, "Pid": 10 if running else 0, "ExitCode": exit_code,
                  "Status": "running" if running else "exited", "FinishedAt": "2026-01-01T00:00:00Z"},
    }
    return Seen(attrs, namespaces or {})


def running_pod(sandbox_ns=None, member_ns=None, member=None):
    sandbox = wanted_sandbox()
    member = member or wanted_member()
    state = PodState(pod=POD)
    state.sandbox = seen(sandbox, SANDBOX_ID, "sha256:p", namespaces=sandbox_ns or {"net": 1, "ipc": 2, "pid": 3})
    state.containers["app"] = seen(member, "a" * 64, "sha256:b", namespaces=member_ns or {"net": 1, "ipc": 2, "pid": 9},
                                   extra={LABEL_SANDBOX_ID: SANDBOX_ID})
    return state


def plan(state, sandbox=None, members=None, found=None, pod_state="present"):
    state.images = found or images()
    planner = Planner(state)
    planner.sandbox(sandbox or wanted_sandbox(), pod_state)
    for member in members or [wanted_member()]:
        planner.member(member, pod_state)
    return [str(a) for a in planner.actions]


def test_new_pod_creates_sandbox_then_members():
    assert plan(PodState(pod=POD)) == ["create sandbox", "create app"]


def test_unchanged_pod_plans_nothing():
    assert plan(running_pod()) == []


def test_env_change_names_the_field():
    changed = wanted_member(env={"A": "1"})
    assert config_changes(changed, running_pod().containers["app"]) == ["env"]
    assert plan(running_pod(), members=[changed]) == ["recreate app: config changed (env)"]


def test_two_fields_are_both_named():
    changed = wanted_member(env={"A": "1"}, working_dir="/tmp")
    assert plan(running_pod(), members=[changed]) == ["recreate app: config changed (env, working_dir)"]


def test_port_change_recreates_sandbox_and_members():
    sandbox = wanted_sandbox(ports=[PortMapping(container_port=80, host_port=8080)])
    assert plan(running_pod(), sandbox=sandbox) == ["recreate sandbox: ports changed",
                                                    "recreate app: sandbox recreated"]


def test_stale_network_namespace_after_sandbox_restart():
    state = running_pod(sandbox_ns={"net": 11, "ipc": 12, "pid": 3}, member_ns={"net": 1, "ipc": 2, "pid": 9})
    assert plan(state) == ["recreate app: stale network namespace"]


def test_member_of_another_sandbox_is_recreated():
    state = running_pod()
    state.sandbox.attrs["Id"] = "n" * 64
    assert plan(state) == ["recreate app: joined another sandbox"]


def test_retagged_image_recreates_the_member():
    assert plan(running_pod(), found=images(busybox="sha256:other")) == ["recreate app: image changed (busybox)"]


def test_stopped_sandbox_is_started_and_members_follow():
    state = running_pod()
    state.sandbox.attrs["State"].update(Running=False, Pid=0)
    assert plan(state) == ["start sandbox: not running", "recreate app: sandbox restarted"]


def test_missing_image_with_pull_missing_is_a_pull_action():
    # busybox is not on the host: pulled first (once, for every container that needs it), then
    # the member is recreated, as its image can only differ from the one it runs.
    other = wanted_member(name="other")
    state = running_pod()
    assert plan(state, members=[wanted_member(), other], found=images(busybox=None)) == [
        "pull busybox: not on the host", "recreate app: image changed (busybox)", "create other"]
    planner = Planner(state)
    planner.member(wanted_member(), "present")
    assert planner.plan.actions[0] == Action("pull", "busybox", "not on the host", value="busybox")


def test_missing_image_with_pull_never_is_an_error_naming_the_field():
    state = running_pod()
    state.images = images(busybox=None)
    never = wanted_member()
    never.pull = "never"
    with pytest.raises(PodkitError, match=r"^containers\[0\]\.image: image busybox is not on the host and pull is never"):
        Planner(state).member(never, "present", "containers[0].image")


def test_stopped_and_absent_states():
    """The orders the pod module applies: members before the sandbox, then volumes, then the cgroup."""
    state = running_pod()
    state.containers["zeta"] = seen(wanted_member(name="zeta"), "z" * 64, "sha256:b", running=False)
    assert plan_pod(None, state, "stopped").lines() == ["stop app", "stop sandbox"]
    state.volumes = {"foo_data": {LABEL_POD: POD}, "foo_foreign": {}}
    state.cgroup = CgroupState(PARENT, exists=True)
    removal = plan_pod(PodWanted(pod=POD, removal=True), state, "absent")
    assert removal == Plan([Action("remove", "app"), Action("remove", "zeta"), Action("remove", "sandbox"),
                            Action("remove", "volume foo_data", value=VolumeRemoval("foo_data")),
                            Action("remove", "cgroup %s" % PARENT, value=CgroupRemoval(PARENT))])
    # Without a container of the pod, nothing says the cgroup at that path is the pod's.
    empty = PodState(pod=POD, cgroup=CgroupState(PARENT, exists=True))
    assert plan_pod(PodWanted(pod=POD, removal=True), empty, "absent") == Plan()


def test_each_step_names_its_container_or_none():
    """What podkit-guard logs and counts per container of a repair (converge_pod's ``applied``): read from the
    plan's steps, never parsed back from their text."""
    state = running_pod()
    state.containers["setup"] = seen(wanted_member(name="setup"), "i" * 64, "sha256:b", running=False)
    state.extra.append(seen(wanted_member(name="app"), "d" * 64, "sha256:b"))
    state.volumes = {"foo_data": {LABEL_POD: POD}}
    state.cgroup = CgroupState(PARENT, exists=True)
    removal = plan_pod(PodWanted(pod=POD, removal=True), state, "absent")
    assert [(a.container, a.kind) for a in removal] == [
        ("app", "remove"), ("setup", "remove"), ("foo_app", "remove"), ("sandbox", "remove"),
        (None, "remove"), (None, "remove")]
    steps = [Action("run", "setup", "sandbox restarted"), Action("start", "sandbox", "not running"),
             Action("cgroup", PARENT, value=CgroupWrite(PARENT, CgroupLimits())), Action("pull", "busybox"),
             Action("volume", "foo_data", "emptyDir data"), Action("files", "files of volume conf")]
    assert [a.container for a in steps] == ["setup", "sandbox", None, None, None, None]
    assert str(steps[0]) == "run init setup: sandbox restarted"      # the actions line is unchanged


def test_a_whole_pod_plan_is_data_with_its_values():
    limits = CgroupLimits(memory_bytes=268435456, cpu_quota_us=UNLIMITED, cpu_shares=2)
    sandbox = wanted_sandbox()
    member = want_member(POD, ContainerSpec(name="app", image="busybox", resources=Resources(memory_limit=268435456),
                                            mounts=[]), {"data": Volume(name="data", kind="emptyDir")}, PARENT)
    wanted = PodWanted(pod=POD, sandbox=sandbox, members=[member], volumes={"data": Volume(name="data", kind="emptyDir")},
                       used_volumes=["data"], cgroup=CgroupTarget(PARENT, limits))
    state = PodState(pod=POD, images=images(), cgroup=CgroupState(PARENT, exists=False, changed=True))
    assert plan_pod(wanted, state, "present") == Plan([
        Action("cgroup", PARENT, value=CgroupWrite(PARENT, limits, None)),
        Action("create", "sandbox"),
        Action("volume", "foo_data", "emptyDir data",
               value=dict(name="foo_data", driver="local", driver_opts=None, labels={LABEL_POD: POD})),
        Action("create", "app")])
    # Lowering the memory of an existing cgroup: written after the members changed.
    before = dict(limits=dict(memory_bytes=536870912, cpu_quota_us=None, cpu_shares=2))
    after = dict(limits=dict(memory_bytes=268435456, cpu_quota_us=None, cpu_shares=2))
    state.cgroup = CgroupState(PARENT, exists=True, changed=True, before=before, after=after)
    state.volumes = {"foo_data": {LABEL_POD: POD}}
    first = CgroupLimits(cpu_quota_us=UNLIMITED, cpu_shares=2)
    assert plan_pod(wanted, state, "present").actions[0] == Action(
        "cgroup", PARENT, "memory_bytes changed", value=CgroupWrite(PARENT, first, limits))


def test_foreign_processes_in_the_cgroup_are_refused():
    wanted = PodWanted(pod=POD, sandbox=wanted_sandbox(), cgroup=CgroupTarget(PARENT, CgroupLimits(cpu_shares=2)))
    state = PodState(pod=POD, images=images(), cgroup=CgroupState(PARENT, exists=True, foreign_pids=[4242]))
    with pytest.raises(PodkitError, match="holds processes that are not this pod's: 4242"):
        plan_pod(wanted, state, "present")


def test_init_containers_rerun_from_the_first_changed():
    state = running_pod()
    one = want_member(POD, ContainerSpec(name="one", image="busybox", init=True), {}, PARENT, role="init")
    two = want_member(POD, ContainerSpec(name="two", image="busybox", init=True), {}, PARENT, role="init")
    state.containers["one"] = seen(one, "1" * 64, "sha256:b", running=False, extra={LABEL_SANDBOX_ID: SANDBOX_ID})
    state.containers["two"] = seen(two, "2" * 64, "sha256:b", running=False, extra={LABEL_SANDBOX_ID: SANDBOX_ID})
    state.images = images()
    planner = Planner(state)
    planner.sandbox(wanted_sandbox(), "present")
    assert planner.init(one, None) is None and planner.init(two, None) is None
    assert planner.actions == []
    # A failed init container runs again, and so does every one after it.
    state.containers["one"].attrs["State"]["ExitCode"] = 1
    planner = Planner(state)
    planner.sandbox(wanted_sandbox(), "present")
    rerun = planner.init(one, None)
    planner.init(two, rerun)
    assert [str(a) for a in planner.actions] == ["run init one: did not complete", "run init two: after one"]


def test_removed_from_spec_is_removed():
    planner = Planner(running_pod())
    planner.remove_others(["sandbox"])
    assert [str(a) for a in planner.actions] == ["remove app: not in the pod"]


def test_secret_env_is_masked_and_hash_still_sees_it():
    first = wanted_member(env={"TOKEN": "s3cret-a"}, secret_env=("TOKEN",))
    second = wanted_member(env={"TOKEN": "s3cret-b"}, secret_env=("TOKEN",))
    assert first.masked_config()["env"] == {"TOKEN": "********"}
    assert first.hashes()[0] != second.hashes()[0]
    assert "s3cret" not in repr(first.masked_config())


def test_the_container_view_reads_inspect_data_and_nothing_is_none():
    attrs = {"Id": "c" * 64, "Name": "/foo_app", "RestartCount": 3,
             "Config": {"Labels": {LABEL_POD: POD}, "Hostname": "foo"}, "HostConfig": {"NetworkMode": "host"},
             "State": {"Running": True, "Restarting": False, "Pid": 42, "StartedAt": "2026-01-01T00:00:01.5Z"},
             "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}}}}
    view = Container(attrs)
    assert (view.name, view.labels, view.running, view.pid, view.restart_count) == ("foo_app", {LABEL_POD: POD}, True, 42, 3)
    assert view.started == 1767225601500000000 and view.networks["bridge"]["IPAddress"] == "172.17.0.2"
    assert view.host_config["NetworkMode"] == "host" and view.config["Hostname"] == "foo"
    empty = Container(None)
    assert (empty.name, empty.labels, empty.networks, empty.restart_count, empty.started, empty.running) == \
        ("", {}, {}, 0, 0, False)


def test_split_image_ref():
    assert split_image_ref("podkit/busybox:latest") == ("podkit/busybox", "latest")
    assert split_image_ref("localhost:5000/x") == ("localhost:5000/x", "latest")
    assert split_image_ref("registry.k8s.io/pause:3.10") == ("registry.k8s.io/pause", "3.10")


def test_timestamps_compare_with_trimmed_nanoseconds():
    assert docker_time("2026-11-24T21:01:02.12Z") > docker_time("2026-11-24T21:01:02.1Z")
    assert docker_time("2026-11-24T21:01:03Z") > docker_time("2026-11-24T21:01:02.999999999Z")
    assert docker_time("2026-11-24T21:01:02.5Z") == 1795554062 * 10 ** 9 + 500000000


def test_docker_zero_time_and_no_time_are_never_started():
    assert docker_time("0001-01-01T00:00:00Z") == docker_time(None) == docker_time("") == 0
    assert docker_time("yesterday") == 0
    assert Seen({"State": {"StartedAt": "0001-01-01T00:00:00Z"}}).started == 0


def test_init_reruns_when_the_sandbox_started_after_it():
    state = running_pod()
    one = want_member(POD, ContainerSpec(name="one", image="busybox", init=True), {}, PARENT, role="init")
    state.containers["one"] = seen(one, "1" * 64, "sha256:b", running=False, extra={LABEL_SANDBOX_ID: SANDBOX_ID})
    state.containers["one"].attrs["State"]["StartedAt"] = "2026-11-24T21:00:00.5Z"
    state.sandbox.attrs["State"]["StartedAt"] = "2026-11-24T20:59:59Z"
    state.images = images()
    planner = Planner(state)
    assert planner.init(one, None) is None
    state.sandbox.attrs["State"]["StartedAt"] = "2026-11-24T21:00:01Z"
    planner = Planner(state)
    planner.init(one, None)
    assert [str(a) for a in planner.actions] == ["run init one: sandbox restarted"]


def test_limits_are_raised_first_and_lowered_last():
    wanted = CgroupLimits(memory_bytes=200, cpu_quota_us=50000, cpu_period_us=100000, cpu_shares=512)
    first, last = split_limits(wanted, dict(memory_bytes=100, cpu_quota_us=200000, cpu_shares=1024))
    assert first.memory_bytes == 200 and first.cpu_quota_us is None and first.cpu_shares == 512
    assert last is wanted
    first, last = split_limits(wanted, dict(memory_bytes=100, cpu_quota_us=20000))
    assert first == wanted and last is None
    unlimited = CgroupLimits(memory_bytes=UNLIMITED)
    assert split_limits(unlimited, dict(memory_bytes=100)) == (unlimited, None)


def test_secret_values_found_in_raw_options():
    params = dict(containers=[
        dict(name="a", env=[dict(name="T", value="hidden", secret=True), dict(name="P", value="plain")]),
        dict(name="b", env=dict(K="also-hidden", L="shown"), secret_env=["K"]),
        dict(name="c", secret_env=dict(M="mapped")),
        "not a dict"])
    assert sorted(secret_values(params)) == ["also-hidden", "hidden", "mapped"]


def pod_module_sandbox(share_pid=False):
    """The sandbox the pod module wants: pod_sandbox's plus its QoS class (a hashed field and a label)."""
    sandbox = wanted_sandbox(share_pid=share_pid)
    sandbox.config["qos_class"] = "Burstable"
    sandbox.labels["io.podkit.qos-class"] = "Burstable"
    return sandbox


def test_the_pod_module_takes_a_sandbox_pod_sandbox_made_as_it_is():
    """A sandbox without the QoS label (pod_sandbox's) differs from the pod module's only in its QoS class
    and share_pid, neither of which changes the sandbox container: it is adopted, not recreated."""
    assert plan(running_pod(), sandbox=pod_module_sandbox()) == []
    assert plan(running_pod(), sandbox=pod_module_sandbox(share_pid=True)) == []
    # Anything else is a real change.
    changed = pod_module_sandbox()
    changed.config["hostname"] = "other"
    assert plan(running_pod(), sandbox=changed) == ["recreate sandbox: hostname changed",
                                                    "recreate app: sandbox recreated"]


def test_a_sandbox_the_pod_module_made_is_recreated_when_its_qos_class_changes():
    state = running_pod()
    state.sandbox = seen(pod_module_sandbox(), SANDBOX_ID, "sha256:p", namespaces={"net": 1, "ipc": 2, "pid": 3})
    assert plan(state, sandbox=pod_module_sandbox()) == []
    other = pod_module_sandbox()
    other.config["qos_class"] = "Guaranteed"
    assert plan(state, sandbox=other) == ["recreate sandbox: qos_class changed", "recreate app: sandbox recreated"]
