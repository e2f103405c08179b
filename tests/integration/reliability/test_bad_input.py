"""Bad input: every case is refused with a message naming the field and the fix, and nothing
on the host is created or changed (no container, cgroup directory, slice or lock file).
"""

import os

import pytest

from helpers import BUSYBOX_IMAGE, PAUSE_IMAGE

from .helpers import assert_nothing_of, assert_refused, basic_pod, host_state, run_as

pytestmark = pytest.mark.reliability("bad_input")

BAD_MEMORY = [1, "1", "12Q", "-5Mi", "1.5.5Gi", "0", "5Mi", "abc", "Mi", "1e", "0x40Mi", True]
BAD_CPUS = [-1, "-1", 0, "0", "abc", "0.0001", "1.5.5", "-500m", "500mm", "2k", False]
# Valid elsewhere, refused where only Kubernetes rules apply (inside a manifest).
BAD_MEMORY_K8S = ["512MB", "512mb", "1g", "129m", "64 Mi"]


def _members(memory="64Mi", cpu="500m"):
    return [dict(name="app", image=BUSYBOX_IMAGE, command=["sleep", "60"],
                 resources=dict(limits=dict(memory=memory, cpu=cpu)))]


def _manifest(pod, memory="64Mi", cpu="500m", **spec):
    body = dict(containers=[dict(name="app", image=BUSYBOX_IMAGE, command=["sleep", "60"],
                                 resources=dict(limits=dict(memory=memory, cpu=cpu)))])
    body.update(spec)
    return dict(apiVersion="v1", kind="Pod", metadata=dict(name=pod), spec=body)


def _text(value):
    # How the value shows in a message: repr for strings (%r), str for numbers.
    return str(value).lower()


# ---------------------------------------------------------------------------
# Quantities, on every surface that takes one


@pytest.mark.parametrize("value", BAD_MEMORY, ids=repr)
def test_memory_refused_by_cgroup_parent(run_module, docker_client, pod_name, value):
    result = run_module("cgroup_parent", expect_fail=True, name="/" + pod_name, memory=value)
    assert_refused(result, "memory", _text(value))
    assert_nothing_of(docker_client, pod_name)


@pytest.mark.parametrize("value", BAD_CPUS, ids=repr)
def test_cpus_refused_by_cgroup_parent(run_module, docker_client, pod_name, value):
    result = run_module("cgroup_parent", expect_fail=True, name="/" + pod_name, cpus=value)
    assert_refused(result, "cpus", _text(value))
    assert_nothing_of(docker_client, pod_name)


@pytest.mark.parametrize("value", BAD_MEMORY, ids=repr)
def test_memory_refused_in_pod_containers(run_module, docker_client, pod_name, value):
    result = run_module("pod", expect_fail=True, **basic_pod(pod_name, containers=_members(memory=value)))
    assert_refused(result, "limits.memory", _text(value))
    assert_nothing_of(docker_client, pod_name)


@pytest.mark.parametrize("value", BAD_CPUS, ids=repr)
def test_cpu_refused_in_pod_containers(run_module, docker_client, pod_name, value):
    result = run_module("pod", expect_fail=True, **basic_pod(pod_name, containers=_members(cpu=value)))
    assert_refused(result, "limits.cpu", _text(value))
    assert_nothing_of(docker_client, pod_name)


@pytest.mark.parametrize("value", BAD_MEMORY + BAD_MEMORY_K8S, ids=repr)
def test_memory_refused_in_manifest(run_module, docker_client, pod_name, value):
    result = run_module("pod", expect_fail=True, name=pod_name, sandbox_image=PAUSE_IMAGE, pull="never",
                        manifest=_manifest(pod_name, memory=value))
    assert_refused(result, "limits.memory", _text(value))
    assert_nothing_of(docker_client, pod_name)


