# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Manifest and native-option translation, port parsing, QoS class, pod resources, config hash."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


import pytest

from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._spec import (
    DEFAULT_SANDBOX_IMAGE, ContainerSpec, PodSpec, PortMapping, Resources, SandboxSpec, parse_port,
    pod_resources, pod_spec_from_manifest, pod_spec_from_params, qos_class, validate_pod_name)

MI = 1024 ** 2

# The article's manifest, with the local busybox image standing in for httpbin and curl.
ARTICLE = """
apiVersion: v1
kind: Pod
metadata:
  name: foo
spec:
  containers:
  - name: app
    image: podkit/busybox:latest
    command: ["httpd", "-f", "-p", "80"]
    ports:
    - containerPort: 80
    resources:
      limits:
        memory: "256Mi"
  - name: sidecar
    image: podkit/busybox:latest
    command: ["/bin/sleep", "3650d"]
    resources:
      limits:
        memory: "128Mi"
"""


def manifest(**spec_changes):
    base = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "app", "image": "podkit/busybox"}]}}
    base["spec"].update(spec_changes)
    return base


def container(name="app", **extra):
    item = {"name": name, "image": "podkit/busybox"}
    item.update(extra)
    return item


def fails(func, *args, **kwargs):
    with pytest.raises(PodkitError) as err:
        func(*args, **kwargs)
    return err.value.msg


# ------------------------------------------------------------------ the article's manifest

def test_article_manifest_translates():
    pod = pod_spec_from_manifest(ARTICLE)
    assert pod.name == "foo"
    assert [c.name for c in pod.containers] == ["app", "sidecar"]
    app, sidecar = pod.containers
    assert app.command == ["httpd", "-f", "-p", "80"] and app.args is None
    assert app.ports == [PortMapping(container_port=80)]
    assert app.resources == Resources(memory_limit=256 * MI, memory_request=256 * MI)
    assert sidecar.resources.memory_limit == 128 * MI
    assert app.share == ("net", "ipc") and app.restart_policy == "Always" and app.pull == "missing"
    assert pod.sandbox.ports == []  # containerPort without hostPort is not published
    assert pod.sandbox.image == DEFAULT_SANDBOX_IMAGE
    assert pod_resources(pod).memory_limit == 402653184
    assert pod_resources(pod).cpu_limit is None
    assert qos_class(pod) == "Burstable"


def test_manifest_as_dict_equals_yaml_text():
    import yaml
    assert pod_spec_from_manifest(yaml.safe_load(ARTICLE)) == pod_spec_from_manifest(ARTICLE)


def test_full_manifest():
    pod = pod_spec_from_manifest({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}, "annotations": {"a": "b"}},
        "spec": {
            "restartPolicy": "OnFailure",
            "shareProcessNamespace": True,
            "hostname": "web-host",
            "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["example.org"],
                          "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]},
            "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["foo.local", "bar.local"]}],
            "volumes": [{"name": "data", "hostPath": {"path": "/srv/data", "type": "DirectoryOrCreate"}},
                        {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}],
            "initContainers": [{"name": "init", "image": "podkit/busybox", "args": ["echo", "hi"],
                                "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
            "containers": [{
                "name": "app", "image": "podkit/busybox", "imagePullPolicy": "Never", "workingDir": "/srv",
                "env": [{"name": "A", "value": "1"}, {"name": "EMPTY"}],
                "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1", "protocol": "UDP", "name": "http"}],
                "resources": {"limits": {"memory": "129M", "cpu": "500m"}, "requests": {"memory": "64Mi", "cpu": 0.25}},
                "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True, "subPath": "app"}],
            }],
        }})
    assert pod.restart_policy == "OnFailure"
    sandbox = pod.sandbox
    assert sandbox.share_pid and sandbox.hostname == "web-host"
    assert sandbox.dns == ["1.1.1.1"] and sandbox.dns_search == ["example.org"]
    assert sandbox.dns_options == ["ndots:2", "edns0"]
    assert sandbox.extra_hosts == {"foo.local": "127.0.0.1", "bar.local": "127.0.0.1"}
    assert sandbox.labels == {"app": "web"}
    assert sandbox.ports == [PortMapping(container_port=80, host_port=8080, host_ip="127.0.0.1", protocol="udp")]
    data, scratch = pod.volumes
    assert (data.kind, data.host_path, data.host_path_type) == ("hostPath", "/srv/data", "DirectoryOrCreate")
    assert (scratch.kind, scratch.medium, scratch.size_limit) == ("emptyDir", "Memory", 64 * MI)
    init = pod.init_containers[0]
    assert init.init and init.restart_policy == "Never" and init.args == ["echo", "hi"]
    app = pod.containers[0]
    assert app.share == ("net", "ipc", "pid") and app.restart_policy == "OnFailure"
    assert app.pull == "never" and app.working_dir == "/srv"
    assert app.env == {"A": "1", "EMPTY": ""}
    assert app.resources == Resources(memory_limit=129000000, memory_request=64 * MI, cpu_limit=500, cpu_request=250)
    mount = app.mounts[0]
    assert (mount.volume, mount.mount_path, mount.read_only, mount.sub_path) == ("data", "/data", True, "app")


