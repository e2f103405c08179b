# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a pod is on this host, read from Docker, /proc and cgroupfs: facts and a picture.

Three steps, each usable on its own:

- ``list_containers`` asks Docker once for the containers (one list call, then the
  inspect data of the ones that matter: only inspect carries HostConfig).
- ``group_containers`` sorts inspect data into pods: by podkit's labels, and, on
  request, by who joins whose namespaces (``container:<id>`` network/IPC/PID modes)
  for pods made by hand. Pure logic, no I/O.
- ``pod_entry`` reads the kernel's view of one group: PIDs, namespace inodes, cgroup
  paths, limits and usage. ``render_tree`` draws the result for a person.

``pod_facts(client, host, pod, containers)`` is the one call the pod module makes to
return a ``pod`` equal to an entry of ``podkit_pods``; ``container_summary`` is the container
pod_sandbox and pod_container return.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from ansible_collections.podkit.docker.plugins.module_utils._cgroups import (
    DEFAULT_PERIOD_US, MIN_SHARES, backend_for, cgroup_dirs_for_pid, detect_host, kubelet_shares, quota_millicores, read_limits,
    read_usage, shares_to_weight)
from ansible_collections.podkit.docker.plugins.module_utils._docker import Container, DockerError, inspect_listed, list_pod_containers
from ansible_collections.podkit.docker.plugins.module_utils._errors import MissingLibrary, PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._labels import (
    LABEL_CONTAINER, LABEL_NAMESPACE, LABEL_POD, LABEL_QOS, LABEL_ROLE, QOS_CLASSES, ROLE_INIT, ROLE_MEMBER, ROLE_SANDBOX,
    ROLE_UNMANAGED)
from ansible_collections.podkit.docker.plugins.module_utils._namespaces import (
    SHAREABLE, read_cmdline, read_namespaces, read_proc_cgroup)
from ansible_collections.podkit.docker.plugins.module_utils._status import (
    annotate, container_suffix, guard_line, read_guard_status)

# Docker's HostConfig fields that join another container's namespace, in the order used to
# find the container that owns a hand-made pod's namespaces.
JOIN_MODES = (("net", "NetworkMode"), ("ipc", "IpcMode"), ("pid", "PidMode"))

# The order shared namespaces are listed in: the pod's own first, as pod_container lists them.
SHARE_ORDER = ("net", "ipc", "pid", "uts", "mnt", "cgroup", "user", "time")

# Hierarchies whose cgroup.procs lists a container's processes, best first.
_PROCS_FROM = ("pids", "memory", "cpu", "unified", "name=systemd")
# Processes drawn under one container in the tree; the facts keep them all.
TREE_PROCESSES = 8
TREE_COMMAND_WIDTH = 100

KIB = 1024
MIB = KIB * 1024
GIB = MIB * 1024


# ---------------------------------------------------------------------------
# Asking Docker (a SocketApi or an SdkApi from _docker.connect)


def host_facts(info: Dict[str, Any]) -> Dict[str, Any]:
    """``podkit_host`` from ``docker info``."""
    return dict(
        docker_version=info.get("ServerVersion"),
        cgroup_version=int(info.get("CgroupVersion") or 1),
        cgroup_driver=info.get("CgroupDriver"),
        kernel=info.get("KernelVersion") or os.uname()[2],
    )


def list_containers(client: Any, names: Optional[List[str]] = None,
                    include_unmanaged: bool = False) -> List[Dict[str, Any]]:
    """Inspect data of the containers that may belong to a pod in ``names`` (None: every pod).

    One list call; only the containers that can belong to a wanted pod are inspected.
    """
    wanted = set(names) if names else None
    # Unmanaged groups are named after a container only known after grouping; keep them all.
    summaries = [s for s in list_pod_containers(client.api, include_unmanaged=include_unmanaged)
                 if wanted is None or (s.get("Labels") or {}).get(LABEL_POD) in wanted | {None}]
    return inspect_listed(client.api, summaries)


# ---------------------------------------------------------------------------
# Grouping (pure)


@dataclass
class PodGroup:
    """The containers of one pod, before reading the kernel."""
    name: str
    managed: bool
    sandbox: Optional[Dict[str, Any]] = None
    # (key in ``containers``, role, inspect data)
    members: List[Any] = field(default_factory=list)


