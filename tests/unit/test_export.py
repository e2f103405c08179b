"""The export (_export): a pod's inspect data back to a v1 Pod, pure.

The strongest check here needs no engine: a manifest is parsed (_spec), made into what podkit wants
(_wanted) and into Docker's create arguments (_docker), those are turned into inspect data the way
the engine stores them, the export reads that back, and the exported manifest, parsed again, must
give every container the configuration hash it was created with.
"""

import json

import pytest

from ansible_collections.podkit.docker.plugins.module_utils import _export
from ansible_collections.podkit.docker.plugins.module_utils._cgroups import changed_fields
from ansible_collections.podkit.docker.plugins.module_utils._create import member_create_args, sandbox_create_args
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._facts import group_containers
from ansible_collections.podkit.docker.plugins.module_utils._labels import LABEL_HASH, LABEL_SANDBOX_ID
from ansible_collections.podkit.docker.plugins.module_utils._spec import pod_spec_from_manifest, qos_class
from ansible_collections.podkit.docker.plugins.module_utils._wanted import pod_cgroup_limits, want_pod

from unithost import HOST

IMAGE = {"Env": ["PATH=/bin:/usr/bin"], "Cmd": ["sh"], "Entrypoint": None, "WorkingDir": "", "User": "",
         "Labels": None}
RESTART = {"Always": "always", "OnFailure": "on-failure", "Never": "no"}


def engine_view(create, host_config, image=None, cid="0" * 64):
    """Inspect data as the engine stores a container made with these create arguments."""
    image = IMAGE if image is None else image
    env = dict(item.split("=", 1) for item in image.get("Env") or [])
    env.update(create.get("environment") or {})
    labels = dict(image.get("Labels") or {})
    labels.update(create.get("labels") or {})
    entrypoint = create.get("entrypoint")
    command = create.get("command")
    if command is None:
        command = None if entrypoint is not None else image.get("Cmd")
    config = {"Image": create["image"], "Entrypoint": entrypoint if entrypoint is not None else image.get("Entrypoint"),
              "Cmd": command, "Env": ["%s=%s" % kv for kv in env.items()], "Labels": labels,
              "WorkingDir": create.get("working_dir") or image.get("WorkingDir") or "",
              "User": create.get("user") or image.get("User") or "", "Hostname": create.get("hostname") or cid[:12],
              "Tty": bool(create.get("tty")), "OpenStdin": bool(create.get("stdin_open")),
              "StdinOnce": bool(create.get("stdin_once"))}
    if create.get("stop_signal"):
        config["StopSignal"] = create["stop_signal"]
    if create.get("stop_timeout") is not None:
        config["StopTimeout"] = create["stop_timeout"]
    bindings = {}
    for key, values in (host_config.get("port_bindings") or {}).items():
        bindings[key] = [{"HostIp": v[0], "HostPort": str(v[1])} if isinstance(v, tuple) else {"HostIp": "", "HostPort": str(v)}
                         for v in values]
    host = {"NetworkMode": host_config.get("network_mode") or "bridge", "IpcMode": host_config.get("ipc_mode") or "private",
            "PidMode": host_config.get("pid_mode") or "", "CgroupParent": host_config.get("cgroup_parent") or "",
            "Memory": host_config.get("mem_limit") or 0, "MemoryReservation": host_config.get("mem_reservation") or 0,
            "CpuShares": host_config.get("cpu_shares") or 0, "CpuPeriod": host_config.get("cpu_period") or 0,
            "CpuQuota": host_config.get("cpu_quota") or 0, "NanoCpus": 0,
            "RestartPolicy": host_config.get("restart_policy") or {"Name": "no"},
            "Binds": host_config.get("binds"), "CapAdd": host_config.get("cap_add"), "CapDrop": host_config.get("cap_drop"),
            "SecurityOpt": host_config.get("security_opt"), "Privileged": bool(host_config.get("privileged")),
            "ReadonlyRootfs": bool(host_config.get("read_only")), "GroupAdd": host_config.get("group_add"),
            "PortBindings": bindings, "Dns": host_config.get("dns") or [], "DnsSearch": host_config.get("dns_search") or [],
            "DnsOptions": host_config.get("dns_opt") or [], "Sysctls": host_config.get("sysctls"),
            "ExtraHosts": ["%s:%s" % kv for kv in (host_config.get("extra_hosts") or {}).items()] or None}
    return {"Id": cid, "Name": "/" + create["name"], "Created": "2026-12-01T20:00:%02d.000Z" % (int(cid[:2], 16) % 60),
            "Config": config, "HostConfig": host, "State": {"Running": True, "Status": "running", "Pid": 0}}