@pytest.mark.parametrize("value", BAD_CPUS, ids=repr)
def test_cpu_refused_in_manifest(run_module, docker_client, pod_name, value):
    result = run_module("pod", expect_fail=True, name=pod_name, sandbox_image=PAUSE_IMAGE, pull="never",
                        manifest=_manifest(pod_name, cpu=value))
    assert_refused(result, "limits.cpu", _text(value))
    assert_nothing_of(docker_client, pod_name)


@pytest.mark.parametrize("value", ["12Q", "-5Mi", "1"], ids=repr)
def test_memory_refused_in_pod_level_resources(run_module, docker_client, pod_name, value):
    result = run_module("pod", expect_fail=True, **basic_pod(pod_name, resources=dict(limits=dict(memory=value))))
    assert_refused(result, "memory", _text(value))
    assert_nothing_of(docker_client, pod_name)


@pytest.mark.parametrize("option,value", [("memory", "12Q"), ("memory", "-5Mi"), ("memory", "1"),
                                          ("cpus", "abc"), ("cpus", 0), ("cpus", -1)], ids=repr)
def test_quantity_refused_by_pod_container(run_module, docker_client, pod_name, option, value):
    result = run_module("pod_container", expect_fail=True, pod=pod_name, name="app", image=BUSYBOX_IMAGE,
                        pull="never", command=["sleep", "60"], **{option: value})
    assert_refused(result, option, _text(value))
    assert_nothing_of(docker_client, pod_name)


def test_request_above_limit_refused(run_module, docker_client, pod_name):
    containers = [dict(name="app", image=BUSYBOX_IMAGE, resources=dict(limits=dict(memory="64Mi"),
                                                                       requests=dict(memory="128Mi")))]
    result = run_module("pod", expect_fail=True, **basic_pod(pod_name, containers=containers))
    assert_refused(result, "requests.memory", "limits.memory")
    assert_nothing_of(docker_client, pod_name)


# ---------------------------------------------------------------------------
# cgroup names

ESCAPING = ["/podkit/../../{pod}", "/../{pod}", "{pod}/../../../etc", "/podkit/./../{pod}"]
OUTSIDE = ["/sys/fs/cgroup/memory/{pod}", "/sys/fs/cgroup/{pod}", "/tmp/{pod}", "/etc/{pod}", "/proc/{pod}"]
SLICES = ["podkit-{pod}.slice", "{pod}.slice"]


@pytest.mark.parametrize("name", ESCAPING + OUTSIDE + SLICES)
def test_cgroup_parent_name_refused(run_module, docker_client, pod_name, name):
    name = name.format(pod=pod_name)
    result = run_module("cgroup_parent", expect_fail=True, name=name, memory="64Mi")
    assert_refused(result, "name", name)
    assert_nothing_of(docker_client, pod_name)
    assert not os.path.exists("/tmp/%s" % pod_name) and not os.path.exists("/etc/%s" % pod_name)


@pytest.mark.parametrize("name", ESCAPING + OUTSIDE + SLICES)
def test_pod_cgroup_parent_refused(run_module, docker_client, pod_name, name):
    name = name.format(pod=pod_name)
    result = run_module("pod", expect_fail=True, **basic_pod(pod_name, cgroup_parent=name))
    assert_refused(result, "cgroup_parent", name)
    assert_nothing_of(docker_client, pod_name)
    assert not os.path.exists("/tmp/%s" % pod_name) and not os.path.exists("/etc/%s" % pod_name)


@pytest.mark.parametrize("name", ["/{pod}", "/podkit/pod-{pod}", "{pod}", "/sys/fs/cgroup/{pod}.slice",
                                  "../{pod}.slice", "-{pod}.slice", "podkit/{pod}.slice", "podkit--{pod}.slice"])
def test_path_on_a_systemd_host_refused_by_the_validator(name):
    """A path (or a malformed slice) on a systemd host. This host's dockerd uses cgroupfs, and no
    systemd runs here, so the refusal is checked at the validator every module calls
    (_cgroups.validate_name with the systemd driver), not end to end; the VM suite covers the real host."""
    from ansible_collections.podkit.docker.plugins.module_utils._cgroups import validate_name
    from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
    name = name.format(pod="foo")
    with pytest.raises(PodkitError) as info:
        validate_name(name, None, "cgroup_parent", driver="systemd")
    msg = info.value.msg
    assert msg.startswith("cgroup_parent:") and "slice" in msg and name in msg, msg


