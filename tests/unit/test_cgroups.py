"""Pure parts of _cgroups: kubelet arithmetic, names, slice units, readers over fake trees.

The v2 and systemd backends cannot run on this (v1, no systemd) machine; what they
compute is checked here and their effect on a real host in the Debian VM tests.
"""

import os

import pytest

from ansible_collections.podkit.docker.plugins.module_utils import _cgroups as cg
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError

V1_CGROUPFS = cg.HostCgroups(version=1, driver="cgroupfs")
V2_SYSTEMD = cg.HostCgroups(version=2, driver="systemd", mountpoints={"unified": "/sys/fs/cgroup"})


@pytest.mark.parametrize("shares, weight", [
    (2, 1), (1024, 39), (512, 20), (102, 4), (262144, 10000), (1, 1), (10 ** 9, 10000),
])
def test_shares_to_weight_is_runc_conversion(shares, weight):
    assert cg.shares_to_weight(shares) == weight


def test_weight_to_shares_is_the_least_inverse():
    for weight in (2, 20, 39, 100, 5000, 10000):
        shares = cg.weight_to_shares(weight)
        assert cg.shares_to_weight(shares) == weight and cg.shares_to_weight(shares - 1) < weight, weight
    assert cg.weight_to_shares(1) == cg.MIN_SHARES


@pytest.mark.parametrize("millis, shares", [(0, 2), (1, 2), (100, 102), (250, 256), (500, 512), (1000, 1024),
                                            (4000, 4096), (10 ** 6, 262144)])
def test_kubelet_shares(millis, shares):
    assert cg.kubelet_shares(millis) == shares


@pytest.mark.parametrize("millis, period, quota", [
    (500, 100000, 50000), (1000, 100000, 100000), (2500, 100000, 250000), (250, 100000, 25000),
    (1, 100000, 1000), (5, 100000, 1000), (500, 50000, 25000),
])
def test_cpu_quota_has_kubelet_minimum(millis, period, quota):
    assert cg.cpu_quota(millis, period) == quota


def test_limits_from_v1_and_v2():
    v1 = cg.limits_from(memory_bytes=536870912, cpu_millis=500, cpu_request_millis=250, pids=100, version=1)
    assert v1.as_dict(1) == dict(memory_bytes=536870912, cpu_quota_us=50000, cpu_period_us=100000,
                                 cpu_shares=256, pids_max=100)
    v2 = cg.limits_from(cpu_millis=500, cpu_request_millis=1000, version=2)
    assert v2.cpu_weight == 39 and v2.cpu_shares is None
    assert v2.as_dict(2) == dict(memory_bytes=None, cpu_quota_us=50000, cpu_period_us=100000, cpu_weight=39,
                                 pids_max=None)
    # An explicit cpu_shares wins over a request.
    assert cg.limits_from(cpu_shares=512, cpu_request_millis=100).cpu_shares == 512
    assert cg.limits_from().managed() == {}
    assert set(cg.CgroupLimits().as_dict()) == {"memory_bytes", "cpu_quota_us", "cpu_period_us", "cpu_shares",
                                                "cpu_weight", "pids_max"}


def test_default_parent():
    assert cg.default_parent("web-1", "cgroupfs") == "/podkit/pod-web-1"
    assert cg.default_parent("web-1", "systemd") == "podkit-pod_web_1.slice"
    # The default slice is a valid unit name whose only parent is podkit.slice.
    assert cg.validate_name(cg.default_parent("web-1", "systemd"), V2_SYSTEMD) == "podkit-pod_web_1.slice"
    assert cg.slice_cgroup_path("podkit-pod_web_1.slice") == "/podkit.slice/podkit-pod_web_1.slice"


@pytest.mark.parametrize("name, path", [
    ("podkit-pod_foo.slice", "/podkit.slice/podkit-pod_foo.slice"),
    ("a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice"),
    ("pod.slice", "/pod.slice"),
    ("-.slice", "/"),
])
def test_slice_cgroup_path(name, path):
    assert cg.slice_cgroup_path(name) == path


