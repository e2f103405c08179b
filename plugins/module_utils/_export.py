# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A pod on this host as a Kubernetes v1 Pod manifest, read back from what the engine says.

``export_pod`` is the reverse of the manifest mapping (``_spec`` and ``_wanted`` one way, this file the
other), in the order a reader of a Pod expects:

1. metadata: the pod's name, its namespace (``io.podkit.namespace``), its labels and annotations (the
   sandbox's own labels, told apart by the configuration hash podkit recorded);
2. the pod: hostname, DNS, host aliases, host namespaces, sysctls, shared PID namespace, the grace
   period, the restart policy, from the sandbox and the members' Docker settings;
3. each container (init containers and native sidecars in the order they were created): image,
   command and args against the image's own, env less the image's, ports (the sandbox publishes
   them), mounts as volumes, resources from the container's limits, the security settings Docker
   records, stdin/tty, stop signal, hooks;
4. the ConfigMaps and Secrets the pod refers to: by their own names where the members recorded the
   sources (io.podkit.origin), with the keys read from their env and the files podkit wrote, else one
   per file volume and per container's secret env; a Secret's values only when asked for.

Where podkit recorded a per-field hash of what it applied (``io.podkit.config-fields``), a field that
reads two ways (an env variable equal to the image's, a command equal to the image's entrypoint) is
read the way that gives the recorded hash. Anything with no Kubernetes form is named in ``warnings``;
the pod module options needed to apply the manifest back as it is (``sandbox_image``,
``cgroup_parent``) are returned beside it, and ``verify`` checks a podkit pod's export against those
hashes. All of that is pure; the last section reads what it needs from the engine and the host
(``observe``) for ``pod_facts`` (``add_manifests``).
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._cgroups import (
    MIN_SHARES, UNLIMITED, changed_fields, default_parent, kubelet_shares, quota_millicores, shares_millicores,
    weight_to_shares)
from ansible_collections.podkit.docker.plugins.module_utils._docker import Container
from ansible_collections.podkit.docker.plugins.module_utils._envsource import RESOURCE_PREFIX
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._labels import (
    LABEL_CONTAINER, LABEL_FIELDS, LABEL_NAMESPACE, LABEL_ORIGIN, LABEL_POD, LABEL_PREFIX, LABEL_PRE_STOP, LABEL_QOS,
    LABEL_SHARE_PID, LABEL_SIDECAR, ROLE_INIT, ROLE_MEMBER, ROLE_SANDBOX, config_hashes, parse_fields)
from ansible_collections.podkit.docker.plugins.module_utils._lifecycle import hook_manifest
from ansible_collections.podkit.docker.plugins.module_utils._quantity import format_bytes, format_cpu, parse_memory
from ansible_collections.podkit.docker.plugins.module_utils._restart import KUBERNETES_RESTART
from ansible_collections.podkit.docker.plugins.module_utils._security import SECCOMP_ROOT
from ansible_collections.podkit.docker.plugins.module_utils._spec import (
    DEFAULT_SANDBOX_IMAGE, PodSpec, pod_resources, pod_spec_from_manifest, qos_class)
from ansible_collections.podkit.docker.plugins.module_utils._volumefiles import SECRETS_ROOT, VOLUMES_ROOT
from ansible_collections.podkit.docker.plugins.module_utils._wanted import differing_fields, pod_cgroup_limits, want_pod

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_KEY = re.compile(r"[^-._a-zA-Z0-9]")
# A label key Kubernetes takes as a label: [prefix/]name, the name at most 63 characters.
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

Files = Dict[str, Tuple[bytes, int]]


@dataclass
class Export:
    """One pod as documents (the Pod first, then ConfigMaps and Secrets), what has no Kubernetes form,
    and the pod module options that apply it back as it is."""
    documents: List[Dict[str, Any]]
    warnings: List[str] = field(default_factory=list)
    options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Observed:
    """What the reader gathered for one pod (inspect data, images, files, volumes, the pod cgroup)."""
    name: str
    managed: bool
    sandbox: Optional[Dict[str, Any]]
    members: List[Tuple[str, str, Dict[str, Any]]]            # (key, role, container inspect data)
    images: Dict[str, Dict[str, Any]] = field(default_factory=dict)    # image reference -> image Config
    files: Dict[str, Files] = field(default_factory=dict)    # file volume directory -> files
    volumes: Dict[str, Dict[str, Any]] = field(default_factory=dict)   # Docker volume name -> its inspect data
    default_parent: str = ""                                  # the pod's default cgroup parent on this host
    pod_limits: Dict[str, Any] = field(default_factory=dict)  # the pod cgroup's limits as read
    cgroup_version: int = 1                                   # the host's (cpu.shares on 1, cpu.weight on 2)


# ---------------------------------------------------------------------------
# Small readers


def _field_hash(value: Any) -> str:
    return config_hashes({"x": value})[1]["x"]


def _recorded(attrs: Dict[str, Any]) -> Dict[str, str]:
    return parse_fields(Container(attrs).labels.get(LABEL_FIELDS))


def _pick(candidates: List[Any], recorded: Optional[str]) -> Any:
    """The first candidate whose field hash is the recorded one; the first one without a record."""
    if recorded:
        for candidate in candidates:
            if _field_hash(candidate) == recorded:
                return candidate
    return candidates[0]


def dns_name(text: str) -> str:
    """A DNS-1123 label made of a Docker name: lowercase, '_' and '.' as '-', at most 63 characters."""
    name = re.sub(r"[^a-z0-9-]", "-", text.lower()).strip("-")[:63].strip("-")
    return name or "pod"


def _env_pairs(items: Optional[List[str]]) -> List[Tuple[str, str]]:
    pairs = []
    for item in items or []:
        name, _sep, value = item.partition("=")
        pairs.append((name, value))
    return pairs


# ---------------------------------------------------------------------------
# The export


