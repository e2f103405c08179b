"""pod_sandbox + pod_container: the article's Docker pod, checked through the kernel's eyes.

Every test builds its own pod (unique name from the ``pod_name`` fixture) from the local
pause and busybox images, never pulling, and asserts on /proc/<pid>/ns/*, /proc/<pid>/cgroup
and the cgroup files, not only on what the modules return.
"""

import pathlib

from helpers import BUSYBOX_IMAGE, PAUSE_IMAGE, container_pid, exec_out, ns_inode, proc_cgroup, remove_pod_leftovers

MEMORY_ROOT = pathlib.Path("/sys/fs/cgroup/memory")
HTTPD = ["sh", "-c", "mkdir -p /www && echo hello-from-app > /www/index.html && exec httpd -f -p 80 -h /www"]
SLEEP = ["sleep", "3650d"]


def sandbox(run_module, pod, check=False, expect_fail=False, **extra):
    return run_module("pod_sandbox", check=check, expect_fail=expect_fail, pod=pod, image=PAUSE_IMAGE, pull="never",
                      **extra)


def member(run_module, pod, name, command, memory, check=False, expect_fail=False, **extra):
    return run_module("pod_container", check=check, expect_fail=expect_fail, pod=pod, name=name, image=BUSYBOX_IMAGE,
                      pull="never", command=command, memory=memory, **extra)


def article_pod(run_module, pod, check=False, sidecar_env=None):
    results = [sandbox(run_module, pod, check=check),
               member(run_module, pod, "app", HTTPD, "256Mi", check=check),
               member(run_module, pod, "sidecar", SLEEP, "128Mi", check=check, env=sidecar_env or {})]
    return results


def ids(client, pod):
    return dict((n, client.containers.get("%s_%s" % (pod, n)).id) for n in ("sandbox", "app", "sidecar"))


def test_article_pod_shares_net_and_ipc_and_lives_under_the_pod_cgroup(docker_client, run_module, pod_name):
    sb, app, sidecar = article_pod(run_module, pod_name)
    assert sb["changed"] and app["changed"] and sidecar["changed"]
    assert app["actions"] == ["create app"]
    sandbox_pid = container_pid(docker_client, pod_name + "_sandbox")
    for name in ("app", "sidecar"):
        pid = container_pid(docker_client, "%s_%s" % (pod_name, name))
        for ns in ("net", "ipc"):
            assert ns_inode(pid, ns) == ns_inode(sandbox_pid, ns), (name, ns)
        for ns in ("mnt", "pid"):
            assert ns_inode(pid, ns) != ns_inode(sandbox_pid, ns), (name, ns)
    assert sorted(app["container"]["shared_with_sandbox"]) == ["ipc", "net"]

    # One network namespace: the sidecar reaches the app on localhost.
    assert "hello-from-app" in exec_out(docker_client, pod_name + "_sidecar", ["wget", "-qO-", "http://localhost:80/"])
    # One IPC namespace and its /dev/shm: what the app writes, the sidecar reads.
    exec_out(docker_client, pod_name + "_app", ["sh", "-c", "echo shared-memory > /dev/shm/podkit-test"])
    assert exec_out(docker_client, pod_name + "_sidecar", ["cat", "/dev/shm/podkit-test"]).strip() == "shared-memory"

    parent = "/podkit/pod-%s" % pod_name
    for name, limit in (("app", 268435456), ("sidecar", 134217728)):
        container = docker_client.containers.get("%s_%s" % (pod_name, name))
        cgroups = proc_cgroup(container.attrs["State"]["Pid"])
        assert cgroups["memory"] == "%s/%s" % (parent, container.id)
        assert cgroups["cpu"].startswith(parent + "/")
        limit_file = MEMORY_ROOT / cgroups["memory"].lstrip("/") / "memory.limit_in_bytes"
        assert int(limit_file.read_text()) == limit
    sandbox_cgroups = proc_cgroup(sandbox_pid)
    assert sandbox_cgroups["memory"].startswith(parent + "/")


def test_shared_pid_namespace_shows_pause_as_pid_1(docker_client, run_module, pod_name):
    sandbox(run_module, pod_name)
    result = member(run_module, pod_name, "m", SLEEP, "64Mi", share=["net", "ipc", "pid"])
    assert sorted(result["container"]["shared_with_sandbox"]) == ["ipc", "net", "pid"]
    pid = container_pid(docker_client, pod_name + "_m")
    assert ns_inode(pid, "pid") == ns_inode(container_pid(docker_client, pod_name + "_sandbox"), "pid")
    assert exec_out(docker_client, pod_name + "_m", ["cat", "/proc/1/cmdline"]).rstrip("\0") == "/pause"

    # A sandbox made with share_pid makes pid the members' default.
    other = pod_name + "x"
    try:
        sandbox(run_module, other, share_pid=True)
        result = member(run_module, other, "m", SLEEP, "64Mi")
        assert exec_out(docker_client, other + "_m", ["cat", "/proc/1/cmdline"]).rstrip("\0") == "/pause"
    finally:
        remove_pod_leftovers(docker_client, other)     # its containers, and its lock file and cgroups with them


