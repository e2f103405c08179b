# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host lock that serialises runs on one pod: flock on /run/podkit/<pod>.lock."""

from __future__ import annotations

import errno
import fcntl
import os
from contextlib import contextmanager
from typing import Iterator

from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError

LOCK_DIR = "/run/podkit"


class PodLock:
    """A held pod lock. ``keep`` False: the lock file is removed on release (the pod has nothing)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.keep = True

    def keep_while(self, containers: bool, state: str = "absent") -> None:
        """The one rule for the lock file: it outlives the run while the pod has ``containers`` (observed,
        or left after the plan's removals), or when the run leaves the pod in any ``state`` but absent."""
        self.keep = containers or state != "absent"


@contextmanager
def pod_lock(pod: str, lock_dir: str = LOCK_DIR) -> Iterator[PodLock]:
    """Serialise runs on one pod on this host.

    Yields a PodLock: a run that leaves the pod without any container sets ``keep`` to False,
    so neither a removed pod nor a refused first run leaves a lock file behind. A run waiting
    on a file removed meanwhile notices (another inode at the path) and locks the new file.
    """
    try:
        os.makedirs(lock_dir, exist_ok=True)
    except OSError as exc:
        raise PodkitError("cannot create %s for the pod lock: %s; run the module as root (become: true)."
                          % (lock_dir, exc.strerror))
    path = os.path.join(lock_dir, "%s.lock" % pod)
    while True:
        try:
            handle = open(path, "a")
        except OSError as exc:
            raise PodkitError("cannot open the pod lock %s: %s. podkit serialises runs on a pod through it; run "
                              "the module as root (become: true), as it also writes the cgroup filesystem."
                              % (path, exc.strerror))
        fcntl.flock(handle, fcntl.LOCK_EX)
        # The file may have been removed (state absent) while we waited: lock the new one then.
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            same = False
        if same:
            break
        handle.close()
    lock = PodLock(path)
    try:
        yield lock
    finally:
        if not lock.keep:
            try:
                os.unlink(path)
            except OSError:
                pass    # gone already, or not ours to remove (a lock file made for another user)
        handle.close()
