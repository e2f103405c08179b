# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Workloads above the pod: Deployment, ReplicaSet, StatefulSet, DaemonSet (and Job, run by _jobs) on one Docker host.

One workload entry of ``pods`` is one cycle, in the order of the Kubernetes controllers' sync:

1. parse (``parse_workload``): the workload document and the ConfigMaps, Secrets and
   PersistentVolumeClaims of its file; the template's revision (a hash of ``spec.template``); the
   strategy's fenceposts resolved as deployment/util's ResolveFenceposts does. Bad input fails here,
   before anything is touched;
2. observe (``owned_pods``): its pods, from the pods module's one list call, by their owner labels
   (``io.podkit.owner-kind``, ``io.podkit.owner-name``, ``io.podkit.namespace``), each with its
   revision (``io.podkit.revision``) and whether it is Ready;
3. plan (``plan_workload``): a list of ``Step`` (create these pods, wait until they are Ready,
   remove those), pure, from (wanted, observed): ``plan_rolling`` is rolling.go's rolloutRolling
   (scale up the new pods within maxSurge, scale down the old ones within maxUnavailable),
   ``plan_recreate``, ``plan_replicas`` (ReplicaSet: no rollout), ``plan_stateful`` (ordinals in
   order, removed in reverse). Check mode prints these steps and stops there;
4. apply (``apply_steps``): every pod of a step through the pod module's own ``converge_pod`` (the
   ``converge`` callback the pods module gives: its workers, its clients), never its internals; a
   ``wait`` step gates on readiness (running members, readinessProbe run here, minReadySeconds) and
   fails by the deadline naming the pods that did not become Ready, the old ones still serving.

