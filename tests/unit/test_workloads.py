"""Workloads above the pod (_workloads): the fencepost arithmetic and the plans, without a host."""

import pytest

from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._workloadfacts import read_workload_records, write_workload_record
from ansible_collections.podkit.docker.plugins.module_utils._workloads import (
    Replica, deadline_seconds, parse_workload, plan_workload, replica_manifest, resolve_fenceposts, resolve_workloads,
    scaled_value)


def deployment(replicas=3, strategy=None, image="podkit/busybox:latest", kind="Deployment", **spec):
    doc = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "web"},
           "spec": dict({"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "app", "image": image}]}}}, **spec)}
    if strategy is not None:
        doc["spec"]["strategy" if kind == "Deployment" else "updateStrategy"] = strategy
    if kind == "DaemonSet":
        del doc["spec"]["replicas"]
    return doc


def parse(doc, params=None):
    return parse_workload(doc, "pods[0].manifest[0]", [], params or {})


# deployment/util ResolveFenceposts: maxSurge rounds UP, maxUnavailable rounds DOWN
@pytest.mark.parametrize("surge, unavailable, replicas, expected", [
    ("25%", "25%", 10, (3, 2)),      # 2.5 -> 3 up, 2.5 -> 2 down
    ("25%", "25%", 1, (1, 0)),
    ("50%", "0%", 3, (2, 0)),
    ("0%", "10%", 5, (0, 1)),        # both resolve to 0: maxUnavailable becomes 1
    (2, 1, 4, (2, 1)),
    (None, None, 4, (1, 1)),         # the apps/v1 defaults, 25% each
])
def test_resolve_fenceposts_rounds_as_kubernetes(surge, unavailable, replicas, expected):
    assert resolve_fenceposts(surge, unavailable, replicas, "strategy.rollingUpdate") == expected


@pytest.mark.parametrize("surge, unavailable", [(0, 0), ("0%", 0), (0, "0%")])
def test_both_fenceposts_zero_is_refused_naming_the_fields(surge, unavailable):
    with pytest.raises(PodkitError) as err:
        resolve_fenceposts(surge, unavailable, 3, "spec.strategy.rollingUpdate")
    assert "maxSurge and maxUnavailable are both 0" in err.value.msg


@pytest.mark.parametrize("value", ["25", "x%", -1, True, 1.5])
def test_scaled_value_refuses_what_is_no_int_or_percentage(value):
    with pytest.raises(PodkitError) as err:
        scaled_value(value, 4, True, "spec.strategy.rollingUpdate.maxSurge")
    assert err.value.msg.startswith("spec.strategy.rollingUpdate.maxSurge")


def replicas_of(workload, revision, count, ready=True, start=0):
    return [Replica(workload.pod_name(i).replace(workload.revision[:6], revision[:6]) if not workload.stateful
                    else workload.pod_name(i), revision, ready, i) for i in range(start, start + count)]


def simulate(workload, observed, steps):
    """Play a plan on a set of pods (every wait succeeds): the most pods at once and the fewest Ready."""
    pods = dict((r.name, r.ready) for r in observed)
    most, fewest = len(pods), sum(pods.values())
    for step in steps:
        if step.op == "create":
            for name in step.pods:
                pods[name] = False
        elif step.op == "wait":
            for name in step.pods:
                pods[name] = True
        else:
            for name in step.pods:
                del pods[name]
        most, fewest = max(most, len(pods)), min(fewest, sum(pods.values()))
    return pods, most, fewest


@pytest.mark.parametrize("replicas, surge, unavailable", [(5, 1, 0), (5, 0, 1), (10, "25%", "25%"), (3, 2, 2),
                                                          (1, 1, 0), (4, "50%", "50%")])
def test_rolling_plan_keeps_within_surge_and_unavailable(replicas, surge, unavailable):
    workload = parse(deployment(replicas, {"rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}))
    old = replicas_of(workload, "0ld0ld0ld0", replicas)
    steps = plan_workload(workload, old)
    pods, most, fewest = simulate(workload, old, steps)
    assert sorted(pods) == sorted(workload.pod_name(i) for i in range(replicas))
    assert most <= replicas + workload.max_surge
    assert fewest >= replicas - workload.max_unavailable
    # A new pod is waited for before any old pod it replaces goes beyond maxUnavailable.
    assert steps[0].op in ("create", "remove")


def test_rolling_plan_order_with_surge_one():
    workload = parse(deployment(2, {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}))
    old = replicas_of(workload, "0ld0ld0ld0", 2)
    lines = [str(s) for s in plan_workload(workload, old)]
    new = [workload.pod_name(0), workload.pod_name(1)]
    assert lines == ["create %s (revision %s)" % (new[0], workload.revision), "wait until Ready: %s" % new[0],
                     "remove web-0ld0ld-1 (old revision)",
                     "create %s (revision %s)" % (new[1], workload.revision), "wait until Ready: %s" % new[1],
                     "remove web-0ld0ld-0 (old revision)"]


def test_scale_touches_only_the_pods_that_come_or_go():
    workload = parse(deployment(5))
    current = replicas_of(workload, workload.revision, 2)
    steps = plan_workload(workload, current)
    assert [(s.op, s.pods) for s in steps] == [("create", [workload.pod_name(i) for i in (2, 3, 4)]),
                                               ("wait", [workload.pod_name(i) for i in (2, 3, 4)])]
    workload = parse(deployment(2))
    steps = plan_workload(workload, replicas_of(workload, workload.revision, 5))
    assert [(s.op, s.pods) for s in steps] == [("remove", [workload.pod_name(i) for i in (4, 3, 2)])]
    assert plan_workload(workload, replicas_of(workload, workload.revision, 2)) == []


def test_recreate_removes_every_old_pod_first():
    workload = parse(deployment(2, {"type": "Recreate"}))
    steps = plan_workload(workload, replicas_of(workload, "0ld0ld0ld0", 2))
    assert [s.op for s in steps] == ["remove", "create", "wait"]
    assert steps[0].pods == ["web-0ld0ld-0", "web-0ld0ld-1"]


def test_replicaset_never_replaces_a_pod_for_a_new_template():
    workload = parse(deployment(3, kind="ReplicaSet"))
    old = replicas_of(workload, "0ld0ld0ld0", 2)
    steps = plan_workload(workload, old)
    assert [(s.op, s.pods) for s in steps] == [("create", [workload.pod_name(0)]), ("wait", [workload.pod_name(0)])]


def statefulset(replicas=3, **spec):
    doc = deployment(replicas, kind="StatefulSet", serviceName="web", **spec)
    return doc


def test_statefulset_orders_ordinals_and_removes_in_reverse():
    workload = parse(statefulset(3))
    assert [str(s) for s in plan_workload(workload, [])] == [
        "create web-0 (ordinal 0)", "wait until Ready: web-0", "create web-1 (ordinal 1)", "wait until Ready: web-1",
        "create web-2 (ordinal 2)", "wait until Ready: web-2"]
    workload = parse(statefulset(1))
    observed = replicas_of(workload, workload.revision, 3)
    assert [(s.op, s.pods) for s in plan_workload(workload, observed)] == [("remove", ["web-2"]), ("remove", ["web-1"])]


def test_statefulset_parallel_and_rolling_update_from_the_highest_ordinal():
    workload = parse(statefulset(3, podManagementPolicy="Parallel"))
    assert [(s.op, s.pods) for s in plan_workload(workload, [])] == [
        ("create", ["web-0", "web-1", "web-2"]), ("wait", ["web-0", "web-1", "web-2"])]
    workload = parse(statefulset(2))
    observed = replicas_of(workload, "0ld0ld0ld0", 2)
    assert [(s.op, s.pods) for s in plan_workload(workload, observed)] == [
        ("remove", ["web-1"]), ("create", ["web-1"]), ("wait", ["web-1"]),
        ("remove", ["web-0"]), ("create", ["web-0"]), ("wait", ["web-0"])]


def test_statefulset_claims_are_named_per_ordinal():
    doc = statefulset(2, volumeClaimTemplates=[{"metadata": {"name": "data"},
                                                "spec": {"resources": {"requests": {"storage": "1Gi"}}}}])
    workload = parse(doc)
    pod = replica_manifest(workload, "web-1", 1)[0]
    assert pod["metadata"]["name"] == "web-1"
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-1"}} in pod["spec"]["volumes"]
    assert any("not enforced" in w for w in workload.warnings)


def test_hostport_with_several_replicas_is_refused_naming_the_field():
    doc = deployment(3)
    doc["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    with pytest.raises(PodkitError) as err:
        parse(doc)
    assert err.value.msg == ("pods[0].manifest[0].spec.template.spec.containers[0].ports[0].hostPort: 3 replicas cannot "
                             "share hostPort 8080 on one host (the scheduler would place one per node); drop the "
                             "hostPort or set replicas: 1.")


def test_daemonset_is_one_pod_replaced_down_then_up():
    workload = parse(deployment(kind="DaemonSet"))
    assert (workload.replicas, workload.max_surge, workload.max_unavailable) == (1, 0, 1)
    steps = plan_workload(workload, replicas_of(workload, "0ld0ld0ld0", 1))
    assert [s.op for s in steps] == ["remove", "create", "wait"]


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["spec"].update(selector={"matchLabels": {"app": "other"}}), "spec.selector does not match"),
    (lambda d: d["spec"].update(paused=True), "spec.paused: podkit does not pause"),
    (lambda d: d["spec"].update(strategy={"type": "Blue"}), "spec.strategy.type: 'Blue' is not one of"),
    (lambda d: d["spec"].update(foo=1), "spec.foo: not supported here"),
    (lambda d: d["spec"].update(replicas=-1), "spec.replicas: -1 must be a whole number"),
])
def test_bad_workloads_name_the_field(change, expected):
    doc = deployment()
    change(doc)
    with pytest.raises(PodkitError) as err:
        parse(doc)
    assert expected in err.value.msg


def test_revision_is_the_template_hash():
    one, two = parse(deployment(image="a:1")), parse(deployment(image="a:2"))
    assert one.revision != two.revision and len(one.revision) == 10
    assert parse(deployment(replicas=7, image="a:1")).revision == one.revision


def test_a_steady_workload_with_a_pod_not_ready_is_not_waited_for():
    """Nothing to replace or add: a replica that is not Ready is reported, never waited on until a deadline."""
    for doc in (deployment(2), deployment(2, kind="ReplicaSet"), statefulset(2)):
        workload = parse(doc)
        observed = replicas_of(workload, workload.revision, 2)
        observed[0].ready = False
        assert plan_workload(workload, observed) == []


def apply_record(workload):
    """What the pods module records once it converged ``workload`` (converge_workloads)."""
    write_workload_record(workload.kind, workload.name, workload.namespace, workload.replicas, workload.revision,
                          workload.history, template=workload.template)


def resolve(doc, rollback=True):
    return resolve_workloads([(0, dict(manifest=[doc], state="present", rollback=rollback))], [])[0]


def test_rollback_goes_to_the_revision_the_manifest_replaced_and_stays_there(tmp_path, monkeypatch):
    """kubectl rollout undo: back to the revision before the latest. Run again with the same manifest, the same
    answer (idempotent, as an Ansible task must be); without rollback, forward again."""
    monkeypatch.setenv("PODKIT_STATE_DIR", str(tmp_path))
    v1, v2 = deployment(image="podkit/busybox:1"), deployment(image="podkit/busybox:2")
    apply_record(parse(v1))
    apply_record(parse(v2))
    back = resolve(v2)
    assert back.revision == parse(v1).revision
    assert back.template["spec"]["containers"][0]["image"] == "podkit/busybox:1"
    assert "rolled back to revision %s" % back.revision[:10] in back.warnings[-1]
    assert back.params.get("rollback") is None, "not a pod option: never reaches a replica's parameters"
    apply_record(back)
    assert resolve(v2).revision == back.revision, "a second rollback run stays on the previous revision"
    assert resolve(v2, rollback=False).revision == parse(v2).revision


def test_rollback_is_refused_naming_the_field_when_there_is_nothing_to_go_back_to(tmp_path, monkeypatch):
    monkeypatch.setenv("PODKIT_STATE_DIR", str(tmp_path))
    v1, v2 = deployment(image="podkit/busybox:1"), deployment(image="podkit/busybox:2")
    with pytest.raises(PodkitError) as error:
        resolve(v1)
    assert "pods[0].rollback: the template of Deployment/web" in error.value.msg and "never applied" in error.value.msg
    apply_record(parse(v1))
    with pytest.raises(PodkitError) as error:
        resolve(v1)
    assert "pods[0].rollback: Deployment/web has no recorded revision before" in error.value.msg
    with pytest.raises(PodkitError) as error:
        resolve(v2)
    assert "never applied" in error.value.msg


def test_the_record_keeps_as_many_templates_as_revision_history_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("PODKIT_STATE_DIR", str(tmp_path))
    for tag in range(4):
        apply_record(parse(deployment(image="podkit/busybox:%d" % tag, revisionHistoryLimit=1)))
    records = list(read_workload_records().values())
    assert len(records) == 1
    record = records[0]
    assert len(record["revisions"]) == 2 and sorted(record["templates"]) == sorted(record["revisions"])
    assert record["templates"][record["revisions"][0]]["previous"] == record["revisions"][1]
    with pytest.raises(PodkitError) as error:      # its parent's parent was dropped: one step back only
        resolve(deployment(image="podkit/busybox:2", revisionHistoryLimit=1))
    assert "no recorded revision before" in error.value.msg


@pytest.mark.parametrize("kind", ["ReplicaSet", "Job"])
def test_rollback_of_a_kind_without_rollouts_is_refused_naming_the_field(kind):
    doc = deployment(kind=kind) if kind == "ReplicaSet" else {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "app", "image": "x"}]}}}}
    with pytest.raises(PodkitError) as error:
        resolve(doc)
    assert "pods[0].manifest[0]: rollback undoes the rollout of a Deployment, StatefulSet, DaemonSet; a %s" % kind \
        in error.value.msg


