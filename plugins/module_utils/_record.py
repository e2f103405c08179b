# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired state on the host: each pod's applied spec, recorded for podkit-guard.

A record is the pod module's parameters after option parsing, enough for ``converge_pod`` to
run again: the guard repairs a pod with exactly what the last playbook asked for. Records live
in ``<state dir>/pods/<pod>.json`` (state dir ``/var/lib/podkit``, or ``PODKIT_STATE_DIR``).
They hold the values of secret env variables, as the engine's own container configs do, and
are protected as the engine protects those: the directory is 0700 and each file 0600, owned
by root. Writes are atomic (a temporary file renamed), so the guard never reads half a record.

The record is written under the pod lock once the plan is applied (also when the apply failed
halfway: the guard keeps working towards that spec, with backoff), and the guard reads it under
the same lock, so it never repairs a pod with a spec a playbook is replacing. An identical
record is left as it is. ``state: absent`` deletes it first.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from typing import Any, Dict, Iterator, Optional, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._docker import DEFAULT_DOCKER_HOST
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError

STATE_DIR = "/var/lib/podkit"
STATE_DIR_ENV = "PODKIT_STATE_DIR"
RECORD_VERSION = 1
# The timeout belongs to whoever runs the converge (a playbook or the guard), not to the pod. The
# docker_host is kept: a guard repairs only the pods recorded for the engine it watches.
NOT_RECORDED = ("timeout",)


def state_dir(given: Optional[str] = None) -> str:
    return given or os.environ.get(STATE_DIR_ENV) or STATE_DIR


def records_dir(given: Optional[str] = None) -> str:
    return os.path.join(state_dir(given), "pods")


def record_path(pod: str, given: Optional[str] = None) -> str:
    return os.path.join(records_dir(given), "%s.json" % pod)


def _private_dir(path: str) -> None:
    os.makedirs(path, mode=0o700, exist_ok=True)
    if os.stat(path).st_mode & 0o777 != 0o700:
        os.chmod(path, 0o700)


def write_record(pod: str, params: Dict[str, Any], given: Optional[str] = None) -> str:
    """Record ``params`` as the applied spec of ``pod`` (0600 in a 0700 directory); the path."""
    directory = records_dir(given)
    body = dict(version=RECORD_VERSION, pod=pod,
                params=dict((k, v) for k, v in params.items() if k not in NOT_RECORDED))
    if _read(record_path(pod, given)) == json.loads(json.dumps(body)):
        return record_path(pod, given)      # as recorded: no write, no fsync
    try:
        _private_dir(state_dir(given))
        _private_dir(directory)
        handle, temporary = tempfile.mkstemp(prefix=".%s." % pod, dir=directory)
        try:
            with os.fdopen(handle, "w") as stream:
                json.dump(body, stream, sort_keys=True)
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(temporary, 0o600)
            os.rename(temporary, record_path(pod, given))
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
    except OSError as exc:
        raise PodkitError("cannot record the spec of pod %s in %s: %s; run the module as root (become: true), "
                          "or point %s at a directory it may write." % (pod, directory, exc.strerror, STATE_DIR_ENV))
    return record_path(pod, given)


def delete_record(pod: str, given: Optional[str] = None) -> bool:
    """Forget ``pod``: the guard will never bring it back. True when a record was there."""
    try:
        os.unlink(record_path(pod, given))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise PodkitError("cannot delete the record of pod %s (%s): %s; run the module as root (become: true)."
                          % (pod, record_path(pod, given), exc.strerror))
    return True


def _read(path: str) -> Any:
    try:
        with open(path) as stream:
            return json.load(stream)
    except (OSError, ValueError):
        return None


def read_record(pod: str, given: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """The recorded parameters of ``pod``, or None when it has no (readable, whole) record."""
    body = _read(record_path(pod, given))
    if not isinstance(body, dict) or body.get("pod") != pod or not isinstance(body.get("params"), dict):
        return None
    return body["params"]


def recorded_pods(given: Optional[str] = None) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """(pod, params) for every record, in name order."""
    try:
        names = sorted(os.listdir(records_dir(given)))
    except OSError:
        return
    for name in names:
        if name.startswith(".") or not name.endswith(".json"):
            continue
        pod = name[:-len(".json")]
        params = read_record(pod, given)
        if params is not None:
            yield pod, params


def keep_record(pod: str, params: Dict[str, Any], given: Optional[str] = None) -> None:
    """Record ``params`` after an apply that failed: the apply's error is the one to report, so a
    record that cannot be written either (a user without root, who could not apply anything) is
    passed over in silence."""
    try:
        write_record(pod, params, given)
    except PodkitError:
        pass


def recorded_for(params: Dict[str, Any], docker_host: str) -> bool:
    """Whether a record is of a pod on ``docker_host`` (a record without one: the local engine's)."""
    return _same_host(params.get("docker_host") or DEFAULT_DOCKER_HOST, docker_host)


def _same_host(one: str, other: str) -> bool:
    def norm(url: str) -> str:
        return url.replace("unix:///run/", "unix:///var/run/").rstrip("/")
    return norm(one) == norm(other)
