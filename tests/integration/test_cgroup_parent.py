"""podkit.docker.cgroup_parent on this machine: cgroup v1, Docker's cgroupfs driver.

Every assertion that matters reads the kernel: the cgroup files, directory inodes,
/proc/<pid>/cgroup. The module's own answer is checked against them, not trusted.
"""

import os
import pathlib
import subprocess
import time

import pytest

from helpers import BUSYBOX_IMAGE, CGROUP_ROOT, LABEL_POD, cgroup_dirs, container_pid, proc_cgroup

MODULE = "cgroup_parent"


def read(path):
    return pathlib.Path(path).read_text().strip()


def start_member(client, pod, parent, command="sleep 300", name="app", **extra):
    container = client.containers.run(
        BUSYBOX_IMAGE, command, name="%s_%s" % (pod, name), detach=True, cgroup_parent=parent,
        labels={LABEL_POD: pod}, **extra)
    for _attempt in range(100):
        container.reload()
        if container.attrs["State"]["Pid"]:
            break
        time.sleep(0.05)
    return container


def test_article_limits_idempotent_and_updated_in_place(run_module, pod_name):
    name = "/" + pod_name
    result = run_module(MODULE, diff=True, name=name, memory="512MB", cpus=0.5)
    assert result["changed"]
    memory_dir = CGROUP_ROOT / "memory" / pod_name
    cpu_dir = CGROUP_ROOT / "cpu" / pod_name
    assert read(memory_dir / "memory.limit_in_bytes") == "536870912"
    assert read(cpu_dir / "cpu.cfs_quota_us") == "50000"
    assert read(cpu_dir / "cpu.cfs_period_us") == "100000"
    assert (CGROUP_ROOT / "pids" / pod_name).is_dir()
    cgroup = result["cgroup"]
    assert cgroup["name"] == name
    assert cgroup["driver"] == "cgroupfs" and cgroup["version"] == 1
    assert cgroup["docker_cgroup_parent"] == name
    assert cgroup["paths"]["memory"] == str(memory_dir)
    assert cgroup["limits"]["memory_bytes"] == 536870912
    assert cgroup["limits"]["cpu_quota_us"] == 50000
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["limits"]["memory_bytes"] == 536870912

    again = run_module(MODULE, name=name, memory="512MB", cpus=0.5)
    assert not again["changed"]
    assert again["cgroup"]["limits"] == cgroup["limits"]

    inode = memory_dir.stat().st_ino
    updated = run_module(MODULE, diff=True, name=name, memory="256Mi", cpus=0.5)
    assert updated["changed"]
    assert memory_dir.stat().st_ino == inode, "the memory cgroup was recreated, not updated in place"
    assert read(memory_dir / "memory.limit_in_bytes") == str(256 * 1024 * 1024)
    assert read(cpu_dir / "cpu.cfs_quota_us") == "50000"
    assert updated["diff"]["before"]["limits"]["memory_bytes"] == 536870912
    assert updated["diff"]["after"]["limits"]["memory_bytes"] == 256 * 1024 * 1024


def test_check_mode_on_a_new_name_creates_nothing(run_module, pod_name):
    name = "/podkit/pod-" + pod_name
    result = run_module(MODULE, check=True, diff=True, name=name, memory="64Mi", cpus="250m", pids_limit=50)
    assert result["changed"]
    assert result["cgroup"]["limits"]["memory_bytes"] == 64 * 1024 * 1024
    assert result["cgroup"]["limits"]["cpu_quota_us"] == 25000
    assert result["cgroup"]["limits"]["pids_max"] == 50
    assert cgroup_dirs(pod_name) == []

    # And on an existing one, check mode reports the update without writing it.
    run_module(MODULE, name=name, memory="64Mi")
    checked = run_module(MODULE, check=True, name=name, memory="128Mi")
    assert checked["changed"]
    assert read(CGROUP_ROOT / "memory" / "podkit" / ("pod-" + pod_name) / "memory.limit_in_bytes") == str(64 << 20)


