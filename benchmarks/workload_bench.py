# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A 10-replica Deployment against `docker-compose up --scale` (issue 24), side by side (`make bench-workloads`).

For each tool, interleaved over the repetitions:

- cold: 10 replicas of one web server (busybox httpd) from nothing;
- rolling update: the same 10 with one environment value changed, while a thread samples, every 50 ms,
  how many replicas serve (their containers run), so the table gives the fewest serving at any sample
  (10 minus the most unavailable at once) and the most replicas present at once.

podkit is one `podkit.docker.pods` task given the Deployment (its default strategy: maxSurge 25%,
maxUnavailable 25%, rounded as Kubernetes rounds them: 3 and 2), each replica a pod of a sandbox and a
member. docker-compose (Debian's, 1.29) is `up -d --scale web=10` of a compose file holding the same
container; an update recreates the containers, with no readiness or surge to bound it. The two do not
make the same thing (a replica is two containers under podkit, one under compose): the table says so.
The load average before each measurement is recorded (after waiting, as run.py does, for the one
before to die down), and a figure taken above run.QUIET_LOAD is marked. Results: benchmarks/results/workloads.md (and raw/ beside run.py's).
"""

from __future__ import absolute_import, division, print_function

import argparse
import datetime
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import run as bench_run

REPLICAS = 10
COMPOSE = "docker-compose"

PLAYBOOK = """\
- name: A Deployment of %(replicas)d replicas with podkit
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Converge the Deployment
      podkit.docker.pods:
        sandbox_image: %(pause)s
        pull: never
        pods:
          - manifest:
              apiVersion: apps/v1
              kind: Deployment
              metadata:
                name: "{{ bench_name }}"
              spec:
                replicas: %(replicas)d
                selector:
                  matchLabels:
                    app: "{{ bench_name }}"
                template:
                  metadata:
                    labels:
                      app: "{{ bench_name }}"
                  spec:
                    containers:
                      - name: web
                        image: %(busybox)s
                        command: [httpd, -f, -p, "8080", -h, /tmp]
                        env:
                          - name: RELEASE
                            value: "{{ bench_release }}"
"""

COMPOSE_FILE = """\
version: "2.4"
services:
  web:
    image: %(busybox)s
    command: [httpd, -f, -p, "8080", -h, /tmp]
    environment:
      RELEASE: "%(release)s"
"""


def serving(tool, name):
    """(replicas present, replicas serving) now, from Docker: a podkit replica serves when its sandbox and
    member run, a compose one when its container runs."""
    if tool == "podkit":
        out = subprocess.run(["docker", "ps", "-a", "--filter", "label=io.podkit.pod", "--format",
                              '{{.Label "io.podkit.pod"}} {{.State}}'],
                             capture_output=True, text=True, check=True).stdout
        pods = {}
        for line in out.splitlines():
            pod, state = (line.split() + ["", ""])[:2]
            if pod.startswith(name + "-"):
                pods.setdefault(pod, []).append(state == "running")
        return len(pods), sum(1 for states in pods.values() if len(states) == 2 and all(states))
    out = subprocess.run(["docker", "ps", "-a", "--filter", "label=com.docker.compose.project=%s" % name,
                          "--format", "{{.State}}"], capture_output=True, text=True, check=True).stdout.split()
    return len(out), out.count("running")


class Sampler(threading.Thread):
    def __init__(self, tool, name):
        super().__init__(daemon=True)
        self.tool, self.name, self.samples, self.stop = tool, name, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.samples.append(serving(self.tool, self.name))
            time.sleep(0.05)


class WorkloadBench:
    def __init__(self):
        self.run_id = "wbench" + uuid.uuid4().hex[:6]
        self.work = tempfile.mkdtemp(prefix="podkit-%s-" % self.run_id)
        env = bench_run.clean_env()
        env.update(ANSIBLE_COLLECTIONS_PATH=str(bench_run.COLLECTIONS), PODKIT_STATE_DIR=self.work + "/state",
                   PATH="%s:%s" % (bench_run.PROJECT_BIN, env.get("PATH", "")))
        self.env = env
        with open(self.work + "/podkit.yml", "w") as out:
            out.write(PLAYBOOK % dict(replicas=REPLICAS, pause=bench_run.PAUSE_IMAGE, busybox=bench_run.BUSYBOX_IMAGE))

    def step(self, tool, name, release):
        if tool == "podkit":
            argv = [str(bench_run.PROJECT_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                    "-e", "bench_name=%s bench_release=%s" % (name, release),
                    "-e", "ansible_python_interpreter=%s" % (bench_run.PROJECT_BIN / "python"), self.work + "/podkit.yml"]
        else:
            compose = "%s/%s.yml" % (self.work, name)
            with open(compose, "w") as out:
                out.write(COMPOSE_FILE % dict(busybox=bench_run.BUSYBOX_IMAGE, release=release))
            argv = [COMPOSE, "-p", name, "-f", compose, "up", "-d", "--scale", "web=%d" % REPLICAS]
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env, cwd=self.work, check=False)
        took = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError("%s %s failed: %s" % (tool, " ".join(argv), (proc.stdout + proc.stderr)[-2000:]))
        return took

    def measure(self, tool, rep):
        name = "%s-%s%d" % (self.run_id, tool[0], rep)
        result = dict(tool=tool, rep=rep, load_before=bench_run.settle())
        try:
            result["cold"] = self.step(tool, name, "r1")
            present, ready = serving(tool, name)
            if (present, ready) != (REPLICAS, REPLICAS):
                raise RuntimeError("%s: %d replicas present, %d serving after the cold run" % (tool, present, ready))
            sampler = Sampler(tool, name)
            sampler.start()
            try:
                result["update"] = self.step(tool, name, "r2")
            finally:
                sampler.stop.set()
                sampler.join()
            result["fewest_serving"] = min(r for _p, r in sampler.samples)
            result["most_present"] = max(p for p, _r in sampler.samples)
            result["samples"] = len(sampler.samples)
        finally:
            result["load_after"] = bench_run.load_1min()
            self.cleanup(name)
        return result

    def cleanup(self, name):
        out = subprocess.run(["docker", "ps", "-aq", "--filter", "name=^%s" % name], capture_output=True, text=True,
                             check=False).stdout.split()
        if out:
            subprocess.run(["docker", "rm", "-f", "-v"] + out, capture_output=True, check=False)
        for network in subprocess.run(["docker", "network", "ls", "-q", "--filter", "name=%s" % name],
                                      capture_output=True, text=True, check=False).stdout.split():
            subprocess.run(["docker", "network", "rm", network], capture_output=True, check=False)
        for lock in bench_run.LOCK_DIR.glob(name + "*.lock") if bench_run.LOCK_DIR.is_dir() else ():
            lock.unlink()
        bench_run.remove_cgroups(name)


def ensure_compose():
    if shutil.which(COMPOSE):
        return
    bench_run.log("bench: installing Debian's docker-compose")
    subprocess.run([str(bench_run.TOP / "scripts" / "apt-get.sh"), "install", "-y", "-qq", "--no-install-recommends",
                    "docker-compose"], check=True)


def report(results, meta):
    def cell(tool, key):
        values = [r[key] for r in results if r["tool"] == tool and key in r]
        if not values:
            return "—"
        if key.endswith("serving") or key.startswith("most"):
            return "%d (%d–%d)" % (statistics.median(values), min(values), max(values))
        return "%.2f s (%.2f–%.2f)" % (statistics.median(values), min(values), max(values))

    loads = [r["load_before"] for r in results if r.get("load_before") is not None]
    worst = max(loads) if loads else None
    quiet = "" if worst is None or worst <= bench_run.QUIET_LOAD else " (above %.1f: not a quiet figure)" % bench_run.QUIET_LOAD
    lines = [
        "# A 10-replica Deployment: podkit against docker-compose --scale",
        "",
        "Run `python benchmarks/workload_bench.py --reps %d` on %s UTC; load (1 min) before each measurement (the run "
        "waits for the one before to die down, as run.py does) "
        "%s, the highest %s%s." % (
            meta["reps"], meta["started"], " ".join("%.2f" % x for x in loads), "?" if worst is None else "%.2f" % worst, quiet),
        "",
        "Median (min–max) of the repetitions. A podkit replica is a pod (a sandbox and a member: 20 containers for 10 "
        "replicas), a compose replica one container (10). The update changes one environment value; \"fewest "
        "serving\" is the fewest replicas whose containers all ran at any 50 ms sample during it (10 minus the most "
        "unavailable at once), \"most present\" the most replicas that existed at once.",
        "",
        "| | podkit (Deployment, maxSurge 25%, maxUnavailable 25%) | docker-compose up --scale web=10 |",
        "|---|---|---|",
        "| cold: 10 replicas | %s | %s |" % (cell("podkit", "cold"), cell("compose", "cold")),
        "| rolling update | %s | %s |" % (cell("podkit", "update"), cell("compose", "update")),
        "| fewest serving during the update | %s | %s |" % (cell("podkit", "fewest_serving"), cell("compose", "fewest_serving")),
        "| most present during the update | %s | %s |" % (cell("podkit", "most_present"), cell("compose", "most_present")),
        "",
        "What bounds each: podkit keeps at least replicas - maxUnavailable (8) serving and at most replicas + maxSurge "
        "(13) present, the Deployment controller's rule; compose 1.29 recreates every container of the service, with "
        "no surge or readiness to bound how many are down at once. podkit's times include Ansible's start "
        "(see latest.md's ping play).",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--output", default=str(bench_run.RESULTS))
    args = parser.parse_args(argv)
    ensure_compose()
    bench = WorkloadBench()
    meta = dict(started=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"), reps=args.reps)
    results = []
    for rep in range(1, args.reps + 1):
        for tool in (("podkit", "compose") if rep % 2 else ("compose", "podkit")):
            result = bench.measure(tool, rep)
            bench_run.log("bench: rep %d %-8s cold %.2fs update %.2fs fewest serving %d most present %d" % (
                rep, tool, result["cold"], result["update"], result["fewest_serving"], result["most_present"]))
            results.append(result)
    text = report(results, meta)
    out = bench_run.pathlib.Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "workloads.md").write_text(text)
    bench_run.RAW.mkdir(parents=True, exist_ok=True)
    (bench_run.RAW / ("%s.json" % bench.run_id)).write_text(json.dumps(dict(meta=meta, results=results), indent=1))
    shutil.rmtree(bench.work, ignore_errors=True)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
