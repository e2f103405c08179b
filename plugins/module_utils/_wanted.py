# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a pod should be on this host, computed from its PodSpec before anything is observed (pure).

``want_pod`` gives a ``PodWanted``: the cgroup parent with the limits the kubelet would derive,
and each container (sandbox, init containers, members) as a ``Wanted`` whose canonical
configuration is what the io.podkit.config-hash label is taken of. That canonical form decides
recreation, so it must stay stable across releases (tests/unit/test_config_hash.py pins it).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._cgroups import (
    UNLIMITED, CgroupLimits, HostCgroups, check_parent_form, default_parent, limits_from, validate_name)
from ansible_collections.podkit.docker.plugins.module_utils._create import port_text
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._probes import probe_manifest
from ansible_collections.podkit.docker.plugins.module_utils._restart import engine_policy, rules_manifest
from ansible_collections.podkit.docker.plugins.module_utils._volumefiles import (
    digest, has_runtime, host_dir, volume_files, whole_sources)
from ansible_collections.podkit.docker.plugins.module_utils._labels import (
    LABEL_FIELDS, LABEL_NAMESPACE, LABEL_ORIGIN, LABEL_QOS, LABEL_SHARE_PID, LABEL_SIDECAR, ROLE_INIT, ROLE_MEMBER,
    ROLE_SANDBOX, config_hashes, container_labels, member_name, parse_fields, sandbox_name, volume_name)
from ansible_collections.podkit.docker.plugins.module_utils._spec import (
    CGROUP_LIMITS, ContainerSpec, Mount, PodSpec, SandboxSpec, Volume, pod_level_set, pod_resource_amounts, pod_resources, qos_class)

