"""Issue 17: pods exported as Kubernetes v1 Pod manifests, and the article's hand-made pod adopted.

Every pod the integration tests leave is already exported, validated against the Kubernetes schema
and applied back as a no-op by the pod fixtures (conftest.round_trip_left_pod); the corpus pods
go through it too. Here: what the export says for a podkit pod and for a hand-made one, Secrets kept
out unless asked (and then only with no_log), and playbooks/adopt.yml from "docker run by hand" to a
podkit pod whose members share the sandbox's namespaces at the kernel.
"""

import json
import subprocess

import yaml

from helpers import (
    BUSYBOX_IMAGE, CGROUP_ROOT, PAUSE_IMAGE, TOP, ansible_env, cgroup_dirs, container_ids, container_pid, export_pod,
    ns_inode, proc_cgroup, round_trip, validate_manifest)


def docker(*args):
    return subprocess.run(["docker"] + list(args), check=True, capture_output=True, text=True).stdout.strip()


def hand_made_pod(pod):
    """The article's recipe, with the local busybox: cgcreate, a sandbox, two members joining it."""
    parent = "/%s-pod" % pod
    subprocess.run(["cgcreate", "-g", "cpu,memory:%s" % parent], check=True)
    docker("run", "-d", "--name", pod + "_sandbox", "--cgroup-parent", parent, "--ipc", "shareable",
           BUSYBOX_IMAGE, "sleep", "infinity")
    docker("run", "-d", "--name", pod + "_app", "--cgroup-parent", parent, "--network", "container:%s_sandbox" % pod,
           "--ipc", "container:%s_sandbox" % pod, "--memory", "512MB", "--cpus", "0.5", "-e", "GREETING=hello",
           BUSYBOX_IMAGE, "httpd", "-f", "-p", "8080", "-h", "/")
    docker("run", "-d", "--name", pod + "_sidecar", "--cgroup-parent", parent,
           "--network", "container:%s_sandbox" % pod, "--ipc", "container:%s_sandbox" % pod,
           BUSYBOX_IMAGE, "sleep", "365d")
    return parent


