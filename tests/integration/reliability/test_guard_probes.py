"""Probes run by podkit-guard, on the real engine: an httpGet liveness probe that starts failing
restarts the container with gaps that grow (crash-loop backoff 10 s doubling); a failing
readiness probe shows ready: false in pod_facts; a startup probe gates liveness and restarts a
container that never starts. The HTTP probes are made inside the pod's network
namespace to its localhost (the image has no curl; nothing is published for them)."""

import datetime
import json
import time

import pytest

from helpers import BUSYBOX_IMAGE, PAUSE_IMAGE, wait_for

pytestmark = pytest.mark.reliability("faults")

# httpd serves /www; /www/healthz exists until the test removes it.
HTTPD = ["sh", "-c", "mkdir -p /www && echo ok > /www/healthz && exec httpd -f -p 8080 -h /www"]


def probe(path, **extra):
    return dict(dict(httpGet=dict(path=path, port=8080), periodSeconds=1, failureThreshold=1, timeoutSeconds=1), **extra)


def _starts(docker_client, name):
    return docker_client.containers.get(name).attrs["State"]["StartedAt"]


def test_failing_liveness_restarts_with_growing_gaps(guard, docker_client, pod_name):
    guard.module("pod", name=pod_name, sandbox_image=PAUSE_IMAGE, pull="never", containers=[
        dict(name="web", image=BUSYBOX_IMAGE, command=HTTPD, livenessProbe=probe("/healthz"))])
    guard.start()
    web = "%s_web" % pod_name
    first = _starts(docker_client, web)
    time.sleep(3)
    assert _starts(docker_client, web) == first, "restarted while its liveness probe passed:\n" + guard.log_text()
    # The probe starts failing: the file it reads is gone (each restart brings it back, and the
    # test removes it again, so the container keeps failing).
    docker_client.containers.get(web).exec_run(["rm", "/www/healthz"])
    restarts = []
    seen = first
    deadline = time.monotonic() + 75
    while time.monotonic() < deadline and len(restarts) < 3:
        now = _starts(docker_client, web)
        if now != seen and docker_client.containers.get(web).status == "running":
            restarts.append(time.monotonic())
            seen = now
            docker_client.containers.get(web).exec_run(["rm", "/www/healthz"])
        time.sleep(0.2)
    assert len(restarts) == 3, "restarts seen: %d; guard log:\n%s" % (len(restarts), guard.log_text())
    gaps = [b - a for a, b in zip(restarts, restarts[1:])]
    # First restart at once, then 10 s of backoff, then 20 s (the kubelet's crash-loop backoff: 10 s, doubling).
    # Each gap is its backoff plus the probe's detection, which load lengthens: the backoffs are lower bounds, and
    # the difference between gaps is not held (a loaded CI run once saw 12.6 s then 20.6 s).
    assert gaps[0] >= 9 and gaps[1] >= 19 and gaps[1] > gaps[0], (gaps, guard.log_text())
    assert guard.logged("reason=livenessProbe failed: GET /healthz: HTTP/1.1 404"), guard.log_text()
    facts = guard.module("pod_facts", name=[pod_name])
    entry = facts["ansible_facts"]["podkit_pods"][pod_name]["containers"]["web"]
    assert entry["restart_count"] >= 3 and entry["last_repair"]["trigger"] == "probe", entry


def test_failing_readiness_shows_not_ready(guard, docker_client, pod_name):
    guard.start()
    ok = dict(name="ok", image=BUSYBOX_IMAGE, command=["sh", "-c", "mkdir -p /w && echo y > /w/ready && exec httpd -f -p 8081 -h /w"],
              readinessProbe=probe("/ready", httpGet=dict(path="/ready", port=8081)))
    # wait: true waits for readiness as the guard reports it: "ok" passes, "web" never does.
    failed = guard.module("pod", expect_fail=True, **dict(
        name=pod_name, sandbox_image=PAUSE_IMAGE, pull="never", wait_timeout=8, containers=[
            dict(name="web", image=BUSYBOX_IMAGE, command=HTTPD, readinessProbe=probe("/ready")), ok]))
    assert failed["msg"].startswith("wait: web of pod %s not ready within 8s (wait_timeout)" % pod_name), failed["msg"]
    assert "404" in failed["msg"], failed["msg"]

    def ready():
        facts = guard.module("pod_facts", name=[pod_name])["ansible_facts"]
        containers = facts["podkit_pods"][pod_name]["containers"]
        return containers["web"]["ready"], containers["ok"]["ready"], facts["podkit_host"]["guard"]
    assert wait_for(lambda: ready()[:2] == (False, True), 15, step=0.5) is not None, (ready(), guard.log_text())
    web_ready, _ok, host_guard = ready()
    assert host_guard["running"] and host_guard["installed"] and host_guard["last_sync"]
    status = json.loads((guard.state_dir / "guard.json").read_text())
    last = status["pods"][pod_name]["containers"]["web"]["last_probe"]
    assert last["probe"] == "readinessProbe" and not last["success"] and "404" in last["message"], last
    # Readiness never restarts: the container runs on.
    assert docker_client.containers.get("%s_web" % pod_name).status == "running"
    tree = "\n".join(guard.module("pod_facts", name=[pod_name])["tree"])
    assert "guard: running" in tree and "not ready" in tree, tree