def converge_on_paper(manifest, sandbox_image="podkit/pause:latest"):
    """The containers podkit would create for ``manifest``, as the engine would report them."""
    spec = pod_spec_from_manifest(manifest, sandbox_image=sandbox_image, validate="ignore")
    wanted = want_pod(spec, HOST)
    containers = []
    sandbox_id = "a" * 64
    create, host = sandbox_create_args(wanted.sandbox.image, wanted.sandbox.name, wanted.sandbox.config,
                                       wanted.sandbox.labels_for(wanted.pod))
    containers.append(engine_view(create, host, cid=sandbox_id))
    for index, item in enumerate(wanted.init + wanted.members):
        create, host = member_create_args(item.image, item.name, item.config,
                                          item.labels_for(wanted.pod, {LABEL_SANDBOX_ID: sandbox_id}), sandbox_id)
        containers.append(engine_view(create, host, cid="%02x" % (index + 1) + "b" * 62))
    return wanted, containers


def export_of(containers, secrets=True, files=None, volumes=None):
    groups = group_containers(containers)
    assert len(groups) == 1
    name, pod = next(iter(groups.items()))
    observed = _export.Observed(name=name, managed=True, sandbox=pod.sandbox, members=pod.members,
                                images={"podkit/busybox:latest": IMAGE, "podkit/pause:latest": {}},
                                files=files or {}, volumes=volumes or {}, default_parent="/podkit/pod-%s" % name)
    return _export.export_pod(observed, secrets)


def hashes(wanted):
    return dict((w.key, w.hashes()[0]) for w in wanted.containers())


def assert_round_trip(manifest):
    wanted, containers = converge_on_paper(manifest)
    export = export_of(containers)
    recorded = dict((c["Config"]["Labels"]["io.podkit.container"], c["Config"]["Labels"][LABEL_HASH]) for c in containers)
    again = want_pod(pod_spec_from_manifest(export.documents, sandbox_image=export.options.get("sandbox_image"),
                                            validate="ignore"), HOST)
    assert hashes(again) == recorded == hashes(wanted), (export.documents, export.warnings)
    return export


def pod(spec, **metadata):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": dict({"name": "web"}, **metadata), "spec": spec}


BUSY = "podkit/busybox:latest"


def test_plain_pod_round_trips_and_says_only_what_it_must():
    export = assert_round_trip(pod({"containers": [{"name": "app", "image": BUSY, "command": ["sleep", "1"]}]}))
    (document,) = export.documents
    assert document["spec"]["containers"] == [{"name": "app", "image": BUSY, "command": ["sleep", "1"]}]
    assert export.options == {"sandbox_image": "podkit/pause:latest"}


def test_args_alone_keep_the_image_entrypoint_and_env_less_the_image_env():
    export = assert_round_trip(pod({"containers": [{"name": "app", "image": BUSY, "args": ["echo", "hi"],
                                                    "env": [{"name": "A", "value": "1"}]}]}))
    container = export.documents[0]["spec"]["containers"][0]
    assert "command" not in container and container["args"] == ["echo", "hi"]
    assert container["env"] == [{"name": "A", "value": "1"}]


def test_env_equal_to_the_image_value_is_kept_by_the_recorded_hash():
    export = assert_round_trip(pod({"containers": [{"name": "app", "image": BUSY, "command": ["sh"],
                                                    "env": [{"name": "PATH", "value": "/bin:/usr/bin"}]}]}))
    assert export.documents[0]["spec"]["containers"][0]["env"] == [{"name": "PATH", "value": "/bin:/usr/bin"}]


def test_command_equal_to_nothing_given_reads_back_as_not_given():
    export = assert_round_trip(pod({"containers": [{"name": "app", "image": BUSY}]}))
    assert export.documents[0]["spec"]["containers"][0] == {"name": "app", "image": BUSY}


def test_resources_security_lifecycle_and_pod_settings_round_trip():
    assert_round_trip(pod({
        "hostname": "front", "restartPolicy": "OnFailure", "terminationGracePeriodSeconds": 7,
        "dnsPolicy": "None", "dnsConfig": {"nameservers": ["192.0.2.1"], "searches": ["a.example"],
                                           "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]},
        "hostAliases": [{"ip": "192.0.2.9", "hostnames": ["x", "y"]}], "shareProcessNamespace": True,
        "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "supplementalGroups": [4000],
                            "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]},
        "containers": [{"name": "app", "image": BUSY, "command": ["sleep", "1"],
                        "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"},
                                  {"containerPort": 53, "hostPort": 5353, "protocol": "UDP"}],
                        "resources": {"limits": {"memory": "64Mi", "cpu": "500m"},
                                      "requests": {"memory": "32Mi", "cpu": "250m"}},
                        "securityContext": {"capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                                            "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                            "runAsNonRoot": True, "seccompProfile": {"type": "Unconfined"}},
                        "stdin": True, "tty": True,
                        "lifecycle": {"stopSignal": "SIGQUIT", "postStart": {"exec": {"command": ["true"]}},
                                      "preStop": {"sleep": {"seconds": 2}}}},
                       {"name": "helper", "image": BUSY, "command": ["sleep", "2"],
                        "resources": {"limits": {"memory": "1Gi"}}}]}))


