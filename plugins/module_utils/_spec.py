# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pod as podkit understands it: what the user asked for, validated and normalised.

A PodSpec is built either from a Kubernetes v1 Pod manifest or from the pod module's
native options; both paths end in the same dataclasses, so everything downstream
(planning, hashing, the cgroup limits, the QoS class) has one input shape.

Quantities are already parsed here: memory in bytes, CPU in millicores.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Optional, Tuple


from ansible_collections.podkit.docker.plugins.module_utils._configdata import (
    WORKLOAD_KINDS, ConfigSet, load_documents, secret_texts, split_documents, workload_refused)
from ansible_collections.podkit.docker.plugins.module_utils._envsource import (
    RESOURCE_PREFIX, EnvSources, PodContext, env_from, resolve_resource, resource_amounts, value_from)
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError, check_fields
from ansible_collections.podkit.docker.plugins.module_utils._hostless import DEFAULT_VALIDATE, judge, strip_hostless
from ansible_collections.podkit.docker.plugins.module_utils._labels import LABEL_PREFIX, OWNER_LABELS
from ansible_collections.podkit.docker.plugins.module_utils._pullauth import pull_auths
from ansible_collections.podkit.docker.plugins.module_utils._security import (
    SECCOMP_ROOT, container_security, grace_period, load_seccomp, pod_security)
from ansible_collections.podkit.docker.plugins.module_utils._volumefiles import FILE_KINDS, FileVolume
from ansible_collections.podkit.docker.plugins.module_utils._probes import PROBE_FIELDS, parse_probes
from ansible_collections.podkit.docker.plugins.module_utils._restart import parse_rules
from ansible_collections.podkit.docker.plugins.module_utils._quantity import (
    MIN_MEMORY, format_bytes, format_cpu, parse_cpu, parse_memory)

RESTART_POLICIES = ("Always", "OnFailure", "Never")
PULL_POLICIES = ("missing", "always", "never")
# The states of the pod module, and of the modules that manage one container of a pod.
POD_STATES = ("present", "started", "stopped", "restarted", "absent")
# Who sets the pod cgroup's limits: podkit, as the kubelet derives them, or someone else (cgroup_limits).
CGROUP_LIMITS = ("derived", "unmanaged")
SANDBOX_STATES = ("present", "started", "stopped", "absent")
DEFAULT_SANDBOX_IMAGE = "registry.k8s.io/pause:3.10"


@dataclass
class Resources:
    """A container's (or the pod's) resources, Kubernetes style. None means not set."""
    memory_limit: Optional[int] = None       # bytes
    memory_request: Optional[int] = None     # bytes
    cpu_limit: Optional[int] = None          # millicores
    cpu_request: Optional[int] = None        # millicores


@dataclass
class PortMapping:
    """A port published on the pod's sandbox: [host_ip:]host_port:container_port/protocol."""
    container_port: int
    host_port: Optional[int] = None
    host_ip: str = ""
    protocol: str = "tcp"


@dataclass
class Volume:
    """A pod volume. kind 'hostPath' binds ``host_path``; 'emptyDir' gets per-pod storage."""
    name: str
    kind: str                                # "hostPath" | "emptyDir"
    host_path: Optional[str] = None
    host_path_type: str = ""                 # Kubernetes hostPath.type ("", Directory, DirectoryOrCreate, File, ...)
    medium: str = ""                         # emptyDir.medium ("" or "Memory")
    size_limit: Optional[int] = None         # emptyDir.sizeLimit in bytes
    files: Optional[FileVolume] = None       # configMap, secret, downwardAPI, projected (_volumefiles)
    claim: str = ""                          # persistentVolumeClaim.claimName: a named Docker volume
    claim_read_only: bool = False
    image: str = ""                          # an image volume's reference (Docker's --mount type=image)


@dataclass
class Mount:
    """A container's volumeMount."""
    volume: str
    mount_path: str
    read_only: bool = False
    sub_path: str = ""


@dataclass
class ContainerSpec:
    """One member or init container of a pod."""
    name: str
    image: str
    command: Optional[List[str]] = None      # overrides the image's ENTRYPOINT
    args: Optional[List[str]] = None         # overrides the image's CMD
    env: Dict[str, str] = field(default_factory=dict)
    secret_env: Tuple[str, ...] = ()         # names in env whose values are never shown
    # Names in env filled in when the container is created (fieldRef/resourceFieldRef, _envsource).
    env_fields: Dict[str, str] = field(default_factory=dict)
    # The ConfigMaps and Secrets ("Kind/name") the container's env and volumes take keys from.
    config_sources: List[str] = field(default_factory=list)
    # Names in env taken from a ConfigMap or Secret key: name -> [kind, object name, key] (not hashed).
    env_refs: Dict[str, List[str]] = field(default_factory=dict)
    working_dir: Optional[str] = None
    user: Optional[str] = None
    mounts: List[Mount] = field(default_factory=list)
    ports: List[PortMapping] = field(default_factory=list)   # published by the sandbox
    resources: Resources = field(default_factory=Resources)
    share: Tuple[str, ...] = ("net", "ipc")
    restart_policy: str = "Always"
    pull: str = "missing"
    init: bool = False
    warnings: List[str] = field(default_factory=list)   # envFrom keys skipped
    sidecar: bool = False                    # an init container with restartPolicy Always
    # securityContext, stdin/tty, stop signal and timeout as Docker takes them (_security); {}: none.
    security: Dict[str, Any] = field(default_factory=dict)
    # A Localhost seccomp profile's JSON (its digest is in ``security``, the text is not hashed).
    seccomp_json: Optional[str] = None
    seccomp_root: Optional[str] = None       # where that profile was read from (for the export; not hashed)
    probes: Dict[str, Any] = field(default_factory=dict)     # kind -> _probes.Probe; run by podkit-guard
    # A container's own restartPolicy (None: the pod's) and its restartPolicyRules (_restart.parse_rules).
    own_restart_policy: Optional[str] = None
    restart_rules: List[Tuple[str, Tuple[int, ...]]] = field(default_factory=list)


@dataclass
class SandboxSpec:
    """The pod's sandbox (pause) container: the owner of its shared namespaces."""
    pod: str
    image: str = DEFAULT_SANDBOX_IMAGE
    cgroup_parent: Optional[str] = None      # None: the default for the host's cgroup driver
    hostname: Optional[str] = None           # None: the pod name
    ports: List[PortMapping] = field(default_factory=list)
    dns: List[str] = field(default_factory=list)
    dns_search: List[str] = field(default_factory=list)
    dns_options: List[str] = field(default_factory=list)
    extra_hosts: Dict[str, str] = field(default_factory=dict)   # hostname -> IP
    network: str = "bridge"
    share_pid: bool = False
    labels: Dict[str, str] = field(default_factory=dict)
    pull: str = "missing"
    # Host namespaces and sysctls (_security.pod_security); {}: none.
    host: Dict[str, Any] = field(default_factory=dict)


