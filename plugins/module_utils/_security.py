# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""securityContext (pod and container), host namespaces, stdin/tty and the stop settings, as Docker does them.

Each Kubernetes field maps to what Docker can do, and what it cannot is an error naming the field:

- runAsUser/runAsGroup -> the container's user ``uid[:gid]``; supplementalGroups and fsGroup -> extra
  groups; fsGroup (with fsGroupChangePolicy) also owns the pod's volumes (``fs_group``, applied by
  _volumefiles); runAsNonRoot -> checked against the image's user when the container is created;
- capabilities add/drop, privileged, readOnlyRootFilesystem, allowPrivilegeEscalation: false
  (no-new-privileges), seccompProfile (RuntimeDefault, Unconfined, Localhost: a JSON profile under the
  seccomp profile root, read by ``load_seccomp``), appArmorProfile (RuntimeDefault, Unconfined, Localhost;
  and the legacy annotation);
- sysctls on the sandbox, which owns the namespaces they belong to;
- hostNetwork, hostPID, hostIPC: the sandbox (and so its members) in the host's namespaces;
- stdin, tty; terminationGracePeriodSeconds and lifecycle.stopSignal as the stop timeout and signal.

The result is a ``security`` mapping per container and a ``host`` mapping for the sandbox; each key is
present only when the manifest sets it, so the configuration hash of a pod without these fields is
what it always was. Pure.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError, check_fields
from ansible_collections.podkit.docker.plugins.module_utils._lifecycle import parse_hook
from ansible_collections.podkit.docker.plugins.module_utils._probes import named_ports

POD_SECURITY_FIELDS = ("runAsUser", "runAsGroup", "runAsNonRoot", "supplementalGroups", "fsGroup", "sysctls",
                       "seccompProfile", "appArmorProfile", "fsGroupChangePolicy", "supplementalGroupsPolicy")
CONTAINER_SECURITY_FIELDS = ("runAsUser", "runAsGroup", "runAsNonRoot", "capabilities", "privileged",
                             "readOnlyRootFilesystem", "allowPrivilegeEscalation", "seccompProfile",
                             "appArmorProfile", "procMount")
FS_GROUP_POLICIES = ("Always", "OnRootMismatch")
# Where Localhost seccomp profiles are read from, as the kubelet's <root-dir>/seccomp (option seccomp_profile_root).
SECCOMP_ROOT = "/var/lib/podkit/seccomp"
_SECCOMP_LOCALHOST = "seccomp-localhost="
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
_CAPABILITY = re.compile(r"^(CAP_)?[A-Z_]+$")
_SYSCTL = re.compile(r"^[a-z0-9]([-_a-z0-9]*[a-z0-9])?([./][a-z0-9]([-_a-z0-9]*[a-z0-9])?)*$")
_SIGNALS = ("SIGABRT", "SIGALRM", "SIGBUS", "SIGCHLD", "SIGCONT", "SIGFPE", "SIGHUP", "SIGILL", "SIGINT", "SIGIO",
            "SIGKILL", "SIGPIPE", "SIGPROF", "SIGPWR", "SIGQUIT", "SIGSEGV", "SIGSTKFLT", "SIGSTOP", "SIGSYS",
            "SIGTERM", "SIGTRAP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGUSR1", "SIGUSR2", "SIGVTALRM",
            "SIGWINCH", "SIGXCPU", "SIGXFSZ")


def _id(value: Any, path: str) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2 ** 31 - 1:
        raise PodkitError("%s: %r must be a numeric ID (0 to 2147483647)." % (path, value))
    return value


def _flag(value: Any, path: str) -> Optional[bool]:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise PodkitError("%s must be true or false." % path)
    return value


