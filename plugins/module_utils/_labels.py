# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The label schema and the names of what podkit creates (as the kubelet's labels.go).

Every container podkit makes carries ``io.podkit.pod``: the collection never touches a container
without it. The configuration hash decides recreation, so ``config_hashes`` must stay stable
across releases (tests/unit/test_config_hash.py pins it). No third-party import here: facts,
the Docker layer and the reconcile cycle all read these names.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Mapping, Optional, Tuple

# shared/DESIGN.md, "Names". Every label podkit sets starts with this prefix; users may not set one.
LABEL_PREFIX = "io.podkit."
LABEL_POD = "io.podkit.pod"
LABEL_ROLE = "io.podkit.role"
LABEL_CONTAINER = "io.podkit.container"
LABEL_HASH = "io.podkit.config-hash"
LABEL_SANDBOX_ID = "io.podkit.sandbox-id"
# Per-field hashes of the canonical configuration, so a recreation can say which field changed.
LABEL_FIELDS = "io.podkit.config-fields"
# The sandbox records that its pod shares the PID namespace; pod_container follows it by default.
LABEL_SHARE_PID = "io.podkit.share-pid"
# Set on the sandbox by the pod module: a pod's QoS class is not recoverable from Docker's settings alone.
LABEL_QOS = "io.podkit.qos-class"
# Set on the sandbox when the manifest gives metadata.namespace: recorded and reported, never hashed.
LABEL_NAMESPACE = "io.podkit.namespace"
# On the Docker volume behind a persistentVolumeClaim: it outlives the pods that mount it.
LABEL_CLAIM = "io.podkit.claim"
# On a native sidecar (an init container with restartPolicy Always): its place among the init
# containers, so that a stopped pod stops its sidecars after the members, in reverse order.
LABEL_SIDECAR = "io.podkit.sidecar"
# A container's preStop hook (JSON), read back when it is stopped or removed, whatever the spec then says.
LABEL_PRE_STOP = "io.podkit.pre-stop"
# What a member's configuration says that Docker's settings lose (JSON, on every member; {} when none): the
# names of its env variables taken from Secrets (never their values), fieldRef/resourceFieldRef sources,
# the unexpanded $(VAR) texts and the postStart hook. Read by the export (_export); never hashed.
LABEL_ORIGIN = "io.podkit.origin"
# On the sandbox of a workload's pod (_workloads): the workload that owns it and its template's revision.
# Never hashed, so a pod of no workload hashes as before.
LABEL_OWNER_KIND = "io.podkit.owner-kind"
LABEL_OWNER_NAME = "io.podkit.owner-name"
LABEL_REVISION = "io.podkit.revision"
# On the sandbox of an Indexed Job's pod (_jobs): its completion index (Kubernetes' job-completion-index).
LABEL_JOB_INDEX = "io.podkit.completion-index"
OWNER_LABELS = (LABEL_OWNER_KIND, LABEL_OWNER_NAME, LABEL_REVISION, LABEL_JOB_INDEX)
# On the user-defined network podkit makes per namespace for Service names (_services): its namespace.
LABEL_NETWORK = "io.podkit.network"

ROLE_SANDBOX = "sandbox"
ROLE_MEMBER = "member"
ROLE_INIT = "init"
# Facts only: a container without podkit labels that joins a pod's namespaces.
ROLE_UNMANAGED = "unmanaged"

QOS_CLASSES = ("Guaranteed", "Burstable", "BestEffort")


def sandbox_name(pod: str) -> str:
    return "%s_sandbox" % pod


def member_name(pod: str, container: str) -> str:
    return "%s_%s" % (pod, container)


def volume_name(pod: str, volume: str) -> str:
    """The Docker volume behind a pod's emptyDir volume."""
    return "%s_%s" % (pod, volume)


def digest(value: Any) -> str:
    """The SHA-256 (hex) of ``value`` as sorted-key, compact JSON: the configuration hashes are cut from it, so its
    bytes must never change."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def config_hashes(config: Mapping[str, Any]) -> Tuple[str, Dict[str, str]]:
    """(io.podkit.config-hash, {field: hash}) of a canonical configuration."""
    fields = dict((k, digest(v)[:8]) for k, v in sorted(config.items()))
    return digest(dict(config))[:16], fields


def parse_fields(text: Optional[str]) -> Dict[str, str]:
    """The per-field hashes of an io.podkit.config-fields label."""
    result = {}
    for item in (text or "").split(","):
        key, sep, value = item.partition("=")
        if sep:
            result[key] = value
    return result


def container_labels(pod: str, role: str, key: str, config: Mapping[str, Any], extra: Mapping[str, str]) -> Dict[str, str]:
    """The labels a container is created with: the user's (``config["labels"]``), ``extra``, then
    podkit's own, which win."""
    config_hash, fields = config_hashes(config)
    labels = dict(config.get("labels") or {})
    labels.update(extra)
    labels.update({LABEL_POD: pod, LABEL_ROLE: role, LABEL_CONTAINER: key,
                   LABEL_HASH: config_hash, LABEL_FIELDS: ",".join("%s=%s" % kv for kv in sorted(fields.items()))})
    return labels
