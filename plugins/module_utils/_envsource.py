# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a container's environment comes from besides ``value``: ``valueFrom`` and ``envFrom``.

- ``configMapKeyRef`` / ``secretKeyRef``: a key of a ConfigMap or Secret given with the Pod
  (``_configdata``); a missing one is an error naming it unless ``optional``, and then the
  variable is not set, as the kubelet does. Values from Secrets are marked secret.
- ``fieldRef``: what the manifest knows is resolved here (``metadata.name``, ``namespace``,
  ``labels['k']``, ``annotations['k']``, ``spec.serviceAccountName``); what only the running pod
  knows (``metadata.uid``, ``spec.nodeName``, ``status.podIP``, ``status.hostIP``) is named in
  ``fields`` and filled in when the container is created (``runtime_value``).
- ``resourceFieldRef``: a container's limits and requests (``limits.cpu``, ``requests.memory``, ...)
  with a divisor; a limit that is not set is the host's capacity, as Kubernetes gives the node's
  allocatable, filled in at creation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ansible_collections.podkit.docker.plugins.module_utils._configdata import ConfigSet
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError, check_fields
from ansible_collections.podkit.docker.plugins.module_utils._quantity import parse_cpu, parse_memory

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_MAP_FIELD = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")
# fieldRef paths only the running pod knows: filled in when the container is created.
RUNTIME_FIELDS = ("metadata.uid", "spec.nodeName", "status.podIP", "status.podIPs", "status.hostIP", "status.hostIPs")
_RESOURCES = ("limits.cpu", "limits.memory", "requests.cpu", "requests.memory")
RESOURCE_PREFIX = "resource:"


@dataclass
class PodContext:
    """What a Pod's containers may take their environment from."""
    pod: str
    namespace: str = "default"
    labels: Dict[str, str] = field(default_factory=dict)
    annotations: Dict[str, str] = field(default_factory=dict)
    service_account: str = "default"
    configs: ConfigSet = field(default_factory=ConfigSet)


@dataclass
class EnvSources:
    """A container's environment from its sources: values, which are secret, which are filled in later."""
    env: Dict[str, str] = field(default_factory=dict)
    secret: List[str] = field(default_factory=list)
    fields: Dict[str, str] = field(default_factory=dict)      # name -> runtime field (RUNTIME_FIELDS or resource:)
    # The ConfigMaps and Secrets the environment used (kind/name): what a changed key restarts.
    used: List[str] = field(default_factory=list)
    # name -> [kind, object name, key] of a variable taken from a ConfigMap or Secret (the export's).
    refs: Dict[str, List[str]] = field(default_factory=dict)


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise PodkitError("%s is required (a string)." % path)
    return value


