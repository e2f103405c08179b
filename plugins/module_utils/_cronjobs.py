# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CronJobs (batch/v1): the pods module records them, podkit-guard keeps their schedules.

The pods module checks a CronJob (its schedule, time zone, policies and its ``jobTemplate`` as a Job), refuses
it on a host where podkit-guard does not run (nothing else would start its Jobs), and records it under
``<state dir>/cronjobs/<namespace>.<name>.json``. The guard (``CronKeeper.tick``, about once a second) does
for each record what the cronjob controller's syncCronJob (pkg/controller/cronjob/cronjob_controllerv2.go)
does:

1. its active Jobs advanced one step each (_jobs: the same JobRun the module runs), a finished one moved to
   the history (``last_successful_time`` for a Complete one);
2. unless suspended, the most recent scheduled time not yet run (_cron.missed_runs: at most one catch-up,
   none past ``startingDeadlineSeconds``) started as the Job ``<cronjob>-<minutes since the epoch>``, after
   ``concurrencyPolicy``: Allow starts it beside the active ones, Forbid leaves it while one is active (it is
   started once none is, if still within its deadline, as Kubernetes does), Replace removes the active ones
   first;
3. the finished Jobs beyond ``successfulJobsHistoryLimit`` (3) and ``failedJobsHistoryLimit`` (1) removed with
   their pods, the oldest first.

What the guard did is kept in ``<namespace>.<name>.status.json`` beside the record: the last scheduled and the
last successful time, the active Jobs and the history; pod_facts reads it and adds the next run.
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._cron import (
    UTC, Schedule, from_iso, history_to_remove, iso, job_name, missed_runs, next_run, parse_schedule, too_late)
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._jobs import flag, whole
from ansible_collections.podkit.docker.plugins.module_utils._record import state_dir

CRONJOB_SPEC_FIELDS = ("schedule", "timeZone", "startingDeadlineSeconds", "concurrencyPolicy", "suspend",
                       "successfulJobsHistoryLimit", "failedJobsHistoryLimit", "jobTemplate")
POLICIES = ("Allow", "Forbid", "Replace")
# The pods module's options a CronJob's Jobs take (the rest are the manifest's).
KEPT_PARAMS = ("sandbox_image", "pull", "validate", "seccomp_profile_root", "remove_claims", "cgroup_limits",
               "docker_host", "timeout")
# batch/v1 SetDefaults_CronJob.
DEFAULT_SUCCESSFUL = 3
DEFAULT_FAILED = 1
log = logging.getLogger("podkit-guard")


@dataclass
class CronJob:
    name: str
    namespace: str
    where: str
    schedule: Schedule
    schedule_text: str
    time_zone: Optional[str]
    policy: str = "Allow"
    deadline: Optional[int] = None
    suspend: bool = False
    keep_successful: int = DEFAULT_SUCCESSFUL
    keep_failed: int = DEFAULT_FAILED
    template: Dict[str, Any] = field(default_factory=dict)     # jobTemplate: metadata, spec
    docs: List[Dict[str, Any]] = field(default_factory=list)
    params: Dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return "CronJob/%s" % self.name

    def job_document(self, name: str) -> Dict[str, Any]:
        """The Job of one scheduled run: jobTemplate's metadata (labels, annotations) and spec, named."""
        metadata = dict(copy.deepcopy(self.template.get("metadata") or {}), name=name)
        if self.namespace != "default":
            metadata["namespace"] = self.namespace
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
                "spec": copy.deepcopy(self.template.get("spec") or {})}

    def record(self) -> Dict[str, Any]:
        return dict(kind="CronJob", name=self.name, namespace=self.namespace, schedule=self.schedule_text,
                    time_zone=self.time_zone, policy=self.policy, deadline=self.deadline, suspend=self.suspend,
                    keep_successful=self.keep_successful, keep_failed=self.keep_failed, template=self.template,
                    docs=self.docs, params=dict((k, self.params.get(k)) for k in KEPT_PARAMS))


