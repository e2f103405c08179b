"""Fields that mean nothing on one Docker host (validate: strict|warn|ignore), and $(VAR) expansion."""

import pytest

from ansible_collections.podkit.docker.plugins.module_utils._create import member_create_args
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._expand import expand, expand_env
from ansible_collections.podkit.docker.plugins.module_utils._labels import LABEL_NAMESPACE
from ansible_collections.podkit.docker.plugins.module_utils._spec import pod_spec_from_manifest
from ansible_collections.podkit.docker.plugins.module_utils._wanted import want_pod

from unithost import HOST

KUBEADM_LIKE = """
apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: null
  name: etcd-like
  namespace: kube-system
  annotations:
    example.com/owner: team-a
  labels:
    tier: control-plane
spec:
  priority: 2000001000
  priorityClassName: system-node-critical
  nodeSelector: {disktype: ssd}
  tolerations: [{operator: Exists}]
  serviceAccountName: builder
  automountServiceAccountToken: false
  dnsPolicy: ClusterFirst
  containers:
  - name: app
    image: busybox
    terminationMessagePolicy: FallbackToLogsOnError
    resources:
      limits: {memory: 64Mi, example.com/dongle: "1"}
  volumes:
  - name: scratch
status: {}
"""


def test_warn_names_every_field_and_keeps_the_pod():
    spec = pod_spec_from_manifest(KUBEADM_LIKE)
    text = "\n".join(spec.warnings)
    for path in ("status", "metadata.creationTimestamp", "spec.priority", "spec.priorityClassName",
                 "spec.nodeSelector", "spec.tolerations", "spec.serviceAccountName",
                 "spec.automountServiceAccountToken", "spec.dnsPolicy",
                 "spec.containers[0].terminationMessagePolicy",
                 "spec.containers[0].resources.limits.example.com/dongle"):
        assert "%s: ignored" % path in text, path
    assert len(spec.warnings) == 11
    assert spec.containers[0].resources.memory_limit == 64 * 2 ** 20
    assert spec.volumes[0].kind == "emptyDir"     # a volume with no source
    assert spec.namespace == "kube-system"


def test_strict_refuses_naming_the_fields():
    with pytest.raises(PodkitError) as info:
        pod_spec_from_manifest(KUBEADM_LIKE, validate="strict")
    assert "spec.nodeSelector" in info.value.msg and "status" in info.value.msg and "validate" in info.value.msg


def test_ignore_says_nothing():
    assert pod_spec_from_manifest(KUBEADM_LIKE, validate="ignore").warnings == []


def test_bad_validate_and_bad_dns_policy():
    with pytest.raises(PodkitError, match="validate: 'loose'"):
        pod_spec_from_manifest(KUBEADM_LIKE, validate="loose")
    with pytest.raises(PodkitError, match="spec.dnsPolicy: 'Cluster'"):
        pod_spec_from_manifest(KUBEADM_LIKE.replace("ClusterFirst", "Cluster"))
    with pytest.raises(PodkitError, match="spec.dnsPolicy: None"):
        pod_spec_from_manifest(KUBEADM_LIKE.replace("ClusterFirst", "None"))


def test_unknown_fields_stay_errors():
    with pytest.raises(PodkitError, match="spec.runtimeClassName is not supported"):
        pod_spec_from_manifest(KUBEADM_LIKE.replace("  priority: 2000001000", "  runtimeClassName: gvisor"))


def test_annotations_and_namespace_are_sandbox_labels_outside_the_hash():
    spec = pod_spec_from_manifest(KUBEADM_LIKE)
    wanted = want_pod(spec, HOST)
    labels = wanted.sandbox.labels_for("etcd-like")
    assert labels["example.com/owner"] == "team-a" and labels[LABEL_NAMESPACE] == "kube-system"
    bare = pod_spec_from_manifest(KUBEADM_LIKE.replace("example.com/owner: team-a", "{}").replace(
        "  namespace: kube-system\n", ""))
    assert want_pod(bare, HOST).sandbox.hashes() == wanted.sandbox.hashes()


def test_annotation_may_not_shadow_a_label_or_podkit():
    with pytest.raises(PodkitError, match="metadata.annotations.tier"):
        pod_spec_from_manifest(KUBEADM_LIKE.replace("example.com/owner", "tier"))
    with pytest.raises(PodkitError, match="metadata.annotations.io.podkit.pod"):
        pod_spec_from_manifest(KUBEADM_LIKE.replace("example.com/owner", "io.podkit.pod"))


def test_disk_empty_dir_size_limit_is_named():
    text = KUBEADM_LIKE.replace("  - name: scratch", "  - name: scratch\n    emptyDir: {sizeLimit: 1Gi}")
    assert any("spec.volumes[0].emptyDir.sizeLimit" in w and "only by evicting the pod" in w
               for w in pod_spec_from_manifest(text).warnings)
    memory = text.replace("{sizeLimit: 1Gi}", "{medium: Memory, sizeLimit: 1Gi}")
    assert not any("sizeLimit" in w for w in pod_spec_from_manifest(memory).warnings)


@pytest.mark.parametrize("text, expected", [
    ("$(A)", "1"),
    ("x$(A)y$(B)", "x1y2"),
    ("$$(A)", "$(A)"),
    ("$$$(A)", "$1"),
    ("$(UNDEFINED)", "$(UNDEFINED)"),
    ("$A", "$A"),
    ("cost $5", "cost $5"),
    ("$(A", "$(A"),
    ("end$", "end$"),
    ("$$", "$"),
])
def test_expand_follows_kubernetes(text, expected):
    assert expand(text, {"A": "1", "B": "2"}) == expected


def test_env_sees_only_earlier_variables():
    assert expand_env({"A": "a", "B": "$(A)-$(C)", "C": "c"}) == {"A": "a", "B": "a-$(C)", "C": "c"}


def test_create_args_expand_but_the_hash_keeps_the_text():
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": [{
        "name": "app", "image": "busybox", "command": ["echo", "$(GREETING)"], "args": ["$$(GREETING)"],
        "env": [{"name": "WHO", "value": "world"}, {"name": "GREETING", "value": "hello $(WHO)"}]}]}}
    wanted = want_pod(pod_spec_from_manifest(manifest), HOST).members[0]
    assert wanted.config["command"] == ["echo", "$(GREETING)"]
    create, _host = member_create_args(wanted.image, wanted.name, wanted.config, {}, "sid")
    assert create["entrypoint"] == ["echo", "hello world"]
    assert create["command"] == ["$(GREETING)"]
    assert create["environment"]["GREETING"] == "hello world"
