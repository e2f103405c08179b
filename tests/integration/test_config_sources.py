"""ConfigMaps and Secrets given with a Pod: a changed key restarts exactly the containers using it.

Containers are told apart by their Docker IDs and start times; env is read from /proc/<pid>/environ.
"""

import copy

from helpers import BUSYBOX_IMAGE, PAUSE_IMAGE, converge_manifest, proc_environ, warning_text

SLEEP = ["sleep", "3600"]


def manifest(pod, colour="blue", level="debug", password="first-password"):
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "looks"}, "data": {"colour": colour}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "logging"}, "data": {"level": level}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": password}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod}, "spec": {"containers": [
            {"name": "painter", "image": BUSYBOX_IMAGE, "command": SLEEP,
             "env": [{"name": "COLOUR", "valueFrom": {"configMapKeyRef": {"name": "looks", "key": "colour"}}}]},
            {"name": "logger", "image": BUSYBOX_IMAGE, "command": SLEEP,
             "envFrom": [{"configMapRef": {"name": "logging"}, "prefix": "LOG_"}]},
            {"name": "db", "image": BUSYBOX_IMAGE, "command": SLEEP,
             "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]},
            {"name": "bystander", "image": BUSYBOX_IMAGE, "command": SLEEP},
        ]}},
    ]


def state(client, pod):
    found = {}
    for container in client.containers.list(all=True, filters={"label": "io.podkit.pod=" + pod}):
        found[container.labels["io.podkit.container"]] = (container.id, container.attrs["State"]["StartedAt"],
                                                          container.attrs["State"]["Pid"])
    return found


def test_a_changed_key_restarts_only_its_consumers(run_module, docker_client, pod_name):
    converge_manifest(run_module, manifest(pod_name))
    before = state(docker_client, pod_name)
    assert proc_environ(before["painter"][2])["COLOUR"] == "blue"
    assert proc_environ(before["logger"][2])["LOG_level"] == "debug"
    assert converge_manifest(run_module, manifest(pod_name))["changed"] is False

    check = converge_manifest(run_module, manifest(pod_name, colour="green"), check=True)
    assert check["actions"] == ["recreate painter: config changed (env)"], check["actions"]
    assert state(docker_client, pod_name) == before
    result = converge_manifest(run_module, manifest(pod_name, colour="green"))
    assert result["actions"] == ["recreate painter: config changed (env)"], result["actions"]
    after = state(docker_client, pod_name)
    assert after["painter"][0] != before["painter"][0]
    for other in ("sandbox", "logger", "db", "bystander"):
        assert after[other][:2] == before[other][:2], other
    assert proc_environ(after["painter"][2])["COLOUR"] == "green"

    result = converge_manifest(run_module, manifest(pod_name, colour="green", level="warn"))
    assert result["actions"] == ["recreate logger: config changed (env)"], result["actions"]
    final = state(docker_client, pod_name)
    assert proc_environ(final["logger"][2])["LOG_level"] == "warn"
    for other in ("sandbox", "painter", "db", "bystander"):
        assert final[other][:2] == after[other][:2], other

    result = converge_manifest(run_module, manifest(pod_name, colour="green", level="warn", password="second"), diff=True)
    assert result["actions"] == ["recreate db: config changed (env)"], result["actions"]
    assert "second" not in repr(result) and "first-password" not in repr(result)
    assert proc_environ(state(docker_client, pod_name)["db"][2])["PASSWORD"] == "second"


def test_a_missing_config_map_is_named(run_module, docker_client, pod_name):
    docs = copy.deepcopy(manifest(pod_name))
    del docs[0]
    result = converge_manifest(run_module, docs, expect_fail=True)
    assert "the ConfigMap 'looks' is not given" in result["msg"], result["msg"]
    assert not docker_client.containers.list(all=True, filters={"label": "io.podkit.pod=" + pod_name})


def test_manifest_file(run_module, docker_client, pod_name, tmp_path):
    import yaml
    path = tmp_path / "pod.yaml"
    path.write_text(yaml.safe_dump_all(manifest(pod_name)))
    result = run_module("pod", manifest_file=str(path), sandbox_image=PAUSE_IMAGE, pull="never")
    assert result["changed"] and "first-password" not in repr(result)
    assert proc_environ(state(docker_client, pod_name)["painter"][2])["COLOUR"] == "blue"


