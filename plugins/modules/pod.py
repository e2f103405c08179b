#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pod
short_description: A whole Kubernetes-style pod on a Docker host, from a Pod manifest or native options
version_added: 0.1.0
description:
  - Runs a pod as the kubelet would on Docker, in one reconcile cycle - observe (the pod's containers by
    label, their namespaces in C(/proc), the pod cgroup), plan (the actions that close the gap, each with
    its reason), apply (skipped in check mode). The same plan gives RV(actions), the diff and check mode,
    so they cannot disagree.
  - What it makes - the pod's cgroup parent with pod-level limits derived as the kubelet does (memory and
    CPU limits are the sum of the containers' limits when every container has one; CPU requests become
    C(cpu.shares) or C(cpu.weight)); the sandbox C(<pod>_sandbox) (C(--ipc shareable), hostname, published
    ports, DNS, C(/etc/hosts) entries); init containers C(<pod>_<name>), run in order to completion;
    members C(<pod>_<name>) joined to the sandbox's network and IPC (and PID with
    O(share_process_namespace)) namespaces and cgroup parent.
  - On change only what changed is recreated, and RV(actions) says why (the configuration fields that
    changed, a changed image ID, a stale sandbox). A new sandbox (ports, hostname, DNS, host aliases, cgroup parent,
    QoS class, sandbox image changed), a restarted sandbox or a member left in the sandbox's old
    namespaces means every member is recreated, as the kubelet does.
  - Init containers that completed are not run again while the sandbox is unchanged; they run again (all
    of them, in order) when the sandbox is new or restarted, or from the first whose configuration
    changed. A failing init container fails the run with its exit code and the tail of its log, and the
    members are not started.
  - A container's C(ports) with a C(hostPort) are published on the sandbox, which owns the network
    namespace.
  - Supported manifest fields - C(apiVersion) (v1), C(kind) (Pod), C(metadata.name), C(metadata.labels)
    (sandbox labels; Docker cannot relabel a container, so changing them recreates the pod),
    C(metadata.namespace) (recorded as the sandbox label C(io.podkit.namespace) and returned as
    RV(namespace)), C(metadata.annotations) (kept as sandbox labels, written when the sandbox is created;
    changing them alone recreates nothing); fields that mean nothing on one host, as O(validate) says; C(spec.containers),
    C(spec.initContainers), C(spec.restartPolicy), C(spec.shareProcessNamespace), C(spec.hostname),
    C(spec.dnsConfig) (nameservers, searches, options), C(spec.dnsPolicy) (C(Default), C(None)), C(spec.hostAliases),
    C(spec.volumes) (C(hostPath), C(emptyDir) - a volume with no source is one - C(configMap), C(secret),
    C(downwardAPI), C(projected), C(persistentVolumeClaim) and C(image)),
    C(spec.resources) (pod-level), C(spec.securityContext), C(spec.hostNetwork), C(spec.hostPID), C(spec.hostIPC),
    C(spec.hostUsers) (true only), C(spec.terminationGracePeriodSeconds), C(spec.imagePullSecrets); per container C(name), C(image), C(command), C(args),
    C(env) (C(name)/C(value)), C(ports), C(resources) (limits and requests of memory and cpu),
    C(volumeMounts), C(workingDir), C(imagePullPolicy), C(restartPolicy), C(restartPolicyRules), C(livenessProbe),
    C(readinessProbe), C(startupProbe)
    (C(exec), C(httpGet) (path, port, httpHeaders), C(tcpSocket) (port) with Kubernetes' timing fields; run by podkit-guard,
    see the P(podkit.docker.host#role) role), C(securityContext), C(stdin), C(stdinOnce), C(tty),
    C(lifecycle) (C(stopSignal), C(postStart), C(preStop)), C(envFrom) (C(configMapRef), C(secretRef), C(prefix));
    C(env[].valueFrom) - C(configMapKeyRef) and C(secretKeyRef) (C(optional) honoured - the variable is then not
    set), C(fieldRef) (C(metadata.name), C(metadata.namespace), C(metadata.uid) (made of the sandbox's ID),
    C(metadata.labels['k']), C(metadata.annotations['k']), C(spec.nodeName) (the Docker host's name),
    C(spec.serviceAccountName), C(status.podIP), C(status.hostIP) (the sandbox network's gateway)) and
    C(resourceFieldRef) (limits and requests of cpu and memory, with C(divisor); a limit not set is the host's
    capacity). A changed ConfigMap or Secret key recreates exactly the containers whose env uses it. C($(VAR)) references in C(env) values, C(command)
    and C(args) are expanded as Kubernetes does (C($$) escapes a C($); an undefined name is kept as
    written). Any other field is an error naming it, never
    silently ignored. Quantities in a manifest follow Kubernetes rules only.
  - Each applied pod's parameters are recorded in C(/var/lib/podkit/pods/<pod>.json) (the environment
    variable C(PODKIT_STATE_DIR) moves it), a root-only file (0600 in a 0700 directory), since it holds
    the values of secret env variables. podkit-guard repairs recorded pods between runs with them.
    C(state=absent) deletes the record (the guard never brings the pod back); check mode writes nothing.
  - An C(emptyDir) volume is a Docker volume C(<pod>_<volume>) labelled with the pod (tmpfs for
    C(medium=Memory)), kept while the pod exists, removed with it.
  - C(configMap), C(secret), C(downwardAPI) and C(projected) volumes (C(items), C(defaultMode), C(optional)) are
    written as files on the host - under C(/run/podkit/volumes/<pod>/<volume>), or, when they hold a Secret,
    under C(/run/podkit/secrets/<pod>/<volume>) on a tmpfs (mounted there when C(/run) is not one), the
    directories root-only - and mounted read-only. A changed key rewrites the files and recreates exactly
    the containers mounting that volume. The files are removed with the pod. A C(downwardAPI) item takes a
    C(fieldRef) - C(metadata.name), C(metadata.namespace), C(metadata.uid) (made of the sandbox's ID, as in env; a new
    sandbox rewrites it), C(metadata.labels), C(metadata.annotations) (and their C(['key'])) - or a C(resourceFieldRef)
    (C(containerName), C(resource) - limits and requests of cpu and memory, C(divisor)) rendered as in env.
  - A C(persistentVolumeClaim) is the Docker volume named by C(claimName) (created, labelled
    C(io.podkit.claim), when missing). It outlives the pod - C(state=absent) leaves it, unless
    O(remove_claims) is set.
  - C(emptyDir.sizeLimit) is enforced only with C(medium=Memory) (the tmpfs's size). On disk it is accepted and
    named in the warnings - Kubernetes too enforces it only by evicting the pod, which nothing does on one
    Docker host.
  - C(securityContext.fsGroup) owns the pod's volumes as the kubelet makes them - C(emptyDir), C(persistentVolumeClaim),
    C(configMap), C(secret), C(downwardAPI) and C(projected), never C(hostPath). Every file and directory gets the group;
    files the group's read bits (read-only volumes - the file volumes and read-only claims) or read and write bits
    (C(emptyDir), claims); directories also setgid, so what the containers create inherits the group. A C(Memory)
    C(emptyDir) is a tmpfs mounted with the group. C(fsGroupChangePolicy) C(Always) (the default) re-owns a volume
    whenever a container mounting it starts; C(OnRootMismatch) only when the volume's root is not owned. Docker
    volumes that fsGroup owns are mounted without copying the image's content into them (C(nocopy)), as Kubernetes
    mounts them. RV(actions) name each change of ownership.
  - C(securityContext) (pod and container level, the container's winning) as Docker does it - C(runAsUser) and
    C(runAsGroup) (the container's user), C(supplementalGroups) and C(fsGroup) (extra groups), C(runAsNonRoot)
    (checked against the image's user when the container is created), C(capabilities) C(add)/C(drop),
    C(privileged), C(readOnlyRootFilesystem), C(allowPrivilegeEscalation=false) (C(no-new-privileges)),
    C(seccompProfile) (C(RuntimeDefault), C(Unconfined), C(Localhost) - see O(seccomp_profile_root)), C(appArmorProfile)
    and the legacy annotation
    C(container.apparmor.security.beta.kubernetes.io/<container>), C(sysctls) (namespaced ones, on the sandbox).
    What Docker cannot do (C(seLinuxOptions), C(hostUsers=false), C(procMount=Unmasked), HTTPS probes and hooks)
    is an error naming the field.
  - C(spec.imagePullSecrets) names C(kubernetes.io/dockerconfigjson) (or C(dockercfg)) Secrets given with the Pod;
    a pull of an image from a registry they hold credentials for is made with them. The credentials are never
    shown.
  - C(lifecycle.postStart) (C(exec), C(sleep), or C(httpGet) and C(tcpSocket), which the module makes from the
    host inside the pod's network namespace to its localhost - no client in the image, nothing published) runs
    right after the container starts; a failing hook fails the run naming it. C(lifecycle.preStop) runs before
    the container is stopped, recreated or removed, and the stop signal follows within what is left of the
    grace period (C(terminationGracePeriodSeconds)).
  - Native sidecars - init containers with C(restartPolicy=Always) - are started in their place among the init
    containers (before the next one runs) and kept running with the members; a stopped or removed pod stops
    the members first, then its sidecars in reverse order. They take probes as in Kubernetes - a sidecar's
    C(startupProbe) is run by the module, which starts the next init container (or the members) only once it
    passes (a probe that fails C(failureThreshold) times, or does not pass within O(wait_timeout), fails the run
    naming the sidecar); podkit-guard runs its C(livenessProbe) (a failure restarts the sidecar) and its
    C(readinessProbe), which counts toward the pod's readiness (O(wait) waits for it). An init container that
    runs to completion takes no probes.
  - A container's own C(restartPolicy) overrides the pod's, and its C(restartPolicyRules) (Kubernetes' container
    restart rules - C(action=Restart) on C(exitCodes) C(In) or C(NotIn) given values; the container's
    C(restartPolicy) is required beside them, as the API server requires) restart it on the exit codes they name -
    the first matching rule restarts, else the container's policy decides. Where Docker has a policy that restarts
    exactly those codes (C(always), C(on-failure)) the engine restarts it; else the engine restarts nothing and
    podkit starts the container again - the module while it waits for it, podkit-guard on the container's exit,
    with its crash-loop backoff. Other actions (C(RestartAllContainers)) and rules on init containers and
    sidecars are errors naming the field.
  - C(image) volumes (C(reference); C(pullPolicy) C(IfNotPresent) or C(Never) - podkit does not pull them, the
    image must be on the host) are mounted read-only with Docker's C(--mount type=image), which Docker Engine 28.0
    (API 1.48) and later take; an older engine refuses the pod naming its version and the one that would run it.
  - A Pod with C(metadata.generateName) and no C(metadata.name) is named with the prefix less its trailing C(-),
    said in a warning - podkit keeps one stable name where the API server would add a random suffix to each.
  - C(hostNetwork), C(hostPID), C(hostIPC) put the sandbox, and so its members, in the host's namespaces.
    C(terminationGracePeriodSeconds) and C(lifecycle.stopSignal) are the containers' stop timeout and signal.
  - Containers without the label C(io.podkit.pod=<pod>) are never changed; a name clash with one fails
    the run naming it. Concurrent runs on one pod are serialised by C(flock) on C(/run/podkit/<pod>.lock).
author:
  - podkit.docker contributors (@podkit)
options:
  name:
    description:
      - The pod's name. Containers are C(<pod>_sandbox) and C(<pod>_<container>).
      - With O(manifest), it defaults to C(metadata.name) and must agree with it when both are given.
    type: str
  state:
    description:
      - C(present) and C(started) - the pod exists and its members run.
      - C(stopped) - the pod's running containers are stopped (members, then the sandbox); nothing is created.
      - C(restarted) - the sandbox is restarted and every member recreated in its new namespaces.
      - C(absent) - every container labelled with the pod, its volumes, its cgroup and its lock file are
        removed (the volumes of its C(persistentVolumeClaim) volumes only with O(remove_claims)). No manifest or
        containers are needed.
    type: str
    choices: [present, started, stopped, restarted, absent]
    default: present
  manifest:
    description:
      - A Kubernetes C(v1) C(Pod), as a dict or as YAML text. Mutually exclusive with the native options
        O(containers), O(init_containers), O(restart_policy), O(share_process_namespace), O(hostname),
        O(ports), O(dns), O(dns_search), O(host_aliases) and O(volumes).
      - It may hold several documents (YAML text with C(---), a list, or a C(kind=List)) - one C(Pod) and the
        C(ConfigMap) and C(Secret) objects it uses (C(data), C(stringData), C(binaryData)), as
        C(podman kube play) takes them. A ConfigMap or Secret the Pod refers to that is not given is an
        error naming it, unless the reference is C(optional). Secret values never appear in results,
        diffs or logs.
    type: raw
  manifest_file:
    description:
      - The path of a YAML file on the Docker host holding what O(manifest) takes. Mutually exclusive with
        O(manifest).
    type: path
  containers:
    description:
      - The pod's containers, with Kubernetes keys - C(name), C(image), C(command), C(args), C(env) (a list of
        C(name)/C(value), where C(secret=true) hides the value from results, or a dict), C(ports),
        C(resources) (C(limits)/C(requests) of C(memory) and C(cpu); Docker sizes such as C(512m) are accepted
        too), C(volumeMounts), C(workingDir), C(imagePullPolicy), C(securityContext), C(lifecycle), C(stdin),
        C(tty) (applied as in a manifest; there is no pod-level C(securityContext) natively), C(livenessProbe),
        C(readinessProbe), C(startupProbe); and podkit's C(user) (not together with
        C(securityContext.runAsUser)/C(runAsGroup)), C(share) (subset of C(net), C(ipc), C(pid)), C(secret_env)
        (names of env variables to hide), C(pull).
    type: list
    elements: dict
  init_containers:
    description:
      - Containers run to completion, in order, before the members start. Same keys as O(containers).
    type: list
    elements: dict
  restart_policy:
    description:
      - The pod's restart policy, mapped to Docker's C(always), C(on-failure) and C(no) for members.
        Default C(Always).
    type: str
    choices: [Always, OnFailure, Never]
  share_process_namespace:
    description:
      - Members join the sandbox's PID namespace (they see the pause process as PID 1).
    type: bool
  ports:
    description:
      - Ports published on the pod, C([host_ip:]host_port:container_port[/proto]), besides the containers'
        C(hostPort) entries.
    type: list
    elements: str
  host_aliases:
    description:
      - Entries for the pod's C(/etc/hosts) - Kubernetes' C(hostAliases) list (C(ip), C(hostnames)) or a
        dict of hostname to IP.
    type: raw
  volumes:
    description:
      - Pod volumes, Kubernetes style - C(name) with C(hostPath) (C(path), C(type)) or C(emptyDir)
        (C(medium), C(sizeLimit)).
    type: list
    elements: dict
  cgroup_parent:
    description:
      - The pod's cgroup parent. Default C(/podkit/pod-<pod>) with Docker's cgroupfs driver,
        C(podkit-pod_<pod>.slice) with the systemd driver.
    type: str
  resources:
    description:
      - Pod-level C(limits) and C(requests) (C(memory), C(cpu)) overriding those derived from the containers.
    type: dict
  cgroup_limits:
    description:
      - Who sets the limits of the pod cgroup (O(cgroup_parent)).
      - C(derived) - podkit writes them as the kubelet derives them from the containers (or O(resources)), and
        sets them back when they drift.
      - C(unmanaged) - podkit never writes the cgroup's limits (nor, with the systemd driver, its slice unit);
        they stay as M(podkit.docker.cgroup_parent), C(cgset) or nobody set them, as for a pod made with
        M(podkit.docker.pod_sandbox) and M(podkit.docker.pod_container). A missing cgroup is made by Docker when
        the sandbox joins it, and C(state=absent) leaves it. The containers' own limits still apply. Not with
        O(resources) or a manifest's C(spec.resources).
      - M(podkit.docker.pod_facts) with C(as_manifest) gives C(unmanaged) in C(manifest_options) for a pod whose
        cgroup limits are not those its containers derive.
    type: str
    choices: [derived, unmanaged]
    default: derived
extends_documentation_fragment:
  - podkit.docker.docker
  - podkit.docker.docker.hostname_dns
  - podkit.docker.docker.validate
  - podkit.docker.docker.pod_run
  - podkit.docker.docker.attributes
seealso:
  - module: podkit.docker.pod_facts
  - module: podkit.docker.pod_sandbox
  - module: podkit.docker.pod_container
  - module: podkit.docker.cgroup_parent
"""

EXAMPLES = r"""
- name: The article's pod, from its manifest
  podkit.docker.pod:
    sandbox_image: podkit/pause:latest
    pull: never
    manifest:
      apiVersion: v1
      kind: Pod
      metadata:
        name: foo
      spec:
        containers:
          - name: app
            image: podkit/busybox:latest
            command: [httpd, -f, -p, "80", -h, /]
            ports:
              - containerPort: 80
                hostPort: 8080
                hostIP: 127.0.0.1
            resources:
              limits:
                memory: 256Mi
          - name: sidecar
            image: podkit/busybox:latest
            command: [/bin/sleep, 3650d]
            resources:
              limits:
                memory: 128Mi

- name: The same pod with native options and an init container
  podkit.docker.pod:
    name: foo
    sandbox_image: podkit/pause:latest
    pull: never
    volumes:
      - name: data
        emptyDir: {}
    init_containers:
      - name: setup
        image: podkit/busybox:latest
        command: [sh, -c, "echo ready > /data/state"]
        volumeMounts:
          - {name: data, mountPath: /data}
    containers:
      - name: app
        image: podkit/busybox:latest
        command: [httpd, -f, -p, "80", -h, /data]
        env:
          - {name: TOKEN, value: "{{ app_token }}", secret: true}
        volumeMounts:
          - {name: data, mountPath: /data}
        resources:
          limits: {memory: 256Mi}

- name: Remove the pod and everything of it
  podkit.docker.pod:
    name: foo
    state: absent
"""

RETURN = r"""
pod:
  description:
    - The pod after the run (before it in check mode), as one entry of RV(podkit.docker.pod_facts#module:ansible_facts.podkit_pods)
      - QoS class, cgroup, sandbox and containers with their PIDs, namespace inodes, shared namespaces,
      cgroup paths and limits. Null once the pod is removed.
  returned: always
  type: dict
  contains:
    qos_class:
      description: Guaranteed, Burstable or BestEffort.
      type: str
    cgroup:
      description: The pod cgroup as M(podkit.docker.cgroup_parent) returns it, plus usage.
      type: dict
    sandbox:
      description: The sandbox container.
      type: dict
    containers:
      description: Members and init containers by name - id, pid, status, image, namespaces, shared_with_sandbox, cgroup_paths, limits, usage.
      type: dict
  sample: {"qos_class": "Burstable", "containers": {"app": {"status": "running", "shared_with_sandbox": ["net", "ipc"]}}}
namespace:
  description: The manifest's C(metadata.namespace), recorded on the sandbox.
  returned: when the manifest gives one
  type: str
  sample: kube-system
actions:
  description: What was done (in check mode, what would be done), in order, each with its reason.
  returned: always
  type: list
  elements: str
  sample: ["recreate sandbox: ports changed", "recreate app: sandbox recreated", "recreate sidecar: sandbox recreated"]
"""

from ansible_collections.podkit.docker.plugins.module_utils._podoptions import pod_argument_spec
from ansible_collections.podkit.docker.plugins.module_utils._reconcile import converge_pod, prepare_pod
from ansible_collections.podkit.docker.plugins.module_utils._runner import run_module
from ansible_collections.podkit.docker.plugins.module_utils._spec import secret_values


def main():
    run_module(
        pod_argument_spec(),
        converge_pod, dict(changed=False, pod=None, actions=[]),
        # The parameters and the manifest are checked before the engine is reached.
        prepare=prepare_pod,
        # Values of env variables marked secret: masked everywhere in the result, even when the
        # run is refused before the pod is parsed.
        find_secrets=secret_values,
        required_one_of=[["name", "manifest", "manifest_file"]],
        mutually_exclusive=[["manifest", "manifest_file"]],
    )


if __name__ == "__main__":
    main()
