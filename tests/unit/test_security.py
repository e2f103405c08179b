"""securityContext, host namespaces, stdin/tty and stop settings mapped to Docker (pure)."""

import pytest

from ansible_collections.podkit.docker.plugins.module_utils._create import member_create_args, sandbox_create_args
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._security import check_non_root
from ansible_collections.podkit.docker.plugins.module_utils._spec import pod_spec_from_manifest
from ansible_collections.podkit.docker.plugins.module_utils._wanted import want_pod

from unithost import HOST


def pod(spec_extra=None, container_extra=None, annotations=None):
    container = dict(name="app", image="busybox", command=["sleep", "1d"])
    container.update(container_extra or {})
    spec = dict(containers=[container])
    spec.update(spec_extra or {})
    metadata = dict(name="sec")
    if annotations:
        metadata["annotations"] = annotations
    return dict(apiVersion="v1", kind="Pod", metadata=metadata, spec=spec)


def wanted(doc):
    return want_pod(pod_spec_from_manifest(doc), HOST)


def test_pod_and_container_levels_merge():
    w = wanted(pod(
        dict(securityContext=dict(runAsUser=1000, runAsGroup=3000, fsGroup=2000, supplementalGroups=[4000]),
             terminationGracePeriodSeconds=5),
        dict(securityContext=dict(runAsUser=2000, allowPrivilegeEscalation=False, readOnlyRootFilesystem=True,
                                  capabilities=dict(add=["NET_ADMIN", "CAP_SYS_TIME"], drop=["all"])),
             lifecycle=dict(stopSignal="SIGQUIT"), stdin=True, tty=True)))
    security = w.members[0].config["security"]
    assert security == dict(user="2000:3000", groups=[4000, 2000], cap_add=["NET_ADMIN", "SYS_TIME"], cap_drop=["ALL"],
                            read_only=True, security_opt=["no-new-privileges"], stdin=True, tty=True,
                            stop_signal="SIGQUIT", stop_timeout=5)
    create, host = member_create_args("busybox", "sec_app", w.members[0].config, {}, "sid")
    assert create["user"] == "2000:3000" and create["stdin_open"] and create["tty"]
    assert create["stop_signal"] == "SIGQUIT" and create["stop_timeout"] == 5
    assert host["group_add"] == ["4000", "2000"] and host["cap_add"] == ["NET_ADMIN", "SYS_TIME"]
    assert host["read_only"] is True and host["security_opt"] == ["no-new-privileges"]


def test_no_security_means_no_new_key():
    w = wanted(pod())
    assert "security" not in w.members[0].config and "host" not in w.sandbox.config


def test_host_namespaces_and_sysctls_on_the_sandbox():
    w = wanted(pod(dict(hostNetwork=True, hostPID=True, hostIPC=True, securityContext=dict(
        sysctls=[dict(name="net.ipv4.ip_unprivileged_port_start", value="0")]))))
    assert w.sandbox.config["host"] == dict(host_network=True, host_pid=True, host_ipc=True,
                                            sysctls={"net.ipv4.ip_unprivileged_port_start": "0"})
    create, host = sandbox_create_args(w.sandbox.image, "sec_sandbox", w.sandbox.config, {})
    assert host["network_mode"] == "host" and host["pid_mode"] == "host" and host["ipc_mode"] == "host"
    assert host["sysctls"] == {"net.ipv4.ip_unprivileged_port_start": "0"} and "hostname" not in create
    member = w.members[0].config
    assert member["share"] == ["ipc", "net", "pid"]
    _create, mhost = member_create_args("busybox", "sec_app", member, {}, "sid")
    assert mhost["ipc_mode"] == "host"


def test_apparmor_field_and_legacy_annotation():
    w = wanted(pod(container_extra=dict(securityContext=dict(appArmorProfile=dict(type="Unconfined")))))
    assert w.members[0].config["security"]["security_opt"] == ["apparmor=unconfined"]
    w = wanted(pod(annotations={"container.apparmor.security.beta.kubernetes.io/app": "localhost/k8s-deny-write"}))
    assert w.members[0].config["security"]["security_opt"] == ["apparmor=k8s-deny-write"]


@pytest.mark.parametrize("spec_extra, container_extra, expected", [
    (dict(hostUsers=False), None, "spec.hostUsers"),
    (None, dict(securityContext=dict(procMount="Unmasked")), "spec.containers[0].securityContext.procMount"),
    (None, dict(securityContext=dict(seLinuxOptions={})), "spec.containers[0].securityContext.seLinuxOptions"),
    (None, dict(securityContext=dict(seccompProfile=dict(type="Localhost", localhostProfile="a.json"))),
     "seccompProfile.localhostProfile: the profile /var/lib/podkit/seccomp/a.json cannot be read"),
    (dict(securityContext=dict(sysctls=[dict(name="vm.swappiness", value="1")])), None, "'vm.swappiness' is not namespaced"),
    (None, dict(securityContext=dict(capabilities=dict(add=["net admin"]))), "capabilities.add[0]"),
    (None, dict(securityContext=dict(runAsUser=0, runAsNonRoot=True)), "runAsNonRoot: true contradicts"),
    (None, dict(lifecycle=dict(stopSignal="TERM")), "lifecycle.stopSignal"),
    (None, dict(lifecycle=dict(preStop=dict(httpGet=dict(port=80, host="10.0.0.1")))),
     "lifecycle.preStop.httpGet.host: '10.0.0.1' - podkit connects to the pod's own localhost"),
    (None, dict(lifecycle=dict(postStart=dict(httpGet=dict(port=80, scheme="HTTPS")))), "postStart.httpGet.scheme"),
    (None, dict(lifecycle=dict(postStart=dict(tcpSocket=dict(port="web")))), "postStart.tcpSocket.port: 'web'"),
    (None, dict(lifecycle=dict(postStart=dict(tcpSocket=dict(port=80), exec=dict(command=["true"])))),
     "give exactly one of exec, sleep, httpGet or tcpSocket"),
    (None, dict(lifecycle=dict(postStart=dict(httpGet=dict(port=80, httpHeaders=[dict(name="X: y", value="1")])))),
     "postStart.httpGet.httpHeaders[0]"),
])
def test_what_docker_cannot_do_is_named(spec_extra, container_extra, expected):
    with pytest.raises(PodkitError) as info:
        wanted(pod(spec_extra, container_extra))
    assert expected in info.value.msg


def test_run_as_non_root_against_the_image():
    check_non_root(dict(non_root=True), "1000", "containers[0]")
    check_non_root(dict(non_root=True, user="1000"), "root", "containers[0]")
    with pytest.raises(PodkitError, match="would run as root"):
        check_non_root(dict(non_root=True), "", "containers[0]")
    with pytest.raises(PodkitError, match="not numeric"):
        check_non_root(dict(non_root=True), "nobody", "containers[0]")


def test_http_and_tcp_hooks_are_kept_for_the_applier_and_named_ports_resolved():
    w = wanted(pod(container_extra=dict(
        ports=[dict(name="web", containerPort=8080)],
        lifecycle=dict(postStart=dict(httpGet=dict(path="/warm", port="web", httpHeaders=[dict(name="X-Hook", value="1")])),
                       preStop=dict(tcpSocket=dict(port=9000, host="localhost"))))))
    security = w.members[0].config["security"]
    assert security["post_start"] == {"httpGet": dict(port=8080, path="/warm", headers=[["X-Hook", "1"]])}
    assert security["pre_stop"] == {"tcpSocket": dict(port=9000)}
