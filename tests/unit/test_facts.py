"""Pure logic of pod_facts: grouping containers into pods, the QoS class, the tree."""

import pytest

from ansible_collections.podkit.docker.plugins.module_utils import _facts
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError


def inspect(name, cid=None, labels=None, network="bridge", ipc="private", pid_mode="", running=True,
            created="2026-01-01T00:00:00Z", parent="", **host_config):
    """Inspect data shaped as `docker inspect` returns it, with only what pod_facts reads."""
    hc = dict(NetworkMode=network, IpcMode=ipc, PidMode=pid_mode, CgroupParent=parent)
    hc.update(host_config)
    return {
        "Id": cid or (name.encode().hex() + "0" * 64)[:64],
        "Name": "/" + name,
        "Created": created,
        "Config": {"Labels": labels or {}, "Image": "podkit/busybox:latest"},
        "HostConfig": hc,
        "State": {"Running": running, "Status": "running" if running else "exited",
                  "Pid": 4242 if running else 0, "ExitCode": 0},
    }


def podkit(pod, role, container=None, **kwargs):
    labels = {"io.podkit.pod": pod, "io.podkit.role": role}
    if container:
        labels["io.podkit.container"] = container
    name = "%s_%s" % (pod, container or "sandbox")
    return inspect(name, labels=labels, **kwargs)


# ---------------------------------------------------------------------------
# Grouping


def test_podkit_pod_is_grouped_by_labels_with_members_keyed_by_container_label():
    sandbox = podkit("foo", "sandbox", ipc="shareable")
    join = "container:" + sandbox["Id"]
    app = podkit("foo", "member", "app", network=join, ipc=join)
    init = podkit("foo", "init", "setup", running=False)
    other = podkit("bar", "sandbox")
    pods = _facts.group_containers([app, other, init, sandbox])
    assert sorted(pods) == ["bar", "foo"]
    group = pods["foo"]
    assert group.managed and group.sandbox is sandbox
    # Init containers first: they ran first.
    assert [(key, role) for key, role, _a in group.members] == [("setup", "init"), ("app", "member")]
    assert pods["bar"].members == []


def test_unlabelled_containers_are_ignored_unless_include_unmanaged():
    sandbox = inspect("foo_sandbox", ipc="shareable")
    app = inspect("app", network="container:" + sandbox["Id"], ipc="container:" + sandbox["Id"])
    assert _facts.group_containers([sandbox, app]) == {}
    pods = _facts.group_containers([sandbox, app], include_unmanaged=True)
    assert list(pods) == ["foo_sandbox"]
    assert pods["foo_sandbox"].managed is False
    assert pods["foo_sandbox"].sandbox is sandbox


def test_hand_made_pod_of_the_article_is_named_after_the_namespace_owner():
    """foo_sandbox + app + sidecar (docker run --network/--ipc container:foo_sandbox) is pod foo_sandbox."""
    sandbox = inspect("foo_sandbox", ipc="shareable", parent="/pod-foo")
    join = "container:" + sandbox["Id"]
    app = inspect("app", network=join, ipc=join, parent="/pod-foo")
    sidecar = inspect("sidecar", network=join, ipc=join, parent="/pod-foo")
    lonely = inspect("web")
    pods = _facts.group_containers([lonely, sidecar, sandbox, app], include_unmanaged=True)
    assert list(pods) == ["foo_sandbox"]
    assert [(key, role) for key, role, _a in pods["foo_sandbox"].members] == [("app", "member"), ("sidecar", "member")]


def test_references_by_name_and_id_prefix_and_chains_resolve_to_the_owner():
    owner = inspect("owner", cid="a" * 64)
    by_name = inspect("by_name", network="container:owner")
    by_prefix = inspect("by_prefix", ipc="container:" + "a" * 12)
    # Joins by_name's network: the namespaces still belong to owner.
    chained = inspect("chained", network="container:" + by_name["Id"])
    pods = _facts.group_containers([owner, by_name, by_prefix, chained], include_unmanaged=True)
    assert list(pods) == ["owner"]
    assert sorted(key for key, _r, _a in pods["owner"].members) == ["by_name", "by_prefix", "chained"]


