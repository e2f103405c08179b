# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The workloads as pod_facts reports them, and the record the pods module keeps of each.

The pods module records a workload it converged (``write_workload_record``: kind, name, namespace,
the replicas wanted, the current revision and the revisions before it, as many as
revisionHistoryLimit keeps) under ``<state dir>/workloads``; ``workload_facts`` joins those records
with the pods' owner labels and readiness: ``ansible_facts.podkit_workloads``. No third-party import,
nothing of the workload controller's code: pod_facts stays light.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, List, Optional

from ansible_collections.podkit.docker.plugins.module_utils._cronjobs import cron_facts, read_cronjobs
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._labels import (
    LABEL_NAMESPACE, LABEL_OWNER_KIND, LABEL_OWNER_NAME, LABEL_REVISION)
from ansible_collections.podkit.docker.plugins.module_utils._record import state_dir

DEFAULT_HISTORY = 10


def workload_key(namespace: str, kind: str, name: str) -> str:
    return "%s/%s" % (kind, name) if namespace == "default" else "%s/%s/%s" % (namespace, kind, name)


def _path(namespace: str, kind: str, name: str, given: Optional[str] = None) -> str:
    return os.path.join(state_dir(given), "workloads", "%s.%s.%s.json" % (namespace, kind, name))


def read_workload_records(given: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    """Every workload record, by workload key."""
    directory = os.path.join(state_dir(given), "workloads")
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return {}
    found = {}
    for name in names:
        if name.startswith(".") or not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(directory, name)) as stream:
                body = json.load(stream)
        except (OSError, ValueError):
            continue
        if isinstance(body, dict) and all(k in body for k in ("kind", "name", "namespace")):
            found[workload_key(body["namespace"], body["kind"], body["name"])] = body
    return found


def write_workload_record(kind: str, name: str, namespace: str, replicas: int, revision: str,
                          history: Optional[int] = None, given: Optional[str] = None,
                          job: Optional[Dict[str, Any]] = None, template: Optional[Dict[str, Any]] = None,
                          follow: Optional[Dict[str, Any]] = None, network: Optional[Dict[str, Any]] = None) -> None:
    """Record what a workload wants, its revision first, then the revisions before it (revisionHistoryLimit);
    for a Job, its status (_jobs.JobStatus): whether it finished, for the next run and pod_facts. With
    ``template`` (a Deployment's, StatefulSet's, DaemonSet's), ``templates`` keeps each kept revision's template
    and the revision it replaced when it last became the current one: what ``rollback`` goes back to. With
    ``follow`` (a Job podkit-guard goes on driving: its spec, the documents and options its pods are made
    with), the guard finds what it needs to continue it between runs; with ``network`` (_services.network_record),
    what it needs to keep the pods' Service names as their readiness changes."""
    path = _path(namespace, kind, name, given)
    previous: Dict[str, Any] = {}
    try:
        with open(path) as stream:
            previous = json.load(stream)
    except (OSError, ValueError):
        previous = {}
    revisions: List[str] = [revision] + [r for r in previous.get("revisions") or [] if r != revision]
    limit = DEFAULT_HISTORY if history is None else history
    body = dict(kind=kind, name=name, namespace=namespace, replicas=replicas, revision=revision,
                revisions=revisions[:limit + 1])
    if job is not None:
        body["job"] = job
    if follow is not None:
        body["follow"] = follow
    if network is not None:
        body["network"] = network
    if template is not None:
        templates = dict(previous.get("templates") or {})
        before = previous.get("revision")
        if before != revision or revision not in templates:
            # Each time a revision becomes the current one, the one it replaced is what undoing it goes back to
            # (kubectl rollout undo: the revision before the latest); the first recorded one replaced none.
            templates[revision] = dict(template=template, previous=before if before != revision else None)
        body["templates"] = dict((r, templates[r]) for r in body["revisions"] if r in templates)
    if body == previous:
        return
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".wl.", dir=os.path.dirname(path))
        with os.fdopen(handle, "w") as stream:
            json.dump(body, stream, sort_keys=True)
        os.rename(temporary, path)
    except OSError as exc:
        raise PodkitError("cannot record workload %s/%s in %s: %s; run the module as root (become: true)."
                          % (kind, name, os.path.dirname(path), exc.strerror))


