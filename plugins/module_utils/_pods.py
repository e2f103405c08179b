# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every pod of one host in one call (podkit.docker.pods).

One call, in this order:

1. resolve: each entry of ``pods`` merged with the options given once at the module level (an
   entry's own value wins), its name known (from ``name``, the manifest's ``metadata.name`` or
   ``manifest_file``). A list that cannot be read as a set of pods (an entry without a name,
   a name given twice, manifest and manifest_file together) fails the call before anything is
   touched: with it, neither the pods to converge nor the pods to prune are known;
2. prune plan: the podkit pods on the host (containers labelled ``io.podkit.pod``, one
   label-filtered list call, narrowed by ``prune_selector`` as ``kubectl apply --prune -l``
   narrows its prune) that the list does not name become ``state: absent`` entries. A
   container without that label is never a pod, so never pruned;
3. converge: every pod is one reconcile cycle of the pod module (``converge_pod``: its own
   lock, observe, plan, apply, or only plan in check mode), run ``parallel`` at a time in
   worker threads, each worker with its own Docker client. One pod's failure is recorded and
   the others go on;
4. report: results keyed by pod name, a flat ``actions`` list prefixed by pod name in the order
   of the list (then the pruned pods by name), one diff per pod; the call fails afterwards
   naming each pod that failed and why.

Pods are independent: nothing here orders one pod after another, and the per-pod lock
(``/run/podkit/<pod>.lock``) still serialises a pod against other runs on the same host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._docker import LABEL_POD, DockerException, connect
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError

# Given once at the module level, overridden by an entry's own value.
SHARED_OPTIONS = ("sandbox_image", "pull", "wait", "wait_timeout", "docker_host", "timeout")
# The pod module's options an entry may carry (besides manifest_file, read here).
POD_OPTIONS = ("name", "state", "manifest", "containers", "init_containers", "restart_policy",
               "share_process_namespace", "hostname", "ports", "dns", "dns_search", "host_aliases", "volumes",
               "cgroup_parent", "resources") + SHARED_OPTIONS
DEFAULT_PARALLEL = 4


@dataclass
class Entry:
    """One pod of the call: where it came from and the pod module's parameters for it."""
    index: Optional[int]            # position in ``pods``; None for a pod found by prune
    name: str
    params: Dict[str, Any]

    @property
    def where(self):
        # type: () -> str
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


def _read_text(path):
    # type: (str) -> str
    with open(path) as handle:
        return handle.read()


def _load_manifest(value, where):
    # type: (Any, str) -> Any
    """A manifest given as YAML text, parsed; a dict as it is. Other shapes are left to the pod's own checks."""
    if not isinstance(value, str):
        return value
    from ansible.module_utils.common.yaml import HAS_YAML, yaml_load
    if not HAS_YAML:
        raise PodkitError("%s: YAML text needs PyYAML on the target host; install python3-yaml or give the "
                          "manifest as a mapping." % where)
    try:
        return yaml_load(value)
    except Exception as exc:  # pylint: disable=broad-except  # any parser error is a user error here
        raise PodkitError("%s: not valid YAML (%s); fix the text." % (where, exc))


def _manifest_name(manifest):
    # type: (Any) -> Optional[str]
    if isinstance(manifest, dict) and isinstance(manifest.get("metadata"), dict):
        name = manifest["metadata"].get("name")
        return name if isinstance(name, str) and name else None
    return None


def merge_entry(shared, entry):
    # type: (Dict[str, Any], Dict[str, Any]) -> Dict[str, Any]
    """The pod module's parameters for one entry: the entry's own values, else the module-level ones."""
    params = dict((key, entry.get(key)) for key in POD_OPTIONS)
    for key in SHARED_OPTIONS:
        if params.get(key) is None:
            params[key] = shared.get(key)
    params["state"] = params.get("state") or "present"
    return params


def resolve_entries(params, read_text=_read_text):
    # type: (Dict[str, Any], Callable[[str], str]) -> List[Entry]
    """The entries of ``pods`` with their names and merged parameters; raises PodkitError naming every
    entry that cannot be placed (so nothing is touched when the set of pods is not known)."""
    from ansible_collections.podkit.docker.plugins.module_utils._spec import validate_pod_name
    problems = []
    entries = []
    seen = {}   # type: Dict[str, int]
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
            name = merged.get("name")
            from_manifest = _manifest_name(merged.get("manifest"))
            if name is None and from_manifest is None:
                raise PodkitError("%s: the pod has no name; give name, or a manifest (or manifest_file) with "
                                  "metadata.name." % where)
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


def secret_values(params):
    # type: (Dict[str, Any]) -> List[str]
    """Values of env variables marked secret in any entry, before anything is parsed."""
    from ansible_collections.podkit.docker.plugins.module_utils._reconcile import secret_values as pod_secrets
    found = []
    for raw in params.get("pods") or []:
        if isinstance(raw, dict):
            found.extend(pod_secrets(raw))
    return found


# ---------------------------------------------------------------------------
# 2. prune plan


def selector_filters(selector):
    # type: (Optional[Dict[str, Any]]) -> List[str]
    """Docker label filters for podkit's containers, narrowed to ``prune_selector`` (all must match)."""
    return [LABEL_POD] + ["%s=%s" % (key, value) for key, value in sorted((selector or {}).items())]


def podkit_pod_names(summaries, selector=None):
    # type: (List[Dict[str, Any]], Optional[Dict[str, Any]]) -> List[str]
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


def check_selector(selector):
    # type: (Optional[Dict[str, Any]]) -> None
    for key, value in (selector or {}).items():
        if not key or "=" in str(key) or value is None or isinstance(value, (dict, list)):
            raise PodkitError("prune_selector.%s: give labels as name: value pairs of strings (the pod's "
                              "metadata.labels)." % key)


