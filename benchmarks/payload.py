# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a module's AnsiballZ payload costs before the module does any work (issue 27).

Two costs that a module run from its source tree (modprofile.py) does not show:

- on the controller, Ansible builds the payload for every task of every playbook run (its cache
  lives in the run's own temporary directory): it parses each module_utils file it finds to find
  what they import, and zips them;
- on the host, the module is imported from that zip (zipimport), which never writes or reads
  bytecode: every file imported is compiled from source, every run.

Measured here: the payload's files, podkit's share of them, the controller's build time (the same
call a worker makes, interleaved with ansible.builtin.ping's as the floor), and the module's import
from the zip against the same import from the tree (bytecode cached): their difference is what
compiling costs each run. Run by profile_podkit.py; `python benchmarks/payload.py` prints it alone.
"""

from __future__ import absolute_import, division, print_function

import io
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

TOP = pathlib.Path(__file__).resolve().parent.parent
COLLECTIONS = TOP / "build" / "collections"
PYTHON = TOP / ".venv" / "bin" / "python"
PODKIT = "ansible_collections/podkit/"


def build(fqcn):
    """The payload Ansible builds for ``fqcn`` (a fresh cache, as each playbook run has): (seconds, zip bytes)."""
    # pylint: disable=import-outside-toplevel
    from ansible import constants as C
    from ansible.executor import module_common
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import module_loader
    from ansible.template import Templar
    found = module_loader.find_plugin_with_context(fqcn)
    scratch = tempfile.mkdtemp(prefix="podkit-payload-")
    C.DEFAULT_LOCAL_TMP = scratch
    try:
        start = time.perf_counter()
        built = module_common.modify_module(
            module_name=found.resolved_fqcn, module_path=found.plugin_resolved_path, module_args={},
            templar=Templar(loader=DataLoader()), task_vars={"ansible_python_interpreter": str(PYTHON)},
            module_compression=C.DEFAULT_MODULE_COMPRESSION)
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    data = built.b_module_data.decode("utf-8", "replace")
    match = re.search(r"zip_data='([^']*)'", data) or re.search(r'zip_data="([^"]*)"', data)
    if not match:
        raise RuntimeError("no zip_data in the payload of %s (another ansible-core layout?)" % fqcn)
    import base64  # pylint: disable=import-outside-toplevel
    return seconds, base64.b64decode(match.group(1))


def import_seconds(module, path_entry):
    """Seconds `python -X importtime` gives importing ``module`` with ``path_entry`` first on sys.path."""
    code = "import sys; sys.path.insert(0, %r); import %s" % (str(path_entry), module)
    proc = subprocess.run([str(PYTHON), "-X", "importtime", "-c", code], capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    for line in reversed(proc.stderr.splitlines()):
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S+)$", line)
        if match and match.group(2) == module:
            return int(match.group(1)) / 1e6
    raise RuntimeError("importtime printed no line for %s" % module)


def measure(module="pods", repeat=5):
    """The payload of podkit.docker.<module> against ansible.builtin.ping's."""
    # pylint: disable=import-outside-toplevel
    from ansible.plugins.loader import init_plugin_loader
    init_plugin_loader([str(COLLECTIONS)])
    fqcn = "podkit.docker." + module
    build(fqcn), build("ansible.builtin.ping")  # the controller's own imports, paid once
    times = {fqcn: [], "ansible.builtin.ping": []}
    for _round in range(repeat):
        for name in times:
            seconds, blob = build(name)
            times[name].append(seconds)
            if name == fqcn:
                zipped = blob
    archive = zipfile.ZipFile(io.BytesIO(zipped))
    sources = [i for i in archive.infolist() if i.filename.endswith(".py")]
    ours = [i for i in sources if i.filename.startswith(PODKIT)]
    work = pathlib.Path(tempfile.mkdtemp(prefix="podkit-payload-"))
    try:
        (work / "payload.zip").write_bytes(zipped)
        target = "ansible_collections.podkit.docker.plugins.modules." + module
        import_seconds(target, COLLECTIONS)  # the first may write bytecode
        from_tree, from_zip = [], []
        for _round in range(repeat):
            from_tree.append(import_seconds(target, COLLECTIONS))
            from_zip.append(import_seconds(target, work / "payload.zip"))
        from_tree, from_zip = min(from_tree), min(from_zip)
    finally:
        shutil.rmtree(str(work), ignore_errors=True)
    return dict(
        module=fqcn, zip_bytes=len(zipped), files=len(sources), podkit_files=len(ours),
        podkit_source_bytes=sum(i.file_size for i in ours), source_bytes=sum(i.file_size for i in sources),
        build_seconds=min(times[fqcn]), ping_build_seconds=min(times["ansible.builtin.ping"]),
        import_from_zip=from_zip, import_from_tree=from_tree, repeat=repeat)


def markdown(m):
    return [
        "## The AnsiballZ payload (what Ansible builds and the host imports before the module works)", "",
        "`benchmarks/payload.py`, the fastest of %d interleaved runs each (the least the machine's other work added), "
        "beside `ansible.builtin.ping`'s payload:" % m["repeat"], "",
        "| | figure |", "|---|---:|",
        "| files shipped in `%s`'s payload (.py) | %d |" % (m["module"], m["files"]),
        "| of them podkit's own | %d (%d kB of source) |" % (m["podkit_files"], m["podkit_source_bytes"] // 1000),
        "| all sources | %d kB (zip %d kB) |" % (m["source_bytes"] // 1000, m["zip_bytes"] // 1000),
        "| building it on the controller (every task of every playbook run) | %.3f s |" % m["build_seconds"],
        "| building ansible.builtin.ping's (the floor) | %.3f s |" % m["ping_build_seconds"],
        "| importing the module from the zip, as the host does (compiled from source each run) | %.3f s |" % m["import_from_zip"],
        "| importing it from the tree (bytecode cached) | %.3f s |" % m["import_from_tree"],
        "", "So the payload costs %.3f s more than ping's to build, and compiling it on the host %.3f s a run: "
        "both grow with the source the module imports, not with the pods." % (
            m["build_seconds"] - m["ping_build_seconds"], m["import_from_zip"] - m["import_from_tree"]), "",
    ]


if __name__ == "__main__":
    print("\n".join(markdown(measure(*(sys.argv[1:2] or ["pods"])))))
