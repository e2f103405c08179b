# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ConfigMaps and Secrets given beside a Pod, and what a container takes from them.

A manifest may hold several documents (YAML text with ``---``, a list, or a ``kind: List``): one
Pod and the ConfigMaps and Secrets it uses, as ``podman kube play`` takes them. There is no API
server, so what the Pod refers to must be in the same input; a reference to one that is not is an
error naming it, unless the reference is ``optional``.

Values are bytes (a Secret's ``data`` and a ConfigMap's ``binaryData`` are base64). Secret
values are found by ``secret_texts`` before anything is parsed, so that even a refused run can
mask them. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._pullauth import credential_texts

_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_KINDS = ("Pod", "ConfigMap", "Secret")
_META = ("name", "namespace", "labels", "annotations", "creationTimestamp", "uid", "resourceVersion")


@dataclass
class ConfigData:
    """One ConfigMap or Secret: its keys and their values as bytes."""
    kind: str                                  # "ConfigMap" | "Secret"
    name: str
    data: Dict[str, bytes] = field(default_factory=dict)
    type: str = ""                             # a Secret's type (Opaque, kubernetes.io/dockerconfigjson, ...)

    @property
    def secret(self) -> bool:
        return self.kind == "Secret"

    def text(self, key: str) -> str:
        return self.data[key].decode("utf-8", "replace")


@dataclass
class ConfigSet:
    """The ConfigMaps and Secrets given with a Pod, by name."""
    config_maps: Dict[str, ConfigData] = field(default_factory=dict)
    secrets: Dict[str, ConfigData] = field(default_factory=dict)

    def find(self, kind: str, name: str, optional: bool, where: str) -> Optional[ConfigData]:
        """The ConfigMap or Secret ``name``; None for a missing optional one; else an error naming it."""
        table = self.secrets if kind == "Secret" else self.config_maps
        found = table.get(name)
        if found is None and not optional:
            given = ", ".join(sorted(table)) or "none"
            raise PodkitError("%s: the %s %r is not given; add it to the manifest as another document (kind: %s),"
                              " or mark the reference optional: true (%ss given: %s)."
                              % (where, kind, name, kind, kind, given))
        return found


# Kinds the pods module runs as replicas of a template (_workloads); the pod module deploys one Pod.
WORKLOAD_KINDS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob")


def is_workload_manifest(manifest: Any) -> bool:
    """Whether a manifest (one document or a list of them) holds a workload for _workloads."""
    docs = manifest if isinstance(manifest, list) else [manifest]
    return any(isinstance(d, dict) and d.get("kind") in WORKLOAD_KINDS for d in docs)


def workload_refused(where: str, kind: Any) -> str:
    return ("%s.kind: %s is a workload (its pods are replicas of spec.template); the pod module deploys one Pod. Give"
            " the file to podkit.docker.pods (an entry's manifest or manifest_file), which runs its replicas."
            % (where, kind))


def load_documents(manifest: Any) -> List[Dict[str, Any]]:
    """The documents of ``manifest``: YAML text (one or more documents), a list, a mapping or a
    ``kind: List``. Empty documents are skipped."""
    if isinstance(manifest, str):
        # Imported here: PyYAML costs more to import than pod_facts' whole run (pod_facts reaches this
        # file through _docker), and only manifest text needs it.
        from ansible.module_utils.common.yaml import HAS_YAML, yaml_load_all  # pylint: disable=import-outside-toplevel
        if not HAS_YAML:
            raise PodkitError("manifest: YAML text needs PyYAML on the target host; install python3-yaml or pass the"
                              " manifest as a dict.")
        try:
            docs = list(yaml_load_all(manifest))
        except Exception as exc:  # pylint: disable=broad-except  # any YAML parser error is a user error here
            raise PodkitError("manifest: not valid YAML (%s); fix the text, or pass the manifest as a mapping." % exc)
    elif isinstance(manifest, list):
        docs = list(manifest)
    else:
        docs = [manifest]
    result: List[Dict[str, Any]] = []
    for doc in docs:
        if doc is None:
            continue
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            result.extend(item for item in doc["items"] if item is not None)
        else:
            result.append(doc)
    return result


def describe_document(doc: Any, index: int, count: int) -> str:
    """How a message names one document of a manifest: ``document 2 of 3 (a Service 'web')``."""
    place = "document %d of %d" % (index + 1, count) if count > 1 else "the document"
    if not isinstance(doc, dict):
        return "%s (a %s, not a Kubernetes object)" % (place, type(doc).__name__)
    kind = doc.get("kind")
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    name = metadata.get("name") or metadata.get("generateName")
    return "%s (%s%s)" % (place, "kind %r" % kind if kind else "no kind",
                          ", named %r" % name if isinstance(name, str) and name else ", no metadata.name")


def missing_pod(docs: List[Any]) -> Optional[str]:
    """Why ``docs`` hold no Pod to deploy, naming each document by its place and kind; None when one
    document is a Pod (or a lone document may be one)."""
    pods = [i for i, doc in enumerate(docs) if isinstance(doc, dict) and (
        doc.get("kind") == "Pod" or (len(docs) == 1 and doc.get("kind") not in ("ConfigMap", "Secret")))]
    if len(pods) == 1:
        return None
    if not docs:
        return "the manifest is empty; give a Pod (apiVersion: v1, kind: Pod)"
    found = "; ".join(describe_document(doc, i, len(docs)) for i, doc in enumerate(docs))
    if not pods:
        return ("no document is a Pod (found: %s); give one document with apiVersion: v1, kind: Pod, beside the"
                " ConfigMaps and Secrets it uses" % found)
    return ("%d documents are Pods (found: %s); give one Pod per entry (with the ConfigMaps and Secrets it uses)"
            % (len(pods), found))