# What converges a pod to the spec; the other states act on what exists.
RUNNING_STATES = ("present", "started", "restarted")


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
    sidecar: bool = False            # a native sidecar: planned in the init containers' order, kept running
    # Docker volumes mounted without copying the image's content into them (fsGroup owns them: a
    # copy would also copy the image directory's owner over the group). Not hashed.
    nocopy: Tuple[str, ...] = ()
    seccomp_json: Optional[str] = None   # a Localhost seccomp profile's JSON (its digest is in config)
    # A native sidecar's startup probe (_probes.Probe; not hashed): the next container starts once it succeeded.
    startup: Any = None

    def hashes(self) -> Tuple[str, Dict[str, str]]:
        return config_hashes(self.config)

    def labels_for(self, pod: str, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        """The labels the container is created with: the user's, then podkit's own (which win)."""
        return container_labels(pod, self.role, self.key, self.config, dict(self.labels, **(extra or {})))

    def masked_config(self) -> Dict[str, Any]:
        """The configuration as diffs show it: secret env values replaced."""
        config = dict(self.config)
        if "env" in config and self.secret_env:
            config["env"] = dict((k, "********" if k in self.secret_env else v) for k, v in config["env"].items())
        return config


@dataclass
class CgroupTarget:
    """The pod's cgroup parent and the limits it should carry (None: not podkit's to write - with
    cgroup_limits unmanaged, or a pod to remove).
    ``parent`` None: the one the pod's sandbox was made with."""
    parent: Optional[str]
    limits: Optional[CgroupLimits] = None


@dataclass
class FilesWanted:
    """A file volume as it should be on the host: its directory, files and their digest."""
    path: str
    files: Dict[str, Tuple[bytes, int]]
    digest: str
    secret: bool
    group: Optional[int] = None      # fsGroup
    runtime: bool = False            # holds values only the running pod knows (metadata.uid, a limit not set)
    whole: Dict[str, List[str]] = field(default_factory=dict)   # _volumefiles.whole_sources (for the export)


@dataclass
class OwnedVolume:
    """A Docker volume (emptyDir on disk, persistentVolumeClaim) that fsGroup owns (_volumefiles.apply_fs_group)."""
    name: str                        # the volume's name in the pod
    docker_name: str
    group: int
    read_only: bool
    policy: str                      # fsGroupChangePolicy: Always or OnRootMismatch
    consumers: List[str] = field(default_factory=list)    # keys of the containers mounting it


@dataclass
class PodWanted:
    """Everything a pod should be, computed from its spec before anything is observed."""
    pod: str
    sandbox: Optional[Wanted] = None
    init: List[Wanted] = field(default_factory=list)
    members: List[Wanted] = field(default_factory=list)
    volumes: Dict[str, Volume] = field(default_factory=dict)
    used_volumes: List[str] = field(default_factory=list)
    # File volumes (configMap, secret, downwardAPI, projected) in use: name -> what to write where.
    files: Dict[str, FilesWanted] = field(default_factory=dict)
    cgroup: Optional[CgroupTarget] = None
    removal: bool = False                 # state absent: observe what there is to remove
    remove_claims: bool = False           # state absent: the claims' volumes go too (remove_claims)
    # fsGroup: the Docker volumes it owns, by Docker name; the group of Memory emptyDirs (a tmpfs option).
    owned: Dict[str, OwnedVolume] = field(default_factory=dict)
    fs_group: Optional[int] = None
    pull_auths: Dict[str, Dict[str, str]] = field(default_factory=dict)   # imagePullSecrets by registry

    def containers(self) -> List[Wanted]:
        return ([self.sandbox] if self.sandbox else []) + self.init + self.members

    def by_key(self) -> Dict[str, Wanted]:
        return dict((w.key, w) for w in self.containers())

    def images(self, pull: Optional[str] = None) -> List[str]:
        """The image references, each once, in plan order (only those with pull policy ``pull``)."""
        refs: List[str] = []
        for item in self.containers():
            if item.config and (pull is None or item.pull == pull) and item.image not in refs:
                refs.append(item.image)
        return refs


def want_pod(spec: PodSpec, host: HostCgroups, given_parent: Optional[str] = None,
             cgroup_limits: str = "derived") -> PodWanted:
    """The wanted pod for a PodSpec on this host (pure). With ``cgroup_limits`` unmanaged podkit neither
    writes the pod cgroup's limits nor its slice unit: they are whoever set them's (the cgroup_parent
    module, cgset, nobody), and Docker makes the cgroup when the sandbox joins it, as for pod_sandbox."""
    parent = cgroup_parent(host, spec.name, given_parent or spec.sandbox.cgroup_parent)
    wanted = _want_pod(spec, parent, cgroup_limits)
    if cgroup_limits == "derived":
        wanted.cgroup = CgroupTarget(parent, pod_cgroup_limits(spec, host.version))
    return wanted


def check_pod(spec: PodSpec, given_parent: Optional[str] = None, cgroup_limits: str = "derived") -> None:
    """Refuse what ``want_pod`` would refuse on any host, with no engine to ask: the references between
    the pod's parts (the ConfigMap and Secret keys its file volumes name, the volumes its mounts use),
    cgroup_limits, and the form of a given cgroup parent. Only the host decides the rest (a path or a
    slice, by Docker's cgroup driver), so ``want_pod`` checks that once the engine answers."""
    given = given_parent or spec.sandbox.cgroup_parent
    if given:
        check_parent_form(given, "cgroup_parent")
    # The configurations it builds are dropped: only their refusals matter before the host is known.
    _want_pod(spec, "", cgroup_limits)


def _want_pod(spec: PodSpec, parent: str, cgroup_limits: str) -> PodWanted:
    """want_pod under ``parent`` without the pod cgroup's limits (they depend on the host's cgroup version)."""
    if cgroup_limits not in CGROUP_LIMITS:
        raise PodkitError("cgroup_limits: %r is not one of %s." % (cgroup_limits, ", ".join(CGROUP_LIMITS)))
    if cgroup_limits == "unmanaged" and pod_level_set(spec):
        raise PodkitError("cgroup_limits: unmanaged leaves the pod cgroup's limits as they are, while the pod-level "
                          "resources (resources, or spec.resources in a manifest) ask podkit to write them; give one "
                          "of the two.")
    qos = qos_class(spec)
    # Annotations and the namespace are labels outside the hashed configuration: a pod converged
    # before podkit kept them keeps its hash (Docker cannot relabel, so changing them alone
    # recreates nothing; they are written when the sandbox is next created).
    extra = dict(spec.annotations)
    if spec.namespace:
        extra[LABEL_NAMESPACE] = spec.namespace
    extra[LABEL_QOS] = qos
    extra.update(spec.owner)
    sandbox = want_sandbox(spec.sandbox, parent, labels=extra)
    sandbox.config["qos_class"] = qos
    volumes = dict((v.name, v) for v in spec.volumes)
    used: List[str] = []
    for container in spec.init_containers + spec.containers:
        used.extend(m.volume for m in container.mounts if m.volume not in used)
    files = want_files(spec, used)
    owned = want_owned(spec)
    nocopy = tuple(sorted(owned))
    init = [want_member(spec.name, c, volumes, parent, role=ROLE_MEMBER if c.sidecar else ROLE_INIT,
                        restart_policy="Always" if c.sidecar else None,
                        field_name="init_containers[%d]" % i, files=files) for i, c in enumerate(spec.init_containers)]
    for index, (container, item) in enumerate(zip(spec.init_containers, init)):
        if container.sidecar:
            item.sidecar = True
            item.labels[LABEL_SIDECAR] = str(index)
            item.startup = container.probes.get("startupProbe")
    # A member's restart policy: its own (restartPolicy on the container), else the pod's.
    members = [want_member(spec.name, c, volumes, parent, restart_policy=c.own_restart_policy or spec.restart_policy,
                           field_name="containers[%d]" % i, files=files) for i, c in enumerate(spec.containers)]
    for item in init + members:
        item.nocopy = nocopy
    return PodWanted(pod=spec.name, sandbox=sandbox, init=init, members=members, volumes=volumes, used_volumes=used,
                     files=files, cgroup=CgroupTarget(parent),
                     pull_auths=dict(spec.pull_auths), owned=owned, fs_group=spec.fs_group)


def adopted_fields(role: str, labels: Mapping[str, str]) -> Tuple[str, ...]:
    """The fields of a wanted configuration that a container made without them is taken over without.

    A sandbox pod_sandbox made (it has no io.podkit.qos-class label) is run as the pod module runs one,
    but for two fields of the pod module's configuration that change nothing in the sandbox container:
    its QoS class, derived from the members (the pause container is run the same in every class), and
    whether the pod shares its PID namespace, which pod_sandbox's share_pid only made the default of each
    pod_container (the members join it or not, and are recreated when that changes). So the pod module
    takes such a sandbox as it is rather than recreate the whole pod for a label; the sandbox gets the
    pod module's labels when it is next recreated for a real change.
    """
    if role == ROLE_SANDBOX and LABEL_QOS not in labels:
        return ("qos_class", "share_pid")
    return ()


def differing_fields(role: str, fields: Mapping[str, str], labels: Mapping[str, str]) -> List[str]:
    """The top-level configuration fields whose hashes (``fields``, of a wanted configuration) differ from
    those recorded in a container's ``labels`` (io.podkit.fields), but for the ones the container is taken
    over without (``adopted_fields``); sorted. The one comparison of the planner and of the export's check."""
    recorded = parse_fields(labels.get(LABEL_FIELDS))
    adopted = adopted_fields(role, labels)
    return sorted(k for k in set(fields) | set(recorded) if fields.get(k) != recorded.get(k) and k not in adopted)


def want_owned(spec: PodSpec) -> Dict[str, OwnedVolume]:
    """The Docker volumes fsGroup owns: the used emptyDirs on disk and persistentVolumeClaims (a Memory
    emptyDir is a tmpfs mounted with the group, see volume_create_args; hostPath is never changed)."""
    if spec.fs_group is None:
        return {}
    volumes = dict((v.name, v) for v in spec.volumes)
    owned: Dict[str, OwnedVolume] = {}
    for container in spec.init_containers + spec.containers:
        for mount in container.mounts:
            volume = volumes[mount.volume]
            if volume.kind == "persistentVolumeClaim":
                docker_name, read_only = volume.claim, volume.claim_read_only
            elif volume.kind == "emptyDir" and volume.medium != "Memory":
                docker_name, read_only = volume_name(spec.name, volume.name), False
            else:
                continue
            item = owned.setdefault(docker_name, OwnedVolume(
                volume.name, docker_name, spec.fs_group, read_only, spec.fs_group_policy))
            if container.name not in item.consumers:
                item.consumers.append(container.name)
    return owned


def want_files(spec: PodSpec, used: List[str]) -> Dict[str, FilesWanted]:
    """The file volumes the containers mount, computed from the ConfigMaps, Secrets and metadata."""
    metadata = dict(name=spec.name, namespace=spec.namespace or "default", labels=dict(spec.sandbox.labels),
                    annotations=dict(spec.annotations), resources=pod_resource_amounts(spec))
    result = {}
    for index, volume in enumerate(spec.volumes):
        if volume.files is None or volume.name not in used:
            continue
        files = volume_files(volume.files, spec.configs, metadata, "spec.volumes[%d].%s" % (index, volume.kind),
                             spec.fs_group)
        result[volume.name] = FilesWanted(host_dir(spec.name, volume.name, volume.files.holds_secret), files,
                                          digest(files, spec.fs_group), volume.files.holds_secret, spec.fs_group,
                                          has_runtime(files), whole_sources(volume.files, spec.configs))
    return result


def want_removal(pod: str, host: HostCgroups, given_parent: Optional[str] = None,
                 remove_claims: bool = False, cgroup_limits: str = "derived") -> PodWanted:
    """A pod to remove: its volumes and its cgroup parent (the given one, else the one its sandbox
    was made with, else the default) are observed for removal, but with ``cgroup_limits`` unmanaged,
    where the cgroup is not podkit's; with ``remove_claims`` also the volumes of the
    persistentVolumeClaims its containers mount."""
    parent = cgroup_parent(host, pod, given_parent) if given_parent else None
    return PodWanted(pod=pod, removal=True, cgroup=CgroupTarget(parent) if cgroup_limits != "unmanaged" else None,
                     remove_claims=remove_claims)


def want_sandbox(spec: SandboxSpec, parent: str, extra_ports: Sequence[Any] = (),
                 labels: Optional[Dict[str, str]] = None) -> Wanted:
    ports: List[str] = []
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
        cgroup_parent=parent,
        share_pid=bool(spec.share_pid),
        labels=dict(spec.labels),
    )
    if spec.host:
        # Only a pod with host namespaces or sysctls has this key: every other sandbox hashes as before.
        config["host"] = dict(spec.host)
    extra = dict(labels or {})
    if spec.share_pid:
        extra[LABEL_SHARE_PID] = "true"
    return Wanted(key="sandbox", role=ROLE_SANDBOX, name=sandbox_name(spec.pod), image=spec.image,
                  pull=spec.pull, config=config, labels=extra)