def test_second_run_is_unchanged_and_env_change_recreates_only_the_sidecar(docker_client, run_module, pod_name):
    article_pod(run_module, pod_name)
    before = ids(docker_client, pod_name)
    for check in (True, False):
        results = article_pod(run_module, pod_name, check=check)
        assert [r["changed"] for r in results] == [False, False, False]
        assert [r["actions"] for r in results] == [[], [], []]
    assert ids(docker_client, pod_name) == before

    # Check mode reports the change without making it.
    check = member(run_module, pod_name, "sidecar", SLEEP, "128Mi", check=True, env={"MODE": "debug"})
    assert check["changed"] and check["actions"] == ["recreate sidecar: config changed (env)"]
    assert ids(docker_client, pod_name) == before

    real = member(run_module, pod_name, "sidecar", SLEEP, "128Mi", env={"MODE": "debug"}, diff=True)
    assert real["actions"] == check["actions"]
    after = ids(docker_client, pod_name)
    assert after["sidecar"] != before["sidecar"]
    assert after["app"] == before["app"] and after["sandbox"] == before["sandbox"]
    assert "MODE=debug" in docker_client.containers.get(pod_name + "_sidecar").attrs["Config"]["Env"]
    assert real["diff"]["after"]["sidecar"]["config"]["env"] == {"MODE": "debug"}
    assert not member(run_module, pod_name, "sidecar", SLEEP, "128Mi", env={"MODE": "debug"})["changed"]


def test_secret_env_is_masked(docker_client, run_module, pod_name):
    sandbox(run_module, pod_name)
    result = member(run_module, pod_name, "app", SLEEP, "64Mi", env={"PLAIN": "a"}, secret_env={"TOKEN": "s3cr3t-value"},
                    diff=True)
    assert "s3cr3t-value" not in repr(result)
    assert result["diff"]["after"]["app"]["config"]["env"]["TOKEN"] == "********"
    assert "TOKEN=s3cr3t-value" in docker_client.containers.get(pod_name + "_app").attrs["Config"]["Env"]


def _members_rejoined(docker_client, pod, results):
    sandbox_pid = container_pid(docker_client, pod + "_sandbox")
    for result in results:
        assert result["changed"], result
    for name in ("app", "sidecar"):
        pid = container_pid(docker_client, "%s_%s" % (pod, name))
        assert ns_inode(pid, "net") == ns_inode(sandbox_pid, "net")
        assert ns_inode(pid, "ipc") == ns_inode(sandbox_pid, "ipc")
    assert "hello-from-app" in exec_out(docker_client, pod + "_sidecar", ["wget", "-qO-", "http://localhost:80/"])


def test_restarted_sandbox_makes_members_stale_and_they_are_recreated(docker_client, run_module, pod_name):
    article_pod(run_module, pod_name)
    before = ids(docker_client, pod_name)
    docker_client.containers.get(pod_name + "_sandbox").restart(timeout=1)
    sandbox_pid = container_pid(docker_client, pod_name + "_sandbox")
    app_pid = container_pid(docker_client, pod_name + "_app")
    assert ns_inode(app_pid, "net") != ns_inode(sandbox_pid, "net")   # moby#24935: left behind

    checked = article_pod(run_module, pod_name, check=True)
    assert [r["actions"] for r in checked] == [
        [], ["recreate app: stale network namespace"], ["recreate sidecar: stale network namespace"]]
    assert ids(docker_client, pod_name) == before
    assert ns_inode(container_pid(docker_client, pod_name + "_app"), "net") != ns_inode(sandbox_pid, "net")

    results = article_pod(run_module, pod_name)
    assert [r["actions"] for r in results] == [r["actions"] for r in checked]
    _members_rejoined(docker_client, pod_name, results[1:])
    assert ids(docker_client, pod_name)["sandbox"] == before["sandbox"]


def test_removed_sandbox_is_recreated_and_members_follow(docker_client, run_module, pod_name):
    article_pod(run_module, pod_name)
    before = ids(docker_client, pod_name)
    docker_client.containers.get(pod_name + "_sandbox").remove(force=True)

    checked = sandbox(run_module, pod_name, check=True)
    assert checked["changed"] and checked["actions"] == ["create sandbox"]
    assert not docker_client.containers.list(all=True, filters={"name": "^/%s_sandbox$" % pod_name})

    results = article_pod(run_module, pod_name)
    assert [r["actions"] for r in results] == [
        ["create sandbox"], ["recreate app: joined another sandbox"], ["recreate sidecar: joined another sandbox"]]
    after = ids(docker_client, pod_name)
    assert all(after[n] != before[n] for n in after)
    _members_rejoined(docker_client, pod_name, results)
    labels = docker_client.containers.get(pod_name + "_app").labels
    assert labels["io.podkit.sandbox-id"] == after["sandbox"]
    assert labels["io.podkit.pod"] == pod_name and labels["io.podkit.role"] == "member"


