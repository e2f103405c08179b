# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a pod is reconciled: observe what is, plan the actions that close the gap, apply them.

``converge_pod`` below is the whole story, in the order the kubelet's SyncPod tells it. The parts
it calls live beside it in files named for their concept: ``_spec`` (parameters and manifests to a
PodSpec), ``_wanted`` (what a pod should be on this host, computed before anything is observed),
``_labels`` (the label schema and the configuration hash), ``_docker`` (the engine and the
translation to its create arguments), ``_cgroups`` (the pod cgroup), ``_lock`` (the host lock),
``_facts`` (the pod as the kernel sees it).

The plan is data (``Plan``: a list of ``Action`` with kind, target, reason and the values to
apply), computed by ``Planner`` from what is wanted and what was observed, with no I/O. So
``actions``, ``diff`` and check mode all come from one list and cannot disagree with what a real
run does, and a unit test can compare two plans.

Idempotency comes from the live state, not from what was asked last time: a configuration
hash label per container (with per-field hashes so the reason can name the field that
changed), the image ID, the sandbox ID a member joined and the namespace inodes of a member
compared with its sandbox's. Containers without our ``io.podkit.pod`` label are never touched.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, Sequence, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._cgroups import (
    CgroupBackend, CgroupLimits, HostCgroups, backend_for, check_parent_form, detect_host, foreign_processes,
    split_limits)
from ansible_collections.podkit.docker.plugins.module_utils._create import (
    check_image_mounts, claim_create_args, member_create_args, runtime_context, runtime_value, sandbox_create_args,
    volume_create_args)
from ansible_collections.podkit.docker.plugins.module_utils._docker import (
    LOG_TAIL, STOP_TIMEOUT, Container, DockerError, check_foreign, engine_call, image_id, inspect_listed, list_pod_containers,
    pull_image)
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._facts import container_summary, pod_facts
from ansible_collections.podkit.docker.plugins.module_utils._labels import (
    LABEL_CLAIM, LABEL_CONTAINER, LABEL_FIELDS, LABEL_HASH, LABEL_POD, LABEL_ROLE, LABEL_PRE_STOP, LABEL_SANDBOX_ID, LABEL_SHARE_PID,
    LABEL_SIDECAR,
    ROLE_INIT, ROLE_MEMBER, ROLE_SANDBOX, member_name, parse_fields, sandbox_name, volume_name)
from ansible_collections.podkit.docker.plugins.module_utils._lifecycle import Hooks
from ansible_collections.podkit.docker.plugins.module_utils._lock import PodLock, pod_lock
from ansible_collections.podkit.docker.plugins.module_utils._namespaces import read_cmdline, read_namespaces
from ansible_collections.podkit.docker.plugins.module_utils._probes import wait_started
from ansible_collections.podkit.docker.plugins.module_utils._pullauth import auth_for, secret_parts
from ansible_collections.podkit.docker.plugins.module_utils._restart import recorded_restarts
from ansible_collections.podkit.docker.plugins.module_utils._security import check_non_root
from ansible_collections.podkit.docker.plugins.module_utils._record import delete_record, keep_record, write_record
from ansible_collections.podkit.docker.plugins.module_utils._status import wait_ready
from ansible_collections.podkit.docker.plugins.module_utils._spec import (
    ContainerSpec, PodSpec, SandboxSpec, Volume, container_spec_from_params, pod_spec_from_params, running_containers,
    sandbox_spec_from_params, validate_pod_name)
from ansible_collections.podkit.docker.plugins.module_utils._volumefiles import (
    apply_fs_group, fill_runtime, observed_digest, pod_files_exist, remove_pod_files, root_owned, write_volume)
from ansible_collections.podkit.docker.plugins.module_utils._wanted import (
    RUNNING_STATES, CgroupTarget, PodWanted, Wanted, cgroup_parent, check_pod, differing_fields, want_member, want_pod,
    want_removal, want_sandbox)

NS_WORDS = {"net": "network", "ipc": "IPC", "pid": "PID"}
# Members of one pod created and started at once.
MEMBER_THREADS = 8
# A member whose restart rules podkit keeps counts as running once it has run this long (wait_running).
RULES_SETTLE = 1.0


def parse_pod(params: Dict[str, Any]) -> Optional[PodSpec]:
    """The pod module's parameters as a PodSpec (None when the state needs none), checked as far as
    any host allows (``check_pod``): every refusal of the input itself comes from here, with no
    engine involved."""
    state_name = params.get("state") or "present"
    if not (state_name in RUNNING_STATES or params.get("manifest") is not None or params.get("manifest_file")
            or params.get("containers")):
        _pod_name(params)
        return None
    spec = pod_spec_from_params(params)
    if state_name in RUNNING_STATES:
        check_pod(spec, params.get("cgroup_parent"), params.get("cgroup_limits") or "derived")
    return spec


def prepare_pod(params: Dict[str, Any]) -> Dict[str, Any]:
    """The pod module's input checked before the engine is reached; the PodSpec goes on to converge_pod."""
    return dict(spec=parse_pod(params))


def converge_pod(client: Any, params: Dict[str, Any], check_mode: bool, diff: bool = False,
                 secrets: Optional[set] = None, observed: Optional[PodState] = None,
                 host: Optional[HostCgroups] = None,
                 record: bool = True, held: Optional[PodLock] = None, spec: Optional[PodSpec] = None,
                 applied: Optional[List[Action]] = None) -> Dict[str, Any]:
    """podkit.docker.pod: one pod brought to its spec in one reconcile cycle.

    1. Parse the parameters into a PodSpec (``parse_pod``), unless the caller did (``spec``, from
       ``prepare_pod`` before the engine was reached): bad input fails there, before the host is
       touched. ``secrets`` (a set) receives the values of secret env variables, for the module to mask.
    2. Compute what is wanted (``want_pod``): the cgroup parent and its kubelet-derived limits, the
       sandbox, the init containers and the members, each with the canonical configuration its
       config hash is taken of.
    3. Take the pod's host lock (released at the end; removed when the pod ends with nothing), or
       use the one the caller ``held`` (podkit-guard reads the pod's record under it). ``absent``
       forgets the pod's record here, first, so the guard never brings it back.
    4. Pull the images whose pull policy is ``always`` (not in check mode): a pull that brings
       nothing new changes nothing, only a new image ID does.
    5. Observe (``observe``): the pod's containers with their namespace inodes, the pod's
       volumes, its cgroup parent (and any foreign process in it), the wanted images' IDs.
       ``observed`` is the pod's slice of an ``observe_pods`` call a caller made for many pods
       at once, before this lock was taken: it is used only if ``still_current`` finds it so
       under the lock, else the pod is observed again (never a plan from stale containers).
       ``host`` is the host's cgroup setup when the caller detected it already.
    6. Plan (``plan_pod``, the kubelet's computePodActions): the actions that close the gap, pure.
    7. Refuse when a container the plan creates would take the name of a foreign container.
    8. Apply the plan (``Applier``; not in check mode): limits raised first, sandbox, volumes,
       init containers run to completion in order, members (started together), limits lowered last.
    9. Wait until the started members run (``wait``), failing with a log tail. Then record the
       applied spec for podkit-guard (``_record``; not in check mode, nor when the guard itself
       repairs, ``record`` False), also when the apply failed halfway, as the kubelet keeps
       working towards a spec it could not yet reach; an apply refused before anything changed
       (bad input, a foreign name, no permission) reports its own error, not the record's.
    10. Outside the lock: members with a readiness probe until podkit-guard reports them ready.
    11. Report: the pod as pod_facts reads it, ``actions``, and the diff. ``applied`` (a list) receives the
       plan's actions once they are applied, as data (podkit-guard logs each repair from them).
    """
    state_name = params.get("state") or "present"
    if spec is None:
        spec = parse_pod(params)
    if spec is not None and secrets is not None:
        for container in spec.containers + spec.init_containers:
            secrets.update(container.env[k] for k in container.secret_env if container.env.get(k))
        secrets.update(secret_parts(spec.pull_auths))
    pod = spec.name if spec is not None else _pod_name(params)
    host = host or host_cgroups(client)
    backend = backend_for(host)
    if state_name in RUNNING_STATES:
        wanted = want_pod(spec, host, params.get("cgroup_parent"), params.get("cgroup_limits") or "derived")
    elif state_name == "absent":
        wanted = want_removal(pod, host, params.get("cgroup_parent") or (spec.sandbox.cgroup_parent if spec else None),
                              bool(params.get("remove_claims")), params.get("cgroup_limits") or "derived")
    else:
        wanted = None
    if wanted is not None and not wanted.removal:
        _check_engine(client, wanted)
    probed: Dict[str, str] = {}
    recording = record and not check_mode
    with nullcontext(held) if held is not None else pod_lock(pod, client.api):
        if recording and state_name == "absent":
            delete_record(pod)
        if not check_mode and wanted is not None:
            refresh_images(client.api, wanted.images("always"), wanted.pull_auths)
        if observed is not None and not still_current(client, observed):
            observed = None
        state = observe(client, pod, wanted, backend, observed)
        plan = plan_pod(wanted, state, state_name)
        check_foreign(client.api, pod, plan.created_names())
        containers = [s.attrs for s in state.all_containers(extra=False)]
        if plan and not check_mode:
            applier = Applier(client, pod, state, backend, params.get("wait_timeout") or 60)
            applier.pull_auths = wanted.pull_auths if wanted is not None else {}
            try:
                applier.run(plan, start=state_name != "stopped")
                if params.get("wait", True) and state_name not in ("absent", "stopped"):
                    applier.wait_running(plan.started_members(), params.get("wait_timeout") or 60)
            except BaseException:
                if recording and state_name != "absent":
                    keep_record(pod, params)
                raise
            if applied is not None:
                applied.extend(plan.actions)
            containers = applier.final_containers() if state_name != "absent" else None
            if record and params.get("wait", True) and state_name in RUNNING_STATES and containers and any(
                    "readinessProbe" in c.probes for c in running_containers(spec)):
                probed = _probed_ids(spec, containers)
        if recording and state_name != "absent":
            write_record(pod, params)
        result: Dict[str, Any] = dict(pod=None)
        warnings = (list(spec.warnings) if spec is not None else []) + plan.notes
        if warnings:
            result["warnings"] = warnings
        if spec is not None and spec.namespace:
            result["namespace"] = spec.namespace
        if not (state_name == "absent" and plan and not check_mode):
            result["pod"] = pod_facts(client, host, pod, containers=containers)
        result = report(result, state, plan, wanted.by_key() if wanted else {}, diff)
    if probed:
        # Outside the lock: podkit-guard, which probes, may need it meanwhile to repair the pod.
        wait_ready(pod, probed, params.get("wait_timeout") or 60)
    return result


