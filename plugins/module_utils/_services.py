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

A Service of type NodePort or LoadBalancer is published on the host only on the addresses the pods module's
``nodeport_addresses`` names (kube-proxy's ``--nodeport-addresses``; empty by default, so never 0.0.0.0 by
surprise). ``plan_publications`` (pure, before the engine is reached) makes each such Service a proxy pod,
``svclb-<name>`` as k3s' servicelb names its pods: a busybox ``nc`` per port, listening on the Service's
``port`` and published as the pod's hostPort on each address (the ``nodePort``; a LoadBalancer's ``port``),
that opens a connection to ``<name>.<namespace>:<targetPort>`` for each one it accepts. The name answers with
the Ready pods only, so the proxy forwards to them alone, and Docker's DNS spreads the connections over them.
The proxy pod is an ordinary podkit pod (owner ``Service/<name>``): podkit-guard keeps it whole and on the
namespace's network, pod_facts shows it.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

from ansible_collections.podkit.docker.plugins.module_utils._docker import Container
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._labels import LABEL_NETWORK, digest
from ansible_collections.podkit.docker.plugins.module_utils._spec import check_ip, port_number

_SERVICE_FIELDS = ("selector", "ports", "type", "clusterIP", "clusterIPs", "sessionAffinity", "publishNotReadyAddresses",
                   "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy", "externalTrafficPolicy")


# The range Kubernetes allocates nodePorts from by default (the API server's --service-node-port-range).
NODE_PORTS = (30000, 32767)
PUBLISHED_TYPES = ("NodePort", "LoadBalancer")
# The proxy pod's container: an image with busybox's sh and nc (nc -ll -e: one child a connection).
PROXY_CONTAINER = "proxy"


@dataclass
class ServicePort:
    """One of a published Service's ``spec.ports`` (read only for NodePort and LoadBalancer Services)."""
    where: str
    port: int
    target: Union[int, str]
    node_port: Optional[int] = None
    protocol: str = "TCP"


@dataclass
class Service:
    name: str
    namespace: str
    selector: Dict[str, str]
    not_ready_too: bool = False          # publishNotReadyAddresses
    warnings: List[str] = field(default_factory=list)
    kind: str = "ClusterIP"              # spec.type
    where: str = ""
    labels: Dict[str, str] = field(default_factory=dict)        # metadata.labels: the proxy pod's (prune_selector)
    ports: List[ServicePort] = field(default_factory=list)
    params: Dict[str, Any] = field(default_factory=dict)        # its entry's merged pod-module options
    absent: bool = False                 # its entry says state: absent

    @property
    def key(self) -> str:
        return "%s/%s" % (self.namespace, self.name)

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
    labels = metadata.get("labels") or {}
    service = Service(name=name, namespace=metadata.get("namespace") or "default",
                      selector=dict((str(k), str(v)) for k, v in (spec.get("selector") or {}).items()),
                      not_ready_too=bool(spec.get("publishNotReadyAddresses")), kind=spec.get("type") or "ClusterIP",
                      where=where, labels=dict((str(k), str(v)) for k, v in labels.items()) if isinstance(
                          labels, dict) else {})
    for key in spec:
        if key not in _SERVICE_FIELDS:
            service.warnings.append("%s.spec.%s: not done on one host (podkit gives the Service a name only)"
                                    % (where, key))
    if service.kind == "ExternalName":
        service.warnings.append("%s.spec.type: ExternalName is not done on one host: Docker's DNS has no CNAME of"
                                " podkit's making" % where)
    elif service.kind in PUBLISHED_TYPES:
        service.ports = parse_ports(spec.get("ports"), where + ".spec.ports")
        if spec.get("sessionAffinity") == "ClientIP":
            service.warnings.append("%s.spec.sessionAffinity: ClientIP is not done on one host: each connection goes"
                                    " to a Ready pod Docker's DNS picks" % where)
        if spec.get("externalTrafficPolicy") == "Local":
            service.warnings.append("%s.spec.externalTrafficPolicy: Local keeps every connection on this host, as"
                                    " here, but the pods see the proxy pod's address, not the client's" % where)
    if spec.get("clusterIP") not in (None, "None", ""):
        service.warnings.append("%s.spec.clusterIP: one host has no virtual IP: the name answers with every Ready"
                                " pod's address instead" % where)
    if not service.selector:
        service.warnings.append("%s.spec.selector: a Service without a selector names no pod here" % where)
    return service


