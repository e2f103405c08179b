"""imagePullSecrets with a real pull: a private registry on loopback that wants credentials.

The registry (tests/registry.py: docker-registry with htpasswd/bcrypt, plain HTTP on 127.0.0.1) holds the
local busybox image under a new name whose local tag was removed, so only a pull with the credentials of
the Secret given with the Pod can bring it. Without credentials or with wrong ones the pull fails with a
message naming the image's field and the Secret; the password never shows.
"""

import base64
import json

import pytest

from helpers import BUSYBOX_IMAGE, converge_manifest, remove_pod_leftovers
from registry import USER, Registry, remove_image

COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]


@pytest.fixture(scope="module")
def registry(docker_client):
    try:
        running = Registry()
    except (RuntimeError, OSError) as exc:
        pytest.fail("the private test registry cannot run: %s" % exc)
    yield running
    running.stop()


@pytest.fixture
def pushed(registry, docker_client, pod_name):
    ref = registry.push(docker_client, pod_name)
    yield ref
    remove_pod_leftovers(docker_client, pod_name)
    remove_image(docker_client, ref)


def docs(pod, ref, registry, password, with_secret=True, as_auth=False):
    entry = {"auth": base64.b64encode(("%s:%s" % (USER, password)).encode()).decode()} if as_auth else \
        {"username": USER, "password": password}
    config = {"auths": {registry.address: entry}}
    spec = {"containers": [{"name": "app", "image": ref, "command": COMMAND, "imagePullPolicy": "IfNotPresent"}]}
    if with_secret:
        spec["imagePullSecrets"] = [{"name": "regcred"}]
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred"}, "type": "kubernetes.io/dockerconfigjson",
         "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod}, "spec": spec},
    ]


def local_id(client, ref):
    import docker
    try:
        return client.images.get(ref).id
    except docker.errors.ImageNotFound:
        return None


def test_the_pods_secret_gives_the_pull_its_credentials(run_module, docker_client, pod_name, registry, pushed):
    assert local_id(docker_client, pushed) is None
    manifest = docs(pod_name, pushed, registry, registry.password)
    check = converge_manifest(run_module, manifest, check=True)
    assert "pull %s: not on the host" % pushed in check["actions"], check["actions"]
    assert local_id(docker_client, pushed) is None      # check mode pulled nothing
    result = converge_manifest(run_module, manifest, diff=True)
    assert result["actions"] == check["actions"]
    assert registry.password not in json.dumps(result)
    # The pulled image is the busybox image that was pushed (same content, same ID) and runs.
    assert local_id(docker_client, pushed) == docker_client.images.get(BUSYBOX_IMAGE).id
    attrs = docker_client.containers.get(pod_name + "_app").attrs
    assert attrs["State"]["Running"] and attrs["Config"]["Image"] == pushed
    with open("/proc/%d/cmdline" % attrs["State"]["Pid"], "rb") as handle:
        assert handle.read().split(b"\0")[:2] == [b"sh", b"-c"]
    assert converge_manifest(run_module, manifest)["changed"] is False

    # The legacy auth form (base64 user:password) works too, for a pull the policy Always asks for.
    remove_pod_leftovers(docker_client, pod_name)
    remove_image(docker_client, pushed)
    manifest = docs(pod_name, pushed, registry, registry.password, as_auth=True)
    result = converge_manifest(run_module, manifest)
    assert "pull %s: not on the host" % pushed in result["actions"] and registry.password not in json.dumps(result)


def test_a_pull_without_or_with_wrong_credentials_names_the_field(run_module, docker_client, pod_name, registry,
                                                                  pushed):
    bare = converge_manifest(run_module, docs(pod_name, pushed, registry, registry.password, with_secret=False),
                             expect_fail=True)
    assert ("containers[0].image: image %s: the registry %s refused the pull without credentials"
            % (pushed, registry.address)) in bare["msg"], bare["msg"]
    assert "spec.imagePullSecrets" in bare["msg"]
    wrong_password = "wrong-%s" % registry.password
    wrong = converge_manifest(run_module, docs(pod_name, pushed, registry, wrong_password), expect_fail=True)
    assert ("containers[0].image: image %s: pulling it with the credentials of spec.imagePullSecrets[0] (Secret "
            "'regcred') for registry %s failed" % (pushed, registry.address)) in wrong["msg"], wrong["msg"]
    assert wrong_password not in json.dumps(wrong) and registry.password not in json.dumps(wrong)
    assert local_id(docker_client, pushed) is None
    # The member was never created; nothing ran from an image that could not be pulled.
    assert [c.name for c in docker_client.containers.list(all=True, filters={"label": "io.podkit.pod=" + pod_name})
            if c.name != pod_name + "_sandbox"] == []