def delete_workload_record(kind: str, name: str, namespace: str, given: Optional[str] = None) -> None:
    try:
        os.unlink(_path(namespace, kind, name, given))
    except OSError:
        pass


def workload_facts(pods: Dict[str, Dict[str, Any]], sandbox_labels: Dict[str, Dict[str, str]],
                   records: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """``podkit_workloads``: for each workload with a record or a pod, its kind, name, namespace, revision,
    replicas wanted / current / ready / updated (of the current revision) and each pod's revision.
    ``pods`` is podkit_pods (with each container's ``ready``), ``sandbox_labels`` each pod's sandbox labels."""
    result: Dict[str, Dict[str, Any]] = {}
    for key, record in records.items():
        result[key] = dict(kind=record["kind"], name=record["name"], namespace=record["namespace"],
                           revision=record.get("revision"), revisions=list(record.get("revisions") or []),
                           replicas=dict(wanted=record.get("replicas"), current=0, ready=0, updated=0), pods={})
        if isinstance(record.get("job"), dict):
            job = record["job"]
            result[key]["job"] = dict((k, job.get(k)) for k in (
                "phase", "reason", "message", "active", "succeeded", "failed", "start_time", "completion_time",
                "completed_indexes", "failed_indexes"))
    for record, status in read_cronjobs():
        key = workload_key(record["namespace"], "CronJob", record["name"])
        result[key] = dict(kind="CronJob", name=record["name"], namespace=record["namespace"], revision=None,
                           revisions=[], replicas=dict(wanted=None, current=0, ready=0, updated=0), pods={},
                           cronjob=cron_facts(record, status))
    for pod, labels in sorted(sandbox_labels.items()):
        if not labels.get(LABEL_OWNER_KIND):
            continue
        namespace = labels.get(LABEL_NAMESPACE) or "default"
        key = workload_key(namespace, labels[LABEL_OWNER_KIND], labels.get(LABEL_OWNER_NAME, ""))
        entry = result.setdefault(key, dict(kind=labels[LABEL_OWNER_KIND], name=labels.get(LABEL_OWNER_NAME),
                                            namespace=namespace, revision=None, revisions=[],
                                            replicas=dict(wanted=None, current=0, ready=0, updated=0), pods={}))
        containers = (pods.get(pod) or {}).get("containers") or {}
        ready = bool(containers) and all(c.get("ready", c.get("status") == "running") for c in containers.values()
                                         if c.get("role", "member") == "member")
        entry["pods"][pod] = dict(revision=labels.get(LABEL_REVISION), ready=ready)
        entry["replicas"]["current"] += 1
        entry["replicas"]["ready"] += int(ready)
        entry["replicas"]["updated"] += int(labels.get(LABEL_REVISION) == entry["revision"])
    return result


def workload_lines(workloads: Dict[str, Dict[str, Any]]) -> List[str]:
    """The tree's lines for the workloads, after the pods."""
    lines = []
    for key in sorted(workloads):
        entry = workloads[key]
        counts = entry["replicas"]
        wanted = counts["wanted"] if counts["wanted"] is not None else "?"
        job, cron = entry.get("job"), entry.get("cronjob")
        if cron:
            lines.append("workload %s: schedule %r%s, last run %s, last success %s, next run %s, active %s" % (
                key, cron["schedule"], " (suspended)" if cron["suspend"] else "", cron["last_schedule_time"] or "-",
                cron["last_successful_time"] or "-", cron["next_run"] or "-", ", ".join(cron["active"]) or "none"))
        elif job:
            lines.append("workload %s: %s%s, %s active, %s succeeded, %s failed, started %s%s" % (
                key, job.get("phase"), " (%s)" % job["reason"] if job.get("reason") else "", job.get("active"),
                job.get("succeeded"), job.get("failed"), job.get("start_time") or "-",
                ", finished %s" % job["completion_time"] if job.get("completion_time") else ""))
        else:
            lines.append("workload %s: %s/%s ready, %d updated, revision %s" % (
                key, counts["ready"], wanted, counts["updated"], entry.get("revision") or "unknown"))
        names = sorted(entry["pods"])
        for index, pod in enumerate(names):
            item = entry["pods"][pod]
            lines.append("%s%s (revision %s, %s)" % ("└─" if index == len(names) - 1 else "├─", pod, item["revision"],
                                                     "ready" if item["ready"] else "not ready"))
    return lines
