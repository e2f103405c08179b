"""remove_claims: a pod's persistentVolumeClaim volumes outlive it unless asked, and only podkit's own go."""

import pytest

from helpers import BUSYBOX_IMAGE, converge_manifest, remove_pod_leftovers

COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]


def pod(name, *claims):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "volumes": [{"name": "v%d" % i, "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)],
        "containers": [{"name": "app", "image": BUSYBOX_IMAGE, "command": COMMAND,
                        "volumeMounts": [{"name": "v%d" % i, "mountPath": "/c%d" % i} for i in range(len(claims))]}]}}


@pytest.fixture
def volumes(docker_client):
    """Volume names the test makes; removed afterwards, once the pods in ``volumes.pods`` are gone."""
    made = Made()
    yield made
    for name in made.pods:
        remove_pod_leftovers(docker_client, name)
    for name in made:
        for volume in docker_client.volumes.list(filters={"name": name}):
            if volume.name == name:
                volume.remove(force=True)


class Made(list):
    pods = []


def exists(client, name):
    return any(v.name == name for v in client.volumes.list(filters={"name": name}))


def test_claims_outlive_the_pod_unless_remove_claims(run_module, docker_client, pod_names, volumes):
    first, second = pod_names(), pod_names()
    volumes.pods = [first, second]
    own, shared, foreign = first + "-own", first + "-shared", first + "-foreign"
    volumes.extend([own, shared, foreign])
    docker_client.volumes.create(foreign)       # the user's own volume: no podkit label
    converge_manifest(run_module, pod(first, own, shared, foreign))
    converge_manifest(run_module, pod(second, shared))
    for name in (own, shared):
        assert docker_client.volumes.get(name).attrs["Labels"] == {"io.podkit.claim": name}

    # By default state absent leaves every claim.
    run_module("pod", name=first, state="absent")
    assert all(exists(docker_client, n) for n in (own, shared, foreign))

    converge_manifest(run_module, pod(first, own, shared, foreign))
    check = run_module("pod", name=first, state="absent", remove_claims=True, check=True)
    assert "remove claim volume %s: remove_claims" % own in check["actions"], check["actions"]
    assert exists(docker_client, own)
    result = run_module("pod", name=first, state="absent", remove_claims=True)
    assert result["actions"] == check["actions"]
    assert not exists(docker_client, own)
    # The claim another pod still mounts is kept and named; the user's own volume is never a candidate.
    assert exists(docker_client, shared) and exists(docker_client, foreign)
    warnings = " ".join(str(w) for w in result.get("warnings") or [])
    assert "the volume of claim %s is kept; other containers mount it (%s_app)" % (shared, second) in warnings, warnings
    assert not [a for a in result["actions"] if foreign in a]

    # Through pods, shared once: the last user of the shared claim removes it.
    result = run_module("pods", pods=[{"name": second, "state": "absent"}], remove_claims=True)
    assert result["changed"] and not exists(docker_client, shared), result
    assert exists(docker_client, foreign)