def _probed_ids(spec: Any, containers: List[Dict[str, Any]]) -> Dict[str, str]:
    """{name in the pod: container ID} of the members and native sidecars with a readiness probe (a
    sidecar's readiness counts toward the pod's, as in Kubernetes)."""
    ids = dict((view.labels.get(LABEL_CONTAINER), view.id) for view in map(Container, containers))
    return dict((c.name, ids[c.name]) for c in running_containers(spec) if "readinessProbe" in c.probes and c.name in ids)


def prepare_sandbox(params: Dict[str, Any]) -> Dict[str, Any]:
    """pod_sandbox's options checked before the engine is reached (the cgroup parent as far as its form)."""
    spec = sandbox_spec_from_params(params)
    if spec.cgroup_parent:
        check_parent_form(spec.cgroup_parent, "cgroup_parent")
    return dict(spec=spec)


def converge_sandbox(client: Any, params: Dict[str, Any], check_mode: bool, diff: bool = False,
                     spec: Optional[SandboxSpec] = None) -> Dict[str, Any]:
    """podkit.docker.pod_sandbox: the sandbox alone, through the same cycle as ``converge_pod``."""
    spec = spec or sandbox_spec_from_params(params)
    state_name = params.get("state") or "present"
    wanted = None
    if state_name not in ("absent", "stopped"):
        host = host_cgroups(client)
        wanted = want_sandbox(spec, cgroup_parent(host, spec.pod, spec.cgroup_parent))
    with pod_lock(spec.pod, client.api):
        if not check_mode and wanted is not None and wanted.pull == "always":
            refresh_images(client.api, [wanted.image])
        state = observe(client, spec.pod, PodWanted(pod=spec.pod, sandbox=wanted) if wanted else None)
        planner = Planner(state)
        planner.sandbox(wanted, state_name)
        plan = planner.plan
        check_foreign(client.api, spec.pod, plan.created_names())
        attrs = state.sandbox.attrs if state.sandbox else None
        if plan and not check_mode:
            applier = Applier(client, spec.pod, state)
            applier.run(plan, start=state_name != "stopped")
            attrs = applier.inspect(applier.sandbox.id) if applier.sandbox else None
        result = dict(sandbox=container_summary(attrs))
        return report(result, state, plan, {"sandbox": wanted} if wanted else {}, diff)


def prepare_container(params: Dict[str, Any]) -> Dict[str, Any]:
    """pod_container's options checked before the engine is reached; the parsed container goes on."""
    state_name = params.get("state") or "present"
    if state_name in ("present", "started") and not params.get("image"):
        raise PodkitError("image is required when state is %s." % state_name)
    spec, volumes = container_spec_from_params(dict(params, image=params.get("image") or ""))
    if state_name in RUNNING_STATES:
        # What want_member refuses whatever the sandbox (a reserved name, a mount it cannot make).
        want_member(params["pod"], spec, volumes, "")
    return dict(parsed=(spec, volumes))


def converge_container(client: Any, params: Dict[str, Any], check_mode: bool, diff: bool = False,
                       parsed: Optional[Tuple[ContainerSpec, Dict[str, Volume]]] = None) -> Dict[str, Any]:
    """podkit.docker.pod_container: one member joined to its pod's sandbox, through the same cycle."""
    state_name = params.get("state") or "present"
    spec, volumes = parsed or prepare_container(params)["parsed"]
    pod = params["pod"]
    with pod_lock(pod, client.api):
        running = state_name in RUNNING_STATES
        if running and not check_mode and spec.pull == "always":
            refresh_images(client.api, [spec.image])
        state = observe(client, pod)
        sandbox = state.sandbox
        if not running:
            wanted = Wanted(key=spec.name, role=ROLE_MEMBER, name=member_name(pod, spec.name), image=spec.image,
                            pull=spec.pull, config={})
        elif check_mode and (sandbox is None or not sandbox.running):
            # In a check-mode play the pod_sandbox task before this one only said it would create or
            # start the sandbox: report what this task would then do instead of failing.
            wanted = want_member(pod, spec, volumes, "", share=spec.share or ("net", "ipc"))
        else:
            if sandbox is None:
                raise PodkitError("pod %s has no sandbox (%s); create it first with podkit.docker.pod_sandbox "
                                  "(or use podkit.docker.pod)." % (pod, sandbox_name(pod)))
            if not sandbox.running:
                raise PodkitError("the sandbox of pod %s (%s) is not running; start it with "
                                  "podkit.docker.pod_sandbox state=started first." % (pod, sandbox.name))
            share = spec.share or (("net", "ipc", "pid") if sandbox.labels.get(LABEL_SHARE_PID) == "true"
                                   else ("net", "ipc"))
            parent = sandbox.host_config.get("CgroupParent") or ""
            wanted = want_member(pod, spec, volumes, parent, share=share)
        used = [m.volume for m in spec.mounts]
        if running:
            observe_more(client, state, PodWanted(pod=pod, members=[wanted], volumes=volumes, used_volumes=used))
        plan = plan_container(state, wanted, state_name, volumes, used, check_mode)
        check_foreign(client.api, pod, plan.created_names())
        seen = state.containers.get(spec.name)
        attrs = seen.attrs if seen else None
        if plan and not check_mode:
            applier = Applier(client, pod, state, wait_timeout=params.get("wait_timeout") or 60)
            applier.run(plan)
            new_id = applier.touched.get(spec.name)
            attrs = None if spec.name in applier.removed else applier.inspect(new_id) if new_id else attrs
        result = dict(container=container_summary(attrs, sandbox.namespaces if sandbox else {}))
        return report(result, state, plan, {spec.name: wanted} if wanted.config else {}, diff)