def _profile(value: Any, path: str, kind: str) -> Optional[str]:
    """A seccompProfile/appArmorProfile as Docker's security option, None for the runtime's default."""
    profile = check_fields(value, ("type", "localhostProfile"), path)
    if not profile:
        return None
    ptype = profile.get("type")
    if ptype == "RuntimeDefault":
        if profile.get("localhostProfile"):
            raise PodkitError("%s.localhostProfile is only for type: Localhost." % path)
        return None
    if ptype == "Unconfined":
        return "%s=unconfined" % kind
    if ptype == "Localhost":
        name = profile.get("localhostProfile")
        if not isinstance(name, str) or not name:
            raise PodkitError("%s.localhostProfile is required with type: Localhost." % path)
        if kind == "seccomp":
            if name.startswith("/") or ".." in name.split("/"):
                raise PodkitError("%s.localhostProfile: %r must be a path relative to the seccomp profile root, without"
                                  " '..'." % (path, name))
            # Read when the spec is complete (load_seccomp): Docker takes the profile's JSON, not a name.
            return "%s%s\0%s" % (_SECCOMP_LOCALHOST, name, path + ".localhostProfile")
        return "apparmor=%s" % name
    raise PodkitError("%s.type: %r is not one of RuntimeDefault, Unconfined, Localhost." % (path, ptype))