def test_secret_env_is_a_reference_and_its_value_only_when_asked():
    manifest = [pod({"containers": [{"name": "app", "image": BUSY, "command": ["sleep", "1"], "env": [
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        {"name": "URL", "value": "db://$(PASSWORD)@x"}]}]}),
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": "hunter2-unit"}}]
    export = assert_round_trip(manifest)
    env = export.documents[0]["spec"]["containers"][0]["env"]
    # The Secret and key it came from, by their own names.
    assert env[0] == {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
    assert env[1] == {"name": "URL", "value": "db://$(PASSWORD)@x"}
    assert export.documents[1]["metadata"]["name"] == "db"
    assert export.documents[1]["data"] == {"password": "aHVudGVyMi11bml0"}
    _wanted, containers = converge_on_paper(manifest)
    hidden = export_of(containers, secrets=False)
    assert "hunter2" not in repr(hidden.documents) and "data" not in hidden.documents[1]
    assert any("as_manifest_secrets" in w for w in hidden.warnings)


def test_field_refs_and_sidecars_round_trip_in_order():
    export = assert_round_trip(pod({
        "initContainers": [{"name": "setup", "image": BUSY, "command": ["true"]},
                           {"name": "logs", "image": BUSY, "command": ["sleep", "9"], "restartPolicy": "Always"}],
        "containers": [{"name": "app", "image": BUSY, "command": ["sleep", "1"], "env": [
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]}]},
        namespace="shop", labels={"app": "web"}, annotations={"note": "a note", "example.org/x": "y"}))
    document = export.documents[0]
    assert [c["name"] for c in document["spec"]["initContainers"]] == ["setup", "logs"]
    assert document["metadata"] == {"name": "web", "labels": {"app": "web"}, "namespace": "shop",
                                    "annotations": {"note": "a note", "example.org/x": "y"}}


def test_file_volumes_become_config_maps_of_their_files():
    manifest = [pod({"volumes": [{"name": "conf", "configMap": {"name": "settings"}},
                                 {"name": "cache", "emptyDir": {}}, {"name": "logs", "hostPath": {"path": "/var/log"}}],
                     "containers": [{"name": "app", "image": BUSY, "command": ["sleep", "1"], "volumeMounts": [
                         {"name": "conf", "mountPath": "/etc/app"}, {"name": "cache", "mountPath": "/cache"},
                         {"name": "logs", "mountPath": "/logs", "readOnly": True}]}]}),
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a.conf": "x=1\n"}}]
    wanted, containers = converge_on_paper(manifest)
    files = dict((w.path, w.files) for w in wanted.files.values())
    export = export_of(containers, files=files, volumes={"web_cache": {"Labels": {"io.podkit.pod": "web"}}})
    volumes = dict((v["name"], v) for v in export.documents[0]["spec"]["volumes"])
    # The source as written, the ConfigMap by its own name with the keys read from the files.
    assert volumes["conf"] == {"name": "conf", "configMap": {"name": "settings"}}
    assert volumes["cache"] == {"name": "cache", "emptyDir": {}}
    assert volumes["host-var-log"] == {"name": "host-var-log", "hostPath": {"path": "/var/log"}}
    assert export.documents[1] == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                                   "data": {"a.conf": "x=1\n"}}
    again = want_pod(pod_spec_from_manifest(export.documents, sandbox_image="podkit/pause:latest"), HOST)
    assert hashes(again) == hashes(wanted)
    # A member made before podkit recorded volume sources: a ConfigMap of the files, named after the volume.
    for container in containers:
        origin = json.loads(container["Config"]["Labels"].get("io.podkit.origin") or "{}")
        origin.pop("sources", None)
        container["Config"]["Labels"]["io.podkit.origin"] = json.dumps(origin)
    export = export_of(containers, files=files, volumes={"web_cache": {"Labels": {"io.podkit.pod": "web"}}})
    volumes = dict((v["name"], v) for v in export.documents[0]["spec"]["volumes"])
    assert volumes["conf"] == {"name": "conf", "configMap": {"name": "web-conf", "items": [
        {"key": "a.conf", "path": "a.conf", "mode": 0o644}]}}
    assert export.documents[1] == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-conf"},
                                   "data": {"a.conf": "x=1\n"}}
    again = want_pod(pod_spec_from_manifest(export.documents, sandbox_image="podkit/pause:latest"), HOST)
    assert hashes(again) == hashes(wanted)


def test_config_map_and_secret_references_come_back_by_their_own_names():
    """configMapKeyRef, envFrom (with a prefix), an items subset, a projected volume with a secret and a
    downwardAPI part: each comes back referring to the objects it was written with, one document per
    object with the keys the pod uses, and the export parses to the same containers."""
    the_pod = pod({
        "volumes": [{"name": "conf", "configMap": {"name": "app", "items": [{"key": "main.conf", "path": "etc/main.conf"}],
                                                   "defaultMode": 0o640}},
                    {"name": "all", "projected": {"sources": [
                        {"secret": {"name": "creds"}},
                        {"configMap": {"name": "app", "items": [{"key": "level", "path": "level.txt"}]}},
                        {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}}],
        "containers": [{"name": "app", "image": BUSY, "command": ["sleep", "1"],
                        "envFrom": [{"configMapRef": {"name": "app"}, "prefix": "APP_"}],
                        "env": [{"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "level"}}},
                                {"name": "USER", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "user"}}},
                                {"name": "APP_level", "value": "overridden"}],
                        "volumeMounts": [{"name": "conf", "mountPath": "/etc/app"}, {"name": "all", "mountPath": "/all"}]}]})
    manifest = [the_pod,
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"},
                 "data": {"main.conf": "a=1\n", "level": "debug", "unused": "u"}},
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "stringData": {"user": "admin-17"}}]
    wanted, containers = converge_on_paper(manifest)
    files = dict((w.path, w.files) for w in wanted.files.values())
    export = export_of(containers, files=files)
    spec = export.documents[0]["spec"]
    env = dict((e["name"], e) for e in spec["containers"][0]["env"])
    assert env["LEVEL"]["valueFrom"] == {"configMapKeyRef": {"name": "app", "key": "level"}}
    assert env["APP_main.conf"]["valueFrom"] == {"configMapKeyRef": {"name": "app", "key": "main.conf"}}
    assert env["USER"]["valueFrom"] == {"secretKeyRef": {"name": "creds", "key": "user"}}
    assert env["APP_level"] == {"name": "APP_level", "value": "overridden"}
    volumes = dict((v["name"], v) for v in spec["volumes"])
    assert volumes["conf"]["configMap"]["name"] == "app" and volumes["all"]["projected"]["sources"][0] == {
        "secret": {"name": "creds"}}
    documents = dict((d["metadata"]["name"], d) for d in export.documents[1:])
    assert sorted(documents) == ["app", "creds"]
    assert documents["app"]["data"] == {"level": "debug", "main.conf": "a=1\n", "unused": "u"}
    assert documents["creds"]["data"] == {"user": "YWRtaW4tMTc="}
    again = want_pod(pod_spec_from_manifest(export.documents, sandbox_image="podkit/pause:latest"), HOST)
    assert hashes(again) == hashes(wanted)
    # A key read two ways (the ConfigMap changed after the member was made, the files written since): what
    # was read first is kept, the volume that says otherwise comes back as a ConfigMap of its own files.
    containers[1]["Config"]["Env"] = [e.replace("LEVEL=debug", "LEVEL=trace") for e in containers[1]["Config"]["Env"]]
    export = export_of(containers, files=files)
    spec = export.documents[0]["spec"]
    env = dict((e["name"], e) for e in spec["containers"][0]["env"])
    assert env["LEVEL"]["valueFrom"] == {"configMapKeyRef": {"name": "app", "key": "level"}}
    volumes = dict((v["name"], v) for v in spec["volumes"])
    # (It projects a Secret: its files are a Secret's.)
    assert volumes["all"]["secret"]["secretName"] == "web-all" and volumes["conf"]["configMap"]["name"] == "app"
    documents = dict((d["metadata"]["name"], d) for d in export.documents[1:])
    assert documents["app"]["data"]["level"] == "trace" and documents["web-all"]["data"]["level.txt"] == "ZGVidWc="


