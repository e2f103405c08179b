"""Upgrades are no-ops: pods converged by the previous release are left alone by this tree.

The previous release is main at PREVIOUS (before the reconcile code was split into one file a
concept), taken from this repository's own history with ``git archive`` and run as Ansible runs a
module, from its own ansible_collections tree. Then this tree runs the same pods: nothing may
change, and Docker must still show the very containers the old code started.
"""

import io
import pathlib
import subprocess
import tarfile

import pytest

from helpers import BUSYBOX_IMAGE, PAUSE_IMAGE, TOP, ModuleRunner, free_port

PREVIOUS = "adddfb5"
COMMAND = ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]


@pytest.fixture(scope="module")
def previous_runner(tmp_path_factory):
    """A ModuleRunner for the collection as it was at PREVIOUS. A missing commit fails, never skips."""
    proc = subprocess.run(["git", "-C", str(TOP), "archive", "--format=tar", PREVIOUS, "plugins", "meta",
                           "galaxy.yml"], capture_output=True, check=False)
    if proc.returncode != 0:
        pytest.fail("git archive %s failed (%s): the upgrade test needs the repository's history; run it in a "
                    "full clone." % (PREVIOUS, proc.stderr.decode(errors="replace").strip()))
    root = tmp_path_factory.mktemp("previous")
    target = root / "ansible_collections" / "podkit" / "docker"
    target.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as archive:
        archive.extractall(target)
    assert (target / "plugins" / "module_utils" / "_reconcile.py").is_file()
    return ModuleRunner(collections=root)


def native_pod(pod, host_dir):
    return dict(
        name=pod, sandbox_image=PAUSE_IMAGE, pull="never", hostname="upgrade",
        ports=["127.0.0.1:%d:8080" % free_port()], host_aliases={"db.local": "127.0.0.2"},
        volumes=[dict(name="data", emptyDir={}), dict(name="conf", hostPath=dict(path=str(host_dir)))],
        init_containers=[dict(name="setup", image=BUSYBOX_IMAGE, command=["sh", "-c", "echo ok > /data/state"],
                              volumeMounts=[dict(name="data", mountPath="/data")])],
        containers=[
            dict(name="app", image=BUSYBOX_IMAGE, command=COMMAND, workingDir="/data",
                 env=[dict(name="MODE", value="upgrade"), dict(name="TOKEN", value="upgrade-secret", secret=True)],
                 ports=[dict(containerPort=8443, hostPort=free_port(), hostIP="127.0.0.1")],
                 volumeMounts=[dict(name="data", mountPath="/data"),
                               dict(name="conf", mountPath="/etc/conf", readOnly=True)],
                 resources=dict(limits=dict(memory="64Mi", cpu="500m"), requests=dict(memory="32Mi", cpu="250m"))),
            dict(name="sidecar", image=BUSYBOX_IMAGE, command=COMMAND, env={"A": "1"},
                 resources=dict(limits=dict(memory="32Mi"))),
        ],
    )


def manifest_pod(pod):
    return dict(
        sandbox_image=PAUSE_IMAGE, pull="never",
        manifest=dict(apiVersion="v1", kind="Pod", metadata=dict(name=pod, labels={"tier": "web"}), spec=dict(
            shareProcessNamespace=True,
            initContainers=[dict(name="init", image=BUSYBOX_IMAGE, command=["true"])],
            containers=[dict(name="web", image=BUSYBOX_IMAGE, command=COMMAND,
                             ports=[dict(containerPort=80, hostPort=free_port(), hostIP="127.0.0.1")],
                             volumeMounts=[dict(name="tmp", mountPath="/scratch")],
                             resources=dict(limits=dict(memory="48Mi", cpu="1"),
                                            requests=dict(memory="48Mi", cpu="1")))],
            volumes=[dict(name="tmp", emptyDir=dict(medium="Memory", sizeLimit="8Mi"))])))


def snapshot(client, pod):
    """{container name: (id, StartedAt)} from Docker, for every container of the pod."""
    result = {}
    for container in client.containers.list(all=True, filters={"label": "io.podkit.pod=" + pod}):
        result[container.name] = (container.id, container.attrs["State"]["StartedAt"])
    return result


def test_pods_converged_by_the_previous_release_are_a_no_op(docker_client, previous_runner, run_module, pod_names,
                                                            tmp_path):
    assert previous_runner.collections != run_module.collections
    native, manifest, single = pod_names(), pod_names(), pod_names()
    host_dir = tmp_path / "conf"
    host_dir.mkdir()
    runs = [("pod", native_pod(native, host_dir)), ("pod", manifest_pod(manifest)),
            ("pod_sandbox", dict(pod=single, image=PAUSE_IMAGE, pull="never", ports=["127.0.0.1:%d:80" % free_port()],
                                 share_pid=True)),
            ("pod_container", dict(pod=single, name="one", image=BUSYBOX_IMAGE, pull="never", command=COMMAND,
                                   env={"A": "1"}, secret_env={"PW": "upgrade-hidden"}, memory="32Mi", cpus="0.25",
                                   volumes=["%s:/conf:ro" % host_dir, "cache:/cache"]))]
    for module, args in runs:
        assert previous_runner(module, **args)["changed"] is True
    before = dict((pod, snapshot(docker_client, pod)) for pod in (native, manifest, single))
    assert len(before[native]) == 4 and len(before[manifest]) == 3 and len(before[single]) == 2
    for module, args in runs:
        check = run_module(module, check=True, diff=True, **args)
        assert (check["changed"], check["actions"]) == (False, []), (module, check["actions"])
        result = run_module(module, **args)
        assert (result["changed"], result["actions"]) == (False, []), (module, result["actions"])
    after = dict((pod, snapshot(docker_client, pod)) for pod in (native, manifest, single))
    assert after == before


def test_the_previous_release_is_really_the_old_code(previous_runner):
    """The comparison above means something only if the two trees differ where the code moved."""
    old = pathlib.Path(previous_runner.collections) / "ansible_collections" / "podkit" / "docker"
    new = TOP
    old_files = sorted(p.name for p in (old / "plugins" / "module_utils").glob("_*.py"))
    new_files = sorted(p.name for p in (new / "plugins" / "module_utils").glob("_*.py"))
    assert "_labels.py" not in old_files and "_labels.py" in new_files