@dataclass
class PodSpec:
    """A whole pod: its sandbox, init containers, members, volumes and pod-level settings."""
    name: str
    sandbox: SandboxSpec
    containers: List[ContainerSpec] = field(default_factory=list)
    init_containers: List[ContainerSpec] = field(default_factory=list)
    volumes: List[Volume] = field(default_factory=list)
    restart_policy: str = "Always"
    resources: Optional[Resources] = None    # pod-level override of the derived limits
    # From a manifest's metadata; none of these feeds a configuration hash.
    namespace: Optional[str] = None
    annotations: Dict[str, str] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)   # what validate: warn reports
    configs: ConfigSet = field(default_factory=ConfigSet)  # the ConfigMaps and Secrets given with the Pod
    # imagePullSecrets: registry host -> credentials for the pulls (_pullauth); never hashed or shown.
    pull_auths: Dict[str, Dict[str, str]] = field(default_factory=dict)
    # securityContext.fsGroup: the group owning the pod's volumes (not hostPath), and when to re-own them.
    fs_group: Optional[int] = None
    fs_group_policy: str = "Always"
    # The workload that made this pod (_workloads: io.podkit.owner-* labels on the sandbox), never hashed.
    owner: Dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Parsing: a Kubernetes v1 Pod manifest or the pod module's native options -> PodSpec.
#
# Both inputs go through the same translator; only the field paths in messages and the quantity
# rules differ (a manifest follows Kubernetes rules only, native options also take Docker sizes).
# Every mapping is checked against a whitelist: a field podkit does not implement is an error that
# names its path, never silently dropped, because a silently ignored livenessProbe or securityContext
# is a pod that behaves differently from what its author reads.
# ---------------------------------------------------------------------------------------------

# namespace is recorded on the sandbox and reported; annotations become sandbox labels. What means
# nothing on one host (status, scheduling, ...) is taken out before parsing, by _hostless.
_METADATA_FIELDS = ("name", "labels", "namespace", "annotations")
_SPEC_FIELDS = ("containers", "initContainers", "restartPolicy", "shareProcessNamespace", "hostname",
                "dnsConfig", "dnsPolicy", "hostAliases", "volumes", "resources", "securityContext", "hostNetwork",
                "hostPID", "hostIPC", "hostUsers", "terminationGracePeriodSeconds", "imagePullSecrets")
_K8S_CONTAINER_FIELDS = ("name", "image", "command", "args", "env", "envFrom", "ports", "resources", "volumeMounts",
                         "workingDir", "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty", "lifecycle")
# Native container entries take the Kubernetes keys plus these podkit extras (and snake_case aliases).
_NATIVE_CONTAINER_EXTRAS = ("user", "share", "secret_env", "working_dir", "volume_mounts", "pull")
_PORT_FIELDS = ("containerPort", "hostPort", "hostIP", "protocol", "name")
_MOUNT_FIELDS = ("name", "mountPath", "readOnly", "subPath")
_VOLUME_FIELDS = ("name", "hostPath", "emptyDir", "persistentVolumeClaim") + FILE_KINDS + ("image",)
# What each file volume kind takes (checked here, read by _volumefiles).
_FILE_VOLUME_FIELDS = {
    "configMap": ("name", "items", "defaultMode", "optional"),
    "secret": ("secretName", "items", "defaultMode", "optional"),
    "downwardAPI": ("items", "defaultMode"),
    "projected": ("sources", "defaultMode"),
}
_HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice")
_PULL_MAP = {"Always": "always", "IfNotPresent": "missing", "Never": "never"}
_PROTOCOLS = ("tcp", "udp", "sctp")
_SHARE = ("net", "ipc", "pid")

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DOCKER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
# Container names that would collide with the sandbox's own Docker name <pod>_sandbox.
_RESERVED_CONTAINER_NAMES = ("sandbox",)


def validate_pod_name(name: object, field: str = "name") -> str:
    """Check a pod name: Docker must accept ``<pod>_sandbox`` and the cgroup/slice names built from it.

    Allowed: letters, digits, ``_ . -``, starting with a letter or digit, at most 63 characters
    (so the default hostname, the pod name, fits a DNS label's length).
    """
    if not isinstance(name, str) or not name:
        raise PodkitError("%s: a pod name is required (a string such as 'web')." % field)
    if len(name) > 63 or not _DOCKER_NAME.match(name):
        raise PodkitError("%s: %r is not a valid pod name; use at most 63 letters, digits, '_', '.' or '-',"
                          " starting with a letter or digit (for example 'web-1')." % (field, name))
    return name


def _validate_container_name(name, field):
    if not isinstance(name, str) or not name:
        raise PodkitError("%s: a container name is required." % field)
    if len(name) > 63 or not _DNS1123_LABEL.match(name):
        raise PodkitError("%s: %r is not a valid container name; use a DNS-1123 label: at most 63 lowercase"
                          " letters, digits or '-', starting and ending with a letter or digit." % (field, name))
    if name in _RESERVED_CONTAINER_NAMES:
        raise PodkitError("%s: %r is reserved for the pod's sandbox container; choose another name." % (field, name))
    return name


def _list(value, path):
    if value is None:
        return []
    if not isinstance(value, list):
        raise PodkitError("%s must be a list, got %s." % (path, type(value).__name__))
    return value


def _string(value, path, required=False):
    if value is None or value == "":
        if required:
            raise PodkitError("%s is required." % path)
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise PodkitError("%s must be a string, got %r." % (path, value))
    return str(value)


def _string_list(value, path):
    if isinstance(value, str):
        raise PodkitError("%s must be a list of strings, e.g. [\"sh\", \"-c\", \"...\"], got the string %r." % (path, value))
    return [_string(item, "%s[%d]" % (path, i), required=True) if item != "" else ""
            for i, item in enumerate(_list(value, path))]


def _bool(value, path):
    if value is None:
        return False
    if not isinstance(value, bool):
        raise PodkitError("%s must be true or false, got %r." % (path, value))
    return value


def _absolute(value, path):
    text = _string(value, path, required=True)
    if not text.startswith("/"):
        raise PodkitError("%s: %r must be an absolute path." % (path, text))
    return text


def parse_port(text: object, field: str) -> PortMapping:
    """Parse ``[host_ip:]host_port:container_port[/proto]`` (``8080:80``, ``127.0.0.1:8080:80/udp``).

    An IPv6 host address is written in brackets: ``[::1]:8080:80``.
    """
    def bad(why):
        return PodkitError("%s: %r is not a valid port mapping (%s); use [host_ip:]host_port:container_port[/protocol],"
                           " for example 8080:80 or 127.0.0.1:8080:80/udp." % (field, text, why))
    if isinstance(text, bool) or not isinstance(text, str):
        raise bad("not a string")
    rest, protocol = text.strip(), "tcp"
    if "/" in rest:
        rest, protocol = rest.rsplit("/", 1)
        protocol = protocol.lower()
        if protocol not in _PROTOCOLS:
            raise bad("protocol must be tcp, udp or sctp")
    host_ip = ""
    if rest.startswith("["):
        end = rest.find("]:")
        if end < 0:
            raise bad("unterminated IPv6 address")
        host_ip, rest = rest[1:end], rest[end + 2:]
    parts = rest.split(":")
    if len(parts) == 3 and not host_ip:
        host_ip, parts = parts[0], parts[1:]
    if len(parts) != 2:
        raise bad("host and container port are both required")
    host_port = port_number(parts[0], field, bad)
    container_port = port_number(parts[1], field, bad)
    if host_ip:
        check_ip(host_ip, field)
    return PortMapping(container_port=container_port, host_port=host_port, host_ip=host_ip, protocol=protocol)


