# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jobs (batch/v1) on one Docker host: pods from a template run to completion, Kubernetes' Job controller in small.

One run of the pods module syncs every Job of its call together, tick after tick, in the order of the Job
controller's syncJob (pkg/controller/job/job_controller.go):

1. parse (``parse_job``): the Job's spec checked field by field (a field podkit cannot honour is named), its
   template's ``restartPolicy`` Never or OnFailure (as the API server requires), the defaults of
   batch/v1 SetDefaults_Job (completions and parallelism 1, backoffLimit 6, NonIndexed);
2. decide from the record (``decide_run``): a Job that finished with the same spec is not run again (``rerun``:
   changed, the default; always; never); a changed spec's old pods are removed first;
3. observe (``observe_job``): the Job's pods by their owner labels, each one's phase read from Docker (members
   running: Running; every member exited: Succeeded when all exited 0, else Failed), its exit codes, when it
   finished, its completion index (``io.podkit.completion-index``);
4. plan (``plan_job``, pure): succeeded and failed counts (podFailurePolicy's Ignore not counted, FailJob ending
   the Job, FailIndex failing an index), the Job failed past backoffLimit, past activeDeadlineSeconds or
   maxFailedIndexes, complete at ``completions`` successes (or, without completions, at the first success with
   none active); else the pods to create up to ``parallelism`` (Indexed: the lowest indexes neither succeeded nor
   active) once the failure backoff (``backoff_delay``) has passed; the pods whose main containers finished get
   their native sidecars and sandbox stopped (the kubelet's termination of a finished pod);
5. apply: pods made with the pod module's own ``converge_pod`` (through the pods module's ``converge``
   callback), never recorded for podkit-guard (a finished Job pod must stay finished); removed the same way.
   ``wait: true`` ticks until every Job finished (or ``wait_timeout``); ``wait: false`` ticks once.

What one host does differently is in the README's Jobs section.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._docker import Container, DockerError, docker_time
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._labels import (
    LABEL_CONTAINER, LABEL_JOB_INDEX, LABEL_NAMESPACE, LABEL_OWNER_KIND, LABEL_OWNER_NAME, LABEL_POD,
    LABEL_ROLE, LABEL_SIDECAR, ROLE_INIT, ROLE_MEMBER, ROLE_SANDBOX)

JOB_SPEC_FIELDS = ("parallelism", "completions", "completionMode", "backoffLimit", "backoffLimitPerIndex",
                   "maxFailedIndexes", "activeDeadlineSeconds", "podFailurePolicy", "ttlSecondsAfterFinished",
                   "suspend", "selector", "manualSelector", "template", "podReplacementPolicy", "managedBy",
                   "successPolicy")
# batch/v1 SetDefaults_Job: backoffLimit 6 (the largest int32 when backoffLimitPerIndex is given).
DEFAULT_BACKOFF_LIMIT = 6
MAX_INT32 = 2147483647
# The failure backoff of the Job controller (pkg/controller/job/job_controller.go DefaultJobPodFailureBackOff,
# MaxJobPodFailureBackOff; the Job docs, "Pod backoff failure policy": "an exponential back-off delay (10s, 20s,
# 40s ...) capped at six minutes"), counted over the failures since the last success (backoff_utils.go).
BACKOFF_FIRST = 10.0
BACKOFF_MAX = 360.0
# The Kubernetes name of the completion index: the pod's annotation (and label), and its containers' variable.
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
INDEX_ENV = "JOB_COMPLETION_INDEX"
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
RERUN_CHOICES = ("changed", "always", "never")
POLICY_ACTIONS = ("FailJob", "Ignore", "Count", "FailIndex")
# batch/v1 validation of successPolicy (pkg/apis/batch/validation): 1 to 20 rules.
MAX_SUCCESS_RULES = 20
TICK = 0.5
LOG_LINES = 5


@dataclass
class FailureRule:
    """One rule of podFailurePolicy: its action, and the exit codes that match (None: an onPodConditions rule,
    which never matches on one Docker host: no pod is disrupted or evicted there)."""
    action: str
    operator: Optional[str] = None
    values: Tuple[int, ...] = ()
    container: Optional[str] = None


@dataclass
class SuccessRule:
    """One rule of successPolicy (KEP-3998, GA in Kubernetes 1.33): the indexes that count (None: all of them)
    and how many of those must have succeeded (None: every one named)."""
    indexes: Optional[Tuple[int, ...]] = None
    count: Optional[int] = None


@dataclass
class JobSpec:
    """A Job's run-to-completion rules, with batch/v1's defaults filled in."""
    completions: Optional[int] = 1
    parallelism: int = 1
    indexed: bool = False
    backoff_limit: int = DEFAULT_BACKOFF_LIMIT
    backoff_per_index: Optional[int] = None
    max_failed_indexes: Optional[int] = None
    deadline: Optional[int] = None            # activeDeadlineSeconds
    ttl: Optional[int] = None                 # ttlSecondsAfterFinished
    suspend: bool = False
    on_failure: bool = False                  # the template's restartPolicy is OnFailure (else Never)
    rules: List[FailureRule] = field(default_factory=list)
    success: List[SuccessRule] = field(default_factory=list)
    rerun: str = "changed"


@dataclass
class JobPod:
    """One observed pod of a Job."""
    name: str
    serial: int
    index: Optional[int]
    phase: str                                # Pending, Running, Succeeded, Failed
    exit_codes: Dict[str, int] = field(default_factory=dict)      # container -> exit code, for those that ended
    finished: Optional[float] = None          # when its last main container ended
    restarts: int = 0                         # restarts of its containers (OnFailure)
    start_errors: Dict[str, str] = field(default_factory=dict)    # container -> the engine's error: never started
    sidecars_running: List[str] = field(default_factory=list)     # containers (ids) to stop once it finished
    sandbox_running: Optional[str] = None     # the sandbox id while it runs


