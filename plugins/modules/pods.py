#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pods
short_description: Every pod of a Docker host in one call, converged in parallel
version_added: 0.1.0
description:
  - Converges a list of pods on one host in one module run, each pod exactly as M(podkit.docker.pod) does it (the
    same reconcile cycle - observe, plan, apply - with its own lock on C(/run/podkit/<pod>.lock)), up to
    O(parallel) pods at once. One task and one module start for the whole host instead of one per pod.
  - Each entry of O(pods) takes M(podkit.docker.pod)'s options (native options, O(pods[].manifest) or
    O(pods[].manifest_file), and O(pods[].state)). The options every pod shares - O(sandbox_image), O(pull),
    O(validate), O(remove_claims), O(seccomp_profile_root), O(wait), O(wait_timeout), O(docker_host), O(timeout) - can
    be given once here; an entry's own value wins.
  - One pod's failure does not stop the others - every pod that can be converged is, then the task fails
    naming each pod that failed and why (RV(pods) holds each pod's own message).
  - A list that does not describe a set of pods (an entry whose name cannot be known, a pod named twice,
    O(pods[].manifest) together with O(pods[].manifest_file)) fails before anything is touched.
  - With O(prune), the podkit pods of this host (containers labelled C(io.podkit.pod)) that the list does not
    name are removed as M(podkit.docker.pod) removes them with C(state=absent). A container without that label
    is never touched, whatever its name.
  - An entry's O(pods[].manifest) or O(pods[].manifest_file) may hold workloads (apps/v1 C(Deployment),
    C(ReplicaSet), C(StatefulSet), C(DaemonSet)) with the C(ConfigMap)s, C(Secret)s, C(PersistentVolumeClaim)s and
    C(Service)s of the same file. Each workload's pods are made from C(spec.template) as any Pod, named
    C(<name>-<revision[:6]>-<n>) (C(<name>-<ordinal>) for a StatefulSet) and labelled C(io.podkit.owner-kind),
    C(io.podkit.owner-name), C(io.podkit.revision). Such an entry takes no O(pods[].name) and O(pods[].state)
    C(present) or C(absent) only.
  - A changed Deployment template rolls out by C(strategy) - C(RollingUpdate) within C(maxSurge) and
    C(maxUnavailable) (percentages rounded as Kubernetes does, surge up and unavailable down), each new pod counted
    once Ready (its C(readinessProbe), run by the module, then C(minReadySeconds)), failing after
    C(progressDeadlineSeconds) naming the pods that did not become Ready, the old ones left serving; or
    C(Recreate). A ReplicaSet scales but replaces nothing; a StatefulSet's pods come up in order, go in reverse
    and keep a named volume per C(volumeClaimTemplates) entry; a DaemonSet is one pod on this host.
  - A C(Job) (batch/v1) in an entry runs to completion as Kubernetes' Job controller runs it - C(completions),
    C(parallelism), C(completionMode=Indexed) (C(JOB_COMPLETION_INDEX) and the
    C(batch.kubernetes.io/job-completion-index) annotation), C(backoffLimit) and C(backoffLimitPerIndex) with the
    failure backoff (10 s doubling, capped at 6 minutes), C(activeDeadlineSeconds), C(podFailurePolicy) on exit
    codes, C(successPolicy) (an Indexed Job completes once a rule is met; its running pods are removed),
    C(ttlSecondsAfterFinished), C(suspend); a native sidecar is stopped once the main containers finished.
    With O(wait) (the default) the task waits until every Job of the call finished (they run side by side, up to
    O(wait_timeout)) and fails naming a failed Job's pods, their exit codes and last log lines; without it, the run
    makes the first pods and returns, and podkit-guard goes on with the Job between runs (where no guard runs, each
    run advances it by one step). A finished Job is not run again (see O(pods[].rerun)); its pods are kept for their
    logs until C(ttlSecondsAfterFinished) (removed by podkit-guard when it expires, else by the next run). A
    finished Job pod is never started again. In check
    mode a Job shows its next step only (the pods it would make now, or the old pods a rerun removes first) - the
    later ones depend on how its pods end.
  - A C(CronJob) (batch/v1) is checked (C(schedule) in cron syntax with C(@hourly) and the like, C(timeZone), its
    C(jobTemplate) as a Job) and recorded for podkit-guard, which starts its Jobs (C(<cronjob>-<minutes since the
    epoch>)) on schedule with the Job controller above, honouring C(concurrencyPolicy), C(startingDeadlineSeconds)
    (after a guard or host restart, at most one catch-up run, as Kubernetes' cronjob controller), C(suspend),
    C(successfulJobsHistoryLimit) and C(failedJobsHistoryLimit). On a host where podkit-guard does not run, the
    entry fails saying so. C(state=absent) forgets the schedule and removes its Jobs' pods.
  - Services give the Ready pods they select their name and C(<name>.<namespace>) on a network C(podkit-<namespace>)
    podkit makes. A C(NodePort) or C(LoadBalancer) Service is published on the host only on the addresses
    O(nodeport_addresses) names (none by default - a warning names each such Service), by a proxy pod
    C(svclb-<name>) that forwards each connection to the Service's Ready pods. C(hostPort) with more than one
    replica is refused. See the README's section on workloads for what one host does differently.
  - Check mode and C(--diff) work per pod from the same plan as a real run - RV(actions) in check mode are the
    actions a real run then performs.
  - Like M(podkit.docker.pod), it records each pod it converges for podkit-guard (root-only, under
    C(/var/lib/podkit/pods)), a O(pods[].manifest_file) as the manifest it held, and deletes the record of each
    pod it removes (C(state=absent) or pruned). Check mode writes nothing.
author:
  - podkit.docker contributors (@podkit)
options:
  pods:
    description:
      - The pods of the host. Each entry takes the options of M(podkit.docker.pod); those not given come from the
        options of the same name at the module level, or from M(podkit.docker.pod)'s defaults.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - The pod's name. With O(pods[].manifest) or O(pods[].manifest_file), it defaults to C(metadata.name)
            and must agree with it when both are given. Each pod appears once in the list.
        type: str
      state:
        description:
          - As M(podkit.docker.pod)'s O(podkit.docker.pod#module:state).
        type: str
        choices: [present, started, stopped, restarted, absent]
        default: present
      manifest:
        description:
          - A Kubernetes C(v1) C(Pod), as a dict or as YAML text; see M(podkit.docker.pod).
          - Or workloads (apps/v1 C(Deployment), C(ReplicaSet), C(StatefulSet), C(DaemonSet)) with the ConfigMaps,
            Secrets, PersistentVolumeClaims and Services they use, as a list of documents or YAML text.
        type: raw
      manifest_file:
        description:
          - A file holding a Kubernetes C(v1) C(Pod) as YAML, read on the Docker host (where the module runs).
            For a file on the controller, give O(pods[].manifest) with C(lookup('ansible.builtin.file', ...)).
          - Mutually exclusive with O(pods[].manifest).
        type: path
      rerun:
        description:
          - Only for an entry holding a C(Job) - whether a Job that already finished runs again.
          - V(changed) (the default) runs it again when its spec (template, completions, ... but C(suspend) and
            C(ttlSecondsAfterFinished)) changed since it ran; V(always) runs it again on every run; V(never) never
            runs it again (its spec may change; the old result stays).
          - A Job that is running when the module runs is continued, whatever this says, unless its spec changed and
            this is V(changed) or V(always) (its pods are then removed and it starts again).
        type: str
        choices: [changed, always, never]
      rollback:
        description:
          - Only for an entry holding a C(Deployment), C(StatefulSet) or C(DaemonSet) - converge the revision that the
            manifest's template replaced on this host, as C(kubectl rollout undo) right after that template was applied.
            Its pods are replaced by the strategy's rules (C(maxSurge), C(maxUnavailable), readiness), under their
            previous template, while the entry's ConfigMaps and Secrets stay as given.
          - The revisions come from the workload's record on the host, which keeps the templates of as many revisions
            as C(revisionHistoryLimit) (default 10). A template never applied here, or one with no revision before it,
            fails naming the field, before the engine is reached.
          - Idempotent - a second run with V(true) and the same manifest stays on the previous revision. To roll
            forward again, leave this out (or set V(false)); to stay back for good, put the old template in the file.
        type: bool
        default: false
      containers:
        description:
          - The pod's containers, as M(podkit.docker.pod)'s O(podkit.docker.pod#module:containers) (C(secret=true) env
            values are hidden here too).
        type: list
        elements: dict
      init_containers:
        description:
          - Containers run to completion, in order, before the members start.
        type: list
        elements: dict
      restart_policy:
        description:
          - The pod's restart policy. Default C(Always).
        type: str
        choices: [Always, OnFailure, Never]
      share_process_namespace:
        description:
          - Members join the sandbox's PID namespace.
        type: bool
      hostname:
        description:
          - The pod's hostname. Default the pod name.
        type: str
      ports:
        description:
          - Ports published on the pod, C([host_ip:]host_port:container_port[/proto]).
        type: list
        elements: str
      dns:
        description:
          - DNS servers of the pod.
        type: list
        elements: str
      dns_search:
        description:
          - DNS search domains of the pod.
        type: list
        elements: str
      host_aliases:
        description:
          - Entries for the pod's C(/etc/hosts), as M(podkit.docker.pod) takes them.
        type: raw
      volumes:
        description:
          - Pod volumes, Kubernetes style (C(hostPath), C(emptyDir)).
        type: list
        elements: dict
      cgroup_parent:
        description:
          - The pod's cgroup parent. Default C(/podkit/pod-<pod>) (cgroupfs) or C(podkit-pod_<pod>.slice)
            (systemd).
        type: str
      resources:
        description:
          - Pod-level C(limits) and C(requests) overriding those derived from the containers.
        type: dict
      cgroup_limits:
        description:
          - Who sets the limits of this pod's cgroup, as M(podkit.docker.pod)'s
            O(podkit.docker.pod#module:cgroup_limits). Default C(derived).
        type: str
        choices: [derived, unmanaged]
      sandbox_image:
        description:
          - This pod's sandbox image; default O(sandbox_image).
        type: str
      pull:
        description:
          - This pod's default pull policy; default O(pull).
        type: str
        choices: [missing, always, never]
      validate:
        description:
          - How this pod's manifest fields that mean nothing on one Docker host are treated; default O(validate).
        type: str
        choices: [strict, warn, ignore]
      remove_claims:
        description:
          - With O(pods[].state=absent), also remove the volumes of the pod's C(persistentVolumeClaim) volumes, as
            M(podkit.docker.pod)'s O(podkit.docker.pod#module:remove_claims); default O(remove_claims).
        type: bool
      seccomp_profile_root:
        description:
          - Where this pod's C(Localhost) seccomp profiles are read, as M(podkit.docker.pod)'s
            O(podkit.docker.pod#module:seccomp_profile_root); default O(seccomp_profile_root).
        type: path
      wait:
        description:
          - Wait for this pod's started members to run; default O(wait).
        type: bool
      wait_timeout:
        description:
          - This pod's wait timeout in seconds; default O(wait_timeout).
        type: int
      docker_host:
        description:
          - The Docker daemon for this pod; default O(docker_host). O(prune) looks only at O(docker_host).
        type: str
        aliases: [docker_url]
      timeout:
        description:
          - Docker API timeout for this pod; default O(timeout).
        type: int
  prune:
    description:
      - Remove the podkit pods on this host (on O(docker_host)) that O(pods) does not name - their containers,
        volumes, cgroup, lock file and record, as M(podkit.docker.pod) does with C(state=absent).
      - Only containers labelled C(io.podkit.pod) make a pod; a container without that label is never touched.
        A pod recorded for podkit-guard (see M(podkit.docker.pod)) is one too, even when its containers are gone,
        so that the guard never brings a pruned pod back; O(prune_selector) is then matched on its recorded labels.
    type: bool
    default: false
  prune_selector:
    description:
      - With O(prune), only pods with a container carrying every one of these labels (a manifest's
        C(metadata.labels) are on the pod's sandbox) are candidates for removal, as C(kubectl apply --prune -l)
        narrows its prune. Useful when several plays or teams share a host, each owning a set of pods.
    type: dict
  prune_pattern:
    description:
      - With O(prune), only pods whose names this regular expression matches (at the start of the name, as Python's
        C(re.match)) are candidates for removal - a naming convention instead of O(prune_selector)'s labels.
      - Both narrow the candidates when both are given.
    type: str
  parallel:
    description:
      - How many pods are converged at once, each in its own worker with its own Docker client. C(1) converges
        them one after the other.
      - The default suits a small host; more mostly adds contention in the Docker daemon.
    type: int
    default: 4
  nodeport_addresses:
    description:
      - The host's addresses on which the C(NodePort) and C(LoadBalancer) Services of O(pods) are published, as
        kube-proxy's C(--nodeport-addresses) (addresses here, not ranges). Empty (the default), no Service is
        published on the host, so nothing listens on C(0.0.0.0) unless you name it.
      - A C(NodePort) Service is published on each C(spec.ports[].nodePort); one that names none gets a port from
        30000-32767 chosen from its namespace, name and port (the same on every run; RV(services) shows it). A
        C(LoadBalancer) Service is published on its C(port), as k3s' servicelb does on a node.
      - Each published Service gets a proxy pod C(svclb-<name>) (C(svclb-<namespace>-<name>) outside C(default)),
        made with its entry's options, owned by the Service (C(io.podkit.owner-kind=Service)) and kept whole by
        podkit-guard like any pod. Its busybox C(nc) accepts a connection on the published port and opens one to the
        Service's name on the C(targetPort), which answers with the Ready pods only. TCP only - a UDP or SCTP port is
        named in a warning.
      - A Service no longer published (its type changed, its entry C(state=absent), or this option emptied) has its
        proxy pod removed; one no entry holds any more is removed by O(prune) like any pod.
    type: list
    elements: str
    default: []
  service_proxy_image:
    description:
      - The image of the proxy pods of O(nodeport_addresses) - one with busybox's C(sh) and C(nc), such as the one
        the host role builds (its C(podkit_host_build_demo_images)). Pulled as O(pull) says.
    type: str
    default: podkit/busybox:latest
extends_documentation_fragment:
  - podkit.docker.docker
  - podkit.docker.docker.validate
  - podkit.docker.docker.pod_run
  - podkit.docker.docker.attributes
seealso:
  - module: podkit.docker.pod
  - module: podkit.docker.pod_facts
"""

EXAMPLES = r"""
- name: Every pod of the host, in one call
  podkit.docker.pods:
    sandbox_image: podkit/pause:latest
    pull: never
    prune: true
    pods:
      - name: web
        containers:
          - name: app
            image: podkit/busybox:latest
            command: [httpd, -f, -p, "80", -h, /]
            ports:
              - {containerPort: 80, hostPort: 8080, hostIP: 127.0.0.1}
            resources:
              limits: {memory: 256Mi}
      - manifest_file: /etc/podkit/pods/worker.yml
      - manifest: "{{ lookup('ansible.builtin.file', 'pods/cache.yml') }}"
        wait_timeout: 120
      - name: old
        state: absent
  register: host_pods

- name: Show what changed, pod by pod
  ansible.builtin.debug:
    var: host_pods.actions
"""

RETURN = r"""
pods:
  description:
    - Every pod of the call (the listed ones, then those O(prune) removed), keyed by name - C(changed), C(actions)
      (as M(podkit.docker.pod) returns them), C(pod) (the pod as M(podkit.docker.pod) returns it, null once
      removed), C(state); C(pruned) for a pod that O(prune) removed; C(failed) and C(msg) for a pod that failed.
  returned: always
  type: dict
  sample: {"web": {"changed": true, "state": "present", "actions": ["create sandbox", "create app"], "pod": {}}}
workloads:
  description:
    - Every workload of the call, keyed C(<Kind>/<name>) - C(kind), C(name), C(namespace), C(revision) (the
      template's hash), C(replicas), C(changed), C(steps) (the plan, in order - in check mode what a real run
      would do), C(pods) (the pods it touched); C(failed) and C(msg) when its rollout failed.
    - Each of its pods is also in RV(pods), with C(owner).
    - A C(Job) has C(job) instead of C(replicas) - C(phase) (Running, Suspended, Complete, Failed), C(reason),
      C(message), C(active), C(succeeded), C(failed), C(start_time), C(completion_time), C(completed_indexes),
      C(failed_indexes), and C(skipped) when the run left it as it was (finished, see O(pods[].rerun)).
  returned: when O(pods) holds a workload
  type: dict
  sample: {"Deployment/web": {"kind": "Deployment", "name": "web", "namespace": "default", "revision": "5c3a02e36d",
           "replicas": 2, "changed": true, "pods": ["web-5c3a02-0"],
           "steps": ["create web-5c3a02-0 (revision 5c3a02e36d)", "wait until Ready: web-5c3a02-0",
                     "remove web-2418a9-1 (old revision)"]}}
services:
  description:
    - The C(NodePort) and C(LoadBalancer) Services of the call that O(nodeport_addresses) publishes, and those whose
      proxy pod this run removed, keyed C(<namespace>/<name>) - C(namespace), C(name), C(type), C(pod) (the proxy
      pod), C(state) (V(present) or V(absent)), C(published) (C(address:port -> name.namespace:targetPort) lines),
      C(changed), C(actions); C(failed) and C(msg) when it could not be published.
    - The proxy pod is also in RV(pods), with C(owner) C(Service/<name>).
  returned: when O(pods) holds a workload and a Service to publish or unpublish
  type: dict
  sample: {"default/web": {"namespace": "default", "name": "web", "type": "NodePort", "pod": "svclb-web",
           "state": "present", "published": ["127.0.0.1:30080 -> web.default:8080"], "changed": true,
           "actions": ["svclb-web: create sandbox", "svclb-web: create proxy",
                       "connect svclb-web to network podkit-default as (no alias)"]}}
actions:
  description: Every pod's actions, each prefixed by the pod's name, pod after pod in the order of O(pods).
  returned: always
  type: list
  elements: str
  sample: ["web: create cgroup /podkit/pod-web", "web: create sandbox", "web: create app", "old: remove sandbox"]
"""

from ansible_collections.podkit.docker.plugins.module_utils._podoptions import entry_argument_spec, shared_argument_spec
from ansible_collections.podkit.docker.plugins.module_utils._pods import (
    DEFAULT_PARALLEL, DEFAULT_PROXY_IMAGE, SHARED_OPTIONS, converge_pods, entries_secret_values, prepare_pods)
from ansible_collections.podkit.docker.plugins.module_utils._runner import run_module


def main():
    run_module(
        dict(
            pods=dict(type="list", elements="dict", required=True, options=entry_argument_spec()),
            prune=dict(type="bool", default=False),
            prune_selector=dict(type="dict"),
            prune_pattern=dict(type="str"),
            parallel=dict(type="int", default=DEFAULT_PARALLEL),
            nodeport_addresses=dict(type="list", elements="str", default=[]),
            service_proxy_image=dict(type="str", default=DEFAULT_PROXY_IMAGE),
            **shared_argument_spec(SHARED_OPTIONS)
        ),
        converge_pods, dict(changed=False, pods={}, actions=[]),
        # Values of env variables marked secret in any entry: masked in the invocation log and in
        # everything the module returns, even when the call is refused before a pod is parsed.
        find_secrets=entries_secret_values,
        # Every entry is checked before the engine is reached; an entry refused there fails with its own
        # error even when no engine answers (and when every entry is refused, none is asked).
        prepare=prepare_pods, connect_when_needed=True,
    )


if __name__ == "__main__":
    main()