A replica is a Pod made from the template by the same code as any Pod (``replica_manifest``), named
``<name>-<revision[:6]>-<n>`` (Deployment, ReplicaSet, DaemonSet: unique during a surge, as a new
revision's pods have new names) or ``<name>-<ordinal>`` (StatefulSet, as Kubernetes names them).

A Job (batch/v1) is parsed here like the others (its pods are made from its template by the same code), then run
to completion by ``_jobs`` (its own controller: completions, retries, deadlines), all the Jobs of a call ticked
together. A CronJob is checked here (its jobTemplate parsed as a Job) and recorded for podkit-guard, which keeps
its schedule (_cronjobs); a host where the guard does not run refuses it.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._configdata import WORKLOAD_KINDS
from ansible_collections.podkit.docker.plugins.module_utils._docker import (
    Container, DockerError, inspect_or_none, list_pod_containers)
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._cronjobs import (
    CronJob, cron_facts, delete_cronjob, parse_cronjob, read_cronjobs, write_cronjob)
from ansible_collections.podkit.docker.plugins.module_utils._jobs import (
    MAX_INT32, JobRun, JobSpec, job_pods, job_spec_hash, job_summary, parse_job, run_jobs, still_to_drive)
from ansible_collections.podkit.docker.plugins.module_utils._labels import (
    LABEL_CONTAINER, LABEL_NAMESPACE, LABEL_OWNER_KIND, LABEL_OWNER_NAME, LABEL_POD, LABEL_REVISION, LABEL_ROLE,
    ROLE_MEMBER, ROLE_SANDBOX)
from ansible_collections.podkit.docker.plugins.module_utils._lock import job_lock, job_lock_path
from ansible_collections.podkit.docker.plugins.module_utils._status import read_guard_status
from ansible_collections.podkit.docker.plugins.module_utils._probes import ProbeState, parse_probes, run_probe
from ansible_collections.podkit.docker.plugins.module_utils._workloadfacts import (
    delete_workload_record, read_workload_records, workload_key, write_workload_record)
from ansible_collections.podkit.docker.plugins.module_utils._services import (
    Publication, Service, apply_attach, ensure_network, network_name, network_record, parse_service, plan_network,
    wanted_aliases)

SIDE_KINDS = ("ConfigMap", "Secret", "PersistentVolumeClaim", "Service")
DEFAULT_NAMESPACE = "default"
# The kinds `kubectl rollout undo` takes: each keeps its templates' revisions (revisionHistoryLimit).
ROLLBACK_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
# Kubernetes' defaults (apps/v1 SetDefaults_Deployment): 25% / 25%, 600 s, 10 revisions.
DEFAULT_SURGE = "25%"
DEFAULT_UNAVAILABLE = "25%"
DEFAULT_PROGRESS_DEADLINE = 600
REVISION_CHARS = 10

_SPEC_FIELDS = {
    "Deployment": ("replicas", "selector", "template", "strategy", "minReadySeconds", "revisionHistoryLimit",
                   "progressDeadlineSeconds", "paused"),
    "ReplicaSet": ("replicas", "selector", "template", "minReadySeconds"),
    "StatefulSet": ("replicas", "selector", "template", "serviceName", "podManagementPolicy", "updateStrategy",
                    "volumeClaimTemplates", "minReadySeconds", "revisionHistoryLimit",
                    "persistentVolumeClaimRetentionPolicy"),
    "DaemonSet": ("selector", "template", "updateStrategy", "minReadySeconds", "revisionHistoryLimit"),
}
# Removed API versions read as their v1 where both have the same fields and defaults, each named in a warning
# (removed in the Kubernetes release given). batch/v1beta1 CronJob: SetDefaults_CronJob in both gives
# concurrencyPolicy Allow, suspend false and history limits 3 and 1. apps/v1beta2 (pkg/apis/apps/v1beta2/
# defaults.go) defaults as apps/v1 does, its selector required as there.
SAME_AS_V1 = {"CronJob": {"batch/v1beta1": "1.25"},
              "Deployment": {"apps/v1beta2": "1.16"}, "StatefulSet": {"apps/v1beta2": "1.16"},
              "DaemonSet": {"apps/v1beta2": "1.16"}, "ReplicaSet": {"apps/v1beta2": "1.16"}}
# The workload versions removed in Kubernetes 1.16 whose defaults differ from apps/v1, read as apps/v1 with their
# own defaults written in (pkg/apis/extensions/v1beta1/defaults.go, pkg/apis/apps/v1beta1/defaults.go): every
# one defaults the selector to the template's labels; beyond that, what each sets where apps/v1 sets otherwise.
OLD_DEFAULTS = {
    ("extensions/v1beta1", "Deployment"): dict(surge=1, unavailable=1, history=MAX_INT32, deadline=MAX_INT32),
    ("extensions/v1beta1", "DaemonSet"): dict(update="OnDelete"),
    ("extensions/v1beta1", "ReplicaSet"): {},
    ("apps/v1beta1", "Deployment"): dict(history=2),
    ("apps/v1beta1", "StatefulSet"): dict(update="OnDelete"),
}
API_VERSIONS = {"Job": "batch/v1", "CronJob": "batch/v1"}
# Objects of the cluster around the workloads that files keep beside them (kubectl apply -f takes the whole file)
# and that have nothing to do on one Docker host without an API server: accepted, each named in a warning.
NOTHING_TO_MAKE = {
    "Namespace": "the namespace is a label of the pods and a network of their Services, made with the workloads",
    "ServiceAccount": "there is no API server on one host: pods get no service account token",
    "Role": "there is no API server on one host: nothing to authorize",
    "ClusterRole": "there is no API server on one host: nothing to authorize",
    "RoleBinding": "there is no API server on one host: nothing to authorize",
    "ClusterRoleBinding": "there is no API server on one host: nothing to authorize",
    "StorageClass": "a claim is a local Docker volume",
    "PersistentVolume": "a claim is a local Docker volume, made when a pod first mounts it",
    "PodDisruptionBudget": "one host evicts no pod",
}
GUARD_NEEDED = ("%s: a CronJob's schedule is kept by podkit-guard, which does not run on this host (%s); install and"
                " start it with the podkit.docker.host role (podkit_host_guard: true), or run the jobTemplate as a Job"
                " from a timer.")
_METADATA_FIELDS = ("name", "namespace", "labels", "annotations")
# Written by a cluster, meaningless in a file given to podkit: taken out without a word.
_CLUSTER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")


@dataclass
class Workload:
    """One workload document, parsed: what its pods should be and how they are replaced."""
    kind: str
    name: str
    namespace: str
    where: str
    template: Dict[str, Any]                 # spec.template (metadata, spec), claims added per ordinal later
    revision: str
    replicas: int = 1
    strategy: str = "RollingUpdate"          # RollingUpdate, Recreate, OnDelete; ReplicaSet: none
    max_surge: int = 0
    max_unavailable: int = 1
    min_ready: int = 0
    deadline: int = DEFAULT_PROGRESS_DEADLINE
    ordered: bool = True                     # StatefulSet podManagementPolicy OrderedReady
    partition: int = 0                       # StatefulSet rollingUpdate.partition
    claims: List[str] = field(default_factory=list)     # volumeClaimTemplates' names
    service_name: Optional[str] = None
    docs: List[Dict[str, Any]] = field(default_factory=list)   # ConfigMaps and Secrets each pod gets
    params: Dict[str, Any] = field(default_factory=dict)       # the entry's merged pod-module options
    warnings: List[str] = field(default_factory=list)
    probes: Dict[str, Any] = field(default_factory=dict)       # container name -> readiness Probe
    services: List[Service] = field(default_factory=list)      # every Service of the pods call
    history: Optional[int] = None                              # revisionHistoryLimit
    job: Optional[JobSpec] = None                              # a Job's run-to-completion rules (_jobs)
    cron: Optional[CronJob] = None                             # a CronJob, kept by podkit-guard (_cronjobs)
    source: Optional[Dict[str, Any]] = None                    # a Job's spec as given (podkit-guard follows it)

    @property
    def key(self) -> str:
        return "%s/%s" % (self.kind, self.name)

    @property
    def stateful(self) -> bool:
        return self.kind == "StatefulSet"

    def owner(self) -> Dict[str, str]:
        return {LABEL_OWNER_KIND: self.kind, LABEL_OWNER_NAME: self.name, LABEL_REVISION: self.revision}

    def pod_name(self, index: int) -> str:
        if self.stateful:
            return "%s-%d" % (self.name, index)
        return "%s-%s-%d" % (self.name, self.revision[:6], index)


@dataclass
class Replica:
    """One observed pod of a workload."""
    name: str
    revision: str
    ready: bool
    index: int


@dataclass
class Step:
    """One step of a workload's plan: ``op`` create, wait (until Ready) or remove, on ``pods`` in order."""
    op: str
    pods: List[str]
    reason: str = ""

    def __str__(self) -> str:
        verb = {"create": "create", "remove": "remove", "wait": "wait until Ready:"}[self.op]
        return "%s %s%s" % (verb, ", ".join(self.pods), (" (%s)" % self.reason) if self.reason else "")


# ---------------------------------------------------------------------------
# 1. parse


def _int(value: Any, where: str, minimum: int = 0, default: Optional[int] = None) -> int:
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PodkitError("%s: %r must be a whole number of at least %d." % (where, value, minimum))
    return value


def _mapping(value: Any, where: str, allowed: Sequence[str]) -> Dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PodkitError("%s must be a mapping, got %s." % (where, type(value).__name__))
    for key in value:
        if key not in allowed:
            raise PodkitError("%s.%s: not supported here (podkit reads %s); remove it." % (where, key, ", ".join(allowed)))
    return value


def scaled_value(value: Any, total: int, round_up: bool, where: str) -> int:
    """An int or a percentage of ``total``, as intstr.GetScaledValueFromIntOrPercent scales it: a
    percentage rounds up for maxSurge and down for maxUnavailable."""
    if isinstance(value, bool):
        raise PodkitError("%s: %r must be a whole number or a percentage such as '25%%'." % (where, value))
    if isinstance(value, int):
        if value < 0:
            raise PodkitError("%s: %r must not be negative." % (where, value))
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        percent = int(value[:-1])
        scaled = percent * total / 100.0
        return int(math.ceil(scaled)) if round_up else int(math.floor(scaled))
    raise PodkitError("%s: %r must be a whole number or a percentage such as '25%%'." % (where, value))


def resolve_fenceposts(surge: Any, unavailable: Any, replicas: int, where: str) -> Tuple[int, int]:
    """(maxSurge, maxUnavailable) in pods, as deployment/util ResolveFenceposts: surge rounds UP,
    unavailable rounds DOWN; when both resolve to 0, unavailable is 1 (a percentage of few replicas).
    Both given as 0 is refused, as the API's validation refuses it."""
    if surge is not None and unavailable is not None and _is_zero(surge) and _is_zero(unavailable):
        raise PodkitError("%s: maxSurge and maxUnavailable are both 0, so no pod could ever be replaced; give one of"
                          " them a value above 0." % where)
    max_surge = scaled_value(DEFAULT_SURGE if surge is None else surge, replicas, True, where + ".maxSurge")
    max_unavailable = scaled_value(DEFAULT_UNAVAILABLE if unavailable is None else unavailable, replicas, False,
                                   where + ".maxUnavailable")
    if max_surge == 0 and max_unavailable == 0:
        max_unavailable = 1
    return max_surge, max_unavailable


def _is_zero(value: Any) -> bool:
    return value == 0 or value == "0%"


def template_revision(template: Dict[str, Any]) -> str:
    """The template's hash (pod-template-hash's role): what decides whether a pod is of the current revision."""
    text = json.dumps(template, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:REVISION_CHARS]


def selector_matches(selector: Dict[str, Any], labels: Dict[str, Any]) -> bool:
    """A LabelSelector (matchLabels, matchExpressions) against labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if str(labels.get(key)) != str(value) or key not in labels:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), [str(v) for v in expr.get("values") or []]
        present = key in labels
        if op == "In" and not (present and str(labels[key]) in values):
            return False
        if op == "NotIn" and present and str(labels[key]) in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def _check_selector(selector: Any, labels: Dict[str, Any], where: str) -> None:
    selector = _mapping(selector, where, ("matchLabels", "matchExpressions"))
    if not selector:
        raise PodkitError("%s is required (apps/v1): give matchLabels that spec.template.metadata.labels carry." % where)
    for i, expr in enumerate(_list(selector.get("matchExpressions"), where + ".matchExpressions")):
        _mapping(expr, "%s.matchExpressions[%d]" % (where, i), ("key", "operator", "values"))
        if expr.get("operator") not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise PodkitError("%s.matchExpressions[%d].operator: %r is not one of In, NotIn, Exists, DoesNotExist."
                              % (where, i, expr.get("operator")))
    if not selector_matches(selector, labels):
        raise PodkitError("%s does not match spec.template.metadata.labels (%s): the workload would own none of its"
                          " own pods; make them agree." % (where, json.dumps(labels, sort_keys=True)))


def _list(value: Any, where: str) -> List[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PodkitError("%s must be a list." % where)
    return value


def split_workload_documents(docs: List[Any], where: str, services: List[Service]) -> Tuple[
        List[Tuple[str, Dict[str, Any]]], List[Dict[str, Any]], List[str]]:
    """(the workload documents with their places, the ConfigMaps and Secrets, warnings) of one file; its
    Services go to ``services``.
    A Pod beside a workload is refused (give it its own entry); PersistentVolumeClaims and Services are
    read for what one host can do with them."""
    workloads, configs, warnings = [], [], []
    for index, doc in enumerate(docs):
        place = "%s[%d]" % (where, index)
        if not isinstance(doc, dict):
            raise PodkitError("%s must be a Kubernetes object (a mapping with apiVersion and kind)." % place)
        kind = doc.get("kind")
        if kind in WORKLOAD_KINDS:
            version = API_VERSIONS.get(kind, "apps/v1")
            if (doc.get("apiVersion"), kind) in OLD_DEFAULTS:
                doc, said = as_apps_v1(doc, place)
                warnings.append(said)
            elif doc.get("apiVersion") in SAME_AS_V1.get(kind, ()):
                warnings.append("%s.apiVersion: %s was removed in Kubernetes %s; read as %s, whose fields and defaults"
                                " it shares (a current cluster refuses it: change it to %s)."
                                % (place, doc["apiVersion"], SAME_AS_V1[kind][doc["apiVersion"]], version, version))
            elif doc.get("apiVersion") != version:
                raise PodkitError("%s.apiVersion: %r is not supported for a %s; podkit reads %s."
                                  % (place, doc.get("apiVersion"), kind, version))
            workloads.append((place, doc))
        elif kind in ("ConfigMap", "Secret"):
            configs.append(doc)
        elif kind == "PersistentVolumeClaim":
            # A claim is a named Docker volume on the local driver, made when a pod first mounts it.
            spec = doc.get("spec") or {}
            if isinstance(spec, dict) and (spec.get("resources") or spec.get("storageClassName")):
                warnings.append("%s.spec: the claim %s is a local Docker volume: its size and storage class are not "
                                "enforced on one host" % (place, (doc.get("metadata") or {}).get("name")))
        elif kind == "Service":
            services.append(parse_service(doc, place))
        elif kind == "Pod":
            raise PodkitError("%s.kind: a Pod beside a workload; give the Pod its own entry of pods." % place)
        elif kind in NOTHING_TO_MAKE:
            warnings.append("%s.kind: %s %s is not made: %s" % (
                place, kind, ((doc.get("metadata") or {}) if isinstance(doc.get("metadata"), dict) else {}).get("name"),
                NOTHING_TO_MAKE[kind]))
        else:
            raise PodkitError("%s.kind: %r is not supported; a workload file holds Deployments, ReplicaSets, StatefulSets,"
                              " DaemonSets, Jobs, CronJobs and the ConfigMaps, Secrets, PersistentVolumeClaims and Services"
                              " they use (%s beside them are accepted and named in a warning: nothing to make on one host)."
                              % (place, kind, ", ".join(sorted(NOTHING_TO_MAKE))))
    return workloads, configs, warnings


def as_apps_v1(doc: Dict[str, Any], place: str) -> Tuple[Dict[str, Any], str]:
    """A workload of a version removed in Kubernetes 1.16 (OLD_DEFAULTS) as apps/v1, its version's defaults
    written into a copy where the document leaves them out, and the warning that names them."""
    version, kind = doc.get("apiVersion"), doc["kind"]
    old = OLD_DEFAULTS[(version, kind)]
    doc = copy.deepcopy(doc)
    spec = doc.get("spec")
    written = []
    if isinstance(spec, dict):
        template = spec.get("template")
        labels = ((template or {}).get("metadata") or {}).get("labels") if isinstance(template, dict) else None
        if spec.get("selector") is None and isinstance(labels, dict) and labels:
            spec["selector"] = {"matchLabels": dict(labels)}
            written.append("selector: the template's labels")
        if "update" in old and isinstance(spec.get("updateStrategy") or {}, dict) and \
                not (spec.get("updateStrategy") or {}).get("type"):
            spec["updateStrategy"] = dict(spec.get("updateStrategy") or {}, type=old["update"])
            written.append("updateStrategy.type: %s" % old["update"])
        strategy = spec.get("strategy") if spec.get("strategy") is not None else {}
        if "surge" in old and isinstance(strategy, dict) and strategy.get("type") in (None, "RollingUpdate"):
            rolling = strategy.get("rollingUpdate") if strategy.get("rollingUpdate") is not None else {}
            if isinstance(rolling, dict):
                for key, value in (("maxSurge", old["surge"]), ("maxUnavailable", old["unavailable"])):
                    if rolling.get(key) is None:
                        rolling[key] = value
                        written.append("strategy.rollingUpdate.%s: %s" % (key, value))
                spec["strategy"] = dict(strategy, rollingUpdate=rolling)
        for key, field_name, text in (("history", "revisionHistoryLimit", "every revision kept"),
                                      ("deadline", "progressDeadlineSeconds", "no deadline: wait_timeout bounds the"
                                       " wait")):
            if key in old and spec.get(field_name) is None:
                spec[field_name] = old[key]
                written.append("%s: %s" % (field_name, text if old[key] == MAX_INT32 else old[key]))
    doc["apiVersion"] = "apps/v1"
    return doc, ("%s.apiVersion: %s was removed in Kubernetes 1.16; read as apps/v1 with the %s defaults of %s (%s); a"
                 " current cluster refuses it: change it to apps/v1 and write those fields"
                 % (place, version, kind, version, "; ".join(written) or "none that differ here"))


def parse_workload(doc: Dict[str, Any], where: str, configs: List[Dict[str, Any]],
                   params: Dict[str, Any]) -> Workload:
    """One workload document (checked field by field: a field podkit cannot honour is named)."""
    kind = doc["kind"]
    for key in doc:
        if key not in ("apiVersion", "kind", "metadata", "spec", "status"):
            raise PodkitError("%s.%s: not a field of a %s; remove it." % (where, key, kind))
    metadata = dict(doc.get("metadata") or {})
    for key in _CLUSTER_METADATA:
        metadata.pop(key, None)
    _mapping(metadata, where + ".metadata", _METADATA_FIELDS)
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise PodkitError("%s.metadata.name is required." % where)
    namespace = metadata.get("namespace") or DEFAULT_NAMESPACE
    if params.get("rollback") and kind not in ROLLBACK_KINDS:
        raise PodkitError("%s: rollback undoes the rollout of a %s; a %s has none to undo (nor does kubectl rollout"
                          " undo take one), so leave rollback out." % (where, ", ".join(ROLLBACK_KINDS), kind))
    params = dict((k, v) for k, v in params.items() if k != "rollback")
    if kind == "Job":
        return _parse_job_workload(doc, where, name, namespace, configs, params)
    if kind == "CronJob":
        return _parse_cronjob_workload(doc, where, name, namespace, configs, params)
    if params.get("rerun") is not None:
        raise PodkitError("%s: rerun is for a Job (whether a finished Job runs again); a %s converges on every run, so"
                          " leave rerun out." % (where, kind))
    spec = _mapping(doc.get("spec"), where + ".spec", _SPEC_FIELDS[kind])
    template, labels = _template(spec, where)
    _check_selector(spec.get("selector"), labels, where + ".spec.selector")
    workload = Workload(kind=kind, name=name, namespace=namespace, where=where, template=template,
                        revision=template_revision(template), docs=list(configs), params=dict(params))
    workload.min_ready = _int(spec.get("minReadySeconds"), where + ".spec.minReadySeconds", default=0)
    if spec.get("revisionHistoryLimit") is not None:
        workload.history = _int(spec["revisionHistoryLimit"], where + ".spec.revisionHistoryLimit")
    if doc.get("status") is not None:
        workload.warnings.append("%s.status: written by a cluster, not read" % where)
    if kind == "DaemonSet":
        workload.replicas = 1
    else:
        workload.replicas = _int(spec.get("replicas"), where + ".spec.replicas", default=1)
    _strategy(workload, spec, where + ".spec")
    if kind == "StatefulSet":
        _stateful(workload, spec, where + ".spec")
    _check_template(workload, where + ".spec.template.spec")
    name_check = workload.pod_name(max(workload.replicas - 1, 0) + (workload.max_surge if not workload.stateful else 0))
    if len(name_check) > 63:
        raise PodkitError("%s.metadata.name: %r makes pod names such as %r, longer than 63 characters; give the %s a"
                          " shorter name." % (where, name, name_check, kind))
    return workload


def rolled_back(workload: Workload, doc: Dict[str, Any], where: str, configs: List[Dict[str, Any]],
                params: Dict[str, Any], records: Dict[str, Dict[str, Any]], option: str) -> Workload:
    """``rollback: true``: the workload of ``doc`` with the template that the manifest's template replaced on this
    host (the record's ``templates``: each revision's template and the revision it replaced when it last became
    the current one), as ``kubectl rollout undo`` run right after the manifest was applied. Read from the record alone,
    before the engine is reached; the same answer on every run, so a rollback run again is a no-op. ``option``
    names the entry's rollback option in errors."""
    record = records.get(workload_key(workload.namespace, workload.kind, workload.name)) or {}
    templates = record.get("templates") or {}
    this = templates.get(workload.revision)
    if not isinstance(this, dict):
        raise PodkitError("%s: the template of %s (%s, revision %s) was never applied on this host, so it replaced no"
                          " revision to roll back to; apply it first, or leave rollback out."
                          % (option, workload.key, where, workload.revision[:10]))
    previous = templates.get(this.get("previous") or "")
    if not isinstance(previous, dict) or not isinstance(previous.get("template"), dict):
        raise PodkitError("%s: %s has no recorded revision before %s (the first one applied here, or one that"
                          " revisionHistoryLimit no longer keeps); leave rollback out."
                          % (option, workload.key, workload.revision[:10]))
    back = copy.deepcopy(doc)
    back["spec"]["template"] = copy.deepcopy(previous["template"])
    result = parse_workload(back, where, configs, dict(params, rollback=False))
    if result.revision != this["previous"]:
        raise PodkitError("%s: the record of %s holds a template whose revision is %s, not %s (changed by hand?);"
                          " leave rollback out." % (option, workload.key, result.revision[:10], this["previous"][:10]))
    result.warnings = workload.warnings + result.warnings + [
        "%s: rolled back to revision %s, the one the manifest's template (revision %s) replaced on this host (rollback:"
        " true); leave rollback out to roll forward again." % (workload.key, result.revision[:10], workload.revision[:10])]
    return result


def _template(spec: Dict[str, Any], where: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(a copy of the pod template, with only the labels and annotations of its metadata; its labels) of a
    workload's spec, checked as far as the template's own fields."""
    template = _mapping(spec.get("template"), where + ".spec.template", ("metadata", "spec"))
    if not template.get("spec"):
        raise PodkitError("%s.spec.template.spec is required: the pods' spec." % where)
    tmeta = _mapping(template.get("metadata"), where + ".spec.template.metadata", _METADATA_FIELDS)
    template = copy.deepcopy(template)
    template["metadata"] = dict((k, v) for k, v in tmeta.items() if k in ("labels", "annotations"))
    return template, tmeta.get("labels") or {}


def _parse_job_workload(doc: Dict[str, Any], where: str, name: str, namespace: str, configs: List[Dict[str, Any]],
                        params: Dict[str, Any]) -> Workload:
    """A Job: its template as any workload's (selector optional: the Job controller makes its own), its run rules
    (_jobs.parse_job). Its revision is the hash of its spec (but suspend and ttlSecondsAfterFinished): what decides
    whether a finished Job runs again."""
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise PodkitError("%s.spec must be a mapping with template." % where)
    template, labels = _template(spec, where)
    if spec.get("selector") is not None and spec.get("manualSelector"):
        _check_selector(spec.get("selector"), labels, where + ".spec.selector")
    job = parse_job(spec, template, where + ".spec", params.get("rerun"))
    workload = Workload(kind="Job", name=name, namespace=namespace, where=where, template=template,
                        revision=job_spec_hash(spec), docs=list(configs), params=dict(params), job=job,
                        replicas=job.completions if job.completions is not None else job.parallelism,
                        strategy="None", source=copy.deepcopy(spec))
    if doc.get("status") is not None:
        workload.warnings.append("%s.status: written by a cluster, not read" % where)
    saved, workload.replicas = workload.replicas, job.parallelism
    _check_template(workload, where + ".spec.template.spec")
    workload.replicas = saved
    longest = "%s-%s-%d" % (name, workload.revision[:6], 10 ** 4)
    if len(longest) > 63:
        raise PodkitError("%s.metadata.name: %r makes pod names such as %r, longer than 63 characters; give the Job a"
                          " shorter name." % (where, name, longest))
    return workload


def _parse_cronjob_workload(doc: Dict[str, Any], where: str, name: str, namespace: str,
                            configs: List[Dict[str, Any]], params: Dict[str, Any]) -> Workload:
    """A CronJob: its schedule and policies (_cronjobs.parse_cronjob), its jobTemplate checked as a Job now."""
    if params.get("rerun") is not None:
        raise PodkitError("%s: rerun is for a Job; a CronJob's Jobs each run once, at their time." % where)

    def check_job(job_doc: Dict[str, Any], place: str) -> Any:
        return _parse_job_workload(job_doc, place, job_doc["metadata"]["name"], namespace, configs, params)

    cron = parse_cronjob(doc, where, name, namespace, configs, params, check_job)
    record = cron.record()
    workload = Workload(kind="CronJob", name=name, namespace=namespace, where=where, template={},
                        revision=template_revision(record), docs=list(configs), params=dict(params), cron=cron,
                        strategy="None", replicas=0)
    if doc.get("status") is not None:
        workload.warnings.append("%s.status: written by a cluster, not read" % where)
    return workload


def cronjob_params(merged: Dict[str, Any]) -> Dict[str, Any]:
    """The pods module's parameters the guard gives a CronJob's Jobs: the entry's, without its manifest."""
    return dict((k, v) for k, v in merged.items() if k not in ("manifest", "manifest_file", "rerun"))


def _strategy(workload: Workload, spec: Dict[str, Any], where: str) -> None:
    kind = workload.kind
    if kind == "ReplicaSet":
        workload.strategy = "None"
        return
    if kind == "Deployment":
        strategy = _mapping(spec.get("strategy"), where + ".strategy", ("type", "rollingUpdate"))
        kinds, field_name = ("RollingUpdate", "Recreate"), where + ".strategy"
        workload.deadline = _int(spec.get("progressDeadlineSeconds"), where + ".progressDeadlineSeconds", 1,
                                 default=DEFAULT_PROGRESS_DEADLINE)
        if spec.get("paused"):
            raise PodkitError("%s.paused: podkit does not pause a rollout (each run converges the pods to the template);"
                              " remove it, or leave the template as it is until you want the rollout." % where)
    else:
        strategy = _mapping(spec.get("updateStrategy"), where + ".updateStrategy", ("type", "rollingUpdate"))
        kinds, field_name = ("RollingUpdate", "OnDelete"), where + ".updateStrategy"
    workload.strategy = strategy.get("type") or "RollingUpdate"
    if workload.strategy not in kinds:
        raise PodkitError("%s.type: %r is not one of %s." % (field_name, workload.strategy, ", ".join(kinds)))
    rolling = strategy.get("rollingUpdate")
    if rolling is not None and workload.strategy != "RollingUpdate":
        raise PodkitError("%s.rollingUpdate: only with type RollingUpdate; remove it." % field_name)
    if kind == "StatefulSet":
        rolling = _mapping(rolling, field_name + ".rollingUpdate", ("partition", "maxUnavailable"))
        workload.partition = _int(rolling.get("partition"), field_name + ".rollingUpdate.partition", default=0)
        if rolling.get("maxUnavailable") not in (None, 1):
            raise PodkitError("%s.rollingUpdate.maxUnavailable: podkit replaces a StatefulSet's pods one at a time, as"
                              " Kubernetes does by default; remove it." % field_name)
        workload.max_surge, workload.max_unavailable = 0, 1
        return
    rolling = _mapping(rolling, field_name + ".rollingUpdate", ("maxSurge", "maxUnavailable"))
    surge, unavailable = rolling.get("maxSurge"), rolling.get("maxUnavailable")
    if kind == "DaemonSet":
        # apps/v1 DaemonSet defaults: maxUnavailable 1, maxSurge 0.
        surge = 0 if surge is None else surge
        unavailable = 1 if unavailable is None else unavailable
    workload.max_surge, workload.max_unavailable = resolve_fenceposts(
        surge, unavailable, workload.replicas, field_name + ".rollingUpdate")


def _stateful(workload: Workload, spec: Dict[str, Any], where: str) -> None:
    policy = spec.get("podManagementPolicy") or "OrderedReady"
    if policy not in ("OrderedReady", "Parallel"):
        raise PodkitError("%s.podManagementPolicy: %r is not one of OrderedReady, Parallel." % (where, policy))
    workload.ordered = policy == "OrderedReady"
    workload.service_name = spec.get("serviceName")
    retention = _mapping(spec.get("persistentVolumeClaimRetentionPolicy"),
                         where + ".persistentVolumeClaimRetentionPolicy", ("whenDeleted", "whenScaled"))
    for key, value in retention.items():
        if value != "Retain":
            raise PodkitError("%s.persistentVolumeClaimRetentionPolicy.%s: %r is not done by podkit: the claims' volumes"
                              " are kept (Retain); remove them with remove_claims on state: absent." % (where, key, value))
    for i, claim in enumerate(_list(spec.get("volumeClaimTemplates"), where + ".volumeClaimTemplates")):
        place = "%s.volumeClaimTemplates[%d]" % (where, i)
        name = ((claim or {}).get("metadata") or {}).get("name") if isinstance(claim, dict) else None
        if not isinstance(name, str) or not name:
            raise PodkitError("%s.metadata.name is required: the volume's name in the pods." % place)
        if (claim.get("spec") or {}).get("resources") or (claim.get("spec") or {}).get("storageClassName"):
            workload.warnings.append("%s.spec: each claim is a local Docker volume: its size and storage class are not"
                                     " enforced on one host" % place)
        workload.claims.append(name)
    volumes = [v.get("name") for v in (workload.template["spec"].get("volumes") or []) if isinstance(v, dict)]
    for name in workload.claims:
        if name in volumes:
            raise PodkitError("%s.volumeClaimTemplates: %r is also in spec.template.spec.volumes; a claim template"
                              " gives each pod that volume, so remove it from one of them." % (where, name))


def _check_template(workload: Workload, where: str) -> None:
    """What one host cannot do with several replicas, and each container's readiness probe."""
    spec = workload.template["spec"]
    for i, item in enumerate(_list(spec.get("containers"), where + ".containers")):
        if not isinstance(item, dict):
            continue
        for j, port in enumerate(item.get("ports") or []):
            host_port = port.get("hostPort") if isinstance(port, dict) else None
            if not host_port:
                continue
            place = "%s.containers[%d].ports[%d].hostPort" % (where, i, j)
            if workload.replicas > 1:
                raise PodkitError("%s: %d replicas cannot share hostPort %s on one host (the scheduler would place "
                                  "one per node); drop the hostPort or set replicas: 1."
                                  % (place, workload.replicas, host_port))
            if workload.max_surge:
                # A surge pod could not bind the port either: replace in place, one down then one up.
                workload.warnings.append("%s: a surge pod cannot bind hostPort %s beside the old one on one host, so"
                                         " the rollout replaces the pod with maxSurge 0, maxUnavailable 1"
                                         % (place, host_port))
                workload.max_surge, workload.max_unavailable = 0, max(workload.max_unavailable, 1)
        if isinstance(item.get("name"), str):
            probe = parse_probes(item, "%s.containers[%d]" % (where, i), False).get("readinessProbe")
            if probe is not None:
                workload.probes[item["name"]] = probe


def replica_manifest(workload: Workload, pod: str, index: int) -> List[Dict[str, Any]]:
    """The Pod (and the ConfigMaps and Secrets it may use) of one replica: the template, named."""
    spec = copy.deepcopy(workload.template["spec"])
    if workload.stateful:
        spec["volumes"] = list(spec.get("volumes") or []) + [
            {"name": claim, "persistentVolumeClaim": {"claimName": "%s-%s" % (claim, pod)}} for claim in workload.claims]
    metadata = dict(copy.deepcopy(workload.template["metadata"]), name=pod)
    if workload.namespace != DEFAULT_NAMESPACE:
        metadata["namespace"] = workload.namespace
    return [{"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}] + list(workload.docs)


# ---------------------------------------------------------------------------
# 2. observe


def owned_pods(summaries: List[Dict[str, Any]], workload: Workload,
               ready_of: Optional[Callable[[str], bool]] = None) -> List[Replica]:
    """The workload's pods among container list summaries (its sandboxes' owner labels), by name."""
    found: Dict[str, Replica] = {}
    members: Dict[str, List[bool]] = {}
    for summary in summaries:
        labels = summary.get("Labels") or {}
        pod = labels.get(LABEL_POD)
        if labels.get(LABEL_ROLE) == ROLE_MEMBER and pod:
            members.setdefault(pod, []).append(summary.get("State") == "running")
        if labels.get(LABEL_ROLE) != ROLE_SANDBOX or not owns(workload, labels):
            continue
        found[pod] = Replica(name=pod, revision=labels.get(LABEL_REVISION, ""),
                             ready=summary.get("State") == "running", index=_index(workload, pod))
    for replica in found.values():
        states = members.get(replica.name) or [False]
        replica.ready = replica.ready and all(states)
        if replica.ready and ready_of is not None:
            replica.ready = ready_of(replica.name)
    return sorted(found.values(), key=lambda r: (r.index, r.name))


def owns(workload: Workload, labels: Dict[str, str]) -> bool:
    return (labels.get(LABEL_OWNER_KIND) == workload.kind and labels.get(LABEL_OWNER_NAME) == workload.name
            and (labels.get(LABEL_NAMESPACE) or DEFAULT_NAMESPACE) == workload.namespace)


def _index(workload: Workload, pod: str) -> int:
    tail = pod.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 1 << 30


# ---------------------------------------------------------------------------
# 3. plan


def free_names(workload: Workload, taken: Sequence[str], count: int) -> List[str]:
    """``count`` new pod names of the current revision, the lowest free indexes first."""
    names, index = [], 0
    while len(names) < count:
        name = workload.pod_name(index)
        if name not in taken:
            names.append(name)
        index += 1
    return names


def _removal_order(pods: List[Replica]) -> List[Replica]:
    """Which pods go first when scaling down: the not Ready, then the highest index (the newest name)."""
    return sorted(pods, key=lambda r: (r.ready, -r.index, r.name))


def plan_rolling(workload: Workload, observed: List[Replica]) -> List[Step]:
    """rolling.go's rolloutRolling, played to the end assuming each wait succeeds (a real run stops at the
    first wait that fails): scale up the new pods within replicas + maxSurge, wait until they are Ready,
    scale down the old ones keeping replicas - maxUnavailable Ready (the not Ready old ones first, as
    cleanupUnhealthyReplicas does), again until only new pods remain."""
    replicas, surge, unavailable = workload.replicas, workload.max_surge, workload.max_unavailable
    new = [r for r in observed if r.revision == workload.revision]
    old = _removal_order([r for r in observed if r.revision != workload.revision])
    steps: List[Step] = []
    taken = [r.name for r in observed]
    if len(new) > replicas:
        extra = _removal_order(new)[:len(new) - replicas]
        steps.append(Step("remove", [r.name for r in extra], "scale down to %d" % replicas))
        new = [r for r in new if r not in extra]
    # A new pod not Ready is waited for only when old pods wait on it to go: a steady workload with a pod that
    # is not Ready is reported (and out of its Services' names), not waited for until the deadline.
    waiting = [r.name for r in new if not r.ready] if old else []
    new_count = len(new)
    ready_old = [r for r in old if r.ready]
    unready_old = [r for r in old if not r.ready]
    while True:
        create = min(replicas + surge - (new_count + len(old)), replicas - new_count) if not (
            new_count >= replicas) else 0
        if create > 0:
            names = free_names(workload, taken, create)
            taken.extend(names)
            steps.append(Step("create", names, "revision %s" % workload.revision if old else "scale up to %d" % replicas))
            waiting.extend(names)
            new_count += create
        if waiting:
            steps.append(Step("wait", waiting))
            waiting = []
        # Every new pod is Ready now: scale down the old ones within maxUnavailable.
        available = new_count + len(ready_old)
        room = max(0, available - (replicas - unavailable))
        gone = unready_old + ready_old[:room]
        if gone:
            steps.append(Step("remove", [r.name for r in gone], "old revision"))
            old = [r for r in old if r not in gone]
            ready_old = [r for r in ready_old if r not in gone]
            unready_old = []
        if not old and new_count >= replicas:
            return steps
        if create <= 0 and not gone:
            raise PodkitError("%s: the rollout cannot progress (replicas %d, maxSurge %d, maxUnavailable %d); this is a "
                              "bug in podkit's plan." % (workload.where, replicas, surge, unavailable))


def plan_recreate(workload: Workload, observed: List[Replica]) -> List[Step]:
    """Recreate: every old pod removed first, then the new ones made (recreate.go)."""
    old = [r for r in observed if r.revision != workload.revision]
    if not old:
        return plan_replicas(workload, observed)
    steps = [Step("remove", [r.name for r in old], "Recreate")]
    return steps + plan_replicas(workload, [r for r in observed if r not in old])


def plan_replicas(workload: Workload, observed: List[Replica]) -> List[Step]:
    """Scale to ``replicas`` pods of any revision (a ReplicaSet never replaces a pod for a new template; the new
    template makes the new pods); create from the lowest free index, remove from the not Ready and highest."""
    steps: List[Step] = []
    missing = workload.replicas - len(observed)
    waiting: List[str] = []
    if missing > 0:
        names = free_names(workload, [r.name for r in observed], missing)
        steps.append(Step("create", names, "scale up to %d" % workload.replicas))
        waiting += names
    elif missing < 0:
        # An old template's pods go first, then the not Ready, then the highest index.
        gone = sorted(observed, key=lambda r: (r.revision == workload.revision, r.ready, -r.index, r.name))[:-missing]
        steps.append(Step("remove", [r.name for r in gone], "scale down to %d" % workload.replicas))
    if waiting:
        steps.append(Step("wait", waiting))
    return steps


def plan_stateful(workload: Workload, observed: List[Replica]) -> List[Step]:
    """StatefulSet: ordinals beyond replicas removed in reverse, one at a time; the missing ones made in order
    (OrderedReady: each once the one before is Ready; Parallel: all at once); then, with RollingUpdate, the
    pods of an old revision replaced from the highest ordinal down to ``partition``, each Ready before the next."""
    steps: List[Step] = []
    by_index = dict((r.index, r) for r in observed)
    for replica in sorted(observed, key=lambda r: -r.index):
        if replica.index >= workload.replicas:
            steps.append(Step("remove", [replica.name], "scale down to %d" % workload.replicas))
    missing = [i for i in range(workload.replicas) if i not in by_index]
    if workload.ordered:
        for index in range(workload.replicas):
            if index in missing:
                steps.append(Step("create", [workload.pod_name(index)], "ordinal %d" % index))
                steps.append(Step("wait", [workload.pod_name(index)]))
            elif not by_index[index].ready and any(i > index for i in missing):
                steps.append(Step("wait", [by_index[index].name], "ordinal %d before the next" % index))
    else:
        names = [workload.pod_name(i) for i in missing]
        if names:
            steps.append(Step("create", names, "Parallel"))
        if names:
            steps.append(Step("wait", names))
    if workload.strategy == "RollingUpdate":
        for index in range(workload.replicas - 1, workload.partition - 1, -1):
            replica = by_index.get(index)
            if replica is not None and replica.revision != workload.revision:
                steps.append(Step("remove", [replica.name], "revision %s" % workload.revision))
                steps.append(Step("create", [replica.name], "revision %s" % workload.revision))
                steps.append(Step("wait", [replica.name]))
    return steps


def plan_workload(workload: Workload, observed: List[Replica]) -> List[Step]:
    if workload.stateful:
        return plan_stateful(workload, observed)
    if workload.strategy in ("None", "OnDelete"):
        return plan_replicas(workload, observed)
    if workload.strategy == "Recreate":
        return plan_recreate(workload, observed)
    return plan_rolling(workload, observed)


def plan_removal(observed: List[Replica]) -> List[Step]:
    """state: absent: every pod of the workload, the highest index first (a StatefulSet's in reverse)."""
    if not observed:
        return []
    return [Step("remove", [r.name for r in sorted(observed, key=lambda r: (-r.index, r.name))], "state absent")]


# ---------------------------------------------------------------------------
# 4. apply


class ReadinessGate:
    """Whether a workload's pods are Ready as Kubernetes counts them: the sandbox and every member running,
    each readinessProbe passed (run here, as the kubelet runs it: initialDelaySeconds, periodSeconds,
    successThreshold) and then minReadySeconds gone by (an available pod)."""

    def __init__(self, api: Any, workload: Workload, clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.workload = workload
        self.clock = clock
        self.states: Dict[Tuple[str, str], ProbeState] = {}
        self.ready_since: Dict[str, float] = {}

    def check(self, pod: str, observing: bool = False) -> Tuple[bool, str]:
        """(Ready, why not). ``observing``: a pod found running before this run, whose probes run at once and
        whose minReadySeconds is taken as gone by (so check mode, which runs the same probes, plans alike)."""
        containers = list_pod_containers(self.api, pod)
        sandbox = [c for c in containers if (c.get("Labels") or {}).get(LABEL_ROLE) == ROLE_SANDBOX]
        members = [c for c in containers if (c.get("Labels") or {}).get(LABEL_ROLE) == ROLE_MEMBER]
        if not sandbox or sandbox[0].get("State") != "running":
            return self._not(pod, "its sandbox is not running")
        stopped = [(c.get("Labels") or {}).get(LABEL_CONTAINER) for c in members if c.get("State") != "running"]
        if not members or stopped:
            return self._not(pod, "%s not running" % (", ".join(sorted(stopped)) or "no member"))
        now = self.clock()
        for member in members:
            name = (member.get("Labels") or {}).get(LABEL_CONTAINER)
            probe = self.workload.probes.get(name)
            if probe is None:
                continue
            key = (pod, member["Id"])
            state = self.states.get(key)
            if state is None:
                state = self.states[key] = ProbeState(probe, now)
                if observing:
                    state.next_run = now
            if state.ok is not True and now >= state.next_run:
                sandbox_pid = Container(inspect_or_none(self.api, sandbox[0]["Id"])).pid
                success, message = run_probe(probe, self.api, member["Id"], sandbox_pid)
                state.record(success, message, now)
            if state.ok is not True:
                last = (state.last or {}).get("message") or "not run yet"
                return self._not(pod, "%s readinessProbe: %s" % (name, last))
        if observing:
            return True, "Ready"
        since = self.ready_since.setdefault(pod, now)
        if now - since < self.workload.min_ready:
            return False, "Ready for %ds of minReadySeconds %d" % (int(now - since), self.workload.min_ready)
        return True, "Ready"

    def _not(self, pod: str, why: str) -> Tuple[bool, str]:
        self.ready_since.pop(pod, None)
        return False, why

    def wait(self, pods: List[str], deadline: float) -> None:
        """Until every pod of ``pods`` is Ready; PodkitError naming those that are not at ``deadline``."""
        while True:
            why = {}
            for pod in pods:
                ok, text = self.check(pod)
                if not ok:
                    why[pod] = text
            if not why:
                return
            if self.clock() >= deadline:
                seconds = self.workload.deadline if deadline_seconds(self.workload) == self.workload.deadline and \
                    self.workload.kind == "Deployment" else None
                raise PodkitError("%s: %s did not become Ready within %s; the pods of the previous revision that were "
                                  "still serving are left running. Why: %s" % (
                                      self.workload.key, ", ".join(sorted(why)),
                                      "progressDeadlineSeconds (%ds)" % seconds if seconds else
                                      "wait_timeout (%ds)" % self.workload_wait(),
                                      "; ".join("%s: %s" % kv for kv in sorted(why.items()))))
            time.sleep(0.5)

    def workload_wait(self) -> int:
        return int(self.workload.params.get("wait_timeout") or 60)


def deadline_seconds(workload: Workload) -> int:
    """How long a rollout may go without its new pods becoming Ready: progressDeadlineSeconds for a
    Deployment (Kubernetes' own), the entry's wait_timeout for the others (Kubernetes has no deadline there)
    and for a Deployment whose deadline is the largest int32 (Kubernetes' "no deadline")."""
    if workload.kind == "Deployment" and workload.deadline < MAX_INT32:
        return workload.deadline
    return int(workload.params.get("wait_timeout") or 60)


def replica_params(workload: Workload, pod: str, index: int, state: str) -> Dict[str, Any]:
    """The pod module's parameters of one replica: the entry's shared options, the replica's manifest, its
    owner. Readiness is gated here (ReadinessGate), so the pod module waits only for its own running."""
    params = dict(workload.params)
    params.update(name=pod, state=state, manifest_file=None)
    if state == "absent":
        params["manifest"] = None
        return params
    params.update(manifest=replica_manifest(workload, pod, index), owner=workload.owner(), wait=False)
    return params


def step_params(workload: Workload, step: Step) -> List[Tuple[str, Dict[str, Any]]]:
    state = "absent" if step.op == "remove" else "present"
    return [(pod, replica_params(workload, pod, _index(workload, pod), state)) for pod in step.pods]


def keep_params(workload: Workload, observed: List[Replica], steps: List[Step]) -> List[Tuple[str, Dict[str, Any]]]:
    """The pods of the current revision that the plan leaves alone: converged as they are (a no-op, or the
    repair of what was broken behind podkit's back), never replaced."""
    touched = set(p for s in steps if s.op != "wait" for p in s.pods)
    return [(r.name, replica_params(workload, r.name, r.index, "present")) for r in observed
            if r.revision == workload.revision and r.name not in touched]


@dataclass
class WorkloadOutcome:
    """What converging one workload gave: its plan, each pod's result, or the failure that stopped it."""
    workload: Workload
    gate: Optional[ReadinessGate] = None
    observed: List[str] = field(default_factory=list)
    network: List[str] = field(default_factory=list)     # connections made (or, in check mode, to make)
    steps: List[Step] = field(default_factory=list)
    pods: Dict[str, Dict[str, Any]] = field(default_factory=dict)     # pod -> the pods module's per-pod result
    error: Optional[str] = None
    removed: List[str] = field(default_factory=list)
    job: Optional[Dict[str, Any]] = None                 # a Job's status (_jobs.job_summary)

    @property
    def changed(self) -> bool:
        return (any(step.op != "wait" for step in self.steps) or any(p.get("changed") for p in self.pods.values())
                or bool(self.network))

    def final_pods(self) -> List[str]:
        """The pods the workload has once its plan is done (a failed run: those it has now)."""
        pods = list(self.observed)
        for step in self.steps:
            for pod in step.pods:
                if step.op == "create" and pod not in pods:
                    pods.append(pod)
                elif step.op == "remove" and pod in pods and not any(
                        later.op == "create" and pod in later.pods for later in self.steps[self.steps.index(step):]):
                    pods.remove(pod)
        return pods


# converge([(pod, params), ...]) -> {pod: (result, error)}: the pods module's workers running converge_pod.
Converge = Callable[[List[Tuple[str, Dict[str, Any]]]], Dict[str, Tuple[Dict[str, Any], Optional[str]]]]


def converge_workload(api: Any, workload: Workload, summaries: List[Dict[str, Any]], check_mode: bool,
                      converge: Converge, absent: bool = False,
                      gate: Optional[ReadinessGate] = None) -> WorkloadOutcome:
    """One workload's cycle: observe its pods, plan, then (not in check mode) apply step by step. A wait that
    fails by the deadline stops the plan there: the old pods not yet removed keep serving."""
    gate = gate or ReadinessGate(api, workload)
    # Readiness probes run in check mode too (they change nothing): the plan is the one a real run makes.
    observed = owned_pods(summaries, workload, ready_of=lambda pod: gate.check(pod, observing=True)[0])
    outcome = WorkloadOutcome(workload=workload, gate=gate, observed=[r.name for r in observed])
    if absent:
        outcome.steps = plan_removal(observed)
    else:
        outcome.steps = plan_workload(workload, observed)
        # The pods that stay: converged first, as any listed pod is (a no-op unless broken behind podkit's back).
        _run(outcome, keep_params(workload, observed, outcome.steps), converge)
        if outcome.error:
            return outcome
    started = time.time()
    for step in outcome.steps:
        if step.op == "wait":
            if not check_mode:
                try:
                    gate.wait(step.pods, started + deadline_seconds(workload))
                except PodkitError as exc:
                    outcome.error = exc.msg
                    return outcome
            continue
        _run(outcome, step_params(workload, step), converge)
        if step.op == "remove":
            outcome.removed.extend(step.pods)
        if outcome.error:
            return outcome
    return outcome


def _run(outcome: WorkloadOutcome, items: List[Tuple[str, Dict[str, Any]]], converge: Converge) -> None:
    if not items:
        return
    results = converge(items)
    failed = []
    for pod, _params in items:
        result, error = results[pod]
        # A pod replaced in place (StatefulSet) keeps its first entry's actions, then the new ones.
        previous = outcome.pods.get(pod)
        if previous is not None:
            result = dict(result, actions=list(previous.get("actions") or []) + list(result.get("actions") or []),
                          changed=bool(previous.get("changed") or result.get("changed")))
            if previous.get("diff") and result.get("diff"):
                # --diff of a pod replaced in place: what it was before the first step, what it is after the last.
                result["diff"] = dict(before=previous["diff"].get("before"), after=result["diff"].get("after"))
        outcome.pods[pod] = result
        if error is not None:
            failed.append("%s: %s" % (pod, error))
    if failed:
        outcome.error = "%s: %s" % (outcome.workload.key, " | ".join(failed))


def workload_result(outcome: WorkloadOutcome) -> Dict[str, Any]:
    """The pods module's ``workloads`` entry of one workload."""
    workload = outcome.workload
    item = dict(kind=workload.kind, name=workload.name, namespace=workload.namespace, revision=workload.revision,
                replicas=workload.replicas, changed=outcome.changed, steps=[str(s) for s in outcome.steps],
                pods=sorted(outcome.pods))
    if outcome.job is not None:
        item["cronjob" if workload.cron is not None else "job"] = outcome.job
        item.pop("replicas")
    if outcome.error is not None:
        item.update(failed=True, msg=outcome.error)
    return item


def workload_actions(outcomes: List[WorkloadOutcome]) -> List[str]:
    """Each workload's steps (``Deployment/web: create web-1a2b3c-0``), then each of its pods' actions
    prefixed by the pod's name, workload after workload."""
    lines = []
    for outcome in outcomes:
        lines.extend("%s: %s" % (outcome.workload.key, step) for step in outcome.steps)
        lines.extend("%s: %s" % (outcome.workload.key, text) for text in outcome.network)
        for pod, result in outcome.pods.items():
            lines.extend("%s: %s" % (pod, action) for action in result.get("actions") or [])
    return lines


# ---------------------------------------------------------------------------
# The pods module's entry points


def resolve_workloads(raw: List[Tuple[int, Dict[str, Any]]], pod_names: Sequence[str]) -> List[Workload]:
    """The workloads of the entries of ``pods`` that hold them ((index, merged parameters)); raises
    PodkitError naming every problem, before anything is touched."""
    problems, workloads, seen = [], [], {}
    services: List[Service] = []
    records: Optional[Dict[str, Dict[str, Any]]] = None     # read once, when an entry rolls back
    for index, merged in raw:
        where = "pods[%d]" % index
        try:
            if merged.get("name") is not None:
                raise PodkitError("%s.name: a workload's file names its pods itself (from metadata.name); leave name "
                                  "out." % where)
            if merged.get("state") not in ("present", "absent"):
                raise PodkitError("%s.state: %r is not for a workload; give present or absent." % (where, merged.get("state")))
            docs = merged["manifest"] if isinstance(merged["manifest"], list) else [merged["manifest"]]
            before = len(services)
            found, configs, warnings = split_workload_documents(docs, where + ".manifest", services)
            for service in services[before:]:
                # A published Service's proxy pod is made with its entry's options (_services.Publication).
                service.params, service.absent = merged, merged.get("state") == "absent"
            for n, (place, doc) in enumerate(found):
                workload = parse_workload(doc, place, configs, merged)
                if merged.get("rollback") and merged.get("state") != "absent":
                    records = read_workload_records() if records is None else records
                    workload = rolled_back(workload, doc, place, configs, merged, records, where + ".rollback")
                if n == 0:
                    workload.warnings = warnings + workload.warnings
                key = (workload.namespace, workload.key)
                if key in seen:
                    raise PodkitError("%s.metadata.name: %s is already given by %s; each workload appears once."
                                      % (place, workload.key, seen[key]))
                seen[key] = place
                workloads.append(workload)
        except PodkitError as error:
            problems.append(error.msg)
    for workload in workloads:
        clash = [p for p in pod_names if p == workload.name or re.match(
            r"^%s-%s$" % (re.escape(workload.name), r"[0-9]+" if workload.stateful else r"[0-9a-f]{6}-[0-9]+"), p)]
        if clash:
            problems.append("%s.metadata.name: the pods of %s would be named like pod %s of pods; rename one of them."
                            % (workload.where, workload.key, clash[0]))
    if problems:
        raise PodkitError("pods: %s Nothing was changed." % " ".join(problems))
    for workload in workloads:
        workload.services = services
    if workloads:
        workloads[0].warnings.extend(w for service in services for w in service.warnings)
    return workloads


def workload_pod_names(workloads: List[Workload], summaries: List[Dict[str, Any]],
                       records: Any = ()) -> set:
    """The pods of the listed workloads on the host (by their sandboxes' labels, and by the owner in their
    podkit-guard records): prune leaves them to their workload."""
    names = set()
    # A listed CronJob's Jobs (<cronjob>-<minutes>) are its own: podkit-guard made them.
    crons = [re.compile(r"^%s-[0-9]+$" % re.escape(w.name)) for w in workloads if w.cron is not None]
    for summary in summaries:
        labels = summary.get("Labels") or {}
        if labels.get(LABEL_POD) and (any(owns(w, labels) for w in workloads) or (
                labels.get(LABEL_OWNER_KIND) == "Job" and any(c.match(labels.get(LABEL_OWNER_NAME, "")) for c in crons))):
            names.add(labels[LABEL_POD])
    for pod, params in records:
        owner = params.get("owner") or {}
        if any(owner.get(LABEL_OWNER_KIND) == w.kind and owner.get(LABEL_OWNER_NAME) == w.name for w in workloads):
            names.add(pod)
    return names


def converge_workloads(api: Any, workloads: List[Workload], summaries: List[Dict[str, Any]], check_mode: bool,
                       converge: Converge) -> List[WorkloadOutcome]:
    """Every workload, one after the other (each one's pods in parallel through ``converge``), then the Jobs of the
    call together (_jobs: ticked side by side until each finished, or once without wait)."""
    with contextlib.ExitStack() as held:
        if not check_mode:
            # podkit-guard goes on driving a Job between runs (follow_job); while this run drives or removes one,
            # the guard leaves it alone.
            for workload in workloads:
                if workload.job is not None:
                    held.enter_context(job_lock(workload.namespace, workload.name))
        outcomes = _converge_workloads(api, workloads, summaries, check_mode, converge)
        for workload in workloads:
            if not check_mode and workload.job is not None and workload.params.get("state") == "absent":
                try:
                    os.unlink(job_lock_path(workload.namespace, workload.name))
                except OSError:
                    pass    # never made (the Job never ran here), or gone
        return outcomes


def _converge_workloads(api: Any, workloads: List[Workload], summaries: List[Dict[str, Any]], check_mode: bool,
                        converge: Converge) -> List[WorkloadOutcome]:
    jobs = [w for w in workloads if w.job is not None and w.params.get("state") != "absent"]
    crons = [w for w in workloads if w.cron is not None]
    outcomes = [converge_workload(api, w, summaries, check_mode, converge, absent=w.params.get("state") == "absent")
                for w in workloads if w not in jobs and w not in crons]
    outcomes += [_converge_cronjob(api, w, check_mode, converge) for w in crons]
    if jobs:
        outcomes += _converge_jobs(api, jobs, check_mode, converge)
    if not check_mode:
        for workload in workloads:
            if workload.cron is not None:
                continue
            if workload.params.get("state") == "absent":
                delete_workload_record(workload.kind, workload.name, workload.namespace)
            elif workload.job is None:
                network = None
                if workload.services:
                    labels = dict((str(k), str(v)) for k, v in (workload.template["metadata"].get("labels") or {}).items())
                    network = network_record(labels, workload.services,
                                             workload.service_name if workload.stateful else None)
                write_workload_record(workload.kind, workload.name, workload.namespace, workload.replicas,
                                      workload.revision, workload.history, template=workload.template, network=network)
    if any(w.services for w in workloads):
        for outcome in outcomes:
            if outcome.error is None and outcome.workload.params.get("state") != "absent" and outcome.workload.job is None \
                    and outcome.workload.cron is None:
                _sync_network(api, outcome, check_mode)
    return outcomes


@dataclass
class PublicationOutcome:
    """What publishing one Service gave: its proxy pod's result and the steps around it."""
    publication: Publication
    actions: List[str] = field(default_factory=list)
    pod: Optional[Dict[str, Any]] = None        # the proxy pod's result, as the pod module returns it
    error: Optional[str] = None

    @property
    def changed(self) -> bool:
        return bool(self.actions)


def publish_services(api: Any, publications: List[Publication], summaries: List[Dict[str, Any]], check_mode: bool,
                     converge: Converge, planned: Sequence[str] = ()) -> List[PublicationOutcome]:
    """Each published Service's proxy pod (_services.plan_publications) converged as any pod, then on its
    namespace's network with no name of its own, and recorded (kind Service) for podkit-guard, which keeps it
    there, and for pod_facts; the proxy pod of a Service no longer published removed. A pod of that name that is
    not the Service's proxy (its sandbox's owner is not Service/<name>) is never touched. ``planned``: the
    workloads' network steps, so that a network they made (or, in check mode, would make) is not said twice."""
    sandboxes = _sandbox_labels(summaries)
    outcomes = []
    for publication in publications:
        service, pod = publication.service, publication.pod
        outcome = PublicationOutcome(publication)
        labels = sandboxes.get(pod)
        ours = _proxy_of(service, labels)
        if publication.remove:
            if ours:
                outcomes.append(outcome)
                params = dict(service.params, name=pod, state="absent", manifest=None, manifest_file=None)
                _publish_step(outcome, converge([(pod, params)])[pod])
                if not check_mode and outcome.error is None:
                    delete_workload_record("Service", service.name, service.namespace)
            continue
        outcomes.append(outcome)
        if labels is not None and not ours:
            outcome.error = ("Service %s: pod %s is not its proxy (its sandbox names no owner Service/%s); podkit leaves"
                             " it alone: remove or rename that pod to publish the Service." % (service.key, pod, service.name))
            continue
        revision = publication.revision()
        params = dict(service.params, name=pod, state="present", manifest=publication.manifest(), manifest_file=None,
                      owner={LABEL_OWNER_KIND: "Service", LABEL_OWNER_NAME: service.name, LABEL_REVISION: revision})
        _publish_step(outcome, converge([(pod, params)])[pod])
        if outcome.error is not None:
            continue
        try:
            made = ensure_network(api, service.namespace, check_mode)
            if made and made not in planned:
                outcome.actions.append(made)
            attrs = inspect_or_none(api, "%s_sandbox" % pod)
            outcome.actions.extend(_attach(api, [(pod, "%s_sandbox" % pod, attrs or {}, [])], service.namespace,
                                           check_mode))
        except PodkitError as exc:
            outcome.error = "Service %s: %s" % (service.key, exc.msg)
        except DockerError as exc:
            outcome.error = "Service %s: its proxy pod on network %s: %s" % (service.key, network_name(service.namespace), exc)
        if not check_mode and outcome.error is None:
            write_workload_record("Service", service.name, service.namespace, 1, revision, 0,
                                  network=network_record({}, [], None))
    return outcomes


def _sandbox_labels(summaries: List[Dict[str, Any]]) -> Dict[str, Dict[str, str]]:
    return dict(((s.get("Labels") or {}).get(LABEL_POD), s.get("Labels") or {}) for s in summaries
                if (s.get("Labels") or {}).get(LABEL_ROLE) == ROLE_SANDBOX)


def _proxy_of(service: Service, labels: Optional[Dict[str, str]]) -> bool:
    """Whether a pod's sandbox labels make it ``service``'s proxy pod."""
    return labels is not None and labels.get(LABEL_OWNER_KIND) == "Service" and \
        labels.get(LABEL_OWNER_NAME) == service.name and (labels.get(LABEL_NAMESPACE) or "default") == service.namespace


def proxy_pod_names(publications: List[Publication], summaries: List[Dict[str, Any]]) -> set:
    """The proxy pods the call's Services decide on (publish_services): prune leaves them to their Service."""
    sandboxes = _sandbox_labels(summaries)
    return set(p.pod for p in publications if not p.remove or _proxy_of(p.service, sandboxes.get(p.pod)))


def _publish_step(outcome: PublicationOutcome, answer: Tuple[Dict[str, Any], Optional[str]]) -> None:
    result, error = answer
    outcome.pod = result
    outcome.actions.extend("%s: %s" % (outcome.publication.pod, a) for a in result.get("actions") or [])
    if error is not None:
        outcome.error = "Service %s: %s: %s" % (outcome.publication.service.key, outcome.publication.pod, error)


def publication_result(outcome: PublicationOutcome) -> Dict[str, Any]:
    """The pods module's ``services`` entry of one published (or unpublished) Service."""
    publication = outcome.publication
    item = dict(namespace=publication.service.namespace, name=publication.service.name, type=publication.service.kind,
                pod=publication.pod, state="absent" if publication.remove else "present",
                published=publication.lines(), changed=outcome.changed, actions=list(outcome.actions))
    if outcome.error is not None:
        item.update(failed=True, msg=outcome.error)
    return item


def _converge_cronjob(api: Any, workload: Workload, check_mode: bool, converge: Converge) -> WorkloadOutcome:
    """Record a CronJob for podkit-guard (refused where the guard does not run), or forget it and remove its Jobs'
    pods (state: absent). The guard starts its Jobs; this run starts none."""
    cron = workload.cron
    outcome = WorkloadOutcome(workload=workload)
    known = dict((r["name"], (r, st)) for r, st in read_cronjobs() if r.get("namespace") == workload.namespace)
    if workload.params.get("state") == "absent":
        record, status = known.get(workload.name, (None, {}))
        jobs = sorted((status or {}).get("jobs") or {})
        if record is not None:
            outcome.steps.append(Step("remove", [workload.key], "state absent: its schedule is no longer kept"))
        if not check_mode:
            # The record first, so that the guard starts nothing more while the Jobs' pods go.
            delete_cronjob(workload.namespace, workload.name)
        for job in jobs:
            pods = job_pods(api, job, workload.namespace)
            if pods:
                outcome.steps.append(Step("remove", pods, "Job %s of %s" % (job, workload.key)))
                if not check_mode:
                    params = dict(cronjob_params(workload.params), state="absent", manifest=None, record=False)
                    _run(outcome, [(pod, dict(params, name=pod)) for pod in pods], converge)
                    outcome.removed.extend(pods)
        if not check_mode:
            for job in jobs:
                delete_workload_record("Job", job, workload.namespace)
        return outcome
    guard = read_guard_status()
    if guard is None or not guard.get("running"):
        outcome.error = GUARD_NEEDED % (workload.key, "no guard status" if guard is None else "its process has ended")
        return outcome
    cron.params = cronjob_params(workload.params)
    record = cron.record()
    previous = known.get(workload.name, (None, {}))[0]
    if previous is None or dict((k, previous.get(k)) for k in record) != record:
        outcome.steps.append(Step("create", [workload.key], "schedule %r kept by podkit-guard" % cron.schedule_text))
        if not check_mode:
            write_cronjob(cron)
    outcome.job = cron_facts(record, known.get(workload.name, (None, {}))[1] or {})
    return outcome


def _converge_jobs(api: Any, jobs: List[Workload], check_mode: bool, converge: Converge) -> List[WorkloadOutcome]:
    """The Jobs of the call run side by side (_jobs.run_jobs); each one's record keeps its status for the next run
    (a finished Job is not run again unless its spec changed) and for pod_facts."""
    records = read_workload_records()
    runs = [JobRun(api, w, check_mode, converge, records.get(workload_key(w.namespace, w.kind, w.name))) for w in jobs]

    def save(run: JobRun) -> None:
        if not check_mode and run.status is not None:
            w = run.workload
            write_workload_record(w.kind, w.name, w.namespace, w.replicas, w.revision, 0, job=run.record_body(),
                                  follow=job_follow(w) if still_to_drive(run) else None)

    run_jobs(runs, wait=lambda run: bool(run.workload.params.get("wait", True)),
             timeout=lambda run: int(run.workload.params.get("wait_timeout") or 60), save=save)
    outcomes = []
    for run in runs:
        save(run)
    for run in runs:
        outcome = WorkloadOutcome(workload=run.workload, observed=[p.name for p in run.observed],
                                  steps=[Step(op, pods, reason) for op, pods, reason in run.steps], pods=run.pods,
                                  error=run.error, removed=list(run.removed))
        outcome.job = job_summary(run)
        outcomes.append(outcome)
    return outcomes


def job_follow(workload: Workload) -> Dict[str, Any]:
    """What podkit-guard needs to go on driving a Job between runs (``follow_job``): its spec as given (its
    revision is that spec's hash, so the guard's Job is the same Job), the documents and the options its pods
    are made with."""
    return dict(spec=workload.source, docs=list(workload.docs), params=cronjob_params(workload.params))


def follow_job(api: Any, record: Dict[str, Any], converge: Converge, given: Optional[str] = None) -> Optional[JobRun]:
    """One step of a recorded Job that no module run drives now (podkit-guard, about once a second, under the
    Job's lock): a Job left running (``wait: false``, or past ``wait_timeout``) goes on as Kubernetes' Job
    controller would take it, and a finished one's ``ttlSecondsAfterFinished`` removes its pods when it expires.
    The record (in the state directory ``given``) is written back, without ``follow`` once nothing is left to
    do. None: nothing to follow."""
    follow = record.get("follow")
    if not isinstance(follow, dict) or not isinstance(follow.get("spec"), dict):
        return None
    metadata = {"name": record["name"]}
    if record["namespace"] != DEFAULT_NAMESPACE:
        metadata["namespace"] = record["namespace"]
    doc = {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": follow["spec"]}
    params = dict(follow.get("params") or {}, state="present", wait=False)
    workload = parse_workload(doc, "%s (podkit-guard)" % workload_key(record["namespace"], "Job", record["name"]),
                              list(follow.get("docs") or []), params)
    if workload.revision != record.get("revision"):
        return None     # the record was written for another spec: only a module run decides a rerun
    run = JobRun(api, workload, False, converge, record)
    run.start()
    if not run.done:
        run.tick()
    if run.status is not None:
        write_workload_record("Job", workload.name, workload.namespace, workload.replicas, workload.revision, 0,
                              given, job=run.record_body(),
                              follow=job_follow(workload) if still_to_drive(run) else None)
    return run


def _attach(api: Any, items: List[Tuple[str, str, Dict[str, Any], List[str]]], namespace: str,
            check_mode: bool) -> List[str]:
    """The connections ``items`` (_services.plan_network's) need on the namespace's network, made unless in check
    mode; what was (or would be) done, a line each."""
    done = []
    for attach in plan_network(items, network_name(namespace)):
        if not check_mode:
            apply_attach(api, attach)
        done.append(str(attach))
    return done


def _sync_network(api: Any, outcome: WorkloadOutcome, check_mode: bool) -> None:
    """The workload's pods on their namespace's network, with the names of the Services selecting them while
    they are Ready (_services). In check mode a pod the plan creates counts as Ready, as the plan assumes."""
    workload = outcome.workload
    try:
        made = ensure_network(api, workload.namespace, check_mode)
        if made:
            outcome.network.append(made)
        items = []
        labels = dict((str(k), str(v)) for k, v in (workload.template["metadata"].get("labels") or {}).items())
        for pod in outcome.final_pods():
            sandbox = "%s_sandbox" % pod
            attrs = inspect_or_none(api, sandbox)
            ready = True if attrs is None else outcome.gate.check(pod, observing=True)[0]
            stateful = (pod, workload.service_name) if workload.stateful and workload.service_name else None
            aliases = wanted_aliases(labels, workload.namespace, ready, workload.services, stateful)
            items.append((pod, sandbox, attrs or {}, aliases))
        outcome.network.extend(_attach(api, items, workload.namespace, check_mode))
    except PodkitError as exc:
        outcome.error = "%s: %s" % (workload.key, exc.msg)
    except DockerError as exc:
        outcome.error = "%s: the Service names on network %s: %s" % (workload.key, network_name(workload.namespace), exc)