@dataclass
class JobStatus:
    """What the record keeps of a Job (and pod_facts shows)."""
    spec_hash: str
    phase: str = "Running"                    # Running, Suspended, Complete, Failed
    reason: str = ""
    message: str = ""
    start_time: Optional[float] = None
    completion_time: Optional[float] = None
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    completed_indexes: List[int] = field(default_factory=list)
    failed_indexes: List[int] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.phase in ("Complete", "Failed")

    def as_dict(self) -> Dict[str, Any]:
        return dict(spec_hash=self.spec_hash, phase=self.phase, reason=self.reason, message=self.message,
                    start_time=_iso(self.start_time), completion_time=_iso(self.completion_time), active=self.active,
                    succeeded=self.succeeded, failed=self.failed, completed_indexes=list(self.completed_indexes),
                    failed_indexes=list(self.failed_indexes))

    @classmethod
    def from_dict(cls, body: Dict[str, Any]) -> "JobStatus":
        return cls(spec_hash=body.get("spec_hash") or "", phase=body.get("phase") or "Running",
                   reason=body.get("reason") or "", message=body.get("message") or "",
                   start_time=_epoch(body.get("start_time")), completion_time=_epoch(body.get("completion_time")),
                   active=int(body.get("active") or 0), succeeded=int(body.get("succeeded") or 0),
                   failed=int(body.get("failed") or 0), completed_indexes=list(body.get("completed_indexes") or []),
                   failed_indexes=list(body.get("failed_indexes") or []))


@dataclass
class JobPlan:
    """One tick of a Job, as data: what to create (pod name, index), stop, remove, and the status it leaves."""
    create: List[Tuple[str, Optional[int]]] = field(default_factory=list)
    stop: List[str] = field(default_factory=list)             # finished pods whose sidecars and sandbox still run
    remove: List[str] = field(default_factory=list)
    status: Optional[JobStatus] = None
    due: Optional[float] = None                               # when the backoff lets the next pod be made


def _iso(value: Optional[float]) -> Optional[str]:
    if value is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value))


def _epoch(text: Optional[str]) -> Optional[float]:
    """An RFC 3339 time (a status time written by ``_iso``, Docker's FinishedAt) as epoch seconds; None: none."""
    nanos = docker_time(text)
    return nanos / 1e9 if nanos else None


# ---------------------------------------------------------------------------
# 1. parse


