"""Workloads on the real engine: Deployments, StatefulSets, DaemonSets as replicas of their template.

Each test reads Docker (docker inspect, the container list sampled from a thread during a run) and
the kernel (/proc/<pid>/ns) rather than what the module says. Every workload's name is unique and its
pods are removed afterwards, whatever the test did. The first replica of each workload a test leaves is
round-tripped like any pod (export, apply back as a no-op): a replica is a Pod.
"""

import threading
import time

import pytest

from conftest import ROUND_TRIPS, round_trip_left_pod, round_trip_waiting
from helpers import (
    BUSYBOX_IMAGE, PAUSE_IMAGE, STATE_DIR, free_node_port, http_get_local, lookup, ns_inode, remove_pod_leftovers,
    tcp_listeners, unique_name, wait_for, warning_text)

OWNER_NAME = "io.podkit.owner-name"


@pytest.fixture
def workload_name(request, docker_client):
    """A workload name no other test uses; all its pods, records and claims are removed afterwards."""
    name = unique_name("w", 7)
    yield name
    pods = owned(docker_client, name)
    try:
        if pods:
            # At once, not in the module's batch: the workload's network and claims go below, with its pods.
            if round_trip_left_pod(request, docker_client, pods[0]):
                round_trip_waiting()
            if len(pods) > 1:
                ROUND_TRIPS["left_out"].setdefault(
                    "a workload's other replicas (the same template as the one round-tripped)", []).append(
                    request.node.nodeid)
    finally:
        for pod in pods:
            remove_pod_leftovers(docker_client, pod)
        forget_workloads(lambda record: record.startswith("%s." % name) or ".%s" % name in record)
        for network in docker_client.networks.list(names=["podkit-%s" % name]):
            network.remove()
        for volume in docker_client.volumes.list():
            if volume.name.endswith(tuple("-%s-%d" % (name, i) for i in range(10))):
                volume.remove(force=True)


def forget_workloads(match):
    """Delete the workload records (pod_facts' podkit_workloads) whose file names ``match``."""
    directory = STATE_DIR / "workloads"
    for record in (directory.iterdir() if directory.is_dir() else []):
        if match(record.name):
            record.unlink()


def owned(client, name):
    sandboxes = client.containers.list(all=True, filters={"label": "%s=%s" % (OWNER_NAME, name)})
    return sorted(c.labels["io.podkit.pod"] for c in sandboxes)


def template(name, image_tag="1", readiness=None, port=8080):
    container = {"name": "web", "image": BUSYBOX_IMAGE,
                 "command": ["sh", "-c", "echo %s > /tmp/index.html; exec httpd -f -p %d -h /tmp" % (image_tag, port)],
                 "env": [{"name": "RELEASE", "value": image_tag}]}
    if readiness is not None:
        container["readinessProbe"] = readiness
    return {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}


def deployment(name, replicas, tag="1", strategy=None, readiness=None, **spec):
    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
           "spec": dict(replicas=replicas, selector={"matchLabels": {"app": name}},
                        template=template(name, tag, readiness), **spec)}
    if strategy:
        doc["spec"]["strategy"] = strategy
    return doc


def apply(run_module, docs, check=False, expect_fail=False, state="present", **extra):
    return run_module("pods", check=check, expect_fail=expect_fail, sandbox_image=PAUSE_IMAGE, pull="never",
                      pods=[{"manifest": docs, "state": state}], **extra)


def running_pods(client, name):
    """{pod: revision} of the workload's pods whose sandbox and member run, from Docker."""
    result = {}
    for sandbox in client.containers.list(filters={"label": "%s=%s" % (OWNER_NAME, name)}):
        pod = sandbox.labels["io.podkit.pod"]
        labels = ["io.podkit.pod=%s" % pod, "io.podkit.role=member"]
        members = client.containers.list(all=True, filters={"label": labels})
        if members and all(m.status == "running" for m in members):
            result[pod] = sandbox.labels["io.podkit.revision"]
    return result


