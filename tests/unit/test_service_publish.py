"""Publishing NodePort and LoadBalancer Services on one host (_services.plan_publications): pure, before the
engine is reached. The integration test (test_workloads.py) reads the published port from Docker and the
kernel; these hold the rules."""

import pytest

from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._services import (
    NODE_PORTS, allocated_node_port, check_addresses, parse_service, plan_publications, proxy_pod_name)

WHERE = "pods[0].manifest[1]"


def service(name="web", kind="NodePort", ports=None, namespace=None, **spec):
    metadata = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return parse_service({"apiVersion": "v1", "kind": "Service", "metadata": metadata,
                          "spec": dict(type=kind, selector={"app": name},
                                       ports=[{"port": 80, "targetPort": 8080}] if ports is None else ports, **spec)},
                         WHERE)


def template(name="web", ports=None):
    return {"metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": "x", "ports": ports or []}]}}


def plan(services, addresses=("127.0.0.1",), templates=()):
    return plan_publications(services, list(templates), list(addresses), "podkit/busybox:latest")


def test_without_addresses_nothing_is_published_and_a_warning_names_the_field_and_the_option():
    publications, warnings = plan([service()], addresses=())
    assert [p.remove for p in publications] == [True]
    assert len(warnings) == 1 and warnings[0].startswith(WHERE + ".spec.type: NodePort is not published on the host")
    assert "nodeport_addresses" in warnings[0] and "0.0.0.0" in warnings[0]


def test_a_nodeport_is_published_on_its_node_port_on_each_address():
    svc = service(ports=[{"port": 80, "targetPort": 8080, "nodePort": 30080}])
    (publication,), warnings = plan([svc], addresses=("127.0.0.1", "::1"))
    assert warnings == [] and publication.pod == "svclb-web" and not publication.remove
    assert publication.lines() == ["127.0.0.1:30080 -> web.default:8080", "[::1]:30080 -> web.default:8080"]
    container = publication.manifest()["spec"]["containers"][0]
    assert [(p["hostIP"], p["hostPort"], p["containerPort"]) for p in container["ports"]] == [
        ("127.0.0.1", 30080, 80), ("::1", 30080, 80)]
    assert "nc -ll -p 80 -e nc web.default 8080" in container["command"][2]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}


def test_a_load_balancer_is_published_on_its_port_as_k3s_servicelb_does():
    (publication,), _warnings = plan([service(kind="LoadBalancer", ports=[{"port": 8443, "targetPort": 443}])])
    assert publication.lines() == ["127.0.0.1:8443 -> web.default:443"]


def test_a_missing_node_port_is_picked_from_the_kubernetes_range_the_same_on_every_run():
    svc = service()
    picked = allocated_node_port(svc, svc.ports[0])
    assert NODE_PORTS[0] <= picked <= NODE_PORTS[1]
    assert plan([service()])[0][0].forwards == [(80, picked, 8080)] == plan([service()])[0][0].forwards


def test_a_named_target_port_is_the_selected_templates_container_port():
    svc = service(ports=[{"port": 80, "targetPort": "http", "nodePort": 30081}])
    (publication,), _warnings = plan([svc], templates=[("default", template(ports=[{"name": "http", "containerPort": 9000}]))])
    assert publication.forwards == [(80, 30081, 9000)]
    with pytest.raises(PodkitError, match=r"spec.ports\[0\].targetPort: no container of the pods the Service selects"):
        plan([svc], templates=[("other", template(ports=[{"name": "http", "containerPort": 9000}]))])


def test_two_services_on_one_host_port_are_refused_naming_both():
    one = service("one", ports=[{"port": 80, "nodePort": 30090}])
    two = service("two", ports=[{"port": 81, "nodePort": 30090}])
    with pytest.raises(PodkitError, match=r"port 30090 on 127.0.0.1 is also published by"):
        plan([one, two])


def test_udp_is_named_not_published_and_a_service_of_only_udp_publishes_nothing():
    (publication,), warnings = plan([service(ports=[{"port": 53, "protocol": "UDP"}])])
    assert publication.remove and warnings == [WHERE + ".spec.ports[0].protocol: UDP is not published (podkit's proxy"
                                               " forwards TCP only)"]


@pytest.mark.parametrize("ports,named", [
    ([], "spec.ports: a NodePort or LoadBalancer Service needs at least one port"),
    ([{"port": 0}], "spec.ports[0].port: 0 must be a port number"),
    ([{"port": "80"}], "spec.ports[0].port: '80' must be a port number"),
    ([{"port": 80, "nodePort": 70000}], "spec.ports[0].nodePort: 70000 must be a port number"),
    ([{"port": 80, "protocol": "HTTP"}], "spec.ports[0].protocol: 'HTTP' is not a protocol"),
])
def test_bad_ports_are_refused_naming_the_field(ports, named):
    with pytest.raises(PodkitError, match=named.replace("[", r"\[").replace("]", r"\]")):
        service(ports=ports)


def test_a_cluster_ip_service_reads_no_ports_as_before():
    assert service(kind="ClusterIP", ports=[{"port": "not read"}]).ports == []


def test_addresses_are_checked_and_the_proxy_pod_is_named_by_namespace():
    assert check_addresses(["127.0.0.1", "::1"]) == ["127.0.0.1", "::1"]
    with pytest.raises(PodkitError, match=r"nodeport_addresses\[1\]: 'eth0' is not an IP address; give the host's"):
        check_addresses(["127.0.0.1", "eth0"])
    assert proxy_pod_name(service()) == "svclb-web"
    assert proxy_pod_name(service(namespace="shop")) == "svclb-shop-web"


def test_the_same_service_twice_is_published_once_and_a_different_one_is_refused():
    assert len(plan([service(), service()])[0]) == 1
    with pytest.raises(PodkitError, match="Service default/web is also given by"):
        plan([service(), service(ports=[{"port": 81}])])


def test_two_published_services_whose_proxy_pods_would_share_a_name_are_refused_and_unpublished_ones_are_not():
    one, two = service("a-b"), service("b", namespace="a")
    two.ports[0].node_port = 30123
    with pytest.raises(PodkitError, match="would be named svclb-a-b like that of Service default/a-b"):
        plan([one, two])
    assert len(plan([service("a-b", kind="ClusterIP"), service("b", kind="ClusterIP", namespace="a")])[0]) == 2


def test_the_proxy_pods_revision_is_the_same_from_release_to_release():
    """The revision is recorded on the proxy pod's sandbox (io.podkit.revision) and in the Service's record: the
    same Service must keep it. Both values were computed before the hash was _labels.digest's."""
    doc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web", "tier": "front"}},
           "spec": {"type": "NodePort", "selector": {"app": "web"},
                    "ports": [{"port": 80, "targetPort": "http", "nodePort": 30080}, {"port": 443, "targetPort": 8443}]}}
    (publication,), _warnings = plan([parse_service(doc, WHERE)], addresses=("127.0.0.1", "::1"),
                                     templates=[("shop", template(ports=[{"name": "http", "containerPort": 9000}]))])
    assert publication.forwards == [(80, 30080, 9000), (443, 30379, 8443)]
    assert publication.revision() == "17512d5ad8"
    assert plan([service()])[0][0].revision() == "52c45200c6"