def whole(value: Any, where: str, minimum: int = 0) -> int:
    """An integer field of a Job or CronJob spec, at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PodkitError("%s: %r must be a whole number of at least %d." % (where, value, minimum))
    return value


def flag(value: Any, where: str) -> bool:
    """A boolean field of a Job or CronJob spec (``suspend``): absent is false."""
    if value is not None and not isinstance(value, bool):
        raise PodkitError("%s: %r must be true or false." % (where, value))
    return bool(value)


def job_spec_hash(spec: Dict[str, Any]) -> str:
    """What decides whether a finished Job runs again (``rerun: changed``): its spec but suspend and
    ttlSecondsAfterFinished (Kubernetes lets those change on a Job; the rest is immutable there)."""
    kept = dict((k, v) for k, v in spec.items() if k not in ("suspend", "ttlSecondsAfterFinished"))
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


def parse_job(spec: Dict[str, Any], template: Dict[str, Any], where: str, rerun: Optional[str]) -> JobSpec:
    """A Job's spec (``where`` names it: ``pods[0].manifest[1].spec``) as a JobSpec; PodkitError naming the field
    for what the API server refuses or podkit cannot honour."""
    for key in spec:
        if key not in JOB_SPEC_FIELDS:
            raise PodkitError("%s.%s: not a Job field podkit reads (it reads %s); remove it."
                              % (where, key, ", ".join(JOB_SPEC_FIELDS)))
    job = JobSpec(rerun=rerun or "changed")
    if job.rerun not in RERUN_CHOICES:
        raise PodkitError("rerun: %r is not one of %s." % (rerun, ", ".join(RERUN_CHOICES)))
    policy = (template.get("spec") or {}).get("restartPolicy")
    if policy not in ("Never", "OnFailure"):
        raise PodkitError("%s.template.spec.restartPolicy: %r; a Job's pods need Never or OnFailure (the API server"
                          " refuses Always, the default), so that they can finish: add restartPolicy: Never."
                          % (where, policy))
    job.on_failure = policy == "OnFailure"
    mode = spec.get("completionMode") or "NonIndexed"
    if mode not in ("NonIndexed", "Indexed"):
        raise PodkitError("%s.completionMode: %r is not one of NonIndexed, Indexed." % (where, mode))
    job.indexed = mode == "Indexed"
    completions, parallelism = spec.get("completions"), spec.get("parallelism")
    if completions is not None:
        completions = whole(completions, where + ".completions")
    if parallelism is not None:
        parallelism = whole(parallelism, where + ".parallelism")
    # SetDefaults_Job: neither given: 1 and 1; only parallelism: a work queue (no completions).
    if completions is None and parallelism is None:
        completions = 1
    job.completions = completions
    job.parallelism = 1 if parallelism is None else parallelism
    if job.indexed and job.completions is None:
        raise PodkitError("%s.completions: an Indexed Job needs completions (the number of indexes)." % where)
    if spec.get("backoffLimitPerIndex") is not None:
        if not job.indexed:
            raise PodkitError("%s.backoffLimitPerIndex: only for completionMode: Indexed (as the API server says)."
                              % where)
        job.backoff_per_index = whole(spec["backoffLimitPerIndex"], where + ".backoffLimitPerIndex")
        job.backoff_limit = MAX_INT32
    if spec.get("maxFailedIndexes") is not None:
        if job.backoff_per_index is None:
            raise PodkitError("%s.maxFailedIndexes: only with backoffLimitPerIndex (as the API server says)." % where)
        job.max_failed_indexes = whole(spec["maxFailedIndexes"], where + ".maxFailedIndexes")
    if spec.get("backoffLimit") is not None:
        job.backoff_limit = whole(spec["backoffLimit"], where + ".backoffLimit")
    if spec.get("activeDeadlineSeconds") is not None:
        job.deadline = whole(spec["activeDeadlineSeconds"], where + ".activeDeadlineSeconds", 1)
    if spec.get("ttlSecondsAfterFinished") is not None:
        job.ttl = whole(spec["ttlSecondsAfterFinished"], where + ".ttlSecondsAfterFinished")
    job.suspend = flag(spec.get("suspend"), where + ".suspend")
    replacement = spec.get("podReplacementPolicy")
    if replacement not in (None, "TerminatingOrFailed", "Failed"):
        raise PodkitError("%s.podReplacementPolicy: %r is not one of TerminatingOrFailed, Failed." % (where, replacement))
    managed = spec.get("managedBy")
    if managed not in (None, "kubernetes.io/job-controller"):
        raise PodkitError("%s.managedBy: %r names another controller; podkit runs the Job itself (remove managedBy)."
                          % (where, managed))
    job.rules = _failure_policy(spec.get("podFailurePolicy"), where + ".podFailurePolicy", job)
    job.success = _success_policy(spec.get("successPolicy"), where + ".successPolicy", job)
    return job


def index_set(text: Any, completions: int, where: str) -> Tuple[int, ...]:
    """An index list as the Job API writes it (``"0,2-3"``: ascending, non-overlapping intervals within
    0..completions-1, as batch/v1 validation requires of succeededIndexes) as the indexes it holds."""
    if not isinstance(text, str) or not text.strip():
        raise PodkitError("%s: %r; give indexes as intervals, like \"0,2-3\"." % (where, text))
    found: List[int] = []
    for part in text.split(","):
        bounds = part.strip().split("-")
        if len(bounds) > 2 or not all(b.strip().isdigit() for b in bounds):
            raise PodkitError("%s: %r is not an index or an interval like 2-3 (in %r)." % (where, part, text))
        first, last = int(bounds[0]), int(bounds[-1])
        if last < first:
            raise PodkitError("%s: the interval %r runs backwards (in %r)." % (where, part.strip(), text))
        if found and first <= found[-1]:
            raise PodkitError("%s: %r overlaps or comes before the interval ahead of it; list intervals in ascending"
                              " order without overlap (in %r)." % (where, part.strip(), text))
        if last >= completions:
            raise PodkitError("%s: index %d is past completions - 1 = %d (in %r)." % (where, last, completions - 1, text))
        found.extend(range(first, last + 1))
    return tuple(found)


def _success_policy(value: Any, where: str, job: JobSpec) -> List[SuccessRule]:
    if value is None:
        return []
    if not job.indexed:
        raise PodkitError("%s: only for completionMode: Indexed (as the API server says)." % where)
    rules = value.get("rules") if isinstance(value, dict) else None
    if not isinstance(value, dict) or set(value) - {"rules"} or not isinstance(rules, list) or not rules:
        raise PodkitError("%s: give rules, a list of {succeededIndexes, succeededCount}." % where)
    if len(rules) > MAX_SUCCESS_RULES:
        raise PodkitError("%s.rules: %d rules; the API server allows at most %d." % (where, len(rules), MAX_SUCCESS_RULES))
    completions = job.completions or 0
    found = []
    for i, rule in enumerate(rules):
        place = "%s.rules[%d]" % (where, i)
        if not isinstance(rule, dict) or set(rule) - {"succeededIndexes", "succeededCount"} or not rule:
            raise PodkitError("%s: give succeededIndexes, succeededCount or both." % place)
        success = SuccessRule()
        if rule.get("succeededIndexes") is not None:
            success.indexes = index_set(rule["succeededIndexes"], completions, place + ".succeededIndexes")
        if rule.get("succeededCount") is not None:
            success.count = whole(rule["succeededCount"], place + ".succeededCount", 1)
            most = completions if success.indexes is None else len(success.indexes)
            if success.count > most:
                raise PodkitError("%s.succeededCount: %d is more than the %d indexes it counts (%s); the API server"
                                  " refuses it." % (place, success.count, most, "succeededIndexes"
                                                    if success.indexes is not None else "completions"))
        if success.indexes is None and success.count is None:
            raise PodkitError("%s: give succeededIndexes, succeededCount or both." % place)
        found.append(success)
    return found


def success_rule_met(rules: Sequence[SuccessRule], completed: Sequence[int]) -> Optional[int]:
    """The place of the first successPolicy rule the completed indexes meet, or None (the Job controller's
    matchSuccessPolicy: rules in order; with succeededIndexes only those indexes count)."""
    done = set(completed)
    for place, rule in enumerate(rules):
        counted = done if rule.indexes is None else done & set(rule.indexes)
        wanted = rule.count if rule.count is not None else len(rule.indexes or ())
        if len(counted) >= wanted:
            return place
    return None


def _failure_policy(value: Any, where: str, job: JobSpec) -> List[FailureRule]:
    if value is None:
        return []
    if not isinstance(value, dict) or set(value) - {"rules"}:
        raise PodkitError("%s: give rules (a list of {action, onExitCodes | onPodConditions})." % where)
    if job.on_failure:
        raise PodkitError("%s: only with the template's restartPolicy: Never (as the API server requires)." % where)
    rules = []
    for i, rule in enumerate(value.get("rules") or []):
        place = "%s.rules[%d]" % (where, i)
        if not isinstance(rule, dict) or set(rule) - {"action", "onExitCodes", "onPodConditions"}:
            raise PodkitError("%s: give action and onExitCodes or onPodConditions." % place)
        action = rule.get("action")
        if action not in POLICY_ACTIONS:
            raise PodkitError("%s.action: %r is not one of %s." % (place, action, ", ".join(POLICY_ACTIONS)))
        if action == "FailIndex" and job.backoff_per_index is None:
            raise PodkitError("%s.action: FailIndex needs backoffLimitPerIndex (as the API server says)." % place)
        codes, conditions = rule.get("onExitCodes"), rule.get("onPodConditions")
        if (codes is None) == (conditions is None):
            raise PodkitError("%s: give exactly one of onExitCodes, onPodConditions." % place)
        if conditions is not None:
            # DisruptionTarget and the like come from evictions and preemption, which one host never does.
            rules.append(FailureRule(action=action))
            continue
        if not isinstance(codes, dict) or set(codes) - {"containerName", "operator", "values"}:
            raise PodkitError("%s.onExitCodes: give operator (In or NotIn), values and optionally containerName." % place)
        if codes.get("operator") not in ("In", "NotIn"):
            raise PodkitError("%s.onExitCodes.operator: %r is not one of In, NotIn." % (place, codes.get("operator")))
        values = codes.get("values")
        if not isinstance(values, list) or not values or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise PodkitError("%s.onExitCodes.values: give a list of exit codes, got %r." % (place, values))
        if codes["operator"] == "In" and 0 in values:
            raise PodkitError("%s.onExitCodes.values: 0 with operator In is refused by the API server (a success never"
                              " matches a failure rule)." % place)
        rules.append(FailureRule(action=action, operator=codes["operator"], values=tuple(values),
                                 container=codes.get("containerName")))
    return rules


# ---------------------------------------------------------------------------
# 4. plan (pure)


def backoff_delay(failures: int) -> float:
    """The wait before the next pod after ``failures`` failures in a row (since the last success): none for the
    first pod, then 10 s doubling, capped at 6 minutes."""
    if failures <= 0:
        return 0.0
    return min(BACKOFF_FIRST * (2 ** min(failures - 1, 16)), BACKOFF_MAX)


def failures_in_a_row(pods: Sequence[JobPod]) -> Tuple[int, Optional[float]]:
    """(the failed pods since the last success, when the last of them finished), as backoff_utils.go counts
    them: a success resets the count."""
    count, last = 0, None
    for pod in sorted((p for p in pods if p.phase in ("Succeeded", "Failed")), key=lambda p: (p.finished or 0, p.serial)):
        if pod.phase == "Succeeded":
            count, last = 0, None
        else:
            count, last = count + 1, pod.finished
    return count, last


def rule_for(rules: Sequence[FailureRule], pod: JobPod) -> Optional[str]:
    """The action of the first podFailurePolicy rule that matches the failed pod (containers that exited 0 left
    out, as onExitCodes says), or None (counted against backoffLimit)."""
    for rule in rules:
        if rule.operator is None:
            continue
        for container, code in sorted(pod.exit_codes.items()):
            if code == 0 or (rule.container and rule.container != container):
                continue
            if (code in rule.values) == (rule.operator == "In"):
                return rule.action
    return None


def plan_job(job: JobSpec, status: JobStatus, pods: Sequence[JobPod], now: float,
             pod_name: Callable[[int], str]) -> JobPlan:
    """One sync of a Job over its observed pods: the status it is in and what to do now. ``pod_name(serial)``
    names a new pod."""
    plan = JobPlan(status=JobStatus(spec_hash=status.spec_hash, start_time=status.start_time))
    new = plan.status
    plan.stop = [p.name for p in pods if p.phase in ("Succeeded", "Failed") and (p.sidecars_running or p.sandbox_running)]
    active = [p for p in pods if p.phase in ("Pending", "Running")]
    if job.suspend:
        # A suspended Job's active pods are removed, its start time forgotten (activeDeadlineSeconds starts again).
        new.phase, new.reason, new.start_time = "Suspended", "JobSuspended", None
        plan.remove = [p.name for p in active]
        _count(job, new, pods, [])
        return plan
    if new.start_time is None:
        new.start_time = now
    failed_job: Optional[Tuple[str, str]] = None
    counted: List[JobPod] = []
    per_index: Dict[int, int] = {}
    for pod in pods:
        if pod.phase != "Failed":
            continue
        action = rule_for(job.rules, pod)
        if action == "Ignore":
            continue
        if action == "FailJob" and failed_job is None:
            failed_job = ("PodFailurePolicy", "pod %s failed with exit codes %s, which podFailurePolicy's FailJob names"
                          % (pod.name, _codes(pod)))
        counted.append(pod)
        if pod.index is not None:
            # FailIndex fails the index at once; any other failure counts once against backoffLimitPerIndex.
            bump = (job.backoff_per_index or 0) + 1 if action == "FailIndex" else 1
            per_index[pod.index] = per_index.get(pod.index, 0) + bump
    _count(job, new, pods, counted)
    restarts = sum(p.restarts for p in active) if job.on_failure else 0
    if job.backoff_per_index is not None:
        new.failed_indexes = sorted(i for i, n in per_index.items() if n > job.backoff_per_index
                                    and i not in new.completed_indexes)
    if failed_job is None and job.backoff_per_index is None and len(counted) + restarts > job.backoff_limit:
        failed_job = ("BackoffLimitExceeded", "%d failed pods%s, more than backoffLimit %d" % (
            len(counted), " and %d restarts" % restarts if restarts else "", job.backoff_limit))
    if failed_job is None and job.max_failed_indexes is not None and len(new.failed_indexes) > job.max_failed_indexes:
        failed_job = ("MaxFailedIndexesExceeded", "failed indexes %s, more than maxFailedIndexes %d"
                      % (new.failed_indexes, job.max_failed_indexes))
    if failed_job is None and job.deadline is not None and now - new.start_time >= job.deadline:
        failed_job = ("DeadlineExceeded", "active for longer than activeDeadlineSeconds %d" % job.deadline)
    if failed_job is not None:
        return _finish(plan, "Failed", failed_job, active, now)
    met = success_rule_met(job.success, new.completed_indexes) if job.success else None
    if met is not None:
        # SuccessCriteriaMet, then Complete: the lingering pods are removed, failed indexes or not (the Job
        # controller checks the success policy after the failure rules, before completions).
        return _finish(plan, "Complete", ("SuccessPolicy", "successPolicy.rules[%d] met: indexes %s succeeded"
                                          % (met, new.completed_indexes)), active, now)
    if _complete(job, new, active):
        if new.failed_indexes:
            return _finish(plan, "Failed", ("FailedIndexes", "indexes %s failed" % new.failed_indexes), active, now)
        return _finish(plan, "Complete", ("Completed", "%d succeeded" % new.succeeded), active, now)
    wanted = _wanted(job, new, active)
    if wanted:
        serial = max([p.serial for p in pods] + [-1]) + 1
        dues = []
        for index in wanted:
            # With backoffLimitPerIndex the delay counts the index's own failures (KEP-3850; the controller's
            # getRemainingTimePerIndex): a failing index does not hold the others back. Else the Job's.
            counted_pods = [p for p in pods if p.index == index] if job.backoff_per_index is not None else pods
            in_a_row, last = failures_in_a_row(counted_pods)
            due = (last or now) + backoff_delay(in_a_row) if in_a_row else now
            if due > now:
                dues.append(due)
                if job.backoff_per_index is None:
                    break
                continue
            plan.create.append((pod_name(serial), index))
            serial += 1
        if dues:
            plan.due = min(dues)
    new.active = len(active) + len(plan.create)
    return plan


def _codes(pod: JobPod) -> str:
    return ", ".join("%s=%d" % item for item in sorted(pod.exit_codes.items())) or "none"


def _count(job: JobSpec, new: JobStatus, pods: Sequence[JobPod], counted: Sequence[JobPod]) -> None:
    done = [p for p in pods if p.phase == "Succeeded"]
    if job.indexed:
        new.completed_indexes = sorted(set(p.index for p in done if p.index is not None and p.index < (job.completions or 0)))
        new.succeeded = len(new.completed_indexes)
    else:
        new.succeeded = len(done)
    new.failed = len(counted)
    new.active = len([p for p in pods if p.phase in ("Pending", "Running")])


def _complete(job: JobSpec, new: JobStatus, active: Sequence[JobPod]) -> bool:
    if job.completions is None:
        # A work queue: done once a pod succeeded and none is left running.
        return new.succeeded > 0 and not active
    if job.indexed:
        return all(i in new.completed_indexes or i in new.failed_indexes for i in range(job.completions)) and not any(
            p.index in new.failed_indexes for p in active)
    return new.succeeded >= job.completions


def _wanted(job: JobSpec, new: JobStatus, active: Sequence[JobPod]) -> List[Optional[int]]:
    """The indexes (None for NonIndexed) of the pods to create now, within parallelism."""
    room = job.parallelism - len(active)
    if room <= 0:
        return []
    if job.completions is None:
        return [] if new.succeeded else [None] * room
    if job.indexed:
        busy = set(p.index for p in active)
        free = [i for i in range(job.completions)
                if i not in new.completed_indexes and i not in new.failed_indexes and i not in busy]
        return free[:room]
    return [None] * max(0, min(room, job.completions - new.succeeded - len(active)))


def _finish(plan: JobPlan, phase: str, why: Tuple[str, str], active: Sequence[JobPod], now: float) -> JobPlan:
    new = plan.status
    new.phase, (new.reason, new.message) = phase, why
    new.completion_time = now
    # The Job's pods still running are ended (the controller deletes them); those that finished stay for their logs.
    plan.remove = [p.name for p in active]
    new.active = 0
    return plan


def ttl_expired(job: JobSpec, status: JobStatus, now: float) -> bool:
    """ttlSecondsAfterFinished: the finished Job's pods are removed once it has gone by."""
    return job.ttl is not None and status.finished and status.completion_time is not None and \
        now >= status.completion_time + job.ttl


