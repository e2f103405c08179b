# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A wanted container's canonical configuration as Docker's create arguments (pure).

``sandbox_create_args`` and ``member_create_args`` give the keyword arguments of the SDK's
``create_container`` and ``create_host_config``; CPU and memory as the kubelet sets them
(``_cgroups``), environment references expanded (``_expand``), the values only the running pod
knows from ``runtime_context``. The engine layer (``_docker``) knows none of this: it sits below.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._cgroups import DEFAULT_PERIOD_US, cpu_quota, kubelet_shares
from ansible_collections.podkit.docker.plugins.module_utils._docker import Container
from ansible_collections.podkit.docker.plugins.module_utils._envsource import RESOURCE_PREFIX, resource_value
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._expand import expand_env, expand_list
from ansible_collections.podkit.docker.plugins.module_utils._labels import LABEL_CLAIM, LABEL_POD, LABEL_PRE_STOP
from ansible_collections.podkit.docker.plugins.module_utils._restart import DOCKER_RESTART

if TYPE_CHECKING:
    from ansible_collections.podkit.docker.plugins.module_utils._spec import PortMapping

# The sandbox comes back with the daemon unless a user stopped it.
SANDBOX_RESTART = "unless-stopped"


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
    seen = Container(sandbox)
    settings = seen.attrs.get("NetworkSettings") or {}
    networks = list(seen.networks.values())
    pod_ip = settings.get("IPAddress") or (networks[0].get("IPAddress") if networks else "") or ""
    host_ip = settings.get("Gateway") or (networks[0].get("Gateway") if networks else "") or ""
    if seen.host_config.get("NetworkMode") == "host":
        pod_ip = host_ip = "127.0.0.1"
    sandbox_id = seen.id
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