# ---------------------------------------------------------------------------
# What is, observed


@dataclass
class Seen(Container):
    """A container of the pod as Docker (the ``Container`` view of its inspect data) and the kernel see it."""
    namespaces: Dict[str, int] = field(default_factory=dict)


@dataclass
class CgroupState:
    """The pod cgroup as observed, and what ensuring the wanted limits would change."""
    parent: str
    exists: bool
    changed: bool = False
    before: Optional[Dict[str, Any]] = None
    after: Optional[Dict[str, Any]] = None
    foreign_pids: List[int] = field(default_factory=list)


@dataclass
class PodState:
    """A pod as observed: everything planning needs, so that planning reads nothing."""
    pod: str
    sandbox: Optional[Seen] = None
    containers: Dict[str, Seen] = field(default_factory=dict)     # members and init containers by key
    extra: List[Seen] = field(default_factory=list)               # duplicates: removed when seen
    volumes: Dict[str, Dict[str, str]] = field(default_factory=dict)  # Docker volume name -> its labels
    images: Dict[str, Optional[str]] = field(default_factory=dict)    # reference -> image ID, None: missing
    cgroup: Optional[CgroupState] = None
    files: Dict[str, Optional[str]] = field(default_factory=dict)     # file volume -> digest on the host
    claims: Dict[str, bool] = field(default_factory=dict)             # claim volume -> exists
    files_exist: bool = False                                         # any file volume of the pod on the host
    # remove_claims: the claim volumes (labelled io.podkit.claim) the pod's containers mount -> the
    # containers of other pods (or none of podkit's) that mount them too.
    claim_users: Dict[str, List[str]] = field(default_factory=dict)
    # Docker volumes fsGroup owns -> their root directory (None: the volume is not there yet).
    owners: Dict[str, Optional[os.stat_result]] = field(default_factory=dict)

    def has_containers(self) -> bool:
        return bool(self.sandbox is not None or self.containers or self.extra)

    def all_containers(self, extra: bool = True) -> List[Seen]:
        found = ([self.sandbox] if self.sandbox is not None else []) + list(self.containers.values())
        return found + (list(self.extra) if extra else [])


def observe_pods(client: Any, names: Optional[Sequence[str]] = None,
                 summaries: Optional[List[Dict[str, Any]]] = None) -> Dict[str, PodState]:
    """The containers of the pods in ``names`` (None: every podkit pod), by pod: ONE list call
    (or ``summaries``, the answer of one the caller made), one inspect per container, /proc for
    the namespaces of running ones.

    A per-host caller observes every pod at once with it and hands each pod its slice
    (``converge_pod(..., observed=states[pod])``).
    """
    wanted = set(names) if names is not None else None
    if summaries is None:
        summaries = list_pod_containers(client.api, names[0] if names is not None and len(names) == 1 else None)
    states = dict((name, PodState(pod=name)) for name in (names or ()))

    def ours(summary: Dict[str, Any]) -> bool:
        pod = (summary.get("Labels") or {}).get(LABEL_POD)
        return pod is not None and (wanted is None or pod in wanted)
    for attrs in inspect_listed(client.api, [s for s in summaries if ours(s)]):
        seen = Seen(attrs)
        _sort_into(states.setdefault(seen.labels[LABEL_POD], PodState(pod=seen.labels[LABEL_POD])), seen)
    return states


def still_current(client: Any, state: PodState) -> bool:
    """Whether a pod observed earlier (``state``, a slice of ``observe_pods``) is still as observed.

    Checked under the pod's lock, for a fingerprint that costs one label-filtered list call and
    a few /proc reads instead of an inspect per container: the same container IDs in the same
    states (a container created, removed, started or stopped meanwhile, by another run or by
    hand, changes it), and each running container still the process with the namespaces seen
    (a restart, in place or by Docker's restart policy, gives another PID and, for a sandbox,
    other namespaces).
    """
    now = dict((s["Id"], s.get("State")) for s in list_pod_containers(client.api, state.pod))
    seen = state.all_containers()
    if now != dict((s.id, s.state.get("Status")) for s in seen):
        return False
    return all(read_namespaces(s.pid) == s.namespaces for s in seen if s.running and s.pid)


def _sort_into(state: PodState, seen: Seen) -> None:
    if seen.running and seen.pid:
        seen.namespaces = read_namespaces(seen.pid)
    pod = state.pod
    if seen.labels.get(LABEL_ROLE) == ROLE_SANDBOX:
        if seen.name == sandbox_name(pod) and state.sandbox is None:
            state.sandbox = seen
        else:
            state.extra.append(seen)
        return
    key = seen.labels.get(LABEL_CONTAINER) or seen.name
    if key in state.containers or seen.name != member_name(pod, key):
        state.extra.append(seen)
    else:
        state.containers[key] = seen


def observe(client: Any, pod: str, wanted: Optional[PodWanted] = None, backend: Optional[CgroupBackend] = None,
            observed: Optional[PodState] = None) -> PodState:
    """The pod as it is: its containers (``observed`` when a caller has them already), then what
    ``observe_more`` adds for ``wanted``."""
    state = observed if observed is not None else observe_pods(client, [pod])[pod]
    if wanted is not None:
        observe_more(client, state, wanted, backend)
    return state


def observe_more(client: Any, state: PodState, wanted: PodWanted, backend: Optional[CgroupBackend] = None) -> None:
    """The pod's volumes, the wanted images' IDs and, with ``backend``, its cgroup parent."""
    if wanted.used_volumes or wanted.removal:
        state.volumes = observe_volumes(client.api, state.pod)
    for name, files in wanted.files.items():
        state.files[name] = observed_digest(files.path)
    for name in wanted.used_volumes:
        volume = wanted.volumes.get(name)
        if volume is not None and volume.claim and volume.claim not in state.claims:
            state.claims[volume.claim] = claim_exists(client.api, volume.claim)
    if wanted.removal:
        state.files_exist = pod_files_exist(state.pod)
    if wanted.removal and wanted.remove_claims:
        state.claim_users = observe_claim_users(client.api, state)
    for name in wanted.owned:
        state.owners[name] = volume_root(client.api, name)
    for ref in wanted.images():
        if ref not in state.images:
            state.images[ref] = image_id(client.api, ref)
    if backend is not None and wanted.cgroup is not None:
        target = wanted.cgroup
        if target.parent is None:
            given = state.sandbox.host_config.get("CgroupParent") if state.sandbox else None
            target = CgroupTarget(cgroup_parent(backend.host, state.pod, given))
        state.cgroup = observe_cgroup(backend, state, target)


def observe_volumes(api: Any, pod: str) -> Dict[str, Dict[str, str]]:
    """{Docker volume name: labels} of the volumes named ``<pod>_*``: one list call."""
    try:
        found = api.volumes(filters={"name": pod + "_"}).get("Volumes") or []
    except DockerError as exc:
        raise PodkitError("docker_host: listing the volumes of pod %s failed: %s" % (pod, exc))
    return dict((v["Name"], v.get("Labels") or {}) for v in found if v["Name"].startswith(pod + "_"))


def claim_exists(api: Any, claim: str) -> bool:
    """Whether the Docker volume behind a persistentVolumeClaim exists."""
    try:
        found = api.volumes(filters={"name": claim}).get("Volumes") or []
    except DockerError as exc:
        raise PodkitError("docker_host: listing volumes failed: %s" % exc)
    return any(v["Name"] == claim for v in found)


