"""Input is checked before the engine is reached (issue 23): with no Docker engine answering, a bad
parameter or manifest is refused naming its field, and only good input reports the engine.

"No engine answers" is a ``docker_host`` socket path nobody listens on (a directory of the test's
own that holds no socket), so the shared dockerd keeps running for everyone else. The same runs are
checked against the real engine afterwards: nothing of the pod was created there, and no pod
cgroup was made. tests/integration/reliability/test_disruptive.py repeats the ``pod`` case with
dockerd really stopped.
"""

import json
import subprocess
import sys
import uuid

import pytest

from helpers import BUSYBOX_IMAGE, COLLECTIONS, PAUSE_IMAGE, ansible_env, cgroup_dirs

NO_ENGINE = "no Docker daemon answers"


@pytest.fixture
def dead_socket(tmp_path):
    """A unix:// docker_host where nothing listens (the socket file does not even exist)."""
    return "unix://%s/none.sock" % tmp_path


def pod_manifest(pod, **container):
    entry = dict(name="app", image=BUSYBOX_IMAGE, command=["sleep", "60"])
    entry.update(container)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod}, "spec": {"containers": [entry]}}


def misspelled(pod):
    """A Pod whose container says ``imagee``: the typo the issue names."""
    manifest = pod_manifest(pod)
    manifest["spec"]["containers"][0]["imagee"] = manifest["spec"]["containers"][0].pop("image")
    return manifest


def assert_nothing_made(docker_client, pod):
    """The real engine and the cgroup filesystem have nothing of ``pod`` (so nothing reached either)."""
    assert docker_client.containers.list(all=True, filters={"label": "io.podkit.pod=%s" % pod}) == []
    assert docker_client.containers.list(all=True, filters={"name": "^/%s_" % pod}) == []
    assert cgroup_dirs(pod) == []


def assert_names_field_not_engine(result, field):
    msg = result["msg"]
    assert field in msg, msg
    assert NO_ENGINE not in msg and "docker_host" not in msg, msg


@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
def test_pod_with_a_misspelled_field_names_it_with_no_engine(run_module, docker_client, pod_name, dead_socket, check):
    result = run_module("pod", check=check, expect_fail=True, docker_host=dead_socket, sandbox_image=PAUSE_IMAGE,
                        pull="never", manifest=misspelled(pod_name))
    assert_names_field_not_engine(result, "spec.containers[0].imagee is not supported")
    assert result["changed"] is False and result["actions"] == []
    assert_nothing_made(docker_client, pod_name)


@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
def test_pod_with_good_input_and_no_engine_reports_the_engine(run_module, docker_client, pod_name, dead_socket, check):
    result = run_module("pod", check=check, expect_fail=True, docker_host=dead_socket, sandbox_image=PAUSE_IMAGE,
                        pull="never", manifest=pod_manifest(pod_name))
    assert result["msg"].startswith("docker_host: " + NO_ENGINE), result["msg"]
    assert dead_socket in result["msg"]
    assert_nothing_made(docker_client, pod_name)


# Input only a whole pod shows to be wrong: quantities, references between its documents and parts,
# a cgroup parent that is no cgroup on any host. (field named in the error, how the pod gets it wrong)
POD_CASES = {
    "quantity": ("spec.containers[0].resources.limits.memory", dict(resources=dict(limits=dict(memory="12Q")))),
    "configmap-ref": ("settings", dict(env=[dict(name="MODE", valueFrom=dict(
        configMapKeyRef=dict(name="settings", key="mode")))])),
    "mount-without-volume": ("spec.containers[0].volumeMounts[0].name", dict(volumeMounts=[
        dict(name="data", mountPath="/data")])),
}