def files_manifest(pod, colour="blue", password="first-password"):
    docs = manifest(pod, colour=colour, password=password)
    spec = docs[-1]["spec"]
    spec["volumes"] = [{"name": "looks", "configMap": {"name": "looks"}},
                       {"name": "db", "secret": {"secretName": "db", "defaultMode": 0o400}}]
    spec["containers"] = [
        {"name": "reader", "image": BUSYBOX_IMAGE, "command": SLEEP,
         "volumeMounts": [{"name": "looks", "mountPath": "/etc/looks"}]},
        {"name": "vault", "image": BUSYBOX_IMAGE, "command": SLEEP,
         "volumeMounts": [{"name": "db", "mountPath": "/etc/db"}]},
        {"name": "bystander", "image": BUSYBOX_IMAGE, "command": SLEEP},
    ]
    return docs


def in_container(pid, path):
    with open("/proc/%d/root%s" % (pid, path)) as handle:
        return handle.read()


def test_a_changed_key_in_a_volume_restarts_only_its_consumers(run_module, docker_client, pod_name):
    import os
    converge_manifest(run_module, files_manifest(pod_name))
    before = state(docker_client, pod_name)
    assert in_container(before["reader"][2], "/etc/looks/colour") == "blue"
    assert in_container(before["vault"][2], "/etc/db/password") == "first-password"
    assert converge_manifest(run_module, files_manifest(pod_name))["changed"] is False

    check = converge_manifest(run_module, files_manifest(pod_name, colour="red"), check=True)
    assert check["actions"] == ["write files of volume looks: content changed",
                                "recreate reader: config changed (volume_content)"], check["actions"]
    assert in_container(before["reader"][2], "/etc/looks/colour") == "blue"     # check mode wrote nothing
    result = converge_manifest(run_module, files_manifest(pod_name, colour="red"))
    assert result["actions"] == check["actions"]
    after = state(docker_client, pod_name)
    assert in_container(after["reader"][2], "/etc/looks/colour") == "red"
    for other in ("sandbox", "vault", "bystander"):
        assert after[other][:2] == before[other][:2], other

    result = converge_manifest(run_module, files_manifest(pod_name, colour="red", password="second"), diff=True)
    assert result["actions"] == ["write files of volume db: content changed",
                                 "recreate vault: config changed (volume_content)"], result["actions"]
    assert "second" not in repr(result)
    assert in_container(state(docker_client, pod_name)["vault"][2], "/etc/db/password") == "second"
    host = "/run/podkit/secrets/%s/db" % pod_name
    assert os.stat(os.path.dirname(os.path.dirname(host))).st_mode & 0o777 == 0o700

    run_module("pod", name=pod_name, state="absent")
    assert not os.path.exists(host) and not os.path.exists("/run/podkit/volumes/%s" % pod_name)


def pull_secret_docs(pod, password, policy="IfNotPresent", secret="regcred"):
    import base64
    import json
    config = {"auths": {"registry.example.invalid": {"username": "robot", "password": password}}}
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred"}, "type": "kubernetes.io/dockerconfigjson",
         "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod}, "spec": {
            "imagePullSecrets": [{"name": secret}],
            "containers": [{"name": "app", "image": "registry.example.invalid/team/app:1.0", "command": SLEEP,
                            "imagePullPolicy": policy}]}}]


def test_image_pull_secret_lookup_and_refusals(run_module, docker_client, pod_name):
    """No registry answers here, so no pull with the credentials is made: check mode shows the pull the
    Secret's credentials would serve, a pull policy of Never refuses naming the image, a missing Secret
    is named in a warning. The credentials never show."""
    password = "pull-pw-%s" % pod_name
    check = converge_manifest(run_module, pull_secret_docs(pod_name, password), check=True)
    assert "pull registry.example.invalid/team/app:1.0: not on the host" in check["actions"], check["actions"]
    assert password not in repr(check)
    refused = converge_manifest(run_module, pull_secret_docs(pod_name, password, policy="Never"), expect_fail=True)
    assert "registry.example.invalid/team/app:1.0 is not on the host and pull is never" in refused["msg"]
    assert password not in repr(refused)
    # A pull secret not given is named and the pull goes on without it, as the kubelet goes on (check mode: no
    # registry answers here, so no pull is tried).
    missing = converge_manifest(run_module, pull_secret_docs(pod_name, password, secret="other"), check=True)
    assert "spec.imagePullSecrets[0].name: the Secret 'other' is not given" in " ".join(warning_text(w) for w in missing["warnings"])
    assert "pull registry.example.invalid/team/app:1.0: not on the host" in missing["actions"], missing["actions"]
    assert not docker_client.containers.list(all=True, filters={"label": "io.podkit.pod=" + pod_name})