def export_pod(observed: Observed, secrets: bool = False) -> Export:
    """The pod ``observed`` as a v1 Pod and the ConfigMaps and Secrets it needs (pure)."""
    out = Export(documents=[])
    name = observed.name
    if not observed.managed:
        # A hand-made pod is named after its sandbox container: foo_sandbox -> foo.
        base = name[:-len("_sandbox")] if name.endswith("_sandbox") else name
        name = dns_name(base)
        out.warnings.append("metadata.name: %r, from the sandbox container %r (a hand-made pod has no pod name)."
                            % (name, observed.name))
    elif not _DNS1123.match(name):
        out.warnings.append("metadata.name: %r is not a DNS-1123 name; a cluster refuses it (podkit takes it)." % name)
    sandbox = observed.sandbox
    pod: Dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}}
    spec: Dict[str, Any] = {}
    extra: List[Dict[str, Any]] = []
    _metadata(observed, pod["metadata"], out)
    members = _ordered(observed, out)
    _pod_level(observed, name, spec, members, out)
    volumes: Dict[str, Dict[str, Any]] = {}
    secret_env: Dict[str, Dict[str, str]] = {}
    objects = _Objects()
    init, regular = [], []
    for key, role, attrs in members:
        container = _container(observed, name, key, attrs, volumes, extra, secret_env, objects, secrets, out)
        if role == ROLE_INIT or (Container(attrs).labels.get(LABEL_SIDECAR) or "").isdigit():
            if (Container(attrs).labels.get(LABEL_SIDECAR) or "").isdigit():
                container["restartPolicy"] = "Always"
            init.append(container)
        else:
            regular.append(container)
    if regular and sandbox is not None:
        ports = _ports(sandbox)
        if ports:
            regular[0]["ports"] = ports
    if init:
        spec["initContainers"] = init
    spec["containers"] = regular
    if not regular:
        out.warnings.append("spec.containers: the pod has no running member to export; a Pod needs one.")
    if volumes:
        spec["volumes"] = [volumes[k] for k in sorted(volumes)]
    extra[:0] = objects.documents(name, secrets, out)
    for container_name, values in secret_env.items():
        extra.append(_secret_doc(name, "%s-%s-env" % (name, container_name), values, secrets, pod["metadata"], out))
    _pod_cgroup(observed, name, spec, out)
    _stopped(observed, out)
    pod["spec"] = _ordered_spec(spec)
    out.documents = [pod] + extra
    return out


def _metadata(observed: Observed, metadata: Dict[str, Any], out: Export) -> None:
    sandbox = observed.sandbox
    labels = dict((k, v) for k, v in Container(sandbox).labels.items() if not k.startswith(LABEL_PREFIX))
    image_labels = (observed.images.get(Container(sandbox).config.get("Image") or "") or {}).get("Labels") or {}
    labels = dict((k, v) for k, v in labels.items() if image_labels.get(k) != v)
    if not labels:
        pass
    elif observed.managed:
        # The sandbox keeps metadata.labels (hashed) and annotations (not): the recorded hash tells them apart.
        kept = _split_labels(labels, _recorded(sandbox).get("labels"))
        if kept is None:
            out.warnings.append("metadata.labels: the sandbox's labels could not be told from its annotations;"
                                " all are given as annotations.")
            kept = {}
        if kept:
            metadata["labels"] = kept
        notes = dict((k, v) for k, v in labels.items() if k not in kept)
        if notes:
            metadata["annotations"] = notes
    else:
        metadata["annotations"] = labels
    namespace = Container(sandbox).labels.get(LABEL_NAMESPACE)
    if namespace:
        metadata["namespace"] = namespace


def _split_labels(labels: Dict[str, str], recorded: Optional[str]) -> Optional[Dict[str, str]]:
    """The subset of ``labels`` that was metadata.labels (its hash is the recorded one)."""
    keys = sorted(labels)
    if not recorded:
        return dict((k, v) for k, v in labels.items() if _is_label(k, v))
    if len(keys) > 12:
        whole = dict(labels)
        return whole if _field_hash(whole) == recorded else None
    for mask in range(1 << len(keys)):
        subset = dict((k, labels[k]) for i, k in enumerate(keys) if mask >> i & 1)
        if _field_hash(subset) == recorded:
            return subset
    return None


def _is_label(key: str, value: str) -> bool:
    prefix, _sep, name = key.rpartition("/")
    return (len(name) <= 63 and bool(name) and bool(_LABEL_NAME.match(name)) and (not prefix or bool(_LABEL_PREFIX.match(prefix)))
            and len(value) <= 63 and bool(_LABEL_NAME.match(value)))


def _ordered(observed: Observed, out: Export) -> List[Tuple[str, str, Dict[str, Any]]]:
    """The members to export: init containers and sidecars first (sidecars by their recorded place,
    the others as created), then members by name; stale sandboxes and foreign joiners left out."""
    result = []
    for key, role, attrs in observed.members:
        if role == ROLE_SANDBOX:
            continue
        if observed.managed and LABEL_POD not in Container(attrs).labels:
            out.warnings.append("containers: %s joined the pod's namespaces without podkit's labels; left out."
                                % Container(attrs).name)
            continue
        result.append((key if observed.managed else dns_name(key), role if role in (ROLE_INIT, ROLE_MEMBER) else ROLE_MEMBER,
                       attrs))

    def first(item):
        return item[1] == ROLE_INIT or (Container(item[2]).labels.get(LABEL_SIDECAR) or "").isdigit()
    # Init containers and sidecars in the order they were created (that is the order they ran in).
    init = sorted((m for m in result if first(m)), key=lambda m: m[2].get("Created") or "")
    rest = sorted((m for m in result if not first(m)), key=lambda m: m[0])
    return init + rest