@pytest.mark.parametrize("case", sorted(POD_CASES))
def test_pod_refusals_of_the_manifest_come_before_the_engine(run_module, docker_client, pod_name, dead_socket, case):
    field, container = POD_CASES[case]
    result = run_module("pod", expect_fail=True, docker_host=dead_socket, manifest=pod_manifest(pod_name, **container))
    assert_names_field_not_engine(result, field)
    assert_nothing_made(docker_client, pod_name)


def test_a_configmap_volume_naming_a_missing_key_is_refused_before_the_engine(
        run_module, docker_client, pod_name, dead_socket):
    # A reference want_pod resolves (file volumes), not the parser: checked before the engine too.
    manifest = pod_manifest(pod_name, volumeMounts=[dict(name="conf", mountPath="/etc/app")])
    manifest["spec"]["volumes"] = [dict(name="conf", configMap=dict(name="settings", items=[
        dict(key="absent-key", path="app.conf")]))]
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"mode": "x"}}
    result = run_module("pod", expect_fail=True, docker_host=dead_socket, manifest=[manifest, config_map])
    assert_names_field_not_engine(result, "absent-key")
    assert "spec.volumes[0].configMap" in result["msg"]
    assert_nothing_made(docker_client, pod_name)


def test_a_cgroup_parent_that_is_no_cgroup_on_any_host_is_refused_before_the_engine(run_module, docker_client, pod_name,
                                                                                    dead_socket):
    result = run_module("pod", expect_fail=True, docker_host=dead_socket, cgroup_parent="/sys/fs/cgroup/memory/x",
                        manifest=pod_manifest(pod_name))
    assert_names_field_not_engine(result, "cgroup_parent")
    assert_nothing_made(docker_client, pod_name)


@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
def test_pods_with_a_misspelled_field_names_it_with_no_engine(run_module, docker_client, pod_name, dead_socket, check):
    result = run_module("pods", check=check, expect_fail=True, docker_host=dead_socket, sandbox_image=PAUSE_IMAGE,
                        pull="never", pods=[dict(manifest=misspelled(pod_name))])
    assert_names_field_not_engine(result, "pod %s (pods[0]): spec.containers[0].imagee is not supported" % pod_name)
    assert result["msg"].startswith("1 of 1 pods failed:"), result["msg"]
    assert result["pods"][pod_name]["failed"] and result["changed"] is False
    assert_nothing_made(docker_client, pod_name)


def test_pods_names_the_refused_entry_first_and_the_engine_for_the_others(run_module, docker_client, pod_names,
                                                                          dead_socket):
    bad, good = pod_names(), pod_names()
    result = run_module("pods", expect_fail=True, docker_host=dead_socket, sandbox_image=PAUSE_IMAGE, pull="never",
                        pods=[dict(manifest=misspelled(bad)), dict(manifest=pod_manifest(good))])
    msg = result["msg"]
    assert "pod %s (pods[0]): spec.containers[0].imagee is not supported" % bad in msg
    assert "pod %s (pods[1]): docker_host: %s" % (good, NO_ENGINE) in msg
    assert NO_ENGINE not in result["pods"][bad]["msg"] and NO_ENGINE in result["pods"][good]["msg"]
    for pod in (bad, good):
        assert_nothing_made(docker_client, pod)


def test_pods_with_good_input_and_no_engine_reports_the_engine(run_module, docker_client, pod_name, dead_socket):
    result = run_module("pods", expect_fail=True, docker_host=dead_socket, pods=[dict(manifest=pod_manifest(pod_name))])
    assert result["msg"].startswith("docker_host: " + NO_ENGINE), result["msg"]
    assert_nothing_made(docker_client, pod_name)