# ---------------------------------------------------------------------------
# 3. observe


def owned_sandboxes(api: Any, kind: str, name: str, namespace: str) -> List[Dict[str, Any]]:
    """List summaries of the sandboxes of the pods that ``kind``/``name`` in ``namespace`` owns (their owner labels)."""
    found = []
    for summary in api.containers(all=True, filters={"label": "%s=%s" % (LABEL_OWNER_NAME, name)}):
        labels = summary.get("Labels") or {}
        if labels.get(LABEL_OWNER_KIND) == kind and labels.get(LABEL_ROLE) == ROLE_SANDBOX and \
                (labels.get(LABEL_NAMESPACE) or "default") == namespace:
            found.append(dict(summary, Labels=labels))
    return found


def job_pods(api: Any, job: str, namespace: str) -> List[str]:
    """The names of Job ``job``'s pods on the engine, sorted."""
    return sorted(summary["Labels"][LABEL_POD] for summary in owned_sandboxes(api, "Job", job, namespace))


def observe_job(api: Any, owner: Dict[str, str], namespace: str, cache: Dict[str, Container]) -> List[JobPod]:
    """The Job's pods on the engine (its sandboxes' owner labels), each one's phase from its containers. ``cache``
    keeps the inspection of containers that ended (they do not change)."""
    pods: Dict[str, Dict[str, Any]] = {}
    for summary in owned_sandboxes(api, owner[LABEL_OWNER_KIND], owner[LABEL_OWNER_NAME], namespace):
        labels = summary["Labels"]
        pods[labels[LABEL_POD]] = dict(sandbox=summary, labels=labels, containers=[])
    if not pods:
        return []
    for summary in api.containers(all=True, filters={"label": LABEL_POD}):
        pod = (summary.get("Labels") or {}).get(LABEL_POD)
        if pod in pods and (summary.get("Labels") or {}).get(LABEL_ROLE) in (ROLE_MEMBER, ROLE_INIT):
            pods[pod]["containers"].append(summary)
    found = []
    for name, item in pods.items():
        found.append(_job_pod(api, name, item, cache))
    return sorted(found, key=lambda p: p.serial)


