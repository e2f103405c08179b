"""httpGet and tcpSocket lifecycle hooks, made by the module from the host inside the pod's network
namespace to its localhost (as podkit-guard makes its probes): the image needs no client and
nothing is published. A native sidecar serves a CGI script that writes down each request it
gets (method, URI, the X-Hook header) to a hostPath directory the test reads."""

import socket

from helpers import BUSYBOX_IMAGE, PAUSE_IMAGE

PORT = 9000         # inside the pod only; nothing listens on the host's 127.0.0.1 for it
HOOK = """#!/bin/sh
echo "$REQUEST_METHOD $REQUEST_URI x-hook=$HTTP_X_HOOK" >> /www/out/hooks
printf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'
"""


def _site(tmp_path):
    www = tmp_path / "www"
    (www / "cgi-bin").mkdir(parents=True)
    (www / "out").mkdir()
    (www / "cgi-bin" / "hook").write_text(HOOK)
    (www / "cgi-bin" / "hook").chmod(0o755)
    return www


def _http_hook(when):
    return dict(httpGet=dict(path="/cgi-bin/hook?when=%s" % when, port="web",
                             httpHeaders=[dict(name="X-Hook", value=when)]))


def _host_port_closed(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_http_and_tcp_hooks_reach_the_pods_localhost(run_module, docker_client, pod_name, tmp_path):
    """The server the hooks call is a native sidecar whose startupProbe gates the containers after it (as the
    kubelet starts them), so it listens before any hook runs: a hook at a server of its own container's would
    race that server's start, in Kubernetes as here."""
    www = _site(tmp_path)
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod_name}, "spec": {
        "terminationGracePeriodSeconds": 5,
        "volumes": [{"name": "www", "hostPath": {"path": str(www)}}],
        "initContainers": [
            {"name": "www", "image": BUSYBOX_IMAGE, "restartPolicy": "Always",
             "command": ["httpd", "-f", "-p", str(PORT), "-h", "/www"],
             "volumeMounts": [{"name": "www", "mountPath": "/www"}],
             "startupProbe": {"tcpSocket": {"port": PORT}, "periodSeconds": 1, "failureThreshold": 30}}],
        "containers": [
            {"name": "web", "image": BUSYBOX_IMAGE, "command": ["sleep", "3600"],
             "ports": [{"name": "web", "containerPort": PORT}],
             "lifecycle": {"postStart": _http_hook("post-start"), "preStop": _http_hook("pre-stop")}},
            {"name": "sidecar", "image": BUSYBOX_IMAGE, "command": ["sleep", "3600"],
             "lifecycle": {"postStart": {"tcpSocket": {"port": PORT}}}}]}}
    args = dict(manifest=manifest, sandbox_image=PAUSE_IMAGE, pull="never")
    assert _host_port_closed(PORT), "something on the host listens on 127.0.0.1:%d; the test needs it free" % PORT
    run_module("pod", **args)
    hooks = www / "out" / "hooks"
    assert hooks.read_text() == "GET /cgi-bin/hook?when=post-start x-hook=post-start\n"
    assert run_module("pod", **args)["changed"] is False    # a no-op run calls no hook
    assert hooks.read_text().count("\n") == 1
    run_module("pod", state="stopped", **args)
    assert hooks.read_text().splitlines()[1] == "GET /cgi-bin/hook?when=pre-stop x-hook=pre-stop"
    assert not docker_client.containers.get("%s_web" % pod_name).attrs["State"]["Running"]


def test_a_failing_post_start_hook_fails_the_run_naming_it(run_module, pod_name):
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod_name}, "spec": {"containers": [
        {"name": "app", "image": BUSYBOX_IMAGE, "command": ["sleep", "3600"],
         "lifecycle": {"postStart": {"tcpSocket": {"port": 9999}}}}]}}
    result = run_module("pod", expect_fail=True, manifest=manifest, sandbox_image=PAUSE_IMAGE, pull="never")
    assert "container app: its postStart hook tcpSocket to port 9999 failed (connect 127.0.0.1:9999: " \
        "Connection refused)" in result["msg"], result["msg"]
