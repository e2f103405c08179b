# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lifecycle hooks (postStart, preStop): parsed, run and given back, in one room as the kubelet keeps
them (pkg/kubelet/lifecycle/handlers.go).

- ``parse_hook``: a manifest's handler as podkit keeps it in a container's configuration: exec (run in
  the container), sleep (podkit waits), or httpGet and tcpSocket (made by podkit from the host inside the
  pod's network namespace, to its localhost, as podkit-guard makes its probes).
- ``Hooks``: running them against the engine. A postStart hook runs once the container started, and
  its failure fails the run; a preStop hook runs before the stop signal, within the grace period, and
  whatever it gives, the container is then stopped (as the kubelet does).
- ``hook_manifest``: a kept hook as the manifest's handler again, for the export.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._docker import DockerError, engine_call
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError, check_fields
from ansible_collections.podkit.docker.plugins.module_utils._probes import (
    net_handler_manifest, netns_request, parse_net_handler)

HOOK_KINDS = ("exec", "sleep", "httpGet", "tcpSocket")


def parse_hook(handler: Any, where: str, ports: Dict[str, int]) -> Dict[str, Any]:
    """A postStart/preStop handler at ``where`` as podkit keeps it; ``ports`` the container's named ports."""
    handler = check_fields(handler, HOOK_KINDS, where)
    if len(handler) != 1:
        raise PodkitError("%s: give exactly one of exec, sleep, httpGet or tcpSocket." % where)
    if "exec" in handler:
        command = check_fields(handler["exec"], ("command",), where + ".exec").get("command")
        if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
            raise PodkitError("%s.exec.command must be a non-empty list of strings." % where)
        return {"exec": list(command)}
    if "sleep" in handler:
        seconds = check_fields(handler["sleep"], ("seconds",), where + ".sleep").get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
            raise PodkitError("%s.sleep.seconds must be a number of seconds." % where)
        return {"sleep": seconds}
    kind = next(iter(handler))
    body = handler[kind]
    if not isinstance(body, dict):
        raise PodkitError("%s.%s must be a mapping, got %s." % (where, kind, type(body).__name__))
    port, path, headers = parse_net_handler(kind, body, "%s.%s" % (where, kind), ports)
    return {kind: dict(port=port, path=path, headers=[list(h) for h in headers])} if kind == "httpGet" else \
        {kind: dict(port=port)}


class Hooks:
    """Runs the hooks of the containers of one engine (``api``, an SdkApi)."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def post_start(self, key: str, container_id: str, name: str, hook: Dict[str, Any], pid_of: Callable[[], int],
                   timeout: float) -> None:
        """Run container ``key``'s postStart ``hook`` once it started; PodkitError naming the field when it
        fails. ``pid_of`` gives the container's process (asked only for a network hook)."""
        if "sleep" in hook:
            time.sleep(hook["sleep"])
            return
        if "exec" not in hook:
            ok, said = self.net(pid_of(), hook, timeout)
            if not ok:
                kind = next(iter(hook))
                raise PodkitError("container %s: its postStart hook %s to port %s failed (%s); fix "
                                  "lifecycle.postStart.%s, or what the container serves there."
                                  % (key, kind, hook[kind]["port"], said, kind))
            return
        code = self.exec(container_id, name, "postStart", hook["exec"], timeout)
        if code != 0:
            raise PodkitError("container %s: its postStart hook %s (%s); fix lifecycle.postStart.exec.command."
                              % (key, "did not finish within wait_timeout" if code is None
                                 else "failed with exit code %s" % code, " ".join(hook["exec"])))

    def pre_stop(self, container_id: str, name: str, pid: int, hook: Dict[str, Any], grace: float) -> None:
        """Run a running container's preStop ``hook`` within ``grace`` seconds; what it gives is not asked."""
        if "sleep" in hook:
            time.sleep(min(hook["sleep"], grace))
        elif "exec" in hook:
            self.exec(container_id, name, "preStop", hook["exec"], grace)
        else:
            self.net(pid, hook, grace)

    def exec(self, container_id: str, name: str, hook: str, command: List[str], timeout: float) -> Optional[int]:
        """Run a hook's command in the container; its exit code, None when it outlived ``timeout``."""
        exec_id = engine_call("%s hook of %s" % (hook, name), self.api.exec_create, container_id, command)["Id"]
        done = threading.Event()

        def run() -> None:
            try:
                self.api.exec_start(exec_id)
            except DockerError:
                pass
            done.set()
        threading.Thread(target=run, daemon=True).start()
        if not done.wait(timeout):
            return None
        return engine_call("%s hook of %s" % (hook, name), self.api.exec_inspect, exec_id).get("ExitCode")

    @staticmethod
    def net(pid: int, hook: Dict[str, Any], timeout: float) -> Tuple[bool, str]:
        """An httpGet or tcpSocket hook, made from the host inside the network namespace of the
        container's process ``pid`` (the pod's), to its localhost."""
        kind = next(iter(hook))
        body = hook[kind]
        return netns_request(pid, kind, body["port"], body.get("path") or "/",
                             [tuple(h) for h in body.get("headers") or []], timeout)


def hook_manifest(hook: Any) -> Optional[Dict[str, Any]]:
    """A kept hook (``parse_hook``'s form) as a manifest's handler; None for one of no form podkit knows."""
    if isinstance(hook, dict) and "exec" in hook:
        return {"exec": {"command": list(hook["exec"])}}
    if isinstance(hook, dict) and "sleep" in hook:
        return {"sleep": {"seconds": int(hook["sleep"])}}
    if isinstance(hook, dict) and any(isinstance(hook.get(k), dict) for k in ("httpGet", "tcpSocket")):
        kind = "httpGet" if isinstance(hook.get("httpGet"), dict) else "tcpSocket"
        headers = [(str(h[0]), str(h[1])) for h in hook[kind].get("headers") or []
                   if isinstance(h, (list, tuple)) and len(h) == 2]
        return net_handler_manifest(kind, hook[kind].get("port"), hook[kind].get("path") or "/", headers)
    return None