def test_podkit_pod_export_reads_back_what_was_applied(run_module, docker_client, pod_name):
    run_module("pod", name=pod_name, sandbox_image=PAUSE_IMAGE, pull="never", hostname="web", dns=["192.0.2.53"],
               host_aliases=[{"ip": "192.0.2.10", "hostnames": ["db", "db.local"]}], ports=["127.0.0.1:18417:80"],
               containers=[{"name": "app", "image": BUSYBOX_IMAGE, "command": ["httpd", "-f", "-p", "80", "-h", "/"],
                            "env": [{"name": "MODE", "value": "$(KIND)-x"}, {"name": "KIND", "value": "a"}],
                            "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}, "requests": {"cpu": "100m"}}},
                           {"name": "sidecar", "image": BUSYBOX_IMAGE, "command": ["sleep", "3600"],
                            "env": [{"name": "TOKEN", "value": "s3cr3t-value-17", "secret": True}]}])
    entry = export_pod(run_module, pod_name)
    pod = entry["manifest"][0]
    assert pod["kind"] == "Pod" and pod["metadata"]["name"] == pod_name
    spec = pod["spec"]
    assert spec["hostname"] == "web" and spec["dnsConfig"]["nameservers"] == ["192.0.2.53"]
    assert spec["hostAliases"] == [{"ip": "192.0.2.10", "hostnames": ["db", "db.local"]}]
    app, sidecar = spec["containers"]
    assert app["command"] == ["httpd", "-f", "-p", "80", "-h", "/"]
    assert app["ports"] == [{"containerPort": 80, "hostPort": 18417, "hostIP": "127.0.0.1"}]
    assert app["resources"] == {"limits": {"memory": "64Mi", "cpu": "250m"}, "requests": {"cpu": "100m"}}
    # The $(VAR) text as written, not as Docker has it expanded.
    assert {"name": "MODE", "value": "$(KIND)-x"} in app["env"]
    reference = {"secretKeyRef": {"name": pod_name + "-sidecar-env", "key": "TOKEN"}}
    assert sidecar["env"] == [{"name": "TOKEN", "valueFrom": reference}]
    secret = entry["manifest"][1]
    assert secret["kind"] == "Secret" and secret["data"] == {"TOKEN": "czNjcjN0LXZhbHVlLTE3"}
    assert entry["manifest_options"] == {"sandbox_image": PAUSE_IMAGE}
    # Without as_manifest_secrets the Secret has no values, and nothing in the result holds the value.
    plain = run_module("pod_facts", name=[pod_name], as_manifest=True)
    assert "s3cr3t-value-17" not in json.dumps(plain["ansible_facts"]["podkit_pods"][pod_name]["manifest"])
    assert "data" not in plain["ansible_facts"]["podkit_pods"][pod_name]["manifest"][1]
    validate_manifest(plain["ansible_facts"]["podkit_pods"][pod_name]["manifest"])


def test_secret_values_need_a_no_log_task(run_module, pod_name):
    result = run_module("pod_facts", expect_fail=True, name=[pod_name], as_manifest=True, as_manifest_secrets=True)
    assert "as_manifest_secrets" in result["msg"] and "no_log" in result["msg"]


def test_native_sidecars_and_init_containers_keep_their_order(run_module, docker_client, pod_name):
    run_module("pod", name=pod_name, sandbox_image=PAUSE_IMAGE, pull="never", manifest={
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod_name, "namespace": "shop",
                                                        "labels": {"app": "web"}, "annotations": {"note": "kept"}},
        "spec": {"terminationGracePeriodSeconds": 5,
                 "initContainers": [
                     {"name": "zz-first", "image": BUSYBOX_IMAGE, "command": ["true"]},
                     {"name": "aa-logs", "image": BUSYBOX_IMAGE, "command": ["sleep", "3600"], "restartPolicy": "Always"},
                     {"name": "mm-third", "image": BUSYBOX_IMAGE, "command": ["true"]}],
                 "containers": [{"name": "app", "image": BUSYBOX_IMAGE, "command": ["sleep", "3600"]}]}})
    entry = round_trip(run_module, docker_client, pod_name)
    pod = entry["manifest"][0]
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["zz-first", "aa-logs", "mm-third"]
    assert pod["spec"]["initContainers"][1]["restartPolicy"] == "Always"
    assert pod["metadata"]["namespace"] == "shop"
    assert pod["metadata"]["labels"] == {"app": "web"} and pod["metadata"]["annotations"] == {"note": "kept"}
    assert pod["spec"]["terminationGracePeriodSeconds"] == 5


def test_hand_made_pod_exported_as_one_pod(run_module, docker_client, pod_name):
    parent = hand_made_pod(pod_name)
    entry = export_pod(run_module, pod_name + "_sandbox", include_unmanaged=True)
    pod = entry["manifest"][0]
    assert pod["metadata"]["name"] == pod_name
    names = sorted(c["name"] for c in pod["spec"]["containers"])
    assert names == [pod_name + "-app", pod_name + "-sidecar"], names
    app = next(c for c in pod["spec"]["containers"] if c["name"].endswith("-app"))
    assert app["resources"]["limits"] == {"memory": "512Mi", "cpu": "500m"}
    assert app["env"] == [{"name": "GREETING", "value": "hello"}]
    # busybox has no entrypoint: what docker run was given after the image is the image's Cmd replaced.
    assert "command" not in app and app["args"] == ["httpd", "-f", "-p", "8080", "-h", "/"]
    assert entry["manifest_options"] == {"cgroup_parent": parent}
    assert any("cgroup parent" in w for w in entry["manifest_warnings"])


