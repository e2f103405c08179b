"""resourceFieldRef and metadata.uid, in env and in downwardAPI volumes: one rendering (pure)."""

import pytest

from ansible_collections.podkit.docker.plugins.module_utils._cgroups import HostCgroups
from ansible_collections.podkit.docker.plugins.module_utils._configdata import ConfigSet
from ansible_collections.podkit.docker.plugins.module_utils._create import runtime_context, runtime_value
from ansible_collections.podkit.docker.plugins.module_utils._envsource import resolve_resource, resource_ref
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._spec import pod_spec_from_manifest
from ansible_collections.podkit.docker.plugins.module_utils._volumefiles import (
    FileVolume, fill_runtime, has_runtime, volume_files)
from ansible_collections.podkit.docker.plugins.module_utils._wanted import want_pod

AMOUNTS = {"app": {"limits.cpu": None, "limits.memory": 64 << 20, "requests.cpu": 250, "requests.memory": None},
           "side": {"limits.cpu": 1500, "limits.memory": None, "requests.cpu": 1500, "requests.memory": None}}


@pytest.mark.parametrize("ref, expected", [
    (dict(resource="limits.memory", divisor="1Mi"), "64"),
    (dict(resource="limits.memory"), str(64 << 20)),
    (dict(resource="requests.cpu", divisor="1m"), "250"),
    (dict(resource="requests.cpu"), "1"),                      # 250m in cores, rounded up
    (dict(resource="requests.memory"), "0"),                   # a request not set
    (dict(resource="limits.cpu", containerName="side"), "2"),
    (dict(resource="limits.cpu", divisor="1m", containerName="side"), "1500"),
    (dict(resource="limits.cpu"), "resource:-:limits.cpu:"),   # not set: the host's capacity, filled in later
])
def test_resource_refs_render_as_the_kubelet(ref, expected):
    assert resolve_resource(resource_ref(ref, "r", "app"), AMOUNTS, "r") == expected


def test_a_limit_not_set_is_the_hosts_capacity():
    context = runtime_context({"Id": "ab" * 32}, {"NCPU": 4, "MemTotal": 8 << 30})
    assert runtime_value("resource:-:limits.cpu:", context) == "4"
    assert runtime_value("resource:-:limits.memory:1048576", context) == str(8 << 10)
    assert runtime_value("metadata.uid", context) == "abababab-abab-abab-abab-abababababab"


def test_volume_items_need_a_container_name_and_a_known_resource():
    with pytest.raises(PodkitError) as info:
        resource_ref(dict(resource="limits.cpu"), "v.items[0].resourceFieldRef", None)
    assert info.value.msg == "v.items[0].resourceFieldRef.containerName is required (a string)."
    with pytest.raises(PodkitError) as info:
        resource_ref(dict(resource="limits.ephemeral-storage", containerName="app"), "r", None)
    assert "r.resource: 'limits.ephemeral-storage' is not supported" in info.value.msg


def test_downward_volume_uid_and_resources_fill_in_at_write():
    volume = FileVolume("downwardAPI", dict(items=[
        dict(path="uid", fieldRef=dict(fieldPath="metadata.uid")),
        dict(path="mem", resourceFieldRef=dict(containerName="app", resource="limits.memory", divisor="1Mi")),
        dict(path="cpu", resourceFieldRef=dict(containerName="app", resource="limits.cpu"))]))
    meta = dict(name="p", namespace="default", labels={}, annotations={}, resources=AMOUNTS)
    files = volume_files(volume, ConfigSet(), meta, "v")
    assert files["mem"] == (b"64", 0o644) and has_runtime(files)
    context = runtime_context({"Id": "cd" * 32}, {"NCPU": 2, "MemTotal": 1 << 30})
    filled = fill_runtime(files, lambda source: runtime_value(source, context))
    assert filled == {"uid": (b"cdcdcdcd-cdcd-cdcd-cdcd-cdcdcdcdcdcd", 0o644), "mem": (b"64", 0o644),
                      "cpu": (b"2", 0o644)}
    assert not has_runtime(filled)


def test_env_and_volume_share_the_rendering():
    doc = dict(apiVersion="v1", kind="Pod", metadata=dict(name="p"), spec=dict(
        volumes=[dict(name="info", downwardAPI=dict(items=[dict(path="mem", resourceFieldRef=dict(
            containerName="app", resource="limits.memory", divisor="1Mi"))]))],
        containers=[dict(name="app", image="busybox", resources=dict(limits=dict(memory="64Mi")),
                         env=[dict(name="MEM", valueFrom=dict(resourceFieldRef=dict(resource="limits.memory",
                                                                                    divisor="1Mi")))],
                         volumeMounts=[dict(name="info", mountPath="/info")])]))
    wanted = want_pod(pod_spec_from_manifest(doc), HostCgroups(version=1, driver="cgroupfs"))
    assert wanted.members[0].config["env"]["MEM"] == "64" == wanted.files["info"].files["mem"][0].decode()