def port_number(value: Any, field: str, bad: Optional[Callable[[str], PodkitError]] = None, strings: bool = True) -> int:
    """A port, 1-65535: an integer or a string of digits. ``strings`` false takes an integer only, for a
    Service's port and nodePort (int32 in the Kubernetes API), and keeps the words _services always gave."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif strings and isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or not 1 <= number <= 65535:
        if bad is not None:
            raise bad("%r is not a port number 1-65535" % (value,))
        if not strings:
            raise PodkitError("%s: %r must be a port number from 1 to 65535." % (field, value))
        raise PodkitError("%s: %r is not a port number; use an integer from 1 to 65535." % (field, value))
    return number


def check_ip(text: str, field: str, advice: str = "") -> str:
    """``text`` when it is an IP address, as written; else a PodkitError, with ``advice`` after the reason."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise PodkitError("%s: %r is not an IP address%s." % (field, text, "; " + advice if advice else ""))
    return text


def _parse_resources(obj: object, path: str, kubernetes: bool) -> Resources:
    """resources: {limits: {memory, cpu}, requests: {memory, cpu}}; a request defaults to its limit."""
    obj = check_fields(obj, ("limits", "requests"), path)
    result = Resources()
    for section in ("limits", "requests"):
        values = check_fields(obj.get(section), ("memory", "cpu"), "%s.%s" % (path, section))
        for key, value in values.items():
            where = "%s.%s.%s" % (path, section, key)
            if key == "memory":
                # A request only weighs the pod for scheduling/reclaim; the 6 MiB floor is for limits.
                parsed = parse_memory(value, where, kubernetes=kubernetes,
                                      minimum=MIN_MEMORY if section == "limits" else 1)
            else:
                parsed = parse_cpu(value, where, kubernetes=kubernetes)
            setattr(result, "%s_%s" % (key, section[:-1]), parsed)
    # As the API server defaults it: a limit without a request requests the limit.
    if result.memory_request is None:
        result.memory_request = result.memory_limit
    if result.cpu_request is None:
        result.cpu_request = result.cpu_limit
    for key, fmt in (("memory", format_bytes), ("cpu", format_cpu)):
        limit, request = getattr(result, key + "_limit"), getattr(result, key + "_request")
        if limit is not None and request is not None and request > limit:
            raise PodkitError("%s.requests.%s (%s) is above %s.limits.%s (%s); a request must not exceed its limit."
                              % (path, key, fmt(request), path, key, fmt(limit)))
    return result


def _parse_env(value: object, path: str, kubernetes: bool, ctx: Optional[PodContext] = None,
               sources: Optional[EnvSources] = None, container: str = "") -> Tuple[Dict[str, str], List[str]]:
    """(env, secret names). With ``ctx`` (a manifest), valueFrom is resolved into ``sources``, which
    may already hold what envFrom gave (env entries come after it and win)."""
    env: Dict[str, str] = sources.env if sources is not None else {}
    secret: List[str] = sources.secret if sources is not None else []
    from_env_from = set(env)
    if isinstance(value, dict) and not kubernetes:
        items = [{"name": k, "value": v} for k, v in value.items()]
        paths = ["%s.%s" % (path, k) for k in value]
    else:
        items = _list(value, path)
        paths = ["%s[%d]" % (path, i) for i in range(len(items))]
    allowed = ("name", "value", "valueFrom") if kubernetes else ("name", "value", "valueFrom", "secret")
    for item, where in zip(items, paths):
        check_fields(item, allowed, where)
        name = _string(item.get("name"), where + ".name", required=True)
        if not _ENV_NAME.match(name):
            raise PodkitError("%s.name: %r is not a valid environment variable name." % (where, name))
        if name in env and name not in from_env_from:
            raise PodkitError("%s.name: %r is set twice in this container's env." % (where, name))
        from_env_from.discard(name)
        env.pop(name, None)
        if name in secret:
            secret.remove(name)
        if sources is not None:
            sources.fields.pop(name, None)
            sources.refs.pop(name, None)
        if "valueFrom" in item:
            if ctx is None or sources is None:
                raise PodkitError("%s.valueFrom is only supported in a manifest, where the ConfigMaps and Secrets it"
                                  " refers to can be given; give the value directly with value:." % where)
            if "value" in item:
                raise PodkitError("%s: give either value or valueFrom, not both." % where)
            value_from(name, item["valueFrom"], where + ".valueFrom", ctx, container, sources)
            continue
        raw = item.get("value")
        if isinstance(raw, bool):
            raise PodkitError("%s.value: %r must be a string; quote it (\"%s\")." % (where, raw, str(raw).lower()))
        env[name] = "" if raw is None else _string(raw, where + ".value") or ""
        if _bool(item.get("secret"), where + ".secret"):
            secret.append(name)
    return env, secret


def _parse_container_port(item, path, kubernetes):
    if isinstance(item, str) and not kubernetes:
        return parse_port(item, path)
    check_fields(item, _PORT_FIELDS, path)
    if item.get("containerPort") is None:
        raise PodkitError("%s.containerPort is required." % path)
    container_port = port_number(item.get("containerPort"), path + ".containerPort")
    host_port = None
    if item.get("hostPort") not in (None, 0):
        host_port = port_number(item.get("hostPort"), path + ".hostPort")
    host_ip = _string(item.get("hostIP"), path + ".hostIP") or ""
    if host_ip:
        check_ip(host_ip, path + ".hostIP")
    protocol = (_string(item.get("protocol"), path + ".protocol") or "TCP").lower()
    if protocol not in _PROTOCOLS:
        raise PodkitError("%s.protocol: %r is not supported; use TCP, UDP or SCTP." % (path, item.get("protocol")))
    return PortMapping(container_port=container_port, host_port=host_port, host_ip=host_ip, protocol=protocol)