def test_cluster_objects_beside_a_workload_are_accepted_and_each_named_in_a_warning():
    """Files kept for `kubectl apply -f` hold the Namespace, ServiceAccount and RBAC objects of their workload:
    nothing to make on one host without an API server, so accepted, each named (never dropped in silence)."""
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "collector", "namespace": "shop"}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "reader"},
             "rules": []},
            deployment(replicas=1)]
    (workload,) = resolve_workloads([(0, {"manifest": docs, "state": "present"})], [])
    assert workload.key == "Deployment/web"
    warned = " ".join(workload.warnings)
    assert "pods[0].manifest[0].kind: Namespace shop is not made" in warned
    assert "pods[0].manifest[1].kind: ServiceAccount collector is not made: there is no API server" in warned
    assert "pods[0].manifest[2].kind: ClusterRole reader is not made" in warned


def test_an_object_podkit_cannot_stand_for_is_refused_naming_its_kind():
    docs = [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny"}},
            deployment(replicas=1)]
    with pytest.raises(PodkitError) as caught:
        resolve_workloads([(0, {"manifest": docs, "state": "present"})], [])
    assert "pods[0].manifest[0].kind: 'NetworkPolicy' is not supported" in caught.value.msg


def old(version, kind, **spec):
    """A workload of a version removed in Kubernetes 1.16, written as such files were: no selector."""
    doc = deployment(kind=kind, **spec)
    doc["apiVersion"] = version
    del doc["spec"]["selector"]
    if kind == "StatefulSet":
        doc["spec"]["serviceName"] = "web"
    return doc


