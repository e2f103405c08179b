# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real manifests through podkit.docker.pods, one file at a time (the "real files" target of issues 24 and 25).

    .venv/bin/python benchmarks/realfiles.py DIR [--sources sources.tsv] [--output results.md]

DIR holds manifests as their authors keep them (Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs,
CronJobs, with whatever else their file holds), gathered from public repositories and kept OUTSIDE this
repository: they are never committed here. ``--sources`` is a tab-separated list (file, repo, path, commit) that
the table repeats beside each file's outcome.

Each file is given as ``manifest_file`` of one ``pods`` entry, as written, and run three times: in check mode,
for real, and again (which must report changed=false). A guard scoped to a record directory of this run keeps the
CronJobs' schedules (the module refuses a CronJob where no guard runs). Outcomes:

- converged: the real run succeeded (replicas running and Ready; a Job run to completion; a CronJob recorded for
  the guard) and the re-run changed nothing;
- ran-and-failed: (Jobs) the real run made the Job's pods and the Job failed under its own rules (backoffLimit,
  activeDeadlineSeconds, podFailurePolicy), and the re-run changed nothing;
- not-converged: accepted, but the real run failed (a stand-in without the app's command, a readiness probe that
  cannot pass on the stand-in, a deadline), or the re-run was not a no-op;
- refused: the check run failed before anything was made; ``names field`` says whether the message names the
  field (a dotted path such as ``spec.template.spec.x`` or a field name such as ``apiVersion``);
- crashed: a traceback, or a module that printed no JSON.

Nothing can be pulled on the machines this runs on, so every image a file names is given a local stand-in built
from podkit/busybox (``docker build``, no pull), tagged with the image's name and removed afterwards. The stand-in
of a long-running container answers "HTTP/1.0 200 OK" on every port the file's containers and probes name (none
with hostNetwork) and then waits, so that httpGet and tcpSocket probes can pass; the stand-in of an image used
only by init containers or by Jobs exits 0 at once. A command a file gives explicitly runs in busybox and fails
where busybox lacks it: those are counted apart, as the stand-in's limit rather than podkit's.

A ConfigMap or Secret a file names but does not hold (its repository keeps it elsewhere, or keeps it out of
version control) is given as a stand-in document with the keys the file asks for, beside the file: the target
counts files "with the ConfigMaps/Secrets they name".

Everything made is removed after each file: the module's own state: absent run first, then any container,
network or claim volume still labelled with a workload of the file, the stand-in tags, the records directory.
"""

from __future__ import absolute_import, division, print_function

import argparse
import concurrent.futures
import datetime
import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import yaml

TOP = pathlib.Path(__file__).resolve().parent.parent
COLLECTIONS = TOP / "build" / "collections"
GUARD_SCRIPT = TOP / "roles" / "host" / "files" / "podkit-guard.sh"
PAUSE_IMAGE = "podkit/pause:latest"
BUSYBOX_IMAGE = "podkit/busybox:latest"
STANDIN_REPO = "podkit-realfiles/standin"
STANDIN_LABEL = "io.podkit.realfiles-standin"
WORKLOAD_KINDS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet")
JOB_KINDS = ("Job", "CronJob")
JOB_WAIT = 700
# A Deployment waits for readiness up to its progressDeadlineSeconds (600 by default).
MODULE_TIMEOUT = 760
STOPPING = threading.Event()
# A refusal names the field when it holds a field path of the file: pods[0].manifest[1].spec..., spec.template...,
# metadata.name, ...kind, ...apiVersion.
# Text that is not YAML has no field: naming the entry and the line and column is naming the place.
FIELD = re.compile(r"manifest(_file)?\[\d+\]\.\w|\b(spec|metadata)\.\w|\.(apiVersion|kind)\b|manifest_file .*line \d+, column \d+", re.S)

SERVE = """#!/bin/sh
# podkit realfiles stand-in: answers HTTP 200 on the ports its file names, then waits.
for port in $(cat /standin-ports 2>/dev/null); do
    nc -ll -p "$port" -e /standin-ok 2>/dev/null &