def observe_claim_users(api: Any, state: PodState) -> Dict[str, List[str]]:
    """{claim volume: names of other containers mounting it} for the Docker volumes the pod's containers
    mount that podkit made for a persistentVolumeClaim (its io.podkit.claim label): no other volume is
    ever a candidate for removal."""
    mine = dict((s.id, s) for s in state.all_containers())
    mounted = set()
    for seen in mine.values():
        for mount in seen.mounts:
            if mount.get("Type") == "volume" and mount.get("Name"):
                mounted.add(mount["Name"])
    if not mounted:
        return {}
    try:
        claims = dict((v["Name"], v.get("Labels") or {}) for v in
                      api.volumes(filters={"label": LABEL_CLAIM}).get("Volumes") or [])
        users = {}
        for name in sorted(mounted):
            if (claims.get(name) or {}).get(LABEL_CLAIM) != name:
                continue
            others = [(c.get("Names") or ["?"])[0].lstrip("/")
                      for c in api.containers(all=True, filters={"volume": name}) if c["Id"] not in mine]
            users[name] = sorted(others)
    except DockerError as exc:
        raise PodkitError("docker_host: listing the claims' volumes of pod %s failed: %s" % (state.pod, exc))
    return users


def volume_root(api: Any, name: str) -> Optional[os.stat_result]:
    """The root directory of Docker volume ``name`` as the host sees it (podkit runs on the host);
    None when the volume does not exist."""
    try:
        mountpoint = api.inspect_volume(name).get("Mountpoint")
    except DockerError as exc:
        if exc.not_found:
            return None
        raise PodkitError("docker_host: inspecting volume %s failed: %s" % (name, exc))
    try:
        return os.stat(mountpoint)
    except (OSError, TypeError) as exc:
        raise PodkitError("volume %s: its mount point %s cannot be read (%s); podkit sets fsGroup ownership from the"
                          " Docker host, so it must run there." % (name, mountpoint, exc))


def observe_cgroup(backend: CgroupBackend, state: PodState, target: CgroupTarget) -> CgroupState:
    """The cgroup parent, what ensuring ``target.limits`` would change, and foreign processes in it."""
    if target.parent is None:
        raise ValueError("observe_cgroup: the parent must be resolved first")
    if target.limits is None:
        return CgroupState(target.parent, backend.observe(target.parent) is not None)
    changed, before, after = backend.ensure(target.parent, target.limits, check_mode=True)
    foreign = foreign_processes(before, [s.id for s in state.all_containers()]) if before else []
    return CgroupState(target.parent, before is not None, changed, before, after, foreign)


def refresh_images(api: Any, refs: Sequence[str], auths: Optional[Dict[str, Dict[str, str]]] = None) -> None:
    """Pull ``refs`` (their pull policy is always) before they are observed."""
    for ref in refs:
        pull_image(api, ref, auth_for(ref, auths or {}))


# ---------------------------------------------------------------------------
# The plan


ActionKind = Literal["pull", "cgroup", "volume", "files", "ownership", "create", "recreate", "start", "stop", "restart", "remove", "run"]
# The kinds of step that always act on a container ("remove" does when it removes no volume, files or cgroup).
CONTAINER_KINDS = ("create", "recreate", "start", "stop", "restart", "run")


@dataclass
class CgroupWrite:
    """Limits written before the members change (``first``) and after every action (``last``):
    a limit is raised first and lowered last, so no member ever exceeds its pod's limit."""
    parent: str
    first: CgroupLimits
    last: Optional[CgroupLimits] = None


@dataclass
class VolumeRemoval:
    name: str


@dataclass
class CgroupRemoval:
    parent: str


@dataclass
class FilesRemoval:
    pod: str


@dataclass
class Action:
    """One step of a plan. ``str(action)`` is what users read in ``actions``.

    ``wanted`` and ``seen`` are the container to create and the one it replaces; ``value`` the
    data of a step that is no container: an image reference (pull), a CgroupWrite, a volume's
    create arguments, a VolumeRemoval or a CgroupRemoval.
    """
    kind: ActionKind
    target: str                     # "sandbox", a container's name in the pod, an image, a volume, a cgroup
    reason: str = ""
    wanted: Optional[Wanted] = field(default=None, repr=False, compare=False)
    seen: Optional[Seen] = field(default=None, repr=False, compare=False)
    value: Any = None

    def __str__(self) -> str:
        if self.kind == "run":
            text = "run init %s" % self.target
        elif self.kind == "cgroup":
            text = "%s cgroup %s" % ("update" if self.reason else "create", self.target)
        elif self.kind == "volume":
            text = "create volume %s" % self.target
        elif self.kind == "files":
            text = "write %s" % self.target
        elif self.kind == "ownership":
            text = "set group %d on volume %s" % (self.value.group, self.target)
        else:
            text = "%s %s" % (self.kind, self.target)
        return text + (": " + self.reason if self.reason else "")

    @property
    def container(self) -> Optional[str]:
        """The container the step acts on (its name in the pod, ``sandbox``, or a duplicate's Docker name); None
        for a step on no container (an image, the cgroup, a volume, files)."""
        if self.kind in CONTAINER_KINDS or self.kind == "remove" and self.value is None:
            return self.target
        return None


@dataclass
class Plan:
    """The actions that close the gap, in the order they are applied."""
    actions: List[Action] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)     # what the plan leaves undone on purpose, as warnings
    pull_fields: Dict[str, str] = field(default_factory=dict)   # image -> the field that first asked for it

    def __bool__(self) -> bool:
        return bool(self.actions)

    def __iter__(self):
        return iter(self.actions)

    def lines(self) -> List[str]:
        return [str(a) for a in self.actions]

    def created_names(self) -> List[str]:
        """Docker names the plan takes that no container of the pod holds now."""
        return [a.wanted.name for a in self.actions
                if a.kind in ("create", "run") and a.seen is None and a.wanted is not None]

    def started_members(self) -> List[str]:
        return [a.target for a in self.actions
                if a.kind in ("create", "recreate", "start", "restart") and a.target != "sandbox"]


def plan_pod(wanted: Optional[PodWanted], state: PodState, state_name: str) -> Plan:
    """The pod's plan (the kubelet's computePodActions), from ``wanted`` and ``state`` only."""
    planner = Planner(state)
    if state_name == "absent":
        planner.remove_pod()
    elif state_name == "stopped":
        planner.stop_pod()
    else:
        if wanted is None or wanted.cgroup is None or wanted.sandbox is None:
            raise ValueError("plan_pod: state %s needs the wanted pod (want_pod)" % state_name)
        planner.cgroup(wanted.cgroup)
        planner.sandbox(wanted.sandbox, state_name, "sandbox_image")
        planner.volumes(wanted.volumes, wanted.used_volumes, wanted.fs_group)
        planner.files(wanted)
        rerun = None
        for index, item in enumerate(wanted.init):
            if item.sidecar:
                # Created (and started) here, so it runs before the next init container does.
                planner.member(item, state_name, "initContainers[%d].image" % index)
            else:
                rerun = planner.init(item, rerun)
        for index, item in enumerate(wanted.members):
            planner.member(item, state_name, "containers[%d].image" % index)
        planner.ownership(wanted)
        planner.remove_others([w.key for w in wanted.containers()])
    return planner.plan


def plan_container(state: PodState, wanted: Wanted, state_name: str, volumes: Dict[str, Volume],
                   used: List[str], check_mode: bool = False) -> Plan:
    """pod_container's plan: one member, as ``plan_pod`` plans each."""
    planner = Planner(state)
    sandbox = state.sandbox
    if state_name in RUNNING_STATES and check_mode and (sandbox is None or not sandbox.running):
        seen = state.containers.get(wanted.key)
        planner.need_image(wanted, "image")
        planner.add(Action("recreate" if seen else "create", wanted.key,
                           "sandbox missing" if sandbox is None else "sandbox not running", wanted=wanted, seen=seen))
        return planner.plan
    if state_name in RUNNING_STATES:
        planner.volumes(volumes, used)
    planner.member(wanted, state_name)
    return planner.plan