def _parse_container(item: object, path: str, kubernetes: bool, init: bool, pod_restart: str, default_pull: str,
                     share_pid: bool, ctx: Optional[PodContext] = None) -> ContainerSpec:
    allowed = (_K8S_CONTAINER_FIELDS if kubernetes else _K8S_CONTAINER_FIELDS + _NATIVE_CONTAINER_EXTRAS) + PROBE_FIELDS
    # init: a native sidecar (restartPolicy: Always); others: the container's own policy and rules (KEP-5307).
    allowed = allowed + ("restartPolicy", "restartPolicyRules")
    check_fields(item, allowed, path)
    if not item:
        raise PodkitError("%s must be a mapping with at least name and image." % path)
    sidecar = False
    own_policy = None
    if init and item.get("restartPolicy") is not None:
        if item["restartPolicy"] != "Always":
            raise PodkitError("%s.restartPolicy: %r is not supported; an init container takes only Always (a native"
                              " sidecar)." % (path, item["restartPolicy"]))
        sidecar = True
    elif item.get("restartPolicy") is not None:
        own_policy = _check_restart_policy(item["restartPolicy"], path + ".restartPolicy")
    if init and item.get("restartPolicyRules") is not None:
        raise PodkitError("%s.restartPolicyRules: %s" % (path, (
            "a native sidecar takes no restart rules (it always restarts; Kubernetes refuses them there)" if sidecar
            else "podkit runs an init container once per run, to completion, and takes no restart rules on it;"
            " give them to a container of spec.containers")))
    restart_rules = parse_rules(item.get("restartPolicyRules"), path + ".restartPolicyRules", own_policy is not None)
    name = _validate_container_name(item.get("name"), path + ".name")
    image = _image_reference(_string(item.get("image"), path + ".image", required=True), path + ".image")
    for camel, snake in (("workingDir", "working_dir"), ("volumeMounts", "volume_mounts"), ("imagePullPolicy", "pull")):
        if camel in item and snake in item:
            raise PodkitError("%s: give either %s or %s, not both." % (path, camel, snake))
    sources = EnvSources()
    skipped: List[str] = []
    if item.get("envFrom") is not None:
        if ctx is None:
            raise PodkitError("%s.envFrom is only supported in a manifest, where the ConfigMaps and Secrets it refers"
                              " to can be given." % path)
        skipped = env_from(item.get("envFrom"), path + ".envFrom", ctx, sources)
    env, secret = _parse_env(item.get("env"), path + ".env", kubernetes, ctx, sources, name)
    secret_env = item.get("secret_env")
    if isinstance(secret_env, dict):
        # As pod_container takes it: {NAME: value}, set like env but never shown.
        extra_env = _parse_env(secret_env, path + ".secret_env", False)[0]
        for env_name in extra_env:
            if env_name in env:
                raise PodkitError("%s.secret_env.%s is also set in env; give each variable in one of them." % (path, env_name))
        env.update(extra_env)
        secret.extend(sorted(extra_env))
    else:
        for i, extra in enumerate(_list(secret_env, path + ".secret_env")):
            extra = _string(extra, "%s.secret_env[%d]" % (path, i), required=True)
            if extra not in env:
                raise PodkitError("%s.secret_env[%d]: %r is not set in this container's env." % (path, i, extra))
            if extra not in secret:
                secret.append(extra)
    pull = default_pull
    if item.get("imagePullPolicy") is not None:
        if item["imagePullPolicy"] not in _PULL_MAP:
            raise PodkitError("%s.imagePullPolicy: %r is not one of Always, IfNotPresent, Never."
                              % (path, item["imagePullPolicy"]))
        pull = _PULL_MAP[item["imagePullPolicy"]]
    elif item.get("pull") is not None:
        if item["pull"] not in PULL_POLICIES:
            raise PodkitError("%s.pull: %r is not one of %s." % (path, item["pull"], ", ".join(PULL_POLICIES)))
        pull = item["pull"]
    share = ("net", "ipc", "pid") if share_pid else ("net", "ipc")
    if item.get("share") is not None:
        share = tuple(_string_list(item["share"], path + ".share"))
        unknown = [s for s in share if s not in _SHARE]
        if unknown:
            raise PodkitError("%s.share: %s not a namespace podkit can share; use a subset of net, ipc, pid."
                              % (path, ", ".join(repr(u) for u in unknown)))
    mounts = []
    seen_paths = set()
    mounts_key = "volume_mounts" if "volume_mounts" in item else "volumeMounts"
    for i, mount in enumerate(_list(item.get(mounts_key), "%s.%s" % (path, mounts_key))):
        where = "%s.%s[%d]" % (path, mounts_key, i)
        check_fields(mount, _MOUNT_FIELDS, where)
        mount_path = _absolute(mount.get("mountPath"), where + ".mountPath")
        if mount_path in seen_paths:
            raise PodkitError("%s.mountPath: %r is mounted twice in this container." % (where, mount_path))
        seen_paths.add(mount_path)
        sub_path = _string(mount.get("subPath"), where + ".subPath") or ""
        if sub_path.startswith("/") or ".." in sub_path.split("/"):
            raise PodkitError("%s.subPath: %r must be a relative path without '..'." % (where, sub_path))
        mounts.append(Mount(volume=_string(mount.get("name"), where + ".name", required=True), mount_path=mount_path,
                            read_only=_bool(mount.get("readOnly"), where + ".readOnly"), sub_path=sub_path))
    working_dir = item.get("workingDir", item.get("working_dir"))
    if working_dir is not None:
        working_dir = _absolute(working_dir, path + (".workingDir" if "workingDir" in item else ".working_dir"))
    return ContainerSpec(
        name=name,
        image=image,
        command=_string_list(item["command"], path + ".command") if item.get("command") is not None else None,
        args=_string_list(item["args"], path + ".args") if item.get("args") is not None else None,
        env=env,
        secret_env=tuple(secret),
        working_dir=working_dir,
        user=_string(item.get("user"), path + ".user"),
        mounts=mounts,
        ports=[_parse_container_port(p, "%s.ports[%d]" % (path, i), kubernetes)
               for i, p in enumerate(_list(item.get("ports"), path + ".ports"))],
        resources=_parse_resources(item.get("resources"), path + ".resources", kubernetes),
        share=share,
        # An init container runs once to completion; Docker must never restart it.
        restart_policy="Always" if sidecar else "Never" if init else own_policy or pod_restart,
        own_restart_policy=own_policy,
        restart_rules=restart_rules,
        pull=pull,
        init=init,
        env_fields=dict(sources.fields),
        env_refs=dict((k, list(v)) for k, v in sources.refs.items() if k in env),
        sidecar=sidecar,
        config_sources=list(sources.used),
        warnings=skipped,
        probes=parse_probes(item, path, init and not sidecar),
    )


def _parse_volumes(value, path, kubernetes):
    volumes = []
    names = set()
    for i, item in enumerate(_list(value, path)):
        where = "%s[%d]" % (path, i)
        check_fields(item, _VOLUME_FIELDS, where)
        name = _string(item.get("name"), where + ".name", required=True)
        if len(name) > 63 or not _DNS1123_LABEL.match(name):
            raise PodkitError("%s.name: %r is not a valid volume name; use a DNS-1123 label (lowercase letters,"
                              " digits, '-')." % (where, name))
        if name in names:
            raise PodkitError("%s.name: the volume %r is defined twice." % (where, name))
        names.add(name)
        kinds = [k for k in _VOLUME_FIELDS[1:] if k in item]
        if not kinds and kubernetes:
            # As the API server defaults it: a volume with no source is an emptyDir.
            kinds = ["emptyDir"]
        if len(kinds) != 1:
            raise PodkitError("%s: a volume needs exactly one of hostPath or emptyDir%s." % (
                where, (", " + ", ".join(_VOLUME_FIELDS[3:])) if kubernetes else " (with native options)"))
        if kinds[0] in FILE_KINDS or kinds[0] == "persistentVolumeClaim":
            if not kubernetes:
                raise PodkitError("%s.%s: only in a manifest, where the ConfigMaps and Secrets can be given." % (where, kinds[0]))
            volumes.append(_file_or_claim_volume(name, kinds[0], item[kinds[0]], "%s.%s" % (where, kinds[0])))
            continue
        if kinds[0] == "image":
            if not kubernetes:
                raise PodkitError("%s.image: only in a manifest (a Kubernetes image volume)." % where)
            volumes.append(_image_volume(name, item["image"], where + ".image"))
            continue
        if kinds[0] == "hostPath":
            host = check_fields(item["hostPath"], ("path", "type"), where + ".hostPath")
            host_type = _string(host.get("type"), where + ".hostPath.type") or ""
            if host_type not in _HOST_PATH_TYPES:
                raise PodkitError("%s.hostPath.type: %r is not one of %s." % (where, host_type, ", ".join(t or '""' for t in _HOST_PATH_TYPES)))
            volumes.append(Volume(name=name, kind="hostPath", host_path=_absolute(host.get("path"), where + ".hostPath.path"),
                                  host_path_type=host_type))
        else:
            empty = check_fields(item.get("emptyDir"), ("medium", "sizeLimit"), where + ".emptyDir")
            medium = _string(empty.get("medium"), where + ".emptyDir.medium") or ""
            if medium not in ("", "Memory"):
                raise PodkitError("%s.emptyDir.medium: %r is not supported; use \"\" (disk) or Memory." % (where, medium))
            size = None
            if empty.get("sizeLimit") is not None:
                size = parse_memory(empty["sizeLimit"], where + ".emptyDir.sizeLimit", kubernetes=kubernetes, minimum=1)
            volumes.append(Volume(name=name, kind="emptyDir", medium=medium, size_limit=size))
    return volumes


