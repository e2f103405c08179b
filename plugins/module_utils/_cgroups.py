# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A pod's cgroup parent on the three kinds of host: one small interface, three backends.

Public API (names are stable; other module_utils build on them):

- ``CgroupLimits`` (dataclass): memory_bytes, cpu_quota_us, cpu_period_us, cpu_shares,
  cpu_weight, pids_max. ``None`` leaves a limit as it is; ``UNLIMITED`` (-1) removes it.
  ``as_dict(version=None)`` gives the DESIGN ``limits`` map.
- Kubelet arithmetic: ``kubelet_shares(millicores)``, ``shares_to_weight(shares)``,
  ``cpu_quota(millicores, period)``, ``limits_from(...)``.
- ``HostCgroups`` (version, driver, root, mountpoints) and ``detect_host(client_or_info)``.
- Names: ``default_parent(pod, driver)``, ``validate_name(name, host, field)``,
  ``validate_controllers(controllers, host, field)``, ``slice_cgroup_path(slice)``,
  ``render_slice_unit(slice, limits)``.
- ``backend_for(host, controllers=None)`` returns a ``CgroupBackend``:
  ``observe(name)`` (the DESIGN ``cgroup`` structure or None), ``ensure(name, limits,
  check_mode)`` -> (changed, before, after), ``remove(name, check_mode)`` -> changed,
  ``docker_cgroup_parent(name)``.
