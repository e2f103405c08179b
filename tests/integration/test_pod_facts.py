"""pod_facts against the real engine and kernel: every figure checked against /proc, cgroupfs and lsns."""

import json
import os
import pathlib
import subprocess

import pytest

from helpers import BUSYBOX_IMAGE, PAUSE_IMAGE, ansible_env, container_pid, ns_inode, proc_cgroup

CGROUP_ROOT = pathlib.Path("/sys/fs/cgroup")
V1_UNLIMITED = 1 << 62
NS_TYPES = ("mnt", "uts", "ipc", "pid", "net", "cgroup", "user", "time")


# ---------------------------------------------------------------------------
# What the test reads itself


def kernel_namespaces(pid):
    """{type: inode} from /proc/<pid>/ns, as lsns reads it."""
    return dict((ns, ns_inode(pid, ns)) for ns in os.listdir("/proc/%d/ns" % pid) if ns in NS_TYPES)


def kernel_cgroup_paths(pid):
    """/proc/<pid>/cgroup with the v2 line under 'unified', the name the facts use."""
    return dict(("unified" if key == "" else key, path) for key, path in proc_cgroup(pid).items())


def lsns(pid):
    """{type: inode} of ``pid`` according to util-linux's lsns -J."""
    out = subprocess.run(["lsns", "-J", "-p", str(pid), "-o", "NS,TYPE"], capture_output=True, text=True,
                         check=True).stdout
    return dict((entry["type"], int(entry["ns"])) for entry in json.loads(out)["namespaces"])


def lsns_shared(member_pid, sandbox_pid):
    """Types lsns shows in one namespace for both processes, leaving out the host's own."""
    member, sandbox, host = lsns(member_pid), lsns(sandbox_pid), lsns(os.getpid())
    return sorted(t for t in member if member[t] == sandbox.get(t) and member[t] != host.get(t))


def cgroup_file(controller, cgroup_path, filename):
    text = (CGROUP_ROOT / controller / cgroup_path.lstrip("/") / filename).read_text().strip()
    return None if text == "max" else int(text)


def kernel_limits(cgroup_path):
    """The v1 limits of a cgroup read from its files; None where unlimited (as the facts say)."""
    memory = cgroup_file("memory", cgroup_path, "memory.limit_in_bytes")
    quota = cgroup_file("cpu", cgroup_path, "cpu.cfs_quota_us")
    return dict(memory_bytes=None if memory >= V1_UNLIMITED else memory,
                cpu_quota_us=None if quota < 0 else quota,
                cpu_period_us=cgroup_file("cpu", cgroup_path, "cpu.cfs_period_us"),
                cpu_shares=cgroup_file("cpu", cgroup_path, "cpu.shares"),
                pids_max=cgroup_file("pids", cgroup_path, "pids.max"))


def assert_matches_kernel(entry, client, name):
    """An entry of the facts (sandbox or container) agrees with Docker and the kernel."""
    pid = container_pid(client, name)
    assert pid > 0
    assert entry["pid"] == pid
    assert entry["status"] == "running"
    assert entry["id"] == client.containers.get(name).id
    assert entry["namespaces"] == kernel_namespaces(pid)
    assert entry["cgroup_paths"] == kernel_cgroup_paths(pid)
    # One path for memory, cpu and pids with the cgroupfs driver.
    assert entry["limits"] == kernel_limits(proc_cgroup(pid)["memory"])
    # The processes are the cgroup's (systemd-cgls's view), the main one first.
    procs = (CGROUP_ROOT / "pids" / proc_cgroup(pid)["pids"].lstrip("/") / "cgroup.procs").read_text().split()
    assert sorted(p["pid"] for p in entry["processes"]) == sorted(int(p) for p in procs)
    assert entry["processes"][0]["pid"] == pid
    assert entry["usage"]["memory_bytes"] > 0


# ---------------------------------------------------------------------------
# Building pods


def make_podkit_pod(run_module, pod, members=("app", "sidecar"), share_pid=False):
    """A pod made by the pod module: 64Mi and 500m CPU limits per member, so Guaranteed.

    Returns the module's result; its cgroup parent is the default /podkit/pod-<pod>.
    """
    containers = [dict(name=name, image=BUSYBOX_IMAGE, command=["sleep", "3600"],
                       resources=dict(limits=dict(memory="64Mi", cpu="500m")))
                  for name in members]
    return run_module("pod", name=pod, sandbox_image=PAUSE_IMAGE, pull="never", containers=containers,
                      share_process_namespace=share_pid)