def _exec_probe(command, **extra):
    return dict(dict(exec=dict(command=["sh", "-c", command]), periodSeconds=1, timeoutSeconds=1), **extra)


# The liveness probe leaves a mark in the container's filesystem each time it runs; a restart keeps
# the filesystem, so an absent mark means it never ran in any instance of the container.
LIVENESS_MARK = _exec_probe("echo ran >> /tmp/liveness-ran", failureThreshold=1)
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]


def _file_in(docker_client, name, path):
    """Whether ``path`` exists in the container's filesystem, read through the engine's archive API, which
    also reads a container the guard holds stopped in its crash-loop backoff (exec needs it running)."""
    import docker.errors  # pylint: disable=import-outside-toplevel
    try:
        docker_client.containers.get(name).get_archive(path)
    except docker.errors.NotFound:
        return False
    return True


def test_startup_probe_gates_liveness_and_restarts_what_never_starts(guard, docker_client, pod_name):
    """Kubernetes' startup probe: until it passes, liveness (and readiness) do not run and the container is
    not ready; once it passes, liveness runs; a container whose startup probe never passes is restarted
    once failureThreshold consecutive failures, periodSeconds apart, have used its startup time up."""
    threshold = 4
    guard.start()       # first: the startup time is counted from the container's start
    guard.module("pod", name=pod_name, sandbox_image=PAUSE_IMAGE, pull="never", containers=[
        dict(name="slow", image=BUSYBOX_IMAGE, command=SLEEPER, livenessProbe=LIVENESS_MARK,
             startupProbe=_exec_probe("test -e /tmp/started", failureThreshold=120)),
        dict(name="never", image=BUSYBOX_IMAGE, command=SLEEPER, livenessProbe=LIVENESS_MARK,
             startupProbe=_exec_probe("test -e /tmp/started", failureThreshold=threshold))])
    slow, never = "%s_slow" % pod_name, "%s_never" % pod_name
    first = docker_client.containers.get(never).attrs["State"]["StartedAt"]

    def ready():
        containers = guard.module("pod_facts", name=[pod_name])["ansible_facts"]["podkit_pods"][pod_name]["containers"]
        return containers["slow"]["ready"], containers["never"]["ready"]

    # "never" fails its startup probe each second: restarted once its failureThreshold x periodSeconds
    # of startup time are used up (the first probe runs at its start, as the kubelet's does).
    assert wait_for(lambda: docker_client.containers.get(never).attrs["State"]["StartedAt"] != first, 20) is not None, \
        guard.log_text()
    restarted = docker_client.containers.get(never).attrs["State"]["StartedAt"]
    took = _started(restarted) - _started(first)
    print("startup probe never passing: restarted %.1fs after the container started" % took)
    assert threshold - 1 <= took <= threshold + 3, (took, guard.log_text())
    # The guard logs its repair once Docker's restart call returns, which is after StartedAt has changed.
    repaired = "container=never action=restart reason=startupProbe failed: exit 1"
    assert wait_for(lambda: repaired in guard.log_text(), 10) is not None, guard.log_text()
    # Meanwhile "slow" waits on its startup probe: not ready, not restarted, its liveness probe not run.
    assert ready() == (False, False), guard.log_text()
    assert not _file_in(docker_client, slow, "/tmp/liveness-ran"), guard.log_text()
    slow_started = docker_client.containers.get(slow).attrs["State"]["StartedAt"]
    # Its application starts: the startup probe passes, liveness begins to run, the container is ready.
    docker_client.containers.get(slow).exec_run(["touch", "/tmp/started"])
    assert wait_for(lambda: _file_in(docker_client, slow, "/tmp/liveness-ran"), 10, step=0.3) is not None, \
        guard.log_text()
    assert wait_for(lambda: ready()[0] is True, 10, step=0.5) is not None, (ready(), guard.log_text())
    assert docker_client.containers.get(slow).attrs["State"]["StartedAt"] == slow_started
    # "never"'s liveness probe never ran, in any of its instances.
    assert not _file_in(docker_client, never, "/tmp/liveness-ran"), guard.log_text()
    facts = guard.module("pod_facts", name=[pod_name])["ansible_facts"]["podkit_pods"][pod_name]["containers"]
    assert facts["never"]["last_repair"]["reason"].startswith("startupProbe failed"), facts["never"]
    assert facts["slow"]["restart_count"] == 0 and facts["slow"]["last_repair"] is None, facts["slow"]


def _started(text):
    """Docker's StartedAt (RFC 3339 with nanoseconds) as seconds since the epoch, to the microsecond."""
    head, _dot, rest = text.rstrip("Z").partition(".")
    moment = datetime.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp() + float("0." + (rest or "0")[:6])


