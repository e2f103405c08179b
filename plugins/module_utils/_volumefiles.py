# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Volumes made of files: configMap, secret, downwardAPI and projected, materialised on the host.

The kubelet writes such a volume's keys as files in a directory it bind-mounts into the containers.
podkit does the same: ``volume_files`` (pure) computes the files (path -> content, mode) from the
ConfigMaps and Secrets given with the Pod and the pod's metadata; ``FileStore`` writes them under
``/run/podkit/volumes/<pod>/<volume>`` - or, for anything holding a Secret, under
``/run/podkit/secrets/<pod>/<volume>`` on a tmpfs (mounted there when ``/run`` is not one), the
directories root-only. Containers mount them read-only.

The content's digest is part of the configuration of the containers that mount the volume (only
of those), so a changed key recreates exactly its consumers.

A pod's ``securityContext.fsGroup`` owns its volumes as the kubelet's SetVolumeOwnership makes it:
every file and directory gets the group, files the group's read (read-only volumes: these file
volumes, read-only claims) or read-write bits (emptyDir, claims), directories also the group's
search bit and setgid, so that what the containers create inherits the group (``group_mode``,
``apply_fs_group``). hostPath volumes are never changed, as in Kubernetes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._envsource import RESOURCE_PREFIX, resolve_resource, resource_ref
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError

FILE_KINDS = ("configMap", "secret", "downwardAPI", "projected")
RUNTIME = "\0podkit-runtime:"
VOLUMES_ROOT = "/run/podkit/volumes"
SECRETS_ROOT = "/run/podkit/secrets"
DEFAULT_MODE = 0o644

Files = Dict[str, Tuple[bytes, int]]


@dataclass
class FileVolume:
    """A file volume's source as parsed: its kind and the raw (checked) mapping."""
    kind: str
    source: Dict[str, Any] = field(default_factory=dict)
    holds_secret: bool = False