def test_adopt_playbook_moves_the_hand_made_pod_under_podkit(docker_client, pod_name, tmp_path):
    parent = hand_made_pod(pod_name)
    hand_made = dict((name, docker_client.containers.get(pod_name + "_" + name).id) for name in ("sandbox", "app", "sidecar"))
    bystander = docker_client.containers.run(BUSYBOX_IMAGE, ["sleep", "600"], name=pod_name + "-bystander", detach=True)
    try:
        base = ["ansible-playbook", "-i", str(TOP / "inventory"), str(TOP / "playbooks" / "adopt.yml"),
                "-e", json.dumps({"podkit_adopt_dir": str(tmp_path), "podkit_adopt_sandbox_image": PAUSE_IMAGE,
                                  "podkit_adopt_pull": "never"})]
        # Without leave to remove the hand-made containers: exported, and nothing touched.
        refused = subprocess.run(base + ["-e", json.dumps({"podkit_adopt_pods": [pod_name]})], capture_output=True,
                                 text=True, env=ansible_env(), check=False)
        assert refused.returncode != 0 and "podkit_adopt_remove_hand_made=true" in refused.stdout, refused.stdout[-3000:]
        for name, container_id in hand_made.items():
            assert docker_client.containers.get(container_id).status == "running", name
        documents = [d for d in yaml.safe_load_all((tmp_path / (pod_name + ".yaml")).read_text()) if d]
        validate_manifest(documents)
        assert documents[0]["metadata"]["name"] == pod_name
        assert "cgroup parent" in (tmp_path / (pod_name + ".warnings")).read_text()

        adopted = subprocess.run(base + ["-e", json.dumps({"podkit_adopt_pods": [pod_name],
                                                           "podkit_adopt_remove_hand_made": True})],
                                 capture_output=True, text=True, env=ansible_env(), check=False)
        assert adopted.returncode == 0, adopted.stdout[-4000:] + adopted.stderr[-2000:]
        for container_id in hand_made.values():
            assert not docker_client.containers.list(all=True, filters={"id": container_id})
        assert docker_client.containers.get(bystander.id).status == "running"
        sandbox = docker_client.containers.get(pod_name + "_sandbox")
        assert sandbox.labels["io.podkit.pod"] == pod_name and sandbox.labels["io.podkit.role"] == "sandbox"
        assert sandbox.attrs["HostConfig"]["CgroupParent"] == parent
        sandbox_pid = sandbox.attrs["State"]["Pid"]
        for member in (pod_name + "-app", pod_name + "-sidecar"):
            container = docker_client.containers.get("%s_%s" % (pod_name, member))
            assert container.labels["io.podkit.pod"] == pod_name and container.labels["io.podkit.role"] == "member"
            pid = container.attrs["State"]["Pid"]
            for ns in ("net", "ipc"):
                assert ns_inode(pid, ns) == ns_inode(sandbox_pid, ns), (member, ns)
            assert ns_inode(pid, "mnt") != ns_inode(sandbox_pid, "mnt")
            with open("/proc/%d/cgroup" % pid) as handle:
                assert "memory:%s/" % parent in handle.read()
        app_pid = docker_client.containers.get("%s_%s-app" % (pod_name, pod_name)).attrs["State"]["Pid"]
        with open("/proc/%d/environ" % app_pid, "rb") as handle:
            assert b"GREETING=hello" in handle.read().split(b"\0")
        assert any(d.endswith(parent) for d in cgroup_dirs(pod_name))
        # Run again: the pod is podkit's now, so nothing is removed or re-created (and the fixture
        # round-trips the adopted pod before removing it).
        ids = container_ids(docker_client, pod_name)
        assert len(ids) == 3
        again = subprocess.run(base + ["-e", json.dumps({"podkit_adopt_pods": [pod_name],
                                                         "podkit_adopt_remove_hand_made": True})],
                               capture_output=True, text=True, env=ansible_env(), check=False)
        assert again.returncode == 0 and "changed=0" in again.stdout.split("PLAY RECAP")[-1], again.stdout[-3000:]
        assert container_ids(docker_client, pod_name) == ids
    finally:
        bystander.remove(force=True)
        # The hand-made containers (if the adoption failed), the pod and /<pod>-pod: the pod_name fixture.