def joined(attrs: Dict[str, Any]) -> Dict[str, str]:
    """{namespace type: reference} for every ``container:<ref>`` mode of a container."""
    host_config = Container(attrs).host_config
    result = {}
    for ns, key in JOIN_MODES:
        mode = host_config.get(key) or ""
        if mode.startswith("container:"):
            result[ns] = mode[len("container:"):]
    return result


def _resolver(containers: List[Dict[str, Any]]) -> Any:
    by_id = dict((c["Id"], c) for c in containers)
    by_name = dict((Container(c).name, c) for c in containers)

    def resolve(ref):
        # Docker stores the id it resolved, but accepts names and id prefixes on the CLI.
        found = by_id.get(ref) or by_name.get(ref.lstrip("/"))
        if found is None and len(ref) >= 4:
            matches = [c for i, c in by_id.items() if i.startswith(ref)]
            found = matches[0] if len(matches) == 1 else None
        return found
    return resolve


def _pick_sandbox(candidates: List[Dict[str, Any]]) -> Dict[str, Any]:
    # During a recreation two sandboxes may exist for a moment: the running, newest one counts.
    return sorted(candidates, key=lambda c: (bool(Container(c).state.get("Running")), c.get("Created") or ""))[-1]


def group_containers(containers: List[Any], include_unmanaged: bool = False) -> Dict[str, PodGroup]:
    """Sort inspect data into pods, keyed by pod name.

    A podkit pod is every container labelled ``io.podkit.pod=<pod>``. With
    ``include_unmanaged``, containers without that label that join another container's
    namespaces form a pod named after the container at the end of the chain (the one
    owning the namespaces, the article's ``foo_sandbox``); one that joins a podkit pod's
    container is reported in that pod with the role ``unmanaged``.
    """
    containers = [getattr(c, "attrs", c) for c in containers]     # an SDK model or the dict
    pods: Dict[str, PodGroup] = {}
    sandboxes: Dict[str, List[Dict[str, Any]]] = {}
    for attrs in containers:
        labels = Container(attrs).labels
        pod = labels.get(LABEL_POD)
        if pod is None:
            continue
        group = pods.setdefault(pod, PodGroup(name=pod, managed=True))
        role = labels.get(LABEL_ROLE) or ROLE_MEMBER
        if role == ROLE_SANDBOX:
            sandboxes.setdefault(pod, []).append(attrs)
            continue
        key = labels.get(LABEL_CONTAINER) or _strip_prefix(Container(attrs).name, pod)
        group.members.append((key, role, attrs))
    for pod, candidates in sandboxes.items():
        chosen = _pick_sandbox(candidates)
        pods[pod].sandbox = chosen
        for other in candidates:
            if other is not chosen:
                pods[pod].members.append((Container(other).name, ROLE_SANDBOX, other))
    if include_unmanaged:
        _group_unmanaged(containers, pods)
    for group in pods.values():
        group.members.sort(key=_member_order)
    return pods


def _strip_prefix(name: str, pod: str) -> str:
    prefix = pod + "_"
    return name[len(prefix):] if name.startswith(prefix) else name


def _member_order(member):
    # Init containers first (they ran first), then members by name, as a reader expects.
    key, role, _attrs_ = member
    order = {ROLE_INIT: 0, ROLE_MEMBER: 1, ROLE_UNMANAGED: 2}.get(role, 3)
    return (order, key)


def _group_unmanaged(containers: List[Dict[str, Any]], pods: Dict[str, PodGroup]) -> None:
    resolve = _resolver(containers)
    for attrs in containers:
        if LABEL_POD in Container(attrs).labels or not joined(attrs):
            continue
        root, ref = _owner(attrs, resolve)
        if root is None:
            # The owner is gone (removed while this one stayed): a pod named after the reference.
            name = ref[:12]
            group = pods.setdefault(name, PodGroup(name=name, managed=False))
        elif LABEL_POD in Container(root).labels:
            group = pods.setdefault(Container(root).labels[LABEL_POD], PodGroup(name=Container(root).labels[LABEL_POD], managed=True))
            group.members.append((Container(attrs).name, ROLE_UNMANAGED, attrs))
            continue
        else:
            name = Container(root).name
            group = pods.get(name)
            if group is None or group.managed:
                # A podkit pod may not share a name with a hand-made one; podkit's wins the key.
                if group is not None:
                    name = "%s (unmanaged)" % name
                group = pods.setdefault(name, PodGroup(name=name, managed=False, sandbox=root))
        group.members.append((Container(attrs).name, ROLE_MEMBER, attrs))