@pytest.mark.parametrize("name, canonical", [
    ("/pod-foo", "/pod-foo"), ("pod-foo", "/pod-foo"), ("/podkit/pod-foo/", "/podkit/pod-foo"),
    ("//podkit//pod-foo", "/podkit/pod-foo"), ("/pod_foo.v2@x:y+z", "/pod_foo.v2@x:y+z"),
])
def test_valid_cgroupfs_names(name, canonical):
    assert cg.validate_name(name, V1_CGROUPFS) == canonical


@pytest.mark.parametrize("name, message", [
    ("", "is empty"), ("  ", "is empty"), (None, "is empty"), ("\t", "is empty"),
    (" /pod", "whitespace"), ("/pod foo", "whitespace"), ("/pod\nfoo", "whitespace"),
    ("../x", "contains '..'"), ("/a/../../x", "contains '..'"), ("/..", "contains '..'"),
    ("/", "root cgroup"), ("///", "root cgroup"),
    ("/sys/fs/cgroup/memory/pod", "is a filesystem path"), ("/sys/fs/cgroup", "is a filesystem path"),
    ("/tmp/pod", "outside the cgroup root"), ("/etc/x", "outside the cgroup root"),
    ("pod-foo.slice", "is a systemd slice, but the cgroupfs driver"),
    ("/cgroup.procs/x", "cgroup control file"), ("/pod/memory.max", "cgroup control file"),
    ("/tasks", "cgroup control file"),
    ("/a/./b", "invalid component '.'"), ("/.hidden", "invalid component"), ("/a/b$c", "invalid component"),
])
def test_invalid_cgroupfs_names(name, message):
    with pytest.raises(PodkitError) as error:
        cg.validate_name(name, V1_CGROUPFS, "cgroup_parent")
    assert error.value.msg.startswith("cgroup_parent:")
    assert message in error.value.msg


@pytest.mark.parametrize("name", ["pod-foo.slice", "podkit-pod_foo.slice", "a:b\\x2d.slice", "x.y.slice"])
def test_valid_slice_names(name):
    assert cg.validate_name(name, V2_SYSTEMD) == name
    assert cg.validate_name(name, V1_CGROUPFS, driver="systemd") == name


@pytest.mark.parametrize("name, message", [
    ("/pod-foo", "is a path, but the systemd cgroup driver"),
    ("/system.slice/pod.slice", "is a path"),
    ("pod-foo", "is not a slice"),
    ("pod-foo.service", "is not a slice"),
    (".slice", "root slice"), ("-.slice", "root slice"),
    ("-pod.slice", "may not lead, trail or repeat"), ("pod-.slice", "may not lead"), ("a--b.slice", "repeat"),
    ("pod$.slice", "only letters"), ("p" * 250 + ".slice", "longer than 255"),
])
def test_invalid_slice_names(name, message):
    with pytest.raises(PodkitError) as error:
        cg.validate_name(name, V2_SYSTEMD)
    assert error.value.msg.startswith("name:")
    assert message in error.value.msg


def test_validate_controllers():
    assert cg.validate_controllers(None) == ["cpu", "memory", "pids"]
    assert cg.validate_controllers(["memory", "cpu", "memory"]) == ["memory", "cpu"]
    with pytest.raises(PodkitError, match="controllers: unknown cgroup controller 'cpu,memory'"):
        cg.validate_controllers(["cpu,memory"])
    host = cg.HostCgroups(version=1, driver="cgroupfs", mountpoints={"cpu": "/x/cpu", "memory": "/x/memory"})
    with pytest.raises(PodkitError, match="'pids' is not mounted"):
        cg.validate_controllers(["pids"], host)


def test_slice_unit_rendering():
    limits = cg.limits_from(memory_bytes=536870912, cpu_millis=500, cpu_request_millis=250, pids=100, version=2)
    unit = cg.render_slice_unit("podkit-pod_foo.slice", limits)
    lines = unit.splitlines()
    assert "[Slice]" in lines and "[Unit]" in lines
    assert lines.index("[Unit]") < lines.index("[Slice]")
    for line in ("MemoryAccounting=yes", "MemoryMax=536870912", "CPUAccounting=yes", "CPUQuota=50%",
                 "CPUWeight=%d" % cg.shares_to_weight(256), "TasksAccounting=yes", "TasksMax=100"):
        assert line in lines, (line, unit)
    assert not any(line.startswith("CPUQuotaPeriodSec") for line in lines)
    assert unit.endswith("\n")