def parse_ports(value: Any, where: str) -> List[ServicePort]:
    """A NodePort or LoadBalancer Service's ``spec.ports``, checked as the API server checks them."""
    if not isinstance(value, list) or not value:
        raise PodkitError("%s: a NodePort or LoadBalancer Service needs at least one port (port, and targetPort when"
                          " the pods listen on another)." % where)
    ports = []
    for index, item in enumerate(value):
        place = "%s[%d]" % (where, index)
        if not isinstance(item, dict):
            raise PodkitError("%s must be a mapping (port, targetPort, nodePort, protocol, name)." % place)
        port = port_number(item.get("port"), place + ".port", strings=False)
        target = item.get("targetPort", port)
        if isinstance(target, str) and target.isdigit():
            target = int(target)
        if isinstance(target, str):
            if not target:
                raise PodkitError("%s.targetPort: give a port number or the name of a container's port." % place)
        else:
            target = port_number(target, place + ".targetPort", strings=False)
        node_port = item.get("nodePort")
        if node_port is not None:
            node_port = port_number(node_port, place + ".nodePort", strings=False)
        protocol = item.get("protocol") or "TCP"
        if protocol not in ("TCP", "UDP", "SCTP"):
            raise PodkitError("%s.protocol: %r is not a protocol; give TCP, UDP or SCTP." % (place, protocol))
        ports.append(ServicePort(place, port, target, node_port, protocol))
    return ports


def check_addresses(value: Any) -> List[str]:
    """The pods module's ``nodeport_addresses``, each an IP address (before the engine is reached)."""
    addresses = []
    for index, item in enumerate(value or []):
        text = check_ip(str(item), "nodeport_addresses[%d]" % index,
                        "give the host's addresses to publish NodePort and LoadBalancer Services on, such as 127.0.0.1")
        # One spelling an address (::0:1 is ::1): an address given twice is seen, and the proxy pod's hostIP and
        # revision do not follow how it was written.
        addresses.append(str(ipaddress.ip_address(text)))
    if len(set(addresses)) != len(addresses):
        raise PodkitError("nodeport_addresses: %s names an address twice; give each once." % ", ".join(addresses))
    return addresses


def proxy_pod_name(service: Service) -> str:
    """The proxy pod of a published Service: ``svclb-<name>`` (k3s' servicelb names its pods so), and the
    namespace in it for a Service outside ``default``."""
    if service.namespace == "default":
        return "svclb-%s" % service.name
    return "svclb-%s-%s" % (service.namespace, service.name)


def allocated_node_port(service: Service, port: ServicePort) -> int:
    """A nodePort for a port that names none: where the API server picks a free one at random, one host picks
    one from the same range by the Service's namespace, name and port, so every run picks the same."""
    seed = "%s/%s/%d" % (service.namespace, service.name, port.port)
    span = NODE_PORTS[1] - NODE_PORTS[0] + 1
    return NODE_PORTS[0] + int(hashlib.sha256(seed.encode("utf-8")).hexdigest(), 16) % span


@dataclass
class Publication:
    """A published Service's proxy pod, or (``remove``) the one of a Service that is no longer published."""
    service: Service
    pod: str
    addresses: List[str] = field(default_factory=list)
    forwards: List[Tuple[int, int, int]] = field(default_factory=list)     # (Service port, host port, target port)
    image: str = ""
    remove: bool = False

    def lines(self) -> List[str]:
        return ["%s:%d -> %s.%s:%d" % ("[%s]" % a if ":" in a else a, host, self.service.name, self.service.namespace,
                                       target)
                for port, host, target in self.forwards for a in self.addresses]

    def manifest(self) -> Dict[str, Any]:
        """The proxy Pod: one ``nc`` listener a Service port, each restarted should it end."""
        target = "%s.%s" % (self.service.name, self.service.namespace)
        loops = ["while :; do nc -ll -p %d -e nc %s %d; sleep 1; done &" % (port, target, dest)
                 for port, _host, dest in self.forwards]
        metadata: Dict[str, Any] = {"name": self.pod, "labels": dict(self.service.labels)}
        if self.service.namespace != "default":
            metadata["namespace"] = self.service.namespace
        container = {
            "name": PROXY_CONTAINER, "image": self.image, "command": ["sh", "-c", " ".join(loops + ["wait"])],
            "ports": [{"containerPort": port, "hostPort": host, "hostIP": address, "protocol": "TCP"}
                      for port, host, _dest in self.forwards for address in self.addresses],
            "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                                "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
            "resources": {"limits": {"memory": "32Mi"}},
        }
        return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": {"containers": [container]}}

    def revision(self) -> str:
        return digest(self.manifest())[:10]