def mount_entries(pod: str, mounts: List[Mount], volumes: Dict[str, Volume], field_name: str,
                  files: Optional[Dict[str, FilesWanted]] = None) -> List[Dict[str, Any]]:
    result = []
    for index, mount in enumerate(mounts):
        volume = volumes.get(mount.volume)
        if volume is None:
            raise PodkitError("%s.volumeMounts[%d].name: no volume %r in the pod's volumes; declare it under "
                              "volumes (hostPath or emptyDir)." % (field_name, index, mount.volume))
        if volume.files is not None:
            wanted = (files or {}).get(volume.name)
            if wanted is None:
                raise PodkitError("%s.volumeMounts[%d].name: the %s volume %r is only supported by the pod module."
                                  % (field_name, index, volume.kind, volume.name))
            source = os.path.join(wanted.path, mount.sub_path) if mount.sub_path else wanted.path
            # As the kubelet mounts them: always read-only.
            result.append(dict(type="bind", source=source, target=mount.mount_path, read_only=True))
        elif volume.kind == "persistentVolumeClaim":
            if mount.sub_path:
                raise PodkitError("%s.volumeMounts[%d].subPath: not supported for persistentVolumeClaim volumes."
                                  % (field_name, index))
            result.append(dict(type="volume", source=volume.claim, target=mount.mount_path,
                               read_only=mount.read_only or volume.claim_read_only))
        elif volume.kind == "image":
            entry = dict(type="image", source=volume.image, target=mount.mount_path, read_only=True)
            if mount.sub_path:
                entry["sub_path"] = mount.sub_path
            result.append(entry)
        elif volume.kind == "hostPath":
            source = volume.host_path or ""
            if mount.sub_path:
                source = os.path.join(source, mount.sub_path)
            result.append(dict(type="bind", source=source, target=mount.mount_path, read_only=mount.read_only))
        else:
            if mount.sub_path:
                raise PodkitError("%s.volumeMounts[%d].subPath: not supported for emptyDir volumes."
                                  % (field_name, index))
            result.append(dict(type="volume", source=volume_name(pod, volume.name), target=mount.mount_path,
                               read_only=mount.read_only))
    return result