def cgroup_value(parent, controller, filename):
    return int((CGROUP_ROOT / controller / parent.lstrip("/") / filename).read_text())


def test_a_pod_made_with_pod_sandbox_applies_back_leaving_its_cgroup_as_it_is(run_module, docker_client, pod_name):
    """pod_sandbox and pod_container put no pod-level limits on the cgroup, which Kubernetes cannot say
    when every container has a memory limit: the export keeps them with cgroup_limits: unmanaged, and the
    pod module takes the sandbox as it is (no QoS class) instead of recreating the pod."""
    parent = "/podkit/pod-" + pod_name
    run_module("pod_sandbox", pod=pod_name, image=PAUSE_IMAGE, pull="never", share_pid=True)
    for name, memory in (("app", "64Mi"), ("sidecar", "32Mi")):
        run_module("pod_container", pod=pod_name, name=name, image=BUSYBOX_IMAGE, pull="never",
                   command=["sleep", "3650d"], memory=memory)
    before = (cgroup_value(parent, "memory", "memory.limit_in_bytes"), cgroup_value(parent, "cpu", "cpu.shares"))
    assert before[0] >= 1 << 62 and before[1] == 1024
    entry = round_trip(run_module, docker_client, pod_name)
    assert entry["manifest_options"]["cgroup_limits"] == "unmanaged"
    assert entry["manifest"][0]["spec"]["shareProcessNamespace"] is True
    assert any("cgroup_limits: unmanaged" in w and "memory 96Mi" in w for w in entry["manifest_warnings"])
    after = (cgroup_value(parent, "memory", "memory.limit_in_bytes"), cgroup_value(parent, "cpu", "cpu.shares"))
    assert after == before
    sandbox = docker_client.containers.get(pod_name + "_sandbox")
    assert "io.podkit.qos-class" not in sandbox.labels
    for name in ("app", "sidecar"):
        pid = container_pid(docker_client, "%s_%s" % (pod_name, name))
        for ns in ("net", "ipc", "pid"):
            assert ns_inode(pid, ns) == ns_inode(sandbox.attrs["State"]["Pid"], ns), (name, ns)

    # Without cgroup_limits the pod module writes the limits the kubelet derives, and touches nothing else.
    ids = container_ids(docker_client, pod_name)
    result = run_module("pod", manifest=entry["manifest"], sandbox_image=PAUSE_IMAGE, pull="never", _ansible_no_log=True)
    assert result["actions"] == ["update cgroup %s: cpu_shares, memory_bytes changed" % parent]
    assert cgroup_value(parent, "memory", "memory.limit_in_bytes") == 96 << 20
    assert cgroup_value(parent, "cpu", "cpu.shares") == 2
    assert container_ids(docker_client, pod_name) == ids


