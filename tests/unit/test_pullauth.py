"""imagePullSecrets: the credentials a pull uses, found in a dockerconfigjson Secret (pure).

No registry answers on podkit's test machines, so a pull with these credentials is never made in a
test; the integration test checks the lookup and the refusals, and that nothing is shown.
"""

import base64
import json

import pytest

from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._pullauth import auth_for, registry_of, secret_parts
from ansible_collections.podkit.docker.plugins.module_utils._spec import pod_spec_from_manifest
from ansible_collections.podkit.docker.plugins.module_utils._wanted import want_pod

from unithost import HOST


def docs(config, secret_type="kubernetes.io/dockerconfigjson", key=".dockerconfigjson", pull_secret="regcred"):
    encoded = base64.b64encode(json.dumps(config).encode()).decode()
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred"}, "type": secret_type,
         "data": {key: encoded}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "private"}, "spec": {
            "imagePullSecrets": [{"name": pull_secret}],
            "containers": [{"name": "app", "image": "registry.example.org/team/app:1.0"},
                           {"name": "hub", "image": "library/busybox"}]}}]


CONFIG = {"auths": {"registry.example.org": {"auth": base64.b64encode(b"robot:s3cr3t-pw").decode()},
                    "https://index.docker.io/v1/": {"username": "hubuser", "password": "hub-pw"}}}


@pytest.mark.parametrize("ref, registry", [
    ("busybox", "docker.io"), ("library/busybox:1", "docker.io"), ("registry.example.org/a/b:1", "registry.example.org"),
    ("localhost:5000/x", "localhost:5000"), ("localhost/x", "localhost")])
def test_registry_of(ref, registry):
    assert registry_of(ref) == registry


def test_credentials_by_registry():
    wanted = want_pod(pod_spec_from_manifest(docs(CONFIG)), HOST)
    assert auth_for("registry.example.org/team/app:1.0", wanted.pull_auths) == dict(
        username="robot", password="s3cr3t-pw", serveraddress="registry.example.org",
        source="spec.imagePullSecrets[0] (Secret 'regcred')")
    assert auth_for("library/busybox", wanted.pull_auths)["password"] == "hub-pw"
    assert auth_for("quay.io/x/y", wanted.pull_auths) is None
    assert "s3cr3t-pw" in secret_parts(wanted.pull_auths)
    assert "s3cr3t-pw" not in repr([w.config for w in wanted.containers()])   # never hashed


def test_a_pull_secret_not_given_is_named_in_a_warning_and_the_pulls_go_on_without_it():
    """The kubelet goes on without a pull secret it cannot find (getPullSecretsForPod: "Unable to retrieve some
    image pull secrets ... attempting to pull the image may not succeed"); such Secrets are made apart from the
    application's files, so a file naming one is not refused for it."""
    pod = pod_spec_from_manifest(docs(CONFIG, pull_secret="other"))
    assert pod.pull_auths == {}
    assert ("spec.imagePullSecrets[0].name: the Secret 'other' is not given; the images are pulled without its"
            " credentials") in " ".join(pod.warnings)


def test_refusals_name_the_secret():
    with pytest.raises(PodkitError, match="has neither .dockerconfigjson nor .dockercfg"):
        pod_spec_from_manifest(docs(CONFIG, secret_type="Opaque", key="config"))


def test_credentials_inside_a_dockerconfigjson_are_masked_before_parsing():
    import base64
    import json
    from ansible_collections.podkit.docker.plugins.module_utils._configdata import secret_texts
    auth = base64.b64encode(b"robot:in-auth-pw").decode()
    config = json.dumps({"auths": {"r.example": {"username": "robot", "password": "plain-pw"},
                                   "q.example": {"auth": auth}}})
    found = secret_texts([{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"},
                           "data": {".dockerconfigjson": base64.b64encode(config.encode()).decode()}}])
    assert {"plain-pw", auth, "robot:in-auth-pw", "in-auth-pw"} <= set(found)