def _mode(value: Any, where: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0o777:
        raise PodkitError("%s: %r is not a file mode; give an integer from 0 to 0777 (YAML 0644 or decimal 420)."
                          % (where, value))
    return value


def _relative(path: Any, where: str) -> str:
    if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/"):
        raise PodkitError("%s: %r must be a relative path without '..'." % (where, path))
    return path


def _keys(data: Dict[str, bytes], items: Any, where: str, optional: bool, mode: int, what: str) -> Files:
    files: Files = {}
    if items is None:
        for key in sorted(data):
            files[key] = (data[key], mode)
        return files
    if not isinstance(items, list):
        raise PodkitError("%s.items must be a list." % where)
    for index, item in enumerate(items):
        path = "%s.items[%d]" % (where, index)
        if not isinstance(item, dict) or set(item) - {"key", "path", "mode"}:
            raise PodkitError("%s: give key, path and optionally mode." % path)
        key = item.get("key")
        if key not in data:
            if optional:
                continue
            raise PodkitError("%s.key: %s has no key %r (keys: %s)." % (path, what, key, ", ".join(sorted(data)) or "none"))
        files[_relative(item.get("path"), path + ".path")] = (data[key], _mode(item.get("mode"), path + ".mode", mode))
    return files


def group_mode(mode: int, directory: bool, read_only: bool) -> int:
    """A file's or directory's mode once fsGroup owns it: the kubelet's masks (read-write 0660 or
    read-only 0440; directories also 0110 and setgid) added to what it had."""
    mask = 0o440 if read_only else 0o660
    if directory:
        mask |= 0o110 | stat.S_ISGID
    return mode | mask


def volume_files(volume: FileVolume, configs: Any, metadata: Dict[str, Any], where: str,
                 fs_group: Optional[int] = None) -> Files:
    """The files of a file volume (pure). ``configs`` is the ConfigSet given with the Pod;
    ``metadata`` holds name, namespace, uid (None: not known before the sandbox), labels, annotations.
    With ``fs_group`` the modes are those the files get once the group owns them (read-only volume)."""
    files = _volume_files(volume, configs, metadata, where)
    if fs_group is not None:
        files = dict((name, (content, group_mode(mode, False, True))) for name, (content, mode) in files.items())
    return files


def whole_sources(volume: FileVolume, configs: Any) -> Dict[str, List[str]]:
    """{"Kind/name": its keys} of the ConfigMaps and Secrets a projected volume takes whole (no items),
    when it takes more than one: their keys all land at the volume's top, and only this says which
    object each file came from (io.podkit.origin, for the export). {} otherwise. Key names only."""
    if volume.kind != "projected":
        return {}
    result: Dict[str, List[str]] = {}
    for item in volume.source.get("sources") or []:
        if not isinstance(item, dict) or len(item) != 1:
            continue
        kind, sub = next(iter(item.items()))
        if kind not in ("configMap", "secret") or not isinstance(sub, dict) or sub.get("items"):
            continue
        object_kind = "Secret" if kind == "secret" else "ConfigMap"
        found = configs.find(object_kind, sub.get("name"), True, "")
        result["%s/%s" % (object_kind, sub.get("name"))] = sorted(found.data) if found is not None else []
    return result if len(result) > 1 else {}


def _volume_files(volume: FileVolume, configs: Any, metadata: Dict[str, Any], where: str) -> Files:
    source = volume.source
    mode = _mode(source.get("defaultMode"), where + ".defaultMode", DEFAULT_MODE)
    if volume.kind == "projected":
        files: Files = {}
        for index, item in enumerate(source.get("sources") or []):
            path = "%s.sources[%d]" % (where, index)
            if not isinstance(item, dict) or len(item) != 1:
                raise PodkitError("%s: give exactly one of configMap, secret or downwardAPI." % path)
            kind, sub = next(iter(item.items()))
            if kind not in ("configMap", "secret", "downwardAPI"):
                raise PodkitError("%s.%s is not supported by podkit; use configMap, secret or downwardAPI." % (path, kind))
            sub = dict(sub or {}, defaultMode=mode)
            if kind == "secret" and "name" in sub:
                sub["secretName"] = sub.pop("name")
            found = _volume_files(FileVolume(kind, sub), configs, metadata, "%s.%s" % (path, kind))
            for name in found:
                if name in files:
                    raise PodkitError("%s: the path %r is already projected by an earlier source." % (path, name))
            files.update(found)
        return files
    if volume.kind == "downwardAPI":
        return _downward(source, metadata, where, mode)
    kind = "Secret" if volume.kind == "secret" else "ConfigMap"
    name = source.get("secretName" if volume.kind == "secret" else "name")
    optional = bool(source.get("optional"))
    found = configs.find(kind, name, optional, "%s.%s" % (where, "secretName" if volume.kind == "secret" else "name"))
    if found is None:
        return {}
    return _keys(found.data, source.get("items"), where, optional, mode, "the %s %r" % (kind, name))


def _downward(source: Dict[str, Any], metadata: Dict[str, Any], where: str, mode: int) -> Files:
    files: Files = {}
    for index, item in enumerate(source.get("items") or []):
        path = "%s.items[%d]" % (where, index)
        if not isinstance(item, dict) or set(item) - {"path", "fieldRef", "mode", "resourceFieldRef"} \
                or ("fieldRef" in item) == ("resourceFieldRef" in item):
            raise PodkitError("%s: give path, exactly one of fieldRef or resourceFieldRef, and optionally mode." % path)
        if "resourceFieldRef" in item:
            # As env's resourceFieldRef (one implementation), but containerName is required here.
            marker = resource_ref(item["resourceFieldRef"], path + ".resourceFieldRef", None)
            value = resolve_resource(marker, metadata.get("resources") or {}, path + ".resourceFieldRef")
            if value.startswith(RESOURCE_PREFIX):
                value = runtime_marker(value)
        else:
            ref = item.get("fieldRef") or {}
            field_path = ref.get("fieldPath") if isinstance(ref, dict) else None
            value = _metadata_field(field_path, metadata)
            if value is None:
                raise PodkitError("%s.fieldRef.fieldPath: %r is not supported in a volume; use metadata.name,"
                                  " metadata.namespace, metadata.uid, metadata.labels, metadata.annotations or their"
                                  " ['key']." % (path, field_path))
        files[_relative(item.get("path"), path + ".path")] = (value.encode("utf-8"), _mode(item.get("mode"), path + ".mode", mode))
    return files


def runtime_marker(source: str) -> str:
    """A file's content that only the running pod knows (metadata.uid, a limit not set): filled in when the
    volume is written (``fill_runtime``); the digest is taken of the marker, stable from run to run."""
    return RUNTIME + source


def has_runtime(files: Files) -> bool:
    return any(content.startswith(RUNTIME.encode("utf-8")) for content, _mode in files.values())


def fill_runtime(files: Files, value: Callable[[str], str]) -> Files:
    """The files with each runtime marker replaced by ``value(source)`` (_create.runtime_value)."""
    prefix = RUNTIME.encode("utf-8")
    return dict((name, (value(content[len(prefix):].decode("utf-8")).encode("utf-8") if content.startswith(prefix)
                        else content, mode)) for name, (content, mode) in files.items())


def _metadata_field(path: Any, metadata: Dict[str, Any]) -> Optional[str]:
    if path in ("metadata.name", "metadata.namespace"):
        return str(metadata[path.split(".")[1]])
    if path == "metadata.uid":
        # Made of the sandbox's ID (_create.runtime_context), as env's fieldRef has it.
        return runtime_marker(path)
    if path in ("metadata.labels", "metadata.annotations"):
        table = metadata[path.split(".")[1]]
        # As the kubelet writes them: key="value" lines, sorted.
        return "".join('%s="%s"\n' % (k, table[k]) for k in sorted(table))
    for section in ("labels", "annotations"):
        prefix = "metadata.%s['" % section
        if isinstance(path, str) and path.startswith(prefix) and path.endswith("']"):
            return str(metadata[section].get(path[len(prefix):-2], ""))
    return None


def digest(files: Files, group: Optional[int] = None) -> str:
    """What the containers mounting the volume hash: the files' names, modes and contents, and the
    group owning them when fsGroup sets one (only then: other volumes' digests stay as they were)."""
    h = hashlib.sha256()
    if group is not None:
        h.update(("group\0%d\0" % group).encode("utf-8"))
    for name in sorted(files):
        content, mode = files[name]
        h.update(("%s\0%o\0%d\0" % (name, mode, len(content))).encode("utf-8"))
        h.update(content)
    return h.hexdigest()[:16]


def host_dir(pod: str, volume: str, secret: bool) -> str:
    return os.path.join(SECRETS_ROOT if secret else VOLUMES_ROOT, pod, volume)


def observed_digest(path: str) -> Optional[str]:
    """The digest recorded beside the directory when it was last written (followed by the sandbox's ID
    when runtime values were filled in); None when it is not there."""
    if not os.path.isdir(path):
        return None
    try:
        with open(path + ".digest", encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _ensure_tmpfs(root: str) -> None:
    """``root`` on a tmpfs, root-only: Secrets never touch a disk."""
    os.makedirs(root, mode=0o700, exist_ok=True)
    if _fstype(root) == "tmpfs":
        return
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0700,size=64m,nodev,nosuid,noexec", "tmpfs", root],
                       check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PodkitError("secret volumes: %s is not on a tmpfs and mounting one there failed (%s); podkit keeps Secrets"
                          " off disks. Mount a tmpfs at %s (or on /run) and run again."
                          % (root, getattr(exc, "stderr", None) or exc, root))


def _fstype(path: str) -> str:
    best, fstype = "", ""
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            left, _sep, right = line.partition(" - ")
            point = left.split()[4]
            if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                best, fstype = point, right.split()[0]
    return fstype


def write_volume(path: str, files: Files, secret: bool, group: Optional[int] = None, stamp: str = "",
                 wanted_digest: Optional[str] = None) -> None:
    """Write the files into ``path`` as a whole: a new directory, renamed over the old one; with
    ``group`` (fsGroup), owned by that group as a read-only volume is (the files' modes have the
    group's bits already, see ``volume_files``). ``wanted_digest`` (of the files before their runtime
    values were filled in) and ``stamp`` (the sandbox they were filled in for) are recorded beside it."""
    root = SECRETS_ROOT if secret else VOLUMES_ROOT
    if secret:
        _ensure_tmpfs(root)
    os.makedirs(root, mode=0o700, exist_ok=True)
    os.chmod(root, 0o700)
    parent = os.path.dirname(path)
    os.makedirs(parent, mode=0o700, exist_ok=True)
    fresh = path + ".new"
    shutil.rmtree(fresh, ignore_errors=True)
    os.makedirs(fresh, mode=0o755)
    for name, (content, mode) in files.items():
        target = os.path.join(fresh, name)
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(content)
        os.chmod(target, mode)
    if group is not None:
        apply_fs_group(fresh, group, read_only=True)
    shutil.rmtree(path, ignore_errors=True)
    os.rename(fresh, path)
    with open(path + ".digest", "w", encoding="utf-8") as handle:
        handle.write((wanted_digest or digest(files, group)) + (" " + stamp if stamp else ""))


def apply_fs_group(root: str, group: int, read_only: bool) -> None:
    """The kubelet's SetVolumeOwnership: ``root`` and everything under it owned by ``group`` with
    ``group_mode``'s bits. Containers may change the volume meanwhile, so nothing is followed: the walk
    goes by directory descriptors, files and directories are changed through descriptors opened without
    following a link (and checked to be what was listed), symbolic links and special files get the group
    only (fchownat without following)."""
    def own(fd: int) -> None:
        info = os.fstat(fd)
        os.fchown(fd, -1, group)
        os.fchmod(fd, group_mode(stat.S_IMODE(info.st_mode), stat.S_ISDIR(info.st_mode), read_only))

    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        own(fd)
    finally:
        os.close(fd)
    for _path, dirs, names, dir_fd in os.fwalk(root, follow_symlinks=False):
        for name in dirs + names:
            try:
                listed = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if not (stat.S_ISREG(listed.st_mode) or stat.S_ISDIR(listed.st_mode)):
                    os.chown(name, -1, group, dir_fd=dir_fd, follow_symlinks=False)
                    continue
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=dir_fd)
            except FileNotFoundError:
                continue        # removed by a container meanwhile
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
                # Replaced by a symbolic link meanwhile: its group only.
                os.chown(name, -1, group, dir_fd=dir_fd, follow_symlinks=False)
                continue
            try:
                opened = os.fstat(fd)
                if (opened.st_dev, opened.st_ino) == (listed.st_dev, listed.st_ino):
                    own(fd)
            finally:
                os.close(fd)


def root_owned(info: Optional[os.stat_result], group: int, read_only: bool) -> bool:
    """Whether a volume's root directory is owned by fsGroup as ``apply_fs_group`` leaves it: what
    fsGroupChangePolicy OnRootMismatch checks before walking the volume."""
    if info is None:
        return False
    mode = stat.S_IMODE(info.st_mode)
    return info.st_gid == group and group_mode(mode, True, read_only) == mode


def remove_pod_files(pod: str) -> List[str]:
    """Remove every file volume of ``pod``; the directories removed."""
    removed = []
    for root in (VOLUMES_ROOT, SECRETS_ROOT):
        path = os.path.join(root, pod)
        if os.path.isdir(path):
            shutil.rmtree(path)
            removed.append(path)
    return removed


def pod_files_exist(pod: str) -> bool:
    return any(os.path.isdir(os.path.join(root, pod)) for root in (VOLUMES_ROOT, SECRETS_ROOT))
