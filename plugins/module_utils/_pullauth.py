# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""imagePullSecrets: the registry credentials a Pod's pulls use, from Secrets given with it.

A ``kubernetes.io/dockerconfigjson`` Secret (key ``.dockerconfigjson``, the ``~/.docker/config.json``
shape) or a legacy ``kubernetes.io/dockercfg`` one (key ``.dockercfg``) maps registries to
credentials; a pull of an image from one of them is made with those credentials (Docker's
``auth_config``), as the kubelet's image puller does. Pure.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Dict, List, Optional

from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError

DOCKER_HUB = "docker.io"
_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/")


def registry_of(ref: str) -> str:
    """The registry host of an image reference (Docker Hub when the first part names no host)."""
    first, sep, _rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return DOCKER_HUB


def _host(key: str) -> str:
    """A config.json ``auths`` key (``https://host/v1/``, ``host``) as a registry host."""
    if key in _HUB_ALIASES:
        return DOCKER_HUB
    host = key.split("://", 1)[-1].split("/", 1)[0]
    return DOCKER_HUB if host in _HUB_ALIASES else host


def pull_auths(refs: Any, configs: Any, where: str = "spec.imagePullSecrets",
               warnings: Optional[List[str]] = None) -> Dict[str, Dict[str, str]]:
    """{registry host: {username, password, serveraddress}} from the Secrets ``refs`` names. A Secret that is not
    given is named in ``warnings`` and the pulls go on without it, as the kubelet goes on ("Unable to retrieve
    some image pull secrets; attempting to pull the image may not succeed", getPullSecretsForPod in
    pkg/kubelet/kubelet_pods.go): such Secrets are made apart from the files (kubectl create secret
    docker-registry), and an image already on the host needs none. Without ``warnings`` it is an error."""
    if refs is None:
        return {}
    if not isinstance(refs, list):
        raise PodkitError("%s must be a list of {name: <Secret>}." % where)
    result: Dict[str, Dict[str, str]] = {}
    for index, ref in enumerate(refs):
        path = "%s[%d]" % (where, index)
        if not isinstance(ref, dict) or set(ref) != {"name"} or not isinstance(ref["name"], str):
            raise PodkitError("%s must be {name: <Secret>}." % path)
        secret = configs.find("Secret", ref["name"], warnings is not None, path + ".name")
        if secret is None:
            warnings.append("%s.name: the Secret %r is not given; the images are pulled without its credentials"
                            " (an image already on the host needs none)" % (path, ref["name"]))
            continue
        for registry, auth in _auths(secret, path).items():
            # Where the credentials came from, for a failed pull's message (never sent to Docker).
            auth["source"] = "%s (Secret %r)" % (path, secret.name)
            result.setdefault(registry, auth)
    return result


def _auths(secret: Any, path: str) -> Dict[str, Dict[str, str]]:
    if ".dockerconfigjson" in secret.data:
        raw, key = secret.data[".dockerconfigjson"], ".dockerconfigjson"
    elif ".dockercfg" in secret.data:
        raw, key = secret.data[".dockercfg"], ".dockercfg"
    else:
        raise PodkitError("%s.name: the Secret %r has neither .dockerconfigjson nor .dockercfg; an image pull secret"
                          " is of type kubernetes.io/dockerconfigjson." % (path, secret.name))
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise PodkitError("%s.name: the Secret %r's %s is not JSON." % (path, secret.name, key))
    entries = config.get("auths") if key == ".dockerconfigjson" else config
    if not isinstance(entries, dict):
        raise PodkitError("%s.name: the Secret %r's %s has no auths mapping." % (path, secret.name, key))
    result = {}
    for server, entry in entries.items():
        if not isinstance(entry, dict):
            continue
        username, password = entry.get("username"), entry.get("password")
        if entry.get("auth") and not (username and password):
            try:
                username, _sep, password = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                raise PodkitError("%s.name: the Secret %r: auths[%r].auth is not base64 of user:password."
                                  % (path, secret.name, server))
        if username and password:
            result[_host(server)] = dict(username=str(username), password=str(password), serveraddress=server)
    return result


def auth_for(ref: str, auths: Dict[str, Dict[str, str]]) -> Optional[Dict[str, str]]:
    return auths.get(registry_of(ref))


def credential_texts(text: str) -> List[str]:
    """The passwords and ``auth`` values (encoded and decoded) of a dockerconfigjson or dockercfg text,
    for masking: a log may show them apart from the JSON they are in. [] for any other text."""
    try:
        config = json.loads(text)
    except ValueError:
        return []
    entries = config.get("auths", config) if isinstance(config, dict) else None
    found: List[str] = []
    for entry in (entries.values() if isinstance(entries, dict) else []):
        if not isinstance(entry, dict):
            continue
        for key in ("password", "auth", "identitytoken"):
            if isinstance(entry.get(key), str) and entry[key]:
                found.append(entry[key])
        if isinstance(entry.get("auth"), str):
            try:
                pair = base64.b64decode(entry["auth"]).decode("utf-8")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                continue
            found.extend([pair, pair.partition(":")[2]])
    return [item for item in found if item]


def secret_parts(auths: Dict[str, Dict[str, str]]) -> List[str]:
    """The values to mask: every password, and the user:password forms."""
    found = []
    for auth in auths.values():
        found.append(auth["password"])
        pair = "%s:%s" % (auth["username"], auth["password"])
        found.extend([pair, base64.b64encode(pair.encode("utf-8")).decode("ascii")])
    return found
