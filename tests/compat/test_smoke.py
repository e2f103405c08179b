"""The smoke each supported ansible-core runs (issue 23): real plays on localhost by the
ansible-playbook beside the Python running pytest (scripts/test.sh runs this file with each
version's venv, build/core-<version>, and with the project's .venv for 2.19).

One play, run twice: a ``pods`` call with a Pod and the ConfigMap it uses, ``pod_facts`` with
``as_manifest``, then the ``pods`` role given that manifest back. The first run makes the pod and
the role changes nothing; the second run changes nothing at all. What the pod is, is read from
Docker and /proc: the members in the sandbox's namespaces, the ConfigMap's value in the member's
environment and in the file it mounts, the memory limit in its cgroup.
"""

import pathlib
import re

import pytest

from helpers import BUSYBOX_IMAGE, LABEL_POD, PAUSE_IMAGE, ns_inode, play, proc_cgroup

MEMORY_ROOT = pathlib.Path("/sys/fs/cgroup/memory")


def documents(pod):
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": pod + "-settings"},
              "data": {"mode": "smoke-%s" % pod}}
    member = {"name": "app", "image": BUSYBOX_IMAGE, "command": ["sleep", "3650d"],
              "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": pod + "-settings", "key": "mode"}}}],
              "volumeMounts": [{"name": "settings", "mountPath": "/etc/app"}],
              "resources": {"limits": {"memory": "48Mi"}}}
    sidecar = {"name": "sidecar", "image": BUSYBOX_IMAGE, "command": ["sleep", "3650d"]}
    pod_doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod},
               "spec": {"containers": [member, sidecar],
                        "volumes": [{"name": "settings", "configMap": {"name": pod + "-settings"}}]}}
    return [pod_doc, config]


def tasks(pod):
    exported = "smoke_facts.ansible_facts.podkit_pods[%r]" % pod
    return [
        {"name": "Converge the pod and its ConfigMap", "podkit.docker.pods": {
            "pods": [{"manifest": documents(pod)}], "sandbox_image": PAUSE_IMAGE, "pull": "never"}},
        {"name": "Read the pod back as Kubernetes documents", "podkit.docker.pod_facts": {
            "name": [pod], "as_manifest": True}, "register": "smoke_facts"},
        {"name": "Apply what was read back with the pods role", "ansible.builtin.include_role": {
            "name": "podkit.docker.pods"},
         "vars": {"podkit_pods_definitions": ["{{ %s.manifest_options | combine({'manifest': %s.manifest}) }}"
                                              % (exported, exported)],
                  "podkit_pods_sandbox_image": PAUSE_IMAGE, "podkit_pods_pull": "never"}},
    ]


def task_status(out, title):
    """ok / changed / failed of the task titled ``title`` in ansible-playbook's output."""
    match = re.search(r"TASK \[[^\]]*%s\][^\n]*\n(?:[^\n]*\n)*?(ok|changed|failed|fatal): \[localhost\]"
                      % re.escape(title), out)
    assert match, "task %r not in the output:\n%s" % (title, out)
    return match.group(1)


def pod_ids(client, pod):
    return dict((c.name, c.id) for c in client.containers.list(all=True, filters={"label": "%s=%s" % (LABEL_POD, pod)}))


@pytest.mark.no_roundtrip("the smoke applies its own export back, through the pods role")
def test_pods_facts_as_manifest_and_the_pods_role_then_a_second_run_changes_nothing(tmp_path, docker_client, pod_name):
    out, recap = play(tmp_path, [], {}, name="first", tasks=tasks(pod_name))
    assert task_status(out, "Converge the pod and its ConfigMap") == "changed"
    # The role applies the export back: the module (one pods call) changes nothing.
    assert task_status(out, "Deploy every listed pod, and prune the podkit pods no longer listed") == "ok", out

    sandbox = docker_client.containers.get(pod_name + "_sandbox").attrs
    assert sandbox["State"]["Running"]
    sandbox_pid = sandbox["State"]["Pid"]
    for member in ("app", "sidecar"):
        attrs = docker_client.containers.get("%s_%s" % (pod_name, member)).attrs
        assert attrs["State"]["Running"], member
        pid = attrs["State"]["Pid"]
        for ns in ("net", "ipc"):
            assert ns_inode(pid, ns) == ns_inode(sandbox_pid, ns), (member, ns)
        assert ns_inode(pid, "mnt") != ns_inode(sandbox_pid, "mnt")
    app = docker_client.containers.get(pod_name + "_app").attrs["State"]["Pid"]
    environ = pathlib.Path("/proc/%d/environ" % app).read_bytes().split(b"\0")
    assert ("MODE=smoke-%s" % pod_name).encode() in environ
    assert pathlib.Path("/proc/%d/root/etc/app/mode" % app).read_text() == "smoke-" + pod_name
    if MEMORY_ROOT.is_dir():
        limit = MEMORY_ROOT / proc_cgroup(app)["memory"].lstrip("/") / "memory.limit_in_bytes"
        assert int(limit.read_text()) == 48 * 1024 * 1024
    before = pod_ids(docker_client, pod_name)
    assert len(before) == 3, before

    out, recap = play(tmp_path, [], {}, name="second", tasks=tasks(pod_name))
    assert recap["changed"] == 0, out
    assert pod_ids(docker_client, pod_name) == before