def test_slice_properties_fractions_unlimited_and_v1_shares():
    props = dict(cg.slice_properties(cg.CgroupLimits(cpu_quota_us=12345, cpu_period_us=100000)))
    assert props["CPUQuota"] == "12.35%"
    props = dict(cg.slice_properties(cg.CgroupLimits(cpu_quota_us=250000, cpu_period_us=50000)))
    assert props["CPUQuota"] == "500%" and props["CPUQuotaPeriodSec"] == "50000us"
    props = dict(cg.slice_properties(cg.CgroupLimits(memory_bytes=cg.UNLIMITED, pids_max=cg.UNLIMITED,
                                                     cpu_quota_us=cg.UNLIMITED)))
    assert props == {"MemoryAccounting": "yes", "MemoryMax": "infinity", "CPUAccounting": "yes",
                     "CPUQuota": "", "TasksAccounting": "yes", "TasksMax": "infinity"}
    # cpu_shares given to a systemd host becomes a CPUWeight systemd understands.
    assert dict(cg.slice_properties(cg.CgroupLimits(cpu_shares=1024)))["CPUWeight"] == "39"
    assert cg.slice_properties(cg.CgroupLimits()) == []


def test_v2_writes():
    observed = dict(memory_bytes=None, cpu_quota_us=None, cpu_period_us=100000, cpu_weight=100, pids_max=None)
    limits = cg.limits_from(memory_bytes=64 << 20, cpu_millis=1500, cpu_request_millis=500, pids=10, version=2)
    changes = cg.changed_fields(limits, observed)
    assert sorted(changes) == ["cpu_quota_us", "cpu_weight", "memory_bytes", "pids_max"]
    assert cg.v2_writes(limits, observed, changes) == [
        ("memory.max", str(64 << 20)), ("cpu.max", "150000 100000"), ("cpu.weight", "20"), ("pids.max", "10")]
    unlimit = cg.CgroupLimits(memory_bytes=cg.UNLIMITED, cpu_quota_us=cg.UNLIMITED, pids_max=cg.UNLIMITED)
    current = dict(memory_bytes=1 << 30, cpu_quota_us=50000, cpu_period_us=100000, cpu_weight=100, pids_max=5)
    changes = cg.changed_fields(unlimit, current)
    assert cg.v2_writes(unlimit, current, changes) == [("memory.max", "max"), ("cpu.max", "max 100000"),
                                                       ("pids.max", "max")]
    # Unlimited where there already is no limit is no change.
    assert cg.changed_fields(unlimit, dict(memory_bytes=None, cpu_quota_us=None, pids_max=None)) == []


def write_files(directory, files):
    os.makedirs(str(directory), exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text + "\n")


def test_read_limits_and_usage_v1(tmp_path):
    write_files(tmp_path / "memory", {"memory.limit_in_bytes": "536870912", "memory.usage_in_bytes": "4096"})
    write_files(tmp_path / "cpu", {"cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000", "cpu.shares": "1024"})
    write_files(tmp_path / "pids", {"pids.max": "max"})
    paths = dict((c, str(tmp_path / c)) for c in ("memory", "cpu", "pids"))
    assert cg.read_limits(paths, 1) == dict(memory_bytes=536870912, cpu_quota_us=50000, cpu_period_us=100000,
                                            cpu_shares=1024, pids_max=None)
    assert cg.read_usage(paths, 1) == dict(memory_bytes=4096)
    # The kernel's "no limit" values read as None.
    write_files(tmp_path / "memory", {"memory.limit_in_bytes": "9223372036854771712"})
    write_files(tmp_path / "cpu", {"cpu.cfs_quota_us": "-1"})
    limits = cg.read_limits(paths, 1)
    assert limits["memory_bytes"] is None and limits["cpu_quota_us"] is None