def want_member(pod: str, spec: ContainerSpec, volumes: Dict[str, Volume], parent: str,
                restart_policy: Optional[str] = None, role: str = ROLE_MEMBER, share: Optional[Sequence[str]] = None,
                field_name: Optional[str] = None, files: Optional[Dict[str, FilesWanted]] = None) -> Wanted:
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
        mounts=mount_entries(pod, spec.mounts, volumes, field_name or "containers[%s]" % spec.name, files),
        resources=dict(memory=res.memory_limit, memory_request=res.memory_request,
                       cpu=res.cpu_limit, cpu_request=res.cpu_request),
        share=sorted(share if share is not None else spec.share),
        # With restart rules, the engine's policy that honours them (_restart.engine_policy).
        restart_policy="Never" if role == ROLE_INIT else engine_policy(
            restart_policy or spec.restart_policy, spec.restart_rules),
        cgroup_parent=parent,
    )
    if spec.restart_rules and role != ROLE_INIT:
        # Only a container with rules has this key: every other container hashes as before. The planner
        # starts a stopped one on the exit codes the rules name, where the engine's policy cannot.
        config["restart_rules"] = dict(policy=restart_policy or spec.restart_policy,
                                       rules=[[operator, list(values)] for operator, values in spec.restart_rules])
    contents = dict((m.volume, files[m.volume].digest) for m in spec.mounts if files and m.volume in files)
    if contents:
        # The content of the file volumes it mounts: a changed key recreates exactly their consumers.
        config["volume_content"] = contents
    if spec.security:
        config["security"] = dict(spec.security)
    if spec.env_fields:
        # Only a container that uses fieldRef/resourceFieldRef values known at creation has this key:
        # the configuration (and hash) of every other container is what it always was.
        config["env_fields"] = dict(spec.env_fields)
    # On every member, even empty: its absence tells the export that an older podkit made the container.
    origin = member_origin(config, spec, volumes, files)
    labels = {LABEL_ORIGIN: json.dumps(origin, sort_keys=True, separators=(",", ":"))}
    return Wanted(key=spec.name, role=role, name=member_name(pod, spec.name), image=spec.image, pull=spec.pull,
                  config=config, secret_env=tuple(spec.secret_env), seccomp_json=spec.seccomp_json, labels=labels)