def test_deployment_scales_1_5_2_touching_only_the_pods_that_come_or_go(run_module, docker_client, workload_name):
    apply(run_module, [deployment(workload_name, 1)])
    first = owned(docker_client, workload_name)
    assert len(first) == 1
    first_id = docker_client.containers.get(first[0] + "_sandbox").id
    predicted = apply(run_module, [deployment(workload_name, 5)], check=True)["workloads"]
    result = apply(run_module, [deployment(workload_name, 5)])
    assert result["workloads"] == predicted, "check mode predicts the steps a real run takes"
    pods = owned(docker_client, workload_name)
    assert len(pods) == 5 and len(running_pods(docker_client, workload_name)) == 5
    assert docker_client.containers.get(first[0] + "_sandbox").id == first_id, "the pod that stays is not touched"
    # Each replica is a pod of its own: its member joins its own sandbox's network namespace, not another's.
    inodes = set()
    for pod in pods:
        sandbox = docker_client.api.inspect_container(pod + "_sandbox")["State"]["Pid"]
        member = docker_client.api.inspect_container(pod + "_web")["State"]["Pid"]
        assert ns_inode(member, "net") == ns_inode(sandbox, "net")
        inodes.add(ns_inode(sandbox, "net"))
    assert len(inodes) == 5
    result = apply(run_module, [deployment(workload_name, 2)])
    assert owned(docker_client, workload_name) == sorted(pods)[:2]
    assert docker_client.containers.get(first[0] + "_sandbox").id == first_id
    again = apply(run_module, [deployment(workload_name, 2)])
    assert again["changed"] is False and not again["actions"]
    facts = run_module("pod_facts")
    view = facts["ansible_facts"]["podkit_workloads"]["Deployment/%s" % workload_name]
    assert view["replicas"] == {"wanted": 2, "current": 2, "ready": 2, "updated": 2}
    assert sorted(view["pods"]) == owned(docker_client, workload_name)
    assert "workload Deployment/%s: 2/2 ready, 2 updated, revision %s" % (workload_name, view["revision"]) in facts["tree"]


def test_rollback_undoes_the_last_rollout_as_kubectl_rollout_undo_and_stays_back_on_a_second_run(
        run_module, docker_client, workload_name):
    """rollback: true with the manifest of revision 2 converges revision 1 (the template revision 2 replaced),
    by the strategy's rules, with the file as it is; a second such run changes nothing; without it, forward again.
    Each revision is read from Docker's labels and from the release the pods' own processes were given."""
    v1 = [deployment(workload_name, 2, tag="1")]
    v2 = [deployment(workload_name, 2, tag="2")]
    apply(run_module, v1)
    revision_1 = set(running_pods(docker_client, workload_name).values())
    apply(run_module, v2)
    revision_2 = set(running_pods(docker_client, workload_name).values())
    assert len(revision_1) == len(revision_2) == 1 and revision_1 != revision_2

    def releases():
        return sorted(docker_client.containers.get(pod + "_web").exec_run(["sh", "-c", "echo $RELEASE"]).output.decode().strip()
                      for pod in running_pods(docker_client, workload_name))

    predicted = run_module("pods", check=True, sandbox_image=PAUSE_IMAGE, pull="never",
                           pods=[{"manifest": v2, "rollback": True}])["workloads"]
    before = sorted(running_pods(docker_client, workload_name))
    ids = dict((pod, docker_client.containers.get(pod + "_web").id) for pod in before)
    result = run_module("pods", diff=True, sandbox_image=PAUSE_IMAGE, pull="never", pods=[{"manifest": v2, "rollback": True}])
    assert result["workloads"] == predicted, "check mode predicts the steps a real run takes"
    # --diff: one per replica that came or went, headed by the pod and its workload.
    after = sorted(running_pods(docker_client, workload_name))
    headers = sorted(d["before_header"] for d in result["diff"])
    assert headers == sorted("pod %s (Deployment/%s)" % (pod, workload_name) for pod in before + after), headers
    for shown in result["diff"]:
        pod = shown["before_header"].split()[1]
        if pod in after:      # made under revision 1's template
            assert shown["before"]["web"] is None and shown["after"]["web"]["config"]["env"] == {"RELEASE": "1"}, shown
        else:                 # revision 2's, removed
            assert shown["before"]["web"]["id"] == ids[pod] and shown["after"]["web"] is None, shown
    assert set(running_pods(docker_client, workload_name).values()) == revision_1
    assert releases() == ["1", "1"]
    assert any("rolled back to revision" in warning_text(w) for w in result.get("warnings") or []), result.get("warnings")
    again = run_module("pods", sandbox_image=PAUSE_IMAGE, pull="never", pods=[{"manifest": v2, "rollback": True}])
    assert again["changed"] is False and not again["actions"]
    apply(run_module, v2)
    assert set(running_pods(docker_client, workload_name).values()) == revision_2 and releases() == ["2", "2"]