def parent_of(pod):
    return "/podkit/pod-%s" % pod


def docker_cli(*args):
    return subprocess.run(("docker",) + args, capture_output=True, text=True, check=True).stdout.strip()


def make_hand_made_pod(u):
    """The article's pod, with the plain docker CLI: a sandbox and two members in /<u>."""
    docker_cli("run", "-d", "--name", "%s_sandbox" % u, "--cgroup-parent", "/" + u, "--ipc", "shareable",
               PAUSE_IMAGE)
    for name in ("app", "sidecar"):
        docker_cli("run", "-d", "--name", "%s_%s" % (u, name), "--cgroup-parent", "/" + u,
                   "--network", "container:%s_sandbox" % u, "--ipc", "container:%s_sandbox" % u,
                   BUSYBOX_IMAGE, "sleep", "3600")


def snapshot(client, prefix, parent):
    """What pod_facts must never change: the containers' identity and state, the cgroup limits."""
    containers = sorted((c.name, c.id, c.attrs["State"]["Pid"], c.attrs["State"]["StartedAt"], c.status)
                        for c in client.containers.list(all=True, filters={"name": prefix}))
    return containers, kernel_limits(parent)


# ---------------------------------------------------------------------------
# Tests


def test_podkit_pod_facts_equal_what_the_kernel_says(docker_client, run_module, pod_name):
    made = make_podkit_pod(run_module, pod_name)
    parent = parent_of(pod_name)
    before = snapshot(docker_client, pod_name, parent)

    result = run_module("pod_facts", name=[pod_name])

    assert result["changed"] is False
    host = result["ansible_facts"]["podkit_host"]
    info = docker_client.info()
    # No podkit-guard ever ran with the tests' record directory (build/podkit-state).
    assert host.pop("guard") == dict(running=False, installed=False, version=None, pid=None, last_sync=None)
    assert host == dict(docker_version=info["ServerVersion"], cgroup_version=int(info["CgroupVersion"]),
                        cgroup_driver=info["CgroupDriver"], kernel=os.uname().release)
    pods = result["ansible_facts"]["podkit_pods"]
    assert list(pods) == [pod_name]
    pod = pods[pod_name]
    assert pod["managed"] is True
    # Every member has memory and CPU limits and no smaller request.
    assert pod["qos_class"] == "Guaranteed"

    sandbox_pid = container_pid(docker_client, pod_name + "_sandbox")
    assert pod["sandbox"]["name"] == pod_name + "_sandbox"
    assert_matches_kernel(pod["sandbox"], docker_client, pod_name + "_sandbox")

    assert sorted(pod["containers"]) == ["app", "sidecar"]
    for name, entry in pod["containers"].items():
        docker_name = "%s_%s" % (pod_name, name)
        assert entry["name"] == docker_name and entry["role"] == "member"
        assert entry["image"] == BUSYBOX_IMAGE
        assert_matches_kernel(entry, docker_client, docker_name)
        pid = entry["pid"]
        # Sharing agrees with lsns, and is what the pod was built with.
        assert sorted(entry["shared_with_sandbox"]) == lsns_shared(pid, sandbox_pid) == ["ipc", "net"]
        assert entry["shared_with_sandbox"] == ["net", "ipc"]
        assert entry["namespaces"]["net"] == ns_inode(sandbox_pid, "net")
        assert entry["namespaces"]["pid"] != ns_inode(sandbox_pid, "pid")
        # The member limits Docker set are in the container's own cgroup files.
        assert entry["limits"]["memory_bytes"] == 64 << 20
        assert entry["limits"]["cpu_quota_us"] == 50000
        assert entry["limits"]["cpu_shares"] == 512
        assert proc_cgroup(pid)["memory"] == "%s/%s" % (parent, entry["id"])

    cgroup = pod["cgroup"]
    assert cgroup["name"] == cgroup["docker_cgroup_parent"] == parent
    assert (cgroup["driver"], cgroup["version"]) == ("cgroupfs", 1)
    # Every hierarchy the sandbox is in has the parent directory, named as the facts name it.
    mounts = {"name=systemd": "systemd"}
    expected = dict((key, os.path.dirname(str(CGROUP_ROOT / mounts.get(key, key) / path.lstrip("/"))))
                    for key, path in kernel_cgroup_paths(sandbox_pid).items())
    assert cgroup["paths"] == expected
    assert cgroup["paths"]["memory"] == str(CGROUP_ROOT / "memory" / parent.lstrip("/"))
    assert all(os.path.isdir(path) for path in cgroup["paths"].values())
    assert cgroup["limits"] == kernel_limits(parent)
    # The pod module sums the members' limits into the parent: 2 x 64Mi, 2 x 500m.
    assert cgroup["limits"]["memory_bytes"] == 128 << 20
    assert cgroup["limits"]["cpu_quota_us"] == 100000
    assert 0 < cgroup["usage"]["memory_bytes"] <= 128 << 20

    tree = result["tree"]
    assert "pod %s (podkit, Guaranteed)" % pod_name in tree
    assert "└─cgroup %s: memory=128Mi cpu=1" % parent in [line.split(",")[0] for line in tree]
    sandbox_line = next(line for line in tree if "sandbox %s_sandbox" % pod_name in line)
    assert "pid %d running" % sandbox_pid in sandbox_line
    assert "net:%d" % ns_inode(sandbox_pid, "net") in sandbox_line
    for name, entry in pod["containers"].items():
        line = next(line for line in tree if "%s (%s_%s)" % (name, pod_name, name) in line)
        assert "pid %d running [net ipc]" % entry["pid"] in line

    assert snapshot(docker_client, pod_name, parent) == before

    # The pod module returns the same structure for its pod (usage aside, which moves).
    for entry in (made["pod"], pod):
        for item in [entry["sandbox"], entry["cgroup"]] + list(entry["containers"].values()):
            item.pop("usage")
    assert made["pod"] == pod