- Readers for any cgroup (a container's too), tolerant of missing files:
  ``read_limits(paths, version)``, ``read_usage(paths, version)``,
  ``cgroup_dirs_for_pid(pid, host)``.

``paths`` maps a controller to an absolute directory. On v1 the keys are the
controllers (``memory``, ``cpu``, ``pids``...; the named hierarchy is ``name=systemd``,
the v2 side mount ``unified``); on v2 there is one key, ``unified``.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
from dataclasses import dataclass, field as dc_field
from typing import Dict, List, Optional, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._errors import MissingLibrary, PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._namespaces import read_cmdline, read_proc_cgroup
from ansible_collections.podkit.docker.plugins.module_utils._quantity import MIN_MEMORY, parse_cpu, parse_memory

try:
    from cgroupspy.nodes import Node
    HAS_CGROUPSPY = True
    CGROUPSPY_IMPORT_ERROR = None
except ImportError:
    import traceback
    HAS_CGROUPSPY = False
    CGROUPSPY_IMPORT_ERROR = traceback.format_exc()

CGROUP_ROOT = "/sys/fs/cgroup"
# Docker's cgroup drivers (``docker info``: CgroupDriver).
CGROUP_DRIVERS = ("cgroupfs", "systemd")
SYSTEMD_UNIT_DIR = "/etc/systemd/system"

# -1 in a CgroupLimits field: remove the limit (write -1 / "max" / "infinity").
UNLIMITED = -1

DEFAULT_PERIOD_US = 100000
# Below this the kernel cannot run a container's first process (Docker's own minimum).
MIN_MEMORY_BYTES = MIN_MEMORY
# The kubelet never sets a CFS quota below 1ms (the kernel refuses < 1000 µs).
MIN_QUOTA_US = 1000
MIN_SHARES = 2
MAX_SHARES = 262144
MIN_WEIGHT = 1
MAX_WEIGHT = 10000

# Every v1 controller the kernel may offer; ``controllers`` must name some of these.
V1_CONTROLLERS = ("blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb", "memory",
                  "misc", "net_cls", "net_prio", "perf_event", "pids", "rdma")
DEFAULT_CONTROLLERS = ("cpu", "memory", "pids")
# The v2 controllers podkit writes limits through.
V2_CONTROLLERS = ("cpu", "memory", "pids")

# v1 reports "no memory limit" as the largest page-aligned counter, not -1.
_V1_MEMORY_UNLIMITED_FLOOR = 1 << 62

_PATH_COMPONENT = re.compile(r"^[A-Za-z0-9_@:+-][A-Za-z0-9_.@:+-]*$")
# Files the kernel puts in every cgroup directory: no cgroup can be named like them.
_CONTROL_FILES = ("tasks", "notify_on_release", "release_agent")
_CONTROL_PREFIXES = V1_CONTROLLERS + ("cgroup", "io")
_SLICE_NAME = re.compile(r"^[A-Za-z0-9_:\\.-]+\.slice$")
# Top directories of a Linux filesystem: a name starting with one is a filesystem path
# given by mistake (/sys/fs/cgroup/memory/x, /tmp/x), not a cgroup path.
_FILESYSTEM_TOPS = ("bin", "boot", "dev", "etc", "home", "lib", "lib64", "media", "mnt", "opt",
                    "proc", "root", "run", "sbin", "srv", "sys", "tmp", "usr", "var")


# ---------------------------------------------------------------------------
# Limits and the kubelet's arithmetic


@dataclass
class CgroupLimits:
    """Limits of one cgroup. None: not managed (left as it is); UNLIMITED: no limit."""

    memory_bytes: Optional[int] = None
    cpu_quota_us: Optional[int] = None
    cpu_period_us: Optional[int] = None
    cpu_shares: Optional[int] = None
    cpu_weight: Optional[int] = None
    pids_max: Optional[int] = None

    def as_dict(self, version: Optional[int] = None) -> Dict[str, Optional[int]]:
        """The DESIGN ``limits`` map: cpu_shares on v1, cpu_weight on v2, both when unknown."""
        result = dict(memory_bytes=self.memory_bytes, cpu_quota_us=self.cpu_quota_us,
                      cpu_period_us=self.cpu_period_us)
        if version in (None, 1):
            result["cpu_shares"] = self.cpu_shares
        if version in (None, 2):
            result["cpu_weight"] = self.cpu_weight
        result["pids_max"] = self.pids_max
        return result

    def managed(self) -> Dict[str, int]:
        """Only the fields that are set."""
        return dict((k, v) for k, v in self.as_dict().items() if v is not None)


def kubelet_shares(millicores: int) -> int:
    """cpu.shares for a CPU request, as the kubelet computes them (MilliCPUToShares)."""
    if not millicores:
        return MIN_SHARES
    shares = millicores * 1024 // 1000
    return max(MIN_SHARES, min(MAX_SHARES, shares))


def shares_millicores(shares: int) -> int:
    """The least CPU request whose ``kubelet_shares`` are ``shares``: the way back from cpu.shares."""
    return -(-shares * 1000 // 1024)


def shares_to_weight(shares: int) -> int:
    """cpu.weight (v2) for cpu.shares (v1), the conversion runc and the kubelet use."""
    shares = max(MIN_SHARES, min(MAX_SHARES, int(shares)))
    return 1 + ((shares - 2) * 9999) // 262142


def weight_to_shares(weight: int) -> int:
    """The least cpu.shares that ``shares_to_weight`` turns into ``weight`` (it is many to one);
    MIN_SHARES for weight 1 or less."""
    if weight <= 1:
        return MIN_SHARES
    return 2 + -(-(weight - 1) * 262142 // 9999)


def cpu_quota(millicores: int, period: int = DEFAULT_PERIOD_US) -> int:
    """CFS quota in µs over ``period`` for a CPU limit in millicores (kubelet: at least 1000)."""
    quota = millicores * period // 1000
    return max(MIN_QUOTA_US, quota)


def quota_millicores(quota: Optional[int], period: Optional[int] = None, nano_cpus: Optional[int] = None) -> Optional[int]:
    """The CPU limit in millicores behind a CFS ``quota`` over ``period`` µs (none: the default period),
    ``cpu_quota``'s way back; Docker's NanoCpus, when set, win. None for no limit (no or a negative quota)."""
    if nano_cpus and nano_cpus > 0:
        return nano_cpus // 1000000
    if quota and quota > 0:
        return quota * 1000 // (period or DEFAULT_PERIOD_US)
    return None


def limits_from(memory_bytes: Optional[int] = None, cpu_millis: Optional[int] = None,
                cpu_request_millis: Optional[int] = None, pids: Optional[int] = None, version: int = 1,
                cpu_shares: Optional[int] = None, period: int = DEFAULT_PERIOD_US) -> CgroupLimits:
    """CgroupLimits from parsed quantities.

    ``cpu_millis`` (a limit) gives the CFS quota; ``cpu_request_millis`` (a request) or an
    explicit ``cpu_shares`` gives cpu.shares on v1 and cpu.weight on v2.
    """
    limits = CgroupLimits(memory_bytes=memory_bytes, pids_max=pids)
    if cpu_millis is not None:
        if cpu_millis == UNLIMITED:
            limits.cpu_quota_us = UNLIMITED
        else:
            limits.cpu_quota_us = cpu_quota(cpu_millis, period)
            limits.cpu_period_us = period
    shares = cpu_shares
    if shares is None and cpu_request_millis is not None:
        shares = kubelet_shares(cpu_request_millis)
    if shares is not None:
        if version == 2:
            limits.cpu_weight = shares_to_weight(shares)
        else:
            limits.cpu_shares = shares
    return limits


def parse_limit_options(memory: object = None, cpus: object = None, cpu_shares: Optional[int] = None,
                        pids_limit: Optional[int] = None) -> Dict[str, Optional[int]]:
    """Module options (memory, cpus, cpu_shares, pids_limit) as keyword arguments of limits_from.

    Every error names the option and says what would be accepted.
    """
    result = dict(memory_bytes=None, cpu_millis=None, cpu_shares=None, pids=None)
    if memory is not None:
        result["memory_bytes"] = parse_memory(memory, "memory")
        if result["memory_bytes"] < MIN_MEMORY_BYTES:
            raise PodkitError("memory: %s is below the 6 MiB the kernel needs for a cgroup; give at least 6Mi."
                              % (memory,))
    if cpus is not None:
        millis = parse_cpu(cpus, "cpus")
        if millis <= 0:
            raise PodkitError("cpus: %s is not a CPU limit; give a positive number of CPUs (0.5, 2) or "
                              "millicores (500m)." % (cpus,))
        result["cpu_millis"] = millis
    if cpu_shares is not None:
        if not MIN_SHARES <= cpu_shares <= MAX_SHARES:
            raise PodkitError("cpu_shares: %d is outside %d..%d, the range of cpu.shares."
                              % (cpu_shares, MIN_SHARES, MAX_SHARES))
        result["cpu_shares"] = cpu_shares
    if pids_limit is not None:
        if pids_limit == 0 or pids_limit < UNLIMITED:
            raise PodkitError("pids_limit: %d is not a process limit; give a positive number, or -1 for "
                              "no limit." % pids_limit)
        result["pids"] = pids_limit
    return result


# ---------------------------------------------------------------------------
# The host


@dataclass
class HostCgroups:
    """How this host's cgroups look: version 1 or 2, Docker's driver, where hierarchies are mounted."""

    version: int
    driver: str
    root: str = CGROUP_ROOT
    # v1: controller (or name=systemd, unified) -> mount directory; v2: {"unified": root}.
    mountpoints: Dict[str, str] = dc_field(default_factory=dict)

    def systemd_running(self) -> bool:
        # The check sd_booted() makes: systemd is PID 1 when this directory exists.
        return os.path.isdir("/run/systemd/system")


def read_mountpoints(mountinfo: str = "/proc/self/mountinfo") -> Tuple[Dict[str, str], Optional[str]]:
    """({controller: mount dir} of the v1 hierarchies, the cgroup2 mount or None)."""
    v1: Dict[str, str] = {}
    unified = None
    try:
        with open(mountinfo) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return v1, None
    for line in lines:
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        rest = right.split()
        if len(fields) < 5 or len(rest) < 3:
            continue
        mount_dir = fields[4].replace("\\040", " ")
        if rest[0] == "cgroup2":
            unified = mount_dir
        elif rest[0] == "cgroup":
            for option in rest[2].split(","):
                if option in V1_CONTROLLERS or option.startswith("name="):
                    v1.setdefault(option, mount_dir)
    return v1, unified


def detect_host(client_or_info: object, mountinfo: str = "/proc/self/mountinfo") -> HostCgroups:
    """The host as the Docker daemon sees it (``docker info``) plus where cgroups are mounted.

    ``client_or_info`` is a docker SDK client or the dict its ``info()`` returns.
    """
    info = client_or_info if isinstance(client_or_info, dict) else client_or_info.info()
    driver = info.get("CgroupDriver") or "cgroupfs"
    version = int(info.get("CgroupVersion") or 1)
    v1, unified = read_mountpoints(mountinfo)
    if version == 2:
        mountpoints = {"unified": unified or CGROUP_ROOT}
        root = mountpoints["unified"]
    else:
        mountpoints = dict(v1)
        if unified:
            mountpoints["unified"] = unified
        root = CGROUP_ROOT
    return HostCgroups(version=version, driver=driver, root=root, mountpoints=mountpoints)


# ---------------------------------------------------------------------------
# Names


def default_parent(pod: str, driver: str) -> str:
    """The DESIGN default: cgroupfs ``/podkit/pod-<pod>``, systemd ``podkit-pod_<pod>.slice``."""
    if driver == "systemd":
        return "podkit-pod_%s.slice" % pod.replace("-", "_")
    return "/podkit/pod-%s" % pod


def _validate_slice(name: str, field: str) -> None:
    if "/" in name:
        raise PodkitError(
            "%s: %r is a path, but the systemd cgroup driver (Docker refuses a path parent there) takes "
            "only a slice unit name such as podkit-pod_foo.slice. Use a *.slice name." % (field, name))
    if not name.endswith(".slice"):
        raise PodkitError(
            "%s: %r is not a slice: with the systemd cgroup driver the cgroup parent is a slice unit "
            "name ending in .slice (for example podkit-pod_foo.slice)." % (field, name))
    stem = name[:-len(".slice")]
    problems = []
    if len(name) > 255:
        problems.append("it is longer than 255 characters")
    if not _SLICE_NAME.match(name):
        problems.append("only letters, digits, ':', '_', '.', '\\' and '-' are allowed")
    if not stem or stem == "-":
        problems.append("it names the root slice")
    elif stem.startswith("-") or stem.endswith("-") or "--" in stem:
        problems.append("each '-' separates a parent slice, so it may not lead, trail or repeat")
    if problems:
        raise PodkitError("%s: %r is not a valid slice unit name: %s. Example: podkit-pod_foo.slice."
                          % (field, name, "; ".join(problems)))


def _validate_path(name: str, host_root: str, field: str) -> None:
    if name.endswith(".slice") and "/" not in name:
        raise PodkitError(
            "%s: %r is a systemd slice, but the cgroupfs driver takes a cgroup path such as /pod-foo "
            "(a slice would only be a directory named like one, with no systemd unit). Use a path." % (field, name))
    parts = name.split("/")
    if ".." in parts:
        raise PodkitError("%s: %r contains '..'; a cgroup parent must stay inside the cgroup tree. "
                          "Give a path such as /pod-foo." % (field, name))
    if name.startswith("/"):
        roots = set([CGROUP_ROOT, host_root.rstrip("/") or "/"])
        for root in roots:
            if name == root or name.startswith(root + "/"):
                raise PodkitError(
                    "%s: %r is a filesystem path; give the cgroup path relative to the cgroup root "
                    "(%s/<controller>), for example /%s." % (field, name, root, parts[-1]))
        first = [p for p in parts if p][:1]
        if first and first[0] in _FILESYSTEM_TOPS:
            raise PodkitError(
                "%s: %r is outside the cgroup root: it looks like a filesystem path. A cgroup parent is "
                "a path inside the cgroup tree, such as /pod-foo or /podkit/pod-foo." % (field, name))
    components = [p for p in parts if p]
    if not components:
        raise PodkitError("%s: %r is the root cgroup; name a cgroup below it, such as /pod-foo." % (field, name))
    for part in components:
        if part == "." or not _PATH_COMPONENT.match(part):
            raise PodkitError(
                "%s: %r has an invalid component %r; use letters, digits, '_', '-', '.', '@', ':' and '+' "
                "(not starting with '.')." % (field, name, part))
        if part in _CONTROL_FILES or ("." in part and part.split(".", 1)[0] in _CONTROL_PREFIXES):
            raise PodkitError(
                "%s: %r has a component %r that is the name of a cgroup control file; choose another name, "
                "such as pod-foo." % (field, name, part))


def validate_name(name: str, host: Optional[HostCgroups] = None, field: str = "name",
                  driver: Optional[str] = None) -> str:
    """Check a cgroup parent name for the host's driver and return its canonical form.

    cgroupfs names are paths; a relative path is taken from the root (``pod-foo`` is
    ``/pod-foo``), and repeated or trailing slashes are dropped. systemd names are slices.
    """
    if name is None or not str(name).strip():
        raise PodkitError("%s: the cgroup parent name is empty; give a path such as /pod-foo (cgroupfs) "
                          "or a slice such as podkit-pod_foo.slice (systemd)." % field)
    name = str(name)
    if name != name.strip() or any(ch.isspace() for ch in name) or "\0" in name:
        raise PodkitError("%s: %r contains whitespace; cgroup names may not." % (field, name))
    driver = driver or (host.driver if host else "cgroupfs")
    if driver == "systemd":
        _validate_slice(name, field)
        return name
    _validate_path(name, host.root if host else CGROUP_ROOT, field)
    return "/" + "/".join(p for p in name.split("/") if p)


def check_parent_form(name: str, field: str = "name") -> None:
    """Check a cgroup parent name before the Docker daemon says which driver applies: valid as the
    form it has (a ``*.slice`` name as a slice, anything else as a path). ``validate_name`` checks it
    against the daemon's driver once one answers."""
    looks_like_slice = isinstance(name, str) and name.endswith(".slice") and "/" not in name
    validate_name(name, None, field, driver="systemd" if looks_like_slice else "cgroupfs")


def validate_controllers(controllers: Optional[List[str]], host: Optional[HostCgroups] = None,
                         field: str = "controllers") -> List[str]:
    """The v1 hierarchies to create in, checked against the kernel's names and the host's mounts."""
    if controllers is None:
        return list(DEFAULT_CONTROLLERS)
    result = []
    for controller in controllers:
        if controller not in V1_CONTROLLERS:
            raise PodkitError("%s: unknown cgroup controller %r; known: %s."
                              % (field, controller, ", ".join(V1_CONTROLLERS)))
        if host is not None and host.version == 1 and controller not in host.mountpoints:
            raise PodkitError("%s: the controller %r is not mounted on this host (mounted: %s)."
                              % (field, controller, ", ".join(sorted(host.mountpoints))))
        if controller not in result:
            result.append(controller)
    return result


def slice_cgroup_path(name: str) -> str:
    """Where systemd puts a slice: ``podkit-pod_foo.slice`` -> ``/podkit.slice/podkit-pod_foo.slice``."""
    stem = name[:-len(".slice")]
    if stem in ("", "-"):
        return "/"
    pieces = stem.split("-")
    path = []
    for i in range(1, len(pieces) + 1):
        path.append("-".join(pieces[:i]) + ".slice")
    return "/" + "/".join(path)


def _percent(quota: int, period: int) -> str:
    # systemd reads CPUQuota= as a percentage with up to two decimals.
    hundredths = (quota * 10000 + period // 2) // period
    if hundredths % 100 == 0:
        return "%d%%" % (hundredths // 100)
    return ("%d.%02d" % (hundredths // 100, hundredths % 100)).rstrip("0") + "%"


def slice_properties(limits: CgroupLimits) -> List[Tuple[str, str]]:
    """The systemd properties (name, value) that carry ``limits`` on a slice."""
    props: List[Tuple[str, str]] = []
    if limits.memory_bytes is not None:
        props.append(("MemoryAccounting", "yes"))
        props.append(("MemoryMax", "infinity" if limits.memory_bytes == UNLIMITED else str(limits.memory_bytes)))
    if limits.cpu_quota_us is not None or limits.cpu_weight is not None or limits.cpu_shares is not None:
        props.append(("CPUAccounting", "yes"))
    if limits.cpu_quota_us is not None:
        if limits.cpu_quota_us == UNLIMITED:
            props.append(("CPUQuota", ""))
        else:
            period = limits.cpu_period_us or DEFAULT_PERIOD_US
            props.append(("CPUQuota", _percent(limits.cpu_quota_us, period)))
            if period != DEFAULT_PERIOD_US:
                props.append(("CPUQuotaPeriodSec", "%dus" % period))
    weight = limits.cpu_weight
    if weight is None and limits.cpu_shares is not None:
        weight = shares_to_weight(limits.cpu_shares)
    if weight is not None:
        props.append(("CPUWeight", str(weight)))
    if limits.pids_max is not None:
        props.append(("TasksAccounting", "yes"))
        props.append(("TasksMax", "infinity" if limits.pids_max == UNLIMITED else str(limits.pids_max)))
    return props


def render_slice_unit(name: str, limits: CgroupLimits) -> str:
    """The unit file for a pod slice carrying ``limits``."""
    lines = [
        "# Managed by podkit.docker.cgroup_parent; local changes are overwritten.",
        "[Unit]",
        "Description=podkit pod cgroup parent %s" % name,
        "Before=slices.target",
        "",
        "[Slice]",
    ]
    lines.extend("%s=%s" % (key, value) for key, value in slice_properties(limits))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Readers for any cgroup directory


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (OSError, IOError):
        return None


def _read_int(path: str) -> Optional[int]:
    text = _read(path)
    if text is None or text in ("", "max"):
        return None
    try:
        return int(text.split()[0])
    except ValueError:
        return None


def _v2_dir(paths: Dict[str, str]) -> Optional[str]:
    return paths.get("unified") or paths.get("") or next(iter(paths.values()), None)


def read_limits(paths: Dict[str, str], version: int) -> Dict[str, Optional[int]]:
    """The limits of a cgroup (pod or container): None where unlimited, unreadable or missing."""
    limits = CgroupLimits()
    if version == 2:
        base = _v2_dir(paths)
        if base:
            limits.memory_bytes = _read_int(os.path.join(base, "memory.max"))
            cpu_max = _read(os.path.join(base, "cpu.max"))
            if cpu_max:
                quota, _sep, period = cpu_max.partition(" ")
                limits.cpu_quota_us = None if quota == "max" else int(quota)
                limits.cpu_period_us = int(period) if period else None
            limits.cpu_weight = _read_int(os.path.join(base, "cpu.weight"))
            limits.pids_max = _read_int(os.path.join(base, "pids.max"))
        return limits.as_dict(2)
    if paths.get("memory"):
        memory = _read_int(os.path.join(paths["memory"], "memory.limit_in_bytes"))
        limits.memory_bytes = None if memory is None or memory >= _V1_MEMORY_UNLIMITED_FLOOR else memory
    if paths.get("cpu"):
        quota = _read_int(os.path.join(paths["cpu"], "cpu.cfs_quota_us"))
        limits.cpu_quota_us = None if quota is None or quota < 0 else quota
        limits.cpu_period_us = _read_int(os.path.join(paths["cpu"], "cpu.cfs_period_us"))
        limits.cpu_shares = _read_int(os.path.join(paths["cpu"], "cpu.shares"))
    if paths.get("pids"):
        limits.pids_max = _read_int(os.path.join(paths["pids"], "pids.max"))
    return limits.as_dict(1)


def read_usage(paths: Dict[str, str], version: int) -> Dict[str, Optional[int]]:
    """Current usage of a cgroup: {memory_bytes}, None where it cannot be read."""
    if version == 2:
        base = _v2_dir(paths)
        return dict(memory_bytes=_read_int(os.path.join(base, "memory.current")) if base else None)
    base = paths.get("memory")
    return dict(memory_bytes=_read_int(os.path.join(base, "memory.usage_in_bytes")) if base else None)


def cgroup_dirs_for_pid(pid: int, host: HostCgroups, proc: str = "/proc") -> Dict[str, str]:
    """{controller: absolute directory} of process ``pid``; {} when it is gone."""
    entries = read_proc_cgroup(pid, proc)
    result = {}
    if host.version == 2:
        if "" in entries:
            result["unified"] = _join(host.mountpoints.get("unified", host.root), entries[""])
        return result
    for controller, path in entries.items():
        key = "unified" if controller == "" else controller
        mount = host.mountpoints.get(key)
        if mount:
            result[key] = _join(mount, path)
    return result


def _join(mount: str, path: str) -> str:
    return os.path.normpath(mount + "/" + path.lstrip("/"))


def _procs_below(directory: str) -> List[int]:
    """PIDs in ``directory`` and every cgroup below it."""
    pids = set()
    for dirpath, _dirs, _files in os.walk(directory):
        text = _read(os.path.join(dirpath, "cgroup.procs"))
        if text:
            pids.update(int(p) for p in text.split())
    return sorted(pids)


def _refuse_if_busy(name: str, directories: List[str]) -> None:
    pids = set()
    for directory in directories:
        pids.update(_procs_below(directory))
    if pids:
        described = ", ".join("%d (%s)" % (pid, read_cmdline(pid) or "?") for pid in sorted(pids)[:20])
        more = "" if len(pids) <= 20 else " and %d more" % (len(pids) - 20)
        raise PodkitError(
            "cgroup %s still has processes: %s%s. Stop or remove the containers in it "
            "(docker ps --filter label=io.podkit.pod) before removing it." % (name, described, more),
            pids=sorted(pids))


def _rmdir_tree(directory: str) -> None:
    """Remove a cgroup and the empty cgroups below it, deepest first."""
    found = []
    for dirpath, _dirs, _files in os.walk(directory):
        found.append(dirpath)
    for path in sorted(found, key=lambda p: p.count("/"), reverse=True):
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise PodkitError("cgroup %s: could not remove %s (%s); a process may have joined it meanwhile."
                              % (directory, path, exc.strerror))


def _differs(wanted: Optional[int], observed: Optional[int]) -> bool:
    if wanted is None:
        return False
    if wanted == UNLIMITED:
        return observed is not None
    return wanted != observed


def changed_fields(wanted: CgroupLimits, observed: Dict[str, Optional[int]]) -> List[str]:
    """The limits ``ensure`` would write: those ``wanted`` manages that ``observed`` (as read) does not hold."""
    return [key for key, value in wanted.as_dict().items()
            if key in observed and _differs(value, observed.get(key))]


def _predict(observed: Dict[str, Optional[int]], wanted: CgroupLimits) -> Dict[str, Optional[int]]:
    result = dict(observed)
    for key in changed_fields(wanted, observed):
        value = getattr(wanted, key)
        result[key] = None if value == UNLIMITED else value
    return result


def _write_error(name: str, filename: str, value: object, exc: OSError, usage: Optional[int] = None) -> PodkitError:
    if exc.errno == errno.EBUSY and filename.startswith("memory"):
        return PodkitError(
            "memory: cannot lower the limit of cgroup %s to %s bytes: its processes use %s bytes and the "
            "kernel could not reclaim enough. Stop some of them or choose a higher limit."
            % (name, value, usage if usage is not None else "more"))
    if exc.errno == errno.EINVAL and filename.startswith("cpu"):
        return PodkitError(
            "cpus: the kernel refused %s=%s for cgroup %s (%s); a CPU quota may not be smaller than one "
            "of a cgroup inside it, or than 1ms." % (filename, value, name, exc.strerror))
    return PodkitError("cgroup %s: writing %s=%s failed: %s" % (name, filename, value, exc.strerror))


# ---------------------------------------------------------------------------
# Backends


class CgroupBackend:
    """One way of making a cgroup parent. Subclasses: V1Backend, V2Backend, SystemdBackend."""

    def __init__(self, host: HostCgroups, controllers: Optional[List[str]] = None) -> None:
        self.host = host
        self.controllers = list(controllers or DEFAULT_CONTROLLERS)

    def docker_cgroup_parent(self, name: str) -> str:
        """What to pass as Docker's --cgroup-parent for ``name``."""
        return name

    def paths(self, name: str) -> Dict[str, str]:
        """{controller: directory} for every directory of ``name`` that exists."""
        raise NotImplementedError

    def _structure(self, name: str, paths: Dict[str, str]) -> Dict[str, object]:
        return dict(name=name, driver=self.host.driver, version=self.host.version,
                    docker_cgroup_parent=self.docker_cgroup_parent(name), paths=paths,
                    limits=read_limits(paths, self.host.version))

    def observe(self, name: str) -> Optional[Dict[str, object]]:
        """The DESIGN ``cgroup`` structure of ``name``, or None when it exists nowhere."""
        paths = self.paths(name)
        if not paths:
            return None
        return self._structure(name, paths)

    def ensure(self, name: str, limits: CgroupLimits,
               check_mode: bool = False) -> Tuple[bool, Optional[Dict[str, object]], Dict[str, object]]:
        """Create ``name`` if needed and set ``limits`` in place. Returns (changed, before, after)."""
        raise NotImplementedError

    def remove(self, name: str, check_mode: bool = False) -> bool:
        """Remove ``name`` everywhere it exists; refuses while processes remain."""
        paths = self.paths(name)
        if not paths:
            return False
        _refuse_if_busy(name, list(paths.values()))
        if not check_mode:
            for directory in paths.values():
                _rmdir_tree(directory)
        return True


class V1Backend(CgroupBackend):
    """cgroup v1 with Docker's cgroupfs driver: one directory per hierarchy, through cgroupspy."""

    def _dir(self, key: str, name: str) -> str:
        return _join(self.host.mountpoints[key], name)

    def paths(self, name):
        result = {}
        for key in sorted(self.host.mountpoints):
            directory = self._dir(key, name)
            if os.path.isdir(directory):
                result[key] = directory
        return result

    def _wanted_paths(self, name: str) -> Dict[str, str]:
        return dict((c, self._dir(c, name)) for c in self.controllers if c in self.host.mountpoints)

    def _node(self, controller, name):
        """The cgroupspy node of ``name`` in ``controller``'s hierarchy, created with its ancestors."""
        mount = self.host.mountpoints[controller]
        # cgroupspy picks a node's controller class from the hierarchy directory's name.
        root = Node(os.path.dirname(mount).encode())
        node = Node(os.path.basename(mount).encode(), parent=root)
        for part in [p for p in name.split("/") if p]:
            parent_path = node.full_path
            if os.path.isdir(os.path.join(parent_path, part.encode())):
                node = Node(part.encode(), parent=node)
            else:
                node = node.create_cgroup(part)
                if controller == "cpuset":
                    self._inherit_cpuset(parent_path, node.full_path)
        return node

    @staticmethod
    def _inherit_cpuset(parent, child):
        # A new v1 cpuset cgroup starts with no CPUs and no memory nodes, and no task may
        # join it until both are set; copy them from the parent as runc does.
        for filename in (b"cpuset.cpus", b"cpuset.mems"):
            value = _read(os.path.join(parent, filename).decode())
            if value:
                with open(os.path.join(child, filename), "w") as handle:
                    handle.write(value)

    def _write(self, name, node, filename, value):
        usage = None
        try:
            controller = node.controller
            if filename == "memory.limit_in_bytes":
                usage = _read_int(os.path.join(node.full_path.decode(), "memory.usage_in_bytes"))
                controller.limit_in_bytes = value
            elif filename == "cpu.cfs_period_us":
                controller.cfs_period_us = value
            elif filename == "cpu.cfs_quota_us":
                controller.cfs_quota_us = value
            elif filename == "cpu.shares":
                controller.shares = value
            else:
                # cgroupspy has no pids controller class; write the file beside the node.
                with open(os.path.join(node.full_path, filename.encode()), "w") as handle:
                    handle.write(str(value))
        except OSError as exc:
            raise _write_error(name, filename, value, exc, usage)

    def ensure(self, name, limits, check_mode=False):
        before = self.observe(name)
        wanted_paths = self._wanted_paths(name)
        observed = before["limits"] if before else read_limits({}, 1)
        missing = [c for c, d in wanted_paths.items() if not os.path.isdir(d)]
        # Limits only apply where their hierarchy is managed.
        managed = dict(memory_bytes="memory", cpu_quota_us="cpu", cpu_period_us="cpu", cpu_shares="cpu",
                       pids_max="pids")
        for key, controller in managed.items():
            if getattr(limits, key) is not None and controller not in wanted_paths:
                raise PodkitError("controllers: %s needs the %s controller; add it to controllers."
                                  % (key, controller))
        if before is None:
            # A fresh cgroup inherits no limits: report what the kernel starts with.
            observed = dict(memory_bytes=None, cpu_quota_us=None, cpu_period_us=DEFAULT_PERIOD_US,
                            cpu_shares=1024, pids_max=None)
        changes = changed_fields(limits, observed)
        if not missing and not changes:
            return False, before, before
        if check_mode:
            after = self._structure(name, dict(before["paths"] if before else {}, **wanted_paths))
            after["limits"] = _predict(observed, limits)
            return True, before, after
        try:
            nodes = dict((c, self._node(c, name)) for c in wanted_paths)
        except OSError as exc:
            raise PodkitError("cgroup %s: could not create it (%s: %s). Run as root on the Docker host, with the "
                              "cgroup hierarchies mounted read-write." % (name, os.fsdecode(exc.filename or ""), exc.strerror))
        order = [("memory_bytes", "memory", "memory.limit_in_bytes"),
                 # A quota is checked against the current period, so set the period first.
                 ("cpu_period_us", "cpu", "cpu.cfs_period_us"),
                 ("cpu_quota_us", "cpu", "cpu.cfs_quota_us"),
                 ("cpu_shares", "cpu", "cpu.shares"),
                 ("pids_max", "pids", "pids.max")]
        for key, controller, filename in order:
            if key in changes:
                value = getattr(limits, key)
                if key == "pids_max" and value == UNLIMITED:
                    value = "max"
                self._write(name, nodes[controller], filename, value)
        return True, before, self.observe(name)


class V2Backend(CgroupBackend):
    """cgroup v2 with Docker's cgroupfs driver: one directory, controllers enabled from the root down."""

    def paths(self, name):
        directory = _join(self.host.mountpoints.get("unified", self.host.root), name)
        return {"unified": directory} if os.path.isdir(directory) else {}

    def _enable_controllers(self, name):
        # A v2 controller's files appear in a cgroup only when every ancestor lists it in
        # cgroup.subtree_control.
        root = self.host.mountpoints.get("unified", self.host.root)
        parts = [p for p in name.split("/") if p]
        current = root
        for part in parts:
            control = os.path.join(current, "cgroup.subtree_control")
            enabled = (_read(control) or "").split()
            available = (_read(os.path.join(current, "cgroup.controllers")) or "").split()
            wanted = [c for c in V2_CONTROLLERS if c in available and c not in enabled]
            if wanted:
                with open(control, "w") as handle:
                    handle.write(" ".join("+" + c for c in wanted))
            current = os.path.join(current, part)
            if not os.path.isdir(current):
                try:
                    os.mkdir(current)
                except FileExistsError:
                    pass    # another pod's run (podkit.docker.pods converges pods in parallel) made it meanwhile

    def ensure(self, name, limits, check_mode=False):
        before = self.observe(name)
        observed = before["limits"] if before else dict(memory_bytes=None, cpu_quota_us=None,
                                                        cpu_period_us=DEFAULT_PERIOD_US, cpu_weight=100,
                                                        pids_max=None)
        if limits.cpu_shares is not None and limits.cpu_weight is None:
            limits = CgroupLimits(**dict(limits.__dict__, cpu_shares=None, cpu_weight=shares_to_weight(limits.cpu_shares)))
        changes = changed_fields(limits, observed)
        changed = before is None or bool(changes)
        if check_mode or not changed:
            if check_mode:
                after = self._structure(name, {"unified": _join(self.host.mountpoints.get("unified", self.host.root), name)})
                after["limits"] = _predict(observed, limits)
            else:
                after = before
            return changed, before, after
        try:
            self._enable_controllers(name)
        except OSError as exc:
            raise PodkitError("cgroup %s: could not create it or enable its controllers: %s" % (name, exc))
        directory = self.paths(name)["unified"]
        for filename, value in v2_writes(limits, observed, changes):
            try:
                with open(os.path.join(directory, filename), "w") as handle:
                    handle.write(value)
            except OSError as exc:
                raise _write_error(name, filename, value, exc, _read_int(os.path.join(directory, "memory.current")))
        return True, before, self.observe(name)


def v2_writes(limits: CgroupLimits, observed: Dict[str, Optional[int]], changes: List[str]) -> List[Tuple[str, str]]:
    """The (file, value) writes that bring a v2 cgroup from ``observed`` to ``limits``."""
    writes = []
    if "memory_bytes" in changes:
        writes.append(("memory.max", "max" if limits.memory_bytes == UNLIMITED else str(limits.memory_bytes)))
    if "cpu_quota_us" in changes or "cpu_period_us" in changes:
        period = limits.cpu_period_us or observed.get("cpu_period_us") or DEFAULT_PERIOD_US
        quota = limits.cpu_quota_us if limits.cpu_quota_us is not None else observed.get("cpu_quota_us")
        writes.append(("cpu.max", "%s %d" % ("max" if quota in (None, UNLIMITED) else quota, period)))
    if "cpu_weight" in changes:
        writes.append(("cpu.weight", str(limits.cpu_weight)))
    if "pids_max" in changes:
        writes.append(("pids.max", "max" if limits.pids_max == UNLIMITED else str(limits.pids_max)))
    return writes


class SystemdBackend(CgroupBackend):
    """Docker's systemd driver (v2 or v1): a slice unit whose limits systemd applies and keeps."""

    def __init__(self, host: HostCgroups, controllers: Optional[List[str]] = None,
                 unit_dir: str = SYSTEMD_UNIT_DIR) -> None:
        super(SystemdBackend, self).__init__(host, controllers)
        self.unit_dir = unit_dir

    def unit_path(self, name: str) -> str:
        return os.path.join(self.unit_dir, name)

    def paths(self, name):
        relative = slice_cgroup_path(name)
        if self.host.version == 2:
            directory = _join(self.host.mountpoints.get("unified", self.host.root), relative)
            return {"unified": directory} if os.path.isdir(directory) else {}
        result = {}
        for key in sorted(self.host.mountpoints):
            directory = _join(self.host.mountpoints[key], relative)
            if os.path.isdir(directory):
                result[key] = directory
        return result

    def observe(self, name):
        paths = self.paths(name)
        if not paths and not os.path.exists(self.unit_path(name)):
            return None
        return self._structure(name, paths)

    def _systemctl(self, *args):
        try:
            proc = subprocess.run(("systemctl",) + args, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise PodkitError("driver: systemd, but systemctl cannot be run (%s)." % exc)
        if proc.returncode != 0:
            raise PodkitError("systemctl %s failed: %s" % (" ".join(args), (proc.stderr or proc.stdout).strip()))

    def ensure(self, name, limits, check_mode=False):
        if self.host.version == 2 and limits.cpu_shares is not None and limits.cpu_weight is None:
            limits = CgroupLimits(**dict(limits.__dict__, cpu_shares=None, cpu_weight=shares_to_weight(limits.cpu_shares)))
        before = self.observe(name)
        unit = render_slice_unit(name, limits)
        current = _read(self.unit_path(name))
        unit_changed = current is None or current.strip() != unit.strip()
        observed = before["limits"] if before else CgroupLimits().as_dict(self.host.version)
        changes = changed_fields(limits, observed) if before and before["paths"] else list(limits.managed())
        changed = unit_changed or bool(changes) or not (before and before["paths"])
        if not changed:
            return False, before, before
        if check_mode:
            after = self._structure(name, before["paths"] if before else {})
            after["limits"] = _predict(observed, limits)
            return True, before, after
        if unit_changed:
            try:
                with open(self.unit_path(name), "w") as handle:
                    handle.write(unit)
            except OSError as exc:
                raise PodkitError("cgroup %s: cannot write %s: %s" % (name, self.unit_path(name), exc.strerror))
            self._systemctl("daemon-reload")
        self._systemctl("start", name)
        # An active slice keeps its old limits after a reload; apply them live as well.
        props = ["%s=%s" % kv for kv in slice_properties(limits)]
        if props:
            self._systemctl("set-property", "--runtime", name, *props)
        return True, before, self.observe(name)

    def remove(self, name, check_mode=False):
        paths = self.paths(name)
        unit = os.path.exists(self.unit_path(name))
        if not paths and not unit:
            return False
        _refuse_if_busy(name, list(paths.values()))
        if not check_mode:
            if paths:
                self._systemctl("stop", name)
            # ensure's set-property --runtime left drop-ins under /run/systemd/system.control;
            # left there, they would give a later slice of the same name the old limits.
            # revert removes them (and keeps the unit file, which has no vendor version).
            self._systemctl("revert", name)
            if unit:
                os.unlink(self.unit_path(name))
                self._systemctl("daemon-reload")
        return True


def backend_for(host: HostCgroups, controllers: Optional[List[str]] = None, read_only: bool = False) -> CgroupBackend:
    """The backend for the host's Docker cgroup driver and cgroup version.

    ``read_only``: for reading paths only (facts), so neither cgroupspy nor a running systemd is needed.
    """
    if read_only:
        if host.driver == "systemd":
            return SystemdBackend(host, controllers)
        return V2Backend(host, controllers) if host.version == 2 else V1Backend(host, controllers)
    if host.driver == "systemd":
        if not host.systemd_running():
            raise PodkitError(
                "driver: systemd, but systemd is not running on this host (no /run/systemd/system), so no "
                "slice can be made. Use driver: cgroupfs (or auto) and a path such as /pod-foo.")
        return SystemdBackend(host, controllers)
    if host.version == 2:
        return V2Backend(host, controllers)
    if not HAS_CGROUPSPY:
        raise PodkitError("the cgroupspy Python library is needed for cgroup v1 hosts; install it "
                          "(pip install cgroupspy) for the Python Ansible uses.")
    return V1Backend(host, controllers)


# ---------------------------------------------------------------------------
# A pod's cgroup parent under its containers


# Limits a child cgroup may not exceed (the CFS quota) or that cannot drop below usage (memory):
# raised before the members are recreated, lowered only after.
_ORDERED_LIMITS = ("memory_bytes", "cpu_quota_us")


def _unbounded(value: Optional[int]) -> float:
    return float("inf") if value is None or value < 0 else value


def split_limits(limits: CgroupLimits,
                 observed: Dict[str, Optional[int]]) -> Tuple[CgroupLimits, Optional[CgroupLimits]]:
    """(what to write before the members change, what to write after): raise first, lower last."""
    first = CgroupLimits(**limits.__dict__)
    lowering = False
    for key in _ORDERED_LIMITS:
        wanted = getattr(limits, key)
        if wanted is not None and _unbounded(wanted) < _unbounded(observed.get(key)):
            setattr(first, key, None)
            lowering = True
    if lowering and first.cpu_quota_us is None:
        first.cpu_period_us = None
    return first, (limits if lowering else None)


def foreign_processes(cgroup: Optional[Dict[str, object]], container_ids: List[str]) -> List[int]:
    """PIDs in a pod's cgroup parent that are not in the cgroup of one of ``container_ids``."""
    if not cgroup:
        return []
    pids = set()
    for directory in (cgroup.get("paths") or {}).values():
        for dirpath, dirnames, _files in os.walk(directory):
            if dirpath != directory and any(cid in os.path.basename(dirpath) for cid in container_ids):
                dirnames[:] = []
                continue
            text = _read(os.path.join(dirpath, "cgroup.procs"))
            try:
                pids.update(int(p) for p in (text or "").split())
            except ValueError:
                continue
    return sorted(pids)


# ---------------------------------------------------------------------------
# The cgroup_parent module


def check_cgroup_options(params: Dict[str, object]) -> Dict[str, Optional[int]]:
    """Everything a user can get wrong in cgroup_parent's options, checked before the host is touched."""
    validate_controllers(params.get("controllers"))
    return parse_limit_options(params.get("memory"), params.get("cpus"), params.get("cpu_shares"),
                               params.get("pids_limit"))


def check_cgroup_parent(params: Dict[str, object]) -> None:
    """cgroup_parent's options, checked before the engine is asked which driver applies: the limits, the
    controllers and the name (against the given driver, or with ``auto`` as the form it has)."""
    check_cgroup_options(params)
    driver = params.get("driver") or "auto"
    if driver == "auto":
        check_parent_form(params["name"], "name")
    else:
        validate_name(params["name"], None, "name", driver=str(driver))


def converge_cgroup_parent(client: object, params: Dict[str, object], check_mode: bool,
                           diff: bool = False) -> Dict[str, object]:
    """podkit.docker.cgroup_parent: one cgroup parent made, updated or removed."""
    wanted = check_cgroup_options(params)
    host = detect_host(client)
    driver = params.get("driver") or "auto"
    name = validate_name(params["name"], host, "name", driver=host.driver if driver == "auto" else driver)
    if driver != "auto" and driver != host.driver:
        if driver == "systemd" and not host.systemd_running():
            raise PodkitError(
                "driver: systemd, but systemd is not running on this host (no /run/systemd/system), so no "
                "slice can be made; the Docker daemon here uses the %s driver. Use driver: auto." % host.driver)
        raise PodkitError(
            "driver: %s, but the Docker daemon uses the %s cgroup driver, so its containers could not join "
            "this parent. Use driver: auto (or %s)." % (driver, host.driver, host.driver))
    controllers = validate_controllers(params.get("controllers"), host)
    if host.version == 1 and not HAS_CGROUPSPY and host.driver == "cgroupfs":
        raise MissingLibrary("cgroupspy", CGROUPSPY_IMPORT_ERROR)
    backend = backend_for(host, controllers)
    result = dict(changed=False, cgroup=None)
    if params.get("state") == "absent":
        before = backend.observe(name)
        result["changed"] = backend.remove(name, check_mode)
        if diff:
            result["diff"] = dict(before=_diff_view(before), after={})
        return result
    changed, before, after = backend.ensure(name, limits_from(version=host.version, **wanted), check_mode)
    result.update(changed=changed, cgroup=after)
    if diff:
        result["diff"] = dict(before=_diff_view(before), after=_diff_view(after))
    return result


def _diff_view(cgroup):
    if not cgroup:
        return {}
    return dict(name=cgroup["name"], paths=cgroup["paths"], limits=cgroup["limits"])
