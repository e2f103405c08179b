# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one home of Docker access: clients, errors, the reads and pulls the cycles share, the
``Container`` view of inspect data. What a wanted container becomes in Docker's terms is ``_create``'s;
this module imports nothing of podkit's but ``_errors`` and ``_labels``.

Events (``follow_events``, for podkit-guard) come on a client of their own.

Two ways to reach the engine stand side by side, as community.docker's ``_common.py`` and
``_common_api.py`` stand on its ``_util.py``:

- ``SdkApi``: the Docker SDK's low-level ``APIClient``, for anything that writes (and any
  ``docker_host`` that is not a local socket);
- ``SocketApi``: the few reads facts need, over one kept-alive connection to a unix socket,
  without the SDK (importing it costs more than the facts themselves).

Both raise ``DockerError`` only, and both answer to the SDK's method names (``containers``,
``inspect_container``, ``info``...). This module imports no third-party library at import time:
the SDK is imported when a client is made, so its constants and pure parts can be used (and
unit-tested) without it.
"""

from __future__ import annotations

import calendar
import http.client
import json
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import quote, urlencode

from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._labels import LABEL_POD

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"

# The options every module that talks to the engine takes (doc fragment podkit.docker.docker).
DOCKER_COMMON_ARGS = dict(
    docker_host=dict(type="str", default=DEFAULT_DOCKER_HOST, aliases=["docker_url"]),
    timeout=dict(type="int", default=60),
)

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


def engine_call(what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
    """``func(*args, **kwargs)``, an engine call; its DockerError as a PodkitError saying ``what`` failed."""
    try:
        return func(*args, **kwargs)
    except DockerError as exc:
        raise PodkitError("%s failed: %s" % (what, exc))


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

    def events(self, filters: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
        """The engine's events matching ``filters`` (decoded) as they happen, until the engine ends the
        stream; a failure while it is read is a DockerError too. The stream holds its connection."""
        try:
            yield from self._api.events(decode=True, filters=filters)
        except self._errors as exc:
            raise DockerError(_explain(exc), getattr(exc, "status_code", None))

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


def follow_events(docker_host: str, timeout: int, filters: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    """Docker's events matching ``filters`` as they happen, on a client of their own (a stream holds its
    connection as long as it is read: the caller's client stays free for its calls); ends when the engine
    ends the stream, and closes the client when the reader stops. PodkitError when no engine answers,
    DockerError when the stream breaks."""
    api = SdkApi(docker_host, timeout)
    try:
        yield from api.events(filters)
    finally:
        api.close()


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
    epoch; 0 for none, for Docker's zero time (0001-01-01: never started) and for what does not parse.
    The one timestamp parser: the times podkit writes itself (Job and CronJob status) are read with it too."""
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

    @property
    def restart_count(self) -> int:
        """Docker's own restarts of it (its restart policy), since it was created."""
        return int(self.attrs.get("RestartCount") or 0)

    @property
    def networks(self) -> Dict[str, Dict[str, Any]]:
        """{network name: its endpoint (IPAddress, Gateway, Aliases...)}."""
        return (self.attrs.get("NetworkSettings") or {}).get("Networks") or {}


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
