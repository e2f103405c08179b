"""securityContext.fsGroup owns the pod's volumes as the kubelet makes it, read back through the kernel.

Each volume is stat'ed through /proc/<pid>/root of the container that mounts it: the group, setgid on
directories, the group's bits (read-write on emptyDir and claims, read on configMap/secret/downwardAPI
files), a file the container (uid 1000, not root) creates inheriting the group; a hostPath volume is left
as it was. fsGroupChangePolicy: Always re-owns a volume whenever a container mounting it starts,
OnRootMismatch only when the volume's root is not owned.
"""

import os
import stat

import pytest

from helpers import BUSYBOX_IMAGE, converge_manifest, remove_pod_leftovers

GROUP = 2000
WRITE = ("for d in /scratch /mem /claim; do touch $d/made-by-app; done; "
         "trap 'exit 0' TERM; sleep 3600 & wait")


def manifest(pod, claim, host_dir, policy=None, mode="one"):
    context = {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": GROUP}
    if policy:
        context["fsGroupChangePolicy"] = policy
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "conf"}, "data": {"a": "1", "b": "2"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"}, "stringData": {"token": "fs-group-token"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod}, "spec": {
            "securityContext": context,
            "volumes": [
                {"name": "scratch", "emptyDir": {}},
                {"name": "mem", "emptyDir": {"medium": "Memory"}},
                {"name": "claim", "persistentVolumeClaim": {"claimName": claim}},
                {"name": "conf", "configMap": {"name": "conf", "defaultMode": 0o400, "items": [
                    {"key": "a", "path": "a"}, {"key": "b", "path": "sub/b", "mode": 0o600}]}},
                {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400}},
                {"name": "down", "downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
                {"name": "host", "hostPath": {"path": str(host_dir)}},
            ],
            "containers": [{"name": "app", "image": BUSYBOX_IMAGE, "command": ["sh", "-c", WRITE],
                            "env": [{"name": "MODE", "value": mode}],
                            "volumeMounts": [{"name": n, "mountPath": "/" + n} for n in
                                             ("scratch", "mem", "claim", "conf", "sec", "down", "host")]}],
        }},
    ]


@pytest.fixture
def claim(docker_client, pod_name):
    name = pod_name + "-data"
    yield name
    remove_pod_leftovers(docker_client, pod_name)     # the claim is in use until the pod is gone
    for volume in docker_client.volumes.list(filters={"name": name}):
        if volume.name == name:
            volume.remove(force=True)


def app_pid(client, pod):
    return client.containers.get(pod + "_app").attrs["State"]["Pid"]


def lstat_in(pid, path):
    return os.lstat("/proc/%d/root%s" % (pid, path))


def wait_for(pid, path):
    import time
    for _attempt in range(50):
        if os.path.exists("/proc/%d/root%s" % (pid, path)):
            return
        time.sleep(0.1)
    raise AssertionError("%s never appeared in the container" % path)


def status_groups(pid):
    with open("/proc/%d/status" % pid) as handle:
        return next(line.split()[1:] for line in handle if line.startswith("Groups:"))


def mode_and_gid(pid, path):
    info = lstat_in(pid, path)
    return stat.S_IMODE(info.st_mode), info.st_gid