def _named_target(service: Service, port: ServicePort, templates: List[Tuple[str, Dict[str, Any]]]) -> int:
    """A targetPort given by name: the containerPort of that name in the templates the Service selects."""
    for namespace, template in templates:
        labels = dict((str(k), str(v)) for k, v in ((template.get("metadata") or {}).get("labels") or {}).items())
        if namespace != service.namespace or not service.selector or \
                any(labels.get(k) != v for k, v in service.selector.items()):
            continue
        for container in (template.get("spec") or {}).get("containers") or []:
            for item in container.get("ports") or []:
                if isinstance(item, dict) and item.get("name") == port.target and isinstance(item.get("containerPort"), int):
                    return item["containerPort"]
    raise PodkitError("%s.targetPort: no container of the pods the Service selects names a port %r; name one of"
                      " their containerPorts or give the number." % (port.where, port.target))


def _shape(service: Service) -> Tuple[Any, ...]:
    return (service.kind, sorted(service.selector.items()),
            [(p.port, str(p.target), p.node_port, p.protocol) for p in service.ports])


def plan_publications(services: List[Service], templates: List[Tuple[str, Dict[str, Any]]], addresses: List[str],
                      image: str) -> Tuple[List[Publication], List[str]]:
    """(the proxy pods to converge or remove, warnings) for the Services of a pods call; ``templates`` are the
    (namespace, pod template) of its workloads, for a targetPort given by name. Pure: raises PodkitError naming
    the field before the engine is reached."""
    publications: List[Publication] = []
    warnings: List[str] = []
    taken: Dict[Tuple[str, int], str] = {}
    pods: Dict[str, str] = {}
    given: Dict[str, Service] = {}
    for service in services:
        first = given.setdefault(service.key, service)
        if first is not service:
            if _shape(first) != _shape(service) or first.absent != service.absent:
                raise PodkitError("%s: Service %s is also given by %s, differently; give each Service once."
                                  % (service.where, service.key, first.where))
            continue
        pod = proxy_pod_name(service)
        if service.kind not in PUBLISHED_TYPES or not addresses or service.absent:
            if service.kind in PUBLISHED_TYPES and not addresses and not service.absent:
                warnings.append("%s.spec.type: %s is not published on the host: nodeport_addresses names no address"
                                " (never 0.0.0.0 by surprise); the pods answer to the Service's name on network %s."
                                " Set nodeport_addresses (the pods role's podkit_pods_nodeport_addresses), e.g. to"
                                " 127.0.0.1, to publish it." % (service.where, service.kind, network_name(service.namespace)))
            publications.append(Publication(service, pod, remove=True))
            continue
        if pod in pods:
            raise PodkitError("%s.metadata.name: the proxy pod of Service %s would be named %s like that of Service %s;"
                              " rename one of them." % (service.where, service.key, pod, pods[pod]))
        pods[pod] = service.key
        forwards = []
        for port in service.ports:
            if port.protocol != "TCP":
                warnings.append("%s.protocol: %s is not published (podkit's proxy forwards TCP only)"
                                % (port.where, port.protocol))
                continue
            target = port.target if isinstance(port.target, int) else _named_target(service, port, templates)
            if service.kind == "LoadBalancer":
                host = port.port
            else:
                host = port.node_port if port.node_port is not None else allocated_node_port(service, port)
            for address in addresses:
                if (address, host) in taken:
                    raise PodkitError("%s: port %d on %s is also published by %s; give one of them another %s."
                                      % (port.where, host, address, taken[(address, host)],
                                         "port" if service.kind == "LoadBalancer" else "nodePort"))
                taken[(address, host)] = port.where
            forwards.append((port.port, host, target))
        if forwards:
            publications.append(Publication(service, pod, list(addresses), forwards, image))
        else:
            publications.append(Publication(service, pod, remove=True))
    return publications, warnings


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