def parse_cronjob(doc: Dict[str, Any], where: str, name: str, namespace: str, configs: List[Dict[str, Any]],
                  params: Dict[str, Any], check_job: Callable[[Dict[str, Any], str], Any]) -> CronJob:
    """A CronJob document, checked field by field; ``check_job`` parses its jobTemplate as a Job (so a bad
    template fails now, not at its first run)."""
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise PodkitError("%s.spec must be a mapping with schedule and jobTemplate." % where)
    for key in spec:
        if key not in CRONJOB_SPEC_FIELDS:
            raise PodkitError("%s.spec.%s: not a CronJob field podkit reads (it reads %s); remove it."
                              % (where, key, ", ".join(CRONJOB_SPEC_FIELDS)))
    schedule = parse_schedule(spec.get("schedule"), where + ".spec.schedule", spec.get("timeZone"),
                              where + ".spec.timeZone")
    cron = CronJob(name=name, namespace=namespace, where=where, schedule=schedule,
                   schedule_text=" ".join(str(spec.get("schedule")).split()), time_zone=spec.get("timeZone"),
                   docs=list(configs), params=dict(params))
    cron.policy = spec.get("concurrencyPolicy") or "Allow"
    if cron.policy not in POLICIES:
        raise PodkitError("%s.spec.concurrencyPolicy: %r is not one of %s." % (where, cron.policy, ", ".join(POLICIES)))
    if spec.get("startingDeadlineSeconds") is not None:
        cron.deadline = whole(spec["startingDeadlineSeconds"], where + ".spec.startingDeadlineSeconds")
    cron.suspend = flag(spec.get("suspend"), where + ".spec.suspend")
    for key, attr in (("successfulJobsHistoryLimit", "keep_successful"), ("failedJobsHistoryLimit", "keep_failed")):
        if spec.get(key) is not None:
            setattr(cron, attr, whole(spec[key], "%s.spec.%s" % (where, key)))
    template = spec.get("jobTemplate")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        raise PodkitError("%s.spec.jobTemplate.spec is required: the spec of the Job each run makes." % where)
    for key in template:
        if key not in ("metadata", "spec"):
            raise PodkitError("%s.spec.jobTemplate.%s: not supported; a jobTemplate has metadata and spec." % (where, key))
    meta = template.get("metadata") or {}
    cron.template = dict(metadata=dict((k, v) for k, v in meta.items() if k in ("labels", "annotations")),
                         spec=template["spec"])
    # The longest Job name: the cronjob controller's <name>-<minutes since the epoch> (8 digits until 2160).
    check_job(cron.job_document("%s-%d" % (name, 10 ** 8 - 1)), where + ".spec.jobTemplate")
    return cron


# ---------------------------------------------------------------------------
# records (the module writes, the guard reads)


def _directory(given: Optional[str] = None) -> str:
    return os.path.join(state_dir(given), "cronjobs")


def _write(path: str, body: Dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".cj.", dir=os.path.dirname(path))
    with os.fdopen(handle, "w") as stream:
        json.dump(body, stream, sort_keys=True)
    os.rename(temporary, path)


def _read(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path) as stream:
            body = json.load(stream)
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def record_path(namespace: str, name: str, given: Optional[str] = None) -> str:
    return os.path.join(_directory(given), "%s.%s.json" % (namespace, name))


def status_path(namespace: str, name: str, given: Optional[str] = None) -> str:
    return os.path.join(_directory(given), "%s.%s.status" % (namespace, name))


def write_cronjob(cron: CronJob, given: Optional[str] = None) -> bool:
    """Record the CronJob for the guard; whether that changed the record. Its creation time is kept across
    changes (the first run it may miss is counted from it)."""
    path = record_path(cron.namespace, cron.name, given)
    previous = _read(path) or {}
    body = cron.record()
    body["created"] = previous.get("created") or iso(datetime.datetime.now(UTC))
    if body == previous:
        return False
    try:
        _write(path, body)
    except OSError as exc:
        raise PodkitError("cannot record %s in %s: %s; run the module as root (become: true)."
                          % (cron.key, os.path.dirname(path), exc.strerror))
    return True