@pytest.mark.parametrize("policy,pull", [("Always", "always"), ("IfNotPresent", "missing"), ("Never", "never")])
def test_image_pull_policy(policy, pull):
    pod = pod_spec_from_manifest(manifest(containers=[container(imagePullPolicy=policy)]))
    assert pod.containers[0].pull == pull


def test_module_level_settings_apply_to_a_manifest():
    pod = pod_spec_from_manifest(manifest(), name="p", cgroup_parent="/pod-foo", sandbox_image="podkit/pause:latest",
                                 pull="never", resources={"limits": {"memory": "512MB"}})
    assert pod.sandbox.cgroup_parent == "/pod-foo" and pod.sandbox.image == "podkit/pause:latest"
    assert pod.containers[0].pull == "never" and pod.sandbox.pull == "never"
    # The module's own resources option is native: Docker sizes are read as Docker reads them.
    assert pod.resources.memory_limit == 536870912


def test_manifest_name_comes_from_the_module_when_metadata_has_none():
    doc = manifest()
    del doc["metadata"]
    assert pod_spec_from_manifest(doc, name="given").name == "given"


# ------------------------------------------------------------------ bad manifests

def bad_manifest(doc, expected, **kwargs):
    msg = fails(pod_spec_from_manifest, doc, **kwargs)
    assert expected in msg, msg
    return msg


def test_missing_containers():
    bad_manifest(manifest(containers=[]), "spec.containers is required")
    doc = manifest()
    del doc["spec"]["containers"]
    bad_manifest(doc, "spec.containers is required")
    bad_manifest({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}, "spec.containers is required")


@pytest.mark.parametrize("kind", ["pod", None, "Service"])
def test_unknown_kind(kind):
    doc = manifest()
    doc["kind"] = kind
    bad_manifest(doc, "manifest.kind: %r is not supported" % kind)


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob"])
def test_workload_kind_points_to_the_pods_module(kind):
    doc = manifest()
    doc["kind"] = kind
    msg = bad_manifest(doc, "manifest.kind: %s is a workload" % kind)
    assert "podkit.docker.pods" in msg


@pytest.mark.parametrize("version", ["apps/v1", "v2", None])
def test_unknown_api_version(version):
    doc = manifest()
    doc["apiVersion"] = version
    bad_manifest(doc, "manifest.apiVersion")


@pytest.mark.parametrize("text", ["", "just a string", "- a\n- list", "key: [unclosed", "42"])
def test_not_a_pod(text):
    assert "manifest" in fails(pod_spec_from_manifest, text)


def test_duplicate_container_names():
    bad_manifest(manifest(containers=[container("app"), container("app")]),
                 "spec.containers[1].name: 'app' is already the name of spec.containers[0]")
    bad_manifest(manifest(initContainers=[container("app")], containers=[container("app")]),
                 "spec.containers[0].name: 'app' is already the name of spec.initContainers[0]")


@pytest.mark.parametrize("ports_a,ports_b", [
    ([{"containerPort": 80, "hostPort": 8080}], [{"containerPort": 81, "hostPort": 8080}]),
    ([{"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"}], [{"containerPort": 81, "hostPort": 8080}]),
    ([{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}], [{"containerPort": 80, "hostPort": 8080, "protocol": "udp"}]),
])
def test_same_host_port_twice(ports_a, ports_b):
    bad_manifest(manifest(containers=[container("a", ports=ports_a), container("b", ports=ports_b)]),
                 "spec.containers[1].ports[0]: host port")


