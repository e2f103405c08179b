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
        C(finalizers)), C(metadata.generateName), a container's C(terminationMessagePath) and
        C(terminationMessagePolicy), resources other than memory and cpu (extended resources,
        C(ephemeral-storage)) and C(emptyDir.sizeLimit) on disk.
      - C(warn) accepts them and names each in the module's warnings; C(strict) refuses the manifest naming
        them; C(ignore) accepts them silently.
      - Any other field podkit cannot honour is an error naming it, whatever this option says.
    type: str
    choices: [strict, warn, ignore]
    default: warn
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
