# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where podkit's time goes: profile the pods, pod and pod_facts modules, and what Ansible
itself costs around them, into benchmarks/results/profile.md (run by run.py after the
timings; `python benchmarks/run.py --profile-only` runs it alone).

The part of profile.md below the KEEP marker is written by hand and kept as it is.
"""

from __future__ import absolute_import, division, print_function

import json
import re
import statistics
import subprocess
import sys
import time

import payload as bench_payload
import run as bench_run

KEEP = "<!-- Written by hand below this line; profile_podkit.py keeps it. -->"
REPEAT = 3


def pod_args(name):
    return dict(
        name=name, sandbox_image=bench_run.PAUSE_IMAGE, pull="never",
        containers=[dict(name=m, image=bench_run.BUSYBOX_IMAGE, command=["sleep", "infinity"],
                         resources=dict(limits=dict(memory="64Mi"))) for m in bench_run.MEMBERS])


def pods_args(names, parallel=None):
    """The pods module's arguments for ``names``, as the benchmark's playbook gives them."""
    args = dict(sandbox_image=bench_run.PAUSE_IMAGE, pull="never",
                pods=[dict((k, v) for k, v in pod_args(name).items() if k not in ("sandbox_image", "pull"))
                      for name in names])
    if parallel is not None:
        args["parallel"] = parallel
    return args


class Profiler:
    def __init__(self, bench):
        self.bench = bench
        self.env = dict(bench.env["podkit"], PYTHONPATH=str(bench_run.COLLECTIONS))
        self.python = str(bench_run.PROJECT_BIN / "python")
        self.dir = bench.work / "profile"
        self.dir.mkdir(exist_ok=True)
        self.count = 0

    def module(self, module, args):
        """Run ``module`` once under modprofile.py; return (its report, its result, wall seconds)."""
        self.count += 1
        report = self.dir / ("%s-%d.json" % (module, self.count))
        payload = json.dumps({"ANSIBLE_MODULE_ARGS": args})
        start = time.perf_counter()
        proc = subprocess.run([self.python, str(bench_run.BENCH / "modprofile.py"), module, str(report)], input=payload,
                              capture_output=True, text=True, env=self.env, cwd=str(self.bench.work), check=False)
        wall = time.perf_counter() - start
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            raise bench_run.BenchError("profiling %s printed no JSON: %s %s" % (module, proc.stdout[-1000:], proc.stderr[-2000:]))
        if result.get("failed"):
            raise bench_run.BenchError("profiling %s failed: %s" % (module, result.get("msg")))
        return json.loads(report.read_text()), result, wall

    def batch(self, module, many):
        """main() of ``module`` once for each args in ``many``, in one process: the report."""
        self.count += 1
        report = self.dir / ("%s-batch-%d.json" % (module, self.count))
        payload = json.dumps([{"ANSIBLE_MODULE_ARGS": args} for args in many])
        start = time.perf_counter()
        proc = subprocess.run([self.python, str(bench_run.BENCH / "modprofile.py"), module, str(report), "--batch"],
                              input=payload, capture_output=True, text=True, env=self.env, cwd=str(self.bench.work), check=False)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise bench_run.BenchError("profiling %s in one process failed: %s %s" % (module, proc.stdout[-1000:], proc.stderr[-2000:]))
        return json.loads(report.read_text()), wall

    def plain(self, module, args):
        """Wall time of the module as a plain process (no profiler), as Ansible would start it."""
        payload = json.dumps({"ANSIBLE_MODULE_ARGS": args})
        start = time.perf_counter()
        subprocess.run([self.python, "-m", "ansible_collections.podkit.docker.plugins.modules." + module], input=payload,
                       capture_output=True, text=True, env=self.env, check=True)
        return time.perf_counter() - start

    def timed(self, argv):
        values = []
        for _repeat in range(REPEAT):
            start = time.perf_counter()
            subprocess.run(argv, capture_output=True, text=True, env=self.env, cwd=str(self.bench.work), check=True)
            values.append(time.perf_counter() - start)
        return statistics.median(values)

    def import_times(self, module):
        """(total, [(seconds, package)]): what importing ``module`` costs, from python -X importtime.

        A package's figure is its first import's cumulative time, so it includes what it
        imports in turn (docker's includes requests').
        """
        proc = subprocess.run([self.python, "-X", "importtime", "-c",
                               "import ansible_collections.podkit.docker.plugins.modules." + module],
                              capture_output=True, text=True, env=self.env, check=True)
        total, packages = 0.0, {}
        for line in proc.stderr.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
            if not match:
                continue
            seconds, name = int(match.group(2)) / 1e6, match.group(4)
            if name.endswith("plugins.modules." + module):
                total = seconds
            root = name.split(".")[0] if not name.startswith("ansible_collections.") else name.rsplit(".", 1)[-1]
            if name.startswith("ansible.module_utils."):
                root = "ansible.module_utils." + name.split(".")[2]
            # importtime prints children before parents: the outermost (last) entry of a root wins.
            if seconds >= packages.get(root, 0.0):
                packages[root] = seconds
        packages.pop(module, None)
        return total, sorted(((s, n) for n, s in packages.items()), reverse=True)

    def ansible_floor(self, n):
        """What Ansible costs with a module that does nothing: ad-hoc ping, and a playbook looping ping N times."""
        bin_ = bench_run.PROJECT_BIN
        playbook = self.dir / "ping.yml"
        playbook.write_text("- name: Ansible alone\n  hosts: localhost\n  gather_facts: false\n  tasks:\n"
                            "    - name: Ping once an item\n      ansible.builtin.ping:\n      loop: %s\n" % list(range(n)))
        common = ["-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=%s" % (bin_ / "python")]
        adhoc = self.timed([str(bin_ / "ansible"), "localhost"] + common + ["-m", "ansible.builtin.ping"])
        loop = self.timed([str(bin_ / "ansible-playbook")] + common + [str(playbook)])
        return adhoc, loop


def api_table(report):
    groups = {}
    for method, path, seconds in report["api"]:
        pattern = re.sub(r"^/v[0-9.]+", "", path)
        if pattern in ("/containers/json", "/images/json", "/volumes", "/networks"):
            pattern += " (list)"
        elif pattern not in ("/containers/create", "/volumes/create"):
            pattern = re.sub(r"^/images/.+/json$", "/images/{name}/json", pattern)
            pattern = re.sub(r"^/(containers|volumes|networks)/[^/]+", r"/\1/{id}", pattern)
        key = "%s %s" % (method, pattern)
        count, total = groups.get(key, (0, 0.0))
        groups[key] = (count + 1, total + seconds)
    lines = ["| Docker API request | calls | seconds |", "|---|---:|---:|"]
    for key, (count, total) in sorted(groups.items(), key=lambda kv: kv[1][1], reverse=True):
        lines.append("| `%s` | %d | %.3f |" % (key, count, total))
    lines.append("| **all** | **%d** | **%.3f** |" % (len(report["api"]), sum(s for _m, _p, s in report["api"])))
    return lines


def report_section(title, report, wall, plain):
    api_total = sum(s for _m, _p, s in report["api"])
    lines = [
        "### %s" % title, "",
        "Process wall time %.2f s under the profiler, %.2f s without it. Of it: imports %.2f s, the module's run %.2f s "
        "(Docker API %.2f s in %d requests, %d commands run, %.2f s slept)." % (
            wall, plain, report["import_seconds"], report["run_seconds"], api_total, len(report["api"]),
            len(report["commands"]), report["slept_seconds"]),
        "",
    ]
    lines += api_table(report)
    if report["commands"]:
        lines += ["", "Commands run: " + "; ".join("`%s`" % c for c in report["commands"][:10])]
    lines += ["", "Imports, by cumulative seconds: " + ", ".join(
        "`%s` %.3f" % (row["where"].split(":", 1)[0], row["cumulative"]) for row in report["import_top"][:8]) + "."]
    lines += ["", "The run's self time by package: " + ", ".join(
        "%s %.3f" % (pkg, sec) for pkg, sec in report["self_by_package"][:8]) + "."]
    lines += ["", "The run's most expensive calls (cumulative):", "", "| function | calls | self s | cumulative s |", "|---|---:|---:|---:|"]
    for row in report["top"][:15]:
        lines.append("| `%s` | %s | %.3f | %.3f |" % (row["where"].replace("|", "/"), row["calls"], row["self"], row["cumulative"]))
    return lines + [""]


def main(bench, out_path, n=10):
    prof = Profiler(bench)
    prefix = "%s-prof" % bench.run_id
    pods = ["%s-%d" % (prefix, i) for i in range(n)]
    lines = ["# Where podkit's time goes", "",
             "Written by `benchmarks/profile_podkit.py` (part of `make bench`), run %s, load %s. The modules run as "
             "Ansible runs them on a host: a process reading ANSIBLE_MODULE_ARGS, under cProfile, with every Docker API "
             "request timed (`benchmarks/modprofile.py`)." % (bench.run_id, bench_run.load()), ""]
    try:
        # The pods module over all N pods: once under the profiler with parallel 1 (cProfile sees
        # only the thread it runs in; Docker API requests are timed in every thread), once plain
        # with the default parallel, as the benchmark's playbook runs it.
        pods_cold, res, pods_cold_wall = prof.module("pods", pods_args(pods, parallel=1))
        pods_noop, res, pods_noop_wall = prof.module("pods", pods_args(pods, parallel=1))
        if res.get("changed"):
            lines.append("**Warning: the second run of pods on unchanged pods reported changed.**\n")
        pods_noop_plain = prof.plain("pods", pods_args(pods))
        bench.cleanup(prefix)
        pods_cold_plain = prof.plain("pods", pods_args(pods))
        bench.cleanup(prefix)
        cold, _res, cold_wall = prof.module("pod", pod_args(pods[0]))
        noop, res, noop_wall = prof.module("pod", pod_args(pods[0]))
        noop_plain = prof.plain("pod", pod_args(pods[0]))
        if res.get("changed"):
            lines.append("**Warning: the second run of pod on an unchanged pod reported changed.**\n")
        batch_cold, batch_cold_wall = prof.batch("pod", [pod_args(pod) for pod in pods[1:]])
        batch_noop, batch_noop_wall = prof.batch("pod", [pod_args(pod) for pod in pods])
        facts, _res, facts_wall = prof.module("pod_facts", dict(name=pods))
        facts_plain = prof.plain("pod_facts", dict(name=pods))
        bench.cleanup(prefix)
        cold_plain = prof.plain("pod", pod_args(pods[0]))
        adhoc, loop = prof.ansible_floor(n)
        imports = prof.import_times("pod")
        payload = bench_payload.measure("pods", REPEAT)
    finally:
        bench.cleanup(prefix)
    lines += ["## Ansible around the module", "",
              "The same host, no podkit: `ansible localhost -m ansible.builtin.ping` takes %.2f s; "
              "a playbook looping `ansible.builtin.ping` over %d items takes %.2f s (median of %d). "
              "That is the floor for any one-call-per-pod loop: %.2f s of start plus %.3f s an item "
              "before a module does any work." % (adhoc, n, loop, REPEAT, adhoc, max(0.0, (loop - adhoc) / n)), "",
              ]
    lines += bench_payload.markdown(payload)
    lines += ["## Importing the pod module", "",
              "`python -X importtime`: importing the module takes %.3f s; the packages costing most "
              "(each figure includes what that package imports):" % imports[0], "",
              "| package | seconds |", "|---|---:|"]
    lines += ["| `%s` | %.3f |" % (name, sec) for sec, name in imports[1][:10]]
    lines += ["", "## All the pods in one module process", "",
              "What a module call per host (rather than per pod) would cost: the pod module's main() run "
              "once for each pod in one process, imports paid once (`modprofile.py --batch`).", "",
              "| | pods | process wall s | imports s | median s a pod | Docker API requests |",
              "|---|---:|---:|---:|---:|---:|"]
    for label, rep, wall in (("cold", batch_cold, batch_cold_wall), ("no-op", batch_noop, batch_noop_wall)):
        per = statistics.median(c[0] for c in rep["calls"])
        changed = sum(1 for c in rep["calls"] if c[1])
        expected = len(rep["calls"]) if label == "cold" else 0
        lines.append("| %s%s | %d | %.2f | %.2f | %.3f | %d |" % (
            label, "" if changed == expected else " (changed: %d of %d!)" % (changed, len(rep["calls"])),
            len(rep["calls"]), wall, rep["import_seconds"], per, len(rep["api"])))
    lines += ["", "So a playbook making one such call for %d pods would take about %.2f s for a no-op "
              "(Ansible's start, %.2f s, plus the process above), against the loop's measured figure in latest.md."
              % (n, adhoc + batch_noop_wall, adhoc)]
    lines += ["", "## The pods module: all %d pods in one call" % n, "",
              "What the benchmark's podkit playbook runs once. Under the profiler the pods go one after the other "
              "(`parallel: 1`); the plain process, as the playbook runs it, converges 4 at a time: cold %.2f s, "
              "no-op %.2f s without the profiler." % (pods_cold_plain, pods_noop_plain), ""]
    lines += report_section("pods, cold over %d pods (parallel 1 under the profiler)" % n, pods_cold, pods_cold_wall,
                            pods_cold_plain)
    lines += report_section("pods, no-op over %d pods (parallel 1 under the profiler)" % n, pods_noop, pods_noop_wall,
                            pods_noop_plain)
    lines += ["## One pod, one module process", ""]
    lines += report_section("pod, cold (creates the cgroup, the sandbox, two members)", cold, cold_wall, cold_plain)
    lines += report_section("pod, no-op (nothing to change)", noop, noop_wall, noop_plain)
    lines += report_section("pod_facts over %d pods" % n, facts, facts_wall, facts_plain)
    old = out_path.read_text() if out_path.exists() else ""
    kept = old.split(KEEP, 1)[1] if KEEP in old else "\n## Findings\n\n(none written yet)\n"
    out_path.write_text("\n".join(lines) + "\n" + KEEP + kept)
    bench_run.log("bench: profile written to %s" % out_path)


if __name__ == "__main__":
    sys.exit("run it through benchmarks/run.py (--profile-only)")