def test_check_mode_reads_the_same_and_changes_nothing(docker_client, run_module, pod_name):
    make_podkit_pod(run_module, pod_name, members=("app",))
    parent = parent_of(pod_name)
    before = snapshot(docker_client, pod_name, parent)
    checked = run_module("pod_facts", check=True, name=[pod_name])
    real = run_module("pod_facts", name=[pod_name])
    assert checked["changed"] is False and real["changed"] is False
    for result in (checked, real):
        app = result["ansible_facts"]["podkit_pods"][pod_name]["containers"]["app"]
        assert app["namespaces"] == kernel_namespaces(container_pid(docker_client, pod_name + "_app"))
    assert snapshot(docker_client, pod_name, parent) == before


def test_hand_made_pod_of_the_article(docker_client, run_module, pod_name):
    make_hand_made_pod(pod_name)
    owner = pod_name + "_sandbox"

    # Not podkit's: only reported on request.
    assert owner not in run_module("pod_facts")["ansible_facts"]["podkit_pods"]

    result = run_module("pod_facts", include_unmanaged=True, name=[owner])
    pods = result["ansible_facts"]["podkit_pods"]
    assert list(pods) == [owner]
    pod = pods[owner]
    assert pod["managed"] is False
    assert pod["qos_class"] == "BestEffort"
    assert_matches_kernel(pod["sandbox"], docker_client, owner)
    sandbox_pid = pod["sandbox"]["pid"]
    assert sorted(pod["containers"]) == [pod_name + "_app", pod_name + "_sidecar"]
    for name, entry in pod["containers"].items():
        assert_matches_kernel(entry, docker_client, name)
        assert sorted(entry["shared_with_sandbox"]) == lsns_shared(entry["pid"], sandbox_pid) == ["ipc", "net"]
        assert proc_cgroup(entry["pid"])["memory"] == "/%s/%s" % (pod_name, entry["id"])
    # The cgroup parent is the --cgroup-parent of the sandbox, its limits those of its files.
    assert pod["cgroup"]["docker_cgroup_parent"] == "/" + pod_name
    assert pod["cgroup"]["paths"]["memory"] == str(CGROUP_ROOT / "memory" / pod_name)
    assert pod["cgroup"]["limits"] == kernel_limits("/" + pod_name)
    tree = result["tree"]
    assert "pod %s (unmanaged, BestEffort)" % owner in tree
    assert "└─cgroup /%s: no limits" % pod_name in [line.split(",")[0] for line in tree]
    for name, entry in pod["containers"].items():
        assert "  ├─%s pid %d running [net ipc]" % (name, entry["pid"]) in tree or \
            "  └─%s pid %d running [net ipc]" % (name, entry["pid"]) in tree