class Planner:
    """Computes the actions for a pod from the observed state; reads nothing but ``state``."""

    def __init__(self, state: PodState) -> None:
        self.state = state
        self.plan = Plan()
        self.pulls: List[str] = []
        # What happens to the sandbox: "keep", "new" (created or recreated), "restarted", "gone", "stopped".
        self.sandbox_fate = "keep"

    @property
    def actions(self) -> List[Action]:
        return self.plan.actions

    def add(self, action: Action) -> Action:
        self.plan.actions.append(action)
        return action

    # -- images

    def image_changed(self, wanted: Wanted, seen: Seen) -> bool:
        found = self.state.images.get(wanted.image)
        if found is None:
            # Still to be pulled: only known to differ after the pull.
            return wanted.image in self.pulls
        return found != seen.image_id

    def need_image(self, wanted: Wanted, field_name: str) -> None:
        """A pull action before the first container that needs a missing image."""
        ref = wanted.image
        if self.state.images.get(ref) is not None or ref in self.pulls:
            return
        if wanted.pull == "never":
            raise PodkitError("%s: image %s is not on the host and pull is never. Build or load it "
                              "(docker load, docker build) or set pull: missing." % (field_name, ref))
        self.pulls.append(ref)
        self.plan.pull_fields[ref] = field_name
        self.add(Action("pull", ref, "not on the host", value=ref))

    # -- the cgroup parent and volumes

    def cgroup(self, target: CgroupTarget) -> None:
        observed = self.state.cgroup
        if observed is None or target.limits is None:
            return
        if observed.foreign_pids:
            raise PodkitError(
                "cgroup_parent: %s already exists and holds processes that are not this pod's: %s. podkit does not "
                "take over a cgroup in use; stop those processes, or give the pod another cgroup_parent."
                % (target.parent, ", ".join("%d (%s)" % (pid, read_cmdline(pid) or "?")
                                            for pid in observed.foreign_pids[:10])))
        if not observed.changed:
            return
        reason = ""
        first, last = target.limits, None
        if observed.before is not None:
            old, new = observed.before.get("limits") or {}, (observed.after or {}).get("limits") or {}
            reason = "%s changed" % ", ".join(sorted(k for k in new if new.get(k) != old.get(k)) or ["limits"])
            # A new cgroup has no member to conflict with: everything is written at once.
            first, last = split_limits(target.limits, old)
        self.add(Action("cgroup", target.parent, reason, value=CgroupWrite(target.parent, first, last)))

    def files(self, wanted: PodWanted) -> None:
        """Write the file volumes (configMap, secret, ...) whose content on the host differs."""
        for name in sorted(wanted.files):
            files = wanted.files[name]
            seen = self.state.files.get(name)
            seen_digest, _sep, stamp = (seen or "").partition(" ")
            sandbox = self.state.sandbox
            if seen_digest != files.digest:
                reason = "content changed" if seen else ""
            elif files.runtime and (self.sandbox_fate == "new" or sandbox is None or stamp != sandbox.id):
                # metadata.uid is the sandbox's: a new sandbox is a new pod to the files too.
                reason = "sandbox recreated"
            else:
                continue
            self.add(Action("files", "files of volume %s" % name, reason, value=files))

    def volumes(self, volumes: Dict[str, Volume], used: List[str], fs_group: Optional[int] = None) -> None:
        """Create-volume actions for the pod's emptyDir and claim volumes that are used and missing."""
        for name in used:
            volume = volumes.get(name)
            if volume is not None and volume.kind == "persistentVolumeClaim":
                if not self.state.claims.get(volume.claim):
                    self.add(Action("volume", volume.claim, "persistentVolumeClaim %s" % name,
                                    value=claim_create_args(volume.claim)))
                    self.state.claims[volume.claim] = True
                continue
            if volume is None or volume.kind != "emptyDir":
                continue
            docker_name = volume_name(self.state.pod, name)
            if docker_name in self.state.volumes:
                continue
            self.add(Action("volume", docker_name, "emptyDir %s" % name,
                            value=volume_create_args(self.state.pod, docker_name, volume.medium, volume.size_limit,
                                                     fs_group)))

    def ownership(self, wanted: PodWanted) -> None:
        """fsGroup on the Docker volumes it owns, as the kubelet sets it when it mounts a volume: with
        fsGroupChangePolicy Always whenever a container mounting the volume is (re)started, with
        OnRootMismatch only when the volume's root is not owned yet (a new volume is not). Each action
        goes before the first container action of the plan that mounts the volume."""
        for name in sorted(wanted.owned):
            item = wanted.owned[name]
            root = self.state.owners.get(name)
            starts = [i for i, a in enumerate(self.actions) if a.kind in ("create", "recreate", "start", "restart", "run")
                      and a.target in item.consumers]
            if not root_owned(root, item.group, item.read_only):
                reason = "new volume" if root is None else "not owned by the group"
            elif item.policy == "Always" and starts:
                reason = "fsGroupChangePolicy Always, %s starts" % self.actions[starts[0]].target
            else:
                continue
            index = starts[0] if starts else len(self.actions)
            self.actions.insert(index, Action("ownership", name, reason, value=item))

    # -- the sandbox

    def sandbox(self, wanted: Optional[Wanted], state: str, image_field: str = "image") -> None:
        seen = self.state.sandbox
        if state == "absent":
            if seen:
                self.add(Action("remove", "sandbox", "", seen=seen))
                self.sandbox_fate = "gone"
            return
        if state == "stopped":
            if seen and seen.state.get("Running"):
                self.add(Action("stop", "sandbox", "", seen=seen))
            self.sandbox_fate = "stopped" if seen else "gone"
            return
        if wanted is None:
            raise ValueError("Planner.sandbox: state %s needs the wanted sandbox" % state)
        self.need_image(wanted, image_field)
        if seen is None:
            self.add(Action("create", "sandbox", "", wanted=wanted))
            self.sandbox_fate = "new"
            return
        changes = config_changes(wanted, seen)
        if changes:
            self.add(Action("recreate", "sandbox", "%s changed" % ", ".join(changes), wanted=wanted, seen=seen))
            self.sandbox_fate = "new"
        elif self.image_changed(wanted, seen):
            self.add(Action("recreate", "sandbox", "image changed (%s)" % wanted.image, wanted=wanted, seen=seen))
            self.sandbox_fate = "new"
        elif not seen.running:
            self.add(Action("start", "sandbox", "not running", wanted=wanted, seen=seen))
            self.sandbox_fate = "restarted"
        elif state == "restarted":
            self.add(Action("restart", "sandbox", "state restarted", wanted=wanted, seen=seen))
            self.sandbox_fate = "restarted"

    # -- members and init containers

    def stale_reason(self, wanted: Wanted, seen: Seen) -> Optional[str]:
        """Why a member no longer belongs to the current sandbox, or None."""
        if self.sandbox_fate == "new":
            return "sandbox recreated"
        if self.sandbox_fate == "restarted":
            return "sandbox restarted"
        sandbox = self.state.sandbox
        if sandbox is None:
            return "sandbox missing"
        if seen.labels.get(LABEL_SANDBOX_ID) != sandbox.id:
            return "joined another sandbox"
        if seen.running and seen.namespaces and sandbox.namespaces:
            for ns in ("net", "ipc", "pid"):
                if ns in wanted.config.get("share", ()) and seen.namespaces.get(ns) != sandbox.namespaces.get(ns):
                    return "stale %s namespace" % NS_WORDS[ns]
        return None

    def member(self, wanted: Wanted, state: str, field_name: str = "image") -> None:
        seen = self.state.containers.get(wanted.key)
        if state == "absent":
            if seen:
                self.add(Action("remove", wanted.key, "", seen=seen))
            return
        if state == "stopped":
            if seen and seen.state.get("Running"):
                self.add(Action("stop", wanted.key, "", seen=seen))
            return
        self.need_image(wanted, field_name)
        if seen is None:
            self.add(Action("create", wanted.key, "", wanted=wanted))
            return
        reason = self.recreate_reason(wanted, seen)
        if reason:
            self.add(Action("recreate", wanted.key, reason, wanted=wanted, seen=seen))
        elif not seen.running and self.should_start(wanted, seen):
            self.add(Action("start", wanted.key, "not running", wanted=wanted, seen=seen))
        elif state == "restarted":
            self.add(Action("restart", wanted.key, "state restarted", wanted=wanted, seen=seen))

    def recreate_reason(self, wanted: Wanted, seen: Seen) -> Optional[str]:
        changes = config_changes(wanted, seen)
        if changes:
            return "config changed (%s)" % ", ".join(changes)
        if self.image_changed(wanted, seen):
            return "image changed (%s)" % wanted.image
        return self.stale_reason(wanted, seen)

    @staticmethod
    def should_start(wanted: Wanted, seen: Seen) -> bool:
        """Whether a stopped member is started again, by its restart policy (the kubelet's rule)."""
        policy = wanted.config.get("restart_policy")
        rules = wanted.config.get("restart_rules")
        if rules:
            # Its restart rules (KEP-5307) decide on the exit code it ended with, once it ran.
            ran = seen.state.get("FinishedAt", "").startswith("2")
            return not ran or recorded_restarts(rules, seen.exit_code)
        if policy == "Always":
            return True
        if policy == "OnFailure":
            return seen.exit_code not in (0, None) or not seen.state.get("FinishedAt", "").startswith("2")
        return not seen.state.get("FinishedAt", "").startswith("2")     # Never: only if it never ran

    def init(self, wanted: Wanted, rerun_from: Optional[str]) -> Optional[str]:
        """Plan an init container; return the reason the next ones rerun too, or None."""
        self.need_image(wanted, "init_containers[%s].image" % wanted.key)
        seen = self.state.containers.get(wanted.key)
        reason = rerun_from
        if reason is None:
            if seen is None:
                reason = "not run yet"
            else:
                reason = self.recreate_reason(wanted, seen)
                sandbox = self.state.sandbox
                if reason is None and sandbox is not None and \
                        sandbox.started > seen.started:
                    # An exited init container has no namespaces to compare: its start time tells
                    # that the sandbox was restarted after it ran.
                    reason = "sandbox restarted"
                if reason is None and (seen.state.get("Running") or seen.exit_code != 0):
                    reason = "did not complete" if not seen.state.get("Running") or seen.exit_code else "still running"
        if reason:
            self.add(Action("run", wanted.key, reason, wanted=wanted, seen=seen))
            return "after %s" % wanted.key
        return None

    def remove_others(self, keys: List[str]) -> None:
        """Containers labelled for the pod that the spec no longer has."""
        for key in sorted(self.state.containers):
            if key not in keys:
                self.add(Action("remove", key, "not in the pod", seen=self.state.containers[key]))
        for seen in self.state.extra:
            self.add(Action("remove", seen.name, "duplicate of the pod's %s" % (seen.labels.get(LABEL_CONTAINER)
                                                                                or seen.labels.get(LABEL_ROLE)),
                            seen=seen))

    # -- the whole pod stopped or removed

    def stop_order(self) -> List[str]:
        """Members (sorted), then native sidecars in reverse order, as the kubelet stops them."""
        containers = self.state.containers
        sidecars = [k for k in containers if (containers[k].labels.get(LABEL_SIDECAR) or "").isdigit()]
        sidecars.sort(key=lambda k: int(containers[k].labels[LABEL_SIDECAR]), reverse=True)
        return [k for k in sorted(containers) if k not in sidecars] + sidecars

    def stop_pod(self) -> None:
        """Members first (sorted), then sidecars in reverse order, then the sandbox."""
        for key in self.stop_order():
            seen = self.state.containers[key]
            if seen.state.get("Running"):
                self.add(Action("stop", key, "", seen=seen))
        self.sandbox(None, "stopped")

    def remove_pod(self) -> None:
        """Every container labelled with the pod (members first), its volumes, then its cgroup."""
        state = self.state
        for key in self.stop_order():
            self.add(Action("remove", key, "", seen=state.containers[key]))
        for seen in state.extra:
            self.add(Action("remove", seen.name, "", seen=seen))
        self.sandbox(None, "absent")
        for name in sorted(n for n, labels in state.volumes.items() if labels.get(LABEL_POD) == state.pod):
            self.add(Action("remove", "volume %s" % name, "", value=VolumeRemoval(name)))
        for claim in sorted(state.claim_users):
            others = state.claim_users[claim]
            if others:
                # As Kubernetes' PVC protection holds a claim in use: the volume stays.
                self.plan.notes.append("remove_claims: the volume of claim %s is kept; other containers mount it (%s)."
                                       % (claim, ", ".join(others)))
            else:
                self.add(Action("remove", "claim volume %s" % claim, "remove_claims", value=VolumeRemoval(claim)))
        if state.files_exist:
            # Claims' volumes outlive the pod (unless remove_claims); its configMap/secret files do not.
            self.add(Action("remove", "files of pod %s" % state.pod, "", value=FilesRemoval(state.pod)))
        # Without a container of the pod there is no evidence the cgroup at that path is the pod's.
        if state.has_containers() and state.cgroup is not None and state.cgroup.exists:
            parent = state.cgroup.parent
            self.add(Action("remove", "cgroup %s" % parent, "", value=CgroupRemoval(parent)))


