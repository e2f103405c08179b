# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the kernel says about a process: its namespace inodes and its cgroups.

Everything here reads /proc and nothing else, so it is the ground truth that the
reconciler compares Docker's view against.
"""

from __future__ import annotations

import os
import re

# The namespace types a container can have, in the order `lsns` lists them.
NS_TYPES = ("mnt", "uts", "ipc", "pid", "net", "cgroup", "user", "time")

# The types a pod member may join from its sandbox (Docker's container: modes).
SHAREABLE = ("net", "ipc", "pid")

_NS_LINK = re.compile(r"^[a-z_]+:\[(\d+)\]$")


def read_namespaces(pid, proc="/proc"):
    """Return {type: inode} for every namespace of ``pid`` the kernel exposes.

    Types the kernel does not have are left out. Returns {} when the process is
    gone (a container that exited while being read) rather than raising.
    """
    result = {}
    for ns in NS_TYPES:
        try:
            link = os.readlink(os.path.join(proc, str(pid), "ns", ns))
        except FileNotFoundError:
            continue
        except (ProcessLookupError, PermissionError):
            return {}
        match = _NS_LINK.match(link)
        if match:
            result[ns] = int(match.group(1))
    if not result and not os.path.isdir(os.path.join(proc, str(pid))):
        return {}
    return result


def shared_types(namespaces, sandbox_namespaces, types=NS_TYPES):
    """The namespace types, of ``types``, whose inode is the same in both maps."""
    return [ns for ns in types
            if ns in namespaces and namespaces.get(ns) == sandbox_namespaces.get(ns)]


def read_proc_cgroup(pid, proc="/proc"):
    """Return {controller: path} from /proc/<pid>/cgroup.

    On cgroup v1 each hierarchy line gives one entry per controller it carries
    (``cpu,cpuacct`` gives ``cpu`` and ``cpuacct``) and named hierarchies keep
    their ``name=`` prefix (``name=systemd``). The unified (v2) line ``0::/path``
    is returned under the key ``""``. Returns {} when the process is gone.
    """
    try:
        with open(os.path.join(proc, str(pid), "cgroup")) as handle:
            lines = handle.read().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return {}
    result = {}
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _hid, controllers, path = parts
        if not controllers:
            result[""] = path
            continue
        for controller in controllers.split(","):
            result[controller] = path
    return result


def process_tree(pid, proc="/proc"):
    """Return [(pid, command line)] for ``pid`` and its descendants, depth first."""
    children = {}
    try:
        entries = os.listdir(proc)
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc, entry, "stat")) as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name is in parentheses and may itself contain spaces or ')'.
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))

    result = []
    stack = [int(pid)]
    while stack:
        current = stack.pop()
        cmdline = read_cmdline(current, proc)
        if cmdline is None:
            continue
        result.append((current, cmdline))
        stack.extend(sorted(children.get(current, ()), reverse=True))
    return result


def read_cmdline(pid, proc="/proc"):
    """The command line of ``pid`` as one string, or None when it is gone."""
    try:
        with open(os.path.join(proc, str(pid), "cmdline"), "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
