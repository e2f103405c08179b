# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pod fields that mean nothing on one Docker host, and what the ``validate`` option does with them.

Real Pod YAML carries what a cluster needs and one host does not: scheduling (nodeSelector,
affinity, tolerations, priority), the service account, what ``kubectl``/``kubeadm`` print
(``status: {}``, ``metadata.creationTimestamp: null``), ``dnsPolicy: ClusterFirst``. Refusing them
refuses the manifests users already have; dropping them in silence hides that the pod is not what
its author reads. So ``strip_hostless`` takes them out of the manifest before it is parsed and
names each one; ``validate`` then decides: ``warn`` (the default) names them in the module's
``warnings``, ``strict`` refuses the manifest naming them, ``ignore`` says nothing.

Everything else podkit does not implement stays an error naming the field (``_spec``).
Pure: no I/O, no third-party import.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError

VALIDATE_MODES = ("strict", "warn", "ignore")
DEFAULT_VALIDATE = "warn"

# The argument spec entry, shared by the pod and pods modules (doc fragment podkit.docker.docker.validate).
VALIDATE_ARG = dict(type="str", default=DEFAULT_VALIDATE, choices=list(VALIDATE_MODES))

_SCHEDULING = "scheduling: there is one host and no scheduler"
_SERVICE_ACCOUNT = "there is no API server to give the pod a service account token"
_API_PRINTED = "what the API server or kubectl prints; it has no meaning in a request"

# metadata fields an API server sets (kubectl get -o yaml prints them) or that only it acts on.
_METADATA = {
    "creationTimestamp": _API_PRINTED,
    "uid": _API_PRINTED,
    "resourceVersion": _API_PRINTED,
    "selfLink": _API_PRINTED,
    "generation": _API_PRINTED,
    "managedFields": _API_PRINTED,
    "deletionTimestamp": _API_PRINTED,
    "deletionGracePeriodSeconds": _API_PRINTED,
    "ownerReferences": "there are no controllers to own the pod",
    "finalizers": "there are no controllers to finalize the pod",
    "generateName": "the pod keeps metadata.name (or the module's name); no random suffix is added",
}

_SPEC = {
    "nodeSelector": _SCHEDULING,
    "nodeName": _SCHEDULING,
    "affinity": _SCHEDULING,
    "tolerations": _SCHEDULING,
    "topologySpreadConstraints": _SCHEDULING,
    "schedulerName": _SCHEDULING,
    "schedulingGates": _SCHEDULING,
    "priority": "priority and preemption need a scheduler",
    "priorityClassName": "priority and preemption need a scheduler",
    "preemptionPolicy": "priority and preemption need a scheduler",
    "serviceAccountName": _SERVICE_ACCOUNT,
    "serviceAccount": _SERVICE_ACCOUNT,
    "automountServiceAccountToken": _SERVICE_ACCOUNT,
    "enableServiceLinks": "there are no Services to link",
    "readinessGates": "there are no controllers to set the conditions",
    "overhead": "a RuntimeClass's overhead is for the scheduler",
}

# dnsPolicy values and what they mean here. Default (the host's resolv.conf) is what Docker does;
# None takes dnsConfig alone. ClusterFirst* ask for a cluster DNS service there is none of.
_DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")

_CONTAINER = {
    "terminationMessagePath": "there is no API server to report the termination message to",
    "terminationMessagePolicy": "there is no API server to report the termination message to",
}

# Resources Docker enforces per container; anything else (extended resources, ephemeral-storage)
# is for the scheduler and the device plugins.
_ENFORCED_RESOURCES = ("memory", "cpu")


def strip_hostless(manifest: Dict[str, Any]) -> Tuple[Dict[str, Any], List[Tuple[str, str]]]:
    """(a copy of ``manifest`` without the fields that mean nothing on one host, [(path, why)]).

    ``manifest`` is a parsed Pod mapping; what is not a mapping where one is expected is left for
    the parser to refuse with its own message.
    """
    found: List[Tuple[str, str]] = []
    result = copy.deepcopy(manifest)
    if "status" in result:
        found.append(("status", _API_PRINTED))
        del result["status"]
    metadata = result.get("metadata")
    if isinstance(metadata, dict):
        for key, why in _METADATA.items():
            if key in metadata:
                found.append(("metadata.%s" % key, why))
                del metadata[key]
    spec = result.get("spec")
    if not isinstance(spec, dict):
        return result, found
    for key, why in _SPEC.items():
        if key in spec:
            found.append(("spec.%s" % key, why))
            del spec[key]
    policy = spec.get("dnsPolicy")
    if policy is not None:
        if policy not in _DNS_POLICIES:
            raise PodkitError("spec.dnsPolicy: %r is not one of %s." % (policy, ", ".join(_DNS_POLICIES)))
        if policy.startswith("ClusterFirst"):
            found.append(("spec.dnsPolicy", "%s asks for the cluster's DNS service; the pod uses the host's resolvers"
                          " (as dnsPolicy: Default) and spec.dnsConfig" % policy))
        # Default is what Docker does; None is honoured by the parser (dnsConfig alone).
        if policy != "None":
            del spec["dnsPolicy"]
    for key in ("initContainers", "containers"):
        containers = spec.get(key)
        if not isinstance(containers, list):
            continue
        for index, container in enumerate(containers):
            if isinstance(container, dict):
                found.extend(_strip_container(container, "spec.%s[%d]" % (key, index)))
    return result, found


def _strip_container(container: Dict[str, Any], path: str) -> List[Tuple[str, str]]:
    found = []
    for key, why in _CONTAINER.items():
        if key in container:
            found.append(("%s.%s" % (path, key), why))
            del container[key]
    resources = container.get("resources")
    if isinstance(resources, dict):
        for section in ("limits", "requests"):
            values = resources.get(section)
            if not isinstance(values, dict):
                continue
            for name in [n for n in values if n not in _ENFORCED_RESOURCES]:
                found.append(("%s.resources.%s.%s" % (path, section, name),
                              "only memory and cpu are enforced on a Docker host; %s is for the scheduler and device"
                              " plugins" % name))
                del values[name]
    return found


def check_validate(mode: str) -> str:
    if mode not in VALIDATE_MODES:
        raise PodkitError("validate: %r is not one of %s." % (mode, ", ".join(VALIDATE_MODES)))
    return mode


def judge(found: List[Tuple[str, str]], mode: str, where: str = "") -> List[str]:
    """The warnings for ``found`` under ``validate: mode``; strict refuses the manifest naming them all."""
    check_validate(mode)
    if not found or mode == "ignore":
        return []
    lines = ["%s%s: ignored, %s." % (where, path, why) for path, why in found]
    if mode == "strict":
        raise PodkitError("validate is strict and the manifest has fields that mean nothing on one Docker host: %s"
                          " Remove them, or set validate: warn to accept them with a warning."
                          % " ".join(lines))
    return lines