@pytest.mark.parametrize("ports_a,ports_b", [
    ([{"containerPort": 80, "hostPort": 8080}], [{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]),
    ([{"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"}],
     [{"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.2"}]),
    ([{"containerPort": 80}], [{"containerPort": 80}]),
])
def test_different_host_ports_are_fine(ports_a, ports_b):
    pod = pod_spec_from_manifest(manifest(containers=[container("a", ports=ports_a), container("b", ports=ports_b)]))
    assert len(pod.sandbox.ports) == sum(1 for p in ports_a + ports_b if "hostPort" in p)


@pytest.mark.parametrize("path,change", [
    ("spec.containers[0].securityContext.seLinuxOptions", lambda d: d["spec"]["containers"][0].update(
        securityContext={"seLinuxOptions": {}})),
    ("spec.ephemeralContainers", lambda d: d["spec"].update(ephemeralContainers=[])),
    ("spec.volumes[0].gitRepo", lambda d: d["spec"].update(volumes=[{"name": "v", "gitRepo": {}}])),
    ("spec.volumes[0].hostPath.readOnly", lambda d: d["spec"].update(
        volumes=[{"name": "v", "hostPath": {"path": "/x", "readOnly": True}}])),
    ("spec.containers[0].ports[0].hostNetwork", lambda d: d["spec"]["containers"][0].update(
        ports=[{"containerPort": 80, "hostNetwork": 1}])),
    ("spec.containers[0].resources.claims", lambda d: d["spec"]["containers"][0].update(resources={"claims": []})),
    ("spec.containers[0].volumeMounts[0].mountPropagation", lambda d: d["spec"]["containers"][0].update(
        volumeMounts=[{"name": "v", "mountPath": "/v", "mountPropagation": "None"}])),
    ("spec.dnsConfig.foo", lambda d: d["spec"].update(dnsConfig={"foo": 1})),
    ("spec.containers[0].user", lambda d: d["spec"]["containers"][0].update(user="1000")),  # native-only extra
])
def test_unsupported_field(path, change):
    doc = manifest()
    change(doc)
    msg = bad_manifest(doc, path + " is not supported by podkit; remove it")
    assert "supported here:" in msg


def test_value_from_names_what_is_missing():
    bad_manifest(manifest(containers=[container(env=[{"name": "A", "valueFrom": {"secretKeyRef": {}}}])]),
                 "spec.containers[0].env[0].valueFrom.secretKeyRef.name is required")


def test_memory_limit_below_minimum():
    bad_manifest(manifest(containers=[container(resources={"limits": {"memory": "4Mi"}})]),
                 "spec.containers[0].resources.limits.memory: '4Mi' (4194304 bytes) is below the minimum")


def test_docker_size_in_a_manifest_is_refused():
    bad_manifest(manifest(containers=[container(resources={"limits": {"memory": "512MB"}})]),
                 "spec.containers[0].resources.limits.memory: '512MB' is not a valid memory quantity")


@pytest.mark.parametrize("resources,key", [
    ({"limits": {"memory": "128Mi"}, "requests": {"memory": "256Mi"}}, "memory"),
    ({"limits": {"cpu": "500m"}, "requests": {"cpu": "1"}}, "cpu"),
])
def test_request_above_limit(resources, key):
    bad_manifest(manifest(containers=[container(resources=resources)]),
                 "spec.containers[0].resources.requests.%s" % key)


def test_mount_of_unknown_volume():
    bad_manifest(manifest(containers=[container(volumeMounts=[{"name": "nope", "mountPath": "/x"}])]),
                 "spec.containers[0].volumeMounts[0].name: no volume named 'nope'")


@pytest.mark.parametrize("name", ["App", "my_app", "-app", "app-", "a" * 64, "", "sandbox", 7])
def test_invalid_container_name(name):
    bad_manifest(manifest(containers=[container(name)]), "spec.containers[0].name")


@pytest.mark.parametrize("name", ["-foo", "foo bar", "foo/bar", "_foo", "a" * 64, "", "föö"])
def test_invalid_pod_name(name):
    doc = manifest()
    doc["metadata"]["name"] = name
    bad_manifest(doc, "metadata.name")


def test_pod_name_must_agree():
    bad_manifest(manifest(), "does not match the manifest's metadata.name", name="other")
    assert pod_spec_from_manifest(manifest(), name="p").name == "p"


@pytest.mark.parametrize("change,expected", [
    (dict(restartPolicy="Sometimes"), "spec.restartPolicy: 'Sometimes'"),
    (dict(shareProcessNamespace="yes"), "spec.shareProcessNamespace must be true or false"),
    (dict(hostname="Not_A_Host"), "spec.hostname"),
    (dict(dnsConfig={"nameservers": ["not-an-ip"]}), "spec.dnsConfig.nameservers[0]"),
    (dict(hostAliases=[{"ip": "x", "hostnames": ["a"]}]), "spec.hostAliases[0].ip"),
    (dict(hostAliases=[{"ip": "127.0.0.1", "hostnames": ["a"]}, {"ip": "127.0.0.2", "hostnames": ["a"]}]),
     "spec.hostAliases[1].hostnames[0]"),
    (dict(volumes=[{"name": "v", "hostPath": {"path": "/a"}, "emptyDir": {}}]),
     "spec.volumes[0]: a volume needs exactly one of hostPath or emptyDir"),
    (dict(volumes=[{"name": "v", "hostPath": {"path": "/a"}}, {"name": "v", "emptyDir": {}}]), "spec.volumes[1].name"),
    (dict(volumes=[{"name": "v", "hostPath": {"path": "rel"}}]), "spec.volumes[0].hostPath.path"),
    (dict(volumes=[{"name": "v", "hostPath": {"path": "/a", "type": "Dir"}}]), "spec.volumes[0].hostPath.type"),
    (dict(volumes=[{"name": "v", "emptyDir": {"medium": "HugePages"}}]), "spec.volumes[0].emptyDir.medium"),
    (dict(volumes=[{"name": "v", "emptyDir": {"sizeLimit": "lots"}}]), "spec.volumes[0].emptyDir.sizeLimit"),
    (dict(volumes=[{"name": "V", "emptyDir": {}}]), "spec.volumes[0].name"),
    (dict(containers=[container(image=None)]), "spec.containers[0].image is required"),
    (dict(containers=[container(command="sleep 10")]), "spec.containers[0].command must be a list"),
    (dict(containers=[container(args=[["nested"]])]), "spec.containers[0].args[0]"),
    (dict(containers=[container(env={"A": "1"})]), "spec.containers[0].env must be a list"),
    (dict(containers=[container(env=[{"name": "A", "value": True}])]), "spec.containers[0].env[0].value"),
    (dict(containers=[container(env=[{"name": "A=B", "value": "1"}])]), "spec.containers[0].env[0].name"),
    (dict(containers=[container(env=[{"name": "A"}, {"name": "A"}])]), "spec.containers[0].env[1].name"),
    (dict(containers=[container(ports=[{"hostPort": 80}])]), "spec.containers[0].ports[0].containerPort is required"),
    (dict(containers=[container(ports=[{"containerPort": 70000}])]), "spec.containers[0].ports[0].containerPort"),
    (dict(containers=[container(ports=[{"containerPort": 80, "protocol": "ICMP"}])]), "spec.containers[0].ports[0].protocol"),
    (dict(containers=[container(ports=[{"containerPort": 80, "hostPort": 1, "hostIP": "localhost"}])]),
     "spec.containers[0].ports[0].hostIP"),
    (dict(containers=[container(imagePullPolicy="Sometimes")]), "spec.containers[0].imagePullPolicy"),
    (dict(containers=[container(workingDir="rel")]), "spec.containers[0].workingDir"),
    (dict(containers=[container(resources={"limits": {"cpu": "0.0001"}})]), "spec.containers[0].resources.limits.cpu"),
    (dict(containers=[container(resources={"limits": {"memory": "256m"}})]), "spec.containers[0].resources.limits.memory"),
    (dict(containers=[container(resources=[1])]), "spec.containers[0].resources must be a mapping"),
    (dict(containers=["app"]), "spec.containers[0] must be a mapping"),
    (dict(containers=[None]), "spec.containers[0] must be a mapping"),
    (dict(containers=container()), "spec.containers must be a list"),
    (dict(volumes=[{"name": "v", "emptyDir": {}}],
          containers=[container(volumeMounts=[{"name": "v", "mountPath": "/v", "subPath": "../etc"}])]),
     "spec.containers[0].volumeMounts[0].subPath"),
    (dict(volumes=[{"name": "v", "emptyDir": {}}],
          containers=[container(volumeMounts=[{"name": "v", "mountPath": "/v"}, {"name": "v", "mountPath": "/v"}])]),
     "spec.containers[0].volumeMounts[1].mountPath"),
    (dict(resources={"limits": {"memory": "1Mi"}}), "spec.resources.limits.memory"),
])
def test_bad_manifest_fields(change, expected):
    bad_manifest(manifest(**change), expected)


def test_manifest_and_module_resources_conflict():
    bad_manifest(manifest(resources={"limits": {"memory": "1Gi"}}), "resources:",
                 resources={"limits": {"memory": "1Gi"}})


def test_init_container_in_manifest_names_its_path():
    bad_manifest(manifest(initContainers=[container("init", livenessProbe={"exec": {"command": ["true"]}})]),
                 "spec.initContainers[0]: init containers take no probes")


# ------------------------------------------------------------------ native options

def params(**extra):
    base = {"name": "p", "containers": [container()]}
    base.update(extra)
    return base


def test_native_options():
    pod = pod_spec_from_params(params(
        containers=[container("app", env={"A": 1, "TOKEN": "s3cret"}, secret_env=["TOKEN"], user="1000:1000",
                              working_dir="/srv", ports=["127.0.0.1:8081:81", {"containerPort": 82}],
                              resources={"limits": {"memory": "512MB", "cpu": 0.5}}),
                    container("side", env=[{"name": "PW", "value": "x", "secret": True}], share=["net"],
                              volume_mounts=[{"name": "data", "mountPath": "/data"}], pull="never")],
        init_containers=[container("init")],
        restart_policy="Never", hostname="h", ports=["8080:80", "[::1]:8443:443/tcp"], dns=["8.8.8.8"],
        dns_search=["a.example"], host_aliases={"db.local": "127.0.0.1"}, cgroup_parent="/pod-foo",
        sandbox_image="podkit/pause:latest", pull="missing",
        resources={"limits": {"memory": "1g", "cpu": "2"}},
        volumes=[{"name": "data", "emptyDir": {}}]))
    app, side = pod.containers
    assert app.env == {"A": "1", "TOKEN": "s3cret"} and app.secret_env == ("TOKEN",)
    assert app.user == "1000:1000" and app.working_dir == "/srv"
    assert app.resources == Resources(memory_limit=536870912, memory_request=536870912, cpu_limit=500, cpu_request=500)
    assert app.restart_policy == "Never"
    assert side.secret_env == ("PW",) and side.share == ("net",) and side.pull == "never"
    assert side.mounts[0].volume == "data"
    assert pod.init_containers[0].init
    assert pod.sandbox.ports == [
        PortMapping(80, 8080), PortMapping(443, 8443, "::1", "tcp"), PortMapping(81, 8081, "127.0.0.1", "tcp")]
    assert pod.sandbox.hostname == "h" and pod.sandbox.dns == ["8.8.8.8"] and pod.sandbox.dns_search == ["a.example"]
    assert pod.sandbox.extra_hosts == {"db.local": "127.0.0.1"}
    assert pod.sandbox.cgroup_parent == "/pod-foo" and pod.sandbox.image == "podkit/pause:latest"
    assert pod.resources == Resources(memory_limit=1024 ** 3, memory_request=1024 ** 3, cpu_limit=2000, cpu_request=2000)
    assert pod_resources(pod).memory_limit == 1024 ** 3


def test_native_defaults():
    pod = pod_spec_from_params({"name": "p", "containers": [container()], "ports": None, "dns": None,
                                "share_process_namespace": None, "pull": None, "restart_policy": None})
    assert pod.sandbox == SandboxSpec(pod="p")
    assert pod.containers[0] == ContainerSpec(name="app", image="podkit/busybox")
    assert pod.resources is None and pod.restart_policy == "Always"


def test_native_share_process_namespace():
    pod = pod_spec_from_params(params(share_process_namespace=True))
    assert pod.sandbox.share_pid and pod.containers[0].share == ("net", "ipc", "pid")


def test_params_with_manifest():
    pod = pod_spec_from_params({"name": None, "manifest": ARTICLE, "cgroup_parent": "/pod-foo", "containers": None,
                                "pull": "never", "resources": None})
    assert pod.name == "foo" and pod.sandbox.cgroup_parent == "/pod-foo" and pod.containers[0].pull == "never"


@pytest.mark.parametrize("change,expected", [
    (dict(manifest=ARTICLE), "manifest: give the pod either as manifest or as native options"),
    (dict(name="bad name"), "name: 'bad name' is not a valid pod name"),
    (dict(name=None), "name: a pod name is required"),
    (dict(containers=[]), "containers is required"),
    (dict(containers=None), "containers is required"),
    (dict(containers=[container(), container()]), "containers[1].name: 'app' is already the name of containers[0]"),
    (dict(init_containers=[container()]), "containers[0].name: 'app' is already the name of init_containers[0]"),
    (dict(ports=["8080:80"], containers=[container(ports=["8080:81"])]), "containers[0].ports[0]: host port 8080/tcp"),
    (dict(ports=["8080:80", "127.0.0.1:8080:81"]), "ports[1]: host port 127.0.0.1:8080/tcp is already asked for by ports[0]"),
    (dict(ports=["80"]), "ports[0]: '80' is not a valid port mapping"),
    (dict(ports="8080:80"), "ports must be a list"),
    (dict(restart_policy="always"), "restart_policy: 'always'"),
    (dict(pull="sometimes"), "pull: 'sometimes'"),
    (dict(containers=[container(pull="sometimes")]), "containers[0].pull"),
    (dict(containers=[container(share=["net", "uts"])]), "containers[0].share: 'uts'"),
    (dict(containers=[container(secret_env=["NOPE"])]), "containers[0].secret_env[0]: 'NOPE' is not set"),
    (dict(containers=[container(workingDir="/a", working_dir="/a")]), "give either workingDir or working_dir"),
    (dict(containers=[container(livenessProbe={})]), "containers[0].livenessProbe: give exactly one of exec, httpGet"),
    (dict(containers=[container(readinessProbe={"httpGet": {"port": "web"}})]), "readinessProbe.httpGet.port: 'web'"),
    (dict(containers=[container(livenessProbe={"tcpSocket": {"port": 80}, "successThreshold": 2})]),
     "livenessProbe.successThreshold must be 1"),
    (dict(containers=[container(resources={"limits": {"memory": 1}})]), "containers[0].resources.limits.memory"),
    (dict(containers=[container(volume_mounts=[{"name": "x", "mountPath": "/x"}])]), "no volume named 'x'"),
    (dict(resources={"limits": {"cpu": -1}}), "resources.limits.cpu"),
    (dict(resources={"limits": {"memory": "256Mi"}, "requests": {"memory": "1Gi"}}), "resources.requests.memory"),
    (dict(host_aliases={"a": "not-ip"}), "host_aliases[0].ip"),
    (dict(dns=["1.1.1.1", "nope"]), "dns[1]"),
])
def test_bad_native_options(change, expected):
    msg = fails(pod_spec_from_params, params(**change))
    assert expected in msg, msg


def test_native_lowercase_m_is_mebibytes_but_manifest_m_is_milli():
    native = pod_spec_from_params(params(containers=[container(resources={"limits": {"memory": "256m"}})]))
    assert native.containers[0].resources.memory_limit == 256 * MI
    msg = fails(pod_spec_from_manifest, manifest(containers=[container(resources={"limits": {"memory": "256m"}})]))
    assert "milli" in msg and "Mi" in msg


# ------------------------------------------------------------------ ports

@pytest.mark.parametrize("text,expected", [
    ("8080:80", PortMapping(80, 8080, "", "tcp")),
    ("8080:80/udp", PortMapping(80, 8080, "", "udp")),
    ("8080:80/SCTP", PortMapping(80, 8080, "", "sctp")),
    ("127.0.0.1:8080:80", PortMapping(80, 8080, "127.0.0.1", "tcp")),
    ("127.0.0.1:53:53/udp", PortMapping(53, 53, "127.0.0.1", "udp")),
    ("[::1]:8080:80", PortMapping(80, 8080, "::1", "tcp")),
    (" 1:65535 ", PortMapping(65535, 1, "", "tcp")),
])
def test_parse_port(text, expected):
    assert parse_port(text, "ports[0]") == expected


@pytest.mark.parametrize("text", [
    "80", "a:80", "8080:b", "0:80", "8080:65536", "8080:80/icmp", "localhost:8080:80", "1.2.3.4.5:1:2",
    "1:2:3:4", "[::1:8080:80", "", 8080, None, True, "8080:-80", "::1:8080:80",
])
def test_parse_port_invalid(text):
    msg = fails(parse_port, text, "sandbox.ports[2]")
    assert msg.startswith("sandbox.ports[2]: ")
    assert "host_port:container_port" in msg or "IP address" in msg


# ------------------------------------------------------------------ QoS and pod resources

def pod_of(*resources, **kwargs):
    init = kwargs.get("init", [])
    return PodSpec(
        name="p", sandbox=SandboxSpec(pod="p"),
        containers=[ContainerSpec(name="c%d" % i, image="i", resources=r) for i, r in enumerate(resources)],
        init_containers=[ContainerSpec(name="i%d" % i, image="i", resources=r, init=True) for i, r in enumerate(init)],
        resources=kwargs.get("override"))


def res(ml=None, mr=None, cl=None, cr=None):
    """As the parser leaves them: a request defaults to its limit."""
    return Resources(memory_limit=ml, memory_request=mr if mr is not None else ml,
                     cpu_limit=cl, cpu_request=cr if cr is not None else cl)


GUARANTEED = res(ml=128 * MI, cl=500)


@pytest.mark.parametrize("pod,expected", [
    (pod_of(Resources()), "BestEffort"),
    (pod_of(Resources(), Resources()), "BestEffort"),
    (pod_of(GUARANTEED), "Guaranteed"),
    (pod_of(GUARANTEED, res(ml=64 * MI, cl=100)), "Guaranteed"),
    (pod_of(GUARANTEED, Resources()), "Burstable"),
    (pod_of(res(ml=128 * MI)), "Burstable"),                     # no CPU limit
    (pod_of(res(cl=500)), "Burstable"),                          # no memory limit
    (pod_of(res(ml=128 * MI, mr=64 * MI, cl=500)), "Burstable"),  # request below limit
    (pod_of(res(ml=128 * MI, cl=500, cr=100)), "Burstable"),
    (pod_of(Resources(cpu_request=100)), "Burstable"),            # a request alone
    (pod_of(GUARANTEED, init=[Resources()]), "Burstable"),        # init containers count
    (pod_of(GUARANTEED, init=[GUARANTEED]), "Guaranteed"),
    (pod_of(Resources(), init=[Resources(memory_request=MI)]), "Burstable"),
    (pod_of(Resources(), override=res(ml=MI * 256, cl=1000)), "Guaranteed"),  # pod-level resources decide
    (pod_of(GUARANTEED, override=res(ml=MI * 256)), "Burstable"),
])
def test_qos_class(pod, expected):
    assert qos_class(pod) == expected


def test_qos_of_parsed_manifests():
    guaranteed = manifest(containers=[container(resources={"limits": {"memory": "128Mi", "cpu": "500m"}})])
    assert qos_class(pod_spec_from_manifest(guaranteed)) == "Guaranteed"
    assert qos_class(pod_spec_from_manifest(manifest())) == "BestEffort"


def test_pod_resources_sum_when_every_container_has_limits():
    pod = pod_of(res(ml=256 * MI, cl=500), res(ml=128 * MI, cl=250, cr=100))
    assert pod_resources(pod) == Resources(memory_limit=384 * MI, memory_request=384 * MI, cpu_limit=750, cpu_request=600)


def test_pod_resources_unlimited_when_one_container_has_no_limit():
    pod = pod_of(res(ml=256 * MI, cl=500), res(cr=100))
    assert pod_resources(pod) == Resources(memory_limit=None, memory_request=256 * MI, cpu_limit=None, cpu_request=600)
    assert pod_resources(pod_of(Resources())) == Resources()


def test_pod_resources_init_containers():
    # An init container larger than all members together sizes the pod (it runs alone, first).
    pod = pod_of(res(ml=128 * MI, cl=100), res(ml=128 * MI, cl=100), init=[res(ml=512 * MI, cl=150)])
    assert pod_resources(pod) == Resources(memory_limit=512 * MI, memory_request=512 * MI, cpu_limit=200, cpu_request=200)
    # An init container without a limit leaves the pod unlimited, as the kubelet does.
    pod = pod_of(res(ml=128 * MI, cl=100), init=[Resources()])
    assert pod_resources(pod).memory_limit is None and pod_resources(pod).cpu_limit is None
    assert pod_resources(pod).cpu_request == 100


def test_pod_resources_override_wins_where_given():
    pod = pod_of(res(ml=256 * MI, cl=500), override=Resources(memory_limit=GI_1))
    assert pod_resources(pod) == Resources(memory_limit=GI_1, memory_request=256 * MI, cpu_limit=500, cpu_request=500)


GI_1 = 1024 ** 3


# ------------------------------------------------------------------ names and hash

@pytest.mark.parametrize("name", ["foo", "web-1", "a", "A.b_c-d", "0pod", "x" * 63])
def test_valid_pod_names(name):
    assert validate_pod_name(name, "name") == name


@pytest.mark.parametrize("name", ["", None, "-x", ".x", "_x", "a b", "a/b", "a:b", "x" * 64, 5, "ä"])
def test_invalid_pod_names(name):
    assert fails(validate_pod_name, name, "pods[3].name").startswith("pods[3].name: ")


def test_native_secret_env_as_a_dict():
    pod = pod_spec_from_params(params(containers=[container(env={"A": "1"}, secret_env={"TOKEN": "s3cret", "PW": 7})]))
    app = pod.containers[0]
    assert app.env == {"A": "1", "TOKEN": "s3cret", "PW": "7"} and app.secret_env == ("PW", "TOKEN")
    msg = fails(pod_spec_from_params, params(containers=[container(env={"A": "1"}, secret_env={"A": "2"})]))
    assert "containers[0].secret_env.A is also set in env" in msg


def test_reserved_labels_in_a_manifest():
    doc = manifest()
    doc["metadata"]["labels"] = {"io.podkit.pod": "other"}
    bad_manifest(doc, "metadata.labels.io.podkit.pod")


# --- metadata.generateName, multi-document manifests, image volumes (issue 29) ---------------------------

def _generated(**metadata):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": [{"name": "worker", "image": "busybox", "command": ["sleep", "1"]}]}}


def test_generate_name_is_the_stable_base_name_with_a_warning():
    """The API server appends random characters to generateName (apimachinery names.SimpleNameGenerator);
    podkit keeps one stable name, the prefix less its trailing '-', and says so."""
    pod = pod_spec_from_manifest(_generated(generateName="batch-worker-"))
    assert pod.name == "batch-worker"
    assert "metadata.generateName: the pod is named 'batch-worker'" in pod.warnings[0]
    assert not any("ignored" in w for w in pod.warnings)
    # The module's name (as the pods module passes it) agrees: the same pod, the same warning.
    assert pod_spec_from_manifest(_generated(generateName="batch-worker-"), name="batch-worker").name == "batch-worker"
    # Honoured, so even validate: strict takes it.
    assert pod_spec_from_manifest(_generated(generateName="batch-worker-"), validate="strict").name == "batch-worker"


def test_generate_name_beside_a_name_is_ignored_as_before():
    pod = pod_spec_from_manifest(_generated(name="fixed", generateName="batch-worker-"))
    assert pod.name == "fixed" and any(w.startswith("metadata.generateName: ignored") for w in pod.warnings)
    pod = pod_spec_from_manifest(_generated(generateName="batch-worker-"), name="other")
    assert pod.name == "other" and any(w.startswith("metadata.generateName: ignored") for w in pod.warnings)


def test_a_generate_name_that_is_no_pod_name_is_refused_naming_it():
    with pytest.raises(PodkitError, match="metadata.generateName: 'Batch_Worker!' is not a valid pod name"):
        pod_spec_from_manifest(_generated(generateName="Batch_Worker!-"))


@pytest.mark.parametrize("docs, expected", [
    ([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}},
      {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {}}],
     "manifest[1].kind: document 2 of 2 (kind 'Service', named 'web') is not a kind the pod module takes"),
    ([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}}],
     "manifest: no document is a Pod (found: the document (kind 'ConfigMap', named 'settings'))"),
    ([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {}},
      {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b"}, "stringData": {}}],
     "manifest: no document is a Pod (found: document 1 of 2 (kind 'ConfigMap', named 'a'); document 2 of 2 (kind"
     " 'Secret', named 'b')); give one document with apiVersion: v1, kind: Pod"),
    (["just text", _generated(name="p")], "manifest[0]: document 1 of 2 (a str, not a Kubernetes object)"),
])
def test_multi_document_errors_say_which_document_which_kind_what_was_expected(docs, expected):
    with pytest.raises(PodkitError) as caught:
        pod_spec_from_manifest(docs)
    assert expected in caught.value.msg, caught.value.msg