@pytest.mark.parametrize("name, expected", [("foo_sandbox", "foo-sandbox"), ("Web.App", "web-app"), ("__", "pod")])
def test_dns_name(name, expected):
    assert _export.dns_name(name) == expected


def test_hand_made_pod_is_one_pod_named_after_its_sandbox():
    sandbox = {"Id": "c" * 64, "Name": "/foo_sandbox", "Created": "1", "State": {"Running": True},
               "Config": {"Image": "alpine", "Hostname": "cccccccccccc", "Labels": {}, "Cmd": ["sleep", "infinity"]},
               "HostConfig": {"NetworkMode": "bridge", "IpcMode": "shareable", "CgroupParent": "/pod-foo"}}
    join = "container:" + "c" * 64

    def member(name, memory=0, nano=0, cmd=None):
        return {"Id": name * 64 if len(name) == 1 else name[0] * 64, "Name": "/" + name, "Created": "2",
                "State": {"Running": True},
                "Config": {"Image": "httpbin", "Cmd": cmd, "Env": ["PATH=/bin"], "Labels": {}},
                "HostConfig": {"NetworkMode": join, "IpcMode": join, "CgroupParent": "/pod-foo", "Memory": memory,
                               "NanoCpus": nano, "RestartPolicy": {"Name": "no"}}}
    containers = [sandbox, member("app", 536870912, 500000000, ["gunicorn"]), member("sidecar", cmd=["sleep", "365d"])]
    groups = group_containers(containers, include_unmanaged=True)
    assert len(groups) == 1
    name, group = next(iter(groups.items()))
    observed = _export.Observed(name=name, managed=False, sandbox=group.sandbox, members=group.members,
                                images={"httpbin": {"Env": ["PATH=/bin"], "Cmd": ["gunicorn"]}})
    export = _export.export_pod(observed)
    document = export.documents[0]
    assert document["metadata"]["name"] == "foo"
    assert [c["name"] for c in document["spec"]["containers"]] == ["app", "sidecar"]
    assert document["spec"]["containers"][0] == {"name": "app", "image": "httpbin",
                                                 "resources": {"limits": {"memory": "512Mi", "cpu": "500m"}}}
    assert document["spec"]["containers"][1]["args"] == ["sleep", "365d"]
    assert document["spec"]["restartPolicy"] == "Never"
    assert export.options == {"cgroup_parent": "/pod-foo"}


