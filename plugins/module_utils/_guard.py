# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""podkit-guard: the pods recorded on this host kept whole between Ansible runs.

Run as ``python -m ansible_collections.podkit.docker.plugins.module_utils._guard`` (the host role
installs it as a systemd service, or as a supervised background process where PID 1 is not
systemd). The guard is the kubelet's sync loop in small:

1. Connect to the engine; while it does not answer, retry every second.
2. Resync: converge every recorded pod (``_record``) with the very ``converge_pod`` a playbook
   runs, ``record`` False (the record stays what the playbook asked). At start, after every
   reconnect (dockerd restarted: its event stream ended) and every ``--resync`` seconds.
3. Between resyncs, follow Docker's event stream for containers labelled ``io.podkit.pod``
   (start, die, destroy, health_status): the pod an event names is converged again, once per
   burst of events (``DEBOUNCE``). A die is held back a little longer (``DIE_HOLD``), and
   acted on only if the engine still answers a ping on a new connection: an engine that stops
   kills every container, and nothing is repaired into it; its event stream ends, and the
   resync after the reconnect repairs what it left.
4. A pod without a record is never touched, nor is a container without podkit's labels
   (``converge_pod`` only acts on those); ``state: absent`` deletes the record first, so a
   removed pod is never brought back. A recorded ``stopped`` pod is left as it is.
5. Guard and playbooks serialise through the pod lock ``converge_pod`` takes.
6. A member that keeps stopping and that the guard starts again is backed off as the kubelet
   backs off a crash loop: the first start at once, each further one 10 s later, doubling to
   300 s, reset after 10 minutes without one. Rebuilding a pod (a new sandbox's namespaces, a
   missing member) is never delayed.
7. Probes (``_probes``): each running member's (and native sidecar's) startup, liveness and readiness probes are run
   on their periods; a startup probe gates the others; a liveness (or startup) probe failing
   ``failureThreshold`` times in a row restarts the container, the first time at once, then
   after the crash-loop backoff above (the container is stopped meanwhile); readiness is kept
   per container for pod_facts.
8. CronJobs (``_cronjobs.CronKeeper``), about once a second: each recorded CronJob's active Jobs advanced by
   the Job controller the pods module runs (_jobs), the most recent missed schedule started (at most one
   catch-up, within startingDeadlineSeconds, after concurrencyPolicy), the history beyond its limits removed.
9. Every repair is logged with pod, container, action and reason (stdout, which journald keeps
   under systemd; ``--log-file`` elsewhere); what the guard last did is kept in
   ``<state dir>/guard.json`` (running pid, version, last sync, last repair and repair count per
   container) for ``pod_facts``.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import sys
import threading
import time
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._cronjobs import CronKeeper
from ansible_collections.podkit.docker.plugins.module_utils._docker import (
    DEFAULT_DOCKER_HOST, DockerError, connect, follow_events)
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._jobs import JobRun, job_pods
from ansible_collections.podkit.docker.plugins.module_utils._labels import (
    LABEL_CONTAINER, LABEL_NAMESPACE, LABEL_OWNER_KIND, LABEL_OWNER_NAME, LABEL_POD, LABEL_ROLE, ROLE_MEMBER,
    ROLE_SANDBOX)
from ansible_collections.podkit.docker.plugins.module_utils._lock import job_lock, pod_lock
from ansible_collections.podkit.docker.plugins.module_utils._probes import Prober, ProbeState
from ansible_collections.podkit.docker.plugins.module_utils._reconcile import Action, converge_pod
from ansible_collections.podkit.docker.plugins.module_utils._record import (
    read_record, record_path, recorded_for, recorded_pods, state_dir)
from ansible_collections.podkit.docker.plugins.module_utils._services import (
    apply_attach, ensure_network, network_name, plan_network, services_of, wanted_aliases)
from ansible_collections.podkit.docker.plugins.module_utils._spec import pod_spec_from_params, running_containers
from ansible_collections.podkit.docker.plugins.module_utils._status import write_guard_status
from ansible_collections.podkit.docker.plugins.module_utils._wanted import RUNNING_STATES
from ansible_collections.podkit.docker.plugins.module_utils._workloadfacts import (
    delete_workload_record, read_workload_records, workload_key, write_workload_record)
from ansible_collections.podkit.docker.plugins.module_utils._workloads import follow_job, parse_workload

