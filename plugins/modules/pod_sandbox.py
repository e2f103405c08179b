#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pod_sandbox
short_description: The sandbox (pause) container that owns a pod's shared namespaces
version_added: 0.1.0
description:
  - Creates, recreates, starts, stops or removes the sandbox container C(<pod>_sandbox) of a pod, as the
    article's C(docker run --cgroup-parent /pod-foo --ipc shareable) does, idempotently.
  - The sandbox always runs with C(--ipc shareable) so members can join its IPC namespace. It owns what
    Docker forbids on a member that joins its network namespace (C(--network container:)) - the
    hostname, published ports, DNS settings and C(/etc/hosts) entries - so those options live here.
  - The sandbox is recreated when its configuration (hashed into the C(io.podkit.config-hash) label)
    or its image ID changes; the reason names the fields that changed. A stopped sandbox is started
    under O(state=present) or O(state=started).
  - Members are not touched by this module. After the sandbox is recreated or restarted they sit in
    stale namespaces; M(podkit.docker.pod_container) (or M(podkit.docker.pod)) detects that and
    recreates them.
  - A container named C(<pod>_sandbox) without the label C(io.podkit.pod=<pod>) is never changed; the
    module fails naming it.
  - Runs of podkit modules on the same pod are serialised by a lock file in C(/run/podkit).
author:
  - podkit.docker contributors (@podkit)
options:
  pod:
    description:
      - The pod's name. The sandbox is named C(<pod>_sandbox) and labelled C(io.podkit.pod=<pod>).
    type: str
    required: true
  image:
    description:
      - The sandbox image. Where no registry answers, use the pause image the P(podkit.docker.host#role)
        role builds (C(podkit/pause:latest)).
    type: str
    default: registry.k8s.io/pause:3.10
  cgroup_parent:
    description:
      - The cgroup parent of the sandbox (and of the members that join it).
      - Default C(/podkit/pod-<pod>) with Docker's cgroupfs driver, C(podkit-pod_<pod>.slice) with the
        systemd driver.
    type: str
  ports:
    description:
      - Ports published on the pod, C([host_ip:]host_port:container_port[/proto]).
    type: list
    elements: str
    default: []
  dns:
    # Described in podkit.docker.docker.hostname_dns.
    default: []
  dns_search:
    # Described in podkit.docker.docker.hostname_dns.
    default: []
  extra_hosts:
    description:
      - Entries added to the pod's C(/etc/hosts), hostname to IP address.
    type: dict
    default: {}
  network:
    description:
      - The Docker network the sandbox (and so the pod) is attached to.
    type: str
    default: bridge
  share_pid:
    description:
      - Whether the pod shares one PID namespace. The sandbox records it in a label, and
        M(podkit.docker.pod_container) then joins members to the sandbox's PID namespace by default,
        so they see the pause process as PID 1.
    type: bool
    default: false
  labels:
    description:
      - Extra labels on the sandbox. The C(io.podkit.*) labels are set by podkit.
    type: dict
    default: {}
  state:
    description:
      - C(present) and C(started) - the sandbox exists and runs. C(stopped) - an existing sandbox is
        stopped (nothing is created). C(absent) - the sandbox is removed; its members are left and
        become stale.
    type: str
    choices: [present, started, stopped, absent]
    default: present
extends_documentation_fragment:
  - podkit.docker.docker
  - podkit.docker.docker.hostname_dns
  - podkit.docker.docker.attributes
  - podkit.docker.docker.pull
seealso:
  - module: podkit.docker.pod_container
  - module: podkit.docker.pod
"""

EXAMPLES = r"""
- name: Run the sandbox of pod foo under the article's cgroup parent
  podkit.docker.pod_sandbox:
    pod: foo
    image: podkit/pause:latest
    pull: never
    cgroup_parent: /pod-foo
    ports:
      - 127.0.0.1:8080:80

- name: Remove it
  podkit.docker.pod_sandbox:
    pod: foo
    state: absent
"""

RETURN = r"""
sandbox:
  description: The sandbox after the run (before it in check mode); null when there is none.
  returned: always
  type: dict
  contains:
    id:
      description: Container ID.
      type: str
    name:
      description: Container name, C(<pod>_sandbox).
      type: str
    pid:
      description: PID of the pause process on the host, 0 when not running.
      type: int
    status:
      description: Docker's status (running, exited, created...).
      type: str
    image:
      description: The image reference.
      type: str
    image_id:
      description: The image ID.
      type: str
    namespaces:
      description: Namespace inodes of the pause process by type (net, ipc, uts, pid, mnt, cgroup, user), as lsns shows them.
      type: dict
  sample: {"id": "3f2a...", "name": "foo_sandbox", "pid": 4966, "status": "running", "namespaces": {"net": 4026532614}}
actions:
  description: What was done (in check mode, what would be done), with the reason.
  returned: always
  type: list
  elements: str
  sample: ["recreate sandbox: ports changed"]
"""

from ansible_collections.podkit.docker.plugins.module_utils._reconcile import converge_sandbox, prepare_sandbox
from ansible_collections.podkit.docker.plugins.module_utils._runner import run_module
from ansible_collections.podkit.docker.plugins.module_utils._spec import (
    DEFAULT_SANDBOX_IMAGE, PULL_POLICIES, SANDBOX_STATES)


def main():
    run_module(
        dict(
            pod=dict(type="str", required=True),
            image=dict(type="str", default=DEFAULT_SANDBOX_IMAGE),
            cgroup_parent=dict(type="str"),
            hostname=dict(type="str"),
            ports=dict(type="list", elements="str", default=[]),
            dns=dict(type="list", elements="str", default=[]),
            dns_search=dict(type="list", elements="str", default=[]),
            extra_hosts=dict(type="dict", default={}),
            network=dict(type="str", default="bridge"),
            share_pid=dict(type="bool", default=False),
            labels=dict(type="dict", default={}),
            pull=dict(type="str", default="missing", choices=list(PULL_POLICIES)),
            state=dict(type="str", default="present", choices=list(SANDBOX_STATES)),
        ),
        converge_sandbox, dict(changed=False, sandbox=None, actions=[]),
        prepare=prepare_sandbox,
    )


if __name__ == "__main__":
    main()