# An image reference as Docker reads it (the grammar of distribution/reference, regexp.go): [domain/]path[:tag][@digest],
# path components lowercase. The API server takes any string; the kubelet then fails the pod with InvalidImageName:
# here the field is named before the engine is reached.
_REF_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_REF_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])" \
    r"(?::[0-9]+)?"
_IMAGE_REFERENCE = re.compile(r"^(?:%s/)?%s(?:/%s)*(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*"
                              r":[0-9a-fA-F]{32,})?$" % (_REF_DOMAIN, _REF_COMPONENT, _REF_COMPONENT))


def _image_reference(image: str, where: str) -> str:
    if not _IMAGE_REFERENCE.match(image) or len(image.split("@")[0].rsplit(":", 1)[0]) > 255:
        raise PodkitError("%s: %r is not an image reference Docker can read ([registry/]name[:tag][@digest], the name"
                          " in lowercase); the kubelet would fail the pod with InvalidImageName." % (where, image))
    return image


def _image_volume(name: str, source: object, where: str) -> Volume:
    """An image volume (Kubernetes' ImageVolumeSource): the image's filesystem mounted read-only, as the
    kubelet mounts it (pkg/volume/image; the API refuses readOnly: false on it). Docker mounts one with
    ``--mount type=image`` from Engine 28.0 (API 1.48) on; podkit does not pull it: the image must be on
    the host, so pullPolicy Always is refused rather than dropped."""
    body = check_fields(source, ("reference", "pullPolicy"), where)
    reference = _string(body.get("reference"), where + ".reference", required=True)
    policy = body.get("pullPolicy")
    if policy is not None and policy not in ("IfNotPresent", "Never"):
        raise PodkitError("%s.pullPolicy: %r is not honoured: podkit mounts an image volume from the images on the host"
                          " and does not pull it; give IfNotPresent or Never, and pull %s beforehand." % (where, policy, reference))
    return Volume(name=name, kind="image", image=reference)


def _file_or_claim_volume(name: str, kind: str, source: object, where: str) -> Volume:
    if kind == "persistentVolumeClaim":
        claim = check_fields(source, ("claimName", "readOnly"), where)
        claim_name = _string(claim.get("claimName"), where + ".claimName", required=True)
        if len(claim_name) > 200 or not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", claim_name):
            raise PodkitError("%s.claimName: %r is not a valid claim name (a DNS-1123 subdomain)." % (where, claim_name))
        return Volume(name=name, kind=kind, claim=claim_name, claim_read_only=_bool(claim.get("readOnly"), where + ".readOnly"))
    body = check_fields(source if source is not None else {}, _FILE_VOLUME_FIELDS[kind], where)
    holds_secret = kind == "secret"
    if kind == "projected":
        for index, item in enumerate(_list(body.get("sources"), where + ".sources")):
            check_fields(item, ("configMap", "secret", "downwardAPI"), "%s.sources[%d]" % (where, index))
            for sub_kind, sub in item.items():
                # A projected secret source names its Secret with name, not secretName.
                allowed = ("name", "items", "optional") if sub_kind == "secret" else \
                    tuple(f for f in _FILE_VOLUME_FIELDS[sub_kind] if f != "defaultMode")
                check_fields(sub, allowed, "%s.sources[%d].%s" % (where, index, sub_kind))
            holds_secret = holds_secret or "secret" in item
    return Volume(name=name, kind=kind, files=FileVolume(kind, dict(body), holds_secret))


def _parse_host_aliases(value, path):
    hosts: Dict[str, str] = {}
    if isinstance(value, dict):  # native shorthand: {hostname: ip}
        items = [{"ip": ip, "hostnames": [host]} for host, ip in value.items()]
    else:
        items = _list(value, path)
    for i, item in enumerate(items):
        where = "%s[%d]" % (path, i)
        check_fields(item, ("ip", "hostnames"), where)
        ip = check_ip(_string(item.get("ip"), where + ".ip", required=True), where + ".ip")
        for j, host in enumerate(_string_list(item.get("hostnames"), where + ".hostnames")):
            if hosts.get(host, ip) != ip:
                raise PodkitError("%s.hostnames[%d]: %r is already mapped to %s." % (where, j, host, hosts[host]))
            hosts[host] = ip
    return hosts


def _check_hostname(value, path):
    hostname = _string(value, path)
    if hostname is not None and (len(hostname) > 63 or not _DNS1123_LABEL.match(hostname)):
        raise PodkitError("%s: %r is not a valid hostname; use a DNS-1123 label (at most 63 lowercase letters,"
                          " digits or '-')." % (path, hostname))
    return hostname


def _check_restart_policy(value, path):
    policy = value if value is not None else "Always"
    if policy not in RESTART_POLICIES:
        raise PodkitError("%s: %r is not one of %s." % (path, policy, ", ".join(RESTART_POLICIES)))
    return policy


def _finish(pod: PodSpec, prefix: str, kubernetes: bool) -> PodSpec:
    """Cross-container checks: unique names, known volumes, no two containers on one host port."""
    if not pod.containers:
        raise PodkitError("%scontainers is required: a pod needs at least one container." % prefix)
    init_key = "initContainers" if kubernetes else "init_containers"
    seen: Dict[str, str] = {}
    volumes = set(v.name for v in pod.volumes)
    published: List[Tuple[PortMapping, str]] = []
    for j, port in enumerate(pod.sandbox.ports):
        _claim_port(published, port, "ports[%d]" % j)
    for key, containers in ((init_key, pod.init_containers), ("containers", pod.containers)):
        for i, container in enumerate(containers):
            where = "%s%s[%d]" % (prefix, key, i)
            if container.name in seen:
                raise PodkitError("%s.name: %r is already the name of %s; container names must be unique in a pod"
                                  " (init containers included)." % (where, container.name, seen[container.name]))
            seen[container.name] = where
            for j, mount in enumerate(container.mounts):
                if mount.volume not in volumes:
                    raise PodkitError("%s.volumeMounts[%d].name: no volume named %r in %svolumes (defined: %s)."
                                      % (where, j, mount.volume, prefix, ", ".join(sorted(volumes)) or "none"))
            for j, port in enumerate(container.ports):
                if port.host_port is not None:
                    _claim_port(published, port, "%s.ports[%d]" % (where, j))
                    # The sandbox owns the network namespace, so it is the one that publishes the port.
                    pod.sandbox.ports.append(replace(port))
    return pod


