"""podkit-guard benchmark (not a test): time from a fault to a whole pod, median of 10, and the
guard's idle CPU and memory with 10 recorded pods over a minute.

Run: .venv/bin/python benchmarks/guard_bench.py   (root, the local engine and images; about 3 minutes)
Writes benchmarks/results/guard.json and guard.md. The guard runs through the host role's
supervisor script, scoped to a temporary record directory, and is stopped at the end.
"""

import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

TOP = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(TOP / "tests"), str(TOP / "tests" / "integration")]

import docker  # noqa: E402

from helpers import free_port, remove_pod_leftovers, use_collection, wait_for  # noqa: E402
from reliability.guard import MEMBERS, GuardProcess, kill_pause, pod_whole, web_pod  # noqa: E402

use_collection()
PODS = 10
FAULTS = 10
IDLE_S = 60
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as stream:
        fields = stream.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS     # utime + stime


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as stream:
        for line in stream:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    client = docker.DockerClient(version="auto")
    names = ["gb%02d%s" % (i, os.urandom(3).hex()) for i in range(PODS)]
    with tempfile.TemporaryDirectory() as tmp:
        guard = GuardProcess(pathlib.Path(tmp) / "state", resync=60)
        guard.state_dir.mkdir(mode=0o700)
        try:
            for name in names:
                guard.module("pod", **web_pod(name, free_port()))
            guard.start()
            [pid] = guard.guard_pids()
            time.sleep(5)
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            samples = []
            while time.monotonic() - t0 < IDLE_S:
                samples.append(rss_bytes(pid))
                time.sleep(1)
            idle_cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
            faults = []
            for index in range(FAULTS):
                pod = names[index % PODS]
                kind = ("docker rm -f member", "docker restart sandbox", "SIGKILL pause")[index % 3]
                start = time.monotonic()
                if kind == "docker rm -f member":
                    client.containers.get("%s_web" % pod).remove(force=True)
                elif kind == "docker restart sandbox":
                    client.containers.get("%s_sandbox" % pod).restart(timeout=1)
                else:
                    kill_pause(client, pod)
                time.sleep(0.05)
                took = wait_for(lambda p=pod: pod_whole(client, p, MEMBERS), 30, step=0.02)
                faults.append(dict(fault=kind, pod=pod, seconds=None if took is None else round(time.monotonic() - start, 3)))
                time.sleep(1)
        finally:
            guard.stop()
            for name in names:
                remove_pod_leftovers(client, name)
    repaired = [f["seconds"] for f in faults if f["seconds"] is not None]
    result = dict(pods=PODS, idle_seconds=IDLE_S, idle_cpu_percent=round(100 * idle_cpu, 3),
                  rss_mib_max=round(max(samples) / 2 ** 20, 1), rss_mib_median=round(statistics.median(samples) / 2 ** 20, 1),
                  repair_seconds_median=statistics.median(repaired) if repaired else None,
                  repaired=len(repaired), faults=faults, when=time.strftime("%Y-%m-%d %H:%M:%S"),
                  machine="2 cores, Debian 12, cgroup v1, Docker %s" % client.version()["Version"],
                  load_average=os.getloadavg()[:3])
    out = TOP / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "guard.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# podkit-guard benchmark (%s)" % result["when"], "",
             "%s; load average at the end %.1f %.1f %.1f (%s)"
             % ((result["machine"],) + tuple(result["load_average"])
                + ("a quiet machine" if result["load_average"][0] < 2 else "a machine busy with other work",)), "",
             "- fault to whole pod (median of %d): %.2f s (%d/%d repaired)" % (
                 FAULTS, result["repair_seconds_median"] or -1, len(repaired), FAULTS),
             "- idle with %d recorded pods over %d s: CPU %.2f%% of one core, RSS median %.1f MiB (max %.1f)" % (
                 PODS, IDLE_S, result["idle_cpu_percent"], result["rss_mib_median"], result["rss_mib_max"]),
             "", "| fault | seconds |", "|---|---|"]
    lines += ["| %s | %s |" % (f["fault"], f["seconds"]) for f in faults]
    (out / "guard.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