def resolved(doc):
    (workload,) = resolve_workloads([(0, {"manifest": [doc], "state": "present"})], [])
    return workload


def test_an_extensions_v1beta1_deployment_keeps_its_own_defaults():
    """pkg/apis/extensions/v1beta1/defaults.go SetDefaults_Deployment: the selector from the template's labels,
    maxSurge 1 and maxUnavailable 1 (25% in apps/v1), no revisionHistoryLimit and no progressDeadlineSeconds."""
    workload = resolved(old("extensions/v1beta1", "Deployment", replicas=8))
    assert (workload.max_surge, workload.max_unavailable) == (1, 1)      # apps/v1's 25% of 8 would be (2, 2)
    assert workload.history == 2147483647 and workload.deadline == 2147483647
    assert deadline_seconds(workload) == 60, "no deadline: the entry's wait_timeout bounds the wait"
    (said,) = [w for w in workload.warnings if "apiVersion" in w]
    assert "pods[0].manifest[0].apiVersion: extensions/v1beta1 was removed in Kubernetes 1.16" in said
    assert "selector: the template's labels" in said and "strategy.rollingUpdate.maxSurge: 1" in said
    assert "change it to apps/v1 and write those fields" in said
    # What the file gives is kept: only the left-out fields take the old defaults.
    given = resolved(old("extensions/v1beta1", "Deployment", replicas=8, progressDeadlineSeconds=30,
                         strategy={"rollingUpdate": {"maxSurge": "50%"}}))
    assert (given.max_surge, given.max_unavailable, given.deadline) == (4, 1, 30)
    assert deadline_seconds(given) == 30