# The collection's version (galaxy.yml), set by `make release`; podkit-guard reports it.
VERSION = "1.0.0"
EVENTS = ("start", "die", "destroy", "health_status")
RESYNC_SECONDS = 60
DEBOUNCE = 0.2
# A die is acted on after this hold: when the engine itself is stopping, its event stream ends (or
# its ping fails) within it, and nothing is repaired into a dying engine.
DIE_HOLD = 1.0
# Why the resync after (re)connecting runs: what it starts is no crash loop.
CONNECTED = "connected"
PING_TIMEOUT = 3
RETRY_SECONDS = 1.0
PROBE_TICK = 0.5
CRON_TICK = 1.0
# A workload pod's Service names are compared with Docker's at least this often, even when nothing the guard
# sees changed (a pods run may have set them meanwhile).
ALIAS_RESYNC = 15.0
BACKOFF_FIRST = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET = 600.0

log = logging.getLogger("podkit-guard")


class Dirty(NamedTuple):
    """A pod an event named: why, when its repair may run, whether a container of it died."""
    why: str
    at: float
    died: bool


def mark(old: Optional[Dirty], why: str, at: float, died: bool) -> Dirty:
    """A pod named by one more event: repaired once, after the last hold of the burst."""
    if old is None:
        return Dirty(why, at, died)
    return Dirty(old.why, max(old.at, at), old.died or died)


def due_pods(dirty: Dict[str, Dirty], holds: Dict[str, float], now: float) -> List[str]:
    """The pods whose repair may run now: past their events' hold and their backoff."""
    return sorted(pod for pod, entry in dirty.items() if max(entry.at, holds.get(pod, 0.0)) <= now)


def backoff_delay(repairs: int) -> float:
    """Seconds to wait before the next repair of a pod repaired ``repairs`` times in a row."""
    if repairs <= 0:
        return 0.0
    return min(BACKOFF_FIRST * (2 ** (repairs - 1)), BACKOFF_MAX)


class PodRecord:
    """What the guard remembers of one pod between repairs."""

    def __init__(self) -> None:
        self.repairs = 0            # crash restarts in a row, each within BACKOFF_RESET of the one before
        self.failures = 0           # repairs in a row that failed (the engine or the host refused)
        self.last_repair = 0.0
        self.not_before = 0.0
        self.containers: Dict[str, Dict[str, Any]] = {}
        self.spec: Any = None
        self.spec_mtime = 0.0
        self.probes: Dict[Tuple[str, str, str], ProbeState] = {}   # (container, instance, kind)
        self.restarts: Dict[str, Dict[str, Any]] = {}             # container -> count, last, start_at, id


