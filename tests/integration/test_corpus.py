"""The corpus: Pod manifests written the way public examples are, each converged on the real engine.

Every file in tests/corpus/ (``*.manifest``: YAML, named so that ansible-test's yamllint, which
wants one document per file, leaves these multi-document Kubernetes files alone) is a Kubernetes manifest (a Pod, with the ConfigMaps and Secrets it
uses). Its images are mapped to the local busybox (pull never). For each: it converges, a second
run changes nothing, and the kernel agrees with what the manifest asks - read from /proc, never
from what the module returned:

- every volumeMount is a mount of the container (/proc/<pid>/mountinfo), read-only when asked;
- every literal env value is in /proc/<pid>/environ; the expected values of references too;
- each container shares the sandbox's network and IPC namespaces (/proc/<pid>/ns);
- what the per-file ``CHECKS`` say (uids, capabilities, files, DNS ...);
- the fields that mean nothing on one host are named in the module's warnings (``WARNED``).

``REFUSED`` lists manifests podkit must refuse, each with the field its message names.
"""

import os
import pathlib

import pytest
import yaml

from helpers import BUSYBOX_IMAGE, PAUSE_IMAGE, ModuleRunner, export_pod, proc_environ, warning_text

CORPUS = pathlib.Path(__file__).resolve().parent.parent / "corpus"

# file stem -> the field paths the warnings must name.
WARNED = {
    "static-pod-kubeadm-style": ["status", "metadata.creationTimestamp", "spec.priority", "spec.priorityClassName",
                                 "spec.containers[0].terminationMessagePath",
                                 "spec.containers[0].terminationMessagePolicy"],
    "scheduling-node-selector": ["spec.nodeSelector"],
    "downward-api-env": ["spec.serviceAccountName"],
    "host-network": ["spec.dnsPolicy"],
    "generate-name": ["metadata.generateName"],          # beside metadata.name (the test sets one)
    "scheduling-affinity-tolerations": ["spec.affinity", "spec.tolerations", "spec.schedulerName"],
    "service-account-dns-policy": ["spec.serviceAccountName", "spec.automountServiceAccountToken",
                                   "spec.dnsPolicy", "spec.enableServiceLinks"],
    "extended-resources": ["spec.containers[0].resources.requests.example.com/dongle",
                           "spec.containers[0].resources.limits.example.com/dongle",
                           "spec.containers[0].resources.requests.ephemeral-storage"],
}

# file stem -> {container: {env name: expected value in the process's environment}}
ENV = {
    "env-dependent-vars": {"printer": {
        "UNCHANGED_REFERENCE": "$(PROTOCOL)://172.17.0.1:80",
        "SERVICE_ADDRESS": "https://172.17.0.1:80",
        "ESCAPED_REFERENCE": "$(PROTOCOL)://172.17.0.1:80"}},
    "configmap-env-single-key": {"test-container": {"SPECIAL_LEVEL_KEY": "very", "LOG_LEVEL": "INFO",
                                                    "OPTIONAL_ONE": None}},
    "configmap-envfrom-prefix": {"game": {"GAME_LIVES": "3", "GAME_DIFFICULTY": "hard", "GAME_dotted.key-name": "kept"}},
    "secret-env": {"envars-test-container": {"BACKEND_USERNAME": "backend-admin", "DB_USERNAME": "db-admin",
                                             "FROM_db-password": "not-a-real-password", "FROM_db-username": "db-admin"}},
    "downward-api-resources-env": {"test-container": {"MY_CPU_REQUEST": "125", "MY_CPU_LIMIT": "1",
                                                      "MY_MEM_REQUEST": "32", "MY_MEM_LIMIT": "67108864"}},
}


