"""podkit-guard keeps a Deployment's replica count (issue 24): a replica removed behind podkit's back, every
container of it, comes back under its own name and revision with no playbook run, as the ReplicaSet
controller would make one anew, and a replica's member removed comes back as any pod's member does. Read
from Docker and /proc, never from the module's word. The guard is scoped to the test's own record directory."""

import docker
import pytest

from helpers import (
    BUSYBOX_IMAGE, PAUSE_IMAGE, free_node_port, http_get_local, lookup, ns_inode, remove_pod_leftovers, unique_name,
    wait_for)

pytestmark = pytest.mark.reliability("faults")

OWNER_NAME = "io.podkit.owner-name"
REPLICAS = 3
BACK_S = 30


def replicas(client, name):
    """{pod: (revision, sandbox pid, member pid)} of the workload's pods whose sandbox and member run."""
    found = {}
    for sandbox in client.containers.list(filters={"label": "%s=%s" % (OWNER_NAME, name)}):
        pod = sandbox.labels["io.podkit.pod"]
        members = client.containers.list(filters={"label": ["io.podkit.pod=%s" % pod, "io.podkit.role=member"]})
        if len(members) == 1:
            found[pod] = (sandbox.labels["io.podkit.revision"], sandbox.attrs["State"]["Pid"], members[0].attrs["State"]["Pid"])
    return found


def shares_sandbox_namespaces(found):
    return all(ns_inode(member, ns) == ns_inode(sandbox, ns)
               for _revision, sandbox, member in found.values() for ns in ("net", "ipc"))


@pytest.fixture
def deployment(docker_client, guard):
    """A Deployment of REPLICAS pods converged through the guard's directory; its pods removed at the end,
    after the guard (which asked for them) has stopped."""
    name = unique_name("w", 7)
    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
           "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "app", "image": BUSYBOX_IMAGE,
                                                          "command": ["sleep", "3600"]}]}}}}
    result = guard.module("pods", sandbox_image=PAUSE_IMAGE, pull="never", pods=[{"manifest": [doc]}])
    assert result["changed"]
    yield name
    guard.stop()
    for sandbox in docker_client.containers.list(all=True, filters={"label": "%s=%s" % (OWNER_NAME, name)}):
        remove_pod_leftovers(docker_client, sandbox.labels["io.podkit.pod"])
    for network in docker_client.networks.list(names=["podkit-%s" % name]):
        network.remove()


def test_a_replica_removed_whole_comes_back_under_its_name_with_no_playbook_run(docker_client, guard, deployment):
    before = replicas(docker_client, deployment)
    assert len(before) == REPLICAS and shares_sandbox_namespaces(before), before
    guard.start()
    gone = sorted(before)[1]
    for container in docker_client.containers.list(all=True, filters={"label": "io.podkit.pod=%s" % gone}):
        container.remove(force=True)
    assert gone not in replicas(docker_client, deployment)
    took = wait_for(lambda: len(replicas(docker_client, deployment)) == REPLICAS, BACK_S)
    assert took is not None, "replica %s not back within %ss; guard log:\n%s" % (gone, BACK_S, guard.log_text())
    after = replicas(docker_client, deployment)
    assert sorted(after) == sorted(before), "the same names, none added: %s" % after
    assert after[gone][0] == before[gone][0], "the same revision"
    assert after[gone][1:] != before[gone][1:], "new processes: the replica was made anew"
    assert shares_sandbox_namespaces(after)
    # The other replicas were left alone: the same processes.
    assert all(after[pod] == before[pod] for pod in before if pod != gone)
    assert guard.logged("repair pod=%s" % gone), guard.log_text()


def test_a_replica_s_member_removed_comes_back_in_its_sandbox(docker_client, guard, deployment):
    before = replicas(docker_client, deployment)
    guard.start()
    pod = sorted(before)[0]
    docker_client.containers.get("%s_app" % pod).remove(force=True)
    took = wait_for(lambda: len(replicas(docker_client, deployment)) == REPLICAS, BACK_S)
    assert took is not None, "member of %s not back within %ss; guard log:\n%s" % (pod, BACK_S, guard.log_text())
    after = replicas(docker_client, deployment)
    assert after[pod][1] == before[pod][1], "the sandbox kept"
    assert after[pod][2] != before[pod][2]
    assert shares_sandbox_namespaces(after)


def remove_namespace(client, namespace):
    """Every pod of ``namespace`` (its sandboxes' label) and its network."""
    for sandbox in client.containers.list(all=True, filters={"label": "io.podkit.namespace=%s" % namespace}):
        remove_pod_leftovers(client, sandbox.labels["io.podkit.pod"])
    for found in client.networks.list(names=["podkit-%s" % namespace]):
        found.remove()


def address(client, pod, network):
    return client.api.inspect_container(pod + "_sandbox")["NetworkSettings"]["Networks"][network]["IPAddress"]


