# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container probes with Kubernetes semantics, run by podkit-guard.

``livenessProbe``, ``readinessProbe`` and ``startupProbe`` (manifests; the same keys on native
container entries) are parsed here into ``Probe``. Handlers: ``exec`` through Docker exec;
``httpGet`` and ``tcpSocket`` performed by the guard from the host inside the pod's network
namespace, to the pod's localhost: a child process enters /proc/<sandbox pid>/ns/net with
setns(2) and connects to 127.0.0.1, so images need no curl and no traffic goes to a bridge
address. ``ProbeState`` counts successes and failures against the thresholds as the kubelet's
prober does: a startup probe gates the others until it succeeds; liveness failing
``failureThreshold`` times in a row restarts the container; readiness is recorded.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._docker import Container, DockerError
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._labels import member_name, sandbox_name

PROBE_FIELDS = ("livenessProbe", "readinessProbe", "startupProbe")
_COMMON = ("initialDelaySeconds", "periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold")
_HANDLERS = ("exec", "httpGet", "tcpSocket")
_HTTP_FIELDS = ("path", "port", "scheme", "httpHeaders")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")     # an HTTP header name


@dataclass
class Probe:
    kind: str                       # livenessProbe, readinessProbe, startupProbe
    handler: str                    # exec, httpGet, tcpSocket
    command: Optional[List[str]] = None
    port: int = 0
    path: str = "/"
    headers: List[Tuple[str, str]] = field(default_factory=list)
    initial_delay: int = 0
    period: int = 10
    timeout: int = 1
    success_threshold: int = 1
    failure_threshold: int = 3


