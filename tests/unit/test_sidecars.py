"""Native sidecars (initContainers with restartPolicy: Always): planned in the init containers' order."""

import pytest

from ansible_collections.podkit.docker.plugins.module_utils._cgroups import HostCgroups
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._reconcile import PodState, Seen, plan_pod
from ansible_collections.podkit.docker.plugins.module_utils._spec import pod_spec_from_manifest
from ansible_collections.podkit.docker.plugins.module_utils._wanted import want_pod

HOST = HostCgroups(version=1, driver="cgroupfs")


def manifest(policy="Always"):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "side"}, "spec": {
        "initContainers": [
            {"name": "setup", "image": "busybox", "command": ["true"]},
            {"name": "proxy", "image": "busybox", "restartPolicy": policy, "command": ["sleep", "1d"]},
            {"name": "migrate", "image": "busybox", "command": ["true"]},
            {"name": "logs", "image": "busybox", "restartPolicy": policy, "command": ["sleep", "1d"]}],
        "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "1d"]}]}}


def test_sidecars_start_in_order_before_the_next_init_container():
    wanted = want_pod(pod_spec_from_manifest(manifest()), HOST)
    state = PodState(pod="side", images={"busybox": "sha256:b", "registry.k8s.io/pause:3.10": "sha256:p"})
    lines = [line for line in plan_pod(wanted, state, "present").lines() if not line.startswith(("create cgroup",))]
    assert lines == ["create sandbox", "run init setup: not run yet", "create proxy", "run init migrate: after setup",
                     "create logs", "create app"]
    proxy = wanted.by_key()["proxy"]
    assert proxy.config["restart_policy"] == "Always" and proxy.labels["io.podkit.sidecar"] == "1"
    assert "sidecar" not in proxy.config          # order lives in a label, outside the hash


def test_sidecars_stop_after_members_in_reverse_order():
    def seen(key, sidecar=None):
        labels = {"io.podkit.container": key}
        if sidecar is not None:
            labels["io.podkit.sidecar"] = str(sidecar)
        return Seen({"Id": key, "Name": "/side_" + key, "Config": {"Labels": labels}, "State": {"Running": True}})
    state = PodState(pod="side", containers={"app": seen("app"), "proxy": seen("proxy", 1), "logs": seen("logs", 3),
                                             "zeta": seen("zeta")})
    assert plan_pod(None, state, "stopped").lines() == ["stop app", "stop zeta", "stop logs", "stop proxy"]


def test_only_always_is_a_sidecar():
    with pytest.raises(PodkitError, match=r"spec.initContainers\[1\].restartPolicy: 'OnFailure'"):
        pod_spec_from_manifest(manifest("OnFailure"))