def _claim_port(published: List[Tuple[PortMapping, str]], port: PortMapping, where: str) -> None:
    # Binding 0.0.0.0:80 and 127.0.0.1:80 at once fails in Docker too, so "all addresses" overlaps every IP.
    for other, owner in published:
        if other.host_port == port.host_port and other.protocol == port.protocol and (
                not other.host_ip or not port.host_ip or other.host_ip == port.host_ip):
            raise PodkitError("%s: host port %s%d/%s is already asked for by %s; each hostPort (with its protocol"
                              " and hostIP) can be published only once." % (
                                  where, (port.host_ip + ":") if port.host_ip else "", port.host_port,
                                  port.protocol, owner))
    published.append((port, where))


def pod_spec_from_manifest(manifest: object, name: Optional[str] = None, cgroup_parent: Optional[str] = None,
                           sandbox_image: Optional[str] = None, pull: str = "missing",
                           resources: Optional[dict] = None, validate: str = DEFAULT_VALIDATE,
                           seccomp_root: Optional[str] = None) -> PodSpec:
    """Translate a Kubernetes v1 Pod (a dict or YAML text) into a PodSpec, Kubernetes rules only.

    The pod's name is ``metadata.name``; the module's ``name`` may be given too and must then agree
    (a manifest reused under another name would otherwise deploy something other than it says).
    ``metadata.labels`` become the sandbox's labels; ``metadata.annotations`` extra sandbox labels
    and ``metadata.namespace`` is recorded (neither feeds a hash). Fields that mean nothing on one
    host are named in ``warnings`` or refused, as ``validate`` says (``_hostless``).
    Images default to pull policy ``pull`` (``missing``), not Kubernetes'
    "Always for :latest", so that a manifest never pulls unless it says imagePullPolicy: Always.
    ``cgroup_parent``, ``sandbox_image`` and ``resources`` (pod-level override) come from the module;
    ``seccomp_root`` is where Localhost seccomp profiles are read (default SECCOMP_ROOT).
    """
    manifest, configs = split_documents(load_documents(manifest))
    if not isinstance(manifest, dict):
        raise PodkitError("manifest must be a Kubernetes Pod: a mapping (or YAML text) with apiVersion: v1, kind: Pod.")
    raw_spec = manifest.get("spec") if isinstance(manifest.get("spec"), dict) else {}
    service_account = raw_spec.get("serviceAccountName") or raw_spec.get("serviceAccount") or "default"
    generated = generated_name(manifest)
    manifest, hostless = strip_hostless(manifest)
    named_by_generate = generated is not None and name in (None, generated)
    if named_by_generate:
        # Honoured (as the pod's name), so not among the fields that mean nothing here.
        hostless = [(path, why) for path, why in hostless if path != "metadata.generateName"]
    check_fields(manifest, ("apiVersion", "kind", "metadata", "spec"), "manifest")
    # kind first: a Deployment (apps/v1) is wrong for its kind, and saying so helps more than its apiVersion.
    if manifest.get("kind") in WORKLOAD_KINDS:
        raise PodkitError(workload_refused("manifest", manifest.get("kind")))
    if manifest.get("kind") != "Pod":
        raise PodkitError("manifest.kind: %r is not supported; podkit deploys kind: Pod (for a Deployment, take its"
                          " spec.template)." % manifest.get("kind"))
    if manifest.get("apiVersion") != "v1":
        raise PodkitError("manifest.apiVersion: %r is not supported; podkit reads apiVersion: v1." % manifest.get("apiVersion"))
    metadata = check_fields(manifest.get("metadata"), _METADATA_FIELDS, "metadata")
    pod_name = metadata.get("name")
    if named_by_generate:
        pod_name = generated
    if name is not None and pod_name is not None and name != pod_name:
        raise PodkitError("name: %r does not match the manifest's metadata.name %r; make them agree or leave one out."
                          % (name, pod_name))
    pod_name = validate_pod_name(pod_name if pod_name is not None else name,
                                 "metadata.generateName" if named_by_generate else
                                 "metadata.name" if pod_name is not None else "name")
    labels = metadata.get("labels") or {}
    if not isinstance(labels, dict):
        raise PodkitError("metadata.labels must be a mapping of label names to strings.")
    for key in labels:
        if str(key).startswith(LABEL_PREFIX):
            # These labels are how podkit recognises what it owns; a manifest must not forge them.
            raise PodkitError("metadata.labels.%s: labels starting with io.podkit. are reserved for podkit; rename it." % key)
    annotations = metadata.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise PodkitError("metadata.annotations must be a mapping of names to strings.")
    for key, value in annotations.items():
        if str(key).startswith(LABEL_PREFIX):
            raise PodkitError("metadata.annotations.%s: names starting with io.podkit. are reserved for podkit; rename it."
                              % key)
        if key in labels:
            raise PodkitError("metadata.annotations.%s: also a label; the sandbox keeps annotations as labels, so give"
                              " the name in one of them." % key)
        _string(value, "metadata.annotations.%s" % key)
    namespace = _string(metadata.get("namespace"), "metadata.namespace")
    if namespace is not None and (len(namespace) > 63 or not _DNS1123_LABEL.match(namespace)):
        raise PodkitError("metadata.namespace: %r is not a valid namespace name; use a DNS-1123 label." % namespace)
    spec = check_fields(manifest.get("spec"), _SPEC_FIELDS, "spec")
    if spec.get("dnsPolicy") == "None" and not spec.get("dnsConfig"):
        raise PodkitError("spec.dnsPolicy: None takes the pod's DNS from spec.dnsConfig alone; give spec.dnsConfig.")
    if not spec.get("containers"):
        raise PodkitError("spec.containers is required: a pod needs at least one container.")
    dns = check_fields(spec.get("dnsConfig"), ("nameservers", "searches", "options"), "spec.dnsConfig")
    options = []
    for i, option in enumerate(_list(dns.get("options"), "spec.dnsConfig.options")):
        where = "spec.dnsConfig.options[%d]" % i
        check_fields(option, ("name", "value"), where)
        opt = _string(option.get("name"), where + ".name", required=True)
        value = _string(option.get("value"), where + ".value")
        options.append(opt if value is None else "%s:%s" % (opt, value))
    native = {
        "name": pod_name,
        "restart_policy": spec.get("restartPolicy"),
        "share_process_namespace": spec.get("shareProcessNamespace"),
        "hostname": spec.get("hostname"),
        "dns": dns.get("nameservers"),
        "dns_search": dns.get("searches"),
        "host_aliases": spec.get("hostAliases"),
        "cgroup_parent": cgroup_parent,
        "sandbox_image": sandbox_image,
        "pull": pull,
        "resources": resources,
    }
    ctx = PodContext(pod=pod_name, namespace=namespace or "default",
                     labels=dict((str(k), str(v)) for k, v in labels.items()),
                     annotations=dict((str(k), str(v)) for k, v in annotations.items()),
                     service_account=str(service_account), configs=configs)
    pod = _build(native, spec.get("containers"), spec.get("initContainers"), spec.get("volumes"), "spec.", True,
                 {"restart_policy": "spec.restartPolicy", "share_process_namespace": "spec.shareProcessNamespace",
                  "hostname": "spec.hostname", "dns": "spec.dnsConfig.nameservers",
                  "dns_search": "spec.dnsConfig.searches", "host_aliases": "spec.hostAliases"}, ctx)
    pod.configs = configs
    missing_pull_secrets: List[str] = []
    pod.pull_auths = pull_auths(spec.get("imagePullSecrets"), configs, warnings=missing_pull_secrets)
    _resolve_resource_refs(pod)
    inherited, host = pod_security(spec.get("securityContext"), spec)
    pod.sandbox.host = host
    pod.fs_group = inherited.get("fsGroup")
    pod.fs_group_policy = inherited.get("fsGroupChangePolicy") or "Always"
    grace = grace_period(spec.get("terminationGracePeriodSeconds"))
    for key, parsed in (("initContainers", pod.init_containers), ("containers", pod.containers)):
        for index, container in enumerate(parsed):
            _secure(container, spec[key][index], "spec.%s[%d]" % (key, index), inherited, annotations, grace,
                    seccomp_root)
            if host.get("host_pid"):
                container.share = tuple(sorted(set(container.share) | {"pid"}))
            if host.get("host_ipc"):
                container.security["host_ipc"] = True
    pod.sandbox.dns_options = options
    pod.sandbox.labels = dict((str(k), _string(v, "metadata.labels.%s" % k) or "") for k, v in labels.items())
    if spec.get("resources") is not None:
        if resources is not None:
            raise PodkitError("resources: the manifest already sets spec.resources; give the pod-level resources in one place.")
        pod.resources = _parse_resources(spec["resources"], "spec.resources", True)
    for index, volume in enumerate(pod.volumes):
        if volume.kind == "emptyDir" and volume.size_limit is not None and volume.medium != "Memory":
            hostless.append(("spec.volumes[%d].emptyDir.sizeLimit" % index,
                             "a Docker volume on disk has no size limit and Kubernetes enforces this one only by evicting"
                             " the pod, which nothing does on one host; medium: Memory gives a tmpfs of that size"))
    pod.namespace = namespace
    pod.annotations = dict((str(k), _string(v, "metadata.annotations.%s" % k) or "") for k, v in annotations.items())
    pod.warnings = judge(hostless, validate) + [w for c in pod.init_containers + pod.containers for w in c.warnings] + \
        missing_pull_secrets
    if named_by_generate:
        pod.warnings.insert(0, "metadata.generateName: the pod is named %r, generateName without its trailing '-'; the"
                            " API server would add a random suffix on every create, podkit keeps this one stable name"
                            " so that a second run converges the same pod. Give metadata.name to choose another."
                            % generated)
    return pod