def config_changes(wanted: Wanted, seen: Seen) -> List[str]:
    """The top-level configuration fields that differ; [] when the hash matches, or when the only fields
    that differ are those the container is taken over without (``adopted_fields``)."""
    digest, fields = wanted.hashes()
    if seen.labels.get(LABEL_HASH) == digest:
        return []
    before = parse_fields(seen.labels.get(LABEL_FIELDS))
    if all(fields.get(k) == before.get(k) for k in set(fields) | set(before)):
        return ["labels"]       # the hash differs, no field does
    return differing_fields(wanted.role, fields, seen.labels)


def stop_timeout(seen: Seen) -> int:
    """The container's own stop timeout (terminationGracePeriodSeconds), else podkit's default."""
    value = seen.config.get("StopTimeout")
    return int(value) if value is not None else STOP_TIMEOUT


# ---------------------------------------------------------------------------
# Applying


def _is_member(action: Action) -> bool:
    """A member's create or recreate: the actions ``Applier.run`` does together when in a row. Not a native
    sidecar with a startup probe: what follows it waits for the probe (``Applier.started_gate``)."""
    return action.kind in ("create", "recreate") and action.wanted is not None and action.wanted.role == ROLE_MEMBER \
        and action.wanted.startup is None


class Applier:
    """Runs a plan against the engine and the cgroup filesystem.

    One method per action kind; each takes its values from the action. Members created in a row
    are created and started together (``members_together``), each in its own thread.
    """

    def __init__(self, client: Any, pod: str, state: PodState, backend: Optional[CgroupBackend] = None,
                 wait_timeout: int = 60) -> None:
        self.api = client.api
        self.pod = pod
        self.state = state
        self.backend = backend
        self.wait_timeout = wait_timeout
        self.restart_rules: Dict[str, Dict[str, Any]] = {}     # member -> its restart rules (wait_running)
        self.sandbox: Optional[Seen] = state.sandbox
        self.touched: Dict[str, str] = {}                 # key -> container id (new or changed)
        self.removed: set = set()
        self.lowered: List[CgroupWrite] = []              # limits lowered after every action
        self.final: Dict[str, Dict[str, Any]] = {}        # container id -> inspect after
        self.post_start: Dict[str, Tuple[str, Dict[str, Any]]] = {}   # new container id -> (key, postStart hook)
        self.pull_auths: Dict[str, Dict[str, str]] = {}   # imagePullSecrets by registry host
        self.pull_fields: Dict[str, str] = {}             # image -> its field, for a failed pull's message

    def sandbox_id(self) -> str:
        if self.sandbox is None:
            raise PodkitError("pod %s has no sandbox (%s); create it first (podkit.docker.pod_sandbox or "
                              "podkit.docker.pod)." % (self.pod, sandbox_name(self.pod)))
        return self.sandbox.id

    def run(self, plan: Plan, start: bool = True) -> None:
        """Apply the actions in plan order; members created in a row (the plan puts them after the
        sandbox runs, the volumes and the init containers) are created and started together."""
        done = [0]
        actions = plan.actions
        self.pull_fields = plan.pull_fields
        try:
            index = 0
            while index < len(actions):
                group = [actions[index]]
                while _is_member(group[0]) and index + len(group) < len(actions) \
                        and _is_member(actions[index + len(group)]):
                    group.append(actions[index + len(group)])
                if len(group) == 1:
                    getattr(self, "do_" + group[0].kind)(group[0], start)
                    done[0] += 1
                else:
                    self.members_together(group, start, done)
                index += len(group)
            for write in self.lowered:
                self._backend().ensure(write.parent, write.last, check_mode=False)
        except PodkitError as error:
            # Whatever ran before the failure did change the host.
            error.details.setdefault("changed", done[0] > 0)
            error.details.setdefault("actions", plan.lines())
            raise

    def members_together(self, group: List[Action], start: bool, done: List[int]) -> None:
        """Each member's create (its old container removed first) and start in a thread of its own:
        the engine works on all of them at once instead of waiting on one call after the other.

        The threads share the client for these few independent calls: its urllib3 connection pool is
        thread-safe, though requests does not promise that of a whole Session, which is why the pods
        module, whose workers live for a whole run, gives each worker a client of its own (_pods.Clients).
        Each member's steps stay in order, and the first failure in plan order is raised once all ended.
        """
        def one(action: Action) -> None:
            self.do_create(action, start)
            done[0] += 1

        with ThreadPoolExecutor(max_workers=min(MEMBER_THREADS, len(group))) as pool:
            futures = [pool.submit(one, action) for action in group]
        for future in futures:
            future.result()

    def _backend(self) -> CgroupBackend:
        if self.backend is None:
            raise ValueError("a plan with cgroup actions needs a cgroup backend")
        return self.backend

    def create(self, wanted: Wanted) -> str:
        if wanted.role == ROLE_SANDBOX:
            create, host = sandbox_create_args(wanted.image, wanted.name, wanted.config, wanted.labels_for(self.pod))
        else:
            sandbox_id = self.sandbox_id()
            context: Optional[Dict[str, Any]] = None
            if wanted.config.get("env_fields"):
                context = runtime_context(self.sandbox.attrs if self.sandbox else None,
                                          engine_call("docker info", self.api.info))
            security = wanted.config.get("security") or {}
            if security.get("non_root") or security.get("group") is not None:
                # runAsNonRoot and runAsGroup alone need the image's user.
                image = engine_call("inspect image %s" % wanted.image, self.api.inspect_image, wanted.image)
                image_user = (image.get("Config") or {}).get("User") or ""
                check_non_root(security, image_user, "containers[%s]" % wanted.key)
                context = dict(context or {}, image_user=image_user)
            if wanted.nocopy:
                context = dict(context or {}, nocopy=wanted.nocopy)
            if wanted.seccomp_json:
                context = dict(context or {}, seccomp_json=wanted.seccomp_json)
            create, host = member_create_args(wanted.image, wanted.name, wanted.config,
                                              wanted.labels_for(self.pod, {LABEL_SANDBOX_ID: sandbox_id}), sandbox_id,
                                              context)
        what = "creating the sandbox %s" if wanted.role == ROLE_SANDBOX else "creating container %s"
        host_config = engine_call(what % wanted.name, self.api.create_host_config, **host)
        new_id = engine_call(what % wanted.name, self.api.create_container, host_config=host_config, **create)["Id"]
        post_start = (wanted.config.get("security") or {}).get("post_start")
        if post_start:
            self.post_start[new_id] = (wanted.key, post_start)
        return new_id

    def remove(self, seen: Seen) -> None:
        if seen.labels.get(LABEL_PRE_STOP) and seen.running:
            # Graceful, as the kubelet kills: the preStop hook, then the stop signal, within the grace period.
            self.stop(seen)
        engine_call("removing container %s" % seen.name, self.api.remove_container, seen.id, force=True)

    def stop(self, seen: Seen) -> None:
        """Stop a container: its preStop hook first, all within its grace period (stop timeout)."""
        grace = stop_timeout(seen)
        hook = json.loads(seen.labels.get(LABEL_PRE_STOP) or "null")
        started = time.time()
        if hook and seen.running:
            Hooks(self.api).pre_stop(seen.id, seen.name, seen.pid, hook, grace)
        remaining = max(0, int(grace - (time.time() - started)))
        engine_call("stopping container %s" % seen.name, self.api.stop, seen.id, timeout=remaining)

    def start(self, key: str, container_id: str, name: str) -> None:
        engine_call("starting container %s" % name, self.api.start, container_id)
        self.touched[key] = container_id
        hook = self.post_start.get(container_id)
        if hook is not None:
            Hooks(self.api).post_start(hook[0], container_id, name, hook[1], lambda: Container(self.inspect(container_id)).pid,
                                       self.wait_timeout)

    def inspect(self, container_id: str) -> Dict[str, Any]:
        return engine_call("inspecting container %s" % container_id[:12], self.api.inspect_container, container_id)

    def _sandbox_seen(self, container_id: str) -> None:
        attrs = self.final[container_id] = self.inspect(container_id)
        pid = Container(attrs).pid
        self.sandbox = Seen(attrs, read_namespaces(pid) if pid else {})

    # One method per action kind.

    def do_pull(self, action: Action, _start: bool) -> None:
        self.state.images[action.value] = pull_image(self.api, action.value, auth_for(action.value, self.pull_auths),
                                                     self.pull_fields.get(action.value))

    def do_cgroup(self, action: Action, _start: bool) -> None:
        write = action.value
        self._backend().ensure(write.parent, write.first, check_mode=False)
        if write.last is not None:
            self.lowered.append(write)

    def do_files(self, action: Action, _start: bool) -> None:
        files = action.value
        content, stamp = files.files, ""
        if files.runtime:
            context = runtime_context(self.sandbox.attrs if self.sandbox else None, engine_call("docker info", self.api.info))
            content = fill_runtime(files.files, lambda source: runtime_value(source, context))
            stamp = self.sandbox.id if self.sandbox else ""
        try:
            write_volume(files.path, content, files.secret, files.group, stamp, files.digest)
        except OSError as exc:
            raise PodkitError("writing %s to %s failed: %s" % (action.target, files.path, exc))

    def do_ownership(self, action: Action, _start: bool) -> None:
        item = action.value
        mountpoint = engine_call("inspecting volume %s" % item.docker_name, self.api.inspect_volume,
                                 item.docker_name).get("Mountpoint")
        try:
            apply_fs_group(mountpoint, item.group, item.read_only)
        except (OSError, TypeError) as exc:
            raise PodkitError("setting fsGroup %d on volume %s (%s) failed: %s"
                              % (item.group, item.docker_name, mountpoint, exc))

    def do_volume(self, action: Action, _start: bool) -> None:
        engine_call("creating volume %s" % action.value["name"], self.api.create_volume, **action.value)

    def do_create(self, action: Action, start: bool) -> None:
        wanted = action.wanted
        if action.seen is not None:
            self.remove(action.seen)
        new_id = self.create(wanted)
        self.touched[action.target] = new_id
        if wanted.config.get("restart_rules"):
            self.restart_rules[action.target] = wanted.config["restart_rules"]
        if wanted.role == ROLE_SANDBOX:
            if start:
                self.start("sandbox", new_id, wanted.name)
            self._sandbox_seen(new_id)
        elif start:
            self.start(action.target, new_id, wanted.name)
            self.started_gate(wanted, new_id)

    do_recreate = do_create

    def do_start(self, action: Action, _start: bool) -> None:
        self.start(action.target, action.seen.id, action.seen.name)
        if action.target == "sandbox":
            self._sandbox_seen(action.seen.id)
        elif action.wanted is not None:
            if action.wanted.config.get("restart_rules"):
                self.restart_rules[action.target] = action.wanted.config["restart_rules"]
            self.started_gate(action.wanted, action.seen.id)

    def started_gate(self, wanted: Wanted, container_id: str) -> None:
        """A native sidecar with a startup probe: the kubelet starts the next init container, or the main
        containers, only once that probe succeeded (kuberuntime computeInitContainerActions); so the plan
        goes on only then. A probe that fails failureThreshold times, or does not succeed within
        wait_timeout, fails the run naming the sidecar (podkit-guard, from the pod's record, goes on)."""
        if wanted.startup is None:
            return
        sandbox = engine_call("inspect sandbox", self.api.inspect_container, self.sandbox_id())
        sandbox_pid = Container(sandbox).pid
        started, message = wait_started(wanted.startup, self.api, container_id, sandbox_pid, self.wait_timeout)
        if not started:
            raise PodkitError("initContainers[%s].startupProbe: the native sidecar did not start (%s); the containers"
                              " after it were not started." % (wanted.key, message))

    def do_restart(self, action: Action, _start: bool) -> None:
        if action.seen.labels.get(LABEL_PRE_STOP):
            self.stop(action.seen)
        engine_call("restarting container %s" % action.seen.name, self.api.restart, action.seen.id,
                    timeout=stop_timeout(action.seen))
        self.touched[action.target] = action.seen.id
        if action.target == "sandbox":
            self._sandbox_seen(action.seen.id)

    def do_stop(self, action: Action, _start: bool) -> None:
        self.stop(action.seen)
        self.touched[action.target] = action.seen.id

    def do_remove(self, action: Action, _start: bool) -> None:
        if isinstance(action.value, VolumeRemoval):
            engine_call("removing %s" % action.value.name, self.api.remove_volume, action.value.name, force=True)
            return
        if isinstance(action.value, CgroupRemoval):
            self._backend().remove(action.value.parent, False)
            return
        if isinstance(action.value, FilesRemoval):
            remove_pod_files(action.value.pod)
            return
        self.remove(action.seen)
        self.removed.add(action.target)
        if action.target == "sandbox":
            self.sandbox = None

    def do_run(self, action: Action, _start: bool) -> None:
        if action.seen is not None:
            self.remove(action.seen)
        wanted = action.wanted
        new_id = self.create(wanted)
        self.start(wanted.key, new_id, wanted.name)
        try:
            result = self.api.wait(new_id, timeout=self.wait_timeout)
        except DockerError as exc:
            raise PodkitError("init container %s did not complete within wait_timeout (%ss): %s. Raise "
                              "wait_timeout or fix the container." % (wanted.key, self.wait_timeout, exc))
        code = result.get("StatusCode")
        if code != 0:
            raise PodkitError("init container %s failed with exit code %s; the pod's containers were not "
                              "started. Last lines of its log:\n%s" % (wanted.key, code, self.log_tail(new_id)),
                              init_container=wanted.key, exit_code=code, log_tail=self.log_tail(new_id))

    def final_containers(self) -> List[Dict[str, Any]]:
        """Inspect data of every container of the pod after the run, asking Docker only about changed ones."""
        result = []
        ids = {}
        for key, seen in [("sandbox", self.state.sandbox)] + list(self.state.containers.items()):
            if seen is not None and key not in self.removed:
                ids[key] = seen.id
        ids.update(self.touched)
        if self.sandbox is not None:
            ids["sandbox"] = self.sandbox.id
        unchanged = dict((s.id, s.attrs) for s in self.state.all_containers(extra=False))
        for key, container_id in ids.items():
            if key in self.removed and key not in self.touched:
                continue
            attrs = self.final.get(container_id)
            if attrs is None and key not in self.touched:
                attrs = unchanged.get(container_id)
            if attrs is None:
                attrs = self.inspect(container_id)
            result.append(attrs)
        return result

    def log_tail(self, container_id: str) -> str:
        try:
            return self.api.logs(container_id, tail=LOG_TAIL).decode("utf-8", "replace")
        except DockerError:
            return ""

    def wait_running(self, keys: List[str], timeout: int) -> None:
        """Return when the started members run; fail with the log tail of one that does not. A member
        whose restart rules restart the exit code it ended with is started again meanwhile (where the
        engine's restart policy could not say them), as podkit-guard does between runs; such a member
        counts as running once it has run for RULES_SETTLE seconds, so one that exits on a code its rules
        restart right after it was seen running is restarted by this run, not left for the next."""
        deadline = time.time() + timeout
        for key in keys:
            container_id = self.touched[key]
            rules = self.restart_rules.get(key)
            running_since = None
            while True:
                attrs = self.inspect(container_id)
                self.final[container_id] = attrs
                seen = Container(attrs)
                state = seen.state
                if seen.running:
                    if not rules:
                        break
                    running_since = running_since or time.time()
                    if time.time() - running_since >= RULES_SETTLE or time.time() > deadline:
                        break
                    time.sleep(0.2)
                    continue
                running_since = None
                if rules and not state.get("Running") and not state.get("Restarting") and recorded_restarts(
                        rules, seen.exit_code):
                    time.sleep(0.5)
                    self.start(key, container_id, seen.name)
                    continue
                if not state.get("Running") and not state.get("Restarting") and state.get("ExitCode") == 0:
                    break   # completed (restart policy Never/OnFailure)
                if time.time() > deadline:
                    raise PodkitError("container %s is not running after wait_timeout (%ss): status %s, exit "
                                      "code %s. Last lines of its log:\n%s"
                                      % (key, timeout, state.get("Status"), state.get("ExitCode"),
                                         self.log_tail(container_id)), exit_code=state.get("ExitCode"))
                time.sleep(0.2)