def _with_image_volume(volume, mount=None):
    manifest = _generated(name="p")
    manifest["spec"]["volumes"] = [dict({"name": "models"}, **volume)]
    manifest["spec"]["containers"][0]["volumeMounts"] = [dict({"name": "models", "mountPath": "/models"}, **(mount or {}))]
    return manifest


def test_image_volume_is_a_read_only_image_mount():
    from ansible_collections.podkit.docker.plugins.module_utils._cgroups import HostCgroups
    from ansible_collections.podkit.docker.plugins.module_utils._create import member_create_args
    from ansible_collections.podkit.docker.plugins.module_utils._wanted import want_pod
    pod = pod_spec_from_manifest(_with_image_volume({"image": {"reference": "example.org/models:v2",
                                                               "pullPolicy": "IfNotPresent"}}, {"subPath": "llm"}))
    assert pod.volumes[0].kind == "image" and pod.volumes[0].image == "example.org/models:v2"
    member = want_pod(pod, HostCgroups(version=1, driver="cgroupfs")).members[0]
    assert member.config["mounts"] == [dict(type="image", source="example.org/models:v2", target="/models",
                                            read_only=True, sub_path="llm")]
    _create, host = member_create_args(member.image, member.name, member.config, {}, "sid")
    # The Engine API's HostConfig.Mounts item (API 1.48, Engine 28.0): Type image, ImageOptions.Subpath.
    assert host["mounts"] == [{"Type": "image", "Source": "example.org/models:v2", "Target": "/models",
                               "ReadOnly": True, "ImageOptions": {"Subpath": "llm"}}]
    assert "binds" not in host


