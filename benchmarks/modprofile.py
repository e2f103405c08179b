# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one podkit module as Ansible runs it on a host (a process, ANSIBLE_MODULE_ARGS on
stdin, JSON on stdout), under cProfile, and write where its time went:

    modprofile.py MODULE REPORT.json < args.json
    modprofile.py MODULE REPORT.json --batch < list-of-args.json

--batch runs the module's main() once for each payload in one process (imports paid once),
to show what one module call for all the pods would cost. The report holds the import time, the run time, every Docker API request (method, path,
seconds), every command run, the time slept, and the functions that cost most.
"""

from __future__ import absolute_import, division, print_function

import cProfile
import importlib
import json
import os
import pstats
import sys
import time

TOP_FUNCTIONS = 25


def short_path(filename):
    for marker in ("/site-packages/", "/lib/python3.11/", "/ansible_collections/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def package_of(filename):
    """Group a frame's file into the package it belongs to (where self time is spent)."""
    if filename.startswith("~") or filename.startswith("<"):
        return "built-ins (socket, select, os calls)"
    path = short_path(filename)
    if path.startswith("podkit/docker/"):
        return "podkit " + path.rsplit("/", 1)[-1]
    head = path.split("/", 1)[0]
    if head.endswith(".py"):
        return "stdlib " + head[:-3]
    return head


def digest(profiler):
    """Functions by cumulative time (the import machinery's own frames left out) and self time by package."""
    stats = pstats.Stats(profiler)
    rows = []
    by_package = {}
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # pylint: disable=no-member
        key = package_of(filename)
        by_package[key] = by_package.get(key, 0.0) + tottime
        if filename.startswith("<frozen") or "builtins.exec" in func or filename.endswith("importlib/__init__.py"):
            continue
        rows.append(dict(where="%s:%d(%s)" % (short_path(filename), line, func), calls=ncalls, self=tottime, cumulative=cumtime))
    rows.sort(key=lambda r: r["cumulative"], reverse=True)
    return rows, sorted(by_package.items(), key=lambda kv: kv[1], reverse=True)[:15]


def run_batch(mod, payloads, clock):
    """main() once a payload in this process; [(seconds, changed, failed)]."""
    import contextlib  # pylint: disable=import-outside-toplevel
    import io  # pylint: disable=import-outside-toplevel
    from ansible.module_utils import basic  # pylint: disable=import-outside-toplevel
    calls = []
    for payload in payloads:
        basic._ANSIBLE_ARGS = json.dumps(payload).encode()  # pylint: disable=protected-access
        basic._ANSIBLE_PROFILE = "legacy"  # pylint: disable=protected-access
        out = io.StringIO()
        begin = clock()
        with contextlib.redirect_stdout(out):
            try:
                mod.main()
            except SystemExit:
                pass
        result = json.loads(out.getvalue())
        calls.append((clock() - begin, bool(result.get("changed")), bool(result.get("failed"))))
    return calls


def main(module, report_path, batch=False):
    api = []
    commands = []
    slept = [0.0]
    clock = time.perf_counter

    real_sleep = time.sleep

    def sleep(seconds):
        slept[0] += seconds
        real_sleep(seconds)

    time.sleep = sleep
    import subprocess  # pylint: disable=import-outside-toplevel
    real_init = subprocess.Popen.__init__

    def popen_init(self, args, *rest, **kwargs):
        commands.append(args if isinstance(args, str) else " ".join(str(a) for a in args))
        real_init(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = popen_init

    profiler = cProfile.Profile()
    start = clock()
    profiler.enable()
    mod = importlib.import_module("ansible_collections.podkit.docker.plugins.modules." + module)
    imported = clock()
    profiler.disable()
    # Timed at http.client, under both the Docker SDK (requests, urllib3) and a plain
    # http.client over the socket: from the request line to the response's headers.
    import http.client  # pylint: disable=import-outside-toplevel
    real_putrequest = http.client.HTTPConnection.putrequest
    real_getresponse = http.client.HTTPConnection.getresponse

    def putrequest(self, method, url, *rest, **kwargs):
        self._podkit_profile = (method, url.split("?", 1)[0], clock())  # pylint: disable=protected-access
        return real_putrequest(self, method, url, *rest, **kwargs)

    def getresponse(self, *rest, **kwargs):
        try:
            return real_getresponse(self, *rest, **kwargs)
        finally:
            began = getattr(self, "_podkit_profile", None)
            if began:
                api.append((began[0], began[1], clock() - began[2]))
                self._podkit_profile = None  # pylint: disable=protected-access

    http.client.HTTPConnection.putrequest = putrequest
    http.client.HTTPConnection.getresponse = getresponse
    # AnsibleModule reads an args file named on the command line; ours are on stdin.
    sys.argv = [mod.__file__]
    run_profiler = cProfile.Profile()
    ran = clock()
    run_profiler.enable()
    code = 0
    calls = None
    if batch:
        calls = run_batch(mod, json.load(sys.stdin), clock)
        code = 1 if any(failed for _s, _c, failed in calls) else 0
    else:
        try:
            mod.main()
        except SystemExit as exc:
            code = exc.code or 0
    run_profiler.disable()
    done = clock()

    imports_rows, imports_packages = digest(profiler)
    run_rows, run_packages = digest(run_profiler)
    report = dict(
        module=module, exit_code=code, import_seconds=imported - start, run_seconds=done - ran,
        slept_seconds=slept[0],
        api=api, commands=commands, top=run_rows[:TOP_FUNCTIONS], self_by_package=run_packages,
        import_top=[r for r in imports_rows if r["where"].endswith("(<module>)")][:TOP_FUNCTIONS],
        import_by_package=imports_packages,
        pid=os.getpid(), calls=calls,
    )
    with open(report_path, "w") as handle:
        json.dump(report, handle, indent=1)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], batch="--batch" in sys.argv[3:]))