def test_pids_and_shares_are_written(run_module, pod_name):
    name = "/" + pod_name
    run_module(MODULE, name=name, cpu_shares=512, pids_limit=64)
    assert read(CGROUP_ROOT / "cpu" / pod_name / "cpu.shares") == "512"
    assert read(CGROUP_ROOT / "pids" / pod_name / "pids.max") == "64"
    unlimited = run_module(MODULE, name=name, pids_limit=-1)
    assert unlimited["changed"]
    assert read(CGROUP_ROOT / "pids" / pod_name / "pids.max") == "max"
    assert unlimited["cgroup"]["limits"]["pids_max"] is None
    assert not run_module(MODULE, name=name, pids_limit=-1)["changed"]


def test_container_joins_parent_and_absent_removes_it_everywhere(run_module, docker_client, pod_name):
    name = "/" + pod_name
    created = run_module(MODULE, name=name, memory="128Mi", cpus=1)
    parent = created["cgroup"]["docker_cgroup_parent"]
    container = start_member(docker_client, pod_name, parent)
    pid = container_pid(docker_client, container.name)
    cgroups = proc_cgroup(pid)
    for controller in ("memory", "cpu", "pids", "blkio", "devices", "freezer", "cpuset", "cpuacct", "name=systemd"):
        assert cgroups[controller].startswith(name + "/"), (controller, cgroups[controller])
    # Docker made the parent in every hierarchy, not only in the module's controllers.
    assert (CGROUP_ROOT / "blkio" / pod_name).is_dir()
    assert (CGROUP_ROOT / "systemd" / pod_name).is_dir()

    refused = run_module(MODULE, expect_fail=True, name=name, state="absent")
    assert str(pid) in refused["msg"] and "sleep 300" in refused["msg"], refused["msg"]
    assert pid in refused["pids"]
    assert (CGROUP_ROOT / "memory" / pod_name).is_dir()
    assert os.path.exists("/proc/%d" % pid)

    container.remove(force=True)
    checked = run_module(MODULE, check=True, name=name, state="absent")
    assert checked["changed"]
    assert (CGROUP_ROOT / "blkio" / pod_name).is_dir()
    removed = run_module(MODULE, diff=True, name=name, state="absent")
    assert removed["changed"]
    assert removed["diff"]["before"]["limits"]["memory_bytes"] == 128 << 20
    assert cgroup_dirs(pod_name) == []
    assert not run_module(MODULE, name=name, state="absent")["changed"]


def test_absent_looks_in_every_hierarchy_and_below(run_module, pod_name):
    # A process in a child cgroup of a hierarchy the module never created in (freezer) still blocks removal,
    # and the child goes before its parent once the process is gone.
    name = "/" + pod_name
    run_module(MODULE, name=name, memory="64Mi")
    child = CGROUP_ROOT / "freezer" / pod_name / "inner"
    child.mkdir(parents=True)
    sleeper = subprocess.Popen(["sleep", "301"])
    try:
        (child / "cgroup.procs").write_text(str(sleeper.pid))
        refused = run_module(MODULE, expect_fail=True, name=name, state="absent")
        assert "%d (sleep 301)" % sleeper.pid in refused["msg"], refused["msg"]
        assert child.is_dir() and (CGROUP_ROOT / "memory" / pod_name).is_dir()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert run_module(MODULE, name=name, state="absent")["changed"]
    assert cgroup_dirs(pod_name) == []