def _owner(attrs, resolve):
    """Follow ``container:`` references to the container that joins nobody: (owner or None, last ref)."""
    seen = set([attrs["Id"]])
    current = attrs
    ref = ""
    while True:
        refs = joined(current)
        if not refs:
            return current, ref
        ref = next(refs[ns] for ns, _key in JOIN_MODES if ns in refs)
        target = resolve(ref)
        if target is None:
            return None, ref
        if target["Id"] in seen:
            # A cycle cannot be built through Docker, but never loop on odd data.
            return current, ref
        seen.add(target["Id"])
        current = target


# ---------------------------------------------------------------------------
# QoS (pure)


def _cpu_limit_millis(host_config: Dict[str, Any]) -> Optional[int]:
    return quota_millicores(host_config.get("CpuQuota"), host_config.get("CpuPeriod"), host_config.get("NanoCpus"))


def observed_qos_class(sandbox: Optional[Dict[str, Any]], members: List[Dict[str, Any]]) -> str:
    """The pod's Kubernetes QoS class.

    The ``io.podkit.qos-class`` label, set by the pod module from the spec, wins. Otherwise
    it is derived from what Docker was told, as the kubelet would from the spec: limits from
    Memory and NanoCpus/CpuQuota, requests from MemoryReservation and CpuShares (a request
    equals its limit when not given; shares of 2 or less mean no CPU request). The sandbox
    does not count, as the kubelet ignores the pause container.
    """
    for attrs in [sandbox] + list(members):
        label = Container(attrs).labels.get(LABEL_QOS) if attrs else None
        if label in QOS_CLASSES:
            return label
    if not members:
        return "BestEffort"
    anything = False
    guaranteed = True
    for attrs in members:
        host_config = Container(attrs).host_config
        memory = host_config.get("Memory") or 0
        memory_request = host_config.get("MemoryReservation") or 0
        cpu = _cpu_limit_millis(host_config)
        shares = host_config.get("CpuShares") or 0
        cpu_request = shares > MIN_SHARES
        if memory or memory_request or cpu or cpu_request:
            anything = True
        if not memory or not cpu:
            guaranteed = False
            continue
        if memory_request and memory_request != memory:
            guaranteed = False
        if cpu_request and shares != kubelet_shares(cpu):
            guaranteed = False
    if not anything:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


# ---------------------------------------------------------------------------
# Reading the kernel


def read_processes(dirs: Dict[str, str], main_pid: int = 0) -> List[Dict[str, Any]]:
    """[{pid, command}] of the processes in a container's cgroup, as systemd-cgls lists them.

    The container's main process first, then each process after its parent, so that PIDs
    that wrapped around do not put a child before its parent.
    """
    for key in _PROCS_FROM:
        if key not in dirs:
            continue
        try:
            with open(os.path.join(dirs[key], "cgroup.procs")) as handle:
                pids = [int(p) for p in handle.read().split()]
        except (OSError, ValueError):
            continue
        result = []
        for pid in order_processes(dict((pid, _ppid(pid)) for pid in pids), main_pid):
            command = read_cmdline(pid)
            if command is not None:
                result.append(dict(pid=pid, command=command))
        return result
    return []


def _ppid(pid: int) -> int:
    try:
        with open("/proc/%d/stat" % pid) as handle:
            stat = handle.read()
    except OSError:
        return 0
    # The command name is in parentheses and may itself contain spaces or ')'.
    return int(stat[stat.rfind(")") + 2:].split()[1])


def order_processes(parents: Dict[int, int], main_pid: int = 0) -> List[int]:
    """PIDs of ``parents`` ({pid: ppid}) depth first from their roots, ``main_pid``'s tree first."""
    children: Dict[int, List[int]] = {}
    roots = []
    for pid, ppid in parents.items():
        if ppid in parents and ppid != pid:
            children.setdefault(ppid, []).append(pid)
        else:
            roots.append(pid)
    roots.sort(key=lambda pid: (pid != main_pid, pid))
    result = []
    seen = set()
    stack = list(reversed(roots))
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        result.append(pid)
        stack.extend(sorted(children.get(pid, ()), reverse=True))
    # A cycle (impossible in the kernel, possible in odd data) leaves nodes unvisited.
    result.extend(sorted(set(parents) - seen))
    return result