def test_a_slice_is_accepted_by_the_systemd_validator():
    # The refusals above are not a validator that refuses everything.
    from ansible_collections.podkit.docker.plugins.module_utils._cgroups import validate_name
    assert validate_name("podkit-pod_foo.slice", None, "cgroup_parent", driver="systemd") == "podkit-pod_foo.slice"


# ---------------------------------------------------------------------------
# Names Docker (or Kubernetes) would reject


@pytest.mark.parametrize("name", ["bad name!", "-lead", "a/b", "x" * 64, "_under", "semi;colon", ""])
def test_pod_name_refused(run_module, docker_client, name):
    result = run_module("pod", expect_fail=True, **basic_pod(name))
    assert_refused(result, "name")
    if name.strip():
        assert name in result["msg"], result["msg"]
        assert host_state(docker_client, name) == dict(containers={}, cgroups=[], locks=[], slices=[])


@pytest.mark.parametrize("name", ["UPPER", "bad name", "under_score", "-lead", "trail-", "x" * 64, "sandbox"])
def test_container_name_refused_in_manifest(run_module, docker_client, pod_name, name):
    manifest = _manifest(pod_name)
    manifest["spec"]["containers"][0]["name"] = name
    result = run_module("pod", expect_fail=True, name=pod_name, sandbox_image=PAUSE_IMAGE, pull="never",
                        manifest=manifest)
    assert_refused(result, "containers[0].name", name)
    assert_nothing_of(docker_client, pod_name)


@pytest.mark.parametrize("name", ["UPPER", "bad name", "a/b"])
def test_container_name_refused_natively(run_module, docker_client, pod_name, name):
    containers = _members()
    containers[0]["name"] = name
    result = run_module("pod", expect_fail=True, **basic_pod(pod_name, containers=containers))
    assert_refused(result, "containers[0].name", name)
    assert_nothing_of(docker_client, pod_name)


def test_duplicate_container_name_refused(run_module, docker_client, pod_name):
    containers = _members() + _members()
    result = run_module("pod", expect_fail=True, **basic_pod(pod_name, containers=containers))
    assert_refused(result, "app")
    assert_nothing_of(docker_client, pod_name)


# ---------------------------------------------------------------------------
# Images, manifests, the daemon, the user


def test_member_image_absent_with_pull_never(run_module, docker_client, pod_name):
    image = "podkit/absent-%s:latest" % pod_name
    containers = _members()
    containers[0]["image"] = image
    result = run_module("pod", expect_fail=True, **basic_pod(pod_name, containers=containers))
    assert_refused(result, image, "never")
    assert_nothing_of(docker_client, pod_name)
    assert not docker_client.images.list(name="podkit/absent-%s" % pod_name)


def test_sandbox_image_absent_with_pull_never(run_module, docker_client, pod_name):
    image = "podkit/absent-pause-%s:latest" % pod_name
    result = run_module("pod", expect_fail=True, **basic_pod(pod_name, sandbox_image=image))
    assert_refused(result, image, "never")
    assert_nothing_of(docker_client, pod_name)


def test_pod_sandbox_image_absent_with_pull_never(run_module, docker_client, pod_name):
    image = "podkit/absent-pause-%s:latest" % pod_name
    result = run_module("pod_sandbox", expect_fail=True, pod=pod_name, image=image, pull="never")
    assert_refused(result, image, "never")
    assert_nothing_of(docker_client, pod_name)


