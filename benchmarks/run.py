# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""podkit against the raw docker CLI and community.docker, side by side (`make bench`).

For N pods of a sandbox plus two members, in one run and interleaved (every tool's
repetition 1, then every tool's repetition 2, ...), this times:

- raw:     the article's recipe as a shell script (cgcreate, docker run sandbox, two
           members joining it), and a re-run that inspects and skips what exists;
- rawpar:  the same commands, four pods at a time (`xargs -P4`; inside a pod the
           members after its sandbox): what the engine itself does on this host;
- podkit:  ansible-playbook with one podkit.docker.pods task for all the pods, its no-op
           re-run, and an ad-hoc `ansible localhost -m podkit.docker.pod_facts` over the pods;
- cdocker: ansible-playbook with community.docker.docker_container plus a cgcreate
           command, from the `ansible` package of PyPI in a separate environment;
- ping:    ansible-playbook with one ansible.builtin.ping task, the same settings as
           podkit's: the floor any module's play shares (Ansible's own start and one task).

Each measurement records the load average before and after it: a ratio or a target
whose figures ran at a load above QUIET_LOAD is marked as not a quiet figure.

Everything made is named with a run-unique prefix and removed between repetitions
(containers by name prefix, cgroup directories in every hierarchy); nothing else on
the host is touched. Results go to benchmarks/results/ (latest.md, latest.png, raw/).
"""

from __future__ import absolute_import, division, print_function

import argparse
import datetime
import hashlib
import json
import os
import pathlib
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

TOP = pathlib.Path(__file__).resolve().parent.parent
BENCH = TOP / "benchmarks"
RESULTS = BENCH / "results"
RAW = RESULTS / "raw"
PROJECT_BIN = TOP / ".venv" / "bin"
COLLECTIONS = TOP / "build" / "collections"
CGROUP_ROOT = pathlib.Path("/sys/fs/cgroup")
LOCK_DIR = pathlib.Path("/run/podkit")
# The comparison's own environment; never the project's .venv.
BENCH_VENV = pathlib.Path(os.environ.get("PODKIT_BENCH_VENV", str(TOP / ".cache" / "bench-venv")))
BENCH_REQUIREMENTS = BENCH / "requirements-bench.txt"

PAUSE_IMAGE = "podkit/pause:latest"
BUSYBOX_IMAGE = "podkit/busybox:latest"
MEMBERS = ("app", "sidecar")
MEMBER_MEMORY = "64m"  # the same limit for every tool: docker's 64m is podkit's 64Mi

TOOLS = ("raw", "rawpar", "podkit", "cdocker", "ping")
TOOL_LABELS = {"raw": "raw docker CLI", "rawpar": "raw CLI, 4 at a time", "podkit": "podkit",
               "cdocker": "community.docker", "ping": "ping play (floor)"}
# The ping play has one phase, shown in the no-op row: what any one-task play costs.
PHASES = {"raw": ("cold", "noop"), "rawpar": ("cold", "noop"), "podkit": ("cold", "noop", "facts"),
          "cdocker": ("cold", "noop"), "ping": ("noop",)}
# Pods at once in the parallel CLI recipe, and podkit.docker.pods' own default.
RAW_PARALLEL = 4
PHASE_LABELS = {"cold": "cold converge", "noop": "no-op re-run", "facts": "pod_facts (ad-hoc)"}

DEFAULT_N = (1, 10)
FULL_N = (1, 10, 50, 100)
# From this N on, a run makes at most --large-reps repetitions (N=100 takes minutes a tool).
LARGE_N = 50

# Targets of issue 27 (the facts target: issue 18), checked against the medians (reported, never asserted).
TARGET_COLD_VS_RAW = 0.8
TARGET_COLD_VS_RAWPAR = 1.2
TARGET_NOOP_VS_CDOCKER = 0.05
TARGET_NOOP_OVER_PING = 0.3  # seconds: podkit's no-op at most the ping play's plus this
TARGET_FACTS_SECONDS = 1.5
TARGET_FLAT = 1.2  # per-container cost at the largest N at most this times the cost at N=10
# A measurement that began or ended with the 1-minute load average above this is no quiet figure:
# the same run moved 2x with load on this 2-core machine (issue 27).
QUIET_LOAD = 1.5
# Before each measurement the run waits, at most this long, for the 1-minute load average to fall to QUIET_LOAD:
# the work of the measurement before it (300 containers started at N=100 lift it to 15-20) must not count as
# another's. A measurement is quiet when the load before it was; the load after it is recorded too, but it holds
# the measurement's own work (a CPU-bound ansible-playbook on 2 cores lifts it by itself).
SETTLE_SECONDS = 240

# One task, one module call for the host (as the pods role makes it); bench_entries are the
# pods (a name and the two members below each), written beside bench_pods by measure().
PING_PLAYBOOK = """\
- name: The floor of any one-task play
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""

PODKIT_PLAYBOOK = """\
- name: Converge the benchmark's pods with podkit
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Converge every pod (a sandbox and two members each) in one call
      podkit.docker.pods:
        sandbox_image: %(pause)s
        pull: never
        pods: "{{ bench_entries }}"
"""


def podkit_entries(pods):
    """The pods module's entries: every pod a sandbox and the two members, 64Mi each."""
    return [dict(name=pod, containers=[dict(name=m, image=BUSYBOX_IMAGE, command=["sleep", "infinity"],
                                            resources=dict(limits=dict(memory="64Mi"))) for m in MEMBERS])
            for pod in pods]


# As a user writes it today: a cgroup per pod by command, then the containers.
CDOCKER_PLAYBOOK = """\
- name: Converge the benchmark's pods with community.docker
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Create each pod's cgroup parent
      ansible.builtin.command:
        cmd: "cgcreate -g cpu,memory:/{{ item }}"
        creates: "/sys/fs/cgroup/memory/{{ item }}"
      loop: "{{ bench_pods }}"

    - name: Start each pod's sandbox
      community.docker.docker_container:
        name: "{{ item }}_sandbox"
        image: %(pause)s
        pull: never
        cgroup_parent: "/{{ item }}"
        ipc_mode: shareable
        state: started
      loop: "{{ bench_pods }}"

    - name: Start each pod's members in the sandbox's namespaces
      community.docker.docker_container:
        name: "{{ item.0 }}_{{ item.1 }}"
        image: %(busybox)s
        pull: never
        command: [sleep, infinity]
        cgroup_parent: "/{{ item.0 }}"
        network_mode: "container:{{ item.0 }}_sandbox"
        ipc_mode: "container:{{ item.0 }}_sandbox"
        memory: %(memory)s
        state: started
      loop: "{{ bench_pods | product(%(members)s) | list }}"
"""


def log(msg):
    print(msg, flush=True)


def run(argv, **kwargs):
    kwargs.setdefault("check", True)
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run(argv, **kwargs)  # pylint: disable=subprocess-run-check


# ---------------------------------------------------------------- environments

def ensure_bench_venv():
    """The separate environment with PyPI's `ansible` (community.docker inside) and matplotlib."""
    want = hashlib.sha256(BENCH_REQUIREMENTS.read_bytes()).hexdigest()[:16]
    stamp = BENCH_VENV / ".podkit-bench-requirements"
    python = BENCH_VENV / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return
    log("bench: installing the comparison environment into %s (once)" % BENCH_VENV)
    if not python.exists():
        BENCH_VENV.parent.mkdir(parents=True, exist_ok=True)
        run([sys.executable, "-m", "venv", str(BENCH_VENV)])
    run([str(BENCH_VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
         "-r", str(BENCH_REQUIREMENTS)], capture_output=False)
    stamp.write_text(want + "\n")


def clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="False",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
        ANSIBLE_RETRY_FILES_ENABLED="False",
    )
    return env


class Bench:
    """One run: its prefix, its scratch directory, its tools' environments."""

    def __init__(self, args):
        self.args = args
        self.run_id = "bench" + uuid.uuid4().hex[:6]
        self.work = pathlib.Path(tempfile.mkdtemp(prefix="podkit-%s-" % self.run_id))
        empty = self.work / "no-collections"
        empty.mkdir()
        self.env = {}
        self.bin = {"podkit": PROJECT_BIN, "cdocker": BENCH_VENV / "bin", "ping": PROJECT_BIN}
        env = clean_env()
        # podkit records each pod it converges for podkit-guard; the run's records go to its scratch directory,
        # never to the host's /var/lib/podkit, where a guard started later would bring the removed pods back.
        env.update(ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_ROLES_PATH=str(TOP / "roles"),
                   PATH="%s:%s" % (PROJECT_BIN, env.get("PATH", "")), PODKIT_STATE_DIR=str(self.work / "state"))
        self.env["podkit"] = env
        env = clean_env()
        # Only the community.docker bundled with PyPI's `ansible`, nothing from the host.
        env.update(ANSIBLE_COLLECTIONS_PATH=str(empty), PATH="%s:%s" % (BENCH_VENV / "bin", env.get("PATH", "")))
        self.env["cdocker"] = env
        self.env["ping"] = self.env["podkit"]
        (self.work / "ping.yml").write_text(PING_PLAYBOOK)
        (self.work / "podkit.yml").write_text(PODKIT_PLAYBOOK % dict(pause=PAUSE_IMAGE))
        (self.work / "cdocker.yml").write_text(CDOCKER_PLAYBOOK % dict(
            pause=PAUSE_IMAGE, busybox=BUSYBOX_IMAGE, memory=MEMBER_MEMORY, members=repr(list(MEMBERS))))
        self.logs = self.work / "logs"
        self.logs.mkdir()

    # ------------------------------------------------------------ names, cleanup

    def pods(self, tool, n, rep):
        short = {"raw": "r", "rawpar": "q", "podkit": "p", "cdocker": "c", "ping": "g"}[tool]
        return ["%s-%s%d-%d-%d" % (self.run_id, short, n, rep, i) for i in range(n)]

    def containers(self, prefix):
        """{name: id} of every container, running or not, whose name starts with ``prefix``."""
        out = run(["docker", "ps", "-a", "--no-trunc", "--filter", "name=^/" + prefix,
                   "--format", "{{.Names}} {{.ID}} {{.State}}"]).stdout
        found = {}
        for line in out.splitlines():
            name, cid, state = line.split()
            if name.startswith(prefix):
                found[name] = (cid, state)
        return found

    def cleanup(self, prefix=None):
        prefix = prefix or self.run_id + "-"
        names = sorted(self.containers(prefix))
        for i in range(0, len(names), 50):
            run(["docker", "rm", "-f", "-v"] + names[i:i + 50])
        # Docker removes a container's own cgroups as it stops it; the pod parents are ours.
        # podkit's pod locks of this run's pods (docker rm did not go through podkit).
        for lock in LOCK_DIR.glob(prefix + "*.lock") if LOCK_DIR.is_dir() else ():
            try:
                lock.unlink()
            except FileNotFoundError:
                pass
        for attempt in range(20):
            left = remove_cgroups(self.run_id)
            if not left:
                return
            time.sleep(0.25 * (attempt + 1))
        log("bench: warning: cgroups left behind: %s" % ", ".join(left[:5]))

    # ------------------------------------------------------------ one measurement

    def timed(self, argv, tool, label, env=None):
        logfile = self.logs / ("%s.log" % label)
        with open(logfile, "w") as out:
            start = time.perf_counter()
            # A session of its own: an interrupted run takes ansible's worker processes down with it.
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(self.work),
                                    start_new_session=True)
            try:
                proc.wait()
            except BaseException:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass  # it had just ended
                proc.wait()
                raise
            elapsed = time.perf_counter() - start
        text = logfile.read_text()
        if proc.returncode != 0:
            raise BenchError("%s %s failed (rc %s), see %s:\n%s" % (tool, label, proc.returncode, logfile, text[-3000:]))
        return elapsed, text

    def raw_script(self, pods, noop):
        """The article's recipe for ``pods``, one command after the other."""
        return "set -eu\n" + "".join(self.raw_pod_commands(pod, noop) for pod in pods)

    def raw_parallel_script(self, pods, noop, label):
        """The same commands, RAW_PARALLEL pods at a time: one script a pod (its members after its
        sandbox), run by xargs -P; any pod's failure fails the whole."""
        scripts = []
        for index, pod in enumerate(pods):
            script = self.work / ("%s-%d.sh" % (label, index))
            script.write_text("set -eu\n" + self.raw_pod_commands(pod, noop))
            scripts.append(str(script))
        listing = self.work / ("%s.list" % label)
        listing.write_text("\n".join(scripts) + "\n")
        return "set -eu\nxargs -P %d -n 1 bash < %s\n" % (RAW_PARALLEL, listing)

    def raw_pod_commands(self, pod, noop):
        lines = []
        sandbox = pod + "_sandbox"
        cmds = [
            ("cgroup", "cgcreate -g cpu,memory:/%s" % pod),
            (sandbox, "docker run -d --name %s --cgroup-parent /%s --ipc shareable %s >/dev/null"
             % (sandbox, pod, PAUSE_IMAGE)),
        ]
        for member in MEMBERS:
            name = "%s_%s" % (pod, member)
            cmds.append((name, "docker run -d --name %s --cgroup-parent /%s --network container:%s --ipc container:%s "
                               "--memory %s %s sleep infinity >/dev/null"
                         % (name, pod, sandbox, sandbox, MEMBER_MEMORY, BUSYBOX_IMAGE)))
        for what, cmd in cmds:
            if not noop:
                lines.append(cmd)
            elif what == "cgroup":
                # What a careful user does on a re-run: look, and create only what is missing.
                lines.append("test -d /sys/fs/cgroup/memory/%s || %s" % (pod, cmd))
            else:
                lines.append("docker container inspect %s >/dev/null 2>&1 || %s" % (what, cmd))
        return "\n".join(lines) + "\n"

    def measure(self, tool, n, rep):
        pods = self.pods(tool, n, rep)
        prefix = pods[0].rsplit("-", 1)[0] + "-"
        tag = "%s-n%d-r%d" % (tool, n, rep)
        result = {"tool": tool, "n": n, "rep": rep, "pods": len(pods), "load_before": settle()}
        (self.work / ("%s.json" % tag)).write_text(json.dumps({"bench_pods": pods, "bench_entries": podkit_entries(pods)}))
        try:
            for phase in PHASES[tool]:
                label = "%s-%s" % (tag, phase)
                if tool in ("raw", "rawpar"):
                    script = self.work / ("%s.sh" % label)
                    script.write_text(self.raw_script(pods, noop=phase == "noop") if tool == "raw"
                                      else self.raw_parallel_script(pods, phase == "noop", label))
                    elapsed, _out = self.timed(["bash", str(script)], tool, label)
                elif phase == "facts":
                    elapsed, out = self.timed(
                        [str(self.bin[tool] / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
                         "-e", "ansible_python_interpreter=%s" % (self.bin[tool] / "python"),
                         "-m", "podkit.docker.pod_facts", "-a", json.dumps({"name": pods})],
                        tool, label, env=self.env[tool])
                    reported = facts_pods(out)
                    if set(reported) != set(pods):
                        raise BenchError("pod_facts reported %d of %d pods, see %s" % (len(reported), n, self.logs))
                else:
                    elapsed, out = self.timed(
                        [str(self.bin[tool] / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                         "-e", "ansible_python_interpreter=%s" % (self.bin[tool] / "python"),
                         "-e", "@%s" % (self.work / ("%s.json" % tag)), str(self.work / ("%s.yml" % tool))],
                        tool, label, env=self.env[tool])
                    result["%s_changed" % phase] = recap_changed(out)
                result[phase] = elapsed
                if phase in ("cold", "noop") and tool != "ping":
                    state = self.containers(prefix)
                    running = sorted(name for name, (_cid, st) in state.items() if st == "running")
                    if len(running) != len(pods) * (1 + len(MEMBERS)):
                        raise BenchError("%s %s: %d containers running, expected %d" % (
                            tool, label, len(running), len(pods) * (1 + len(MEMBERS))))
                    ids = {name: cid for name, (cid, _st) in state.items()}
                    if phase == "cold":
                        result["_ids"] = ids
                    else:
                        # A no-op re-run that recreated something was no no-op: say so in the table.
                        result["noop_recreated"] = sum(1 for name, cid in ids.items() if result["_ids"].get(name) != cid)
        finally:
            result.pop("_ids", None)
            result["load_after"] = load_1min()
            self.cleanup(prefix)
        return result


class BenchError(Exception):
    pass


def remove_cgroups(fragment):
    """rmdir, deepest first, every cgroup directory whose path contains ``fragment``; return what stayed."""
    left = []
    if not CGROUP_ROOT.is_dir():
        return left
    for hierarchy in sorted(CGROUP_ROOT.iterdir()):
        if not hierarchy.is_dir() or hierarchy.is_symlink():
            continue
        found = []
        for dirpath, dirnames, _files in os.walk(str(hierarchy)):
            for name in dirnames:
                path = pathlib.Path(dirpath) / name
                if fragment in path.relative_to(hierarchy).as_posix():
                    found.append(path)
        for path in sorted(found, key=lambda p: len(p.parts), reverse=True):
            try:
                path.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                left.append(str(path))
    return left


def recap_changed(out):
    match = re.search(r"^localhost\s*:.*\bchanged=(\d+)", out, re.M)
    return int(match.group(1)) if match else None


def facts_pods(out):
    """Pod names an ad-hoc pod_facts run printed (`localhost | SUCCESS => {...}`)."""
    start = out.find("{")
    if start < 0:
        return []
    try:
        data = json.loads(out[start:])
    except ValueError:
        return []
    return list(data.get("ansible_facts", {}).get("podkit_pods", {}))


# ---------------------------------------------------------------- statistics, report

def summarise(results, ns):
    """{(tool, phase, n): {median, min, max, reps}} over the repetitions."""
    summary = {}
    for tool in TOOLS:
        for phase in PHASES[tool]:
            for n in ns:
                reps = [r for r in results if r["tool"] == tool and r["n"] == n and phase in r]
                values = [r[phase] for r in reps]
                if values:
                    loads = [r.get("load_before") for r in reps]
                    summary[(tool, phase, n)] = dict(median=statistics.median(values), min=min(values),
                                                     max=max(values), reps=len(values), values=values,
                                                     # None: a run from before loads were recorded
                                                     load_max=None if None in loads else max(loads))
    return summary


def not_quiet(summary, *cells):
    """Why the figures of ``cells`` are no quiet figures ("" when they are): a load above QUIET_LOAD
    before or after one of their measurements, or no load recorded."""
    loads = [summary[c]["load_max"] for c in cells if c in summary]
    if any(load is None for load in loads):
        return "load not recorded"
    worst = max(loads) if loads else 0
    return "load %.2f > %.1f: not a quiet figure" % (worst, QUIET_LOAD) if worst > QUIET_LOAD else ""


def paired_ratios(results, tool_a, tool_b, phase, n):
    """Ratios within each repetition (the two ran back to back), to see the noise."""
    by_rep = {}
    for r in results:
        if r["n"] == n and phase in r:
            by_rep.setdefault(r["rep"], {})[r["tool"]] = r[phase]
    return [v[tool_a] / v[tool_b] for v in by_rep.values() if tool_a in v and tool_b in v and v[tool_b] > 0]


def fmt_s(cell):
    if cell is None:
        return "—"
    return "%.2f s (%.2f–%.2f)" % (cell["median"], cell["min"], cell["max"])


def ratio(summary, a, b):
    if a not in summary or b not in summary or not summary[b]["median"]:
        return None
    return summary[a]["median"] / summary[b]["median"]


def fmt_ratio(value, paired=None):
    if value is None:
        return "—"
    text = "%.2fx" % value
    if paired and len(paired) > 1:
        text += " (%.2f–%.2f)" % (min(paired), max(paired))
    return text


def judged(summary, met, text, *cells):
    """(met, text) of a target, or (None, text and why) when its figures were not quiet: a target is
    never called met or missed on figures the machine's load moved."""
    why = not_quiet(summary, *cells) if met is not None else ""
    return (None, "%s; not judged (%s)" % (text, why)) if why else (met, text)


def targets(summary, results, ns):
    """[(met or None, text)] for the issue's targets."""
    out = []
    if 10 in ns:
        for other, target, what in (("raw", TARGET_COLD_VS_RAW, "the raw CLI one command at a time"),
                                    ("rawpar", TARGET_COLD_VS_RAWPAR, "the raw CLI four pods at a time")):
            cells = ("podkit", "cold", 10), (other, "cold", 10)
            r = ratio(summary, *cells)
            out.append(judged(summary, None if r is None else r <= target,
                              "podkit cold converge at N=10 at most %.1fx %s: %s" % (target, what, fmt_ratio(r))
                              + ("" if r is None else " (%.2f s against %.2f s)" % (
                                  summary[cells[0]]["median"], summary[cells[1]]["median"])), *cells))
        cells = ("podkit", "noop", 10), ("cdocker", "noop", 10)
        r = ratio(summary, *cells)
        out.append(judged(summary, None if r is None else r <= TARGET_NOOP_VS_CDOCKER,
                          "podkit no-op re-run at N=10 at most %.2fx community.docker's: %s" % (
                              TARGET_NOOP_VS_CDOCKER, fmt_ratio(r))
                          + ("" if r is None else " (%.2f s against %.2f s)" % (
                              summary[cells[0]]["median"], summary[cells[1]]["median"])), *cells))
        cells = ("podkit", "noop", 10), ("ping", "noop", 10)
        over = None if not all(c in summary for c in cells) else summary[cells[0]]["median"] - summary[cells[1]]["median"]
        out.append(judged(summary, None if over is None else over <= TARGET_NOOP_OVER_PING,
                          "podkit no-op re-run at N=10 at most the ping play + %.1f s: %s" % (
                              TARGET_NOOP_OVER_PING, "not measured" if over is None else "+%.2f s (%.2f s against %.2f s)"
                              % (over, summary[cells[0]]["median"], summary[cells[1]]["median"])), *cells))
        cell = summary.get(("podkit", "facts", 10))
        out.append(judged(summary, None if cell is None else cell["median"] < TARGET_FACTS_SECONDS,
                          "pod_facts for 10 pods under %.1f s including ansible's start: %s"
                          % (TARGET_FACTS_SECONDS, "not measured" if cell is None else "%.2f s" % cell["median"]),
                          ("podkit", "facts", 10)))
    else:
        out.append((None, "the N=10 targets need N=10 in --n"))
    big = max(ns)
    if 10 in ns and big >= 30:
        a, b = summary.get(("podkit", "cold", big)), summary.get(("podkit", "cold", 10))
        if a and b:
            per_big, per_10 = a["median"] / (big * 3), b["median"] / 30
            growth = per_big / per_10
            out.append(judged(summary, growth <= TARGET_FLAT,
                              "per-container cost flat from N=10 to N=%d (at most %.1fx): %.3f s -> %.3f s a container, %.2fx"
                              % (big, TARGET_FLAT, per_10, per_big, growth), ("podkit", "cold", big), ("podkit", "cold", 10)))
        else:
            out.append((None, "per-container cost flat from N=10 to N=%d: podkit not measured" % big))
    else:
        out.append((None, "per-container cost flat from N=10 to N=100: not measured (run with --full)"))
    return out


def report(meta, results, ns, errors, out=RESULTS):
    summary = summarise(results, ns)
    lines = [
        "# Benchmark: podkit, the raw docker CLI and community.docker",
        "",
        "Run `%s` on %s UTC, %s (%d cores, load %s at start, %s at end)." % (
            meta["command"], meta["started"], meta["host"], meta["cores"], meta["load_start"], meta["load_end"]),
        "Docker %s, cgroup v%s with the %s driver, kernel %s. podkit: ansible-core %s (project .venv); "
        "community.docker %s with ansible-core %s (PyPI `ansible` %s, separate venv)." % (
            meta["docker"], meta["cgroup_version"], meta["cgroup_driver"], meta["kernel"], meta["podkit_core"],
            meta["cdocker_version"], meta["cdocker_core"], meta["ansible_package"]),
        "",
        "Each pod: a sandbox (`%s`) and two members (`%s sleep infinity`, 64 MiB limit) joining its "
        "network and IPC namespaces, under a per-pod cgroup parent. Tools interleaved, %d repetitions%s, "
        "everything removed between repetitions. Seconds of wall time, median (min–max). "
        "Ratios are of medians, with the range of the per-repetition ratios. The raw CLI runs the article's "
        "commands one after the other, and four pods at a time (`xargs -P%d`, a pod's members after its "
        "sandbox); podkit is one `podkit.docker.pods` task for all the pods."
        % (PAUSE_IMAGE, BUSYBOX_IMAGE, meta["reps"], large_reps_note(meta), RAW_PARALLEL),
        "",
        "| N | phase | %s | podkit / raw | podkit / raw, 4 at a time | podkit / community.docker |"
        % " | ".join(TOOL_LABELS[t] for t in TOOLS),
        "|---:|---|%s---|---|---|" % ("---|" * len(TOOLS)),
    ]
    for n in ns:
        for phase in ("cold", "noop", "facts"):
            cells = [summary.get((tool, phase, n)) for tool in TOOLS]
            if not any(cells):
                continue
            ratios = []
            for other in ("raw", "rawpar", "cdocker"):
                text = fmt_ratio(ratio(summary, ("podkit", phase, n), (other, phase, n)),
                                 paired_ratios(results, "podkit", other, phase, n))
                why = not_quiet(summary, ("podkit", phase, n), (other, phase, n)) if text != "—" else ""
                ratios.append(text + (" **(%s)**" % why if why else ""))
            lines.append("| %d | %s | %s | %s |" % (
                n, PHASE_LABELS[phase], " | ".join(fmt_s(c) for c in cells), " | ".join(ratios)))
    cold_tools = [t for t in TOOLS if "cold" in PHASES[t]]
    lines += ["", "Cold converge per container (seconds, median / (3 N)):", "",
              "| N | %s |" % " | ".join(TOOL_LABELS[t] for t in cold_tools), "|---:|%s" % ("---|" * len(cold_tools))]
    for n in ns:
        row = []
        for tool in cold_tools:
            cell = summary.get((tool, "cold", n))
            row.append("—" if cell is None else "%.3f" % (cell["median"] / (3 * n)))
        lines.append("| %d | %s |" % (n, " | ".join(row)))
    big = max(ns)
    if 10 in ns and big > 10:
        row = []
        for tool in cold_tools:
            a, b = summary.get((tool, "cold", big)), summary.get((tool, "cold", 10))
            row.append("—" if not (a and b) else "%.2fx" % ((a["median"] / big) / (b["median"] / 10)))
        lines.append("| N=10 → %d | %s |" % (big, " | ".join(row)))
    changed = ["%s N=%d rep %d: changed=%s, recreated %s" % (TOOL_LABELS[r["tool"]], r["n"], r["rep"],
                                                             r.get("noop_changed"), r.get("noop_recreated"))
               for r in results if r.get("noop_changed") or r.get("noop_recreated")]
    lines += ["", "No-op re-runs: %s." % ("; ".join(changed) if changed else
                                          "every tool changed and recreated nothing (checked: container IDs, PLAY RECAP)")]
    before = [r.get("load_before") for r in results if r.get("load_before") is not None]
    after = [r.get("load_after") for r in results if r.get("load_after") is not None]
    lines += ["", "Load average (1 min) before each measurement, once the run had waited (at most %d s) for the one "
              "before it to die down: %s; a ratio or target resting on a measurement that began above %.1f is marked, "
              "and such a target is not judged. After each measurement (its own work included): %s." % (
                  SETTLE_SECONDS,
                  "not recorded (a run from before issue 27)" if not before else "%.2f to %.2f, %d of %d above %.1f" % (
                      min(before), max(before), sum(1 for x in before if x > QUIET_LOAD), len(before), QUIET_LOAD),
                  QUIET_LOAD, "not recorded" if not after else "%.2f to %.2f" % (min(after), max(after)))]
    lines += ["", "## Targets (issue 27)", ""]
    for met, text in targets(summary, results, ns):
        lines.append("- %s %s" % ({True: "MET", False: "MISSED", None: "n/a"}[met], text))
    if errors:
        lines += ["", "## Errors", ""] + ["- %s" % e.splitlines()[0] for e in errors]
    lines += ["", "![time against N](latest.png)", ""]
    if (out / "full" / "latest.md").exists():
        lines += ["A run up to N=100 (`--full`, `--output benchmarks/results/full`): [full/latest.md](full/latest.md).", ""]
    lines += ["Where podkit's time goes: [profile.md](%s). Raw figures of this run: `benchmarks/results/raw/%s.json` "
              "(not committed)." % (os.path.relpath(str(RESULTS / "profile.md"), str(out)), meta["run_id"]), ""]
    return "\n".join(lines), summary


# ---------------------------------------------------------------- facts about the host

def large_reps_note(meta):
    """How many repetitions large N got, when fewer than the others ("" when the same)."""
    large = meta.get("large_reps")
    if large is None or large >= meta["reps"]:
        return ""
    return " (%d at N >= %d)" % (large, LARGE_N)


def host_meta(args, bench):
    def out(argv):
        try:
            return run(argv).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "?"
    info = out(["docker", "info", "--format", "{{.ServerVersion}} {{.CgroupVersion}} {{.CgroupDriver}}"]).split()
    cd_version = out([str(BENCH_VENV / "bin" / "python"), "-c",
                      "import json, ansible_collections.community.docker as c, pathlib; "
                      "print(json.load(open(pathlib.Path(c.__path__[0]) / 'MANIFEST.json'))['collection_info']['version'])"])
    return dict(
        run_id=bench.run_id,
        command=" ".join(["python benchmarks/run.py"] + list(args.argv)),
        started=datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"),
        host=platform.node(), cores=os.cpu_count() or 0, kernel=platform.release(),
        load_start=load(), load_end="?", reps=args.reps, large_reps=args.large_reps,
        docker=info[0] if info else "?", cgroup_version=info[1] if len(info) > 1 else "?",
        cgroup_driver=info[2] if len(info) > 2 else "?",
        podkit_core=out([str(PROJECT_BIN / "python"), "-c", "import ansible; print(ansible.__version__)"]),
        cdocker_core=out([str(BENCH_VENV / "bin" / "python"), "-c", "import ansible; print(ansible.__version__)"]),
        cdocker_version=cd_version,
        ansible_package=out([str(BENCH_VENV / "bin" / "python"), "-c",
                             "import importlib.metadata as m; print(m.version('ansible'))"]),
    )


def load():
    try:
        return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def settle(limit=SETTLE_SECONDS):
    """The 1-minute load average once it fell to QUIET_LOAD, or after ``limit`` seconds (then above it: the
    measurement is marked not quiet). None when it cannot be read."""
    deadline = time.monotonic() + limit
    load_now = load_1min()
    while load_now is not None and load_now > QUIET_LOAD and time.monotonic() < deadline:
        time.sleep(5)
        load_now = load_1min()
    return load_now


def load_1min():
    """The 1-minute load average, or None when it cannot be read."""
    try:
        return float(pathlib.Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", help="pod counts (default %s)" % " ".join(map(str, DEFAULT_N)))
    parser.add_argument("--full", action="store_true", help="N in %s" % " ".join(map(str, FULL_N)))
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--large-reps", type=int, default=1,
                        help="at most this many repetitions for N >= %d (default 1)" % LARGE_N)
    parser.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS))
    parser.add_argument("--large-tools", nargs="+", choices=TOOLS, metavar="TOOL",
                        help="only these of --tools from N >= %d on (default: all of them); community.docker alone "
                             "takes about 13 minutes at N=100, and no target compares with it there" % LARGE_N)
    parser.add_argument("--no-profile", action="store_true", help="skip profiling podkit")
    parser.add_argument("--profile-only", action="store_true", help="only profile podkit (profile.md)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed N=1 round")
    parser.add_argument("--report", metavar="RAW_JSON", help="only write latest.md and latest.png again from a raw file")
    parser.add_argument("--output", default=str(RESULTS), help="where latest.md, latest.png go")
    args = parser.parse_args(argv)
    args.argv = argv
    args.ns = sorted(set(args.n or (FULL_N if args.full else DEFAULT_N)))
    return args