def _optional(value: Any, path: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise PodkitError("%s must be true or false." % path)
    return value


def env_from(items: Any, path: str, ctx: PodContext, out: EnvSources) -> List[str]:
    """``envFrom`` (configMapRef / secretRef with prefix) into ``out``; the keys skipped because they
    are no valid variable name (the kubelet skips them too), for the warnings."""
    skipped = []
    if items is None:
        return skipped
    if not isinstance(items, list):
        raise PodkitError("%s must be a list." % path)
    for index, item in enumerate(items):
        where = "%s[%d]" % (path, index)
        check_fields(item, ("configMapRef", "secretRef", "prefix"), where, required=True)
        kinds = [k for k in ("configMapRef", "secretRef") if k in item]
        if len(kinds) != 1:
            raise PodkitError("%s: give exactly one of configMapRef or secretRef." % where)
        ref = check_fields(item[kinds[0]], ("name", "optional"), "%s.%s" % (where, kinds[0]), required=True)
        kind = "Secret" if kinds[0] == "secretRef" else "ConfigMap"
        name = _name(ref.get("name"), "%s.%s.name" % (where, kinds[0]))
        found = ctx.configs.find(kind, name, _optional(ref.get("optional"), where + ".optional"),
                                 "%s.%s.name" % (where, kinds[0]))
        prefix = item.get("prefix") or ""
        if not isinstance(prefix, str):
            raise PodkitError("%s.prefix must be a string." % where)
        if found is None:
            continue
        _use(out, kind, name)
        for key in sorted(found.data):
            var = prefix + key
            if not _ENV_NAME.match(var):
                skipped.append("%s: key %r of %s %s is not a valid variable name; skipped, as the kubelet does"
                               % (where, key, kind, name))
                continue
            out.env.pop(var, None)
            out.env[var] = found.text(key)
            out.refs[var] = [kind, name, key]
            if kind == "Secret" and var not in out.secret:
                out.secret.append(var)
    return skipped


def _use(out: EnvSources, kind: str, name: str) -> None:
    label = "%s/%s" % (kind, name)
    if label not in out.used:
        out.used.append(label)


def value_from(name: str, source: Any, where: str, ctx: PodContext, container: str, out: EnvSources) -> None:
    """One ``env[].valueFrom`` into ``out`` (nothing for a missing optional key)."""
    source = check_fields(source, ("configMapKeyRef", "secretKeyRef", "fieldRef", "resourceFieldRef"), where, required=True)
    if len(source) != 1:
        raise PodkitError("%s: give exactly one of configMapKeyRef, secretKeyRef, fieldRef or resourceFieldRef."
                          % where)
    kind_key, ref = next(iter(source.items()))
    path = "%s.%s" % (where, kind_key)
    if kind_key in ("configMapKeyRef", "secretKeyRef"):
        ref = check_fields(ref, ("name", "key", "optional"), path, required=True)
        kind = "Secret" if kind_key == "secretKeyRef" else "ConfigMap"
        optional = _optional(ref.get("optional"), path + ".optional")
        source_name = _name(ref.get("name"), path + ".name")
        key = _name(ref.get("key"), path + ".key")
        found = ctx.configs.find(kind, source_name, optional, path + ".name")
        if found is None:
            return
        _use(out, kind, source_name)
        if key not in found.data:
            if optional:
                return
            raise PodkitError("%s.key: the %s %r has no key %r (keys: %s); fix the key or mark it optional: true."
                              % (path, kind, source_name, key, ", ".join(sorted(found.data)) or "none"))
        out.env[name] = found.text(key)
        out.refs[name] = [kind, source_name, key]
        if kind == "Secret" and name not in out.secret:
            out.secret.append(name)
    elif kind_key == "fieldRef":
        ref = check_fields(ref, ("fieldPath", "apiVersion"), path, required=True)
        field_path = _name(ref.get("fieldPath"), path + ".fieldPath")
        value = _field_value(field_path, ctx)
        if value is None:
            if field_path not in RUNTIME_FIELDS:
                raise PodkitError("%s.fieldPath: %r is not supported; use metadata.name, metadata.namespace,"
                                  " metadata.uid, metadata.labels['<key>'], metadata.annotations['<key>'],"
                                  " spec.nodeName, spec.serviceAccountName, status.podIP or status.hostIP."
                                  % (path, field_path))
            out.env[name] = ""
            out.fields[name] = field_path
        else:
            out.env[name] = value
    else:
        out.env[name] = ""
        # Resolved once every container is parsed (``resolve_resource``): containerName may be another.
        out.fields[name] = resource_ref(ref, path, container)


def resource_ref(ref: Any, path: str, container: Optional[str]) -> str:
    """A resourceFieldRef (env or downwardAPI volume item) as a marker ``resource:<container>:<resource>:<divisor>``
    (divisor in millicores or bytes; empty: the default 1), resolved by ``resolve_resource`` once every
    container's resources are known. ``container`` None: containerName is required (a volume's item)."""
    ref = check_fields(ref, ("containerName", "resource", "divisor"), path, required=True)
    resource = _name(ref.get("resource"), path + ".resource")
    if resource not in _RESOURCES:
        raise PodkitError("%s.resource: %r is not supported; use one of %s." % (path, resource, ", ".join(_RESOURCES)))
    if container is None:
        container = _name(ref.get("containerName"), path + ".containerName")
    divisor = ref.get("divisor")
    if divisor is not None:
        kind = resource.split(".")[1]
        amount = parse_cpu(divisor, path + ".divisor", kubernetes=True) if kind == "cpu" else \
            parse_memory(divisor, path + ".divisor", kubernetes=True, minimum=1)
        divisor = str(amount)
    return "%s%s:%s:%s" % (RESOURCE_PREFIX, ref.get("containerName") or container, resource, divisor or "")


def resource_amounts(resources: Any) -> Dict[str, Optional[int]]:
    """A container's Resources (_spec) by resourceFieldRef name: millicores and bytes, None when not set."""
    return {"limits.cpu": resources.cpu_limit, "limits.memory": resources.memory_limit,
            "requests.cpu": resources.cpu_request, "requests.memory": resources.memory_request}


def resolve_resource(marker: str, amounts: Dict[str, Dict[str, Optional[int]]], where: str) -> str:
    """A resourceFieldRef marker's value from ``amounts`` (container -> ``resource_amounts``), as the kubelet
    renders it: the amount divided by the divisor, rounded up; a request not set is 0. A limit not set
    is the host's capacity, known only on the host: then the marker ``resource:-:<resource>:<divisor>``
    that ``resource_value`` fills in when the container is created (or the volume written)."""
    target, resource, divisor = marker[len(RESOURCE_PREFIX):].split(":")
    if target not in amounts:
        raise PodkitError("%s.containerName: no container %r in the pod." % (where, target))
    value = amounts[target].get(resource)
    if value is None and resource.startswith("limits."):
        return "%s-:%s:%s" % (RESOURCE_PREFIX, resource, divisor)
    return _divided(value or 0, resource, divisor)


def _divided(value: int, resource: str, divisor: str) -> str:
    unit = int(divisor) if divisor else (1000 if resource.endswith(".cpu") else 1)
    return str(-(-value // unit))


def _field_value(path: str, ctx: PodContext) -> Optional[str]:
    if path == "metadata.name":
        return ctx.pod
    if path == "metadata.namespace":
        return ctx.namespace
    if path == "spec.serviceAccountName":
        return ctx.service_account
    match = _MAP_FIELD.match(path)
    if match:
        table = ctx.labels if match.group(1) == "labels" else ctx.annotations
        return table.get(match.group(2), "")
    return None


def resource_value(marker: str, capacity: Dict[str, int]) -> str:
    """The value of a limit not set (``resolve_resource``'s runtime marker): the host's capacity
    (millicores, bytes), divided as any other."""
    _container, resource, divisor = marker[len(RESOURCE_PREFIX):].split(":")
    return _divided(int(capacity["memory" if resource.endswith(".memory") else "cpu"]), resource, divisor)
