# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a pod is reconciled: observe what is, plan the actions that close the gap, apply them.

One cycle, as the kubelet runs it:

* observe: the pod's containers from ONE label-filtered list call, each inspected once, the
  namespace inodes of their processes from /proc, the images they should run;
* plan: a list of ``Action`` (kind, target, reason) computed from the wanted specs and the
  observed state only. ``actions``, ``diff`` and check mode all come from this list, so they
  cannot disagree with what a real run does;
* apply: run the actions in order (skipped in check mode).

Idempotency comes from the live state, not from what was asked last time: a configuration
hash label per container (with per-field hashes so the reason can name the field that
changed), the image ID, the sandbox ID a member joined and the namespace inodes of a member
compared with its sandbox's. Containers without our ``io.podkit.pod`` label are never touched.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import hashlib
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._docker import (
    LABEL_CONTAINER, LABEL_HASH, LABEL_POD, LABEL_ROLE, LABEL_SANDBOX_ID, ROLE_INIT, ROLE_MEMBER,
    ROLE_SANDBOX, DockerException, member_name, sandbox_name)
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._namespaces import read_namespaces
from ansible_collections.podkit.docker.plugins.module_utils._spec import (
    ContainerSpec, Mount, PortMapping, SandboxSpec, Volume)

# Per-field hashes of the canonical configuration, so a recreation can say which field changed.
LABEL_FIELDS = "io.podkit.config-fields"
# The sandbox records that its pod shares the PID namespace; pod_container follows it by default.
LABEL_SHARE_PID = "io.podkit.share-pid"
# Read by the facts (a pod's QoS class is not recoverable from Docker's settings alone).
LABEL_QOS = "io.podkit.qos-class"

LOCK_DIR = "/run/podkit"

# Kubernetes restart policies as Docker restart policies.
DOCKER_RESTART = {"Always": "always", "OnFailure": "on-failure", "Never": "no"}
# The sandbox comes back with the daemon unless a user stopped it.
SANDBOX_RESTART = "unless-stopped"

NS_WORDS = {"net": "network", "ipc": "IPC", "pid": "PID"}
STOP_TIMEOUT = 10
LOG_TAIL = 20

MIN_SHARES = 2
MAX_SHARES = 262144
CPU_PERIOD = 100000
MIN_QUOTA = 1000


# ---------------------------------------------------------------------------
# Actions


@dataclass
class Action:
    """One step of a plan. ``str(action)`` is what users read in ``actions``."""
    kind: str                       # pull, cgroup, volume, create, recreate, start, stop, restart, remove, run
    target: str                     # "sandbox", a container's name in the pod, an image, a volume, a cgroup
    reason: str = ""
    wanted: Any = field(default=None, repr=False, compare=False)
    seen: Any = field(default=None, repr=False, compare=False)

    def __str__(self):
        if self.kind == "run":
            text = "run init %s" % self.target
        elif self.kind == "cgroup":
            text = "%s cgroup %s" % ("update" if self.reason else "create", self.target)
        elif self.kind == "volume":
            text = "create volume %s" % self.target
        else:
            text = "%s %s" % (self.kind, self.target)
        return text + (": " + self.reason if self.reason else "")


# ---------------------------------------------------------------------------
# What is wanted, canonical


@dataclass
class Wanted:
    """A container as it should be: its canonical configuration is what gets hashed."""
    key: str                         # "sandbox" or the container's name in the pod
    role: str
    name: str                        # Docker's container name
    image: str
    pull: str
    config: Dict[str, Any]
    secret_env: Tuple[str, ...] = ()
    labels: Dict[str, str] = field(default_factory=dict)    # extra labels, not part of the hash

    def hashes(self):
        # type: () -> Tuple[str, Dict[str, str]]
        fields = dict((k, _digest(v)[:8]) for k, v in sorted(self.config.items()))
        return _digest(self.config)[:16], fields

    def masked_config(self):
        # type: () -> Dict[str, Any]
        """The configuration as diffs show it: secret env values replaced."""
        config = dict(self.config)
        if "env" in config and self.secret_env:
            config["env"] = dict((k, "********" if k in self.secret_env else v) for k, v in config["env"].items())
        return config


def _digest(value):
    # type: (Any) -> str
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def port_text(port):
    # type: (PortMapping) -> str
    host = "%s:" % port.host_ip if port.host_ip else ""
    host += "%d:" % port.host_port if port.host_port else ""
    return "%s%d/%s" % (host, port.container_port, port.protocol)


def sandbox_wanted(spec, cgroup_parent, extra_ports=(), labels=None):
    # type: (SandboxSpec, str, Any, Optional[Dict[str, str]]) -> Wanted
    ports = []
    for port in list(spec.ports) + list(extra_ports):
        text = port_text(port)
        if text not in ports:
            ports.append(text)
    config = dict(
        image=spec.image,
        hostname=spec.hostname or spec.pod,
        ports=sorted(ports),
        dns=list(spec.dns),
        dns_search=list(spec.dns_search),
        dns_options=list(spec.dns_options),
        extra_hosts=sorted("%s:%s" % (host, ip) for host, ip in spec.extra_hosts.items()),
        network=spec.network or "bridge",
        cgroup_parent=cgroup_parent,
        share_pid=bool(spec.share_pid),
        labels=dict(spec.labels),
    )
    extra = dict(labels or {})
    if spec.share_pid:
        extra[LABEL_SHARE_PID] = "true"
    return Wanted(key="sandbox", role=ROLE_SANDBOX, name=sandbox_name(spec.pod), image=spec.image,
                  pull=spec.pull, config=config, labels=extra)


def volume_docker_name(pod, volume):
    # type: (str, str) -> str
    return "%s_%s" % (pod, volume)


def mount_entries(pod, mounts, volumes, field_name):
    # type: (str, List[Mount], Dict[str, Volume], str) -> List[Dict[str, Any]]
    result = []
    for index, mount in enumerate(mounts):
        volume = volumes.get(mount.volume)
        if volume is None:
            raise PodkitError("%s.volumeMounts[%d].name: no volume %r in the pod's volumes; declare it under "
                              "volumes (hostPath or emptyDir)." % (field_name, index, mount.volume))
        if volume.kind == "hostPath":
            source = volume.host_path or ""
            if mount.sub_path:
                source = os.path.join(source, mount.sub_path)
            result.append(dict(type="bind", source=source, target=mount.mount_path, read_only=mount.read_only))
        else:
            if mount.sub_path:
                raise PodkitError("%s.volumeMounts[%d].subPath: not supported for emptyDir volumes."
                                  % (field_name, index))
            result.append(dict(type="volume", source=volume_docker_name(pod, volume.name), target=mount.mount_path,
                               read_only=mount.read_only))
    return result