def _int(value: Any, path: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PodkitError("%s: %r must be a whole number of at least %d." % (path, value, minimum))
    return value


def parse_probe(kind: str, value: Any, path: str, ports: Dict[str, int]) -> Probe:
    """One probe of a container; ``ports`` maps the container's named ports to numbers."""
    if not isinstance(value, dict):
        raise PodkitError("%s must be a mapping, got %s." % (path, type(value).__name__))
    for key in value:
        if key not in _HANDLERS + _COMMON:
            raise PodkitError("%s.%s is not supported by podkit; remove it (supported here: %s)."
                              % (path, key, ", ".join(_HANDLERS + _COMMON)))
    handlers = [h for h in _HANDLERS if h in value]
    if len(handlers) != 1:
        raise PodkitError("%s: give exactly one of exec, httpGet or tcpSocket." % path)
    probe = Probe(kind=kind, handler=handlers[0])
    body = value[probe.handler]
    where = "%s.%s" % (path, probe.handler)
    if not isinstance(body, dict):
        raise PodkitError("%s must be a mapping." % where)
    if probe.handler == "exec":
        command = body.get("command")
        if set(body) - {"command"} or not isinstance(command, list) or not command or \
                not all(isinstance(c, str) for c in command):
            raise PodkitError("%s.command must be a non-empty list of strings (and the only key)." % where)
        probe.command = command
    else:
        probe.port, probe.path, probe.headers = parse_net_handler(probe.handler, body, where, ports)
    probe.initial_delay = _int(value.get("initialDelaySeconds", 0), path + ".initialDelaySeconds", 0)
    probe.period = _int(value.get("periodSeconds", 10), path + ".periodSeconds", 1)
    probe.timeout = _int(value.get("timeoutSeconds", 1), path + ".timeoutSeconds", 1)
    probe.success_threshold = _int(value.get("successThreshold", 1), path + ".successThreshold", 1)
    probe.failure_threshold = _int(value.get("failureThreshold", 3), path + ".failureThreshold", 1)
    if kind != "readinessProbe" and probe.success_threshold != 1:
        raise PodkitError("%s.successThreshold must be 1 for a %s (as in Kubernetes)." % (path, kind))
    return probe


def parse_net_handler(handler: str, body: Dict[str, Any], where: str,
                      ports: Dict[str, int]) -> Tuple[int, str, List[Tuple[str, str]]]:
    """(port, path, headers) of an ``httpGet`` or ``tcpSocket`` handler (a probe's or a lifecycle hook's),
    made to the pod's localhost: a ``host`` other than that is refused, as is HTTPS."""
    allowed = _HTTP_FIELDS + ("host",) if handler == "httpGet" else ("port", "host")
    for key in body:
        if key not in allowed:
            raise PodkitError("%s.%s is not supported by podkit; remove it (supported here: %s)."
                              % (where, key, ", ".join(allowed)))
    if body.get("host") not in (None, "", "localhost", "127.0.0.1"):
        raise PodkitError("%s.host: %r - podkit connects to the pod's own localhost, from inside its network "
                          "namespace; remove host (or give localhost)." % (where, body["host"]))
    port = body.get("port")
    if isinstance(port, str) and port in ports:
        port = ports[port]
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise PodkitError("%s.port: %r is not a port number 1-65535 nor a named port of this container." % (where, port))
    path, headers = "/", []
    if handler == "httpGet":
        if body.get("scheme", "HTTP") != "HTTP":
            raise PodkitError("%s.scheme: only HTTP is supported." % where)
        path = body.get("path", "/")
        if not isinstance(path, str) or not path.startswith("/"):
            raise PodkitError("%s.path: %r must be an absolute path such as /healthz." % (where, path))
        for index, header in enumerate(body.get("httpHeaders") or []):
            here = "%s.httpHeaders[%d]" % (where, index)
            if not isinstance(header, dict) or set(header) != {"name", "value"} or \
                    not all(isinstance(header[k], str) for k in header) or not _TOKEN.match(header["name"]) or \
                    any(c in header["value"] for c in "\r\n"):
                raise PodkitError("%s must be a mapping of name (a header name) and value (one line of text)." % here)
            headers.append((header["name"], header["value"]))
    return port, path, headers


def named_ports(item: Dict[str, Any]) -> Dict[str, int]:
    """A container entry's named ports: {name: containerPort}."""
    ports = {}
    for port in item.get("ports") or []:
        if isinstance(port, dict) and isinstance(port.get("name"), str) and isinstance(port.get("containerPort"), int):
            ports[port["name"]] = port["containerPort"]
    return ports


def net_handler_manifest(handler: str, port: int, path: str = "/",
                         headers: Sequence[Tuple[str, str]] = ()) -> Dict[str, Any]:
    """An httpGet or tcpSocket handler (a probe's or a lifecycle hook's) as a Pod manifest writes it."""
    if handler == "httpGet":
        get: Dict[str, Any] = {"port": port, "path": path}
        if headers:
            get["httpHeaders"] = [{"name": name, "value": value} for name, value in headers]
        return {"httpGet": get}
    return {"tcpSocket": {"port": port}}


def probe_manifest(probe: Probe) -> Dict[str, Any]:
    """A probe as a Pod manifest writes it (the export's form; parse_probe reads it back the same)."""
    if probe.handler == "exec":
        result: Dict[str, Any] = {"exec": {"command": list(probe.command or [])}}
    else:
        result = net_handler_manifest(probe.handler, probe.port, probe.path, probe.headers)
    result.update(initialDelaySeconds=probe.initial_delay, periodSeconds=probe.period, timeoutSeconds=probe.timeout,
                  successThreshold=probe.success_threshold, failureThreshold=probe.failure_threshold)
    return result


def parse_probes(item: Dict[str, Any], path: str, init: bool) -> Dict[str, Probe]:
    """The probes of a container entry (manifest or native), by kind. ``init``: an init container that
    runs to completion, which takes none; a native sidecar (restartPolicy Always) takes all three, as
    Kubernetes' validation allows them on restartable init containers (validateInitContainers)."""
    found = dict((kind, item[kind]) for kind in PROBE_FIELDS if item.get(kind) is not None)
    if found and init:
        raise PodkitError("%s: init containers take no probes (they run to completion; a native sidecar, with"
                          " restartPolicy: Always, takes them); remove %s." % (path, ", ".join(sorted(found))))
    ports = named_ports(item)
    return dict((kind, parse_probe(kind, value, "%s.%s" % (path, kind), ports)) for kind, value in found.items())


# ---------------------------------------------------------------------------
# Running a probe

# Run as a child process: enter the pod's network namespace, then connect to its localhost.
# The guard's (or the module's) own threads stay in the host's namespace; nothing leaves the
# pod's loopback.
_NETNS_REQUEST = r"""
import ctypes, json, os, socket, sys
pid, handler, port, path, timeout, headers = (sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4],
                                              float(sys.argv[5]), json.loads(sys.argv[6]))
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open("/proc/%s/ns/net" % pid, os.O_RDONLY)
if libc.setns(fd, 0x40000000) != 0:
    sys.stdout.write("setns into /proc/%s/ns/net failed: %s" % (pid, os.strerror(ctypes.get_errno())))
    sys.exit(2)
try:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
except OSError as exc:
    sys.stdout.write("connect 127.0.0.1:%d: %s" % (port, exc.strerror or exc))
    sys.exit(1)
if handler == "tcpSocket":
    sys.stdout.write("tcp 127.0.0.1:%d open" % port)
    sys.exit(0)
sock.settimeout(timeout)
names = set(name.lower() for name, _value in headers)
lines = ["GET %s HTTP/1.0" % path]
lines += [] if "host" in names else ["Host: localhost:%d" % port]
lines += [] if "user-agent" in names else ["User-Agent: podkit"]
lines += ["%s: %s" % (name, value) for name, value in headers]
try:
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    head = sock.recv(256).split(b"\r\n", 1)[0].decode("latin-1")
except OSError as exc:
    sys.stdout.write("GET %s: %s" % (path, exc.strerror or exc))
    sys.exit(1)
parts = head.split()
code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
sys.stdout.write("GET %s: %s" % (path, head or "no answer"))
sys.exit(0 if 200 <= code < 400 else 1)
"""


def netns_request(pid: int, handler: str, port: int, path: str = "/", headers: Optional[List[Tuple[str, str]]] = None,
                  timeout: float = 1) -> Tuple[bool, str]:
    """An httpGet (a 2xx or 3xx answer succeeds, as in Kubernetes) or tcpSocket (a connection succeeds)
    to 127.0.0.1:``port`` inside the network namespace of process ``pid``: (success, what happened)."""
    if pid <= 0:
        return False, "no running process to enter the network namespace of"
    try:
        done = subprocess.run([sys.executable, "-c", _NETNS_REQUEST, str(pid), handler, str(port), path, str(timeout),
                               json.dumps(headers or [])], capture_output=True, text=True,
                              timeout=timeout + 5, check=False)
    except subprocess.TimeoutExpired:
        return False, "%s timed out after %ss" % (handler, timeout)
    return done.returncode == 0, (done.stdout or done.stderr).strip()[:200]


def run_probe(probe: Probe, api: Any, container_id: str, sandbox_pid: int) -> Tuple[bool, str]:
    """(success, what happened) of one probe run."""
    if probe.handler == "exec":
        return _run_exec(probe, api, container_id)
    if sandbox_pid <= 0:
        return False, "the sandbox is not running"
    return netns_request(sandbox_pid, probe.handler, probe.port, probe.path, probe.headers, probe.timeout)


def _run_exec(probe: Probe, api: Any, container_id: str) -> Tuple[bool, str]:
    try:
        exec_id = api.exec_create(container_id, probe.command, stdout=True, stderr=True)["Id"]
        output = api.exec_start(exec_id) or b""
        code = api.exec_inspect(exec_id).get("ExitCode")
    except Exception as exc:  # pylint: disable=broad-except
        return False, "exec failed: %s" % exc
    text = output.decode("utf-8", "replace").strip()[:200] if isinstance(output, bytes) else str(output)[:200]
    return code == 0, "exit %s%s" % (code, (": " + text) if text else "")


class ProbeState:
    """One probe of one running container: when it runs next and what its results add up to."""

    def __init__(self, probe: Probe, started: float) -> None:
        self.probe = probe
        self.next_run = started + probe.initial_delay
        self.successes = 0
        self.failures = 0
        self.ok: Optional[bool] = None      # None: not decided yet
        self.last: Optional[Dict[str, Any]] = None

    def record(self, success: bool, message: str, now: Optional[float] = None) -> Optional[bool]:
        """Count one result; return the probe's new verdict when it changed (True/False), else None."""
        now = time.time() if now is None else now
        self.next_run = now + self.probe.period
        self.last = dict(time=now, probe=self.probe.kind, success=success, message=message)
        if success:
            self.successes, self.failures = self.successes + 1, 0
            if self.ok is not True and self.successes >= self.probe.success_threshold:
                self.ok = True
                return True
        else:
            self.failures, self.successes = self.failures + 1, 0
            if self.ok is not False and self.failures >= self.probe.failure_threshold:
                self.ok = False
                return False
        return None


def wait_started(probe: Probe, api: Any, container_id: str, sandbox_pid: int, timeout: float,
                 clock: Any = time.time, sleep: Any = time.sleep) -> Tuple[bool, str]:
    """Run a startup probe as the kubelet's prober runs it (initialDelaySeconds, then every periodSeconds)
    until it succeeds, fails ``failureThreshold`` times in a row, or ``timeout`` seconds pass: (started,
    what the last run said). The pod module calls it on a native sidecar before it starts the next
    container, as the kubelet starts the next init container (or the main containers) only once a
    restartable init container's startup probe succeeded (kuberuntime computeInitContainerActions)."""
    started = clock()
    state = ProbeState(probe, started)
    message = "not run within %ss" % timeout
    while True:
        now = clock()
        if state.next_run > now:
            if state.next_run - started > timeout:
                return False, message
            sleep(state.next_run - now)
            continue
        success, message = run_probe(probe, api, container_id, sandbox_pid)
        verdict = state.record(success, message, clock())
        if verdict is not None:
            return verdict, message
        if clock() - started > timeout:
            return False, message


def inspect_quiet(api: Any, name: str) -> Optional[Container]:
    """The container, or None for one the engine does not show now (whatever it answers)."""
    try:
        return Container(api.inspect_container(name))
    except DockerError:
        return None


class Prober:
    """The probes of the guard's pods, run as the kubelet's prober manager runs them: each due probe of
    each running container that has probes; a startup probe gates liveness and readiness; a liveness
    (or startup) probe that fails restarts the container, at once the first time, then after the
    crash-loop backoff (``backoff``, the count reset after ``backoff_reset`` seconds without one);
    readiness is kept for pod_facts. ``api_of`` gives the engine's client of the moment (the guard
    reconnects), ``log`` the guard's logger."""

    def __init__(self, api_of: Callable[[], Any], backoff: Callable[[int], float], backoff_reset: float,
                 log: Any) -> None:
        self.api_of = api_of
        self.backoff = backoff
        self.backoff_reset = backoff_reset
        self.log = log

    def probe_pod(self, pod: str, memory: Any, containers: List[Any]) -> bool:
        """Run the due probes of ``pod``'s running ``containers`` (ContainerSpec); True when what the guard
        reports of it changed. ``memory`` is the guard's record of the pod (containers, probes, restarts)."""
        if not any(c.probes for c in containers):
            return False
        api = self.api_of()
        now = time.time()
        changed = False
        for key, held in list(memory.restarts.items()):
            if held.get("start_at") and held["start_at"] <= now:
                held["start_at"] = None
                try:
                    api.start(held["id"])
                    self.log.info("repair pod=%s container=%s action=start reason=crash-loop backoff over trigger=probe",
                                  pod, key)
                except DockerError as exc:
                    self.log.warning("pod=%s container=%s start after backoff failed: %s", pod, key, exc)
        sandbox = inspect_quiet(api, sandbox_name(pod))
        sandbox_pid = sandbox.pid if sandbox is not None else 0
        # Native sidecars are probed as the members are: startup gates the others, liveness restarts the
        # sidecar, readiness counts toward the pod's (Kubernetes' prober treats restartable init containers so).
        for container in containers:
            if not container.probes:
                continue
            seen = inspect_quiet(api, member_name(pod, container.name))
            entry = memory.containers.setdefault(container.name, dict(repairs=0))
            if seen is None or not seen.state.get("Running"):
                if entry.get("ready") is not False:
                    entry["ready"] = False
                    changed = True
                continue
            instance = "%s@%s" % (seen.id, seen.state.get("StartedAt"))
            started = seen.started // 1000000000 or now
            startup = self._probe_state(memory, container.name, instance, container.probes.get("startupProbe"), started)
            if startup is not None and startup.ok is not True:
                kinds = ["startupProbe"]
            else:
                kinds = [k for k in ("livenessProbe", "readinessProbe") if k in container.probes]
            if "readinessProbe" not in container.probes:
                ready = startup is None or startup.ok is True
                if entry.get("ready") != ready:
                    entry["ready"], changed = ready, True
            for kind in kinds:
                probe_state = self._probe_state(memory, container.name, instance, container.probes[kind], started)
                if probe_state.next_run > now:
                    continue
                success, message = run_probe(probe_state.probe, api, seen.id, sandbox_pid)
                verdict = probe_state.record(success, message)
                entry["last_probe"] = probe_state.last
                if not success:
                    self.log.info("probe pod=%s container=%s probe=%s failed (%d/%d): %s", pod, container.name, kind,
                                  probe_state.failures, probe_state.probe.failure_threshold, message)
                if kind == "readinessProbe" and verdict is not None:
                    entry["ready"], entry["ready_id"], changed = verdict, seen.id, True
                    self.log.info("pod=%s container=%s ready=%s", pod, container.name, verdict)
                if kind in ("livenessProbe", "startupProbe") and verdict is False:
                    self.restart_failed(pod, memory, container.name, seen.id, "%s failed: %s" % (kind, message))
                    changed = True
                    break
        return changed

    @staticmethod
    def _probe_state(memory: Any, key: str, instance: str, probe: Any, started: float) -> Optional[ProbeState]:
        if probe is None:
            return None
        slot = (key, instance, probe.kind)
        if slot not in memory.probes:
            for old in [s for s in memory.probes if s[0] == key and s[1] != instance]:
                del memory.probes[old]      # a new instance of the container starts its probes afresh
            memory.probes[slot] = ProbeState(probe, started)
        return memory.probes[slot]

    def restart_failed(self, pod: str, memory: Any, key: str, container_id: str, reason: str) -> None:
        """Restart a container its probe failed, as the kubelet does: at once the first time, then after
        the crash-loop backoff (stopped meanwhile, and the pod's repairs held so none starts it early)."""
        now = time.time()
        held = memory.restarts.setdefault(key, dict(count=0, last=0.0, start_at=None, id=container_id))
        if now - held["last"] > self.backoff_reset:
            held["count"] = 0
        delay = self.backoff(held["count"])
        held.update(count=held["count"] + 1, last=now, id=container_id)
        entry = memory.containers.setdefault(key, dict(repairs=0))
        entry["repairs"] += 1
        entry["ready"] = False
        api = self.api_of()
        try:
            if delay:
                api.stop(container_id, timeout=1)
                held["start_at"] = now + delay
                memory.not_before = max(memory.not_before, now + delay + 1)
                action = "stop, start in %ds (crash-loop backoff)" % delay
            else:
                api.restart(container_id, timeout=1)
                action = "restart"
        except DockerError as exc:
            self.log.warning("pod=%s container=%s restart after a failed probe failed: %s", pod, key, exc)
            return
        entry["last_repair"] = dict(time=now, action=action, reason=reason, trigger="probe")
        self.log.info("repair pod=%s container=%s action=%s reason=%s trigger=probe", pod, key, action, reason)