def _pod_level(observed: Observed, name: str, spec: Dict[str, Any], members: List[Any], out: Export) -> None:
    sandbox = observed.sandbox
    if sandbox is None:
        out.warnings.append("sandbox: the pod has no sandbox; its hostname, ports and DNS are not known.")
        return
    config, host = Container(sandbox).config, Container(sandbox).host_config
    recorded = _recorded(sandbox)
    network = host.get("NetworkMode") or "bridge"
    if network == "host":
        spec["hostNetwork"] = True
    elif network not in ("bridge", "default"):
        out.warnings.append("sandbox: the network %r has no Kubernetes form (a Pod gets the default network)." % network)
    if host.get("PidMode") == "host":
        spec["hostPID"] = True
    if host.get("IpcMode") == "host":
        spec["hostIPC"] = True
    hostname = config.get("Hostname") or ""
    default = observed.name if observed.managed else name
    if network != "host":
        chosen = _pick([default, hostname], recorded.get("hostname"))
        if chosen != default:
            if _DNS1123.match(chosen):
                spec["hostname"] = chosen
            else:
                out.warnings.append("spec.hostname: %r is not a DNS-1123 label; left out." % chosen)
    elif recorded.get("hostname") and _field_hash(default) != recorded.get("hostname"):
        spec["hostname"] = hostname
    dns = {}
    if host.get("Dns"):
        dns["nameservers"] = list(host["Dns"])
    if host.get("DnsSearch"):
        dns["searches"] = list(host["DnsSearch"])
    if host.get("DnsOptions"):
        dns["options"] = []
        for option in host["DnsOptions"]:
            key, sep, value = option.partition(":")
            dns["options"].append(dict(name=key, value=value) if sep else dict(name=key))
    if dns:
        spec["dnsConfig"] = dns
        if dns.get("nameservers"):
            # What Docker does with them: the pod's resolv.conf is exactly these.
            spec["dnsPolicy"] = "None"
    aliases: Dict[str, List[str]] = {}
    for entry in host.get("ExtraHosts") or []:
        hostname_, _sep, ip = entry.rpartition(":") if entry.count(":") == 1 else entry.partition(":")
        aliases.setdefault(ip, []).append(hostname_)
    if aliases:
        spec["hostAliases"] = [dict(ip=ip, hostnames=sorted(names)) for ip, names in sorted(aliases.items())]
    sysctls = host.get("Sysctls") or {}
    if sysctls:
        spec.setdefault("securityContext", {})["sysctls"] = [dict(name=k, value=str(v)) for k, v in sorted(sysctls.items())]
    # The members say it (pod_container chose per member): the pod shares its PID namespace when every
    # member joined the sandbox's (with hostPID they join the host's through it: that is not sharing).
    # Without a member, the sandbox's label says it.
    joined = [key for key, _r, a in members if (Container(a).host_config.get("PidMode") or "").startswith("container:")]
    if not members:
        share_pid = Container(sandbox).labels.get(LABEL_SHARE_PID) == "true"
    else:
        share_pid = host.get("PidMode") != "host" and len(joined) == len(members)
        if joined and not share_pid and host.get("PidMode") != "host":
            out.warnings.append("spec.shareProcessNamespace: %s joined the sandbox's PID namespace, the other containers"
                                " did not; a Pod shares it with all or none: not shared." % ", ".join(joined))
    if share_pid:
        spec["shareProcessNamespace"] = True
    image = config.get("Image") or ""
    if observed.managed:
        if image and image != DEFAULT_SANDBOX_IMAGE:
            out.options["sandbox_image"] = image
            out.warnings.append("sandbox image %r: no Kubernetes form (the pod module's sandbox_image)." % image)
    else:
        out.warnings.append("sandbox: the hand-made sandbox's image %r and command are not kept; podkit's sandbox runs"
                            " its pause image." % image)
    parent = host.get("CgroupParent") or ""
    if parent and parent != observed.default_parent:
        out.options["cgroup_parent"] = parent
        out.warnings.append("cgroup parent %r: no Kubernetes form (the pod module's cgroup_parent)." % parent)
    policies = set()
    graces = set()
    for _key, role, attrs in members:
        sidecar = (Container(attrs).labels.get(LABEL_SIDECAR) or "").isdigit()
        if role != ROLE_INIT and not sidecar and _own_restart(attrs) is None:
            policies.add(KUBERNETES_RESTART.get(((Container(attrs).host_config.get("RestartPolicy") or {}).get("Name") or ""), "Always"))
        if Container(attrs).config.get("StopTimeout") is not None:
            graces.add(int(Container(attrs).config["StopTimeout"]))
    if not observed.managed and policies == {"Never"}:
        # docker run's default (no restart policy, often --rm): what a Pod calls Never.
        pass
    if len(policies) > 1:
        out.warnings.append("spec.restartPolicy: the members have different restart policies (%s); a Pod has one:"
                            " %s is given." % (", ".join(sorted(policies)), "Always" if "Always" in policies else "OnFailure"))
        policies = {"Always" if "Always" in policies else "OnFailure"}
    policy = next(iter(policies)) if policies else "Always"
    if policy != "Always":
        spec["restartPolicy"] = policy
    if graces:
        if len(graces) > 1:
            out.warnings.append("spec.terminationGracePeriodSeconds: the members' stop timeouts differ (%s); the"
                                " longest is given." % ", ".join(str(g) for g in sorted(graces)))
        spec["terminationGracePeriodSeconds"] = max(graces)
    groups = [tuple(Container(a).host_config.get("GroupAdd") or ()) for _k, _r, a in members]
    if groups and any(groups):
        first = groups[0]
        if any(g != first for g in groups):
            out.warnings.append("spec.securityContext.supplementalGroups: the members' extra groups differ; a Pod"
                                " gives one list to all: the first member's is given.")
        numeric = [int(g) for g in first if str(g).isdigit()]
        if len(numeric) != len(first):
            out.warnings.append("spec.securityContext.supplementalGroups: group names (not IDs) are left out.")
        if numeric:
            spec.setdefault("securityContext", {})["supplementalGroups"] = numeric


def _ports(sandbox: Dict[str, Any]) -> List[Dict[str, Any]]:
    result = []
    for key, bindings in sorted((Container(sandbox).host_config.get("PortBindings") or {}).items()):
        number, _sep, proto = key.partition("/")
        for binding in bindings or []:
            port: Dict[str, Any] = {"containerPort": int(number)}
            if binding.get("HostPort"):
                port["hostPort"] = int(binding["HostPort"])
            if binding.get("HostIp"):
                port["hostIP"] = binding["HostIp"]
            if (proto or "tcp") != "tcp":
                port["protocol"] = proto.upper()
            result.append(port)
    return result


