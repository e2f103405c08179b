#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pod_facts
short_description: Report the namespace and cgroup layout of the pods on a Docker host
version_added: 0.1.0
description:
  - Reads every pod on the Docker host (or the ones named) from Docker, C(/proc) and the cgroup
    filesystem, and returns them as facts and as a text picture.
  - For every container, its PID, status, image, the inode of each namespace the kernel exposes
    (as C(lsns) shows them), which of them it shares with the pod's sandbox, its cgroup path per
    hierarchy as C(/proc/<pid>/cgroup) gives it, its limits and its memory usage read from the
    cgroup files; for every pod, its cgroup parent with limits and usage, its QoS class and its
    sandbox.
  - A podkit pod is every container labelled C(io.podkit.pod). With O(include_unmanaged), containers
    without podkit labels that join another container's namespaces (C(--network container:...),
    C(--ipc container:...), C(--pid container:...)) are reported too, as a pod named after the
    container owning the namespaces, like the hand-made C(foo_sandbox), C(app), C(sidecar) of
    C(docker run --cgroup-parent /pod-foo).
  - Stopped containers, and containers whose process ends while they are read, are reported with
    their status and PID 0, without namespaces or cgroup paths; their limits are then the ones Docker
    will apply when they start.
  - Never changes anything.
author:
  - podkit.docker contributors (@podkit)
extends_documentation_fragment:
  - podkit.docker.docker
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no difference to show.
  idempotent:
    support: full
    description: Never changes anything; C(changed) is always false.
  facts:
    support: full
    description: Returns C(podkit_host) and C(podkit_pods) in C(ansible_facts).
options:
  name:
    description:
      - The pods to report, by name. A hand-made pod's name is the name of the container that owns
        its namespaces.
      - Omitted or empty, every pod on the host.
    type: list
    elements: str
  include_unmanaged:
    description:
      - Also report groups of containers without podkit labels that join another container's
        network, IPC or PID namespace.
      - A container without podkit labels that joins a podkit pod's container is then reported in
        that pod with the role C(unmanaged).
    type: bool
    default: false
  query:
    description:
      - A JMESPath expression evaluated over RV(ansible_facts.podkit_pods); its result is returned in
        RV(query_result).
      - For example C(foo.containers.*.shared_with_sandbox) or C(*.cgroup.limits.memory_bytes).
      - Needs the C(jmespath) Python library on the host. An expression that does not parse fails
        the module, naming it.
    type: str
  as_manifest:
    description:
      - Also give each pod reported (podkit's, and with O(include_unmanaged) the hand-made ones) as a
        Kubernetes v1 Pod manifest, read from what Docker, the files podkit wrote and the cgroup files
        say, in RV(ansible_facts.podkit_pods.manifest) (the Pod and the ConfigMaps and Secrets it uses).
      - Applied with P(podkit.docker.pod#module) (O(podkit.docker.pod#module:manifest) and the options
        in RV(ansible_facts.podkit_pods.manifest_options)), a podkit pod's manifest changes nothing.
      - What has no Kubernetes form is named in RV(ansible_facts.podkit_pods.manifest_warnings).
    type: bool
    default: false
  as_manifest_secrets:
    description:
      - With O(as_manifest), give the Secrets the manifests use with their values (C(data)). Without
        it the Secrets have no C(data), only their names and keys are given.
      - The result then holds secret values, so the task must have C(no_log) set (the module fails
        otherwise); register the result and write it where only root reads it, as
        C(playbooks/adopt.yml) does.
    type: bool
    default: false
notes:
  - The QoS class comes from the label C(io.podkit.qos-class) when the pod module set one; otherwise
    it is derived from the containers' Docker settings as the kubelet derives it from requests and
    limits (limits from the memory and CPU limits, requests from the memory reservation and the CPU
    shares; a request not given equals its limit). The sandbox does not count.
  - Namespaces every process of the host is in (the initial user namespace, the host's cgroup and
    time namespaces) are not listed in a container's C(shared_with_sandbox);
    their inodes are in C(namespaces).
  - Docker is asked once for the list of containers, then for the inspect data of the containers that
    can belong to a wanted pod.
  - On a C(unix://) O(docker_host) the module reads the Docker API itself and does not need the Docker
    SDK for Python; any other address goes through the SDK.
seealso:
  - module: podkit.docker.pod
  - module: podkit.docker.cgroup_parent
"""

EXAMPLES = r"""
- name: Read every podkit pod on the host
  podkit.docker.pod_facts:

- name: Read one pod and print its picture
  podkit.docker.pod_facts:
    name: [foo]
  register: foo_facts

- name: Print the picture
  ansible.builtin.debug:
    var: foo_facts.tree

- name: Which namespaces do the members of pod foo share with its sandbox?
  podkit.docker.pod_facts:
    name: [foo]
    query: "foo.containers.*.shared_with_sandbox"
  register: shared

- name: Check that every member of foo shares net and ipc
  ansible.builtin.assert:
    that:
      - shared.query_result | unique | list == [['net', 'ipc']]

- name: Include pods made by hand with docker run --network container:...
  podkit.docker.pod_facts:
    include_unmanaged: true
  register: all_pods

- name: Every pod, hand-made ones included, as a Kubernetes Pod manifest
  podkit.docker.pod_facts:
    include_unmanaged: true
    as_manifest: true
  register: exported

- name: Apply pod foo's export back with the options it gives (changes nothing)
  podkit.docker.pods:
    pods:
      - "{{ exported.ansible_facts.podkit_pods.foo.manifest_options
            | combine({'manifest': exported.ansible_facts.podkit_pods.foo.manifest}) }}"