def _configured_limits(host_config: Dict[str, Any], version: int) -> Dict[str, Optional[int]]:
    """The limits Docker applies when the container starts (for one that is not running)."""
    nano = host_config.get("NanoCpus") or 0
    quota = host_config.get("CpuQuota") or 0
    period = host_config.get("CpuPeriod") or 0
    if nano:
        # Docker turns --cpus into a quota over a 100ms period.
        period = DEFAULT_PERIOD_US
        quota = nano * period // 1000000000
    limits = dict(memory_bytes=host_config.get("Memory") or None,
                  cpu_quota_us=quota or None,
                  cpu_period_us=period or None)
    shares = host_config.get("CpuShares") or None
    if version == 2:
        limits["cpu_weight"] = None if shares is None else shares_to_weight(shares)
    else:
        limits["cpu_shares"] = shares
    limits["pids_max"] = host_config.get("PidsLimit") or None
    return limits


def container_entry(attrs: Dict[str, Any], host: Any, role: str, sandbox_ns: Optional[Dict[str, int]] = None,
                    host_ns: Optional[Dict[str, int]] = None) -> Dict[str, Any]:
    """One container as the facts report it; a stopped or vanishing one keeps its status."""
    container = Container(attrs)
    pid = container.pid
    status = container.status
    entry = dict(
        id=attrs.get("Id"),
        name=container.name,
        role=role,
        image=container.config.get("Image") or container.image_id,
        status=status,
        pid=pid,
        exit_code=container.exit_code,
        restart_count=int(attrs.get("RestartCount") or 0),
        namespaces={},
        cgroup_paths={},
        limits=_configured_limits(container.host_config, host.version),
        usage=dict(memory_bytes=None),
        processes=[],
    )
    if sandbox_ns is not None:
        entry["shared_with_sandbox"] = []
    if pid <= 0:
        return entry
    namespaces = read_namespaces(pid)
    cgroup_paths = _cgroup_paths(read_proc_cgroup(pid))
    dirs = cgroup_dirs_for_pid(pid, host)
    if not os.path.isdir("/proc/%d" % pid):
        # The process ended between Docker's answer and this read.
        entry.update(pid=0, status="exited" if status == "running" else status)
        return entry
    entry.update(namespaces=namespaces, cgroup_paths=cgroup_paths,
                 limits=read_limits(dirs, host.version), usage=read_usage(dirs, host.version),
                 processes=read_processes(dirs, pid), cgroup_dirs=dirs)
    if sandbox_ns is not None:
        entry["shared_with_sandbox"] = shared_with(namespaces, sandbox_ns, host_ns or {})
    return entry


def container_summary(attrs: Optional[Dict[str, Any]],
                      sandbox_ns: Optional[Dict[str, int]] = None) -> Optional[Dict[str, Any]]:
    """A container as pod_sandbox and pod_container return it: the head of ``container_entry``."""
    if attrs is None:
        return None
    container = Container(attrs)
    pid = container.pid
    namespaces = read_namespaces(pid) if pid else {}
    result = dict(id=attrs["Id"], name=container.name, pid=pid, status=container.state.get("Status"),
                  image=container.config.get("Image"), image_id=container.image_id, namespaces=namespaces)
    if sandbox_ns is not None:
        result["shared_with_sandbox"] = [ns for ns in ("net", "ipc", "pid", "uts")
                                         if ns in namespaces and namespaces[ns] == sandbox_ns.get(ns)]
    return result


def _cgroup_paths(entries: Dict[str, str]) -> Dict[str, str]:
    """/proc/<pid>/cgroup as {controller: path}; the v2 line ``0::`` is ``unified``."""
    return dict(("unified" if key == "" else key, path) for key, path in entries.items())


def shared_with(namespaces: Dict[str, int], sandbox_ns: Dict[str, int], host_ns: Dict[str, int]) -> List[str]:
    """Namespace types a container shares with its sandbox: net, ipc, pid first, as pod_container.

    A namespace every host process is in (the initial user namespace, the host's cgroup
    and time namespaces) is not something the pod shares, so it is left out.
    """
    return [ns for ns in SHARE_ORDER
            if ns in namespaces and namespaces[ns] == sandbox_ns.get(ns) and namespaces[ns] != host_ns.get(ns)]


