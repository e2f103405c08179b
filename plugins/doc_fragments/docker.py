# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options every podkit module that talks to the Docker engine takes.
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The Docker daemon's API address, as the Docker SDK for Python takes it.
      - The modules read C(/proc) and the cgroup filesystem, so the daemon must be the one
        on the host the module runs on; a remote TCP daemon is not supported.
    type: str
    default: unix:///var/run/docker.sock
    aliases: [docker_url]
  timeout:
    description:
      - Seconds to wait for an answer from the Docker API before failing.
    type: int
    default: 60
requirements:
  - docker (Docker SDK for Python) >= 5.0.0 on the Docker host
notes:
  - Runs on the Docker host itself and needs root (or the rights to use the Docker socket and write
    the cgroup filesystem).
"""

    # The pull option of the modules that run one image (pod_sandbox, pod_container).
    PULL = r"""
options:
  pull:
    description:
      - When to pull the image. C(missing) pulls only when it is not on the host, C(always) pulls on
        every run (the container is recreated only if the image ID changed), C(never) fails when it is
        missing.
    type: str
    choices: [missing, always, never]
    default: missing
"""

    # How manifests' fields that mean nothing on one Docker host are treated (pod, pods).
    VALIDATE = r"""
options:
  validate:
    description:
      - What to do with the fields of a Pod manifest that mean nothing on one Docker host - scheduling
        (C(nodeSelector), C(nodeName), C(affinity), C(tolerations), C(topologySpreadConstraints),
        C(schedulerName), C(schedulingGates), C(priority), C(priorityClassName), C(preemptionPolicy)), the
        service account (C(serviceAccountName), C(serviceAccount), C(automountServiceAccountToken)),
        C(enableServiceLinks), C(readinessGates), C(overhead), C(dnsPolicy) C(ClusterFirst) and
        C(ClusterFirstWithHostNet), what the API server prints (C(status), C(metadata.creationTimestamp),
        C(uid), C(resourceVersion), C(selfLink), C(generation), C(managedFields), C(ownerReferences),
        C(finalizers)), C(metadata.generateName) beside a name (alone it names the pod), a container's
        C(terminationMessagePath) and C(terminationMessagePolicy), resources other than memory and cpu (extended resources,
        C(ephemeral-storage)) and C(emptyDir.sizeLimit) on disk.
      - C(warn) accepts them and names each in the module's warnings; C(strict) refuses the manifest naming
        them; C(ignore) accepts them silently.
      - Any other field podkit cannot honour is an error naming it, whatever this option says.
    type: str
    choices: [strict, warn, ignore]
    default: warn
"""

    # How a pod is run (pod; pods, where they are given once for every pod and an entry's own value wins).
    POD_RUN = r"""
options:
  sandbox_image:
    description:
      - The sandbox (pause) image. Default C(registry.k8s.io/pause:3.10); where no registry answers, use the
        image the P(podkit.docker.host#role) role builds, C(podkit/pause:latest).
    type: str
  pull:
    description:
      - Default pull policy of the pod's images - C(missing), C(always) (containers are recreated only when
        the image ID changed) or C(never). A container's C(imagePullPolicy) wins.
    type: str
    choices: [missing, always, never]
    default: missing
  remove_claims:
    description:
      - With C(state=absent) (with M(podkit.docker.pods), also for a pruned pod), also remove the Docker volumes
        of the C(persistentVolumeClaim) volumes the pod's containers mount. By default they outlive the pod, as a
        claim outlives its pods in Kubernetes.
      - Only volumes podkit made for a claim (labelled C(io.podkit.claim) with the claim's name) are removed. A claim
        volume that a container of another pod still mounts is kept and named in the warnings, as Kubernetes
        holds a claim in use.
    type: bool
    default: false
  seccomp_profile_root:
    description:
      - The directory on the Docker host holding C(Localhost) seccomp profiles, as the kubelet's
        C(<root-dir>/seccomp). A C(seccompProfile) of C(type=Localhost) names a file under it in
        C(localhostProfile) (a relative path without C(..)); its JSON (Docker's seccomp profile format) is passed
        to Docker (C(--security-opt seccomp=<json>)).
      - The profile's content is part of the container's configuration - a changed profile recreates the
        containers that use it. A missing, unreadable or invalid profile is an error naming the field and
        the path.
    type: path
    default: /var/lib/podkit/seccomp
  wait:
    description:
      - Return only when the members started by this run are running, and, when the run changed the pod,
        its members with a C(readinessProbe) are ready as podkit-guard reports them (the guard runs the
        probes; without a running guard the run fails after O(wait_timeout) saying so).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for each init container to complete and for the members to run.
    type: int
    default: 60
"""

    # The pod's hostname and DNS, which its sandbox holds (pod, pod_sandbox; pod_sandbox adds its defaults).
    HOSTNAME_DNS = r"""
options:
  hostname:
    description:
      - The pod's hostname. Default the pod name.
    type: str
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
"""

    # Attributes of a module that changes state through the reconcile cycle.
    ATTRIBUTES = r"""
attributes:
  check_mode:
    support: full
    description: Computes every action and reports it without applying any.
  diff_mode:
    support: full
    description: Returns the state before and after the actions in C(diff).
  idempotent:
    support: full
    description: A second run with the same arguments reports no change.
"""