def split_documents(docs: List[Any]) -> Tuple[Any, ConfigSet]:
    """(the one Pod, the ConfigMaps and Secrets) of a manifest's documents."""
    pods = []
    configs = ConfigSet()
    for index, doc in enumerate(docs):
        where = "manifest[%d]" % index if len(docs) > 1 else "manifest"
        if not isinstance(doc, dict):
            raise PodkitError("%s: %s; each document must be a Kubernetes object (a mapping with apiVersion and kind)."
                              % (where, describe_document(doc, index, len(docs))))
        kind = doc.get("kind")
        if kind in ("ConfigMap", "Secret"):
            item = _config_data(doc, where)
            table = configs.secrets if kind == "Secret" else configs.config_maps
            if item.name in table:
                raise PodkitError("%s.metadata.name: the %s %r is given twice." % (where, kind, item.name))
            table[item.name] = item
        elif kind in WORKLOAD_KINDS:
            raise PodkitError(workload_refused(where, kind))
        elif kind == "Pod" or len(docs) == 1:
            pods.append(doc)
        else:
            raise PodkitError("%s.kind: %s is not a kind the pod module takes; a manifest holds one Pod (apiVersion:"
                              " v1, kind: Pod) and the ConfigMaps and Secrets it uses: remove it from this manifest."
                              % (where, describe_document(doc, index, len(docs))))
    problem = missing_pod(docs)
    if problem:
        raise PodkitError("manifest: %s." % problem)
    return pods[0], configs


def _decode(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise PodkitError("%s must be base64 text." % where)
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise PodkitError("%s is not valid base64; encode the value (base64 -w0), or give it as stringData." % where)


def _plain(value: Any, where: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise PodkitError("%s must be a string; quote it." % where)
    return str(value).encode("utf-8")


def _config_data(doc: Dict[str, Any], where: str) -> ConfigData:
    kind = doc["kind"]
    allowed = ("apiVersion", "kind", "metadata", "data", "immutable") + (
        ("stringData", "type") if kind == "Secret" else ("binaryData",))
    for key in doc:
        if key not in allowed:
            raise PodkitError("%s.%s is not supported in a %s; remove it (supported: %s)."
                              % (where, key, kind, ", ".join(allowed)))
    if doc.get("apiVersion") != "v1":
        raise PodkitError("%s.apiVersion: %r is not supported; a %s is apiVersion: v1." % (where, doc.get("apiVersion"), kind))
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        raise PodkitError("%s.metadata.name is required: the name the Pod refers to the %s by." % (where, kind))
    for key in metadata:
        if key not in _META:
            raise PodkitError("%s.metadata.%s is not supported in a %s; remove it." % (where, key, kind))
    name = metadata["name"]
    if len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        raise PodkitError("%s.metadata.name: %r is not a valid %s name (a DNS-1123 subdomain)." % (where, name, kind))
    item = ConfigData(kind=kind, name=name, type=str(doc.get("type") or ("Opaque" if kind == "Secret" else "")))
    sections = [("data", _decode if kind == "Secret" else _plain)]
    sections += [("binaryData", _decode)] if kind == "ConfigMap" else [("stringData", _plain)]
    for section, decode in sections:
        values = doc.get(section)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise PodkitError("%s.%s must be a mapping of keys to values." % (where, section))
        for key, value in values.items():
            path = "%s.%s.%s" % (where, section, key)
            if not isinstance(key, str) or not _KEY.match(key) or key in (".", ".."):
                raise PodkitError("%s: %r is not a valid key (letters, digits, '-', '_', '.')." % (path, key))
            if key in item.data and not (kind == "Secret" and section == "stringData"):
                raise PodkitError("%s: the key %r is also in data; give each key once." % (path, key))
            # A Secret's stringData wins over data, as the API server merges them.
            item.data[key] = decode(value, path)
    return item


def secret_texts(manifest: Any) -> List[str]:
    """Every Secret value in a manifest, as written and decoded, found without raising: for masking
    before anything is parsed (bad input included)."""
    found: List[str] = []
    try:
        docs = load_documents(manifest)
    except PodkitError:
        return found
    for doc in docs:
        if not isinstance(doc, dict) or doc.get("kind") != "Secret":
            continue
        for section in ("data", "stringData"):
            values = doc.get(section)
            if not isinstance(values, dict):
                continue
            for value in values.values():
                if value in (None, ""):
                    continue
                found.append(str(value))
                if section == "data" and isinstance(value, str):
                    try:
                        decoded = base64.b64decode("".join(value.split()), validate=True).decode("utf-8")
                    except (binascii.Error, ValueError, UnicodeDecodeError):
                        continue
                    found.extend(_and_lines(decoded))
                    found.extend(credential_texts(decoded))
                else:
                    found.extend(_and_lines(str(value)))
                    found.extend(credential_texts(str(value)))
    return [text for text in found if text.strip()]


def _and_lines(text: str) -> Iterable[str]:
    """A value, and each of its lines when it has several (a log shows them apart)."""
    yield text
    if "\n" in text.strip():
        for line in text.splitlines():
            if len(line.strip()) >= 4:
                yield line
