"""Input checked before the engine (issue 23): the host-free checks refuse what the engine-time code
would refuse on any host, accept what it accepts, and leave what it builds unchanged."""

import pytest

from ansible_collections.podkit.docker.plugins.module_utils._cgroups import HostCgroups, check_parent_form
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._pods import prepare_pods
from ansible_collections.podkit.docker.plugins.module_utils._reconcile import parse_pod, prepare_container
from ansible_collections.podkit.docker.plugins.module_utils._spec import pod_spec_from_manifest
from ansible_collections.podkit.docker.plugins.module_utils._wanted import check_pod, want_pod

HOSTS = (HostCgroups(version=1, driver="cgroupfs"),
         HostCgroups(version=2, driver="systemd", mountpoints={"unified": "/sys/fs/cgroup"}))


def pod(volumes=None, mounts=None, resources=None, extra_docs=()):
    container = dict(name="app", image="busybox", volumeMounts=mounts or [])
    spec = dict(containers=[container], volumes=volumes or [])
    if resources:
        spec["resources"] = resources
    return [dict(apiVersion="v1", kind="Pod", metadata=dict(name="web"), spec=spec)] + list(extra_docs)


CONFIG = dict(apiVersion="v1", kind="ConfigMap", metadata=dict(name="settings"), data={"mode": "fast"})
CONF_VOLUME = [dict(name="conf", configMap=dict(name="settings", items=[dict(key="mode", path="mode")]))]
CONF_MOUNT = [dict(name="conf", mountPath="/etc/app")]

# Refused by want_pod whatever the host: (case, manifest documents, cgroup_limits, the error names)
REFUSED = [
    ("missing-key", pod([dict(name="conf", configMap=dict(name="settings", items=[dict(key="nope", path="x")]))],
                        CONF_MOUNT, extra_docs=[CONFIG]), "derived", "nope"),
    ("missing-configmap", pod(CONF_VOLUME, CONF_MOUNT), "derived", "settings"),
    ("unmanaged-with-pod-resources", pod(resources=dict(limits=dict(memory="64Mi"))), "unmanaged", "cgroup_limits"),
]


@pytest.mark.parametrize("case,documents,limits,named", REFUSED, ids=[r[0] for r in REFUSED])
def test_check_pod_refuses_what_want_pod_refuses_on_every_host(case, documents, limits, named):
    spec = pod_spec_from_manifest(documents)
    with pytest.raises(PodkitError) as before:
        check_pod(spec, cgroup_limits=limits)
    assert named in before.value.msg
    for host in HOSTS:
        with pytest.raises(PodkitError) as after:
            want_pod(spec, host, cgroup_limits=limits)
        assert after.value.msg == before.value.msg


def test_check_pod_accepts_a_good_pod_and_want_pod_builds_what_it_built():
    spec = pod_spec_from_manifest(pod(CONF_VOLUME, CONF_MOUNT, extra_docs=[CONFIG]))
    check_pod(spec)
    for host in HOSTS:
        wanted = want_pod(spec, host)
        # The derived limits are placed by want_pod itself, on the host's cgroup version.
        assert wanted.cgroup.parent == wanted.sandbox.config["cgroup_parent"] == wanted.members[0].config["cgroup_parent"]
        assert wanted.cgroup.limits is not None
        assert want_pod(spec, host, cgroup_limits="unmanaged").cgroup.limits is None


@pytest.mark.parametrize("name", ["/pod-foo", "podkit/pod-foo", "podkit-pod_foo.slice"])
def test_a_cgroup_parent_valid_on_some_host_passes_before_the_driver_is_known(name):
    check_parent_form(name, "cgroup_parent")


@pytest.mark.parametrize("name,named", [("/sys/fs/cgroup/memory/x", "filesystem path"), ("/a/../b", "'..'"),
                                        ("-x-.slice", "not a valid slice"), ("a b", "whitespace"), ("", "empty")])
def test_a_cgroup_parent_valid_on_no_host_is_refused_before_the_driver_is_known(name, named):
    with pytest.raises(PodkitError) as error:
        check_parent_form(name, "cgroup_parent")
    assert error.value.msg.startswith("cgroup_parent: ") and named in error.value.msg


def test_parse_pod_checks_the_name_of_a_pod_without_a_spec():
    assert parse_pod(dict(name="web", state="absent")) is None
    with pytest.raises(PodkitError, match="name: '../x' is not a valid pod name"):
        parse_pod(dict(name="../x", state="stopped"))


def test_prepare_pods_keeps_each_refused_entry_with_its_error_and_parses_the_others():
    good = pod()[0]
    bad = pod()[0]
    bad = dict(bad, metadata=dict(name="bad"), spec=dict(containers=[dict(name="app", imagee="busybox")]))
    entries = prepare_pods(dict(pods=[dict(manifest=good), dict(manifest=bad)], docker_host="unix:///x", timeout=5,
                                state="present", validate="warn"))["entries"]
    assert [e.name for e in entries] == ["web", "bad"]
    assert entries[0].refused is None and entries[0].spec.name == "web"
    assert entries[1].spec is None and "spec.containers[0].imagee" in entries[1].refused.msg


@pytest.mark.parametrize("options,named", [(dict(parallel=0), "parallel"), (dict(prune_pattern="("), "prune_pattern"),
                                           (dict(prune_selector={"a=b": "c"}), "prune_selector"),
                                           (dict(nodeport_addresses=["localhost"]), "nodeport_addresses[0]"),
                                           (dict(nodeport_addresses=["127.0.0.1", "127.0.0.1"]), "nodeport_addresses")])
def test_prepare_pods_refuses_the_calls_own_options(options, named):
    with pytest.raises(PodkitError) as error:
        prepare_pods(dict(pods=[], **options))
    assert error.value.msg.startswith(named)


def test_prepare_container_refuses_a_reserved_name_and_a_missing_image():
    base = dict(pod="web", name="app", image="busybox", state="present")
    assert prepare_container(base)["parsed"][0].name == "app"
    with pytest.raises(PodkitError, match="reserved"):
        prepare_container(dict(base, name="sandbox"))
    with pytest.raises(PodkitError, match="image is required"):
        prepare_container(dict(base, image=None))
    # Removing a container needs no image.
    assert prepare_container(dict(base, image=None, state="absent"))["parsed"][0].name == "app"