def test_fs_group_owns_every_volume_but_host_path(run_module, docker_client, pod_name, claim, tmp_path):
    docs = manifest(pod_name, claim, tmp_path)
    check = converge_manifest(run_module, docs, check=True)
    assert "set group 2000 on volume %s_scratch: new volume" % pod_name in check["actions"], check["actions"]
    assert "set group 2000 on volume %s: new volume" % claim in check["actions"], check["actions"]
    first = converge_manifest(run_module, docs)
    assert first["actions"] == check["actions"]
    # The ownership goes before the container that mounts the volume starts.
    assert first["actions"].index("set group 2000 on volume %s: new volume" % claim) < \
        first["actions"].index("create app")
    assert converge_manifest(run_module, docs)["changed"] is False

    pid = app_pid(docker_client, pod_name)
    assert str(GROUP) in status_groups(pid)
    # emptyDir on disk and the claim: group-owned, setgid, group-writable (the Docker volume's 0755 + 2070).
    for path in ("/scratch", "/claim"):
        assert mode_and_gid(pid, path) == (0o2775, GROUP), (path, oct(mode_and_gid(pid, path)[0]))
    # The Memory emptyDir is a tmpfs mounted with the group: 2777 as the kubelet leaves it.
    assert mode_and_gid(pid, "/mem") == (0o2777, GROUP)
    # The container (uid 1000, group 3000) could write in each, and what it made has the volume's group.
    for path in ("/scratch", "/mem", "/claim"):
        wait_for(pid, path + "/made-by-app")
        info = lstat_in(pid, path + "/made-by-app")
        assert (info.st_uid, info.st_gid) == (1000, GROUP), (path, info)
    # Read-only volumes: the files' modes (defaultMode, items[].mode) plus the group's read bit.
    assert mode_and_gid(pid, "/conf") == (0o2755, GROUP)
    assert mode_and_gid(pid, "/conf/a") == (0o440, GROUP)
    assert mode_and_gid(pid, "/conf/sub") == (0o2755, GROUP)
    assert mode_and_gid(pid, "/conf/sub/b") == (0o640, GROUP)
    assert mode_and_gid(pid, "/sec/token") == (0o440, GROUP)
    assert mode_and_gid(pid, "/down/name") == (0o644, GROUP)
    # Readable by the container's user through the group alone (the files are root's).
    assert docker_client.containers.get(pod_name + "_app").exec_run(["cat", "/sec/token", "/conf/a"]).output \
        == b"fs-group-token1"
    # hostPath is never changed.
    assert mode_and_gid(pid, "/host") == (stat.S_IMODE(os.stat(tmp_path).st_mode), 0)


def test_change_policy_always_and_on_root_mismatch(run_module, docker_client, pod_name, claim, tmp_path):
    converge_manifest(run_module, manifest(pod_name, claim, tmp_path))
    pid = app_pid(docker_client, pod_name)
    wait_for(pid, "/scratch/made-by-app")
    os.chown("/proc/%d/root/scratch/made-by-app" % pid, -1, 0)
    # Always: the recreated consumer has the volume walked again.
    result = converge_manifest(run_module, manifest(pod_name, claim, tmp_path, mode="two"))
    assert "set group 2000 on volume %s_scratch: fsGroupChangePolicy Always, app starts" % pod_name \
        in result["actions"], result["actions"]
    pid = app_pid(docker_client, pod_name)
    assert lstat_in(pid, "/scratch/made-by-app").st_gid == GROUP

    # OnRootMismatch: the root is owned, so a recreated consumer leaves the files as they are...
    os.chown("/proc/%d/root/scratch/made-by-app" % pid, -1, 0)
    result = converge_manifest(run_module, manifest(pod_name, claim, tmp_path, policy="OnRootMismatch", mode="three"))
    assert not [a for a in result["actions"] if a.startswith("set group")], result["actions"]
    pid = app_pid(docker_client, pod_name)
    assert lstat_in(pid, "/scratch/made-by-app").st_gid == 0
    # ...until the root is not owned: then the whole volume is.
    os.chown("/proc/%d/root/scratch" % pid, -1, 0)
    result = converge_manifest(run_module, manifest(pod_name, claim, tmp_path, policy="OnRootMismatch", mode="three"))
    assert result["actions"] == ["set group 2000 on volume %s_scratch: not owned by the group" % pod_name]
    assert mode_and_gid(pid, "/scratch") == (0o2775, GROUP)
    assert lstat_in(pid, "/scratch/made-by-app").st_gid == GROUP
    assert converge_manifest(run_module, manifest(pod_name, claim, tmp_path, policy="OnRootMismatch",
                                                  mode="three"))["changed"] is False


def test_bad_change_policy_is_named(run_module, pod_name, claim, tmp_path):
    result = converge_manifest(run_module, manifest(pod_name, claim, tmp_path, policy="Sometimes"), expect_fail=True)
    assert "spec.securityContext.fsGroupChangePolicy: 'Sometimes' is not one of Always, OnRootMismatch" \
        in result["msg"], result["msg"]
