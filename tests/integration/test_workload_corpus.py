"""The workload corpus: Deployments, ReplicaSets, StatefulSets and DaemonSets written in the shapes of the
Kubernetes documentation's examples (tests/workload-corpus/, our own files), each with the ConfigMaps,
Secrets, claims and Services it uses, converged on the real engine in one pods call; a second run changes
nothing; a changed image rolls out as each kind's strategy says - counted from Docker's labels, not from
what the module returned.

Every workload and Service is put in a namespace of this run (its network is podkit-<namespace>) and its
name suffixed, so the corpus never meets another test's pods.
"""

import pathlib

import pytest
import yaml

from helpers import BUSYBOX_IMAGE, PAUSE_IMAGE, remove_pod_leftovers, unique_name, warning_text
from test_workloads import forget_workloads

CORPUS = pathlib.Path(__file__).resolve().parent.parent / "workload-corpus"
# The Jobs and CronJobs (job-*, cronjob-*.manifest) run to completion, not roll out: test_jobs.py takes them.
FILES = sorted(p for p in CORPUS.glob("*.manifest") if not p.name.startswith(("job-", "cronjob-")))
WORKLOAD_KINDS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet")
ROLLOUT_TAG = "podkit/busybox:workload-corpus-rollout"
# The versions removed in Kubernetes 1.16 whose update strategy defaulted to OnDelete (their defaults.go).
OLD_ON_DELETE = {("extensions/v1beta1", "DaemonSet"), ("apps/v1beta1", "StatefulSet")}


def load(path, namespace, suffix, image):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in docs:
        if doc["kind"] in WORKLOAD_KINDS + ("Service",):
            doc["metadata"]["namespace"] = namespace
        if doc["kind"] in WORKLOAD_KINDS:
            doc["metadata"]["name"] += suffix
            spec = doc["spec"]["template"]["spec"]
            for container in spec["containers"] + spec.get("initContainers", []):
                container["image"] = image
    return docs


def expected_updated(doc):
    """How many pods a changed template replaces, by the kind's strategy (Kubernetes' rules)."""
    spec = doc["spec"]
    replicas = 1 if doc["kind"] == "DaemonSet" else spec.get("replicas", 1)
    strategy = spec.get("updateStrategy") or spec.get("strategy") or {}
    if doc["kind"] == "ReplicaSet" or strategy.get("type") == "OnDelete":
        return 0
    if strategy.get("type") is None and (doc["apiVersion"], doc["kind"]) in OLD_ON_DELETE:
        return 0
    return replicas - ((strategy.get("rollingUpdate") or {}).get("partition") or 0)


def owned_sandboxes(client, namespace):
    return [c for c in client.containers.list(all=True, filters={"label": "io.podkit.namespace=%s" % namespace})
            if c.labels.get("io.podkit.owner-kind")]


def test_corpus_is_large_enough():
    assert len(FILES) >= 25


@pytest.mark.no_roundtrip("the workload corpus's replicas are removed by the test itself")
def test_workload_corpus_converges_reruns_as_a_no_op_and_rolls_out_a_changed_image(run_module, docker_client):
    namespace = unique_name("wc", 6)
    suffix = "-" + namespace
    docker_client.images.get(BUSYBOX_IMAGE).tag(ROLLOUT_TAG)

    def entries(image):
        return [{"manifest": load(path, namespace, suffix, image)} for path in FILES]

    def apply(image, check=False):
        return run_module("pods", check=check, sandbox_image=PAUSE_IMAGE, pull="never", wait_timeout=60,
                          pods=entries(image))

    try:
        first = apply(BUSYBOX_IMAGE)
        assert first["changed"] is True
        # The cluster objects kept beside a workload (deploy-namespace-rbac) are accepted, each named in a warning.
        warned = " ".join(warning_text(w) for w in first.get("warnings") or [])
        for obj in ("Namespace reporting", "ServiceAccount report-reader", "ClusterRole report-reader",
                    "ClusterRoleBinding report-reader"):
            assert "kind: %s is not made" % obj in warned, warned
        # The workloads of versions Kubernetes removed in 1.16 are read as apps/v1 with their own defaults, named.
        assert "apiVersion: extensions/v1beta1 was removed in Kubernetes 1.16; read as apps/v1 with the Deployment" \
            " defaults of extensions/v1beta1 (selector: the template's labels; strategy.rollingUpdate.maxSurge: 1;" \
            in warned, warned
        assert "apiVersion: apps/v1beta2 was removed in Kubernetes 1.16" in warned, warned
        wanted = dict(("%s/%s" % (d["kind"], d["metadata"]["name"]), d) for e in entries(BUSYBOX_IMAGE)
                      for d in e["manifest"] if d["kind"] in WORKLOAD_KINDS)
        assert sorted(first["workloads"]) == sorted(wanted)
        sandboxes = owned_sandboxes(docker_client, namespace)
        for key, doc in wanted.items():
            replicas = 1 if doc["kind"] == "DaemonSet" else doc["spec"].get("replicas", 1)
            mine = [s for s in sandboxes if s.labels["io.podkit.owner-name"] == doc["metadata"]["name"]
                    and s.labels["io.podkit.owner-kind"] == doc["kind"]]
            assert len(mine) == replicas, key
            assert all(s.status == "running" for s in mine), key
        again = apply(BUSYBOX_IMAGE)
        assert again["changed"] is False, again["actions"]
        before = dict((s.name, s.labels["io.podkit.revision"]) for s in owned_sandboxes(docker_client, namespace))
        plan = apply(ROLLOUT_TAG, check=True)
        rolled = apply(ROLLOUT_TAG)
        assert rolled["changed"] is True
        assert rolled["workloads"] == plan["workloads"], "check mode predicts every workload's steps"
        after = owned_sandboxes(docker_client, namespace)
        for key, doc in wanted.items():
            revision = rolled["workloads"][key]["revision"]
            mine = [s for s in after if s.labels["io.podkit.owner-name"] == doc["metadata"]["name"]
                    and s.labels["io.podkit.owner-kind"] == doc["kind"]]
            updated = [s for s in mine if s.labels["io.podkit.revision"] == revision]
            assert len(updated) == expected_updated(doc), (key, len(updated))
            member_images = set(c.attrs["Config"]["Image"] for s in updated for c in docker_client.containers.list(
                filters={"label": ["io.podkit.pod=%s" % s.labels["io.podkit.pod"], "io.podkit.role=member"]}))
            assert member_images <= {ROLLOUT_TAG}, key
        assert before
        assert apply(ROLLOUT_TAG)["changed"] is False
    finally:
        run_module("pods", sandbox_image=PAUSE_IMAGE, pull="never",
                   pods=[dict(e, state="absent") for e in entries(ROLLOUT_TAG)])
        for sandbox in owned_sandboxes(docker_client, namespace):
            remove_pod_leftovers(docker_client, sandbox.labels["io.podkit.pod"])
        forget_workloads(lambda record: record.startswith(namespace + "."))
        for network in docker_client.networks.list(names=["podkit-%s" % namespace]):
            network.remove()
        for volume in docker_client.volumes.list():
            if volume.name.endswith(suffix + "-0") or volume.name.endswith(suffix + "-1") or volume.name == "shared-uploads":
                volume.remove(force=True)
        docker_client.images.remove(ROLLOUT_TAG)