def member_origin(config: Dict[str, Any], spec: ContainerSpec, volumes: Mapping[str, Volume],
                  files_wanted: Optional[Mapping[str, FilesWanted]] = None) -> Dict[str, Any]:
    """What the export needs and Docker's settings lose (io.podkit.origin): never a secret value.

    ``secret`` names the env variables whose values came from Secrets; ``fields`` the fieldRef and
    resourceFieldRef sources; ``templates`` the env values, command and args as written when they hold
    a ``$`` (Docker has them expanded); ``non_root`` runAsNonRoot; ``probes`` the probes podkit-guard
    runs; ``seccomp`` a Localhost profile's file; ``post_start`` the postStart hook; ``downward`` the
    sources of the downwardAPI volumes it mounts; ``refs`` the ConfigMap or Secret key each env variable
    was taken from; ``sources`` the configMap, secret and projected volume sources it mounts (names,
    keys, paths and modes: the export gives back the ConfigMaps and Secrets by their own names); ``keys``
    the key names of each object a projected volume takes whole, where it takes more than one (their
    files share the volume's top directory: only this tells whose each is).
    """
    origin: Dict[str, Any] = {}
    secret = sorted(spec.secret_env)
    if secret:
        origin["secret"] = secret
    if spec.env_refs:
        origin["refs"] = dict((k, list(v)) for k, v in sorted(spec.env_refs.items()))
    if config.get("env_fields"):
        origin["fields"] = dict(config["env_fields"])
    templates: Dict[str, Any] = {}
    env = dict((k, v) for k, v in config["env"].items() if "$" in v and k not in secret)
    if env:
        templates["env"] = env
    for key in ("command", "args"):
        if config.get(key) and any("$" in item for item in config[key]):
            templates[key] = list(config[key])
    if templates:
        origin["templates"] = templates
    if (config.get("security") or {}).get("non_root"):
        # runAsNonRoot is checked when the container is made; Docker keeps no trace of it.
        origin["non_root"] = True
    if spec.own_restart_policy:
        # The container's own restartPolicy (and rules): Docker's policy alone does not say it.
        origin["restart"] = dict(policy=spec.own_restart_policy, rules=rules_manifest(spec.restart_rules))
    if spec.probes:
        # Run by podkit-guard from the pod's record; Docker's settings hold no trace of them.
        origin["probes"] = dict((kind, probe_manifest(probe)) for kind, probe in sorted(spec.probes.items()))
    localhost = (config.get("security") or {}).get("seccomp_localhost")
    if localhost:
        # Docker keeps the profile's JSON only, not the file it came from.
        origin["seccomp"] = {"profile": localhost["profile"], "root": spec.seccomp_root}
    post_start = (config.get("security") or {}).get("post_start")
    if post_start:
        origin["post_start"] = post_start
    # The file volumes' sources. downwardAPI files hold values of the running pod (its uid, the limits):
    # the export gives the source back, not a ConfigMap of what the files said when it ran.
    for mount in spec.mounts:
        files = volumes[mount.volume].files if mount.volume in volumes else None
        if files is None:
            continue
        if files.kind == "downwardAPI":
            origin.setdefault("downward", {})[mount.volume] = dict(files.source)
        else:
            origin.setdefault("sources", {})[mount.volume] = {files.kind: dict(files.source)}
            whole = files_wanted[mount.volume].whole if files_wanted and mount.volume in files_wanted else {}
            if whole:
                origin.setdefault("keys", {})[mount.volume] = dict(whole)
    return origin


def pod_cgroup_limits(spec: PodSpec, version: int) -> CgroupLimits:
    """The pod cgroup's limits as the kubelet derives them on cgroup ``version``; no limit is written as
    'unlimited'."""
    resources = pod_resources(spec)
    return limits_from(
        memory_bytes=resources.memory_limit if resources.memory_limit is not None else UNLIMITED,
        cpu_millis=resources.cpu_limit if resources.cpu_limit is not None else UNLIMITED,
        # The kubelet gives a pod without CPU requests the minimum shares, not the default 1024.
        cpu_request_millis=resources.cpu_request or 0,
        version=version)


def cgroup_parent(host: HostCgroups, pod: str, given: Optional[str], field_name: str = "cgroup_parent") -> str:
    if given:
        validate_name(given, host, field_name)
        return given
    return default_parent(pod, host.driver)