def member_wanted(pod, spec, volumes, cgroup_parent, restart_policy=None, role=ROLE_MEMBER, share=None,
                  field_name=None):
    # type: (str, ContainerSpec, Dict[str, Volume], str, Optional[str], str, Optional[Any], Optional[str]) -> Wanted
    if spec.name == "sandbox":
        raise PodkitError("%s.name: 'sandbox' is reserved for the pod's sandbox container; rename the container."
                          % (field_name or "name"))
    res = spec.resources
    config = dict(
        image=spec.image,
        command=list(spec.command) if spec.command is not None else None,
        args=list(spec.args) if spec.args is not None else None,
        env=dict((str(k), str(v)) for k, v in spec.env.items()),
        working_dir=spec.working_dir or None,
        user=spec.user or None,
        mounts=mount_entries(pod, spec.mounts, volumes, field_name or "containers[%s]" % spec.name),
        resources=dict(memory=res.memory_limit, memory_request=res.memory_request,
                       cpu=res.cpu_limit, cpu_request=res.cpu_request),
        share=sorted(share if share is not None else spec.share),
        restart_policy="Never" if role == ROLE_INIT else (restart_policy or spec.restart_policy),
        cgroup_parent=cgroup_parent,
    )
    return Wanted(key=spec.name, role=role, name=member_name(pod, spec.name), image=spec.image, pull=spec.pull,
                  config=config, secret_env=tuple(spec.secret_env))