def pod_cgroup(parent: str, host: Any, running_dirs: List[Dict[str, str]]) -> Optional[Dict[str, Any]]:
    """The pod's cgroup parent as cgroup_parent returns it, plus usage; None without a parent.

    Its directories come from a running container's own cgroup (the kernel's truth, for
    any driver); with nothing running, from where the driver puts ``parent``.
    """
    if not parent:
        return None
    paths: Dict[str, str] = {}
    for dirs in running_dirs:
        if dirs:
            paths = dict((key, os.path.dirname(directory)) for key, directory in dirs.items())
            break
    # The pod facts only read paths: no cgroupspy or running systemd needed.
    backend = backend_for(host, read_only=True)
    if not paths:
        paths = backend.paths(parent)
    return dict(name=parent, driver=host.driver, version=host.version,
                docker_cgroup_parent=backend.docker_cgroup_parent(parent), paths=paths,
                limits=read_limits(paths, host.version), usage=read_usage(paths, host.version))


def pod_entry(group: PodGroup, host: Any, host_ns: Optional[Dict[str, int]] = None) -> Dict[str, Any]:
    """One entry of ``podkit_pods`` for a group of containers."""
    if host_ns is None:
        host_ns = read_namespaces("self")
    sandbox = None
    sandbox_ns: Dict[str, int] = {}
    if group.sandbox is not None:
        sandbox = container_entry(group.sandbox, host, ROLE_SANDBOX)
        sandbox_ns = sandbox["namespaces"]
    containers = {}
    for key, role, attrs in group.members:
        containers[key] = container_entry(attrs, host, role, sandbox_ns, host_ns)
    parent_owner = group.sandbox if group.sandbox is not None else (group.members[0][2] if group.members else {})
    parent = Container(parent_owner).host_config.get("CgroupParent") or ""
    running = [e.pop("cgroup_dirs", None) for e in [sandbox] + list(containers.values()) if e]
    members = [attrs for _key, role, attrs in group.members if role in (ROLE_MEMBER, ROLE_INIT)]
    entry = dict(
        name=group.name,
        managed=group.managed,
        qos_class=observed_qos_class(group.sandbox, members),
        cgroup=pod_cgroup(parent, host, [d for d in running if d]),
        sandbox=sandbox,
        containers=containers,
    )
    namespace = Container(group.sandbox).labels.get(LABEL_NAMESPACE) if group.sandbox else None
    if namespace:
        # Only pods whose manifest gave metadata.namespace carry it.
        entry["namespace"] = namespace
    return entry


def pod_facts(client: Any, host: Any, pod: str, containers: Optional[List[Any]] = None) -> Dict[str, Any]:
    """The ``podkit_pods`` entry of podkit pod ``pod``; None when it has no container.

    ``containers`` (inspect dicts or SDK models) saves the list call when the caller has
    them already; only those labelled for ``pod`` are used.
    """
    if containers is None:
        containers = list_containers(client, [pod])
    groups = group_containers(containers)
    group = groups.get(pod)
    if group is None:
        return None
    entry = pod_entry(group, host)
    # The guard's view of each container, as pod_facts reports it (the module returns this entry).
    annotate({}, {pod: entry}, read_guard_status())
    return entry


def gather(client, names=None, include_unmanaged=False, groups_out=None):
    """(podkit_host, podkit_pods, host cgroups) for the pods named in ``names`` (None: all);
    ``groups_out`` (a dict), when given, receives the groups the pods were read from."""
    try:
        info = client.info()
    except DockerError as exc:
        raise PodkitError("docker_host: docker info failed: %s" % exc)
    host = detect_host(info)
    groups = group_containers(list_containers(client, names, include_unmanaged), include_unmanaged)
    host_ns = read_namespaces("self")
    pods = {}
    for name in sorted(groups):
        if names and name not in names:
            continue
        pods[name] = pod_entry(groups[name], host, host_ns)
        if groups_out is not None:
            groups_out[name] = groups[name]
    return host_facts(info), pods, host


def check_query_library(params: Dict[str, Any]) -> None:
    """Before anything is read: a query needs jmespath on the host, and must be an expression."""
    if params.get("query") is not None:
        try:
            import jmespath  # pylint: disable=import-outside-toplevel
            from jmespath.exceptions import JMESPathError  # pylint: disable=import-outside-toplevel
        except ImportError:
            raise MissingLibrary("jmespath")
        try:
            jmespath.compile(params["query"])
        except JMESPathError as exc:
            raise _query_error(params["query"], exc)