def pod_security(pod_context: Any, spec: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(the pod-level settings every container inherits, the sandbox's ``host`` settings)."""
    ctx = check_fields(pod_context, POD_SECURITY_FIELDS, "spec.securityContext")
    inherited: Dict[str, Any] = {}
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        value = _id(ctx.get(key), "spec.securityContext.%s" % key)
        if value is not None:
            inherited[key] = value
    if ctx.get("runAsNonRoot") is not None:
        inherited["runAsNonRoot"] = _flag(ctx["runAsNonRoot"], "spec.securityContext.runAsNonRoot")
    groups = ctx.get("supplementalGroups")
    if groups is not None:
        if not isinstance(groups, list):
            raise PodkitError("spec.securityContext.supplementalGroups must be a list of group IDs.")
        inherited["supplementalGroups"] = [_id(g, "spec.securityContext.supplementalGroups[%d]" % i)
                                           for i, g in enumerate(groups)]
    policy = ctx.get("fsGroupChangePolicy")
    if policy is not None:
        if policy not in FS_GROUP_POLICIES:
            raise PodkitError("spec.securityContext.fsGroupChangePolicy: %r is not one of %s."
                              % (policy, ", ".join(FS_GROUP_POLICIES)))
        inherited["fsGroupChangePolicy"] = policy
    if ctx.get("supplementalGroupsPolicy") not in (None, "Merge"):
        raise PodkitError("spec.securityContext.supplementalGroupsPolicy: only Merge (Docker's behaviour) is supported.")
    for key, kind in (("seccompProfile", "seccomp"), ("appArmorProfile", "apparmor")):
        if ctx.get(key) is not None:
            inherited[key] = _profile(ctx[key], "spec.securityContext.%s" % key, kind)
    host: Dict[str, Any] = {}
    sysctls = {}
    for index, item in enumerate(ctx.get("sysctls") or []):
        where = "spec.securityContext.sysctls[%d]" % index
        check_fields(item, ("name", "value"), where)
        name = item.get("name")
        if not isinstance(name, str) or not _SYSCTL.match(name):
            raise PodkitError("%s.name: %r is not a sysctl name." % (where, name))
        if not (name.startswith("net.") or name.startswith("kernel.shm") or name.startswith("kernel.msg")
                or name.startswith("kernel.sem") or name.startswith("fs.mqueue.")):
            raise PodkitError("%s.name: %r is not namespaced (only net.*, kernel.shm*, kernel.msg*, kernel.sem and"
                              " fs.mqueue.* belong to a pod's namespaces); set it on the host instead." % (where, name))
        sysctls[name] = str(item.get("value", ""))
    if sysctls:
        host["sysctls"] = sysctls
    for key, flag in (("hostNetwork", "network"), ("hostPID", "pid"), ("hostIPC", "ipc")):
        if _flag(spec.get(key), "spec.%s" % key):
            host["host_%s" % flag] = True
    if spec.get("hostUsers") is not None and _flag(spec.get("hostUsers"), "spec.hostUsers") is False:
        raise PodkitError("spec.hostUsers: false asks for a user namespace per pod, which Docker cannot give one"
                          " container (only the whole daemon, with userns-remap); remove it.")
    return inherited, host


def container_security(item: Dict[str, Any], path: str, inherited: Dict[str, Any], annotations: Dict[str, str],
                       name: str, grace: Optional[int]) -> Dict[str, Any]:
    """The ``security`` configuration of one container (keys only for what is set)."""
    ctx = check_fields(item.get("securityContext"), CONTAINER_SECURITY_FIELDS, path + ".securityContext")
    where = path + ".securityContext"
    result: Dict[str, Any] = {}
    uid = _id(ctx.get("runAsUser"), where + ".runAsUser")
    uid = inherited.get("runAsUser") if uid is None else uid
    gid = _id(ctx.get("runAsGroup"), where + ".runAsGroup")
    gid = inherited.get("runAsGroup") if gid is None else gid
    if uid is not None:
        result["user"] = str(uid) if gid is None else "%d:%d" % (uid, gid)
    elif gid is not None:
        result["group"] = gid     # with the image's user: resolved when the container is created
    groups = list(inherited.get("supplementalGroups") or [])
    if inherited.get("fsGroup") is not None and inherited["fsGroup"] not in groups:
        groups.append(inherited["fsGroup"])
    if groups:
        result["groups"] = groups
    non_root = _flag(ctx.get("runAsNonRoot"), where + ".runAsNonRoot")
    non_root = inherited.get("runAsNonRoot") if non_root is None else non_root
    if non_root:
        if uid == 0:
            raise PodkitError("%s.runAsNonRoot: true contradicts runAsUser: 0." % where)
        result["non_root"] = True
    caps = check_fields(ctx.get("capabilities"), ("add", "drop"), where + ".capabilities")
    for key in ("add", "drop"):
        values = caps.get(key)
        if values is None:
            continue
        if not isinstance(values, list):
            raise PodkitError("%s.capabilities.%s must be a list of capability names." % (where, key))
        names = []
        for index, cap in enumerate(values):
            if not isinstance(cap, str) or not _CAPABILITY.match(cap.upper()):
                raise PodkitError("%s.capabilities.%s[%d]: %r is not a capability name (e.g. NET_ADMIN)."
                                  % (where, key, index, cap))
            names.append(cap.upper()[4:] if cap.upper().startswith("CAP_") else cap.upper())
        result["cap_%s" % key] = names
    if _flag(ctx.get("privileged"), where + ".privileged"):
        result["privileged"] = True
    if _flag(ctx.get("readOnlyRootFilesystem"), where + ".readOnlyRootFilesystem"):
        result["read_only"] = True
    options: List[str] = []
    if _flag(ctx.get("allowPrivilegeEscalation"), where + ".allowPrivilegeEscalation") is False:
        if result.get("privileged"):
            raise PodkitError("%s.allowPrivilegeEscalation: false contradicts privileged: true." % where)
        options.append("no-new-privileges")
    seccomp = _profile(ctx["seccompProfile"], where + ".seccompProfile", "seccomp") \
        if ctx.get("seccompProfile") is not None else inherited.get("seccompProfile")
    apparmor = _profile(ctx["appArmorProfile"], where + ".appArmorProfile", "apparmor") \
        if ctx.get("appArmorProfile") is not None else None
    legacy = annotations.get(APPARMOR_ANNOTATION + name)
    if apparmor is None and ctx.get("appArmorProfile") is None and legacy is not None:
        apparmor = _legacy_apparmor(legacy, "metadata.annotations.%s%s" % (APPARMOR_ANNOTATION, name))
    if apparmor is None and ctx.get("appArmorProfile") is None and legacy is None:
        apparmor = inherited.get("appArmorProfile")
    if seccomp and seccomp.startswith(_SECCOMP_LOCALHOST):
        name, _sep, field = seccomp[len(_SECCOMP_LOCALHOST):].partition("\0")
        result["seccomp_localhost"] = {"profile": name, "field": field}
        seccomp = None
    options.extend(o for o in (seccomp, apparmor) if o)
    if options:
        result["security_opt"] = options
    if ctx.get("procMount") not in (None, "Default"):
        raise PodkitError("%s.procMount: %r is not supported by Docker; remove it (Default is what Docker does)."
                          % (where, ctx.get("procMount")))
    for key in ("stdin", "tty", "stdinOnce"):
        if _flag(item.get(key), "%s.%s" % (path, key)):
            result[key.lower()] = True
    lifecycle = check_fields(item.get("lifecycle"), ("stopSignal", "postStart", "preStop"), path + ".lifecycle")
    for hook, key in (("postStart", "post_start"), ("preStop", "pre_stop")):
        if lifecycle.get(hook) is not None:
            result[key] = parse_hook(lifecycle[hook], "%s.lifecycle.%s" % (path, hook), named_ports(item))
    signal = lifecycle.get("stopSignal")
    if signal is not None:
        if signal not in _SIGNALS:
            raise PodkitError("%s.lifecycle.stopSignal: %r is not a signal name such as SIGTERM or SIGQUIT." % (path, signal))
        result["stop_signal"] = signal
    if grace is not None:
        result["stop_timeout"] = grace
    return result


def load_seccomp(security: Dict[str, Any], root: str) -> Optional[str]:
    """A Localhost seccomp profile named in ``security`` (container_security's result): its JSON, compact,
    for Docker's ``seccomp=<json>`` option; ``security["seccomp_localhost"]`` becomes the profile's name
    and the digest of its content, so a changed profile recreates the container. None: no such profile."""
    wanted = security.get("seccomp_localhost")
    if not wanted:
        return None
    path = os.path.join(root, wanted["profile"])
    field = wanted["field"]
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise PodkitError("%s: the profile %s cannot be read (%s); put the seccomp profile (Docker's JSON format) there,"
                          " or set seccomp_profile_root to the directory holding it." % (field, path, exc.strerror or exc))
    try:
        profile = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PodkitError("%s: the profile %s is not valid JSON (%s); give a seccomp profile in Docker's JSON format."
                          % (field, path, exc))
    if not isinstance(profile, dict) or not isinstance(profile.get("defaultAction"), str):
        raise PodkitError("%s: the profile %s is not a seccomp profile (a JSON object with defaultAction, as Docker"
                          " takes it)." % (field, path))
    text = json.dumps(profile, sort_keys=True, separators=(",", ":"))
    security["seccomp_localhost"] = {"profile": wanted["profile"],
                                     "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]}
    return text


def _legacy_apparmor(value: str, where: str) -> Optional[str]:
    if value == "runtime/default":
        return None
    if value == "unconfined":
        return "apparmor=unconfined"
    if value.startswith("localhost/") and len(value) > len("localhost/"):
        return "apparmor=%s" % value[len("localhost/"):]
    raise PodkitError("%s: %r is not runtime/default, unconfined or localhost/<profile>." % (where, value))


def grace_period(value: Any) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PodkitError("spec.terminationGracePeriodSeconds: %r must be a number of seconds (0 or more)." % (value,))
    return value


def check_non_root(security: Dict[str, Any], image_user: str, field: str) -> None:
    """runAsNonRoot against the user the container will run as (its own, else the image's)."""
    if not security.get("non_root"):
        return
    user = (security.get("user") or image_user or "0").split(":")[0]
    if not user.isdigit():
        raise PodkitError("%s.securityContext.runAsNonRoot: the image's user %r is not numeric, so it cannot be"
                          " checked to be non-root; set runAsUser." % (field, user))
    if int(user) == 0:
        raise PodkitError("%s.securityContext.runAsNonRoot: the container would run as root (the image's user is"
                          " %r); set runAsUser to a non-zero ID." % (field, image_user or "root"))
