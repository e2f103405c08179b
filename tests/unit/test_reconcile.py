"""Planning without an engine: what the reconciler decides from a given observed state."""

from ansible_collections.podkit.docker.plugins.module_utils._docker import LABEL_SANDBOX_ID
from ansible_collections.podkit.docker.plugins.module_utils._reconcile import (
    Images, Planner, PodState, Seen, _split_ref, config_changes, labels_for, member_wanted, sandbox_wanted)
from ansible_collections.podkit.docker.plugins.module_utils._spec import (
    ContainerSpec, PortMapping, Resources, SandboxSpec)

POD = "foo"
PARENT = "/podkit/pod-foo"
SANDBOX_ID = "s" * 64


def images(**ids):
    found = Images(client=None, check_mode=True)
    found.ids.update({"pause": "sha256:p", "busybox": "sha256:b"})
    found.ids.update(ids)
    return found


def wanted_sandbox(**kw):
    return sandbox_wanted(SandboxSpec(pod=POD, image="pause", **kw), PARENT)


def wanted_member(name="app", **kw):
    kw.setdefault("command", ["sleep", "1d"])
    spec = ContainerSpec(name=name, image="busybox", resources=Resources(memory_limit=268435456), **kw)
    return member_wanted(POD, spec, {}, PARENT)


def seen(wanted, container_id, image_id, running=True, namespaces=None, extra=None, exit_code=0):
    attrs = {
        "Id": container_id, "Name": "/" + wanted.name, "Image": image_id,
        "Config": {"Labels": labels_for(POD, wanted, extra), "Image": wanted.image},
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
    planner = Planner(state, found or images())
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
    found = images()
    del found.ids["busybox"]
    found.pending.append("busybox")
    assert plan(running_pod(), found=found) == ["recreate app: image changed (busybox)"]


def test_stopped_and_absent_states():
    assert plan(running_pod(), pod_state="stopped") == ["stop sandbox", "stop app"]
    assert plan(running_pod(), pod_state="absent") == ["remove sandbox", "remove app"]


def test_init_containers_rerun_from_the_first_changed():
    state = running_pod()
    one = member_wanted(POD, ContainerSpec(name="one", image="busybox", init=True), {}, PARENT, role="init")
    two = member_wanted(POD, ContainerSpec(name="two", image="busybox", init=True), {}, PARENT, role="init")
    state.containers["one"] = seen(one, "1" * 64, "sha256:b", running=False, extra={LABEL_SANDBOX_ID: SANDBOX_ID})
    state.containers["two"] = seen(two, "2" * 64, "sha256:b", running=False, extra={LABEL_SANDBOX_ID: SANDBOX_ID})
    planner = Planner(state, images())
    planner.sandbox(wanted_sandbox(), "present")
    assert planner.init(one, None) is None and planner.init(two, None) is None
    assert planner.actions == []
    # A failed init container runs again, and so does every one after it.
    state.containers["one"].attrs["State"]["ExitCode"] = 1
    planner = Planner(state, images())
    planner.sandbox(wanted_sandbox(), "present")
    rerun = planner.init(one, None)
    planner.init(two, rerun)
    assert [str(a) for a in planner.actions] == ["run init one: did not complete", "run init two: after one"]


def test_removed_from_spec_is_removed():
    planner = Planner(running_pod(), images())
    planner.remove_others(["sandbox"])
    assert [str(a) for a in planner.actions] == ["remove app: not in the pod"]


def test_secret_env_is_masked_and_hash_still_sees_it():
    first = wanted_member(env={"TOKEN": "s3cret-a"}, secret_env=("TOKEN",))
    second = wanted_member(env={"TOKEN": "s3cret-b"}, secret_env=("TOKEN",))
    assert first.masked_config()["env"] == {"TOKEN": "********"}
    assert first.hashes()[0] != second.hashes()[0]
    assert "s3cret" not in repr(first.masked_config())


def test_split_ref():
    assert _split_ref("podkit/busybox:latest") == ("podkit/busybox", "latest")
    assert _split_ref("localhost:5000/x") == ("localhost:5000/x", "latest")
    assert _split_ref("registry.k8s.io/pause:3.10") == ("registry.k8s.io/pause", "3.10")


def test_timestamps_compare_with_trimmed_nanoseconds():
    from ansible_collections.podkit.docker.plugins.module_utils._reconcile import _timestamp
    assert _timestamp("2026-11-24T21:01:02.12Z") > _timestamp("2026-11-24T21:01:02.1Z")
    assert _timestamp("2026-11-24T21:01:03Z") > _timestamp("2026-11-24T21:01:02.999999999Z")


def test_init_reruns_when_the_sandbox_started_after_it():
    state = running_pod()
    one = member_wanted(POD, ContainerSpec(name="one", image="busybox", init=True), {}, PARENT, role="init")
    state.containers["one"] = seen(one, "1" * 64, "sha256:b", running=False, extra={LABEL_SANDBOX_ID: SANDBOX_ID})
    state.containers["one"].attrs["State"]["StartedAt"] = "2026-11-24T21:00:00.5Z"
    state.sandbox.attrs["State"]["StartedAt"] = "2026-11-24T20:59:59Z"
    planner = Planner(state, images())
    assert planner.init(one, None) is None
    state.sandbox.attrs["State"]["StartedAt"] = "2026-11-24T21:00:01Z"
    planner = Planner(state, images())
    planner.init(one, None)
    assert [str(a) for a in planner.actions] == ["run init one: sandbox restarted"]


def test_limits_are_raised_first_and_lowered_last():
    from ansible_collections.podkit.docker.plugins.module_utils._cgroups import UNLIMITED, CgroupLimits
    from ansible_collections.podkit.docker.plugins.module_utils._reconcile import split_limits
    wanted = CgroupLimits(memory_bytes=200, cpu_quota_us=50000, cpu_period_us=100000, cpu_shares=512)
    first, last = split_limits(wanted, dict(memory_bytes=100, cpu_quota_us=200000, cpu_shares=1024))
    assert first.memory_bytes == 200 and first.cpu_quota_us is None and first.cpu_shares == 512
    assert last is wanted
    first, last = split_limits(wanted, dict(memory_bytes=100, cpu_quota_us=20000))
    assert first == wanted and last is None
    unlimited = CgroupLimits(memory_bytes=UNLIMITED)
    assert split_limits(unlimited, dict(memory_bytes=100)) == (unlimited, None)


def test_secret_values_found_in_raw_options():
    from ansible_collections.podkit.docker.plugins.module_utils._reconcile import secret_values
    params = dict(containers=[
        dict(name="a", env=[dict(name="T", value="hidden", secret=True), dict(name="P", value="plain")]),
        dict(name="b", env=dict(K="also-hidden", L="shown"), secret_env=["K"]),
        dict(name="c", secret_env=dict(M="mapped")),
        "not a dict"])
    assert sorted(secret_values(params)) == ["also-hidden", "hidden", "mapped"]
