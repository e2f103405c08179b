# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pod as podkit understands it: what the user asked for, validated and normalised.

A PodSpec is built either from a Kubernetes v1 Pod manifest or from the pod module's
native options; both paths end in the same dataclasses, so everything downstream
(planning, hashing, the cgroup limits, the QoS class) has one input shape.

Quantities are already parsed here: memory in bytes, CPU in millicores.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

RESTART_POLICIES = ("Always", "OnFailure", "Never")
PULL_POLICIES = ("missing", "always", "never")
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
    working_dir: Optional[str] = None
    user: Optional[str] = None
    mounts: List[Mount] = field(default_factory=list)
    ports: List[PortMapping] = field(default_factory=list)   # published by the sandbox
    resources: Resources = field(default_factory=Resources)
    share: Tuple[str, ...] = ("net", "ipc")
    restart_policy: str = "Always"
    pull: str = "missing"
    init: bool = False


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
