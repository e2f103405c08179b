# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every pod of one host in one call (podkit.docker.pods).

One call, in this order:

1. resolve, before the engine is reached (``prepare_pods``): each entry of ``pods`` merged with
   the options given once at the module level (an entry's own value wins), its name known (from
   ``name``, the manifest's ``metadata.name`` or ``manifest_file``). A list that cannot be read as
   a set of pods (an entry without a name, a name given twice, manifest and manifest_file
   together) fails the call before anything is touched: with it, neither the pods to converge
   nor the pods to prune are known. Each entry's input is then parsed and checked as the pod
   module checks it (``parse_pod``); an entry refused there is a failed pod that is never
   converged, the others go on, and its error is its own even when no engine answers;
2. observe once: ONE label-filtered list call gives every podkit container of the host; the
   podkit pods that the list does not name (narrowed by ``prune_selector`` as
   ``kubectl apply --prune -l`` narrows its prune), and the pods recorded for podkit-guard that
   it does not name, become ``state: absent`` entries (which delete their records). A
   container without that label is never a pod, so never pruned. The listed and pruned pods
   are then observed from that answer (``observe_pods``: one inspect per container), and the
   host's cgroup setup (``docker info``, mountinfo) is read once;
3. converge: every pod is one reconcile cycle of the pod module (``converge_pod``: its own
   lock, plan, apply, or only plan in check mode) given its slice of that observation, run
   ``parallel`` at a time in worker threads, each worker with its own Docker client. Under
   its lock a pod checks that its slice is still current (``still_current``: one list call
   for the pod, /proc for the PIDs) and observes again when not, so a change made between
   the observation and the lock (another run, a hand) is never planned from stale data. One
   pod's failure is recorded and the others go on;
4. report: results keyed by pod name, a flat ``actions`` list prefixed by pod name in the order
   of the list (then the pruned pods by name), one diff per pod; the call fails afterwards
   naming each pod that failed and why.

Pods are independent: nothing here orders one pod after another, and the per-pod lock
(``/run/podkit/<pod>.lock``) still serialises a pod against other runs on the same host.
"""

from __future__ import annotations

import re
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Pattern, Sequence, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._configdata import is_workload_manifest, load_documents, missing_pod
from ansible_collections.podkit.docker.plugins.module_utils._docker import connect, list_pod_containers
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._labels import (
    LABEL_NAMESPACE, LABEL_OWNER_KIND, LABEL_OWNER_NAME, LABEL_POD)
from ansible_collections.podkit.docker.plugins.module_utils._podoptions import POD_OPTIONS
from ansible_collections.podkit.docker.plugins.module_utils._reconcile import (
    PodState, converge_pod, host_cgroups, observe_pods, parse_pod)
from ansible_collections.podkit.docker.plugins.module_utils._record import read_record, recorded_for, recorded_pods
from ansible_collections.podkit.docker.plugins.module_utils._spec import (
    PodSpec, generated_name, pod_spec_from_params, secret_values, validate_pod_name)

# Given once at the module level, overridden by an entry's own value.
SHARED_OPTIONS = ("sandbox_image", "pull", "validate", "remove_claims", "seccomp_profile_root", "wait", "wait_timeout",
                  "docker_host", "timeout")
# The pod module's options an entry may carry (besides manifest_file, read here): the one table's.
ENTRY_OPTIONS = tuple(n for n in POD_OPTIONS if n != "manifest_file") + tuple(n for n in SHARED_OPTIONS if n not in POD_OPTIONS)
DEFAULT_PARALLEL = 4
# The image of a published Service's proxy pod: busybox's sh and nc (the host role builds it).
DEFAULT_PROXY_IMAGE = "podkit/busybox:latest"


@dataclass
class Entry:
    """One pod of the call: where it came from and the pod module's parameters for it."""
    index: Optional[int]            # position in ``pods``; None for a pod found by prune
    name: str
    params: Dict[str, Any]
    observed: Optional[PodState] = field(default=None, repr=False)    # its slice of the host's observation
    spec: Optional[PodSpec] = field(default=None, repr=False)         # its input, parsed before the engine
    refused: Optional[PodkitError] = None                             # why its input was refused: never converged

    @property
    def where(self) -> str:
        return "pod %s (pods[%d])" % (self.name, self.index) if self.index is not None else \
            "pod %s (pruned)" % self.name


@dataclass
class Outcome:
    """What converging one pod gave: the pod module's result, or its failure."""
    entry: Entry
    result: Dict[str, Any] = field(default_factory=dict)
    error: Optional[str] = None
    exception: Optional[str] = None     # a traceback, only for an error that is a bug, not a user's
    secrets: set = field(default_factory=set)


# ---------------------------------------------------------------------------
# 1. resolve


def _read_text(path: str) -> str:
    with open(path) as handle:
        return handle.read()


def _load_manifest(value: Any, where: str) -> Any:
    """A manifest given as YAML text, parsed into its documents (a Pod and the ConfigMaps and Secrets
    it uses); a mapping or a list as it is. Other shapes are left to the pod's own checks."""
    if not isinstance(value, str):
        return value
    try:
        docs = load_documents(value)
    except PodkitError as exc:
        # load_documents names the field "manifest"; here the entry's own place says which one.
        text = exc.msg[len("manifest: "):] if exc.msg.startswith("manifest: ") else exc.msg
        raise PodkitError("%s: %s" % (where, text))
    return docs[0] if len(docs) == 1 else docs


def _manifest_name(manifest: Any) -> Optional[str]:
    """The Pod's metadata.name, from a Pod mapping or from the Pod among several documents."""
    docs = manifest if isinstance(manifest, list) else [manifest]
    pods = [doc for doc in docs if isinstance(doc, dict) and (doc.get("kind") == "Pod" or len(docs) == 1)]
    if len(pods) == 1 and isinstance(pods[0].get("metadata"), dict):
        name = pods[0]["metadata"].get("name")
        return name if isinstance(name, str) and name else generated_name(pods[0])
    return None


def merge_entry(shared: Dict[str, Any], entry: Dict[str, Any]) -> Dict[str, Any]:
    """The pod module's parameters for one entry: the entry's own values, else the module-level ones."""
    params = dict((key, entry.get(key)) for key in ENTRY_OPTIONS)
    for key in SHARED_OPTIONS:
        if params.get(key) is None:
            params[key] = shared.get(key)
    params["state"] = params.get("state") or "present"
    return params


def resolve_entries(params: Dict[str, Any], read_text: Callable[[str], str] = _read_text,
                    workloads: Optional[List[Any]] = None) -> List[Entry]:
    """The entries of ``pods`` with their names and merged parameters; raises PodkitError naming every
    entry that cannot be placed (so nothing is touched when the set of pods is not known). An entry
    whose manifest holds workloads goes to ``workloads`` as (index, merged parameters), for _workloads."""
    problems = []
    entries = []
    seen: Dict[str, int] = {}
    for index, raw in enumerate(params.get("pods") or []):
        where = "pods[%d]" % index
        if not isinstance(raw, dict):
            problems.append("%s: each entry is a mapping of the pod module's options." % where)
            continue
        merged = merge_entry(params, raw)
        try:
            if raw.get("manifest_file") is not None:
                if raw.get("manifest") is not None:
                    raise PodkitError("%s: manifest and manifest_file are exclusive; give one of them." % where)
                path = raw["manifest_file"]
                try:
                    text = read_text(path)
                except (IOError, OSError) as exc:
                    raise PodkitError("%s.manifest_file: cannot read %s on the target host (%s); the path is read "
                                      "where the module runs. For a file on the controller use manifest: "
                                      "\"{{ lookup('ansible.builtin.file', '...') }}\"."
                                      % (where, path, getattr(exc, "strerror", None) or exc))
                merged["manifest"] = _load_manifest(text, "%s.manifest_file (%s)" % (where, path))
            elif isinstance(merged.get("manifest"), str):
                merged["manifest"] = _load_manifest(merged["manifest"], where + ".manifest")
            if workloads is not None and is_workload_manifest(merged.get("manifest")):
                merged["rerun"] = raw.get("rerun")
                merged["rollback"] = bool(raw.get("rollback"))
                workloads.append((index, merged))
                continue
            if raw.get("rerun") is not None:
                raise PodkitError("%s.rerun: only for an entry whose manifest holds a Job (whether a finished Job runs"
                                  " again); leave it out here." % where)
            if raw.get("rollback"):
                raise PodkitError("%s.rollback: only for an entry whose manifest holds a Deployment, StatefulSet or"
                                  " DaemonSet (a Pod has no rollout to undo); leave it out here." % where)
            name = merged.get("name")
            from_manifest = _manifest_name(merged.get("manifest"))
            if name is None and from_manifest is None:
                docs = merged.get("manifest")
                docs = docs if isinstance(docs, list) else [] if docs is None else [docs]
                why = missing_pod(docs) if docs else None
                raise PodkitError("%s: the pod has no name%s; give name, or a manifest (or manifest_file) with a Pod"
                                  " that has metadata.name." % (where, " (%s)" % why if why else ""))
            if name is not None and from_manifest is not None and name != from_manifest:
                raise PodkitError("%s.name: %r does not match the manifest's metadata.name %r; make them agree or "
                                  "leave one out." % (where, name, from_manifest))
            name = validate_pod_name(name or from_manifest, "%s.%s" % (where, "name" if name else "metadata.name"))
        except PodkitError as error:
            problems.append(error.msg)
            continue
        if name in seen:
            problems.append("%s.name: pod %s is already pods[%d]; each pod appears once in pods."
                            % (where, name, seen[name]))
            continue
        seen[name] = index
        merged["name"] = name
        entries.append(Entry(index=index, name=name, params=merged))
    if problems:
        raise PodkitError("pods: %s Nothing was changed." % " ".join(problems))
    return entries


def check_parallel(parallel: Optional[int]) -> int:
    parallel = DEFAULT_PARALLEL if parallel is None else parallel
    if parallel < 1:
        raise PodkitError("parallel: %r must be at least 1 (the number of pods converged at once)." % parallel)
    return parallel


def prepare_pods(params: Dict[str, Any]) -> Dict[str, Any]:
    """Step 1, before the engine is reached: the call's own options, its entries (``resolve_entries``)
    and each entry's input parsed as the pod module parses it; an entry refused keeps why in
    ``refused``. The entries go on to ``converge_pods``."""
    check_parallel(params.get("parallel"))
    check_selector(params.get("prune_selector"))
    prune_pattern(params.get("prune_pattern"))
    addresses = params.get("nodeport_addresses") or []
    raw_workloads: List[Any] = []
    entries = resolve_entries(params, workloads=raw_workloads)
    workloads, publications = [], []
    if addresses or raw_workloads:
        # The workload layer (and Jobs, CronJobs, Services under it) is imported only by a call that holds
        # workloads: a call of Pods alone never compiles it (the host compiles what it imports from the
        # AnsiballZ zip on every run; issue 27).
        from ansible_collections.podkit.docker.plugins.module_utils._services import check_addresses, plan_publications
        addresses = check_addresses(addresses)
    if raw_workloads:
        from ansible_collections.podkit.docker.plugins.module_utils._workloads import resolve_workloads
        workloads = resolve_workloads(raw_workloads, [e.name for e in entries])
        if workloads:
            templates = [(w.namespace, w.template) for w in workloads if w.job is None and w.cron is None]
            publications, warnings = plan_publications(workloads[0].services, templates, addresses,
                                                       params.get("service_proxy_image") or DEFAULT_PROXY_IMAGE)
            workloads[0].warnings.extend(warnings)
    for entry in entries:
        try:
            entry.spec = parse_pod(entry.params)
        except PodkitError as error:
            entry.refused = error
    return dict(entries=entries, workloads=workloads, publications=publications)


def entries_secret_values(params: Dict[str, Any]) -> List[str]:
    """Values of env variables marked secret in any entry, before anything is parsed."""
    found = []
    for raw in params.get("pods") or []:
        if isinstance(raw, dict):
            found.extend(secret_values(raw))
    return found


# ---------------------------------------------------------------------------
# 2. prune plan


def selector_filters(selector: Optional[Dict[str, Any]]) -> List[str]:
    """Docker label filters for podkit's containers, narrowed to ``prune_selector`` (all must match)."""
    return [LABEL_POD] + ["%s=%s" % (key, value) for key, value in sorted((selector or {}).items())]


def podkit_pod_names(summaries: List[Dict[str, Any]], selector: Optional[Dict[str, Any]] = None) -> List[str]:
    """The pods that containers (list summaries) belong to; a container without io.podkit.pod is none.

    The labels are checked here again, whatever the list call was asked: prune acts on this answer.
    """
    names = set()
    for summary in summaries:
        labels = summary.get("Labels") or {}
        pod = labels.get(LABEL_POD)
        if pod and all(labels.get(key) == str(value) for key, value in (selector or {}).items()):
            names.add(pod)
    return sorted(names)


def recorded_pod_names(docker_host: str, selector: Optional[Dict[str, Any]] = None) -> List[str]:
    """The pods recorded on this host for ``docker_host`` (podkit-guard's desired state) whose recorded
    labels carry ``selector``: a pod whose containers are all gone is still the host's, and pruning it
    deletes its record, so the guard never brings it back."""
    names = []
    for pod, params in recorded_pods():
        if not recorded_for(params, docker_host):
            continue
        if selector:
            try:
                labels = pod_spec_from_params(dict(params, state="present")).sandbox.labels
            except PodkitError:
                continue    # a record that no longer parses: its containers, if any, still decide
            if not all(labels.get(key) == str(value) for key, value in selector.items()):
                continue
        names.append(pod)
    return names


def check_selector(selector: Optional[Dict[str, Any]]) -> None:
    for key, value in (selector or {}).items():
        if not key or "=" in str(key) or value is None or isinstance(value, (dict, list)):
            raise PodkitError("prune_selector.%s: give labels as name: value pairs of strings (the pod's "
                              "metadata.labels)." % key)


def prune_pattern(text: Optional[str]) -> Optional[Pattern[str]]:
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise PodkitError("prune_pattern: %r is no regular expression (%s); fix it, or leave it out to prune "
                          "every unlisted pod." % (text, exc))


def forget_pruned_workloads(summaries: List[Dict[str, Any]], pruned: List[str], workloads: List[Any]) -> None:
    """The record of a workload that the call does not list (pod_facts' podkit_workloads) goes with the last of its
    pods, once prune removed them: no workload is reported with replicas wanted and none left."""
    owners: Dict[Tuple[str, str, str], set] = {}
    for summary in summaries:
        labels = summary.get("Labels") or {}
        if labels.get(LABEL_OWNER_KIND) and labels.get(LABEL_OWNER_NAME) and labels.get(LABEL_POD):
            key = (labels.get(LABEL_NAMESPACE) or "default", labels[LABEL_OWNER_KIND], labels[LABEL_OWNER_NAME])
            owners.setdefault(key, set()).add(labels[LABEL_POD])
    listed = set((w.namespace, w.kind, w.name) for w in workloads)
    gone = [key for key, pods in owners.items() if key not in listed and pods and pods <= set(pruned)]
    if gone:
        from ansible_collections.podkit.docker.plugins.module_utils._workloadfacts import delete_workload_record
        for namespace, kind, name in gone:
            delete_workload_record(kind, name, namespace)


def prune_entries(observed_pods: List[str], entries: List[Entry], shared: Dict[str, Any],
                  pattern: Optional[Pattern[str]] = None,
                  record_of: Callable[[str], Optional[Dict[str, Any]]] = read_record) -> List[Entry]:
    """``state: absent`` entries for the podkit pods on the host that the list does not name (and
    whose names ``pattern`` matches at their start, when given). A pod recorded with cgroup_limits
    unmanaged is removed as it was applied: its cgroup, not podkit's, stays."""
    listed = set(e.name for e in entries)
    result = []
    for pod in sorted(observed_pods):
        if pod in listed or (pattern is not None and not pattern.match(pod)):
            continue
        entry = dict(name=pod, state="absent")
        if ((record_of(pod) or {}).get("cgroup_limits")) == "unmanaged":
            entry["cgroup_limits"] = "unmanaged"
        result.append(Entry(index=None, name=pod, params=merge_entry(shared, entry)))
    return result


# ---------------------------------------------------------------------------
# 3. converge


class Clients:
    """One Docker client per worker thread and daemon address, closed together at the end.

    A docker-py client (a requests session) is not shared between threads. ``known`` is
    (docker_host, API version) of the module's own client: the clients of that daemon take its
    version rather than each asking the daemon again (one GET /version a worker).
    """

    def __init__(self, known: Optional[Tuple[str, Optional[str]]] = None):
        self.local = threading.local()
        self.lock = threading.Lock()
        self.all: List[Any] = []
        self.known = known

    def get(self, docker_host, timeout):
        cache = getattr(self.local, "clients", None)
        if cache is None:
            cache = self.local.clients = {}
        key = (docker_host, timeout)
        if key not in cache:
            version = self.known[1] if self.known is not None and self.known[0] == docker_host else None
            cache[key] = connect(docker_host, timeout, api_version=version)
            with self.lock:
                self.all.append(cache[key])
        return cache[key]

    def close(self):
        for client in self.all:
            client.close()


def converge_one(entry: Entry, clients: Clients, check_mode: bool, diff: bool, host: Any = None) -> Outcome:
    """One pod's reconcile cycle in a worker; every failure is kept in the outcome, never raised."""
    outcome = Outcome(entry=entry)
    if entry.refused is not None:
        return refused_outcome(entry)
    try:
        client = clients.get(entry.params["docker_host"], entry.params["timeout"])
        # A Job's pod is never recorded for podkit-guard: once finished it must stay so (_jobs).
        outcome.result = converge_pod(client, entry.params, check_mode, diff, outcome.secrets,
                                      observed=entry.observed, host=host if entry.observed is not None else None,
                                      spec=entry.spec, record=entry.params.get("record") is not False)
    except PodkitError as error:
        outcome.error = error.msg
        outcome.result = dict(error.details)
    except Exception as exc:  # pylint: disable=broad-except
        # A bug must not stop the other pods' workers; it is reported with its traceback.
        outcome.error = "unexpected error: %s: %s" % (type(exc).__name__, exc)
        outcome.exception = traceback.format_exc()
    return outcome


def refused_outcome(entry: Entry, why: Optional[PodkitError] = None) -> Outcome:
    """The outcome of a pod that is not converged: its input was refused, else ``why`` (the engine failed)."""
    error = entry.refused if entry.refused is not None else why
    if error is None:
        raise ValueError("refused_outcome: pod %s was not refused and no reason was given" % entry.name)
    return Outcome(entry=entry, result=dict(error.details), error=error.msg)


def run_all(entries: List[Entry], check_mode: bool, diff: bool, parallel: int,
            converge: Callable[..., Outcome] = converge_one, host: Any = None,
            known: Optional[Tuple[str, Optional[str]]] = None) -> List[Outcome]:
    """Converge every entry, ``parallel`` at a time; outcomes in the order of ``entries``."""
    clients = Clients(known)
    try:
        if parallel <= 1 or len(entries) <= 1:
            return [converge(entry, clients, check_mode, diff, host) for entry in entries]
        with ThreadPoolExecutor(max_workers=min(parallel, len(entries))) as pool:
            futures = [pool.submit(converge, entry, clients, check_mode, diff, host) for entry in entries]
            return [future.result() for future in futures]
    finally:
        clients.close()


# ---------------------------------------------------------------------------
# 4. report


def pod_result(outcome: Outcome) -> Dict[str, Any]:
    result = outcome.result
    item = dict(changed=bool(result.get("changed")), actions=list(result.get("actions") or []),
                pod=result.get("pod"), state=outcome.entry.params["state"])
    if outcome.entry.index is None:
        item["pruned"] = True
    if outcome.error is not None:
        item["failed"] = True
        item["msg"] = outcome.error
        for key, value in result.items():
            item.setdefault(key, value)
    return item


def flatten(outcomes: List[Outcome]) -> List[str]:
    """Every pod's actions, prefixed by its name, pod after pod in the order converged."""
    return ["%s: %s" % (o.entry.name, action) for o in outcomes for action in (o.result.get("actions") or [])]


def diffs(outcomes: List[Outcome]) -> List[Dict[str, Any]]:
    """One diff per pod that changes, headed by its name (Ansible shows a list of diffs one by one)."""
    found = []
    for outcome in outcomes:
        diff = outcome.result.get("diff")
        if diff and outcome.result.get("actions"):
            found.append(dict(diff, before_header="pod %s" % outcome.entry.name,
                              after_header="pod %s" % outcome.entry.name))
    return found


def pod_warnings(outcomes: List[Outcome]) -> List[str]:
    """Every pod's warnings (fields that mean nothing on one host, under validate: warn), named by pod."""
    return ["pod %s: %s" % (o.entry.name, text) for o in outcomes for text in (o.result.get("warnings") or [])]


def failure_message(outcomes: List[Outcome]) -> Optional[str]:
    failed = [o for o in outcomes if o.error is not None]
    if not failed:
        return None
    return "%d of %d pods failed%s: %s" % (
        len(failed), len(outcomes), " (the others were converged)" if len(failed) < len(outcomes) else "",
        " | ".join("%s: %s" % (o.entry.where, o.error) for o in failed))


def observe_and_converge(client: Any, params: Dict[str, Any], entries: List[Entry], workloads: List[Any],
                         check_mode: bool, diff: bool, parallel: int, selector: Any,
                         pattern: Optional[Pattern[str]],
                         publications: Sequence[Any] = ()) -> Tuple[List[Outcome], List[Any], List[Any]]:
    """(outcomes of the entries, of the workloads, of the published Services): the host observed once, then
    every entry converged ``parallel`` at a time, then the workloads, whose replicas converge as entries do, then
    the proxy pods of the Services published on the host (_services.Publication).

    The one observation: every podkit container of the host in one list call, the pods to prune from it
    (narrowed by ``selector`` and ``pattern``), and the slices of the pods on this daemon (an entry may name
    another docker_host: that pod observes itself). With no engine to observe with, the refused entries
    still fail with their own errors, first (the others with the engine's)."""
    refused = [e for e in entries if e.refused is not None]
    try:
        summaries = list_pod_containers(client.api)
        if params.get("prune"):
            found = set(podkit_pod_names(summaries, selector)) | set(recorded_pod_names(params["docker_host"], selector))
            if workloads:
                # A listed workload is one entry: its pods, whatever their names, are listed.
                from ansible_collections.podkit.docker.plugins.module_utils._workloads import (
                    proxy_pod_names, workload_pod_names)
                found -= workload_pod_names(workloads, summaries, recorded_pods())
                # A listed Service's proxy pod is its Service's to keep or remove (publish_services).
                found -= proxy_pod_names(list(publications), summaries)
            entries = entries + prune_entries(sorted(found), entries, params, pattern)
        here = [e for e in entries if e.params["docker_host"] == params["docker_host"] and e.refused is None]
        states = observe_pods(client, [e.name for e in here], summaries) if here else {}
        for entry in here:
            entry.observed = states[entry.name]
        host = host_cgroups(client) if here else None
    except PodkitError as error:
        if not refused:
            raise
        return [refused_outcome(e, error) for e in entries], [], []
    known = (params["docker_host"], getattr(client.api, "api_version", None))
    outcomes = run_all(entries, check_mode, diff, parallel, host=host, known=known)
    if not check_mode:
        forget_pruned_workloads(summaries, [o.entry.name for o in outcomes if o.entry.index is None and o.error is None],
                                workloads)

    def converge_replicas(items):
        done = run_all([Entry(index=None, name=pod, params=p) for pod, p in items], check_mode, diff, parallel,
                       host=host, known=known)
        return dict((o.entry.name, (o.result, o.error)) for o in done)

    if not workloads:
        return outcomes, [], []
    from ansible_collections.podkit.docker.plugins.module_utils._workloads import converge_workloads, publish_services
    workload_outcomes = converge_workloads(client.api, workloads, summaries, check_mode, converge_replicas)
    planned = [text for w in workload_outcomes for text in w.network]
    return outcomes, workload_outcomes, publish_services(client.api, list(publications), summaries, check_mode,
                                                         converge_replicas, planned)


def converge_pods(client: Any, params: Dict[str, Any], check_mode: bool, diff: bool = False,
                  secrets: Optional[set] = None, entries: Optional[List[Entry]] = None,
                  workloads: Optional[List[Any]] = None, publications: Optional[List[Any]] = None) -> Dict[str, Any]:
    """podkit.docker.pods: the module's result; a PodkitError naming each pod that failed (with the
    result in its details) when any did. ``secrets`` receives every pod's secret values. ``entries``
    and ``workloads`` come from ``prepare_pods``, which the module ran before the engine was reached;
    ``client`` may connect on first use: when every entry was refused and nothing is pruned, it is never
    used."""
    if entries is None:
        prepared = prepare_pods(params)
        entries, workloads, publications = prepared["entries"], prepared["workloads"], prepared["publications"]
    workloads = workloads or []
    parallel = check_parallel(params.get("parallel"))
    selector = params.get("prune_selector")
    pattern = prune_pattern(params.get("prune_pattern"))
    if all(e.refused is not None for e in entries) and not workloads and not params.get("prune"):
        outcomes, workload_outcomes, published = [refused_outcome(e) for e in entries], [], []
    else:
        outcomes, workload_outcomes, published = observe_and_converge(
            client, params, entries, workloads, check_mode, diff, parallel, selector, pattern, publications or ())
    for outcome in outcomes:
        if secrets is not None:
            secrets.update(outcome.secrets)
    result: Dict[str, Any] = dict(
        changed=any(o.result.get("changed") for o in outcomes) or any(w.changed for w in workload_outcomes) or any(
            p.changed for p in published),
        pods=dict((o.entry.name, pod_result(o)) for o in outcomes),
        actions=flatten(outcomes),
    )
    if workloads:
        from ansible_collections.podkit.docker.plugins.module_utils._workloads import workload_actions, workload_result
        result["workloads"] = dict((w.workload.key, workload_result(w)) for w in workload_outcomes)
        result["actions"] += workload_actions(workload_outcomes)
        for outcome in workload_outcomes:
            for pod, pod_out in outcome.pods.items():
                result["pods"][pod] = dict(changed=bool(pod_out.get("changed")), actions=list(pod_out.get("actions") or []),
                                           pod=pod_out.get("pod"), owner=outcome.workload.key,
                                           state="absent" if pod in outcome.removed else "present")
    if published:
        from ansible_collections.podkit.docker.plugins.module_utils._workloads import publication_result
        result["services"] = dict((p.publication.service.key, publication_result(p)) for p in published)
        for outcome in published:
            result["actions"] += ["Service/%s: %s" % (outcome.publication.service.key, a) for a in outcome.actions]
            if outcome.pod is not None:
                result["pods"][outcome.publication.pod] = dict(
                    changed=bool(outcome.pod.get("changed")), actions=list(outcome.pod.get("actions") or []),
                    pod=outcome.pod.get("pod"), owner="Service/%s" % outcome.publication.service.name,
                    state="absent" if outcome.publication.remove else "present")
    warnings = pod_warnings(outcomes) + [text for w in workloads for text in w.warnings]
    if warnings:
        result["warnings"] = warnings
    if diff:
        result["diff"] = diffs(outcomes) + [
            dict(pod_out["diff"], before_header="pod %s (%s)" % (pod, w.workload.key),
                 after_header="pod %s (%s)" % (pod, w.workload.key))
            for w in workload_outcomes for pod, pod_out in sorted(w.pods.items())
            if pod_out.get("diff") and pod_out.get("actions")]
    msg = failure_message(outcomes)
    failed_workloads = [w.error for w in workload_outcomes if w.error] + [p.error for p in published if p.error]
    if failed_workloads:
        msg = " | ".join(([msg] if msg else []) + failed_workloads)
    if msg:
        bugs = [o.exception for o in outcomes if o.exception]
        if bugs:
            result["exception"] = "\n".join(bugs)
        raise PodkitError(msg, **result)
    return result