def facts_result(client: Any, params: Dict[str, Any], _check_mode: bool, _diff: bool,
                 add_manifests: Callable[..., None]) -> Dict[str, Any]:
    """pod_facts: the facts, the tree and the query's result; with as_manifest, ``add_manifests``
    (_export's, which the pod_facts module hands in: no other module's payload then carries _export,
    since AnsiballZ ships every module_utils file a shipped file imports, even inside a function)."""
    groups: Dict[str, PodGroup] = {}
    host, pods, host_cgroups = gather(client, params.get("name") or None, params.get("include_unmanaged"), groups)
    annotate(host, pods, read_guard_status())
    result = dict(ansible_facts=dict(podkit_host=host, podkit_pods=pods), tree=render_tree(pods, host))
    if not params.get("name"):
        # The workloads above the pods (_workloadfacts): their records joined with the pods' owner labels.
        # Imported here, as only pod_facts gets here: the modules that converge pods (which import this file
        # for container_summary and pod_facts) then never compile the workload layer on the host (issue 27).
        from ansible_collections.podkit.docker.plugins.module_utils._workloadfacts import (
            read_workload_records, workload_facts, workload_lines)
        labels = dict((name, Container(g.sandbox).labels) for name, g in groups.items() if g.sandbox is not None)
        workloads = workload_facts(pods, labels, read_workload_records())
        result["ansible_facts"]["podkit_workloads"] = workloads
        result["tree"].extend(workload_lines(workloads))
    if params.get("as_manifest"):
        add_manifests(client, groups, pods, host_cgroups, bool(params.get("as_manifest_secrets")))
    if params.get("query") is not None:
        result["query_result"] = run_query(params["query"], pods)
    return result


def run_query(expression, pods):
    """Evaluate a JMESPath expression over ``podkit_pods``; a bad one is a PodkitError."""
    import jmespath
    from jmespath.exceptions import JMESPathError
    try:
        return jmespath.search(expression, pods)
    except JMESPathError as exc:
        raise _query_error(expression, exc)


def _query_error(expression: str, exc: Exception) -> PodkitError:
    return PodkitError("query: %r is not a valid JMESPath expression over podkit_pods (%s). "
                       "Example: \"foo.containers.*.shared_with_sandbox\"." % (expression, str(exc).replace("\n", " ")))


# ---------------------------------------------------------------------------
# The picture (pure)