def test_pid_only_join_forms_a_pod_too():
    owner = inspect("owner")
    debug = inspect("debugger", pid_mode="container:" + owner["Id"])
    pods = _facts.group_containers([owner, debug], include_unmanaged=True)
    assert [k for k, _r, _a in pods["owner"].members] == ["debugger"]


def test_joiner_of_a_removed_owner_is_reported_under_the_reference():
    orphan = inspect("orphan", network="container:" + "b" * 64, running=False)
    pods = _facts.group_containers([orphan], include_unmanaged=True)
    assert list(pods) == ["b" * 12]
    assert pods["b" * 12].sandbox is None


def test_unlabelled_joiner_of_a_podkit_sandbox_is_shown_in_that_pod_as_unmanaged():
    sandbox = podkit("foo", "sandbox", ipc="shareable")
    app = podkit("foo", "member", "app", network="container:" + sandbox["Id"])
    intruder = inspect("debug", network="container:" + sandbox["Id"])
    pods = _facts.group_containers([sandbox, app, intruder], include_unmanaged=True)
    assert list(pods) == ["foo"]
    assert [(k, r) for k, r, _a in pods["foo"].members] == [("app", "member"), ("debug", "unmanaged")]


def test_hand_made_pod_named_like_a_podkit_pod_does_not_replace_it():
    real = podkit("foo_sandbox", "sandbox")
    owner = inspect("foo_sandbox_x", cid="c" * 64)
    # A container literally named like a podkit pod, owning a hand-made group.
    owner["Name"] = "/foo_sandbox"
    joiner = inspect("app", network="container:" + owner["Id"])
    pods = _facts.group_containers([real, owner, joiner], include_unmanaged=True)
    assert pods["foo_sandbox"].managed is True
    assert pods["foo_sandbox (unmanaged)"].sandbox is owner


def test_of_two_sandboxes_the_running_newest_is_the_sandbox_and_the_other_is_listed():
    old = podkit("foo", "sandbox", cid="1" * 64, created="2026-01-01T00:00:00Z")
    new = podkit("foo", "sandbox", cid="2" * 64, created="2026-01-02T00:00:00Z")
    stopped_newer = podkit("foo", "sandbox", cid="3" * 64, created="2026-01-03T00:00:00Z", running=False)
    group = _facts.group_containers([old, stopped_newer, new])["foo"]
    assert group.sandbox is new
    assert sorted(a["Id"][0] for _k, role, a in group.members if role == "sandbox") == ["1", "3"]


def test_sdk_models_are_accepted_as_well_as_dicts():
    class Model:
        def __init__(self, attrs):
            self.attrs = attrs
    pods = _facts.group_containers([Model(podkit("foo", "sandbox"))])
    assert pods["foo"].sandbox["Name"] == "/foo_sandbox"


# ---------------------------------------------------------------------------
# QoS class


def member(**host_config):
    return podkit("foo", "member", "c", **host_config)


@pytest.mark.parametrize("members, expected", [
    ([], "BestEffort"),
    ([member()], "BestEffort"),
    ([member(CpuShares=2)], "BestEffort"),                       # the kubelet's shares for no request
    ([member(Memory=256 << 20, NanoCpus=500000000)], "Guaranteed"),
    ([member(Memory=256 << 20, CpuQuota=50000, CpuPeriod=100000, CpuShares=512, MemoryReservation=256 << 20)],
     "Guaranteed"),
    ([member(Memory=256 << 20, NanoCpus=500000000, CpuShares=256)], "Burstable"),     # request < limit
    ([member(Memory=256 << 20, NanoCpus=500000000, MemoryReservation=128 << 20)], "Burstable"),
    ([member(Memory=256 << 20)], "Burstable"),                   # no CPU limit
    ([member(Memory=256 << 20, NanoCpus=500000000), member()], "Burstable"),
    ([member(CpuShares=512)], "Burstable"),
])
def test_qos_class_from_docker_settings(members, expected):
    assert _facts.observed_qos_class(podkit("foo", "sandbox"), members) == expected


def test_qos_label_wins():
    sandbox = podkit("foo", "sandbox")
    sandbox["Config"]["Labels"]["io.podkit.qos-class"] = "Guaranteed"
    assert _facts.observed_qos_class(sandbox, [member()]) == "Guaranteed"