# ---------------------------------------------------------------------------
# Reporting


def describe(seen: Optional[Seen]) -> Optional[Dict[str, Any]]:
    if seen is None:
        return None
    return dict(id=seen.id, status=seen.state.get("Status"), image=seen.config.get("Image"),
                config_hash=seen.labels.get(LABEL_HASH))


def diff_for(state: PodState, plan: Plan, wanted: Dict[str, Wanted]) -> Dict[str, Any]:
    """before/after of the containers the plan touches (secret env masked), and the plan itself."""
    before = {}
    after = {}
    for action in plan:
        key = action.target
        if action.kind in ("pull", "cgroup", "volume", "files", "ownership"):
            continue
        seen = action.seen
        if seen is None:
            seen = state.sandbox if key == "sandbox" else state.containers.get(key)
        before[key] = describe(seen)
        if action.kind == "remove":
            after[key] = None
            continue
        item: Dict[str, Any] = dict(status={"stop": "exited"}.get(action.kind, "running"))
        if key in wanted:
            item["config"] = wanted[key].masked_config()
            item["image"] = wanted[key].image
        after[key] = item
    lines = plan.lines()
    return dict(before=before, after=after, prepared="\n".join(lines) + ("\n" if lines else ""))


def report(module_result: Dict[str, Any], state: PodState, plan: Plan, wanted: Dict[str, Wanted],
           diff: bool) -> Dict[str, Any]:
    module_result["changed"] = bool(plan)
    module_result["actions"] = plan.lines()
    if diff:
        module_result["diff"] = diff_for(state, plan, wanted)
    return module_result


def _check_engine(client: Any, wanted: PodWanted) -> None:
    """Refuse, before anything is touched (check mode too), what this engine cannot do: image volumes
    before Engine 28.0. The engine's version is asked for only when a container mounts an image."""
    mounts = [("%s[%s]" % ("initContainers" if w.role == ROLE_INIT or w.sidecar else "containers", w.key),
               w.config.get("mounts") or []) for w in wanted.init + wanted.members]
    if any(m["type"] == "image" for _where, items in mounts for m in items):
        try:
            version = client.api.version()
        except DockerError as exc:
            raise PodkitError("docker_host: docker version failed: %s" % exc)
        check_image_mounts(version, mounts)


def host_cgroups(client: Any) -> HostCgroups:
    try:
        return detect_host(client.info())
    except DockerError as exc:
        raise PodkitError("docker_host: docker info failed: %s" % exc)


def _pod_name(params: Dict[str, Any]) -> str:
    if not params.get("name"):
        raise PodkitError("name is required (or a manifest with metadata.name).")
    return validate_pod_name(params["name"], "name")