def test_query_returns_the_shared_namespaces(docker_client, run_module, pod_name):
    make_podkit_pod(run_module, pod_name)
    result = run_module("pod_facts", name=[pod_name], query="%s.containers.*.shared_with_sandbox" % pod_name)
    assert result["query_result"] == [["net", "ipc"], ["net", "ipc"]]
    sandbox_pid = container_pid(docker_client, pod_name + "_sandbox")
    result = run_module("pod_facts", name=[pod_name], query="%s.sandbox.namespaces.net" % pod_name)
    assert result["query_result"] == ns_inode(sandbox_pid, "net")


def test_bad_query_is_a_clear_error(docker_client, run_module):
    result = run_module("pod_facts", query="containers[?", expect_fail=True)
    assert result["msg"].startswith("query: 'containers[?' is not a valid JMESPath expression")
    assert result["changed"] is False


def test_pid_sharing_pod(docker_client, run_module, pod_name):
    make_podkit_pod(run_module, pod_name, members=("app",), share_pid=True)
    pod = run_module("pod_facts", name=[pod_name])["ansible_facts"]["podkit_pods"][pod_name]
    app = pod["containers"]["app"]
    sandbox_pid = container_pid(docker_client, pod_name + "_sandbox")
    assert sorted(app["shared_with_sandbox"]) == lsns_shared(app["pid"], sandbox_pid) == ["ipc", "net", "pid"]
    assert app["shared_with_sandbox"] == ["net", "ipc", "pid"]


def test_stopped_members_are_reported_with_their_status(docker_client, run_module, pod_name):
    make_podkit_pod(run_module, pod_name)
    docker_client.containers.get(pod_name + "_sidecar").stop(timeout=0)
    result = run_module("pod_facts", name=[pod_name])
    pod = result["ansible_facts"]["podkit_pods"][pod_name]
    sidecar = pod["containers"]["sidecar"]
    assert sidecar["status"] == "exited" and sidecar["pid"] == 0
    assert sidecar["namespaces"] == {} and sidecar["cgroup_paths"] == {} and sidecar["shared_with_sandbox"] == []
    # Not running: the limits Docker will apply when it starts.
    assert sidecar["limits"]["memory_bytes"] == 64 << 20
    assert pod["containers"]["app"]["status"] == "running"
    line = next(line for line in result["tree"] if "(%s_sidecar)" % pod_name in line)
    assert line.endswith("exited (%d)" % docker_client.containers.get(pod_name + "_sidecar").attrs["State"]["ExitCode"])

    # The whole pod stopped, sandbox first: still facts, no crash.
    docker_client.containers.get(pod_name + "_sandbox").stop(timeout=0)
    docker_client.containers.get(pod_name + "_app").stop(timeout=0)
    pod = run_module("pod_facts", name=[pod_name])["ansible_facts"]["podkit_pods"][pod_name]
    assert pod["sandbox"]["status"] == "exited" and pod["sandbox"]["pid"] == 0
    assert all(c["pid"] == 0 and c["shared_with_sandbox"] == [] for c in pod["containers"].values())
    # Nothing runs in the parent, so its directories are found where the driver puts them.
    assert pod["cgroup"]["paths"]["memory"] == str(CGROUP_ROOT / "memory" / "podkit" / ("pod-" + pod_name))


def test_container_whose_process_is_gone_while_read(docker_client, run_module, pod_name):
    """Docker said running, but the process ended before /proc was read: reported as exited."""
    from ansible_collections.podkit.docker.plugins.module_utils import _cgroups, _facts
    make_podkit_pod(run_module, pod_name, members=("app",))
    attrs = docker_client.api.inspect_container(pod_name + "_app")
    gone = subprocess.Popen(["true"])
    gone.wait()
    attrs["State"]["Pid"] = gone.pid
    entry = _facts.container_entry(attrs, _cgroups.detect_host(docker_client), "member", {"net": 1}, {})
    assert (entry["status"], entry["pid"], entry["namespaces"], entry["shared_with_sandbox"]) == \
        ("exited", 0, {}, [])