def test_the_other_removed_workload_versions_take_their_own_defaults():
    daemon = resolved(old("extensions/v1beta1", "DaemonSet"))
    assert daemon.strategy == "OnDelete"                                   # apps/v1: RollingUpdate
    assert resolved(old("extensions/v1beta1", "ReplicaSet", replicas=2)).replicas == 2
    web = resolved(old("apps/v1beta1", "Deployment", replicas=4))
    assert (web.max_surge, web.max_unavailable, web.history, web.deadline) == (1, 1, 2, 600)
    assert resolved(old("apps/v1beta1", "StatefulSet")).strategy == "OnDelete"
    # apps/v1beta2 defaults as apps/v1 does, and requires its selector as apps/v1 does.
    beta2 = deployment(replicas=4)
    beta2["apiVersion"] = "apps/v1beta2"
    workload = resolved(beta2)
    assert (workload.max_surge, workload.max_unavailable, workload.history) == (1, 1, None)
    assert any("apps/v1beta2 was removed in Kubernetes 1.16" in w for w in workload.warnings)


def test_an_old_version_changes_no_revision():
    """The same template under extensions/v1beta1 and apps/v1 is the same revision: moving a file to apps/v1
    rolls no pod."""
    new = deployment(replicas=2)
    assert resolved(old("extensions/v1beta1", "Deployment", replicas=2)).revision == parse(new).revision


def test_a_removed_field_of_an_old_version_is_named():
    doc = old("extensions/v1beta1", "Deployment", rollbackTo={"revision": 1})
    with pytest.raises(PodkitError) as caught:
        resolved(doc)
    assert "rollbackTo" in caught.value.msg