def test_sandbox_limits_do_not_count():
    assert _facts.observed_qos_class(podkit("foo", "sandbox", Memory=1 << 30, NanoCpus=10 ** 9), [member()]) == "BestEffort"


# ---------------------------------------------------------------------------
# Namespaces shared with the sandbox


def test_shared_with_leaves_out_the_hosts_namespaces():
    host = dict(user=1, cgroup=2, time=3, net=10, ipc=11)
    sandbox = dict(user=1, cgroup=2, time=3, net=20, ipc=21, pid=22, mnt=23, uts=24)
    app = dict(user=1, cgroup=2, time=3, net=20, ipc=21, pid=32, mnt=33, uts=34)
    assert _facts.shared_with(app, sandbox, host) == ["net", "ipc"]
    assert _facts.shared_with(dict(app, pid=22), sandbox, host) == ["net", "ipc", "pid"]
    assert _facts.shared_with({}, sandbox, host) == []


def test_configured_limits_for_a_stopped_container():
    hc = dict(Memory=512 << 20, NanoCpus=500000000, CpuShares=512, PidsLimit=100)
    assert _facts._configured_limits(hc, 1) == dict(memory_bytes=512 << 20, cpu_quota_us=50000, cpu_period_us=100000,
                                                    cpu_shares=512, pids_max=100)
    assert _facts._configured_limits({}, 2) == dict(memory_bytes=None, cpu_quota_us=None, cpu_period_us=None,
                                                    cpu_weight=None, pids_max=None)


# ---------------------------------------------------------------------------
# The tree


def entry(name, pid, role="member", shared=None, ns=None, status="running", processes=None, limits=None, exit_code=0):
    result = dict(name=name, pid=pid, role=role, status=status, exit_code=exit_code,
                  namespaces=ns or {}, limits=limits or {},
                  processes=processes if processes is not None else ([dict(pid=pid, command="cmd-%s" % name)] if pid else []))
    if shared is not None:
        result["shared_with_sandbox"] = shared
    return result


HOST = dict(docker_version="20.10.24", cgroup_version=1, cgroup_driver="cgroupfs", kernel="6.1.0")


def sample_pod():
    return dict(
        name="foo", managed=True, qos_class="Burstable",
        cgroup=dict(name="/pod-foo", version=1,
                    limits=dict(memory_bytes=512 << 20, cpu_quota_us=50000, cpu_period_us=100000, cpu_shares=1024,
                                pids_max=None),
                    usage=dict(memory_bytes=3 << 20)),
        sandbox=entry("foo_sandbox", 100, role="sandbox", ns=dict(net=4026532184, ipc=4026532182, pid=4026532183),
                      processes=[dict(pid=100, command="/pause")]),
        containers=dict(
            setup=entry("foo_setup", 0, role="init", shared=[], status="exited"),
            app=entry("foo_app", 200, shared=["net", "ipc"], limits=dict(memory_bytes=256 << 20, cpu_shares=1024),
                      processes=[dict(pid=200, command="httpd -f"), dict(pid=201, command="sh")]),
            sidecar=entry("foo_sidecar", 0, shared=[], status="exited", exit_code=137),
        ))


def test_tree_shows_pod_cgroup_limits_sandbox_first_and_shared_namespaces():
    assert _facts.render_tree({"foo": sample_pod()}, HOST) == [
        "host: Docker 20.10.24, cgroup v1 (cgroupfs driver), kernel 6.1.0",
        "pod foo (podkit, Burstable)",
        "└─cgroup /pod-foo: memory=512Mi cpu=500m, memory used 3Mi",
        "  ├─sandbox foo_sandbox pid 100 running, ns net:4026532184 ipc:4026532182",
        "  │ └─100 /pause",
        "  ├─init setup (foo_setup) exited (0)",
        "  ├─app (foo_app) pid 200 running [net ipc], memory=256Mi",
        "  │ ├─200 httpd -f",
        "  │ └─201 sh",
        "  └─sidecar (foo_sidecar) exited (137)",
    ]


def test_tree_of_a_hand_made_pod_without_cgroup_parent_and_lost_sandbox():
    pod = dict(name="abc123", managed=False, qos_class="BestEffort", cgroup=None, sandbox=None,
               containers=dict(app=entry("app", 300, shared=[])))
    assert _facts.render_tree({"abc123": pod}) == [
        "pod abc123 (unmanaged, BestEffort)",
        "└─cgroup parent: none (the containers are in Docker's default cgroup)",
        "  ├─sandbox (gone) missing",
        "  └─app pid 300 running [shares nothing]",
        "    └─300 cmd-app",
    ]


