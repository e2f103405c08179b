# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What podkit-guard reports, as pod_facts shows it: the guard (running, version, last sync) and,
per container, ready, restart count, last probe result and the last repair with its reason.

The guard writes ``<state dir>/guard.json`` with ``write_guard_status`` and pod_facts reads it with
``read_guard_status``: the file's one home, so pod_facts needs nothing of the guard's code.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any, Dict, Optional

from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._record import state_dir

STATUS_FILE = "guard.json"


def write_guard_status(body: Dict[str, Any], given: Optional[str] = None) -> None:
    """Write the guard's status (0644) atomically, a temporary file renamed, so a reader never sees
    half of it. OSError as the filesystem gives it."""
    directory = state_dir(given)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".guard.", dir=directory)
    with os.fdopen(handle, "w") as stream:
        json.dump(body, stream, sort_keys=True)
    os.chmod(temporary, 0o644)
    os.rename(temporary, os.path.join(directory, STATUS_FILE))


def read_guard_status(given: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """The guard's status file, with ``running`` True only while its process is alive; None when
    no guard ever ran with this state directory."""
    try:
        with open(os.path.join(state_dir(given), STATUS_FILE)) as stream:
            body = json.load(stream)
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict):
        return None
    alive = False
    if body.get("running") and isinstance(body.get("pid"), int):
        try:
            os.kill(body["pid"], 0)
            alive = True
        except OSError:
            alive = False
    body["running"] = alive
    return body


def guard_facts(status: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """``podkit_host.guard``."""
    if status is None:
        return dict(running=False, installed=False, version=None, pid=None, last_sync=None)
    return dict(running=status["running"], installed=True, version=status.get("version"),
                pid=status.get("pid") if status["running"] else None, last_sync=status.get("last_sync"))


def annotate(host: Dict[str, Any], pods: Dict[str, Dict[str, Any]], status: Optional[Dict[str, Any]]) -> None:
    """Add the guard to ``host`` and, to each container of ``pods``: ``ready`` (running and, with a
    readiness probe, passing it; without one running is ready, as in Kubernetes), ``restart_count``
    (Docker's restarts plus the guard's repairs), ``last_probe`` and ``last_repair`` (None when
    there was none)."""
    host["guard"] = guard_facts(status)
    known = (status or {}).get("pods") or {}
    for name, pod in pods.items():
        repaired = (known.get(name) or {}).get("containers") or {}
        for key, entry in (pod.get("containers") or {}).items():
            mine = repaired.get(key) or {}
            # Running and, when the guard probes it, its readiness (or startup) probe passed.
            entry["ready"] = entry.get("status") == "running" and mine.get("ready", True) is not False
            entry["restart_count"] = int(entry.get("restart_count") or 0) + int(mine.get("repairs") or 0)
            entry["last_probe"] = mine.get("last_probe")
            entry["last_repair"] = mine.get("last_repair")


def guard_line(guard: Dict[str, Any], now: Optional[float] = None) -> Optional[str]:
    """The tree's line for the guard; None when no guard ever ran here."""
    if not guard.get("installed"):
        return None
    if not guard.get("running"):
        return "guard: not running (podkit-guard %s)" % guard.get("version")
    synced = guard.get("last_sync")
    ago = "never synced" if synced is None else "last sync %ds ago" % max(0, int((now or time.time()) - synced))
    return "guard: running, pid %s, podkit-guard %s, %s" % (guard.get("pid"), guard.get("version"), ago)


def container_suffix(entry: Dict[str, Any]) -> str:
    """What the tree adds to a container's line when a guard reports on it."""
    if "ready" not in entry:
        return ""
    text = ", %s, restarts %d" % ("ready" if entry["ready"] else "not ready", entry.get("restart_count") or 0)
    repair = entry.get("last_repair")
    if repair:
        text += ", last repair: %s (%s)" % (repair.get("action"), repair.get("reason") or repair.get("trigger"))
    return text


def wait_ready(pod: str, wanted: Dict[str, str], timeout: float, given: Optional[str] = None) -> None:
    """Until podkit-guard reports each container of ``wanted`` ({name in the pod: container ID})
    ready by its readiness probe; PodkitError naming the ones that are not after ``timeout`` s."""
    deadline = time.time() + timeout
    while True:
        status = read_guard_status(given) or {}
        known = (((status.get("pods") or {}).get(pod) or {}).get("containers")) or {}
        waiting = sorted(name for name, cid in wanted.items()
                         if not (known.get(name, {}).get("ready") is True and known[name].get("ready_id") == cid))
        if not waiting:
            return
        if time.time() >= deadline:
            if not status.get("running"):
                raise PodkitError("wait: the readiness of %s in pod %s is reported by podkit-guard, which is not running on "
                                  "this host; run the podkit.docker.host role with podkit_host_guard: true, or set wait: "
                                  "false." % (", ".join(waiting), pod))
            last = dict((name, (known.get(name) or {}).get("last_probe")) for name in waiting)
            raise PodkitError("wait: %s of pod %s not ready within %ss (wait_timeout); last readiness probes: %s"
                              % (", ".join(waiting), pod, int(timeout),
                                 "; ".join("%s: %s" % (n, (p or {}).get("message") or "not run yet") for n, p in last.items())))
        time.sleep(0.5)