def test_pod_facts_function_reuses_the_callers_containers(docker_client, run_module, pod_name):
    """The pod module passes the containers it inspected; the result equals the module's entry."""
    from ansible_collections.podkit.docker.plugins.module_utils import _cgroups, _facts
    make_podkit_pod(run_module, pod_name)
    host = _cgroups.detect_host(docker_client)
    containers = docker_client.containers.list(all=True, filters={"label": "io.podkit.pod=" + pod_name})
    given = _facts.pod_facts(docker_client, host, pod_name, containers)
    listed = _facts.pod_facts(docker_client, host, pod_name)
    for entry in (given, listed):
        for proc in [entry["sandbox"]] + list(entry["containers"].values()):
            proc.pop("usage")
        entry["cgroup"].pop("usage")
    assert given == listed
    assert sorted(given["containers"]) == ["app", "sidecar"]
    assert _facts.pod_facts(docker_client, host, pod_name + "x") is None


def test_ad_hoc_prints_the_facts_and_the_tree(docker_client, run_module, pod_name):
    make_podkit_pod(run_module, pod_name)
    proc = subprocess.run(
        ["ansible", "localhost", "-c", "local", "-i", "localhost,", "-m", "podkit.docker.pod_facts",
         "-a", "name=%s" % pod_name],
        capture_output=True, text=True, env=ansible_env(), timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("localhost | SUCCESS => {")
    printed = json.loads(proc.stdout.split("=>", 1)[1])
    assert printed["changed"] is False
    assert pod_name in printed["ansible_facts"]["podkit_pods"]
    sandbox_pid = container_pid(docker_client, pod_name + "_sandbox")
    # The tree is printed one line a row, readable as it is (no escapes).
    assert '"pod %s (podkit, Guaranteed)",' % pod_name in proc.stdout
    assert "├─sandbox %s_sandbox pid %d running" % (pod_name, sandbox_pid) in proc.stdout
    assert "\\u2500" not in proc.stdout


def test_no_daemon_is_a_clear_error(run_module, tmp_path):
    result = run_module("pod_facts", docker_host="unix://%s/none.sock" % tmp_path, timeout=5, expect_fail=True)
    assert result["msg"].startswith("docker_host: no Docker daemon answers at unix://")
    assert result["changed"] is False


def test_socket_reader_answers_as_the_sdk_does(docker_client, run_module, pod_name):
    """pod_facts reads the local socket without the SDK: the same data, the same errors."""
    from ansible_collections.podkit.docker.plugins.module_utils import _docker
    make_podkit_pod(run_module, pod_name, members=("app",))
    client = _docker.connect("unix:///var/run/docker.sock", 10, read_only=True)
    assert client.transport == "socket"
    api = client.api
    labelled = {"label": "io.podkit.pod=" + pod_name}
    ours = api.containers(all=True, filters=labelled)
    assert sorted(c["Id"] for c in ours) == sorted(c["Id"] for c in docker_client.api.containers(all=True, filters=labelled))
    for summary in ours:
        assert api.inspect_container(summary["Id"]) == docker_client.api.inspect_container(summary["Id"])
    assert api.info()["ID"] == docker_client.info()["ID"]
    with pytest.raises(_docker.DockerError) as err:
        api.inspect_container(pod_name + "_nothing")
    assert err.value.status_code == 404
    client.close()
    # The writing path (and any non-socket address) is the SDK's, with the same one error type.
    sdk = _docker.connect("unix:///var/run/docker.sock", 10)
    assert sdk.transport == "sdk"
    with pytest.raises(_docker.DockerError) as err:
        sdk.api.inspect_container(pod_name + "_nothing")
    assert err.value.status_code == 404
    sdk.close()


def test_tcp_docker_host_goes_through_the_sdk(run_module):
    # A closed loopback port: the SDK answers, and its failure is the same clear error. Only the
    # SDK asks for the API version first, and says so: that tells which client ran.
    result = run_module("pod_facts", docker_host="tcp://127.0.0.1:1", timeout=5, expect_fail=True)
    assert result["msg"].startswith("docker_host: no Docker daemon answers at tcp://127.0.0.1:1")
    assert "Error while fetching server API version" in result["msg"]
    socket = run_module("pod_facts", docker_host="unix:///nonexistent/docker.sock", timeout=5, expect_fail=True)
    assert socket["msg"].startswith("docker_host: no Docker daemon answers at unix:///nonexistent/docker.sock")
    assert "Error while fetching server API version" not in socket["msg"]