@pytest.mark.parametrize("volume, expected", [
    ({"image": {"pullPolicy": "Never"}}, "spec.volumes[0].image.reference is required"),
    ({"image": {"reference": "x:1", "pullPolicy": "Always"}}, "spec.volumes[0].image.pullPolicy: 'Always' is not honoured"),
    ({"image": {"reference": "x:1", "digest": "sha256:0"}}, "spec.volumes[0].image"),
])
def test_image_volume_fields_podkit_cannot_honour_are_named(volume, expected):
    with pytest.raises(PodkitError) as caught:
        pod_spec_from_manifest(_with_image_volume(volume))
    assert expected in caught.value.msg, caught.value.msg


def test_image_mounts_need_engine_28():
    from ansible_collections.podkit.docker.plugins.module_utils._create import check_image_mounts
    mounts = [("containers[app]", [dict(type="image", source="models:v2", target="/models", read_only=True)])]
    with pytest.raises(PodkitError) as caught:
        check_image_mounts({"Version": "20.10.24+dfsg1", "ApiVersion": "1.41"}, mounts)
    assert caught.value.msg.startswith("containers[app].volumeMounts /models (image models:v2): an image volume")
    assert "Docker Engine 28.0 (API 1.48) and later" in caught.value.msg and "this engine is 20.10.24+dfsg1 (API 1.41)" \
        in caught.value.msg
    check_image_mounts({"Version": "28.0.1", "ApiVersion": "1.48"}, mounts)
    check_image_mounts({"Version": "29.1.0", "ApiVersion": "1.52"}, mounts)
    check_image_mounts({"Version": "20.10.24", "ApiVersion": "1.41"}, [("containers[app]", [dict(
        type="bind", source="/x", target="/x", read_only=False)])])


