"""Pack podkit-guard's code into one zip on the controller: the collection's module_utils and the
ansible files they import, as a module's AnsiballZ payload carries them.

One file to copy instead of some seventy: over ssh each copy costs a round trip even when nothing
changed. The zip is byte-for-byte the same for the same sources (sorted entries, fixed times and
modes), so the copy task stays idempotent. Prints the zip's path; the name holds its digest, and it
is written atomically, so concurrent runs never see half a file.

usage: pack-guard.py <collection module_utils dir> <output dir>
"""

import hashlib
import io
import json
import os
import sys
import tempfile
import zipfile

import ansible
import ansible.module_utils.common.yaml  # noqa: F401  (imported for what it brings into sys.modules)

PREFIX = "ansible_collections/podkit/docker/plugins/module_utils"
STAMP = (1980, 1, 1, 0, 0, 0)


def sources(module_utils):
    root = os.path.dirname(os.path.dirname(ansible.__file__))
    files = {}
    for name, module in sorted(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if (name == "ansible" or name.startswith("ansible.")) and path and path.endswith(".py"):
            files[os.path.relpath(path, root)] = path
    for name in sorted(os.listdir(module_utils)):
        if name.endswith(".py"):
            files["%s/%s" % (PREFIX, name)] = os.path.join(module_utils, name)
    return files


def pack(files):
    # Directory entries make the namespace packages (ansible_collections/...) importable from the zip.
    dirs = set()
    for arc in files:
        parts = arc.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]) + "/")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for arc in sorted(dirs):
            info = zipfile.ZipInfo(arc, STAMP)
            info.external_attr = (0o40755 << 16) | 0x10
            archive.writestr(info, b"")
        for arc in sorted(files):
            info = zipfile.ZipInfo(arc, STAMP)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(files[arc], "rb") as handle:
                archive.writestr(info, handle.read())
    return buffer.getvalue()


def main():
    module_utils, out_dir = sys.argv[1], os.path.expanduser(sys.argv[2])
    data = pack(sources(module_utils))
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "podkit-guard-%s.zip" % hashlib.sha256(data).hexdigest()[:16])
    if not os.path.exists(path):
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".podkit-guard-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    print(json.dumps({"path": path}))


if __name__ == "__main__":
    main()