class Guard:
    def __init__(self, docker_host: str = DEFAULT_DOCKER_HOST, state: Optional[str] = None,
                 resync: float = RESYNC_SECONDS, timeout: int = 60) -> None:
        self.docker_host = docker_host
        self.state_dir = state_dir(state)
        self.resync_seconds = resync
        self.timeout = timeout
        self.client: Any = None
        self.pods: Dict[str, PodRecord] = {}
        self.events: "queue.Queue[Tuple[str, Any]]" = queue.Queue()
        self.stopping = threading.Event()
        self.started = time.time()
        self.last_sync: Optional[float] = None
        self.syncs = 0
        self.cron = CronKeeper(self.state_dir, self.cron_run, self.cron_save, self.cron_remove)
        self.next_cron = 0.0
        self.aliases: Dict[str, Tuple[Tuple[str, Tuple[str, ...]], float]] = {}   # pod -> (sandbox, names), when
        self.prober = Prober(lambda: self.client.api, backoff_delay, BACKOFF_RESET, log)

    # -- the loop

    def run(self) -> None:
        log.info("podkit-guard %s starting: docker_host %s, records in %s, resync every %ss",
                 VERSION, self.docker_host, os.path.join(self.state_dir, "pods"), self.resync_seconds)
        self.write_status()
        while not self.stopping.is_set():
            if not self.connect():
                self.stopping.wait(RETRY_SECONDS)
                continue
            log.info("connected to the engine at %s: resyncing every recorded pod", self.docker_host)
            self.watch()
            self.resync(CONNECTED)
            self.loop()
        self.write_status(running=False)
        log.info("podkit-guard stopped")

    def connect(self) -> bool:
        try:
            self.client = connect(self.docker_host, self.timeout)
            self.client.api.ping()
            return True
        except (PodkitError, DockerError) as exc:
            log.debug("the engine does not answer yet: %s", exc)
            self.client = None
            return False

    def watch(self) -> None:
        """Follow the event stream in a thread; its end (the engine went away) is an event too."""
        client = self.client

        def follow() -> None:
            try:
                for event in follow_events(self.docker_host, self.timeout, {"type": "container", "label": [LABEL_POD]}):
                    self.events.put(("event", event))
                    if self.stopping.is_set() or self.client is not client:
                        break
            except Exception as exc:  # pylint: disable=broad-except
                log.debug("event stream ended: %s", exc)
            self.events.put(("lost", client))
        threading.Thread(target=follow, name="podkit-guard-events", daemon=True).start()

    def loop(self) -> None:
        """Events and timers until the event stream of this connection ends."""
        dirty: Dict[str, Dirty] = {}
        next_resync = time.time() + self.resync_seconds
        while not self.stopping.is_set():
            now = time.time()
            holds = dict((pod, self.pods.setdefault(pod, PodRecord()).not_before) for pod in dirty)
            due = due_pods(dirty, holds, now)
            wake = min([next_resync, now + PROBE_TICK] + [max(d.at, holds[p]) for p, d in dirty.items()])
            try:
                kind, value = self.events.get_nowait() if due else self.events.get(timeout=max(0.01, wake - now))
            except queue.Empty:
                kind, value = "tick", None
            if kind == "lost":
                if value is self.client:
                    log.info("lost the engine's event stream: reconnecting, then resyncing every pod")
                    self.client = None
                    return
                continue
            if kind == "event":
                pod, why, died = self.pod_of(value)
                if pod is not None:
                    dirty[pod] = mark(dirty.get(pod), why, time.time() + (DIE_HOLD if died else DEBOUNCE), died)
                continue        # the whole burst is read before anything is repaired
            if any(dirty[pod].died for pod in due) and not self.engine_answers():
                # A container died and the engine does not answer: it is stopping (or gone). Nothing
                # is repaired into it; the resync after the reconnect looks at every pod.
                log.info("containers died and the engine does not answer: waiting for it, then resyncing")
                self.client = None
                return
            for pod in due:
                entry = dirty.pop(pod)
                if not self.repair(pod, entry.why):
                    dirty[pod] = entry
            if time.time() >= next_resync:
                self.resync("periodic")
                next_resync = time.time() + self.resync_seconds
            self.probe_all()
            self.cron_tick()

    def engine_answers(self) -> bool:
        """Whether the engine answers a ping on a new connection (the event stream's may linger)."""
        try:
            client = connect(self.docker_host, PING_TIMEOUT)
            try:
                client.api.ping()
            finally:
                client.close()
            return True
        except Exception:  # pylint: disable=broad-except
            return False

    @staticmethod
    def pod_of(event: Dict[str, Any]) -> Tuple[Optional[str], str, bool]:
        """(pod, why, whether a container died) of one of Docker's events."""
        action = str(event.get("Action") or event.get("status") or "")
        verb = action.split(":", maxsplit=1)[0]
        if verb not in EVENTS:
            return None, "", False
        attrs = (event.get("Actor") or {}).get("Attributes") or {}
        pod = attrs.get(LABEL_POD)
        what = attrs.get(LABEL_CONTAINER) or attrs.get(LABEL_ROLE) or attrs.get("name") or "?"
        return pod, "event %s %s" % (action, what), verb == "die"

    # -- repairs

    def resync(self, why: str) -> None:
        for pod, params in recorded_pods(self.state_dir):
            if self.stopping.is_set() or self.client is None:
                break
            if not recorded_for(params, self.docker_host):
                continue
            memory = self.pods.setdefault(pod, PodRecord())
            if why == CONNECTED:
                # A new engine (or the guard's start): what failed or was held against the old one
                # is looked at afresh; the crash-loop count is kept.
                memory.failures, memory.not_before = 0, 0.0
            if memory.not_before > time.time():
                continue
            self.repair(pod, "resync (%s)" % why)
        self.last_sync = time.time()
        self.syncs += 1
        self.write_status()

    def record(self, pod: str) -> Optional[Dict[str, Any]]:
        """The recorded parameters of ``pod`` when it is recorded for the engine this guard watches."""
        params = read_record(pod, self.state_dir)
        return params if params is not None and recorded_for(params, self.docker_host) else None

    def repair(self, pod: str, why: str) -> bool:
        """Converge ``pod`` to its record; False when it must be tried again (the engine refused).

        The record is read under the pod lock, so a playbook that holds it while applying a new
        spec is never undone with the spec it replaces."""
        if self.record(pod) is None:
            return True         # no record: not ours (or removed by state absent); its lock is not taken
        memory = self.pods.setdefault(pod, PodRecord())
        try:
            with pod_lock(pod, self.client.api) as lock:
                params = self.record(pod)
                if params is None or (params.get("state") or "present") not in RUNNING_STATES:
                    return True     # removed by state absent meanwhile, or a stopped pod: it stays so
                run = dict(params, state="present", wait=False, docker_host=self.docker_host, timeout=self.timeout)
                applied: List[Action] = []
                converge_pod(self.client, run, False, record=False, held=lock, applied=applied)
        except Exception as exc:  # pylint: disable=broad-except
            # PodkitError or DockerError (an image gone, a port taken), or the engine going away
            # mid-converge as whatever the SDK raises: tried again, backed off as the kubelet backs
            # off a pod it cannot sync (1 s, then 10 s doubling to 300 s).
            memory.failures += 1
            delay = RETRY_SECONDS if memory.failures == 1 else backoff_delay(memory.failures - 1)
            text = exc.msg if isinstance(exc, PodkitError) else "%s: %s" % (exc.__class__.__name__, exc)
            log.warning("pod=%s repair failed (%s): %s; trying again in %ss", pod, why, text, delay)
            memory.not_before = time.time() + delay
            return False
        memory.failures = 0
        if not applied:
            return True
        now = time.time()
        crashed = False
        for action in applied:      # the steps converge_pod applied, as data (Action), in plan order
            container, kind, reason = action.container, action.kind, action.reason
            if container is None:
                # A step on no container (the cgroup, a volume, files, a pull): logged, counted against none.
                log.info("repair pod=%s step=%s trigger=%s", pod, action, why)
                continue
            log.info("repair pod=%s container=%s action=%s reason=%s trigger=%s",
                     pod, container, kind, reason or "-", why)
            entry = memory.containers.setdefault(container, dict(repairs=0))
            entry["repairs"] += 1
            entry["last_repair"] = dict(time=now, action=kind, reason=reason, trigger=why)
            # A member that stopped on its own and is started again: the crash loop to back off.
            # A rebuilt pod (new sandbox, missing member) is repaired at once, every time, as is a
            # member a restarted engine failed to restore (found by the resync after the reconnect).
            crashed = crashed or kind == "start" and container != "sandbox" and why != "resync (%s)" % CONNECTED
        if crashed:
            memory.repairs = memory.repairs + 1 if now - memory.last_repair < BACKOFF_RESET else 1
            memory.last_repair = now
            memory.not_before = now + backoff_delay(memory.repairs)
            if memory.repairs > 1:
                log.info("pod=%s crash-looping (%d restarts in a row): next repair not before %ds",
                         pod, memory.repairs, backoff_delay(memory.repairs))
        self.write_status()
        return True

    # -- probes

    def probe_all(self) -> None:
        """Run the probes that are due, in every recorded pod that runs; start what backoff held."""
        changed = False
        for pod, _params in recorded_pods(self.state_dir):
            if self.client is None or self.stopping.is_set():
                return
            memory = self.pods.setdefault(pod, PodRecord())
            try:
                changed = self.probe_pod(pod, memory) or changed
            except (PodkitError, DockerError) as exc:
                log.debug("pod=%s probes skipped: %s", pod, exc)
        if changed:
            self.write_status()

    def _spec(self, pod: str, memory: PodRecord) -> Any:
        try:
            mtime = os.stat(record_path(pod, self.state_dir)).st_mtime
        except OSError:
            return None
        if memory.spec is None or mtime != memory.spec_mtime:
            params = self.record(pod)
            if params is None or (params.get("state") or "present") not in RUNNING_STATES:
                return None
            memory.spec, memory.spec_mtime = pod_spec_from_params(params), mtime
        return memory.spec

    def probe_pod(self, pod: str, memory: PodRecord) -> bool:
        spec = self._spec(pod, memory)
        if spec is None:
            return False
        return self.prober.probe_pod(pod, memory, running_containers(spec))

    # -- CronJobs (_cronjobs): their Jobs run by the Job controller the pods module runs (_jobs)

    def cron_tick(self) -> None:
        now = time.time()
        if now < self.next_cron or self.client is None:
            return
        self.next_cron = now + CRON_TICK
        for what, step in (("cronjobs", lambda: self.cron.tick(self.client.api)), ("jobs", self.follow_jobs),
                           ("services", self.keep_aliases)):
            try:
                step()
            except (PodkitError, DockerError, OSError) as exc:
                log.warning("%s: %s", what, getattr(exc, "msg", exc))
            except Exception:  # pylint: disable=broad-except
                # A bug in keeping schedules or Jobs must not stop the guard keeping the pods whole.
                log.exception("%s: unexpected error", what)

    def keep_aliases(self) -> None:
        """Each workload pod's Service names on its namespace's network (_services), as its readiness changes
        between pods runs: a pod that stops being Ready leaves the names, one Ready again (or brought back by a
        repair, on a new sandbox) joins them. Readiness is the guard's own probes' verdict; a pod whose probe
        has given none yet is left as the last run set it."""
        records = [r for r in read_workload_records(self.state_dir).values() if isinstance(r.get("network"), dict)]
        if not records:
            return
        api = self.client.api
        by_pod: Dict[str, List[Dict[str, Any]]] = {}
        for summary in api.containers(all=True, filters={"label": LABEL_POD}):
            labels = summary.get("Labels") or {}
            by_pod.setdefault(labels[LABEL_POD], []).append(dict(summary, Labels=labels))
        now = time.time()
        for record in records:
            kept, namespace = record["network"], record["namespace"]
            network = network_name(namespace)
            services = services_of(kept)
            for pod, containers in sorted(by_pod.items()):
                sandbox = next((c for c in containers if c["Labels"].get(LABEL_ROLE) == ROLE_SANDBOX), None)
                if sandbox is None or sandbox.get("State") != "running" or \
                        sandbox["Labels"].get(LABEL_OWNER_KIND) != record["kind"] or \
                        sandbox["Labels"].get(LABEL_OWNER_NAME) != record["name"] or \
                        (sandbox["Labels"].get(LABEL_NAMESPACE) or "default") != namespace:
                    continue
                ready = self.pod_ready(pod, containers)
                if ready is None:
                    continue
                stateful = (pod, kept["service_name"]) if kept.get("service_name") else None
                wanted = wanted_aliases(kept.get("labels") or {}, namespace, ready, services, stateful)
                seen = (sandbox["Id"], tuple(sorted(wanted)))
                memo = self.aliases.get(pod)
                if memo is not None and memo[0] == seen and now - memo[1] < ALIAS_RESYNC:
                    continue
                attaches = plan_network([(pod, sandbox["Id"], api.inspect_container(sandbox["Id"]), wanted)], network)
                if attaches:
                    ensure_network(api, namespace, False)
                for attach in attaches:
                    apply_attach(api, attach)
                    log.info("pod=%s %s (ready=%s)", pod, attach, ready)
                self.aliases[pod] = (seen, now)

    def pod_ready(self, pod: str, containers: List[Dict[str, Any]]) -> Optional[bool]:
        """Whether the pod is Ready as the guard sees it: every member running, and each one with a readiness
        probe judged Ready by the guard's prober in its current instance (a restarted container is not Ready
        until its probe says so, as the kubelet has it). None: a probe has given no verdict yet."""
        members = dict((c["Labels"].get(LABEL_CONTAINER), c) for c in containers
                       if c["Labels"].get(LABEL_ROLE) == ROLE_MEMBER)
        if not members or any(c.get("State") != "running" for c in members.values()):
            return False
        memory = self.pods.get(pod)
        spec = self._spec(pod, memory) if memory is not None else None
        if spec is None:
            return None
        for container in running_containers(spec):
            if not set(container.probes or {}) & {"readinessProbe", "startupProbe"}:
                continue
            entry = memory.containers.get(container.name) or {}
            if entry.get("ready") is None:
                return None
            member = members.get(container.name)
            if member is None or not entry["ready"] or entry.get("ready_id") not in (None, member["Id"]):
                return False
        return True

    def follow_jobs(self) -> None:
        """The Jobs module runs left going (``wait: false``, or past ``wait_timeout``), and the pods a finished
        Job's ``ttlSecondsAfterFinished`` removes: one step each (_workloads.follow_job), under the Job's lock;
        one a pods run holds is that run's."""
        for key, record in read_workload_records(self.state_dir).items():
            if record.get("kind") != "Job" or not isinstance(record.get("follow"), dict):
                continue
            with job_lock(record["namespace"], record["name"], blocking=False) as held:
                # Read again under the lock: the run that held it may have finished or changed the Job.
                record = read_workload_records(self.state_dir).get(key) if held else None
                if record is None or not isinstance(record.get("follow"), dict):
                    continue
                before = (record.get("job") or {}).get("phase")
                run = follow_job(self.client.api, record, self.converge_items, self.state_dir)
                if run is None:
                    continue
                for op, pods, reason in run.steps:
                    log.info("job=%s %s %s (%s)", key, op, ",".join(pods), reason)
                if run.status is not None and run.status.phase != before:
                    log.info("job=%s %s%s", key, run.status.phase,
                             " (%s: %s)" % (run.status.reason, run.status.message) if run.status.reason else "")

    def cron_run(self, api: Any, record: Dict[str, Any], job: str) -> JobRun:
        """The JobRun of one of a CronJob's Jobs: its jobTemplate named ``job``, started from its record."""
        metadata = dict((record.get("template") or {}).get("metadata") or {}, name=job)
        if record["namespace"] != "default":
            metadata["namespace"] = record["namespace"]
        doc = {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
               "spec": (record.get("template") or {}).get("spec") or {}}
        params = dict(record.get("params") or {}, state="present", wait=False)
        workload = parse_workload(doc, "CronJob/%s" % record["name"], list(record.get("docs") or []), params)
        previous = read_workload_records(self.state_dir).get(workload_key(record["namespace"], "Job", job))
        run = JobRun(api, workload, False, self.converge_items, previous)
        run.start()
        return run

    def cron_save(self, run: JobRun) -> None:
        if run.status is not None:
            w = run.workload
            write_workload_record(w.kind, w.name, w.namespace, w.replicas, w.revision, 0, self.state_dir,
                                  job=run.record_body())

    def cron_remove(self, api: Any, record: Dict[str, Any], job: str) -> None:
        """A CronJob's Job gone: its pods removed as state: absent removes them, its record forgotten."""
        pods = job_pods(api, job, record["namespace"])
        params = dict(record.get("params") or {}, state="absent", manifest=None, record=False)
        self.converge_items([(pod, dict(params, name=pod)) for pod in pods])
        delete_workload_record("Job", job, record["namespace"], self.state_dir)

    def converge_items(self, items: List[Tuple[str, Dict[str, Any]]]) -> Dict[str, Tuple[Dict[str, Any], Optional[str]]]:
        """The pods module's converge callback, in the guard: one pod after the other, never recorded."""
        done: Dict[str, Tuple[Dict[str, Any], Optional[str]]] = {}
        for pod, params in items:
            try:
                done[pod] = (converge_pod(self.client, params, False, record=False), None)
            except PodkitError as exc:
                done[pod] = ({}, exc.msg)
                log.warning("cronjobs: pod=%s %s", pod, exc.msg)
        return done

    # -- what pod_facts reads

    def write_status(self, running: bool = True) -> None:
        body = dict(pid=os.getpid(), running=running, version=VERSION, started=self.started,
                    last_sync=self.last_sync, syncs=self.syncs, docker_host=self.docker_host,
                    pods=dict((pod, dict(repairs_in_a_row=m.repairs, last_repair=m.last_repair or None,
                                         containers=m.containers))
                              for pod, m in self.pods.items() if m.containers))
        try:
            write_guard_status(body, self.state_dir)
        except OSError as exc:
            log.warning("cannot write the guard's status in %s: %s", self.state_dir, exc)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="podkit-guard", description="Keep the pods recorded on this host whole.")
    parser.add_argument("--docker-host", default=os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST)
    parser.add_argument("--state-dir", default=None,
                        help="where the pod records are (default /var/lib/podkit, or PODKIT_STATE_DIR)")
    parser.add_argument("--resync", type=float, default=RESYNC_SECONDS, help="seconds between full resyncs")
    parser.add_argument("--log-file", default=None, help="log here instead of stdout")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    handler: logging.Handler = logging.FileHandler(args.log_file) if args.log_file else logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s podkit-guard[%(process)d] %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if args.debug else logging.INFO)
    guard = Guard(args.docker_host, args.state_dir, args.resync)

    def stop(_signum: int, _frame: Any) -> None:
        guard.stopping.set()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    guard.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
