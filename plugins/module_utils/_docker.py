# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one home of Docker access, and the translation of a wanted container into Docker's terms.

Two ways to reach the engine stand side by side, as community.docker's ``_common.py`` and
``_common_api.py`` stand on its ``_util.py``:

- ``SdkApi``: the Docker SDK's low-level ``APIClient``, for anything that writes (and any
  ``docker_host`` that is not a local socket);
- ``SocketApi``: the few reads facts need, over one kept-alive connection to a unix socket,
  without the SDK (importing it costs more than the facts themselves).

Both raise ``DockerError`` only, and both answer to the SDK's method names (``containers``,
``inspect_container``, ``info``...). This module imports no third-party library at import time:
the SDK is imported when a client is made, so the constants and the translation below can be
used (and unit-tested) without it.

The translation (``sandbox_create_args``, ``member_create_args``, ``split_image_ref``) is pure.
"""

from __future__ import annotations

import calendar
import http.client
import json
import socket
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple
from urllib.parse import quote, urlencode

from ansible_collections.podkit.docker.plugins.module_utils._cgroups import DEFAULT_PERIOD_US, cpu_quota, kubelet_shares
from ansible_collections.podkit.docker.plugins.module_utils._envsource import RESOURCE_PREFIX, resource_value
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._expand import expand_env, expand_list
from ansible_collections.podkit.docker.plugins.module_utils._labels import LABEL_CLAIM, LABEL_POD, LABEL_PRE_STOP

if TYPE_CHECKING:
    from ansible_collections.podkit.docker.plugins.module_utils._spec import PortMapping

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"

# The options every module that talks to the engine takes (doc fragment podkit.docker.docker).
DOCKER_COMMON_ARGS = dict(
    docker_host=dict(type="str", default=DEFAULT_DOCKER_HOST, aliases=["docker_url"]),
    timeout=dict(type="int", default=60),
)

# Kubernetes restart policies as Docker restart policies.
DOCKER_RESTART = {"Always": "always", "OnFailure": "on-failure", "Never": "no"}
# The sandbox comes back with the daemon unless a user stopped it.
SANDBOX_RESTART = "unless-stopped"
STOP_TIMEOUT = 10
LOG_TAIL = 20


class DockerError(Exception):
    """Any failed call to the engine, whichever client made it. ``status_code`` as HTTP gives it."""

    def __init__(self, msg: str, status_code: Optional[int] = None) -> None:
        super(DockerError, self).__init__(msg)
        self.msg = msg
        self.status_code = status_code

    @property
    def not_found(self) -> bool:
        return self.status_code == 404


def no_daemon(docker_host: str, exc: Exception) -> PodkitError:
    return PodkitError(
        "docker_host: no Docker daemon answers at %s (%s). Start the engine "
        "(systemctl start docker, or dockerd) or point docker_host at its socket." % (docker_host, exc))


# ---------------------------------------------------------------------------
# The SDK path


def sdk_import_error() -> Optional[str]:
    """None when the Docker SDK imports, else the traceback of the failed import."""
    try:
        import docker  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
    except ImportError:
        return traceback.format_exc()
    return None


def require_sdk(module: Any) -> None:
    """Fail the module with Ansible's standard message when the Docker SDK is missing."""
    error = sdk_import_error()
    if error is not None:
        from ansible.module_utils.basic import missing_required_lib  # pylint: disable=import-outside-toplevel
        module.fail_json(msg=missing_required_lib("docker"), exception=error)


class SdkApi:
    """The SDK's APIClient, with every failure (HTTP, connection, timeout) turned into DockerError."""

    transport = "sdk"

    def __init__(self, docker_host: str, timeout: int, api_version: Optional[str] = None) -> None:
        import docker  # pylint: disable=import-outside-toplevel
        self._errors = (docker.errors.DockerException, OSError) + _requests_errors()
        try:
            # version="auto" asks the daemon for its API version: that answer doubles as the ping.
            # ``api_version``: another client of this daemon asked already (one GET /version, not one a client).
            self._api = docker.APIClient(base_url=docker_host, timeout=timeout, version=api_version or "auto")
        except self._errors as exc:
            raise no_daemon(docker_host, exc)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._api, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except self._errors as exc:
                raise DockerError(_explain(exc), getattr(exc, "status_code", None))
        return call