def test_tree_cuts_long_process_lists_and_commands():
    pod = sample_pod()
    pod["containers"] = dict(app=entry("foo_app", 200, shared=["net"], processes=[
        dict(pid=200 + i, command="x" * 150) for i in range(_facts.TREE_PROCESSES + 3)]))
    lines = _facts.render_pod(pod)
    assert lines[-1] == "    └─... 3 more"
    assert len(lines[-2]) < 120 and lines[-2].endswith("...")
    assert sum(1 for line in lines if line.startswith("    ├─2")) == _facts.TREE_PROCESSES


def test_tree_without_pods():
    assert _facts.render_tree({}, HOST)[1:] == ["no pods"]


@pytest.mark.parametrize("limits, text", [
    ({}, ""),
    (dict(memory_bytes=536870912), "memory=512Mi"),
    (dict(memory_bytes=129000000), "memory=123.0Mi"),
    (dict(memory_bytes=1 << 30, cpu_quota_us=200000, cpu_period_us=100000), "memory=1Gi cpu=2"),
    (dict(cpu_quota_us=25000, cpu_period_us=50000, cpu_shares=512, pids_max=64), "cpu=500m shares=512 pids=64"),
    (dict(cpu_weight=100, cpu_shares=1024), ""),
    (dict(cpu_weight=39), "weight=39"),
])
def test_format_limits(limits, text):
    assert _facts.format_limits(limits) == text


def test_bad_query_is_a_clear_error():
    with pytest.raises(PodkitError) as err:
        _facts.run_query("foo.[", {})
    assert err.value.msg.startswith("query: 'foo.[' is not a valid JMESPath expression")


def test_query_over_pods():
    pods = {"foo": sample_pod()}
    assert sorted(_facts.run_query("foo.containers.*.shared_with_sandbox", pods)) == [[], [], ["net", "ipc"]]


def test_tree_sandbox_shows_net_and_ipc_when_no_member_runs():
    pod = sample_pod()
    pod["containers"] = dict(sidecar=entry("foo_sidecar", 0, shared=[], status="exited"))
    assert _facts.render_pod(pod)[2] == "  ├─sandbox foo_sandbox pid 100 running, ns net:4026532184 ipc:4026532182"
    pod["containers"] = dict(app=entry("foo_app", 200, shared=["net", "ipc", "pid"]))
    assert _facts.render_pod(pod)[2].endswith("ns net:4026532184 ipc:4026532182 pid:4026532183")


def test_processes_are_ordered_main_first_then_each_after_its_parent():
    # 32741 is the main process (sh), its child 308 got a wrapped-around PID; 500 came by docker exec.
    assert _facts.order_processes({308: 32741, 32741: 1000, 500: 900, 501: 500}, 32741) == [32741, 308, 500, 501]
    assert _facts.order_processes({5: 4, 4: 5}) == [4, 5]
    assert _facts.order_processes({}) == []


def test_every_module_util_uses_the_one_label_schema():
    """A label or role name defined anywhere but _labels.py (a copy that could drift) fails here."""
    import importlib
    import pathlib
    from ansible_collections.podkit.docker.plugins.module_utils import _labels
    schema = dict((k, v) for k, v in vars(_labels).items() if k.startswith(("LABEL_", "ROLE_", "QOS_")))
    assert all(v.startswith(_labels.LABEL_PREFIX) for k, v in schema.items() if k.startswith("LABEL_"))
    assert {"LABEL_POD", "LABEL_QOS", "LABEL_HASH", "ROLE_SANDBOX", "ROLE_UNMANAGED"} <= set(schema)
    folder = pathlib.Path(_labels.__file__).parent
    for path in sorted(folder.glob("_*.py")):
        module = importlib.import_module("ansible_collections.podkit.docker.plugins.module_utils." + path.stem)
        for name, value in vars(module).items():
            if name.startswith(("LABEL_", "ROLE_", "QOS_")):
                assert value is schema.get(name), (path.name, name)
        if path.stem != "_labels":
            assert '"io.podkit.' not in path.read_text(), path.name
