# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Services on one host: a name the workloads' pods resolve with Docker's own DNS.

One cycle, after the workloads of a pods call are converged:

1. parse (``parse_service``): a Service document's name, namespace, selector and what one host
   cannot do with it (a type that publishes on the host, a clusterIP: named in warnings);
2. plan (``plan_network``): the namespace's user-defined network (``podkit-<namespace>``, labelled
   ``io.podkit.network``: podkit's, never a foreign one), and for each pod of the workloads the
   aliases it should have there: the name and ``<name>.<namespace>`` of every Service selecting it
   while it is Ready, none when it is not (it stays on the network, so it still resolves the
   others), a StatefulSet pod its ``<pod>.<serviceName>``. Pure, so check mode prints it;
3. apply (``apply_network``): the pod's sandbox (which owns the pod's network namespace: its members
   join it) connected with those aliases; Docker cannot change a connection's aliases, so a change is
   a disconnect and a connect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._docker import Container
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._labels import LABEL_NETWORK

_SERVICE_FIELDS = ("selector", "ports", "type", "clusterIP", "clusterIPs", "sessionAffinity", "publishNotReadyAddresses",
                   "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy", "externalTrafficPolicy")


@dataclass
class Service:
    name: str
    namespace: str
    selector: Dict[str, str]
    not_ready_too: bool = False          # publishNotReadyAddresses
    warnings: List[str] = field(default_factory=list)

    def aliases(self) -> List[str]:
        return [self.name, "%s.%s" % (self.name, self.namespace)]


@dataclass
class Attach:
    """One pod's place on its namespace's network: the aliases it should have, and what it has (None: not on it)."""
    pod: str
    sandbox: str
    network: str
    aliases: List[str]
    current: Optional[List[str]] = None

    def __str__(self) -> str:
        verb = "connect" if self.current is None else "reconnect"
        return "%s %s to network %s as %s" % (verb, self.pod, self.network, ", ".join(self.aliases) or "(no alias)")


def network_name(namespace: str) -> str:
    return "podkit-%s" % namespace


def parse_service(doc: Dict[str, Any], where: str) -> Service:
    metadata = doc.get("metadata") or {}
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise PodkitError("%s.metadata.name is required." % where)
    spec = doc.get("spec") or {}
    if not isinstance(spec, dict):
        raise PodkitError("%s.spec must be a mapping." % where)
    service = Service(name=name, namespace=metadata.get("namespace") or "default",
                      selector=dict((str(k), str(v)) for k, v in (spec.get("selector") or {}).items()),
                      not_ready_too=bool(spec.get("publishNotReadyAddresses")))
    for key in spec:
        if key not in _SERVICE_FIELDS:
            service.warnings.append("%s.spec.%s: not done on one host (podkit gives the Service a name only)"
                                    % (where, key))
    kind = spec.get("type") or "ClusterIP"
    if kind in ("NodePort", "LoadBalancer", "ExternalName"):
        service.warnings.append("%s.spec.type: %s is not published on the host by podkit (never 0.0.0.0 by surprise);"
                                " the pods answer to the Service's name on network %s. Publish a port with a"
                                " container's hostPort and hostIP if the host must expose it"
                                % (where, kind, network_name(service.namespace)))
    if spec.get("clusterIP") not in (None, "None", ""):
        service.warnings.append("%s.spec.clusterIP: one host has no virtual IP: the name answers with every Ready"
                                " pod's address instead" % where)
    if not service.selector:
        service.warnings.append("%s.spec.selector: a Service without a selector names no pod here" % where)
    return service


def network_record(labels: Dict[str, str], services: List[Service], service_name: Optional[str]) -> Dict[str, Any]:
    """What podkit-guard keeps of a workload's place on its namespace's network (``keep_aliases``): its pods'
    labels, the Services of its pods call and a StatefulSet's serviceName."""
    return dict(labels=dict(labels), service_name=service_name,
                services=[dict(name=s.name, namespace=s.namespace, selector=dict(s.selector),
                               not_ready_too=s.not_ready_too) for s in services])


def services_of(record: Dict[str, Any]) -> List[Service]:
    return [Service(name=s["name"], namespace=s["namespace"], selector=dict(s.get("selector") or {}),
                    not_ready_too=bool(s.get("not_ready_too"))) for s in record.get("services") or []]


def wanted_aliases(pod_labels: Dict[str, str], namespace: str, ready: bool, services: List[Service],
                   stateful: Optional[Tuple[str, str]] = None) -> List[str]:
    """The aliases of one pod: every selecting Service's names while Ready (or when it publishes not-Ready
    addresses), and a StatefulSet pod's ``<pod>.<serviceName>`` (``stateful`` = (pod, serviceName))."""
    aliases: List[str] = []
    for service in services:
        if service.namespace != namespace or not service.selector:
            continue
        if all(pod_labels.get(k) == v for k, v in service.selector.items()) and (ready or service.not_ready_too):
            aliases.extend(a for a in service.aliases() if a not in aliases)
    if stateful is not None and stateful[1] and ready:
        aliases.extend(["%s.%s" % stateful, "%s.%s.%s" % (stateful[0], stateful[1], namespace)])
    return aliases


def observed_aliases(attrs: Dict[str, Any], network: str) -> Optional[List[str]]:
    """The aliases a sandbox has on ``network`` (Docker adds the container's short ID and its hostname: not
    ours to compare), or None when it is not on it."""
    sandbox = Container(attrs)
    networks = sandbox.networks
    if network not in networks:
        return None
    docker_own = (sandbox.id[:12], sandbox.config.get("Hostname"))
    return [a for a in (networks[network].get("Aliases") or []) if a not in docker_own]


def plan_network(pods: List[Tuple[str, str, Dict[str, Any], List[str]]], network: str) -> List[Attach]:
    """(pod, sandbox name, sandbox inspect data, wanted aliases) -> the connections to make or change."""
    plan = []
    for pod, sandbox, attrs, aliases in pods:
        current = observed_aliases(attrs, network)
        if current is not None and sorted(current) == sorted(aliases):
            continue
        plan.append(Attach(pod, sandbox, network, aliases, current))
    return plan


def ensure_network(api: Any, namespace: str, check_mode: bool) -> Optional[str]:
    """The namespace's network, made when missing ("create network ..." returned, None when there); a network
    of that name without podkit's label is a clear error, never used."""
    name = network_name(namespace)
    found = [n for n in api.networks(names=[name]) if n.get("Name") == name]
    if found:
        if (found[0].get("Labels") or {}).get(LABEL_NETWORK) != namespace:
            raise PodkitError("network %s exists but is not podkit's (no %s=%s label); podkit never uses a network it"
                              " did not make: rename or remove it." % (name, LABEL_NETWORK, namespace))
        return None
    if not check_mode:
        api.create_network(name, driver="bridge", labels={LABEL_NETWORK: namespace})
    return "create network %s" % name


def apply_attach(api: Any, attach: Attach) -> None:
    if attach.current is not None:
        api.disconnect_container_from_network(attach.sandbox, attach.network)
    api.connect_container_to_network(attach.sandbox, attach.network, aliases=attach.aliases or None)