def cpu_shares(resources):
    # type: (Dict[str, Any]) -> int
    """cpu.shares as the kubelet sets them: from the request, else the limit, at least 2."""
    millis = resources.get("cpu_request") or resources.get("cpu") or 0
    if not millis:
        return MIN_SHARES
    return max(MIN_SHARES, min(MAX_SHARES, millis * 1024 // 1000))


# ---------------------------------------------------------------------------
# What is, observed


@dataclass
class Seen:
    """A container of the pod as Docker and the kernel see it."""
    attrs: Dict[str, Any]
    namespaces: Dict[str, int] = field(default_factory=dict)

    @property
    def id(self):
        return self.attrs["Id"]

    @property
    def name(self):
        return (self.attrs.get("Name") or "").lstrip("/")

    @property
    def labels(self):
        return (self.attrs.get("Config") or {}).get("Labels") or {}

    @property
    def state(self):
        return self.attrs.get("State") or {}

    @property
    def running(self):
        return bool(self.state.get("Running")) and not self.state.get("Restarting")

    @property
    def pid(self):
        return int(self.state.get("Pid") or 0)

    @property
    def exit_code(self):
        return self.state.get("ExitCode")

    @property
    def image_id(self):
        return self.attrs.get("Image")


@dataclass
class PodState:
    pod: str
    sandbox: Optional[Seen] = None
    containers: Dict[str, Seen] = field(default_factory=dict)     # members and init containers by key
    extra: List[Seen] = field(default_factory=list)               # duplicates: removed when seen


def observe(client, pod):
    # type: (Any, str) -> PodState
    """The pod as it is: one filtered list call, one inspect per container, /proc for namespaces."""
    try:
        summaries = client.api.containers(all=True, filters={"label": "%s=%s" % (LABEL_POD, pod)})
    except DockerException as exc:
        raise PodkitError("docker_host: listing the containers of pod %s failed: %s" % (pod, exc))
    state = PodState(pod=pod)
    for summary in summaries:
        try:
            attrs = client.api.inspect_container(summary["Id"])
        except DockerException as exc:
            if getattr(exc, "status_code", None) == 404:
                continue    # removed between the two calls
            raise PodkitError("docker_host: inspecting container %s failed: %s" % (summary["Id"][:12], exc))
        seen = Seen(attrs)
        if seen.running and seen.pid:
            seen.namespaces = read_namespaces(seen.pid)
        labels = seen.labels
        role = labels.get(LABEL_ROLE)
        if role == ROLE_SANDBOX:
            if seen.name == sandbox_name(pod) and state.sandbox is None:
                state.sandbox = seen
            else:
                state.extra.append(seen)
            continue
        key = labels.get(LABEL_CONTAINER) or seen.name
        if key in state.containers or seen.name != member_name(pod, key):
            state.extra.append(seen)
        else:
            state.containers[key] = seen
    return state


def observed_fields(seen):
    # type: (Seen) -> Dict[str, str]
    text = seen.labels.get(LABEL_FIELDS) or ""
    result = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if sep:
            result[key] = value
    return result


def config_changes(wanted, seen):
    # type: (Wanted, Seen) -> List[str]
    """The top-level configuration fields that differ; [] when the hash matches."""
    digest, fields = wanted.hashes()
    if seen.labels.get(LABEL_HASH) == digest:
        return []
    before = observed_fields(seen)
    changed = sorted(k for k in set(fields) | set(before) if fields.get(k) != before.get(k))
    return changed or ["labels"]


# ---------------------------------------------------------------------------
# Images


class Images:
    """Image IDs for references, by pull policy, each reference asked about once per run."""

    def __init__(self, client, check_mode):
        self.client = client
        self.check_mode = check_mode
        self.ids = {}   # type: Dict[str, Optional[str]]
        self.pending = []   # type: List[str]

    def _inspect(self, ref):
        try:
            return self.client.api.inspect_image(ref)["Id"]
        except DockerException as exc:
            if getattr(exc, "status_code", None) == 404:
                return None
            raise PodkitError("image %s: inspecting it failed: %s" % (ref, exc))

    def plan(self, ref, pull, field_name):
        # type: (str, str, str) -> Optional[Action]
        """Resolve ``ref``; return a pull action when the image must be pulled first."""
        if ref in self.ids or ref in self.pending:
            return None
        image_id = self._inspect(ref) if pull != "always" or self.check_mode else None
        if pull == "always" and not self.check_mode:
            # A pull that brings nothing new is not a change: only the image ID decides.
            self.pull(ref)
            self.ids[ref] = self._inspect(ref)
            return None
        if image_id is None:
            if pull == "never":
                raise PodkitError("%s: image %s is not on the host and pull is never. Build or load it "
                                  "(docker load, docker build) or set pull: missing." % (field_name, ref))
            self.pending.append(ref)
            return Action("pull", ref, "not on the host")
        self.ids[ref] = image_id
        return None

    def pull(self, ref):
        repository, tag = _split_ref(ref)
        try:
            self.client.api.pull(repository, tag=tag)
        except DockerException as exc:
            raise PodkitError("image %s: pulling it failed: %s. Load the image on the host, or check the "
                              "registry and the reference." % (ref, exc))
        self.ids[ref] = self._inspect(ref)
        if self.ids[ref] is None:
            raise PodkitError("image %s: still not on the host after pulling it." % ref)


def _split_ref(ref):
    # type: (str) -> Tuple[str, Optional[str]]
    if "@" in ref:
        return ref, None
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = ref.rsplit(":", 1)
        return repository, tag
    return ref, "latest"


# ---------------------------------------------------------------------------
# Planning


class Planner:
    """Computes the actions for a pod from the observed state; pure apart from image lookups."""

    def __init__(self, state, images):
        # type: (PodState, Images) -> None
        self.state = state
        self.images = images
        self.actions = []   # type: List[Action]
        # What happens to the sandbox: "keep", "new" (created or recreated), "restarted", "gone", "stopped".
        self.sandbox_fate = "keep"

    def add(self, action):
        self.actions.append(action)
        return action

    def image_changed(self, wanted, seen):
        # type: (Wanted, Seen) -> bool
        image_id = self.images.ids.get(wanted.image)
        if image_id is None:
            # Still to be pulled: only known to differ after the pull.
            return wanted.image in self.images.pending
        return image_id != seen.image_id

    def need_image(self, wanted, field_name):
        action = self.images.plan(wanted.image, wanted.pull, field_name)
        if action:
            self.add(action)

    # -- the sandbox

    def sandbox(self, wanted, state):
        # type: (Optional[Wanted], str) -> None
        seen = self.state.sandbox
        if state == "absent":
            if seen:
                self.add(Action("remove", "sandbox", "", seen=seen))
                self.sandbox_fate = "gone"
            return
        if state == "stopped":
            if seen and seen.state.get("Running"):
                self.add(Action("stop", "sandbox", "", seen=seen))
            self.sandbox_fate = "stopped" if seen else "gone"
            return
        self.need_image(wanted, "image" if wanted.role == ROLE_SANDBOX else "sandbox_image")
        if seen is None:
            self.add(Action("create", "sandbox", "", wanted=wanted))
            self.sandbox_fate = "new"
            return
        changes = config_changes(wanted, seen)
        if changes:
            self.add(Action("recreate", "sandbox", "%s changed" % ", ".join(changes), wanted=wanted, seen=seen))
            self.sandbox_fate = "new"
        elif self.image_changed(wanted, seen):
            self.add(Action("recreate", "sandbox", "image changed (%s)" % wanted.image, wanted=wanted, seen=seen))
            self.sandbox_fate = "new"
        elif not seen.running:
            self.add(Action("start", "sandbox", "not running", wanted=wanted, seen=seen))
            self.sandbox_fate = "restarted"
        elif state == "restarted":
            self.add(Action("restart", "sandbox", "state restarted", wanted=wanted, seen=seen))
            self.sandbox_fate = "restarted"

    # -- members and init containers

    def stale_reason(self, wanted, seen):
        # type: (Wanted, Seen) -> Optional[str]
        """Why a member no longer belongs to the current sandbox, or None."""
        if self.sandbox_fate == "new":
            return "sandbox recreated"
        if self.sandbox_fate == "restarted":
            return "sandbox restarted"
        sandbox = self.state.sandbox
        if sandbox is None:
            return "sandbox missing"
        if seen.labels.get(LABEL_SANDBOX_ID) != sandbox.id:
            return "joined another sandbox"
        if seen.running and seen.namespaces and sandbox.namespaces:
            for ns in ("net", "ipc", "pid"):
                if ns in wanted.config.get("share", ()) and seen.namespaces.get(ns) != sandbox.namespaces.get(ns):
                    return "stale %s namespace" % NS_WORDS[ns]
        return None

    def member(self, wanted, state, field_name="image"):
        # type: (Wanted, str, str) -> None
        seen = self.state.containers.get(wanted.key)
        if state == "absent":
            if seen:
                self.add(Action("remove", wanted.key, "", seen=seen))
            return
        if state == "stopped":
            if seen and seen.state.get("Running"):
                self.add(Action("stop", wanted.key, "", seen=seen))
            return
        self.need_image(wanted, field_name)
        if seen is None:
            self.add(Action("create", wanted.key, "", wanted=wanted))
            return
        reason = self.recreate_reason(wanted, seen)
        if reason:
            self.add(Action("recreate", wanted.key, reason, wanted=wanted, seen=seen))
        elif not seen.running and self.should_start(wanted, seen):
            self.add(Action("start", wanted.key, "not running", wanted=wanted, seen=seen))
        elif state == "restarted":
            self.add(Action("restart", wanted.key, "state restarted", wanted=wanted, seen=seen))

    def recreate_reason(self, wanted, seen):
        # type: (Wanted, Seen) -> Optional[str]
        changes = config_changes(wanted, seen)
        if changes:
            return "config changed (%s)" % ", ".join(changes)
        if self.image_changed(wanted, seen):
            return "image changed (%s)" % wanted.image
        return self.stale_reason(wanted, seen)

    @staticmethod
    def should_start(wanted, seen):
        # type: (Wanted, Seen) -> bool
        """Whether a stopped member is started again, by its restart policy (the kubelet's rule)."""
        policy = wanted.config.get("restart_policy")
        if policy == "Always":
            return True
        if policy == "OnFailure":
            return seen.exit_code not in (0, None) or not seen.state.get("FinishedAt", "").startswith("2")
        return not seen.state.get("FinishedAt", "").startswith("2")     # Never: only if it never ran

    def init(self, wanted, rerun_from):
        # type: (Wanted, Optional[str]) -> Optional[str]
        """Plan an init container; return the reason the next ones rerun too, or None."""
        self.need_image(wanted, "init_containers[%s].image" % wanted.key)
        seen = self.state.containers.get(wanted.key)
        reason = rerun_from
        if reason is None:
            if seen is None:
                reason = "not run yet"
            else:
                reason = self.recreate_reason(wanted, seen)
                sandbox = self.state.sandbox
                if reason is None and sandbox is not None and \
                        _timestamp(sandbox.state.get("StartedAt")) > _timestamp(seen.state.get("StartedAt")):
                    # An exited init container has no namespaces to compare: its start time tells
                    # that the sandbox was restarted after it ran.
                    reason = "sandbox restarted"
                if reason is None and (seen.state.get("Running") or seen.exit_code != 0):
                    reason = "did not complete" if not seen.state.get("Running") or seen.exit_code else "still running"
        if reason:
            self.add(Action("run", wanted.key, reason, wanted=wanted, seen=seen))
            return "after %s" % wanted.key
        return None

    def remove_others(self, keys):
        # type: (List[str]) -> None
        """Containers labelled for the pod that the spec no longer has."""
        for key in sorted(self.state.containers):
            if key not in keys:
                self.add(Action("remove", key, "not in the pod", seen=self.state.containers[key]))
        for seen in self.state.extra:
            self.add(Action("remove", seen.name, "duplicate of the pod's %s" % (seen.labels.get(LABEL_CONTAINER)
                                                                                or seen.labels.get(LABEL_ROLE)),
                            seen=seen))


def labels_for(pod, wanted, extra=None):
    # type: (str, Wanted, Optional[Dict[str, str]]) -> Dict[str, str]
    """The labels a container is created with: the user's, then podkit's own (which win)."""
    digest, fields = wanted.hashes()
    labels = dict(wanted.config.get("labels") or {})
    labels.update(wanted.labels)
    labels.update({LABEL_POD: pod, LABEL_ROLE: wanted.role, LABEL_CONTAINER: wanted.key,
                   LABEL_HASH: digest, LABEL_FIELDS: ",".join("%s=%s" % kv for kv in sorted(fields.items()))})
    labels.update(extra or {})
    return labels


def _timestamp(text):
    # type: (Optional[str]) -> Tuple[str, int]
    """Docker's RFC 3339 time (nanoseconds, trailing zeros trimmed) as a sortable pair."""
    text = (text or "").rstrip("Z")
    whole, _sep, fraction = text.partition(".")
    return whole, int((fraction + "000000000")[:9] or 0)


def check_foreign(client, pod, actions):
    # type: (Any, str, List[Action]) -> None
    """Fail, before anything is done, when a name we would create is taken by a foreign container."""
    names = [a.wanted.name for a in actions if a.kind in ("create", "run") and a.seen is None and a.wanted]
    if not names:
        return
    try:
        found = client.api.containers(all=True, filters={"name": ["^/%s$" % n for n in names]})
    except DockerException as exc:
        raise PodkitError("docker_host: listing containers failed: %s" % exc)
    for summary in found:
        cname = (summary.get("Names") or ["?"])[0].lstrip("/")
        if cname not in names:
            continue
        owner = (summary.get("Labels") or {}).get(LABEL_POD)
        whose = "it has no %s label" % LABEL_POD if owner is None else "it belongs to pod %r" % owner
        raise PodkitError(
            "container %s (%s) already exists and is not part of pod %s: %s. podkit never changes or removes "
            "a container it does not manage; remove or rename that container, or choose another pod name."
            % (cname, summary["Id"][:12], pod, whose))


# ---------------------------------------------------------------------------
# Applying


class Applier:
    """Runs a plan against the engine."""

    def __init__(self, client, pod, state, images, wait_timeout=60):
        self.client = client
        self.api = client.api
        self.pod = pod
        self.state = state
        self.images = images
        self.wait_timeout = wait_timeout
        self.sandbox = state.sandbox          # type: Optional[Seen]
        self.touched = {}                     # type: Dict[str, str]  # key -> container id (new or changed)
        self.removed = set()
        self.deferred = []                    # type: List[Tuple[str, str, str]]  # members created, to start
        self.finally_ = []                    # type: List[Any]  # steps for after every action (lowered limits)
        self.final = {}                       # type: Dict[str, Dict[str, Any]]  # container id -> inspect after

    def sandbox_id(self):
        if self.sandbox is None:
            raise PodkitError("pod %s has no sandbox (%s); create it first (podkit.docker.pod_sandbox or "
                              "podkit.docker.pod)." % (self.pod, sandbox_name(self.pod)))
        return self.sandbox.id

    def _call(self, what, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except DockerException as exc:
            raise PodkitError("%s failed: %s" % (what, _explain(exc)))

    def remove(self, seen):
        self._call("removing container %s" % seen.name, self.api.remove_container, seen.id, force=True)

    def labels_for(self, wanted, extra=None):
        return labels_for(self.pod, wanted, extra)

    def create_sandbox(self, wanted):
        # type: (Wanted) -> str
        config = wanted.config
        bindings = {}   # type: Dict[str, List[Any]]
        exposed = []
        for text in config["ports"]:
            port = _parse_port_text(text)
            key = "%d/%s" % (port.container_port, port.protocol)
            if key not in bindings:
                bindings[key] = []
                exposed.append((port.container_port, port.protocol))
            if port.host_port:
                bindings[key].append((port.host_ip, port.host_port) if port.host_ip else port.host_port)
        host_config = self.api.create_host_config(
            ipc_mode="shareable", cgroup_parent=config["cgroup_parent"] or None,
            port_bindings=dict((k, v) for k, v in bindings.items() if v) or None,
            dns=config["dns"] or None, dns_search=config["dns_search"] or None, dns_opt=config["dns_options"] or None,
            extra_hosts=dict(h.rsplit(":", 1) if h.count(":") == 1 else h.split(":", 1)
                             for h in config["extra_hosts"]) or None,
            network_mode=config["network"], restart_policy={"Name": SANDBOX_RESTART})
        created = self._call(
            "creating the sandbox %s" % wanted.name, self.api.create_container,
            wanted.image, name=wanted.name, hostname=config["hostname"], ports=exposed or None,
            labels=self.labels_for(wanted), host_config=host_config, detach=True, use_config_proxy=False)
        return created["Id"]

    def create_member(self, wanted):
        # type: (Wanted) -> str
        config = wanted.config
        sandbox = "container:%s" % self.sandbox_id()
        share = config["share"]
        res = config["resources"]
        kwargs = dict(cgroup_parent=config["cgroup_parent"] or None, cpu_shares=cpu_shares(res))
        if "net" in share:
            kwargs["network_mode"] = sandbox
        if "ipc" in share:
            kwargs["ipc_mode"] = sandbox
        if "pid" in share:
            kwargs["pid_mode"] = sandbox
        if res.get("memory"):
            # The kubelet gives no swap beyond the limit.
            kwargs["mem_limit"] = res["memory"]
            kwargs["memswap_limit"] = res["memory"]
        if res.get("memory_request"):
            kwargs["mem_reservation"] = res["memory_request"]
        if res.get("cpu"):
            kwargs["cpu_period"] = CPU_PERIOD
            kwargs["cpu_quota"] = max(MIN_QUOTA, res["cpu"] * CPU_PERIOD // 1000)
        policy = DOCKER_RESTART[config["restart_policy"]]
        if policy != "no":
            kwargs["restart_policy"] = {"Name": policy}
        binds = []
        for mount in config["mounts"]:
            binds.append("%s:%s:%s" % (mount["source"], mount["target"], "ro" if mount["read_only"] else "rw"))
        if binds:
            kwargs["binds"] = binds
        host_config = self.api.create_host_config(**kwargs)
        created = self._call(
            "creating container %s" % wanted.name, self.api.create_container,
            wanted.image, name=wanted.name, entrypoint=config["command"], command=config["args"],
            environment=config["env"] or None, working_dir=config["working_dir"], user=config["user"],
            labels=self.labels_for(wanted, {LABEL_SANDBOX_ID: self.sandbox_id()}),
            host_config=host_config, detach=True, use_config_proxy=False)
        return created["Id"]

    def start(self, key, container_id, name):
        self._call("starting container %s" % name, self.api.start, container_id)
        self.touched[key] = container_id

    def inspect(self, container_id):
        return self._call("inspecting container %s" % container_id[:12], self.api.inspect_container, container_id)

    def run(self, actions, start=True):
        # type: (List[Action], bool) -> None
        self.deferred = []
        done = 0
        try:
            for action in actions:
                member = action.kind in ("create", "recreate") and action.wanted is not None \
                    and action.wanted.role == ROLE_MEMBER
                if not member:
                    self.start_deferred()
                getattr(self, "do_" + action.kind)(action, start)
                done += 1
            self.start_deferred()
            for step in self.finally_:
                step()
        except PodkitError as error:
            # Whatever ran before the failure did change the host.
            error.details.setdefault("changed", done > 0)
            error.details.setdefault("actions", [str(a) for a in actions])
            raise

    def start_deferred(self):
        """Start the members created in a row together: Docker starts them in parallel just fine."""
        pending, self.deferred = self.deferred, []
        if len(pending) == 1:
            self.start(*pending[0])
        elif pending:
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(max_workers=min(8, len(pending))) as pool:
                for future in [pool.submit(self.start, *item) for item in pending]:
                    future.result()

    # One method per action kind.

    def do_pull(self, action, _start):
        self.images.pull(action.target)

    def do_cgroup(self, action, _start):
        action.wanted(self)

    def do_volume(self, action, _start):
        self._call("creating volume %s" % action.wanted["name"], self.api.create_volume, **action.wanted)

    def do_create(self, action, start):
        if action.seen is not None:
            self.remove(action.seen)
        if action.wanted.role == ROLE_SANDBOX:
            new_id = self.create_sandbox(action.wanted)
            if start:
                self.start("sandbox", new_id, action.wanted.name)
            attrs = self.final[new_id] = self.inspect(new_id)
            self.sandbox = Seen(attrs, read_namespaces(attrs["State"]["Pid"]) if attrs["State"].get("Pid") else {})
            self.touched["sandbox"] = new_id
            return
        new_id = self.create_member(action.wanted)
        self.touched[action.target] = new_id
        if start:
            self.deferred.append((action.target, new_id, action.wanted.name))

    do_recreate = do_create

    def do_start(self, action, _start):
        self.start(action.target, action.seen.id, action.seen.name)
        if action.target == "sandbox":
            attrs = self.final[action.seen.id] = self.inspect(action.seen.id)
            self.sandbox = Seen(attrs, read_namespaces(attrs["State"]["Pid"]))

    def do_restart(self, action, _start):
        self._call("restarting container %s" % action.seen.name, self.api.restart, action.seen.id, timeout=STOP_TIMEOUT)
        self.touched[action.target] = action.seen.id
        if action.target == "sandbox":
            attrs = self.final[action.seen.id] = self.inspect(action.seen.id)
            self.sandbox = Seen(attrs, read_namespaces(attrs["State"]["Pid"]))

    def do_stop(self, action, _start):
        self._call("stopping container %s" % action.seen.name, self.api.stop, action.seen.id, timeout=STOP_TIMEOUT)
        self.touched[action.target] = action.seen.id

    def do_remove(self, action, _start):
        if action.seen is None:
            # A pod volume or the pod cgroup: ``wanted`` does the removal.
            action.wanted()
            return
        self.remove(action.seen)
        self.removed.add(action.target)
        if action.target == "sandbox":
            self.sandbox = None

    def do_run(self, action, _start):
        if action.seen is not None:
            self.remove(action.seen)
        wanted = action.wanted
        new_id = self.create_member(wanted)
        self.start(wanted.key, new_id, wanted.name)
        try:
            result = self.api.wait(new_id, timeout=self.wait_timeout)
        except DockerException as exc:
            raise PodkitError("init container %s did not complete within wait_timeout (%ss): %s. Raise "
                              "wait_timeout or fix the container." % (wanted.key, self.wait_timeout, _explain(exc)))
        except Exception as exc:  # pylint: disable=broad-except
            # requests' ReadTimeout is not a DockerException.
            raise PodkitError("init container %s did not complete within wait_timeout (%ss): %s. Raise "
                              "wait_timeout or fix the container." % (wanted.key, self.wait_timeout, exc))
        code = result.get("StatusCode")
        if code != 0:
            raise PodkitError("init container %s failed with exit code %s; the pod's containers were not "
                              "started. Last lines of its log:\n%s" % (wanted.key, code, self.log_tail(new_id)),
                              init_container=wanted.key, exit_code=code, log_tail=self.log_tail(new_id))

    def final_containers(self):
        # type: () -> List[Dict[str, Any]]
        """Inspect data of every container of the pod after the run, asking Docker only about changed ones."""
        result = []
        ids = {}
        for key, seen in [("sandbox", self.state.sandbox)] + list(self.state.containers.items()):
            if seen is not None and key not in self.removed:
                ids[key] = seen.id
        ids.update(self.touched)
        if self.sandbox is not None:
            ids["sandbox"] = self.sandbox.id
        unchanged = dict((s.id, s.attrs) for s in [self.state.sandbox] + list(self.state.containers.values())
                         if s is not None)
        for key, container_id in ids.items():
            if key in self.removed and key not in self.touched:
                continue
            attrs = self.final.get(container_id)
            if attrs is None and key not in self.touched:
                attrs = unchanged.get(container_id)
            if attrs is None:
                attrs = self.inspect(container_id)
            result.append(attrs)
        return result

    def log_tail(self, container_id):
        try:
            return self.api.logs(container_id, tail=LOG_TAIL).decode("utf-8", "replace")
        except DockerException:
            return ""

    def wait_running(self, keys, timeout):
        # type: (List[str], int) -> None
        """Return when the started members run; fail with the log tail of one that does not."""
        deadline = time.time() + timeout
        for key in keys:
            container_id = self.touched[key]
            while True:
                attrs = self.inspect(container_id)
                self.final[container_id] = attrs
                state = attrs["State"]
                if state.get("Running") and not state.get("Restarting"):
                    break
                if not state.get("Running") and not state.get("Restarting") and state.get("ExitCode") == 0:
                    break   # completed (restart policy Never/OnFailure)
                if time.time() > deadline:
                    raise PodkitError("container %s is not running after wait_timeout (%ss): status %s, exit "
                                      "code %s. Last lines of its log:\n%s"
                                      % (key, timeout, state.get("Status"), state.get("ExitCode"),
                                         self.log_tail(container_id)), exit_code=state.get("ExitCode"))
                time.sleep(0.2)


def _explain(exc):
    explanation = getattr(exc, "explanation", None)
    return explanation.decode("utf-8", "replace") if isinstance(explanation, bytes) else (explanation or str(exc))


def _parse_port_text(text):
    # type: (str) -> PortMapping
    spec, _sep, proto = text.partition("/")
    parts = spec.rsplit(":", 2)
    if len(parts) == 3:
        return PortMapping(container_port=int(parts[2]), host_port=int(parts[1]), host_ip=parts[0], protocol=proto)
    if len(parts) == 2:
        return PortMapping(container_port=int(parts[1]), host_port=int(parts[0]), protocol=proto)
    return PortMapping(container_port=int(parts[0]), protocol=proto)


# ---------------------------------------------------------------------------
# The lock


class PodLock:
    """A held pod lock. ``keep`` False: the lock file is removed on release (the pod has nothing)."""

    def __init__(self, path):
        self.path = path
        self.keep = True


@contextmanager
def pod_lock(pod, lock_dir=LOCK_DIR):
    """Serialise runs on one pod on this host (flock on /run/podkit/<pod>.lock).

    Yields a PodLock: a run that leaves the pod without any container sets ``keep`` to False,
    so neither a removed pod nor a refused first run leaves a lock file behind. A run waiting
    on a file removed meanwhile notices (another inode at the path) and locks the new file.
    """
    try:
        os.makedirs(lock_dir, exist_ok=True)
    except OSError as exc:
        raise PodkitError("cannot create %s for the pod lock: %s; run the module as root (become: true)."
                          % (lock_dir, exc.strerror))
    path = os.path.join(lock_dir, "%s.lock" % pod)
    while True:
        try:
            handle = open(path, "a")
        except OSError as exc:
            raise PodkitError("cannot open the pod lock %s: %s. podkit serialises runs on a pod through it; run "
                              "the module as root (become: true), as it also writes the cgroup filesystem."
                              % (path, exc.strerror))
        fcntl.flock(handle, fcntl.LOCK_EX)
        # The file may have been removed (state absent) while we waited: lock the new one then.
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            same = False
        if same:
            break
        handle.close()
    lock = PodLock(path)
    try:
        yield lock
    finally:
        if not lock.keep:
            try:
                os.unlink(path)
            except OSError:
                pass    # gone already, or not ours to remove (a lock file made for another user)
        handle.close()


def _has_containers(state):
    # type: (PodState) -> bool
    return bool(state.sandbox is not None or state.containers or state.extra)


# ---------------------------------------------------------------------------
# Reporting


def describe(seen):
    # type: (Optional[Seen]) -> Optional[Dict[str, Any]]
    if seen is None:
        return None
    return dict(id=seen.id, status=seen.state.get("Status"), image=(seen.attrs.get("Config") or {}).get("Image"),
                config_hash=seen.labels.get(LABEL_HASH))


def diff_for(state, actions, wanted):
    # type: (PodState, List[Action], Dict[str, Wanted]) -> Dict[str, Any]
    """before/after of the containers the plan touches (secret env masked), and the plan itself."""
    before = {}
    after = {}
    for action in actions:
        key = action.target
        if action.kind in ("pull", "cgroup", "volume"):
            continue
        seen = action.seen
        if seen is None:
            seen = state.sandbox if key == "sandbox" else state.containers.get(key)
        before[key] = describe(seen)
        if action.kind == "remove":
            after[key] = None
            continue
        item = dict(status={"stop": "exited"}.get(action.kind, "running"))
        if key in wanted:
            item["config"] = wanted[key].masked_config()
            item["image"] = wanted[key].image
        after[key] = item
    return dict(before=before, after=after, prepared="\n".join(str(a) for a in actions) + ("\n" if actions else ""))


# ---------------------------------------------------------------------------
# The three modules' cycles


def _host(client):
    from ansible_collections.podkit.docker.plugins.module_utils._cgroups import detect_host
    try:
        return detect_host(client)
    except DockerException as exc:
        raise PodkitError("docker_host: docker info failed: %s" % exc)


def _cgroup_parent(host, pod, given, field_name="cgroup_parent"):
    from ansible_collections.podkit.docker.plugins.module_utils._cgroups import default_parent, validate_name
    if given:
        validate_name(given, host, field_name)
        return given
    return default_parent(pod, host.driver)


def container_result(attrs, sandbox_ns=None):
    # type: (Optional[Dict[str, Any]], Optional[Dict[str, int]]) -> Optional[Dict[str, Any]]
    """A container as pod_sandbox and pod_container return it."""
    if attrs is None:
        return None
    state = attrs.get("State") or {}
    pid = int(state.get("Pid") or 0)
    namespaces = read_namespaces(pid) if pid else {}
    result = dict(id=attrs["Id"], name=(attrs.get("Name") or "").lstrip("/"), pid=pid,
                  status=state.get("Status"), image=(attrs.get("Config") or {}).get("Image"),
                  image_id=attrs.get("Image"), namespaces=namespaces)
    if sandbox_ns is not None:
        result["shared_with_sandbox"] = [ns for ns in ("net", "ipc", "pid", "uts")
                                         if ns in namespaces and namespaces[ns] == sandbox_ns.get(ns)]
    return result


def _finish(module_result, state, actions, wanted, diff):
    module_result["changed"] = bool(actions)
    module_result["actions"] = [str(a) for a in actions]
    if diff:
        module_result["diff"] = diff_for(state, actions, wanted)
    return module_result


def sandbox_spec_from_params(params):
    # type: (Dict[str, Any]) -> SandboxSpec
    from ansible_collections.podkit.docker.plugins.module_utils._spec import parse_port, validate_pod_name
    validate_pod_name(params["pod"], "pod")
    return SandboxSpec(
        pod=params["pod"], image=params["image"], cgroup_parent=params.get("cgroup_parent"),
        hostname=params.get("hostname"),
        ports=[parse_port(p, "ports[%d]" % i) for i, p in enumerate(params.get("ports") or [])],
        dns=list(params.get("dns") or []), dns_search=list(params.get("dns_search") or []),
        extra_hosts=dict((str(k), str(v)) for k, v in (params.get("extra_hosts") or {}).items()),
        network=params.get("network") or "bridge", share_pid=bool(params.get("share_pid")),
        labels=dict((str(k), str(v)) for k, v in (params.get("labels") or {}).items()),
        pull=params.get("pull") or "missing")


def converge_sandbox(client, params, check_mode, diff=False):
    # type: (Any, Dict[str, Any], bool, bool) -> Dict[str, Any]
    """podkit.docker.pod_sandbox: the sandbox alone."""
    spec = sandbox_spec_from_params(params)
    state_name = params.get("state") or "present"
    host = _host(client) if state_name not in ("absent", "stopped") else None
    with pod_lock(spec.pod) as lock:
        state = observe(client, spec.pod)
        lock.keep = _has_containers(state)
        images = Images(client, check_mode)
        planner = Planner(state, images)
        wanted = None
        if host is not None:
            wanted = sandbox_wanted(spec, _cgroup_parent(host, spec.pod, spec.cgroup_parent))
        planner.sandbox(wanted, state_name)
        actions = planner.actions
        check_foreign(client, spec.pod, actions)
        result = {}
        if check_mode or not actions:
            attrs = state.sandbox.attrs if state.sandbox else None
        else:
            applier = Applier(client, spec.pod, state, images)
            # Removing the sandbox leaves the lock only to members still there.
            lock.keep = state_name != "absent" or bool(state.containers or state.extra)
            applier.run(actions, start=state_name != "stopped")
            attrs = applier.inspect(applier.sandbox.id) if applier.sandbox else None
        result["sandbox"] = container_result(attrs)
        return _finish(result, state, actions, {"sandbox": wanted} if wanted else {}, diff)


def _split_volume(text, index):
    # type: (str, int) -> Tuple[str, str, bool]
    where = "volumes[%d]" % index
    parts = str(text).split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/"):
        raise PodkitError("%s: %r is not a volume; use source:/path/in/container[:ro|rw], where source is an "
                          "absolute host path (bind) or a pod volume name (a Docker volume <pod>_<name>)."
                          % (where, text))
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise PodkitError("%s: mode %r must be ro or rw." % (where, mode))
    return parts[0], parts[1], mode == "ro"


def container_spec_from_params(params):
    # type: (Dict[str, Any]) -> Tuple[ContainerSpec, Dict[str, Volume]]
    """pod_container's options as a ContainerSpec and the pod volumes it mounts."""
    from ansible_collections.podkit.docker.plugins.module_utils._quantity import parse_cpu, parse_memory
    from ansible_collections.podkit.docker.plugins.module_utils._spec import Resources, validate_pod_name
    validate_pod_name(params["pod"], "pod")
    resources = Resources()
    if params.get("memory") is not None:
        resources.memory_limit = parse_memory(params["memory"], "memory")
    if params.get("memory_request") is not None:
        resources.memory_request = parse_memory(params["memory_request"], "memory_request", minimum=1)
    if params.get("cpus") is not None:
        resources.cpu_limit = parse_cpu(params["cpus"], "cpus")
    if params.get("cpu_request") is not None:
        resources.cpu_request = parse_cpu(params["cpu_request"], "cpu_request")
    # As the API server defaults it: a limit without a request requests the limit.
    if resources.memory_request is None:
        resources.memory_request = resources.memory_limit
    if resources.cpu_request is None:
        resources.cpu_request = resources.cpu_limit
    for key in ("memory", "cpu"):
        limit, request = getattr(resources, key + "_limit"), getattr(resources, key + "_request")
        if limit is not None and request is not None and request > limit:
            raise PodkitError("%s_request is above the limit %s; a request must not exceed its limit."
                              % (key, "memory" if key == "memory" else "cpus"))
    env = dict((str(k), "" if v is None else str(v)) for k, v in (params.get("env") or {}).items())
    secret = dict((str(k), "" if v is None else str(v)) for k, v in (params.get("secret_env") or {}).items())
    both = sorted(set(env) & set(secret))
    if both:
        raise PodkitError("secret_env: %s also set in env; give each variable in one of them." % ", ".join(both))
    env.update(secret)
    volumes = {}    # type: Dict[str, Volume]
    mounts = []
    for index, text in enumerate(params.get("volumes") or []):
        source, target, read_only = _split_volume(text, index)
        if source.startswith("/"):
            name = "host%d" % index
            volumes[name] = Volume(name=name, kind="hostPath", host_path=source)
        else:
            name = source
            volumes[name] = Volume(name=name, kind="emptyDir")
        mounts.append(Mount(volume=name, mount_path=target, read_only=read_only))
    spec = ContainerSpec(
        name=params["name"], image=params["image"], command=params.get("command"), args=params.get("args"),
        env=env, secret_env=tuple(sorted(secret)), working_dir=params.get("working_dir"), user=params.get("user"),
        mounts=mounts, resources=resources, share=tuple(params.get("share") or ()),
        restart_policy=params.get("restart_policy") or "Always", pull=params.get("pull") or "missing")
    return spec, volumes


def plan_volumes(client, pod, volumes, planner, used):
    # type: (Any, str, Dict[str, Volume], Planner, List[str]) -> None
    """Create-volume actions for the pod's emptyDir volumes that are used and missing."""
    for name in used:
        volume = volumes.get(name)
        if volume is None or volume.kind != "emptyDir":
            continue
        docker_name = volume_docker_name(pod, name)
        try:
            client.api.inspect_volume(docker_name)
            continue
        except DockerException as exc:
            if getattr(exc, "status_code", None) != 404:
                raise PodkitError("volume %s: inspecting it failed: %s" % (docker_name, exc))
        opts = None
        if volume.medium == "Memory":
            opts = {"type": "tmpfs", "device": "tmpfs"}
            if volume.size_limit:
                opts["o"] = "size=%d" % volume.size_limit
        planner.add(Action("volume", docker_name, "emptyDir %s" % name,
                           wanted=dict(name=docker_name, driver="local", driver_opts=opts, labels={LABEL_POD: pod})))


def converge_container(client, params, check_mode, diff=False):
    # type: (Any, Dict[str, Any], bool, bool) -> Dict[str, Any]
    """podkit.docker.pod_container: one member, joined to its pod's sandbox."""
    state_name = params.get("state") or "present"
    if state_name in ("present", "started") and not params.get("image"):
        raise PodkitError("image is required when state is %s." % state_name)
    spec, volumes = container_spec_from_params(dict(params, image=params.get("image") or ""))
    pod = params["pod"]
    with pod_lock(pod) as lock:
        state = observe(client, pod)
        lock.keep = _has_containers(state)
        images = Images(client, check_mode)
        planner = Planner(state, images)
        sandbox = state.sandbox
        wanted = None
        planned = False
        if state_name in ("present", "started", "restarted") and check_mode and (sandbox is None or not sandbox.running):
            # In a check-mode play the pod_sandbox task before this one only said it would create or
            # start the sandbox: report what this task would then do instead of failing.
            seen = state.containers.get(spec.name)
            wanted = member_wanted(pod, spec, volumes, "", share=spec.share or ("net", "ipc"))
            planner.need_image(wanted, "image")
            planner.add(Action("recreate" if seen else "create", spec.name,
                               "sandbox missing" if sandbox is None else "sandbox not running", wanted=wanted, seen=seen))
            planned = True
        elif state_name in ("present", "started", "restarted"):
            if sandbox is None:
                raise PodkitError("pod %s has no sandbox (%s); create it first with podkit.docker.pod_sandbox "
                                  "(or use podkit.docker.pod)." % (pod, sandbox_name(pod)))
            if not sandbox.running:
                raise PodkitError("the sandbox of pod %s (%s) is not running; start it with podkit.docker.pod_sandbox "
                                  "state=started first." % (pod, sandbox.name))
            share = spec.share or (("net", "ipc", "pid") if sandbox.labels.get(LABEL_SHARE_PID) == "true"
                                   else ("net", "ipc"))
            parent = (sandbox.attrs.get("HostConfig") or {}).get("CgroupParent") or ""
            wanted = member_wanted(pod, spec, volumes, parent, share=share)
            plan_volumes(client, pod, volumes, planner, [m.volume for m in spec.mounts])
        else:
            wanted = Wanted(key=spec.name, role=ROLE_MEMBER, name=member_name(pod, spec.name), image=spec.image,
                            pull=spec.pull, config={})
        if not planned:
            planner.member(wanted, state_name)
        actions = planner.actions
        check_foreign(client, pod, actions)
        result = {}
        seen = state.containers.get(spec.name)
        if check_mode or not actions:
            attrs = seen.attrs if seen else None
        else:
            applier = Applier(client, pod, state, images, params.get("wait_timeout") or 60)
            lock.keep = state_name != "absent" or _has_containers(
                PodState(pod, state.sandbox, dict((k, v) for k, v in state.containers.items() if k != spec.name),
                         state.extra))
            applier.run(actions)
            new_id = applier.touched.get(spec.name)
            attrs = None if spec.name in applier.removed else applier.inspect(new_id) if new_id else (
                seen.attrs if seen else None)
        result["container"] = container_result(attrs, sandbox.namespaces if sandbox else {})
        return _finish(result, state, actions, {spec.name: wanted} if wanted.config else {}, diff)


def pod_cgroup_limits(spec, host):
    """The pod cgroup's limits as the kubelet derives them; no limit is written as 'unlimited'."""
    from ansible_collections.podkit.docker.plugins.module_utils._cgroups import UNLIMITED, limits_from
    from ansible_collections.podkit.docker.plugins.module_utils._spec import pod_resources
    resources = pod_resources(spec)
    return limits_from(
        memory_bytes=resources.memory_limit if resources.memory_limit is not None else UNLIMITED,
        cpu_millis=resources.cpu_limit if resources.cpu_limit is not None else UNLIMITED,
        # The kubelet gives a pod without CPU requests the minimum shares, not the default 1024.
        cpu_request_millis=resources.cpu_request or 0,
        version=host.version)


# Limits a child cgroup may not exceed (the CFS quota) or that cannot drop below usage (memory):
# raised before the members are recreated, lowered only after.
_ORDERED_LIMITS = ("memory_bytes", "cpu_quota_us")


def _unbounded(value):
    # type: (Optional[int]) -> float
    return float("inf") if value is None or value < 0 else value


def split_limits(limits, observed):
    """(what to write before the members change, what to write after): raise first, lower last."""
    from ansible_collections.podkit.docker.plugins.module_utils._cgroups import CgroupLimits
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


def foreign_processes(state, cgroup):
    # type: (PodState, Optional[Dict[str, Any]]) -> List[int]
    """PIDs in the pod's cgroup parent that are not in one of the pod's own containers' cgroups."""
    if not cgroup:
        return []
    ours = [s.id for s in [state.sandbox] + list(state.containers.values()) + state.extra if s is not None]
    pids = set()
    for directory in (cgroup.get("paths") or {}).values():
        for dirpath, dirnames, _files in os.walk(directory):
            if dirpath != directory and any(container_id in os.path.basename(dirpath) for container_id in ours):
                dirnames[:] = []
                continue
            try:
                with open(os.path.join(dirpath, "cgroup.procs")) as handle:
                    pids.update(int(p) for p in handle.read().split())
            except (OSError, ValueError):
                continue
    return sorted(pids)


def plan_cgroup(planner, backend, parent, limits):
    changed, before, after = backend.ensure(parent, limits, check_mode=True)
    foreign = foreign_processes(planner.state, before)
    if foreign:
        from ansible_collections.podkit.docker.plugins.module_utils._namespaces import read_cmdline
        raise PodkitError(
            "cgroup_parent: %s already exists and holds processes that are not this pod's: %s. podkit does not "
            "take over a cgroup in use; stop those processes, or give the pod another cgroup_parent."
            % (parent, ", ".join("%d (%s)" % (pid, read_cmdline(pid) or "?") for pid in foreign[:10])))
    if not changed:
        return
    reason = ""
    if before is not None:
        old, new = before.get("limits") or {}, (after or {}).get("limits") or {}
        reason = "%s changed" % ", ".join(sorted(k for k in new if new.get(k) != old.get(k)) or ["limits"])
    # A new cgroup has no member to conflict with: everything is written at once.
    first, last = split_limits(limits, before["limits"] or {}) if before is not None else (limits, None)

    def apply(applier):
        backend.ensure(parent, first, check_mode=False)
        if last is not None:
            applier.finally_.append(lambda: backend.ensure(parent, last, check_mode=False))
    planner.add(Action("cgroup", parent, reason, wanted=apply))


def _pod_name(params, spec):
    if spec is not None:
        return spec.name
    from ansible_collections.podkit.docker.plugins.module_utils._spec import validate_pod_name
    if not params.get("name"):
        raise PodkitError("name is required (or a manifest with metadata.name).")
    return validate_pod_name(params["name"], "name")


def secret_values(params):
    # type: (Dict[str, Any]) -> List[str]
    """Values of env variables marked secret in the pod module's raw options, found before anything is
    parsed, so that even a refused run cannot show them."""
    found = []
    for key in ("containers", "init_containers"):
        for item in params.get(key) or []:
            if not isinstance(item, dict):
                continue
            env = item.get("env")
            names = item.get("secret_env") or []
            if isinstance(names, dict):
                # secret_env as a mapping: every value in it is secret.
                found.extend(str(v) for v in names.values() if v not in (None, ""))
                names = list(names)
            names = names if isinstance(names, list) else []
            if isinstance(env, dict):
                found.extend(str(v) for k, v in env.items() if k in names and v not in (None, ""))
            elif isinstance(env, list):
                for entry in env:
                    if isinstance(entry, dict) and entry.get("value") not in (None, "") and (
                            entry.get("secret") in (True, "true", "True", "yes", 1) or entry.get("name") in names):
                        found.append(str(entry["value"]))
    return found


def converge_pod(client, params, check_mode, diff=False, secrets=None):
    # type: (Any, Dict[str, Any], bool, bool, Optional[Any]) -> Dict[str, Any]
    """podkit.docker.pod: cgroup parent, sandbox, init containers, members, as one reconcile cycle.

    ``secrets`` (a set) receives the values of secret env variables so the module can mask them.
    """
    from ansible_collections.podkit.docker.plugins.module_utils._cgroups import backend_for
    from ansible_collections.podkit.docker.plugins.module_utils._facts import pod_facts
    from ansible_collections.podkit.docker.plugins.module_utils._spec import pod_spec_from_params, qos_class
    state_name = params.get("state") or "present"
    spec = None
    given = params.get("manifest") is not None or params.get("containers")
    if state_name in ("present", "started", "restarted") or given:
        spec = pod_spec_from_params(params)
        if secrets is not None:
            for container in spec.containers + spec.init_containers:
                secrets.update(container.env[k] for k in container.secret_env if container.env.get(k))
    pod = _pod_name(params, spec)
    host = _host(client)
    wanted = {}     # type: Dict[str, Wanted]
    with pod_lock(pod) as lock:
        state = observe(client, pod)
        lock.keep = _has_containers(state)
        images = Images(client, check_mode)
        planner = Planner(state, images)
        if state_name == "absent":
            parent = params.get("cgroup_parent") or (spec.sandbox.cgroup_parent if spec else None)
            if not parent and state.sandbox is not None:
                parent = (state.sandbox.attrs.get("HostConfig") or {}).get("CgroupParent")
            parent = _cgroup_parent(host, pod, parent)
            plan_absent(client, planner, pod, backend_for(host), parent)
        elif state_name == "stopped":
            for key in sorted(state.containers):
                seen = state.containers[key]
                if seen.state.get("Running"):
                    planner.add(Action("stop", key, "", seen=seen))
            planner.sandbox(None, "stopped")
        else:
            parent = _cgroup_parent(host, pod, spec.sandbox.cgroup_parent)
            plan_cgroup(planner, backend_for(host), parent, pod_cgroup_limits(spec, host))
            sandbox = sandbox_wanted(spec.sandbox, parent, labels={LABEL_QOS: qos_class(spec)})
            sandbox.config["qos_class"] = qos_class(spec)
            sandbox.pull = spec.sandbox.pull
            wanted["sandbox"] = sandbox
            planner.sandbox(sandbox, state_name)
            volumes = dict((v.name, v) for v in spec.volumes)
            used = []
            for container in spec.init_containers + spec.containers:
                used.extend(m.volume for m in container.mounts if m.volume not in used)
            plan_volumes(client, pod, volumes, planner, used)
            rerun = None
            for index, container in enumerate(spec.init_containers):
                item = member_wanted(pod, container, volumes, parent, role=ROLE_INIT,
                                     field_name="init_containers[%d]" % index)
                wanted[item.key] = item
                rerun = planner.init(item, rerun)
            for index, container in enumerate(spec.containers):
                item = member_wanted(pod, container, volumes, parent, restart_policy=spec.restart_policy,
                                     field_name="containers[%d]" % index)
                wanted[item.key] = item
                planner.member(item, state_name, "containers[%d].image" % index)
            planner.remove_others(list(wanted))
        actions = planner.actions
        check_foreign(client, pod, actions)
        result = {}
        containers = None
        if actions and not check_mode:
            applier = Applier(client, pod, state, images, params.get("wait_timeout") or 60)
            lock.keep = state_name != "absent"
            applier.run(actions, start=state_name != "stopped")
            if params.get("wait", True) and state_name not in ("absent", "stopped"):
                started = [a.target for a in actions if a.kind in ("create", "recreate", "start", "restart")
                           and a.target != "sandbox"]
                applier.wait_running(started, params.get("wait_timeout") or 60)
            if state_name != "absent":
                containers = applier.final_containers()
        else:
            containers = [s.attrs for s in [state.sandbox] + list(state.containers.values()) if s is not None]
        result["pod"] = None
        if not (state_name == "absent" and actions and not check_mode):
            result["pod"] = pod_facts(client, host, pod, containers=containers)
        return _finish(result, state, actions, wanted, diff)


def plan_absent(client, planner, pod, backend, parent):
    """Remove every container labelled with the pod (members first), its volumes and its cgroup."""
    state = planner.state
    for key in sorted(state.containers):
        planner.add(Action("remove", key, "", seen=state.containers[key]))
    for seen in state.extra:
        planner.add(Action("remove", seen.name, "", seen=seen))
    if state.sandbox is not None:
        planner.add(Action("remove", "sandbox", "", seen=state.sandbox))
    try:
        found = client.api.volumes(filters={"label": "%s=%s" % (LABEL_POD, pod)}).get("Volumes") or []
    except DockerException as exc:
        raise PodkitError("docker_host: listing the volumes of pod %s failed: %s" % (pod, exc))
    for volume in sorted(found, key=lambda v: v["Name"]):
        planner.add(Action("remove", "volume %s" % volume["Name"], "",
                           wanted=_remover(client.api.remove_volume, volume["Name"], force=True)))
    # Without a container of the pod there is no evidence the cgroup at that path is the pod's.
    if _has_containers(state) and backend.observe(parent) is not None:
        planner.add(Action("remove", "cgroup %s" % parent, "", wanted=_remover(backend.remove, parent, False)))


def _remover(func, *args, **kwargs):
    def remove():
        try:
            func(*args, **kwargs)
        except DockerException as exc:
            raise PodkitError("removing %s failed: %s" % (args[0], _explain(exc)))
    return remove