def test_stopped_sandbox_is_started_and_members_recreated(docker_client, run_module, pod_name):
    article_pod(run_module, pod_name)
    docker_client.containers.get(pod_name + "_sandbox").stop(timeout=1)
    checked = sandbox(run_module, pod_name, check=True)
    assert checked["actions"] == ["start sandbox: not running"]
    assert docker_client.containers.get(pod_name + "_sandbox").status == "exited"
    results = article_pod(run_module, pod_name)
    assert results[0]["actions"] == ["start sandbox: not running"]
    _members_rejoined(docker_client, pod_name, results)


def test_foreign_container_with_a_member_name_is_never_touched(docker_client, run_module, pod_name):
    sandbox(run_module, pod_name)
    foreign = docker_client.containers.run(BUSYBOX_IMAGE, ["sleep", "3650d"], name=pod_name + "_app", detach=True)
    try:
        for check in (True, False):
            result = member(run_module, pod_name, "app", HTTPD, "256Mi", check=check, expect_fail=True)
            assert pod_name + "_app" in result["msg"] and "io.podkit.pod" in result["msg"]
        foreign.reload()
        assert foreign.status == "running" and "io.podkit.pod" not in foreign.labels
        assert docker_client.containers.get(pod_name + "_app").id == foreign.id
        # The same for a foreign sandbox name.
        other = docker_client.containers.run(BUSYBOX_IMAGE, ["sleep", "3650d"], name=pod_name + "y_sandbox",
                                             detach=True)
        try:
            result = sandbox(run_module, pod_name + "y", expect_fail=True)
            assert pod_name + "y_sandbox" in result["msg"]
            other.reload()
            assert other.status == "running"
        finally:
            other.remove(force=True)
    finally:
        foreign.remove(force=True)


def test_member_needs_a_sandbox_and_rejects_sandbox_options(docker_client, run_module, pod_name):
    result = member(run_module, pod_name, "app", SLEEP, "64Mi", expect_fail=True)
    assert "sandbox" in result["msg"] and "pod_sandbox" in result["msg"]
    # A check-mode play: the pod_sandbox task only said it would create the sandbox.
    assert sandbox(run_module, pod_name, check=True)["actions"] == ["create sandbox"]
    result = member(run_module, pod_name, "app", SLEEP, "64Mi", check=True)
    assert result["actions"] == ["create app: sandbox missing"]
    assert not docker_client.containers.list(all=True, filters={"name": "^/%s_" % pod_name})
    result = member(run_module, pod_name, "app", SLEEP, "64Mi", expect_fail=True, ports=["8080:80"])
    assert "ports" in result["msg"]
    result = member(run_module, pod_name, "app", SLEEP, "1Mi", expect_fail=True)
    assert "memory" in result["msg"]


def test_absent_removes_member_then_sandbox(docker_client, run_module, pod_name):
    article_pod(run_module, pod_name)
    result = run_module("pod_container", pod=pod_name, name="sidecar", state="absent")
    assert result["actions"] == ["remove sidecar"]
    assert not run_module("pod_container", pod=pod_name, name="sidecar", state="absent")["changed"]
    result = run_module("pod_sandbox", pod=pod_name, state="absent")
    assert result["actions"] == ["remove sandbox"]
    names = [c.name for c in docker_client.containers.list(all=True, filters={"label": "io.podkit.pod=" + pod_name})]
    assert names == [pod_name + "_app"]


def test_pod_volumes_and_host_paths(docker_client, run_module, pod_name, tmp_path):
    (tmp_path / "config.txt").write_text("from-the-host\n")
    sandbox(run_module, pod_name)
    first = member(run_module, pod_name, "app", SLEEP, "64Mi", volumes=["shared:/shared", "%s:/config:ro" % tmp_path])
    assert first["actions"] == ["create volume %s_shared: emptyDir shared" % pod_name, "create app"]
    member(run_module, pod_name, "sidecar", SLEEP, "64Mi", volumes=["shared:/shared"])
    exec_out(docker_client, pod_name + "_app", ["sh", "-c", "echo via-volume > /shared/file"])
    assert exec_out(docker_client, pod_name + "_sidecar", ["cat", "/shared/file"]).strip() == "via-volume"
    assert exec_out(docker_client, pod_name + "_app", ["cat", "/config/config.txt"]).strip() == "from-the-host"
    code, _output = docker_client.containers.get(pod_name + "_app").exec_run(["sh", "-c", "echo x > /config/new"])
    assert code != 0    # read-only bind
    volume = docker_client.volumes.get(pod_name + "_shared")
    assert volume.attrs["Labels"]["io.podkit.pod"] == pod_name
    again = member(run_module, pod_name, "app", SLEEP, "64Mi", volumes=["shared:/shared", "%s:/config:ro" % tmp_path])
    assert not again["changed"]
    bad = member(run_module, pod_name, "app", SLEEP, "64Mi", volumes=["relative"], expect_fail=True)
    assert "volumes[0]" in bad["msg"]