def _inspect(api: Any, container_id: str, cache: Dict[str, Container]) -> Container:
    """The container (an empty view when the engine does not show it); one that ended is kept in ``cache``."""
    if container_id in cache:
        return cache[container_id]
    try:
        seen = Container(api.inspect_container(container_id))
    except DockerError:
        return Container({})
    if seen.status == "exited" and not seen.state.get("Restarting"):
        cache[container_id] = seen
    return seen


def _job_pod(api: Any, name: str, item: Dict[str, Any], cache: Dict[str, Container]) -> JobPod:
    labels = item["labels"]
    tail = name.rsplit("-", 1)[-1]
    index = labels.get(LABEL_JOB_INDEX)
    pod = JobPod(name=name, serial=int(tail) if tail.isdigit() else 0,
                 index=int(index) if index is not None and index.isdigit() else None, phase="Pending")
    members, sidecars, inits = [], [], []
    for summary in item["containers"]:
        clabels = summary.get("Labels") or {}
        # A native sidecar runs beside the members (role member) but is no main container: it carries its place.
        if clabels.get(LABEL_SIDECAR) is not None:
            sidecars.append(summary)
        elif clabels.get(LABEL_ROLE) == ROLE_MEMBER:
            members.append(summary)
        else:
            inits.append(summary)
    ended = []
    for summary in members + inits:
        seen = _inspect(api, summary["Id"], cache)
        state = seen.state
        container = (summary.get("Labels") or {}).get(LABEL_CONTAINER) or summary["Id"][:12]
        pod.restarts += seen.restart_count
        if state.get("Status") == "exited" and not state.get("Restarting"):
            pod.exit_codes[container] = int(state.get("ExitCode") or 0)
            if summary in members:
                ended.append(_epoch(state.get("FinishedAt")))
        elif state.get("Status") == "created" and state.get("Error"):
            # The engine could not start it (a command not in the image, a bad mount): the kubelet's StartError,
            # a terminated container with exit code 128 that fails the pod. Docker's own code (127: not found)
            # is kept when it gives one.
            pod.exit_codes[container] = int(state.get("ExitCode") or 0) or 128
            pod.start_errors[container] = str(state["Error"])
            # It never ran, so it never finished: the failure is dated by its creation, which the next tick
            # reads alike (the backoff counts from it).
            if summary.get("Created"):
                ended.append(float(summary["Created"]))
    failed_init = any(pod.exit_codes.get((s.get("Labels") or {}).get(LABEL_CONTAINER), 0) != 0 for s in inits)
    if pod.start_errors:
        # A pod one of whose containers never started has failed: the containers that did start are stopped
        # with its sandbox (the kubelet runs them on; here the pod is counted at once, as a failed pod).
        pod.phase = "Failed"
        pod.finished = max((e for e in ended if e is not None), default=None) or time.time()
        pod.sidecars_running = [s["Id"] for s in members + sidecars if s.get("State") in ("running", "restarting")]
        sandbox = item["sandbox"]
        pod.sandbox_running = sandbox["Id"] if sandbox.get("State") == "running" else None
        return pod
    if members and len(ended) == len(members):
        failed = any(pod.exit_codes.get((s.get("Labels") or {}).get(LABEL_CONTAINER) or s["Id"][:12], 0) != 0
                     for s in members)
        pod.phase = "Failed" if failed else "Succeeded"
        pod.finished = max(e for e in ended if e is not None) if any(e is not None for e in ended) else time.time()
    elif not members and failed_init:
        pod.phase = "Failed"
        pod.finished = time.time()
    elif members:
        pod.phase = "Running"
    if pod.phase in ("Succeeded", "Failed"):
        pod.sidecars_running = [s["Id"] for s in sidecars if s.get("State") in ("running", "restarting")]
        sandbox = item["sandbox"]
        pod.sandbox_running = sandbox["Id"] if sandbox.get("State") == "running" else None
    return pod