def test_readers_tolerate_missing_dirs_and_files(tmp_path):
    gone = dict(memory=str(tmp_path / "nope"), cpu=str(tmp_path / "nope"))
    assert set(cg.read_limits(gone, 1).values()) == {None}
    assert cg.read_usage(gone, 1) == dict(memory_bytes=None)
    assert set(cg.read_limits({}, 2).values()) == {None}
    assert cg.read_usage({"unified": str(tmp_path / "nope")}, 2) == dict(memory_bytes=None)
    assert set(cg.read_limits({}, 1).values()) == {None}


def test_read_limits_and_usage_v2(tmp_path):
    write_files(tmp_path, {"memory.max": "268435456", "cpu.max": "max 100000", "cpu.weight": "39",
                           "pids.max": "100", "memory.current": "8192"})
    paths = {"unified": str(tmp_path)}
    assert cg.read_limits(paths, 2) == dict(memory_bytes=268435456, cpu_quota_us=None, cpu_period_us=100000,
                                            cpu_weight=39, pids_max=100)
    assert cg.read_usage(paths, 2) == dict(memory_bytes=8192)
    write_files(tmp_path, {"cpu.max": "25000 50000", "memory.max": "max"})
    limits = cg.read_limits(paths, 2)
    assert (limits["cpu_quota_us"], limits["cpu_period_us"], limits["memory_bytes"]) == (25000, 50000, None)


MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
"""


def test_detect_host_from_info_and_mountinfo(tmp_path):
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(MOUNTINFO)
    host = cg.detect_host({"CgroupDriver": "cgroupfs", "CgroupVersion": "1"}, str(mountinfo))
    assert (host.version, host.driver) == (1, "cgroupfs")
    assert host.mountpoints == {"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
                                "memory": "/sys/fs/cgroup/memory", "name=systemd": "/sys/fs/cgroup/systemd",
                                "unified": "/sys/fs/cgroup/unified"}
    v2 = cg.detect_host({"CgroupDriver": "systemd", "CgroupVersion": "2"}, str(mountinfo))
    assert (v2.version, v2.driver, v2.mountpoints) == (2, "systemd", {"unified": "/sys/fs/cgroup/unified"})


def test_cgroup_dirs_for_pid(tmp_path):
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "cgroup").write_text(
        "9:name=systemd:/pod-foo/abc\n4:memory:/pod-foo/abc\n1:cpu,cpuacct:/pod-foo/abc\n0::/\n")
    host = cg.HostCgroups(version=1, driver="cgroupfs", mountpoints={
        "cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
        "memory": "/sys/fs/cgroup/memory", "name=systemd": "/sys/fs/cgroup/systemd",
        "unified": "/sys/fs/cgroup/unified"})
    assert cg.cgroup_dirs_for_pid(42, host, proc=str(tmp_path)) == {
        "name=systemd": "/sys/fs/cgroup/systemd/pod-foo/abc", "memory": "/sys/fs/cgroup/memory/pod-foo/abc",
        "cpu": "/sys/fs/cgroup/cpu,cpuacct/pod-foo/abc", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/pod-foo/abc",
        "unified": "/sys/fs/cgroup/unified"}
    (tmp_path / "43").mkdir()
    (tmp_path / "43" / "cgroup").write_text("0::/podkit.slice/podkit-pod_foo.slice/docker-abc.scope\n")
    assert cg.cgroup_dirs_for_pid(43, V2_SYSTEMD, proc=str(tmp_path)) == {
        "unified": "/sys/fs/cgroup/podkit.slice/podkit-pod_foo.slice/docker-abc.scope"}
    assert cg.cgroup_dirs_for_pid(44, V2_SYSTEMD, proc=str(tmp_path)) == {}


def test_parse_limit_options():
    assert cg.parse_limit_options("512MB", 0.5, 512, 100) == dict(memory_bytes=536870912, cpu_millis=500,
                                                                  cpu_shares=512, pids=100)
    assert cg.parse_limit_options() == dict(memory_bytes=None, cpu_millis=None, cpu_shares=None, pids=None)
    assert cg.parse_limit_options(pids_limit=-1)["pids"] == cg.UNLIMITED
    for kwargs, field in ((dict(memory="1"), "memory:"), (dict(cpus=-1), "cpus:"), (dict(cpus="0"), "cpus:"),
                          (dict(cpu_shares=1), "cpu_shares:"), (dict(cpu_shares=262145), "cpu_shares:"),
                          (dict(pids_limit=0), "pids_limit:"), (dict(pids_limit=-2), "pids_limit:")):
        with pytest.raises(PodkitError) as error:
            cg.parse_limit_options(**kwargs)
        assert error.value.msg.startswith(field), error.value.msg


def test_backend_for_picks_by_driver_and_version(monkeypatch):
    assert isinstance(cg.backend_for(V1_CGROUPFS), cg.V1Backend)
    assert isinstance(cg.backend_for(cg.HostCgroups(version=2, driver="cgroupfs")), cg.V2Backend)
    monkeypatch.setattr(cg.HostCgroups, "systemd_running", lambda self: False)
    with pytest.raises(PodkitError, match="driver: systemd, but systemd is not running"):
        cg.backend_for(V2_SYSTEMD)
    monkeypatch.setattr(cg.HostCgroups, "systemd_running", lambda self: True)
    assert isinstance(cg.backend_for(V2_SYSTEMD), cg.SystemdBackend)
    backend = cg.SystemdBackend(V2_SYSTEMD)
    assert backend.docker_cgroup_parent("podkit-pod_foo.slice") == "podkit-pod_foo.slice"
    assert backend.unit_path("podkit-pod_foo.slice") == "/etc/systemd/system/podkit-pod_foo.slice"


def fake_v2_root(tmp_path):
    """A directory shaped like a cgroup v2 root (regular files: the kernel's side effects do not happen)."""
    root = tmp_path / "cgroup"
    write_files(root, {"cgroup.controllers": "cpuset cpu io memory pids", "cgroup.subtree_control": ""})
    return root


def test_v2_backend_enables_controllers_down_the_path_and_writes_unified_files(tmp_path):
    # Regular files stand in for cgroupfs here; the same code against the kernel runs in the VM tests.
    root = fake_v2_root(tmp_path)
    write_files(root / "podkit", {"cgroup.controllers": "cpu memory pids", "cgroup.subtree_control": ""})
    host = cg.HostCgroups(version=2, driver="cgroupfs", root=str(root), mountpoints={"unified": str(root)})
    backend = cg.backend_for(host)
    limits = cg.limits_from(memory_bytes=512 << 20, cpu_millis=500, cpu_shares=1024, pids=64, version=2)
    changed, before, after = backend.ensure("/podkit/pod-foo", limits, check_mode=True)
    assert changed and before is None
    assert after["limits"] == dict(memory_bytes=512 << 20, cpu_quota_us=50000, cpu_period_us=100000,
                                   cpu_weight=39, pids_max=64)
    assert not (root / "podkit" / "pod-foo").exists()

    changed, before, after = backend.ensure("/podkit/pod-foo", limits)
    assert changed
    leaf = root / "podkit" / "pod-foo"
    assert (root / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert (root / "podkit" / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert (leaf / "memory.max").read_text() == str(512 << 20)
    assert (leaf / "cpu.max").read_text() == "50000 100000"
    assert (leaf / "cpu.weight").read_text() == "39"
    assert (leaf / "pids.max").read_text() == "64"
    assert after["paths"] == {"unified": str(leaf)}
    assert after["limits"]["memory_bytes"] == 512 << 20 and after["version"] == 2

    again = backend.ensure("/podkit/pod-foo", limits)
    assert again[0] is False


def test_systemd_backend_writes_a_unit_and_drives_systemctl(tmp_path, monkeypatch):
    # A stand-in systemctl records its calls; the real one runs in the VM tests.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "systemctl.log"
    script = bindir / "systemctl"
    script.write_text("#!/bin/sh\necho \"$@\" >> %s\n" % log)
    script.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ["PATH"]))
    units = tmp_path / "units"
    units.mkdir()
    root = fake_v2_root(tmp_path)
    host = cg.HostCgroups(version=2, driver="systemd", root=str(root), mountpoints={"unified": str(root)})
    backend = cg.SystemdBackend(host, unit_dir=str(units))
    limits = cg.limits_from(memory_bytes=256 << 20, cpu_millis=250, version=2)

    changed, before, _after = backend.ensure("podkit-pod_foo.slice", limits, check_mode=True)
    assert changed and before is None
    assert not log.exists() and not (units / "podkit-pod_foo.slice").exists()

    changed, _before, _after = backend.ensure("podkit-pod_foo.slice", limits)
    assert changed
    assert (units / "podkit-pod_foo.slice").read_text() == cg.render_slice_unit("podkit-pod_foo.slice", limits)
    calls = log.read_text().splitlines()
    assert calls[0] == "daemon-reload"
    assert calls[1] == "start podkit-pod_foo.slice"
    assert calls[2].startswith("set-property --runtime podkit-pod_foo.slice ")
    assert "MemoryMax=268435456" in calls[2] and "CPUQuota=25%" in calls[2]

    # The slice's cgroup, as systemd would have made it, with the limits applied.
    write_files(root / "podkit.slice" / "podkit-pod_foo.slice",
                {"memory.max": str(256 << 20), "cpu.max": "25000 100000", "cgroup.procs": ""})
    log.unlink()
    assert backend.ensure("podkit-pod_foo.slice", limits)[0] is False
    assert not log.exists()

    assert backend.remove("podkit-pod_foo.slice", check_mode=True)
    assert (units / "podkit-pod_foo.slice").exists() and not log.exists()
    write_files(root / "podkit.slice" / "podkit-pod_foo.slice", {"cgroup.procs": "%d" % os.getpid()})
    with pytest.raises(PodkitError, match="still has processes: %d" % os.getpid()):
        backend.remove("podkit-pod_foo.slice")
    write_files(root / "podkit.slice" / "podkit-pod_foo.slice", {"cgroup.procs": ""})
    assert backend.remove("podkit-pod_foo.slice")
    assert not (units / "podkit-pod_foo.slice").exists()
    assert log.read_text().splitlines() == ["stop podkit-pod_foo.slice", "revert podkit-pod_foo.slice", "daemon-reload"]


def test_v2_parent_made_by_a_concurrent_run_is_no_error(tmp_path, monkeypatch):
    # podkit.docker.pods converges pods in parallel: two of them may both find /podkit missing
    # and create it; the second mkdir must not fail the pod.
    (tmp_path / "podkit").mkdir()
    host = cg.HostCgroups(version=2, driver="cgroupfs", root=str(tmp_path), mountpoints={"unified": str(tmp_path)})
    real_isdir = os.path.isdir
    # The other run's mkdir lands between this run's look and its own mkdir.
    monkeypatch.setattr(cg.os.path, "isdir", lambda path: False if path == str(tmp_path / "podkit") else real_isdir(path))
    cg.V2Backend(host)._enable_controllers("/podkit/pod-a")
    assert (tmp_path / "podkit" / "pod-a").is_dir()


def test_the_way_back_from_shares_and_quota_gives_the_millicores_the_kubelet_arithmetic_took():
    from ansible_collections.podkit.docker.plugins.module_utils._cgroups import (
        cpu_quota, kubelet_shares, quota_millicores, shares_millicores)
    for millicores in (1, 2, 3, 100, 250, 333, 500, 1000, 1500, 64000):
        assert kubelet_shares(shares_millicores(kubelet_shares(millicores))) == kubelet_shares(millicores)
        if millicores >= 10:    # cpu_quota's floor is 1000 µs: 10m over the default period
            assert quota_millicores(cpu_quota(millicores)) == millicores
    assert shares_millicores(1024) == 1000 and shares_millicores(256) == 250
    assert quota_millicores(50000, 200000) == 250
    assert quota_millicores(-1) is None and quota_millicores(None) is None and quota_millicores(0) is None
    # Docker's --cpus (NanoCpus) wins over a quota.
    assert quota_millicores(50000, None, 1500000000) == 1500