@pytest.mark.parametrize("kind,api", [("Deployment", "apps/v1"), ("Service", "v1"), ("pod", "v1"), (None, "v1")])
def test_manifest_that_is_not_a_pod(run_module, docker_client, pod_name, kind, api):
    manifest = _manifest(pod_name)
    manifest["apiVersion"] = api
    if kind is None:
        del manifest["kind"]
    else:
        manifest["kind"] = kind
    result = run_module("pod", expect_fail=True, name=pod_name, sandbox_image=PAUSE_IMAGE, pull="never",
                        manifest=manifest)
    assert_refused(result, "kind", *([kind] if kind else []))
    assert_nothing_of(docker_client, pod_name)


def test_manifest_with_wrong_api_version(run_module, docker_client, pod_name):
    manifest = _manifest(pod_name)
    manifest["apiVersion"] = "v2"
    result = run_module("pod", expect_fail=True, name=pod_name, sandbox_image=PAUSE_IMAGE, pull="never",
                        manifest=manifest)
    assert_refused(result, "apiVersion", "v2")
    assert_nothing_of(docker_client, pod_name)


@pytest.mark.parametrize("text", ["just a string", "- a\n- list\n", "kind: Pod\n  bad: [indent", "42"])
def test_manifest_text_that_is_not_a_mapping(run_module, docker_client, pod_name, text):
    result = run_module("pod", expect_fail=True, name=pod_name, sandbox_image=PAUSE_IMAGE, pull="never",
                        manifest=text)
    assert_refused(result, "manifest")
    assert_nothing_of(docker_client, pod_name)


def test_unsupported_manifest_field(run_module, docker_client, pod_name):
    """A Kubernetes field podkit cannot honour (raw block devices of a PersistentVolume) is refused by
    its path, never dropped."""
    manifest = _manifest(pod_name)
    manifest["spec"]["containers"][0]["volumeDevices"] = [{"name": "data", "devicePath": "/dev/xvda"}]
    result = run_module("pod", expect_fail=True, name=pod_name, sandbox_image=PAUSE_IMAGE, pull="never",
                        manifest=manifest)
    assert_refused(result, "spec.containers[0].volumeDevices", "remove it")
    assert_nothing_of(docker_client, pod_name)


NO_DAEMON = "unix:///nonexistent.sock"


@pytest.mark.parametrize("module,args", [
    ("pod", "basic"),
    ("pod", "absent"),
    ("cgroup_parent", dict(name="/{pod}", memory="64Mi")),
    ("pod_sandbox", dict(pod="{pod}", image=PAUSE_IMAGE, pull="never")),
    ("pod_container", dict(pod="{pod}", name="app", image=BUSYBOX_IMAGE, pull="never")),
    ("pod_facts", dict(name=["{pod}"])),
], ids=lambda v: v if isinstance(v, str) else ",".join(sorted(v)))
def test_docker_daemon_not_running(run_module, docker_client, pod_name, module, args):
    if args == "basic":
        args = basic_pod(pod_name)
    elif args == "absent":
        args = dict(name=pod_name, state="absent")
    else:
        args = dict((k, v.format(pod=pod_name) if isinstance(v, str) else v) for k, v in args.items())
        if module == "pod_facts":
            args["name"] = [pod_name]
    args["docker_host"] = NO_DAEMON
    result = run_module(module, expect_fail=True, **args)
    assert_refused(result, "docker_host", "/nonexistent.sock")
    assert_nothing_of(docker_client, pod_name)


def test_user_without_access_to_the_docker_socket(docker_client, pod_name):
    """nobody, no groups: the socket is root:docker 0660."""
    result = run_as("pod", basic_pod(pod_name))
    assert_refused(result, "docker_host")
    assert "permission" in result["msg"].lower(), result["msg"]
    assert_nothing_of(docker_client, pod_name)


def _docker_gid():
    return os.stat("/var/run/docker.sock").st_gid


def test_user_who_cannot_write_cgroups_pod(docker_client, pod_name):
    """nobody in the socket's group: Docker answers, but /run/podkit and the cgroup tree are root's."""
    result = run_as("pod", basic_pod(pod_name), groups=[_docker_gid()])
    msg = assert_refused(result)
    assert "permission" in msg.lower() or "root" in msg.lower(), msg
    assert "cgroup" in msg.lower() or "/run/podkit" in msg, "msg does not name what was denied: %s" % msg
    assert_nothing_of(docker_client, pod_name)