def generated_name(manifest: object) -> Optional[str]:
    """The stable name a Pod without metadata.name takes from metadata.generateName: the prefix less its
    trailing '-' (the API server appends five random characters to the whole prefix, apimachinery's
    names.SimpleNameGenerator; podkit keeps one name, so that converging twice finds the same pod).
    None when the Pod has a name or no generateName."""
    metadata = manifest.get("metadata") if isinstance(manifest, dict) else None
    if not isinstance(metadata, dict) or metadata.get("name") is not None:
        return None
    prefix = metadata.get("generateName")
    if not isinstance(prefix, str) or not prefix.rstrip("-"):
        return None
    return prefix.rstrip("-")


def running_containers(pod: PodSpec) -> List[ContainerSpec]:
    """The containers that keep running: the native sidecars (in their order), then the members. Their
    probes are run, and their readiness makes the pod's (Kubernetes counts a sidecar's readiness in the
    pod's Ready condition; an init container that runs to completion has none)."""
    return [c for c in pod.init_containers if c.sidecar] + list(pod.containers)


def pod_resource_amounts(pod: PodSpec) -> Dict[str, Dict[str, Optional[int]]]:
    """Every container's resources by resourceFieldRef name (init containers included)."""
    return dict((c.name, resource_amounts(c.resources)) for c in pod.init_containers + pod.containers)


def _resolve_resource_refs(pod: PodSpec) -> None:
    """resourceFieldRef values, now that every container's resources are known: a value that is set
    is written into env; a limit that is not set stays a field, filled with the host's capacity."""
    amounts = pod_resource_amounts(pod)
    for container in pod.init_containers + pod.containers:
        for name, marker in list(container.env_fields.items()):
            if not marker.startswith(RESOURCE_PREFIX):
                continue
            value = resolve_resource(marker, amounts, "containers[%s].env.%s.valueFrom.resourceFieldRef"
                                     % (container.name, name))
            if value.startswith(RESOURCE_PREFIX):
                container.env_fields[name] = value
                continue
            container.env[name] = value
            del container.env_fields[name]


# The pod module's options that describe the pod itself (everything else is how to run it).
NATIVE_POD_FIELDS = ("containers", "init_containers", "restart_policy", "share_process_namespace", "hostname",
                     "ports", "dns", "dns_search", "host_aliases", "volumes")


def pod_spec_from_params(params: dict) -> PodSpec:
    """The PodSpec for the pod module's parameters: from ``manifest`` if given, else the native options.

    Native options follow Kubernetes keys but accept Docker memory sizes (``512m``) as well; ``ports``
    are pod-level ``[host_ip:]host_port:container_port[/proto]`` strings published by the sandbox.
    """
    name = params.get("name")
    if params.get("manifest_file"):
        if params.get("manifest") is not None:
            raise PodkitError("manifest_file: give the pod either as manifest or as manifest_file, not both.")
        params = dict(params, manifest=read_manifest_file(params["manifest_file"]), manifest_file=None)
    if params.get("manifest") is not None:
        given = [key for key in NATIVE_POD_FIELDS if params.get(key) not in (None, [], {}, False)]
        if given:
            raise PodkitError("manifest: give the pod either as manifest or as native options, not both (also given: %s)."
                              % ", ".join(given))
        pod = pod_spec_from_manifest(params["manifest"], name=name, cgroup_parent=params.get("cgroup_parent"),
                                     sandbox_image=params.get("sandbox_image"), pull=params.get("pull") or "missing",
                                     resources=params.get("resources"),
                                     validate=params.get("validate") or DEFAULT_VALIDATE,
                                     seccomp_root=params.get("seccomp_profile_root"))
        # Set by the pods module for a workload's replica (never a user's option): only the owner labels.
        pod.owner = dict((k, str(v)) for k, v in (params.get("owner") or {}).items() if k in OWNER_LABELS)
        return pod
    validate_pod_name(name, "name")
    pod = _build(params, params.get("containers"), params.get("init_containers"), params.get("volumes"), "", False, {})
    # Native entries take a container's securityContext, lifecycle, stdin and tty as a manifest's do (there
    # is no pod-level securityContext natively): applied the same way, never taken and dropped.
    for key, parsed in (("init_containers", pod.init_containers), ("containers", pod.containers)):
        for index, container in enumerate(parsed):
            entry = params[key][index]
            path = "%s[%d]" % (key, index)
            _secure(container, entry, path, {}, {}, None, params.get("seccomp_profile_root"))
            if container.user and (container.security.get("user") or "group" in container.security):
                raise PodkitError("%s: give the user either as user or as securityContext.runAsUser/runAsGroup,"
                                  " not both." % path)
    return pod