def sample(client, name, stop, samples):
    while not stop.is_set():
        containers = client.api.containers(all=True, filters={"label": "io.podkit.pod"})
        sandboxes = set(c["Labels"]["io.podkit.pod"] for c in containers
                        if c["Labels"].get(OWNER_NAME) == name)
        ready = set()
        for pod in sandboxes:
            members = [c for c in containers if c["Labels"].get("io.podkit.pod") == pod
                       and c["Labels"].get("io.podkit.role") == "member"]
            sandbox = [c for c in containers if c["Labels"].get("io.podkit.pod") == pod
                       and c["Labels"].get("io.podkit.role") == "sandbox"]
            if members and sandbox and all(c["State"] == "running" for c in members + sandbox):
                ready.add(pod)
        samples.append((len(sandboxes), len(ready)))
        time.sleep(0.05)


@pytest.mark.parametrize("surge, unavailable", [(1, 0), (0, 1), ("50%", "25%")])
def test_rollout_keeps_within_max_surge_and_max_unavailable(run_module, docker_client, workload_name, surge,
                                                            unavailable):
    """A template change replaces every pod, sampled from Docker all along: never more than replicas+maxSurge
    pods, never fewer than replicas-maxUnavailable Ready (deployment/util ResolveFenceposts rounding)."""
    replicas = 4
    strategy = {"rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}
    readiness = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    apply(run_module, [deployment(workload_name, replicas, "1", strategy, readiness)])
    before = running_pods(docker_client, workload_name)
    assert len(before) == replicas
    max_surge = {1: 1, 0: 0, "50%": 2}[surge]
    max_unavailable = {0: 0, 1: 1, "25%": 1}[unavailable]
    plan = apply(run_module, [deployment(workload_name, replicas, "2", strategy, readiness)], check=True)
    stop, samples = threading.Event(), []
    thread = threading.Thread(target=sample, args=(docker_client, workload_name, stop, samples))
    thread.start()
    try:
        result = apply(run_module, [deployment(workload_name, replicas, "2", strategy, readiness)])
    finally:
        stop.set()
        thread.join()
    assert result["workloads"] == plan["workloads"], "check mode printed the rollout the run did"
    after = running_pods(docker_client, workload_name)
    assert len(after) == replicas and not set(after) & set(before)
    assert len(set(after.values())) == 1 and set(after.values()) != set(before.values())
    assert len(samples) > 10
    assert max(total for total, _ready in samples) <= replicas + max_surge, samples
    assert min(ready for _total, ready in samples) >= replicas - max_unavailable, samples
    # Each new replica answers on its own localhost with the new template's content.
    for pod in after:
        out = docker_client.containers.get(pod + "_web").exec_run(["wget", "-qO-", "http://127.0.0.1:8080/index.html"])
        assert out.output.decode().strip() == "2"


def test_readiness_that_never_passes_fails_by_the_deadline_leaving_the_old_pods(
        run_module, docker_client, workload_name):
    strategy = {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    good = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    apply(run_module, [deployment(workload_name, 2, "1", strategy, good, progressDeadlineSeconds=6)])
    old = running_pods(docker_client, workload_name)
    never = {"exec": {"command": ["false"]}, "periodSeconds": 1}
    started = time.monotonic()
    result = apply(run_module, [deployment(workload_name, 2, "2", strategy, never, progressDeadlineSeconds=6)],
                   expect_fail=True)
    assert time.monotonic() - started < 40
    new = [p for p in owned(docker_client, workload_name) if p not in old]
    assert len(new) == 1, "maxSurge 1: one new pod, which never became Ready"
    assert "did not become Ready within progressDeadlineSeconds (6s)" in result["msg"], result["msg"]
    assert new[0] in result["msg"] and "readinessProbe" in result["msg"]
    still = running_pods(docker_client, workload_name)
    assert set(old) <= set(still), "the old replicas still serve"
    for pod in old:
        out = docker_client.containers.get(pod + "_web").exec_run(["wget", "-qO-", "http://127.0.0.1:8080/index.html"])
        assert out.output.decode().strip() == "1"


def statefulset(name, replicas, policy="OrderedReady"):
    doc = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
           "spec": {"replicas": replicas, "serviceName": name, "podManagementPolicy": policy,
                    "selector": {"matchLabels": {"app": name}}, "template": template(name),
                    "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                              "spec": {"accessModes": ["ReadWriteOnce"]}}]}}
    container = doc["spec"]["template"]["spec"]["containers"][0]
    container["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    container["readinessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    return doc


def started_at(client, container):
    return client.api.inspect_container(container)["State"]["StartedAt"]


def test_statefulset_comes_up_in_order_and_its_claims_outlive_a_scale_down(run_module, docker_client, workload_name):
    apply(run_module, [statefulset(workload_name, 3)])
    pods = ["%s-%d" % (workload_name, i) for i in range(3)]
    assert owned(docker_client, workload_name) == pods
    starts = [started_at(docker_client, pod + "_web") for pod in pods]
    assert starts == sorted(starts), "OrderedReady: each ordinal after the one before"
    for i, pod in enumerate(pods):
        mounts = docker_client.api.inspect_container(pod + "_web")["Mounts"]
        assert [m["Name"] for m in mounts if m["Destination"] == "/data"] == ["data-%s" % pod]
        docker_client.containers.get(pod + "_web").exec_run(["sh", "-c", "echo ordinal-%d > /data/mark" % i])
    apply(run_module, [statefulset(workload_name, 1)])
    assert owned(docker_client, workload_name) == pods[:1]
    names = [v.name for v in docker_client.volumes.list()]
    assert "data-%s" % pods[2] in names and "data-%s" % pods[1] in names, "claims outlive the scale-down"
    apply(run_module, [statefulset(workload_name, 3)])
    for i, pod in enumerate(pods):
        out = docker_client.containers.get(pod + "_web").exec_run(["cat", "/data/mark"])
        assert out.output.decode().strip() == "ordinal-%d" % i, "its claim came back with its data"


def test_daemonset_is_one_pod_on_this_host_and_absent_removes_it(run_module, docker_client, workload_name):
    doc = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": workload_name},
           "spec": {"selector": {"matchLabels": {"app": workload_name}}, "template": template(workload_name)}}
    apply(run_module, [doc])
    assert len(running_pods(docker_client, workload_name)) == 1
    assert apply(run_module, [doc])["changed"] is False
    apply(run_module, [doc], state="absent")
    assert owned(docker_client, workload_name) == []


def test_prune_treats_a_workload_as_one_entry(run_module, docker_client, workload_name, pod_name):
    selector = {"prune-test": workload_name}
    dep = deployment(workload_name, 2)
    dep["spec"]["template"]["metadata"]["labels"]["prune-test"] = workload_name
    run_module("pods", sandbox_image=PAUSE_IMAGE, pull="never", prune=True, prune_selector=selector,
               pods=[{"manifest": [dep]}])
    assert len(owned(docker_client, workload_name)) == 2
    other = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod_name, "labels": selector},
             "spec": {"containers": [{"name": "app", "image": BUSYBOX_IMAGE, "command": ["sleep", "3600"]}]}}
    result = run_module("pods", sandbox_image=PAUSE_IMAGE, pull="never", prune=True, prune_selector=selector,
                        pods=[{"manifest": [dep]}, {"manifest": other}])
    assert not any(p.get("pruned") for p in result["pods"].values())
    assert len(owned(docker_client, workload_name)) == 2
    key = "Deployment/%s" % workload_name
    assert key in run_module("pod_facts")["ansible_facts"]["podkit_workloads"]
    run_module("pods", sandbox_image=PAUSE_IMAGE, pull="never", prune=True, prune_selector=selector,
               pods=[{"manifest": other}])
    assert owned(docker_client, workload_name) == [], "the workload no longer listed: its pods are pruned"
    # Its record went with its last pod: pod_facts reports no workload with replicas wanted and none left.
    assert key not in run_module("pod_facts")["ansible_facts"]["podkit_workloads"]
    assert not list((STATE_DIR / "workloads").glob("*.%s.json" % workload_name))


def test_a_nodeport_service_is_published_only_where_named_and_forwards_to_the_ready_replicas(
        run_module, docker_client, workload_name):
    """nodeport_addresses names 127.0.0.1: the Service's nodePort answers there (traffic only to 127.0.0.1) and
    on no other address (the kernel's listening sockets and Docker's port bindings say so); a replica that stops
    being Ready stops getting connections; emptying the option takes the proxy pod away."""
    namespace, port = workload_name, free_node_port()
    readiness = {"exec": {"command": ["test", "-f", "/tmp/index.html"]}, "periodSeconds": 1}
    web = deployment(workload_name, 2, readiness=readiness)
    web["metadata"]["namespace"] = namespace
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": workload_name, "namespace": namespace},
               "spec": {"type": "NodePort", "selector": {"app": workload_name},
                        "ports": [{"port": 80, "targetPort": 8080, "nodePort": port}]}}
    docs, key, proxy = [web, service], "%s/%s" % (namespace, workload_name), "svclb-%s-%s" % (namespace, workload_name)
    plan = apply(run_module, docs, check=True, nodeport_addresses=["127.0.0.1"])
    result = apply(run_module, docs, nodeport_addresses=["127.0.0.1"])
    published = result["services"][key]
    assert published["published"] == ["127.0.0.1:%d -> %s.%s:8080" % (port, workload_name, namespace)]
    assert published["actions"] == plan["services"][key]["actions"] and published["changed"] is True
    assert result["pods"][proxy]["owner"] == "Service/%s" % workload_name
    sandbox = docker_client.api.inspect_container(proxy + "_sandbox")
    assert sandbox["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert sandbox["Config"]["Labels"]["io.podkit.owner-kind"] == "Service"
    assert "podkit-%s" % namespace in sandbox["NetworkSettings"]["Networks"]
    assert not [a for a in tcp_listeners(port) if a.strip("0") == ""], "nothing listens on 0.0.0.0 or ::"
    # The proxy's nc listens a moment after its container started; the six requests below are the check.
    wait_for(lambda: http_get_local(port) == (200, "1"), 20, step=0.5)
    assert [http_get_local(port) for _request in range(6)] == [(200, "1")] * 6
    assert apply(run_module, docs, nodeport_addresses=["127.0.0.1"])["changed"] is False
    # One replica stops being Ready: once a run takes it out of the name, no connection reaches it (its httpd
    # would answer 404 now); ten in a row, where DNS's spread would send about half there.
    replicas = [p for p in owned(docker_client, workload_name) if p != proxy]
    docker_client.containers.get(replicas[0] + "_web").exec_run(["rm", "/tmp/index.html"])
    apply(run_module, docs, nodeport_addresses=["127.0.0.1"])
    assert [http_get_local(port) for _request in range(10)] == [(200, "1")] * 10
    # The option emptied: the Service is named in a warning and its proxy pod goes.
    result = apply(run_module, docs)
    assert result["services"][key]["state"] == "absent" and result["services"][key]["changed"] is True
    assert any("spec.type: NodePort is not published on the host" in warning_text(w) for w in result["warnings"])
    assert not docker_client.containers.list(all=True, filters={"label": "io.podkit.pod=" + proxy})
    assert tcp_listeners(port) == []
    assert apply(run_module, docs)["changed"] is False


def test_pod_module_given_a_workload_points_to_pods(run_module, workload_name):
    result = run_module("pod", expect_fail=True, manifest=deployment(workload_name, 1))
    assert "manifest.kind: Deployment is a workload" in result["msg"] and "podkit.docker.pods" in result["msg"]


def test_a_service_name_resolves_to_exactly_the_ready_replicas(run_module, docker_client, workload_name):
    """Tests only resolve: never a connection to a bridge address."""
    namespace = workload_name
    readiness = {"exec": {"command": ["test", "-f", "/tmp/index.html"]}, "periodSeconds": 1}
    web = deployment(workload_name, 2, readiness=readiness)
    web["metadata"]["namespace"] = namespace
    client = deployment(workload_name + "c", 1)
    client["metadata"]["namespace"] = namespace
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": namespace},
               "spec": {"selector": {"app": workload_name}, "ports": [{"port": 80, "targetPort": 8080}],
                        "type": "NodePort"}}
    docs = [web, client, service]
    try:
        result = apply(run_module, docs)
        assert any("spec.type: NodePort is not published on the host" in warning_text(w)
                   for w in result.get("warnings", [])), result.get("warnings")
        network = "podkit-%s" % namespace
        assert docker_client.networks.get(network).attrs["Labels"] == {"io.podkit.network": namespace}
        pods = owned(docker_client, workload_name)
        addresses = dict((pod, docker_client.api.inspect_container(pod + "_sandbox")["NetworkSettings"]["Networks"]
                          [network]["IPAddress"]) for pod in pods)
        asker = owned(docker_client, workload_name + "c")[0] + "_web"
        for name in ("web", "web.%s" % namespace):
            assert lookup(docker_client, asker, name) == sorted(addresses.values())
        # Each replica answers on its own localhost.
        for pod in pods:
            out = docker_client.containers.get(pod + "_web").exec_run(["wget", "-qO-", "http://127.0.0.1:8080/index.html"])
            assert out.output.decode().strip() == "1"
        again = apply(run_module, docs)
        assert again["changed"] is False, again["actions"]
        # One replica stops being Ready: the next run takes it out of the name, and it still resolves the others.
        docker_client.containers.get(pods[0] + "_web").exec_run(["rm", "/tmp/index.html"])
        plan = apply(run_module, docs, check=True)
        assert plan["changed"] is True
        result = apply(run_module, docs)
        assert result["workloads"] == plan["workloads"]
        assert lookup(docker_client, asker, "web") == [addresses[pods[1]]]
    finally:
        for pod in owned(docker_client, workload_name + "c"):
            remove_pod_leftovers(docker_client, pod)
