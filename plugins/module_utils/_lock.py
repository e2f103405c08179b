# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host lock that serialises runs on one pod: flock on /run/podkit/<pod>.lock, its file kept while the pod
has a container."""

from __future__ import annotations

import errno
import fcntl
import os
from contextlib import contextmanager
from typing import Any, Iterator

from ansible_collections.podkit.docker.plugins.module_utils._docker import DockerError, list_pod_containers
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError

LOCK_DIR = "/run/podkit"


class PodLock:
    """A held pod lock (a caller that holds one hands it on, so the run under it does not lock again)."""

    def __init__(self, path: str) -> None:
        self.path = path


def keep_lock_file(api: Any, pod: str) -> bool:
    """The one rule for the lock file, asked of the engine as the lock is released: it outlives the run
    while the pod has any container. So neither a removed pod, nor a refused first run, nor a guard that
    found the pod's record gone leaves a lock file behind. An engine that does not answer: kept."""
    try:
        return bool(list_pod_containers(api, pod))
    except (PodkitError, DockerError):
        return True


@contextmanager
def pod_lock(pod: str, api: Any, lock_dir: str = LOCK_DIR) -> Iterator[PodLock]:
    """Serialise runs on one pod on this host; ``api`` is the engine asked on release whether the
    pod has a container left (``keep_lock_file``).

    A run waiting on a file removed meanwhile notices (another inode at the path) and locks the new file.
    """
    path = os.path.join(lock_dir, "%s.lock" % pod)
    handle = _flock(path, "pod", blocking=True)
    try:
        yield PodLock(path)
    finally:
        if not keep_lock_file(api, pod):
            try:
                os.unlink(path)
            except OSError:
                pass    # gone already, or not ours to remove (a lock file made for another user)
        handle.close()


def job_lock_path(namespace: str, name: str, lock_dir: str = LOCK_DIR) -> str:
    return os.path.join(lock_dir, "jobs", "%s.%s.lock" % (namespace, name))


@contextmanager
def job_lock(namespace: str, name: str, blocking: bool = True, lock_dir: str = LOCK_DIR) -> Iterator[bool]:
    """Serialise the drivers of one Job on this host: a pods module run holds it while it ticks the Job
    (waiting for it), podkit-guard only tries (``blocking=False``: yields False when a run holds it, and
    leaves the Job to that run). The file stays while the Job is recorded; the run that forgets the Job
    (state: absent) removes it while it holds it (a driver waiting on it then locks a new file)."""
    handle = _flock(job_lock_path(namespace, name, lock_dir), "Job", blocking)
    try:
        yield handle is not None
    finally:
        if handle is not None:
            handle.close()


def _flock(path: str, what: str, blocking: bool) -> Any:
    """The open, exclusively locked file at ``path`` (None: held elsewhere and ``blocking`` false). A
    file removed while we waited is noticed (another inode at the path) and the new one locked."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError as exc:
        raise PodkitError("cannot create %s for the %s lock: %s; run the module as root (become: true)."
                          % (os.path.dirname(path), what, exc.strerror))
    while True:
        try:
            handle = open(path, "a")
        except OSError as exc:
            raise PodkitError("cannot open the %s lock %s: %s. podkit serialises runs on a %s through it; run "
                              "the module as root (become: true), as it also writes the cgroup filesystem."
                              % (what, path, exc.strerror, what))
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            same = False
        if same:
            return handle
        handle.close()