def _secure(container: ContainerSpec, item: Dict[str, Any], path: str, inherited: Dict[str, Any],
            annotations: Dict[str, str], grace: Optional[int], seccomp_root: Optional[str]) -> None:
    """A container's securityContext, lifecycle, stdin/tty and Localhost seccomp profile (manifest or native)."""
    container.security = container_security(item, path, inherited, annotations, container.name, grace)
    root = seccomp_root or SECCOMP_ROOT
    container.seccomp_json = load_seccomp(container.security, root)
    container.seccomp_root = root if container.seccomp_json else None


def _build(params: dict, containers: object, init_containers: object, volumes: object, prefix: str, kubernetes: bool,
           paths: Dict[str, str], ctx: Optional[PodContext] = None) -> PodSpec:
    def where(key):
        return paths.get(key, key)
    pull = params.get("pull") or "missing"
    if pull not in PULL_POLICIES:
        raise PodkitError("pull: %r is not one of %s." % (pull, ", ".join(PULL_POLICIES)))
    restart = _check_restart_policy(params.get("restart_policy"), where("restart_policy"))
    share_pid = _bool(params.get("share_process_namespace"), where("share_process_namespace"))
    containers_key = prefix + ("containers")
    init_key = prefix + ("initContainers" if kubernetes else "init_containers")
    sandbox = SandboxSpec(
        pod=params["name"],
        image=params.get("sandbox_image") or DEFAULT_SANDBOX_IMAGE,
        cgroup_parent=params.get("cgroup_parent"),
        hostname=_check_hostname(params.get("hostname"), where("hostname")),
        ports=[parse_port(p, "ports[%d]" % i) for i, p in enumerate(_list(params.get("ports"), "ports"))],
        dns=[check_ip(_string(d, "%s[%d]" % (where("dns"), i), required=True), "%s[%d]" % (where("dns"), i))
             for i, d in enumerate(_list(params.get("dns"), where("dns")))],
        dns_search=_string_list(params.get("dns_search"), where("dns_search")),
        dns_options=_string_list(params.get("dns_options"), "dns_options"),
        extra_hosts=_parse_host_aliases(params.get("host_aliases"), where("host_aliases")),
        share_pid=share_pid,
        pull=pull,
    )
    pod = PodSpec(
        name=params["name"],
        sandbox=sandbox,
        containers=[_parse_container(c, "%s[%d]" % (containers_key, i), kubernetes, False, restart, pull, share_pid,
                                     ctx)
                    for i, c in enumerate(_list(containers, containers_key))],
        init_containers=[_parse_container(c, "%s[%d]" % (init_key, i), kubernetes, True, restart, pull, share_pid,
                                          ctx)
                         for i, c in enumerate(_list(init_containers, init_key))],
        volumes=_parse_volumes(volumes, prefix + "volumes", kubernetes),
        restart_policy=restart,
    )
    if params.get("resources") is not None:
        pod.resources = _parse_resources(params["resources"], "resources", False)
    return _finish(pod, prefix, kubernetes)


# ---------------------------------------------------------------------------------------------
# The options of pod_sandbox and pod_container, and the secrets among the pod module's options.
# ---------------------------------------------------------------------------------------------

def read_manifest_file(path: object) -> str:
    """The text of ``manifest_file`` (on the host the module runs on)."""
    if not isinstance(path, str) or not path:
        raise PodkitError("manifest_file must be a path.")
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise PodkitError("manifest_file: cannot read %s (%s); give the path of a YAML file on the Docker host."
                          % (path, exc))


def secret_values(params: dict) -> List[str]:
    """Values of env variables marked secret and of the manifest's Secrets in the pod module's raw
    options, found before anything is parsed, so that even a refused run cannot show them."""
    found = []
    if params.get("manifest") is not None:
        found.extend(secret_texts(params["manifest"]))
    if params.get("manifest_file"):
        try:
            found.extend(secret_texts(read_manifest_file(params["manifest_file"])))
        except PodkitError:
            pass    # reported when the manifest is parsed
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


def sandbox_spec_from_params(params: dict) -> SandboxSpec:
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


def _split_volume(text: str, index: int) -> Tuple[str, str, bool]:
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


def container_spec_from_params(params: dict) -> Tuple[ContainerSpec, Dict[str, Volume]]:
    """pod_container's options as a ContainerSpec and the pod volumes it mounts."""
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
    volumes: Dict[str, Volume] = {}
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


# ---------------------------------------------------------------------------------------------
# What the kubelet derives from a pod: its QoS class and its pod-level cgroup values.
# ---------------------------------------------------------------------------------------------

def qos_class(pod: PodSpec) -> str:
    """The pod's QoS class, computed as Kubernetes does (init containers included).

    BestEffort: no container sets any CPU or memory request or limit. Guaranteed: every container
    has both a CPU and a memory limit and its requests equal them. Anything else is Burstable.
    A pod-level ``resources`` override, when it sets anything, decides on its own (as Kubernetes'
    pod-level resources do).
    """
    if pod_level_set(pod):
        groups = [pod.resources]
    else:
        groups = [c.resources for c in pod.init_containers + pod.containers]
    if all(getattr(r, f) is None for r in groups for f in _RESOURCE_FIELDS):
        return "BestEffort"
    for r in groups:
        if r.memory_limit is None or r.cpu_limit is None:
            return "Burstable"
        if r.memory_request not in (None, r.memory_limit) or r.cpu_request not in (None, r.cpu_limit):
            return "Burstable"
    return "Guaranteed"


_RESOURCE_FIELDS = ("memory_limit", "memory_request", "cpu_limit", "cpu_request")


def pod_level_set(pod: PodSpec) -> bool:
    """Whether the pod-level ``resources`` override sets anything."""
    return pod.resources is not None and any(getattr(pod.resources, f) is not None for f in _RESOURCE_FIELDS)


def _effective(pod: PodSpec, attribute: str, require_all: bool) -> Optional[int]:
    """max(sum over regular containers, largest init container), as the kubelet sizes a pod."""
    values = [getattr(c.resources, attribute) for c in pod.containers]
    init_values = [getattr(c.resources, attribute) for c in pod.init_containers]
    if require_all and any(v is None for v in values + init_values):
        return None  # one container without a limit leaves the whole pod unlimited
    total = sum(v for v in values if v is not None)
    largest_init = max([v for v in init_values if v is not None] or [0])
    result = max(total, largest_init)
    return result or None


def pod_resources(pod: PodSpec) -> Resources:
    """The pod cgroup's values as the kubelet derives them, with the pod-level override winning.

    Limits (memory, CPU) only when every container, init containers included, declares one: then
    max(sum of the regular containers' limits, the largest init container's limit). Requests (CPU
    request -> cpu.shares / cpu.weight) are the same max-of-sum over whatever is set; None when
    nothing is requested (the cgroup code then uses the BestEffort minimum).
    """
    derived = Resources(
        memory_limit=_effective(pod, "memory_limit", True),
        memory_request=_effective(pod, "memory_request", False),
        cpu_limit=_effective(pod, "cpu_limit", True),
        cpu_request=_effective(pod, "cpu_request", False),
    )
    if pod.resources is not None:
        for attribute in _RESOURCE_FIELDS:
            value = getattr(pod.resources, attribute)
            if value is not None:
                setattr(derived, attribute, value)
    return derived