def _container(observed: Observed, pod: str, key: str, attrs: Dict[str, Any], volumes: Dict[str, Dict[str, Any]],
               extra: List[Dict[str, Any]], secret_env: Dict[str, Dict[str, str]], objects: _Objects, secrets: bool,
               out: Export) -> Dict[str, Any]:
    config, host = Container(attrs).config, Container(attrs).host_config
    image_ref = config.get("Image") or attrs.get("Image") or ""
    image = observed.images.get(image_ref) or {}
    recorded = _recorded(attrs)
    origin = _origin(attrs)
    templates = origin.get("templates") or {}
    where = "containers[%s]" % key
    if observed.managed and LABEL_ORIGIN not in Container(attrs).labels:
        out.warnings.append("%s: made by a podkit that did not record io.podkit.origin: env values taken from"
                            " Secrets are given as plain values, $(VAR) references expanded; re-create the"
                            " container (state: restarted does not) to have them recorded." % where)
    container: Dict[str, Any] = {"name": key, "image": image_ref}
    # command and args: Docker's Entrypoint and Cmd, against the image's own.
    entrypoint, cmd = config.get("Entrypoint"), config.get("Cmd")
    image_entrypoint, image_cmd = image.get("Entrypoint"), image.get("Cmd")
    command = templates.get("command") or _pick(
        [None if entrypoint == image_entrypoint else entrypoint, entrypoint], recorded.get("command"))
    if command is None and image and entrypoint != image_entrypoint:
        command = entrypoint
    if command is not None:
        container["command"] = list(command)
    overridden = command is not None
    args_candidates = [cmd if (overridden or cmd != image_cmd) else None, cmd]
    args = templates.get("args") or _pick(args_candidates, recorded.get("args"))
    if args:
        container["args"] = list(args)
    elif args is not None and overridden and observed.managed and _field_hash([]) == recorded.get("args"):
        container["args"] = []
    env = _env(attrs, image, recorded, origin, key, pod, secret_env, objects, where)
    if env:
        container["env"] = env
    working_dir = config.get("WorkingDir") or None
    chosen = _pick([None if working_dir == (image.get("WorkingDir") or None) else working_dir, working_dir],
                   recorded.get("working_dir"))
    if chosen:
        container["workingDir"] = chosen
    mounts = _mounts(observed, pod, attrs, origin, volumes, extra, objects, secrets, out, where)
    if mounts:
        container["volumeMounts"] = mounts
    resources = _resources(attrs, out, where)
    if resources:
        container["resources"] = resources
    security = _security(attrs, image, origin, out, where)
    if security:
        container["securityContext"] = security
    for docker_key, kube_key in (("OpenStdin", "stdin"), ("StdinOnce", "stdinOnce"), ("Tty", "tty")):
        if config.get(docker_key):
            container[kube_key] = True
    lifecycle: Dict[str, Any] = {}
    signal = config.get("StopSignal")
    if signal and signal != image.get("StopSignal"):
        lifecycle["stopSignal"] = signal if signal.startswith("SIG") else "SIG" + signal
    for hook_key, hook in (("postStart", origin.get("post_start")),
                           ("preStop", _json(Container(attrs).labels.get(LABEL_PRE_STOP)))):
        handler = hook_manifest(hook)
        if handler is not None:
            lifecycle[hook_key] = handler
        elif hook:
            out.warnings.append("%s: its %s hook %r has no form podkit gives back." % (where, hook_key, hook))
    if lifecycle:
        container["lifecycle"] = lifecycle
    for kind, probe in sorted((origin.get("probes") or {}).items()):
        if isinstance(probe, dict):
            container[kind] = probe
    restart = _own_restart(attrs)
    if restart:
        # The container's own restartPolicy and rules (KEP-5307): Docker's policy is the one that honours them.
        container["restartPolicy"] = restart["policy"]
        if restart.get("rules"):
            container["restartPolicyRules"] = list(restart["rules"])
    if (host.get("PidsLimit") or 0) > 0:
        out.warnings.append("%s: the pids limit %d has no Kubernetes form (a node-wide kubelet setting)."
                            % (where, host["PidsLimit"]))
    joined = [ns for ns, mode in (("net", "NetworkMode"), ("ipc", "IpcMode")) if not (host.get(mode) or "").startswith("container:")
              and host.get(mode) != "host"]
    if joined and observed.sandbox is not None:
        out.warnings.append("%s: does not join the sandbox's %s namespace; in a Pod every container does."
                            % (where, " and ".join(joined)))
    return container


def _json(text: Optional[str]) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _origin(attrs: Dict[str, Any]) -> Dict[str, Any]:
    value = _json(Container(attrs).labels.get(LABEL_ORIGIN))
    return value if isinstance(value, dict) else {}