def reps_for(n, reps, large_reps):
    """Repetitions at ``n`` pods: fewer at large N, where one repetition of every tool takes minutes."""
    return min(reps, large_reps) if n >= LARGE_N else reps


def profile(bench, out):
    import profile_podkit  # pylint: disable=import-outside-toplevel
    try:
        profile_podkit.main(bench, out / "profile.md")
    except (BenchError, subprocess.CalledProcessError) as exc:
        log("bench: profiling failed: %s" % exc)
        return ["profiling: %s" % exc]
    return []


def podkit_available():
    return (TOP / "plugins" / "modules" / "pod.py").exists() and (TOP / "plugins" / "modules" / "pod_facts.py").exists()


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.report:
        raw_file = pathlib.Path(args.report)
        data = json.loads(raw_file.read_text())
        print(write_report(pathlib.Path(args.output), raw_file, data["meta"], data["results"], data["ns"], data["errors"]))
        return 0
    tools = [t for t in TOOLS if t in args.tools]
    if "podkit" in tools and not podkit_available():
        log("bench: podkit's pod/pod_facts modules are not there yet; measuring without podkit")
        tools.remove("podkit")
    if "cdocker" in tools or not args.no_profile:
        ensure_bench_venv()
    bench = Bench(args)
    if args.profile_only:
        if "podkit" not in tools:
            return 1
        errors = profile(bench, pathlib.Path(args.output))
        for error in errors:
            log(error)
        return 1 if errors else 0
    meta = host_meta(args, bench)
    meta["tools"] = tools
    log("bench: run %s, N in %s, %d repetitions%s, tools %s, scratch %s" % (
        bench.run_id, args.ns, args.reps, large_reps_note(meta), ", ".join(tools), bench.work))
    results, errors = [], []
    RAW.mkdir(parents=True, exist_ok=True)
    raw_file = RAW / ("%s.json" % bench.run_id)

    def stop(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        if not args.no_warmup:
            # Caches (page cache, .pyc, docker's image metadata) warm before the first timed run.
            for tool in tools:
                try:
                    bench.measure(tool, 1, 0)
                except BenchError as exc:
                    errors.append("warm-up: %s" % exc)
                    log("bench: %s" % exc)
        # Every repetition of the small N first, then the large ones: N=100's load must not sit under N=10's figures.
        rounds = [(rep, n) for n in args.ns if n < LARGE_N for rep in range(1, args.reps + 1)]
        rounds.sort()
        rounds += [(rep, n) for n in args.ns if n >= LARGE_N for rep in range(1, reps_for(n, args.reps, args.large_reps) + 1)]
        for rep, n in rounds:
            # Rotate who goes first, so no tool always runs right after another's cleanup.
            order = tools[(rep - 1) % len(tools):] + tools[:(rep - 1) % len(tools)]
            if n >= LARGE_N and args.large_tools:
                order = [tool for tool in order if tool in args.large_tools]
            for tool in order:
                try:
                    result = bench.measure(tool, n, rep)
                except BenchError as exc:
                    errors.append(str(exc))
                    log("bench: %s" % exc)
                    continue
                results.append(result)
                # Written as it goes: a run stopped half-way still leaves its figures.
                raw_file.write_text(json.dumps(dict(meta=meta, results=results, errors=errors, ns=args.ns), indent=1))
                log("bench: rep %d N=%-3d %-8s %s" % (rep, n, tool, "  ".join(
                    "%s %.2fs" % (p, result[p]) for p in PHASES[tool] if p in result)))
    except KeyboardInterrupt:
        errors.append("interrupted: the table holds the repetitions finished before")
        log("bench: interrupted; reporting what was measured")
        # dockerd may still finish a create the killed client had asked for: look again after it.
        bench.cleanup()
        time.sleep(3)
    finally:
        bench.cleanup()
    meta["load_end"] = load()
    text = write_report(pathlib.Path(args.output), raw_file, meta, results, args.ns, errors)
    if "podkit" in tools and not args.no_profile:
        errors += profile(bench, pathlib.Path(args.output))
    print()
    print(text)
    if errors:
        log("bench: logs of the failed runs kept in %s" % bench.logs)
    else:
        shutil.rmtree(str(bench.work), ignore_errors=True)
    return 1 if errors and not results else 0


def write_report(out, raw_file, meta, results, ns, errors):
    """latest.md, latest.png under ``out``, the raw file with its summary; print the table."""
    text, summary = report(meta, results, ns, errors, out)
    out.mkdir(parents=True, exist_ok=True)
    raw_file.write_text(json.dumps(dict(meta=meta, results=results, errors=errors, ns=ns,
                                        summary=[dict(tool=k[0], phase=k[1], n=k[2], **v) for k, v in summary.items()]),
                                   indent=1))
    (out / "latest.md").write_text(text)
    if not (BENCH_VENV / "bin" / "python").exists():
        # A run of podkit alone (--tools podkit ping --no-profile) makes no bench venv.
        log("bench: chart not drawn: no %s (matplotlib lives there)" % BENCH_VENV)
        return text
    chart = subprocess.run([str(BENCH_VENV / "bin" / "python"), str(BENCH / "chart.py"), str(raw_file), str(out / "latest.png")],
                           check=False, capture_output=True, text=True)
    if chart.returncode != 0:
        log("bench: chart not drawn: %s" % chart.stderr.strip()[-500:])
    return text


if __name__ == "__main__":
    # profile_podkit imports this file as `run`: one module object, one BenchError.
    sys.modules.setdefault("run", sys.modules[__name__])
    sys.path.insert(0, str(BENCH))
    sys.exit(main())
