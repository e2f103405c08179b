"""Native sidecars (initContainers with restartPolicy: Always): planned in the init containers' order."""

import pytest

from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._reconcile import PodState, Seen, plan_pod
from ansible_collections.podkit.docker.plugins.module_utils._spec import pod_spec_from_manifest
from ansible_collections.podkit.docker.plugins.module_utils._wanted import want_pod

from unithost import HOST


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


def test_sidecar_probes_are_taken_unhashed_and_the_startup_probe_gates_what_follows():
    """Kubernetes allows startup, liveness and readiness probes on restartable init containers
    (validateInitContainers) and starts the next container once a sidecar's startup probe passed."""
    from ansible_collections.podkit.docker.plugins.module_utils._reconcile import Action, _is_member
    from ansible_collections.podkit.docker.plugins.module_utils._spec import running_containers
    plain = manifest()
    probed = manifest()
    probe = {"exec": {"command": ["cat", "/tmp/up"]}, "periodSeconds": 1}
    probed["spec"]["initContainers"][1].update(startupProbe=probe, livenessProbe=probe, readinessProbe=probe)
    spec = pod_spec_from_manifest(probed)
    assert sorted(spec.init_containers[1].probes) == ["livenessProbe", "readinessProbe", "startupProbe"]
    assert [c.name for c in running_containers(spec)] == ["proxy", "logs", "app"]
    wanted, before = want_pod(spec, HOST).by_key(), want_pod(pod_spec_from_manifest(plain), HOST).by_key()
    # Probes are not part of the configuration: adding them recreates nothing.
    assert wanted["proxy"].hashes() == before["proxy"].hashes()
    assert wanted["proxy"].startup is spec.init_containers[1].probes["startupProbe"] and before["proxy"].startup is None
    # A sidecar with a startup probe is created alone, so the applier waits on it before what follows.
    assert not _is_member(Action("create", "proxy", wanted=wanted["proxy"]))
    assert _is_member(Action("create", "logs", wanted=wanted["logs"]))
    assert _is_member(Action("create", "proxy", wanted=before["proxy"]))


def test_an_init_container_that_runs_to_completion_takes_no_probes():
    bad = manifest()
    bad["spec"]["initContainers"][0]["startupProbe"] = {"exec": {"command": ["true"]}}
    with pytest.raises(PodkitError, match=r"spec.initContainers\[0\]: init containers take no probes .*a native sidecar"):
        pod_spec_from_manifest(bad)
