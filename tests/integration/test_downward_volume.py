"""downwardAPI volume items: metadata.uid and resourceFieldRef rendered as the kubelet renders them.

Read from the files through /proc/<pid>/root and compared with what the kernel and the engine say:
the uid with the container's own env (fieldRef metadata.uid, /proc/<pid>/environ) and the sandbox's
Docker ID; a limit not set with the host's CPU count; a changed sandbox gives a new uid in the file.
"""

import os

from helpers import BUSYBOX_IMAGE, PAUSE_IMAGE, proc_environ

COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]


def manifest(pod, hostname="one"):
    items = [
        {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}},
        {"path": "cpu_limit", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu"}},
        {"path": "cpu_limit_m", "resourceFieldRef": {"containerName": "side", "resource": "limits.cpu",
                                                     "divisor": "1m"}},
        {"path": "cpu_request", "resourceFieldRef": {"containerName": "app", "resource": "requests.cpu",
                                                     "divisor": "1m"}},
        {"path": "mem_limit", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory",
                                                   "divisor": "1Mi"}},
        {"path": "mem_request", "resourceFieldRef": {"containerName": "app", "resource": "requests.memory"}},
        {"path": "side_mem", "resourceFieldRef": {"containerName": "side", "resource": "limits.memory",
                                                  "divisor": "1Mi"}},
    ]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod}, "spec": {
        "hostname": hostname,
        "volumes": [{"name": "podinfo", "downwardAPI": {"items": items}}],
        "containers": [
            {"name": "app", "image": BUSYBOX_IMAGE, "command": COMMAND,
             "env": [{"name": "MY_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}}],
             "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m", "memory": "32Mi"}},
             "volumeMounts": [{"name": "podinfo", "mountPath": "/etc/podinfo"}]},
            {"name": "side", "image": BUSYBOX_IMAGE, "command": COMMAND,
             "resources": {"limits": {"cpu": "1500m", "memory": "16Mi"}}},
        ]}}


def pid_of(client, name):
    return client.containers.get(name).attrs["State"]["Pid"]


def podinfo(pid, name):
    with open("/proc/%d/root/etc/podinfo/%s" % (pid, name)) as handle:
        return handle.read()


def uid_of(sandbox_id):
    return "-".join((sandbox_id[0:8], sandbox_id[8:12], sandbox_id[12:16], sandbox_id[16:20], sandbox_id[20:32]))


def test_uid_and_resources_in_a_downward_volume(run_module, docker_client, pod_name):
    args = dict(sandbox_image=PAUSE_IMAGE, pull="never")
    run_module("pod", manifest=manifest(pod_name), **args)
    assert run_module("pod", manifest=manifest(pod_name), **args)["changed"] is False
    pid = pid_of(docker_client, pod_name + "_app")
    sandbox = docker_client.containers.get(pod_name + "_sandbox")
    uid = podinfo(pid, "uid")
    assert uid == uid_of(sandbox.id) == proc_environ(pid)["MY_UID"], (uid, proc_environ(pid).get("MY_UID"))
    # limits.cpu not set on app: the host's allocatable CPUs (default divisor 1, rounded up).
    assert podinfo(pid, "cpu_limit") == str(os.cpu_count())
    assert podinfo(pid, "cpu_limit_m") == "1500"
    assert podinfo(pid, "cpu_request") == "250"
    assert podinfo(pid, "mem_limit") == "64"
    assert podinfo(pid, "mem_request") == str(32 * 1024 * 1024)
    assert podinfo(pid, "side_mem") == "16"

    # A new sandbox is a new pod: a new uid in the file, and the file's consumer sees it.
    result = run_module("pod", manifest=manifest(pod_name, hostname="two"), **args)
    assert "write files of volume podinfo: sandbox recreated" in result["actions"], result["actions"]
    sandbox = docker_client.containers.get(pod_name + "_sandbox")
    pid = pid_of(docker_client, pod_name + "_app")
    assert podinfo(pid, "uid") == uid_of(sandbox.id) != uid
    assert run_module("pod", manifest=manifest(pod_name, hostname="two"), **args)["changed"] is False


def test_bad_downward_items_name_the_field(run_module, pod_name):
    doc = manifest(pod_name)
    items = doc["spec"]["volumes"][0]["downwardAPI"]["items"]
    items[1]["resourceFieldRef"].pop("containerName")
    result = run_module("pod", expect_fail=True, manifest=doc, sandbox_image=PAUSE_IMAGE, pull="never")
    assert "spec.volumes[0].downwardAPI.items[1].resourceFieldRef.containerName is required" in result["msg"], \
        result["msg"]
    items[1]["resourceFieldRef"].update(containerName="app", resource="limits.ephemeral-storage")
    result = run_module("pod", expect_fail=True, manifest=doc, sandbox_image=PAUSE_IMAGE, pull="never")
    assert "spec.volumes[0].downwardAPI.items[1].resourceFieldRef.resource: 'limits.ephemeral-storage' is not" \
        " supported" in result["msg"], result["msg"]
    items[1]["resourceFieldRef"].update(containerName="nobody", resource="limits.cpu")
    result = run_module("pod", expect_fail=True, manifest=doc, sandbox_image=PAUSE_IMAGE, pull="never")
    assert "spec.volumes[0].downwardAPI.items[1].resourceFieldRef.containerName: no container 'nobody'" \
        in result["msg"], result["msg"]