def documents(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def localised(docs):
    """The manifest with every image the local busybox (pull never): no registry is reachable here."""
    for doc in docs:
        if doc.get("kind") != "Pod":
            continue
        for key in ("containers", "initContainers"):
            for container in doc["spec"].get(key) or []:
                container["image"] = BUSYBOX_IMAGE
                container.pop("imagePullPolicy", None)
        for volume in doc["spec"].get("volumes") or []:
            if "image" in volume:
                volume["image"]["reference"] = BUSYBOX_IMAGE
    return docs


def pod_documents(docs):
    return [d for d in docs if d.get("kind") == "Pod"]


def pod_of(docs):
    return next(d for d in docs if d.get("kind") == "Pod")


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def mountinfo(pid):
    """{mount point: (options, fs type, super options)} as the kernel reports the process's mounts."""
    mounts = {}
    for line in read("/proc/%d/mountinfo" % pid).decode().splitlines():
        left, _sep, right = line.partition(" - ")
        fields = left.split()
        fstype, _source, super_options = (right.split() + ["", "", ""])[:3]
        mounts[fields[4]] = (fields[5], fstype, super_options)
    return mounts


def status(pid):
    return dict(line.split(":\t", 1) for line in read("/proc/%d/status" % pid).decode().splitlines() if ":\t" in line)


def in_container(pid, path):
    return read("/proc/%d/root%s" % (pid, path)).decode()


def check_downward_env(pods, pod_name, sandbox, client):
    env = proc_environ(pods["test-container"])
    info = client.info()
    settings = sandbox.attrs["NetworkSettings"]
    assert env["MY_POD_NAME"] == pod_name and env["MY_POD_NAMESPACE"] == "demo"
    assert env["MY_POD_SERVICE_ACCOUNT"] == "reporter" and env["MY_ZONE"] == "us-est-coast" and env["MY_BUILD"] == "two"
    assert env["MY_NODE_NAME"] == info["Name"]
    assert env["MY_POD_IP"] == settings["IPAddress"] and env["MY_POD_IP"]
    assert env["MY_HOST_IP"] == settings["Gateway"]
    assert env["MY_POD_UID"].replace("-", "") == sandbox.id[:32]


def check_resources_env(pods, pod_name, sandbox, client):
    assert proc_environ(pods["unlimited"])["HOST_CPUS"] == str(client.info()["NCPU"])


def file_mode(pid, path):
    import os
    return os.stat("/proc/%d/root%s" % (pid, path)).st_mode & 0o777


def check_configmap_volume(pods, *_context):
    pid = pods["test-container"]
    assert in_container(pid, "/etc/config/SPECIAL_LEVEL") == "very"
    assert in_container(pid, "/etc/config/SPECIAL_TYPE") == "charm"
    assert "ro" in mountinfo(pid)["/etc/config"][0].split(",")
    assert file_mode(pid, "/etc/config/SPECIAL_LEVEL") == 0o644


def check_configmap_items(pods, *_context):
    pid = pods["demo"]
    assert "player.maximum-lives=5" in in_container(pid, "/config/game.properties")
    assert "color.good=purple" in in_container(pid, "/config/ui/user-interface.properties")
    assert file_mode(pid, "/config/game.properties") == 0o440
    assert file_mode(pid, "/config/ui/user-interface.properties") == 0o400
    import os
    assert sorted(os.listdir("/proc/%d/root/config" % pid)) == ["game.properties", "ui"]


def check_secret_volume(pods, *_context):
    pid = pods["test-container"]
    assert in_container(pid, "/etc/secret-volume/username") == "my-app"
    assert in_container(pid, "/etc/secret-volume/password") == "39528$vdg7Jb"
    assert file_mode(pid, "/etc/secret-volume/password") == 0o400
    options, fstype, _super = mountinfo(pid)["/etc/secret-volume"]
    # The files live on a tmpfs on the host: a Secret never touches a disk.
    assert fstype == "tmpfs" and "ro" in options.split(","), (fstype, options)


def check_projected(pods, *_context):
    pid = pods["test-projected-volume"]
    assert in_container(pid, "/projected-volume/user") == "admin"
    assert in_container(pid, "/projected-volume/my-group/my-password") == "1f2d1e2e67df"
    assert in_container(pid, "/projected-volume/my-group/my-config") == "mode=projected\n"
    assert in_container(pid, "/projected-volume/labels") == 'app="projected"\n'
    assert mountinfo(pid)["/projected-volume"][1] == "tmpfs"


def check_projected_objects(pods, pod_name, *_context):
    pid = pods["reporter"]
    assert in_container(pid, "/etc/bundle/username") == "reporter"
    assert in_container(pid, "/etc/bundle/password") == "s3cr3t-not-real" and in_container(pid, "/etc/bundle/pin") == "4321"
    assert in_container(pid, "/etc/bundle/settings/interval") == "30"
    assert sorted(os.listdir("/proc/%d/root/etc/bundle" % pid)) == ["password", "pin", "settings", "username"]
    # The export names the Secrets and the ConfigMap the pod used, each with its own keys (the round trip
    # at the end applies it back as a no-op).
    entry = export_pod(ModuleRunner(), pod_name)
    objects = dict(((d["kind"], d["metadata"]["name"]), sorted(d.get("data") or {})) for d in entry["manifest"][1:])
    assert objects == {("Secret", "db-user"): ["username"], ("Secret", "db-pass"): ["password", "pin"],
                       ("ConfigMap", "report-settings"): ["interval"]}, objects
    assert entry["manifest"][0]["spec"]["volumes"][0]["projected"]["sources"][:2] == [
        {"secret": {"name": "db-user"}}, {"secret": {"name": "db-pass"}}]


def check_pod_level_resources(pods, pod_name, sandbox, client):
    # Burstable (KEP-2837: the pod's class from spec.resources alone), the cgroup at the pod's limits.
    assert sandbox.labels["io.podkit.qos-class"] == "Burstable"
    facts = ModuleRunner()("pod_facts", name=[pod_name])["ansible_facts"]["podkit_pods"][pod_name]
    limits = facts["cgroup"]["limits"]
    assert limits["memory_bytes"] == 192 << 20 and limits["cpu_quota_us"] == 100000, limits
    with open(os.path.join(facts["cgroup"]["paths"]["memory"], "memory.limit_in_bytes")) as handle:
        assert int(handle.read()) == 192 << 20
    entry = export_pod(ModuleRunner(), pod_name)
    assert entry["manifest"][0]["spec"]["resources"]["requests"]["memory"] == "48Mi", entry["manifest"][0]["spec"]


def check_image_volume(pods, *_context):
    # Only on an engine that mounts images (Engine 28.0, API 1.48, and later): the image's files, read-only.
    pid = pods["shell"]
    assert os.path.exists("/proc/%d/root/opt/tools/bin/busybox" % pid)
    assert "ro" in mountinfo(pid)["/opt/tools"][0].split(",")


def check_downward_volume(pods, pod_name, *_context):
    pid = pods["client-container"]
    assert in_container(pid, "/etc/podinfo/labels") == 'cluster="test-cluster1"\nrack="rack-22"\nzone="us-est-coast"\n'
    assert 'builder="john-doe"' in in_container(pid, "/etc/podinfo/annotations")
    assert in_container(pid, "/etc/podinfo/name") == pod_name


def check_claim(pods, pod_name, sandbox, client):
    pid = pods["task-pv-container"]
    assert "/usr/share/nginx/html" in mountinfo(pid)
    volume = client.volumes.get(pod_name + "-claim")
    assert volume.attrs["Labels"]["io.podkit.claim"] == pod_name + "-claim"


def ids_of(pid, key):
    return status(pid)[key].split()


def cap_eff(pid):
    return int(status(pid)["CapEff"], 16)


def check_pod_security(pods, *_context):
    pid = pods["sec-ctx-demo"]
    assert ids_of(pid, "Uid") == ["1000"] * 4 and ids_of(pid, "Gid") == ["3000"] * 4
    assert {"2000", "4000"} <= set(ids_of(pid, "Groups")), status(pid)["Groups"]
    assert status(pid)["NoNewPrivs"].strip() == "1"


def check_container_override(pods, *_context):
    pid = pods["sec-ctx-demo-2"]
    assert ids_of(pid, "Uid") == ["2000"] * 4 and status(pid)["NoNewPrivs"].strip() == "1"


def check_capabilities_add(pods, *_context):
    caps = cap_eff(pods["sec-ctx-4"])
    assert caps & (1 << 12) and caps & (1 << 25), hex(caps)     # CAP_NET_ADMIN, CAP_SYS_TIME


def check_least_privilege(pods, *_context):
    pid = pods["web"]
    # A non-root process keeps no effective capability across exec (as under the kubelet); what the
    # container may hold is its bounding set: NET_BIND_SERVICE alone.
    assert int(status(pid)["CapBnd"], 16) == 1 << 10, status(pid)["CapBnd"]
    assert cap_eff(pid) == 0
    assert ids_of(pid, "Uid")[0] == "65534" and status(pid)["NoNewPrivs"].strip() == "1"
    assert status(pid)["Seccomp"].strip() == "2"                  # RuntimeDefault: a filter


def check_readonly_root(pods, *_context):
    assert "ro" in mountinfo(pods["app"])["/"][0].split(",")
    assert "rw" in mountinfo(pods["app"])["/tmp"][0].split(",")


def check_seccomp_unconfined(pods, *_context):
    assert status(pods["test-container"])["Seccomp"].strip() == "0"


def check_sysctls(pods, *_context):
    # /proc/sys shows the namespaces of the process reading it: read it from inside the pod's.
    import subprocess
    pid = pods["app"]
    for path, value in (("/proc/sys/net/ipv4/ip_unprivileged_port_start", "80"), ("/proc/sys/kernel/shm_rmid_forced", "1")):
        out = subprocess.run(["nsenter", "-t", str(pid), "-n", "-i", "cat", path], capture_output=True, text=True,
                             check=True).stdout
        assert out.strip() == value, (path, out)


def check_host_network(pods, *_context):
    assert read_link(pods["agent"], "net") == read_link(os.getpid(), "net")


def check_host_pid_ipc(pods, *_context):
    pid = pods["inspector"]
    assert read_link(pid, "pid") == read_link(os.getpid(), "pid")
    assert read_link(pid, "ipc") == read_link(os.getpid(), "ipc")
    assert cap_eff(pid) & (1 << 19)                                # CAP_SYS_PTRACE


def check_tty(pods, *_context):
    assert os.readlink("/proc/%d/fd/0" % pods["shell"]).startswith("/dev/pts/")


def check_grace(pods, pod_name, sandbox, client):
    config = client.containers.get(pod_name + "_worker").attrs["Config"]
    assert config["StopTimeout"] == 5 and config["StopSignal"] == "SIGUSR1"


def check_group_only(pods, *_context):
    pid = pods["app"]
    assert ids_of(pid, "Uid")[0] == "0" and ids_of(pid, "Gid") == ["5000"] * 4


def check_init(pods, *_context):
    assert in_container(pods["nginx"], "/usr/share/nginx/html/index.html") == "hello-from-init\n"


def check_shared(pods, *_context):
    import time
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            text = in_container(pods["nginx-container"], "/usr/share/nginx/html/index.html")
            break
        except OSError:
            time.sleep(0.2)
    assert text == "Hello from the debian container\n"


def check_host_aliases(pods, *_context):
    hosts = in_container(pods["cat-hosts"], "/etc/hosts")
    assert "foo.local" in hosts and "10.1.2.3" in hosts


def ts(text):
    """Docker's RFC 3339 time (trailing zeros of the nanoseconds trimmed) as a sortable pair."""
    whole, _sep, fraction = text.rstrip("Z").partition(".")
    return whole, int((fraction + "000000000")[:9])


def started(client, name):
    return ts(client.containers.get(name).attrs["State"]["StartedAt"])


def check_sidecar(pods, pod_name, sandbox, client):
    shipper = client.containers.get(pod_name + "_logshipper").attrs
    assert shipper["State"]["Running"] and shipper["HostConfig"]["RestartPolicy"]["Name"] == "always"
    # The sidecar started before the next init container ran, which completed before the member started.
    waiter = client.containers.get(pod_name + "_wait-for-shipper").attrs["State"]
    assert waiter["ExitCode"] == 0 and not waiter["Running"]
    assert ts(shipper["State"]["StartedAt"]) < ts(waiter["StartedAt"]) <= ts(waiter["FinishedAt"]) \
        < started(client, pod_name + "_myapp")
    # Shares the pod's volume and namespaces with the member.
    shipper_pid = shipper["State"]["Pid"]
    assert read_link(shipper_pid, "net") == read_link(pods["myapp"], "net")
    assert "/opt" in mountinfo(shipper_pid)


def check_sidecar_startup(pods, pod_name, sandbox, client):
    """The kubelet starts the next container once a sidecar's startup probe passed: the init container after
    the proxy started after the proxy wrote its file (its probe could pass only then), the member after it."""
    proxy = client.containers.get(pod_name + "_proxy").attrs
    assert proxy["State"]["Running"] and proxy["HostConfig"]["RestartPolicy"]["Name"] == "always"
    up = int(in_container(proxy["State"]["Pid"], "/run/proxy/up"))
    migrate = client.containers.get(pod_name + "_migrate").attrs["State"]
    assert migrate["ExitCode"] == 0 and not migrate["Running"]
    import calendar
    import time as _time
    # The file holds whole seconds: the init container started in that second or later.
    migrate_started = calendar.timegm(_time.strptime(ts(migrate["StartedAt"])[0], "%Y-%m-%dT%H:%M:%S"))
    assert migrate_started >= up, (up, migrate["StartedAt"])
    # (Not FinishedAt against the member's start: Docker stamps FinishedAt a moment after it reports the exit.)
    assert ts(proxy["State"]["StartedAt"]) < ts(migrate["StartedAt"]) < started(client, pod_name + "_app")


def check_restart_rules(pods, pod_name, sandbox, client):
    """KEP-5307: the first rule matching the exit code restarts the container, else its restartPolicy decides.
    In [42] under Never has no Docker policy (the engine restarts nothing; podkit started it again after its
    exit 42); NotIn [0] under Never is exactly Docker's on-failure."""
    step = client.containers.get(pod_name + "_step").attrs
    assert step["HostConfig"]["RestartPolicy"]["Name"] in ("", "no"), step["HostConfig"]["RestartPolicy"]
    # It ran once to its exit 42 (the file it wrote then), and runs again: the same container, started again.
    assert in_container(pods["step"], "/state/first-done").strip().isdigit()
    assert read("/proc/%d/cmdline" % pods["step"]).split(b"\0")[:2] == [b"sleep", b"infinity"]
    watcher = client.containers.get(pod_name + "_watcher").attrs
    assert watcher["HostConfig"]["RestartPolicy"]["Name"] == "on-failure", watcher["HostConfig"]["RestartPolicy"]


def check_post_start(pods, *_context):
    assert in_container(pods["lifecycle-demo-container"], "/usr/share/hooks/message") == "Hello from the postStart handler\n"


def check_dns_none(pods, *_context):
    resolv = in_container(pods["test"], "/etc/resolv.conf")
    assert "nameserver 192.0.2.1" in resolv and "ns1.svc.cluster-domain.example" in resolv and "ndots:2" in resolv


def check_memory_emptydir(pods, *_context):
    options, fstype, super_options = mountinfo(pods["app"])["/cache"]
    assert fstype == "tmpfs" and "size=65536k" in super_options, (fstype, super_options)


def check_command_expansion(pods, *_context):
    assert read("/proc/%d/cmdline" % pods["command-demo-container"]).split(b"\0")[:2] == [b"sleep", b"3600"]


CHECKS = {
    "lifecycle-hooks": check_post_start,
    "native-sidecar-logshipper": check_sidecar,
    "sidecar-startup-probe": check_sidecar_startup,
    "restart-rules": check_restart_rules,
    "security-context-pod": check_pod_security,
    "security-context-container-override": check_container_override,
    "capabilities-add": check_capabilities_add,
    "capabilities-drop-all": check_least_privilege,
    "readonly-root-filesystem": check_readonly_root,
    "seccomp-unconfined": check_seccomp_unconfined,
    "sysctls": check_sysctls,
    "host-network": check_host_network,
    "host-pid-ipc": check_host_pid_ipc,
    "stdin-tty": check_tty,
    "termination-grace-stop-signal": check_grace,
    "run-as-group-only": check_group_only,
    "init-containers": check_init,
    "shared-volume-two-containers": check_shared,
    "host-aliases": check_host_aliases,
    "configmap-volume": check_configmap_volume,
    "configmap-volume-items": check_configmap_items,
    "secret-volume": check_secret_volume,
    "projected-volume": check_projected,
    "projected-two-secrets": check_projected_objects,
    "pod-level-resources": check_pod_level_resources,
    "image-volume": check_image_volume,
    "downward-api-volume": check_downward_volume,
    "pvc-volume": check_claim,
    "downward-api-env": check_downward_env,
    "downward-api-resources-env": check_resources_env,
    "dns-policy-none": check_dns_none,
    "memory-emptydir-size": check_memory_emptydir,
    "command-expansion": check_command_expansion,
}

REFUSED = {
    "refused-host-users": "spec.hostUsers",
    "refused-selinux": "spec.securityContext.seLinuxOptions",
    # A file without its Pod: which document, which kind, what was expected.
    "refused-no-pod-document": "manifest[1].kind: document 2 of 2 (kind 'Service', named 'frontend') is not a kind the"
                               " pod module takes; a manifest holds one Pod (apiVersion: v1, kind: Pod)",
}

# file stem -> the Engine API version it needs: on an older engine the pod module refuses it naming the engine
# version that would run it (this machine's Debian 20.10 engine: API 1.41), in check mode as in a real run.
NEEDS_ENGINE = {"image-volume": ((1, 48), "Docker Engine 28.0 (API 1.48)")}


def engine_api(client):
    version = client.version()
    return tuple(int(p) for p in version["ApiVersion"].split(".")[:2]), version


FILES = sorted(p for p in CORPUS.glob("*.manifest"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_corpus_manifest(path, run_module, docker_client, pod_name):
    docs = localised(documents(path))
    if not pod_documents(docs):
        result = run_module("pod", expect_fail=True, name=pod_name, manifest=docs, pull="never")
        assert REFUSED[path.stem] in result["msg"], result["msg"]
        return
    pod = pod_of(docs)
    pod["metadata"]["name"] = pod_name      # a unique name per run; the fixture removes it
    claims = []
    for volume in pod["spec"].get("volumes") or []:
        if "persistentVolumeClaim" in volume:
            volume["persistentVolumeClaim"]["claimName"] = pod_name + "-claim"
            claims.append(pod_name + "-claim")
    try:
        converge_and_check(path, docs, pod, pod_name, run_module, docker_client)
    finally:
        for claim in claims:
            try:
                docker_client.containers.get(pod_name + "_sandbox")
                run_module("pod", name=pod_name, state="absent")
            except Exception:  # pylint: disable=broad-except  # nothing left to remove
                pass
            docker_client.volumes.get(claim).remove(force=True)


def converge_and_check(path, docs, pod, pod_name, run_module, docker_client):
    args = dict(manifest=docs if len(docs) > 1 else pod, sandbox_image=PAUSE_IMAGE, pull="never", wait_timeout=30)
    if path.stem in REFUSED:
        result = run_module("pod", expect_fail=True, **args)
        assert REFUSED[path.stem] in result["msg"], result["msg"]
        return
    if path.stem in NEEDS_ENGINE:
        needed, named = NEEDS_ENGINE[path.stem]
        api, version = engine_api(docker_client)
        if api < needed:
            for check in (True, False):
                result = run_module("pod", expect_fail=True, check=check, **args)
                assert named in result["msg"] and "this engine is %s (API %s)" % (
                    version["Version"], version["ApiVersion"]) in result["msg"], result["msg"]
            assert not docker_client.containers.list(all=True, filters={"label": "io.podkit.pod=" + pod_name})
            return
    first = run_module("pod", **args)
    warnings = "\n".join(warning_text(w) for w in first.get("warnings") or [])
    for field in WARNED.get(path.stem, []):
        assert "%s: ignored" % field in warnings, (field, warnings)
    if path.stem not in WARNED:
        assert not first.get("warnings"), first.get("warnings")
    again = run_module("pod", **args)
    assert again["changed"] is False, again["actions"]

    sandbox = docker_client.containers.get("%s_sandbox" % pod_name)
    sandbox_pid = sandbox.attrs["State"]["Pid"]
    pids = {}
    for container in pod["spec"]["containers"]:
        attrs = docker_client.containers.get("%s_%s" % (pod_name, container["name"])).attrs
        assert attrs["State"]["Running"], (container["name"], attrs["State"])
        pid = pids[container["name"]] = attrs["State"]["Pid"]
        for ns in ("net", "ipc"):
            assert read_link(pid, ns) == read_link(sandbox_pid, ns)
        mounts = mountinfo(pid)
        for mount in container.get("volumeMounts") or []:
            assert mount["mountPath"] in mounts, (mount, sorted(mounts))
            if mount.get("readOnly"):
                assert "ro" in mounts[mount["mountPath"]][0].split(",")
        env = proc_environ(pid)
        for item in container.get("env") or []:
            if "value" in item and "$" not in str(item["value"]):
                assert env.get(item["name"]) == str(item["value"]), item
        for name, value in ENV.get(path.stem, {}).get(container["name"], {}).items():
            assert env.get(name) == value, (name, env.get(name))
    if path.stem in CHECKS:
        CHECKS[path.stem](pids, pod_name, sandbox, docker_client)


def read_link(pid, ns):
    return os.readlink("/proc/%d/ns/%s" % (pid, ns))


def test_strict_refuses_what_means_nothing_here(run_module, pod_name, docker_client):
    pod = pod_of(localised(documents(CORPUS / "static-pod-kubeadm-style.manifest")))
    pod["metadata"]["name"] = pod_name
    result = run_module("pod", expect_fail=True, manifest=pod, sandbox_image=PAUSE_IMAGE, pull="never",
                        validate="strict")
    for field in WARNED["static-pod-kubeadm-style"]:
        assert field in result["msg"], (field, result["msg"])
    assert not docker_client.containers.list(all=True, filters={"label": "io.podkit.pod=" + pod_name})


def test_namespace_and_annotations_recorded(run_module, pod_name, docker_client):
    pod = pod_of(localised(documents(CORPUS / "static-pod-kubeadm-style.manifest")))
    pod["metadata"]["name"] = pod_name
    result = run_module("pod", manifest=pod, sandbox_image=PAUSE_IMAGE, pull="never", validate="ignore")
    assert result["namespace"] == "kube-system" and result["pod"]["namespace"] == "kube-system"
    assert "warnings" not in result
    labels = docker_client.containers.get(pod_name + "_sandbox").labels
    assert labels["example.org/advertise-url"] == "https://127.0.0.1:2379"
    assert labels["io.podkit.namespace"] == "kube-system" and labels["tier"] == "control-plane"


def test_sidecars_stop_after_the_members_in_reverse_order(run_module, pod_name, docker_client):
    docs = localised(documents(CORPUS / "native-sidecar-logshipper.manifest"))
    pod = pod_of(docs)
    pod["metadata"]["name"] = pod_name
    second = dict(pod["spec"]["initContainers"][0], name="metrics", command=["sleep", "3600"])
    second.pop("volumeMounts")
    pod["spec"]["initContainers"].append(second)
    args = dict(manifest=pod, sandbox_image=PAUSE_IMAGE, pull="never")
    run_module("pod", **args)
    result = run_module("pod", state="stopped", **args)
    assert result["actions"] == ["stop myapp", "stop metrics", "stop logshipper", "stop sandbox"], result["actions"]
    finished = dict((n, ts(docker_client.containers.get("%s_%s" % (pod_name, n)).attrs["State"]["FinishedAt"]))
                    for n in ("myapp", "metrics", "logshipper"))
    assert finished["myapp"] <= finished["metrics"] <= finished["logshipper"], finished


def test_pre_stop_runs_before_the_stop(run_module, pod_name, docker_client):
    pod = pod_of(localised(documents(CORPUS / "lifecycle-hooks.manifest")))
    pod["metadata"]["name"] = pod_name
    args = dict(manifest=pod, sandbox_image=PAUSE_IMAGE, pull="never")
    run_module("pod", **args)
    volume = docker_client.volumes.get(pod_name + "_shared").attrs["Mountpoint"]
    assert not os.path.exists(os.path.join(volume, "farewell"))
    run_module("pod", state="stopped", **args)
    with open(os.path.join(volume, "farewell")) as handle:
        assert handle.read() == "Goodbye from the preStop handler\n"
    state = docker_client.containers.get(pod_name + "_lifecycle-demo-container").attrs["State"]
    assert not state["Running"]


def test_generate_name_is_the_pods_stable_name(run_module, pod_name, docker_client):
    """A Pod with generateName and no name runs as generateName less its '-' (said in a warning), and a second run
    converges that same pod instead of making another (the API server would add a random suffix each time)."""
    pod = pod_of(localised(documents(CORPUS / "generate-name.manifest")))
    assert "name" not in pod["metadata"]
    pod["metadata"]["generateName"] = pod_name + "-"
    args = dict(manifest=pod, sandbox_image=PAUSE_IMAGE, pull="never")
    first = run_module("pod", **args)
    warnings = "\n".join(warning_text(w) for w in first.get("warnings") or [])
    assert "metadata.generateName: the pod is named %r" % pod_name in warnings, warnings
    worker = docker_client.containers.get(pod_name + "_worker")
    assert worker.labels["io.podkit.pod"] == pod_name and worker.attrs["State"]["Running"]
    again = run_module("pod", **args)
    assert again["changed"] is False, again["actions"]
    assert len(docker_client.containers.list(all=True, filters={"label": "io.podkit.pod=" + pod_name})) == 2