done
trap 'exit 0' TERM INT
while :; do sleep 3600 & wait $!; done
"""
OK = '#!/bin/sh\nprintf "HTTP/1.0 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok"\n'
EXIT = "#!/bin/sh\n# podkit realfiles stand-in of a task: done at once.\nexit 0\n"


def docker(*args, check=False):
    return subprocess.run(["docker"] + list(args), capture_output=True, text=True, check=check, timeout=120)


def module_env(state_dir):
    env = dict(os.environ)
    env.update(PYTHONPATH=str(COLLECTIONS), PODKIT_STATE_DIR=str(state_dir), ANSIBLE_NOCOLOR="1")
    return env


def run_module(module, state_dir, check=False, **args):
    """(result dict or None, stderr text, seconds) of one module process, as Ansible runs it on the target."""
    payload = {"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check)}
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "ansible_collections.podkit.docker.plugins.modules." + module],
                              input=json.dumps(payload), capture_output=True, text=True, env=module_env(state_dir),
                              timeout=MODULE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        return {"failed": True, "msg": "timed out after %ds (killed)" % MODULE_TIMEOUT, "timeout": True}, \
            str(exc.stderr or ""), time.monotonic() - start
    took = time.monotonic() - start
    try:
        return json.loads(proc.stdout), proc.stderr, took
    except ValueError:
        return None, proc.stdout + proc.stderr, took


# ---------------------------------------------------------------------------
# what a file names


def load(path):
    """The file's documents, or None when it is not YAML."""
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    except yaml.YAMLError:
        return None


def pod_specs(doc):
    """(pod spec, namespace, workload name, is a task) of each template in ``doc``."""
    spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
    name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
    namespace = (doc.get("metadata") or {}).get("namespace") if isinstance(doc.get("metadata"), dict) else None
    kind = doc.get("kind")
    template = None
    if kind in WORKLOAD_KINDS + ("Job",):
        template = spec.get("template")
    elif kind == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        yield template["spec"], namespace or "default", name, kind in JOB_KINDS


def containers(spec, init):
    key = "initContainers" if init else "containers"
    return [c for c in (spec.get(key) or []) if isinstance(c, dict)]


def stand_in_plan(docs):
    """{image: ("serve"|"exit", ports)} for every image the file's templates name."""
    plan = {}
    for doc in docs:
        for spec, _ns, _name, task in pod_specs(doc):
            ports = set()
            if not spec.get("hostNetwork"):
                for c in containers(spec, False) + containers(spec, True):
                    for p in c.get("ports") or []:
                        if isinstance(p, dict) and isinstance(p.get("containerPort"), int):
                            ports.add(p["containerPort"])
                    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                        handler = c.get(probe) or {}
                        for kind in ("httpGet", "tcpSocket", "grpc"):
                            port = (handler.get(kind) or {}).get("port")
                            if isinstance(port, int):
                                ports.add(port)
            for init in (False, True):
                for c in containers(spec, init):
                    image = c.get("image")
                    if not isinstance(image, str):
                        continue
                    mode = "exit" if (task or init) else "serve"
                    old_mode, old_ports = plan.get(image, (mode, set()))
                    plan[image] = ("serve" if "serve" in (mode, old_mode) else "exit", old_ports | ports)
    return plan


def config_refs(docs):
    """{("ConfigMap"|"Secret", name): set of keys asked for} the file's templates name."""
    refs = {}

    def want(kind, name, key=None):
        if isinstance(name, str) and name:
            keys = refs.setdefault((kind, name), set())
            if key:
                keys.add(str(key))

    for doc in docs:
        for spec, _ns, _name, _task in pod_specs(doc):
            for c in containers(spec, False) + containers(spec, True):
                for env in c.get("env") or []:
                    source = (env or {}).get("valueFrom") or {}
                    for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                        ref = source.get(field)
                        if isinstance(ref, dict) and not ref.get("optional"):
                            want(kind, ref.get("name"), ref.get("key"))
                for env in c.get("envFrom") or []:
                    for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                        ref = (env or {}).get(field)
                        if isinstance(ref, dict) and not ref.get("optional"):
                            want(kind, ref.get("name"))
            for volume in spec.get("volumes") or []:
                volume = volume or {}
                sources = [volume] + [s for s in ((volume.get("projected") or {}).get("sources") or []) if s]
                for source in sources:
                    cm, secret = source.get("configMap"), source.get("secret")
                    for kind, ref, name_key in (("ConfigMap", cm, "name"), ("Secret", secret, "secretName"),
                                                ("Secret", secret, "name")):
                        if isinstance(ref, dict) and not ref.get("optional") and ref.get(name_key):
                            want(kind, ref[name_key])
                            for item in ref.get("items") or []:
                                want(kind, ref[name_key], (item or {}).get("key"))
    return refs