def failed_pod_lines(api: Any, pods: Sequence[JobPod], limit: int = 3) -> str:
    """The last failed pods' exit codes and the last lines of their failed containers' logs (the task's message)."""
    failed = [p for p in pods if p.phase == "Failed"][-limit:]
    parts = []
    for pod in failed:
        logs = []
        for container, code in sorted(pod.exit_codes.items()):
            if code == 0:
                continue
            try:
                text = api.logs("%s_%s" % (pod.name, container), tail=LOG_LINES).decode("utf-8", "replace").strip()
            except DockerError:
                text = ""
            if container in pod.start_errors:
                logs.append("%s could not start (exit code %d): %s" % (container, code, pod.start_errors[container]))
                continue
            logs.append("%s exited %d%s" % (container, code, (": " + " / ".join(text.splitlines())) if text else ""))
        parts.append("%s: %s" % (pod.name, "; ".join(logs) or "failed"))
    return " | ".join(parts)


def stop_finished(api: Any, pod: JobPod) -> None:
    """A finished pod's native sidecars (in reverse order, as the kubelet ends them after the main containers)
    and its sandbox, stopped: their containers and logs stay until the pod is removed."""
    for container_id in list(reversed(pod.sidecars_running)) + ([pod.sandbox_running] if pod.sandbox_running else []):
        try:
            api.stop(container_id, timeout=5)
        except DockerError:
            pass