def format_size(value: Optional[int]) -> str:
    if value is None:
        return "-"
    for unit, size in (("Gi", GIB), ("Mi", MIB), ("Ki", KIB)):
        if value >= size and value % size == 0:
            return "%d%s" % (value // size, unit)
    if value >= MIB:
        return "%.1fMi" % (value / MIB)
    return str(value)


def format_limits(limits: Optional[Dict[str, Optional[int]]], version: int = 1) -> str:
    """``memory=512Mi cpu=500m pids=100``; kernel defaults (shares 1024, weight 100) left out."""
    limits = limits or {}
    parts = []
    if limits.get("memory_bytes") is not None:
        parts.append("memory=%s" % format_size(limits["memory_bytes"]))
    quota, period = limits.get("cpu_quota_us"), limits.get("cpu_period_us")
    if quota is not None and period:
        millis = quota * 1000 // period
        parts.append("cpu=%s" % (str(millis // 1000) if millis % 1000 == 0 else "%dm" % millis))
    if limits.get("cpu_shares") not in (None, 1024):
        parts.append("shares=%d" % limits["cpu_shares"])
    if limits.get("cpu_weight") not in (None, 100):
        parts.append("weight=%d" % limits["cpu_weight"])
    if limits.get("pids_max") is not None:
        parts.append("pids=%d" % limits["pids_max"])
    return " ".join(parts)


def _status_text(entry: Dict[str, Any]) -> str:
    status = entry.get("status") or "unknown"
    if entry.get("pid"):
        return "pid %d %s" % (entry["pid"], status)
    if status == "exited" and entry.get("exit_code") is not None:
        return "exited (%s)" % entry["exit_code"]
    return status


def _truncate(text: str, width: int = TREE_COMMAND_WIDTH) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _container_lines(label: str, entry: Dict[str, Any], owned: List[str], last: bool, prefix: str,
                     guarded: bool = False) -> List[str]:
    head = "%s%s%s %s" % (prefix, "└─" if last else "├─", label, _status_text(entry))
    if owned:
        head += ", ns " + " ".join("%s:%s" % (ns, entry["namespaces"][ns]) for ns in owned)
    elif "shared_with_sandbox" in entry and entry.get("pid"):
        shared = entry["shared_with_sandbox"]
        head += " [%s]" % (" ".join(shared) if shared else "shares nothing")
    limits = format_limits(entry.get("limits"))
    if limits and entry.get("pid"):
        head += ", " + limits
    if guarded:
        head += container_suffix(entry)
    lines = [head]
    child_prefix = prefix + ("  " if last else "│ ")
    processes = entry.get("processes") or []
    shown = processes[:TREE_PROCESSES]
    hidden = len(processes) - len(shown)
    for index, process in enumerate(shown):
        end = index == len(shown) - 1 and not hidden
        lines.append("%s%s%d %s" % (child_prefix, "└─" if end else "├─", process["pid"], _truncate(process["command"])))
    if hidden:
        lines.append("%s└─... %d more" % (child_prefix, hidden))
    return lines


def _label(key: str, entry: Dict[str, Any]) -> str:
    """``app (foo_app)``; the role first when it is not a plain member: ``init setup (foo_setup)``."""
    name = entry.get("name") or key
    text = key if name == key else "%s (%s)" % (key, name)
    role = entry.get("role")
    return text if role in (None, ROLE_MEMBER) else "%s %s" % (role, text)


def render_pod(pod: Dict[str, Any], guarded: bool = False) -> List[str]:
    """The lines of one pod: pod, its cgroup parent with limits, the sandbox, then members.

    Members mark the namespaces they share with the sandbox (``[net ipc]``); the sandbox
    line gives those namespaces' inodes, as lsns shows them.
    """
    kind = "podkit" if pod.get("managed", True) else "unmanaged"
    lines = ["pod %s (%s, %s)" % (pod.get("name"), kind, pod.get("qos_class"))]
    cgroup = pod.get("cgroup")
    if cgroup:
        text = "cgroup %s: %s" % (cgroup.get("name"), format_limits(cgroup.get("limits")) or "no limits")
        used = (cgroup.get("usage") or {}).get("memory_bytes")
        if used is not None:
            text += ", memory used %s" % format_size(used)
    else:
        text = "cgroup parent: none (the containers are in Docker's default cgroup)"
    lines.append("└─" + text)
    sandbox = pod.get("sandbox")
    containers = pod.get("containers") or {}
    rows = []
    if sandbox:
        shared = set()
        for entry in containers.values():
            shared.update(entry.get("shared_with_sandbox") or [])
        # With no member running, still show what a pod shares by design.
        owned = [ns for ns in SHARE_ORDER if ns in (shared or SHAREABLE[:2]) and ns in (sandbox.get("namespaces") or {})]
        rows.append(("sandbox %s" % sandbox.get("name"), sandbox, owned))
    else:
        rows.append(("sandbox (gone)", dict(status="missing"), []))
    for key, entry in containers.items():
        rows.append((_label(key, entry), entry, []))
    for index, (label, entry, owned) in enumerate(rows):
        lines.extend(_container_lines(label, entry, owned, index == len(rows) - 1, "  ", guarded and index > 0))
    return lines


def render_tree(pods: Dict[str, Dict[str, Any]], host: Optional[Dict[str, Any]] = None) -> List[str]:
    """What a person reads at a glance: systemd-cgls's tree with lsns's namespace inodes.

    ``host`` is ``podkit_host``; ``pods`` is ``podkit_pods``.
    """
    lines = []
    guarded = bool(host and (host.get("guard") or {}).get("installed"))
    if host:
        lines.append("host: Docker %s, cgroup v%s (%s driver), kernel %s" % (
            host.get("docker_version"), host.get("cgroup_version"), host.get("cgroup_driver"), host.get("kernel")))
        guard = guard_line(host.get("guard") or {})
        if guard:
            lines.append(guard)
    if not pods:
        lines.append("no pods")
    for name in sorted(pods):
        lines.extend(render_pod(dict(pods[name], name=pods[name].get("name", name)), guarded))
    return lines