def stand_in_configs(docs):
    """ConfigMap/Secret documents for what the file names and does not hold, with the keys it asks for."""
    held = set((d.get("kind"), (d.get("metadata") or {}).get("name")) for d in docs
               if d.get("kind") in ("ConfigMap", "Secret") and isinstance(d.get("metadata"), dict))
    made = []
    for (kind, name), keys in sorted(config_refs(docs).items()):
        if (kind, name) in held:
            continue
        data = dict((k, "standin") for k in sorted(keys)) or {"STANDIN": "standin"}
        made.append({"apiVersion": "v1", "kind": kind, "metadata": {"name": name},
                     "stringData" if kind == "Secret" else "data": data})
    return made


def workload_keys(docs):
    """(namespace, name) of the file's workloads: two files naming the same one do not run side by side."""
    return set((ns, name) for d in docs for _s, ns, name, _t in pod_specs(d))


def namespaces(docs):
    """The namespaces of the file's workloads (each stand-in config goes into each)."""
    return sorted(set(ns for d in docs for _s, ns, _n, _t in pod_specs(d))) or ["default"]


# ---------------------------------------------------------------------------
# stand-in images


class StandIns:
    def __init__(self, work):
        self.work = work
        self.tags = []
        self.built = []
        self.untaggable = {}

    def build(self, mode, ports):
        context = self.work / ("standin-%s-%s" % (mode, "-".join(str(p) for p in sorted(ports)) or "none"))
        tag = "%s:%s" % (STANDIN_REPO, hashlib.sha1(context.name.encode()).hexdigest()[:12])
        if tag in self.built:
            return tag
        context.mkdir(parents=True, exist_ok=True)
        (context / "standin").write_text(SERVE if mode == "serve" else EXIT)
        (context / "standin-ok").write_text(OK)
        (context / "standin-ports").write_text(" ".join(str(p) for p in sorted(ports)) + "\n")
        (context / "Dockerfile").write_text(
            "FROM %s\nCOPY standin standin-ok standin-ports /\nRUN chmod 0755 /standin /standin-ok\n"
            "LABEL %s=%s\nENTRYPOINT [\"/standin\"]\nCMD []\n" % (BUSYBOX_IMAGE, STANDIN_LABEL, mode))
        done = subprocess.run(["docker", "build", "-q", "-t", tag, str(context)], capture_output=True, text=True,
                              timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError("stand-in build failed: %s" % done.stderr)
        self.built.append(tag)
        return tag

    def give(self, plan):
        """Tag a stand-in under each image name (``untaggable``: those docker cannot tag, and why)."""
        for image, (mode, ports) in sorted(plan.items()):
            name = image if (":" in image.rsplit("/", 1)[-1] or "@" in image) else image + ":latest"
            if docker("image", "inspect", name).returncode == 0 and name not in self.tags:
                # An image of that name that is not a stand-in is the host's own: never replaced.
                self.untaggable[image] = "%s (an image of that name exists here: not replaced)" % image
                continue
            done = docker("tag", self.build(mode, ports), name)
            if done.returncode == 0:
                self.tags.append(name)
            else:
                self.untaggable[image] = "%s (%s)" % (image, done.stderr.strip().splitlines()[-1] if done.stderr else "?")

    def take_back(self):
        for name in self.tags:
            docker("rmi", name)
        self.tags = []

    def remove_all(self):
        self.take_back()
        for tag in self.built:
            docker("rmi", tag)
        self.built = []


def remove_stand_in_tags():
    """Every tag of every stand-in image on the host (by the label the stand-ins are built with): what an
    interrupted run left."""
    for line in docker("images", "--filter", "label=%s" % STANDIN_LABEL, "--format",
                       "{{.Repository}}:{{.Tag}}").stdout.splitlines():
        docker("rmi", line.strip())
    ids = set(docker("images", "-q", "--filter", "label=%s" % STANDIN_LABEL).stdout.split())
    for image in sorted(ids):
        docker("rmi", "-f", image)


# ---------------------------------------------------------------------------
# guard and cleanup


class Guard:
    def __init__(self, state_dir):
        self.env = dict(os.environ, PODKIT_GUARD_PYTHON=sys.executable, PODKIT_GUARD_PYTHONPATH=str(COLLECTIONS),
                        PODKIT_GUARD_STATE_DIR=str(state_dir), PODKIT_GUARD_PIDFILE=str(state_dir / "supervisor.pid"),
                        PODKIT_GUARD_LOG=str(state_dir / "guard.log"), PODKIT_GUARD_RESYNC="30")
        self.state_dir = state_dir

    def script(self, action):
        return subprocess.run(["sh", str(GUARD_SCRIPT), action], env=self.env, capture_output=True, text=True,
                              timeout=60, check=False)

    def start(self):
        done = self.script("start")
        if done.returncode != 0:
            raise RuntimeError("guard did not start: %s%s" % (done.stdout, done.stderr))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if json.loads((self.state_dir / "guard.json").read_text()).get("running"):
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError("guard status never said running")

    def stop(self):
        self.script("stop")


def leftovers(docs):
    """Containers labelled as pods of the file's workloads (or Jobs of its CronJobs), by namespace and owner."""
    owners = set()
    for doc in docs:
        for _spec, ns, name, _task in pod_specs(doc):
            if name:
                owners.add((ns, name))
    found = []
    for ns, name in sorted(owners):
        out = docker("ps", "-aq", "--filter", "label=io.podkit.namespace=%s" % ns).stdout.split()
        for cid in out:
            inspected = docker("inspect", "--format", "{{json .Config.Labels}}", cid).stdout.strip()
            try:
                labels = json.loads(inspected) or {}
            except ValueError:
                continue
            owner = labels.get("io.podkit.owner-name") or ""
            if owner == name or owner.startswith(name + "-"):
                found.append((cid, labels.get("io.podkit.pod") or ""))
    return found


def sweep(docs):
    """Remove what podkit's own removal left of the file's workloads; what was swept, for the report."""
    swept = []
    pods = set()
    for _cid, pod in leftovers(docs):
        pods.add(pod)
    for pod in sorted(p for p in pods if p):
        # Every container of the pod: its members carry the pod's label, not the owner's.
        for cid in docker("ps", "-aq", "--filter", "label=io.podkit.pod=%s" % pod).stdout.split():
            docker("rm", "-f", "-v", cid)
            swept.append("container %s of pod %s" % (cid[:12], pod))
        for root in ("/run/podkit/volumes", "/run/podkit/secrets"):
            shutil.rmtree(os.path.join(root, pod), ignore_errors=True)
        try:
            os.unlink("/run/podkit/%s.lock" % pod)
        except OSError:
            pass
        for hierarchy in pathlib.Path("/sys/fs/cgroup").iterdir():
            for path in sorted(hierarchy.glob("**/%s" % pod), key=lambda p: len(p.parts), reverse=True):
                try:
                    os.rmdir(str(path))
                except OSError:
                    pass
    for doc in docs:
        for _spec, _ns, name, _task in pod_specs(doc):
            claims = [((c or {}).get("metadata") or {}).get("name") for c in
                      ((doc.get("spec") or {}).get("volumeClaimTemplates") or [])]
            for claim in claims:
                if not claim or not name:
                    continue
                for vol in docker("volume", "ls", "-q", "--filter", "label=io.podkit.claim").stdout.split():
                    if vol.startswith("%s-%s-" % (claim, name)):
                        docker("volume", "rm", "-f", vol)
                        swept.append("claim volume %s" % vol)
    return swept


def remove_networks(files, before):
    """The podkit-<namespace> networks of the files' namespaces this run made, once no container uses them."""
    for ns in sorted(set(ns for p in files for ns in namespaces(load(p) or []))):
        net = "podkit-%s" % ns
        if net in before or docker("network", "inspect", net).returncode != 0:
            continue
        if docker("network", "inspect", "--format", "{{len .Containers}}", net).stdout.strip() == "0":
            docker("network", "rm", net)


# ---------------------------------------------------------------------------
# one file


def crashed(result, stderr):
    text = (result or {}).get("msg", "") + (result or {}).get("module_stderr", "") + stderr
    return result is None or "Traceback (most recent call last)" in text


def measure(path, state_dir, stand_ins):
    docs = load(path)
    outcome = dict(file=path.name, kinds=[], steps={}, notes=[])
    entry_docs = None
    if docs is not None:
        outcome["kinds"] = sorted(set(str(d.get("kind")) for d in docs if d.get("kind") in WORKLOAD_KINDS + JOB_KINDS))
        untaggable = [i for i in stand_in_plan(docs) if i in stand_ins.untaggable]
        if untaggable:
            outcome["notes"].append("no stand-in for: " + "; ".join(stand_ins.untaggable[i] for i in untaggable))
        configs = stand_in_configs(docs)
        if configs:
            outcome["notes"].append("stand-in %s" % ", ".join("%s %s" % (c["kind"], c["metadata"]["name"]) for c in configs))
            extra = []
            for ns in namespaces(docs):
                for c in configs:
                    extra.append(dict(c, metadata=dict(c["metadata"], namespace=ns)))
            entry_docs = extra
    given = path
    if entry_docs:
        # The stand-in ConfigMaps/Secrets follow the file's own text, in a copy beside it: a workload's
        # configs are looked up among the documents of its own manifest.
        given = state_dir.parent / "given" / ("%s__%s" % (path.parent.name, path.name))
        given.parent.mkdir(exist_ok=True)
        given.write_text(path.read_text().rstrip("\n") + "\n---\n" + yaml.safe_dump_all(entry_docs))
    entries = [{"manifest_file": str(given)}]
    # A Job's retries back off as Kubernetes' do (10 s doubling): backoffLimit 6 takes about 11 minutes to fail.
    tasks = set(outcome["kinds"]) & set(JOB_KINDS)
    common = dict(sandbox_image=PAUSE_IMAGE, pull="never", wait_timeout=JOB_WAIT if tasks else 90)
    try:
        for step, check in (("check", True), ("run", False), ("rerun", False)):
            result, stderr, took = run_module("pods", state_dir, check=check, pods=entries, **common)
            info = dict(seconds=round(took, 1), changed=(result or {}).get("changed"),
                        failed=bool((result or {}).get("failed")) or result is None,
                        msg=(result or {}).get("msg") or "")
            if result is not None:
                info["workloads"] = dict((k, dict((f, v.get(f)) for f in ("failed", "msg", "job", "cronjob", "changed")
                                                  if f in v)) for k, v in (result.get("workloads") or {}).items())
                info["warnings"] = list(result.get("warnings") or [])
                if step == "rerun" and result.get("changed"):
                    info["actions"] = list(result.get("actions") or [])[:20]
            outcome["steps"][step] = info
            if crashed(result, stderr):
                outcome["class"] = "crashed"
                outcome["detail"] = (stderr or info["msg"])[-2000:]
                return outcome
            if info["failed"] and not (step == "run" and job_failed_by_its_rules(info)):
                break
        outcome["class"] = classify(outcome)
        return outcome
    finally:
        result, stderr, _took = run_module("pods", state_dir, pods=[dict(e, state="absent") for e in entries],
                                           remove_claims=True, **common)
        if crashed(result, stderr):
            outcome["notes"].append("removal crashed: %s" % (stderr or "")[-500:])
        elif (result or {}).get("failed"):
            outcome["notes"].append("removal failed: %s" % result.get("msg"))
        if docs is not None:
            swept = sweep(docs)
            if swept:
                outcome["notes"].append("swept after podkit's removal: %s" % ", ".join(swept))


# Why a file accepted by podkit did not converge here, from the failed run's message: these are limits of this
# machine (no registry, busybox stand-ins, a sandboxed engine); anything else is podkit's to look at.
WHY = (
    ("needs a pull (imagePullPolicy Always or a :latest image; no registry here)", re.compile(r"pulling it failed")),
    ("the stand-in lacks the file's command",
     re.compile(r"executable file not found|could not start|exited 127|exited 126|no such file or directory", re.I)),
    ("not Ready on the stand-in (its probe needs the real application)", re.compile(r"did not become Ready")),
    ("this machine refuses the privileges the file asks (privileged, host namespaces, capabilities)",
     re.compile(r"operation not permitted", re.I)),
)


def why_not(message):
    for reason, pattern in WHY:
        if pattern.search(message or ""):
            return reason
    return "podkit (to look at)"


def job_failed_by_its_rules(info):
    """The run made a file's Jobs and each failed under its own rules (backoffLimit, a deadline, a policy)."""
    jobs = [w for w in (info.get("workloads") or {}).values() if w.get("job") is not None]
    return bool(jobs) and all((w.get("job") or {}).get("phase") == "Failed" for w in jobs)


def classify(outcome):
    steps = outcome["steps"]
    check = steps.get("check") or {}
    if check.get("failed"):
        outcome["names_field"] = bool(FIELD.search(check.get("msg") or ""))
        return "refused"
    run, rerun = steps.get("run") or {}, steps.get("rerun") or {}
    if run.get("failed"):
        if job_failed_by_its_rules(run) and rerun.get("changed") is False and job_failed_by_its_rules(rerun):
            outcome["why"] = why_not(run.get("msg"))
            return "ran-and-failed"
        outcome["why"] = why_not(run.get("msg"))
        return "not-converged"
    if rerun.get("failed"):
        outcome["why"] = why_not(rerun.get("msg"))
        return "not-converged"
    if rerun.get("changed") is not False:
        return "not-converged (re-run changed)"
    return "converged"


# ---------------------------------------------------------------------------
# report


def table(outcomes, sources):
    lines = ["| file | source (repo, path, commit) | kinds | outcome | detail |", "|---|---|---|---|---|"]
    for o in outcomes:
        src = sources.get(o["path_key"], ("?", "?", "?"))
        steps = o.get("steps") or {}
        failed = [s for s in ("check", "run", "rerun") if (steps.get(s) or {}).get("failed")]
        detail = ""
        if failed:
            detail = "%s: %s" % (failed[0], (steps[failed[0]].get("msg") or "")[:600])
        elif o.get("class") == "crashed":
            detail = o.get("detail", "")[-600:]
        elif "rerun" in steps:
            detail = "check %.0fs, run %.0fs, re-run %.0fs (changed=%s)" % (
                steps["check"]["seconds"], steps["run"]["seconds"], steps["rerun"]["seconds"], steps["rerun"]["changed"])
        if o.get("why"):
            detail = "[%s] %s" % (o["why"], detail)
        if o.get("names_field") is not None:
            detail = ("[names the field] " if o["names_field"] else "[does NOT name a field] ") + detail
        if o.get("notes"):
            detail += " <br>notes: " + "; ".join(o["notes"])
        lines.append("| %s | %s %s %s | %s | %s | %s |" % (
            o["file"], src[0], src[1], src[2][:12], ",".join(o.get("kinds") or []) or "-", o.get("class"),
            detail.replace("|", "\\|").replace("\n", " ")))
    return "\n".join(lines)


def counts(outcomes):
    out = {}
    for o in outcomes:
        key = o.get("class", "?")
        if key == "refused":
            key = "refused, names the field" if o.get("names_field") else "refused, names no field"
        elif o.get("why"):
            key = "%s: %s" % (key, o["why"])
        out[key] = out.get(key, 0) + 1
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("directory", type=pathlib.Path)
    parser.add_argument("--sources", type=pathlib.Path, help="tab-separated: file, repo, path, commit")
    parser.add_argument("--output", type=pathlib.Path, help="a Markdown report (default: print only)")
    parser.add_argument("--only", nargs="*", help="file names to run (default: all)")
    parser.add_argument("--cleanup-only", action="store_true",
                        help="remove what an interrupted run left of the files' workloads and the stand-in images")
    parser.add_argument("--parallel", type=int, default=4,
                        help="files run side by side (those naming the same workload one after the other)")
    parser.add_argument("--report", type=pathlib.Path, help="write the table again from a run's JSON (no run)")
    args = parser.parse_args(argv)
    if args.report:
        outcomes = json.loads(args.report.read_text())
        for o in outcomes:
            if o.get("class") == "refused":
                o["names_field"] = bool(FIELD.search((o["steps"].get("check") or {}).get("msg") or ""))
        text = render(outcomes, read_sources(args.sources), None)
        print(text)
        if args.output:
            args.output.write_text(text)
        return 0
    files = sorted(p for p in args.directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    if args.only:
        files = [p for p in files if p.name in args.only]
    sources = read_sources(args.sources)
    work = pathlib.Path(tempfile.mkdtemp(prefix="podkit-realfiles-"))
    state_dir = work / "state"
    state_dir.mkdir()
    stand_ins = StandIns(work)
    guard = Guard(state_dir)
    outcomes = []
    started = time.monotonic()
    # One stand-in per image name for the whole run (files run side by side share them): "serve" when any file
    # runs the image as a long-running container, the union of the ports the files name.
    plan = {}
    for path in files:
        for image, (mode, ports) in stand_in_plan(load(path) or []).items():
            old_mode, old_ports = plan.get(image, (mode, set()))
            plan[image] = ("serve" if "serve" in (mode, old_mode) else "exit", old_ports | ports)
    lock = threading.Lock()
    busy = set()

    def one(path):
        if STOPPING.is_set():
            return dict(file=path.name, path_key=str(path.relative_to(args.directory)), kinds=[], steps={}, notes=[],
                        **{"class": "not run (stopped)"})
        keys = workload_keys(load(path) or [])
        while True:
            with lock:
                if not keys & busy:
                    busy.update(keys)
                    break
            time.sleep(1)
        try:
            outcome = measure(path, state_dir, stand_ins)
        finally:
            with lock:
                busy.difference_update(keys)
        outcome["path_key"] = str(path.relative_to(args.directory))
        print("%s: %s %s" % (outcome["path_key"], outcome.get("class"), json.dumps(dict(
            (k, (v.get("failed"), v.get("changed"), v.get("seconds"))) for k, v in outcome["steps"].items()))),
            flush=True)
        return outcome

    if not args.cleanup_only and docker("images", "-q", "--filter", "label=%s" % STANDIN_LABEL).stdout.strip():
        parser.error("stand-in images of an earlier run are on the host: run with --cleanup-only first")
    networks_before = set(docker("network", "ls", "--format", "{{.Name}}").stdout.split())
    # ^C or SIGTERM: the files running finish (each bounded by MODULE_TIMEOUT) and are cleaned up, none starts.
    signal.signal(signal.SIGTERM, lambda *_: STOPPING.set())
    signal.signal(signal.SIGINT, lambda *_: STOPPING.set())
    if args.cleanup_only:
        for path in files:
            docs = load(path)
            run_module("pods", state_dir, pods=[{"manifest_file": str(path), "state": "absent"}],
                       sandbox_image=PAUSE_IMAGE, pull="never", remove_claims=True)
            print("%s: swept %s" % (path.name, sweep(docs or [])))
        remove_stand_in_tags()
        print("networks of the files' namespaces left to check by hand:", sorted(
            n for n in docker("network", "ls", "--format", "{{.Name}}").stdout.split()
            if n in set("podkit-%s" % ns for p in files for ns in namespaces(load(p) or []))))
        shutil.rmtree(str(work), ignore_errors=True)
        return 0
    guard.start()
    try:
        stand_ins.give(plan)
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.parallel) as pool:
            outcomes = list(pool.map(one, files))
    finally:
        guard.stop()
        remove_networks(files, networks_before)
        stand_ins.remove_all()
        shutil.rmtree(str(work), ignore_errors=True)
    text = render(outcomes, sources, time.monotonic() - started)
    print(text)
    if args.output:
        args.output.write_text(text)
    (pathlib.Path(args.output).with_suffix(".json") if args.output else work.with_suffix(".json")).write_text(
        json.dumps(outcomes, indent=1, default=str))
    return 0


def read_sources(path):
    sources = {}
    if path:
        for line in path.read_text().splitlines()[1:]:
            parts = line.split("\t")
            if len(parts) == 4:
                sources[parts[0]] = tuple(parts[1:])
    return sources


def render(outcomes, sources, seconds):
    report = ["# podkit real-files run, %s" % datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), "",
              "%d files%s. Every image was a local stand-in built from %s (nothing can be pulled here)." % (
                  len(outcomes), ", %.0f s" % seconds if seconds is not None else "", BUSYBOX_IMAGE), ""]
    by_kind = {}
    for o in outcomes:
        parts = pathlib.PurePath(o["path_key"]).parts
        group = parts[0] if len(parts) > 1 else ("jobs" if set(o.get("kinds") or []) & set(JOB_KINDS) else "workloads")
        by_kind.setdefault(group, []).append(o)
    for group, items in sorted(by_kind.items()):
        report.append("- %s (%d files): %s" % (group, len(items), ", ".join(
            "%s %d" % kv for kv in sorted(counts(items).items()))))
    report += ["", table(outcomes, sources), ""]
    return "\n".join(report)


if __name__ == "__main__":
    sys.exit(main())