def _own_restart(attrs: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """A member's own restartPolicy (and restartPolicyRules) as its origin label recorded them, or None."""
    restart = _origin(attrs).get("restart")
    if isinstance(restart, dict) and restart.get("policy") in KUBERNETES_RESTART.values() and isinstance(restart.get("rules", []), list):
        return restart
    return None


def _origin_entry(origin: Dict[str, Any], table: str, key: str) -> Any:
    """``origin[table][key]``, None where the label does not hold it (an older podkit's, or damaged)."""
    entries = origin.get(table)
    return entries.get(key) if isinstance(entries, dict) else None


class _Objects:
    """The ConfigMaps and Secrets the export refers to by their own names, as the members recorded them
    (io.podkit.origin), with the keys read back from the members' env and the files podkit wrote. A key
    read two ways (a ConfigMap changed between two members' creations) is not taken the second time:
    that member's values are given as before, in objects of its own."""

    def __init__(self) -> None:
        self.data: Dict[Tuple[str, str], Dict[str, bytes]] = {}

    def add(self, entries: List[Tuple[str, str, str, bytes]]) -> bool:
        """Take (kind, name, key, value) entries, all or none: none when one contradicts a key already taken."""
        for kind, name, key, value in entries:
            if self.data.get((kind, name), {}).get(key, value) != value:
                return False
        for kind, name, key, value in entries:
            self.data.setdefault((kind, name), {})[key] = value
        return True

    def documents(self, pod: str, secrets: bool, out: Export) -> List[Dict[str, Any]]:
        return [_object_doc(pod, kind, name, keys, secrets, out) for (kind, name), keys in sorted(self.data.items())]


def _is_ref(ref: Any) -> bool:
    return isinstance(ref, list) and len(ref) == 3 and ref[0] in ("ConfigMap", "Secret") \
        and all(isinstance(part, str) and part for part in ref)


def _source_keys(recorded: Dict[str, Any], files: Optional[Files], objects: _Objects, keys: Any = None) -> bool:
    """The keys of the ConfigMaps and Secrets behind a recorded configMap, secret or projected volume
    source, read from its files into ``objects``; False (nothing taken) when the files cannot say them:
    unreadable, a file no source explains, or two sources projecting all their keys into one directory
    without ``keys`` (the origin label's key names of each whole object) to tell them apart."""
    if files is None:
        return False
    kind, source = next(iter(recorded.items()))
    if not isinstance(source, dict):
        return False
    if kind == "projected":
        subs = [next(iter(item.items())) for item in source.get("sources") or [] if isinstance(item, dict) and len(item) == 1]
    else:
        subs = [(kind, source)]
    claimed: Dict[str, Optional[Tuple[str, str, str]]] = {}
    whole: List[Tuple[str, str]] = []
    for sub_kind, sub in subs:
        if not isinstance(sub, dict):
            return False
        if sub_kind == "downwardAPI":
            claimed.update((item.get("path"), None) for item in sub.get("items") or [] if isinstance(item, dict))
            continue
        if sub_kind not in ("configMap", "secret"):
            return False
        object_kind = "Secret" if sub_kind == "secret" else "ConfigMap"
        name = sub.get("secretName" if sub_kind == "secret" and kind == "secret" else "name")
        if not isinstance(name, str) or not name:
            return False
        if sub.get("items"):
            for item in sub["items"]:
                if not isinstance(item, dict):
                    return False
                claimed[item.get("path")] = (object_kind, name, item.get("key"))
        else:
            whole.append((object_kind, name))
    owner: Dict[str, Tuple[str, str]] = {}
    if len(whole) > 1:
        if not isinstance(keys, dict):
            return False
        for object_kind, name in whole:
            for key in keys.get("%s/%s" % (object_kind, name)) or []:
                owner[key] = (object_kind, name)
    elif whole:
        owner = dict((path, whole[0]) for path in files if "/" not in path)
    entries = []
    for path, (content, _mode) in sorted(files.items()):
        if path in claimed:
            if claimed[path] is not None:
                object_kind, name, key = claimed[path]
                entries.append((object_kind, name, key, content))
        elif path in owner:
            entries.append((owner[path][0], owner[path][1], path, content))
        else:
            return False
    return objects.add(entries)


def _env(attrs: Dict[str, Any], image: Dict[str, Any], recorded: Dict[str, str], origin: Dict[str, Any], key: str,
         pod: str, secret_env: Dict[str, Dict[str, str]], objects: _Objects, where: str) -> List[Dict[str, Any]]:
    """The container's env: Docker's less what the image sets (the recorded hash decides a variable
    equal to the image's), the ConfigMap and Secret keys a variable was taken from as references to them,
    other Secret values as references to a Secret of the container's, fieldRef sources and $(VAR) texts
    restored."""
    pairs = _env_pairs(Container(attrs).config.get("Env"))
    image_pairs = set(_env_pairs(image.get("Env")))
    fields = origin.get("fields") or {}
    templates = (origin.get("templates") or {}).get("env") or {}
    secret = set(origin.get("secret") or ())

    def canonical(pairs_):
        return dict((n, "" if n in fields else templates.get(n, v)) for n, v in pairs_)
    own = [(n, v) for n, v in pairs if (n, v) not in image_pairs or n in fields or n in templates or n in secret]
    chosen = own
    if recorded.get("env") and _field_hash(canonical(own)) != recorded["env"]:
        # A variable set to the image's own value: try keeping those the image also sets.
        for candidate in (pairs,):
            if _field_hash(canonical(candidate)) == recorded["env"]:
                chosen = candidate
    result = []
    for name, value in chosen:
        ref = _origin_entry(origin, "refs", name)
        if name in fields:
            result.append(dict(name=name, valueFrom=_field_source(fields[name], key)))
        elif _is_ref(ref) and objects.add([(ref[0], ref[1], ref[2], value.encode("utf-8"))]):
            kind_key = "secretKeyRef" if ref[0] == "Secret" else "configMapKeyRef"
            result.append(dict(name=name, valueFrom={kind_key: {"name": ref[1], "key": ref[2]}}))
        elif name in secret:
            secret_env.setdefault(key, {})[name] = value
            result.append(dict(name=name, valueFrom={"secretKeyRef": {"name": "%s-%s-env" % (pod, key), "key": name}}))
        else:
            result.append(dict(name=name, value=templates.get(name, value)))
    return result


def _field_source(marker: str, container: str) -> Dict[str, Any]:
    if marker.startswith(RESOURCE_PREFIX):
        target, resource, divisor = marker[len(RESOURCE_PREFIX):].split(":")
        ref: Dict[str, Any] = {"resource": resource}
        if target and target != "-":
            ref["containerName"] = target
        if divisor:
            ref["divisor"] = divisor
        return {"resourceFieldRef": ref}
    return {"fieldRef": {"fieldPath": marker}}


def _mounts(observed: Observed, pod: str, attrs: Dict[str, Any], origin: Dict[str, Any], volumes: Dict[str, Dict[str, Any]],
            extra: List[Dict[str, Any]], objects: _Objects, secrets: bool, out: Export, where: str) -> List[Dict[str, Any]]:
    result = []
    for bind in Container(attrs).host_config.get("Binds") or []:
        parts = bind.split(":")
        source, target = parts[0], parts[1] if len(parts) > 1 else ""
        options = parts[2].split(",") if len(parts) > 2 else []
        mount: Dict[str, Any] = {"mountPath": target}
        if "ro" in options:
            mount["readOnly"] = True
        if source.startswith("/"):
            name, sub_path = _bind_volume(observed, pod, source, volumes, extra, objects, secrets, out, origin)
            if sub_path:
                mount["subPath"] = sub_path
        else:
            name = _named_volume(observed, source, volumes, out, where)
        mount = dict(name=name, **mount)
        result.append(mount)
    for item in Container(attrs).host_config.get("Mounts") or []:
        if item.get("Type") == "image":
            # An image volume (Engine 28.0 and later): its name is not kept, the image reference names it.
            name = "image-" + dns_name(item.get("Source") or "")[:57].strip("-")
            volumes.setdefault(name, {"name": name, "image": {"reference": item.get("Source")}})
            mount = {"name": name, "mountPath": item.get("Target"), "readOnly": True}
            if (item.get("ImageOptions") or {}).get("Subpath"):
                mount["subPath"] = item["ImageOptions"]["Subpath"]
            result.append(mount)
    for item in Container(attrs).mounts:
        if item.get("Type") == "volume" and not any((b.split(":")[1:2] or [""])[0] == item.get("Destination")
                                                    for b in Container(attrs).host_config.get("Binds") or []):
            out.warnings.append("%s: the image's anonymous volume at %s has no Kubernetes form; left out."
                                % (where, item.get("Destination")))
    return result


def _bind_volume(observed: Observed, pod: str, source: str, volumes: Dict[str, Dict[str, Any]],
                 extra: List[Dict[str, Any]], objects: _Objects, secrets: bool, out: Export,
                 origin: Dict[str, Any]) -> Tuple[str, str]:
    for root, secret in ((VOLUMES_ROOT, False), (SECRETS_ROOT, True)):
        prefix = "%s/%s/" % (root, observed.name)
        if observed.managed and source.startswith(prefix):
            volume, _sep, sub_path = source[len(prefix):].partition("/")
            if volume in volumes:
                return volume, sub_path
            # The member recorded the volume's source (io.podkit.origin): given back as it was written, with
            # the keys of its ConfigMaps and Secrets read from the files.
            downward, recorded = _origin_entry(origin, "downward", volume), _origin_entry(origin, "sources", volume)
            files = observed.files.get(prefix + volume)
            if isinstance(downward, dict):
                volumes[volume] = {"name": volume, "downwardAPI": downward}
            elif isinstance(recorded, dict) and len(recorded) == 1 and _source_keys(
                    recorded, files, objects, _origin_entry(origin, "keys", volume)):
                volumes[volume] = dict(name=volume, **recorded)
            else:
                volumes[volume] = _file_volume(pod, volume, files, secret, extra, secrets, out)
            return volume, sub_path
    name = "host-" + dns_name(source.strip("/"))[:58].strip("-")
    if name == "host-" or name == "host-pod":
        name = "host-root"
    volumes.setdefault(name, {"name": name, "hostPath": {"path": source}})
    return name, ""


def _file_volume(pod: str, volume: str, files: Optional[Files], secret: bool, extra: List[Dict[str, Any]],
                 secrets: bool, out: Export) -> Dict[str, Any]:
    """A volume of files podkit wrote (configMap, secret, downwardAPI or projected: which is not recorded)
    as a ConfigMap or Secret of those files, each key the file's path."""
    object_name = "%s-%s" % (pod, volume)
    items = []
    values: Dict[str, bytes] = {}
    for path in sorted(files or {}):
        content, mode = (files or {})[path]
        key = _KEY.sub("_", path.replace("/", "__"))
        items.append(dict(key=key, path=path, mode=mode))
        values[key] = content
    if files is None:
        out.warnings.append("volumes[%s]: its files under /run/podkit were not readable; the %s is empty."
                            % (volume, "Secret" if secret else "ConfigMap"))
    else:
        out.warnings.append("volumes[%s]: exported as the %s %s of the files podkit wrote (a configMap, downwardAPI"
                            " or projected source is not recorded)." % (volume, "Secret" if secret else "ConfigMap", object_name))
    extra.append(_object_doc(pod, "Secret" if secret else "ConfigMap", object_name, values, secrets, out))
    if secret:
        return {"name": volume, "secret": {"secretName": object_name, "items": items}}
    return {"name": volume, "configMap": {"name": object_name, "items": items}}


def _object_doc(pod: str, kind: str, name: str, values: Dict[str, bytes], secrets: bool, out: Export) -> Dict[str, Any]:
    """A Secret of ``values`` (base64; the values only when asked for) or a ConfigMap (text in data, the
    rest base64 in binaryData)."""
    if kind == "Secret":
        encoded = dict((k, base64.b64encode(v).decode("ascii")) for k, v in values.items())
        return _secret_doc(pod, name, encoded, secrets, None, out, encoded=True)
    doc: Dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    for key, value in sorted(values.items()):
        try:
            doc.setdefault("data", {})[key] = value.decode("utf-8")
        except UnicodeDecodeError:
            doc.setdefault("binaryData", {})[key] = base64.b64encode(value).decode("ascii")
    return doc


def _secret_doc(pod: str, name: str, values: Dict[str, str], secrets: bool, metadata: Optional[Dict[str, Any]],
                out: Export, encoded: bool = False) -> Dict[str, Any]:
    doc: Dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque"}
    if secrets:
        doc["data"] = dict((k, v if encoded else base64.b64encode(v.encode("utf-8")).decode("ascii"))
                           for k, v in sorted(values.items()))
    else:
        out.warnings.append("Secret %s: its values are left out (keys: %s); as_manifest_secrets gives them."
                            % (name, ", ".join(sorted(values)) or "none"))
    return doc


def _named_volume(observed: Observed, source: str, volumes: Dict[str, Dict[str, Any]], out: Export, where: str) -> str:
    prefix = observed.name + "_"
    info = observed.volumes.get(source) or {}
    if observed.managed and source.startswith(prefix) and (info.get("Labels") or {}).get(LABEL_POD) == observed.name:
        name = source[len(prefix):]
        empty: Dict[str, Any] = {}
        options = info.get("Options") or {}
        if options.get("type") == "tmpfs":
            empty["medium"] = "Memory"
            size = dict(o.partition("=")[::2] for o in (options.get("o") or "").split(",") if "=" in o).get("size")
            if size and size.isdigit():
                empty["sizeLimit"] = format_bytes(int(size))
        volumes.setdefault(name, {"name": name, "emptyDir": empty})
        return name
    name = dns_name(source)
    if not observed.managed or name != source:
        out.warnings.append("%s: the Docker volume %r is given as the persistentVolumeClaim %r." % (where, source, name))
    volumes.setdefault(name, {"name": name, "persistentVolumeClaim": {"claimName": source}})
    return name


def _resources(attrs: Dict[str, Any], out: Export, where: str) -> Dict[str, Any]:
    host = Container(attrs).host_config
    limits: Dict[str, str] = {}
    requests: Dict[str, str] = {}
    memory = host.get("Memory") or 0
    if memory:
        limits["memory"] = format_bytes(memory)
    reservation = host.get("MemoryReservation") or 0
    if reservation and reservation != memory:
        requests["memory"] = format_bytes(reservation)
    cpu = quota_millicores(host.get("CpuQuota"), host.get("CpuPeriod"), host.get("NanoCpus")) or 0
    if cpu:
        limits["cpu"] = format_cpu(cpu)
    shares = host.get("CpuShares") or 0
    if shares > MIN_SHARES:
        millis = shares_millicores(shares)
        if kubelet_shares(millis) != shares:
            out.warnings.append("%s: cpu shares %d match no CPU request exactly; %s is given." % (where, shares, format_cpu(millis)))
        if millis != cpu:
            requests["cpu"] = format_cpu(millis)
    elif shares == MIN_SHARES and cpu:
        # The kubelet's minimum: no request, though a limit would make the request default to it.
        requests["cpu"] = "1m"
    result: Dict[str, Any] = {}
    if limits:
        result["limits"] = limits
    if requests:
        result["requests"] = requests
    return result


def _security(attrs: Dict[str, Any], image: Dict[str, Any], origin: Dict[str, Any], out: Export, where: str) -> Dict[str, Any]:
    config, host = Container(attrs).config, Container(attrs).host_config
    result: Dict[str, Any] = {}
    user = config.get("User") or ""
    if user and user != (image.get("User") or ""):
        uid, _sep, gid = user.partition(":")
        image_uid = (image.get("User") or "0").split(":")[0] or "0"
        if uid.isdigit() and uid != image_uid or (uid.isdigit() and not gid):
            result["runAsUser"] = int(uid)
        if gid.isdigit():
            result["runAsGroup"] = int(gid)
        if not uid.isdigit() or (gid and not gid.isdigit()):
            out.warnings.append("%s: the user %r is a name; a Pod takes numeric IDs (runAsUser/runAsGroup)."
                                % (where, user))
    if origin.get("non_root"):
        result["runAsNonRoot"] = True
    caps: Dict[str, List[str]] = {}
    for docker_key, kube_key in (("CapAdd", "add"), ("CapDrop", "drop")):
        names = [c[4:] if c.upper().startswith("CAP_") else c for c in host.get(docker_key) or []]
        if names:
            caps[kube_key] = names
    if caps:
        result["capabilities"] = caps
    if host.get("Privileged"):
        result["privileged"] = True
    if host.get("ReadonlyRootfs"):
        result["readOnlyRootFilesystem"] = True
    for option in host.get("SecurityOpt") or []:
        kind, _sep, value = option.partition("=") if "=" in option else option.partition(":")
        if kind == "no-new-privileges" and value in ("", "true"):
            result["allowPrivilegeEscalation"] = False
        elif kind == "seccomp" and value == "unconfined":
            result["seccompProfile"] = {"type": "Unconfined"}
        elif kind == "seccomp" and value.startswith("{") and isinstance(origin.get("seccomp"), dict):
            # A Localhost profile: Docker holds its JSON, podkit's origin label the file it was read from.
            localhost = origin["seccomp"]
            result["seccompProfile"] = {"type": "Localhost", "localhostProfile": localhost.get("profile")}
            root = localhost.get("root")
            if root and root != SECCOMP_ROOT:
                if out.options.get("seccomp_profile_root", root) != root:
                    out.warnings.append("%s: its seccomp profile is under %s, another container's under %s; one"
                                        " seccomp_profile_root serves a pod." % (where, root,
                                                                                 out.options["seccomp_profile_root"]))
                out.options.setdefault("seccomp_profile_root", root)
        elif kind == "apparmor" and value == "unconfined":
            result["appArmorProfile"] = {"type": "Unconfined"}
        elif kind == "apparmor" and value:
            result["appArmorProfile"] = {"type": "Localhost", "localhostProfile": value}
        elif kind == "label" and value == "disable" and Container(attrs).labels.get(LABEL_POD):
            continue    # Docker's own addition beside host namespaces; podkit never asks for it
        else:
            out.warnings.append("%s: the security option %r has no Kubernetes form podkit maps."
                                % (where, option if len(option) <= 80 else option[:77] + "..."))
    return result


def _pod_cgroup(observed: Observed, name: str, spec: Dict[str, Any], out: Export) -> None:
    """The pod cgroup's limits as read, given back. The pod module writes the limits its containers
    derive, as the kubelet does; where the cgroup holds others (made by pod_sandbox, by hand, or changed
    since), the export says so:

    1. the containers' limits and requests derive them: nothing to add;
    2. pod-level resources (``spec.resources``, Kubernetes' form of them) derive them: those;
    3. else ``cgroup_limits: unmanaged`` in the options (applied back, podkit leaves the limits as they
       are), with a warning naming both sets of limits: a cluster would derive its own.
    """
    limits = observed.pod_limits
    if not limits or observed.sandbox is None or not Container(observed.sandbox).host_config.get("CgroupParent"):
        return  # no cgroup of the pod's own: the containers sit in Docker's default parent
    containers = _resources_pod(name, spec, None)
    if containers is None:
        return
    derived = pod_cgroup_limits(containers, observed.cgroup_version)
    # The class the pod was run in (the sandbox's label): the export must give the same one back.
    recorded_qos = Container(observed.sandbox).labels.get(LABEL_QOS)
    same_limits = not changed_fields(derived, limits)
    if same_limits and qos_class(containers) == (recorded_qos or qos_class(containers)):
        return
    pod_level = _pod_level_resources(limits, observed.cgroup_version, containers)
    if pod_level:
        again = _resources_pod(name, spec, pod_level)
        if again is not None and recorded_qos and qos_class(again) != recorded_qos:
            # The cgroup holds no memory request: give the one that makes the class the pod was run in.
            pod_level = _with_qos(pod_level, recorded_qos, pod_resources(containers).memory_request)
            again = _resources_pod(name, spec, pod_level)
            if again is not None and qos_class(again) != recorded_qos:
                again = None
        if again is not None and not changed_fields(pod_cgroup_limits(again, observed.cgroup_version), limits):
            spec["resources"] = pod_level
            return
    if same_limits:
        out.warnings.append("the pod ran in the QoS class %s, its containers' resources give %s and no pod-level"
                            " resources give both its limits and that class." % (recorded_qos, qos_class(containers)))
        return
    out.options["cgroup_limits"] = "unmanaged"
    out.warnings.append("the pod cgroup's limits (%s) are not those its containers derive (%s) and no pod-level"
                        " resources give them; the pod module keeps them with cgroup_limits: unmanaged, a cluster"
                        " would derive its own." % (_describe(limits), _describe(derived.as_dict(observed.cgroup_version))))


def _describe(limits: Dict[str, Any]) -> str:
    """``memory unlimited, cpu 500m, cpu.shares 1024``: the limits the pod module compares."""
    def finite(value: Any) -> bool:
        return value is not None and value != UNLIMITED
    memory, quota = limits.get("memory_bytes"), limits.get("cpu_quota_us")
    parts = ["memory %s" % (format_bytes(memory) if finite(memory) else "unlimited"),
             "cpu %s" % (format_cpu(quota_millicores(quota, limits.get("cpu_period_us")) or 0)
                         if finite(quota) else "unlimited")]
    for key in ("cpu_shares", "cpu_weight"):
        if limits.get(key) is not None:
            parts.append("%s %d" % (key.replace("_", "."), limits[key]))
    return ", ".join(parts)


def _stopped(observed: Observed, out: Export) -> None:
    """``state: stopped`` in the options when nothing of the pod runs: applied back, it stays stopped."""
    everything = ([observed.sandbox] if observed.sandbox else []) + [a for _k, _r, a in observed.members]
    if observed.sandbox is None or any(Container(a).state.get("Running") for a in everything):
        return
    out.options["state"] = "stopped"
    out.warnings.append("the pod is stopped: the pod module keeps it so with state: stopped; a cluster would run it.")


def _resources_pod(name: str, spec: Dict[str, Any], pod_level: Optional[Dict[str, Any]]) -> Optional[PodSpec]:
    """The exported containers' resources (and ``pod_level``) parsed as the pod module parses them, for
    the pod cgroup it derives from them; None when the export is no pod it takes (no container)."""
    def slim(container: Dict[str, Any]) -> Dict[str, Any]:
        return dict((k, container[k]) for k in ("name", "image", "resources", "restartPolicy") if k in container)
    pod_spec: Dict[str, Any] = {"containers": [slim(c) for c in spec.get("containers") or []]}
    if spec.get("initContainers"):
        pod_spec["initContainers"] = [slim(c) for c in spec["initContainers"]]
    if pod_level:
        pod_spec["resources"] = pod_level
    try:
        return pod_spec_from_manifest({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": pod_spec},
                                      validate="ignore")
    except PodkitError:
        return None


def _pod_level_resources(limits: Dict[str, Any], version: int, containers: PodSpec) -> Dict[str, Any]:
    """Pod-level resources whose derivation could give ``limits`` (the caller checks that it does): a
    finite memory limit, a CPU quota over the default period, the CPU request behind cpu.shares (v1) or
    cpu.weight (v2); {} when the API server would refuse them beside ``containers``."""
    result: Dict[str, Dict[str, str]] = {}
    memory = limits.get("memory_bytes")
    memory = memory if memory and memory < (1 << 62) else None
    cpu_limit = quota_millicores(limits.get("cpu_quota_us"), limits.get("cpu_period_us"))
    shares = weight_to_shares(limits.get("cpu_weight") or 0) if version == 2 else limits.get("cpu_shares") or 0
    cpu_request = shares_millicores(shares) if shares > MIN_SHARES else None
    if cpu_request is None and cpu_limit is not None:
        cpu_request = 1     # the least request: else it defaults to the limit, and the limit's shares
    # What the API server holds pod-level resources to: no container's limit above the pod's, the pod's
    # requests (its limits where none is given) not below the containers' together, nor above its limits.
    together = pod_resources(containers)
    every = containers.containers + containers.init_containers
    for value, attribute, request, requested in ((memory, "memory_limit", memory, together.memory_request),
                                                 (cpu_limit, "cpu_limit", cpu_request, together.cpu_request)):
        if value is not None and value < max([getattr(c.resources, attribute) or 0 for c in every] or [0]):
            return {}
        if request is not None and (request < (requested or 0) or (value is not None and request > value)):
            return {}
    if memory is not None:
        result.setdefault("limits", {})["memory"] = format_bytes(memory)
    if cpu_limit is not None:
        result.setdefault("limits", {})["cpu"] = format_cpu(cpu_limit)
    if cpu_request is not None:
        result.setdefault("requests", {})["cpu"] = format_cpu(cpu_request)
    return result


def _with_qos(pod_level: Dict[str, Any], qos: str, requested: Optional[int]) -> Dict[str, Any]:
    """``pod_level`` with the memory request that gives the pod the QoS class ``qos``, computed as
    ``_spec.qos_class`` computes it (Kubernetes' ComputePodQOS with pod-level resources: Guaranteed when
    the pod's requests equal its CPU and memory limits, else Burstable). Burstable: the containers'
    requests together (the least the API server takes beside them), else 1 byte; Guaranteed: the limit."""
    result = dict((k, dict(v)) for k, v in pod_level.items())
    memory = (result.get("limits") or {}).get("memory")
    if memory is None:
        return result
    if qos == "Guaranteed":
        result.setdefault("requests", {})["memory"] = memory
    elif qos == "Burstable":
        limit = parse_memory(memory, "spec.resources.limits.memory", kubernetes=True)
        request = requested if requested and requested < limit else 1
        result.setdefault("requests", {})["memory"] = format_bytes(request)
    return result


def _ordered_spec(spec: Dict[str, Any]) -> Dict[str, Any]:
    order = ("hostname", "hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace", "restartPolicy",
             "terminationGracePeriodSeconds", "dnsPolicy", "dnsConfig", "hostAliases", "securityContext",
             "resources", "initContainers", "containers", "volumes")
    return dict((k, spec[k]) for k in order if k in spec)


# ---------------------------------------------------------------------------
# Reading what the export needs (I/O): images, volumes, the files podkit wrote


def read_files(directory: str) -> Optional[Files]:
    """{relative path: (content, mode)} of the regular files under ``directory``; None when unreadable."""
    if not os.path.isdir(directory):
        return None
    files: Files = {}
    for dirpath, _dirnames, filenames in os.walk(directory):
        for filename in filenames:
            path = os.path.join(dirpath, filename)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            try:
                with open(path, "rb") as handle:
                    content = handle.read()
                mode = os.stat(path).st_mode & 0o7777
            except OSError:
                return None
            files[os.path.relpath(path, directory)] = (content, mode)
    return files


def observe(client: Any, group: Any, entry: Dict[str, Any], host: Any) -> Observed:
    """What ``export_pod`` needs of one pod group (_facts.PodGroup), read from the engine and the host."""
    observed = Observed(name=group.name, managed=group.managed, sandbox=group.sandbox, members=list(group.members),
                        default_parent=default_parent(group.name, host.driver) if group.managed else "",
                        pod_limits=dict(((entry.get("cgroup") or {}).get("limits")) or {}),
                        cgroup_version=host.version)
    everything = ([group.sandbox] if group.sandbox else []) + [attrs for _k, _r, attrs in group.members]
    for attrs in everything:
        ref = Container(attrs).config.get("Image") or ""
        if ref and ref not in observed.images:
            try:
                observed.images[ref] = client.api.inspect_image(ref).get("Config") or {}
            except Exception:  # pylint: disable=broad-except  # an image removed since: compared with nothing
                observed.images[ref] = {}
        for bind in Container(attrs).host_config.get("Binds") or []:
            source = bind.split(":")[0]
            if source.startswith("/"):
                for root in (VOLUMES_ROOT, SECRETS_ROOT):
                    prefix = "%s/%s/" % (root, group.name)
                    if source.startswith(prefix):
                        directory = prefix + source[len(prefix):].split("/")[0]
                        if directory not in observed.files:
                            files = read_files(directory)
                            if files is not None:
                                observed.files[directory] = files
            elif source not in observed.volumes:
                try:
                    observed.volumes[source] = client.api.inspect_volume(source)
                except Exception:  # pylint: disable=broad-except  # gone since: exported as a claim
                    observed.volumes[source] = {}
    return observed


def verify(export: Export, observed: Observed, host: Any) -> List[str]:
    """For a podkit pod: parse the export as the pod module would and compare each container's
    configuration hashes with the ones podkit recorded; the fields that differ are named (applying
    the manifest would recreate those containers). ``export`` must hold the Secrets' values."""
    if not observed.managed:
        return []
    try:
        spec = pod_spec_from_manifest(export.documents, sandbox_image=export.options.get("sandbox_image"),
                                      cgroup_parent=export.options.get("cgroup_parent"), validate="ignore",
                                      seccomp_root=export.options.get("seccomp_profile_root"))
        wanted = want_pod(spec, host).by_key()
    except PodkitError as exc:
        return ["the manifest does not apply as it is: %s" % exc]
    seen = dict((Container(a).labels.get(LABEL_CONTAINER) or k, a) for k, _r, a in observed.members)
    if observed.sandbox is not None:
        seen["sandbox"] = observed.sandbox
    result = []
    for key, attrs in sorted(seen.items()):
        if key not in wanted or not _recorded(attrs):
            continue
        differ = differing_fields(ROLE_SANDBOX if key == "sandbox" else ROLE_MEMBER, wanted[key].hashes()[1],
                                  Container(attrs).labels)
        if differ:
            result.append("%s: the manifest does not give back what podkit applied (%s); applying it recreates this"
                          " container." % ("sandbox" if key == "sandbox" else "containers[%s]" % key, ", ".join(differ)))
    return result


def add_manifests(client: Any, groups: Dict[str, Any], pods: Dict[str, Dict[str, Any]], host: Any,
                  secrets: bool) -> None:
    """Each entry of ``pods`` gets ``manifest`` (documents), ``manifest_warnings`` and ``manifest_options``.

    A podkit pod's export is checked against the hashes podkit recorded (with the Secrets' values,
    which leave this function only when ``secrets`` asks for them)."""
    for name, entry in pods.items():
        group = groups.get(name)
        if group is None:
            continue
        observed = observe(client, group, entry, host)
        full = export_pod(observed, True)
        export = full if secrets else export_pod(observed, False)
        entry["manifest"] = export.documents
        entry["manifest_warnings"] = export.warnings + verify(full, observed, host)
        entry["manifest_options"] = export.options