def test_cpuset_parent_made_by_podkit_still_takes_containers(run_module, docker_client, pod_name):
    # A v1 cpuset cgroup with empty cpuset.cpus/mems refuses every task; podkit fills them.
    name = "/podkit/pod-" + pod_name
    run_module(MODULE, name=name, controllers=["cpu", "memory", "pids", "cpuset"], memory="64Mi")
    cpuset_dir = CGROUP_ROOT / "cpuset" / "podkit" / ("pod-" + pod_name)
    assert read(cpuset_dir / "cpuset.cpus") == read(CGROUP_ROOT / "cpuset" / "cpuset.cpus")
    assert read(cpuset_dir / "cpuset.mems") != ""
    container = start_member(docker_client, pod_name, name)
    pid = container_pid(docker_client, container.name)
    assert proc_cgroup(pid)["cpuset"].startswith(name + "/")
    container.remove(force=True)
    run_module(MODULE, name=name, state="absent")
    assert cgroup_dirs(pod_name) == []


def test_lowering_memory_below_usage_is_a_clear_error(run_module, docker_client, pod_name):
    name = "/" + pod_name
    run_module(MODULE, name=name, memory="64Mi")
    # tmpfs pages are charged to the cgroup and cannot be reclaimed on a host without swap.
    container = start_member(docker_client, pod_name, name,
                             command=["sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=40 && sleep 300"])
    usage_file = CGROUP_ROOT / "memory" / pod_name / "memory.usage_in_bytes"
    for _attempt in range(200):
        if int(read(usage_file)) > 40 << 20:
            break
        time.sleep(0.05)
    assert int(read(usage_file)) > 40 << 20
    result = run_module(MODULE, expect_fail=True, name=name, memory="8Mi")
    assert result["msg"].startswith("memory: cannot lower the limit"), result["msg"]
    assert read(CGROUP_ROOT / "memory" / pod_name / "memory.limit_in_bytes") == str(64 << 20)
    container.remove(force=True)


@pytest.mark.parametrize("args, expected", [
    (dict(name="../{pod}"), "name: '../{pod}' contains '..'"),
    (dict(name="/podkit/../../{pod}"), "contains '..'"),
    (dict(name="/tmp/{pod}"), "outside the cgroup root"),
    (dict(name="/sys/fs/cgroup/memory/{pod}"), "is a filesystem path"),
    (dict(name="{pod}.slice"), "is a systemd slice, but the cgroupfs driver"),
    (dict(name="/{pod}", driver="systemd"), "is a path, but the systemd cgroup driver"),
    (dict(name="-{pod}-.slice", driver="systemd"), "is not a valid slice unit name"),
    (dict(name="podkit-{pod}.slice", driver="systemd"), "driver: systemd, but systemd is not running"),
    (dict(name="/{pod}", controllers=["cpu", "bogus"]), "controllers: unknown cgroup controller 'bogus'"),
    (dict(name="/{pod}", memory="1"), "memory: '1' (1 bytes) is below"),
    (dict(name="/{pod}", cpus=-1), "cpus: -1 must be a positive"),
    (dict(name="/{pod}", cpus=0), "cpus:"),
    (dict(name="/{pod}", cpu_shares=1), "cpu_shares: 1 is outside"),
    (dict(name="/{pod}", pids_limit=0), "pids_limit: 0"),
    (dict(name="/{pod}", memory="64Mi", controllers=["cpu"]), "controllers: memory_bytes needs the memory controller"),
])
def test_bad_input_is_a_clear_error_and_creates_nothing(run_module, pod_name, args, expected):
    args = dict((k, v.format(pod=pod_name) if isinstance(v, str) else v) for k, v in args.items())
    result = run_module(MODULE, expect_fail=True, **args)
    assert expected.format(pod=pod_name) in result["msg"], result["msg"]
    assert cgroup_dirs(pod_name) == []
    assert not os.path.exists("/etc/systemd/system/" + args["name"].strip("/"))


@pytest.mark.parametrize("name", ["", "   ", "/pod foo", "/"])
def test_empty_whitespace_or_root_names_are_refused(run_module, name):
    result = run_module(MODULE, expect_fail=True, name=name, memory="64Mi")
    assert result["msg"].startswith("name:"), result["msg"]