- name: Fail when a container of pod foo has no memory limit
  ansible.builtin.assert:
    that:
      - ansible_facts.podkit_pods.foo.containers.values() | map(attribute='limits.memory_bytes') | select('none') | list == []
"""

RETURN = r"""
ansible_facts:
  description: Facts about the host and its pods.
  returned: always
  type: dict
  contains:
    podkit_host:
      description: The Docker host.
      returned: always
      type: dict
      contains:
        docker_version:
          description: The Docker engine's version.
          type: str
          sample: 20.10.24+dfsg1
        cgroup_version:
          description: The cgroup version Docker uses, 1 or 2.
          type: int
          sample: 1
        cgroup_driver:
          description: Docker's cgroup driver, C(cgroupfs) or C(systemd).
          type: str
          sample: cgroupfs
        kernel:
          description: The kernel release.
          type: str
          sample: 6.1.0-18-amd64
        guard:
          description:
            - podkit-guard on this host, read from its status file in C(/var/lib/podkit) (or C(PODKIT_STATE_DIR)).
            - C(installed) (a guard ever ran here), C(running) (its process is alive), C(version), C(pid) and
              C(last_sync) (when it last converged every recorded pod, seconds since the epoch).
          type: dict
          sample: {installed: true, running: true, version: 0.1.0, pid: 812, last_sync: 1764610000.5}
    podkit_workloads:
      description:
        - The workloads the pods module converged on this host (its records) and those the pods' owner labels
          name, keyed C(<Kind>/<name>) (C(<namespace>/<Kind>/<name>) outside C(default)) - C(kind), C(name),
          C(namespace), C(revision) (the template's hash) and C(revisions) (it, then those before it, as many as
          C(revisionHistoryLimit) keeps), C(replicas) (C(wanted), C(current), C(ready), C(updated) - of the current
          revision), C(pods) (each pod's C(revision) and C(ready)).
        - Only when O(name) is not given.
      returned: when O(name) is not given
      type: dict
      sample: {"Deployment/web": {"kind": "Deployment", "name": "web", "namespace": "default", "revision": "5c3a02e36d",
               "revisions": ["5c3a02e36d"], "replicas": {"wanted": 2, "current": 2, "ready": 2, "updated": 2},
               "pods": {"web-5c3a02-0": {"revision": "5c3a02e36d", "ready": true}}}}
    podkit_pods:
      description:
        - The pods, keyed by pod name.
        - The pod module returns one such entry as C(pod).
      returned: always
      type: dict
      sample:
        foo:
          name: foo
          managed: true
          qos_class: Burstable
          cgroup:
            name: /podkit/pod-foo
            driver: cgroupfs
            version: 1
            docker_cgroup_parent: /podkit/pod-foo
            paths: {memory: /sys/fs/cgroup/memory/podkit/pod-foo, cpu: /sys/fs/cgroup/cpu/podkit/pod-foo}
            limits: {memory_bytes: 536870912, cpu_quota_us: 50000, cpu_period_us: 100000, cpu_shares: 1024, pids_max: null}
            usage: {memory_bytes: 3371008}
          sandbox:
            id: 69358425a7f1...
            name: foo_sandbox
            role: sandbox
            pid: 15383
            status: running
            namespaces: {mnt: 4026532180, uts: 4026532181, ipc: 4026532182, pid: 4026532183, net: 4026532184}
          containers:
            app:
              id: c65350dd0b98...
              name: foo_app
              role: member
              image: podkit/busybox:latest
              status: running
              pid: 15433
              exit_code: 0
              namespaces: {mnt: 4026532253, uts: 4026532254, ipc: 4026532182, pid: 4026532255, net: 4026532184}
              shared_with_sandbox: [net, ipc]
              cgroup_paths: {memory: /podkit/pod-foo/c65350dd0b98..., unified: /podkit/pod-foo/c65350dd0b98...}
              limits: {memory_bytes: 268435456, cpu_quota_us: null, cpu_period_us: 100000, cpu_shares: 1024, pids_max: null}
              usage: {memory_bytes: 1470464}
              processes: [{pid: 15433, command: httpd -f -p 80}]
      contains:
        name:
          description: The pod's name.
          type: str
        managed:
          description: Whether podkit made the pod (false for a hand-made pod found by O(include_unmanaged)).
          type: bool
        qos_class:
          description: The Kubernetes QoS class, C(Guaranteed), C(Burstable) or C(BestEffort).
          type: str
        cgroup:
          description:
            - The pod's cgroup parent, as the cgroup_parent module returns it, plus C(usage).
            - C(paths) maps each hierarchy (v1 controllers, C(name=systemd), C(unified)) to the
              absolute directory; C(limits) has C(memory_bytes), C(cpu_quota_us), C(cpu_period_us),
              C(cpu_shares) (v1) or C(cpu_weight) (v2) and C(pids_max), null where unlimited.
            - Null when the pod's containers have no cgroup parent.
          type: dict
        sandbox:
          description:
            - The container owning the pod's shared namespaces, with the keys of a container below
              except C(shared_with_sandbox).
            - Null when the owner of a hand-made pod's namespaces no longer exists.
          type: dict
        containers:
          description:
            - The pod's other containers (members, init containers), keyed by the container's name in
              the pod (a hand-made pod's by its Docker name).
            - Each has C(id), C(name) (Docker's), C(role) (C(member), C(init), C(unmanaged), or C(sandbox)
              for a leftover sandbox), C(image), C(status), C(pid) (0 when not running), C(exit_code),
              C(namespaces) (type to inode), C(shared_with_sandbox) (the types whose namespace is the
              sandbox's - net, ipc, pid first), C(cgroup_paths) (controller to path as in C(/proc/<pid>/cgroup);
              the v2 line is C(unified)), C(limits) (as for C(cgroup)), C(usage) (C(memory_bytes)) and
              C(processes) (C(pid) and C(command) of every process in its cgroup).
            - Also C(ready) (running and, with a readinessProbe, passing it as podkit-guard last ran it),
              C(restart_count) (Docker's restarts plus podkit-guard's repairs of it), C(last_probe) (C(time),
              C(probe), C(success), C(message) of the guard's last probe run, or null) and C(last_repair)
              (what podkit-guard last did to it - C(time), C(action), C(reason), C(trigger) - or null).
              The tree shows them after each container when a guard has run on the host.
          type: dict
        manifest:
          description:
            - With O(as_manifest), the pod as Kubernetes documents, the C(v1) C(Pod) first, then the
              C(ConfigMap)s and C(Secret)s it uses, by the names the pod gave them, with the keys read from
              its env and the files podkit wrote (for containers made before podkit recorded those names, one
              per file volume and per container's secret env); a Secret has C(data) only with
              O(as_manifest_secrets).
            - A hand-made pod is named after its sandbox container (C(foo_sandbox) gives C(foo)).
          returned: when O(as_manifest) is true
          type: list
          elements: dict
          sample:
            - apiVersion: v1
              kind: Pod
              metadata: {name: foo}
              spec:
                containers:
                  - name: app
                    image: podkit/busybox:latest
                    command: [httpd, -f, -p, "80", -h, /]
                    resources: {limits: {memory: 256Mi}}
        manifest_warnings:
          description: With O(as_manifest), what the pod has that its manifest cannot say, field by field.
          returned: when O(as_manifest) is true
          type: list
          elements: str
          sample: ["cgroup parent '/pod-foo': no Kubernetes form (the pod module's cgroup_parent)."]
        manifest_options:
          description:
            - With O(as_manifest), the P(podkit.docker.pod#module) options that apply the manifest back
              as the pod is - C(sandbox_image) when it is not the default, C(cgroup_parent) when it is not
              the pod's default, C(seccomp_profile_root) when a C(Localhost) seccomp profile was read from
              another directory than the default, C(cgroup_limits=unmanaged) when the pod cgroup's limits
              are neither those its containers derive nor those of pod-level C(spec.resources) (a pod made
              with P(podkit.docker.pod_sandbox#module), by hand, or changed since), C(state=stopped) when
              nothing of the pod runs; empty when the manifest alone says it all.
            - An entry of P(podkit.docker.pods#module) takes them as they are, with the manifest added.
          returned: when O(as_manifest) is true
          type: dict
          sample: {sandbox_image: podkit/pause:latest}
tree:
  description:
    - The pods as a picture, one line an element, in the spirit of C(systemd-cgls) and C(lsns) - the
      host, then per pod its cgroup parent with limits and memory used, the sandbox with the inodes of
      the namespaces its members join, each container with its PID and status (or exit code), the
      namespaces it shares with the sandbox in brackets and its limits, and under it its processes.
    - Printed as it is by C(ansible -m podkit.docker.pod_facts) and by P(podkit.docker.pods#role).
  returned: always
  type: list
  elements: str
  sample:
    - "host: Docker 20.10.24+dfsg1, cgroup v1 (cgroupfs driver), kernel 6.1.0-18-amd64"
    - "pod foo (podkit, Burstable)"
    - "└─cgroup /podkit/pod-foo: memory=512Mi cpu=500m, memory used 3.2Mi"
    - "  ├─sandbox foo_sandbox pid 15383 running, ns net:4026532184 ipc:4026532182"
    - "  │ └─15383 /pause"
    - "  └─app (foo_app) pid 15433 running [net ipc], memory=256Mi"
    - "    └─15433 httpd -f -p 80"
query_result:
  description: The result of O(query) over RV(ansible_facts.podkit_pods).
  returned: when O(query) is given
  type: raw
  sample: [[net, ipc], [net, ipc]]
"""

from ansible_collections.podkit.docker.plugins.module_utils._facts import check_query_library, facts_result
from ansible_collections.podkit.docker.plugins.module_utils._runner import run_module


def add_manifests(*args):
    # Imported here, by the only module that exports: a run without as_manifest does not compile it, and
    # the other modules' payloads, which carry _facts, do not carry _export.
    from ansible_collections.podkit.docker.plugins.module_utils._export import add_manifests as add  # pylint: disable=import-outside-toplevel
    add(*args)


def facts(client, params, check_mode, diff):
    return facts_result(client, params, check_mode, diff, add_manifests=add_manifests)


def main():
    run_module(
        dict(
            name=dict(type="list", elements="str"),
            include_unmanaged=dict(type="bool", default=False),
            query=dict(type="str"),
            as_manifest=dict(type="bool", default=False),
            as_manifest_secrets=dict(type="bool", default=False),
        ),
        facts, dict(changed=False),
        # A local socket is read without the Docker SDK.
        read_only=True, prepare=check_query_library,
        needs_no_log=lambda params: "as_manifest_secrets" if params.get("as_manifest") and params.get("as_manifest_secrets") else None,
    )


if __name__ == "__main__":
    main()