def test_native_sidecar_probes_restart_it_and_count_toward_readiness(guard, docker_client, pod_names):
    """A native sidecar (an init container with restartPolicy: Always) is probed as Kubernetes' prober probes
    restartable init containers: its readiness counts toward the pod's (wait: true waits for it, a sidecar
    that never gets ready fails the run naming it), and its failing liveness probe restarts it."""
    guard.start()
    proxy_cmd = ["sh", "-c", "mkdir -p /p && echo y > /p/alive && %s exec httpd -f -p 8090 -h /p"]

    def sidecar(ready_file):
        return dict(name="proxy", image=BUSYBOX_IMAGE, restartPolicy="Always",
                    command=[proxy_cmd[0], proxy_cmd[1], proxy_cmd[2] % ("echo y > /p/ready &&" if ready_file else "")],
                    readinessProbe=probe("/ready", httpGet=dict(path="/ready", port=8090)),
                    livenessProbe=probe("/alive", httpGet=dict(path="/alive", port=8090)))

    app = dict(name="app", image=BUSYBOX_IMAGE, command=SLEEPER)
    never, pod = pod_names(), pod_names()
    failed = guard.module("pod", expect_fail=True, name=never, sandbox_image=PAUSE_IMAGE, pull="never", wait_timeout=6,
                          init_containers=[sidecar(False)], containers=[app])
    assert failed["msg"].startswith("wait: proxy of pod %s not ready within 6s (wait_timeout)" % never), failed["msg"]
    guard.module("pod", name=never, state="absent")

    guard.module("pod", name=pod, sandbox_image=PAUSE_IMAGE, pull="never", wait_timeout=20,
                 init_containers=[sidecar(True)], containers=[app])
    containers = guard.module("pod_facts", name=[pod])["ansible_facts"]["podkit_pods"][pod]["containers"]
    assert containers["proxy"]["ready"] is True, containers["proxy"]
    proxy = "%s_proxy" % pod
    first = _starts(docker_client, proxy)
    docker_client.containers.get(proxy).exec_run(["rm", "/p/alive"])
    assert wait_for(lambda: _starts(docker_client, proxy) != first, 15, step=0.3) is not None, guard.log_text()
    # The guard logs the repair once the engine's restart returned: a moment after the new start.
    line = "container=proxy action=restart reason=livenessProbe failed: GET /alive: HTTP/1.1 404"
    assert wait_for(lambda: line in guard.log_text(), 5, step=0.2) is not None, guard.log_text()
    # The member was left alone: only the sidecar was restarted.
    assert docker_client.containers.get("%s_app" % pod).attrs["RestartCount"] == 0
    facts = guard.module("pod_facts", name=[pod])["ansible_facts"]["podkit_pods"][pod]["containers"]
    assert facts["proxy"]["last_repair"]["trigger"] == "probe" and facts["app"]["last_repair"] is None, facts


def test_restart_rules_restart_on_the_exit_codes_they_name(guard, docker_client, pod_name):
    """KEP-5307 restart rules under a Never policy: Docker has no policy for "restart on exit code 3 only", so
    the engine restarts nothing and podkit-guard starts the container again when it exits 3 (the rule
    matches); an exit 4 matches no rule and the container's Never leaves it exited."""
    trapper = ["sh", "-c", "trap 'exit 3' USR1; trap 'exit 4' USR2; while :; do sleep 0.2; done"]
    rules = [dict(action="Restart", exitCodes=dict(operator="In", values=[3]))]
    guard.start()
    guard.module("pod", name=pod_name, sandbox_image=PAUSE_IMAGE, pull="never", restart_policy="Never", containers=[
        dict(name="job", image=BUSYBOX_IMAGE, command=trapper, restartPolicy="Never", restartPolicyRules=rules)])
    job = "%s_job" % pod_name
    attrs = docker_client.containers.get(job).attrs
    assert attrs["HostConfig"]["RestartPolicy"]["Name"] in ("", "no"), attrs["HostConfig"]["RestartPolicy"]
    first = attrs["State"]["StartedAt"]
    docker_client.containers.get(job).kill(signal="SIGUSR1")

    def restarted():
        state = docker_client.containers.get(job).attrs["State"]
        return state["Running"] and state["StartedAt"] != first
    assert wait_for(restarted, 20, step=0.3) is not None, guard.log_text()
    line = "repair pod=%s container=job action=start reason=not running" % pod_name
    assert wait_for(lambda: line in guard.log_text(), 5, step=0.2) is not None, guard.log_text()
    docker_client.containers.get(job).kill(signal="SIGUSR2")
    assert wait_for(lambda: not docker_client.containers.get(job).attrs["State"]["Running"], 10) is not None
    time.sleep(8)           # over a resync (5 s here) and any event: nothing starts it
    state = docker_client.containers.get(job).attrs["State"]
    assert not state["Running"] and state["ExitCode"] == 4, (state, guard.log_text())