def test_image_volume_exports_as_an_image_volume():
    """On an engine that mounts images, inspect shows the mount in HostConfig.Mounts: the export gives it back
    as an image volume whose mount parses to the same configuration hash."""
    from ansible_collections.podkit.docker.plugins.module_utils import _export
    from ansible_collections.podkit.docker.plugins.module_utils._cgroups import HostCgroups
    from ansible_collections.podkit.docker.plugins.module_utils._create import member_create_args
    from ansible_collections.podkit.docker.plugins.module_utils._wanted import want_pod
    host = HostCgroups(version=1, driver="cgroupfs")
    pod = pod_spec_from_manifest(_with_image_volume({"image": {"reference": "models:v2"}}, {"subPath": "llm"}))
    member = want_pod(pod, host).members[0]
    _create, host_config = member_create_args(member.image, member.name, member.config, {}, "sid")
    attrs = {"Config": {"Image": member.image, "Labels": {}}, "HostConfig": {"Mounts": host_config["mounts"]}}
    volumes = {}
    mounts = _export._mounts(_export.Observed(name="p", managed=True, sandbox=None, members=[]), "p", attrs, {},
                             volumes, [], None, False, _export.Export(documents=[]), "containers[worker]")
    assert mounts == [{"name": "image-models-v2", "mountPath": "/models", "readOnly": True, "subPath": "llm"}]
    manifest = _with_image_volume({}, {})
    manifest["spec"]["volumes"] = list(volumes.values())
    manifest["spec"]["containers"][0]["volumeMounts"] = mounts
    assert want_pod(pod_spec_from_manifest(manifest), host).members[0].hashes() == member.hashes()


@pytest.mark.parametrize("image", ["gcr.io/google-samples/microservices-demo/redis:alpine:v0.3.6",
                                   "<region name>/<tenancy name>/oci-utility-job:latest", "Nginx:1.25", "nginx:"])
def test_an_image_reference_docker_cannot_read_is_refused_naming_the_field(image):
    """The API server takes any string for image and the kubelet fails the pod with InvalidImageName; podkit names
    the field before the engine is reached (real files hold such references: a doubled tag, a placeholder)."""
    with pytest.raises(PodkitError) as caught:
        pod_spec_from_manifest({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                "spec": {"containers": [{"name": "app", "image": image}]}})
    assert caught.value.msg.startswith("spec.containers[0].image: %r is not an image reference Docker can read" % image)


@pytest.mark.parametrize("image", ["nginx", "registry.k8s.io/nginx-slim:0.24", "192.168.4.30:5000/team/app:latest",
                                   "localhost:5000/a/b", "quay.io/x/y:1.0@sha256:" + "b" * 64, "a__b/c-d.e:V1_x"])
def test_image_references_docker_reads_are_taken(image):
    pod = pod_spec_from_manifest({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                  "spec": {"containers": [{"name": "app", "image": image}]}})
    assert pod.containers[0].image == image