def _requests_errors() -> Tuple[type, ...]:
    # A timed-out read (requests' ReadTimeout) is no DockerException.
    try:
        import requests  # pylint: disable=import-outside-toplevel
    except ImportError:
        return ()
    return (requests.exceptions.RequestException,)


def _explain(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    return explanation.decode("utf-8", "replace") if isinstance(explanation, bytes) else (explanation or str(exc))


# ---------------------------------------------------------------------------
# The socket path


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: int) -> None:
        http.client.HTTPConnection.__init__(self, "localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class SocketApi:
    """The reads facts need from a local daemon's socket, without the Docker SDK."""

    transport = "socket"

    def __init__(self, path: str, timeout: int = 60) -> None:
        self._connection = _UnixConnection(path, timeout)

    def _get(self, url: str) -> bytes:
        for attempt in (1, 2):
            try:
                self._connection.request("GET", url)
                response = self._connection.getresponse()
                body = response.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                self._connection.close()
                # A kept-alive connection the daemon closed meanwhile: a GET may be sent again.
                if attempt == 2 or isinstance(exc, (FileNotFoundError, ConnectionRefusedError, PermissionError,
                                                    socket.timeout)):
                    raise DockerError(str(exc) or exc.__class__.__name__)
        if response.status != 200:
            try:
                message = json.loads(body).get("message")
            except ValueError:
                message = None
            raise DockerError(message or body.decode("utf-8", "replace").strip() or response.reason, response.status)
        return body

    def ping(self) -> bytes:
        return self._get("/_ping")

    def info(self) -> Dict[str, Any]:
        return json.loads(self._get("/info"))

    def containers(self, all: bool = False, filters: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:  # pylint: disable=redefined-builtin
        params = {"all": "1" if all else "0"}
        if filters:
            params["filters"] = json.dumps(dict((key, [value] if isinstance(value, str) else list(value))
                                                for key, value in filters.items()))
        return json.loads(self._get("/containers/json?" + urlencode(params)))

    def inspect_container(self, container: str) -> Dict[str, Any]:
        return json.loads(self._get("/containers/%s/json" % quote(container, safe="")))

    def inspect_image(self, image: str) -> Dict[str, Any]:
        return json.loads(self._get("/images/%s/json" % quote(image, safe="")))

    def inspect_volume(self, volume: str) -> Dict[str, Any]:
        return json.loads(self._get("/volumes/%s" % quote(volume, safe="")))

    def close(self) -> None:
        self._connection.close()


# ---------------------------------------------------------------------------
# Connecting


class DockerClient:
    """A connection to the engine: ``api`` is an SdkApi or a SocketApi."""

    def __init__(self, api: Any) -> None:
        self.api = api

    @property
    def transport(self) -> str:
        return self.api.transport

    def info(self) -> Dict[str, Any]:
        return self.api.info()

    def close(self) -> None:
        self.api.close()


def connect(docker_host: str = DEFAULT_DOCKER_HOST, timeout: int = 60, read_only: bool = False,
            api_version: Optional[str] = None) -> DockerClient:
    """A client for ``docker_host``, checked to answer; PodkitError (not a traceback) when none does.

    ``read_only`` on a ``unix://`` address gives the socket client (facts); anything else the SDK.
    ``api_version``, the daemon's as another client of it found it, spares the SDK client its own
    question (and check): for a caller that has just talked to the daemon.
    """
    if read_only and docker_host.startswith("unix://"):
        api = SocketApi(docker_host[len("unix://"):], timeout)
        try:
            api.ping()
        except DockerError as exc:
            raise no_daemon(docker_host, exc)
        return DockerClient(api)
    return DockerClient(SdkApi(docker_host, timeout, api_version))


class LazyClient(DockerClient):
    """A client that connects (``connect``) when first used, for a caller that decides itself whether it
    needs the engine at all, and what to report when none answers."""

    def __init__(self, docker_host: str = DEFAULT_DOCKER_HOST, timeout: int = 60, read_only: bool = False) -> None:
        # DockerClient's constructor is not called: ``api`` is the property below.
        self._target = (docker_host, timeout, read_only)
        self._api: Any = None

    @property
    def api(self) -> Any:  # type: ignore[override]
        if self._api is None:
            self._api = connect(*self._target).api
        return self._api

    def close(self) -> None:
        if self._api is not None:
            self._api.close()


# ---------------------------------------------------------------------------
# Reads shared by the reconcile cycle


def docker_time(text: Optional[str]) -> int:
    """Docker's RFC 3339 time (UTC, nanoseconds with trailing zeros trimmed) as nanoseconds since the
    epoch; 0 for none, for Docker's zero time (0001-01-01: never started) and for what does not parse."""
    whole, _sep, fraction = (text or "").rstrip("Z").partition(".")
    if not whole or whole.startswith("0001"):
        return 0
    try:
        seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
        return seconds * 1000000000 + int((fraction + "000000000")[:9] or 0)
    except ValueError:
        return 0


@dataclass
class Container:
    """One container as ``docker inspect`` tells it: the one view of inspect data that reconcile, facts,
    export and the guard read through (``attrs`` is the inspect dict itself, for what no property names)."""
    attrs: Dict[str, Any]

    def __post_init__(self) -> None:
        if self.attrs is None:
            self.attrs = {}

    @property
    def id(self) -> str:
        return self.attrs.get("Id") or ""

    @property
    def name(self) -> str:
        return (self.attrs.get("Name") or "").lstrip("/") or self.id[:12]

    @property
    def config(self) -> Dict[str, Any]:
        return self.attrs.get("Config") or {}

    @property
    def host_config(self) -> Dict[str, Any]:
        return self.attrs.get("HostConfig") or {}

    @property
    def labels(self) -> Dict[str, str]:
        return self.config.get("Labels") or {}

    @property
    def mounts(self) -> List[Dict[str, Any]]:
        return self.attrs.get("Mounts") or []

    @property
    def state(self) -> Dict[str, Any]:
        return self.attrs.get("State") or {}

    @property
    def status(self) -> str:
        return self.state.get("Status") or "unknown"

    @property
    def running(self) -> bool:
        """Running and not being restarted by Docker's restart policy (Docker says Running through a restart)."""
        return bool(self.state.get("Running")) and not self.state.get("Restarting")

    @property
    def pid(self) -> int:
        return int(self.state.get("Pid") or 0)

    @property
    def exit_code(self) -> Optional[int]:
        return self.state.get("ExitCode")

    @property
    def started(self) -> int:
        """When it last started, in nanoseconds since the epoch (``docker_time``); 0: never."""
        return docker_time(self.state.get("StartedAt"))

    @property
    def image_id(self) -> Optional[str]:
        return self.attrs.get("Image")


def list_pod_containers(api: Any, pod: Optional[str] = None, include_unmanaged: bool = False) -> List[Dict[str, Any]]:
    """Summaries of the containers labelled for ``pod`` (None: for any pod; ``include_unmanaged``: every
    container of the host, labelled or not), one list call."""
    label = LABEL_POD if pod is None else "%s=%s" % (LABEL_POD, pod)
    try:
        return api.containers(all=True, filters=None if include_unmanaged else {"label": label})
    except DockerError as exc:
        raise PodkitError("docker_host: listing the containers of %s failed: %s"
                          % ("pod %s" % pod if pod else "the host" if include_unmanaged else "the pods", exc))


def inspect_or_none(api: Any, container_id: str) -> Optional[Dict[str, Any]]:
    """Inspect data, or None for a container removed since it was listed."""
    try:
        return api.inspect_container(container_id)
    except DockerError as exc:
        if exc.not_found:
            return None
        raise PodkitError("docker_host: inspecting container %s failed: %s" % (container_id[:12], exc))


def inspect_listed(api: Any, summaries: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Inspect data of each listed container (the list answer lacks HostConfig), in list order; a
    container removed between the two calls is passed over."""
    found = (inspect_or_none(api, summary["Id"]) for summary in summaries)
    return [attrs for attrs in found if attrs is not None]


def image_id(api: Any, ref: str) -> Optional[str]:
    """The ID of image ``ref`` on the host, None when it is not there."""
    try:
        return api.inspect_image(ref)["Id"]
    except DockerError as exc:
        if exc.not_found:
            return None
        raise PodkitError("image %s: inspecting it failed: %s" % (ref, exc))


_AUTH_KEYS = ("username", "password", "serveraddress")
_AUTH_REFUSED = ("no basic auth credentials", "unauthorized", "authentication required", "denied", "401")


def pull_image(api: Any, ref: str, auth: Optional[Dict[str, str]] = None, field: Optional[str] = None) -> str:
    """Pull ``ref`` (with ``auth``, registry credentials from an imagePullSecret) and return its ID;
    PodkitError when that fails, naming ``field`` (the image's) and, when the registry refused the
    pull, the imagePullSecret used or that none was."""
    repository, tag = split_image_ref(ref)
    try:
        if auth:
            api.pull(repository, tag=tag, auth_config=dict((k, auth[k]) for k in _AUTH_KEYS if auth.get(k)))
        else:
            api.pull(repository, tag=tag)
    except DockerError as exc:
        where = "%s: " % field if field else ""
        registry = repository.split("/", 1)[0] if "/" in repository else "docker.io"
        refused = any(word in str(exc).lower() for word in _AUTH_REFUSED)
        if auth:
            source = auth.get("source") or "spec.imagePullSecrets"
            raise PodkitError("%simage %s: pulling it with the credentials of %s for registry %s failed: %s. Check that"
                              " Secret's username and password for %s." % (where, ref, source, registry, exc, registry))
        if refused:
            raise PodkitError("%simage %s: the registry %s refused the pull without credentials (%s). Give them in"
                              " spec.imagePullSecrets: a kubernetes.io/dockerconfigjson Secret for %s given with the Pod."
                              % (where, ref, registry, exc, registry))
        raise PodkitError("%simage %s: pulling it failed: %s. Load the image on the host, or check the "
                          "registry and the reference." % (where, ref, exc))
    found = image_id(api, ref)
    if found is None:
        raise PodkitError("image %s: still not on the host after pulling it." % ref)
    return found


def split_image_ref(ref: str) -> Tuple[str, Optional[str]]:
    """(repository, tag) as the pull API takes them; a digest reference keeps its digest."""
    if "@" in ref:
        return ref, None
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = ref.rsplit(":", 1)
        return repository, tag
    return ref, "latest"


def check_foreign(api: Any, pod: str, names: List[str]) -> None:
    """Fail, before anything is done, when a name the plan creates is held by a container of no pod
    or of another pod: podkit never changes a container it does not manage."""
    if not names:
        return
    try:
        found = api.containers(all=True, filters={"name": ["^/%s$" % n for n in names]})
    except DockerError as exc:
        raise PodkitError("docker_host: listing containers failed: %s" % exc)
    for summary in found:
        cname = (summary.get("Names") or ["?"])[0].lstrip("/")
        if cname not in names:
            continue
        owner = (summary.get("Labels") or {}).get(LABEL_POD)
        whose = "it has no %s label" % LABEL_POD if owner is None else "it belongs to pod %r" % owner
        raise PodkitError(
            "container %s (%s) already exists and is not part of pod %s: %s. podkit never changes or removes "
            "a container it does not manage; remove or rename that container, or choose another pod name."
            % (cname, summary["Id"][:12], pod, whose))


# ---------------------------------------------------------------------------
# Translation: a wanted container's canonical configuration as Docker's create arguments (pure)


def port_text(port: PortMapping) -> str:
    """``[host_ip:][host_port:]container_port/proto``, the canonical form hashed for the sandbox."""
    host = "%s:" % port.host_ip if port.host_ip else ""
    host += "%d:" % port.host_port if port.host_port else ""
    return "%s%d/%s" % (host, port.container_port, port.protocol)


def parse_port_text(text: str) -> PortMapping:
    # Imported here: pod_facts, which never parses a port, does not pay for importing _spec.
    from ansible_collections.podkit.docker.plugins.module_utils._spec import PortMapping  # pylint: disable=import-outside-toplevel
    spec, _sep, proto = text.partition("/")
    parts = spec.rsplit(":", 2)
    if len(parts) == 3:
        return PortMapping(container_port=int(parts[2]), host_port=int(parts[1]), host_ip=parts[0], protocol=proto)
    if len(parts) == 2:
        return PortMapping(container_port=int(parts[1]), host_port=int(parts[0]), protocol=proto)
    return PortMapping(container_port=int(parts[0]), protocol=proto)


def sandbox_create_args(image: str, name: str, config: Dict[str, Any],
                        labels: Dict[str, str]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(create_container keyword arguments, create_host_config keyword arguments) of a sandbox."""
    bindings: Dict[str, List[Any]] = {}
    exposed = []
    for text in config["ports"]:
        port = parse_port_text(text)
        key = "%d/%s" % (port.container_port, port.protocol)
        if key not in bindings:
            bindings[key] = []
            exposed.append((port.container_port, port.protocol))
        if port.host_port:
            bindings[key].append((port.host_ip, port.host_port) if port.host_ip else port.host_port)
    host_config = dict(
        ipc_mode="shareable", cgroup_parent=config["cgroup_parent"] or None,
        port_bindings=dict((k, v) for k, v in bindings.items() if v) or None,
        dns=config["dns"] or None, dns_search=config["dns_search"] or None, dns_opt=config["dns_options"] or None,
        extra_hosts=dict(h.rsplit(":", 1) if h.count(":") == 1 else h.split(":", 1)
                         for h in config["extra_hosts"]) or None,
        network_mode=config["network"], restart_policy={"Name": SANDBOX_RESTART})
    create = dict(image=image, name=name, hostname=config["hostname"], ports=exposed or None, labels=labels,
                  detach=True, use_config_proxy=False)
    host = config.get("host") or {}
    if host.get("host_network"):
        # The host's network namespace: its hostname and its ports, nothing to publish.
        host_config.update(network_mode="host", port_bindings=None)
        create.pop("hostname")
        create["ports"] = None
    if host.get("host_pid"):
        host_config["pid_mode"] = "host"
    if host.get("host_ipc"):
        host_config["ipc_mode"] = "host"
    if host.get("sysctls"):
        host_config["sysctls"] = dict(host["sysctls"])
    return create, host_config


def member_create_args(image: str, name: str, config: Dict[str, Any], labels: Dict[str, str],
                       sandbox_id: str, context: Optional[Dict[str, Any]] = None) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(create_container keyword arguments, create_host_config keyword arguments) of a member or
    init container joining the sandbox ``sandbox_id``; CPU as the kubelet sets it. ``context``
    (``runtime_context``) gives the values only the running pod knows (fieldRef, resourceFieldRef)."""
    joined = "container:%s" % sandbox_id
    share = config["share"]
    res = config["resources"]
    host_config: Dict[str, Any] = dict(cgroup_parent=config["cgroup_parent"] or None,
                                       cpu_shares=kubelet_shares(res.get("cpu_request") or res.get("cpu") or 0))
    for ns, key in (("net", "network_mode"), ("ipc", "ipc_mode"), ("pid", "pid_mode")):
        if ns in share:
            host_config[key] = joined
    if res.get("memory"):
        # The kubelet gives no swap beyond the limit.
        host_config["mem_limit"] = res["memory"]
        host_config["memswap_limit"] = res["memory"]
    if res.get("memory_request"):
        host_config["mem_reservation"] = res["memory_request"]
    if res.get("cpu"):
        host_config["cpu_period"] = DEFAULT_PERIOD_US
        host_config["cpu_quota"] = cpu_quota(res["cpu"])
    policy = DOCKER_RESTART[config["restart_policy"]]
    if policy != "no":
        host_config["restart_policy"] = {"Name": policy}
    nocopy = (context or {}).get("nocopy") or ()
    binds = ["%s:%s:%s%s" % (m["source"], m["target"], "ro" if m["read_only"] else "rw",
                             ",nocopy" if m["type"] == "volume" and m["source"] in nocopy else "")
             for m in config["mounts"] if m["type"] != "image"]
    if binds:
        host_config["binds"] = binds
    images = [image_mount(m) for m in config["mounts"] if m["type"] == "image"]
    if images:
        host_config["mounts"] = images
    env = dict(config["env"])
    for var, source in (config.get("env_fields") or {}).items():
        env[var] = runtime_value(source, context or {})
    # $(VAR) references are expanded here, not in the hashed configuration (see _expand).
    env = expand_env(env)
    create = dict(image=image, name=name, entrypoint=expand_list(config["command"], env),
                  command=expand_list(config["args"], env), environment=env or None, working_dir=config["working_dir"], user=config["user"],
                  labels=labels, detach=True, use_config_proxy=False)
    _security_args(config.get("security") or {}, create, host_config, context or {})
    return create, host_config


# The first Engine API (Docker Engine 28.0) whose Mount takes Type "image" (with ImageOptions.Subpath).
IMAGE_MOUNT_API = (1, 48)
IMAGE_MOUNT_ENGINE = "28.0"


def image_mount(mount: Dict[str, Any]) -> Dict[str, Any]:
    """An image volume's mount as the Engine API's HostConfig.Mounts takes it (the SDK's Mount type
    knows no "image" type, so the API's own shape is sent): read-only, as Kubernetes mounts one."""
    result: Dict[str, Any] = {"Type": "image", "Source": mount["source"], "Target": mount["target"], "ReadOnly": True}
    if mount.get("sub_path"):
        result["ImageOptions"] = {"Subpath": mount["sub_path"]}
    return result


def check_image_mounts(version: Dict[str, Any], wanted: List[Tuple[str, List[Dict[str, Any]]]]) -> None:
    """Refuse image volumes on an engine older than Engine 28.0 (API 1.48), naming the containers and
    the versions: ``version`` is the engine's /version answer, ``wanted`` (container field, mounts)."""
    using = ["%s.volumeMounts %s (image %s)" % (where, m["target"], m["source"])
             for where, mounts in wanted for m in mounts if m["type"] == "image"]
    if not using:
        return
    api = str(version.get("ApiVersion") or "0")
    try:
        have = tuple(int(part) for part in api.split(".")[:2])
    except ValueError:
        have = (0, 0)
    if have < IMAGE_MOUNT_API:
        raise PodkitError("%s: an image volume is mounted with Docker's --mount type=image, which Docker Engine %s (API"
                          " %d.%d) and later take; this engine is %s (API %s). Upgrade the engine, or copy the image's"
                          " files into the pod another way (an init container writing an emptyDir)."
                          % ("; ".join(using), IMAGE_MOUNT_ENGINE, IMAGE_MOUNT_API[0], IMAGE_MOUNT_API[1],
                             version.get("Version") or "unknown", api))


def _security_args(security: Dict[str, Any], create: Dict[str, Any], host_config: Dict[str, Any],
                   context: Dict[str, Any]) -> None:
    """A container's ``security`` configuration (_security) as Docker's create arguments."""
    if security.get("user"):
        create["user"] = security["user"]
    elif security.get("group") is not None:
        # runAsGroup alone: the image's user with that group.
        create["user"] = "%s:%d" % ((context.get("image_user") or "0").split(":")[0], security["group"])
    if security.get("groups"):
        host_config["group_add"] = [str(g) for g in security["groups"]]
    for key in ("cap_add", "cap_drop", "security_opt"):
        if security.get(key):
            host_config[key] = list(security[key])
    if security.get("seccomp_localhost"):
        # The profile's JSON, read when the spec was parsed; the configuration holds its digest.
        if not context.get("seccomp_json"):
            raise PodkitError("the Localhost seccomp profile %s was not loaded." % security["seccomp_localhost"]["profile"])
        host_config["security_opt"] = list(host_config.get("security_opt") or []) + ["seccomp=" + context["seccomp_json"]]
    if security.get("privileged"):
        host_config["privileged"] = True
    if security.get("read_only"):
        host_config["read_only"] = True
    if security.get("host_ipc"):
        host_config["ipc_mode"] = "host"
    if security.get("stdin"):
        create["stdin_open"] = True
    if security.get("stdinonce"):
        create["stdin_once"] = True
    if security.get("tty"):
        create["tty"] = True
    if security.get("stop_signal"):
        create["stop_signal"] = security["stop_signal"]
    if security.get("stop_timeout") is not None:
        create["stop_timeout"] = security["stop_timeout"]
    if security.get("pre_stop"):
        create["labels"] = dict(create.get("labels") or {}, **{LABEL_PRE_STOP: json.dumps(security["pre_stop"])})


def claim_create_args(claim: str) -> Dict[str, Any]:
    """create_volume keyword arguments of a persistentVolumeClaim's volume: named after the claim and
    labelled with it, not with a pod, so that removing the pod leaves it."""
    return dict(name=claim, driver="local", labels={LABEL_CLAIM: claim})


def volume_create_args(pod: str, name: str, medium: str, size_limit: Optional[int],
                       fs_group: Optional[int] = None) -> Dict[str, Any]:
    """create_volume keyword arguments of a pod's emptyDir volume (tmpfs for medium Memory; with fsGroup,
    a tmpfs owned by the group, setgid and group-writable, as the kubelet leaves a Memory emptyDir)."""
    opts = None
    if medium == "Memory":
        opts = {"type": "tmpfs", "device": "tmpfs"}
        options = ["size=%d" % size_limit] if size_limit else []
        if fs_group is not None:
            options += ["mode=2777", "gid=%d" % fs_group]
        if options:
            opts["o"] = ",".join(options)
    return dict(name=name, driver="local", driver_opts=opts, labels={LABEL_POD: pod})


def runtime_context(sandbox: Optional[Dict[str, Any]], info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """What only the running pod knows, from its sandbox's inspect data and ``docker info``: the
    values of fieldRef paths and the host's capacity (resourceFieldRef of a limit not set)."""
    attrs = sandbox or {}
    settings = attrs.get("NetworkSettings") or {}
    networks = list((settings.get("Networks") or {}).values())
    pod_ip = settings.get("IPAddress") or (networks[0].get("IPAddress") if networks else "") or ""
    host_ip = settings.get("Gateway") or (networks[0].get("Gateway") if networks else "") or ""
    if (attrs.get("HostConfig") or {}).get("NetworkMode") == "host":
        pod_ip = host_ip = "127.0.0.1"
    sandbox_id = attrs.get("Id") or ""
    # A pod's uid lives as long as its sandbox: a UUID made of the sandbox's ID.
    uid = "%s-%s-%s-%s-%s" % (sandbox_id[0:8], sandbox_id[8:12], sandbox_id[12:16], sandbox_id[16:20],
                              sandbox_id[20:32]) if len(sandbox_id) >= 32 else sandbox_id
    info = info or {}
    return {
        "metadata.uid": uid, "status.podIP": pod_ip, "status.podIPs": pod_ip, "status.hostIP": host_ip,
        "status.hostIPs": host_ip, "spec.nodeName": str(info.get("Name") or ""),
        "capacity": {"cpu": int(info.get("NCPU") or 1) * 1000, "memory": int(info.get("MemTotal") or 0)},
    }


def runtime_value(source: str, context: Dict[str, Any]) -> str:
    if source.startswith(RESOURCE_PREFIX):
        return resource_value(source, context.get("capacity") or {"cpu": 1000, "memory": 0})
    return str(context.get(source) or "")