def prune_entries(observed_pods, entries, shared):
    # type: (List[str], List[Entry], Dict[str, Any]) -> List[Entry]
    """``state: absent`` entries for the podkit pods on the host that the list does not name."""
    listed = set(e.name for e in entries)
    return [Entry(index=None, name=pod, params=merge_entry(shared, dict(name=pod, state="absent")))
            for pod in sorted(observed_pods) if pod not in listed]


def list_podkit_containers(client, selector=None):
    # type: (Any, Optional[Dict[str, Any]]) -> List[Dict[str, Any]]
    try:
        return client.api.containers(all=True, filters={"label": selector_filters(selector)})
    except DockerException as exc:
        raise PodkitError("docker_host: listing podkit's containers failed: %s" % exc)


# ---------------------------------------------------------------------------
# 3. converge


class Clients:
    """One Docker client per worker thread and daemon address, closed together at the end.

    A docker-py client (a requests session) is not shared between threads.
    """

    def __init__(self):
        self.local = threading.local()
        self.lock = threading.Lock()
        self.all = []   # type: List[Any]

    def get(self, docker_host, timeout):
        cache = getattr(self.local, "clients", None)
        if cache is None:
            cache = self.local.clients = {}
        key = (docker_host, timeout)
        if key not in cache:
            cache[key] = connect(docker_host, timeout)
            with self.lock:
                self.all.append(cache[key])
        return cache[key]

    def close(self):
        for client in self.all:
            client.close()


def converge_one(entry, clients, check_mode, diff):
    # type: (Entry, Clients, bool, bool) -> Outcome
    """One pod's reconcile cycle in a worker; every failure is kept in the outcome, never raised."""
    from ansible_collections.podkit.docker.plugins.module_utils._reconcile import converge_pod
    outcome = Outcome(entry=entry)
    try:
        client = clients.get(entry.params["docker_host"], entry.params["timeout"])
        outcome.result = converge_pod(client, entry.params, check_mode, diff, outcome.secrets)
    except PodkitError as error:
        outcome.error = error.msg
        outcome.result = dict(error.details)
    except Exception as exc:  # pylint: disable=broad-except
        # A bug must not stop the other pods' workers; it is reported with its traceback.
        outcome.error = "unexpected error: %s: %s" % (type(exc).__name__, exc)
        outcome.exception = traceback.format_exc()
    return outcome


def run_all(entries, check_mode, diff, parallel, converge=converge_one):
    # type: (List[Entry], bool, bool, int, Callable[..., Outcome]) -> List[Outcome]
    """Converge every entry, ``parallel`` at a time; outcomes in the order of ``entries``."""
    clients = Clients()
    try:
        if parallel <= 1 or len(entries) <= 1:
            return [converge(entry, clients, check_mode, diff) for entry in entries]
        with ThreadPoolExecutor(max_workers=min(parallel, len(entries))) as pool:
            futures = [pool.submit(converge, entry, clients, check_mode, diff) for entry in entries]
            return [future.result() for future in futures]
    finally:
        clients.close()


# ---------------------------------------------------------------------------
# 4. report


def pod_result(outcome):
    # type: (Outcome) -> Dict[str, Any]
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


def flatten(outcomes):
    # type: (List[Outcome]) -> List[str]
    """Every pod's actions, prefixed by its name, pod after pod in the order converged."""
    return ["%s: %s" % (o.entry.name, action) for o in outcomes for action in (o.result.get("actions") or [])]


def diffs(outcomes):
    # type: (List[Outcome]) -> List[Dict[str, Any]]
    """One diff per pod that changes, headed by its name (Ansible shows a list of diffs one by one)."""
    found = []
    for outcome in outcomes:
        diff = outcome.result.get("diff")
        if diff and outcome.result.get("actions"):
            found.append(dict(diff, before_header="pod %s" % outcome.entry.name,
                              after_header="pod %s" % outcome.entry.name))
    return found


def failure_message(outcomes):
    # type: (List[Outcome]) -> Optional[str]
    failed = [o for o in outcomes if o.error is not None]
    if not failed:
        return None
    return "%d of %d pods failed (the others were converged): %s" % (
        len(failed), len(outcomes), " | ".join("%s: %s" % (o.entry.where, o.error) for o in failed))


def converge_pods(params, check_mode, diff=False):
    # type: (Dict[str, Any], bool, bool) -> Tuple[Dict[str, Any], List[Outcome]]
    """podkit.docker.pods: the module's result and the per-pod outcomes (the module fails on failed ones)."""
    entries = resolve_entries(params)
    parallel = params.get("parallel")
    parallel = DEFAULT_PARALLEL if parallel is None else parallel
    if parallel < 1:
        raise PodkitError("parallel: %r must be at least 1 (the number of pods converged at once)." % parallel)
    # Issue 14 plugs in here: one observe_pods(client, names) for every pod of the host (one
    # label-filtered list call), giving the pods to prune and each pod's state, handed to its
    # converge_pod instead of each worker observing its pod again. Until then only prune lists.
    check_selector(params.get("prune_selector"))
    if params.get("prune"):
        client = connect(params["docker_host"], params["timeout"])
        try:
            selector = params.get("prune_selector")
            found = podkit_pod_names(list_podkit_containers(client, selector), selector)
        finally:
            client.close()
        entries = entries + prune_entries(found, entries, params)
    outcomes = run_all(entries, check_mode, diff, parallel)
    result = dict(
        changed=any(o.result.get("changed") for o in outcomes),
        pods=dict((o.entry.name, pod_result(o)) for o in outcomes),
        actions=flatten(outcomes),
    )
    if diff:
        result["diff"] = diffs(outcomes)
    return result, outcomes