def delete_cronjob(namespace: str, name: str, given: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """Forget the CronJob (record and status); its status (its Jobs) as it was."""
    status = _read(status_path(namespace, name, given))
    for path in (record_path(namespace, name, given), status_path(namespace, name, given)):
        try:
            os.unlink(path)
        except OSError:
            pass
    return status


def read_cronjobs(given: Optional[str] = None) -> List[Tuple[Dict[str, Any], Dict[str, Any]]]:
    """Every recorded CronJob with its status ({} before the guard's first look)."""
    try:
        names = sorted(os.listdir(_directory(given)))
    except OSError:
        return []
    found = []
    for name in names:
        if name.startswith(".") or not name.endswith(".json"):
            continue
        body = _read(os.path.join(_directory(given), name))
        if body and body.get("kind") == "CronJob":
            found.append((body, _read(status_path(body["namespace"], body["name"], given)) or {}))
    return found


def cron_facts(record: Dict[str, Any], status: Dict[str, Any], now: Optional[datetime.datetime] = None) -> Dict[str, Any]:
    """A CronJob as pod_facts and the pods module show it: its schedule, last scheduled and last successful run,
    the active Jobs and the next run."""
    now = now or datetime.datetime.now(UTC)
    coming = None
    if not record.get("suspend"):
        try:
            coming = next_run(parse_schedule(record.get("schedule"), "schedule", record.get("time_zone")), now)
        except PodkitError:
            coming = None
    return dict(schedule=record.get("schedule"), time_zone=record.get("time_zone"), suspend=bool(record.get("suspend")),
                concurrency_policy=record.get("policy"), last_schedule_time=status.get("last_schedule_time"),
                last_successful_time=status.get("last_successful_time"), active=list(status.get("active") or []),
                next_run=iso(coming), jobs=dict(status.get("jobs") or {}))


# ---------------------------------------------------------------------------
# the guard's side


class CronKeeper:
    """The CronJobs of one state directory, kept by podkit-guard. ``make_run(api, job document, docs, params)``
    gives a started _jobs.JobRun; ``save(run)`` records a Job's status; ``remove(api, record, job name)``
    removes a Job's pods and record."""

    def __init__(self, given: Optional[str], make_run: Callable[..., Any], save: Callable[[Any], None],
                 remove: Callable[[Any, Dict[str, Any], str], None]) -> None:
        self.given = given
        self.make_run = make_run
        self.save = save
        self.remove = remove
        self.runs: Dict[str, Any] = {}          # job name -> its JobRun, while active
        self.said: Dict[str, str] = {}          # cronjob -> what was last logged about it (no repeats each second)

    def tick(self, api: Any, now: Optional[datetime.datetime] = None) -> None:
        for record, status in read_cronjobs(self.given):
            try:
                self.sync(api, record, status, now or datetime.datetime.now(UTC))
            except PodkitError as exc:
                self._say(record["name"], "cronjob=%s error: %s" % (record["name"], exc.msg))

    def _say(self, cron: str, text: str) -> None:
        if self.said.get(cron) != text:
            self.said[cron] = text
            log.info(text)

    def sync(self, api: Any, record: Dict[str, Any], status: Dict[str, Any], now: datetime.datetime) -> None:
        name, namespace = record["name"], record["namespace"]
        before = json.dumps(status, sort_keys=True)
        jobs: Dict[str, Dict[str, Any]] = status.setdefault("jobs", {})
        active: List[str] = status.setdefault("active", [])
        # 1. the active Jobs, one step each
        for job in list(active):
            run = self.runs.get(job)
            if run is None:
                run = self.runs[job] = self.make_run(api, record, job)
            run.tick()
            self.save(run)
            if run.done:
                self.runs.pop(job, None)
                phase = run.status.phase if run.status is not None else "Failed"
                jobs.setdefault(job, {})["phase"] = phase
                active.remove(job)
                if phase == "Complete":
                    status["last_successful_time"] = iso(datetime.datetime.fromtimestamp(
                        run.status.completion_time or time.time(), UTC))
                log.info("cronjob=%s job=%s finished: %s%s", name, job, phase,
                         " (%s)" % run.status.reason if run.status is not None and run.status.reason else "")
        # 2. the most recent scheduled time not run
        if not record.get("suspend"):
            self._schedule(api, record, status, now)
        # 3. the history
        finished = [(job, from_iso(item.get("scheduled")) or now, item.get("phase") == "Complete")
                    for job, item in jobs.items() if job not in active and item.get("phase") in ("Complete", "Failed")]
        for job in history_to_remove(finished, record.get("keep_successful", DEFAULT_SUCCESSFUL),
                                     record.get("keep_failed", DEFAULT_FAILED)):
            self.remove(api, record, job)
            jobs.pop(job, None)
            log.info("cronjob=%s job=%s removed: beyond the history limits", name, job)
        if json.dumps(status, sort_keys=True) != before:
            _write(status_path(namespace, name, self.given), status)

    def _schedule(self, api: Any, record: Dict[str, Any], status: Dict[str, Any], now: datetime.datetime) -> None:
        name = record["name"]
        schedule = parse_schedule(record["schedule"], "schedule", record.get("time_zone"))
        earliest = from_iso(status.get("last_schedule_time")) or from_iso(record.get("created")) or now
        scheduled, missed = missed_runs(schedule, earliest, now, record.get("deadline"))
        if scheduled is None:
            return
        job = job_name(name, scheduled)
        jobs, active = status["jobs"], status["active"]
        if job in jobs:
            return
        if too_late(scheduled, now, record.get("deadline")):
            self._say(name, "cronjob=%s missed the run of %s: later than startingDeadlineSeconds %s"
                      % (name, iso(scheduled), record.get("deadline")))
            return
        if active and record.get("policy") == "Forbid":
            self._say(name, "cronjob=%s run of %s held back: concurrencyPolicy Forbid and %s active"
                      % (name, iso(scheduled), ", ".join(active)))
            return
        if active and record.get("policy") == "Replace":
            for old in list(active):
                self.runs.pop(old, None)
                self.remove(api, record, old)
                jobs.pop(old, None)
                active.remove(old)
                log.info("cronjob=%s job=%s removed: replaced by the run of %s (concurrencyPolicy Replace)",
                         name, old, iso(scheduled))
        run = self.runs[job] = self.make_run(api, record, job)
        jobs[job] = dict(scheduled=iso(scheduled), phase="Running")
        active.append(job)
        status["last_schedule_time"] = iso(scheduled)
        log.info("cronjob=%s job=%s started for %s%s", name, job, iso(scheduled),
                 " (%d runs missed, the most recent one caught up)" % missed if missed > 1 else "")
        run.tick()
        self.save(run)