def test_unmanaged_cgroup_limits_keep_what_cgroup_parent_set(run_module, docker_client, pod_name):
    parent = "/podkit/pod-" + pod_name
    run_module("cgroup_parent", name=parent, memory="512Mi", cpu_shares=512)
    containers = [{"name": "app", "image": BUSYBOX_IMAGE, "command": ["sleep", "3650d"],
                   "resources": {"limits": {"memory": "64Mi"}}}]
    args = dict(name=pod_name, sandbox_image=PAUSE_IMAGE, pull="never", containers=containers, cgroup_limits="unmanaged")
    assert run_module("pod", **args)["changed"]
    app = container_pid(docker_client, pod_name + "_app")
    assert proc_cgroup(app)["memory"].startswith(parent + "/")
    # The pod's limits are cgroup_parent's, not the 64Mi and 2 shares its container derives.
    assert cgroup_value(parent, "memory", "memory.limit_in_bytes") == 512 << 20
    assert cgroup_value(parent, "cpu", "cpu.shares") == 512
    assert not run_module("pod", **args)["changed"]
    failed = run_module("pod", expect_fail=True, resources={"limits": {"memory": "1Gi"}}, **args)
    assert "cgroup_limits: unmanaged" in failed["msg"] and "resources" in failed["msg"]
    assert cgroup_value(parent, "memory", "memory.limit_in_bytes") == 512 << 20
    # Kubernetes can say these limits: pod-level resources, which apply back as a no-op.
    entry = round_trip(run_module, docker_client, pod_name)
    assert entry["manifest"][0]["spec"]["resources"] == {"limits": {"memory": "512Mi"}, "requests": {"cpu": "500m"}}
    assert "cgroup_limits" not in entry["manifest_options"]
    # Removing the pod leaves the cgroup that is not podkit's, limits and all.
    assert run_module("pod", name=pod_name, state="absent", cgroup_limits="unmanaged")["changed"]
    assert not container_ids(docker_client, pod_name)
    assert cgroup_value(parent, "memory", "memory.limit_in_bytes") == 512 << 20


def test_config_maps_and_secrets_come_back_by_their_own_names(run_module, docker_client, pod_name):
    manifest = [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod_name}, "spec": {
            "volumes": [{"name": "conf", "configMap": {"name": "app-settings", "items": [{"key": "app.ini", "path": "app.ini"}]}}],
            "containers": [{"name": "app", "image": BUSYBOX_IMAGE, "command": ["sleep", "3650d"],
                            "env": [{"name": "LOG_LEVEL", "valueFrom": {"configMapKeyRef": {"name": "app-settings",
                                                                                            "key": "level"}}}],
                            "envFrom": [{"secretRef": {"name": "app-creds"}}],
                            "volumeMounts": [{"name": "conf", "mountPath": "/etc/app"}]}]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-settings"},
         "data": {"app.ini": "[main]\nworkers=2\n", "level": "info"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-creds"}, "stringData": {"DB_PASSWORD": "pw-17-named"}}]
    run_module("pod", manifest=manifest, sandbox_image=PAUSE_IMAGE, pull="never", _ansible_no_log=True)
    app = container_pid(docker_client, pod_name + "_app")
    with open("/proc/%d/root/etc/app/app.ini" % app) as handle:
        assert handle.read() == "[main]\nworkers=2\n"
    entry = round_trip(run_module, docker_client, pod_name)
    pod, *objects = entry["manifest"]
    env = dict((e["name"], e) for e in pod["spec"]["containers"][0]["env"])
    assert env["LOG_LEVEL"]["valueFrom"] == {"configMapKeyRef": {"name": "app-settings", "key": "level"}}
    assert env["DB_PASSWORD"]["valueFrom"] == {"secretKeyRef": {"name": "app-creds", "key": "DB_PASSWORD"}}
    assert pod["spec"]["volumes"] == [{"name": "conf", "configMap": {"name": "app-settings",
                                                                     "items": [{"key": "app.ini", "path": "app.ini"}]}}]
    objects = dict((d["metadata"]["name"], d) for d in objects)
    assert objects["app-settings"]["data"] == {"app.ini": "[main]\nworkers=2\n", "level": "info"}
    assert objects["app-creds"]["kind"] == "Secret" and set(objects["app-creds"]["data"]) == {"DB_PASSWORD"}
    # Without as_manifest_secrets: the Secret by name and key, no value.
    facts = run_module("pod_facts", name=[pod_name], as_manifest=True)
    hidden = facts["ansible_facts"]["podkit_pods"][pod_name]
    assert "pw-17-named" not in json.dumps(facts)
    secret = next(d for d in hidden["manifest"] if d["kind"] == "Secret")
    assert secret["metadata"]["name"] == "app-creds" and "data" not in secret
    validate_manifest(hidden["manifest"])