def test_pods_with_the_real_engine_still_converges_the_good_entries(run_module, docker_client, pod_names):
    """The refusal before the engine keeps the pods module's rule: one bad pod does not stop the others."""
    bad, good = pod_names(), pod_names()
    result = run_module("pods", expect_fail=True, sandbox_image=PAUSE_IMAGE, pull="never",
                        pods=[dict(manifest=misspelled(bad)), dict(manifest=pod_manifest(good))])
    assert result["msg"].startswith("1 of 2 pods failed (the others were converged): pod %s (pods[0]): " % bad)
    assert result["pods"][good]["changed"]
    member = docker_client.containers.get("%s_app" % good).attrs
    sandbox = docker_client.containers.get("%s_sandbox" % good).attrs
    assert member["State"]["Running"] and member["HostConfig"]["NetworkMode"] == "container:" + sandbox["Id"]
    assert_nothing_made(docker_client, bad)


# The other modules: one bad option each, refused with no engine. (module, field named, options)
OTHER_MODULES = {
    "pod_sandbox": ("ports[0]", dict(ports=["80:http"])),
    "pod_sandbox-cgroup": ("cgroup_parent", dict(cgroup_parent="/proc/x")),
    "pod_container": ("memory", dict(name="app", image=BUSYBOX_IMAGE, memory="12Q")),
    "pod_container-reserved": ("'sandbox' is reserved", dict(name="sandbox", image=BUSYBOX_IMAGE)),
    "cgroup_parent": ("cpus", dict(cpus="2k")),
    "cgroup_parent-driver": ("is not a slice", dict(driver="systemd", name="podkit-pod_x")),
    "pod_facts": ("query", dict(query="pods[")),
}


@pytest.mark.parametrize("case", sorted(OTHER_MODULES))
def test_every_module_refuses_its_bad_options_before_the_engine(
        run_module, docker_client, pod_name, dead_socket, case):
    module = case.split("-")[0]
    field, options = OTHER_MODULES[case]
    options = dict(options)
    if module in ("pod_sandbox", "pod_container"):
        options["pod"] = pod_name
    elif module == "cgroup_parent" and "name" not in options:
        options["name"] = "/" + pod_name
    result = run_module(module, expect_fail=True, docker_host=dead_socket, **options)
    assert_names_field_not_engine(result, field)
    assert_nothing_made(docker_client, pod_name)


def test_the_other_modules_with_good_options_report_the_engine(run_module, pod_name, dead_socket):
    for module, options in (("pod_sandbox", dict(pod=pod_name, image=PAUSE_IMAGE)),
                            ("pod_container", dict(pod=pod_name, name="app", image=BUSYBOX_IMAGE)),
                            ("cgroup_parent", dict(name="/" + pod_name)),
                            ("pod_facts", dict(query="*")),
                            ("pod_facts", dict(name=["x-%s" % uuid.uuid4().hex[:6]]))):
        result = run_module(module, expect_fail=True, docker_host=dead_socket, **options)
        assert NO_ENGINE in result["msg"], (module, result["msg"])


def test_a_host_without_the_docker_sdk_still_lints_manifests(tmp_path, pod_name, dead_socket):
    """The SDK is required after the input is checked: a misspelled field is named on a host that has
    neither an engine nor the Docker SDK; good input then reports the missing library."""
    blocked = tmp_path / "blocked" / "docker"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError(\"No module named 'docker' (hidden by the test)\")\n")

    def run(manifest):
        payload = {"ANSIBLE_MODULE_ARGS": dict(manifest=manifest, docker_host=dead_socket, _ansible_check_mode=True)}
        env = ansible_env(PYTHONPATH="%s:%s" % (blocked.parent, COLLECTIONS))
        proc = subprocess.run([sys.executable, "-m", "ansible_collections.podkit.docker.plugins.modules.pod"],
                              input=json.dumps(payload), capture_output=True, text=True, env=env, timeout=120,
                              check=False)
        return json.loads(proc.stdout)

    result = run(misspelled(pod_name))
    assert result["failed"]
    assert_names_field_not_engine(result, "spec.containers[0].imagee is not supported")
    result = run(pod_manifest(pod_name))
    assert result["failed"] and "Failed to import the required Python library" in result["msg"], result["msg"]