def test_verify_names_the_fields_an_export_cannot_give_back():
    manifest = pod({"containers": [{"name": "app", "image": BUSY, "command": ["sleep", "1"],
                                    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000}}]})
    _wanted, containers = converge_on_paper(manifest)
    group = group_containers(containers)["web"]
    observed = _export.Observed(name="web", managed=True, sandbox=group.sandbox, members=group.members,
                                images={BUSY: IMAGE}, default_parent="/podkit/pod-web")
    assert _export.verify(_export.export_pod(observed, True), observed, HOST) == []
    # A container made before podkit recorded io.podkit.origin: runAsNonRoot is nowhere in Docker.
    del containers[1]["Config"]["Labels"]["io.podkit.origin"]
    group = group_containers(containers)["web"]
    observed.members = group.members
    warnings = _export.verify(_export.export_pod(observed, True), observed, HOST)
    assert warnings == ["containers[app]: the manifest does not give back what podkit applied (security); applying"
                        " it recreates this container."]


def test_odd_inspect_data_gives_warnings_not_a_crash():
    sandbox = {"Id": "d" * 64, "Name": "/odd_sandbox", "Config": {"Image": "x", "Labels": {
        "io.podkit.pod": "odd", "io.podkit.role": "sandbox", "io.podkit.config-fields": "garbage"}},
        "HostConfig": {"NetworkMode": "mynet", "PortBindings": {"80/tcp": None}}}
    member = {"Id": "e" * 64, "Name": "/odd_app", "Config": {"Image": "y", "Labels": {
        "io.podkit.pod": "odd", "io.podkit.role": "member", "io.podkit.container": "app", "io.podkit.origin": "{not json",
        "io.podkit.pre-stop": "[]", "io.podkit.sidecar": "x"}},
        "HostConfig": {"Binds": ["/data:/data:ro,rprivate", "volume-x:/v"], "PidsLimit": 100, "CpuShares": 100,
                       "SecurityOpt": ["label=type:x", "seccomp=" + "{" * 200]}}
    group = group_containers([sandbox, member])["odd"]
    export = _export.export_pod(_export.Observed(name="odd", managed=True, sandbox=group.sandbox, members=group.members))
    text = "\n".join(export.warnings)
    assert "network 'mynet'" in text and "pids limit 100" in text and "label=type:x" in text
    assert "volume-x" not in text or "persistentVolumeClaim" in text
    assert all(len(w) < 300 for w in export.warnings)
    mount = export.documents[0]["spec"]["containers"][0]["volumeMounts"][0]
    assert mount == {"name": "host-data", "mountPath": "/data", "readOnly": True}