def pod_manifest(name: str, namespace: str, template: Dict[str, Any], job_name: str, index: Optional[int],
                 docs: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """A Job pod's manifest: the template, with the labels the Job controller adds, and for an Indexed Job the
    completion index as the annotation and as JOB_COMPLETION_INDEX in every container (from that
    annotation, as the controller writes it: a fieldRef) and the hostname ``<job>-<index>``."""
    spec = json.loads(json.dumps(template.get("spec") or {}))
    metadata = json.loads(json.dumps(template.get("metadata") or {}))
    labels = dict(metadata.get("labels") or {})
    for key in JOB_NAME_LABELS:
        labels.setdefault(key, job_name)
    if index is not None:
        # The annotation only: Kubernetes 1.28+ also sets a label of the same name, but the sandbox keeps both as
        # Docker labels, which would clash; podkit's own io.podkit.completion-index label carries it for selection.
        annotations = dict(metadata.get("annotations") or {})
        annotations[INDEX_ANNOTATION] = str(index)
        metadata["annotations"] = annotations
        source = {"fieldRef": {"fieldPath": "metadata.annotations['%s']" % INDEX_ANNOTATION}}
        for key in ("initContainers", "containers"):
            for container in spec.get(key) or []:
                env = [e for e in container.get("env") or [] if not (isinstance(e, dict) and e.get("name") == INDEX_ENV)]
                container["env"] = env + [{"name": INDEX_ENV, "valueFrom": source}]
        spec.setdefault("hostname", "%s-%d" % (job_name, index))
    metadata.update(name=name, labels=labels)
    if namespace != "default":
        metadata["namespace"] = namespace
    return [{"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}] + list(docs)


# ---------------------------------------------------------------------------
# 2. and 5. decide and apply: one Job's runner, ticked by the pods module with the others of its call


class JobRun:
    """One Job through a module run: ``start`` decides from its record, ``tick`` observes, plans and applies once."""

    def __init__(self, api: Any, workload: Any, check_mode: bool, converge: Callable[..., Any],
                 record: Optional[Dict[str, Any]], clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.workload = workload
        self.job: JobSpec = workload.job
        self.check_mode = check_mode
        self.converge = converge
        self.clock = clock
        self.cache: Dict[str, Container] = {}
        self.steps: List[Tuple[str, List[str], str]] = []
        self.pods: Dict[str, Dict[str, Any]] = {}
        self.removed: List[str] = []
        self.error: Optional[str] = None
        self.done = False
        self.observed: List[JobPod] = []
        self.skipped = ""
        previous = (record or {}).get("job")
        self.status = JobStatus.from_dict(previous) if isinstance(previous, dict) else None

    def owner(self, index: Optional[int]) -> Dict[str, str]:
        owner = dict(self.workload.owner())
        if index is not None:
            owner[LABEL_JOB_INDEX] = str(index)
        return owner

    def pod_name(self, serial: int) -> str:
        return "%s-%s-%d" % (self.workload.name, self.workload.revision[:6], serial)

    def start(self) -> None:
        """Whether this run runs the Job: a finished Job of the same spec is left (rerun changed, never), an old
        spec's pods are removed first (rerun changed, always)."""
        spec_hash = self.workload.revision
        self.observed = observe_job(self.api, self.workload.owner(), self.workload.namespace, self.cache)
        status = self.status
        same = status is not None and status.spec_hash == spec_hash
        rerun = self.job.rerun
        if status is not None and (status.finished or not same):
            if rerun == "never" or (rerun == "changed" and same):
                self.skipped = ("finished (%s) with this spec; rerun: %s" % (status.phase, rerun)) if same else \
                    "its spec changed but rerun: never"
                self.done = True
                if status.phase == "Failed" and self.workload.params.get("wait", True) is not False:
                    # The Job's outcome is what the task reports: a failed Job stays failed, and is not run again.
                    self.error = ("%s failed (%s: %s) when it ran, finished %s; it is not run again: change its spec"
                                  " (rerun: changed) or give rerun: always." % (
                                      self.workload.key, status.reason, status.message, _iso(status.completion_time)))
                self._ttl()
                return
            old = [p.name for p in self.observed]
            if old:
                self._remove(old, "rerun: %s" % ("the spec changed" if not same else "always"))
            self.observed = []
            self.status = None
        if self.status is None or not same:
            self.status = JobStatus(spec_hash=spec_hash)

    def _ttl(self) -> None:
        if self.status is not None and ttl_expired(self.job, self.status, self.clock()) and self.observed:
            self._remove([p.name for p in self.observed], "ttlSecondsAfterFinished %d" % (self.job.ttl or 0))

    def tick(self, batch: Optional[List[Tuple["JobRun", List[Tuple[str, Dict[str, Any]]]]]] = None) -> Optional[float]:
        """Observe, plan, apply once (the pods to create go to ``batch`` when given: the caller makes those of every
        Job at once). Returns when the next tick is useful (None: now is as good as later)."""
        if self.done:
            return None
        now = self.clock()
        # In check mode the pods a rerun removes are still there: planned as gone, as a real run has them.
        pods = [p for p in observe_job(self.api, self.workload.owner(), self.workload.namespace, self.cache)
                if p.name not in self.removed]
        self.observed = pods
        plan = plan_job(self.job, self.status, pods, now, self.pod_name)
        for name in plan.stop:
            pod = next(p for p in pods if p.name == name)
            if not self.check_mode:
                stop_finished(self.api, pod)
        if plan.remove:
            self._remove(plan.remove, plan.status.reason or "ended")
        if plan.create:
            names = [n for n, _i in plan.create]
            reason = ", ".join("index %d" % i for _n, i in plan.create if i is not None) or "completions"
            self.steps.append(("create", names, reason))
            # In check mode too: the pods' own check run plans them from the template with the file's ConfigMaps
            # and Secrets, so what the real run would refuse (a missing key, an image) is refused here as well.
            items = [(n, self.params(n, i)) for n, i in plan.create]
            if batch is not None:
                batch.append((self, items))
            else:
                self.take_results(self.converge(items))
        self.status = plan.status
        if self.check_mode:
            self.done = True
        elif self.status.finished or self.status.phase == "Suspended":
            self.done = True
            if self.status.phase == "Failed":
                detail = failed_pod_lines(self.api, observe_job(self.api, self.workload.owner(),
                                                                self.workload.namespace, self.cache))
                self.error = "%s failed (%s: %s)%s" % (self.workload.key, self.status.reason, self.status.message,
                                                       ". Failed pods: " + detail if detail else "")
            if self.job.ttl == 0:
                self.observed = observe_job(self.api, self.workload.owner(), self.workload.namespace, self.cache)
                self._ttl()
        return plan.due

    def params(self, pod: str, index: Optional[int]) -> Dict[str, Any]:
        params = dict(self.workload.params)
        params.pop("rerun", None)
        params.update(name=pod, state="present", manifest_file=None, wait=False, record=False, owner=self.owner(index),
                      manifest=pod_manifest(pod, self.workload.namespace, self.workload.template, self.workload.name,
                                            index, self.workload.docs))
        return params

    def _remove(self, names: List[str], reason: str) -> None:
        self.steps.append(("remove", list(names), reason))
        self.removed.extend(names)
        if self.check_mode:
            return
        params = dict(self.workload.params)
        params.pop("rerun", None)
        items = []
        for name in names:
            item = dict(params, name=name, state="absent", manifest=None, manifest_file=None, record=False)
            items.append((name, item))
        self.take_results(self.converge(items))

    def take_results(self, results: Dict[str, Tuple[Dict[str, Any], Optional[str]]]) -> None:
        failed = []
        for pod, (result, error) in results.items():
            previous = self.pods.get(pod)
            if previous is not None:
                result = dict(result, actions=list(previous.get("actions") or []) + list(result.get("actions") or []),
                              changed=True)
            self.pods[pod] = result
            if error is not None and not self._never_started(pod):
                failed.append("%s: %s" % (pod, error))
        if failed and self.error is None:
            self.error = "%s: %s" % (self.workload.key, " | ".join(failed))
            self.done = True

    def _never_started(self, pod: str) -> bool:
        """Whether ``pod`` was made and a container of it could not be started: a failed pod of the Job, counted
        against backoffLimit (or its podFailurePolicy) on the next tick, not an error of this run."""
        if self.check_mode:
            return False
        found = [p for p in observe_job(self.api, self.workload.owner(), self.workload.namespace, self.cache)
                 if p.name == pod]
        return bool(found) and bool(found[0].start_errors)

    def record_body(self) -> Optional[Dict[str, Any]]:
        return self.status.as_dict() if self.status is not None else None


def still_to_drive(run: JobRun) -> bool:
    """Whether podkit-guard should go on with the Job after this run: it is still running (``wait: false``, or
    past ``wait_timeout``), or it finished and ``ttlSecondsAfterFinished`` has pods left to remove."""
    status = run.status
    if status is None or run.check_mode:
        return False
    if status.phase == "Running":
        return True
    return status.finished and run.job.ttl is not None and any(p.name not in run.removed for p in run.observed)


def run_jobs(runs: List[JobRun], wait: Callable[[JobRun], bool], timeout: Callable[[JobRun], int],
             sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
             save: Optional[Callable[[JobRun], None]] = None) -> None:
    """Every Job of the call ticked together until each is done: finished, suspended, not waited for (one tick),
    or past its wait_timeout (an error saying it goes on)."""
    started = clock()
    for run in runs:
        run.start()
    while True:
        pending: Set[int] = set()
        due: List[float] = []
        batch: List[Tuple[JobRun, List[Tuple[str, Dict[str, Any]]]]] = []
        for number, run in enumerate(runs):
            if run.done:
                continue
            next_due = run.tick(batch)
            if save is not None:
                save(run)
            if run.done:
                continue
            if not wait(run):
                run.done = True
                continue
            if clock() - started >= timeout(run):
                run.done = True
                run.error = ("%s is still running after wait_timeout (%ds): %d active, %d succeeded, %d failed; its pods"
                             " go on, and podkit-guard (where it runs) or the next run continues the Job (raise"
                             " wait_timeout to wait longer)."
                             % (run.workload.key, timeout(run), run.status.active, run.status.succeeded,
                                run.status.failed))
                continue
            pending.add(number)
            if next_due is not None:
                due.append(next_due)
        if batch:
            # The new pods of every Job at once, through the pods module's workers.
            results = batch[0][0].converge([item for _run, items in batch for item in items])
            for run, items in batch:
                run.take_results(dict((name, results[name]) for name, _params in items))
                if save is not None:
                    save(run)
        if not pending:
            return
        now = clock()
        pause = TICK if not due else max(TICK, min(min(due) - now, 5.0))
        sleep(pause)


def job_summary(run: JobRun) -> Dict[str, Any]:
    """A Job's entry in the pods module's ``workloads`` (beside kind, name, revision): its status."""
    body = dict(run.record_body() or {})
    body.pop("spec_hash", None)
    if run.skipped:
        body["skipped"] = run.skipped
    return body