def test_user_who_cannot_write_cgroups_but_may_take_the_lock(docker_client, pod_name):
    """As above, with the pod's lock file open to everyone, so the cgroup write is what is denied."""
    os.makedirs("/run/podkit", exist_ok=True)
    lock = "/run/podkit/%s.lock" % pod_name
    with open(lock, "a"):
        pass
    os.chmod(lock, 0o666)
    try:
        result = run_as("pod", basic_pod(pod_name), groups=[_docker_gid()])
        msg = assert_refused(result, "cgroup")
        assert "permission" in msg.lower() or "root" in msg.lower(), msg
        state = host_state(docker_client, pod_name)
        assert state == dict(containers={}, cgroups=[], locks=[lock], slices=[]), state
    finally:
        os.unlink(lock)


def test_user_who_cannot_write_cgroups_cgroup_parent(docker_client, pod_name):
    result = run_as("cgroup_parent", dict(name="/" + pod_name, memory="64Mi"), groups=[_docker_gid()])
    msg = assert_refused(result, pod_name)
    assert "permission" in msg.lower() or "root" in msg.lower(), msg
    assert_nothing_of(docker_client, pod_name)


def test_user_who_cannot_write_cgroups_absent_changes_nothing(run_module, docker_client, pod_name):
    """A pod that exists, removed by a user who may talk to Docker but not write cgroups or /run/podkit:
    the refusal names what was denied, and the pod is still whole afterwards (or the run removed only
    what it could and says what is left)."""
    run_module("pod", **basic_pod(pod_name))
    before = host_state(docker_client, pod_name)
    result = run_as("pod", dict(name=pod_name, state="absent"), groups=[_docker_gid()])
    msg = assert_refused(result)
    assert "permission" in msg.lower() or "root" in msg.lower(), msg
    assert host_state(docker_client, pod_name) == before


@pytest.mark.parametrize("name", ESCAPING + OUTSIDE + SLICES)
def test_pod_sandbox_cgroup_parent_refused(run_module, docker_client, pod_name, name):
    name = name.format(pod=pod_name)
    result = run_module("pod_sandbox", expect_fail=True, pod=pod_name, image=PAUSE_IMAGE, pull="never",
                        cgroup_parent=name)
    assert_refused(result, "cgroup_parent", name)
    assert_nothing_of(docker_client, pod_name)


@pytest.mark.parametrize("module,args", [
    ("pod_sandbox", dict(pod="bad name!", image=PAUSE_IMAGE, pull="never")),
    ("pod_container", dict(pod="bad name!", name="app", image=BUSYBOX_IMAGE, pull="never")),
    ("pod_container", dict(pod="{pod}", name="bad name!", image=BUSYBOX_IMAGE, pull="never")),
    ("pod_container", dict(pod="{pod}", name="a/b", image=BUSYBOX_IMAGE, pull="never")),
], ids=["sandbox-pod", "container-pod", "container-name", "container-slash"])
def test_names_refused_by_the_lower_modules(run_module, docker_client, pod_name, module, args):
    args = dict((k, v.format(pod=pod_name) if isinstance(v, str) else v) for k, v in args.items())
    bad = "bad name!" if "bad name!" in args.values() else "a/b"
    field = [k for k, v in args.items() if v == bad][0]
    if args["pod"] == pod_name:
        # A bad member name in a pod whose sandbox runs: the name is what is wrong, nothing else.
        run_module("pod_sandbox", pod=pod_name, image=PAUSE_IMAGE, pull="never")
    before = host_state(docker_client, pod_name)
    result = run_module(module, expect_fail=True, **args)
    assert_refused(result, field, bad)
    assert host_state(docker_client, pod_name) == before
    assert host_state(docker_client, "bad name") == dict(containers={}, cgroups=[], locks=[], slices=[])