def test_probes_and_network_hooks_round_trip():
    """Probes live in podkit's record (run by podkit-guard), not in Docker's settings or the hash:
    the export must still give them back, and the same for httpGet/tcpSocket hooks."""
    app = {"name": "app", "image": BUSY, "command": ["httpd", "-f", "-p", "8080"],
           "ports": [{"name": "web", "containerPort": 8080}],
           "livenessProbe": {"httpGet": {"port": "web", "path": "/healthz",
                                         "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
                             "periodSeconds": 5, "failureThreshold": 2},
           "readinessProbe": {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 1},
           "startupProbe": {"exec": {"command": ["true"]}, "failureThreshold": 30},
           "lifecycle": {"postStart": {"tcpSocket": {"port": 8080}},
                         "preStop": {"httpGet": {"port": 8080, "path": "/quit"}}}}
    manifest = pod({"containers": [app]})
    export = assert_round_trip(manifest)
    exported = export.documents[0]["spec"]["containers"][0]
    original = pod_spec_from_manifest(manifest, validate="ignore").containers[0]
    again = pod_spec_from_manifest(export.documents, validate="ignore").containers[0]
    assert again.probes == original.probes and set(again.probes) == {"livenessProbe", "readinessProbe", "startupProbe"}
    assert exported["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert again.security == original.security, (exported.get("lifecycle"), export.warnings)


def test_downward_volume_comes_back_as_its_source():
    """A downwardAPI volume's files hold the running pod's values (its uid): the export gives the
    source the member recorded, so applying it back writes the same files, not a snapshot."""
    volume = {"name": "podinfo", "downwardAPI": {"items": [
        {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory", "divisor": "1Mi"}}]}}
    app = {"name": "app", "image": BUSY, "command": ["sleep", "3600"], "resources": {"limits": {"memory": "64Mi"}},
           "volumeMounts": [{"name": "podinfo", "mountPath": "/etc/podinfo"}]}
    export = assert_round_trip(pod({"containers": [app], "volumes": [volume]}))
    assert export.documents[0]["spec"]["volumes"] == [volume], export.documents
    assert [d["kind"] for d in export.documents] == ["Pod"], export.documents


def observed_with_cgroup(manifest, pod_limits, version=1, running=True, pod_level=None):
    """``manifest`` converged on paper (with ``pod_level`` as its spec.resources: the sandbox records the QoS
    class they give), its pod cgroup holding ``pod_limits``."""
    if pod_level is not None:
        manifest = dict(manifest, spec=dict(manifest["spec"], resources=pod_level))
    _wanted, containers = converge_on_paper(manifest)
    for container in containers:
        container["State"]["Running"] = running
    group = group_containers(containers)["web"]
    return _export.Observed(name="web", managed=True, sandbox=group.sandbox, members=group.members,
                            images={BUSY: IMAGE}, default_parent="/podkit/pod-web", pod_limits=pod_limits,
                            cgroup_version=version)


def derived(document, version=1):
    return pod_cgroup_limits(pod_spec_from_manifest(document, validate="ignore"), version)


LIMITED = pod({"containers": [{"name": "app", "image": BUSY, "command": ["sleep", "1"],
                               "resources": {"limits": {"memory": "256Mi"}}}]})
UNLIMITED_V1 = dict(memory_bytes=None, cpu_quota_us=None, cpu_period_us=100000, cpu_shares=1024, pids_max=None)


def test_a_pod_cgroup_with_the_derived_limits_adds_nothing():
    limits = derived(LIMITED).as_dict(1)
    export = _export.export_pod(observed_with_cgroup(LIMITED, dict(limits, memory_bytes=256 << 20, cpu_quota_us=None)))
    assert "resources" not in export.documents[0]["spec"]
    assert "cgroup_limits" not in export.options and "state" not in export.options


def test_a_pod_cgroup_kubernetes_cannot_say_is_kept_unmanaged():
    """pod_sandbox's cgroup: no memory limit although every container has one, cpu.shares 1024."""
    export = _export.export_pod(observed_with_cgroup(LIMITED, UNLIMITED_V1))
    assert export.options["cgroup_limits"] == "unmanaged"
    assert "resources" not in export.documents[0]["spec"]
    assert ("the pod cgroup's limits (memory unlimited, cpu unlimited, cpu.shares 1024) are not those its containers"
            " derive (memory 256Mi, cpu unlimited, cpu.shares 2)") in " ".join(export.warnings)


def test_a_pod_cgroup_pod_level_resources_can_say_is_given_as_them():
    plain = pod({"containers": [{"name": "app", "image": BUSY, "command": ["sleep", "1"]}]})
    export = _export.export_pod(observed_with_cgroup(plain, UNLIMITED_V1, pod_level={"requests": {"cpu": "1"}}))
    spec = export.documents[0]["spec"]
    assert spec["resources"] == {"requests": {"cpu": "1"}} and "cgroup_limits" not in export.options
    assert derived(export.documents[0]).cpu_shares == 1024
    # cgroup v2: a cpu.weight comes back through the request behind it, with a memory and CPU limit.
    v2 = dict(memory_bytes=512 << 20, cpu_quota_us=50000, cpu_period_us=100000, cpu_weight=20, pids_max=None)
    export = _export.export_pod(observed_with_cgroup(plain, v2, version=2, pod_level={
        "limits": {"memory": "512Mi", "cpu": "500m"}, "requests": {"cpu": "50m"}}))
    resources = export.documents[0]["spec"]["resources"]
    assert resources["limits"] == {"memory": "512Mi", "cpu": "500m"}
    assert derived(export.documents[0], 2).cpu_weight == 20 and "cgroup_limits" not in export.options


def test_a_cgroup_whose_recorded_class_pod_level_resources_cannot_give_is_kept_unmanaged():
    """The sandbox ran BestEffort (its label), the cgroup holds cpu.shares 1024 (set by hand since): a CPU request
    would make the pod Burstable and recreate the sandbox, so the limits are kept as they are."""
    plain = pod({"containers": [{"name": "app", "image": BUSY, "command": ["sleep", "1"]}]})
    export = _export.export_pod(observed_with_cgroup(plain, UNLIMITED_V1))
    assert export.options["cgroup_limits"] == "unmanaged" and "resources" not in export.documents[0]["spec"]


@pytest.mark.parametrize("pod_level, qos", [
    # The Kubernetes docs' pod-level-resources shape: CPU request = limit, memory request below its limit.
    ({"requests": {"cpu": "1", "memory": "100Mi"}, "limits": {"cpu": "1", "memory": "200Mi"}}, "Burstable"),
    ({"requests": {"cpu": "1", "memory": "200Mi"}, "limits": {"cpu": "1", "memory": "200Mi"}}, "Guaranteed"),
])
def test_pod_level_resources_come_back_in_the_class_the_pod_ran_in(pod_level, qos):
    """KEP-2837 (pod-level resources): the pod's QoS class is computed from spec.resources alone when set
    (ComputePodQOS); the cgroup holds no memory request, so the export gives the one that keeps the class:
    applied back, the sandbox's qos_class is the same and nothing is recreated."""
    app = {"name": "app", "image": BUSY, "command": ["sleep", "1"],
           "resources": {"limits": {"cpu": "500m", "memory": "100Mi"}, "requests": {"cpu": "500m", "memory": "50Mi"}}}
    other = {"name": "other", "image": BUSY, "command": ["sleep", "2"]}
    manifest = pod({"containers": [app, other], "resources": pod_level})
    limits = derived(manifest).as_dict(1)
    observed = observed_with_cgroup(manifest, limits)
    assert observed.sandbox["Config"]["Labels"]["io.podkit.qos-class"] == qos
    export = _export.export_pod(observed)
    back = pod_spec_from_manifest(export.documents, validate="ignore")
    assert qos_class(back) == qos and "cgroup_limits" not in export.options, export.warnings
    assert export.documents[0]["spec"]["resources"]["limits"] == {"cpu": "1", "memory": "200Mi"}
    assert not changed_fields(pod_cgroup_limits(back, 1), limits)


def test_a_stopped_pod_is_applied_back_stopped():
    export = _export.export_pod(observed_with_cgroup(LIMITED, {}, running=False))
    assert export.options["state"] == "stopped"
    assert _export.export_pod(observed_with_cgroup(LIMITED, {})).options.get("state") is None


def test_unmanaged_cgroup_limits_write_nothing_and_refuse_pod_level_resources():
    spec = pod_spec_from_manifest(LIMITED, validate="ignore")
    assert want_pod(spec, HOST).cgroup.limits.memory_bytes == 256 << 20
    assert want_pod(spec, HOST, cgroup_limits="unmanaged").cgroup.limits is None
    with_resources = pod_spec_from_manifest(pod({"containers": LIMITED["spec"]["containers"],
                                                 "resources": {"limits": {"memory": "1Gi"}}}), validate="ignore")
    with pytest.raises(PodkitError, match="cgroup_limits: unmanaged .* spec.resources"):
        want_pod(with_resources, HOST, cgroup_limits="unmanaged")


def test_pod_level_resources_the_api_server_would_refuse_are_not_given():
    """A pod cgroup with less CPU weight than its containers request together: pod-level requests below
    theirs are refused by the API server, so the limits stay with the pod module (unmanaged)."""
    requesting = pod({"containers": [{"name": "app", "image": BUSY, "command": ["sleep", "1"],
                                      "resources": {"requests": {"cpu": "1"}}}]})
    export = _export.export_pod(observed_with_cgroup(requesting, dict(UNLIMITED_V1, cpu_shares=512)))
    assert "resources" not in export.documents[0]["spec"] and export.options["cgroup_limits"] == "unmanaged"
    # A pod memory limit below a container's: the same.
    export = _export.export_pod(observed_with_cgroup(LIMITED, dict(UNLIMITED_V1, memory_bytes=128 << 20, cpu_shares=2)))
    assert "resources" not in export.documents[0]["spec"] and export.options["cgroup_limits"] == "unmanaged"
    # Above it, and no CPU request: Kubernetes' form of it.
    export = _export.export_pod(observed_with_cgroup(LIMITED, dict(UNLIMITED_V1, memory_bytes=1 << 30, cpu_shares=2)))
    assert export.documents[0]["spec"]["resources"] == {"limits": {"memory": "1Gi"}}
    assert "cgroup_limits" not in export.options


@pytest.mark.parametrize("sources", [
    # The Kubernetes docs' storage/projected.yaml shape: two whole Secrets in one volume.
    [{"secret": {"name": "user"}}, {"secret": {"name": "pass"}}],
    # A whole Secret, a whole ConfigMap, an items subset and the pod's labels, in one volume.
    [{"secret": {"name": "user"}}, {"configMap": {"name": "settings"}},
     {"secret": {"name": "pass", "items": [{"key": "password", "path": "deep/password"}]}},
     {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}],
])
def test_projected_volume_over_several_whole_objects_names_each(sources):
    """Each object a projected volume takes whole lands at the volume's top: the member records the
    key names of each (io.podkit.origin ``keys``), so the export names the Secrets and ConfigMaps the pod
    used, each with its own keys, and applies back with the user's own objects."""
    the_pod = pod({"volumes": [{"name": "all-in-one", "projected": {"sources": sources}}],
                   "containers": [{"name": "app", "image": BUSY, "command": ["sleep", "1"],
                                   "volumeMounts": [{"name": "all-in-one", "mountPath": "/projected"}]}]},
                  labels={"app": "p"})
    objects = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "user"}, "stringData": {"username": "admin"}},
               {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pass"},
                "stringData": {"password": "not-real", "pin": "12"}},
               {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"mode": "fast"}}]
    wanted, containers = converge_on_paper([the_pod] + objects)
    files = dict((w.path, w.files) for w in wanted.files.values())
    export = export_of(containers, files=files)
    assert export.documents[0]["spec"]["volumes"] == [{"name": "all-in-one", "projected": {"sources": sources}}]
    documents = dict(((d["kind"], d["metadata"]["name"]), d) for d in export.documents[1:])
    assert documents[("Secret", "user")]["data"] == {"username": "YWRtaW4="}
    if len(sources) == 2:
        assert sorted(documents) == [("Secret", "pass"), ("Secret", "user")]
        assert documents[("Secret", "pass")]["data"] == {"password": "bm90LXJlYWw=", "pin": "MTI="}
    else:
        assert documents[("ConfigMap", "settings")]["data"] == {"mode": "fast"}
        assert documents[("Secret", "pass")]["data"] == {"password": "bm90LXJlYWw="}
    assert not any("all-in-one" in d["metadata"]["name"] for d in export.documents[1:]), export.documents
    again = want_pod(pod_spec_from_manifest(export.documents, sandbox_image="podkit/pause:latest"), HOST)
    assert hashes(again) == hashes(wanted)
    # With the user's own objects (all their keys, not only those the export read back) it applies the same.
    again = want_pod(pod_spec_from_manifest([export.documents[0]] + objects, sandbox_image="podkit/pause:latest"), HOST)
    assert hashes(again) == hashes(wanted)


def test_a_containers_own_restart_policy_and_rules_come_back():
    """Docker's policy of a container with restart rules is the one that honours them (here none): the export
    gives the container's own restartPolicy and rules from its origin label, and leaves it out of the pod's."""
    rules = [{"action": "Restart", "exitCodes": {"operator": "In", "values": [42]}}]
    export = assert_round_trip(pod({"restartPolicy": "OnFailure", "containers": [
        {"name": "app", "image": BUSY, "command": ["sleep", "1"], "restartPolicy": "Never", "restartPolicyRules": rules},
        {"name": "other", "image": BUSY, "command": ["sleep", "2"]}]}))
    spec = export.documents[0]["spec"]
    containers = dict((c["name"], c) for c in spec["containers"])
    assert containers["app"]["restartPolicy"] == "Never" and containers["app"]["restartPolicyRules"] == rules
    assert "restartPolicy" not in containers["other"] and spec["restartPolicy"] == "OnFailure"
    assert not [w for w in export.warnings if "restart" in w], export.warnings