def test_the_guard_keeps_a_service_name_on_exactly_the_ready_replicas_between_runs(docker_client, guard):
    """With no playbook run after the first: a replica whose readiness probe starts failing leaves the Service's
    name, and joins it again once it passes; a replica removed whole comes back on a new sandbox and answers to
    the name again. Read from Docker's DNS inside another pod's network namespace."""
    name = unique_name("ws", 7)
    network = "podkit-%s" % name
    readiness = {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1}
    web = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": name},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "app", "image": BUSYBOX_IMAGE, "readinessProbe": readiness,
                                                          "command": ["sh", "-c", "touch /tmp/ready; exec sleep 3600"]}]}}}}
    asker = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name + "c", "namespace": name},
             "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name + "c"}},
                      "template": {"metadata": {"labels": {"app": name + "c"}},
                                   "spec": {"containers": [{"name": "app", "image": BUSYBOX_IMAGE,
                                                            "command": ["sleep", "3600"]}]}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": name},
               "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}}
    try:
        guard.start()
        result = guard.module("pods", sandbox_image=PAUSE_IMAGE, pull="never", pods=[{"manifest": [web, asker, service]}])
        assert result["changed"]
        pods = sorted(sandbox.labels["io.podkit.pod"] for sandbox in docker_client.containers.list(
            filters={"label": "%s=%s" % (OWNER_NAME, name)}))
        (client_pod,) = [s.labels["io.podkit.pod"] for s in docker_client.containers.list(
            filters={"label": "%s=%s" % (OWNER_NAME, name + "c")})]
        ask = client_pod + "_app"
        both = sorted(address(docker_client, pod, network) for pod in pods)
        assert lookup(docker_client, ask, "web") == both
        # Replica 0 stops being Ready: the guard takes it out of the name; the other still answers to it.
        docker_client.containers.get(pods[0] + "_app").exec_run(["rm", "/tmp/ready"])
        only = [address(docker_client, pods[1], network)]
        took = wait_for(lambda: lookup(docker_client, ask, "web") == only, BACK_S, step=0.5)
        assert took is not None, "not out of the name; guard log:\n%s" % guard.log_text()
        assert lookup(docker_client, ask, "web.%s" % name) == only
        assert guard.logged("pod=%s reconnect %s to network %s as (no alias) (ready=False)" % (pods[0], pods[0], network)), \
            guard.log_text()
        # Ready again: back in the name.
        docker_client.containers.get(pods[0] + "_app").exec_run(["touch", "/tmp/ready"])
        took = wait_for(lambda: lookup(docker_client, ask, "web") == both, BACK_S, step=0.5)
        assert took is not None, "not back in the name; guard log:\n%s" % guard.log_text()
        # Replica 1 removed whole: the guard makes it anew, on a new sandbox, and gives it the name once Ready.
        for container in docker_client.containers.list(all=True, filters={"label": "io.podkit.pod=%s" % pods[1]}):
            container.remove(force=True)

        def back():
            try:
                now = sorted(address(docker_client, pod, network) for pod in pods)
            except (KeyError, docker.errors.NotFound):
                return False
            return lookup(docker_client, ask, "web") == now
        took = wait_for(back, BACK_S, step=0.5)
        assert took is not None, "the new replica not in the name; guard log:\n%s" % guard.log_text()
        assert guard.logged("repair pod=%s" % pods[1]), guard.log_text()
    finally:
        guard.stop()
        remove_namespace(docker_client, name)


def test_the_guard_brings_a_published_service_s_proxy_pod_back_on_its_network(docker_client, guard):
    """A NodePort Service's proxy pod removed whole behind podkit's back: with no playbook run, the guard makes
    it anew and puts it back on the namespace's network, and the nodePort on 127.0.0.1 answers again (traffic
    only to 127.0.0.1)."""
    name, port = unique_name("wp", 7), free_node_port()
    network, proxy = "podkit-%s" % name, "svclb-%s-web" % name
    web = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": name},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "app", "image": BUSYBOX_IMAGE, "command": [
                                     "sh", "-c", "echo up > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"]}]}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": name},
               "spec": {"type": "NodePort", "selector": {"app": name},
                        "ports": [{"port": 80, "targetPort": 8080, "nodePort": port}]}}
    try:
        guard.start()
        guard.module("pods", sandbox_image=PAUSE_IMAGE, pull="never", nodeport_addresses=["127.0.0.1"],
                     pods=[{"manifest": [web, service]}])
        assert wait_for(lambda: http_get_local(port) == (200, "up"), BACK_S, step=0.5) is not None
        first = docker_client.containers.get(proxy + "_sandbox").id
        for container in docker_client.containers.list(all=True, filters={"label": "io.podkit.pod=%s" % proxy}):
            container.remove(force=True)
        assert http_get_local(port)[0] is None

        def back():
            try:
                sandbox = docker_client.api.inspect_container(proxy + "_sandbox")
            except docker.errors.NotFound:
                return False
            return sandbox["Id"] != first and network in sandbox["NetworkSettings"]["Networks"] and \
                http_get_local(port) == (200, "up")
        assert wait_for(back, BACK_S, step=0.5) is not None, guard.log_text()
        assert guard.logged("repair pod=%s" % proxy), guard.log_text()
        assert guard.logged("pod=%s connect %s to network %s as (no alias)" % (proxy, proxy, network)), guard.log_text()
    finally:
        guard.stop()
        remove_namespace(docker_client, name)
